/*
 * fetch.c: gortprof reads a profile from a URL wherever it reads a file
 * (`gortprof top http://127.0.0.1:6060/debug/pprof/profile?seconds=5`).
 *
 * A small HTTP/1.1 client on plain blocking sockets: one GET with
 * "Connection: close", the answer read to its Content-Length, to the end of
 * a chunked body (Go's servers stream profiles chunked), or to EOF.  The
 * body goes to a temporary file that every report then opens as it opens
 * any profile; the file is removed at exit.  A status other than 200 is an
 * error that quotes the server's first line of text (Go's pprof handlers
 * explain themselves there: "Could not enable CPU profiling: cpu profiling
 * already in use").
 *
 * Limits: the answer's headers at most 64 KiB, its body at most 1 GiB (the
 * codec's own limit on a decoded profile); the receive timeout is a minute
 * plus the seconds= the URL asks the server to wait.
 *
 * Rejected: libcurl (a dependency for one GET on loopback, and gortprof is
 * otherwise libc, zlib and libdw) and https (a debug port is on loopback or
 * behind the operator's own tunnel; curl -o covers the rest).
 */
#include "gortprof.h"

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define MAX_HEAD (64 * 1024)
#define MAX_BODY (1u << 30)
#define MAX_TEMPS 8

static char *temps[MAX_TEMPS];
static int ntemps;

static void remove_temps(void)
{
    for (int i = 0; i < ntemps; i++) {
        unlink(temps[i]);
        free(temps[i]);
    }
    ntemps = 0;
}

bool gp_is_url(const char *s) { return !strncmp(s, "http://", 7) || !strncmp(s, "https://", 8); }

/* A connection with a read buffer. */
typedef struct conn {
    int fd;
    char buf[16384];
    size_t off, len;
} conn_t;

static int fill(conn_t *c)
{
    if (c->off < c->len)
        return 1;
    for (;;) {
        ssize_t r = recv(c->fd, c->buf, sizeof c->buf, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        c->off = 0;
        c->len = (size_t)r;
        return r > 0;
    }
}

/* Reads one line (without CRLF) into out; -1 on EOF or a line too long. */
static int read_line(conn_t *c, char *out, size_t n, size_t *budget)
{
    size_t k = 0;
    for (;;) {
        int f = fill(c);
        if (f <= 0)
            return f < 0 ? f : -EPROTO;
        char ch = c->buf[c->off++];
        if (*budget == 0)
            return -E2BIG;
        (*budget)--;
        if (ch == '\n')
            break;
        if (k + 1 >= n)
            return -E2BIG;
        out[k++] = ch;
    }
    if (k && out[k - 1] == '\r')
        k--;
    out[k] = 0;
    return 0;
}

/* Copies n bytes (or to EOF when n is SIZE_MAX) to f. */
static int copy_body(conn_t *c, FILE *f, size_t n, size_t *total)
{
    while (n) {
        int r = fill(c);
        if (r < 0)
            return r;
        if (r == 0)
            return n == SIZE_MAX ? 0 : -EPROTO;
        size_t k = c->len - c->off;
        if (k > n)
            k = n;
        if ((*total += k) > MAX_BODY)
            return -EFBIG;
        if (fwrite(c->buf + c->off, 1, k, f) != k)
            return -EIO;
        c->off += k;
        if (n != SIZE_MAX)
            n -= k;
    }
    return 0;
}

static int copy_chunked(conn_t *c, FILE *f, size_t *total)
{
    char line[256];
    for (;;) {
        size_t budget = sizeof line + 2;
        int r = read_line(c, line, sizeof line, &budget);
        if (r < 0)
            return r;
        char *end;
        unsigned long long n = strtoull(line, &end, 16);
        if (end == line || n > MAX_BODY)
            return -EPROTO;
        if (n == 0)
            return 0; /* trailers, if any, are not needed */
        r = copy_body(c, f, (size_t)n, total);
        if (r < 0)
            return r;
        budget = 4;
        r = read_line(c, line, sizeof line, &budget);
        if (r < 0 || line[0])
            return -EPROTO;
    }
}

/* Splits http://HOST[:PORT]/PATH into its parts; "[v6]" hosts too. */
static int split_url(const char *url, char *host, size_t hn, char *port, size_t pn, const char **path)
{
    const char *h = url + 7, *slash = strchr(h, '/');
    *path = slash ? slash : "/";
    size_t hl = slash ? (size_t)(slash - h) : strlen(h);
    const char *colon = NULL;
    if (hl && h[0] == '[') {
        const char *rb = memchr(h, ']', hl);
        if (!rb)
            return -1;
        colon = rb + 1 < h + hl && rb[1] == ':' ? rb + 1 : NULL;
        if ((size_t)(rb - h - 1) >= hn)
            return -1;
        memcpy(host, h + 1, (size_t)(rb - h - 1));
        host[rb - h - 1] = 0;
    } else {
        colon = memchr(h, ':', hl);
        size_t l = colon ? (size_t)(colon - h) : hl;
        if (l == 0 || l >= hn)
            return -1;
        memcpy(host, h, l);
        host[l] = 0;
    }
    size_t pl = colon ? (size_t)(h + hl - colon - 1) : 2;
    if (pl == 0 || pl >= pn)
        return -1;
    if (colon) {
        memcpy(port, colon + 1, pl);
        port[pl] = 0;
    } else {
        strcpy(port, "80");
    }
    return 0;
}

static int dial(const char *host, const char *port, int timeout_s, const char *url)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai, *a;
    int e = getaddrinfo(host, port, &hints, &ai);
    if (e)
        return -gp_fail("%s: %s", url, gai_strerror(e));
    int fd = -1, err = 0;
    for (a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            err = errno;
            continue;
        }
        struct timeval tv = {timeout_s, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        struct timeval stv = {60, 0};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &stv, sizeof stv);
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return -gp_fail("%s: %s", url, strerror(err));
    return fd;
}

