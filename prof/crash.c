/*
 * crash.c: fatal signals, SIGQUIT and the crash watchdog.
 *
 * gort__crash_init (called once at start-up, prof/start.c) opens the
 * symbol tables and DWARF of every loaded module (so a crash does not open
 * files), sets libunwind's caching policy, and installs handlers for
 * SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGQUIT through
 * gort__signal_install: they run on the M's pre-faulted signal stack, which
 * is what makes a stack overflow reportable at all.
 *
 * What is printed follows Go:
 *   fault in user code    panic: runtime error: invalid memory address or
 *                         nil pointer dereference
 *                         [signal SIGSEGV: segmentation violation code=0x1
 *                          addr=0x0 pc=0x...]
 *                         (other addresses: "unexpected fault address" and
 *                         "fatal error: fault"; SIGFPE: "integer divide by
 *                         zero"; SIGILL: "SIGILL: illegal instruction" and
 *                         PC= m= sigcode=)
 *   fault in the runtime  fatal error: unexpected signal during runtime
 *   (no goroutine, on the execution, the same [signal ...] line, and
 *   scheduler stack, or   "runtime stack:" with every frame
 *   holding a runtime lock)
 *   guard page hit        runtime: goroutine N stack exceeds B-byte limit,
 *                         fatal error: goroutine N stack overflow
 *   SIGQUIT               SIGQUIT: quit / PC=... m=N sigcode=N, then every
 *                         goroutine
 * then the crashing goroutine first and the others as GORT_TRACEBACK says
 * (none, single, all, system: with runtime frames, crash: then abort() for
 * a core file), and exit status 2.  A fault on a thread the runtime does
 * not run is forwarded to the handler installed before ours, if any.
 *
 * Crash-safety decisions:
 *   - One thread prints: the first to raise gort__panicking (shared with
 *     runtime/fatal.c); any other that crashes meanwhile sleeps.
 *   - No malloc of our own: the dump writes through a static buffer.  The
 *     handler starts on the M's small pre-faulted signal stack (32 KiB,
 *     as Go's) and the elected thread moves to a crash stack mapped then
 *     (1 MiB, committed as it is used) for the report: libdw and the
 *     dump's buffers do not fit the signal stack.  The move is one way:
 *     the report never returns, so a fault recovered inside it may reuse
 *     the signal stack from its top.
 *   - Symbolization with libdw allocates.  The modules' DWARF is opened at
 *     init, and the cache answers repeated PCs without libdw.  If the
 *     crashing thread's stack has a frame in libc's allocator (it may hold
 *     a malloc lock), in libdw/libelf or in libunwind, the dump does not
 *     enter libdw at all: names come from the ELF symbol tables read at
 *     init, else module+offset.  Otherwise libdw is used under a try-lock
 *     (another thread may hold it forever).
 *   - Runtime locks (allglock) are try-locked a bounded number of times.
 *   - A watchdog: SIGALRM after GORT_DUMP_TIMEOUT seconds (default 20)
 *     ends the process with status 2 whatever the dump is stuck on (a
 *     lock, a full pipe on stderr); the crashing thread unblocks SIGALRM
 *     so the alarm can interrupt it.
 *   - A fault inside the dump itself: a fault while reading one
 *     goroutine's stack is recovered (dump.c); any other fault on the
 *     crashing thread ends the process at once.
 * Rejected: forking a child to symbolize (fork runs atfork handlers that
 * take malloc locks; a raw clone inherits the locked state anyway), and
 * symbolizing without libdw always (crash reports without file:line).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "dump.h"
#include "profiles.h"
#include "symtab.h"
#include "unwind.h"


static int dump_timeout_s = 20;
static _Atomic pid_t crash_tid;
static _Atomic int watchdog_armed;

static pid_t my_tid(void) { return (pid_t)syscall(SYS_gettid); }

/* ---------------------------------------------------------------- */
/* Small async-signal-safe formatting                                */
/* ---------------------------------------------------------------- */

typedef struct line {
    char b[512];
    size_t n;
} line_t;

