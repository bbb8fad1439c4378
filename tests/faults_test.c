/*
 * faults_test.c: faults from outside the program (issue 25): a fork whose
 * child calls gort, a preemption signal the program takes over, resources
 * the kernel refuses, a stack overflow in libc, profiles that cannot be
 * written whole, and kernel features forced off through the fault shim
 * (tests/faults/shim.c).  The harness that drives the shim over many N is
 * tests/faults/run (make faults).
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gort_prof.h"
#include "gort_spawn.h"
#include "faults_fork.h"
#include "test.h"

extern char **environ;

static _Atomic int stop;
static gort_waitgroup never;

static unsigned long long stat_of(const char *out, const char *key)
{
    const char *p = strstr(out, key);
    return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static void spinner(void *a)
{
    (void)a;
    while (!atomic_load_explicit(&stop, memory_order_relaxed))
        ;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The shim beside the test binary: build/gort-test -> build/tests/faultshim.so. */
static const char *shim_env(void)
{
    static char env[1200];
    char exe[1024];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = 0;
    snprintf(env, sizeof env, "LD_PRELOAD=%s/tests/faultshim.so", exe);
    return env;
}

/* Runs child name with the shim failing spec. */
static int run_shim(const char *name, const char *spec, gt_child_result *r)
{
    char fault[256];
    snprintf(fault, sizeof fault, "GORT_FAULT=%s", spec);
    const char *env[] = {shim_env(), fault, "GORT_FAULT_EXE=gort-test", "ASAN_OPTIONS=verify_asan_link_order=0",
                         "GORT_MAXPROCS=2", NULL};
    return gt_child_run(name, env, 60, r);
}

/* ---- a stack overflow inside memset ---- */

__attribute__((noinline)) static void big_local(void)
{
    char buf[512 * 1024];
    memset(buf, 1, sizeof buf);
    __asm__ volatile("" : : "r"(buf) : "memory");
}

static void memset_goroutine(void *a)
{
    (void)a;
    printf("goid %llu\n", (unsigned long long)gort_self());
    fflush(stdout);
    big_local();
    printf("not reached\n"); /* and no tail call: this frame stays */
}

static void memset_body(void *a)
{
    (void)a;
    struct rlimit no = {0, 0};
    setrlimit(RLIMIT_CORE, &no);
    gort_wg_add(&never, 1);
    gort_go(memset_goroutine, NULL);
    gort_wg_wait(&never);
}
GT_CHILD(overflow_memset) { gort_main(memset_body, NULL); }

static void test_overflow_in_memset(void)
{
    /* TSan's memset interceptor runs on the overflowed stack first, and
     * its own shadow accesses fault where the report expects libc's. */
    GT_SKIP_UNDER_TSAN("the overflow happens inside TSan's memset interceptor");
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("overflow_memset", NULL, 60, &r), 0);
    CU_ASSERT_TRUE(r.exited && r.status == 2);
    long goid = (long)stat_of(r.out, "goid ");
    char want[160];
    snprintf(want, sizeof want, "runtime: goroutine %ld stack exceeds 262144-byte limit\n", goid);
    CU_ASSERT_TRUE(gt_contains(r.out, want));
    snprintf(want, sizeof want, "fatal error: goroutine %ld stack overflow\n", goid);
    CU_ASSERT_TRUE(gt_contains(r.out, want));
    /* The goroutine's traceback, from libc's frame down to its creator. */
    snprintf(want, sizeof want, "goroutine %ld [running]:\n", goid);
    CU_ASSERT_TRUE(gt_contains(r.out, want));
    CU_ASSERT_TRUE(gt_contains(r.out, "\nbig_local()\n\t"));
    CU_ASSERT_TRUE(gt_contains(r.out, "\nmemset_goroutine("));
    CU_ASSERT_TRUE(gt_contains(r.out, "created by memset_body in goroutine 1\n"));
    CU_ASSERT_FALSE(gt_contains(r.out, "unexpected signal"));
    if (!gt_contains(r.out, "big_local"))
        printf("\n%s\n", r.out);
    gt_child_free(&r);
}

/* ---- fork ---- */

static const char *fork_call; /* what the forked child calls */

