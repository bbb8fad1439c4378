/*
 * lockpair.c: what libgort's lock interposition costs (docs/runtime.md,
 * "C locks").  ns per uncontended pthread_mutex_lock/unlock pair, and per
 * pthread_spin_lock/unlock pair, best of 5 runs of N pairs.  The Makefile
 * (make bench) builds it twice: lockpair-plain without gort (libc's
 * functions, called through the PLT) and lockpair-gort linked with
 * libgort.a, which measures both on a thread without a goroutine (before
 * gort_main) and in a goroutine.  Every run first starts and joins a
 * thread: glibc takes a mutex without atomic instructions while the
 * process has only ever had one thread, which gort's never is.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifdef WITH_GORT
#include <gort.h>
#endif

static long n = 20000000;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void measure(const char *where)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static pthread_spinlock_t sp;
    pthread_spin_init(&sp, PTHREAD_PROCESS_PRIVATE);
    double best_m = 1e30, best_s = 1e30;
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        for (long i = 0; i < n; i++) {
            pthread_mutex_lock(&mu);
            pthread_mutex_unlock(&mu);
        }
        double t1 = now();
        for (long i = 0; i < n; i++) {
            pthread_spin_lock(&sp);
            pthread_spin_unlock(&sp);
        }
        double t2 = now();
        if ((t1 - t0) / n < best_m)
            best_m = (t1 - t0) / n;
        if ((t2 - t1) / n < best_s)
            best_s = (t2 - t1) / n;
    }
    printf("%-24s mutex_pair_ns=%.2f spin_pair_ns=%.2f\n", where, best_m, best_s);
}

#ifdef WITH_GORT
static void body(void *arg)
{
    (void)arg;
    measure("gort, in a goroutine");
}
#endif

static void *nothing(void *arg) { return arg; }

int main(int argc, char **argv)
{
    if (argc > 1)
        n = atol(argv[1]);
    pthread_t t;
    pthread_create(&t, NULL, nothing, NULL);
    pthread_join(t, NULL);
#ifdef WITH_GORT
    measure("gort, no goroutine");
    gort_main(body, NULL);
#else
    measure("plain libc");
#endif
    return 0;
}
