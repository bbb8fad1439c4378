/*
 * runq.c: the per-P local run queues and the global run queue.
 *
 * The local queue is a fixed ring of GORT_RUNQ_SIZE slots with a single
 * producer (the P's owner) and many consumers (the owner and stealers), as
 * Go's runq:
 *   - only the owner writes tail, with release order after filling a slot;
 *   - consumers claim slots by CAS on head, with release order, after
 *     reading them: a slot read before a successful CAS is valid because the
 *     owner cannot overwrite it until head has moved past it;
 *   - slots are relaxed atomics so that the racy read of a slot that is
 *     about to be overwritten (and whose CAS will then fail) is not a data
 *     race in C11 terms.
 * runnext holds the goroutine readied most recently by the running one: it
 * runs next and inherits the time slice, so a pair of goroutines talking
 * over a channel stay on one P.  Stealers take runnext only after a short
 * sleep, and only from a P that is not about to schedule it.
 *
 * When the ring is full, half of it plus the new G moves to the global queue
 * in one batch (runqputslow), so the global lock is taken once per
 * GORT_RUNQ_SIZE/2 goroutines at most.  The global queue is a growable
 * ring of pointers under sched.lock; every 61st schedule looks there first
 * so nothing in it starves (schedule in sched.c).
 */
#include "runtime.h"

#include <stdlib.h>
#include <time.h>

#define RQ GORT_RUNQ_SIZE

static inline uint32_t load_acq(_Atomic uint32_t *p) { return atomic_load_explicit(p, memory_order_acquire); }

bool gort__runqempty(gort_p_t *pp)
{
    /* Read head, tail, runnext, then tail again: if tail moved while we
     * looked at runnext, a G may have been moved from runnext to the ring
     * under us (runqput kicking the old runnext). */
    for (;;) {
        uint32_t head = load_acq(&pp->runqhead);
        uint32_t tail = load_acq(&pp->runqtail);
        gort_g_t *next = atomic_load_explicit(&pp->runnext, memory_order_acquire);
        gort_g_t *ib = atomic_load_explicit(&pp->inbox, memory_order_acquire);
        if (tail == load_acq(&pp->runqtail))
            return head == tail && next == NULL && ib == NULL;
    }
}

uint32_t gort__runqlen(gort_p_t *pp)
{
    uint32_t head = load_acq(&pp->runqhead);
    uint32_t tail = load_acq(&pp->runqtail);
    return tail - head + (atomic_load_explicit(&pp->runnext, memory_order_relaxed) != NULL) +
           (atomic_load_explicit(&pp->inbox, memory_order_relaxed) != NULL);
}

gort_g_t *gort__inbox_take(gort_p_t *pp)
{
    return atomic_exchange_explicit(&pp->inbox, NULL, memory_order_acquire);
}

static void globrunqputarray(gort_g_t *const *gs, int32_t n);

/* Moves half the local queue plus gp to the global queue.  Fails (returns
 * false) if a stealer moved head meanwhile; the caller retries. */
static bool runqputslow(gort_p_t *pp, gort_g_t *gp, uint32_t head, uint32_t tail)
{
    gort_g_t *batch[RQ / 2 + 1];
    uint32_t n = (tail - head) / 2;
    if (n != RQ / 2)
        gort__throw("runqputslow: queue is not full");
    for (uint32_t i = 0; i < n; i++)
        batch[i] = atomic_load_explicit(&pp->runq[(head + i) % RQ], memory_order_relaxed);
    if (!atomic_compare_exchange_strong_explicit(&pp->runqhead, &head, head + n,
                                                 memory_order_release, memory_order_relaxed))
        return false;
    batch[n] = gp;
    if (gort__settings.randomize) {
        for (uint32_t i = 1; i <= n; i++) {
            uint32_t j = gort__fastrandn(i + 1);
            gort_g_t *t = batch[i];
            batch[i] = batch[j];
            batch[j] = t;
        }
    }
    gort__lock(&gort__sched.lock);
    globrunqputarray(batch, (int32_t)(n + 1));
    gort__unlock(&gort__sched.lock);
    return true;
}

