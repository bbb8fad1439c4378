/*
 * exit.c: the main goroutine's exit, and the main thread's way back out of
 * gort_main.
 *
 * gort_main runs the scheduler on the calling thread (M0) and returns when
 * the main goroutine returns.  The main goroutine may end on any M (call it
 * Mx; Mx may be M0), and M0 may then be anywhere: asleep on its note as an
 * idle M, blocked in the poller, in a system call, or running without a P.
 * The exit is one state machine:
 *
 *   RUNNING   main_done 0.  M0 is an ordinary M.
 *      |      The main goroutine returns: gort__main_exit_on_g stops the
 *      |      world (never restarted), goexit0 frees the goroutine on Mx's
 *      v      P, gort__main_exit_on_g0 releases that P and worldsema.
 *   DONE      main_done 1, set by Mx in one sched.lock section together
 *      |      with M0's wake-up (below).  M0 must leave at its next
 *      |      checkpoint and never sleep again.
 *      v
 *   LEFT      M0 is back in gort_main's frame (retctx) and runs
 *             gort__main_exit_finish; the next gort_main may start.
 *
 * Ordering argument (why the main thread cannot sleep through DONE):
 *
 * 1. M0 sleeps only as a registered idle M: on midle (stopm) or counted in
 *    nmidlelocked (stoplockedm), with m->blocked set, registered under
 *    sched.lock; or as the one M in the poller.
 * 2. Every registration checks main_done in the same sched.lock section
 *    (exit_now_locked), and Mx sets main_done and unregisters and wakes a
 *    registered M0 in one sched.lock section (set_done_and_wake).  The two
 *    sections are ordered by the lock: either Mx's comes first and M0 sees
 *    DONE instead of registering, or M0's comes first and Mx finds it
 *    registered and posts its note.  The note's release/acquire pair makes
 *    main_done visible to M0 when it wakes (gort__main_exit_check).
 * 3. If M0 is not registered, Mx breaks the poller after its section.  M0,
 *    once it owns the poller (sched.lastpoll swapped to 0), checks main_done
 *    before it blocks (gort__main_exit_due in netpoll): either it sees DONE,
 *    or its swap precedes Mx's store of main_done (both seq_cst), and then
 *    Mx's break comes after the previous poller cleared its pending-break
 *    flag, so it is not coalesced away and the eventfd wakes M0.
 * 4. Running without a P, M0 either registers (2), polls (3) or passes a
 *    checkpoint: the return from a system call (exitsyscall0), schedule
 *    without a P, the poller's return.  The world stays stopped, so M0 can
 *    never get a P again.
 * 5. Mx touches nothing that belongs to the next round after its sched.lock
 *    section: its P, worldsema and m->locks are released before it, and the
 *    note is posted inside it.  M0 takes sched.lock on its way out
 *    (gort__main_exit_finish), after Mx's section.
 *
 * The lost wake-up (found, and why there is no timed re-check): up to this
 * file, Mx stored main_done first and only then, in a separate section,
 * looked for M0 on midle and posted its note after unlocking.  M0 could see
 * main_done on its own in between (stopm, a system call's return), return
 * from gort_main, and the caller could start the next gort_main; Mx's late
 * look then found the next round's M0 idle, took it off midle and woke it
 * for nothing.  Woken with nothing to do, M0 went back to sleep without
 * registering (a waker that took it off midle was taken to be on its way),
 * so it slept off midle, blocked false, with no wake-up pending: the
 * round's own exit then found nobody to wake, and gort_main hung.  That was
 * papered over three ways (M0 re-registering when woken for nothing,
 * gort_main unlisting itself, and a 20 ms re-check of main_done); rule 5
 * removes the cross-round wake-up, so M0 is now never woken without a
 * reason, and park_until_p treats such a wake as the bug it would be.
 *
 * Rejected: Go's way, exit(0) when main returns.  gort_main returns to its
 * caller, which may call it again; goroutines the round abandoned stay
 * where they are until the next round restarts the world.
 */
#include "runtime.h"

/* sched.lock held.  The main thread must leave instead of going idle. */
static bool exit_now_locked(gort_m_t *m)
{
    ASSERT_HELD(&gort__sched.lock);
    return m->is_main_thread && atomic_load_explicit(&gort__sched.main_done, memory_order_relaxed);
}