static void l_str(line_t *l, const char *s)
{
    while (*s && l->n < sizeof l->b - 1)
        l->b[l->n++] = *s++;
}

static void l_num(line_t *l, uint64_t v, int base)
{
    char t[24];
    int i = sizeof t;
    if (base == 16) {
        l_str(l, "0x");
    }
    do {
        t[--i] = "0123456789abcdef"[v % (unsigned)base];
        v /= (unsigned)base;
    } while (v);
    while (i < (int)sizeof t && l->n < sizeof l->b - 1)
        l->b[l->n++] = t[i++];
}

static void l_write(int fd, line_t *l)
{
    size_t off = 0;
    while (off < l->n) {
        ssize_t w = write(fd, l->b + off, l->n - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        off += (size_t)w;
    }
    l->n = 0;
}

static const char *sig_desc(int sig)
{
    switch (sig) {
    case SIGSEGV:
        return "SIGSEGV: segmentation violation";
    case SIGBUS:
        return "SIGBUS: bus error";
    case SIGFPE:
        return "SIGFPE: floating-point exception";
    case SIGILL:
        return "SIGILL: illegal instruction";
    case SIGQUIT:
        return "SIGQUIT: quit";
    case SIGABRT:
        return "SIGABRT: abort";
    default:
        return "signal";
    }
}

/* ---------------------------------------------------------------- */
/* Dying                                                             */
/* ---------------------------------------------------------------- */

/* Async-signal-safe: abort() with the default action, for a core file. */
static __attribute__((noreturn)) void die_abort(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGABRT, &sa, NULL);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGABRT);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    syscall(SYS_tgkill, (long)getpid(), (long)my_tid(), SIGABRT);
    _exit(2);
}

static __attribute__((noreturn)) void die_now(void)
{
    if (gort__settings.traceback >= 4)
        die_abort();
    _exit(2);
}

static void watchdog_handler(int sig)
{
    (void)sig;
    /* stderr may be the very thing that is stuck (a full pipe). */
    int fl = fcntl(2, F_GETFL);
    if (fl >= 0)
        fcntl(2, F_SETFL, fl | O_NONBLOCK);
    line_t l = {.n = 0};
    l_str(&l, "\nfatal error: goroutine dump did not finish in ");
    l_num(&l, (uint64_t)dump_timeout_s, 10);
    l_str(&l, " s (GORT_DUMP_TIMEOUT)\n");
    l_write(2, &l);
    die_now();
}

void gort__crash_watchdog_arm(void)
{
    if (atomic_exchange(&watchdog_armed, 1))
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = watchdog_handler;
    sa.sa_flags = SA_ONSTACK;
    sigfillset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGALRM);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    alarm((unsigned)dump_timeout_s);
}

/* ---------------------------------------------------------------- */
/* The handler                                                       */
/* ---------------------------------------------------------------- */

/* Frames on the crashing thread that make libdw unsafe to enter. */
static bool stack_is_suspect(void *uctx)
{
    uintptr_t pcs[GORT_CAPTURE_MAX];
    int n = gort__unwind_sigctx(uctx, pcs, GORT_CAPTURE_MAX);
    for (int i = 0; i < n; i++) {
        uintptr_t pc = i == 0 ? pcs[i] : pcs[i] - 1;
        if (gort__pc_in_malloc(pc))
            return true;
        int c = gort__pc_class(pc);
        if (c == GORT_PC_DW || c == GORT_PC_UNWIND)
            return true;
    }
    return n == 0; /* could not even unwind: trust nothing */
}

static void signal_line(line_t *l, int sig, siginfo_t *info, uintptr_t pc)
{
    l_str(l, "[signal ");
    l_str(l, sig_desc(sig));
    l_str(l, " code=");
    l_num(l, (uint64_t)(info ? (unsigned)info->si_code : 0), 16);
    l_str(l, " addr=");
    l_num(l, (uint64_t)(uintptr_t)(info ? info->si_addr : 0), 16);
    l_str(l, " pc=");
    l_num(l, pc, 16);
    l_str(l, "]\n");
}