static void nop(void *a) { (void)a; }
static gort_chan *fork_chan;

static void fork_body(void *a)
{
    (void)a;
    for (int i = 0; i < 3; i++)
        gort_go(spinner, NULL);
    gort_sleep(2 * 1000 * 1000);
    fork_chan = gort_chan_make(sizeof(long), 4);
    pid_t pid = fork();
    if (pid == 0) {
        if (strcmp(fork_call, "sleep") == 0)
            gort_sleep(1000000);
        else if (strcmp(fork_call, "go") == 0)
            gort_go(nop, NULL);
        else if (strcmp(fork_call, "chan") == 0)
            gort_chan_send(fork_chan, &(long){1});
        _exit(0); /* not reached */
    }
    int st = -1;
    pid_t w = gort_waitpid(pid, &st, 0);
    printf("child exited=%d status=%d\n", w == pid && WIFEXITED(st), WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    atomic_store(&stop, 1);
}
GT_CHILD(fork_sleep)
{
    fork_call = "sleep";
    gort_main(fork_body, NULL);
}
GT_CHILD(fork_go)
{
    fork_call = "go";
    gort_main(fork_body, NULL);
}
GT_CHILD(fork_chan)
{
    fork_call = "chan";
    gort_main(fork_body, NULL);
}

static void fork_case(const char *name)
{
    gt_child_result r;
    const char *env[] = {"GORT_MAXPROCS=4", NULL};
    CU_ASSERT_EQUAL_FATAL(gt_child_run(name, env, 30, &r), 0);
    CU_ASSERT_FALSE(r.timed_out);
    CU_ASSERT_TRUE(r.exited && r.status == 0);
    CU_ASSERT_TRUE(gt_contains(r.out, "fatal error: gort runtime used in a forked child (only exec or _exit "
                                      "are allowed after fork)\n"));
    CU_ASSERT_TRUE(gt_contains(r.out, "child exited=1 status=2\n"));
    /* At once: no goroutine dump from the child. */
    CU_ASSERT_FALSE(gt_contains(r.out, "[running]"));
    if (!gt_contains(r.out, "status=2"))
        printf("\n%s\n", r.out);
    gt_child_free(&r);
}

static void test_fork_child_sleep(void) { fork_case("fork_sleep"); }
static void test_fork_child_go(void) { fork_case("fork_go"); }
static void test_fork_child_chan(void) { fork_case("fork_chan"); }

/* Every public function, the inline mutex fast paths included, ends a
 * forked child, whether a goroutine or a plain thread forked
 * (tests/faults_fork.c). */
static int fork_calls_bad;
GT_CHILD(fork_calls)
{
    gort_main(gt_fork_calls, &fork_calls_bad);
    printf("fork_calls bad=%d\n", fork_calls_bad);
}

static void test_fork_child_every_call(void)
{
    gt_child_result r;
    const char *env[] = {"GORT_MAXPROCS=4", "GORT_DEBUG=lockstat=1", NULL};
    CU_ASSERT_EQUAL_FATAL(gt_child_run("fork_calls", env, 120, &r), 0);
    CU_ASSERT_FALSE(r.timed_out);
    CU_ASSERT_TRUE(r.exited && r.status == 0);
    CU_ASSERT_TRUE(gt_contains(r.out, "fork_calls bad=0\n"));
    if (!gt_contains(r.out, "fork_calls bad=0\n"))
        printf("\n%s\n", r.out);
    gt_child_free(&r);
}

static void exec_goroutine(void *a)
{
    gort_waitgroup *wg = a;
    for (int i = 0; i < 5; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            execl("/bin/sh", "sh", "-c", "exit 7", (char *)NULL);
            _exit(127);
        }
        int st = -1;
        if (gort_waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 7)
            printf("fork+exec ok\n");
        char *argv[] = {"sh", "-c", "exit 5", NULL};
        if (gort_posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ) == 0 &&
            gort_waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 5)
            printf("spawn ok\n");
    }
    gort_wg_done(wg);
}

