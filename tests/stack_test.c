/*
 * stack_test.c: goroutine stacks: lazily committed, reused, and guarded
 * without a mapping per stack, so a hundred thousand parked goroutines stay
 * far below vm.max_map_count.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"
#include "test.h"

static int count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return -1;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static gort_waitgroup parked, release, finished;
static _Atomic int max_depth_ok;

static void parker(void *a)
{
    (void)a;
    gort_wg_done(&parked);
    gort_wg_wait(&release);
    gort_wg_done(&finished);
}

static int maps_parked;
static int nparked;
static int live_before, live_parked, live_after;
static void parked_body(void *a)
{
    (void)a;
    live_before = gort_numgoroutine();
    gort_wg_add(&release, 1);
    gort_wg_add(&parked, nparked);
    gort_wg_add(&finished, nparked);
    for (int i = 0; i < nparked; i++)
        gort_go(parker, NULL);
    gort_wg_wait(&parked);
    maps_parked = count_maps();
    live_parked = gort_numgoroutine();
    gort_wg_done(&release);
    gort_wg_wait(&finished);
    live_after = gt_settle_goroutines(live_before, 5000);
}

static void test_many_parked_few_maps(void)
{
    GT_SKIP_UNDER_TSAN("TSan maps memory for every fiber");
#if defined(GORT_TSAN)
    nparked = 5000; /* TSan shadows every stack page */
#else
    nparked = 100000;
#endif
    int before = count_maps();
    GT_RUN(parked_body, NULL);
    /* One mapping per stack would be 100,000 (200,000 with PROT_NONE
     * guards); slabs with lightweight guards need a few hundred at most. */
    CU_ASSERT_TRUE(maps_parked - before < 2000);
    CU_ASSERT_EQUAL(live_parked, live_before + nparked);
    CU_ASSERT_EQUAL(live_after, live_before);
}

/* Deep recursion within the default stack works, and the stack comes back
 * clean for reuse. */
static int recurse(int n, volatile char *prev)
{
    volatile char buf[512];
    buf[0] = (char)n;
    buf[511] = prev ? prev[0] : 0;
    if (n == 0)
        return buf[0] + buf[511];
    return recurse(n - 1, buf) + 1;
}
static void deep(void *a)
{
    gort_waitgroup *wg = a;
    /* ~200 KiB of frames in a 256 KiB stack. */
    if (recurse(350, NULL) >= 350)
        atomic_fetch_add(&max_depth_ok, 1);
    gort_wg_done(wg);
}
static void deep_body(void *a)
{
    (void)a;
    gort_waitgroup wg = {0};
    gort_wg_add(&wg, 64);
    for (int i = 0; i < 64; i++)
        gort_go(deep, &wg);
    gort_wg_wait(&wg);
}
static void test_deep_recursion(void)
{
    atomic_store(&max_depth_ok, 0);
    GT_RUN(deep_body, NULL);
    CU_ASSERT_EQUAL(atomic_load(&max_depth_ok), 64);
}

GT_CHILD(stack_size_env)
{
    gort__runtime_init();
    printf("stack=%zu\n", gort__stack_size());
}

static void test_stack_size_env(void)
{
    const char *env[] = {"GORT_STACK_SIZE=64k", NULL};
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("stack_size_env", env, 20, &r), 0);
    CU_ASSERT_TRUE(gt_contains(r.out, "stack=65536"));
    gt_child_free(&r);
    const char *env2[] = {"GORT_STACK_SIZE=1m", NULL};
    CU_ASSERT_EQUAL_FATAL(gt_child_run("stack_size_env", env2, 20, &r), 0);
    CU_ASSERT_TRUE(gt_contains(r.out, "stack=1048576"));
    gt_child_free(&r);
}

/* The guard below each stack faults: writing just under stack.lo kills
 * the process with SIGSEGV instead of corrupting a neighbour. */
static void guard_fn(void *a)
{
    (void)a;
    gort_g_t *gp = gort__getg();
    printf("guard=%d\n", gp->stack.guard);
    fflush(stdout);
    volatile char *p = (volatile char *)(gp->stack.lo - 8);
    *p = 1;
    printf("survived\n");
}
GT_CHILD(guard_write) { gort_main(guard_fn, NULL); }

static void test_guard_faults(void)
{
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("guard_write", NULL, 20, &r), 0);
    CU_ASSERT_FALSE(gt_contains(r.out, "survived"));
    CU_ASSERT_FALSE(r.exited && r.status == 0);
    gt_child_free(&r);
}

/* ---- scavenging: a burst's stacks go back to the kernel, and work after ---- */

#define SCAV_N 2000
#define SCAV_TOUCH (32 * 1024)
static gort_waitgroup s_ready, s_done;
static gort_chan *s_gate;
static _Atomic long s_sum;

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, res = 0;
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &res) != 2)
        res = -1;
    fclose(f);
    return res * (long)(sysconf(_SC_PAGESIZE) / 1024);
}

