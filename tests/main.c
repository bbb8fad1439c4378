/*
 * main.c: the test runner.
 *   gort-test                 every suite
 *   gort-test SUITE [TEST]    one suite, or one test of it
 *   gort-test --list          names
 *   gort-test --child NAME    (internal) run a GT_CHILD body
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

#define SUITE(n) const gt_test *gt_suite_##n(void);
#include "test_list.h"
#undef SUITE

static const struct {
    const char *name;
    const gt_test *(*get)(void);
} suites[] = {
#define SUITE(n) {#n, gt_suite_##n},
#include "test_list.h"
#undef SUITE
};

static gt_child *children;
static char self_path[4096];

void gt_child_register(gt_child *c)
{
    c->next = children;
    children = c;
}

const char *gt_self_path(void) { return self_path; }

const char *gt_gortprof_path(void)
{
    const char *p = getenv("GORTPROF");
    return p && *p ? p : "build/gortprof";
}

static int scale = 1;

int gt_scale(void) { return scale; }

/* GORT_TEST_SCALE: a non-negative integer, or the runner refuses to start
 * (a setting that silently became 1 once made valgrind runs full-size). */
static bool read_scale(void)
{
    const char *s = getenv("GORT_TEST_SCALE");
    if (!s || !*s)
        return true;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 0 || v > 1000000) {
        fprintf(stderr, "gort-test: GORT_TEST_SCALE=%s: want an integer >= 0\n", s);
        return false;
    }
    scale = (int)v;
    return true;
}

/* Skipped tests, each once.  CUnit has no skip, so a skipped test passes
 * as far as CUnit knows; the closing line subtracts them. */
#define MAX_SKIPS 256
static CU_pTest skipped[MAX_SKIPS];
static int nskipped;

bool gt_have(const char *prog)
{
    gt_child_result r;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null", prog);
    const char *argv[] = {"sh", "-c", cmd, NULL};
    bool ok = gt_cmd_run(argv, NULL, 10, &r) == 0 && r.exited && r.status == 0;
    gt_child_free(&r);
    if (!ok)
        gt_skip("%s not installed", prog);
    return ok;
}

