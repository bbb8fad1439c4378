/*
 * stack_test.c: goroutine stacks: lazily committed, reused, and guarded
 * without a mapping per stack, so a hundred thousand parked goroutines stay
 * far below vm.max_map_count.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"
#include "test.h"

static int count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return -1;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static gort_waitgroup parked, release, finished;
static _Atomic int max_depth_ok;

static void parker(void *a)
{
    (void)a;
    gort_wg_done(&parked);
    gort_wg_wait(&release);
    gort_wg_done(&finished);
}

static int maps_parked;
static int nparked;
static int live_before, live_parked, live_after;
static void parked_body(void *a)
{
    (void)a;
    live_before = gort_numgoroutine();
    gort_wg_add(&release, 1);
    gort_wg_add(&parked, nparked);
    gort_wg_add(&finished, nparked);
    for (int i = 0; i < nparked; i++)
        gort_go(parker, NULL);
    gort_wg_wait(&parked);
    maps_parked = count_maps();
    live_parked = gort_numgoroutine();
    gort_wg_done(&release);
    gort_wg_wait(&finished);
    live_after = gt_settle_goroutines(live_before, 5000);
}

static void test_many_parked_few_maps(void)
{
#if defined(GORT_TSAN)
    nparked = 5000; /* TSan shadows every stack page */
#else
    nparked = 100000;
#endif
    int before = count_maps();
    GT_RUN(parked_body, NULL);
    /* One mapping per stack would be 100,000 (200,000 with PROT_NONE
     * guards); slabs with lightweight guards need a few hundred at most. */
    CU_ASSERT_TRUE(maps_parked - before < 2000);
    CU_ASSERT_EQUAL(live_parked, live_before + nparked);
    CU_ASSERT_EQUAL(live_after, live_before);
}

/* Deep recursion within the default stack works, and the stack comes back
 * clean for reuse. */
static int recurse(int n, volatile char *prev)
{
    volatile char buf[512];
    buf[0] = (char)n;
    buf[511] = prev ? prev[0] : 0;
    if (n == 0)
        return buf[0] + buf[511];
    return recurse(n - 1, buf) + 1;
}
static void deep(void *a)
{
    gort_waitgroup *wg = a;
    /* ~200 KiB of frames in a 256 KiB stack. */
    if (recurse(350, NULL) >= 350)
        atomic_fetch_add(&max_depth_ok, 1);
    gort_wg_done(wg);
}
static void deep_body(void *a)
{
    (void)a;
    gort_waitgroup wg = {0};
    gort_wg_add(&wg, 64);
    for (int i = 0; i < 64; i++)
        gort_go(deep, &wg);
    gort_wg_wait(&wg);
}
static void test_deep_recursion(void)
{
    atomic_store(&max_depth_ok, 0);
    GT_RUN(deep_body, NULL);
    CU_ASSERT_EQUAL(atomic_load(&max_depth_ok), 64);
}

GT_CHILD(stack_size_env)
{
    gort__runtime_init();
    printf("stack=%zu\n", gort__stack_size());
}

static void test_stack_size_env(void)
{
    const char *env[] = {"GORT_STACK_SIZE=64k", NULL};
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("stack_size_env", env, 20, &r), 0);
    CU_ASSERT_TRUE(gt_contains(r.out, "stack=65536"));
    gt_child_free(&r);
    const char *env2[] = {"GORT_STACK_SIZE=1m", NULL};
    CU_ASSERT_EQUAL_FATAL(gt_child_run("stack_size_env", env2, 20, &r), 0);
    CU_ASSERT_TRUE(gt_contains(r.out, "stack=1048576"));
    gt_child_free(&r);
}

/* The guard below each stack faults: writing just under stack.lo kills
 * the process with SIGSEGV instead of corrupting a neighbour. */
static void guard_fn(void *a)
{
    (void)a;
    gort_g_t *gp = gort__getg();
    printf("guard=%d\n", gp->stack.guard);
    fflush(stdout);
    volatile char *p = (volatile char *)(gp->stack.lo - 8);
    *p = 1;
    printf("survived\n");
}
GT_CHILD(guard_write) { gort_main(guard_fn, NULL); }

static void test_guard_faults(void)
{
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("guard_write", NULL, 20, &r), 0);
    CU_ASSERT_FALSE(gt_contains(r.out, "survived"));
    CU_ASSERT_FALSE(r.exited && r.status == 0);
    gt_child_free(&r);
}

GT_SUITE(stack,
         {"many_parked_few_maps", test_many_parked_few_maps},
         {"deep_recursion", test_deep_recursion},
         {"stack_size_env", test_stack_size_env},
         {"guard_faults", test_guard_faults})
