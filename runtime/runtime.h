/*
 * runtime.h: the runtime's internal types and entry points, shared by
 * runtime/, sysmon/ and prof/.  Nothing here is public API.
 *
 * G is a goroutine, M an OS thread, P a processor: the right to run
 * goroutines.  An M needs a P to run a G; there are exactly gomaxprocs Ps.  See docs/runtime.md for the states and transitions; the
 * short version lives beside each enum (g.h, p.h).
 *
 * This file only gathers the headers below, one per concept, named after
 * the .c file that implements it (docs/runtime.md, "Where each concept
 * lives"); each includes what it uses and compiles on its own
 * (scripts/headers, run by make layers), so a .c file may include just
 * the ones it needs.
 *
 * Every shared field says what protects it.  "owner P" means only the M
 * currently holding that P; "atomic" names its memory order where it is not
 * the default sequentially consistent one.
 */
#ifndef GORT_RUNTIME_H
#define GORT_RUNTIME_H

#include "base.h"
#include "util.h"
#include "lock.h"
#include "stack.h"
#include "g.h"
#include "m.h"
#include "p.h"
#include "settings.h"
#include "rtsched.h"
#include "fiber_san.h"
#include "rtcall.h"
#include "locks_interpose.h"
#include "lock_fast.h"
#include "foreign.h"
#include "park.h"
#include "runq.h"
#include "stw.h"
#include "exit.h"
#include "proc.h"
#include "stats.h"
#include "timer.h"
#include "sema.h"
#include "mutex.h"
#include "netpoll.h"
#include "fatal.h"
#include "rtsignal.h"
#include "fork.h"
#include "trace.h"

#endif /* GORT_RUNTIME_H */
