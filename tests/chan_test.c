/*
 * chan_test.c: channels against Go's semantics: hand-off and buffering,
 * FIFO order among blocked senders and among blocked receivers (buffered
 * channels included: a receive from a full channel pulls the first blocked
 * sender's value into the tail), close and drain, nil channels, zero-size
 * and large elements, the non-blocking forms, a daisy chain of 10,000
 * goroutines, the concurrent prime sieve, and many producers and
 * consumers with every value received exactly once.
 *
 * Ordering tests do not sleep: they wait until the runtime shows the
 * goroutine queued on the channel (waiters(), reading the queue under the
 * channel lock) before starting the next one.
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "test.h"

/* Goroutines queued on c (sendq or recvq), counted under its lock. */
static int waiters(gort_chan *c, bool senders)
{
    int n = 0;
    gort__lock(&c->lock);
    for (gort_sudog_t *s = atomic_load(senders ? &c->sendq.first : &c->recvq.first); s; s = s->next)
        n++;
    gort__unlock(&c->lock);
    return n;
}

static void wait_waiters(gort_chan *c, bool senders, int n)
{
    while (waiters(c, senders) < n)
        gort_yield();
}

static void with_procs(int procs, void (*fn)(void *), void *arg)
{
    int old = gort_maxprocs(procs);
    GT_RUN(fn, arg);
    gort_maxprocs(old);
}

/* ---- basic hand-off ---- */

static gort_chan *bc;
static long bsum;
static void basic_sender(void *a)
{
    (void)a;
    for (long i = 1; i <= 1000; i++)
        gort_chan_send(bc, &i);
    gort_chan_close(bc);
}

static int basic_bad;
static void basic_body(void *a)
{
    size_t cap = (size_t)(intptr_t)a;
    bc = gort_chan_make(sizeof(long), cap);
    basic_bad = gort_chan_cap(bc) != cap;
    bsum = 0;
    gort_go(basic_sender, NULL);
    long v, expect = 1;
    while (gort_chan_recv(bc, &v)) {
        basic_bad += v != expect++;
        bsum += v;
    }
    basic_bad += v != 0;
    gort_chan_free(bc);
}

static void test_basic(void)
{
    size_t caps[] = {0, 1, 7, 1024};
    for (int p = 1; p <= 2; p++)
        for (size_t i = 0; i < 4; i++) {
            with_procs(p, basic_body, (void *)(intptr_t)caps[i]);
            CU_ASSERT_EQUAL(basic_bad, 0);
            CU_ASSERT_EQUAL(bsum, 1000 * 1001 / 2);
        }
}

/* ---- FIFO among blocked senders ---- */

#define NQ 50
static gort_chan *fc;
static void fifo_sender(void *a)
{
    long v = (long)(intptr_t)a;
    gort_chan_send(fc, &v);
}

static int fifo_bad, fifo_len_bad;
static void fifo_send_body(void *a)
{
    size_t cap = (size_t)(intptr_t)a;
    fc = gort_chan_make(sizeof(long), cap);
    fifo_bad = fifo_len_bad = 0;
    for (long i = 0; i < (long)cap; i++)
        gort_chan_send(fc, &i);
    for (long i = (long)cap; i < NQ; i++) {
        gort_go(fifo_sender, (void *)(intptr_t)i);
        wait_waiters(fc, true, (int)(i - (long)cap + 1));
    }
    fifo_len_bad += gort_chan_len(fc) != cap;
    for (long i = 0; i < NQ; i++) {
        long v = -1;
        CU_ASSERT_TRUE(gort_chan_recv(fc, &v));
        fifo_bad += v != i;
        /* A waiting sender refills the slot: the buffer stays full. */
        if (i + (long)cap < NQ)
            fifo_len_bad += gort_chan_len(fc) != cap;
    }
    fifo_len_bad += gort_chan_len(fc) != 0;
    gort_chan_free(fc);
}

