/*
 * sysmon.c: the monitor thread.
 *
 * sysmon holds no P and runs no goroutine.  It wakes every 20us; after 50
 * rounds in which it found nothing to do, it doubles the sleep up to 10ms
 * (Go's rhythm, restarted only by a P handed off from a wrapped call);
 * when every P is idle or the world is stopped it sleeps until woken
 * (startm and start-the-world wake it) or 100ms pass.  Work queued while
 * every P is busy may poke it, and hurry episodes sample every 20us while
 * work waits behind a P that may be blocked (pace.c).  Each round it
 * looks at every P, but spends system calls (CPU clocks, /proc reads, a
 * revoke's barrier) only on Ps that something waits for (someone_waits),
 * and at most ROUND_SYSCALLS of them per round, so that its cost per
 * round does not grow with the number of Ps (docs/runtime.md, Scaling):
 *
 *  - Time slices.  If a P's schedtick has not moved for GORT_SLICE_US of
 *    wall time, its goroutine has run too long, whether its thread burned
 *    the CPU or waited for one (as Go): set g->preempt and signal it
 *    (preempt.c) if the thread burns CPU or the kernel reports it
 *    runnable, never if it sleeps in the kernel.  A refused preemption is
 *    retried no sooner than RESIGNAL_NS later.
 *
 *  - System calls.  A P in P_SYSCALL whose syscalltick has not moved since
 *    the previous round is taken (CAS to P_IDLE) and handed to another M,
 *    unless there is nothing else to run (as Go's retake); a due timer of
 *    the P is something to run, and one due later bounds sysmon's sleep.
 *
 *  - Calls nobody wrapped.  A P in P_RUNNING whose goroutine has not
 *    switched and whose thread's CPU clock has hardly moved for a whole
 *    round is off the CPU.  If the kernel reports its thread sleeping (not
 *    waiting for a CPU: oversubscription must never revoke Ps from running
 *    goroutines), it is blocked in a call the runtime never heard of.  If there is other work, sysmon revokes the P:
 *    m->pstate 0 -> 1 by CAS, membarrier(2) so that the M's plain stores to
 *    g->inrt and m->locks are visible, re-check that it is still outside
 *    the runtime, take the P, pstate = 2.  The M, when its call returns,
 *    runs without a P until its next runtime call (gort__rt_enter) or
 *    preemption; both send it through the system-call exit path, which
 *    queues its goroutine and parks it.  Go cannot do this.
 *
 *  - Overdue timers: one a millisecond late is run by a spinning M if a P
 *    idles, else by the next M that schedules (sched.timers_overdue).
 *
 *  - The netpoller: if nobody has polled for 10ms (every M busy), poll
 *    without blocking and queue the goroutines it readies, as Go's sysmon.
 *
 *  - Housekeeping: stack scavenging every 250ms, refreshing the module map
 *    for the preemption check when asked, GORT_DEBUG=schedtrace output.
 */
#include "runtime.h"
#include "sysmon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ROUND_MIN_NS (20 * 1000)
#define RESIGNAL_NS (100 * 1000)
#define PREEMPT_BACKOFF_NS (50 * 1000 * 1000)
#define SCAVENGE_NS (250 * 1000 * 1000)
#define NETPOLL_NS (10 * 1000 * 1000)


typedef struct pdata {
    uint32_t schedtick;   /* last seen p->schedtick */
    int64_t schedwhen;    /* when it last moved */
    uint32_t syscalltick;
    int64_t syscallwhen;
    int64_t cpu;          /* thread CPU time at the last sample */
    int64_t cpuat;        /* when that sample was taken */
    uint32_t cputick;     /* schedtick at that sample */
    uint32_t cpugen;      /* m->preempt_gen then: moves on every switch,
                           * even one that inherits the slice */
    int busyrun;          /* consecutive busy samples of that one G */
    bool same_g;          /* the last sample saw the G of the one before */
    gort_m_t *cpum;       /* the M those samples belong to */
    bool busy;            /* used at least half of the last interval */
    int64_t lastsignal;
    /* The kernel's word on a thread that looks off the CPU: 'R' (waits
     * for one), 'S' (sleeps), 'D' (uninterruptible) or 0 (not asked), for
     * cpum running the G of (cputick, cpugen), read at stateat; dsince:
     * when the current run of 'D' answers began. */
    char kstate;
    int64_t stateat, dsince;
    /* /proc/self/task/TID/stat of fdtid, kept open (fd + 1; 0: none), so
     * that asking the kernel again is one pread, not open, read, close. */
    int statfd1;
    pid_t fdtid;
} pdata_t;

