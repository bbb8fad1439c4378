/*
 * debugpages.c: the pages of the debug endpoint, as Go's net/http/pprof
 * serves them, plus gort's own.
 *
 *   /debug/pprof/                  HTML index: each profile, its count, a line on it
 *   /debug/pprof/profile?seconds=N CPU profile (default 30 s); a second at once: 500,
 *                                  "Could not enable CPU profiling: cpu profiling already in use"
 *   /debug/pprof/goroutine?debug=  0 gzipped proto, 1 text by stack, 2 the dump (SIGQUIT's format)
 *   /debug/pprof/block, mutex      as Go's, debug=0 or 1
 *   /debug/pprof/threadcreate      threads created (gort records no creation stacks)
 *   /debug/pprof/trace?seconds=N   the execution trace (prof/trace.c), Go 1.19's format
 *   /debug/pprof/cmdline           argv joined by NUL bytes
 *   /debug/pprof/symbol            GET and POST: "num_symbols: 1", then "0xPC name" lines
 *   /debug/pprof/heap, allocs      404 with a line: gort has no heap profile
 *   /debug/gort/stats              gort_stats as one JSON object
 *   /debug/gort/schedtrace?seconds=N[&ms=M][&detail=1]
 *                                  GORT_DEBUG=schedtrace lines every M ms for N s
 *
 * Content types, Content-Disposition, the X-Go-Pprof header on errors and
 * the error texts are Go's, so tools written against Go (go tool pprof,
 * Parca, Pyroscope, Grafana's scrapers) read these pages as they read Go's.
 * GET and HEAD are served everywhere, POST only by symbol: others get 405.
 *
 * The profile writers take a file descriptor; pages capture them through a
 * memfd, so a writer never blocks on the client (the server writes the
 * finished page under its write deadline).
 *
 * Rejected: "?seconds=N" delta profiles of block, mutex and goroutine (Go
 * subtracts two snapshots).  Scrapers take the cumulative profile and
 * subtract themselves; the CPU profile, which must be taken over time, is
 * served.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "debughttp.h"
#include "gort_prof.h"
#include "profiles.h"
#include "runtime.h"
#include "symtab.h"

/* ------------------------------------------------------------------ */
/* Buffers                                                              */
/* ------------------------------------------------------------------ */

