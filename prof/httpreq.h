/*
 * httpreq.h: HTTP/1.1 message syntax (prof/httpreq.c): the debug
 * endpoint's request parser, and the pieces of it that gortprof's client
 * (prof/tool/fetch.c) and web UI (prof/tool/http.c) share with it.  Pure:
 * no runtime, no allocation, no I/O, so the libFuzzer target
 * (tests/fuzz/http_fuzz.c), the unit tests and gortprof call it as it is.
 */
#ifndef GORT_PROF_HTTPREQ_H
#define GORT_PROF_HTTPREQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The request line and headers together may take at most this many bytes;
 * past it the answer is 431.  A debug port needs no more. */
#define GORT_HTTP_MAX_HEADER (64 * 1024)
/* Request bodies (POST /debug/pprof/symbol) may take at most this; past it
 * 413. */
#define GORT_HTTP_MAX_BODY (64 * 1024)
/* Header lines after the request line; more is 431. */
#define GORT_HTTP_MAX_FIELDS 100

enum { HTTP_GET = 1, HTTP_HEAD, HTTP_POST, HTTP_OTHER };

/* Returned by gort__http_parse when the headers are not complete yet. */
#define GORT_HTTP_MORE 0

typedef struct gort__httpreq {
    int method;              /* HTTP_* */
    const char *path;        /* the request target up to '?', still %-encoded; points into the buffer */
    size_t path_len;
    const char *query;       /* after '?', or NULL */
    size_t query_len;
    int minor;               /* HTTP/1.minor: 0 or 1 */
    bool keep_alive;         /* 1.1 unless "Connection: close"; 1.0 only with "Connection: keep-alive" */
    bool expect_continue;    /* "Expect: 100-continue" */
    int64_t content_length;  /* -1: none given */
    size_t header_len;       /* bytes up to and including the blank line */
} gort__httpreq_t;

/* Parses the request at the start of buf[0..len).  Returns GORT_HTTP_MORE
 * while the blank line that ends the headers has not arrived (and len is
 * under the limit), a status >= 400 for a request that must be refused
 * (400 malformed, 413 body too large, 431 headers too large or too many,
 * 501 a transfer coding, 505 a version other than HTTP/1.0 or 1.1), or 200
 * with *req filled in.  Lines may end in CRLF or a bare LF; empty lines
 * before the request line are skipped, as RFC 9112 asks. */
int gort__http_parse(const char *buf, size_t len, gort__httpreq_t *req);

/* One header field line: its name, and its value without the blanks
 * around it; both point into the line. */
typedef struct gort__httpfield {
    const char *name, *value;
    size_t name_len, value_len;
} gort__httpfield_t;

/* Splits the field line s[0..n) (without its line end) at its colon.
 * false when it is not one: no colon, an empty name, a name with a byte a
 * token may not hold, or a blank before the name (obsolete folding). */
bool gort__http_field(const char *s, size_t n, gort__httpfield_t *f);

/* s[0..n) equals lower, a lowercase literal, ignoring ASCII case (header
 * names and tokens). */
bool gort__http_name_is(const char *s, size_t n, const char *lower);

/* The status of the status line s[0..n) ("HTTP/1.1 404 Not Found",
 * without its line end; the reason may be empty), or -1 when it is not
 * an HTTP/1.0 or 1.1 status line. */
int gort__http_status_line(const char *s, size_t n);

/* Decodes %XX escapes (and '+' as a space when plus) of s[0..n) into out
 * (NUL-terminated).  Returns the decoded length, or -1 when it does not fit
 * in outlen, or when the result would hold a NUL or a bad escape. */
int gort__http_unescape(const char *s, size_t n, bool plus, char *out, size_t outlen);

/* Looks up parameter name in a query string ("a=1&b=2") and decodes its
 * first value into out.  false when absent or undecodable. */
bool gort__http_query(const char *q, size_t qlen, const char *name, char *out, size_t outlen);

/* The reason phrase for a status ("Not Found"); "Error" if unknown. */
const char *gort__http_reason(int status);

#endif
