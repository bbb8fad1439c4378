/*
 * debughttp_test.c: the debug endpoint's request parser and pages, without
 * sockets (issue 23).
 *
 * The parser: complete, partial and pipelined requests; keep-alive rules
 * of 1.0 and 1.1; each refusal with its status (400, 413, 431, 501, 505);
 * the 64 KiB header limit at its edge; every prefix of a valid request
 * asks for more and never fails; the field and status lines gortprof's
 * client parses with the same code.  The pages: each path of Go's
 * net/http/pprof answers with Go's content type; goroutine?debug=2 is the
 * dump; a second CPU profile at once gets Go's "already in use"; heap
 * 404s with its line; /debug/gort/stats is JSON naming every counter.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debughttp.h"
#include "gort_prof.h"
#include "httpreq.h"
#include "pprof.h"
#include "test.h"

static int parse(const char *s, gort__httpreq_t *r) { return gort__http_parse(s, strlen(s), r); }

static void test_parse_basic(void)
{
    gort__httpreq_t r;
    const char *req = "GET /debug/pprof/profile?seconds=5 HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n\r\n";
    CU_ASSERT_EQUAL_FATAL(parse(req, &r), 200);
    CU_ASSERT_EQUAL(r.method, HTTP_GET);
    CU_ASSERT_EQUAL(r.path_len, strlen("/debug/pprof/profile"));
    CU_ASSERT(!memcmp(r.path, "/debug/pprof/profile", r.path_len));
    CU_ASSERT_EQUAL(r.query_len, strlen("seconds=5"));
    CU_ASSERT(r.keep_alive);
    CU_ASSERT_EQUAL(r.content_length, -1);
    CU_ASSERT_EQUAL(r.header_len, strlen("GET /debug/pprof/profile?seconds=5 HTTP/1.1\r\nHost: x\r\n\r\n"));
    /* The pipelined second request parses from where the first ended. */
    CU_ASSERT_EQUAL(gort__http_parse(req + r.header_len, strlen(req + r.header_len), &r), 200);
    CU_ASSERT_EQUAL(r.path_len, 1);
    CU_ASSERT_PTR_NULL(r.query);

    char v[16];
    CU_ASSERT(gort__http_query("debug=2&seconds=7", 17, "seconds", v, sizeof v));
    CU_ASSERT_STRING_EQUAL(v, "7");
    CU_ASSERT(gort__http_query("a=%41+b", 7, "a", v, sizeof v));
    CU_ASSERT_STRING_EQUAL(v, "A b");
    CU_ASSERT(!gort__http_query("ab=1", 4, "a", v, sizeof v));
    CU_ASSERT(!gort__http_query("a=%4", 4, "a", v, sizeof v));
    CU_ASSERT(!gort__http_query("a=%00", 5, "a", v, sizeof v));

    CU_ASSERT_EQUAL(parse("GET / HTTP/1.1\nConnection: close\n\n", &r), 200); /* bare LF */
    CU_ASSERT(!r.keep_alive);
    CU_ASSERT_EQUAL(parse("\r\n\r\nGET / HTTP/1.0\r\n\r\n", &r), 200);
    CU_ASSERT(!r.keep_alive);
    CU_ASSERT_EQUAL(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r), 200);
    CU_ASSERT(r.keep_alive);
    CU_ASSERT_EQUAL(parse("GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n", &r), 200);
    CU_ASSERT(!r.keep_alive);
    CU_ASSERT_EQUAL(parse("POST /debug/pprof/symbol HTTP/1.1\r\nContent-Length: 12\r\n\r\n", &r), 200);
    CU_ASSERT_EQUAL(r.method, HTTP_POST);
    CU_ASSERT_EQUAL(r.content_length, 12);
    CU_ASSERT_EQUAL(parse("DELETE / HTTP/1.1\r\n\r\n", &r), 200);
    CU_ASSERT_EQUAL(r.method, HTTP_OTHER);
}

static void test_parse_refusals(void)
{
    gort__httpreq_t r;
    static const struct {
        const char *req;
        int want;
    } cases[] = {
        {"GET / HTTP/1.1\r\n", GORT_HTTP_MORE},
        {"", GORT_HTTP_MORE},
        {"\x16\x03\x01\x02\xff\x01\xfc\x03\x03\n", 400}, /* a TLS hello */
        {"GET /\r\n\r\n", 400},
        {"GET  / HTTP/1.1\r\n\r\n", 400},
        {"GET x HTTP/1.1\r\n\r\n", 400},
        {"G(T / HTTP/1.1\r\n\r\n", 400},
        {"GET /a\x01 HTTP/1.1\r\n\r\n", 400},
        {"GET / HTTP/1.1 \r\n\r\n", 400},
        {"GET / HTTP/2.0\r\n\r\n", 505},
        {"GET / HTTP/1.2\r\n\r\n", 505},
        {"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\n: empty\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nA b: c\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nContent-Length: 65537\r\n\r\n", 413},
        {"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\n", 413},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = parse(cases[i].req, &r);
        if (got != cases[i].want)
            fprintf(stderr, "\n  case %zu: got %d, want %d\n", i, got, cases[i].want);
        CU_ASSERT_EQUAL(got, cases[i].want);
    }
}

