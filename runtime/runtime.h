/*
 * runtime.h: the runtime's internal types and entry points, shared by
 * runtime/, sysmon/ and prof/.  Nothing here is public API.
 *
 * G is a goroutine, M an OS thread, P a processor: the right to run
 * goroutines.  An M needs a P to run a G; there are exactly gomaxprocs Ps.  See docs/runtime.md for the states and transitions; the
 * short version lives beside each enum below.
 *
 * Every shared field says what protects it.  "owner P" means only the M
 * currently holding that P; "atomic" names its memory order where it is not
 * the default sequentially consistent one.
 */
#ifndef GORT_RUNTIME_H
#define GORT_RUNTIME_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#if defined(GORT_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

#include "arch.h"
#include "gort.h"
#include "hooks.h"
#include "lockrank.h"

#define GORT_HIDDEN __attribute__((visibility("hidden")))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define GORT_MAX_PROCS 1024
#define GORT_RUNQ_SIZE 256
#define GORT_MAX_MS 10000

typedef struct gort_g gort_g_t;
typedef struct gort_m gort_m_t;
typedef struct gort_p gort_p_t;
typedef struct gort_sudog gort_sudog_t;
typedef struct gort__timer gort__timer_t;

/* ------------------------------------------------------------------ */
/* Locks (lock.c)                                                       */
/* ------------------------------------------------------------------ */

/* A runtime lock: spins briefly, then sleeps on a futex.  Held only on an
 * M, never across a park; while held, m->locks > 0 and the goroutine cannot
 * be preempted. */
typedef struct gort_lock {
    _Atomic uint32_t key;      /* 0 unlocked, 1 locked */
    _Atomic uint16_t sleepers; /* threads asleep (or about to be) on key */
    uint16_t rank;             /* enum gort_lockrank */
} gort_lock_t;

#define GORT_LOCK_INIT(r) {0, 0, (r)}
#define GORT_LOCK_SOLO 2 /* key of a channel lock taken by plain store (chan.c) */
/* membarrier(2), private expedited (lock.c): registered once at init. */
extern bool gort__have_membarrier;
void gort__membarrier_init(void);
void gort__membarrier(void);
void gort__lock_init(gort_lock_t *l, int rank);
/* gort__lock and gort__unlock are inline (below, after gort_m); these are
 * their contended halves and, in DEBUG builds, the whole ranked versions. */
void gort__lock_slow(gort_lock_t *l);
void gort__unlock_slow(gort_lock_t *l, uint32_t key, uint16_t sleepers);
void gort__lock_full(gort_lock_t *l);
void gort__unlock_full(gort_lock_t *l);
bool gort__trylock(gort_lock_t *l);
#ifdef GORT_DEBUG_BUILD
void gort__assert_held(gort_lock_t *l);
#define ASSERT_HELD(l) gort__assert_held(l)
#else
#define ASSERT_HELD(l) ((void)0)
#endif

/* One-shot wakeup on a futex: sleep until woken; wakeup exactly once
 * between clears.  Used to park Ms. */
typedef struct gort_note {
    _Atomic uint32_t key;
} gort_note_t;
void gort__notesleep(gort_note_t *n);
bool gort__notetsleep(gort_note_t *n, int64_t ns); /* true if woken */
void gort__notewakeup(gort_note_t *n);
static inline void gort__noteclear(gort_note_t *n) { atomic_store_explicit(&n->key, 0, memory_order_relaxed); }

void gort__futex_wait(_Atomic uint32_t *addr, uint32_t val, int64_t ns);
void gort__futex_wake(_Atomic uint32_t *addr, int n);
void gort__osyield(void);
void gort__usleep(int64_t us);

/* ------------------------------------------------------------------ */
/* Stacks (stack.c)                                                     */
/* ------------------------------------------------------------------ */

typedef struct gort_stack {
    uintptr_t lo; /* lowest usable byte; the guard (if any) lies below */
    uintptr_t hi; /* one past the highest byte */
    int guard;    /* enum gort_guard_kind */
} gort_stack_t;

enum gort_guard_kind {
    GUARD_MADVISE = 1, /* MADV_GUARD_INSTALL: no VMA per guard */
    GUARD_MPROTECT,    /* a PROT_NONE page: two VMAs per stack */
    GUARD_CANARY,      /* no guard page: canary word checked at switches */
};

void gort__stack_init(void);
bool gort__stack_alloc(gort_p_t *p, gort_stack_t *out);
void gort__stack_free(gort_p_t *p, gort_stack_t *s);
void gort__stack_pcache_flush(gort_p_t *p);
bool gort__stack_check(const gort_stack_t *s); /* canary intact */
size_t gort__stack_size(void);
uintptr_t gort__stack_guard_lo(const gort_stack_t *s);
size_t gort__stack_scavenge(void);     /* sysmon: returns bytes given back */
uint64_t gort__stacks_allocated(void); /* counters for gort_stats_get */
uint64_t gort__stacks_pooled(void);

