/*
 * sysmon_test.c: Ps whose thread is off the CPU, and the default number of
 * Ps (issue 18).
 *
 *  - A goroutine in a long system call, wrapped or not, must not hold up
 *    the timers of its P: a sleeper beside it wakes on time.
 *  - More Ps than CPUs: spinners whose threads wait for a CPU are preempted
 *    by wall time, their Ps are never revoked nor extra Ms started for
 *    them, and a sleeper's timer fires.
 *  - sysmon's pacing (sysmon/pace.c), from tables.
 *  - A sysmon round held up (here on the loader lock) does not make the
 *    wait stamps of goroutines that park meanwhile old (stale_clock).
 *
 * Each case runs in a child with its own GORT_MAXPROCS.  The children
 * print what they measured and "OK" only when every bound holds.  The
 * bounds are the issue's; on a 2-core machine shared with a dozen busy
 * processes a run now and then misses one because the sleeper's own
 * thread waited for a CPU (at load 18, Go's own sleeper beside a raw
 * nanosleep at GOMAXPROCS=2 woke 130-220 times of 450), so a case passes
 * when one of five runs meets them.  The failures they catch miss in
 * every run (the sleeper woke a third as often, the 2 s sleep took 5 s to
 * forever).
 */
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"
#include "pcclass.h"
#include "sysmon.h"
#include "test.h"

static int envint(const char *name, int def)
{
    const char *s = getenv(name);
    return s && *s ? atoi(s) : def;
}

