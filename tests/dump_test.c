/*
 * dump_test.c: goroutine dumps as text.  Goroutines are parked in known
 * functions at known depths (noinline chains, one always_inline function,
 * the call lines recorded with __LINE__ on the line of each call) and the
 * text of gort_stack/gort_dump is checked line by line against them:
 * headers and wait reasons, function names, file:line, the inlined frame,
 * "created by ... in goroutine N".  Also: a running goroutine captured
 * through SIGURG, one in a system call, one that never ran, a stack that
 * faults while being read, 10,000 goroutines, and the unwinding and
 * symbolization APIs underneath.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cfi.h"
#include "dump.h"
#include "runtime.h"
#include "symtab.h"
#include "test.h"
#include "unwind.h"

#define BARRIER() __asm__ volatile("" ::: "memory") /* no tail calls */
#define DUMPSZ (4u << 20)

/* The section of a dump for goroutine goid (malloc'd), or NULL. */
static char *section(const char *dump, uint64_t goid)
{
    char head[64];
    snprintf(head, sizeof head, "goroutine %llu [", (unsigned long long)goid);
    const char *p = dump;
    while ((p = strstr(p, head)) != NULL) {
        if (p == dump || p[-1] == '\n')
            break;
        p++;
    }
    if (!p)
        return NULL;
    const char *end = strstr(p, "\n\n");
    size_t n = end ? (size_t)(end - p) + 1 : strlen(p);
    char *s = malloc(n + 1);
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

/* Each needle occurs in s, in this order. */
static bool in_order(const char *s, const char *const *needles, int n);

/* Section s starts with head and holds needles in order; printed if not. */
static void expect_section(const char *what, const char *s, const char *head, const char *const *needles, int n)
{
    bool starts = strncmp(s, head, strlen(head)) == 0, ordered = in_order(s, needles, n);
    CU_ASSERT_TRUE(starts);
    CU_ASSERT_TRUE(ordered);
    if (!starts || !ordered)
        fprintf(stderr, "\nparked_chain, %s:\n%s\n", what, s);
}

static bool in_order(const char *s, const char *const *needles, int n)
{
    const char *p = s;
    for (int i = 0; i < n; i++) {
        const char *q = p ? strstr(p, needles[i]) : NULL;
        if (!q) {
            fprintf(stderr, "\n  missing in order: \"%s\"\n  in:\n%s\n", needles[i], s);
            return false;
        }
        p = q + strlen(needles[i]);
    }
    return true;
}

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static gort_g_t *find_g(uint64_t goid)
{
    gort_g_t *r = NULL;
    gort__lock(&gort__allglock);
    for (size_t i = 0; i < gort__nallgs; i++)
        if (gort__allgs[i]->goid == goid && atomic_load(&gort__allgs[i]->status) != G_DEAD)
            r = gort__allgs[i];
    gort__unlock(&gort__allglock);
    return r;
}

/* Waits (bounded) until goroutine goid has status st and, if wr is not 0,
 * that wait reason (set before the status is published). */
static bool wait_status_wr(uint64_t goid, uint32_t st, int wr)
{
    for (int i = 0; i < 5000; i++) {
        gort_g_t *gp = find_g(goid);
        if (gp && atomic_load(&gp->status) == st && (wr == 0 || gp->waitreason == wr))
            return true;
        gort_sleep(1000000);
    }
    return false;
}

static bool wait_status(uint64_t goid, uint32_t st) { return wait_status_wr(goid, st, 0); }

/* ---- a chain with an inlined frame, a sleeper, a locked goroutine ---- */

static gort_waitgroup c_ready, c_release, c_done;
static int line_wait_call, line_inl_call, line_l3_call, line_l2_call, line_go_chain, line_go_locked;
static int line_sleep_call, line_s2_call, line_go_sleeper, line_stack_call;

static inline __attribute__((always_inline)) void dump_inline_wait(void)
{
    line_wait_call = __LINE__; gort_wg_wait(&c_release);
    BARRIER();
}

__attribute__((noinline)) static void dump_level3(void)
{
    gort_wg_done(&c_ready);
    line_inl_call = __LINE__; dump_inline_wait();
    BARRIER();
}

__attribute__((noinline)) static void dump_level2(void)
{
    line_l3_call = __LINE__; dump_level3();
    BARRIER();
}

__attribute__((noinline)) static void dump_level1(void *arg)
{
    (void)arg;
    line_l2_call = __LINE__; dump_level2();
    BARRIER();
    gort_wg_done(&c_done);
}

/* The sleeper sleeps until the dump is taken: one 400 ms sleep ended
 * before a dump on a loaded machine at 128 Ps.  sleeps counts its naps, so
 * the test can tell a dump that caught one nap from one that did not. */
static _Atomic int sleeper_release, sleeper_naps;

__attribute__((noinline)) static void dump_sleeper2(void)
{
    gort_wg_done(&c_ready);
    while (!atomic_load(&sleeper_release)) {
        atomic_fetch_add(&sleeper_naps, 1);
        line_sleep_call = __LINE__; gort_sleep(400 * 1000000LL);
    }
    BARRIER();
}

__attribute__((noinline)) static void dump_sleeper1(void *arg)
{
    (void)arg;
    line_s2_call = __LINE__; dump_sleeper2();
    BARRIER();
    gort_wg_done(&c_done);
}

__attribute__((noinline)) static void dump_locked(void *arg)
{
    (void)arg;
    gort_lock_thread();
    gort_wg_done(&c_ready);
    gort_wg_wait(&c_release);
    gort_unlock_thread();
    gort_wg_done(&c_done);
}

static uint64_t id_chain, id_sleeper, id_locked, id_main;
static char *chain_dump;

__attribute__((noinline)) static void dump_spawn(void)
{
    line_go_chain = __LINE__; id_chain = gort_go(dump_level1, NULL);
    line_go_sleeper = __LINE__; id_sleeper = gort_go(dump_sleeper1, NULL);
    line_go_locked = __LINE__; id_locked = gort_go(dump_locked, NULL);
    BARRIER();
}

static void chain_body(void *arg)
{
    (void)arg;
    id_main = gort_self();
    gort_wg_add(&c_release, 1);
    gort_wg_add(&c_ready, 3);
    gort_wg_add(&c_done, 3);
    dump_spawn();
    gort_wg_wait(&c_ready);
    /* In the wait the dump must show: a goroutine can park for a moment
     * on its way there, and its stamp below would be lost to the next
     * park (TSan at 128 Ps: the locked one's header had no "3 minutes"). */
    CU_ASSERT_FATAL(wait_status_wr(id_chain, G_WAITING, WR_SYNC_WAITGROUP_WAIT));
    CU_ASSERT_FATAL(wait_status_wr(id_locked, G_WAITING, WR_SYNC_WAITGROUP_WAIT));
    /* The locked goroutine has waited "3 minutes" as far as its header
     * knows (waitsince is only read by dumps).  park_m stamps waitsince
     * before it publishes G_WAITING, so this write is not overwritten. */
    gort_g_t *lg = find_g(id_locked);
    CU_ASSERT_PTR_NOT_NULL_FATAL(lg);
    lg->waitsince -= 185LL * 1000000000LL;
    chain_dump = malloc(DUMPSZ);
    size_t n;
    /* Until a dump that caught the sleeper inside one nap. */
    for (int attempt = 0;; attempt++) {
        CU_ASSERT_FATAL(wait_status_wr(id_sleeper, G_WAITING, WR_SLEEP));
        int naps = atomic_load(&sleeper_naps);
        line_stack_call = __LINE__; n = gort_stack(chain_dump, DUMPSZ - 1, true);
        if ((atomic_load(&sleeper_naps) == naps && atomic_load(&find_g(id_sleeper)->status) == G_WAITING) ||
            attempt == 50)
            break;
    }
    chain_dump[n] = 0;
    atomic_store(&sleeper_release, 1);
    gort_wg_done(&c_release);
    gort_wg_wait(&c_done);
}

static void test_parked_chain(void)
{
    GT_RUN(chain_body, NULL);
    const char *d = chain_dump;
    if (getenv("GORT_TEST_PRINT_DUMP")) /* docs/dumps.md shows this dump */
        printf("\n%s\n", d);
    char b[16][160];
    /* The caller first, as runtime.Stack(all) prints it. */
    snprintf(b[0], sizeof b[0], "goroutine %llu [running]:\nchain_body(...)\n\t", (unsigned long long)id_main);
    CU_ASSERT_TRUE(strncmp(d, b[0], strlen(b[0])) == 0);
    snprintf(b[1], sizeof b[1], "tests/dump_test.c:%d +0x", line_stack_call);
    CU_ASSERT_TRUE(gt_contains(d, b[1]));

    char *s = section(d, id_chain);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    snprintf(b[0], sizeof b[0], "goroutine %llu [sync.WaitGroup.Wait]:\n", (unsigned long long)id_chain);
    snprintf(b[1], sizeof b[1], "gort_wg_wait(...)\n\t");
    snprintf(b[2], sizeof b[2], "runtime/waitgroup.c:");
    snprintf(b[3], sizeof b[3], "\ndump_inline_wait(...)\n\t");
    snprintf(b[4], sizeof b[4], "tests/dump_test.c:%d\n", line_wait_call); /* inlined: no offset */
    snprintf(b[5], sizeof b[5], "dump_level3()\n\t");
    snprintf(b[6], sizeof b[6], "tests/dump_test.c:%d +0x", line_inl_call);
    snprintf(b[7], sizeof b[7], "\ndump_level2()\n\t");
    snprintf(b[8], sizeof b[8], "tests/dump_test.c:%d +0x", line_l3_call);
    snprintf(b[9], sizeof b[9], "\ndump_level1(...)\n\t");
    snprintf(b[10], sizeof b[10], "tests/dump_test.c:%d +0x", line_l2_call);
    snprintf(b[11], sizeof b[11], "\ncreated by dump_spawn in goroutine %llu\n\t", (unsigned long long)id_main);
    snprintf(b[12], sizeof b[12], "tests/dump_test.c:%d +0x", line_go_chain);
    const char *nd[13];
    for (int i = 0; i < 13; i++)
        nd[i] = b[i];
    expect_section("the chain", s, b[0], nd, 13);
    /* Paths are absolute, runtime frames hidden. */
    CU_ASSERT_TRUE(gt_contains(s, "\t/"));
    CU_ASSERT_FALSE(gt_contains(s, "gort__"));
    free(s);

    s = section(d, id_sleeper);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    snprintf(b[0], sizeof b[0], "goroutine %llu [sleep]:\ngort_sleep(...)\n\t", (unsigned long long)id_sleeper);
    snprintf(b[1], sizeof b[1], "\ndump_sleeper2()\n\t");
    snprintf(b[2], sizeof b[2], "tests/dump_test.c:%d +0x", line_sleep_call);
    snprintf(b[3], sizeof b[3], "\ndump_sleeper1(...)\n\t");
    snprintf(b[4], sizeof b[4], "tests/dump_test.c:%d +0x", line_s2_call);
    snprintf(b[5], sizeof b[5], "\ncreated by dump_spawn in goroutine %llu\n\t", (unsigned long long)id_main);
    snprintf(b[6], sizeof b[6], "tests/dump_test.c:%d +0x", line_go_sleeper);
    expect_section("the sleeper", s, b[0], nd, 7);
    free(s);

    s = section(d, id_locked);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    snprintf(b[0], sizeof b[0], "goroutine %llu [sync.WaitGroup.Wait, 3 minutes, locked to thread]:\n",
             (unsigned long long)id_locked);
    snprintf(b[1], sizeof b[1], "\ndump_locked(...)\n\t");
    snprintf(b[2], sizeof b[2], "tests/dump_test.c:%d +0x", line_go_locked);
    expect_section("the locked goroutine", s, b[0], nd + 1, 2);
    free(s);
    free(chain_dump);
}

/* ---- gort_stack(false), truncation, gort_dump(fd), GORT_TRACEBACK=system ---- */

static char self_buf[8192], tiny_buf[40];
static size_t self_n, tiny_n;
static int line_self_call;
static char *fd_text;

__attribute__((noinline)) static void self_inner(void)
{
    line_self_call = __LINE__; self_n = gort_stack(self_buf, sizeof self_buf - 1, false);
    BARRIER();
    tiny_n = gort_stack(tiny_buf, sizeof tiny_buf, false);
    int fd = memfd_create("gort-dump", 0);
    if (fd >= 0) {
        gort_dump(fd);
        off_t len = lseek(fd, 0, SEEK_CUR);
        fd_text = calloc(1, (size_t)len + 1);
        if (pread(fd, fd_text, (size_t)len, 0) != len)
            fd_text[0] = 0;
        close(fd);
    }
}

static void self_body(void *arg)
{
    (void)arg;
    id_main = gort_self();
    self_inner();
    BARRIER();
}

static void test_self_and_fd(void)
{
    GT_RUN(self_body, NULL);
    self_buf[self_n] = 0;
    char b[3][128];
    snprintf(b[0], sizeof b[0], "goroutine %llu [running]:\nself_inner()\n\t", (unsigned long long)id_main);
    snprintf(b[1], sizeof b[1], "tests/dump_test.c:%d +0x", line_self_call);
    snprintf(b[2], sizeof b[2], "\nself_body(...)\n\t");
    const char *nd[] = {b[0], b[1], b[2]};
    CU_ASSERT_TRUE(strncmp(self_buf, b[0], strlen(b[0])) == 0);
    CU_ASSERT_TRUE(in_order(self_buf, nd, 3));
    CU_ASSERT_EQUAL(count(self_buf, "goroutine "), 1); /* only the caller */
    CU_ASSERT_FALSE(gt_contains(self_buf, "gort_stack")); /* starts at the caller */
    /* Truncated to the buffer, never past it. */
    CU_ASSERT_EQUAL(tiny_n, sizeof tiny_buf);
    CU_ASSERT_TRUE(memcmp(tiny_buf, self_buf, sizeof tiny_buf) == 0);
    /* gort_dump writes every goroutine to the fd, the caller first. */
    CU_ASSERT_PTR_NOT_NULL_FATAL(fd_text);
    snprintf(b[0], sizeof b[0], "goroutine %llu [running]:\nself_inner()\n", (unsigned long long)id_main);
    CU_ASSERT_TRUE(strncmp(fd_text, b[0], strlen(b[0])) == 0);
    free(fd_text);
    fd_text = NULL;
}

static void system_body(void *arg)
{
    (void)arg;
    self_n = gort_stack(self_buf, sizeof self_buf - 1, false);
}

static void test_traceback_system(void)
{
    int old = gort__settings.traceback;
    gort__settings.traceback = 3;
    GT_RUN(system_body, NULL);
    gort__settings.traceback = old;
    self_buf[self_n] = 0;
    /* Runtime frames appear: the goroutine's entry. */
    CU_ASSERT_TRUE(gt_contains(self_buf, "gort__goentry(...)\n\t"));
    CU_ASSERT_TRUE(gt_contains(self_buf, "runtime/proc.c:"));
}

/* ---- running (SIGURG capture), syscall, never ran ---- */

/* sysmon's SIGURG handler serves stack captures (m->capture_req). */
static void urg_install(void) {}
static void urg_restore(void) {}

static _Atomic int spin_state;
static gort_waitgroup r_done;
static int pipefd[2];
static uint64_t id_spin, id_reader, id_never;
static char *run_dump;
static int line_never_decl, line_read_call;

__attribute__((noinline)) static void dump_spin_loop(void)
{
    atomic_store(&spin_state, 1);
    while (atomic_load_explicit(&spin_state, memory_order_relaxed) != 2)
        gort__cpu_relax();
}

static void dump_spinner(void *arg)
{
    (void)arg;
    dump_spin_loop();
    BARRIER();
    gort_wg_done(&r_done);
}

__attribute__((noinline)) static void dump_reader(void *arg)
{
    (void)arg;
    char c;
    line_read_call = __LINE__; (void)!gort_read(pipefd[0], &c, 1);
    BARRIER();
    gort_wg_done(&r_done);
}

static void dump_never_fn(void *arg) { line_never_decl = __LINE__; (void)arg; gort_wg_done(&r_done); }

static void running_body(void *arg)
{
    (void)arg;
    id_main = gort_self();
    gort_wg_add(&r_done, 2);
    id_spin = gort_go(dump_spinner, NULL);
    id_reader = gort_go(dump_reader, NULL);
    while (atomic_load(&spin_state) != 1)
        gort_sleep(1000000);
    wait_status(id_reader, G_SYSCALL);
    run_dump = malloc(DUMPSZ);
    size_t n = gort_stack(run_dump, DUMPSZ - 1, true);
    run_dump[n] = 0;
    atomic_store(&spin_state, 2);
    (void)!write(pipefd[1], "x", 1);
    gort_wg_wait(&r_done);
}

static void never_body(void *arg)
{
    (void)arg;
    id_main = gort_self();
    gort_wg_add(&r_done, 1);
    /* One P, we do not yield, and test_never_ran keeps our slice from
     * ending at gort_go (a safe point): the new goroutine cannot start
     * before the dump. */
    id_never = gort_go(dump_never_fn, NULL);
    run_dump = malloc(DUMPSZ);
    size_t n = gort_stack(run_dump, DUMPSZ - 1, true);
    run_dump[n] = 0;
    gort_wg_wait(&r_done);
}

static void test_running_and_syscall(void)
{
    GT_SKIP_UNDER_TSAN("SIGURG stack capture waits for an intercepted call");
    CU_ASSERT_EQUAL_FATAL(pipe(pipefd), 0);
    urg_install();
    int mode = gort__dump_stw_mode;
    gort__dump_stw_mode = 0; /* read goroutines where they are */
    /* Without sysmon a goroutine blocked in read keeps its P: one P each
     * for the spinner, the reader and us. */
    int procs = gort_maxprocs(3);
    atomic_store(&spin_state, 0);
    GT_RUN(running_body, NULL);
    gort_maxprocs(procs);
    gort__dump_stw_mode = mode;
    urg_restore();
    close(pipefd[0]);
    close(pipefd[1]);

    char b[4][128];
    char *s = section(run_dump, id_spin);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    snprintf(b[0], sizeof b[0], "goroutine %llu [running]:\n", (unsigned long long)id_spin);
    CU_ASSERT_TRUE(strncmp(s, b[0], strlen(b[0])) == 0);
    /* Captured by its own thread, on SIGURG: the interrupted function. */
    CU_ASSERT_TRUE(gt_contains(s, "\ndump_spin_loop()\n\t"));
    CU_ASSERT_TRUE(gt_contains(s, "\ndump_spinner(...)\n\t"));
    CU_ASSERT_FALSE(gt_contains(s, "stack unavailable"));
    free(s);

    s = section(run_dump, id_reader);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    snprintf(b[0], sizeof b[0], "goroutine %llu [syscall]:\ngort_read(...)\n\t", (unsigned long long)id_reader);
    snprintf(b[1], sizeof b[1], "\ndump_reader(...)\n\t");
    snprintf(b[2], sizeof b[2], "tests/dump_test.c:%d +0x", line_read_call);
    const char *nd[] = {b[0], b[1], b[2]};
    CU_ASSERT_TRUE(strncmp(s, b[0], strlen(b[0])) == 0);
    CU_ASSERT_TRUE(in_order(s, nd, 3));
    free(s);
    free(run_dump);
}

static void test_never_ran(void)
{
    int procs = gort_maxprocs(1);
    /* gort_go is a safe point: a slice that ends there (a slow TSan build)
     * would run the new goroutine before the dump.  No slice ends here. */
    int64_t slice = __atomic_load_n(&gort__settings.slice_ns, __ATOMIC_RELAXED);
    __atomic_store_n(&gort__settings.slice_ns, 3600LL * 1000000000, __ATOMIC_RELAXED); /* sysmon reads it */
    GT_RUN(never_body, NULL);
    __atomic_store_n(&gort__settings.slice_ns, slice, __ATOMIC_RELAXED);
    gort_maxprocs(procs);
    char b[2][160];
    char *s = section(run_dump, id_never);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    /* Its entry function at its first line, without an offset. */
    snprintf(b[0], sizeof b[0], "goroutine %llu [runnable]:\ndump_never_fn(...)\n\t", (unsigned long long)id_never);
    snprintf(b[1], sizeof b[1], "tests/dump_test.c:%d\ncreated by never_body in goroutine %llu\n",
             line_never_decl, (unsigned long long)id_main);
    CU_ASSERT_TRUE(strncmp(s, b[0], strlen(b[0])) == 0);
    CU_ASSERT_TRUE(gt_contains(s, b[1]));
    free(s);
    free(run_dump);
}

/* ---- a stack that faults while being read; the stopped-world path ---- */

static gort_waitgroup f_ready, f_release, f_done;
static uint64_t id_f1, id_f2;
static char *fault_dump, *stw_dump;
static bool f_g_apart; /* the page made unreadable does not hold the G */

/* Parks two pages below its goroutine's top: the page the test makes
 * unreadable is then below the G, which may live in its stack's top page
 * (docs/runtime.md, "Where a G lives"); only the frames are to fault. */
__attribute__((noinline)) static void dump_fault_deep(void)
{
    volatile char pad[2 * GORT_PAGE_SIZE];
    pad[0] = 1;
    gort_wg_done(&f_ready);
    gort_wg_wait(&f_release);
    BARRIER();
    pad[sizeof pad - 1] = pad[0];
}

__attribute__((noinline)) static void dump_fault_parker(void *arg)
{
    (void)arg;
    dump_fault_deep();
    BARRIER();
    gort_wg_done(&f_done);
}

static void fault_body(void *arg)
{
    (void)arg;
    gort_wg_add(&f_ready, 2);
    gort_wg_add(&f_release, 1);
    gort_wg_add(&f_done, 2);
    id_f1 = gort_go(dump_fault_parker, NULL);
    id_f2 = gort_go(dump_fault_parker, NULL);
    gort_wg_wait(&f_ready);
    wait_status(id_f1, G_WAITING);
    wait_status(id_f2, G_WAITING);
    gort_g_t *g1 = find_g(id_f1);
    /* Its saved context becomes unreadable: the dump must note it and go
     * on (the SIGSEGV handler longjmps back into the dump). */
    void *page = (void *)((uintptr_t)g1->ctx.sp & ~(uintptr_t)(GORT_PAGE_SIZE - 1));
    f_g_apart = (uintptr_t)g1 + sizeof *g1 <= (uintptr_t)page || (uintptr_t)g1 >= (uintptr_t)page + GORT_PAGE_SIZE;
    if (!f_g_apart)
        page = NULL; /* protecting the G itself is not this test's fault */
    if (page)
        mprotect(page, GORT_PAGE_SIZE, PROT_NONE);
    fault_dump = malloc(DUMPSZ);
    size_t n = gort_stack(fault_dump, DUMPSZ - 1, true);
    fault_dump[n] = 0;
    if (page)
        mprotect(page, GORT_PAGE_SIZE, PROT_READ | PROT_WRITE);
    /* And with the world stopped around the dump. */
    int mode = gort__dump_stw_mode;
    gort__dump_stw_mode = 1;
    stw_dump = malloc(DUMPSZ);
    n = gort_stack(stw_dump, DUMPSZ - 1, true);
    stw_dump[n] = 0;
    gort__dump_stw_mode = mode;
    gort_wg_done(&f_release);
    gort_wg_wait(&f_done);
}

static void test_fault_and_stw(void)
{
    GT_RUN(fault_body, NULL);
    CU_ASSERT_TRUE_FATAL(f_g_apart);
    char *s1 = section(fault_dump, id_f1), *s2 = section(fault_dump, id_f2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s2);
    CU_ASSERT_TRUE(gt_contains(s1, "stack unreadable: signal 11"));
    CU_ASSERT_TRUE(gt_contains(s2, "\ndump_fault_parker(...)\n\t"));
    CU_ASSERT_TRUE(gt_contains(s2, "created by fault_body in goroutine"));
    free(s1);
    free(s2);
    /* The symbolizer survived: the next dump, world stopped, is complete. */
    s1 = section(stw_dump, id_f1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s1);
    CU_ASSERT_TRUE(gt_contains(s1, "[sync.WaitGroup.Wait]:\ngort_wg_wait(...)\n\t"));
    CU_ASSERT_TRUE(gt_contains(s1, "\ndump_fault_parker(...)\n\t"));
    CU_ASSERT_TRUE(gt_contains(stw_dump, "tests/dump_test.c:"));
    free(s1);
    free(fault_dump);
    free(stw_dump);
}

/* ---- a G the program made unreadable ---- */

/* A G placed at the top of its stack shares that page with the stack's
 * first frames, so a program that protects that page protects the G.  The
 * dump reads Gs ahead of the one it prints (prefetch hints): those reads
 * must fault under a live guard too, never into a jmp_buf whose frame has
 * returned.  One goroutine's section is then lost, and no other. */
#define UG_N 8
#define UG_BAD 5
static gort_waitgroup ug_ready, ug_release, ug_done;

__attribute__((noinline)) static void dump_ug_parker(void *arg)
{
    (void)arg;
    gort_wg_done(&ug_ready);
    gort_wg_wait(&ug_release);
    BARRIER();
    gort_wg_done(&ug_done);
}

static void ug_body(void *arg)
{
    (void)arg;
    uint64_t ids[UG_N];
    gort_wg_add(&ug_ready, UG_N);
    gort_wg_add(&ug_release, 1);
    gort_wg_add(&ug_done, UG_N);
    for (int i = 0; i < UG_N; i++)
        ids[i] = gort_go(dump_ug_parker, NULL);
    gort_wg_wait(&ug_ready);
    for (int i = 0; i < UG_N; i++)
        if (!wait_status(ids[i], G_WAITING))
            exit(3);
    gort_g_t *bad = find_g(ids[UG_BAD]);
    if ((uintptr_t)bad != bad->stack.hi) {
        printf("G not placed\n");
        exit(4);
    }
    void *page = (void *)((uintptr_t)bad & ~(uintptr_t)(GORT_PAGE_SIZE - 1));
    char *d = malloc(DUMPSZ);
    mprotect(page, GORT_PAGE_SIZE, PROT_NONE);
    size_t n = gort_stack(d, DUMPSZ - 1, true);
    mprotect(page, GORT_PAGE_SIZE, PROT_READ | PROT_WRITE);
    d[n] = 0;
    int complete = 0;
    for (int i = 0; i < UG_N; i++) {
        char *sec = section(d, ids[i]);
        if (sec && gt_contains(sec, "\ndump_ug_parker(...)\n\t"))
            complete++;
        free(sec);
    }
    printf("complete=%d unreadable=%d\n", complete, count(d, "stack unreadable: signal 11"));
    free(d);
    gort_wg_done(&ug_release);
    gort_wg_wait(&ug_done);
}
GT_CHILD(unreadable_g) { gort_main(ug_body, NULL); }

static void test_unreadable_g(void)
{
    char want[64];
    snprintf(want, sizeof want, "complete=%d unreadable=1\n", UG_N - 1);
    CU_ASSERT(gt_child_expect("unreadable_g", NULL, 30, want));
}

/* ---- 10,000 goroutines ---- */

static gort_waitgroup m_ready, m_release, m_done;
static char *many_dump;
static int many_live;
#if defined(GORT_TSAN)
#define NMANY 4000 /* TSan counts each goroutine's fiber as a thread: at most 8,128 live */
#else
#define NMANY 10000
#endif

__attribute__((noinline)) static void dump_many_leaf(void)
{
    gort_wg_done(&m_ready);
    gort_wg_wait(&m_release);
    BARRIER();
}

__attribute__((noinline)) static void dump_many_mid(void *arg)
{
    (void)arg;
    dump_many_leaf();
    BARRIER();
    gort_wg_done(&m_done);
}

__attribute__((noinline)) static void dump_many_spawn(void)
{
    for (int i = 0; i < NMANY; i++)
        gort_go(dump_many_mid, NULL);
}

static void many_body(void *arg)
{
    (void)arg;
    gort_wg_add(&m_ready, NMANY);
    gort_wg_add(&m_release, 1);
    gort_wg_add(&m_done, NMANY);
    dump_many_spawn();
    gort_wg_wait(&m_ready);
    /* Goroutines left by earlier tests resume with this gort_main: let
     * those that finish finish, so the count below is stable. */
    gt_settle_goroutines(NMANY + 1, 2000);
    size_t cap = 64u << 20;
    many_dump = malloc(cap);
    many_live = gort_numgoroutine();
    size_t n = gort_stack(many_dump, cap - 1, true);
    many_dump[n] = 0;
    gort_wg_done(&m_release);
    gort_wg_wait(&m_done);
}

static void test_ten_thousand(void)
{
    GT_RUN(many_body, NULL);
    int headers = count(many_dump, "goroutine ") - count(many_dump, " in goroutine ");
    CU_ASSERT_TRUE(headers >= NMANY + 1);
    CU_ASSERT_EQUAL(headers, many_live);
    CU_ASSERT_EQUAL(count(many_dump, "]:\ngort_wg_wait(...)\n\t"), NMANY);
    CU_ASSERT_EQUAL(count(many_dump, "\ndump_many_leaf()\n\t"), NMANY);
    CU_ASSERT_EQUAL(count(many_dump, "\ncreated by dump_many_spawn in goroutine "), NMANY);
    free(many_dump);
}

/* ---- the APIs underneath ---- */

extern int _ULx86_64_step(void *);
extern int dwarf_getscopes(void *, uint64_t, void *);
static int line_api_fn;
static uintptr_t api_pcs[32];
static int api_n;

__attribute__((noinline)) static void dump_api_fn(void)
{
    line_api_fn = __LINE__; api_n = gort__unwind_self(api_pcs, 32, 0);
    BARRIER();
}

static void api_body(void *arg)
{
    (void)arg;
    dump_api_fn();
    BARRIER();
}

static void test_symbolize_and_classes(void)
{
    GT_RUN(api_body, NULL);
    CU_ASSERT_TRUE_FATAL(api_n >= 2);
    gort_frame_t f[8];
    int k = gort__symbolize(api_pcs[0] - 1, f, 8, 0);
    CU_ASSERT_TRUE_FATAL(k >= 1);
    CU_ASSERT_STRING_EQUAL(f[k - 1].func, "dump_api_fn");
    CU_ASSERT_EQUAL(f[k - 1].line, line_api_fn);
    CU_ASSERT_TRUE(f[k - 1].file && strstr(f[k - 1].file, "tests/dump_test.c") && f[k - 1].file[0] == '/');
    CU_ASSERT_EQUAL(f[k - 1].quality, GORT_SYM_DWARF);
    CU_ASSERT_TRUE(f[k - 1].noargs);
    CU_ASSERT_FALSE(f[k - 1].runtime);
    k = gort__symbolize(api_pcs[1] - 1, f, 8, 0);
    CU_ASSERT_STRING_EQUAL(f[k - 1].func, "api_body");
    /* Repeats come from the cache; the no-libdw path still names it. */
    gort_symtab_stats_t st0, st1;
    gort__symtab_stats(&st0);
    (void)gort__symbolize(api_pcs[0] - 1, f, 8, 0);
    gort__symtab_stats(&st1);
    CU_ASSERT_EQUAL(st1.hits, st0.hits + 1);
    CU_ASSERT_EQUAL(st1.dwarf_lookups, st0.dwarf_lookups);
    k = gort__symbolize((uintptr_t)dump_api_fn + 1, f, 8, GORT_SYM_NODWARF);
    CU_ASSERT_EQUAL(k, 1);
    CU_ASSERT_EQUAL(f[0].quality, GORT_SYM_SYMTAB);
    CU_ASSERT_TRUE(strncmp(f[0].func, "dump_api_fn", 11) == 0);
    CU_ASSERT_TRUE(f[0].module != NULL);
    /* Classes. */
    CU_ASSERT_EQUAL(gort__pc_class((uintptr_t)dump_api_fn), GORT_PC_USER);
    CU_ASSERT_EQUAL(gort__pc_class((uintptr_t)gort__schedule), GORT_PC_GORT);
    CU_ASSERT_EQUAL(gort__pc_class((uintptr_t)gort__gstart), GORT_PC_GORT);
    CU_ASSERT_EQUAL(gort__pc_class((uintptr_t)gort_wg_wait), GORT_PC_GORT);
    /* (A sanitizer build interposes malloc: then it is not libc's.) */
    bool libc_malloc = strstr(gort__module_of((uintptr_t)malloc)->path, "libc.so") != NULL;
    if (libc_malloc)
        CU_ASSERT_EQUAL(gort__pc_class((uintptr_t)malloc), GORT_PC_LIBC);
    CU_ASSERT_EQUAL(gort__pc_class((uintptr_t)_ULx86_64_step), GORT_PC_UNWIND);
    CU_ASSERT_EQUAL(gort__pc_class((uintptr_t)dwarf_getscopes), GORT_PC_DW);
    CU_ASSERT_EQUAL(gort__pc_class(0x10), GORT_PC_UNKNOWN);
    if (libc_malloc) {
        CU_ASSERT_TRUE(gort__pc_in_malloc((uintptr_t)malloc + 1));
        CU_ASSERT_TRUE(gort__pc_in_malloc((uintptr_t)free + 1));
        CU_ASSERT_TRUE(gort__pc_is_unsafe((uintptr_t)malloc));
    }
    CU_ASSERT_FALSE(gort__pc_in_malloc((uintptr_t)getpid + 1));
    CU_ASSERT_TRUE(gort__pc_is_unsafe((uintptr_t)getpid));
    CU_ASSERT_FALSE(gort__pc_is_unsafe((uintptr_t)dump_api_fn));
    /* One rule for every user (sysmon/pcclass.c): unknown code is unsafe;
     * libgort's frames under user code are preemptible but libgort's. */
    CU_ASSERT_TRUE(gort__pc_is_unsafe(0x10));
    CU_ASSERT_EQUAL(gort__pc_class((uintptr_t)gort_call), GORT_PC_GORT_CALL);
    CU_ASSERT_FALSE(gort__pc_is_unsafe((uintptr_t)gort_call));
    CU_ASSERT_TRUE(gort__pc_class_is_gort(gort__pc_class((uintptr_t)gort_call)));
    /* One module list: basename prefixes. */
    CU_ASSERT_EQUAL(gort__pc_class_of_path("/lib/x86_64-linux-gnu/libc.so.6"), GORT_PC_LIBC);
    CU_ASSERT_EQUAL(gort__pc_class_of_path("/usr/lib/libgcc_s.so.1"), GORT_PC_LANGRT);
    CU_ASSERT_EQUAL(gort__pc_class_of_path("/usr/lib/libasan.so.8"), GORT_PC_SANITIZER);
    CU_ASSERT_EQUAL(gort__pc_class_of_path("/opt/lib/libgort.so.0"), GORT_PC_GORT);
    CU_ASSERT_EQUAL(gort__pc_class_of_path("[vdso]"), GORT_PC_VDSO);
    CU_ASSERT_EQUAL(gort__pc_class_of_path("/opt/mylibc.so"), GORT_PC_USER);
    /* Modules: the executable with its build id, and libc. */
    const gort_module_t *mods;
    int nm = gort__modules(&mods);
    char exe[4096];
    ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[el > 0 ? el : 0] = 0;
    bool saw_exe = false, saw_libc = false;
    for (int i = 0; i < nm; i++) {
        if (!strcmp(mods[i].path, exe)) {
            saw_exe = true;
            CU_ASSERT_TRUE(strlen(mods[i].build_id) >= 32);
            CU_ASSERT_TRUE(mods[i].start <= (uintptr_t)dump_api_fn && (uintptr_t)dump_api_fn < mods[i].end);
        }
        if (mods[i].cls == GORT_PC_LIBC && strstr(mods[i].path, "libc.so"))
            saw_libc = true;
    }
    CU_ASSERT_TRUE(saw_exe);
    CU_ASSERT_TRUE(saw_libc);
    CU_ASSERT_PTR_EQUAL(gort__module_of((uintptr_t)dump_api_fn)->path, gort__module_of((uintptr_t)api_body)->path);
    /* The unwind recipe of an ordinary frame is the fast form. */
    const gort_cfi_t *c = gort__cfi_find(api_pcs[0] - 1, true);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(c->kind, GORT_CFI_OK);
    CU_ASSERT_TRUE(c->fast);
    c = gort__cfi_find((uintptr_t)gort__gstart + 4, true);
    CU_ASSERT_EQUAL(c->kind, GORT_CFI_END);
}

/* A dump to a pipe that only a goroutine drains: the dump must not write
 * while the world is stopped (the reader could not run, and a full pipe
 * would hold the world stopped for good).  It collects in memory and
 * writes once the world runs. */
static gort_waitgroup pp_ready, pp_release, pp_finished;
static int pp_rfd;
static size_t pp_got;

static void pp_parker(void *a)
{
    (void)a;
    gort_wg_done(&pp_ready);
    gort_wg_wait(&pp_release);
    gort_wg_done(&pp_finished);
}

static void pp_reader(void *a)
{
    gort_waitgroup *done = a;
    char buf[4096];
    ssize_t r;
    while ((r = gort_read(pp_rfd, buf, sizeof buf)) > 0)
        pp_got += (size_t)r;
    gort_wg_done(done);
}

static void dump_pipe_body(void *a)
{
    (void)a;
    gort_maxprocs(2);
    int fds[2];
    if (pipe(fds) != 0)
        exit(3);
    (void)fcntl(fds[1], F_SETPIPE_SZ, 4096);
    pp_rfd = fds[0];
    gort_wg_add(&pp_ready, 1000);
    gort_wg_add(&pp_release, 1);
    gort_wg_add(&pp_finished, 1000);
    for (int i = 0; i < 1000; i++)
        gort_go(pp_parker, NULL);
    gort_wg_wait(&pp_ready);
    gort_waitgroup done = {0};
    gort_wg_add(&done, 1);
    gort_go(pp_reader, &done);
    gort_dump(fds[1]);
    close(fds[1]);
    gort_wg_wait(&done);
    close(fds[0]);
    gort_wg_done(&pp_release);
    gort_wg_wait(&pp_finished);
    printf("dump through a pipe: %s\n", pp_got > 64 * 1024 ? "ok" : "short");
}

GT_CHILD(dump_pipe) { gort_main(dump_pipe_body, NULL); }

static void test_dump_to_pipe(void)
{
    CU_ASSERT(gt_child_expect("dump_pipe", NULL, 30, "dump through a pipe: ok"));
}

GT_SUITE(dump,
         {"parked_chain", test_parked_chain},
         {"self_and_fd", test_self_and_fd},
         {"traceback_system", test_traceback_system},
         {"running_and_syscall", test_running_and_syscall},
         {"never_ran", test_never_ran},
         {"fault_and_stw", test_fault_and_stw},
         {"unreadable_g", test_unreadable_g},
         {"ten_thousand", test_ten_thousand},
         {"dump_to_pipe", test_dump_to_pipe},
         {"symbolize_and_classes", test_symbolize_and_classes})
