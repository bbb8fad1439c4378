/*
 * cfi.c: compiling DWARF call frame information into per-PC unwind
 * recipes, and caching them.
 *
 * Why not libunwind for every frame: the libunwind this project builds
 * against has no per-thread cache (UNW_CACHE_PER_THREAD silently becomes
 * the global cache), whose lock it wraps in two sigprocmask system calls
 * on every step, and it validates each new stack page with a write(2) to
 * a pipe.  A 10,000-goroutine dump made ~350,000 system calls.  A recipe
 * lookup is a hash probe.  libunwind stays the fallback for what recipes
 * do not cover (see unwind.c).
 *
 * Compilation.  libdw hands out the CFA and each register's rule as small
 * DWARF expressions (dwarf_frame_cfa, dwarf_frame_register).  compile()
 * evaluates them symbolically to "base + off, optionally loaded, plus
 * off2", which covers everything GCC and Clang emit for x86-64 code:
 * CFA = rsp/rbp + n, registers at CFA - n, and the stack-realignment form
 * (CFA = *(rbp - 8), rbp at rbp + 0).  Anything else, and signal frames,
 * yield a GORT_CFI_NONE recipe.
 *
 * The cache is the symbolizer's design again: open addressing over
 * pointers to immutable records, probed without a lock (acquire loads pair
 * with the release stores that publish a record or a grown table),
 * written only under the symbolizer's lock, records and tables from its
 * arena, never freed.  Negative results are cached too.
 *
 * A lookup in a signal handler cannot compute: it queues the PC in a small
 * lock-free array that gort__cfi_warm drains later.
 */
#include "cfi.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"
#include "symtab.h"
#include "symtab_int.h"

typedef struct cfitab {
    size_t mask;
    _Atomic(gort_cfi_t *) slot[];
} cfitab_t;

static _Atomic(cfitab_t *) table; /* release-published under the symbolizer lock */
static size_t ncfi;               /* under the symbolizer lock */

#define NPENDING 256
static _Atomic uintptr_t pending[NPENDING];
static _Atomic bool pending_any; /* a PC was queued since the last warm */

static size_t cfi_hash(uintptr_t pc) { return (size_t)((pc * 0x9E3779B97F4A7C15ULL) >> 24); }

/* Async-signal-safe. */
static const gort_cfi_t *probe(uintptr_t pc)
{
    cfitab_t *t = atomic_load_explicit(&table, memory_order_acquire);
    if (!t)
        return NULL;
    for (size_t i = cfi_hash(pc) & t->mask;; i = (i + 1) & t->mask) {
        gort_cfi_t *r = atomic_load_explicit(&t->slot[i], memory_order_acquire);
        if (!r)
            return NULL;
        if (r->pc == pc)
            return r;
    }
}

static void put(cfitab_t *t, gort_cfi_t *r)
{
    for (size_t i = cfi_hash(r->pc) & t->mask;; i = (i + 1) & t->mask) {
        if (!atomic_load_explicit(&t->slot[i], memory_order_relaxed)) {
            atomic_store_explicit(&t->slot[i], r, memory_order_release);
            return;
        }
    }
}

/* Lock held. */
static void insert(gort_cfi_t *r)
{
    cfitab_t *t = atomic_load_explicit(&table, memory_order_relaxed);
    if (!t || (ncfi + 1) * 2 > t->mask + 1) {
        size_t size = t ? (t->mask + 1) * 2 : 1024;
        cfitab_t *nt = gort__symtab_alloc(sizeof *nt + size * sizeof(nt->slot[0]));
        if (!nt)
            return;
        memset(nt, 0, sizeof *nt + size * sizeof(nt->slot[0]));
        nt->mask = size - 1;
        if (t)
            for (size_t i = 0; i <= t->mask; i++) {
                gort_cfi_t *o = atomic_load_explicit(&t->slot[i], memory_order_relaxed);
                if (o)
                    put(nt, o);
            }
        atomic_store_explicit(&table, nt, memory_order_release);
        t = nt;
    }
    put(t, r);
    ncfi++;
}

/* DWARF register number to CR_*, or -1 for one we do not track. */
static int track(unsigned dwreg)
{
    switch (dwreg) {
    case 16:
        return CR_RIP;
    case 7:
        return CR_RSP;
    case 6:
        return CR_RBP;
    case 3:
        return CR_RBX;
    case 12:
        return CR_R12;
    case 13:
        return CR_R13;
    case 14:
        return CR_R14;
    case 15:
        return CR_R15;
    default:
        return -1;
    }
}

/* Symbolic evaluation of a CFI expression.  Returns false for what the
 * recipe form cannot express. */
