/*
 * panic_test.c: defer, panic and recover.
 *
 * Deferred calls run LIFO on return (entry frame and gort_call frames) and
 * on panic; recover stops a panic raised three frames down and execution
 * continues after the deferring frame; only a direct call from a deferred
 * call recovers; a panic inside a deferred call replaces the first; the
 * runtime's own panics (close of a closed channel, send on one, negative
 * WaitGroup counter) are recoverable; an unrecovered panic prints
 * "panic: MSG" and a dump and exits 2 (a child process), and a fatal error
 * is not recoverable.  Many goroutines at once, many iterations each:
 * frames and panic records live on goroutine stacks that migrate between
 * threads.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

/* A per-goroutine trace of events, as small ints.  Deferred calls run
 * after the function that registered them has returned, so their
 * arguments live here, not in that function's locals. */
typedef struct trace trace_t;
typedef struct dctx {
    trace_t *t;
    int ev;
} dctx_t;
struct trace {
    int ev[32];
    int n;
    const char *recovered;
    char msg[64];
    dctx_t d[4];
};

static void push(trace_t *t, int e)
{
    if (t->n < 32)
        t->ev[t->n++] = e;
}

static void d_push(void *a)
{
    dctx_t *d = a;
    push(d->t, d->ev);
}

static void d_recover(void *a)
{
    trace_t *t = a;
    const char *m = gort_recover();
    t->recovered = m;
    if (m)
        snprintf(t->msg, sizeof t->msg, "%s", m);
    push(t, 100);
}

/* ---- order on return ---- */

static _Atomic int bad;
static gort_waitgroup wg;

static void frame_body(void *a)
{
    trace_t *t = a;
    for (int i = 0; i < 3; i++) {
        t->d[i] = (dctx_t){t, 11 + i};
        gort_defer(d_push, &t->d[i]);
    }
    push(t, 10);
    gort_yield(); /* migrate, maybe */
}

static void done_defer(void *a)
{
    (void)a;
    gort_wg_done(&wg);
}

static void order_g(void *a)
{
    (void)a;
    gort_defer(done_defer, NULL); /* registered first: runs last */
    for (int it = 0; it < 50; it++) {
        trace_t t = {0};
        bool ok = gort_call(frame_body, &t);
        push(&t, 20); /* after the frame: its defers already ran */
        static const int want[] = {10, 13, 12, 11, 20};
        if (!ok || t.n != 5 || memcmp(t.ev, want, sizeof want) != 0)
            atomic_fetch_add(&bad, 1);
    }
}

static void order_body(void *a)
{
    (void)a;
    bad = 0;
    for (int i = 0; i < 64; i++) {
        gort_wg_add(&wg, 1);
        gort_go(order_g, NULL);
    }
    gort_wg_wait(&wg);
}

static void test_defer_order_return(void)
{
    GT_RUN(order_body, NULL);
    CU_ASSERT_EQUAL(atomic_load(&bad), 0);
}

/* Entry frame: defers run when the goroutine's function returns. */
static trace_t entry_traces[32];
static void entry_g(void *a)
{
    trace_t *t = a;
    /* The entry frame's defers run after entry_g returns: their arguments
     * cannot live in its locals. */
    static dctx_t ds[32][2];
    int k = (int)(t - entry_traces);
    ds[k][0] = (dctx_t){t, 1};
    ds[k][1] = (dctx_t){t, 2};
    gort_defer(done_defer, NULL);
    gort_defer(d_push, &ds[k][0]);
    gort_defer(d_push, &ds[k][1]);
    push(t, 0);
}

static void entry_body(void *a)
{
    (void)a;
    for (int i = 0; i < 32; i++) {
        memset(&entry_traces[i], 0, sizeof entry_traces[i]);
        gort_wg_add(&wg, 1);
        gort_go(entry_g, &entry_traces[i]);
    }
    gort_wg_wait(&wg);
}

static void test_defer_order_entry(void)
{
    GT_RUN(entry_body, NULL);
    for (int i = 0; i < 32; i++) {
        CU_ASSERT_EQUAL(entry_traces[i].n, 3);
        CU_ASSERT_EQUAL(entry_traces[i].ev[0], 0);
        CU_ASSERT_EQUAL(entry_traces[i].ev[1], 2);
        CU_ASSERT_EQUAL(entry_traces[i].ev[2], 1);
    }
}

