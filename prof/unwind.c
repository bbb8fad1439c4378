/*
 * unwind.c: walking goroutine stacks with libunwind.
 *
 * Three starting points:
 *   - a signal context (a crash, a capture, a profiling tick): libunwind's
 *     unw_init_local2 with UNW_INIT_SIGNAL_FRAME, so the first PC is taken
 *     as exact rather than as a return address;
 *   - a parked goroutine: the registers gort__mcall saved (pc, sp, rbp,
 *     rbx, r12-r15) are written over a context from unw_getcontext, and
 *     unwinding starts there as if gort__mcall had just returned;
 *   - a goroutine in a system call: the caller of gort_syscall_enter, from
 *     the pc/sp/fp it recorded.  Only rbp of the callee-saved registers is
 *     known there; frames whose CFA depends on another one would stop the
 *     walk early, which compiled C does not do.
 * Every walk ends at gort__gstart (its CFI marks the return address
 * undefined, and we stop one frame before it anyway).
 *
 * Running goroutines on other threads are asked for their stack: the
 * requester sets m->capture_req and sends SIGURG with tgkill; the SIGURG
 * handler (sysmon/preempt.c, or a test's) calls gort__sigurg_capture
 * first thing, which unwinds the interrupted context into the M's
 * capture buffer and publishes it by bumping seq with a release store.
 * The buffer is allocated (mmap) by the first requester and never freed.
 * Signalling is never used on a thread in a system call: dumps take those
 * from their syscall registers (a signal would make the call fail with
 * EINTR).
 *
 * Caching policy: UNW_CACHE_NONE (set by gort__unwind_init, in
 * sysmon/preempt.c, the lowest layer that unwinds).  The libunwind we build against has no
 * per-thread cache (PER_THREAD silently becomes the global one), and the
 * global cache's lock is held across its dl_iterate_phdr: a handler on a
 * thread stopped inside a dl_iterate_phdr callback (holding the loader
 * lock) then waits for the cache lock while its holder waits for the
 * loader lock (tests/preempt_test.c, preempt_in_phdr_callback, hung 5 runs
 * in 5).  Without the cache each libunwind step re-parses the CFI; recipes
 * (cfi.c) do the bulk of every walk, so it costs little.
 * dl_iterate_phdr itself is not async-signal-safe either: a thread stopped
 * inside libc's lock or unlock of the loader lock would wait for itself.
 * gort__unwind_sigctx therefore uses no libunwind when the interrupted PC
 * is in libc or the loader (sysmon/preempt.c classifies PCs; its
 * preemption check stops at such a PC before unwinding).
 *
 * Rejected: frame-pointer walking (fast, but user code built without frame
 * pointers would end the walk at its first frame); backtrace(3) (cannot
 * start from another context, and its first call dlopens libgcc_s).
 */
#define UNW_LOCAL_ONLY
#include "unwind.h"

#include "cfi.h"

#include <errno.h>
#include <libunwind.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

/* gort__gstart is 12 bytes (xor, mov, call, ud2); a PC inside it is the
 * return address of its call to gort__goentry.  Stop there. */
static inline bool at_goroutine_start(uintptr_t ip)
{
    uintptr_t s = (uintptr_t)gort__gstart;
    return ip >= s && ip < s + 16;
}

/* ---------------------------------------------------------------- */
/* libunwind: the general path                                       */
/* ---------------------------------------------------------------- */

/* Async-signal-safe. */
static int lu_walk(unw_cursor_t *cur, uintptr_t *pcs, int max, int skip)
{
    int n = 0;
    for (int guard = 0; n < max && guard < max + skip + 64; guard++) {
        unw_word_t ip = 0;
        if (unw_get_reg(cur, UNW_REG_IP, &ip) < 0 || ip == 0)
            break;
        if (at_goroutine_start((uintptr_t)ip))
            break;
        if (skip > 0)
            skip--;
        else
            pcs[n++] = (uintptr_t)ip;
        if (unw_step(cur) <= 0)
            break;
    }
    return n;
}

