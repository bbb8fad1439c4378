/*
 * symtab_int.h: what prof/symtab.c shares with prof/cfi.c, which computes
 * unwind recipes from the same Dwfl under the same lock.  Not for other
 * users.
 */
#ifndef GORT_PROF_SYMTAB_INT_H
#define GORT_PROF_SYMTAB_INT_H

#include <elfutils/libdwfl.h>
#include <stdbool.h>
#include <stdint.h>

/* The DWARF lock: dwfl and the arena.  acquire returns false (lock not
 * taken) only with trylock, after a bounded number of attempts. */
bool gort__symlock_acquire(bool trylock);
bool gort__symlock_try(void); /* one trylock, no giving up on DWARF */
void gort__symlock_release(void);
/* Under the lock: the Dwfl module holding pc (NULL if none). */
Dwfl_Module *gort__symtab_dwfl_module(uintptr_t pc);
/* Under the lock: memory that lives as long as the process. */
void *gort__symtab_alloc(size_t n);
/* gort__symtab_init has completed. */
bool gort__symtab_ready(void);

#endif
