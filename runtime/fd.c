/*
 * fd.c: gort_fd handles (include/gort_net.h): reads, writes, accepts and
 * connects that park on the netpoller.  Go's internal/poll (fd_unix.go,
 * fd_mutex.go, fd_poll_runtime.go) on netpoll.c's poll descriptors.
 *
 * A handle is a slot index and a generation.  Every call takes a
 * reference on the slot's pd (or a read or write turn, which includes
 * one) and only then compares generations: a reference on a pd that a
 * later open reused is given back at once, and the call fails with
 * -ECANCELED without touching the descriptor.  References are Go's
 * fdMutex, one 64-bit word:
 *
 *   bit 0      closed: no new reference, turn or waiter
 *   bit 1, 2   the read turn, the write turn
 *   bits 3-22  references (each turn, and each turn waiter, holds one)
 *   23-42      goroutines waiting for the read turn (rsema)
 *   43-62      goroutines waiting for the write turn (wsema)
 *
 * Close takes a reference (checking the generation), sets the closed bit,
 * releases every turn waiter, evicts the pd (every parked reader and writer wakes
 * with -ECANCELED), and drops its reference.  Whoever drops the last one
 * deregisters and closes the descriptor and releases csema; the closer
 * waits for that, and only then frees the pd for reuse.  So no call is
 * ever inside read(2) on a descriptor number that a later open owns.
 *
 * A turn waiter holds a reference while it waits, so the close's wait
 * covers the waiters it released: the pd and its semaphores pass to a
 * later open only once each has woken and given its reference back.  A
 * call on a stale handle fails before it queues; one that got in anyway
 * (the word read the same after a reuse) re-checks the generation when it
 * wakes, and again after it gets a turn, and gives back what it got.
 *
 * errno is read right after each call, inside gort__rt_enter, where the
 * goroutine cannot be preempted onto another thread.
 *
 * The drained-read shortcut.  A read resets rg (erasing edges for data it
 * is about to take) and then reads; Go reads again at its next call, which
 * after a message has been taken whole says EAGAIN and only then parks:
 * one system call per message for nothing.  On TCP we know when a read
 * emptied the receive queue: TCP_INQ's count of what it left is 0 (it
 * counts a FIN as 1), or, where TCP_INQ is refused, the read was short
 * (the kernel copies until the queue is empty or the buffer full).  Every
 * arrival after that raises an edge that lands in rg, which nothing resets
 * until the next read: so that read may wait on rg first and read only
 * after an edge (pd->rdrained).  No edge is lost: one that came before the
 * wait is READY in rg, one after it wakes the parked reader.  What still
 * needs a read without a later edge: an error (and, for the short-read
 * rule, a FIN) whose edge came before the reset erased it, and urgent
 * data, where the kernel stops a read at the mark.  Each reports
 * EPOLLRDHUP, EPOLLHUP, EPOLLERR or EPOLLPRI with its event, which sets
 * pd->rhup before its edge; the reset's acquire sees that, and a pd with
 * rhup never takes the shortcut.  Not for unix sockets: no TCP_INQ, and a
 * read stops early at a message that carries descriptors or other
 * credentials.  gort_fd_wait_read resets rg and so clears rdrained.
 */
#include "runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gort_net.h"

#define MU_CLOSED (1ull << 0)
#define MU_RLOCK (1ull << 1)
#define MU_WLOCK (1ull << 2)
#define MU_REF (1ull << 3)
#define MU_REFMASK (((1ull << 20) - 1) << 3)
#define MU_RWAIT (1ull << 23)
#define MU_RMASK (((1ull << 20) - 1) << 23)
#define MU_WWAIT (1ull << 43)
#define MU_WMASK (((1ull << 20) - 1) << 43)

static bool mu_incref(gort_pd_t *pd)
{
    uint64_t old = atomic_load_explicit(&pd->mu, memory_order_acquire);
    for (;;) {
        if (old & MU_CLOSED)
            return false;
        uint64_t new = old + MU_REF;
        if ((new & MU_REFMASK) == 0)
            gort__fatal("too many concurrent operations on a gort_fd");
        if (atomic_compare_exchange_weak_explicit(&pd->mu, &old, new, memory_order_acq_rel, memory_order_acquire))
            return true;
    }
}

