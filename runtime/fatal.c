/*
 * fatal.c: how the runtime dies.
 *
 *   gort__throw  "fatal error: MSG" for broken runtime invariants; the
 *                dump includes runtime frames (as GOTRACEBACK=system).
 *   gort__fatal  "fatal error: MSG" for user-facing unrecoverable errors
 *                (deadlock, unlock of unlocked mutex).
 *   gort__panic_str  "panic: MSG": a runtime panic, recoverable by a
 *                deferred gort_recover, as in Go (panic.c).
 * All three print the goroutine dump and exit with status 2.
 *
 * Only one thread prints: the first to raise gort__panicking.  Any other
 * thread that fails meanwhile sleeps forever rather than interleave its
 * output (Go does the same).  Output goes straight to fd 2 with write(2):
 * stdio may be locked by the thread that crashed.
 */
#include "runtime.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Atomic int32_t gort__panicking;

void gort__write_str(int fd, const char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        s += w;
        n -= (size_t)w;
    }
}

static __attribute__((noreturn)) void die(const char *prefix, const char *msg, bool all, bool system)
{
    int32_t was = atomic_fetch_add(&gort__panicking, 1);
    if (was > 0) {
        /* Someone else is already printing; wait for them to exit. */
        for (;;)
            pause();
    }
    char buf[1024];
    snprintf(buf, sizeof buf, "%s%s\n", prefix, msg);
    gort__write_str(2, buf);
    int tb = gort__settings.traceback;
    if (tb > 0) {
        gort__write_str(2, "\n");
        bool dump_all = all || tb >= 2;
        (void)system;
        gort__hook(dump_goroutines, 2, dump_all, true);
    }
    /* The CPU profiler flushes its profile: a profile of a program that
     * dies with a fatal error is still written. */
    gort__hook(before_fatal);
    if (tb >= 4)
        abort();
    _exit(2);
}

void gort__throw(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    die("fatal error: ", msg, true, true);
}

void gort__throw_oom(size_t n, const char *what)
{
    char msg[160];
    snprintf(msg, sizeof msg, "runtime: out of memory: cannot allocate %zu-byte block (%s)\n", n, what);
    gort__write_str(2, msg);
    gort__throw("out of memory");
}

void gort__fatal(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    die("fatal error: ", msg, true, false);
}

void gort__panic_str(const char *msg)
{
    if (gort__getg())
        gort__panic_hook(msg);
    die("panic: ", msg, false, false);
}

void gort__die_panic(const char *msg) { die("panic: ", msg, false, false); }
