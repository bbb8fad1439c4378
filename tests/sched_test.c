/*
 * sched_test.c: the scheduler as users see it: spawning and joining,
 * spreading over every M, stealing, gort_maxprocs, yield, sleep, locked
 * threads, gort_main's life cycle.
 */
#include <fenv.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "chan.h"
#include "runtime.h"
#include "test.h"

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

/* ---- a million goroutines ---- */

static _Atomic int64_t msum;
static gort_waitgroup mwg;

static void add_one(void *a)
{
    atomic_fetch_add_explicit(&msum, (int64_t)(intptr_t)a, memory_order_relaxed);
    gort_wg_done(&mwg);
}

static int64_t million_n;
static void million_body(void *arg)
{
    (void)arg;
    int64_t n = million_n;
    atomic_store(&msum, 0);
    gort_wg_add(&mwg, n);
    for (int64_t i = 1; i <= n; i++)
        gort_go(add_one, (void *)(intptr_t)i);
    gort_wg_wait(&mwg);
}

static void test_million(void)
{
#if defined(GORT_TSAN)
    million_n = 5000; /* TSan shadows every stack page: a million need >20 GiB */
#else
    /* GORT_TEST_SCALE=0 (valgrind): a thousand. */
    million_n = gt_scale() == 0 ? 1000 : 1000000;
#endif
    GT_RUN(million_body, NULL);
    CU_ASSERT_EQUAL(atomic_load(&msum), million_n * (million_n + 1) / 2);
}

/* ---- binary spawn tree ---- */

typedef struct tree_node {
    int depth;
    int64_t result;
    gort_waitgroup *parent_wg;
} tree_node;

static void tree(void *arg)
{
    tree_node *n = arg;
    if (n->depth == 0) {
        n->result = 1;
    } else {
        gort_waitgroup wg = {0};
        tree_node l = {n->depth - 1, 0, &wg}, r = {n->depth - 1, 0, &wg};
        gort_wg_add(&wg, 2);
        gort_go(tree, &l);
        gort_go(tree, &r);
        gort_wg_wait(&wg);
        n->result = l.result + r.result + 1;
    }
    if (n->parent_wg)
        gort_wg_done(n->parent_wg);
}

static void tree_body(void *arg) { tree(arg); }

static void test_spawn_tree(void)
{
#if defined(GORT_TSAN)
    int depth = 11; /* TSan: at most 8,128 live fibers, and a binary tree keeps most of it alive */
#else
    int depth = 16;
#endif
    tree_node root = {depth, 0, NULL};
    GT_RUN(tree_body, &root);
    CU_ASSERT_EQUAL(root.result, (1 << (depth + 1)) - 1);
}

/* ---- CPU-bound goroutines reach every M; stealing happens ---- */

#define MAXT 64
typedef struct {
    _Atomic pid_t tids[MAXT * 8];
    _Atomic int n;
    gort_waitgroup wg;
    _Atomic int running;
    int want;
} spread_t;

static void record_tid(spread_t *s)
{
    pid_t t = gettid_();
    int n = atomic_load(&s->n);
    for (int i = 0; i < n; i++)
        if (atomic_load(&s->tids[i]) == t)
            return;
    int k = atomic_fetch_add(&s->n, 1);
    if (k < MAXT * 8)
        atomic_store(&s->tids[k], t);
}

static _Atomic uint64_t spread_sink; /* many writers: keeps the loop, no data race */
static void burn(void *arg)
{
    spread_t *s = arg;
    /* Wait (without yielding) until as many goroutines run at once as
     * there are Ps: proves they run in parallel on different Ms. */
    atomic_fetch_add(&s->running, 1);
    int64_t deadline = gort_nanotime() + 2000000000LL;
    while (atomic_load(&s->running) < s->want && gort_nanotime() < deadline) {
    }
    uint64_t x = 1;
    for (int i = 0; i < 2000000; i++)
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    atomic_store_explicit(&spread_sink, x, memory_order_relaxed);
    record_tid(s);
    gort_wg_done(&s->wg);
}

static spread_t *spread_run(int procs, int ngo)
{
    spread_t *s = calloc(1, sizeof *s);
    s->want = procs;
    gort_wg_add(&s->wg, ngo);
    for (int i = 0; i < ngo; i++)
        gort_go(burn, s);
    gort_wg_wait(&s->wg);
    return s;
}

static int spread_procs;
static int spread_distinct;
static uint64_t spread_steals;
static void spread_body(void *arg)
{
    (void)arg;
    gort_stats before, after;
    gort_stats_get(&before);
    spread_t *s = spread_run(spread_procs, spread_procs);
    gort_stats_get(&after);
    spread_distinct = atomic_load(&s->n);
    spread_steals = after.steals - before.steals;
    free(s);
}

/* No preemption while it runs: four Ms on two CPUs take turns, and a
 * goroutine preempted after the rendezvous could finish on the M of one
 * that already finished (three distinct threads, about one run in five). */
static void test_every_m(void)
{
    int old = gort_maxprocs(4);
    int64_t slice = __atomic_load_n(&gort__settings.slice_ns, __ATOMIC_RELAXED);
    __atomic_store_n(&gort__settings.slice_ns, 3600LL * 1000000000, __ATOMIC_RELAXED); /* sysmon reads it */
    spread_procs = 4;
    GT_RUN(spread_body, NULL);
    __atomic_store_n(&gort__settings.slice_ns, slice, __ATOMIC_RELAXED);
    CU_ASSERT_EQUAL(spread_distinct, 4);
    /* Spawned on one P, run on four: the other three had to steal. */
    CU_ASSERT_TRUE(spread_steals >= 3);
    gort_maxprocs(old);
}

/* ---- the migrations counter ---- */

