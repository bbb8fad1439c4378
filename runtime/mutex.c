/*
 * mutex.c: gort_mutex, Go's sync.Mutex (sync/mutex.go): the same state
 * word, the same two modes, written for C.
 *
 * _state: byte 0 is the lock (1 locked), byte 1 holds the flags woken (a
 * waiter is awake and competing, so Unlock need not wake another),
 * starving and handoff (a starving-mode handover is under way), and the
 * high 32 bits count the goroutines parked on _sema.  _sema is a runtime
 * semaphore (sema.c).  Zero is unlocked with nobody waiting.
 *
 * Normal mode: waiters queue FIFO, but a woken waiter competes with new
 * arrivals, which usually win (they are already running on a CPU).  A
 * waiter that loses requeues at the front (LIFO).  New arrivals may spin a
 * few times first while the holder runs on another M, as Go's
 * sync_runtime_canSpin allows: a multicore machine, more than one P, some
 * other P running, and nothing runnable on our own queue.
 *
 * Starvation mode: entered when a waiter has waited more than 1ms.  Unlock
 * hands the mutex directly to the first waiter (semrelease with handoff,
 * which also yields our P to it); arrivals neither spin nor take the lock,
 * they queue at the tail.  The waiter that gets it leaves starvation mode
 * when it is the last waiter or waited less than 1ms.  Normal mode is much
 * faster (a goroutine can take the lock many times in a row while it has
 * it hot); starvation mode bounds every waiter's wait.
 *
 * Lock is a CAS when uncontended.  Unlock is a plain store of the lock
 * byte, then a load of the waiter count, with no locked instruction (half
 * the cost of a lock/unlock pair).  The store cannot erase a waiter: the
 * count lives in other bytes.  But x86 may perform the count's load before
 * the store is visible, so an Unlock can miss a goroutine that counted
 * itself in meanwhile, and that goroutine would sleep with nobody to wake
 * it.  So the sleeper pays instead (an asymmetric Dekker, as sysmon's
 * retake does): after its count is in, it issues membarrier(2), which
 * makes every running thread of the process pass a full barrier.  Any
 * Unlock whose load came before that barrier has its store visible after
 * it: the sleeper then finds the lock byte clear and does Unlock's wake
 * itself (mutex_wake).  Before paying for the barrier the sleeper watches
 * the lock byte for ~2 us: seeing it clear settles the question without
 * one (after_count_in).  Waking twice is harmless in normal mode (one
 * woken waiter at a time, by CAS on the woken flag); in starving mode the
 * handoff flag, set by CAS, makes sure the lock is handed over once.
 * Without membarrier (old kernels, valgrind, GORT_DEBUG=mutexfence=1)
 * Unlock is Go's atomic add, and sleepers skip the barrier.  The fast
 * paths skip the runtime bracket (gort__rt_enter) that the slow paths take.
 *
 * Memory orders: acquiring CASes and the final state adds of a lock are
 * acquire; Unlock's store and add are release; the CASes of the slow
 * paths are acq_rel because they both observe and publish the waiter
 * count.
 *
 * Rejected: a futex mutex for goroutines (parks the whole M), a ticket
 * lock (strict FIFO collapses throughput whenever a waiter is descheduled).
 */
#define GORT_MUTEX_IMPL /* the real functions, not gort.h's inline macros */
#include "runtime.h"

enum {
    MUTEX_LOCKED = GORT_MUTEX_LOCKED,
    MUTEX_WOKEN = GORT_MUTEX_WOKEN,
    MUTEX_STARVING = GORT_MUTEX_STARVING,
    MUTEX_HANDOFF = GORT_MUTEX_HANDOFF,
    MUTEX_WAITER_SHIFT = GORT_MUTEX_WAITER_SHIFT,
    MUTEX_FORKED = GORT_MUTEX_FORKED,
};
#define MUTEX_WAITER ((int64_t)1 << MUTEX_WAITER_SHIFT)

bool gort__mutex_plain_unlock;
/* 0, but GORT_MUTEX_FORKED in a forked child (gort.h); written only by
 * the child's one thread, before anything else runs there. */
int64_t gort__mutex_unlocked;
void (*gort__mutex_sleep_hook)(gort_mutex *);
static void mutex_wake(gort_mutex *m);

/* Called once by runtime init (after gort__membarrier_init), before any
 * goroutine runs. */
void gort__mutex_init(void)
{
    bool ok = gort__have_membarrier && !gort__settings.mutexfence;
    atomic_store_explicit((_Atomic bool *)&gort__mutex_plain_unlock, ok, memory_order_relaxed);
}

void gort__mutex_forked(void)
{
    atomic_store_explicit((_Atomic int64_t *)&gort__mutex_unlocked, MUTEX_FORKED, memory_order_relaxed);
    atomic_store_explicit((_Atomic bool *)&gort__mutex_plain_unlock, false, memory_order_relaxed);
}

