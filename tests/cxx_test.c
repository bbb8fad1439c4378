/*
 * cxx_test.c: C++ exceptions in goroutines (runtime/cxx.c).
 *
 * tests/cxx/cxx_prog.cc, built against libgort.a and libgort.so: thrown
 * and caught inside goroutines under a short time slice (preemption and
 * migration between the throw and the catch), and escaping a goroutine,
 * which must be gort's fatal error naming the type and the goroutine,
 * with the dump, rather than std::terminate.
 */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

static const char *const slice_env[] = {"GORT_SLICE_US=100", "GORT_MAXPROCS=2", NULL};

static void run(const char *prog, const char *a1, const char *a2, gt_child_result *r)
{
    char self[PATH_MAX], path[PATH_MAX];
    snprintf(self, sizeof self, "%s", gt_self_path());
    snprintf(path, sizeof path, "%s/tests/%s", dirname(self), prog);
    const char *argv[] = {path, a1, a2, NULL};
    CU_ASSERT_EQUAL_FATAL(gt_cmd_run(argv, slice_env, 120, r), 0);
}

static void catch_in(const char *prog)
{
    int rounds = 2000 * gt_scale();
    char arg[16], want[64];
    snprintf(arg, sizeof arg, "%d", rounds);
    snprintf(want, sizeof want, "ok caught=%d\n", 8 * rounds);
    gt_child_result r;
    run(prog, "catch", arg, &r);
    bool ok = r.exited && r.status == 0 && gt_contains(r.out, want);
    if (!ok)
        printf("\n%s catch: exited=%d status=%d signal=%d\n%s\n", prog, r.exited, r.status, r.signo, r.out);
    CU_ASSERT_TRUE(ok);
    gt_child_free(&r);
}

static void escape_in(const char *prog, const char *kind, const char *type)
{
    gt_child_result r;
    run(prog, "escape", kind, &r);
    unsigned long long id = 0;
    const char *p = strstr(r.out, "escaping goroutine ");
    if (p)
        id = strtoull(p + strlen("escaping goroutine "), NULL, 10);
    char want[160];
    snprintf(want, sizeof want, "fatal error: uncaught C++ exception %s in goroutine %llu\n", type, id);
    bool ok = r.exited && r.status == 2 && id > 1 && gt_contains(r.out, want) &&
              gt_contains(r.out, "escaper") /* the dump shows the throw */ &&
              !gt_contains(r.out, "terminate called") && !gt_contains(r.out, "not reached");
    if (!ok)
        printf("\n%s escape %s: exited=%d status=%d signal=%d, want \"%s\"\n%s\n", prog, kind, r.exited, r.status,
               r.signo, want, r.out);
    CU_ASSERT_TRUE(ok);
    gt_child_free(&r);
}

/* Blocking inside a catch block and in a destructor the unwind runs: the
 * goroutine moves between threads, and the C++ runtime's per-thread state
 * for exceptions in flight must move with it (runtime/cxx.h). */
static void inflight_in(const char *prog)
{
    int rounds = 200 * gt_scale();
    char arg[16], want[64];
    snprintf(arg, sizeof arg, "%d", rounds);
    snprintf(want, sizeof want, "ok inflight=%d bad=0\n", 8 * rounds * 2);
    gt_child_result r;
    run(prog, "inflight", arg, &r);
    bool ok = r.exited && r.status == 0 && gt_contains(r.out, want);
    if (!ok)
        printf("\n%s inflight: exited=%d status=%d signal=%d\n%.2000s\n", prog, r.exited, r.status, r.signo,
               r.out);
    CU_ASSERT_TRUE(ok);
    gt_child_free(&r);
}

static void test_catch_static(void) { catch_in("cxx-static"); }
static void test_inflight_static(void) { inflight_in("cxx-static"); }
static void test_inflight_shared(void) { inflight_in("cxx-shared"); }
static void test_catch_shared(void) { catch_in("cxx-shared"); }

static void test_escape_static(void)
{
    escape_in("cxx-static", "std", "std::runtime_error");
    escape_in("cxx-static", "nested", "app::Error");
    escape_in("cxx-static", "rethrow", "std::logic_error");
    escape_in("cxx-static", "int", "i");
}

static void test_escape_shared(void) { escape_in("cxx-shared", "std", "std::runtime_error"); }

GT_SUITE(cxx,
         {"catch_static", test_catch_static},
         {"catch_shared", test_catch_shared},
         {"inflight_static", test_inflight_static},
         {"inflight_shared", test_inflight_shared},
         {"escape_static", test_escape_static},
         {"escape_shared", test_escape_shared})