/* Four goroutines meet on four Ps (spinning until all four run at once),
 * then park.  With one P left, every one that met on another P resumes
 * on P 0: each is a migration.  And a pair talking through runnext does
 * not move at all. */
#define MG_N 4
static _Atomic int mg_arrived;
static int mg_pid[MG_N];
static gort_chan *mg_ch[MG_N];
static gort_waitgroup mg_met, mg_done;
static uint64_t mg_migrations;
static int mg_expected;
static void mg_worker(void *arg)
{
    int i = (int)(intptr_t)arg;
    atomic_fetch_add(&mg_arrived, 1);
    while (atomic_load(&mg_arrived) < MG_N)
        gort__cpu_relax();
    mg_pid[i] = gort__getm()->p->id;
    gort_wg_done(&mg_met);
    long v;
    gort_chan_recv(mg_ch[i], &v);
    gort_wg_done(&mg_done);
}
static bool mg_all_parked(void)
{
    for (int i = 0; i < MG_N; i++)
        if (!atomic_load_explicit(&mg_ch[i]->recvq.first, memory_order_acquire))
            return false;
    return true;
}
static void mg_body(void *arg)
{
    (void)arg;
    atomic_store(&mg_arrived, 0);
    gort_wg_add(&mg_met, MG_N);
    gort_wg_add(&mg_done, MG_N);
    for (int i = 0; i < MG_N; i++) {
        mg_ch[i] = gort_chan_make(sizeof(long), 0);
        gort_go(mg_worker, (void *)(intptr_t)i);
    }
    gort_wg_wait(&mg_met);
    while (!mg_all_parked())
        gort_sleep(100000);
    gort_maxprocs(1);
    mg_expected = 0;
    for (int i = 0; i < MG_N; i++)
        mg_expected += mg_pid[i] != 0;
    gort_stats before, after;
    gort_stats_get(&before);
    for (int i = 0; i < MG_N; i++) {
        long v = i;
        gort_chan_send(mg_ch[i], &v);
    }
    gort_wg_wait(&mg_done);
    gort_stats_get(&after);
    mg_migrations = after.migrations - before.migrations;
    for (int i = 0; i < MG_N; i++)
        gort_chan_free(mg_ch[i]);
}
static void test_migrations(void)
{
    int old = gort_maxprocs(MG_N);
    int64_t slice = __atomic_load_n(&gort__settings.slice_ns, __ATOMIC_RELAXED);
    __atomic_store_n(&gort__settings.slice_ns, 3600LL * 1000000000, __ATOMIC_RELAXED); /* as every_m */
    GT_RUN(mg_body, NULL);
    __atomic_store_n(&gort__settings.slice_ns, slice, __ATOMIC_RELAXED);
    gort_maxprocs(old);
    CU_ASSERT_TRUE(mg_expected >= MG_N - 1); /* four Ps: at most one was P 0 */
    CU_ASSERT_TRUE(mg_migrations >= (uint64_t)mg_expected);
}

/* ---- wake-affine placement never strands a goroutine ---- */

/* ready() sends a goroutine back to the P it last ran on when that P is
 * running; a P that goes idle at that moment must still run it (or the
 * waker takes it back).  Bursts of cross-P hand-offs with idle gaps in
 * between make Ps go idle again and again under the puts: every
 * goroutine of every round must finish (a stranded one would hang the
 * round; the child then dies of the deadlock check or the timeout). */
#define AF_ROUNDS 3000
#define AF_G 6
static gort_chan *af_ch[AF_G];
static gort_waitgroup af_wg;
static void af_worker(void *arg)
{
    int i = (int)(intptr_t)arg;
    long v;
    while (gort_chan_recv(af_ch[i], &v)) {
        for (volatile int k = 0; k < 200; k++) {
        }
        gort_wg_done(&af_wg);
    }
}
static void af_body(void *arg)
{
    (void)arg;
    gort_stats before, after;
    gort_stats_get(&before);
    for (int i = 0; i < AF_G; i++) {
        af_ch[i] = gort_chan_make(sizeof(long), 0);
        gort_go(af_worker, (void *)(intptr_t)i);
    }
    long done = 0;
    for (long r = 0; r < AF_ROUNDS; r++) {
        gort_wg_add(&af_wg, AF_G);
        for (int i = 0; i < AF_G; i++)
            gort_chan_send(af_ch[i], &r);
        gort_wg_wait(&af_wg);
        done++;
        if (r % 16 == 0)
            gort_sleep(20000); /* let the other P go idle */
    }
    for (int i = 0; i < AF_G; i++)
        gort_chan_close(af_ch[i]);
    gort_sleep(1000000);
    for (int i = 0; i < AF_G; i++)
        gort_chan_free(af_ch[i]);
    gort_stats_get(&after);
    printf("rounds=%ld migrations=%llu\n", done, (unsigned long long)(after.migrations - before.migrations));
}
GT_CHILD(affine_rounds)
{
    gort__handoff_always_home = true; /* the put paths, not the balance rule */
    gort_main(af_body, NULL);
}
static void test_affine_no_strand(void)
{
    const char *env[] = {"GORT_MAXPROCS=2", NULL};
    char want[64];
    snprintf(want, sizeof want, "rounds=%d ", AF_ROUNDS);
    CU_ASSERT_TRUE(gt_child_expect("affine_rounds", env, 120, want));
}

/* Staging shared by the next two tests, at 2 procs: a spinner H holds
 * the other P, and a waiter W sits parked on hs.ch's receive queue as if
 * it had last run where H runs.  H spins while phase is 0 (its P never
 * enters the scheduler, so it neither steals nor runs W), yields while it
 * is 1, and returns at 2.  W records the P it runs on after its receive. */
