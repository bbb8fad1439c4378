/*
 * scale_test.c: costs that must not grow with the number of Ps (issue 20,
 * docs/runtime.md "Scaling: locks, sysmon and finding work").  Each case
 * checks a count, not a time:
 *
 *  - membarrier(2) calls are shared: threads that ask at once ride on one
 *    barrier (lock.c), so the calls made are fewer than the calls asked.
 *  - lock_contended counts acquisitions that found a runtime lock taken.
 *  - GORT_DEBUG=lockstat=1 prints per-lock lines at exit.
 *  - sysmon leaves a goroutine alone on its P (no samples, no signal) when
 *    nothing waits for the P, and spends at most its per-round budget of
 *    system calls however many Ps need a look.
 *  - A steal attempt looks only at the Ps that are not idle (the idle-P
 *    bitmap), so its probes do not grow with idle Ps.
 *  - sched.lock: a yield with the global queue empty takes it not at all,
 *    a system call's exit that takes an idle P not at all, and an M's
 *    idle/wake cycle about twice (lockstat's sched count).
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime.h"
#include "test.h"

/* ---- membarrier sharing ---- */

#define MB_THREADS 8
static _Atomic int mb_started;

static void *mb_thread(void *a)
{
    (void)a;
    atomic_fetch_add(&mb_started, 1);
    gort__membarrier();
    return NULL;
}

/* In a child: the registration must come before any other thread of
 * ours exists, as gort_main's init does it.  A barrier is held "in
 * flight" (the sequence made odd) while 8 threads ask for one: none may
 * use it (it may have passed their CPUs before they asked), so they all
 * wait for the next, and the first to see it over issues that one for
 * all of them. */
GT_CHILD(scale_membarrier)
{
    gort__membarrier_init();
    if (!gort__have_membarrier) {
        printf("no membarrier\n");
        return;
    }
    uint64_t before = atomic_load(&gort__membarrier_calls);
    atomic_fetch_add(&gort__mb_seq, 1);
    pthread_t th[MB_THREADS];
    for (int i = 0; i < MB_THREADS; i++)
        if (pthread_create(&th[i], NULL, mb_thread, NULL) != 0)
            abort();
    while (atomic_load(&mb_started) < MB_THREADS)
        sched_yield();
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL); /* they read the sequence and wait */
    atomic_fetch_add(&gort__mb_seq, 1);
    gort__futex_wake(&gort__mb_seq, INT32_MAX);
    for (int i = 0; i < MB_THREADS; i++)
        pthread_join(th[i], NULL);
    printf("asked=%d made=%llu\n", MB_THREADS,
           (unsigned long long)(atomic_load(&gort__membarrier_calls) - before));
}

static uint64_t field(const char *out, const char *name);

static void test_membarrier_shared(void)
{
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("scale_membarrier", NULL, 60, &r), 0);
    printf("\n%s", r.out);
    if (gt_contains(r.out, "no membarrier")) {
        gt_child_free(&r);
        GT_SKIP("no membarrier(2) here");
    }
    CU_ASSERT_TRUE(r.exited && r.status == 0);
    /* One barrier for the 8 (two if a thread was slow to read the
     * sequence); unshared, 8. */
    uint64_t made = field(r.out, "made=");
    CU_ASSERT_TRUE(made >= 1 && made <= 2);
    gt_child_free(&r);
}

/* ---- lock_contended ---- */

static gort_lock_t lc_lock = GORT_LOCK_INIT(LR_LEAF);
static _Atomic int lc_phase;

static void *lc_waiter(void *a)
{
    (void)a;
    atomic_store(&lc_phase, 1);
    gort__lock(&lc_lock); /* held by the main thread: contended */
    gort__unlock(&lc_lock);
    return NULL;
}

static void test_lock_contended(void)
{
    gort_stats before, after;
    gort_stats_get(&before);
    gort__lock(&lc_lock);
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, lc_waiter, NULL), 0);
    while (!atomic_load(&lc_phase))
        gort__cpu_relax();
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    gort__unlock(&lc_lock);
    pthread_join(th, NULL);
    gort_stats_get(&after);
    CU_ASSERT_TRUE(after.lock_contended - before.lock_contended >= 1);
}

/* ---- GORT_DEBUG=lockstat=1 ---- */

static gort_chan *ls_ch;
static void ls_sender(void *a)
{
    for (long i = 0; i < 20000; i++)
        gort_chan_send(ls_ch, &i);
    gort_wg_done(a);
}
static void ls_body(void *a)
{
    (void)a;
    gort_waitgroup wg = {0};
    ls_ch = gort_chan_make(sizeof(long), 16);
    gort_wg_add(&wg, 1);
    gort_go(ls_sender, &wg);
    long v;
    for (long i = 0; i < 20000; i++)
        gort_chan_recv(ls_ch, &v);
    gort_wg_wait(&wg);
    gort_chan_free(ls_ch);
}
GT_CHILD(scale_lockstat) { gort_main(ls_body, NULL); }

