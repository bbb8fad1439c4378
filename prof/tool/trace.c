/*
 * trace.c: `gortprof trace FILE`: the goroutine analysis of an execution
 * trace (gort's or Go's), for people without Go: goroutines grouped by
 * start function with their execution, scheduler-wait, blocked (by
 * reason) and syscall time, and the scheduler latency percentiles.  The
 * reading is prof/tool/tracefile.c.
 */
#include "gortprof.h"
#include "tracefile.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void dur(char *buf, size_t n, int64_t ns)
{
    if (ns < 1000)
        snprintf(buf, n, "%lldns", (long long)ns);
    else if (ns < 1000000)
        snprintf(buf, n, "%.1fus", (double)ns / 1e3);
    else if (ns < 1000000000)
        snprintf(buf, n, "%.2fms", (double)ns / 1e6);
    else
        snprintf(buf, n, "%.2fs", (double)ns / 1e9);
}

int gp_cmd_trace(const gp_opts_t *o, const char *path, FILE *out)
{
    (void)o;
    FILE *f = fopen(path, "rb");
    if (!f)
        return gp_fail("trace: cannot open %s", path);
    size_t cap = 1 << 16, n = 0;
    uint8_t *data = malloc(cap);
    for (;;) {
        if (!data) {
            fclose(f);
            return gp_fail("trace: out of memory");
        }
        n += fread(data + n, 1, cap - n, f);
        if (n < cap)
            break;
        uint8_t *nd = cap > ((size_t)1 << 34) ? NULL : realloc(data, cap * 2);
        if (!nd)
            free(data);
        data = nd;
        cap *= 2;
    }
    fclose(f);
    gt_summary_t s;
    char err[256];
    int r = gt_summarize(data, n, &s, err, sizeof err);
    free(data);
    if (r != 0)
        return gp_fail("trace: %s: %s", path, err);
    char d[32];
    dur(d, sizeof d, s.dur_ns);
    fprintf(out, "Trace: %s, %llu events, %d procs, %llu goroutines, %llu tasks, %llu regions, %llu logs\n", d,
            (unsigned long long)s.nevents, s.nprocs, (unsigned long long)s.ngoroutines,
            (unsigned long long)s.ntasks, (unsigned long long)s.nregions, (unsigned long long)s.nlogs);
    fprintf(out, "\nGoroutines by start function (times summed over the group):\n");
    fprintf(out, "%8s %10s %10s %10s %10s %10s %10s %10s %10s %10s %10s  %s\n", "count", "execution", "sched wait",
             "block", "send", "recv", "select", "sync", "cond", "net", "syscall", "function");
    for (size_t i = 0; i < s.ngroups; i++) {
        const gt_group_t *g = &s.groups[i];
        int64_t blk = 0;
        for (int b = 0; b < GT_NB; b++)
            blk = blk > INT64_MAX - g->block_ns[b] ? INT64_MAX : blk + g->block_ns[b];
        char c[11][32];
        dur(c[0], 32, g->exec_ns);
        dur(c[1], 32, g->sched_ns);
        dur(c[2], 32, blk);
        for (int b = 0; b <= GT_B_NET; b++)
            dur(c[3 + b], 32, g->block_ns[b]);
        dur(c[9], 32, g->syscall_ns);
        fprintf(out, "%8llu %10s %10s %10s %10s %10s %10s %10s %10s %10s %10s  %s\n", (unsigned long long)g->count,
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], g->fn);
        if (g->block_ns[GT_B_SLEEP] || g->block_ns[GT_B_OTHER]) {
            dur(c[0], 32, g->block_ns[GT_B_SLEEP]);
            dur(c[1], 32, g->block_ns[GT_B_OTHER]);
            fprintf(out, "%8s   (block also: sleep %s, other %s)\n", "", c[0], c[1]);
        }
    }
    char p[4][32];
    dur(p[0], 32, s.lat_p50);
    dur(p[1], 32, s.lat_p90);
    dur(p[2], 32, s.lat_p99);
    dur(p[3], 32, s.lat_max);
    fprintf(out, "\nScheduler latency (runnable to running, %zu starts): p50 %s  p90 %s  p99 %s  max %s\n", s.nlat,
            p[0], p[1], p[2], p[3]);
    gt_summary_free(&s);
    return 0;
}
