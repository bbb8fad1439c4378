/*
 * gortprof_test.c: the gortprof tool, run as a program (GORTPROF, set by
 * make test).  The contracts of issue 7: --help names every command; top
 * agrees with `go tool pprof -top` (same functions, percentages within 0.1)
 * on Go's profiles and on one gort's encoder wrote; list finds source
 * through DWARF (-bin); the flame graph and the web UI work in headless
 * Chromium (an element per top function, a click zooms); hostile files
 * give one line and exit status 1; top on 100,000 samples takes under a
 * third of go tool pprof's time.
 *
 * Tests that need go or chromium print why and pass when they are missing
 * (CI installs both).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pprof.h"
#include "test.h"

/* Runs gortprof with up to 6 arguments. */
static int tool(gt_child_result *r, const char *a, const char *b, const char *c, const char *d, const char *e)
{
    const char *argv[] = {gt_gortprof_path(), a, b, c, d, e, NULL};
    return gt_cmd_run(argv, NULL, 60, r);
}

static void write_file(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fwrite(b, 1, n, f);
    fclose(f);
}

/* ---- top against go tool pprof ---------------------------------------- */

typedef struct row {
    char name[256];
    double flat, cum;
} row_t;

/* Parses the rows of a -top report ("flat flat% sum% cum cum% name"). */
static int parse_top(const char *s, row_t *rows, int max)
{
    int n = 0;
    for (const char *l = s; l && *l && n < max; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        char f[64], fp[64], sp[64], c[64], cp[64];
        int used = 0;
        if (sscanf(l, "%63s %63[0-9.]%% %63[0-9.]%% %63s %63[0-9.]%% %n", f, fp, sp, c, cp, &used) != 5 || !used)
            continue;
        const char *nl = strchr(l + used, '\n');
        size_t len = nl ? (size_t)(nl - (l + used)) : strlen(l + used);
        if (len >= sizeof rows[n].name)
            len = sizeof rows[n].name - 1;
        memcpy(rows[n].name, l + used, len);
        rows[n].name[len] = 0;
        rows[n].flat = atof(fp);
        rows[n].cum = atof(cp);
        n++;
    }
    return n;
}

static void compare_with_go(const char *profile)
{
    gt_child_result a, b;
    CU_ASSERT_EQUAL_FATAL(tool(&a, "top", profile, NULL, NULL, NULL), 0);
    const char *argv[] = {"go", "tool", "pprof", "-top", profile, NULL};
    CU_ASSERT_EQUAL_FATAL(gt_cmd_run(argv, NULL, 120, &b), 0);
    CU_ASSERT(a.exited && a.status == 0);
    CU_ASSERT(b.exited && b.status == 0);
    static row_t ra[512], rb[512];
    int na = parse_top(a.out, ra, 512), nb = parse_top(b.out, rb, 512);
    CU_ASSERT(na > 0);
    CU_ASSERT_EQUAL(na, nb);
    for (int i = 0; i < na && i < nb; i++) {
        bool ok = !strcmp(ra[i].name, rb[i].name) && ra[i].flat - rb[i].flat < 0.1001 &&
                  rb[i].flat - ra[i].flat < 0.1001 && ra[i].cum - rb[i].cum < 0.1001 && rb[i].cum - ra[i].cum < 0.1001;
        if (!ok)
            fprintf(stderr, "\n  %s row %d: gortprof %s %.2f %.2f, pprof %s %.2f %.2f\n", profile, i, ra[i].name,
                    ra[i].flat, ra[i].cum, rb[i].name, rb[i].flat, rb[i].cum);
        CU_ASSERT(ok);
    }
    gt_child_free(&a);
    gt_child_free(&b);
}

/* A gort-encoded CPU profile: nfn functions called from main, samples
 * spread unevenly, nsamples distinct stacks (labels make them distinct). */
