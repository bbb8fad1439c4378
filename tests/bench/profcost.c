/*
 * profcost: a fixed amount of CPU-bound work, measured for what it costs
 * the process, for scripts/profcost, which runs it again and again with no
 * profile, under GORT_CPUPROFILE, under a CPU profile fetched over HTTP
 * (/debug/pprof/profile) and with the debug endpoint started and idle.
 *
 *   gort-bench profcost [fib|spin] [N]
 *
 * fib N (default 40): bench_fib_par(N), a goroutine per call at or above
 * fib(20), on every P.  spin N (default 2000): one goroutine per P, each
 * spinning its share of N million steps with no calls in its loop: a
 * goroutine alone on its P, which sysmon leaves alone unless something
 * waits for the P (sysmon/sysmon.c, someone_waits).
 *
 * The work starts when a line (or EOF) arrives on stdin, after the line
 * "profcost ready", so that the driver can first start what is to be
 * measured (an HTTP profile); after the reports the program reads stdin
 * to its end before it exits, so that a profile still running can finish
 * and be delivered.  Standalone, </dev/null, it just runs.
 *
 * Reports over the work alone: wall and CPU time (getrusage of the whole
 * process: every thread, the profiler's signal handlers and writer and
 * sysmon included) and the scheduler's counters that an idle endpoint or
 * a profile could move (preemption signals, sysmon rounds and CPU).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"

static const char *job;
static long n;
static double wall_s, cpu_s;
static gort_stats s0, s1;
static gort_waitgroup wg;
static _Atomic uint64_t sink;

static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

/* Reads stdin up to a newline (until_eof false) or its end. */
static void read_stdin(bool until_eof)
{
    gort_syscall_enter();
    char c;
    while (read(0, &c, 1) == 1 && (until_eof || c != '\n'))
        ;
    gort_syscall_exit();
}

static void spinner(void *a)
{
    long steps = (long)(intptr_t)a;
    uint64_t x = (uint64_t)steps;
    for (long i = 0; i < steps; i++)
        x = x * 6364136223846793005ull + 1442695040888963407ull;
    atomic_fetch_add(&sink, x);
    gort_wg_done(&wg);
}

static void run_job(void)
{
    if (!strcmp(job, "fib")) {
        atomic_store(&sink, (uint64_t)bench_fib_par(n));
        return;
    }
    int procs = gort_maxprocs(0);
    for (int i = 0; i < procs; i++) {
        gort_wg_add(&wg, 1);
        gort_go(spinner, (void *)(intptr_t)(n * 1000000 / procs));
    }
    gort_wg_wait(&wg);
}

static void body(void *a)
{
    (void)a;
    printf("profcost ready\n");
    fflush(stdout);
    read_stdin(false);
    gort_stats_get(&s0);
    double c = cpu_now();
    int64_t t = gort_nanotime();
    run_job();
    wall_s = (double)(gort_nanotime() - t) / 1e9;
    cpu_s = cpu_now() - c;
    gort_stats_get(&s1);
    bench_report("profcost", "wall", wall_s, "s");
    bench_report("profcost", "cpu", cpu_s, "s");
    bench_report("profcost", "preempt_signals", (double)(s1.preempt_signals - s0.preempt_signals), "n");
    bench_report("profcost", "context_switches", (double)(s1.context_switches - s0.context_switches), "n");
    bench_report("profcost", "sysmon_rounds", (double)(s1.sysmon_rounds - s0.sysmon_rounds), "n");
    bench_report("profcost", "sysmon_cpu", (double)(s1.sysmon_cpu_ns - s0.sysmon_cpu_ns) / 1e9, "s");
    printf("profcost done\n");
    fflush(stdout);
    read_stdin(true);
}

void bench_profcost(int argc, char **argv)
{
    job = argc > 2 ? argv[2] : "fib";
    if (strcmp(job, "fib") != 0 && strcmp(job, "spin") != 0)
        bench_fail("profcost: job %s: want fib or spin", job);
    n = bench_arg(argc, argv, 3, !strcmp(job, "fib") ? 40 : 2000);
    bench_run_main(body, NULL);
}
