/*
 * foreign_test.c: blocking calls from threads the runtime did not start
 * (runtime/foreign.c).  Plain pthreads send into and receive from
 * unbuffered channels that goroutines serve, contend a gort_mutex with
 * goroutines, wait on WaitGroups, semaphores, conds, rwmutexes and onces,
 * and select on timers and channels.  Every test checks sums and counts;
 * the goroutines' side blocks on the plain threads as often as the other
 * way round, so the deadlock detector must also hold its fire while a
 * plain thread lives.
 */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "chan.h" /* the wait queues, for the FIFO test */
#include "gort_ctx.h"
#include "gort_prof.h"
#include "test.h"

#define NT 4 /* plain threads */
#define NG 4 /* goroutines */

static void start_threads(pthread_t *th, int n, void *(*fn)(void *))
{
    for (intptr_t i = 0; i < n; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, fn, (void *)i), 0);
}

/* Joins without holding the body's thread in pthread_join while the
 * threads may still need a goroutine: they count themselves out first. */
static _Atomic int threads_done;
static void join_threads(pthread_t *th, int n)
{
    while (atomic_load(&threads_done) < n)
        gort_sleep(200000);
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    atomic_store(&threads_done, 0);
}

/* ---- channels: 20,000 items each way through unbuffered channels ---- */

#define CH_ITEMS 20000
static gort_chan *ch_in, *ch_out;
static _Atomic long ch_in_sum, ch_in_count, ch_out_sum, ch_out_count;
static gort_waitgroup ch_wg;

static void *ch_thread(void *a)
{
    intptr_t id = (intptr_t)a;
    long per = CH_ITEMS / NT;
    long sum = 0, cnt = 0;
    /* Send this thread's share of 1..CH_ITEMS, then take a share back. */
    for (long v = id * per + 1; v <= (id + 1) * per; v++)
        gort_chan_send(ch_in, &v);
    for (long i = 0; i < per; i++) {
        long v = 0;
        if (!gort_chan_recv(ch_out, &v))
            break;
        sum += v;
        cnt++;
    }
    atomic_fetch_add(&ch_out_sum, sum);
    atomic_fetch_add(&ch_out_count, cnt);
    atomic_fetch_add(&threads_done, 1);
    return NULL;
}

static void ch_receiver(void *a)
{
    (void)a;
    long v;
    while (gort_chan_recv(ch_in, &v)) {
        atomic_fetch_add(&ch_in_sum, v);
        atomic_fetch_add(&ch_in_count, 1);
    }
    gort_wg_done(&ch_wg);
}

static void ch_sender(void *a)
{
    intptr_t id = (intptr_t)a;
    long per = CH_ITEMS / NG;
    for (long v = id * per + 1; v <= (id + 1) * per; v++)
        gort_chan_send(ch_out, &v);
    gort_wg_done(&ch_wg);
}

static void ch_body(void *a)
{
    int procs = (int)(intptr_t)a;
    int old = gort_maxprocs(procs);
    /* At two Ps with the block profile on: plain threads' waits are
     * stamped and recorded too. */
    gort_set_block_profile_rate(procs == 2 ? 1 : 0);
    ch_in = gort_chan_make(sizeof(long), 0);
    ch_out = gort_chan_make(sizeof(long), 0);
    atomic_store(&ch_in_sum, 0);
    atomic_store(&ch_in_count, 0);
    atomic_store(&ch_out_sum, 0);
    atomic_store(&ch_out_count, 0);
    gort_wg_add(&ch_wg, 2 * NG);
    for (intptr_t i = 0; i < NG; i++) {
        gort_go(ch_receiver, NULL);
        gort_go(ch_sender, (void *)i);
    }
    pthread_t th[NT];
    start_threads(th, NT, ch_thread);
    join_threads(th, NT);
    gort_chan_close(ch_in);
    gort_wg_wait(&ch_wg);
    gort_chan_free(ch_in);
    gort_chan_free(ch_out);
    gort_set_block_profile_rate(0);
    gort_maxprocs(old);
}

