/*
 * chan.h: the channel's layout and the helpers chan.c shares with select.c
 * and time.c.  Nothing here is public API.
 *
 * c->lock protects every mutable field.  Three of them are also read
 * without the lock by the non-blocking fast paths (Go's chansend/chanrecv
 * "fast path: check for failed non-blocking operation without acquiring
 * the lock"): closed, qcount and the two queue heads.  They are atomics
 * written with relaxed stores under the lock; a lock-free reader only ever
 * concludes "not ready", which is a state the channel really was in at
 * some instant during the read (see the ordering argument in chan.c).
 */
#ifndef GORT_CHAN_H
#define GORT_CHAN_H

#include <string.h>

#include "runtime.h"

typedef struct gort_waitq {
    _Atomic(gort_sudog_t *) first; /* under c->lock; relaxed loads allowed without it */
    gort_sudog_t *last;            /* under c->lock */
} gort_waitq_t;

struct gort_chan {
    gort_lock_t lock;        /* LR_CHAN; several may be held, in address order */
    _Atomic uint32_t closed; /* under lock; relaxed/acquire loads without it */
    _Atomic size_t qcount;   /* values in buf; under lock; relaxed loads without it */
    size_t dataqsiz;         /* capacity; const */
    size_t elemsize;         /* const */
    size_t sendx, recvx;     /* ring indices; under lock */
    gort_waitq_t recvq;      /* blocked receivers, FIFO; under lock */
    gort_waitq_t sendq;      /* blocked senders, FIFO; under lock */
    char *buf;               /* dataqsiz * elemsize bytes, after the struct; const pointer */
};

/* Copies one element.  Channel elements are mostly machine words: the
 * fixed sizes compile to a single move instead of a call to memcpy. */
static inline void gort__elem_copy(void *dst, const void *src, size_t n)
{
    switch (n) {
    case 0:
        return;
    case 1:
        memcpy(dst, src, 1);
        return;
    case 2:
        memcpy(dst, src, 2);
        return;
    case 4:
        memcpy(dst, src, 4);
        return;
    case 8:
        memcpy(dst, src, 8);
        return;
    case 16:
        memcpy(dst, src, 16);
        return;
    default:
        memcpy(dst, src, n);
    }
}

static inline void gort__elem_zero(void *dst, size_t n)
{
    if (n == 8)
        memset(dst, 0, 8);
    else if (n)
        memset(dst, 0, n);
}

static inline char *gort__chanbuf(gort_chan *c, size_t i) { return c->buf + i * c->elemsize; }

/* The ring's one put and one get, for send, receive and select.  c->lock
 * held; q is qcount as read under it.  Put: q < dataqsiz; appends the
 * value at ep (the zero value if ep is NULL).  Get: q > 0; takes the head
 * into ep (drops it if ep is NULL). */
static inline __attribute__((always_inline)) void gort__chanbuf_put(gort_chan *c, size_t q, const void *ep)
{
    char *qp = gort__chanbuf(c, c->sendx);
    if (likely(ep != NULL))
        gort__elem_copy(qp, ep, c->elemsize);
    else
        gort__elem_zero(qp, c->elemsize);
    if (++c->sendx == c->dataqsiz)
        c->sendx = 0;
    atomic_store_explicit(&c->qcount, q + 1, memory_order_relaxed);
}

static inline __attribute__((always_inline)) void gort__chanbuf_get(gort_chan *c, size_t q, void *ep)
{
    if (ep)
        gort__elem_copy(ep, gort__chanbuf(c, c->recvx), c->elemsize);
    if (++c->recvx == c->dataqsiz)
        c->recvx = 0;
    atomic_store_explicit(&c->qcount, q - 1, memory_order_relaxed);
}

/* Waiting queues, c->lock held. */
void gort__waitq_enqueue(gort_waitq_t *q, gort_sudog_t *s);
gort_sudog_t *gort__waitq_dequeue(gort_waitq_t *q);
void gort__waitq_remove(gort_waitq_t *q, gort_sudog_t *s);

/* The hand-offs to a waiting partner (c->lock held on entry, released
 * before the partner is readied).  unlockf releases whatever else the
 * caller holds (select: every other channel); NULL unlocks c alone. */
void gort__chan_send_direct(gort_chan *c, gort_sudog_t *sg, const void *ep,
                            void (*unlockf)(void *), void *arg);
void gort__chan_recv_direct(gort_chan *c, gort_sudog_t *sg, void *ep,
                            void (*unlockf)(void *), void *arg);

/* The block profile: when the rate is set, a waiter stores -1 in
 * releasetime and the waker stamps the time it let it go. */
static inline void gort__sudog_release_stamp(gort_sudog_t *sg)
{
    if (unlikely(sg->releasetime != 0))
        sg->releasetime = gort__nanotime();
}

/* Non-blocking send usable on g0 with a P and no goroutine (timer
 * callbacks): c->lock held on entry, released on return.  Never panics
 * (timer channels are never closed).  True if the value was delivered. */
bool gort__chan_trysend_locked(gort_chan *c, const void *ep);
/* c->lock held: discard a buffered value, if any (timer Stop/Reset). */
bool gort__chan_drain_locked(gort_chan *c);

/* Results of the single-channel operations. */
enum { OP_NONE = 0, OP_OK, OP_CLOSED };
/* The one-case forms of select (same frame depth as the public calls, for
 * the block profile). */
int gort__chansend(gort_chan *c, const void *ep, bool block);
int gort__chanrecv(gort_chan *c, void *ep, bool block);

/* Parks forever (nil channel, empty select). */
__attribute__((noreturn)) void gort__block_forever(int reason);

#endif
