/*
 * cond.c: the small sync primitives: gort_cond (sync.Cond), gort_once
 * (sync.Once) and gort_sema, a counting semaphore.
 *
 * Cond is Go's notify list (runtime/sema.go notifyList).  Wait takes a
 * ticket (_wait++) while the caller still holds the user's mutex, unlocks
 * it, and parks with that ticket unless it has already been notified
 * (ticket < _notify).  Signal notifies ticket _notify++ and wakes the
 * waiter holding it if it has parked; if it has not parked yet it will see
 * its ticket is served and not park.  Broadcast serves every ticket.  So
 * Signal wakes waiters in the order they called Wait (FIFO), and no
 * wakeup is lost between the user's Unlock and our park.  The parked
 * waiters form a list of sudogs (_head/_tail, linked by next) under
 * _lock, a futex lock word of our own (Drepper's three-state mutex) held
 * only on the M, never across a park except by the park itself, which
 * drops it on g0.  Tickets wrap: comparisons are by signed difference.
 *
 * Once: _done is read with one acquire load on the fast path; the first
 * caller runs fn under _m, and concurrent callers block on _m until it
 * returns, so nobody returns before fn has finished (Go's doSlow).
 *
 * gort_sema is sema.c's runtime semaphore on _count, FIFO.
 */
#include "runtime.h"

/* ---- the notify list lock ---- */

static inline _Atomic uint32_t *nl_key(gort_cond *c) { return (_Atomic uint32_t *)&c->_lock; }

static void nl_lock(_Atomic uint32_t *k)
{
    gort_m_t *m = gort__getm();
    if (m)
        gort__m_locks_add(m, 1); /* not preemptible while held, like runtime locks */
    uint32_t c = 0;
    if (likely(atomic_compare_exchange_strong_explicit(k, &c, 1, memory_order_acquire, memory_order_relaxed)))
        return;
    for (int i = 0; i < 64 && c != 0; i++) {
        gort__cpu_relax();
        c = 0;
        if (atomic_compare_exchange_weak_explicit(k, &c, 1, memory_order_acquire, memory_order_relaxed))
            return;
    }
    if (c != 2)
        c = atomic_exchange_explicit(k, 2, memory_order_acquire);
    while (c != 0) {
        gort__futex_wait(k, 2, -1);
        c = atomic_exchange_explicit(k, 2, memory_order_acquire);
    }
}

static void nl_unlock(_Atomic uint32_t *k)
{
    if (atomic_exchange_explicit(k, 0, memory_order_release) == 2)
        gort__futex_wake(k, 1);
    gort_m_t *m = gort__getm();
    if (m)
        gort__m_locks_add(m, -1);
}

static bool nl_unlock_park(gort_g_t *gp, void *k)
{
    (void)gp;
    nl_unlock(k);
    return true;
}

static inline bool ticket_less(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }

static inline _Atomic uint32_t *cwait(gort_cond *c) { return (_Atomic uint32_t *)&c->_wait; }
static inline _Atomic uint32_t *cnotify(gort_cond *c) { return (_Atomic uint32_t *)&c->_notify; }

/* ---- Cond ---- */

static __attribute__((noinline)) void notify_wait(gort_cond *c, uint32_t t, gort_g_t *gp)
{
    nl_lock(nl_key(c));
    if (ticket_less(t, atomic_load_explicit(cnotify(c), memory_order_relaxed))) {
        nl_unlock(nl_key(c));
        return;
    }
    gort_sudog_t *s = gort__acquire_sudog();
    int64_t t0 = gort__block_start(s);
    s->g = gp;
    s->ticket = t;
    s->next = NULL;
    if (c->_tail)
        ((gort_sudog_t *)c->_tail)->next = s;
    else
        c->_head = s;
    c->_tail = s;
    gort__park(nl_unlock_park, nl_key(c), WR_SYNC_COND_WAIT);
    if (s->releasetime > 0 && gort__hooks.prof_block)
        gort__hooks.prof_block(t0, s->releasetime, 3);
    gort__release_sudog(s);
}

void gort_cond_wait(gort_cond *c, gort_mutex *m)
{
    gort_g_t *gp = gort__rt_enter();
    gort_g_t *self = gp ? gp : gort__foreign_g(); /* fatal on g0 */
    uint32_t t = atomic_fetch_add_explicit(cwait(c), 1, memory_order_acq_rel);
    gort_mutex_unlock(m);
    notify_wait(c, t, self);
    gort__rt_leave(gp);
    gort_mutex_lock(m);
}