static void write_gort_profile(const char *path, int nsamples)
{
    gort__pprof_t *p = gort__pprof_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    gort__pprof_add_sample_type(p, "samples", "count");
    gort__pprof_add_sample_type(p, "cpu", "nanoseconds");
    gort__pprof_set_period(p, "cpu", "nanoseconds", 10000000);
    int64_t m = gort__pprof_add_mapping(p, 0x400000, 0x800000, 0, "/nonexistent/gort-app", "");
    enum { NFN = 40 };
    uint32_t loc[NFN + 1];
    for (int i = 0; i <= NFN; i++) {
        char name[32];
        snprintf(name, sizeof name, i ? "worker_%02d" : "main", i);
        int64_t f = gort__pprof_add_function(p, name, name, "app.c", 10 * i + 1);
        gort__pprof_line_t l = {(uint32_t)f, 10 * i + 3, 0};
        loc[i] = (uint32_t)gort__pprof_add_location(p, (uint32_t)m, 0x401000 + 0x100 * (uint64_t)i, &l, 1);
    }
    int64_t key = gort__pprof_str(p, "n");
    uint64_t x = 12345;
    for (int s = 0; s < nsamples; s++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        int k = 1 + (int)((x >> 33) % NFN);
        k = 1 + (k * k) % NFN; /* uneven */
        int depth = 1 + (int)((x >> 20) % 4);
        uint32_t st[8];
        int n = 0;
        for (int d = 0; d < depth; d++)
            st[n++] = loc[1 + (k + d * 7) % NFN];
        st[n++] = loc[0];
        int64_t v[2] = {1 + (int64_t)(x >> 60), 0};
        v[1] = v[0] * 10000000;
        gort__pprof_label_t lab = {key, 0, s, 0};
        CU_ASSERT_EQUAL(gort__pprof_add_sample(p, st, (uint32_t)n, v, &lab, 1), 0);
    }
    uint8_t *enc;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(gort__pprof_encode(p, true, &enc, &len), 0);
    write_file(path, enc, len);
    free(enc);
    gort__pprof_free(p);
}

