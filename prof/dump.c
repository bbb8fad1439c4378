/*
 * dump.c: goroutine dumps in Go's text format.
 *
 *   goroutine 7 [sync.WaitGroup.Wait, 3 minutes]:
 *   gort_wg_wait(...)
 *   	/src/gort/runtime/waitgroup.c:55 +0x8c
 *   park_inline(...)
 *   	/src/app/main.c:12
 *   park_level3()
 *   	/src/app/main.c:20 +0x1d
 *   created by spawn_parkers in goroutine 1
 *   	/src/app/main.c:40 +0x55
 *
 * As in Go 1.19: one frame per function, inlined calls as their own frames
 * printed f(...) and without a PC offset, out-of-line functions with the
 * offset of the return address from the function entry; arguments are
 * elided, f() when DWARF says there are none; at most 100 frames, then
 * "...additional frames elided..."; goroutines separated by a blank line,
 * the current one first.  Header lines come from gort__format_gheader
 * (runtime/gstatus.c), which GORT_DEBUG=schedtrace shares.  libgort's
 * internal frames are hidden unless GORT_TRACEBACK=system; its public
 * gort_* functions are shown, as Go shows sync.(*WaitGroup).Wait.
 *
 * Where the stacks come from (prof/unwind.c): the calling goroutine from
 * itself; parked ones from their saved context; ones in system calls from
 * their syscall entry registers; running ones by a SIGURG capture on their
 * thread.  gort_dump and gort_stack(all) stop the world when asynchronous
 * preemption is linked in (sysmon), which makes the dump a snapshot; without
 * it a goroutine spinning in user code would never stop, so they read the
 * goroutines in place instead: each parked goroutine's state is read
 * before and after its unwind and the unwind retried if it changed.
 *
 * The heavy part (libdw, libunwind, formatting) runs on the M's scheduler
 * stack (8 MiB), not on the calling goroutine's stack, which may be small
 * and nearly used up.
 *
 * Crash dumps (gort__dump_crash from a fatal signal, gort__dump_goroutines
 * from throw/fatal/panic) run in a process that may be broken: output goes
 * through a static buffer with write(2); allglock is only try-locked, a
 * bounded number of times, then allgs is read without it (Gs are never
 * freed); the symbolizer is told to try-lock or to stay out of libdw; the
 * world is frozen (other Ms stop at their next schedule) instead of
 * stopped.  A fault while reading one goroutine's stack (a corrupted saved
 * context) longjmps back here from the SIGSEGV handler and the dump goes on
 * with the next goroutine.
 */
#include "dump.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "symtab.h"
#include "unwind.h"

#define MAXPCS GORT_CAPTURE_MAX
#define CAPTURE_TIMEOUT_NS (100LL * 1000 * 1000)
#define CRASH_CAPTURE_TIMEOUT_NS (50LL * 1000 * 1000)

int gort__dump_stw_mode = -1;

/* ---------------------------------------------------------------- */
/* Output: a buffer that is either the destination (gort_stack) or a  */
/* staging area flushed to an fd with write(2).  Async-signal-safe.   */
/* ---------------------------------------------------------------- */

typedef struct out {
    int fd; /* -1: buf is the destination; stop when full */
    char *buf;
    size_t cap, len;
    /* fd -1 and spillfd >= 0: buf is a malloc'd buffer that grows (the
     * dump is written to spillfd once the world runs again); if it cannot
     * grow, it is written to spillfd and goes on as an fd stage.  Never in
     * a crash: malloc is not async-signal-safe. */
    int spillfd;
} out_t;

static bool o_grow(out_t *o)
{
    size_t cap = o->cap ? o->cap * 2 : (size_t)1 << 20;
    char *nb = realloc(o->buf, cap);
    if (!nb)
        return false;
    o->buf = nb;
    o->cap = cap;
    return true;
}

