/*
 * trace_test.c: the execution tracer (prof/trace.c), checked by the real
 * `go tool trace` (issue 21).  One traced workload covers what the issue
 * lists: thousands of goroutines, channels, select, mutexes, sleeps,
 * wrapped blocking calls that hand their P off, calls nobody wrapped
 * (sysmon revokes the P), a preempted spinner, tasks, regions and logs,
 * and a start and a stop in the middle of all that (goroutines parked,
 * in system calls and running at both moments).  Its trace must pass
 * `go tool trace -d` and contain each kind of event; one `go tool trace
 * -http` server then answers every analysis page with 200 and no panic;
 * -pprof=sync opens in `go tool pprof -top` with our function names.
 * gortprof trace summarises it; GORT_TRACE traces a whole run; 100,000
 * goroutines are traced from the middle.  A trace taken while the CPU
 * profiler runs has its samples (EvCPUSample), and its timeline page,
 * rendered in headless Chromium, draws the goroutines.
 *
 * Tests that need go, curl or chromium skip when they are missing (CI
 * installs all three).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gort_prof.h"
#include "test.h"

/* go tool trace wants a build cache; ours is private to the run. */
static const char *const *go_env(void)
{
    static char cache[300], *env[2];
    snprintf(cache, sizeof cache, "GOCACHE=%s", gt_tmp("gocache"));
    env[0] = cache;
    return (const char *const *)env;
}

/* `go tool trace -d`: 0 and its output (free it) when it parsed. */
static int go_trace_d(const char *path, char **out)
{
    gt_child_result r;
    const char *argv[] = {"go", "tool", "trace", "-d", path, NULL};
    if (gt_cmd_run(argv, go_env(), 120, &r) != 0)
        return -1;
    bool ok = r.exited && r.status == 0 && !gt_contains(r.out, "failed to parse");
    if (!ok)
        fprintf(stderr, "\n  go tool trace -d %s:\n%.2000s\n", path, r.out);
    *out = r.out;
    return ok ? 0 : -1;
}

/* memmem, not strstr: a sanitizer's strstr measures the whole rest of
 * the haystack at each call, quadratic on go tool trace's output. */
static size_t count(const char *hay, const char *needle)
{
    size_t n = 0, nl = strlen(needle);
    const char *end = hay + strlen(hay);
    for (const char *p = hay; (p = memmem(p, (size_t)(end - p), needle, nl)) != NULL; p += nl)
        n++;
    return n;
}

/* ---- the workload ---- */

#define SPAWN 3000

static gort_chan *ping, *pong, *sel_a, *sel_b, *stop_ch;
static gort_mutex mu;
static long shared;
static int pfd[2], pfd2[2];
static _Atomic int spin_go;
static volatile long spin_sink;

static void __attribute__((noinline)) trace_pinger(void *a)
{
    (void)a;
    long v;
    while (gort_chan_recv(ping, &v))
        gort_chan_send(pong, &v);
}

static void __attribute__((noinline)) trace_selector(void *a)
{
    (void)a;
    long v;
    for (;;) {
        gort_case cs[3] = {{sel_a, GORT_RECV, &v, false}, {sel_b, GORT_RECV, &v, false}, {stop_ch, GORT_RECV, NULL, false}};
        if (gort_select(cs, 3, true) == 2)
            return;
    }
}

static void __attribute__((noinline)) trace_locker(void *a)
{
    gort_waitgroup *wg = a;
    for (int i = 0; i < 200; i++) {
        gort_mutex_lock(&mu);
        shared++;
        if (i % 20 == 0)
            gort_yield();
        /* Held across a sleep now and then: the others then park in the
         * lock for sure (GoBlockSync; at 128 Ps their spinning used to
         * be enough, and pprof_sync found no trace_locker). */
        if (i % 40 == 0)
            gort_sleep(200 * 1000);
        gort_mutex_unlock(&mu);
    }
    gort_wg_done(wg);
}

static void __attribute__((noinline)) trace_sleeper(void *a)
{
    gort_waitgroup *wg = a;
    for (int i = 0; i < 5; i++)
        gort_sleep(200 * 1000);
    gort_wg_done(wg);
}

static void __attribute__((noinline)) trace_spawned(void *a)
{
    gort_waitgroup *wg = a;
    shared += 0;
    gort_wg_done(wg);
}

/* A wrapped read of one byte from fd, then wg done. */
static void read_one(int fd, gort_waitgroup *wg)
{
    char c;
    if (gort_read(fd, &c, 1) != 1)
        abort();
    gort_wg_done(wg);
}

/* A wrapped read that blocks until the main goroutine writes: its P is
 * handed off (by sysmon) while other goroutines have work. */
static void __attribute__((noinline)) trace_reader(void *a) { read_one(pfd[0], a); }

/* The same while tracing: the first reader's P may have been taken
 * before the trace started (a slow start), and that GoSysBlock is then
 * not in it. */
static void __attribute__((noinline)) trace_reader2(void *a) { read_one(pfd2[0], a); }

/* Sleeps without telling the runtime: sysmon revokes its P. */
static void __attribute__((noinline)) trace_unwrapped(void *a)
{
    gort_waitgroup *wg = a;
    struct timespec ts = {0, 30 * 1000 * 1000};
    nanosleep(&ts, NULL);
    gort_wg_done(wg);
}

static void __attribute__((noinline)) trace_blocking_sleep(void *a)
{
    gort_waitgroup *wg = a;
    struct timespec ts = {0, 5 * 1000 * 1000};
    for (int i = 0; i < 3; i++)
        gort_nanosleep(&ts, NULL); /* blocking call: hands the P off when others wait */
    gort_wg_done(wg);
}

/* Spins without runtime calls until told: only preemption moves it. */
static void __attribute__((noinline)) trace_spinner(void *a)
{
    gort_waitgroup *wg = a;
    while (!atomic_load_explicit(&spin_go, memory_order_relaxed))
        spin_sink++;
    gort_wg_done(wg);
}

