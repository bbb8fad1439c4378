/*
 * chan.c: channels (Go's runtime/chan.go semantics): send, receive,
 * close, the non-blocking forms, and the wait queues select.c shares.
 *
 * A channel is a ring buffer of dataqsiz elements plus two FIFO queues of
 * sudogs, all under one runtime lock (LR_CHAN).  The invariants, each
 * holding whenever the lock is free:
 *   - recvq non-empty  =>  the buffer is empty  (a receiver only waits when
 *     there is nothing to take);
 *   - sendq non-empty  =>  the buffer is full   (likewise for senders);
 *   - closed           =>  both queues are empty (close wakes everyone and
 *     nobody enqueues on a closed channel).
 * So at most one queue is non-empty, and a waiting partner is served
 * directly: a send to a waiting receiver copies the value straight into the
 * receiver's element (its stack), never through the buffer; a receive from
 * a full buffered channel with a waiting sender takes the head of the ring
 * and moves the sender's value into the freed tail slot, which keeps FIFO
 * order across the buffer and the queue.  The partner is readied after the
 * lock is released, onto runnext, so a conversation stays on one P.
 *
 * Sudogs of a blocked select sit on several queues at once.  The first
 * waker to win the compare-and-swap on g->selectdone owns the goroutine;
 * anyone else who dequeues one of its other sudogs drops it and moves on
 * (waitq_dequeue).  The selecting goroutine removes the rest itself once it
 * runs again (select.c).
 *
 * Lock-free fast paths: a non-blocking operation that cannot proceed
 * returns without the lock, as Go's does.  For a send, "not closed" then
 * "full" (closed loaded with acquire so the second load is not hoisted):
 * a channel never goes from closed to open, so there was an instant when
 * it was both open and full.  For a receive, "empty" (acquire) then
 * "not closed": a channel never goes from closed to open, and an empty
 * closed channel stays empty, so the answer is again a real instant.
 *
 * Every operation works from any thread: on a plain thread a blocking one
 * queues that thread's waiter (gort__waiter, foreign.c) and sleeps in the
 * kernel; a thread without a P readies through the global queue.  time.c
 * sends on timer channels from g0 (timer callbacks).
 *
 * One P.  With gomaxprocs 1 (gort__chansolo, set by procresize with the
 * world stopped) the thread holding the P takes channel locks by plain
 * load and store (key GORT_LOCK_SOLO) instead of a CAS: a locked
 * instruction is slow and waits for every store before it, often to cold
 * goroutine lines (chanthru and pingpong at 1 proc gained most: see
 * docs/benchmarks.md).  That is only safe while nobody else takes a
 * channel lock: a thread without a P (a foreign thread, a goroutine
 * between gort_syscall_enter and _exit) first revokes the mode, once
 * until the next procresize: it clears the flag, issues membarrier(2) and
 * waits until the owner holds no lock taken the plain way (p->chanheld).
 * The owner counts first and then reads the flag, so with the barrier on
 * the revoker's side either the owner sees the flag clear or the revoker
 * sees its count (asymmetric Dekker, as in mutex.c).  A revoker that then
 * finds the flag set again (a procresize back to one P meanwhile) drops
 * the lock and revokes again.  Unlock stores key 0 before it drops the
 * count, so a revoker that sees the count at 0 sees the lock free.  Off
 * under GORT_DEBUG=lockstat=1, so that the plain path needs no lock
 * statistics test: channel locks are then counted on the CAS path.
 *
 * Rejected: a lock-free ring for buffered channels.  With waiting
 * goroutines, close and FIFO among blocked senders all needing one atomic
 * view of buffer and queues, the lock would come back for every slow case,
 * and on the benchmarks the lock is one uncontended CAS when a P owns both
 * ends of a conversation.
 */
#include "chan.h"

#include <stdlib.h>

_Atomic uint64_t gort__chansolo_revokes;

_Atomic int gort__chansolo;

