/*
 * preempt_test.c: sysmon and asynchronous preemption.  Each scenario runs
 * in a child process with a timeout, because the failure mode of a broken
 * preemption is a hang: a spinning goroutine that never lets go.
 */
#include <errno.h>
#include <link.h>
#include <fenv.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"
#include "gort_prof.h"
#include "sysmon.h"
#include "test.h"
#include "preempt_kernels.h"

static _Atomic int stop;
static volatile uint64_t sink;

static void spinner(void *a)
{
    (void)a;
    uint64_t x = 1;
    while (!atomic_load_explicit(&stop, memory_order_relaxed))
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    sink = x;
}

static void print_stats(void)
{
    gort_stats s;
    gort_stats_get(&s);
    printf("preempt_done=%llu preempt_coop=%llu unsafe_frame=%llu unwrapped=%llu handoffs=%llu\n",
           (unsigned long long)s.preempt_done, (unsigned long long)s.preempt_coop,
           (unsigned long long)s.preempt_unsafe_frame, (unsigned long long)s.unwrapped_blocks,
           (unsigned long long)s.handoffs);
}

static unsigned long long stat_of(const char *out, const char *key)
{
    const char *p = strstr(out, key);
    return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

/* ---- a spinner does not starve a sleeper on one P ---- */

/* Starts hog, then sleeps 1 ms 30 times beside it on the one P; prints
 * how many sleeps ended before telling the hog to stop. */
static void sleep_beside(void (*hog)(void *))
{
    gort_go(hog, NULL);
    gort_yield();
    int done = 0;
    for (int i = 0; i < 30; i++) {
        gort_sleep(1000000);
        done++;
    }
    atomic_store(&stop, 1);
    printf("sleeps=%d\n", done);
}

static void starve_body(void *a)
{
    (void)a;
    sleep_beside(spinner);
    print_stats();
}
GT_CHILD(starve) { gort_main(starve_body, NULL); }

static void test_spinner_does_not_starve(void)
{
    GT_SKIP_UNDER_TSAN("no asynchronous preemption");
    const char *env[] = {"GORT_MAXPROCS=1", NULL};
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("starve", env, 30, &r), 0);
    CU_ASSERT_FALSE(r.timed_out);
    CU_ASSERT_TRUE(r.exited && r.status == 0);
    CU_ASSERT_TRUE(gt_contains(r.out, "sleeps=30"));
    CU_ASSERT_TRUE(stat_of(r.out, "preempt_done=") >= 1);
    gt_child_free(&r);
}

/* ---- the safety check walks by recipes, not libunwind ---- */

/* Spinners three calls deep in user code, preempted for 2 x 250 ms: every
 * check walks their stacks.  Once the few PCs are compiled (the first
 * checks queue them for sysmon), the checks use cached recipes, which
 * take no lock: libunwind (and with it the loader's lock) only for the
 * first few, none in the second half. */
__attribute__((noinline)) static void deep3(void)
{
    uint64_t x = 1;
    while (!atomic_load_explicit(&stop, memory_order_relaxed))
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    sink = x;
    __asm__ volatile("" ::: "memory");
}
__attribute__((noinline)) static void deep2(void) { deep3(); __asm__ volatile("" ::: "memory"); }
__attribute__((noinline)) static void deep1(void *a) { (void)a; deep2(); __asm__ volatile("" ::: "memory"); }

static void recipe_body(void *a)
{
    (void)a;
    for (int i = 0; i < 3; i++)
        gort_go(deep1, NULL);
    gort_sleep(250 * 1000 * 1000);
    uint64_t w1 = atomic_load(&gort__pstat_check_walks), l1 = atomic_load(&gort__pstat_check_libunwind);
    gort_sleep(250 * 1000 * 1000);
    atomic_store(&stop, 1);
    printf("walks=%llu libunwind=%llu\n", (unsigned long long)(atomic_load(&gort__pstat_check_walks) - w1),
           (unsigned long long)(atomic_load(&gort__pstat_check_libunwind) - l1));
    print_stats();
}
GT_CHILD(check_by_recipes) { gort_main(recipe_body, NULL); }

