/*
 * rwmutex.c: gort_rwmutex, Go's sync.RWMutex (sync/rwmutex.go).
 *
 * _reader_count counts active readers; a writer announces itself by
 * subtracting RWMUTEX_MAX_READERS, so a negative count tells arriving
 * readers to park on _reader_sem (writer preference: once a writer waits,
 * no new reader gets in, so a stream of readers cannot starve it).  The
 * writer then waits on _writer_sem for the readers that were already in:
 * their number goes into _reader_wait, and the last of them to leave
 * releases the writer.  Unlock adds RWMUTEX_MAX_READERS back and releases
 * exactly the readers that queued meanwhile.  _w (a gort_mutex) orders
 * writers among themselves.
 *
 * Invariants: -MAX_READERS <= _reader_count + MAX_READERS*[writer] <
 * MAX_READERS; _reader_wait >= 0 except transiently while a writer and
 * departing readers race on it (the writer's add of the departed count
 * settles it, exactly as in Go).
 *
 * RLock/RUnlock are one atomic add when no writer is involved.  Misuse is
 * fatal with Go's words: RUnlock or Unlock of an unlocked RWMutex.
 */
#include "runtime.h"

#define RWMUTEX_MAX_READERS (1 << 30)

static inline _Atomic int32_t *rcount(gort_rwmutex *rw) { return (_Atomic int32_t *)&rw->_reader_count; }
static inline _Atomic int32_t *rwait(gort_rwmutex *rw) { return (_Atomic int32_t *)&rw->_reader_wait; }
static inline _Atomic uint32_t *wsem(gort_rwmutex *rw) { return (_Atomic uint32_t *)&rw->_writer_sem; }
static inline _Atomic uint32_t *rsem(gort_rwmutex *rw) { return (_Atomic uint32_t *)&rw->_reader_sem; }

void gort_rwmutex_rlock(gort_rwmutex *rw)
{
    gort__fork_check();
    /* acq_rel: acquire pairs with a writer's release in Unlock. */
    if (unlikely(atomic_fetch_add_explicit(rcount(rw), 1, memory_order_acq_rel) + 1 < 0)) {
        gort_g_t *gp = gort__rt_enter();
        gort__semacquire(rsem(rw), false, WR_SYNC_RWMUTEX_RLOCK, SEMA_PROF_BLOCK | SEMA_PROF_MUTEX);
        gort__rt_leave(gp);
    }
}

bool gort_rwmutex_tryrlock(gort_rwmutex *rw)
{
    gort__fork_check();
    int32_t c = atomic_load_explicit(rcount(rw), memory_order_relaxed);
    for (;;) {
        if (c < 0)
            return false;
        if (atomic_compare_exchange_weak_explicit(rcount(rw), &c, c + 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    }
}

static __attribute__((noinline)) void runlock_slow(gort_rwmutex *rw, int32_t r)
{
    if (r + 1 == 0 || r + 1 == -RWMUTEX_MAX_READERS)
        gort__fatal("sync: RUnlock of unlocked RWMutex");
    /* A writer is waiting: the last reader it waits for releases it. */
    if (atomic_fetch_sub_explicit(rwait(rw), 1, memory_order_acq_rel) - 1 == 0) {
        gort_g_t *gp = gort__rt_enter();
        gort__semrelease(wsem(rw), false, 1);
        gort__rt_leave(gp);
    }
}

void gort_rwmutex_runlock(gort_rwmutex *rw)
{
    gort__fork_check();
    int32_t r = atomic_fetch_sub_explicit(rcount(rw), 1, memory_order_release) - 1;
    if (unlikely(r < 0))
        runlock_slow(rw, r);
}

void gort_rwmutex_lock(gort_rwmutex *rw)
{
    gort__fork_check();
    gort_mutex_lock(&rw->_w);
    /* Announce the writer; r is the number of readers already inside. */
    int32_t r = atomic_fetch_add_explicit(rcount(rw), -RWMUTEX_MAX_READERS, memory_order_acq_rel);
    if (r != 0 && atomic_fetch_add_explicit(rwait(rw), r, memory_order_acq_rel) + r != 0) {
        gort_g_t *gp = gort__rt_enter();
        gort__semacquire(wsem(rw), false, WR_SYNC_RWMUTEX_LOCK, SEMA_PROF_BLOCK | SEMA_PROF_MUTEX);
        gort__rt_leave(gp);
    }
}

bool gort_rwmutex_trylock(gort_rwmutex *rw)
{
    gort__fork_check();
    if (!gort_mutex_trylock(&rw->_w))
        return false;
    int32_t z = 0;
    if (!atomic_compare_exchange_strong_explicit(rcount(rw), &z, -RWMUTEX_MAX_READERS, memory_order_acquire,
                                                 memory_order_relaxed)) {
        gort_mutex_unlock(&rw->_w);
        return false;
    }
    return true;
}

void gort_rwmutex_unlock(gort_rwmutex *rw)
{
    gort__fork_check();
    /* Let readers in again; r is how many queued while we held it. */
    int32_t r = atomic_fetch_add_explicit(rcount(rw), RWMUTEX_MAX_READERS, memory_order_acq_rel) +
                RWMUTEX_MAX_READERS;
    if (unlikely(r >= RWMUTEX_MAX_READERS))
        gort__fatal("sync: Unlock of unlocked RWMutex");
    if (r > 0) {
        gort_g_t *gp = gort__rt_enter();
        for (int32_t i = 0; i < r; i++)
            gort__semrelease(rsem(rw), false, 0);
        gort__rt_leave(gp);
    }
    gort_mutex_unlock(&rw->_w);
}
