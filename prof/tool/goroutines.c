/*
 * goroutines.c: `gortprof goroutines`: goroutines grouped by identical
 * stack, from a goroutine profile (pprof) or a text dump.
 *
 * Text dumps are gort's and Go's debug=2 format:
 *     goroutine 7 [chan receive, 3 minutes]:
 *     main.worker(0xc000012345)
 *     \t/src/main.go:42 +0x51
 *     created by main.main in goroutine 1
 *     \t/src/main.go:17 +0x7f
 *     (blank line)
 * A group is a distinct list of frames (function, file:line) plus the
 * creator's function; its header says how many goroutines share it, their
 * states with counts, and the first ids.  Go's older "created by F" (no
 * "in goroutine") and dumps cut mid-way parse too; lines that fit no rule
 * ("...additional frames elided...") are skipped.  Groups print biggest
 * first.
 *
 * A pprof input is recognised by the decoder (gzip or protobuf); samples
 * are merged by stack (labels split them in a profile, not here), the
 * value being the goroutine count.  Anything else that has no
 * "goroutine N [" header is rejected with one line, exit status 1.
 *
 * Rejected: grouping by state as well (the usual question is "where are
 * they stuck", and one stack in two states would split in two).
 */
#include "gortprof.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- text dumps -------------------------------------------------------- */

typedef struct gfr {
    char *func, *where; /* where: "file:line", without the +0x offset */
} gfr_t;

typedef struct gor {
    uint64_t id;
    char *state;
    gfr_t *fr;
    uint32_t nfr, cap;
    char *creator, *creator_where;
    uint64_t hash;
    uint32_t group;
} gor_t;

typedef struct group {
    uint32_t first; /* index into gors */
    uint32_t count;
} group_t;

static char *dupn(const char *s, size_t n)
{
    char *r = malloc(n + 1);
    if (r) {
        memcpy(r, s, n);
        r[n] = 0;
    }
    return r;
}

/* "main.f(0x1, 0x2)" -> "main.f"; a line not ending in ')' stays whole. */
static size_t func_len(const char *s, size_t n)
{
    if (n == 0 || s[n - 1] != ')')
        return n;
    int depth = 0;
    for (size_t i = n; i-- > 0;) {
        if (s[i] == ')')
            depth++;
        else if (s[i] == '(' && --depth == 0)
            return i;
    }
    return n;
}

static size_t where_len(const char *s, size_t n)
{
    const char *plus = NULL;
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == ' ' && s[i + 1] == '+')
            plus = s + i;
    return plus ? (size_t)(plus - s) : n;
}

static uint64_t hmix(uint64_t h, const char *s)
{
    for (; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return (h ^ 0x5bd1e995) * 0x100000001b3ull;
}

static bool same_stack(const gor_t *a, const gor_t *b)
{
    if (a->hash != b->hash || a->nfr != b->nfr)
        return false;
    for (uint32_t i = 0; i < a->nfr; i++)
        if (strcmp(a->fr[i].func, b->fr[i].func) || strcmp(a->fr[i].where, b->fr[i].where))
            return false;
    return !strcmp(a->creator ? a->creator : "", b->creator ? b->creator : "");
}

static void free_gors(gor_t *g, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < g[i].nfr; j++) {
            free(g[i].fr[j].func);
            free(g[i].fr[j].where);
        }
        free(g[i].fr);
        free(g[i].state);
        free(g[i].creator);
        free(g[i].creator_where);
    }
    free(g);
}

static int cmp_group(const void *a, const void *b)
{
    const group_t *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->first < y->first ? -1 : 1;
}

/* The goroutines of a text dump, in the order they appear. */
typedef struct gors {
    gor_t *g;
    uint32_t n, cap;
} gors_t;

/* A "goroutine N [state, ...]:" line starts a new goroutine.  Returns
 * false when line is not one, NULL in *cur on out of memory. */
static bool parse_header(gors_t *d, const char *line, size_t ll, gor_t **cur)
{
    unsigned long long id;
    int hdr = 0;
    if (!(ll > 10 && !strncmp(line, "goroutine ", 10) && line[ll - 1] == ':' &&
          sscanf(line, "goroutine %llu [%n", &id, &hdr) == 1 && hdr > 0))
        return false;
    *cur = NULL;
    if (d->n == d->cap) {
        uint32_t nc = d->cap ? d->cap * 2 : 64;
        gor_t *ng = realloc(d->g, nc * sizeof *ng);
        if (!ng)
            return true;
        d->g = ng;
        d->cap = nc;
    }
    gor_t *g = &d->g[d->n++];
    memset(g, 0, sizeof *g);
    g->id = id;
    /* State: up to the first ',' or ']' ("chan receive, 3 minutes"). */
    size_t s = (size_t)hdr, e = s;
    while (e < ll && line[e] != ',' && line[e] != ']')
        e++;
    g->state = dupn(line + s, e - s);
    *cur = g;
    return true;
}