static pdata_t pdata[GORT_MAX_PROCS];
static gort_m_t *sysmon_m;
static _Atomic uint32_t wakeword;
static _Atomic uint32_t sleeping_long;
static _Atomic uint32_t sleeping_quiet; /* in the every-P-idle sleep */

/* Ms running without a P after a revoke, and their CPU samples. */
typedef struct revoked {
    gort_m_t *m;
    int64_t cpu, at;
    int64_t busy_since; /* 0: not burning CPU */
} revoked_t;
#define MAX_REVOKED 64
static revoked_t revoked[MAX_REVOKED];
static int nrevoked;

static _Atomic uint64_t stat_handoffs, stat_unwrapped;
/* Rounds, and system calls made (gort__tls_syscalls of sysmon's thread,
 * plus its /proc reads), published once a round. */
static _Atomic uint64_t stat_rounds, stat_syscalls;
static uint64_t proc_syscalls;

/* The system calls a round may spend on looking at threads (CPU clocks,
 * /proc reads, revokes), besides its sleep, its wake-ups and the
 * preemption signals.  What does not fit waits for a later round, which
 * comes at most DEFER_NS later, and the next round starts where
 * this one stopped: a bounded cost per round however many Ps there are,
 * paid for by later preemptions when more threads than that need a look
 * at once. */
#define ROUND_SYSCALLS 6
#define DEFER_NS (250 * 1000)
static uint64_t round_syscalls0; /* the count when this round began */
static bool round_short;         /* a look this round could not afford */

static uint64_t syscalls_now(void) { return gort__tls_syscalls + proc_syscalls; }

/* May the round spend n more system calls?  If not, it is short. */
static bool round_affords(int n)
{
    if (syscalls_now() - round_syscalls0 + (uint64_t)n <= ROUND_SYSCALLS)
        return true;
    round_short = true;
    return false;
}

void gort__sysmon_wake(void)
{
    /* The exchange makes one waker per sleep pay for the system call:
     * wakep calls this on every ready while all Ps are busy. */
    if (atomic_load_explicit(&sleeping_long, memory_order_acquire) &&
        atomic_exchange_explicit(&sleeping_long, 0, memory_order_acq_rel)) {
        atomic_fetch_add_explicit(&wakeword, 1, memory_order_release);
        gort__futex_wake(&wakeword, 1);
    }
}

void gort__sysmon_wake_quiet(void)
{
    if (atomic_load_explicit(&sleeping_quiet, memory_order_seq_cst))
        gort__sysmon_wake();
}

/* Sleeps ns; a pokeable sleep can be cut short by gort__sysmon_wake.
 * Returns true if it was.
 *
 * The quiet sleep (every P idle) is always pokeable.  A busy program's
 * sleep is pokeable only outside a hurry episode and its cool-down (see
 * the loop): letting every ready wake sysmon cost a futex call per
 * channel hand-off and kept sysmon running beside the workers (the sieve
 * ran many times slower than Go's; docs/benchmarks.md). */
static bool sysmon_sleep(int64_t ns, bool all_idle, bool pokeable)
{
    uint32_t w = atomic_load_explicit(&wakeword, memory_order_acquire);
    if (pokeable) {
        atomic_store_explicit(&sleeping_long, 1, memory_order_seq_cst);
        if (all_idle)
            atomic_store_explicit(&sleeping_quiet, 1, memory_order_seq_cst);
        /* Re-check after announcing: whoever made work after our check
         * and before the store either saw sleeping_long, or made work
         * that we see here. */
        int32_t procs = atomic_load(&gort__gomaxprocs);
        if (all_idle && !atomic_load(&gort__sched.stw_pending) && atomic_load(&gort__sched.npidle) != procs) {
            atomic_store(&sleeping_long, 0);
            atomic_store(&sleeping_quiet, 0);
            return true;
        }
    }
    gort__futex_wait(&wakeword, w, ns);
    atomic_store_explicit(&sleeping_long, 0, memory_order_relaxed);
    atomic_store_explicit(&sleeping_quiet, 0, memory_order_relaxed);
    return atomic_load_explicit(&wakeword, memory_order_acquire) != w;
}

/* The kernel's view of a thread: 'R' if it runs or waits for a CPU, 'S'
 * if it sleeps, 'D' if it waits uninterruptibly, 0 if unknown. */
