/*
 * profiles.c: the goroutine, block and mutex profiles, and what every
 * profile shares: turning PCs into pprof locations and labels.
 *
 *   goroutine  every live goroutine's stack, aggregated by stack and
 *              labels, a snapshot as of one stop of the world (when
 *              asynchronous preemption is linked in, as dumps do).  The
 *              stop only starts a generation, O(1) however many
 *              goroutines there are (Go 1.19's design, runtime/proc.h);
 *              the stacks are read with the world running, each by the
 *              profiler's walk or by the scheduler before that goroutine
 *              runs again, whichever comes first.  Rejected: reading all
 *              stacks with the world stopped (the pause grew with the
 *              goroutine count, tens of ms at 100,000).
 *   block      time goroutines spent blocked (WaitGroup, semaphores here;
 *              channels, select and mutexes once chan.c/mutex.c call the
 *              hook), sampled as runtime.SetBlockProfileRate: an event of
 *              d ns is kept when d >= rate, else with probability d/rate.
 *   mutex      contention on gort mutexes charged to the unlocker's stack
 *              (the waiter's wait time, taken at release), sampled 1 in
 *              fraction as runtime.SetMutexProfileFraction.
 *
 * Block and mutex events land in a hash table of buckets keyed by stack,
 * under one runtime lock (LR_PROFBUF).  The hooks run on the goroutine
 * that blocked (block) or unlocked (mutex), after the fact, never in a
 * signal handler; a program that does not profile pays the one load in
 * sema.c that tests the rate.  Buckets are never freed, as in Go.
 *
 * The `skip` argument of the hooks is advisory: the stack is recorded from
 * the hook's caller, and when a profile is written the leading frames in
 * libgort's internal code are dropped (its public gort_* functions stay).
 * That way a caller that miscounts its frames cannot eat user frames, and
 * callers on other branches need not agree on a count.
 *
 * Output formats follow Go's runtime/pprof: debug 0 is gzipped
 * profile.proto; goroutine debug 1 is "goroutine profile: total N" with
 * "count @ pcs" records, debug 2 the full dump (gort_dump); block and mutex
 * debug >= 1 are "--- contention:" / "--- mutex:" with "cycles count @
 * pcs" records (our cycles are nanoseconds: cycles/second=1000000000).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gort_prof.h"
#include "profiles.h"
#include "symtab.h"
#include "unwind.h"

#define MAXSTACK 64
#define MAXLABELS 32

/* ------------------------------------------------------------------ */
/* Output helpers                                                       */
/* ------------------------------------------------------------------ */

int gort__write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            int e = errno;
            if (e == EINTR)
                continue;
            return -e;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

void gort__prof_on_big_stack(void (*fn)(void *), void *arg)
{
    gort_m_t *m = gort__getm();
    gort_g_t *gp = m ? m->curg : NULL;
    uintptr_t sp = gort__getsp();
    if (gp && m->g0sp && sp >= gp->stack.lo && sp < gp->stack.hi) {
        gort__m_locks_add(m, 1); /* no preemption off the scheduler stack */
        gort__call_on_stack(m->g0sp, fn, arg);
        gort__m_locks_add(m, -1);
    } else {
        fn(arg);
    }
}

/* A growing text buffer; allocation failure sticks in err. */
typedef struct tbuf {
    char *s;
    size_t len, cap;
    int err;
} tbuf_t;

