/*
 * stack.c: goroutine stacks.
 *
 * Stacks are carved from slabs: one anonymous mmap holds SLAB_SLOTS slots,
 * each a guard page followed by the usable stack.  Memory is committed
 * lazily by the kernel, so a parked goroutine costs the pages it touched
 * (usually one).  Slabs are marked MADV_NOHUGEPAGE: a transparent huge page
 * would turn one touched page into 2 MiB.
 *
 * C stacks cannot grow or move, so each stack is large in address space
 * (GORT_STACK_SIZE, default 256 KiB) and small in memory.  A goroutine gets
 * its stack when it first runs, not when it is created, and gives it back
 * when it exits: a million goroutines spawned and finished need only as
 * many stacks as run at once.  The exception: a new G carved off the top
 * of a stack (gort__stack_carve; proc.c's malg says when) holds that
 * stack from its creation, and the stack's hi stays below it for good.
 *
 * Overflow detection at a million stacks.  vm.max_map_count (65530 by
 * default) allows about 32k PROT_NONE guard pages, since each splits a
 * mapping in two.  In order of preference:
 *   1. GUARD_MADVISE: MADV_GUARD_INSTALL (Linux 6.13+) puts guard markers in
 *      the page tables without creating VMAs; adjacent slabs still merge
 *      into one mapping.  Every stack is guarded, whatever the count.
 *   2. GUARD_MPROTECT: older kernels get PROT_NONE guards for the first
 *      GUARD_VMA_BUDGET stacks;
 *   3. GUARD_CANARY: beyond that a canary word at the bottom of the stack,
 *      checked whenever the goroutine switches out (gort__stack_check).
 *      That detects an overflow late (the neighbour may be damaged) but it
 *      does detect it.
 * A fault in a guard page is reported as "goroutine N stack overflow" by the
 * SIGSEGV handler (prof/crash.c), which runs on the M's signal stack.
 *
 * Colouring: execute() starts a new goroutine's frames 0-31 cache lines
 * below the top, by slot, so that the hot frames of thousands of
 * goroutines do not all land in the same cache sets.
 *
 * Caching: each P keeps up to PCACHE stacks (no lock); overflow spills half
 * to a global pool under a lock, and an empty cache refills half from it
 * with one acquisition of that lock (Go's stackcacherefill).  With the
 * pool empty (a burst of new goroutines) a P takes fresh slots of the
 * newest slab one at a time, each with a CAS on slab_next and no lock:
 * one at a time so that goroutines created together get stacks in the
 * order they first run, whichever P runs them, which is the order of
 * allgs that dumps and goroutine profiles walk.  (Batches of fresh slots
 * per P interleaved the address ranges of the Ps, and a walk in allgs
 * order then jumped between them at every goroutine: each first touch of
 * a stack missed the page-walk caches, and a dump at 2 procs ran much
 * slower than with one take per stack.)  So a burst takes no lock per
 * stack either way.  The system calls stay outside the lock: a new slab
 * is mapped first and then installed with a CAS (the mmap lock would
 * stall page faults on every core behind a lock holder), and a slot's
 * guard is installed by the thread that hands the stack out
 * (GUARD_PENDING until then).  The pool is a LIFO, so the stacks at its
 * bottom are the ones nobody used lately.  gort__stack_scavenge (called by
 * sysmon every few hundred ms) returns the pages of the stacks that stayed
 * in the pool for a whole period, beyond POOL_WARM, to the kernel
 * (MADV_DONTNEED; guard markers survive it): a burst of goroutines does not
 * pin its peak memory forever, and no exit path pays for a madvise and its
 * TLB shootdown.
 */
#include "runtime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#define SLAB_SLOTS 64
#define PCACHE 32
#define POOL_WARM 256
#define GUARD_VMA_BUDGET 16384
#define CANARY 0x676f72747374616bULL /* "gortstak" */

static size_t stack_size;  /* usable bytes, a multiple of the page size */
static size_t slot_size;   /* guard + usable */
static _Atomic int guard_kind; /* enum gort_guard_kind for new slots; relaxed:
                                  it only ever degrades, and a stale read
                                  costs one failed madvise */

static gort_lock_t pool_lock = GORT_LOCK_INIT(LR_STACKPOOL);
static gort_stack_t *pool;          /* under pool_lock */
static size_t npool, poolcap;
static size_t pool_low;             /* lowest npool since the last scavenge */
static size_t ncold;                /* pool[0..ncold) have no pages */
static size_t slab_slots;  /* slots per slab (init) */
/* The newest slab and its next fresh slot: the slab's base (page aligned)
 * plus the slot's index in the low bits, at most slab_slots (used up); 0
 * before the first slab.  A taker CASes the index up while it is below
 * slab_slots (fresh_take), so a used-up word changes only when a new slab
 * replaces it (slab_install).  Slabs are never unmapped, so no value
 * comes back (no ABA). */
