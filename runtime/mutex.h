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
};
void gort__mutex_init(void);
/* Tests only: called by a goroutine that has just counted itself in as a
 * waiter on m, before it looks at the lock again and sleeps. */
extern void (*gort__mutex_sleep_hook)(gort_mutex *m);

#endif /* GORT_RUNTIME_MUTEX_H */