static void test_check_by_recipes(void)
{
    GT_SKIP_UNDER_TSAN("no asynchronous preemption");
    const char *env[] = {"GORT_MAXPROCS=1", NULL};
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("check_by_recipes", env, 30, &r), 0);
    CU_ASSERT_TRUE(r.exited && r.status == 0);
    unsigned long long walks = stat_of(r.out, "walks="), lu = stat_of(r.out, "libunwind=");
    CU_ASSERT_TRUE(walks >= 5); /* in the second half */
    CU_ASSERT_TRUE(lu <= 1);
    if (walks < 5 || lu > 1)
        fprintf(stderr, "\ncheck_by_recipes:\n%s\n", r.out);
    gt_child_free(&r);
}

/* ---- a timer's goroutine runs before the spinner it preempted ---- */

static uint64_t preemptions(void)
{
    gort_stats s;
    gort_stats_get(&s);
    return s.preempt_done + s.preempt_coop;
}

/* The sleep (1 ms) is shorter than the slice (2 ms), so one preemption of
 * the spinner must be enough to run the sleeper again.  A second one
 * means the spinner was given another slice first: the 61-tick turn of
 * the global queue, where the preempted spinner waits, used to win over
 * the goroutine the timer had just readied. */
static void timer_first_body(void *a)
{
    (void)a;
    gort_go(spinner, NULL);
    gort_yield();
    int extra = 0, cycles = 300;
    for (int i = 0; i < cycles; i++) {
        uint64_t before = preemptions();
        gort_sleep(1000000);
        if (preemptions() - before > 1)
            extra++;
    }
    atomic_store(&stop, 1);
    printf("cycles=%d extra=%d\n", cycles, extra);
}
GT_CHILD(timer_first) { gort_main(timer_first_body, NULL); }

static void test_timer_wake_beats_global_turn(void)
{
    GT_SKIP_UNDER_TSAN("no asynchronous preemption");
    const char *env[] = {"GORT_MAXPROCS=1", "GORT_SLICE_US=2000", NULL};
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("timer_first", env, 60, &r), 0);
    CU_ASSERT_FALSE(r.timed_out);
    CU_ASSERT_TRUE(r.exited && r.status == 0);
    bool ok = gt_contains(r.out, "cycles=300 extra=0");
    CU_ASSERT_TRUE(ok);
    if (!ok)
        fprintf(stderr, "timer_wake_beats_global_turn: %s", r.out);
    gt_child_free(&r);
}

/* ---- the main thread's M across gort_main calls ---- */

/* A preemption signal that reaches the main thread after gort_main has
 * returned finds no M; it used to leave m0's in-flight flag set, and the
 * next gort_main's main goroutine could never be preempted again (a world
 * stop waited for it forever: seen once in trace/go_trace_parses).  The
 * flag is set by hand here, as that signal leaves it. */
static _Atomic int sp_flag;
static void sp_setter(void *a)
{
    (void)a;
    atomic_store(&sp_flag, 1);
}
static void sp_noop(void *a) { (void)a; }
static void sp_spin_body(void *a)
{
    (void)a;
    if (gort__getm() != gort__m0) {
        printf("main goroutine not on m0\n");
        return;
    }
    gort_go(sp_setter, NULL);
    while (!atomic_load_explicit(&sp_flag, memory_order_relaxed))
        sink++; /* no runtime calls: only a signal preempts this */
    printf("preempted on m0\n");
}
GT_CHILD(stale_pending)
{
    gort_main(sp_noop, NULL);
    atomic_store(&gort__m0->preempt_pending, 1);
    gort_main(sp_spin_body, NULL);
}

static void test_stale_pending_m0(void)
{
    GT_SKIP_UNDER_TSAN("no asynchronous preemption");
    const char *env[] = {"GORT_MAXPROCS=1", NULL};
    CU_ASSERT(gt_child_expect("stale_pending", env, 30, "preempted on m0"));
}

/* ---- nor one that only ever calls the runtime (no signals needed) ---- */