/* ------------------------------------------------------------------ */
/* G                                                                    */
/* ------------------------------------------------------------------ */

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
 * gort__casgstatus: despite the name, not a compare-and-swap).
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
    gort_ctx_t ctx;         /* saved context; valid while not running */
    gort_stack_t stack;     /* lo == 0 until first run; owner: the G's runner */
    _Atomic uint32_t status; /* enum gort_gstatus */
    uint8_t waitreason;      /* set before parking; read by dumps */
    _Atomic bool preempt;    /* please yield at the next safe point */
    bool main;               /* goroutine 1 of a gort_main call */
    _Atomic bool selectdone; /* select: first waker wins (chan.c) */
    uint8_t lockedext;       /* gort_lock_thread nesting (external) */
    bool foreign;            /* a plain thread's waiter, not a goroutine
                                (foreign.c); const */
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
    void *asan_fake_stack;   /* sanitizer fiber bookkeeping */
    void *tsan_fiber;
    uint32_t tsan_lives; /* goroutines that have used tsan_fiber */
    unsigned valgrind_stack_id;
};

/* ------------------------------------------------------------------ */
/* M                                                                    */
/* ------------------------------------------------------------------ */

struct gort_m {
    uint64_t id;
    pid_t tid;
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
                                 2 revoked (retake, sysmon/sysmon.c) */
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
    gort_ctx_t retctx;        /* gort_main's frame on the main thread */
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
#ifdef GORT_DEBUG_BUILD
    uint16_t held_ranks[32];  /* lock-rank witness */
    int nheld;
#endif
};

/* ------------------------------------------------------------------ */
/* P                                                                    */
/* ------------------------------------------------------------------ */

/*
 * P states:
 *   P_IDLE     on sched.pidle, or handed to an M by startm (nextp).
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
} gort_pstats_t;

struct gort_p {
    int32_t id;
    _Atomic uint32_t status;     /* enum gort_pstatus */
    gort_p_t *link;              /* idle list; under sched.lock */
    gort_m_t *m;                 /* owner M; NULL when idle */
    _Atomic uint32_t schedtick;  /* incremented by every schedule; sysmon reads */
    _Atomic uint32_t syscalltick;/* incremented by every syscall; sysmon reads */
    _Atomic int64_t schedwhen;   /* ns of the last schedtick change (sysmon) */
    uint64_t goidcache, goidcacheend; /* owner P */
    bool globfair_owed;          /* the 61-tick global-queue turn was put off; owner P */
    _Atomic bool slice_over;     /* sysmon: the slice runnext goroutines shared is up */

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

    gort_pstats_t stats;
    void *prof;                  /* prof/: per-P profiling state */
} __attribute__((aligned(GORT_CACHELINE)));

/* ------------------------------------------------------------------ */
/* The scheduler's global state                                        */
/* ------------------------------------------------------------------ */

typedef struct gort_sched {
    gort_lock_t lock;              /* protects the fields below unless marked */
    gort_m_t *midle;               /* idle Ms */
    int32_t nmidle;
    int32_t nmidlelocked;          /* Ms blocked on their locked G */
    int32_t mcount;                /* Ms created (sysmon not counted) */
    uint64_t mnext;                /* next M id */
    gort_p_t *pidle;               /* idle Ps */
    _Atomic int32_t npidle;        /* atomic: read without the lock by wakep */
    _Atomic int32_t nmspinning;    /* atomic */
    gort_g_t **gq;                 /* global run queue: a ring of gqcap (a power of */
    uint32_t gqcap, gqhead;        /* two) slots from gqhead, runqsize of them used */
    _Atomic int32_t runqsize;      /* atomic reads allowed without lock */

    gort_lock_t gflock;            /* global free Gs */
    gort_g_t *gfree;               /* batches: schedlink chains, heads linked by gfbatch */
    int32_t ngfree;

    _Atomic uint32_t gcwaiting;    /* stop-the-world pending; atomic */
    int32_t stopwait;              /* Ps still to stop */
    gort_note_t stopnote;
    gort_lock_t worldlock;         /* serializes STW initiators (LR_WORLD) */

    _Atomic int64_t lastpoll;      /* 0: an M is blocked in netpoll */
    _Atomic int64_t pollUntil;     /* when that poll will wake */
    /* Set by sysmon when a timer is overdue while no P idles (its P's
     * thread waits for a CPU or sits in a call); the next M to schedule
     * takes it (exchange) and runs every P's due timers. */
    _Atomic uint32_t timers_overdue;

    _Atomic uint64_t goidgen;

    gort_lock_t allm_lock;
    gort_m_t *allm;

    _Atomic int32_t main_running;  /* inside gort_main */
    _Atomic int32_t main_done;     /* main goroutine returned; M0 must return */
    gort_m_t *main_m;              /* the thread that called gort_main */

    _Atomic uint32_t sysmonwait;   /* sysmon is sleeping on sysmonnote */
    gort_note_t sysmonnote;
    _Atomic int32_t nsyscall_ms;   /* Ms in a syscall without P */
} gort_sched_t;

