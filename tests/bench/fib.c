/* fib: recursive fib(N), a goroutine per call at or above fib(20). */
#include "bench.h"

static long fib_serial(long n) { return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2); }

typedef struct {
    long n, r;
    gort_waitgroup done;
} fibjob;

static void fib_go(void *a)
{
    fibjob *j = a;
    j->r = bench_fib_par(j->n);
    gort_wg_done(&j->done);
}

long bench_fib_par(long n)
{
    if (n < 20)
        return fib_serial(n);
    fibjob j = {n - 1, 0, {0, 0}};
    gort_wg_add(&j.done, 1);
    gort_go(fib_go, &j);
    long y = bench_fib_par(n - 2);
    gort_wg_wait(&j.done);
    return j.r + y;
}

static long arg_n, result;
static double secs;

static void body(void *a)
{
    (void)a;
    int64_t t = gort_nanotime();
    result = bench_fib_par(arg_n);
    secs = (double)(gort_nanotime() - t) / 1e9;
}

void bench_fib(int argc, char **argv)
{
    arg_n = bench_arg(argc, argv, 2, 40);
    bench_run_main(body, NULL);
    long a = 0, b = 1;
    for (long i = 0; i < arg_n; i++) {
        long t = a + b;
        a = b;
        b = t;
    }
    if (result != a)
        bench_fail("fib: wrong result %ld, want %ld", result, a);
    bench_report("fib", "seconds", secs, "s");
}
