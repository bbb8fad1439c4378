/*
 * foreign.c: blocking calls from threads the runtime did not start (a
 * library's event thread, a thread pool, a driver's callback thread).
 *
 * Such a thread has no M, no P and no goroutine, but it may block on
 * anything a goroutine may block on, and with the same semantics: it
 * queues where a goroutine would (a channel's sendq/recvq, a semaphore
 * root, a cond's notify list), in the same FIFO order, and is served by the
 * same wakers.  What differs is only how it sleeps and how it is woken:
 *
 *   - its waiter is a gort_g_t with g->foreign set, inside a fwaiter_t
 *     that adds a futex note.  Everything a wait queue or a waker reads
 *     (status, waiting, param, selectdone, waitreason) is in the G, so
 *     chan.c, select.c, sema.c and cond.c queue it unchanged: they take it
 *     from gort__waiter() instead of the running goroutine;
 *   - park (gort__park on a thread without an M lands in
 *     gort__foreign_park): RUNNING -> WAITING, clear the note, run the
 *     caller's unlockf (which drops the queue's lock), sleep on the note;
 *   - ready (sched.c's ready() and injectglist test g->foreign first):
 *     WAITING -> RUNNABLE, then set the note and futex-wake, instead of
 *     putting the G on a run queue.  The thread sets RUNNING when it wakes.
 *
 * Ordering.  A waker can reach the waiter only through the queue, and the
 * queue's lock is held from the enqueue until unlockf drops it, after the
 * note was cleared: so a wake can never precede the clear, and a wake
 * after the clear but before the futex wait is seen by the sleep's first
 * load (gort__notesleep re-checks the key before every wait).  The waker's
 * writes (the value copied into the waiter's element, param, success) come
 * before the note's release exchange; the sleeper's acquire load of the
 * key orders them before its reads.  Exactly one waker readies a waiter:
 * whoever dequeued it, or for a select the one that won selectdone.
 *
 * Lifetime.  Waiters are never freed: a thread's waiter goes back to a free
 * list when the thread exits (a pthread key destructor) and the next new
 * thread takes it.  A waker may still be inside the futex wake of a note
 * whose thread has already returned, reused its waiter and cleared the
 * note: that costs the new owner at most one spurious futex return, which
 * notesleep absorbs, and never a write to freed memory.
 *
 * Not here: sudogs come from the global cache when there is no P (sema.c);
 * gort_sleep on a plain thread is nanosleep (timer.c); timers a plain
 * thread arms go to P 0's heap, which wakes the netpoller as any earlier
 * timer does.
 *
 * Deadlock.  checkdead reports "all goroutines are asleep" only if no
 * thread but the runtime's own is alive (gort__foreign_threads_live): a
 * plain thread, whether it has called in yet or not, may still send,
 * unlock or start a goroutine, and one blocked in a gort call waits for
 * a goroutine that it may yet wake itself.  A flag set at a plain
 * thread's first call would be too late: the goroutines may all block
 * before that thread first runs.  Go under cgo gives up the same way (its
 * extra M always counts as running).
 *
 * Rejected: running the plain thread's call as a goroutine on an M bound
 * to that thread for the call (Go's needm and extra Ms).  The call would
 * need a P to run, taking one from the goroutines, or waiting for one,
 * while it only means to block; it would need g0 stacks, signal stacks
 * and M bookkeeping per concurrent caller; and sysmon would have to tell
 * those Ms apart.  A waiter with a futex gives the same queueing and
 * wakeups with no scheduler state at all.
 */
#include "runtime.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

typedef struct fwaiter {
    gort_g_t g;                  /* first: a foreign G is a fwaiter */
    gort_note_t note;            /* set once by the waker; this thread clears */
    struct fwaiter *next;        /* free list; under flock */
} fwaiter_t;

static __thread fwaiter_t *self; /* this thread's waiter, NULL until first use */
static gort_lock_t flock = GORT_LOCK_INIT(LR_LEAF);
static fwaiter_t *ffree;         /* under flock */
static pthread_key_t fkey;
static pthread_once_t fkey_once = PTHREAD_ONCE_INIT;

static inline fwaiter_t *fw(gort_g_t *gp) { return (fwaiter_t *)gp; }

/* Thread exit: the waiter goes back to the free list (never freed; see
 * "Lifetime" above).  The thread cannot be parked while it exits. */
static void fwaiter_release(void *arg)
{
    fwaiter_t *w = arg;
    self = NULL;
    gort__lock(&flock);
    w->next = ffree;
    ffree = w;
    gort__unlock(&flock);
}

