/*
 * runq_test.c: the local run queue's invariants under contention, driven
 * directly (no scheduler): one owner thread pushes and pops, several
 * stealer threads steal into their own rings; every G must come out exactly
 * once, none may be lost or duplicated, and a ring never reports more than
 * it holds.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"
#include "test.h"

#define NSTEAL 3

typedef struct {
    gort_p_t *owner;
    gort_p_t *mine;
    gort_g_t *gs;
    int ng;
    _Atomic int *seen;
    _Atomic int *done;
    _Atomic long taken;
} rq_ctx;

static gort_p_t *newp(int id)
{
    gort_p_t *p = aligned_alloc(64, (sizeof(gort_p_t) + 63) & ~(size_t)63);
    memset(p, 0, sizeof *p);
    p->id = id;
    atomic_store(&p->status, P_RUNNING);
    return p;
}

static void take(rq_ctx *c, gort_g_t *g)
{
    long idx = g - c->gs;
    atomic_fetch_add(&c->seen[idx], 1);
    atomic_fetch_add(&c->taken, 1);
}

typedef struct { rq_ctx *c; gort_p_t *p; } stealer_arg;

static void *stealer(void *a)
{
    stealer_arg *sa = a;
    rq_ctx *c = sa->c;
    while (!atomic_load(c->done) || !gort__runqempty(c->owner)) {
        gort_g_t *g = gort__runqsteal(sa->p, c->owner, true);
        if (g) {
            take(c, g);
            bool inh;
            gort_g_t *x;
            while ((x = gort__runqget(sa->p, &inh)) != NULL)
                take(c, x);
        }
    }
    return NULL;
}

/* Another P's wake-affine puts: CAS into the owner's empty inbox, and now
 * and then the take-back (the putter found the owner gone idle). */
typedef struct { rq_ctx *c; int from, to; } sender_arg;
static void *inbox_sender(void *a)
{
    sender_arg *sa = a;
    rq_ctx *c = sa->c;
    uint32_t rnd = 777;
    for (int i = sa->from; i < sa->to; i++) {
        gort_g_t *g = &c->gs[i], *nul = NULL;
        while (!atomic_compare_exchange_weak(&c->owner->inbox, &nul, g))
            nul = NULL;
        rnd = rnd * 1103515245 + 12345;
        gort_g_t *x = g;
        if ((rnd >> 16) % 4 == 0 && atomic_compare_exchange_strong(&c->owner->inbox, &x, NULL))
            take(c, g);
    }
    return NULL;
}

static void test_runq_contention(void)
{
    rq_ctx c = {0};
    int nsend = (int)gt_scale_n(20000);
    c.ng = (int)gt_scale_n(200000) + nsend;
    c.gs = calloc((size_t)c.ng, sizeof(gort_g_t));
    c.seen = calloc((size_t)c.ng, sizeof(_Atomic int));
    _Atomic int done = 0;
    c.done = &done;
    c.owner = newp(0);
    pthread_t th[NSTEAL];
    stealer_arg sa[NSTEAL];
    for (int i = 0; i < NSTEAL; i++) {
        sa[i].c = &c;
        sa[i].p = newp(i + 1);
        pthread_create(&th[i], NULL, stealer, &sa[i]);
    }
    pthread_t sth;
    sender_arg snd = {&c, c.ng - nsend, c.ng};
    pthread_create(&sth, NULL, inbox_sender, &snd);
    /* The owner alternates bursts of puts (some to runnext) with gets. */
    int next = 0;
    c.ng -= nsend;
    uint32_t rnd = 12345;
    int overflowed = 0;
    while (next < c.ng) {
        rnd = rnd * 1103515245 + 12345;
        int burst = 1 + (int)((rnd >> 16) % 300);
        for (int i = 0; i < burst && next < c.ng; i++, next++) {
            int32_t before = atomic_load(&gort__sched.runqsize);
            gort__runqput(c.owner, &c.gs[next], (rnd & 0x100) != 0);
            if (atomic_load(&gort__sched.runqsize) != before)
                overflowed = 1;
            CU_ASSERT_FATAL(gort__runqlen(c.owner) <= GORT_RUNQ_SIZE + 2); /* ring, runnext, inbox */
        }
        int gets = (int)((rnd >> 8) % 200);
        bool inh;
        gort_g_t *g;
        for (int i = 0; i < gets && (g = gort__runqget(c.owner, &inh)) != NULL; i++)
            take(&c, g);
    }
    pthread_join(sth, NULL);
    c.ng += nsend;
    atomic_store(&done, 1);
    bool inh;
    gort_g_t *g;
    while ((g = gort__runqget(c.owner, &inh)) != NULL)
        take(&c, g);
    for (int i = 0; i < NSTEAL; i++)
        pthread_join(th[i], NULL);
    /* Overflow went to the global queue: drain it too. */
    gort__lock(&gort__sched.lock);
    for (gort_g_t *x; (x = gort__globrunqpop()) != NULL;)
        take(&c, x);
    CU_ASSERT_EQUAL(atomic_load(&gort__sched.runqsize), 0);
    gort__unlock(&gort__sched.lock);
    CU_ASSERT_EQUAL(atomic_load(&c.taken), c.ng);
    int bad = 0;
    for (int i = 0; i < c.ng; i++)
        if (atomic_load(&c.seen[i]) != 1)
            bad++;
    CU_ASSERT_EQUAL(bad, 0);
    (void)overflowed;
    for (int i = 0; i < NSTEAL; i++)
        free(sa[i].p);
    free(c.owner);
    free(c.gs);
    free((void *)c.seen);
}

