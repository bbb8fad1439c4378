/*
 * http.c: `gortprof -http=HOST:PORT PROFILE`, a small web UI.
 *
 * Pages: / (the top table, each name linking to its source), /flame (the
 * interactive flame graph of flame.c), /source?n=NAME (the list report of
 * one function, as text in <pre>).  The profile is decoded once; each
 * request renders from the open view into a memory stream and is answered
 * with Content-Length and Connection: close.
 *
 * Security: an empty HOST (-http=:8080) binds 127.0.0.1, never all
 * interfaces; a profile's names reach pages only through gp_xml_escape.
 * One request at a time, with a 5-second read timeout per connection, so a
 * stalled client delays others but cannot wedge the server.
 *
 * Rejected: a thread per connection (a local viewer has one user), and
 * pprof's graph view (needs Graphviz; the flame graph carries the same
 * information for CPU profiles).
 */
#include "gortprof.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static const char page_head[] =
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>gortprof</title><style>"
    "body{font-family:Verdana,sans-serif;margin:12px}table{border-collapse:collapse}"
    "td,th{padding:2px 8px;text-align:right;font-family:monospace}td:last-child{text-align:left}"
    "tr:nth-child(even){background:#f4f4f4}nav a{margin-right:12px}pre{font-size:12px}"
    "</style></head><body><nav><a id=\"nav-top\" href=\"/\">top</a><a id=\"nav-flame\" href=\"/flame\">"
    "flame graph</a></nav>\n";

/* NAME as an anchored extended regex matching only itself. */
static void quote_regex(const char *name, char *out, size_t outlen)
{
    size_t k = 0;
    out[k++] = '^';
    for (; *name && k + 4 < outlen; name++) {
        if (strchr(".[]{}()\\*+?^$|", *name))
            out[k++] = '\\';
        out[k++] = *name;
    }
    out[k++] = '$';
    out[k] = 0;
}

/* Escapes text for <pre>: gp_xml_escape would drop the newlines. */
static void pre_escape(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", out);
        else if (*s == '>')
            fputs("&gt;", out);
        else if (*s == '&')
            fputs("&amp;", out);
        else if ((unsigned char)*s < 0x20 && *s != '\n' && *s != '\t')
            fputc('?', out);
        else
            fputc(*s, out);
    }
}

static void send_all(int fd, const char *b, size_t n)
{
    while (n) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        b += w;
        n -= (size_t)w;
    }
}

static void respond(int fd, int code, const char *type, const char *body, size_t n)
{
    char h[256];
    int hl = snprintf(h, sizeof h,
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                      code, code == 200 ? "OK" : code == 404 ? "Not Found" : "Bad Request", type, n);
    send_all(fd, h, (size_t)hl);
    send_all(fd, body, n);
}

/* The request's path (still %-encoded, without its query) is p. */
static bool path_is(const gort__httpreq_t *r, const char *p)
{
    return r->path_len == strlen(p) && !memcmp(r->path, p, r->path_len);
}

static void serve(int fd, const gp_view_t *v, const gp_opts_t *o)
{
    char buf[8192];
    size_t n = 0;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    gort__httpreq_t req;
    int st;
    while ((st = gort__http_parse(buf, n, &req)) == GORT_HTTP_MORE && n < sizeof buf) {
        ssize_t r = recv(fd, buf + n, sizeof buf - n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    if (st != 200 || req.method != HTTP_GET) {
        respond(fd, 400, "text/plain", "bad request\n", 12);
        return;
    }
    char *body = NULL;
    size_t blen = 0;
    FILE *out = open_memstream(&body, &blen);
    if (!out)
        return;
    int code = 200;
    const char *type = "text/html; charset=utf-8";
    if (path_is(&req, "/")) {
        fputs(page_head, out);
        fprintf(out, "<h1>");
        gp_xml_escape(out, gp_type_name(v));
        fprintf(out, "</h1>\n<pre id=\"header\">");
        char *hb = NULL;
        size_t hn = 0;
        FILE *hf = open_memstream(&hb, &hn);
        if (hf) {
            gp_print_header(hf, v);
            fclose(hf);
            pre_escape(out, hb);
            free(hb);
        }
        fprintf(out, "</pre>\n");
        gp_top_html(v, out);
        fprintf(out, "</body></html>\n");
    } else if (path_is(&req, "/flame")) {
        gp_flame_write(v, out, true, "gortprof flame graph");
    } else if (path_is(&req, "/source")) {
        char name[1024], re[2100];
        if (!gort__http_query(req.query, req.query_len, "n", name, sizeof name))
            name[0] = 0;
        quote_regex(name, re, sizeof re);
        char *lb = NULL;
        size_t ln = 0;
        FILE *lf = open_memstream(&lb, &ln);
        if (lf) {
            /* list reports a miss on stderr; the page says it instead. */
            if (gp_list_view(v, o, re, lf) != 0)
                fprintf(lf, "no samples in %s\n", name);
            fclose(lf);
        }
        fputs(page_head, out);
        fprintf(out, "<h2>");
        gp_xml_escape(out, name);
        fprintf(out, "</h2><pre id=\"source\">");
        pre_escape(out, lb ? lb : "");
        fprintf(out, "</pre></body></html>\n");
        free(lb);
    } else {
        code = 404;
        type = "text/plain";
        fputs("not found\n", out);
    }
    fclose(out);
    respond(fd, code, type, body, blen);
    free(body);
}

int gp_cmd_http(const gp_opts_t *o, const char *path)
{
    char host[256];
    const char *colon = strrchr(o->http, ':');
    if (!colon)
        return gp_fail("-http=%s: want HOST:PORT (e.g. -http=:8080)", o->http);
    size_t hl = (size_t)(colon - o->http);
    if (hl >= sizeof host)
        return gp_fail("-http: host name too long");
    memcpy(host, o->http, hl);
    host[hl] = 0;
    if (!hl)
        strcpy(host, "127.0.0.1");
    gp_view_t v;
    int rc = gp_view_open(&v, path, o);
    if (rc)
        return rc;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai;
    int e = getaddrinfo(host, colon + 1, &hints, &ai);
    if (e) {
        gp_view_close(&v);
        return gp_fail("-http=%s: %s", o->http, gai_strerror(e));
    }
    int ls = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (ls >= 0)
        setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ls < 0 || bind(ls, ai->ai_addr, ai->ai_addrlen) != 0 || listen(ls, 16) != 0) {
        int err = errno;
        freeaddrinfo(ai);
        if (ls >= 0)
            close(ls);
        gp_view_close(&v);
        return gp_fail("-http=%s: %s", o->http, strerror(err));
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char shown[300] = "";
    char addr[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (getsockname(ls, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof addr);
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
            snprintf(shown, sizeof shown, "%s:%d", addr, port);
        } else {
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof addr);
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
            snprintf(shown, sizeof shown, "[%s]:%d", addr, port);
        }
    }
    /* The line tests and scripts wait for (with -http=:0 it names the port). */
    printf("Serving web UI on http://%s\n", shown);
    if (!o->no_browser)
        printf("Open it in a browser; Ctrl-C stops.\n");
    fflush(stdout);
    signal(SIGPIPE, SIG_IGN);
    for (;;) {
        int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE)
                continue;
            break;
        }
        serve(c, &v, o);
        close(c);
    }
    int err = errno;
    close(ls);
    gp_view_close(&v);
    return gp_fail("-http: accept: %s", strerror(err));
}
