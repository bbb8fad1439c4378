/*
 * httpreq.c: the request parser of the debug endpoint's HTTP/1.1 server,
 * and the syntax it shares with gortprof's client and web UI: header
 * field lines, the version, status lines, %-escapes (one definition of
 * each; gortprof links this file as it links the pprof codec).
 *
 * The input is whatever a client sent, so the parser trusts nothing: it
 * reads only inside buf[0..len), never writes to it, and decides from the
 * bytes alone (no state between calls; the server calls it again on the
 * grown buffer).  It accepts the subset a debug port meets: origin-form
 * targets ("/debug/pprof/profile?seconds=5"), HTTP/1.0 and 1.1, bodies
 * only with Content-Length (pprof's symbol POST sends one).
 *
 * What it refuses, and with what:
 *   400  a request line that is not METHOD SP /target SP HTTP/x.y, a
 *        control byte in the target, a header line without a colon or
 *        with a bad name, obsolete line folding, a bad or conflicting
 *        Content-Length, a bare CR;
 *   413  a Content-Length over GORT_HTTP_MAX_BODY;
 *   431  headers that do not end within GORT_HTTP_MAX_HEADER bytes, or
 *        more than GORT_HTTP_MAX_FIELDS header lines;
 *   501  any Transfer-Encoding (chunked request bodies are not needed);
 *   505  a version other than 1.0 and 1.1.
 * The caller answers these and closes the connection: after a refused
 * request the stream's framing is unknown.
 *
 * Rejected: a streaming, byte-at-a-time state machine (picohttpparser,
 * llhttp).  Headers are at most 64 KiB and a request is parsed again only
 * when more of it arrives, so rescanning a small buffer costs little and
 * leaves no state to get wrong between calls.
 */
#include "httpreq.h"

#include <string.h>

static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

bool gort__http_name_is(const char *s, size_t n, const char *lower)
{
    size_t m = strlen(lower);
    if (n != m)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)s[i], y = (unsigned char)lower[i];
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x + 32);
        if (x != y)
            return false;
    }
    return true;
}

/* The end of the line starting at p (the index of its '\n'), or -1. */
static long line_end(const char *buf, size_t p, size_t len)
{
    const char *nl = memchr(buf + p, '\n', len - p);
    return nl ? (long)(nl - buf) : -1;
}

/* Line content [p, e) without its CR; 0 when a CR appears elsewhere. */
static bool trim_cr(const char *buf, size_t p, size_t *e)
{
    if (*e > p && buf[*e - 1] == '\r')
        (*e)--;
    return memchr(buf + p, '\r', *e - p) == NULL;
}

/* The version v[0..n): its minor number (HTTP/1.0 or 1.1), -400 when it
 * is not HTTP/DIGIT.DIGIT, -505 for another version. */
static int http_version(const char *v, size_t n)
{
    if (n != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' || v[7] < '0' ||
        v[7] > '9')
        return -400;
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
        return -505;
    return v[7] - '0';
}

int gort__http_status_line(const char *s, size_t n)
{
    if (n < 12 || http_version(s, 8) < 0 || s[8] != ' ' || (n > 12 && s[12] != ' '))
        return -1;
    int st = 0;
    for (int i = 9; i < 12; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        st = st * 10 + (s[i] - '0');
    }
    return st >= 100 ? st : -1;
}

bool gort__http_field(const char *s, size_t n, gort__httpfield_t *f)
{
    if (n == 0 || s[0] == ' ' || s[0] == '\t')
        return false;
    const char *colon = memchr(s, ':', n);
    if (!colon || colon == s)
        return false;
    size_t nl = (size_t)(colon - s);
    for (size_t i = 0; i < nl; i++)
        if (!is_tchar((unsigned char)s[i]))
            return false;
    const char *v = colon + 1, *e = s + n;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *f = (gort__httpfield_t){.name = s, .name_len = nl, .value = v, .value_len = (size_t)(e - v)};
    return true;
}

static int parse_request_line(const char *s, size_t n, gort__httpreq_t *r)
{
    const char *sp1 = memchr(s, ' ', n);
    if (!sp1 || sp1 == s)
        return 400;
    size_t ml = (size_t)(sp1 - s);
    for (size_t i = 0; i < ml; i++)
        if (!is_tchar((unsigned char)s[i]))
            return 400;
    if (ml == 3 && !memcmp(s, "GET", 3))
        r->method = HTTP_GET;
    else if (ml == 4 && !memcmp(s, "HEAD", 4))
        r->method = HTTP_HEAD;
    else if (ml == 4 && !memcmp(s, "POST", 4))
        r->method = HTTP_POST;
    else
        r->method = HTTP_OTHER;
    const char *t = sp1 + 1, *end = s + n;
    const char *sp2 = memchr(t, ' ', (size_t)(end - t));
    if (!sp2 || sp2 == t || *t != '/')
        return 400;
    for (const char *c = t; c < sp2; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f)
            return 400;
    int minor = http_version(sp2 + 1, (size_t)(end - sp2 - 1));
    if (minor < 0)
        return -minor;
    r->minor = minor;
    r->keep_alive = r->minor == 1;
    const char *q = memchr(t, '?', (size_t)(sp2 - t));
    r->path = t;
    r->path_len = (size_t)((q ? q : sp2) - t);
    if (q) {
        r->query = q + 1;
        r->query_len = (size_t)(sp2 - q - 1);
    }
    return 200;
}

