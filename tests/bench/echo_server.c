/* echo-server [PORT]: a TCP echo server on 127.0.0.1:PORT (0: any free
 * port), one goroutine and a 4 KiB buffer per connection, as the Go
 * peer's.  Prints "echo-server port N" once listening; serves until
 * standard input reaches EOF, then prints its CPU seconds, RSS and
 * goroutine count.  Load comes from tests/bench/net/loadclient.c
 * (scripts/bench runs it). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench.h"
#include "gort_net.h"

static long port;

static void conn(void *arg)
{
    gort_fd c = {(uint64_t)(uintptr_t)arg};
    char *buf = malloc(4096);
    for (;;) {
        ssize_t n = gort_fd_read(c, buf, 4096);
        if (n > 0 && gort_fd_write(c, buf, (size_t)n) != n)
            break;
        if (n <= 0)
            break;
    }
    free(buf);
    gort_fd_close(c);
}

static void acceptor(void *arg)
{
    gort_fd ln = {(uint64_t)(uintptr_t)arg};
    gort_fd c;
    while (gort_fd_accept(ln, &c, NULL, NULL) == 0)
        gort_go(conn, (void *)(uintptr_t)c.h);
}

static double cpu, rss;
static int goroutines;

static void body(void *arg)
{
    (void)arg;
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%ld", port);
    gort_fd ln;
    int e = gort_net_listen("tcp", addr, &ln);
    if (e != 0)
        bench_fail("echo-server: listen %s: %s", addr, strerror(-e));
    gort_fd_local_addr(ln, addr, sizeof addr);
    printf("echo-server port %s\n", strrchr(addr, ':') + 1);
    fflush(stdout);
    gort_go(acceptor, (void *)(uintptr_t)ln.h);
    char buf[4096];
    while (gort_read(0, buf, sizeof buf) > 0) {
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    rss = bench_rss_kib();
    goroutines = gort_numgoroutine();
}

void bench_echo_server(int argc, char **argv)
{
    port = bench_arg(argc, argv, 2, 0);
    bench_run_main(body, NULL);
    bench_report("echo-server", "cpu_seconds", cpu, "s");
    bench_report("echo-server", "rss", rss, "KiB");
    bench_report("echo-server", "goroutines", goroutines, "count");
}
