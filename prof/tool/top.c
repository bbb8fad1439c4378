/*
 * top.c: `gortprof top`, the flat/cumulative table, in the layout of
 * `go tool pprof -top` so the two can be read (and tested) side by side:
 * header lines, then flat, flat%, sum%, cum, cum%, name.
 *
 * Nodes whose |cum| is under -nodefraction (default 0.005, as pprof) of
 * the total are dropped and counted in a "Dropped N nodes" line; -n keeps
 * the first N rows.  Percentages are of the total before filters, as
 * pprof's are.
 */
#include "gortprof.h"

#include <stdlib.h>

typedef struct rows {
    uint32_t *ord;
    uint32_t n, shown, dropped;
    int64_t shown_flat, cutoff;
} rows_t;

static int pick_rows(const gp_view_t *v, const gp_sums_t *s, const gp_opts_t *o, rows_t *r)
{
    r->ord = gp_sorted_nodes(v, s, o->cum);
    if (!r->ord)
        return gp_fail("out of memory");
    r->cutoff = (int64_t)((double)v->total * o->nodefraction);
    r->n = r->dropped = r->shown = 0;
    r->shown_flat = 0;
    for (uint32_t i = 0; i < v->nnode; i++) {
        uint32_t nd = r->ord[i];
        if (s->cum[nd] == 0 && s->flat[nd] == 0)
            continue;
        if (llabs(s->cum[nd]) < r->cutoff) {
            r->dropped++;
            continue;
        }
        r->ord[r->n++] = nd;
    }
    r->shown = o->nodecount > 0 && (uint32_t)o->nodecount < r->n ? (uint32_t)o->nodecount : r->n;
    int64_t min = 0;
    for (uint32_t i = 0; i < r->shown; i++) {
        uint32_t nd = r->ord[i];
        r->shown_flat += s->flat[nd];
        int64_t m = llabs(s->flat[nd] ? s->flat[nd] : s->cum[nd]);
        if (m && (!min || m < min))
            min = m;
    }
    gp_choose_unit((gp_view_t *)v, min);
    return 0;
}

int gp_cmd_top(const gp_opts_t *o, const char *path, FILE *out)
{
    gp_view_t v;
    int rc = gp_view_open(&v, path, o);
    if (rc)
        return rc;
    gp_sums_t s;
    rows_t r;
    if ((rc = gp_sums(&v, &s)) != 0) {
        gp_view_close(&v);
        return rc;
    }
    if ((rc = pick_rows(&v, &s, o, &r)) != 0) {
        gp_sums_free(&s);
        gp_view_close(&v);
        return rc;
    }
    char a[64], b[64], c[64], d[64], e[64];
    gp_print_header(out, &v);
    fprintf(out, "Showing nodes accounting for %s, %s of %s total\n", gp_fmt_value(&v, r.shown_flat, a, sizeof a),
            gp_fmt_pct(r.shown_flat, v.total, b, sizeof b) + (r.shown_flat == v.total ? 2 : 0),
            gp_fmt_value(&v, v.total, c, sizeof c));
    if (r.dropped)
        fprintf(out, "Dropped %u nodes (cum <= %s)\n", r.dropped, gp_fmt_value(&v, r.cutoff, a, sizeof a));
    if (r.shown < r.n)
        fprintf(out, "Showing top %u nodes out of %u\n", r.shown, r.n);
    fprintf(out, "      flat  flat%%   sum%%        cum   cum%%\n");
    int64_t sum = 0;
    for (uint32_t i = 0; i < r.shown; i++) {
        uint32_t nd = r.ord[i];
        sum += s.flat[nd];
        fprintf(out, "%10s %s %s %10s %s  %s%s\n", gp_fmt_value(&v, s.flat[nd], a, sizeof a),
                gp_fmt_pct(s.flat[nd], v.total, b, sizeof b), gp_fmt_pct(sum, v.total, c, sizeof c),
                gp_fmt_value(&v, s.cum[nd], d, sizeof d), gp_fmt_pct(s.cum[nd], v.total, e, sizeof e),
                v.node[nd].name, v.node[nd].inlined ? " (inline)" : "");
    }
    free(r.ord);
    gp_sums_free(&s);
    gp_view_close(&v);
    return 0;
}

void gp_top_html(const gp_view_t *v, FILE *out)
{
    gp_sums_t s;
    rows_t r;
    gp_opts_t o = {.nodefraction = 0, .nodecount = 0};
    if (gp_sums(v, &s) != 0)
        return;
    if (pick_rows(v, &s, &o, &r) != 0) {
        gp_sums_free(&s);
        return;
    }
    char a[64], b[64], c[64], d[64], e[64];
    fprintf(out, "<table id=\"top\"><thead><tr><th>flat</th><th>flat%%</th><th>sum%%</th><th>cum</th>"
                 "<th>cum%%</th><th>name</th></tr></thead><tbody>\n");
    int64_t sum = 0;
    for (uint32_t i = 0; i < r.shown; i++) {
        uint32_t nd = r.ord[i];
        sum += s.flat[nd];
        fprintf(out, "<tr class=\"fn\" data-name=\"");
        gp_xml_escape(out, v->node[nd].name);
        fprintf(out, "\"><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td><a href=\"/source?n=",
                gp_fmt_value(v, s.flat[nd], a, sizeof a), gp_fmt_pct(s.flat[nd], v->total, b, sizeof b),
                gp_fmt_pct(sum, v->total, c, sizeof c), gp_fmt_value(v, s.cum[nd], d, sizeof d),
                gp_fmt_pct(s.cum[nd], v->total, e, sizeof e));
        for (const char *q = v->node[nd].name; *q; q++) {
            unsigned char ch = (unsigned char)*q;
            if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                ch == '.')
                fputc(ch, out);
            else
                fprintf(out, "%%%02X", ch);
        }
        fprintf(out, "\">");
        gp_xml_escape(out, v->node[nd].name);
        fprintf(out, "</a></td></tr>\n");
    }
    fprintf(out, "</tbody></table>\n");
    free(r.ord);
    gp_sums_free(&s);
}