static void __attribute__((noinline)) trace_busy(void *a)
{
    gort_waitgroup *wg = a;
    for (int i = 0; i < 50; i++) {
        for (volatile int k = 0; k < 20000; k++)
            ;
        gort_yield();
    }
    gort_wg_done(wg);
}

static void write_trace(const char *path, bool mid)
{
    ping = gort_chan_make(sizeof(long), 0);
    pong = gort_chan_make(sizeof(long), 0);
    sel_a = gort_chan_make(sizeof(long), 0);
    sel_b = gort_chan_make(sizeof(long), 4);
    stop_ch = gort_chan_make(0, 0);
    CU_ASSERT_EQUAL_FATAL(pipe(pfd), 0);
    CU_ASSERT_EQUAL_FATAL(pipe(pfd2), 0);
    gort_waitgroup early = {0};
    /* Alive at the start: parked (pinger, selector), in a system call
     * (the reader), and running (the unwrapped sleeper, spinner). */
    gort_wg_add(&early, 3);
    gort_go(trace_pinger, NULL);
    gort_go(trace_selector, NULL);
    gort_go(trace_reader, &early);
    gort_sleep(5 * 1000 * 1000);
    gort_go(trace_unwrapped, &early);
#if defined(GORT_TSAN)
    /* No asynchronous preemption under TSan: a spinner would hold its P
     * through the start's stop-the-world. */
    atomic_store(&spin_go, 1);
#endif
    gort_go(trace_spinner, &early);
    gort_sleep(2 * 1000 * 1000);

    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL_FATAL(gort_trace_start(fd), 0);
    CU_ASSERT(gort_trace_enabled());
    CU_ASSERT_EQUAL(gort_trace_start(fd), -EBUSY);

    uint64_t task = gort_trace_task(0, "workload");
    CU_ASSERT(task != 0);
    uint64_t sub = gort_trace_task(task, "pingpong");
    gort_trace_region_begin(sub, "rounds");
    for (long i = 0; i < 2000; i++) {
        long v = i;
        gort_chan_send(ping, &v);
        gort_chan_recv(pong, &v);
    }
    gort_trace_region_end(sub, "rounds");
    gort_trace_log(sub, "pingpong", "2000 rounds");
    gort_trace_task_end(sub);

    gort_trace_region_begin(task, "select");
    for (long i = 0; i < 500; i++)
        gort_chan_send(i & 1 ? sel_a : sel_b, &i);
    gort_trace_region_end(task, "select");

    gort_waitgroup wg = {0};
    gort_trace_region_begin(task, "mix");
    gort_wg_add(&wg, 8 + 4 + 2 + 4 + 1);
    gort_stats st;
    gort_stats_get(&st);
    uint64_t handoffs = st.handoffs;
    gort_go(trace_reader2, &wg);
    for (int i = 0; i < 8; i++)
        gort_go(trace_locker, &wg);
    for (int i = 0; i < 4; i++)
        gort_go(trace_sleeper, &wg);
    for (int i = 0; i < 2; i++)
        gort_go(trace_blocking_sleep, &wg);
    for (int i = 0; i < 4; i++)
        gort_go(trace_busy, &wg);
    gort_sleep(20 * 1000 * 1000); /* the reader's and spinner's P are taken meanwhile */
    /* At least one P taken from a system call while tracing (sysmon takes
     * the second reader's after 10 ms even with idle Ps, as Go's retake). */
    for (int i = 0; i < 10000; i++) {
        gort_stats_get(&st);
        if (st.handoffs != handoffs)
            break;
        gort_sleep(1000 * 1000);
    }
    if (write(pfd[1], "x", 1) != 1 || write(pfd2[1], "x", 1) != 1)
        abort();
    atomic_store(&spin_go, 1);
    gort_wg_wait(&wg);
    gort_wg_wait(&early);
    gort_trace_region_end(task, "mix");

    gort_wg_add(&wg, SPAWN);
    for (int i = 0; i < SPAWN; i++)
        gort_go(trace_spawned, &wg);
    if (mid) {
        /* Stop while some of them still run or wait to. */
        CU_ASSERT_EQUAL(gort_trace_stop(), 0);
        gort_wg_wait(&wg);
    } else {
        gort_wg_wait(&wg);
        CU_ASSERT_EQUAL(gort_trace_stop(), 0);
    }
    gort_trace_task_end(task);
    CU_ASSERT(!gort_trace_enabled());
    CU_ASSERT_EQUAL(gort_trace_stop(), -EINVAL);
    close(fd);
    gort_chan_close(ping);
    gort_chan_close(stop_ch);
    close(pfd[0]);
    close(pfd[1]);
    close(pfd2[0]);
    close(pfd2[1]);
}

static bool made;
static void workload_main(void *a)
{
    (void)a;
    write_trace(gt_tmp("w.trace"), true);
    made = true;
}

static void make_trace(void)
{
    if (!made)
        GT_RUN(workload_main, NULL);
}

static void test_go_trace_parses(void)
{
    make_trace();
    if (!gt_have("go"))
        return;
    char *out = NULL;
    CU_ASSERT_EQUAL_FATAL(go_trace_d(gt_tmp("w.trace"), &out), 0);
    static const char *const want[] = {
        "ProcStart", "ProcStop", "Gomaxprocs", "GoCreate", "GoStart ", "GoEnd", "GoSched", "GoPreempt", "GoSleep",
        "GoBlockSend", "GoBlockRecv", "GoBlockSelect", "GoBlockSync", "GoUnblock", "GoSysCall", "GoSysBlock",
        "GoSysExit", "GoWaiting", "GoInSyscall", "UserTaskCreate", "UserTaskEnd", "UserRegion", "UserLog",
        "name=workload", "name=rounds", "category=pingpong message=2000 rounds",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!gt_contains(out, want[i])) {
#if defined(GORT_TSAN)
            if (!strcmp(want[i], "GoPreempt"))
                continue; /* no asynchronous preemption under TSan */
#endif
            fprintf(stderr, "\n  no %s in the trace\n", want[i]);
            CU_FAIL("an event kind is missing");
        }
    CU_ASSERT(count(out, "GoCreate") >= SPAWN);
    free(out);
}