static void exec_body(void *a)
{
    (void)a;
    gort_go(spinner, NULL);
    gort_waitgroup wg = {0};
    gort_wg_add(&wg, 4);
    for (int i = 0; i < 4; i++)
        gort_go(exec_goroutine, &wg);
    gort_wg_wait(&wg);
    char *argv[] = {"no-such-program-gort", NULL};
    pid_t pid;
    printf("missing=%d\n", gort_posix_spawnp(&pid, "no-such-program-gort", NULL, NULL, argv, environ));
    atomic_store(&stop, 1);
}
GT_CHILD(fork_exec) { gort_main(exec_body, NULL); }

static void test_fork_exec_and_spawn(void)
{
    gt_child_result r;
    const char *env[] = {"GORT_MAXPROCS=2", NULL};
    CU_ASSERT_EQUAL_FATAL(gt_child_run("fork_exec", env, 60, &r), 0);
    CU_ASSERT_TRUE(r.exited && r.status == 0);
    CU_ASSERT_EQUAL(count_of(r.out, "fork+exec ok\n"), 20);
    CU_ASSERT_EQUAL(count_of(r.out, "spawn ok\n"), 20);
    char want[32];
    snprintf(want, sizeof want, "missing=%d\n", -ENOENT);
    CU_ASSERT_TRUE(gt_contains(r.out, want));
    gt_child_free(&r);
}

/* ---- the program replaces the preemption handler ---- */

static const char replaced_msg[] = "gort: the SIGURG handler was replaced; goroutines can no longer be preempted "
                                   "(GORT_PREEMPT_SIGNAL selects another signal)\n";

static _Atomic int own_urg;
static void own_handler(int sig)
{
    (void)sig;
    atomic_fetch_add(&own_urg, 1);
}

static bool file_has(const char *path, const char *s)
{
    char buf[8192];
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    return strstr(buf, s) != NULL;
}

static char errpath[64];

/* Spins, and watches stderr's file once a millisecond, until 200 ms after
 * the message or 3 s.  Two of them hold both Ps while the body sleeps: its
 * timer is what waits for a P, so sysmon must preempt (a goroutine alone
 * on its P with nothing waiting is left running, sysmon.c). */
static _Atomic int64_t said_ms = -1;
static int64_t replaced_t0;
static _Atomic int watchers_done;
static void watch_spinner(void *a)
{
    (void)a;
    for (int64_t last = 0;;) {
        int64_t now = mono_ms();
        if (now == last)
            continue;
        last = now;
        int64_t s = atomic_load(&said_ms);
        if (s < 0 && file_has(errpath, "handler was replaced"))
            atomic_compare_exchange_strong(&said_ms, &s, now - replaced_t0);
        s = atomic_load(&said_ms);
        if ((s >= 0 && now - replaced_t0 > s + 200) || now - replaced_t0 > 3000)
            break;
    }
    atomic_fetch_add(&watchers_done, 1);
}

static void replaced_body(void *a)
{
    (void)a;
    signal(SIGURG, own_handler); /* after gort_main: replaces gort's */
    replaced_t0 = mono_ms();
    gort_go(watch_spinner, NULL);
    gort_go(watch_spinner, NULL);
    while (atomic_load(&watchers_done) < 2)
        gort_sleep(5 * 1000 * 1000);
    printf("said_after_ms=%lld own=%d\n", (long long)atomic_load(&said_ms), atomic_load(&own_urg) > 0);
}
GT_CHILD(replaced_handler)
{
    /* stderr to a file the body can watch. */
    snprintf(errpath, sizeof errpath, "/tmp/gort-replaced-%d", (int)getpid());
    int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int saved = dup(2);
    dup2(fd, 2);
    close(fd);
    gort_main(replaced_body, NULL);
    dup2(saved, 2);
    char buf[8192];
    fd = open(errpath, O_RDONLY);
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    unlink(errpath);
    if (n > 0)
        fwrite(buf, 1, (size_t)n, stderr);
}

