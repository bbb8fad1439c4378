/*
 * pprof_encode.c: profile model -> profile.proto bytes (optionally gzipped).
 *
 * Written by hand from the wire format: varints, and length-delimited
 * fields whose length comes first.  Nested messages are small (a sample, a
 * location, a function), so each is encoded into a scratch buffer and then
 * copied after its tag and length; packed repeated scalars (a sample's
 * location ids and values, the comments) get their length from a sizing
 * pass over the varints.  Zero scalars are left out, as proto3 does, except
 * string_table, whose every entry (the leading "" too) is written.
 *
 * Ids: a model's references are indexes; they are written as the referred
 * object's id field, which the builder sets to index + 1 and the decoder
 * keeps from its input, so a decode-encode round trip keeps ids as they were.
 *
 * Rejected: computing every message's size up front and writing in one pass
 * (protobuf-c's approach): a second walk of the same data, for a copy we do
 * not miss; streaming to the fd while encoding: gzip needs the whole stream
 * anyway, and a half-written profile on a failing fd is worse than none.
 */
#include "pprof_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

typedef struct buf {
    uint8_t *b;
    size_t n, cap;
    bool oom;
} buf_t;

static bool reserve(buf_t *b, size_t more)
{
    if (b->oom)
        return false;
    if (b->cap - b->n >= more)
        return true;
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap - b->n < more) {
        if (ncap > SIZE_MAX / 2) {
            b->oom = true;
            return false;
        }
        ncap *= 2;
    }
    uint8_t *nb = realloc(b->b, ncap);
    if (!nb) {
        b->oom = true;
        return false;
    }
    b->b = nb;
    b->cap = ncap;
    return true;
}

