/*
 * lockrank.h: the one ranked list of runtime locks.
 *
 * A thread may acquire a lock only if its rank is greater than (or, for
 * ranks marked MULTI, equal to) the rank of every lock it already holds.
 * Debug builds (make DEBUG=1) check this with a per-M witness in lock.c and
 * throw "lock ordering problem" with both ranks.  Runtime locks are spin-
 * then-futex locks taken on an M; a goroutine holding one cannot be
 * preempted (m->locks > 0) and must not park.
 *
 * Why this order:
 *  - channel locks come first: a send readies a goroutine (run queue, then
 *    sched.lock in wakep) with the channel locked; select locks several
 *    channels in address order (MULTI).
 *  - semaphore roots likewise ready goroutines while held.
 *  - sched.lock guards the idle lists and the global run queue; procresize
 *    holds it while it moves timers between Ps, so timers rank above it.
 *  - allglock is taken under sched.lock by checkdead.
 *  - the free lists are leaves.
 */
#ifndef GORT_LOCKRANK_H
#define GORT_LOCKRANK_H

enum gort_lockrank {
    LR_NONE = 0,
    LR_WORLD = 5,      /* stop-the-world serialization (held across STW) */
    LR_CHAN = 10,      /* gort_chan.lock; MULTI (select, address order) */
    LR_POLLDESC = 15,  /* gort_pd.lock: arms deadline timers (which may
                          wake an M: sched.lock) while held */
    LR_SEMAROOT = 20,  /* sema.c bucket locks */
    LR_PROFBUF = 25,   /* profiler aggregation (never in a signal handler) */
    LR_SCHED = 30,     /* sched.lock */
    LR_ALLM = 35,      /* sched.allm list */
    LR_ALLG = 40,      /* allgs array */
    LR_TIMERS = 45,    /* p->timers_lock */
    LR_GFREE = 50,     /* global free G list */
    LR_STACKSCAV = 52, /* one stack scavenge at a time (takes the pool's) */
    LR_STACKPOOL = 55, /* global stack pool */
    LR_SUDOG = 60,     /* global sudog cache */
    LR_POLLCACHE = 95, /* the poll descriptor table's free list */
    LR_LEAF = 100,     /* anything that takes no other lock */
};

#define GORT_LOCKRANK_MULTI(r) ((r) == LR_CHAN)

#endif