static char thread_kstate(pdata_t *pd, pid_t tid)
{
    char path[64], buf[256];
    if (pd->statfd1 && pd->fdtid != tid) {
        close(pd->statfd1 - 1);
        proc_syscalls++;
        pd->statfd1 = 0;
    }
    if (!pd->statfd1) {
        snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
        proc_syscalls++;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return 0;
        pd->statfd1 = fd + 1;
        pd->fdtid = tid;
    }
    proc_syscalls++;
    ssize_t n = pread(pd->statfd1 - 1, buf, sizeof buf - 1, 0);
    if (n <= 0) {
        close(pd->statfd1 - 1); /* the thread is gone */
        proc_syscalls++;
        pd->statfd1 = 0;
        return 0;
    }
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* the name may contain spaces */
    if (!p || p[1] != ' ')
        return 0;
    return p[2] == 'R' || p[2] == 'S' || p[2] == 'D' ? p[2] : 0;
}

/* What asking costs: one pread when the file is open for this thread. */
static int kstate_cost(pdata_t *pd, pid_t tid) { return pd->statfd1 && pd->fdtid == tid ? 1 : 3; }

static bool thread_sleeping(pdata_t *pd, pid_t tid)
{
    char st = thread_kstate(pd, tid);
    return st == 'S' || st == 'D';
}

/* Is the thread's system call made from its signal stack, that is from
 * the runtime's preemption or profiling handler?  Such a thread waits on
 * the loader's lock or mmap_lock inside libunwind, behind threads that
 * hold them and wait for a CPU: it is not blocked in its goroutine's
 * code, and revoking its P only starts another thread.  (From
 * /proc/self/task/TID/syscall: the call number, six arguments, the stack
 * pointer and the PC.) */
static bool thread_in_handler(gort_m_t *m)
{
    if (!m->sigstack)
        return false;
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)m->tid);
    proc_syscalls += 3;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = 0;
    char *p = buf;
    for (int field = 0; field < 7; field++) {
        p = strchr(p, ' ');
        if (!p)
            return false; /* "running", or not in a call */
        p++;
    }
    uintptr_t sp = (uintptr_t)strtoull(p, NULL, 16);
    uintptr_t lo = (uintptr_t)m->sigstack;
    return sp >= lo && sp < lo + m->sigstack_size;
}

enum { OFF_UNKNOWN, OFF_WAITS_CPU, OFF_BLOCKED };

/* A thread that got little CPU since the last sample: does it wait for a
 * CPU (oversubscription: more Ps than CPUs, a CPU quota, other programs)
 * or is it blocked in the kernel?  Asked only about such threads, so the
 * /proc read is rare.  'R' and 'S' are kept for the rest of this G's
 * turn, re-read at most once a slice: a spinner that waits for a CPU
 * stays that way, and a goroutine that goes from computing into a
 * blocking call its own thread makes is found a slice later at worst.
 *
 * 'D' is blocked only once it has lasted DWAIT_NS.  Page faults and
 * mmap_lock waits are short and uninterruptible, and under
 * oversubscription they pile up: libunwind's mincore(2) in the
 * preemption handler of a hundred threads waiting for two CPUs showed as
 * 'D' for whole rounds, and revoking those Ps started a thread for each.
 * A slow disk read is still revoked, later. */
#define DWAIT_NS (50 * 1000 * 1000)
static int thread_offcpu(pdata_t *pd, gort_m_t *m, int64_t now)
{
    /* At least the millisecond a revoke trusts it for (revoke_p). */
    int64_t ttl = __atomic_load_n(&gort__settings.slice_ns, __ATOMIC_RELAXED);
    if (ttl < 1000000)
        ttl = 1000000;
    if ((pd->kstate == 0 || pd->kstate == 'D' || now - pd->stateat >= ttl) &&
        round_affords(kstate_cost(pd, m->tid))) {
        char st = thread_kstate(pd, m->tid);
        if (st == 'D' && pd->kstate != 'D')
            pd->dsince = now;
        pd->kstate = st;
        pd->stateat = now;
    }
    switch (pd->kstate) {
    case 'R':
        return OFF_WAITS_CPU;
    case 'S':
        return OFF_BLOCKED;
    case 'D':
        return now - pd->dsince >= DWAIT_NS ? OFF_BLOCKED : OFF_UNKNOWN;
    default:
        return OFF_UNKNOWN;
    }
}

static bool p_has_other_work(gort_p_t *pp, int64_t now)
{
    if (!gort__runqempty(pp) || atomic_load(&gort__sched.runqsize) != 0)
        return true;
    int64_t w = atomic_load(&pp->timer0when);
    return w != 0 && w <= now + 1000000;
}

/* Does anything wait for the goroutine on pp to give way?  Other work
 * for the P (above), or goroutines blocked on descriptors that nobody has
 * polled for a slice: with every P busy, only a schedule polls, and only
 * a preemption brings one.  A goroutine alone on its P, with nothing
 * waiting, is left running: preempting it would only put it back (Go
 * preempts such a goroutine too, for its garbage collector, which we do
 * not have), and asking whether it may be signalled costs system calls. */
