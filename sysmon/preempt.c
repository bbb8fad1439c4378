/*
 * preempt.c: asynchronous preemption through SIGURG (or
 * GORT_PREEMPT_SIGNAL).
 *
 * sysmon asks an M to give up its goroutine by setting g->preempt and
 * sending SIGURG, at most one signal in flight per M (m->preempt_pending,
 * compare-and-swap, as Go does since #37741).  Any switch of the goroutine
 * serves the request; runtime calls also check g->preempt and yield
 * cooperatively.  sysmon never signals an M that is in a system call or
 * whose thread is not using CPU: slow calls such as nanosleep, poll and
 * epoll_wait fail with EINTR even under SA_RESTART, and Go's users met
 * exactly that (#38033, #36644).
 *
 * The handler may switch goroutines only at a safe point:
 *   - the M runs a goroutine's user code: g is RUNNING, m->locks == 0 (no
 *     runtime lock, no no-preempt section), g->inrt == 0 (not inside a
 *     runtime call), and the interrupted stack pointer lies in the
 *     goroutine's stack with room for the save area;
 *   - no frame of the interrupted stack lies in
 *     the runtime itself or in code that pcclass.c judges unsafe (libc,
 *     the dynamic loader, libunwind, libdw/libelf and their decompressors,
 *     libgcc_s, the C++ runtimes, the allocators with per-thread caches
 *     (jemalloc, tcmalloc, mimalloc), sanitizer runtimes, any module named
 *     in GORT_PREEMPT_UNSAFE, and unknown code); functions marked
 *     GORT_NOPREEMPT (nopreempt.c finds them) count like libc.  A
 *     goroutine in malloc or printf therefore never moves while it holds
 *     their locks.  docs/runtime.md ("Where preemption is refused") is the
 *     one description of the list;
 *   - the goroutine holds no C lock and is in no gort_preempt_off region
 *     (runtime/locks_interpose.c).
 * Where it is not safe the handler does nothing and sysmon asks again a
 * little later; nothing waits, so nothing can deadlock.
 *
 * At a safe point the handler does not switch on the signal stack (Go's
 * runtime/preempt.go explains why not: the handler's own frame and the
 * kernel's signal frame would be stuck there).  It rewrites the
 * interrupted context so that, on return from the signal, the goroutine
 * calls gort__async_preempt (preempt_amd64.S), which saves every register
 * and the whole XSAVE state on the goroutine's stack below the red zone and
 * yields like an ordinary call.
 *
 * Module ranges are classified (pcclass.c) once at start-up and again by
 * sysmon when the handler meets a PC it cannot place (a library dlopen'ed
 * later); the handler only reads the table (seqlock), so it takes no lock.
 * The stack is walked with the profiler's cached unwind recipes
 * (hooks.preempt_walk, prof/unwind.c and prof/cfi.c): a lock-free hash
 * probe per frame, no system call, and not the loader's lock, which every
 * check of every P took when each walk went through libunwind (it finds
 * unwind tables with dl_iterate_phdr): a world stop signals all Ps at
 * once, and their handlers queued on that one lock.  A PC without a
 * recipe yet is queued for sysmon to compile, and that check alone falls
 * back to libunwind (counted: gort__pstat_check_libunwind).  Residual
 * risk, documented in docs/runtime.md: that fallback takes the loader's
 * (recursive) lock.
 *
 * The signal is SIGURG unless GORT_PREEMPT_SIGNAL names another (a
 * real-time signal, for a program that needs SIGURG itself).  A signal
 * still pending UNANSWERED_NS after it was sent is looked into by its
 * sender (gort__preempt_ask): if the handler is no longer ours, the
 * program replaced it; sysmon says so once on stderr and stops sending.
 * If it is ours and the thread blocks the signal (a library masked it on
 * this M), sysmon backs off from that M instead of asking every round.
 * Rejected: re-installing our handler over the program's (it installed
 * its own for a reason), and reading the mask at every signal (a /proc
 * read; only the rare unanswered signal pays for it).
 *
 * A fully static executable has libc in the executable itself, where no
 * module boundary separates it from user code: async preemption is then
 * off and goroutines yield only at runtime calls.
 */
#include "pcclass.h"
#include "runtime.h"
#include "sysmon.h"

#include <cpuid.h>
#include <errno.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

/* Read by preempt_amd64.S. */
uint64_t gort__xsave_size = 512;
int32_t gort__have_xsave;

/* Cleared at init (static executables, TSan) or by sysmon when the
 * program replaced the handler; relaxed. */
static _Atomic bool async_enabled = true;

