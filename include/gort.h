/*
 * gort.h: the public API of the gort runtime, a Go-style M:N scheduler for C.
 *
 * Goroutines are multiplexed onto OS threads (M) through processors (P).
 * Everything a goroutine may block on (channels, select, sleep, sync
 * primitives, wrapped system calls) parks the goroutine and lets its thread
 * run others.  Misuse (sending on a closed channel, unlocking an unlocked
 * mutex, ...) ends the program with Go's words and a goroutine dump.
 *
 * Types the user allocates (gort_waitgroup, gort_mutex, ...) are defined
 * here so they can live in structs or on the stack; their fields are
 * private.  Zero-initialised means ready, as in Go.
 *
 * How calls report errors:
 *
 *   kind of call                      on error
 *   --------------------------------  ------------------------------------
 *   misuse of any call (send on a     "fatal error: ..." or "panic: ..."
 *   closed channel, unlock of an      with Go's words, a goroutine dump,
 *   unlocked mutex, negative wait     exit status 2; runtime panics are
 *   group counter, ...)               recoverable (gort_defer.h)
 *   system-call wrappers (gort_read,  -1 and errno, as the call they wrap
 *   gort_write, gort_poll, ...)       (read errno at once: see below)
 *   gort_prof.h, gort_ctx.h (files,   a negative errno value (0 or more:
 *   profiles, contexts, errgroups)    success); errno is never used
 *
 * Thread-local state: a goroutine may resume on another OS thread after any
 * call that can block and, because of asynchronous preemption, between any
 * two instructions of user code.  errno and __thread variables belong to the
 * thread, not the goroutine.  Read errno immediately after the call that set
 * it, or pin the goroutine with gort_lock_thread().  See docs/runtime.md.
 *
 * Threads gort did not start (the program's own pthreads, a library's
 * callback thread) may make every call here, blocking ones included: a
 * blocking call (channel send and receive, select, sleep, timers' channels,
 * WaitGroup wait, mutex, rwmutex, cond, once, sema, the context and
 * errgroup waits) queues the thread beside the goroutines in the same FIFO
 * order and blocks it in the kernel until the operation completes.  Marked
 * below:
 *   [goroutine only]  fatal error from a plain thread: gort_defer,
 *                     gort_call, and gort_maxprocs(n > 0) while gort_main
 *                     runs;
 *   [plain: ...]      what the call does on a plain thread, where it
 *                     differs.
 * While a plain thread is alive the runtime cannot know it will never wake
 * a goroutine, so "all goroutines are asleep - deadlock!" is not reported.
 */
#ifndef GORT_H
#define GORT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The version, in this one place: the Makefile (SONAME libgort.so.MAJOR,
 * gort.pc, the CMake package), gortprof --version and debian/changelog's
 * check all read it from here.  A change that breaks the ABI (make
 * abi-check) moves MAJOR. */
#define GORT_VERSION_MAJOR 0
#define GORT_VERSION_MINOR 1
#define GORT_VERSION_PATCH 0
#define GORT__STR2(x) #x
#define GORT__STR(x) GORT__STR2(x)
#define GORT_VERSION_STRING                                                    \
    GORT__STR(GORT_VERSION_MAJOR) "." GORT__STR(GORT_VERSION_MINOR) "." GORT__STR(GORT_VERSION_PATCH)

#if defined(GORT_BUILDING)
#define GORT_API __attribute__((visibility("default")))
#else
#define GORT_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The version of the library the program runs with, "MAJOR.MINOR.PATCH";
 * GORT_VERSION_STRING is the one it was compiled against. */
GORT_API const char *gort_version(void);

/* ------------------------------------------------------------------ */
/* Goroutines and the scheduler                                         */
/* ------------------------------------------------------------------ */

/* Starts the runtime (once), runs fn(arg) as goroutine 1 and returns 0 when
 * it returns.  Other goroutines are abandoned, as in Go: the world is
 * stopped and they stay where they are.  May be called again after it
 * returns; the abandoned goroutines then resume. */
GORT_API int gort_main(void (*fn)(void *), void *arg);

/* Starts fn(arg) as a new goroutine; returns its id.  Callable from any
 * goroutine, and from a thread that is not a goroutine once the runtime
 * has started. */
GORT_API uint64_t gort_go(void (*fn)(void *), void *arg);