/* ---- go tool trace -http, -pprof ---- */

static int serve_pid = -1;
static char base[128];

/* `go tool trace -http` on path: its pid, and its address in url. */
static int serve(const char *path, const char *log, char *url, size_t urln)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        dup2(p[1], 2);
        setenv("GOCACHE", gt_tmp("gocache"), 1);
        setenv("BROWSER", "true", 1);
        execlp("go", "go", "tool", "trace", "-http=127.0.0.1:0", path, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    FILE *f = fdopen(p[0], "r");
    char line[512];
    url[0] = 0;
    while (fgets(line, sizeof line, f)) {
        const char *u = strstr(line, "http://");
        if (u) {
            snprintf(url, urln, "%.*s", (int)strcspn(u, " \n"), u);
            break;
        }
    }
    /* The rest of its log goes to a file: it must not mention a panic. */
    if (fork() == 0) {
        FILE *lf = fopen(log, "w");
        while (lf && fgets(line, sizeof line, f)) {
            fputs(line, lf);
            fflush(lf);
        }
        _exit(0);
    }
    fclose(f);
    return pid;
}

static void stop_server(void)
{
    if (serve_pid > 0) {
        kill(serve_pid, SIGTERM);
        waitpid(serve_pid, NULL, 0);
        serve_pid = -1;
    }
}

/* The suite's last test stops the server; a run of fewer tests (trace
 * http_pages alone) stops it at exit, or it and its log reader outlive the
 * runner (and a pipe from the runner never ends).  Not in a forked child
 * that exits. */
static pid_t serve_owner;
static void stop_server_at_exit(void)
{
    if (getpid() == serve_owner)
        stop_server();
}

static bool start_server(void)
{
    if (serve_pid > 0)
        return true;
    make_trace();
    serve_pid = serve(gt_tmp("w.trace"), gt_tmp("server.log"), base, sizeof base);
    if (serve_pid > 0 && serve_owner == 0) {
        serve_owner = getpid();
        atexit(stop_server_at_exit);
    }
    return serve_pid > 0 && base[0] != 0;
}

static void test_http_pages(void)
{
    if (!gt_have("go") || !gt_have("curl"))
        return;
    CU_ASSERT_FATAL(start_server());
    static const char *const pages[] = {"/", "/goroutines", "/jsontrace", "/usertasks", "/userregions",
                                        "/sched?raw=1", "/block?raw=1", "/syscall?raw=1", "/io?raw=1"};
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
        char url[256];
        snprintf(url, sizeof url, "%s%s", base, pages[i]);
        gt_child_result r;
        const char *argv[] = {"curl", "-s", "-o", gt_tmp("page"), "-w", "%{http_code}", url, NULL};
        CU_ASSERT_EQUAL_FATAL(gt_cmd_run(argv, NULL, 120, &r), 0);
        if (!gt_first_line_is(r.out, "200")) {
            fprintf(stderr, "\n  %s: HTTP %s\n", pages[i], r.out);
            CU_FAIL("page did not answer 200");
        }
        gt_child_free(&r);
    }
    /* A goroutine group page, from the /goroutines list. */
    gt_child_result r;
    char url[256];
    snprintf(url, sizeof url, "%s/goroutines", base);
    const char *argv[] = {"curl", "-s", url, NULL};
    CU_ASSERT_EQUAL_FATAL(gt_cmd_run(argv, NULL, 60, &r), 0);
    CU_ASSERT(gt_contains(r.out, "trace_spawned"));
    CU_ASSERT(gt_contains(r.out, "trace_locker"));
    if (!gt_contains(r.out, "trace_spawned") || !gt_contains(r.out, "trace_locker")) /* seen once, under load */
        fprintf(stderr, "\n  /goroutines:\n%.4000s\n", r.out);
    gt_child_free(&r);
    snprintf(url, sizeof url, "%s/usertasks", base);
    const char *a2[] = {"curl", "-s", url, NULL};
    CU_ASSERT_EQUAL_FATAL(gt_cmd_run(a2, NULL, 60, &r), 0);
    CU_ASSERT(gt_contains(r.out, "workload"));
    CU_ASSERT(gt_contains(r.out, "pingpong"));
    gt_child_free(&r);
    const char *a3[] = {"cat", gt_tmp("server.log"), NULL};
    CU_ASSERT_EQUAL(gt_cmd_run(a3, NULL, 10, &r), 0);
    CU_ASSERT(!gt_contains(r.out, "panic"));
    gt_child_free(&r);
}

static void test_pprof_sync(void)
{
    make_trace();
    if (!gt_have("go"))
        return;
    gt_child_result r;
    char cmd[700];
    snprintf(cmd, sizeof cmd, "go tool trace -pprof=sync %s > %s && go tool pprof -top %s", gt_tmp("w.trace"),
             gt_tmp("sync.pprof"), gt_tmp("sync.pprof"));
    const char *argv[] = {"sh", "-c", cmd, NULL};
    CU_ASSERT_EQUAL_FATAL(gt_cmd_run(argv, go_env(), 120, &r), 0);
    CU_ASSERT(r.exited && r.status == 0);
    CU_ASSERT(gt_contains(r.out, "Type: delay"));
    CU_ASSERT(gt_contains(r.out, "trace_locker"));
    CU_ASSERT(gt_contains(r.out, "gort__mutex_lock_slow"));
    if (!gt_contains(r.out, "trace_locker"))
        fprintf(stderr, "\n%.3000s\n", r.out);
    gt_child_free(&r);
}