static void test_chan(void)
{
    const long want = (long)CH_ITEMS * (CH_ITEMS + 1) / 2;
    for (intptr_t procs = 1; procs <= 2; procs++) {
        GT_RUN(ch_body, (void *)procs);
        CU_ASSERT_EQUAL(atomic_load(&ch_in_count), CH_ITEMS);
        CU_ASSERT_EQUAL(atomic_load(&ch_in_sum), want);
        CU_ASSERT_EQUAL(atomic_load(&ch_out_count), CH_ITEMS);
        CU_ASSERT_EQUAL(atomic_load(&ch_out_sum), want);
    }
}

/* ---- a gort_mutex contended by plain threads and goroutines ---- */

#define MU_ROUNDS 5000
static gort_mutex mu;
static long mu_counter;   /* under mu */
static _Atomic int mu_inside, mu_overlap;
static gort_waitgroup mu_wg;

static void mu_work(void)
{
    gort_mutex_lock(&mu);
    if (atomic_fetch_add(&mu_inside, 1) != 0)
        atomic_fetch_add(&mu_overlap, 1);
    long v = mu_counter;
    for (volatile int k = 0; k < 20; k++) {
    }
    mu_counter = v + 1;
    atomic_fetch_sub(&mu_inside, 1);
    gort_mutex_unlock(&mu);
}

static void *mu_thread(void *a)
{
    (void)a;
    for (int i = 0; i < MU_ROUNDS; i++)
        mu_work();
    atomic_fetch_add(&threads_done, 1);
    return NULL;
}

static void mu_goroutine(void *a)
{
    (void)a;
    for (int i = 0; i < MU_ROUNDS; i++) {
        mu_work();
        if (i % 64 == 0)
            gort_yield();
    }
    gort_wg_done(&mu_wg);
}

static void mu_body(void *a)
{
    (void)a;
    mu_counter = 0;
    int frac = gort_set_mutex_profile_fraction(1);
    gort_set_block_profile_rate(1);
    gort_wg_add(&mu_wg, NG);
    for (int i = 0; i < NG; i++)
        gort_go(mu_goroutine, NULL);
    pthread_t th[NT];
    start_threads(th, NT, mu_thread);
    gort_wg_wait(&mu_wg);
    join_threads(th, NT);
    gort_set_block_profile_rate(0);
    gort_set_mutex_profile_fraction(frac);
}

static void test_mutex(void)
{
    GT_RUN(mu_body, NULL);
    CU_ASSERT_EQUAL(mu_counter, (long)(NT + NG) * MU_ROUNDS);
    CU_ASSERT_EQUAL(atomic_load(&mu_overlap), 0);
}

/* ---- WaitGroup, sema: plain threads wait for goroutines ---- */

#define WG_ROUNDS 300
static gort_waitgroup wg_rounds[WG_ROUNDS];
static gort_sema wg_start[NT]; /* one per thread: a round's permit */
static _Atomic int wg_work, wg_bad, wg_acks;

static void *wg_thread(void *a)
{
    intptr_t id = (intptr_t)a;
    for (int r = 0; r < WG_ROUNDS; r++) {
        gort_sema_acquire(&wg_start[id]); /* the body has added round r */
        gort_wg_wait(&wg_rounds[r]);
        /* Every goroutine of round r called Done before Wait returned. */
        if (atomic_load(&wg_work) < (r + 1) * NG)
            atomic_fetch_add(&wg_bad, 1);
        atomic_fetch_add(&wg_acks, 1);
    }
    atomic_fetch_add(&threads_done, 1);
    return NULL;
}

static void wg_worker(void *a)
{
    gort_yield();
    atomic_fetch_add(&wg_work, 1);
    gort_wg_done(a);
}

static void wg_body(void *a)
{
    (void)a;
    memset(wg_rounds, 0, sizeof wg_rounds);
    pthread_t th[NT];
    start_threads(th, NT, wg_thread);
    for (int r = 0; r < WG_ROUNDS; r++) {
        gort_wg_add(&wg_rounds[r], NG);
        for (int i = 0; i < NT; i++)
            gort_sema_release(&wg_start[i], 1);
        for (int i = 0; i < NG; i++)
            gort_go(wg_worker, &wg_rounds[r]);
        /* Let the threads catch up now and then, so that most rounds
         * find them asleep in Wait rather than late. */
        if (r % 8 == 0)
            while (atomic_load(&wg_acks) < r * NT)
                gort_sleep(20000);
    }
    join_threads(th, NT);
}

