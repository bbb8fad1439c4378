/*
 * cpuprof.c: the CPU profiler.
 *
 * Sampling.  Each M gets a POSIX timer on its own thread CPU-time clock
 * (timer_create(m->cpuclock) with SIGEV_THREAD_ID and SIGPROF), so a thread
 * is sampled in proportion to the CPU it uses, as Go does since 1.18:
 * process-wide setitimer under-samples busy programs past a few cores (Go
 * #35057), because the kernel picks the thread that takes the signal.  The
 * first expiry is random within one period, so that threads that live less
 * than a period are still sampled fairly.  Timers come and go with Ms: an M
 * arms its own at start (gort__prof_m_start, on the new thread) and disarms
 * at exit (gort__prof_m_stop); gort_cpuprofile_start arms the Ms that
 * exist; sysmon's tick arms any M it finds without one and, for an M whose
 * timer could not be created (timer limits), feeds it samples itself: when
 * the thread's CPU clock has advanced by a period since the last sample it
 * queues a SIGPROF to that thread (rt_tgsigqueueinfo) weighted by the
 * periods elapsed.  sysmon signals only Ms that hold a P and whose clock
 * moved, i.e. that burn CPU rather than sit in a system call (EINTR).
 *
 * Per-M timer state (mprof_t.state) is a small CAS protocol, so start,
 * stop, the M itself and sysmon never create or delete a timer twice:
 * NONE -> BUSY (whoever wins creates) -> ARMED or FAILED; ARMED -> BUSY
 * (whoever wins deletes) -> NONE.  A thread that finds BUSY waits for it to
 * settle (it lasts one system call).
 *
 * The signal handler (async-signal-safe: no lock, no allocation, no
 * errno left changed).  It checks the signal is ours (SI_TIMER or SI_QUEUE
 * with our cookie in si_value, of the current session); anything else
 * goes to the SIGPROF handler installed before ours, if any, so that other
 * SIGPROF users keep working.  It then unwinds the interrupted context
 * (prof/unwind.c: cached CFI recipes, libunwind on a miss) into the next
 * slot of the M's ring, with the goroutine id and a reference to the
 * goroutine's labels when the thread was on that goroutine's stack, and
 * publishes the slot with a release store of head.  When the ring is full
 * the sample is counted as dropped instead.  SIGURG (preemption, stack
 * captures) and SIGPROF block each other while either handler runs (the
 * runtime's handlers run with every non-fatal signal masked).
 *
 * Rings: one per M, single producer (that M's handler) and single consumer
 * (the writer), RING slots of fixed size (64 frames, as Go keeps).  They
 * are allocated when the M is first armed and never freed (Ms never die;
 * a late signal after a stop finds a ring and a stale session and drops).
 *
 * The writer: a plain thread with every signal blocked.  Every DRAIN_MS it
 * drains all rings into a table aggregated by (stack, goroutine, labels),
 * passing each sample to the execution tracer first while a trace runs
 * (EvCPUSample: the handler stamps the tracer's clock and the M's P),
 * and lets prof/cfi.c compute the unwind recipes that signal-time lookups
 * missed.  A drain that finds no sample (an idle program, or a profile
 * over HTTP waiting out its seconds) doubles the wait, up to RING/4
 * periods: an M takes at most one sample a period, so no ring can fill
 * meanwhile, and an idle program is not woken 50 times a second for
 * nothing.  The first drain that finds samples goes back to DRAIN_MS.
 * At stop, the timers are deleted, the rings drained once more,
 * and the table symbolized (prof/symtab.c, libdw) into a pprof profile:
 * sample types samples/count and cpu/nanoseconds, period 1e9/hz ns, the
 * duration, mappings with build ids, locations with lines and inlined
 * frames, functions with file names, string labels and a numeric
 * "goroutine" label.  Dropped samples appear as a sample whose only frame
 * is the pseudo-function "[lost profile samples]" and as a comment.
 *
 * Ending a profile: gort_cpuprofile_stop; for GORT_CPUPROFILE=path[,hz], at
 * exit (atexit), at SIGTERM/SIGINT (when the program has no handler of its
 * own: ours asks the writer to finish, then the writer re-raises the
 * signal with the default action), and before a fatal error exits
 * (gort__prof_before_fatal, from runtime/fatal.c and prof/crash.c), with a
 * bounded wait and a symbolizer that only try-locks.  The profile is
 * written to a temporary name and renamed when whole (wholefile.c): a full
 * disk or an I/O error is returned by gort_cpuprofile_stop, never left as a
 * short file that looks valid.  gort_cpuprofile_start returns -errno,
 * having started nothing, when the kernel refuses CPU timers; an M whose
 * own timer is refused later is sampled by sysmon instead (T_FAILED).
 *
 * Rejected: setitimer(ITIMER_PROF) (see above); symbolizing in the
 * handler (libdw allocates and locks); one shared ring (a CAS-contended
 * hot spot and a producer that can be interrupted mid-write by nobody, but
 * raced by every other M); a writer in a goroutine (a profile must be
 * written while the scheduler is stopped or dying).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "cfi.h"
#include "gort_prof.h"
#include "profiles.h"
#include "symtab.h"
#include "trace.h"
#include "unwind.h"
#include "wholefile.h"

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

#define CPU_MAXSTACK 64
#define RING 256 /* power of two */
#define DRAIN_MS 20
#define COOKIE_MAGIC 0x6770u /* "gp" */
#define FATAL_WAIT_MS 5000