__attribute__((noinline)) static void scav_worker(void *a)
{
    long id = (long)a;
    volatile char buf[SCAV_TOUCH];
    for (size_t i = 0; i < sizeof buf; i += 512)
        buf[i] = (char)(id + (long)i);
    gort_wg_done(&s_ready);
    gort_chan_recv(s_gate, NULL);
    long x = 0;
    for (size_t i = 0; i < sizeof buf; i += 512)
        x += buf[i] == (char)(id + (long)i);
    atomic_fetch_add(&s_sum, x);
    gort_wg_done(&s_done);
}

static long scav_burst(void)
{
    atomic_store(&s_sum, 0);
    s_gate = gort_chan_make(0, 0);
    gort_wg_add(&s_ready, SCAV_N);
    gort_wg_add(&s_done, SCAV_N);
    for (long i = 0; i < SCAV_N; i++)
        gort_go(scav_worker, (void *)i);
    gort_wg_wait(&s_ready);
    long rss = rss_kib();
    gort_chan_close(s_gate);
    gort_wg_wait(&s_done);
    gort_chan_free(s_gate);
    return rss;
}

static long scav_peak, scav_after, scav_released;
static uint64_t scav_alloc1, scav_alloc2;
static long scav_sum1, scav_sum2;

static void scav_body(void *a)
{
    (void)a;
    /* Each P caches up to 32 stacks of the first burst, which the P that
     * spawns the second cannot reach: at 64 or 128 Ps (GORT_MAXPROCS, or
     * a CI machine's cores) that is more than the burst, and the second
     * made hundreds of new ones.  The scavenger is what this checks, so
     * at most 4 Ps. */
    int old = gort_maxprocs(0);
    if (old > 4)
        gort_maxprocs(4);
    scav_peak = scav_burst();
    scav_sum1 = atomic_load(&s_sum);
    gort_stats st;
    gort_stats_get(&st);
    scav_alloc1 = st.stacks_allocated;
    /* Two passes: the first marks what sits in the pool now, the second
     * releases what stayed there (sysmon may take some of it first). */
    scav_released = 0;
    for (int i = 0; i < 2; i++)
        scav_released += (long)gort__stack_scavenge();
    scav_after = rss_kib();
    /* A second burst gets the released stacks back: no new ones, and
     * every stack works (its canary and guard intact). */
    (void)scav_burst();
    scav_sum2 = atomic_load(&s_sum);
    gort_stats_get(&st);
    scav_alloc2 = st.stacks_allocated;
    gort_maxprocs(old);
}

static void test_scavenge(void)
{
    GT_RUN(scav_body, NULL);
    long per = SCAV_TOUCH / 512;
    CU_ASSERT_EQUAL(scav_sum1, (long)SCAV_N * per);
    CU_ASSERT_EQUAL(scav_sum2, (long)SCAV_N * per);
    /* All but POOL_WARM (256) and the P caches' few went back: at least
     * half of the burst's 64 MiB of touched stack. */
    CU_ASSERT_TRUE(scav_peak - scav_after >= (long)SCAV_N * (SCAV_TOUCH / 1024) / 2);
    /* A worker of the first burst may still be between wg_done and
     * freeing its stack when the second starts: allow one per P. */
    CU_ASSERT_TRUE(scav_alloc2 - scav_alloc1 <= 16);
    if (scav_alloc2 - scav_alloc1 > 16)
        fprintf(stderr, "\nscavenge: the second burst made %llu new stacks\n",
                (unsigned long long)(scav_alloc2 - scav_alloc1));
    if (scav_peak - scav_after < (long)SCAV_N * (SCAV_TOUCH / 1024) / 2)
        fprintf(stderr, "\nscavenge: peak %ld KiB, after %ld KiB, released %ld (sysmon may have taken more)\n",
                scav_peak, scav_after, scav_released);
}

/* An empty P cache takes no lock per stack: pooled stacks come half a
 * cache per acquisition of the pool's lock, fresh slots with a CAS and no
 * lock.  2,000 goroutines that start and park (none gives its stack back
 * meanwhile) take the lock at most about 2,000 / 16 times, not 2,000. */
#define BATCH_N 2000
static gort_waitgroup b_parked, b_release, b_finished;
static uint64_t batch_takes;

static void batch_parker(void *a)
{
    (void)a;
    gort_wg_done(&b_parked);
    gort_wg_wait(&b_release);
    gort_wg_done(&b_finished);
}

static void batch_body(void *a)
{
    (void)a;
    gort_wg_add(&b_release, 1);
    gort_wg_add(&b_parked, BATCH_N);
    gort_wg_add(&b_finished, BATCH_N);
    uint64_t t0 = gort__stack_pool_takes();
    for (int i = 0; i < BATCH_N; i++)
        gort_go(batch_parker, NULL);
    gort_wg_wait(&b_parked);
    batch_takes = gort__stack_pool_takes() - t0;
    gort_wg_done(&b_release);
    gort_wg_wait(&b_finished);
}

