/*
 * select.c: gort_select, Go's selectgo.
 *
 * Three passes, with every involved channel locked in one fixed order:
 *   1. Poll the cases in a random permutation (pollorder) and run the
 *      first that is ready.  Random order is what makes the choice among
 *      ready cases uniform: the cases are not scanned from the first.
 *   2. None ready and blocking: enqueue one sudog per case on its channel
 *      (g->waiting lists them in lock order), then park; the unlock runs
 *      on g0 once our context is saved (selparkcommit).
 *   3. Woken: the waker dequeued one sudog, won the compare-and-swap on
 *      g->selectdone (chan.c waitq_dequeue), did the transfer and put that
 *      sudog in g->param.  Lock everything again and take our other
 *      sudogs off their queues.
 *
 * Lock order: by channel address (lockorder), each channel once even when
 * it appears in several cases, so two selects over the same channels
 * never wait on each other.  Unlocking runs in reverse.
 *
 * selparkcommit must not touch our stack (the goroutine may run elsewhere
 * as soon as the first lock is released): it walks g->waiting, whose
 * sudogs live off-stack, and reads each sudog while its channel is still
 * locked; the woken goroutine cannot free a sudog before it has taken
 * every lock in pass 3.
 *
 * A case with a NULL channel is never ready and enqueues nothing; a select
 * whose cases are all NULL blocks forever ("select"), and one with no
 * cases at all blocks forever with "select (no cases)".
 *
 * Rejected: polling in the caller's order with a random start index (what
 * some C channel libraries do): with three ready cases the one after a
 * long-blocked case is chosen twice as often.
 */
#include "chan.h"

#include <stdlib.h>

#define SEL_STACK_CASES 32

typedef struct sel {
    gort_case *cases;
    int32_t *lockorder; /* indices into cases, sorted by channel address */
    int32_t norder;     /* non-NULL cases */
} sel_t;

static void sellock(sel_t *s)
{
    gort_chan *last = NULL;
    for (int32_t i = 0; i < s->norder; i++) {
        gort_chan *c = s->cases[s->lockorder[i]].ch;
        if (c != last) {
            gort__chan_lock(&c->lock);
            last = c;
        }
    }
}

static void selunlock(void *arg)
{
    sel_t *s = arg;
    for (int32_t i = s->norder - 1; i >= 0; i--) {
        gort_chan *c = s->cases[s->lockorder[i]].ch;
        if (i > 0 && c == s->cases[s->lockorder[i - 1]].ch)
            continue;
        gort__unlock(&c->lock);
    }
}

/* On g0, after the goroutine's context is saved. */
static bool selparkcommit(gort_g_t *gp, void *arg)
{
    (void)arg;
    gort_chan *lastc = NULL;
    for (gort_sudog_t *sg = gp->waiting; sg; sg = sg->waitlink) {
        if (sg->c != lastc && lastc)
            gort__unlock(&lastc->lock);
        lastc = sg->c;
    }
    if (lastc)
        gort__unlock(&lastc->lock);
    return true;
}

static void sort_lockorder(gort_case *cases, int32_t *lo, int32_t n)
{
    /* Insertion sort: selects have a handful of cases.  Shell gaps keep
     * the rare large select from going quadratic. */
    static const int32_t gaps[] = {701, 301, 132, 57, 23, 10, 4, 1};
    for (size_t g = 0; g < sizeof gaps / sizeof gaps[0]; g++) {
        int32_t gap = gaps[g];
        for (int32_t i = gap; i < n; i++) {
            int32_t v = lo[i];
            uintptr_t key = (uintptr_t)cases[v].ch;
            int32_t j = i;
            while (j >= gap && (uintptr_t)cases[lo[j - gap]].ch > key) {
                lo[j] = lo[j - gap];
                j -= gap;
            }
            lo[j] = v;
        }
    }
}

