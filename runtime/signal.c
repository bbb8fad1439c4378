/*
 * signal.c: installing the runtime's signal handlers and living with other
 * users of signals.
 *
 * Subsystems register handlers through gort__signal_install; the handler
 * that was there before is kept and gort__signal_forward calls it for
 * signals that are not ours (a SIGURG the application sent itself, say).
 * Every runtime handler runs on the M's pre-faulted sigaltstack
 * (SA_ONSTACK) and with SA_RESTART, so that slow system calls in user code
 * restart instead of failing with EINTR where the kernel allows it.  (It
 * does not allow it for nanosleep, poll, epoll_wait or select; sysmon
 * therefore never signals an M that is in a system call: see
 * sysmon/preempt.c.)
 *
 * New Ms start with all signals blocked (m.c) and take the process's
 * initial mask here, minus the signals the runtime must receive.  The
 * preemption signal is SIGURG unless GORT_PREEMPT_SIGNAL names another
 * (main.c); then SIGURG is left entirely to the program.
 */
#include "runtime.h"

#include <string.h>

static struct sigaction old_actions[65];
static bool installed[65];
static sigset_t initial_mask;

void gort__signal_init(void)
{
    pthread_sigmask(SIG_SETMASK, NULL, &initial_mask);
    sigdelset(&initial_mask, gort__settings.preempt_sig);
    sigdelset(&initial_mask, SIGPROF);
    sigdelset(&initial_mask, SIGSEGV);
    sigdelset(&initial_mask, SIGBUS);
    sigdelset(&initial_mask, SIGFPE);
    sigdelset(&initial_mask, SIGILL);
}

/* New threads take the process's initial mask; the thread that calls
 * gort_main keeps its own and only has the runtime's signals unblocked. */
void gort__minit_sigmask(bool main_thread)
{
    if (!main_thread) {
        pthread_sigmask(SIG_SETMASK, &initial_mask, NULL);
        return;
    }
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, gort__settings.preempt_sig);
    sigaddset(&s, SIGPROF);
    sigaddset(&s, SIGSEGV);
    sigaddset(&s, SIGBUS);
    sigaddset(&s, SIGFPE);
    sigaddset(&s, SIGILL);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
}

void gort__signal_install(int sig, gort_sighandler_t h, int extra_flags)
{
    if (sig <= 0 || sig > 64)
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART | extra_flags;
    sigfillset(&sa.sa_mask);
    /* Let the fatal signals through during our handlers: a fault inside a
     * handler must still kill the process instead of hanging it. */
    sigdelset(&sa.sa_mask, SIGSEGV);
    sigdelset(&sa.sa_mask, SIGBUS);
    sigdelset(&sa.sa_mask, SIGFPE);
    sigdelset(&sa.sa_mask, SIGILL);
    struct sigaction old;
    if (sigaction(sig, &sa, &old) != 0)
        return;
    if (!installed[sig]) {
        old_actions[sig] = old;
        installed[sig] = true;
    }
}

/* Async-signal-safe.  Returns false if there was no previous handler (or it
 * was SIG_DFL/SIG_IGN), leaving the default to the caller. */
bool gort__signal_forward(int sig, siginfo_t *info, void *uctx)
{
    if (sig <= 0 || sig > 64 || !installed[sig])
        return false;
    struct sigaction *o = &old_actions[sig];
    if (o->sa_flags & SA_SIGINFO) {
        if (o->sa_sigaction == NULL)
            return false;
        o->sa_sigaction(sig, info, uctx);
        return true;
    }
    if (o->sa_handler == SIG_DFL || o->sa_handler == SIG_IGN)
        return false;
    o->sa_handler(sig);
    return true;
}
