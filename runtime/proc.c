/*
 * proc.c: creating and ending goroutines.
 *
 * A new goroutine is a G struct with an entry point and nothing else: its
 * stack is attached when it first runs (execute in sched.c) and detached
 * when it exits.  Spawning a million short goroutines therefore costs a
 * million small structs in the run queues, not a million stacks.
 *
 * Dead Gs are kept on per-P free lists (no lock) that spill to and refill
 * from a global list, and are never freed: dumps and profiles walk allgs
 * without worrying about a G disappearing under them.
 *
 * Goroutine ids come from sched.goidgen in batches of 16 per P, so there is
 * no shared counter on the spawn path.  Goroutine 1 is the main goroutine
 * of the current gort_main call.
 */
#include "runtime.h"

#include <stdlib.h>
#include <string.h>

#define GOID_BATCH 16
#define GFREE_LOCAL_MAX 64

gort_lock_t gort__allglock = GORT_LOCK_INIT(LR_ALLG);
_Atomic uint32_t gort__gprof_want;
gort_g_t **gort__allgs;
size_t gort__nallgs;
static size_t allgscap;
/* Live goroutines created or ended without a P (foreign threads). */
static _Atomic int64_t ng_global;

static void allgadd_locked(gort_g_t *gp)
{
    if (gort__nallgs == allgscap) {
        size_t cap = allgscap ? allgscap * 2 : 1024;
        gort_g_t **n = realloc(gort__allgs, cap * sizeof(*n));
        if (!n)
            gort__throw("out of memory growing allgs");
        gort__allgs = n;
        allgscap = cap;
    }
    gort__allgs[gort__nallgs++] = gp;
}

void gort__forallg(void (*fn)(gort_g_t *, void *), void *arg)
{
    gort__lock(&gort__allglock);
    for (size_t i = 0; i < gort__nallgs; i++)
        fn(gort__allgs[i], arg);
    gort__unlock(&gort__allglock);
}

_Static_assert(offsetof(gort_g_t, lastp) + sizeof(void *) <= GORT_CACHELINE,
               "struct gort_g: the fields every switch touches must share the first cache line");
_Static_assert(offsetof(gort_g_t, param) + sizeof(void *) <= 2 * GORT_CACHELINE,
               "struct gort_g: park and wake fields must sit in the second cache line");

/* Gs are line-aligned, so that the fields a switch touches share one or
 * two cache lines (struct gort_g) instead of straddling three.  They come
 * from slabs (Gs are reused, never freed): aligned_alloc for each cost
 * ~150 bytes of padding per goroutine. */
#define G_SLAB 64
static char *gslab;      /* allglock */
static size_t gslab_left; /* allglock */

static gort_g_t *malg(void)
{
    size_t sz = (sizeof(gort_g_t) + GORT_CACHELINE - 1) & ~(size_t)(GORT_CACHELINE - 1);
    gort__lock(&gort__allglock);
    if (gslab_left == 0) {
        gslab = aligned_alloc(GORT_CACHELINE, sz * G_SLAB);
        if (!gslab) {
            gort__unlock(&gort__allglock); /* the crash dump walks allgs */
            gort__throw("out of memory allocating a goroutine");
        }
        memset(gslab, 0, sz * G_SLAB);
        gslab_left = G_SLAB;
    }
    gort_g_t *gp = (gort_g_t *)gslab;
    gslab += sz;
    gslab_left--;
    atomic_store_explicit(&gp->status, G_DEAD, memory_order_relaxed);
    allgadd_locked(gp);
    gort__unlock(&gort__allglock);
    return gp;
}

/* The global free list holds batches: a P spills half its local list as
 * one schedlink chain and refills by taking one chain, each an O(1) step
 * under gflock.  It used to move Gs one by one, following schedlink under
 * the lock through G structs last written on another CPU: at 2 procs the
 * spawn bench spent a quarter of its time waiting for gflock. */
static void gf_push_batch(gort_g_t *head, int32_t n) /* gflock held */
{
    head->gfbatchn = n;
    head->gfbatch = gort__sched.gfree;
    gort__sched.gfree = head;
    gort__sched.ngfree += n;
}

static gort_g_t *gf_pop_batch(int32_t *n) /* gflock held */
{
    gort_g_t *head = gort__sched.gfree;
    if (head) {
        gort__sched.gfree = head->gfbatch;
        *n = head->gfbatchn;
        gort__sched.ngfree -= *n;
        head->gfbatch = NULL;
    }
    return head;
}

