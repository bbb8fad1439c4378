/* spawn: N goroutines, each one atomic add, then wait for all. */
#include <stdatomic.h>

#include "bench.h"

static long n;
static _Atomic long counter;
static gort_waitgroup wg;
static double ns_per;

static void one(void *a)
{
    (void)a;
    atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed);
    gort_wg_done(&wg);
}

static void body(void *a)
{
    (void)a;
    int64_t t = gort_nanotime();
    gort_wg_add(&wg, n);
    for (long i = 0; i < n; i++)
        gort_go(one, NULL);
    gort_wg_wait(&wg);
    ns_per = (double)(gort_nanotime() - t) / (double)n;
}

void bench_spawn(int argc, char **argv)
{
    n = bench_arg(argc, argv, 2, 1000000);
    bench_run_main(body, NULL);
    if (atomic_load(&counter) != n)
        bench_fail("spawn: counter %ld, want %ld", atomic_load(&counter), n);
    bench_report("spawn", "ns_per_goroutine", ns_per, "ns");
}
