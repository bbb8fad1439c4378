/*
 * netpoll_epoll.c: where an idle M waits for the next timer.
 *
 * One M at a time (the one that swapped sched.lastpoll to 0) blocks in
 * epoll_pwait2 with the earliest timer's delay; an eventfd in the set lets
 * anyone break the wait when an earlier timer appears or the world changes
 * (gort__wake_netpoller, gort__netpoll_break).  The other idle Ms sleep on
 * their notes.  epoll rather than a futex so that file-descriptor readiness
 * ("IO wait", netpoll.c) joins the same wait: the events it returns ready
 * the goroutines parked on those descriptors, as one list the scheduler
 * injects.
 *
 * Descriptors are registered once, edge-triggered for reading and writing
 * (EPOLLET: an event per new arrival, not per call, and no re-arming), with
 * EPOLLRDHUP and EPOLLPRI so that an event says when a read that seemed to
 * empty the receive queue may have left something (fd.c's drained reads); the
 * data word carries the poll descriptor's slot and generation, so that an
 * event for a descriptor closed meanwhile is dropped (netpollready).  The
 * eventfd's data word is 0, which no tag is (generations start at 1).
 *
 * epoll_pwait2 takes a timespec (ns resolution); on kernels without it we
 * fall back to epoll_wait with the delay rounded up to a millisecond.
 */
#include "runtime.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static int epfd = -1;
static int breakfd = -1;
static _Atomic uint32_t breaking; /* a break is pending in the eventfd */
static bool have_pwait2 = true;
_Atomic int32_t gort__netpoll_waiters;

void gort__netpoll_init(void)
{
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        gort__throw("epoll_create1 failed: %d", errno);
    breakfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (breakfd < 0)
        gort__throw("eventfd failed: %d", errno);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, breakfd, &ev) != 0)
        gort__throw("epoll_ctl failed: errno=%d", errno);
}

bool gort__netpoll_inited(void) { return epfd >= 0; }

void gort__netpoll_break(void)
{
    uint32_t zero = 0;
    if (!atomic_compare_exchange_strong(&breaking, &zero, 1))
        return;
    uint64_t one = 1;
    /* A lost break would leave `breaking` set and every later break
     * coalesced into it: the poller would sleep through them all.  An
     * eventfd write fails only with EAGAIN (the counter is full, so a
     * wake is pending anyway) or for reasons from outside (a seccomp
     * filter, fault injection): try again, then give up loudly. */
    for (int tries = 0;; tries++) {
        if (write(breakfd, &one, sizeof one) >= 0 || errno == EAGAIN)
            return;
        if (errno != EINTR && tries >= 100)
            gort__throw("netpoll: cannot wake the poller: errno=%d", errno);
    }
}

int gort__netpoll_open(int fd, uint64_t tag)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET, .data.u64 = tag};
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

void gort__netpoll_close(int fd)
{
    struct epoll_event ev = {0};
    (void)epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &ev);
}

gort_g_t *gort__netpoll(int64_t delay)
{
    struct epoll_event evs[128];
    int n;
    /* The main thread must not block once the main goroutine has returned:
     * its break may have come before we owned the poller (exit.c, rule 3). */
    if (delay != 0 && gort__main_exit_due(gort__getm()))
        delay = 0;
    for (;;) {
        if (have_pwait2) {
            struct timespec ts, *tsp = NULL;
            if (delay >= 0) {
                ts.tv_sec = delay / 1000000000;
                ts.tv_nsec = delay % 1000000000;
                tsp = &ts;
            }
            n = epoll_pwait2(epfd, evs, 128, tsp, NULL);
            if (n < 0 && (errno == ENOSYS || errno == EPERM)) { /* old kernel, seccomp */
                have_pwait2 = false;
                gort__say_once("epoll_pwait2 is not available; timers wait in epoll_wait, to the millisecond");
                continue;
            }
        } else {
            int ms = delay < 0 ? -1 : (int)((delay + 999999) / 1000000);
            n = epoll_wait(epfd, evs, 128, ms);
        }
        if (n < 0) {
            if (errno == EINTR && delay != 0)
                return NULL; /* let the caller recompute the delay */
            if (errno == EINTR)
                continue;
            gort__throw("epoll_wait failed: %d", errno);
        }
        break;
    }
    gort_g_t *list = NULL;
    for (int i = 0; i < n; i++) {
        uint32_t e = evs[i].events;
        if (evs[i].data.u64 == 0) {
            uint64_t v;
            ssize_t r = read(breakfd, &v, sizeof v);
            (void)r;
            atomic_store(&breaking, 0);
            continue;
        }
        /* Errors and hang-ups wake both sides: the call that retries
         * reports them. */
        int mode = 0;
        if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI))
            mode += 'r';
        if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
            mode += 'w';
        if (mode)
            gort__netpollready(&list, evs[i].data.u64, mode, (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI)) != 0);
    }
    return list;
}

void gort__wake_netpoller(int64_t when)
{
    if (atomic_load_explicit(&gort__sched.lastpoll, memory_order_acquire) == 0) {
        /* An M is in the poller: break it if it would sleep past `when`.
         * A spurious wakeup is harmless; a missed one is not. */
        int64_t until = atomic_load_explicit(&gort__sched.pollUntil, memory_order_acquire);
        if (until == 0 || until > when)
            gort__netpoll_break();
    } else {
        /* Nobody is in the poller: get an M there to handle the timer. */
        gort__wakep();
    }
}