static void test_fifo_senders(void)
{
    for (int p = 1; p <= 2; p++) {
        with_procs(p, fifo_send_body, (void *)0);
        CU_ASSERT_EQUAL(fifo_bad, 0);
        with_procs(p, fifo_send_body, (void *)5);
        CU_ASSERT_EQUAL(fifo_bad, 0);
        CU_ASSERT_EQUAL(fifo_len_bad, 0);
    }
}

/* ---- FIFO among blocked receivers ---- */

static _Atomic long got[NQ];
static gort_waitgroup fwg;
static void fifo_receiver(void *a)
{
    long i = (long)(intptr_t)a, v = -1;
    gort_chan_recv(fc, &v);
    atomic_store(&got[i], v);
    gort_wg_done(&fwg);
}

static void fifo_recv_body(void *a)
{
    size_t cap = (size_t)(intptr_t)a;
    fc = gort_chan_make(sizeof(long), cap);
    gort_wg_add(&fwg, NQ);
    for (long i = 0; i < NQ; i++) {
        atomic_store(&got[i], -1);
        gort_go(fifo_receiver, (void *)(intptr_t)i);
        wait_waiters(fc, false, (int)i + 1);
    }
    for (long i = 0; i < NQ; i++)
        gort_chan_send(fc, &i);
    gort_wg_wait(&fwg);
    gort_chan_free(fc);
}

static void test_fifo_receivers(void)
{
    for (int p = 1; p <= 2; p++)
        for (int cap = 0; cap <= 3; cap += 3) {
            with_procs(p, fifo_recv_body, (void *)(intptr_t)cap);
            int bad = 0;
            for (long i = 0; i < NQ; i++)
                bad += atomic_load(&got[i]) != i;
            CU_ASSERT_EQUAL(bad, 0);
        }
}

/* ---- close and drain ---- */

static int cd_bad;
static void close_drain_body(void *a)
{
    (void)a;
    cd_bad = 0;
    gort_chan *c = gort_chan_make(sizeof(long), 5);
    for (long i = 10; i < 13; i++)
        gort_chan_send(c, &i);
    gort_chan_close(c);
    cd_bad += gort_chan_len(c) != 3 || gort_chan_cap(c) != 5;
    for (long i = 10; i < 13; i++) {
        long v = 0;
        cd_bad += !gort_chan_recv(c, &v) || v != i;
    }
    for (int k = 0; k < 3; k++) {
        long v = 0xdead;
        cd_bad += gort_chan_recv(c, &v) || v != 0;
        bool ok = true;
        v = 0xdead;
        cd_bad += !gort_chan_tryrecv(c, &v, &ok) || ok || v != 0;
    }
    cd_bad += gort_chan_recv(c, NULL);
    gort_chan_free(c);

    /* Unbuffered: closed before any send. */
    c = gort_chan_make(sizeof(long), 0);
    gort_chan_close(c);
    long v = 7;
    cd_bad += gort_chan_recv(c, &v) || v != 0;
    gort_chan_free(c);
}

static void test_close_drain(void)
{
    GT_RUN(close_drain_body, NULL);
    CU_ASSERT_EQUAL(cd_bad, 0);
}

/* ---- close wakes every blocked receiver ---- */

static _Atomic int cw_false, cw_nonzero;
static void close_waiter(void *a)
{
    (void)a;
    long v = 0x55;
    if (!gort_chan_recv(fc, &v))
        atomic_fetch_add(&cw_false, 1);
    if (v != 0)
        atomic_fetch_add(&cw_nonzero, 1);
    gort_wg_done(&fwg);
}

static void close_wakes_body(void *a)
{
    (void)a;
    fc = gort_chan_make(sizeof(long), (size_t)(intptr_t)a);
    atomic_store(&cw_false, 0);
    atomic_store(&cw_nonzero, 0);
    gort_wg_add(&fwg, 100);
    for (int i = 0; i < 100; i++)
        gort_go(close_waiter, NULL);
    wait_waiters(fc, false, 100);
    gort_chan_close(fc);
    gort_wg_wait(&fwg);
    gort_chan_free(fc);
}

static void test_close_wakes(void)
{
    for (int p = 1; p <= 2; p++) {
        with_procs(p, close_wakes_body, (void *)(intptr_t)(p - 1));
        CU_ASSERT_EQUAL(atomic_load(&cw_false), 100);
        CU_ASSERT_EQUAL(atomic_load(&cw_nonzero), 0);
    }
}