static void runqput_ring(gort_p_t *pp, gort_g_t *gp);

void gort__runqput_slow(gort_p_t *pp, gort_g_t *gp, bool next)
{
    if (gort__settings.randomize && next && gort__fastrandn(2) == 0)
        next = false;
    if (next) {
        /* A goroutine another P sent home waits in the inbox only until
         * we ready one ourselves, as it would in runnext: then it goes
         * behind the queue (where any P may steal it at once). */
        if (atomic_load_explicit(&pp->inbox, memory_order_relaxed)) {
            gort_g_t *ib = gort__inbox_take(pp);
            if (ib)
                runqput_ring(pp, ib);
        }
        gort_g_t *old;
        if (pp->solo) {
            old = atomic_load_explicit(&pp->runnext, memory_order_relaxed);
            atomic_store_explicit(&pp->runnext, gp, memory_order_release);
        } else {
            /* Exchange, not a plain store: a stealer may take the old one. */
            old = atomic_exchange_explicit(&pp->runnext, gp, memory_order_acq_rel);
        }
        if (old == NULL)
            return;
        gp = old; /* kick the old runnext to the ring */
    }
    runqput_ring(pp, gp);
}

static void runqput_ring(gort_p_t *pp, gort_g_t *gp)
{
    for (;;) {
        uint32_t head = load_acq(&pp->runqhead);
        uint32_t tail = atomic_load_explicit(&pp->runqtail, memory_order_relaxed);
        if (tail - head < RQ) {
            atomic_store_explicit(&pp->runq[tail % RQ], gp, memory_order_relaxed);
            atomic_store_explicit(&pp->runqtail, tail + 1, memory_order_release);
            return;
        }
        if (runqputslow(pp, gp, head, tail))
            return;
    }
}

gort_g_t *gort__runqget_slow(gort_p_t *pp, bool *inherit)
{
    gort_g_t *next = atomic_load_explicit(&pp->runnext, memory_order_relaxed);
    if (next && atomic_compare_exchange_strong_explicit(&pp->runnext, &next, NULL,
                                                        memory_order_acquire, memory_order_relaxed)) {
        *inherit = true;
        return next;
    }
    if (atomic_load_explicit(&pp->inbox, memory_order_relaxed) && (next = gort__inbox_take(pp)) != NULL) {
        *inherit = false;
        return next;
    }
    for (;;) {
        uint32_t head = load_acq(&pp->runqhead);
        uint32_t tail = atomic_load_explicit(&pp->runqtail, memory_order_relaxed);
        if (tail == head)
            return NULL;
        gort_g_t *gp = atomic_load_explicit(&pp->runq[head % RQ], memory_order_relaxed);
        if (pp->solo) {
            atomic_store_explicit(&pp->runqhead, head + 1, memory_order_release);
            *inherit = false;
            return gp;
        }
        if (atomic_compare_exchange_weak_explicit(&pp->runqhead, &head, head + 1,
                                                  memory_order_release, memory_order_relaxed)) {
            *inherit = false;
            return gp;
        }
    }
}

/* Owner of a stopped P (procresize) takes everything. */
int gort__runqdrain(gort_p_t *pp, gort_g_t **out, int max)
{
    int n = 0;
    gort_g_t *next = atomic_exchange_explicit(&pp->runnext, NULL, memory_order_acquire);
    if (next && n < max)
        out[n++] = next;
    next = gort__inbox_take(pp);
    if (next && n < max)
        out[n++] = next;
    bool inh;
    gort_g_t *gp;
    while (n < max && (gp = gort__runqget(pp, &inh)) != NULL)
        out[n++] = gp;
    return n;
}

/* Grabs about half of victim's queue into batch[batchhead..].  Returns how
 * many it took. */