static void pc_line(line_t *l, int sig, siginfo_t *info, uintptr_t pc, gort_m_t *m)
{
    l_str(l, sig_desc(sig));
    l_str(l, "\nPC=");
    l_num(l, pc, 16);
    if (m) {
        l_str(l, " m=");
        l_num(l, m->id, 10);
    }
    l_str(l, " sigcode=");
    l_num(l, (uint64_t)(info ? (unsigned)info->si_code : 0), 10);
    l_str(l, "\n");
}

/* A frame bigger than the rest of the stack (a large local array) moves
 * sp past the guard page in one step; the fault comes later, from whatever
 * code then writes upward into the guard (memset, say) or below it.  The
 * goroutine overflowed if sp lies below its stack, not on the M's scheduler
 * or signal stack, and the fault is between that sp and the stack's top.
 * Any fault inside the guard page of the running goroutine counts too,
 * whatever code touched it. */
static bool overflowed_below(gort_m_t *m, gort_g_t *gp, uintptr_t sp, uintptr_t addr)
{
    uintptr_t glo = gort__stack_guard_lo(&gp->stack);
    if (addr >= glo && addr < gp->stack.lo)
        return true;
    if (sp >= gp->stack.lo || gp->stack.lo - sp > (64u << 20))
        return false;
    if (sp >= m->g0lo && sp < m->g0top)
        return false;
    if (m->sigstack && sp >= (uintptr_t)m->sigstack && sp < (uintptr_t)m->sigstack + m->sigstack_size)
        return false;
    return addr + 4096 >= sp && addr < gp->stack.hi;
}

#define CRASH_STACK (1u << 20)

typedef struct crash_args {
    int sig;
    siginfo_t *info;
    void *uctx;
    gort_m_t *m;
} crash_args_t;

__attribute__((noreturn)) static void crash_report(void *arg);

