/*
 * view.c: a decoded profile prepared for reports: value choice, filters,
 * nodes, flattened frames, units and the pprof-style header.
 *
 * Invariants once gp_view_open returns 0: every location has
 * loc_off[i+1] - loc_off[i] >= 1 frames (a location without line info gets
 * one frame named by its address, as pprof shows "0x4b6e78"); v->total is
 * the sum of |value| over all samples and fits in int64 (the open fails
 * with "sample values overflow" otherwise), so no per-node sum can
 * overflow either.
 *
 * Performance: one pass over functions to fold them into nodes (hash on
 * name and file), one over locations to flatten frames, one over samples to
 * filter.  Reports then touch each frame of each kept sample once; a
 * 100,000-sample profile takes milliseconds, most of it in the decoder.
 *
 * Rejected: regex matching per frame per sample (focus/ignore match once per
 * node, samples test a per-node flag); a node per function id (Go's
 * profiles repeat a function under several ids when start lines differ).
 */
#include "gortprof.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int gp_fail(const char *fmt, ...)
{
    va_list ap;
    fputs("gortprof: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

const char *gp_str(const gort__pprof_t *p, int64_t i) { return i >= 0 && (uint64_t)i < p->nstr ? p->str[i] : ""; }

bool gp_regcomp(regex_t *re, const char *pat, const char *what)
{
    int rc = regcomp(re, pat, REG_EXTENDED | REG_NOSUB);
    if (rc == 0)
        return true;
    char msg[200];
    regerror(rc, re, msg, sizeof msg);
    gp_fail("bad %s regular expression \"%s\": %s", what, pat, msg);
    return false;
}

/* ---- nodes ------------------------------------------------------------- */

static uint64_t hash_str(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h * 0x9e3779b97f4a7c15ull;
}

typedef struct nodeset {
    uint32_t *slot; /* node + 1 */
    size_t mask;
} nodeset_t;

static uint32_t node_intern(gp_view_t *v, nodeset_t *ns, const char *name, const char *file, int64_t start)
{
    uint64_t h = hash_str(hash_str(0xcbf29ce484222325ull, name), file);
    for (size_t i = h & ns->mask;; i = (i + 1) & ns->mask) {
        uint32_t s = ns->slot[i];
        if (!s) {
            v->node[v->nnode] = (gp_node_t){name, file, start, false};
            ns->slot[i] = v->nnode + 1;
            return v->nnode++;
        }
        gp_node_t *n = &v->node[s - 1];
        if (strcmp(n->name, name) == 0 && strcmp(n->file, file) == 0)
            return s - 1;
    }
}

static int build_nodes(gp_view_t *v)
{
    gort__pprof_t *p = v->p;
    size_t maxnodes = (size_t)p->nfunc + p->nloc + 1;
    size_t cap = 16;
    while (cap < maxnodes * 2)
        cap *= 2;
    nodeset_t ns = {calloc(cap, sizeof(uint32_t)), cap - 1};
    uint32_t *func_node = malloc((p->nfunc + 1) * sizeof *func_node);
    v->node = malloc(maxnodes * sizeof *v->node);
    size_t nframes = 0;
    for (uint32_t i = 0; i < p->nloc; i++)
        nframes += p->loc[i].nline ? p->loc[i].nline : 1;
    v->frame = malloc((nframes + 1) * sizeof *v->frame);
    v->loc_off = malloc(((size_t)p->nloc + 1) * sizeof *v->loc_off);
    /* Addresses of locations without lines become node names. */
    char *addrnames = malloc((size_t)p->nloc * 20 + 1);
    if (!ns.slot || !func_node || !v->node || !v->frame || !v->loc_off || !addrnames || nframes >= UINT32_MAX) {
        free(ns.slot);
        free(func_node);
        free(addrnames);
        return gp_fail("out of memory");
    }
    v->addrnames = addrnames;
    for (uint32_t i = 0; i < p->nfunc; i++) {
        const gort__pprof_function_t *f = &p->func[i];
        const char *name = gp_str(p, f->name);
        if (!*name)
            name = gp_str(p, f->system_name);
        func_node[i] = node_intern(v, &ns, *name ? name : "?", gp_str(p, f->file), f->start_line);
    }
    uint32_t nf = 0;
    char *an = addrnames;
    for (uint32_t i = 0; i < p->nloc; i++) {
        const gort__pprof_location_t *l = &p->loc[i];
        v->loc_off[i] = nf;
        for (uint32_t j = 0; j < l->nline; j++) {
            uint32_t fn = l->line[j].func;
            uint32_t node;
            if (fn == GORT__PPROF_NONE) {
                sprintf(an, "0x%" PRIx64, l->address);
                node = node_intern(v, &ns, an, "", 0);
                an += strlen(an) + 1;
            } else {
                node = func_node[fn];
            }
            if (j + 1 < l->nline)
                v->node[node].inlined = true;
            v->frame[nf++] = (gp_frame_t){node, l->line[j].line};
        }
        if (!l->nline) {
            sprintf(an, "0x%" PRIx64, l->address);
            v->frame[nf++] = (gp_frame_t){node_intern(v, &ns, an, "", 0), 0};
            an += strlen(an) + 1;
        }
    }
    v->loc_off[p->nloc] = nf;
    free(ns.slot);
    free(func_node);
    return 0;
}

/* ---- value choice and filters ------------------------------------------ */

static int pick_value(gp_view_t *v, const char *want)
{
    gort__pprof_t *p = v->p;
    if (p->nsample_type == 0)
        return gp_fail("profile has no sample types");
    v->vi = (int)p->nsample_type - 1;
    if (p->default_sample_type) {
        for (uint32_t i = 0; i < p->nsample_type; i++)
            if (p->sample_type[i].type == p->default_sample_type ||
                strcmp(gp_str(p, p->sample_type[i].type), gp_str(p, p->default_sample_type)) == 0)
                v->vi = (int)i;
    }
    if (want && *want) {
        char *end;
        long n = strtol(want, &end, 10);
        if (*end == 0 && end != want) {
            if (n < 0 || n >= (long)p->nsample_type)
                return gp_fail("-sample_index=%ld: the profile has %u sample types (0..%u)", n, p->nsample_type,
                               p->nsample_type - 1);
            v->vi = (int)n;
        } else {
            int found = -1;
            for (uint32_t i = 0; i < p->nsample_type; i++)
                if (strcmp(gp_str(p, p->sample_type[i].type), want) == 0)
                    found = (int)i;
            if (found < 0) {
                char names[400] = "";
                size_t o = 0;
                for (uint32_t i = 0; i < p->nsample_type && o < sizeof names - 1; i++)
                    o += (size_t)snprintf(names + o, sizeof names - o, "%s%s", i ? ", " : "",
                                          gp_str(p, p->sample_type[i].type));
                return gp_fail("-sample_index=%s: no such sample type (have %s)", want, names);
            }
            v->vi = found;
        }
    }
    v->count_vi = -1;
    for (uint32_t i = 0; i < p->nsample_type; i++)
        if ((int)i != v->vi && strcmp(gp_str(p, p->sample_type[i].unit), "count") == 0) {
            v->count_vi = (int)i;
            break;
        }
    return 0;
}

/* -tagfocus=key=value[,value...]: string labels match a value as a regex;
 * numeric labels match "N" or "LO:HI" (either end may be empty). */
typedef struct tagf {
    const char *key;
    int nval;
    regex_t re[8];
    bool numeric[8];
    int64_t lo[8], hi[8];
} tagf_t;

static int parse_tagfocus(tagf_t *t, char *spec)
{
    char *eq = strchr(spec, '=');
    if (!eq || eq == spec)
        return gp_fail("-tagfocus=%s: want key=value", spec);
    *eq = 0;
    t->key = spec;
    t->nval = 0;
    for (char *val = strtok(eq + 1, ","); val; val = strtok(NULL, ",")) {
        if (t->nval == 8)
            return gp_fail("-tagfocus: at most 8 values");
        int i = t->nval;
        char *end;
        t->numeric[i] = false;
        long long a = strtoll(val, &end, 10);
        if (end != val && *end == 0) {
            t->numeric[i] = true;
            t->lo[i] = t->hi[i] = a;
        } else if (strchr(val, ':') && strspn(val, "-0123456789:") == strlen(val)) {
            char *colon = strchr(val, ':');
            t->numeric[i] = true;
            t->lo[i] = colon == val ? INT64_MIN : strtoll(val, NULL, 10);
            t->hi[i] = colon[1] ? strtoll(colon + 1, NULL, 10) : INT64_MAX;
        }
        if (!gp_regcomp(&t->re[i], val, "-tagfocus"))
            return 1;
        t->nval++;
    }
    if (!t->nval)
        return gp_fail("-tagfocus=%s=: no value", spec);
    return 0;
}

static bool tag_match(const gort__pprof_t *p, const gort__pprof_sample_t *s, const tagf_t *t)
{
    for (uint32_t i = 0; i < s->nlabel; i++) {
        const gort__pprof_label_t *l = &s->label[i];
        if (strcmp(gp_str(p, l->key), t->key) != 0)
            continue;
        for (int j = 0; j < t->nval; j++) {
            if (l->str) {
                if (regexec(&t->re[j], gp_str(p, l->str), 0, NULL, 0) == 0)
                    return true;
            } else if (t->numeric[j] && l->num >= t->lo[j] && l->num <= t->hi[j]) {
                return true;
            }
        }
    }
    return false;
}

static int apply_filters(gp_view_t *v, const gp_opts_t *o)
{
    gort__pprof_t *p = v->p;
    v->keep = malloc(p->nsample + 1);
    if (!v->keep)
        return gp_fail("out of memory");
    memset(v->keep, 1, p->nsample + 1);
    bool *foc = NULL, *ign = NULL;
    regex_t re;
    size_t fo = 0;
    if (o->focus) {
        if (!gp_regcomp(&re, o->focus, "-focus"))
            return 1;
        foc = calloc(v->nnode + 1, 1);
        for (uint32_t i = 0; foc && i < v->nnode; i++)
            foc[i] = regexec(&re, v->node[i].name, 0, NULL, 0) == 0 ||
                     (*v->node[i].file && regexec(&re, v->node[i].file, 0, NULL, 0) == 0);
        regfree(&re);
        fo += (size_t)snprintf(v->filters + fo, sizeof v->filters - fo, "   focus=%s\n", o->focus);
    }
    if (o->ignore) {
        if (!gp_regcomp(&re, o->ignore, "-ignore")) {
            free(foc);
            return 1;
        }
        ign = calloc(v->nnode + 1, 1);
        for (uint32_t i = 0; ign && i < v->nnode; i++)
            ign[i] = regexec(&re, v->node[i].name, 0, NULL, 0) == 0 ||
                     (*v->node[i].file && regexec(&re, v->node[i].file, 0, NULL, 0) == 0);
        regfree(&re);
        if (fo < sizeof v->filters)
            fo += (size_t)snprintf(v->filters + fo, sizeof v->filters - fo, "   ignore=%s\n", o->ignore);
    }
    tagf_t tf;
    char *spec = NULL;
    if (o->tagfocus) {
        spec = strdup(o->tagfocus);
        if (!spec || parse_tagfocus(&tf, spec) != 0) {
            free(spec);
            free(foc);
            free(ign);
            return 1;
        }
        if (fo < sizeof v->filters)
            snprintf(v->filters + fo, sizeof v->filters - fo, "   tagfocus=%s\n", o->tagfocus);
    }
    if ((o->focus && !foc) || (o->ignore && !ign)) {
        free(foc);
        free(ign);
        free(spec);
        return gp_fail("out of memory");
    }
    for (size_t i = 0; i < p->nsample; i++) {
        const gort__pprof_sample_t *s = &p->sample[i];
        bool k = true;
        if (o->tagfocus)
            k = tag_match(p, s, &tf);
        if (k && (foc || ign)) {
            bool any_focus = !foc;
            for (uint32_t j = 0; j < s->nloc && k; j++) {
                uint32_t l = s->loc[j];
                for (uint32_t f = v->loc_off[l]; f < v->loc_off[l + 1]; f++) {
                    uint32_t nd = v->frame[f].node;
                    if (ign && ign[nd]) {
                        k = false;
                        break;
                    }
                    if (foc && foc[nd])
                        any_focus = true;
                }
            }
            k = k && any_focus;
        }
        v->keep[i] = k;
    }
    if (o->tagfocus) {
        for (int j = 0; j < tf.nval; j++)
            regfree(&tf.re[j]);
    }
    free(spec);
    free(foc);
    free(ign);
    return 0;
}

int gp_view_open(gp_view_t *v, const char *path, const gp_opts_t *o)
{
    memset(v, 0, sizeof *v);
    char err[600];
    v->p = gort__pprof_read_file(path, err, sizeof err);
    if (!v->p)
        return gp_fail("%s", err);
    int rc = pick_value(v, o->sample_index);
    if (!rc)
        rc = build_nodes(v);
    if (rc) {
        gp_view_close(v);
        return rc;
    }
    const gort__pprof_t *p = v->p;
    uint64_t total = 0;
    for (size_t i = 0; i < p->nsample; i++) {
        int64_t x = p->sample[i].value[v->vi];
        uint64_t a = x < 0 ? -(uint64_t)x : (uint64_t)x;
        if (a > INT64_MAX || __builtin_add_overflow(total, a, &total) || total > INT64_MAX) {
            gp_view_close(v);
            return gp_fail("%s: sample values overflow 64 bits (sum of %s values)", path, gp_type_name(v));
        }
    }
    v->total = (int64_t)total;
    v->unit_min = v->total;
    rc = apply_filters(v, o);
    if (rc)
        gp_view_close(v);
    return rc;
}

void gp_view_close(gp_view_t *v)
{
    gort__pprof_free(v->p);
    free(v->node);
    free(v->frame);
    free(v->loc_off);
    free(v->keep);
    free(v->addrnames);
    memset(v, 0, sizeof *v);
}

/* ---- sums -------------------------------------------------------------- */

size_t gp_kept_frames(const gp_view_t *v, size_t *table_cap)
{
    const gort__pprof_t *p = v->p;
    size_t frames = 1;
    for (size_t i = 0; i < p->nsample; i++)
        if (v->keep[i])
            for (uint32_t j = 0; j < p->sample[i].nloc; j++) {
                uint32_t l = p->sample[i].loc[j];
                frames += v->loc_off[l + 1] - v->loc_off[l];
            }
    size_t cap = 16;
    while (cap < frames * 2)
        cap *= 2;
    *table_cap = cap;
    return frames;
}

int gp_sums(const gp_view_t *v, gp_sums_t *s)
{
    const gort__pprof_t *p = v->p;
    s->flat = calloc(v->nnode + 1, sizeof *s->flat);
    s->cum = calloc(v->nnode + 1, sizeof *s->cum);
    uint32_t *seen = calloc(v->nnode + 1, sizeof *seen);
    if (!s->flat || !s->cum || !seen) {
        free(seen);
        gp_sums_free(s);
        return gp_fail("out of memory");
    }
    for (size_t i = 0; i < p->nsample; i++) {
        const gort__pprof_sample_t *sm = &p->sample[i];
        if (!v->keep[i] || !sm->nloc)
            continue;
        int64_t x = sm->value[v->vi];
        uint32_t stamp = (uint32_t)i + 1;
        s->flat[v->frame[v->loc_off[sm->loc[0]]].node] += x;
        for (uint32_t j = 0; j < sm->nloc; j++) {
            uint32_t l = sm->loc[j];
            for (uint32_t f = v->loc_off[l]; f < v->loc_off[l + 1]; f++) {
                uint32_t nd = v->frame[f].node;
                if (seen[nd] != stamp) {
                    seen[nd] = stamp;
                    s->cum[nd] += x;
                }
            }
        }
    }
    free(seen);
    return 0;
}

void gp_sums_free(gp_sums_t *s)
{
    free(s->flat);
    free(s->cum);
    s->flat = s->cum = NULL;
}

static const gp_view_t *sort_v;
static const gp_sums_t *sort_s;
static bool sort_cum;

static int64_t abs64(int64_t x) { return x < 0 ? -x : x; }

static int cmp_nodes(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    int64_t kx = abs64(sort_cum ? sort_s->cum[x] : sort_s->flat[x]);
    int64_t ky = abs64(sort_cum ? sort_s->cum[y] : sort_s->flat[y]);
    if (kx != ky)
        return kx > ky ? -1 : 1;
    int c = strcmp(sort_v->node[x].name, sort_v->node[y].name);
    if (c)
        return c;
    kx = abs64(sort_s->cum[x]);
    ky = abs64(sort_s->cum[y]);
    if (kx != ky)
        return kx > ky ? -1 : 1;
    return x < y ? -1 : x > y;
}

uint32_t *gp_sorted_nodes(const gp_view_t *v, const gp_sums_t *s, bool by_cum)
{
    uint32_t *ord = malloc((v->nnode + 1) * sizeof *ord);
    if (!ord)
        return NULL;
    for (uint32_t i = 0; i < v->nnode; i++)
        ord[i] = i;
    sort_v = v;
    sort_s = s;
    sort_cum = by_cum;
    qsort(ord, v->nnode, sizeof *ord, cmp_nodes);
    return ord;
}

/* ---- formatting -------------------------------------------------------- */

const char *gp_type_name(const gp_view_t *v) { return gp_str(v->p, v->p->sample_type[v->vi].type); }
const char *gp_unit(const gp_view_t *v) { return gp_str(v->p, v->p->sample_type[v->vi].unit); }

typedef struct unit {
    const char *name;
    double scale; /* in the base unit (ns or bytes) */
} unit_t;

static const unit_t time_units[] = {{"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"hrs", 3600e9}, {NULL, 0}};
static const unit_t byte_units[] = {{"B", 1}, {"kB", 1024.0}, {"MB", 1048576.0}, {"GB", 1073741824.0},
                                    {"TB", 1099511627776.0}, {"PB", 1125899906842624.0},
                                    {NULL, 0}};

/* The unit table for the view and the base-unit size of one sample unit. */
static const unit_t *units_of(const char *unit, double *base)
{
    *base = 1;
    if (!strcmp(unit, "nanoseconds"))
        return time_units;
    if (!strcmp(unit, "microseconds"))
        return *base = 1e3, time_units;
    if (!strcmp(unit, "milliseconds"))
        return *base = 1e6, time_units;
    if (!strcmp(unit, "seconds"))
        return *base = 1e9, time_units;
    if (!strcmp(unit, "bytes"))
        return byte_units;
    return NULL;
}

static const unit_t *pick_unit(const unit_t *u, double m)
{
    const unit_t *pick = u;
    for (const unit_t *x = u; x->name; x++)
        if (m >= x->scale)
            pick = x;
    return pick;
}

static void trim_num(char *s)
{
    char *dot = strchr(s, '.');
    if (!dot)
        return;
    char *e = s + strlen(s) - 1;
    while (e > dot && *e == '0')
        *e-- = 0;
    if (e == dot)
        *e = 0;
}

char *gp_fmt_value(const gp_view_t *v, int64_t value, char *buf, size_t n)
{
    if (value == 0) {
        snprintf(buf, n, "0");
        return buf;
    }
    double base;
    const unit_t *u = units_of(gp_unit(v), &base);
    if (!u) {
        snprintf(buf, n, "%" PRId64, value);
        return buf;
    }
    const unit_t *pick = pick_unit(u, (double)v->unit_min * base);
    char num[64];
    snprintf(num, sizeof num, "%.2f", (double)value * base / pick->scale);
    size_t l = strlen(num);
    if (l > 3 && !strcmp(num + l - 3, ".00"))
        num[l - 3] = 0;
    if (!strcmp(num, "0") || !strcmp(num, "-0"))
        snprintf(buf, n, "0");
    else
        snprintf(buf, n, "%s%s", num, pick->name);
    return buf;
}

void gp_choose_unit(gp_view_t *v, int64_t min)
{
    double base;
    const unit_t *u = units_of(gp_unit(v), &base);
    if (!min)
        min = v->total;
    v->unit_min = min;
    if (!u)
        return;
    /* pprof's rule: the unit of the smallest value shown, unless the total
     * would want another one and the smallest is under 1% of it; then the
     * unit of 100x the smallest, so small values read as 0.01 and up. */
    if (pick_unit(u, (double)min * base) != pick_unit(u, (double)v->total * base) && min < v->total / 100)
        v->unit_min = min * 100;
}

char *gp_fmt_pct(int64_t value, int64_t total, char *buf, size_t n)
{
    double r = total ? (double)abs64(value) / (double)abs64(total) * 100 : 0;
    if (r >= 99.95 && r <= 100.05)
        snprintf(buf, n, "  100%%");
    else if (r >= 1.0)
        snprintf(buf, n, "%5.2f%%", r);
    else
        snprintf(buf, n, "%5.2g%%", r);
    return buf;
}

static void fmt_duration(int64_t ns, char *buf, size_t n)
{
    double d = (double)ns;
    if (d >= 1e9)
        snprintf(buf, n, "%.2f", d / 1e9);
    else if (d >= 1e6)
        snprintf(buf, n, "%.2f", d / 1e6);
    else
        snprintf(buf, n, "%.0f", d);
    trim_num(buf);
    strcat(buf, d >= 1e9 ? "s" : d >= 1e6 ? "ms" : "ns");
}

void gp_print_header(FILE *out, const gp_view_t *v)
{
    const gort__pprof_t *p = v->p;
    if (p->nmapping && p->mapping[0].file) {
        const char *f = gp_str(p, p->mapping[0].file);
        const char *slash = strrchr(f, '/');
        fprintf(out, "File: %s\n", slash ? slash + 1 : f);
        if (p->mapping[0].build_id && *gp_str(p, p->mapping[0].build_id))
            fprintf(out, "Build ID: %s\n", gp_str(p, p->mapping[0].build_id));
    }
    fprintf(out, "Type: %s\n", gp_type_name(v));
    if (p->time_nanos) {
        time_t t = (time_t)(p->time_nanos / 1000000000);
        struct tm tm;
        gmtime_r(&t, &tm);
        static const char *mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        int h12 = tm.tm_hour % 12 ? tm.tm_hour % 12 : 12;
        /* pprof: "Nov 23, 2026 at 9:32am (UTC)" */
        fprintf(out, "Time: %s %d, %d at %d:%02d%s (UTC)\n", mon[tm.tm_mon], tm.tm_mday, tm.tm_year + 1900, h12,
                tm.tm_min, tm.tm_hour < 12 ? "am" : "pm");
    }
    if (p->duration_nanos) {
        char d[64], tv[64];
        fmt_duration(p->duration_nanos, d, sizeof d);
        double base;
        char ratio[64] = "";
        if (units_of(gp_unit(v), &base) == time_units) {
            char pct[32];
            gp_fmt_pct((int64_t)((double)v->total * base), p->duration_nanos, pct, sizeof pct);
            snprintf(ratio, sizeof ratio, "(%s)", pct);
        }
        /* pprof prints the ratio after a space even when it is empty. */
        fprintf(out, "Duration: %s, Total samples = %s %s\n", d, gp_fmt_value(v, v->total, tv, sizeof tv), ratio);
    }
    for (uint32_t i = 0; i < p->ncomment; i++)
        fprintf(out, "Comment: %s\n", gp_str(p, p->comment[i]));
    if (v->filters[0])
        fprintf(out, "Active filters:\n%s", v->filters);
}

void gp_xml_escape(FILE *out, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '&': fputs("&amp;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&#39;", out); break;
        default:
            if (c < 0x20 && c != '\t')
                fprintf(out, "&#xfffd;");
            else
                fputc(c, out);
        }
    }
}