__attribute__((format(printf, 2, 3))) static void tprintf(tbuf_t *b, const char *fmt, ...)
{
    if (b->err)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->err = -EINVAL;
            return;
        }
        if (b->s && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->err = -ENOMEM;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

/* ------------------------------------------------------------------ */
/* PCs to locations                                                     */
/* ------------------------------------------------------------------ */

typedef struct lcent {
    uintptr_t key; /* pc << 2 | trim << 1 | exact; 0: empty */
    uint32_t loc;
    bool internal; /* every frame of its inline chain is libgort-internal */
} lcent_t;

struct gort_loccache {
    gort__pprof_t *p;
    int symflags;
    lcent_t *tab;
    size_t cap, n;
};

gort_loccache_t *gort__loccache_new(gort__pprof_t *p, int symflags)
{
    gort_loccache_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->p = p;
    c->symflags = symflags;
    c->cap = 1024;
    c->tab = calloc(c->cap, sizeof *c->tab);
    if (!c->tab) {
        free(c);
        return NULL;
    }
    return c;
}

void gort__loccache_free(gort_loccache_t *c)
{
    if (c) {
        free(c->tab);
        free(c);
    }
}

static size_t lc_hash(uintptr_t k) { return (size_t)((k * 0x9e3779b97f4a7c15ull) >> 17); }

static int lc_grow(gort_loccache_t *c)
{
    size_t cap = c->cap * 2;
    lcent_t *t = calloc(cap, sizeof *t);
    if (!t)
        return -ENOMEM;
    for (size_t i = 0; i < c->cap; i++)
        if (c->tab[i].key) {
            size_t j = lc_hash(c->tab[i].key) & (cap - 1);
            while (t[j].key)
                j = (j + 1) & (cap - 1);
            t[j] = c->tab[i];
        }
    free(c->tab);
    c->tab = t;
    c->cap = cap;
    return 0;
}

static const char *frame_file(const gort_frame_t *f)
{
    if (f->file)
        return f->file;
    return f->module ? f->module->path : "";
}

/* Index of the innermost frame of an inline chain that is not
 * libgort-internal; k if there is none.  The runtime inlines its own code
 * into the public functions (chanrecv into gort_chan_recv), so a PC can
 * be internal at the top of its chain and public below. */
static int first_public(const gort_frame_t *fr, int k)
{
    int i = 0;
    while (i < k && fr[i].runtime)
        i++;
    return i;
}

/* Symbolizes one PC into a location (lines innermost first).  trim: the
 * PC leads a block or mutex stack; drop its inlined internal frames. */
static int64_t make_loc(gort_loccache_t *c, uintptr_t pc, bool exact, bool trim, bool *internal)
{
    gort__pprof_t *p = c->p;
    gort_frame_t fr[16];
    int k = gort__symbolize(exact ? pc : pc - 1, fr, 16, c->symflags);
    int first = first_public(fr, k);
    *internal = k > 0 && first == k;
    int from = trim && first < k ? first : 0;
    gort__pprof_line_t lines[16];
    for (int i = from; i < k; i++) {
        char hex[40];
        const char *name = fr[i].func;
        if (!name || !strcmp(name, "?")) {
            snprintf(hex, sizeof hex, "0x%lx", (unsigned long)pc);
            name = hex;
        }
        int64_t f = gort__pprof_add_function(p, name, name, frame_file(&fr[i]), 0);
        if (f < 0)
            return f;
        lines[i - from] = (gort__pprof_line_t){.func = (uint32_t)f, .line = fr[i].line, .column = 0};
    }
    uint32_t mi = GORT__PPROF_NONE;
    const gort_module_t *mod = gort__module_of(pc);
    if (mod) {
        int64_t m = gort__pprof_add_mapping(p, mod->start, mod->end, mod->offset, mod->path, mod->build_id);
        if (m < 0)
            return m;
        mi = (uint32_t)m;
    }
    return gort__pprof_add_location(p, mi, pc, lines, (uint32_t)(k - from));
}

static int64_t lookup(gort_loccache_t *c, uintptr_t pc, bool exact, bool trim, bool *internal)
{
    uintptr_t key = (pc << 2) | (trim ? 2 : 0) | (exact ? 1 : 0);
    if (!key)
        key = 4;
    if ((c->n + 1) * 2 > c->cap && lc_grow(c) < 0)
        return -ENOMEM;
    size_t j = lc_hash(key) & (c->cap - 1);
    while (c->tab[j].key) {
        if (c->tab[j].key == key) {
            *internal = c->tab[j].internal;
            return c->tab[j].loc;
        }
        j = (j + 1) & (c->cap - 1);
    }
    int64_t loc = make_loc(c, pc, exact, trim, internal);
    if (loc < 0)
        return loc;
    c->tab[j] = (lcent_t){key, (uint32_t)loc, *internal};
    c->n++;
    return loc;
}

int gort__stack_locs(gort_loccache_t *c, const uintptr_t *pcs, int n, bool exact0, bool trim, uint32_t *out)
{
    int k = 0;
    bool leading = trim;
    for (int i = 0; i < n; i++) {
        bool internal = false;
        int64_t loc = lookup(c, pcs[i], exact0 && i == 0, leading, &internal);
        if (loc < 0)
            return (int)loc;
        if (leading && internal && i + 1 < n)
            continue;
        leading = false;
        out[k++] = (uint32_t)loc;
    }
    return k;
}

int gort__labels_pprof(gort__pprof_t *p, const gort_labels_t *l, gort__pprof_label_t *out, int max)
{
    int k = 0;
    for (int i = 0; l && i < l->n && k < max; i++) {
        int64_t key = gort__pprof_str(p, l->kv[i].key), val = gort__pprof_str(p, l->kv[i].value);
        if (key < 0 || val < 0)
            return -ENOMEM;
        out[k++] = (gort__pprof_label_t){.key = key, .str = val};
    }
    return k;
}

/* ------------------------------------------------------------------ */
/* Records: a stack with counts, for all three profiles                 */
/* ------------------------------------------------------------------ */

typedef struct rec {
    struct rec *next;
    uint64_t hash;
    int64_t count, delay;   /* delay: ns (block/mutex) */
    gort_labels_t *labels;  /* goroutine profile only; one reference */
    bool exact0;
    int n;
    uintptr_t pcs[];
} rec_t;

#define BUCKETS 1024

typedef struct rtab {
    rec_t *b[BUCKETS];
    size_t n;
} rtab_t;

static uint64_t stack_hash(const uintptr_t *pcs, int n, const void *extra)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)(uintptr_t)extra;
    for (int i = 0; i < n; i++)
        h = (h ^ pcs[i]) * 1099511628211ull;
    return h ^ (uint64_t)n;
}

