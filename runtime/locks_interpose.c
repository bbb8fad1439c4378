/*
 * locks_interpose.c: a goroutine that holds a C lock stays on its thread.
 *
 * glibc's mutexes belong to threads: a recursive or error-checking mutex
 * records its owner's thread id, and a goroutine that moved to another
 * thread while holding one "re-enters" it from the wrong thread, fails to
 * unlock it (EPERM), or lets a second goroutine on the old thread in.  So
 * libgort defines pthread_mutex_lock/trylock/timedlock/clocklock/unlock,
 * the pthread_rwlock_* lock and unlock calls, pthread_spin_lock/trylock/
 * unlock and C11's mtx_lock/trylock/timedlock/unlock.  Each forwards to the
 * next definition (libc's) and, when the call took or released a lock on a
 * goroutine, counts it in g->clocks.  While g->clocks or g->nopreempt
 * (gort_preempt_off) is non-zero the goroutine is pinned to its M with the
 * gort_lock_thread mechanism (the M waits for its G when the G blocks in a
 * runtime call: stoplockedm/startlockedm in sched.c), and the SIGURG
 * handler refuses to preempt it (sysmon/preempt.c, counted).  A goroutine
 * may still block while it holds a lock: a thread asleep in the kernel is
 * what sysmon's retake handles.  The pin is undone when both counts are
 * back to zero, unless gort_lock_thread's own count still holds it.
 *
 * Invariants: g->clocks counts successful lock calls minus successful
 * unlock calls made on this goroutine, never below zero (an unlock of a
 * lock taken elsewhere, say before gort_main, is not counted);
 * clocks + nopreempt > 0 implies g->lockedm == the running M.
 *
 * Link modes.  libgort.a: the definitions sit in this object, which runtime
 * init always references (gort__clocks_init), so every program linked with
 * the archive gets them; a definition in the executable is exported to its
 * dynamic symbol table (libc.so defines the same names) and comes first in
 * symbol lookup, so calls from shared libraries (libstdc++'s
 * std::recursive_mutex, glib) bind to it too.  libgort.so: it is loaded
 * before libc.so (the link order puts libc last), so lookup finds it
 * first.  Either way dlsym(RTLD_NEXT) from here finds the next definition
 * (libc's, or a sanitizer's interceptor), resolved once at init and, for
 * locks taken before that (C++ static constructors), on first use.
 * libgort.so loaded with dlopen does not interpose anything.
 *
 * A fully static executable (libc.a) has no RTLD_NEXT.  There libc.a's
 * public lock names are weak aliases of internal strong ones
 * (__pthread_mutex_lock, ___pthread_rwlock_tryrdlock, ...), in members that
 * our definitions would keep out of the link.  This object therefore
 * declares those internal names as undefined globals without any
 * relocation against them: a static link pulls libc.a's members for them,
 * a dynamic link ignores them (no relocation, nothing to resolve).  Their
 * addresses are then read from the executable's symbol table (libelf), as
 * no relocation may name them.  Spinlocks fall back to glibc's simple
 * algorithm and C11 mtx_* to the mutex functions.  A stripped static
 * executable cannot be served: a lock call there dies with a fatal error
 * naming the function rather than run unforwarded.
 *
 * Rejected for static links: weak references to the internal names (a
 * weak reference pulls no archive member: libdw's first
 * pthread_rwlock_tryrdlock found nothing); strong references (a dynamic
 * link fails: libc.so has no default version of them).
 *
 * Both halves run in libgort's code (section gort_text), which the
 * preemption check treats as the runtime: between the real lock returning
 * and the count going up, the goroutine cannot be preempted.  A signal
 * handler that takes and releases a lock on the same thread (libunwind
 * inside the SIGURG or SIGPROF handler) leaves the counts as it found them.
 *
 * Rejected: glibc's __pthread_mutex_lock and friends are compat symbols
 * (GLIBC_2.2.5, no default version): a new program cannot link to them,
 * and spin, timed and mtx calls have none.  -Wl,--wrap works only for the
 * objects the user links and asks them to change their link line.
 */