static bool someone_waits(gort_p_t *pp, int64_t now)
{
    if (p_has_other_work(pp, now))
        return true;
    if (atomic_load_explicit(&gort__netpoll_waiters, memory_order_relaxed) == 0)
        return false;
    int64_t lp = atomic_load_explicit(&gort__sched.lastpoll, memory_order_relaxed);
    return lp != 0 && now - lp > __atomic_load_n(&gort__settings.slice_ns, __ATOMIC_RELAXED);
}


/* The goroutine on pp has held it for a slice.  A slice is wall time, as
 * in Go: it is preempted whether its thread burned the CPU or waited for
 * one.  Only a thread asleep in the kernel is spared the signal (its call
 * would fail with EINTR, and one that wakes now and then from a blocking
 * loop would be woken again and again): that is a thread that neither
 * burned CPU in two samples in a row of this very G (one may cover a
 * thread that was still starting up just before it entered a slow call)
 * nor is runnable by the kernel's word in a second sample of the same G
 * (a goroutine that has just come in through runnext, sharing the slice,
 * has had no turn to speak of).  Returns true if it asked. */
static bool preemptone(gort_p_t *pp, pdata_t *pd, int64_t now)
{
    gort_m_t *m = pp->m;
    gort_g_t *gp = m ? m->curg : NULL;
    if (!gp || m == sysmon_m || atomic_load(&gp->status) != G_RUNNING)
        return false;
    /* No switch since the samples. */
    if (pd->cpum != m ||
        (uint32_t)atomic_load_explicit(&m->preempt_gen, memory_order_relaxed) != pd->cpugen)
        return false;
    if (!(pd->busy && pd->busyrun >= 2) && (!pd->same_g || thread_offcpu(pd, m, now) != OFF_WAITS_CPU))
        return false;
    /* Then the samples again: sysmon may have lost its CPU since, while
     * the goroutine was preempted and ran again on a fresh slice (execute
     * cleared the flag); a flag and a signal now would cut that slice
     * short (preempt/timer_wake_beats_global_turn, under load).  The
     * exchange orders the flag before the second look; a flag that was
     * already set is someone else's (a world stop) and stays. */
    bool was = atomic_exchange_explicit(&gp->preempt, true, memory_order_seq_cst);
    if (m->curg != gp ||
        (uint32_t)atomic_load_explicit(&m->preempt_gen, memory_order_seq_cst) != pd->cpugen) {
        if (!was)
            atomic_store_explicit(&gp->preempt, false, memory_order_relaxed);
        return false;
    }
    atomic_fetch_add_explicit(&gort__pstat_requested, 1, memory_order_relaxed);
    pd->lastsignal = now;
    /* A signal still pending (a thread waiting for a CPU has not taken
     * it yet) is not sent again: gort__preempt_ask coalesces.  An M that
     * cannot take it (its thread blocks the signal) is asked again only
     * after PREEMPT_BACKOFF_NS, not every RESIGNAL_NS. */
    if (!gort__preempt_ask(m))
        pd->lastsignal = now + PREEMPT_BACKOFF_NS;
    return true;
}

/* What one look at every P found (retake). */
typedef struct retake_result {
    int handoffs;  /* Ps taken from wrapped system calls */
    int revokes;   /* Ps taken from threads blocked in unwrapped calls */
    /* The earliest time sysmon has to look again (0: none): a running
     * goroutine's slice ends, or a timer of a P in a system call falls
     * due (nobody else may be there to run it). */
    int64_t due;
    /* Some P runs a goroutine that started since the last round, at a
     * moment somewhere in that round's sleep. */
    bool fresh;
    /* Goroutines wait for a P whose thread is new to us or was not seen
     * burning CPU: it may be blocked in a call nobody wrapped, and only
     * the next round can tell. */
    bool hurry;
} retake_result_t;

static void revoked_add(gort_m_t *m, int64_t now)
{
    if (nrevoked < MAX_REVOKED)
        revoked[nrevoked++] = (revoked_t){m, gort__thread_cputime(m), now, 0};
}

