/*
 * locks_test.c: C locks pin goroutines (runtime/locks_interpose.c),
 * GORT_NOPREEMPT and gort_preempt_off/on (sysmon/nopreempt.c).
 *
 * The scenarios run in the programs of tests/locks/ (the Makefile builds
 * them next to this binary): one C program linked with libgort.a and with
 * libgort.so, and a C++ one, each at GORT_SLICE_US=100 GORT_MAXPROCS=2
 * with a timeout, since the failure of a goroutine that moved while
 * holding a recursive mutex is a hang.  The in-process tests check the
 * counts and the pin itself, and the misuse children the fatal errors.
 */
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"
#include "test.h"

static const char *const slice_env[] = {"GORT_SLICE_US=100", "GORT_MAXPROCS=2", NULL};

static void prog_path(char *out, size_t n, const char *name)
{
    char self[PATH_MAX];
    snprintf(self, sizeof self, "%s", gt_self_path());
    snprintf(out, n, "%s/tests/%s", dirname(self), name);
}

/* Runs tests/NAME with args; true if it exited 0 and printed "ok". */
static bool run_prog(const char *name, const char *a1, const char *a2, const char *a3)
{
    char path[PATH_MAX];
    prog_path(path, sizeof path, name);
    const char *argv[] = {path, a1, a2, a3, NULL};
    gt_child_result r;
    if (gt_cmd_run(argv, slice_env, 120, &r) != 0) {
        printf("\ncannot run %s\n", path);
        return false;
    }
    bool ok = r.exited && r.status == 0 && !r.timed_out && gt_contains(r.out, "ok kind=");
    if (!ok)
        printf("\n%s %s: exited=%d status=%d timed_out=%d\n%s\n", name, a1 ? a1 : "", r.exited, r.status,
               r.timed_out, r.out);
    gt_child_free(&r);
    return ok;
}

static const char *rounds(void)
{
    static char buf[16];
    snprintf(buf, sizeof buf, "%d", 1000 * gt_scale());
    return buf;
}

static const char *const kinds[] = {"recursive", "errorcheck", "default", "rwlock", "spin", "mtx"};

static void kinds_in(const char *prog)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        CU_ASSERT_TRUE(run_prog(prog, kinds[i], rounds(), NULL));
}

/* Every lock type, four goroutines, 1000 rounds each, held ~30 us. */
static void test_locks_static(void) { kinds_in("locks-static"); }
static void test_locks_shared(void) { kinds_in("locks-shared"); }
static void test_locks_cxx(void) { CU_ASSERT_TRUE(run_prog("locks-cxx", rounds(), NULL, NULL)); }

/* Marked loops never change threads; the unmarked one must (without
 * asynchronous preemption, under TSan, nothing moves a loop without
 * calls, so only the first half holds there). */
#if defined(GORT_TSAN)
#define MIGRATE NULL
#else
#define MIGRATE "migrate"
#endif
static void test_nopreempt_static(void) { CU_ASSERT_TRUE(run_prog("locks-static", "nopreempt", "100", MIGRATE)); }
static void test_nopreempt_shared(void) { CU_ASSERT_TRUE(run_prog("locks-shared", "nopreempt", "100", MIGRATE)); }

/* A fully static executable (libc.a): the real functions come from the
 * executable's symbol table.  Built here with cc, since its static
 * archives (libdw.a, liblzma.a, ...) need not exist where the suite is
 * built; skipped where they do not.  No sanitizer links statically. */
