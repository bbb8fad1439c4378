/*
 * syscall.c: goroutines in blocking system calls.
 *
 * gort_syscall_enter detaches the P from the M without giving it away: the
 * P goes to P_SYSCALL and remembers nothing; the M remembers it in oldp.
 * A short call comes back, CASes the P from P_SYSCALL to P_IDLE and takes
 * it again: two atomics, no wakeups.  A long call loses it: sysmon CASes
 * P_SYSCALL to P_IDLE and hands it to another M (retake, sysmon/sysmon.c).  The M
 * that comes back without its P takes an idle one if there is any, else
 * queues its goroutine globally and parks (exitsyscall0).
 *
 * The same "come back without a P" path serves Ms whose P sysmon took while
 * they were blocked in a call the runtime never heard of (m->pstate == 2):
 * the next runtime call (gort__rt_enter) or preemption lands here.
 *
 * errno: the wrappers read errno right after the call, before
 * gort_syscall_exit can move the goroutine to another thread, and set it
 * again afterwards through a function the compiler cannot see into, so the
 * errno of the thread the goroutine ends up on is the one that is set.
 */
#include "runtime.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) static void set_errno(int e)
{
    __asm__ volatile("" ::: "memory");
    errno = e;
}

__attribute__((always_inline)) static inline void syscall_enter(void)
{
    gort_m_t *m = gort__getm();
    gort_g_t *gp = m ? m->curg : NULL;
    if (!gp || !m->p)
        return;
    gort__m_locks_add(m, 1);
    /* The caller's frame, as it will look while we are away: enough for
     * an unwinder to start there (libgort keeps frame pointers). */
    uintptr_t *fp = __builtin_frame_address(0);
    gp->syscallpc = fp[1];
    gp->syscallsp = (uintptr_t)(fp + 2);
    gp->syscallfp = fp[0];
    gp->syscallwhen = gort__nanotime_coarse();
    gort__gstatus_move(gp, G_RUNNING, G_SYSCALL);
    gort_p_t *pp = m->p;
    gort__trace(TEV_SYSCALL, gp, pp, 0);
    atomic_fetch_add_explicit(&pp->syscalltick, 1, memory_order_relaxed);
    pp->m = NULL;
    m->oldp = pp;
    m->p = NULL;
    /* seq_cst store and load: a Dekker pair with stop_with_sema, which
     * sets stw_pending and then looks for P_SYSCALL.  With a release store
     * the load could pass it, and both sides would miss each other: the
     * world would wait for the whole system call. */
    atomic_store_explicit(&pp->status, P_SYSCALL, memory_order_seq_cst);
    if (atomic_load_explicit(&gort__sched.stw_pending, memory_order_seq_cst)) {
        /* Stop-the-world is waiting for this P: give it up now. */
        uint32_t st = P_SYSCALL;
        gort__lock(&gort__sched.lock);
        if (gort__sched.stopwait > 0 && atomic_compare_exchange_strong(&pp->status, &st, P_STOP)) {
            gort__trace_ptaken(pp);
            if (--gort__sched.stopwait == 0)
                gort__notewakeup(&gort__sched.stopnote);
        }
        gort__unlock(&gort__sched.lock);
    }
    /* sysmon may sleep long, having seen every P idle just before this
     * one left its idle list (exitsyscallfast, or a timer's wake-up):
     * the P's timers now wait for it (Go's entersyscall_sysmon). */
    gort__hook(sysmon_wake_quiet);
    gort__m_locks_add(m, -1);
}

/* Entered like every runtime call (gort__rt_enter): sysmon may be revoking
 * this M's P right now, because the goroutine was blocked in a call it
 * never told us about.  Without the handshake the detach below raced the
 * revoke: both gave the P away, and two Ms ended up running it (the soak's
 * "acquirep: already in use"). */
void gort_syscall_enter(void)
{
    gort_g_t *gp = gort__rt_enter();
    syscall_enter();
    gort__rt_leave(gp);
}

/* For calls that are sure to block (nanosleep, poll with a timeout,
 * waitpid): if other work waits, give the P away now instead of letting
 * it sit a sysmon round in P_SYSCALL (Go's entersyscallblock). */
