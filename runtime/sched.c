/*
 * sched.c: the scheduler loop, parking and readying goroutines, and the
 * life of idle Ms and Ps.
 *
 * The design is Go's (runtime/proc.go), because it is proven:
 *
 * Worker parking.  We want enough running Ms to use every P, and no more
 * Ms burning CPU looking for work than are useful.  An M "spins" while it
 * holds a P and looks for work (local queue, global queue, timers,
 * stealing).  At most one M is woken per new piece of work: wakep() starts
 * one only when no M is already spinning (nmspinning 0 -> 1 by CAS), and a
 * spinning M that finds work calls wakep() again before running it
 * (resetspinning) so that the search continues while work keeps appearing.
 * The invariant that prevents lost wakeups: a spinning M that gives up
 * first releases its P and decrements nmspinning, then re-checks every run
 * queue; anyone who submits work after that decrement sees nmspinning == 0
 * and an idle P, and wakes an M.
 *
 * Fairness.  runnext lets a goroutine readied by the running one go next
 * and inherit its time slice (no schedtick), so a channel conversation
 * stays on one P.  Every 61st schedtick the global queue is checked first,
 * so goroutines there are not starved by a busy local queue.
 *
 * Timers and idleness.  An M that finds nothing blocks in the netpoller
 * until the earliest timer of any P (only one M at a time: sched.lastpoll
 * == 0 marks it); the others park on their note.  Adding an earlier timer
 * breaks that poll (gort__wake_netpoller).
 */
#include "runtime.h"

#include <stdio.h>
#include <stdlib.h>

gort_sched_t gort__sched = {
    .lock = GORT_LOCK_INIT(LR_SCHED),
    .gflock = GORT_LOCK_INIT(LR_GFREE),
    .worldlock = GORT_LOCK_INIT(LR_WORLD),
    .allm_lock = GORT_LOCK_INIT(LR_ALLM),
    .lastpoll = 1,
};
gort_p_t *gort__allp[GORT_MAX_PROCS];
gort_pmask_t gort__idlepmask, gort__timerpmask;
_Atomic int32_t gort__gomaxprocs;

void gort__badgstatus(gort_g_t *gp, uint32_t from, uint32_t to, uint32_t st)
{
    gort__throw("gstatus_move: goroutine %llu: bad transition %u -> %u (status %u)",
                (unsigned long long)gp->goid, from, to, st);
}

/* ---- Ps ---- */

void gort__acquirep(gort_p_t *pp)
{
    gort_m_t *m = gort__getm();
    if (m->p || pp->m)
        gort__throw("acquirep: already in use (m->p %p, p->m %p)", (void *)m->p, (void *)pp->m);
    uint32_t st = atomic_load_explicit(&pp->status, memory_order_relaxed);
    if (st != P_IDLE)
        gort__throw("acquirep: P %d has status %u", pp->id, st);
    m->p = pp;
    pp->m = m;
    atomic_store_explicit(&pp->status, P_RUNNING, memory_order_release);
    gort__trace(TEV_PSTART, NULL, pp, 0);
}

gort_p_t *gort__releasep(void)
{
    gort_m_t *m = gort__getm();
    gort_p_t *pp = m->p;
    if (!pp || pp->m != m)
        gort__throw("releasep: invalid P state");
    gort__trace(TEV_PSTOP, NULL, pp, 0);
    m->p = NULL;
    pp->m = NULL;
    /* seq_cst: a Dekker pair with affine_put's CAS and re-check. */
    atomic_store_explicit(&pp->status, P_IDLE, memory_order_seq_cst);
    return pp;
}

/* The idle Ps are the set bits of gort__idlepmask (there is no list).
 * A P goes idle under sched.lock; it is taken by clearing its bit with an
 * atomic and-not, under sched.lock (pidleget) or without it (the system
 * call exit: pidleget_nolock), and whoever clears the bit owns the P.
 * npidle counts up before the bit is set and down after it is cleared, so
 * it never counts fewer idle Ps than there are bits (a reader may see one
 * too many for a moment; pidleget then finds nothing, as with a stale
 * read before).  Lowest id first, not the last P to go idle (Go's list):
 * either way a small set of Ps stays in use. */

/* sched.lock held. */
void gort__pidleput(gort_p_t *pp)
{
    ASSERT_HELD(&gort__sched.lock);
    /* Only the inbox may hold a goroutine here: one an affine_put is
     * about to take back. */
    if (atomic_load_explicit(&pp->runqtail, memory_order_relaxed) !=
            atomic_load_explicit(&pp->runqhead, memory_order_relaxed) ||
        atomic_load_explicit(&pp->runnext, memory_order_relaxed) != NULL)
        gort__throw("pidleput: P %d has a non-empty run queue", pp->id);
    atomic_store_explicit(&pp->status, P_IDLE, memory_order_release);
    atomic_fetch_add_explicit(&gort__sched.npidle, 1, memory_order_acq_rel);
    gort__pmask_set(&gort__idlepmask, pp->id); /* seq_cst: see pidleget_nolock */
}

/* Claims an idle P by its bit; NULL if none.  Any thread, any lock. */
gort_p_t *gort__pidleget_nolock(void)
{
    for (int i = 0; i < GORT_PMASK_WORDS; i++) {
        uint64_t v = atomic_load_explicit(&gort__idlepmask.w[i], memory_order_relaxed);
        while (v != 0) {
            uint64_t bit = v & -v;
            uint64_t old = atomic_fetch_and(&gort__idlepmask.w[i], ~bit); /* seq_cst */
            if (old & bit) {
                atomic_fetch_sub_explicit(&gort__sched.npidle, 1, memory_order_acq_rel);
                return gort__allp[i * 64 + __builtin_ctzll(bit)];
            }
            v = old & ~bit;
        }
    }
    return NULL;
}

/* sched.lock held. */
gort_p_t *gort__pidleget(void)
{
    ASSERT_HELD(&gort__sched.lock);
    if (atomic_load_explicit(&gort__sched.npidle, memory_order_relaxed) == 0)
        return NULL;
    return gort__pidleget_nolock();
}

/* ---- Ms ---- */

/* sched.lock held. */
static void mput(gort_m_t *m)
{
    m->schedlink = gort__sched.midle;
    gort__sched.midle = m;
    gort__sched.nmidle++;
    gort__checkdead();
}

/* sched.lock held. */
static gort_m_t *mget(void)
{
    gort_m_t *m = gort__sched.midle;
    if (m) {
        m->blocked = false; /* the waker clears it, under the lock: see blocked */
        gort__sched.midle = m->schedlink;
        gort__sched.nmidle--;
    }
    return m;
}

/* m is registered idle (on midle, or counted in nmidlelocked) and
 * m->blocked is set.  Sleeps until a waker unregisters it and posts its
 * note: startm or startlockedm with a P in nextp (stored under sched.lock
 * as they clear blocked), or, for the main thread, the main goroutine's
 * exit (runtime/exit.c).  Nobody else posts the note, so a wake-up with
 * neither is a bug.  nextp and blocked are read without sched.lock, as Go's
 * stopm does: the waker wrote them before its notewakeup (a release), our
 * notesleep read the note with acquire, and nobody writes them again until
 * we are registered idle once more. */
_Atomic uint64_t gort__m_parks;
static void park_until_p(gort_m_t *m)
{
    atomic_fetch_add_explicit(&gort__m_parks, 1, memory_order_relaxed);
    gort__notesleep(&m->park);
    gort__noteclear(&m->park);
    gort__main_exit_check(m);
    gort_p_t *pp = m->nextp;
    m->nextp = NULL;
    if (!pp)
        gort__throw("park: M woken without a P");
    gort__acquirep(pp);
}