/* ---- recover three frames down ---- */

static volatile int after_panic_ran;

__attribute__((noinline)) static void level3(trace_t *t, int v)
{
    push(t, 3);
    gort_yield();
    gort_panic("boom %d", v);
}
__attribute__((noinline)) static void level2(trace_t *t, int v)
{
    push(t, 2);
    level3(t, v);
    after_panic_ran = 1;
}
__attribute__((noinline)) static void level1(trace_t *t, int v)
{
    push(t, 1);
    level2(t, v);
    after_panic_ran = 1;
}

typedef struct rarg {
    trace_t *t;
    int v;
} rarg_t;

static void deferring(void *a)
{
    rarg_t *r = a;
    r->t->d[0] = (dctx_t){r->t, 51};
    r->t->d[1] = (dctx_t){r->t, 52};
    gort_defer(d_recover, r->t); /* first: runs last, after 52 and 51 */
    gort_defer(d_push, &r->t->d[0]);
    gort_defer(d_push, &r->t->d[1]);
    level1(r->t, r->v);
    after_panic_ran = 1;
}

static void recover_g(void *a)
{
    int base = (int)(intptr_t)a;
    gort_defer(done_defer, NULL);
    for (int it = 0; it < 100; it++) {
        trace_t t = {0};
        rarg_t r = {&t, base * 1000 + it};
        bool ok = gort_call(deferring, &r);
        push(&t, 200); /* the goroutine continues after the deferring frame */
        char want_msg[64];
        snprintf(want_msg, sizeof want_msg, "boom %d", r.v);
        static const int want[] = {1, 2, 3, 52, 51, 100, 200};
        if (ok || !t.recovered || strcmp(t.msg, want_msg) != 0 || strcmp(t.recovered, want_msg) != 0 ||
            t.n != 7 || memcmp(t.ev, want, sizeof want) != 0 || gort_recover() != NULL || gort_panicking())
            atomic_fetch_add(&bad, 1);
    }
}

static void recover_body(void *a)
{
    (void)a;
    bad = 0;
    after_panic_ran = 0;
    for (int i = 0; i < 32; i++) {
        gort_wg_add(&wg, 1);
        gort_go(recover_g, (void *)(intptr_t)i);
    }
    gort_wg_wait(&wg);
}

static void test_recover_three_down(void)
{
    GT_RUN(recover_body, NULL);
    CU_ASSERT_EQUAL(atomic_load(&bad), 0);
    CU_ASSERT_EQUAL(after_panic_ran, 0);
}

/* Recovering in the entry frame ends the goroutine normally; its other
 * entry-frame defers still run. */
static _Atomic int entry_recovered, entry_after;
static void d_recover_count(void *a)
{
    (void)a;
    if (gort_recover())
        atomic_fetch_add(&entry_recovered, 1);
}
static void entry_panic_g(void *a)
{
    (void)a;
    gort_defer(done_defer, NULL);
    gort_defer(d_recover_count, NULL);
    gort_panic("entry %d", 1);
}
static void entry_panic_body(void *a)
{
    (void)a;
    int n0 = gort_numgoroutine();
    for (int i = 0; i < 200; i++) {
        gort_wg_add(&wg, 1);
        gort_go(entry_panic_g, NULL);
    }
    gort_wg_wait(&wg);
    atomic_store(&entry_after, gt_settle_goroutines(n0, 2000) == n0);
}
static void test_recover_entry_frame(void)
{
    entry_recovered = 0;
    GT_RUN(entry_panic_body, NULL);
    CU_ASSERT_EQUAL(atomic_load(&entry_recovered), 200);
    CU_ASSERT_TRUE(atomic_load(&entry_after));
}

/* ---- only a direct call recovers; nested panics ---- */