/* ---- nil channels and the non-blocking forms ---- */

static int nb_bad;
static void nb_receiver(void *a)
{
    long v;
    gort_chan_recv(a, &v);
    if (v != 42)
        nb_bad++;
}

static void nonblocking_body(void *a)
{
    (void)a;
    nb_bad = 0;
    long v = 1;
    bool ok = true;
    nb_bad += gort_chan_tryrecv(NULL, &v, &ok);
    nb_bad += gort_chan_trysend(NULL, &v);
    nb_bad += gort_chan_len(NULL) != 0 || gort_chan_cap(NULL) != 0;

    gort_chan *c = gort_chan_make(sizeof(long), 0);
    nb_bad += gort_chan_trysend(c, &v);   /* nobody receives */
    nb_bad += gort_chan_tryrecv(c, &v, &ok); /* nobody sends */
    gort_go(nb_receiver, c);
    wait_waiters(c, false, 1);
    v = 42;
    nb_bad += !gort_chan_trysend(c, &v); /* a receiver waits */
    gort_chan_free(c);

    c = gort_chan_make(sizeof(long), 2);
    nb_bad += !gort_chan_trysend(c, &v) || !gort_chan_trysend(c, &v) || gort_chan_trysend(c, &v);
    v = 0;
    nb_bad += !gort_chan_tryrecv(c, &v, &ok) || !ok || v != 42;
    nb_bad += !gort_chan_tryrecv(c, NULL, &ok) || !ok;
    nb_bad += gort_chan_tryrecv(c, &v, &ok);
    gort_chan_free(c);
}

static void test_nonblocking_and_nil(void)
{
    GT_RUN(nonblocking_body, NULL);
    CU_ASSERT_EQUAL(nb_bad, 0);
}

/* ---- zero-size and large elements ---- */

static gort_chan *zc;
static void zero_sender(void *a)
{
    for (long i = 0; i < (long)(intptr_t)a; i++)
        gort_chan_send(zc, NULL);
    gort_chan_close(zc);
}

typedef struct big {
    long seq;
    char pad[200];
    long check;
} big_t;

static gort_chan *lc;
static void big_sender(void *a)
{
    (void)a;
    for (long i = 0; i < 500; i++) {
        big_t b;
        memset(&b, (int)(i & 0x7f), sizeof b);
        b.seq = i;
        b.check = ~i;
        gort_chan_send(lc, &b);
    }
    gort_chan_close(lc);
}

static int zs_count, zs_bad;
static void elem_sizes_body(void *a)
{
    size_t cap = (size_t)(intptr_t)a;
    zs_bad = 0;
    zc = gort_chan_make(0, cap);
    if (cap) {
        for (size_t i = 0; i < cap; i++)
            zs_bad += !gort_chan_trysend(zc, NULL);
        zs_bad += gort_chan_len(zc) != cap || gort_chan_trysend(zc, NULL);
        for (size_t i = 0; i < cap; i++)
            zs_bad += !gort_chan_recv(zc, NULL);
    }
    gort_go(zero_sender, (void *)1000);
    zs_count = 0;
    char dummy;
    while (gort_chan_recv(zc, &dummy))
        zs_count++;
    gort_chan_free(zc);

    lc = gort_chan_make(sizeof(big_t), cap);
    gort_go(big_sender, NULL);
    big_t b;
    long expect = 0;
    while (gort_chan_recv(lc, &b)) {
        zs_bad += b.seq != expect || b.check != ~expect || b.pad[0] != (char)(expect & 0x7f) ||
                  b.pad[199] != (char)(expect & 0x7f);
        expect++;
    }
    zs_bad += expect != 500;
    gort_chan_free(lc);
}

static void test_elem_sizes(void)
{
    for (int cap = 0; cap <= 4; cap += 4) {
        GT_RUN(elem_sizes_body, (void *)(intptr_t)cap);
        CU_ASSERT_EQUAL(zs_count, 1000);
        CU_ASSERT_EQUAL(zs_bad, 0);
    }
}

