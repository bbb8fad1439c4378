/*
 * profiles_test.c: goroutine, block and mutex profiles and labels.
 *
 * Goroutines park in known functions; the profiles are written to files
 * (pprof, debug=1 and debug=2 text), read back with prof/pprof_decode.c or
 * parsed as text, and handed to `go tool pprof -top` where go exists.
 * The mutex profile is driven through the runtime semaphore with the
 * mutex flag (what gort_mutex does on the chan/sync branch): contention
 * must be charged to the unlocker.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gort_prof.h"
#include "pprof.h"
#include "profiles.h"
#include "runtime.h"
#include "test.h"

#define BARRIER() __asm__ volatile("" ::: "memory")

static gort_waitgroup ready, release;

__attribute__((noinline)) static void prof_parker(void *arg)
{
    (void)arg;
    gort_wg_done(&ready);
    gort_wg_wait(&release);
    BARRIER();
}

static void spawn_labelled(void *arg)
{
    int n = (int)(intptr_t)arg;
    for (int i = 0; i < n; i++)
        gort_go(prof_parker, NULL);
}

static char *slurp(const char *path)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (gort__pprof_slurp(path, 64 << 20, &buf, &len) != 0)
        return NULL;
    char *s = realloc(buf, len + 1);
    s[len] = 0;
    return s;
}

static int write_to(const char *path, const char *name, int debug)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int r = gort_profile_write(name, fd, debug);
    close(fd);
    return r;
}

/* Sum of the first value of samples whose stack names fn. */
static int64_t value_with(const gort__pprof_t *p, const char *fn, int vi, bool *labelled)
{
    int64_t v = 0;
    for (size_t i = 0; i < p->nsample; i++) {
        const gort__pprof_sample_t *s = &p->sample[i];
        bool has = false;
        for (uint32_t j = 0; j < s->nloc && !has; j++) {
            const gort__pprof_location_t *l = &p->loc[s->loc[j]];
            for (uint32_t k = 0; k < l->nline; k++)
                if (l->line[k].func != GORT__PPROF_NONE && !strcmp(p->str[p->func[l->line[k].func].name], fn))
                    has = true;
        }
        if (!has)
            continue;
        v += s->value[vi];
        for (uint32_t k = 0; labelled && k < s->nlabel; k++)
            if (!strcmp(p->str[s->label[k].key], "job") && !strcmp(p->str[s->label[k].str], "park"))
                *labelled = true;
    }
    return v;
}

static bool have_go(void)
{
    gt_child_result r;
    const char *argv[] = {"go", "version", NULL};
    if (gt_cmd_run(argv, NULL, 20, &r) != 0)
        return false;
    bool ok = r.exited && r.status == 0;
    gt_child_free(&r);
    return ok;
}

static int go_state = -1;

static void go_pprof_top(const char *path, const char *want)
{
    if (go_state < 0)
        go_state = have_go();
    if (!go_state) {
        printf("\n    (go not found: skipping go tool pprof on %s) ", path);
        return;
    }
    gt_child_result r;
    const char *argv[] = {"go", "tool", "pprof", "-top", gt_self_path(), path, NULL};
    CU_ASSERT_EQUAL_FATAL(gt_cmd_run(argv, NULL, 60, &r), 0);
    bool ok = r.exited && r.status == 0 && (!want || gt_contains(r.out, want));
    CU_ASSERT(ok);
    if (!ok)
        fprintf(stderr, "go tool pprof -top %s:\n%s\n", path, r.out);
    gt_child_free(&r);
}

/* Go's debug=1 record lines: "N @ 0x.. 0x.." (goroutine) or "C N @ ..."
 * (contention), then "#\t0x..\tfunc+0x..\tfile:line" frames. */