_Atomic uint64_t gort__pstat_requested, gort__pstat_signals, gort__pstat_done;
_Atomic uint64_t gort__pstat_unsafe_runtime, gort__pstat_unsafe_frame, gort__pstat_unsafe_nopreempt;
/* Safety checks that walked with libunwind (no recipe walk reached the
 * goroutine's entry), and all checks that walked. */
_Atomic uint64_t gort__pstat_check_libunwind, gort__pstat_check_walks;

/* sysmon (or init): the module table changed; see the file comment on
 * static executables. */
void gort__preempt_refresh_modules(void)
{
    gort__pc_classes_refresh();
    if (!gort__pc_classes_libc_separate())
        atomic_store_explicit(&async_enabled, false, memory_order_relaxed);
}

bool gort__preempt_refresh_wanted(void) { return gort__pc_classes_stale(); }

enum { SAFE = 0, UNSAFE_RUNTIME, UNSAFE_FRAME, UNSAFE_NOPREEMPT, UNSAFE_CLOCK, UNSAFE_MARKED };

#define MAX_UNWIND 512
#define MAX_RECIPE 128

/* The frames a recipe walk found, from the interrupted PC (exact) down to
 * the goroutine's entry function, whose frame is the last. */
static int judge(const uintptr_t *pcs, int n)
{
    for (int i = 0; i < n; i++) {
        int cls = gort__pc_class(i == 0 ? pcs[i] : pcs[i] - 1);
        if (cls == GORT_PC_GORT) {
            if (i > 0 && i == n - 1)
                return SAFE; /* gort__goentry: the whole stack was user code */
            return i == 0 ? UNSAFE_RUNTIME : UNSAFE_FRAME;
        }
        if (cls == GORT_PC_NOPREEMPT)
            return UNSAFE_MARKED;
        if (gort__pc_class_unsafe(cls))
            return UNSAFE_FRAME;
    }
    return SAFE;
}

/* Async-signal-safe: walks the interrupted stack and judges each frame. */
static int frames_safe(ucontext_t *uc, gort_g_t *gp)
{
    atomic_fetch_add_explicit(&gort__pstat_check_walks, 1, memory_order_relaxed);
    if (gort__hooks.preempt_walk) {
        uintptr_t pcs[MAX_RECIPE];
        int n = gort__hooks.preempt_walk(uc, gp->stack.lo, gp->stack.hi, pcs, MAX_RECIPE);
        if (n > 0)
            return judge(pcs, n);
    }
    atomic_fetch_add_explicit(&gort__pstat_check_libunwind, 1, memory_order_relaxed);
    unw_cursor_t cur;
    if (unw_init_local2(&cur, (unw_context_t *)uc, UNW_INIT_SIGNAL_FRAME) < 0)
        return UNSAFE_FRAME;
    for (int i = 0; i < MAX_UNWIND; i++) {
        unw_word_t ip;
        if (unw_get_reg(&cur, UNW_REG_IP, &ip) < 0)
            return UNSAFE_FRAME;
        /* Return addresses point after the call; look the call up. */
        uintptr_t pc = i == 0 ? (uintptr_t)ip : (uintptr_t)ip - 1;
        int cls = gort__pc_class(pc);
        if (cls == GORT_PC_GORT) {
            /* The goroutine's entry frames sit at the bottom of every
             * stack: reaching them means the whole stack was user code. */
            unw_proc_info_t pi;
            if (i > 0 && unw_get_proc_info(&cur, &pi) == 0 &&
                (pi.start_ip == (uintptr_t)gort__goentry || pi.start_ip == (uintptr_t)gort__gstart))
                return SAFE;
            return i == 0 ? UNSAFE_RUNTIME : UNSAFE_FRAME;
        }
        if (cls == GORT_PC_NOPREEMPT)
            return UNSAFE_MARKED;
        if (gort__pc_class_unsafe(cls))
            return UNSAFE_FRAME;
        int r = unw_step(&cur);
        if (r == 0)
            return SAFE;
        if (r < 0)
            return UNSAFE_FRAME;
    }
    return UNSAFE_FRAME; /* too deep to check: try again later */
}