extern gort_sched_t gort__sched;
extern gort_p_t *gort__allp[GORT_MAX_PROCS];
extern _Atomic int32_t gort__gomaxprocs;
extern _Atomic int32_t gort__ncpu;
extern gort_m_t *gort__m0;

/* Environment-derived settings (main.c). */
typedef struct gort_settings {
    int64_t slice_ns;        /* GORT_SLICE_US */
    size_t stack_size;       /* GORT_STACK_SIZE */
    int schedtrace_ms;       /* GORT_DEBUG=schedtrace=MS */
    int scheddetail;         /* GORT_DEBUG=scheddetail=1 */
    int asyncpreemptoff;     /* GORT_DEBUG=asyncpreemptoff=1 */
    int randomize;           /* GORT_DEBUG=randomize=1 (or DEBUG builds) */
    int traceback;           /* GORT_TRACEBACK: 0 none, 1 single, 2 all, 3 system, 4 crash */
    int nodeadlock;          /* GORT_DEBUG=deadlock=0 */
    int mutexfence;          /* GORT_DEBUG=mutexfence=1: gort_mutex unlocks by atomic add */
    int nochansolo;          /* GORT_DEBUG=chansolo=0: channel locks always by CAS */
} gort_settings_t;
extern gort_settings_t gort__settings;

/* Sanitizer fiber annotations around switches (fiber_san.c). */
#if defined(GORT_ASAN) || defined(GORT_TSAN)
void gort__san_g0_to_g(gort_m_t *m, gort_g_t *gp);
void gort__san_after_g0_to_g(gort_g_t *gp);
void gort__san_g_to_g0(gort_m_t *m, gort_g_t *gp, bool dying);
void gort__san_after_g_to_g0(gort_m_t *m);
#else
/* Without a fiber-aware sanitizer only m->ing is left to keep (see
 * fiber_san.c): inline, as they run on every switch. */
static inline void gort__san_g0_to_g(gort_m_t *m, gort_g_t *gp) { (void)m, (void)gp; }
static inline void gort__san_after_g0_to_g(gort_g_t *gp)
{
    atomic_store_explicit(&gp->m->ing, 1, memory_order_relaxed);
}
static inline void gort__san_g_to_g0(gort_m_t *m, gort_g_t *gp, bool dying)
{
    (void)gp, (void)dying;
    atomic_store_explicit(&m->ing, 0, memory_order_relaxed);
}
static inline void gort__san_after_g_to_g0(gort_m_t *m) { (void)m; }
#endif
void gort__san_minit(gort_m_t *m);
/* gort_main's scheduler stack as its own TSan fiber (returns the caller's). */
void *gort__san_main_enter(gort_m_t *m);
void gort__san_main_leave(gort_m_t *m, void *caller);
void gort__san_g_created(gort_g_t *gp);
void gort__san_g_destroyed(gort_g_t *gp);

/* ------------------------------------------------------------------ */
/* Scheduler entry points (sched.c, proc.c)                            */
/* ------------------------------------------------------------------ */

static inline gort_g_t *gort__getg(void)
{
    gort_m_t *m = gort__getm();
    return m ? m->curg : NULL;
}

/* A counter written by one thread only and read by others: no locked
 * read-modify-write needed. */
#define GORT_OWNER_ADD(p, d) \
    atomic_store_explicit((p), atomic_load_explicit((p), memory_order_relaxed) + (d), memory_order_relaxed)
#define GORT_OWNER_INC(p) GORT_OWNER_ADD(p, 1)

/* Entered at the top of every public call that uses the M's P while a
 * goroutine runs.  g->inrt tells sysmon the M is inside the runtime (its P
 * must not be retaken); the signal fence orders the store before the
 * pstate check as seen from sysmon's membarrier (asymmetric Dekker: the
 * heavy barrier is on sysmon's side, this side is two plain accesses). */
void gort__rt_enter_slow(gort_m_t *m);
static inline gort_g_t *gort__rt_enter(void)
{
    gort_m_t *m = gort__getm();
    gort_g_t *gp = m ? m->curg : NULL;
    if (gp) {
        GORT_OWNER_ADD(&gp->inrt, 1);
        atomic_signal_fence(memory_order_seq_cst);
        if (unlikely(atomic_load_explicit(&m->pstate, memory_order_relaxed) != 0))
            gort__rt_enter_slow(m);
    }
    return gp;
}
static inline void gort__rt_leave(gort_g_t *gp)
{
    if (gp) {
#if defined(GORT_TSAN)
        /* What the M did in the runtime happens before a revoke of its P
         * (sysmon acquires after membarrier(2), which TSan cannot see). */
        __tsan_release(&gp->inrt);
#endif
        atomic_signal_fence(memory_order_seq_cst);
        GORT_OWNER_ADD(&gp->inrt, -1);
    }
}
/* Checks g->preempt at a runtime call and yields if asked. */
void gort__preempt_check(void);
/* Leaving an API call is a safe point, like a Go function prologue: a
 * goroutine asked to yield (sysmon's slice, stop-the-world) does it here,
 * still inside the runtime.  Without it a goroutine that spends most of
 * its time in runtime calls (a spawner, a try-send loop) was preempted
 * only when a signal happened to land in its own code. */
