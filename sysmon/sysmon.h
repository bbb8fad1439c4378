/* sysmon.h: what the sysmon files share with each other and the runtime. */
#ifndef GORT_SYSMON_H
#define GORT_SYSMON_H

#include "runtime.h"

void gort__preempt_init(void);
void gort__preempt_refresh_modules(void);
bool gort__preempt_refresh_wanted(void);

extern _Atomic uint64_t gort__pstat_requested, gort__pstat_signals, gort__pstat_done;
extern _Atomic uint64_t gort__pstat_unsafe_runtime, gort__pstat_unsafe_frame, gort__pstat_unsafe_nopreempt;

/* Profiler hook: sysmon calls it every round with the time (prof/). */
void gort__prof_sysmon_tick(int64_t now) __attribute__((weak));

#endif