/* Runs child name with env up to five times; true once it prints OK. */
static bool child_ok_once_in_5(const char *name, const char *const *env)
{
    for (int i = 0; i < 5; i++) {
        gt_child_result r;
        if (gt_child_run(name, env, 60, &r) != 0)
            return false;
        bool ok = r.exited && r.status == 0 && gt_contains(r.out, "OK\n");
        printf("%s%s", i ? "" : "\n", r.out);
        gt_child_free(&r);
        if (ok)
            return true;
    }
    return false;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* ---- a sleeper beside a long system call ---- */

#define SC_CALLS 10
#define SC_CALL_NS (50 * 1000 * 1000)
#define SC_TICK_NS (1000 * 1000)
#define SC_MAXWAKES 4096

static _Atomic int sc_done;
static int64_t sc_late[SC_MAXWAKES];

/* GT_SHORT=1: the same 500 ms in 2,500 calls of 200 us.  Each wrapped
 * call then gets its P back on the fast path and the goroutine never
 * schedules, so the P's timers wait unless sysmon hands the P off while a
 * timer is due (a loop of short gort_nanosleep calls once starved the
 * main goroutine's timer at one proc for good). */
static void sc_caller(void *arg)
{
    bool wrapped = arg != NULL;
    bool short_calls = envint("GT_SHORT", 0) != 0;
    int calls = short_calls ? SC_CALLS * 250 : SC_CALLS;
    struct timespec ts = {0, short_calls ? SC_CALL_NS / 250 : SC_CALL_NS};
    for (int i = 0; i < calls; i++) {
        if (wrapped)
            gort_syscall_enter();
        nanosleep(&ts, NULL);
        if (wrapped)
            gort_syscall_exit();
    }
    atomic_store(&sc_done, 1);
}

static void sc_body(void *arg)
{
    (void)arg;
    bool wrapped = envint("GT_WRAPPED", 1) != 0;
    gort_go(sc_caller, wrapped ? (void *)1 : NULL);
    /* Let the caller enter its first call. */
    gort_sleep(SC_TICK_NS);
    int n = 0;
    int64_t start = gort_nanotime();
    while (!atomic_load(&sc_done) && n < SC_MAXWAKES) {
        int64_t t0 = gort_nanotime();
        gort_sleep(SC_TICK_NS);
        sc_late[n++] = gort_nanotime() - t0 - SC_TICK_NS;
    }
    int64_t elapsed = gort_nanotime() - start;
    qsort(sc_late, (size_t)n, sizeof sc_late[0], cmp64);
    int64_t median = n ? sc_late[n / 2] : 0;
    /* The wake-ups a sleeper with this median lateness makes in that
     * time: a P left unserved shows as a few long gaps, which cut the
     * count while the median stays low. */
    int64_t expected = elapsed / (SC_TICK_NS + (median > 0 ? median : 0));
    gort_stats st;
    gort_stats_get(&st);
    int64_t gaps = 0; /* time lost in wake-ups more than 5 ms late */
    for (int i = 0; i < n; i++)
        if (sc_late[i] > 5 * 1000 * 1000)
            gaps += sc_late[i];
    printf("procs=%d wrapped=%d wakes=%d expected=%lld median_late_us=%lld max_late_ms=%lld in_gaps_ms=%lld "
           "elapsed_ms=%lld handoffs=%llu unwrapped=%llu\n",
           gort_maxprocs(0), wrapped, n, (long long)expected, (long long)(median / 1000),
           (long long)(n ? sc_late[n - 1] / 1000000 : 0), (long long)(gaps / 1000000), (long long)(elapsed / 1000000),
           (unsigned long long)st.handoffs, (unsigned long long)st.unwrapped_blocks);
    if (n * 10 >= expected * 9 && median < 2 * 1000 * 1000)
        printf("OK\n");
    fflush(stdout);
}

GT_CHILD(sysmon_syscall_sleeper) { gort_main(sc_body, NULL); }

static void sc_case(const char *procs, const char *wrapped)
{
    const char *env[] = {procs, wrapped, "GT_SHORT=0", NULL};
    CU_ASSERT_TRUE(child_ok_once_in_5("sysmon_syscall_sleeper", env));
}

static void sc_case_short(const char *procs)
{
    const char *env[] = {procs, "GT_WRAPPED=1", "GT_SHORT=1", NULL};
    CU_ASSERT_TRUE(child_ok_once_in_5("sysmon_syscall_sleeper", env));
}

static void test_syscall_timers(void)
{
    GT_SKIP_UNDER_TSAN("wake-up timing");
    sc_case("GORT_MAXPROCS=1", "GT_WRAPPED=1");
    sc_case("GORT_MAXPROCS=1", "GT_WRAPPED=0");
    sc_case("GORT_MAXPROCS=2", "GT_WRAPPED=1");
    sc_case("GORT_MAXPROCS=2", "GT_WRAPPED=0");
    sc_case_short("GORT_MAXPROCS=1");
}

/* ---- more Ps than CPUs ---- */

#define OS_SPINNERS 128
#define OS_SLEEP_NS (2000LL * 1000 * 1000)

static _Atomic int os_stop, os_started;

static void os_spin(void *arg)
{
    (void)arg;
    atomic_fetch_add(&os_started, 1);
    while (!atomic_load_explicit(&os_stop, memory_order_relaxed))
        gort__cpu_relax();
}

static int count_threads(void)
{
    /* st_nlink of /proc/self/task is 2 + the number of threads. */
    struct stat sb;
    return stat("/proc/self/task", &sb) == 0 ? (int)sb.st_nlink - 2 : -1;
}

static void os_body(void *arg)
{
    (void)arg;
    int procs = gort_maxprocs(0);
    gort_stats before;
    gort_stats_get(&before);
    for (int i = 0; i < OS_SPINNERS; i++)
        gort_go(os_spin, NULL);
    int64_t t0 = gort_nanotime();
    gort_sleep(OS_SLEEP_NS);
    int64_t slept = gort_nanotime() - t0;
    int threads = count_threads();
    atomic_store(&os_stop, 1);
    gort_stats st;
    gort_stats_get(&st);
    uint64_t revoked = st.unwrapped_blocks - before.unwrapped_blocks;
    uint64_t handoffs = st.handoffs - before.handoffs;
    printf("procs=%d slept_ms=%lld started=%d threads=%d ms=%llu revoked=%llu handoffs=%llu preempts=%llu\n",
           procs, (long long)(slept / 1000000), atomic_load(&os_started), threads,
           (unsigned long long)st.threads, (unsigned long long)revoked, (unsigned long long)handoffs,
           (unsigned long long)(st.preempt_done + st.preempt_coop));
    /* A few threads beyond the Ps: sysmon, the main thread while it
     * waits, a profiler or signal helper. */
    if (slept < OS_SLEEP_NS + OS_SLEEP_NS / 4 && threads <= procs + 4 && (int)st.threads <= procs + 4 &&
        revoked == 0 && handoffs == 0)
        printf("OK\n");
    fflush(stdout);
}

GT_CHILD(sysmon_oversub) { gort_main(os_body, NULL); }

static void test_oversubscribed(void)
{
    GT_SKIP_UNDER_TSAN("128 threads on a few CPUs under TSan are too slow for the time bound");
    const char *env64[] = {"GORT_MAXPROCS=64", NULL};
    CU_ASSERT_TRUE(child_ok_once_in_5("sysmon_oversub", env64));
    const char *env128[] = {"GORT_MAXPROCS=128", NULL};
    CU_ASSERT_TRUE(child_ok_once_in_5("sysmon_oversub", env128));
}

/* ---- the stale clock while a round is held up ---- */

/* A goroutine's waitsince comes from sysmon's clock (gort__nanotime_stale).
 * It once was the time of sysmon's last round, so a round held up for a
 * minute would make a goroutine that parked meanwhile for a millisecond
 * read "[sync.WaitGroup.Wait, 1 minutes]" in a dump.  Here a plain thread holds the loader lock inside dl_iterate_phdr, a
 * missed PC lookup asks sysmon for a module refresh, and sysmon's next
 * round blocks in it; a goroutine that parks then must get a stamp of
 * about now. */
static _Atomic int hold_in, hold_release;

static int hold_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)info;
    (void)size;
    (void)arg;
    atomic_store(&hold_in, 1);
    while (!atomic_load(&hold_release)) {
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 1;
}

