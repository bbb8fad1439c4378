/*
 * timer_test.c: the per-P timer heaps, driven through the internal API
 * from inside the runtime: many timers fire once each, in deadline order;
 * deleted timers never fire; modified timers fire at their new time.
 */
#include <stdio.h>
#include <stdlib.h>

#include "runtime.h"
#include "test.h"

#define NT 2000

typedef struct {
    gort__timer_t t;
    int idx;
    _Atomic int fired;
} tt_t;

static tt_t timers[NT];
static _Atomic int order[NT];
static _Atomic int norder;

static void tt_fire(void *arg, uintptr_t seq, int64_t delta)
{
    (void)seq;
    (void)delta;
    tt_t *t = arg;
    atomic_fetch_add(&t->fired, 1);
    order[atomic_fetch_add(&norder, 1)] = t->idx;
}

static int stopped_fired, total_fired, inversions, modded_late;
static void heap_body(void *a)
{
    (void)a;
    atomic_store(&norder, 0);
    int64_t base = gort__nanotime() + 5000000;
    uint32_t r = 7;
    for (int i = 0; i < NT; i++) {
        r = r * 1664525 + 1013904223;
        timers[i] = (tt_t){0};
        timers[i].idx = i;
        timers[i].t.f = tt_fire;
        timers[i].t.arg = &timers[i];
        timers[i].t.idx = -1;
        /* Distinct deadlines, in random insertion order. */
        timers[i].t.when = base + (int64_t)(r % 50) * 1000000 + i;
    }
    for (int i = 0; i < NT; i++)
        gort__timer_add(&timers[i].t);
    /* Stop every 7th; move every 11th to the very end. */
    for (int i = 0; i < NT; i += 7)
        CU_ASSERT_TRUE(gort__timer_del(&timers[i].t));
    for (int i = 0; i < NT; i += 11)
        if (i % 7)
            gort__timer_mod(&timers[i].t, base + 60000000 + i, 0);
    gort_sleep(80000000);
    stopped_fired = total_fired = inversions = modded_late = 0;
    for (int i = 0; i < NT; i++) {
        int f = atomic_load(&timers[i].fired);
        total_fired += f;
        if (i % 7 == 0)
            stopped_fired += f;
    }
    int n = atomic_load(&norder);
    for (int k = 1; k < n; k++) {
        int64_t wa = timers[order[k - 1]].t.when, wb = timers[order[k]].t.when;
        inversions += wb < wa;
    }
    /* The moved ones fire last. */
    int expect_moved = 0;
    for (int i = 0; i < NT; i += 11)
        expect_moved += (i % 7) != 0;
    for (int k = n - expect_moved; k < n; k++)
        modded_late += (order[k] % 11) == 0;
    modded_late -= expect_moved;
}

static void test_heap_order(void)
{
    int old = gort_maxprocs(1);
    GT_RUN(heap_body, NULL);
    gort_maxprocs(old);
    int expect = NT - (NT + 6) / 7;
    CU_ASSERT_EQUAL(stopped_fired, 0);
    CU_ASSERT_EQUAL(total_fired, expect);
    CU_ASSERT_EQUAL(inversions, 0);
    CU_ASSERT_EQUAL(modded_late, 0);
}

/* Stops from another P mark the timer instead of locking that P's heap
 * (gort__timers_marked counts them), and a stopped timer still never
 * delivers.  The stopper spins on one P while the main goroutine makes
 * timers on the other, half of 0-2 ms, half of 100 ms (a yield to the global queue puts them
 * on different Ps), then stops them all as they fire; every one that Stop
 * says it stopped must leave its channel empty; all are freed (ASan: the
 * heap holding a marked timer gives it up before its memory goes). */
#define XN 2000
static gort_timer *xt[XN];
static bool xstopped[XN];
static _Atomic int xs_running, xs_go;
static int xlate;
static uint64_t xmarked;

static void x_stopper(void *a)
{
    gort_waitgroup *done = a;
    atomic_store(&xs_running, 1);
    while (!atomic_load(&xs_go))
        gort__cpu_relax();
    for (int i = 0; i < XN; i++)
        xstopped[i] = gort_timer_stop(xt[i]);
    gort_wg_done(done);
}

static void cross_body(void *a)
{
    (void)a;
    int old = gort_maxprocs(2);
    uint64_t m0 = atomic_load(&gort__timers_marked);
    gort_waitgroup done = {0};
    gort_wg_add(&done, 1);
    gort_go(x_stopper, &done);
    while (!atomic_load(&xs_running))
        gort_yield();
    for (int i = 0; i < XN; i++)
        xt[i] = gort_timer_new(i % 2 ? 100 * 1000 * 1000 : (int64_t)(gort__fastrand() % 2000) * 1000);
    atomic_store(&xs_go, 1);
    gort_wg_wait(&done);
    gort_sleep(3 * 1000 * 1000); /* past every short deadline */
    for (int i = 0; i < XN; i++) {
        int64_t v;
        bool ok;
        if (xstopped[i] && gort_chan_tryrecv(gort_timer_chan(xt[i]), &v, &ok))
            xlate++;
        gort_timer_free(xt[i]);
    }
    xmarked = atomic_load(&gort__timers_marked) - m0;
    gort_maxprocs(old);
}

static void test_stop_marks_remote(void)
{
    GT_RUN(cross_body, NULL);
    CU_ASSERT_EQUAL(xlate, 0);
    if (xmarked == 0)
        fprintf(stderr, "\nstop_marks_remote: no stop marked a timer of another P\n");
    CU_ASSERT_TRUE(xmarked > 0);
}

GT_SUITE(timer, {"heap_order", test_heap_order}, {"stop_marks_remote", test_stop_marks_remote})
