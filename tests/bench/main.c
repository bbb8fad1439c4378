/* gort-bench WORKLOAD [N] [...]: see bench.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define BENCH(n) BENCH_DECL(n)
#define BENCH_AS(n, s) BENCH_DECL(n)
#include "bench_list.h"
#undef BENCH
#undef BENCH_AS

static const struct {
    const char *name;
    void (*fn)(int, char **);
} workloads[] = {
#define BENCH(n) {#n, bench_##n},
#define BENCH_AS(n, s) {s, bench_##n},
#include "bench_list.h"
#undef BENCH
#undef BENCH_AS
};

void bench_report(const char *w, const char *metric, double v, const char *unit)
{
    printf("%s %s %.3f %s\n", w, metric, v, unit);
    fflush(stdout);
}

long bench_arg(int argc, char **argv, int i, long def)
{
    if (argc > i) {
        char *end;
        long v = strtol(argv[i], &end, 10);
        if (*end == 0 && end != argv[i])
            return v;
    }
    return def;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void bench_sort(double *v, size_t n) { qsort(v, n, sizeof *v, cmp_double); }

double bench_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    double v = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            v = strtod(line + 6, NULL);
    fclose(f);
    return v;
}

/* BENCH_STATS=1: the scheduler's counters on stderr after the workload,
 * to tell a slow run's regime (steals, migrations) from a fast one's. */
static void (*stats_fn)(void *);
static void with_stats(void *arg)
{
    stats_fn(arg);
    gort_stats s;
    gort_stats_get(&s);
    fprintf(stderr, "stats: switches=%llu steals=%llu stolen=%llu migrations=%llu globgets=%llu\n",
            (unsigned long long)s.context_switches, (unsigned long long)s.steals,
            (unsigned long long)s.stolen_goroutines, (unsigned long long)s.migrations,
            (unsigned long long)s.global_runq_gets);
}

void bench_run_main(void (*fn)(void *), void *arg)
{
    const char *e = getenv("BENCH_STATS");
    if (e && *e && strcmp(e, "0") != 0) {
        stats_fn = fn;
        fn = with_stats;
    }
    if (gort_main(fn, arg) != 0)
        bench_fail("gort_main failed");
}

void bench_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

int main(int argc, char **argv)
{
    size_t n = sizeof workloads / sizeof workloads[0];
    if (argc >= 2) {
        for (size_t i = 0; i < n; i++)
            if (strcmp(argv[1], workloads[i].name) == 0) {
                workloads[i].fn(argc, argv);
                return 0;
            }
        fprintf(stderr, "unknown workload %s\n", argv[1]);
        return 2;
    }
    fprintf(stderr, "usage: gort-bench");
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%s%s", i ? "|" : " ", workloads[i].name);
    fprintf(stderr, " [N]\n");
    return 2;
}