#include "runtime.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <link.h>
#include <pthread.h>
#include <unistd.h>
#include <string.h>
#include <threads.h>
#include <time.h>

_Atomic uint64_t gort__pstat_refused_lock, gort__pstat_refused_marked;

/* ---- the counts ---- */

static inline void pin(gort_m_t *m, gort_g_t *gp)
{
    if (!gp->lockedm) {
        gp->lockedm = m;
        m->lockedg = gp;
    }
}

static inline void unpin(gort_m_t *m, gort_g_t *gp)
{
    if (gp->lockedext == 0 && !gort__g_pinned(gp)) {
        gp->lockedm = NULL;
        m->lockedg = NULL;
    }
}

static inline void held_add(void)
{
    gort_m_t *m = gort__getm();
    gort_g_t *gp = m ? m->curg : NULL;
    if (!gp)
        return;
    GORT_OWNER_INC(&gp->clocks);
    pin(m, gp);
}

static inline void held_sub(void)
{
    gort_m_t *m = gort__getm();
    gort_g_t *gp = m ? m->curg : NULL;
    if (!gp || atomic_load_explicit(&gp->clocks, memory_order_relaxed) == 0)
        return;
    GORT_OWNER_ADD(&gp->clocks, -1);
    unpin(m, gp);
}

/* ---- the real functions ---- */

#define REAL_LIST(X)                                                                              \
    X(pthread_mutex_lock, int, (pthread_mutex_t *))                                               \
    X(pthread_mutex_trylock, int, (pthread_mutex_t *))                                            \
    X(pthread_mutex_timedlock, int, (pthread_mutex_t *, const struct timespec *))                 \
    X(pthread_mutex_clocklock, int, (pthread_mutex_t *, clockid_t, const struct timespec *))      \
    X(pthread_mutex_unlock, int, (pthread_mutex_t *))                                             \
    X(pthread_rwlock_rdlock, int, (pthread_rwlock_t *))                                           \
    X(pthread_rwlock_wrlock, int, (pthread_rwlock_t *))                                           \
    X(pthread_rwlock_tryrdlock, int, (pthread_rwlock_t *))                                        \
    X(pthread_rwlock_trywrlock, int, (pthread_rwlock_t *))                                        \
    X(pthread_rwlock_timedrdlock, int, (pthread_rwlock_t *, const struct timespec *))             \
    X(pthread_rwlock_timedwrlock, int, (pthread_rwlock_t *, const struct timespec *))             \
    X(pthread_rwlock_clockrdlock, int, (pthread_rwlock_t *, clockid_t, const struct timespec *))  \
    X(pthread_rwlock_clockwrlock, int, (pthread_rwlock_t *, clockid_t, const struct timespec *))  \
    X(pthread_rwlock_unlock, int, (pthread_rwlock_t *))                                           \
    X(pthread_spin_lock, int, (pthread_spinlock_t *))                                             \
    X(pthread_spin_trylock, int, (pthread_spinlock_t *))                                          \
    X(pthread_spin_unlock, int, (pthread_spinlock_t *))                                           \
    X(mtx_lock, int, (mtx_t *))                                                                   \
    X(mtx_trylock, int, (mtx_t *))                                                                \
    X(mtx_timedlock, int, (mtx_t *, const struct timespec *))                                     \
    X(mtx_unlock, int, (mtx_t *))

/* Each pointer is written with the same value by whoever resolves it
 * first (relaxed: any thread may redo the lookup harmlessly). */
#define X(name, ret, args) static _Atomic(ret(*) args) real_##name;
REAL_LIST(X)
#undef X

/* ---- fully static executables (see the file comment) ---- */