static void o_flush(out_t *o)
{
    if (o->fd < 0)
        return;
    size_t off = 0;
    while (off < o->len) {
        ssize_t w = write(o->fd, o->buf + off, o->len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        off += (size_t)w;
    }
    o->len = 0;
}

static void o_put(out_t *o, const char *s, size_t n)
{
    while (n > 0) {
        size_t room = o->cap - o->len;
        if (room == 0) {
            if (o->fd < 0 && o->spillfd >= 0 && !o_grow(o)) {
                o->fd = o->spillfd; /* out of memory: write as we go */
                o->spillfd = -1;
            }
            if (o->fd < 0 && o->spillfd >= 0)
                continue;
            if (o->fd < 0)
                return;
            o_flush(o);
            continue;
        }
        size_t k = n < room ? n : room;
        memcpy(o->buf + o->len, s, k);
        o->len += k;
        s += k;
        n -= k;
    }
}

static void o_str(out_t *o, const char *s) { o_put(o, s, strlen(s)); }

static void o_dec(out_t *o, uint64_t v)
{
    char b[24];
    int i = sizeof b;
    do {
        b[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    o_put(o, b + i, sizeof b - (size_t)i);
}

static void o_hex(out_t *o, uint64_t v)
{
    char b[20];
    int i = sizeof b;
    do {
        b[--i] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    b[--i] = 'x';
    b[--i] = '0';
    o_put(o, b + i, sizeof b - (size_t)i);
}

/* ---------------------------------------------------------------- */
/* Fault recovery                                                     */
/* ---------------------------------------------------------------- */

#define NSLOTS 16
static struct {
    _Atomic pid_t tid;
    sigjmp_buf *jb;
} slots[NSLOTS];

static pid_t my_tid(void) { return (pid_t)syscall(SYS_gettid); }

__attribute__((noinline)) static int slot_get(sigjmp_buf *jb)
{
    pid_t me = my_tid();
    for (int i = 0; i < NSLOTS; i++) {
        pid_t z = 0;
        if (atomic_compare_exchange_strong(&slots[i].tid, &z, -1)) {
            slots[i].jb = jb;
            atomic_store_explicit(&slots[i].tid, me, memory_order_release);
            return i;
        }
    }
    return -1;
}

static void slot_put(int i)
{
    if (i >= 0)
        atomic_store_explicit(&slots[i].tid, 0, memory_order_release);
}

/* Async-signal-safe. */
void gort__dump_fault_recover(int sig)
{
    pid_t me = my_tid();
    for (int i = 0; i < NSLOTS; i++)
        if (atomic_load_explicit(&slots[i].tid, memory_order_acquire) == me)
            siglongjmp(*slots[i].jb, sig);
}

/* ---------------------------------------------------------------- */
/* Formatting                                                         */
/* ---------------------------------------------------------------- */

typedef struct dump {
    out_t *o;
    int64_t now;
    bool system;     /* show libgort's internal frames */
    bool crashing;
    bool allg_nolock; /* a crash try-lock of allglock failed once: stop trying */
    int symflags;
    int ngs;         /* goroutines printed so far */
    gort_g_t *self;
    int64_t capture_timeout;
    sigjmp_buf jb;
    sigset_t mask;   /* to restore after a recovered fault */
    struct rcache *rc; /* rendered frames; NULL in crash dumps */
    uintptr_t pcs[MAXPCS];
} dump_t;

/* Rendered text per PC, for one dump.  A dump of 10,000 goroutines has
 * a few dozen distinct PCs: each is symbolized and formatted once, then
 * copied.  Keys are the PC with flag bits on top (user-space addresses
 * leave them free); text lives in one growing buffer.  Not used by crash
 * dumps, which must not allocate. */
#define RC_SIZE 4096
#define RK_EXACT (1ULL << 63)
#define RK_SYSTEM (1ULL << 62)
#define RK_CREATOR (1ULL << 61)
typedef struct rcent {
    uint64_t key;    /* 0: empty */
    uint32_t off, len;
    int32_t nvis;    /* frames the text holds; creator: length of its first part */
} rcent_t;
typedef struct rcache {
    rcent_t ent[RC_SIZE];
    size_t used;
    char *text;
    size_t len, cap;
} rcache_t;

static rcent_t *rc_find(rcache_t *rc, uint64_t key, bool *found)
{
    if (!rc)
        return NULL;
    for (size_t i = (size_t)((key * 0x9E3779B97F4A7C15ULL) >> 40) & (RC_SIZE - 1);; i = (i + 1) & (RC_SIZE - 1)) {
        if (rc->ent[i].key == key) {
            *found = true;
            return &rc->ent[i];
        }
        if (rc->ent[i].key == 0) {
            *found = false;
            return rc->used * 2 < RC_SIZE ? &rc->ent[i] : NULL;
        }
    }
}

static void rc_put(rcache_t *rc, rcent_t *e, uint64_t key, const char *text, size_t len, int32_t nvis)
{
    if (rc->len + len > rc->cap) {
        size_t cap = rc->cap ? rc->cap * 2 : 65536;
        while (cap < rc->len + len)
            cap *= 2;
        char *t = realloc(rc->text, cap);
        if (!t)
            return;
        rc->text = t;
        rc->cap = cap;
    }
    memcpy(rc->text + rc->len, text, len);
    *e = (rcent_t){key, (uint32_t)rc->len, (uint32_t)len, nvis};
    rc->len += len;
    rc->used++;
}

/* One frame: "func(...)\n\tfile:line +0xoff\n". */
static void print_frame(out_t *o, const gort_frame_t *f, uintptr_t pc, bool inlined)
{
    o_str(o, f->func);
    o_str(o, (!inlined && f->noargs) ? "()\n\t" : "(...)\n\t");
    if (f->file) {
        o_str(o, f->file);
        o_put(o, ":", 1);
        o_dec(o, (uint64_t)(f->line > 0 ? f->line : 0));
        if (!inlined && f->entry && pc > f->entry) {
            o_put(o, " +", 2);
            o_hex(o, pc - f->entry);
        }
    } else if (f->module) {
        o_str(o, f->module->path);
        o_put(o, "+", 1);
        o_hex(o, pc - f->module->bias);
    } else {
        o_hex(o, pc);
    }
    o_put(o, "\n", 1);
}

/* The frames of one PC (its inline chain) into o; returns how many were
 * visible, or stops at *budget. */
static int render_pc(dump_t *d, out_t *o, uintptr_t pc, bool exact, bool system, int budget, bool *elided)
{
    gort_frame_t fr[16];
    int k = gort__symbolize(exact ? pc : pc - 1, fr, 16, d->symflags);
    int vis = 0;
    for (int j = 0; j < k; j++) {
        if (fr[j].runtime && !system)
            continue;
        if (vis == budget) {
            *elided = true;
            break;
        }
        print_frame(o, &fr[j], pc, j < k - 1);
        vis++;
    }
    return vis;
}

static void print_frames(dump_t *d, const uintptr_t *pcs, int n, bool exact0, bool system)
{
    int printed = 0;
    for (int i = 0; i < n; i++) {
        uintptr_t pc = pcs[i];
        bool exact = exact0 && i == 0;
        bool elided = false;
        uint64_t key = pc | (exact ? RK_EXACT : 0) | (system ? RK_SYSTEM : 0);
        bool found = false;
        rcent_t *e = rc_find(d->rc, key, &found);
        if (found && printed + e->nvis <= GORT_DUMP_MAX_FRAMES) {
            o_put(d->o, d->rc->text + e->off, e->len);
            printed += e->nvis;
            continue;
        }
        if (e && !found) {
            char tmp[2048];
            out_t t = {.fd = -1, .buf = tmp, .cap = sizeof tmp};
            int vis = render_pc(d, &t, pc, exact, system, 16, &elided);
            if (t.len < sizeof tmp && !elided)
                rc_put(d->rc, e, key, tmp, t.len, vis);
            if (printed + vis <= GORT_DUMP_MAX_FRAMES) {
                o_put(d->o, tmp, t.len);
                printed += vis;
                continue;
            }
        }
        printed += render_pc(d, d->o, pc, exact, system, GORT_DUMP_MAX_FRAMES - printed, &elided);
        if (elided) {
            o_str(d->o, "...additional frames elided...\n");
            return;
        }
    }
    if (n == MAXPCS)
        o_str(d->o, "...additional frames elided...\n");
}

static void print_header(dump_t *d, gort_g_t *gp)
{
    char h[256];
    if (d->ngs++ > 0)
        o_put(d->o, "\n", 1);
    size_t n = gort__format_gheader(h, sizeof h, gp, d->now);
    o_put(d->o, h, n);
}

/* "created by f in goroutine N" and where: the parts around N are
 * rendered once per creating PC. */
static void render_creator(dump_t *d, out_t *o, uintptr_t pc, size_t *split)
{
    gort_frame_t fr[16];
    int k = gort__symbolize(pc - 1, fr, 16, d->symflags);
    o_str(o, "created by ");
    o_str(o, fr[0].func);
    *split = o->len;
    o_str(o, "\n\t");
    if (fr[0].file) {
        o_str(o, fr[0].file);
        o_put(o, ":", 1);
        o_dec(o, (uint64_t)(fr[0].line > 0 ? fr[0].line : 0));
        if (fr[k - 1].entry && pc > fr[k - 1].entry) {
            o_put(o, " +", 2);
            o_hex(o, pc - fr[k - 1].entry);
        }
    } else if (fr[0].module) {
        o_str(o, fr[0].module->path);
        o_put(o, "+", 1);
        o_hex(o, pc - fr[0].module->bias);
    } else {
        o_hex(o, pc);
    }
    o_put(o, "\n", 1);
}

static void print_creator(dump_t *d, gort_g_t *gp)
{
    uintptr_t pc = gp->gopc;
    if (gp->main || pc == 0)
        return;
    char tmp[2048];
    const char *text = tmp;
    size_t len, split;
    bool found = false;
    rcent_t *e = rc_find(d->rc, pc | RK_CREATOR, &found);
    if (found) {
        text = d->rc->text + e->off;
        len = e->len;
        split = (size_t)e->nvis;
    } else {
        out_t t = {.fd = -1, .buf = tmp, .cap = sizeof tmp};
        render_creator(d, &t, pc, &split);
        len = t.len;
        if (e && len < sizeof tmp)
            rc_put(d->rc, e, pc | RK_CREATOR, tmp, len, (int32_t)split);
    }
    o_put(d->o, text, split);
    if (gp->parent_goid) {
        o_str(d->o, " in goroutine ");
        o_dec(d->o, gp->parent_goid);
    }
    o_put(d->o, text + split, len - split);
}

/* A goroutine that never ran: its entry function, as Go shows it. */
static void print_entry(dump_t *d, gort_g_t *gp)
{
    uintptr_t pc = (uintptr_t)gp->fn;
    if (!pc)
        return;
    gort_frame_t fr[16];
    int k = gort__symbolize(pc, fr, 16, d->symflags);
    print_frame(d->o, &fr[k - 1], pc, false);
}

static bool can_capture(gort_g_t *gp)
{
    gort_m_t *m = __atomic_load_n(&gp->m, __ATOMIC_ACQUIRE);
    /* An M without a P is blocked in a call the runtime was not told of
     * (sysmon took its P): a signal would interrupt that call. */
    return m && __atomic_load_n(&m->p, __ATOMIC_RELAXED) != NULL;
}

static void dump_g(dump_t *d, gort_g_t *gp)
{
    uint32_t st = atomic_load_explicit(&gp->status, memory_order_acquire);
    if (st == G_DEAD || st == G_IDLE)
        return;
    print_header(d, gp);
    int n = -1;
    for (int tries = 0; tries < 3; tries++) {
        n = gort__unwind_g(gp, d->pcs, MAXPCS);
        if (n != -1)
            break;
        if (can_capture(gp)) {
            int k = gort__unwind_running(gp, d->pcs, MAXPCS, d->capture_timeout);
            if (k >= 0) {
                print_frames(d, d->pcs, k, true, d->system);
                print_creator(d, gp);
                return;
            }
        }
        if (atomic_load_explicit(&gp->status, memory_order_acquire) == G_RUNNING) {
            o_str(d->o, "\tgoroutine running on other thread; stack unavailable\n");
            print_creator(d, gp);
            return;
        }
    }
    if (n == 0)
        print_entry(d, gp);
    else if (n < 0)
        o_str(d->o, "\tstack unavailable: goroutine changed state while being read\n");
    else
        print_frames(d, d->pcs, n, false, d->system);
    print_creator(d, gp);
}

static void guarded_dump_g(dump_t *d, gort_g_t *gp)
{
    int sig = sigsetjmp(d->jb, 0);
    if (sig != 0) {
        /* Back from the fault handler: the handler's mask is still in
         * force, and the symbolizer's lock may be ours. */
        pthread_sigmask(SIG_SETMASK, &d->mask, NULL);
        gort__symtab_fault_recover();
        o_str(d->o, "\t...stack unreadable: signal ");
        o_dec(d->o, (uint64_t)sig);
        o_str(d->o, " while unwinding this goroutine\n");
        return;
    }
    dump_g(d, gp);
}

/* The hints for the goroutines dumped next read their Gs, which the
 * program may have made unreadable (a G can share its stack's top page):
 * under their own guard, since d->jb must never be left pointing into a
 * frame that has returned.  A fault only drops the hint. */
static void guarded_prefetch(dump_t *d, gort_g_t *g4, gort_g_t *g2)
{
    if (sigsetjmp(d->jb, 0) != 0) {
        pthread_sigmask(SIG_SETMASK, &d->mask, NULL);
        return;
    }
    if (g4) {
        void *sp = __atomic_load_n(&g4->ctx.sp, __ATOMIC_RELAXED);
        if (sp)
            __builtin_prefetch(sp);
    }
    if (g2) {
        /* The frames a walk reads next: the lines above the saved
         * context, up to the top of the stack. */
        uintptr_t sp = (uintptr_t)__atomic_load_n(&g2->ctx.sp, __ATOMIC_RELAXED);
        uintptr_t hi = __atomic_load_n(&g2->stack.hi, __ATOMIC_RELAXED);
        if (sp && hi > sp && hi - sp <= 2048)
            for (uintptr_t a = (sp & ~(uintptr_t)63) + 64; a < hi; a += 64)
                __builtin_prefetch((const void *)a);
    }
}

static bool allg_lock(dump_t *d)
{
    if (!d->crashing) {
        gort__lock(&gort__allglock);
        return true;
    }
    if (d->allg_nolock)
        return false;
    for (int i = 0; i < 100; i++) {
        if (gort__trylock(&gort__allglock))
            return true;
        gort__usleep(100);
    }
    d->allg_nolock = true;
    return false;
}

/* Every goroutine but d->self, in allgs order.  allgs is copied 256
 * entries at a time so the lock is not held while stacks are read. */
static void dump_others(dump_t *d)
{
    size_t i = 0;
    for (;;) {
        gort_g_t *batch[256];
        size_t k = 0;
        bool locked = allg_lock(d);
        size_t n = __atomic_load_n(&gort__nallgs, __ATOMIC_ACQUIRE);
        gort_g_t **all = __atomic_load_n(&gort__allgs, __ATOMIC_ACQUIRE);
        for (; i < n && k < 256; i++)
            batch[k++] = all[i];
        if (locked)
            gort__unlock(&gort__allglock);
        if (k == 0)
            return;
        for (size_t j = 0; j < k; j++) {
            /* The first touch of each goroutine's stack costs a TLB miss
             * (and a cache miss for its G): start those a few goroutines
             * ahead so that they overlap. */
            if (j + 8 < k)
                __builtin_prefetch(batch[j + 8]); /* a prefetch never faults */
            guarded_prefetch(d, j + 4 < k ? batch[j + 4] : NULL, j + 2 < k ? batch[j + 2] : NULL);
            if (batch[j] != d->self)
                guarded_dump_g(d, batch[j]);
        }
    }
}

/* What a dump prints, decided by its caller. */
typedef struct job {
    out_t *o;
    bool all, crashing, system;
    int symflags;
    gort_g_t *self;        /* printed first, from selfpcs */
    const uintptr_t *selfpcs;
    int nself;
    bool selfexact;        /* selfpcs[0] is an interrupted PC */
    bool self_runtime;     /* show runtime frames of self */
    bool runtime_stack;    /* no goroutine: print selfpcs as "runtime stack:" */
} job_t;

static void run_job(void *arg)
{
    job_t *j = arg;
    dump_t d;
    char stage[16384];
    memset(&d, 0, sizeof d);
    if (!j->o->buf && j->o->spillfd < 0) {
        j->o->buf = stage;
        j->o->cap = sizeof stage;
    }
    d.o = j->o;
    d.now = gort__nanotime_coarse();
    d.system = j->system;
    d.crashing = j->crashing;
    d.symflags = j->symflags;
    d.self = j->self;
    d.capture_timeout = j->crashing ? CRASH_CAPTURE_TIMEOUT_NS : CAPTURE_TIMEOUT_NS;
    pthread_sigmask(SIG_SETMASK, NULL, &d.mask);
    if (!j->crashing)
        d.rc = calloc(1, sizeof *d.rc);
    volatile int slot = slot_get(&d.jb); /* read after a longjmp */
    int sig = sigsetjmp(d.jb, 0);
    if (sig != 0) {
        pthread_sigmask(SIG_SETMASK, &d.mask, NULL);
        gort__symtab_fault_recover();
        o_str(d.o, "\t...unreadable: signal ");
        o_dec(d.o, (uint64_t)sig);
        o_str(d.o, " while printing this stack\n");
    } else if (j->self) {
        print_header(&d, j->self);
        print_frames(&d, j->selfpcs, j->nself, j->selfexact, j->system || j->self_runtime);
        print_creator(&d, j->self);
    } else if (j->runtime_stack && j->nself > 0) {
        d.ngs++;
        o_str(d.o, "runtime stack:\n");
        print_frames(&d, j->selfpcs, j->nself, j->selfexact, true);
    }
    if (j->all)
        dump_others(&d);
    slot_put(slot);
    o_flush(d.o);
    if (d.rc) {
        free(d.rc->text);
        free(d.rc);
    }
    if (j->o->buf == stage) {
        j->o->buf = NULL;
        j->o->cap = 0;
    }
}

/* Runs fn on the M's scheduler stack when called on a goroutine's stack:
 * libdw and libunwind need more room than a goroutine may have left.
 * m->locks keeps the goroutine from being preempted off it meanwhile. */
static void on_big_stack(void (*fn)(void *), void *arg)
{
    gort_m_t *m = gort__getm();
    gort_g_t *gp = m ? m->curg : NULL;
    uintptr_t sp = gort__getsp();
    if (gp && m->g0sp && sp >= gp->stack.lo && sp < gp->stack.hi) {
        gort__m_locks_add(m, 1);
        gort__call_on_stack(m->g0sp, fn, arg);
        gort__m_locks_add(m, -1);
    } else {
        fn(arg);
    }
}

static bool want_stw(void)
{
    if (gort__dump_stw_mode >= 0)
        return gort__dump_stw_mode != 0;
    return !gort__settings.asyncpreemptoff;
}

/* gort_stack and gort_dump: selfpcs are the caller's frames.  With the
 * world stopped a dump to an fd is collected in memory and written once
 * the world runs again: a slow reader (a pipe, a terminal) must not
 * lengthen the pause. */
static void dump_public(out_t *o, bool all, const uintptr_t *selfpcs, int nself)
{
    gort__symtab_init();
    gort__unwind_init();
    gort_g_t *self = gort__rt_enter();
    gort_m_t *m = gort__getm();
    bool stw = all && self && want_stw() && atomic_load_explicit(&m->locks, memory_order_relaxed) == 0;
    out_t mem = {.fd = -1, .spillfd = o->fd};
    bool inmem = stw && o->fd >= 0;
    if (stw)
        gort__stop_the_world("goroutine dump");
    job_t j = {
        .o = inmem ? &mem : o,
        .all = all,
        .system = gort__settings.traceback >= 3,
        .self = self,
        .selfpcs = selfpcs,
        .nself = nself,
    };
    on_big_stack(run_job, &j);
    if (stw)
        gort__start_the_world();
    if (inmem) {
        mem.fd = o->fd; /* the whole dump, or what is left after a spill */
        o_flush(&mem);
        free(mem.buf);
    }
    gort__rt_leave(self);
}

size_t gort_stack(char *buf, size_t len, bool all)
{
    gort__fork_check();
    uintptr_t pcs[MAXPCS];
    int n = gort__unwind_self(pcs, MAXPCS, 1);
    if (!buf || len == 0)
        return 0;
    out_t o = {.fd = -1, .buf = buf, .cap = len, .spillfd = -1};
    dump_public(&o, all, pcs, n);
    return o.len;
}

void gort_dump(int fd)
{
    uintptr_t pcs[MAXPCS];
    int n = gort__unwind_self(pcs, MAXPCS, 1);
    out_t o = {.fd = fd, .spillfd = -1};
    dump_public(&o, true, pcs, n);
}

/* ---------------------------------------------------------------- */
/* Crash dumps                                                        */
/* ---------------------------------------------------------------- */

/* One crash at a time (gort__panicking elects it): a static staging
 * buffer, so that a crash needs no memory of its own. */
static char crash_stage[16384];


void gort__dump_crash(int fd, gort_g_t *gp, void *uctx, bool all, bool runtime_view, int symflags)
{
    uintptr_t pcs[MAXPCS];
    int n = gort__unwind_sigctx(uctx, pcs, MAXPCS);
    if (all)
        gort__freeze_world();
    out_t o = {.fd = fd, .buf = crash_stage, .cap = sizeof crash_stage, .spillfd = -1};
    job_t j = {
        .o = &o,
        .all = all,
        .crashing = true,
        .system = gort__settings.traceback >= 3,
        .symflags = symflags,
        .self = gp,
        .selfpcs = pcs,
        .nself = n,
        .selfexact = true,
        .self_runtime = runtime_view,
        .runtime_stack = gp == NULL,
    };
    run_job(&j);
}

/* throw, fatal and panic (runtime/fatal.c) end here. */
void gort__dump_goroutines(int fd, bool all, bool crashing)
{
    uintptr_t pcs[MAXPCS];
    int n = gort__unwind_self(pcs, MAXPCS, 0);
    if (!crashing) {
        out_t o = {.fd = fd, .spillfd = -1};
        dump_public(&o, all, pcs, n);
        return;
    }
    gort__crash_watchdog_arm();
    if (all)
        gort__freeze_world();
    gort_g_t *self = gort__getg();
    out_t o = {.fd = fd, .buf = crash_stage, .cap = sizeof crash_stage, .spillfd = -1};
    job_t j = {
        .o = &o,
        .all = all,
        .crashing = true,
        .system = gort__settings.traceback >= 3,
        .symflags = GORT_SYM_TRYLOCK,
        .self = self,
        .selfpcs = pcs,
        .nself = n,
        /* Called on the scheduler's stack (checkdead, say): Go's fatal
         * errors show only goroutines; the scheduler's frames are for
         * GORT_TRACEBACK=system. */
        .runtime_stack = self == NULL && gort__settings.traceback >= 3,
    };
    on_big_stack(run_job, &j);
}
