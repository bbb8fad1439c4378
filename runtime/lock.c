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
 * Many waiters.  At most GORT_LOCK_MAX_SPINNERS threads spin on one lock
 * at a time; the rest go straight to the futex.  Spinners past a few only
 * add traffic on the lock's line and, with more threads than CPUs, burn
 * the CPU that the holder (descheduled) needs to let go.
 *
 * Starvation.  The lock is unfair on purpose: whoever is running when it
 * comes free takes it, which keeps it on one CPU's cache and never waits
 * for a sleeping thread to be scheduled.  But then a sleeper can lose
 * every race for as long as others keep coming.  So a waiter that has
 * waited STARVE_NS (Go's sync.Mutex starvation threshold) marks the held
 * key GORT_LOCK_STARVING; the unlock that sees the mark stores
 * GORT_LOCK_HANDOFF instead of 0, which no fast path can take, and wakes
 * the starving waiter (its own futex bitset), which takes it.  That hands
 * off only after a millisecond of losing, so the cost of hand-off (the
 * lock idles until one chosen thread runs: what makes ticket and queue
 * locks collapse when a waiter is descheduled) is paid rarely.  The unlock
 * reads the mark with a plain load before its plain store, so a mark set
 * in between is lost; the starving waiter sees the key change (its futex
 * wait fails or times out after SLEEP_FIRST_NS) and marks it again.
 *
 * Statistics: gort_stats.lock_contended counts contended acquisitions
 * (per M); GORT_DEBUG=lockstat=1 counts, per lock class (rank),
 * acquisitions, contended ones, spin rounds, sleeps, wakes and hold time;
 * with the mutex profile on, an M's waits are charged to it at its next
 * schedule.  membarrier(2) calls are shared between callers that need
 * one at the same time (gort__membarrier).
 *
 * Notes are one-shot wakeups used to park Ms.  Every wait loops on the key,
 * so spurious futex returns and EINTR (our own SIGURG and SIGPROF land on
 * parked threads too) are harmless.
 *
 * Rejected: pthread_mutex (adds a second lock word, no rank checking, and
 * its futex use is no faster); a pure spinlock (an M preempted by the
 * kernel while holding it would make every waiter burn its slice); a
 * ticket or queue (MCS) lock: strictly fair, so every hand-off waits for
 * the next thread in line to run, and with more threads than CPUs (our
 * Ms at 128 Ps on a small machine) that thread is often descheduled; the
 * queue lock also needs a locked instruction on every unlock, the cost the
 * plain-store unlock removed.
 */
#include "runtime.h"

#include <errno.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

bool gort__have_membarrier;
__thread uint64_t gort__tls_syscalls;
bool gort__lockstat_on;

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
 * sleepers, the one-P channel-lock revoke).  Only if gort__have_membarrier.
 *
 * Callers share barriers.  What each caller needs is one barrier that
 * starts after its call does (after its own store, which every caller
 * makes with a locked instruction first) and ends before it returns; any
 * thread's barrier that does so serves every caller waiting at the time.
 * mb_seq counts barriers twice: odd while one is in flight, even when
 * none is.  A caller that reads an even s needs the next barrier to end
 * (seq s + 2); one that reads an odd s cannot use the barrier in flight
 * (it may have passed its CPU before our store) and needs the one after
 * (s + 3).  Whoever finds none in flight issues one.  Each membarrier(2)
 * sends an IPI to every CPU running one of our threads, and the kernel
 * serialises them behind one mutex, so with many sleepers at once the
 * calls would queue: sharing turns that queue into one call.
 * gort__membarrier_calls counts the system calls made (tests). */
_Atomic uint32_t gort__mb_seq;
static _Atomic uint32_t mb_waiters;
#define mb_seq gort__mb_seq
_Atomic uint64_t gort__membarrier_calls;

