/*
 * shim.c: the fault-injection shim (LD_PRELOAD=build/tests/faultshim.so).
 *
 *   GORT_FAULT=CALL:N[+][:ERRNO][,CALL:N...]
 *       fail the Nth call of CALL (from the Nth on with '+'), with ERRNO
 *       (a name: ENOMEM, EAGAIN, EIO, ...) or the call's usual one:
 *         mmap munmap mprotect     ENOMEM  (out of memory, vm.max_map_count)
 *         pthread_create           EAGAIN  (RLIMIT_NPROC, pids.max)
 *         timer_create             EAGAIN  (RLIMIT_SIGPENDING)
 *         timer_settime            EINVAL
 *         membarrier               ENOSYS  (old kernel, seccomp)
 *         epoll_ctl                ENOSPC  (max_user_watches)
 *         epoll_pwait2             ENOSYS  (kernel before 5.11)
 *         write                    ENOSPC  (full disk; EIO for a bad one)
 *         madvise_guard            EINVAL  (MADV_GUARD_INSTALL, before 6.13)
 *   GORT_FAULT_COUNTS=FILE
 *       at exit, append "CALL COUNT" for every call seen (the driver picks
 *       its Ns from these).
 *   GORT_FAULT_EXE=NAME
 *       only a process whose executable is named NAME counts and fails
 *       calls; others (timeout, env, the gortprof the demo runs) pass
 *       through untouched.
 * Each injected fault is announced on stderr as
 *   faultshim: CALL #N failed (ERRNO)
 * so that the driver counts what was injected, not what it asked for.
 *
 * Only calls that go through the PLT are seen: the runtime's own, and
 * those of other libraries; not glibc's internal ones (stdio's writes,
 * malloc's mmaps, the thread stacks of pthread_create).  Its own system
 * calls are raw (no libc wrapper), so nothing it does is counted.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if !defined(__x86_64__)
#error "the fault shim's raw system calls are written for x86-64"
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef SYS_epoll_pwait2
#define SYS_epoll_pwait2 441
#endif

static long raw6(long n, long a, long b, long c, long d, long e, long f)
{
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

/* A libc-style result: -1 and errno for a raw -E. */
static long ret_errno(long r)
{
    if (r < 0 && r > -4096) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

enum { C_MMAP, C_MUNMAP, C_MPROTECT, C_PTHREAD_CREATE, C_TIMER_CREATE, C_TIMER_SETTIME, C_MEMBARRIER,
       C_EPOLL_CTL, C_EPOLL_PWAIT2, C_WRITE, C_MADVISE_GUARD, NCALLS };
static const char *const names[NCALLS] = {"mmap", "munmap", "mprotect", "pthread_create", "timer_create",
                                          "timer_settime", "membarrier", "epoll_ctl", "epoll_pwait2", "write",
                                          "madvise_guard"};
static const int default_errno[NCALLS] = {ENOMEM, ENOMEM, ENOMEM, EAGAIN, EAGAIN, EINVAL,
                                          ENOSYS, ENOSPC, ENOSYS, ENOSPC, EINVAL};
static const struct {
    const char *name;
    int e;
} errnames[] = {{"ENOMEM", ENOMEM}, {"EAGAIN", EAGAIN}, {"EIO", EIO},       {"ENOSPC", ENOSPC},
                {"ENOSYS", ENOSYS}, {"EPERM", EPERM},   {"EINVAL", EINVAL}, {"EMFILE", EMFILE}};

static _Atomic long counts[NCALLS];
static long fail_at[NCALLS]; /* 0: never */
static bool fail_from[NCALLS];
static int fail_errno[NCALLS];
static const char *counts_path;
static bool active;

static const char *errname(int e)
{
    for (size_t i = 0; i < sizeof errnames / sizeof errnames[0]; i++)
        if (errnames[i].e == e)
            return errnames[i].name;
    return "E?";
}

static void say(const char *s) { raw6(SYS_write, 2, (long)s, (long)strlen(s), 0, 0, 0); }

/* Counts a call; returns the errno to fail it with, or 0. */
static int hit(int c)
{
    if (!active)
        return 0;
    long n = atomic_fetch_add(&counts[c], 1) + 1;
    if (!fail_at[c] || n < fail_at[c] || (n > fail_at[c] && !fail_from[c]))
        return 0;
    if (!fail_from[c] || n == fail_at[c]) {
        char msg[96];
        snprintf(msg, sizeof msg, "faultshim: %s #%ld failed (%s)\n", names[c], n, errname(fail_errno[c]));
        say(msg);
    }
    return fail_errno[c];
}

__attribute__((constructor)) static void shim_init(void)
{
    const char *want = getenv("GORT_FAULT_EXE");
    if (want) {
        char exe[512];
        long n = raw6(SYS_readlink, (long)"/proc/self/exe", (long)exe, sizeof exe - 1, 0, 0, 0);
        exe[n > 0 ? n : 0] = 0;
        const char *base = strrchr(exe, '/');
        if (strcmp(base ? base + 1 : exe, want) != 0)
            return;
    }
    active = true;
    counts_path = getenv("GORT_FAULT_COUNTS");
    const char *spec = getenv("GORT_FAULT");
    if (!spec)
        return;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", spec);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(tok, ':');
        if (!colon)
            continue;
        *colon = 0;
        for (int c = 0; c < NCALLS; c++) {
            if (strcmp(tok, names[c]) != 0)
                continue;
            char *end;
            fail_at[c] = strtol(colon + 1, &end, 10);
            fail_from[c] = *end == '+';
            if (*end == '+')
                end++;
            fail_errno[c] = default_errno[c];
            if (*end == ':')
                for (size_t i = 0; i < sizeof errnames / sizeof errnames[0]; i++)
                    if (strcmp(end + 1, errnames[i].name) == 0)
                        fail_errno[c] = errnames[i].e;
        }
    }
}