static gort_waitgroup api_done;
static void api_looper(void *a)
{
    (void)a;
    gort_chan *c = gort_chan_make(sizeof(int), 1);
    int v = 1;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        (void)gort_chan_trysend(c, &v); /* never blocks, never parks */
        (void)gort_chan_tryrecv(c, &v, NULL);
    }
    gort_chan_free(c);
    gort_wg_done(&api_done);
}

static void api_starve_body(void *a)
{
    (void)a;
    gort_wg_add(&api_done, 1);
    sleep_beside(api_looper);
    gort_wg_wait(&api_done); /* its channel freed: nothing for LeakSanitizer */
    print_stats();
}
GT_CHILD(api_starve) { gort_main(api_starve_body, NULL); }

/* Signals off: the looper can only be moved where it leaves a runtime
 * call, as a Go function is at its prologue. */
static void test_runtime_calls_are_safe_points(void)
{
    const char *env[] = {"GORT_MAXPROCS=1", "GORT_DEBUG=asyncpreemptoff=1", NULL};
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("api_starve", env, 30, &r), 0);
    CU_ASSERT_FALSE(r.timed_out);
    CU_ASSERT_TRUE(r.exited && r.status == 0);
    CU_ASSERT_TRUE(gt_contains(r.out, "sleeps=30\n"));
    CU_ASSERT_TRUE(stat_of(r.out, "preempt_coop=") >= 1);
    gt_child_free(&r);
}

/* ---- nor thousands of new goroutines queued behind it ----
 *
 * A preempted goroutine once went to the tail of its P's local queue.
 * Alone there, it was taken straight back, and the 20,000 goroutines in
 * the global queue got one turn per 61 scheduling rounds: hundreds of
 * thousands of spinner slices.  Queued globally (as in Go) it lines up
 * behind them, and they all run within a few slices. */

#define MANY_N 20000
static gort_waitgroup many_wg;
static _Atomic int many_ran;
static void many_leaf(void *a)
{
    (void)a;
    atomic_fetch_add(&many_ran, 1);
    gort_wg_done(&many_wg);
}
static void starve_many_body(void *a)
{
    (void)a;
    gort_go(spinner, NULL);
    gort_yield(); /* the spinner is running */
    gort_wg_add(&many_wg, MANY_N);
    for (int i = 0; i < MANY_N; i++)
        gort_go(many_leaf, NULL);
    gort_wg_wait(&many_wg);
    atomic_store(&stop, 1);
    printf("ran=%d\n", atomic_load(&many_ran));
    print_stats();
}
GT_CHILD(starve_many) { gort_main(starve_many_body, NULL); }

static void test_spinner_does_not_starve_many(void)
{
    GT_SKIP_UNDER_TSAN("no asynchronous preemption");
    const char *env[] = {"GORT_MAXPROCS=1", NULL};
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("starve_many", env, 120, &r), 0);
    CU_ASSERT_FALSE(r.timed_out);
    CU_ASSERT_TRUE(gt_contains(r.out, "ran=20000\n"));
    /* Each preemption is one spinner slice the others waited through. */
    CU_ASSERT_TRUE(stat_of(r.out, "preempt_done=") <= 50);
    if (!gt_contains(r.out, "ran=20000\n") || stat_of(r.out, "preempt_done=") > 50)
        fprintf(stderr, "\n  starve_many: %s\n", r.out);
    gt_child_free(&r);
}

/* ---- floating-point and vector state survive preemption ---- */

/* preempt_kernels.h: built -O3 -march=native (see the Makefile), the
 * loops below keep their state in SSE/AVX/AVX-512 registers across
 * preemptions. */

#define NVEC 6
static uint64_t vec_ref[NVEC], vec_got[NVEC];
static double fp_ref[NVEC], fp_got[NVEC];
static int round_mode_ok[NVEC];
static int redzone_bad;

