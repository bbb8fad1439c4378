/*
 * gstatus.c: the one place that names goroutine states and formats a
 * goroutine's header line.  Dumps (prof/dump.c) and GORT_DEBUG=schedtrace
 * (stats.c) both print through here, so they always agree.
 *
 * Names follow Go's runtime (runtime2.go waitReasonStrings) so that people
 * and tools that read Go dumps read ours.
 */
#include "runtime.h"

#include <stdio.h>

static const char *const wr_names[WR_NUM] = {
    [WR_ZERO] = "",
    [WR_CHAN_RECEIVE] = "chan receive",
    [WR_CHAN_SEND] = "chan send",
    [WR_CHAN_RECEIVE_NIL] = "chan receive (nil chan)",
    [WR_CHAN_SEND_NIL] = "chan send (nil chan)",
    [WR_SELECT] = "select",
    [WR_SELECT_NO_CASES] = "select (no cases)",
    [WR_SLEEP] = "sleep",
    [WR_SYNC_MUTEX_LOCK] = "sync.Mutex.Lock",
    [WR_SYNC_RWMUTEX_RLOCK] = "sync.RWMutex.RLock",
    [WR_SYNC_RWMUTEX_LOCK] = "sync.RWMutex.Lock",
    [WR_SYNC_WAITGROUP_WAIT] = "sync.WaitGroup.Wait",
    [WR_SYNC_COND_WAIT] = "sync.Cond.Wait",
    [WR_SEMACQUIRE] = "semacquire",
    [WR_IO_WAIT] = "IO wait",
    [WR_PREEMPTED] = "preempted",
    [WR_STOP_THE_WORLD] = "stop the world",
    [WR_PANICWAIT] = "panicwait",
    [WR_ERRGROUP_WAIT] = "errgroup.Wait",
    [WR_CONTEXT_DONE] = "context done",
};

const char *gort__waitreason_str(int wr)
{
    if (wr < 0 || wr >= WR_NUM || !wr_names[wr])
        return "waiting";
    return wr_names[wr];
}

const char *gort__gstatus_str(const gort_g_t *gp)
{
    switch (atomic_load_explicit(&gp->status, memory_order_acquire)) {
    case G_IDLE:
        return "idle";
    case G_RUNNABLE:
        return "runnable";
    case G_RUNNING:
        return "running";
    case G_SYSCALL:
        return "syscall";
    case G_WAITING:
        if (gp->waitreason != WR_ZERO)
            return gort__waitreason_str(gp->waitreason);
        return "waiting";
    case G_PREEMPTED:
        return "preempted";
    case G_DEAD:
        return "dead";
    default:
        return "???";
    }
}

/* "goroutine 7 [chan receive, 3 minutes, locked to thread]:"  The wait
 * time appears once it reaches a minute, as in Go (which also says
 * "1 minutes"). */
size_t gort__format_gheader(char *buf, size_t len, gort_g_t *gp, int64_t now)
{
    char extra[64] = "";
    uint32_t st = atomic_load_explicit(&gp->status, memory_order_acquire);
    int64_t since = 0;
    if (st == G_WAITING)
        since = gp->waitsince;
    else if (st == G_SYSCALL)
        since = gp->syscallwhen;
    int n = 0;
    if (since > 0 && now > since) {
        int64_t minutes = (now - since) / (60LL * 1000000000LL);
        if (minutes >= 1)
            n = snprintf(extra, sizeof extra, ", %lld minutes", (long long)minutes);
    }
    if (gp->lockedm)
        snprintf(extra + n, sizeof extra - (size_t)n, ", locked to thread");
    int w = snprintf(buf, len, "goroutine %llu [%s%s]:\n", (unsigned long long)gp->goid,
                     gort__gstatus_str(gp), extra);
    if (w < 0)
        return 0;
    return (size_t)w < len ? (size_t)w : len ? len - 1 : 0;
}
