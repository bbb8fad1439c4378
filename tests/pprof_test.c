/*
 * pprof_test.c: the profile.proto codec (prof/pprof_*.c).
 *
 * Round trips through the builder, encoder and decoder; then hostile input,
 * each case written by hand with a tiny protobuf writer so the test says
 * exactly which promise it checks: truncated files at every length, wrong
 * magic, lengths past the end, indexes out of range, deep stacks, huge
 * counts.  Every rejection must be one non-empty line.  The fuzz corpus and
 * the kept crashers (tests/testdata/fuzz-regressions/) are replayed, whole
 * and cut at every length.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pprof.h"
#include "test.h"

/* ---- a tiny protobuf writer -------------------------------------------- */

typedef struct pb {
    uint8_t b[1 << 16];
    size_t n;
} pb_t;

static void pb_varint(pb_t *w, uint64_t x)
{
    while (x >= 0x80) {
        w->b[w->n++] = (uint8_t)(x | 0x80);
        x >>= 7;
    }
    w->b[w->n++] = (uint8_t)x;
}

static void pb_uint(pb_t *w, int field, uint64_t x)
{
    pb_varint(w, (uint64_t)field << 3);
    pb_varint(w, x);
}

static void pb_bytes(pb_t *w, int field, const void *p, size_t n)
{
    pb_varint(w, (uint64_t)field << 3 | 2);
    pb_varint(w, n);
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void pb_msg(pb_t *w, int field, const pb_t *m) { pb_bytes(w, field, m->b, m->n); }

/* A valid profile: strings "", "cpu", "count", "main", one function, one
 * location, one sample; fn_name/loc_id/str_idx let a case break one thing. */
static void make_profile(pb_t *w, uint64_t fn_name, uint64_t sample_loc, uint64_t value)
{
    static pb_t m, l;
    memset(w, 0, sizeof *w);
    m.n = 0;
    pb_uint(&m, 1, 1);
    pb_uint(&m, 2, 2);
    pb_msg(w, 1, &m); /* sample_type cpu/count */
    m.n = 0;
    pb_uint(&m, 1, sample_loc);
    pb_uint(&m, 2, value);
    pb_msg(w, 2, &m); /* sample */
    m.n = 0;
    l.n = 0;
    pb_uint(&l, 1, 1);
    pb_uint(&l, 2, 7);
    pb_uint(&m, 1, 1);
    pb_msg(&m, 4, &l);
    pb_msg(w, 4, &m); /* location 1: function 1 line 7 */
    m.n = 0;
    pb_uint(&m, 1, 1);
    pb_uint(&m, 2, fn_name);
    pb_msg(w, 5, &m); /* function 1 */
    const char *strs[] = {"", "cpu", "count", "main"};
    for (int i = 0; i < 4; i++)
        pb_bytes(w, 6, strs[i], strlen(strs[i]));
}

static gort__pprof_t *decode(const void *b, size_t n, char *err)
{
    err[0] = 0;
    gort__pprof_t *p = gort__pprof_decode(b, n, err, 512);
    if (!p) {
        CU_ASSERT(err[0] != 0);
        CU_ASSERT(strchr(err, '\n') == NULL);
    }
    return p;
}

/* Rejected with an error mentioning want. */
static void expect_reject(const void *b, size_t n, const char *want)
{
    char err[512];
    gort__pprof_t *p = decode(b, n, err);
    CU_ASSERT_PTR_NULL(p);
    if (p)
        gort__pprof_free(p);
    else if (want && !gt_contains(err, want))
        fprintf(stderr, "\n  error \"%s\" lacks \"%s\"\n", err, want);
    if (want)
        CU_ASSERT(gt_contains(err, want));
}

static void test_valid_handmade(void)
{
    pb_t w;
    char err[512];
    make_profile(&w, 3, 1, 5);
    gort__pprof_t *p = decode(w.b, w.n, err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(p->nsample, 1);
    CU_ASSERT_EQUAL(p->sample[0].value[0], 5);
    CU_ASSERT_STRING_EQUAL(p->str[p->func[p->loc[p->sample[0].loc[0]].line[0].func].name], "main");
    gort__pprof_free(p);
}

static void test_roundtrip_builder(void)
{
    gort__pprof_t *p = gort__pprof_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(gort__pprof_add_sample_type(p, "samples", "count"), 0);
    CU_ASSERT_EQUAL(gort__pprof_add_sample_type(p, "cpu", "nanoseconds"), 0);
    CU_ASSERT_EQUAL(gort__pprof_set_period(p, "cpu", "nanoseconds", 10000000), 0);
    int64_t m = gort__pprof_add_mapping(p, 0x400000, 0x500000, 0, "/bin/x", "abc");
    int64_t f1 = gort__pprof_add_function(p, "main", "main", "x.c", 10);
    int64_t f2 = gort__pprof_add_function(p, "work", "work", "x.c", 20);
    int64_t f3 = gort__pprof_add_function(p, "inl", "inl", "x.c", 30);
    CU_ASSERT_FATAL(m >= 0 && f1 >= 0 && f2 >= 0 && f3 >= 0);
    gort__pprof_line_t l1 = {(uint32_t)f1, 12, 0}, l2[2] = {{(uint32_t)f3, 31, 0}, {(uint32_t)f2, 22, 0}};
    int64_t a = gort__pprof_add_location(p, (uint32_t)m, 0x401000, &l1, 1);
    int64_t b = gort__pprof_add_location(p, (uint32_t)m, 0x402000, l2, 2);
    CU_ASSERT_FATAL(a >= 0 && b >= 0);
    CU_ASSERT_EQUAL(gort__pprof_add_location(p, (uint32_t)m, 0x401000, &l1, 1), a); /* deduped */
    uint32_t stack[2] = {(uint32_t)b, (uint32_t)a};
    int64_t v[2] = {1, 10000000};
    int64_t key = gort__pprof_str(p, "worker"), val = gort__pprof_str(p, "7");
    gort__pprof_label_t lab = {key, val, 0, 0};
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(gort__pprof_add_sample(p, stack, 2, v, &lab, 1), 0);
    CU_ASSERT_EQUAL(gort__pprof_add_sample(p, stack + 1, 1, v, NULL, 0), 0);
    CU_ASSERT_EQUAL(p->nsample, 2); /* the three identical samples merged */
    CU_ASSERT_EQUAL(p->str[0][0], 0);
    for (int gz = 0; gz < 2; gz++) {
        uint8_t *enc;
        size_t n;
        char err[512];
        CU_ASSERT_EQUAL_FATAL(gort__pprof_encode(p, gz, &enc, &n), 0);
        if (gz)
            CU_ASSERT(n > 2 && enc[0] == 0x1f && enc[1] == 0x8b);
        gort__pprof_t *q = decode(enc, n, err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(q);
        CU_ASSERT_EQUAL(q->nsample, 2);
        CU_ASSERT_EQUAL(q->nloc, 2);
        CU_ASSERT_EQUAL(q->nfunc, 3);
        CU_ASSERT_EQUAL(q->period, 10000000);
        CU_ASSERT_EQUAL(q->sample[0].value[0], 3);
        CU_ASSERT_EQUAL(q->sample[0].value[1], 30000000);
        CU_ASSERT_EQUAL(q->sample[0].nlabel, 1);
        CU_ASSERT_STRING_EQUAL(q->str[q->sample[0].label[0].str], "7");
        const gort__pprof_location_t *lb = &q->loc[q->sample[0].loc[0]];
        CU_ASSERT_EQUAL(lb->nline, 2);
        CU_ASSERT_STRING_EQUAL(q->str[q->func[lb->line[0].func].name], "inl");
        gort__pprof_free(q);
        free(enc);
    }
    gort__pprof_free(p);
}

static void test_reject_basic(void)
{
    expect_reject("", 0, "empty");
    expect_reject("hello world garbage", 19, NULL);
    const uint8_t badgz[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff};
    expect_reject(badgz, sizeof badgz, "gzip");
    const uint8_t notgz[] = {0x1f, 0x8c, 1, 2, 3};
    expect_reject(notgz, sizeof notgz, NULL);
}

static void test_reject_lengths(void)
{
    pb_t w = {0};
    pb_varint(&w, 6 << 3 | 2);
    pb_varint(&w, 1000);
    memcpy(w.b + w.n, "abc", 3);
    w.n += 3;
    expect_reject(w.b, w.n, NULL);
    w.n = 0;
    pb_varint(&w, 6 << 3 | 2);
    pb_varint(&w, UINT64_MAX);
    expect_reject(w.b, w.n, NULL);
    /* A varint that never ends. */
    memset(w.b, 0xff, 20);
    expect_reject(w.b, 20, NULL);
}

static void test_reject_indexes(void)
{
    pb_t w;
    make_profile(&w, 99, 1, 5); /* function name: string 99 of 4 */
    expect_reject(w.b, w.n, NULL);
    make_profile(&w, 3, 42, 5); /* sample names location 42 */
    expect_reject(w.b, w.n, NULL);
    make_profile(&w, 3, 0, 5); /* location id 0 */
    expect_reject(w.b, w.n, NULL);
}

static void test_truncated_every_length(void)
{
    pb_t w;
    char err[512];
    make_profile(&w, 3, 1, 5);
    for (size_t n = 0; n < w.n; n++) {
        gort__pprof_t *p = decode(w.b, n, err);
        gort__pprof_free(p);
    }
    gort__pprof_t *p = gort__pprof_read_file("tests/testdata/go-cpu.pb.gz", err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    uint8_t *enc[2];
    size_t len[2];
    for (int gz = 0; gz < 2; gz++)
        CU_ASSERT_EQUAL_FATAL(gort__pprof_encode(p, gz, &enc[gz], &len[gz]), 0);
    gort__pprof_free(p);
    for (int gz = 0; gz < 2; gz++) {
        for (size_t n = 0; n < len[gz]; n++)
            gort__pprof_free(decode(enc[gz], n, err));
        free(enc[gz]);
    }
}

static void test_huge_counts_and_deep_stacks(void)
{
    gort__pprof_t *p = gort__pprof_new();
    CU_ASSERT_EQUAL_FATAL(gort__pprof_add_sample_type(p, "samples", "count"), 0);
    int64_t f = gort__pprof_add_function(p, "rec", "rec", "r.c", 1);
    gort__pprof_line_t l = {(uint32_t)f, 2, 0};
    uint32_t loc = (uint32_t)gort__pprof_add_location(p, GORT__PPROF_NONE, 0x1000, &l, 1);
    enum { DEPTH = 100000 };
    uint32_t *stack = malloc(DEPTH * sizeof *stack);
    for (int i = 0; i < DEPTH; i++)
        stack[i] = loc;
    int64_t v = INT64_MAX;
    CU_ASSERT_EQUAL(gort__pprof_add_sample(p, stack, DEPTH, &v, NULL, 0), 0);
    v = -INT64_MAX;
    CU_ASSERT_EQUAL(gort__pprof_add_sample(p, stack, 1, &v, NULL, 0), 0);
    uint8_t *enc;
    size_t n;
    char err[512];
    CU_ASSERT_EQUAL_FATAL(gort__pprof_encode(p, true, &enc, &n), 0);
    gort__pprof_t *q = decode(enc, n, err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    CU_ASSERT_EQUAL(q->sample[0].nloc, DEPTH);
    CU_ASSERT_EQUAL(q->sample[0].value[0], INT64_MAX);
    gort__pprof_free(q);
    free(enc);
    free(stack);
    gort__pprof_free(p);
}

/* Every file of dir decodes or is rejected with one line, whole and cut
 * at every length (every 7th byte past 4 KiB, to keep the run short). */
static int replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int files = 0;
    struct dirent *e;
    char path[1024], err[512];
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        uint8_t *b;
        size_t n;
        if (gort__pprof_slurp(path, 1 << 20, &b, &n) != 0)
            continue;
        files++;
        for (size_t k = 0; k <= n; k += k < 4096 ? 1 : 7)
            gort__pprof_free(decode(b, k, err));
        gort__pprof_free(decode(b, n, err));
        free(b);
    }
    closedir(d);
    return files;
}

static void test_fuzz_corpus_replay(void)
{
    CU_ASSERT(replay_dir("tests/testdata/fuzz-regressions") >= 1);
    CU_ASSERT(replay_dir("tests/fuzz/corpus") >= 1);
}

GT_SUITE(pprof, {"valid_handmade", test_valid_handmade}, {"roundtrip_builder", test_roundtrip_builder},
         {"reject_basic", test_reject_basic}, {"reject_lengths", test_reject_lengths},
         {"reject_indexes", test_reject_indexes}, {"truncated_every_length", test_truncated_every_length},
         {"huge_counts_and_deep_stacks", test_huge_counts_and_deep_stacks},
         {"fuzz_corpus_replay", test_fuzz_corpus_replay})
