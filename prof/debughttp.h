/*
 * debughttp.h: what the debug endpoint's pages (prof/debugpages.c) and its
 * server (prof/debugserve.c) share.  A page is produced whole into a
 * response buffer before a byte is written, so a handler never touches the
 * connection and the server alone owns its deadlines.
 */
#ifndef GORT_PROF_DEBUGHTTP_H
#define GORT_PROF_DEBUGHTTP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "httpreq.h"

/* A growing byte buffer; oom is sticky and turns the answer into a 500. */
typedef struct gort__dbuf {
    char *p;
    size_t len, cap;
    bool oom;
} gort__dbuf_t;

void gort__dbuf_put(gort__dbuf_t *b, const void *s, size_t n);
void gort__dbuf_str(gort__dbuf_t *b, const char *s);
void gort__dbuf_printf(gort__dbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void gort__dbuf_free(gort__dbuf_t *b);

typedef struct gort__dresp {
    int status;
    const char *type;       /* Content-Type */
    char filename[32];      /* Content-Disposition: attachment; filename="..."; "" none */
    bool go_pprof_error;    /* "X-Go-Pprof: 1", as Go's serveError sets */
    const char *allow;      /* Allow, for 405 */
    const char *location;   /* Location, for 301 */
    gort__dbuf_t body;
} gort__dresp_t;

/* Answers one parsed request (body: its Content-Length bytes) into resp.
 * Runs on the connection's goroutine; may park it (profile?seconds=N). */
void gort__debug_handle(const gort__httpreq_t *req, const char *body, size_t blen, gort__dresp_t *resp);

/* The text of an error page: Go's serveError writes the text and a newline. */
void gort__debug_error(gort__dresp_t *resp, int status, const char *text);

/* The server's limits (prof/debugserve.c).  Tests shorten the times. */
typedef struct gort__debug_limits {
    int64_t read_ns;   /* a request's head and body, from its first byte */
    int64_t idle_ns;   /* a keep-alive connection between requests */
    int64_t write_ns;  /* one answer */
    int max_conns;     /* open connections; past it 503 */
} gort__debug_limits_t;
/* Before gort_debug_serve; not while it serves. */
void gort__debug_set_limits(const gort__debug_limits_t *l);
int gort__debug_conns(void);          /* connections open now */
uint64_t gort__debug_served(void);    /* answers written so far */

#endif