#define STARVATION_THRESHOLD_NS 1000000
#define ACTIVE_SPIN 4
/* Pauses between looks while spinning.  Go's 30 is tuned for Intel's
 * slower PAUSE; with a shorter PAUSE it had spinners take the lock's line
 * back from the holder.  128 was the fastest of the values tried on the
 * mutex bench at 2 procs (docs/benchmarks.md). */
#define ACTIVE_SPIN_CNT 128

static inline _Atomic int64_t *mstate(gort_mutex *m) { return (_Atomic int64_t *)&m->_u._state; }
static inline _Atomic uint32_t *msema(gort_mutex *m) { return (_Atomic uint32_t *)&m->_sema; }

/* Go's sync_runtime_canSpin.  Spinning is worth it only if someone else
 * may release the lock soon (another P runs) and we delay nobody (our
 * local queue is empty). */
static bool can_spin(int iter)
{
    if (iter >= ACTIVE_SPIN || atomic_load_explicit(&gort__ncpu, memory_order_relaxed) <= 1)
        return false;
    int32_t procs = atomic_load_explicit(&gort__gomaxprocs, memory_order_relaxed);
    if (procs <= atomic_load_explicit(&gort__sched.npidle, memory_order_relaxed) +
                     atomic_load_explicit(&gort__sched.nmspinning, memory_order_relaxed) + 1)
        return false;
    gort_m_t *m = gort__getm();
    if (!m || !m->p || !gort__runqempty(m->p))
        return false;
    return true;
}

static inline void do_spin(void)
{
    for (int i = 0; i < ACTIVE_SPIN_CNT; i++)
        gort__cpu_relax();
}

/* We have just counted ourselves in as a waiter, and an Unlock may have
 * missed that (see the top).  Watch the lock byte for a while first: if
 * we see it clear, the Unlock that cleared it is the only one that can
 * have missed us (whoever takes the lock after that point locks after
 * our count went in, and its Unlock's load comes after its own locking
 * CAS), so doing its wake is enough, no barrier.  Only when the holder
 * keeps it longer do we pay for membarrier.  At 2 procs the barrier on
 * every sleep was a large part of the mutex bench (its IPI stalls the
 * holder); the watch makes it rare there. */
#define WATCH_LOOKS 64
static void after_count_in(gort_mutex *m)
{
    bool seen_clear = false;
    for (int i = 0; i < WATCH_LOOKS; i++) {
        if ((atomic_load_explicit(mstate(m), memory_order_acquire) & MUTEX_LOCKED) == 0) {
            seen_clear = true;
            break;
        }
        gort__cpu_relax();
    }
    if (!seen_clear)
        gort__membarrier();
    mutex_wake(m);
}

/* gort.h's inline fast path ends here when it cannot take the lock. */
void gort__mutex_lock_slow(gort_mutex *m)
{
    gort_g_t *gp = gort__rt_enter();
    int64_t wait_start = 0;
    bool starving = false, awoke = false;
    int iter = 0;
    int64_t old = atomic_load_explicit(mstate(m), memory_order_relaxed);
    for (;;) {
        /* Spin only in normal mode while it is locked: in starvation mode
         * ownership goes to the waiters, spinning cannot win it. */
        if ((old & (MUTEX_LOCKED | MUTEX_STARVING)) == MUTEX_LOCKED && can_spin(iter)) {
            /* Tell Unlock someone is awake so it does not wake another. */
            if (!awoke && (old & MUTEX_WOKEN) == 0 && (old >> MUTEX_WAITER_SHIFT) != 0 &&
                atomic_compare_exchange_strong_explicit(mstate(m), &old, old | MUTEX_WOKEN,
                                                        memory_order_relaxed, memory_order_relaxed))
                awoke = true;
            do_spin();
            iter++;
            old = atomic_load_explicit(mstate(m), memory_order_relaxed);
            continue;
        }
        int64_t new = old;
        if ((old & MUTEX_STARVING) == 0)
            new |= MUTEX_LOCKED; /* never grab a starving mutex: it is handed over */
        if (old & (MUTEX_LOCKED | MUTEX_STARVING))
            new += MUTEX_WAITER;
        /* Switch to starvation, unless it got unlocked meanwhile (Unlock
         * expects waiters in starvation mode). */
        if (starving && (old & MUTEX_LOCKED))
            new |= MUTEX_STARVING;
        if (awoke) {
            if ((new & MUTEX_WOKEN) == 0)
                gort__fatal("sync: inconsistent mutex state");
            new &= ~MUTEX_WOKEN;
        }
        if (atomic_compare_exchange_strong_explicit(mstate(m), &old, new, memory_order_acq_rel,
                                                    memory_order_relaxed)) {
            if ((old & (MUTEX_LOCKED | MUTEX_STARVING)) == 0)
                break; /* locked by our CAS */
            /* Waited before: back to the front of the queue. */
            bool lifo = wait_start != 0;
            if (wait_start == 0)
                wait_start = gort__nanotime();
            if (unlikely(gort__mutex_sleep_hook != NULL))
                gort__mutex_sleep_hook(m);
            if (atomic_load_explicit((_Atomic bool *)&gort__mutex_plain_unlock, memory_order_relaxed))
                after_count_in(m);
            gort__semacquire(msema(m), lifo, WR_SYNC_MUTEX_LOCK, SEMA_PROF_BLOCK | SEMA_PROF_MUTEX);
            starving = starving || gort__nanotime() - wait_start > STARVATION_THRESHOLD_NS;
            old = atomic_load_explicit(mstate(m), memory_order_relaxed);
            if (old & MUTEX_STARVING) {
                /* Handed to us: the lock bit is not set, the handoff flag
                 * is, and we are still counted as a waiter; fix all three
                 * in one add. */
                if ((old & (MUTEX_LOCKED | MUTEX_WOKEN)) || !(old & MUTEX_HANDOFF) ||
                    (old >> MUTEX_WAITER_SHIFT) == 0)
                    gort__fatal("sync: inconsistent mutex state");
                int64_t delta = MUTEX_LOCKED - MUTEX_HANDOFF - MUTEX_WAITER;
                if (!starving || (old >> MUTEX_WAITER_SHIFT) == 1)
                    delta -= MUTEX_STARVING; /* leave starvation mode */
                atomic_fetch_add_explicit(mstate(m), delta, memory_order_acquire);
                break;
            }
            awoke = true;
            iter = 0;
        }
    }
    gort__rt_leave(gp);
}