/* Finds or adds the record for this stack; NULL when out of memory.  A new
 * record takes over the caller's label reference; a found one does not. */
static rec_t *rtab_get(rtab_t *t, const uintptr_t *pcs, int n, bool exact0, gort_labels_t *labels, bool *added)
{
    uint64_t h = stack_hash(pcs, n, labels);
    rec_t **slot = &t->b[h % BUCKETS];
    *added = false;
    for (rec_t *r = *slot; r; r = r->next)
        if (r->hash == h && r->n == n && r->labels == labels && r->exact0 == exact0 &&
            !memcmp(r->pcs, pcs, sizeof(uintptr_t) * (size_t)n))
            return r;
    rec_t *r = calloc(1, sizeof *r + sizeof(uintptr_t) * (size_t)n);
    if (!r)
        return NULL;
    r->hash = h;
    r->n = n;
    r->exact0 = exact0;
    r->labels = labels;
    memcpy(r->pcs, pcs, sizeof(uintptr_t) * (size_t)n);
    r->next = *slot;
    *slot = r;
    t->n++;
    *added = true;
    return r;
}

static void rtab_free(rtab_t *t)
{
    for (int i = 0; i < BUCKETS; i++)
        for (rec_t *r = t->b[i], *nx; r; r = nx) {
            nx = r->next;
            gort__labels_unref(r->labels);
            free(r);
        }
    memset(t, 0, sizeof *t);
}

/* Records of a table as an array, sorted by count (then delay) descending:
 * Go's text output order. */
static int rec_cmp(const void *a, const void *b)
{
    const rec_t *x = *(rec_t *const *)a, *y = *(rec_t *const *)b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    if (x->delay != y->delay)
        return x->delay > y->delay ? -1 : 1;
    return 0;
}

static rec_t **rtab_sorted(const rtab_t *t)
{
    rec_t **v = malloc(sizeof(rec_t *) * (t->n + 1));
    if (!v)
        return NULL;
    size_t k = 0;
    for (int i = 0; i < BUCKETS; i++)
        for (rec_t *r = t->b[i]; r; r = r->next)
            v[k++] = r;
    qsort(v, k, sizeof *v, rec_cmp);
    return v;
}

