/*
 * epoll_echo.c: the ceiling for the echo benchmark (scripts/bench): a
 * plain single-threaded C epoll echo server with a 4 KiB buffer per
 * connection, no runtime.  Same lines as gort-bench echo-server:
 * "echo-server port N" once listening, served until standard input
 * closes, then cpu_seconds and rss.
 *
 *   epoll-echo [PORT] [et]
 *
 * Level-triggered by default: one read per readiness, none that returns
 * EAGAIN.  "et" registers edge-triggered and reads until EAGAIN, as a
 * goroutine server must (the read after each message that finds nothing):
 * the difference between the two is that extra read's price.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct conn {
    int fd;
    char buf[4096];
} conn_t;

static double rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double v = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            v = strtod(line + 6, NULL);
    if (f)
        fclose(f);
    return v;
}

/* Writes all of it; a full socket buffer (rare in a ping-pong) waits in
 * poll rather than complicating the loop. */
static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EAGAIN) {
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            poll(&pf, 1, -1);
            continue;
        }
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 0;
    int et = argc > 2 && strcmp(argv[2], "et") == 0;
    int ln = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(ln, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    if (bind(ln, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(ln, 65535) != 0 ||
        getsockname(ln, (struct sockaddr *)&sa, &sl) != 0) {
        perror("epoll-echo");
        return 1;
    }
    printf("echo-server port %d\n", ntohs(sa.sin_port));
    fflush(stdout);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ln, &ev);
    static conn_t stdin_tag;
    ev.data.ptr = &stdin_tag;
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (c == &stdin_tag) {
                char b[256];
                if (read(0, b, sizeof b) <= 0)
                    goto done;
                continue;
            }
            if (!c) {
                int s;
                while ((s = accept4(ln, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conn_t *nc = malloc(sizeof *nc);
                    nc->fd = s;
                    struct epoll_event cev = {.events = EPOLLIN | (et ? EPOLLET : 0), .data.ptr = nc};
                    epoll_ctl(ep, EPOLL_CTL_ADD, s, &cev);
                }
                continue;
            }
            for (;;) {
                ssize_t k = read(c->fd, c->buf, sizeof c->buf);
                if (k > 0 && write_all(c->fd, c->buf, (size_t)k) == 0) {
                    if (et)
                        continue; /* until EAGAIN */
                    break;
                }
                if (k < 0 && errno == EAGAIN)
                    break;
                close(c->fd); /* EOF or error */
                free(c);
                break;
            }
        }
    }
done:;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    printf("echo-server cpu_seconds %.3f s\n", cpu);
    printf("echo-server rss %.3f KiB\n", rss_kib());
    return 0;
}
