/*
 * main.c: runtime start-up, settings from the environment, gort_main and
 * gort_maxprocs.
 *
 * gort_main (prof/start.c, which first starts the layers above the
 * runtime) calls gort__main here, which adopts the calling thread as an M.
 * Its scheduler stack (g0) is the caller's own stack, a little below
 * gort_main's frame; gort_main's registers are saved in m->retctx, and
 * the thread jumps back there when the main goroutine has returned and
 * the world is stopped (stw.c).  If the main goroutine finishes on
 * another thread, that thread wakes this one.  The world stays stopped
 * between gort_main calls.
 *
 * Environment (read once, at the first runtime call):
 *   GORT_MAXPROCS    number of Ps (default: CPUs in our affinity mask, or
 *                    fewer if our cgroup's CPU quota allows fewer, rounded
 *                    up: cpuquota.c)
 *   GORT_STACK_SIZE  goroutine stack size in bytes, k/m suffixes (256k)
 *   GORT_SLICE_US    preemption time slice (10000, at least 100)
 *   GORT_TRACEBACK   none|single|all|system|crash (single)
 *   GORT_DEBUG       comma-separated: schedtrace=MS, scheddetail=1,
 *                    asyncpreemptoff=1, randomize=1, deadlock=0,
 *                    mutexfence=1 (gort_mutex unlock by atomic add),
 *                    chansolo=0 (channel locks by CAS even with one P),
 *                    lockstat=1 (runtime lock statistics at exit and in
 *                    schedtrace lines: stats.c)
 *   GORT_PREEMPT_SIGNAL  the signal that preempts goroutines and captures
 *                    running stacks: SIGURG (default), another name
 *                    (SIGUSR1, URG), a number, or a real-time signal
 *                    (SIGRTMIN+3, SIGRTMAX-1); for programs that need
 *                    SIGURG themselves
 */
#include "runtime.h"

#include <valgrind/valgrind.h>

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

gort_settings_t gort__settings = {
    .slice_ns = 10 * 1000 * 1000,
    .stack_size = 256 * 1024,
    .traceback = 1,
    .preempt_sig = SIGURG,
};
_Atomic int32_t gort__ncpu;
gort_m_t *gort__m0;

static size_t parse_size(const char *s, size_t def)
{
    if (!s || !*s)
        return def;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return def;
    switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    default: break;
    }
    if (*end == 'b' || *end == 'B')
        end++;
    return *end ? def : (size_t)v;
}

int gort__atoi_env(const char *name, int def)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return def;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || end == s)
        return def;
    return (int)v;
}

/* GORT_PREEMPT_SIGNAL.  Not the signals the runtime or the kernel use for
 * something else (faults, SIGPROF, SIGQUIT, the crash watchdog's SIGALRM),
 * nor ones that cannot be caught. */
static int parse_preempt_signal(const char *s)
{
    if (!s || !*s)
        return SIGURG;
    const char *n = strncmp(s, "SIG", 3) == 0 ? s + 3 : s;
    static const struct {
        const char *name;
        int sig;
    } names[] = {{"URG", SIGURG}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"WINCH", SIGWINCH},
                 {"IO", SIGIO}, {"PWR", SIGPWR}, {"SYS", SIGSYS}, {"VTALRM", SIGVTALRM}};
    int sig = -1;
    char *end;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(n, names[i].name) == 0)
            sig = names[i].sig;
    if (sig < 0 && (strncmp(n, "RTMIN", 5) == 0 || strncmp(n, "RTMAX", 5) == 0)) {
        long off = 0;
        if (n[5] && ((n[5] != '+' && n[5] != '-') || (off = strtol(n + 5, &end, 10), *end)))
            off = 1L << 20;
        sig = n[4] == 'N' ? SIGRTMIN + (int)off : SIGRTMAX + (int)off;
        if (sig < SIGRTMIN || sig > SIGRTMAX)
            sig = -1;
    } else if (sig < 0) {
        long v = strtol(n, &end, 10);
        if (!*end && end != n)
            sig = (int)v;
    }
    if (sig <= 0 || sig > SIGRTMAX || sig == SIGKILL || sig == SIGSTOP || sig == SIGSEGV || sig == SIGBUS ||
        sig == SIGFPE || sig == SIGILL || sig == SIGPROF || sig == SIGQUIT || sig == SIGALRM || sig == SIGABRT ||
        sig == SIGTRAP || sig == SIGCHLD)
        gort__fatal("GORT_PREEMPT_SIGNAL=%s: not a signal the runtime can use", s);
    return sig;
}