static int select_one(gort_case *cs, bool block, gort_g_t *gp)
{
    int r;
    if (cs->op == GORT_SEND) {
        r = gort__chansend(cs->ch, cs->elem, block);
        if (r == OP_CLOSED) {
            gort__rt_leave(gp);
            gort__panic_str("send on closed channel");
        }
        cs->ok = true;
    } else {
        r = gort__chanrecv(cs->ch, cs->elem, block);
        cs->ok = r == OP_OK;
    }
    gort__rt_leave(gp);
    return r == OP_NONE ? -1 : 0;
}

/* What pass 1 found. */
enum { POLL_NONE, POLL_RAN, POLL_SEND_CLOSED };

/* Pass 1, all channels locked: the first ready case in poll order runs.
 * POLL_RAN (unlocked; *casi and *ok set), POLL_SEND_CLOSED (unlocked; the
 * caller panics) or POLL_NONE (still locked). */
static int select_poll(sel_t *s, const int32_t *pollorder, int *casi, bool *ok)
{
    for (int32_t k = 0; k < s->norder; k++) {
        int32_t i = pollorder[k];
        gort_case *cs = &s->cases[i];
        gort_chan *c = cs->ch;
        size_t q = atomic_load_explicit(&c->qcount, memory_order_relaxed);
        *casi = i;
        *ok = true;
        if (cs->op == GORT_RECV) {
            gort_sudog_t *sg = gort__waitq_dequeue(&c->sendq);
            if (sg) {
                gort__chan_recv_direct(c, sg, cs->elem, selunlock, s);
                return POLL_RAN;
            }
            if (q > 0) {
                gort__chanbuf_get(c, q, cs->elem);
                selunlock(s);
                return POLL_RAN;
            }
            if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
                selunlock(s);
                if (cs->elem)
                    gort__elem_zero(cs->elem, c->elemsize);
                *ok = false;
                return POLL_RAN;
            }
        } else {
            if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
                selunlock(s);
                return POLL_SEND_CLOSED;
            }
            gort_sudog_t *sg = gort__waitq_dequeue(&c->recvq);
            if (sg) {
                gort__chan_send_direct(c, sg, cs->elem, selunlock, s);
                return POLL_RAN;
            }
            if (q < c->dataqsiz) {
                gort__chanbuf_put(c, q, cs->elem);
                selunlock(s);
                return POLL_RAN;
            }
        }
    }
    *casi = -1;
    *ok = false;
    return POLL_NONE;
}

/* In the passes below gp is the goroutine, or a plain thread's waiter
 * (foreign.c): both queue and park alike. */
/* Pass 2, all channels locked: enqueue on every channel, in lock order,
 * and park.  Nobody can claim us before the first unlock in
 * selparkcommit.  Returns the block profile's start time (0: off). */
static int64_t select_park(gort_g_t *gp, sel_t *s)
{
    int64_t t0 = 0;
    bool prof = atomic_load_explicit(&gort__block_rate, memory_order_relaxed) > 0;
    if (unlikely(prof))
        t0 = gort__nanotime();
    atomic_store_explicit(&gp->selectdone, false, memory_order_relaxed);
    gort_sudog_t **nextp = &gp->waiting;
    for (int32_t k = 0; k < s->norder; k++) {
        int32_t i = s->lockorder[k];
        gort_case *cs = &s->cases[i];
        gort_sudog_t *sg = gort__acquire_sudog();
        sg->g = gp;
        sg->isselect = true;
        sg->elem = cs->elem;
        sg->c = cs->ch;
        sg->ticket = (uint32_t)i;
        if (unlikely(prof))
            sg->releasetime = -1;
        *nextp = sg;
        nextp = &sg->waitlink;
        gort__waitq_enqueue(cs->op == GORT_SEND ? &cs->ch->sendq : &cs->ch->recvq, sg);
    }
    *nextp = NULL;
    gp->param = NULL;
    gort__park(selparkcommit, NULL, WR_SELECT);
    return t0;
}

