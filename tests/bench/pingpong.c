/* pingpong: two goroutines pass a token over two unbuffered channels;
 * the time per round trip (two hand-offs, two context switches). */
#include "bench.h"

static long n;
static gort_chan *a, *b;
static double ns_per;
static long bad;

static void echo(void *arg)
{
    (void)arg;
    long v;
    while (gort_chan_recv(a, &v)) {
        v++;
        gort_chan_send(b, &v);
    }
    gort_chan_close(b);
}

static void body(void *arg)
{
    (void)arg;
    a = gort_chan_make(sizeof(long), 0);
    b = gort_chan_make(sizeof(long), 0);
    gort_go(echo, NULL);
    int64_t t = gort_nanotime();
    for (long i = 0; i < n; i++) {
        long v = i, r;
        gort_chan_send(a, &v);
        gort_chan_recv(b, &r);
        bad += r != i + 1;
    }
    gort_chan_close(a);
    ns_per = (double)(gort_nanotime() - t) / (double)n;
    gort_chan_recv(b, NULL); /* the echo goroutine closed b: it is done */
}

void bench_pingpong(int argc, char **argv)
{
    n = bench_arg(argc, argv, 2, 1000000);
    bench_run_main(body, NULL);
    if (bad)
        bench_fail("pingpong: %ld wrong replies", bad);
    bench_report("pingpong", "ns_per_round_trip", ns_per, "ns");
}