/* ---- daisy chain: 10,000 goroutines each pass value+1 to the left ---- */

typedef struct link {
    gort_chan *left, *right;
} link_t;

static void whisper(void *a)
{
    link_t *l = a;
    long v;
    gort_chan_recv(l->right, &v);
    v++;
    gort_chan_send(l->left, &v);
}

static void first_whisper(void *a)
{
    long one = 1;
    gort_chan_send(a, &one);
}

#if defined(GORT_TSAN)
#define CHAIN 4000 /* TSan counts each goroutine's fiber as a thread: at most 8,128 live */
#else
#define CHAIN 10000
#endif
static long chain_result;
static void chain_body(void *a)
{
    int settle_base = gort_numgoroutine(); /* abandoned goroutines of earlier tests stay */
    (void)a;
    link_t *links = malloc(CHAIN * sizeof *links);
    gort_chan **chans = malloc((CHAIN + 1) * sizeof *chans);
    for (int i = 0; i <= CHAIN; i++)
        chans[i] = gort_chan_make(sizeof(long), 0);
    for (int i = 0; i < CHAIN; i++) {
        links[i].left = chans[i];
        links[i].right = chans[i + 1];
        gort_go(whisper, &links[i]);
    }
    gort_go(first_whisper, chans[CHAIN]);
    gort_chan_recv(chans[0], &chain_result);
    gt_settle_goroutines(settle_base, 5000);
    for (int i = 0; i <= CHAIN; i++)
        gort_chan_free(chans[i]);
    free(chans);
    free(links);
}

static void test_daisy_chain(void)
{
    for (int p = 1; p <= 2; p++) {
        chain_result = 0;
        with_procs(p, chain_body, NULL);
        CU_ASSERT_EQUAL(chain_result, CHAIN + 1);
    }
}

/* ---- the concurrent prime sieve, first 1000 primes ---- */

typedef struct sieve_filter {
    gort_chan *in, *out;
    long p;
} sieve_filter_t;

static gort_chan *sieve_done;
static void sieve_generate(void *a)
{
    gort_chan *out = a;
    for (long i = 2;; i++) {
        gort_case cs[2] = {{out, GORT_SEND, &i, false}, {sieve_done, GORT_RECV, NULL, false}};
        if (gort_select(cs, 2, true) == 1)
            break;
    }
    gort_chan_close(out);
}

static void sieve_filter(void *a)
{
    sieve_filter_t *f = a;
    long v;
    while (gort_chan_recv(f->in, &v))
        if (v % f->p != 0)
            gort_chan_send(f->out, &v);
    gort_chan_close(f->out);
}

#define NPRIMES 1000
static long sieve_primes[NPRIMES];
static void sieve_body(void *a)
{
    int settle_base = gort_numgoroutine(); /* abandoned goroutines of earlier tests stay */
    (void)a;
    sieve_filter_t *fs = malloc(NPRIMES * sizeof *fs);
    sieve_done = gort_chan_make(0, 0);
    gort_chan *first = gort_chan_make(sizeof(long), 0), *ch = first;
    gort_go(sieve_generate, ch);
    for (int i = 0; i < NPRIMES; i++) {
        gort_chan_recv(ch, &sieve_primes[i]);
        fs[i].in = ch;
        fs[i].out = gort_chan_make(sizeof(long), 0);
        fs[i].p = sieve_primes[i];
        gort_go(sieve_filter, &fs[i]);
        ch = fs[i].out;
    }
    /* Shut the chain down: the generator stops and closes, each filter
     * closes its output when its input closes, we drain the end. */
    gort_chan_close(sieve_done);
    while (gort_chan_recv(ch, NULL)) {
    }
    gt_settle_goroutines(settle_base, 5000);
    gort_chan_free(first);
    for (int i = 0; i < NPRIMES; i++)
        gort_chan_free(fs[i].out);
    gort_chan_free(sieve_done);
    free(fs);
}