static void test_replaced_handler_said_once(void)
{
    GT_SKIP_UNDER_TSAN("no asynchronous preemption");
    gt_child_result r;
    const char *env[] = {"GORT_MAXPROCS=2", NULL};
    CU_ASSERT_EQUAL_FATAL(gt_child_run("replaced_handler", env, 60, &r), 0);
    CU_ASSERT_TRUE(r.exited && r.status == 0);
    long ms = (long)stat_of(r.out, "said_after_ms=");
    CU_ASSERT_TRUE(!gt_contains(r.out, "said_after_ms=-") && ms <= 1000);
    CU_ASSERT_EQUAL(count_of(r.out, replaced_msg), 1);
    CU_ASSERT_TRUE(gt_contains(r.out, "own=1"));
    if (count_of(r.out, replaced_msg) != 1 || ms > 1000)
        printf("\n%s\n", r.out);
    gt_child_free(&r);
}

/* ---- GORT_PREEMPT_SIGNAL: the program owns SIGURG ---- */

static void owns_body(void *a)
{
    (void)a;
    signal(SIGURG, own_handler);
    gort_go(spinner, NULL);
    gort_yield();
    int done = 0;
    for (int i = 0; i < 30; i++) {
        gort_sleep(1000000);
        done++;
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 5; i++)
        raise(SIGURG);
    gort_stats s;
    gort_stats_get(&s);
    printf("sleeps=%d own_urg=%d preempt_done=%llu\n", done, atomic_load(&own_urg),
           (unsigned long long)s.preempt_done);
}
GT_CHILD(owns_sigurg) { gort_main(owns_body, NULL); }

static void test_preempt_signal_realtime(void)
{
    GT_SKIP_UNDER_TSAN("no asynchronous preemption");
    gt_child_result r;
    const char *env[] = {"GORT_MAXPROCS=1", "GORT_PREEMPT_SIGNAL=SIGRTMIN+3", NULL};
    CU_ASSERT_EQUAL_FATAL(gt_child_run("owns_sigurg", env, 60, &r), 0);
    CU_ASSERT_TRUE(r.exited && r.status == 0);
    /* The sleeper ran beside a spinner on the one P: preemption worked. */
    CU_ASSERT_TRUE(gt_contains(r.out, "sleeps=30 own_urg=5 "));
    CU_ASSERT_TRUE(stat_of(r.out, "preempt_done=") >= 1);
    CU_ASSERT_FALSE(gt_contains(r.out, "was replaced"));
    gt_child_free(&r);
}

static void test_preempt_signal_bad(void)
{
    gt_child_result r;
    const char *env[] = {"GORT_PREEMPT_SIGNAL=SIGSEGV", NULL};
    CU_ASSERT_EQUAL_FATAL(gt_child_run("owns_sigurg", env, 60, &r), 0);
    CU_ASSERT_TRUE(r.exited && r.status == 2);
    CU_ASSERT_TRUE(gt_contains(r.out, "fatal error: GORT_PREEMPT_SIGNAL=SIGSEGV: not a signal the runtime can use\n"));
    gt_child_free(&r);
}

/* ---- the program's own SIGPROF timer, a thread that blocks SIGURG ---- */

static _Atomic int prof_ticks;
static void prof_tick(int sig)
{
    (void)sig;
    atomic_fetch_add(&prof_ticks, 1);
}

static void blocker(void *a)
{
    gort_waitgroup *wg = a;
    sigset_t s, old;
    sigemptyset(&s);
    sigaddset(&s, SIGURG);
    pthread_sigmask(SIG_BLOCK, &s, &old);
    gort_stats before, after;
    gort_stats_get(&before);
    int64_t t0 = mono_ms();
    while (mono_ms() - t0 < 400)
        ;
    gort_stats_get(&after);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    printf("requests_while_blocked=%llu\n",
           (unsigned long long)(after.preempt_requested - before.preempt_requested));
    gort_wg_done(wg);
}

static void owned_body(void *a)
{
    (void)a;
    gort_go(spinner, NULL);
    int done = 0;
    for (int i = 0; i < 20; i++) {
        gort_sleep(1000000);
        done++;
    }
    atomic_store(&stop, 1);
    gort_waitgroup wg = {0};
    gort_wg_add(&wg, 1);
    gort_go(blocker, &wg);
    gort_wg_wait(&wg);
    printf("sleeps=%d ticks=%d\n", done, atomic_load(&prof_ticks) > 0);
}
GT_CHILD(owned_signals)
{
    signal(SIGPROF, prof_tick);
    struct itimerval it = {{0, 2000}, {0, 2000}};
    setitimer(ITIMER_PROF, &it, NULL);
    gort_main(owned_body, NULL);
}