static uint32_t runqgrab(gort_p_t *victim, _Atomic(gort_g_t *) *batch, uint32_t batchhead,
                         bool steal_runnext)
{
    for (;;) {
        uint32_t head = load_acq(&victim->runqhead);
        uint32_t tail = load_acq(&victim->runqtail);
        uint32_t n = tail - head;
        n = n - n / 2;
        if (n == 0) {
            if (!steal_runnext)
                return 0;
            gort_g_t *next = atomic_load_explicit(&victim->runnext, memory_order_acquire);
            if (next == NULL && atomic_load_explicit(&victim->inbox, memory_order_relaxed) == NULL)
                return 0;
            /* A running victim is likely about to schedule its runnext
             * (a goroutine it just readied): the caller gave it a moment
             * first and asks only if it did not switch meanwhile
             * (steal_work, sched.c). */
            /* The inbox (a goroutine sent home by another P) waits like
             * runnext: the victim runs it at its next switch. */
            if (atomic_load_explicit(&victim->inbox, memory_order_relaxed) &&
                (next = gort__inbox_take(victim)) != NULL) {
                atomic_store_explicit(&batch[batchhead % RQ], next, memory_order_relaxed);
                return 1;
            }
            if (next == NULL)
                return 0;
            if (!atomic_compare_exchange_strong_explicit(&victim->runnext, &next, NULL,
                                                         memory_order_acquire, memory_order_relaxed))
                continue;
            atomic_store_explicit(&batch[batchhead % RQ], next, memory_order_relaxed);
            return 1;
        }
        if (n > RQ / 2)
            continue; /* inconsistent head/tail snapshot */
        for (uint32_t i = 0; i < n; i++) {
            gort_g_t *g = atomic_load_explicit(&victim->runq[(head + i) % RQ], memory_order_relaxed);
            atomic_store_explicit(&batch[(batchhead + i) % RQ], g, memory_order_relaxed);
        }
        if (atomic_compare_exchange_strong_explicit(&victim->runqhead, &head, head + n,
                                                    memory_order_release, memory_order_relaxed))
            return n;
    }
}

bool gort__runq_has_next(gort_p_t *victim)
{
    return atomic_load_explicit(&victim->runnext, memory_order_relaxed) != NULL ||
           atomic_load_explicit(&victim->inbox, memory_order_relaxed) != NULL;
}

gort_g_t *gort__runqsteal(gort_p_t *pp, gort_p_t *victim, bool steal_runnext)
{
    uint32_t tail = atomic_load_explicit(&pp->runqtail, memory_order_relaxed);
    uint32_t n = runqgrab(victim, pp->runq, tail, steal_runnext);
    if (n == 0)
        return NULL;
    atomic_fetch_add_explicit(&pp->stats.steals, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&pp->stats.stolen, n, memory_order_relaxed);
    n--;
    gort_g_t *gp = atomic_load_explicit(&pp->runq[(tail + n) % RQ], memory_order_relaxed);
    if (n == 0)
        return gp;
    uint32_t head = load_acq(&pp->runqhead);
    if (tail - head + n >= RQ)
        gort__throw("runqsteal: runq overflow");
    atomic_store_explicit(&pp->runqtail, tail + n, memory_order_release);
    return gp;
}

/* ---- global run queue: sched.lock held ----
 *
 * A growable ring of pointers, not a list through g->schedlink: taking a
 * batch walked the list under sched.lock, one dependent cache miss per G
 * (each last written by the CPU that queued it), and at 2 procs the spawn
 * bench spent a fifth of its time in that walk. */

static inline gort_g_t **gq_slot(uint32_t i) { return &gort__sched.gq[i & (gort__sched.gqcap - 1)]; }

