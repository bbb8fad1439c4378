/*
 * tracefile.h: a reader of Go 1.19 execution traces (gort's and Go's), and
 * the goroutine analysis `gortprof trace` prints (prof/tool/tracefile.c).
 * Needs only libc: the libFuzzer target links it on its own.
 */
#ifndef GORTPROF_TRACEFILE_H
#define GORTPROF_TRACEFILE_H

#include <stddef.h>
#include <stdint.h>

/* Why a goroutine waited, as go tool trace's goroutine analysis splits it. */
enum { GT_B_SEND, GT_B_RECV, GT_B_SELECT, GT_B_SYNC, GT_B_COND, GT_B_NET, GT_B_SLEEP, GT_B_OTHER, GT_NB };

typedef struct gt_group {
    char *fn;              /* start function ("?" when unknown) */
    uint64_t count;
    int64_t exec_ns, sched_ns, syscall_ns;
    int64_t block_ns[GT_NB];
} gt_group_t;

typedef struct gt_summary {
    uint64_t nevents, ngoroutines;
    int nprocs;            /* distinct Ps seen */
    int64_t dur_ns;
    gt_group_t *groups;    /* by exec_ns, largest first */
    size_t ngroups;
    size_t nlat;           /* scheduler latencies (runnable -> running) */
    int64_t lat_p50, lat_p90, lat_p99, lat_max;
    uint64_t ntasks, nregions, nlogs;
} gt_summary_t;

/* Reads the trace in data[0..n).  0, or -1 with a one-line reason in err. */
int gt_summarize(const uint8_t *data, size_t n, gt_summary_t *out, char *err, size_t errlen);
void gt_summary_free(gt_summary_t *s);

extern const char *const gt_block_names[GT_NB];

#endif