static gort_waitgroup vec_wg;
static void vec_worker(void *a)
{
    int i = (int)(intptr_t)a;
    /* A per-goroutine rounding mode must stick through preemptions
     * (MXCSR is part of the saved state, and of each context). */
    if (i % 2)
        fesetround(FE_TOWARDZERO);
    vec_got[i] = gt_vec_kernel(0x1234567ULL * (uint64_t)(i + 1), 3000);
    fp_got[i] = gt_fp_kernel(1.0 + i, 4000000);
    round_mode_ok[i] = fegetround() == ((i % 2) ? FE_TOWARDZERO : FE_TONEAREST);
    fesetround(FE_TONEAREST);
    gort_wg_done(&vec_wg);
}

static void vec_body(void *a)
{
    (void)a;
    for (int i = 0; i < NVEC; i++) {
        if (i % 2)
            fesetround(FE_TOWARDZERO);
        vec_ref[i] = gt_vec_kernel(0x1234567ULL * (uint64_t)(i + 1), 3000);
        fp_ref[i] = gt_fp_kernel(1.0 + i, 4000000);
        fesetround(FE_TONEAREST);
    }
    gort_wg_add(&vec_wg, NVEC);
    for (int i = 0; i < NVEC; i++)
        gort_go(vec_worker, (void *)(intptr_t)i);
    gort_wg_wait(&vec_wg);
    int bad = 0;
    for (int i = 0; i < NVEC; i++) {
        bad += vec_got[i] != vec_ref[i];
        bad += memcmp(&fp_got[i], &fp_ref[i], sizeof(double)) != 0;
        bad += !round_mode_ok[i];
    }
    printf("vec_mismatch=%d\n", bad);
    print_stats();
}
GT_CHILD(vector_state) { gort_main(vec_body, NULL); }

static void test_vector_state_bit_identical(void)
{
    GT_SKIP_UNDER_TSAN("no asynchronous preemption");
    const char *env[] = {"GORT_MAXPROCS=2", "GORT_SLICE_US=100", NULL};
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("vector_state", env, 120, &r), 0);
    CU_ASSERT_FALSE(r.timed_out);
    CU_ASSERT_TRUE(gt_contains(r.out, "vec_mismatch=0"));
    /* Frequent preemption really happened while the kernels ran. */
    CU_ASSERT_TRUE(stat_of(r.out, "preempt_done=") >= 20);
    if (!gt_contains(r.out, "vec_mismatch=0"))
        printf("\n%s\n", r.out);
    gt_child_free(&r);
}

/* ---- the red zone below RSP survives ---- */

static void redzone_worker(void *a)
{
    gort_waitgroup *wg = a;
    redzone_bad += gt_redzone_spin(40000000L);
    gort_wg_done(wg);
}
static void redzone_body(void *a)
{
    (void)a;
    gort_waitgroup wg = {0};
    gort_wg_add(&wg, 3);
    for (int i = 0; i < 3; i++)
        gort_go(redzone_worker, &wg);
    gort_wg_wait(&wg);
    printf("redzone_bad=%d\n", redzone_bad);
    print_stats();
}
GT_CHILD(redzone) { gort_main(redzone_body, NULL); }

static void test_red_zone(void)
{
    GT_SKIP_UNDER_TSAN("no asynchronous preemption");
    const char *env[] = {"GORT_MAXPROCS=1", "GORT_SLICE_US=100", NULL};
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("redzone", env, 120, &r), 0);
    CU_ASSERT_FALSE(r.timed_out);
    CU_ASSERT_TRUE(gt_contains(r.out, "redzone_bad=0"));
    CU_ASSERT_TRUE(stat_of(r.out, "preempt_done=") >= 20);
    gt_child_free(&r);
}

/* ---- malloc, free and printf under preemption never deadlock ---- */

static void hammer(void *a)
{
    gort_waitgroup *wg = a;
    FILE *f = fopen("/dev/null", "w");
    char buf[128];
    for (int i = 0; i < 200000; i++) {
        void *p = malloc((size_t)(16 + i % 4000));
        snprintf(buf, sizeof buf, "%d %p %f", i, p, i * 0.5);
        fprintf(f, "%s\n", buf);
        free(p);
    }
    fclose(f);
    gort_wg_done(wg);
}
static void hammer_body(void *a)
{
    (void)a;
    gort_waitgroup wg = {0};
    gort_wg_add(&wg, 8);
    for (int i = 0; i < 8; i++)
        gort_go(hammer, &wg);
    gort_wg_wait(&wg);
    printf("hammer done\n");
    print_stats();
}
GT_CHILD(hammer) { gort_main(hammer_body, NULL); }

