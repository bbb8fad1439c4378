/*
 * timer.c: per-P timer heaps.
 *
 * A pending timer lives in exactly one P's heap (t->pp), a binary min-heap
 * on `when` guarded by that P's timers_lock.  There is no global timer lock:
 * adding goes to the current P.  Stopping a timer in our own P's heap takes
 * it out under our lock; one in another P's heap is only marked deleted
 * (t->state, CAS T_PENDING -> T_DELETED, as Go marks timerDeleted), so a
 * stop never waits for a remote heap's lock nor bounces its line.  Whoever
 * next holds that heap's lock takes marked timers out: one at the top
 * before running timers, all of them once they are a quarter of the heap.
 * The firing path claims a one-shot timer by CAS T_PENDING -> T_IDLE, so a
 * stop and a firing agree on who won.  A marked timer still sits in the
 * heap, so its memory may not go yet: gort__timer_wait_idle (before a
 * free) and a re-add take it out under that heap's lock, the one case a
 * remote lock is taken (C has no collector to leave the timer to).
 * p->timer0when mirrors the heap's minimum so that schedulers and idle Ms
 * can peek without locking.
 *
 * Expired timers run from the scheduler (schedule/findrunnable, on g0 with a
 * P) and from stealing Ms, never in a signal handler.  Callbacks run with no
 * lock held and must not block: they ready goroutines or do a non-blocking
 * channel send.  t->running counts callbacks in progress so that freeing a
 * timer can wait one out (gort__timer_wait_idle).
 *
 * An idle M sleeps in the netpoller until the earliest timer of any P
 * (findrunnable); adding a timer earlier than that sleep wakes it
 * (gort__wake_netpoller).
 *
 * Rejected: Go's lock-free timer status machine (timerModifying, ...).  It
 * exists to let a timer be modified without locking its P; a per-P lock
 * held for a heap operation is cheaper to get right and has not shown up in
 * any profile.
 */
#include "runtime.h"

#include <stdlib.h>
#include <time.h>

enum { T_IDLE = 0, T_PENDING, T_DELETED };

_Atomic uint64_t gort__timers_marked;

static void heap_swap(gort_p_t *pp, int32_t i, int32_t j)
{
    gort__timer_t *a = pp->timers[i], *b = pp->timers[j];
    pp->timers[i] = b;
    b->idx = i;
    pp->timers[j] = a;
    a->idx = j;
}

static void sift_up(gort_p_t *pp, int32_t i)
{
    while (i > 0) {
        int32_t parent = (i - 1) / 2;
        if (pp->timers[parent]->when <= pp->timers[i]->when)
            break;
        heap_swap(pp, i, parent);
        i = parent;
    }
}

static void sift_down(gort_p_t *pp, int32_t i)
{
    for (;;) {
        int32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < pp->ntimers && pp->timers[l]->when < pp->timers[m]->when)
            m = l;
        if (r < pp->ntimers && pp->timers[r]->when < pp->timers[m]->when)
            m = r;
        if (m == i)
            return;
        heap_swap(pp, i, m);
        i = m;
    }
}

static void update_timer0(gort_p_t *pp)
{
    bool had = atomic_load_explicit(&pp->timer0when, memory_order_relaxed) != 0;
    atomic_store_explicit(&pp->timer0when, pp->ntimers ? pp->timers[0]->when : 0,
                          memory_order_release);
    /* The bit only when the heap empties or stops being empty: it is a
     * locked instruction on a word other Ps share. */
    if (pp->ntimers && !had)
        gort__pmask_set(&gort__timerpmask, pp->id);
    else if (!pp->ntimers && had)
        gort__pmask_clear(&gort__timerpmask, pp->id);
}

/* timers_lock held. */
static void heap_add(gort_p_t *pp, gort__timer_t *t)
{
    if (pp->ntimers == pp->timerscap) {
        int32_t cap = pp->timerscap ? pp->timerscap * 2 : 16;
        gort__timer_t **nt = realloc(pp->timers, (size_t)cap * sizeof(*nt));
        if (!nt)
            gort__throw("out of memory growing a timer heap");
        pp->timers = nt;
        pp->timerscap = cap;
    }
    t->idx = pp->ntimers;
    pp->timers[pp->ntimers++] = t;
    atomic_store_explicit(&t->pp, pp, memory_order_release);
    sift_up(pp, t->idx);
    update_timer0(pp);
}

