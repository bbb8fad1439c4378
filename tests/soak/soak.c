/*
 * soak.c: everything at once, for minutes or hours, checking invariants.
 *
 *   gort-stress [SECONDS] [--report-every S]      (make soak DURATION=S)
 *
 * The run is a sequence of waves.  Each wave starts a fresh mix:
 *   - producers and consumers over buffered and unbuffered channels; every
 *     item carries a sequence number, consumers mark it in a bitmap, and the
 *     wave checks that each item arrived exactly once;
 *   - selects over several channels with a timer's channel as timeout;
 *   - goroutines taking one mutex and bumping a plain counter (mutual
 *     exclusion: the counter must equal the number of increments);
 *   - spinners that never call the runtime (only preemption moves them);
 *   - wrapped (gort_nanosleep) and unwrapped (raw nanosleep) blocking calls;
 *   - the CPU profiler switched on and off, stack dumps of every goroutine
 *     taken while all this runs, and gort_maxprocs changed now and then:
 *     every seventh wave runs at fewer Ps (1 up to the starting count), and
 *     three waves later the starting count comes back, so a run at
 *     GORT_MAXPROCS=128 spends most of its waves at 128 Ps and shrinks
 *     and grows between them.
 * After a wave every goroutine it created must have exited: the goroutine
 * count returns to the baseline.  Every --report-every seconds (default 10)
 * it prints a line with the running totals and RSS; at the end, the peak RSS
 * and whether RSS grew after the warm-up (first fifth of the run).  Exit
 * status 0 only if every check held.
 */
#include <gort.h>
#include <gort_prof.h>

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ITEMS 20000 /* per channel per wave */
#define NCHAN 4
#define PRODUCERS 4 /* per channel */
#define CONSUMERS 4
#define CHURN_SPAWNERS 50
#define CHURN_EACH 2000 /* 100,000 short goroutines per wave */
#define LOCKERS 16
#define LOCKS_EACH 2000
#define SPINNERS 1 /* leaves a P for the rest whenever procs > 1 */
#define SLEEPERS 8

static atomic_uint_fast64_t total_goroutines, total_messages, total_selects, total_timeouts;
static atomic_int failures;

static void fail(const char *what, long a, long b)
{
    fprintf(stderr, "soak: CHECK FAILED: %s (%ld vs %ld)\n", what, a, b);
    atomic_fetch_add(&failures, 1);
}

static double rss_mib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtod(line + 6, NULL);
    if (f)
        fclose(f);
    return kib / 1024;
}

static uint64_t spawn(void (*fn)(void *), void *arg)
{
    atomic_fetch_add(&total_goroutines, 1);
    return gort_go(fn, arg);
}

/* ---- channels: exactly-once delivery ---- */

typedef struct {
    gort_chan *ch;
    _Atomic uint8_t *seen; /* ITEMS entries */
    _Atomic int next;      /* next sequence number to send */
    gort_waitgroup prod, cons;
    _Atomic long received;
} chanjob_t;

static void producer(void *arg)
{
    chanjob_t *j = arg;
    for (;;) {
        int s = atomic_fetch_add(&j->next, 1);
        if (s >= ITEMS)
            break;
        gort_chan_send(j->ch, &s);
    }
    gort_wg_done(&j->prod);
}

static void consumer(void *arg)
{
    chanjob_t *j = arg;
    int s;
    while (gort_chan_recv(j->ch, &s)) {
        if (s < 0 || s >= ITEMS || atomic_fetch_add(&j->seen[s], 1) != 0)
            fail("item delivered twice or out of range", s, ITEMS);
        atomic_fetch_add(&j->received, 1);
    }
    gort_wg_done(&j->cons);
}

static void closer(void *arg)
{
    chanjob_t *j = arg;
    gort_wg_wait(&j->prod);
    gort_chan_close(j->ch);
}

/* ---- select with timeouts ---- */

typedef struct {
    gort_chan *a, *b;
    gort_waitgroup wg;
    _Atomic long got;
} seljob_t;