static void parse_debug(const char *s)
{
    if (!s)
        return;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            continue;
        *eq = 0;
        int v = atoi(eq + 1);
        if (!strcmp(tok, "schedtrace"))
            gort__settings.schedtrace_ms = v;
        else if (!strcmp(tok, "scheddetail"))
            gort__settings.scheddetail = v;
        else if (!strcmp(tok, "asyncpreemptoff"))
            gort__settings.asyncpreemptoff = v;
        else if (!strcmp(tok, "randomize"))
            gort__settings.randomize = v;
        else if (!strcmp(tok, "deadlock"))
            gort__settings.nodeadlock = !v;
        else if (!strcmp(tok, "mutexfence"))
            gort__settings.mutexfence = v;
        else if (!strcmp(tok, "chansolo"))
            gort__settings.nochansolo = !v;
        else if (!strcmp(tok, "lockstat"))
            gort__settings.lockstat = v;
    }
}

static int parse_traceback(const char *s)
{
    if (!s || !*s || !strcmp(s, "single"))
        return 1;
    if (!strcmp(s, "none") || !strcmp(s, "0"))
        return 0;
    if (!strcmp(s, "all") || !strcmp(s, "1"))
        return 2;
    if (!strcmp(s, "system") || !strcmp(s, "2"))
        return 3;
    if (!strcmp(s, "crash"))
        return 4;
    return 1;
}