/* runnext: the most recent readied G runs next; the previous one is kicked
 * to the tail of the ring; a full ring spills half to the global queue. */
static void test_runq_order(void)
{
    gort_p_t *p = newp(0);
    gort_g_t gs[GORT_RUNQ_SIZE + 8];
    memset(gs, 0, sizeof gs);
    gort__runqput(p, &gs[0], false);
    gort__runqput(p, &gs[1], true);
    gort__runqput(p, &gs[2], true);
    bool inh;
    CU_ASSERT_PTR_EQUAL(gort__runqget(p, &inh), &gs[2]);
    CU_ASSERT_TRUE(inh);
    CU_ASSERT_PTR_EQUAL(gort__runqget(p, &inh), &gs[0]);
    CU_ASSERT_FALSE(inh);
    CU_ASSERT_PTR_EQUAL(gort__runqget(p, &inh), &gs[1]);
    CU_ASSERT_PTR_NULL(gort__runqget(p, &inh));
    CU_ASSERT_TRUE(gort__runqempty(p));

    for (int i = 0; i < GORT_RUNQ_SIZE + 1; i++)
        gort__runqput(p, &gs[i], false);
    /* The ring held 256; the 257th moved 128 + itself globally. */
    CU_ASSERT_EQUAL(gort__runqlen(p), GORT_RUNQ_SIZE / 2);
    CU_ASSERT_EQUAL(atomic_load(&gort__sched.runqsize), GORT_RUNQ_SIZE / 2 + 1);
    /* In order: the ring's oldest half, then the newcomer. */
    gort__lock(&gort__sched.lock);
    int inorder = 0;
    for (int i = 0; i <= GORT_RUNQ_SIZE / 2; i++) {
        gort_g_t *x = gort__globrunqpop();
        inorder += x == &gs[i == GORT_RUNQ_SIZE / 2 ? GORT_RUNQ_SIZE : i];
    }
    CU_ASSERT_EQUAL(inorder, GORT_RUNQ_SIZE / 2 + 1);
    CU_ASSERT_PTR_NULL(gort__globrunqpop());
    CU_ASSERT_EQUAL(atomic_load(&gort__sched.runqsize), 0);
    gort__unlock(&gort__sched.lock);
    CU_ASSERT_PTR_EQUAL(gort__runqget(p, &inh), &gs[GORT_RUNQ_SIZE / 2]);

    /* A steal takes half of what is there. */
    gort_p_t *q = newp(1);
    uint32_t before = gort__runqlen(p);
    gort_g_t *g = gort__runqsteal(q, p, false);
    CU_ASSERT_PTR_NOT_NULL(g);
    CU_ASSERT_EQUAL(gort__runqlen(q) + 1 + gort__runqlen(p), before);
    CU_ASSERT_EQUAL(gort__runqlen(q) + 1, before - before / 2);

    /* The inbox (another P's wake-affine put) runs after runnext and
     * before the ring; our own next put sends it behind the ring. */
    while (gort__runqget(p, &inh) != NULL) {
    }
    atomic_store(&p->inbox, &gs[0]);
    CU_ASSERT_FALSE(gort__runqempty(p));
    CU_ASSERT_PTR_EQUAL(gort__runqget(p, &inh), &gs[0]);
    CU_ASSERT_FALSE(inh);
    gort__runqput(p, &gs[1], false);
    gort__runqput(p, &gs[2], true);
    atomic_store(&p->inbox, &gs[3]);
    CU_ASSERT_PTR_EQUAL(gort__runqget(p, &inh), &gs[2]);
    CU_ASSERT_PTR_EQUAL(gort__runqget(p, &inh), &gs[3]);
    CU_ASSERT_PTR_EQUAL(gort__runqget(p, &inh), &gs[1]);
    gort__runqput(p, &gs[4], false);
    atomic_store(&p->inbox, &gs[5]);
    gort__runqput(p, &gs[6], true);
    CU_ASSERT_PTR_NULL(atomic_load(&p->inbox));
    CU_ASSERT_PTR_EQUAL(gort__runqget(p, &inh), &gs[6]);
    CU_ASSERT_PTR_EQUAL(gort__runqget(p, &inh), &gs[4]);
    CU_ASSERT_PTR_EQUAL(gort__runqget(p, &inh), &gs[5]);
    CU_ASSERT_PTR_NULL(gort__runqget(p, &inh));
    free(p);
    free(q);
}

GT_SUITE(runq, {"order", test_runq_order}, {"contention", test_runq_contention})