/* The P's thread sits in a call we were never told about. */
static int revoke_p(gort_p_t *pp, pdata_t *pd, int64_t now)
{
    gort_m_t *m = pp->m;
    gort_g_t *gp = m ? m->curg : NULL;
    /* Never while the world stops: the initiator counts this P as running
     * until its M stops it (stopTheWorld found a revoked P idle, not
     * stopped, in the soak). */
    if (!gort__have_membarrier || !gp || m == sysmon_m || atomic_load(&gort__sched.stw_pending))
        return 0;
    if (atomic_load(&gp->status) != G_RUNNING || gp->inrt || atomic_load(&m->locks) || !atomic_load(&m->ing))
        return 0;
    /* The kernel's word, unless a round asked within the last
     * millisecond (thread_offcpu: a revoke that does not fit in the round
     * that asked fits in the next); then the handler check, the barrier
     * and a CPU sample, which the revoke's last check compares. */
    bool fresh = pd->kstate == 'S' && now - pd->stateat <= 1000000;
    if (!round_affords((fresh ? 0 : kstate_cost(pd, m->tid)) + 5))
        return 0;
    if (!p_has_other_work(pp, now) || (!fresh && !thread_sleeping(pd, m->tid)) || thread_in_handler(m))
        return 0;
    uint32_t zero = 0;
    if (!atomic_compare_exchange_strong(&m->pstate, &zero, 1))
        return 0;
    gort__membarrier();
    if (gp->inrt || atomic_load(&m->locks) || !atomic_load(&m->ing) || m->curg != gp || pp->m != m ||
        atomic_load(&pp->status) != P_RUNNING || atomic_load(&pp->schedtick) != pd->schedtick ||
        atomic_load(&gp->status) != G_RUNNING || gort__thread_cputime(m) - pd->cpu > ROUND_MIN_NS / 8) {
        atomic_store(&m->pstate, 0);
        return 0;
    }
    uint32_t running = P_RUNNING;
    if (atomic_load(&gort__sched.stw_pending) ||
        !atomic_compare_exchange_strong(&pp->status, &running, P_IDLE)) {
        atomic_store(&m->pstate, 0);
        return 0;
    }
#if defined(GORT_TSAN)
    /* The barrier above ordered everything the M did before its goroutine
     * went back to its own code (released there, gort__rt_leave). */
    __tsan_acquire(&gp->inrt);
#endif
    gort__trace(TEV_PTAKEN, gp, pp, 1); /* before pstate 2 lets the G go on */
    m->p = NULL;
    pp->m = NULL;
    atomic_store_explicit(&m->pstate, 2, memory_order_release);
    atomic_fetch_add_explicit(&stat_unwrapped, 1, memory_order_relaxed);
    revoked_add(m, now);
    gort__handoffp(pp);
    return 1;
}


static void due_at(retake_result_t *r, int64_t when)
{
    if (r->due == 0 || when < r->due)
        r->due = when;
}

/* A running P: time slices and calls nobody wrapped. */
static void retake_running(gort_p_t *pp, pdata_t *pd, int64_t now, retake_result_t *r)
{
    gort_m_t *m = pp->m;
    bool shared = false; /* goroutines switched, the slice's tick did not */
    if (m && m != sysmon_m && !someone_waits(pp, now)) {
        /* Alone: no sample, no preemption (someone_waits).  Its samples
         * start over when something comes to wait for it (a ready that
         * finds every P busy pokes sysmon). */
        pd->cpum = NULL;
        pd->kstate = 0;
        return;
    }
    if (m && m != sysmon_m && !round_affords(1))
        return;
    if (m && m != sysmon_m) {
        /* How much of the interval since the last sample did the thread
         * spend on a CPU?  Half or more: it burns CPU.  Under an eighth,
         * with no switch: it is off the CPU, either blocked in the kernel
         * (perhaps waking now and then), a candidate for revoking, or
         * waiting for a CPU, which only the kernel can tell us. */
        int64_t cpu = gort__thread_cputime(m);
        uint32_t tick = atomic_load_explicit(&pp->schedtick, memory_order_relaxed);
        bool sampled = pd->cpum == m;
        int64_t dt = now - pd->cpuat, dc = cpu - pd->cpu;
        uint32_t gen = (uint32_t)atomic_load_explicit(&m->preempt_gen, memory_order_relaxed);
        bool was_same_g = sampled && pd->cputick == tick && pd->cpugen == gen;
        shared = sampled && pd->cputick == tick && pd->cpugen != gen;
        pd->same_g = was_same_g;
        if (!was_same_g)
            pd->kstate = 0;
        pd->busy = was_same_g && dc * 2 >= dt;
        pd->busyrun = pd->busy ? pd->busyrun + 1 : 0;
        pd->cpum = m;
        pd->cpu = cpu;
        pd->cpuat = now;
        pd->cputick = tick;
        pd->cpugen = gen;
        if (was_same_g && dt >= ROUND_MIN_NS && dc * 8 < dt) {
            /* Nothing waits for this P: whatever its thread does, leave
             * it alone. */
            if (!p_has_other_work(pp, now))
                return;
            /* Blocked: revoke.  Waiting for a CPU: a running goroutine,
             * whose slice runs on below; taking its P would only start
             * another thread to wait for a CPU. */
            int off = thread_offcpu(pd, m, now);
            if (off == OFF_BLOCKED)
                r->revokes += revoke_p(pp, pd, now);
            if (off != OFF_WAITS_CPU)
                return;
        }
        /* Not pd->busy, which wants one goroutine throughout: a thread
         * that switches goroutines while burning CPU (a channel pair) is
         * not stuck, and hurrying for it cost ~1,000 extra rounds a
         * second.  Nor is one the kernel says waits for a CPU. */
        bool burning = (sampled && dt > 0 && dc * 2 >= dt) || pd->kstate == 'R';
        if (!burning && (!gort__runqempty(pp) || atomic_load(&gort__sched.runqsize) != 0))
            r->hurry = true;
    }
    int64_t end = pd->schedwhen + __atomic_load_n(&gort__settings.slice_ns, __ATOMIC_RELAXED);
    if (end <= now) {
        if (now - pd->lastsignal < RESIGNAL_NS) {
            end = pd->lastsignal + RESIGNAL_NS;
        } else if (preemptone(pp, pd, now)) {
            end = now + RESIGNAL_NS;
        } else if (shared) {
            /* Goroutines handing off through runnext share one slice
             * (each inherits it), so a pair talking over a channel never
             * lets the P's queue run.  Its slice is over: the P's next
             * schedule serves the queue first (sched.c).  No signal and
             * no g->preempt: the pair switches every few hundred ns, and
             * a flag on whichever G was current was mostly lost to a
             * park. */
            atomic_store_explicit(&pp->slice_over, SLICE_OVER | pd->schedtick, memory_order_relaxed);
            end = now + RESIGNAL_NS;
        } else if (pd->kstate == 'S' || pd->kstate == 'D') {
            end = pd->stateat + __atomic_load_n(&gort__settings.slice_ns, __ATOMIC_RELAXED);
        } else {
            end = now + ROUND_MIN_NS; /* sample again first */
        }
    }
    due_at(r, end);
}

