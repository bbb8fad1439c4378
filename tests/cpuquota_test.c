/*
 * cpuquota_test.c: the default GORT_MAXPROCS under a cgroup CPU quota
 * (runtime/cpuquota.c): the parsers on strings, the walk up a cgroup
 * path on a file tree, and a child run in a real cgroup with a 1-CPU
 * quota where the machine lets us make one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime.h"
#include "test.h"

static void test_parse(void)
{
    CU_ASSERT_EQUAL(gort__cpuquota_parse_v2("max 100000"), 0);
    CU_ASSERT_EQUAL(gort__cpuquota_parse_v2("max"), 0);
    CU_ASSERT_EQUAL(gort__cpuquota_parse_v2("100000 100000"), 1);
    CU_ASSERT_EQUAL(gort__cpuquota_parse_v2("150000 100000"), 2);
    CU_ASSERT_EQUAL(gort__cpuquota_parse_v2("50000 100000"), 1);
    CU_ASSERT_EQUAL(gort__cpuquota_parse_v2("400000 100000"), 4);
    CU_ASSERT_EQUAL(gort__cpuquota_parse_v2("400001 100000"), 5);
    CU_ASSERT_EQUAL(gort__cpuquota_parse_v2("200000"), 2);
    CU_ASSERT_EQUAL(gort__cpuquota_parse_v2(""), -1);
    CU_ASSERT_EQUAL(gort__cpuquota_parse_v2("x 100000"), -1);
    CU_ASSERT_EQUAL(gort__cpuquota_parse_v2("0 100000"), -1);

    CU_ASSERT_EQUAL(gort__cpuquota_parse_v1("-1", "100000"), 0);
    CU_ASSERT_EQUAL(gort__cpuquota_parse_v1("100000", "100000"), 1);
    CU_ASSERT_EQUAL(gort__cpuquota_parse_v1("150000", "100000"), 2);
    CU_ASSERT_EQUAL(gort__cpuquota_parse_v1("1000", "100000"), 1);
    CU_ASSERT_EQUAL(gort__cpuquota_parse_v1("300000", "50000"), 6);
    CU_ASSERT_EQUAL(gort__cpuquota_parse_v1("100000", "0"), -1);
    CU_ASSERT_EQUAL(gort__cpuquota_parse_v1("", "100000"), -1);
}

static void put(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

/* A cgroup tree on plain files: the smallest quota along the path wins,
 * levels without a quota or without the files are passed over, and the
 * walk stops at what the mount shows. */
static void test_along_files(void)
{
    char top[] = "/tmp/gort-cpuquota-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(top));
    char a[600], b[600], c[600], src[256];
    snprintf(a, sizeof a, "%s/a", top);
    snprintf(b, sizeof b, "%s/a/b", top);
    snprintf(c, sizeof c, "%s/a/b/c", top);
    CU_ASSERT_EQUAL(mkdir(a, 0755), 0);
    CU_ASSERT_EQUAL(mkdir(b, 0755), 0);
    CU_ASSERT_EQUAL(mkdir(c, 0755), 0);

    /* v2 */
    put(top, "cpu.max", "max 100000\n");
    put(a, "cpu.max", "300000 100000\n");
    put(b, "cpu.max", "max 100000\n");
    put(c, "cpu.max", "450000 100000\n");
    CU_ASSERT_EQUAL(gort__cpuquota_along(true, top, "/", "/a/b/c", src, sizeof src), 3);
    CU_ASSERT_TRUE(strstr(src, "/a/cpu.max") != NULL);
    CU_ASSERT_EQUAL(gort__cpuquota_along(true, top, "/", "/a/b", src, sizeof src), 3);
    /* The mount shows cgroup /a/b: its own limit and below only. */
    CU_ASSERT_EQUAL(gort__cpuquota_along(true, b, "/a/b", "/a/b/c", src, sizeof src), 5);
    /* Our cgroup outside the mount's view: nothing to read. */
    CU_ASSERT_EQUAL(gort__cpuquota_along(true, b, "/x", "/a/b/c", src, sizeof src), 0);
    put(c, "cpu.max", "max\n");
    put(a, "cpu.max", "max\n");
    CU_ASSERT_EQUAL(gort__cpuquota_along(true, top, "/", "/a/b/c", src, sizeof src), 0);

    /* v1 */
    put(b, "cpu.cfs_quota_us", "150000\n");
    put(b, "cpu.cfs_period_us", "100000\n");
    put(c, "cpu.cfs_quota_us", "-1\n");
    put(c, "cpu.cfs_period_us", "100000\n");
    CU_ASSERT_EQUAL(gort__cpuquota_along(false, top, "/", "/a/b/c", src, sizeof src), 2);
    CU_ASSERT_TRUE(strstr(src, "/a/b/cpu.cfs_quota_us") != NULL);

    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", top);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

/* ---- a child in a cgroup with a 1-CPU quota ---- */

GT_CHILD(cpuquota_maxprocs)
{
    printf("maxprocs=%d numcpu=%d\n", gort_maxprocs(0), gort_numcpu());
    fflush(stdout);
}

static bool write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
    return close(fd) == 0 && ok;
}

