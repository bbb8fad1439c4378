/*
 * trace.h: the execution tracer (prof/trace.c events and API,
 * prof/tracebuf.c buffers, tables and the writer thread).
 */
#ifndef GORT_PROF_TRACE_H
#define GORT_PROF_TRACE_H

#include "runtime.h"

/* Go 1.19's event types (runtime/trace.go), the ones we write. */
enum {
    EV_BATCH = 1,
    EV_FREQUENCY = 2,
    EV_STACK = 3,
    EV_GOMAXPROCS = 4,
    EV_PROC_START = 5,
    EV_PROC_STOP = 6,
    EV_GO_CREATE = 13,
    EV_GO_START = 14,
    EV_GO_END = 15,
    EV_GO_SCHED = 17,
    EV_GO_PREEMPT = 18,
    EV_GO_SLEEP = 19,
    EV_GO_BLOCK = 20,
    EV_GO_UNBLOCK = 21,
    EV_GO_BLOCK_SEND = 22,
    EV_GO_BLOCK_RECV = 23,
    EV_GO_BLOCK_SELECT = 24,
    EV_GO_BLOCK_SYNC = 25,
    EV_GO_BLOCK_COND = 26,
    EV_GO_BLOCK_NET = 27,
    EV_GO_SYSCALL = 28,
    EV_GO_SYSEXIT = 29,
    EV_GO_SYSBLOCK = 30,
    EV_GO_WAITING = 31,
    EV_GO_INSYSCALL = 32,
    EV_STRING = 37,
    EV_GO_START_LOCAL = 38,
    EV_GO_UNBLOCK_LOCAL = 39,
    EV_USER_TASK_CREATE = 45,
    EV_USER_TASK_END = 46,
    EV_USER_REGION = 47,
    EV_USER_LOG = 48,
    EV_CPU_SAMPLE = 49,
};

/* Timestamps are TSC cycles >> TRACE_TICK_SHIFT (one clock for every
 * thread: the kernel keeps the TSC in step across CPUs where it says
 * constant_tsc, as Go's tracer assumes). */
#define TRACE_TICK_SHIFT 4
#define TRACE_STACK_MAX 32

/* One buffer: an EvBatch header and events, written by one owner. */
typedef struct tbuf {
    struct tbuf *next;     /* on the full list */
    uint32_t pos;
    uint64_t last;         /* ticks of the last event */
    uint8_t data[64 * 1024 - 32];
} tbuf_t;

/* A stack table entry (prof/tracebuf.c): immutable once published, freed
 * only when the table is written at the end of the trace. */
typedef struct tstk {
    _Atomic(struct tstk *) next;
    uint64_t hash;
    uint32_t id, n;
    uintptr_t pcs[];
} tstk_t;

#define TSLOT_STK_CACHE 16 /* 8 sets of 2 */

/* Where events go: a P's buffer (its owner writes it) or the global one
 * (under glock, for threads without a P). */
typedef struct tslot {
    tbuf_t *buf;
    /* 1 while the owner writes an event (P slots); a SIGTERM's flush
     * waits for 0 (prof/trace.c term_handler). */
    _Atomic uint32_t busy;
    int32_t pid;           /* -1: the global buffer */
    bool running;          /* ProcStart written and no ProcStop since */
    /* The slot's recent stacks (prof/trace.c fp_stack).  Owner only,
     * cleared with the slot. */
    tstk_t *stk[TSLOT_STK_CACHE];
} tslot_t;

/* The tracer's clock, read inline: an event's clock read is a large part
 * of its cost.  Async-signal-safe (the CPU profiler's handler reads it). */
#if defined(__x86_64__)
static inline uint64_t gort__trace_ticks(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32 | lo) >> TRACE_TICK_SHIFT;
}
#else
static inline uint64_t gort__trace_ticks(void) { return (uint64_t)gort__nanotime() >> TRACE_TICK_SHIFT; }
#endif