/* Parks the current M until startm hands it a P. */
void gort__stopm(void)
{
    gort_m_t *m = gort__getm();
    if (m->p)
        gort__throw("stopm holding p");
    if (m->spinning)
        gort__throw("stopm spinning");
    gort__lock(&gort__sched.lock);
    gort__main_exit_check_locked(m); /* in the registering section: exit.c */
    mput(m);
    m->blocked = true;
    gort__unlock(&gort__sched.lock);
    park_until_p(m);
}

/* sched.lock held.  An idle M, given pp to run, or NULL. */
static gort_m_t *startm_mget(gort_p_t *pp, bool spinning)
{
    gort_m_t *nm = mget();
    if (nm) {
        /* Under the lock, with blocked cleared by mget: a sleeper that
         * wakes early sees both or neither (see stopm). */
        if (nm->spinning)
            gort__throw("startm: m is spinning");
        if (nm->nextp)
            gort__throw("startm: m has p");
        nm->spinning = spinning;
        nm->nextp = pp;
    }
    return nm;
}

/* startm could not get a thread for pp (the system refuses one: EAGAIN).
 * Unless an M has gone idle meanwhile (checked under sched.lock, the lock
 * under which an M makes its last check of the global queue before it
 * parks), pp's goroutines move to the global queue and pp goes idle, so
 * that the next M to free up (one returning from a system call takes an
 * idle P) runs them; the caller goes on, into its blocking call say.
 * Waiting here for an M instead deadlocked once every M was a caller. */
static gort_m_t *startm_nothread(gort_p_t *pp, bool spinning)
{
    gort__lock(&gort__sched.lock);
    gort_m_t *nm = startm_mget(pp, spinning);
    if (!nm) {
        bool inherit;
        for (gort_g_t *gp; (gp = gort__runqget(pp, &inherit)) != NULL;)
            gort__globrunqput(gp);
        if (spinning && atomic_fetch_sub_explicit(&gort__sched.nmspinning, 1, memory_order_acq_rel) <= 0)
            gort__throw("startm: negative nmspinning");
        gort__pidleput(pp);
    }
    gort__unlock(&gort__sched.lock);
    return nm;
}

/* Schedules some M to run pp (or an idle P if pp is NULL).  If spinning,
 * the caller has already incremented nmspinning for the new M. */
void gort__startm(gort_p_t *pp, bool spinning)
{
    gort__lock(&gort__sched.lock);
    if (!pp) {
        pp = gort__pidleget();
        if (!pp) {
            gort__unlock(&gort__sched.lock);
            if (spinning) {
                /* The caller counted a spinning M we will not start. */
                if (atomic_fetch_sub_explicit(&gort__sched.nmspinning, 1, memory_order_acq_rel) <= 0)
                    gort__throw("startm: negative nmspinning");
            }
            return;
        }
    }
    gort_m_t *nm = startm_mget(pp, spinning);
    gort__unlock(&gort__sched.lock);
    gort__hook(sysmon_wake);
    if (!nm) {
        if (gort__newm(pp, spinning, NULL))
            return;
        nm = startm_nothread(pp, spinning);
        if (!nm)
            return;
    }
    gort__notewakeup(&nm->park);
}

/* Tries to add one more spinning M when there are idle Ps. */
void gort__wakep(void)
{
    if (atomic_load_explicit(&gort__sched.npidle, memory_order_acquire) == 0) {
        /* Work appeared and every P is busy: if sysmon sleeps long, let it
         * look (a P may be stuck in a call nobody wrapped). */
        gort__hook(sysmon_wake);
        return;
    }
    int32_t zero = 0;
    if (atomic_load_explicit(&gort__sched.nmspinning, memory_order_acquire) != 0 ||
        !atomic_compare_exchange_strong_explicit(&gort__sched.nmspinning, &zero, 1,
                                                 memory_order_acq_rel, memory_order_relaxed))
        return;
    gort__startm(NULL, true);
}

/* Hands off a P from an M that is blocking (syscall, locked G) or leaving. */
void gort__handoffp(gort_p_t *pp)
{
    if (!gort__runqempty(pp) || atomic_load_explicit(&gort__sched.runqsize, memory_order_acquire) != 0) {
        gort__startm(pp, false);
        return;
    }
    /* No local work: start a spinning M only if nobody is spinning or idle
     * (someone has to look for work). */
    int32_t zero = 0;
    if (atomic_load_explicit(&gort__sched.nmspinning, memory_order_acquire) +
                atomic_load_explicit(&gort__sched.npidle, memory_order_acquire) ==
            0 &&
        atomic_compare_exchange_strong_explicit(&gort__sched.nmspinning, &zero, 1,
                                                memory_order_acq_rel, memory_order_relaxed)) {
        gort__startm(pp, true);
        return;
    }
    gort__lock(&gort__sched.lock);
    if (atomic_load_explicit(&gort__sched.stw_pending, memory_order_acquire)) {
        atomic_store_explicit(&pp->status, P_STOP, memory_order_release);
        if (--gort__sched.stopwait == 0)
            gort__notewakeup(&gort__sched.stopnote);
        gort__unlock(&gort__sched.lock);
        return;
    }
    if (atomic_load_explicit(&gort__sched.runqsize, memory_order_relaxed) != 0) {
        gort__unlock(&gort__sched.lock);
        gort__startm(pp, false);
        return;
    }
    /* The last running P, and nobody waits in the poller for timers: keep
     * an M around to handle them. */
    if (atomic_load_explicit(&gort__sched.npidle, memory_order_relaxed) ==
            atomic_load_explicit(&gort__gomaxprocs, memory_order_relaxed) - 1 &&
        atomic_load_explicit(&gort__sched.lastpoll, memory_order_relaxed) != 0) {
        gort__unlock(&gort__sched.lock);
        gort__startm(pp, false);
        return;
    }
    int64_t when = atomic_load_explicit(&pp->timer0when, memory_order_acquire);
    gort__pidleput(pp);
    gort__unlock(&gort__sched.lock);
    if (when != 0)
        gort__wake_netpoller(when);
}

static void resetspinning(void)
{
    gort_m_t *m = gort__getm();
    if (!m->spinning)
        gort__throw("resetspinning: not a spinning m");
    m->spinning = false;
    if (atomic_fetch_sub_explicit(&gort__sched.nmspinning, 1, memory_order_acq_rel) <= 0)
        gort__throw("resetspinning: negative nmspinning");
    gort__wakep();
}

/* Stop-the-world is pending: give up the P and sleep. */
static void gcstopm(void)
{
    gort_m_t *m = gort__getm();
    if (!atomic_load_explicit(&gort__sched.stw_pending, memory_order_acquire))
        gort__throw("gcstopm: not waiting for gc");
    if (m->spinning) {
        m->spinning = false;
        if (atomic_fetch_sub_explicit(&gort__sched.nmspinning, 1, memory_order_acq_rel) <= 0)
            gort__throw("gcstopm: negative nmspinning");
    }
    gort_p_t *pp = gort__releasep();
    gort__lock(&gort__sched.lock);
    atomic_store_explicit(&pp->status, P_STOP, memory_order_release);
    if (--gort__sched.stopwait == 0)
        gort__notewakeup(&gort__sched.stopnote);
    gort__unlock(&gort__sched.lock);
    gort__stopm();
}

/* ---- locked goroutines ---- */

/* The M's locked G blocked: give the P away and wait for the G. */
void gort__stoplockedm(void)
{
    gort_m_t *m = gort__getm();
    if (!m->lockedg || m->lockedg->lockedm != m)
        gort__throw("stoplockedm: inconsistent locking");
    if (m->p) {
        gort_p_t *pp = gort__releasep();
        gort__handoffp(pp);
    }
    gort__lock(&gort__sched.lock);
    gort__main_exit_check_locked(m); /* in the registering section: exit.c */
    gort__sched.nmidlelocked++;
    m->blocked = true;
    gort__checkdead();
    gort__unlock(&gort__sched.lock);
    park_until_p(m);
}

