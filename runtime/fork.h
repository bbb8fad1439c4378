/*
 * fork.h: the runtime in a forked child (fork.c).
 */
#ifndef GORT_RUNTIME_FORK_H
#define GORT_RUNTIME_FORK_H

#include "base.h"

/* m->pstate of the forking M in the child: its next runtime call takes
 * gort__rt_enter's slow path, which ends the child. */
#define GORT_PSTATE_FORKED 3u

/* 1 in a forked child (atomic, relaxed: written once by the child's only
 * thread before any other code of the child runs). */
extern _Atomic int gort__forked_child;
/* Registers the atfork child handler (runtime init; idempotent). */
void gort__fork_init(void);
/* "fatal error: gort runtime used in a forked child ...", exit 2, no dump. */
__attribute__((noreturn)) void gort__forked_fatal(void);
static inline void gort__fork_check(void)
{
    if (__builtin_expect(atomic_load_explicit(&gort__forked_child, memory_order_relaxed), 0))
        gort__forked_fatal();
}

#endif /* GORT_RUNTIME_FORK_H */
