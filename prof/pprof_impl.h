/*
 * pprof_impl.h: what the pprof_*.c files share and nobody else sees: the
 * profile's private part (arena, intern tables, array capacities) and the
 * protobuf wire helpers.
 */
#ifndef GORT_PPROF_IMPL_H
#define GORT_PPROF_IMPL_H

#include "pprof.h"

typedef struct gort__pprof_table {
    uint32_t *slot; /* index + 1; 0 = empty */
    size_t cap, n;  /* cap is a power of two, n <= cap / 2 */
} gort__pprof_table_t;

struct gort__pprof_priv {
    struct chunk *chunks;
    size_t allocated, budget; /* budget 0: unlimited */
    bool over_budget;         /* an allocation failed for the budget */
    bool builder;             /* top-level arrays are malloc'd */
    gort__pprof_table_t strs, funcs, locs, maps, samples;
    size_t cap_str, cap_str_len, cap_sample_type, cap_mapping, cap_func, cap_loc, cap_sample, cap_comment;
};

void *gort__pprof_alloc(gort__pprof_t *p, size_t n);
void *gort__pprof_calloc(gort__pprof_t *p, size_t n, size_t size);
/* A profile with no strings and a memory budget (0: none), for the decoder. */
gort__pprof_t *gort__pprof_new_empty(size_t budget);

/* Wire types of protobuf. */
enum { PB_VARINT = 0, PB_I64 = 1, PB_LEN = 2, PB_SGROUP = 3, PB_EGROUP = 4, PB_I32 = 5 };

#endif
