/*
 * tracebuf.c: the execution tracer's storage: event encoding into 64 KiB
 * buffers, the stack and string tables, and the writer thread that drains
 * full buffers to the trace's fd.
 *
 * Encoding is Go 1.19's (runtime/trace.go, internal/trace/parser.go): a
 * byte of event type | (arguments - 1, at most 3) << 6, then base-128
 * varints; the first is the timestamp's distance from the previous event
 * of the buffer (the buffer opens with EvBatch [pid, absolute ticks]).
 * With four or more arguments a length byte follows the type byte.
 *
 * Buffers.  Each P's slot (prof/trace.c) is written only by the P's
 * owner, so filling one takes no lock; a full one goes onto a lock-free
 * list (a push-only stack: the writer takes the whole list with an
 * exchange and reverses it, so a P's buffers reach the file in the order
 * its owners pushed them, which the reader needs: it tracks the running
 * goroutine per P across batches in file order).  The writer sleeps on a
 * futex word between buffers, with a timeout so that a trace left running
 * still reaches the file.
 *
 * Stacks: a chained hash table whose chains are read without a lock
 * (entries are published with a release store and never removed while a
 * trace runs); inserts take stab_lock.  Symbols are looked up only when
 * the table is written at the end, each frame with the existing
 * symbolizer (inlined calls become frames of their own at the same PC).
 *
 * Strings (user annotations, and function and file names at the end)
 * are interned under str_lock: annotations are rare next to scheduler
 * events, which carry no strings.
 *
 * Rejected: a lock around each event, or a shared buffer: every
 * goroutine switch writes two or three events, and Go's per-P design is
 * what keeps that cheap.
 */
#include "trace.h"
#include "symtab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TB_CAP sizeof(((tbuf_t *)0)->data)

/* ---- the writer ---- */

static _Atomic(tbuf_t *) full;        /* pushed by owners, taken by the writer */
static _Atomic uint32_t wake_word;
static _Atomic uint32_t finishing;     /* the last buffers are on the list */
static _Atomic uint32_t finished;
static pthread_t writer;
static int out_fd = -1;
static int write_err;                  /* writer thread only, read after join */
static uint64_t final_freq;