GORT_API void gort_yield(void);              /* runtime.Gosched [plain: sched_yield] */
GORT_API void gort_sleep(int64_t ns);        /* time.Sleep; ns <= 0 returns at once [plain: nanosleep] */
GORT_API int64_t gort_nanotime(void);        /* monotonic clock, ns */
GORT_API uint64_t gort_self(void);           /* running goroutine's id; 0 outside one [plain: 0] */
/* n > 0 sets; returns the previous value.  [goroutine only while gort_main
 * runs, for n > 0; before it, any thread: applies at the next start] */
GORT_API int gort_maxprocs(int n);
GORT_API int gort_numgoroutine(void);        /* live goroutines, as runtime.NumGoroutine */
/* One live goroutine, as gort_goroutines lists it. */
typedef struct gort_goroutine_info {
    uint64_t goid;
    uint64_t parent_goid; /* the goroutine that called gort_go; 0: none */
    uintptr_t created_pc; /* return address of that gort_go call */
} gort_goroutine_info;
/* The live goroutines: fills up to max entries of out (in no particular
 * order) and returns how many there are; call again with more room if
 * that is more than max.  A snapshot: goroutines come and go meanwhile. */
GORT_API int gort_goroutines(gort_goroutine_info *out, int max);
GORT_API int gort_numcpu(void);              /* CPUs this process may use */

/* Pins the calling goroutine to its OS thread (runtime.LockOSThread):
 * calls nest; the goroutine runs only on this thread and the thread runs
 * nothing else until the matching number of unlocks.  [plain: no-op, a
 * plain thread is always its own] */
GORT_API void gort_lock_thread(void);
GORT_API void gort_unlock_thread(void);

/* Code that keeps thread-local state across instructions: a __thread
 * address held in a local, a per-thread cache, a lock whose owner is the
 * thread.
 *
 * C locks: while a goroutine holds a pthread mutex (any type), rwlock or
 * spinlock, or a C11 mtx_t, taken through libc's functions, it is not
 * preempted asynchronously and does not change threads, not even at a
 * runtime call (it may block; its thread then waits for it).  libgort
 * interposes those functions (docs/runtime.md, "C locks").
 *
 * GORT_NOPREEMPT marks a function: no goroutine is preempted
 * asynchronously while a frame of it is on its stack, as for libc.  Runtime
 * calls it makes may still move the goroutine to another thread.  The
 * function is never inlined into its callers; what it calls is not marked.
 *
 * gort_preempt_off() .. gort_preempt_on(): a region (calls nest) in which
 * the goroutine is neither preempted asynchronously nor moved to another
 * thread.  A call that blocks the goroutine inside one (a channel
 * operation, gort_sleep, a gort_mutex that is taken) is a fatal error;
 * blocking system calls are allowed.  Outside a goroutine both do nothing.
 *
 * gort_stats counts the preemptions each of these refused. */
#if defined(__clang__)
#define GORT_NOPREEMPT __attribute__((section("gort_nopreempt"), noinline))
#else
#define GORT_NOPREEMPT __attribute__((section("gort_nopreempt"), noinline, noclone))
#endif
GORT_API void gort_preempt_off(void);
GORT_API void gort_preempt_on(void);

/* sync.WaitGroup.  Zero-initialised is ready. */
typedef struct gort_waitgroup {
    uint64_t _state; /* private: counter << 32 | waiters */
    uint32_t _sema;  /* private */
} gort_waitgroup;
GORT_API void gort_wg_add(gort_waitgroup *, int64_t delta);
GORT_API void gort_wg_done(gort_waitgroup *);
GORT_API void gort_wg_wait(gort_waitgroup *);

/* ------------------------------------------------------------------ */
/* Channels and select                                                  */
/* ------------------------------------------------------------------ */

typedef struct gort_chan gort_chan;
GORT_API gort_chan *gort_chan_make(size_t elem_size, size_t cap);
GORT_API void gort_chan_send(gort_chan *, const void *elem);
/* false once closed and drained; then *elem is zeroed.  elem may be NULL. */
GORT_API bool gort_chan_recv(gort_chan *, void *elem);
GORT_API void gort_chan_close(gort_chan *);
GORT_API void gort_chan_free(gort_chan *);
GORT_API size_t gort_chan_len(gort_chan *);
GORT_API size_t gort_chan_cap(gort_chan *);
/* Non-blocking forms (select with one case and default). */
GORT_API bool gort_chan_trysend(gort_chan *, const void *elem);
GORT_API bool gort_chan_tryrecv(gort_chan *, void *elem, bool *ok);

