/*
 * fanin_timeout.c: merge several sources with select, give up after a
 * timeout.
 *
 * Three producers emit at different rates; one loop selects over all of
 * them and a one-shot timer's channel (time.After in Go).  A heartbeat
 * ticker shows periodic timers.  When the timer fires, the loop stops and
 * the producers are told to quit through a closed channel.
 */
#include <gort.h>

#include <stdio.h>

typedef struct {
    int id;
    int64_t every_ns;
    gort_chan *out, *quit;
} source_t;

static void source(void *arg)
{
    source_t *s = arg;
    gort_timer *tk = gort_ticker_new(s->every_ns);
    for (int n = 0;; n++) {
        gort_case cs[2] = {
            {.ch = gort_timer_chan(tk), .op = GORT_RECV, .elem = NULL},
            {.ch = s->quit, .op = GORT_RECV, .elem = NULL},
        };
        if (gort_select(cs, 2, true) == 1)
            break; /* quit closed */
        int msg = s->id * 1000 + n;
        gort_case send[2] = {
            {.ch = s->out, .op = GORT_SEND, .elem = &msg},
            {.ch = s->quit, .op = GORT_RECV, .elem = NULL},
        };
        if (gort_select(send, 2, true) == 1)
            break;
    }
    gort_timer_stop(tk);
    gort_timer_free(tk);
}

static void fanin_main(void *arg)
{
    (void)arg;
    gort_chan *out = gort_chan_make(sizeof(int), 0);
    gort_chan *quit = gort_chan_make(0, 0);
    /* Static, not on this goroutine's stack: a producer may still be in
     * its select on quit when fanin_main returns, and this stack is gone
     * then (gort_main stops the others only after its goroutine ends). */
    static source_t src[3];
    src[0] = (source_t){1, 2 * 1000 * 1000, out, quit};
    src[1] = (source_t){2, 5 * 1000 * 1000, out, quit};
    src[2] = (source_t){3, 11 * 1000 * 1000, out, quit};
    for (int i = 0; i < 3; i++)
        gort_go(source, &src[i]);

    gort_timer *deadline = gort_timer_new(100 * 1000 * 1000); /* 100 ms */
    int per[4] = {0}, msg;
    for (;;) {
        gort_case cs[2] = {
            {.ch = out, .op = GORT_RECV, .elem = &msg},
            {.ch = gort_timer_chan(deadline), .op = GORT_RECV, .elem = NULL},
        };
        if (gort_select(cs, 2, true) == 1)
            break; /* timed out */
        per[msg / 1000]++;
    }
    gort_chan_close(quit);
    gort_timer_free(deadline);
    printf("in 100 ms: %d from the 2 ms source, %d from the 5 ms one, %d from the 11 ms one\n",
           per[1], per[2], per[3]);
}

int main(void) { return gort_main(fanin_main, NULL); }
