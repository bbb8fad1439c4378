/*
 * lock_fast.h: the inline fast paths of the runtime lock (lock.c) and of
 * channel locks (chan.c, "One P"), placed after gort_m and gort_p, whose
 * fields they touch.
 */
#ifndef GORT_RUNTIME_LOCK_FAST_H
#define GORT_RUNTIME_LOCK_FAST_H

#include "lock.h"
#include "m.h"
#include "p.h"
#include "rtcall.h"
#include "util.h"

/* Inline, as a channel operation takes and drops its lock on every call.
 * The lock is one CAS; the unlock is a plain release store and a load of
 * the sleeper count, no locked instruction (lock.c says why that is safe). */
static inline void gort__lock(gort_lock_t *l)
{
#ifdef GORT_DEBUG_BUILD
    gort__lock_full(l);
#else
    gort_m_t *m = gort__getm();
    if (m)
        gort__m_locks_add(m, 1);
    uint32_t v = 0;
    if (unlikely(!atomic_compare_exchange_strong_explicit(&l->key, &v, 1, memory_order_acquire,
                                                          memory_order_relaxed)))
        gort__lock_slow(l);
    if (unlikely(gort__lockstat_on))
        gort__lockstat_acquired(l);
#endif
}
static inline void gort__unlock(gort_lock_t *l)
{
#ifdef GORT_DEBUG_BUILD
    gort__unlock_full(l);
#else
    /* Both read before the store: once it lands, the lock's memory may be
     * freed by the next holder (gort_chan_free). */
    uint32_t k = atomic_load_explicit(&l->key, memory_order_relaxed);
    uint16_t sl;
    gort_m_t *m = gort__getm();
    if (k == GORT_LOCK_SOLO) {
        /* A channel lock taken the plain way: never with lock statistics
         * on (stw.c). */
        sl = atomic_load_explicit(&l->sleepers, memory_order_relaxed);
        atomic_store_explicit(&l->key, 0, memory_order_release);
        GORT_OWNER_ADD(&m->p->chanheld, -1); /* after the store: see chan.c */
        /* A thread may sleep on a channel lock that the owner then takes
         * the plain way (it slept before a procresize back to one P). */
        if (unlikely(sl != 0))
            gort__unlock_slow(l, k, sl);
    } else {
        if (unlikely(gort__lockstat_on)) {
            gort__lockstat_released(l);
            k = atomic_load_explicit(&l->key, memory_order_relaxed);
        }
        sl = atomic_load_explicit(&l->sleepers, memory_order_relaxed);
        /* A starving key is not 1: one test for the common case. */
        if (likely(k == 1 && sl == 0))
            atomic_store_explicit(&l->key, 0, memory_order_release);
        else
            gort__unlock_rare(l, k, sl);
    }
    if (m)
        gort__m_locks_add(m, -1);
#endif
}

/* Channel locks.  With one P, channel locks are taken by plain stores
 * (key GORT_LOCK_SOLO) by whoever holds that P, and anyone else first
 * turns that off (chan.c, "One P").  Two locked instructions fewer per
 * channel hand-off. */
extern _Atomic int gort__chansolo;
extern _Atomic uint64_t gort__chansolo_revokes; /* for tests */
void gort__chan_lock_shared(gort_lock_t *l);
static inline __attribute__((always_inline)) void gort__chan_lock(gort_lock_t *l)
{
#ifndef GORT_DEBUG_BUILD
    gort_m_t *m = gort__getm();
    gort_p_t *pp = m ? m->p : NULL;
    if (likely(pp != NULL)) {
        if (atomic_load_explicit(&gort__chansolo, memory_order_relaxed)) {
            gort__m_locks_add(m, 1);
            GORT_OWNER_INC(&pp->chanheld);
            /* The count's store before the flag's load: a revoker's
             * membarrier orders them in hardware. */
            atomic_signal_fence(memory_order_seq_cst);
            if (likely(atomic_load_explicit(&gort__chansolo, memory_order_relaxed)) &&
                likely(atomic_load_explicit(&l->key, memory_order_acquire) == 0)) {
                /* No lockstat test: never solo with it on (stw.c). */
                atomic_store_explicit(&l->key, GORT_LOCK_SOLO, memory_order_relaxed);
                return;
            }
            GORT_OWNER_ADD(&pp->chanheld, -1);
            gort__m_locks_add(m, -1);
        }
        gort__lock(l);
        return;
    }
#endif
    gort__chan_lock_shared(l);
}

#endif /* GORT_RUNTIME_LOCK_FAST_H */
