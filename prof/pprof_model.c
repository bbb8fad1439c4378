/*
 * pprof_model.c: memory for profile models and the builder (interning and
 * dedupe).
 *
 * Memory: small, never-resized pieces (strings, a sample's locations,
 * values and labels, a location's lines) come from a bump arena owned by the
 * profile and freed at once with it.  The arena has an optional byte budget:
 * the decoder sets one relative to its input, so a hostile profile cannot
 * make it allocate more than a bounded multiple of what it read.  The
 * growable top-level arrays of a built profile are malloc'd and doubled; a
 * decoded profile sizes them exactly, in the arena.
 *
 * Dedupe: one open-addressing hash table per kind (strings, functions,
 * locations, mappings, samples) maps content to an index; keys are not
 * stored twice, the table holds indexes and compares against the arrays.
 * Tables stay at most half full, so probes stay short.
 *
 * Rejected: a hash table per sample stack keyed by a string of ids (the
 * profiler's writer would format and hash strings per sample); one malloc
 * per piece (the 100k-sample decode spent more time in malloc than in
 * parsing).
 */
#include "pprof_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ------------------------------------------------------------- */

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char mem[];
} chunk_t;

void *gort__pprof_alloc(gort__pprof_t *p, size_t n)
{
    gort__pprof_priv_t *pv = p->priv;
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    chunk_t *c = pv->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 65536 - sizeof(chunk_t) ? n : 65536 - sizeof(chunk_t);
        if (pv->budget && pv->allocated + cap + sizeof(chunk_t) > pv->budget) {
            /* Try an exact-size chunk before giving up. */
            cap = n;
            if (pv->allocated + cap + sizeof(chunk_t) > pv->budget) {
                pv->over_budget = true;
                return NULL;
            }
        }
        c = malloc(sizeof(chunk_t) + cap);
        if (!c)
            return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = pv->chunks;
        pv->chunks = c;
        pv->allocated += cap + sizeof(chunk_t);
    }
    void *r = c->mem + c->used;
    c->used += n;
    return r;
}

void *gort__pprof_calloc(gort__pprof_t *p, size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total))
        return NULL;
    void *r = gort__pprof_alloc(p, total);
    if (r)
        memset(r, 0, total);
    return r;
}

gort__pprof_t *gort__pprof_new_empty(size_t budget)
{
    gort__pprof_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->priv = calloc(1, sizeof *p->priv);
    if (!p->priv) {
        free(p);
        return NULL;
    }
    p->priv->budget = budget;
    return p;
}

static void table_free(gort__pprof_table_t *t) { free(t->slot); }

void gort__pprof_free(gort__pprof_t *p)
{
    if (!p)
        return;
    gort__pprof_priv_t *pv = p->priv;
    if (pv) {
        if (pv->builder) {
            free(p->sample_type);
            free(p->sample);
            free(p->mapping);
            free(p->loc);
            free(p->func);
            free(p->str);
            free(p->str_len);
            free(p->comment);
            table_free(&pv->strs);
            table_free(&pv->funcs);
            table_free(&pv->locs);
            table_free(&pv->maps);
            table_free(&pv->samples);
        }
        for (chunk_t *c = pv->chunks, *n; c; c = n) {
            n = c->next;
            free(c);
        }
        free(pv);
    }
    free(p);
}

/* ---- hashing ----------------------------------------------------------- */

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 32);
}

static uint64_t hash_bytes(const void *s, size_t n)
{
    const unsigned char *b = s;
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return mix(h, n);
}

/* Finds the slot for hash h: returns the stored index (found) or
 * GORT__PPROF_NONE with *slotp at the empty slot to fill. */
typedef bool (*eq_fn)(const gort__pprof_t *p, uint32_t idx, const void *key);

static uint32_t table_find(const gort__pprof_t *p, gort__pprof_table_t *t, uint64_t h, eq_fn eq,
                           const void *key, uint32_t **slotp)
{
    size_t mask = t->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t v = t->slot[i];
        if (v == 0) {
            *slotp = &t->slot[i];
            return GORT__PPROF_NONE;
        }
        if (eq(p, v - 1, key))
            return v - 1;
    }
}

typedef uint64_t (*rehash_fn)(const gort__pprof_t *p, uint32_t idx);

/* Makes room for one more entry; slots hold index + 1 (0 = empty). */
static int table_grow(const gort__pprof_t *p, gort__pprof_table_t *t, rehash_fn rh)
{
    if (t->cap && (t->n + 1) * 2 <= t->cap)
        return 0;
    size_t ncap = t->cap ? t->cap * 2 : 64;
    uint32_t *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return -ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        uint32_t v = t->slot[i];
        if (!v)
            continue;
        size_t j = rh(p, v - 1) & (ncap - 1);
        while (ns[j])
            j = (j + 1) & (ncap - 1);
        ns[j] = v;
    }
    free(t->slot);
    t->slot = ns;
    t->cap = ncap;
    return 0;
}