/* Registers as a walk knows them; bit i of known is CR_i. */
typedef struct uregs {
    uintptr_t r[CR_NREGS];
    unsigned known;
} uregs_t;

/* From a register set whose rip is a return address. */
static int lu_walk_regs(const uregs_t *rs, uintptr_t *pcs, int max, int skip)
{
    unw_context_t uc;
    unw_cursor_t cur;
    if (unw_getcontext(&uc) < 0)
        return 0;
    greg_t *g = ((ucontext_t *)&uc)->uc_mcontext.gregs;
    static const int map[CR_NREGS] = {REG_RIP, REG_RSP, REG_RBP, REG_RBX, REG_R12, REG_R13, REG_R14, REG_R15};
    for (int i = 0; i < CR_NREGS; i++)
        g[map[i]] = (rs->known & (1u << i)) ? (greg_t)rs->r[i] : 0;
    if (unw_init_local(&cur, &uc) < 0)
        return 0;
    return lu_walk(&cur, pcs, max, skip);
}

/* ---------------------------------------------------------------- */
/* Recipes: the fast path                                            */
/* ---------------------------------------------------------------- */

/* Async-signal-safe: every load is checked against [lo, hi). */
static bool eval(const gort_cfi_expr_t *e, const uregs_t *rs, uintptr_t cfa, uintptr_t lo, uintptr_t hi,
                 uintptr_t *out)
{
    uintptr_t v;
    if (e->base == CFI_BASE_CONST)
        v = 0;
    else if (e->base == CFI_BASE_CFA)
        v = cfa;
    else if (rs->known & (1u << e->base))
        v = rs->r[(int)e->base];
    else
        return false;
    v += (uintptr_t)(intptr_t)e->off;
    if (e->deref) {
        if (v < lo || v > hi - 8 || (v & 7))
            return false;
        v = *(const uintptr_t *)v + (uintptr_t)(intptr_t)e->off2;
    }
    *out = v;
    return true;
}

static bool apply(const gort_cfi_t *c, const uregs_t *cur, uregs_t *nx, uintptr_t lo, uintptr_t hi)
{
    uintptr_t cfa;
    if (!eval(&c->cfa, cur, 0, lo, hi, &cfa))
        return false;
    nx->known = 0;
    for (int i = 0; i < CR_NREGS; i++) {
        uintptr_t v;
        switch (c->rule[i]) {
        case CFI_SAME:
            if (cur->known & (1u << i)) {
                nx->r[i] = cur->r[i];
                nx->known |= 1u << i;
            }
            continue;
        case CFI_UNDEF:
            continue;
        case CFI_VAL:
            if (!eval(&c->e[i], cur, cfa, lo, hi, &v))
                continue;
            break;
        default: /* CFI_AT */
            if (!eval(&c->e[i], cur, cfa, lo, hi, &v) || v < lo || v > hi - 8 || (v & 7))
                continue;
            v = *(const uintptr_t *)v;
            break;
        }
        nx->r[i] = v;
        nx->known |= 1u << i;
    }
    const unsigned need = (1u << CR_RIP) | (1u << CR_RSP);
    return (nx->known & need) == need;
}

/* Walks with recipes while they last, every load inside [lo, hi).
 * Returns the frames written; *fallback says libunwind must continue from
 * *rs (whose rip is exact only if *exact).  Async-signal-safe unless
 * compute. */