static void test_waitgroup(void)
{
    GT_RUN(wg_body, NULL);
    CU_ASSERT_EQUAL(atomic_load(&wg_work), WG_ROUNDS * NG);
    CU_ASSERT_EQUAL(atomic_load(&wg_acks), WG_ROUNDS * NT);
    CU_ASSERT_EQUAL(atomic_load(&wg_bad), 0);
}

/* ---- select on a timer and on channels ---- */

#define SEL_TIMERS 200
#define SEL_ITEMS 4000
static gort_chan *sel_a, *sel_b, *sel_never, *sel_done;
static _Atomic long sel_early, sel_wrong, sel_sum, sel_count, sel_sent;

static void *sel_thread(void *a)
{
    (void)a;
    /* A timer this thread arms fires into the channel it selects on,
     * while every goroutine is blocked (the body waits on sel_done). */
    for (int i = 0; i < SEL_TIMERS; i++) {
        int64_t t0 = gort_nanotime();
        gort_timer *t = gort_timer_new(100000);
        int64_t when = 0;
        long x;
        gort_case cs[2] = {{sel_never, GORT_RECV, &x, false}, {gort_timer_chan(t), GORT_RECV, &when, false}};
        int k = gort_select(cs, 2, true);
        if (k != 1)
            atomic_fetch_add(&sel_wrong, 1);
        if (when - t0 < 100000 || gort_nanotime() - t0 < 100000)
            atomic_fetch_add(&sel_early, 1);
        gort_timer_free(t);
    }
    /* Channels: receive from two that goroutines send on, and send on a
     * third case that a goroutine receives from, until both are closed. */
    long v = 0, out = 1;
    bool a_open = true, b_open = true;
    while (a_open || b_open) {
        gort_case cs[3] = {{a_open ? sel_a : NULL, GORT_RECV, &v, false},
                           {b_open ? sel_b : NULL, GORT_RECV, &v, false},
                           {sel_done, GORT_SEND, &out, false}};
        int k = gort_select(cs, 3, true);
        if (k == 2) {
            atomic_fetch_add(&sel_sent, 1);
            continue;
        }
        if (!cs[k].ok) {
            if (k == 0)
                a_open = false;
            else
                b_open = false;
            continue;
        }
        atomic_fetch_add(&sel_sum, v);
        atomic_fetch_add(&sel_count, 1);
    }
    long stop = 0;
    gort_chan_send(sel_done, &stop);
    atomic_fetch_add(&threads_done, 1);
    return NULL;
}

static void sel_sender(void *a)
{
    gort_chan *c = a;
    for (long v = 1; v <= SEL_ITEMS; v++)
        gort_chan_send(c, &v);
    gort_chan_close(c);
}

static void sel_body(void *a)
{
    (void)a;
    sel_a = gort_chan_make(sizeof(long), 0);
    sel_b = gort_chan_make(sizeof(long), 0);
    sel_never = gort_chan_make(sizeof(long), 0);
    sel_done = gort_chan_make(sizeof(long), 0);
    pthread_t th[1];
    start_threads(th, 1, sel_thread);
    /* Blocked until the thread's timers are done: then no goroutine is
     * runnable and only the thread's timer is pending. */
    long v;
    CU_ASSERT_TRUE(gort_chan_recv(sel_done, &v));
    long got = 1;
    gort_go(sel_sender, sel_a);
    gort_go(sel_sender, sel_b);
    while (got != 0)
        CU_ASSERT_TRUE_FATAL(gort_chan_recv(sel_done, &got));
    join_threads(th, 1);
}

static void test_select(void)
{
    GT_RUN(sel_body, NULL);
    CU_ASSERT_EQUAL(atomic_load(&sel_wrong), 0);
    CU_ASSERT_EQUAL(atomic_load(&sel_early), 0);
    CU_ASSERT_EQUAL(atomic_load(&sel_count), 2 * SEL_ITEMS);
    CU_ASSERT_EQUAL(atomic_load(&sel_sum), (long)SEL_ITEMS * (SEL_ITEMS + 1));
}

