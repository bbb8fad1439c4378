/*
 * lock.c: runtime locks and notes on Linux futexes.
 *
 * gort_lock_t is Go's lock_futex: an uncontended acquire is one CAS; a
 * contended one spins a little (the holder is usually on another CPU and
 * about to release), yields once, then sleeps on the futex with the key set
 * to 2 so that the unlocker knows to wake someone.  Holding a runtime lock
 * counts in m->locks, which makes the goroutine unpreemptible: the SIGURG
 * handler refuses to switch away from a thread that holds one.
 *
 * Notes are one-shot wakeups used to park Ms.  Every wait loops on the key,
 * so spurious futex returns and EINTR (our own SIGURG and SIGPROF land on
 * parked threads too) are harmless.
 *
 * Rejected: pthread_mutex (adds a second lock word, no rank checking, and
 * its futex use is no faster); a pure spinlock (an M preempted by the
 * kernel while holding it would make every waiter burn its slice).
 */
#include "runtime.h"

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void gort__futex_wait(_Atomic uint32_t *addr, uint32_t val, int64_t ns)
{
    struct timespec ts, *tsp = NULL;
    if (ns >= 0) {
        ts.tv_sec = ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        tsp = &ts;
    }
    /* Return value deliberately ignored: callers re-check the word. */
    (void)syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, tsp, NULL, 0);
}

void gort__futex_wake(_Atomic uint32_t *addr, int n)
{
    (void)syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

void gort__osyield(void) { sched_yield(); }

void gort__usleep(int64_t us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

#ifdef GORT_DEBUG_BUILD
static void rank_acquire(gort_m_t *m, gort_lock_t *l)
{
    if (!m || l->rank == LR_NONE)
        return;
    for (int i = 0; i < m->nheld; i++) {
        uint16_t h = m->held_ranks[i];
        if (h > l->rank || (h == l->rank && !GORT_LOCKRANK_MULTI(h)))
            gort__throw("lock ordering problem: acquiring rank %d while holding rank %d",
                        l->rank, h);
    }
    if (m->nheld < 32)
        m->held_ranks[m->nheld++] = l->rank;
}

static void rank_release(gort_m_t *m, gort_lock_t *l)
{
    if (!m || l->rank == LR_NONE)
        return;
    for (int i = m->nheld - 1; i >= 0; i--) {
        if (m->held_ranks[i] == l->rank) {
            m->held_ranks[i] = m->held_ranks[--m->nheld];
            return;
        }
    }
}

void gort__assert_held(gort_lock_t *l)
{
    if (atomic_load_explicit(&l->key, memory_order_relaxed) == 0)
        gort__throw("lock not held (rank %d)", l->rank);
}
#else
#define rank_acquire(m, l) ((void)0)
#define rank_release(m, l) ((void)0)
#endif

void gort__lock_init(gort_lock_t *l, int rank)
{
    atomic_store_explicit(&l->key, 0, memory_order_relaxed);
    l->rank = (uint16_t)rank;
}

enum { ACTIVE_SPIN = 4, ACTIVE_SPIN_CNT = 30, PASSIVE_SPIN = 1 };

/* Contended: spin a little, yield, then sleep with the key at 2.  seen is
 * the key our failed CAS saw. */
void gort__lock_slow(gort_lock_t *l, uint32_t seen)
{
    /* Remember whether anyone may be sleeping: we must not overwrite 2
     * with 1 when we take the lock, or a sleeper would never be woken. */
    uint32_t wait = seen, v;
    for (;;) {
        for (int i = 0; i < ACTIVE_SPIN; i++) {
            while (atomic_load_explicit(&l->key, memory_order_relaxed) == 0) {
                v = 0;
                if (atomic_compare_exchange_weak_explicit(&l->key, &v, wait, memory_order_acquire,
                                                          memory_order_relaxed))
                    return;
            }
            for (int j = 0; j < ACTIVE_SPIN_CNT; j++)
                gort__cpu_relax();
        }
        for (int i = 0; i < PASSIVE_SPIN; i++) {
            while (atomic_load_explicit(&l->key, memory_order_relaxed) == 0) {
                v = 0;
                if (atomic_compare_exchange_weak_explicit(&l->key, &v, wait, memory_order_acquire,
                                                          memory_order_relaxed))
                    return;
            }
            gort__osyield();
        }
        v = atomic_exchange_explicit(&l->key, 2, memory_order_acquire);
        if (v == 0)
            return;
        wait = 2;
        gort__futex_wait(&l->key, 2, -1);
    }
}

/* old: what the unlocking exchange found (not 1). */
void gort__unlock_slow(gort_lock_t *l, uint32_t old)
{
    if (unlikely(old == 0))
        gort__throw("unlock of unlocked lock");
    if (old == 2)
        gort__futex_wake(&l->key, 1);
}

/* DEBUG builds: the same, plus lock-rank checks and a count check. */
void gort__lock_full(gort_lock_t *l)
{
    gort_m_t *m = gort__getm();
    if (m)
        gort__m_locks_add(m, 1);
    rank_acquire(m, l);
    uint32_t v = 0;
    if (!atomic_compare_exchange_strong_explicit(&l->key, &v, 1, memory_order_acquire,
                                                 memory_order_relaxed))
        gort__lock_slow(l, v);
}

void gort__unlock_full(gort_lock_t *l)
{
    uint32_t v = atomic_exchange_explicit(&l->key, 0, memory_order_release);
    if (v != 1)
        gort__unlock_slow(l, v);
    gort_m_t *m = gort__getm();
    if (m) {
        rank_release(m, l);
        if (atomic_load_explicit(&m->locks, memory_order_relaxed) <= 0)
            gort__throw("runtime lock count went negative");
        gort__m_locks_add(m, -1);
    }
}

bool gort__trylock(gort_lock_t *l)
{
    uint32_t v = 0;
    if (!atomic_compare_exchange_strong_explicit(&l->key, &v, 1, memory_order_acquire,
                                                 memory_order_relaxed))
        return false;
    gort_m_t *m = gort__getm();
    if (m)
        gort__m_locks_add(m, 1);
    rank_acquire(m, l);
    return true;
}

void gort__notewakeup(gort_note_t *n)
{
    uint32_t old = atomic_exchange_explicit(&n->key, 1, memory_order_release);
    if (unlikely(old != 0))
        gort__throw("notewakeup - double wakeup (%u)", old);
    gort__futex_wake(&n->key, 1);
}

void gort__notesleep(gort_note_t *n)
{
    while (atomic_load_explicit(&n->key, memory_order_acquire) == 0)
        gort__futex_wait(&n->key, 0, -1);
}

bool gort__notetsleep(gort_note_t *n, int64_t ns)
{
    if (ns < 0) {
        gort__notesleep(n);
        return true;
    }
    int64_t deadline = gort__nanotime() + ns;
    while (atomic_load_explicit(&n->key, memory_order_acquire) == 0) {
        int64_t left = deadline - gort__nanotime();
        if (left <= 0)
            return false;
        gort__futex_wait(&n->key, 0, left);
    }
    return true;
}
