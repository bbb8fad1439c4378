/*
 * p.h: the processor: P states, per-P counters and struct gort_p (each field
 * says what protects it; "owner P" means only the M holding it).
 */
#ifndef GORT_RUNTIME_P_H
#define GORT_RUNTIME_P_H

#include "lock.h"
#include "stack.h"

/*
 * P states:
 *   P_IDLE     its bit set in gort__idlepmask, or taken by clearing the bit
 *              (handed to an M by startm in nextp, or about to be acquired).
 *   P_RUNNING  owned by an M running user code or the scheduler.
 *   P_SYSCALL  its M is in a system call; sysmon may CAS it to P_IDLE and
 *              hand it to another M (retake).
 *   P_STOP     halted for stop-the-world; owned by the STW initiator.
 *   P_DEAD     beyond gomaxprocs; kept for reuse, owns nothing.
 */
enum gort_pstatus { P_IDLE = 0, P_RUNNING, P_SYSCALL, P_STOP, P_DEAD };

typedef struct gort_pstats {
    _Atomic uint64_t created, exited, switches, steals, stolen, globgets;
    _Atomic uint64_t timers_fired, preempt_coop;
    _Atomic uint64_t migrations; /* Gs that last ran on another P */
    /* steal_work calls, and the other Ps they looked at (sched.c) */
    _Atomic uint64_t steal_attempts, steal_probes;
} gort_pstats_t;

#define SLICE_OVER (1ULL << 32)

struct gort_p {
    int32_t id;
    _Atomic uint32_t status;     /* enum gort_pstatus */
    gort_p_t *link;              /* procresize's list of Ps with work; under sched.lock */
    gort_m_t *m;                 /* owner M; NULL when idle */
    /* The owner writes the fields from here on every switch or call; on
     * a line of their own, so that reading status (stealers, sysmon,
     * wakers) does not take the line from the owner each time. */
    _Atomic uint32_t schedtick __attribute__((aligned(GORT_CACHELINE))); /* incremented by every schedule; sysmon reads */
    _Atomic uint32_t syscalltick;/* incremented by every syscall; sysmon reads */
    _Atomic int64_t schedwhen;   /* ns of the last schedtick change (sysmon) */
    uint64_t goidcache, goidcacheend; /* owner P */
    bool globfair_owed;          /* the 61-tick global-queue turn was put off; owner P */
    /* sysmon: the slice runnext goroutines shared is up.  0, or
     * SLICE_OVER | the schedtick of that slice: a flag that lands after
     * a fresh slice has begun is stale and ignored. */
    _Atomic uint64_t slice_over;

    /* Local run queue: lock-free, single producer (owner), many consumers
     * (owner and stealers).  head is advanced by CAS with release order by
     * consumers; tail is stored with release order by the owner only. */
    _Atomic uint32_t runqhead __attribute__((aligned(GORT_CACHELINE)));
    _Atomic uint32_t runqtail;
    _Atomic(gort_g_t *) runnext; /* runs next, inherits the time slice */
    /* The only P (gomaxprocs 1): nobody can steal, so the owner moves
     * runnext and runqhead with plain stores, not locked RMWs (each a
     * full barrier that also waits for the switch's stores to cold
     * goroutine lines).  Written by procresize with the world stopped. */
    bool solo;
    /* Channel locks this P's owner holds by plain store (chan.c, "one P"):
     * written by the owner only, read by a revoker. */
    _Atomic int32_t chanheld;
    _Atomic(gort_g_t *) runq[GORT_RUNQ_SIZE];
    /* Goroutines other Ps send back here (wake-affine, sched.c): one slot,
     * filled by CAS from NULL, emptied by exchange (owner, stealers, or the
     * putter taking it back).  Kept out of runnext so that only the owner
     * ever stores into runnext, and can do so with a plain store when it
     * is empty; on its own line so that a remote put does not take the
     * owner's run-queue line. */
    _Atomic(gort_g_t *) inbox __attribute__((aligned(GORT_CACHELINE)));

    gort_g_t *gfree __attribute__((aligned(GORT_CACHELINE))); /* dead Gs; owner P */
    int32_t gfreecnt;
    gort_stack_t *stackcache;    /* owner P; GORT_STACK_PCACHE entries */
    int32_t nstackcache;
    gort_sudog_t *sudogcache;    /* owner P */
    int32_t nsudogcache;

    /* Timers: a binary min-heap on when, under timers_lock; timer0when is
     * the heap's earliest when (0: empty), atomic for lock-free peeking. */
    gort_lock_t timers_lock;
    gort__timer_t **timers;
    int32_t ntimers, timerscap;
    _Atomic int64_t timer0when;
    /* Timers in the heap that another P stopped (T_DELETED): the owner
     * takes them out (timer.c).  Incremented by the stopper, decremented
     * under timers_lock. */
    _Atomic int32_t ndeleted;

    gort_pstats_t stats;
    void *prof;                  /* prof/: per-P profiling state */
    /* The G whose system call the tracer saw enter on this P
     * (runtime/trace.h): set by the owner, taken by exchange. */
    _Atomic(gort_g_t *) trace_sysg;
} __attribute__((aligned(GORT_CACHELINE)));

#endif /* GORT_RUNTIME_P_H */
