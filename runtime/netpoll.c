/*
 * netpoll.c: poll descriptors: where a goroutine waits for a descriptor to
 * become ready, and the deadlines that cut the wait short.  Go's design
 * (runtime/netpoll.go), which the epoll half (netpoll_epoll.c) feeds.
 *
 * The table.  Poll descriptors live in chunks that are never freed, found
 * by slot index; a freed pd goes on a LIFO free list and is reused as is.
 * So every pointer to a pd stays a pointer to a pd: a goroutine racing a
 * close, a deadline timer that fires late, or an epoll event harvested
 * just before a close never touches freed memory.  Whether the pd is
 * still the one they meant is the generation's business (pd->gen, in
 * every handle and every epoll tag).
 *
 * The wait slots (rg for reads, wg for writes) follow Go's protocol; each
 * is PD_NIL, PD_READY, PD_WAIT or a parked G, moved by CAS only:
 *   - an edge (netpollready) turns NIL or WAIT into READY, or takes the
 *     parked G and readies it;
 *   - a waiter turns READY into NIL and goes on (the edge is consumed), or
 *     NIL into WAIT, re-checks close and deadlines, parks, and on g0, with
 *     its context saved, CASes WAIT into its G (netpollblockcommit).  If
 *     an edge, a close or a deadline came in between, that CAS fails and
 *     it does not sleep.
 * So an edge between the read that said EAGAIN and the park is never lost:
 * it lands in the slot before the commit CAS, which then fails.  A close
 * or a passed deadline turns WAIT into NIL (not READY) and the woken
 * waiter re-checks pd->info, which was published before the slot moved.
 *
 * Deadlines are timers on the per-P heaps (timer.c), one per direction.
 * rseq/wseq count the changes: a timer carries the value it was armed
 * with and does nothing if the pd has moved on (a reset, a close, a
 * reuse), which also covers a callback that was already running when the
 * timer was deleted.  They live apart from the pd (pd->dl), allocated by
 * its first deadline and never freed: a server's idle connections, which
 * mostly set none, hold a pd of under half the size (a pd is part of
 * every connection's memory, beside its goroutine's stack page and G).
 * Go keeps its timers in the pollDesc; our pds are never freed either,
 * so the split only moves memory from every pd to the pds that use it.
 *
 * Rejected: Go's combined read+write timer when both deadlines are equal
 * (it saves one heap entry per connection with SetDeadline; two entries
 * keep the code to one path).  Go's pollEventErr (EPOLLERR makes reads
 * fail at once): the next read or write reports the error itself.
 */
#include "runtime.h"

#include <errno.h>
#include <stdlib.h>

#define CHUNK_SHIFT 8
#define CHUNK_PDS (1u << CHUNK_SHIFT)
#define MAX_CHUNKS (1u << 16)

static _Atomic(gort_pd_t *) chunks[MAX_CHUNKS]; /* release-published */
static gort_lock_t cache_lock = GORT_LOCK_INIT(LR_POLLCACHE);
static gort_pd_t *freelist;  /* under cache_lock */
static uint32_t nchunks;     /* under cache_lock */

static void deadline_read(void *arg, uintptr_t seq, int64_t delta);
static void deadline_write(void *arg, uintptr_t seq, int64_t delta);

gort_pd_t *gort__pd_at(uint32_t slot)
{
    gort_pd_t *c = atomic_load_explicit(&chunks[slot >> CHUNK_SHIFT], memory_order_acquire);
    return c ? &c[slot & (CHUNK_PDS - 1)] : NULL;
}

gort_pd_t *gort__pd_alloc(void)
{
    gort__lock(&cache_lock);
    if (!freelist) {
        if (nchunks == MAX_CHUNKS) {
            gort__unlock(&cache_lock);
            return NULL;
        }
        gort_pd_t *c = calloc(CHUNK_PDS, sizeof *c);
        if (!c) {
            gort__unlock(&cache_lock);
            return NULL;
        }
        /* Pushed in reverse so that slots come out in order. */
        for (uint32_t i = CHUNK_PDS; i-- > 0;) {
            gort_pd_t *pd = &c[i];
            pd->slot = nchunks << CHUNK_SHIFT | i;
            pd->fd = -1;
            atomic_store_explicit(&pd->gen, 1, memory_order_relaxed);
            gort__lock_init(&pd->lock, LR_POLLDESC);
            pd->closing = true;
            atomic_store_explicit(&pd->info, PDI_CLOSING, memory_order_relaxed);
            /* Closed, no references: a handle guessed before the first
             * open finds it closed. */
            atomic_store_explicit(&pd->mu, 1, memory_order_relaxed);
            pd->link = freelist;
            freelist = pd;
        }
        atomic_store_explicit(&chunks[nchunks], c, memory_order_release);
        nchunks++;
    }
    gort_pd_t *pd = freelist;
    freelist = pd->link;
    pd->link = NULL;
    gort__unlock(&cache_lock);
    return pd;
}

