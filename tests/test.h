/*
 * test.h: the CUnit harness shared by every suite.
 *
 * A suite is tests/<name>_test.c ending with GT_SUITE(name, {...}, ...) and
 * a line SUITE(name) in tests/test_list.h.  Tests run in one process, one
 * after another; a test that needs the runtime runs its body as goroutine 1
 * with GT_RUN(fn, arg).
 *
 * CUnit is not thread-safe: assert (CU_ASSERT...) only from the goroutine
 * that runs the test body, after joining the others.  Workers record what
 * they saw in atomics and the body checks those.
 *
 * Misuse and crash tests run a child: GT_CHILD(name) { ... } defines a
 * function the test binary runs when started as `gort-test --child name`;
 * gt_child_run starts it with extra environment, captures stdout and
 * stderr together, and reports how it ended.
 *
 * GORT_TEST_SCALE (default 1) multiplies the work of stress tests; CI runs
 * them at 1, a soak at more.  0 is honoured: gt_scale_n(n) gives the
 * smallest run that still checks something (valgrind's setting).
 */
#ifndef GORT_TEST_H
#define GORT_TEST_H

#include <CUnit/CUnit.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "gort.h"

typedef struct gt_test {
    const char *name;
    void (*fn)(void);
} gt_test;

#define GT_SUITE(sname, ...)                                                  \
    static const gt_test gt_tests_##sname[] = {__VA_ARGS__, {NULL, NULL}};     \
    const gt_test *gt_suite_##sname(void);                                     \
    const gt_test *gt_suite_##sname(void) { return gt_tests_##sname; }

/* Skips the running test: prints "skipped: WHY" and counts the test as
 * skipped, not passed, in the runner's closing line ("N passed, N failed,
 * N skipped").  The test then returns; asserts it already made still
 * count (a skipped test with a failure is a failed test). */
void gt_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define GT_SKIP(...)          \
    do {                      \
        gt_skip(__VA_ARGS__); \
        return;               \
    } while (0)

/* Tests that need what a TSan build cannot give: asynchronous signals
 * delivered into a loop without calls (preemption, SIGPROF sampling, stack
 * capture), or timing close to a plain build's.  They say why and skip. */
#if defined(GORT_TSAN)
#define GT_SKIP_UNDER_TSAN(why) GT_SKIP("under TSan (%s)", why)
#else
#define GT_SKIP_UNDER_TSAN(why) ((void)0)
#endif

/* Runs fn(arg) as the main goroutine of a gort_main call. */
#define GT_RUN(fn, arg) CU_ASSERT_EQUAL_FATAL(gort_main((fn), (arg)), 0)

typedef struct gt_child_result {
    int exited;     /* 1 if it exited normally */
    int status;     /* exit status, if exited */
    int signo;      /* terminating signal, if not */
    int timed_out;  /* killed after the timeout */
    char *out;      /* stdout and stderr, NUL-terminated; free() it */
    size_t outlen;
} gt_child_result;

typedef struct gt_child {
    const char *name;
    void (*fn)(void);
    struct gt_child *next;
} gt_child;
void gt_child_register(gt_child *c);

#define GT_CHILD(cname)                                                        \
    static void gt_child_fn_##cname(void);                                     \
    static gt_child gt_child_rec_##cname = {#cname, gt_child_fn_##cname, NULL}; \
    __attribute__((constructor)) static void gt_child_reg_##cname(void)        \
    {                                                                          \
        gt_child_register(&gt_child_rec_##cname);                              \
    }                                                                          \
    static void gt_child_fn_##cname(void)

/* env: NULL-terminated "K=V" strings added to the child's environment. */
int gt_child_run(const char *name, const char *const *env, int timeout_s, gt_child_result *r);
/* Runs an arbitrary command the same way (argv[0] searched in PATH). */
int gt_cmd_run(const char *const *argv, const char *const *env, int timeout_s, gt_child_result *r);
/* Is prog on PATH?  If not, skips the running test (gt_skip) and says so. */
bool gt_have(const char *prog);
/* DIR/name in a scratch directory made on first use and removed when the
 * test binary exits (kept if KEEPTMP is set).  The result stays valid for
 * the next 7 calls. */
const char *gt_tmp(const char *name);
void gt_child_free(gt_child_result *r);
/* Runs child name; true if it exited 0 within timeout_s and printed want.
 * Prints its output otherwise. */
bool gt_child_expect(const char *name, const char *const *env, int timeout_s, const char *want);
bool gt_contains(const char *hay, const char *needle);
/* The first line of s equals line (without its newline). */
bool gt_first_line_is(const char *s, const char *line);

/* Fails the test when goroutines created after mark are still alive
 * after up to timeout_ms; prints the leak report (each goroutine's stack
 * and creation site).  Frees the mark.  In the test's goroutine. */
#define GT_ASSERT_NO_LEAKS(mark, timeout_ms)                                   \
    do {                                                                       \
        char *gt_rep_ = NULL;                                                  \
        int gt_n_ = gort_leak_check((mark), (int64_t)(timeout_ms) * 1000000, &gt_rep_); \
        if (gt_n_)                                                             \
            fprintf(stderr, "\n%s", gt_rep_ ? gt_rep_ : "(no report)\n");     \
        CU_ASSERT_EQUAL(gt_n_, 0);                                             \
        free(gt_rep_);                                                         \
        gort_leak_mark_free(mark);                                             \
    } while (0)

/* GORT_TEST_SCALE: 0 (smallest), 1 (CI, the default), or more.  Anything
 * else is refused (the runner exits 2). */
int gt_scale(void);
/* n * GORT_TEST_SCALE, but at least 1: at scale 0 a stress loop runs once. */
static inline long gt_scale_n(long n)
{
    long v = n * gt_scale();
    return v > 0 ? v : 1;
}
/* In a goroutine: yields until gort_numgoroutine() <= target or timeout_ms
 * passes; returns the last count.  Goroutines that signalled completion
 * still have to return, so counts settle a moment after a Wait. */
int gt_settle_goroutines(int target, int timeout_ms);
/* Path of the test binary and of gortprof (set by make test). */
const char *gt_self_path(void);
const char *gt_gortprof_path(void);

#endif
