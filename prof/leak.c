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
 */
#include "runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gort_leak.h"

struct gort_leak_mark {
    uint64_t *ids;
    size_t n;
};

typedef struct collect {
    uint64_t *ids;
    gort_leak_info *info;
    size_t n, cap;
    const gort_leak_mark *mark;
    uint64_t self;
    bool oom;
} collect_t;

static bool live(gort_g_t *gp)
{
    uint32_t st = atomic_load_explicit(&gp->status, memory_order_acquire);
    return st != G_DEAD && st != G_IDLE;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Under allglock: no blocking; realloc is fine. */
static void collect_g(gort_g_t *gp, void *arg)
{
    collect_t *c = arg;
    if (!live(gp) || c->oom)
        return;
    uint64_t id = gp->goid;
    if (c->mark) {
        if (id == c->self || bsearch(&id, c->mark->ids, c->mark->n, sizeof id, cmp_u64))
            return;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        uint64_t *ids = realloc(c->ids, cap * sizeof *ids);
        gort_leak_info *info = ids ? realloc(c->info, cap * sizeof *info) : NULL;
        if (ids)
            c->ids = ids;
        if (!ids || !info) {
            c->oom = true;
            return;
        }
        c->info = info;
        c->cap = cap;
    }
    c->ids[c->n] = id;
    c->info[c->n] = (gort_leak_info){id, gp->parent_goid, gp->gopc};
    c->n++;
}

static void collect_run(collect_t *c)
{
    gort__forallg(collect_g, c);
    if (c->oom)
        gort__throw("out of memory in the leak checker");
}

gort_leak_mark *gort_leak_mark_new(void)
{
    collect_t c = {0};
    collect_run(&c);
    free(c.info);
    gort_leak_mark *m = malloc(sizeof *m);
    if (!m)
        gort__throw("out of memory in the leak checker");
    m->ids = c.ids;
    m->n = c.n;
    if (m->n)
        qsort(m->ids, m->n, sizeof *m->ids, cmp_u64);
    return m;
}

void gort_leak_mark_free(gort_leak_mark *m)
{
    if (!m)
        return;
    free(m->ids);
    free(m);
}

int gort_leak_list(gort_leak_mark *m, gort_leak_info *out, int max)
{
    collect_t c = {.mark = m, .self = gort_self()};
    collect_run(&c);
    for (size_t i = 0; i < c.n && (int)i < max; i++)
        out[i] = c.info[i];
    free(c.ids);
    free(c.info);
    return (int)c.n;
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