static struct {
    _Atomic int phase, hp, wp;
    _Atomic(gort_g_t *) w;
    _Atomic(gort_m_t *) hm; /* the M that ran the spinner */
    gort_chan *ch;
} hs = {.hp = -1, .wp = -1};
static void hs_spinner(void *arg)
{
    (void)arg;
    atomic_store(&hs.hm, gort__getm());
    atomic_store(&hs.hp, gort__getm()->p->id);
    while (atomic_load(&hs.phase) == 0)
        gort__cpu_relax();
    while (atomic_load(&hs.phase) == 1)
        gort_yield();
}
static void hs_waiter(void *arg)
{
    (void)arg;
    atomic_store(&hs.w, gort__getg());
    long v;
    gort_chan_recv(hs.ch, &v);
    atomic_store(&hs.wp, gort__getm()->p->id);
}
static void hs_stage(void)
{
    hs.ch = gort_chan_make(sizeof(long), 0);
    gort_go(hs_spinner, NULL);
    while (atomic_load(&hs.hp) < 0)
        gort_sleep(100000); /* the other P takes the spinner */
    gort_go(hs_waiter, NULL);
    gort_g_t *w;
    while (!(w = atomic_load(&hs.w)) || !atomic_load_explicit(&hs.ch->recvq.first, memory_order_acquire))
        gort_sleep(100000);
    atomic_store_explicit(&w->lastp, gort__allp[atomic_load(&hs.hp)], memory_order_relaxed);
}

/* The waker's take-back, staged: ready() finds W's last P running (H
 * holds it), and the hook then lets that P go idle before the put lands,
 * so the waker finds it idle and takes W back.  W must run, and must not
 * have been left in the idle P's inbox: at 2 procs W would still run
 * without the take-back (the wakep after every put can only pick W's P),
 * so each round checks that the waker took W back (the runtime counts
 * take-backs) and that W is not in the idle P's inbox when the send
 * returns.  (Checked by hand: with the take-back removed the count stays
 * 0, and W is seen left in the inbox in some rounds; the M that the put's
 * wakep wakes usually runs it first.) */
#define TB_ROUNDS 20
static _Atomic int tb_hooked;
static void tb_hook(gort_p_t *lp)
{
    if (lp->id != atomic_load(&hs.hp) || atomic_load(&hs.phase) == 2)
        return;
    atomic_store(&hs.phase, 2); /* the spinner returns; its P goes idle */
    while (atomic_load_explicit(&lp->status, memory_order_acquire) == P_RUNNING)
        gort__cpu_relax();
    /* And its M asleep, past its idle path's last look at the inbox: only
     * the put's own wakep can then wake an M to take W from there. */
    gort_m_t *hm = atomic_load(&hs.hm);
    for (bool blocked = false; !blocked;) {
        gort__lock(&gort__sched.lock); /* blocked is under it */
        blocked = hm->blocked;
        gort__unlock(&gort__sched.lock);
    }
    atomic_store(&tb_hooked, 1);
}
static void tb_body(void *arg)
{
    (void)arg;
    int hooked = 0, left = 0, taken = 0, done = 0;
    for (int r = 0; r < TB_ROUNDS; r++) {
        atomic_store(&hs.phase, 0);
        atomic_store(&hs.hp, -1);
        atomic_store(&hs.wp, -1);
        atomic_store(&hs.w, NULL);
        atomic_store(&hs.hm, NULL);
        atomic_store(&tb_hooked, 0);
        hs_stage();
        gort__affine_hook = tb_hook;
        gort_g_t *w = atomic_load(&hs.w);
        gort_p_t *lp = gort__allp[atomic_load(&hs.hp)];
        uint64_t tb0 = atomic_load(&gort__affine_takebacks);
        long v = 1;
        gort_chan_send(hs.ch, &v);
        left += atomic_load_explicit(&lp->inbox, memory_order_acquire) == w;
        taken += atomic_load(&gort__affine_takebacks) - tb0 == 1;
        gort__affine_hook = NULL;
        while (atomic_load(&hs.wp) < 0)
            gort_sleep(100000);
        atomic_store(&hs.phase, 2);
        hooked += atomic_load(&tb_hooked);
        done++;
        gort_chan_free(hs.ch);
        gort_sleep(1000000); /* the spinner and the waiter return */
    }
    printf("hooked=%d taken=%d left=%d w_done=%d\n", hooked, taken, left, done);
}
GT_CHILD(affine_takeback)
{
    gort__handoff_always_home = true; /* both queues are empty here */
    gort_main(tb_body, NULL);
}
static void test_affine_takeback(void)
{
    if (gort__settings.randomize)
        GT_SKIP("no affine puts under GORT_DEBUG=randomize (DEBUG builds)");
    const char *env[] = {"GORT_MAXPROCS=2", NULL};
    char want[64];
    snprintf(want, sizeof want, "hooked=%d taken=%d left=0 w_done=%d", TB_ROUNDS, TB_ROUNDS, TB_ROUNDS);
    CU_ASSERT_TRUE(gt_child_expect("affine_takeback", env, 120, want));
}

/* The balance rule for channel hand-offs (staged as above): main, on the
 * other P, hands W a value.  With both queues empty (a tie) W runs on
 * main's P; with goroutines queued behind main and none at H's P, W goes
 * home. */
