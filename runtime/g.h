/*
 * g.h: the goroutine: G states, wait reasons, struct gort_g (each field says
 * what protects it) and the status transition check (gstatus.c).
 */
#ifndef GORT_RUNTIME_G_H
#define GORT_RUNTIME_G_H

#include "stack.h"

/*
 * G states.  Who may touch the G's stack in each:
 *   G_IDLE      just allocated, not yet published.            creator
 *   G_RUNNABLE  on a run queue (or runnext, inbox, a list).    nobody runs it
 *   G_RUNNING   executing user code on g->m.                   g->m
 *   G_SYSCALL   in a system call on g->m, holding no P.        g->m
 *   G_WAITING   parked; ctx saved; some queue owns a pointer.  nobody
 *   G_DEAD      exited or free; no stack.                      free list owner
 *   G_PREEMPTED suspended by the async preemption path.        nobody
 * Transitions are checked stores to g->status by its owner (see
 * gort__gstatus_move: a checked store, not a compare-and-swap).
 */
enum gort_gstatus {
    G_IDLE = 0,
    G_RUNNABLE,
    G_RUNNING,
    G_SYSCALL,
    G_WAITING,
    G_DEAD,
    G_PREEMPTED,
};

/* Wait reasons, named as Go names them in goroutine dumps. */
enum gort_waitreason {
    WR_ZERO = 0,
    WR_CHAN_RECEIVE,
    WR_CHAN_SEND,
    WR_CHAN_RECEIVE_NIL,
    WR_CHAN_SEND_NIL,
    WR_SELECT,
    WR_SELECT_NO_CASES,
    WR_SLEEP,
    WR_SYNC_MUTEX_LOCK,
    WR_SYNC_RWMUTEX_RLOCK,
    WR_SYNC_RWMUTEX_LOCK,
    WR_SYNC_WAITGROUP_WAIT,
    WR_SYNC_COND_WAIT,
    WR_SEMACQUIRE,
    WR_IO_WAIT,
    WR_PREEMPTED,
    WR_STOP_THE_WORLD,
    WR_PANICWAIT,
    WR_ERRGROUP_WAIT,
    WR_CONTEXT_DONE,
    WR_NUM
};
const char *gort__waitreason_str(int wr);
const char *gort__gstatus_str(const gort_g_t *gp); /* "running", "chan receive", ... */

typedef struct gort_defer gort_defer_t; /* panic.c */
typedef struct gort_panic gort_panic_t; /* panic.c */
typedef struct gort_callframe gort_callframe_t; /* panic.c */
typedef struct gort_pmsg gort_pmsg_t;   /* panic.c */
typedef struct gort_labels gort_labels_t; /* prof/labels.c */