/* ---- CPU samples (EvCPUSample) ---- */

static _Atomic long hot_sink;

/* Burns CPU in its own frame, calling nothing: a sample taken here has
 * this function as its innermost frame.  Under TSan a SIGPROF waits until
 * its thread next enters an intercepted function, and a loop that calls
 * nothing had its few samples handled after it, mostly outside this frame
 * (3 to 6 samples, 1 or 2 of them here; cpu_samples failed once in the
 * full suite with none).  So there it enters one (clock_gettime) every
 * million turns; the handler still gets the loop's PC and frames (about
 * 70 samples, nearly all here). */
static void __attribute__((noinline)) trace_cpu_hot(void *a)
{
    gort_waitgroup *wg = a;
    unsigned long x = 0; /* wraps (UBSan: a signed one overflowed) */
    for (long i = 0; i < 150L * 1000 * 1000; i++) {
        x += (unsigned long)i ^ (x >> 3);
#if defined(GORT_TSAN)
        if (i % 1000000 == 0) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
        }
#endif
    }
    atomic_store_explicit(&hot_sink, (long)x, memory_order_relaxed);
    gort_wg_done(wg);
}

static void cpu_main(void *a)
{
    (void)a;
    CU_ASSERT_EQUAL_FATAL(gort_cpuprofile_start(gt_tmp("cpu.pprof"), 1000), 0);
    int fd = open(gt_tmp("cpu.trace"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL_FATAL(gort_trace_start(fd), 0);
    gort_waitgroup wg = {0};
    gort_wg_add(&wg, 2);
    for (int i = 0; i < 2; i++)
        gort_go(trace_cpu_hot, &wg);
    gort_wg_wait(&wg);
    CU_ASSERT_EQUAL(gort_trace_stop(), 0);
    close(fd);
    CU_ASSERT_EQUAL(gort_cpuprofile_stop(), 0);
}

/* Whether jsontrace's stack (frame id, then its parents) holds fn. */
static bool stack_has(const char *json, const char *id, const char *fn)
{
    char key[64], cur[32];
    snprintf(cur, sizeof cur, "%s", id);
    for (int depth = 0; depth < 64 && cur[0]; depth++) {
        snprintf(key, sizeof key, "\"%s\":{\"name\":\"", cur);
        const char *f = strstr(json, key);
        if (!f)
            return false;
        f += strlen(key);
        if (strncmp(f, fn, strlen(fn)) == 0)
            return true;
        const char *end = strchr(f, '}'), *par = strstr(f, "\"parent\":");
        cur[0] = 0;
        if (par && end && par < end)
            snprintf(cur, sizeof cur, "%.*s", (int)strspn(par + 9, "0123456789"), par + 9);
    }
    return false;
}

/* A trace taken while the CPU profiler runs has its samples, on the Ps
 * that ran the hot goroutines, most with the hot function in their stacks
 * (the timeline's "CPU profile sample" instants; the rest were taken in
 * the scheduler or a preemption's way back). */
static bool cpu_made;
static void make_cpu_trace(void)
{
    if (!cpu_made)
        GT_RUN(cpu_main, NULL);
    cpu_made = true;
}

static void test_cpu_samples(void)
{
    make_cpu_trace();
    if (!gt_have("go") || !gt_have("curl"))
        return;
    char *out = NULL;
    CU_ASSERT_EQUAL_FATAL(go_trace_d(gt_tmp("cpu.trace"), &out), 0);
    size_t samples = count(out, " CPUSample p=") - count(out, " CPUSample p=-1 ");
    const size_t want = 10; /* under TSan too: trace_cpu_hot */
    if (samples < want)
        fprintf(stderr, "\n  %zu CPU samples on a P in the trace\n", samples);
    CU_ASSERT(samples >= want);
    free(out);

    char url[256], u[300];
    int pid = serve(gt_tmp("cpu.trace"), gt_tmp("cpu-server.log"), url, sizeof url);
    CU_ASSERT_FATAL(pid > 0 && url[0]);
    snprintf(u, sizeof u, "%s/jsontrace", url);
    gt_child_result r;
    const char *argv[] = {"curl", "-s", u, NULL};
    CU_ASSERT_EQUAL(gt_cmd_run(argv, NULL, 120, &r), 0);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    size_t total = 0, hot = 0;
    static const char ev[] = "\"name\":\"CPU profile sample\"";
    for (const char *p = r.out; (p = strstr(p, ev)) != NULL; p += sizeof ev - 1) {
        const char *end = strchr(p, '}'), *sf = strstr(p, "\"sf\":");
        total++;
        if (sf && end && sf < end) {
            char id[32];
            snprintf(id, sizeof id, "%.*s", (int)strspn(sf + 5, "0123456789"), sf + 5);
            hot += stack_has(r.out, id, "trace_cpu_hot:");
        }
    }
    if (hot < want || hot * 2 < total)
        fprintf(stderr, "\n  %zu CPU samples in /jsontrace, %zu in trace_cpu_hot\n", total, hot);
    CU_ASSERT(hot >= want && hot * 2 >= total);
    gt_child_free(&r);
}

/* ---- the timeline in headless Chromium ---- */

/* Go 1.19's /trace page builds its viewer from HTML imports through the
 * webcomponents v0 polyfill, then fetches /jsontrace and imports it, all
 * after the load event: `chromium --screenshot` (even with a virtual time
 * budget) captures the page before any of that and shows it blank.  So the
 * test drives Chromium over the DevTools protocol (--remote-debugging-pipe:
 * NUL-terminated JSON on fds 3 and 4), waits until the viewer has its
 * model, and then reads the timeline's canvas pixels and takes the
 * screenshot. */
typedef struct {
    int wfd, rfd, next;
    pid_t pid;
    char *buf;
    size_t len, cap;
    char session[128];
} cdp_t;

static bool cdp_open(cdp_t *c)
{
    int to[2], from[2];
    if (pipe(to) != 0 || pipe(from) != 0)
        return false;
    *c = (cdp_t){.wfd = to[1], .rfd = from[0]};
    char prof[300];
    snprintf(prof, sizeof prof, "--user-data-dir=%s", gt_tmp("chromium"));
    c->pid = fork();
    if (c->pid == 0) {
        int a = fcntl(to[0], F_DUPFD, 10), b = fcntl(from[1], F_DUPFD, 10);
        dup2(a, 3);
        dup2(b, 4);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execlp("chromium", "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
               "--window-size=1200,800", prof, "about:blank", (char *)NULL);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    return c->pid > 0;
}

/* The reply to a command (or NULL after timeout_s); events are skipped. */
static char *cdp_call(cdp_t *c, bool session, const char *method, const char *params, int timeout_s)
{
    char msg[4096], idp[32];
    int id = ++c->next;
    int n = session ? snprintf(msg, sizeof msg, "{\"id\":%d,\"sessionId\":\"%s\",\"method\":\"%s\",\"params\":%s}", id,
                               c->session, method, params)
                    : snprintf(msg, sizeof msg, "{\"id\":%d,\"method\":\"%s\",\"params\":%s}", id, method, params);
    if (n < 0 || (size_t)n >= sizeof msg || write(c->wfd, msg, (size_t)n + 1) != n + 1)
        return NULL;
    snprintf(idp, sizeof idp, "{\"id\":%d,", id);
    time_t end = time(NULL) + timeout_s;
    for (;;) {
        char *z = c->len ? memchr(c->buf, 0, c->len) : NULL;
        if (z) {
            size_t ml = (size_t)(z - c->buf) + 1;
            char *m = NULL;
            if (strncmp(c->buf, idp, strlen(idp)) == 0) {
                m = malloc(ml);
                memcpy(m, c->buf, ml);
            }
            memmove(c->buf, c->buf + ml, c->len - ml);
            c->len -= ml;
            if (m)
                return m;
            continue;
        }
        if (time(NULL) > end)
            return NULL;
        if (c->cap - c->len < 65536) {
            c->cap = c->cap ? c->cap * 2 : 1 << 20;
            c->buf = realloc(c->buf, c->cap);
        }
        struct timeval tv = {1, 0};
        fd_set fs;
        FD_ZERO(&fs);
        FD_SET(c->rfd, &fs);
        if (select(c->rfd + 1, &fs, NULL, NULL, &tv) <= 0)
            continue;
        ssize_t r = read(c->rfd, c->buf + c->len, c->cap - c->len);
        if (r <= 0)
            return NULL;
        c->len += (size_t)r;
    }
}

/* The string value of "key" in a reply (no escapes inside: ours are plain). */
static bool json_str(const char *m, const char *key, char *out, size_t n)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\":\"", key);
    const char *p = m ? strstr(m, k) : NULL;
    if (!p)
        return false;
    p += strlen(k);
    size_t l = strcspn(p, "\"");
    snprintf(out, n, "%.*s", (int)l, p);
    return true;
}

static void cdp_close(cdp_t *c)
{
    free(cdp_call(c, false, "Browser.close", "{}", 10));
    close(c->wfd);
    close(c->rfd);
    for (int i = 0; i < 100 && waitpid(c->pid, NULL, WNOHANG) == 0; i++)
        usleep(100 * 1000);
    kill(c->pid, SIGKILL);
    waitpid(c->pid, NULL, 0);
    free(c->buf);
}

static void write_base64(const char *path, const char *b64)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    FILE *f = fopen(path, "wb");
    uint32_t acc = 0;
    int bits = 0;
    for (const char *p = b64; f && *p && *p != '"'; p++) {
        const char *k = strchr(al, *p);
        if (!k || *p == 0)
            continue;
        acc = acc << 6 | (uint32_t)(k - al);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            fputc((int)(acc >> bits) & 0xff, f);
        }
    }
    if (f)
        fclose(f);
}

