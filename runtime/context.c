/*
 * context.c: Go's context package: a tree of cancellation scopes.
 *
 * Three kinds of node: the static background (the root; never cancelled),
 * cancel contexts (with_cancel/with_deadline/with_timeout; each has a lock,
 * a done channel closed on cancel, and a list of the cancel contexts that
 * registered with it), and value contexts (a key, a value, and the nearest
 * cancel ancestor, `owner`, whose done/err they report).
 *
 * A cancel context registers with `reg`, the nearest cancel ancestor of its
 * parent, and sits in reg->children (doubly linked) while `linked`.  Both
 * fields of the list (children, linked, sib_*) are under reg's lock.
 *
 * Locking: one lock at a time, ever (a context's or a deadline shard's;
 * nothing is taken under either).  Cancellation is iterative: cancel_one(c) sets
 * err under c's lock, detaches c's whole child list (clearing `linked`, taking a
 * reference on each child that is not already being freed) and unlocks;
 * then it closes done, stops the deadline, and the detached children are
 * cancelled the same way from a local work list.  A parent chain of any
 * depth therefore needs no recursion, and no lock is held while a channel
 * is closed or a deadline stopped.
 *
 * Lifetime: a reference count.  Holders: the creator (dropped by free), each
 * child (its parent), the deadline service while it cancels, anyone who
 * took a ref.  Children are not references of their parent; the parent's
 * list is weak, and a child whose count reached zero is skipped by a
 * cancel in progress (try_ref) and unlinks itself.
 *
 * Deadlines: one goroutine, the deadline service, waits for all of them
 * (as Go's runtime keeps one heap of timers rather than a thread each).
 * Pending deadlines sit in DL_SHARDS binary heaps ordered by deadline,
 * each under its own lock; a context goes into the shard of the thread
 * that creates it (a stripe, as the live count's), so threads creating
 * and cancelling deadlines on many cores do not queue on one lock (Go
 * keeps its timers per P for the same reason; we have no P here, being a
 * client of the public API).  The service scans every shard for due
 * contexts and the earliest deadline, publishes that in dl_wake, and
 * sleeps on a public gort_timer armed for it and on `dl_kick`, a channel
 * of capacity 1 (a non-blocking send: pokes coalesce, and one sent while
 * the service is between its scan and its select waits in the buffer, so
 * none is lost).  A new deadline earlier than dl_wake pokes it, as does
 * taking out the context it waits for (it then returns at once if nothing
 * is left).  dl_wake is 0 while the service scans: a deadline added then
 * pokes too, since the scan may have passed its shard.  The service exists
 * only while deadlines are pending: it returns when a scan finds every
 * shard empty (dl_running false, then a scan again: a deadline added in
 * between either sees dl_running false and starts a service, or is seen
 * by that scan), and the next deadline starts a new one, so it neither
 * outlives a test's leak mark nor counts in gort_numgoroutine when no
 * deadline is pending.  The heaps hold no reference: cancel and release
 * take a context out, and the service pops due ones and takes a
 * reference under the shard's lock (try_ref: none if the context is being
 * released) before cancelling them.
 *
 * Written on the public API only (include/): gort_mutex for the locks
 * (they work on plain threads too, so contexts do), gort_nanotime,
 * gort_timer, gort_go, gort_select, and gort_panic for misuse, as Go's
 * context package panics.
 *
 * Rejected: callbacks on the runtime's internal timers (the runtime's
 * timers run them on g0, where a gort_mutex cannot block; and context.c is
 * a client of the public API, which has no callback timer).  A goroutine
 * per deadline: a stack each, and starting hundreds of them at once
 * (context/deadline_on_time's 300) delayed the deadlines of a fresh
 * process by milliseconds.  A plain thread for the service: while a plain
 * thread lives the runtime cannot report a deadlock.  A lock per tree: a
 * hot parent with many short-lived children would serialize on it anyway,
 * and per-node locks keep unrelated subtrees apart.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "gort.h"
#include "gort_ctx.h"

/* A public-API client, with no way into the runtime's state but the API:
 * gort_self ends a forked child (runtime/fork.c), as every gort call must.
 * A function whose first act is another checked gort call needs none. */
static inline void forked_check(void) { (void)gort_self(); }

enum { K_BACKGROUND, K_CANCEL, K_VALUE };