static bool add_frame(gor_t *g, char *func, char *where)
{
    if (g->nfr == g->cap) {
        uint32_t nc = g->cap ? g->cap * 2 : 16;
        gfr_t *nf = realloc(g->fr, nc * sizeof *nf);
        if (!nf) {
            free(func);
            free(where);
            return false;
        }
        g->fr = nf;
        g->cap = nc;
    }
    g->fr[g->nfr++] = (gfr_t){func, where};
    return true;
}

/* Lines to goroutines: a header, then pairs of a function line and a
 * tab-indented file line, then perhaps "created by F in goroutine N" and
 * its file line; a blank line ends the goroutine. */
static int parse_text_dump(const char *buf, size_t len, gors_t *d)
{
    gor_t *cur = NULL;
    char *pending_func = NULL; /* a function line waiting for its file line */
    bool creator_next = false;
    int rc = 0;
    for (size_t off = 0; off < len && rc == 0;) {
        const char *line = buf + off;
        const char *nl = memchr(line, '\n', len - off);
        size_t ll = nl ? (size_t)(nl - line) : len - off;
        off += ll + (nl ? 1 : 0);
        if (ll && line[ll - 1] == '\r')
            ll--;
        if (parse_header(d, line, ll, &cur)) {
            if (!cur)
                rc = gp_fail("out of memory");
            free(pending_func);
            pending_func = NULL;
            creator_next = false;
            continue;
        }
        if (!cur)
            continue;
        if (ll == 0) {
            cur = NULL;
            continue;
        }
        if (line[0] == '\t') {
            size_t wl = where_len(line + 1, ll - 1);
            if (creator_next) {
                free(cur->creator_where);
                cur->creator_where = dupn(line + 1, wl);
                creator_next = false;
            } else if (pending_func) {
                if (!add_frame(cur, pending_func, dupn(line + 1, wl)))
                    rc = gp_fail("out of memory");
                pending_func = NULL;
            }
            continue;
        }
        free(pending_func);
        pending_func = NULL;
        if (ll > 11 && !strncmp(line, "created by ", 11)) {
            const char *f = line + 11;
            size_t fl = ll - 11;
            for (size_t i = 0; i + 14 <= fl; i++)
                if (!strncmp(f + i, " in goroutine ", 14)) {
                    fl = i;
                    break;
                }
            free(cur->creator);
            cur->creator = dupn(f, fl);
            creator_next = true;
            continue;
        }
        if (line[0] == '.' || line[0] == ' ')
            continue; /* "...additional frames elided..." */
        pending_func = dupn(line, func_len(line, ll));
    }
    free(pending_func);
    return rc;
}

/* Goroutines with the same stack and creator, and which goroutines each
 * group holds: members[gstart[k]] .. members[gstart[k + 1] - 1]. */
typedef struct groups {
    group_t *grp;
    uint32_t ng;
    uint32_t *members, *gstart;
} groups_t;

static void free_groups(groups_t *gs)
{
    free(gs->grp);
    free(gs->members);
    free(gs->gstart);
}