/* Runs in the page: "loading" until the viewer has its model; then the
 * goroutine slices it holds for fn and the pixels of the timeline's canvas
 * (the largest) in a saturated colour, which slices are and the white or
 * grey background and rulers are not. */
static const char probe_js[] =
    "(function(){var v=document.querySelector('tr-ui-timeline-view');if(!v||!v.model)return 'loading';"
    "var g=0;v.model.getAllThreads().forEach(function(t){t.sliceGroup.slices.forEach(function(s){"
    "if(/^G[0-9]+ trace_cpu_hot/.test(s.title))g++;});});"
    "var best=null,area=0;Array.prototype.forEach.call(document.querySelectorAll('canvas'),function(c){"
    "if(c.width*c.height>area){area=c.width*c.height;best=c;}});var n=0;"
    "if(best){var d=best.getContext('2d').getImageData(0,0,best.width,best.height).data;"
    "for(var i=0;i<d.length;i+=4){var mx=Math.max(d[i],d[i+1],d[i+2]),mn=Math.min(d[i],d[i+1],d[i+2]);"
    "if(d[i+3]>0&&mx-mn>60)n++;}}return 'slices='+g+' colored='+n+' of '+area;})()";

static void test_timeline_chromium(void)
{
    if (!gt_have("go") || !gt_have("chromium"))
        return;
    make_cpu_trace();
    char url[256], page[300];
    int pid = serve(gt_tmp("cpu.trace"), gt_tmp("timeline-server.log"), url, sizeof url);
    CU_ASSERT_FATAL(pid > 0 && url[0]);
    cdp_t c;
    CU_ASSERT_FATAL(cdp_open(&c));
    char *m = cdp_call(&c, false, "Target.createTarget", "{\"url\":\"about:blank\"}", 60);
    char target[128] = "", params[600], res[256] = "";
    CU_ASSERT(json_str(m, "targetId", target, sizeof target));
    free(m);
    snprintf(params, sizeof params, "{\"targetId\":\"%s\",\"flatten\":true}", target);
    m = cdp_call(&c, false, "Target.attachToTarget", params, 30);
    CU_ASSERT(json_str(m, "sessionId", c.session, sizeof c.session));
    free(m);
    free(cdp_call(&c, true, "Emulation.setDeviceMetricsOverride",
                  "{\"width\":1200,\"height\":800,\"deviceScaleFactor\":1,\"mobile\":false}", 30));
    snprintf(page, sizeof page, "{\"url\":\"%s/trace\"}", url);
    free(cdp_call(&c, true, "Page.navigate", page, 60));
    /* The page imports 2.6 MB of viewer and then the trace: seconds, more
     * on a loaded machine.  Wait for it, not for a guessed time. */
    static char expr[sizeof probe_js + 100];
    char *q = expr + sprintf(expr, "{\"expression\":\"");
    for (const char *p = probe_js; *p; p++)
        *q++ = *p == '"' ? '\'' : *p;
    strcpy(q, "\",\"returnByValue\":true}");
    for (int i = 0; i < 240; i++) {
        m = cdp_call(&c, true, "Runtime.evaluate", expr, 30);
        res[0] = 0;
        json_str(m, "value", res, sizeof res);
        free(m);
        if (res[0] && strcmp(res, "loading") != 0)
            break;
        usleep(500 * 1000);
    }
    /* Let the viewer finish drawing after its model arrived, then read
     * the pixels again for the check. */
    usleep(1000 * 1000);
    m = cdp_call(&c, true, "Runtime.evaluate", expr, 30);
    json_str(m, "value", res, sizeof res);
    free(m);
    m = cdp_call(&c, true, "Page.captureScreenshot", "{\"format\":\"png\"}", 60);
    const char *d = m ? strstr(m, "\"data\":\"") : NULL;
    CU_ASSERT(d != NULL);
    if (d)
        write_base64(gt_tmp("timeline.png"), d + 8);
    free(m);
    cdp_close(&c);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    long slices = 0, colored = 0, area = 0;
    sscanf(res, "slices=%ld colored=%ld of %ld", &slices, &colored, &area);
    /* Both hot goroutines as slices in the model, and the timeline drawn
     * in colour: at least 2% of the canvas (their two rows are far more). */
    if (slices < 2 || area == 0 || colored * 50 < area)
        fprintf(stderr, "\n  timeline: %s (screenshot %s)\n", res[0] ? res : "no answer", gt_tmp("timeline.png"));
    CU_ASSERT(slices >= 2);
    CU_ASSERT(area > 0 && colored * 50 >= area);
}