enum { T_NONE = 0, T_BUSY, T_ARMED, T_FAILED };

typedef struct sample {
    uint64_t goid;
    uint64_t ticks;        /* the tracer's clock, for an execution trace's EvCPUSample */
    int32_t pid;           /* the M's P, -1 without one */
    gort_labels_t *labels; /* one reference, or NULL */
    uint32_t n, weight;
    uintptr_t pcs[CPU_MAXSTACK];
} sample_t;

typedef struct mprof {
    _Atomic uint32_t state;  /* T_*: CAS protocol above */
    _Atomic uint32_t live;   /* between m_start and m_stop */
    timer_t timer;           /* valid in T_ARMED; owned by whoever holds T_BUSY */
    int64_t fb_cpu;          /* sysmon only: CPU clock at the last fed sample */
    _Atomic uint64_t head;   /* handler only; release, paired with the writer's acquire */
    _Atomic uint64_t tail;   /* writer only; release, paired with the handler's acquire */
    _Atomic uint64_t dropped; /* handler adds, writer reads */
    sample_t *ring;          /* RING slots; set before the first arm, then const */
} mprof_t;

/* The session.  on/gen are read by the handler; the rest belongs to
 * whoever holds api_lock, and to the writer while it runs. */
static pthread_mutex_t api_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint32_t prof_on;
static _Atomic uint32_t prof_gen;
static int64_t period_ns;
static int prof_fd = -1;
static gort_wfile_t prof_file; /* the profile's file: written whole (wholefile.c) */
static int64_t start_mono, start_wall;
static pthread_t writer;
static _Atomic pid_t writer_tid;
/* The writer's inbox: bumped (then futex-woken) to wake it early. */
static _Atomic uint32_t wake_word;
enum { REQ_STOP = 1, REQ_FATAL = 2, REQ_SIGNAL = 4 };
static _Atomic uint32_t requests;
static _Atomic int exit_signal;
static _Atomic uint32_t finished; /* the writer wrote the profile */
static int write_err;
static _Atomic int64_t lost_writer; /* samples the writer could not keep */

/* ------------------------------------------------------------------ */
/* The signal handler                                                   */
/* ------------------------------------------------------------------ */

static void *cookie(uint32_t gen, uint32_t weight)
{
    return (void *)(((uintptr_t)COOKIE_MAGIC << 48) | ((uintptr_t)(weight & 0xffff) << 32) | gen);
}