static int fast_walk(uregs_t *rs, bool *exact, uintptr_t lo, uintptr_t hi, uintptr_t *pcs, int max, int *skip,
                     bool compute, bool *fallback)
{
    int n = 0;
    *fallback = false;
    for (int guard = 0; n < max && guard < max + *skip + 64; guard++) {
        uintptr_t pc = rs->r[CR_RIP];
        if (!(rs->known & (1u << CR_RIP)) || pc == 0 || at_goroutine_start(pc))
            return n;
        const gort_cfi_t *c = gort__cfi_find(*exact ? pc : pc - 1, compute);
        if (!c || c->kind == GORT_CFI_NONE) {
            *fallback = true;
            return n;
        }
        uregs_t nx;
        if (c->kind == GORT_CFI_OK && c->fast && (rs->known & (1u << c->fast_base))) {
            uintptr_t cfa = rs->r[c->fast_base] + (uintptr_t)(intptr_t)c->cfa_off;
            uintptr_t ra = cfa + (uintptr_t)(intptr_t)c->ra_off, bp = cfa + (uintptr_t)(intptr_t)c->bp_off;
            if (ra < lo || ra > hi - 8 || (ra & 7) || (c->bp_saved && (bp < lo || bp > hi - 8 || (bp & 7)))) {
                *fallback = true;
                return n;
            }
            nx.r[CR_RIP] = *(const uintptr_t *)ra;
            nx.r[CR_RSP] = cfa;
            nx.known = (1u << CR_RIP) | (1u << CR_RSP);
            if (c->bp_saved) {
                nx.r[CR_RBP] = *(const uintptr_t *)bp;
                nx.known |= 1u << CR_RBP;
            } else if (rs->known & (1u << CR_RBP)) {
                nx.r[CR_RBP] = rs->r[CR_RBP];
                nx.known |= 1u << CR_RBP;
            }
        } else if (c->kind == GORT_CFI_OK && !apply(c, rs, &nx, lo, hi)) {
            *fallback = true;
            return n;
        }
        if (*skip > 0)
            (*skip)--;
        else
            pcs[n++] = pc;
        if (c->kind == GORT_CFI_END || nx.r[CR_RSP] <= rs->r[CR_RSP])
            return n; /* outermost, or no progress: a corrupt stack */
        *rs = nx;
        *exact = false;
    }
    return n;
}

/* Recipes alone, from a signal context (exact first PC). */
static int recipe_walk_only(uregs_t *rs, uintptr_t lo, uintptr_t hi, uintptr_t *pcs, int max)
{
    bool exact = true, fallback;
    int skip = 0;
    return fast_walk(rs, &exact, lo, hi, pcs, max, &skip, false, &fallback);
}

/* Recipes, then libunwind from wherever they stopped.  uctx: the signal
 * context rs came from, used if the fallback is at the first frame. */
static int walk_regs(uregs_t *rs, bool exact, uintptr_t lo, uintptr_t hi, void *uctx, uintptr_t *pcs, int max,
                     int skip, bool compute)
{
    bool fallback = false;
    bool at_start = true;
    int n = 0;
    if (lo < hi) {
        uregs_t start = *rs;
        n = fast_walk(rs, &exact, lo, hi, pcs, max, &skip, compute, &fallback);
        at_start = !memcmp(&start, rs, sizeof start);
        if (!fallback)
            return n;
    }
    if (n >= max)
        return n;
    if (at_start && uctx) {
        unw_cursor_t cur;
        if (unw_init_local2(&cur, (unw_context_t *)uctx, UNW_INIT_SIGNAL_FRAME) < 0)
            return n;
        return n + lu_walk(&cur, pcs + n, max - n, skip);
    }
    return n + lu_walk_regs(rs, pcs + n, max - n, skip);
}

/* Bounds of the stack sp is on, if it is one the runtime knows: the
 * current goroutine's or the M's scheduler stack. */
static bool known_stack(uintptr_t sp, uintptr_t *lo, uintptr_t *hi)
{
    gort_m_t *m = gort__getm();
    if (!m)
        return false;
    gort_g_t *gp = m->curg;
    if (gp && gp->stack.lo && sp >= gp->stack.lo && sp < gp->stack.hi) {
        *lo = gp->stack.lo;
        *hi = gp->stack.hi;
        return true;
    }
    if (m->g0lo && sp >= m->g0lo && sp < m->g0hi) {
        *lo = m->g0lo;
        *hi = m->g0hi;
        return true;
    }
    return false;
}

/* A goroutine whose frame ran past its stack (a large local array; the
 * fault comes later, in whatever code writes to it: prof/crash.c): its
 * frames lie between the stray sp and the stack's top. */
