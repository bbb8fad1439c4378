/*
 * pprof_decode.c: profile.proto bytes (gzipped or not) -> profile model,
 * for input nobody vouches for.
 *
 * The decoder takes bytes from anywhere (a file found on a server, a fuzzer)
 * and must end in a model or a one-line error, in time and memory bounded by
 * the input.  How each hazard is met:
 *   - truncation, lengths past the end: every read checks the bytes left in
 *     its own message, so a nested length can never reach past its parent;
 *   - varints of more than 10 bytes (or a 10th byte above 1) are rejected;
 *   - the deprecated group wire types and the undefined ones 6, 7 are
 *     rejected: pprof never writes them, and skipping a group needs a depth
 *     count that hostile input could blow up;
 *   - allocation bombs: nothing is sized from a count in the input.  A first
 *     pass counts each repeated field by walking it, then arrays are sized
 *     exactly; every element counted took at least one input byte.  On top,
 *     the model's arena has a budget of 64x the decoded bytes plus 1 MiB;
 *   - gzip bombs: inflation stops at GORT__PPROF_MAX_INFLATE (1 GiB) and at
 *     max(64 MiB, 64x the compressed size);
 *   - dangling references (string, location, function, mapping ids, sample
 *     values that do not match the sample types) are errors; once decoded,
 *     references are indexes, so readers need no checks;
 *   - nesting is fixed by the schema (Profile > Sample > Label, Profile >
 *     Location > Line), so there is no recursion to make deep; and a model
 *     has no cycles: samples point to locations, locations to functions.
 *
 * The passes over the top-level fields: count; strings; sample types,
 * mappings, functions and scalars (string indexes checked); locations
 * (mapping and function ids resolved); samples (location ids resolved).
 * Each pass skips other fields by their length, which is cheap next to the
 * work.
 *
 * Rejected: decoding straight into growable arrays (doubling lets a short
 * hostile input reserve twice what it uses, and a second pass is cheap);
 * accepting unknown wire types by guessing (errors beat silent garbage).
 */
#include "pprof_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

typedef struct ctx {
    char *err;
    size_t errlen;
    bool failed;
    gort__pprof_t *p;
} ctx_t;

__attribute__((format(printf, 2, 3))) static bool fail(ctx_t *c, const char *fmt, ...)
{
    if (c->failed)
        return false;
    c->failed = true;
    if (c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
    return false;
}

static bool oom(ctx_t *c)
{
    if (c->p && c->p->priv->over_budget)
        return fail(c, "profile needs more memory than its size allows (limit %zu bytes)", c->p->priv->budget);
    return fail(c, "out of memory");
}

/* Writes at most max bytes of s as printable ASCII (others as \xNN), so
 * that an error message stays one line whatever the input holds. */
static const char *printable(char *out, size_t outlen, const char *s, size_t n, size_t max)
{
    size_t o = 0;
    for (size_t i = 0; i < n && i < max && o + 5 < outlen; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\')
            out[o++] = (char)ch;
        else
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", ch);
    }
    out[o] = 0;
    return out;
}

/* ---- wire -------------------------------------------------------------- */

typedef struct rd {
    const uint8_t *p, *end;
} rd_t;

typedef struct field {
    unsigned num, wt;
    uint64_t v;          /* VARINT, I64, I32 */
    const uint8_t *data; /* LEN */
    size_t len;
} field_t;

static const char *wt_name(unsigned wt)
{
    static const char *n[] = {"varint", "fixed64", "length-delimited", "start-group", "end-group", "fixed32"};
    return wt < 6 ? n[wt] : "invalid";
}

static bool rd_varint(ctx_t *c, rd_t *r, uint64_t *v, const char *what)
{
    uint64_t x = 0;
    for (unsigned i = 0; i < 10; i++) {
        if (r->p >= r->end)
            return fail(c, "%s: truncated varint (file cut short?)", what);
        uint8_t b = *r->p++;
        if (i == 9 && b > 1)
            return fail(c, "%s: varint overflows 64 bits", what);
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return true;
        }
    }
    return fail(c, "%s: varint longer than 10 bytes", what);
}

/* Reads the next field of the message in r: 1 a field, 0 the end, -1 an
 * error. */
