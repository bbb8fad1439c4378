/*
 * faults_prog.c: one short run through every call the fault shim can fail
 * (tests/faults/run drives it, with the soak and the examples).
 *
 *   gort-faults-prog PROFILE
 *
 * Goroutines enough to need new stack slabs and guards (mmap, mprotect,
 * MADV_GUARD_INSTALL), blocking calls that hand their P off (new threads:
 * pthread_create), timers (the poller: epoll_pwait2, its eventfd's
 * write), channels and a mutex (membarrier), a CPU profile written to
 * PROFILE (timer_create, timer_settime, write), a goroutine dump (write),
 * fork+exec and posix_spawn of /bin/true waited for with gort_waitpid, and
 * the netpoller: TCP echo over loopback (gort_net_listen, gort_net_dial,
 * gort_fd_accept: an epoll_ctl per descriptor) and a pipe through gort_fd
 * (its data written with write(2)), with goroutines parked on descriptors
 * so that the poller sleeps in epoll_pwait2 and is woken through its
 * eventfd.
 * Prints "profile: ok" or "profile: -ERRNO" (the documented outcome of a
 * refused timer or a failed write: then PROFILE must not exist), "net:
 * WHAT -ERRNO" for each network or pipe call that returned a negative
 * errno value (a registration the kernel refused, a failed write; the
 * peer then sees the descriptor closed), and "ok" at the end; exits 0
 * unless a result is wrong (data that arrived but differs is wrong).
 */
#include <gort.h>
#include <gort_net.h>
#include <gort_prof.h>
#include <gort_spawn.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define WORKERS 300
#define SLEEPERS 6

static const char *prof_path;
static int bad;

static void worker(void *arg)
{
    gort_chan *c = arg;
    long v = 0;
    for (int i = 0; i < 50; i++)
        v += i;
    gort_chan_send(c, &v);
}

static void sleeper(void *arg)
{
    gort_waitgroup *wg = arg;
    struct timespec ts = {0, 2 * 1000 * 1000};
    gort_nanosleep(&ts, NULL);
    gort_wg_done(wg);
}

static gort_mutex mu;
static long counter;

static void locker(void *arg)
{
    gort_waitgroup *wg = arg;
    for (int i = 0; i < 1000; i++) {
        gort_mutex_lock(&mu);
        counter++;
        gort_mutex_unlock(&mu);
    }
    gort_wg_done(wg);
}

static void spin_ms(int ms)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do {
        for (volatile int i = 0; i < 10000; i++)
            ;
        clock_gettime(CLOCK_MONOTONIC, &b);
    } while ((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < ms);
}

static void spawn_true(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/true", "true", (char *)NULL);
        _exit(127);
    }
    int st = -1;
    if (pid < 0 || gort_waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        printf("fork+exec: failed\n");
        bad++;
    }
    char *argv[] = {"true", NULL};
    int rc = gort_posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ);
    if (rc == 0 && (gort_waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)) {
        printf("posix_spawn: child failed\n");
        bad++;
    } else if (rc < 0) {
        printf("posix_spawn: %d\n", rc);
    }
}

/* ---- the netpoller ---- */

#define CONNS 8
#define MSG 64
#define PIPE_CHUNKS 16
#define CHUNK 4096

static void net_err(const char *what, long e) { printf("net: %s %ld (%s)\n", what, e, strerror((int)-e)); }

static void echo_conn(void *arg)
{
    gort_fd c = {(uint64_t)(uintptr_t)arg};
    char buf[256];
    for (;;) {
        ssize_t k = gort_fd_read(c, buf, sizeof buf);
        if (k <= 0) {
            if (k < 0)
                net_err("server read", k);
            break;
        }
        ssize_t w = gort_fd_write(c, buf, (size_t)k);
        if (w != k) {
            net_err("server write", w < 0 ? w : -EIO);
            break;
        }
    }
    gort_fd_close(c);
}

/* Accepts until the listener is closed (or an accept fails); closes the
 * listener either way, so that connections still in its backlog are reset
 * rather than left waiting for an echo. */
static gort_fd net_ln;
static char net_addr[64];

static void acceptor(void *arg)
{
    gort_waitgroup *wg = arg;
    for (;;) {
        gort_fd c;
        int e = gort_fd_accept(net_ln, &c, NULL, NULL);
        if (e < 0) {
            if (e != -ECANCELED)
                net_err("accept", e);
            break;
        }
        gort_go(echo_conn, (void *)(uintptr_t)c.h);
    }
    gort_fd_close(net_ln);
    gort_wg_done(wg);
}
static void client(void *arg)
{
    gort_waitgroup *wg = arg;
    gort_fd c;
    int e = gort_net_dial("tcp", net_addr, 0, &c);
    if (e < 0) {
        net_err("dial", e);
        gort_wg_done(wg);
        return;
    }
    char msg[MSG], got[MSG];
    for (int i = 0; i < MSG; i++)
        msg[i] = (char)('a' + (i + (int)(c.h & 7)) % 26);
    ssize_t w = gort_fd_write(c, msg, MSG);
    size_t have = 0;
    if (w != MSG) {
        net_err("client write", w < 0 ? w : -EIO);
    } else {
        while (have < MSG) {
            ssize_t k = gort_fd_read(c, got + have, MSG - have);
            if (k <= 0) {
                if (k < 0)
                    net_err("client read", k);
                break;
            }
            have += (size_t)k;
        }
    }
    /* What arrived must be what was sent; less is the peer's error. */
    if (memcmp(got, msg, have) != 0) {
        printf("net: echo differs\n");
        bad++;
    }
    gort_fd_close(c);
    gort_wg_done(wg);
}