#define STATIC_LIST(X)                                                         \
    X(pthread_mutex_lock, __pthread_mutex_lock)                                \
    X(pthread_mutex_trylock, __pthread_mutex_trylock)                          \
    X(pthread_mutex_timedlock, __pthread_mutex_timedlock)                      \
    X(pthread_mutex_clocklock, __pthread_mutex_clocklock)                      \
    X(pthread_mutex_unlock, __pthread_mutex_unlock)                            \
    X(pthread_rwlock_rdlock, __pthread_rwlock_rdlock)                          \
    X(pthread_rwlock_wrlock, __pthread_rwlock_wrlock)                          \
    X(pthread_rwlock_tryrdlock, ___pthread_rwlock_tryrdlock)                   \
    X(pthread_rwlock_trywrlock, ___pthread_rwlock_trywrlock)                   \
    X(pthread_rwlock_timedrdlock, ___pthread_rwlock_timedrdlock)               \
    X(pthread_rwlock_timedwrlock, ___pthread_rwlock_timedwrlock)               \
    X(pthread_rwlock_clockrdlock, ___pthread_rwlock_clockrdlock)               \
    X(pthread_rwlock_clockwrlock, ___pthread_rwlock_clockwrlock)               \
    X(pthread_rwlock_unlock, __pthread_rwlock_unlock)                          \
    X(pthread_spin_lock, __pthread_spin_lock)                                  \
    X(pthread_spin_trylock, __pthread_spin_trylock)                            \
    X(pthread_spin_unlock, __pthread_spin_unlock)                              \
    X(mtx_lock, __mtx_lock)                                                    \
    X(mtx_trylock, __mtx_trylock)                                              \
    X(mtx_timedlock, __mtx_timedlock)                                          \
    X(mtx_unlock, __mtx_unlock)

/* The undefined globals that pull libc.a's members (see the file comment).
 * Not in libgort.so: a shared object's undefined symbols must resolve when
 * a program links against it.  The Makefile builds this file a second time
 * with GORT_SHARED_LIB for it. */
#ifndef GORT_SHARED_LIB
#define X(name, internal) __asm__(".globl " #internal);
STATIC_LIST(X)
#undef X
#endif

/* The executable's load bias: its dl_iterate_phdr entry comes first. */
static int first_addr(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    *(uintptr_t *)arg = info->dlpi_addr;
    return 1;
}

/* name's address from the executable's .symtab, or NULL. */
static void *exe_symbol(const char *name)
{
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    void *found = NULL;
    elf_version(EV_CURRENT);
    Elf *e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    for (Elf_Scn *s = e ? elf_nextscn(e, NULL) : NULL; s && !found; s = elf_nextscn(e, s)) {
        GElf_Shdr sh;
        if (!gelf_getshdr(s, &sh) || sh.sh_type != SHT_SYMTAB || sh.sh_entsize == 0)
            continue;
        Elf_Data *d = elf_getdata(s, NULL);
        for (size_t i = 0; d && i < sh.sh_size / sh.sh_entsize; i++) {
            GElf_Sym sym;
            const char *n;
            if (gelf_getsym(d, (int)i, &sym) && sym.st_shndx != SHN_UNDEF &&
                GELF_ST_TYPE(sym.st_info) == STT_FUNC && (n = elf_strptr(e, sh.sh_link, sym.st_name)) &&
                strcmp(n, name) == 0) {
                uintptr_t bias = 0;
                dl_iterate_phdr(first_addr, &bias);
                found = (void *)(bias + (uintptr_t)sym.st_value);
                break;
            }
        }
    }
    if (e)
        elf_end(e);
    close(fd);
    return found;
}

/* glibc's spinlock: an int, 0 free; exchange to take, release store of 0. */
static int own_spin_lock(pthread_spinlock_t *l)
{
    while (atomic_exchange_explicit((_Atomic int *)l, 1, memory_order_acquire) != 0)
        while (atomic_load_explicit((_Atomic int *)l, memory_order_relaxed) != 0)
            gort__cpu_relax();
    return 0;
}
static int own_spin_trylock(pthread_spinlock_t *l)
{
    return atomic_exchange_explicit((_Atomic int *)l, 1, memory_order_acquire) == 0 ? 0 : EBUSY;
}
static int own_spin_unlock(pthread_spinlock_t *l)
{
    atomic_store_explicit((_Atomic int *)l, 0, memory_order_release);
    return 0;
}