static void test_malloc_printf_hammer(void)
{
    GT_SKIP_UNDER_TSAN("no asynchronous preemption");
    const char *env[] = {"GORT_MAXPROCS=2", "GORT_SLICE_US=100", NULL};
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("hammer", env, 120, &r), 0);
    CU_ASSERT_FALSE(r.timed_out);
    CU_ASSERT_TRUE(gt_contains(r.out, "hammer done"));
    /* Preemptions both happened and were refused inside libc. */
    CU_ASSERT_TRUE(stat_of(r.out, "preempt_done=") >= 1);
    CU_ASSERT_TRUE(stat_of(r.out, "unsafe_frame=") >= 1);
    gt_child_free(&r);
}

/* ---- preemption and profiling while goroutines sit in dl_iterate_phdr ----
 *
 * Checking whether a goroutine may be preempted unwinds its stack in the
 * SIGURG handler.  libunwind's global cache lock, held across its own
 * dl_iterate_phdr, once formed a cycle with the loader lock held by a
 * goroutine interrupted inside a dl_iterate_phdr callback: two threads
 * each waited for the other's lock, for ever. */

static _Atomic int phdr_stop;
static _Atomic long phdr_calls;
static int phdr_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    volatile unsigned long *acc = arg;
    for (int i = 0; i < 2000; i++) /* user code, inside the loader lock */
        *acc += (unsigned long)info->dlpi_addr + (unsigned long)i;
    return 0;
}
static void phdr_walker(void *a)
{
    gort_waitgroup *wg = a;
    volatile unsigned long acc = 0;
    while (!atomic_load(&phdr_stop)) {
        dl_iterate_phdr(phdr_cb, (void *)&acc);
        atomic_fetch_add(&phdr_calls, 1);
    }
    gort_wg_done(wg);
}
static __attribute__((noinline)) unsigned long phdr_deep(int n, unsigned long x)
{
    if (n == 0) {
        for (int i = 0; i < 1000; i++)
            x = x * 6364136223846793005UL + 1442695040888963407UL;
        return x;
    }
    return phdr_deep(n - 1, x + (unsigned long)n) ^ (unsigned long)n;
}
static void phdr_spinner(void *a)
{
    gort_waitgroup *wg = a;
    volatile unsigned long x = 0;
    while (!atomic_load(&phdr_stop))
        x += phdr_deep(20, x);
    gort_wg_done(wg);
}
static void phdr_body(void *a)
{
    (void)a;
    gort_waitgroup wg = {0};
    gort_cpuprofile_start("/dev/null", 1000);
    gort_wg_add(&wg, 8);
    for (int i = 0; i < 4; i++) {
        gort_go(phdr_walker, &wg);
        gort_go(phdr_spinner, &wg);
    }
    gort_sleep(1500LL * 1000 * 1000);
    atomic_store(&phdr_stop, 1);
    gort_wg_wait(&wg);
    gort_cpuprofile_stop();
    printf("phdr done calls=%ld\n", atomic_load(&phdr_calls));
    print_stats();
}
GT_CHILD(phdr) { gort_main(phdr_body, NULL); }

static void test_preempt_in_phdr_callback(void)
{
    GT_SKIP_UNDER_TSAN("no asynchronous preemption");
    const char *env[] = {"GORT_MAXPROCS=2", "GORT_SLICE_US=100", NULL};
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("phdr", env, 60, &r), 0);
    CU_ASSERT_FALSE(r.timed_out);
    CU_ASSERT_TRUE(gt_contains(r.out, "phdr done"));
    CU_ASSERT_TRUE(stat_of(r.out, "preempt_done=") >= 1);
    gt_child_free(&r);
}

/* ---- a goroutine blocked in nanosleep does not stop another ---- */