static gort_fd pipe_r, pipe_w;

static void pipe_writer(void *arg)
{
    gort_waitgroup *wg = arg;
    static char chunk[CHUNK];
    memset(chunk, 7, sizeof chunk);
    for (int i = 0; i < PIPE_CHUNKS; i++) {
        ssize_t w = gort_fd_write(pipe_w, chunk, sizeof chunk);
        if (w != (ssize_t)sizeof chunk) {
            net_err("pipe write", w < 0 ? w : -EIO);
            break;
        }
    }
    gort_fd_close(pipe_w);
    gort_wg_done(wg);
}

static void pipe_reader(void *arg)
{
    gort_waitgroup *wg = arg;
    char buf[CHUNK];
    long total = 0;
    for (;;) {
        ssize_t k = gort_fd_read(pipe_r, buf, sizeof buf);
        if (k <= 0) {
            if (k < 0)
                net_err("pipe read", k);
            break;
        }
        for (ssize_t i = 0; i < k; i++)
            if (buf[i] != 7) {
                printf("pipe: data differs\n");
                bad++;
                break;
            }
        total += k;
    }
    if (total > (long)PIPE_CHUNKS * CHUNK) {
        printf("pipe: %ld bytes, more than written\n", total);
        bad++;
    }
    gort_fd_close(pipe_r);
    gort_wg_done(wg);
}

static void netpoller(void)
{
    gort_waitgroup wg = {0}, acc = {0};
    int e = gort_net_listen("tcp", "127.0.0.1:0", &net_ln);
    if (e < 0) {
        net_err("listen", e);
    } else if ((e = gort_fd_local_addr(net_ln, net_addr, sizeof net_addr)) < 0) {
        net_err("local addr", e);
        gort_fd_close(net_ln);
    } else {
        gort_wg_add(&acc, 1);
        gort_go(acceptor, &acc);
        gort_wg_add(&wg, CONNS);
        for (int i = 0; i < CONNS; i++)
            gort_go(client, &wg);
        gort_wg_wait(&wg);
        gort_fd_close(net_ln); /* ends the acceptor's gort_fd_accept */
        gort_wg_wait(&acc);
    }
    int p[2];
    if (pipe(p) != 0) {
        printf("pipe: %s\n", strerror(errno));
        bad++;
        return;
    }
    if ((e = gort_fd_open(p[0], &pipe_r)) < 0) {
        net_err("pipe open", e);
        close(p[0]);
        close(p[1]);
        return;
    }
    if ((e = gort_fd_open(p[1], &pipe_w)) < 0) {
        net_err("pipe open", e);
        close(p[1]);
        gort_fd_close(pipe_r);
        return;
    }
    gort_wg_add(&wg, 2);
    gort_go(pipe_reader, &wg);
    gort_go(pipe_writer, &wg);
    gort_wg_wait(&wg);
}

static void body(void *arg)
{
    (void)arg;
    int prc = gort_cpuprofile_start(prof_path, 1000);
    gort_chan *c = gort_chan_make(sizeof(long), 16);
    for (int i = 0; i < WORKERS; i++)
        gort_go(worker, c);
    long sum = 0, v;
    for (int i = 0; i < WORKERS; i++) {
        gort_chan_recv(c, &v);
        sum += v;
    }
    if (sum != (long)WORKERS * 1225) {
        printf("sum %ld\n", sum);
        bad++;
    }
    gort_waitgroup wg = {0};
    gort_wg_add(&wg, SLEEPERS + 4);
    for (int i = 0; i < SLEEPERS; i++)
        gort_go(sleeper, &wg);
    for (int i = 0; i < 4; i++)
        gort_go(locker, &wg);
    gort_sleep(3 * 1000 * 1000);
    spin_ms(20);
    gort_wg_wait(&wg);
    if (counter != 4000) {
        printf("counter %ld\n", counter);
        bad++;
    }
    spawn_true();
    netpoller();
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    gort_dump(devnull);
    close(devnull);
    if (prc == 0)
        prc = gort_cpuprofile_stop();
    if (prc == 0)
        printf("profile: ok\n");
    else
        printf("profile: %d (%s)\n", prc, strerror(-prc));
    gort_chan_close(c);
}

int main(int argc, char **argv)
{
    prof_path = argc > 1 ? argv[1] : "/tmp/gort-faults-prog.prof";
    gort_main(body, NULL);
    printf(bad ? "FAILED\n" : "ok\n");
    return bad ? 1 : 0;
}