static void test_batch_refill(void)
{
    GT_RUN(batch_body, NULL);
    /* 125 batches, plus a few partial ones (a pool with fewer than 16, a
     * P's first refill after the world starts). */
    if (batch_takes > BATCH_N / 8)
        fprintf(stderr, "\nbatch refill: %llu pool lock acquisitions for %d stacks\n",
                (unsigned long long)batch_takes, BATCH_N);
    CU_ASSERT_TRUE(batch_takes <= BATCH_N / 8);
}

/* A burst of goroutines started on one P gets fresh stacks in rising
 * address order, the order of allgs, which dumps and goroutine profiles
 * walk: the P cache's batch refill must not hand its stacks out in
 * reverse (each first touch of a stack then missed the caches on its page
 * walk).  In a child: a fresh process has an empty pool, so every stack is
 * a fresh slot. */
#define ORDER_N 512
static gort_waitgroup o_parked, o_release, o_finished;
static uintptr_t order_lo[ORDER_N];

static void order_parker(void *a)
{
    order_lo[(intptr_t)a] = gort__getg()->stack.lo;
    gort_wg_done(&o_parked);
    gort_wg_wait(&o_release);
    gort_wg_done(&o_finished);
}

static void order_body(void *a)
{
    (void)a;
    gort_wg_add(&o_release, 1);
    gort_wg_add(&o_parked, ORDER_N);
    gort_wg_add(&o_finished, ORDER_N);
    for (intptr_t i = 0; i < ORDER_N; i++)
        gort_go(order_parker, (void *)i);
    gort_wg_wait(&o_parked);
    int rising = 0;
    for (int i = 1; i < ORDER_N; i++)
        rising += order_lo[i] > order_lo[i - 1];
    printf("rising=%d of %d\n", rising, ORDER_N - 1);
    gort_wg_done(&o_release);
    gort_wg_wait(&o_finished);
}
GT_CHILD(stack_order) { gort_main(order_body, NULL); }

static void test_fresh_stacks_in_order(void)
{
    const char *env[] = {"GORT_MAXPROCS=1", NULL};
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("stack_order", env, 60, &r), 0);
    int rising = -1, n = 0;
    const char *p = strstr(r.out, "rising=");
    if (p)
        sscanf(p, "rising=%d of %d", &rising, &n);
    /* The last goroutine started runs first (runnext), and a new slab
     * may break the run: all but a few pairs rise. */
    if (rising < n - 16)
        fprintf(stderr, "\nfresh stacks: %s", r.out);
    CU_ASSERT_EQUAL(n, ORDER_N - 1);
    CU_ASSERT_TRUE(rising >= n - 16);
    gt_child_free(&r);
}

/* Fresh slots go out one at a time, whichever P asks: P a, then P b,
 * then P a again get three slots in rising address order.  A batch of
 * fresh slots per P gave P a's second stack from its own batch, below P
 * b's: goroutines that first run alternately on two Ps then had stacks
 * in two interleaved ranges, and a walk in allgs order (a dump) jumped
 * between them.  In a child: a fresh process has an empty pool, so each
 * stack is a fresh slot, and nothing else allocates stacks meanwhile
 * (the main goroutine only calls the allocator). */
static void shared_order_body(void *a)
{
    (void)a;
    /* Statics, which carry gort_p_t's cache-line alignment (calloc's did
     * not: UBSan). */
    static gort_p_t pas, pbs;
    gort_p_t *pa = &pas, *pb = &pbs;
    gort_stack_t s[3];
    bool ok = gort__stack_alloc(pa, &s[0]) && gort__stack_alloc(pb, &s[1]) && gort__stack_alloc(pa, &s[2]);
    printf("ok=%d cached=%d,%d rising=%d,%d\n", ok, pa->nstackcache, pb->nstackcache, s[1].lo > s[0].lo,
           s[2].lo > s[1].lo);
    for (int i = 0; ok && i < 3; i++)
        gort__stack_free(NULL, &s[i]);
    free(pa->stackcache);
    free(pb->stackcache);
}
GT_CHILD(stack_shared_order) { gort_main(shared_order_body, NULL); }

static void test_fresh_stacks_shared_order(void)
{
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_child_run("stack_shared_order", NULL, 60, &r), 0);
    /* A new slab between two takes may break the rise (a slab's address
     * is the kernel's choice): the first slab of a process has room for
     * all three. */
    if (!strstr(r.out, "ok=1 cached=0,0 rising=1,1"))
        fprintf(stderr, "\nshared order: %s", r.out);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "ok=1 cached=0,0 rising=1,1"));
    gt_child_free(&r);
}

GT_SUITE(stack,
         {"many_parked_few_maps", test_many_parked_few_maps},
         {"deep_recursion", test_deep_recursion},
         {"stack_size_env", test_stack_size_env},
         {"guard_faults", test_guard_faults},
         {"scavenge", test_scavenge},
         {"batch_refill", test_batch_refill},
         {"fresh_stacks_in_order", test_fresh_stacks_in_order},
         {"fresh_stacks_shared_order", test_fresh_stacks_shared_order})
