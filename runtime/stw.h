/*
 * stw.h: stopping and starting the world, and GOMAXPROCS changes (stw.c).
 */
#ifndef GORT_RUNTIME_STW_H
#define GORT_RUNTIME_STW_H

#include "base.h"

/* Stop the world (stw.c).  Callable from a goroutine or from g0 with a P. */
void gort__stop_the_world(const char *reason);
void gort__start_the_world(void);
/* Best-effort stop for a crash dump: no waiting (stw.c).  Async-signal-safe. */
void gort__freeze_world(void);
gort_p_t *gort__procresize(int32_t nprocs); /* world stopped, sched.lock held; returns Ps with work */
/* Starts the world with sched.lock not held, the caller's M taking a P
 * (start_the_world and gort_main). */
void gort__start_world_locked_m(void);
/* GOMAXPROCS waiting for the next start of the world; 0: none.  Under
 * sched.lock, or before the world first starts. */
void gort__set_newprocs(int32_t n);
int32_t gort__get_newprocs(void);
/* Pauses so far: count, total and longest, in ns (gort_stats stw_*). */
void gort__stw_stats(uint64_t *count, uint64_t *total_ns, uint64_t *max_ns);
void gort__world_stays_stopped(void);        /* after stop_the_world: see exit.c */

#endif /* GORT_RUNTIME_STW_H */