static void test_fully_static(void)
{
#if defined(GORT_ASAN) || defined(GORT_TSAN) || defined(__SANITIZE_UNDEFINED__)
    printf("skipped under a sanitizer ");
    return;
#else
    char self[PATH_MAX], dir[PATH_MAX - 64], exe[PATH_MAX], src[PATH_MAX], inc[PATH_MAX], lib[PATH_MAX];
    snprintf(self, sizeof self, "%s", gt_self_path());
    snprintf(dir, sizeof dir, "%.*s", (int)sizeof dir - 1, dirname(self)); /* build/ */
    snprintf(exe, sizeof exe, "%s/tests/locks-fullstatic", dir);
    snprintf(src, sizeof src, "%s/../tests/locks/locks_prog.c", dir);
    snprintf(inc, sizeof inc, "-I%s/../include", dir);
    snprintf(lib, sizeof lib, "%s/libgort.a", dir);
    const char *cc[] = {"cc", "-static", "-O2", "-pthread", "-D_GNU_SOURCE", inc, src, "-o", exe, lib, "-lunwind",
                        "-ldw", "-lelf", "-lz", "-llzma", "-lbz2", "-lzstd", "-pthread", "-lm", NULL};
    gt_child_result r;
    if (gt_cmd_run(cc, NULL, 120, &r) != 0 || !r.exited || r.status != 0) {
        /* Try without zstd, which some libdw builds do not use. */
        gt_child_free(&r);
        cc[16] = NULL;
        if (gt_cmd_run(cc, NULL, 120, &r) != 0 || !r.exited || r.status != 0) {
            printf("skipped: no static link here ");
            gt_child_free(&r);
            return;
        }
    }
    gt_child_free(&r);
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        CU_ASSERT_TRUE(run_prog("locks-fullstatic", kinds[i], "300", NULL));
#endif
}

/* ---- the counts and the pin, in process ---- */

static _Atomic int pin_bad;
#define PIN_CHECK(cond)                                                                        \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            printf("\n%s:%d: %s\n", __FILE__, __LINE__, #cond);                                \
            atomic_fetch_add(&pin_bad, 1);                                                     \
        }                                                                                      \
    } while (0)

static void pin_body(void *arg)
{
    (void)arg;
    gort_g_t *gp = gort__getg();
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
    PIN_CHECK(gp->lockedm == NULL);
    PIN_CHECK(pthread_mutex_lock(&mu) == 0);
    PIN_CHECK(gp->clocks == 1 && gp->lockedm == gp->m && gp->m->lockedg == gp);
    PIN_CHECK(pthread_mutex_trylock(&mu) != 0); /* busy: not counted */
    PIN_CHECK(gp->clocks == 1);
    PIN_CHECK(pthread_rwlock_rdlock(&rw) == 0);
    PIN_CHECK(pthread_rwlock_rdlock(&rw) == 0);
    PIN_CHECK(gp->clocks == 3);
    /* The user's own lock_thread outlives the C locks, and they it. */
    gort_lock_thread();
    PIN_CHECK(pthread_rwlock_unlock(&rw) == 0 && pthread_rwlock_unlock(&rw) == 0);
    gort_unlock_thread();
    PIN_CHECK(gp->clocks == 1 && gp->lockedm != NULL);
    gort_m_t *m0 = gp->m;
    gort_yield(); /* a runtime call that switches: same thread after */
    PIN_CHECK(gp->m == m0);
    PIN_CHECK(pthread_mutex_unlock(&mu) == 0);
    PIN_CHECK(gp->clocks == 0 && gp->lockedm == NULL);
    gort_lock_thread();
    PIN_CHECK(pthread_mutex_lock(&mu) == 0 && pthread_mutex_unlock(&mu) == 0);
    PIN_CHECK(gp->lockedm == gp->m); /* still the user's */
    gort_unlock_thread();
    PIN_CHECK(gp->lockedm == NULL);
    /* Regions nest and pin. */
    gort_preempt_off();
    gort_preempt_off();
    PIN_CHECK(gp->nopreempt == 2 && gp->lockedm == gp->m);
    gort_preempt_on();
    PIN_CHECK(gp->lockedm == gp->m);
    gort_preempt_on();
    PIN_CHECK(gp->nopreempt == 0 && gp->lockedm == NULL);
}

