/*
 * runq.h: run queues (runq.c): the per-P ring, runnext and inbox, and the
 * global queue (under sched.lock).
 */
#ifndef GORT_RUNTIME_RUNQ_H
#define GORT_RUNTIME_RUNQ_H

#include "p.h"
#include "settings.h"

/* Run queues (runq.c) */
void gort__runqput_slow(gort_p_t *pp, gort_g_t *gp, bool next);
gort_g_t *gort__runqget_slow(gort_p_t *pp, bool *inherit);
/* The runnext hand-off inline (a channel conversation does one put and one
 * get per switch); the ring, a kicked-out runnext and the randomized
 * debug order go out of line (runq.c). */
static inline void gort__runqput(gort_p_t *pp, gort_g_t *gp, bool next)
{
    /* Only the owner stores into runnext (other Ps put into inbox, and
     * stealers only take), so an empty runnext stays empty until our
     * store: no locked instruction needed.  The release orders gp's
     * fields before a stealer's CAS that takes it. */
    if (next && !gort__settings.randomize && !atomic_load_explicit(&pp->runnext, memory_order_relaxed) &&
        likely(!atomic_load_explicit(&pp->inbox, memory_order_relaxed))) {
        atomic_store_explicit(&pp->runnext, gp, memory_order_release);
        return;
    }
    gort__runqput_slow(pp, gp, next);
}
gort_g_t *gort__inbox_take(gort_p_t *pp);
static inline gort_g_t *gort__runqget(gort_p_t *pp, bool *inherit)
{
    gort_g_t *next = atomic_load_explicit(&pp->runnext, memory_order_relaxed);
    if (next && pp->solo) {
        atomic_store_explicit(&pp->runnext, NULL, memory_order_relaxed);
        *inherit = true;
        return next;
    }
    if (next && atomic_compare_exchange_strong_explicit(&pp->runnext, &next, NULL, memory_order_acquire,
                                                        memory_order_relaxed)) {
        *inherit = true;
        return next;
    }
    return gort__runqget_slow(pp, inherit);
}
bool gort__runqempty(gort_p_t *pp);
/* Steals half of victim's queue; if it is empty and steal_runnext, its
 * runnext or inbox goroutine, at once (the caller gives a running victim
 * its moment first: steal_work). */
gort_g_t *gort__runqsteal(gort_p_t *pp, gort_p_t *victim, bool steal_runnext);
/* Does victim hold a goroutine in runnext or its inbox?  (A racy look.) */
bool gort__runq_has_next(gort_p_t *victim);
void gort__globrunqput(gort_g_t *gp);          /* sched.lock held */
void gort__globrunqputhead(gort_g_t *gp);      /* sched.lock held */
void gort__globrunqputbatch(gort_g_t *head, int32_t n); /* held; n Gs linked by schedlink */
gort_g_t *gort__globrunqget(gort_p_t *pp, int32_t max); /* held */
gort_g_t *gort__globrunqpop(void);             /* held; the head, or NULL */
uint32_t gort__runqlen(gort_p_t *pp);
int gort__runqdrain(gort_p_t *pp, gort_g_t **out, int max); /* P must be stopped */

#endif /* GORT_RUNTIME_RUNQ_H */