/* The limit at its edge: headers of exactly 64 KiB parse, one more byte
 * (or a stream with no end) is 431; too many header lines is 431. */
static void test_parse_limits(void)
{
    gort__httpreq_t r;
    size_t max = GORT_HTTP_MAX_HEADER;
    char *b = malloc(max + 16);
    const char *head = "GET / HTTP/1.1\r\nX: ";
    size_t hl = strlen(head);
    memcpy(b, head, hl);
    memset(b + hl, 'a', max - hl - 4);
    memcpy(b + max - 4, "\r\n\r\n", 4);
    CU_ASSERT_EQUAL(gort__http_parse(b, max, &r), 200);
    CU_ASSERT_EQUAL(r.header_len, max);
    memset(b + hl, 'a', max - hl - 3);
    memcpy(b + max - 3, "\r\n\r\n", 4);
    CU_ASSERT_EQUAL(gort__http_parse(b, max + 1, &r), 431);
    CU_ASSERT_EQUAL(gort__http_parse(b, max - 1, &r), GORT_HTTP_MORE);
    memset(b + hl, 'a', max - hl);
    CU_ASSERT_EQUAL(gort__http_parse(b, max, &r), 431);
    free(b);

    gort__dbuf_t many = {0};
    gort__dbuf_str(&many, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < GORT_HTTP_MAX_FIELDS; i++)
        gort__dbuf_str(&many, "A: b\r\n");
    gort__dbuf_str(&many, "\r\n");
    CU_ASSERT_EQUAL(gort__http_parse(many.p, many.len, &r), 200);
    gort__dbuf_free(&many);
    gort__dbuf_str(&many, "GET / HTTP/1.1\r\n");
    for (int i = 0; i <= GORT_HTTP_MAX_FIELDS; i++)
        gort__dbuf_str(&many, "A: b\r\n");
    gort__dbuf_str(&many, "\r\n");
    CU_ASSERT_EQUAL(gort__http_parse(many.p, many.len, &r), 431);
    gort__dbuf_free(&many);
}

/* Every proper prefix of a valid request is "more", never an error: a
 * client's bytes may arrive split anywhere. */
static void test_parse_prefixes(void)
{
    const char *req = "\r\nPOST /debug/pprof/symbol?x=1 HTTP/1.1\r\nHost: 127.0.0.1:6060\r\n"
                      "Content-Length: 4\r\nConnection: keep-alive\r\n\r\n";
    gort__httpreq_t r;
    size_t n = strlen(req);
    for (size_t i = 0; i < n; i++)
        CU_ASSERT_EQUAL(gort__http_parse(req, i, &r), GORT_HTTP_MORE);
    CU_ASSERT_EQUAL(gort__http_parse(req, n, &r), 200);
}

/* The pieces gortprof's client and web UI share with the server: field
 * lines split and trimmed as the server splits them (a line the server
 * refuses is no field), names compared without case, status lines of
 * HTTP/1.0 and 1.1 only. */
static void test_parse_shared(void)
{
    gort__httpfield_t f;
    const char *line = "Content-Length: \t 42 \t";
    CU_ASSERT_FATAL(gort__http_field(line, strlen(line), &f));
    CU_ASSERT(gort__http_name_is(f.name, f.name_len, "content-length"));
    CU_ASSERT(!gort__http_name_is(f.name, f.name_len, "content-len"));
    CU_ASSERT(f.value_len == 2 && !memcmp(f.value, "42", 2));
    CU_ASSERT(gort__http_field("X:", 2, &f) && f.value_len == 0);
    static const char *const bad[] = {"", "NoColon", ": empty", "A b: c", " folded: x", "\tfolded: x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CU_ASSERT(!gort__http_field(bad[i], strlen(bad[i]), &f));

    static const struct {
        const char *line;
        int want;
    } st[] = {
        {"HTTP/1.1 200 OK", 200},
        {"HTTP/1.0 404 Not Found", 404},
        {"HTTP/1.1 500", 500},
        {"HTTP/1.1 503 ", 503},
        {"HTTP/2.0 200 OK", -1},
        {"HTTP/1.1 20 OK", -1},
        {"HTTP/1.1 2000 OK", -1},
        {"HTTP/1.1 099 x", -1},
        {"HTTP/1.1  200 OK", -1},
        {"http/1.1 200 OK", -1},
        {"SSH-2.0-OpenSSH_9.2", -1},
        {"", -1},
    };
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) {
        int got = gort__http_status_line(st[i].line, strlen(st[i].line));
        if (got != st[i].want)
            fprintf(stderr, "\n  \"%s\": got %d, want %d\n", st[i].line, got, st[i].want);
        CU_ASSERT_EQUAL(got, st[i].want);
    }
}

