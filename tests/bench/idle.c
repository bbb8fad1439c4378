/* idle: N goroutines parked on one channel, then all woken by close:
 * memory per parked goroutine, cost to spawn and park, cost per wake. */
#include "bench.h"

static long n;
static gort_chan *ch;
static gort_waitgroup wg, started;
static double per, spawn_ns, wake_ns;

static void parked(void *arg)
{
    (void)arg;
    gort_wg_done(&started);
    gort_chan_recv(ch, NULL);
    gort_wg_done(&wg);
}

static void body(void *arg)
{
    (void)arg;
    double base = bench_rss_kib();
    ch = gort_chan_make(0, 0);
    gort_wg_add(&wg, n);
    gort_wg_add(&started, n);
    int64_t t = gort_nanotime();
    for (long i = 0; i < n; i++)
        gort_go(parked, NULL);
    gort_wg_wait(&started);
    int64_t spawned = gort_nanotime() - t;
    per = (bench_rss_kib() - base) * 1024 / (double)n;
    t = gort_nanotime();
    gort_chan_close(ch);
    gort_wg_wait(&wg);
    int64_t woke = gort_nanotime() - t;
    spawn_ns = (double)spawned / (double)n;
    wake_ns = (double)woke / (double)n;
}

void bench_idle(int argc, char **argv)
{
    n = bench_arg(argc, argv, 2, 100000);
    bench_run_main(body, NULL);
    bench_report("idle", "bytes_per_parked_goroutine", per, "B");
    bench_report("idle", "ns_per_spawn_and_park", spawn_ns, "ns");
    bench_report("idle", "ns_per_wake", wake_ns, "ns");
}
