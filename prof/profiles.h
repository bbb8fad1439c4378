/*
 * profiles.h: what the profilers share (prof/cpuprof.c, prof/profiles.c,
 * prof/labels.c).  Not public API; include/gort_prof.h is.
 *
 * Label sets are immutable and reference counted.  A goroutine owns one
 * reference to the set in g->labels; a CPU sample, a goroutine-profile
 * record or an aggregated profile entry owns one more.  Taking a reference
 * is a single atomic add and is async-signal-safe, which is what lets the
 * SIGPROF handler carry labels into a sample: the handler runs on the
 * thread of the goroutine it samples, so that goroutine cannot drop the set
 * between the handler's load of g->labels and its increment.  Dropping the
 * last reference frees the set, which only ever happens outside signal
 * handlers.
 */
#ifndef GORT_PROF_PROFILES_H
#define GORT_PROF_PROFILES_H

#include <stdbool.h>
#include <stdint.h>

#include "pprof.h"
#include "runtime.h"

struct gort_labels {
    _Atomic int32_t ref;
    int32_t n;              /* pairs, sorted by key, keys unique */
    struct {
        const char *key, *value;
    } kv[];                 /* strings live in the same allocation */
};

/* Async-signal-safe. */
static inline void gort__labels_ref(gort_labels_t *l)
{
    if (l)
        atomic_fetch_add_explicit(&l->ref, 1, memory_order_relaxed);
}
/* Frees the set on the last reference.  Not in a signal handler. */
void gort__labels_unref(gort_labels_t *l);
extern _Atomic int64_t gort__labels_live; /* label sets allocated and not freed (tests) */

/* ---- turning stacks into pprof locations (profiles.c) ---- */

/* Per-profile cache from PC to location index, so that each PC is
 * symbolized once per profile. */
typedef struct gort_loccache gort_loccache_t;
gort_loccache_t *gort__loccache_new(gort__pprof_t *p, int symflags);
void gort__loccache_free(gort_loccache_t *c);
/* Appends the locations of pcs[0..n) to out (leaf first) and returns how
 * many; -ENOMEM.  exact0: pcs[0] is an interrupted PC, the others are
 * return addresses.  trim: drop the leading frames in libgort's internal
 * code (its public gort_* functions stay, as Go's profiles show
 * sync.(*Mutex).Unlock). */
int gort__stack_locs(gort_loccache_t *c, const uintptr_t *pcs, int n, bool exact0, bool trim, uint32_t *out);
/* pprof string labels for l (at most max).  Returns the count or -ENOMEM. */
int gort__labels_pprof(gort__pprof_t *p, const gort_labels_t *l, gort__pprof_label_t *out, int max);

/* The number of stacks in the block or mutex profile (the count on the
 * debug endpoint's index, as Go's Profile.Count); -ENOENT for another. */
int gort__prof_records(const char *name);
/* gort_cpuprofile_start writing to a duplicate of fd (the debug endpoint's
 * profile?seconds=N); -EBUSY while a profile runs. */
int gort__cpuprofile_start_fd(int fd, int hz);
/* Drains the CPU profiler's writer has made since the program started
 * (tests: an idle profile is not drained every DRAIN_MS). */
uint64_t gort__cpuprof_writer_rounds(void);

/* GORT_DEBUG_ADDR: starts the debug endpoint (debugserve.c); gort_main
 * calls it before the main goroutine is created. */
void gort__debug_env_start(void);

/* Writes all of buf to fd.  0 or a negative errno. */
int gort__write_all(int fd, const void *buf, size_t len);

/* Runs fn(arg) on the M's scheduler stack when called on a goroutine's
 * stack (symbolization wants more room than a goroutine may have). */
void gort__prof_on_big_stack(void (*fn)(void *), void *arg);

/* start.c: brings the runtime, prof and sysmon up, once (gort_main and
 * the profile API call it). */
void gort__start(void);

/* What prof/start.c puts in gort__hooks (runtime/hooks.h) and calls at
 * start-up; see hooks.h for when each runs. */
void gort__prof_init(void);                             /* cpuprof.c */
void gort__prof_at_exit(void);                          /* cpuprof.c */
void gort__prof_before_fatal(void);                     /* cpuprof.c */
void gort__prof_m_start(gort_m_t *m);                   /* cpuprof.c */
void gort__prof_m_stop(gort_m_t *m);                    /* cpuprof.c */
void gort__prof_sysmon_tick(int64_t now);               /* cpuprof.c */
void gort__prof_block(int64_t t0, int64_t t1, int skip); /* profiles.c */
void gort__prof_mutex(int64_t wait_ns, int skip);       /* profiles.c */
void gort__gprof_record(gort_g_t *gp); /* profiles.c: hooks.gprof_record */
void gort__labels_inherit(gort_g_t *child, gort_g_t *parent); /* labels.c */
void gort__labels_release(gort_g_t *gp);                /* labels.c */

#endif
