/*
 * timer.h: timers (timer.c; each field says what protects it) and the clocks
 * (time.c).
 */
#ifndef GORT_RUNTIME_TIMER_H
#define GORT_RUNTIME_TIMER_H

#include "base.h"

struct gort__timer {
    int64_t when;       /* under the heap's lock */
    int64_t period;     /* > 0: periodic */
    void (*f)(void *arg, uintptr_t seq, int64_t delta); /* runs on g0 with a P, no lock held */
    void *arg;
    /* The owner's generation, handed to f.  A firing P reads it before it
     * claims the timer, while a stop on another P may already bump it (the
     * value read is then not used): a relaxed atomic. */
    _Atomic uintptr_t seq;
    _Atomic(gort_p_t *) pp; /* heap it is in (even when deleted); NULL when
                               in none; written under that heap's lock */
    int32_t idx;            /* index in that heap */
    _Atomic int32_t running; /* callbacks in progress */
    _Atomic uint32_t state;  /* T_IDLE/T_PENDING/T_DELETED (timer.c): CAS */
};
void gort__timer_add(gort__timer_t *t);               /* on the current P */
bool gort__timer_del(gort__timer_t *t);               /* true if it was pending */
bool gort__timer_mod(gort__timer_t *t, int64_t when, int64_t period);
/* Before a stopped timer's when changes: takes it out of a remote heap
 * that still holds it marked deleted (that heap's order rests on when;
 * netpoll's deadlines moved it under a sift there, TSan at 64 procs).
 * Locks that heap only then; a plain stop never does. */
void gort__timer_unlink(gort__timer_t *t);
/* Waits out a running callback and takes a stopped timer out of the heap
 * still holding it: after it, t's memory may go. */
void gort__timer_wait_idle(gort__timer_t *t);
extern _Atomic uint64_t gort__timers_marked; /* stops that marked a remote timer (tests) */
int64_t gort__check_timers(gort_p_t *pp, int64_t now, int64_t *next, bool *ran);
void gort__timers_move(gort_p_t *from, gort_p_t *to); /* procresize */
int64_t gort__timers_earliest(void);                  /* across all Ps; 0: none */

/* Time */
int64_t gort__nanotime(void);
int64_t gort__nanotime_coarse(void);
/* sysmon's clock when it last went to sleep, published only while it
 * sleeps (at most 100 ms) and 0 while it works or before it starts: for
 * stamps read in minutes (a parked goroutine's waitsince), where even the
 * coarse clock's vDSO call was a visible part of a channel hand-off.  A
 * stamp from it is never older than one sysmon nap, however long a round
 * is held up. */
extern _Atomic int64_t gort__sysmon_now;
static inline __attribute__((always_inline)) int64_t gort__nanotime_stale(void)
{
    int64_t t = atomic_load_explicit(&gort__sysmon_now, memory_order_relaxed);
    return t ? t : gort__nanotime_coarse();
}

#endif /* GORT_RUNTIME_TIMER_H */