__attribute__((destructor)) static void shim_fini(void)
{
    if (!counts_path)
        return;
    char out[1024];
    size_t len = 0;
    for (int c = 0; c < NCALLS; c++)
        len += (size_t)snprintf(out + len, sizeof out - len, "%s %ld\n", names[c], atomic_load(&counts[c]));
    long fd = raw6(SYS_open, (long)counts_path, O_WRONLY | O_CREAT | O_APPEND, 0644, 0, 0, 0);
    if (fd >= 0) {
        raw6(SYS_write, fd, (long)out, (long)len, 0, 0, 0);
        raw6(SYS_close, fd, 0, 0, 0, 0, 0);
    }
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    int e = hit(C_MMAP);
    if (e) {
        errno = e;
        return MAP_FAILED;
    }
    long r = raw6(SYS_mmap, (long)addr, (long)len, prot, flags, fd, (long)off);
    if (r < 0 && r > -4096) {
        errno = (int)-r;
        return MAP_FAILED;
    }
    return (void *)r;
}
void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) __attribute__((alias("mmap")));

int munmap(void *addr, size_t len)
{
    int e = hit(C_MUNMAP);
    if (e) {
        errno = e;
        return -1;
    }
    return (int)ret_errno(raw6(SYS_munmap, (long)addr, (long)len, 0, 0, 0, 0));
}

int mprotect(void *addr, size_t len, int prot)
{
    int e = hit(C_MPROTECT);
    if (e) {
        errno = e;
        return -1;
    }
    return (int)ret_errno(raw6(SYS_mprotect, (long)addr, (long)len, prot, 0, 0, 0));
}

int madvise(void *addr, size_t len, int advice)
{
    if (advice == MADV_GUARD_INSTALL) {
        int e = hit(C_MADVISE_GUARD);
        if (e) {
            errno = e;
            return -1;
        }
    }
    return (int)ret_errno(raw6(SYS_madvise, (long)addr, (long)len, advice, 0, 0, 0));
}

ssize_t write(int fd, const void *buf, size_t n)
{
    int e = hit(C_WRITE);
    if (e) {
        errno = e;
        return -1;
    }
    return ret_errno(raw6(SYS_write, fd, (long)buf, (long)n, 0, 0, 0));
}

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    int e = hit(C_EPOLL_CTL);
    if (e) {
        errno = e;
        return -1;
    }
    return (int)ret_errno(raw6(SYS_epoll_ctl, epfd, op, fd, (long)ev, 0, 0));
}

int epoll_pwait2(int epfd, struct epoll_event *evs, int max, const struct timespec *ts, const sigset_t *ss)
{
    int e = hit(C_EPOLL_PWAIT2);
    if (e) {
        errno = e;
        return -1;
    }
    return (int)ret_errno(raw6(SYS_epoll_pwait2, epfd, (long)evs, max, (long)ts, (long)ss, 8));
}

long syscall(long n, ...)
{
    va_list ap;
    va_start(ap, n);
    long a = va_arg(ap, long), b = va_arg(ap, long), c = va_arg(ap, long);
    long d = va_arg(ap, long), e = va_arg(ap, long), f = va_arg(ap, long);
    va_end(ap);
    if (n == SYS_membarrier) {
        int err = hit(C_MEMBARRIER);
        if (err) {
            errno = err;
            return -1;
        }
    }
    return ret_errno(raw6(n, a, b, c, d, e, f));
}

int pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    static int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
    if (!real)
        real = (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))dlsym(RTLD_NEXT,
                                                                                              "pthread_create");
    int e = hit(C_PTHREAD_CREATE);
    if (e)
        return e;
    return real(th, attr, fn, arg);
}

int timer_create(clockid_t clk, struct sigevent *sev, timer_t *t)
{
    static int (*real)(clockid_t, struct sigevent *, timer_t *);
    if (!real)
        real = (int (*)(clockid_t, struct sigevent *, timer_t *))dlsym(RTLD_NEXT, "timer_create");
    int e = hit(C_TIMER_CREATE);
    if (e) {
        errno = e;
        return -1;
    }
    return real(clk, sev, t);
}

int timer_settime(timer_t t, int flags, const struct itimerspec *v, struct itimerspec *ov)
{
    static int (*real)(timer_t, int, const struct itimerspec *, struct itimerspec *);
    if (!real)
        real = (int (*)(timer_t, int, const struct itimerspec *, struct itimerspec *))dlsym(RTLD_NEXT,
                                                                                          "timer_settime");
    int e = hit(C_TIMER_SETTIME);
    if (e) {
        errno = e;
        return -1;
    }
    return real(t, flags, v, ov);
}