static void test_help_lists_commands(void)
{
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(tool(&r, "--help", NULL, NULL, NULL, NULL), 0);
    CU_ASSERT(r.exited && r.status == 0);
    const char *want[] = {"top [-n N] [-cum] PROFILE", "list REGEX PROFILE", "peek REGEX PROFILE", "tree PROFILE",
                          "flame PROFILE -o", "diff BASE NEW", "goroutines PROFILE", "-http=",
                          "-focus", "-ignore", "-tagfocus", "-sample_index"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        CU_ASSERT(gt_contains(r.out, want[i]));
    gt_child_free(&r);
}

static void test_top_matches_go_pprof(void)
{
    if (!gt_have("go"))
        return;
    compare_with_go("tests/testdata/go-cpu.pb.gz");
    compare_with_go("tests/testdata/go-heap.pb.gz");
    compare_with_go("tests/testdata/go-goroutine.pb.gz");
    compare_with_go("tests/testdata/go-cpu-labels.pb.gz");
    write_gort_profile(gt_tmp("gort-cpu.pb.gz"), 2000);
    compare_with_go(gt_tmp("gort-cpu.pb.gz"));
}

static void test_heavy_near_75(void)
{
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(tool(&r, "top", "tests/testdata/go-cpu.pb.gz", NULL, NULL, NULL), 0);
    row_t rows[64];
    int n = parse_top(r.out, rows, 64);
    bool found = false;
    for (int i = 0; i < n; i++)
        if (!strcmp(rows[i].name, "main.heavy")) {
            found = true;
            CU_ASSERT(rows[i].cum > 70 && rows[i].cum < 80);
        }
    CU_ASSERT(found);
    gt_child_free(&r);
}

/* The function list -bin must find in this binary's DWARF. */
__attribute__((noinline)) int gt_list_target(int x);
__attribute__((noinline)) int gt_list_target(int x)
{
    int y = x * 3; /* LIST-TARGET-MARK */
    return y + 1;
}

static void test_list_dwarf(void)
{
    gort__pprof_t *p = gort__pprof_new();
    gort__pprof_add_sample_type(p, "samples", "count");
    /* No file name: the source comes from the binary's DWARF. */
    int64_t f = gort__pprof_add_function(p, "gt_list_target", "gt_list_target", "", 0);
    gort__pprof_line_t l = {(uint32_t)f, 0, 0};
    uint32_t loc = (uint32_t)gort__pprof_add_location(p, GORT__PPROF_NONE, 0x1000, &l, 1);
    int64_t v = 7;
    gort__pprof_add_sample(p, &loc, 1, &v, NULL, 0);
    uint8_t *enc;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(gort__pprof_encode(p, false, &enc, &len), 0);
    write_file(gt_tmp("list.pb"), enc, len);
    free(enc);
    gort__pprof_free(p);
    char bin[300];
    snprintf(bin, sizeof bin, "-bin=%s", gt_self_path());
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(tool(&r, "list", "gt_list_target", bin, gt_tmp("list.pb"), NULL), 0);
    CU_ASSERT(r.exited && r.status == 0);
    CU_ASSERT(gt_contains(r.out, "ROUTINE ======================== gt_list_target in "));
    CU_ASSERT(gt_contains(r.out, "gortprof_test.c"));
    CU_ASSERT(gt_contains(r.out, "LIST-TARGET-MARK"));
    if (!gt_contains(r.out, "LIST-TARGET-MARK"))
        fprintf(stderr, "\n%s\n", r.out);
    gt_child_free(&r);
    /* A Go profile's own file names, and the pprof layout. */
    CU_ASSERT_EQUAL_FATAL(tool(&r, "list", "main.heavy", "tests/testdata/go-cpu.pb.gz", NULL, NULL), 0);
    CU_ASSERT(r.exited && r.status == 0);
    CU_ASSERT(gt_contains(r.out, "(flat, cum) 75."));
    gt_child_free(&r);
    CU_ASSERT_EQUAL_FATAL(tool(&r, "list", "no_such_fn", "tests/testdata/go-cpu.pb.gz", NULL, NULL), 0);
    CU_ASSERT(r.exited && r.status == 1);
    gt_child_free(&r);
}

static void test_reports_run(void)
{
    gt_child_result r;
    const char *cpu = "tests/testdata/go-cpu.pb.gz";
    CU_ASSERT_EQUAL_FATAL(tool(&r, "peek", "main.heavy", cpu, NULL, NULL), 0);
    CU_ASSERT(r.exited && r.status == 0 && gt_contains(r.out, "main.spin"));
    gt_child_free(&r);
    CU_ASSERT_EQUAL_FATAL(tool(&r, "tree", cpu, NULL, NULL, NULL), 0);
    CU_ASSERT(r.exited && r.status == 0 && gt_contains(r.out, "main.heavy"));
    gt_child_free(&r);
    CU_ASSERT_EQUAL_FATAL(tool(&r, "diff", cpu, cpu, NULL, NULL), 0);
    CU_ASSERT(r.exited && r.status == 0);
    gt_child_free(&r);
    CU_ASSERT_EQUAL_FATAL(tool(&r, "goroutines", "tests/testdata/go-goroutines.txt", NULL, NULL, NULL), 0);
    CU_ASSERT(r.exited && r.status == 0 && gt_contains(r.out, "goroutines"));
    gt_child_free(&r);
    CU_ASSERT_EQUAL_FATAL(tool(&r, "goroutines", "tests/testdata/go-goroutine.pb.gz", NULL, NULL, NULL), 0);
    CU_ASSERT(r.exited && r.status == 0);
    gt_child_free(&r);
    CU_ASSERT_EQUAL_FATAL(tool(&r, "top", "-focus=main.heavy", "-n", "3", cpu), 0);
    CU_ASSERT(r.exited && r.status == 0 && gt_contains(r.out, "main.heavy") && !gt_contains(r.out, "main.light"));
    gt_child_free(&r);
}

/* One line "gortprof: ..." on stderr, exit status 1, for every bad file. */
static void expect_one_line_error(const char *path)
{
    const char *cmds[] = {"top", "tree", "goroutines"};
    for (int i = 0; i < 3; i++) {
        gt_child_result r;
        CU_ASSERT_EQUAL_FATAL(tool(&r, cmds[i], path, NULL, NULL, NULL), 0);
        bool ok = r.exited && r.status == 1 && !strncmp(r.out, "gortprof: ", 10) && strchr(r.out, '\n') &&
                  strchr(r.out, '\n')[1] == 0;
        if (!ok)
            fprintf(stderr, "\n  %s %s: exited=%d status=%d signal=%d: %s\n", cmds[i], path, r.exited, r.status,
                    r.signo, r.out);
        CU_ASSERT(ok);
        gt_child_free(&r);
    }
}

static void test_hostile_files(void)
{
    write_file(gt_tmp("empty"), "", 0);
    expect_one_line_error(gt_tmp("empty"));
    write_file(gt_tmp("garbage"), "hello world garbage\x01\x02\x03", 22);
    expect_one_line_error(gt_tmp("garbage"));
    expect_one_line_error(gt_tmp("does-not-exist"));
    uint8_t *b;
    size_t n;
    CU_ASSERT_EQUAL_FATAL(gort__pprof_slurp("tests/testdata/go-cpu.pb.gz", 1 << 20, &b, &n), 0);
    write_file(gt_tmp("cut.gz"), b, n / 2);
    expect_one_line_error(gt_tmp("cut.gz"));
    b[0] = 0x1f;
    b[1] = 0x8c; /* wrong magic */
    write_file(gt_tmp("magic"), b, n);
    expect_one_line_error(gt_tmp("magic"));
    free(b);
    expect_one_line_error("tests/testdata/fuzz-regressions/string0-newline-in-error");
    /* Corpus files cut short must never crash (they may still decode). */
    const char *corpus[] = {"tests/fuzz/corpus/go-heap.pb", "tests/fuzz/corpus/go-cpu-labels.pb"};
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL_FATAL(gort__pprof_slurp(corpus[i], 1 << 20, &b, &n), 0);
        for (size_t cut = n / 3; cut < n; cut += n / 3) {
            write_file(gt_tmp("cut"), b, cut);
            gt_child_result r;
            CU_ASSERT_EQUAL_FATAL(tool(&r, "top", gt_tmp("cut"), NULL, NULL, NULL), 0);
            CU_ASSERT(r.exited && (r.status == 0 || r.status == 1));
            gt_child_free(&r);
        }
        free(b);
    }
}

