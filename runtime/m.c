/*
 * m.c: Ms, the OS threads that run goroutines.
 *
 * An M runs the scheduler on its own pthread stack (g0) and goroutines on
 * theirs.  g0sp marks where every scheduling round starts: gort__mcall
 * switches there fresh each time, so scheduler frames never pile up.  The
 * thread's creating frames (mstart) sit above g0sp and are never
 * overwritten.
 *
 * Ms are created on demand (startm finds no idle one) and never exit: an
 * idle M sleeps on its park note.  That bounds thread churn, and Go does the
 * same.  Each M has a pre-faulted signal stack: a fault while the kernel
 * writes a signal frame corrupted vector registers on Linux 5.2-5.4 (Go
 * #35777), and preemption and profiling signals arrive on every M.
 */
#include "runtime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

__thread gort_m_t *gort__tls_m __attribute__((tls_model("initial-exec")));

/* Go's size.  What runs on it: the SIGURG handler's safety check and
 * stack capture (frame-pointer and CFI-cache walks), the SIGPROF sample,
 * and the start of a crash report, which moves to a stack of its own
 * (prof/crash.c).  A guard page below catches an overflow. */
#define SIGSTACK_SIZE (32 * 1024)


gort_m_t *gort__allocm(void)
{
    gort_m_t *m = calloc(1, sizeof(*m));
    if (!m)
        gort__throw("out of memory allocating an M");
    gort__lock(&gort__sched.lock);
    m->id = gort__sched.mnext++;
    gort__unlock(&gort__sched.lock);
    gort__lock(&gort__sched.allm_lock);
    m->alllink = gort__sched.allm;
    /* Released: gort__lock_contended_total walks allm without the lock
     * (an acquire load), and must find m's link set (TSan at 128 Ps). */
    __atomic_store_n(&gort__sched.allm, m, __ATOMIC_RELEASE);
    gort__unlock(&gort__sched.allm_lock);
    return m;
}

