/*
 * sema.c: runtime semaphores (Go's sync runtime_Semacquire/Semrelease) and
 * the sudog cache.
 *
 * A semaphore is any uint32 counter in user memory.  Acquire decrements it
 * if positive, else parks the goroutine on a queue keyed by the counter's
 * address.  Queues live in SEMTAB_SIZE buckets (hashed by address), each
 * with its own lock, so unrelated semaphores rarely contend.  Within a
 * bucket, each distinct address has one "head" sudog in a treap keyed by
 * address (Go's semaRoot: a binary search tree on the address, a heap on a
 * random priority in ticket, so O(log n) expected for n addresses); the
 * head carries that address's FIFO of waiters (waitlink/waittail).
 * Rejected: a linear list of heads per bucket, which made every queue and
 * dequeue walk all the addresses with waiters in the bucket (thousands of
 * contended mutexes put dozens in each).
 *
 * nwait counts waiters per bucket so that release can skip the lock when
 * nobody waits (the common case: an uncontended WaitGroup or Mutex).  The
 * order that makes this safe: acquire increments nwait before re-checking
 * the counter under the lock; release increments the counter before
 * reading nwait.  One of them sees the other.
 *
 * handoff (Mutex starvation mode): release passes the count directly to the
 * first waiter (ticket = 1), puts it in this P's runnext and yields to the
 * tail of this P's queue (Go's goyield), so a stream of newcomers cannot
 * keep taking the count first and the waiter runs at once.  Rejected: a
 * plain yield, which queued the releaser globally under sched.lock on
 * every hand-off, and readying the waiter by wake-affinity, which could
 * send it to another P's inbox, behind that P's current goroutine.
 */
#include "runtime.h"

#include <stdlib.h>

#define SEMTAB_SIZE 251
#define SUDOG_PCACHE 128

typedef struct semroot {
    gort_lock_t lock;
    gort_sudog_t *head; /* treap of one head sudog per address */
    uint64_t steps;     /* treap nodes visited (tests); under lock */
    _Atomic uint32_t nwait;
} __attribute__((aligned(GORT_CACHELINE))) semroot_t;

static semroot_t semtab[SEMTAB_SIZE];
static pthread_once_t semtab_once = PTHREAD_ONCE_INIT;

static void semtab_init(void)
{
    for (int i = 0; i < SEMTAB_SIZE; i++)
        gort__lock_init(&semtab[i].lock, LR_SEMAROOT);
}

static semroot_t *semroot(_Atomic uint32_t *addr)
{
    return &semtab[((uintptr_t)addr >> 3) % SEMTAB_SIZE];
}

/* ---- sudog cache ---- */

static gort_lock_t sudog_lock = GORT_LOCK_INIT(LR_SUDOG);
static gort_sudog_t *sudog_free;

gort_sudog_t *gort__acquire_sudog(void)
{
    gort_m_t *m = gort__getm();
    gort_p_t *pp = m ? m->p : NULL;
    gort_sudog_t *s = NULL;
    if (pp && pp->sudogcache) {
        s = pp->sudogcache;
        pp->sudogcache = s->next;
        pp->nsudogcache--;
    } else {
        /* No unlocked peek at sudog_free: it is written under the lock. */
        gort__lock(&sudog_lock);
        s = sudog_free;
        if (s)
            sudog_free = s->next;
        gort__unlock(&sudog_lock);
    }
    if (!s) {
        s = malloc(sizeof(*s));
        if (!s)
            gort__throw("out of memory allocating a sudog");
    }
    *s = (gort_sudog_t){0};
    return s;
}

void gort__release_sudog(gort_sudog_t *s)
{
    gort_m_t *m = gort__getm();
    gort_p_t *pp = m ? m->p : NULL;
    if (pp && pp->nsudogcache < SUDOG_PCACHE) {
        s->next = pp->sudogcache;
        pp->sudogcache = s;
        pp->nsudogcache++;
        return;
    }
    gort__lock(&sudog_lock);
    s->next = sudog_free;
    sudog_free = s;
    gort__unlock(&sudog_lock);
}