/* ------------------------------------------------------------------ */
/* Block and mutex events                                               */
/* ------------------------------------------------------------------ */

enum { PROF_BLOCK, PROF_MUTEX };
static gort_lock_t evlock = GORT_LOCK_INIT(LR_PROFBUF);
static rtab_t evtab[2]; /* under evlock */

void gort_set_block_profile_rate(int64_t rate)
{
    gort__fork_check();
    atomic_store_explicit(&gort__block_rate, rate < 0 ? 0 : rate, memory_order_relaxed);
}

int gort_set_mutex_profile_fraction(int rate)
{
    gort__fork_check();
    if (rate < 0)
        return atomic_load_explicit(&gort__mutex_fraction, memory_order_relaxed);
    return atomic_exchange_explicit(&gort__mutex_fraction, rate, memory_order_relaxed);
}

static void record_event(int which, int64_t ns)
{
    uintptr_t pcs[MAXSTACK];
    /* From our caller (sema.c, chan.c); skip is advisory, see above. */
    int n = gort__unwind_self(pcs, MAXSTACK, 0);
    if (n <= 0)
        return;
    gort__lock(&evlock);
    bool added;
    rec_t *r = rtab_get(&evtab[which], pcs, n, false, NULL, &added);
    if (r) {
        r->count++;
        r->delay += ns;
    }
    gort__unlock(&evlock);
}

void gort__prof_block(int64_t t0, int64_t t1, int skip)
{
    (void)skip;
    int64_t rate = atomic_load_explicit(&gort__block_rate, memory_order_relaxed);
    if (rate <= 0)
        return;
    int64_t d = t1 - t0;
    if (d < 0)
        d = 0;
    if (rate > d) {
        uint64_t r = ((uint64_t)gort__fastrand() << 32 | gort__fastrand()) % (uint64_t)rate;
        if ((int64_t)r > d)
            return;
    }
    record_event(PROF_BLOCK, d);
}

void gort__prof_mutex(int64_t wait_ns, int skip)
{
    (void)skip;
    int32_t frac = atomic_load_explicit(&gort__mutex_fraction, memory_order_relaxed);
    if (frac <= 0 || (frac > 1 && gort__fastrandn((uint32_t)frac) != 0))
        return;
    record_event(PROF_MUTEX, wait_ns < 0 ? 0 : wait_ns);
}

/* A snapshot of an event table, taken under the lock (the copy keeps the
 * lock short and lets symbolization run without it). */
static int snapshot_events(int which, rtab_t *out)
{
    memset(out, 0, sizeof *out);
    int err = 0;
    gort__lock(&evlock);
    for (int i = 0; i < BUCKETS && !err; i++)
        for (rec_t *r = evtab[which].b[i]; r; r = r->next) {
            bool added;
            rec_t *c = rtab_get(out, r->pcs, r->n, false, NULL, &added);
            if (!c) {
                err = -ENOMEM;
                break;
            }
            c->count += r->count;
            c->delay += r->delay;
        }
    gort__unlock(&evlock);
    return err;
}

int gort__prof_records(const char *name)
{
    int which = !strcmp(name, "block") ? PROF_BLOCK : !strcmp(name, "mutex") ? PROF_MUTEX : -1;
    if (which < 0)
        return -ENOENT;
    gort__lock(&evlock);
    int n = (int)evtab[which].n;
    gort__unlock(&evlock);
    return n;
}

/* ------------------------------------------------------------------ */
/* Goroutine stacks                                                     */
/* ------------------------------------------------------------------ */

typedef struct gcollect {
    rtab_t tab;
    gort_g_t *self;
    const uintptr_t *selfpcs;
    int nself;
    int64_t total;
    int err;
} gcollect_t;