/* Async-signal-safe. */
static void sigprof_handler(int sig, siginfo_t *info, void *uctx)
{
    int saved_errno = errno;
    uintptr_t ck = (uintptr_t)info->si_value.sival_ptr;
    if ((info->si_code != SI_TIMER && info->si_code != SI_QUEUE) || (ck >> 48) != COOKIE_MAGIC) {
        /* Not ours: another SIGPROF user (setitimer, its own timer). */
        (void)gort__signal_forward(sig, info, uctx);
        errno = saved_errno;
        return;
    }
    uint32_t weight = (uint32_t)(ck >> 32) & 0xffff;
    if (info->si_code == SI_TIMER)
        weight = 1 + (info->si_overrun > 0 ? (uint32_t)info->si_overrun : 0);
    gort_m_t *m = gort__getm();
    mprof_t *mp = m ? __atomic_load_n((mprof_t **)&m->prof, __ATOMIC_ACQUIRE) : NULL;
    sample_t *ring = mp ? __atomic_load_n(&mp->ring, __ATOMIC_ACQUIRE) : NULL; /* ensure_ring's release */
    if (!ring || !atomic_load_explicit(&prof_on, memory_order_acquire) ||
        (uint32_t)ck != atomic_load_explicit(&prof_gen, memory_order_relaxed)) {
        errno = saved_errno;
        return;
    }
    uint64_t h = atomic_load_explicit(&mp->head, memory_order_relaxed);
    uint64_t t = atomic_load_explicit(&mp->tail, memory_order_acquire);
    if (h - t >= RING) {
        atomic_fetch_add_explicit(&mp->dropped, weight, memory_order_relaxed);
        errno = saved_errno;
        return;
    }
    sample_t *s = &ring[h & (RING - 1)];
    s->goid = 0;
    s->labels = NULL;
    s->ticks = gort__trace_ticks();
    gort_p_t *pp = __atomic_load_n(&m->p, __ATOMIC_RELAXED);
    s->pid = pp ? pp->id : -1;
    gort_g_t *gp = m->curg;
    if (gp) {
        /* Charge the goroutine only when its stack is the one interrupted:
         * on the scheduler stack m->curg may be on its way out. */
        uintptr_t sp = (uintptr_t)((ucontext_t *)uctx)->uc_mcontext.gregs[REG_RSP];
        if (sp >= gp->stack.lo && sp < gp->stack.hi) {
            s->goid = gp->goid;
            gort_labels_t *l = __atomic_load_n(&gp->labels, __ATOMIC_ACQUIRE);
            gort__labels_ref(l);
            s->labels = l;
        }
    }
    int n = gort__unwind_sigctx(uctx, s->pcs, CPU_MAXSTACK);
    s->n = n > 0 ? (uint32_t)n : 0;
    s->weight = weight ? weight : 1;
    atomic_store_explicit(&mp->head, h + 1, memory_order_release);
    errno = saved_errno;
}

/* ------------------------------------------------------------------ */
/* Timers                                                               */
/* ------------------------------------------------------------------ */

static mprof_t *mprof_of(gort_m_t *m) { return __atomic_load_n((mprof_t **)&m->prof, __ATOMIC_ACQUIRE); }

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Waits out another thread's create or delete; returns the settled state. */
static uint32_t settle(mprof_t *mp)
{
    uint32_t s;
    while ((s = atomic_load(&mp->state)) == T_BUSY)
        sched_yield();
    return s;
}

static bool ensure_ring(mprof_t *mp)
{
    if (mp->ring)
        return true;
    void *r = mmap(NULL, sizeof(sample_t) * RING, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED)
        return false;
    __atomic_store_n(&mp->ring, (sample_t *)r, __ATOMIC_RELEASE);
    return true;
}

/* Creates and starts m's timer for the current session, if it has none.
 * Not in a signal handler. */
static void arm(gort_m_t *m)
{
    mprof_t *mp = mprof_of(m);
    if (!mp || m->is_sysmon || !atomic_load(&mp->live))
        return;
    uint32_t exp = T_NONE;
    if (!atomic_compare_exchange_strong(&mp->state, &exp, T_BUSY))
        return;
    uint32_t gen = atomic_load(&prof_gen);
    if (!atomic_load(&prof_on) || !ensure_ring(mp)) {
        atomic_store(&mp->state, T_NONE);
        return;
    }
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIGPROF;
    sev.sigev_notify_thread_id = m->tid;
    sev.sigev_value.sival_ptr = cookie(gen, 1);
    if (timer_create(m->cpuclock, &sev, &mp->timer) != 0) {
        mp->fb_cpu = gort__thread_cputime(m);
        atomic_store(&mp->state, T_FAILED);
        return;
    }
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    its.it_interval.tv_sec = period_ns / 1000000000;
    its.it_interval.tv_nsec = period_ns % 1000000000;
    /* First expiry random within one period (Go does the same). */
    uint64_t mix = ((uint64_t)mono_ns() ^ ((uint64_t)m->tid << 32)) * 0x9e3779b97f4a7c15ull;
    int64_t first = 1 + (int64_t)((mix >> 17) % (uint64_t)period_ns);
    its.it_value.tv_sec = first / 1000000000;
    its.it_value.tv_nsec = first % 1000000000;
    if (timer_settime(mp->timer, 0, &its, NULL) != 0) {
        timer_delete(mp->timer);
        mp->fb_cpu = gort__thread_cputime(m);
        atomic_store(&mp->state, T_FAILED);
        return;
    }
    atomic_store(&mp->state, T_ARMED);
}

