/* preempt: one P; a goroutine spins with no calls in its loop; another
 * sleeps 1 ms at a time for N ms and records how late it wakes.  Also
 * reports the spinner's throughput (loop iterations per microsecond of
 * its run), so that a short GORT_SLICE_US can be weighed against the
 * default (the Go peer has no such line). */
#include <stdatomic.h>
#include <stdlib.h>

#include "bench.h"

static long ms;
static _Atomic int stop;
static volatile uint64_t sink;
static uint64_t spins;
static gort_waitgroup spun;
static int64_t spin_ns;
static double *lat;
static int nlat;

static void spinner(void *a)
{
    (void)a;
    uint64_t x = 1, n = 0;
    int64_t t = gort_nanotime();
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        n++;
    }
    spin_ns = gort_nanotime() - t;
    spins = n;
    sink = x;
    gort_wg_done(&spun);
}

static void body(void *a)
{
    (void)a;
    gort_maxprocs(1);
    gort_wg_add(&spun, 1);
    gort_go(spinner, NULL);
    gort_yield();
    lat = malloc(sizeof(double) * (size_t)(ms + 16));
    int64_t end = gort_nanotime() + ms * 1000000;
    while (gort_nanotime() < end && nlat < ms + 16) {
        int64_t t = gort_nanotime();
        gort_sleep(1000000);
        lat[nlat++] = (double)(gort_nanotime() - t - 1000000) / 1e6;
    }
    atomic_store(&stop, 1);
    gort_wg_wait(&spun);
}

void bench_preempt(int argc, char **argv)
{
    ms = bench_arg(argc, argv, 2, 2000);
    bench_run_main(body, NULL);
    if (nlat == 0)
        bench_fail("preempt: no wakeups");
    bench_sort(lat, (size_t)nlat);
    bench_report("preempt", "wakeups", nlat, "count");
    bench_report("preempt", "p50_overshoot", lat[nlat / 2], "ms");
    bench_report("preempt", "p99_overshoot", lat[nlat * 99 / 100], "ms");
    bench_report("preempt", "max_overshoot", lat[nlat - 1], "ms");
    if (spin_ns > 0)
        bench_report("preempt", "spinner_iters_per_us", (double)spins / ((double)spin_ns / 1e3), "count");
}
