/*
 * pipeline.c: generator -> square -> consumer, cancelled from downstream.
 *
 * Every stage selects between its output and a `done` channel.  When the
 * consumer has seen enough it closes `done`; each stage then returns,
 * whatever it was blocked on, so no goroutine is left behind (the count
 * goes back to one).  This is Go's "pipelines and cancellation" pattern.
 */
#include <gort.h>

#include <stdio.h>

typedef struct {
    gort_chan *out, *done;
    gort_waitgroup *wg;
    gort_chan *in;
} stage_t;

/* Sends v on out unless done is closed first; false when cancelled. */
static bool send_or_done(gort_chan *out, gort_chan *done, long *v)
{
    gort_case cs[2] = {
        {.ch = out, .op = GORT_SEND, .elem = v},
        {.ch = done, .op = GORT_RECV, .elem = NULL},
    };
    return gort_select(cs, 2, true) == 0;
}

static void generate(void *arg)
{
    stage_t *s = arg;
    for (long i = 1;; i++)
        if (!send_or_done(s->out, s->done, &i))
            break;
    /* As Go's `defer close(out)`: a stage blocked receiving from us (not
     * in a select on done) must see the end too. */
    gort_chan_close(s->out);
    gort_wg_done(s->wg);
}

static void square(void *arg)
{
    stage_t *s = arg;
    long v;
    while (gort_chan_recv(s->in, &v)) {
        v *= v;
        if (!send_or_done(s->out, s->done, &v))
            break;
    }
    gort_wg_done(s->wg);
}

static void pipeline_main(void *arg)
{
    (void)arg;
    gort_waitgroup wg = {0};
    gort_chan *done = gort_chan_make(0, 0);
    gort_chan *nums = gort_chan_make(sizeof(long), 0);
    gort_chan *squares = gort_chan_make(sizeof(long), 0);
    stage_t gen = {nums, done, &wg, NULL}, sq = {squares, done, &wg, nums};
    gort_wg_add(&wg, 2);
    gort_go(generate, &gen);
    gort_go(square, &sq);

    long v, sum = 0;
    for (int i = 0; i < 10 && gort_chan_recv(squares, &v); i++)
        sum += v;
    gort_chan_close(done); /* cancel: every stage sees done ready */
    gort_wg_wait(&wg);
    printf("sum of the first 10 squares: %ld; goroutines left: %d\n", sum, gort_numgoroutine());
}

int main(void) { return gort_main(pipeline_main, NULL); }