static int next_field(ctx_t *c, rd_t *r, field_t *f, const char *msg)
{
    if (r->p >= r->end)
        return 0;
    uint64_t key;
    if (!rd_varint(c, r, &key, msg))
        return -1;
    f->num = (unsigned)(key >> 3);
    f->wt = key & 7;
    if ((key >> 3) == 0 || (key >> 3) > 536870911u)
        return fail(c, "%s: invalid field number %llu", msg, (unsigned long long)(key >> 3)), -1;
    switch (f->wt) {
    case PB_VARINT:
        return rd_varint(c, r, &f->v, msg) ? 1 : -1;
    case PB_I64:
    case PB_I32: {
        size_t n = f->wt == PB_I64 ? 8 : 4;
        if ((size_t)(r->end - r->p) < n)
            return fail(c, "%s: field %u: truncated (file cut short?)", msg, f->num), -1;
        f->v = 0;
        memcpy(&f->v, r->p, n); /* little-endian hosts only, as the rest of gort */
        r->p += n;
        return 1;
    }
    case PB_LEN: {
        uint64_t len;
        if (!rd_varint(c, r, &len, msg))
            return -1;
        if (len > (uint64_t)(r->end - r->p))
            return fail(c, "%s: field %u: length %llu runs past the end of its message (%zu bytes left)", msg,
                        f->num, (unsigned long long)len, (size_t)(r->end - r->p)),
                   -1;
        f->data = r->p;
        f->len = (size_t)len;
        r->p += len;
        return 1;
    }
    default:
        return fail(c, "%s: field %u: unsupported wire type %u (%s)", msg, f->num, f->wt, wt_name(f->wt)), -1;
    }
}

static bool want_wt(ctx_t *c, const field_t *f, unsigned wt, const char *msg)
{
    if (f->wt == wt)
        return true;
    return fail(c, "%s: field %u has wire type %s, want %s", msg, f->num, wt_name(f->wt), wt_name(wt));
}

/* Repeated varint fields come packed (LEN) or one per field (VARINT).
 * Counts the values in f; -1 on error. */
static int64_t count_varints(ctx_t *c, const field_t *f, const char *msg)
{
    if (f->wt == PB_VARINT)
        return 1;
    if (f->wt != PB_LEN)
        return want_wt(c, f, PB_LEN, msg), -1;
    int64_t n = 0;
    for (size_t i = 0; i < f->len; i++)
        if (!(f->data[i] & 0x80))
            n++;
    if (f->len && (f->data[f->len - 1] & 0x80))
        return fail(c, "%s: field %u: truncated packed varint", msg, f->num), -1;
    return n;
}

/* Calls back per value of a repeated varint field counted before. */
static bool each_varint(ctx_t *c, const field_t *f, const char *msg, uint64_t *out, size_t *n)
{
    if (f->wt == PB_VARINT) {
        out[(*n)++] = f->v;
        return true;
    }
    rd_t r = {f->data, f->data + f->len};
    while (r.p < r.end) {
        uint64_t v;
        if (!rd_varint(c, &r, &v, msg))
            return false;
        out[(*n)++] = v;
    }
    return true;
}

static bool chk_str(ctx_t *c, int64_t v, const char *what, size_t idx)
{
    if (v >= 0 && (uint64_t)v < c->p->nstr)
        return true;
    return fail(c, "%s %zu: string index %lld out of range (string table has %u entries)", what, idx,
                (long long)v, c->p->nstr);
}

/* ---- id maps ----------------------------------------------------------- */

typedef struct idmap {
    uint64_t *id;
    uint32_t *idx;
    size_t mask;
} idmap_t;

static uint64_t hash_id(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    return x ^ (x >> 33);
}

static bool idmap_init(ctx_t *c, idmap_t *m, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    m->id = gort__pprof_calloc(c->p, cap, sizeof *m->id);
    m->idx = gort__pprof_calloc(c->p, cap, sizeof *m->idx);
    m->mask = cap - 1;
    return (m->id && m->idx) || oom(c);
}