static void test_sieve(void)
{
    /* The reference: a plain sieve of Eratosthenes. */
    static char composite[8000];
    long want[NPRIMES];
    int k = 0;
    for (long i = 2; k < NPRIMES; i++) {
        if (composite[i])
            continue;
        want[k++] = i;
        for (long j = i * i; j < 8000; j += i)
            composite[j] = 1;
    }
    for (int p = 1; p <= 2; p++) {
        memset(sieve_primes, 0, sizeof sieve_primes);
        with_procs(p, sieve_body, NULL);
        CU_ASSERT_EQUAL(memcmp(sieve_primes, want, sizeof want), 0);
        CU_ASSERT_EQUAL(sieve_primes[NPRIMES - 1], 7919);
    }
}

/* ---- many producers, many consumers: every value exactly once ---- */

#define MP_PROD 8
#define MP_CONS 8
#define MP_PER 5000
static gort_chan *mpc;
static _Atomic uint8_t mp_seen[MP_PROD * MP_PER];
static _Atomic long long mp_sum;
static gort_waitgroup mp_pwg, mp_cwg;

static void mp_producer(void *a)
{
    long base = (long)(intptr_t)a * MP_PER;
    for (long i = 0; i < MP_PER; i++) {
        long v = base + i;
        gort_chan_send(mpc, &v);
    }
    gort_wg_done(&mp_pwg);
}

static void mp_consumer(void *a)
{
    (void)a;
    long v;
    long long s = 0;
    while (gort_chan_recv(mpc, &v)) {
        atomic_fetch_add_explicit(&mp_seen[v], 1, memory_order_relaxed);
        s += v;
    }
    atomic_fetch_add(&mp_sum, s);
    gort_wg_done(&mp_cwg);
}

static void mp_body(void *a)
{
    mpc = gort_chan_make(sizeof(long), (size_t)(intptr_t)a);
    gort_wg_add(&mp_pwg, MP_PROD);
    gort_wg_add(&mp_cwg, MP_CONS);
    for (int i = 0; i < MP_CONS; i++)
        gort_go(mp_consumer, NULL);
    for (int i = 0; i < MP_PROD; i++)
        gort_go(mp_producer, (void *)(intptr_t)i);
    gort_wg_wait(&mp_pwg);
    gort_chan_close(mpc);
    gort_wg_wait(&mp_cwg);
    gort_chan_free(mpc);
}

static void test_many_producers(void)
{
    const long n = (long)MP_PROD * MP_PER;
    size_t caps[] = {0, 1, 64};
    for (int p = 1; p <= 3; p++)
        for (int ci = 0; ci < 3; ci++) {
            memset((void *)mp_seen, 0, sizeof mp_seen);
            atomic_store(&mp_sum, 0);
            with_procs(p, mp_body, (void *)(intptr_t)caps[ci]);
            int bad = 0;
            for (long i = 0; i < n; i++)
                bad += atomic_load(&mp_seen[i]) != 1;
            CU_ASSERT_EQUAL(bad, 0);
            CU_ASSERT_EQUAL(atomic_load(&mp_sum), (long long)n * (n - 1) / 2);
        }
}

/* ---- the block profile's bookkeeping runs without a profiler ---- */

static void blockprof_body(void *a)
{
    (void)a;
    atomic_store(&gort__block_rate, 1);
    gort_go(basic_sender, NULL);
    long v;
    bsum = 0;
    while (gort_chan_recv(bc, &v))
        bsum += v;
    atomic_store(&gort__block_rate, 0);
}

static void test_blockprof_path(void)
{
    bc = gort_chan_make(sizeof(long), 0);
    GT_RUN(blockprof_body, NULL);
    CU_ASSERT_EQUAL(bsum, 1000 * 1001 / 2);
    gort_chan_free(bc);
}

/* ---- one P: plain channel locks, revoked by other threads ---- */

/* With one P the P's owner takes channel locks by plain stores; a thread
 * without a P must revoke that first.  Goroutines send 1..CS_N into a
 * buffered channel and a consumer sums what arrives, while a foreign
 * thread (no P) and a goroutine inside gort_syscall_enter/_exit (no P)
 * push negative values with the non-blocking send.  Every value arrives
 * exactly once, the mode was revoked, and gort_maxprocs(1) brings it back
 * (a procresize), after which the next foreign send revokes it again. */
