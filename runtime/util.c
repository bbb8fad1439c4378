/*
 * util.c: small helpers the runtime needs everywhere: time, random
 * numbers, memory from the OS.
 */
#include "runtime.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t gort__nanotime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

_Atomic int64_t gort__sysmon_now; /* see gort__nanotime_stale */

/* A few ms of resolution for a few ns: wait times in dumps. */
int64_t gort__nanotime_coarse(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t gort_nanotime(void)
{
    gort__fork_check();
    return gort__nanotime();
}

/* wyrand over a per-M seed (a global one off the runtime's threads).  Not
 * for cryptography: run-queue victims and select order. */
static _Atomic uint64_t global_seed = 0x9e3779b97f4a7c15ULL;

static uint64_t wymix(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)(r >> 64) ^ (uint64_t)r;
}

uint32_t gort__fastrand(void)
{
    gort_m_t *m = gort__getm();
    uint64_t s;
    if (m) {
        if (m->randseed == 0)
            m->randseed = (uint64_t)gort__nanotime() ^ (m->id * 0xa0761d6478bd642fULL) ^ (uintptr_t)m;
        m->randseed += 0xa0761d6478bd642fULL;
        s = m->randseed;
    } else {
        s = atomic_fetch_add_explicit(&global_seed, 0xa0761d6478bd642fULL, memory_order_relaxed);
    }
    return (uint32_t)wymix(s, s ^ 0xe7037ed1a0b428dbULL);
}

/* Lemire's multiply-shift: uniform enough for n far below 2^32. */
uint32_t gort__fastrandn(uint32_t n)
{
    return (uint32_t)(((uint64_t)gort__fastrand() * n) >> 32);
}
