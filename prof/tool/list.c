/*
 * list.c: `gortprof list REGEX`: the source of each matching function with
 * flat and cum per line, in the layout of pprof's list.
 *
 * Per (function node, line) the flat value (the sample's leaf frame is
 * there) and the cum value (the pair is anywhere in the stack, once per
 * sample) are summed in one pass over the kept samples.
 *
 * Finding the source: the file name in the profile, as is; then under
 * -source_path, trying the path's trailing components (a profile written on
 * another machine has its paths); then, for a function with no file name
 * or an unreadable one, the DWARF of -bin BINARY or of the profile's main
 * mapping file when it exists (dwarf.c), which also widens the range shown
 * to the function's whole line range.  Without source, the annotated line
 * numbers are still printed, with a note.
 *
 * Shown range: from the function's first line (start_line, or DWARF's) or
 * its first sampled line, to its last sampled (or DWARF) line, with five
 * lines of context (pprof's margin), at most 2,000 lines.
 */
#include "gortprof.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Context lines around the shown range, as pprof's list prints. */
#define LIST_MARGIN 5

typedef struct lstat {
    uint32_t node;
    int64_t line, flat, cum;
    uint32_t stamp;
} lstat_t;

typedef struct ltab {
    lstat_t *e;
    uint32_t n;
    uint32_t *slot;
    size_t mask;
} ltab_t;

static lstat_t *lt_get(ltab_t *t, uint32_t node, int64_t line)
{
    uint64_t h = ((uint64_t)node * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)line * 0xc2b2ae3d27d4eb4full);
    h ^= h >> 31;
    for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
        uint32_t s = t->slot[i];
        if (!s) {
            t->e[t->n] = (lstat_t){node, line, 0, 0, 0};
            t->slot[i] = ++t->n;
            return &t->e[t->n - 1];
        }
        if (t->e[s - 1].node == node && t->e[s - 1].line == line)
            return &t->e[s - 1];
    }
}

static const lstat_t *lt_find(const ltab_t *t, uint32_t node, int64_t line)
{
    uint64_t h = ((uint64_t)node * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)line * 0xc2b2ae3d27d4eb4full);
    h ^= h >> 31;
    for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
        uint32_t s = t->slot[i];
        if (!s)
            return NULL;
        if (t->e[s - 1].node == node && t->e[s - 1].line == line)
            return &t->e[s - 1];
    }
}

/* Reads a whole source file; NULL if unreadable. */
static char *read_source(const char *path, size_t *len)
{
    uint8_t *b;
    if (!path || !*path || gort__pprof_slurp(path, 64u << 20, &b, len) < 0)
        return NULL;
    return (char *)b;
}

static char *find_source(const char *file, const char *source_path, size_t *len, char *found, size_t foundlen)
{
    char *s = read_source(file, len);
    if (s) {
        snprintf(found, foundlen, "%s", file);
        return s;
    }
    if (!source_path)
        return NULL;
    for (const char *tail = file; tail && *tail;) {
        snprintf(found, foundlen, "%s/%s", source_path, *tail == '/' ? tail + 1 : tail);
        if ((s = read_source(found, len)) != NULL)
            return s;
        tail = strchr(tail + 1, '/');
    }
    return NULL;
}

/* Flat and cum per (matching function, line) over the kept samples; a
 * sample counts once per line in cum however often the line recurs. */
static void accumulate_lines(const gp_view_t *v, const bool *match, ltab_t *t)
{
    const gort__pprof_t *p = v->p;
    for (size_t i = 0; i < p->nsample; i++) {
        const gort__pprof_sample_t *s = &p->sample[i];
        if (!v->keep[i] || !s->nloc)
            continue;
        int64_t x = s->value[v->vi];
        bool leaf = true;
        for (uint32_t j = 0; j < s->nloc; j++) {
            uint32_t l = s->loc[j];
            for (uint32_t f = v->loc_off[l]; f < v->loc_off[l + 1]; f++, leaf = false) {
                const gp_frame_t *fr = &v->frame[f];
                if (!match[fr->node])
                    continue;
                lstat_t *e = lt_get(t, fr->node, fr->line);
                if (leaf)
                    e->flat += x;
                if (e->stamp != i + 1) {
                    e->stamp = (uint32_t)i + 1;
                    e->cum += x;
                }
            }
        }
    }
}

/* The binary for DWARF: -bin, else the main mapping if it exists.  Fails
 * only when -bin names one that cannot be read. */
static int open_dwarf(const gort__pprof_t *p, const gp_opts_t *o, gp_dwarf_t **dw)
{
    *dw = NULL;
    const char *bin = o->bin;
    if (!bin && p->nmapping && access(gp_str(p, p->mapping[0].file), R_OK) == 0)
        bin = gp_str(p, p->mapping[0].file);
    if (bin) {
        char err[300];
        *dw = gp_dwarf_open(bin, err, sizeof err);
        if (!*dw && o->bin)
            return gp_fail("-bin: %s", err);
    }
    return 0;
}

static int64_t smallest_value(const ltab_t *t)
{
    int64_t min = 0;
    for (uint32_t k = 0; k < t->n; k++) {
        int64_t m = llabs(t->e[k].flat ? t->e[k].flat : t->e[k].cum);
        if (m && (!min || m < min))
            min = m;
    }
    return min;
}

/* Source lines lo..hi of src with their values (a line with values but
 * no source still prints). */