static _Atomic int hb_home;
static void hb_noop(void *arg) { (void)arg; }
static void hb_hook(gort_p_t *lp)
{
    if (lp->id == atomic_load(&hs.hp))
        atomic_store(&hb_home, 1);
}
static void hb_body(void *arg)
{
    int queued = (int)(intptr_t)arg;
    hs_stage();
    int mine = gort__getm()->p->id;
    for (int i = 0; i < queued; i++)
        gort_go(hb_noop, NULL); /* queued on our P: H's P never looks */
    gort__affine_hook = hb_hook;
    long v = 1;
    gort_chan_send(hs.ch, &v);
    gort__affine_hook = NULL;
    /* Where W runs must show where it was put, so neither P may steal it:
     * a P only steals from inside its scheduler. */
    if (queued == 0) {
        /* W is in our runnext: park so it runs here; H keeps spinning. */
        while (atomic_load(&hs.wp) < 0)
            gort_sleep(100000);
        atomic_store(&hs.phase, 1);
    } else {
        /* W is at H's P: H yields to it; we keep our P busy. */
        atomic_store(&hs.phase, 1);
        while (atomic_load(&hs.wp) < 0)
            gort__cpu_relax();
    }
    atomic_store(&hs.phase, 2);
    printf("home=%d ran_at_home=%d ran_here=%d\n", atomic_load(&hb_home),
           atomic_load(&hs.wp) == atomic_load(&hs.hp), atomic_load(&hs.wp) == mine);
    gort_chan_free(hs.ch);
}
GT_CHILD(handoff_tie) { gort_main(hb_body, (void *)(intptr_t)0); }
GT_CHILD(handoff_home) { gort_main(hb_body, (void *)(intptr_t)3); }
static void test_handoff_balance(void)
{
    if (gort__settings.randomize)
        GT_SKIP("no affine puts under GORT_DEBUG=randomize (DEBUG builds)");
    const char *env[] = {"GORT_MAXPROCS=2", NULL};
    CU_ASSERT_TRUE(gt_child_expect("handoff_tie", env, 60, "home=0 ran_at_home=0 ran_here=1"));
    CU_ASSERT_TRUE(gt_child_expect("handoff_home", env, 60, "home=1 ran_at_home=1 ran_here=0"));
}

/* Gs are cache-line aligned (malg), so that the fields a switch touches
 * share one line: checked on fresh and on reused Gs. */
#define GL_N 64
static _Atomic int gl_misaligned, gl_seen;
static gort_waitgroup gl_wg;
static void gl_child(void *a)
{
    (void)a;
    if ((uintptr_t)gort__getg() % GORT_CACHELINE != 0)
        atomic_fetch_add(&gl_misaligned, 1);
    atomic_fetch_add(&gl_seen, 1);
    gort_wg_done(&gl_wg);
}
static void gl_body(void *a)
{
    (void)a;
    for (int round = 0; round < 3; round++) {
        gort_wg_add(&gl_wg, GL_N);
        for (int i = 0; i < GL_N; i++)
            gort_go(gl_child, NULL);
        gort_wg_wait(&gl_wg);
    }
}
static void test_g_aligned(void)
{
    GT_RUN(gl_body, NULL);
    CU_ASSERT_EQUAL(atomic_load(&gl_seen), 3 * GL_N);
    CU_ASSERT_EQUAL(atomic_load(&gl_misaligned), 0);
}

/* ---- gort_maxprocs at run time ---- */

static int mp_prev1, mp_prev2, mp_d1, mp_d3;
static void maxprocs_body(void *arg)
{
    (void)arg;
    mp_prev1 = gort_maxprocs(1);
    spread_t *s = spread_run(1, 6);
    mp_d1 = atomic_load(&s->n);
    free(s);
    mp_prev2 = gort_maxprocs(3);
    s = spread_run(3, 3);
    mp_d3 = atomic_load(&s->n);
    free(s);
}

static void test_maxprocs(void)
{
    int old = gort_maxprocs(2);
    GT_RUN(maxprocs_body, NULL);
    CU_ASSERT_EQUAL(mp_prev1, 2);
    CU_ASSERT_EQUAL(mp_prev2, 1);
    CU_ASSERT_EQUAL(mp_d1, 1);
    CU_ASSERT_EQUAL(mp_d3, 3);
    CU_ASSERT_EQUAL(gort_maxprocs(old), 3);
}

/* ---- solo mode (one P) across gort_maxprocs changes ---- */

/* With one P the owner moves runnext and the run queue head with plain
 * stores (no stealer exists).  Flip between 1 and 2 procs while pairs of
 * goroutines hand values through runnext and others queue behind them:
 * every value must arrive exactly once, and the flag must follow the
 * proc count. */
#define SOLO_PAIRS 4
#define SOLO_FLIPS 60
static _Atomic bool solo_stop;
static _Atomic long solo_wrong, solo_count;
static gort_waitgroup solo_wg;
static bool solo_flag_ok;
static void solo_echo(void *arg)
{
    gort_chan **c = arg;
    long v;
    while (gort_chan_recv(c[0], &v))
        gort_chan_send(c[1], &v);
    gort_wg_done(&solo_wg);
}
static void solo_driver(void *arg)
{
    gort_chan **c = arg;
    long i = 0;
    while (!atomic_load(&solo_stop)) {
        long v = ++i, w;
        gort_chan_send(c[0], &v);
        gort_chan_recv(c[1], &w);
        atomic_fetch_add(&solo_count, 1);
        if (w != v)
            atomic_fetch_add(&solo_wrong, 1);
        if (i % 64 == 0)
            gort_yield(); /* queue behind the others now and then */
    }
    gort_chan_close(c[0]);
    gort_wg_done(&solo_wg);
}
static void solo_body(void *arg)
{
    (void)arg;
    int old = gort_maxprocs(1);
    gort_chan *c[SOLO_PAIRS][2];
    atomic_store(&solo_stop, false);
    atomic_store(&solo_wrong, 0);
    atomic_store(&solo_count, 0);
    gort_wg_add(&solo_wg, 2 * SOLO_PAIRS);
    for (int k = 0; k < SOLO_PAIRS; k++) {
        c[k][0] = gort_chan_make(sizeof(long), 0);
        c[k][1] = gort_chan_make(sizeof(long), 0);
        gort_go(solo_echo, c[k]);
        gort_go(solo_driver, c[k]);
    }
    solo_flag_ok = true;
    for (int f = 0; f < SOLO_FLIPS; f++) {
        int n = f % 2 ? 1 : 2;
        gort_maxprocs(n);
        int32_t procs = atomic_load(&gort__gomaxprocs);
        for (int32_t i = 0; i < procs; i++)
            if (gort__allp[i]->solo != (procs == 1))
                solo_flag_ok = false;
        gort_sleep(500 * 1000);
    }
    atomic_store(&solo_stop, true);
    gort_wg_wait(&solo_wg);
    for (int k = 0; k < SOLO_PAIRS; k++) {
        gort_chan_free(c[k][0]);
        gort_chan_free(c[k][1]);
    }
    gort_maxprocs(old);
}
/* A lost value hangs its pair (and the test); a duplicated or stale one
 * comes back different from what its driver sent. */