static void add_g(gcollect_t *c, gort_g_t *gp, const uintptr_t *pcs, int n, bool exact0)
{
    uintptr_t entry;
    if (n <= 0) {
        /* Never ran, or unreadable: the entry function stands for it. */
        entry = (uintptr_t)gp->fn + 1;
        pcs = &entry;
        n = 1;
        exact0 = false;
    }
    gort_labels_t *l = __atomic_load_n(&gp->labels, __ATOMIC_RELAXED);
    gort__labels_ref(l);
    bool added;
    rec_t *r = rtab_get(&c->tab, pcs, n, exact0, l, &added);
    if (!r) {
        gort__labels_unref(l);
        c->err = -ENOMEM;
        return;
    }
    if (!added)
        gort__labels_unref(l);
    r->count++;
    c->total++;
}

static void collect_g(gcollect_t *c, gort_g_t *gp)
{
    uint32_t st = atomic_load_explicit(&gp->status, memory_order_acquire);
    if (st == G_DEAD || st == G_IDLE)
        return;
    uintptr_t pcs[MAXSTACK];
    for (int tries = 0; tries < 3; tries++) {
        int n = gort__unwind_g(gp, pcs, MAXSTACK);
        if (n >= 0) {
            add_g(c, gp, pcs, n, false);
            return;
        }
        if (n == -1) {
            gort_m_t *m = __atomic_load_n(&gp->m, __ATOMIC_ACQUIRE);
            /* Only a thread with a P runs user code we may interrupt: one
             * without (sysmon took it) may be blocked in a call. */
            if (m && __atomic_load_n(&m->p, __ATOMIC_RELAXED)) {
                int k = gort__unwind_running(gp, pcs, MAXSTACK, 50 * 1000 * 1000);
                if (k >= 0) {
                    add_g(c, gp, pcs, k, true);
                    return;
                }
            }
            if (atomic_load_explicit(&gp->status, memory_order_acquire) == G_RUNNING)
                break;
        }
    }
    add_g(c, gp, NULL, 0, false);
}

/* Calls fn on every G, 256 at a time, never under allglock (fn unwinds). */
static void each_g(void (*fn)(gort_g_t *gp, void *arg), void *arg)
{
    size_t i = 0;
    for (;;) {
        gort_g_t *batch[256];
        size_t k = 0;
        gort__lock(&gort__allglock);
        for (; i < gort__nallgs && k < 256; i++)
            batch[k++] = gort__allgs[i];
        gort__unlock(&gort__allglock);
        if (k == 0)
            return;
        for (size_t j = 0; j < k; j++)
            fn(batch[j], arg);
    }
}

static void collect_other(gort_g_t *gp, void *arg)
{
    gcollect_t *c = arg;
    if (gp != c->self)
        collect_g(c, gp);
}

static void collect_all(void *arg)
{
    gcollect_t *c = arg;
    if (c->self)
        add_g(c, c->self, c->selfpcs, c->nself, false);
    each_g(collect_other, c);
}

/* ------------------------------------------------------------------ */
/* The goroutine profile with the world running                         */
/* ------------------------------------------------------------------ */

/* One profile collects at a time (gprof_sema, a runtime semaphore: the
 * second waits parked).  gprof.c is the collecting profile's table and
 * gprof.want its generation (runtime/proc.h, gort__gprof_want); both under
 * gplock, which also guards every insertion into gprof.c while the walk
 * and the scheduler's recorders run at once.  A recorder that read a stale
 * gort__gprof_want finds gprof.want changed here and adds nothing. */
static _Atomic uint32_t gprof_sema = 1;
static uint32_t gprof_gen; /* under gprof_sema */
static gort_lock_t gplock = GORT_LOCK_INIT(LR_PROFBUF);
static struct {
    gcollect_t *c;
    uint32_t want;
} gprof; /* under gplock */

static void gprof_record(gort_g_t *gp, uint32_t want)
{
    uintptr_t pcs[MAXSTACK];
    /* Not running (the scheduler waits for us), except a goroutine blocked
     * outside the runtime whose M lost its P (-1): that one shows its
     * entry function, as before. */
    int n = gort__unwind_g(gp, pcs, MAXSTACK);
    gort__lock(&gplock);
    if (gprof.c && gprof.want == want)
        add_g(gprof.c, gp, pcs, n < 0 ? 0 : n, false);
    gort__unlock(&gplock);
}

