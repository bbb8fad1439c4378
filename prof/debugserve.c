/*
 * debugserve.c: gort_debug_serve and GORT_DEBUG_ADDR, the HTTP/1.1 server
 * of the live diagnostics endpoint (/debug/pprof, /debug/gort), served by
 * goroutines on the netpoller.
 *
 * Shape, as a Go server's: one goroutine parked in accept, one goroutine
 * per connection parked in read.  A page is produced whole by
 * prof/debugpages.c, then written; requests are parsed by prof/httpreq.c.
 * Keep-alive and pipelining: bytes after a request stay in the buffer for
 * the next.
 *
 * Idle cost zero: with nobody connected, the accept goroutine waits on the
 * netpoller and no timer is armed; an idle connection's only timer is its
 * read deadline.  Nothing here polls.
 *
 * A hostile or slow client cannot hold the server:
 *   - read deadline per request: its head and body must arrive within
 *     limits.read_ns of its first byte (a half-sent request is cut off),
 *     and an idle keep-alive connection closes after limits.idle_ns;
 *   - write deadline per answer (limits.write_ns): a client that never
 *     reads is cut off when the socket buffers fill;
 *   - the head at most 64 KiB (431), a body at most 64 KiB (413);
 *   - at most limits.max_conns connections (>= 1000); past it a new one is
 *     answered 503 at once and closed;
 *   - after a refused request (4xx) the server stops writing, reads and
 *     drops what the client still sends for a moment (bounded in bytes and
 *     time), then closes: closing with unread input would reset the
 *     connection and could destroy the error answer before the client
 *     read it (Go's closeWriteAndWait).
 *
 * Address: an empty host (":6060", ":0") binds 127.0.0.1 only, not every
 * interface as Go does: these pages show a program's internals.  Any other
 * address is bound as written (docs/profiling.md).
 *
 * Rejected: a thread per connection or an epoll loop of our own (the point
 * is that the endpoint is ordinary goroutine server code, visible in
 * dumps); streaming a page while it is produced (a writer blocked on a
 * slow client would hold the goroutine profile's stop-the-world or the
 * symbolizer's lock; pages are small).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "debughttp.h"
#include "gort_net.h"
#include "gort_prof.h"
#include "profiles.h"
#include "runtime.h"

#define SEC 1000000000LL

/* Tests shorten these (gort__debug_set_limits).  Written only before
 * gort_debug_serve; the server's goroutines read them after, ordered by
 * the gort_go that starts the accept goroutine. */
static gort__debug_limits_t limits = {
    .read_ns = 10 * SEC,
    .idle_ns = 60 * SEC,
    .write_ns = 60 * SEC,
    .max_conns = 1000,
};

static _Atomic int serving;      /* 1 once gort_debug_serve bound a port */
static _Atomic int nconns;       /* connections open; the cap counts these */
static _Atomic uint64_t nserved; /* answers written, errors included (tests) */

void gort__debug_set_limits(const gort__debug_limits_t *l) { limits = *l; }

int gort__debug_conns(void) { return atomic_load(&nconns); }

uint64_t gort__debug_served(void) { return atomic_load(&nserved); }

static void *h2p(gort_fd fd) { return (void *)(uintptr_t)fd.h; }
static gort_fd p2h(void *p) { return (gort_fd){(uint64_t)(uintptr_t)p}; }

/* The answer's head, then its body, in one write (two would meet Nagle's
 * delay on a keep-alive connection). */
