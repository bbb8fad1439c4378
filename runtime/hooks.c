/*
 * hooks.c: the table through which runtime/ (and sysmon/) call the layers
 * above them.  See hooks.h for the rules; the higher layers fill it from
 * prof/start.c.
 */
#include "hooks.h"

gort_hooks_t gort__hooks;

/* runtime/trace.h: a trace is running (prof/trace.c writes it). */
_Atomic bool gort__tracing;

/* hooks.h: which flags the switch to a goroutine must test. */
_Atomic uint32_t gort__switch_slow;
