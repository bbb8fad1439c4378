/*
 * exit_stress.c: the main goroutine returns while everything else is busy.
 *
 *   gort-exit-stress [ROUNDS] [SEED]          (make exit-stress RUNS=N)
 *
 * Each round is one gort_main whose main goroutine starts goroutines that
 * spin (only preemption moves them), sleep on timers, block for good on a
 * channel, a mutex and a select, sit in wrapped and unwrapped system
 * calls, and hold a locked thread, then returns after a random short
 * delay, often while the main thread itself is idle, polling, or in a
 * system call.  gort_main must return every time: the exit path
 * (runtime/exit.c) has no timed re-check, so a lost wake-up of the main
 * thread is a hang, which the make target turns into a failure with a
 * per-run timeout.  Several rounds per process because the worst races
 * are between one round's exit and the next round's start.
 *
 * Goroutines a round abandons stay where they are (the world is stopped
 * between rounds); those that would run forever watch the round number
 * and end when a later round has begun.  Exit status 0 if every round
 * returned and checked out.
 */
#include <gort.h>

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static _Atomic int round_no;
static _Atomic unsigned long started;
static uint64_t rng;

static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

/* Runs until a later round starts; no runtime calls inside the loop. */
static void spinner(void *arg)
{
    int mine = (int)(intptr_t)arg;
    volatile unsigned long x = 0;
    while (atomic_load_explicit(&round_no, memory_order_relaxed) == mine)
        x++;
}

static void sleeper(void *arg)
{
    int mine = (int)(intptr_t)arg;
    while (atomic_load(&round_no) == mine)
        gort_sleep(50 * 1000 + (int64_t)(mine % 7) * 30 * 1000);
}

/* Only short wrapped calls: each gets its P back on the fast path, so the
 * goroutine never schedules and the P's timers (the main goroutine's
 * sleep, at one proc) fire only because sysmon hands the P off while one
 * is due (sysmon/sysmon.c, retake_syscall; sysmon/syscall_timers). */
static void wrapped_sleeper(void *arg)
{
    int mine = (int)(intptr_t)arg;
    struct timespec ts = {0, 200 * 1000};
    while (atomic_load(&round_no) == mine)
        gort_nanosleep(&ts, NULL);
}

/* A blocking call the runtime does not see: sysmon takes the P away.  The
 * yield brings the goroutine back into the runtime: a thread that never
 * comes back (like one in a system call that never returns) keeps the
 * main thread from returning, by design. */
static void raw_sleeper(void *arg)
{
    int mine = (int)(intptr_t)arg;
    struct timespec ts = {0, 300 * 1000};
    while (atomic_load(&round_no) == mine) {
        nanosleep(&ts, NULL);
        gort_yield();
    }
}

static void locked_sleeper(void *arg)
{
    int mine = (int)(intptr_t)arg;
    gort_lock_thread();
    while (atomic_load(&round_no) == mine)
        gort_sleep(100 * 1000);
    gort_unlock_thread();
}

/* Blocks for good (the channel is never sent to). */
static void chan_blocker(void *arg)
{
    int v;
    gort_chan_recv(arg, &v);
}

static void mutex_blocker(void *arg)
{
    gort_mutex_lock(arg);
    gort_mutex_unlock(arg);
}

static void select_blocker(void *arg)
{
    gort_chan **cs = arg;
    int a, b;
    gort_case cases[2] = {
        {.ch = cs[0], .op = GORT_RECV, .elem = &a},
        {.ch = cs[1], .op = GORT_RECV, .elem = &b},
    };
    gort_select(cases, 2, true);
}

/* Ping-pong over an unbuffered channel until the round ends. */
static void pinger(void *arg)
{
    gort_chan *c = arg;
    int v = 0;
    int mine = atomic_load(&round_no);
    while (atomic_load(&round_no) == mine) {
        if (!gort_chan_trysend(c, &v))
            gort_yield();
    }
}

static void ponger(void *arg)
{
    gort_chan *c = arg;
    int v;
    for (;;)
        gort_chan_recv(c, &v);
}

/* What goroutines stay blocked on for good: kept reachable, so that the
 * leak checker of an ASan build does not report them. */
static void **kept;
static size_t nkept;
static void *keep(void *p)
{
    void **k = realloc(kept, (nkept + 1) * sizeof *k);
    if (!k)
        abort();
    kept = k;
    kept[nkept++] = p;
    return p;
}

struct round_args {
    int round;
    unsigned delay_us;
    unsigned mix;
};

static void main_goroutine(void *argp)
{
    struct round_args *a = argp;
    intptr_t r = a->round;
    atomic_fetch_add(&started, 1);
    gort_chan *never = keep(gort_chan_make(sizeof(int), 0));
    gort_chan **pair = keep(malloc(2 * sizeof *pair));
    pair[0] = keep(gort_chan_make(sizeof(int), 0));
    pair[1] = keep(gort_chan_make(sizeof(int), 1));
    gort_mutex *mu = keep(calloc(1, sizeof *mu));
    gort_mutex_lock(mu); /* never unlocked */
    gort_chan *pp = keep(gort_chan_make(sizeof(int), 0));

    if (a->mix & 1)
        gort_go(spinner, (void *)r);
    for (int i = 0; i < 3; i++)
        gort_go(sleeper, (void *)r);
    if (a->mix & 2)
        gort_go(wrapped_sleeper, (void *)r);
    if (a->mix & 4)
        gort_go(raw_sleeper, (void *)r);
    if (a->mix & 8)
        gort_go(locked_sleeper, (void *)r);
    gort_go(chan_blocker, never);
    gort_go(mutex_blocker, mu);
    gort_go(select_blocker, pair);
    if (a->mix & 16) {
        gort_go(ponger, pp);
        gort_go(pinger, pp);
    }
    /* Return now, after a yield, after a timer sleep, or from inside a
     * locked thread, so that the main thread is caught in each state. */
    switch (a->mix >> 5) {
    case 0:
        break;
    case 1:
        gort_yield();
        break;
    case 2:
        gort_lock_thread(); /* gort_main must unlock it on the way out */
        gort_sleep((int64_t)a->delay_us * 1000);
        break;
    default:
        gort_sleep((int64_t)a->delay_us * 1000);
        break;
    }
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 20;
    rng = argc > 2 ? strtoull(argv[2], NULL, 0) : (uint64_t)time(NULL);
    rng = rng * 2654435761u + 1;
    for (int i = 0; i < rounds; i++) {
        struct round_args a = {.round = i, .delay_us = rnd(2000), .mix = rnd(128)};
        atomic_store(&round_no, i);
        gort_maxprocs(1 + (int)rnd(4));
        if (gort_main(main_goroutine, &a) != 0) {
            fprintf(stderr, "exit-stress: gort_main failed in round %d\n", i);
            return 1;
        }
        if (atomic_load(&started) != (unsigned long)i + 1) {
            fprintf(stderr, "exit-stress: round %d: main goroutine did not run\n", i);
            return 1;
        }
    }
    atomic_store(&round_no, -1);
    return 0;
}