static gort_g_t *gfget(gort_p_t *pp)
{
    if (!pp) {
        int32_t n = 0;
        gort__lock(&gort__sched.gflock);
        gort_g_t *gp = gf_pop_batch(&n);
        if (gp && n > 1)
            gf_push_batch(gp->schedlink, n - 1);
        gort__unlock(&gort__sched.gflock);
        return gp;
    }
    if (!pp->gfree && gort__sched.gfree) {
        int32_t n = 0;
        gort__lock(&gort__sched.gflock);
        gort_g_t *batch = gf_pop_batch(&n);
        gort__unlock(&gort__sched.gflock);
        pp->gfree = batch;
        pp->gfreecnt = batch ? n : 0;
    }
    gort_g_t *gp = pp->gfree;
    if (gp) {
        pp->gfree = gp->schedlink;
        pp->gfreecnt--;
    }
    return gp;
}

void gort__gfput(gort_p_t *pp, gort_g_t *gp)
{
    gp->schedlink = pp->gfree;
    pp->gfree = gp;
    if (++pp->gfreecnt >= GFREE_LOCAL_MAX) {
        /* Cut the newest half off as one batch (these Gs are ours, in our
         * cache: the walk happens before taking the lock). */
        int32_t n = GFREE_LOCAL_MAX / 2;
        gort_g_t *head = pp->gfree, *tail = head;
        for (int32_t i = 1; i < n; i++)
            tail = tail->schedlink;
        pp->gfree = tail->schedlink;
        pp->gfreecnt -= n;
        tail->schedlink = NULL;
        gort__lock(&gort__sched.gflock);
        gf_push_batch(head, n);
        gort__unlock(&gort__sched.gflock);
    }
}

void gort__gfpurge(gort_p_t *pp)
{
    gort_g_t *head = pp->gfree;
    int32_t n = pp->gfreecnt;
    pp->gfree = NULL;
    pp->gfreecnt = 0;
    if (!head)
        return;
    gort__lock(&gort__sched.gflock);
    gf_push_batch(head, n);
    gort__unlock(&gort__sched.gflock);
}

static uint64_t newgoid(gort_p_t *pp)
{
    if (!pp)
        return atomic_fetch_add_explicit(&gort__sched.goidgen, 1, memory_order_relaxed) + 1;
    if (pp->goidcache == pp->goidcacheend) {
        uint64_t base = atomic_fetch_add_explicit(&gort__sched.goidgen, GOID_BATCH, memory_order_relaxed);
        pp->goidcache = base + 1;
        pp->goidcacheend = base + 1 + GOID_BATCH;
    }
    return pp->goidcache++;
}

gort_g_t *gort__newproc(void (*fn)(void *), void *arg, uintptr_t pc, bool main)
{
    if (!fn)
        gort__panic_str("gort_go of nil func value");
    gort_m_t *m = gort__getm();
    gort_p_t *pp = m ? m->p : NULL;
    gort_g_t *parent = m ? m->curg : NULL;
    gort_g_t *gp = gfget(pp);
    if (!gp)
        gp = malg();
    if (atomic_load_explicit(&gp->status, memory_order_relaxed) != G_DEAD)
        gort__throw("newproc: free goroutine is not dead");
    gp->fn = fn;
    gp->arg = arg;
    gp->gopc = pc;
    gp->parent_goid = parent ? parent->goid : 0;
    gp->goid = main ? 1 : newgoid(pp);
    gp->main = main;
    gp->waitreason = WR_ZERO;
    gp->waitsince = 0;
    gp->m = NULL;
    atomic_store_explicit(&gp->lastp, NULL, memory_order_relaxed);
    gp->lockedm = NULL;
    gp->lockedext = 0;
    gp->clocks = 0;
    gp->nopreempt = 0;
    gp->inrt = 0;
    gp->schedlink = NULL;
    gp->waiting = NULL;
    gp->param = NULL;
    gp->defers = NULL;
    gp->panicking = NULL;
    gp->callframe = NULL;
    gp->recovered = NULL;
    gp->labels = NULL;
    atomic_store_explicit(&gp->preempt, false, memory_order_relaxed);
    if (parent && gort__hooks.labels_inherit)
        gort__hooks.labels_inherit(gp, parent);
    /* Born after a collecting goroutine profile stopped the world: not in
     * it (proc.h).  Before leaving G_DEAD, so its walk never records it. */
    uint32_t want = atomic_load_explicit(&gort__gprof_want, memory_order_relaxed);
    if (unlikely(want))
        atomic_store_explicit(&gp->profword, want, memory_order_relaxed);
    gort__gstatus_move(gp, G_DEAD, G_RUNNABLE);
    if (pp) {
        GORT_OWNER_INC(&pp->stats.created);
        gort__runqput(pp, gp, true);
    } else {
        atomic_fetch_add_explicit(&ng_global, 1, memory_order_relaxed);
        gort__lock(&gort__sched.lock);
        gort__globrunqput(gp);
        gort__unlock(&gort__sched.lock);
    }
    if (atomic_load_explicit(&gort__sched.main_running, memory_order_relaxed))
        gort__wakep();
    return gp;
}