static void selector(void *arg)
{
    seljob_t *s = arg;
    gort_timer *t = gort_timer_new(2 * 1000 * 1000);
    for (int i = 0; i < 50; i++) {
        int v;
        gort_timer_reset(t, 300 * 1000);
        gort_case cs[3] = {
            {.ch = s->a, .op = GORT_RECV, .elem = &v},
            {.ch = s->b, .op = GORT_RECV, .elem = &v},
            {.ch = gort_timer_chan(t), .op = GORT_RECV},
        };
        int k = gort_select(cs, 3, true);
        atomic_fetch_add(&total_selects, 1);
        if (k == 2)
            atomic_fetch_add(&total_timeouts, 1);
        else
            atomic_fetch_add(&s->got, 1);
    }
    gort_timer_free(t);
    gort_wg_done(&s->wg);
}

static void select_feeder(void *arg)
{
    seljob_t *s = arg;
    for (int i = 0; i < 100; i++) {
        gort_case cs[2] = {
            {.ch = s->a, .op = GORT_SEND, .elem = &i},
            {.ch = s->b, .op = GORT_SEND, .elem = &i},
        };
        if (gort_select(cs, 2, false) < 0)
            gort_yield();
    }
    gort_wg_done(&s->wg);
}

/* ---- mutex ---- */

typedef struct {
    gort_mutex mu;
    long counter; /* protected by mu, deliberately not atomic */
    gort_waitgroup wg;
} lockjob_t;

static void locker(void *arg)
{
    lockjob_t *l = arg;
    for (int i = 0; i < LOCKS_EACH; i++) {
        gort_mutex_lock(&l->mu);
        l->counter++;
        gort_mutex_unlock(&l->mu);
    }
    gort_wg_done(&l->wg);
}

/* ---- spinners and sleepers ---- */

/* ---- churn: many short goroutines, each counted exactly once ---- */

typedef struct {
    gort_waitgroup wg;
    _Atomic long sum, ran;
} churnjob_t;

static void churn_leaf(void *arg)
{
    churnjob_t *j = arg;
    atomic_fetch_add_explicit(&j->ran, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&j->sum, (long)gort_self(), memory_order_relaxed);
    gort_wg_done(&j->wg);
}

static void churn_spawner(void *arg)
{
    churnjob_t *j = arg;
    for (int i = 0; i < CHURN_EACH; i++)
        spawn(churn_leaf, j); /* wg counted by the wave up front */
    gort_wg_done(&j->wg);
}

static _Atomic int spin_stop;
static void spinner(void *arg)
{
    gort_waitgroup *wg = arg;
    volatile uint64_t x = 1;
    while (!atomic_load_explicit(&spin_stop, memory_order_relaxed))
        for (int i = 0; i < 10000; i++)
            x = x * 2862933555777941757ULL + 3037000493ULL;
    gort_wg_done(wg);
}

static void sleeper(void *arg)
{
    gort_waitgroup *wg = arg;
    struct timespec ts = {0, 200 * 1000};
    for (int i = 0; i < 20; i++) {
        if (i % 2)
            gort_nanosleep(&ts, NULL);
        else
            nanosleep(&ts, NULL); /* unwrapped: sysmon must notice */
    }
    gort_wg_done(wg);
}

/* ---- one wave ---- */

static char dumpbuf[1 << 20];
static int start_procs; /* gort_maxprocs when the soak began; soak_main only */

