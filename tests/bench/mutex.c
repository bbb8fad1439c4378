/* mutex: 4 goroutines each lock and unlock one gort_mutex N times around
 * a shared counter. */
#include "bench.h"

#define G 4
static long n;
/* The lock and the counter it guards share one cache line of their own,
 * as in the Go peer (its mutex and counter escape into one 16-byte block
 * of the tiny allocator).  Left to the linker, whether they shared a line
 * changed with whatever the library put in .bss before them, and at 2
 * procs that alone moved the result more than any change to the lock. */
static struct {
    gort_mutex mu;
    long counter;
} __attribute__((aligned(64))) guarded;
#define mu guarded.mu
#define counter guarded.counter
static gort_waitgroup wg;
static double ns_per;

static void worker(void *arg)
{
    (void)arg;
    for (long j = 0; j < n; j++) {
        gort_mutex_lock(&mu);
        counter++;
        gort_mutex_unlock(&mu);
    }
    gort_wg_done(&wg);
}

static void body(void *arg)
{
    (void)arg;
    int64_t t = gort_nanotime();
    for (int i = 0; i < G; i++) {
        gort_wg_add(&wg, 1);
        gort_go(worker, NULL);
    }
    gort_wg_wait(&wg);
    ns_per = (double)(gort_nanotime() - t) / (double)(G * n);
}

void bench_mutex(int argc, char **argv)
{
    n = bench_arg(argc, argv, 2, 1000000);
    bench_run_main(body, NULL);
    if (counter != G * n)
        bench_fail("mutex: counter %ld, want %ld", counter, G * n);
    bench_report("mutex", "ns_per_lock_unlock", ns_per, "ns");
}