static inline void gort__rt_leave_preempt(gort_g_t *gp)
{
    if (gp) {
        if (unlikely(atomic_load_explicit(&gp->preempt, memory_order_relaxed)) &&
            atomic_load_explicit(&gp->inrt, memory_order_relaxed) == 1)
            gort__preempt_check();
        gort__rt_leave(gp);
    }
}
static inline void gort__m_locks_add(gort_m_t *m, int32_t d) { GORT_OWNER_ADD(&m->locks, d); }

/* Pinned by a held C lock or a gort_preempt_off region (locks_interpose.c),
 * apart from gort_lock_thread's own count. */
static inline bool gort__g_pinned(const gort_g_t *gp)
{
    return atomic_load_explicit(&gp->clocks, memory_order_relaxed) != 0 ||
           atomic_load_explicit(&gp->nopreempt, memory_order_relaxed) != 0;
}
/* Preemptions the SIGURG handler refused because the goroutine held a C
 * lock, or because it was in a GORT_NOPREEMPT function or a
 * gort_preempt_off region (locks_interpose.c; counted by sysmon/preempt.c). */
extern _Atomic uint64_t gort__pstat_refused_lock, gort__pstat_refused_marked;
/* Resolves the real lock functions; runtime init calls it, which also
 * links the interposers into every program that uses libgort.a. */
void gort__clocks_init(void);

/* Inline, as a channel operation takes and drops its lock on every call.
 * The lock is one CAS; the unlock is a plain release store and a load of
 * the sleeper count, no locked instruction (lock.c says why that is safe). */
static inline void gort__lock(gort_lock_t *l)
{
#ifdef GORT_DEBUG_BUILD
    gort__lock_full(l);
#else
    gort_m_t *m = gort__getm();
    if (m)
        gort__m_locks_add(m, 1);
    uint32_t v = 0;
    if (unlikely(!atomic_compare_exchange_strong_explicit(&l->key, &v, 1, memory_order_acquire,
                                                          memory_order_relaxed)))
        gort__lock_slow(l);
#endif
}
static inline void gort__unlock(gort_lock_t *l)
{
#ifdef GORT_DEBUG_BUILD
    gort__unlock_full(l);
#else
    /* Both read before the store: once it lands, the lock's memory may be
     * freed by the next holder (gort_chan_free). */
    uint32_t k = atomic_load_explicit(&l->key, memory_order_relaxed);
    uint16_t sl = atomic_load_explicit(&l->sleepers, memory_order_relaxed);
    atomic_store_explicit(&l->key, 0, memory_order_release);
    gort_m_t *m = gort__getm();
    if (unlikely(k != 1 || sl != 0)) {
        if (k == GORT_LOCK_SOLO)
            GORT_OWNER_ADD(&m->p->chanheld, -1); /* after the store: see chan.c */
        /* A thread may sleep on a channel lock that the owner then takes
         * the plain way (it slept before a procresize back to one P). */
        if (k != GORT_LOCK_SOLO || sl != 0)
            gort__unlock_slow(l, k, sl);
    }
    if (m)
        gort__m_locks_add(m, -1);
#endif
}

/* Channel locks.  With one P, channel locks are taken by plain stores
 * (key GORT_LOCK_SOLO) by whoever holds that P, and anyone else first
 * turns that off (chan.c, "One P").  Two locked instructions fewer per
 * channel hand-off. */
extern _Atomic int gort__chansolo;
extern _Atomic uint64_t gort__chansolo_revokes; /* for tests */
void gort__chan_lock_shared(gort_lock_t *l);
static inline __attribute__((always_inline)) void gort__chan_lock(gort_lock_t *l)
{
#ifndef GORT_DEBUG_BUILD
    gort_m_t *m = gort__getm();
    gort_p_t *pp = m ? m->p : NULL;
    if (likely(pp != NULL)) {
        if (atomic_load_explicit(&gort__chansolo, memory_order_relaxed)) {
            gort__m_locks_add(m, 1);
            GORT_OWNER_INC(&pp->chanheld);
            /* The count's store before the flag's load: a revoker's
             * membarrier orders them in hardware. */
            atomic_signal_fence(memory_order_seq_cst);
            if (likely(atomic_load_explicit(&gort__chansolo, memory_order_relaxed)) &&
                likely(atomic_load_explicit(&l->key, memory_order_acquire) == 0)) {
                atomic_store_explicit(&l->key, GORT_LOCK_SOLO, memory_order_relaxed);
                return;
            }
            GORT_OWNER_ADD(&pp->chanheld, -1);
            gort__m_locks_add(m, -1);
        }
        gort__lock(l);
        return;
    }
#endif
    gort__chan_lock_shared(l);
}