/* Connection: a comma-separated list of tokens. */
static void connection_tokens(const char *v, size_t n, gort__httpreq_t *r)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t b = i;
        while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (gort__http_name_is(v + b, i - b, "close"))
            r->keep_alive = false;
        else if (gort__http_name_is(v + b, i - b, "keep-alive") && r->minor == 0)
            r->keep_alive = true;
    }
}

static int parse_field(const char *s, size_t n, gort__httpreq_t *r, bool *close_seen)
{
    gort__httpfield_t f;
    if (!gort__http_field(s, n, &f))
        return 400;
    const char *v = f.value;
    size_t vl = f.value_len;
    for (size_t i = 0; i < vl; i++)
        if (((unsigned char)v[i] < 0x20 && v[i] != '\t') || v[i] == 0x7f)
            return 400;
    if (gort__http_name_is(f.name, f.name_len, "content-length")) {
        if (vl == 0)
            return 400;
        int64_t x = 0; /* saturates: anything past the limit is 413 */
        for (size_t i = 0; i < vl; i++) {
            if (v[i] < '0' || v[i] > '9')
                return 400;
            x = x > INT64_MAX / 10 - 10 ? INT64_MAX / 10 : x * 10 + (v[i] - '0');
        }
        if (r->content_length >= 0 && r->content_length != x)
            return 400;
        r->content_length = x;
    } else if (gort__http_name_is(f.name, f.name_len, "transfer-encoding")) {
        return 501;
    } else if (gort__http_name_is(f.name, f.name_len, "connection")) {
        bool ka = r->keep_alive;
        connection_tokens(v, vl, r);
        if (ka && !r->keep_alive)
            *close_seen = true;
    } else if (gort__http_name_is(f.name, f.name_len, "expect")) {
        if (gort__http_name_is(v, vl, "100-continue"))
            r->expect_continue = true;
    }
    return 200;
}

int gort__http_parse(const char *buf, size_t len, gort__httpreq_t *req)
{
    gort__httpreq_t r = {.content_length = -1};
    size_t lim = len < GORT_HTTP_MAX_HEADER ? len : GORT_HTTP_MAX_HEADER;
    size_t p = 0;
    /* Empty lines before the request line (a client's CRLF after a body). */
    for (;;) {
        if (p < lim && buf[p] == '\n')
            p++;
        else if (p + 1 < lim && buf[p] == '\r' && buf[p + 1] == '\n')
            p += 2;
        else
            break;
    }
    int nfields = -1, st;
    bool close_seen = false;
    for (;;) {
        long nl = p < lim ? line_end(buf, p, lim) : -1;
        if (nl < 0)
            return len >= GORT_HTTP_MAX_HEADER ? 431 : GORT_HTTP_MORE;
        size_t e = (size_t)nl;
        if (!trim_cr(buf, p, &e))
            return 400;
        if (nfields < 0) {
            st = parse_request_line(buf + p, e - p, &r);
        } else if (e == p) {
            r.header_len = (size_t)nl + 1;
            break;
        } else if (nfields >= GORT_HTTP_MAX_FIELDS) {
            return 431;
        } else {
            st = parse_field(buf + p, e - p, &r, &close_seen);
        }
        if (st != 200)
            return st;
        nfields++;
        p = (size_t)nl + 1;
    }
    if (close_seen)
        r.keep_alive = false;
    if (r.content_length > GORT_HTTP_MAX_BODY)
        return 413;
    *req = r;
    return 200;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int gort__http_unescape(const char *s, size_t n, bool plus, char *out, size_t outlen)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0)
                return -1;
            c = hexval(s[i + 1]) * 16 + hexval(s[i + 2]);
            i += 2;
        } else if (c == '+' && plus) {
            c = ' ';
        }
        if (c == 0 || k + 1 >= outlen)
            return -1;
        out[k++] = (char)c;
    }
    if (outlen == 0)
        return -1;
    out[k] = 0;
    return (int)k;
}

bool gort__http_query(const char *q, size_t qlen, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name), i = 0;
    while (q && i < qlen) {
        const char *amp = memchr(q + i, '&', qlen - i);
        size_t e = amp ? (size_t)(amp - q) : qlen;
        const char *eq = memchr(q + i, '=', e - i);
        size_t ke = eq ? (size_t)(eq - q) : e;
        if (ke - i == nlen && !memcmp(q + i, name, nlen)) {
            size_t vs = eq ? ke + 1 : e;
            return gort__http_unescape(q + vs, e - vs, true, out, outlen) >= 0;
        }
        i = e + 1;
    }
    return false;
}

const char *gort__http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Request Entity Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}
