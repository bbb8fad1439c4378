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
 * Locking: one context lock at a time, ever (rank LR_LEAF: nothing is taken
 * under it).  Cancellation is iterative: cancel_one(c) sets err under c's
 * lock, detaches c's whole child list (clearing `linked`, taking a
 * reference on each child that is not already being freed) and unlocks;
 * then it closes done, stops the timer, and the detached children are
 * cancelled the same way from a local work list.  A parent chain of any
 * depth therefore needs no recursion, and no lock is held while a channel
 * is closed or a timer deleted.
 *
 * Lifetime: a reference count.  Holders: the creator (dropped by free), each
 * child (its parent), a pending deadline timer, anyone who took a ref.
 * Children are not references of their parent; the parent's list is weak,
 * and a child whose count reached zero is skipped by a cancel in progress
 * (try_ref) and unlinks itself.
 *
 * Deadline timers run their callback on g0 (timer.c): it cancels and drops
 * the timer's reference, which may free the context.  timer.c touches the
 * timer after the callback returns (t->running), so timers are not embedded
 * in the context but come from a pool and are reused only after
 * gort__timer_wait_idle.
 *
 * Rejected: a goroutine per deadline (Go's AfterFunc); it shows up in
 * goroutine counts and leak checks and costs a stack.  A lock per tree: a
 * hot parent with many short-lived children would serialize on it anyway,
 * and per-node locks keep unrelated subtrees apart.
 */
#include "runtime.h"

#include <stdlib.h>
#include <string.h>

#include "gort_ctx.h"

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
    gort_lock_t lock;
    gort_chan *done;            /* const */
    _Atomic int32_t err;        /* 0 until cancelled; stored under lock with
                                   release, after cause */
    int32_t cause;              /* under lock; stable once err != 0 */
    gort_ctx *children;         /* under lock */
    gort_ctx *reg;              /* cancel context registered with; const */
    gort_ctx *sib_next, *sib_prev; /* under reg->lock */
    bool linked;                /* in reg->children; under reg->lock */
    gort_ctx *work;             /* cancel work list; owned by the canceller */
    struct ctimer *timer;       /* deadline; NULL: none */
};

typedef struct ctimer {
    gort__timer_t t;
    struct ctimer *next;
} ctimer_t;

static gort_ctx background = {.kind = K_BACKGROUND};

/* Live cancel and value contexts, for tests (no leak). */
_Atomic int64_t gort__ctx_live;

static gort_lock_t pool_lock = GORT_LOCK_INIT(LR_LEAF);
static ctimer_t *pool;

static ctimer_t *timer_get(void (*f)(void *, uintptr_t, int64_t), void *arg)
{
    gort__lock(&pool_lock);
    ctimer_t *ct = pool;
    if (ct)
        pool = ct->next;
    gort__unlock(&pool_lock);
    if (ct) {
        gort__timer_wait_idle(&ct->t); /* its last callback may be returning */
    } else {
        ct = calloc(1, sizeof(*ct));
        if (!ct)
            gort__throw("out of memory allocating a context timer");
    }
    ct->t.f = f;
    ct->t.arg = arg;
    ct->t.period = 0;
    ct->t.idx = -1;
    return ct;
}

