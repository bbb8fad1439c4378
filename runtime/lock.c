/*
 * lock.c: runtime locks and notes on Linux futexes.
 *
 * gort_lock_t is Go's lock_futex with a cheaper unlock: an uncontended
 * acquire is one CAS, and a release is a plain release store of 0 and a
 * read of the sleeper count, no locked instruction (a channel operation
 * is a lock and an unlock, and locked instructions were most of its cost).
 * A contended acquire spins with backoff, yields once, then counts itself
 * in sleepers and sleeps on the key; the price of the plain-store unlock
 * is that a sleeper can miss its wake-up in a nanosecond-wide race, so it
 * sleeps with a timeout (gort__lock_slow).  Holding a runtime lock counts
 * in m->locks, which makes the goroutine unpreemptible: the SIGURG handler
 * refuses to switch away from a thread that holds one.
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
#include <linux/membarrier.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

bool gort__have_membarrier;

/* Once, at runtime init, before any other thread of ours runs: the
 * registration must precede the first expedited barrier. */
void gort__membarrier_init(void)
{
    gort__have_membarrier = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0 &&
                            syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0;
    if (!gort__have_membarrier) /* an old kernel, or seccomp */
        gort__say_once("membarrier(2) is not available; sysmon will not take back Ps from threads "
                       "blocked in unwrapped calls, and mutexes unlock with a fence");
}

/* Every running thread of the process passes a full barrier (the slow
 * side of the asymmetric Dekker pairs: sysmon's retake, gort_mutex's
 * sleepers, the one-P channel-lock revoke).  Only if gort__have_membarrier. */
void gort__membarrier(void)
{
    /* Registered and tried at init, so it cannot fail now; if it did, the
     * orderings that rely on it would not hold. */
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0)
        gort__throw("membarrier failed: errno=%d", errno);
}

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
    atomic_store_explicit(&l->sleepers, 0, memory_order_relaxed);
    l->rank = (uint16_t)rank;
}

enum { SPIN_FIRST = 128, SPIN_CAP = 512, SPIN_BUDGET = 4096, PASSIVE_SPIN = 1 };
/* A sleeper's first wait, and every later one (see gort__lock_slow). */
#define SLEEP_FIRST_NS (20 * 1000)
#define SLEEP_RECHECK_NS (1000 * 1000)

static inline bool try_take(gort_lock_t *l)
{
    uint32_t v = 0;
    return atomic_load_explicit(&l->key, memory_order_relaxed) == 0 &&
           atomic_compare_exchange_weak_explicit(&l->key, &v, 1, memory_order_acquire, memory_order_relaxed);
}

/* Contended.  Spin first, backing off: the first look comes after
 * SPIN_FIRST pauses, and the waits double up to SPIN_CAP.  Looking sooner
 * (Go's 4 x 30 pauses) hands the lock (and its cache line) back and forth
 * between CPUs on every operation: chanthru at 2 procs ran much slower
 * (docs/benchmarks.md).  Then yield once, then sleep. */
void gort__lock_slow(gort_lock_t *l)
{
    for (int n = SPIN_FIRST, spent = 0; spent < SPIN_BUDGET; spent += n, n = n < SPIN_CAP ? 2 * n : n) {
        for (int j = 0; j < n; j++)
            gort__cpu_relax();
        if (try_take(l))
            return;
    }
    for (int i = 0; i < PASSIVE_SPIN; i++) {
        gort__osyield();
        if (try_take(l))
            return;
    }
    /* Sleep.  The unlocker reads sleepers and then stores 0 with a plain
     * store: no locked instruction on its path, but nothing stops our
     * increment from landing between its read and its store, while our
     * futex_wait still sees key 1; then nobody wakes us.  Only the unlock
     * in progress as we increment can miss us: any later holder took the
     * lock with a CAS after our (locked) increment and will read a
     * non-zero count.  So the first wait is short (SLEEP_FIRST_NS), which
     * bounds that miss; later waits are woken by later unlocks, with
     * SLEEP_RECHECK_NS as a backstop.  Sleeping at all needs SPIN_BUDGET
     * pauses (~80 us) of contention first, which a runtime lock (held for
     * nanoseconds, never across a block) sees when its holder's thread
     * was descheduled or many threads queue on it. */
    atomic_fetch_add_explicit(&l->sleepers, 1, memory_order_seq_cst);
    int64_t wait = SLEEP_FIRST_NS;
    while (!try_take(l)) {
        /* The key is 1, or GORT_LOCK_SOLO for a channel lock (chan.c). */
        uint32_t k = atomic_load_explicit(&l->key, memory_order_relaxed);
        if (k != 0)
            gort__futex_wait(&l->key, k, wait);
        wait = SLEEP_RECHECK_NS;
    }
    atomic_fetch_sub_explicit(&l->sleepers, 1, memory_order_relaxed);
}

/* key, sleepers: what the unlock read just before storing 0.  Only the
 * address is used after that store (FUTEX_WAKE reads no memory): the
 * lock may already be freed. */
void gort__unlock_slow(gort_lock_t *l, uint32_t key, uint16_t sleepers)
{
    if (unlikely(key == 0))
        gort__throw("unlock of unlocked lock");
    if (sleepers != 0)
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
        gort__lock_slow(l);
}

void gort__unlock_full(gort_lock_t *l)
{
    uint32_t k = atomic_load_explicit(&l->key, memory_order_relaxed);
    uint16_t sl = atomic_load_explicit(&l->sleepers, memory_order_relaxed);
    atomic_store_explicit(&l->key, 0, memory_order_release);
    if (k != 1 || sl != 0)
        gort__unlock_slow(l, k, sl);
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