static bool dbuf_reserve(gort__dbuf_t *b, size_t n)
{
    if (b->oom)
        return false;
    if (b->len + n + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void gort__dbuf_put(gort__dbuf_t *b, const void *s, size_t n)
{
    if (!dbuf_reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void gort__dbuf_str(gort__dbuf_t *b, const char *s) { gort__dbuf_put(b, s, strlen(s)); }

void gort__dbuf_printf(gort__dbuf_t *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        gort__dbuf_put(b, small, (size_t)n);
        return;
    }
    if (!dbuf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void gort__dbuf_free(gort__dbuf_t *b)
{
    free(b->p);
    *b = (gort__dbuf_t){0};
}

/* Appends what fd (a memfd) holds. */
static int dbuf_slurp(gort__dbuf_t *b, int fd)
{
    off_t end = lseek(fd, 0, SEEK_END);
    if (end < 0 || lseek(fd, 0, SEEK_SET) < 0)
        return -errno;
    if (!dbuf_reserve(b, (size_t)end))
        return -ENOMEM;
    size_t got = 0;
    while (got < (size_t)end) {
        ssize_t r = pread(fd, b->p + b->len + got, (size_t)end - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -errno : -EIO;
        got += (size_t)r;
    }
    b->len += got;
    b->p[b->len] = 0;
    return 0;
}

static int memfd(void)
{
    int fd = memfd_create("gort-debug", MFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* ------------------------------------------------------------------ */
/* Responses                                                            */
/* ------------------------------------------------------------------ */

static const char text_type[] = "text/plain; charset=utf-8";
static const char octet_type[] = "application/octet-stream";

void gort__debug_error(gort__dresp_t *resp, int status, const char *text)
{
    gort__dbuf_free(&resp->body);
    resp->status = status;
    resp->type = text_type;
    resp->filename[0] = 0;
    resp->go_pprof_error = true;
    gort__dbuf_str(&resp->body, text);
    gort__dbuf_str(&resp->body, "\n");
}

static void ok(gort__dresp_t *resp, const char *type)
{
    resp->status = 200;
    resp->type = type;
}

static int64_t param_int(const gort__httpreq_t *req, const char *name, int64_t dflt, bool *bad)
{
    char v[32];
    if (!gort__http_query(req->query, req->query_len, name, v, sizeof v))
        return dflt;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end || errno) {
        if (bad)
            *bad = true;
        return dflt;
    }
    return x;
}

/* ------------------------------------------------------------------ */
/* The pages                                                            */
/* ------------------------------------------------------------------ */

/* Profile names in the index, sorted, with Go's descriptions. */
static const struct {
    const char *name, *desc;
} index_rows[] = {
    {"block", "Stack traces that led to blocking on synchronization primitives"},
    {"cmdline", "The command line invocation of the current program"},
    {"goroutine", "Stack traces of all current goroutines"},
    {"mutex", "Stack traces of holders of contended mutexes"},
    {"profile", "CPU profile. You can specify the duration in the seconds GET parameter. After you get the "
                "profile file, use the go tool pprof command to investigate the profile."},
    {"threadcreate", "Stack traces that led to the creation of new OS threads"},
    {"trace", "A trace of execution of the current program. You can specify the duration in the seconds GET "
              "parameter. After you get the trace file, use the go tool trace command to investigate the trace."},
};

static int index_count(const char *name)
{
    if (!strcmp(name, "goroutine"))
        return gort_numgoroutine();
    if (!strcmp(name, "block") || !strcmp(name, "mutex")) {
        int n = gort__prof_records(name);
        return n < 0 ? 0 : n;
    }
    if (!strcmp(name, "threadcreate")) {
        gort_stats st;
        gort_stats_get(&st);
        return (int)st.threads;
    }
    return 0;
}

/* Go's template, row for row (net/http/pprof indexTmplExecute), with
 * gort's pages added below the profiles.  Nothing in it comes from the
 * request or the program, so nothing needs escaping. */
static void page_index(gort__dresp_t *resp)
{
    gort__dbuf_t *b = &resp->body;
    gort__dbuf_str(b, "<html>\n<head>\n<title>/debug/pprof/</title>\n<style>\n.profile-name{\n"
                      "\tdisplay:inline-block;\n\twidth:6rem;\n}\n</style>\n</head>\n<body>\n"
                      "/debug/pprof/<br>\n<br>\nTypes of profiles available:\n<table>\n"
                      "<thead><td>Count</td><td>Profile</td></thead>\n");
    size_t n = sizeof index_rows / sizeof index_rows[0];
    for (size_t i = 0; i < n; i++)
        gort__dbuf_printf(b, "<tr><td>%d</td><td><a href='%s?debug=1'>%s</a></td></tr>\n",
                          index_count(index_rows[i].name), index_rows[i].name, index_rows[i].name);
    gort__dbuf_str(b, "</table>\n<a href=\"goroutine?debug=2\">full goroutine stack dump</a>\n<br>\n"
                      "<p>\nProfile Descriptions:\n<ul>\n");
    for (size_t i = 0; i < n; i++)
        gort__dbuf_printf(b, "<li><div class=profile-name>%s: </div> %s</li>\n", index_rows[i].name,
                          index_rows[i].desc);
    gort__dbuf_str(b, "</ul>\n</p>\n<p>\ngort:\n<ul>\n"
                      "<li><a href=\"/debug/gort/stats\">/debug/gort/stats</a>: scheduler counters (gort_stats) "
                      "as JSON</li>\n"
                      "<li><a href=\"/debug/gort/schedtrace?seconds=1\">/debug/gort/schedtrace?seconds=N</a>: "
                      "GORT_DEBUG=schedtrace lines for N seconds</li>\n"
                      "<li>heap, allocs: gort has no heap profile</li>\n</ul>\n</p>\n</body>\n</html>");
    ok(resp, "text/html; charset=utf-8");
}

static void page_cmdline(gort__dresp_t *resp)
{
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char buf[4096];
        ssize_t r;
        while ((r = read(fd, buf, sizeof buf)) > 0)
            gort__dbuf_put(&resp->body, buf, (size_t)r);
        close(fd);
    }
    /* The kernel ends every argument with a NUL; Go joins them with one. */
    if (resp->body.len && resp->body.p[resp->body.len - 1] == 0)
        resp->body.len--;
    ok(resp, text_type);
}

static _Atomic int cpu_busy; /* a profile?seconds=N runs */

static void page_profile(const gort__httpreq_t *req, gort__dresp_t *resp)
{
    int64_t sec = param_int(req, "seconds", 30, NULL);
    if (sec <= 0)
        sec = 30;
    int fd = memfd();
    if (fd < 0) {
        gort__debug_error(resp, 500, "Could not enable CPU profiling: cannot create a buffer");
        return;
    }
    int r = -EBUSY;
    if (atomic_exchange(&cpu_busy, 1) == 0) {
        r = gort__cpuprofile_start_fd(fd, 100);
        if (r < 0)
            atomic_store(&cpu_busy, 0);
    }
    if (r < 0) {
        close(fd);
        char msg[128];
        snprintf(msg, sizeof msg, "Could not enable CPU profiling: %s",
                 r == -EBUSY ? "cpu profiling already in use" : strerror(-r));
        gort__debug_error(resp, 500, msg);
        return;
    }
    gort_sleep(sec * 1000000000LL);
    r = gort_cpuprofile_stop();
    atomic_store(&cpu_busy, 0);
    if (r == 0)
        r = dbuf_slurp(&resp->body, fd);
    close(fd);
    if (r < 0) {
        gort__debug_error(resp, 500, "Could not write the CPU profile");
        return;
    }
    ok(resp, octet_type);
    snprintf(resp->filename, sizeof resp->filename, "profile");
}

/* Go's Trace: seconds is a float (default 1). */
static void page_trace(const gort__httpreq_t *req, gort__dresp_t *resp)
{
    char v[32];
    double sec = 0;
    if (gort__http_query(req->query, req->query_len, "seconds", v, sizeof v)) {
        char *end;
        sec = strtod(v, &end);
        if (end == v || *end || !(sec > 0) || sec > 1e9)
            sec = 0;
    }
    if (sec <= 0)
        sec = 1;
    int fd = memfd();
    if (fd < 0) {
        gort__debug_error(resp, 500, "Could not enable tracing: cannot create a buffer");
        return;
    }
    int r = gort_trace_start(fd);
    if (r < 0) {
        close(fd);
        char msg[128];
        snprintf(msg, sizeof msg, "Could not enable tracing: %s",
                 r == -EBUSY ? "tracing is already enabled" : strerror(-r));
        gort__debug_error(resp, 500, msg);
        return;
    }
    gort_sleep((int64_t)(sec * 1e9));
    r = gort_trace_stop();
    if (r == 0)
        r = dbuf_slurp(&resp->body, fd);
    close(fd);
    if (r < 0) {
        gort__debug_error(resp, 500, "Could not write the trace");
        return;
    }
    ok(resp, octet_type);
    snprintf(resp->filename, sizeof resp->filename, "trace");
}

/* Go's Symbol: words separated by '+', each a PC in C's notation. */
static void page_symbol(const gort__httpreq_t *req, const char *body, size_t blen, gort__dresp_t *resp)
{
    gort__dbuf_t *b = &resp->body;
    gort__dbuf_str(b, "num_symbols: 1\n");
    const char *s = req->method == HTTP_POST ? body : req->query;
    size_t n = req->method == HTTP_POST ? blen : req->query_len;
    gort__symtab_init();
    for (size_t i = 0; s && i < n;) {
        const char *plus = memchr(s + i, '+', n - i);
        size_t e = plus ? (size_t)(plus - s) : n;
        char word[32];
        if (e - i < sizeof word) {
            memcpy(word, s + i, e - i);
            word[e - i] = 0;
            char *end;
            uintptr_t pc = (uintptr_t)strtoull(word, &end, 0);
            gort_frame_t f[8];
            if (pc && end != word && !*end && gort__symbolize(pc, f, 8, 0) > 0 && strcmp(f[0].func, "?") != 0)
                gort__dbuf_printf(b, "%#" PRIxPTR " %s\n", pc, f[0].func);
        }
        i = e + 1;
    }
    ok(resp, text_type);
}

/* gort records no thread-creation stacks: one sample holds the count. */
static int threadcreate_write(int fd, int debug)
{
    gort_stats st;
    gort_stats_get(&st);
    if (debug > 0) {
        char line[160];
        int n = snprintf(line, sizeof line, "threadcreate profile: total %" PRIu64 "\n%" PRIu64 " @\n#\n",
                         st.threads, st.threads);
        return gort__write_all(fd, line, (size_t)n);
    }
    gort__pprof_t *p = gort__pprof_new();
    if (!p)
        return -ENOMEM;
    int err = gort__pprof_add_sample_type(p, "threadcreate", "count");
    if (!err)
        err = gort__pprof_set_period(p, "threadcreate", "count", 1);
    int64_t f = err ? -1 : gort__pprof_add_function(p, "[threads; gort records no creation stacks]",
                                                     "[threads; gort records no creation stacks]", "", 0);
    gort__pprof_line_t line = {.func = f < 0 ? 0 : (uint32_t)f};
    int64_t loc = f < 0 ? -1 : gort__pprof_add_location(p, GORT__PPROF_NONE, 0, &line, 1);
    if (loc < 0) {
        err = err ? err : -ENOMEM;
    } else {
        uint32_t l = (uint32_t)loc;
        int64_t v = (int64_t)st.threads;
        err = gort__pprof_add_sample(p, &l, 1, &v, NULL, 0);
    }
    if (!err)
        err = gort__pprof_write(p, fd, true);
    gort__pprof_free(p);
    return err;
}

static void page_named(const char *name, const gort__httpreq_t *req, gort__dresp_t *resp)
{
    if (!strcmp(name, "heap") || !strcmp(name, "allocs")) {
        gort__debug_error(resp, 404, "gort has no heap profile: it does not allocate for the program "
                                     "(use heaptrack, jemalloc's or tcmalloc's profiler)");
        return;
    }
    bool known = !strcmp(name, "goroutine") || !strcmp(name, "block") || !strcmp(name, "mutex") ||
                 !strcmp(name, "threadcreate");
    if (!known) {
        gort__debug_error(resp, 404, "Unknown profile");
        return;
    }
    char sv[32];
    if (gort__http_query(req->query, req->query_len, "seconds", sv, sizeof sv)) {
        gort__debug_error(resp, 400, "\"seconds\" parameter is not supported for this profile type "
                                     "(gort serves cumulative profiles)");
        return;
    }
    int debug = (int)param_int(req, "debug", 0, NULL);
    int fd = memfd();
    int r = fd;
    if (fd >= 0) {
        r = !strcmp(name, "threadcreate") ? threadcreate_write(fd, debug) : gort_profile_write(name, fd, debug);
        if (r == 0)
            r = dbuf_slurp(&resp->body, fd);
        close(fd);
    }
    if (r < 0) {
        gort__debug_error(resp, 500, "failed to collect profile");
        return;
    }
    if (debug != 0) {
        ok(resp, text_type);
    } else {
        ok(resp, octet_type);
        snprintf(resp->filename, sizeof resp->filename, "%.24s", name);
    }
}

/* gort_stats, field by field: the assertion stops the build when a field
 * is added to the struct and not here. */
#define F(x) {#x, offsetof(gort_stats, x)}
static const struct {
    const char *name;
    size_t off;
} stat_fields[] = {
    F(goroutines_created), F(goroutines_live), F(context_switches), F(steals), F(stolen_goroutines),
    F(global_runq_gets), F(threads), F(threads_idle), F(spinning_threads), F(procs), F(idle_procs),
    F(preempt_requested), F(preempt_signals), F(preempt_done), F(preempt_coop), F(preempt_unsafe_runtime),
    F(preempt_unsafe_frame), F(preempt_unsafe_nopreempt), F(syscalls), F(handoffs), F(unwrapped_blocks),
    F(timers_fired), F(stacks_allocated), F(stacks_cached), F(migrations), F(preempt_refused_lock),
    F(preempt_refused_nopreempt), F(stw_count), F(stw_pause_total_ns), F(stw_pause_max_ns),
    F(sysmon_rounds), F(sysmon_cpu_ns), F(sysmon_syscalls), F(lock_contended),
};
#undef F
_Static_assert(sizeof(gort_stats) == sizeof stat_fields / sizeof stat_fields[0] * sizeof(uint64_t),
               "a gort_stats field is missing from /debug/gort/stats");

static void page_stats(gort__dresp_t *resp)
{
    gort_stats st;
    gort_stats_get(&st);
    gort__dbuf_str(&resp->body, "{");
    for (size_t i = 0; i < sizeof stat_fields / sizeof stat_fields[0]; i++) {
        uint64_t v;
        memcpy(&v, (const char *)&st + stat_fields[i].off, sizeof v);
        gort__dbuf_printf(&resp->body, "%s\n  \"%s\": %" PRIu64, i ? "," : "", stat_fields[i].name, v);
    }
    gort__dbuf_str(&resp->body, "\n}\n");
    ok(resp, "application/json");
}

static void page_schedtrace(const gort__httpreq_t *req, gort__dresp_t *resp)
{
    int64_t sec = param_int(req, "seconds", 1, NULL);
    int64_t ms = param_int(req, "ms", 1000, NULL);
    bool detail = param_int(req, "detail", 0, NULL) != 0;
    if (sec < 0)
        sec = 1;
    if (ms < 10)
        ms = 10;
    int fd = memfd();
    if (fd < 0) {
        gort__debug_error(resp, 500, "cannot create a buffer");
        return;
    }
    /* A line at the start and one every ms until seconds have passed. */
    int64_t end = gort_nanotime() + sec * 1000000000LL;
    for (;;) {
        gort__schedtrace(fd, detail);
        int64_t left = end - gort_nanotime();
        if (left <= 0)
            break;
        gort_sleep(left < ms * 1000000 ? left : ms * 1000000);
    }
    int r = dbuf_slurp(&resp->body, fd);
    close(fd);
    if (r < 0) {
        gort__debug_error(resp, 500, "cannot read the trace");
        return;
    }
    ok(resp, text_type);
}

static bool is(const char *path, const char *want) { return !strcmp(path, want); }

void gort__debug_handle(const gort__httpreq_t *req, const char *body, size_t blen, gort__dresp_t *resp)
{
    char path[256];
    resp->status = 500;
    resp->type = text_type;
    if (gort__http_unescape(req->path, req->path_len, false, path, sizeof path) < 0) {
        gort__debug_error(resp, 404, "404 page not found");
        return;
    }
    bool symbol = is(path, "/debug/pprof/symbol");
    if (req->method != HTTP_GET && req->method != HTTP_HEAD && !(symbol && req->method == HTTP_POST)) {
        resp->allow = symbol ? "GET, HEAD, POST" : "GET, HEAD";
        gort__debug_error(resp, 405, "method not allowed");
        return;
    }
    static const char pre[] = "/debug/pprof/";
    if (is(path, "/debug/pprof")) {
        resp->location = "/debug/pprof/";
        gort__debug_error(resp, 301, "Moved Permanently");
        resp->go_pprof_error = false;
    } else if (is(path, pre)) {
        page_index(resp);
    } else if (is(path, "/debug/pprof/cmdline")) {
        page_cmdline(resp);
    } else if (is(path, "/debug/pprof/profile")) {
        page_profile(req, resp);
    } else if (is(path, "/debug/pprof/trace")) {
        page_trace(req, resp);
    } else if (symbol) {
        page_symbol(req, body, blen, resp);
    } else if (!strncmp(path, pre, sizeof pre - 1)) {
        page_named(path + sizeof pre - 1, req, resp);
    } else if (is(path, "/debug/gort/stats")) {
        page_stats(resp);
    } else if (is(path, "/debug/gort/schedtrace")) {
        page_schedtrace(req, resp);
    } else {
        gort__debug_error(resp, 404, "404 page not found");
        resp->go_pprof_error = false;
    }
    if (resp->body.oom)
        gort__debug_error(resp, 500, "out of memory");
}