/* True if this was the last reference of a closed pd. */
static bool mu_decref(gort_pd_t *pd)
{
    uint64_t old = atomic_load_explicit(&pd->mu, memory_order_acquire);
    for (;;) {
        if ((old & MU_REFMASK) == 0)
            gort__throw("inconsistent gort_fd reference count");
        uint64_t new = old - MU_REF;
        if (atomic_compare_exchange_weak_explicit(&pd->mu, &old, new, memory_order_acq_rel, memory_order_acquire))
            return (new & (MU_CLOSED | MU_REFMASK)) == MU_CLOSED;
    }
}

/* The closer, holding a reference: set the closed bit.  False if another
 * closer was first. */
static bool mu_close(gort_pd_t *pd)
{
    uint64_t old = atomic_load_explicit(&pd->mu, memory_order_acquire);
    for (;;) {
        if (old & MU_CLOSED)
            return false;
        uint64_t new = (old | MU_CLOSED) & ~(MU_RMASK | MU_WMASK);
        if (atomic_compare_exchange_weak_explicit(&pd->mu, &old, new, memory_order_acq_rel, memory_order_acquire)) {
            /* Each waiter we removed from the count gets one release; it
             * wakes, sees the closed bit (or another generation) and
             * fails. */
            for (; old & MU_RMASK; old -= MU_RWAIT)
                gort__semrelease(&pd->rsema, false, 0);
            for (; old & MU_WMASK; old -= MU_WWAIT)
                gort__semrelease(&pd->wsema, false, 0);
            return true;
        }
    }
}

static void fd_decref(gort_pd_t *pd);

/* A read or write turn on pd, for a handle of generation gen.  A waiter
 * holds a reference while it waits: the pd is not freed, and its
 * semaphores do not pass to a later open, until every waiter a close
 * released has woken and given its reference back.  (Before, a reader
 * whose pair had been closed and its slot reused could wait forever
 * behind the new owner's turn: net/reuse.)  False, holding nothing, if
 * the pd is closed or belongs to another open. */
static bool mu_rwlock(gort_pd_t *pd, bool read, uint32_t gen)
{
    uint64_t bit = read ? MU_RLOCK : MU_WLOCK, wait = read ? MU_RWAIT : MU_WWAIT,
             mask = read ? MU_RMASK : MU_WMASK;
    _Atomic uint32_t *sema = read ? &pd->rsema : &pd->wsema;
    bool ref = false; /* the reference a waiter holds */
    uint64_t old = atomic_load_explicit(&pd->mu, memory_order_acquire);
    for (;;) {
        /* A stale handle does not queue behind the new owner's turn. */
        if ((old & MU_CLOSED) || atomic_load_explicit(&pd->gen, memory_order_acquire) != gen) {
            if (ref)
                fd_decref(pd);
            return false;
        }
        uint64_t new = old + (ref ? 0 : MU_REF);
        if (!ref && (new & MU_REFMASK) == 0)
            gort__fatal("too many concurrent operations on a gort_fd");
        if (!(old & bit)) {
            new |= bit;
        } else {
            new += wait;
            if ((new & mask) == 0)
                gort__fatal("too many goroutines waiting on one gort_fd");
        }
        if (atomic_compare_exchange_weak_explicit(&pd->mu, &old, new, memory_order_acq_rel, memory_order_acquire)) {
            if (!(old & bit))
                return true;
            ref = true;
            /* The releaser (an unlock or the close) has taken our count
             * out of the word. */
            gort__semacquire(sema, false, WR_SEMACQUIRE, 0);
            old = atomic_load_explicit(&pd->mu, memory_order_acquire);
        }
    }
}