static void disarm(mprof_t *mp)
{
    for (;;) {
        uint32_t s = settle(mp);
        if (s == T_NONE)
            return;
        if (!atomic_compare_exchange_strong(&mp->state, &s, T_BUSY))
            continue;
        if (s == T_ARMED)
            timer_delete(mp->timer);
        atomic_store(&mp->state, T_NONE);
        return;
    }
}

/* Calls fn on every M (allm is append-only). */
static void for_all_m(void (*fn)(gort_m_t *))
{
    gort__lock(&gort__sched.allm_lock);
    gort_m_t *head = gort__sched.allm;
    gort__unlock(&gort__sched.allm_lock);
    for (gort_m_t *m = head; m; m = m->alllink)
        fn(m);
}

/* Crash path: allm_lock may be held by the thread that died. */
static gort_m_t *allm_head_nolock(void) { return __atomic_load_n(&gort__sched.allm, __ATOMIC_ACQUIRE); }

static void disarm_m(gort_m_t *m)
{
    mprof_t *mp = mprof_of(m);
    if (mp)
        disarm(mp);
}

void gort__prof_m_start(gort_m_t *m)
{
    mprof_t *mp = mprof_of(m);
    if (!mp) {
        mp = calloc(1, sizeof *mp);
        if (!mp)
            return; /* not profiled; sampling is best effort */
        __atomic_store_n((mprof_t **)&m->prof, mp, __ATOMIC_RELEASE);
    }
    atomic_store(&mp->live, 1);
    if (atomic_load(&prof_on))
        arm(m);
}

void gort__prof_m_stop(gort_m_t *m)
{
    mprof_t *mp = mprof_of(m);
    if (!mp)
        return;
    atomic_store(&mp->live, 0);
    disarm(mp);
}

/* sysmon, every round.  Arms Ms that have no timer (those that started
 * before the profile, or raced its start) and feeds Ms whose timer could
 * not be created. */
