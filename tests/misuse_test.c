/*
 * misuse_test.c: the errors a user meets, with Go's words, each in a
 * child process: the first line of its output, the goroutine dump after
 * it, exit status 2.  Recoverable misuse ("panic: ...") goes through
 * gort__panic_str, unrecoverable through the fatal path ("fatal error:").
 * Deadlock detection: every goroutine blocked on a channel, select,
 * mutex, cond, WaitGroup or semaphore ends the program; a pending timer
 * does not count as a deadlock (it will wake someone).
 */
#include <stdio.h>
#include <stdlib.h>

#include "test.h"

/* ---- the children ---- */

static void send_closed(void *a)
{
    (void)a;
    gort_chan *c = gort_chan_make(sizeof(int), 1);
    gort_chan_close(c);
    int v = 1;
    gort_chan_send(c, &v);
}
GT_CHILD(send_closed) { gort_main(send_closed, NULL); }

/* A sender blocked when the channel is closed panics when it resumes. */
static gort_chan *bsc;
static void bsc_closer(void *a)
{
    (void)a;
    gort_chan_close(bsc);
}
static void blocked_send_closed(void *a)
{
    (void)a;
    bsc = gort_chan_make(sizeof(int), 0);
    gort_go(bsc_closer, NULL);
    int v = 1;
    gort_chan_send(bsc, &v);
}
GT_CHILD(blocked_send_closed) { gort_main(blocked_send_closed, NULL); }

static void select_send_closed(void *a)
{
    (void)a;
    gort_chan *c = gort_chan_make(sizeof(int), 0);
    gort_chan *d = gort_chan_make(sizeof(int), 0);
    gort_chan_close(c);
    int v = 1;
    gort_case cs[2] = {{c, GORT_SEND, &v, false}, {d, GORT_RECV, &v, false}};
    gort_select(cs, 2, true);
}
GT_CHILD(select_send_closed) { gort_main(select_send_closed, NULL); }

static void close_closed(void *a)
{
    (void)a;
    gort_chan *c = gort_chan_make(0, 0);
    gort_chan_close(c);
    gort_chan_close(c);
}
GT_CHILD(close_closed) { gort_main(close_closed, NULL); }

static void close_nil(void *a)
{
    (void)a;
    gort_chan_close(NULL);
}
GT_CHILD(close_nil) { gort_main(close_nil, NULL); }

static void wg_negative(void *a)
{
    (void)a;
    gort_waitgroup wg = {0};
    gort_wg_add(&wg, 1);
    gort_wg_done(&wg);
    gort_wg_done(&wg);
}
GT_CHILD(wg_negative) { gort_main(wg_negative, NULL); }

static void unlock_unlocked(void *a)
{
    (void)a;
    gort_mutex m = {0};
    gort_mutex_lock(&m);
    gort_mutex_unlock(&m);
    gort_mutex_unlock(&m);
}
GT_CHILD(unlock_unlocked) { gort_main(unlock_unlocked, NULL); }

static void rw_unlock_unlocked(void *a)
{
    (void)a;
    gort_rwmutex rw = {0};
    gort_rwmutex_unlock(&rw);
}
GT_CHILD(rw_unlock_unlocked) { gort_main(rw_unlock_unlocked, NULL); }

static void rw_runlock_unlocked(void *a)
{
    (void)a;
    gort_rwmutex rw = {0};
    gort_rwmutex_rlock(&rw);
    gort_rwmutex_runlock(&rw);
    gort_rwmutex_runlock(&rw);
}
GT_CHILD(rw_runlock_unlocked) { gort_main(rw_runlock_unlocked, NULL); }

/* Deadlocks: main blocks on X while some other goroutines block too. */
static gort_chan *dl_c;
static gort_mutex dl_m;
static void dl_recv(void *a)
{
    (void)a;
    gort_chan_recv(dl_c, NULL);
}
static void dl_chan(void *a)
{
    (void)a;
    dl_c = gort_chan_make(0, 0);
    for (int i = 0; i < 3; i++)
        gort_go(dl_recv, NULL);
    gort_chan_send(gort_chan_make(0, 0), NULL);
}
GT_CHILD(deadlock_chan) { gort_main(dl_chan, NULL); }

static void dl_select(void *a)
{
    (void)a;
    gort_chan *x = gort_chan_make(sizeof(int), 0), *y = gort_chan_make(sizeof(int), 2);
    int v = 0;
    for (int i = 0; i < 2; i++)
        gort_chan_send(y, &v); /* fill y: the send case is not ready */
    gort_case cs[3] = {{x, GORT_RECV, &v, false}, {y, GORT_SEND, &v, false}, {NULL, GORT_RECV, NULL, false}};
    gort_select(cs, 3, true);
}
GT_CHILD(deadlock_select) { gort_main(dl_select, NULL); }

static void dl_mutex(void *a)
{
    (void)a;
    gort_mutex_lock(&dl_m);
    gort_mutex_lock(&dl_m);
}
GT_CHILD(deadlock_mutex) { gort_main(dl_mutex, NULL); }