struct gort_context {
    _Atomic int32_t refs;
    uint8_t kind;
    gort_ctx *parent;   /* holds a reference; NULL for the background */
    gort_ctx *owner;    /* nearest cancel context, self included; NULL: none */
    int64_t deadline;   /* 0: none; const */
    /* value contexts */
    const void *key;
    void *val;
    /* cancel contexts */
    gort_mutex lock;
    gort_chan *done;            /* const */
    _Atomic int32_t err;        /* 0 until cancelled; stored under lock with
                                   release, after cause */
    int32_t cause;              /* under lock; stable once err != 0 */
    gort_ctx *children;         /* under lock */
    gort_ctx *reg;              /* cancel context registered with; const */
    gort_ctx *sib_next, *sib_prev; /* under reg->lock */
    bool linked;                /* in reg->children; under reg->lock */
    gort_ctx *work;             /* cancel work list; owned by the canceller */
    bool timed;                 /* has its own deadline timer; const */
    int32_t dl_idx;             /* in its shard's heap; -1: not; under the shard's lock */
    uint8_t dl_shard;           /* const once timed */
    gort_ctx *dl_next;          /* due list; owned by the service */
};

static gort_ctx background = {.kind = K_BACKGROUND};

/* Live cancel and value contexts, for tests (no leak).  Striped: each
 * thread counts on a cache line of its own (threads past LIVE_STRIPES
 * share), summed on read, so creating and freeing contexts on many cores
 * shares no line; the sum is exact when none is being created or freed. */
#define LIVE_STRIPES 64
static struct {
    _Atomic int64_t n;
    char pad[64 - sizeof(int64_t)];
} live[LIVE_STRIPES];
static _Atomic uint32_t live_next;
static __thread int live_slot = -1;

/* This thread's stripe, for the live count and the deadline shards. */
static int stripe(void)
{
    if (live_slot < 0)
        live_slot = (int)(atomic_fetch_add_explicit(&live_next, 1, memory_order_relaxed) % LIVE_STRIPES);
    return live_slot;
}

static void live_add(int64_t d) { atomic_fetch_add_explicit(&live[stripe()].n, d, memory_order_relaxed); }

int64_t gort__ctx_live(void)
{
    int64_t n = 0;
    for (int i = 0; i < LIVE_STRIPES; i++)
        n += atomic_load_explicit(&live[i].n, memory_order_relaxed);
    return n;
}

static bool try_ref(gort_ctx *c)
{
    int32_t r = atomic_load_explicit(&c->refs, memory_order_relaxed);
    while (r > 0)
        if (atomic_compare_exchange_weak_explicit(&c->refs, &r, r + 1, memory_order_relaxed,
                                                  memory_order_relaxed))
            return true;
    return false;
}

/* ---- the deadline heaps ---- */

#define DL_SHARDS 16
typedef struct dl_shard {
    gort_mutex mu;
    gort_ctx **heap; /* under mu; min-heap on deadline */
    int32_t n, cap;  /* under mu */
} __attribute__((aligned(64))) dl_shard_t;
static dl_shard_t dl_shards[DL_SHARDS];
static _Atomic bool dl_running;   /* the service goroutine exists (or is starting) */
static _Atomic int64_t dl_wake;   /* the service's next wake-up; 0 while it scans */
static _Atomic(gort_chan *) dl_kick; /* capacity 1; made once */
static _Atomic uint32_t dl_used;  /* shards that ever held a deadline (tests) */

int gort__ctx_deadline_shards(void) { return __builtin_popcount(atomic_load(&dl_used)); }

static void heap_set(dl_shard_t *sh, int32_t i, gort_ctx *c)
{
    sh->heap[i] = c;
    c->dl_idx = i;
}

static void heap_up(dl_shard_t *sh, int32_t i)
{
    gort_ctx *c = sh->heap[i];
    while (i > 0) {
        int32_t up = (i - 1) / 2;
        if (sh->heap[up]->deadline <= c->deadline)
            break;
        heap_set(sh, i, sh->heap[up]);
        i = up;
    }
    heap_set(sh, i, c);
}

static void heap_down(dl_shard_t *sh, int32_t i)
{
    gort_ctx *c = sh->heap[i];
    for (;;) {
        int32_t k = 2 * i + 1;
        if (k >= sh->n)
            break;
        if (k + 1 < sh->n && sh->heap[k + 1]->deadline < sh->heap[k]->deadline)
            k++;
        if (c->deadline <= sh->heap[k]->deadline)
            break;
        heap_set(sh, i, sh->heap[k]);
        i = k;
    }
    heap_set(sh, i, c);
}

/* sh->mu held; c in sh's heap. */
static void heap_remove(dl_shard_t *sh, gort_ctx *c)
{
    int32_t i = c->dl_idx;
    c->dl_idx = -1;
    gort_ctx *last = sh->heap[--sh->n];
    if (i == sh->n)
        return;
    heap_set(sh, i, last);
    heap_up(sh, i);
    heap_down(sh, last->dl_idx);
}