static void test_lockstat(void)
{
    const char *env[] = {"GORT_MAXPROCS=2", "GORT_DEBUG=lockstat=1", NULL};
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("scale_lockstat", env, 60, &r), 0);
    CU_ASSERT_TRUE(r.exited && r.status == 0);
    CU_ASSERT_TRUE(gt_contains(r.out, "lockstat: lock=chan acquisitions="));
    CU_ASSERT_TRUE(gt_contains(r.out, "lockstat: lock=sched acquisitions="));
    CU_ASSERT_TRUE(gt_contains(r.out, " hold_ns="));
    CU_ASSERT_TRUE(gt_contains(r.out, "lockstat: scale steal_attempts="));
    /* 40,000 channel operations take the channel lock at least that often. */
    const char *p = strstr(r.out, "lockstat: lock=chan acquisitions=");
    CU_ASSERT_TRUE(p && strtoull(p + strlen("lockstat: lock=chan acquisitions="), NULL, 10) >= 40000);
    gt_child_free(&r);
    /* At one P too, where channel locks would otherwise be taken the
     * plain way, which counts nothing (stw.c turns that off). */
    const char *env1[] = {"GORT_MAXPROCS=1", "GORT_DEBUG=lockstat=1", NULL};
    CU_ASSERT_EQUAL_FATAL(gt_child_run("scale_lockstat", env1, 60, &r), 0);
    CU_ASSERT_TRUE(r.exited && r.status == 0);
    p = strstr(r.out, "lockstat: lock=chan acquisitions=");
    CU_ASSERT_TRUE(p && strtoull(p + strlen("lockstat: lock=chan acquisitions="), NULL, 10) >= 40000);
    gt_child_free(&r);
    /* Off by default. */
    const char *env0[] = {"GORT_MAXPROCS=2", NULL};
    CU_ASSERT_EQUAL_FATAL(gt_child_run("scale_lockstat", env0, 60, &r), 0);
    CU_ASSERT_FALSE(gt_contains(r.out, "lockstat:"));
    gt_child_free(&r);
}

/* ---- sysmon: alone on a P, and its per-round budget ---- */

static _Atomic int sm_stop;
static void sm_spin(void *a)
{
    (void)a;
    while (!atomic_load_explicit(&sm_stop, memory_order_relaxed))
        gort__cpu_relax();
}

/* GT_SPINNERS spinners for 300 ms; prints what sysmon did meanwhile. */
static void sm_body(void *a)
{
    (void)a;
    int n = atoi(getenv("GT_SPINNERS"));
    for (int i = 0; i < n; i++)
        gort_go(sm_spin, NULL);
    gort_sleep(50 * 1000 * 1000); /* let them all start */
    gort_stats s0, s1;
    gort_stats_get(&s0);
    /* A wait with no timer and no ready: a plain thread wakes us. */
    struct timespec ts = {0, 300 * 1000 * 1000};
    gort_nanosleep(&ts, NULL);
    gort_stats_get(&s1);
    atomic_store(&sm_stop, 1);
    uint64_t rounds = s1.sysmon_rounds - s0.sysmon_rounds;
    printf("rounds=%llu syscalls=%llu signals=%llu cpu_ns=%llu\n", (unsigned long long)rounds,
           (unsigned long long)(s1.sysmon_syscalls - s0.sysmon_syscalls),
           (unsigned long long)(s1.preempt_signals - s0.preempt_signals),
           (unsigned long long)(s1.sysmon_cpu_ns - s0.sysmon_cpu_ns));
    fflush(stdout);
}
GT_CHILD(scale_sysmon) { gort_main(sm_body, NULL); }

static uint64_t field(const char *out, const char *name)
{
    const char *p = strstr(out, name);
    return p ? strtoull(p + strlen(name), NULL, 10) : ~0ULL;
}

static void test_sysmon_alone(void)
{
    GT_SKIP_UNDER_TSAN("no asynchronous preemption");
    /* 4 Ps: 3 spinners and the main goroutine, which sleeps in a wrapped
     * call (its P is handed off and runs nothing).  Nothing waits for the
     * spinners' Ps, so sysmon neither samples nor signals them: a slice
     * is 10 ms, so 300 ms would be ~90 signals if it did. */
    const char *env[] = {"GORT_MAXPROCS=4", "GT_SPINNERS=3", NULL};
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("scale_sysmon", env, 60, &r), 0);
    printf("\n%s", r.out);
    CU_ASSERT_TRUE(r.exited && r.status == 0);
    CU_ASSERT_TRUE(field(r.out, "signals=") <= 5);
    gt_child_free(&r);
}