static void nested_recover_fn(void *a)
{
    trace_t *t = a;
    if (gort_recover()) /* inside a frame nested in the deferred call: no */
        push(t, 99);
    push(t, 7);
}
static void d_nested(void *a) { gort_call(nested_recover_fn, a); }
static void nested_body_fn(void *a)
{
    trace_t *t = a;
    gort_defer(d_recover, t);
    gort_defer(d_nested, t);
    gort_panic("outer");
}
static void d_panics(void *a)
{
    (void)a;
    gort_panic("second");
}
static void replace_fn(void *a)
{
    trace_t *t = a;
    gort_defer(d_recover, t);
    gort_defer(d_panics, t);
    gort_panic("first");
}
/* A panic recovered inside a deferred call does not stop the outer one. */
static void inner_fn(void *a)
{
    (void)a;
    gort_defer(d_recover_count, NULL);
    gort_panic("inner");
}
static void d_inner(void *a)
{
    trace_t *t = a;
    push(t, gort_call(inner_fn, NULL) ? 1 : 0);
    push(t, gort_panicking() ? 8 : 9);
}
static void inner_outer_fn(void *a)
{
    trace_t *t = a;
    gort_defer(d_recover, t);
    gort_defer(d_inner, t);
    gort_panic("outer2");
}

static trace_t tn, tr, tio;
static bool nested_ok, replace_ok, io_ok;
static void nested_body(void *a)
{
    (void)a;
    memset(&tn, 0, sizeof tn);
    memset(&tr, 0, sizeof tr);
    memset(&tio, 0, sizeof tio);
    nested_ok = !gort_call(nested_body_fn, &tn);
    replace_ok = !gort_call(replace_fn, &tr);
    io_ok = !gort_call(inner_outer_fn, &tio);
}
static void test_recover_rules(void)
{
    entry_recovered = 0;
    GT_RUN(nested_body, NULL);
    CU_ASSERT_TRUE(nested_ok);
    CU_ASSERT_STRING_EQUAL(tn.msg, "outer");
    CU_ASSERT_EQUAL(tn.n, 2);
    CU_ASSERT_EQUAL(tn.ev[0], 7);
    CU_ASSERT_EQUAL(tn.ev[1], 100);
    CU_ASSERT_TRUE(replace_ok);
    CU_ASSERT_STRING_EQUAL(tr.msg, "second");
    CU_ASSERT_TRUE(io_ok);
    CU_ASSERT_STRING_EQUAL(tio.msg, "outer2");
    CU_ASSERT_EQUAL(atomic_load(&entry_recovered), 1);
    CU_ASSERT_EQUAL(tio.n, 3);
    CU_ASSERT_EQUAL(tio.ev[0], 0); /* inner gort_call ended by a recovered panic */
    CU_ASSERT_EQUAL(tio.ev[1], 8); /* the outer panic still in progress */
}

/* ---- runtime panics ---- */

static void close_twice(void *a)
{
    trace_t *t = a;
    gort_defer(d_recover, t);
    gort_chan *c = gort_chan_make(sizeof(int), 1);
    gort_defer((void (*)(void *))gort_chan_free, c);
    gort_chan_close(c);
    gort_chan_close(c);
    push(t, 1); /* not reached */
}
static void send_closed(void *a)
{
    trace_t *t = a;
    gort_defer(d_recover, t);
    gort_chan *c = gort_chan_make(sizeof(int), 0);
    gort_defer((void (*)(void *))gort_chan_free, c);
    gort_chan_close(c);
    int v = 1;
    gort_chan_send(c, &v);
}
static void wg_negative(void *a)
{
    trace_t *t = a;
    gort_defer(d_recover, t);
    gort_waitgroup w = {0};
    gort_wg_done(&w);
}
static _Atomic int rt_bad;
static void runtime_g(void *a)
{
    (void)a;
    gort_defer(done_defer, NULL);
    for (int i = 0; i < 100; i++) {
        trace_t t1 = {0}, t2 = {0}, t3 = {0};
        if (gort_call(close_twice, &t1) || strcmp(t1.msg, "close of closed channel") != 0 || t1.n != 1)
            atomic_fetch_add(&rt_bad, 1);
        if (gort_call(send_closed, &t2) || strcmp(t2.msg, "send on closed channel") != 0)
            atomic_fetch_add(&rt_bad, 1);
        if (gort_call(wg_negative, &t3) || strcmp(t3.msg, "sync: negative WaitGroup counter") != 0)
            atomic_fetch_add(&rt_bad, 1);
    }
}
static void runtime_body(void *a)
{
    (void)a;
    for (int i = 0; i < 8; i++) {
        gort_wg_add(&wg, 1);
        gort_go(runtime_g, NULL);
    }
    gort_wg_wait(&wg);
    /* The runtime still works: channels, sleeps, goroutines. */
    gort_sleep(1000000);
}
static void test_recover_runtime_panic(void)
{
    rt_bad = 0;
    GT_RUN(runtime_body, NULL);
    CU_ASSERT_EQUAL(atomic_load(&rt_bad), 0);
}

