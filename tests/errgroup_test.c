/*
 * errgroup_test.c: errgroup, and a worker pool built from it.
 *
 * The first error cancels the group's context and reaches every sibling,
 * which all return; Wait returns that error; without errors Wait returns
 * 0 and still ends the context; the limit bounds how many run at once and
 * TryGo refuses beyond it.  The worker pool (bounded queue + fixed workers)
 * shows backpressure: the queue never holds more than its capacity, the
 * producer blocks rather than buffering, at most W jobs run at once, every
 * job is done exactly once, and an error stops the producer and the
 * workers with nothing left running (leak check).
 */
#include <stdlib.h>
#include <string.h>

#include "test.h"

static _Atomic int saw_cancel, ran;

static int sibling(gort_ctx *ctx, void *arg)
{
    int i = (int)(intptr_t)arg;
    atomic_fetch_add(&ran, 1);
    if (i == 17)
        return -EIO;
    gort_chan_recv(gort_ctx_done(ctx), NULL); /* "work" until cancelled */
    if (gort_ctx_err(ctx) == GORT_CTX_CANCELED && gort_ctx_cause(ctx) == -EIO)
        atomic_fetch_add(&saw_cancel, 1);
    return i % 2 ? -EPIPE : 0; /* later errors are not the first */
}

static int eg_bad;
static void first_error_body(void *a)
{
    (void)a;
    gort_leak_mark *mark = gort_leak_mark_new();
    for (int it = 0; it < 30; it++) {
        saw_cancel = ran = 0;
        gort_errgroup *g = gort_errgroup_new(NULL);
        for (int i = 0; i < 40; i++)
            gort_errgroup_go(g, sibling, (void *)(intptr_t)i);
        int e = gort_errgroup_wait(g);
        if (e != -EIO || atomic_load(&ran) != 40 || atomic_load(&saw_cancel) != 39 ||
            gort_ctx_cause(gort_errgroup_ctx(g)) != -EIO)
            eg_bad++;
        gort_errgroup_free(g);
    }
    GT_ASSERT_NO_LEAKS(mark, 2000);
}

static void test_first_error_cancels(void)
{
    eg_bad = 0;
    GT_RUN(first_error_body, NULL);
    CU_ASSERT_EQUAL(eg_bad, 0);
}

/* ---- success, parent cancellation ---- */

static int ok_fn(gort_ctx *ctx, void *arg)
{
    (void)arg;
    return gort_ctx_err(ctx) ? -EINVAL : 0;
}
static int until_done(gort_ctx *ctx, void *arg)
{
    (void)arg;
    return gort_ctx_sleep(ctx, 3600LL * 1000000000);
}
static bool succ_ok[4];
static void success_body(void *a)
{
    (void)a;
    gort_errgroup *g = gort_errgroup_new(gort_ctx_background());
    for (int i = 0; i < 100; i++)
        gort_errgroup_go(g, ok_fn, NULL);
    succ_ok[0] = gort_errgroup_wait(g) == 0;
    succ_ok[1] = gort_ctx_err(gort_errgroup_ctx(g)) == GORT_CTX_CANCELED; /* Wait ends it */
    gort_errgroup_free(g);
    /* Cancelling the parent stops the group. */
    gort_ctx *parent = gort_ctx_with_cancel(gort_ctx_background());
    g = gort_errgroup_new(parent);
    for (int i = 0; i < 10; i++)
        gort_errgroup_go(g, until_done, NULL);
    gort_ctx_cancel(parent);
    succ_ok[2] = gort_errgroup_wait(g) == GORT_CTX_CANCELED;
    gort_errgroup_free(g);
    gort_ctx_free(parent);
    succ_ok[3] = true;
}
static void test_success_and_parent(void)
{
    GT_RUN(success_body, NULL);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_TRUE(succ_ok[i]);
}

/* ---- limit ---- */