static int write_answer(gort_fd c, const gort__dresp_t *r, bool head_only, bool keep)
{
    gort__dbuf_t out = {0};
    gort__dbuf_printf(&out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n", r->status,
                      gort__http_reason(r->status), r->type ? r->type : "text/plain; charset=utf-8",
                      r->body.len);
    gort__dbuf_str(&out, "X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n");
    if (r->filename[0])
        gort__dbuf_printf(&out, "Content-Disposition: attachment; filename=\"%s\"\r\n", r->filename);
    if (r->go_pprof_error)
        gort__dbuf_str(&out, "X-Go-Pprof: 1\r\n");
    if (r->allow)
        gort__dbuf_printf(&out, "Allow: %s\r\n", r->allow);
    if (r->location)
        gort__dbuf_printf(&out, "Location: %s\r\n", r->location);
    gort__dbuf_str(&out, keep ? "\r\n" : "Connection: close\r\n\r\n");
    if (!head_only && r->body.len)
        gort__dbuf_put(&out, r->body.p, r->body.len);
    int err = out.oom ? -ENOMEM : 0;
    if (!err) {
        gort_fd_set_write_deadline(c, gort_nanotime() + limits.write_ns);
        ssize_t w = gort_fd_write(c, out.p, out.len);
        err = w < 0 ? (int)w : (size_t)w < out.len ? -EIO : 0;
        gort_fd_set_write_deadline(c, 0);
    }
    gort__dbuf_free(&out);
    atomic_fetch_add(&nserved, 1);
    return err;
}

static void refuse(gort_fd c, int status)
{
    gort__dresp_t r = {0};
    char text[64];
    snprintf(text, sizeof text, "%d %s", status, gort__http_reason(status));
    gort__debug_error(&r, status, text);
    r.go_pprof_error = false;
    int err = write_answer(c, &r, false, false);
    gort__dbuf_free(&r.body);
    if (err)
        return;
    /* Stop writing, then drop what the client still sends for a moment, so
     * that closing does not reset the connection under the answer. */
    int fd = gort_fd_sysfd(c);
    if (fd >= 0)
        shutdown(fd, SHUT_WR);
    gort_fd_set_read_deadline(c, gort_nanotime() + SEC / 2);
    char sink[4096];
    for (size_t dropped = 0; dropped < 256 * 1024;) {
        ssize_t n = gort_fd_read(c, sink, sizeof sink);
        if (n <= 0)
            break;
        dropped += (size_t)n;
    }
}

/* A connection's request buffer: grows to what a request may need. */
typedef struct rbuf {
    char *p;
    size_t len, cap;
} rbuf_t;

static bool rbuf_room(rbuf_t *b, size_t want)
{
    if (b->cap >= want)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < want)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return false;
    b->p = p;
    b->cap = cap;
    return true;
}

/* Reads more of the request; false on EOF, an error or the deadline. */
static bool read_more(gort_fd c, rbuf_t *b, size_t limit)
{
    if (!rbuf_room(b, b->len + 4096 < limit ? b->len + 4096 : limit) || b->len >= b->cap)
        return false;
    ssize_t n = gort_fd_read(c, b->p + b->len, b->cap - b->len);
    if (n <= 0)
        return false;
    b->len += (size_t)n;
    return true;
}

/* Serves one request from b; false when the connection must close. */
static bool serve_one(gort_fd c, rbuf_t *b)
{
    /* Idle until the first byte, then read_ns for the whole request. */
    gort_fd_set_read_deadline(c, gort_nanotime() + (b->len ? limits.read_ns : limits.idle_ns));
    /* An idle connection waits without a buffer. */
    if (!b->len && (gort_fd_wait_read(c) != 0 || !read_more(c, b, GORT_HTTP_MAX_HEADER + 1)))
        return false;
    gort_fd_set_read_deadline(c, gort_nanotime() + limits.read_ns);
    gort__httpreq_t req;
    int st;
    while ((st = gort__http_parse(b->p, b->len, &req)) == GORT_HTTP_MORE)
        if (!read_more(c, b, GORT_HTTP_MAX_HEADER + 1))
            return false;
    if (st != 200) {
        refuse(c, st);
        return false;
    }
    size_t need = req.header_len + (req.content_length > 0 ? (size_t)req.content_length : 0);
    if (b->len < need && req.expect_continue) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        gort_fd_set_write_deadline(c, gort_nanotime() + limits.write_ns);
        if (gort_fd_write(c, cont, sizeof cont - 1) != (ssize_t)(sizeof cont - 1))
            return false;
    }
    while (b->len < need)
        if (!read_more(c, b, need))
            return false;
    gort_fd_set_read_deadline(c, 0);
    gort__dresp_t resp = {0};
    gort__debug_handle(&req, b->p + req.header_len, need - req.header_len, &resp);
    /* A page's own error (404, 405) leaves the stream's framing intact. */
    bool keep = req.keep_alive;
    int err = write_answer(c, &resp, req.method == HTTP_HEAD, keep);
    gort__dbuf_free(&resp.body);
    memmove(b->p, b->p + need, b->len - need);
    b->len -= need;
    return keep && err == 0;
}