static bool compile(const Dwarf_Op *ops, size_t n, gort_cfi_expr_t *out, bool *is_value)
{
    gort_cfi_expr_t st[4];
    int sp = 0;
    *is_value = false;
    for (size_t i = 0; i < n; i++) {
        uint8_t a = ops[i].atom;
        if (*is_value)
            return false; /* DW_OP_stack_value must be last */
        if (a >= DW_OP_breg0 && a <= DW_OP_breg31) {
            int r = track(a - DW_OP_breg0);
            if (r < 0 || sp == 4)
                return false;
            st[sp++] = (gort_cfi_expr_t){(int8_t)r, 0, (int32_t)(int64_t)ops[i].number, 0};
            continue;
        }
        if (a >= DW_OP_lit0 && a <= DW_OP_lit31) {
            if (sp == 4)
                return false;
            st[sp++] = (gort_cfi_expr_t){CFI_BASE_CONST, 0, a - DW_OP_lit0, 0};
            continue;
        }
        switch (a) {
        case DW_OP_bregx: { /* libdw's form for "CFA = reg + offset" */
            int r = track((unsigned)ops[i].number);
            if (r < 0 || sp == 4)
                return false;
            st[sp++] = (gort_cfi_expr_t){(int8_t)r, 0, (int32_t)(int64_t)ops[i].number2, 0};
            break;
        }
        case DW_OP_call_frame_cfa:
            if (sp == 4)
                return false;
            st[sp++] = (gort_cfi_expr_t){CFI_BASE_CFA, 0, 0, 0};
            break;
        case DW_OP_const1u:
        case DW_OP_const1s:
        case DW_OP_const2u:
        case DW_OP_const2s:
        case DW_OP_const4u:
        case DW_OP_const4s:
        case DW_OP_constu:
        case DW_OP_consts:
            if (sp == 4)
                return false;
            st[sp++] = (gort_cfi_expr_t){CFI_BASE_CONST, 0, (int32_t)(int64_t)ops[i].number, 0};
            break;
        case DW_OP_plus_uconst:
            if (sp < 1)
                return false;
            if (st[sp - 1].deref)
                st[sp - 1].off2 += (int32_t)ops[i].number;
            else
                st[sp - 1].off += (int32_t)ops[i].number;
            break;
        case DW_OP_plus:
        case DW_OP_minus: {
            if (sp < 2)
                return false;
            gort_cfi_expr_t b = st[--sp], *x = &st[sp - 1];
            int32_t k;
            if (b.base == CFI_BASE_CONST && !b.deref) {
                k = b.off;
            } else if (a == DW_OP_plus && x->base == CFI_BASE_CONST && !x->deref) {
                k = x->off;
                *x = b;
            } else {
                return false;
            }
            if (a == DW_OP_minus)
                k = -k;
            if (x->deref)
                x->off2 += k;
            else
                x->off += k;
            break;
        }
        case DW_OP_deref:
            if (sp < 1 || st[sp - 1].deref || st[sp - 1].base == CFI_BASE_CONST)
                return false;
            st[sp - 1].deref = 1;
            break;
        case DW_OP_stack_value:
            *is_value = true;
            break;
        default:
            return false;
        }
    }
    if (sp != 1)
        return false;
    *out = st[0];
    return true;
}

/* Lock held: the recipe for pc from the module's .eh_frame (or
 * .debug_frame when there is no .eh_frame). */
