/*
 * foreign.h: threads the runtime did not start (foreign.c) and gort__waiter,
 * the G a blocking call queues.
 */
#ifndef GORT_RUNTIME_FOREIGN_H
#define GORT_RUNTIME_FOREIGN_H

#include "rtcall.h"

/* Threads the runtime did not start (foreign.c).  Such a thread blocks
 * through a waiter shaped like a G (g->foreign) that it queues where a
 * goroutine would, and sleeps on a futex until a waker readies it. */
gort_g_t *gort__foreign_g(void);
__attribute__((cold)) void gort__foreign_park(bool (*unlockf)(gort_g_t *, void *), void *lock, int reason);
__attribute__((cold)) void gort__foreign_ready(gort_g_t *gp);
/* A thread the runtime did not start is alive: it may still wake someone
 * (checkdead).  Reads /proc; takes allm_lock. */
bool gort__foreign_threads_live(void);
/* The G a blocking call queues: the running goroutine, else the calling
 * plain thread's waiter. */
static inline gort_g_t *gort__waiter(void)
{
    gort_g_t *gp = gort__getg();
    return likely(gp != NULL) ? gp : gort__foreign_g();
}

#endif /* GORT_RUNTIME_FOREIGN_H */