void gort__sudog_pcache_flush(gort_p_t *pp)
{
    gort__lock(&sudog_lock);
    while (pp->sudogcache) {
        gort_sudog_t *s = pp->sudogcache;
        pp->sudogcache = s->next;
        s->next = sudog_free;
        sudog_free = s;
    }
    pp->nsudogcache = 0;
    gort__unlock(&sudog_lock);
}

/* ---- semaphores ---- */

bool gort__semcanacquire(_Atomic uint32_t *addr)
{
    uint32_t v = atomic_load_explicit(addr, memory_order_relaxed);
    while (v != 0) {
        if (atomic_compare_exchange_weak_explicit(addr, &v, v - 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    }
    return false;
}

/* Treap rotations, root->lock held.  Left: p -> (x a (y b c)) becomes
 * p -> (y (x a b) c); right the mirror image. */
static void replace_child(semroot_t *root, gort_sudog_t *p, gort_sudog_t *old, gort_sudog_t *nw)
{
    nw->parent = p;
    if (!p)
        root->head = nw;
    else if (p->prev == old)
        p->prev = nw;
    else if (p->next == old)
        p->next = nw;
    else
        gort__throw("semaroot: broken treap");
}

/* A node's child on one side: prev is the left one, next the right one. */
static gort_sudog_t **child(gort_sudog_t *n, bool right) { return right ? &n->next : &n->prev; }

/* Rotates x down to the left (its right child y rises) or to the right
 * (its left child rises); y's inner child b moves under x. */
static void rotate(semroot_t *root, gort_sudog_t *x, bool left)
{
    gort_sudog_t *p = x->parent, *y = *child(x, left), *b = *child(y, !left);
    *child(y, !left) = x;
    x->parent = y;
    *child(x, left) = b;
    if (b)
        b->parent = x;
    replace_child(root, p, x, y);
}

/* root->lock held.  n takes t's place in the treap (n also waits on t's
 * address). */
static void substitute(semroot_t *root, gort_sudog_t **pt, gort_sudog_t *t, gort_sudog_t *n)
{
    *pt = n;
    n->ticket = t->ticket;
    n->parent = t->parent;
    n->prev = t->prev;
    n->next = t->next;
    if (n->prev)
        n->prev->parent = n;
    if (n->next)
        n->next->parent = n;
}

/* root->lock held. */
static void queue(semroot_t *root, _Atomic uint32_t *addr, gort_sudog_t *s, bool lifo)
{
    uintptr_t a = (uintptr_t)addr;
    s->addr = a;
    s->next = s->prev = s->parent = NULL;
    s->waitlink = NULL;
    s->waittail = NULL;
    gort_sudog_t *last = NULL, **pt = &root->head;
    for (gort_sudog_t *t; (t = *pt) != NULL;) {
        root->steps++;
        if (t->addr == a) {
            if (lifo) {
                /* s becomes the head: it takes t's place in the treap. */
                substitute(root, pt, t, s);
                s->waitlink = t;
                s->waittail = t->waittail ? t->waittail : t;
                t->parent = t->prev = t->next = NULL;
                t->waittail = NULL;
            } else {
                if (t->waittail)
                    t->waittail->waitlink = s;
                else
                    t->waitlink = s;
                t->waittail = s;
            }
            return;
        }
        last = t;
        pt = a < t->addr ? &t->prev : &t->next;
    }
    /* A new address: a leaf, rotated up by its random priority. */
    s->ticket = gort__fastrand() | 1;
    s->parent = last;
    *pt = s;
    while (s->parent && s->parent->ticket > s->ticket)
        rotate(root, s->parent, s->parent->prev != s);
}

/* root->lock held.  Removes and returns the first waiter for addr. */
static gort_sudog_t *dequeue(semroot_t *root, _Atomic uint32_t *addr)
{
    uintptr_t a = (uintptr_t)addr;
    gort_sudog_t **ps = &root->head, *s;
    for (; (s = *ps) != NULL; ps = a < s->addr ? &s->prev : &s->next) {
        root->steps++;
        if (s->addr == a)
            break;
    }
    if (!s)
        return NULL;
    gort_sudog_t *t = s->waitlink;
    if (t) {
        /* The next waiter on addr takes s's place. */
        substitute(root, ps, s, t);
        t->waittail = t->waitlink ? s->waittail : NULL;
    } else {
        /* Rotate s down to a leaf, keeping the heap order, and cut it. */
        while (s->next || s->prev) {
            bool right = !s->next || (s->prev && s->prev->ticket < s->next->ticket);
            rotate(root, s, !right);
        }
        if (!s->parent)
            root->head = NULL;
        else if (s->parent->prev == s)
            s->parent->prev = NULL;
        else
            s->parent->next = NULL;
    }
    s->parent = s->next = s->prev = s->waitlink = s->waittail = NULL;
    s->ticket = 0;
    return s;
}

uint64_t gort__sema_steps(void)
{
    uint64_t n = 0;
    pthread_once(&semtab_once, semtab_init);
    for (int i = 0; i < SEMTAB_SIZE; i++) {
        gort__lock(&semtab[i].lock);
        n += semtab[i].steps;
        gort__unlock(&semtab[i].lock);
    }
    return n;
}

void gort__semacquire(_Atomic uint32_t *addr, bool lifo, int reason, int profile)
{
    if (gort__semcanacquire(addr))
        return;
    gort_g_t *gp = gort__waiter();
    pthread_once(&semtab_once, semtab_init);
    gort_sudog_t *s = gort__acquire_sudog();
    semroot_t *root = semroot(addr);
    int64_t t0 = 0;
    if ((profile & SEMA_PROF_BLOCK) && atomic_load_explicit(&gort__block_rate, memory_order_relaxed) > 0)
        s->prof |= SEMA_PROF_BLOCK;
    if ((profile & SEMA_PROF_MUTEX) && atomic_load_explicit(&gort__mutex_fraction, memory_order_relaxed) > 0)
        s->prof |= SEMA_PROF_MUTEX;
    if (s->prof)
        t0 = gort__nanotime();
    s->acquiretime = t0;
    for (;;) {
        gort__lock(&root->lock);
        atomic_fetch_add_explicit(&root->nwait, 1, memory_order_seq_cst);
        if (gort__semcanacquire(addr)) {
            atomic_fetch_sub_explicit(&root->nwait, 1, memory_order_relaxed);
            gort__unlock(&root->lock);
            break;
        }
        s->g = gp;
        s->ticket = 0;
        queue(root, addr, s, lifo);
        gort__park_unlock(&root->lock, reason);
        if (s->ticket != 0 || gort__semcanacquire(addr))
            break;
    }
    if ((s->prof & SEMA_PROF_BLOCK) && s->releasetime > 0 && gort__hooks.prof_block)
        gort__hooks.prof_block(t0, s->releasetime, 3);
    gort__release_sudog(s);
}

void gort__semrelease(_Atomic uint32_t *addr, bool handoff, int skip)
{
    (void)skip;
    pthread_once(&semtab_once, semtab_init);
    semroot_t *root = semroot(addr);
    atomic_fetch_add_explicit(addr, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&root->nwait, memory_order_seq_cst) == 0)
        return;
    gort__lock(&root->lock);
    if (atomic_load_explicit(&root->nwait, memory_order_relaxed) == 0) {
        gort__unlock(&root->lock);
        return;
    }
    gort_sudog_t *s = dequeue(root, addr);
    if (s)
        atomic_fetch_sub_explicit(&root->nwait, 1, memory_order_relaxed);
    gort__unlock(&root->lock);
    if (!s)
        return;
    if (s->acquiretime) {
        int64_t now = gort__nanotime();
        s->releasetime = now;
        /* Contention is charged to the unlocker's stack, as Go does. */
        if ((s->prof & SEMA_PROF_MUTEX) && gort__hooks.prof_mutex)
            gort__hooks.prof_mutex(now - s->acquiretime, skip + 1);
    }
    bool handed = handoff && gort__semcanacquire(addr);
    if (handed)
        s->ticket = 1;
    /* s belongs to the waiter from here on: it may run and free it.  A
     * plain thread's waiter runs on its own thread: no P to yield to it. */
    gort_g_t *waiter = s->g;
    gort_m_t *m = gort__getm();
    handed = handed && !waiter->foreign && gort__getg() && m->p;
    if (!handed) {
        gort__ready(waiter, true);
        return;
    }
    /* Direct hand-off: the waiter runs now, on this P, on our slice. */
    gort__ready_here(waiter);
    gort__goyield();
}