/* Adds id -> idx; false if id is 0 or already there. */
static bool idmap_put(idmap_t *m, uint64_t id, uint32_t idx)
{
    if (id == 0)
        return false;
    for (size_t i = hash_id(id) & m->mask;; i = (i + 1) & m->mask) {
        if (m->id[i] == id)
            return false;
        if (m->id[i] == 0) {
            m->id[i] = id;
            m->idx[i] = idx;
            return true;
        }
    }
}

static uint32_t idmap_get(const idmap_t *m, uint64_t id)
{
    if (id == 0)
        return GORT__PPROF_NONE;
    for (size_t i = hash_id(id) & m->mask;; i = (i + 1) & m->mask) {
        if (m->id[i] == id)
            return m->idx[i];
        if (m->id[i] == 0)
            return GORT__PPROF_NONE;
    }
}

/* ---- messages ---------------------------------------------------------- */

static bool dec_vtype(ctx_t *c, const field_t *in, gort__pprof_vtype_t *vt, const char *msg)
{
    rd_t r = {in->data, in->data + in->len};
    field_t f;
    int k;
    *vt = (gort__pprof_vtype_t){0, 0};
    while ((k = next_field(c, &r, &f, msg)) > 0) {
        if (f.num == 1 || f.num == 2) {
            if (!want_wt(c, &f, PB_VARINT, msg))
                return false;
            if (f.num == 1)
                vt->type = (int64_t)f.v;
            else
                vt->unit = (int64_t)f.v;
        }
    }
    if (k < 0)
        return false;
    return chk_str(c, vt->type, msg, 0) && chk_str(c, vt->unit, msg, 0);
}

static bool dec_mapping(ctx_t *c, const field_t *in, gort__pprof_mapping_t *m, size_t idx)
{
    rd_t r = {in->data, in->data + in->len};
    field_t f;
    int k;
    memset(m, 0, sizeof *m);
    while ((k = next_field(c, &r, &f, "mapping")) > 0) {
        if (f.num > 10)
            continue;
        if (!want_wt(c, &f, PB_VARINT, "mapping"))
            return false;
        switch (f.num) {
        case 1: m->id = f.v; break;
        case 2: m->start = f.v; break;
        case 3: m->limit = f.v; break;
        case 4: m->offset = f.v; break;
        case 5: m->file = (int64_t)f.v; break;
        case 6: m->build_id = (int64_t)f.v; break;
        case 7: m->has_functions = f.v != 0; break;
        case 8: m->has_filenames = f.v != 0; break;
        case 9: m->has_line_numbers = f.v != 0; break;
        case 10: m->has_inline_frames = f.v != 0; break;
        }
    }
    return k == 0 && chk_str(c, m->file, "mapping", idx) && chk_str(c, m->build_id, "mapping", idx);
}

static bool dec_function(ctx_t *c, const field_t *in, gort__pprof_function_t *fn, size_t idx)
{
    rd_t r = {in->data, in->data + in->len};
    field_t f;
    int k;
    memset(fn, 0, sizeof *fn);
    while ((k = next_field(c, &r, &f, "function")) > 0) {
        if (f.num > 5)
            continue;
        if (!want_wt(c, &f, PB_VARINT, "function"))
            return false;
        switch (f.num) {
        case 1: fn->id = f.v; break;
        case 2: fn->name = (int64_t)f.v; break;
        case 3: fn->system_name = (int64_t)f.v; break;
        case 4: fn->file = (int64_t)f.v; break;
        case 5: fn->start_line = (int64_t)f.v; break;
        }
    }
    return k == 0 && chk_str(c, fn->name, "function", idx) && chk_str(c, fn->system_name, "function", idx) &&
           chk_str(c, fn->file, "function", idx);
}

