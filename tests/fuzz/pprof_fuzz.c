/*
 * pprof_fuzz.c: libFuzzer target for the profile decoder and the execution
 * trace reader (prof/tool/tracefile.c; inputs starting "go 1." go there,
 * and must give a summary or one line of error).
 *
 * Each input is decoded; a decoded model must then encode, and the encoding
 * must decode again to the same shape (counts and values): the decoder's
 * promise is that whatever it accepts is a valid model, and an invalid one
 * would show here as a crash in the encoder or a mismatch.  Errors must be
 * one non-empty line.  Built by `make fuzz` with clang's
 * -fsanitize=fuzzer,address,undefined; crashers found are kept in
 * tests/testdata/fuzz-regressions/ and replayed by the pprof suite.
 */
#include <stdlib.h>
#include <string.h>

#include "pprof.h"
#include "tracefile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    if (size >= 5 && memcmp(data, "go 1.", 5) == 0) {
        gt_summary_t s;
        if (gt_summarize(data, size, &s, err, sizeof err) != 0) {
            if (err[0] == 0 || strchr(err, '\n'))
                abort();
            return 0;
        }
        for (size_t i = 0; i < s.ngroups; i++)
            if (!s.groups[i].fn || s.groups[i].count == 0)
                abort();
        gt_summary_free(&s);
        return 0;
    }
    gort__pprof_t *p = gort__pprof_decode(data, size, err, sizeof err);
    if (!p) {
        if (err[0] == 0 || strchr(err, '\n'))
            abort();
        return 0;
    }
    uint8_t *enc;
    size_t n;
    if (gort__pprof_encode(p, false, &enc, &n) != 0)
        abort();
    gort__pprof_t *q = gort__pprof_decode(enc, n, err, sizeof err);
    if (!q)
        abort();
    if (q->nsample != p->nsample || q->nloc != p->nloc || q->nfunc != p->nfunc || q->nstr != p->nstr ||
        q->nmapping != p->nmapping || q->nsample_type != p->nsample_type)
        abort();
    for (size_t i = 0; i < p->nsample; i++) {
        if (p->sample[i].nloc != q->sample[i].nloc ||
            memcmp(p->sample[i].value, q->sample[i].value, p->nsample_type * sizeof(int64_t)) != 0)
            abort();
        for (uint32_t j = 0; j < p->sample[i].nloc; j++)
            if (p->sample[i].loc[j] != q->sample[i].loc[j])
                abort();
    }
    gort__pprof_free(q);
    free(enc);
    gort__pprof_free(p);
    return 0;
}