static void test_solo_flip(void)
{
    GT_RUN(solo_body, NULL);
    CU_ASSERT_TRUE(solo_flag_ok);
    CU_ASSERT_TRUE(atomic_load(&solo_count) > SOLO_FLIPS);
    CU_ASSERT_EQUAL(atomic_load(&solo_wrong), 0);
}

/* ---- floating-point control state is per goroutine ---- */

/* The x87 control word and MXCSR's control bits are callee-saved: a
 * goroutine's rounding mode survives its parks, and never leaks into the
 * goroutine that runs next (gogo reloads them only when they differ). */
#define FPENV_ROUNDS 20000
static gort_chan *fe_a, *fe_b;
static _Atomic int fe_bad;
static gort_waitgroup fe_wg;
static unsigned fe_mxcsr_rc(void)
{
    unsigned v;
    __asm__ volatile("stmxcsr %0" : "=m"(v));
    return (v >> 13) & 3; /* rounding control */
}
static unsigned fe_x87_rc(void)
{
    unsigned short v;
    __asm__ volatile("fnstcw %0" : "=m"(v));
    return (v >> 10) & 3;
}
static void fe_check(unsigned want)
{
    if (fe_mxcsr_rc() != want || fe_x87_rc() != want)
        atomic_fetch_add(&fe_bad, 1);
}
static void fe_peer(void *arg)
{
    (void)arg;
    fesetround(FE_TOWARDZERO); /* RC 3 in both */
    long v;
    while (gort_chan_recv(fe_b, &v)) {
        fe_check(3);
        gort_chan_send(fe_a, &v);
    }
    fesetround(FE_TONEAREST);
    gort_wg_done(&fe_wg);
}
static void fpenv_body(void *arg)
{
    (void)arg;
    fe_a = gort_chan_make(sizeof(long), 0);
    fe_b = gort_chan_make(sizeof(long), 0);
    atomic_store(&fe_bad, 0);
    gort_wg_add(&fe_wg, 1);
    gort_go(fe_peer, NULL);
    for (long i = 0; i < FPENV_ROUNDS; i++) {
        /* Half the time we run under FE_UPWARD (RC 2) ourselves. */
        unsigned want = i % 2 ? 2 : 0;
        fesetround(want ? FE_UPWARD : FE_TONEAREST);
        gort_chan_send(fe_b, &i);
        fe_check(want);
        gort_chan_recv(fe_a, &i);
        fe_check(want);
    }
    fesetround(FE_TONEAREST);
    gort_chan_close(fe_b);
    gort_wg_wait(&fe_wg);
    gort_chan_free(fe_a);
    gort_chan_free(fe_b);
}
static void test_fp_env_per_goroutine(void)
{
    GT_RUN(fpenv_body, NULL);
    CU_ASSERT_EQUAL(atomic_load(&fe_bad), 0);
}

/* ---- a runnext pair shares one slice ---- */

/* Two goroutines that hand a value back and forth run through runnext and
 * inherit each other's slice; a third one queued behind them on the same
 * P must still get its turn when that slice ends (Go preempts the pair).
 * Before sysmon enforced that, the third waited forever. */
#define PAIR_LIMIT 20000000L
static gort_chan *pr_a, *pr_b;
static _Atomic int pr_flag;
static long pr_rounds;
static void pr_third(void *arg)
{
    (void)arg;
    atomic_store(&pr_flag, 1);
}
static gort_waitgroup pr_wg;
static void pr_echo(void *arg)
{
    (void)arg;
    long v;
    while (gort_chan_recv(pr_b, &v))
        gort_chan_send(pr_a, &v);
    gort_wg_done(&pr_wg);
}
/* Makes both channels and starts the echo goroutine. */
static void pr_start(void)
{
    pr_a = gort_chan_make(sizeof(long), 0);
    pr_b = gort_chan_make(sizeof(long), 0);
    gort_wg_add(&pr_wg, 1);
    gort_go(pr_echo, NULL);
}
/* Closes pr_b, waits for the echo goroutine to see it, frees both. */
static void pr_finish(void)
{
    gort_chan_close(pr_b);
    gort_wg_wait(&pr_wg);
    gort_chan_free(pr_b);
    gort_chan_free(pr_a);
}
static void pair_body(void *arg)
{
    (void)arg;
    gort_maxprocs(1);
    atomic_store(&pr_flag, 0);
    pr_start();
    long i;
    for (i = 0; i < PAIR_LIMIT && !atomic_load(&pr_flag); i++) {
        long v = i;
        gort_chan_send(pr_b, &v);
        /* Here runnext is empty (echo readied us from it and waits to
         * send): pr_third goes there, and readying echo below kicks it to
         * the queue behind the pair. */
        if (i == 100)
            gort_go(pr_third, NULL);
        gort_chan_recv(pr_a, &v);
    }
    pr_rounds = i;
    pr_finish();
}
static void test_runnext_pair_slice(void)
{
    int old = gort_maxprocs(1);
    GT_RUN(pair_body, NULL);
    gort_maxprocs(old);
    CU_ASSERT_EQUAL(atomic_load(&pr_flag), 1);
    CU_ASSERT(pr_rounds < PAIR_LIMIT);
}

