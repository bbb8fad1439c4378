/*
 * peek.c: `gortprof peek REGEX` and `gortprof tree`: each function with its
 * callers above and callees below, in the layout of pprof's -peek / -tree.
 *
 * An edge (caller, callee) is a pair of adjacent frames of a sample; its
 * weight is the value of the samples that hold it, counted once per sample
 * even when recursion repeats the pair (a per-edge stamp, as for cum).  An
 * edge inside one location (an inlined call) is marked "(inline)".
 * calls% is the edge's share of the function's cum.  Edges under 0.1% of
 * the total, and edges to functions dropped by -nodefraction, are left out,
 * as pprof does.
 */
#include "gortprof.h"

#include <stdlib.h>
#include <string.h>

typedef struct edge {
    uint32_t from, to;
    int64_t w;
    uint32_t stamp;
    bool inl;
} edge_t;

typedef struct edges {
    edge_t *e;
    uint32_t n, cap;
    uint32_t *slot;
    size_t mask;
} edges_t;

static int edge_add(edges_t *es, uint32_t from, uint32_t to, int64_t w, uint32_t stamp, bool inl)
{
    uint64_t h = ((uint64_t)from * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)to * 0xc2b2ae3d27d4eb4full);
    h ^= h >> 31;
    for (size_t i = h & es->mask;; i = (i + 1) & es->mask) {
        uint32_t s = es->slot[i];
        if (!s) {
            es->e[es->n] = (edge_t){from, to, w, stamp, inl};
            es->slot[i] = ++es->n;
            return 0;
        }
        edge_t *e = &es->e[s - 1];
        if (e->from == from && e->to == to) {
            if (e->stamp != stamp) {
                e->stamp = stamp;
                e->w += w;
            }
            e->inl |= inl;
            return 0;
        }
    }
}

static int build_edges(const gp_view_t *v, edges_t *es)
{
    const gort__pprof_t *p = v->p;
    size_t cap;
    size_t frames = gp_kept_frames(v, &cap);
    if (frames >= UINT32_MAX / 2)
        return gp_fail("profile too large");
    es->e = malloc(frames * sizeof *es->e);
    es->slot = calloc(cap, sizeof *es->slot);
    es->mask = cap - 1;
    es->n = 0;
    if (!es->e || !es->slot) {
        free(es->e);
        free(es->slot);
        return gp_fail("out of memory");
    }
    for (size_t i = 0; i < p->nsample; i++) {
        const gort__pprof_sample_t *s = &p->sample[i];
        if (!v->keep[i])
            continue;
        int64_t x = s->value[v->vi];
        uint32_t prev = UINT32_MAX, prev_loc = UINT32_MAX;
        /* Leaf first: each frame is the caller of the one before it. */
        for (uint32_t j = 0; j < s->nloc; j++) {
            uint32_t l = s->loc[j];
            for (uint32_t f = v->loc_off[l]; f < v->loc_off[l + 1]; f++) {
                uint32_t nd = v->frame[f].node;
                /* Direct recursion makes no edge, as in pprof's graph. */
                if (prev != UINT32_MAX && prev != nd)
                    edge_add(es, nd, prev, x, (uint32_t)i + 1, prev_loc == j);
                prev = nd;
                prev_loc = j;
            }
        }
    }
    return 0;
}

static const edges_t *sort_es;

static int cmp_edge(const void *a, const void *b)
{
    const edge_t *x = &sort_es->e[*(const uint32_t *)a], *y = &sort_es->e[*(const uint32_t *)b];
    int64_t wx = llabs(x->w), wy = llabs(y->w);
    if (wx != wy)
        return wx > wy ? -1 : 1;
    return 0;
}

static void print_edge(const gp_view_t *v, FILE *out, const edge_t *e, uint32_t other, int64_t cum)
{
    char a[64], b[64];
    fprintf(out, "%50s %s |   %s%s\n", gp_fmt_value(v, e->w, a, sizeof a), gp_fmt_pct(e->w, cum, b, sizeof b),
            v->node[other].name, e->inl ? " (inline)" : "");
}

/* Edges grouped by callee and by caller (a counting sort): node n's
 * incoming edges are by_to[in_off[n] .. in_off[n + 1] - 1], its outgoing
 * ones by_from[out_off[n] .. out_off[n + 1] - 1]. */
static void index_edges(const edges_t *es, uint32_t nnode, uint32_t *in_off, uint32_t *out_off, uint32_t *by_to,
                        uint32_t *by_from)
{
    for (uint32_t k = 0; k < es->n; k++) {
        in_off[es->e[k].to + 1]++;
        out_off[es->e[k].from + 1]++;
    }
    for (uint32_t k = 0; k < nnode; k++) {
        in_off[k + 1] += in_off[k];
        out_off[k + 1] += out_off[k];
    }
    for (uint32_t k = 0; k < es->n; k++) {
        by_to[in_off[es->e[k].to]++] = k;
        by_from[out_off[es->e[k].from]++] = k;
    }
    for (uint32_t k = nnode; k > 0; k--) {
        in_off[k] = in_off[k - 1];
        out_off[k] = out_off[k - 1];
    }
    in_off[0] = out_off[0] = 0;
}