#define CS_N 200000
#define CS_FOREIGN 3000
static gort_chan *cs_ch;
static _Atomic long cs_sent_neg, cs_sum_neg;
static long cs_sum_pos, cs_count;
static gort_waitgroup cs_wg;
static _Atomic int cs_foreign_done;
static void *cs_foreign(void *a)
{
    (void)a;
    for (long i = 1; i <= CS_FOREIGN;) {
        long v = -i;
        if (gort_chan_trysend(cs_ch, &v)) {
            atomic_fetch_add(&cs_sent_neg, 1);
            atomic_fetch_add(&cs_sum_neg, v);
            i++;
        } else {
            sched_yield();
        }
    }
    atomic_store(&cs_foreign_done, 1);
    return NULL;
}
static void cs_producer(void *a)
{
    (void)a;
    for (long v = 1; v <= CS_N; v++) {
        gort_chan_send(cs_ch, &v);
        if (v % 1000 == 0) {
            /* Without our P for a moment: a non-blocking send in the
             * syscall bracket takes the channel lock as a thread without
             * one. */
            gort_syscall_enter();
            long w = -1000000 - v / 1000;
            if (gort_chan_trysend(cs_ch, &w)) {
                atomic_fetch_add(&cs_sent_neg, 1);
                atomic_fetch_add(&cs_sum_neg, w);
            }
            gort_syscall_exit();
        }
    }
    gort_wg_done(&cs_wg);
}
static void cs_consumer(void *a)
{
    (void)a;
    long v;
    while (gort_chan_recv(cs_ch, &v)) {
        cs_count++;
        if (v > 0)
            cs_sum_pos += v;
        else
            atomic_fetch_sub(&cs_sum_neg, v); /* back to 0 when all arrived */
    }
    gort_wg_done(&cs_wg);
}
static int cs_solo_before, cs_solo_after, cs_solo_back;
static long cs_neg_sent1, cs_neg_sum1;
static uint64_t cs_revokes_first, cs_revokes_second;
static void cs_body(void *a)
{
    (void)a;
    int old = gort_maxprocs(1);
    cs_ch = gort_chan_make(sizeof(long), 64);
    cs_sum_pos = cs_count = 0;
    atomic_store(&cs_sent_neg, 0);
    atomic_store(&cs_sum_neg, 0);
    atomic_store(&cs_foreign_done, 0);
    cs_solo_before = atomic_load(&gort__chansolo);
    uint64_t r0 = atomic_load(&gort__chansolo_revokes);
    gort_wg_add(&cs_wg, 1);
    gort_go(cs_consumer, NULL);
    gort_wg_add(&cs_wg, 1);
    pthread_t th;
    pthread_create(&th, NULL, cs_foreign, NULL);
    cs_producer(NULL); /* we are the producer (and count once in cs_wg) */
    while (!atomic_load(&cs_foreign_done))
        gort_sleep(100000);
    pthread_join(th, NULL);
    gort_chan_close(cs_ch);
    gort_wg_wait(&cs_wg);
    cs_solo_after = atomic_load(&gort__chansolo);
    cs_neg_sent1 = atomic_load(&cs_sent_neg);
    cs_neg_sum1 = atomic_load(&cs_sum_neg);
    cs_revokes_first = atomic_load(&gort__chansolo_revokes) - r0;
    /* Back to one P: solo again, and a foreign send revokes it again. */
    gort_maxprocs(2);
    gort_maxprocs(1);
    cs_solo_back = atomic_load(&gort__chansolo);
    uint64_t r1 = atomic_load(&gort__chansolo_revokes);
    gort_chan *c2 = gort_chan_make(sizeof(long), 4);
    gort_chan *saved = cs_ch;
    cs_ch = c2;
    atomic_store(&cs_foreign_done, 0);
    pthread_create(&th, NULL, cs_foreign, NULL);
    long drained = 0, v;
    while (drained < CS_FOREIGN) {
        if (gort_chan_tryrecv(c2, &v, NULL))
            drained++;
        else
            gort_sleep(20000); /* not a yield loop: under valgrind the foreign
                                  thread then waits for our whole quantum */
    }
    pthread_join(th, NULL);
    cs_revokes_second = atomic_load(&gort__chansolo_revokes) - r1;
    gort_chan_free(c2);
    gort_chan_free(saved);
    gort_maxprocs(old);
}
static void test_solo_locks_revoked(void)
{
    GT_RUN(cs_body, NULL);
    CU_ASSERT_EQUAL(cs_sum_pos, (long)CS_N * (CS_N + 1) / 2);
    CU_ASSERT_EQUAL(cs_count, CS_N + cs_neg_sent1);
    CU_ASSERT_EQUAL(cs_neg_sum1, 0);
    CU_ASSERT_TRUE(cs_neg_sent1 >= CS_FOREIGN);
#ifndef GORT_DEBUG_BUILD /* DEBUG builds never use the mode */
    if (gort__have_membarrier && !gort__settings.nochansolo) {
        CU_ASSERT_EQUAL(cs_solo_before, 1);
        CU_ASSERT_EQUAL(cs_solo_back, 1);
        CU_ASSERT_TRUE(cs_revokes_first >= 1);
        CU_ASSERT_TRUE(cs_revokes_second >= 1);
    }
#endif
    CU_ASSERT_EQUAL(cs_solo_after, 0);
}