enum { GORT_SEND = 1, GORT_RECV = 2 };
typedef struct {
    gort_chan *ch; /* NULL: never ready */
    int op;        /* GORT_SEND or GORT_RECV */
    void *elem;    /* value to send, or where to receive (may be NULL) */
    bool ok;       /* set for the receive case that ran, as v, ok := <-c */
} gort_case;
/* Index of the case that ran; -1 when !block and none is ready.  Among
 * ready cases one is chosen uniformly at random. */
GORT_API int gort_select(gort_case *cases, int n, bool block);

/* ------------------------------------------------------------------ */
/* Timers                                                               */
/* ------------------------------------------------------------------ */

/* time.Timer and time.Ticker: each delivers gort_nanotime() at the moment
 * it fired (an int64_t) on its channel, which has capacity 1.  A ticker
 * drops ticks a slow receiver missed. */
typedef struct gort_timer gort_timer;
GORT_API gort_timer *gort_timer_new(int64_t ns);
GORT_API gort_timer *gort_ticker_new(int64_t period_ns);
GORT_API gort_chan *gort_timer_chan(gort_timer *);
/* true when the call stopped the timer before it fired. */
GORT_API bool gort_timer_stop(gort_timer *);
/* Stops and re-arms for ns from now (period for a ticker). */
GORT_API bool gort_timer_reset(gort_timer *, int64_t ns);
/* Stops the timer and frees it with its channel. */
GORT_API void gort_timer_free(gort_timer *);

/* ------------------------------------------------------------------ */
/* sync                                                                 */
/* ------------------------------------------------------------------ */

/* sync.Mutex.  Zero-initialised is unlocked.  Not reentrant; unlocking an
 * unlocked mutex is fatal.  May be unlocked by another goroutine. */
typedef struct gort_mutex {
    union {
        int64_t _state; /* private: all of it, for compare-and-swap */
        struct {
            uint8_t _locked;   /* private */
            uint8_t _flags;    /* private */
            uint16_t _pad;     /* private */
            uint32_t _waiters; /* private */
        } _b;
    } _u; /* named, not anonymous: the header stays clean under -pedantic
             in C99 and C++ */
    uint32_t _sema; /* private */
} gort_mutex;
GORT_API void gort_mutex_lock(gort_mutex *);
GORT_API void gort_mutex_unlock(gort_mutex *);
GORT_API bool gort_mutex_trylock(gort_mutex *);
/* The uncontended lock and unlock, inline in the caller (as Go inlines
 * Mutex.Lock's fast path): a call each way was a visible part of a
 * lock/unlock pair.
 * The functions above stay, for function pointers and other languages;
 * define GORT_NO_INLINE to call them everywhere.
 *
 * Unlock is a plain store of the lock byte and a load of the waiter count,
 * no locked instruction, whenever the runtime could set up membarrier(2)
 * (gort__mutex_plain_unlock): a goroutine about to sleep on the mutex
 * then issues one, so that it sees any unlock that missed its count (see
 * runtime/mutex.c). */
GORT_API extern bool gort__mutex_plain_unlock;
/* The state of an unlocked mutex nobody waits for: 0.  In a forked child
 * it becomes a state no mutex has, and gort__mutex_plain_unlock false, so
 * that both fast paths fall into the slow ones, which end the child (after
 * fork(2) only exec or _exit are allowed: gort_syscall(3)).  It stands
 * where the constant 0 stood, as what the compare-and-swap expects and
 * what the add path compares with (see docs/runtime.md for the cost). */
