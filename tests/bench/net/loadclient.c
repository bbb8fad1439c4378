/*
 * loadclient.c: the load for the echo servers (scripts/bench): one thread,
 * epoll, N connections, each a ping-pong of M-byte messages (the next one
 * goes out when the whole echo is back).  Plain C, no gort: the client
 * must cost the same whichever server it measures.
 *
 *   net-load ADDR:PORT CONNS SIZE SECONDS
 *       prints  LABEL req_per_s V req/s, LABEL p50_us V us, LABEL p99_us
 *       V us   (LABEL: echo_cCONNS_sSIZE), after a 0.5 s warm-up.
 *   net-load ADDR:PORT CONNS idle
 *       opens CONNS connections, echoes one 64-byte message on each,
 *       prints "ready", holds them until standard input closes.
 *
 * Latency is per message, from the send to the last byte of its echo,
 * in a histogram of 1 us buckets up to 1 s.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HIST_US 1000000

typedef struct conn {
    int fd;
    size_t sent, got;
    int64_t t0;
} conn_t;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "net-load: %s: %s\n", what, strerror(errno));
    exit(1);
}

static size_t size;
static char *out, *in;

static void send_msg(conn_t *c)
{
    c->t0 = now_ns();
    c->got = 0;
    c->sent = 0;
    while (c->sent < size) {
        ssize_t k = send(c->fd, out + c->sent, size - c->sent, MSG_NOSIGNAL);
        if (k < 0 && errno == EAGAIN)
            return; /* EPOLLOUT finishes it */
        if (k < 0)
            die("send");
        c->sent += (size_t)k;
    }
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: net-load ADDR:PORT CONNS SIZE SECONDS | ADDR:PORT CONNS idle\n");
        return 2;
    }
    char host[64];
    const char *colon = strrchr(argv[1], ':');
    if (!colon || (size_t)(colon - argv[1]) >= sizeof host)
        return 2;
    memcpy(host, argv[1], (size_t)(colon - argv[1]));
    host[colon - argv[1]] = 0;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return 2;
    int nconn = atoi(argv[2]);
    int idle = strcmp(argv[3], "idle") == 0;
    size = idle ? 64 : (size_t)atol(argv[3]);
    double seconds = argc > 4 ? atof(argv[4]) : 3;

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)nconn + 64) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    out = malloc(size);
    in = malloc(size);
    memset(out, 'x', size);
    conn_t *cs = calloc((size_t)nconn, sizeof *cs);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < nconn; i++) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0)
            die("socket");
        if (connect(s, (struct sockaddr *)&sa, sizeof sa) != 0)
            die("connect");
        int one = 1;
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK);
        cs[i].fd = s;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = &cs[i]};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) != 0)
            die("epoll_ctl");
        if (idle) {
            /* One exchange, blocking, so the server's goroutine has read. */
            fcntl(s, F_SETFL, fcntl(s, F_GETFL) & ~O_NONBLOCK);
            if (write(s, out, size) != (ssize_t)size)
                die("write");
            size_t got = 0;
            while (got < size) {
                ssize_t k = read(s, in, size - got);
                if (k <= 0)
                    die("read");
                got += (size_t)k;
            }
        }
    }
    if (idle) {
        printf("ready\n");
        fflush(stdout);
        char b[256];
        while (read(0, b, sizeof b) > 0) {
        }
        return 0;
    }

    uint32_t *hist = calloc(HIST_US + 1, sizeof *hist);
    for (int i = 0; i < nconn; i++)
        send_msg(&cs[i]);
    int64_t start = now_ns(), warm = start + 500000000, end = warm + (int64_t)(seconds * 1e9);
    long done = 0;
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, 100);
        int64_t t = now_ns();
        if (t >= end)
            break;
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            while (c->sent < size) { /* a send that EAGAIN'd */
                ssize_t k = send(c->fd, out + c->sent, size - c->sent, MSG_NOSIGNAL);
                if (k < 0 && errno == EAGAIN)
                    break;
                if (k < 0)
                    die("send");
                c->sent += (size_t)k;
            }
            for (;;) {
                ssize_t k = read(c->fd, in, size - c->got);
                if (k < 0 && errno == EAGAIN)
                    break;
                if (k <= 0)
                    die("read");
                c->got += (size_t)k;
                if (c->got == size) {
                    int64_t te = now_ns();
                    if (te >= warm) {
                        int64_t us = (te - c->t0) / 1000;
                        hist[us > HIST_US ? HIST_US : us]++;
                        done++;
                    }
                    send_msg(c);
                    if (c->sent < size)
                        break;
                }
            }
        }
    }
    double secs = (double)(end - warm) / 1e9;
    long p50 = 0, p99 = 0, acc = 0;
    for (long us = 0; us <= HIST_US; us++) {
        acc += hist[us];
        if (!p50 && acc * 2 >= done)
            p50 = us ? us : 1;
        if (!p99 && acc * 100 >= done * 99) {
            p99 = us ? us : 1;
            break;
        }
    }
    char label[64];
    snprintf(label, sizeof label, "echo_c%d_s%zu", nconn, size);
    printf("%s req_per_s %.0f req/s\n", label, (double)done / secs);
    printf("%s p50_us %ld us\n", label, p50);
    printf("%s p99_us %ld us\n", label, p99);
    return 0;
}