static bool dec_location(ctx_t *c, const field_t *in, gort__pprof_location_t *l, size_t idx,
                         const idmap_t *maps, const idmap_t *funcs)
{
    rd_t r = {in->data, in->data + in->len};
    field_t f;
    int k;
    uint32_t nline = 0;
    memset(l, 0, sizeof *l);
    l->mapping = GORT__PPROF_NONE;
    while ((k = next_field(c, &r, &f, "location")) > 0) {
        if (f.num == 4) {
            if (!want_wt(c, &f, PB_LEN, "location"))
                return false;
            nline++;
        } else if (f.num >= 1 && f.num <= 5) {
            if (!want_wt(c, &f, PB_VARINT, "location"))
                return false;
            if (f.num == 1)
                l->id = f.v;
            else if (f.num == 2 && f.v) {
                l->mapping = idmap_get(maps, f.v);
                if (l->mapping == GORT__PPROF_NONE)
                    return fail(c, "location %zu: mapping id %llu not found", idx, (unsigned long long)f.v);
            } else if (f.num == 3)
                l->address = f.v;
            else if (f.num == 5)
                l->folded = f.v != 0;
        }
    }
    if (k < 0)
        return false;
    if (!nline)
        return true;
    l->line = gort__pprof_calloc(c->p, nline, sizeof *l->line);
    if (!l->line)
        return oom(c);
    r = (rd_t){in->data, in->data + in->len};
    while (next_field(c, &r, &f, "location") > 0) {
        if (f.num != 4)
            continue;
        gort__pprof_line_t *ln = &l->line[l->nline++];
        ln->func = GORT__PPROF_NONE;
        rd_t lr = {f.data, f.data + f.len};
        field_t g;
        while ((k = next_field(c, &lr, &g, "line")) > 0) {
            if (g.num > 3)
                continue;
            if (!want_wt(c, &g, PB_VARINT, "line"))
                return false;
            if (g.num == 1 && g.v) {
                ln->func = idmap_get(funcs, g.v);
                if (ln->func == GORT__PPROF_NONE)
                    return fail(c, "location %zu: function id %llu not found", idx, (unsigned long long)g.v);
            } else if (g.num == 2)
                ln->line = (int64_t)g.v;
            else if (g.num == 3)
                ln->column = (int64_t)g.v;
        }
        if (k < 0)
            return false;
    }
    return true;
}

static bool dec_label(ctx_t *c, const field_t *in, gort__pprof_label_t *lb, size_t idx)
{
    rd_t r = {in->data, in->data + in->len};
    field_t f;
    int k;
    memset(lb, 0, sizeof *lb);
    while ((k = next_field(c, &r, &f, "label")) > 0) {
        if (f.num > 4)
            continue;
        if (!want_wt(c, &f, PB_VARINT, "label"))
            return false;
        switch (f.num) {
        case 1: lb->key = (int64_t)f.v; break;
        case 2: lb->str = (int64_t)f.v; break;
        case 3: lb->num = (int64_t)f.v; break;
        case 4: lb->num_unit = (int64_t)f.v; break;
        }
    }
    return k == 0 && chk_str(c, lb->key, "sample label of sample", idx) &&
           chk_str(c, lb->str, "sample label of sample", idx) &&
           chk_str(c, lb->num_unit, "sample label of sample", idx);
}

static bool dec_sample(ctx_t *c, const field_t *in, gort__pprof_sample_t *s, size_t idx, const idmap_t *locs,
                       uint64_t *scratch, size_t scratch_n)
{
    rd_t r = {in->data, in->data + in->len};
    field_t f;
    int k;
    size_t nloc = 0, nval = 0, nlabel = 0;
    memset(s, 0, sizeof *s);
    while ((k = next_field(c, &r, &f, "sample")) > 0) {
        if (f.num == 1 || f.num == 2) {
            int64_t n = count_varints(c, &f, "sample");
            if (n < 0)
                return false;
            *(f.num == 1 ? &nloc : &nval) += (size_t)n;
        } else if (f.num == 3) {
            if (!want_wt(c, &f, PB_LEN, "sample"))
                return false;
            nlabel++;
        }
    }
    if (k < 0)
        return false;
    gort__pprof_t *p = c->p;
    if (nval != p->nsample_type)
        return fail(c, "sample %zu has %zu values, the profile has %u sample types", idx, nval, p->nsample_type);
    if (nloc > UINT32_MAX || nlabel > UINT32_MAX || nloc > scratch_n || nval > scratch_n)
        return fail(c, "sample %zu: too many locations", idx);
    s->loc = gort__pprof_alloc(p, nloc * sizeof *s->loc);
    s->value = gort__pprof_alloc(p, nval * sizeof *s->value);
    s->label = gort__pprof_calloc(p, nlabel, sizeof *s->label);
    if (!s->loc || !s->value || !s->label)
        return oom(c);
    size_t nl = 0, nv = 0;
    r = (rd_t){in->data, in->data + in->len};
    while (next_field(c, &r, &f, "sample") > 0) {
        if (f.num == 1) {
            size_t m = 0;
            if (!each_varint(c, &f, "sample", scratch, &m))
                return false;
            for (size_t i = 0; i < m; i++) {
                uint32_t li = idmap_get(locs, scratch[i]);
                if (li == GORT__PPROF_NONE)
                    return fail(c, "sample %zu: location id %llu not found", idx, (unsigned long long)scratch[i]);
                s->loc[nl + i] = li;
            }
            nl += m;
        } else if (f.num == 2) {
            size_t m = 0;
            if (!each_varint(c, &f, "sample", scratch, &m))
                return false;
            for (size_t i = 0; i < m; i++)
                s->value[nv + i] = (int64_t)scratch[i];
            nv += m;
        } else if (f.num == 3) {
            if (!dec_label(c, &f, &s->label[s->nlabel], idx))
                return false;
            s->nlabel++;
        }
    }
    if (c->failed)
        return false;
    s->nloc = (uint32_t)nloc;
    return true;
}

