/*
 * pcclass.h: what code a PC is in (sysmon/pcclass.c).  The one classifier
 * that preemption (sysmon/preempt.c), the unwinder (prof/unwind.c), the
 * crash handler and the dump (prof/crash.c, prof/symtab.c) all use.
 */
#ifndef GORT_SYSMON_PCCLASS_H
#define GORT_SYSMON_PCCLASS_H

#include <stdbool.h>
#include <stdint.h>

enum gort_pc_class {
    GORT_PC_UNKNOWN = 0, /* in no module we know of (JIT code, a module loaded
                          * since the last refresh, garbage): unsafe */
    GORT_PC_USER,        /* the executable or a library not listed: safe */
    GORT_PC_GORT,        /* libgort itself (section gort_text, or libgort.so) */
    GORT_PC_VDSO,        /* the vDSO: reentrant, safe */
    GORT_PC_GORT_CALL,   /* libgort's frames that sit under user code
                          * (runtime/panic.c's gort_call, defer runner and
                          * panic loop, section gort_user_text): safe to
                          * preempt like user code, libgort's in dumps */
    /* Unsafe: code that may hold a lock the runtime, the handler or the
     * dump needs, or keeps per-thread state a moved goroutine would
     * corrupt. */
    GORT_PC_LIBC,        /* libc (and the libpthread/libdl/librt stubs) */
    GORT_PC_LOADER,      /* the dynamic loader (ld-linux) */
    GORT_PC_UNWIND,      /* libunwind */
    GORT_PC_DW,          /* libdw, libelf and their decompressors */
    GORT_PC_LANGRT,      /* libgcc_s, libstdc++ (unwinder, allocator locks) */
    GORT_PC_ALLOC,       /* malloc replacements with per-thread caches */
    GORT_PC_SANITIZER,   /* sanitizer runtimes (per-thread allocator caches) */
    GORT_PC_LISTED,      /* named in GORT_PREEMPT_UNSAFE */
    GORT_PC_NOPREEMPT,   /* a GORT_NOPREEMPT function (nopreempt.c): no
                          * preemption, but safe to unwind and symbolize */
    GORT_PC_NCLASSES
};

/* Reads GORT_PREEMPT_UNSAFE and builds the PC table.  Idempotent; sysmon's
 * start and the symbol tables' init call it.  Not async-signal-safe. */
void gort__pc_classes_init(void);
/* Re-reads the loaded modules (sysmon, when gort__pc_classes_stale()). */
void gort__pc_classes_refresh(void);
/* A lookup met a PC in no known module since the last refresh. */
bool gort__pc_classes_stale(void);

/* The class of a module from its path (basename prefixes, one table). */
int gort__pc_class_of_path(const char *path);
/* The class of the code at pc.  Async-signal-safe: a seqlock-read table,
 * no lock, no allocation.  A miss is GORT_PC_UNKNOWN and asks sysmon to
 * refresh the table. */
int gort__pc_class(uintptr_t pc);
/* The one rule: true for every class but USER, GORT, GORT_CALL, VDSO and
 * NOPREEMPT (user code the user asked us not to preempt; preempt.c checks
 * that class itself, and the unwinder and the dump may enter it).
 * (GORT is not "unsafe" here: preemption and the dump treat runtime frames
 * apart.) */
static inline bool gort__pc_class_unsafe(int cls)
{
    return cls != GORT_PC_USER && cls != GORT_PC_GORT && cls != GORT_PC_GORT_CALL && cls != GORT_PC_VDSO &&
           cls != GORT_PC_NOPREEMPT;
}
/* libgort's code, either kind: hidden from dumps unless GORT_TRACEBACK=system. */
static inline bool gort__pc_class_is_gort(int cls) { return cls == GORT_PC_GORT || cls == GORT_PC_GORT_CALL; }
static inline bool gort__pc_is_unsafe(uintptr_t pc) { return gort__pc_class_unsafe(gort__pc_class(pc)); }

/* False in a fully static executable (libc inside the executable, no
 * module boundary to judge by): asynchronous preemption is then off. */
bool gort__pc_classes_libc_separate(void);

/* The module's GORT_NOPREEMPT code (section gort_nopreempt), if it has
 * any (nopreempt.c).  Not async-signal-safe. */
struct dl_phdr_info;
bool gort__nopreempt_range(const struct dl_phdr_info *info, uintptr_t *lo, uintptr_t *hi);

#endif
