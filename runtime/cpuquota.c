/*
 * cpuquota.c: the CPU quota of our cgroup, for the default GORT_MAXPROCS.
 *
 * A container whose quota is far below the machine's CPU count (the usual
 * Kubernetes case) would otherwise run as many Ps as the affinity mask
 * allows, each thread waiting for a share of the few CPUs the quota buys.
 * As Go 1.25 and automaxprocs: the quota divided by the period, rounded
 * up, at least 1, the smallest along the path from our cgroup to the
 * root of its hierarchy; never above the affinity count (main.c).
 *
 *  - cgroup v2: "0::PATH" in /proc/self/cgroup, cpu.max ("max 100000" or
 *    "QUOTA PERIOD") in each directory of PATH under the cgroup2 mount.
 *  - cgroup v1: the line whose controllers include "cpu", and
 *    cpu.cfs_quota_us (-1: none) with cpu.cfs_period_us under the mount
 *    of that hierarchy.
 *
 * The mount comes from /proc/self/mountinfo: its root field says which
 * cgroup the mount shows, so a container that sees its own cgroup as "/"
 * (a cgroup namespace, or a bind mount) finds the right files.
 *
 * Read once, at start-up, from plain files: no lock, no goroutine.
 *
 * Rejected: following quota changes after start-up (Go 1.25 does, from
 * sysmon): gort_maxprocs is there for a program that wants to, and a
 * world stop behind the user's back for a file that rarely changes is not
 * worth it.
 */
#include "runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* CPUs that quota/period allow: rounded up, at least 1. */
static int quota_cpus(long long quota, long long period)
{
    if (quota <= 0 || period <= 0)
        return 0;
    long long n = (quota + period - 1) / period;
    if (n < 1)
        n = 1;
    return n > INT32_MAX ? INT32_MAX : (int)n;
}

int gort__cpuquota_parse_v2(const char *cpu_max)
{
    while (*cpu_max == ' ')
        cpu_max++;
    if (strncmp(cpu_max, "max", 3) == 0)
        return 0;
    char *end;
    errno = 0;
    long long quota = strtoll(cpu_max, &end, 10);
    if (errno || end == cpu_max)
        return -1;
    const char *p = end;
    long long period = 100000; /* the kernel's default when only one number is written */
    if (*p == ' ') {
        period = strtoll(p, &end, 10);
        if (errno || end == p)
            return -1;
    }
    int n = quota_cpus(quota, period);
    return n > 0 ? n : -1;
}

int gort__cpuquota_parse_v1(const char *quota_us, const char *period_us)
{
    char *end;
    errno = 0;
    long long quota = strtoll(quota_us, &end, 10);
    if (errno || end == quota_us)
        return -1;
    if (quota < 0)
        return 0; /* -1: no limit */
    long long period = strtoll(period_us, &end, 10);
    if (errno || end == period_us)
        return -1;
    int n = quota_cpus(quota, period);
    return n > 0 ? n : -1;
}

/* Reads a small file into buf (NUL-terminated, trailing newline cut). */
static bool read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = 0;
    if (buf[n - 1] == '\n')
        buf[n - 1] = 0;
    return true;
}

static bool has_token(const char *list, const char *tok)
{
    size_t n = strlen(tok);
    for (const char *p = list; p && *p;) {
        if (strncmp(p, tok, n) == 0 && (p[n] == ',' || p[n] == 0))
            return true;
        p = strchr(p, ',');
        if (p)
            p++;
    }
    return false;
}

/* The cgroup path of our process in hierarchy v2 (v1: the one with the
 * cpu controller), from /proc/self/cgroup. */
static bool cgroup_path(bool v2, char *out, size_t len)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = 0;
        const char *ctrls = c1 + 1;
        if (v2 ? (strcmp(line, "0") == 0 && *ctrls == 0) : has_token(ctrls, "cpu")) {
            snprintf(out, len, "%s", c2 + 1);
            found = true;
        }
    }
    fclose(f);
    return found;
}

/* The mount of hierarchy v2 (v1: the cgroup mount with the cpu
 * controller): its mount point and the cgroup it shows. */
static bool cgroup_mount(bool v2, char *mnt, size_t mlen, char *root, size_t rlen)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return false;
    char line[2048];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        /* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SRC SUPEROPTS */
        char *sep = strstr(line, " - ");
        if (!sep)
            continue;
        *sep = 0;
        char fstype[32], super[512] = "";
        if (sscanf(sep + 3, "%31s %*s %511s", fstype, super) < 1)
            continue;
        if (v2 ? strcmp(fstype, "cgroup2") != 0 : (strcmp(fstype, "cgroup") != 0 || !has_token(super, "cpu")))
            continue;
        char r[512], m[512];
        if (sscanf(line, "%*s %*s %*s %511s %511s", r, m) != 2)
            continue;
        snprintf(mnt, mlen, "%s", m);
        snprintf(root, rlen, "%s", r);
        found = true;
    }
    fclose(f);
    return found;
}

/* The smallest quota along path, walking up to the mount's root. */
int gort__cpuquota_along(bool v2, const char *mnt, const char *root, const char *path, char *src, size_t srclen)
{
    size_t rl = strlen(root);
    if (strcmp(root, "/") == 0)
        rl = 0;
    else if (strncmp(path, root, rl) != 0 || (path[rl] != '/' && path[rl] != 0))
        return 0; /* our cgroup is outside what the mount shows */
    char rel[1024];
    snprintf(rel, sizeof rel, "%s", path + rl);
    int best = 0;
    for (;;) {
        char file[2048], a[128], b[128];
        int n = -1;
        if (v2) {
            snprintf(file, sizeof file, "%s%s/cpu.max", mnt, rel);
            if (read_small(file, a, sizeof a))
                n = gort__cpuquota_parse_v2(a);
        } else {
            char pfile[2048];
            snprintf(file, sizeof file, "%s%s/cpu.cfs_quota_us", mnt, rel);
            snprintf(pfile, sizeof pfile, "%s%s/cpu.cfs_period_us", mnt, rel);
            if (read_small(file, a, sizeof a) && read_small(pfile, b, sizeof b))
                n = gort__cpuquota_parse_v1(a, b);
        }
        if (n > 0 && (best == 0 || n < best)) {
            best = n;
            snprintf(src, srclen, "%s", file);
        }
        char *slash = strrchr(rel, '/');
        if (!slash || rel[0] == 0)
            break;
        *slash = 0;
    }
    return best;
}

int gort__cpuquota(char *src, size_t srclen)
{
    char path[1024], mnt[512], root[512];
    if (srclen)
        src[0] = 0;
    for (int v2 = 1; v2 >= 0; v2--) {
        if (!cgroup_path(v2, path, sizeof path) || !cgroup_mount(v2, mnt, sizeof mnt, root, sizeof root))
            continue;
        int n = gort__cpuquota_along(v2, mnt, root, path, src, srclen);
        if (n > 0)
            return n;
    }
    return 0;
}