static void test_own_sigprof_and_blocked_sigurg(void)
{
    GT_SKIP_UNDER_TSAN("no asynchronous preemption");
    gt_child_result r;
    const char *env[] = {"GORT_MAXPROCS=1", NULL};
    CU_ASSERT_EQUAL_FATAL(gt_child_run("owned_signals", env, 60, &r), 0);
    CU_ASSERT_TRUE(r.exited && r.status == 0);
    CU_ASSERT_TRUE(gt_contains(r.out, "sleeps=20 ticks=1\n"));
    /* sysmon backs off an M whose thread blocks the signal: a handful of
     * requests in 400 ms, not one every round. */
    unsigned long long n = stat_of(r.out, "requests_while_blocked=");
    CU_ASSERT_TRUE(gt_contains(r.out, "requests_while_blocked=") && n <= 100);
    CU_ASSERT_FALSE(gt_contains(r.out, "was replaced"));
    if (n > 100)
        printf("\n%s\n", r.out);
    gt_child_free(&r);
}

/* ---- threads refused: RLIMIT_NPROC low, goroutines in blocking calls ---- */

#define NPROC_SLEEPERS 12

static void nproc_sleeper(void *a)
{
    gort_waitgroup *wg = a;
    struct timespec ts = {0, 30 * 1000 * 1000};
    gort_nanosleep(&ts, NULL);
    gort_wg_done(wg);
}

static void nproc_worker(void *a)
{
    gort_chan *c = a;
    long v = 0;
    for (long i = 0; i < 1000; i++)
        v += i;
    gort_chan_send(c, &v);
}

static void nproc_body(void *a)
{
    (void)a;
    gort_waitgroup wg = {0};
    gort_wg_add(&wg, NPROC_SLEEPERS);
    for (int i = 0; i < NPROC_SLEEPERS; i++)
        gort_go(nproc_sleeper, &wg);
    gort_chan *c = gort_chan_make(sizeof(long), 0);
    for (int i = 0; i < 100; i++)
        gort_go(nproc_worker, c);
    long sum = 0, v;
    for (int i = 0; i < 100; i++) {
        gort_chan_recv(c, &v);
        sum += v;
    }
    gort_wg_wait(&wg);
    gort_stats s;
    gort_stats_get(&s);
    printf("sum=%ld threads=%llu\n", sum, (unsigned long long)s.threads);
    fflush(stdout);
}
GT_CHILD(nproc_low)
{
    /* Root is exempt from RLIMIT_NPROC: drop to nobody first.  Elsewhere
     * the shim refuses threads the same way (EAGAIN) beyond the fourth. */
    if (getuid() == 0) {
        struct rlimit rl = {4, 4};
        if (setrlimit(RLIMIT_NPROC, &rl) != 0 || setgid(65534) != 0 || setuid(65534) != 0) {
            printf("cannot drop to nobody\n");
            return;
        }
    }
    gort_main(nproc_body, NULL);
}

static void test_nproc_low_blocking_calls(void)
{
    gt_child_result r;
    if (getuid() == 0) {
        /* LeakSanitizer needs a thread of its own at exit, which the limit
         * refuses. */
        const char *env[] = {"GORT_MAXPROCS=2", "ASAN_OPTIONS=detect_leaks=0", NULL};
        CU_ASSERT_EQUAL_FATAL(gt_child_run("nproc_low", env, 60, &r), 0);
    } else {
        CU_ASSERT_EQUAL_FATAL(run_shim("nproc_low", "pthread_create:3+", &r), 0);
    }
    CU_ASSERT_FALSE(r.timed_out);
    CU_ASSERT_TRUE(r.exited && r.status == 0);
    CU_ASSERT_TRUE(gt_contains(r.out, "sum=49950000 "));
    CU_ASSERT_EQUAL(count_of(r.out, "gort: cannot create a thread (Resource temporarily unavailable); "
                                    "waiting for one to free up\n"),
                    1);
    /* Fewer threads than sleepers: the hand-offs waited for Ms. */
    CU_ASSERT_TRUE(stat_of(r.out, "threads=") < NPROC_SLEEPERS);
    if (!gt_contains(r.out, "sum=49950000"))
        printf("\n%s\n", r.out);
    gt_child_free(&r);
}