void gort__membarrier(void)
{
    /* seq_cst: the load comes after the caller's store in every thread's
     * view (the caller's own locked instruction already ordered it). */
    uint32_t s = atomic_load_explicit(&mb_seq, memory_order_seq_cst);
    uint32_t target = (s + 3) & ~1u;
    for (int spins = 0;; spins++) {
        uint32_t v = atomic_load_explicit(&mb_seq, memory_order_acquire);
        if ((int32_t)(v - target) >= 0)
            return;
        if ((v & 1) == 0) {
            if (!atomic_compare_exchange_strong_explicit(&mb_seq, &v, v + 1, memory_order_acq_rel,
                                                         memory_order_relaxed))
                continue;
            gort__tls_syscalls++;
            atomic_fetch_add_explicit(&gort__membarrier_calls, 1, memory_order_relaxed);
            /* Registered and tried at init, so it cannot fail now; if it
             * did, the orderings that rely on it would not hold. */
            if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0)
                gort__throw("membarrier failed: errno=%d", errno);
            /* seq_cst store, then the waiter count: a Dekker pair with
             * the waiter's increment and its futex's check of mb_seq. */
            atomic_store_explicit(&mb_seq, v + 2, memory_order_seq_cst);
            if (atomic_load_explicit(&mb_waiters, memory_order_seq_cst) != 0)
                gort__futex_wake(&mb_seq, INT32_MAX);
            if ((int32_t)(v + 2 - target) >= 0)
                return;
            continue;
        }
        /* Another thread's barrier is in flight: it takes microseconds. */
        if (spins < 64) {
            gort__cpu_relax();
            continue;
        }
        atomic_fetch_add_explicit(&mb_waiters, 1, memory_order_seq_cst);
        if (atomic_load_explicit(&mb_seq, memory_order_seq_cst) == v)
            gort__futex_wait(&mb_seq, v, -1);
        atomic_fetch_sub_explicit(&mb_waiters, 1, memory_order_relaxed);
    }
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
    gort__tls_syscalls++;
    (void)syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, tsp, NULL, 0);
}

