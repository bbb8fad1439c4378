/*
 * tracefile.c: reads a Go 1.19 execution trace (what gort's tracer and
 * Go's runtime/trace write) and computes the goroutine analysis that
 * `go tool trace` shows: goroutines grouped by start function, with their
 * execution, scheduler-wait, blocked (by reason) and syscall time, and the
 * scheduler latency (runnable to running) percentiles.
 *
 * The file is untrusted: every length and count is checked against what
 * is left, strings and stacks are bounded as Go's parser bounds them, and
 * memory grows with the input (at most a few words per byte).  A bad file
 * is one line of error, never a crash (the libFuzzer target, make fuzz,
 * runs this reader).
 *
 * Events are put in time order by their timestamps (stable for ties), not
 * by Go's sequence-number merge (internal/trace/order.go): the analysis
 * only sums intervals, and a trace whose clocks disagree slightly still
 * gets a useful summary here where go tool trace refuses it.
 */
#include "tracefile.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const gt_block_names[GT_NB] = {"send", "recv", "select", "sync", "cond", "net", "sleep", "other"};

/* Arguments (timestamp included) of each event type, as Go 1.19's
 * EventDescriptions say; -1: not an event of 1.19 (or variable). */
static const int8_t nargs[50] = {
    -1, 2, 1, -1, 3, 2, 1, 3, 1, 2, 1, 2, 3, 4, 3, 1, 2, 2, 2, 2, /* 0-19 */
    2, 4, 2, 2, 2, 2, 2, 2, 2, 4, 1, 2, 2, 2, 2, 1, 1, -1, 2, 3, /* 20-39 */
    3, 4, 2, 2, 1, 5, 3, 5, 4, 5,                                /* 40-49 */
};

typedef struct {
    uint64_t ts, g;
    uint64_t a[4];
    uint32_t idx;
    uint8_t type;
} rev_t;

typedef struct {
    uint64_t key, val;
    char *s;
} kv_t;

/* An open-addressing map from u64 (never 0 after +1) to a value. */
typedef struct {
    kv_t *t;
    size_t cap, n;
} map_t;

static kv_t *map_get(map_t *m, uint64_t key, bool add)
{
    uint64_t k = key + 1;
    if (add && (m->n + 1) * 2 > m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 64;
        kv_t *nt = calloc(nc, sizeof *nt);
        if (!nt)
            return NULL;
        for (size_t i = 0; i < m->cap; i++)
            if (m->t[i].key) {
                size_t j = (m->t[i].key * 0x9E3779B97F4A7C15ull) >> 20 & (nc - 1);
                while (nt[j].key)
                    j = (j + 1) & (nc - 1);
                nt[j] = m->t[i];
            }
        free(m->t);
        m->t = nt;
        m->cap = nc;
    }
    if (!m->cap)
        return NULL;
    size_t j = (k * 0x9E3779B97F4A7C15ull) >> 20 & (m->cap - 1);
    while (m->t[j].key) {
        if (m->t[j].key == k)
            return &m->t[j];
        j = (j + 1) & (m->cap - 1);
    }
    if (!add)
        return NULL;
    m->t[j].key = k;
    m->n++;
    return &m->t[j];
}

static void map_free(map_t *m, bool strs)
{
    if (strs)
        for (size_t i = 0; i < m->cap; i++)
            free(m->t[i].s);
    free(m->t);
}

typedef struct {
    const uint8_t *p, *end;
    char *err;
    size_t errlen;
    size_t base;
    const uint8_t *start;
} rd_t;

static int fail(rd_t *r, const char *what)
{
    snprintf(r->err, r->errlen, "bad trace at offset %zu: %s", (size_t)(r->p - r->start), what);
    return -1;
}

static int val(rd_t *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int i = 0; i < 10; i++) {
        if (r->p >= r->end)
            return fail(r, "truncated value");
        uint8_t b = *r->p++;
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return fail(r, "bad value");
}

enum { ST_NONE, ST_RUNNABLE, ST_RUNNING, ST_BLOCKED, ST_SYSCALL, ST_DEAD };

typedef struct {
    uint64_t since;   /* ts of the last state change */
    uint64_t fnstr;   /* start function's string id, 0 unknown */
    uint8_t st, why;
    int64_t exec, sched, sys, block[GT_NB];
} gst_t;