/* A channel lock taken the plain way while a thread sleeps on it (one
 * that went to sleep before a procresize back to one P): the unlock must
 * both wake the sleeper and drop the owner's count of plain locks, or the
 * next revoker waits forever.  Staged on a lock of our own. */
#ifndef GORT_DEBUG_BUILD /* no plain channel locks there, and ranks would object */
static int32_t ps_held_after;
static void ps_body(void *a)
{
    (void)a;
    gort_g_t *gp = gort__rt_enter(); /* m->p is ours inside the bracket */
    gort_m_t *m = gort__getm();
    gort_lock_t l;
    gort__lock_init(&l, LR_CHAN);
    int32_t before = atomic_load(&m->p->chanheld);
    /* As gort__chan_lock's plain path leaves it, plus one sleeper. */
    gort__m_locks_add(m, 1);
    GORT_OWNER_INC(&m->p->chanheld);
    atomic_store(&l.key, GORT_LOCK_SOLO);
    atomic_store(&l.sleepers, 1);
    gort__unlock(&l);
    ps_held_after = atomic_load(&m->p->chanheld) - before;
    gort__rt_leave(gp);
}
#endif
static void test_solo_unlock_with_sleeper(void)
{
#ifndef GORT_DEBUG_BUILD
    GT_RUN(ps_body, NULL);
    CU_ASSERT_EQUAL(ps_held_after, 0);
#else
    GT_SKIP("DEBUG builds have no plain channel locks");
#endif
}

/* A receiver that takes a parked sender's value does not push aside the
 * goroutine a send has just handed a value to: at one P, D (given a
 * value) runs before U (whose value was taken), though U was readied
 * later.  Go's rule (the latest readied runs next) gives U then D. */
