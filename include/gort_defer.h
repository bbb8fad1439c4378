/*
 * gort_defer.h: frames for defer, panic and recover.
 *
 * gort.h declares gort_defer, gort_panic and gort_recover.  In Go a
 * deferred call belongs to the function that deferred it; C cannot see a
 * function return, so the unit is a frame:
 *
 *   - the goroutine's entry function (what gort_go / gort_main started);
 *   - each gort_call(fn, arg);
 *   - each deferred call while it runs.
 *
 * gort_defer attaches to the innermost frame; a frame's deferred calls run
 * last-in first-out when it returns or panics.  gort_recover, called
 * directly by a deferred call that a panic is running (not from a frame
 * nested inside that call), stops the panic; the frame that deferred the
 * recovering call then returns normally: gort_call returns false, and in
 * the entry frame the goroutine ends.  C frames between the panic and that
 * frame are abandoned by longjmp: see docs/idioms.md.
 */
#ifndef GORT_DEFER_H
#define GORT_DEFER_H

#include <stdbool.h>

#include "gort.h" /* GORT_API; gort.h includes this header back, guarded */

#ifdef __cplusplus
extern "C" {
#endif

/* Runs fn(arg) in a new frame.  Returns true when fn returned, false when
 * a panic inside it was recovered by one of the frame's deferred calls.
 * In both cases the frame's deferred calls have run.  [goroutine only:
 * fatal from a thread gort did not start (gort.h)] */
GORT_API bool gort_call(void (*fn)(void *), void *arg);

/* True while the calling goroutine has a panic in progress (inside a
 * deferred call that a panic is running, or nested in one). */
GORT_API bool gort_panicking(void);

#ifdef __cplusplus
}
#endif
#endif /* GORT_DEFER_H */