static int block_unwrapped;
static _Atomic int64_t progress;
static void nanosleeper(void *a)
{
    gort_waitgroup *wg = a;
    struct timespec ts = {0, 5000000};
    while (!atomic_load(&stop)) {
        if (block_unwrapped)
            syscall(SYS_nanosleep, &ts, NULL);
        else
            gort_nanosleep(&ts, NULL);
    }
    gort_wg_done(wg);
}
static void block_body(void *a)
{
    (void)a;
    gort_waitgroup wg = {0};
    gort_wg_add(&wg, 1);
    gort_go(nanosleeper, &wg);
    gort_yield();
    /* With one P, this loop runs only if the P was taken from the
     * sleeper's thread. */
    for (int i = 0; i < 1000; i++) {
        atomic_fetch_add(&progress, 1);
        gort_yield();
    }
    atomic_store(&stop, 1);
    gort_wg_wait(&wg);
    printf("progress=%lld\n", (long long)atomic_load(&progress));
    print_stats();
}
GT_CHILD(block_wrapped) { gort_main(block_body, NULL); }
GT_CHILD(block_unwrapped)
{
    block_unwrapped = 1;
    gort_main(block_body, NULL);
}

static void test_blocked_nanosleep(void)
{
    const char *env[] = {"GORT_MAXPROCS=1", NULL};
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("block_wrapped", env, 30, &r), 0);
    CU_ASSERT_FALSE(r.timed_out);
    CU_ASSERT_TRUE(gt_contains(r.out, "progress=1000"));
    CU_ASSERT_TRUE(stat_of(r.out, "handoffs=") >= 1);
    gt_child_free(&r);
    CU_ASSERT_EQUAL_FATAL(gt_child_run("block_unwrapped", env, 30, &r), 0);
    CU_ASSERT_FALSE(r.timed_out);
    CU_ASSERT_TRUE(gt_contains(r.out, "progress=1000"));
    CU_ASSERT_TRUE(stat_of(r.out, "unwrapped=") >= 1);
    gt_child_free(&r);
}

/* ---- EINTR while sysmon preempts others ----
 * sysmon signals only threads that burned CPU for two samples in a row, so
 * a thread blocked in the kernel is never a target.  A restartable call
 * (read on a pipe) is restarted by SA_RESTART and never fails.  poll and
 * nanosleep are never restarted by the kernel; they can see EINTR only when
 * a busy goroutine enters one in the microseconds between sysmon's check
 * and the signal (docs/runtime.md), so that must stay rare. */

static _Atomic int eintr_slow, eintr_read, polls_done, reads_done;
static int pipes[2][2];
static void poller(void *a)
{
    gort_waitgroup *wg = a;
    for (int i = 0; i < 40; i++) {
        if (poll(NULL, 0, 5) < 0 && errno == EINTR)
            atomic_fetch_add(&eintr_slow, 1);
        struct timespec ts = {0, 3000000};
        if (nanosleep(&ts, NULL) < 0 && errno == EINTR)
            atomic_fetch_add(&eintr_slow, 1);
        atomic_fetch_add(&polls_done, 1);
    }
    gort_wg_done(wg);
}
static void reader(void *a)
{
    int k = (int)(intptr_t)a;
    char c;
    for (int i = 0; i < 40; i++) {
        ssize_t n = read(pipes[k][0], &c, 1); /* raw: blocks the thread */
        if (n < 0 && errno == EINTR)
            atomic_fetch_add(&eintr_read, 1);
        else if (n == 1)
            atomic_fetch_add(&reads_done, 1);
    }
}
static void writer(void *a)
{
    gort_waitgroup *wg = a;
    for (int i = 0; i < 40; i++) {
        gort_sleep(2 * 1000 * 1000);
        for (int k = 0; k < 2; k++)
            if (write(pipes[k][1], "x", 1) != 1)
                abort();
    }
    gort_wg_done(wg);
}
static void eintr_body(void *a)
{
    (void)a;
    gort_waitgroup wg = {0};
    for (int k = 0; k < 2; k++)
        if (pipe(pipes[k]) != 0)
            abort();
    gort_wg_add(&wg, 3);
    gort_go(spinner, NULL);
    gort_go(spinner, NULL);
    gort_go(poller, &wg);
    gort_go(poller, &wg);
    gort_go(reader, (void *)0);
    gort_go(reader, (void *)1);
    gort_go(writer, &wg);
    gort_wg_wait(&wg);
    /* The readers finish once the last byte is written and read. */
    for (int i = 0; i < 2000 && atomic_load(&reads_done) < 80; i++)
        gort_sleep(1000 * 1000);
    atomic_store(&stop, 1);
    printf("eintr_read=%d reads=%d polls=%d eintr_slow=%d\n", atomic_load(&eintr_read),
           atomic_load(&reads_done), atomic_load(&polls_done), atomic_load(&eintr_slow));
    print_stats();
}
GT_CHILD(eintr) { gort_main(eintr_body, NULL); }