static char tmpdir[64];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void rm_tmpdir(void)
{
    if (tmpdir[0] && !getenv("KEEPTMP"))
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *gt_tmp(const char *name)
{
    static char buf[8][256];
    static int k;
    if (!tmpdir[0]) {
        strcpy(tmpdir, "/tmp/gort-test-XXXXXX");
        if (!mkdtemp(tmpdir))
            abort();
        atexit(rm_tmpdir);
    }
    char *b = buf[k++ & 7];
    snprintf(b, 256, "%s/%s", tmpdir, name);
    return b;
}

void gt_skip(const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    printf("skipped: %s ", why);
    fflush(stdout);
    CU_pTest t = CU_get_current_test();
    for (int i = 0; i < nskipped; i++)
        if (skipped[i] == t)
            return;
    if (nskipped < MAX_SKIPS)
        skipped[nskipped++] = t;
}

static bool test_failed(CU_pTest t)
{
    for (CU_pFailureRecord f = CU_get_failure_list(); f; f = f->pNext)
        if (f->pTest == t)
            return true;
    return false;
}

int gt_settle_goroutines(int target, int timeout_ms)
{
    int64_t deadline = gort_nanotime() + (int64_t)timeout_ms * 1000000;
    int n;
    while ((n = gort_numgoroutine()) > target && gort_nanotime() < deadline)
        gort_sleep(100000);
    return n;
}

bool gt_contains(const char *hay, const char *needle) { return hay && needle && strstr(hay, needle) != NULL; }

bool gt_first_line_is(const char *s, const char *line)
{
    if (!s)
        return false;
    size_t n = strlen(line);
    return strncmp(s, line, n) == 0 && (s[n] == '\n' || s[n] == 0);
}

void gt_child_free(gt_child_result *r)
{
    free(r->out);
    r->out = NULL;
}

int gt_cmd_run(const char *const *argv, const char *const *env, int timeout_s, gt_child_result *r)
{
    memset(r, 0, sizeof *r);
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        for (const char *const *e = env; e && *e; e++)
            putenv((char *)*e);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left_ms = timeout_s * 1000L - ((now.tv_sec - start.tv_sec) * 1000L + (now.tv_nsec - start.tv_nsec) / 1000000);
        if (left_ms <= 0) {
            kill(pid, SIGKILL);
            r->timed_out = 1;
            break;
        }
        struct pollfd p = {pfd[0], POLLIN, 0};
        int pr = poll(&p, 1, (int)left_ms);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        if (len + 4096 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        ssize_t n = read(pfd[0], buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(pfd[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    buf[len] = 0;
    r->out = buf;
    r->outlen = len;
    if (WIFEXITED(st)) {
        r->exited = 1;
        r->status = WEXITSTATUS(st);
    } else if (WIFSIGNALED(st)) {
        r->signo = WTERMSIG(st);
    }
    return 0;
}

int gt_child_run(const char *name, const char *const *env, int timeout_s, gt_child_result *r)
{
    const char *argv[] = {self_path, "--child", name, NULL};
    return gt_cmd_run(argv, env, timeout_s, r);
}

bool gt_child_expect(const char *name, const char *const *env, int timeout_s, const char *want)
{
    gt_child_result r;
    if (gt_child_run(name, env, timeout_s, &r) != 0)
        return false;
    bool ok = r.exited && r.status == 0 && !r.timed_out && gt_contains(r.out, want);
    if (!ok)
        printf("\n  child %s (exited=%d status=%d timed_out=%d), wanted \"%s\":\n%s\n", name, r.exited,
               r.status, r.timed_out, want, r.out);
    gt_child_free(&r);
    return ok;
}

static int run_child(const char *name)
{
    for (gt_child *c = children; c; c = c->next) {
        if (strcmp(c->name, name) == 0) {
            c->fn();
            return 0;
        }
    }
    fprintf(stderr, "gort-test: no child named %s\n", name);
    return 3;
}

int main(int argc, char **argv)
{
    ssize_t n = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
    if (n > 0)
        self_path[n] = 0;
    if (argc >= 3 && strcmp(argv[1], "--child") == 0)
        return run_child(argv[2]);
    size_t nsuites = sizeof suites / sizeof suites[0];
    if (argc >= 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < nsuites; i++)
            for (const gt_test *t = suites[i].get(); t->name; t++)
                printf("%s %s\n", suites[i].name, t->name);
        return 0;
    }
    if (!read_scale())
        return 2;
    const char *only_suite = argc >= 2 ? argv[1] : NULL;
    const char *only_test = argc >= 3 ? argv[2] : NULL;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    size_t added = 0;
    for (size_t i = 0; i < nsuites; i++) {
        if (only_suite && strcmp(only_suite, suites[i].name) != 0)
            continue;
        CU_pSuite s = CU_add_suite(suites[i].name, NULL, NULL);
        for (const gt_test *t = suites[i].get(); t->name; t++) {
            if (only_test && strcmp(only_test, t->name) != 0)
                continue;
            CU_add_test(s, t->name, t->fn);
            added++;
        }
    }
    if (added == 0) {
        fprintf(stderr, "gort-test: nothing matches\n");
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned nfailures = CU_get_number_of_failures();
    unsigned failed = CU_get_number_of_tests_failed();
    unsigned ran = CU_get_number_of_tests_run();
    unsigned skips = 0;
    for (int i = 0; i < nskipped; i++)
        skips += !test_failed(skipped[i]);
    /* The closing line, which CI reads: every test counted once. */
    printf("\n%u passed, %u failed, %u skipped\n", ran - failed - skips, failed, skips);
    CU_cleanup_registry();
    return (failed == 0 && nfailures == 0 && ran > 0) ? 0 : 1;
}
