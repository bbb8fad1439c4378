/*
 * trace: the execution tracer's cost on scheduler-heavy work, as the Go
 * peer's `trace` workload measures Go's: five (plain, traced) pairs of
 * each job, alternating; the median ratio per job, and the trace's size
 * per event-producing operation.  Arguments: N (pingpong round trips and
 * spawned goroutines, default 200000) and the trace's path.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "gort_prof.h"

#define PAIRS 5

static long n;
static const char *out;

static gort_chan *pa, *pb;

static void echo(void *arg)
{
    (void)arg;
    long v;
    while (gort_chan_recv(pa, &v)) {
        v++;
        gort_chan_send(pb, &v);
    }
    gort_chan_close(pb);
}

static int64_t pingpong_rounds(void)
{
    pa = gort_chan_make(sizeof(long), 0);
    pb = gort_chan_make(sizeof(long), 0);
    gort_go(echo, NULL);
    int64_t t = gort_nanotime();
    for (long i = 0; i < n; i++) {
        long v = i, r;
        gort_chan_send(pa, &v);
        gort_chan_recv(pb, &r);
        if (r != i + 1)
            bench_fail("trace: pingpong: wrong reply");
    }
    gort_chan_close(pa);
    int64_t d = gort_nanotime() - t;
    gort_chan_recv(pb, NULL);
    gort_chan_free(pa);
    gort_chan_free(pb);
    return d;
}

static _Atomic long counter;
static gort_waitgroup wg;

static void one(void *a)
{
    (void)a;
    atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed);
    gort_wg_done(&wg);
}

static int64_t spawn_rounds(void)
{
    int64_t t = gort_nanotime();
    gort_wg_add(&wg, n);
    for (long i = 0; i < n; i++)
        gort_go(one, NULL);
    gort_wg_wait(&wg);
    return gort_nanotime() - t;
}

/* fib(32) as the peer's fibPar: a goroutine per call at or above 20,
 * joined through a channel close. */
static long fib_serial(long k) { return k < 2 ? k : fib_serial(k - 1) + fib_serial(k - 2); }
typedef struct {
    long k, r;
    gort_chan *done;
} fibjob;
static long fib_par(long k);
static void fib_go(void *a)
{
    fibjob *j = a;
    j->r = fib_par(j->k);
    gort_chan_close(j->done);
}
static long fib_par(long k)
{
    if (k < 20)
        return fib_serial(k);
    fibjob j = {k - 1, 0, gort_chan_make(0, 0)};
    gort_go(fib_go, &j);
    long y = fib_par(k - 2);
    gort_chan_recv(j.done, NULL);
    gort_chan_free(j.done);
    return j.r + y;
}
static int64_t fib_rounds(void)
{
    int64_t t = gort_nanotime();
    if (fib_par(32) != 2178309)
        bench_fail("trace: fib: wrong result");
    return gort_nanotime() - t;
}

static void body(void *arg)
{
    (void)arg;
    static const struct {
        const char *name;
        int64_t (*run)(void);
        bool ops;
    } jobs[] = {{"pingpong", pingpong_rounds, true}, {"spawn", spawn_rounds, true}, {"fib", fib_rounds, false}};
    for (size_t j = 0; j < sizeof jobs / sizeof jobs[0]; j++) {
        double ratios[PAIRS];
        off_t size = 0;
        for (int r = 0; r < PAIRS; r++) {
            int64_t plain = jobs[j].run();
            int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd < 0)
                bench_fail("trace: cannot create %s", out);
            int e = gort_trace_start(fd);
            if (e < 0)
                bench_fail("trace: gort_trace_start: %s", strerror(-e));
            int64_t traced = jobs[j].run();
            e = gort_trace_stop();
            if (e < 0)
                bench_fail("trace: gort_trace_stop: %s", strerror(-e));
            struct stat st;
            fstat(fd, &st);
            size = st.st_size;
            close(fd);
            ratios[r] = (double)traced / (double)plain;
        }
        bench_sort(ratios, PAIRS);
        char metric[64];
        snprintf(metric, sizeof metric, "overhead_%s", jobs[j].name);
        bench_report("trace", metric, ratios[PAIRS / 2], "x");
        if (jobs[j].ops) {
            snprintf(metric, sizeof metric, "bytes_per_op_%s", jobs[j].name);
            bench_report("trace", metric, (double)size / (double)n, "B");
        }
    }
}

void bench_trace(int argc, char **argv)
{
    n = bench_arg(argc, argv, 2, 200000);
    out = argc > 3 ? argv[3] : "/tmp/gort-bench.trace";
    bench_run_main(body, NULL);
    bench_report("trace", "trace_written", 1, out); /* the path is the unit, as Go prints it */
}