/* ---- kernel features forced off ---- */

static gort_mutex wl_mu;
static long wl_count;

static void wl_locker(void *a)
{
    gort_waitgroup *wg = a;
    for (int i = 0; i < 2000; i++) {
        gort_mutex_lock(&wl_mu);
        wl_count++;
        gort_mutex_unlock(&wl_mu);
    }
    gort_wg_done(wg);
}

/* Mutexes, timers, a spinner beside sleepers: what membarrier, the
 * poller and preemption serve. */
static void workload_body(void *a)
{
    (void)a;
    gort_go(spinner, NULL);
    gort_waitgroup wg = {0};
    gort_wg_add(&wg, 4);
    for (int i = 0; i < 4; i++)
        gort_go(wl_locker, &wg);
    int64_t t0 = mono_ms();
    int done = 0;
    for (int i = 0; i < 20; i++) {
        gort_sleep(1000000);
        done++;
    }
    gort_wg_wait(&wg);
    atomic_store(&stop, 1);
    printf("count=%ld sleeps=%d slept_ms_ok=%d\n", wl_count, done, mono_ms() - t0 >= 20);
}
GT_CHILD(workload) { gort_main(workload_body, NULL); }

static void forced_off(const char *spec, const char *said)
{
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(run_shim("workload", spec, &r), 0);
    CU_ASSERT_TRUE(r.exited && r.status == 0);
    CU_ASSERT_TRUE(gt_contains(r.out, "count=8000 sleeps=20 slept_ms_ok=1\n"));
    CU_ASSERT_EQUAL(count_of(r.out, said), 1);
    if (count_of(r.out, said) != 1 || !(r.exited && r.status == 0))
        printf("\n%s\n", r.out);
    gt_child_free(&r);
}

static void test_no_membarrier(void)
{
    forced_off("membarrier:1+", "gort: membarrier(2) is not available; ");
}

static void test_no_epoll_pwait2(void)
{
    forced_off("epoll_pwait2:1+", "gort: epoll_pwait2 is not available; ");
}

static void test_no_epoll_pwait2_seccomp(void)
{
    forced_off("epoll_pwait2:1+:EPERM", "gort: epoll_pwait2 is not available; ");
}

static void test_no_guard_pages(void)
{
    /* Without MADV_GUARD_INSTALL, and with mprotect refused (no mapping
     * left under vm.max_map_count): canaries, and said so. */
    forced_off("madvise_guard:1+,mprotect:1+", "gort: no more guard pages for goroutine stacks");
}

static void deep(int n)
{
    volatile char pad[256];
    pad[n % 256] = (char)n;
    if (n >= 0)
        deep(n + 1);
    (void)pad[3];
}
static void deep_goroutine(void *a)
{
    (void)a;
    printf("goid %llu\n", (unsigned long long)gort_self());
    fflush(stdout);
    deep(0);
}
static void deep_body(void *a)
{
    (void)a;
    struct rlimit no = {0, 0};
    setrlimit(RLIMIT_CORE, &no);
    gort_wg_add(&never, 1);
    gort_go(deep_goroutine, NULL);
    gort_wg_wait(&never);
}
GT_CHILD(deep_overflow) { gort_main(deep_body, NULL); }

static void test_no_madv_guard_still_guarded(void)
{
    /* MADV_GUARD_INSTALL missing: PROT_NONE guards catch the overflow. */
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(run_shim("deep_overflow", "madvise_guard:1+", &r), 0);
    CU_ASSERT_TRUE(r.exited && r.status == 2);
    long goid = (long)stat_of(r.out, "goid ");
    char want[128];
    snprintf(want, sizeof want, "fatal error: goroutine %ld stack overflow\n", goid);
    CU_ASSERT_TRUE(gt_contains(r.out, want));
    gt_child_free(&r);
}