static void syscall_enter_block(void)
{
    gort_g_t *self = gort__rt_enter();
    gort_m_t *m = gort__getm();
    gort_g_t *gp = m ? m->curg : NULL;
    if (!gp || !m->p) {
        gort__rt_leave(self);
        return;
    }
    gort_p_t *pp = m->p;
    bool work = !gort__runqempty(pp) || atomic_load_explicit(&gort__sched.runqsize, memory_order_relaxed) != 0;
    syscall_enter();
    gort__rt_leave(self);
    if (!work)
        return;
    uint32_t st = P_SYSCALL;
    if (atomic_compare_exchange_strong(&pp->status, &st, P_IDLE)) {
        gort__trace_ptaken(pp);
        atomic_fetch_add_explicit(&pp->syscalltick, 1, memory_order_relaxed);
        gort__hook(sysmon_count_handoff);
        gort__m_locks_add(m, 1);
        gort__handoffp(pp);
        gort__m_locks_add(m, -1);
    }
}

/* An idle P taken without the lock while a stop of the world began: it
 * counts in stopwait (its bit was gone when the stopper looked), so it
 * stops here, as handoffp stops a P; or, if the stop is already over (the
 * world restarted meanwhile), it goes back to the idle set. */
static void exitsyscall_giveback(gort_p_t *pp)
{
    gort__lock(&gort__sched.lock);
    if (atomic_load_explicit(&gort__sched.stw_pending, memory_order_acquire)) {
        atomic_store_explicit(&pp->status, P_STOP, memory_order_release);
        if (--gort__sched.stopwait == 0)
            gort__notewakeup(&gort__sched.stopnote);
    } else {
        gort__pidleput(pp);
    }
    gort__unlock(&gort__sched.lock);
}

static bool exitsyscallfast(gort_m_t *m, gort_p_t *oldp)
{
    if (oldp) {
        uint32_t st = P_SYSCALL;
        if (atomic_load_explicit(&oldp->status, memory_order_relaxed) == P_SYSCALL &&
            atomic_compare_exchange_strong(&oldp->status, &st, P_IDLE)) {
            gort__acquirep(oldp);
            return true;
        }
    }
    if (atomic_load_explicit(&gort__sched.npidle, memory_order_acquire) > 0 &&
        !atomic_load_explicit(&gort__sched.stw_pending, memory_order_acquire)) {
        /* Without sched.lock (Go's exitsyscallfast_pidle takes it): the
         * idle bit is the P (sched.c, pidleget_nolock). */
        gort_p_t *pp = gort__pidleget_nolock();
        if (pp) {
            /* seq_cst: a Dekker pair with stop_with_sema, which sets
             * stw_pending and then takes the idle Ps by their bits.  If
             * it missed ours, it counts the P as one to stop: give it
             * back as such. */
            if (unlikely(atomic_load_explicit(&gort__sched.stw_pending, memory_order_seq_cst))) {
                exitsyscall_giveback(pp);
                return false;
            }
            gort__acquirep(pp);
            return true;
        }
    }
    (void)m;
    return false;
}

/* On g0: no P to be had.  Queue the goroutine and park this M. */
static void exitsyscall0(void *arg)
{
    gort_g_t *gp = arg;
    gort_m_t *m = gort__getm();
    gort__san_after_g_to_g0(m, gp, false);
    gort__gstatus_move(gp, G_SYSCALL, G_RUNNABLE);
    m->curg = NULL;
    gp->m = NULL;
    gort__lock(&gort__sched.lock);
    gort_p_t *pp = atomic_load(&gort__sched.stw_pending) ? NULL : gort__pidleget();
    bool locked = false;
    if (!pp) {
        gort__globrunqput(gp);
        /* gp is the queue's now: check the lock before letting go. */
        locked = gp->lockedm != NULL;
    }
    gort__unlock(&gort__sched.lock);
    if (pp) {
        gort__acquirep(pp);
        gort__execute(gp, false);
    }
    gort__main_exit_check(m);
    if (locked) {
        gort__stoplockedm();
        gort__execute(gp, false);
    }
    gort__stopm();
    gort__schedule();
}

/* On g0, holding a P: a collecting goroutine profile wants gp's stack as
 * it was when the profile stopped the world (proc.h), so gp goes back to
 * running through execute, which records it first. */
static void exitsyscall_record(void *arg)
{
    gort_g_t *gp = arg;
    gort_m_t *m = gort__getm();
    gort__san_after_g_to_g0(m, gp, false);
    gort__gstatus_move(gp, G_SYSCALL, G_RUNNABLE);
    m->curg = NULL;
    gp->m = NULL;
    gort__execute(gp, true);
}

