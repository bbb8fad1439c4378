/*
 * proc.h: goroutines (proc.c): creation, exit, free lists and the list of
 * all Gs (under allglock).
 */
#ifndef GORT_RUNTIME_PROC_H
#define GORT_RUNTIME_PROC_H

#include "g.h"
#include "lock.h"

/* Goroutines (proc.c) */
/* Returns the new goroutine's id: not its G, which may already have run,
 * exited and been reused by another newproc when this returns. */
uint64_t gort__newproc(void (*fn)(void *), void *arg, uintptr_t pc, bool main);
void gort__goentry(gort_g_t *gp) __attribute__((noreturn));
void gort__goexit(void) __attribute__((noreturn));
void gort__gfput(gort_p_t *pp, gort_g_t *gp);
void gort__gfpurge(gort_p_t *pp);
/* All Gs ever created, dead included; under allglock. */
extern gort_lock_t gort__allglock;
extern gort_g_t **gort__allgs;
extern size_t gort__nallgs;
extern _Atomic int64_t gort__ngoroutines; /* live user goroutines */
void gort__forallg(void (*fn)(gort_g_t *, void *), void *arg); /* takes allglock */

/* The goroutine profile collects with the world running (Go 1.19's
 * design, prof/profiles.c): it stops the world only to set
 * gort__gprof_want, and then every goroutine that was alive at that stop
 * is recorded, as it was then, either by the profiler's walk or by the
 * scheduler just before the goroutine next runs, whichever comes first.
 * g->profword == want: in this profile (or created since: newproc marks
 * those); want + 1: being recorded, must not run yet; anything else: not
 * yet.  want is even and non-zero while a profile collects, 0 otherwise;
 * written by the profiler with the world stopped (set) or running
 * (cleared), both release stores, and read with an acquire load on the
 * paths that run a goroutine (execute, a system call's exit): a stale
 * non-zero read costs only a call into the profiler, which checks its own
 * state under its lock.
 *
 * The acquire matters when it reads 0.  A profile reads Gs it does not
 * own (status, stack bounds, saved sp, the stack itself) until its walk
 * ends, and the walk ends only after every recording, by the walk or by a
 * scheduler, is done (it acquires each G's profword).  So a scheduler that
 * sees the profile over (0, released after the walk) may then change a G
 * the profile read: give a reused G a stack, lay out its first frame.
 * With a relaxed load nothing ordered the profile's reads before those
 * writes (TSan: gort__stack_alloc and gort__regsave_init against
 * gsnap_take; profiles test goroutine_churn).  On x86-64 an acquire load
 * is a plain load. */
extern GORT_HIDDEN _Atomic uint32_t gort__gprof_want; /* hidden: see trace.h */
static inline bool gort__gprof_pending(gort_g_t *gp)
{
    /* acquire: pairs with the profiler's release stores of want */
    uint32_t w = atomic_load_explicit(&gort__gprof_want, memory_order_acquire);
    /* acquire: pairs with the recorder's release store of profword */
    return __builtin_expect(w != 0, 0) && atomic_load_explicit(&gp->profword, memory_order_acquire) != w;
}

#endif /* GORT_RUNTIME_PROC_H */
