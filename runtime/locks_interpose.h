/*
 * locks_interpose.h: C locks held by a goroutine pin it to its M
 * (locks_interpose.c): g->clocks and g->nopreempt, written by the goroutine
 * only.
 */
#ifndef GORT_RUNTIME_LOCKS_INTERPOSE_H
#define GORT_RUNTIME_LOCKS_INTERPOSE_H

#include "g.h"

/* Pinned by a held C lock or a gort_preempt_off region (locks_interpose.c),
 * apart from gort_lock_thread's own count. */
static inline bool gort__g_pinned(const gort_g_t *gp)
{
    return atomic_load_explicit(&gp->clocks, memory_order_relaxed) != 0 ||
           atomic_load_explicit(&gp->nopreempt, memory_order_relaxed) != 0;
}
/* Preemptions the SIGURG handler refused because the goroutine held a C
 * lock, or because it was in a GORT_NOPREEMPT function or a
 * gort_preempt_off region (locks_interpose.c; counted by sysmon/preempt.c). */
extern _Atomic uint64_t gort__pstat_refused_lock, gort__pstat_refused_marked;
/* Resolves the real lock functions; runtime init calls it, which also
 * links the interposers into every program that uses libgort.a. */
void gort__clocks_init(void);

#endif /* GORT_RUNTIME_LOCKS_INTERPOSE_H */