/* ---- a slice_over flag from an ended slice ---- */

/* sysmon sets slice_over for the slice it saw a runnext pair share; the
 * store can land after that slice has ended and a goroutine from the
 * queue has started a fresh one.  Honoured then, it put whatever sat in
 * runnext next (a goroutine a timer had just readied) behind the queue,
 * for a whole slice more: preempt/timer_wake_beats_global_turn saw it
 * under load.  Here the flag is set by hand, for the current slice (the
 * runnext goroutine goes behind the queue) or for the one before (it is
 * ignored).  Slices are made endless meanwhile: no preemption, and no
 * flag from sysmon. */
static _Atomic int so_seq, so_q, so_r;
static gort_waitgroup so_wg;
/* Records when it ran in *slot. */
static void so_fn(void *slot)
{
    atomic_store((_Atomic int *)slot, atomic_fetch_add(&so_seq, 1));
    gort_wg_done(&so_wg);
}
static int so_demoted[2]; /* of 200 iterations each: current, stale */
static void so_body(void *arg)
{
    (void)arg;
    for (int i = 0; i < 400; i++) {
        int stale = i & 1;
        gort_wg_add(&so_wg, 2);
        gort_go(so_fn, &so_q); /* runnext, then kicked to the queue by: */
        gort_go(so_fn, &so_r); /* runnext */
        gort_p_t *pp = gort__getm()->p;
        uint32_t tick = atomic_load(&pp->schedtick);
        atomic_store(&pp->slice_over, SLICE_OVER | (uint32_t)(tick - (uint32_t)stale));
        gort_wg_wait(&so_wg); /* schedules at our tick */
        if (atomic_load(&so_q) < atomic_load(&so_r))
            so_demoted[stale]++;
    }
}
static void test_stale_slice_over(void)
{
    int old = gort_maxprocs(1);
    int64_t slice = __atomic_load_n(&gort__settings.slice_ns, __ATOMIC_RELAXED);
    __atomic_store_n(&gort__settings.slice_ns, 3600LL * 1000000000, __ATOMIC_RELAXED); /* as every_m */
    GT_RUN(so_body, NULL);
    __atomic_store_n(&gort__settings.slice_ns, slice, __ATOMIC_RELAXED);
    gort_maxprocs(old);
    printf("(current: %d of 200 demoted, stale: %d of 200) ", so_demoted[0], so_demoted[1]);
    CU_ASSERT_EQUAL(so_demoted[0], 200);
    CU_ASSERT_EQUAL(so_demoted[1], 0);
}

/* ---- an idle P does not split a runnext pair ---- */

/* At 2 procs the idle P's spinning M may steal the busy P's runnext, after
 * giving it 3 us.  A pair talking through runnext puts the same goroutine
 * back there every few hundred ns, so the steal's CAS succeeded anyway and
 * the pair kept moving between threads; now a victim that switched
 * meanwhile keeps its runnext.  Counts how often the main goroutine of a
 * pingpong finds itself on another thread than one round trip before. */
#define STAY_ROUNDS 400000
static long stay_moves;
static long stay_excused;    /* moves away from a thread the kernel had preempted */

/* The kernel's count of involuntary switches of one of our threads. */
static long thread_nivcsw(pid_t tid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
    FILE *f = fopen(path, "r");
    long n = -1;
    if (!f)
        return -1;
    while (fgets(buf, sizeof buf, f))
        if (sscanf(buf, "nonvoluntary_ctxt_switches: %ld", &n) == 1)
            break;
    fclose(f);
    return n;
}
static void stay_body(void *arg)
{
    (void)arg;
    pr_start();
    pid_t last = gettid();
    stay_moves = 0;
    stay_excused = 0;
    for (long i = 0; i < STAY_ROUNDS; i++) {
        struct rusage ru;
        getrusage(RUSAGE_THREAD, &ru);
        long v = i;
        gort_chan_send(pr_b, &v);
        gort_chan_recv(pr_a, &v);
        pid_t t = gettid();
        if (t != last) {
            /* A thread the kernel took off its CPU during this round (a
             * loaded machine) really did not switch within 3 us: then the
             * steal is right. */
            stay_moves++;
            stay_excused += thread_nivcsw(last) != ru.ru_nivcsw;
        }
        last = t;
    }
    pr_finish();
}
static void test_runnext_pair_stays(void)
{
    /* Not under TSan or ASan: a switch there takes long enough that a
     * victim often does not switch within the 3 us, and then the steal is
     * right (570 moves in one TSan run, 168 in an ASan one).  Nor with
     * GORT_DEBUG=randomize (always on in DEBUG builds), which puts half
     * the readied goroutines on the stealable queue instead of runnext. */
#if defined(GORT_TSAN) || defined(GORT_ASAN)
    GT_SKIP("under a sanitizer a switch outlasts the steal's 3 us window");
#endif
    if (gort__settings.randomize)
        GT_SKIP("GORT_DEBUG=randomize readies half the goroutines onto the stealable queue");
    int old = gort_maxprocs(2);
    GT_RUN(stay_body, NULL);
    gort_maxprocs(old);
    /* Without the check: 54-59 moves per 200,000 round trips on the quiet
     * development VM, 14-31 unexcused per 400,000 at load 20; with it, 0
     * quiet and at most 3 at load 20.  Moves away from a thread the kernel
     * preempted during that round are right and not counted. */
    CU_ASSERT(stay_moves - stay_excused < 10);
    if (stay_moves - stay_excused >= 10)
        fprintf(stderr, "\nrunnext_pair_stays: %ld thread changes, %ld of them after the kernel preempted the thread\n",
                stay_moves, stay_excused);
}

/* ---- yield interleaves goroutines on one P ---- */