/* A P in a wrapped system call.  Hand it off (as Go's retake) if it has
 * been in the call a whole round and there is work for it: goroutines in
 * its queue or the global one, or a timer due (its thread cannot run it,
 * and at one P nobody else can), or nobody else to find work, or the call
 * is long.  A timer due later brings sysmon back then. */
static void retake_syscall(gort_p_t *pp, pdata_t *pd, int64_t now, retake_result_t *r)
{
    int64_t w = atomic_load_explicit(&pp->timer0when, memory_order_acquire);
    bool timer_due = w != 0 && w <= now;
    if (w != 0 && !timer_due)
        due_at(r, w);
    uint32_t t = atomic_load_explicit(&pp->syscalltick, memory_order_relaxed);
    if (pd->syscalltick != t) {
        pd->syscalltick = t;
        pd->syscallwhen = now;
        /* A due timer does not wait for a second look: sysmon came
         * because of it, perhaps after a long sleep. */
        if (!timer_due)
            return;
    }
    if (gort__runqempty(pp) && !timer_due &&
        atomic_load(&gort__sched.nmspinning) + atomic_load(&gort__sched.npidle) > 0 &&
        pd->syscallwhen + 10 * 1000 * 1000 > now)
        return;
    uint32_t exp = P_SYSCALL;
    if (atomic_compare_exchange_strong(&pp->status, &exp, P_IDLE)) {
        gort__trace_ptaken(pp);
        atomic_fetch_add_explicit(&pp->syscalltick, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&stat_handoffs, 1, memory_order_relaxed);
        r->handoffs++;
        gort__handoffp(pp);
    }
}

static retake_result_t retake(int64_t now)
{
    static int32_t first; /* where the last round's budget ran out */
    retake_result_t r = {0};
    int32_t procs = atomic_load_explicit(&gort__gomaxprocs, memory_order_acquire);
    if (first >= procs)
        first = 0;
    int32_t next_first = -1;
    for (int32_t k = 0; k < procs; k++) {
        int32_t i = (first + k) % procs;
        gort_p_t *pp = gort__allp[i];
        pdata_t *pd = &pdata[i];
        bool was_short = round_short;
        uint32_t s = atomic_load_explicit(&pp->status, memory_order_acquire);
        if (s == P_RUNNING || s == P_SYSCALL) {
            uint32_t t = atomic_load_explicit(&pp->schedtick, memory_order_relaxed);
            /* schedwhen 0: never sampled.  The first goroutine of a P
             * runs at tick 0, which matches the zeroed pdata: without
             * this, its slice would count from boot and it would be
             * preempted (and its thread signalled) at once. */
            if (pd->schedtick != t || pd->schedwhen == 0) {
                pd->schedtick = t;
                /* The clock read after the tick: now may be older than
                 * the switch when sysmon lost its CPU in between, and a
                 * slice counted from it would end early (a wall-time
                 * slice no longer waits for busy samples to cover
                 * that). */
                pd->schedwhen = gort__nanotime();
                pd->cpum = NULL;
                if (s == P_RUNNING)
                    r.fresh = true;
            }
        }
        if (s == P_RUNNING)
            retake_running(pp, pd, now, &r);
        else if (s == P_SYSCALL)
            retake_syscall(pp, pd, now, &r);
        if (round_short && !was_short)
            next_first = i;
    }
    if (round_short) {
        first = next_first >= 0 ? next_first : first;
        due_at(&r, now + DEFER_NS);
    }
    return r;
}