static int block_reason(int type)
{
    switch (type) {
    case 22: return GT_B_SEND;
    case 23: return GT_B_RECV;
    case 24: return GT_B_SELECT;
    case 25: return GT_B_SYNC;
    case 26: return GT_B_COND;
    case 27: return GT_B_NET;
    case 19: return GT_B_SLEEP;
    default: return GT_B_OTHER;
    }
}

/* Durations saturate: a hostile trace's timestamps may be anything. */
static int64_t ns_of(uint64_t d, double scale)
{
    double v = (double)d * scale;
    return v >= 1e17 ? (int64_t)1e17 : (int64_t)v;
}

static void sat_add(int64_t *a, int64_t b)
{
    *a = *a > INT64_MAX - b ? INT64_MAX : *a + b;
}

static int cmp_ev(const void *a, const void *b)
{
    const rev_t *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_group(const void *a, const void *b)
{
    const gt_group_t *x = a, *y = b;
    if (x->exec_ns != y->exec_ns)
        return x->exec_ns > y->exec_ns ? -1 : 1;
    return strcmp(x->fn, y->fn);
}

int gt_summarize(const uint8_t *data, size_t n, gt_summary_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    rd_t r = {data, data + n, err, errlen, 0, data};
    if (n < 16 || memcmp(data, "go 1.19 trace\0\0\0", 16) != 0) {
        snprintf(err, errlen, "not a Go 1.19 execution trace (bad header)");
        return -1;
    }
    r.p += 16;
    int rc = -1;
    rev_t *evs = NULL;
    size_t nev = 0, cap = 0;
    map_t strs = {0}, stacks = {0}, ps = {0}, gs = {0}, groups = {0};
    int64_t *lat = NULL;
    size_t nlat = 0;
    uint64_t freq = 0;
    kv_t *pcur = NULL; /* the batch's P: val is its last timestamp */
    map_t lastg = {0};
    uint64_t a[8];
    while (r.p < r.end) {
        const uint8_t *ev0 = r.p;
        uint8_t b = *r.p++;
        int type = b & 0x3f, narg = (b >> 6) + 1;
        if (type == 0 || type >= 50) {
            r.p = ev0;
            fail(&r, "unknown event type");
            goto out;
        }
        if (type == 37) { /* string [id, len, bytes] */
            uint64_t id, len;
            if (val(&r, &id) || val(&r, &len))
                goto out;
            if (id == 0 || len == 0 || len > 1000000 || len > (uint64_t)(r.end - r.p)) {
                fail(&r, "bad string");
                goto out;
            }
            kv_t *e = map_get(&strs, id, true);
            if (!e)
                goto oom;
            if (e->s) {
                fail(&r, "duplicate string id");
                goto out;
            }
            if (!(e->s = malloc(len + 1)))
                goto oom;
            memcpy(e->s, r.p, len);
            e->s[len] = 0;
            r.p += len;
            continue;
        }
        int got = 0;
        uint64_t stk_id = 0, stk_n = 0, stk_fn = 0;
        if (narg < 4) {
            for (int i = 0; i < narg; i++)
                if (val(&r, &a[got++]))
                    goto out;
        } else {
            uint64_t len;
            if (val(&r, &len))
                goto out;
            if (len > (uint64_t)(r.end - r.p)) {
                fail(&r, "event length past the end");
                goto out;
            }
            const uint8_t *stop = r.p + len;
            while (r.p < stop) {
                uint64_t v;
                const uint8_t *save = r.end;
                r.end = stop;
                int e = val(&r, &v);
                r.end = save;
                if (e)
                    goto out;
                if (type == 3) { /* stack: keep id, size, first frame's function */
                    if (got == 0)
                        stk_id = v;
                    else if (got == 1)
                        stk_n = v;
                    else if (got == 3)
                        stk_fn = v;
                } else if (got < 8) {
                    a[got] = v;
                }
                got++;
            }
        }
        if (type == 48) { /* user log: a message follows */
            uint64_t len;
            if (val(&r, &len))
                goto out;
            if (len > 1000000 || len > (uint64_t)(r.end - r.p)) {
                fail(&r, "bad log message");
                goto out;
            }
            r.p += len;
        }
        if (type == 3) {
            if (got < 2 || stk_n > 1000 || (uint64_t)got != 2 + 4 * stk_n) {
                r.p = ev0;
                fail(&r, "bad stack");
                goto out;
            }
            if (stk_id && stk_n) {
                kv_t *e = map_get(&stacks, stk_id, true);
                if (!e)
                    goto oom;
                e->val = stk_fn;
            }
            continue;
        }
        if (nargs[type] < 0 || got != nargs[type]) {
            r.p = ev0;
            fail(&r, "wrong number of arguments");
            goto out;
        }
        if (type == 1) { /* batch [p, ticks] */
            pcur = map_get(&ps, a[0], true);
            if (!pcur)
                goto oom;
            pcur->val = a[1];
            continue;
        }
        if (type == 2) {
            if ((int64_t)a[0] <= 0) {
                fail(&r, "bad frequency");
                goto out;
            }
            freq = a[0];
            continue;
        }
        if (type == 35)
            continue;
        if (!pcur) {
            r.p = ev0;
            fail(&r, "event before any batch");
            goto out;
        }
        pcur->val += a[0];
        if (nev == cap) {
            size_t nc = cap ? cap * 2 : 1024;
            rev_t *ne = realloc(evs, nc * sizeof *ne);
            if (!ne)
                goto oom;
            evs = ne;
            cap = nc;
        }
        rev_t *e = &evs[nev];
        memset(e, 0, sizeof *e);
        e->type = (uint8_t)type;
        e->idx = (uint32_t)nev;
        e->ts = pcur->val;
        for (int i = 1; i < got && i <= 4; i++)
            e->a[i - 1] = a[i];
        /* The goroutine on this P: the last GoStart of its stream. */
        kv_t *lg = map_get(&lastg, pcur->key, true);
        if (!lg)
            goto oom;
        switch (type) {
        case 14: case 38: case 41:
            lg->val = e->a[0];
            break;
        }
        e->g = lg->val;
        switch (type) {
        case 15: case 16: case 17: case 18: case 19: case 20: case 22: case 23: case 24: case 25:
        case 26: case 27: case 30: case 42:
            lg->val = 0;
            break;
        }
        if (type == 49) { /* CPU sample: not part of the analysis */
            continue;
        }
        nev++;
    }
    if (nev == 0) {
        snprintf(err, errlen, "trace is empty");
        goto out;
    }
    if (freq == 0) {
        snprintf(err, errlen, "no EvFrequency event");
        goto out;
    }
    qsort(evs, nev, sizeof *evs, cmp_ev);
    double scale = 1e9 / (double)freq;
    uint64_t t0 = evs[0].ts;
#define NS(d) ns_of((d), scale)
    if (!(lat = malloc(nev * sizeof *lat)))
        goto oom;
    for (size_t i = 0; i < nev; i++) {
        rev_t *e = &evs[i];
        uint64_t target = e->g;
        switch (e->type) {
        case 13: case 14: case 38: case 41: case 21: case 39: case 29: case 40: case 31: case 32:
            target = e->a[0];
        }
        if (e->type == 45)
            out->ntasks++;
        else if (e->type == 47 && e->a[1] == 0)
            out->nregions++;
        else if (e->type == 48)
            out->nlogs++;
        if (target == 0)
            continue;
        kv_t *k = map_get(&gs, target, true);
        if (!k)
            goto oom;
        if (!k->s) {
            if (!(k->s = calloc(1, sizeof(gst_t))))
                goto oom;
        }
        gst_t *g = (gst_t *)k->s;
        uint64_t d = e->ts - g->since;
        switch (e->type) {
        case 13: /* GoCreate [g, new stack, stack] */
            g->st = ST_RUNNABLE;
            g->since = e->ts;
            {
                kv_t *s = map_get(&stacks, e->a[1], false);
                g->fnstr = s ? s->val : 0;
            }
            break;
        case 14: case 38: case 41: /* GoStart */
            if (g->st == ST_RUNNABLE) {
                sat_add(&g->sched, NS(d));
                lat[nlat++] = NS(d);
            }
            g->st = ST_RUNNING;
            g->since = e->ts;
            break;
        case 15: /* GoEnd */
            if (g->st == ST_RUNNING)
                sat_add(&g->exec, NS(d));
            g->st = ST_DEAD;
            g->since = e->ts;
            break;
        case 16: case 17: case 18: case 19: case 20: case 22: case 23: case 24: case 25: case 26: case 27:
        case 42:
            if (g->st == ST_RUNNING)
                sat_add(&g->exec, NS(d));
            g->st = e->type == 17 || e->type == 18 ? ST_RUNNABLE : ST_BLOCKED;
            g->why = (uint8_t)block_reason(e->type);
            g->since = e->ts;
            break;
        case 21: case 39: /* GoUnblock */
            if (g->st == ST_BLOCKED)
                sat_add(&g->block[g->why], NS(d));
            g->st = ST_RUNNABLE;
            g->since = e->ts;
            break;
        case 30: /* GoSysBlock */
            if (g->st == ST_RUNNING)
                sat_add(&g->exec, NS(d));
            g->st = ST_SYSCALL;
            g->since = e->ts;
            break;
        case 29: case 40: /* GoSysExit */
            if (g->st == ST_SYSCALL)
                sat_add(&g->sys, NS(d));
            g->st = ST_RUNNABLE;
            g->since = e->ts;
            break;
        case 31: /* GoWaiting */
            g->st = ST_BLOCKED;
            g->why = GT_B_OTHER;
            g->since = e->ts;
            break;
        case 32: /* GoInSyscall */
            g->st = ST_SYSCALL;
            g->since = e->ts;
            break;
        }
    }
    /* Goroutines still running at the end ran until then. */
    uint64_t tend = evs[nev - 1].ts;
    for (size_t i = 0; i < gs.cap; i++) {
        gst_t *g = (gst_t *)gs.t[i].s;
        if (!gs.t[i].key || !g)
            continue;
        uint64_t d = tend - g->since;
        if (g->st == ST_RUNNING)
            sat_add(&g->exec, NS(d));
        const char *fn = "?";
        kv_t *s = g->fnstr ? map_get(&strs, g->fnstr, false) : NULL;
        if (s && s->s)
            fn = s->s;
        uint64_t h = 14695981039346656037ull;
        for (const char *c = fn; *c; c++)
            h = (h ^ (uint8_t)*c) * 1099511628211ull;
        kv_t *gr;
        for (;;) { /* chained on collisions of the name's hash */
            gr = map_get(&groups, h, true);
            if (!gr)
                goto oom;
            if (!gr->s || strcmp(((gt_group_t *)gr->s)->fn, fn) == 0)
                break;
            h++;
        }
        if (!gr->s) {
            gt_group_t *ng = calloc(1, sizeof *ng);
            if (!ng || !(ng->fn = strdup(fn))) {
                free(ng);
                goto oom;
            }
            gr->s = (char *)ng;
        }
        gt_group_t *G = (gt_group_t *)gr->s;
        G->count++;
        sat_add(&G->exec_ns, g->exec);
        sat_add(&G->sched_ns, g->sched);
        sat_add(&G->syscall_ns, g->sys);
        for (int b = 0; b < GT_NB; b++)
            sat_add(&G->block_ns[b], g->block[b]);
        out->ngoroutines++;
    }
    if (!(out->groups = calloc(groups.n ? groups.n : 1, sizeof *out->groups)))
        goto oom;
    for (size_t i = 0; i < groups.cap; i++)
        if (groups.t[i].key && groups.t[i].s) {
            out->groups[out->ngroups++] = *(gt_group_t *)groups.t[i].s;
            free(groups.t[i].s);
            groups.t[i].s = NULL;
        }
    qsort(out->groups, out->ngroups, sizeof *out->groups, cmp_group);
    qsort(lat, nlat, sizeof *lat, cmp_i64);
    out->nlat = nlat;
    if (nlat) {
        out->lat_p50 = lat[(nlat - 1) * 50 / 100];
        out->lat_p90 = lat[(nlat - 1) * 90 / 100];
        out->lat_p99 = lat[(nlat - 1) * 99 / 100];
        out->lat_max = lat[nlat - 1];
    }
    out->nevents = nev;
    out->nprocs = 0;
    for (size_t i = 0; i < ps.cap; i++)
        if (ps.t[i].key && (int64_t)ps.t[i].key - 1 >= 0 && (int64_t)ps.t[i].key - 1 < 1000000)
            out->nprocs++;
    out->dur_ns = NS(tend - t0);
    rc = 0;
    goto out;
oom:
    snprintf(err, errlen, "out of memory");
    rc = -1;
out:
    if (rc != 0)
        gt_summary_free(out);
    free(evs);
    free(lat);
    map_free(&strs, true);
    map_free(&stacks, false);
    map_free(&ps, false);
    map_free(&gs, true);
    for (size_t i = 0; i < groups.cap; i++)
        if (groups.t[i].s)
            free(((gt_group_t *)groups.t[i].s)->fn);
    map_free(&groups, true);
    map_free(&lastg, false);
    return rc;
}

void gt_summary_free(gt_summary_t *s)
{
    for (size_t i = 0; i < s->ngroups; i++)
        free(s->groups[i].fn);
    free(s->groups);
    memset(s, 0, sizeof *s);
}