static void put_varint(buf_t *b, uint64_t v)
{
    if (!reserve(b, 10))
        return;
    while (v >= 0x80) {
        b->b[b->n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b->b[b->n++] = (uint8_t)v;
}

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static void put_tag(buf_t *b, unsigned field, unsigned wt) { put_varint(b, (uint64_t)field << 3 | wt); }

/* A varint field, left out when zero. */
static void put_u64(buf_t *b, unsigned field, uint64_t v)
{
    if (!v)
        return;
    put_tag(b, field, PB_VARINT);
    put_varint(b, v);
}

static void put_i64(buf_t *b, unsigned field, int64_t v) { put_u64(b, field, (uint64_t)v); }

static void put_bytes(buf_t *b, unsigned field, const void *data, size_t n)
{
    put_tag(b, field, PB_LEN);
    put_varint(b, n);
    if (n && reserve(b, n)) {
        memcpy(b->b + b->n, data, n);
        b->n += n;
    }
}

/* Copies the scratch message m as field of b, then empties m. */
static void put_msg(buf_t *b, unsigned field, buf_t *m)
{
    if (m->oom)
        b->oom = true;
    put_bytes(b, field, m->b, m->n);
    m->n = 0;
}

static void put_vtype(buf_t *b, unsigned field, const gort__pprof_vtype_t *vt, buf_t *m)
{
    put_i64(m, 1, vt->type);
    put_i64(m, 2, vt->unit);
    put_msg(b, field, m);
}

static void encode_sample(const gort__pprof_t *p, const gort__pprof_sample_t *s, buf_t *m, buf_t *lm)
{
    if (s->nloc) {
        size_t n = 0;
        for (uint32_t i = 0; i < s->nloc; i++)
            n += varint_size(p->loc[s->loc[i]].id);
        put_tag(m, 1, PB_LEN);
        put_varint(m, n);
        for (uint32_t i = 0; i < s->nloc; i++)
            put_varint(m, p->loc[s->loc[i]].id);
    }
    if (p->nsample_type) {
        size_t n = 0;
        for (uint32_t i = 0; i < p->nsample_type; i++)
            n += varint_size((uint64_t)s->value[i]);
        put_tag(m, 2, PB_LEN);
        put_varint(m, n);
        for (uint32_t i = 0; i < p->nsample_type; i++)
            put_varint(m, (uint64_t)s->value[i]);
    }
    for (uint32_t i = 0; i < s->nlabel; i++) {
        const gort__pprof_label_t *l = &s->label[i];
        put_i64(lm, 1, l->key);
        put_i64(lm, 2, l->str);
        put_i64(lm, 3, l->num);
        put_i64(lm, 4, l->num_unit);
        put_msg(m, 3, lm);
    }
}

static void encode_location(const gort__pprof_t *p, const gort__pprof_location_t *l, buf_t *m, buf_t *lm)
{
    put_u64(m, 1, l->id);
    if (l->mapping != GORT__PPROF_NONE)
        put_u64(m, 2, p->mapping[l->mapping].id);
    put_u64(m, 3, l->address);
    for (uint32_t i = 0; i < l->nline; i++) {
        const gort__pprof_line_t *ln = &l->line[i];
        if (ln->func != GORT__PPROF_NONE)
            put_u64(lm, 1, p->func[ln->func].id);
        put_i64(lm, 2, ln->line);
        put_i64(lm, 3, ln->column);
        put_msg(m, 4, lm);
    }
    put_u64(m, 5, l->folded);
}

static void encode_mapping(const gort__pprof_mapping_t *mp, buf_t *m)
{
    put_u64(m, 1, mp->id);
    put_u64(m, 2, mp->start);
    put_u64(m, 3, mp->limit);
    put_u64(m, 4, mp->offset);
    put_i64(m, 5, mp->file);
    put_i64(m, 6, mp->build_id);
    put_u64(m, 7, mp->has_functions);
    put_u64(m, 8, mp->has_filenames);
    put_u64(m, 9, mp->has_line_numbers);
    put_u64(m, 10, mp->has_inline_frames);
}

static void encode_function(const gort__pprof_function_t *f, buf_t *m)
{
    put_u64(m, 1, f->id);
    put_i64(m, 2, f->name);
    put_i64(m, 3, f->system_name);
    put_i64(m, 4, f->file);
    put_i64(m, 5, f->start_line);
}

static int encode_plain(const gort__pprof_t *p, buf_t *b)
{
    buf_t m = {0}, lm = {0};
    for (uint32_t i = 0; i < p->nsample_type; i++)
        put_vtype(b, 1, &p->sample_type[i], &m);
    for (size_t i = 0; i < p->nsample && !b->oom; i++) {
        encode_sample(p, &p->sample[i], &m, &lm);
        if (lm.oom)
            b->oom = true;
        put_msg(b, 2, &m);
    }
    for (uint32_t i = 0; i < p->nmapping; i++) {
        encode_mapping(&p->mapping[i], &m);
        put_msg(b, 3, &m);
    }
    for (uint32_t i = 0; i < p->nloc && !b->oom; i++) {
        encode_location(p, &p->loc[i], &m, &lm);
        if (lm.oom)
            b->oom = true;
        put_msg(b, 4, &m);
    }
    for (uint32_t i = 0; i < p->nfunc && !b->oom; i++) {
        encode_function(&p->func[i], &m);
        put_msg(b, 5, &m);
    }
    for (uint32_t i = 0; i < p->nstr && !b->oom; i++)
        put_bytes(b, 6, p->str[i], p->str_len[i]);
    put_i64(b, 7, p->drop_frames);
    put_i64(b, 8, p->keep_frames);
    put_i64(b, 9, p->time_nanos);
    put_i64(b, 10, p->duration_nanos);
    if (p->period_type.type || p->period_type.unit)
        put_vtype(b, 11, &p->period_type, &m);
    put_i64(b, 12, p->period);
    if (p->ncomment) {
        size_t n = 0;
        for (uint32_t i = 0; i < p->ncomment; i++)
            n += varint_size((uint64_t)p->comment[i]);
        put_tag(b, 13, PB_LEN);
        put_varint(b, n);
        for (uint32_t i = 0; i < p->ncomment; i++)
            put_varint(b, (uint64_t)p->comment[i]);
    }
    put_i64(b, 14, p->default_sample_type);
    free(m.b);
    free(lm.b);
    return b->oom ? -ENOMEM : 0;
}

static int gzip_buf(const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen)
{
    z_stream z = {0};
    /* 15 window bits + 16: a gzip header and trailer.  Level 1, as Go's
     * runtime/pprof: profiles are written at exit, speed matters more. */
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    size_t cap = deflateBound(&z, inlen) + 64;
    uint8_t *o = malloc(cap);
    if (!o) {
        deflateEnd(&z);
        return -ENOMEM;
    }
    z.next_in = (Bytef *)in;
    z.next_out = o;
    z.avail_out = cap > UINT_MAX ? UINT_MAX : (uInt)cap;
    size_t left = inlen;
    int rc;
    do {
        uInt chunk = left > (1u << 30) ? (1u << 30) : (uInt)left;
        z.avail_in = chunk;
        left -= chunk;
        rc = deflate(&z, left ? Z_NO_FLUSH : Z_FINISH);
    } while (rc == Z_OK || (rc == Z_BUF_ERROR && left));
    if (rc != Z_STREAM_END) {
        deflateEnd(&z);
        free(o);
        return -EOVERFLOW;
    }
    *outlen = z.total_out;
    *out = o;
    deflateEnd(&z);
    return 0;
}

int gort__pprof_encode(const gort__pprof_t *p, bool gzip, uint8_t **out, size_t *outlen)
{
    buf_t b = {0};
    int rc = encode_plain(p, &b);
    if (rc < 0) {
        free(b.b);
        return rc;
    }
    if (!gzip) {
        *out = b.b ? b.b : malloc(1);
        *outlen = b.n;
        return *out ? 0 : -ENOMEM;
    }
    rc = gzip_buf(b.b, b.n, out, outlen);
    free(b.b);
    return rc;
}

int gort__pprof_write(const gort__pprof_t *p, int fd, bool gzip)
{
    uint8_t *data;
    size_t n;
    int rc = gort__pprof_encode(p, gzip, &data, &n);
    if (rc < 0)
        return rc;
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, data + off, n - off);
        if (w < 0) {
            int e = errno;
            if (e == EINTR)
                continue;
            free(data);
            return -e;
        }
        off += (size_t)w;
    }
    free(data);
    return 0;
}
