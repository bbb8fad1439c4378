/*
 * rtsched.h: the scheduler's global state (gort__sched: sched.lock protects
 * its fields unless marked), allp and gomaxprocs, and the scheduler's entry
 * points (sched.c, proc.c, main.c).  Named rtsched.h, not sched.h, so that
 * -Iruntime does not hide the system's <sched.h>.
 */
#ifndef GORT_RUNTIME_RTSCHED_H
#define GORT_RUNTIME_RTSCHED_H

#include "lock.h"

/* Laid out by who writes what, one cache line per group, so that the
 * fields every ready and every schedule reads (the read-mostly flags, the
 * idle and spinning counts) do not share a line with the ones written on
 * hot paths (the lock and its lists, the free Gs, the poller's clock, the
 * goroutine id generator): a write to any field of a line takes it from
 * every core that reads another. */
#define GORT_SCHED_LINE __attribute__((aligned(GORT_CACHELINE)))
typedef struct gort_sched {
    /* Written with the lock taken. */
    gort_lock_t lock;              /* protects the fields below unless marked */
    gort_m_t *midle;               /* idle Ms */
    int32_t nmidle;
    int32_t nmidlelocked;          /* Ms blocked on their locked G */
    int32_t mcount;                /* Ms created (sysmon not counted) */
    uint64_t mnext;                /* next M id */
    gort_g_t **gq;                 /* global run queue: a ring of gqcap (a power of */
    uint32_t gqcap, gqhead;        /* two) slots from gqhead, runqsize of them used */
    _Atomic int32_t runqsize;      /* atomic reads allowed without lock */

    /* Read on every ready (wakep) and search; written when an M starts or
     * stops spinning or a P goes idle or comes back. */
    GORT_SCHED_LINE _Atomic int32_t npidle; /* atomic: read without the lock by wakep */
    _Atomic int32_t nmspinning;    /* atomic */

    /* Read-mostly: written a few times per program or per stop. */
    GORT_SCHED_LINE _Atomic uint32_t stw_pending; /* stop-the-world pending; atomic */
    _Atomic int32_t main_running;  /* inside gort_main */
    _Atomic int32_t main_done;     /* main goroutine returned; M0 must return */
    gort_m_t *main_m;              /* the thread that called gort_main */

    GORT_SCHED_LINE gort_lock_t gflock; /* global free Gs */
    gort_g_t *gfree;               /* batches: schedlink chains, heads linked by gfbatch */
    int32_t ngfree;

    GORT_SCHED_LINE _Atomic int64_t lastpoll; /* 0: an M is blocked in netpoll */
    _Atomic int64_t pollUntil;     /* when that poll will wake */

    GORT_SCHED_LINE _Atomic uint64_t goidgen;

    /* Cold: stop-the-world, the M list, sysmon. */
    GORT_SCHED_LINE int32_t stopwait; /* Ps still to stop */
    gort_note_t stopnote;
    gort_lock_t worldlock;         /* serializes STW initiators (LR_WORLD) */
    /* Set by sysmon when a timer is overdue while no P idles (its P's
     * thread waits for a CPU or sits in a call); the next M to schedule
     * takes it (exchange) and runs every P's due timers. */
    _Atomic uint32_t timers_overdue;

    gort_lock_t allm_lock;
    gort_m_t *allm;

    _Atomic uint32_t sysmonwait;   /* sysmon is sleeping on sysmonnote */
    gort_note_t sysmonnote;
} gort_sched_t;

extern gort_sched_t gort__sched;

/* P bitmaps, one bit per P id, as Go's idlepMask and timerpMask: they let
 * a search over the Ps skip the ones with nothing for it without reading
 * each P's lines (which their owners write on every switch).
 *   idle:  the P is idle: set under sched.lock, and cleared by whoever
 *          takes the P (sched.c, pidleget), with or without the lock.
 *   timer: the P's timer heap is not empty; set and cleared under its
 *          timers_lock, after timer0when is stored.
 * Each word has several writers, so the updates are atomic RMWs
 * (seq_cst: a timer's bit is the store half of the Dekker pair with the
 * poller's pollUntil, as timer0when was).  Readers may see a bit late; a
 * stale bit costs one needless look, as a stale status did. */
#define GORT_PMASK_WORDS (GORT_MAX_PROCS / 64)
typedef struct gort_pmask {
    _Atomic uint64_t w[GORT_PMASK_WORDS];
} __attribute__((aligned(GORT_CACHELINE))) gort_pmask_t;
extern gort_pmask_t gort__idlepmask, gort__timerpmask;
static inline void gort__pmask_set(gort_pmask_t *m, int32_t id)
{
    atomic_fetch_or(&m->w[id / 64], (uint64_t)1 << (id % 64));
}
static inline void gort__pmask_clear(gort_pmask_t *m, int32_t id)
{
    atomic_fetch_and(&m->w[id / 64], ~((uint64_t)1 << (id % 64)));
}
static inline bool gort__pmask_test(gort_pmask_t *m, int32_t id)
{
    return (atomic_load(&m->w[id / 64]) >> (id % 64)) & 1;
}
extern gort_p_t *gort__allp[GORT_MAX_PROCS];
extern _Atomic int32_t gort__gomaxprocs;
extern _Atomic int32_t gort__ncpu;
extern gort_m_t *gort__m0;

void gort__runtime_init(void);
/* main.c: gort_main's work once prof/start.c has brought the layers up. */
int gort__main(void (*fn)(void *), void *arg);
__attribute__((noreturn)) void gort__schedule(void);
void gort__execute(gort_g_t *gp, bool inherit) __attribute__((noreturn));

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
/* Yields to the local queue's tail (Go's goyield); and makes gp, parked,
 * run next on this P whatever its last P (a mutex hand-off).  Both on a
 * goroutine with a P. */
void gort__goyield(void);
void gort__ready_here(gort_g_t *gp);
/* Called by the async preemption path with the G's state already saved. */
void gort__preempt_park(void);

void gort__wakep(void);
void gort__startm(gort_p_t *pp, bool spinning);
void gort__handoffp(gort_p_t *pp);
void gort__acquirep(gort_p_t *pp);
gort_p_t *gort__releasep(void);
void gort__pidleput(gort_p_t *pp);
gort_p_t *gort__pidleget(void);
gort_p_t *gort__pidleget_nolock(void);
extern _Atomic uint64_t gort__m_parks; /* Ms parked idle, for tests (sched.c) */
void gort__stopm(void);
void gort__checkdead(void);
void gort__stoplockedm(void);
void gort__startlockedm(gort_g_t *gp) __attribute__((noreturn));

#endif /* GORT_RUNTIME_RTSCHED_H */
