/*
 * gort_idioms.h: Go's everyday idioms, included by gort.h.  One header per
 * concern: frames for defer/panic/recover, context and errgroup, leak
 * checks for tests.  See docs/idioms.md.
 */
#ifndef GORT_IDIOMS_H
#define GORT_IDIOMS_H
#include "gort_defer.h"
#include "gort_ctx.h"
#include "gort_leak.h"
#endif
