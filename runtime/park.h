/*
 * park.h: parking the running goroutine (sched.c: park_m is g0's half).
 */
#ifndef GORT_RUNTIME_PARK_H
#define GORT_RUNTIME_PARK_H

#include "fiber_san.h"
#include "foreign.h"
#include "lock.h"

/* Parks the running goroutine.  unlockf(g, lock), if given, runs on the M's
 * own stack after the goroutine's context is saved; if it returns false the
 * goroutine resumes at once.  From the moment unlockf releases the lock,
 * another thread may ready the goroutine.  On a plain thread the same, with
 * gort__waiter()'s G, the thread sleeping in the kernel (foreign.c). */
void gort__park_m(void *arg); /* g0's half (sched.c) */

/* Inline, like the lock: every return between the switch and the caller's
 * own code is mispredicted when the goroutine resumes (the return stack
 * buffer holds g0's calls), so each call level here cost a few ns per
 * switch. */
static inline __attribute__((always_inline)) void gort__park(bool (*unlockf)(gort_g_t *, void *), void *lock,
                                                             int reason)
{
    gort_m_t *m = gort__getm();
    gort_g_t *gp = m ? m->curg : NULL;
    if (unlikely(!gp)) {
        gort__foreign_park(unlockf, lock, reason);
        return;
    }
    m->waitlock = lock;
    m->waitunlockf = unlockf;
    gp->waitreason = (uint8_t)reason;
    gort__san_g_to_g0(m, gp, false);
    gort__mcall(&gp->ctx, m->g0sp, gort__park_m, gp);
    gort__san_after_g0_to_g(gp);
}
bool gort__unlock_fn(gort_g_t *gp, void *l);
static inline __attribute__((always_inline)) void gort__park_unlock(gort_lock_t *l, int reason)
{
    gort__park(gort__unlock_fn, l, reason);
}

#endif /* GORT_RUNTIME_PARK_H */