static void test_no_eintr(void)
{
    GT_SKIP_UNDER_TSAN("no asynchronous preemption");
    const char *env[] = {"GORT_MAXPROCS=2", "GORT_SLICE_US=200", NULL};
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("eintr", env, 60, &r), 0);
    CU_ASSERT_FALSE(r.timed_out);
    CU_ASSERT_TRUE(gt_contains(r.out, "eintr_read=0 reads=80 polls=80"));
    /* 160 slow calls, each entered by a goroutine that was just busy: a
     * handful of EINTRs would mean the busy check does not work. */
    CU_ASSERT_TRUE(stat_of(r.out, "eintr_slow=") <= 4);
    CU_ASSERT_TRUE(stat_of(r.out, "preempt_done=") >= 10);
    gt_child_free(&r);
}

/* ---- the application's own SIGURG handler still gets its signals ---- */

static _Atomic int user_urg;
static void user_handler(int sig)
{
    (void)sig;
    atomic_fetch_add(&user_urg, 1);
}
static void urg_body(void *a)
{
    (void)a;
    for (int i = 0; i < 5; i++)
        raise(SIGURG);
    printf("user_urg=%d\n", atomic_load(&user_urg));
    gort_stats s;
    gort_stats_get(&s);
    printf("requested=%llu\n", (unsigned long long)s.preempt_requested);
}
GT_CHILD(sigurg_forward)
{
    signal(SIGURG, user_handler);
    gort_main(urg_body, NULL);
}

static void test_sigurg_forwarded(void)
{
    GT_SKIP_UNDER_TSAN("no asynchronous preemption");
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("sigurg_forward", NULL, 30, &r), 0);
    CU_ASSERT_TRUE(gt_contains(r.out, "user_urg=5"));
    /* The body runs for microseconds: no slice can have ended.  (A P's
     * first goroutine was once preempted at once, its slice counted from
     * boot; that request took one of the raised signals for itself.) */
    CU_ASSERT_TRUE(gt_contains(r.out, "requested=0\n"));
    gt_child_free(&r);
}

/* ---- schedtrace ---- */

static void trace_body(void *a)
{
    (void)a;
    gort_go(spinner, NULL);
    gort_sleep(120000000);
    atomic_store(&stop, 1);
}
GT_CHILD(schedtrace) { gort_main(trace_body, NULL); }

static void test_schedtrace(void)
{
    const char *env[] = {"GORT_DEBUG=schedtrace=20", NULL};
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("schedtrace", env, 30, &r), 0);
    int lines = 0;
    for (const char *p = r.out; (p = strstr(p, "SCHED ")) != NULL; p++)
        lines++;
    CU_ASSERT_TRUE(lines >= 3);
    CU_ASSERT_TRUE(gt_contains(r.out, "gomaxprocs="));
    gt_child_free(&r);
}

/* ---- errno follows a goroutine across asynchronous preemption ---- */

static _Atomic int errno_bad, errno_checks;

/* A preemption between __errno_location's return and the access would
 * use the old thread's errno (docs/runtime.md): the accesses themselves
 * run inside the runtime, where no signal preempts.  Under ASan, whose
 * check sits between the two, that window failed one run in ten. */