static void print_source(const gp_view_t *v, const ltab_t *t, uint32_t nd, const char *src, size_t srclen,
                         int64_t lo, int64_t hi, FILE *out)
{
    char a[64], b[64];
    const char *line = src, *end = src ? src + srclen : NULL;
    for (int64_t ln = 1; ln <= hi; ln++) {
        const char *nl = line && line < end ? memchr(line, '\n', (size_t)(end - line)) : NULL;
        size_t ll = line && line < end ? (nl ? (size_t)(nl - line) : (size_t)(end - line)) : 0;
        bool have = line && line < end;
        if (ln >= lo) {
            const lstat_t *e = lt_find(t, nd, ln);
            int64_t lf = e ? e->flat : 0, lc = e ? e->cum : 0;
            if (have || e) {
                fprintf(out, "%10s %10s %6lld:", lf ? gp_fmt_value(v, lf, a, sizeof a) : ".",
                        lc ? gp_fmt_value(v, lc, b, sizeof b) : ".", (long long)ln);
                if (have)
                    fwrite(line, 1, ll, out);
                fputc('\n', out);
            }
        }
        if (have)
            line = nl ? nl + 1 : end;
    }
}

/* One "ROUTINE ===" block; false if the function has no samples. */
static bool print_routine(const gp_view_t *v, const gp_opts_t *o, const ltab_t *t, gp_dwarf_t *dw,
                          const gp_sums_t *sums, uint32_t nd, FILE *out)
{
    int64_t flat = 0, cum = 0, lo = 0, hi = 0;
    for (uint32_t k = 0; k < t->n; k++) {
        if (t->e[k].node != nd)
            continue;
        flat += t->e[k].flat;
        if (t->e[k].cum > cum)
            cum = t->e[k].cum;
        if (t->e[k].line > 0 && (!lo || t->e[k].line < lo))
            lo = t->e[k].line;
        if (t->e[k].line > hi)
            hi = t->e[k].line;
    }
    /* A function's cum is its samples, not the sum over its lines. */
    cum = sums->cum[nd];
    if (!flat && !cum)
        return false;
    const gp_node_t *n = &v->node[nd];
    const char *file = n->file;
    if (n->start_line > 0 && (!lo || n->start_line < lo))
        lo = n->start_line;
    size_t srclen = 0;
    char found[4096] = "";
    char *src = find_source(file, o->source_path, &srclen, found, sizeof found);
    const char *dfile;
    int dlo, dhi;
    if (dw && gp_dwarf_func_lines(dw, n->name, &dfile, &dlo, &dhi)) {
        if (!src) {
            src = find_source(dfile, o->source_path, &srclen, found, sizeof found);
            if (!*file)
                file = dfile;
        }
        if (!strcmp(file, dfile) || !*n->file) {
            if (dlo > 0 && (!lo || dlo < lo))
                lo = dlo;
            if (dhi > hi)
                hi = dhi;
        }
    }
    char a[64], b[64], c[64];
    fprintf(out, "ROUTINE ======================== %s in %s\n", n->name, *file ? file : "(unknown file)");
    fprintf(out, "%10s %10s (flat, cum) %s of Total\n", gp_fmt_value(v, flat, a, sizeof a),
            gp_fmt_value(v, cum, b, sizeof b), gp_fmt_pct(cum, v->total, c, sizeof c));
    if (!src)
        fprintf(out, "         .          .           (source not found: %s; try -source_path or -bin)\n",
                *file ? file : "no file name");
    lo = lo > LIST_MARGIN ? lo - LIST_MARGIN : 1;
    hi += LIST_MARGIN;
    if (hi - lo > 2000)
        hi = lo + 2000;
    print_source(v, t, nd, src, srclen, lo, hi, out);
    free(src);
    return true;
}

int gp_list_view(const gp_view_t *cv, const gp_opts_t *o, const char *pattern, FILE *out)
{
    gp_view_t *v = (gp_view_t *)cv;
    regex_t re;
    if (!gp_regcomp(&re, pattern, "list"))
        return 1;
    bool *match = calloc(v->nnode + 1, 1);
    size_t cap;
    size_t frames = gp_kept_frames(v, &cap);
    ltab_t t = {malloc(frames * sizeof(lstat_t)), 0, calloc(cap, sizeof(uint32_t)), cap - 1};
    if (!match || !t.e || !t.slot) {
        free(match);
        free(t.e);
        free(t.slot);
        regfree(&re);
        return gp_fail("out of memory");
    }
    uint32_t nmatch = 0;
    for (uint32_t i = 0; i < v->nnode; i++)
        nmatch += match[i] = regexec(&re, v->node[i].name, 0, NULL, 0) == 0;
    regfree(&re);
    int rc = 0;
    gp_dwarf_t *dw = NULL;
    gp_sums_t sums;
    if (!nmatch) {
        rc = gp_fail("no function matches \"%s\"", pattern);
    } else {
        accumulate_lines(v, match, &t);
        rc = open_dwarf(v->p, o, &dw);
        if (rc == 0) {
            gp_choose_unit(v, smallest_value(&t));
            rc = gp_sums(v, &sums);
        }
        if (rc == 0) {
            char a[64];
            fprintf(out, "Total: %s\n", gp_fmt_value(v, v->total, a, sizeof a));
            uint32_t shown = 0;
            for (uint32_t nd = 0; nd < v->nnode; nd++)
                if (match[nd])
                    shown += print_routine(v, o, &t, dw, &sums, nd, out);
            if (!shown)
                rc = gp_fail("functions match \"%s\" but have no samples", pattern);
            gp_sums_free(&sums);
        }
        gp_dwarf_close(dw);
    }
    free(match);
    free(t.e);
    free(t.slot);
    return rc;
}

int gp_cmd_list(const gp_opts_t *o, const char *pattern, const char *path, FILE *out)
{
    gp_view_t v;
    int rc = gp_view_open(&v, path, o);
    if (rc)
        return rc;
    rc = gp_list_view(&v, o, pattern, out);
    gp_view_close(&v);
    return rc;
}