/* ---- the profiler: timers refused, files that cannot be written ---- */

static char prof_path[128];

static void count_tasks(int *n)
{
    *n = 0;
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "Threads:", 8) == 0)
            *n = atoi(line + 8);
    if (f)
        fclose(f);
}

static void timer_body(void *a)
{
    (void)a;
    int before, after;
    count_tasks(&before);
    int rc = gort_cpuprofile_start(prof_path, 100);
    count_tasks(&after);
    struct stat st;
    printf("start=%d file=%d threads_same=%d\n", rc, stat(prof_path, &st) == 0, before == after);
    if (rc == 0)
        gort_cpuprofile_stop();
}
GT_CHILD(timer_refused)
{
    snprintf(prof_path, sizeof prof_path, "/tmp/gort-timer-%d.prof", (int)getpid());
    gort_main(timer_body, NULL);
    unlink(prof_path);
}

static void test_timer_create_refused(void)
{
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(run_shim("timer_refused", "timer_create:1+", &r), 0);
    char want[64];
    snprintf(want, sizeof want, "start=%d file=0 threads_same=1\n", -EAGAIN);
    CU_ASSERT_TRUE(gt_contains(r.out, want));
    CU_ASSERT_TRUE(r.exited && r.status == 0);
    gt_child_free(&r);
}

static void cut_body(void *a)
{
    (void)a;
    int rc = gort_cpuprofile_start(prof_path, 1000);
    int64_t t0 = mono_ms();
    while (mono_ms() - t0 < 100)
        ;
    int stop_rc = rc == 0 ? gort_cpuprofile_stop() : rc;
    char buf[64] = {0};
    int fd = open(prof_path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    printf("stop=%d old_kept=%d\n", stop_rc, n > 0 && strcmp(buf, "old profile\n") == 0);
}
GT_CHILD(profile_cut)
{
    /* A file larger than the limit fails after a short write (EFBIG): a
     * profile cut short.  The earlier profile at the path must stay. */
    snprintf(prof_path, sizeof prof_path, "/tmp/gort-cut-%d.prof", (int)getpid());
    FILE *f = fopen(prof_path, "w");
    fputs("old profile\n", f);
    fclose(f);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {200, 200};
    setrlimit(RLIMIT_FSIZE, &rl);
    gort_main(cut_body, NULL);
    unlink(prof_path);
}

static void test_profile_cut_short(void)
{
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("profile_cut", NULL, 60, &r), 0);
    char want[64];
    snprintf(want, sizeof want, "stop=%d old_kept=1\n", -EFBIG);
    CU_ASSERT_TRUE(gt_contains(r.out, want));
    if (!gt_contains(r.out, want))
        printf("\n%s\n", r.out);
    gt_child_free(&r);
}

/* GORT_TRACE's file is written whole too: a trace cut short by the file
 * size limit leaves the earlier file at the path, and says so. */
static void trace_cut_body(void *a)
{
    (void)a;
    for (int i = 0; i < 5000; i++)
        gort_yield();
}
GT_CHILD(trace_cut)
{
    /* Below even an empty gzipped profile's size. */
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {64, 64};
    setrlimit(RLIMIT_FSIZE, &rl);
    gort_main(trace_cut_body, NULL);
}

/* A file gort names from the environment, cut short by the file size
 * limit: the earlier file at the path stays, no temporary is left, and
 * stderr says so. */
static void env_file_cut(const char *var, const char *said)
{
    char path[64], env[96], tmp[96];
    snprintf(path, sizeof path, "/tmp/gort-envcut-%d", (int)getpid());
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("old file\n", f);
    fclose(f);
    snprintf(env, sizeof env, "%s=%s", var, path);
    const char *envv[] = {env, NULL};
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("trace_cut", envv, 60, &r), 0);
    char buf[64] = {0};
    int fd = open(path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    unlink(path);
    CU_ASSERT_TRUE(n > 0 && strcmp(buf, "old file\n") == 0);
    snprintf(tmp, sizeof tmp, "%s.tmp.*", path);
    glob_t g;
    CU_ASSERT_EQUAL(glob(tmp, 0, NULL, &g), GLOB_NOMATCH);
    globfree(&g);
    CU_ASSERT_TRUE(gt_contains(r.out, said));
    if (!gt_contains(r.out, said))
        printf("\n%s\n", r.out);
    gt_child_free(&r);
}

