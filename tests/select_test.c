/*
 * select_test.c: gort_select against Go's semantics: uniform choice among
 * ready cases, default, NULL channels never ready, blocking until one case
 * is ready (sends and receives, to plain and select partners), closed
 * channels, the same channel in several cases, timeouts through a timer,
 * and many goroutines selecting over shared channels in both directions
 * without deadlock and with every value delivered exactly once.
 */
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "test.h"

static int waiters(gort_chan *c, bool senders)
{
    int n = 0;
    gort__lock(&c->lock);
    for (gort_sudog_t *s = atomic_load(senders ? &c->sendq.first : &c->recvq.first); s; s = s->next)
        n++;
    gort__unlock(&c->lock);
    return n;
}

static void with_procs(int procs, void (*fn)(void *), void *arg)
{
    int old = gort_maxprocs(procs);
    GT_RUN(fn, arg);
    gort_maxprocs(old);
}

/* ---- fairness: two always-ready cases, 20,000 selects ---- */

#define FAIR_N 20000
static int fair_count[3], fair_bad;
static void fair_body(void *a)
{
    int ncases = (int)(intptr_t)a;
    gort_chan *c[3];
    for (int i = 0; i < ncases; i++)
        c[i] = gort_chan_make(sizeof(int), 1);
    memset(fair_count, 0, sizeof fair_count);
    fair_bad = 0;
    for (int k = 0; k < FAIR_N; k++) {
        gort_case cs[3];
        int v[3];
        for (int i = 0; i < ncases; i++) {
            int x = i;
            gort_chan_trysend(c[i], &x); /* keep every case ready */
            cs[i] = (gort_case){c[i], GORT_RECV, &v[i], false};
        }
        int r = gort_select(cs, ncases, true);
        if (r < 0 || r >= ncases || v[r] != r || !cs[r].ok)
            fair_bad++;
        else
            fair_count[r]++;
    }
    for (int i = 0; i < ncases; i++)
        gort_chan_free(c[i]);
}

static void test_fairness(void)
{
    GT_RUN(fair_body, (void *)2);
    CU_ASSERT_EQUAL(fair_bad, 0);
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_TRUE(fair_count[i] >= FAIR_N * 45 / 100);
        CU_ASSERT_TRUE(fair_count[i] <= FAIR_N * 55 / 100);
    }
    /* Three cases: no position bias either (each 28-38%). */
    GT_RUN(fair_body, (void *)3);
    CU_ASSERT_EQUAL(fair_bad, 0);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_TRUE(fair_count[i] >= FAIR_N * 28 / 100);
        CU_ASSERT_TRUE(fair_count[i] <= FAIR_N * 38 / 100);
    }
}

/* Mixed send and receive cases, both ready: also uniform. */
static int mix_send, mix_recv;
static void mixed_fair_body(void *a)
{
    (void)a;
    gort_chan *in = gort_chan_make(sizeof(int), 1), *out = gort_chan_make(sizeof(int), 1);
    mix_send = mix_recv = 0;
    for (int k = 0; k < FAIR_N; k++) {
        int x = 1, y;
        gort_chan_trysend(in, &x);
        gort_chan_tryrecv(out, NULL, NULL);
        gort_case cs[2] = {{out, GORT_SEND, &x, false}, {in, GORT_RECV, &y, false}};
        int r = gort_select(cs, 2, false);
        if (r == 0)
            mix_send++;
        else if (r == 1)
            mix_recv++;
    }
    gort_chan_free(in);
    gort_chan_free(out);
}

static void test_mixed_fairness(void)
{
    GT_RUN(mixed_fair_body, NULL);
    CU_ASSERT_EQUAL(mix_send + mix_recv, FAIR_N);
    CU_ASSERT_TRUE(mix_send >= FAIR_N * 45 / 100 && mix_send <= FAIR_N * 55 / 100);
}

/* ---- default, NULL channels, closed channels, no cases ---- */

