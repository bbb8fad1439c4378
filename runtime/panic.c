/*
 * panic.c: defer, panic and recover.
 *
 * C has no hook on a function's return, so "the function that deferred" is
 * made explicit.  A goroutine's calls are divided into frames:
 *   - the goroutine's entry function (gp->callframe == NULL);
 *   - each gort_call(fn, arg), which runs fn in a new frame;
 *   - each deferred call while it runs (an implicit frame, so that what it
 *     defers runs when it returns, as in Go).
 * gort_defer attaches the call to the innermost frame (gp->callframe).  A
 * frame's deferred calls run LIFO when the frame returns: gort_call runs
 * them before returning, goexit (proc.c) runs the entry function's.
 *
 * gort_panic runs every pending deferred call, innermost first.  A
 * deferred call that calls gort_recover directly (not from a nested frame)
 * stops the panic; once it returns, the frame that deferred it "returns
 * normally": its remaining deferred calls run and control continues after
 * it: gort_call returns false, a deferred call's frame returns to whoever
 * ran it, and the entry frame ends the goroutine (goexit).  The jump there
 * is a _longjmp to the frame's jmp_buf: every C frame in between is
 * abandoned without running anything (docs/idioms.md says what that means
 * for user code).
 *
 * Invariants (all state is the goroutine's own; nobody else touches it):
 *   - gp->defers is a LIFO list; records of inner frames are above those of
 *     outer frames, and a frame that returned has none left.  A record is
 *     unlinked and freed before its call runs, so a panic inside it never
 *     reruns it and a jump over the runner leaks nothing.
 *   - frames and panic records are locals on the goroutine's stack; the
 *     stack grows down, so "deeper than frame F" is "address below F".
 *     On a recovery to F, every panic record below F belonged to C frames
 *     now abandoned and is dropped (an aborted panic, as Go drops them).
 *   - a frame saves g->inrt at entry and a recovery restores it: a
 *     runtime panic raised inside a runtime call leaves nothing elevated.
 *
 * Runtime panics (send on a closed channel, ...) come in through
 * gort__panic_hook (fatal.c) and take the same path, unless raised where
 * unwinding is unsound (on g0, with runtime locks held): those die.
 *
 * Preemption: the frames that sit under user code (gort_call, the deferred
 * call runner, the panic loop) live in a section of their own, outside
 * gort_text, so that sysmon's safe-point check treats a stack through them
 * like user code; otherwise everything under a gort_call could never be
 * preempted.  Those functions read the G only through the noinline
 * getg_rt(), which is in gort_text: a G pointer read in preemptible code
 * could be that of the thread's next goroutine after a migration.
 *
 * Rejected: setjmp at every gort_defer (Go's pre-1.13 way) - the jump
 * target is the frame, not the defer; unwinding with _Unwind_ForcedUnwind
 * - it needs unwind tables in all user code and buys nothing in C, where
 * there are no destructors to run.
 */
#include "runtime.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gort_defer.h"

/* The section name is a C identifier so that the linker defines its
 * bounds for sysmon/pcclass.c (GORT_PC_GORT_CALL). */
#define USERTEXT __attribute__((section("gort_user_text"), noinline))

struct gort_pmsg {
    gort_pmsg_t *next;
    char text[];
};

struct gort_defer {
    gort_defer_t *link;
    void (*fn)(void *);
    void *arg;
    gort_callframe_t *frame; /* the frame it runs with; NULL: entry */
};

struct gort_callframe {
    gort_callframe_t *link;
    gort_panic_t *panic; /* deferred-call frame run by this panic; else NULL */
    int32_t inrt;        /* g->inrt at entry */
    jmp_buf jb;
};

struct gort_panic {
    gort_panic_t *link;      /* the older panic this one interrupted */
    gort_pmsg_t *msg;
    gort_callframe_t *argp;  /* frame of the deferred call it runs now */
    bool recovered;
};


