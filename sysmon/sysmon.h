/* sysmon.h: what the sysmon files share with each other and the runtime. */
#ifndef GORT_SYSMON_H
#define GORT_SYSMON_H

#include "pcclass.h"
#include "runtime.h"

void gort__preempt_init(void);
void gort__preempt_refresh_modules(void);
bool gort__preempt_refresh_wanted(void);

extern _Atomic uint64_t gort__pstat_requested, gort__pstat_signals, gort__pstat_done;
extern _Atomic uint64_t gort__pstat_unsafe_runtime, gort__pstat_unsafe_frame, gort__pstat_unsafe_nopreempt;
extern _Atomic uint64_t gort__pstat_check_libunwind, gort__pstat_check_walks; /* preempt.c */

/* sysmon.c.  gort__sysmon_start fills sysmon's entries of gort__hooks
 * (runtime/hooks.h) and starts the monitor thread; prof/start.c calls it
 * once, after runtime init. */
void gort__sysmon_start(void);
void gort__sysmon_wake(void);
/* Wakes sysmon only from its sleep with every P idle (gort__hooks.
 * sysmon_wake_quiet): a P went into a system call, and only sysmon can run
 * its timers or hand it off. */
void gort__sysmon_wake_quiet(void);
void gort__sysmon_count_handoff(void);
void gort__stats_fill_sysmon(gort_stats *out);

/* preempt_amd64.S: the trampoline a preempted goroutine returns into; it
 * saves every register and calls gort__async_preempt2 (preempt.c). */
void gort__async_preempt(void);
void gort__async_preempt2(void);

/* preempt.c: asks m to preempt its goroutine (gort__hooks.preempt_m). */
void gort__preempt_m(gort_m_t *m);
/* The same; false when m cannot take the signal for now (its thread
 * blocks it, or preemption is off): the caller backs off. */
bool gort__preempt_ask(gort_m_t *m);
/* Turns off libunwind's global cache, which may deadlock a signal handler
 * that unwinds (see prof/unwind.c).  Idempotent; preemption and every
 * unwinder in prof/ call it before they first unwind. */
void gort__unwind_init(void);

/* pace.c: sysmon's pacing, pure functions of this state and what sysmon
 * saw (see the file's comment for the rules). */
typedef struct sysmon_pace {
    int64_t delay;            /* the backed-off sleep */
    int idle;                 /* rounds since a P was handed off */
    bool hurry_on;            /* in a hurry episode, until hurry_end */
    int64_t hurry_end;
    int64_t cool_until;       /* no episode and no poke before */
    int64_t poke_quiet_until; /* no poke before */
} sysmon_pace_t;

typedef struct sysmon_obs {
    int64_t now;
    bool quiet;        /* every P idle, or the world stopped */
    int64_t slice_ns;  /* GORT_SLICE_US */
    int64_t trace_ns;  /* GORT_DEBUG=schedtrace period, 0: none */
    /* From the last round (retake): */
    int64_t due;       /* look again then (0: nothing due) */
    bool fresh;        /* a goroutine started during the last sleep */
    bool hurry;        /* work waits behind a P that may be blocked */
    int handoffs, revokes;
} sysmon_obs_t;

typedef struct sysmon_nap {
    int64_t ns;
    bool quiet;        /* the every-P-idle sleep */
    bool pokeable;     /* gort__sysmon_wake may cut it short */
} sysmon_nap_t;

void gort__pace_init(sysmon_pace_t *s);
/* The next sleep: o's now, quiet, slice_ns, trace_ns and the last round's
 * due and fresh. */
sysmon_nap_t gort__pace_sleep(sysmon_pace_t *s, const sysmon_obs_t *o);
/* After the sleep: poked says whether a poke cut it short. */
void gort__pace_woke(sysmon_pace_t *s, const sysmon_nap_t *nap, bool poked, int64_t now);
/* After a round: o's now, hurry, handoffs and revokes. */
void gort__pace_round(sysmon_pace_t *s, const sysmon_obs_t *o);

#endif