static int misc_bad;
static void misc_body(void *a)
{
    (void)a;
    misc_bad = 0;
    gort_chan *c = gort_chan_make(sizeof(long), 0);
    gort_chan *b = gort_chan_make(sizeof(long), 1);
    long v = 5;

    /* Nothing ready: default. */
    gort_case cs[3] = {{c, GORT_RECV, &v, false}, {c, GORT_SEND, &v, false}, {NULL, GORT_RECV, &v, false}};
    misc_bad += gort_select(cs, 3, false) != -1;
    misc_bad += gort_select(NULL, 0, false) != -1;
    misc_bad += gort_select(cs + 2, 1, false) != -1;

    /* NULL channels are never chosen, even beside a ready case. */
    gort_chan_send(b, &v);
    for (int k = 0; k < 200; k++) {
        gort_case n3[3] = {{NULL, GORT_RECV, &v, false}, {b, GORT_RECV, &v, false}, {NULL, GORT_SEND, &v, false}};
        int r = gort_select(n3, 3, true);
        misc_bad += r != 1 || v != 5 || !n3[1].ok;
        gort_chan_send(b, &v);
    }

    /* A buffered send case with room. */
    long w = 9;
    gort_chan_recv(b, NULL);
    gort_case s1[2] = {{NULL, GORT_RECV, &v, false}, {b, GORT_SEND, &w, false}};
    misc_bad += gort_select(s1, 2, false) != 1 || gort_chan_len(b) != 1;
    misc_bad += gort_select(s1, 2, false) != -1; /* full now */

    /* Closed: a receive case is ready with ok false and a zero value. */
    gort_chan_close(c);
    v = 77;
    gort_case cl[2] = {{c, GORT_RECV, &v, true}, {NULL, GORT_SEND, &w, false}};
    misc_bad += gort_select(cl, 2, true) != 0 || cl[0].ok || v != 0;
    /* ... and after the buffered value of b is taken, b too. */
    gort_chan_close(b);
    gort_case cl2[2] = {{b, GORT_RECV, &v, false}, {NULL, GORT_RECV, &v, false}};
    misc_bad += gort_select(cl2, 2, true) != 0 || !cl2[0].ok || v != 9;
    misc_bad += gort_select(cl2, 2, true) != 0 || cl2[0].ok || v != 0;
    gort_chan_free(c);
    gort_chan_free(b);
}

static void test_default_nil_closed(void)
{
    GT_RUN(misc_body, NULL);
    CU_ASSERT_EQUAL(misc_bad, 0);
}

/* ---- blocking select woken by a plain send, receive or close ---- */

typedef struct wake_arg {
    gort_chan *c;
    int op; /* what the partner does */
} wake_arg_t;

static void partner(void *a)
{
    wake_arg_t *w = a;
    while (waiters(w->c, w->op == GORT_RECV) == 0)
        gort_yield();
    long v = 31;
    if (w->op == GORT_SEND)
        gort_chan_send(w->c, &v);
    else if (w->op == GORT_RECV)
        gort_chan_recv(w->c, &v);
    else
        gort_chan_close(w->c);
}

static int block_bad;
static void block_body(void *a)
{
    int settle_base = gort_numgoroutine(); /* abandoned goroutines of earlier tests stay */
    (void)a;
    block_bad = 0;
    gort_chan *c[4];
    for (int i = 0; i < 4; i++)
        c[i] = gort_chan_make(sizeof(long), 0);
    for (int round = 0; round < 40; round++) {
        int target = round % 4;
        int op = round % 3 == 0 ? GORT_SEND : round % 3 == 1 ? GORT_RECV : 0;
        wake_arg_t w = {c[target], op};
        gort_go(partner, &w);
        long vals[4] = {0, 0, 0, 0};
        long out = 12;
        gort_case cs[4];
        for (int i = 0; i < 4; i++) {
            /* Our case on the target is the opposite of the partner's. */
            int myop = i != target ? GORT_RECV : op == GORT_RECV ? GORT_SEND : GORT_RECV;
            cs[i] = (gort_case){c[i], myop, myop == GORT_SEND ? (void *)&out : (void *)&vals[i], false};
        }
        int r = gort_select(cs, 4, true);
        block_bad += r != target;
        if (op == GORT_SEND)
            block_bad += !cs[r].ok || vals[r] != 31;
        else if (op == 0)
            block_bad += cs[r].ok || vals[r] != 0;
        /* Our other sudogs are gone from their queues. */
        for (int i = 0; i < 4; i++)
            block_bad += waiters(c[i], false) + waiters(c[i], true);
        if (op == 0) {
            gort_chan_free(c[target]);
            c[target] = gort_chan_make(sizeof(long), 0);
        }
        gt_settle_goroutines(settle_base, 2000);
    }
    for (int i = 0; i < 4; i++)
        gort_chan_free(c[i]);
}