/* ---- pages ---- */

typedef struct page {
    const char *method, *target, *body;
    gort__dresp_t resp;
} page_t;

static void get_page(page_t *pg)
{
    char req[512];
    snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", pg->method ? pg->method : "GET",
             pg->target, pg->body ? strlen(pg->body) : 0);
    gort__httpreq_t r;
    memset(&pg->resp, 0, sizeof pg->resp);
    if (gort__http_parse(req, strlen(req), &r) != 200) {
        pg->resp.status = -1;
        return;
    }
    gort__debug_handle(&r, pg->body, pg->body ? strlen(pg->body) : 0, &pg->resp);
}

static gort_waitgroup parked_wg;
static gort_chan *park_ch;

__attribute__((noinline)) static void debughttp_parked(void *arg)
{
    (void)arg;
    gort_wg_done(&parked_wg);
    int x;
    gort_chan_recv(park_ch, &x);
    __asm__ volatile("" ::: "memory");
}

typedef struct pages_result {
    page_t idx, g0, g1, g2, heap, nope, stats, cmd, sym, symget, post405, redirect, cpu1, block, tc, sched, trace;
    int cpu2_status;
    char cpu2_text[200];
} pages_result_t;

#ifndef GORT_TSAN
static void cpu_second(void *arg)
{
    pages_result_t *pr = arg;
    page_t p = {.target = "/debug/pprof/profile?seconds=1"};
    gort_sleep(300 * 1000000); /* while the first runs */
    get_page(&p);
    pr->cpu2_status = p.resp.status;
    snprintf(pr->cpu2_text, sizeof pr->cpu2_text, "%s", p.resp.body.p ? p.resp.body.p : "");
    gort__dbuf_free(&p.resp.body);
    gort_wg_done(&parked_wg);
}
#endif

static void pages_body(void *arg)
{
    pages_result_t *pr = arg;
    park_ch = gort_chan_make(sizeof(int), 0);
    gort_wg_add(&parked_wg, 1);
    gort_go(debughttp_parked, NULL);
    gort_wg_wait(&parked_wg);
    pr->idx.target = "/debug/pprof/";
    pr->g0.target = "/debug/pprof/goroutine";
    pr->g1.target = "/debug/pprof/goroutine?debug=1";
    pr->g2.target = "/debug/pprof/goroutine?debug=2";
    pr->heap.target = "/debug/pprof/heap";
    pr->nope.target = "/debug/pprof/nope";
    pr->stats.target = "/debug/gort/stats";
    pr->cmd.target = "/debug/pprof/cmdline";
    char symq[128];
    snprintf(symq, sizeof symq, "/debug/pprof/symbol?%#lx+0x0+zz", (unsigned long)(uintptr_t)debughttp_parked);
    pr->symget.target = symq;
    char symbody[64];
    snprintf(symbody, sizeof symbody, "%#lx", (unsigned long)(uintptr_t)debughttp_parked);
    pr->sym = (page_t){.method = "POST", .target = "/debug/pprof/symbol", .body = symbody};
    pr->post405 = (page_t){.method = "POST", .target = "/debug/pprof/goroutine"};
    pr->redirect.target = "/debug/pprof";
    pr->block.target = "/debug/pprof/block?debug=1";
    pr->tc.target = "/debug/pprof/threadcreate";
    pr->sched.target = "/debug/gort/schedtrace?seconds=0";
    pr->trace.target = "/debug/pprof/trace?seconds=0.2";
    page_t *all[] = {&pr->idx,     &pr->g0,  &pr->g1,     &pr->g2,      &pr->heap,     &pr->nope,
                     &pr->stats,   &pr->cmd, &pr->symget, &pr->sym,     &pr->post405, &pr->redirect,
                     &pr->block,   &pr->tc,  &pr->sched,  &pr->trace};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        get_page(all[i]);
#ifndef GORT_TSAN /* SIGPROF waits for an intercepted call there */
    /* Two CPU profiles at once: the second is refused. */
    gort_wg_add(&parked_wg, 1);
    pr->cpu1.target = "/debug/pprof/profile?seconds=1";
    gort_go(cpu_second, pr);
    get_page(&pr->cpu1);
    gort_wg_wait(&parked_wg);
#endif
    gort_chan_close(park_ch);
}