/* ---- the profile ------------------------------------------------------- */

enum { F_SAMPLE_TYPE = 1, F_SAMPLE, F_MAPPING, F_LOCATION, F_FUNCTION, F_STRING, F_DROP, F_KEEP, F_TIME,
       F_DURATION, F_PERIOD_TYPE, F_PERIOD, F_COMMENT, F_DEFAULT_SAMPLE_TYPE };

/* The wire type each known top-level field must have (comment may be
 * packed or not). */
static bool top_wt_ok(ctx_t *c, const field_t *f)
{
    switch (f->num) {
    case F_SAMPLE_TYPE: case F_SAMPLE: case F_MAPPING: case F_LOCATION: case F_FUNCTION: case F_STRING:
    case F_PERIOD_TYPE:
        return want_wt(c, f, PB_LEN, "profile");
    case F_DROP: case F_KEEP: case F_TIME: case F_DURATION: case F_PERIOD: case F_DEFAULT_SAMPLE_TYPE:
        return want_wt(c, f, PB_VARINT, "profile");
    default:
        return true;
    }
}

/* A file that is neither gzip nor protobuf usually fails on its first
 * key; say so rather than naming a field. */
static bool first_key_ok(ctx_t *c, const uint8_t *buf, size_t len)
{
    rd_t r0 = {buf, buf + len};
    uint64_t key;
    ctx_t quiet = {0};
    if (!rd_varint(&quiet, &r0, &key, "") || (key & 7) > 5 || (key & 7) == 3 || (key & 7) == 4 || key >> 3 == 0)
        return fail(c, "not a profile: neither gzip nor profile.proto (starts with %02x %02x %02x %02x)", buf[0],
                    len > 1 ? buf[1] : 0, len > 2 ? buf[2] : 0, len > 3 ? buf[3] : 0);
    return true;
}

/* What the first pass counts, to size every table once. */
typedef struct counts {
    size_t n[16]; /* top-level fields by number */
    size_t ncomment, maxpacked;
} counts_t;

/* Pass 1: count the top-level fields and check their wire types. */
static bool count_fields(ctx_t *c, rd_t all, counts_t *n)
{
    rd_t r;
    field_t f;
    int k;
    memset(n, 0, sizeof *n);
    for (r = all; (k = next_field(c, &r, &f, "profile")) > 0;) {
        if (!top_wt_ok(c, &f))
            return false;
        if (f.num == F_COMMENT) {
            int64_t m = count_varints(c, &f, "profile comment");
            if (m < 0)
                return false;
            n->ncomment += (size_t)m;
        } else if (f.num < 16) {
            n->n[f.num]++;
        }
        if (f.num == F_SAMPLE && f.len > n->maxpacked)
            n->maxpacked = f.len;
    }
    if (k < 0)
        return false;
    if (n->n[F_STRING] == 0)
        return fail(c, "string table is empty (string_table[0] must be \"\")");
    if (n->n[F_STRING] >= UINT32_MAX || n->n[F_MAPPING] >= UINT32_MAX || n->n[F_LOCATION] >= UINT32_MAX ||
        n->n[F_FUNCTION] >= UINT32_MAX || n->n[F_SAMPLE_TYPE] >= UINT32_MAX || n->ncomment >= UINT32_MAX)
        return fail(c, "profile has too many entries");
    return true;
}

