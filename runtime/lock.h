/*
 * lock.h: runtime locks and notes (lock.c): the lock and note types, their
 * out-of-line halves, futexes and membarrier(2).  The inline fast paths of
 * gort__lock/gort__unlock need gort_m and live in lock_fast.h.
 */
#ifndef GORT_RUNTIME_LOCK_H
#define GORT_RUNTIME_LOCK_H

#include "base.h"

/* A runtime lock: spins briefly, then sleeps on a futex; a waiter that has
 * waited too long is handed the lock (lock.c).  Held only on an M, never
 * across a park; while held, m->locks > 0 and the goroutine cannot be
 * preempted. */
typedef struct gort_lock {
    /* 0 free, 1 held, GORT_LOCK_SOLO, or GORT_LOCK_HANDOFF (free, but only
     * for a starving waiter); 1 | GORT_LOCK_STARVING: held, and the
     * unlock hands the lock over. */
    _Atomic uint32_t key;
    _Atomic uint16_t sleepers; /* threads asleep (or about to be) on key */
    _Atomic uint8_t spinners;  /* threads in the spin phase (at most GORT_LOCK_MAX_SPINNERS) */
    uint8_t rank;              /* enum gort_lockrank */
} gort_lock_t;

#define GORT_LOCK_INIT(r) {0, 0, 0, (r)}
#define GORT_LOCK_SOLO 2     /* key of a channel lock taken by plain store (chan.c) */
#define GORT_LOCK_HANDOFF 3  /* released to the starving waiter, which takes it next */
#define GORT_LOCK_STARVING 4 /* or'ed into a held key (1) by the starving waiter */
#define GORT_LOCK_MAX_SPINNERS 4
/* membarrier(2), private expedited (lock.c): registered once at init. */
extern bool gort__have_membarrier;
void gort__membarrier_init(void);
void gort__membarrier(void);
extern _Atomic uint64_t gort__membarrier_calls; /* membarrier(2) calls made */
/* Barriers begun and ended, twice each (lock.c); tests hold one "in
 * flight" by making it odd. */
extern _Atomic uint32_t gort__mb_seq;
/* System calls this thread made through the wrappers here (sysmon counts
 * its own with it). */
extern __thread uint64_t gort__tls_syscalls;
void gort__lock_init(gort_lock_t *l, int rank);
/* gort__lock and gort__unlock are inline (lock_fast.h, after gort_m); these are
 * their contended halves and, in DEBUG builds, the whole ranked versions. */
void gort__lock_slow(gort_lock_t *l);
void gort__unlock_slow(gort_lock_t *l, uint32_t key, uint16_t sleepers);
void gort__unlock_handoff(gort_lock_t *l);
/* An unlock that read a key other than 1 and GORT_LOCK_SOLO, or sleepers:
 * out of line, so that the inline unlock stays small enough to inline. */
void gort__unlock_rare(gort_lock_t *l, uint32_t key, uint16_t sleepers);
void gort__lock_full(gort_lock_t *l);
void gort__unlock_full(gort_lock_t *l);
bool gort__trylock(gort_lock_t *l);

/* GORT_DEBUG=lockstat=1 (lock.c): per lock rank (every channel lock is one
 * class, as is every P's timer lock), acquisitions, contended ones, spin
 * rounds, futex sleeps and wakes, and hold time.  Off, the fast paths pay
 * one load of gort__lockstat_on each (hidden: a load by address, with no
 * GOT entry to go through). */
extern GORT_HIDDEN bool gort__lockstat_on;
void gort__lockstat_acquired(gort_lock_t *l);
void gort__lockstat_released(gort_lock_t *l);
/* Appends " lock RANK=acq/contended/spins/sleeps/wakes/hold_ns ..." for
 * every lock class used so far; returns the new length.  */
int gort__lockstat_format(char *buf, int off, int cap);
/* Writes one line per lock class to fd (at exit). */
void gort__lockstat_dump(int fd);
/* Sum of every M's lock_contended (gort_stats). */
uint64_t gort__lock_contended_total(void);
/* Charges the runtime-lock waits this M has gathered to the mutex
 * profile (called from schedule, holding no runtime lock). */
void gort__lock_contention_flush(void);
#ifdef GORT_DEBUG_BUILD
void gort__assert_held(gort_lock_t *l);
#define ASSERT_HELD(l) gort__assert_held(l)
#else
#define ASSERT_HELD(l) ((void)0)
#endif

/* One-shot wakeup on a futex: sleep until woken; wakeup exactly once
 * between clears.  Used to park Ms. */
typedef struct gort_note {
    _Atomic uint32_t key;
} gort_note_t;
void gort__notesleep(gort_note_t *n);
bool gort__notetsleep(gort_note_t *n, int64_t ns); /* true if woken */
void gort__notewakeup(gort_note_t *n);
static inline void gort__noteclear(gort_note_t *n) { atomic_store_explicit(&n->key, 0, memory_order_relaxed); }

void gort__futex_wait(_Atomic uint32_t *addr, uint32_t val, int64_t ns);
void gort__futex_wake(_Atomic uint32_t *addr, int n);
void gort__osyield(void);
void gort__usleep(int64_t us);

#endif /* GORT_RUNTIME_LOCK_H */
