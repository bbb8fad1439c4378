/*
 * cxx.h: the C++ runtime's per-thread exception state, carried by the
 * goroutine (cxx.c has the escape personality).
 *
 * libstdc++ and libc++abi keep, per thread, the exceptions being handled
 * (a list, from __cxa_begin_catch to __cxa_end_catch) and the count of
 * exceptions thrown and not yet caught (std::uncaught_exceptions): two
 * words, __cxa_eh_globals, found with __cxa_get_globals().  A goroutine
 * that blocks or is preempted between a throw and the end of its catch
 * block may resume on another thread; `throw;` there would rethrow that
 * thread's exception, or none.  So the two words belong to the goroutine:
 * saved into it and cleared on the thread whenever it leaves its M (the
 * switch to g0 that every park, yield, preemption and exit makes), and
 * put back on whichever thread runs it next.  g0 and idle threads hold
 * zeros.
 *
 * __cxa_get_globals is a weak reference: a C program has no C++ runtime
 * and the branch is all it pays.  It is not a gort symbol standing in for
 * a layer (scripts/layers): libstdc++ either is in the program or not.
 */
#ifndef GORT_RUNTIME_CXX_H
#define GORT_RUNTIME_CXX_H

#include "g.h"

extern void **__cxa_get_globals(void) __attribute__((weak));

/* The G that just left its thread (on g0, first thing after the mcall:
 * the same thread, and no C++ code runs between).  dying: the G ends, and
 * a reused G must start with nothing in flight.  Not on the G's side
 * before the mcall: there it was inlined into every blocking path on the
 * goroutine's stack (the channel operations' park, in gort_chan_recv and
 * gort_chan_send), and even as an out-of-line call it took those frames
 * 16 bytes more.  That moved every parked goroutine's saved registers to
 * other cache lines and sets, relative to its on-stack sudog and to the
 * other goroutines' stacks, and the prime sieve's switches then missed
 * the cache in gort__gogo (cachegrind: about one miss per switch there,
 * none with the frames at their old size). */
static inline __attribute__((always_inline)) void gort__cxx_switch_out(gort_g_t *gp, bool dying)
{
    if (__builtin_expect(__cxa_get_globals != NULL, 0)) {
        void **eh = __cxa_get_globals();
        gp->cxx_eh[0] = dying ? NULL : eh[0];
        gp->cxx_eh[1] = dying ? NULL : eh[1];
        eh[0] = eh[1] = NULL;
    }
}

/* gp is about to run on this thread (on g0, before the gogo). */
static inline __attribute__((always_inline)) void gort__cxx_switch_in(gort_g_t *gp)
{
    if (__builtin_expect(__cxa_get_globals != NULL, 0)) {
        void **eh = __cxa_get_globals();
        eh[0] = gp->cxx_eh[0];
        eh[1] = gp->cxx_eh[1];
    }
}

#endif /* GORT_RUNTIME_CXX_H */