/* ---- rwmutex, cond, once, sleep ---- */

#define RW_ROUNDS 3000
static gort_rwmutex rw;
static long rw_a, rw_b; /* written together under the write lock */
static _Atomic long rw_torn, rw_reads;
static gort_mutex cv_mu;
static gort_cond cv;
static long cv_items; /* under cv_mu */
static long cv_taken;  /* under cv_mu */
static gort_once once;
static _Atomic int once_runs, once_after;
static gort_waitgroup misc_wg;
static _Atomic int sleep_short;

static void once_fn(void *a)
{
    (void)a;
    gort_sleep(2000000); /* everyone else arrives while it runs */
    atomic_fetch_add(&once_runs, 1);
}

static void misc_common(bool plain)
{
    gort_once_do(&once, once_fn, NULL);
    if (atomic_load(&once_runs) == 1)
        atomic_fetch_add(&once_after, 1);
    for (int i = 0; i < RW_ROUNDS; i++) {
        if (i % 4 == 0) {
            gort_rwmutex_lock(&rw);
            rw_a++;
            rw_b++;
            gort_rwmutex_unlock(&rw);
        } else {
            gort_rwmutex_rlock(&rw);
            if (rw_a != rw_b)
                atomic_fetch_add(&rw_torn, 1);
            atomic_fetch_add(&rw_reads, 1);
            gort_rwmutex_runlock(&rw);
        }
    }
    if (plain) {
        /* Consumer: take RW_ROUNDS / 10 items, waiting on the cond. */
        for (int i = 0; i < RW_ROUNDS / 10; i++) {
            gort_mutex_lock(&cv_mu);
            while (cv_items == 0)
                gort_cond_wait(&cv, &cv_mu);
            cv_items--;
            cv_taken++;
            gort_mutex_unlock(&cv_mu);
        }
        int64_t t0 = gort_nanotime();
        gort_sleep(1000000);
        if (gort_nanotime() - t0 < 1000000)
            atomic_fetch_add(&sleep_short, 1);
    } else {
        for (int i = 0; i < RW_ROUNDS / 10; i++) {
            gort_mutex_lock(&cv_mu);
            cv_items++;
            gort_mutex_unlock(&cv_mu);
            if (i % 2)
                gort_cond_signal(&cv);
            else
                gort_cond_broadcast(&cv);
            gort_yield();
        }
    }
}

static void *misc_thread(void *a)
{
    (void)a;
    misc_common(true);
    atomic_fetch_add(&threads_done, 1);
    return NULL;
}

static void misc_goroutine(void *a)
{
    (void)a;
    misc_common(false);
    gort_wg_done(&misc_wg);
}

static void misc_body(void *a)
{
    (void)a;
    pthread_t th[NT];
    start_threads(th, NT, misc_thread);
    gort_wg_add(&misc_wg, NT);
    for (int i = 0; i < NT; i++)
        gort_go(misc_goroutine, NULL);
    gort_wg_wait(&misc_wg);
    /* The producers are done; wake consumers still waiting for the
     * items the last signal covered. */
    gort_cond_broadcast(&cv);
    join_threads(th, NT);
}

static void test_sync_misc(void)
{
    GT_RUN(misc_body, NULL);
    CU_ASSERT_EQUAL(atomic_load(&once_runs), 1);
    CU_ASSERT_EQUAL(atomic_load(&once_after), 2 * NT);
    CU_ASSERT_EQUAL(atomic_load(&rw_torn), 0);
    CU_ASSERT_EQUAL(rw_a, (long)2 * NT * (RW_ROUNDS / 4));
    CU_ASSERT_EQUAL(rw_b, rw_a);
    CU_ASSERT_EQUAL(atomic_load(&rw_reads), (long)2 * NT * (RW_ROUNDS - RW_ROUNDS / 4));
    CU_ASSERT_EQUAL(cv_taken, (long)NT * (RW_ROUNDS / 10));
    CU_ASSERT_EQUAL(cv_items, 0);
    CU_ASSERT_EQUAL(atomic_load(&sleep_short), 0);
}

/* ---- FIFO among goroutines and a plain thread on one wait queue ---- */