#define RO_ROUNDS 200
static gort_chan *ro_cd, *ro_cu;
static char ro_log[3];
static int ro_n, ro_du, ro_rounds;
static void ro_down(void *a)
{
    (void)a;
    long v;
    gort_chan_recv(ro_cd, &v);
    ro_log[ro_n++] = 'D';
}
static void ro_up(void *a)
{
    (void)a;
    long v = 7;
    gort_chan_send(ro_cu, &v);
    ro_log[ro_n++] = 'U';
}
static void ro_body(void *a)
{
    (void)a;
    int old = gort_maxprocs(1);
    ro_cd = gort_chan_make(sizeof(long), 0);
    ro_cu = gort_chan_make(sizeof(long), 0);
    for (int r = 0; r < RO_ROUNDS; r++) {
        ro_n = 0;
        gort_go(ro_down, NULL);
        gort_go(ro_up, NULL);
        while (!atomic_load_explicit(&ro_cd->recvq.first, memory_order_acquire) ||
               !atomic_load_explicit(&ro_cu->sendq.first, memory_order_acquire))
            gort_sleep(1000);
        long v = 1;
        gort_chan_send(ro_cd, &v); /* D: runnext */
        gort_chan_recv(ro_cu, &v); /* U: behind it */
        CU_ASSERT_EQUAL(v, 7);
        while (ro_n < 2)
            gort_sleep(1000);
        ro_du += ro_log[0] == 'D' && ro_log[1] == 'U';
        ro_rounds++;
    }
    gort_chan_free(ro_cd);
    gort_chan_free(ro_cu);
    gort_maxprocs(old);
}
static void test_woken_sender_queues(void)
{
    GT_RUN(ro_body, NULL);
    CU_ASSERT_EQUAL(ro_rounds, RO_ROUNDS);
    if (!gort__settings.randomize) /* DEBUG builds shuffle run queues */
        CU_ASSERT_EQUAL(ro_du, RO_ROUNDS);
}

/* A goroutine parked in gort_chan_recv has its on-stack sudog right above
 * the registers its switch saved: nothing of gort_chan_recv's own frame
 * lies between (the park's goroutine side is kept small: runtime/cxx.h).
 * The distance from the saved registers decides which cache lines and
 * sets a parked goroutine's state falls on, and each switch reads them
 * back; 16 more bytes there (the C++ exception state saved before the
 * mcall) cost the sieve a cache miss per switch.  Compiler output, so
 * only for the optimized, unsanitized build the benchmarks use. */
#if defined(__OPTIMIZE__) && !defined(GORT_ASAN) && !defined(GORT_TSAN) && !defined(GORT_DEBUG_BUILD)
#define PARK_FRAME_CHECKED 1
static gort_chan *fr_ch;
static gort_g_t *_Atomic fr_g;
static void fr_receiver(void *a)
{
    (void)a;
    long v;
    atomic_store(&fr_g, gort__getg());
    gort_chan_recv(fr_ch, &v);
}
static long fr_gap = -1;
static void frame_body(void *a)
{
    (void)a;
    fr_ch = gort_chan_make(sizeof(long), 0);
    gort_go(fr_receiver, NULL);
    gort_g_t *gp;
    while ((gp = atomic_load(&fr_g)) == NULL ||
           atomic_load_explicit(&gp->status, memory_order_acquire) != G_WAITING || gp->waiting == NULL)
        gort_yield();
    fr_gap = (long)((uintptr_t)gp->waiting - (uintptr_t)gp->ctx.sp);
    long v = 1;
    gort_chan_send(fr_ch, &v);
    gort_chan_free(fr_ch);
}
#endif
static void test_park_frame(void)
{
#ifdef PARK_FRAME_CHECKED
    GT_RUN(frame_body, NULL);
    /* The switch's own save area is GORT_REGSAVE_FRAME_SIZE bytes. */
    if (fr_gap != GORT_REGSAVE_FRAME_SIZE)
        fprintf(stderr, "\npark_frame: sudog %ld bytes above the saved registers, want %d\n", fr_gap,
                (int)GORT_REGSAVE_FRAME_SIZE);
    CU_ASSERT_EQUAL(fr_gap, GORT_REGSAVE_FRAME_SIZE);
#endif
}

GT_SUITE(chan,
         {"basic", test_basic},
         {"fifo_senders", test_fifo_senders},
         {"fifo_receivers", test_fifo_receivers},
         {"close_drain", test_close_drain},
         {"close_wakes", test_close_wakes},
         {"nonblocking_and_nil", test_nonblocking_and_nil},
         {"elem_sizes", test_elem_sizes},
         {"daisy_chain", test_daisy_chain},
         {"sieve", test_sieve},
         {"many_producers", test_many_producers},
         {"solo_locks_revoked", test_solo_locks_revoked},
         {"solo_unlock_with_sleeper", test_solo_unlock_with_sleeper},
         {"woken_sender_queues", test_woken_sender_queues},
         {"blockprof_path", test_blockprof_path},
         {"park_frame", test_park_frame})
