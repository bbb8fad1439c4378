/* dump: N goroutines parked 10 frames deep; time one full dump of all
 * stacks (gort_stack with all, as the Go peer times runtime.Stack).
 *
 * The 256 MiB output buffer gets the memory Go gives the peer's buffer:
 * Go 1.19 maps its heap arenas with MADV_HUGEPAGE, so runtime.Stack writes
 * into huge pages.  A plain malloc would add ~2,000 first-touch page
 * faults on the 8 MB written, which is the buffer's cost, not the dump's.
 * GORT_BENCH_PLAIN_BUFFER=1 uses malloc instead. */
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "bench.h"

static long n;
static gort_waitgroup parked, release, finished;
static double ms;
static size_t bytes;

/* noinline and no tail call: every level is a real frame, as in Go. */
__attribute__((noinline)) static void park(int depth)
{
    if (depth > 0) {
        park(depth - 1);
        __asm__ volatile("" ::: "memory");
        return;
    }
    gort_wg_done(&parked);
    gort_wg_wait(&release);
    __asm__ volatile("" ::: "memory");
}

static void parker(void *a)
{
    (void)a;
    park(10);
    gort_wg_done(&finished);
}

static void body(void *a)
{
    (void)a;
    gort_wg_add(&release, 1);
    gort_wg_add(&parked, n);
    gort_wg_add(&finished, n);
    for (long i = 0; i < n; i++)
        gort_go(parker, NULL);
    gort_wg_wait(&parked);
    size_t cap = (size_t)256 << 20;
    bool plain = getenv("GORT_BENCH_PLAIN_BUFFER") != NULL;
    char *buf = plain ? malloc(cap) : mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (!buf || buf == MAP_FAILED)
        bench_fail("dump: no memory for the buffer");
    if (!plain)
        (void)madvise(buf, cap, MADV_HUGEPAGE);
    int64_t t = gort_nanotime();
    bytes = gort_stack(buf, cap, true);
    ms = (double)(gort_nanotime() - t) / 1e6;
    if (plain)
        free(buf);
    else
        munmap(buf, cap);
    gort_wg_done(&release);
    gort_wg_wait(&finished);
}

void bench_dump(int argc, char **argv)
{
    n = bench_arg(argc, argv, 2, 10000);
    bench_run_main(body, NULL);
    bench_report("dump", "ms_per_full_dump", ms, "ms");
    bench_report("dump", "bytes", (double)bytes, "B");
}