static void put_all(const uint8_t *p, size_t n)
{
    while (n > 0 && !write_err) {
        ssize_t w = write(out_fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            write_err = -errno;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static void drain(void)
{
    tbuf_t *l = atomic_exchange_explicit(&full, NULL, memory_order_acquire);
    tbuf_t *rev = NULL;
    while (l) {
        tbuf_t *n = l->next;
        l->next = rev;
        rev = l;
        l = n;
    }
    while (rev) {
        tbuf_t *n = rev->next;
        put_all(rev->data, rev->pos);
        free(rev);
        rev = n;
    }
}

static void write_tables(void);

static void *writer_main(void *arg)
{
    (void)arg;
    for (;;) {
        uint32_t w = atomic_load_explicit(&wake_word, memory_order_acquire);
        if (atomic_load_explicit(&finishing, memory_order_acquire))
            break;
        drain();
        gort__futex_wait(&wake_word, w, 200 * 1000 * 1000LL);
    }
    drain();
    write_tables();
    atomic_store_explicit(&finished, 1, memory_order_release);
    gort__futex_wake(&finished, 8);
    return NULL;
}

static void wake_writer(void)
{
    atomic_fetch_add_explicit(&wake_word, 1, memory_order_release);
    gort__futex_wake(&wake_word, 1);
}

void gort__tb_flush(tslot_t *s)
{
    tbuf_t *b = s->buf;
    s->buf = NULL;
    if (!b)
        return;
    b->next = atomic_load_explicit(&full, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&full, &b->next, b, memory_order_release,
                                                  memory_order_relaxed))
        ;
    wake_writer();
}

/* ---- encoding ---- */

#define varint gort__tb_varint

static tbuf_t *new_buf(tslot_t *s, uint64_t now)
{
    tbuf_t *b = malloc(sizeof *b);
    if (!b)
        gort__throw("out of memory: trace buffer");
    b->next = NULL;
    uint8_t *p = b->data;
    *p++ = EV_BATCH | 1 << 6;
    p = varint(p, (uint64_t)(int64_t)s->pid);
    p = varint(p, now);
    b->pos = (uint32_t)(p - b->data);
    b->last = now;
    s->buf = b;
    return b;
}

tbuf_t *gort__tb_refill(tslot_t *s, uint64_t now)
{
    gort__tb_flush(s);
    return new_buf(s, now);
}

void gort__tb_event(tslot_t *s, int ev, int n, const uint64_t *args, uint64_t ts, const char *extra, size_t len)
{
    size_t need = 2 + (size_t)(n + 1) * 10 + (extra ? 10 + len : 0);
    tbuf_t *b = s->buf;
    uint64_t now = ts == TS_LAST && b ? b->last + 1 : ts > TS_LAST ? ts : gort__trace_ticks();
    if (!b || b->pos + need > TB_CAP) {
        gort__tb_flush(s);
        b = new_buf(s, now);
    }
    if (now <= b->last)
        now = b->last + 1;
    uint64_t diff = now - b->last;
    b->last = now;
    uint8_t *p = b->data + b->pos;
    int narg = n < 3 ? n : 3;
    *p++ = (uint8_t)(ev | narg << 6);
    uint8_t *lenp = NULL;
    if (narg == 3)
        lenp = p++;
    uint8_t *start = p;
    p = varint(p, diff);
    for (int i = 0; i < n; i++)
        p = varint(p, args[i]);
    if (lenp)
        *lenp = (uint8_t)(p - start);
    if (extra) {
        p = varint(p, len);
        memcpy(p, extra, len);
        p += len;
    }
    b->pos = (uint32_t)(p - b->data);
}

/* ---- stacks ---- */

#define STAB_SIZE 8192
static _Atomic(tstk_t *) stab[STAB_SIZE];
static atomic_flag stab_lock = ATOMIC_FLAG_INIT;
static uint32_t stab_next; /* under stab_lock */

static void spin_lock(atomic_flag *f)
{
    while (atomic_flag_test_and_set_explicit(f, memory_order_acquire))
        gort__cpu_relax();
}
static void spin_unlock(atomic_flag *f) { atomic_flag_clear_explicit(f, memory_order_release); }

static tstk_t *stab_find(tstk_t *e, uint64_t h, const uintptr_t *pcs, int n)
{
    for (; e; e = atomic_load_explicit(&e->next, memory_order_acquire)) {
        if (e->hash != h || e->n != (uint32_t)n)
            continue;
        int i = 0;
        while (i < n && e->pcs[i] == pcs[i])
            i++;
        if (i == n)
            return e;
    }
    return NULL;
}

uint32_t gort__tb_stack(const uintptr_t *pcs, int n)
{
    uint64_t h = TB_HASH0;
    for (int i = 0; i < n; i++)
        h = gort__tb_hash_step(h, pcs[i]);
    return n > 0 ? gort__tb_stack_entry(pcs, n, h)->id : 0;
}

tstk_t *gort__tb_stack_entry(const uintptr_t *pcs, int n, uint64_t h)
{
    _Atomic(tstk_t *) *slot = &stab[(h ^ h >> 29) % STAB_SIZE];
    tstk_t *e = stab_find(atomic_load_explicit(slot, memory_order_acquire), h, pcs, n);
    if (likely(e != NULL))
        return e;
    spin_lock(&stab_lock);
    e = stab_find(atomic_load_explicit(slot, memory_order_acquire), h, pcs, n);
    if (!e) {
        e = malloc(sizeof *e + (size_t)n * sizeof *pcs);
        if (!e)
            gort__throw("out of memory: trace stack table");
        e->hash = h;
        e->n = (uint32_t)n;
        e->id = ++stab_next;
        memcpy(e->pcs, pcs, (size_t)n * sizeof *pcs);
        atomic_store_explicit(&e->next, atomic_load_explicit(slot, memory_order_relaxed), memory_order_relaxed);
        atomic_store_explicit(slot, e, memory_order_release);
    }
    spin_unlock(&stab_lock);
    return e;
}

/* ---- strings ---- */

typedef struct tstr {
    struct tstr *next;
    uint64_t id;
    char s[];
} tstr_t;

#define STR_SIZE 1024
static tstr_t *strs[STR_SIZE]; /* under str_lock */
static atomic_flag str_lock = ATOMIC_FLAG_INIT;
static uint64_t str_next;      /* under str_lock */

uint64_t gort__tb_string(const char *s)
{
    if (!s || !*s)
        s = "?";
    uint64_t h = 14695981039346656037ull;
    for (const char *c = s; *c; c++)
        h = (h ^ (uint8_t)*c) * 1099511628211ull;
    spin_lock(&str_lock);
    tstr_t **slot = &strs[h % STR_SIZE];
    for (tstr_t *e = *slot; e; e = e->next)
        if (strcmp(e->s, s) == 0) {
            spin_unlock(&str_lock);
            return e->id;
        }
    size_t len = strnlen(s, 4096);
    tstr_t *e = malloc(sizeof *e + len + 1);
    if (!e)
        gort__throw("out of memory: trace string table");
    memcpy(e->s, s, len);
    e->s[len] = 0;
    e->id = ++str_next;
    e->next = *slot;
    *slot = e;
    spin_unlock(&str_lock);
    return e->id;
}

/* ---- the tables at the end ---- */

static uint8_t tail[64 * 1024];
static size_t tail_n;

static void tail_flush(void)
{
    put_all(tail, tail_n);
    tail_n = 0;
}

static void tail_reserve(size_t n)
{
    if (tail_n + n > sizeof tail)
        tail_flush();
}

static void write_stack(tstk_t *e)
{
    /* One frame per PC, the function that holds it out of line, with the
     * line of the call there: go tool trace keys its locations by PC, so
     * inlined frames at the same PC would merge into whichever came
     * first. */
    enum { FR = 8 };
    static uint64_t args[2 + TRACE_STACK_MAX * 4];
    int nf = 0;
    for (uint32_t i = 0; i < e->n && i < TRACE_STACK_MAX; i++) {
        gort_frame_t fr[FR];
        uintptr_t pc = e->pcs[i];
        int k = gort__symbolize(pc > 0 ? pc - 1 : pc, fr, FR, 0);
        gort_frame_t *f = k > 0 ? &fr[k - 1] : NULL;
        uint64_t *a = &args[2 + nf * 4];
        a[0] = pc;
        a[1] = gort__tb_string(f && f->func ? f->func : "?");
        a[2] = gort__tb_string(f && f->file ? f->file : "?");
        a[3] = (uint64_t)(f && f->line > 0 ? f->line : 0);
        nf++;
    }
    args[0] = e->id;
    args[1] = (uint64_t)nf;
    size_t nargs = 2 + (size_t)nf * 4;
    uint8_t tmp[sizeof args / sizeof args[0] * 10];
    uint8_t *p = tmp;
    for (size_t i = 0; i < nargs; i++)
        p = varint(p, args[i]);
    size_t body = (size_t)(p - tmp);
    tail_reserve(body + 12);
    tail[tail_n++] = EV_STACK | 3 << 6;
    uint8_t *q = varint(tail + tail_n, body);
    memcpy(q, tmp, body);
    tail_n = (size_t)(q + body - tail);
}

static void write_tables(void)
{
    uint8_t *p = tail;
    *p++ = EV_FREQUENCY | 0 << 6;
    p = varint(p, final_freq);
    tail_n = (size_t)(p - tail);
    for (int i = 0; i < STAB_SIZE; i++) {
        tstk_t *e = atomic_load_explicit(&stab[i], memory_order_acquire);
        while (e) {
            tstk_t *n = atomic_load_explicit(&e->next, memory_order_relaxed);
            write_stack(e);
            free(e);
            e = n;
        }
        atomic_store_explicit(&stab[i], NULL, memory_order_relaxed);
    }
    stab_next = 0;
    for (int i = 0; i < STR_SIZE; i++) {
        tstr_t *e = strs[i];
        while (e) {
            tstr_t *n = e->next;
            size_t len = strlen(e->s);
            tail_reserve(len + 24);
            p = tail + tail_n;
            *p++ = EV_STRING;
            p = varint(p, e->id);
            p = varint(p, len);
            memcpy(p, e->s, len);
            tail_n = (size_t)(p + len - tail);
            free(e);
            e = n;
        }
        strs[i] = NULL;
    }
    str_next = 0;
    tail_flush();
}

/* ---- start and finish ---- */

int gort__tb_start(int fd)
{
    static const char hdr[16] = "go 1.19 trace\0\0\0";
    out_fd = fd;
    write_err = 0;
    put_all((const uint8_t *)hdr, sizeof hdr);
    if (write_err)
        return write_err;
    atomic_store(&finishing, 0);
    atomic_store(&finished, 0);
    int r = pthread_create(&writer, NULL, writer_main, NULL);
    if (r != 0)
        return -r;
    return 0;
}

int gort__tb_finish(uint64_t freq)
{
    final_freq = freq;
    atomic_store_explicit(&finishing, 1, memory_order_release);
    wake_writer();
    pthread_join(writer, NULL);
    out_fd = -1;
    return write_err;
}

int gort__tb_write_err(void) { return write_err; }

/* A fatal error: the writer finishes while the process waits at most
 * timeout_ns.  Futexes and atomics only on this side. */
bool gort__tb_finish_timed(uint64_t freq, int64_t timeout_ns)
{
    final_freq = freq;
    atomic_store_explicit(&finishing, 1, memory_order_release);
    wake_writer();
    int64_t step = 10 * 1000 * 1000;
    for (int64_t left = timeout_ns; left > 0; left -= step)
        if (atomic_load_explicit(&finished, memory_order_acquire))
            return true;
        else
            gort__futex_wait(&finished, 0, step);
    return atomic_load_explicit(&finished, memory_order_acquire);
}