static void build(uintptr_t pc, gort_cfi_t *r)
{
    memset(r, 0, sizeof *r);
    r->pc = pc;
    r->kind = GORT_CFI_NONE;
    Dwfl_Module *dm = gort__symtab_dwfl_module(pc);
    if (!dm)
        return;
    Dwarf_Frame *frame = NULL;
    Dwarf_Addr bias;
    Dwarf_CFI *cfi = dwfl_module_eh_cfi(dm, &bias);
    if (!cfi || dwarf_cfi_addrframe(cfi, pc - bias, &frame) != 0) {
        cfi = dwfl_module_dwarf_cfi(dm, &bias);
        if (!cfi || dwarf_cfi_addrframe(cfi, pc - bias, &frame) != 0)
            return;
    }
    bool signalp = false;
    int ra = dwarf_frame_info(frame, NULL, NULL, &signalp);
    Dwarf_Op *ops;
    size_t nops;
    bool val;
    if (ra != 16 || signalp || dwarf_frame_cfa(frame, &ops, &nops) != 0 || nops == 0 ||
        !compile(ops, nops, &r->cfa, &val) || r->cfa.base == CFI_BASE_CFA)
        goto out;
    static const int dwregs[CR_NREGS] = {16, 7, 6, 3, 12, 13, 14, 15};
    for (int i = 0; i < CR_NREGS; i++) {
        Dwarf_Op mem[3];
        if (dwarf_frame_register(frame, dwregs[i], mem, &ops, &nops) != 0)
            goto out;
        if (nops == 0) {
            r->rule[i] = ops ? CFI_UNDEF : CFI_SAME;
            continue;
        }
        if (!compile(ops, nops, &r->e[i], &val))
            goto out;
        r->rule[i] = val ? CFI_VAL : CFI_AT;
    }
    /* The caller's stack pointer is the CFA unless the CFI says more. */
    if (r->rule[CR_RSP] == CFI_SAME || r->rule[CR_RSP] == CFI_UNDEF) {
        r->rule[CR_RSP] = CFI_VAL;
        r->e[CR_RSP] = (gort_cfi_expr_t){CFI_BASE_CFA, 0, 0, 0};
    }
    r->kind = r->rule[CR_RIP] == CFI_UNDEF ? GORT_CFI_END : r->rule[CR_RIP] == CFI_AT ? GORT_CFI_OK : GORT_CFI_NONE;
    {
        const gort_cfi_expr_t *ra_e = &r->e[CR_RIP], *bp_e = &r->e[CR_RBP], *sp_e = &r->e[CR_RSP];
        bool cfa_ok = (r->cfa.base == CR_RSP || r->cfa.base == CR_RBP) && !r->cfa.deref && r->cfa.off2 == 0;
        bool ra_ok = r->rule[CR_RIP] == CFI_AT && ra_e->base == CFI_BASE_CFA && !ra_e->deref;
        bool bp_ok = r->rule[CR_RBP] == CFI_SAME ||
                     (r->rule[CR_RBP] == CFI_AT && bp_e->base == CFI_BASE_CFA && !bp_e->deref);
        bool sp_ok = r->rule[CR_RSP] == CFI_VAL && sp_e->base == CFI_BASE_CFA && !sp_e->deref && sp_e->off == 0;
        if (r->kind == GORT_CFI_OK && cfa_ok && ra_ok && bp_ok && sp_ok) {
            r->fast = 1;
            r->fast_base = (uint8_t)r->cfa.base;
            r->cfa_off = r->cfa.off;
            r->ra_off = ra_e->off;
            r->bp_saved = r->rule[CR_RBP] == CFI_AT;
            r->bp_off = bp_e->off;
        }
    }
out:
    free(frame);
}

static const gort_cfi_t *compute(uintptr_t pc)
{
    if (!gort__symtab_ready())
        return NULL;
    if (!gort__symlock_acquire(false))
        return NULL;
    const gort_cfi_t *r = probe(pc);
    if (!r) {
        gort_cfi_t *nr = gort__symtab_alloc(sizeof *nr);
        if (nr) {
            build(pc, nr);
            insert(nr);
        }
        r = nr;
    }
    gort__symlock_release();
    return r;
}

const gort_cfi_t *gort__cfi_find(uintptr_t pc, bool want_compute)
{
    const gort_cfi_t *r = probe(pc);
    if (r || !pc)
        return r;
    if (want_compute)
        return compute(pc);
    /* Remember it for gort__cfi_warm; a full queue just loses it. */
    size_t h = cfi_hash(pc) & (NPENDING - 1);
    for (int i = 0; i < 4; i++) {
        uintptr_t z = 0;
        if (atomic_compare_exchange_strong_explicit(&pending[(h + i) & (NPENDING - 1)], &z, pc,
                                                    memory_order_relaxed, memory_order_relaxed) ||
            z == pc)
            break;
    }
    if (!atomic_load_explicit(&pending_any, memory_order_relaxed))
        atomic_store_explicit(&pending_any, true, memory_order_relaxed);
    return NULL;
}

void gort__cfi_warm(void)
{
    atomic_store_explicit(&pending_any, false, memory_order_relaxed);
    for (int i = 0; i < NPENDING; i++) {
        uintptr_t pc = atomic_exchange_explicit(&pending[i], 0, memory_order_relaxed);
        if (pc)
            (void)compute(pc);
    }
}

bool gort__cfi_pending(void) { return atomic_load_explicit(&pending_any, memory_order_relaxed); }

/* gort__cfi_warm for sysmon's thread: only if the symbolizer's lock is
 * free now (a dump may hold it for seconds; the queue waits for the next
 * round). */
void gort__cfi_warm_nowait(void)
{
    if (!gort__symlock_try())
        return;
    atomic_store_explicit(&pending_any, false, memory_order_relaxed);
    for (int i = 0; i < NPENDING; i++) {
        uintptr_t pc = atomic_exchange_explicit(&pending[i], 0, memory_order_relaxed);
        if (pc && !probe(pc)) {
            gort_cfi_t *nr = gort__symtab_alloc(sizeof *nr);
            if (nr) {
                build(pc, nr);
                insert(nr);
            }
        }
    }
    gort__symlock_release();
}