static bool has(const page_t *p, const char *s) { return p->resp.body.p && strstr(p->resp.body.p, s); }

static void test_pages(void)
{
    pages_result_t *pr = calloc(1, sizeof *pr);
    GT_RUN(pages_body, pr);
    const char *text = "text/plain; charset=utf-8", *octet = "application/octet-stream";
    CU_ASSERT_EQUAL(pr->idx.resp.status, 200);
    CU_ASSERT_STRING_EQUAL(pr->idx.resp.type, "text/html; charset=utf-8");
    CU_ASSERT(has(&pr->idx, "<a href='goroutine?debug=1'>goroutine</a>"));
    CU_ASSERT(has(&pr->idx, "full goroutine stack dump"));
    CU_ASSERT_EQUAL(pr->g0.resp.status, 200);
    CU_ASSERT_STRING_EQUAL(pr->g0.resp.type, octet);
    CU_ASSERT_STRING_EQUAL(pr->g0.resp.filename, "goroutine");
    char err[200];
    gort__pprof_t *p = gort__pprof_decode(pr->g0.resp.body.p, pr->g0.resp.body.len, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL(p);
    gort__pprof_free(p);
    CU_ASSERT_STRING_EQUAL(pr->g1.resp.type, text);
    CU_ASSERT(has(&pr->g1, "goroutine profile: total "));
    CU_ASSERT(has(&pr->g1, "debughttp_parked"));
    CU_ASSERT(has(&pr->g2, "[chan receive]:\ngort_chan_recv("));
    CU_ASSERT(has(&pr->g2, "\ndebughttp_parked("));
    CU_ASSERT_EQUAL(pr->heap.resp.status, 404);
    CU_ASSERT(has(&pr->heap, "gort has no heap profile"));
    CU_ASSERT(pr->heap.resp.go_pprof_error);
    CU_ASSERT_EQUAL(pr->nope.resp.status, 404);
    CU_ASSERT(has(&pr->nope, "Unknown profile"));
    CU_ASSERT_STRING_EQUAL(pr->stats.resp.type, "application/json");
    CU_ASSERT(has(&pr->stats, "\"goroutines_live\": "));
    CU_ASSERT(has(&pr->stats, "\"preempt_refused_nopreempt\": "));
    CU_ASSERT(pr->cmd.resp.body.len > 0 && has(&pr->cmd, "gort-test"));
    CU_ASSERT(has(&pr->symget, "num_symbols: 1\n"));
    CU_ASSERT(has(&pr->symget, " debughttp_parked\n"));
    CU_ASSERT(has(&pr->sym, " debughttp_parked\n"));
    CU_ASSERT_EQUAL(pr->post405.resp.status, 405);
    CU_ASSERT_STRING_EQUAL(pr->post405.resp.allow, "GET, HEAD");
    CU_ASSERT_EQUAL(pr->redirect.resp.status, 301);
    CU_ASSERT(has(&pr->block, "--- contention:"));
    CU_ASSERT_EQUAL(pr->tc.resp.status, 200);
    CU_ASSERT(has(&pr->sched, "SCHED "));
    CU_ASSERT_EQUAL(pr->trace.resp.status, 200);
    CU_ASSERT_STRING_EQUAL(pr->trace.resp.filename, "trace");
    CU_ASSERT(pr->trace.resp.body.len > 16 && !memcmp(pr->trace.resp.body.p, "go 1.19 trace", 13));
#ifndef GORT_TSAN
    CU_ASSERT_EQUAL(pr->cpu1.resp.status, 200);
    CU_ASSERT_STRING_EQUAL(pr->cpu1.resp.filename, "profile");
    p = gort__pprof_decode(pr->cpu1.resp.body.p, pr->cpu1.resp.body.len, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL(p);
    gort__pprof_free(p);
    CU_ASSERT_EQUAL(pr->cpu2_status, 500);
    CU_ASSERT_STRING_EQUAL(pr->cpu2_text, "Could not enable CPU profiling: cpu profiling already in use\n");
#endif
    page_t *all[] = {&pr->idx,  &pr->g0,      &pr->g1,  &pr->g2,      &pr->heap,  &pr->nope,
                     &pr->stats, &pr->cmd,    &pr->sym, &pr->symget,  &pr->post405, &pr->redirect,
                     &pr->cpu1, &pr->block,   &pr->tc,  &pr->sched, &pr->trace};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        gort__dbuf_free(&all[i]->resp.body);
    free(pr);
}

GT_SUITE(debughttp, {"parse_basic", test_parse_basic}, {"parse_refusals", test_parse_refusals},
         {"parse_limits", test_parse_limits}, {"parse_prefixes", test_parse_prefixes}, {"parse_shared", test_parse_shared},
         {"pages", test_pages})