void gort__runtime_init(void);
/* main.c: gort_main's work once prof/start.c has brought the layers up. */
int gort__main(void (*fn)(void *), void *arg);
__attribute__((noreturn)) void gort__schedule(void);
void gort__execute(gort_g_t *gp, bool inherit) __attribute__((noreturn));

/* Parks the running goroutine.  unlockf(g, lock), if given, runs on the M's
 * own stack after the goroutine's context is saved; if it returns false the
 * goroutine resumes at once.  From the moment unlockf releases the lock,
 * another thread may ready the goroutine.  On a plain thread the same, with
 * gort__waiter()'s G, the thread sleeping in the kernel (foreign.c). */
void gort__park_m(void *arg); /* g0's half (sched.c) */
/* Threads the runtime did not start (foreign.c).  Such a thread blocks
 * through a waiter shaped like a G (g->foreign) that it queues where a
 * goroutine would, and sleeps on a futex until a waker readies it. */
gort_g_t *gort__foreign_g(void);
__attribute__((cold)) void gort__foreign_park(bool (*unlockf)(gort_g_t *, void *), void *lock, int reason);
__attribute__((cold)) void gort__foreign_ready(gort_g_t *gp);
/* A thread the runtime did not start is alive: it may still wake someone
 * (checkdead).  Reads /proc; takes allm_lock. */
bool gort__foreign_threads_live(void);
/* The G a blocking call queues: the running goroutine, else the calling
 * plain thread's waiter. */
static inline gort_g_t *gort__waiter(void)
{
    gort_g_t *gp = gort__getg();
    return likely(gp != NULL) ? gp : gort__foreign_g();
}
/* Inline, like the lock: every return between the switch and the caller's
 * own code is mispredicted when the goroutine resumes (the return stack
 * buffer holds g0's calls), so each call level here cost a few ns per
 * switch. */
static inline __attribute__((always_inline)) void gort__park(bool (*unlockf)(gort_g_t *, void *), void *lock,
                                                             int reason)
{
    gort_m_t *m = gort__getm();
    gort_g_t *gp = m ? m->curg : NULL;
    if (unlikely(!gp)) {
        gort__foreign_park(unlockf, lock, reason);
        return;
    }
    m->waitlock = lock;
    m->waitunlockf = unlockf;
    gp->waitreason = (uint8_t)reason;
    gort__san_g_to_g0(m, gp, false);
    gort__mcall(&gp->ctx, m->g0sp, gort__park_m, gp);
    gort__san_after_g0_to_g(gp);
}
bool gort__unlock_fn(gort_g_t *gp, void *l);
static inline __attribute__((always_inline)) void gort__park_unlock(gort_lock_t *l, int reason)
{
    gort__park(gort__unlock_fn, l, reason);
}
/* Tests only: called by ready() when it has found gp's last P running,
 * before it puts gp there (sched.c, affine_put). */
extern void (*gort__affine_hook)(gort_p_t *lp);
/* Tests only: channel hand-offs go home whatever the queues hold, so that
 * the put and take-back paths run with empty queues. */
extern bool gort__handoff_always_home;
/* Tests: affine puts taken back because the P went idle meanwhile. */
extern _Atomic uint64_t gort__affine_takebacks;
/* Makes a parked goroutine runnable on the current P (runnext if next). */
void gort__ready(gort_g_t *gp, bool next);
/* The same, for a goroutine a channel operation has just handed a value
 * to, or (sender) taken one from: wake-affine only when it balances, and
 * a sender does not displace runnext (sched.c). */
void gort__ready_handoff(gort_g_t *gp, bool sender);
/* Adds a batch of runnable Gs (linked by schedlink) to run queues. */
void gort__injectglist(gort_g_t *list);
/* Yields the processor; the goroutine goes to the tail of the local queue. */
void gort__gosched(void);
/* Called by the async preemption path with the G's state already saved. */
void gort__preempt_park(void);

/* A G's status is written only by whoever owns the G at that moment: the
 * M running it, or the one waker that took it off a wait queue.  So a
 * transition is a checked load and a release store, not a compare-and-swap:
 * three locked instructions fewer per switch (readers load with acquire). */