/* Goroutine A, then the plain thread, then goroutine B queue on the same
 * channel, each only once the one before is in the queue; three values
 * must reach them in that order.  Then the same for senders. */
#define FIFO_ROUNDS 200
static gort_chan *fifo_c;
static gort_sema fifo_go;
static _Atomic long fifo_got[3];
static _Atomic int fifo_bad, fifo_acks;
static gort_waitgroup fifo_wg;

static int queue_len(gort_chan *c, bool recvq)
{
    int n = 0;
    gort_g_t *gp = gort__rt_enter();
    gort__chan_lock(&c->lock);
    for (gort_sudog_t *s = atomic_load_explicit(recvq ? &c->recvq.first : &c->sendq.first,
                                                memory_order_relaxed);
         s; s = s->next)
        n++;
    gort__unlock(&c->lock);
    gort__rt_leave(gp);
    return n;
}

static void fifo_one(intptr_t who, bool recv)
{
    long v = who + 1;
    if (recv) {
        gort_chan_recv(fifo_c, &v);
        atomic_store(&fifo_got[who], v);
    } else {
        gort_chan_send(fifo_c, &v);
    }
}

static void *fifo_thread(void *a)
{
    (void)a;
    for (int r = 0; r < 2 * FIFO_ROUNDS; r++) {
        gort_sema_acquire(&fifo_go);
        fifo_one(1, r < FIFO_ROUNDS);
        atomic_fetch_add(&fifo_acks, 1);
    }
    atomic_fetch_add(&threads_done, 1);
    return NULL;
}

static void fifo_goroutine(void *a)
{
    intptr_t x = (intptr_t)a;
    fifo_one(x >> 1, x & 1);
    gort_wg_done(&fifo_wg);
}

static void wait_queued(bool recv, int n)
{
    while (queue_len(fifo_c, recv) < n)
        gort_yield();
}

static void fifo_body(void *a)
{
    (void)a;
    fifo_c = gort_chan_make(sizeof(long), 0);
    pthread_t th[1];
    start_threads(th, 1, fifo_thread);
    for (int r = 0; r < 2 * FIFO_ROUNDS; r++) {
        bool recv = r < FIFO_ROUNDS;
        for (int i = 0; i < 3; i++)
            atomic_store(&fifo_got[i], 0);
        gort_wg_add(&fifo_wg, 2);
        gort_go(fifo_goroutine, (void *)(intptr_t)(0 << 1 | recv));
        wait_queued(recv, 1);
        gort_sema_release(&fifo_go, 1);
        wait_queued(recv, 2);
        gort_go(fifo_goroutine, (void *)(intptr_t)(2 << 1 | recv));
        wait_queued(recv, 3);
        for (long i = 0; i < 3; i++) {
            long v = i + 1;
            if (recv) {
                gort_chan_send(fifo_c, &v);
            } else {
                gort_chan_recv(fifo_c, &v);
                if (v != i + 1)
                    atomic_fetch_add(&fifo_bad, 1);
            }
        }
        gort_wg_wait(&fifo_wg);
        while (atomic_load(&fifo_acks) < r + 1) /* the thread's call returned */
            gort_yield();
        if (recv)
            for (int i = 0; i < 3; i++)
                if (atomic_load(&fifo_got[i]) != i + 1)
                    atomic_fetch_add(&fifo_bad, 1);
    }
    join_threads(th, 1);
    gort_chan_free(fifo_c);
}

static void test_fifo(void)
{
    GT_RUN(fifo_body, NULL);
    CU_ASSERT_EQUAL(atomic_load(&fifo_bad), 0);
}

/* ---- context and errgroup waits from a plain thread ---- */

