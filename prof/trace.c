/*
 * trace.c: the execution tracer: Go 1.19's trace format, so that the real
 * `go tool trace` opens what gort writes.  The runtime reports what
 * happens through gort__hooks.trace_ev (runtime/trace.h says where and
 * why there); this file turns each report into Go's events, keeps Go's
 * per-goroutine sequence numbers, and runs start and stop.  Buffers,
 * tables and the writer are prof/tracebuf.c.
 *
 * What go tool trace checks (internal/trace/parser.go, order.go), and
 * how we meet it:
 *   - Events of one P are in one stream; the reader knows the goroutine
 *     running on a P from the last GoStart in that stream.  So only a P's
 *     owner writes its slot, and a G's events go to the P it runs on.
 *     Threads without a P (a goroutine inside a system call, a plain
 *     thread, sysmon) write the global slot (P -1) under glock, as
 *     goroutine 0, which the reader allows to unblock and create.
 *   - Streams are merged by sequence number (GoStart, GoUnblock,
 *     GoSysExit carry the G's trace_seq) and then must be sorted by
 *     time: every event's timestamp is read where the runtime's report
 *     is made, before the G it concerns becomes visible to another
 *     thread (runtime/trace.h).  The "Local" forms save the sequence
 *     number when the G's previous event is in the same stream (its
 *     trace_lastp is this P).
 *   - Every GoStart needs a stopping event: trace stop writes GoSched for
 *     the goroutine that stops it (the world is stopped, so every other
 *     goroutine is already stopped, blocked or in a system call).
 *   - Goroutines alive at start: GoCreate for each, then GoWaiting for
 *     parked ones and GoInSyscall for those in a system call or blocked
 *     outside the runtime with their P revoked.
 *
 * Stacks come from frame pointers (libgort and the programs it is built
 * with keep them; -fno-omit-frame-pointer), walked only within the G's
 * own stack bounds, at most TRACE_STACK_MAX frames: a few loads per
 * frame, where Go 1.19 spends most of its tracing cost in its unwinder.
 *
 * CPU samples: the CPU profiler's signal handler records the tracer's
 * clock and P with each sample in its lock-free per-M ring (no lock in the
 * handler, as Go's profBuf); its writer thread passes them here as it
 * drains, and they go to a batch of their own (cslot), which the reader
 * merges by each sample's own timestamp.
 *
 * Rejected: libunwind or the CFI cache per event (hundreds of ns next to
 * tens), and taking stacks for GoStart/GoEnd (Go has none either).
 */
#include "trace.h"
#include "wholefile.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "gort_prof.h"

static tslot_t slots[GORT_MAX_PROCS];
static tslot_t gslot = {.pid = -1};
static atomic_flag glock = ATOMIC_FLAG_INIT;
/* CPU samples: written by the CPU profiler's writer thread under cpulock
 * (start and stop take it too), in a batch of P 0 as Go writes its
 * cpuLogBuf; the reader takes each sample's P from its arguments. */
static tslot_t cslot = {.pid = 0};
static atomic_flag cpulock = ATOMIC_FLAG_INIT;
static pthread_mutex_t api_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic bool on;            /* a trace is open (gort__tracing may already be off) */
static _Atomic uint64_t next_task;
static uint64_t tick0, ns0;
/* When gort__tracing was last set, after the start's events: CPU samples
 * taken before it are dropped (a sample of a goroutine before the start's
 * GoCreate for it makes go tool trace see the goroutine twice).  Written
 * before the release store of gort__tracing, read after its acquire. */
static uint64_t tick_on;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- stacks ---- */

/* One step of a frame-pointer walk kept to [lo, lo + span + 16): the
 * frame's return address, or 0 at the walk's end; *fpp moves to the next
 * frame (0 when this one is the last: frames must go up the stack). */
static inline uintptr_t fp_next(uintptr_t *fpp, uintptr_t lo, uintptr_t span)
{
    uintptr_t fp = *fpp;
    /* fp - lo > span: below lo (wrapped), 0, or too close to hi for a frame. */
    if (fp - lo > span || (fp & 7))
        return 0;
    const uintptr_t *f = (const uintptr_t *)fp;
    uintptr_t ret = f[1], next = f[0];
    if (ret < 4096)
        return 0;
    *fpp = next > fp ? next : 0;
    return ret;
}