static void gq_reserve(uint32_t more)
{
    uint32_t len = (uint32_t)atomic_load_explicit(&gort__sched.runqsize, memory_order_relaxed);
    if (len + more <= gort__sched.gqcap)
        return;
    uint32_t cap = gort__sched.gqcap ? gort__sched.gqcap : 1024;
    while (cap < len + more) {
        if (cap >= (1u << 30))
            gort__throw("global run queue: too many runnable goroutines");
        cap *= 2;
    }
    gort_g_t **q = malloc(cap * sizeof *q);
    if (!q)
        gort__throw("out of memory growing the global run queue");
    for (uint32_t i = 0; i < len; i++)
        q[i] = *gq_slot(gort__sched.gqhead + i);
    free(gort__sched.gq);
    gort__sched.gq = q;
    gort__sched.gqcap = cap;
    gort__sched.gqhead = 0;
}

static inline void gq_added(int32_t n)
{
    atomic_fetch_add_explicit(&gort__sched.runqsize, n, memory_order_relaxed);
}

void gort__globrunqput(gort_g_t *gp)
{
    ASSERT_HELD(&gort__sched.lock);
    gq_reserve(1);
    uint32_t len = (uint32_t)atomic_load_explicit(&gort__sched.runqsize, memory_order_relaxed);
    *gq_slot(gort__sched.gqhead + len) = gp;
    gq_added(1);
}

void gort__globrunqputhead(gort_g_t *gp)
{
    ASSERT_HELD(&gort__sched.lock);
    gq_reserve(1);
    gort__sched.gqhead--;
    *gq_slot(gort__sched.gqhead) = gp;
    gq_added(1);
}

static void globrunqputarray(gort_g_t *const *gs, int32_t n)
{
    ASSERT_HELD(&gort__sched.lock);
    gq_reserve((uint32_t)n);
    uint32_t len = (uint32_t)atomic_load_explicit(&gort__sched.runqsize, memory_order_relaxed);
    for (int32_t i = 0; i < n; i++)
        *gq_slot(gort__sched.gqhead + len + (uint32_t)i) = gs[i];
    gq_added(n);
}

void gort__globrunqputbatch(gort_g_t *head, int32_t n)
{
    ASSERT_HELD(&gort__sched.lock);
    gq_reserve((uint32_t)n);
    uint32_t len = (uint32_t)atomic_load_explicit(&gort__sched.runqsize, memory_order_relaxed);
    gort_g_t *g = head;
    for (int32_t i = 0; i < n; i++, g = g->schedlink)
        *gq_slot(gort__sched.gqhead + len + (uint32_t)i) = g;
    gq_added(n);
}

gort_g_t *gort__globrunqpop(void)
{
    ASSERT_HELD(&gort__sched.lock);
    if (atomic_load_explicit(&gort__sched.runqsize, memory_order_relaxed) == 0)
        return NULL;
    gort_g_t *gp = *gq_slot(gort__sched.gqhead++);
    atomic_fetch_sub_explicit(&gort__sched.runqsize, 1, memory_order_relaxed);
    return gp;
}

/* Takes a fair share of the global queue: one G to run, and up to max-1
 * (bounded by half the local ring) onto pp's local queue. */
gort_g_t *gort__globrunqget(gort_p_t *pp, int32_t max)
{
    ASSERT_HELD(&gort__sched.lock);
    int32_t size = atomic_load_explicit(&gort__sched.runqsize, memory_order_relaxed);
    if (size == 0)
        return NULL;
    int32_t procs = atomic_load_explicit(&gort__gomaxprocs, memory_order_relaxed);
    int32_t n = size / procs + 1;
    if (n > size)
        n = size;
    if (max > 0 && n > max)
        n = max;
    if (n > RQ / 2)
        n = RQ / 2;
    atomic_fetch_sub_explicit(&gort__sched.runqsize, n, memory_order_relaxed);
    gort_g_t *gp = *gq_slot(gort__sched.gqhead++);
    while (--n > 0)
        gort__runqput(pp, *gq_slot(gort__sched.gqhead++), false);
    atomic_fetch_add_explicit(&pp->stats.globgets, 1, memory_order_relaxed);
    return gp;
}