/* Channel lock from a thread without a P (see "One P" above). */
void gort__chan_lock_shared(gort_lock_t *l)
{
    for (;;) {
        if (atomic_load(&gort__chansolo)) {
            atomic_store(&gort__chansolo, 0);
            gort__membarrier();
            for (int i = 0; i < GORT_MAX_PROCS; i++) {
                gort_p_t *pp = __atomic_load_n(&gort__allp[i], __ATOMIC_ACQUIRE);
                if (!pp)
                    break;
                /* Held for nanoseconds, unless the kernel took the
                 * owner's CPU away: then let it have ours. */
                for (int spins = 0; atomic_load_explicit(&pp->chanheld, memory_order_acquire) != 0; spins++) {
                    if (spins < 1000)
                        gort__cpu_relax();
                    else
                        gort__osyield();
                }
            }
            atomic_fetch_add_explicit(&gort__chansolo_revokes, 1, memory_order_relaxed);
        }
        gort__lock(l);
        if (likely(!atomic_load(&gort__chansolo)))
            return;
        gort__unlock(l);
    }
}

/* ---- wait queues (c->lock held) ---- */

void gort__waitq_enqueue(gort_waitq_t *q, gort_sudog_t *s)
{
    s->next = NULL;
    gort_sudog_t *x = q->last;
    s->prev = x;
    if (x)
        x->next = s;
    else
        atomic_store_explicit(&q->first, s, memory_order_relaxed);
    q->last = s;
}

/* Removes and returns the first waiter that can still be woken: a select
 * sudog whose goroutine was already claimed by another case is dropped. */
gort_sudog_t *gort__waitq_dequeue(gort_waitq_t *q)
{
    for (;;) {
        gort_sudog_t *s = atomic_load_explicit(&q->first, memory_order_relaxed);
        if (!s)
            return NULL;
        gort_sudog_t *y = s->next;
        if (y) {
            y->prev = NULL;
            atomic_store_explicit(&q->first, y, memory_order_relaxed);
            s->next = NULL; /* marks it removed (gort__waitq_remove) */
        } else {
            atomic_store_explicit(&q->first, NULL, memory_order_relaxed);
            q->last = NULL;
        }
        if (s->isselect) {
            /* acq_rel: pairs with the selecting goroutine's reset of
             * selectdone (under this lock) and orders our later writes to
             * the sudog before its reads after it wakes. */
            bool f = false;
            if (!atomic_compare_exchange_strong_explicit(&s->g->selectdone, &f, true,
                                                         memory_order_acq_rel, memory_order_relaxed))
                continue;
        }
        return s;
    }
}

/* Removes s wherever it is; harmless if a waker already dequeued it. */
void gort__waitq_remove(gort_waitq_t *q, gort_sudog_t *s)
{
    gort_sudog_t *x = s->prev, *y = s->next;
    if (x) {
        if (y) {
            x->next = y;
            y->prev = x;
            s->next = s->prev = NULL;
            return;
        }
        x->next = NULL;
        q->last = x;
        s->prev = NULL;
        return;
    }
    if (y) {
        y->prev = NULL;
        atomic_store_explicit(&q->first, y, memory_order_relaxed);
        s->next = NULL;
        return;
    }
    /* Neither neighbour: the only element, or already removed. */
    if (atomic_load_explicit(&q->first, memory_order_relaxed) == s) {
        atomic_store_explicit(&q->first, NULL, memory_order_relaxed);
        q->last = NULL;
    }
}

/* ---- making and freeing ---- */

gort_chan *gort_chan_make(size_t elem_size, size_t cap)
{
    gort__fork_check();
    size_t bytes;
    if (elem_size >= (1u << 16))
        gort__panic_str("makechan: channel element too large (>64kB)");
    if (__builtin_mul_overflow(elem_size, cap, &bytes) || bytes > ((size_t)1 << 40) ||
        cap > ((size_t)1 << 40))
        gort__panic_str("makechan: size out of range");
    size_t hdr = (sizeof(struct gort_chan) + 15) & ~(size_t)15;
    size_t total = (hdr + bytes + GORT_CACHELINE - 1) & ~(size_t)(GORT_CACHELINE - 1);
    /* Cache-line aligned so that two busy channels never share a line. */
    gort_chan *c = aligned_alloc(GORT_CACHELINE, total);
    if (!c)
        gort__throw("out of memory allocating a channel");
    memset(c, 0, hdr);
    gort__lock_init(&c->lock, LR_CHAN);
    c->dataqsiz = cap;
    c->elemsize = elem_size;
    c->buf = (char *)c + hdr;
    return c;
}