/* Hands our P to the M that gp is locked to, and parks this M. */
void gort__startlockedm(gort_g_t *gp)
{
    gort_m_t *m = gort__getm();
    gort_m_t *lm = gp->lockedm;
    if (lm == m)
        gort__throw("startlockedm: locked to me");
    if (lm->nextp)
        gort__throw("startlockedm: m has p");
    gort_p_t *pp = gort__releasep();
    gort__lock(&gort__sched.lock);
    gort__sched.nmidlelocked--;
    lm->blocked = false;
    lm->nextp = pp; /* under the lock, with blocked: see stoplockedm */
    gort__unlock(&gort__sched.lock);
    gort__notewakeup(&lm->park);
    gort__stopm();
    gort__schedule();
}

/* ---- finding work ---- */

static bool p_idle_or_stopped(gort_p_t *pp)
{
    uint32_t st = atomic_load_explicit(&pp->status, memory_order_relaxed);
    return st == P_IDLE || st == P_DEAD;
}

/* Victims whose only goroutine sits in runnext (or the inbox) while
 * they run, found in the last pass; looked at again after one wait. */
#define RUNNEXT_CANDIDATES 8
typedef struct runnext_cand {
    gort_p_t *p;
    uint64_t switches; /* the victim's count when found */
} runnext_cand_t;

/* A running victim is likely about to schedule its runnext (a goroutine
 * it just readied): stealing it at once would bounce a channel
 * conversation between threads.  So the last pass notes such victims,
 * sleeps 3us once for all of them (Go sleeps per victim, and a nanosleep
 * that short lasts the timer slack, ~50us: at 64 Ps one pass could sleep
 * for milliseconds while counted as the one spinning M), and takes
 * runnext only from those that did not switch goroutines meanwhile.  A
 * pair talking through runnext puts the same G back there every few
 * hundred ns, so a CAS alone would let idle Ps split the pair across
 * threads.  A sleep, not a spin on the clock: on a loaded machine the
 * victim may need our CPU to make its switch (a 3us spin let the pair
 * move, sched_test's runnext_pair_stays). */
static gort_g_t *steal_runnext(gort_p_t *pp, runnext_cand_t *c, int nc, bool *inherit)
{
    gort__usleep(3);
    for (int i = 0; i < nc; i++) {
        if (atomic_load_explicit(&c[i].p->stats.switches, memory_order_relaxed) != c[i].switches)
            continue;
        gort_g_t *gp = gort__runqsteal(pp, c[i].p, true);
        if (gp) {
            *inherit = false;
            return gp;
        }
    }
    return NULL;
}

/* Steals a G (or runs other Ps' timers).  *pollUntil gets the earliest
 * timer seen; *newwork is set when a timer ran or STW is pending.  Four
 * passes over the Ps, as Go's stealWork, but each skips the idle Ps and
 * (the timer look of the last pass) the Ps without timers by their bits
 * (gort__idlepmask, gort__timerpmask), without touching their lines. */