/* Grows a malloc'd array to hold n + 1 elements. */
static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *na = realloc(*arr, ncap * elem);
    if (!na)
        return -ENOMEM;
    *arr = na;
    *cap = ncap;
    return 0;
}
#define GROW(arr, capf, n) grow((void **)&(arr), &(capf), (n), sizeof *(arr))

/* ---- strings ----------------------------------------------------------- */

typedef struct {
    const char *s;
    size_t n;
} strkey_t;

static bool str_eq(const gort__pprof_t *p, uint32_t i, const void *key)
{
    const strkey_t *k = key;
    return p->str_len[i] == k->n && memcmp(p->str[i], k->s, k->n) == 0;
}

static uint64_t str_rehash(const gort__pprof_t *p, uint32_t i) { return hash_bytes(p->str[i], p->str_len[i]); }

int64_t gort__pprof_str(gort__pprof_t *p, const char *s)
{
    gort__pprof_priv_t *pv = p->priv;
    if (!s)
        s = "";
    strkey_t k = {s, strlen(s)};
    if (k.n > UINT32_MAX)
        return -EINVAL;
    if (table_grow(p, &pv->strs, str_rehash) < 0)
        return -ENOMEM;
    uint32_t *slot;
    uint32_t idx = table_find(p, &pv->strs, hash_bytes(k.s, k.n), str_eq, &k, &slot);
    if (idx != GORT__PPROF_NONE)
        return idx;
    if (p->nstr == UINT32_MAX - 1 || GROW(p->str, pv->cap_str, p->nstr) < 0)
        return -ENOMEM;
    size_t cap_len = pv->cap_str_len;
    if (GROW(p->str_len, cap_len, p->nstr) < 0)
        return -ENOMEM;
    pv->cap_str_len = cap_len;
    char *copy = gort__pprof_alloc(p, k.n + 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, s, k.n + 1);
    p->str[p->nstr] = copy;
    p->str_len[p->nstr] = (uint32_t)k.n;
    *slot = p->nstr + 1;
    pv->strs.n++;
    return p->nstr++;
}

gort__pprof_t *gort__pprof_new(void)
{
    gort__pprof_t *p = gort__pprof_new_empty(0);
    if (!p)
        return NULL;
    p->priv->builder = true;
    if (gort__pprof_str(p, "") != 0) {
        gort__pprof_free(p);
        return NULL;
    }
    return p;
}

int gort__pprof_add_sample_type(gort__pprof_t *p, const char *type, const char *unit)
{
    if (p->nsample)
        return -EINVAL;
    int64_t t = gort__pprof_str(p, type), u = gort__pprof_str(p, unit);
    if (t < 0 || u < 0)
        return -ENOMEM;
    if (GROW(p->sample_type, p->priv->cap_sample_type, p->nsample_type) < 0)
        return -ENOMEM;
    p->sample_type[p->nsample_type++] = (gort__pprof_vtype_t){t, u};
    return 0;
}

int gort__pprof_set_period(gort__pprof_t *p, const char *type, const char *unit, int64_t period)
{
    int64_t t = gort__pprof_str(p, type), u = gort__pprof_str(p, unit);
    if (t < 0 || u < 0)
        return -ENOMEM;
    p->period_type = (gort__pprof_vtype_t){t, u};
    p->period = period;
    return 0;
}

/* ---- mappings ---------------------------------------------------------- */

static bool map_eq(const gort__pprof_t *p, uint32_t i, const void *key)
{
    return p->mapping[i].start == *(const uint64_t *)key;
}

static uint64_t map_rehash(const gort__pprof_t *p, uint32_t i) { return mix(0, p->mapping[i].start); }

int64_t gort__pprof_add_mapping(gort__pprof_t *p, uint64_t start, uint64_t limit, uint64_t offset,
                                const char *file, const char *build_id)
{
    gort__pprof_priv_t *pv = p->priv;
    if (table_grow(p, &pv->maps, map_rehash) < 0)
        return -ENOMEM;
    uint32_t *slot;
    uint32_t idx = table_find(p, &pv->maps, mix(0, start), map_eq, &start, &slot);
    if (idx != GORT__PPROF_NONE)
        return idx;
    int64_t f = gort__pprof_str(p, file), b = gort__pprof_str(p, build_id);
    if (f < 0 || b < 0 || GROW(p->mapping, pv->cap_mapping, p->nmapping) < 0)
        return -ENOMEM;
    p->mapping[p->nmapping] = (gort__pprof_mapping_t){
        .id = p->nmapping + 1, .start = start, .limit = limit, .offset = offset, .file = f, .build_id = b,
        .has_functions = true, .has_filenames = true, .has_line_numbers = true, .has_inline_frames = true,
    };
    *slot = p->nmapping + 1;
    pv->maps.n++;
    return p->nmapping++;
}