/* timers_lock held. */
static void heap_remove(gort_p_t *pp, gort__timer_t *t)
{
    int32_t i = t->idx;
    int32_t last = --pp->ntimers;
    if (i != last) {
        heap_swap(pp, i, last);
        sift_down(pp, i);
        sift_up(pp, i);
    }
    pp->timers[last] = NULL;
    t->idx = -1;
    /* release, and the heap's last write to t: whoever sees t->pp NULL
     * (acquire: unlink_deleted) may free or re-add t. */
    atomic_store_explicit(&t->pp, NULL, memory_order_release);
    update_timer0(pp);
}

/* timers_lock held.  Takes out a timer another P marked deleted.  The
 * state goes back to T_IDLE before heap_remove's release of t->pp = NULL,
 * so whoever sees t->pp NULL sees it idle. */
static void remove_deleted(gort_p_t *pp, gort__timer_t *t)
{
    atomic_store_explicit(&t->state, T_IDLE, memory_order_relaxed);
    heap_remove(pp, t);
    if (atomic_load_explicit(&pp->ndeleted, memory_order_relaxed) > 0)
        atomic_fetch_sub_explicit(&pp->ndeleted, 1, memory_order_relaxed);
}

/* timers_lock held.  Takes every marked timer out: the rest are packed
 * and the heap rebuilt, O(n). */
static void sweep_deleted(gort_p_t *pp)
{
    int32_t k = 0;
    for (int32_t i = 0; i < pp->ntimers; i++) {
        gort__timer_t *t = pp->timers[i];
        if (atomic_load_explicit(&t->state, memory_order_acquire) == T_DELETED) {
            atomic_store_explicit(&t->state, T_IDLE, memory_order_relaxed);
            t->idx = -1;
            atomic_store_explicit(&t->pp, NULL, memory_order_release);
            continue;
        }
        t->idx = k;
        pp->timers[k++] = t;
    }
    for (int32_t i = k; i < pp->ntimers; i++)
        pp->timers[i] = NULL;
    pp->ntimers = k;
    for (int32_t i = k / 2 - 1; i >= 0; i--)
        sift_down(pp, i);
    update_timer0(pp);
    atomic_store_explicit(&pp->ndeleted, 0, memory_order_relaxed);
}

/* A timer marked deleted by a stop on another P: out of its heap, under
 * that heap's lock.  Returns once t->pp is NULL or t is live in a heap.
 * Callers test t->pp, not t->state: the heap's holder sets T_IDLE before
 * it takes the timer out (remove_deleted), and a caller that saw T_IDLE
 * and went on freed the timer under heap_remove's feet, or found it
 * "added twice" (TSan, timer cross at 64 procs). */
static void unlink_deleted(gort__timer_t *t)
{
    for (;;) {
        gort_p_t *pp = atomic_load_explicit(&t->pp, memory_order_acquire);
        if (!pp)
            return;
        gort__lock(&pp->timers_lock);
        if (atomic_load_explicit(&t->pp, memory_order_relaxed) == pp) {
            if (atomic_load_explicit(&t->state, memory_order_relaxed) == T_DELETED)
                remove_deleted(pp, t);
            gort__unlock(&pp->timers_lock);
            return;
        }
        gort__unlock(&pp->timers_lock);
    }
}

void gort__timer_unlink(gort__timer_t *t)
{
    if (atomic_load_explicit(&t->pp, memory_order_acquire))
        unlink_deleted(t);
}

static gort_p_t *current_p(void)
{
    gort_m_t *m = gort__getm();
    if (m && m->p)
        return m->p;
    /* Not on an M with a P (a foreign thread, sysmon): use P 0. */
    return gort__allp[0];
}

void gort__timer_add(gort__timer_t *t)
{
    if (t->when <= 0)
        t->when = 1;
    if (atomic_load_explicit(&t->pp, memory_order_acquire))
        unlink_deleted(t); /* stopped on another P, maybe still in its heap */
    gort_p_t *pp = current_p();
    gort__lock(&pp->timers_lock);
    if (atomic_load_explicit(&t->pp, memory_order_relaxed) != NULL)
        gort__throw("timer added twice");
    heap_add(pp, t);
    atomic_store_explicit(&t->state, T_PENDING, memory_order_release);
    bool first = pp->timers[0] == t;
    /* Read under the lock: once it is dropped another M may run the timer
     * and move a periodic one's when (TSan). */
    int64_t when = t->when;
    gort__unlock(&pp->timers_lock);
    if (first)
        gort__wake_netpoller(when);
}