static int ylog[64];
static _Atomic int ylen;
static void yielder(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < 4; i++) {
        ylog[atomic_fetch_add(&ylen, 1)] = id;
        gort_yield();
    }
}
static void yield_body(void *arg)
{
    (void)arg;
    gort_maxprocs(1);
    atomic_store(&ylen, 0);
    gort_waitgroup wg = {0};
    (void)wg;
    gort_go(yielder, (void *)1);
    gort_go(yielder, (void *)2);
    while (atomic_load(&ylen) < 8)
        gort_yield();
}
static void test_yield(void)
{
    int old = gort_maxprocs(1);
    GT_RUN(yield_body, NULL);
    gort_maxprocs(old);
    CU_ASSERT_EQUAL(atomic_load(&ylen), 8);
    /* Alternation: no goroutine ran twice in a row. */
    int alternations = 0;
    for (int i = 1; i < 8; i++)
        alternations += ylog[i] != ylog[i - 1];
    CU_ASSERT_TRUE(alternations >= 6);
}

/* ---- ids, self, creator ---- */

static uint64_t id_main, id_child, id_seen;
static gort_waitgroup idwg;
static void id_child_fn(void *a)
{
    (void)a;
    id_seen = gort_self();
    gort_wg_done(&idwg);
}
static void id_body(void *a)
{
    (void)a;
    id_main = gort_self();
    gort_wg_add(&idwg, 1);
    id_child = gort_go(id_child_fn, NULL);
    gort_wg_wait(&idwg);
}
static void test_ids(void)
{
    CU_ASSERT_EQUAL(gort_self(), 0);
    GT_RUN(id_body, NULL);
    CU_ASSERT_EQUAL(id_main, 1);
    CU_ASSERT_TRUE(id_child > 1);
    CU_ASSERT_EQUAL(id_seen, id_child);
}

/* ---- sleep ---- */

static int64_t slept_ns[5];
static void sleep_body(void *a)
{
    (void)a;
    int64_t want[5] = {1000000, 2000000, 5000000, 10000000, 20000000};
    for (int i = 0; i < 5; i++) {
        int64_t t0 = gort_nanotime();
        gort_sleep(want[i]);
        slept_ns[i] = gort_nanotime() - t0;
    }
}
static void test_sleep(void)
{
    GT_RUN(sleep_body, NULL);
    int64_t want[5] = {1000000, 2000000, 5000000, 10000000, 20000000};
    for (int i = 0; i < 5; i++)
        CU_ASSERT_TRUE(slept_ns[i] >= want[i]);
}

/* Many sleepers wake in deadline order. */
#define NSLEEP 100
static _Atomic int wake_order[NSLEEP];
static _Atomic int wake_n;
static gort_waitgroup swg;
static int64_t sleep_deadline[NSLEEP];
static void sleeper(void *a)
{
    int i = (int)(intptr_t)a;
    int64_t d = (int64_t)(i + 1) * 1000000; /* 1 ms apart */
    gort_sleep(d);
    /* The deadline gort_sleep armed (its own clock reading, not ours: a
     * thread descheduled between the two would skew a copy). */
    sleep_deadline[i] = gort__getg()->sleeptimer->when;
    wake_order[atomic_fetch_add(&wake_n, 1)] = i;
    gort_wg_done(&swg);
}
static void sleepers_body(void *a)
{
    (void)a;
    atomic_store(&wake_n, 0);
    gort_wg_add(&swg, NSLEEP);
    for (int i = NSLEEP - 1; i >= 0; i--)
        gort_go(sleeper, (void *)(intptr_t)i);
    gort_wg_wait(&swg);
}
static void test_sleep_order(void)
{
    /* Two timers overdue at one check are readied in one batch, the
     * second into runnext ahead of the first (as Go's goready): a thread
     * descheduled for over 1 ms inverts them, and TSan's slowness at a
     * loaded box did (at 128 Ps beside a hog). */
    GT_SKIP_UNDER_TSAN("timing: 1 ms apart");
    int old = gort_maxprocs(1);
    GT_RUN(sleepers_body, NULL);
    gort_maxprocs(old);
    CU_ASSERT_EQUAL(atomic_load(&wake_n), NSLEEP);
    /* Wake order must follow the armed deadlines exactly: one P, one
     * heap.  The goroutines start at slightly different times (more so
     * under valgrind or load), so their index order proves nothing. */
    int inversions = 0;
    for (int i = 1; i < NSLEEP; i++)
        inversions += sleep_deadline[wake_order[i]] < sleep_deadline[wake_order[i - 1]];
    CU_ASSERT_EQUAL(inversions, 0);
}

/* ---- the main goroutine may finish on any thread; gort_main returns on
 * the caller's, and may be called again ---- */

static pid_t caller_tid;
static _Atomic int abandoned_ran;
static void abandoned(void *a)
{
    (void)a;
    atomic_fetch_add(&abandoned_ran, 1);
    gort_sleep(1000000000000LL); /* parked for good */
}
static void migrate_body(void *a)
{
    (void)a;
    gort_go(abandoned, NULL);
    /* Sleep so the main goroutine likely resumes on another M. */
    for (int i = 0; i < 20; i++)
        gort_sleep(100000);
}
static void test_main_returns(void)
{
    caller_tid = gettid_();
    for (int i = 0; i < 5; i++) {
        GT_RUN(migrate_body, NULL);
        CU_ASSERT_EQUAL(gettid_(), caller_tid);
    }
    CU_ASSERT_TRUE(atomic_load(&abandoned_ran) >= 1);
}

/* ---- goroutines from a thread that is not a goroutine ---- */

