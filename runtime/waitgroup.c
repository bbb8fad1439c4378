/*
 * waitgroup.c: sync.WaitGroup, as Go 1.19 writes it.
 *
 * _state packs the counter (high 32 bits) and the number of waiters (low
 * 32), so that "counter reached zero" and "who waits" are read in one
 * atomic.  Add that brings the counter to zero with waiters resets the
 * state and releases the semaphore once per waiter.
 */
#include "runtime.h"

static _Atomic uint64_t *wg_state(gort_waitgroup *wg) { return (_Atomic uint64_t *)&wg->_state; }
static _Atomic uint32_t *wg_sema(gort_waitgroup *wg) { return (_Atomic uint32_t *)&wg->_sema; }

void gort_wg_add(gort_waitgroup *wg, int64_t delta)
{
    gort_g_t *gp = gort__rt_enter();
    uint64_t state = atomic_fetch_add_explicit(wg_state(wg), (uint64_t)delta << 32, memory_order_acq_rel) +
                     ((uint64_t)delta << 32);
    int32_t v = (int32_t)(state >> 32);
    uint32_t w = (uint32_t)state;
    if (v < 0) {
        gort__rt_leave(gp);
        gort__panic_str("sync: negative WaitGroup counter");
    }
    if (w != 0 && delta > 0 && v == (int32_t)delta) {
        gort__rt_leave(gp);
        gort__panic_str("sync: WaitGroup misuse: Add called concurrently with Wait");
    }
    if (v > 0 || w == 0) {
        gort__rt_leave(gp);
        return;
    }
    /* Counter is zero and there are waiters: nobody may change the state
     * now, so a plain check catches misuse. */
    if (atomic_load_explicit(wg_state(wg), memory_order_acquire) != state) {
        gort__rt_leave(gp);
        gort__panic_str("sync: WaitGroup misuse: Add called concurrently with Wait");
    }
    atomic_store_explicit(wg_state(wg), 0, memory_order_release);
    for (; w != 0; w--)
        gort__semrelease(wg_sema(wg), false, 0);
    gort__rt_leave(gp);
}

void gort_wg_done(gort_waitgroup *wg) { gort_wg_add(wg, -1); }

void gort_wg_wait(gort_waitgroup *wg)
{
    (void)gort__rt_enter(); /* gp may change Ms while it waits: reread below */
    for (;;) {
        uint64_t state = atomic_load_explicit(wg_state(wg), memory_order_acquire);
        if ((int32_t)(state >> 32) == 0)
            break;
        if (atomic_compare_exchange_weak_explicit(wg_state(wg), &state, state + 1, memory_order_acq_rel,
                                                  memory_order_relaxed)) {
            gort__semacquire(wg_sema(wg), false, WR_SYNC_WAITGROUP_WAIT, 1);
            if (atomic_load_explicit(wg_state(wg), memory_order_acquire) != 0) {
                gort__rt_leave(gort__getg());
                gort__panic_str("sync: WaitGroup is reused before previous Wait has returned");
            }
            break;
        }
    }
    gort__rt_leave(gort__getg());
}