/* ---- gortprof trace ---- */

static void test_gortprof_trace(void)
{
    make_trace();
    gt_child_result r;
    const char *argv[] = {gt_gortprof_path(), "trace", gt_tmp("w.trace"), NULL};
    CU_ASSERT_EQUAL_FATAL(gt_cmd_run(argv, NULL, 60, &r), 0);
    CU_ASSERT(r.exited && r.status == 0);
    CU_ASSERT(gt_contains(r.out, "trace_spawned"));
    CU_ASSERT(gt_contains(r.out, "trace_locker"));
    CU_ASSERT(gt_contains(r.out, "trace_pinger"));
    CU_ASSERT(gt_contains(r.out, "Scheduler latency"));
    CU_ASSERT(gt_contains(r.out, "p50") && gt_contains(r.out, "p90") && gt_contains(r.out, "p99") &&
              gt_contains(r.out, "max"));
    CU_ASSERT(gt_contains(r.out, "1 tasks") == false); /* two tasks */
    CU_ASSERT(gt_contains(r.out, "2 tasks"));
    /* The lockers' row: blocked on sync for some time, not nothing. */
    const char *l = strstr(r.out, "trace_locker");
    const char *row = l;
    while (row > r.out && row[-1] != '\n')
        row--;
    CU_ASSERT(l && !gt_contains(row, "       0ns      0ns"));
    if (!(r.exited && r.status == 0) || !gt_contains(r.out, "trace_locker"))
        fprintf(stderr, "\n%s\n", r.out);
    gt_child_free(&r);
}

static void write_file(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_FATAL(f != NULL);
    fwrite(b, 1, n, f);
    fclose(f);
}

static void test_gortprof_hostile(void)
{
    make_trace();
    FILE *f = fopen(gt_tmp("w.trace"), "rb");
    CU_ASSERT_FATAL(f != NULL);
    static uint8_t buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    CU_ASSERT_FATAL(n > 1000);
    struct {
        const char *name;
        size_t len;
        int flip;
    } cases[] = {{"empty", 0, -1}, {"header", 16, -1}, {"cut", n / 2 + 3, -1}, {"flip", n, 40}, {"badtype", n, 16}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t save = 0;
        if (cases[i].flip >= 0) {
            save = buf[cases[i].flip];
            buf[cases[i].flip] = cases[i].flip == 16 ? 0x3f : 0xff;
        }
        write_file(gt_tmp("bad.trace"), buf, cases[i].len);
        if (cases[i].flip >= 0)
            buf[cases[i].flip] = save;
        gt_child_result r;
        const char *argv[] = {gt_gortprof_path(), "trace", gt_tmp("bad.trace"), NULL};
        CU_ASSERT_EQUAL_FATAL(gt_cmd_run(argv, NULL, 60, &r), 0);
        bool one_line = r.outlen > 0 && strchr(r.out, '\n') == r.out + r.outlen - 1;
        if (cases[i].flip == 40 && r.exited && r.status == 0) {
            gt_child_free(&r); /* a flipped value may still read as a trace */
            continue;
        }
        if (!(r.exited && r.status == 1 && one_line)) {
            fprintf(stderr, "\n  %s: status %d: %s\n", cases[i].name, r.status, r.out);
            CU_FAIL("hostile trace not refused with one line");
        }
        gt_child_free(&r);
    }
}

