/*
 * fiber_san.c: telling sanitizers and valgrind about goroutine stacks.
 *
 * ASan must know when the stack pointer moves to another stack, or it
 * reports false stack-buffer overflows and loses fake stacks:
 * __sanitizer_start_switch_fiber before each switch and
 * __sanitizer_finish_switch_fiber after it, on both sides.  TSan needs a
 * fiber per goroutine and __tsan_switch_to_fiber before each switch so it
 * tracks happens-before per goroutine, not per thread.  Valgrind needs each
 * stack registered (VALGRIND_STACK_REGISTER) or it takes a switch for a
 * huge stack-pointer change.
 *
 * The switch paths in sched.c call these hooks unconditionally; in a normal
 * build they compile to nothing (the valgrind ones cost a few instructions
 * only when running under valgrind).
 */
#include "runtime.h"

#include <valgrind/valgrind.h>

#if defined(GORT_ASAN)
#include <sanitizer/asan_interface.h>
#endif
#if defined(GORT_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

/* On the M's own thread, on g0, before it runs any goroutine. */
void gort__san_minit(gort_m_t *m)
{
    (void)m;
#if defined(GORT_TSAN)
    m->tsan_g0_fiber = __tsan_get_current_fiber();
#endif
}

void gort__san_g_created(gort_g_t *gp)
{
    if (RUNNING_ON_VALGRIND)
        gp->valgrind_stack_id = VALGRIND_STACK_REGISTER(gp->stack.lo, gp->stack.hi);
#if defined(GORT_TSAN)
    if (!gp->tsan_fiber)
        gp->tsan_fiber = __tsan_create_fiber(0);
#endif
}

void gort__san_g_destroyed(gort_g_t *gp)
{
    if (RUNNING_ON_VALGRIND && gp->valgrind_stack_id) {
        VALGRIND_STACK_DEREGISTER(gp->valgrind_stack_id);
        gp->valgrind_stack_id = 0;
    }
    /* The TSan fiber is kept with the G struct and reused by the next
     * goroutine that gets it: fibers are cheap to keep and costly to churn,
     * and a G is never freed.  Its stack is handed to another G, so
     * nothing about it may survive. */
}

/* g0 -> G, just before gort__gogo. */
void gort__san_g0_to_g(gort_m_t *m, gort_g_t *gp)
{
    (void)m;
    (void)gp;
#if defined(GORT_ASAN)
    __sanitizer_start_switch_fiber(&m->g0_fake_stack, (void *)gp->stack.lo, gp->stack.hi - gp->stack.lo);
#endif
#if defined(GORT_TSAN)
    __tsan_switch_to_fiber(gp->tsan_fiber, 0);
#endif
}

/* First thing on the G after arriving from g0. */
void gort__san_after_g0_to_g(gort_g_t *gp)
{
    (void)gp;
    atomic_store_explicit(&gort__getm()->ing, 1, memory_order_relaxed); /* see m->ing */
#if defined(GORT_ASAN)
    __sanitizer_finish_switch_fiber(gp->asan_fake_stack, NULL, NULL);
#endif
}

/* G -> g0, just before gort__mcall.  dying: the G's stack is about to be
 * reused, so ASan must drop its fake stack. */
void gort__san_g_to_g0(gort_m_t *m, gort_g_t *gp, bool dying)
{
    (void)gp;
    (void)dying;
    /* Not a sanitizer matter, but this is the one place every switch to
     * g0 passes: see m->ing. */
    atomic_store_explicit(&m->ing, 0, memory_order_relaxed);
#if defined(GORT_ASAN)
    __sanitizer_start_switch_fiber(dying ? NULL : &gp->asan_fake_stack, (void *)m->g0lo,
                                   m->g0top - m->g0lo);
#endif
#if defined(GORT_TSAN)
    __tsan_switch_to_fiber(m->tsan_g0_fiber, 0);
#endif
}

/* First thing on g0 after arriving from a G. */
void gort__san_after_g_to_g0(gort_m_t *m)
{
    (void)m;
#if defined(GORT_ASAN)
    __sanitizer_finish_switch_fiber(m->g0_fake_stack, NULL, NULL);
#endif
}