void gort_chan_free(gort_chan *c)
{
    if (!c)
        return;
    gort_g_t *gp = gort__rt_enter(); /* m->p is ours only inside the bracket */
    gort__chan_lock(&c->lock);
    bool waiters = atomic_load_explicit(&c->recvq.first, memory_order_relaxed) ||
                   atomic_load_explicit(&c->sendq.first, memory_order_relaxed);
    gort__unlock(&c->lock);
    gort__rt_leave(gp);
    if (waiters)
        gort__fatal("gort_chan_free: goroutines are still waiting on the channel");
    free(c);
}

size_t gort_chan_len(gort_chan *c)
{
    gort__fork_check();
    return c ? atomic_load_explicit(&c->qcount, memory_order_relaxed) : 0;
}

size_t gort_chan_cap(gort_chan *c)
{
    gort__fork_check();
    return c ? c->dataqsiz : 0;
}

/* ---- hand-offs to a waiting partner ---- */

static inline void unlock_all(gort_chan *c, void (*unlockf)(void *), void *arg)
{
    if (unlockf)
        unlockf(arg);
    else
        gort__unlock(&c->lock);
}

void gort__chan_send_direct(gort_chan *c, gort_sudog_t *sg, const void *ep,
                            void (*unlockf)(void *), void *arg)
{
    if (sg->elem) {
        if (likely(ep != NULL))
            gort__elem_copy(sg->elem, ep, c->elemsize);
        else
            gort__elem_zero(sg->elem, c->elemsize);
        sg->elem = NULL;
    }
    gort_g_t *gp = sg->g;
    unlock_all(c, unlockf, arg);
    /* sg is off every queue we hold: nobody else can reach it. */
    gp->param = sg;
    sg->success = true;
    gort__sudog_release_stamp(sg);
    gort__ready_handoff(gp, false);
}

void gort__chan_recv_direct(gort_chan *c, gort_sudog_t *sg, void *ep,
                            void (*unlockf)(void *), void *arg)
{
    size_t es = c->elemsize;
    if (c->dataqsiz == 0) {
        if (ep) {
            if (likely(sg->elem != NULL))
                gort__elem_copy(ep, sg->elem, es);
            else
                gort__elem_zero(ep, es);
        }
    } else {
        /* The ring is full (a sender waits): take its head, then put the
         * sender's value in the slot just freed, which is the new tail. */
        char *qp = gort__chanbuf(c, c->recvx);
        if (ep)
            gort__elem_copy(ep, qp, es);
        if (likely(sg->elem != NULL))
            gort__elem_copy(qp, sg->elem, es);
        else
            gort__elem_zero(qp, es);
        if (++c->recvx == c->dataqsiz)
            c->recvx = 0;
        c->sendx = c->recvx;
    }
    sg->elem = NULL;
    gort_g_t *gp = sg->g;
    unlock_all(c, unlockf, arg);
    gp->param = sg;
    sg->success = true;
    gort__sudog_release_stamp(sg);
    gort__ready_handoff(gp, true);
}

/* ---- helpers for the lock-free checks ---- */

static inline bool chan_full(gort_chan *c)
{
    if (c->dataqsiz == 0)
        return atomic_load_explicit(&c->recvq.first, memory_order_relaxed) == NULL;
    return atomic_load_explicit(&c->qcount, memory_order_relaxed) == c->dataqsiz;
}

static inline bool chan_empty(gort_chan *c)
{
    if (c->dataqsiz == 0)
        return atomic_load_explicit(&c->sendq.first, memory_order_acquire) == NULL;
    return atomic_load_explicit(&c->qcount, memory_order_acquire) == 0;
}


void gort__block_forever(int reason)
{
    gort__park(NULL, NULL, reason);
    gort__throw("a goroutine blocked forever was woken");
}

