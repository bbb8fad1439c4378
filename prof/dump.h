/*
 * dump.h: what prof/dump.c offers prof/crash.c (and tests).  The runtime
 * reaches the dump through gort__hooks.dump_goroutines (runtime/hooks.h).
 */
#ifndef GORT_PROF_DUMP_H
#define GORT_PROF_DUMP_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime.h"

/* Go prints at most 100 frames of a goroutine. */
#define GORT_DUMP_MAX_FRAMES 100

/* A crash dump of the goroutine whose context a fatal signal interrupted
 * (gp may be NULL: the fault was not on a goroutine), then, if all, of
 * every other goroutine.  uctx is the signal's context.  runtime_view: show
 * libgort's internal frames of the crashing goroutine (a fault inside the
 * runtime).  symflags: GORT_SYM_TRYLOCK, or GORT_SYM_NODWARF when the
 * thread may hold a malloc lock.  Async-signal-safe in that sense: no
 * malloc unless symflags allow libdw, try-locks only, bounded waits.
 * Writes to fd. */
/* The goroutine dump (dump.c): the current goroutine, or all of them.
 * Safe in a crashing process (crashing): bounded allocation from a
 * preallocated arena and try-locks only.  The runtime reaches it through
 * gort__hooks.dump_goroutines. */
void gort__dump_goroutines(int fd, bool all, bool crashing);

/* crash.c: opens the symbol tables and installs the fatal-signal
 * handlers.  Called once by prof/start.c. */
void gort__crash_init(void);

void gort__dump_crash(int fd, gort_g_t *gp, void *uctx, bool all, bool runtime_view, int symflags);


/* A fault (SIGSEGV, SIGBUS) on a thread that is printing a dump lands in
 * crash.c's handler, which calls this: if the thread registered a recovery
 * point, it longjmps there (the dump notes the goroutine whose stack could
 * not be read and goes on) and does not return. */
void gort__dump_fault_recover(int sig);

/* Arms the crash watchdog (prof/crash.c): if the process is still alive
 * GORT_DUMP_TIMEOUT seconds (default 20) later, it exits anyway.
 * Async-signal-safe; only the first call counts. */
void gort__crash_watchdog_arm(void);

/* -1: stop the world for gort_dump/gort_stack(all) when asynchronous
 * preemption is linked in (sysmon), else read goroutines in place;
 * 0: never; 1: always.  For tests. */
extern int gort__dump_stw_mode;

#endif