static void kick(void)
{
    gort_chan_trysend(atomic_load_explicit(&dl_kick, memory_order_acquire), NULL); /* full: one is pending */
}

/* Takes c out of its heap, if there: it was cancelled or is being freed. */
static void deadline_stop(gort_ctx *c)
{
    if (!c->timed)
        return;
    dl_shard_t *sh = &dl_shards[c->dl_shard];
    gort_mutex_lock(&sh->mu);
    bool was_in = c->dl_idx >= 0;
    if (was_in)
        heap_remove(sh, c);
    gort_mutex_unlock(&sh->mu);
    /* The one the service sleeps for (or it is scanning): let it look
     * again now, and return if nothing is left, not at the old deadline. */
    int64_t w = atomic_load_explicit(&dl_wake, memory_order_seq_cst);
    if (was_in && (w == 0 || w == c->deadline))
        kick();
}

static void cancel_tree(gort_ctx *c, int32_t err, int32_t cause);

/* Pops every due context of every shard onto *tail (with a reference);
 * returns the earliest deadline left, 0 if none. */
static int64_t dl_scan(int64_t now, gort_ctx ***tail)
{
    int64_t next = 0;
    for (int i = 0; i < DL_SHARDS; i++) {
        dl_shard_t *sh = &dl_shards[i];
        gort_mutex_lock(&sh->mu);
        while (sh->n > 0 && sh->heap[0]->deadline <= now) {
            gort_ctx *c = sh->heap[0];
            heap_remove(sh, c);
            if (try_ref(c)) { /* not if c is being released */
                c->dl_next = NULL;
                **tail = c;
                *tail = &c->dl_next;
            }
        }
        if (sh->n > 0 && (next == 0 || sh->heap[0]->deadline < next))
            next = sh->heap[0]->deadline;
        gort_mutex_unlock(&sh->mu);
    }
    return next;
}

/* The deadline service: cancels due contexts, sleeps until the next. */
static void deadline_service(void *arg)
{
    (void)arg;
    gort_timer *t = NULL;
    for (;;) {
        gort_ctx *due = NULL, **tail = &due;
        /* seq_cst: a deadline added after its shard was scanned sees 0
         * (or the wake-up stored below) and pokes. */
        atomic_store_explicit(&dl_wake, 0, memory_order_seq_cst);
        int64_t next = dl_scan(gort_nanotime(), &tail);
        if (!due && !next) {
            /* A deadline added from now on starts another service, or
             * the second scan sees it (seq_cst store, then the shards'
             * locks; the adder pushes under its lock, then loads). */
            atomic_store_explicit(&dl_running, false, memory_order_seq_cst);
            next = dl_scan(gort_nanotime(), &tail);
            bool f = false;
            if ((!due && !next) || !atomic_compare_exchange_strong(&dl_running, &f, true)) {
                /* Nothing left, or another service runs now and takes
                 * what this scan left (the due ones are cancelled here). */
                while (due) {
                    gort_ctx *c = due;
                    due = c->dl_next;
                    cancel_tree(c, GORT_CTX_DEADLINE, GORT_CTX_DEADLINE);
                    gort_ctx_unref(c);
                }
                if (t)
                    gort_timer_free(t);
                return;
            }
        }
        atomic_store_explicit(&dl_wake, next ? next : INT64_MAX, memory_order_seq_cst);
        while (due) {
            gort_ctx *c = due;
            due = c->dl_next;
            cancel_tree(c, GORT_CTX_DEADLINE, GORT_CTX_DEADLINE);
            gort_ctx_unref(c);
        }
        if (!next)
            continue; /* the heaps emptied: look again, and return */
        if (t)
            gort_timer_reset(t, next - gort_nanotime());
        else
            t = gort_timer_new(next - gort_nanotime());
        gort_case cases[2] = {{gort_timer_chan(t), GORT_RECV, NULL, false},
                              {atomic_load_explicit(&dl_kick, memory_order_acquire), GORT_RECV, NULL, false}};
        gort_select(cases, 2, true);
    }
}

