/*
 * leak_test.c: the goroutine leak checker and gort_numgoroutine.
 *
 * A goroutine deliberately left blocked is found, with the function that
 * created it ("created by leak_spawner"), its wait state and its stack;
 * once released it is no longer reported.  A clean run (many goroutines
 * that all return) reports nothing, and goroutines alive before the mark
 * are never reported.  The report is checked as text, the listing as
 * data (id, creator, creation PC inside leak_spawner).
 */
#include <string.h>

#include "test.h"

static gort_waitgroup wg;
static gort_chan *hold;

__attribute__((noinline)) static void leaky_blocker(void *a)
{
    /* Its channel comes as the argument: the test reassigns hold while a
     * blocker from before the mark may not have started yet. */
    gort_chan_recv((gort_chan *)a, NULL); /* blocks until the test closes it */
    __asm__ volatile("" ::: "memory"); /* no tail call: keep this frame */
}

__attribute__((noinline)) static uint64_t leak_spawner(void)
{
    uint64_t id = gort_go(leaky_blocker, hold);
    __asm__ volatile("" ::: "memory"); /* no tail call: the creation PC is here */
    return id;
}

static int found, found_after, listed;
static bool pc_in_spawner, parent_ok, id_ok;
static char *report;
static int n_before, n_during, n_after;

static void leak_body(void *a)
{
    (void)a;
    gort_chan *old = gort_chan_make(0, 0); /* a goroutine from before the mark */
    gort_go(leaky_blocker, old);
    n_before = gort_numgoroutine();
    gort_leak_mark *mark = gort_leak_mark_new();
    hold = gort_chan_make(0, 0);
    uint64_t id = leak_spawner();
    n_during = gort_numgoroutine();
    found = gort_leak_check(mark, 20000000, &report);
    gort_leak_info info[4];
    listed = gort_leak_list(mark, info, 4);
    id_ok = listed == 1 && info[0].goid == id;
    parent_ok = listed == 1 && info[0].parent_goid == gort_self();
    pc_in_spawner = listed == 1 && info[0].created_pc > (uintptr_t)leak_spawner &&
                    info[0].created_pc < (uintptr_t)leak_spawner + 64;
    gort_chan_close(hold);
    found_after = gort_leak_check(mark, 2000000000, NULL);
    gort_leak_mark_free(mark);
    gort_chan_close(old);
    n_after = gt_settle_goroutines(n_before - 1, 2000);
    gort_chan_free(hold);
    gort_chan_free(old);
}

static void test_finds_leak(void)
{
    GT_RUN(leak_body, NULL);
    CU_ASSERT_EQUAL(found, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(report);
    if (!gt_contains(report, "created by leak_spawner"))
        fprintf(stderr, "\nreport:\n%s\n", report);
    CU_ASSERT_TRUE(gt_contains(report, "found 1 leaked goroutine:"));
    CU_ASSERT_TRUE(gt_contains(report, "[chan receive"));
    CU_ASSERT_TRUE(gt_contains(report, "leaky_blocker"));
    CU_ASSERT_TRUE(gt_contains(report, "created by leak_spawner in goroutine 1"));
    CU_ASSERT_TRUE(gt_contains(report, "leak_test.c:"));
    free(report);
    report = NULL;
    CU_ASSERT_EQUAL(listed, 1);
    CU_ASSERT_TRUE(id_ok);
    CU_ASSERT_TRUE(parent_ok);
    CU_ASSERT_TRUE(pc_in_spawner);
    CU_ASSERT_EQUAL(found_after, 0);
    CU_ASSERT_EQUAL(n_during, n_before + 1);
    CU_ASSERT_EQUAL(n_after, n_before - 1);
}

/* ---- a clean run ---- */

static void short_lived(void *a)
{
    gort_chan *c = a;
    int v;
    while (gort_chan_recv(c, &v)) {
    }
    gort_wg_done(&wg);
}

static void clean_body(void *a)
{
    (void)a;
    gort_leak_mark *mark = gort_leak_mark_new();
    for (int it = 0; it < 20; it++) {
        gort_chan *c = gort_chan_make(sizeof(int), 4);
        for (int i = 0; i < 50; i++) {
            gort_wg_add(&wg, 1);
            gort_go(short_lived, c);
        }
        for (int i = 0; i < 200; i++)
            gort_chan_send(c, &i);
        gort_chan_close(c);
        gort_wg_wait(&wg); /* done, but maybe not yet returned: the check waits */
        gort_chan_free(c);
    }
    GT_ASSERT_NO_LEAKS(mark, 2000);
}

static void test_clean_run(void) { GT_RUN(clean_body, NULL); }

GT_SUITE(leak, {"finds_leak", test_finds_leak}, {"clean_run", test_clean_run})