static bool text_parses(const char *s, bool counts2, const char *fn, long *fn_count)
{
    bool saw_fn = false;
    long cur = 0;
    *fn_count = 0;
    for (const char *line = s; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        char buf[1024];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < 1000 ? len : 1000), line);
        if (buf[0] >= '0' && buf[0] <= '9') {
            long a, b;
            char at;
            int k = counts2 ? sscanf(buf, "%ld %ld %c", &a, &b, &at) : sscanf(buf, "%ld %c", &a, &at);
            if (k != (counts2 ? 3 : 2) || at != '@' || !strstr(buf, " 0x"))
                return false;
            cur = counts2 ? b : a;
            saw_fn = false;
        } else if (buf[0] == '#' && buf[1] == '\t') {
            unsigned long pc;
            char func[512], file[512];
            int ln;
            if (!strncmp(buf, "#\tlabels", 8) || sscanf(buf, "#\t%lx\t%511[^\t+]+%*x\t%511[^:]:%d", &pc, func, file, &ln) == 4) {
                if (!strncmp(buf, "#\t", 2) && strstr(buf, fn) && !saw_fn) {
                    *fn_count += cur;
                    saw_fn = true;
                }
            } else if (sscanf(buf, "#\t%lx", &pc) != 1 && strncmp(buf, "# labels: {", 11) != 0) {
                return false;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    return true;
}

/* ---- goroutine ---- */

static void goroutine_body(void *arg)
{
    (void)arg;
    const int n = 10;
    gort_wg_add(&ready, n + 2);
    gort_wg_add(&release, 1);
    const char *kv[] = {"job", "park"};
    gort_label_do(kv, 1, spawn_labelled, (void *)(intptr_t)n);
    CU_ASSERT_PTR_NULL(gort_label_get("job")); /* restored after do */
    gort_go(prof_parker, NULL);
    gort_go(prof_parker, NULL);
    gort_wg_wait(&ready);

    const char *pb = "/tmp/gort-goroutine.pprof", *pt = "/tmp/gort-goroutine.txt", *pd = "/tmp/gort-goroutine2.txt";
    CU_ASSERT_EQUAL(write_to(pb, "goroutine", 0), 0);
    CU_ASSERT_EQUAL(write_to(pt, "goroutine", 1), 0);
    CU_ASSERT_EQUAL(write_to(pd, "goroutine", 2), 0);
    CU_ASSERT_EQUAL(gort_profile_write("heap", 1, 0), -ENOENT);
    gort_wg_done(&release);

    char err[256];
    gort__pprof_t *p = gort__pprof_read_file(pb, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_STRING_EQUAL(p->str[p->sample_type[0].type], "goroutine");
    bool labelled = false;
    CU_ASSERT_EQUAL(value_with(p, "prof_parker", 0, &labelled), n + 2);
    CU_ASSERT_EQUAL(value_with(p, "gort_wg_wait", 0, NULL), n + 2);
    CU_ASSERT(labelled);
    CU_ASSERT(value_with(p, "goroutine_body", 0, NULL) >= 1);
    gort__pprof_free(p);

    char *t = slurp(pt);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT(!strncmp(t, "goroutine profile: total ", 25));
    long cnt = 0;
    CU_ASSERT(text_parses(t, false, "prof_parker", &cnt));
    CU_ASSERT_EQUAL(cnt, n + 2);
    CU_ASSERT(gt_contains(t, "# labels: {\"job\":\"park\"}"));
    free(t);
    t = slurp(pd);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT(gt_contains(t, "[sync.WaitGroup.Wait"));
    CU_ASSERT(gt_contains(t, "prof_parker("));
    free(t);
}

static void test_goroutine(void)
{
    GT_RUN(goroutine_body, NULL);
    go_pprof_top("/tmp/gort-goroutine.pprof", "prof_parker");
    go_pprof_top("/tmp/gort-goroutine.txt", NULL); /* the legacy text parser */
    unlink("/tmp/gort-goroutine.pprof");
    if (!getenv("GT_KEEP")) unlink("/tmp/gort-goroutine.txt");
    unlink("/tmp/gort-goroutine2.txt");
}

/* ---- goroutine, with the world running ---- */

/* The goroutine profile stops the world once, for a time that does not
 * grow with the number of goroutines (Go 1.19's design): the stacks are
 * read with the world running.  100,000 parked goroutines; the pause is
 * the stw_pause_total_ns counter across the call, the smallest of three
 * calls (a descheduled thread lengthens one pause on a loaded machine;
 * reading 100,000 stacks with the world stopped takes tens of ms). */
#define MANY 100000
static gort_waitgroup many_ready, many_release;

__attribute__((noinline)) static void many_parker(void *arg)
{
    (void)arg;
    gort_wg_done(&many_ready);
    gort_wg_wait(&many_release);
    BARRIER();
}

static void stw_o1_body(void *arg)
{
    (void)arg;
    gort_wg_add(&many_ready, MANY);
    gort_wg_add(&many_release, 1);
    for (int i = 0; i < MANY; i++)
        gort_go(many_parker, NULL);
    gort_wg_wait(&many_ready);
    uint64_t best = UINT64_MAX;
    for (int round = 0; round < 3; round++) {
        gort_stats a, b;
        gort_stats_get(&a);
        CU_ASSERT_EQUAL(write_to("/tmp/gort-goroutine-many.pprof", "goroutine", 0), 0);
        gort_stats_get(&b);
        CU_ASSERT_EQUAL(b.stw_count - a.stw_count, 1); /* one stop per profile */
        uint64_t d = b.stw_pause_total_ns - a.stw_pause_total_ns;
        CU_ASSERT(b.stw_pause_max_ns >= d);
        if (d < best)
            best = d;
    }
    gort_wg_done(&many_release);
    char err[256];
    gort__pprof_t *p = gort__pprof_read_file("/tmp/gort-goroutine-many.pprof", err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(value_with(p, "many_parker", 0, NULL), MANY);
    gort__pprof_free(p);
    unlink("/tmp/gort-goroutine-many.pprof");
    if (best > 1000 * 1000 || getenv("GT_VERBOSE"))
        fprintf(stderr, "goroutine profile of %d goroutines: world stopped %llu ns\n", MANY,
                (unsigned long long)best);
    CU_ASSERT(best <= 1000 * 1000);
}

static void test_goroutine_stw(void)
{
    GT_SKIP_UNDER_TSAN("100,000 goroutines: past TSan's limit of 8,128 threads and fibers");
    GT_RUN(stw_o1_body, NULL);
}

/* A snapshot all the same: goroutines that wake while the profile reads
 * stacks, and park again elsewhere, are still shown where they were when
 * the world stopped (the scheduler records each before it runs on).  A
 * releaser on another P wakes them as soon as the profile's stop is over. */
#if defined(GORT_TSAN)
#define SNAP 4000 /* TSan: a fiber per goroutine, 8,128 at most */
#else
#define SNAP 20000
#endif
static gort_waitgroup snap_ready, snap_release, snap_moved, snap_end;
static _Atomic int snap_go;

__attribute__((noinline)) static void snap_second(void)
{
    gort_wg_done(&snap_moved);
    gort_wg_wait(&snap_end);
    BARRIER();
}

__attribute__((noinline)) static void snap_first(void *arg)
{
    (void)arg;
    gort_wg_done(&snap_ready);
    gort_wg_wait(&snap_release);
    BARRIER();
    snap_second();
    BARRIER();
}

static void snap_releaser(void *arg)
{
    uint64_t base = (uint64_t)(uintptr_t)arg;
    while (!atomic_load(&snap_go))
        gort_yield();
    for (;;) {
        gort_stats st;
        gort_stats_get(&st);
        if (st.stw_count > base)
            break;
        gort_yield();
    }
    gort_wg_done(&snap_release);
}

static void snapshot_body(void *arg)
{
    (void)arg;
    int old = gort_maxprocs(2);
    gort_wg_add(&snap_ready, SNAP);
    gort_wg_add(&snap_release, 1);
    gort_wg_add(&snap_moved, SNAP);
    gort_wg_add(&snap_end, 1);
    for (int i = 0; i < SNAP; i++)
        gort_go(snap_first, NULL);
    gort_wg_wait(&snap_ready);
    gort_stats st;
    gort_stats_get(&st);
    gort_go(snap_releaser, (void *)(uintptr_t)st.stw_count);
    atomic_store(&snap_go, 1);
    CU_ASSERT_EQUAL(write_to("/tmp/gort-goroutine-snap.pprof", "goroutine", 0), 0);
    gort_wg_wait(&snap_moved);
    gort_wg_done(&snap_end);
    char err[256];
    gort__pprof_t *p = gort__pprof_read_file("/tmp/gort-goroutine-snap.pprof", err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    int64_t first = value_with(p, "snap_first", 0, NULL), second = value_with(p, "snap_second", 0, NULL);
    if (first != SNAP || second != 0)
        fprintf(stderr, "snapshot: %lld in snap_first, %lld in snap_second\n", (long long)first, (long long)second);
    CU_ASSERT_EQUAL(first, SNAP);
    CU_ASSERT_EQUAL(second, 0);
    gort__pprof_free(p);
    unlink("/tmp/gort-goroutine-snap.pprof");
    gort_maxprocs(old);
}

static void test_goroutine_snapshot(void) { GT_RUN(snapshot_body, NULL); }

/* Goroutines exit and their Gs and stacks are reused while goroutine
 * profiles are taken one after another, by two profilers at once (one
 * waits for the other): a profile must not read a G that dies and starts
 * over meanwhile, whose stack the scheduler hands to a new goroutine and
 * writes its first frame into.  TSan is the check here; any build checks
 * that every profile is written, the churn went on throughout, and each
 * gort_go returned its goroutine's id. */
#define CHURNERS 4
#define CHURN_ROUNDS 100
static gort_waitgroup churn_done, churn_prof_done;
static _Atomic int churn_stop, churn_errs;
static _Atomic long churn_spawned;

typedef struct churn_slot {
    gort_waitgroup *wg;
    uint64_t self; /* the leaf's gort_self() */
} churn_slot_t;

__attribute__((noinline)) static void churn_leaf(void *arg)
{
    churn_slot_t *s = arg;
    s->self = gort_self();
    BARRIER();
    gort_wg_done(s->wg);
}

/* Also checks gort_go's result: its G may have exited and been reused by
 * another gort_go before it returns (it once read the id from the G). */
static void churner(void *arg)
{
    (void)arg;
    while (!atomic_load(&churn_stop)) {
        gort_waitgroup wg = {0};
        churn_slot_t slot[8];
        uint64_t id[8];
        gort_wg_add(&wg, 8);
        for (int i = 0; i < 8; i++) {
            slot[i].wg = &wg;
            id[i] = gort_go(churn_leaf, &slot[i]);
        }
        gort_wg_wait(&wg);
        for (int i = 0; i < 8; i++)
            if (id[i] != slot[i].self)
                atomic_fetch_add(&churn_errs, 1);
        atomic_fetch_add(&churn_spawned, 8);
    }
    gort_wg_done(&churn_done);
}

static void churn_profiler(void *arg)
{
    (void)arg;
    int fd = open("/dev/null", O_WRONLY);
    for (int r = 0; r < CHURN_ROUNDS; r++) {
        long before = atomic_load(&churn_spawned);
        if (gort_profile_write("goroutine", fd, r % 2) != 0)
            atomic_fetch_add(&churn_errs, 1);
        /* Let the churn go on between profiles, so they overlap it. */
        while (atomic_load(&churn_spawned) == before)
            gort_yield();
    }
    close(fd);
    gort_wg_done(&churn_prof_done);
}

static void churn_body(void *arg)
{
    (void)arg;
    atomic_store(&churn_stop, 0);
    atomic_store(&churn_errs, 0);
    atomic_store(&churn_spawned, 0);
    gort_wg_add(&churn_done, CHURNERS);
    for (int i = 0; i < CHURNERS; i++)
        gort_go(churner, NULL);
    gort_wg_add(&churn_prof_done, 2);
    gort_go(churn_profiler, NULL);
    gort_go(churn_profiler, NULL);
    gort_wg_wait(&churn_prof_done);
    atomic_store(&churn_stop, 1);
    gort_wg_wait(&churn_done);
    CU_ASSERT_EQUAL(atomic_load(&churn_errs), 0);
    CU_ASSERT(atomic_load(&churn_spawned) >= 2 * CHURN_ROUNDS);
}

static void test_goroutine_churn(void) { GT_RUN(churn_body, NULL); }

/* ---- block ---- */

static gort_waitgroup bwg;
static _Atomic int bwaiting;

__attribute__((noinline)) static void block_waiter(void *arg)
{
    (void)arg;
    atomic_store(&bwaiting, 1);
    gort_wg_wait(&bwg);
    BARRIER();
}

static gort_waitgroup bdone;

static void block_waiter_g(void *arg)
{
    block_waiter(arg);
    gort_wg_done(&bdone);
}

static void block_body(void *arg)
{
    (void)arg;
    gort_set_block_profile_rate(1);
    gort_wg_add(&bwg, 1);
    gort_wg_add(&bdone, 1);
    atomic_store(&bwaiting, 0);
    gort_go(block_waiter_g, NULL);
    /* The 20 ms count from the moment it waits, not from the spawn: a new
     * M can take milliseconds to start under TSan and load. */
    while (!atomic_load(&bwaiting))
        gort_yield();
    gort_sleep(20 * 1000 * 1000);
    gort_wg_done(&bwg);
    gort_wg_wait(&bdone);
    gort_set_block_profile_rate(0);
    CU_ASSERT_EQUAL(write_to("/tmp/gort-block.pprof", "block", 0), 0);
    CU_ASSERT_EQUAL(write_to("/tmp/gort-block.txt", "block", 1), 0);
    char err[256];
    gort__pprof_t *p = gort__pprof_read_file("/tmp/gort-block.pprof", err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_STRING_EQUAL(p->str[p->sample_type[1].type], "delay");
    CU_ASSERT(value_with(p, "block_waiter", 0, NULL) >= 1);
    int64_t d = value_with(p, "block_waiter", 1, NULL);
    CU_ASSERT(d >= 15 * 1000 * 1000);
    CU_ASSERT(value_with(p, "gort_wg_wait", 0, NULL) >= 1);
    gort__pprof_free(p);
    char *t = slurp("/tmp/gort-block.txt");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT(!strncmp(t, "--- contention:\ncycles/second=1000000000\n", 41));
    long cnt = 0;
    CU_ASSERT(text_parses(t, true, "block_waiter", &cnt));
    CU_ASSERT(cnt >= 1);
    free(t);
}

static void test_block(void)
{
    GT_RUN(block_body, NULL);
    go_pprof_top("/tmp/gort-block.pprof", "block_waiter");
    go_pprof_top("/tmp/gort-block.txt", NULL);
    unlink("/tmp/gort-block.pprof");
    unlink("/tmp/gort-block.txt");
}

/* ---- mutex ---- */

static _Atomic uint32_t msema; /* 0: held */
static gort_waitgroup mdone, mwaiting;

__attribute__((noinline)) static void mutex_unlocker(void)
{
    gort_sleep(10 * 1000 * 1000); /* the waiter waits meanwhile */
    gort__semrelease(&msema, false, 1);
    BARRIER();
}

__attribute__((noinline)) static void mutex_waiter(void *arg)
{
    (void)arg;
    gort_wg_done(&mwaiting);
    gort__semacquire(&msema, false, WR_SYNC_MUTEX_LOCK, SEMA_PROF_MUTEX);
    gort_wg_done(&mdone);
}

static void mutex_body(void *arg)
{
    (void)arg;
    CU_ASSERT_EQUAL(gort_set_mutex_profile_fraction(1), 0);
    for (int i = 0; i < 3; i++) {
        gort_wg_add(&mdone, 1);
        gort_wg_add(&mwaiting, 1);
        gort_go(mutex_waiter, NULL);
        gort_wg_wait(&mwaiting);
        mutex_unlocker();
        gort_wg_wait(&mdone);
    }
    CU_ASSERT_EQUAL(gort_set_mutex_profile_fraction(-1), 1);
    CU_ASSERT_EQUAL(write_to("/tmp/gort-mutex.pprof", "mutex", 0), 0);
    CU_ASSERT_EQUAL(write_to("/tmp/gort-mutex.txt", "mutex", 1), 0);
    CU_ASSERT_EQUAL(gort_set_mutex_profile_fraction(0), 1);
    char err[256];
    gort__pprof_t *p = gort__pprof_read_file("/tmp/gort-mutex.pprof", err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT(value_with(p, "mutex_unlocker", 0, NULL) >= 2);
    CU_ASSERT(value_with(p, "mutex_unlocker", 1, NULL) >= 10 * 1000 * 1000);
    CU_ASSERT_EQUAL(value_with(p, "mutex_waiter", 0, NULL), 0); /* charged to the unlocker */
    gort__pprof_free(p);
    char *t = slurp("/tmp/gort-mutex.txt");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT(!strncmp(t, "--- mutex:\ncycles/second=1000000000\nsampling period=1\n", 54));
    long cnt = 0;
    CU_ASSERT(text_parses(t, true, "mutex_unlocker", &cnt));
    CU_ASSERT(cnt >= 2);
    free(t);
}

static void test_mutex(void)
{
    GT_RUN(mutex_body, NULL);
    go_pprof_top("/tmp/gort-mutex.pprof", "mutex_unlocker");
    go_pprof_top("/tmp/gort-mutex.txt", NULL);
    unlink("/tmp/gort-mutex.pprof");
    if (!getenv("GT_KEEP")) unlink("/tmp/gort-mutex.txt");
}

/* ---- labels ---- */

static void inner(void *arg)
{
    int *ok = arg;
    *ok = gort_label_get("a") && !strcmp(gort_label_get("a"), "1") && gort_label_get("b") &&
          !strcmp(gort_label_get("b"), "2");
    gort_label_set("c", "3");
}

static int child_ok;
static gort_waitgroup lwg;

static void label_child(void *arg)
{
    (void)arg;
    child_ok = gort_label_get("a") && !strcmp(gort_label_get("a"), "1") && !gort_label_get("c");
    gort_wg_done(&lwg);
}

static void labels_body(void *arg)
{
    (void)arg;
    CU_ASSERT_PTR_NULL(gort_label_get("a"));
    gort_label_set("a", "1");
    CU_ASSERT_STRING_EQUAL(gort_label_get("a"), "1");
    int ok = 0;
    const char *kv[] = {"b", "2"};
    gort_label_do(kv, 1, inner, &ok);
    CU_ASSERT(ok);
    CU_ASSERT_PTR_NULL(gort_label_get("b"));
    CU_ASSERT_PTR_NULL(gort_label_get("c")); /* do restores the set */
    int base = gort_numgoroutine();
    gort_wg_add(&lwg, 1);
    gort_go(label_child, NULL);
    gort_wg_wait(&lwg);
    gt_settle_goroutines(base, 5000); /* the child has exited: labels released */
    CU_ASSERT(child_ok);
    gort_label_set("a", NULL);
    CU_ASSERT_PTR_NULL(gort_label_get("a"));
}

static void test_labels(void)
{
    int64_t live0 = atomic_load(&gort__labels_live);
    GT_RUN(labels_body, NULL);
    /* Every set made (by set, do and inheritance) was freed again: the
     * body ends with no labels and its child has exited.  gort_label_do
     * once kept an extra reference to the set it restored. */
    CU_ASSERT_EQUAL(atomic_load(&gort__labels_live), live0);
}

GT_SUITE(profiles,
         {"labels", test_labels},
         {"goroutine", test_goroutine},
         {"goroutine_stw", test_goroutine_stw},
         {"goroutine_snapshot", test_goroutine_snapshot},
         {"goroutine_churn", test_goroutine_churn},
         {"block", test_block},
         {"mutex", test_mutex})
