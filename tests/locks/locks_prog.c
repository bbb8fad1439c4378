/*
 * locks_prog.c: C locks and no-preempt code under preemption, as a user's
 * program sees them.  The Makefile links it twice, with libgort.a
 * (locks-static) and with libgort.so (locks-shared), since the lock
 * functions are interposed differently in each; tests/locks_test.c runs
 * both at GORT_SLICE_US=100 GORT_MAXPROCS=2.
 *
 *   locks-* KIND ROUNDS [migrate]
 *
 * KIND recursive|errorcheck|default|rwlock|spin|mtx: four goroutines take
 * the lock ROUNDS times each around ~30 us of work.  Every lock and unlock
 * call must return 0, no two goroutines may be inside at once, and none
 * may change threads while it holds the lock.
 *
 * KIND nopreempt: three goroutines run the same busy loop unmarked, in a
 * GORT_NOPREEMPT function, inside gort_preempt_off/on and holding a
 * mutex, ROUNDS times
 * each, and count the loops that ended on another thread than they began.
 * The marked loops must never move; with "migrate" (asynchronous
 * preemption is on) the unmarked one must have moved at least once, so
 * that the check can fail.
 *
 * Prints one line "ok ..." with its counts and exits 0, or says what broke
 * and exits 1.
 */
#include <gort.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <threads.h>
#include <time.h>
#include <unistd.h>

#define WORKERS 4

static const char *kind;
static int rounds;
static pthread_mutex_t mu;
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_spinlock_t spin;
static mtx_t cmtx;
static gort_waitgroup wg;
static _Atomic int inside, max_inside, bad_ret, moved_held;

static pid_t tid(void) { return (pid_t)syscall(SYS_gettid); }

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static _Atomic uint64_t sink; /* keeps the loops; written by every goroutine */

/* The busy loop, inlined into each caller so that a marked caller's
 * section holds all of it.  Returns whether the goroutine changed threads
 * between its first and last instruction: measured inside the call, so
 * that a preemption just before or after it (where the caller is unmarked
 * and unlocked) does not count. */
static inline __attribute__((always_inline)) bool spin_for(int64_t ns)
{
    pid_t t0 = tid();
    int64_t end = now_ns() + ns;
    uint64_t x = 1;
    while (now_ns() < end)
        for (int i = 0; i < 64; i++)
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    atomic_store_explicit(&sink, x, memory_order_relaxed);
    return tid() != t0;
}

/* Plain user code: preemptible anywhere. */
static __attribute__((noinline)) bool busy(int64_t ns) { return spin_for(ns); }

static void check(int r, const char *what)
{
    if (r != 0) {
        atomic_fetch_add(&bad_ret, 1);
        fprintf(stderr, "%s returned %d (%s)\n", what, r, strerror(r));
    }
}

static void enter(void)
{
    int n = atomic_fetch_add(&inside, 1) + 1;
    int m = atomic_load(&max_inside);
    while (n > m && !atomic_compare_exchange_weak(&max_inside, &m, n))
        ;
}

static void take(bool write)
{
    if (!strcmp(kind, "rwlock")) {
        check(write ? pthread_rwlock_wrlock(&rw) : pthread_rwlock_rdlock(&rw), "rwlock lock");
    } else if (!strcmp(kind, "spin")) {
        check(pthread_spin_lock(&spin), "pthread_spin_lock");
    } else if (!strcmp(kind, "mtx")) {
        check(mtx_lock(&cmtx) == thrd_success ? 0 : EINVAL, "mtx_lock");
    } else {
        check(pthread_mutex_lock(&mu), "pthread_mutex_lock");
        if (!strcmp(kind, "recursive"))
            check(pthread_mutex_lock(&mu), "pthread_mutex_lock (again)");
    }
}

static void drop(void)
{
    if (!strcmp(kind, "rwlock")) {
        check(pthread_rwlock_unlock(&rw), "pthread_rwlock_unlock");
    } else if (!strcmp(kind, "spin")) {
        check(pthread_spin_unlock(&spin), "pthread_spin_unlock");
    } else if (!strcmp(kind, "mtx")) {
        check(mtx_unlock(&cmtx) == thrd_success ? 0 : EINVAL, "mtx_unlock");
    } else {
        if (!strcmp(kind, "recursive"))
            check(pthread_mutex_unlock(&mu), "pthread_mutex_unlock (inner)");
        check(pthread_mutex_unlock(&mu), "pthread_mutex_unlock");
    }
}

