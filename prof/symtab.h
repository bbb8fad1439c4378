/*
 * symtab.h: modules, PC classes and symbolization (prof/symtab.c).
 *
 * Used by goroutine dumps (prof/dump.c) and the CPU profiler (pprof
 * mappings and locations).  What class of code a PC is in is
 * sysmon/pcclass.c's.
 *
 * Three layers, each usable where the one above is not:
 *   1. The module table and PC classes: immutable snapshots built at init
 *      from dl_iterate_phdr, replaced (never freed) on refresh.  Reading
 *      them is async-signal-safe: no lock, no allocation.
 *   2. Per-module ELF function symbols, sorted at init: async-signal-safe
 *      name lookup (gort__symbolize with GORT_SYM_NODWARF).
 *   3. DWARF through elfutils libdwfl: function, file:line:column and the
 *      inline chain.  libdw allocates and is not thread-safe, so it runs
 *      under one lock; results are cached by PC in a lock-free table, so a
 *      PC is looked up in DWARF once per process.
 */
#ifndef GORT_PROF_SYMTAB_H
#define GORT_PROF_SYMTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pcclass.h" /* enum gort_pc_class, gort__pc_class: sysmon/pcclass.c */

/* One loaded module.  Immutable once published; lives forever. */
typedef struct gort_module {
    const char *path;     /* absolute path; "[vdso]" for the vDSO */
    uintptr_t start, end; /* the executable segment in memory: [start, end) */
    uintptr_t offset;     /* file offset of that segment (page-aligned) */
    uintptr_t bias;       /* load bias: memory address - ELF virtual address */
    uintptr_t lo, hi;     /* all loaded segments */
    char build_id[65];    /* GNU build id in hex, "" when there is none */
    uint8_t cls;          /* enum gort_pc_class of its path (pcclass.c) */
    int32_t id;           /* index in the table; stable across refreshes */
} gort_module_t;

/* A symbolized frame.  Strings live as long as the process. */
typedef struct gort_frame {
    const char *func;    /* function name; "?" when unknown */
    const char *file;    /* source file; NULL when unknown */
    const gort_module_t *module; /* module holding the PC; NULL if none */
    uintptr_t entry;     /* entry of the out-of-line function holding the PC;
                          * 0 when unknown (then no "+0x" offset is printed) */
    int32_t line, column; /* 0 when unknown */
    uint8_t inlined;     /* an inlined call: the next frame is its caller at
                          * the same PC */
    uint8_t noargs;      /* DWARF says the function takes no parameters */
    uint8_t runtime;     /* libgort's internal code: hidden from dumps unless
                          * GORT_TRACEBACK=system (public gort_* API is not) */
    uint8_t quality;     /* enum gort_sym_quality */
} gort_frame_t;

enum gort_sym_quality { GORT_SYM_NONE = 0, GORT_SYM_MODULE, GORT_SYM_SYMTAB, GORT_SYM_DWARF };

/* gort__symbolize flags. */
enum {
    /* Never wait for the DWARF lock: a few try-locks, then the symbol
     * table.  Crash paths. */
    GORT_SYM_TRYLOCK = 1,
    /* Do not enter libdw at all (it allocates): cache, symbol table,
     * module+offset only.  Async-signal-safe, even when the thread was
     * interrupted inside malloc. */
    GORT_SYM_NODWARF = 2,
};

/* Loads the module table, the symbol tables and opens every module's
 * DWARF.  Idempotent; called from gort__crash_init at runtime start, and by
 * the other entry points when needed.  Not async-signal-safe. */
void gort__symtab_init(void);

/* Re-reads the loaded modules (dlopen since the last look).  Returns true
 * if something new was found.  Not async-signal-safe. */
bool gort__symtab_refresh(void);

/* The module table: *mods points to an immutable array of the returned
 * length.  Async-signal-safe. */
int gort__modules(const gort_module_t **mods);

/* The module holding pc (any loaded segment), or NULL.  Async-signal-safe. */
const gort_module_t *gort__module_of(uintptr_t pc);

/* True when pc lies in one of libc's allocator entry points (malloc, free,
 * realloc, ...), i.e. a thread stopped with pc on its stack may hold a
 * malloc lock.  Async-signal-safe. */
bool gort__pc_in_malloc(uintptr_t pc);

/* The inline chain for pc, innermost first: out[0] is the function
 * (perhaps inlined) that holds pc, out[n-1] the out-of-line function.
 * pc is looked up as given: for a return address pass ret-1 (the call
 * instruction), for an interrupted PC pass it unchanged.  Returns the
 * number of frames written (at least 1 when max >= 1).  Thread-safe;
 * async-signal-safe with GORT_SYM_NODWARF. */
int gort__symbolize(uintptr_t pc, gort_frame_t *out, int max, int flags);

/* Cache statistics, for tests and benchmarks. */
typedef struct gort_symtab_stats {
    uint64_t lookups, hits, dwarf_lookups, fallbacks;
    size_t cached;
} gort_symtab_stats_t;
void gort__symtab_stats(gort_symtab_stats_t *out);

/* After a fault inside symbolization was recovered by a longjmp (the dump
 * does that), the DWARF lock may be held by the faulting thread and
 * libdw's state is suspect: stop using libdw and release the lock.
 * Returns true if the lock was held by the calling thread. */
bool gort__symtab_fault_recover(void);

#endif