static _Atomic uintptr_t slab_next;
/* npool, written under pool_lock: a P with an empty cache reads it
 * without the lock to skip the lock when the pool is empty (relaxed: a
 * stale zero costs a fresh slot instead of a pooled one, a stale count a
 * lock acquisition that finds nothing). */
static _Atomic size_t npool_hint;
static _Atomic size_t guarded_mprotect; /* stacks given a PROT_NONE guard */
static _Atomic uint64_t nallocated;
static _Atomic uint64_t pool_takes;  /* pool_lock acquisitions that hand out stacks */

size_t gort__stack_size(void) { return stack_size; }

static bool probe_madvise_guard(void)
{
    size_t pg = GORT_PAGE_SIZE;
    void *p = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return false;
    bool ok = madvise(p, pg, MADV_GUARD_INSTALL) == 0;
    munmap(p, 2 * pg);
    return ok;
}

void gort__stack_init(void)
{
    size_t sz = gort__settings.stack_size;
    if (sz < 16 * 1024)
        sz = 16 * 1024;
    sz = (sz + GORT_PAGE_SIZE - 1) & ~(size_t)(GORT_PAGE_SIZE - 1);
    stack_size = sz;
    slot_size = sz + GORT_PAGE_SIZE;
    guard_kind = probe_madvise_guard() ? GUARD_MADVISE : GUARD_MPROTECT;
    size_t slots = SLAB_SLOTS;
    if (slot_size * slots > (64u << 20))
        slots = ((64u << 20) / slot_size) ? (64u << 20) / slot_size : 1;
    slab_slots = slots; /* below the page size: the index fits slab_next's low bits */
}

/* A slab is only address space: each slot gets its guard when it is first
 * handed out (install_guard).  Mapped without any lock held; the caller
 * installs it (slab_install). */
static void *map_slab(size_t *lenp)
{
    size_t len = slot_size * slab_slots;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    (void)madvise(p, len, MADV_NOHUGEPAGE);
    *lenp = len;
    return p;
}

/* Makes p the slab to carve from if the newest one is still used up;
 * false: another thread installed one meanwhile, p is not needed (the
 * caller unmaps it). */
static bool slab_install(void *p)
{
    uintptr_t w = atomic_load_explicit(&slab_next, memory_order_relaxed);
    if (w != 0 && (w & (GORT_PAGE_SIZE - 1)) < slab_slots)
        return false;
    return atomic_compare_exchange_strong_explicit(&slab_next, &w, (uintptr_t)p, memory_order_relaxed,
                                                   memory_order_relaxed);
}

/* The newest slab's next fresh slot, without a lock; false if it has none
 * left (or there is no slab yet). */
