/*
 * stw.c: stopping and starting the world, and resizing the set of Ps.
 *
 * Stopping the world takes every P out of circulation: idle Ps directly,
 * Ps in system calls by CAS (their Ms find no P when they come back), and
 * running Ps by asking their goroutines to yield (g->preempt, plus a
 * SIGURG when sysmon's preemption is linked in).  The initiator waits on
 * stopnote until sched.stopwait reaches zero, re-asking every 100us.
 *
 * Only a goroutine may stop the world, and it first takes worldsema, a
 * runtime semaphore: a second initiator parks (releasing its P) instead of
 * spinning with its P held, which would deadlock the first.  While the
 * world is stopped the initiator holds m->locks, so it is neither preempted
 * nor moved, and must not park.
 *
 * Between gort_main calls the world stays stopped: all Ps are P_STOP and
 * abandoned goroutines stay on their queues until the next gort_main
 * starts the world again.
 */
#include "runtime.h"

#include <stdlib.h>
#include <string.h>

static _Atomic uint32_t worldsema = 1;

/* Pause accounting (gort_stats stw_*): a pause runs from the stop request
 * (worldsema taken) until the world runs again.  Written only by the
 * worldsema holder; read by gort_stats_get with relaxed loads. */
static int64_t stw_start;
static _Atomic uint64_t stw_count, stw_total_ns, stw_max_ns;

void gort__stw_stats(uint64_t *count, uint64_t *total_ns, uint64_t *max_ns)
{
    *count = atomic_load_explicit(&stw_count, memory_order_relaxed);
    *total_ns = atomic_load_explicit(&stw_total_ns, memory_order_relaxed);
    *max_ns = atomic_load_explicit(&stw_max_ns, memory_order_relaxed);
}

