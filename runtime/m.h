/*
 * m.h: the OS thread: struct gort_m (each field says what protects it) and
 * the Ms' entry points (m.c).
 */
#ifndef GORT_RUNTIME_M_H
#define GORT_RUNTIME_M_H

#include "lock.h"

struct gort_m {
    uint64_t id;
    _Atomic pid_t tid;        /* set by the thread itself (minit); 0 until then */
    pthread_t thread;
    void *g0sp;               /* top of this M's scheduler stack; const */
    uintptr_t g0lo, g0hi;     /* bounds of the scheduler stack; const */
    uintptr_t g0top;          /* top of the thread's whole stack (g0 runs
                               * below the thread's first frames): what
                               * ASan is told, since gort_main returns
                               * into those frames */
    gort_g_t *curg;           /* G running on this M; written by this M */
    gort_p_t *p;              /* attached P; written by this M */
    gort_p_t *nextp;          /* P handed over by startm, under note */
    gort_p_t *oldp;           /* P held before entering a syscall */
    _Atomic int32_t locks;    /* runtime locks held + no-preempt sections;
                                 written by this M only (plain load/store),
                                 read by its signal handler and sysmon */
    _Atomic uint32_t pstate;  /* sysmon retake of a P from an M blocked
                                 outside the runtime: 0 owned, 1 revoking,
                                 2 revoked (retake, sysmon/sysmon.c),
                                 GORT_PSTATE_FORKED in a forked child
                                 (fork.c) */
    bool spinning;            /* looking for work; counted in sched.nmspinning */
    bool blocked;             /* asleep on park, and counted in midle or
                               * nmidlelocked; under sched.lock.  Set by the
                               * sleeper, cleared by whoever wakes it (so
                               * that two wakers cannot both see it set) */
    bool is_sysmon;
    bool is_main_thread;      /* thread that called gort_main */
    uint64_t randseed;        /* gort__fastrand state; this M only */
    int32_t readybatch;       /* check_timers: 1 + readies so far in a batch */
    gort_note_t park;         /* sleep here when idle */
    _Atomic uint32_t ing;     /* 1 while a goroutine's own code runs here:
                               * from its resume (gort__san_after_g0_to_g)
                               * to its next switch to g0.  sysmon revokes
                               * a P only then, never while the M is in
                               * the scheduler (execute, say) */
    gort_m_t *schedlink;      /* idle list; under sched.lock */
    gort_m_t *alllink;        /* all Ms; append-only, under sched.allm_lock */
    gort_g_t *lockedg;        /* G locked to this M */
    gort_regsave_t retctx;        /* gort_main's frame on the main thread */
    /* park arguments passed from gort__park to park_m */
    bool (*waitunlockf)(gort_g_t *, void *);
    void *waitlock;
    /* signals */
    void *sigstack;           /* sigaltstack base, pre-faulted */
    size_t sigstack_size;
    _Atomic uint32_t preempt_pending; /* a SIGURG is in flight (CAS) */
    _Atomic uint64_t preempt_gen;     /* bumped by each switch; sysmon coalescing */
    clockid_t cpuclock;       /* this thread's CPU-time clock */
    void *prof;               /* prof/: per-M sample buffer and timer */
    void *g0_fake_stack;      /* sanitizers */
    void *tsan_g0_fiber;
    bool tsan_g0_ours; /* tsan_g0_fiber was made by fiber_san.c, not the thread's own */
    uint32_t tsan_g0_entries; /* switches to g0 since tsan_g0_fiber was made */
    /* prof/dump.c asks a running M for its goroutine's stack: it sets
     * capture_req and sends SIGURG; the handler (sysmon/preempt.c) calls
     * gort__hooks.sigurg_capture (prof/unwind.c) before anything else. */
    _Atomic uint32_t capture_req;
    void *capture_buf;
    /* When the preemption signal now in flight was sent, or when sysmon
     * last found it unanswered (sysmon/preempt.c); written by whoever won
     * preempt_pending's CAS, relaxed. */
    _Atomic int64_t preempt_sent;
    /* Runtime-lock contention (lock.c): acquisitions that found the lock
     * taken, written by this M only (relaxed load and store), summed by
     * gort_stats_get; and the time this M waited on runtime locks since
     * it last charged the mutex profile (gort__lock_contention_flush),
     * this M only. */
    _Atomic uint64_t lock_contended;
    int64_t rtcont_ns;
    uint32_t rtcont_n;
    /* GORT_DEBUG=lockstat=1: the runtime locks this M holds, with the
     * times it took them, for hold times; this M only. */
    gort_lock_t *ls_lock[8];
    int64_t ls_t0[8];
    int ls_n;
#ifdef GORT_DEBUG_BUILD
    uint16_t held_ranks[32];  /* lock-rank witness */
    int nheld;
#endif
};

/* Ms (m.c) */
gort_m_t *gort__allocm(void);
/* false: no thread for now (EAGAIN), nothing changed (m.c). */
bool gort__newm(gort_p_t *pp, bool spinning, gort_g_t *lockedg);
void gort__minit(gort_m_t *m); /* on the new thread: TLS, signal stack, mask */
void gort__munsetup(gort_m_t *m);
int64_t gort__thread_cputime(gort_m_t *m);

#endif /* GORT_RUNTIME_M_H */