/* ---- unrecovered: a child process ---- */

static void say_deferred(void *a)
{
    (void)a;
    const char s[] = "deferred ran\n";
    ssize_t w = write(1, s, sizeof s - 1);
    (void)w;
}
__attribute__((noinline)) static void panicker(int v) { gort_panic("boom %d", v); }
static void unrecovered_body(void *a)
{
    (void)a;
    gort_defer(say_deferred, NULL);
    panicker(7);
}
GT_CHILD(panic_unrecovered) { gort_main(unrecovered_body, NULL); }

static void rt_unrecovered_body(void *a)
{
    (void)a;
    gort_chan *c = gort_chan_make(0, 0);
    gort_chan_close(c);
    gort_chan_close(c);
}
GT_CHILD(panic_runtime_unrecovered) { gort_main(rt_unrecovered_body, NULL); }

static void nested_unrecovered_body(void *a)
{
    (void)a;
    gort_defer(d_panics, NULL);
    gort_panic("first");
}
GT_CHILD(panic_nested_unrecovered) { gort_main(nested_unrecovered_body, NULL); }

/* A fatal error is not a panic: a deferred recover does not see it. */
static void d_recover_say(void *a)
{
    (void)a;
    if (gort_recover())
        say_deferred(NULL);
}
static void deadlock_body(void *a)
{
    (void)a;
    gort_defer(d_recover_say, NULL);
    gort_chan *c = gort_chan_make(0, 0);
    gort_chan_recv(c, NULL);
}
GT_CHILD(panic_fatal_stays_fatal) { gort_main(deadlock_body, NULL); }

static void test_unrecovered_output(void)
{
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("panic_unrecovered", NULL, 30, &r), 0);
    CU_ASSERT_TRUE(r.exited);
    CU_ASSERT_EQUAL(r.status, 2);
    CU_ASSERT_TRUE(gt_first_line_is(r.out, "deferred ran")); /* defers run before the report */
    CU_ASSERT_TRUE(gt_contains(r.out, "\npanic: boom 7\n"));
    CU_ASSERT_TRUE(gt_contains(r.out, "goroutine 1 [running]:\n"));
    CU_ASSERT_TRUE(gt_contains(r.out, "panicker"));
    gt_child_free(&r);

    CU_ASSERT_EQUAL_FATAL(gt_child_run("panic_runtime_unrecovered", NULL, 30, &r), 0);
    CU_ASSERT_TRUE(r.exited);
    CU_ASSERT_EQUAL(r.status, 2);
    CU_ASSERT_TRUE(gt_first_line_is(r.out, "panic: close of closed channel"));
    CU_ASSERT_TRUE(gt_contains(r.out, "goroutine 1 [running]:\n"));
    gt_child_free(&r);

    CU_ASSERT_EQUAL_FATAL(gt_child_run("panic_nested_unrecovered", NULL, 30, &r), 0);
    CU_ASSERT_EQUAL(r.status, 2);
    CU_ASSERT_TRUE(gt_first_line_is(r.out, "panic: first"));
    CU_ASSERT_TRUE(gt_contains(r.out, "panic: first\n\tpanic: second\n"));
    gt_child_free(&r);

    CU_ASSERT_EQUAL_FATAL(gt_child_run("panic_fatal_stays_fatal", NULL, 30, &r), 0);
    CU_ASSERT_TRUE(r.exited);
    CU_ASSERT_EQUAL(r.status, 2);
    CU_ASSERT_TRUE(gt_first_line_is(r.out, "fatal error: all goroutines are asleep - deadlock!"));
    CU_ASSERT_FALSE(gt_contains(r.out, "deferred ran"));
    if (!r.exited || r.status != 2)
        fprintf(stderr, "child output:\n%s\n", r.out);
    gt_child_free(&r);
}

GT_SUITE(panic, {"defer_order_return", test_defer_order_return}, {"defer_order_entry", test_defer_order_entry},
         {"recover_three_down", test_recover_three_down}, {"recover_entry_frame", test_recover_entry_frame},
         {"recover_rules", test_recover_rules}, {"recover_runtime_panic", test_recover_runtime_panic},
         {"unrecovered_output", test_unrecovered_output})