/* The id of the stack pcs[0..n) (n is 0 or 1) and then the return
 * addresses of the walk from fp, after the first skip.
 *
 * Each slot keeps its recent stacks, two per set, the set picked by the
 * stack's first PC: a goroutine blocks and wakes others at the same few
 * places, and the two ends of a ping-pong share their first PC.  A cached
 * stack is checked against the frames as they are walked, with no copy
 * and no hash; only a stack not there is collected, hashed and looked up
 * in the shared table. */
static inline uint32_t fp_stack(tslot_t *s, uintptr_t fp, uintptr_t lo, uintptr_t hi, uintptr_t *pcs, int n,
                                int skip)
{
    uintptr_t span = hi - lo - 16, r;
    for (; skip > 0; skip--)
        if (!fp_next(&fp, lo, span))
            return 0;
    if (n == 0) {
        if (!(r = fp_next(&fp, lo, span)))
            return 0;
        pcs[n++] = r;
    }
    tstk_t **set = &s->stk[((pcs[0] * 0x9e3779b97f4a7c15ull) >> 61) * 2];
    for (int w = 0; w < 2; w++) {
        tstk_t *e = set[w];
        if (!e || e->pcs[0] != pcs[0])
            continue;
        uintptr_t f = fp;
        uint32_t i = 1;
        while (i < e->n && fp_next(&f, lo, span) == e->pcs[i])
            i++;
        if (i == e->n && (i == TRACE_STACK_MAX || !fp_next(&f, lo, span)))
            return e->id;
    }
    uint64_t h = gort__tb_hash_step(TB_HASH0, pcs[0]);
    while (n < TRACE_STACK_MAX && (r = fp_next(&fp, lo, span)) != 0) {
        pcs[n++] = r;
        h = gort__tb_hash_step(h, r);
    }
    set[1] = set[0];
    set[0] = gort__tb_stack_entry(pcs, n, h);
    return set[0]->id;
}

/* The calling goroutine's stack, from the caller of our caller. */
static __attribute__((noinline)) uint32_t stack_here(tslot_t *s)
{
    gort_g_t *gp = gort__getg();
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
    if (!gp || fp < gp->stack.lo || fp >= gp->stack.hi)
        return 0;
    uintptr_t pcs[TRACE_STACK_MAX];
    return fp_stack(s, fp, gp->stack.lo, gp->stack.hi, pcs, 0, 2);
}

/* A goroutine switched out: from its saved context. */
static uint32_t stack_saved(tslot_t *s, gort_g_t *gp)
{
    if (!gp->stack.lo)
        return 0;
    gort_regsave_view_t v;
    gort__regsave_view(&gp->ctx, &v);
    uintptr_t pcs[TRACE_STACK_MAX];
    pcs[0] = v.pc;
    return fp_stack(s, v.fp, gp->stack.lo, gp->stack.hi, pcs, 1, 0);
}

static uint32_t stack_fn(uintptr_t pc)
{
    uintptr_t p = pc + 1; /* symbolized at p - 1: the function itself */
    return gort__tb_stack(&p, 1);
}

/* ---- slots ---- */

/* A P's slot: its owner marks it busy for the event and then looks at
 * gort__tracing; a SIGTERM handler clears gort__tracing, passes a
 * membarrier (so each owner either sees it cleared or has its busy mark
 * seen) and waits for busy to clear before it flushes the slot.  The
 * owner pays two plain stores and a load: the barrier is on the rare
 * side. */