/* Pass 3: we were claimed through the sudog in param.  Takes our other
 * sudogs off their queues; returns the case that ran. */
static int select_woken(gort_g_t *gp, sel_t *s, bool *ok, int64_t *rtime)
{
    int casi = -1;
    gort_sudog_t *won = gp->param;
    gp->param = NULL;
    sellock(s);
    gort_sudog_t *sglist = gp->waiting;
    gp->waiting = NULL;
    for (int32_t k = 0; k < s->norder; k++) {
        int32_t i = s->lockorder[k];
        gort_case *cs = &s->cases[i];
        if (sglist == won) {
            casi = i;
            *ok = won->success;
            *rtime = won->releasetime;
        } else {
            gort__waitq_remove(cs->op == GORT_SEND ? &cs->ch->sendq : &cs->ch->recvq, sglist);
        }
        gort_sudog_t *next = sglist->waitlink;
        sglist->waitlink = NULL;
        gort__release_sudog(sglist);
        sglist = next;
    }
    selunlock(s);
    if (unlikely(casi < 0))
        gort__throw("select: woken by a sudog that is not ours");
    return casi;
}

int gort_select(gort_case *cases, int n, bool block)
{
    gort_g_t *gp = gort__rt_enter();
    if (n <= 0) {
        if (!block) {
            gort__rt_leave(gp);
            return -1;
        }
        gort__block_forever(WR_SELECT_NO_CASES);
    }
    for (int i = 0; i < n; i++) {
        if (unlikely(cases[i].op != GORT_SEND && cases[i].op != GORT_RECV)) {
            gort__rt_leave(gp);
            gort__panic_str("gort_select: case op is neither GORT_SEND nor GORT_RECV");
        }
    }
    if (n == 1)
        return select_one(&cases[0], block, gp);

    int32_t stackbuf[2 * SEL_STACK_CASES];
    int32_t *pollorder = stackbuf;
    if (n > SEL_STACK_CASES) {
        pollorder = malloc(2 * (size_t)n * sizeof(int32_t));
        if (!pollorder)
            gort__throw("out of memory in select");
    }
    int32_t *lockorder = pollorder + n;

    /* Random permutation of the non-NULL cases (inside-out Fisher-Yates). */
    int32_t norder = 0;
    for (int32_t i = 0; i < n; i++) {
        if (!cases[i].ch)
            continue;
        uint32_t j = gort__fastrandn((uint32_t)norder + 1);
        pollorder[norder] = pollorder[j];
        pollorder[j] = i;
        norder++;
    }
    memcpy(lockorder, pollorder, (size_t)norder * sizeof(int32_t));
    sort_lockorder(cases, lockorder, norder);
    sel_t s = {cases, lockorder, norder};

    int casi = -1;
    bool ok = false, send_closed = false;
    if (norder == 0) {
        if (block)
            gort__block_forever(WR_SELECT);
    } else {
        sellock(&s);
        int r = select_poll(&s, pollorder, &casi, &ok);
        send_closed = r == POLL_SEND_CLOSED;
        if (r == POLL_NONE && !block)
            selunlock(&s);
        if (r == POLL_NONE && block) {
            gort_g_t *self = gp ? gp : gort__foreign_g(); /* what we queue */
            int64_t t0 = select_park(self, &s);
            int64_t rtime = 0;
            casi = select_woken(self, &s, &ok, &rtime);
            if (unlikely(rtime > 0) && gort__hooks.prof_block)
                gort__hooks.prof_block(t0, rtime, 2);
            send_closed = cases[casi].op == GORT_SEND && !ok;
        }
    }
    if (pollorder != stackbuf)
        free(pollorder);
    if (send_closed) {
        gort__rt_leave(gp);
        gort__panic_str("send on closed channel");
    }
    if (casi >= 0)
        cases[casi].ok = ok;
    gort__rt_leave_preempt(gp);
    return casi;
}