static inline void block_event(gort_sudog_t *sg, int64_t t0, int skip)
{
    if (unlikely(sg->releasetime > 0) && gort__hooks.prof_block)
        gort__hooks.prof_block(t0, sg->releasetime, skip);
}

/* c->lock held: queue on q, park (unlocking c), and return how the partner
 * or close left us.  ep is the sender's value or the receiver's slot.
 * Inlined, as are chansend and chanrecv into their callers and the park
 * into this: after the switch back every return is mispredicted, so the
 * fewer levels between the switch and the user's code the better. */
static inline __attribute__((always_inline)) int chan_park(gort_chan *c, gort_waitq_t *q, void *ep, int reason)
{
    gort_g_t *gp = gort__waiter();
    /* On our own stack: it lives exactly as long as we are parked (a waker
     * is done with it before it readies us), and skips the per-P cache. */
    gort_sudog_t sgs = {.elem = ep, .g = gp, .c = c}, *sg = &sgs;
    int64_t t0 = gort__block_start(sg);
    gp->waiting = sg;
    gp->param = NULL;
    gort__waitq_enqueue(q, sg);
    gort__park_unlock(&c->lock, reason);
    gp->waiting = NULL;
    gp->param = NULL;
    bool ok = sg->success;
    block_event(sg, t0, 3);
    return ok ? OP_OK : OP_CLOSED;
}

/* ---- send ---- */

/* c->lock held; returns with it released.  For timer callbacks on g0. */
bool gort__chan_trysend_locked(gort_chan *c, const void *ep)
{
    gort_sudog_t *sg = gort__waitq_dequeue(&c->recvq);
    if (sg) {
        gort__chan_send_direct(c, sg, ep, NULL, NULL);
        return true;
    }
    size_t q = atomic_load_explicit(&c->qcount, memory_order_relaxed);
    if (q < c->dataqsiz) {
        gort__chanbuf_put(c, q, ep);
        gort__unlock(&c->lock);
        return true;
    }
    gort__unlock(&c->lock);
    return false;
}

bool gort__chan_drain_locked(gort_chan *c)
{
    size_t q = atomic_load_explicit(&c->qcount, memory_order_relaxed);
    if (q == 0)
        return false;
    gort__chanbuf_get(c, q, NULL);
    return true;
}

static inline __attribute__((always_inline)) int chansend(gort_chan *c, const void *ep, bool block)
{
    if (unlikely(!c)) {
        if (!block)
            return OP_NONE;
        gort__block_forever(WR_CHAN_SEND_NIL);
    }
    if (!block && !atomic_load_explicit(&c->closed, memory_order_acquire) && chan_full(c))
        return OP_NONE;

    gort__chan_lock(&c->lock);
    if (unlikely(atomic_load_explicit(&c->closed, memory_order_relaxed))) {
        gort__unlock(&c->lock);
        return OP_CLOSED;
    }
    gort_sudog_t *sg = gort__waitq_dequeue(&c->recvq);
    if (sg) {
        gort__chan_send_direct(c, sg, ep, NULL, NULL);
        return OP_OK;
    }
    size_t q = atomic_load_explicit(&c->qcount, memory_order_relaxed);
    if (q < c->dataqsiz) {
        gort__chanbuf_put(c, q, ep);
        gort__unlock(&c->lock);
        return OP_OK;
    }
    if (!block) {
        gort__unlock(&c->lock);
        return OP_NONE;
    }

    /* Block: our value stays on our stack until a receiver copies it. */
    return chan_park(c, &c->sendq, (void *)ep, WR_CHAN_SEND);
}

/* ---- receive ---- */