/* ---- functions --------------------------------------------------------- */

static uint64_t func_hash(const gort__pprof_function_t *f)
{
    return mix(mix(mix(mix(0, (uint64_t)f->name), (uint64_t)f->system_name), (uint64_t)f->file),
               (uint64_t)f->start_line);
}

static bool func_eq(const gort__pprof_t *p, uint32_t i, const void *key)
{
    const gort__pprof_function_t *a = &p->func[i], *b = key;
    return a->name == b->name && a->system_name == b->system_name && a->file == b->file &&
           a->start_line == b->start_line;
}

static uint64_t func_rehash(const gort__pprof_t *p, uint32_t i) { return func_hash(&p->func[i]); }

int64_t gort__pprof_add_function(gort__pprof_t *p, const char *name, const char *system_name,
                                 const char *file, int64_t start_line)
{
    gort__pprof_priv_t *pv = p->priv;
    int64_t n = gort__pprof_str(p, name), s = gort__pprof_str(p, system_name ? system_name : name),
            f = gort__pprof_str(p, file);
    if (n < 0 || s < 0 || f < 0 || table_grow(p, &pv->funcs, func_rehash) < 0)
        return -ENOMEM;
    gort__pprof_function_t key = {0, n, s, f, start_line};
    uint32_t *slot;
    uint32_t idx = table_find(p, &pv->funcs, func_hash(&key), func_eq, &key, &slot);
    if (idx != GORT__PPROF_NONE)
        return idx;
    if (GROW(p->func, pv->cap_func, p->nfunc) < 0)
        return -ENOMEM;
    key.id = p->nfunc + 1;
    p->func[p->nfunc] = key;
    *slot = p->nfunc + 1;
    pv->funcs.n++;
    return p->nfunc++;
}

/* ---- locations --------------------------------------------------------- */

typedef struct {
    uint32_t mapping;
    uint64_t address;
    const gort__pprof_line_t *line;
    uint32_t nline;
} lockey_t;

static uint64_t loc_hash(const lockey_t *k)
{
    uint64_t h = mix(mix(0, k->mapping), k->address);
    for (uint32_t i = 0; i < k->nline; i++)
        h = mix(mix(h, k->line[i].func), (uint64_t)k->line[i].line);
    return h;
}

static bool loc_eq(const gort__pprof_t *p, uint32_t i, const void *key)
{
    const gort__pprof_location_t *l = &p->loc[i];
    const lockey_t *k = key;
    if (l->mapping != k->mapping || l->address != k->address || l->nline != k->nline)
        return false;
    for (uint32_t j = 0; j < k->nline; j++)
        if (l->line[j].func != k->line[j].func || l->line[j].line != k->line[j].line ||
            l->line[j].column != k->line[j].column)
            return false;
    return true;
}

static uint64_t loc_rehash(const gort__pprof_t *p, uint32_t i)
{
    const gort__pprof_location_t *l = &p->loc[i];
    lockey_t k = {l->mapping, l->address, l->line, l->nline};
    return loc_hash(&k);
}

int64_t gort__pprof_add_location(gort__pprof_t *p, uint32_t mapping, uint64_t address,
                                 const gort__pprof_line_t *line, uint32_t nline)
{
    gort__pprof_priv_t *pv = p->priv;
    if (mapping != GORT__PPROF_NONE && mapping >= p->nmapping)
        return -EINVAL;
    for (uint32_t i = 0; i < nline; i++)
        if (line[i].func != GORT__PPROF_NONE && line[i].func >= p->nfunc)
            return -EINVAL;
    if (table_grow(p, &pv->locs, loc_rehash) < 0)
        return -ENOMEM;
    lockey_t k = {mapping, address, line, nline};
    uint32_t *slot;
    uint32_t idx = table_find(p, &pv->locs, loc_hash(&k), loc_eq, &k, &slot);
    if (idx != GORT__PPROF_NONE)
        return idx;
    if (GROW(p->loc, pv->cap_loc, p->nloc) < 0)
        return -ENOMEM;
    gort__pprof_line_t *copy = NULL;
    if (nline) {
        copy = gort__pprof_alloc(p, nline * sizeof *copy);
        if (!copy)
            return -ENOMEM;
        memcpy(copy, line, nline * sizeof *copy);
    }
    p->loc[p->nloc] = (gort__pprof_location_t){
        .id = p->nloc + 1, .address = address, .mapping = mapping, .nline = nline, .line = copy,
    };
    *slot = p->nloc + 1;
    pv->locs.n++;
    return p->nloc++;
}