/* The fuzzer's finds (make fuzz), kept: a summary or one line of error. */
static void test_fuzz_regressions(void)
{
    gt_child_result r;
    const char *ls[] = {"sh", "-c", "ls tests/testdata/trace-regressions/*", NULL};
    CU_ASSERT_EQUAL_FATAL(gt_cmd_run(ls, NULL, 10, &r), 0);
    int n = 0;
    for (char *line = strtok(r.out, "\n"); line; line = strtok(NULL, "\n")) {
        gt_child_result t;
        const char *argv[] = {gt_gortprof_path(), "trace", line, NULL};
        CU_ASSERT_EQUAL_FATAL(gt_cmd_run(argv, NULL, 60, &t), 0);
        bool ok = t.exited && (t.status == 0 || (t.status == 1 && strchr(t.out, '\n') == t.out + t.outlen - 1));
        if (!ok)
            fprintf(stderr, "\n  %s: %s\n", line, t.out);
        CU_ASSERT(ok);
        gt_child_free(&t);
        n++;
    }
    CU_ASSERT(n >= 1);
    gt_child_free(&r);
}

/* ---- GORT_TRACE, 100,000 goroutines ---- */

static void env_main(void *a)
{
    (void)a;
    gort_waitgroup wg = {0};
    gort_wg_add(&wg, 100);
    for (int i = 0; i < 100; i++)
        gort_go(trace_sleeper, &wg);
    gort_wg_wait(&wg);
}

GT_CHILD(trace_env)
{
    gort_main(env_main, NULL);
    printf("env-done\n");
}

static void test_env_whole_run(void)
{
    char env[300];
    snprintf(env, sizeof env, "GORT_TRACE=%s", gt_tmp("env.trace"));
    const char *e[] = {env, NULL};
    CU_ASSERT(gt_child_expect("trace_env", e, 60, "env-done"));
    struct stat st;
    CU_ASSERT_FATAL(stat(gt_tmp("env.trace"), &st) == 0);
    CU_ASSERT(st.st_size > 1000);
    if (!gt_have("go"))
        return;
    char *out = NULL;
    CU_ASSERT_EQUAL(go_trace_d(gt_tmp("env.trace"), &out), 0);
    CU_ASSERT(out && count(out, "GoSleep") >= 500);
    free(out);
}

static gort_waitgroup term_slept;

static void term_sleeper(void *a)
{
    (void)a;
    gort_sleep(100 * 1000);
    gort_wg_done(&term_slept); /* its GoSleep, with this stack, is traced */
    for (;;)
        gort_sleep(100 * 1000);
}

/* Says when it is ready to be killed (GT_TERM_READY, a file it creates):
 * a fixed sleep before the kill lost to a slow start under TSan on a
 * loaded machine, and the signal killed the child before GORT_TRACE's
 * handler was installed. */
/* GT_TERM_BUSY: two pairs that trade a token forever, so that the
 * signal finds other Ps writing events. */
static void term_pinger(void *a)
{
    gort_chan **c = a;
    for (long v = 0;; v++) {
        gort_chan_send(c[0], &v);
        gort_chan_recv(c[1], &v);
    }
}
static void term_ponger(void *a)
{
    gort_chan **c = a;
    for (long v;;) {
        gort_chan_recv(c[0], &v);
        gort_chan_send(c[1], &v);
    }
}

static void term_main(void *a)
{
    (void)a;
    gort_wg_add(&term_slept, 10);
    for (int i = 0; i < 10; i++)
        gort_go(term_sleeper, NULL);
    gort_wg_wait(&term_slept);
    if (getenv("GT_TERM_BUSY"))
        for (int i = 0; i < 2; i++) {
            gort_chan **c = malloc(2 * sizeof *c);
            c[0] = gort_chan_make(sizeof(long), 0);
            c[1] = gort_chan_make(sizeof(long), 0);
            gort_go(term_pinger, c);
            gort_go(term_ponger, c);
        }
    const char *ready = getenv("GT_TERM_READY");
    if (ready)
        close(open(ready, O_WRONLY | O_CREAT, 0644));
    for (;;)
        gort_sleep(1000 * 1000);
}

GT_CHILD(trace_env_term) { gort_main(term_main, NULL); }

/* GORT_TRACE and SIGTERM: the trace is written before the signal kills. */
static void test_env_sigterm(void)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd,
             "GORT_TRACE=%s GT_TERM_READY=%s %s --child trace_env_term & p=$!; "
             "while [ ! -e %s ] && kill -0 $p; do sleep 0.05; done; kill -TERM $p; wait $p; echo status=$?",
             gt_tmp("term.trace"), gt_tmp("term.ready"), gt_self_path(), gt_tmp("term.ready"));
    gt_child_result r;
    const char *argv[] = {"sh", "-c", cmd, NULL};
    CU_ASSERT_EQUAL_FATAL(gt_cmd_run(argv, NULL, 120, &r), 0);
    CU_ASSERT(gt_contains(r.out, "status=143")); /* killed by SIGTERM, as without us */
    gt_child_free(&r);
    const char *a2[] = {gt_gortprof_path(), "trace", gt_tmp("term.trace"), NULL};
    CU_ASSERT_EQUAL_FATAL(gt_cmd_run(a2, NULL, 60, &r), 0);
    CU_ASSERT(r.exited && r.status == 0 && gt_contains(r.out, "term_sleeper"));
    if (!(r.exited && r.status == 0))
        fprintf(stderr, "\n  gortprof trace: %s\n", r.out);
    gt_child_free(&r);
    if (!gt_have("go"))
        return;
    char *out = NULL;
    CU_ASSERT_EQUAL(go_trace_d(gt_tmp("term.trace"), &out), 0);
    free(out);
}

