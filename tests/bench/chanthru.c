/* chanthru: P producers and P consumers (P = GORT_MAXPROCS, at least 2)
 * over one buffered channel of capacity 1024. */
#include <stdatomic.h>
#include <stdlib.h>

#include "bench.h"

static long n;
static int p;
static gort_chan *ch;
static gort_waitgroup cwg, pwg;
static _Atomic long long sum;
static double ns_per;

static void consumer(void *arg)
{
    (void)arg;
    long long s = 0;
    long v;
    while (gort_chan_recv(ch, &v))
        s += v;
    atomic_fetch_add_explicit(&sum, s, memory_order_relaxed);
    gort_wg_done(&cwg);
}

static void producer(void *arg)
{
    long i = (long)(intptr_t)arg;
    for (long j = i; j < n; j += p)
        gort_chan_send(ch, &j);
    gort_wg_done(&pwg);
}

static void body(void *arg)
{
    (void)arg;
    p = gort_maxprocs(0);
    if (p < 2)
        p = 2;
    ch = gort_chan_make(sizeof(long), 1024);
    int64_t t = gort_nanotime();
    for (int i = 0; i < p; i++) {
        gort_wg_add(&cwg, 1);
        gort_go(consumer, NULL);
    }
    for (int i = 0; i < p; i++) {
        gort_wg_add(&pwg, 1);
        gort_go(producer, (void *)(intptr_t)i);
    }
    gort_wg_wait(&pwg);
    gort_chan_close(ch);
    gort_wg_wait(&cwg);
    ns_per = (double)(gort_nanotime() - t) / (double)n;
}

void bench_chanthru(int argc, char **argv)
{
    n = bench_arg(argc, argv, 2, 10000000);
    bench_run_main(body, NULL);
    if (atomic_load(&sum) != (long long)n * (n - 1) / 2)
        bench_fail("chanthru: wrong sum");
    bench_report("chanthru", "ns_per_item", ns_per, "ns");
}
