/* syscall: one P; fixed CPU work while another goroutine sits in blocking
 * nanosleep calls, against the same work alone.  The Go peer's blocker
 * uses syscall.Syscall, which Go wraps; ours runs once with the wrapped
 * call (gort_nanosleep: work_slowdown_while_other_blocks) and once with a
 * raw syscall the runtime never hears of (work_slowdown_unwrapped).  Each
 * pair of timings is repeated and the median ratio reported. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define REPS 7

static volatile uint64_t sink;
static _Atomic int stop;
static gort_waitgroup done;
static bool unwrapped;
static double ratio[2][REPS];

static long fib_serial(long n) { return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2); }

static double work(void)
{
    int64_t t = gort_nanotime();
    sink += (uint64_t)fib_serial(30);
    return (double)(gort_nanotime() - t);
}

static void blocker(void *a)
{
    (void)a;
    struct timespec ts = {0, 5 * 1000 * 1000};
    while (!atomic_load(&stop)) {
        if (unwrapped)
            syscall(SYS_nanosleep, &ts, NULL);
        else
            gort_nanosleep(&ts, NULL);
    }
    gort_wg_done(&done);
}

static void body(void *a)
{
    (void)a;
    gort_maxprocs(1);
    for (int kind = 0; kind < 2; kind++) {
        unwrapped = kind == 1;
        for (int r = 0; r < REPS; r++) {
            double alone = work();
            atomic_store(&stop, 0);
            gort_wg_add(&done, 1);
            gort_go(blocker, NULL);
            gort_yield();
            double with = work();
            atomic_store(&stop, 1);
            gort_wg_wait(&done);
            ratio[kind][r] = with / alone;
            if (getenv("GORT_BENCH_VERBOSE"))
                fprintf(stderr, "syscall %s: alone %.0fus with %.0fus\n", unwrapped ? "unwrapped" : "wrapped",
                        alone / 1e3, with / 1e3);
        }
        bench_sort(ratio[kind], REPS);
    }
}

void bench_syscall(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    bench_run_main(body, NULL);
    bench_report("syscall", "work_slowdown_while_other_blocks", ratio[0][REPS / 2], "x");
    bench_report("syscall", "work_slowdown_unwrapped", ratio[1][REPS / 2], "x");
}
