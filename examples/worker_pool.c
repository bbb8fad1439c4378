/*
 * worker_pool.c: a fixed pool of workers fed through a bounded channel.
 *
 * The jobs channel has a small buffer, so a producer that outruns the
 * workers blocks in gort_chan_send: that is the backpressure.  Results come
 * back on their own channel; closing `jobs` tells the workers to finish.
 */
#include <gort.h>

#include <stdio.h>

#define WORKERS 8
#define JOBS 10000

typedef struct {
    gort_chan *jobs, *results;
    gort_waitgroup *wg;
} pool_t;

static void worker(void *arg)
{
    pool_t *p = arg;
    long n;
    while (gort_chan_recv(p->jobs, &n)) { /* false once jobs is closed and empty */
        long r = n * n;
        gort_chan_send(p->results, &r);
    }
    gort_wg_done(p->wg);
}

/* Closes results once every worker has returned. */
static void closer(void *arg)
{
    pool_t *p = arg;
    gort_wg_wait(p->wg);
    gort_chan_close(p->results);
}

static void producer(void *arg)
{
    pool_t *p = arg;
    for (long i = 1; i <= JOBS; i++)
        gort_chan_send(p->jobs, &i); /* blocks while the buffer is full */
    gort_chan_close(p->jobs);
}

static void pool_main(void *arg)
{
    (void)arg;
    gort_waitgroup wg = {0};
    pool_t p = {gort_chan_make(sizeof(long), 16), gort_chan_make(sizeof(long), 16), &wg};
    gort_wg_add(&wg, WORKERS);
    for (int i = 0; i < WORKERS; i++)
        gort_go(worker, &p);
    gort_go(closer, &p);
    gort_go(producer, &p);

    long r, sum = 0, count = 0;
    while (gort_chan_recv(p.results, &r)) {
        sum += r;
        count++;
    }
    long want = (long)JOBS * (JOBS + 1) * (2L * JOBS + 1) / 6;
    printf("%ld results, sum of squares %ld (%s)\n", count, sum, sum == want ? "ok" : "WRONG");
    gort_chan_free(p.jobs);
    gort_chan_free(p.results);
}

int main(void) { return gort_main(pool_main, NULL); }
