/*
 * diff.c: `gortprof diff BASE NEW`: per function, how flat and cum changed
 * from one profile to the other, biggest change first.
 *
 * Functions are matched by name alone, so profiles of two builds of a
 * program line up even though their ids, addresses and source paths differ.
 * Both profiles must report the same unit (the sample type is picked in
 * each by -sample_index, by name when one is given); deltas are shown in
 * the unit and as a share of the base total, so a regression reads as
 * "+12.5% of what base spent".  Rows whose deltas are both zero are left
 * out.
 *
 * Rejected: pprof's -diff_base, which subtracts samples and reports the
 * merged profile: its percentages are of the new total, which hides a
 * function that grew while everything else grew too.
 */
#include "gortprof.h"

#include <stdlib.h>
#include <string.h>

typedef struct row {
    const char *name, *file;
    int64_t bflat, bcum, nflat, ncum;
} row_t;

static int cmp_row(const void *a, const void *b)
{
    const row_t *x = a, *y = b;
    int64_t dx = llabs(x->nflat - x->bflat), dy = llabs(y->nflat - y->bflat);
    if (dx != dy)
        return dx > dy ? -1 : 1;
    dx = llabs(x->ncum - x->bcum);
    dy = llabs(y->ncum - y->bcum);
    if (dx != dy)
        return dx > dy ? -1 : 1;
    return strcmp(x->name, y->name);
}

static uint64_t hash2(const char *a, const char *b)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *a; a++)
        h = (h ^ (unsigned char)*a) * 0x100000001b3ull;
    h ^= 0xff;
    for (; *b; b++)
        h = (h ^ (unsigned char)*b) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static void signed_value(const gp_view_t *v, int64_t x, char *buf, size_t n)
{
    buf[0] = x > 0 ? '+' : x < 0 ? '-' : 0;
    buf[1] = 0;
    gp_fmt_value(v, x < 0 ? -x : x, buf + (x != 0), n - 1);
}

int gp_cmd_diff(const gp_opts_t *o, const char *base, const char *next, FILE *out)
{
    gp_view_t b, n;
    int rc = gp_view_open(&b, base, o);
    if (rc)
        return rc;
    if ((rc = gp_view_open(&n, next, o)) != 0) {
        gp_view_close(&b);
        return rc;
    }
    gp_sums_t bs = {0}, ns = {0};
    row_t *rows = NULL;
    uint32_t *slot = NULL;
    if (strcmp(gp_unit(&b), gp_unit(&n)) != 0) {
        rc = gp_fail("diff: %s reports %s/%s but %s reports %s/%s; pick matching types with -sample_index", base,
                     gp_type_name(&b), gp_unit(&b), next, gp_type_name(&n), gp_unit(&n));
        goto done;
    }
    if ((rc = gp_sums(&b, &bs)) != 0 || (rc = gp_sums(&n, &ns)) != 0)
        goto done;
    size_t maxrows = (size_t)b.nnode + n.nnode + 1, cap = 16;
    while (cap < maxrows * 2)
        cap *= 2;
    rows = malloc(maxrows * sizeof *rows);
    slot = calloc(cap, sizeof *slot);
    if (!rows || !slot) {
        rc = gp_fail("out of memory");
        goto done;
    }
    uint32_t nrows = 0;
    for (int side = 0; side < 2; side++) {
        const gp_view_t *v = side ? &n : &b;
        const gp_sums_t *s = side ? &ns : &bs;
        for (uint32_t i = 0; i < v->nnode; i++) {
            if (!s->flat[i] && !s->cum[i])
                continue;
            const char *name = v->node[i].name, *file = v->node[i].file;
            size_t k = hash2(name, "") & (cap - 1);
            while (slot[k] && strcmp(rows[slot[k] - 1].name, name))
                k = (k + 1) & (cap - 1);
            if (!slot[k]) {
                rows[nrows] = (row_t){name, file, 0, 0, 0, 0};
                slot[k] = ++nrows;
            }
            row_t *r = &rows[slot[k] - 1];
            if (side) {
                r->nflat += s->flat[i];
                r->ncum += s->cum[i];
            } else {
                r->bflat += s->flat[i];
                r->bcum += s->cum[i];
            }
        }
    }
    qsort(rows, nrows, sizeof *rows, cmp_row);
    int64_t min = 0;
    uint32_t shown = 0;
    for (uint32_t i = 0; i < nrows; i++) {
        row_t *r = &rows[i];
        if (r->nflat == r->bflat && r->ncum == r->bcum)
            continue;
        if (o->nodecount && shown >= (uint32_t)o->nodecount)
            break;
        rows[shown++] = *r;
        int64_t m = llabs(r->nflat - r->bflat) ? llabs(r->nflat - r->bflat) : llabs(r->ncum - r->bcum);
        if (m && (!min || m < min))
            min = m;
    }
    /* The unit of the smallest change, so every delta reads in it. */
    gp_choose_unit(&b, min);
    b.unit_min = n.unit_min = min ? min : b.total;
    char a1[64], a2[64], a3[64], a4[64], a5[64], a6[64];
    int64_t bt = b.total, nt = n.total;
    fprintf(out, "Type: %s\nBase: %s, %s total\nNew:  %s, %s total (%s, %s%.2f%% of base)\n", gp_type_name(&b),
            base, gp_fmt_value(&b, bt, a1, sizeof a1), next, gp_fmt_value(&b, nt, a2, sizeof a2),
            (signed_value(&b, nt - bt, a3, sizeof a3), a3), nt >= bt ? "+" : "",
            bt ? (double)(nt - bt) * 100 / (double)bt : 0.0);
    if (b.filters[0])
        fprintf(out, "Active filters:\n%s", b.filters);
    fprintf(out, "Showing %u functions that changed, biggest flat change first; %% is of the base total\n", shown);
    fprintf(out, "%11s %8s %11s %8s %10s %10s  %s\n", "flat delta", "flat%", "cum delta", "cum%", "base flat",
            "new flat", "name");
    for (uint32_t i = 0; i < shown; i++) {
        row_t *r = &rows[i];
        signed_value(&b, r->nflat - r->bflat, a1, sizeof a1);
        signed_value(&b, r->ncum - r->bcum, a2, sizeof a2);
        double fp = bt ? (double)(r->nflat - r->bflat) * 100 / (double)bt : 0;
        double cp = bt ? (double)(r->ncum - r->bcum) * 100 / (double)bt : 0;
        snprintf(a5, sizeof a5, "%+.2f%%", fp);
        snprintf(a6, sizeof a6, "%+.2f%%", cp);
        fprintf(out, "%11s %8s %11s %8s %10s %10s  %s\n", a1, a5, a2, a6, gp_fmt_value(&b, r->bflat, a3, sizeof a3),
                gp_fmt_value(&b, r->nflat, a4, sizeof a4), r->name);
    }
done:
    free(rows);
    free(slot);
    gp_sums_free(&bs);
    gp_sums_free(&ns);
    gp_view_close(&b);
    gp_view_close(&n);
    return rc;
}