/* The live count is the sum over Ps (dead ones included: their counters
 * stay) of created - exited, plus those created and ended without a P.
 * Each P writes only its own counters, so spawning shares no cache line. */
int gort_numgoroutine(void)
{
    int64_t n = atomic_load_explicit(&ng_global, memory_order_relaxed);
    for (int i = 0; i < GORT_MAX_PROCS && gort__allp[i]; i++) {
        n += (int64_t)atomic_load_explicit(&gort__allp[i]->stats.created, memory_order_relaxed);
        n -= (int64_t)atomic_load_explicit(&gort__allp[i]->stats.exited, memory_order_relaxed);
    }
    return n < 0 ? 0 : (int)n;
}

static void goexit0(void *arg)
{
    gort_g_t *gp = arg;
    gort_m_t *m = gort__getm();
    gort_p_t *pp = m->p;
    gort__san_after_g_to_g0(m);
    gort__gstatus_move(gp, G_RUNNING, G_DEAD);
    m->curg = NULL;
    gp->m = NULL;
    if (gp->lockedm) {
        /* Go would end the thread; we just unlock it. */
        gp->lockedm = NULL;
        gp->lockedext = 0;
        m->lockedg = NULL;
    }
    gort__hook(labels_release, gp);
    gort__san_g_destroyed(gp);
    if (gp->stack.lo) {
        if (gp->stack.guard == GUARD_CANARY && !gort__stack_check(&gp->stack))
            gort__throw("goroutine %llu stack overflow", (unsigned long long)gp->goid);
        gort__stack_free(pp, &gp->stack);
        memset(&gp->stack, 0, sizeof(gp->stack));
    }
    bool main = gp->main;
    gp->main = false;
    if (pp) {
        GORT_OWNER_INC(&pp->stats.exited);
        gort__gfput(pp, gp);
    } else {
        atomic_fetch_sub_explicit(&ng_global, 1, memory_order_relaxed);
        gp->schedlink = NULL;
        gort__lock(&gort__sched.gflock);
        gf_push_batch(gp, 1);
        gort__unlock(&gort__sched.gflock);
    }
    if (main)
        gort__main_exit_on_g0(m);
    gort__schedule();
}

void gort__goexit(void)
{
    gort_m_t *m = gort__getm();
    gort_g_t *gp = m->curg;
    /* panic.c, when linked: runs the entry function's remaining deferred
     * calls and frees the messages gort_recover handed out, which stay
     * valid until here.  Called even with no defers pending for the
     * latter. */
    gort__defer_run_all(gp);
    /* From here on the exit needs the M's P (stop the world for main, the
     * P's caches in goexit0).  If sysmon revoked the P while the goroutine
     * sat in a call the runtime never saw, this takes the syscall-exit path
     * and comes back with a P.  g->inrt is reset when the G is reused. */
    (void)gort__rt_enter();
    if (gp->main)
        gort__main_exit_on_g();
    m = gort__getm();
    gort__san_g_to_g0(m, gp, true);
    gort__mcall(&gp->ctx, m->g0sp, goexit0, gp);
    __builtin_unreachable();
}

void gort__goentry(gort_g_t *gp)
{
    gort__san_after_g0_to_g(gp);
    gp->fn(gp->arg);
    gort__goexit();
}

/* ---- public ---- */

uint64_t gort_go(void (*fn)(void *), void *arg)
{
    gort_g_t *cur = gort__rt_enter();
    if (!cur)
        gort__runtime_init();
    uintptr_t pc = (uintptr_t)__builtin_return_address(0);
    gort_g_t *gp = gort__newproc(fn, arg, pc, false);
    uint64_t id = gp->goid;
    gort__rt_leave_preempt(cur);
    return id;
}

uint64_t gort_self(void)
{
    gort_g_t *gp = gort__getg();
    return gp ? gp->goid : 0;
}

void gort_yield(void)
{
    gort_g_t *gp = gort__rt_enter();
    if (!gp) {
        gort__osyield();
        return;
    }
    gort__gosched();
    gort__rt_leave(gort__getg());
}

typedef struct glist {
    gort_goroutine_info *out;
    int max, n;
} glist_t;

/* Under allglock: no blocking. */
static void glist_add(gort_g_t *gp, void *arg)
{
    glist_t *l = arg;
    uint32_t st = atomic_load_explicit(&gp->status, memory_order_acquire);
    if (st == G_DEAD || st == G_IDLE)
        return;
    if (l->n < l->max)
        l->out[l->n] = (gort_goroutine_info){gp->goid, gp->parent_goid, gp->gopc};
    l->n++;
}

int gort_goroutines(gort_goroutine_info *out, int max)
{
    glist_t l = {out, out && max > 0 ? max : 0, 0};
    gort__forallg(glist_add, &l);
    return l.n;
}
