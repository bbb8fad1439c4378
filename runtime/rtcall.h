/*
 * rtcall.h: a public call's way into the runtime and back: gort__getg,
 * gort__rt_enter/gort__rt_leave (g->inrt, written by the goroutine only) and
 * the safe point on the way out (sched.c, syscall.c).
 */
#ifndef GORT_RUNTIME_RTCALL_H
#define GORT_RUNTIME_RTCALL_H

#include "fork.h"
#include "g.h"
#include "m.h"
#include "util.h"

static inline gort_g_t *gort__getg(void)
{
    gort_m_t *m = gort__getm();
    return m ? m->curg : NULL;
}

/* Entered at the top of every public call that uses the M's P while a
 * goroutine runs.  g->inrt tells sysmon the M is inside the runtime (its P
 * must not be retaken); the signal fence orders the store before the
 * pstate check as seen from sysmon's membarrier (asymmetric Dekker: the
 * heavy barrier is on sysmon's side, this side is two plain accesses). */
void gort__rt_enter_slow(gort_m_t *m);
static inline gort_g_t *gort__rt_enter(void)
{
    gort_m_t *m = gort__getm();
    gort_g_t *gp = m ? m->curg : NULL;
    if (gp) {
        GORT_OWNER_ADD(&gp->inrt, 1);
        atomic_signal_fence(memory_order_seq_cst);
        if (unlikely(atomic_load_explicit(&m->pstate, memory_order_relaxed) != 0))
            gort__rt_enter_slow(m);
    } else {
        /* A thread without a goroutine: in a forked child, the forking
         * thread was not one (a goroutine's M has pstate FORKED). */
        gort__fork_check();
    }
    return gp;
}
static inline void gort__rt_leave(gort_g_t *gp)
{
    if (gp) {
#if defined(GORT_TSAN)
        /* What the M did in the runtime happens before a revoke of its P
         * (sysmon acquires after membarrier(2), which TSan cannot see). */
        __tsan_release(&gp->inrt);
#endif
        atomic_signal_fence(memory_order_seq_cst);
        GORT_OWNER_ADD(&gp->inrt, -1);
    }
}
/* Checks g->preempt at a runtime call and yields if asked. */
void gort__preempt_check(void);
/* Leaving an API call is a safe point, like a Go function prologue: a
 * goroutine asked to yield (sysmon's slice, stop-the-world) does it here,
 * still inside the runtime.  Without it a goroutine that spends most of
 * its time in runtime calls (a spawner, a try-send loop) was preempted
 * only when a signal happened to land in its own code. */
static inline void gort__rt_leave_preempt(gort_g_t *gp)
{
    if (gp) {
        if (unlikely(atomic_load_explicit(&gp->preempt, memory_order_relaxed)) &&
            atomic_load_explicit(&gp->inrt, memory_order_relaxed) == 1)
            gort__preempt_check();
        gort__rt_leave(gp);
    }
}
static inline void gort__m_locks_add(gort_m_t *m, int32_t d) { GORT_OWNER_ADD(&m->locks, d); }

#endif /* GORT_RUNTIME_RTCALL_H */