static void test_block_wake(void)
{
    for (int p = 1; p <= 2; p++) {
        with_procs(p, block_body, NULL);
        CU_ASSERT_EQUAL(block_bad, 0);
    }
}

/* ---- select meets select; the same channel twice in one select ---- */

static gort_chan *ss_a, *ss_b;
static _Atomic long ss_got;
static void ss_peer(void *a)
{
    long n = (long)(intptr_t)a;
    for (long i = 0; i < n; i++) {
        long v = i, r = -1;
        /* Send on a or receive on b, whichever partner comes. */
        gort_case cs[2] = {{ss_a, GORT_SEND, &v, false}, {ss_b, GORT_RECV, &r, false}};
        if (gort_select(cs, 2, true) == 1)
            atomic_fetch_add(&ss_got, r + 1);
        else
            atomic_fetch_add(&ss_got, v + 1);
    }
}

static long ss_total;
static void select_pair_body(void *a)
{
    int settle_base = gort_numgoroutine(); /* abandoned goroutines of earlier tests stay */
    (void)a;
    ss_a = gort_chan_make(sizeof(long), 0);
    ss_b = gort_chan_make(sizeof(long), 0);
    atomic_store(&ss_got, 0);
    const long n = 20000;
    gort_go(ss_peer, (void *)(intptr_t)n);
    ss_total = 0;
    for (long i = 0; i < n; i++) {
        long v = i, r = -1;
        /* The same channel (a) twice, once each way, plus b. */
        gort_case cs[3] = {{ss_a, GORT_RECV, &r, false}, {ss_b, GORT_SEND, &v, false}, {ss_a, GORT_SEND, &v, false}};
        int k = gort_select(cs, 3, true);
        if (k == 0)
            ss_total += r + 1;
        else if (k == 1)
            ss_total += v + 1;
        else
            ss_total = -1000000000; /* nobody receives on a: impossible */
    }
    gt_settle_goroutines(settle_base, 2000);
    gort_chan_free(ss_a);
    gort_chan_free(ss_b);
}

static void test_select_meets_select(void)
{
    for (int p = 1; p <= 2; p++) {
        with_procs(p, select_pair_body, NULL);
        const long n = 20000;
        CU_ASSERT_EQUAL(ss_total, n * (n + 1) / 2);
        CU_ASSERT_EQUAL(atomic_load(&ss_got), n * (n + 1) / 2);
    }
}

/* ---- many senders and receivers selecting over several channels ---- */

#define MS_CH 4
#define MS_SEND 8
#define MS_RECV 6
#define MS_PER 3000
static gort_chan *ms_ch[MS_CH];
static gort_chan *ms_quit;
static _Atomic uint8_t ms_seen[MS_SEND * MS_PER];
static _Atomic long long ms_sum;
static gort_waitgroup ms_swg, ms_rwg;

static void ms_sender(void *a)
{
    long base = (long)(intptr_t)a * MS_PER;
    for (long i = 0; i < MS_PER; i++) {
        long v = base + i;
        gort_case cs[MS_CH];
        for (int k = 0; k < MS_CH; k++)
            cs[k] = (gort_case){ms_ch[k], GORT_SEND, &v, false};
        gort_select(cs, MS_CH, true);
    }
    gort_wg_done(&ms_swg);
}

static void ms_receiver(void *a)
{
    (void)a;
    long long s = 0;
    for (;;) {
        long v = -1;
        gort_case cs[MS_CH + 1];
        for (int k = 0; k < MS_CH; k++)
            cs[k] = (gort_case){ms_ch[k], GORT_RECV, &v, false};
        cs[MS_CH] = (gort_case){ms_quit, GORT_RECV, NULL, false};
        int r = gort_select(cs, MS_CH + 1, true);
        if (r == MS_CH)
            break;
        atomic_fetch_add_explicit(&ms_seen[v], 1, memory_order_relaxed);
        s += v;
    }
    atomic_fetch_add(&ms_sum, s);
    gort_wg_done(&ms_rwg);
}

