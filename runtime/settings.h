/*
 * settings.h: environment-derived settings (main.c): read once at init, then
 * constant.
 */
#ifndef GORT_RUNTIME_SETTINGS_H
#define GORT_RUNTIME_SETTINGS_H

#include "base.h"

/* Environment-derived settings (main.c). */
typedef struct gort_settings {
    int64_t slice_ns;        /* GORT_SLICE_US */
    size_t stack_size;       /* GORT_STACK_SIZE */
    int schedtrace_ms;       /* GORT_DEBUG=schedtrace=MS */
    int scheddetail;         /* GORT_DEBUG=scheddetail=1 */
    int asyncpreemptoff;     /* GORT_DEBUG=asyncpreemptoff=1 */
    int randomize;           /* GORT_DEBUG=randomize=1 (or DEBUG builds) */
    int traceback;           /* GORT_TRACEBACK: 0 none, 1 single, 2 all, 3 system, 4 crash */
    int nodeadlock;          /* GORT_DEBUG=deadlock=0 */
    int mutexfence;          /* GORT_DEBUG=mutexfence=1: gort_mutex unlocks by atomic add */
    int nochansolo;          /* GORT_DEBUG=chansolo=0: channel locks always by CAS */
    int preempt_sig;         /* GORT_PREEMPT_SIGNAL (SIGURG) */
    int lockstat;            /* GORT_DEBUG=lockstat=1: runtime lock statistics */
} gort_settings_t;
extern gort_settings_t gort__settings;

#endif /* GORT_RUNTIME_SETTINGS_H */
