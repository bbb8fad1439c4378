/*
 * cfi.h: per-PC unwind recipes (prof/cfi.c), the fast path of
 * prof/unwind.c.
 *
 * A recipe says, for one PC, how to compute the caller's registers from
 * the current frame's: the CFA as base register + offset (or a load from
 * there, for stack-realigned functions), and for each tracked register
 * whether it is unchanged, lost, saved at an address, or a value.  It is
 * the frame's DWARF CFI (.eh_frame, through libdw) compiled once into a
 * form that a walk applies with a hash lookup and a few loads.
 */
#ifndef GORT_PROF_CFI_H
#define GORT_PROF_CFI_H

#include <stdbool.h>
#include <stdint.h>

/* Registers a walk tracks: the return address, the stack pointer and the
 * callee-saved ones (what a goroutine's saved context holds). */
enum { CR_RIP, CR_RSP, CR_RBP, CR_RBX, CR_R12, CR_R13, CR_R14, CR_R15, CR_NREGS };
#define CFI_BASE_CONST (-1)
#define CFI_BASE_CFA (-2)

/* value = (deref ? *(base + off) : base + off) + off2 */
typedef struct gort_cfi_expr {
    int8_t base;   /* CFI_BASE_CONST, CFI_BASE_CFA or a CR_* register */
    uint8_t deref;
    int32_t off, off2;
} gort_cfi_expr_t;

enum gort_cfi_rule {
    CFI_SAME = 0, /* the caller's value is this frame's */
    CFI_UNDEF,    /* lost (call-clobbered) */
    CFI_AT,       /* saved in memory at the address e computes */
    CFI_VAL,      /* the value e computes */
};

enum gort_cfi_kind {
    GORT_CFI_OK = 1,
    GORT_CFI_END,  /* the return address is undefined: outermost frame */
    GORT_CFI_NONE, /* no CFI, or CFI we do not compile (signal frames):
                    * unwind this frame with libunwind */
};

typedef struct gort_cfi {
    uintptr_t pc; /* the PC looked up (a return address minus one) */
    uint8_t kind;
    /* The common case, precomputed: CFA = rsp or rbp + cfa_off, the
     * return address at CFA + ra_off, rbp unchanged or at CFA + bp_off.
     * A walk in this form tracks only rip, rsp and rbp (CFI never bases a
     * CFA on the other callee-saved registers). */
    uint8_t fast, fast_base, bp_saved;
    int32_t cfa_off, ra_off, bp_off;
    uint8_t rule[CR_NREGS];
    gort_cfi_expr_t cfa;
    gort_cfi_expr_t e[CR_NREGS];
} gort_cfi_t;

/* The recipe for pc.  Lock-free and async-signal-safe when compute is
 * false (NULL on a miss; the PC is queued for gort__cfi_warm).  With
 * compute, a miss is filled from libdw under the symbolizer's lock (not in
 * a signal handler).  Never NULL with compute once the symbol tables are
 * loaded (a failure is a GORT_CFI_NONE recipe). */
const gort_cfi_t *gort__cfi_find(uintptr_t pc, bool compute);

/* Computes the recipes that signal-context lookups missed.  The CPU
 * profiler or sysmon may call it now and then from their own thread. */
void gort__cfi_warm(void);
bool gort__cfi_pending(void); /* a lookup queued a PC since the last warm */
void gort__cfi_warm_nowait(void); /* gort__cfi_warm unless the lock is busy */

#endif