/* Puts gp into the profile of generation want unless it is there, dead or
 * born since; waits while someone else records it (the scheduler, if this
 * is the walk, or the walk, if this is the scheduler: neither can block
 * on the other while recording). */
static void gprof_try(gort_g_t *gp, uint32_t want)
{
    for (;;) {
        uint32_t w = atomic_load_explicit(&gp->profword, memory_order_acquire);
        if (w == want)
            return;
        if (w == want + 1) {
            gort__cpu_relax();
            continue;
        }
        uint32_t st = atomic_load_explicit(&gp->status, memory_order_acquire);
        if (st == G_DEAD || st == G_IDLE)
            return;
        if (atomic_compare_exchange_strong_explicit(&gp->profword, &w, want + 1, memory_order_acq_rel,
                                                    memory_order_relaxed)) {
            gprof_record(gp, want);
            /* release: pairs with the acquire in gort__gprof_pending */
            atomic_store_explicit(&gp->profword, want, memory_order_release);
            return;
        }
    }
}

/* gort__hooks.gprof_record: the scheduler is about to run gp. */
void gort__gprof_record(gort_g_t *gp)
{
    uint32_t want = atomic_load_explicit(&gort__gprof_want, memory_order_relaxed);
    if (want)
        gprof_try(gp, want);
}

typedef struct gwalk {
    uint32_t want;
} gwalk_t;

static void gprof_try_one(gort_g_t *gp, void *want) { gprof_try(gp, *(uint32_t *)want); }

static void gprof_walk(void *arg)
{
    gwalk_t *wk = arg;
    each_g(gprof_try_one, &wk->want);
}

/* With the world stopped only to start a generation: O(1) however many
 * goroutines there are.  Gs created later are marked by newproc; every
 * older one is recorded by the walk or, first, by the scheduler. */
static void collect_concurrent(gcollect_t *c)
{
    gort__semacquire(&gprof_sema, false, WR_SEMACQUIRE, 0);
    gort__stop_the_world("goroutine profile");
    gprof_gen += 2;
    if (gprof_gen == 0)
        gprof_gen = 2;
    uint32_t want = gprof_gen;
    if (c->self) {
        add_g(c, c->self, c->selfpcs, c->nself, false);
        atomic_store_explicit(&c->self->profword, want, memory_order_relaxed);
    }
    gort__lock(&gplock);
    gprof.c = c;
    gprof.want = want;
    gort__unlock(&gplock);
    /* The switch's bit before the flag (hooks.h); the world is stopped. */
    atomic_fetch_or_explicit(&gort__switch_slow, GORT_SWITCH_GPROF, memory_order_relaxed);
    /* release: pairs with the acquire in gort__gprof_pending */
    atomic_store_explicit(&gort__gprof_want, want, memory_order_release);
    gort__start_the_world();

    gwalk_t wk = {.want = want};
    gort__prof_on_big_stack(gprof_walk, &wk);

    /* Every goroutine alive at the stop is in (the walk waited for those
     * being recorded): late recorders find gprof.c gone.  release: a
     * scheduler that reads 0 (acquire, gort__gprof_pending) may then
     * reuse a G this profile read; every read of the walk and of the
     * recorders it waited for comes before (runtime/proc.h). */
    gort__lock(&gplock);
    atomic_store_explicit(&gort__gprof_want, 0, memory_order_release);
    /* After the flag, and release for the same reason (hooks.h): a switch
     * that reads the bit clear reads the flag 0.  One profile at a time
     * (gprof_sema): no other sets it meanwhile. */
    atomic_fetch_and_explicit(&gort__switch_slow, ~(uint32_t)GORT_SWITCH_GPROF, memory_order_release);
    gprof.c = NULL;
    gprof.want = 0;
    gort__unlock(&gplock);
    gort__semrelease(&gprof_sema, false, 0);
}

/* ------------------------------------------------------------------ */
/* Writing                                                              */
/* ------------------------------------------------------------------ */

typedef struct wjob {
    const char *name;
    int which; /* -1 goroutine, else PROF_BLOCK / PROF_MUTEX */
    int fd, debug;
    rtab_t *tab;
    int64_t total;
    int err;
} wjob_t;