void gort__futex_wake(_Atomic uint32_t *addr, int n)
{
    gort__tls_syscalls++;
    (void)syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

void gort__osyield(void)
{
    gort__tls_syscalls++;
    sched_yield();
}

void gort__usleep(int64_t us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    gort__tls_syscalls++;
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
    atomic_store_explicit(&l->spinners, 0, memory_order_relaxed);
    l->rank = (uint8_t)rank;
}

/* ---- lock statistics ---- */

/* One class per rank: channel locks are one class, as are the P timer
 * locks and the semaphore roots.  Shared atomics: lockstat is a debugging
 * mode, and its counts (not its timings) are what scripts/scale reads. */
typedef struct lsclass {
    _Atomic uint64_t acq, contended, spins, sleeps, wakes, hold_ns, handoffs;
} lsclass_t;
static lsclass_t lsclasses[LR_LEAF + 1];
static _Atomic uint64_t contended_nom; /* contended acquisitions off any M */

static lsclass_t *lsclass(gort_lock_t *l) { return &lsclasses[l->rank <= LR_LEAF ? l->rank : LR_NONE]; }

static const char *rank_name(int r)
{
    switch (r) {
    case LR_NONE: return "unranked";
    case LR_WORLD: return "world";
    case LR_CHAN: return "chan";
    case LR_SEMAROOT: return "semaroot";
    case LR_PROFBUF: return "profbuf";
    case LR_SCHED: return "sched";
    case LR_ALLM: return "allm";
    case LR_ALLG: return "allg";
    case LR_TIMERS: return "timers";
    case LR_GFREE: return "gfree";
    case LR_STACKSCAV: return "stackscav";
    case LR_STACKPOOL: return "stackpool";
    case LR_SUDOG: return "sudog";
    case LR_LEAF: return "leaf";
    default: return NULL;
    }
}

void gort__lockstat_acquired(gort_lock_t *l)
{
    atomic_fetch_add_explicit(&lsclass(l)->acq, 1, memory_order_relaxed);
    gort_m_t *m = gort__getm();
    if (m && m->ls_n < (int)(sizeof m->ls_lock / sizeof m->ls_lock[0])) {
        m->ls_lock[m->ls_n] = l;
        m->ls_t0[m->ls_n++] = gort__nanotime();
    }
}

void gort__lockstat_released(gort_lock_t *l)
{
    gort_m_t *m = gort__getm();
    if (!m)
        return;
    for (int i = m->ls_n - 1; i >= 0; i--) {
        if (m->ls_lock[i] == l) {
            atomic_fetch_add_explicit(&lsclass(l)->hold_ns, (uint64_t)(gort__nanotime() - m->ls_t0[i]),
                                      memory_order_relaxed);
            m->ls_lock[i] = m->ls_lock[m->ls_n - 1];
            m->ls_t0[i] = m->ls_t0[m->ls_n - 1];
            m->ls_n--;
            return;
        }
    }
}

int gort__lockstat_format(char *buf, int off, int cap)
{
    for (int r = 0; r <= LR_LEAF && off < cap; r++) {
        lsclass_t *c = &lsclasses[r];
        uint64_t acq = atomic_load_explicit(&c->acq, memory_order_relaxed);
        if (acq == 0 || !rank_name(r))
            continue;
        int n = snprintf(buf + off, (size_t)(cap - off), " lock %s=%llu/%llu/%llu/%llu/%llu/%lluns", rank_name(r),
                         (unsigned long long)acq,
                         (unsigned long long)atomic_load_explicit(&c->contended, memory_order_relaxed),
                         (unsigned long long)atomic_load_explicit(&c->spins, memory_order_relaxed),
                         (unsigned long long)atomic_load_explicit(&c->sleeps, memory_order_relaxed),
                         (unsigned long long)atomic_load_explicit(&c->wakes, memory_order_relaxed),
                         (unsigned long long)atomic_load_explicit(&c->hold_ns, memory_order_relaxed));
        if (n < 0 || n >= cap - off)
            break;
        off += n;
    }
    return off;
}

void gort__lockstat_dump(int fd)
{
    char buf[256];
    for (int r = 0; r <= LR_LEAF; r++) {
        lsclass_t *c = &lsclasses[r];
        uint64_t acq = atomic_load_explicit(&c->acq, memory_order_relaxed);
        if (acq == 0 || !rank_name(r))
            continue;
        snprintf(buf, sizeof buf,
                 "lockstat: lock=%s acquisitions=%llu contended=%llu spins=%llu sleeps=%llu wakes=%llu "
                 "hold_ns=%llu handoffs=%llu\n",
                 rank_name(r), (unsigned long long)acq,
                 (unsigned long long)atomic_load_explicit(&c->contended, memory_order_relaxed),
                 (unsigned long long)atomic_load_explicit(&c->spins, memory_order_relaxed),
                 (unsigned long long)atomic_load_explicit(&c->sleeps, memory_order_relaxed),
                 (unsigned long long)atomic_load_explicit(&c->wakes, memory_order_relaxed),
                 (unsigned long long)atomic_load_explicit(&c->hold_ns, memory_order_relaxed),
                 (unsigned long long)atomic_load_explicit(&c->handoffs, memory_order_relaxed));
        gort__write_str(fd, buf);
    }
}

uint64_t gort__lock_contended_total(void)
{
    uint64_t n = atomic_load_explicit(&contended_nom, memory_order_relaxed);
    /* allm is append-only: the list read without allm_lock is a prefix of
     * it (each link is published before the M runs). */
    for (gort_m_t *m = __atomic_load_n(&gort__sched.allm, __ATOMIC_ACQUIRE); m;
         m = __atomic_load_n(&m->alllink, __ATOMIC_ACQUIRE))
        n += atomic_load_explicit(&m->lock_contended, memory_order_relaxed);
    return n;
}

/* Go charges runtime-lock contention to the mutex profile when the last
 * lock is released; the unlock here is inline and lock-free, so the waits
 * gathered by an M are charged at its next schedule instead, to the
 * scheduler's stack, where no lock is held (Go's
 * runtime._LostContendedRuntimeLock plays the same part). */
__attribute__((noinline)) void gort__lock_contention_flush(void)
{
    gort_m_t *m = gort__getm();
    if (!m || m->rtcont_n == 0)
        return;
    int64_t ns = m->rtcont_ns;
    uint32_t n = m->rtcont_n;
    m->rtcont_ns = 0;
    m->rtcont_n = 0;
    if (gort__hooks.prof_mutex)
        for (uint32_t i = 0; i < n; i++)
            gort__hooks.prof_mutex(ns / n, 1);
}

enum { SPIN_FIRST = 128, SPIN_CAP = 512, SPIN_BUDGET = 4096, PASSIVE_SPIN = 1 };
/* A sleeper's first wait, and every later one (see gort__lock_slow). */
#define SLEEP_FIRST_NS (20 * 1000)
#define SLEEP_RECHECK_NS (1000 * 1000)
/* A waiter this long gets the lock handed over (Go's sync.Mutex
 * starvationThresholdNs). */
#define STARVE_NS (1000 * 1000)
/* Futex bitsets: a hand-off wakes only a starving waiter (lock.c top). */
#define BITS_SLEEPER 1u
#define BITS_STARVER 2u

static inline bool try_take(gort_lock_t *l)
{
    uint32_t v = 0;
    return atomic_load_explicit(&l->key, memory_order_relaxed) == 0 &&
           atomic_compare_exchange_weak_explicit(&l->key, &v, 1, memory_order_acquire, memory_order_relaxed);
}

/* FUTEX_WAIT_BITSET: its timeout is absolute, on CLOCK_MONOTONIC. */
static void futex_wait_bits(_Atomic uint32_t *addr, uint32_t val, int64_t ns, uint32_t bits)
{
    int64_t at = gort__nanotime() + ns;
    struct timespec ts = {at / 1000000000, at % 1000000000};
    gort__tls_syscalls++;
    (void)syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_BITSET_PRIVATE, val, &ts, NULL, bits);
}