void gort__pd_free(gort_pd_t *pd)
{
    uintptr_t rg = atomic_load(&pd->rg), wg = atomic_load(&pd->wg);
    if (rg > PD_READY || wg > PD_READY)
        gort__throw("netpoll: freeing a poll descriptor with a waiter (rg %#lx, wg %#lx)", (unsigned long)rg,
                    (unsigned long)wg);
    /* Every stale handle, timer and event now sees another generation
     * (release: paired with the acquire in fd.c's and netpollready's
     * checks).  0 is skipped: a zero handle is never valid. */
    uint32_t g = atomic_load_explicit(&pd->gen, memory_order_relaxed) + 1;
    atomic_store_explicit(&pd->gen, g ? g : 1, memory_order_release);
    gort__lock(&cache_lock);
    pd->link = freelist;
    freelist = pd;
    gort__unlock(&cache_lock);
}

/* pd->lock held: publish what the wait path reads without the lock. */
static void publish_info(gort_pd_t *pd)
{
    uint32_t i = 0;
    gort_pd_dl_t *dl = atomic_load_explicit(&pd->dl, memory_order_relaxed);
    if (pd->closing)
        i |= PDI_CLOSING;
    if (dl && dl->rd < 0)
        i |= PDI_RDEXPIRED;
    if (dl && dl->wd < 0)
        i |= PDI_WDEXPIRED;
    atomic_store_explicit(&pd->info, i, memory_order_release);
}

int gort__pd_open(gort_pd_t *pd, int fd)
{
    gort__lock(&pd->lock);
    uintptr_t rg = atomic_load(&pd->rg), wg = atomic_load(&pd->wg);
    if (rg > PD_READY || wg > PD_READY)
        gort__throw("netpoll: blocked goroutine on a free poll descriptor");
    pd->fd = fd;
    pd->closing = false;
    gort_pd_dl_t *dl = atomic_load_explicit(&pd->dl, memory_order_relaxed);
    if (dl) {
        dl->rseq++;
        dl->wseq++;
        dl->rd = dl->wd = 0;
    }
    atomic_store_explicit(&pd->rhup, false, memory_order_relaxed);
    pd->rdrained = false;
    atomic_store(&pd->rg, PD_NIL);
    atomic_store(&pd->wg, PD_NIL);
    publish_info(pd);
    gort__unlock(&pd->lock);
    return gort__netpoll_open(fd, gort__pd_tag(pd, atomic_load_explicit(&pd->gen, memory_order_relaxed)));
}

int gort__pd_checkerr(gort_pd_t *pd, int mode)
{
    uint32_t i = atomic_load_explicit(&pd->info, memory_order_acquire);
    if (i & PDI_CLOSING)
        return -ECANCELED;
    if ((mode == 'r' && (i & PDI_RDEXPIRED)) || (mode == 'w' && (i & PDI_WDEXPIRED)))
        return -ETIMEDOUT;
    return 0;
}

int gort__pd_reset(gort_pd_t *pd, int mode)
{
    int e = gort__pd_checkerr(pd, mode);
    if (e)
        return e;
    if (mode == 'r') {
        /* acquire: an event whose edge this erases published its rhup
         * before it (fd.c's drained-read check needs it). */
        pd->rdrained = false;
        atomic_exchange_explicit(&pd->rg, PD_NIL, memory_order_acquire);
    } else {
        atomic_store_explicit(&pd->wg, PD_NIL, memory_order_relaxed);
    }
    return 0;
}

/* Takes the slot's waiter, if any.  ioready: an edge (leave READY for a
 * waiter that has not parked yet); otherwise a close or a deadline (leave
 * NIL: the waiter re-checks pd->info). */
static gort_g_t *netpollunblock(gort_pd_t *pd, int mode, bool ioready)
{
    _Atomic uintptr_t *gpp = mode == 'r' ? &pd->rg : &pd->wg;
    for (;;) {
        uintptr_t old = atomic_load_explicit(gpp, memory_order_acquire);
        if (old == PD_READY)
            return NULL;
        if (old == PD_NIL && !ioready)
            return NULL; /* nobody waits; the next wait checks info */
        uintptr_t new = ioready ? PD_READY : PD_NIL;
        if (atomic_compare_exchange_weak_explicit(gpp, &old, new, memory_order_acq_rel, memory_order_acquire)) {
            if (old == PD_WAIT)
                return NULL;
            if (old != PD_NIL)
                atomic_fetch_sub_explicit(&gort__netpoll_waiters, 1, memory_order_relaxed);
            return (gort_g_t *)old;
        }
    }
}