int gp_cmd_peek(const gp_opts_t *o, const char *pattern, const char *path, FILE *out)
{
    regex_t re;
    if (pattern && !gp_regcomp(&re, pattern, "peek"))
        return 1;
    gp_view_t v;
    int rc = gp_view_open(&v, path, o);
    if (rc) {
        if (pattern)
            regfree(&re);
        return rc;
    }
    gp_sums_t s;
    edges_t es = {0};
    uint32_t *ord = NULL, *in = NULL, *outs = NULL, *in_off = NULL, *out_off = NULL, *by_to = NULL,
             *by_from = NULL;
    if ((rc = gp_sums(&v, &s)) != 0)
        goto done;
    if ((rc = build_edges(&v, &es)) != 0)
        goto done_sums;
    ord = gp_sorted_nodes(&v, &s, o->cum);
    in = malloc((es.n + 1) * sizeof *in);
    outs = malloc((es.n + 1) * sizeof *outs);
    in_off = calloc(v.nnode + 2, sizeof *in_off);
    out_off = calloc(v.nnode + 2, sizeof *out_off);
    by_to = malloc((es.n + 1) * sizeof *by_to);
    by_from = malloc((es.n + 1) * sizeof *by_from);
    if (!ord || !in || !outs || !in_off || !out_off || !by_to || !by_from) {
        rc = gp_fail("out of memory");
        goto done_all;
    }
    index_edges(&es, v.nnode, in_off, out_off, by_to, by_from);
    int64_t cutoff = (int64_t)((double)v.total * o->nodefraction);
    int64_t ecut = (int64_t)((double)v.total * 0.001);
    int64_t min = 0, shown = 0;
    uint32_t nshow = 0, dropped = 0;
    for (uint32_t i = 0; i < v.nnode; i++) {
        uint32_t nd = ord[i];
        if (s.cum[nd] == 0 && s.flat[nd] == 0)
            continue;
        if (llabs(s.cum[nd]) < cutoff) {
            dropped++;
            continue;
        }
        /* The header and unit cover the whole graph, as pprof's. */
        shown += s.flat[nd];
        int64_t m = llabs(s.flat[nd] ? s.flat[nd] : s.cum[nd]);
        if (m && (!min || m < min))
            min = m;
        if (pattern && regexec(&re, v.node[nd].name, 0, NULL, 0) != 0)
            continue;
        if (o->nodecount && nshow >= (uint32_t)o->nodecount)
            continue;
        ord[nshow++] = nd;
    }
    gp_choose_unit(&v, min);
    char a[64], b[64], c[64], d[64], e[64];
    gp_print_header(out, &v);
    fprintf(out, "Showing nodes accounting for %s, %s of %s total\n", gp_fmt_value(&v, shown, a, sizeof a),
            gp_fmt_pct(shown, v.total, b, sizeof b) + (shown == v.total ? 2 : 0),
            gp_fmt_value(&v, v.total, c, sizeof c));
    if (dropped)
        fprintf(out, "Dropped %u nodes (cum <= %s)\n", dropped, gp_fmt_value(&v, cutoff, a, sizeof a));
    const char *rule = "----------------------------------------------------------+-------------\n";
    fprintf(out, "%s      flat  flat%%   sum%%        cum   cum%%   calls calls%% + context\n%s", rule, rule);
    if (nshow == 0 && pattern) {
        rc = gp_fail("no function matches \"%s\"", pattern);
        goto done_all;
    }
    int64_t sum = 0;
    sort_es = &es;
    for (uint32_t i = 0; i < nshow; i++) {
        uint32_t nd = ord[i];
        uint32_t nin = 0, nout = 0;
        for (uint32_t k = in_off[nd]; k < in_off[nd + 1]; k++)
            if (llabs(es.e[by_to[k]].w) >= ecut && llabs(s.cum[es.e[by_to[k]].from]) >= cutoff)
                in[nin++] = by_to[k];
        for (uint32_t k = out_off[nd]; k < out_off[nd + 1]; k++)
            if (llabs(es.e[by_from[k]].w) >= ecut && llabs(s.cum[es.e[by_from[k]].to]) >= cutoff)
                outs[nout++] = by_from[k];
        qsort(in, nin, sizeof *in, cmp_edge);
        qsort(outs, nout, sizeof *outs, cmp_edge);
        for (uint32_t k = 0; k < nin; k++)
            print_edge(&v, out, &es.e[in[k]], es.e[in[k]].from, s.cum[nd]);
        sum += s.flat[nd];
        fprintf(out, "%10s %s %s %10s %s                | %s\n", gp_fmt_value(&v, s.flat[nd], a, sizeof a),
                gp_fmt_pct(s.flat[nd], v.total, b, sizeof b), gp_fmt_pct(sum, v.total, c, sizeof c),
                gp_fmt_value(&v, s.cum[nd], d, sizeof d), gp_fmt_pct(s.cum[nd], v.total, e, sizeof e),
                v.node[nd].name);
        for (uint32_t k = 0; k < nout; k++)
            print_edge(&v, out, &es.e[outs[k]], es.e[outs[k]].to, s.cum[nd]);
        fputs(rule, out);
    }
done_all:
    free(in_off);
    free(out_off);
    free(by_to);
    free(by_from);
    free(ord);
    free(in);
    free(outs);
    free(es.e);
    free(es.slot);
done_sums:
    gp_sums_free(&s);
done:
    if (pattern)
        regfree(&re);
    gp_view_close(&v);
    return rc;
}
