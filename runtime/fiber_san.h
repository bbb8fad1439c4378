/*
 * fiber_san.h: sanitizer fiber annotations around switches (fiber_san.c);
 * inline when no fiber-aware sanitizer is on.
 */
#ifndef GORT_RUNTIME_FIBER_SAN_H
#define GORT_RUNTIME_FIBER_SAN_H

#include "cxx.h"
#include "g.h"
#include "m.h"

/* Sanitizer fiber annotations around switches (fiber_san.c). */
#if defined(GORT_ASAN) || defined(GORT_TSAN)
/* slow: gort__switch_slow as the switch read it (hooks.h); these builds
 * test the C++ runtime themselves. */
void gort__san_g0_to_g(gort_m_t *m, gort_g_t *gp, uint32_t slow);
void gort__san_after_g0_to_g(gort_g_t *gp);
void gort__san_g_to_g0(gort_m_t *m, gort_g_t *gp, bool dying);
void gort__san_after_g_to_g0(gort_m_t *m, gort_g_t *gp, bool dying);
#else
/* Without a fiber-aware sanitizer only m->ing is left to keep (see
 * fiber_san.c): inline, as they run on every switch. */
/* slow: gort__switch_slow as the switch read it (hooks.h). */
static inline void gort__san_g0_to_g(gort_m_t *m, gort_g_t *gp, uint32_t slow)
{
    (void)m;
    if (slow & GORT_SWITCH_CXX)
        gort__cxx_switch_in(gp); /* also not a sanitizer matter */
}
static inline void gort__san_after_g0_to_g(gort_g_t *gp)
{
    atomic_store_explicit(&gp->m->ing, 1, memory_order_relaxed);
}
static inline void gort__san_g_to_g0(gort_m_t *m, gort_g_t *gp, bool dying)
{
    (void)gp;
    (void)dying;
    atomic_store_explicit(&m->ing, 0, memory_order_relaxed);
}
/* dying as for gort__san_g_to_g0.  The C++ state moves here, on g0, and
 * not before the mcall: see cxx.h. */
static inline void gort__san_after_g_to_g0(gort_m_t *m, gort_g_t *gp, bool dying)
{
    (void)m;
    gort__cxx_switch_out(gp, dying);
}
#endif
/* gort__san_after_g_to_g0 for a caller that has read gort__switch_slow
 * (hooks.h) into slow. */
static inline __attribute__((always_inline)) void gort__san_after_g_to_g0_flags(gort_m_t *m, gort_g_t *gp,
                                                                              bool dying, uint32_t slow)
{
#if defined(GORT_ASAN) || defined(GORT_TSAN)
    (void)slow;
    gort__san_after_g_to_g0(m, gp, dying);
#else
    if (slow & GORT_SWITCH_CXX)
        gort__san_after_g_to_g0(m, gp, dying);
#endif
}
void gort__san_minit(gort_m_t *m);
/* gort_main's scheduler stack as its own TSan fiber (returns the caller's). */
void *gort__san_main_enter(gort_m_t *m);
void gort__san_main_leave(gort_m_t *m, void *caller);
void gort__san_g_created(gort_g_t *gp);
/* Stack memory about to hold a G (gort__stack_carve): ASan forgets what
 * the frames of an earlier goroutine left poisoned there, and
 * LeakSanitizer scans it for pointers from then on. */
void gort__san_carved(void *p, size_t n);
void gort__san_g_destroyed(gort_g_t *gp);

#endif /* GORT_RUNTIME_FIBER_SAN_H */