void gort__sigstack_init(gort_m_t *m)
{
    if (!m->sigstack) {
        char *g = mmap(NULL, SIGSTACK_SIZE + GORT_PAGE_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        if (g == MAP_FAILED)
            gort__throw_oom(SIGSTACK_SIZE, "signal stack");
        (void)mprotect(g, GORT_PAGE_SIZE, PROT_NONE);
        char *p = g + GORT_PAGE_SIZE;
        /* MAP_POPULATE may be ignored under memory pressure: touch it. */
        for (size_t off = 0; off < SIGSTACK_SIZE; off += GORT_PAGE_SIZE)
            ((volatile char *)p)[off] = 0;
        m->sigstack = p;
        m->sigstack_size = SIGSTACK_SIZE;
    }
    stack_t ss = {.ss_sp = m->sigstack, .ss_size = m->sigstack_size, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0)
        gort__throw("sigaltstack failed");
}

/* Bytes of m's signal stack ever used: it starts zeroed, and the deepest
 * handler frames leave non-zero bytes behind (tests check the size). */
size_t gort__sigstack_used(const gort_m_t *m)
{
    const volatile char *p = m->sigstack;
    if (!p)
        return 0;
    size_t off = 0;
    while (off < m->sigstack_size && p[off] == 0)
        off++;
    return m->sigstack_size - off;
}

/* Runs on the new thread (or the main thread in gort_main) before it
 * schedules. */
void gort__minit(gort_m_t *m)
{
    /* A preemption signal that reached this thread while it was outside
     * the runtime (m0 between two gort_main calls: sysmon's hint was
     * stale) found no M and was forwarded, leaving the flag set; then no
     * signal would ever be sent to this M again.  One still on its way is
     * taken for the program's own SIGURG. */
    atomic_store_explicit(&m->preempt_pending, 0, memory_order_relaxed);
    atomic_store_explicit(&m->tid, (pid_t)syscall(SYS_gettid), memory_order_release);
    m->thread = pthread_self();
    if (pthread_getcpuclockid(m->thread, &m->cpuclock) != 0)
        m->cpuclock = CLOCK_THREAD_CPUTIME_ID;
    gort__setm(m);
    gort__sigstack_init(m);
    gort__minit_sigmask(m->is_main_thread);
    gort__san_minit(m);
    /* So that top -H, perf and gdb's "info threads" tell the Ms apart.
     * The thread that called gort_main keeps the name its program gave
     * it. */
    if (!m->is_main_thread) {
        char name[16]; /* the kernel's limit, with the NUL */
        snprintf(name, sizeof name, "gort-m%llu", (unsigned long long)m->id);
        (void)pthread_setname_np(m->thread, name);
    }
    gort__hook(m_start, m);
}

/* The thread leaves the runtime (gort_main returning on the main thread). */
void gort__munsetup(gort_m_t *m)
{
    gort__hook(m_stop, m);
    stack_t ss = {.ss_flags = SS_DISABLE};
    (void)sigaltstack(&ss, NULL);
    gort__setm(NULL);
}

int64_t gort__thread_cputime(gort_m_t *m)
{
    struct timespec ts;
    gort__tls_syscalls++;
    if (clock_gettime(m->cpuclock, &ts) != 0)
        return -1;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void mstart_sched(void *arg)
{
    (void)arg;
    gort_m_t *m = gort__getm();
    if (m->nextp) {
        gort_p_t *pp = m->nextp;
        m->nextp = NULL;
        gort__acquirep(pp);
    }
    if (m->lockedg) {
        /* Started for a locked goroutine: run exactly it. */
        gort_g_t *gp = m->lockedg;
        if (gort__gprof_pending(gp))
            gort__hook(gprof_record, gp); /* while it still reads as runnable */
        gort__gstatus_move(gp, G_RUNNABLE, G_RUNNING);
        gort__execute(gp, true);
    }
    gort__schedule();
}

static void *mstart(void *arg)
{
    gort_m_t *m = arg;
    /* The scheduler runs below this frame: leave room for it. */
    uintptr_t sp = (gort__getsp() - 1024) & ~(uintptr_t)15;
    pthread_attr_t attr;
    void *stackaddr = NULL;
    size_t stacksize = 0;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getstack(&attr, &stackaddr, &stacksize);
        pthread_attr_destroy(&attr);
    }
    m->g0hi = sp;
    m->g0lo = (uintptr_t)stackaddr;
    m->g0top = stackaddr ? (uintptr_t)stackaddr + stacksize : sp;
    m->g0sp = (void *)sp;
    gort__minit(m);
    gort_regsave_t unused;
    gort__mcall(&unused, m->g0sp, mstart_sched, NULL);
    return NULL;
}

/* Ms whose threads could not be created, kept for the next newm (they are
 * on allm already), linked by schedlink; under sched.lock. */
static gort_m_t *spare_m;

/* Starts an M on a new thread to run pp.  Returns false, having changed
 * nothing, if the system refuses a thread for now (EAGAIN: RLIMIT_NPROC,
 * a cgroup's pids.max, threads-max): startm then leaves the P's work to
 * the next M that frees up (sched.c, startm_nothread).  A goroutine locked to its thread needs this very thread:
 * that failure, like any other, is fatal, with Go's words. */
bool gort__newm(gort_p_t *pp, bool spinning, gort_g_t *lockedg)
{
    gort__lock(&gort__sched.lock);
    gort_m_t *m = spare_m;
    if (m)
        spare_m = m->schedlink;
    gort__unlock(&gort__sched.lock);
    if (!m)
        m = gort__allocm();
    m->nextp = pp;
    m->spinning = spinning;
    m->lockedg = lockedg;
    if (lockedg)
        lockedg->lockedm = m;
    gort__lock(&gort__sched.lock);
    if (gort__sched.mcount >= GORT_MAX_MS)
        gort__throw("thread exhaustion: %d threads", gort__sched.mcount);
    gort__sched.mcount++;
    gort__unlock(&gort__sched.lock);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* The scheduler stack: big enough for symbolization (libdw) and the
     * dump, which run on g0. */
    pthread_attr_setstacksize(&attr, 8u << 20);
    /* New threads start with every signal blocked; minit unblocks. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t th;
    int err = pthread_create(&th, &attr, mstart, m);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (err == 0)
        return true;
    if (err != EAGAIN || lockedg) {
        gort__lock(&gort__sched.lock);
        int32_t have = gort__sched.mcount - 1;
        gort__unlock(&gort__sched.lock);
        char msg[128];
        snprintf(msg, sizeof msg, "runtime: failed to create new OS thread (have %d already; errno=%d)\n", have, err);
        gort__write_str(2, msg);
        gort__throw("newosproc");
    }
    m->nextp = NULL;
    m->spinning = false;
    gort__lock(&gort__sched.lock);
    gort__sched.mcount--;
    m->schedlink = spare_m;
    spare_m = m;
    gort__unlock(&gort__sched.lock);
    static _Atomic bool said;
    if (!atomic_exchange(&said, true)) {
        char msg[160];
        snprintf(msg, sizeof msg, "gort: cannot create a thread (%s); waiting for one to free up\n", strerror(err));
        gort__write_str(2, msg);
    }
    return false;
}