bool gort__timer_del(gort__timer_t *t)
{
    for (;;) {
        gort_p_t *pp = atomic_load_explicit(&t->pp, memory_order_acquire);
        if (!pp)
            return false;
        gort_m_t *m = gort__getm();
        if (!m || m->p != pp) {
            /* Another P's heap: mark it; that heap's next holder takes it
             * out.  Fails if the firing path claimed it (T_IDLE: its
             * running count is already up, time.c relies on that) or it
             * was stopped already. */
            uint32_t st = T_PENDING;
            if (!atomic_compare_exchange_strong_explicit(&t->state, &st, T_DELETED, memory_order_acq_rel,
                                                         memory_order_acquire))
                return false;
            /* A hint for the sweep only: the heap may have changed since
             * we read pp (never while time.c holds the channel lock). */
            atomic_fetch_add_explicit(&pp->ndeleted, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&gort__timers_marked, 1, memory_order_relaxed);
            return true;
        }
        gort__lock(&pp->timers_lock);
        if (atomic_load_explicit(&t->pp, memory_order_relaxed) == pp) {
            bool pending = atomic_load_explicit(&t->state, memory_order_relaxed) == T_PENDING;
            if (pending) {
                atomic_store_explicit(&t->state, T_IDLE, memory_order_relaxed);
                heap_remove(pp, t);
            } else {
                remove_deleted(pp, t);
            }
            gort__unlock(&pp->timers_lock);
            return pending;
        }
        gort__unlock(&pp->timers_lock);
    }
}

bool gort__timer_mod(gort__timer_t *t, int64_t when, int64_t period)
{
    bool pending = gort__timer_del(t);
    gort__timer_unlink(t);
    t->when = when;
    t->period = period;
    gort__timer_add(t);
    return pending;
}

void gort__timer_wait_idle(gort__timer_t *t)
{
    while (atomic_load_explicit(&t->running, memory_order_acquire) != 0)
        gort__osyield();
    if (atomic_load_explicit(&t->pp, memory_order_acquire))
        unlink_deleted(t);
}

/* Runs pp's expired timers.  Returns now (0 if it did not need to read the
 * clock); *next is pp's earliest remaining when (0: none); *ran says
 * whether any callback ran. */
int64_t gort__check_timers(gort_p_t *pp, int64_t now, int64_t *next, bool *ran)
{
    *ran = false;
    int64_t first = atomic_load_explicit(&pp->timer0when, memory_order_acquire);
    /* An empty heap holds no marked timers: the schedule of a P without
     * timers (every switch) pays only the load above. */
    if (first != 0 && unlikely(atomic_load_explicit(&pp->ndeleted, memory_order_relaxed) >= 16) &&
        gort__trylock(&pp->timers_lock)) {
        /* Stopped timers far in the future would sit there until due. */
        if (atomic_load_explicit(&pp->ndeleted, memory_order_relaxed) * 4 >= pp->ntimers)
            sweep_deleted(pp);
        first = pp->ntimers ? pp->timers[0]->when : 0;
        gort__unlock(&pp->timers_lock);
    }
    if (first == 0) {
        *next = 0;
        return now;
    }
    if (now == 0)
        now = gort__nanotime();
    if (now < first) {
        *next = first;
        return now;
    }
    if (!gort__trylock(&pp->timers_lock)) {
        /* Its owner or another stealer is at it; report it as pending. */
        *next = first;
        return now;
    }
    int fired = 0;
    gort_m_t *m = gort__getm();
    if (m)
        m->readybatch = 1;
    while (pp->ntimers > 0) {
        gort__timer_t *t = pp->timers[0];
        if (atomic_load_explicit(&t->state, memory_order_acquire) == T_DELETED) {
            remove_deleted(pp, t);
            continue;
        }
        if (t->when > now)
            break;
        int64_t delta = now - t->when;
        /* Count the callback and read what it needs before the timer
         * leaves the heap: a deleter that then sees t->pp == NULL (acquire,
         * pairing with the release in heap_remove) also sees running > 0
         * and may change seq, f and arg without racing with these reads
         * (time.c relies on both). */
        atomic_fetch_add_explicit(&t->running, 1, memory_order_relaxed);
        void (*f)(void *, uintptr_t, int64_t) = t->f;
        void *arg = t->arg;
        uintptr_t seq = atomic_load_explicit(&t->seq, memory_order_relaxed);
        if (t->period > 0) {
            /* Periodic: the next tick is the first multiple of period after
             * now, so a slow receiver drops ticks rather than queueing them.
             * Moved in place, never out of the heap: t->pp stays set, so a
             * concurrent gort__timer_del cannot see it transiently absent. */
            t->when += t->period * (1 + (now - t->when) / t->period);
            sift_down(pp, 0);
            update_timer0(pp);
        } else {
            /* Claim it against a stop on another P (acq_rel: the stop's
             * failed CAS then sees running raised above). */
            uint32_t st = T_PENDING;
            if (!atomic_compare_exchange_strong_explicit(&t->state, &st, T_IDLE, memory_order_acq_rel,
                                                         memory_order_relaxed)) {
                atomic_fetch_sub_explicit(&t->running, 1, memory_order_release);
                remove_deleted(pp, t); /* stopped just now */
                continue;
            }
            heap_remove(pp, t);
        }
        gort__unlock(&pp->timers_lock);
        f(arg, seq, delta);
        atomic_fetch_sub_explicit(&t->running, 1, memory_order_release);
        fired++;
        gort__lock(&pp->timers_lock);
    }
    *next = pp->ntimers ? pp->timers[0]->when : 0;
    gort__unlock(&pp->timers_lock);
    if (m)
        m->readybatch = 0;
    if (fired) {
        *ran = true;
        atomic_fetch_add_explicit(&pp->stats.timers_fired, (uint64_t)fired, memory_order_relaxed);
    }
    return now;
}