__attribute__((noreturn, cold)) void gort__badgstatus(gort_g_t *gp, uint32_t from, uint32_t to, uint32_t st);
static inline __attribute__((always_inline)) void gort__casgstatus(gort_g_t *gp, uint32_t from, uint32_t to)
{
    uint32_t st = atomic_load_explicit(&gp->status, memory_order_relaxed);
    if (unlikely(st != from))
        gort__badgstatus(gp, from, to, st);
    atomic_store_explicit(&gp->status, to, memory_order_release);
}
void gort__wakep(void);
void gort__startm(gort_p_t *pp, bool spinning);
void gort__handoffp(gort_p_t *pp);
void gort__acquirep(gort_p_t *pp);
gort_p_t *gort__releasep(void);
void gort__pidleput(gort_p_t *pp);
gort_p_t *gort__pidleget(void);
void gort__stopm(void);
void gort__checkdead(void);
void gort__stoplockedm(void);
void gort__startlockedm(gort_g_t *gp) __attribute__((noreturn));

/* Run queues (runq.c) */
void gort__runqput_slow(gort_p_t *pp, gort_g_t *gp, bool next);
gort_g_t *gort__runqget_slow(gort_p_t *pp, bool *inherit);
/* The runnext hand-off inline (a channel conversation does one put and one
 * get per switch); the ring, a kicked-out runnext and the randomized
 * debug order go out of line (runq.c). */
static inline void gort__runqput(gort_p_t *pp, gort_g_t *gp, bool next)
{
    /* Only the owner stores into runnext (other Ps put into inbox, and
     * stealers only take), so an empty runnext stays empty until our
     * store: no locked instruction needed.  The release orders gp's
     * fields before a stealer's CAS that takes it. */
    if (next && !gort__settings.randomize && !atomic_load_explicit(&pp->runnext, memory_order_relaxed) &&
        likely(!atomic_load_explicit(&pp->inbox, memory_order_relaxed))) {
        atomic_store_explicit(&pp->runnext, gp, memory_order_release);
        return;
    }
    gort__runqput_slow(pp, gp, next);
}
gort_g_t *gort__inbox_take(gort_p_t *pp);
static inline gort_g_t *gort__runqget(gort_p_t *pp, bool *inherit)
{
    gort_g_t *next = atomic_load_explicit(&pp->runnext, memory_order_relaxed);
    if (next && pp->solo) {
        atomic_store_explicit(&pp->runnext, NULL, memory_order_relaxed);
        *inherit = true;
        return next;
    }
    if (next && atomic_compare_exchange_strong_explicit(&pp->runnext, &next, NULL, memory_order_acquire,
                                                        memory_order_relaxed)) {
        *inherit = true;
        return next;
    }
    return gort__runqget_slow(pp, inherit);
}
bool gort__runqempty(gort_p_t *pp);
gort_g_t *gort__runqsteal(gort_p_t *pp, gort_p_t *victim, bool steal_runnext);
void gort__globrunqput(gort_g_t *gp);          /* sched.lock held */
void gort__globrunqputhead(gort_g_t *gp);      /* sched.lock held */
void gort__globrunqputbatch(gort_g_t *head, int32_t n); /* held; n Gs linked by schedlink */
gort_g_t *gort__globrunqget(gort_p_t *pp, int32_t max); /* held */
gort_g_t *gort__globrunqpop(void);             /* held; the head, or NULL */
uint32_t gort__runqlen(gort_p_t *pp);
int gort__runqdrain(gort_p_t *pp, gort_g_t **out, int max); /* P must be stopped */

/* Stop the world (stw.c).  Callable from a goroutine or from g0 with a P. */
void gort__stop_the_world(const char *reason);
void gort__start_the_world(void);
/* Best-effort stop for a crash dump: no waiting (stw.c).  Async-signal-safe. */
void gort__freeze_world(void);
gort_p_t *gort__procresize(int32_t nprocs); /* world stopped, sched.lock held; returns Ps with work */
/* Starts the world with sched.lock not held, the caller's M taking a P
 * (start_the_world and gort_main). */
void gort__start_world_locked_m(void);
/* GOMAXPROCS waiting for the next start of the world; 0: none.  Under
 * sched.lock, or before the world first starts. */
void gort__set_newprocs(int32_t n);
int32_t gort__get_newprocs(void);
void gort__world_stays_stopped(void);        /* after stop_the_world: see exit.c */

/* The main goroutine's exit (exit.c) */
void gort__main_exit_on_g(void);
void gort__main_exit_on_g0(gort_m_t *m);
void gort__main_exit_check(gort_m_t *m);        /* a checkpoint: leaves if DONE */
void gort__main_exit_check_locked(gort_m_t *m); /* sched.lock held, before registering idle */
bool gort__main_exit_due(gort_m_t *m);          /* the poller's check before blocking */
void gort__main_exit_finish(gort_m_t *m);       /* gort_main's return path */

