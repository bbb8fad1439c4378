/*
 * stack.h: goroutine stacks (stack.c): the stack descriptor, its guard kinds
 * and the allocator's entry points.
 */
#ifndef GORT_RUNTIME_STACK_H
#define GORT_RUNTIME_STACK_H

#include "base.h"

typedef struct gort_stack {
    uintptr_t lo; /* lowest usable byte; the guard (if any) lies below */
    uintptr_t hi; /* one past the highest byte */
    int guard;    /* enum gort_guard_kind */
} gort_stack_t;

enum gort_guard_kind {
    GUARD_MADVISE = 1, /* MADV_GUARD_INSTALL: no VMA per guard */
    GUARD_MPROTECT,    /* a PROT_NONE page: two VMAs per stack */
    GUARD_CANARY,      /* no guard page: canary word checked at switches */
    GUARD_PENDING,     /* a fresh slot: guarded when first handed out */
};

void gort__stack_init(void);
bool gort__stack_alloc(gort_p_t *p, gort_stack_t *out);
void gort__stack_free(gort_p_t *p, gort_stack_t *s);
void gort__stack_pcache_flush(gort_p_t *p);
bool gort__stack_check(const gort_stack_t *s); /* canary intact */
size_t gort__stack_size(void);
uintptr_t gort__stack_guard_lo(const gort_stack_t *s);
/* A G placed at the top of its first stack (proc.c's malg): takes n
 * bytes (a multiple of the cache line, under a page) off the top of s, a
 * whole stack just taken with gort__stack_alloc, and returns their
 * address; false (s untouched) if s is not whole, i.e. an earlier G lives
 * at its top already.  The bytes never go back: s's hi stays below them
 * when it goes to the pool, and the scavenger keeps that page. */
bool gort__stack_carve(gort_stack_t *s, size_t n, void **out);
/* The lo of the stack whose carved top is hi (a placed G's first run). */
uintptr_t gort__stack_carved_lo(uintptr_t hi);
size_t gort__stack_scavenge(void);     /* sysmon: returns bytes given back */
uint64_t gort__stacks_allocated(void); /* counters for gort_stats_get */
uint64_t gort__stacks_pooled(void);
uint64_t gort__stack_pool_takes(void); /* pool_lock acquisitions to hand out stacks */

#endif /* GORT_RUNTIME_STACK_H */
