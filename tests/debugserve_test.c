/*
 * debugserve_test.c: the live debug endpoint over real sockets (issue 23).
 *
 * A child program serves (GORT_DEBUG_ADDR=:0; its stderr line names the
 * port) while this process, a plain client on blocking sockets, talks to
 * it:
 *   tools      go tool pprof -top against profile?seconds=2 names the hot
 *              function and against goroutine a parked one; gortprof reads
 *              the same URLs and the trace; the index renders in headless Chromium
 *              (DOM and screenshot);
 *   dump       goroutine?debug=2 and the SIGQUIT dump show the parked
 *              goroutine's record identically;
 *   idle       with nobody connected, the program makes no more context
 *              switches or timer firings over a second than without the
 *              server;
 *   hostile    garbage (400), a 200 KB header (431), 200 idle connections
 *              (closed by the idle deadline), a half-sent request (cut off
 *              by the read deadline), a client that never reads (cut off by
 *              the write deadline), and between them ordinary requests are
 *              answered; the child then exits with no connection left;
 *   conn_cap   past the connection cap, 503;
 *   hostile_many  the same mix, gt_scale_n(200) requests (make
 *              debug-hostile: 10,000 under ASan, whose leak check runs as
 *              the child exits).
 * The parts that need go or chromium are skipped (gt_have) when those are
 * missing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "debughttp.h"
#include "gort_prof.h"
#include "test.h"

#define MS 1000000LL

/* ---- the child ---- */

static _Atomic int hot_stop;

__attribute__((noinline)) static uint64_t debugsrv_hot_step(uint64_t x)
{
    for (int i = 0; i < 1000; i++)
        x = x * 6364136223846793005ull + 1442695040888963407ull;
    return x;
}

__attribute__((noinline)) static void debugsrv_hot(void *arg)
{
    (void)arg;
    volatile uint64_t x = 1;
    while (!atomic_load_explicit(&hot_stop, memory_order_relaxed))
        x = debugsrv_hot_step(x);
}

static gort_chan *never;

__attribute__((noinline)) static void debugsrv_parked(void *arg)
{
    (void)arg;
    int v;
    gort_chan_recv(never, &v);
    __asm__ volatile("" ::: "memory");
}

/* Until stdin closes; then waits for connections to drain and says so. */
static void child_main(void *arg)
{
    bool work = arg != NULL;
    never = gort_chan_make(sizeof(int), 0);
    gort_go(debugsrv_parked, NULL);
    if (work)
        gort_go(debugsrv_hot, NULL);
    gort_sleep(20 * MS); /* debugsrv_parked parks */
    printf("debugsrv: ready\n");
    fflush(stdout);
    char c;
    while (gort_read(0, &c, 1) > 0) {
    }
    atomic_store(&hot_stop, 1);
    for (int i = 0; i < 200 && gort__debug_conns() > 0; i++)
        gort_sleep(50 * MS);
    printf("debugsrv: conns=%d served=%llu\n", gort__debug_conns(), (unsigned long long)gort__debug_served());
    fflush(stdout);
}

static void short_limits(void)
{
    /* Idle longer than read, so that each deadline shows on its own. */
    gort__debug_limits_t l = {.read_ns = 1000 * MS, .idle_ns = 3000 * MS, .write_ns = 1000 * MS, .max_conns = 1000};
    const char *cap = getenv("DEBUGSRV_MAXCONNS");
    if (cap)
        l.max_conns = atoi(cap);
    gort__debug_set_limits(&l);
}

GT_CHILD(debugsrv_work) { gort_main(child_main, (void *)1); }

GT_CHILD(debugsrv_plain)
{
    short_limits();
    gort_main(child_main, NULL);
}

/* Idle cost: context switches and timers over a second with the server up
 * and nobody connected, against the same second without it. */
static void idle_main(void *arg)
{
    if (arg) {
        int port = gort_debug_serve(":0");
        if (port <= 0)
            printf("serve failed: %d\n", port);
    }
    gort_sleep(200 * MS);
    gort_stats a, b;
    gort_stats_get(&a);
    gort_sleep(1000 * MS);
    gort_stats_get(&b);
    printf("idle: switches=%llu timers=%llu\n", (unsigned long long)(b.context_switches - a.context_switches),
           (unsigned long long)(b.timers_fired - a.timers_fired));
}