/* Goroutines (proc.c) */
gort_g_t *gort__newproc(void (*fn)(void *), void *arg, uintptr_t pc, bool main);
void gort__goentry(gort_g_t *gp) __attribute__((noreturn));
void gort__goexit(void) __attribute__((noreturn));
void gort__gfput(gort_p_t *pp, gort_g_t *gp);
void gort__gfpurge(gort_p_t *pp);
/* All Gs ever created, dead included; under allglock. */
extern gort_lock_t gort__allglock;
extern gort_g_t **gort__allgs;
extern size_t gort__nallgs;
extern _Atomic int64_t gort__ngoroutines; /* live user goroutines */
void gort__forallg(void (*fn)(gort_g_t *, void *), void *arg); /* takes allglock */

/* Ms (m.c) */
gort_m_t *gort__allocm(void);
void gort__newm(gort_p_t *pp, bool spinning, gort_g_t *lockedg);
void gort__minit(gort_m_t *m); /* on the new thread: TLS, signal stack, mask */
void gort__munsetup(gort_m_t *m);
int64_t gort__thread_cputime(gort_m_t *m);

/* Sudogs: a G waiting on a queue (sema.c, chan.c). */
struct gort_sudog {
    gort_g_t *g;
    gort_sudog_t *next, *prev; /* in a wait queue */
    void *elem;                /* data element (chan.c) */
    struct gort_chan *c;       /* chan.c */
    gort_sudog_t *waitlink;    /* g->waiting list, or a sema address queue */
    gort_sudog_t *waittail;    /* sema: tail of the address queue */
    uintptr_t addr;            /* sema: address waited on */
    int64_t acquiretime, releasetime; /* block/mutex profiles */
    uint32_t ticket;           /* sema: handoff; chan.c: select case index */
    uint8_t prof;              /* SEMA_PROF_* requested by the waiter */
    bool isselect;
    bool success;              /* chan.c: woken by a value (not a close) */
};
gort_sudog_t *gort__acquire_sudog(void);
void gort__sudog_pcache_flush(gort_p_t *pp); /* sema.c: a P's sudog cache back to the pool */
void gort__release_sudog(gort_sudog_t *s);

/* Semaphores (sema.c): park on a uint32 counter, as Go's sync runtime
 * semaphores.  lifo queues at the head (Mutex waiters that waited before);
 * handoff gives the count directly to the first waiter and yields. */
void gort__semacquire(_Atomic uint32_t *addr, bool lifo, int reason, int profile);
void gort__semrelease(_Atomic uint32_t *addr, bool handoff, int skip);
bool gort__semcanacquire(_Atomic uint32_t *addr);

/* ------------------------------------------------------------------ */
/* Timers (timer.c)                                                     */
/* ------------------------------------------------------------------ */

struct gort__timer {
    int64_t when;       /* under the heap's lock */
    int64_t period;     /* > 0: periodic */
    void (*f)(void *arg, uintptr_t seq, int64_t delta); /* runs on g0 with a P, no lock held */
    void *arg;
    uintptr_t seq;
    _Atomic(gort_p_t *) pp; /* heap it is in; NULL when not pending */
    int32_t idx;            /* index in that heap */
    _Atomic int32_t running; /* callbacks in progress */
};
void gort__timer_add(gort__timer_t *t);               /* on the current P */
bool gort__timer_del(gort__timer_t *t);               /* true if it was pending */
bool gort__timer_mod(gort__timer_t *t, int64_t when, int64_t period);
void gort__timer_wait_idle(gort__timer_t *t);         /* wait out a running callback */
int64_t gort__check_timers(gort_p_t *pp, int64_t now, int64_t *next, bool *ran);
void gort__timers_move(gort_p_t *from, gort_p_t *to); /* procresize */
int64_t gort__timers_earliest(void);                  /* across all Ps; 0: none */

/* Time */
int64_t gort__nanotime(void);
int64_t gort__nanotime_coarse(void);
/* sysmon's clock at its last round (0 before it starts): for stamps read
 * in minutes (a parked goroutine's waitsince), where even the coarse
 * clock's vDSO call was a visible part of a channel hand-off. */
extern _Atomic int64_t gort__sysmon_now;
static inline int64_t gort__nanotime_stale(void)
{
    int64_t t = atomic_load_explicit(&gort__sysmon_now, memory_order_relaxed);
    return t ? t : gort__nanotime_coarse();
}

/* Network poller / idle sleep (netpoll_epoll.c) */
void gort__netpoll_init(void);
gort_g_t *gort__netpoll(int64_t delay_ns); /* <0 block, 0 poll, >0 timeout */
void gort__netpoll_break(void);
bool gort__netpoll_inited(void);
extern _Atomic int32_t gort__netpoll_waiters;
void gort__wake_netpoller(int64_t when);

/* ------------------------------------------------------------------ */
/* Errors (fatal.c, panic.c)                                           */
/* ------------------------------------------------------------------ */