static void fkey_init(void)
{
    if (pthread_key_create(&fkey, fwaiter_release) != 0)
        gort__throw("foreign thread: pthread_key_create failed");
}

static __attribute__((noinline)) fwaiter_t *fwaiter_new(void)
{
    if (gort__getm())
        gort__throw("a blocking gort call was made outside a goroutine"); /* g0, sysmon */
    pthread_once(&fkey_once, fkey_init);
    gort__lock(&flock);
    fwaiter_t *w = ffree;
    if (w)
        ffree = w->next;
    gort__unlock(&flock);
    if (!w) {
        w = aligned_alloc(GORT_CACHELINE, (sizeof(*w) + GORT_CACHELINE - 1) & ~(size_t)(GORT_CACHELINE - 1));
        if (!w)
            gort__throw("out of memory allocating a foreign thread's waiter");
    }
    memset(w, 0, sizeof(*w));
    w->g.foreign = true;
    atomic_store_explicit(&w->g.status, G_RUNNING, memory_order_relaxed);
    if (pthread_setspecific(fkey, w) != 0)
        gort__throw("foreign thread: pthread_setspecific failed");
    self = w;
    return w;
}

gort_g_t *gort__foreign_g(void)
{
    gort__fork_check();
    fwaiter_t *w = self;
    if (unlikely(!w))
        w = fwaiter_new();
    return &w->g;
}

void gort__foreign_park(bool (*unlockf)(gort_g_t *, void *), void *lock, int reason)
{
    gort_g_t *gp = gort__foreign_g();
    fwaiter_t *w = fw(gp);
    gp->waitreason = (uint8_t)reason;
    gp->waitsince = gort__nanotime_stale();
    gort__gstatus_move(gp, G_RUNNING, G_WAITING);
    /* Before unlockf: until it drops the queue's lock nobody can wake us. */
    gort__noteclear(&w->note);
    if (unlockf && !unlockf(gp, lock)) {
        gort__gstatus_move(gp, G_WAITING, G_RUNNING);
        return;
    }
    gort__notesleep(&w->note);
    gort__gstatus_move(gp, G_RUNNABLE, G_RUNNING);
}

void gort__foreign_ready(gort_g_t *gp)
{
    gort__gstatus_move(gp, G_WAITING, G_RUNNABLE);
    /* The last touch of gp: once the note is set its thread may return. */
    gort__notewakeup(&fw(gp)->note);
}

/* ---- deadlock detection ---- */

/* TSan starts a thread of its own (its background thread) at the
 * process's first pthread_create, which in a running runtime has always
 * happened: that one is nobody's plain thread. */
#if defined(GORT_TSAN)
#define SANITIZER_THREADS 1
#else
#define SANITIZER_THREADS 0
#endif

static bool tid_is_runtimes(pid_t tid)
{
    bool ours = false;
    gort__lock(&gort__sched.allm_lock);
    for (gort_m_t *m = gort__sched.allm; m && !ours; m = m->alllink)
        ours = m->tid == tid;
    gort__unlock(&gort__sched.allm_lock);
    return ours;
}

/* Ms whose thread has not yet recorded its tid: sysmon's, just after
 * gort_main started it (the others are counted running in mcount until
 * they have, so checkdead never gets here meanwhile). */
static int unstarted_ms(void)
{
    int n = 0;
    gort__lock(&gort__sched.allm_lock);
    for (gort_m_t *m = gort__sched.allm; m; m = m->alllink)
        n += m->tid == 0;
    gort__unlock(&gort__sched.allm_lock);
    return n;
}

/* Called by checkdead only when it has found everything else asleep, so
 * the cost of reading /proc is paid once before a fatal error, not per
 * idle M.  checkdead does not run again if this says "alive" when it was
 * not, so a thread of the runtime's own must not pass for a plain one: an
 * M that has not yet set m->tid is allowed for by count, counted after the
 * scan (one that sets it meanwhile then errs towards "alive", never
 * towards a false deadlock).  The profiler's writer thread, not an M,
 * passes for a plain thread: no deadlock report while a CPU profile is
 * being written. */
bool gort__foreign_threads_live(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return true; /* cannot tell: someone may still act */
    int others = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        others += !tid_is_runtimes((pid_t)atoi(e->d_name));
    }
    closedir(d);
    return others > SANITIZER_THREADS + unstarted_ms();
}
