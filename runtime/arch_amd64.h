/*
 * arch_amd64.h: what the generic runtime needs to know about x86-64.
 *
 * A saved goroutine context is a single stack pointer.  The frame it points
 * to is laid out by gort__mcall in switch_amd64.S (lowest address first):
 *
 *   sp+0   x87 control word (16 bits), then 16 bits of padding
 *   sp+4   MXCSR
 *   sp+8   r15   sp+16 r14   sp+24 r13   sp+32 r12   sp+40 rbx   sp+48 rbp
 *   sp+56  return address (the instruction after the call to gort__mcall)
 *
 * Only callee-saved state is kept: a switch is a function call as far as
 * the compiler of the code around it is concerned.  The stack pointer is
 * moved in one instruction from one valid stack to another, so a signal
 * arriving at any instruction of a switch finds RSP inside a real stack.
 *
 * Thread-local storage is read with a volatile asm, never through a
 * compiler-visible __thread access: a goroutine that calls into the
 * scheduler may come back on another thread, and GCC would happily keep the
 * old thread's TLS address in a register across the call.
 */
#ifndef GORT_ARCH_AMD64_H
#define GORT_ARCH_AMD64_H

#include <stdint.h>

typedef struct gort_regsave {
    void *sp; /* saved stack pointer; see the frame layout above */
} gort_regsave_t;

#define GORT_REGSAVE_FRAME_SIZE 64
#define GORT_REGSAVE_OFF_RBP 48
#define GORT_REGSAVE_OFF_RIP 56
#define GORT_REGSAVE_OFF_RBX 40
#define GORT_REGSAVE_OFF_R12 32
#define GORT_REGSAVE_OFF_R13 24
#define GORT_REGSAVE_OFF_R14 16
#define GORT_REGSAVE_OFF_R15 8

#define GORT_CACHELINE 64
#define GORT_PAGE_SIZE 4096
#define GORT_REDZONE 128

struct gort_m;
extern __thread struct gort_m *gort__tls_m __attribute__((tls_model("initial-exec")));

/* The calling thread's M, read fresh every time: the asm is volatile, so
 * the compiler neither hoists it out of loops nor reuses an earlier result
 * across a call that may have moved the goroutine to another thread. */
static inline __attribute__((always_inline)) struct gort_m *gort__getm(void)
{
    struct gort_m *m;
    __asm__ volatile("movq gort__tls_m@gottpoff(%%rip), %0\n\t"
                     "movq %%fs:(%0), %0"
                     : "=r"(m));
    return m;
}

static inline __attribute__((always_inline)) void gort__setm(struct gort_m *m)
{
    void *tmp;
    __asm__ volatile("movq gort__tls_m@gottpoff(%%rip), %0\n\t"
                     "movq %1, %%fs:(%0)"
                     : "=&r"(tmp)
                     : "r"(m)
                     : "memory");
}

static inline __attribute__((always_inline)) void gort__cpu_relax(void)
{
    __asm__ volatile("pause" ::: "memory");
}

static inline __attribute__((always_inline)) uintptr_t gort__getsp(void)
{
    uintptr_t sp;
    __asm__ volatile("movq %%rsp, %0" : "=r"(sp));
    return sp;
}

/* Registers recovered from a saved context, for unwinders. */
typedef struct gort_regsave_view {
    uintptr_t pc, sp, fp;
    uintptr_t rbx, r12, r13, r14, r15;
} gort_regsave_view_t;

static inline void gort__regsave_view(const gort_regsave_t *c, gort_regsave_view_t *r)
{
    const uintptr_t *f = (const uintptr_t *)c->sp;
    r->pc = f[GORT_REGSAVE_OFF_RIP / 8];
    r->sp = (uintptr_t)c->sp + GORT_REGSAVE_FRAME_SIZE;
    r->fp = f[GORT_REGSAVE_OFF_RBP / 8];
    r->rbx = f[GORT_REGSAVE_OFF_RBX / 8];
    r->r12 = f[GORT_REGSAVE_OFF_R12 / 8];
    r->r13 = f[GORT_REGSAVE_OFF_R13 / 8];
    r->r14 = f[GORT_REGSAVE_OFF_R14 / 8];
    r->r15 = f[GORT_REGSAVE_OFF_R15 / 8];
}

/* Saves the caller's context in *save, switches to the stack g0sp and calls
 * fn(arg) there; fn never returns.  Returns when the context is resumed by
 * gort__gogo, possibly on another thread. */
void gort__mcall(gort_regsave_t *save, void *g0sp, void (*fn)(void *), void *arg);
/* Resumes a saved context; never returns. */
__attribute__((noreturn)) void gort__gogo(const gort_regsave_t *ctx);
/* Runs fn(arg) on the stack sp and comes back (no scheduling). */
void gort__call_on_stack(void *sp, void (*fn)(void *), void *arg);
/* First instruction of every goroutine: calls gort__goentry(g). */
void gort__gstart(void);

/* Lays out a fresh context on the stack [lo, hi) that starts gort__gstart
 * with r12 = g. */
static inline void gort__regsave_init(gort_regsave_t *c, uintptr_t hi, void *g)
{
    /* 16 zero bytes at the top end unwinding; gstart is entered by `ret`
     * with RSP 16-byte aligned, as a call site would leave it. */
    uintptr_t top = (hi & ~(uintptr_t)15) - 16;
    uintptr_t *f = (uintptr_t *)(top - GORT_REGSAVE_FRAME_SIZE);
    ((uintptr_t *)top)[0] = 0;
    ((uintptr_t *)top)[1] = 0;
    f[0] = 0x037fULL | (0x1f80ULL << 32); /* x87 CW, MXCSR: the ABI defaults */
    f[GORT_REGSAVE_OFF_R15 / 8] = 0;
    f[GORT_REGSAVE_OFF_R14 / 8] = 0;
    f[GORT_REGSAVE_OFF_R13 / 8] = 0;
    f[GORT_REGSAVE_OFF_R12 / 8] = (uintptr_t)g;
    f[GORT_REGSAVE_OFF_RBX / 8] = 0;
    f[GORT_REGSAVE_OFF_RBP / 8] = 0;
    f[GORT_REGSAVE_OFF_RIP / 8] = (uintptr_t)gort__gstart;
    c->sp = f;
}

#endif
