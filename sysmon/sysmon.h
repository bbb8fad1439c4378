/* sysmon.h: what the sysmon files share with each other and the runtime. */
#ifndef GORT_SYSMON_H
#define GORT_SYSMON_H

#include "pcclass.h"
#include "runtime.h"

void gort__preempt_init(void);
void gort__preempt_refresh_modules(void);
bool gort__preempt_refresh_wanted(void);
bool gort__async_preempt_enabled(void);

extern _Atomic uint64_t gort__pstat_requested, gort__pstat_signals, gort__pstat_done;
extern _Atomic uint64_t gort__pstat_unsafe_runtime, gort__pstat_unsafe_frame, gort__pstat_unsafe_nopreempt;

/* sysmon.c.  gort__sysmon_start fills sysmon's entries of gort__hooks
 * (runtime/hooks.h) and starts the monitor thread; prof/start.c calls it
 * once, after runtime init. */
void gort__sysmon_start(void);
void gort__sysmon_wake(void);
void gort__sysmon_count_handoff(void);
void gort__stats_fill_sysmon(gort_stats *out);

/* preempt_amd64.S: the trampoline a preempted goroutine returns into; it
 * saves every register and calls gort__async_preempt2 (preempt.c). */
void gort__async_preempt(void);
void gort__async_preempt2(void);

/* preempt.c: asks m to preempt its goroutine (gort__hooks.preempt_m). */
void gort__preempt_m(gort_m_t *m);
/* Turns off libunwind's global cache, which may deadlock a signal handler
 * that unwinds (see prof/unwind.c).  Idempotent; preemption and every
 * unwinder in prof/ call it before they first unwind. */
void gort__unwind_init(void);

#endif