static void crash_handler(int sig, siginfo_t *info, void *uctx)
{
    int saved_errno = errno;
    pid_t tid = my_tid();
    /* A dump on this thread faulted reading a stack: resume the dump. */
    if (sig == SIGSEGV || sig == SIGBUS)
        gort__dump_fault_recover(sig);
    gort_m_t *m = gort__getm();
    if (sig != SIGQUIT && !m && gort__signal_forward(sig, info, uctx)) {
        errno = saved_errno;
        return;
    }
    if (atomic_load(&crash_tid) == tid) {
        static const char msg[] = "\nfatal error: unexpected signal while printing the crash report\n";
        (void)!write(2, msg, sizeof msg - 1);
        die_now();
    }
    if (atomic_fetch_add(&gort__panicking, 1) > 0) {
        /* Another thread is already dying (or this one, in throw). */
        atomic_store(&crash_tid, tid);
        gort__crash_watchdog_arm();
        for (;;)
            pause();
    }
    atomic_store(&crash_tid, tid);
    gort__crash_watchdog_arm();
    crash_args_t a = {sig, info, uctx, m};
    void *cs = mmap(NULL, CRASH_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (cs != MAP_FAILED)
        gort__call_on_stack((char *)cs + CRASH_STACK, crash_report, &a);
    crash_report(&a);
}

/* The elected crashing thread's report; never returns. */
static void crash_report(void *arg)
{
    crash_args_t *a = arg;
    int sig = a->sig;
    siginfo_t *info = a->info;
    void *uctx = a->uctx;
    gort_m_t *m = a->m;
    ucontext_t *uc = uctx;
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
    uintptr_t addr = (uintptr_t)info->si_addr;
    gort_g_t *gp = m ? m->curg : NULL;
    bool on_gstack = false, overflow = false;
    if (gp && gp->stack.lo) {
        uintptr_t glo = gort__stack_guard_lo(&gp->stack);
        on_gstack = sp >= glo && sp < gp->stack.hi;
        overflow = sig == SIGSEGV && (on_gstack || overflowed_below(m, gp, sp, addr)) &&
                   ((addr >= glo && addr < gp->stack.lo) || sp < gp->stack.lo);
        on_gstack = on_gstack || overflow;
    }
    if (!on_gstack)
        gp = NULL; /* on g0 or a signal stack: no goroutine was running here */
    bool in_user = gp && atomic_load_explicit(&m->locks, memory_order_relaxed) == 0;
    int tb = gort__settings.traceback;
    bool all = tb >= 2 || sig == SIGQUIT;

    line_t l = {.n = 0};
    if (sig == SIGQUIT) {
        pc_line(&l, sig, info, pc, m);
    } else if (overflow) {
        l_str(&l, "runtime: goroutine ");
        l_num(&l, gp->goid, 10);
        l_str(&l, " stack exceeds ");
        /* The configured size: a G placed at its stack's top (proc.c's
         * malg) leaves its frames a little less; stack=[] says how much. */
        l_num(&l, gort__stack_size(), 10);
        l_str(&l, "-byte limit\nruntime: sp=");
        l_num(&l, sp, 16);
        l_str(&l, " stack=[");
        l_num(&l, gp->stack.lo, 16);
        l_str(&l, ", ");
        l_num(&l, gp->stack.hi, 16);
        l_str(&l, "]\nfatal error: goroutine ");
        l_num(&l, gp->goid, 10);
        l_str(&l, " stack overflow\n");
        signal_line(&l, sig, info, pc);
    } else if (!in_user) {
        l_str(&l, "fatal error: unexpected signal during runtime execution\n");
        signal_line(&l, sig, info, pc);
    } else if (sig == SIGILL) {
        pc_line(&l, sig, info, pc, m);
    } else if (sig == SIGFPE) {
        l_str(&l, info->si_code == FPE_INTDIV   ? "panic: runtime error: integer divide by zero\n"
                  : info->si_code == FPE_INTOVF ? "panic: runtime error: integer overflow\n"
                                                : "panic: runtime error: floating point error\n");
        signal_line(&l, sig, info, pc);
    } else if (addr < 0x1000) {
        l_str(&l, "panic: runtime error: invalid memory address or nil pointer dereference\n");
        signal_line(&l, sig, info, pc);
    } else {
        l_str(&l, "unexpected fault address ");
        l_num(&l, addr, 16);
        l_str(&l, "\nfatal error: fault\n");
        signal_line(&l, sig, info, pc);
    }
    l_write(2, &l);

    bool suspect = stack_is_suspect(uctx);
    if (tb > 0) {
        l_str(&l, "\n");
        l_write(2, &l);
        gort__dump_crash(2, gp, uctx, all, !in_user || overflow, suspect ? GORT_SYM_NODWARF : GORT_SYM_TRYLOCK);
    }
    if (!suspect)
        gort__prof_before_fatal();
    die_now();
}

void gort__crash_init(void)
{
    gort__unwind_init();
    gort__symtab_init();
    int t = gort__atoi_env("GORT_DUMP_TIMEOUT", 20);
    if (t > 0)
        dump_timeout_s = t;
    /* SA_NODEFER: a fault while the handler reads a broken goroutine's
     * stack must reach the handler again (and be recovered) instead of
     * killing the process with the signal blocked. */
    gort__signal_install(SIGSEGV, crash_handler, SA_NODEFER);
    gort__signal_install(SIGBUS, crash_handler, SA_NODEFER);
    gort__signal_install(SIGFPE, crash_handler, SA_NODEFER);
    gort__signal_install(SIGILL, crash_handler, SA_NODEFER);
    /* SIGQUIT: unless the program has a handler of its own. */
    struct sigaction old;
    if (sigaction(SIGQUIT, NULL, &old) == 0 &&
        ((old.sa_flags & SA_SIGINFO) ? old.sa_sigaction == NULL
                                     : (old.sa_handler == SIG_DFL || old.sa_handler == SIG_IGN)))
        gort__signal_install(SIGQUIT, crash_handler, 0);
}