/* "fatal error: MSG", the goroutine dump, exit 2.  Not recoverable. */
__attribute__((noreturn, format(printf, 1, 2))) void gort__throw(const char *fmt, ...);
/* Like throw but prints "fatal error: " only, without "runtime:" framing:
 * used for the user-facing fatal errors (deadlock, unlock of unlocked). */
__attribute__((noreturn, format(printf, 1, 2))) void gort__fatal(const char *fmt, ...);
/* A runtime panic ("panic: MSG"): recoverable by a deferred gort_recover. */
__attribute__((noreturn)) void gort__panic_str(const char *msg);
/* panic.c: the recoverable path of gort__panic_str, on a goroutine. */
__attribute__((noreturn)) void gort__panic_hook(const char *msg);
/* fatal.c: an unrecovered panic: print it, the dump, and exit 2. */
__attribute__((noreturn)) void gort__die_panic(const char *msg);
/* Low-level: writes a string to fd without allocating (async-signal-safe). */
void gort__write_str(int fd, const char *s);
extern _Atomic int32_t gort__panicking;

/* Formats "goroutine N [state, M minutes]:" into buf (shared by dumps and
 * schedtrace).  Returns bytes written. */
size_t gort__format_gheader(char *buf, size_t len, gort_g_t *gp, int64_t now);

/* Signals (signal.c) */
typedef void (*gort_sighandler_t)(int sig, siginfo_t *info, void *uctx);
void gort__signal_init(void);
void gort__signal_install(int sig, gort_sighandler_t h, int extra_flags);
/* Calls the handler that was installed before ours (if any). */
bool gort__signal_forward(int sig, siginfo_t *info, void *uctx);
void gort__sigstack_init(gort_m_t *m);
/* A new M's signal mask: the runtime's signals unblocked (the main thread
 * keeps the rest of its own). */
void gort__minit_sigmask(bool main_thread);

/* Block and mutex profile events go to gort__hooks.prof_block/prof_mutex
 * (hooks.h).  Times are gort__nanotime() values.  Callers take timestamps
 * only when the rate/fraction below is non-zero, so a program that does
 * not profile pays one load. */
extern _Atomic int64_t gort__block_rate;     /* 0: block profile off */
extern _Atomic int32_t gort__mutex_fraction; /* 0: mutex profile off */
/* gort_mutex's state (mutex.c): byte 0 the lock, byte 1 the flags, the
 * high 32 bits the waiter count. */
enum {
    GORT_MUTEX_LOCKED = 1,
    GORT_MUTEX_WOKEN = 1 << 8,
    GORT_MUTEX_STARVING = 1 << 9,
    GORT_MUTEX_HANDOFF = 1 << 10,
    GORT_MUTEX_WAITER_SHIFT = 32,
};
void gort__mutex_init(void);
/* Tests only: called by a goroutine that has just counted itself in as a
 * waiter on m, before it looks at the lock again and sleeps. */
extern void (*gort__mutex_sleep_hook)(gort_mutex *m);
/* A goroutine about to block on sg: when the block profile is on, mark sg
 * so that whoever readies it stamps sg->releasetime, and return the start
 * time for gort__prof_block (0: profile off). */
static inline int64_t gort__block_start(gort_sudog_t *sg)
{
    if (__builtin_expect(atomic_load_explicit(&gort__block_rate, memory_order_relaxed) > 0, 0)) {
        sg->releasetime = -1;
        return gort__nanotime();
    }
    return 0;
}
enum { SEMA_PROF_BLOCK = 1, SEMA_PROF_MUTEX = 2 };
/* panic.c: runs gp's pending defers when it exits. */
void gort__defer_run_all(gort_g_t *gp);

/* Internal utilities */
uint32_t gort__fastrand(void);
uint32_t gort__fastrandn(uint32_t n);
int gort__atoi_env(const char *name, int def);

/* cpuquota.c: CPUs our cgroup's quota allows (rounded up, at least 1), 0
 * if no quota is set or none can be read; src gets the file it came from.
 * The parsers return the same, or -1 for text they cannot read. */
int gort__cpuquota(char *src, size_t srclen);
int gort__cpuquota_parse_v2(const char *cpu_max);
int gort__cpuquota_parse_v1(const char *quota_us, const char *period_us);
/* The smallest quota from cgroup path up to root, under the hierarchy's
 * mount point mnt, which shows cgroup root. */
int gort__cpuquota_along(bool v2, const char *mnt, const char *root, const char *path, char *src, size_t srclen);


/* Counters and debug output */
void gort__schedtrace(int fd, bool detail);

#ifdef GORT_DEBUG_BUILD
#define GORT_ASSERT(c) do { if (unlikely(!(c))) gort__throw("assertion failed: %s (%s:%d)", #c, __FILE__, __LINE__); } while (0)
#else
#define GORT_ASSERT(c) ((void)0)
#endif

#endif /* GORT_RUNTIME_H */