/* ---- samples ----------------------------------------------------------- */

typedef struct {
    const uint32_t *loc;
    uint32_t nloc;
    const gort__pprof_label_t *label;
    uint32_t nlabel;
} samplekey_t;

static uint64_t sample_hash(const samplekey_t *k)
{
    uint64_t h = hash_bytes(k->loc, k->nloc * sizeof *k->loc);
    for (uint32_t i = 0; i < k->nlabel; i++) {
        const gort__pprof_label_t *l = &k->label[i];
        h = mix(mix(mix(mix(h, (uint64_t)l->key), (uint64_t)l->str), (uint64_t)l->num), (uint64_t)l->num_unit);
    }
    return h;
}

static bool sample_eq(const gort__pprof_t *p, uint32_t i, const void *key)
{
    const gort__pprof_sample_t *s = &p->sample[i];
    const samplekey_t *k = key;
    return s->nloc == k->nloc && s->nlabel == k->nlabel &&
           memcmp(s->loc, k->loc, k->nloc * sizeof *k->loc) == 0 &&
           memcmp(s->label, k->label, k->nlabel * sizeof *k->label) == 0;
}

static uint64_t sample_rehash(const gort__pprof_t *p, uint32_t i)
{
    const gort__pprof_sample_t *s = &p->sample[i];
    samplekey_t k = {s->loc, s->nloc, s->label, s->nlabel};
    return sample_hash(&k);
}

int gort__pprof_add_sample(gort__pprof_t *p, const uint32_t *loc, uint32_t nloc, const int64_t *value,
                           const gort__pprof_label_t *label, uint32_t nlabel)
{
    gort__pprof_priv_t *pv = p->priv;
    for (uint32_t i = 0; i < nloc; i++)
        if (loc[i] >= p->nloc)
            return -EINVAL;
    for (uint32_t i = 0; i < nlabel; i++)
        if (label[i].key <= 0 || label[i].key >= p->nstr || label[i].str < 0 || label[i].str >= p->nstr ||
            label[i].num_unit < 0 || label[i].num_unit >= p->nstr)
            return -EINVAL;
    if (p->nsample >= UINT32_MAX - 1 || table_grow(p, &pv->samples, sample_rehash) < 0)
        return -ENOMEM;
    samplekey_t k = {loc, nloc, label, nlabel};
    uint32_t *slot;
    uint32_t idx = table_find(p, &pv->samples, sample_hash(&k), sample_eq, &k, &slot);
    if (idx != GORT__PPROF_NONE) {
        int64_t *v = p->sample[idx].value;
        for (uint32_t i = 0; i < p->nsample_type; i++)
            v[i] += value[i];
        return 0;
    }
    if (GROW(p->sample, pv->cap_sample, p->nsample) < 0)
        return -ENOMEM;
    gort__pprof_sample_t *s = &p->sample[p->nsample];
    s->loc = gort__pprof_alloc(p, nloc * sizeof *loc);
    s->value = gort__pprof_alloc(p, p->nsample_type * sizeof *value);
    s->label = gort__pprof_alloc(p, nlabel * sizeof *label);
    if (!s->loc || !s->value || !s->label)
        return -ENOMEM;
    /* loc or label may be NULL when their count is 0 (memcpy's arguments
     * must not be, even for 0 bytes: UBSan). */
    if (nloc)
        memcpy(s->loc, loc, nloc * sizeof *loc);
    if (p->nsample_type)
        memcpy(s->value, value, p->nsample_type * sizeof *value);
    if (nlabel)
        memcpy(s->label, label, nlabel * sizeof *label);
    s->nloc = nloc;
    s->nlabel = nlabel;
    *slot = (uint32_t)p->nsample + 1;
    pv->samples.n++;
    p->nsample++;
    return 0;
}

int gort__pprof_add_comment(gort__pprof_t *p, const char *text)
{
    int64_t s = gort__pprof_str(p, text);
    if (s < 0 || GROW(p->comment, p->priv->cap_comment, p->ncomment) < 0)
        return -ENOMEM;
    p->comment[p->ncomment++] = s;
    return 0;
}