/* Arms c's deadline: into the shard of this thread's stripe. */
static void deadline_start(gort_ctx *c)
{
    if (!atomic_load_explicit(&dl_kick, memory_order_acquire)) {
        gort_chan *k = gort_chan_make(0, 1), *nul = NULL;
        if (!atomic_compare_exchange_strong(&dl_kick, &nul, k))
            gort_chan_free(k);
    }
    c->dl_shard = (uint8_t)(stripe() % DL_SHARDS);
    c->timed = true;
    if (!(atomic_load_explicit(&dl_used, memory_order_relaxed) & (1u << c->dl_shard)))
        atomic_fetch_or_explicit(&dl_used, 1u << c->dl_shard, memory_order_relaxed);
    dl_shard_t *sh = &dl_shards[c->dl_shard];
    gort_mutex_lock(&sh->mu);
    if (sh->n == sh->cap) {
        int32_t cap = sh->cap ? 2 * sh->cap : 64;
        gort_ctx **h = realloc(sh->heap, (size_t)cap * sizeof(*h));
        if (!h)
            gort_panic("out of memory allocating a context deadline");
        sh->heap = h;
        sh->cap = cap;
    }
    heap_set(sh, sh->n++, c);
    heap_up(sh, sh->n - 1);
    gort_mutex_unlock(&sh->mu);
    bool f = false;
    if (!atomic_load_explicit(&dl_running, memory_order_seq_cst) &&
        atomic_compare_exchange_strong(&dl_running, &f, true)) {
        gort_go(deadline_service, NULL);
        return;
    }
    int64_t w = atomic_load_explicit(&dl_wake, memory_order_seq_cst);
    if (c->deadline < w || w == 0)
        kick(); /* earlier than what the service sleeps for, or it scans */
}

/* reg->lock not held. */
static void unlink_from_reg(gort_ctx *c)
{
    gort_ctx *reg = c->reg;
    if (!reg)
        return;
    gort_mutex_lock(&reg->lock);
    if (c->linked) {
        if (c->sib_prev)
            c->sib_prev->sib_next = c->sib_next;
        else
            reg->children = c->sib_next;
        if (c->sib_next)
            c->sib_next->sib_prev = c->sib_prev;
        c->linked = false;
    }
    gort_mutex_unlock(&reg->lock);
}