static bool overflowed_stack(uintptr_t sp, uintptr_t *lo, uintptr_t *hi)
{
    gort_m_t *m = gort__getm();
    gort_g_t *gp = m ? m->curg : NULL;
    if (!gp || !gp->stack.lo || sp >= gp->stack.lo || gp->stack.lo - sp > (64u << 20) ||
        (m->g0lo && sp >= m->g0lo && sp < m->g0top))
        return false;
    *lo = sp;
    *hi = gp->stack.hi;
    return true;
}

static bool may_compute(void) { return atomic_load_explicit(&gort__panicking, memory_order_relaxed) == 0; }


int gort__unwind_sigctx(void *uctx, uintptr_t *pcs, int max)
{
    if (!uctx || max <= 0)
        return 0;
    const greg_t *g = ((ucontext_t *)uctx)->uc_mcontext.gregs;
    uregs_t rs = {{(uintptr_t)g[REG_RIP], (uintptr_t)g[REG_RSP], (uintptr_t)g[REG_RBP], (uintptr_t)g[REG_RBX],
                   (uintptr_t)g[REG_R12], (uintptr_t)g[REG_R13], (uintptr_t)g[REG_R14], (uintptr_t)g[REG_R15]},
                  (1u << CR_NREGS) - 1};
    uintptr_t lo = 0, hi = 0;
    bool overflow = !known_stack(rs.r[CR_RSP], &lo, &hi) && overflowed_stack(rs.r[CR_RSP], &lo, &hi);
    /* libunwind finds unwind tables with dl_iterate_phdr, whose loader
     * lock is recursive but not async-signal-safe: a thread stopped inside
     * libc's lock or unlock of it (owner not yet or no longer set) blocks
     * for ever on its own lock.  So no libunwind when the interrupted PC
     * is in libc or the loader: recipes only, and a miss ends the walk
     * (the PC is queued, so later samples there are whole).  Except for a
     * stack overflow: a synchronous fault (libc's memset writing into the
     * guard page), not a thread stopped at a random point. */
    if (gort__pc_is_unsafe(rs.r[CR_RIP]) && !overflow) {
        int n = lo < hi ? recipe_walk_only(&rs, lo, hi, pcs, max) : 0;
        if (n == 0)
            pcs[n++] = (uintptr_t)g[REG_RIP];
        return n;
    }
    return walk_regs(&rs, true, lo, hi, uctx, pcs, max, 0, false);
}

/* hooks.preempt_walk: the preemption check's walk (sysmon/preempt.c), in
 * the SIGURG handler.  Recipes only: no libunwind, so no loader lock and
 * no global cache lock on any check.  The frames from the interrupted PC
 * (exact) down to the goroutine's entry function; -1 if the recipes do
 * not reach it (a PC not compiled yet is queued, and sysmon's tick warms
 * it: the next check gets through).  Async-signal-safe. */
int gort__unwind_preempt(void *uctx, uintptr_t lo, uintptr_t hi, uintptr_t *pcs, int max)
{
    const greg_t *g = ((ucontext_t *)uctx)->uc_mcontext.gregs;
    uregs_t rs = {{(uintptr_t)g[REG_RIP], (uintptr_t)g[REG_RSP], (uintptr_t)g[REG_RBP], (uintptr_t)g[REG_RBX],
                   (uintptr_t)g[REG_R12], (uintptr_t)g[REG_R13], (uintptr_t)g[REG_R14], (uintptr_t)g[REG_R15]},
                  (1u << CR_NREGS) - 1};
    bool exact = true, fallback;
    int skip = 0;
    int n = fast_walk(&rs, &exact, lo, hi, pcs, max, &skip, false, &fallback);
    if (fallback || n >= max || !(rs.known & (1u << CR_RIP)) || !at_goroutine_start(rs.r[CR_RIP]))
        return -1;
    return n;
}

