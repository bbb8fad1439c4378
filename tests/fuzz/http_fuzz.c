/*
 * http_fuzz.c: libFuzzer target for the debug endpoint's request parser
 * and the field and status lines gortprof's client reads with the same
 * code (prof/httpreq.c).  `make fuzz FUZZ_TARGET=http`.
 *
 * Beyond "no crash, no out-of-bounds read" (ASan), each input checks what
 * the server relies on: the result is one of the statuses the parser may
 * give; an accepted request's pointers lie inside the input, its header
 * length is at most the input and the limit, its body length within the
 * limit; the accepted head parses alone to the same request, and every
 * proper prefix of it asks for more (a request split anywhere by TCP
 * parses the same); a query's values and the path decode without
 * overflowing their buffers.
 */
#include <stdlib.h>
#include <string.h>

#include "httpreq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    /* The input's first line as a status line and as a field line: a
     * field's parts lie inside the line, its value is trimmed. */
    const char *nl = memchr(buf, '\n', size);
    size_t ll = nl ? (size_t)(nl - buf) : size;
    int code = gort__http_status_line(buf, ll);
    if (code != -1 && (code < 100 || code > 999))
        abort();
    gort__httpfield_t f;
    if (gort__http_field(buf, ll, &f)) {
        if (f.name != buf || f.name_len == 0 || f.value < buf + f.name_len + 1 || f.value + f.value_len > buf + ll)
            abort();
        if (f.value_len && (f.value[0] == ' ' || f.value[f.value_len - 1] == ' '))
            abort();
    }
    gort__httpreq_t r;
    int st = gort__http_parse(buf, size, &r);
    if (st != GORT_HTTP_MORE && st != 200 && st != 400 && st != 413 && st != 431 && st != 501 && st != 505)
        abort();
    if (st == GORT_HTTP_MORE && size >= GORT_HTTP_MAX_HEADER)
        abort();
    if (st != 200)
        return 0;
    if (r.header_len == 0 || r.header_len > size || r.header_len > GORT_HTTP_MAX_HEADER)
        abort();
    if (r.path < buf || r.path + r.path_len > buf + r.header_len || r.path_len == 0 || r.path[0] != '/')
        abort();
    if (r.query && (r.query < buf || r.query + r.query_len > buf + r.header_len))
        abort();
    if (r.content_length < -1 || r.content_length > GORT_HTTP_MAX_BODY)
        abort();
    if (r.method < HTTP_GET || r.method > HTTP_OTHER || (r.minor != 0 && r.minor != 1))
        abort();
    gort__httpreq_t again;
    if (gort__http_parse(buf, r.header_len, &again) != 200 || memcmp(&again, &r, sizeof r) != 0)
        abort();
    /* Prefixes: checking each is quadratic, so a sample of cut points. */
    for (size_t cut = 0; cut < r.header_len; cut += 1 + r.header_len / 64)
        if (gort__http_parse(buf, cut, &again) != GORT_HTTP_MORE)
            abort();
    char out[64];
    static const char *const names[] = {"seconds", "debug", "ms", "detail", ""};
    for (int i = 0; i < 5; i++)
        if (gort__http_query(r.query, r.query_len, names[i], out, sizeof out) && strlen(out) >= sizeof out)
            abort();
    char path[256];
    int n = gort__http_unescape(r.path, r.path_len, false, path, sizeof path);
    if (n >= (int)sizeof path || (n >= 0 && strlen(path) != (size_t)n))
        abort();
    return 0;
}