static bool fresh_take(gort_stack_t *out)
{
    uintptr_t w = atomic_load_explicit(&slab_next, memory_order_relaxed);
    for (;;) {
        uintptr_t i = w & (GORT_PAGE_SIZE - 1);
        if (w == 0 || i >= slab_slots)
            return false;
        if (atomic_compare_exchange_weak_explicit(&slab_next, &w, w + 1, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            uintptr_t slot = (w - i) + i * slot_size;
            out->lo = slot + GORT_PAGE_SIZE;
            out->hi = slot + slot_size;
            out->guard = GUARD_PENDING;
            atomic_fetch_add_explicit(&nallocated, 1, memory_order_relaxed);
            return true;
        }
    }
}

/* A fresh slot, mapping a new slab when the newest is used up; false: out
 * of address space. */
static bool fresh_alloc(gort_stack_t *out)
{
    while (!fresh_take(out)) {
        size_t len;
        void *p = map_slab(&len);
        if (!p)
            return false;
        if (!slab_install(p))
            munmap(p, len); /* another thread's slab came first */
    }
    return true;
}

/* Guards the slot's first page and says how.  Without pool_lock: the
 * slot is the caller's alone.
 *
 * Why one slot at a time and not the whole slab in new_slab: installing
 * every guard marker of a slab ahead of use made each later first re-read
 * of a parked stack far slower on a paravirtualised VM than installing
 * each guard just before its stack is first used (docs/benchmarks.md,
 * "Numbers behind design choices").  That was most of a large dump and of
 * waking a parked goroutine. */
static int install_guard(uintptr_t slot)
{
    int kind = atomic_load_explicit(&guard_kind, memory_order_relaxed);
    if (kind == GUARD_MADVISE && madvise((void *)slot, GORT_PAGE_SIZE, MADV_GUARD_INSTALL) != 0) {
        kind = GUARD_MPROTECT;
        atomic_store_explicit(&guard_kind, kind, memory_order_relaxed);
    }
    if (kind == GUARD_MPROTECT) {
        if (atomic_fetch_add_explicit(&guarded_mprotect, 1, memory_order_relaxed) >= GUARD_VMA_BUDGET ||
            mprotect((void *)slot, GORT_PAGE_SIZE, PROT_NONE) != 0) {
            /* Out of mappings (vm.max_map_count) or of the budget that
             * keeps us below it. */
            gort__say_once("no more guard pages for goroutine stacks (MADV_GUARD_INSTALL is not "
                           "available and mappings are scarce); new stacks are checked by a canary");
            return GUARD_CANARY;
        }
    }
    return kind;
}

/* Only canary stacks carry a canary: writing one would commit the bottom
 * page of every stack, doubling the memory of a parked goroutine. */
static void stack_prepare(gort_stack_t *s)
{
    if (s->guard == GUARD_CANARY)
        *(volatile uint64_t *)s->lo = CANARY;
}

/* Takes up to n pooled stacks with one acquisition of pool_lock, none
 * (and no lock) if the pool looks empty.  Returns how many. */
static int pool_take(gort_stack_t *out, int n)
{
    if (atomic_load_explicit(&npool_hint, memory_order_relaxed) == 0)
        return 0;
    int k = 0;
    gort__lock(&pool_lock);
    atomic_fetch_add_explicit(&pool_takes, 1, memory_order_relaxed);
    while (k < n && npool > 0)
        out[k++] = pool[--npool];
    if (pool_low > npool)
        pool_low = npool;
    if (ncold > npool)
        ncold = npool;
    atomic_store_explicit(&npool_hint, npool, memory_order_relaxed);
    gort__unlock(&pool_lock);
    return k;
}

/* The stack's guard, if it still has none, and its canary. */
static void stack_ready(gort_stack_t *s)
{
    if (s->guard == GUARD_PENDING)
        s->guard = install_guard(s->lo - GORT_PAGE_SIZE);
    stack_prepare(s);
}

/* pool_lock held. */
static void pool_reserve(size_t n)
{
    if (npool + n <= poolcap)
        return;
    size_t cap = poolcap ? poolcap * 2 : 256;
    while (cap < npool + n)
        cap *= 2;
    gort_stack_t *np = realloc(pool, cap * sizeof(*np));
    if (!np)
        gort__throw("out of memory growing the stack pool");
    pool = np;
    poolcap = cap;
}

static void pool_push(gort_stack_t *s, int n)
{
    gort__lock(&pool_lock);
    pool_reserve((size_t)n);
    for (int i = 0; i < n; i++)
        pool[npool++] = s[i];
    atomic_store_explicit(&npool_hint, npool, memory_order_relaxed);
    gort__unlock(&pool_lock);
}

static int stack_cmp(const void *a, const void *b)
{
    uintptr_t x = ((const gort_stack_t *)a)->lo, y = ((const gort_stack_t *)b)->lo;
    return x < y ? -1 : x > y;
}

/* Releases the pages of pooled stacks nobody touched since the last call,
 * keeping POOL_WARM warm.  Returns how many it released.  Stacks are taken
 * out of the pool while their pages go, so no goroutine can get one
 * half-released; they go back at the bottom, marked cold.
 *
 * All at once, not in small batches: each batch cost two memmoves of the
 * whole pool under its lock (quadratic at 100,000 pooled stacks), and
 * sorted by address neighbouring slots go in one madvise (one TLB
 * shootdown for a run of stacks, not one per stack).  The guard page
 * between two slots goes with them: guard markers and PROT_NONE survive
 * MADV_DONTNEED, and a canary is rewritten when the stack is handed out.
 * A stack whose top holds a G (gort__stack_carve) keeps its top page. */
static size_t scavenge_locked(void);

/* One scavenge at a time (sysmon's and a direct call): a caller returns
 * once the stacks it saw idle are released, never while another caller
 * still holds them half-released outside the pool (a caller that reads
 * the RSS next would see them still resident). */
static gort_lock_t scav_lock = GORT_LOCK_INIT(LR_STACKSCAV);

size_t gort__stack_scavenge(void)
{
    gort__lock(&scav_lock);
    size_t k = scavenge_locked();
    gort__unlock(&scav_lock);
    return k;
}

static size_t scavenge_locked(void)
{
    gort__lock(&pool_lock);
    size_t idle = pool_low > POOL_WARM ? pool_low - POOL_WARM : 0;
    size_t todo = idle > ncold ? idle - ncold : 0;
    pool_low = npool;
    gort__unlock(&pool_lock);
    if (todo == 0)
        return 0;
    gort_stack_t small[64], *batch = malloc(todo * sizeof *batch);
    if (!batch) {
        batch = small;
        todo = todo < 64 ? todo : 64;
    }
    gort__lock(&pool_lock);
    size_t k = todo;
    if (ncold + k > npool)
        k = npool > ncold ? npool - ncold : 0;
    memcpy(batch, pool + ncold, k * sizeof *batch);
    memmove(pool + ncold, pool + ncold + k, (npool - ncold - k) * sizeof *pool);
    npool -= k;
    atomic_store_explicit(&npool_hint, npool, memory_order_relaxed);
    gort__unlock(&pool_lock);
    if (k > 0) {
        qsort(batch, k, sizeof *batch, stack_cmp);
        for (size_t i = 0; i < k;) {
            size_t j = i;
            while (j + 1 < k && batch[j].hi % GORT_PAGE_SIZE == 0 && batch[j + 1].lo == batch[j].hi + GORT_PAGE_SIZE)
                j++;
            uintptr_t end = batch[j].hi & ~(uintptr_t)(GORT_PAGE_SIZE - 1);
            (void)madvise((void *)batch[i].lo, end - batch[i].lo, MADV_DONTNEED);
            i = j + 1;
        }
        gort__lock(&pool_lock);
        if (ncold > npool)
            ncold = npool;
        pool_reserve(k);
        memmove(pool + ncold + k, pool + ncold, (npool - ncold) * sizeof *pool);
        memcpy(pool + ncold, batch, k * sizeof *batch);
        npool += k;
        ncold += k;
        atomic_store_explicit(&npool_hint, npool, memory_order_relaxed);
        gort__unlock(&pool_lock);
    }
    if (batch != small)
        free(batch);
    return k;
}

static void pcache_init(gort_p_t *p)
{
    if (!p->stackcache) {
        p->stackcache = calloc(PCACHE, sizeof(gort_stack_t));
        if (!p->stackcache)
            gort__throw("out of memory");
    }
}

bool gort__stack_alloc(gort_p_t *p, gort_stack_t *out)
{
    if (p) {
        if (p->nstackcache == 0) {
            pcache_init(p);
            int k = pool_take(p->stackcache, PCACHE / 2);
            /* The cache hands out from its end: reversed, it hands them
             * out in pool_take's order (the pool's most recent first),
             * as one take at a time did. */
            for (int i = 0, j = k - 1; i < j; i++, j--) {
                gort_stack_t t = p->stackcache[i];
                p->stackcache[i] = p->stackcache[j];
                p->stackcache[j] = t;
            }
            p->nstackcache = k;
        }
        if (p->nstackcache > 0)
            *out = p->stackcache[--p->nstackcache];
        else if (!fresh_alloc(out))
            return false;
    } else if (pool_take(out, 1) == 0 && !fresh_alloc(out)) {
        return false;
    }
    stack_ready(out);
    return true;
}

void gort__stack_free(gort_p_t *p, gort_stack_t *s)
{
    if (!gort__stack_check(s))
        gort__throw("stack canary overwritten: a goroutine overflowed its stack");
    if (p) {
        pcache_init(p);
        if (p->nstackcache == PCACHE) {
            pool_push(p->stackcache + PCACHE / 2, PCACHE / 2);
            p->nstackcache = PCACHE / 2;
        }
        p->stackcache[p->nstackcache++] = *s;
        return;
    }
    pool_push(s, 1);
}

void gort__stack_pcache_flush(gort_p_t *p)
{
    if (p->nstackcache > 0)
        pool_push(p->stackcache, p->nstackcache);
    p->nstackcache = 0;
}

bool gort__stack_check(const gort_stack_t *s)
{
    return s->guard != GUARD_CANARY || *(volatile uint64_t *)s->lo == CANARY;
}

uintptr_t gort__stack_guard_lo(const gort_stack_t *s) { return s->lo - GORT_PAGE_SIZE; }

bool gort__stack_carve(gort_stack_t *s, size_t n, void **out)
{
    if (s->hi % GORT_PAGE_SIZE != 0 || n == 0 || n >= GORT_PAGE_SIZE)
        return false;
    s->hi -= n;
    *out = (void *)s->hi;
    return true;
}

uintptr_t gort__stack_carved_lo(uintptr_t hi)
{
    return ((hi + GORT_PAGE_SIZE - 1) & ~(uintptr_t)(GORT_PAGE_SIZE - 1)) - stack_size;
}

uint64_t gort__stacks_allocated(void) { return atomic_load_explicit(&nallocated, memory_order_relaxed); }

uint64_t gort__stack_pool_takes(void) { return atomic_load_explicit(&pool_takes, memory_order_relaxed); }

uint64_t gort__stacks_pooled(void)
{
    gort__lock(&pool_lock); /* sysmon's scavenger moves npool (TSan) */
    uint64_t n = npool;
    gort__unlock(&pool_lock);
    return n;
}
