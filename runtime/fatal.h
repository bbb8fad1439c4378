/*
 * fatal.h: errors (fatal.c, panic.c): throw, fatal, runtime panics, the dump
 * header, and GORT_ASSERT.
 */
#ifndef GORT_RUNTIME_FATAL_H
#define GORT_RUNTIME_FATAL_H

#include "base.h"

/* "fatal error: MSG", the goroutine dump, exit 2.  Not recoverable. */
__attribute__((noreturn, format(printf, 1, 2))) void gort__throw(const char *fmt, ...);
/* Like throw but prints "fatal error: " only, without "runtime:" framing:
 * used for the user-facing fatal errors (deadlock, unlock of unlocked). */
__attribute__((noreturn, format(printf, 1, 2))) void gort__fatal(const char *fmt, ...);
/* Go's words for memory the kernel refused (mmap ENOMEM, or no mapping
 * left under vm.max_map_count): "runtime: out of memory: cannot allocate
 * N-byte block (what)", then "fatal error: out of memory". */
__attribute__((noreturn)) void gort__throw_oom(size_t n, const char *what);
/* A runtime panic ("panic: MSG"): recoverable by a deferred gort_recover. */
__attribute__((noreturn)) void gort__panic_str(const char *msg);
/* panic.c: the recoverable path of gort__panic_str, on a goroutine. */
__attribute__((noreturn)) void gort__panic_hook(const char *msg);
/* fatal.c: an unrecovered panic: print it, the dump, and exit 2. */
__attribute__((noreturn)) void gort__die_panic(const char *msg);
/* Low-level: writes a string to fd without allocating (async-signal-safe). */
void gort__write_str(int fd, const char *s);
extern _Atomic int32_t gort__panicking;
/* "gort: MSG" on stderr, once per call site: a fallback the runtime took
 * (a kernel feature missing, a resource refused) and keeps running with. */
#define gort__say_once(msg)                                                   \
    do {                                                                      \
        static _Atomic int said_;                                             \
        if (!atomic_exchange_explicit(&said_, 1, memory_order_relaxed))       \
            gort__write_str(2, "gort: " msg "\n");                            \
    } while (0)

/* Formats "goroutine N [state, M minutes]:" into buf (shared by dumps and
 * schedtrace).  Returns bytes written. */
size_t gort__format_gheader(char *buf, size_t len, gort_g_t *gp, int64_t now);

/* panic.c: runs gp's pending defers when it exits. */
void gort__defer_run_all(gort_g_t *gp);

#ifdef GORT_DEBUG_BUILD
#define GORT_ASSERT(c) do { if (unlikely(!(c))) gort__throw("assertion failed: %s (%s:%d)", #c, __FILE__, __LINE__); } while (0)
#else
#define GORT_ASSERT(c) ((void)0)
#endif

#endif /* GORT_RUNTIME_FATAL_H */