static bool read_line(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool ok = fgets(buf, (int)len, f) != NULL;
    fclose(f);
    if (ok)
        buf[strcspn(buf, "\n")] = 0;
    return ok;
}

/* Makes a group with a 1-CPU quota; fills dir (the group) and procs (the
 * file to move a process into).  Returns NULL on success, else why not. */
static const char *make_group(char *dir, size_t dlen, char *procs, size_t plen)
{
    char ctl[256];
    /* v2, at /sys/fs/cgroup, under the root group (the only one where
     * enabling a controller for children is allowed while it has
     * processes of its own). */
    if (read_line("/sys/fs/cgroup/cgroup.subtree_control", ctl, sizeof ctl) ||
        access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0) {
        char all[256] = "";
        read_line("/sys/fs/cgroup/cgroup.controllers", all, sizeof all);
        if (!strstr(all, "cpu"))
            return "cgroup v2 without the cpu controller";
        if (!strstr(ctl, "cpu") && !write_file("/sys/fs/cgroup/cgroup.subtree_control", "+cpu"))
            return "cannot enable the cpu controller in /sys/fs/cgroup";
        snprintf(dir, dlen, "/sys/fs/cgroup/gort-test-%d", (int)getpid());
        if (mkdir(dir, 0755) != 0)
            return "cannot create a cgroup under /sys/fs/cgroup";
        char f[400];
        snprintf(f, sizeof f, "%s/cpu.max", dir);
        if (!write_file(f, "100000 100000")) {
            rmdir(dir);
            return "cannot write cpu.max";
        }
        snprintf(procs, plen, "%s/cgroup.procs", dir);
        return NULL;
    }
    /* v1: the hierarchy with the cpu controller. */
    const char *mounts[] = {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct", NULL};
    for (int i = 0; mounts[i]; i++) {
        char f[400];
        snprintf(f, sizeof f, "%s/cpu.cfs_quota_us", mounts[i]);
        if (access(f, F_OK) != 0)
            continue;
        snprintf(dir, dlen, "%s/gort-test-%d", mounts[i], (int)getpid());
        if (mkdir(dir, 0755) != 0)
            return "cannot create a cgroup (v1 cpu)";
        snprintf(f, sizeof f, "%s/cpu.cfs_period_us", dir);
        bool ok = write_file(f, "100000");
        snprintf(f, sizeof f, "%s/cpu.cfs_quota_us", dir);
        if (!ok || !write_file(f, "100000")) {
            rmdir(dir);
            return "cannot write cpu.cfs_quota_us";
        }
        snprintf(procs, plen, "%s/cgroup.procs", dir);
        return NULL;
    }
    return "no cgroup cpu controller mounted";
}

static void test_cgroup_child(void)
{
    char dir[300], procs[400];
    const char *why = make_group(dir, sizeof dir, procs, sizeof procs);
    if (why) {
        printf("skipped (%s) ", why);
        return;
    }
    /* The shell moves itself into the group, then becomes the child. */
    char script[1200];
    snprintf(script, sizeof script,
             "echo $$ > %s && exec env -u GORT_MAXPROCS GORT_DEBUG=schedtrace=100000 %s --child cpuquota_maxprocs",
             procs, gt_self_path());
    const char *argv[] = {"sh", "-c", script, NULL};
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(gt_cmd_run(argv, NULL, 60, &r), 0);
    bool ok = r.exited && r.status == 0 && gt_contains(r.out, "maxprocs=1 ");
    /* Where the number came from, when the quota is what lowered it. */
    if (gort_numcpu() > 1)
        ok = ok && gt_contains(r.out, "from cgroup quota");
    else
        printf("(1 CPU: the quota cannot lower maxprocs here) ");
    CU_ASSERT_TRUE(ok);
    if (!ok)
        printf("\n%s\n", r.out);
    gt_child_free(&r);
    CU_ASSERT_EQUAL(rmdir(dir), 0);
}

GT_SUITE(cpuquota,
         {"parse", test_parse},
         {"along_files", test_along_files},
         {"cgroup_child", test_cgroup_child})