/* True if this was the last reference of a closed pd. */
static bool mu_rwunlock(gort_pd_t *pd, bool read)
{
    uint64_t bit = read ? MU_RLOCK : MU_WLOCK, wait = read ? MU_RWAIT : MU_WWAIT,
             mask = read ? MU_RMASK : MU_WMASK;
    uint64_t old = atomic_load_explicit(&pd->mu, memory_order_acquire);
    for (;;) {
        if (!(old & bit) || (old & MU_REFMASK) == 0)
            gort__throw("inconsistent gort_fd turn");
        uint64_t new = (old & ~bit) - MU_REF;
        if (old & mask)
            new -= wait;
        if (atomic_compare_exchange_weak_explicit(&pd->mu, &old, new, memory_order_acq_rel, memory_order_acquire)) {
            if (old & mask)
                gort__semrelease(read ? &pd->rsema : &pd->wsema, false, 0);
            return (new & (MU_CLOSED | MU_REFMASK)) == MU_CLOSED;
        }
    }
}

/* The last reference is gone: shut the descriptor and tell the closer. */
static void destroy(gort_pd_t *pd)
{
    gort__netpoll_close(pd->fd);
    close(pd->fd);
    gort__semrelease(&pd->csema, false, 0);
}

static void fd_decref(gort_pd_t *pd)
{
    if (mu_decref(pd))
        destroy(pd);
}

static void fd_rwunlock(gort_pd_t *pd, bool read)
{
    if (mu_rwunlock(pd, read))
        destroy(pd);
}

static gort_pd_t *slot_of(gort_fd h, int *err)
{
    uint32_t gen = (uint32_t)(h.h >> 32);
    gort_pd_t *pd = gen ? gort__pd_at((uint32_t)h.h) : NULL;
    *err = pd ? 0 : -EBADF;
    return pd;
}

static bool gen_ok(gort_pd_t *pd, gort_fd h)
{
    return atomic_load_explicit(&pd->gen, memory_order_acquire) == (uint32_t)(h.h >> 32);
}

/* A reference on h's pd, or -ECANCELED / -EBADF. */
static int fd_incref(gort_fd h, gort_pd_t **out)
{
    int e;
    gort_pd_t *pd = slot_of(h, &e);
    if (!pd)
        return e;
    if (!mu_incref(pd))
        return -ECANCELED;
    if (!gen_ok(pd, h)) {
        fd_decref(pd);
        return -ECANCELED;
    }
    *out = pd;
    return 0;
}

/* A read or write turn on h's pd. */
static int fd_rwlock(gort_fd h, bool read, gort_pd_t **out)
{
    int e;
    gort_pd_t *pd = slot_of(h, &e);
    if (!pd)
        return e;
    uint32_t gen = (uint32_t)(h.h >> 32);
    if (!mu_rwlock(pd, read, gen))
        return -ECANCELED;
    if (!gen_ok(pd, h)) {
        fd_rwunlock(pd, read);
        return -ECANCELED;
    }
    *out = pd;
    return 0;
}

/* ---- opening and closing ---- */

/* tcp: -1 to find out (the socket's protocol), else what the listener knows. */
static int open_fd(int sysfd, gort_fd *out, int tcp)
{
    if (sysfd < 0 || !out)
        return -EBADF;
    if (!gort__netpoll_inited())
        return -EPERM;
    struct stat st;
    if (fstat(sysfd, &st) != 0)
        return -errno;
    if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
        return -ENOTSUP;
    gort_pd_t *pd = gort__pd_alloc();
    if (!pd)
        return -ENOMEM;
    pd->is_sock = S_ISSOCK(st.st_mode);
    if (tcp < 0 && pd->is_sock) {
        int proto = 0;
        socklen_t pl = sizeof proto;
        tcp = getsockopt(sysfd, SOL_SOCKET, SO_PROTOCOL, &proto, &pl) == 0 && proto == IPPROTO_TCP;
    }
    pd->is_tcp = tcp > 0;
    pd->inq = 0;
    pd->unlink_path = NULL;
    int e = gort__pd_open(pd, sysfd);
    if (e == 0) {
        int fl = fcntl(sysfd, F_GETFL);
        if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(sysfd, F_SETFL, fl | O_NONBLOCK) != 0)) {
            e = -errno;
            gort__netpoll_close(sysfd);
        }
    }
    if (e != 0) {
        gort__pd_evict(pd);
        pd->fd = -1;
        gort__pd_free(pd);
        return e == -EPERM ? -ENOTSUP : e;
    }
    uint32_t gen = atomic_load_explicit(&pd->gen, memory_order_relaxed);
    /* Open for business: release, paired with the acquire in mu_incref;
     * the generation was published with it. */
    atomic_store_explicit(&pd->mu, 0, memory_order_release);
    out->h = (uint64_t)gen << 32 | pd->slot;
    return 0;
}