/* The exported functions are gort.h's inline fast paths, out of line. */
void gort_mutex_lock(gort_mutex *m) { gort__mutex_lock_fast(m); }

bool gort_mutex_trylock(gort_mutex *m)
{
    gort__fork_check();
    int64_t old = atomic_load_explicit(mstate(m), memory_order_relaxed);
    if (old & (MUTEX_LOCKED | MUTEX_STARVING))
        return false;
    /* A woken waiter may be about to take it; we still may, as Go does. */
    return atomic_compare_exchange_strong_explicit(mstate(m), &old, old | MUTEX_LOCKED,
                                                   memory_order_acquire, memory_order_relaxed);
}

/* What Unlock does after clearing the lock bit when goroutines wait:
 * Go's unlockSlow, on the state as it is now.  Also run by a goroutine
 * about to sleep (gort__mutex_lock_slow), in case an Unlock missed its
 * count; so every step is a CAS that only one of them can win. */
static void mutex_wake(gort_mutex *m)
{
    int64_t old = atomic_load_explicit(mstate(m), memory_order_relaxed);
    for (;;) {
        if ((old >> MUTEX_WAITER_SHIFT) == 0 || (old & MUTEX_LOCKED))
            return; /* nobody to wake, or someone took it */
        int64_t new;
        bool handoff = old & MUTEX_STARVING;
        if (handoff) {
            /* Starving: hand the lock to the first waiter, once.  The
             * lock bit stays clear (the waiter sets it and clears the
             * handoff flag); arrivals see the starving bit and queue. */
            if (old & MUTEX_HANDOFF)
                return;
            new = old | MUTEX_HANDOFF;
        } else {
            if (old & MUTEX_WOKEN)
                return; /* a waiter is awake already */
            new = (old - MUTEX_WAITER) | MUTEX_WOKEN;
        }
        if (atomic_compare_exchange_strong_explicit(mstate(m), &old, new, memory_order_acq_rel,
                                                    memory_order_relaxed)) {
            /* A handover also yields our P to the waiter, so it runs now. */
            gort__semrelease(msema(m), handoff, 2);
            return;
        }
    }
}

/* gort.h's plain-store unlock ends here when the waiter count is not 0. */
void gort__mutex_unlock_wake(gort_mutex *m)
{
    gort_g_t *gp = gort__rt_enter();
    mutex_wake(m);
    gort__rt_leave(gp);
}

/* gort.h's atomic-add unlock ends here when the state is not plain
 * "locked". */
void gort__mutex_unlock_slow(gort_mutex *m, int64_t new)
{
    gort__fork_check(); /* before new is read: in a forked child it is anything */
    if (((new + MUTEX_LOCKED) & MUTEX_LOCKED) == 0)
        gort__fatal("sync: unlock of unlocked mutex");
    gort_g_t *gp = gort__rt_enter();
    mutex_wake(m);
    gort__rt_leave(gp);
}

void gort_mutex_unlock(gort_mutex *m) { gort__mutex_unlock_fast(m); }