static void write_proto(wjob_t *j)
{
    gort__pprof_t *p = gort__pprof_new();
    gort_loccache_t *lc = p ? gort__loccache_new(p, 0) : NULL;
    rec_t **v = rtab_sorted(j->tab);
    int err = (!p || !lc || !v) ? -ENOMEM : 0;
    int64_t period = 1;
    if (!err && j->which < 0) {
        err = gort__pprof_add_sample_type(p, "goroutine", "count");
        if (!err)
            err = gort__pprof_set_period(p, "goroutine", "count", 1);
    } else if (!err) {
        if (j->which == PROF_MUTEX) {
            period = atomic_load_explicit(&gort__mutex_fraction, memory_order_relaxed);
            if (period < 1)
                period = 1;
        }
        err = gort__pprof_add_sample_type(p, "contentions", "count");
        if (!err)
            err = gort__pprof_add_sample_type(p, "delay", "nanoseconds");
        if (!err)
            err = gort__pprof_set_period(p, "contentions", "count", period);
    }
    if (p) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        p->time_nanos = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    }
    uint32_t locs[MAXSTACK + 1];
    gort__pprof_label_t lab[MAXLABELS];
    for (size_t i = 0; !err && i < j->tab->n; i++) {
        rec_t *r = v[i];
        int nl = gort__stack_locs(lc, r->pcs, r->n, r->exact0, true, locs);
        int nlab = nl < 0 ? 0 : gort__labels_pprof(p, r->labels, lab, MAXLABELS);
        if (nl < 0 || nlab < 0) {
            err = -ENOMEM;
            break;
        }
        /* Go scales mutex samples by the fraction, not block samples. */
        int64_t val[2] = {r->count, r->delay};
        if (j->which == PROF_MUTEX) {
            val[0] *= period;
            val[1] *= period;
        }
        err = gort__pprof_add_sample(p, locs, (uint32_t)nl, val, lab, (uint32_t)nlab);
    }
    if (!err)
        err = gort__pprof_write(p, j->fd, true);
    free(v);
    gort__loccache_free(lc);
    gort__pprof_free(p);
    j->err = err;
}

/* Index of the first frame outside libgort's internal code (the last
 * frame at worst): block and mutex stacks are recorded from inside the
 * runtime, and Go's start at the blocking or unlocking API call. */
static int first_user(const rec_t *r)
{
    for (int i = 0; i + 1 < r->n; i++) {
        bool exact = r->exact0 && i == 0;
        gort_frame_t fr[16];
        int k = gort__symbolize(exact ? r->pcs[i] : r->pcs[i] - 1, fr, 16, 0);
        if (k <= 0 || first_public(fr, k) < k)
            return i;
    }
    return r->n > 0 ? r->n - 1 : 0;
}

/* One "#\t0x...\tfunc+0x..\tfile:line" line per frame, inlined calls
 * included, as runtime/pprof's printStackRecord.  Without all, leading
 * libgort-internal frames are hidden (Go hides runtime.* that way). */
static void text_frames(tbuf_t *b, const rec_t *r, bool all, int from)
{
    bool show = all;
    for (int i = from; i < r->n; i++) {
        bool exact = r->exact0 && i == 0;
        uintptr_t pc = exact ? r->pcs[i] : r->pcs[i] - 1;
        gort_frame_t fr[16];
        int k = gort__symbolize(pc, fr, 16, 0);
        int from = 0;
        if (!show && k > 0) {
            from = first_public(fr, k);
            if (from == k && i + 1 < r->n)
                continue;
            if (from == k)
                from = 0;
        }
        show = true;
        for (int f = from; f < k; f++) {
            if (!fr[f].func || !strcmp(fr[f].func, "?")) {
                tprintf(b, "#\t%#lx\n", (unsigned long)pc);
                continue;
            }
            uintptr_t entry = fr[k - 1].entry;
            tprintf(b, "#\t%#lx\t%s+%#lx\t%s:%d\n", (unsigned long)pc, fr[f].func,
                    (unsigned long)(entry && entry <= pc ? pc - entry : 0), frame_file(&fr[f]), (int)fr[f].line);
        }
    }
    tprintf(b, "\n");
}

