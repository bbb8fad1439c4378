/*
 * leak.c: goroutine leak checks (uber-go/goleak's model).
 *
 * A mark is the sorted set of goroutine ids alive when it was taken.  Ids
 * are not a creation order (each P hands out ids from its own batch of 16,
 * proc.c), so "created after the mark" is "alive now and not in the set";
 * ids are never reused within a gort_main call, so a goroutine that ended
 * and whose G was recycled counts as new.
 *
 * The report reuses the goroutine dump (gort_stack with all) rather than a
 * second unwinder: the dump is split at its blank lines and the blocks of
 * leaked goroutines are kept.  The dump's "created by" line is the creation
 * site, from g->gopc (recorded by gort_go).
 *
 * Checking waits with backoff (1 ms doubling to 50 ms) up to the caller's
 * timeout, because a goroutine that was signalled to stop is still alive
 * until it returns; a test that passes never waits longer than that.
 *
 * Written against the public API only (gort_goroutines, gort_stack): it
 * is a client of the runtime, and scripts/layers checks that it stays one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gort.h"
#include "gort_leak.h"

/* A public-API client, with no way into the runtime's state but the API:
 * gort_self ends a forked child (runtime/fork.c), as every gort call must. */
static inline void forked_check(void) { (void)gort_self(); }

struct gort_leak_mark {
    uint64_t *ids;
    size_t n;
};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The live goroutines (gort_goroutines), less those in mark and the
 * caller when a mark is given.  *n: how many; the array is malloc'd. */
static gort_goroutine_info *collect(const gort_leak_mark *mark, size_t *n)
{
    int cap = 64, k;
    gort_goroutine_info *l = NULL;
    for (;;) {
        gort_goroutine_info *nl = realloc(l, (size_t)cap * sizeof *l);
        if (!nl)
            gort_panic("leak checker: out of memory");
        l = nl;
        k = gort_goroutines(l, cap);
        if (k <= cap)
            break;
        cap = k + k / 4;
    }
    size_t w = 0;
    uint64_t self = gort_self();
    for (int i = 0; i < k; i++) {
        uint64_t id = l[i].goid;
        if (mark && (id == self || bsearch(&id, mark->ids, mark->n, sizeof id, cmp_u64)))
            continue;
        l[w++] = l[i];
    }
    *n = w;
    return l;
}

gort_leak_mark *gort_leak_mark_new(void)
{
    forked_check();
    size_t n;
    gort_goroutine_info *l = collect(NULL, &n);
    gort_leak_mark *m = malloc(sizeof *m);
    uint64_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!m || !ids)
        gort_panic("leak checker: out of memory");
    for (size_t i = 0; i < n; i++)
        ids[i] = l[i].goid;
    free(l);
    m->ids = ids;
    m->n = n;
    if (m->n)
        qsort(m->ids, m->n, sizeof *m->ids, cmp_u64);
    return m;
}

void gort_leak_mark_free(gort_leak_mark *m)
{
    forked_check();
    if (!m)
        return;
    free(m->ids);
    free(m);
}

int gort_leak_list(gort_leak_mark *m, gort_leak_info *out, int max)
{
    forked_check();
    size_t n;
    gort_goroutine_info *l = collect(m, &n);
    for (size_t i = 0; i < n && (int)i < max; i++)
        out[i] = (gort_leak_info){l[i].goid, l[i].parent_goid, l[i].created_pc};
    free(l);
    return (int)n;
}

static bool in_list(const gort_leak_info *l, int n, uint64_t id)
{
    for (int i = 0; i < n; i++)
        if (l[i].goid == id)
            return true;
    return false;
}

static char *make_report(gort_leak_mark *m, int n)
{
    gort_leak_info *l = calloc((size_t)n, sizeof *l);
    size_t cap = 1 << 16;
    char *dump = NULL;
    size_t len;
    if (!l)
        return NULL;
    n = gort_leak_list(m, l, n);
    for (;;) {
        char *d = realloc(dump, cap);
        if (!d)
            break;
        dump = d;
        len = gort_stack(dump, cap - 1, true);
        if (len < cap - 1 || cap >= (1u << 26))
            break;
        cap *= 2;
    }
    if (!dump) {
        free(l);
        return NULL;
    }
    dump[len] = 0;
    char *out = malloc(len + 128);
    if (!out) {
        free(dump);
        free(l);
        return NULL;
    }
    size_t o = (size_t)snprintf(out, 128, "found %d leaked goroutine%s:\n", n, n == 1 ? "" : "s");
    /* Blocks are separated by one blank line and start "goroutine N [". */
    for (char *b = dump; b && *b;) {
        char *end = strstr(b, "\n\n");
        size_t blen = end ? (size_t)(end - b) + 1 : strlen(b);
        unsigned long long id;
        if (sscanf(b, "goroutine %llu [", &id) == 1 && in_list(l, n, id)) {
            out[o++] = '\n';
            memcpy(out + o, b, blen);
            o += blen;
        }
        b = end ? end + 2 : NULL;
    }
    out[o] = 0;
    free(dump);
    free(l);
    return out;
}

int gort_leak_check(gort_leak_mark *m, int64_t timeout_ns, char **report)
{
    forked_check();
    int64_t deadline = gort_nanotime() + timeout_ns;
    int64_t backoff = 1000000;
    int n;
    if (report)
        *report = NULL;
    for (;;) {
        n = gort_leak_list(m, NULL, 0);
        if (n == 0 || gort_nanotime() >= deadline)
            break;
        gort_sleep(backoff);
        if (backoff < 50000000)
            backoff *= 2;
    }
    if (n && report)
        *report = make_report(m, n);
    return n;
}