static void stw_account(void)
{
    uint64_t d = (uint64_t)(gort__nanotime() - stw_start);
    atomic_store_explicit(&stw_count, atomic_load_explicit(&stw_count, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&stw_total_ns, atomic_load_explicit(&stw_total_ns, memory_order_relaxed) + d,
                          memory_order_relaxed);
    if (d > atomic_load_explicit(&stw_max_ns, memory_order_relaxed))
        atomic_store_explicit(&stw_max_ns, d, memory_order_relaxed);
}

static gort_p_t *palloc(int32_t id)
{
    gort_p_t *pp = aligned_alloc(GORT_CACHELINE, (sizeof(gort_p_t) + GORT_CACHELINE - 1) & ~(size_t)(GORT_CACHELINE - 1));
    if (!pp)
        gort__throw("out of memory allocating a P");
    memset(pp, 0, sizeof(*pp));
    pp->id = id;
    gort__lock_init(&pp->timers_lock, LR_TIMERS);
    atomic_store_explicit(&pp->status, P_STOP, memory_order_relaxed);
    return pp;
}

static void pdestroy(gort_p_t *pp, gort_p_t *heir)
{
    gort_g_t *gs[GORT_RUNQ_SIZE + 1];
    int n = gort__runqdrain(pp, gs, GORT_RUNQ_SIZE + 1);
    /* To the head of the global queue, keeping their order. */
    for (int i = n - 1; i >= 0; i--)
        gort__globrunqputhead(gs[i]);
    gort__timers_move(pp, heir);
    gort__gfpurge(pp);
    gort__stack_pcache_flush(pp);
    gort__sudog_pcache_flush(pp);
    atomic_store_explicit(&pp->status, P_DEAD, memory_order_release);
}

gort_p_t *gort__procresize(int32_t nprocs)
{
    ASSERT_HELD(&gort__sched.lock);
    int32_t old = atomic_load_explicit(&gort__gomaxprocs, memory_order_relaxed);
    if (nprocs < 1 || nprocs > GORT_MAX_PROCS)
        gort__throw("procresize: invalid arg %d", nprocs);
    for (int32_t i = 0; i < nprocs; i++) {
        if (!gort__allp[i])
            gort__allp[i] = palloc(i);
        else if (atomic_load_explicit(&gort__allp[i]->status, memory_order_relaxed) == P_DEAD)
            atomic_store_explicit(&gort__allp[i]->status, P_STOP, memory_order_relaxed);
    }
    for (int32_t i = nprocs; i < old; i++)
        pdestroy(gort__allp[i], gort__allp[0]);
    atomic_store_explicit(&gort__gomaxprocs, nprocs, memory_order_release);
    for (int32_t i = 0; i < nprocs; i++)
        gort__allp[i]->solo = nprocs == 1;
#ifndef GORT_DEBUG_BUILD /* DEBUG builds keep lock-rank checks on every channel lock */
    /* Not with lock statistics on (set before the first procresize): the
     * plain path then has no lockstat test to make (lock_fast.h). */
    atomic_store(&gort__chansolo,
                 nprocs == 1 && gort__have_membarrier && !gort__settings.nochansolo && !gort__lockstat_on);
#endif

    /* Every P is stopped: rebuild the idle list from scratch. */
    atomic_store_explicit(&gort__sched.npidle, 0, memory_order_relaxed);
    for (int i = 0; i < GORT_PMASK_WORDS; i++)
        atomic_store_explicit(&gort__idlepmask.w[i], 0, memory_order_relaxed);

    gort_m_t *m = gort__getm();
    if (m->p && m->p->id < nprocs) {
        atomic_store_explicit(&m->p->status, P_RUNNING, memory_order_release);
    } else {
        if (m->p) {
            m->p->m = NULL;
            m->p = NULL;
        }
        gort_p_t *pp = gort__allp[0];
        pp->m = NULL;
        atomic_store_explicit(&pp->status, P_IDLE, memory_order_relaxed);
        gort__acquirep(pp);
    }
    gort_p_t *runnable = NULL;
    for (int32_t i = nprocs - 1; i >= 0; i--) {
        gort_p_t *pp = gort__allp[i];
        if (pp == m->p)
            continue;
        pp->m = NULL;
        if (gort__runqempty(pp)) {
            gort__pidleput(pp);
        } else {
            atomic_store_explicit(&pp->status, P_IDLE, memory_order_relaxed);
            pp->link = runnable;
            runnable = pp;
        }
    }
    return runnable;
}

static void preemptall(void)
{
    int32_t n = atomic_load_explicit(&gort__gomaxprocs, memory_order_relaxed);
    gort_m_t *self = gort__getm();
    /* pp->m and mp->curg are read without the owner's ordering: Ms, Ps
     * and Gs are never freed, and a stale answer only flags a goroutine
     * that has already left (execute clears the flag) or misses one that
     * the next call finds (stop_with_sema calls again every 100 us while
     * stopwait is not 0).  TSan reported these reads against goexit0 and
     * releasep; as around sysmon's retake, they are not recorded. */
    GORT_TSAN_IGNORE_READS_BEGIN();
    for (int32_t i = 0; i < n; i++) {
        gort_p_t *pp = gort__allp[i];
        if (atomic_load_explicit(&pp->status, memory_order_acquire) != P_RUNNING)
            continue;
        gort_m_t *mp = pp->m;
        if (!mp || mp == self)
            continue;
        gort_g_t *gp = mp->curg;
        if (gp)
            atomic_store_explicit(&gp->preempt, true, memory_order_release);
        gort__hook(preempt_m, mp);
    }
    GORT_TSAN_IGNORE_READS_END();
}

/* With worldsema held and m->locks raised. */
static void stop_with_sema(void)
{
    gort_m_t *m = gort__getm();
    gort__lock(&gort__sched.lock);
    int32_t n = atomic_load_explicit(&gort__gomaxprocs, memory_order_relaxed);
    gort__sched.stopwait = n;
    atomic_store_explicit(&gort__sched.stw_pending, 1, memory_order_seq_cst);
    preemptall();
    atomic_store_explicit(&m->p->status, P_STOP, memory_order_release);
    gort__sched.stopwait--;
    for (int32_t i = 0; i < n; i++) {
        gort_p_t *pp = gort__allp[i];
        uint32_t st = P_SYSCALL;
        if (atomic_compare_exchange_strong(&pp->status, &st, P_STOP)) {
            gort__trace_ptaken(pp);
            atomic_fetch_add_explicit(&pp->syscalltick, 1, memory_order_relaxed);
            gort__sched.stopwait--;
        }
    }
    gort_p_t *pp;
    while ((pp = gort__pidleget()) != NULL) {
        atomic_store_explicit(&pp->status, P_STOP, memory_order_release);
        gort__sched.stopwait--;
    }
    bool wait = gort__sched.stopwait > 0;
    gort__unlock(&gort__sched.lock);
    if (wait) {
        for (;;) {
            if (gort__notetsleep(&gort__sched.stopnote, 100 * 1000))
                break;
            preemptall();
        }
        gort__noteclear(&gort__sched.stopnote);
    }
    for (int32_t i = 0; i < n; i++) {
        uint32_t st = atomic_load_explicit(&gort__allp[i]->status, memory_order_acquire);
        if (st != P_STOP)
            gort__throw("stopTheWorld: P %d not stopped (status %u)", i, st);
    }
}

void gort__stop_the_world(const char *reason)
{
    (void)reason;
    if (!gort__getg())
        gort__throw("stop the world outside a goroutine");
    gort__semacquire(&worldsema, false, WR_STOP_THE_WORLD, 0);
    stw_start = gort__nanotime();
    gort_m_t *m = gort__getm();
    gort__m_locks_add(m, 1);
    stop_with_sema();
}

static int32_t newprocs;

void gort__set_newprocs(int32_t n) { newprocs = n; }
int32_t gort__get_newprocs(void) { return newprocs; }

/* Restarts the world with the current M holding a P (sched.lock held on
 * entry? no: takes it).  Used by start_the_world and gort_main. */
void gort__start_world_locked_m(void)
{
    gort__lock(&gort__sched.lock);
    int32_t n = newprocs ? newprocs : atomic_load_explicit(&gort__gomaxprocs, memory_order_relaxed);
    newprocs = 0;
    gort_p_t *runnable = gort__procresize(n);
    gort__trace(TEV_PROCS, NULL, gort__getm()->p, (uint64_t)n);
    atomic_store_explicit(&gort__sched.stw_pending, 0, memory_order_seq_cst);
    gort__unlock(&gort__sched.lock);
    gort__hook(sysmon_wake);
    while (runnable) {
        gort_p_t *pp = runnable;
        runnable = pp->link;
        pp->link = NULL;
        gort__startm(pp, false);
    }
    gort__wakep();
}

void gort__start_the_world(void)
{
    gort__start_world_locked_m();
    stw_account();
    gort_m_t *m = gort__getm();
    gort__m_locks_add(m, -1);
    gort__semrelease(&worldsema, false, 0);
}

/* The world stays stopped for good (the main goroutine returned: see
 * exit.c): the initiator lets go of worldsema and its no-preempt section
 * without restarting anything. */
void gort__world_stays_stopped(void)
{
    gort_m_t *m = gort__getm();
    gort__m_locks_add(m, -1);
    gort__semrelease(&worldsema, false, 0);
}

/* The crash dump's stop (prof/dump.c), Go's freezetheworld: ask every M
 * to stop at its next schedule and preempt the running goroutines, a few
 * rounds, without waiting for acknowledgement (the process is dying; an M
 * stuck in a system call never answers).  Async-signal-safe: atomics,
 * pthread_kill and nanosleep. */
void gort__freeze_world(void)
{
    gort_m_t *self = gort__getm();
    for (int round = 0; round < 5; round++) {
        /* Nobody decrements this to zero: no M waits for the stop to
         * finish, each just stops at its next schedule (Go's
         * freezetheworld). */
        gort__sched.stopwait = 0x7fffffff;
        atomic_store_explicit(&gort__sched.stw_pending, 1, memory_order_seq_cst);
        bool any = false;
        int32_t n = atomic_load_explicit(&gort__gomaxprocs, memory_order_relaxed);
        for (int32_t i = 0; i < n && i < GORT_MAX_PROCS; i++) {
            gort_p_t *pp = gort__allp[i];
            if (!pp || atomic_load_explicit(&pp->status, memory_order_acquire) != P_RUNNING)
                continue;
            gort_m_t *mp = __atomic_load_n(&pp->m, __ATOMIC_RELAXED);
            if (!mp || mp == self)
                continue;
            gort_g_t *gp = __atomic_load_n(&mp->curg, __ATOMIC_RELAXED);
            if (!gp)
                continue;
            atomic_store_explicit(&gp->preempt, true, memory_order_release);
            gort__hook(preempt_m, mp);
            any = true;
        }
        if (!any)
            break;
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}