static inline void stamp(gort_sudog_t *s)
{
    if (unlikely(s->releasetime != 0))
        s->releasetime = gort__nanotime();
}

void gort_cond_signal(gort_cond *c)
{
    gort__fork_check();
    /* Nobody has called Wait since the last notification: nothing to do
     * (a racing Wait is not "waiting" yet, as in Go). */
    if (atomic_load_explicit(cwait(c), memory_order_acquire) ==
        atomic_load_explicit(cnotify(c), memory_order_acquire))
        return;
    gort_g_t *gp = gort__rt_enter();
    nl_lock(nl_key(c));
    uint32_t t = atomic_load_explicit(cnotify(c), memory_order_relaxed);
    if (t == atomic_load_explicit(cwait(c), memory_order_acquire)) {
        nl_unlock(nl_key(c));
        gort__rt_leave(gp);
        return;
    }
    atomic_store_explicit(cnotify(c), t + 1, memory_order_release);
    gort_sudog_t *prev = NULL;
    for (gort_sudog_t *s = c->_head; s; prev = s, s = s->next) {
        if (s->ticket != t)
            continue;
        gort_sudog_t *n = s->next;
        if (prev)
            prev->next = n;
        else
            c->_head = n;
        if (c->_tail == s)
            c->_tail = prev;
        s->next = NULL;
        nl_unlock(nl_key(c));
        stamp(s);
        gort__ready(s->g, true);
        gort__rt_leave(gp);
        return;
    }
    /* Ticket t has not parked yet; it will see it is served. */
    nl_unlock(nl_key(c));
    gort__rt_leave(gp);
}

void gort_cond_broadcast(gort_cond *c)
{
    gort__fork_check();
    if (atomic_load_explicit(cwait(c), memory_order_acquire) ==
        atomic_load_explicit(cnotify(c), memory_order_acquire))
        return;
    gort_g_t *gp = gort__rt_enter();
    nl_lock(nl_key(c));
    gort_sudog_t *s = c->_head;
    c->_head = c->_tail = NULL;
    atomic_store_explicit(cnotify(c), atomic_load_explicit(cwait(c), memory_order_acquire),
                          memory_order_release);
    nl_unlock(nl_key(c));
    /* Ready them in ticket order, behind whatever is already runnable: a
     * batch to the run queue keeps Wait order, and wakes one M. */
    gort_g_t *head = NULL, *tail = NULL;
    while (s) {
        gort_sudog_t *n = s->next;
        s->next = NULL;
        stamp(s);
        gort_g_t *g = s->g; /* s is the waiter's once it runs */
        g->schedlink = NULL;
        if (tail)
            tail->schedlink = g;
        else
            head = g;
        tail = g;
        s = n;
    }
    gort__injectglist(head);
    gort__rt_leave(gp);
}

/* ---- Once ---- */

static __attribute__((noinline)) void once_slow(gort_once *o, void (*fn)(void *), void *arg)
{
    _Atomic uint32_t *done = (_Atomic uint32_t *)&o->_done;
    gort_mutex_lock(&o->_m);
    if (atomic_load_explicit(done, memory_order_relaxed) == 0) {
        fn(arg);
        /* release: pairs with the fast path's acquire load. */
        atomic_store_explicit(done, 1, memory_order_release);
    }
    gort_mutex_unlock(&o->_m);
}

void gort_once_do(gort_once *o, void (*fn)(void *), void *arg)
{
    if (likely(atomic_load_explicit((_Atomic uint32_t *)&o->_done, memory_order_acquire) != 0))
        return;
    once_slow(o, fn, arg);
}

/* ---- counting semaphore ---- */

static inline _Atomic uint32_t *scount(gort_sema *s) { return (_Atomic uint32_t *)&s->_count; }

void gort_sema_acquire(gort_sema *s)
{
    gort__fork_check();
    if (gort__semcanacquire(scount(s)))
        return;
    gort_g_t *gp = gort__rt_enter();
    gort__semacquire(scount(s), false, WR_SEMACQUIRE, SEMA_PROF_BLOCK);
    gort__rt_leave(gp);
}

bool gort_sema_tryacquire(gort_sema *s)
{
    gort__fork_check();
    return gort__semcanacquire(scount(s));
}

void gort_sema_release(gort_sema *s, uint32_t n)
{
    gort_g_t *gp = gort__rt_enter();
    for (uint32_t i = 0; i < n; i++)
        gort__semrelease(scount(s), false, 1);
    gort__rt_leave(gp);
}
