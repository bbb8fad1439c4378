/*
 * gdb_test.c: scripts/gdb/gort-gdb.py driven by gdb in batch mode, on a
 * live process and on a core file of a program with parked goroutines.
 * Checks `info goroutines` (ids, wait reasons, current functions) and
 * `goroutine N bt` (the frames of a parked goroutine, in order).
 *
 * The live case: the child attaches gdb to itself (PR_SET_PTRACER lets it
 * under Yama).  The core case: the child dies with GORT_TRACEBACK=crash and
 * RLIMIT_CORE raised, in a fresh directory, and the kernel writes the core.
 * gcore is not used: it copies memory in 1 MiB chunks and zero-fills any
 * chunk with an unreadable page, and goroutine stack slabs carry guard
 * pages inside one mapping (MADV_GUARD_INSTALL), so every stack would come
 * out as zeros.  Skipped with a message when gdb is missing, or (core
 * case) when core_pattern sends cores elsewhere.
 */
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

#define BARRIER() __asm__ volatile("" ::: "memory")

static gort_waitgroup g_ready, g_never;
static int *volatile g_nullp;

__attribute__((noinline)) static void gdb_park_leaf(void)
{
    gort_wg_done(&g_ready);
    gort_wg_wait(&g_never);
    BARRIER();
}

__attribute__((noinline)) static void gdb_park_mid(void)
{
    gdb_park_leaf();
    BARRIER();
}

__attribute__((noinline)) static void gdb_park_top(void *arg)
{
    (void)arg;
    gdb_park_mid();
    BARRIER();
}

__attribute__((noinline)) static void gdb_sleeper(void *arg)
{
    (void)arg;
    gort_wg_done(&g_ready);
    gort_sleep(3600LL * 1000000000);
    BARRIER();
}

static void park_and_report(void)
{
    gort_wg_add(&g_never, 1);
    gort_wg_add(&g_ready, 3);
    uint64_t a = gort_go(gdb_park_top, NULL);
    uint64_t b = gort_go(gdb_park_top, NULL);
    uint64_t s = gort_go(gdb_sleeper, NULL);
    gort_wg_wait(&g_ready);
    gort_sleep(20 * 1000000); /* the sleeper reaches its timer */
    printf("ids %llu %llu %llu\n", (unsigned long long)a, (unsigned long long)b, (unsigned long long)s);
    fflush(stdout);
}

static void live_body(void *arg)
{
    (void)arg;
    park_and_report();
    const char *script = getenv("GORT_GDB_SCRIPT");
    char pid[32], src[4200], bt[64];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    snprintf(src, sizeof src, "source %s", script);
    snprintf(bt, sizeof bt, "goroutine %s bt", getenv("GORT_GDB_BT"));
    prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
    pid_t c = fork();
    if (c == 0) {
        execlp("gdb", "gdb", "-q", "-nx", "-batch", "-p", pid, "-ex", src, "-ex", "info goroutines", "-ex", bt,
               (char *)NULL);
        _exit(127);
    }
    int st;
    gort_waitpid(c, &st, 0);
    printf("gdb exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}
GT_CHILD(gdb_live) { gort_main(live_body, NULL); }

/* The fault is the point: UBSan would report it first. */
__attribute__((no_sanitize_undefined)) static void core_body(void *arg)
{
    (void)arg;
    struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
    if (setrlimit(RLIMIT_CORE, &rl) != 0) {
        getrlimit(RLIMIT_CORE, &rl);
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_CORE, &rl);
    }
    if (chdir(getenv("GORT_GDB_DIR")) != 0)
        return;
    park_and_report();
    *g_nullp = 1; /* GORT_TRACEBACK=crash: the dump, then SIGABRT and a core */
}
GT_CHILD(gdb_core) { gort_main(core_body, NULL); }

/* ---- the test ---- */

static bool have_gdb(void)
{
    gt_child_result r;
    const char *argv[] = {"gdb", "--version", NULL};
    bool ok = gt_cmd_run(argv, NULL, 30, &r) == 0 && r.exited && r.status == 0;
    gt_child_free(&r);
    return ok;
}

static void script_path(char *out, size_t n)
{
    char self[4096];
    snprintf(self, sizeof self, "%s", gt_self_path());
    char *bin = dirname(self);      /* .../build */
    char *root = dirname(bin);      /* the repository */
    snprintf(out, n, "%s/scripts/gdb/gort-gdb.py", root);
}

/* The line of `info goroutines` for goroutine id (NULL if absent). */
static const char *goroutine_line(const char *out, unsigned long long id, char *buf, size_t n)
{
    for (const char *p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        unsigned long long got;
        char mark;
        if (sscanf(p, "%c %llu ", &mark, &got) == 2 && got == id && (mark == ' ' || mark == '*')) {
            const char *e = strchr(p, '\n');
            size_t k = e ? (size_t)(e - p) : strlen(p);
            if (k >= n)
                k = n - 1;
            memcpy(buf, p, k);
            buf[k] = 0;
            return buf;
        }
    }
    return NULL;
}

static bool in_order(const char *s, const char *const *needles, int n)
{
    const char *p = s;
    for (int i = 0; i < n && p; i++) {
        p = strstr(p, needles[i]);
        if (p)
            p += strlen(needles[i]);
    }
    return p != NULL;
}

static void check_goroutines(const char *out, const char *what)
{
    unsigned long long a, b, s;
    const char *ids = strstr(out, "ids ");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ids);
    CU_ASSERT_EQUAL_FATAL(sscanf(ids, "ids %llu %llu %llu", &a, &b, &s), 3);
    char line[256];
    const char *l = goroutine_line(out, a, line, sizeof line);
    CU_ASSERT_PTR_NOT_NULL(l);
    CU_ASSERT_TRUE(l && strstr(l, "sync.WaitGroup.Wait") && strstr(l, "gdb_park_leaf"));
    l = goroutine_line(out, b, line, sizeof line);
    CU_ASSERT_TRUE(l && strstr(l, "sync.WaitGroup.Wait") && strstr(l, "gdb_park_leaf"));
    l = goroutine_line(out, s, line, sizeof line);
    CU_ASSERT_TRUE(l && strstr(l, " sleep ") && strstr(l, "gdb_sleeper"));
    /* goroutine A bt: a parked goroutine's frames, innermost first. */
    const char *frames[] = {" in gort_wg_wait ()", " in gdb_park_leaf () at tests/gdb_test.c:",
                            " in gdb_park_mid () at tests/gdb_test.c:", " in gdb_park_top () at tests/gdb_test.c:"};
    bool ok = in_order(out, frames, 4);
    if (!ok)
        fprintf(stderr, "\n  gdb (%s) said:\n%s\n", what, out);
    CU_ASSERT_TRUE(ok);
}