static void count_refusal(int why)
{
    switch (why) {
    case UNSAFE_RUNTIME:
        atomic_fetch_add_explicit(&gort__pstat_unsafe_runtime, 1, memory_order_relaxed);
        break;
    case UNSAFE_NOPREEMPT:
        atomic_fetch_add_explicit(&gort__pstat_unsafe_nopreempt, 1, memory_order_relaxed);
        break;
    case UNSAFE_CLOCK:
        atomic_fetch_add_explicit(&gort__pstat_refused_lock, 1, memory_order_relaxed);
        break;
    case UNSAFE_MARKED:
        atomic_fetch_add_explicit(&gort__pstat_refused_marked, 1, memory_order_relaxed);
        break;
    default:
        atomic_fetch_add_explicit(&gort__pstat_unsafe_frame, 1, memory_order_relaxed);
        break;
    }
}

/* Async-signal-safe. */
static void try_preempt(gort_m_t *m, ucontext_t *uc)
{
    gort_g_t *gp = m->curg;
    if (!gp || atomic_load_explicit(&gp->status, memory_order_acquire) != G_RUNNING ||
        !atomic_load_explicit(&gp->preempt, memory_order_relaxed))
        return;
    if (atomic_load_explicit(&m->locks, memory_order_relaxed) != 0) {
        count_refusal(UNSAFE_NOPREEMPT);
        return;
    }
    if (gort__g_pinned(gp)) {
        count_refusal(atomic_load_explicit(&gp->clocks, memory_order_relaxed) ? UNSAFE_CLOCK : UNSAFE_MARKED);
        return;
    }
    /* Without a P only a goroutine whose P sysmon revoked may be moved. */
    if (gp->inrt != 0 || (!m->p && atomic_load_explicit(&m->pstate, memory_order_acquire) != 2)) {
        count_refusal(UNSAFE_RUNTIME);
        return;
    }
    uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    /* Room for the gap, 16 registers and the XSAVE area, plus the frames
     * the scheduler call needs, above the guard. */
    uintptr_t need = GORT_REDZONE + 8 + 16 * 8 + gort__xsave_size + 64 + 2048;
    if (sp > gp->stack.hi || sp < gp->stack.lo + need) {
        count_refusal(UNSAFE_RUNTIME);
        return;
    }
    int why = gort__pc_class(pc) == GORT_PC_GORT ? UNSAFE_RUNTIME : frames_safe(uc, gp);
    if (why != SAFE) {
        count_refusal(why);
        return;
    }
    uintptr_t s = sp - GORT_REDZONE - 8;
    *(uintptr_t *)s = pc;
    uc->uc_mcontext.gregs[REG_RSP] = (greg_t)s;
    uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)gort__async_preempt;
}

static void sigurg_handler(int sig, siginfo_t *info, void *uctx)
{
    int saved_errno = errno;
    gort_m_t *m = gort__getm();
    if (!m) {
        gort__signal_forward(sig, info, uctx);
        errno = saved_errno;
        return;
    }
    bool captured = false;
    if (atomic_load_explicit(&m->capture_req, memory_order_acquire) && gort__hooks.sigurg_capture) {
        gort__hooks.sigurg_capture(m, uctx);
        captured = true;
    }
    if (!atomic_exchange_explicit(&m->preempt_pending, 0, memory_order_acq_rel)) {
        /* Not a preemption: a stack capture, or the application's own
         * SIGURG (out-of-band data, or raised by hand), which goes to the
         * handler it installed. */
        if (!captured)
            gort__signal_forward(sig, info, uctx);
        errno = saved_errno;
        return;
    }
    try_preempt(m, uctx);
    errno = saved_errno;
}

/* Called by the trampoline, on the goroutine's stack, with its state
 * saved. */
void gort__async_preempt2(void)
{
    atomic_fetch_add_explicit(&gort__pstat_done, 1, memory_order_relaxed);
    /* errno travels with the goroutine: the code we interrupted may be
     * about to read it, and we may resume on another thread.  glibc
     * declares __errno_location const, so the compiler could reuse the
     * old thread's address after the switch: call it through a volatile
     * pointer each time. */
    int *(*volatile errno_loc)(void) = __errno_location;
    int saved = *errno_loc();
    /* Enter the runtime the way every API call does: sysmon may be
     * revoking this M's P right now (the handler saw a P and user code,
     * and so did sysmon's re-check).  rt_enter waits for its decision and,
     * if the P is gone, takes the syscall-exit path to get one; without
     * it the yield below ran the scheduler on a P that sysmon handed to
     * another M (the soak's "acquirep: already in use"). */
    gort_g_t *gp = gort__rt_enter();
    gort__preempt_park();
    gort__rt_leave(gp);
    *errno_loc() = saved;
}

static bool handler_is_ours(void)
{
    struct sigaction sa;
    if (sigaction(gort__settings.preempt_sig, NULL, &sa) != 0)
        return true;
    return (sa.sa_flags & SA_SIGINFO) && sa.sa_sigaction == sigurg_handler;
}