/* Every table at its counted size, from p's arena. */
static bool alloc_tables(ctx_t *c, gort__pprof_t *p, const counts_t *n)
{
    p->str = gort__pprof_alloc(p, n->n[F_STRING] * sizeof *p->str);
    p->str_len = gort__pprof_alloc(p, n->n[F_STRING] * sizeof *p->str_len);
    p->comment = gort__pprof_calloc(p, n->ncomment, sizeof *p->comment);
    p->sample_type = gort__pprof_calloc(p, n->n[F_SAMPLE_TYPE], sizeof *p->sample_type);
    p->mapping = gort__pprof_calloc(p, n->n[F_MAPPING], sizeof *p->mapping);
    p->func = gort__pprof_calloc(p, n->n[F_FUNCTION], sizeof *p->func);
    p->loc = gort__pprof_calloc(p, n->n[F_LOCATION], sizeof *p->loc);
    p->sample = gort__pprof_calloc(p, n->n[F_SAMPLE], sizeof *p->sample);
    return (p->str && p->str_len && p->comment && p->sample_type && p->mapping && p->func && p->loc && p->sample) ||
           oom(c);
}

/* Pass 2: strings and comments. */
static bool dec_strings(ctx_t *c, gort__pprof_t *p, rd_t all)
{
    rd_t r;
    field_t f;
    uint64_t *cm = (uint64_t *)p->comment;
    size_t ncm = 0;
    for (r = all; next_field(c, &r, &f, "profile") > 0;) {
        if (f.num == F_STRING) {
            if (f.len >= UINT32_MAX)
                return fail(c, "string %u too long", p->nstr);
            char *s = gort__pprof_alloc(p, f.len + 1);
            if (!s)
                return oom(c);
            memcpy(s, f.data, f.len);
            s[f.len] = 0;
            p->str[p->nstr] = s;
            p->str_len[p->nstr++] = (uint32_t)f.len;
        } else if (f.num == F_COMMENT) {
            if (!each_varint(c, &f, "profile comment", cm, &ncm))
                return false;
        }
    }
    if (p->str_len[0] != 0) {
        char q[200];
        return fail(c, "string_table[0] must be \"\", is \"%s\"", printable(q, sizeof q, p->str[0], p->str_len[0], 40));
    }
    p->ncomment = (uint32_t)ncm;
    for (uint32_t i = 0; i < p->ncomment; i++)
        if (!chk_str(c, p->comment[i], "comment", i))
            return false;
    return true;
}

/* Pass 3: sample types, mappings, functions, scalars. */
static bool dec_tables(ctx_t *c, gort__pprof_t *p, rd_t all)
{
    rd_t r;
    field_t f;
    for (r = all; next_field(c, &r, &f, "profile") > 0;) {
        switch (f.num) {
        case F_SAMPLE_TYPE:
            if (!dec_vtype(c, &f, &p->sample_type[p->nsample_type], "sample type"))
                return false;
            p->nsample_type++;
            break;
        case F_MAPPING:
            if (!dec_mapping(c, &f, &p->mapping[p->nmapping], p->nmapping))
                return false;
            p->nmapping++;
            break;
        case F_FUNCTION:
            if (!dec_function(c, &f, &p->func[p->nfunc], p->nfunc))
                return false;
            p->nfunc++;
            break;
        case F_PERIOD_TYPE:
            if (!dec_vtype(c, &f, &p->period_type, "period type"))
                return false;
            break;
        case F_DROP: p->drop_frames = (int64_t)f.v; break;
        case F_KEEP: p->keep_frames = (int64_t)f.v; break;
        case F_TIME: p->time_nanos = (int64_t)f.v; break;
        case F_DURATION: p->duration_nanos = (int64_t)f.v; break;
        case F_PERIOD: p->period = (int64_t)f.v; break;
        case F_DEFAULT_SAMPLE_TYPE: p->default_sample_type = (int64_t)f.v; break;
        }
    }
    return chk_str(c, p->drop_frames, "drop_frames", 0) && chk_str(c, p->keep_frames, "keep_frames", 0) &&
           chk_str(c, p->default_sample_type, "default_sample_type", 0);
}