int gort_fd_open(int sysfd, gort_fd *out)
{
    gort_g_t *self = gort__rt_enter();
    int r = open_fd(sysfd, out, -1);
    gort__rt_leave_preempt(self);
    return r;
}

/* For net.c: a unix listener removes its path when it is closed. */
void gort__fd_unlink_on_close(uint64_t handle, char *path)
{
    gort_fd h = {handle};
    gort_pd_t *pd;
    if (fd_incref(h, &pd) == 0) {
        pd->unlink_path = path;
        fd_decref(pd);
    } else {
        free(path);
    }
}

int gort_fd_close(gort_fd h)
{
    gort_g_t *self = gort__rt_enter();
    gort_pd_t *pd;
    int e = fd_incref(h, &pd);
    if (e)
        goto out;
    if (!mu_close(pd)) {
        fd_decref(pd);
        e = -ECANCELED;
        goto out;
    }
    gort__pd_evict(pd);
    char *path = pd->unlink_path;
    pd->unlink_path = NULL;
    fd_decref(pd);
    /* Every call in progress has returned and the descriptor is closed
     * (destroy); only now may the pd go to another open. */
    gort__semacquire(&pd->csema, false, WR_SEMACQUIRE, 0);
    pd->fd = -1;
    gort__pd_free(pd);
    if (path) {
        unlink(path);
        free(path);
    }
out:
    gort__rt_leave_preempt(self);
    return e;
}

int gort_fd_sysfd(gort_fd h)
{
    gort_g_t *self = gort__rt_enter();
    gort_pd_t *pd;
    int r = fd_incref(h, &pd);
    if (r == 0) {
        r = pd->fd;
        fd_decref(pd);
    }
    gort__rt_leave_preempt(self);
    return r;
}

/* ---- I/O ---- */

/* A TCP read that also says how much it left behind (TCP_INQ, asked for
 * on the first read; *left -1: unknown).  recvmsg costs what read does. */
static ssize_t read_tcp(gort_pd_t *pd, void *buf, size_t n, int *left)
{
    *left = -1;
    if (pd->inq == 0) {
        int one = 1;
        pd->inq = setsockopt(pd->fd, IPPROTO_TCP, TCP_INQ, &one, sizeof one) == 0 ? 1 : -1;
    }
    if (pd->inq < 0)
        return read(pd->fd, buf, n);
    struct iovec iov = {.iov_base = buf, .iov_len = n};
    union {
        char b[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } cb;
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.b, .msg_controllen = sizeof cb.b};
    ssize_t k = recvmsg(pd->fd, &m, 0);
    if (k >= 0)
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
            if (c->cmsg_level == IPPROTO_TCP && c->cmsg_type == TCP_CM_INQ && c->cmsg_len >= CMSG_LEN(sizeof(int)))
                memcpy(left, CMSG_DATA(c), sizeof(int));
    return k;
}

