/*
 * stats_test.c: gort_stats_get's compatibility across struct sizes
 * (runtime/stats.c).  gort_stats_get is a macro over gort_stats_get_sized:
 * a caller built against an older header (a shorter struct) must get its
 * prefix and nothing written past it; one built against a newer header (a
 * longer struct) must get zeros for what this library does not know; the
 * plain function, for programs built before the macro, writes the 27
 * counters the struct had then.
 */
#include <string.h>

#include "test.h"

#define CANARY 0xa5

static gort_waitgroup spawned;
static void noop(void *arg)
{
    (void)arg;
    gort_wg_done(&spawned);
}

static void spawn_some(void)
{
    for (int i = 0; i < 10; i++) {
        gort_wg_add(&spawned, 1);
        gort_go(noop, NULL);
    }
    gort_wg_wait(&spawned);
}

static bool all_bytes(const unsigned char *p, size_t n, unsigned char v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return false;
    return true;
}

static void sizes_body(void *arg)
{
    (void)arg;
    spawn_some();
    gort_stats full;
    gort_stats_get(&full); /* the macro: this header's size */
    CU_ASSERT_TRUE(full.goroutines_created >= 11);
    CU_ASSERT_TRUE(full.procs >= 1);

    /* An older, shorter struct: three counters, then the caller's memory. */
    unsigned char small[3 * sizeof(uint64_t) + 64];
    memset(small, CANARY, sizeof small);
    gort_stats_get_sized((gort_stats *)(void *)small, 3 * sizeof(uint64_t));
    uint64_t created;
    memcpy(&created, small, sizeof created);
    CU_ASSERT_TRUE(created >= full.goroutines_created);
    CU_ASSERT_TRUE(all_bytes(small + 3 * sizeof(uint64_t), 64, CANARY));

    /* A newer, longer struct: the tail this library does not know is 0. */
    unsigned char big[sizeof(gort_stats) + 64];
    memset(big, CANARY, sizeof big);
    gort_stats_get_sized((gort_stats *)(void *)big, sizeof big);
    CU_ASSERT_TRUE(all_bytes(big + sizeof(gort_stats), 64, 0));
    gort_stats known;
    memcpy(&known, big, sizeof known);
    CU_ASSERT_TRUE(known.goroutines_created >= full.goroutines_created);

    /* The plain function: exactly the 27 counters of the first header. */
    size_t before_macro = 27 * sizeof(uint64_t);
    memset(big, CANARY, sizeof big);
    (gort_stats_get)((gort_stats *)(void *)big);
    CU_ASSERT_TRUE(all_bytes(big + before_macro, sizeof big - before_macro, CANARY));
    memcpy(&known, big, before_macro);
    CU_ASSERT_TRUE(known.procs == full.procs);
}

static void test_sizes(void) { GT_RUN(sizes_body, NULL); }

GT_SUITE(stats, {"sizes", test_sizes})