/* Ms running without a P after a revoke: preempt them once they have
 * burned CPU for a slice without calling the runtime. */
static void watch_revoked(int64_t now)
{
    for (int i = 0; i < nrevoked;) {
        revoked_t *r = &revoked[i];
        if (atomic_load(&r->m->pstate) != 2) {
            *r = revoked[--nrevoked];
            continue;
        }
        if (!round_affords(1))
            break; /* the rest next round */
        int64_t cpu = gort__thread_cputime(r->m);
        int64_t dt = now - r->at, dc = cpu - r->cpu;
        r->cpu = cpu;
        r->at = now;
        if (dc * 2 >= dt) {
            if (!r->busy_since)
                r->busy_since = now - dt;
            gort_g_t *gp = r->m->curg;
            if (gp && now - r->busy_since >= __atomic_load_n(&gort__settings.slice_ns, __ATOMIC_RELAXED)) {
                atomic_store(&gp->preempt, true);
                atomic_fetch_add_explicit(&gort__pstat_requested, 1, memory_order_relaxed);
                gort__preempt_m(r->m);
            }
        } else {
            r->busy_since = 0;
        }
        i++;
    }
}

/* Nobody has polled for 10ms (every M busy, none in findrunnable): poll,
 * and queue what is ready (globally: sysmon has no P), as Go's sysmon. */
static void sysmon_netpoll(int64_t now)
{
    int64_t last = atomic_load_explicit(&gort__sched.lastpoll, memory_order_acquire);
    if (!gort__netpoll_inited() || last == 0 || last + NETPOLL_NS >= now ||
        atomic_load_explicit(&gort__netpoll_waiters, memory_order_relaxed) == 0)
        return;
    atomic_compare_exchange_strong(&gort__sched.lastpoll, &last, now);
    gort_g_t *list = gort__netpoll(0);
    if (list)
        gort__injectglist(list);
}

