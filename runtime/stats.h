/*
 * stats.h: counters and profile rates (stats.c): the block and mutex profile
 * switches and schedtrace.
 */
#ifndef GORT_RUNTIME_STATS_H
#define GORT_RUNTIME_STATS_H

#include "base.h"

/* Block and mutex profile events go to gort__hooks.prof_block/prof_mutex
 * (hooks.h).  Times are gort__nanotime() values.  Callers take timestamps
 * only when the rate/fraction below is non-zero, so a program that does
 * not profile pays one load. */
extern _Atomic int64_t gort__block_rate;     /* 0: block profile off */
extern _Atomic int32_t gort__mutex_fraction; /* 0: mutex profile off */

/* Counters and debug output */
void gort__schedtrace(int fd, bool detail);
/* GORT_DEBUG=lockstat=1: at process exit, one line per runtime lock class
 * and one of the scaling counters (scripts/scale reads them). */
void gort__lockstat_atexit(void);

#endif /* GORT_RUNTIME_STATS_H */