/* Hash each stack, then a linear probe table over groups. */
static int group_by_stack(gors_t *d, groups_t *gs)
{
    uint32_t n = d->n;
    gor_t *g = d->g;
    size_t tcap = 16;
    while (tcap < (size_t)n * 2)
        tcap *= 2;
    uint32_t *tab = calloc(tcap, sizeof *tab);
    gs->grp = malloc(n * sizeof *gs->grp);
    gs->ng = 0;
    gs->members = NULL;
    gs->gstart = NULL;
    if (!tab || !gs->grp) {
        free(tab);
        return gp_fail("out of memory");
    }
    for (uint32_t i = 0; i < n; i++) {
        gor_t *x = &g[i];
        uint64_t h = 0xcbf29ce484222325ull;
        for (uint32_t j = 0; j < x->nfr; j++)
            h = hmix(hmix(h, x->fr[j].func), x->fr[j].where);
        x->hash = hmix(h, x->creator);
        size_t k = x->hash & (tcap - 1);
        while (tab[k] && !same_stack(&g[gs->grp[tab[k] - 1].first], x))
            k = (k + 1) & (tcap - 1);
        if (!tab[k]) {
            gs->grp[gs->ng] = (group_t){i, 0};
            tab[k] = ++gs->ng;
        }
        x->group = tab[k] - 1;
        gs->grp[x->group].count++;
    }
    free(tab);
    /* Remember each goroutine's group before sorting groups. */
    gs->members = malloc(n * sizeof *gs->members);
    gs->gstart = calloc(gs->ng + 1, sizeof *gs->gstart);
    uint32_t *fill = calloc(gs->ng + 1, sizeof *fill);
    if (!gs->members || !gs->gstart || !fill) {
        free(fill);
        return gp_fail("out of memory");
    }
    for (uint32_t i = 0; i < n; i++)
        gs->gstart[g[i].group + 1]++;
    for (uint32_t i = 0; i < gs->ng; i++)
        gs->gstart[i + 1] += gs->gstart[i];
    for (uint32_t i = 0; i < n; i++)
        gs->members[gs->gstart[g[i].group] + fill[g[i].group]++] = i;
    free(fill);
    return 0;
}

static const char *state_of(const gor_t *g) { return g->state ? g->state : "?"; }

/* "N goroutines [state x3, other x2] ids 1 2 3 ...", then the stack. */
static void print_group(const gors_t *d, const groups_t *gs, const group_t *grp, FILE *out)
{
    const gor_t *g = d->g;
    uint32_t gi = g[grp->first].group, lo = gs->gstart[gi], hi = gs->gstart[gi + 1];
    fprintf(out, "\n%u goroutine%s [", grp->count, grp->count == 1 ? "" : "s");
    /* States with counts, in order of first appearance. */
    bool first = true;
    for (uint32_t m = lo; m < hi; m++) {
        const char *st = state_of(&g[gs->members[m]]);
        bool seen = false;
        for (uint32_t q = lo; q < m && !seen; q++)
            seen = !strcmp(state_of(&g[gs->members[q]]), st);
        if (seen)
            continue;
        uint32_t c = 0;
        for (uint32_t q = m; q < hi; q++)
            c += !strcmp(state_of(&g[gs->members[q]]), st);
        fprintf(out, "%s%s", first ? "" : ", ", st);
        if (c != grp->count)
            fprintf(out, " x%u", c);
        first = false;
    }
    fprintf(out, "] ids");
    for (uint32_t m = lo; m < hi && m < lo + 8; m++)
        fprintf(out, " %llu", (unsigned long long)g[gs->members[m]].id);
    if (grp->count > 8)
        fprintf(out, " ...");
    fputc('\n', out);
    const gor_t *x = &g[grp->first];
    for (uint32_t j = 0; j < x->nfr; j++)
        fprintf(out, "    %s\n        %s\n", x->fr[j].func, x->fr[j].where);
    if (x->creator)
        fprintf(out, "    created by %s\n        %s\n", x->creator, x->creator_where ? x->creator_where : "?");
}

/* A text dump (gort_dump, debug=2 profile, Go panic output): goroutines
 * grouped by stack, largest group first. */
static int text_dump(const char *path, const char *buf, size_t len, FILE *out)
{
    gors_t d = {NULL, 0, 0};
    groups_t gs = {NULL, 0, NULL, NULL};
    int rc = parse_text_dump(buf, len, &d);
    if (rc == 0 && d.n == 0)
        rc = gp_fail("%s: not a goroutine profile or dump (no \"goroutine N [state]:\" line)", path);
    if (rc == 0)
        rc = group_by_stack(&d, &gs);
    if (rc == 0) {
        group_t *sorted = malloc(gs.ng * sizeof *sorted);
        if (sorted) {
            memcpy(sorted, gs.grp, gs.ng * sizeof *sorted);
            qsort(sorted, gs.ng, sizeof *sorted, cmp_group);
        }
        fprintf(out, "%u goroutines, %u distinct stacks (text dump %s)\n", d.n, gs.ng, path);
        for (uint32_t k = 0; sorted && k < gs.ng; k++)
            print_group(&d, &gs, &sorted[k], out);
        free(sorted);
    }
    free_groups(&gs);
    free_gors(d.g, d.n);
    return rc;
}