#define TS_LAST 1
/* Appends event ev with n arguments after the timestamp (a stack id
 * counts as one); ts 0: now, TS_LAST: just after the buffer's last
 * event (a clock read costs more than the rest of an event).  extra (len bytes) follows the arguments
 * with its length first (EvUserLog's message). */
void gort__tb_event(tslot_t *s, int ev, int n, const uint64_t *args, uint64_t ts, const char *extra, size_t len);
/* Room for one event of at most three arguments after the timestamp:
 * type, length, four varints. */
#define TB_EV_MAX (2 + 4 * 10)
/* The slot's buffer with TB_EV_MAX bytes free: the full one handed to the
 * writer and a new one begun at now. */
tbuf_t *gort__tb_refill(tslot_t *s, uint64_t now);

static inline uint8_t *gort__tb_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* The common event: n (0 to 3) arguments after the timestamp, inlined
 * where n is a constant so that its encoding is straight-line code.
 * last: at the buffer's last timestamp + 1, without reading the clock. */
static inline __attribute__((always_inline)) void gort__tb_ev(tslot_t *s, int ev, int n, uint64_t a0, uint64_t a1,
                                                              uint64_t a2, bool last)
{
    tbuf_t *b = s->buf;
    uint64_t now = last && b ? b->last + 1 : gort__trace_ticks();
    if (unlikely(!b || b->pos > sizeof b->data - TB_EV_MAX))
        b = gort__tb_refill(s, now);
    uint64_t diff = now > b->last ? now - b->last : 1;
    b->last += diff;
    uint8_t *p = b->data + b->pos;
    *p++ = (uint8_t)(ev | n << 6);
    uint8_t *lenp = p;
    if (n == 3)
        p++;
    p = gort__tb_varint(p, diff);
    if (n > 0)
        p = gort__tb_varint(p, a0);
    if (n > 1)
        p = gort__tb_varint(p, a1);
    if (n > 2) {
        p = gort__tb_varint(p, a2);
        *lenp = (uint8_t)(p - lenp - 1);
    }
    b->pos = (uint32_t)(p - b->data);
}

/* Hands the slot's buffer to the writer. */
void gort__tb_flush(tslot_t *s);
/* The stack id of pcs[0..n) (0 for n == 0); lock-free when seen. */
#define TB_HASH0 14695981039346656037ull
static inline uint64_t gort__tb_hash_step(uint64_t h, uintptr_t pc) { return (h ^ pc) * 1099511628211ull; }
uint32_t gort__tb_stack(const uintptr_t *pcs, int n);
/* The entry of pcs[0..n), n > 0, whose FNV-1a hash (TB_HASH0, then
 * gort__tb_hash_step per PC) the caller computed as it walked. */
tstk_t *gort__tb_stack_entry(const uintptr_t *pcs, int n, uint64_t h);
/* The string id of s, made on first use. */
uint64_t gort__tb_string(const char *s);

/* The writer: start with the header written, finish after the last
 * flush (frequency, stacks, strings), then close nothing (fd is the
 * caller's).  finish returns 0 or the first write error. */
int gort__tb_start(int fd);
int gort__tb_finish(uint64_t freq);
bool gort__tb_finish_timed(uint64_t freq, int64_t timeout_ns);
/* The writer's first error (0: none); valid once it has finished. */
int gort__tb_write_err(void);

/* The hook (runtime/trace.h). */
void gort__trace_ev(int ev, gort_g_t *gp, gort_p_t *pp, uint64_t arg);
/* A CPU profile sample for the running trace (prof/cpuprof.c's writer). */
void gort__trace_cpu_sample(uint64_t ticks, int pid, uint64_t goid, const uintptr_t *pcs, int n);
void gort__trace_init(void);
void gort__trace_at_exit(void);
void gort__trace_before_fatal(void);

#endif /* GORT_PROF_TRACE_H */