static void release(gort_ctx *c)
{
    /* Iterative up the parent chain: dropping the last child may free the
     * parent. */
    while (c && c->kind != K_BACKGROUND) {
        gort_ctx *parent = c->parent;
        if (c->kind == K_CANCEL) {
            unlink_from_reg(c);
            deadline_stop(c); /* never cancelled: its creator only unref'd it */
            gort_chan_free(c->done);
        }
        free(c);
        live_add(-1);
        c = parent;
        if (!c || c->kind == K_BACKGROUND ||
            atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
            return;
    }
}

gort_ctx *gort_ctx_ref(gort_ctx *c)
{
    forked_check();
    if (c && c->kind != K_BACKGROUND)
        atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

void gort_ctx_unref(gort_ctx *c)
{
    forked_check();
    if (!c || c->kind == K_BACKGROUND)
        return;
    int32_t was = atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel);
    if (was == 1)
        release(c);
    else if (was <= 0)
        gort_panic("gort_ctx_unref: context freed too many times");
}

/* Cancels c alone and pushes its live children on *work (each with a
 * reference the caller drops).  The caller holds a reference to c. */
static void cancel_one(gort_ctx *c, int32_t err, int32_t cause, gort_ctx **work)
{
    gort_mutex_lock(&c->lock);
    if (atomic_load_explicit(&c->err, memory_order_relaxed)) {
        gort_mutex_unlock(&c->lock);
        return;
    }
    c->cause = cause;
    atomic_store_explicit(&c->err, err, memory_order_release); /* pairs with gort_ctx_err */
    gort_ctx *k = c->children;
    c->children = NULL;
    for (; k; k = k->sib_next) {
        k->linked = false;
        if (try_ref(k)) {
            k->work = *work;
            *work = k;
        }
    }
    gort_mutex_unlock(&c->lock);
    gort_chan_close(c->done);
    deadline_stop(c);
}

static void cancel_tree(gort_ctx *c, int32_t err, int32_t cause)
{
    gort_ctx *work = NULL;
    cancel_one(c, err, cause, &work);
    unlink_from_reg(c);
    while (work) {
        gort_ctx *k = work;
        work = k->work;
        cancel_one(k, err, cause, &work);
        gort_ctx_unref(k);
    }
}

static gort_ctx *ctx_alloc(gort_ctx *parent, int kind)
{
    if (!parent)
        gort_panic("cannot create context from nil parent");
    gort_ctx *c = calloc(1, sizeof(*c));
    if (!c)
        gort_panic("out of memory allocating a context");
    live_add(1);
    atomic_store_explicit(&c->refs, 1, memory_order_relaxed);
    c->kind = (uint8_t)kind;
    c->dl_idx = -1;
    c->parent = gort_ctx_ref(parent);
    c->deadline = parent->deadline;
    c->owner = parent->owner;
    return c;
}

static gort_ctx *new_cancel(gort_ctx *parent, int64_t deadline)
{
    gort_ctx *c = ctx_alloc(parent, K_CANCEL);
    c->done = gort_chan_make(0, 0);
    c->reg = parent->owner;
    c->owner = c;
    if (deadline) {
        c->deadline = deadline;
        if (deadline <= gort_nanotime()) {
            cancel_tree(c, GORT_CTX_DEADLINE, GORT_CTX_DEADLINE);
            return c; /* not registered: nothing left to propagate */
        }
        /* Armed before registering, so a parent's cancel finds it in
         * its heap and takes it out. */
        deadline_start(c);
    }
    gort_ctx *reg = c->reg;
    if (reg) {
        gort_mutex_lock(&reg->lock);
        int32_t perr = atomic_load_explicit(&reg->err, memory_order_relaxed);
        if (perr) {
            int32_t pcause = reg->cause;
            gort_mutex_unlock(&reg->lock);
            cancel_tree(c, perr, pcause);
        } else {
            c->sib_next = reg->children;
            if (reg->children)
                reg->children->sib_prev = c;
            reg->children = c;
            c->linked = true;
            gort_mutex_unlock(&reg->lock);
        }
    }
    return c;
}

/* ---- public ---- */

gort_ctx *gort_ctx_background(void)
{
    forked_check();
    return &background;
}

gort_ctx *gort_ctx_with_cancel(gort_ctx *parent)
{
    forked_check();
    return new_cancel(parent, 0);
}

gort_ctx *gort_ctx_with_deadline(gort_ctx *parent, int64_t deadline_ns)
{
    forked_check();
    if (deadline_ns <= 0)
        deadline_ns = 1;
    if (parent && parent->deadline && parent->deadline <= deadline_ns)
        return new_cancel(parent, 0); /* the parent's deadline comes first */
    return new_cancel(parent, deadline_ns);
}

gort_ctx *gort_ctx_with_timeout(gort_ctx *parent, int64_t timeout_ns)
{
    return gort_ctx_with_deadline(parent, gort_nanotime() + (timeout_ns > 0 ? timeout_ns : 0));
}

gort_ctx *gort_ctx_with_value(gort_ctx *parent, const void *key, void *val)
{
    forked_check();
    gort_ctx *c = ctx_alloc(parent, K_VALUE);
    c->key = key;
    c->val = val;
    return c;
}

void gort_ctx_cancel_cause(gort_ctx *c, int cause)
{
    forked_check();
    if (!c || c->kind != K_CANCEL)
        return;
    cancel_tree(c, GORT_CTX_CANCELED, cause ? cause : GORT_CTX_CANCELED);
}

void gort_ctx_cancel(gort_ctx *c) { gort_ctx_cancel_cause(c, 0); }

void gort_ctx_free(gort_ctx *c)
{
    forked_check();
    if (!c || c->kind == K_BACKGROUND)
        return;
    gort_ctx_cancel(c);
    gort_ctx_unref(c);
}

gort_chan *gort_ctx_done(gort_ctx *c)
{
    forked_check();
    return c && c->owner ? c->owner->done : NULL;
}

int gort_ctx_err(gort_ctx *c)
{
    forked_check();
    return c && c->owner ? atomic_load_explicit(&c->owner->err, memory_order_acquire) : 0;
}

int gort_ctx_cause(gort_ctx *c)
{
    if (!gort_ctx_err(c))
        return 0;
    return c->owner->cause; /* stable once err is seen (acquire above) */
}

bool gort_ctx_deadline(gort_ctx *c, int64_t *deadline_ns)
{
    forked_check();
    if (!c || !c->deadline)
        return false;
    if (deadline_ns)
        *deadline_ns = c->deadline;
    return true;
}

void *gort_ctx_value(gort_ctx *c, const void *key)
{
    forked_check();
    for (; c; c = c->parent)
        if (c->kind == K_VALUE && c->key == key)
            return c->val;
    return NULL;
}

int gort_ctx_sleep(gort_ctx *c, int64_t ns)
{
    forked_check();
    int err = gort_ctx_err(c);
    if (err || ns <= 0)
        return err;
    gort_timer *t = gort_timer_new(ns);
    gort_case cases[2] = {{gort_timer_chan(t), GORT_RECV, NULL, false}, {gort_ctx_done(c), GORT_RECV, NULL, false}};
    int which = gort_select(cases, 2, true);
    gort_timer_free(t);
    return which == 0 ? 0 : gort_ctx_err(c);
}
