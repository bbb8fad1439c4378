/*
 * sched_stress_test.c: the scheduler's hard edges under load, scaled by
 * GORT_TEST_SCALE: spawn storms while gort_maxprocs changes, bursts of Ms
 * woken and parked, sleeps mixed with spinning, counters that must add up.
 */
#include <stdlib.h>

#include "test.h"

static _Atomic int64_t work_done;
static _Atomic int64_t spawned;

static void leaf(void *a)
{
    gort_waitgroup *wg = a;
    atomic_fetch_add(&work_done, 1);
    if ((atomic_load(&work_done) & 63) == 0)
        gort_sleep(10000);
    else if ((atomic_load(&work_done) & 7) == 0)
        gort_yield();
    gort_wg_done(wg);
}

static void spawner(void *a)
{
    gort_waitgroup *outer = a;
    gort_waitgroup wg = {0};
    int n = 2000;
    gort_wg_add(&wg, n);
    for (int i = 0; i < n; i++) {
        atomic_fetch_add(&spawned, 1);
        gort_go(leaf, &wg);
    }
    gort_wg_wait(&wg);
    gort_wg_done(outer);
}

static void resizer(void *a)
{
    _Atomic int *stop = a;
    int procs[] = {1, 3, 2, 4, 1, 2};
    int i = 0;
    while (!atomic_load(stop)) {
        gort_maxprocs(procs[i++ % 6]);
        gort_sleep(2000000);
    }
}

static int live_before, live_after;
static void storm_body(void *a)
{
    (void)a;
    live_before = gort_numgoroutine();
    _Atomic int stop = 0;
    gort_go(resizer, (void *)&stop);
    int rounds = (int)gt_scale_n(10);
    for (int r = 0; r < rounds; r++) {
        gort_waitgroup wg = {0};
        gort_wg_add(&wg, 8);
        for (int i = 0; i < 8; i++)
            gort_go(spawner, &wg);
        gort_wg_wait(&wg);
    }
    atomic_store(&stop, 1);
    gort_sleep(5000000);
    live_after = gt_settle_goroutines(live_before, 5000);
}

static void test_spawn_storm_with_resize(void)
{
    atomic_store(&work_done, 0);
    atomic_store(&spawned, 0);
    int old = gort_maxprocs(2);
    GT_RUN(storm_body, NULL);
    gort_maxprocs(old);
    CU_ASSERT_EQUAL(atomic_load(&work_done), atomic_load(&spawned));
    CU_ASSERT_EQUAL(atomic_load(&spawned), (long long)gt_scale_n(10) * 8 * 2000);
    CU_ASSERT_EQUAL(live_after, live_before);
}

/* Ms created and parked in bursts: waves of sleepers wake together. */
static _Atomic int64_t wave_count;
static void wave_sleeper(void *a)
{
    gort_waitgroup *wg = a;
    gort_sleep(1000000);
    atomic_fetch_add(&wave_count, 1);
    gort_wg_done(wg);
}
static void waves_body(void *a)
{
    (void)a;
    int waves = (int)gt_scale_n(20);
    for (int w = 0; w < waves; w++) {
        gort_waitgroup wg = {0};
        gort_wg_add(&wg, 500);
        for (int i = 0; i < 500; i++)
            gort_go(wave_sleeper, &wg);
        gort_wg_wait(&wg);
    }
}
static void test_wake_waves(void)
{
    atomic_store(&wave_count, 0);
    int old = gort_maxprocs(4);
    GT_RUN(waves_body, NULL);
    gort_maxprocs(old);
    CU_ASSERT_EQUAL(atomic_load(&wave_count), (long long)gt_scale_n(20) * 500);
}

GT_SUITE(sched_stress, {"spawn_storm_with_resize", test_spawn_storm_with_resize},
         {"wake_waves", test_wake_waves})
