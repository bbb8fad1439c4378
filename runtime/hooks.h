/*
 * hooks.h: the one way a lower layer calls a higher one.
 *
 * The layers, lowest first (docs/runtime.md, "Layers"; scripts/layers
 * checks them from `nm` of the objects on every `make test`):
 *
 *   runtime/   Gs, Ms, Ps, the scheduler, stacks, channels, select, sync,
 *              timers, system calls, signals, fatal errors
 *   sysmon/    the monitor thread, preemption, the PC classifier
 *   prof/      symbols, unwinding, dumps, crash reports, profiles, labels;
 *              prof/start.c (gort_main) brings every layer up
 *
 * A layer may call any layer below it directly.  Upward it calls only
 * through gort__hooks: a table of function pointers that each higher
 * layer fills for its own entries when prof/start.c starts it, before any
 * goroutine runs, and never changes afterwards.  Every entry may be NULL
 * (a test that drives the runtime without gort_main, or a program that
 * has not yet called gort_main), so each call site checks; gort__hook()
 * below does that for the calls that return nothing.
 *
 * Why a table and not weak symbols or prototypes: a weak reference hides
 * the dependency from the compiler and the linker (and pulls nothing out
 * of a static archive), and a prototype of a higher layer's function lets
 * the runtime need the whole profiler.  With the table the runtime's
 * objects have no undefined symbol that only sysmon/ or prof/ defines, and
 * what a higher layer does for the runtime is listed here in one place.
 *
 * The entries are written before the world starts (prof/start.c, under its
 * pthread_once) and read with plain loads afterwards: gort_main's start of
 * the world, and the creation of every thread, order them before any
 * reader.
 */
#ifndef GORT_HOOKS_H
#define GORT_HOOKS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "gort.h"

struct gort_g;
struct gort_m;
struct gort_p;

typedef struct gort_hooks {
    /* sysmon/sysmon.c */
    void (*sysmon_wake)(void);                 /* work appeared: look soon */
    /* a P entered a system call: wake sysmon if it sleeps with every P
     * idle, since only sysmon runs that P's timers or hands it off */
    void (*sysmon_wake_quiet)(void);
    void (*sysmon_count_handoff)(void);        /* a P left a wrapped system call */
    void (*stats_fill)(gort_stats *out);       /* sysmon's and preemption's counters */
    /* sysmon/preempt.c: ask m to give up its goroutine (g->preempt is set).
     * Without it goroutines yield only at runtime calls. */
    void (*preempt_m)(struct gort_m *m);

    /* prof/cpuprof.c: a thread enters/leaves the runtime (its CPU timer). */
    void (*m_start)(struct gort_m *m);
    void (*m_stop)(struct gort_m *m);
    /* prof/profiles.c: block and mutex profile events.  Called only when
     * gort__block_rate / gort__mutex_fraction are non-zero, which only the
     * profile API (prof/) sets. */
    void (*prof_block)(int64_t t0, int64_t t1, int skip);
    void (*prof_mutex)(int64_t wait_ns, int skip);
    /* prof/labels.c: a new goroutine inherits its creator's labels; a
     * dead one drops its own. */
    void (*labels_inherit)(struct gort_g *child, struct gort_g *parent);
    void (*labels_release)(struct gort_g *gp);
    /* prof/dump.c: the goroutine dump a fatal error prints.  Without it the
     * runtime prints the message only. */
    void (*dump_goroutines)(int fd, bool all, bool crashing);
    /* prof/cpuprof.c: the process is about to die of a fatal error: let
     * the CPU profile writer finish.  Async-signal-safe. */
    void (*before_fatal)(void);
    /* prof/cpuprof.c: sysmon's round (the profiler's per-round work). */
    void (*sysmon_tick)(int64_t now);
    /* prof/unwind.c: the SIGURG handler (sysmon/preempt.c) found
     * m->capture_req set.  Async-signal-safe. */
    void (*sigurg_capture)(struct gort_m *m, void *uctx);
    /* prof/trace.c: an execution-trace event (runtime/trace.h says which
     * and where); called only through gort__trace and gort__trace_ptaken. */
    void (*trace_ev)(int ev, struct gort_g *gp, struct gort_p *pp, uint64_t arg);
    /* prof/profiles.c: a goroutine profile is collecting and gp, about to
     * run, is not in it yet: record its stack first (proc.h,
     * gort__gprof_want).  On g0, no runtime lock held. */
    void (*gprof_record)(struct gort_g *gp);
    /* prof/unwind.c: the preemption check's walk of the interrupted
     * goroutine's stack [lo, hi) by cached unwind recipes: the PCs from
     * the interrupted one down to the goroutine's entry, or -1 where the
     * recipes do not reach it.  Async-signal-safe; without it the check
     * walks with libunwind. */
    int (*preempt_walk)(void *uctx, uintptr_t lo, uintptr_t hi, uintptr_t *pcs, int max);
} gort_hooks_t;

extern gort_hooks_t gort__hooks;

/* What makes a switch to a goroutine (sched.c, gort__execute) or from one
 * into a park (gort__park_m) take its slow path, one bit each, so that
 * the common switch tests one word and not each flag behind it:
 *   GORT_SWITCH_TRACE   a trace may be running (gort__tracing, trace.h)
 *   GORT_SWITCH_GPROF   a goroutine profile may be collecting
 *                       (gort__gprof_want, proc.h)
 *   GORT_SWITCH_CXX     the program has a C++ runtime (cxx.h)
 * A bit may be set while its flag is off (the slow path then tests the
 * flag itself, as every switch did before), never clear while the flag is
 * on: whoever turns a flag on sets its bit first, and clears the bit only
 * after turning the flag off, both with the world stopped or under the
 * one lock that serialises that flag's writers.  TRACE is cleared only by
 * gort_trace_stop: a trace cut off at exit or by a signal leaves it set.
 * CXX is set at runtime init and never cleared.
 *
 * Loaded with acquire by the switch: a read without GPROF pairs with the
 * release that cleared it after the profile's walk, as a read of
 * gort__gprof_want == 0 does (proc.h says why that matters). */
enum {
    GORT_SWITCH_TRACE = 1u << 0,
    GORT_SWITCH_GPROF = 1u << 1,
    GORT_SWITCH_CXX = 1u << 2,
};
extern __attribute__((visibility("hidden"))) _Atomic uint32_t gort__switch_slow;

/* Calls hook NAME with the arguments if a higher layer filled it. */
#define gort__hook(name, ...)                     \
    do {                                          \
        if (gort__hooks.name)                     \
            gort__hooks.name(__VA_ARGS__);        \
    } while (0)

#endif /* GORT_HOOKS_H */
