/*
 * unwind.h: stack unwinding for dumps, the CPU profiler and sysmon's
 * safe-point check (prof/unwind.c).
 *
 * Every function fills pcs[] innermost first and returns how many it
 * wrote.  The convention on what a PC means, which symbolization needs:
 *   - gort__unwind_sigctx: pcs[0] is the interrupted PC itself; pcs[1..]
 *     are return addresses.
 *   - everything else: all entries are return addresses (look up pc-1 to
 *     find the call's line, as Go's traceback does).
 * A goroutine's unwind stops before gort__gstart, the first frame of every
 * goroutine: the last PC is inside gort__goentry, which calls the
 * goroutine's function.
 */
#ifndef GORT_PROF_UNWIND_H
#define GORT_PROF_UNWIND_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime.h"
#include "sysmon.h" /* gort__unwind_init: the caching policy, set by sysmon/preempt.c */

/* Frames a capture of a running goroutine keeps (Go prints at most 100). */
#define GORT_CAPTURE_MAX 128

/* Async-signal-safe (touches only the stack being unwound, libunwind's
 * per-thread cache and the loader's module list, which libunwind reads
 * under the recursive loader lock).  uctx is the third argument of an
 * SA_SIGINFO handler. */
/* The SIGURG handler's stack capture (gort__hooks.sigurg_capture): called
 * when m->capture_req is set.  Async-signal-safe. */
void gort__sigurg_capture(gort_m_t *m, void *uctx);

int gort__unwind_preempt(void *uctx, uintptr_t lo, uintptr_t hi, uintptr_t *pcs, int max);
int gort__unwind_sigctx(void *uctx, uintptr_t *pcs, int max);

/* A goroutine that is not running on a thread: from its saved context
 * (G_WAITING, G_RUNNABLE, G_PREEMPTED) or from the registers of its
 * syscall entry (G_SYSCALL).  Returns 0 for a goroutine that never ran
 * (no stack), -1 for one that is running (ask its M: gort__unwind_running),
 * -2 if it kept changing state while being read (without a stopped world a
 * parked goroutine may be resumed at any moment: the read is validated by
 * re-reading its state and retried).  Async-signal-safe. */
int gort__unwind_g(gort_g_t *gp, uintptr_t *pcs, int max);

/* The calling thread, skipping this function and `skip` more frames. */
int gort__unwind_self(uintptr_t *pcs, int max, int skip);

/* A goroutine running on another M: sets m->capture_req and sends SIGURG;
 * the SIGURG handler calls gort__sigurg_capture, which unwinds the
 * interrupted context into the M's capture buffer.  Waits at most
 * timeout_ns.  Returns the frame count (pcs[0] is the interrupted PC), or
 * -1 if no capture came back for gp (no handler, timeout, the goroutine
 * had stopped running, or the thread was not on the goroutine's stack).
 * Async-signal-safe (crash dumps use it), but it waits. */
int gort__unwind_running(gort_g_t *gp, uintptr_t *pcs, int max, int64_t timeout_ns);

/* Whether a SIGURG handler is installed at all (else a capture request
 * would never be answered).  Async-signal-safe. */
bool gort__capture_possible(void);

/* The per-M capture buffer (m->capture_buf). */
typedef struct gort_capture {
    _Atomic uint32_t seq;  /* bumped (release) by the handler after filling */
    _Atomic uint32_t busy; /* one requester at a time (CAS 0 -> 1) */
    gort_g_t *g;           /* goroutine that was on the M when it landed */
    int32_t n;             /* frames, or -1: not on that goroutine's stack */
    uintptr_t pcs[GORT_CAPTURE_MAX];
} gort_capture_t;

#endif