__attribute__((noinline)) int gort__unwind_self(uintptr_t *pcs, int max, int skip)
{
    if (max <= 0)
        return 0;
    /* libgort keeps frame pointers: our caller's registers are known. */
    uintptr_t *fp = __builtin_frame_address(0);
    uregs_t rs = {{0}, (1u << CR_RIP) | (1u << CR_RSP) | (1u << CR_RBP)};
    rs.r[CR_RIP] = (uintptr_t)__builtin_return_address(0);
    rs.r[CR_RSP] = (uintptr_t)(fp + 2);
    rs.r[CR_RBP] = fp[0];
    uintptr_t lo = 0, hi = 0;
    int n;
    if (known_stack(rs.r[CR_RSP], &lo, &hi)) {
        n = walk_regs(&rs, false, lo, hi, NULL, pcs, max, skip, may_compute());
    } else {
        unw_context_t uc;
        unw_cursor_t cur;
        if (unw_getcontext(&uc) < 0 || unw_init_local(&cur, &uc) < 0)
            return 0;
        n = lu_walk(&cur, pcs, max, skip + 1); /* the first IP is inside this function */
    }
    __asm__ volatile("" ::: "memory"); /* keep this frame: no tail call */
    return n;
}

/* What must not change while a parked goroutine's stack is read. */
typedef struct gsnap {
    uint32_t status;
    void *sp;
    uintptr_t syscallsp, syscallpc;
    int64_t since;
    uintptr_t stacklo;
} gsnap_t;

static void gsnap_take(gort_g_t *gp, gsnap_t *s)
{
    memset(s, 0, sizeof *s); /* padding too: snapshots are compared whole */
    s->status = atomic_load_explicit(&gp->status, memory_order_acquire);
    s->sp = __atomic_load_n(&gp->ctx.sp, __ATOMIC_RELAXED);
    s->syscallsp = __atomic_load_n(&gp->syscallsp, __ATOMIC_RELAXED);
    s->syscallpc = __atomic_load_n(&gp->syscallpc, __ATOMIC_RELAXED);
    s->since = __atomic_load_n(s->status == G_SYSCALL ? &gp->syscallwhen : &gp->waitsince, __ATOMIC_RELAXED);
    s->stacklo = __atomic_load_n(&gp->stack.lo, __ATOMIC_RELAXED);
}

int gort__unwind_g(gort_g_t *gp, uintptr_t *pcs, int max)
{
    for (int attempt = 0; attempt < 4; attempt++) {
        gsnap_t a, b;
        gsnap_take(gp, &a);
        uintptr_t lo = a.stacklo, hi = __atomic_load_n(&gp->stack.hi, __ATOMIC_RELAXED);
        gort_regsave_view_t r;
        switch (a.status) {
        case G_RUNNING:
            return -1;
        case G_DEAD:
        case G_IDLE:
            return 0;
        case G_SYSCALL:
            if (a.syscallsp < lo || a.syscallsp >= hi)
                goto changed;
            memset(&r, 0, sizeof r);
            r.pc = a.syscallpc;
            r.sp = a.syscallsp;
            r.fp = __atomic_load_n(&gp->syscallfp, __ATOMIC_RELAXED);
            break;
        default:
            if (lo == 0)
                return 0; /* never ran */
            if ((uintptr_t)a.sp < lo || (uintptr_t)a.sp + GORT_REGSAVE_FRAME_SIZE > hi)
                goto changed;
            {
                gort_regsave_t c = {a.sp};
                gort__regsave_view(&c, &r);
            }
            if (r.pc == (uintptr_t)gort__gstart)
                return 0; /* laid out but never entered */
            break;
        }
        uregs_t rs = {{r.pc, r.sp, r.fp, r.rbx, r.r12, r.r13, r.r14, r.r15}, (1u << CR_NREGS) - 1};
        if (a.status == G_SYSCALL)
            rs.known = (1u << CR_RIP) | (1u << CR_RSP) | (1u << CR_RBP);
        int n = walk_regs(&rs, false, lo, hi, NULL, pcs, max, 0, may_compute());
        atomic_thread_fence(memory_order_acquire);
        gsnap_take(gp, &b);
        if (!memcmp(&a, &b, sizeof a))
            return n;
    changed:
        gort__cpu_relax();
    }
    return -2;
}