static void test_live(void)
{
    if (!have_gdb()) {
        GT_SKIP("gdb is not installed");
    }
    char script[4200], envs[3][4300];
    script_path(script, sizeof script);
    CU_ASSERT_EQUAL_FATAL(access(script, R_OK), 0);
    snprintf(envs[0], sizeof envs[0], "GORT_GDB_SCRIPT=%s", script);
    /* goroutine 2 is the first parked one: the child's first gort_go. */
    snprintf(envs[1], sizeof envs[1], "GORT_GDB_BT=2");
    const char *env[] = {envs[0], envs[1], NULL};
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("gdb_live", env, 120, &r), 0);
    CU_ASSERT_FALSE(r.timed_out);
    if (gt_contains(r.out, "ptrace: Operation not permitted")) {
        gt_child_free(&r);
        GT_SKIP("ptrace is not permitted here");
    }
    CU_ASSERT_TRUE(gt_contains(r.out, "gdb exit 0"));
    CU_ASSERT_TRUE(gt_contains(r.out, "ids 2 "));
    check_goroutines(r.out, "live");
    gt_child_free(&r);
}

static void test_core(void)
{
    if (!have_gdb()) {
        GT_SKIP("gdb is not installed");
    }
    char pattern[256] = "";
    FILE *f = fopen("/proc/sys/kernel/core_pattern", "r");
    if (f) {
        if (!fgets(pattern, sizeof pattern, f))
            pattern[0] = 0;
        fclose(f);
    }
    if (pattern[0] == '|' || strchr(pattern, '/')) {
        GT_SKIP("core_pattern sends cores elsewhere: %s", pattern);
    }
    char dir[] = "/tmp/gort-gdb-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char script[4200], envs[2][4300];
    script_path(script, sizeof script);
    snprintf(envs[0], sizeof envs[0], "GORT_GDB_DIR=%s", dir);
    const char *env[] = {envs[0], "GORT_TRACEBACK=crash", NULL};
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("gdb_core", env, 60, &r), 0);
    CU_ASSERT_EQUAL(r.signo, SIGABRT);
    char ids[128] = "";
    const char *p = strstr(r.out, "ids ");
    if (p)
        snprintf(ids, sizeof ids, "%.*s", (int)strcspn(p, "\n"), p);
    gt_child_free(&r);

    char core[4200] = "";
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d)) != NULL;)
        if (!strncmp(e->d_name, "core", 4))
            snprintf(core, sizeof core, "%s/%s", dir, e->d_name);
    if (d)
        closedir(d);
    if (!core[0]) {
        rmdir(dir);
        GT_SKIP("no core file was written; RLIMIT_CORE or the kernel said no");
    }
    char src[4300];
    snprintf(src, sizeof src, "source %s", script);
    const char *argv[] = {"gdb", "-q", "-nx", "-batch", "-ex", src, "-ex", "info goroutines", "-ex", "goroutine 2 bt",
                          gt_self_path(), core, NULL};
    CU_ASSERT_EQUAL_FATAL(gt_cmd_run(argv, NULL, 120, &r), 0);
    CU_ASSERT_TRUE(r.exited && r.status == 0);
    size_t len = strlen(ids) + r.outlen + 2;
    char *all = malloc(len);
    snprintf(all, len, "%s\n%s", ids, r.out);
    check_goroutines(all, "core");
    /* Goroutine 1 crashed: running, shown from its thread, below the
     * signal handler. */
    char line[256];
    const char *l = goroutine_line(all, 1, line, sizeof line);
    CU_ASSERT_TRUE(l && strstr(l, "running") && strstr(l, "core_body"));
    free(all);
    gt_child_free(&r);
    unlink(core);
    rmdir(dir);
}

GT_SUITE(gdb, {"live_process", test_live}, {"core_file", test_core})
