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
#include <pthread.h>
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

static void *resolve(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    if (!p)
        gort__fatal("cannot find %s after libgort", name);
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

void gort__clocks_init(void)
{
#define X(name, ret, args) (void)REAL(name);
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
    gort_m_t *m = gort__getm();
    gort_g_t *gp = m ? m->curg : NULL;
    if (!gp)
        return;
    if (atomic_load_explicit(&gp->nopreempt, memory_order_relaxed) == 0)
        gort__fatal("gort_preempt_on without gort_preempt_off");
    GORT_OWNER_ADD(&gp->nopreempt, -1);
    unpin(m, gp);
}