static void test_sysmon_budget(void)
{
    GT_SKIP_UNDER_TSAN("no asynchronous preemption");
    /* 64 spinners on 32 Ps: every P has work waiting, so each needs
     * samples and signals every slice; the rounds stay within budget. */
    const char *env[] = {"GORT_MAXPROCS=32", "GT_SPINNERS=64", NULL};
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("scale_sysmon", env, 60, &r), 0);
    printf("\n%s", r.out);
    CU_ASSERT_TRUE(r.exited && r.status == 0);
    uint64_t rounds = field(r.out, "rounds="), calls = field(r.out, "syscalls=");
    CU_ASSERT_TRUE(rounds > 0 && rounds != ~0ULL);
    CU_ASSERT_TRUE(field(r.out, "cpu_ns=") > 0);
    /* The budget, a sleep, and a wake-up now and then. */
    CU_ASSERT_TRUE(calls <= 8 * rounds);
    CU_ASSERT_TRUE(field(r.out, "signals=") >= 1);
    gt_child_free(&r);
}

/* ---- steal probes skip idle Ps ---- */

static gort_chan *sp_a, *sp_b;
static void sp_echo(void *a)
{
    long v;
    while (gort_chan_recv(sp_b, &v))
        gort_chan_send(sp_a, &v);
    gort_wg_done(a);
}
static void sp_body(void *a)
{
    (void)a;
    gort_waitgroup wg = {0};
    sp_a = gort_chan_make(sizeof(long), 0);
    sp_b = gort_chan_make(sizeof(long), 0);
    gort_wg_add(&wg, 1);
    gort_go(sp_echo, &wg);
    uint64_t att0 = 0, pr0 = 0, att1 = 0, pr1 = 0;
    for (int i = 0; i < GORT_MAX_PROCS && gort__allp[i]; i++) {
        att0 += atomic_load(&gort__allp[i]->stats.steal_attempts);
        pr0 += atomic_load(&gort__allp[i]->stats.steal_probes);
    }
    for (long i = 0; i < 20000; i++) {
        gort_chan_send(sp_b, &i);
        gort_chan_recv(sp_a, &i);
        if (i % 500 == 0)
            gort_sleep(100 * 1000); /* Ps idle and spin up again */
    }
    gort_chan_close(sp_b);
    gort_wg_wait(&wg);
    for (int i = 0; i < GORT_MAX_PROCS && gort__allp[i]; i++) {
        att1 += atomic_load(&gort__allp[i]->stats.steal_attempts);
        pr1 += atomic_load(&gort__allp[i]->stats.steal_probes);
    }
    printf("attempts=%llu probes=%llu\n", (unsigned long long)(att1 - att0), (unsigned long long)(pr1 - pr0));
    fflush(stdout);
}
GT_CHILD(scale_probes) { gort_main(sp_body, NULL); }

static void test_steal_probes(void)
{
    /* 64 Ps, a pingpong pair: most Ps idle.  Looking at every P, each
     * attempt would probe 4 x 63 = 252; skipping the idle ones, a few per
     * pass (the pair's P or two, and the Ps of other spinning Ms). */
    const char *env[] = {"GORT_MAXPROCS=64", NULL};
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("scale_probes", env, 60, &r), 0);
    printf("\n%s", r.out);
    CU_ASSERT_TRUE(r.exited && r.status == 0);
    uint64_t att = field(r.out, "attempts="), pr = field(r.out, "probes=");
    CU_ASSERT_TRUE(att > 0 && att != ~0ULL);
    CU_ASSERT_TRUE(pr < att * 64);
    gt_child_free(&r);
}

/* ---- sched.lock sections ---- */

/* sched.lock acquisitions so far (lockstat's " lock sched=ACQ/..."). */
static uint64_t sched_acq(void)
{
    char buf[1024];
    int n = gort__lockstat_format(buf, 0, (int)sizeof buf - 1);
    buf[n] = 0;
    const char *p = strstr(buf, " lock sched=");
    return p ? strtoull(p + strlen(" lock sched="), NULL, 10) : 0;
}

#define SL_N 10000

/* One P, one goroutine: every yield requeues it with the global queue
 * empty. */
static void sl_yield_body(void *a)
{
    (void)a;
    uint64_t a0 = sched_acq();
    for (int i = 0; i < SL_N; i++)
        gort_yield();
    printf("yields=%d sched=%llu\n", SL_N, (unsigned long long)(sched_acq() - a0));
    fflush(stdout);
}
GT_CHILD(scale_sl_yield) { gort_main(sl_yield_body, NULL); }