static gort_g_t *steal_work(gort_p_t *pp, int64_t *now, int64_t *pollUntil, bool *newwork,
                            bool *inherit)
{
    *newwork = false;
    int32_t n = atomic_load_explicit(&gort__gomaxprocs, memory_order_acquire);
    bool ran_timer = false;
    uint64_t probes = 0;
    runnext_cand_t cand[RUNNEXT_CANDIDATES];
    int nc = 0;
    atomic_store_explicit(&pp->stats.steal_attempts,
                          atomic_load_explicit(&pp->stats.steal_attempts, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    gort_g_t *gp = NULL;
    for (int i = 0; i < 4 && !gp; i++) {
        bool last = i == 3;
        uint32_t start = gort__fastrandn((uint32_t)n);
        for (int32_t k = 0; k < n; k++) {
            if (atomic_load_explicit(&gort__sched.stw_pending, memory_order_acquire)) {
                *newwork = true;
                goto out;
            }
            int32_t id = (int32_t)((start + (uint32_t)k) % (uint32_t)n);
            /* Whole idle words at once: 64 Ps per load. */
            if ((id & 63) == 0 && id + 64 <= n &&
                atomic_load_explicit(&gort__idlepmask.w[id / 64], memory_order_relaxed) == ~(uint64_t)0 &&
                (!last || atomic_load_explicit(&gort__timerpmask.w[id / 64], memory_order_relaxed) == 0)) {
                k += 63;
                continue;
            }
            gort_p_t *p2 = gort__allp[id];
            if (p2 == pp)
                continue;
            if (last && gort__pmask_test(&gort__timerpmask, id) &&
                atomic_load_explicit(&p2->timer0when, memory_order_relaxed) != 0) {
                int64_t w;
                bool ran;
                probes++;
                *now = gort__check_timers(p2, *now, &w, &ran);
                if (w != 0 && (*pollUntil == 0 || w < *pollUntil))
                    *pollUntil = w;
                if (ran) {
                    /* A callback may have readied a G onto our queue. */
                    if ((gp = gort__runqget(pp, inherit)) != NULL)
                        goto out;
                    ran_timer = true;
                }
            }
            if (gort__pmask_test(&gort__idlepmask, id))
                continue;
            probes++;
            if ((gp = gort__runqsteal(pp, p2, false)) != NULL) {
                *inherit = false;
                goto out;
            }
            if (last && nc < RUNNEXT_CANDIDATES && gort__runq_has_next(p2)) {
                if (atomic_load_explicit(&p2->status, memory_order_relaxed) == P_RUNNING)
                    cand[nc++] = (runnext_cand_t){p2, atomic_load_explicit(&p2->stats.switches,
                                                                           memory_order_relaxed)};
                else if ((gp = gort__runqsteal(pp, p2, true)) != NULL) {
                    *inherit = false;
                    goto out;
                }
            }
        }
    }
    if (nc > 0)
        gp = steal_runnext(pp, cand, nc, inherit);
out:
    atomic_store_explicit(&pp->stats.steal_probes,
                          atomic_load_explicit(&pp->stats.steal_probes, memory_order_relaxed) + probes,
                          memory_order_relaxed);
    if (!gp)
        *newwork = *newwork || ran_timer;
    return gp;
}

/* Runs the due timers of every other P (an M that may not spin, on its
 * way to idling).  Folds their next whens into *pollUntil; true if a
 * callback ran. */
static bool run_other_timers(gort_p_t *pp, int64_t *now, int64_t *pollUntil)
{
    bool any = false;
    int32_t n = atomic_load_explicit(&gort__gomaxprocs, memory_order_acquire);
    for (int32_t i = 0; i < n; i++) {
        if (!gort__pmask_test(&gort__timerpmask, i))
            continue;
        gort_p_t *p2 = gort__allp[i];
        if (p2 == pp || atomic_load_explicit(&p2->timer0when, memory_order_relaxed) == 0)
            continue;
        int64_t w;
        bool ran;
        *now = gort__check_timers(p2, *now, &w, &ran);
        if (w != 0 && (*pollUntil == 0 || w < *pollUntil))
            *pollUntil = w;
        any |= ran;
    }
    return any;
}

/* findrunnable's search, split along Go's lines.  Each step returns one of
 * these; FIND_RETRY means "start the search again from the top" (the P may
 * have changed, STW may be pending, or new work may be in our queue). */
enum find_step { FIND_NONE, FIND_GOT, FIND_RETRY };

/* What one pass of the search carries from step to step. */
struct find_state {
    int64_t now;       /* last clock reading, 0 if none yet */
    int64_t pollUntil; /* earliest timer seen, 0 if none */
    int32_t procs;     /* gomaxprocs as read at the spin decision */
    bool was_spinning; /* m->spinning when the P was given up */
};

/* Takes the netpoll list's first G to run and queues the rest. */
static gort_g_t *take_poll_list(gort_g_t *list, bool *inherit)
{
    gort_g_t *gp = list;
    gort__injectglist(list->schedlink);
    gp->schedlink = NULL;
    gort__gstatus_move(gp, G_WAITING, G_RUNNABLE);
    gort__trace(TEV_UNBLOCK, gp, gort__getm()->p, 0);
    *inherit = false;
    return gp;
}

/* Run our P's timers, then the cheap looks in Go's order: local queue, the
 * global queue, a non-blocking netpoll.  Only the local queue may pass its
 * time slice on (*inherit); the others clear it. */
static gort_g_t *find_local(gort_p_t *pp, struct find_state *st, bool *inherit)
{
    gort_g_t *gp;
    bool ran;
    st->now = gort__check_timers(pp, 0, &st->pollUntil, &ran);

    if ((gp = gort__runqget(pp, inherit)) != NULL)
        return gp;

    if (atomic_load_explicit(&gort__sched.runqsize, memory_order_acquire) != 0) {
        gort__lock(&gort__sched.lock);
        gp = gort__globrunqget(pp, 0);
        gort__unlock(&gort__sched.lock);
        if (gp) {
            *inherit = false;
            return gp;
        }
    }

    /* With one P there is nobody to steal from: find_poll's blocking poll
     * comes next and returns at once if anything is ready, so a poll here
     * would only add a system call to each trip through idle. */
    if (gort__netpoll_inited() && atomic_load_explicit(&gort__netpoll_waiters, memory_order_relaxed) > 0 &&
        atomic_load_explicit(&gort__gomaxprocs, memory_order_relaxed) > 1 &&
        atomic_load_explicit(&gort__sched.lastpoll, memory_order_relaxed) != 0) {
        gort_g_t *list = gort__netpoll(0);
        if (list)
            return take_poll_list(list, inherit);
    }
    return NULL;
}

/* Spin and steal, but limit spinning Ms to half the busy Ps: beyond that,
 * spinning burns CPU for nothing.  An M that may not spin still runs other
 * Ps' due timers (issue 18: their Ms may be in system calls or waiting for
 * a CPU).  Either way other Ps' timer whens are folded into pollUntil.
 * m->spinning is set here and stays set on FIND_GOT (schedule's
 * resetspinning then wakes another M). */
static enum find_step find_steal(gort_m_t *m, gort_p_t *pp, struct find_state *st, gort_g_t **gpp,
                                 bool *inherit)
{
    st->procs = atomic_load_explicit(&gort__gomaxprocs, memory_order_relaxed);
    if (m->spinning || 2 * atomic_load_explicit(&gort__sched.nmspinning, memory_order_relaxed) <
                           st->procs - atomic_load_explicit(&gort__sched.npidle, memory_order_relaxed)) {
        if (!m->spinning) {
            m->spinning = true;
            atomic_fetch_add_explicit(&gort__sched.nmspinning, 1, memory_order_acq_rel);
        }
        bool newwork;
        int64_t w = 0;
        if ((*gpp = steal_work(pp, &st->now, &w, &newwork, inherit)) != NULL)
            return FIND_GOT;
        if (newwork)
            return FIND_RETRY;
        if (w != 0 && (st->pollUntil == 0 || w < st->pollUntil))
            st->pollUntil = w;
    } else if (run_other_timers(pp, &st->now, &st->pollUntil)) {
        /* Not allowed to spin, but other Ps' timers were due: their
         * goroutines are in our queue now. */
        return FIND_RETRY;
    }
    return FIND_NONE;
}

/* True if find_poll would do nothing: no descriptor waits and no timer
 * anywhere, so no M needs to block in (or break) the poller. */
static bool poll_unneeded(struct find_state *st)
{
    if (!gort__netpoll_inited())
        return true;
    return atomic_load_explicit(&gort__netpoll_waiters, memory_order_relaxed) == 0 && st->pollUntil == 0 &&
           gort__timers_earliest() == 0;
}

/* sched.lock held: takes m, registered idle, off midle again. */
static void munlist(gort_m_t *m)
{
    for (gort_m_t **pm = &gort__sched.midle; *pm; pm = &(*pm)->schedlink) {
        if (*pm == m) {
            *pm = m->schedlink;
            gort__sched.nmidle--;
            m->blocked = false;
            return;
        }
    }
    gort__throw("munlist: m not on midle");
}

/* An M that went idle in find_go_idle's section while spinning: the
 * other half of the Dekker pair with wakep (below), for an M that is
 * already registered idle.  If work turned up, it takes an idle P back
 * and leaves midle, unless a waker has taken it off already (then that
 * waker's P is on its way: park_until_p).  True if it holds a P. */
static bool idle_recheck_registered(gort_m_t *m, struct find_state *st)
{
    for (int32_t i = 0; i < st->procs; i++) {
        gort_p_t *p2 = gort__allp[i];
        if (!gort__pmask_test(&gort__idlepmask, i) && !p_idle_or_stopped(p2) && !gort__runqempty(p2)) {
            gort_p_t *np = NULL;
            gort__lock(&gort__sched.lock);
            if (m->blocked && (np = gort__pidleget()) != NULL)
                munlist(m);
            gort__unlock(&gort__sched.lock);
            if (!np)
                return false;
            gort__acquirep(np);
            m->spinning = true;
            atomic_fetch_add_explicit(&gort__sched.nmspinning, 1, memory_order_acq_rel);
            return true;
        }
    }
    return false;
}

/* Nothing to do: give up the P.  Under sched.lock: STW and the global
 * queue get a last look, and after releasep's seq_cst store of P_IDLE the
 * inbox is read again (an affine_put that saw P_RUNNING and left is seen
 * now).  Then, the Dekker pair with wakep: drop nmspinning first, then
 * re-check every run queue; whoever adds work after the decrement sees an
 * idle P and no spinning M, and wakes one.  On FIND_NONE we hold no P and
 * are not spinning; st->was_spinning says whether we were.
 *
 * When find_poll would have nothing to do (poll_unneeded), the M also
 * registers itself idle in the same section (stopm's half), and parks
 * here: one sched.lock section per M idle/wake cycle on this side instead
 * of two (Go takes both).  It then returns FIND_RETRY holding the P a
 * waker gave it. */
static enum find_step find_go_idle(gort_m_t *m, gort_p_t *pp, struct find_state *st, gort_g_t **gpp,
                                   bool *inherit)
{
    bool park = poll_unneeded(st);
    gort__lock(&gort__sched.lock);
    if (atomic_load_explicit(&gort__sched.stw_pending, memory_order_acquire)) {
        gort__unlock(&gort__sched.lock);
        return FIND_RETRY;
    }
    if (atomic_load_explicit(&gort__sched.runqsize, memory_order_relaxed) != 0) {
        *gpp = gort__globrunqget(pp, 0);
        gort__unlock(&gort__sched.lock);
        *inherit = false;
        return FIND_GOT;
    }
    if (gort__releasep() != pp)
        gort__throw("findrunnable: wrong p");
    {
        /* An affine_put may have landed in our inbox after we last looked
         * and before the P went idle; it then saw P_RUNNING and left.
         * After our seq_cst store of P_IDLE this load sees it. */
        gort_g_t *next = atomic_load_explicit(&pp->inbox, memory_order_seq_cst);
        if (next && (next = gort__inbox_take(pp)) != NULL) {
            gort__acquirep(pp);
            gort__unlock(&gort__sched.lock);
            *inherit = false;
            *gpp = next;
            return FIND_GOT;
        }
    }
    gort__pidleput(pp);
    st->was_spinning = m->spinning;
    if (park) {
        /* m->spinning before mput: from then on a waker may set it
         * (startm_mget).  nmspinning drops after pidleput, as below. */
        if (m->spinning) {
            m->spinning = false;
            if (atomic_fetch_sub_explicit(&gort__sched.nmspinning, 1, memory_order_acq_rel) <= 0)
                gort__throw("findrunnable: negative nmspinning");
        }
        gort__main_exit_check_locked(m); /* in the registering section: exit.c */
        mput(m);
        m->blocked = true;
    }
    gort__unlock(&gort__sched.lock);

    /* Delicate dance: after dropping nmspinning, re-check every run queue;
     * whoever adds work after the decrement will see an idle P and no
     * spinning M, and wake one.  See the comment at the top. */
    if (park) {
        if (st->was_spinning && idle_recheck_registered(m, st))
            return FIND_RETRY;
        park_until_p(m);
        return FIND_RETRY;
    }
    if (m->spinning) {
        m->spinning = false;
        if (atomic_fetch_sub_explicit(&gort__sched.nmspinning, 1, memory_order_acq_rel) <= 0)
            gort__throw("findrunnable: negative nmspinning");
        for (int32_t i = 0; i < st->procs; i++) {
            gort_p_t *p2 = gort__allp[i];
            if (!gort__pmask_test(&gort__idlepmask, i) && !p_idle_or_stopped(p2) && !gort__runqempty(p2)) {
                gort__lock(&gort__sched.lock);
                gort_p_t *np = gort__pidleget();
                gort__unlock(&gort__sched.lock);
                if (np) {
                    gort__acquirep(np);
                    m->spinning = true;
                    atomic_fetch_add_explicit(&gort__sched.nmspinning, 1, memory_order_acq_rel);
                    return FIND_RETRY;
                }
                break;
            }
        }
    }
    return FIND_NONE;
}

/* Without a P: block in the netpoller until the earliest timer of any P,
 * if no other M does (sched.lastpoll == 0 marks the poller).  Otherwise
 * break that poller when our timer is earlier than the one it waits for.
 * FIND_NONE: we hold no P and the caller parks the M. */
static enum find_step find_poll(gort_m_t *m, struct find_state *st, gort_g_t **gpp, bool *inherit)
{
    /* The poll below waits for the earliest timer of every P, not only
     * those we looked at: a P's own M may be in a system call or waiting
     * for a CPU, and a timer may have been added to a P whose M then went
     * idle.  Whoever wakes then runs it (steal_work, run_other_timers). */
    int64_t pollUntil = st->pollUntil;
    {
        int64_t w = gort__timers_earliest();
        if (w != 0 && (pollUntil == 0 || w < pollUntil))
            pollUntil = w;
    }

    /* Block in the poller until the next timer, if we are the one. */
    if (gort__netpoll_inited() &&
        (atomic_load_explicit(&gort__netpoll_waiters, memory_order_relaxed) > 0 || pollUntil != 0) &&
        atomic_exchange_explicit(&gort__sched.lastpoll, 0, memory_order_acq_rel) != 0) {
        atomic_store_explicit(&gort__sched.pollUntil, pollUntil, memory_order_release);
        if (m->p)
            gort__throw("findrunnable: netpoll with p");
        if (m->spinning)
            gort__throw("findrunnable: netpoll with spinning");
        int64_t delay = -1;
        if (pollUntil != 0) {
            int64_t now = st->now;
            if (now == 0)
                now = gort__nanotime();
            delay = pollUntil - now;
            if (delay < 0)
                delay = 0;
        }
        gort_g_t *list = gort__netpoll(delay);
        int64_t now = gort__nanotime();
        atomic_store_explicit(&gort__sched.pollUntil, 0, memory_order_release);
        atomic_store_explicit(&gort__sched.lastpoll, now, memory_order_release);
        gort__main_exit_check(m);
        gort__lock(&gort__sched.lock);
        gort_p_t *np = atomic_load_explicit(&gort__sched.stw_pending, memory_order_acquire)
                           ? NULL
                           : gort__pidleget();
        gort__unlock(&gort__sched.lock);
        if (!np) {
            gort__injectglist(list);
            return FIND_NONE;
        }
        gort__acquirep(np);
        if (list) {
            *gpp = take_poll_list(list, inherit);
            return FIND_GOT;
        }
        if (st->was_spinning) {
            m->spinning = true;
            atomic_fetch_add_explicit(&gort__sched.nmspinning, 1, memory_order_acq_rel);
        }
        return FIND_RETRY;
    } else if (pollUntil != 0 && gort__netpoll_inited()) {
        int64_t ppu = atomic_load_explicit(&gort__sched.pollUntil, memory_order_acquire);
        if (ppu == 0 || ppu > pollUntil)
            gort__netpoll_break();
    }
    return FIND_NONE;
}

/* Finds a runnable goroutine, blocking until there is one.  Returns with a
 * P held.  Each pass runs the steps in Go's order (timers and the cheap
 * looks, steal, give up the P, poll); a step that answers FIND_RETRY starts
 * the next pass, and an M that found nothing parks and then starts one. */
static gort_g_t *findrunnable(bool *inherit)
{
    gort_m_t *m = gort__getm();
    for (;;) {
        gort_p_t *pp = m->p;
        if (atomic_load_explicit(&gort__sched.stw_pending, memory_order_acquire)) {
            gcstopm();
            continue;
        }
        struct find_state st = {0};
        gort_g_t *gp = find_local(pp, &st, inherit);
        if (gp)
            return gp;
        enum find_step step = find_steal(m, pp, &st, &gp, inherit);
        if (step == FIND_NONE)
            step = find_go_idle(m, pp, &st, &gp, inherit);
        if (step == FIND_NONE)
            step = find_poll(m, &st, &gp, inherit);
        if (step == FIND_GOT)
            return gp;
        if (step == FIND_NONE)
            gort__stopm();
    }
}

/* One round of scheduling: find a goroutine and run it.  Never returns. */
void gort__schedule(void)
{
    gort_m_t *m = gort__getm();
    /* One test for both on the common path. */
    if (unlikely(((uint32_t)atomic_load_explicit(&m->locks, memory_order_relaxed) | m->rtcont_n) != 0)) {
        if (atomic_load_explicit(&m->locks, memory_order_relaxed) != 0)
            gort__throw("schedule: holding locks");
        gort__lock_contention_flush();
    }
    if (unlikely(!m->p)) {
        /* sysmon took our P while our goroutine was blocked outside the
         * runtime, and the goroutine has since parked or ended: this M
         * is idle now. */
        atomic_store_explicit(&m->pstate, 0, memory_order_release);
        gort__main_exit_check(m);
        gort__stopm();
    }
    if (m->lockedg) {
        gort__stoplockedm();
        gort_g_t *lg = m->lockedg;
        gort__execute(lg, false);
    }
top:;
    gort_p_t *pp = m->p;
    if (atomic_load_explicit(&gort__sched.stw_pending, memory_order_acquire)) {
        gcstopm();
        goto top;
    }
    bool inherit = false;
    gort_g_t *gp = NULL;
    int64_t next;
    bool ran;
    int64_t now = gort__check_timers(pp, 0, &next, &ran);
    if (unlikely(atomic_load_explicit(&gort__sched.timers_overdue, memory_order_relaxed)) &&
        atomic_exchange_explicit(&gort__sched.timers_overdue, 0, memory_order_acquire)) {
        next = 0;
        ran |= run_other_timers(pp, &now, &next);
    }

    /* Every 61 ticks the global queue goes first, so that it cannot
     * starve.  Not when a timer has just readied a goroutine, though: the
     * global queue's head is often the very goroutine that was preempted
     * to let it run (a spinner), and would take another whole slice
     * first.  That turn is owed to the next schedule, and paid then
     * whatever the timers did. */
    if ((atomic_load_explicit(&pp->schedtick, memory_order_relaxed) % 61 == 0 || pp->globfair_owed) &&
        atomic_load_explicit(&gort__sched.runqsize, memory_order_relaxed) > 0) {
        if (ran && !pp->globfair_owed) {
            pp->globfair_owed = true;
        } else {
            pp->globfair_owed = false;
            gort__lock(&gort__sched.lock);
            gp = gort__globrunqget(pp, 1);
            gort__unlock(&gort__sched.lock);
        }
    }
    uint64_t over;
    if (!gp && unlikely((over = atomic_load_explicit(&pp->slice_over, memory_order_relaxed)) != 0)) {
        /* sysmon: the goroutines taking turns through runnext have used
         * up the slice they shared.  The runnext one goes behind the
         * queue, which runs now, on a fresh slice.  Unless that slice
         * has already ended: sysmon saw the pair on a slice that a
         * goroutine from the queue has since replaced, and the runnext
         * one now is one a timer has just readied, which would wait a
         * whole slice more (preempt/timer_wake_beats_global_turn, under
         * load; sched/stale_slice_over). */
        atomic_store_explicit(&pp->slice_over, 0, memory_order_relaxed);
        gort_g_t *next = atomic_load_explicit(&pp->runnext, memory_order_relaxed);
        if ((uint32_t)over == atomic_load_explicit(&pp->schedtick, memory_order_relaxed) && next &&
            atomic_compare_exchange_strong_explicit(&pp->runnext, &next, NULL, memory_order_acquire,
                                                    memory_order_relaxed))
            gort__runqput(pp, next, false);
    }
    if (!gp)
        gp = gort__runqget(pp, &inherit);
    if (!gp)
        gp = findrunnable(&inherit);

    /* A spinning M found work: make sure someone keeps looking. */
    if (m->spinning)
        resetspinning();

    if (gp->lockedm && gp->lockedm != m) {
        /* Hand our P to the thread gp is locked to; this M waits. */
        gort__startlockedm(gp);
    }
    gort__execute(gp, inherit);
}

/* The switch to gp, once as the common path (slow 0: the compiler drops
 * every test below that reads it) and once as the slow one (hooks.h,
 * gort__switch_slow): the common switch tests one word, not the
 * profiler's, the tracer's and the C++ runtime's flags one by one. */
static inline __attribute__((always_inline, noreturn)) void execute_body(gort_g_t *gp, bool inherit,
                                                                          uint32_t slow)
{
    gort_m_t *m = gort__getm();
    gort_p_t *pp = m->p;
    if ((slow & GORT_SWITCH_GPROF) && gort__gprof_pending(gp))
        gort__hook(gprof_record, gp); /* before its stack can change */
    m->curg = gp;
    gp->m = m;
    uint32_t st = atomic_load_explicit(&gp->status, memory_order_relaxed);
    if (st == G_RUNNABLE)
        gort__gstatus_move(gp, G_RUNNABLE, G_RUNNING);
    else if (st != G_RUNNING)
        gort__throw("execute: goroutine %llu has status %u", (unsigned long long)gp->goid, st);
    atomic_store_explicit(&gp->preempt, false, memory_order_relaxed);
    /* Written only here, by the owner (sysmon and stats only read them):
     * plain increments, not locked read-modify-writes, on every switch. */
    if (!inherit)
        GORT_OWNER_INC(&pp->schedtick);
    GORT_OWNER_INC(&pp->stats.switches);
    gort_p_t *lastp = atomic_load_explicit(&gp->lastp, memory_order_relaxed);
    if (lastp != pp) {
        /* A move between Ps: its G, stack and channels change CPUs (the
         * 2-proc sieve's swings come from these; docs/benchmarks.md). */
        if (lastp)
            GORT_OWNER_INC(&pp->stats.migrations);
        atomic_store_explicit(&gp->lastp, pp, memory_order_relaxed);
    }
    GORT_OWNER_INC(&m->preempt_gen);
    if (slow & GORT_SWITCH_TRACE)
        gort__trace(TEV_START, gp, pp, inherit);
    if (unlikely(gp->stack.lo == 0)) {
        if (gp->stack.hi) /* a G placed at its top by malg (proc.c) */
            gp->stack.lo = gort__stack_carved_lo(gp->stack.hi);
        else if (!gort__stack_alloc(pp, &gp->stack))
            gort__throw_oom(gort__stack_size(), "goroutine stack");
        /* Stack colouring: start each stack's frames 0-31 cache lines
         * below its top, by slot.  Stacks sit at a fixed stride and
         * goroutines running the same code keep their hot frames at the
         * same offset, so without it those lines all fall into the same
         * few cache sets; thousands of goroutines taking turns (the
         * prime sieve) then miss on every switch.  Sieve at 1 proc went
         * from ~0.77 to ~0.65 s (Xeon VM, alternating runs). */
        uintptr_t color = ((gp->stack.hi / GORT_PAGE_SIZE) % 32) * GORT_CACHELINE;
        gort__regsave_init(&gp->ctx, gp->stack.hi - color, gp);
        gort__san_g_created(gp);
    }
    gort__san_g0_to_g(m, gp, slow);
    gort__gogo(&gp->ctx);
}

static __attribute__((noinline, noreturn)) void execute_slow(gort_g_t *gp, bool inherit, uint32_t slow)
{
    execute_body(gp, inherit, slow);
}

void gort__execute(gort_g_t *gp, bool inherit)
{
    /* acquire: see hooks.h */
    uint32_t slow = atomic_load_explicit(&gort__switch_slow, memory_order_acquire);
    if (unlikely(slow))
        execute_slow(gp, inherit, slow);
    execute_body(gp, inherit, 0);
}

/* ---- parking and readying ---- */

/* As execute_body: slow 0 is the common path (hooks.h). */
static inline __attribute__((always_inline, noreturn)) void park_body(gort_g_t *gp, uint32_t slow)
{
    gort_m_t *m = gort__getm();
    gort__san_after_g_to_g0_flags(m, gp, false, slow);
    /* The stamp before the status: whoever sees G_WAITING (acquire) reads
     * this park's waitsince, never the last park's (a dump would print
     * that one's "N minutes"; the dump test ages it by hand once it sees
     * the goroutine waiting).  foreign_park stores in the same order. */
    gp->waitsince = gort__nanotime_stale();
    gort__gstatus_move(gp, G_RUNNING, G_WAITING);
    m->curg = NULL;
    gp->m = NULL;
    /* Checked on g0, off the goroutine's path; the dump then shows the
     * goroutine where it parked. */
    if (unlikely(atomic_load_explicit(&gp->nopreempt, memory_order_relaxed) != 0))
        gort__fatal("blocking call inside gort_preempt_off region");
    if (gp->stack.guard == GUARD_CANARY && !gort__stack_check(&gp->stack))
        gort__throw("goroutine %llu stack overflow", (unsigned long long)gp->goid);
    if (slow & GORT_SWITCH_TRACE)
        gort__trace(TEV_BLOCK, gp, m->p, gp->waitreason);
    bool (*f)(gort_g_t *, void *) = m->waitunlockf;
    if (f) {
        void *lock = m->waitlock;
        m->waitunlockf = NULL;
        m->waitlock = NULL;
        if (!f(gp, lock)) {
            gort__gstatus_move(gp, G_WAITING, G_RUNNABLE);
            gort__trace(TEV_UNBLOCK, gp, m->p, 0);
            gort__execute(gp, true);
        }
    }
    gort__schedule();
}

static __attribute__((noinline, noreturn)) void park_slow(gort_g_t *gp, uint32_t slow) { park_body(gp, slow); }

void gort__park_m(void *arg)
{
    /* relaxed: only TRACE and CXX matter here, and both were set before
     * the world started that runs us (hooks.h) */
    uint32_t slow = atomic_load_explicit(&gort__switch_slow, memory_order_relaxed);
    if (unlikely(slow))
        park_slow(arg, slow);
    park_body(arg, 0);
}

bool gort__unlock_fn(gort_g_t *gp, void *l)
{
    (void)gp;
    gort__unlock(l);
    return true;
}

/* Wake-affine: a goroutine whose last P is running something else goes to
 * that P's inbox (if free) instead of ours, so its G, stack and
 * channels stay in that CPU's cache.  If that P stops running meanwhile,
 * take it back (the idle path rescues what lands in its inbox after its
 * last look: findrunnable).
 *
 * For a channel hand-off (balance), only if that P's queue is shorter
 * than ours; otherwise the goroutine runs here, next, as in Go.  Always
 * going home left stealing (half a queue at a time) as the only way to
 * even out the Ps, and each stolen goroutine cut a pipeline in two more
 * places: the 2-proc sieve made many times more cross-P hand-offs (each a
 * round of cache misses) and its run time varied widely; with the check,
 * a switch costs little more than at one proc.  Ties going home: as few
 * cross-P hand-offs, but slower.  Semaphore wakeups (mutex, cond) keep
 * going home: with the check the mutex bench at 2 procs slowed down.
 * (The measurements: docs/benchmarks.md.) */
void (*gort__affine_hook)(gort_p_t *lp);
bool gort__handoff_always_home;
_Atomic uint64_t gort__affine_takebacks;
static inline uint32_t ringlen(gort_p_t *pp)
{
    return atomic_load_explicit(&pp->runqtail, memory_order_relaxed) -
           atomic_load_explicit(&pp->runqhead, memory_order_relaxed);
}
static bool affine_put(gort_p_t *pp, gort_g_t *gp, bool balance)
{
    gort_p_t *lp = atomic_load_explicit(&gp->lastp, memory_order_relaxed);
    if (!lp || lp == pp || pp->solo || gort__settings.randomize ||
        atomic_load_explicit(&lp->status, memory_order_relaxed) != P_RUNNING)
        return false;
    if (balance && ringlen(lp) >= ringlen(pp) && !gort__handoff_always_home)
        return false;
    if (unlikely(gort__affine_hook != NULL))
        gort__affine_hook(lp);
    /* Only where it would run next: a P with a goroutine in runnext is
     * about to run that one first. */
    if (atomic_load_explicit(&lp->runnext, memory_order_relaxed))
        return false;
    gort_g_t *nul = NULL;
    if (!atomic_compare_exchange_strong_explicit(&lp->inbox, &nul, gp, memory_order_seq_cst,
                                                 memory_order_relaxed))
        return false;
    if (atomic_load_explicit(&lp->status, memory_order_seq_cst) == P_RUNNING)
        return true;
    gort_g_t *x = gp;
    if (!atomic_compare_exchange_strong_explicit(&lp->inbox, &x, NULL, memory_order_acq_rel, memory_order_relaxed))
        return true; /* its P's idle path took it: it runs there */
    atomic_fetch_add_explicit(&gort__affine_takebacks, 1, memory_order_relaxed);
    return false;
}

static inline __attribute__((always_inline)) void ready(gort_g_t *gp, bool next, bool balance)
{
    /* A plain thread's waiter sleeps in the kernel, not on a run queue.
     * foreign is on the line the status transition touches anyway. */
    if (unlikely(gp->foreign)) {
        gort__foreign_ready(gp);
        return;
    }
    gort__gstatus_move(gp, G_WAITING, G_RUNNABLE);
    gort_m_t *m = gort__getm();
    gort__trace(TEV_UNBLOCK, gp, m ? m->p : NULL, 0);
    if (m && m->readybatch) {
        /* Timers that expired together: the earliest runs next, the rest
         * queue behind in deadline order instead of each displacing the
         * previous one from runnext.  And runnext only if nothing waits:
         * the first of a later batch must not jump the queued rest of an
         * earlier one (sched/sleep_order caught that under ASan). */
        next = next && m->readybatch == 1 && m->p && gort__runqempty(m->p);
        m->readybatch++;
    }
    if (m && m->p) {
        /* A channel hand-off may go home even when it would not take our
         * runnext (a woken sender: gort__ready_handoff). */
        if ((next || balance) && !m->readybatch && affine_put(m->p, gp, balance)) {
            gort__wakep();
            return;
        }
        gort__runqput(m->p, gp, next);
    } else {
        gort__lock(&gort__sched.lock);
        gort__globrunqput(gp);
        gort__unlock(&gort__sched.lock);
        /* No P here (a plain thread, an M in a system call): start an M
         * for an idle P ourselves, as injectglist does.  wakep is not
         * enough: a spinning M about to go idle has already looked at the
         * global queue under sched.lock and, once it stops spinning,
         * re-checks only the local queues, so wakep's "someone spins"
         * could strand gp with every P idle (a plain thread's select hung
         * that way under TSan).  Our put and its pidleput are both under
         * sched.lock: either it saw gp, or we see its P idle here. */
        if (atomic_load_explicit(&gort__sched.npidle, memory_order_acquire) > 0) {
            gort__startm(NULL, false);
            return;
        }
    }
    gort__wakep();
}
void gort__ready(gort_g_t *gp, bool next) { ready(gp, next, false); }

/* A sender whose value a receiver has just taken does not push aside the
 * goroutine in our runnext: it goes home (by the rule above) or to the
 * tail of our queue.  runnext then keeps a goroutine that a send has just
 * given work to, and work moves down a pipeline before more enters it.
 * With the sender in runnext (Go's rule) the 2-proc sieve's generator ran
 * ahead of the filters, each extra number filtered for nothing, and the
 * run made far more switches than at one proc; with this rule it makes
 * about as many, and runs faster (docs/benchmarks.md).  One P never meets
 * the case in the sieve (same switch count either way). */
void gort__ready_handoff(gort_g_t *gp, bool sender)
{
    gort_m_t *m = gort__getm();
    gort_p_t *pp = m ? m->p : NULL;
    ready(gp, !(sender && pp && atomic_load_explicit(&pp->runnext, memory_order_relaxed)), true);
}

/* Makes a list of parked goroutines runnable: to the local queue when we
 * have a P (waking Ms for the ones others can steal), else globally. */
void gort__injectglist(gort_g_t *list)
{
    int n = 0;
    for (gort_g_t **link = &list, *g; (g = *link) != NULL;) {
        if (unlikely(g->foreign)) {
            *link = g->schedlink; /* read before the wake: g is its thread's then */
            gort__foreign_ready(g);
            continue;
        }
        gort__gstatus_move(g, G_WAITING, G_RUNNABLE);
        gort__trace(TEV_UNBLOCK, g, gort__getm() ? gort__getm()->p : NULL, 0);
        n++;
        link = &g->schedlink;
    }
    if (!list)
        return;
    gort_m_t *m = gort__getm();
    if (!m || !m->p) {
        gort__lock(&gort__sched.lock);
        gort__globrunqputbatch(list, n);
        gort__unlock(&gort__sched.lock);
        for (int i = 0; i < n && atomic_load_explicit(&gort__sched.npidle, memory_order_relaxed) > 0; i++)
            gort__startm(NULL, false);
        return;
    }
    while (list) {
        gort_g_t *g = list;
        list = g->schedlink;
        gort__runqput(m->p, g, false);
    }
    gort__wakep();
}

/* A goroutine that yielded or was preempted goes to the tail of its P's
 * queue, without sched.lock, unless goroutines wait in the global queue:
 * then it goes there, behind them, as Go's goschedImpl does always.  The
 * local tail alone starves the global queue: when the yielder is the only
 * local goroutine it is taken straight back, and the global queue is then
 * served one goroutine per 61 ticks (the soak saw 96,000 new goroutines
 * wait behind one spinner for minutes).  With the yielder behind them
 * there, the local queue is empty and findrunnable takes a batch of the
 * global one first.  Among local goroutines the tail is round-robin, as
 * the global queue was.  A global queue filled just after the look is
 * served by the 61-tick rule, as any local work would be. */
static void requeue(gort_g_t *gp)
{
    gort_p_t *pp = gort__getm()->p;
    if (likely(pp != NULL) && atomic_load_explicit(&gort__sched.runqsize, memory_order_relaxed) == 0) {
        /* Due timers first, as schedule would run them next: what they
         * ready goes ahead of the yielder (often the spinner preempted to
         * let them run), as it did when the yielder went to the global
         * queue (preempt/timer_wake_beats_global_turn). */
        int64_t next;
        bool ran;
        gort__check_timers(pp, 0, &next, &ran);
        gort__runqput(pp, gp, false);
        /* Alone in the queue, it runs again here next: an M woken to
         * steal it would only move it. */
        if (ringlen(pp) <= 1 && atomic_load_explicit(&pp->runnext, memory_order_relaxed) == NULL)
            return;
    } else {
        gort__lock(&gort__sched.lock);
        gort__globrunqput(gp);
        gort__unlock(&gort__sched.lock);
    }
    gort__wakep();
}

static void gosched_ev(gort_g_t *gp, int ev)
{
    gort_m_t *m = gort__getm();
    gort__san_after_g_to_g0(m, gp, false);
    gort__gstatus_move(gp, G_RUNNING, G_RUNNABLE);
    gort__trace(ev, gp, m->p, 0);
    m->curg = NULL;
    gp->m = NULL;
    if (gp->stack.guard == GUARD_CANARY && !gort__stack_check(&gp->stack))
        gort__throw("goroutine %llu stack overflow", (unsigned long long)gp->goid);
    requeue(gp);
    gort__schedule();
}
static void gosched_m(void *arg) { gosched_ev(arg, TEV_SCHED); }
/* The same for a preempted goroutine (the trace tells them apart). */
static void preempt_m(void *arg) { gosched_ev(arg, TEV_PREEMPT); }

/* Go's goyield: the goroutine goes to the tail of this P's queue, not the
 * global one (no sched.lock).  Only after gort__ready_here put the
 * goroutine that must run first in runnext: with the local queue empty
 * otherwise, the yielder is simply next after it. */
static void goyield_m(void *arg)
{
    gort_g_t *gp = arg;
    gort_m_t *m = gort__getm();
    gort__san_after_g_to_g0(m, gp, false);
    gort__gstatus_move(gp, G_RUNNING, G_RUNNABLE);
    gort__trace(TEV_PREEMPT, gp, m->p, 0); /* as Go's goyield_m */
    m->curg = NULL;
    gp->m = NULL;
    if (gp->stack.guard == GUARD_CANARY && !gort__stack_check(&gp->stack))
        gort__throw("goroutine %llu stack overflow", (unsigned long long)gp->goid);
    gort__runqput(m->p, gp, false);
    gort__schedule();
}

void gort__goyield(void)
{
    gort_m_t *m = gort__getm();
    gort_g_t *gp = m ? m->curg : NULL;
    if (!gp || !m->p)
        return;
    gort__san_g_to_g0(m, gp, false);
    gort__mcall(&gp->ctx, m->g0sp, goyield_m, gp);
    gort__san_after_g0_to_g(gp);
}

/* A starving mutex's hand-off (sema.c): gp runs next on this P, never
 * sent home by wake-affinity; the caller yields to it (gort__goyield). */
void gort__ready_here(gort_g_t *gp)
{
    gort_m_t *m = gort__getm();
    gort__gstatus_move(gp, G_WAITING, G_RUNNABLE);
    gort__trace(TEV_UNBLOCK, gp, m->p, 0);
    gort__runqput(m->p, gp, true);
    gort__wakep();
}

void gort__gosched(void)
{
    gort_m_t *m = gort__getm();
    gort_g_t *gp = m ? m->curg : NULL;
    if (!gp)
        return;
    gort__san_g_to_g0(m, gp, false);
    gort__mcall(&gp->ctx, m->g0sp, gosched_m, gp);
    gort__san_after_g0_to_g(gp);
}

/* Called from the async preemption trampoline with all registers saved on
 * the goroutine's stack. */
void gort__preempt_park(void)
{
    gort_m_t *m = gort__getm();
    gort_g_t *gp = m->curg;
    gort__san_g_to_g0(m, gp, false);
    gort__mcall(&gp->ctx, m->g0sp, preempt_m, gp); /* same requeue as a yield */
    gort__san_after_g0_to_g(gp);
}

void gort__preempt_check(void)
{
    gort_m_t *m = gort__getm();
    gort_g_t *gp = m ? m->curg : NULL;
    if (gp && m->p && atomic_load_explicit(&gp->preempt, memory_order_relaxed) &&
        atomic_load_explicit(&m->locks, memory_order_relaxed) == 0) {
        atomic_fetch_add_explicit(&m->p->stats.preempt_coop, 1, memory_order_relaxed);
        gort__san_g_to_g0(m, gp, false);
        gort__mcall(&gp->ctx, m->g0sp, preempt_m, gp);
        gort__san_after_g0_to_g(gp);
    }
}

/* ---- deadlock detection ---- */

typedef struct { int waiting, running; gort_g_t *bad; } deadscan_t;

static void dead_scan(gort_g_t *gp, void *arg)
{
    deadscan_t *d = arg;
    switch (atomic_load_explicit(&gp->status, memory_order_acquire)) {
    case G_WAITING:
    case G_PREEMPTED:
        d->waiting++;
        break;
    case G_RUNNABLE:
    case G_RUNNING:
    case G_SYSCALL:
        d->running++;
        d->bad = gp;
        break;
    default:
        break;
    }
}

/* Called with sched.lock held when an M goes idle.  If no M is running
 * user code, nothing is runnable and no timer is pending, nothing can ever
 * wake a goroutine again: report the deadlock as Go does. */
void gort__checkdead(void)
{
    ASSERT_HELD(&gort__sched.lock);
    if (gort__settings.nodeadlock || !atomic_load_explicit(&gort__sched.main_running, memory_order_acquire))
        return;
    if (atomic_load_explicit(&gort__sched.main_done, memory_order_acquire))
        return;
    if (atomic_load_explicit(&gort__panicking, memory_order_relaxed))
        return;
    int32_t run = gort__sched.mcount - gort__sched.nmidle - gort__sched.nmidlelocked;
    if (run > 0)
        return;
    if (run < 0)
        gort__throw("checkdead: inconsistent counts mcount=%d nmidle=%d nmidlelocked=%d",
                    gort__sched.mcount, gort__sched.nmidle, gort__sched.nmidlelocked);
    if (atomic_load_explicit(&gort__sched.runqsize, memory_order_relaxed) != 0)
        return;
    deadscan_t d = {0, 0, NULL};
    gort__forallg(dead_scan, &d);
    if (d.running > 0) {
        /* Possible while a G is in transit (readied by a foreign thread);
         * not a deadlock. */
        return;
    }
    if (d.waiting == 0)
        return;
    int32_t n = atomic_load_explicit(&gort__gomaxprocs, memory_order_relaxed);
    for (int32_t i = 0; i < n; i++)
        if (atomic_load_explicit(&gort__allp[i]->timer0when, memory_order_relaxed) != 0)
            return;
    /* Last, as the dearest check: a thread of the program's own may still
     * send, unlock or start a goroutine (foreign.c). */
    if (gort__foreign_threads_live())
        return;
    gort__unlock(&gort__sched.lock);
    gort__fatal("all goroutines are asleep - deadlock!");
}

/* ---- gort_lock_thread ---- */

void gort_lock_thread(void)
{
    gort__fork_check();
    gort_m_t *m = gort__getm();
    gort_g_t *gp = m ? m->curg : NULL;
    if (!gp)
        return;
    if (gp->lockedext == UINT8_MAX)
        gort__fatal("gort_lock_thread nesting overflow");
    gp->lockedext++;
    m->lockedg = gp;
    gp->lockedm = m;
}

void gort_unlock_thread(void)
{
    gort__fork_check();
    gort_m_t *m = gort__getm();
    gort_g_t *gp = m ? m->curg : NULL;
    if (!gp || gp->lockedext == 0)
        return;
    if (--gp->lockedext == 0 && !gort__g_pinned(gp)) { /* a held C lock keeps it */
        m->lockedg = NULL;
        gp->lockedm = NULL;
    }
}