/* Contended.  Spin first, backing off: the first look comes after
 * SPIN_FIRST pauses, and the waits double up to SPIN_CAP.  Looking sooner
 * (Go's 4 x 30 pauses) hands the lock (and its cache line) back and forth
 * between CPUs on every operation: chanthru at 2 procs ran much slower
 * (docs/benchmarks.md).  Then yield once, then sleep. */
static void lock_slow_wait(gort_lock_t *l, lsclass_t *c);

void gort__lock_slow(gort_lock_t *l)
{
    gort_m_t *m = gort__getm();
    if (m)
        atomic_store_explicit(&m->lock_contended,
                              atomic_load_explicit(&m->lock_contended, memory_order_relaxed) + 1,
                              memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&contended_nom, 1, memory_order_relaxed);
    lsclass_t *c = gort__lockstat_on ? lsclass(l) : NULL;
    if (c)
        atomic_fetch_add_explicit(&c->contended, 1, memory_order_relaxed);
    /* Runtime-lock waits feed the mutex profile, as Go's do. */
    bool prof = m && atomic_load_explicit(&gort__mutex_fraction, memory_order_relaxed) > 0;
    int64_t t0 = prof ? gort__nanotime() : 0;
    lock_slow_wait(l, c);
    if (prof) {
        m->rtcont_ns += gort__nanotime() - t0;
        m->rtcont_n++;
    }
}

/* A place among the spinners, if fewer than GORT_LOCK_MAX_SPINNERS spin. */
static bool spin_enter(gort_lock_t *l)
{
    uint8_t n = atomic_load_explicit(&l->spinners, memory_order_relaxed);
    do {
        if (n >= GORT_LOCK_MAX_SPINNERS)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&l->spinners, &n, (uint8_t)(n + 1), memory_order_relaxed,
                                                    memory_order_relaxed));
    return true;
}

/* Spin, then yield; true if that took the lock. */
static bool lock_spin(gort_lock_t *l, lsclass_t *c)
{
    for (int n = SPIN_FIRST, spent = 0; spent < SPIN_BUDGET; spent += n, n = n < SPIN_CAP ? 2 * n : n) {
        for (int j = 0; j < n; j++)
            gort__cpu_relax();
        if (c)
            atomic_fetch_add_explicit(&c->spins, 1, memory_order_relaxed);
        if (try_take(l))
            return true;
    }
    for (int i = 0; i < PASSIVE_SPIN; i++) {
        gort__osyield();
        if (try_take(l))
            return true;
    }
    return false;
}

/* The contended acquire: spin (if there is room among the spinners),
 * yield, sleep.  c: lockstat's class or NULL. */
