/*
 * bench.h: gort-bench, the Go peer's workloads (../shared/peers/go) for
 * gort.  Same arguments, same output lines: WORKLOAD METRIC VALUE UNIT.
 * Each workload lives in its own file and is listed in bench_list.h.
 * Benchmarks report numbers; they do not judge them (scripts/bench puts
 * them beside Go's and computes the ratios).
 *
 * BENCH_STATS=1 prints the scheduler's counters (switches, steals,
 * migrations, ...) on stderr after a workload that runs under
 * bench_run_main.
 */
#ifndef GORT_BENCH_H
#define GORT_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "gort.h"

void bench_report(const char *workload, const char *metric, double value, const char *unit);
long bench_arg(int argc, char **argv, int i, long def);
double bench_rss_kib(void);
/* Sorts v ascending (for medians and percentiles). */
void bench_sort(double *v, size_t n);
/* fib(n), a goroutine per call at or above fib(20) (fib.c); in a goroutine. */
long bench_fib_par(long n);
/* Runs fn(arg) as gort_main's main goroutine. */
void bench_run_main(void (*fn)(void *), void *arg);
__attribute__((noreturn, format(printf, 1, 2))) void bench_fail(const char *fmt, ...);

#define BENCH_DECL(name) void bench_##name(int argc, char **argv);

#endif