static ssize_t do_read(gort_pd_t *pd, void *buf, size_t n)
{
    int e;
    if (pd->rdrained) {
        /* The last read took all there was: wait for an edge (or take
         * one that came since) instead of a read that would say EAGAIN.
         * On an error rdrained stays: rg still holds every edge since. */
        if ((e = gort__pd_wait(pd, 'r')) != 0)
            return e;
        pd->rdrained = false;
    } else if ((e = gort__pd_reset(pd, 'r')) != 0) {
        return e;
    }
    for (;;) {
        int left = -1;
        ssize_t k = pd->is_tcp ? read_tcp(pd, buf, n, &left) : read(pd->fd, buf, n);
        if (k >= 0) {
            /* It took all there was (see the top). */
            if (k > 0 && (left == 0 || (left < 0 && (size_t)k < n)) && pd->is_tcp &&
                !atomic_load_explicit(&pd->rhup, memory_order_relaxed))
                pd->rdrained = true;
            return k;
        }
        e = errno;
        if (e == EINTR)
            continue;
        if (e != EAGAIN)
            return -e;
        if ((e = gort__pd_wait(pd, 'r')) != 0)
            return e;
    }
}

ssize_t gort_fd_read(gort_fd h, void *buf, size_t n)
{
    gort_g_t *self = gort__rt_enter();
    gort_pd_t *pd;
    ssize_t r = fd_rwlock(h, true, &pd);
    if (r == 0) {
        r = do_read(pd, buf, n);
        fd_rwunlock(pd, true);
    }
    gort__rt_leave_preempt(self);
    return r;
}

/* write(2) to a pipe or terminal without SIGPIPE and without touching the
 * process's dispositions: block it on this thread, and take back a
 * SIGPIPE that this write raised (one that was pending before stays). */
static ssize_t write_nosigpipe(int fd, const void *buf, size_t n)
{
    sigset_t pipe, old;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, &old);
    sigset_t pend;
    sigpending(&pend);
    bool was_pending = sigismember(&pend, SIGPIPE);
    ssize_t k = write(fd, buf, n);
    int e = errno;
    if (k < 0 && e == EPIPE && !was_pending) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe, NULL, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return k;
}

static ssize_t do_write(gort_pd_t *pd, const char *buf, size_t n)
{
    int e = gort__pd_reset(pd, 'w');
    if (e)
        return e;
    size_t done = 0;
    for (;;) {
        ssize_t k = pd->is_sock ? send(pd->fd, buf + done, n - done, MSG_NOSIGNAL)
                                : write_nosigpipe(pd->fd, buf + done, n - done);
        if (k > 0)
            done += (size_t)k;
        if (done == n)
            return (ssize_t)n;
        if (k < 0) {
            e = errno;
            if (e == EINTR)
                continue;
            if (e == EAGAIN)
                e = -gort__pd_wait(pd, 'w');
            if (e)
                return done ? (ssize_t)done : -e;
        } else if (k == 0) {
            return done ? (ssize_t)done : -EIO;
        }
    }
}

ssize_t gort_fd_write(gort_fd h, const void *buf, size_t n)
{
    gort_g_t *self = gort__rt_enter();
    gort_pd_t *pd;
    ssize_t r = fd_rwlock(h, false, &pd);
    if (r == 0) {
        r = do_write(pd, buf, n);
        fd_rwunlock(pd, false);
    }
    gort__rt_leave_preempt(self);
    return r;
}

/* Readiness: poll(2) says whether it is ready now; an edge after that
 * lands in the wait slot, which the reset emptied before the poll. */
static int wait_ready(gort_fd h, bool read)
{
    gort_g_t *self = gort__rt_enter();
    gort_pd_t *pd;
    int mode = read ? 'r' : 'w';
    int r = fd_rwlock(h, read, &pd);
    if (r == 0) {
        r = gort__pd_reset(pd, mode);
        if (r == 0) {
            struct pollfd p = {.fd = pd->fd, .events = read ? POLLIN : POLLOUT};
            int k;
            while ((k = poll(&p, 1, 0)) < 0 && errno == EINTR) {
            }
            if (k == 0)
                r = gort__pd_wait(pd, mode);
        }
        fd_rwunlock(pd, read);
    }
    gort__rt_leave_preempt(self);
    return r;
}

int gort_fd_wait_read(gort_fd h) { return wait_ready(h, true); }
int gort_fd_wait_write(gort_fd h) { return wait_ready(h, false); }

/* EMFILE/ENFILE: nothing to accept until a descriptor is free, and the
 * listener stays readable, so waiting for an edge would spin.  Sleep,
 * doubling up to 100 ms, and give up on a close or the deadline. */
