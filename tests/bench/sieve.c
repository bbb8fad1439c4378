/* sieve: the concurrent prime sieve, a chain of filter goroutines joined
 * by unbuffered channels; N primes. */
#include <stdlib.h>

#include "bench.h"

typedef struct filter {
    gort_chan *in, *out;
    long p;
} filter_t;

static long n;
static double secs;
static long last;

static void generate(void *arg)
{
    gort_chan *out = arg;
    for (long i = 2;; i++)
        gort_chan_send(out, &i);
}

static void filter(void *arg)
{
    filter_t *f = arg;
    for (;;) {
        long v;
        gort_chan_recv(f->in, &v);
        if (v % f->p != 0)
            gort_chan_send(f->out, &v);
    }
}

static void body(void *arg)
{
    (void)arg;
    int64_t t = gort_nanotime();
    gort_chan *ch = gort_chan_make(sizeof(long), 0);
    gort_go(generate, ch);
    for (long i = 0; i < n; i++) {
        long prime;
        gort_chan_recv(ch, &prime);
        last = prime;
        filter_t *f = malloc(sizeof *f);
        f->in = ch;
        f->out = gort_chan_make(sizeof(long), 0);
        f->p = prime;
        gort_go(filter, f);
        ch = f->out;
    }
    secs = (double)(gort_nanotime() - t) / 1e9;
}

void bench_sieve(int argc, char **argv)
{
    n = bench_arg(argc, argv, 2, 3000);
    bench_run_main(body, NULL);
    bench_report("sieve", "seconds", secs, "s");
    bench_report("sieve", "last_prime", (double)last, "");
}