GORT_API extern int64_t gort__mutex_unlocked;
GORT_API void gort__mutex_lock_slow(gort_mutex *);
GORT_API void gort__mutex_unlock_slow(gort_mutex *, int64_t state);
GORT_API void gort__mutex_unlock_wake(gort_mutex *);
static inline void gort__mutex_lock_fast(gort_mutex *m)
{
    int64_t unlocked = __atomic_load_n(&gort__mutex_unlocked, __ATOMIC_RELAXED);
    if (__builtin_expect(!__atomic_compare_exchange_n(&m->_u._state, &unlocked, 1, 0, __ATOMIC_ACQUIRE,
                                                      __ATOMIC_RELAXED), 0))
        gort__mutex_lock_slow(m);
}
static inline void gort__mutex_unlock_fast(gort_mutex *m)
{
    if (__builtin_expect(__atomic_load_n(&gort__mutex_plain_unlock, __ATOMIC_RELAXED), 1) &&
        __builtin_expect(__atomic_load_n(&m->_u._b._locked, __ATOMIC_RELAXED) == 1, 1)) {
        __atomic_store_n(&m->_u._b._locked, 0, __ATOMIC_RELEASE);
        if (__builtin_expect(__atomic_load_n(&m->_u._b._waiters, __ATOMIC_RELAXED) != 0, 0))
            gort__mutex_unlock_wake(m);
        return;
    }
    int64_t state = __atomic_sub_fetch(&m->_u._state, 1, __ATOMIC_RELEASE);
    if (__builtin_expect(state != __atomic_load_n(&gort__mutex_unlocked, __ATOMIC_RELAXED), 0))
        gort__mutex_unlock_slow(m, state);
}
#if !defined(GORT_NO_INLINE) && !defined(GORT_MUTEX_IMPL)
#define gort_mutex_lock(m) gort__mutex_lock_fast(m)
#define gort_mutex_unlock(m) gort__mutex_unlock_fast(m)
#endif

/* sync.RWMutex.  Zero-initialised is unlocked. */
typedef struct gort_rwmutex {
    gort_mutex _w;            /* private */
    uint32_t _writer_sem;     /* private */
    uint32_t _reader_sem;     /* private */
    int32_t _reader_count;    /* private */
    int32_t _reader_wait;     /* private */
} gort_rwmutex;
GORT_API void gort_rwmutex_rlock(gort_rwmutex *);
GORT_API void gort_rwmutex_runlock(gort_rwmutex *);
GORT_API void gort_rwmutex_lock(gort_rwmutex *);
GORT_API void gort_rwmutex_unlock(gort_rwmutex *);
GORT_API bool gort_rwmutex_tryrlock(gort_rwmutex *);
GORT_API bool gort_rwmutex_trylock(gort_rwmutex *);

/* sync.Cond, used with a gort_mutex.  Zero-initialised is ready. */
typedef struct gort_cond {
    uint32_t _wait;   /* private: ticket of the next waiter */
    uint32_t _notify; /* private: ticket of the next to notify */
    void *_head;      /* private */
    void *_tail;      /* private */
    uint32_t _lock;   /* private */
} gort_cond;
GORT_API void gort_cond_wait(gort_cond *, gort_mutex *);
GORT_API void gort_cond_signal(gort_cond *);
GORT_API void gort_cond_broadcast(gort_cond *);

/* sync.Once.  Zero-initialised is ready. */
typedef struct gort_once {
    uint32_t _done; /* private */
    gort_mutex _m;  /* private */
} gort_once;
GORT_API void gort_once_do(gort_once *, void (*fn)(void *), void *arg);

/* A counting semaphore.  Zero-initialised holds no permits. */
typedef struct gort_sema {
    uint32_t _count; /* private */
} gort_sema;
GORT_API void gort_sema_acquire(gort_sema *);
GORT_API bool gort_sema_tryacquire(gort_sema *);
GORT_API void gort_sema_release(gort_sema *, uint32_t n);

/* ------------------------------------------------------------------ */
/* System calls                                                         */
/* ------------------------------------------------------------------ */

/* Bracket a blocking call the runtime cannot see: the P is free for other
 * goroutines while the call lasts (sysmon hands it off after one round).
 * [plain: no-op; the wrappers below are the plain calls] */
GORT_API void gort_syscall_enter(void);
GORT_API void gort_syscall_exit(void);

struct timespec;
struct pollfd;
struct sockaddr;
GORT_API ssize_t gort_read(int fd, void *buf, size_t n);
GORT_API ssize_t gort_write(int fd, const void *buf, size_t n);
GORT_API int gort_nanosleep(const struct timespec *req, struct timespec *rem);
GORT_API int gort_poll(struct pollfd *fds, unsigned long nfds, int timeout_ms);
GORT_API int gort_accept(int fd, struct sockaddr *addr, unsigned int *addrlen);
GORT_API int gort_connect(int fd, const struct sockaddr *addr, unsigned int addrlen);
GORT_API ssize_t gort_recv(int fd, void *buf, size_t n, int flags);
GORT_API ssize_t gort_send(int fd, const void *buf, size_t n, int flags);
GORT_API pid_t gort_waitpid(pid_t pid, int *status, int options);

