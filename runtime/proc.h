/*
 * proc.h: goroutines (proc.c): creation, exit, free lists and the list of
 * all Gs (under allglock).
 */
#ifndef GORT_RUNTIME_PROC_H
#define GORT_RUNTIME_PROC_H

#include "lock.h"

/* Goroutines (proc.c) */
gort_g_t *gort__newproc(void (*fn)(void *), void *arg, uintptr_t pc, bool main);
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

#endif /* GORT_RUNTIME_PROC_H */