static void *holder(void *arg)
{
    (void)arg;
    dl_iterate_phdr(hold_cb, NULL);
    return NULL;
}

static uint64_t rounds_now(void)
{
    gort_stats st;
    gort_stats_get(&st);
    return st.sysmon_rounds;
}

static gort_waitgroup hold_wg, hold_done;
static void hold_parker(void *arg)
{
    (void)arg;
    gort_wg_wait(&hold_wg);
    gort_wg_done(&hold_done);
}

static int64_t waitsince_of(uint64_t goid)
{
    int64_t r = -1;
    gort__lock(&gort__allglock);
    for (size_t i = 0; i < gort__nallgs; i++)
        if (gort__allgs[i]->goid == goid && atomic_load(&gort__allgs[i]->status) == G_WAITING)
            r = gort__allgs[i]->waitsince;
    gort__unlock(&gort__allglock);
    return r;
}

static void stale_body(void *arg)
{
    (void)arg;
    pthread_t th;
    if (pthread_create(&th, NULL, holder, NULL) != 0)
        return;
    while (!atomic_load(&hold_in))
        gort_sleep(1000 * 1000);
    (void)gort__pc_class(1); /* no module has it: sysmon refreshes next round */
    /* sysmon naps at most 100 ms: no round in 150 ms means it is held.
     * Give up after 10 s (prints no OK). */
    bool held = false;
    for (int i = 0; i < 60 && !held; i++) {
        uint64_t r0 = rounds_now();
        gort_sleep(150 * 1000 * 1000);
        held = rounds_now() == r0;
    }
    uint64_t r1 = rounds_now();
    /* Let the hold-up age, then park a goroutine and read its stamp. */
    gort_sleep(500 * 1000 * 1000);
    gort_wg_add(&hold_wg, 1);
    gort_wg_add(&hold_done, 1);
    int64_t t0 = gort__nanotime_coarse();
    uint64_t goid = gort_go(hold_parker, NULL);
    int64_t since = -1;
    for (int i = 0; i < 5000 && since < 0; i++) {
        gort_sleep(1000 * 1000);
        since = waitsince_of(goid);
    }
    bool still_held = rounds_now() == r1;
    atomic_store(&hold_release, 1);
    pthread_join(th, NULL);
    gort_wg_done(&hold_wg);
    gort_wg_wait(&hold_done); /* no goroutine left parked at exit */
    printf("held=%d still_held=%d parked=%d stamp_age_ms=%lld\n", held, still_held, since >= 0,
           (long long)((t0 - since) / 1000000));
    /* The stamp may lag the coarse clock by one sysmon nap (100 ms) at
     * most; the held round began over 500 ms ago. */
    if (held && still_held && since >= 0 && t0 - since < 200 * 1000 * 1000)
        printf("OK\n");
    fflush(stdout);
}

GT_CHILD(sysmon_stale_clock) { gort_main(stale_body, NULL); }