/* ------------------------------------------------------------------ */
/* Diagnostics                                                          */
/* ------------------------------------------------------------------ */

/* runtime.Stack: the calling goroutine's stack, or all goroutines (the
 * caller first) when all.  Returns the bytes written (truncated to len).
 * [plain: the goroutines only, without stopping the world] */
GORT_API size_t gort_stack(char *buf, size_t len, bool all);
/* Writes every goroutine's stack to fd. */
GORT_API void gort_dump(int fd);

/* Scheduler counters, for GORT_DEBUG=schedtrace and tests. */
typedef struct gort_stats {
    uint64_t goroutines_created;
    uint64_t goroutines_live;
    uint64_t context_switches;
    uint64_t steals;               /* successful steals of a run-queue batch */
    uint64_t stolen_goroutines;    /* goroutines moved by those steals */
    uint64_t global_runq_gets;
    uint64_t threads;              /* Ms created */
    uint64_t threads_idle;
    uint64_t spinning_threads;
    uint64_t procs;
    uint64_t idle_procs;
    uint64_t preempt_requested;    /* SIGURG preemptions asked for */
    uint64_t preempt_signals;      /* signals actually sent */
    uint64_t preempt_done;         /* goroutines switched out by a signal */
    uint64_t preempt_coop;         /* preemptions served at a runtime call */
    uint64_t preempt_unsafe_runtime;  /* refused: M in the runtime or holding a lock */
    uint64_t preempt_unsafe_frame;    /* refused: a frame in libc/ld.so/libunwind/... */
    uint64_t preempt_unsafe_nopreempt;/* refused: no-preempt section */
    uint64_t syscalls;             /* gort_syscall_enter calls */
    uint64_t handoffs;             /* Ps taken from Ms in system calls */
    uint64_t unwrapped_blocks;     /* Ms found blocked outside the runtime's knowledge */
    uint64_t timers_fired;
    uint64_t stacks_allocated;
    uint64_t stacks_cached;
    uint64_t migrations;           /* goroutines resumed on another P than they last ran on */
    uint64_t preempt_refused_lock;     /* refused: the goroutine held a C lock */
    uint64_t preempt_refused_nopreempt;/* refused: GORT_NOPREEMPT frame or gort_preempt_off */
    /* Stops of the world (profiles, dumps, GOMAXPROCS changes): how many,
     * and their pauses, each from the stop request until the world runs
     * again, in nanoseconds: the sum and the longest. */
    uint64_t stw_count;
    uint64_t stw_pause_total_ns;
    uint64_t stw_pause_max_ns;
    uint64_t sysmon_rounds;        /* rounds sysmon has made (each a look at every P) */
    uint64_t sysmon_cpu_ns;        /* sysmon's own thread CPU time */
    uint64_t sysmon_syscalls;      /* system calls sysmon made, besides preemption signals */
    uint64_t lock_contended;       /* runtime-lock acquisitions that found the lock taken */
} gort_stats;
/* Fills *out.  A macro over the sized getter, so that a program built
 * against this header keeps working with a later library whose gort_stats
 * has grown (fields are only ever appended): the library writes size
 * bytes, and zeroes what it does not know of.  The plain function stays
 * for programs built before the macro and for function pointers. */
GORT_API void gort_stats_get_sized(gort_stats *out, size_t size);
GORT_API void gort_stats_get(gort_stats *out);
#define gort_stats_get(out) gort_stats_get_sized((out), sizeof(gort_stats))

/* ------------------------------------------------------------------ */
/* defer / panic / recover                                              */
/* ------------------------------------------------------------------ */

/* Registers fn(arg) to run, last in first out, when the calling goroutine's
 * function returns or panics.  [goroutine only] */
GORT_API void gort_defer(void (*fn)(void *), void *arg);
/* Starts a panic with a printf-style message: deferred calls run; if none
 * recovers, the program prints "panic: MESSAGE", the dump, and exits 2.
 * [plain: nothing to recover it, so the program exits at once] */
GORT_API void gort_panic(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* Inside a deferred call during a panic: stops it and returns its message
 * (valid until the goroutine exits); NULL otherwise.  [plain: NULL] */
GORT_API const char *gort_recover(void);

#ifdef __cplusplus
}
#endif
#endif /* GORT_H */
#include "gort_idioms.h" /* defer frames, context, errgroup, leak checks */