/* SIGTERM while other Ps write events: each must finish its event before
 * its buffer is taken (a buffer flushed under its writer was written
 * torn, or pushed twice when the writer flushed it too).  Several rounds,
 * each killed a different moment into the run; every file must read. */
static void test_env_sigterm_busy(void)
{
    /* TSan runs a handler only when the thread that took the signal next
     * enters an intercepted function; goroutines trading a token never
     * do, and the child then never dies. */
    GT_SKIP_UNDER_TSAN("an asynchronous signal waits for an intercepted call, which busy goroutines never make");
    for (int round = 0; round < 4; round++) {
        char cmd[1400];
        snprintf(cmd, sizeof cmd,
                 "rm -f %s; GORT_MAXPROCS=2 GT_TERM_BUSY=1 GORT_TRACE=%s GT_TERM_READY=%s %s --child trace_env_term & "
                 "p=$!; while [ ! -e %s ] && kill -0 $p; do sleep 0.01; done; sleep 0.0%d; kill -TERM $p; wait $p; "
                 "echo status=$?",
                 gt_tmp("busy.ready"), gt_tmp("busy.trace"), gt_tmp("busy.ready"), gt_self_path(),
                 gt_tmp("busy.ready"), 1 + 2 * round);
        gt_child_result r;
        const char *argv[] = {"sh", "-c", cmd, NULL};
        CU_ASSERT_EQUAL_FATAL(gt_cmd_run(argv, NULL, 120, &r), 0);
        CU_ASSERT(gt_contains(r.out, "status=143"));
        gt_child_free(&r);
        const char *a2[] = {gt_gortprof_path(), "trace", gt_tmp("busy.trace"), NULL};
        CU_ASSERT_EQUAL_FATAL(gt_cmd_run(a2, NULL, 120, &r), 0);
        CU_ASSERT(r.exited && r.status == 0 && gt_contains(r.out, "term_pinger"));
        if (!(r.exited && r.status == 0))
            fprintf(stderr, "\n  round %d, gortprof trace: %.300s\n", round, r.out);
        gt_child_free(&r);
    }
}

#define MANY 100000
static gort_chan *park_ch;
static gort_waitgroup park_wg, park_ready;
static int park_procs;

static void parked(void *a)
{
    (void)a;
    gort_wg_done(&park_ready);
    gort_chan_recv(park_ch, NULL);
    gort_wg_done(&park_wg);
}

static void many_main(void *a)
{
    (void)a;
    park_ch = gort_chan_make(0, 0);
    long n = gt_scale() == 0 ? 1000 : MANY;
    gort_wg_add(&park_wg, n);
    gort_wg_add(&park_ready, n);
    for (long i = 0; i < n; i++)
        gort_go(parked, NULL);
    /* Once all said ready, each P holds at most one that has not parked yet
     * (between its done and its receive), so at least n - procs are parked
     * when the trace starts: the bound the test checks, with no sleep. */
    gort_wg_wait(&park_ready);
    park_procs = gort_maxprocs(0);
    int fd = open(gt_tmp("many.trace"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CU_ASSERT_EQUAL_FATAL(gort_trace_start(fd), 0);
    gort_chan_close(park_ch); /* all of them wake while traced */
    gort_wg_wait(&park_wg);
    CU_ASSERT_EQUAL(gort_trace_stop(), 0);
    close(fd);
    gt_settle_goroutines(1, 5000);
    gort_chan_free(park_ch);
}

static void test_many_goroutines(void)
{
    GT_SKIP_UNDER_TSAN("100,000 goroutines are more fibers than TSan's thread limit");
    GT_RUN(many_main, NULL);
    if (!gt_have("go"))
        return;
    char *out = NULL;
    CU_ASSERT_EQUAL(go_trace_d(gt_tmp("many.trace"), &out), 0);
    long n = gt_scale() == 0 ? 1000 : MANY;
    /* All existed when the trace started, and all but at most one per P were
     * parked, so the close unblocked them in the trace. */
    size_t created = out ? count(out, "GoCreate") : 0, unblocked = out ? count(out, "GoUnblock") : 0;
    CU_ASSERT(created >= (size_t)n);
    CU_ASSERT(unblocked >= (size_t)(n - park_procs));
    if (created < (size_t)n || unblocked < (size_t)(n - park_procs))
        fprintf(stderr, "\n  GoCreate %zu, GoUnblock %zu of %ld (procs %d)\n", created, unblocked, n, park_procs);
    free(out);
}

static void test_api_without_trace(void)
{
    CU_ASSERT(!gort_trace_enabled());
    uint64_t a = gort_trace_task(0, "x"), b = gort_trace_task(a, "y");
    CU_ASSERT(a != 0 && b != 0 && a != b);
    gort_trace_region_begin(a, "r");
    gort_trace_region_end(a, "r");
    gort_trace_log(a, "k", "v");
    gort_trace_task_end(b);
    gort_trace_task_end(a);
}

static void test_cleanup(void) { stop_server(); }

GT_SUITE(trace, {"api_without_trace", test_api_without_trace}, {"go_trace_parses", test_go_trace_parses},
         {"http_pages", test_http_pages},
         {"pprof_sync", test_pprof_sync}, {"cpu_samples", test_cpu_samples},
         {"timeline_chromium", test_timeline_chromium}, {"gortprof_trace", test_gortprof_trace},
         {"gortprof_hostile", test_gortprof_hostile}, {"fuzz_regressions", test_fuzz_regressions}, {"env_whole_run", test_env_whole_run},
         {"env_sigterm", test_env_sigterm}, {"env_sigterm_busy", test_env_sigterm_busy},
         {"many_goroutines", test_many_goroutines}, {"cleanup", test_cleanup})