/* ---------------------------------------------------------------- */
/* Running goroutines                                                */
/* ---------------------------------------------------------------- */

bool gort__capture_possible(void)
{
    struct sigaction sa;
    if (sigaction(gort__settings.preempt_sig, NULL, &sa) != 0)
        return false;
    if (sa.sa_flags & SA_SIGINFO)
        return sa.sa_sigaction != NULL;
    return sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN;
}

/* Async-signal-safe: runs in the SIGURG handler of m's own thread. */
void gort__sigurg_capture(gort_m_t *m, void *uctx)
{
    if (!m || !atomic_exchange_explicit(&m->capture_req, 0, memory_order_acq_rel))
        return;
    gort_capture_t *c = __atomic_load_n((gort_capture_t **)&m->capture_buf, __ATOMIC_ACQUIRE);
    if (!c)
        return;
    gort_g_t *gp = m->curg;
    uintptr_t sp = (uintptr_t)((ucontext_t *)uctx)->uc_mcontext.gregs[REG_RSP];
    int n = -1;
    if (gp && gp->stack.lo && sp >= gp->stack.lo && sp < gp->stack.hi)
        n = gort__unwind_sigctx(uctx, c->pcs, GORT_CAPTURE_MAX);
    c->g = gp;
    c->n = n;
    atomic_fetch_add_explicit(&c->seq, 1, memory_order_release);
}

static gort_capture_t *capture_buf(gort_m_t *m)
{
    gort_capture_t *c = __atomic_load_n((gort_capture_t **)&m->capture_buf, __ATOMIC_ACQUIRE);
    if (c)
        return c;
    size_t sz = (sizeof *c + GORT_PAGE_SIZE - 1) & ~(size_t)(GORT_PAGE_SIZE - 1);
    void *p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    gort_capture_t *expect = NULL;
    if (!__atomic_compare_exchange_n((gort_capture_t **)&m->capture_buf, &expect, (gort_capture_t *)p, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        munmap(p, sz);
        return expect;
    }
    return p;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void nap(void)
{
    struct timespec ts = {0, 20 * 1000};
    nanosleep(&ts, NULL);
}

int gort__unwind_running(gort_g_t *gp, uintptr_t *pcs, int max, int64_t timeout_ns)
{
    gort_m_t *m = __atomic_load_n(&gp->m, __ATOMIC_ACQUIRE);
    gort_m_t *self = gort__getm();
    if (!m || m == self || m->tid == 0 || !gort__capture_possible())
        return -1;
    gort_capture_t *c = capture_buf(m);
    if (!c)
        return -1;
    int64_t deadline = now_ns() + timeout_ns;
    uint32_t zero = 0;
    while (!atomic_compare_exchange_weak_explicit(&c->busy, &zero, 1, memory_order_acquire, memory_order_relaxed)) {
        zero = 0;
        if (now_ns() > deadline)
            return -1;
        nap();
    }
    int result = -1;
    uint32_t s0 = atomic_load_explicit(&c->seq, memory_order_acquire);
    atomic_store_explicit(&m->capture_req, 1, memory_order_release);
    if (syscall(SYS_tgkill, (long)getpid(), (long)m->tid, gort__settings.preempt_sig) == 0) {
        while (atomic_load_explicit(&c->seq, memory_order_acquire) == s0) {
            if (now_ns() > deadline)
                break;
            nap();
        }
        if (atomic_load_explicit(&c->seq, memory_order_acquire) != s0 && c->g == gp && c->n >= 0) {
            result = c->n < max ? c->n : max;
            memcpy(pcs, c->pcs, (size_t)result * sizeof *pcs);
        }
    }
    atomic_store_explicit(&m->capture_req, 0, memory_order_relaxed);
    atomic_store_explicit(&c->busy, 0, memory_order_release);
    return result;
}