static void test_sched_lock_yield(void)
{
    const char *env[] = {"GORT_MAXPROCS=1", "GORT_DEBUG=lockstat=1", NULL};
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("scale_sl_yield", env, 60, &r), 0);
    printf("\n%s", r.out);
    CU_ASSERT_TRUE(r.exited && r.status == 0);
    /* Through the global queue: one per yield. */
    CU_ASSERT_TRUE(field(r.out, "sched=") < SL_N / 10);
    gt_child_free(&r);
}

/* A system call whose P was taken away (as sysmon's retake does: P_SYSCALL
 * to P_IDLE, onto the idle set) comes back and takes an idle P. */
static void sl_sys_body(void *a)
{
    (void)a;
    uint64_t in_exit = 0, lost = 0;
    for (int i = 0; i < SL_N / 10; i++) {
        gort_syscall_enter();
        gort_p_t *pp = gort__getm()->oldp;
        uint32_t st = P_SYSCALL;
        if (pp && atomic_compare_exchange_strong(&pp->status, &st, P_IDLE)) {
            gort__lock(&gort__sched.lock);
            gort__pidleput(pp);
            gort__unlock(&gort__sched.lock);
            lost++;
        }
        uint64_t a0 = sched_acq();
        gort_syscall_exit();
        in_exit += sched_acq() - a0;
    }
    printf("exits=%d lost=%llu sched=%llu\n", SL_N / 10, (unsigned long long)lost, (unsigned long long)in_exit);
    fflush(stdout);
}
GT_CHILD(scale_sl_syscall) { gort_main(sl_sys_body, NULL); }

static void test_sched_lock_syscall_exit(void)
{
    const char *env[] = {"GORT_MAXPROCS=4", "GORT_DEBUG=lockstat=1", NULL};
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("scale_sl_syscall", env, 60, &r), 0);
    printf("\n%s", r.out);
    CU_ASSERT_TRUE(r.exited && r.status == 0);
    CU_ASSERT_TRUE(field(r.out, "lost=") == SL_N / 10);
    /* With the lock, one per exit (others' sections may land between the
     * two reads now and then). */
    CU_ASSERT_TRUE(field(r.out, "sched=") < SL_N / 100);
    gt_child_free(&r);
}

/* Two Ps; each round wakes an idle M for a new goroutine and waits until
 * it has run and an M has parked again: an M idle/wake cycle a round. */
static void sl_nop(void *a) { gort_wg_done(a); }
static void sl_cycle_body(void *a)
{
    (void)a;
    uint64_t a0 = sched_acq(), p0 = atomic_load(&gort__m_parks);
    for (int i = 0; i < SL_N / 5; i++) {
        gort_waitgroup wg = {0};
        gort_wg_add(&wg, 1);
        uint64_t parks = atomic_load(&gort__m_parks);
        gort_go(sl_nop, &wg);
        gort_wg_wait(&wg);
        /* Until some M has gone idle again (the one woken, as a rule). */
        while (atomic_load(&gort__m_parks) == parks)
            gort_yield();
    }
    printf("parks=%llu sched=%llu\n", (unsigned long long)(atomic_load(&gort__m_parks) - p0),
           (unsigned long long)(sched_acq() - a0));
    fflush(stdout);
}
GT_CHILD(scale_sl_cycle) { gort_main(sl_cycle_body, NULL); }

static void test_sched_lock_idle_cycle(void)
{
    /* A cost, not a race: under TSan each switch is many times slower, so
     * woken Ms find the goroutine gone more often and cycle again (3.1
     * acquisitions a park at 64 Ps beside a hog). */
    GT_SKIP_UNDER_TSAN("counts a cycle whose timing TSan changes");
    const char *env[] = {"GORT_MAXPROCS=2", "GORT_DEBUG=lockstat=1", NULL};
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("scale_sl_cycle", env, 60, &r), 0);
    printf("\n%s", r.out);
    CU_ASSERT_TRUE(r.exited && r.status == 0);
    uint64_t parks = field(r.out, "parks="), n = field(r.out, "sched=");
    CU_ASSERT_TRUE(parks >= 100 && parks != ~0ULL);
    /* Giving up the P and registering idle in one section, the waker's
     * in another: 2 a cycle; they were 4 (3 before the parked M read its
     * P without the lock). */
    CU_ASSERT_TRUE(n * 10 <= 29 * parks);
    gt_child_free(&r);
}

GT_SUITE(scale,
         {"membarrier_shared", test_membarrier_shared},
         {"lock_contended", test_lock_contended},
         {"lockstat", test_lockstat},
         {"sysmon_alone", test_sysmon_alone},
         {"sysmon_budget", test_sysmon_budget},
         {"steal_probes", test_steal_probes},
         {"sched_lock_yield", test_sched_lock_yield},
         {"sched_lock_syscall_exit", test_sched_lock_syscall_exit},
         {"sched_lock_idle_cycle", test_sched_lock_idle_cycle})
