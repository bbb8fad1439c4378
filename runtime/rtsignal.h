/*
 * rtsignal.h: signal handlers, forwarding and masks (signal.c).  Named
 * rtsignal.h, not signal.h, so that -Iruntime does not hide the system's
 * <signal.h>.
 */
#ifndef GORT_RUNTIME_RTSIGNAL_H
#define GORT_RUNTIME_RTSIGNAL_H

#include "base.h"

/* Signals (signal.c) */
typedef void (*gort_sighandler_t)(int sig, siginfo_t *info, void *uctx);
void gort__signal_init(void);
void gort__signal_install(int sig, gort_sighandler_t h, int extra_flags);
/* Calls the handler that was installed before ours (if any). */
bool gort__signal_forward(int sig, siginfo_t *info, void *uctx);
void gort__sigstack_init(gort_m_t *m);
size_t gort__sigstack_used(const gort_m_t *m); /* high-water mark, bytes (m.c) */
/* A new M's signal mask: the runtime's signals unblocked (the main thread
 * keeps the rest of its own). */
void gort__minit_sigmask(bool main_thread);

#endif /* GORT_RUNTIME_RTSIGNAL_H */