GT_CHILD(debugsrv_idle_on) { gort_main(idle_main, (void *)1); }
GT_CHILD(debugsrv_idle_off) { gort_main(idle_main, NULL); }

/* ---- the client side ---- */

typedef struct server {
    pid_t pid;
    int in, out; /* its stdin (we close it to stop it), its stdout+stderr */
    int port;
    char log[1 << 16];
    size_t loglen;
} server_t;

/* 1: read some, 0: EOF or an error, -1: nothing within timeout_ms. */
static int read_log(server_t *s, int timeout_ms)
{
    struct pollfd p = {s->out, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0)
        return -1;
    if (s->loglen + 1 >= sizeof s->log)
        s->loglen = 0; /* keep the tail; a huge log is a failure anyway */
    ssize_t n = read(s->out, s->log + s->loglen, sizeof s->log - 1 - s->loglen);
    if (n <= 0)
        return 0;
    s->loglen += (size_t)n;
    s->log[s->loglen] = 0;
    return 1;
}

static bool server_start_env(server_t *s, const char *child, const char *env);
static bool server_start(server_t *s, const char *child) { return server_start_env(s, child, NULL); }

static bool server_start_env(server_t *s, const char *child, const char *env)
{
    memset(s, 0, sizeof *s);
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC))
        return false;
    s->pid = fork();
    if (s->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(out[1], 2);
        setenv("GORT_DEBUG_ADDR", ":0", 1);
        if (env)
            putenv((char *)env);
        execl(gt_self_path(), "gort-test", "--child", child, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    s->in = in[1];
    s->out = out[0];
    const char *key = "gort: debug server on http://127.0.0.1:";
    for (int i = 0; i < 200 && !(strstr(s->log, key) && strstr(s->log, "debugsrv: ready\n")); i++)
        read_log(s, 100);
    const char *k = strstr(s->log, key);
    if (k)
        s->port = atoi(k + strlen(key));
    if (s->port <= 0)
        fprintf(stderr, "\n  server did not start:\n%s\n", s->log);
    return s->port > 0;
}

/* Closes its stdin and collects the rest of its output; its exit status. */
static int server_stop(server_t *s, int sig)
{
    /* A signal's dump must not race the child's own exit at EOF. */
    if (sig)
        kill(s->pid, sig);
    else
        close(s->in);
    for (int i = 0; i < 300 && read_log(s, 100) != 0; i++) {
    }
    if (sig)
        close(s->in);
    int st = 0;
    for (int i = 0; i < 200 && waitpid(s->pid, &st, WNOHANG) == 0; i++)
        usleep(50000);
    if (waitpid(s->pid, &st, WNOHANG) == 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, &st, 0);
    }
    close(s->out);
    return st;
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool send_all(int fd, const char *b, size_t n)
{
    while (n) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        b += w;
        n -= (size_t)w;
    }
    return true;
}