/* True if m is the main thread and the main goroutine has returned: the
 * poller's check before blocking (rule 3).  seq_cst: pairs with the store
 * in set_done_and_wake, as a Dekker pair with the swap of sched.lastpoll
 * against the poller break. */
bool gort__main_exit_due(gort_m_t *m)
{
    return m->is_main_thread && atomic_load_explicit(&gort__sched.main_done, memory_order_seq_cst);
}

/* A checkpoint: if m is the main thread and the main goroutine has
 * returned, go back to gort_main's frame.  m holds no P and is not
 * registered idle. */
void gort__main_exit_check(gort_m_t *m)
{
    if (!m->is_main_thread || !atomic_load_explicit(&gort__sched.main_done, memory_order_acquire))
        return;
    if (m->p)
        gort__throw("main exit holding a P");
    if (m->blocked)
        gort__throw("main exit while registered idle");
    gort__gogo(&m->retctx);
}

/* sched.lock held, from stopm and stoplockedm before they register m idle:
 * if it is the main thread and DONE, leave instead (rule 2). */
void gort__main_exit_check_locked(gort_m_t *m)
{
    if (!exit_now_locked(m))
        return;
    gort__unlock(&gort__sched.lock);
    gort__main_exit_check(m);
    gort__throw("main exit: main_done went back to 0");
}

/* sched.lock held: DONE, and M0 woken if it is registered idle (rule 2).
 * Returns true if the caller must break the poller instead. */
static bool set_done_and_wake(void)
{
    ASSERT_HELD(&gort__sched.lock);
    atomic_store_explicit(&gort__sched.main_done, 1, memory_order_seq_cst);
    gort_m_t *mm = gort__sched.main_m;
    if (!mm->blocked)
        return true; /* not idle: polling, in a system call, or running without a P */
    bool listed = false;
    for (gort_m_t **pm = &gort__sched.midle; *pm; pm = &(*pm)->schedlink) {
        if (*pm == mm) {
            *pm = mm->schedlink;
            gort__sched.nmidle--;
            listed = true;
            break;
        }
    }
    if (!listed)
        gort__sched.nmidlelocked--;
    mm->blocked = false;
    /* Inside the section, so that no wake-up of this round can reach the
     * next one (rule 5). */
    gort__notewakeup(&mm->park);
    return false;
}

/* The main goroutine returned: stop the world and leave it stopped. */
void gort__main_exit_on_g(void)
{
    gort__stop_the_world("main goroutine exited");
    /* DONE waits for gort__main_exit_on_g0: until goexit0 is done with
     * this M's P, the main thread must not return to a caller that may
     * start the next gort_main and resize (free) the Ps. */
}

/* On g0 after goexit0 freed the main goroutine (world stopped by us). */
void gort__main_exit_on_g0(gort_m_t *m)
{
    gort_p_t *pp = m->p;
    m->p = NULL;
    pp->m = NULL; /* stays P_STOP until the next gort_main */
    gort__world_stays_stopped(); /* worldsema and m->locks (rule 5) */
    gort__lock(&gort__sched.lock);
    bool brk = set_done_and_wake();
    gort__unlock(&gort__sched.lock);
    if (m->is_main_thread)
        gort__gogo(&m->retctx);
    if (brk)
        gort__netpoll_break(); /* M0 may be the poller (rule 3) */
    gort__stopm();
}

/* Back in gort_main's frame on the main thread (LEFT). */
void gort__main_exit_finish(gort_m_t *m)
{
    gort__lock(&gort__sched.lock);
    if (m->blocked)
        gort__throw("main thread left gort_main while registered idle");
    for (gort_m_t *i = gort__sched.midle; i; i = i->schedlink)
        if (i == m)
            gort__throw("main thread left gort_main while on midle");
    gort__unlock(&gort__sched.lock);
    /* A goroutine that called gort_lock_thread while running on this
     * thread cannot keep it: the thread goes back to our caller.  Unlock
     * it, so that it runs on any thread when the next gort_main restarts
     * the world; otherwise its wake-up would land on this thread's note
     * in the middle of whatever it does next. */
    if (m->lockedg) {
        gort_g_t *lg = m->lockedg;
        lg->lockedm = NULL;
        lg->lockedext = 0;
        m->lockedg = NULL;
    }
    gort__lock(&gort__sched.lock);
    gort__sched.mcount--;
    gort__sched.main_m = NULL;
    gort__unlock(&gort__sched.lock);
}