static void timer_put(ctimer_t *ct)
{
    gort__lock(&pool_lock);
    ct->next = pool;
    pool = ct;
    gort__unlock(&pool_lock);
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

/* reg->lock not held. */
static void unlink_from_reg(gort_ctx *c)
{
    gort_ctx *reg = c->reg;
    if (!reg)
        return;
    gort__lock(&reg->lock);
    if (c->linked) {
        if (c->sib_prev)
            c->sib_prev->sib_next = c->sib_next;
        else
            reg->children = c->sib_next;
        if (c->sib_next)
            c->sib_next->sib_prev = c->sib_prev;
        c->linked = false;
    }
    gort__unlock(&reg->lock);
}

static void release(gort_ctx *c)
{
    /* Iterative up the parent chain: dropping the last child may free the
     * parent. */
    while (c && c->kind != K_BACKGROUND) {
        gort_ctx *parent = c->parent;
        if (c->kind == K_CANCEL) {
            unlink_from_reg(c);
            if (c->timer)
                timer_put(c->timer); /* not pending: a pending timer holds a ref */
            gort_chan_free(c->done);
        }
        free(c);
        atomic_fetch_sub_explicit(&gort__ctx_live, 1, memory_order_relaxed);
        c = parent;
        if (!c || c->kind == K_BACKGROUND ||
            atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
            return;
    }
}

gort_ctx *gort_ctx_ref(gort_ctx *c)
{
    if (c && c->kind != K_BACKGROUND)
        atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

void gort_ctx_unref(gort_ctx *c)
{
    if (!c || c->kind == K_BACKGROUND)
        return;
    int32_t was = atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel);
    if (was == 1)
        release(c);
    else if (was <= 0)
        gort__fatal("gort_ctx_unref: context freed too many times");
}

/* Cancels c alone and pushes its live children on *work (each with a
 * reference the caller drops).  The caller holds a reference to c. */
static void cancel_one(gort_ctx *c, int32_t err, int32_t cause, gort_ctx **work)
{
    gort__lock(&c->lock);
    if (atomic_load_explicit(&c->err, memory_order_relaxed)) {
        gort__unlock(&c->lock);
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
    gort__unlock(&c->lock);
    gort_chan_close(c->done);
    if (c->timer && gort__timer_del(&c->timer->t))
        gort_ctx_unref(c); /* the timer's reference; never the last (caller's) */
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

static void deadline_fire(void *arg, uintptr_t seq, int64_t delta)
{
    (void)seq;
    (void)delta;
    gort_ctx *c = arg;
    cancel_tree(c, GORT_CTX_DEADLINE, GORT_CTX_DEADLINE);
    gort_ctx_unref(c); /* the timer's reference */
}

static gort_ctx *ctx_alloc(gort_ctx *parent, int kind)
{
    if (!parent)
        gort__fatal("gort_ctx: nil parent context");
    gort_ctx *c = calloc(1, sizeof(*c));
    if (!c)
        gort__throw("out of memory allocating a context");
    atomic_fetch_add_explicit(&gort__ctx_live, 1, memory_order_relaxed);
    atomic_store_explicit(&c->refs, 1, memory_order_relaxed);
    c->kind = (uint8_t)kind;
    c->parent = gort_ctx_ref(parent);
    c->deadline = parent->deadline;
    c->owner = parent->owner;
    return c;
}

static gort_ctx *new_cancel(gort_ctx *parent, int64_t deadline)
{
    gort_ctx *c = ctx_alloc(parent, K_CANCEL);
    gort__lock_init(&c->lock, LR_LEAF);
    c->done = gort_chan_make(0, 0);
    c->reg = parent->owner;
    c->owner = c;
    if (deadline) {
        c->deadline = deadline;
        if (deadline <= gort__nanotime()) {
            cancel_tree(c, GORT_CTX_DEADLINE, GORT_CTX_DEADLINE);
            return c; /* not registered: nothing left to propagate */
        }
        /* Armed before registering, so a parent's cancel finds it pending
         * and drops its reference. */
        gort_ctx_ref(c);
        c->timer = timer_get(deadline_fire, c);
        c->timer->t.when = deadline;
        gort__timer_add(&c->timer->t);
    }
    gort_ctx *reg = c->reg;
    if (reg) {
        gort__lock(&reg->lock);
        int32_t perr = atomic_load_explicit(&reg->err, memory_order_relaxed);
        if (perr) {
            int32_t pcause = reg->cause;
            gort__unlock(&reg->lock);
            cancel_tree(c, perr, pcause);
        } else {
            c->sib_next = reg->children;
            if (reg->children)
                reg->children->sib_prev = c;
            reg->children = c;
            c->linked = true;
            gort__unlock(&reg->lock);
        }
    }
    return c;
}

/* ---- public ---- */

gort_ctx *gort_ctx_background(void) { return &background; }

gort_ctx *gort_ctx_with_cancel(gort_ctx *parent) { return new_cancel(parent, 0); }

gort_ctx *gort_ctx_with_deadline(gort_ctx *parent, int64_t deadline_ns)
{
    if (deadline_ns <= 0)
        deadline_ns = 1;
    if (parent && parent->deadline && parent->deadline <= deadline_ns)
        return new_cancel(parent, 0); /* the parent's deadline comes first */
    return new_cancel(parent, deadline_ns);
}

gort_ctx *gort_ctx_with_timeout(gort_ctx *parent, int64_t timeout_ns)
{
    return gort_ctx_with_deadline(parent, gort__nanotime() + (timeout_ns > 0 ? timeout_ns : 0));
}

gort_ctx *gort_ctx_with_value(gort_ctx *parent, const void *key, void *val)
{
    gort_ctx *c = ctx_alloc(parent, K_VALUE);
    c->key = key;
    c->val = val;
    return c;
}

void gort_ctx_cancel_cause(gort_ctx *c, int cause)
{
    if (!c || c->kind != K_CANCEL)
        return;
    cancel_tree(c, GORT_CTX_CANCELED, cause ? cause : GORT_CTX_CANCELED);
}

void gort_ctx_cancel(gort_ctx *c) { gort_ctx_cancel_cause(c, 0); }

void gort_ctx_free(gort_ctx *c)
{
    if (!c || c->kind == K_BACKGROUND)
        return;
    gort_ctx_cancel(c);
    gort_ctx_unref(c);
}

gort_chan *gort_ctx_done(gort_ctx *c) { return c && c->owner ? c->owner->done : NULL; }

int gort_ctx_err(gort_ctx *c)
{
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
    if (!c || !c->deadline)
        return false;
    if (deadline_ns)
        *deadline_ns = c->deadline;
    return true;
}

void *gort_ctx_value(gort_ctx *c, const void *key)
{
    for (; c; c = c->parent)
        if (c->kind == K_VALUE && c->key == key)
            return c->val;
    return NULL;
}

/* ---- gort_ctx_sleep ---- */

static void sleep_fire(void *arg, uintptr_t seq, int64_t delta)
{
    (void)seq;
    (void)delta;
    gort_chan_trysend(arg, NULL); /* capacity 1: never blocks */
}

int gort_ctx_sleep(gort_ctx *c, int64_t ns)
{
    int err = gort_ctx_err(c);
    if (err || ns <= 0)
        return err;
    gort_chan *tick = gort_chan_make(0, 1);
    ctimer_t *ct = timer_get(sleep_fire, tick);
    ct->t.when = gort__nanotime() + ns;
    gort__timer_add(&ct->t);
    gort_case cases[2] = {{tick, GORT_RECV, NULL, false}, {gort_ctx_done(c), GORT_RECV, NULL, false}};
    int which = gort_select(cases, 2, true);
    gort__timer_del(&ct->t);
    gort__timer_wait_idle(&ct->t); /* its send may be in flight */
    timer_put(ct);
    gort_chan_free(tick);
    return which == 0 ? 0 : gort_ctx_err(c);
}