static void text_pcs(tbuf_t *b, const rec_t *r, int from)
{
    for (int i = from; i < r->n; i++)
        tprintf(b, " %#lx", (unsigned long)r->pcs[i]);
    tprintf(b, "\n");
}

static void write_text(wjob_t *j)
{
    tbuf_t b = {0};
    rec_t **v = rtab_sorted(j->tab);
    if (!v) {
        j->err = -ENOMEM;
        return;
    }
    if (j->which < 0) {
        tprintf(&b, "goroutine profile: total %lld\n", (long long)j->total);
        for (size_t i = 0; i < j->tab->n; i++) {
            rec_t *r = v[i];
            tprintf(&b, "%lld @", (long long)r->count);
            text_pcs(&b, r, 0);
            if (r->labels) {
                tprintf(&b, "# labels: {");
                for (int k = 0; k < r->labels->n; k++)
                    tprintf(&b, "%s\"%s\":\"%s\"", k ? ", " : "", r->labels->kv[k].key, r->labels->kv[k].value);
                tprintf(&b, "}\n");
            }
            text_frames(&b, r, false, 0);
        }
    } else {
        tprintf(&b, "--- %s:\n", j->which == PROF_MUTEX ? "mutex" : "contention");
        tprintf(&b, "cycles/second=1000000000\n");
        if (j->which == PROF_MUTEX)
            tprintf(&b, "sampling period=%d\n", atomic_load(&gort__mutex_fraction));
        for (size_t i = 0; i < j->tab->n; i++) {
            rec_t *r = v[i];
            tprintf(&b, "%lld %lld @", (long long)r->delay, (long long)r->count);
            int from = first_user(r);
            text_pcs(&b, r, from);
            text_frames(&b, r, true, from);
        }
    }
    free(v);
    j->err = b.err ? b.err : gort__write_all(j->fd, b.s, b.len);
    free(b.s);
}

static void write_job(void *arg)
{
    wjob_t *j = arg;
    if (j->debug <= 0)
        write_proto(j);
    else
        write_text(j);
}

static int goroutine_profile(int fd, int debug)
{
    gort__symtab_init();
    gort__unwind_init();
    gcollect_t c = {.err = 0};
    uintptr_t selfpcs[MAXSTACK];
    gort_g_t *self = gort__rt_enter();
    c.self = self;
    if (self) {
        c.nself = gort__unwind_self(selfpcs, MAXSTACK, 1);
        c.selfpcs = selfpcs;
    }
    gort_m_t *m = gort__getm();
    bool stw = self && !gort__settings.asyncpreemptoff && atomic_load_explicit(&m->locks, memory_order_relaxed) == 0;
    if (stw)
        collect_concurrent(&c);
    else
        gort__prof_on_big_stack(collect_all, &c);
    wjob_t j = {.name = "goroutine", .which = -1, .fd = fd, .debug = debug, .tab = &c.tab, .total = c.total};
    if (!c.err)
        gort__prof_on_big_stack(write_job, &j);
    rtab_free(&c.tab);
    gort__rt_leave(self);
    return c.err ? c.err : j.err;
}

int gort_profile_write(const char *name, int fd, int debug)
{
    gort__fork_check();
    if (!name)
        return -ENOENT;
    int which;
    if (!strcmp(name, "goroutine"))
        which = -1;
    else if (!strcmp(name, "block"))
        which = PROF_BLOCK;
    else if (!strcmp(name, "mutex"))
        which = PROF_MUTEX;
    else
        return -ENOENT;
    if (fd < 0)
        return -EBADF;
    gort__start();
    if (which < 0) {
        if (debug >= 2) {
            gort_dump(fd);
            return 0;
        }
        return goroutine_profile(fd, debug);
    }
    gort__symtab_init();
    rtab_t tab;
    int err = snapshot_events(which, &tab);
    wjob_t j = {.name = name, .which = which, .fd = fd, .debug = debug, .tab = &tab};
    if (!err)
        gort__prof_on_big_stack(write_job, &j);
    rtab_free(&tab);
    return err ? err : j.err;
}
