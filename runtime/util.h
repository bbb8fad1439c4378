/*
 * util.h: internal utilities (util.c, cpuquota.c): the owner-only counter
 * macros, fastrand, environment parsing and the cgroup CPU quota.
 */
#ifndef GORT_RUNTIME_UTIL_H
#define GORT_RUNTIME_UTIL_H

#include "base.h"

/* A counter written by one thread only and read by others: no locked
 * read-modify-write needed. */
#define GORT_OWNER_ADD(p, d) \
    atomic_store_explicit((p), atomic_load_explicit((p), memory_order_relaxed) + (d), memory_order_relaxed)
#define GORT_OWNER_INC(p) GORT_OWNER_ADD(p, 1)

/* Internal utilities */
uint32_t gort__fastrand(void);
uint32_t gort__fastrandn(uint32_t n);
int gort__atoi_env(const char *name, int def);

/* cpuquota.c: CPUs our cgroup's quota allows (rounded up, at least 1), 0
 * if no quota is set or none can be read; src gets the file it came from.
 * The parsers return the same, or -1 for text they cannot read. */
int gort__cpuquota(char *src, size_t srclen);
int gort__cpuquota_parse_v2(const char *cpu_max);
int gort__cpuquota_parse_v1(const char *quota_us, const char *period_us);
/* The smallest quota from cgroup path up to root, under the hierarchy's
 * mount point mnt, which shows cgroup root. */
int gort__cpuquota_along(bool v2, const char *mnt, const char *root, const char *path, char *src, size_t srclen);

#endif /* GORT_RUNTIME_UTIL_H */