/* Reads the answer on c into f; 0, or 1 after printing the error. */
static int read_answer(conn_t *c, FILE *f, const char *url)
{
    char line[4096];
    size_t budget = MAX_HEAD;
    int r = read_line(c, line, sizeof line, &budget);
    int status = r < 0 ? -1 : gort__http_status_line(line, strlen(line));
    if (status < 0)
        return gp_fail("%s: %s", url, r < 0 && r != -EPROTO ? strerror(-r) : "not an HTTP answer");
    char reason[128];
    snprintf(reason, sizeof reason, "%s", line + (strlen(line) > 9 ? 9 : strlen(line)));
    bool chunked = false;
    long long clen = -1;
    for (;;) {
        r = read_line(c, line, sizeof line, &budget);
        if (r < 0)
            return gp_fail("%s: %s", url, r == -E2BIG ? "answer headers too long" : "answer cut short");
        if (!line[0])
            break;
        gort__httpfield_t h;
        if (!gort__http_field(line, strlen(line), &h))
            continue;
        if (gort__http_name_is(h.name, h.name_len, "content-length"))
            clen = strtoll(h.value, NULL, 10);
        else if (gort__http_name_is(h.name, h.name_len, "transfer-encoding") && strstr(h.value, "chunked"))
            chunked = true;
    }
    size_t total = 0;
    r = chunked ? copy_chunked(c, f, &total) : copy_body(c, f, clen >= 0 ? (size_t)clen : SIZE_MAX, &total);
    if (r < 0)
        return gp_fail("%s: reading the answer: %s", url,
                       r == -EFBIG ? "more than 1 GiB" : r == -EPROTO ? "cut short" : strerror(-r));
    if (status != 200) {
        /* The server's own explanation: its first line of text. */
        char msg[256] = "";
        if (fflush(f) == 0 && fseek(f, 0, SEEK_SET) == 0 && fgets(msg, sizeof msg, f))
            msg[strcspn(msg, "\r\n")] = 0;
        for (char *p = msg; *p; p++)
            if ((unsigned char)*p < 0x20)
                *p = '?';
        return gp_fail("%s: %s%s%s", url, reason, msg[0] ? ": " : "", msg);
    }
    return 0;
}

int gp_fetch(const char *url, const char **path)
{
    if (!strncmp(url, "https://", 8))
        return gp_fail("%s: https is not supported (fetch it with curl -o FILE and give the file)", url);
    char host[256], port[16];
    const char *target;
    if (split_url(url, host, sizeof host, port, sizeof port, &target) != 0)
        return gp_fail("%s: want http://HOST:PORT/PATH", url);
    for (const char *p = target; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return gp_fail("%s: the path may not hold spaces or control characters (escape them)", url);
    if (ntemps == MAX_TEMPS)
        return gp_fail("too many URLs");
    int timeout = 60;
    const char *sec = strstr(target, "seconds=");
    if (sec && (sec[-1] == '?' || sec[-1] == '&'))
        timeout += atoi(sec + 8) > 0 && atoi(sec + 8) < 86400 ? atoi(sec + 8) : 30;
    int fd = dial(host, port, timeout, url);
    if (fd < 0)
        return 1;
    char req[8192];
    bool v6 = strchr(host, ':') != NULL;
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: gortprof\r\nAccept-Encoding: identity\r\n"
                     "Connection: close\r\n\r\n",
                     target, v6 ? "[" : "", host, v6 ? "]" : "", port);
    if (n <= 0 || (size_t)n >= sizeof req) {
        close(fd);
        return gp_fail("%s: URL too long", url);
    }
    for (int off = 0; off < n;) {
        ssize_t w = send(fd, req + off, (size_t)(n - off), MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            return gp_fail("%s: %s", url, strerror(e));
        }
        off += (int)w;
    }
    const char *dir = getenv("TMPDIR");
    char *tpath = NULL;
    if (asprintf(&tpath, "%s/gortprof-XXXXXX", dir && *dir ? dir : "/tmp") < 0) {
        close(fd);
        return gp_fail("out of memory");
    }
    int tfd = mkstemp(tpath);
    FILE *f = tfd >= 0 ? fdopen(tfd, "w+") : NULL;
    if (!f) {
        int e = errno;
        close(fd);
        if (tfd >= 0) {
            close(tfd);
            unlink(tpath);
        }
        free(tpath);
        return gp_fail("temporary file: %s", strerror(e));
    }
    if (ntemps == 0)
        atexit(remove_temps);
    temps[ntemps++] = tpath;
    conn_t *c = malloc(sizeof *c);
    int rc = c ? 0 : gp_fail("out of memory");
    if (c) {
        c->fd = fd;
        c->off = c->len = 0;
        rc = read_answer(c, f, url);
        free(c);
    }
    close(fd);
    if (fclose(f) != 0 && rc == 0)
        rc = gp_fail("temporary file: %s", strerror(errno));
    if (rc == 0)
        *path = tpath;
    return rc;
}