struct gort_g {
    gort_regsave_t ctx;         /* saved context; valid while not running */
    gort_stack_t stack;     /* lo == 0 until first run; owner: the G's runner */
    _Atomic uint32_t status; /* enum gort_gstatus */
    uint8_t waitreason;      /* set before parking; read by dumps */
    _Atomic bool preempt;    /* please yield at the next safe point */
    bool main;               /* goroutine 1 of a gort_main call */
    _Atomic bool selectdone; /* select: first waker wins (chan.c) */
    uint8_t lockedext;       /* gort_lock_thread nesting (external) */
    bool foreign;            /* a plain thread's waiter, not a goroutine
                                (foreign.c); const */
    _Atomic uint8_t trace_sys; /* the tracer's syscall state (below); here
                                  in a hole, with profword after gfbatchn:
                                  a G of 320 bytes, not 384, is a cache line
                                  less for each goroutine spawned */
    _Atomic int32_t inrt;    /* inside a runtime call (gort__rt_enter); written
                                by the goroutine only, read by sysmon */
    gort_m_t *m;             /* M running it (RUNNING/SYSCALL), else NULL */
    _Atomic(gort_p_t *) lastp; /* P it last ran on; written by its runner, read by readiers */
    /* Above: the first cache line, what every switch touches; the next
     * holds the rest a park and a wake use (malg aligns Gs to lines). */
    int64_t waitsince;       /* coarse ns when it last parked */
    /* C locks (pthread mutex, rwlock, spinlock, C11 mtx) this goroutine
     * holds, and its gort_preempt_off nesting: while either is non-zero it
     * is pinned to its M and never preempted asynchronously
     * (locks_interpose.c).  Written by the goroutine only; read by its
     * M's signal handler, on the same thread. */
    _Atomic int32_t clocks;
    _Atomic int32_t nopreempt;
    gort_m_t *lockedm;       /* M it is locked to (gort_lock_thread, or
                                pinned by clocks/nopreempt) */
    gort_g_t *schedlink;     /* run queue / free list link; owner: that list */
    gort_sudog_t *waiting;   /* chan.c: sudogs this G waits with (select) */
    void *param;             /* passed by the waker (chan.c: the sudog) */
    uint64_t goid;           /* unique among live goroutines; main is 1 */
    void (*fn)(void *);      /* entry */
    void *arg;
    uint64_t parent_goid;    /* creator's id (0: not created by a goroutine) */
    uintptr_t gopc;          /* PC of the gort_go call that created it */
    gort_g_t *gfbatch;       /* global free list: next batch (batch heads only) */
    int32_t gfbatchn;        /* global free list: Gs in this batch (heads only) */
    _Atomic uint32_t profword; /* goroutine profile state (proc.h,
                                gort__gprof_want); CAS by its recorders */
    gort__timer_t *sleeptimer; /* gort_sleep's timer, allocated on first use */
    gort_defer_t *defers;    /* panic.c: LIFO */
    gort_panic_t *panicking; /* panic.c: innermost active panic */
    gort_callframe_t *callframe; /* panic.c: innermost gort_call or deferred-call
                                frame, on this G's stack; NULL: the entry
                                function's.  All three: this G only */
    gort_pmsg_t *recovered;  /* panic.c: messages gort_recover returned, kept
                                until the goroutine exits */
    gort_labels_t *labels;   /* prof: profiler labels (inherited) */
    int64_t syscallwhen;     /* ns when it entered the current syscall */
    uintptr_t syscallsp, syscallpc, syscallfp; /* caller of gort_syscall_enter:
                                 its SP, PC and frame pointer, for dumps */
    void *cxx_eh[2];         /* the C++ runtime's exception state while the
                                G is off its thread (cxx.h); written at its
                                switch out, read at its switch in */
    void *asan_fake_stack;   /* sanitizer fiber bookkeeping */
    void *tsan_fiber;
    uint32_t tsan_lives; /* goroutines that have used tsan_fiber */
    unsigned valgrind_stack_id;
    /* The execution tracer (prof/trace.c, runtime/trace.h): Go's
     * traceseq and tracelastp, written by whoever emits the G's event (its
     * runner, or the one waker), and the syscall protocol's state
     * (trace_sys, in the first line's hole: 0, 1: GoSysCall written, 2:
     * GoSysBlock written; atomic, paired with the taker's release) with the
     * times the call returned (written by the G) and was seen blocked (by
     * the taker, before its release). */
    uint64_t trace_seq;
    gort_p_t *trace_lastp;
    _Atomic int64_t trace_sysexit;  /* written by a goroutine leaving a call while a trace starts */
    _Atomic int64_t trace_sysblock;
};

/* A G's status is written only by whoever owns the G at that moment: the
 * M running it, or the one waker that took it off a wait queue.  So a
 * transition is a checked load and a release store, not a compare-and-swap:
 * three locked instructions fewer per switch (readers load with acquire). */
__attribute__((noreturn, cold)) void gort__badgstatus(gort_g_t *gp, uint32_t from, uint32_t to, uint32_t st);
static inline __attribute__((always_inline)) void gort__gstatus_move(gort_g_t *gp, uint32_t from, uint32_t to)
{
    uint32_t st = atomic_load_explicit(&gp->status, memory_order_relaxed);
    if (unlikely(st != from))
        gort__badgstatus(gp, from, to, st);
    atomic_store_explicit(&gp->status, to, memory_order_release);
}

#endif /* GORT_RUNTIME_G_H */