/* Whether thread tid blocks sig (/proc/self/task/TID/status, SigBlk). */
static bool thread_blocks(pid_t tid, int sig)
{
    char path[64], line[128];
    snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
    FILE *f = fopen(path, "re");
    bool blocked = false;
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "SigBlk:", 7) == 0) {
            unsigned long long mask = strtoull(line + 7, NULL, 16);
            blocked = (mask >> (sig - 1)) & 1;
            break;
        }
    }
    if (f)
        fclose(f);
    return blocked;
}

static _Atomic bool replaced_said;

/* m's signal has been pending for UNANSWERED_NS.  If the handler is no
 * longer ours, the program (or a library) replaced it: say so once and stop
 * sending.  If it is ours, either the thread waits for a CPU (it will take
 * the signal) or it blocks the signal (it will not until it unblocks):
 * returns true in the second case, so that sysmon skips the M for a while
 * instead of asking every round.  Not in a signal handler. */
static bool unanswered(gort_m_t *m, int64_t now)
{
    atomic_store_explicit(&m->preempt_sent, now, memory_order_relaxed);
    if (!handler_is_ours()) {
        atomic_store_explicit(&async_enabled, false, memory_order_relaxed);
        if (!atomic_exchange(&replaced_said, true)) {
            char msg[160];
            const char *name = gort__settings.preempt_sig == SIGURG ? "SIGURG" : "preemption signal";
            snprintf(msg, sizeof msg,
                     "gort: the %s handler was replaced; goroutines can no longer be preempted "
                     "(GORT_PREEMPT_SIGNAL selects another signal)\n",
                     name);
            gort__write_str(2, msg);
        }
        return true;
    }
    return m->tid && thread_blocks(m->tid, gort__settings.preempt_sig);
}

/* A signal unanswered this long is looked into (unanswered above), and
 * then again no sooner than this: a /proc read and a sigaction per M every
 * few milliseconds at most, and only while signals go unanswered. */
#define UNANSWERED_NS (5 * 1000 * 1000)

/* Asks m to preempt its goroutine.  The caller has set g->preempt and
 * checked that m is burning CPU in user code (not in a system call).
 * At most one signal is in flight per M. */
bool gort__preempt_ask(gort_m_t *m)
{
    if (!atomic_load_explicit(&async_enabled, memory_order_relaxed) || gort__settings.asyncpreemptoff)
        return false;
    int64_t now = gort__nanotime();
    uint32_t zero = 0;
    if (!atomic_compare_exchange_strong(&m->preempt_pending, &zero, 1)) {
        /* One in flight already: coalesce, unless it went unanswered. */
        if (now - atomic_load_explicit(&m->preempt_sent, memory_order_relaxed) < UNANSWERED_NS)
            return true;
        return !unanswered(m, now);
    }
    atomic_store_explicit(&m->preempt_sent, now, memory_order_relaxed);
    atomic_fetch_add_explicit(&gort__pstat_signals, 1, memory_order_relaxed);
    if (pthread_kill(m->thread, gort__settings.preempt_sig) != 0)
        atomic_store(&m->preempt_pending, 0);
    return true;
}

void gort__preempt_m(gort_m_t *m) { (void)gort__preempt_ask(m); }

static void xsave_init(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return;
    bool xsave = (c & (1u << 26)) && (c & (1u << 27)); /* XSAVE and OSXSAVE */
    if (!xsave)
        return;
    __cpuid_count(0xd, 0, a, b, c, d);
    if (b < 576)
        return;
    gort__xsave_size = b;
    gort__have_xsave = 1;
}

void gort__preempt_init(void)
{
    xsave_init();
    gort__unwind_init();
    gort__pc_classes_init();
    gort__preempt_refresh_modules();
#if defined(GORT_TSAN)
    /* TSan runs an asynchronous signal's handler only at the thread's next
     * intercepted call, so a loop without calls is never interrupted, and
     * a handler that does run sits inside an interceptor, where switching
     * goroutines would carry TSan's per-thread state to another thread.
     * A TSan build preempts only at runtime calls (docs/reliability.md). */
    atomic_store_explicit(&async_enabled, false, memory_order_relaxed);
#endif
    gort__signal_install(gort__settings.preempt_sig, sigurg_handler, 0);
}

static pthread_once_t unwind_once = PTHREAD_ONCE_INIT;

static void unwind_init_once(void) { unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_NONE); }

void gort__unwind_init(void) { pthread_once(&unwind_once, unwind_init_once); }