static void errno_put(int v)
{
    int *(*volatile loc)(void) = __errno_location;
    gort_g_t *gp = gort__rt_enter();
    *loc() = v;
    gort__rt_leave(gp);
}
static int errno_get(void)
{
    int *(*volatile loc)(void) = __errno_location;
    gort_g_t *gp = gort__rt_enter();
    int v = *loc();
    gort__rt_leave(gp);
    return v;
}

static void errno_worker(void *a)
{
    gort_waitgroup *wg = a;
    int mine = 1000 + (int)gort_self() * 1000;
    for (int round = 0; round < 200; round++) {
        errno_put(mine + round);
        /* Pure computation: the only way to lose errno is a preemption that
         * moves us to another thread in the middle. */
        volatile uint64_t x = 0;
        for (int i = 0; i < 200000; i++)
            x = x * 6364136223846793005ULL + (uint64_t)i;
        if (errno_get() != mine + round)
            atomic_fetch_add(&errno_bad, 1);
        atomic_fetch_add(&errno_checks, 1);
    }
    gort_wg_done(wg);
}
static void errno_body(void *a)
{
    (void)a;
    gort_waitgroup wg = {0};
    gort_wg_add(&wg, 6);
    for (int i = 0; i < 6; i++)
        gort_go(errno_worker, &wg);
    gort_wg_wait(&wg);
    printf("errno_bad=%d checks=%d\n", atomic_load(&errno_bad), atomic_load(&errno_checks));
    print_stats();
}
GT_CHILD(errno_carry) { gort_main(errno_body, NULL); }

static void test_errno_follows_goroutine(void)
{
    GT_SKIP_UNDER_TSAN("no asynchronous preemption");
    const char *env[] = {"GORT_MAXPROCS=2", "GORT_SLICE_US=100", NULL};
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("errno_carry", env, 60, &r), 0);
    CU_ASSERT_FALSE(r.timed_out);
    CU_ASSERT_TRUE(gt_contains(r.out, "errno_bad=0 checks=1200"));
    CU_ASSERT_TRUE(stat_of(r.out, "preempt_done=") >= 10);
    gt_child_free(&r);
}

/* ---- the main goroutine returns while sysmon holds its P ---- */

static void revoked_main_body(void *a)
{
    (void)a;
    gort_go(spinner, NULL);
    gort_yield();
    /* Raw sleep: sysmon sees a thread that uses no CPU while the spinner
     * waits, and takes the P.  We return without another runtime call. */
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    print_stats();
}
GT_CHILD(revoked_main) { gort_main(revoked_main_body, NULL); printf("returned\n"); }

static void test_main_returns_after_revoke(void)
{
    GT_SKIP_UNDER_TSAN("no asynchronous preemption");
    const char *env[] = {"GORT_MAXPROCS=1", NULL};
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("revoked_main", env, 60, &r), 0);
    CU_ASSERT_FALSE(r.timed_out);
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT_TRUE(gt_contains(r.out, "returned"));
    CU_ASSERT_TRUE(stat_of(r.out, "unwrapped=") >= 1);
    gt_child_free(&r);
}

GT_SUITE(preempt,
         {"check_by_recipes", test_check_by_recipes},
         {"spinner_does_not_starve", test_spinner_does_not_starve},
         {"timer_wake_beats_global_turn", test_timer_wake_beats_global_turn},
         {"stale_pending_m0", test_stale_pending_m0},
         {"spinner_does_not_starve_many", test_spinner_does_not_starve_many},
         {"runtime_calls_are_safe_points", test_runtime_calls_are_safe_points},
         {"vector_state_bit_identical", test_vector_state_bit_identical},
         {"red_zone", test_red_zone},
         {"malloc_printf_hammer", test_malloc_printf_hammer},
         {"preempt_in_phdr_callback", test_preempt_in_phdr_callback},
         {"blocked_nanosleep", test_blocked_nanosleep},
         {"no_eintr", test_no_eintr},
         {"sigurg_forwarded", test_sigurg_forwarded},
         {"schedtrace", test_schedtrace},
         {"errno_follows_goroutine", test_errno_follows_goroutine},
         {"main_returns_after_revoke", test_main_returns_after_revoke})