static void lock_slow_wait(gort_lock_t *l, lsclass_t *c)
{
    if (spin_enter(l)) {
        bool got = lock_spin(l, c);
        atomic_fetch_sub_explicit(&l->spinners, 1, memory_order_relaxed);
        if (got)
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
     * pauses (~80 us) of contention first (or a full set of spinners),
     * which a runtime lock (held for nanoseconds, never across a block)
     * sees when its holder's thread was descheduled or many threads queue
     * on it.  After STARVE_NS of this, the lock is handed to us (top). */
    atomic_fetch_add_explicit(&l->sleepers, 1, memory_order_seq_cst);
    int64_t wait = SLEEP_FIRST_NS;
    int64_t since = gort__nanotime();
    bool starving = false;
    for (;;) {
        uint32_t k = atomic_load_explicit(&l->key, memory_order_relaxed);
        if (k == 0) {
            if (atomic_compare_exchange_weak_explicit(&l->key, &k, 1, memory_order_acquire, memory_order_relaxed))
                break;
            continue;
        }
        if (k == GORT_LOCK_HANDOFF) {
            /* Ours if we starve (more than one may, after a lost mark:
             * whoever comes first). */
            if (starving && atomic_compare_exchange_strong_explicit(&l->key, &k, 1, memory_order_acquire,
                                                                    memory_order_relaxed)) {
                if (c)
                    atomic_fetch_add_explicit(&c->handoffs, 1, memory_order_relaxed);
                break;
            }
            if (starving)
                continue;
        }
        if (!starving && gort__nanotime() - since >= STARVE_NS)
            starving = true;
        if (starving && k == 1) {
            /* Mark it: the unlock hands it to us.  A channel lock taken
             * the plain way (GORT_LOCK_SOLO) is not marked: its unlock is
             * a plain store that would lose the mark every time. */
            if (!atomic_compare_exchange_strong_explicit(&l->key, &k, 1 | GORT_LOCK_STARVING,
                                                         memory_order_relaxed, memory_order_relaxed))
                continue;
            k = 1 | GORT_LOCK_STARVING;
            wait = SLEEP_FIRST_NS;
        }
        if (c)
            atomic_fetch_add_explicit(&c->sleeps, 1, memory_order_relaxed);
        futex_wait_bits(&l->key, k, wait, starving ? BITS_SLEEPER | BITS_STARVER : BITS_SLEEPER);
        wait = SLEEP_RECHECK_NS;
    }
    atomic_fetch_sub_explicit(&l->sleepers, 1, memory_order_relaxed);
}

/* key, sleepers: what the unlock read just before storing 0.  Only the
 * address is used after that store (FUTEX_WAKE reads no memory): the
 * lock may already be freed. */
void gort__unlock_slow(gort_lock_t *l, uint32_t key, uint16_t sleepers)
{
    if (unlikely(key == 0 || key == GORT_LOCK_HANDOFF))
        gort__throw("unlock of unlocked lock");
    if (sleepers != 0) {
        /* The class before the wake: l may be freed once key is 0. */
        if (unlikely(gort__lockstat_on))
            atomic_fetch_add_explicit(&lsclass(l)->wakes, 1, memory_order_relaxed);
        gort__tls_syscalls++;
        (void)syscall(SYS_futex, (uint32_t *)&l->key, FUTEX_WAKE_BITSET_PRIVATE, 1, NULL, NULL, BITS_SLEEPER);
    }
}

/* The key has GORT_LOCK_STARVING: nobody but us writes it until we do (a
 * fast path wants 0, the starving waiter a key without the mark), so a
 * plain store passes it to the starving waiter. */
void gort__unlock_handoff(gort_lock_t *l)
{
    if (unlikely(gort__lockstat_on))
        atomic_fetch_add_explicit(&lsclass(l)->wakes, 1, memory_order_relaxed);
    atomic_store_explicit(&l->key, GORT_LOCK_HANDOFF, memory_order_release);
    gort__tls_syscalls++;
    (void)syscall(SYS_futex, (uint32_t *)&l->key, FUTEX_WAKE_BITSET_PRIVATE, 1, NULL, NULL, BITS_STARVER);
}

void gort__unlock_rare(gort_lock_t *l, uint32_t key, uint16_t sleepers)
{
    if (key & GORT_LOCK_STARVING) {
        /* A waiter starves: it gets the lock, not whoever comes next. */
        gort__unlock_handoff(l);
        return;
    }
    atomic_store_explicit(&l->key, 0, memory_order_release);
    gort__unlock_slow(l, key, sleepers);
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
    if (unlikely(gort__lockstat_on))
        gort__lockstat_acquired(l);
}

void gort__unlock_full(gort_lock_t *l)
{
    if (unlikely(gort__lockstat_on))
        gort__lockstat_released(l);
    uint32_t k = atomic_load_explicit(&l->key, memory_order_relaxed);
    uint16_t sl = atomic_load_explicit(&l->sleepers, memory_order_relaxed);
    if (k & GORT_LOCK_STARVING) {
        gort__unlock_handoff(l);
    } else {
        atomic_store_explicit(&l->key, 0, memory_order_release);
        if (k != 1 || sl != 0)
            gort__unlock_slow(l, k, sl);
    }
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
    if (unlikely(gort__lockstat_on))
        gort__lockstat_acquired(l);
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