static void dl_cond(void *a)
{
    (void)a;
    gort_cond c = {0};
    gort_mutex_lock(&dl_m);
    gort_cond_wait(&c, &dl_m);
}
GT_CHILD(deadlock_cond) { gort_main(dl_cond, NULL); }

static void dl_wg(void *a)
{
    (void)a;
    gort_waitgroup wg = {0};
    gort_wg_add(&wg, 1);
    gort_wg_wait(&wg);
}
GT_CHILD(deadlock_wg) { gort_main(dl_wg, NULL); }

static void dl_sema(void *a)
{
    (void)a;
    gort_sema s = {0};
    gort_sema_acquire(&s);
}
GT_CHILD(deadlock_sema) { gort_main(dl_sema, NULL); }

static void dl_rwmutex(void *a)
{
    (void)a;
    gort_rwmutex rw = {0};
    gort_rwmutex_rlock(&rw);
    gort_rwmutex_lock(&rw);
}
GT_CHILD(deadlock_rwmutex) { gort_main(dl_rwmutex, NULL); }

/* Not a deadlock: everyone is blocked, but a timer will wake main. */
static void timer_alive(void *a)
{
    (void)a;
    dl_c = gort_chan_make(0, 0);
    gort_go(dl_recv, NULL); /* blocked for good; abandoned at exit */
    gort_timer *t = gort_timer_new(30 * 1000000LL);
    int64_t when;
    gort_chan_recv(gort_timer_chan(t), &when);
    gort_timer_free(t);
    gort_sleep(10 * 1000000LL);
    printf("timer-ok\n");
    fflush(stdout);
}
GT_CHILD(timer_not_deadlock) { exit(gort_main(timer_alive, NULL)); }

/* A ticker that is stopped no longer keeps the program alive. */
static void stopped_ticker(void *a)
{
    (void)a;
    gort_timer *t = gort_ticker_new(1000000LL);
    int64_t when;
    gort_chan_recv(gort_timer_chan(t), &when);
    gort_timer_stop(t);
    gort_chan_recv(gort_timer_chan(t), &when);
}
GT_CHILD(deadlock_stopped_ticker) { gort_main(stopped_ticker, NULL); }

/* ---- the checks ---- */

static void expect(const char *child, const char *first_line)
{
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run(child, NULL, 30, &r), 0);
    CU_ASSERT_FALSE(r.timed_out);
    CU_ASSERT_TRUE(r.exited);
    CU_ASSERT_EQUAL(r.status, 2);
    bool ok = gt_first_line_is(r.out, first_line);
    CU_ASSERT_TRUE(ok);
    /* The goroutine dump follows. */
    CU_ASSERT_TRUE(gt_contains(r.out, "goroutine "));
    if (!ok || !r.exited || r.status != 2)
        fprintf(stderr, "\n%s: exited=%d status=%d signo=%d output:\n%.2000s\n", child, r.exited,
                r.status, r.signo, r.out ? r.out : "");
    gt_child_free(&r);
}

static void test_chan_panics(void)
{
    expect("send_closed", "panic: send on closed channel");
    expect("blocked_send_closed", "panic: send on closed channel");
    expect("select_send_closed", "panic: send on closed channel");
    expect("close_closed", "panic: close of closed channel");
    expect("close_nil", "panic: close of nil channel");
}

static void test_sync_misuse(void)
{
    expect("wg_negative", "panic: sync: negative WaitGroup counter");
    expect("unlock_unlocked", "fatal error: sync: unlock of unlocked mutex");
    expect("rw_unlock_unlocked", "fatal error: sync: Unlock of unlocked RWMutex");
    expect("rw_runlock_unlocked", "fatal error: sync: RUnlock of unlocked RWMutex");
}

static void test_deadlock(void)
{
    static const char *const kids[] = {"deadlock_chan",  "deadlock_select", "deadlock_mutex",
                                       "deadlock_cond",  "deadlock_wg",     "deadlock_sema",
                                       "deadlock_rwmutex", "deadlock_stopped_ticker"};
    for (size_t i = 0; i < sizeof kids / sizeof kids[0]; i++)
        expect(kids[i], "fatal error: all goroutines are asleep - deadlock!");
}

static void test_timer_not_deadlock(void)
{
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("timer_not_deadlock", NULL, 30, &r), 0);
    CU_ASSERT_TRUE(r.exited);
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT_TRUE(gt_contains(r.out, "timer-ok"));
    if (!r.exited || r.status != 0)
        fprintf(stderr, "\ntimer_not_deadlock output:\n%.2000s\n", r.out ? r.out : "");
    gt_child_free(&r);
}

GT_SUITE(misuse,
         {"chan_panics", test_chan_panics},
         {"sync_misuse", test_sync_misuse},
         {"deadlock", test_deadlock},
         {"timer_not_deadlock", test_timer_not_deadlock})