static void wave(int n)
{
    chanjob_t cj[NCHAN];
    for (int c = 0; c < NCHAN; c++) {
        memset(&cj[c], 0, sizeof cj[c]);
        cj[c].ch = gort_chan_make(sizeof(int), (c % 2) ? 64 : 0);
        cj[c].seen = calloc(ITEMS, 1);
        gort_wg_add(&cj[c].prod, PRODUCERS);
        gort_wg_add(&cj[c].cons, CONSUMERS);
        for (int i = 0; i < PRODUCERS; i++)
            spawn(producer, &cj[c]);
        for (int i = 0; i < CONSUMERS; i++)
            spawn(consumer, &cj[c]);
        spawn(closer, &cj[c]);
    }
    seljob_t sj = {gort_chan_make(sizeof(int), 0), gort_chan_make(sizeof(int), 4), {0}, 0};
    gort_wg_add(&sj.wg, 8);
    for (int i = 0; i < 4; i++) {
        spawn(selector, &sj);
        spawn(select_feeder, &sj);
    }
    lockjob_t lj;
    memset(&lj, 0, sizeof lj);
    gort_wg_add(&lj.wg, LOCKERS);
    for (int i = 0; i < LOCKERS; i++)
        spawn(locker, &lj);
    static churnjob_t chj;
    memset(&chj, 0, sizeof chj);
    gort_wg_add(&chj.wg, CHURN_SPAWNERS * (1 + CHURN_EACH));
    for (int i = 0; i < CHURN_SPAWNERS; i++)
        spawn(churn_spawner, &chj);
    gort_waitgroup spin_wg = {0}, sleep_wg = {0};
    atomic_store(&spin_stop, 0);
    gort_wg_add(&spin_wg, SPINNERS);
    for (int i = 0; i < SPINNERS; i++)
        spawn(spinner, &spin_wg);
    gort_wg_add(&sleep_wg, SLEEPERS);
    for (int i = 0; i < SLEEPERS; i++)
        spawn(sleeper, &sleep_wg);

    /* Observe it all while it runs: a full dump, maybe a profile, maybe a
     * change of processor count. */
    size_t len = gort_stack(dumpbuf, sizeof dumpbuf, true);
    if (len == 0 || strncmp(dumpbuf, "goroutine ", 10) != 0)
        fail("gort_stack(all) returned no dump", (long)len, 0);
    if (n % 3 == 0) {
        char path[64];
        snprintf(path, sizeof path, "/tmp/gort-soak-%d.prof", (int)getpid());
        if (gort_cpuprofile_start(path, 500) == 0) {
            gort_sleep(5 * 1000 * 1000);
            gort_cpuprofile_stop();
        }
        unlink(path);
    }
    if (n % 7 == 0)
        gort_maxprocs(1 + n % start_procs);
    else if (n % 7 == 3)
        gort_maxprocs(start_procs);

    for (int c = 0; c < NCHAN; c++) {
        gort_wg_wait(&cj[c].cons);
        if (cj[c].received != ITEMS)
            fail("items received", cj[c].received, ITEMS);
        for (int s = 0; s < ITEMS; s++)
            if (cj[c].seen[s] != 1) {
                fail("item lost", s, cj[c].seen[s]);
                break;
            }
        atomic_fetch_add(&total_messages, ITEMS);
        free((void *)cj[c].seen);
        gort_chan_free(cj[c].ch);
    }
    gort_wg_wait(&sj.wg);
    gort_wg_wait(&chj.wg);
    if (chj.ran != (long)CHURN_SPAWNERS * CHURN_EACH)
        fail("churn goroutines run", chj.ran, (long)CHURN_SPAWNERS * CHURN_EACH);
    if (chj.sum <= 0)
        fail("churn goroutine ids", chj.sum, 0);
    gort_wg_wait(&lj.wg);
    if (lj.counter != (long)LOCKERS * LOCKS_EACH)
        fail("mutex counter", lj.counter, (long)LOCKERS * LOCKS_EACH);
    gort_wg_wait(&sleep_wg);
    atomic_store(&spin_stop, 1);
    gort_wg_wait(&spin_wg);
    /* Drain what the feeders left in the selectors' channels. */
    int v;
    bool ok;
    while (gort_chan_tryrecv(sj.b, &v, &ok))
        ;
    gort_chan_free(sj.a);
    gort_chan_free(sj.b);
}

typedef struct {
    double seconds, every;
} opts_t;