static void *sysmon_main(void *arg)
{
    (void)arg;
    gort__setm(sysmon_m);
    atomic_store_explicit(&sysmon_m->tid, (pid_t)syscall(SYS_gettid), memory_order_release);
    sysmon_pace_t pace;
    gort__pace_init(&pace);
    retake_result_t rt = {0};
    int64_t last_scavenge = gort__nanotime(), last_trace = last_scavenge;
    for (;;) {
        int32_t procs = atomic_load(&gort__gomaxprocs);
        sysmon_obs_t o = {
            .now = gort__nanotime(),
            .quiet = atomic_load(&gort__sched.stw_pending) || atomic_load(&gort__sched.npidle) == procs,
            .slice_ns = __atomic_load_n(&gort__settings.slice_ns, __ATOMIC_RELAXED),
            .trace_ns = gort__settings.schedtrace_ms > 0 ? (int64_t)gort__settings.schedtrace_ms * 1000000 : 0,
            .due = rt.due,
            .fresh = rt.fresh,
        };
        sysmon_nap_t nap = gort__pace_sleep(&pace, &o);
        /* The stale clock (gort__nanotime_stale) is published only while
         * sysmon sleeps, whose length is bounded; while it works it is 0
         * and parkers read the coarse clock, so that a round held up
         * anywhere (a lock, the loader lock in a module refresh) never
         * stamps a parking goroutine with a time from before the hold-up. */
        atomic_store_explicit(&gort__sysmon_now, o.now, memory_order_relaxed);
        bool poked = sysmon_sleep(nap.ns, nap.quiet, nap.pokeable);
        atomic_store_explicit(&gort__sysmon_now, 0, memory_order_relaxed);
        int64_t now = gort__nanotime();
        gort__pace_woke(&pace, &nap, poked, now);
        round_syscalls0 = syscalls_now();
        round_short = false;
        /* TSan: retake's and watch_revoked's lock-free reads of other Ms'
         * and Ps' state are hints the owners re-validate (tests/tsan.supp,
         * race:retake and the rest).  A suppression matches only while
         * TSan still has the stacks of both accesses, and sysmon's are
         * long gone ("failed to restore the stack") when a scheduler
         * writes m->curg many events later: at 64 Ps that report
         * escaped.  So these reads are not recorded at all. */
        GORT_TSAN_IGNORE_READS_BEGIN();
        rt = retake(now);
        GORT_TSAN_IGNORE_READS_END();
        o = (sysmon_obs_t){
            .now = now,
            .hurry = rt.hurry,
            .handoffs = rt.handoffs,
            .revokes = rt.revokes,
        };
        gort__pace_round(&pace, &o);
        /* A timer a millisecond overdue.  While a P idles, its wake-up
         * went astray (Go's sysmon has the same net): a spinning M runs
         * other Ps' timers.  While none idles, its P's thread waits for a
         * CPU or is in a call, and its goroutine would wait for that
         * thread: the next M that schedules runs it (schedule). */
        int64_t next = gort__timers_earliest();
        if (next != 0 && next < now - 1000000) {
            if (atomic_load(&gort__sched.npidle) > 0)
                gort__wakep();
            else
                atomic_store_explicit(&gort__sched.timers_overdue, 1, memory_order_release);
        }
        sysmon_netpoll(now);
        if (nrevoked) {
            GORT_TSAN_IGNORE_READS_BEGIN(); /* as around retake */
            watch_revoked(now);
            GORT_TSAN_IGNORE_READS_END();
        }
        gort__hook(sysmon_tick, now);
        if (gort__preempt_refresh_wanted())
            gort__preempt_refresh_modules();
        if (now - last_scavenge >= SCAVENGE_NS) {
            gort__stack_scavenge();
            last_scavenge = now;
        }
        if (gort__settings.schedtrace_ms > 0 && now - last_trace >= (int64_t)gort__settings.schedtrace_ms * 1000000) {
            gort__schedtrace(2, gort__settings.scheddetail != 0);
            last_trace = now;
        }
        atomic_store_explicit(&stat_rounds, atomic_load_explicit(&stat_rounds, memory_order_relaxed) + 1,
                              memory_order_relaxed);
        atomic_store_explicit(&stat_syscalls, gort__tls_syscalls + proc_syscalls, memory_order_relaxed);
    }
    return NULL;
}

void gort__sysmon_start(void)
{
    gort__hooks.sysmon_wake = gort__sysmon_wake;
    gort__hooks.sysmon_wake_quiet = gort__sysmon_wake_quiet;
    gort__hooks.sysmon_count_handoff = gort__sysmon_count_handoff;
    gort__hooks.stats_fill = gort__stats_fill_sysmon;
    gort__hooks.preempt_m = gort__preempt_m;
    gort__preempt_init();
    sysmon_m = gort__allocm();
    sysmon_m->is_sysmon = true;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* sysmon takes no signals but the fatal ones. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t th;
    int err = pthread_create(&th, &attr, sysmon_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (err != 0)
        gort__throw("cannot start sysmon: %s", strerror(err));
    sysmon_m->thread = th;
    if (pthread_getcpuclockid(th, &sysmon_m->cpuclock) != 0)
        sysmon_m->cpuclock = -1; /* sysmon_cpu_ns stays 0 */
    (void)pthread_setname_np(th, "gort-sysmon"); /* top -H, perf, gdb */
}

void gort__sysmon_count_handoff(void) { atomic_fetch_add_explicit(&stat_handoffs, 1, memory_order_relaxed); }

void gort__stats_fill_sysmon(gort_stats *out)
{
    out->preempt_requested = atomic_load(&gort__pstat_requested);
    out->preempt_signals = atomic_load(&gort__pstat_signals);
    out->preempt_done = atomic_load(&gort__pstat_done);
    out->preempt_unsafe_runtime = atomic_load(&gort__pstat_unsafe_runtime);
    out->preempt_unsafe_frame = atomic_load(&gort__pstat_unsafe_frame);
    out->preempt_unsafe_nopreempt = atomic_load(&gort__pstat_unsafe_nopreempt);
    out->handoffs = atomic_load(&stat_handoffs);
    out->unwrapped_blocks = atomic_load(&stat_unwrapped);
    out->sysmon_rounds = atomic_load_explicit(&stat_rounds, memory_order_relaxed);
    out->sysmon_syscalls = atomic_load_explicit(&stat_syscalls, memory_order_relaxed);
    if (sysmon_m && sysmon_m->cpuclock != -1) {
        int64_t t = gort__thread_cputime(sysmon_m);
        out->sysmon_cpu_ns = t > 0 ? (uint64_t)t : 0;
    }
}