static void test_stale_clock(void)
{
    /* One P: the parker runs on the main goroutine's thread, so that no
     * new M has to start while the loader lock is held. */
    const char *env[] = {"GORT_MAXPROCS=1", NULL};
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("sysmon_stale_clock", env, 60, &r), 0);
    printf("\n%s", r.out);
    CU_ASSERT_TRUE(r.exited && r.status == 0 && gt_contains(r.out, "OK\n"));
    gt_child_free(&r);
}

/* ---- pacing ---- */

#define US 1000LL
#define MS (1000 * 1000LL)

/* One sleep decision: the state before, what sysmon saw, the nap. */
static const struct {
    const char *what;
    sysmon_pace_t s;
    sysmon_obs_t o;
    int64_t ns;
    bool quiet, pokeable;
} sleep_rows[] = {
    {"a hand-off: quick rounds", {.delay = 5 * MS, .idle = 0}, {.now = 100 * MS, .slice_ns = 10 * MS}, 20 * US, false, false},
    {"50 idle rounds: still quick", {.delay = 20 * US, .idle = 50}, {.now = 100 * MS, .slice_ns = 10 * MS}, 20 * US, false, false},
    {"then doubling", {.delay = 20 * US, .idle = 51}, {.now = 100 * MS, .slice_ns = 10 * MS}, 40 * US, false, false},
    {"up to 10 ms", {.delay = 8 * MS, .idle = 200}, {.now = 100 * MS, .slice_ns = 10 * MS}, 10 * MS, false, true},
    {"every P idle", {.delay = 8 * MS, .idle = 200}, {.now = 100 * MS, .quiet = true, .slice_ns = 10 * MS}, 100 * MS, true, true},
    {"every P idle, schedtrace", {.delay = 8 * MS, .idle = 200}, {.now = 100 * MS, .quiet = true, .slice_ns = 10 * MS, .trace_ns = 1 * MS}, 1 * MS, false, true},
    {"a slice ends first", {.delay = 8 * MS, .idle = 200}, {.now = 100 * MS, .slice_ns = 10 * MS, .due = 103 * MS}, 3 * MS, false, true},
    {"a slice ended: a round", {.delay = 8 * MS, .idle = 200}, {.now = 100 * MS, .slice_ns = 10 * MS, .due = 99 * MS}, 20 * US, false, false},
    {"a fresh goroutine: an eighth", {.delay = 8 * MS, .idle = 200}, {.now = 100 * MS, .slice_ns = 10 * MS, .fresh = true}, 1250 * US, false, true},
    {"a fresh one, tiny slice", {.delay = 8 * MS, .idle = 200}, {.now = 100 * MS, .slice_ns = 100 * US, .fresh = true}, 20 * US, false, false},
    {"hurrying", {.delay = 8 * MS, .idle = 200, .hurry_on = true, .hurry_end = 101 * MS}, {.now = 100 * MS, .slice_ns = 10 * MS}, 20 * US, false, false},
    {"cooling: no pokes", {.delay = 8 * MS, .idle = 200, .cool_until = 105 * MS}, {.now = 100 * MS, .slice_ns = 10 * MS}, 10 * MS, false, false},
    {"after a poke: none for a while", {.delay = 8 * MS, .idle = 200, .poke_quiet_until = 101 * MS}, {.now = 100 * MS, .slice_ns = 10 * MS}, 10 * MS, false, false},
};

static void test_pace_sleep(void)
{
    for (size_t i = 0; i < sizeof sleep_rows / sizeof sleep_rows[0]; i++) {
        sysmon_pace_t s = sleep_rows[i].s;
        sysmon_nap_t n = gort__pace_sleep(&s, &sleep_rows[i].o);
        bool ok = n.ns == sleep_rows[i].ns && n.quiet == sleep_rows[i].quiet && n.pokeable == sleep_rows[i].pokeable;
        if (!ok)
            printf("\n  %s: ns=%lld quiet=%d pokeable=%d, want %lld %d %d", sleep_rows[i].what, (long long)n.ns, n.quiet,
                   n.pokeable, (long long)sleep_rows[i].ns, sleep_rows[i].quiet, sleep_rows[i].pokeable);
        CU_ASSERT_TRUE(ok);
    }
}