static void serve_conn(void *arg)
{
    gort_fd c = p2h(arg);
    rbuf_t b = {0};
    while (serve_one(c, &b)) {
        /* A connection that waits for its next request gives its buffer
         * back unless a pipelined request is already in it. */
        if (!b.len) {
            free(b.p);
            b = (rbuf_t){0};
        }
    }
    free(b.p);
    gort_fd_close(c);
    atomic_fetch_sub(&nconns, 1);
}

static void accept_loop(void *arg)
{
    gort_fd ln = p2h(arg);
    for (;;) {
        gort_fd c;
        int r = gort_fd_accept(ln, &c, NULL, NULL);
        if (r == -ECANCELED || r == -EBADF)
            break;
        if (r < 0)
            continue; /* gort_fd_accept backs off on EMFILE itself */
        if (atomic_fetch_add(&nconns, 1) >= limits.max_conns) {
            /* A fresh socket's send buffer is empty: this write does not
             * wait, and the deadline bounds it if it does.  The drain in
             * refuse holds accepting for at most half a second, and only
             * while the server is over its cap anyway. */
            refuse(c, 503);
            gort_fd_close(c);
            atomic_fetch_sub(&nconns, 1);
            continue;
        }
        gort_go(serve_conn, h2p(c));
    }
    gort_fd_close(ln);
}

int gort_debug_serve(const char *address)
{
    if (!address || !*address)
        return -EINVAL;
    gort__start();
    char addr[300];
    /* ":port": loopback only (see the top of the file). */
    int n = snprintf(addr, sizeof addr, "%s%s", address[0] == ':' ? "127.0.0.1" : "", address);
    if (n < 0 || (size_t)n >= sizeof addr)
        return -ENAMETOOLONG;
    int expect = 0;
    if (!atomic_compare_exchange_strong(&serving, &expect, 1))
        return -EBUSY;
    gort_fd ln;
    int r = gort_net_listen("tcp", addr, &ln);
    if (r < 0) {
        atomic_store(&serving, 0);
        return r;
    }
    char local[128];
    r = gort_fd_local_addr(ln, local, sizeof local);
    const char *colon = r > 0 ? strrchr(local, ':') : NULL;
    int port = colon ? atoi(colon + 1) : 0;
    if (port <= 0) {
        gort_fd_close(ln);
        atomic_store(&serving, 0);
        return r < 0 ? r : -EINVAL;
    }
    gort_go(accept_loop, h2p(ln));
    return port;
}

/* GORT_DEBUG_ADDR=host:port, from gort_main before the main goroutine is
 * created: the port is bound now (":0" picks one; the line on stderr says
 * which), and the accept goroutine runs once the world starts. */
void gort__debug_env_start(void)
{
    const char *a = getenv("GORT_DEBUG_ADDR");
    if (!a || !*a || atomic_load(&serving))
        return;
    int r = gort_debug_serve(a);
    char msg[400];
    if (r > 0) {
        char host[300];
        snprintf(host, sizeof host, "%s", a[0] == ':' ? "127.0.0.1" : a);
        char *c = a[0] == ':' ? NULL : strrchr(host, ':');
        if (c)
            *c = 0;
        snprintf(msg, sizeof msg, "gort: debug server on http://%s:%d/debug/pprof/\n", host, r);
    } else {
        snprintf(msg, sizeof msg, "gort: GORT_DEBUG_ADDR=%.300s: %s\n", a, strerror(-r));
    }
    gort__write_str(2, msg);
}