/* ---- pprof goroutine profiles ------------------------------------------ */

typedef struct pgroup {
    size_t sample; /* first sample with this stack */
    int64_t count;
} pgroup_t;

static int cmp_pgroup(const void *a, const void *b)
{
    const pgroup_t *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->sample < y->sample ? -1 : 1;
}

static int profile_groups(const gp_view_t *v, const char *path, FILE *out)
{
    const gort__pprof_t *p = v->p;
    size_t cap = 16;
    while (cap < p->nsample * 2 + 2)
        cap *= 2;
    uint32_t *tab = calloc(cap, sizeof *tab);
    pgroup_t *grp = malloc((p->nsample + 1) * sizeof *grp);
    if (!tab || !grp) {
        free(tab);
        free(grp);
        return gp_fail("out of memory");
    }
    uint32_t ng = 0;
    int64_t total = 0;
    for (size_t i = 0; i < p->nsample; i++) {
        const gort__pprof_sample_t *s = &p->sample[i];
        if (!v->keep[i])
            continue;
        uint64_t h = 0xcbf29ce484222325ull;
        for (uint32_t j = 0; j < s->nloc; j++)
            h = (h ^ s->loc[j]) * 0x100000001b3ull;
        h ^= h >> 31;
        size_t k = h & (cap - 1);
        for (;;) {
            if (!tab[k])
                break;
            const gort__pprof_sample_t *o = &p->sample[grp[tab[k] - 1].sample];
            if (o->nloc == s->nloc && !memcmp(o->loc, s->loc, s->nloc * sizeof *s->loc))
                break;
            k = (k + 1) & (cap - 1);
        }
        if (!tab[k]) {
            grp[ng] = (pgroup_t){i, 0};
            tab[k] = ++ng;
        }
        grp[tab[k] - 1].count += s->value[v->vi];
        total += s->value[v->vi];
    }
    qsort(grp, ng, sizeof *grp, cmp_pgroup);
    char a[64];
    fprintf(out, "%s %s, %u distinct stacks (%s profile %s)\n", gp_fmt_value(v, total, a, sizeof a),
            strcmp(gp_type_name(v), "goroutine") ? gp_type_name(v) : "goroutines", ng, gp_type_name(v), path);
    if (v->filters[0])
        fprintf(out, "Active filters:\n%s", v->filters);
    for (uint32_t k = 0; k < ng; k++) {
        const gort__pprof_sample_t *s = &p->sample[grp[k].sample];
        fprintf(out, "\n%s:\n", gp_fmt_value(v, grp[k].count, a, sizeof a));
        for (uint32_t j = 0; j < s->nloc; j++) {
            uint32_t l = s->loc[j];
            for (uint32_t f = v->loc_off[l]; f < v->loc_off[l + 1]; f++) {
                const gp_node_t *nd = &v->node[v->frame[f].node];
                fprintf(out, "    %s\n", nd->name);
                if (*nd->file)
                    fprintf(out, "        %s:%lld\n", nd->file, (long long)v->frame[f].line);
            }
        }
    }
    free(tab);
    free(grp);
    return 0;
}

int gp_cmd_goroutines(const gp_opts_t *o, const char *path, FILE *out)
{
    uint8_t *buf;
    size_t len;
    int rc = gort__pprof_slurp(path, GORT__PPROF_MAX_INFLATE, &buf, &len);
    if (rc < 0)
        return gp_fail("%s: %s", path, rc == -EFBIG ? "file larger than 1 GiB" : strerror(-rc));
    /* A text dump has a "goroutine N [" line in its first 64 KiB (perhaps
     * after a panic message); gzip never starts one. */
    bool text = false;
    size_t scan = len < 65536 ? len : 65536;
    for (size_t i = 0; i + 11 < scan && !text && !(len >= 2 && buf[0] == 0x1f && buf[1] == 0x8b); i++)
        text = (i == 0 || buf[i - 1] == '\n') && !memcmp(buf + i, "goroutine ", 10) && buf[i + 10] >= '0' &&
               buf[i + 10] <= '9';
    if (text) {
        rc = text_dump(path, (const char *)buf, len, out);
        free(buf);
        return rc;
    }
    free(buf);
    gp_view_t v;
    if ((rc = gp_view_open(&v, path, o)) != 0)
        return rc;
    gp_choose_unit(&v, 1);
    rc = profile_groups(&v, path, out);
    gp_view_close(&v);
    return rc;
}
