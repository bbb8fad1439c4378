/*
 * errgroup.c: golang.org/x/sync/errgroup on gort.
 *
 * A WaitGroup counts the running functions; the first non-zero return is
 * kept (CAS on `err` from 0) and cancels the group's context with that
 * error as the cause.  The limit is a buffered channel of tokens, as Go's
 * errgroup does it: Go sends a token before starting the goroutine (and so
 * blocks while `limit` run: backpressure on the producer), the goroutine
 * receives one when its function returns.
 *
 * The group holds the context's creator reference; each running function
 * holds its own (gort_ctx_ref), so a function that outlives a misused free
 * still sees a valid context.
 *
 * Written against the public API only (scripts/layers checks it).  Out of
 * memory is a panic, as misuse is.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "gort.h"
#include "gort_ctx.h"

/* A public-API client, with no way into the runtime's state but the API:
 * gort_self ends a forked child (runtime/fork.c), as every gort call must. */
static inline void forked_check(void) { (void)gort_self(); }

struct gort_errgroup {
    gort_waitgroup wg;
    gort_ctx *ctx;          /* const */
    gort_chan *sem;         /* NULL: no limit; set while nothing runs */
    _Atomic int32_t err;    /* first error */
    _Atomic int32_t active; /* functions started and not returned */
};

typedef struct job {
    gort_errgroup *g;
    gort_errgroup_fn fn;
    void *arg;
} job_t;

static void run(void *p)
{
    job_t j = *(job_t *)p;
    free(p);
    gort_errgroup *g = j.g;
    int e = j.fn(g->ctx, j.arg);
    if (e) {
        int32_t zero = 0;
        if (atomic_compare_exchange_strong_explicit(&g->err, &zero, e, memory_order_acq_rel,
                                                    memory_order_relaxed))
            gort_ctx_cancel_cause(g->ctx, e);
    }
    gort_ctx_unref(g->ctx);
    atomic_fetch_sub_explicit(&g->active, 1, memory_order_relaxed);
    if (g->sem)
        gort_chan_recv(g->sem, NULL);
    gort_wg_done(&g->wg);
}

static void start(gort_errgroup *g, gort_errgroup_fn fn, void *arg)
{
    job_t *j = malloc(sizeof(*j));
    if (!j)
        gort_panic("errgroup: out of memory starting a function");
    j->g = g;
    j->fn = fn;
    j->arg = arg;
    gort_ctx_ref(g->ctx);
    atomic_fetch_add_explicit(&g->active, 1, memory_order_relaxed);
    gort_wg_add(&g->wg, 1);
    gort_go(run, j);
}

gort_errgroup *gort_errgroup_new(gort_ctx *parent)
{
    forked_check();
    gort_errgroup *g = calloc(1, sizeof(*g));
    if (!g)
        gort_panic("errgroup: out of memory");
    g->ctx = gort_ctx_with_cancel(parent ? parent : gort_ctx_background());
    return g;
}

gort_ctx *gort_errgroup_ctx(gort_errgroup *g)
{
    forked_check();
    return g->ctx;
}

void gort_errgroup_set_limit(gort_errgroup *g, int n)
{
    forked_check();
    if (atomic_load_explicit(&g->active, memory_order_relaxed) != 0)
        gort_panic("errgroup: modify limit while goroutines in the group are still active");
    if (g->sem)
        gort_chan_free(g->sem);
    g->sem = n > 0 ? gort_chan_make(0, (size_t)n) : NULL;
}

void gort_errgroup_go(gort_errgroup *g, gort_errgroup_fn fn, void *arg)
{
    forked_check();
    if (g->sem)
        gort_chan_send(g->sem, NULL);
    start(g, fn, arg);
}

bool gort_errgroup_trygo(gort_errgroup *g, gort_errgroup_fn fn, void *arg)
{
    forked_check();
    if (g->sem && !gort_chan_trysend(g->sem, NULL))
        return false;
    start(g, fn, arg);
    return true;
}

int gort_errgroup_wait(gort_errgroup *g)
{
    forked_check();
    gort_wg_wait(&g->wg);
    gort_ctx_cancel(g->ctx); /* as Go: the context ends with Wait */
    return atomic_load_explicit(&g->err, memory_order_acquire);
}

void gort_errgroup_free(gort_errgroup *g)
{
    forked_check();
    if (!g)
        return;
    gort_ctx_free(g->ctx);
    if (g->sem)
        gort_chan_free(g->sem);
    free(g);
}