static gort_pmsg_t *pmsg_new(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        n = 0;
    gort_pmsg_t *m = malloc(sizeof(*m) + (size_t)n + 1);
    if (!m)
        gort__throw("out of memory allocating a panic message");
    vsnprintf(m->text, (size_t)n + 1, fmt, ap);
    m->next = NULL;
    return m;
}

static gort_pmsg_t *pmsg_str(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static gort_pmsg_t *pmsg_str(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gort_pmsg_t *m = pmsg_new(fmt, ap);
    va_end(ap);
    return m;
}

/* In gort_text: not preemptible, so m->curg is this goroutine. */
static __attribute__((noinline)) gort_g_t *getg_rt(void) { return gort__getg(); }

static __attribute__((noinline)) gort_g_t *getg_or_die(const char *what)
{
    gort_g_t *gp = gort__getg();
    if (!gp)
        gort__fatal("%s called outside a goroutine", what);
    return gp;
}

/* Prints the panic chain, oldest first, as Go's printpanics, and exits 2. */
static __attribute__((noreturn, noinline)) void die_unrecovered(gort_g_t *gp)
{
    gort_panic_t *chain[16];
    int n = 0;
    for (gort_panic_t *p = gp->panicking; p && n < 16; p = p->link)
        chain[n++] = p;
    char buf[1024];
    size_t len = 0;
    buf[0] = 0;
    for (int i = n - 1; i >= 0 && len < sizeof buf; i--) {
        int w = snprintf(buf + len, sizeof buf - len, i == n - 1 ? "%s" : "\n\tpanic: %s", chain[i]->msg->text);
        if (w > 0)
            len += (size_t)w;
    }
    gort__die_panic(buf);
}

/* Runs the deferred calls of frame f (LIFO) until a record of an outer
 * frame is on top. */
static USERTEXT void run_frame_defers(gort_g_t *gp, gort_callframe_t *f);

/* Unlinks d (on top of gp->defers), frees it, and runs its call in a
 * frame of its own; p is the panic running it (NULL on return).  Freed
 * before the call: a panic recovered outside would jump over any free
 * after it. */
static USERTEXT void call_deferred(gort_g_t *gp, gort_defer_t *d, gort_panic_t *p)
{
    void (*fn)(void *) = d->fn;
    void *arg = d->arg;
    gp->defers = d->link;
    free(d);
    gort_callframe_t fr;
    fr.link = gp->callframe;
    fr.panic = p;
    fr.inrt = atomic_load_explicit(&gp->inrt, memory_order_relaxed);
    if (_setjmp(fr.jb) == 0) {
        gp->callframe = &fr;
        if (p)
            p->argp = &fr;
        fn(arg);
    }
    /* Returned, or a panic inside d->fn was recovered by something it
     * deferred: either way this frame returns normally. */
    run_frame_defers(gp, &fr);
    gp->callframe = fr.link;
}

static void run_frame_defers(gort_g_t *gp, gort_callframe_t *f)
{
    gort_defer_t *d;
    while ((d = gp->defers) != NULL && d->frame == f)
        call_deferred(gp, d, NULL);
}

/* The panic loop.  Never returns: the program dies, a recovery jumps to
 * the recovering frame, or the goroutine exits. */
static USERTEXT __attribute__((noreturn)) void start_panic(gort_g_t *gp, gort_pmsg_t *msg)
{
    gort_panic_t p = {.link = gp->panicking, .msg = msg, .argp = NULL, .recovered = false};
    gp->panicking = &p;
    gort_defer_t *d;
    while ((d = gp->defers) != NULL) {
        gort_callframe_t *target = d->frame;
        call_deferred(gp, d, &p);
        if (!p.recovered)
            continue;
        /* Recovered: drop this panic and every one whose C frames the jump
         * abandons (those below the target frame). */
        while (gp->panicking && (!target || (uintptr_t)gp->panicking < (uintptr_t)target)) {
            gort_panic_t *q = gp->panicking;
            gp->panicking = q->link;
            if (q != &p || !q->recovered)
                free(q->msg); /* a recovered message moved to gp->recovered */
        }
        gp->callframe = target;
        atomic_store_explicit(&gp->inrt, target ? target->inrt : 0, memory_order_relaxed);
        if (!target)
            gort__goexit(); /* the entry function "returned" */
        _longjmp(target->jb, 1);
    }
    die_unrecovered(gp);
}

/* ---- hooks ---- */

/* fatal.c: a runtime panic.  Unwinding is sound only on the goroutine's
 * own stack with no runtime lock held; anything else dies at once. */
void gort__panic_hook(const char *msg)
{
    gort_m_t *m = gort__getm();
    gort_g_t *gp = m ? m->curg : NULL;
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    if (!gp || !gp->stack.lo || sp < gp->stack.lo || sp >= gp->stack.hi ||
        atomic_load_explicit(&m->locks, memory_order_relaxed) != 0)
        gort__die_panic(msg);
    start_panic(gp, pmsg_str("%s", msg));
}

/* proc.c: goexit.  Runs what is left (the entry frame's deferred calls)
 * and frees the recovered messages. */
void gort__defer_run_all(gort_g_t *gp)
{
    gort_defer_t *d;
    while ((d = gp->defers) != NULL)
        call_deferred(gp, d, NULL);
    gort_pmsg_t *m = gp->recovered;
    gp->recovered = NULL;
    while (m) {
        gort_pmsg_t *next = m->next;
        free(m);
        m = next;
    }
    gp->callframe = NULL;
}

/* ---- public ---- */

void gort_defer(void (*fn)(void *), void *arg)
{
    gort__fork_check();
    gort_g_t *gp = getg_or_die("gort_defer");
    if (!fn)
        gort__panic_str("gort_defer of nil func value");
    gort_defer_t *d = malloc(sizeof(*d));
    if (!d)
        gort__throw("out of memory allocating a defer record");
    d->fn = fn;
    d->arg = arg;
    d->frame = gp->callframe;
    d->link = gp->defers;
    gp->defers = d;
}

USERTEXT bool gort_call(void (*fn)(void *), void *arg)
{
    gort__fork_check();
    gort_g_t *gp = getg_or_die("gort_call");
    gort_callframe_t fr;
    fr.link = gp->callframe;
    fr.panic = NULL;
    fr.inrt = atomic_load_explicit(&gp->inrt, memory_order_relaxed);
    int jumped = _setjmp(fr.jb);
    if (!jumped) {
        gp->callframe = &fr;
        fn(arg);
    }
    run_frame_defers(gp, &fr);
    gp->callframe = fr.link;
    return !jumped;
}

USERTEXT void gort_panic(const char *fmt, ...)
{
    gort__fork_check();
    va_list ap;
    va_start(ap, fmt);
    gort_pmsg_t *msg = pmsg_new(fmt ? fmt : "nil", ap);
    va_end(ap);
    gort_g_t *gp = getg_rt();
    if (!gp)
        gort__die_panic(msg->text);
    start_panic(gp, msg);
}

const char *gort_recover(void)
{
    gort__fork_check();
    gort_g_t *gp = gort__getg();
    gort_panic_t *p = gp ? gp->panicking : NULL;
    /* Only a deferred call run by the panic, called directly (its frame is
     * the innermost one), may recover: as Go, recover in a nested call is
     * nil. */
    if (!p || p->recovered || !p->argp || p->argp != gp->callframe)
        return NULL;
    p->recovered = true;
    p->msg->next = gp->recovered;
    gp->recovered = p->msg;
    return p->msg->text;
}

bool gort_panicking(void)
{
    gort__fork_check();
    gort_g_t *gp = gort__getg();
    return gp && gp->panicking;
}