/* g0's half of the park: only now, with gp's context saved, may a waker
 * take it.  Fails (gp runs on) if an edge, close or deadline moved the
 * slot off PD_WAIT meanwhile. */
static bool netpollblockcommit(gort_g_t *gp, void *arg)
{
    _Atomic uintptr_t *gpp = arg;
    uintptr_t wait = PD_WAIT;
    if (!atomic_compare_exchange_strong_explicit(gpp, &wait, (uintptr_t)gp, memory_order_acq_rel,
                                                 memory_order_acquire))
        return false;
    atomic_fetch_add_explicit(&gort__netpoll_waiters, 1, memory_order_relaxed);
    return true;
}

/* The one place a goroutine parks on the netpoller ([IO wait]).  The
 * execution tracer's GoBlockNet belongs here.  Returns true if an edge
 * woke it (or was pending), false if a close or deadline did (or a
 * deadline that was reset before it ran). */
static bool netpollblock(gort_pd_t *pd, int mode)
{
    _Atomic uintptr_t *gpp = mode == 'r' ? &pd->rg : &pd->wg;
    for (;;) {
        uintptr_t old = PD_READY;
        if (atomic_compare_exchange_strong_explicit(gpp, &old, PD_NIL, memory_order_acq_rel, memory_order_acquire))
            return true;
        if (old == PD_NIL &&
            atomic_compare_exchange_strong_explicit(gpp, &old, PD_WAIT, memory_order_acq_rel, memory_order_acquire))
            break;
        if (old != PD_READY && old != PD_NIL)
            gort__throw("netpoll: two goroutines wait on one descriptor for %s",
                        mode == 'r' ? "reading" : "writing");
    }
    /* Re-check after publishing PD_WAIT: a close or deadline that
     * published its info before our CAS saw NIL and left the slot alone. */
    if (gort__pd_checkerr(pd, mode) == 0) {
        int64_t t0 = atomic_load_explicit(&gort__block_rate, memory_order_relaxed) > 0 ? gort__nanotime() : 0;
        gort__park(netpollblockcommit, (void *)gpp, WR_IO_WAIT);
        if (unlikely(t0) && gort__hooks.prof_block)
            gort__hooks.prof_block(t0, gort__nanotime(), 4);
    }
    uintptr_t old = atomic_exchange_explicit(gpp, PD_NIL, memory_order_acq_rel);
    if (old > PD_WAIT)
        gort__throw("netpoll: corrupted poll descriptor");
    return old == PD_READY;
}

int gort__pd_wait(gort_pd_t *pd, int mode)
{
    int e = gort__pd_checkerr(pd, mode);
    if (e)
        return e;
    while (!netpollblock(pd, mode)) {
        e = gort__pd_checkerr(pd, mode);
        if (e)
            return e;
        /* A deadline fired and was moved before we ran: wait again. */
    }
    return 0;
}

/* Closing: every waiter wakes and sees PDI_CLOSING; no timer fires. */
void gort__pd_evict(gort_pd_t *pd)
{
    gort__lock(&pd->lock);
    if (pd->closing)
        gort__throw("netpoll: evicting a closed poll descriptor");
    pd->closing = true;
    gort_pd_dl_t *dl = atomic_load_explicit(&pd->dl, memory_order_relaxed);
    if (dl) {
        dl->rseq++;
        dl->wseq++;
    }
    publish_info(pd);
    gort_g_t *rg = netpollunblock(pd, 'r', false);
    gort_g_t *wg = netpollunblock(pd, 'w', false);
    if (dl && dl->rt.f) {
        gort__timer_del(&dl->rt);
        dl->rt.f = NULL;
    }
    if (dl && dl->wt.f) {
        gort__timer_del(&dl->wt);
        dl->wt.f = NULL;
    }
    gort__unlock(&pd->lock);
    if (rg)
        gort__ready(rg, false);
    if (wg)
        gort__ready(wg, false);
}

void gort__netpollready(gort_g_t **list, uint64_t tag, int mode, bool hup)
{
    gort_pd_t *pd = gort__pd_at((uint32_t)tag);
    /* acquire: paired with the release in gort__pd_free. */
    if (!pd || atomic_load_explicit(&pd->gen, memory_order_acquire) != (uint32_t)(tag >> 32))
        return; /* an event for a descriptor closed since */
    /* Before the edge: a reset that erases the edge sees the flag.  A
     * pd closed and reopened since the check above only loses the
     * drained-read shortcut. */
    if (hup && !atomic_load_explicit(&pd->rhup, memory_order_relaxed))
        atomic_store_explicit(&pd->rhup, true, memory_order_relaxed);
    gort_g_t *gs[2] = {NULL, NULL};
    if (mode == 'r' || mode == 'r' + 'w')
        gs[0] = netpollunblock(pd, 'r', true);
    if (mode == 'w' || mode == 'r' + 'w')
        gs[1] = netpollunblock(pd, 'w', true);
    for (int i = 0; i < 2; i++) {
        gort_g_t *gp = gs[i];
        if (!gp)
            continue;
        if (unlikely(gp->foreign)) {
            gort__foreign_ready(gp);
            continue;
        }
        gp->schedlink = *list;
        *list = gp;
    }
}