#define EG_FNS 20
static _Atomic int eg_ran, eg_wait_ret, eg_sleep_ret;
static int eg_fn(gort_ctx *ctx, void *arg)
{
    (void)ctx;
    gort_sleep(100000);
    atomic_fetch_add(&eg_ran, 1);
    return (intptr_t)arg == 7 ? -5 : 0;
}
static void eg_canceller(void *a)
{
    gort_sleep(1000000);
    gort_ctx_cancel(a);
    gort_ctx_unref(a); /* the thread may have freed c as soon as done closed */
}
static void *eg_thread(void *a)
{
    (void)a;
    gort_errgroup *g = gort_errgroup_new(NULL);
    gort_errgroup_set_limit(g, 2); /* gort_errgroup_go blocks this thread */
    for (intptr_t i = 0; i < EG_FNS; i++)
        gort_errgroup_go(g, eg_fn, (void *)i);
    atomic_store(&eg_wait_ret, gort_errgroup_wait(g));
    gort_errgroup_free(g);
    gort_ctx *c = gort_ctx_with_cancel(gort_ctx_background());
    gort_go(eg_canceller, gort_ctx_ref(c));
    atomic_store(&eg_sleep_ret, gort_ctx_sleep(c, 60LL * 1000000000));
    gort_ctx_free(c);
    atomic_fetch_add(&threads_done, 1);
    return NULL;
}
static void eg_body(void *a)
{
    (void)a;
    pthread_t th[1];
    start_threads(th, 1, eg_thread);
    join_threads(th, 1);
}
static void test_ctx_errgroup(void)
{
    GT_RUN(eg_body, NULL);
    CU_ASSERT_EQUAL(atomic_load(&eg_ran), EG_FNS);
    CU_ASSERT_EQUAL(atomic_load(&eg_wait_ret), -5);
    CU_ASSERT_EQUAL(atomic_load(&eg_sleep_ret), GORT_CTX_CANCELED);
}

/* ---- a plain thread blocked forever is not a deadlock's end ---- */

/* The goroutines all block on a channel only a plain thread will serve,
 * and the thread starts late: no "all goroutines are asleep". */
static gort_chan *late_ch;
static void *late_thread(void *a)
{
    (void)a;
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    long v = 42;
    gort_chan_send(late_ch, &v);
    return NULL;
}
static void late_body(void *a)
{
    (void)a;
    late_ch = gort_chan_make(sizeof(long), 0);
    pthread_t th;
    pthread_create(&th, NULL, late_thread, NULL);
    long v = 0;
    gort_chan_recv(late_ch, &v);
    pthread_join(th, NULL);
    printf("late-ok %ld\n", v);
}
GT_CHILD(foreign_late) { exit(gort_main(late_body, NULL)); }

/* Misuse: gort_defer needs a goroutine whose function returns. */
static void *defer_thread(void *a)
{
    (void)a;
    gort_defer(free, NULL);
    return NULL;
}
static void defer_body(void *a)
{
    (void)a;
    pthread_t th;
    pthread_create(&th, NULL, defer_thread, NULL);
    pthread_join(th, NULL);
}
GT_CHILD(foreign_defer) { gort_main(defer_body, NULL); }

/* Misuse: changing gort_maxprocs needs a goroutine to stop the world. */
static void *procs_thread(void *a)
{
    (void)a;
    gort_maxprocs(3);
    return NULL;
}
static void procs_body(void *a)
{
    (void)a;
    pthread_t th;
    pthread_create(&th, NULL, procs_thread, NULL);
    pthread_join(th, NULL);
}
GT_CHILD(foreign_maxprocs) { gort_main(procs_body, NULL); }

static void expect_fatal(const char *child, const char *line)
{
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run(child, NULL, 60, &r), 0);
    CU_ASSERT_TRUE(r.exited);
    CU_ASSERT_EQUAL(r.status, 2);
    CU_ASSERT_TRUE(gt_first_line_is(r.out, line));
    if (!gt_first_line_is(r.out, line))
        fprintf(stderr, "\n%s output:\n%.2000s\n", child, r.out ? r.out : "");
    gt_child_free(&r);
}

static void test_children(void)
{
    CU_ASSERT_TRUE(gt_child_expect("foreign_late", NULL, 60, "late-ok 42"));
    expect_fatal("foreign_defer", "fatal error: gort_defer called outside a goroutine");
    expect_fatal("foreign_maxprocs", "fatal error: gort_maxprocs called outside a goroutine while the runtime runs");
}

GT_SUITE(foreign,
         {"chan", test_chan},
         {"mutex", test_mutex},
         {"waitgroup", test_waitgroup},
         {"select", test_select},
         {"sync_misc", test_sync_misc},
         {"fifo", test_fifo},
         {"ctx_errgroup", test_ctx_errgroup},
         {"children", test_children})