static void locker(void *arg)
{
    intptr_t id = (intptr_t)arg;
    for (int i = 0; i < rounds; i++) {
        /* rwlock: one round in four is a reader; readers may share. */
        bool write = strcmp(kind, "rwlock") != 0 || (i + id) % 4 != 0;
        take(write);
        pid_t t0 = tid();
        if (write) {
            enter();
            busy(30000);
            atomic_fetch_sub(&inside, 1);
        } else {
            busy(30000);
        }
        if (tid() != t0)
            atomic_fetch_add(&moved_held, 1);
        drop();
        busy(10000); /* unlocked: preemptible, free to move */
    }
    gort_wg_done(&wg);
}

static void run_locks(void)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    if (!strcmp(kind, "recursive"))
        pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    else if (!strcmp(kind, "errorcheck"))
        pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&mu, &a);
    pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE);
    mtx_init(&cmtx, mtx_plain);
    gort_wg_add(&wg, WORKERS);
    for (intptr_t i = 0; i < WORKERS; i++)
        gort_go(locker, (void *)i);
    gort_wg_wait(&wg);
    gort_stats s;
    gort_stats_get(&s);
    printf("%s kind=%s rounds=%d bad_ret=%d max_inside=%d moved_held=%d refused_lock=%llu preempt_done=%llu\n",
           bad_ret || max_inside != 1 || moved_held ? "FAIL" : "ok", kind, rounds, bad_ret, max_inside,
           moved_held, (unsigned long long)s.preempt_refused_lock, (unsigned long long)s.preempt_done);
}

/* ---- no-preempt code ---- */

static GORT_NOPREEMPT bool busy_marked(int64_t ns) { return spin_for(ns); }

static _Atomic int moved[4], tries[4];

static void mover(void *arg)
{
    (void)arg;
    pthread_mutex_t own = PTHREAD_MUTEX_INITIALIZER; /* uncontended */
    for (int i = 0; i < rounds; i++) {
        for (int v = 0; v < 4; v++) {
            bool m;
            if (v == 0) {
                m = busy(1000000);
            } else if (v == 1) {
                m = busy_marked(1000000);
            } else if (v == 2) {
                gort_preempt_off();
                m = busy(1000000);
                gort_preempt_on();
            } else {
                check(pthread_mutex_lock(&own), "pthread_mutex_lock");
                m = busy(1000000);
                check(pthread_mutex_unlock(&own), "pthread_mutex_unlock");
            }
            if (m)
                atomic_fetch_add(&moved[v], 1);
            atomic_fetch_add(&tries[v], 1);
        }
    }
    gort_wg_done(&wg);
}

static bool want_migrate;

static void run_nopreempt(void)
{
    gort_wg_add(&wg, 3);
    for (int i = 0; i < 3; i++)
        gort_go(mover, NULL);
    gort_wg_wait(&wg);
    gort_stats s;
    gort_stats_get(&s);
    bool ok = moved[1] == 0 && moved[2] == 0 && moved[3] == 0 && !bad_ret &&
              (!want_migrate || (moved[0] > 0 && s.preempt_refused_nopreempt > 0 && s.preempt_refused_lock > 0));
    printf("%s kind=nopreempt tries=%d moved_plain=%d moved_marked=%d moved_region=%d moved_locked=%d "
           "refused_nopreempt=%llu refused_lock=%llu preempt_done=%llu\n",
           ok ? "ok" : "FAIL", tries[0], moved[0], moved[1], moved[2], moved[3],
           (unsigned long long)s.preempt_refused_nopreempt, (unsigned long long)s.preempt_refused_lock,
           (unsigned long long)s.preempt_done);
}

static void body(void *arg)
{
    (void)arg;
    if (!strcmp(kind, "nopreempt"))
        run_nopreempt();
    else
        run_locks();
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s recursive|errorcheck|default|rwlock|spin|mtx|nopreempt ROUNDS [migrate]\n",
                argv[0]);
        return 2;
    }
    kind = argv[1];
    rounds = atoi(argv[2]);
    want_migrate = argc > 3 && !strcmp(argv[3], "migrate");
    gort_main(body, NULL);
    fflush(stdout);
    if (bad_ret || max_inside > 1 || moved_held || moved[1] || moved[2] || moved[3])
        return 1;
    if (!strcmp(kind, "nopreempt") && want_migrate) {
        gort_stats s;
        gort_stats_get(&s);
        if (moved[0] == 0 || s.preempt_refused_nopreempt == 0 || s.preempt_refused_lock == 0)
            return 1;
    }
    return 0;
}
