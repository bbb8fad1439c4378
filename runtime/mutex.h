/*
 * mutex.h: gort_mutex's state word and test hook (mutex.c).
 */
#ifndef GORT_RUNTIME_MUTEX_H
#define GORT_RUNTIME_MUTEX_H

#include "base.h"

/* gort_mutex's state (mutex.c): byte 0 the lock, byte 1 the flags, the
 * high 32 bits the waiter count. */
enum {
    GORT_MUTEX_LOCKED = 1,
    GORT_MUTEX_WOKEN = 1 << 8,
    GORT_MUTEX_STARVING = 1 << 9,
    GORT_MUTEX_HANDOFF = 1 << 10,
    GORT_MUTEX_WAITER_SHIFT = 32,
    /* gort__mutex_unlocked in a forked child: bits 16-31 (gort_mutex's
     * _pad) are never set in a state. */
    GORT_MUTEX_FORKED = 1 << 16,
};
void gort__mutex_init(void);
/* The atfork child handler (fork.c): sends gort.h's inline fast paths to
 * the slow ones, which end the child. */
void gort__mutex_forked(void);
/* Tests only: called by a goroutine that has just counted itself in as a
 * waiter on m, before it looks at the lock again and sleeps. */
extern void (*gort__mutex_sleep_hook)(gort_mutex *m);

#endif /* GORT_RUNTIME_MUTEX_H */