void gort_syscall_exit(void)
{
    gort_m_t *m = gort__getm();
    gort_g_t *gp = m ? m->curg : NULL;
    if (!gp || atomic_load_explicit(&gp->status, memory_order_relaxed) != G_SYSCALL) {
        gort__fork_check(); /* off the common path: a forked goroutine is not in a system call */
        return;
    }
    gort__m_locks_add(m, 1);
    gort_p_t *oldp = m->oldp;
    m->oldp = NULL;
    gort__trace(TEV_SYSEXIT, gp, NULL, 0);
    if (exitsyscallfast(m, oldp)) {
        if (gort__gprof_pending(gp)) {
            gort__m_locks_add(m, -1);
            gort__san_g_to_g0(m, gp, false);
            gort__mcall(&gp->ctx, m->g0sp, exitsyscall_record, gp);
            gort__san_after_g0_to_g(gp);
            gp->syscallwhen = 0;
            return;
        }
        gort__gstatus_move(gp, G_SYSCALL, G_RUNNING);
        gort__trace(TEV_START, gp, m->p, (uint64_t)(uintptr_t)oldp);
        gp->syscallwhen = 0;
        gort__m_locks_add(m, -1);
        if (atomic_load_explicit(&gp->preempt, memory_order_relaxed))
            gort__gosched();
        return;
    }
    gort__m_locks_add(m, -1);
    gort__san_g_to_g0(m, gp, false);
    gort__mcall(&gp->ctx, m->g0sp, exitsyscall0, gp);
    gort__san_after_g0_to_g(gp);
    gp->syscallwhen = 0;
}

/* sysmon took this M's P while the goroutine was blocked outside the
 * runtime (m->pstate: 1 while it decides, 2 once taken).  Treat the time
 * since as a system call and come back through the usual path. */
void gort__rt_enter_slow(gort_m_t *m)
{
    uint32_t st;
    while ((st = atomic_load_explicit(&m->pstate, memory_order_acquire)) == 1)
        gort__cpu_relax();
    if (st == GORT_PSTATE_FORKED)
        gort__forked_fatal();
    if (st != 2)
        return;
    gort_g_t *gp = m->curg;
    /* sysmon cleared m->p and handed the P off; we own nothing. */
    gp->syscallwhen = gort__nanotime_coarse();
    gort__gstatus_move(gp, G_RUNNING, G_SYSCALL);
    m->oldp = NULL;
    atomic_store_explicit(&m->pstate, 0, memory_order_release);
    gort_syscall_exit();
}

/* ---- wrappers ---- */

#define WRAP_WITH(enter, ret_t, call)      \
    do {                                   \
        enter();                           \
        ret_t r_ = (call);                 \
        int e_ = errno;                    \
        gort_syscall_exit();               \
        set_errno(e_);                     \
        return r_;                         \
    } while (0)
#define WRAP(ret_t, call) WRAP_WITH(gort_syscall_enter, ret_t, call)
#define WRAP_BLOCK(ret_t, call) WRAP_WITH(syscall_enter_block, ret_t, call)

ssize_t gort_read(int fd, void *buf, size_t n) { WRAP(ssize_t, read(fd, buf, n)); }
ssize_t gort_write(int fd, const void *buf, size_t n) { WRAP(ssize_t, write(fd, buf, n)); }
int gort_nanosleep(const struct timespec *req, struct timespec *rem) { WRAP_BLOCK(int, nanosleep(req, rem)); }
int gort_poll(struct pollfd *fds, unsigned long nfds, int timeout_ms)
{
    if (timeout_ms == 0)
        WRAP(int, poll(fds, nfds, timeout_ms));
    WRAP_BLOCK(int, poll(fds, nfds, timeout_ms));
}
int gort_accept(int fd, struct sockaddr *addr, unsigned int *addrlen) { WRAP(int, accept(fd, addr, addrlen)); }
int gort_connect(int fd, const struct sockaddr *addr, unsigned int addrlen) { WRAP(int, connect(fd, addr, addrlen)); }
ssize_t gort_recv(int fd, void *buf, size_t n, int flags) { WRAP(ssize_t, recv(fd, buf, n, flags)); }
ssize_t gort_send(int fd, const void *buf, size_t n, int flags) { WRAP(ssize_t, send(fd, buf, n, flags)); }
pid_t gort_waitpid(pid_t pid, int *status, int options)
{
    if (options & WNOHANG)
        WRAP(pid_t, waitpid(pid, status, options));
    WRAP_BLOCK(pid_t, waitpid(pid, status, options));
}