static void ms_body(void *a)
{
    size_t cap = (size_t)(intptr_t)a;
    for (int k = 0; k < MS_CH; k++)
        ms_ch[k] = gort_chan_make(sizeof(long), k % 2 ? cap : 0);
    ms_quit = gort_chan_make(0, 0);
    gort_wg_add(&ms_swg, MS_SEND);
    gort_wg_add(&ms_rwg, MS_RECV);
    for (int i = 0; i < MS_RECV; i++)
        gort_go(ms_receiver, NULL);
    for (int i = 0; i < MS_SEND; i++)
        gort_go(ms_sender, (void *)(intptr_t)i);
    gort_wg_wait(&ms_swg);
    /* Buffered values are still there: receivers take them before quit
     * is closed only if we wait for the buffers to drain. */
    for (int k = 0; k < MS_CH; k++)
        while (gort_chan_len(ms_ch[k]) > 0)
            gort_yield();
    gort_chan_close(ms_quit);
    gort_wg_wait(&ms_rwg);
    for (int k = 0; k < MS_CH; k++)
        gort_chan_free(ms_ch[k]);
    gort_chan_free(ms_quit);
}

static void test_many_selectors(void)
{
    const long n = (long)MS_SEND * MS_PER;
    for (int p = 1; p <= 2; p++)
        for (int cap = 0; cap <= 8; cap += 8) {
            memset((void *)ms_seen, 0, sizeof ms_seen);
            atomic_store(&ms_sum, 0);
            with_procs(p, ms_body, (void *)(intptr_t)cap);
            int bad = 0;
            for (long i = 0; i < n; i++)
                bad += atomic_load(&ms_seen[i]) != 1;
            CU_ASSERT_EQUAL(bad, 0);
            CU_ASSERT_EQUAL(atomic_load(&ms_sum), (long long)n * (n - 1) / 2);
        }
}

/* ---- many cases (beyond the on-stack arrays) ---- */

static int big_bad;
static void big_select_body(void *a)
{
    (void)a;
    enum { N = 100 };
    gort_chan *c[N];
    for (int i = 0; i < N; i++)
        c[i] = gort_chan_make(sizeof(int), 1);
    big_bad = 0;
    int hits[N] = {0};
    for (int k = 0; k < 2000; k++) {
        int j = k % N, x = j;
        gort_chan_send(c[j], &x);
        gort_case cs[N];
        int v = -1;
        for (int i = 0; i < N; i++)
            cs[i] = (gort_case){c[i], GORT_RECV, &v, false};
        int r = gort_select(cs, N, true);
        big_bad += r != j || v != j;
        hits[r]++;
    }
    for (int i = 0; i < N; i++)
        gort_chan_free(c[i]);
}

static void test_many_cases(void)
{
    GT_RUN(big_select_body, NULL);
    CU_ASSERT_EQUAL(big_bad, 0);
}

/* ---- timeout: a select on a timer's channel ---- */

static int to_case;
static int64_t to_elapsed, to_value_late;
static void timeout_body(void *a)
{
    (void)a;
    gort_chan *never = gort_chan_make(sizeof(long), 0);
    int64_t t0 = gort_nanotime();
    gort_timer *tm = gort_timer_new(5 * 1000 * 1000);
    int64_t fired = 0;
    long v;
    gort_case cs[2] = {{never, GORT_RECV, &v, false}, {gort_timer_chan(tm), GORT_RECV, &fired, false}};
    to_case = gort_select(cs, 2, true);
    to_elapsed = gort_nanotime() - t0;
    to_value_late = fired - (t0 + 5 * 1000 * 1000);
    gort_timer_free(tm);
    gort_chan_free(never);
}

static void test_timeout(void)
{
    GT_RUN(timeout_body, NULL);
    CU_ASSERT_EQUAL(to_case, 1);
    CU_ASSERT_TRUE(to_elapsed >= 5 * 1000 * 1000);
    CU_ASSERT_TRUE(to_value_late >= 0);
}

GT_SUITE(select,
         {"fairness", test_fairness},
         {"mixed_fairness", test_mixed_fairness},
         {"default_nil_closed", test_default_nil_closed},
         {"block_wake", test_block_wake},
         {"select_meets_select", test_select_meets_select},
         {"many_selectors", test_many_selectors},
         {"many_cases", test_many_cases},
         {"timeout", test_timeout})
