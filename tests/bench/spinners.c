/* spinners: N goroutines (default 128) spin with no calls in their loops
 * for MS milliseconds (default 10000), so that every P runs one and sysmon
 * must preempt each every slice.  Reports what sysmon cost: its CPU time
 * per second of wall time, its rounds, and its system calls per round
 * besides the preemption signals.  gort only (sysmon has no Go peer to
 * compare with); scripts/scale runs it at GORT_MAXPROCS=N. */
#include <stdatomic.h>

#include "bench.h"

static long n, ms;
static _Atomic int stop;
static gort_waitgroup wg;
static gort_stats s0, s1;
static int64_t wall;

static void spinner(void *a)
{
    (void)a;
    uint64_t x = 1;
    while (!atomic_load_explicit(&stop, memory_order_relaxed))
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    if (x == 42)
        gort_yield(); /* keeps x alive */
    gort_wg_done(&wg);
}

static void body(void *a)
{
    (void)a;
    for (long i = 0; i < n; i++) {
        gort_wg_add(&wg, 1);
        gort_go(spinner, NULL);
    }
    gort_stats_get(&s0);
    int64_t t = gort_nanotime();
    gort_sleep(ms * 1000000);
    gort_stats_get(&s1);
    wall = gort_nanotime() - t;
    atomic_store(&stop, 1);
    gort_wg_wait(&wg);
}

void bench_spinners(int argc, char **argv)
{
    n = bench_arg(argc, argv, 2, 128);
    ms = bench_arg(argc, argv, 3, 10000);
    bench_run_main(body, NULL);
    double rounds = (double)(s1.sysmon_rounds - s0.sysmon_rounds);
    double sec = (double)wall / 1e9;
    bench_report("spinners", "sysmon_cpu_pct", 100.0 * (double)(s1.sysmon_cpu_ns - s0.sysmon_cpu_ns) / (double)wall,
                 "%");
    bench_report("spinners", "sysmon_rounds_per_s", rounds / sec, "count");
    bench_report("spinners", "sysmon_syscalls_per_round",
                 rounds > 0 ? (double)(s1.sysmon_syscalls - s0.sysmon_syscalls) / rounds : 0, "count");
    bench_report("spinners", "preempt_signals_per_s", (double)(s1.preempt_signals - s0.preempt_signals) / sec,
                 "count");
    bench_report("spinners", "preempt_done_per_s", (double)(s1.preempt_done - s0.preempt_done) / sec, "count");
}
