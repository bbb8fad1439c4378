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

/* What a pass of gort_select decided: a case was chosen (its result is in
 * *casi and *ok; every lock is released), a send case found its channel
 * closed (released; the caller panics), or no case was ready (pass 1 only;
 * every lock is still held). */
enum sel_result { SEL_NONE, SEL_CHOSEN, SEL_SEND_CLOSED };

/* Pass 1, with every case's lock held: the first ready case in pollorder
 * (a random order, so that no case starves) wins, as in Go's selectgo. */
static enum sel_result select_poll(sel_t *s, const int32_t *pollorder, int *casi, bool *ok)
{
    for (int32_t k = 0; k < s->norder; k++) {
        int32_t i = pollorder[k];
        gort_case *cs = &s->cases[i];
        gort_chan *c = cs->ch;
        if (cs->op == GORT_RECV) {
            gort_sudog_t *sg = gort__waitq_dequeue(&c->sendq);
            if (sg) {
                gort__chan_recv_direct(c, sg, cs->elem, selunlock, s);
                *casi = i;
                *ok = true;
                return SEL_CHOSEN;
            }
            size_t q = atomic_load_explicit(&c->qcount, memory_order_relaxed);
            if (q > 0) {
                if (cs->elem)
                    gort__elem_copy(cs->elem, gort__chanbuf(c, c->recvx), c->elemsize);
                if (++c->recvx == c->dataqsiz)
                    c->recvx = 0;
                atomic_store_explicit(&c->qcount, q - 1, memory_order_relaxed);
                selunlock(s);
                *casi = i;
                *ok = true;
                return SEL_CHOSEN;
            }
            if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
                selunlock(s);
                if (cs->elem)
                    gort__elem_zero(cs->elem, c->elemsize);
                *casi = i;
                *ok = false;
                return SEL_CHOSEN;
            }
        } else {
            if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
                selunlock(s);
                return SEL_SEND_CLOSED;
            }
            gort_sudog_t *sg = gort__waitq_dequeue(&c->recvq);
            if (sg) {
                gort__chan_send_direct(c, sg, cs->elem, selunlock, s);
                *casi = i;
                *ok = true;
                return SEL_CHOSEN;
            }
            size_t q = atomic_load_explicit(&c->qcount, memory_order_relaxed);
            if (q < c->dataqsiz) {
                char *qp = gort__chanbuf(c, c->sendx);
                if (cs->elem)
                    gort__elem_copy(qp, cs->elem, c->elemsize);
                else
                    gort__elem_zero(qp, c->elemsize);
                if (++c->sendx == c->dataqsiz)
                    c->sendx = 0;
                atomic_store_explicit(&c->qcount, q + 1, memory_order_relaxed);
                selunlock(s);
                *casi = i;
                *ok = true;
                return SEL_CHOSEN;
            }
        }
    }
    return SEL_NONE;
}

/* Passes 2 and 3, entered with every lock held and no case ready: queue a
 * sudog on every channel in lock order and park (nobody can claim us before
 * selparkcommit's first unlock); once woken, the sudog in param names the
 * case that won, and the others are dequeued under the locks again. */
static enum sel_result select_block(sel_t *s, gort_g_t *gp, int *casi, bool *ok)
{
    /* Pass 2: enqueue on every channel, in lock order, and park.  Nobody
     * can claim us before the first unlock in selparkcommit. */
    int64_t t0 = 0;
    bool prof = atomic_load_explicit(&gort__block_rate, memory_order_relaxed) > 0;
    if (unlikely(prof))
        t0 = gort__nanotime();
    gort_g_t *self = gp ? gp : gort__foreign_g(); /* what we queue */
    atomic_store_explicit(&self->selectdone, false, memory_order_relaxed);
    gort_sudog_t **nextp = &self->waiting;
    for (int32_t k = 0; k < s->norder; k++) {
        int32_t i = s->lockorder[k];
        gort_case *cs = &s->cases[i];
        gort_sudog_t *sg = gort__acquire_sudog();
        sg->g = self;
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
    self->param = NULL;
    gort__park(selparkcommit, NULL, WR_SELECT);

    /* Pass 3: we were claimed through the sudog in param. */
    gort_sudog_t *won = self->param;
    self->param = NULL;
    sellock(s);
    int64_t rtime = 0;
    gort_sudog_t *sglist = self->waiting;
    self->waiting = NULL;
    for (int32_t k = 0; k < s->norder; k++) {
        int32_t i = s->lockorder[k];
        gort_case *cs = &s->cases[i];
        if (sglist == won) {
            *casi = i;
            *ok = won->success;
            rtime = won->releasetime;
        } else {
            gort__waitq_remove(cs->op == GORT_SEND ? &cs->ch->sendq : &cs->ch->recvq, sglist);
        }
        gort_sudog_t *next = sglist->waitlink;
        sglist->waitlink = NULL;
        gort__release_sudog(sglist);
        sglist = next;
    }
    selunlock(s);
    if (unlikely(*casi < 0))
        gort__throw("select: woken by a sudog that is not ours");
    if (unlikely(rtime > 0) && gort__hooks.prof_block)
        gort__hooks.prof_block(t0, rtime, 2);
    if (s->cases[*casi].op == GORT_SEND && !*ok)
        return SEL_SEND_CLOSED;
    return SEL_CHOSEN;
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
    bool ok = false;
    if (norder == 0) {
        if (!block)
            goto out;
        gort__block_forever(WR_SELECT);
    }

    /* Pass 1: poll. */
    sellock(&s);
    enum sel_result r = select_poll(&s, pollorder, &casi, &ok);
    if (r == SEL_NONE) {
        if (!block) {
            selunlock(&s);
            goto out;
        }
        r = select_block(&s, gp, &casi, &ok);
    }
    if (r == SEL_SEND_CLOSED)
        goto sclose;

out:
    if (casi >= 0)
        cases[casi].ok = ok;
    if (pollorder != stackbuf)
        free(pollorder);
    gort__rt_leave_preempt(gp);
    return casi;

sclose:
    if (pollorder != stackbuf)
        free(pollorder);
    gort__rt_leave(gp);
    gort__panic_str("send on closed channel");
}