static void test_pin_counts(void)
{
    atomic_store(&pin_bad, 0);
    GT_RUN(pin_body, NULL);
    CU_ASSERT_EQUAL(atomic_load(&pin_bad), 0);
}

/* A thread gort did not start takes locks without a G: nothing counted. */
static void *plain_thread(void *arg)
{
    pthread_mutex_t *mu = arg;
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(mu);
        pthread_mutex_unlock(mu);
    }
    return NULL;
}

static void test_plain_thread(void)
{
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_t t;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, plain_thread, &mu), 0);
    CU_ASSERT_EQUAL(pthread_join(t, NULL), 0);
}

/* ---- misuse ---- */

static void park_in_region_body(void *arg)
{
    (void)arg;
    gort_preempt_off();
    gort_sleep(1000000);
    gort_preempt_on();
    printf("not reached\n");
}
GT_CHILD(park_in_region) { gort_main(park_in_region_body, NULL); }

static void on_without_off_body(void *arg)
{
    (void)arg;
    gort_preempt_on();
}
GT_CHILD(on_without_off) { gort_main(on_without_off_body, NULL); }

static void test_misuse(void)
{
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("park_in_region", NULL, 30, &r), 0);
    CU_ASSERT_TRUE(r.exited && r.status == 2);
    CU_ASSERT_TRUE(gt_first_line_is(r.out, "fatal error: blocking call inside gort_preempt_off region"));
    CU_ASSERT_FALSE(gt_contains(r.out, "not reached"));
    CU_ASSERT_TRUE(gt_contains(r.out, "park_in_region_body"));
    gt_child_free(&r);
    CU_ASSERT_EQUAL_FATAL(gt_child_run("on_without_off", NULL, 30, &r), 0);
    CU_ASSERT_TRUE(r.exited && r.status == 2);
    CU_ASSERT_TRUE(gt_first_line_is(r.out, "fatal error: gort_preempt_on without gort_preempt_off"));
    gt_child_free(&r);
}

/* ---- counters in schedtrace ---- */

static void test_schedtrace(void)
{
    GT_SKIP_UNDER_TSAN("no asynchronous preemption, so nothing is refused");
    char path[PATH_MAX];
    prog_path(path, sizeof path, "locks-static");
    const char *argv[] = {path, "nopreempt", "20", NULL};
    const char *env[] = {"GORT_SLICE_US=100", "GORT_MAXPROCS=2", "GORT_DEBUG=schedtrace=20", NULL};
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_cmd_run(argv, env, 60, &r), 0);
    CU_ASSERT_TRUE(r.exited && r.status == 0);
    CU_ASSERT_TRUE(gt_contains(r.out, " refused_lock="));
    CU_ASSERT_TRUE(gt_contains(r.out, " refused_nopreempt="));
    /* The program's own summary: refusals were counted. */
    const char *p = strstr(r.out, "ok kind=nopreempt");
    const char *q = p ? strstr(p, "refused_lock=") : NULL;
    const char *s = p ? strstr(p, "refused_nopreempt=") : NULL;
    bool counted = q && strtoull(q + strlen("refused_lock="), NULL, 10) > 0 && s &&
                   strtoull(s + strlen("refused_nopreempt="), NULL, 10) > 0;
    CU_ASSERT_TRUE(counted);
    if (!counted)
        printf("\n%s\n", r.out);
    gt_child_free(&r);
}

GT_SUITE(locks,
         {"pin_counts", test_pin_counts},
         {"plain_thread", test_plain_thread},
         {"misuse", test_misuse},
         {"locks_static", test_locks_static},
         {"locks_shared", test_locks_shared},
         {"locks_cxx", test_locks_cxx},
         {"nopreempt_static", test_nopreempt_static},
         {"nopreempt_shared", test_nopreempt_shared},
         {"fully_static", test_fully_static},
         {"schedtrace", test_schedtrace})
