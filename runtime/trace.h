/*
 * trace.h: where the runtime tells the execution tracer (prof/trace.c)
 * what happens.  The runtime only reports; the tracer, a layer above,
 * turns each report into Go 1.19 trace events in the reporting P's
 * buffer.  With no trace running a report costs one load of
 * gort__tracing and a branch predicted not taken; with one running it is
 * an indirect call through gort__hooks.trace_ev.
 *
 * Each report is made where the event's order is fixed, so that the
 * tracer's timestamps and per-goroutine sequence numbers agree with what
 * other threads can see:
 *   TEV_CREATE   the new G is not yet on a run queue (proc.c newproc)
 *   TEV_UNBLOCK  the G is RUNNABLE but on no queue yet (sched.c ready,
 *                injectglist, the netpoll list, park_m's abort)
 *   TEV_BLOCK    on g0, before the park's unlock function lets a waker
 *                in (park_m); arg is the wait reason (enum
 *                gort_waitreason, mapped to Go's GoBlock* events, WR_IO_WAIT
 *                to GoBlockNet)
 *   TEV_START    execute, before the switch to the G (arg 1: it inherits
 *                the time slice, so the P's last event was just now); or
 *                gort_syscall_exit with a P again (arg: the P it left)
 *   TEV_SCHED / TEV_PREEMPT   before the G is requeued (gosched_m)
 *   TEV_END      goexit0, on g0
 *   TEV_SYSCALL  syscall_enter, still holding the P (before P_SYSCALL)
 *   TEV_PTAKEN   whoever took a P from P_SYSCALL (sysmon, a blocking
 *                call's hand-off, stop-the-world) or revoked it from a G
 *                blocked outside the runtime (arg 1, gp that G), now owns
 *                the P and reports it before passing it on
 *   TEV_SYSEXIT  gort_syscall_exit, before it looks for a P
 *   TEV_PSTART / TEV_PSTOP    acquirep, releasep (the owner)
 *   TEV_PROCS    procresize set gomaxprocs to arg
 *
 * Syscalls follow Go's protocol.  TEV_SYSCALL stores gp in
 * pp->trace_sysg; a taker's TEV_PTAKEN (an exchange on that field, so
 * exactly one side sees it) writes GoSysBlock and ProcStop into the P's
 * buffer and sets gp->trace_sys to 2.  The G, back from its call without
 * its old P, waits for that store if its trace_sys is still 1, and
 * writes GoSysExit before its next GoStart (TEV_START does it).
 */
#ifndef GORT_RUNTIME_TRACE_H
#define GORT_RUNTIME_TRACE_H

#include "hooks.h"
#include "p.h"
#include "g.h"

enum gort_tev {
    TEV_CREATE = 1,
    TEV_START,
    TEV_END,
    TEV_BLOCK,
    TEV_UNBLOCK,
    TEV_SCHED,
    TEV_PREEMPT,
    TEV_SYSCALL,
    TEV_PTAKEN,
    TEV_SYSEXIT,
    TEV_PSTART,
    TEV_PSTOP,
    TEV_PROCS,
};

/* Set and cleared by prof/trace.c with the world stopped; read relaxed
 * everywhere (a report racing a stop is dropped by the tracer).  Hidden,
 * as the other flags the switch path tests (gort__lockstat_on,
 * gort__gprof_want): the test is then one compare with the flag's address,
 * not a load of that address from the GOT first. */
extern GORT_HIDDEN _Atomic bool gort__tracing;

/* A macro, so that the arguments are evaluated only while tracing (some
 * read the thread pointer, a volatile asm the compiler may not drop). */
#define gort__trace(ev, gp, pp, arg)                                                   \
    do {                                                                               \
        if (unlikely(atomic_load_explicit(&gort__tracing, memory_order_relaxed)))      \
            gort__hooks.trace_ev((ev), (gp), (pp), (uint64_t)(arg));                   \
    } while (0)

/* A P left P_SYSCALL to its taker: report it if its G's call was traced
 * (whether or not a trace still runs: the G may be waiting for it). */
static inline void gort__trace_ptaken(gort_p_t *pp)
{
    if (unlikely(atomic_load_explicit(&pp->trace_sysg, memory_order_relaxed) != NULL) && gort__hooks.trace_ev)
        gort__hooks.trace_ev(TEV_PTAKEN, NULL, pp, 0);
}

#endif /* GORT_RUNTIME_TRACE_H */