static void test_flame_svg_and_chromium(void)
{
    gt_child_result r;
    CU_ASSERT_EQUAL_FATAL(tool(&r, "flame", "tests/testdata/go-cpu.pb.gz", "-o", gt_tmp("f.svg"), NULL), 0);
    CU_ASSERT(r.exited && r.status == 0);
    gt_child_free(&r);
    uint8_t *b;
    size_t n;
    CU_ASSERT_EQUAL_FATAL(gort__pprof_slurp(gt_tmp("f.svg"), 16 << 20, &b, &n), 0);
    b[n - 1] = 0;
    CU_ASSERT(gt_contains((char *)b, "<svg"));
    CU_ASSERT(gt_contains((char *)b, "main.heavy"));
    CU_ASSERT(gt_contains((char *)b, "main.light"));
    free(b);
    CU_ASSERT_EQUAL_FATAL(tool(&r, "flame", "tests/testdata/go-cpu.pb.gz", "-o", gt_tmp("f.html"), NULL), 0);
    gt_child_free(&r);
    if (!gt_have("chromium"))
        return;
    char url[300];
    snprintf(url, sizeof url, "file://%s#selftest", gt_tmp("f.html"));
    const char *argv[] = {"chromium", "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=3000",
                          "--dump-dom", url, NULL};
    CU_ASSERT_EQUAL_FATAL(gt_cmd_run(argv, NULL, 60, &r), 0);
    CU_ASSERT(gt_contains(r.out, "clicked=main.heavy"));
    CU_ASSERT(gt_contains(r.out, "zoom=ok"));
    CU_ASSERT(gt_contains(r.out, "reset=ok"));
    gt_child_free(&r);
}