/* Reads to EOF (or an error); returns what came, NUL-terminated. */
static char *read_all(int fd, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    for (;;) {
        if (n + 4096 >= cap)
            b = realloc(b, cap *= 2);
        ssize_t r = recv(fd, b + n, cap - n - 1, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    b[n] = 0;
    if (len)
        *len = n;
    return b;
}

/* One request on a fresh connection ("Connection: close"); the status, and
 * the whole answer in *out (free it). */
static int request(int port, const char *raw, char **out)
{
    int fd = dial(port);
    if (fd < 0)
        return -1;
    send_all(fd, raw, strlen(raw));
    char *b = read_all(fd, NULL);
    close(fd);
    int st = -1;
    sscanf(b, "HTTP/1.1 %d", &st);
    if (out)
        *out = b;
    else
        free(b);
    return st;
}

static int get(int port, const char *target, char **out)
{
    char raw[512];
    snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", target);
    return request(port, raw, out);
}

static const char *body_of(const char *answer)
{
    const char *e = strstr(answer, "\r\n\r\n");
    return e ? e + 4 : "";
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Runs argv; passes when it exits with status and its output holds want
 * (printed otherwise). */
static void run_expect(const char *const *argv, const char *const *env, int timeout_s, int status,
                       const char *want)
{
    gt_child_result r;
    CU_ASSERT_EQUAL(gt_cmd_run(argv, env, timeout_s, &r), 0);
    bool ok = r.exited && r.status == status && gt_contains(r.out, want);
    CU_ASSERT(ok);
    if (!ok)
        fprintf(stderr, "\n%s: want status %d and \"%s\"; got:\n%s\n", argv[0], status, want, r.out);
    gt_child_free(&r);
}

static void test_tools(void)
{
    GT_SKIP_UNDER_TSAN("SIGPROF waits for an intercepted call");
    server_t *s = malloc(sizeof *s);
    CU_ASSERT_FATAL(server_start(s, "debugsrv_work"));
    char url[256], base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d/debug/pprof", s->port);
    if (gt_have("go")) {
        char ptmp[128];
        snprintf(ptmp, sizeof ptmp, "PPROF_TMPDIR=%s", gt_tmp("pprof"));
        CU_ASSERT(mkdir(ptmp + strlen("PPROF_TMPDIR="), 0700) == 0 || errno == EEXIST);
        const char *env[] = {ptmp, NULL};
        snprintf(url, sizeof url, "%s/profile?seconds=2", base);
        run_expect((const char *[]){"go", "tool", "pprof", "-top", url, NULL}, env, 120, 0, "debugsrv_hot");
        snprintf(url, sizeof url, "%s/goroutine", base);
        run_expect((const char *[]){"go", "tool", "pprof", "-top", url, NULL}, env, 120, 0, "debugsrv_parked");
    }
    const char *gp = gt_gortprof_path();
    snprintf(url, sizeof url, "%s/profile?seconds=1", base);
    run_expect((const char *[]){gp, "top", url, NULL}, NULL, 60, 0, "debugsrv_hot");
    snprintf(url, sizeof url, "%s/goroutine?debug=2", base);
    run_expect((const char *[]){gp, "goroutines", url, NULL}, NULL, 60, 0, "debugsrv_parked");
    snprintf(url, sizeof url, "%s/trace?seconds=0.5", base);
    run_expect((const char *[]){gp, "trace", url, NULL}, NULL, 60, 0, "debugsrv_hot");
    snprintf(url, sizeof url, "%s/heap", base);
    run_expect((const char *[]){gp, "top", url, NULL}, NULL, 60, 1, "404 Not Found: gort has no heap profile");
    if (gt_have("chromium")) {
        snprintf(url, sizeof url, "%s/", base);
        char png[128], shot[160];
        snprintf(png, sizeof png, "%s", gt_tmp("index.png"));
        snprintf(shot, sizeof shot, "--screenshot=%s", png);
        /* One run (Chromium takes seconds to start): the DOM and a picture. */
        const char *a6[] = {"chromium", "--headless",  "--no-sandbox", "--disable-gpu", "--window-size=800,600",
                            shot,       "--dump-dom", url,            NULL};
        gt_child_result r;
        CU_ASSERT_EQUAL(gt_cmd_run(a6, NULL, 90, &r), 0);
        CU_ASSERT(gt_contains(r.out, "<a href=\"goroutine?debug=1\">goroutine</a>"));
        CU_ASSERT(gt_contains(r.out, "full goroutine stack dump"));
        gt_child_free(&r);
        /* A page of text, not a blank one (that is a few KB). */
        struct stat st;
        CU_ASSERT(stat(png, &st) == 0 && st.st_size > 10000);
    }
    CU_ASSERT_EQUAL(server_stop(s, 0), 0);
    CU_ASSERT(gt_contains(s->log, "debugsrv: conns=0 "));
    free(s);
}

/* The record of the goroutine parked in debugsrv_parked: from its
 * "goroutine N [" line to the blank line after it, or to a sanitizer's
 * "==PID==" line (ASan warns of the signal handler's stack switch in the
 * middle of a SIGQUIT dump). */
static char *parked_record(const char *text)
{
    const char *f = strstr(text, "\ndebugsrv_parked(");
    if (!f)
        return NULL;
    const char *b = f;
    while (b > text && !(b[-1] == '\n' && !strncmp(b, "goroutine ", 10)))
        b--;
    const char *e = strstr(f, "\n\n"), *san = strstr(f, "\n==");
    if (!e)
        e = f + strlen(f);
    if (san && san < e)
        e = san;
    while (e > b && e[-1] == '\n')
        e--;
    return strndup(b, (size_t)(e - b));
}

static void test_dump(void)
{
    GT_SKIP_UNDER_TSAN("SIGQUIT waits for an intercepted call");
    server_t *s = malloc(sizeof *s);
    CU_ASSERT_FATAL(server_start(s, "debugsrv_plain"));
    char *a = NULL;
    CU_ASSERT_EQUAL(get(s->port, "/debug/pprof/goroutine?debug=2", &a), 200);
    CU_ASSERT(gt_contains(a, "Content-Type: text/plain; charset=utf-8\r\n"));
    char *web = parked_record(body_of(a));
    free(a);
    s->loglen = 0;
    s->log[0] = 0;
    server_stop(s, SIGQUIT);
    CU_ASSERT(gt_contains(s->log, "SIGQUIT"));
    char *quit = parked_record(s->log);
    CU_ASSERT_PTR_NOT_NULL(web);
    CU_ASSERT_PTR_NOT_NULL(quit);
    if (web && quit) {
        CU_ASSERT_STRING_EQUAL(web, quit);
        CU_ASSERT(gt_contains(web, "[chan receive]:\n"));
        if (strcmp(web, quit))
            fprintf(stderr, "\n  debug=2:\n%s\n  SIGQUIT:\n%s\n", web, quit);
    }
    free(web);
    free(quit);
    free(s);
}

static void idle_counts(const char *child, long *sw, long *tm)
{
    gt_child_result r;
    *sw = *tm = -1;
    const char *env[] = {"GORT_MAXPROCS=2", NULL};
    CU_ASSERT_EQUAL_FATAL(gt_child_run(child, env, 30, &r), 0);
    const char *l = strstr(r.out, "idle: ");
    if (l)
        sscanf(l, "idle: switches=%ld timers=%ld", sw, tm);
    else
        fprintf(stderr, "\n%s\n", r.out);
    gt_child_free(&r);
}

static void test_idle(void)
{
    long sw_on, tm_on, sw_off, tm_off;
    idle_counts("debugsrv_idle_on", &sw_on, &tm_on);
    idle_counts("debugsrv_idle_off", &sw_off, &tm_off);
    printf("(switches %ld vs %ld, timers %ld vs %ld) ", sw_on, sw_off, tm_on, tm_off);
    CU_ASSERT(sw_on >= 0 && sw_on <= sw_off + 2);
    CU_ASSERT(tm_on >= 0 && tm_on <= tm_off + 1);
}

/* ---- hostile clients ---- */

static void expect_ok(int port)
{
    char *a = NULL;
    int st = get(port, "/debug/pprof/", &a);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT(gt_contains(a, "Types of profiles available"));
    free(a);
}

static void garbage(int port)
{
    static const char g[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n";
    int fd = dial(port);
    send_all(fd, g, sizeof g - 1);
    char *b = read_all(fd, NULL);
    close(fd);
    CU_ASSERT(!strncmp(b, "HTTP/1.1 400 ", 13));
    free(b);
}

static void big_header(int port)
{
    size_t n = 200 * 1024;
    char *h = malloc(n + 64);
    strcpy(h, "GET /debug/pprof/ HTTP/1.1\r\nX-Big: ");
    size_t k = strlen(h);
    memset(h + k, 'a', n - k);
    memcpy(h + n, "\r\n\r\n", 4);
    int fd = dial(port);
    send_all(fd, h, n + 4); /* the server reads 64 KiB, answers, drops the rest */
    char *b = read_all(fd, NULL);
    close(fd);
    CU_ASSERT(!strncmp(b, "HTTP/1.1 431 ", 13));
    free(b);
    free(h);
}

/* A request never finished: the read deadline (1 s here, from its first
 * byte) closes it, well before the idle deadline (3 s) would. */
static void half_sent(int port)
{
    int fd = dial(port);
    send_all(fd, "GET /debug/pprof/ HTTP/1.1\r\nHost:", 33);
    expect_ok(port);
    double t0 = now_s();
    char c;
    ssize_t r = recv(fd, &c, 1, 0);
    CU_ASSERT(r <= 0);
    printf("(half-sent request cut off after %.1f s) ", now_s() - t0);
    CU_ASSERT(now_s() - t0 < 2.5);
    close(fd);
}

/* A client that sends requests and never reads: the server's writes fill
 * the socket buffers, the write deadline cuts it off, and what the client
 * finally reads is short of an answer per request. */
static void never_reads(int port)
{
    int fd = dial(port);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    static const char req[] = "GET /debug/pprof/ HTTP/1.1\r\nHost: x\r\n\r\n";
    long sent = 0;
    double t0 = now_s();
    /* Answers to 5,000 requests (about 10 MB) outgrow any socket buffers. */
    while (sent < 5000 && now_s() - t0 < 3) {
        ssize_t w = send(fd, req, sizeof req - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w != (ssize_t)(sizeof req - 1))
            break; /* the buffers are full: the server stopped reading */
        sent++;
    }
    expect_ok(port);      /* others are served meanwhile */
    usleep(2000 * 1000);  /* past the write deadline (1 s) */
    /* What is still buffered, then the end: the server has closed. */
    struct timeval tv = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t cap = 1 << 20, n = 0;
    char *b = malloc(cap);
    bool closed = false;
    for (double t1 = now_s(); now_s() - t1 < 5;) {
        if (n + 65536 >= cap)
            b = realloc(b, cap *= 2);
        ssize_t r = recv(fd, b + n, cap - n - 1, 0);
        if (r < 0 && errno == EAGAIN)
            continue;
        if (r <= 0) {
            closed = true;
            break;
        }
        n += (size_t)r;
    }
    b[n] = 0;
    long answers = 0;
    for (const char *p = b; (p = strstr(p, "HTTP/1.1 200 OK")); p++)
        answers++;
    printf("(never-reading client: %ld requests sent, %ld answers read, %s) ", sent, answers,
           closed ? "cut off" : "still open after 5 s");
    CU_ASSERT(sent > 1000);
    CU_ASSERT(closed);
    CU_ASSERT(answers < sent);
    free(b);
    close(fd);
}

/* n connections that never send: the idle deadline (3 s here) closes
 * each; we wait for every EOF at most 15 s. */
static void idle_conns(int port, int n)
{
    struct pollfd *p = calloc((size_t)n, sizeof *p);
    for (int i = 0; i < n; i++)
        p[i] = (struct pollfd){.fd = dial(port), .events = POLLIN};
    expect_ok(port);
    int closed = 0;
    double t0 = now_s();
    while (closed < n && now_s() - t0 < 15) {
        if (poll(p, (nfds_t)n, 500) <= 0)
            continue;
        for (int i = 0; i < n; i++) {
            char c;
            if (p[i].fd >= 0 && p[i].revents && recv(p[i].fd, &c, 1, MSG_DONTWAIT) <= 0 && errno != EAGAIN) {
                close(p[i].fd);
                p[i].fd = -1;
                closed++;
            }
        }
    }
    printf("(%d idle connections closed after %.1f s) ", closed, now_s() - t0);
    CU_ASSERT_EQUAL(closed, n);
    for (int i = 0; i < n; i++)
        if (p[i].fd >= 0)
            close(p[i].fd);
    free(p);
}

static void keepalive(int port)
{
    int fd = dial(port);
    const char *r2 = "GET /debug/gort/stats HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /debug/pprof/heap HTTP/1.1\r\nHost: x\r\n\r\n"
                     "HEAD /debug/pprof/cmdline HTTP/1.1\r\nHost: x\r\n\r\n"
                     "POST /debug/pprof/symbol HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n0x1"
                     "GET /debug/pprof/ HTTP/1.1\r\nConnection: close\r\n\r\n";
    send_all(fd, r2, strlen(r2));
    char *b = read_all(fd, NULL);
    int answers = 0;
    for (const char *p = b; (p = strstr(p, "HTTP/1.1 200 OK")); p++)
        answers++;
    CU_ASSERT_EQUAL(answers, 4);
    CU_ASSERT(gt_contains(b, "HTTP/1.1 404 Not Found"));
    CU_ASSERT(gt_contains(b, "\"goroutines_live\""));
    CU_ASSERT(gt_contains(b, "num_symbols: 1"));
    free(b);
    close(fd);
}

static void test_hostile(void)
{
    server_t *s = malloc(sizeof *s);
    CU_ASSERT_FATAL(server_start(s, "debugsrv_plain"));
    keepalive(s->port);
    garbage(s->port);
    expect_ok(s->port);
    big_header(s->port);
    expect_ok(s->port);
    CU_ASSERT_EQUAL(get(s->port, "/nope", NULL), 404);
    CU_ASSERT_EQUAL(request(s->port, "DELETE /debug/pprof/ HTTP/1.1\r\n\r\n", NULL), 405);
    CU_ASSERT_EQUAL(request(s->port, "GET / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n", NULL), 413);
    idle_conns(s->port, 200);
    half_sent(s->port);
    never_reads(s->port);
    expect_ok(s->port);
    int st = server_stop(s, 0);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CU_ASSERT(gt_contains(s->log, "debugsrv: conns=0 "));
    if (!gt_contains(s->log, "debugsrv: conns=0 ") || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fprintf(stderr, "\nserver: %s %d\n%s\n", WIFEXITED(st) ? "exit" : "signal",
                WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), s->log);
    free(s);
}

/* Many hostile clients at once, from a few threads. */
typedef struct many {
    int port, rounds;
    _Atomic int bad;
} many_t;

static void *many_worker(void *arg)
{
    many_t *m = arg;
    char *big = malloc(100 * 1024);
    memset(big, 'b', 100 * 1024);
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    for (int i = 0; i < m->rounds; i++) {
        int fd = dial(m->port);
        if (fd < 0) {
            m->bad++;
            continue;
        }
        const char *want = "HTTP/1.1 200";
        switch (i % 5) {
        case 0:
            send_all(fd, "\x01\x02garbage\r\n\r\n", 13);
            want = "HTTP/1.1 400";
            break;
        case 1:
            send_all(fd, big, 100 * 1024);
            want = "HTTP/1.1 431";
            break;
        case 2:
            send_all(fd, "GET /debug/pprof/ HTTP/1.1\r\nHo", 30); /* cut off by the read deadline */
            want = "";
            break;
        case 3:
            send_all(fd, "GET /debug/pprof/goroutine?debug=1 HTTP/1.1\r\nConnection: close\r\n\r\n", 66);
            break;
        default:
            shutdown(fd, SHUT_WR); /* connects and says nothing */
            want = "";
        }
        char *b = read_all(fd, NULL);
        if (strncmp(b, want, strlen(want)) != 0)
            m->bad++;
        free(b);
        close(fd);
    }
    free(big);
    return NULL;
}

static void test_hostile_many(void)
{
    server_t *s = malloc(sizeof *s);
    CU_ASSERT_FATAL(server_start(s, "debugsrv_plain"));
    enum { T = 25 };
    many_t m = {.port = s->port, .rounds = (int)(gt_scale_n(200) / T)};
    pthread_t t[T];
    for (int i = 0; i < T; i++)
        pthread_create(&t[i], NULL, many_worker, &m);
    for (int i = 0; i < T; i++)
        pthread_join(t[i], NULL);
    printf("(%d hostile requests, %d unexpected) ", m.rounds * T, (int)m.bad);
    CU_ASSERT_EQUAL(m.bad, 0);
    expect_ok(s->port);
    int st = server_stop(s, 0);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CU_ASSERT(gt_contains(s->log, "debugsrv: conns=0 "));
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0) || !gt_contains(s->log, "debugsrv: conns=0 "))
        fprintf(stderr, "\n%s\n", s->log);
    free(s);
}

/* Past the cap (5 here; 1,000 by default) a new connection is answered
 * 503 at once and closed; once one closes, a request is served again. */
static void test_conn_cap(void)
{
    server_t *s = malloc(sizeof *s);
    CU_ASSERT_FATAL(server_start_env(s, "debugsrv_plain", "DEBUGSRV_MAXCONNS=5"));
    int fds[5];
    for (int i = 0; i < 5; i++)
        fds[i] = dial(s->port);
    char *a = NULL;
    CU_ASSERT_EQUAL(get(s->port, "/debug/pprof/", &a), 503);
    free(a);
    close(fds[0]);
    int st = 0;
    for (int i = 0; i < 100 && (st = get(s->port, "/debug/pprof/", NULL)) == 503; i++)
        usleep(20000); /* the server sees the close a moment later */
    CU_ASSERT_EQUAL(st, 200);
    for (int i = 1; i < 5; i++)
        close(fds[i]);
    CU_ASSERT_EQUAL(server_stop(s, 0), 0);
    free(s);
}

GT_SUITE(debugserve, {"tools", test_tools}, {"dump", test_dump}, {"idle", test_idle},
         {"hostile", test_hostile}, {"conn_cap", test_conn_cap}, {"hostile_many", test_hostile_many})