/* mtx_t is a pthread_mutex_t in glibc; the error mapping is glibc's. */
static int thrd_of(int e)
{
    switch (e) {
    case 0: return thrd_success;
    case EBUSY: return thrd_busy;
    case ETIMEDOUT: return thrd_timedout;
    case ENOMEM: return thrd_nomem;
    default: return thrd_error;
    }
}
static int own_mtx_lock(mtx_t *m);
static int own_mtx_trylock(mtx_t *m);
static int own_mtx_timedlock(mtx_t *restrict m, const struct timespec *restrict t);
static int own_mtx_unlock(mtx_t *m);

static void *static_fallback(const char *name)
{
    static const struct { const char *name; void *fn; } own[] = {
        {"pthread_spin_lock", (void *)own_spin_lock},
        {"pthread_spin_trylock", (void *)own_spin_trylock},
        {"pthread_spin_unlock", (void *)own_spin_unlock},
        {"mtx_lock", (void *)own_mtx_lock},
        {"mtx_trylock", (void *)own_mtx_trylock},
        {"mtx_timedlock", (void *)own_mtx_timedlock},
        {"mtx_unlock", (void *)own_mtx_unlock},
    };
#define X(n, internal)         \
    if (!strcmp(name, #n)) {    \
        void *p_ = exe_symbol(#internal); \
        if (p_)                 \
            return p_;          \
    }
    STATIC_LIST(X)
#undef X
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (!strcmp(name, own[i].name))
            return own[i].fn;
    return NULL;
}

static void *resolve(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    if (!p)
        p = static_fallback(name);
    if (!p)
        gort__fatal("%s: libc's definition is not linked (static executable)", name);
    return p;
}

#define REAL(name)                                                                        \
    ({                                                                                    \
        __typeof__(atomic_load_explicit(&real_##name, memory_order_relaxed)) f_ =         \
            atomic_load_explicit(&real_##name, memory_order_relaxed);                     \
        if (unlikely(!f_)) {                                                              \
            f_ = (__typeof__(f_))resolve(#name);                                          \
            atomic_store_explicit(&real_##name, f_, memory_order_relaxed);                \
        }                                                                                 \
        f_;                                                                               \
    })

static int own_mtx_lock(mtx_t *m) { return thrd_of(REAL(pthread_mutex_lock)((pthread_mutex_t *)m)); }
static int own_mtx_trylock(mtx_t *m) { return thrd_of(REAL(pthread_mutex_trylock)((pthread_mutex_t *)m)); }
static int own_mtx_timedlock(mtx_t *restrict m, const struct timespec *restrict t)
{
    return thrd_of(REAL(pthread_mutex_timedlock)((pthread_mutex_t *)m, t));
}
static int own_mtx_unlock(mtx_t *m) { return thrd_of(REAL(pthread_mutex_unlock)((pthread_mutex_t *)m)); }

/* Resolves what can be resolved now; in a static executable a function
 * whose libc member is missing dies only if it is called. */
void gort__clocks_init(void)
{
#define X(name, ret, args)                                                            \
    if (!atomic_load_explicit(&real_##name, memory_order_relaxed)) {                  \
        void *p_ = dlsym(RTLD_NEXT, #name);                                           \
        if (!p_)                                                                      \
            p_ = static_fallback(#name);                                              \
        atomic_store_explicit(&real_##name, (__typeof__(real_##name))p_, memory_order_relaxed); \
    }
    REAL_LIST(X)
#undef X
}

/* ---- the interposers ---- */

/* A robust mutex whose owner died is acquired with EOWNERDEAD. */
#define MUTEX_TOOK(r) ((r) == 0 || (r) == EOWNERDEAD)

#define LOCKER(name, proto, call, took)                   \
    GORT_API int name proto;                              \
    int name proto                                        \
    {                                                     \
        int r = REAL(name) call;                          \
        if (took)                                         \
            held_add();                                   \
        return r;                                         \
    }
#define UNLOCKER(name, proto, call, ok)                   \
    GORT_API int name proto;                              \
    int name proto                                        \
    {                                                     \
        int r = REAL(name) call;                          \
        if (ok)                                           \
            held_sub();                                   \
        return r;                                         \
    }

LOCKER(pthread_mutex_lock, (pthread_mutex_t *mu), (mu), MUTEX_TOOK(r))
LOCKER(pthread_mutex_trylock, (pthread_mutex_t *mu), (mu), MUTEX_TOOK(r))
LOCKER(pthread_mutex_timedlock, (pthread_mutex_t *mu, const struct timespec *t), (mu, t), MUTEX_TOOK(r))
LOCKER(pthread_mutex_clocklock, (pthread_mutex_t *mu, clockid_t c, const struct timespec *t), (mu, c, t),
       MUTEX_TOOK(r))
UNLOCKER(pthread_mutex_unlock, (pthread_mutex_t *mu), (mu), r == 0)

LOCKER(pthread_rwlock_rdlock, (pthread_rwlock_t *l), (l), r == 0)
LOCKER(pthread_rwlock_wrlock, (pthread_rwlock_t *l), (l), r == 0)
LOCKER(pthread_rwlock_tryrdlock, (pthread_rwlock_t *l), (l), r == 0)
LOCKER(pthread_rwlock_trywrlock, (pthread_rwlock_t *l), (l), r == 0)
LOCKER(pthread_rwlock_timedrdlock, (pthread_rwlock_t *l, const struct timespec *t), (l, t), r == 0)
LOCKER(pthread_rwlock_timedwrlock, (pthread_rwlock_t *l, const struct timespec *t), (l, t), r == 0)
LOCKER(pthread_rwlock_clockrdlock, (pthread_rwlock_t *l, clockid_t c, const struct timespec *t), (l, c, t), r == 0)
LOCKER(pthread_rwlock_clockwrlock, (pthread_rwlock_t *l, clockid_t c, const struct timespec *t), (l, c, t), r == 0)
UNLOCKER(pthread_rwlock_unlock, (pthread_rwlock_t *l), (l), r == 0)

LOCKER(pthread_spin_lock, (pthread_spinlock_t *l), (l), r == 0)
LOCKER(pthread_spin_trylock, (pthread_spinlock_t *l), (l), r == 0)
UNLOCKER(pthread_spin_unlock, (pthread_spinlock_t *l), (l), r == 0)

LOCKER(mtx_lock, (mtx_t *mu), (mu), r == thrd_success)
LOCKER(mtx_trylock, (mtx_t *mu), (mu), r == thrd_success)
LOCKER(mtx_timedlock, (mtx_t *restrict mu, const struct timespec *restrict t), (mu, t), r == thrd_success)
UNLOCKER(mtx_unlock, (mtx_t *mu), (mu), r == thrd_success)

/* ---- no-preempt regions ---- */

void gort_preempt_off(void)
{
    gort__fork_check();
    gort_m_t *m = gort__getm();
    gort_g_t *gp = m ? m->curg : NULL;
    if (!gp)
        return;
    if (atomic_load_explicit(&gp->nopreempt, memory_order_relaxed) == INT32_MAX)
        gort__fatal("gort_preempt_off nesting overflow");
    GORT_OWNER_INC(&gp->nopreempt);
    pin(m, gp);
}

void gort_preempt_on(void)
{
    gort__fork_check();
    gort_m_t *m = gort__getm();
    gort_g_t *gp = m ? m->curg : NULL;
    if (!gp)
        return;
    if (atomic_load_explicit(&gp->nopreempt, memory_order_relaxed) == 0)
        gort__fatal("gort_preempt_on without gort_preempt_off");
    GORT_OWNER_ADD(&gp->nopreempt, -1);
    unpin(m, gp);
}