/* One round: the state before, what retake found, the state after. */
static const struct {
    const char *what;
    sysmon_pace_t s;
    sysmon_obs_t o;
    sysmon_pace_t want;
} round_rows[] = {
    {"nothing: one more idle round", {.idle = 3}, {.now = 100 * MS}, {.idle = 4}},
    {"a hand-off: idle again from 0", {.idle = 300}, {.now = 100 * MS, .handoffs = 1}, {.idle = 0}},
    {"a revoke does not reset", {.idle = 300}, {.now = 100 * MS, .revokes = 1}, {.idle = 301}},
    {"work behind a stuck P: hurry", {.idle = 3}, {.now = 100 * MS, .hurry = true}, {.idle = 4, .hurry_on = true, .hurry_end = 101 * MS}},
    {"not while cooling", {.idle = 3, .cool_until = 105 * MS}, {.now = 100 * MS, .hurry = true}, {.idle = 4, .cool_until = 105 * MS}},
    {"still hurrying", {.hurry_on = true, .hurry_end = 101 * MS}, {.now = 100 * MS, .hurry = true}, {.idle = 1, .hurry_on = true, .hurry_end = 101 * MS}},
    {"an episode's end: cool down", {.hurry_on = true, .hurry_end = 101 * MS}, {.now = 101 * MS, .hurry = true}, {.idle = 1, .hurry_end = 101 * MS, .cool_until = 111 * MS}},
    {"nothing waits: cool down", {.hurry_on = true, .hurry_end = 101 * MS}, {.now = 100 * MS}, {.idle = 1, .hurry_end = 101 * MS, .cool_until = 110 * MS}},
    {"a revoke ends it, no cool-down", {.hurry_on = true, .hurry_end = 101 * MS, .cool_until = 7}, {.now = 100 * MS, .hurry = true, .revokes = 1}, {.idle = 1, .hurry_end = 101 * MS}},
};

static void test_pace_round(void)
{
    for (size_t i = 0; i < sizeof round_rows / sizeof round_rows[0]; i++) {
        sysmon_pace_t s = round_rows[i].s;
        gort__pace_round(&s, &round_rows[i].o);
        const sysmon_pace_t *w = &round_rows[i].want;
        bool ok = s.idle == w->idle && s.hurry_on == w->hurry_on && s.hurry_end == w->hurry_end &&
                  s.cool_until == w->cool_until && s.poke_quiet_until == w->poke_quiet_until;
        if (!ok)
            printf("\n  %s: idle=%d hurry_on=%d hurry_end=%lld cool_until=%lld", round_rows[i].what, s.idle, s.hurry_on,
                   (long long)s.hurry_end, (long long)s.cool_until);
        CU_ASSERT_TRUE(ok);
    }
}

/* A whole run: quick rounds, the back-off, a quiet sleep, a poke. */
static void test_pace_sequence(void)
{
    sysmon_pace_t s;
    gort__pace_init(&s);
    sysmon_obs_t o = {.now = 0, .slice_ns = 10 * MS};
    int64_t total = 0;
    int quick = 0;
    for (int i = 0; i < 80; i++) {
        sysmon_nap_t n = gort__pace_sleep(&s, &o);
        if (n.ns == 20 * US)
            quick++;
        total += n.ns;
        o.now += n.ns;
        gort__pace_woke(&s, &n, false, o.now);
        gort__pace_round(&s, &o);
    }
    CU_ASSERT_EQUAL(quick, 51); /* the first, then 50 idle rounds */
    CU_ASSERT_EQUAL(s.delay, 10 * MS);
    CU_ASSERT_TRUE(total > 100 * MS);
    o.quiet = true;
    sysmon_nap_t n = gort__pace_sleep(&s, &o);
    CU_ASSERT_TRUE(n.quiet);
    gort__pace_woke(&s, &n, true, o.now);
    CU_ASSERT_EQUAL(s.idle, 50);
    CU_ASSERT_EQUAL(s.poke_quiet_until, 0);
    o.quiet = false;
    gort__pace_round(&s, &o);
    n = gort__pace_sleep(&s, &o);
    CU_ASSERT_EQUAL(n.ns, 10 * MS); /* backs off at once after a quiet sleep */
    gort__pace_woke(&s, &n, true, o.now);
    CU_ASSERT_EQUAL(s.poke_quiet_until, o.now + 5 * MS);
}

GT_SUITE(sysmon,
         {"pace_sleep", test_pace_sleep},
         {"pace_round", test_pace_round},
         {"pace_sequence", test_pace_sequence},
         {"syscall_timers", test_syscall_timers},
         {"oversubscribed", test_oversubscribed},
         {"stale_clock", test_stale_clock})