static _Atomic int cur, maxcur;
static void note_running(int d)
{
    int n = atomic_fetch_add(&cur, d) + d;
    int m = atomic_load(&maxcur);
    while (n > m && !atomic_compare_exchange_weak(&maxcur, &m, n)) {
    }
}
static int limited(gort_ctx *ctx, void *arg)
{
    (void)ctx;
    (void)arg;
    note_running(1);
    for (int i = 0; i < 3; i++)
        gort_yield();
    note_running(-1);
    return 0;
}
static gort_chan *gate;
static int gated(gort_ctx *ctx, void *arg)
{
    (void)ctx;
    (void)arg;
    gort_chan_recv(gate, NULL);
    return 0;
}
static int lim_max, lim_try_full, lim_try_after;
static void limit_body(void *a)
{
    (void)a;
    cur = maxcur = 0;
    gort_errgroup *g = gort_errgroup_new(NULL);
    gort_errgroup_set_limit(g, 4);
    for (int i = 0; i < 500; i++)
        gort_errgroup_go(g, limited, NULL);
    gort_errgroup_wait(g);
    lim_max = atomic_load(&maxcur);
    gort_errgroup_free(g);

    gate = gort_chan_make(0, 0);
    g = gort_errgroup_new(NULL);
    gort_errgroup_set_limit(g, 2);
    int started = 0;
    for (int i = 0; i < 5; i++)
        started += gort_errgroup_trygo(g, gated, NULL);
    lim_try_full = started;
    gort_chan_close(gate);
    gort_errgroup_wait(g);
    lim_try_after = gort_errgroup_trygo(g, ok_fn, NULL);
    gort_errgroup_wait(g);
    gort_errgroup_free(g);
    gort_chan_free(gate);
}
static void test_limit(void)
{
    GT_RUN(limit_body, NULL);
    CU_ASSERT_TRUE(lim_max >= 1 && lim_max <= 4);
    CU_ASSERT_EQUAL(lim_try_full, 2);
    CU_ASSERT_TRUE(lim_try_after);
}

/* ---- a worker pool with backpressure ---- */

#define QCAP 8
#define WORKERS 4

typedef struct pool {
    gort_chan *jobs;      /* bounded queue: the backpressure */
    _Atomic long sum;
    _Atomic int done_count;
    _Atomic int max_queue;
    int fail_at;          /* job that fails; -1: none */
    int njobs;
    int produced;
    unsigned char *seen;
} pool_t;

static int producer(gort_ctx *ctx, void *arg)
{
    pool_t *p = arg;
    for (int i = 0; i < p->njobs; i++) {
        gort_case cs[2] = {{p->jobs, GORT_SEND, &i, false}, {gort_ctx_done(ctx), GORT_RECV, NULL, false}};
        if (gort_select(cs, 2, true) == 1)
            break; /* stopped: a worker failed */
        p->produced++;
        int q = (int)gort_chan_len(p->jobs);
        int m = atomic_load(&p->max_queue);
        while (q > m && !atomic_compare_exchange_weak(&p->max_queue, &m, q)) {
        }
    }
    gort_chan_close(p->jobs);
    return 0;
}

static int worker(gort_ctx *ctx, void *arg)
{
    pool_t *p = arg;
    int job;
    while (gort_chan_recv(p->jobs, &job)) {
        if (gort_ctx_err(ctx))
            continue; /* drain without working */
        note_running(1);
        if (job == p->fail_at) {
            note_running(-1);
            return -EIO;
        }
        if (job % 7 == 0)
            gort_yield();
        p->seen[job]++;
        atomic_fetch_add(&p->sum, job);
        atomic_fetch_add(&p->done_count, 1);
        note_running(-1);
    }
    return 0;
}

static int run_pool(pool_t *p)
{
    p->jobs = gort_chan_make(sizeof(int), QCAP);
    p->seen = calloc((size_t)p->njobs, 1);
    gort_errgroup *g = gort_errgroup_new(NULL);
    gort_errgroup_go(g, producer, p);
    for (int w = 0; w < WORKERS; w++)
        gort_errgroup_go(g, worker, p);
    int e = gort_errgroup_wait(g);
    gort_errgroup_free(g);
    gort_chan_free(p->jobs);
    return e;
}

static int pool_bad;
static void pool_body(void *a)
{
    (void)a;
    gort_leak_mark *mark = gort_leak_mark_new();
    for (int it = 0; it < 10; it++) {
        cur = maxcur = 0;
        pool_t p = {.fail_at = -1, .njobs = 5000};
        int e = run_pool(&p);
        long want = (long)p.njobs * (p.njobs - 1) / 2;
        bool once = true;
        for (int i = 0; i < p.njobs; i++)
            once &= p.seen[i] == 1;
        if (e || p.sum != want || p.done_count != p.njobs || !once || p.max_queue > QCAP || maxcur > WORKERS)
            pool_bad++;
        free(p.seen);

        pool_t f = {.fail_at = 1000, .njobs = 1000000};
        e = run_pool(&f);
        /* The producer stopped soon after the failure: the queue bounded
         * how far ahead it could get. */
        if (e != -EIO || f.produced >= f.njobs || f.max_queue > QCAP)
            pool_bad++;
        free(f.seen);
    }
    GT_ASSERT_NO_LEAKS(mark, 2000);
}
static void test_worker_pool(void)
{
    pool_bad = 0;
    GT_RUN(pool_body, NULL);
    CU_ASSERT_EQUAL(pool_bad, 0);
}

GT_SUITE(errgroup, {"first_error_cancels", test_first_error_cancels},
         {"success_and_parent", test_success_and_parent}, {"limit", test_limit},
         {"worker_pool", test_worker_pool})