/* An id -> index map over n entries whose ids are at ids, stride apart;
 * what names the entries in messages ("mapping"). */
static bool index_ids(ctx_t *c, idmap_t *m, const void *ids, size_t stride, uint32_t n, const char *what)
{
    if (!idmap_init(c, m, n))
        return false;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t id = *(const uint64_t *)((const char *)ids + (size_t)i * stride);
        if (!idmap_put(m, id, i))
            return fail(c, "%s %u: id %llu is %s", what, i, (unsigned long long)id, id ? "used twice" : "zero");
    }
    return true;
}

/* Passes 4 and 5: locations (which name mappings and functions by id),
 * then samples (which name locations). */
static bool dec_locations_samples(ctx_t *c, gort__pprof_t *p, rd_t all, uint64_t *scratch, size_t nscratch)
{
    rd_t r;
    field_t f;
    idmap_t maps, funcs, locs;
    if (!index_ids(c, &maps, &p->mapping[0].id, sizeof p->mapping[0], p->nmapping, "mapping") ||
        !index_ids(c, &funcs, &p->func[0].id, sizeof p->func[0], p->nfunc, "function"))
        return false;
    for (r = all; next_field(c, &r, &f, "profile") > 0;) {
        if (f.num != F_LOCATION)
            continue;
        if (!dec_location(c, &f, &p->loc[p->nloc], p->nloc, &maps, &funcs))
            return false;
        p->nloc++;
    }
    if (!index_ids(c, &locs, &p->loc[0].id, sizeof p->loc[0], p->nloc, "location"))
        return false;
    for (r = all; next_field(c, &r, &f, "profile") > 0;) {
        if (f.num != F_SAMPLE)
            continue;
        if (!dec_sample(c, &f, &p->sample[p->nsample], p->nsample, &locs, scratch, nscratch))
            return false;
        p->nsample++;
    }
    return true;
}

/* An uncompressed profile.proto, in passes over the buffer: count, then
 * decode each kind of message once the ones it refers to are known. */
static gort__pprof_t *decode_plain(ctx_t *c, const uint8_t *buf, size_t len)
{
    const rd_t all = {buf, buf + len};
    counts_t n;
    if (len == 0)
        return fail(c, "empty profile"), NULL;
    if (!first_key_ok(c, buf, len) || !count_fields(c, all, &n))
        return NULL;
    size_t budget = len > (SIZE_MAX - (1u << 20)) / 64 ? SIZE_MAX : len * 64 + (1u << 20);
    gort__pprof_t *p = gort__pprof_new_empty(budget);
    if (!p)
        return fail(c, "out of memory"), NULL;
    c->p = p;
    /* A packed field of L bytes holds at most L varints. */
    uint64_t *scratch = gort__pprof_alloc(p, (n.maxpacked + 1) * sizeof *scratch);
    if (!scratch)
        oom(c);
    if (scratch && alloc_tables(c, p, &n) && dec_strings(c, p, all) && dec_tables(c, p, all) &&
        dec_locations_samples(c, p, all, scratch, n.maxpacked + 1) && !c->failed)
        return p;
    gort__pprof_free(p);
    c->p = NULL;
    return NULL;
}

/* ---- gzip -------------------------------------------------------------- */

static size_t inflate_limit(size_t inlen)
{
    size_t lim = 64u << 20;
    if (inlen <= GORT__PPROF_MAX_INFLATE / 64 && inlen * 64 > lim)
        lim = inlen * 64;
    if (inlen > GORT__PPROF_MAX_INFLATE / 64 || lim > GORT__PPROF_MAX_INFLATE)
        lim = GORT__PPROF_MAX_INFLATE;
    return lim;
}