static inline tslot_t *pslot_enter(tslot_t *s)
{
    atomic_store_explicit(&s->busy, 1, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
    if (unlikely(!atomic_load_explicit(&gort__tracing, memory_order_relaxed))) {
        atomic_store_explicit(&s->busy, 0, memory_order_release);
        return NULL;
    }
    return s;
}

static tslot_t *slot_lock(gort_p_t *pp)
{
    if (pp)
        return pslot_enter(&slots[pp->id]);
    while (atomic_flag_test_and_set_explicit(&glock, memory_order_acquire))
        gort__cpu_relax();
    if (!atomic_load_explicit(&gort__tracing, memory_order_relaxed)) {
        atomic_flag_clear_explicit(&glock, memory_order_release);
        return NULL;
    }
    return &gslot;
}
static void slot_unlock(tslot_t *s)
{
    if (s == &gslot)
        atomic_flag_clear_explicit(&glock, memory_order_release);
    else
        atomic_store_explicit(&s->busy, 0, memory_order_release);
}

static inline __attribute__((always_inline)) void ev(tslot_t *s, int e, int n, uint64_t a0, uint64_t a1, uint64_t a2,
                                                     uint64_t a3)
{
    (void)a3;
    gort__tb_ev(s, e, n, a0, a1, a2, false);
}

static void proc_start(tslot_t *s, gort_m_t *m)
{
    if (s->running)
        return;
    s->running = true;
    ev(s, EV_PROC_START, 1, m ? (uint64_t)m->id : 0, 0, 0, 0);
}

static void proc_stop(tslot_t *s)
{
    if (!s->running)
        return;
    s->running = false;
    ev(s, EV_PROC_STOP, 0, 0, 0, 0, 0);
}

static int block_ev(int wr)
{
    switch (wr) {
    case WR_CHAN_RECEIVE:
    case WR_CHAN_RECEIVE_NIL:
        return EV_GO_BLOCK_RECV;
    case WR_CHAN_SEND:
    case WR_CHAN_SEND_NIL:
        return EV_GO_BLOCK_SEND;
    case WR_SELECT:
    case WR_SELECT_NO_CASES:
        return EV_GO_BLOCK_SELECT;
    case WR_SLEEP:
        return EV_GO_SLEEP;
    case WR_SYNC_MUTEX_LOCK:
    case WR_SYNC_RWMUTEX_RLOCK:
    case WR_SYNC_RWMUTEX_LOCK:
    case WR_SYNC_WAITGROUP_WAIT:
    case WR_SEMACQUIRE:
    case WR_ERRGROUP_WAIT:
        return EV_GO_BLOCK_SYNC;
    case WR_SYNC_COND_WAIT:
        return EV_GO_BLOCK_COND;
    case WR_IO_WAIT: /* the netpoller */
        return EV_GO_BLOCK_NET;
    default:
        return EV_GO_BLOCK;
    }
}

/* GoSysExit, if a taker wrote GoSysBlock for gp's call (waiting for it
 * if the taker is on its way), before gp's next GoStart. */
static void sysexit(tslot_t *s, gort_g_t *gp)
{
    uint8_t st;
    while ((st = atomic_load_explicit(&gp->trace_sys, memory_order_acquire)) == 1)
        sched_yield();
    if (st != 2)
        return;
    /* The call returned before the taker stamped its GoSysBlock, perhaps:
     * the reader wants the exit after the block. */
    uint64_t ts = (uint64_t)gp->trace_sysexit;
    if (ts <= (uint64_t)gp->trace_sysblock)
        ts = (uint64_t)gp->trace_sysblock + 1;
    ev(s, EV_GO_SYSEXIT, 3, gp->goid, ++gp->trace_seq, ts, 0);
    atomic_store_explicit(&gp->trace_sys, 0, memory_order_relaxed);
}

/* inherit: straight from the goroutine before it on this P (runnext),
 * whose last event was a moment ago: no clock read for a local start.
 * The start's order against other Ps is fixed by the events around it
 * on this P, which read the clock. */
static void go_start(tslot_t *s, gort_g_t *gp, gort_p_t *pp, bool inherit)
{
    sysexit(s, gp);
    gp->trace_seq++;
    if (gp->trace_lastp == pp) {
        gort__tb_ev(s, EV_GO_START_LOCAL, 1, gp->goid, 0, 0, inherit);
    } else {
        gp->trace_lastp = pp;
        ev(s, EV_GO_START, 2, gp->goid, gp->trace_seq, 0, 0);
    }
}

/* The hook: runtime/trace.h. */
void gort__trace_ev(int e, gort_g_t *gp, gort_p_t *pp, uint64_t arg)
{
    if (e == TEV_PTAKEN && arg == 0) {
        /* A P left P_SYSCALL: runs whether or not a trace is on, since
         * its G may be waiting for trace_sys to leave 1. */
        gort_g_t *sg = atomic_exchange_explicit(&pp->trace_sysg, NULL, memory_order_acquire);
        if (!sg)
            return;
        tslot_t *s = pslot_enter(&slots[pp->id]);
        if (s) {
            ev(s, EV_GO_SYSBLOCK, 0, 0, 0, 0, 0);
            proc_stop(s);
            sg->trace_sysblock = (int64_t)s->buf->last;
            slot_unlock(s);
        }
        atomic_store_explicit(&sg->trace_sys, 2, memory_order_release);
        return;
    }
    if (gp && gp->foreign)
        return;
    tslot_t *s = slot_lock(pp);
    if (!s)
        return;
    gort_m_t *m = gort__getm();
    switch (e) {
    case TEV_PSTART:
        proc_start(s, m);
        break;
    case TEV_PSTOP:
        proc_stop(s);
        break;
    case TEV_PROCS:
        ev(s, EV_GOMAXPROCS, 2, arg, 0, 0, 0);
        break;
    case TEV_CREATE:
        gp->trace_seq = 0;
        gp->trace_lastp = pp;
        atomic_store_explicit(&gp->trace_sys, 0, memory_order_relaxed);
        ev(s, EV_GO_CREATE, 3, gp->goid, stack_fn((uintptr_t)gp->fn), stack_here(s), 0);
        break;
    case TEV_START:
        if (arg > 1 && pp == (gort_p_t *)(uintptr_t)arg) {
            /* Back from a system call with the P it entered with, taken
             * back from P_SYSCALL.  Nobody took it meanwhile: the G never
             * stopped running in the trace.  Or it was taken, and went
             * on to another G that is now in a system call with it (the
             * CAS cannot tell): then we are that G's taker. */
            gort_g_t *sg = atomic_exchange_explicit(&pp->trace_sysg, NULL, memory_order_acq_rel);
            if (sg == gp && atomic_load_explicit(&gp->trace_sys, memory_order_acquire) == 1) {
                atomic_store_explicit(&gp->trace_sys, 0, memory_order_relaxed);
                break;
            }
            if (sg && sg != gp) {
                ev(s, EV_GO_SYSBLOCK, 0, 0, 0, 0, 0);
                proc_stop(s);
                sg->trace_sysblock = (int64_t)s->buf->last;
                atomic_store_explicit(&sg->trace_sys, 2, memory_order_release);
                proc_start(s, m);
            }
        }
        if (arg > 1 && atomic_load_explicit(&gp->trace_sys, memory_order_acquire) == 0)
            break; /* a call the trace did not see: still running */
        go_start(s, gp, pp, arg == 1);
        break;
    case TEV_END:
        ev(s, EV_GO_END, 0, 0, 0, 0, 0);
        break;
    case TEV_BLOCK:
        ev(s, block_ev((int)arg), 1, stack_saved(s, gp), 0, 0, 0);
        break;
    case TEV_UNBLOCK:
        gp->trace_seq++;
        if (pp && gp->trace_lastp == pp) {
            ev(s, EV_GO_UNBLOCK_LOCAL, 2, gp->goid, stack_here(s), 0, 0);
        } else {
            gp->trace_lastp = pp;
            ev(s, EV_GO_UNBLOCK, 3, gp->goid, gp->trace_seq, stack_here(s), 0);
        }
        break;
    case TEV_SCHED:
    case TEV_PREEMPT:
        ev(s, e == TEV_SCHED ? EV_GO_SCHED : EV_GO_PREEMPT, 1, stack_saved(s, gp), 0, 0, 0);
        break;
    case TEV_SYSCALL:
        ev(s, EV_GO_SYSCALL, 1, stack_here(s), 0, 0, 0);
        atomic_store_explicit(&gp->trace_sys, 1, memory_order_relaxed);
        atomic_store_explicit(&pp->trace_sysg, gp, memory_order_release);
        break;
    case TEV_SYSEXIT:
        gp->trace_sysexit = (int64_t)gort__trace_ticks();
        break;
    case TEV_PTAKEN:
        /* sysmon revoked pp from gp, blocked outside the runtime. */
        ev(s, EV_GO_SYSBLOCK, 0, 0, 0, 0, 0);
        proc_stop(s);
        gp->trace_sysblock = (int64_t)s->buf->last;
        atomic_store_explicit(&gp->trace_sys, 2, memory_order_release);
        break;
    }
    slot_unlock(s);
}

/* A CPU profile sample taken during the trace (prof/cpuprof.c's writer,
 * as it drains the samples its signal handler queued lock-free): Go's
 * EvCPUSample [real timestamp, real P id or -1, goroutine id, stack].
 * pcs[0] is the interrupted PC itself, the rest return addresses. */
void gort__trace_cpu_sample(uint64_t ticks, int pid, uint64_t goid, const uintptr_t *pcs, int n)
{
    uintptr_t st[TRACE_STACK_MAX];
    if (n > TRACE_STACK_MAX)
        n = TRACE_STACK_MAX;
    for (int i = 0; i < n; i++)
        st[i] = pcs[i];
    if (n > 0)
        st[0]++; /* symbolized at pc - 1, as return addresses are */
    while (atomic_flag_test_and_set_explicit(&cpulock, memory_order_acquire))
        gort__cpu_relax();
    /* Under cpulock: a stop flushes cslot under it after clearing
     * gort__tracing, and only then writes (and frees) the stack table. */
    if (atomic_load_explicit(&gort__tracing, memory_order_acquire) && ticks > tick_on) {
        uint64_t a[4] = {ticks, (uint64_t)(int64_t)pid, goid, gort__tb_stack(st, n)};
        gort__tb_event(&cslot, EV_CPU_SAMPLE, 4, a, 0, NULL, 0);
    }
    atomic_flag_clear_explicit(&cpulock, memory_order_release);
}

/* ---- start and stop ---- */

struct start_ctx {
    tslot_t *s;
    gort_p_t *pp;
    gort_g_t *self;
};

static void start_g(gort_g_t *gp, void *arg)
{
    struct start_ctx *c = arg;
    uint32_t st = atomic_load_explicit(&gp->status, memory_order_acquire);
    if (st == G_DEAD || st == G_IDLE || gp->foreign)
        return;
    gp->trace_seq = 0;
    gp->trace_lastp = c->pp;
    atomic_store_explicit(&gp->trace_sys, 0, memory_order_relaxed);
    ev(c->s, EV_GO_CREATE, 3, gp->goid, stack_fn((uintptr_t)gp->fn), 0, 0);
    if (st == G_WAITING) {
        gp->trace_seq++;
        ev(c->s, EV_GO_WAITING, 1, gp->goid, 0, 0, 0);
    } else if (st == G_SYSCALL || (st == G_RUNNING && gp != c->self)) {
        /* In a system call, or running with its P revoked: either way
         * it comes back through gort_syscall_exit. */
        gp->trace_seq++;
        ev(c->s, EV_GO_INSYSCALL, 1, gp->goid, 0, 0, 0);
        gp->trace_sysblock = (int64_t)c->s->buf->last;
        gp->trace_sysexit = 0;
        atomic_store_explicit(&gp->trace_sys, 2, memory_order_relaxed);
    }
}

static void reset_slots(void)
{
    for (int i = 0; i < GORT_MAX_PROCS; i++) {
        slots[i] = (tslot_t){.pid = i};
        gort_p_t *pp = gort__allp[i];
        if (pp)
            atomic_store_explicit(&pp->trace_sysg, NULL, memory_order_relaxed);
    }
    gslot = (tslot_t){.pid = -1};
    while (atomic_flag_test_and_set_explicit(&cpulock, memory_order_acquire))
        gort__cpu_relax();
    cslot = (tslot_t){.pid = 0};
    atomic_flag_clear_explicit(&cpulock, memory_order_release);
}

static int start_locked(int fd)
{
    if (atomic_load(&on))
        return -EBUSY;
    int r = gort__tb_start(fd);
    if (r < 0)
        return r;
    atomic_store(&on, true);
    tick0 = gort__trace_ticks();
    ns0 = mono_ns();
    return 0;
}

static uint64_t freq_now(void)
{
    uint64_t t1 = gort__trace_ticks(), n1 = mono_ns();
    if (n1 <= ns0 || t1 <= tick0)
        return 1000000000ull >> TRACE_TICK_SHIFT;
    return (uint64_t)((double)(t1 - tick0) * 1e9 / (double)(n1 - ns0));
}

/* All slots to the writer; the world is stopped or the process is ending. */
static void flush_all(void)
{
    for (int i = 0; i < GORT_MAX_PROCS; i++)
        gort__tb_flush(&slots[i]);
    while (atomic_flag_test_and_set_explicit(&glock, memory_order_acquire))
        gort__cpu_relax();
    gort__tb_flush(&gslot);
    atomic_flag_clear_explicit(&glock, memory_order_release);
    while (atomic_flag_test_and_set_explicit(&cpulock, memory_order_acquire))
        gort__cpu_relax();
    gort__tb_flush(&cslot);
    atomic_flag_clear_explicit(&cpulock, memory_order_release);
}

int gort_trace_start(int fd)
{
    gort__fork_check();
    if (fd < 0)
        return -EBADF;
    gort_g_t *self = gort__getg();
    if (!self)
        gort__fatal("gort_trace_start called outside a goroutine");
    pthread_mutex_lock(&api_lock);
    int r = start_locked(fd);
    if (r < 0) {
        pthread_mutex_unlock(&api_lock);
        return r;
    }
    gort__stop_the_world("start tracing");
    reset_slots();
    gort_m_t *m = gort__getm();
    gort_p_t *pp = m->p;
    struct start_ctx c = {&slots[pp->id], pp, self};
    gort__forallg(start_g, &c);
    proc_start(c.s, m);
    go_start(c.s, self, pp, false);
    ev(c.s, EV_GOMAXPROCS, 2, (uint64_t)atomic_load(&gort__gomaxprocs), 0, 0, 0);
    tick_on = gort__trace_ticks();
    /* The switch's bit before the flag (hooks.h). */
    atomic_fetch_or_explicit(&gort__switch_slow, GORT_SWITCH_TRACE, memory_order_relaxed);
    atomic_store_explicit(&gort__tracing, true, memory_order_release);
    gort__start_the_world();
    pthread_mutex_unlock(&api_lock);
    return 0;
}

static int finish(void)
{
    int r = gort__tb_finish(freq_now());
    atomic_store(&on, false);
    return r;
}

int gort_trace_stop(void)
{
    gort__fork_check();
    gort_g_t *self = gort__getg();
    if (!self)
        gort__fatal("gort_trace_stop called outside a goroutine");
    pthread_mutex_lock(&api_lock);
    if (!atomic_load(&on)) {
        pthread_mutex_unlock(&api_lock);
        return -EINVAL;
    }
    gort__stop_the_world("stop tracing");
    gort_p_t *pp = gort__getm()->p;
    tslot_t *s = &slots[pp->id];
    ev(s, EV_GO_SCHED, 1, stack_here(s), 0, 0, 0);
    atomic_store_explicit(&gort__tracing, false, memory_order_release);
    /* After the flag (hooks.h), with the world stopped and api_lock held:
     * no start sets it meanwhile. */
    atomic_fetch_and_explicit(&gort__switch_slow, ~(uint32_t)GORT_SWITCH_TRACE, memory_order_relaxed);
    flush_all();
    gort__start_the_world();
    int r = finish();
    pthread_mutex_unlock(&api_lock);
    return r;
}

bool gort_trace_enabled(void)
{
    gort__fork_check();
    return atomic_load_explicit(&gort__tracing, memory_order_relaxed);
}

/* ---- user annotations (runtime/trace: NewTask, StartRegion, Log) ---- */

/* Runs on the caller's P with the runtime entered (sysmon does not take
 * the P meanwhile), or on the global slot without one. */
static void user_ev(int e, int n, uint64_t a0, uint64_t a1, uint64_t a2, const char *extra)
{
    gort_g_t *self = gort__rt_enter();
    gort_m_t *m = gort__getm();
    tslot_t *s = slot_lock(m && self ? m->p : NULL);
    if (s) {
        uint64_t a[4] = {a0, a1, a2, 0};
        a[n - 1] = stack_here(s);
        gort__tb_event(s, e, n, a, 0, extra, extra ? strnlen(extra, 4096) : 0);
        slot_unlock(s);
    }
    gort__rt_leave(self);
}

uint64_t gort_trace_task(uint64_t parent, const char *type)
{
    gort__fork_check();
    uint64_t id = atomic_fetch_add_explicit(&next_task, 1, memory_order_relaxed) + 1;
    if (unlikely(atomic_load_explicit(&gort__tracing, memory_order_relaxed)))
        user_ev(EV_USER_TASK_CREATE, 4, id, parent, gort__tb_string(type), NULL);
    return id;
}

void gort_trace_task_end(uint64_t task)
{
    gort__fork_check();
    if (unlikely(atomic_load_explicit(&gort__tracing, memory_order_relaxed)))
        user_ev(EV_USER_TASK_END, 2, task, 0, 0, NULL);
}

void gort_trace_region_begin(uint64_t task, const char *type)
{
    gort__fork_check();
    if (unlikely(atomic_load_explicit(&gort__tracing, memory_order_relaxed)))
        user_ev(EV_USER_REGION, 4, task, 0, gort__tb_string(type), NULL);
}

void gort_trace_region_end(uint64_t task, const char *type)
{
    gort__fork_check();
    if (unlikely(atomic_load_explicit(&gort__tracing, memory_order_relaxed)))
        user_ev(EV_USER_REGION, 4, task, 1, gort__tb_string(type), NULL);
}

void gort_trace_log(uint64_t task, const char *category, const char *message)
{
    gort__fork_check();
    if (unlikely(atomic_load_explicit(&gort__tracing, memory_order_relaxed)))
        user_ev(EV_USER_LOG, 3, task, gort__tb_string(category), 0, message ? message : "");
}

/* ---- GORT_TRACE=path ---- */

static int env_fd = -1;
/* GORT_TRACE's file, written whole (wholefile.c): a trace the writer could
 * not finish, or that the disk refused, leaves no file that looks valid. */
static gort_wfile_t env_file;
/* How long a dying process waits for the writer: symbolizing the stack
 * table reads DWARF, seconds on a loaded machine.  Under TSan every
 * allocation and lock of the DWARF reader and of the writer goes through
 * its runtime, several times slower, and 8 s ran out on a loaded 2-core
 * machine (trace env_sigterm). */
#if defined(GORT_TSAN)
#define FINISH_WAIT_NS (60LL * 1000 * 1000 * 1000)
#else
#define FINISH_WAIT_NS (8LL * 1000 * 1000 * 1000)
#endif

/* How long a SIGTERM waits for the event being written in each buffer. */
#define TERM_SLOT_WAIT_NS (100LL * 1000 * 1000)

/* GORT_TRACE and SIGTERM/SIGINT: the writer finishes the file (waited
 * for at most FINISH_WAIT_NS: futexes and atomics here), then the signal
 * kills the process as it would have without us. */
static bool term_wait(_Atomic uint32_t *busy, int64_t deadline)
{
    while (atomic_load_explicit(busy, memory_order_acquire))
        if (gort__nanotime() > deadline)
            return false;
        else
            gort__cpu_relax();
    return true;
}
static bool term_take(atomic_flag *f, int64_t deadline)
{
    while (atomic_flag_test_and_set_explicit(f, memory_order_acquire))
        if (gort__nanotime() > deadline)
            return false;
        else
            gort__cpu_relax();
    return true;
}

static void term_handler(int sig, siginfo_t *info, void *uctx)
{
    (void)info;
    (void)uctx;
    if (atomic_exchange(&gort__tracing, false)) {
        /* Writers that saw gort__tracing set finish their event before
         * their buffer is taken (see pslot_enter); one interrupted by this
         * very signal never does, so each wait is bounded and such a
         * buffer is left out rather than written torn. */
        if (gort__have_membarrier)
            (void)syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
        else
            atomic_thread_fence(memory_order_seq_cst);
        int64_t deadline = gort__nanotime() + TERM_SLOT_WAIT_NS;
        for (int i = 0; i < GORT_MAX_PROCS; i++)
            if (term_wait(&slots[i].busy, deadline))
                gort__tb_flush(&slots[i]);
        if (term_take(&glock, deadline))
            gort__tb_flush(&gslot); /* the locks stay held: nothing writes after this */
        if (term_take(&cpulock, deadline))
            gort__tb_flush(&cslot);
        bool done = gort__tb_finish_timed(freq_now(), FINISH_WAIT_NS);
        if (env_fd >= 0) {
            (void)gort__wfile_commit(&env_file, done ? gort__tb_write_err() : -ETIMEDOUT);
            env_fd = -1;
        }
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Before any goroutine runs (prof/start.c): no world to stop; every P
 * and goroutine then reports itself from its first event. */
void gort__trace_init(void)
{
    gort__hooks.trace_ev = gort__trace_ev;
    const char *path = getenv("GORT_TRACE");
    if (!path || !*path)
        return;
    env_fd = gort__wfile_open(&env_file, path) < 0 ? -1 : env_file.fd;
    if (env_fd < 0 || start_locked(env_fd) < 0) {
        if (env_fd >= 0)
            (void)gort__wfile_commit(&env_file, -EIO); /* removes the temporary */
        env_fd = -1;
        char msg[256];
        snprintf(msg, sizeof msg, "gort: GORT_TRACE: cannot trace to %.150s\n", path);
        gort__write_str(2, msg);
        return;
    }
    reset_slots();
    tick_on = gort__trace_ticks();
    atomic_fetch_or_explicit(&gort__switch_slow, GORT_SWITCH_TRACE, memory_order_relaxed); /* hooks.h */
    atomic_store_explicit(&gort__tracing, true, memory_order_release);
    static const int sigs[] = {SIGINT, SIGTERM};
    for (int i = 0; i < 2; i++) {
        struct sigaction old;
        if (sigaction(sigs[i], NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL)
            gort__signal_install(sigs[i], term_handler, 0);
    }
}

/* At exit, or a fatal error: whatever still runs is cut off here. */
static void env_stop(bool fatal)
{
    if (env_fd < 0 || !atomic_exchange(&gort__tracing, false))
        return;
    flush_all();
    int err;
    if (fatal) {
        err = gort__tb_finish_timed(freq_now(), FINISH_WAIT_NS) ? gort__tb_write_err() : -ETIMEDOUT;
        err = gort__wfile_commit(&env_file, err);
    } else {
        err = gort__wfile_commit(&env_file, finish());
    }
    env_fd = -1;
    if (err < 0 && !fatal) { /* a fatal error may come from a signal handler: no snprintf */
        char msg[256];
        snprintf(msg, sizeof msg, "gort: GORT_TRACE: the trace could not be written whole (errno %d); %.120s not written\n",
                 -err, env_file.path);
        gort__write_str(2, msg);
    }
}

void gort__trace_at_exit(void)
{
    if (env_fd < 0 || !atomic_load(&gort__tracing))
        return;
    /* A goroutine calling exit(3) while others run: stop the world first,
     * so that each stops in the trace. */
    gort_g_t *self = gort__getg();
    if (self && atomic_load(&gort__sched.main_running) && !atomic_load(&gort__sched.main_done)) {
        gort__stop_the_world("stop tracing");
        tslot_t *s = &slots[gort__getm()->p->id];
        ev(s, EV_GO_SCHED, 1, stack_here(s), 0, 0, 0);
        env_stop(false);
        gort__world_stays_stopped();
        return;
    }
    env_stop(false);
}

void gort__trace_before_fatal(void) { env_stop(true); }
