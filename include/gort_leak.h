/*
 * gort_leak.h: goroutine leak checks for tests, as uber-go/goleak.
 *
 *   gort_leak_mark *m = gort_leak_mark_new();
 *   ... code under test ...
 *   char *report;
 *   int n = gort_leak_check(m, 1000000000, &report);  // 0: no leak
 *
 * A leak is a goroutine created after the mark (and not the caller) that
 * is still alive when the check gives up waiting.  Goroutines that existed
 * at the mark are never reported, so a mark taken at the start of a test
 * ignores whatever earlier tests left behind.  A mark is good within one
 * gort_main call (goroutine ids restart at 1 with each).
 */
#ifndef GORT_LEAK_H
#define GORT_LEAK_H

#include "gort.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gort_leak_mark gort_leak_mark;

typedef struct gort_leak_info {
    uint64_t goid;
    uint64_t parent_goid; /* the goroutine that called gort_go; 0: none */
    uintptr_t created_pc; /* return address of that gort_go call */
} gort_leak_info;

/* Snapshots the live goroutines. */
GORT_API gort_leak_mark *gort_leak_mark_new(void);
GORT_API void gort_leak_mark_free(gort_leak_mark *m);
/* Goroutines created after m and alive now: fills up to max entries and
 * returns how many there are. */
GORT_API int gort_leak_list(gort_leak_mark *m, gort_leak_info *out, int max);
/* Retries gort_leak_list with backoff for up to timeout_ns (goroutines
 * that were told to stop need a moment to return), then returns the count.
 * When it is non-zero and report is not NULL, *report is a malloc'd text
 * (free it): a summary line, then each leaked goroutine as a dump shows it:
 * header, stack, "created by FUNC in goroutine N" and its file:line. */
GORT_API int gort_leak_check(gort_leak_mark *m, int64_t timeout_ns, char **report);

#ifdef __cplusplus
}
#endif
#endif /* GORT_LEAK_H */