static int count_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int gort_numcpu(void)
{
    gort__runtime_init();
    return atomic_load_explicit(&gort__ncpu, memory_order_relaxed);
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void runtime_init_once(void)
{
    int ncpu = count_cpus();
    atomic_store(&gort__ncpu, ncpu);
    /* The default: the affinity mask, or the cgroup quota if lower. */
    char quota_src[256];
    int quota = gort__cpuquota(quota_src, sizeof quota_src);
    int def = ncpu;
    const char *from = "affinity";
    if (quota > 0 && quota < ncpu) {
        def = quota;
        from = "cgroup quota";
    }
    int procs = gort__atoi_env("GORT_MAXPROCS", 0);
    if (procs >= 1)
        from = "env";
    else
        procs = def;
    if (procs > GORT_MAX_PROCS)
        procs = GORT_MAX_PROCS;
    gort__settings.stack_size = parse_size(getenv("GORT_STACK_SIZE"), 256 * 1024);
    int slice = gort__atoi_env("GORT_SLICE_US", 10000);
    if (slice < 100)
        slice = 100;
    gort__settings.slice_ns = (int64_t)slice * 1000;
    gort__settings.traceback = parse_traceback(getenv("GORT_TRACEBACK"));
    parse_debug(getenv("GORT_DEBUG"));
    gort__settings.preempt_sig = parse_preempt_signal(getenv("GORT_PREEMPT_SIGNAL"));
    if (gort__settings.schedtrace_ms > 0) {
        if (quota > 0)
            fprintf(stderr, "gort: maxprocs=%d from %s (affinity %d, cgroup quota %d from %s)\n", procs, from,
                    ncpu, quota, quota_src);
        else
            fprintf(stderr, "gort: maxprocs=%d from %s (affinity %d, no cgroup quota)\n", procs, from, ncpu);
    }
    /* valgrind emulates signal delivery and checks every access below the
     * stack pointer: rewriting an interrupted context to enter the XSAVE
     * trampoline is outside what it models.  Goroutines still yield at
     * every runtime call. */
    if (RUNNING_ON_VALGRIND)
        gort__settings.asyncpreemptoff = 1;
#ifdef GORT_DEBUG_BUILD
    gort__settings.randomize = 1;
#endif

    gort__fork_init();
    /* Before any goroutine runs: its switches carry the C++ state (cxx.h)
     * only on their slow path (hooks.h). */
    if (__cxa_get_globals)
        atomic_fetch_or_explicit(&gort__switch_slow, GORT_SWITCH_CXX, memory_order_relaxed);
    if (gort__settings.lockstat) {
        gort__lockstat_on = true;
        atexit(gort__lockstat_atexit);
    }
    gort__stack_init();
    gort__membarrier_init();
    gort__mutex_init();
    gort__clocks_init();
    gort__netpoll_init();
    gort__signal_init();

    /* Ps are created stopped: the world starts stopped, and gort_main
     * starts it. */
    gort__set_newprocs(procs);
    atomic_store(&gort__sched.stw_pending, 1);
    atomic_store(&gort__sched.goidgen, 1);
    /* sysmon and prof start above this, in prof/start.c. */
}

void gort__runtime_init(void)
{
    gort__fork_check();
    pthread_once(&init_once, runtime_init_once);
}

static void main_sched(void *arg)
{
    (void)arg;
    gort__schedule();
}

int gort__main(void (*fn)(void *), void *arg)
{
    gort__runtime_init();
    if (!fn)
        gort__fatal("gort_main: nil function");
    if (gort__getm())
        gort__fatal("gort_main called from inside the runtime");
    int32_t zero = 0;
    if (!atomic_compare_exchange_strong(&gort__sched.main_running, &zero, 1))
        gort__fatal("gort_main called while another gort_main is running");

    gort_m_t *m = gort__m0;
    if (!m)
        m = gort__m0 = gort__allocm();
    m->is_main_thread = true;
    m->p = m->nextp = m->oldp = NULL;
    m->spinning = false;
    m->lockedg = NULL;
    m->curg = NULL;
    atomic_store(&m->locks, 0);
    atomic_store(&m->pstate, 0);
    gort__noteclear(&m->park);
    gort__lock(&gort__sched.lock);
    gort__sched.main_m = m;
    gort__sched.mcount++;
    gort__unlock(&gort__sched.lock);

    /* g0 runs below this frame on the caller's stack. */
    uintptr_t sp = (gort__getsp() - 8192) & ~(uintptr_t)15;
    pthread_attr_t attr;
    void *stackaddr = NULL;
    size_t stacksize = 0;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getstack(&attr, &stackaddr, &stacksize);
        pthread_attr_destroy(&attr);
    }
    m->g0sp = (void *)sp;
    m->g0hi = sp;
    m->g0lo = (uintptr_t)stackaddr;
    m->g0top = stackaddr ? (uintptr_t)stackaddr + stacksize : sp;
    gort__minit(m);

    atomic_store(&gort__sched.main_done, 0); /* RUNNING: see exit.c */
    gort__start_world_locked_m();
    gort__newproc(fn, arg, (uintptr_t)__builtin_return_address(0), true);
    gort__wakep();
    void *san_caller = gort__san_main_enter(m);
    gort__mcall(&m->retctx, m->g0sp, main_sched, NULL);

    /* The main goroutine has returned; the world is stopped. */
    m = gort__getm();
    gort__san_main_leave(m, san_caller);
    gort__main_exit_finish(m);
    gort__munsetup(m);
    m->is_main_thread = false;
    atomic_store(&gort__sched.main_running, 0);
    return 0;
}

int gort_maxprocs(int n)
{
    gort__runtime_init();
    gort_g_t *gp = gort__getg();
    if (!gp && n > 0 && !gort__getm() && atomic_load(&gort__sched.main_running) &&
        !atomic_load(&gort__sched.main_done))
        gort__fatal("gort_maxprocs called outside a goroutine while the runtime runs");
    if (!gp || !atomic_load(&gort__sched.main_running) || atomic_load(&gort__sched.main_done)) {
        /* Runtime not running: applies when gort_main next starts it. */
        gort__lock(&gort__sched.lock);
        int32_t pending = gort__get_newprocs();
        int prev = pending ? pending : atomic_load(&gort__gomaxprocs);
        if (n > 0)
            gort__set_newprocs(n > GORT_MAX_PROCS ? GORT_MAX_PROCS : n);
        gort__unlock(&gort__sched.lock);
        return prev;
    }
    int prev = atomic_load(&gort__gomaxprocs);
    if (n <= 0 || n == prev)
        return prev;
    if (n > GORT_MAX_PROCS)
        n = GORT_MAX_PROCS;
    /* As every runtime call: the P this M runs may be under revoke. */
    gort_g_t *self = gort__rt_enter();
    gort__stop_the_world("GOMAXPROCS");
    gort__set_newprocs(n);
    gort__start_the_world();
    gort__rt_leave(self);
    return prev;
}
