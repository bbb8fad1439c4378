/*
 * sema.h: sudogs (sema.c, chan.c), the runtime semaphores (sema.c) and the
 * block-profile stamp a goroutine takes before it blocks.
 */
#ifndef GORT_RUNTIME_SEMA_H
#define GORT_RUNTIME_SEMA_H

#include "stats.h"
#include "timer.h"

/* Sudogs: a G waiting on a queue (sema.c, chan.c). */
struct gort_sudog {
    gort_g_t *g;
    gort_sudog_t *next, *prev; /* in a wait queue; sema: treap children
                                  (prev: lower addresses) */
    void *elem;                /* data element (chan.c) */
    /* A sudog waits on a channel or a semaphore, never both, so these
     * share a word: the sudog stays 88 bytes, which chan.c's on-stack
     * sudog is zeroed with a few vector stores, not a rep stos (whose
     * start-up cost every blocking channel operation would pay). */
    union {
        struct gort_chan *c;   /* chan.c */
        gort_sudog_t *parent;  /* sema: treap parent */
    };
    gort_sudog_t *waitlink;    /* g->waiting list, or a sema address queue */
    gort_sudog_t *waittail;    /* sema: tail of the address queue */
    uintptr_t addr;            /* sema: address waited on */
    int64_t acquiretime, releasetime; /* block/mutex profiles */
    uint32_t ticket;           /* sema: treap priority while queued, then
                                  handoff; chan.c: select case index */
    uint8_t prof;              /* SEMA_PROF_* requested by the waiter */
    bool isselect;
    bool success;              /* chan.c: woken by a value (not a close) */
};
_Static_assert(sizeof(struct gort_sudog) <= 88, "chan.c zeroes a sudog on every block: keep it at 88 bytes");
gort_sudog_t *gort__acquire_sudog(void);
void gort__sudog_pcache_flush(gort_p_t *pp); /* sema.c: a P's sudog cache back to the pool */
void gort__release_sudog(gort_sudog_t *s);

/* Semaphores (sema.c): park on a uint32 counter, as Go's sync runtime
 * semaphores.  lifo queues at the head (Mutex waiters that waited before);
 * handoff gives the count directly to the first waiter and yields. */
void gort__semacquire(_Atomic uint32_t *addr, bool lifo, int reason, int profile);
void gort__semrelease(_Atomic uint32_t *addr, bool handoff, int skip);
bool gort__semcanacquire(_Atomic uint32_t *addr);
uint64_t gort__sema_steps(void); /* treap nodes visited by queue/dequeue (tests) */

/* A goroutine about to block on sg: when the block profile is on, mark sg
 * so that whoever readies it stamps sg->releasetime, and return the start
 * time for gort__prof_block (0: profile off). */
static inline int64_t gort__block_start(gort_sudog_t *sg)
{
    if (__builtin_expect(atomic_load_explicit(&gort__block_rate, memory_order_relaxed) > 0, 0)) {
        sg->releasetime = -1;
        return gort__nanotime();
    }
    return 0;
}
enum { SEMA_PROF_BLOCK = 1, SEMA_PROF_MUTEX = 2 };

#endif /* GORT_RUNTIME_SEMA_H */