void gort__prof_sysmon_tick(int64_t now)
{
    static int64_t last;
    /* PCs the preemption check met without a recipe (unwind.c). */
    if (gort__cfi_pending())
        gort__cfi_warm_nowait();
    if (!atomic_load_explicit(&prof_on, memory_order_relaxed) || now - last < DRAIN_MS * 1000000LL / 2)
        return;
    last = now;
    gort__lock(&gort__sched.allm_lock);
    gort_m_t *head = gort__sched.allm;
    gort__unlock(&gort__sched.allm_lock);
    uint32_t gen = atomic_load(&prof_gen);
    for (gort_m_t *m = head; m; m = m->alllink) {
        mprof_t *mp = mprof_of(m);
        if (!mp || m->is_sysmon || !atomic_load(&mp->live))
            continue;
        uint32_t s = atomic_load(&mp->state);
        if (s == T_NONE) {
            arm(m);
        } else if (s == T_FAILED && __atomic_load_n(&m->p, __ATOMIC_RELAXED) && m->curg) {
            int64_t cpu = gort__thread_cputime(m);
            int64_t k = (cpu - mp->fb_cpu) / period_ns;
            if (k <= 0)
                continue;
            mp->fb_cpu += k * period_ns;
            siginfo_t si;
            memset(&si, 0, sizeof si);
            si.si_signo = SIGPROF;
            si.si_code = SI_QUEUE;
            si.si_pid = getpid();
            si.si_uid = getuid();
            si.si_value.sival_ptr = cookie(gen, (uint32_t)(k > 0xffff ? 0xffff : k));
            syscall(SYS_rt_tgsigqueueinfo, getpid(), m->tid, SIGPROF, &si);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Aggregation (writer thread only)                                     */
/* ------------------------------------------------------------------ */

typedef struct agg {
    struct agg *next;
    uint64_t hash, goid;
    gort_labels_t *labels; /* one reference */
    int64_t count;
    uint32_t n;
    uintptr_t pcs[];
} agg_t;

static agg_t **aggtab;
static size_t aggcap, aggn;

static uint64_t agg_hash(const sample_t *s)
{
    uint64_t h = 1469598103934665603ull ^ s->goid ^ ((uint64_t)(uintptr_t)s->labels << 7);
    for (uint32_t i = 0; i < s->n; i++)
        h = (h ^ s->pcs[i]) * 1099511628211ull;
    return h ^ s->n;
}

static bool agg_grow(void)
{
    size_t cap = aggcap ? aggcap * 2 : 1024;
    agg_t **t = calloc(cap, sizeof *t);
    if (!t)
        return false;
    for (size_t i = 0; i < aggcap; i++)
        for (agg_t *a = aggtab[i], *nx; a; a = nx) {
            nx = a->next;
            a->next = t[a->hash & (cap - 1)];
            t[a->hash & (cap - 1)] = a;
        }
    free(aggtab);
    aggtab = t;
    aggcap = cap;
    return true;
}

/* Takes over the sample's label reference. */
static void agg_add(const sample_t *s)
{
    if ((aggn + 1) > aggcap && !agg_grow()) {
        atomic_fetch_add(&lost_writer, s->weight);
        gort__labels_unref(s->labels);
        return;
    }
    uint64_t h = agg_hash(s);
    agg_t **slot = &aggtab[h & (aggcap - 1)];
    for (agg_t *a = *slot; a; a = a->next)
        if (a->hash == h && a->goid == s->goid && a->labels == s->labels && a->n == s->n &&
            !memcmp(a->pcs, s->pcs, sizeof(uintptr_t) * s->n)) {
            a->count += s->weight;
            gort__labels_unref(s->labels);
            return;
        }
    agg_t *a = malloc(sizeof *a + sizeof(uintptr_t) * s->n);
    if (!a) {
        atomic_fetch_add(&lost_writer, s->weight);
        gort__labels_unref(s->labels);
        return;
    }
    a->hash = h;
    a->goid = s->goid;
    a->labels = s->labels;
    a->count = s->weight;
    a->n = s->n;
    memcpy(a->pcs, s->pcs, sizeof(uintptr_t) * s->n);
    a->next = *slot;
    *slot = a;
    aggn++;
}

static void agg_clear(void)
{
    for (size_t i = 0; i < aggcap; i++)
        for (agg_t *a = aggtab[i], *nx; a; a = nx) {
            nx = a->next;
            gort__labels_unref(a->labels);
            free(a);
        }
    free(aggtab);
    aggtab = NULL;
    aggcap = aggn = 0;
}

static uint64_t drained;                 /* writer only: samples the last drain took */
static _Atomic uint64_t writer_rounds;   /* the writer's drains (tests) */

uint64_t gort__cpuprof_writer_rounds(void) { return atomic_load(&writer_rounds); }

static void drain_m(gort_m_t *m)
{
    mprof_t *mp = mprof_of(m);
    sample_t *ring = mp ? __atomic_load_n(&mp->ring, __ATOMIC_ACQUIRE) : NULL;
    if (!ring)
        return;
    uint64_t t = atomic_load_explicit(&mp->tail, memory_order_relaxed);
    uint64_t h = atomic_load_explicit(&mp->head, memory_order_acquire);
    drained += h - t;
    for (; t != h; t++) {
        sample_t *s = &ring[t & (RING - 1)];
        if (atomic_load_explicit(&gort__tracing, memory_order_relaxed))
            gort__trace_cpu_sample(s->ticks, s->pid, s->goid, s->pcs, (int)s->n);
        agg_add(s);
    }
    atomic_store_explicit(&mp->tail, t, memory_order_release);
}

static void drain_all(bool crashing)
{
    if (crashing) {
        for (gort_m_t *m = allm_head_nolock(); m; m = m->alllink)
            drain_m(m);
    } else {
        for_all_m(drain_m);
    }
}

static int64_t dropped_total(bool crashing)
{
    int64_t d = atomic_load(&lost_writer);
    for (gort_m_t *m = crashing ? allm_head_nolock() : (gort__lock(&gort__sched.allm_lock), gort__sched.allm);
         m; m = m->alllink) {
        mprof_t *mp = mprof_of(m);
        if (mp)
            d += (int64_t)atomic_load(&mp->dropped);
    }
    if (!crashing)
        gort__unlock(&gort__sched.allm_lock);
    return d;
}

/* ------------------------------------------------------------------ */
/* Building the profile                                                 */
/* ------------------------------------------------------------------ */

static int build_and_write(bool crashing)
{
    int64_t dropped = dropped_total(crashing);
    gort__pprof_t *p = gort__pprof_new();
    gort_loccache_t *lc = p ? gort__loccache_new(p, crashing ? GORT_SYM_TRYLOCK : 0) : NULL;
    int err = (!p || !lc) ? -ENOMEM : 0;
    if (!err)
        err = gort__pprof_add_sample_type(p, "samples", "count");
    if (!err)
        err = gort__pprof_add_sample_type(p, "cpu", "nanoseconds");
    if (!err)
        err = gort__pprof_set_period(p, "cpu", "nanoseconds", period_ns);
    if (!err) {
        p->time_nanos = start_wall;
        p->duration_nanos = mono_ns() - start_mono;
    }
    int64_t goid_key = err ? 0 : gort__pprof_str(p, "goroutine");
    uint32_t locs[CPU_MAXSTACK + 1];
    gort__pprof_label_t lab[33];
    for (size_t i = 0; !err && i < aggcap; i++)
        for (agg_t *a = aggtab[i]; a && !err; a = a->next) {
            int nl = gort__stack_locs(lc, a->pcs, (int)a->n, true, false, locs);
            int nlab = nl < 0 ? -ENOMEM : gort__labels_pprof(p, a->labels, lab, 32);
            if (nl < 0 || nlab < 0) {
                err = -ENOMEM;
                break;
            }
            if (nl == 0)
                continue;
            if (a->goid)
                lab[nlab++] = (gort__pprof_label_t){.key = goid_key, .num = (int64_t)a->goid};
            int64_t val[2] = {a->count, a->count * period_ns};
            err = gort__pprof_add_sample(p, locs, (uint32_t)nl, val, lab, (uint32_t)nlab);
        }
    if (!err && dropped > 0) {
        int64_t f = gort__pprof_add_function(p, "[lost profile samples]", "[lost profile samples]", "", 0);
        gort__pprof_line_t line = {.func = f < 0 ? 0 : (uint32_t)f, .line = 0};
        int64_t loc = f < 0 ? f : gort__pprof_add_location(p, GORT__PPROF_NONE, 0, &line, 1);
        if (loc < 0) {
            err = (int)loc;
        } else {
            uint32_t l32 = (uint32_t)loc;
            int64_t val[2] = {dropped, dropped * period_ns};
            err = gort__pprof_add_sample(p, &l32, 1, val, NULL, 0);
            char msg[96];
            snprintf(msg, sizeof msg, "gort: %lld samples dropped (sample buffers full)", (long long)dropped);
            if (!err)
                err = gort__pprof_add_comment(p, msg);
        }
    }
    if (!err)
        err = gort__pprof_write(p, prof_fd, true);
    gort__loccache_free(lc);
    gort__pprof_free(p);
    return err;
}

/* ------------------------------------------------------------------ */
/* The writer thread                                                    */
/* ------------------------------------------------------------------ */

static void finish(bool crashing)
{
    atomic_store(&prof_on, 0);
    if (crashing) {
        for (gort_m_t *m = allm_head_nolock(); m; m = m->alllink)
            disarm_m(m);
    } else {
        for_all_m(disarm_m);
    }
    drain_all(crashing);
    write_err = build_and_write(crashing);
    agg_clear();
    write_err = gort__wfile_commit(&prof_file, write_err);
    prof_fd = -1;
    atomic_store_explicit(&finished, 1, memory_order_release);
    gort__futex_wake(&finished, 64);
}

/* A profile nobody will ask gort_cpuprofile_stop about (written at exit or
 * on SIGTERM/SIGINT) reports its failure here; no file was left. */
static void say_not_written(int err)
{
    if (err >= 0)
        return;
    char msg[512];
    snprintf(msg, sizeof msg, "gort: the CPU profile could not be written whole (%s)%s%.300s%s\n", strerror(-err),
             prof_file.direct ? "" : "; ", prof_file.direct ? "" : prof_file.path,
             prof_file.direct ? "" : " not written");
    gort__write_str(2, msg);
}

static void *writer_main(void *arg)
{
    (void)arg;
    atomic_store(&writer_tid, (pid_t)syscall(SYS_gettid));
    int64_t wait = DRAIN_MS * 1000000LL, most = period_ns * (RING / 4);
    for (;;) {
        uint32_t w = atomic_load_explicit(&wake_word, memory_order_acquire);
        uint32_t req = atomic_load(&requests);
        if (req)
            break;
        gort__futex_wait(&wake_word, w, wait);
        drained = 0;
        drain_all(false);
        atomic_fetch_add(&writer_rounds, 1);
        gort__cfi_warm();
        if (drained)
            wait = DRAIN_MS * 1000000LL;
        else if (wait < most)
            wait = wait * 2 < most ? wait * 2 : most;
    }
    uint32_t req = atomic_load(&requests);
    finish((req & REQ_FATAL) != 0);
    if (req & REQ_SIGNAL) {
        say_not_written(write_err);
        /* GORT_CPUPROFILE and SIGTERM/SIGINT: now die of it, as the
         * program would have without us. */
        int sig = atomic_load(&exit_signal);
        signal(sig, SIG_DFL);
        kill(getpid(), sig);
    }
    return NULL;
}

static void request(uint32_t r)
{
    atomic_fetch_or(&requests, r);
    atomic_fetch_add_explicit(&wake_word, 1, memory_order_release);
    gort__futex_wake(&wake_word, 1);
}

/* ------------------------------------------------------------------ */
/* Public API                                                           */
/* ------------------------------------------------------------------ */

static void arm_all(gort_m_t *m) { arm(m); }

/* The kernel may refuse CPU timers (RLIMIT_SIGPENDING, seccomp): say so
 * before anything starts rather than run a profile that never samples. */
static int probe_timer(void)
{
    timer_t probe;
    struct sigevent sev = {.sigev_notify = SIGEV_NONE};
    if (timer_create(CLOCK_THREAD_CPUTIME_ID, &sev, &probe) != 0)
        return -errno;
    timer_delete(probe);
    return 0;
}

/* Starts a session writing to prof_file, which the caller has opened; the
 * session commits (closes) it when the profile is written, or this does on
 * failure. */
static int start_session_locked(int hz)
{
    int fd = prof_file.fd;
    if (hz <= 0)
        hz = 100;
    if (hz > 100000)
        hz = 100000;
    gort__symtab_init();
    gort__unwind_init();
    prof_fd = fd;
    period_ns = 1000000000LL / hz;
    start_mono = mono_ns();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    start_wall = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    atomic_store(&requests, 0);
    atomic_store(&finished, 0);
    atomic_store(&lost_writer, 0);
    /* Drop counts of an earlier session. */
    gort__lock(&gort__sched.allm_lock);
    for (gort_m_t *m = gort__sched.allm; m; m = m->alllink) {
        mprof_t *mp = mprof_of(m);
        if (mp) {
            atomic_store(&mp->dropped, 0);
            /* Samples a previous session left behind (late signals). */
            sample_t *ring = mp->ring;
            uint64_t h = atomic_load_explicit(&mp->head, memory_order_acquire);
            for (uint64_t t = atomic_load(&mp->tail); ring && t != h; t++)
                gort__labels_unref(ring[t & (RING - 1)].labels);
            atomic_store(&mp->tail, h);
        }
    }
    gort__unlock(&gort__sched.allm_lock);
    atomic_fetch_add(&prof_gen, 1);
    atomic_store(&prof_on, 1);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 8u << 20);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(&writer, &attr, writer_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (err != 0) {
        atomic_store(&prof_on, 0);
        (void)gort__wfile_commit(&prof_file, -err);
        prof_fd = -1;
        return -err;
    }
    while (!atomic_load(&writer_tid))
        sched_yield();
    for_all_m(arm_all);
    return 0;
}

static int start_locked(const char *path, int hz)
{
    if (atomic_load(&prof_on) || writer_tid)
        return -EBUSY;
    if (!path || !*path)
        return -EINVAL;
    int err = probe_timer();
    if (err < 0)
        return err;
    err = gort__wfile_open(&prof_file, path);
    if (err < 0)
        return err;
    return start_session_locked(hz);
}

/* Takes fd (a memfd of the debug endpoint): written in place. */
static int start_fd_locked(int fd, int hz)
{
    int err = (atomic_load(&prof_on) || writer_tid) ? -EBUSY : probe_timer();
    if (err < 0) {
        close(fd);
        return err;
    }
    prof_file = (gort_wfile_t){.fd = fd, .direct = true};
    return start_session_locked(hz);
}

int gort__cpuprofile_start_fd(int fd, int hz)
{
    gort__start();
    int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (own < 0)
        return -errno;
    pthread_mutex_lock(&api_lock);
    int r = start_fd_locked(own, hz);
    pthread_mutex_unlock(&api_lock);
    return r;
}

int gort_cpuprofile_start(const char *path, int hz)
{
    gort__fork_check();
    gort__start();
    pthread_mutex_lock(&api_lock);
    int r = start_locked(path, hz);
    pthread_mutex_unlock(&api_lock);
    return r;
}

static int stop_locked(void)
{
    if (!atomic_load(&prof_on) || !writer_tid)
        return -EINVAL;
    request(REQ_STOP);
    pthread_join(writer, NULL);
    atomic_store(&writer_tid, 0);
    return write_err;
}

int gort_cpuprofile_stop(void)
{
    gort__fork_check();
    /* Writing the profile takes a while (symbolization): tell the runtime
     * this goroutine is blocked, so that its P goes to other work now and
     * the goroutine comes back through the syscall exit path. */
    bool g = gort__getg() != NULL;
    if (g)
        gort_syscall_enter();
    pthread_mutex_lock(&api_lock);
    int r = stop_locked();
    pthread_mutex_unlock(&api_lock);
    if (g)
        gort_syscall_exit();
    return r;
}

/* ------------------------------------------------------------------ */
/* Runtime hooks                                                        */
/* ------------------------------------------------------------------ */

void gort__prof_at_exit(void)
{
    if (atomic_load(&prof_on) && pthread_mutex_trylock(&api_lock) == 0) {
        int r = stop_locked();
        if (r != -EINVAL) /* no writer: nothing was started */
            say_not_written(r);
        pthread_mutex_unlock(&api_lock);
    }
}

/* A fatal error is about to end the process: have the writer finish,
 * waiting at most FATAL_WAIT_MS.  Async-signal-safe (the crash handler
 * calls it): atomics, futex and nanosleep only. */
void gort__prof_before_fatal(void)
{
    pid_t wt = atomic_load(&writer_tid);
    if (!atomic_load(&prof_on) || !wt || wt == (pid_t)syscall(SYS_gettid))
        return;
    request(REQ_FATAL);
    int64_t deadline = mono_ns() + FATAL_WAIT_MS * 1000000LL;
    while (!atomic_load_explicit(&finished, memory_order_acquire)) {
        int64_t left = deadline - mono_ns();
        if (left <= 0)
            return;
        gort__futex_wait(&finished, 0, left < 10000000 ? left : 10000000);
    }
}

static void term_handler(int sig, siginfo_t *info, void *uctx)
{
    (void)info;
    (void)uctx;
    if (atomic_load(&prof_on) && atomic_load(&writer_tid)) {
        atomic_store(&exit_signal, sig);
        request(REQ_SIGNAL);
        return;
    }
    signal(sig, SIG_DFL);
    kill(getpid(), sig);
}

/* GORT_CPUPROFILE=path[,hz] */
static void env_start(void)
{
    const char *e = getenv("GORT_CPUPROFILE");
    if (!e || !*e)
        return;
    char path[4096];
    snprintf(path, sizeof path, "%s", e);
    int hz = 100;
    char *comma = strrchr(path, ',');
    if (comma) {
        char *end;
        long v = strtol(comma + 1, &end, 10);
        if (*end == 0 && end != comma + 1) {
            *comma = 0;
            hz = (int)v;
        }
    }
    /* Called at start-up (prof/start.c): gort_cpuprofile_start would re-enter it. */
    pthread_mutex_lock(&api_lock);
    int r = start_locked(path, hz);
    pthread_mutex_unlock(&api_lock);
    if (r < 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "gort: GORT_CPUPROFILE: cannot profile to %.100s: %.40s\n", path, strerror(-r));
        gort__write_str(2, msg);
        return;
    }
    static const int sigs[] = {SIGINT, SIGTERM};
    for (int i = 0; i < 2; i++) {
        int sig = sigs[i];
        struct sigaction old;
        if (sigaction(sig, NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL)
            gort__signal_install(sig, term_handler, 0);
    }
}

void gort__prof_init(void)
{
    gort__signal_install(SIGPROF, sigprof_handler, 0);
    env_start();
}