static void test_http_ui(void)
{
    if (!gt_have("chromium") || !gt_have("curl"))
        return;
    int pfd[2];
    CU_ASSERT_EQUAL_FATAL(pipe(pfd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pfd[1], 1);
        execl(gt_gortprof_path(), "gortprof", "-http=:0", "-no_browser", "tests/testdata/go-cpu.pb.gz", (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    char line[256] = "";
    FILE *f = fdopen(pfd[0], "r");
    CU_ASSERT_PTR_NOT_NULL(fgets(line, sizeof line, f));
    const char *u = strstr(line, "http://");
    CU_ASSERT_PTR_NOT_NULL(u);
    if (u) {
        char base[128];
        snprintf(base, sizeof base, "%.*s", (int)strcspn(u, "\n"), u);
        CU_ASSERT(gt_contains(base, "127.0.0.1:")); /* loopback by default */
        char top[160], flame[160], src[200];
        snprintf(top, sizeof top, "%s/", base);
        snprintf(flame, sizeof flame, "%s/flame#selftest", base);
        snprintf(src, sizeof src, "%s/source?n=main.heavy", base);
        gt_child_result r;
        const char *a1[] = {"chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", top, NULL};
        CU_ASSERT_EQUAL(gt_cmd_run(a1, NULL, 60, &r), 0);
        CU_ASSERT(gt_contains(r.out, "data-name=\"main.heavy\""));
        CU_ASSERT(gt_contains(r.out, "data-name=\"main.spin\""));
        gt_child_free(&r);
        const char *a2[] = {"chromium", "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=3000",
                            "--dump-dom", flame, NULL};
        CU_ASSERT_EQUAL(gt_cmd_run(a2, NULL, 60, &r), 0);
        CU_ASSERT(gt_contains(r.out, "zoom=ok"));
        gt_child_free(&r);
        const char *a3[] = {"curl", "-s", src, NULL};
        CU_ASSERT_EQUAL(gt_cmd_run(a3, NULL, 30, &r), 0);
        CU_ASSERT(gt_contains(r.out, "ROUTINE ======================== main.heavy"));
        gt_child_free(&r);
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    fclose(f);
}

static double secs(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void test_speed_100k(void)
{
    GT_SKIP_UNDER_TSAN("timing");
    if (!gt_have("go"))
        return;
    const char *path = gt_tmp("100k.pb.gz");
    write_gort_profile(path, 100000);
    gt_child_result r;
    double best = 1e9;
    for (int i = 0; i < 3; i++) {
        double t0 = secs();
        CU_ASSERT_EQUAL_FATAL(tool(&r, "top", path, NULL, NULL, NULL), 0);
        double t = secs() - t0;
        CU_ASSERT(r.exited && r.status == 0);
        gt_child_free(&r);
        if (t < best)
            best = t;
    }
    const char *argv[] = {"go", "tool", "pprof", "-top", path, NULL};
    CU_ASSERT_EQUAL_FATAL(gt_cmd_run(argv, NULL, 120, &r), 0); /* warm go's build cache */
    gt_child_free(&r);
    double t0 = secs();
    CU_ASSERT_EQUAL_FATAL(gt_cmd_run(argv, NULL, 120, &r), 0);
    double go = secs() - t0;
    gt_child_free(&r);
    fprintf(stderr, "\n  top on 100,000 samples: gortprof %.3fs, go tool pprof %.3fs (%.1fx)\n", best, go,
            go / best);
    CU_ASSERT(best * 3 < go);
}

GT_SUITE(gortprof, {"help_lists_commands", test_help_lists_commands},
         {"top_matches_go_pprof", test_top_matches_go_pprof}, {"heavy_near_75", test_heavy_near_75},
         {"list_dwarf", test_list_dwarf}, {"reports_run", test_reports_run}, {"hostile_files", test_hostile_files},
         {"flame_svg_and_chromium", test_flame_svg_and_chromium}, {"http_ui", test_http_ui},
         {"speed_100k", test_speed_100k})