/* ---- deadlines ---- */

/* pd->lock held.  Arms, moves or stops one direction's timer. */
static void arm(gort_pd_t *pd, gort__timer_t *t, uintptr_t *seq, int64_t d, int64_t d0,
                void (*f)(void *, uintptr_t, int64_t))
{
    if (d == d0 && (t->f != NULL) == (d > 0))
        return;
    (*seq)++;
    if (t->f) {
        gort__timer_del(t);
        t->f = NULL;
    }
    if (d > 0) {
        gort__timer_unlink(t);
        t->f = f;
        t->arg = pd;
        atomic_store_explicit(&t->seq, *seq, memory_order_relaxed);
        t->when = d;
        t->period = 0;
        gort__timer_add(t);
    }
}

int gort__pd_set_deadline(gort_pd_t *pd, int64_t d, int mode)
{
    if (d < 0 || (d > 0 && d <= gort__nanotime()))
        d = -1;
    /* The first deadline allocates the timers, outside the lock (acquire:
     * paired with the release below).  Two first setters racing both
     * allocate; the loser frees its own.  Clearing needs none: no
     * deadline is set while there is no dl. */
    gort_pd_dl_t *fresh = NULL;
    if (!atomic_load_explicit(&pd->dl, memory_order_acquire)) {
        if (d == 0)
            return 0;
        fresh = calloc(1, sizeof *fresh);
        if (!fresh)
            return -ENOMEM;
        fresh->rt.idx = -1;
        fresh->wt.idx = -1;
    }
    gort__lock(&pd->lock);
    gort_pd_dl_t *dl = atomic_load_explicit(&pd->dl, memory_order_relaxed);
    if (!dl && fresh) {
        dl = fresh;
        fresh = NULL;
        atomic_store_explicit(&pd->dl, dl, memory_order_release);
    }
    if (pd->closing) {
        gort__unlock(&pd->lock);
        free(fresh);
        return 0;
    }
    int64_t rd0 = dl->rd, wd0 = dl->wd;
    if (mode == 'r' || mode == 'r' + 'w')
        dl->rd = d;
    if (mode == 'w' || mode == 'r' + 'w')
        dl->wd = d;
    publish_info(pd);
    arm(pd, &dl->rt, &dl->rseq, dl->rd, rd0, deadline_read);
    arm(pd, &dl->wt, &dl->wseq, dl->wd, wd0, deadline_write);
    /* A deadline set into the past wakes whoever waits under it. */
    gort_g_t *rg = dl->rd < 0 ? netpollunblock(pd, 'r', false) : NULL;
    gort_g_t *wg = dl->wd < 0 ? netpollunblock(pd, 'w', false) : NULL;
    gort__unlock(&pd->lock);
    free(fresh);
    if (rg)
        gort__ready(rg, false);
    if (wg)
        gort__ready(wg, false);
    return 0;
}

/* A deadline timer: on g0 with a P, no lock held. */
static void deadline_fire(gort_pd_t *pd, uintptr_t seq, int mode)
{
    gort__lock(&pd->lock);
    /* A timer exists only once dl does, and dl is never taken away. */
    gort_pd_dl_t *dl = atomic_load_explicit(&pd->dl, memory_order_relaxed);
    gort__timer_t *t = mode == 'r' ? &dl->rt : &dl->wt;
    if (seq != (mode == 'r' ? dl->rseq : dl->wseq)) {
        gort__unlock(&pd->lock); /* reset, closed or reused since */
        return;
    }
    if ((mode == 'r' ? dl->rd : dl->wd) <= 0 || t->f == NULL)
        gort__throw("netpoll: inconsistent %s deadline", mode == 'r' ? "read" : "write");
    t->f = NULL;
    if (mode == 'r')
        dl->rd = -1;
    else
        dl->wd = -1;
    publish_info(pd);
    gort_g_t *gp = netpollunblock(pd, mode, false);
    gort__unlock(&pd->lock);
    if (gp)
        gort__ready(gp, false);
}

static void deadline_read(void *arg, uintptr_t seq, int64_t delta)
{
    (void)delta;
    deadline_fire(arg, seq, 'r');
}

static void deadline_write(void *arg, uintptr_t seq, int64_t delta)
{
    (void)delta;
    deadline_fire(arg, seq, 'w');
}