static int accept_backoff(gort_pd_t *pd, int64_t *delay)
{
    *delay = *delay ? (*delay * 2 > 100000000 ? 100000000 : *delay * 2) : 1000000;
    gort_sleep(*delay);
    return gort__pd_checkerr(pd, 'r');
}

static int do_accept(gort_pd_t *pd, struct sockaddr *addr, socklen_t *addrlen)
{
    int e = gort__pd_reset(pd, 'r');
    if (e)
        return e;
    int64_t delay = 0;
    for (;;) {
        int s = accept4(pd->fd, addr, addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (s >= 0)
            return s;
        e = errno;
        if (e == EINTR || e == ECONNABORTED)
            continue;
        if (e == EAGAIN)
            e = -gort__pd_wait(pd, 'r');
        else if (e == EMFILE || e == ENFILE)
            e = -accept_backoff(pd, &delay);
        if (e)
            return -e;
    }
}

int gort_fd_accept(gort_fd ln, gort_fd *conn, struct sockaddr *addr, socklen_t *addrlen)
{
    gort_g_t *self = gort__rt_enter();
    gort_pd_t *pd;
    int r = fd_rwlock(ln, true, &pd);
    if (r == 0) {
        r = do_accept(pd, addr, addrlen);
        bool tcp = pd->is_tcp;
        fd_rwunlock(pd, true);
        if (r >= 0) {
            int s = r;
            if (tcp) {
                /* As Go's TCPConn: small writes go out at once. */
                int one = 1;
                (void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            }
            r = open_fd(s, conn, tcp);
            if (r != 0)
                close(s);
        }
    }
    gort__rt_leave_preempt(self);
    return r;
}

static int do_connect(gort_pd_t *pd, const struct sockaddr *sa, socklen_t len)
{
    int e = gort__pd_reset(pd, 'w');
    if (e)
        return e;
    if (connect(pd->fd, sa, len) == 0)
        return 0;
    e = errno;
    if (e == EISCONN)
        return 0;
    if (e != EINPROGRESS && e != EALREADY && e != EINTR)
        return -e;
    for (;;) {
        if ((e = gort__pd_wait(pd, 'w')) != 0)
            return e;
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(pd->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
            return -errno;
        switch (soerr) {
        case EINPROGRESS:
        case EALREADY:
        case EINTR:
            break;
        case EISCONN:
            return 0;
        case 0: {
            /* The poller may wake us before the handshake ends (an edge
             * from before it): connected only if there is a peer. */
            struct sockaddr_storage ss;
            socklen_t ssl = sizeof ss;
            if (getpeername(pd->fd, (struct sockaddr *)&ss, &ssl) == 0)
                return 0;
            break;
        }
        default:
            return -soerr;
        }
    }
}

int gort_fd_connect(gort_fd h, const struct sockaddr *sa, socklen_t len)
{
    gort_g_t *self = gort__rt_enter();
    gort_pd_t *pd;
    int r = fd_rwlock(h, false, &pd);
    if (r == 0) {
        r = do_connect(pd, sa, len);
        fd_rwunlock(pd, false);
    }
    gort__rt_leave_preempt(self);
    return r;
}

/* ---- deadlines ---- */

static int set_deadline(gort_fd h, int64_t abs_ns, int mode)
{
    gort_g_t *self = gort__rt_enter();
    gort_pd_t *pd;
    int r = fd_incref(h, &pd);
    if (r == 0) {
        r = gort__pd_set_deadline(pd, abs_ns, mode);
        fd_decref(pd);
    }
    gort__rt_leave_preempt(self);
    return r;
}

int gort_fd_set_deadline(gort_fd h, int64_t abs_ns) { return set_deadline(h, abs_ns, 'r' + 'w'); }
int gort_fd_set_read_deadline(gort_fd h, int64_t abs_ns) { return set_deadline(h, abs_ns, 'r'); }
int gort_fd_set_write_deadline(gort_fd h, int64_t abs_ns) { return set_deadline(h, abs_ns, 'w'); }