static gort_waitgroup fwg;
static _Atomic int foreign_count;
static void foreign_child(void *a)
{
    (void)a;
    atomic_fetch_add(&foreign_count, 1);
    gort_wg_done(&fwg);
}
static void *foreign_thread(void *a)
{
    (void)a;
    for (int i = 0; i < 100; i++)
        gort_go(foreign_child, NULL);
    return NULL;
}
static void foreign_body(void *a)
{
    (void)a;
    gort_wg_add(&fwg, 100);
    pthread_t th;
    pthread_create(&th, NULL, foreign_thread, NULL);
    gort_wg_wait(&fwg);
    pthread_join(th, NULL);
}
static void test_foreign_spawn(void)
{
    GT_RUN(foreign_body, NULL);
    CU_ASSERT_EQUAL(atomic_load(&foreign_count), 100);
}

/* ---- locked goroutines stay on their thread ---- */

static _Atomic int lock_moved, lock_other_on_it;
static _Atomic pid_t locked_tid; /* written by the locked goroutine, read by the others */
static _Atomic int lock_done;
static void locked_fn(void *a)
{
    gort_waitgroup *wg = a;
    gort_lock_thread();
    locked_tid = gettid_();
    for (int i = 0; i < 200; i++) {
        gort_sleep(50000);
        if (gettid_() != locked_tid)
            atomic_fetch_add(&lock_moved, 1);
        gort_yield();
        if (gettid_() != locked_tid)
            atomic_fetch_add(&lock_moved, 1);
    }
    atomic_store(&lock_done, 1);
    gort_unlock_thread();
    gort_wg_done(wg);
}
static void other_fn(void *a)
{
    gort_waitgroup *wg = a;
    while (!atomic_load(&lock_done)) {
        if (locked_tid && gettid_() == locked_tid)
            atomic_fetch_add(&lock_other_on_it, 1);
        gort_yield();
    }
    gort_wg_done(wg);
}
static void locked_body(void *a)
{
    (void)a;
    gort_waitgroup wg = {0};
    gort_wg_add(&wg, 5);
    gort_go(locked_fn, &wg);
    for (int i = 0; i < 4; i++)
        gort_go(other_fn, &wg);
    gort_wg_wait(&wg);
}
static void test_lock_thread(void)
{
    GT_RUN(locked_body, NULL);
    CU_ASSERT_EQUAL(atomic_load(&lock_moved), 0);
    CU_ASSERT_EQUAL(atomic_load(&lock_other_on_it), 0);
}

/* ---- threads are named: gort-sysmon, gort-mN; the main thread keeps its name ---- */

static bool read_comm(pid_t tid, char *out, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/comm", (int)tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool ok = fgets(out, (int)len, f) != NULL;
    fclose(f);
    out[strcspn(out, "\n")] = 0;
    return ok;
}
static _Atomic int tn_bad, tn_ms, tn_sysmon;
static char tn_main[32], tn_main_before[32];
static void tn_spin(void *a)
{
    int64_t end = gort_nanotime() + 20000000;
    while (gort_nanotime() < end)
        ;
    gort_wg_done((gort_waitgroup *)a);
}
static void tn_body(void *arg)
{
    (void)arg;
    gort_waitgroup wg = {0};
    for (int i = 0; i < 4; i++) { /* more Ms than the main thread's */
        gort_wg_add(&wg, 1);
        gort_go(tn_spin, &wg);
    }
    gort_wg_wait(&wg);
    read_comm(getpid(), tn_main, sizeof tn_main);
    gort__lock(&gort__sched.allm_lock);
    for (gort_m_t *mp = gort__sched.allm; mp; mp = mp->alllink) {
        char want[16], got[32];
        if (mp->is_main_thread || mp->tid == 0 || !read_comm(mp->tid, got, sizeof got))
            continue; /* the main thread, or an M whose thread has gone */
        if (mp->is_sysmon)
            snprintf(want, sizeof want, "gort-sysmon");
        else
            snprintf(want, sizeof want, "gort-m%llu", (unsigned long long)mp->id);
        if (strcmp(got, want) != 0) {
            fprintf(stderr, "\nthread %d: comm \"%s\", want \"%s\"\n", (int)mp->tid, got, want);
            atomic_fetch_add(&tn_bad, 1);
        }
        atomic_fetch_add(mp->is_sysmon ? &tn_sysmon : &tn_ms, 1);
    }
    gort__unlock(&gort__sched.allm_lock);
}
static void test_thread_names(void)
{
    CU_ASSERT_TRUE_FATAL(read_comm(getpid(), tn_main_before, sizeof tn_main_before));
    int old = gort_maxprocs(2);
    GT_RUN(tn_body, NULL);
    gort_maxprocs(old);
    CU_ASSERT_EQUAL(atomic_load(&tn_bad), 0);
    CU_ASSERT_EQUAL(atomic_load(&tn_sysmon), 1);
    CU_ASSERT_TRUE(atomic_load(&tn_ms) >= 1);
    CU_ASSERT_STRING_EQUAL(tn_main, tn_main_before); /* the main thread keeps its name */
}

GT_SUITE(sched,
         {"ids", test_ids},
         {"million", test_million},
         {"spawn_tree", test_spawn_tree},
         {"every_m", test_every_m},
         {"migrations", test_migrations},
         {"affine_no_strand", test_affine_no_strand},
         {"affine_takeback", test_affine_takeback},
         {"handoff_balance", test_handoff_balance},
         {"g_aligned", test_g_aligned},
         {"maxprocs", test_maxprocs},
         {"solo_flip", test_solo_flip},
         {"fp_env_per_goroutine", test_fp_env_per_goroutine},
         {"yield", test_yield},
         {"runnext_pair_slice", test_runnext_pair_slice},
         {"stale_slice_over", test_stale_slice_over},
         {"runnext_pair_stays", test_runnext_pair_stays},
         {"sleep", test_sleep},
         {"sleep_order", test_sleep_order},
         {"main_returns", test_main_returns},
         {"foreign_spawn", test_foreign_spawn},
         {"lock_thread", test_lock_thread},
         {"thread_names", test_thread_names})