/* procresize: moves every timer of a dying P to `to`.  World stopped.  The
 * two heaps are never locked together (both locks have the same rank). */
void gort__timers_move(gort_p_t *from, gort_p_t *to)
{
    for (;;) {
        gort__timer_t *batch[64];
        int n = 0;
        gort__lock(&from->timers_lock);
        sweep_deleted(from); /* stopped ones do not move */
        while (from->ntimers > 0 && n < 64) {
            gort__timer_t *t = from->timers[from->ntimers - 1];
            heap_remove(from, t);
            batch[n++] = t;
        }
        gort__unlock(&from->timers_lock);
        if (n == 0)
            return;
        gort__lock(&to->timers_lock);
        for (int i = 0; i < n; i++)
            heap_add(to, batch[i]);
        gort__unlock(&to->timers_lock);
    }
}

int64_t gort__timers_earliest(void)
{
    int64_t min = 0;
    int32_t n = atomic_load_explicit(&gort__gomaxprocs, memory_order_acquire);
    for (int32_t i = 0; i < n; i++) {
        if (!gort__pmask_test(&gort__timerpmask, i))
            continue;
        int64_t w = atomic_load_explicit(&gort__allp[i]->timer0when, memory_order_acquire);
        if (w != 0 && (min == 0 || w < min))
            min = w;
    }
    return min;
}

/* ---- gort_sleep ---- */

static void sleep_ready(void *arg, uintptr_t seq, int64_t delta)
{
    (void)seq;
    (void)delta;
    gort__ready(arg, true);
}

/* Runs on g0 once the sleeper's context is saved: only now may the timer
 * fire and ready it. */
static bool sleep_commit(gort_g_t *gp, void *arg)
{
    (void)gp;
    gort__timer_add(arg);
    return true;
}

void gort_sleep(int64_t ns)
{
    if (ns <= 0)
        return;
    gort_g_t *gp = gort__rt_enter();
    if (!gp) {
        struct timespec ts = {ns / 1000000000, ns % 1000000000};
        while (nanosleep(&ts, &ts) != 0) {
        }
        return;
    }
    gort__timer_t *t = gp->sleeptimer;
    if (!t) {
        t = calloc(1, sizeof(*t));
        if (!t)
            gort__throw("out of memory allocating a timer");
        t->f = sleep_ready;
        t->arg = gp;
        t->idx = -1;
        gp->sleeptimer = t;
    }
    t->when = gort__nanotime() + ns;
    t->period = 0;
    gort__park(sleep_commit, t, WR_SLEEP);
    gort__rt_leave(gort__getg());
}