static void soak_main(void *arg)
{
    opts_t *o = arg;
    int baseline = gort_numgoroutine();
    start_procs = gort_maxprocs(0);
    printf("soak: %.0f s at GORT_MAXPROCS=%d\n", o->seconds, start_procs);
    fflush(stdout);
    int64_t t0 = gort_nanotime(), end = t0 + (int64_t)(o->seconds * 1e9);
    int64_t next_report = t0 + (int64_t)(o->every * 1e9);
    double peak = 0, warm = 0;
    int waves = 0;
    while (gort_nanotime() < end) {
        wave(waves++);
        /* Every goroutine of the wave has been waited for; allow exits in
         * flight to finish.  Generously: at 128 Ps beside a CPU hog an
         * exiting goroutine's thread may wait long for a CPU; a leak
         * stays a leak. */
        for (int i = 0; i < 30000 && gort_numgoroutine() != baseline; i++)
            gort_sleep(1000 * 1000);
        if (gort_numgoroutine() != baseline)
            fail("goroutines left after a wave", gort_numgoroutine(), baseline);
        double r = rss_mib();
        if (r > peak)
            peak = r;
        int64_t now = gort_nanotime();
        if (warm == 0 && now - t0 >= (end - t0) / 5)
            warm = peak;
        if (now >= next_report) {
            gort_stats st;
            gort_stats_get(&st);
            printf("soak: t=%.0fs waves=%d goroutines=%llu messages=%llu selects=%llu "
                   "timeouts=%llu preempt_done=%llu handoffs=%llu unwrapped=%llu rss=%.1fMiB\n",
                   (double)(now - t0) / 1e9, waves, (unsigned long long)total_goroutines,
                   (unsigned long long)total_messages, (unsigned long long)total_selects,
                   (unsigned long long)total_timeouts, (unsigned long long)st.preempt_done,
                   (unsigned long long)st.handoffs, (unsigned long long)st.unwrapped_blocks, r);
            fflush(stdout);
            next_report = now + (int64_t)(o->every * 1e9);
        }
    }
    gort_maxprocs(start_procs);
    gort_stats st;
    gort_stats_get(&st);
    double final = rss_mib();
    printf("soak: done: %.0fs, %d waves, %llu goroutines, %llu messages, %llu selects "
           "(%llu timed out), %llu preemptions, %llu hand-offs, %llu unwrapped blocks, "
           "peak RSS %.1f MiB (after warm-up %.1f, at end %.1f), failures %d\n",
           (double)(gort_nanotime() - t0) / 1e9, waves, (unsigned long long)total_goroutines,
           (unsigned long long)total_messages, (unsigned long long)total_selects,
           (unsigned long long)total_timeouts, (unsigned long long)st.preempt_done,
           (unsigned long long)st.handoffs, (unsigned long long)st.unwrapped_blocks, peak,
           warm, final, atomic_load(&failures));
    /* No growth once warm: allow 25% and 8 MiB of slack for allocator noise.
     * Only for runs of a minute or more: in a short one (CI's 15 s) the
     * first fifth is a few waves, and the stack pool and allocator arenas
     * are still growing toward their working size. */
    if (o->seconds < 60)
        printf("soak: RSS growth not checked (runs under 60 s are still warming up)\n");
    else if (warm > 0 && final > warm * 1.25 + 8)
        fail("RSS grew after warm-up (MiB x100)", (long)(final * 100), (long)(warm * 100));
}

int main(int argc, char **argv)
{
    opts_t o = {30, 10};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--report-every") == 0 && i + 1 < argc)
            o.every = atof(argv[++i]);
        else
            o.seconds = atof(argv[i]);
    }
    if (o.seconds <= 0 || o.every <= 0) {
        fprintf(stderr, "usage: gort-stress [SECONDS] [--report-every S]\n");
        return 1;
    }
    gort_main(soak_main, &o);
    if (atomic_load(&failures)) {
        printf("soak: FAILED (%d checks)\n", atomic_load(&failures));
        return 1;
    }
    printf("soak: ok\n");
    return 0;
}