static void test_trace_cut_short(void)
{
    env_file_cut("GORT_TRACE", "GORT_TRACE: the trace could not be written whole");
}

/* GORT_CPUPROFILE's profile, written at exit. */
static void test_env_profile_cut_short(void)
{
    env_file_cut("GORT_CPUPROFILE", "gort: the CPU profile could not be written whole (File too large); /tmp/gort-envcut-");
}

/* gortprof's own output (flame -o) is written whole too: cut short by the
 * file size limit, it fails with one line and the older graph stays. */
static void test_flame_cut_short(void)
{
    char out[64], cmd[512];
    snprintf(out, sizeof out, "/tmp/gort-flamecut-%d.svg", (int)getpid());
    FILE *f = fopen(out, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("old graph\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "trap '' XFSZ; ulimit -f 1; exec %s flame tests/testdata/go-cpu.pb.gz -o %s",
             gt_gortprof_path(), out);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_cmd_run(argv, NULL, 60, &r), 0);
    CU_ASSERT_TRUE(r.exited && r.status == 1);
    CU_ASSERT_TRUE(gt_contains(r.out, "not written: File too large"));
    char buf[64] = {0}, tmp[96];
    int fd = open(out, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    CU_ASSERT_TRUE(n > 0 && strcmp(buf, "old graph\n") == 0);
    snprintf(tmp, sizeof tmp, "%s.tmp.*", out);
    glob_t g;
    CU_ASSERT_EQUAL(glob(tmp, 0, NULL, &g), GLOB_NOMATCH);
    globfree(&g);
    if (!(r.exited && r.status == 1))
        printf("\n%s\n", r.out);
    unlink(out);
    gt_child_free(&r);
}

static void full_body(void *a)
{
    (void)a;
    int rc = gort_cpuprofile_start("/dev/full", 1000);
    int64_t t0 = mono_ms();
    while (mono_ms() - t0 < 50)
        ;
    printf("start=%d stop=%d\n", rc, rc == 0 ? gort_cpuprofile_stop() : rc);
}
GT_CHILD(profile_full) { gort_main(full_body, NULL); }

static void test_profile_disk_full(void)
{
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("profile_full", NULL, 60, &r), 0);
    char want[64];
    snprintf(want, sizeof want, "start=0 stop=%d\n", -ENOSPC);
    CU_ASSERT_TRUE(gt_contains(r.out, want));
    gt_child_free(&r);
}

GT_SUITE(faults, {"overflow_in_memset", test_overflow_in_memset}, {"fork_child_sleep", test_fork_child_sleep},
         {"fork_child_go", test_fork_child_go}, {"fork_child_chan", test_fork_child_chan},
         {"fork_child_every_call", test_fork_child_every_call}, {"fork_exec_and_spawn", test_fork_exec_and_spawn},
         {"replaced_handler_said_once", test_replaced_handler_said_once},
         {"preempt_signal_realtime", test_preempt_signal_realtime}, {"preempt_signal_bad", test_preempt_signal_bad},
         {"own_sigprof_and_blocked_sigurg", test_own_sigprof_and_blocked_sigurg},
         {"nproc_low_blocking_calls", test_nproc_low_blocking_calls}, {"no_membarrier", test_no_membarrier},
         {"no_epoll_pwait2", test_no_epoll_pwait2}, {"no_epoll_pwait2_seccomp", test_no_epoll_pwait2_seccomp},
         {"no_guard_pages", test_no_guard_pages}, {"no_madv_guard_still_guarded", test_no_madv_guard_still_guarded},
         {"timer_create_refused", test_timer_create_refused}, {"profile_cut_short", test_profile_cut_short},
         {"trace_cut_short", test_trace_cut_short}, {"env_profile_cut_short", test_env_profile_cut_short},
         {"flame_cut_short", test_flame_cut_short},
         {"profile_disk_full", test_profile_disk_full})