static bool gunzip(ctx_t *c, const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen)
{
    size_t limit = inflate_limit(inlen);
    z_stream z = {0};
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        return fail(c, "gzip: cannot initialise zlib");
    size_t cap = inlen * 4 + 4096, n = 0;
    if (cap > limit + 1)
        cap = limit + 1;
    uint8_t *o = malloc(cap);
    if (!o) {
        inflateEnd(&z);
        return fail(c, "out of memory");
    }
    z.next_in = (Bytef *)in;
    size_t in_left = inlen;
    bool ok = false;
    for (;;) {
        if (n == cap) {
            if (cap > limit) {
                fail(c, "gzip: data inflates past %zu bytes (limit: 64x the file or 64 MiB, at most 1 GiB; a gzip bomb?)",
                     limit);
                break;
            }
            size_t ncap = cap * 2 > limit + 1 ? limit + 1 : cap * 2;
            uint8_t *no = realloc(o, ncap);
            if (!no) {
                fail(c, "out of memory");
                break;
            }
            o = no;
            cap = ncap;
        }
        if (z.avail_in == 0 && in_left) {
            z.avail_in = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
            in_left -= z.avail_in;
        }
        size_t room = cap - n;
        z.next_out = o + n;
        z.avail_out = room > (1u << 30) ? (1u << 30) : (uInt)room;
        uInt before = z.avail_out;
        int rc = inflate(&z, Z_NO_FLUSH);
        n += before - z.avail_out;
        if (rc == Z_STREAM_END) {
            /* Another gzip member may follow (concatenated files). */
            if (z.avail_in == 0 && in_left == 0) {
                ok = true;
                break;
            }
            if (z.avail_in >= 2 && z.next_in[0] == 0x1f && z.next_in[1] == 0x8b) {
                inflateReset(&z);
                continue;
            }
            fail(c, "gzip: trailing garbage after the compressed data");
            break;
        }
        if (rc == Z_DATA_ERROR) {
            fail(c, "gzip: corrupt data (%s)", z.msg ? z.msg : "invalid stream");
            break;
        }
        if (rc == Z_MEM_ERROR) {
            fail(c, "out of memory");
            break;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            fail(c, "gzip: inflate error %d", rc);
            break;
        }
        /* No input left, room for output, and still no end of stream. */
        if (z.avail_in == 0 && in_left == 0 && z.avail_out != 0) {
            fail(c, "gzip: unexpected end of data (file cut short?)");
            break;
        }
    }
    inflateEnd(&z);
    if (!ok) {
        free(o);
        return false;
    }
    *out = o;
    *outlen = n;
    return true;
}

gort__pprof_t *gort__pprof_decode(const void *buf, size_t len, char *err, size_t errlen)
{
    ctx_t c = {.err = err, .errlen = errlen};
    if (errlen)
        err[0] = 0;
    const uint8_t *b = buf;
    if (len >= 2 && b[0] == 0x1f && b[1] == 0x8b) {
        uint8_t *plain = NULL;
        size_t plen = 0;
        if (!gunzip(&c, b, len, &plain, &plen))
            return NULL;
        gort__pprof_t *p = decode_plain(&c, plain, plen);
        free(plain);
        return p;
    }
    return decode_plain(&c, b, len);
}

int gort__pprof_slurp(const char *path, size_t max, uint8_t **out, size_t *outlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        return -EISDIR;
    }
    size_t cap = 65536, n = 0;
    uint8_t *b = malloc(cap);
    if (!b) {
        close(fd);
        return -ENOMEM;
    }
    for (;;) {
        if (n == cap) {
            if (cap > max) {
                free(b);
                close(fd);
                return -EFBIG;
            }
            uint8_t *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                close(fd);
                return -ENOMEM;
            }
            b = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0) {
            int e = errno;
            if (e == EINTR)
                continue;
            free(b);
            close(fd);
            return -e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max) {
            free(b);
            close(fd);
            return -EFBIG;
        }
    }
    close(fd);
    *out = b;
    *outlen = n;
    return 0;
}

gort__pprof_t *gort__pprof_read_file(const char *path, char *err, size_t errlen)
{
    uint8_t *b;
    size_t n;
    int rc = gort__pprof_slurp(path, GORT__PPROF_MAX_INFLATE, &b, &n);
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s", path, rc == -EFBIG ? "file larger than 1 GiB" : strerror(-rc));
        return NULL;
    }
    char e[400];
    gort__pprof_t *p = gort__pprof_decode(b, n, e, sizeof e);
    free(b);
    if (!p)
        snprintf(err, errlen, "%s: %s", path, e);
    return p;
}
