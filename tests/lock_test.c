/*
 * lock_test.c: the runtime lock (lock.c) driven directly from plain
 * threads.  Its unlock is a plain store with no fence, and a sleeper can
 * miss a wake-up in a narrow race and rely on its timed re-check: so the
 * test counts increments made under the lock (none may be lost, a lost
 * one means two holders at once), forces waiters into the futex sleep by
 * holding the lock for longer than the spin budget now and then, and
 * checks that every sleeper got out and the lock ends free.
 */
#include <pthread.h>
#include <time.h>

#include "runtime.h"
#include "test.h"

#define NTHREADS 4
#define ITERS 200000
#define LONG_EVERY 2000 /* one long hold per this many acquires */

static gort_lock_t lk = GORT_LOCK_INIT(LR_LEAF);
static long counter;         /* written only under lk */
static int holders;          /* ditto: must be 0 on entry */
static int max_sleepers;     /* ditto */
static _Atomic int overlaps;

static void *worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < ITERS; i++) {
        gort__lock(&lk);
        if (holders++ != 0)
            atomic_fetch_add(&overlaps, 1);
        counter++;
        if (i % LONG_EVERY == 0) {
            /* Longer than the spin budget (~80 us): the others sleep. */
            struct timespec ts = {0, 300 * 1000};
            nanosleep(&ts, NULL);
            int s = atomic_load(&lk.sleepers);
            if (s > max_sleepers)
                max_sleepers = s;
        }
        holders--;
        gort__unlock(&lk);
    }
    return NULL;
}

static void test_lock_contention(void)
{
    for (int round = 0; round < 3; round++) {
        counter = 0;
        pthread_t th[NTHREADS];
        for (int i = 0; i < NTHREADS; i++)
            CU_ASSERT_FATAL(pthread_create(&th[i], NULL, worker, NULL) == 0);
        for (int i = 0; i < NTHREADS; i++)
            pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(counter, (long)NTHREADS * ITERS);
        CU_ASSERT_EQUAL(atomic_load(&overlaps), 0);
        CU_ASSERT_EQUAL(atomic_load(&lk.key), 0);
        CU_ASSERT_EQUAL(atomic_load(&lk.sleepers), 0);
    }
    /* The sleep path ran: some long hold saw a waiter asleep. */
    CU_ASSERT(max_sleepers > 0);
}

GT_SUITE(lock, {"contention", test_lock_contention})