static inline __attribute__((always_inline)) int chanrecv(gort_chan *c, void *ep, bool block)
{
    if (unlikely(!c)) {
        if (!block)
            return OP_NONE;
        gort__block_forever(WR_CHAN_RECEIVE_NIL);
    }
    if (!block && chan_empty(c)) {
        if (!atomic_load_explicit(&c->closed, memory_order_acquire))
            return OP_NONE;
        /* Closed: re-check emptiness, since a value sent before the close
         * may have landed between the two loads. */
        if (chan_empty(c)) {
            if (ep)
                gort__elem_zero(ep, c->elemsize);
            return OP_CLOSED;
        }
    }

    gort__chan_lock(&c->lock);
    size_t q = atomic_load_explicit(&c->qcount, memory_order_relaxed);
    if (unlikely(atomic_load_explicit(&c->closed, memory_order_relaxed)) && q == 0) {
        gort__unlock(&c->lock);
        if (ep)
            gort__elem_zero(ep, c->elemsize);
        return OP_CLOSED;
    }
    gort_sudog_t *sg = gort__waitq_dequeue(&c->sendq);
    if (sg) {
        gort__chan_recv_direct(c, sg, ep, NULL, NULL);
        return OP_OK;
    }
    if (q > 0) {
        gort__chanbuf_get(c, q, ep);
        gort__unlock(&c->lock);
        return OP_OK;
    }
    if (!block) {
        gort__unlock(&c->lock);
        return OP_NONE;
    }

    return chan_park(c, &c->recvq, ep, WR_CHAN_RECEIVE);
}

/* ---- close ---- */

static void chanclose(gort_chan *c, gort_g_t *self)
{
    if (!c) {
        gort__rt_leave(self);
        gort__panic_str("close of nil channel");
    }
    gort__chan_lock(&c->lock);
    if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
        gort__unlock(&c->lock);
        gort__rt_leave(self);
        gort__panic_str("close of closed channel");
    }
    atomic_store_explicit(&c->closed, 1, memory_order_release);

    /* Collect every waiter, receivers first (they get the zero value and
     * false), then senders (they panic when they run).  FIFO within each. */
    gort_g_t *head = NULL, *tail = NULL;
    int n = 0;
    for (int pass = 0; pass < 2; pass++) {
        gort_waitq_t *q = pass == 0 ? &c->recvq : &c->sendq;
        gort_sudog_t *sg;
        while ((sg = gort__waitq_dequeue(q)) != NULL) {
            if (pass == 0 && sg->elem)
                gort__elem_zero(sg->elem, c->elemsize);
            sg->elem = NULL;
            sg->success = false;
            gort__sudog_release_stamp(sg);
            gort_g_t *gp = sg->g;
            gp->param = sg;
            gp->schedlink = NULL;
            if (tail)
                tail->schedlink = gp;
            else
                head = gp;
            tail = gp;
            n++;
        }
    }
    gort__unlock(&c->lock);
    if (n == 1)
        gort__ready(head, true);
    else if (n > 1)
        gort__injectglist(head);
}

/* ---- public ---- */

void gort_chan_send(gort_chan *c, const void *elem)
{
    gort_g_t *gp = gort__rt_enter();
    int r = chansend(c, elem, true);
    gort__rt_leave_preempt(gp);
    if (unlikely(r == OP_CLOSED))
        gort__panic_str("send on closed channel");
}

bool gort_chan_recv(gort_chan *c, void *elem)
{
    gort_g_t *gp = gort__rt_enter();
    int r = chanrecv(c, elem, true);
    gort__rt_leave_preempt(gp);
    return r == OP_OK;
}

bool gort_chan_trysend(gort_chan *c, const void *elem)
{
    gort_g_t *gp = gort__rt_enter();
    int r = chansend(c, elem, false);
    gort__rt_leave_preempt(gp);
    if (unlikely(r == OP_CLOSED))
        gort__panic_str("send on closed channel");
    return r == OP_OK;
}

bool gort_chan_tryrecv(gort_chan *c, void *elem, bool *ok)
{
    gort_g_t *gp = gort__rt_enter();
    int r = chanrecv(c, elem, false);
    gort__rt_leave_preempt(gp);
    if (ok)
        *ok = r == OP_OK;
    return r != OP_NONE;
}

void gort_chan_close(gort_chan *c)
{
    gort_g_t *gp = gort__rt_enter();
    chanclose(c, gp);
    gort__rt_leave(gp);
}

int gort__chansend(gort_chan *c, const void *ep, bool block) { return chansend(c, ep, block); }
int gort__chanrecv(gort_chan *c, void *ep, bool block) { return chanrecv(c, ep, block); }
