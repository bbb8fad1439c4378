/*
 * time.c: gort_timer, Go's time.Timer and time.Ticker: a runtime timer
 * (timer.c, per-P heaps) whose callback sends gort_nanotime() on a channel
 * of capacity 1 with a non-blocking send, on g0.
 *
 * Semantics are Go 1.23's: after Stop or Reset returns, no value from
 * before the call can be received (the channel's buffered value, if any,
 * is discarded), so a stopped timer never delivers.  Stop returns true if
 * the call stopped a pending timer or discarded an undelivered value.
 * A ticker whose receiver falls behind drops ticks: the callback's send
 * finds the buffer full and gives up, and timer.c schedules the next tick
 * at the first period boundary after now instead of catching up.
 *
 * Stale firings.  The callback may be past the heap (t->running counted)
 * when Stop or Reset runs on another P.  Every arming has a sequence
 * number, t->seq, changed only with the channel locked and the timer out
 * of every heap; the callback compares the number it was fired with
 * against t->seq under the same channel lock, so it either sends before
 * Stop drains (and the value is drained) or sees the new number and drops
 * the value.  timer.c reads t->seq before it takes the timer off the heap,
 * which orders that read before our write (the release of t->pp = NULL,
 * or the heap lock when we delete it ourselves).
 *
 * Lock order: channel lock (LR_CHAN) then the P's timer lock (LR_TIMERS),
 * in Stop/Reset; the callback runs with no timer lock held, so it may
 * take the channel lock.
 */
#include "chan.h"

#include <stdlib.h>

struct gort_timer {
    gort__timer_t t; /* t.seq, t.when, t.period: under c->lock (and the heap's) */
    gort_chan *c;    /* const */
    bool ticker;     /* const */
};

/* On g0 with a P, no lock held (timer.c). */
static void timer_fire(void *arg, uintptr_t seq, int64_t delta)
{
    gort_timer *tm = arg;
    /* Go's sendTime: the deadline plus the time since the heap was
     * checked.  The clock alone would stamp a timer popped first but run
     * late (its M descheduled between the heap and this line) after one
     * popped later by another M, though the heap ran them in order. */
    int64_t now = gort__nanotime() - delta;
    gort__chan_lock(&tm->c->lock);
    if (seq != atomic_load_explicit(&tm->t.seq, memory_order_relaxed)) {
        gort__unlock(&tm->c->lock);
        return;
    }
    (void)gort__chan_trysend_locked(tm->c, &now); /* unlocks; full: dropped */
}

static gort_timer *timer_make(int64_t ns, bool ticker)
{
    gort_timer *tm = calloc(1, sizeof *tm);
    if (!tm)
        gort__throw("out of memory allocating a timer");
    tm->c = gort_chan_make(sizeof(int64_t), 1);
    tm->ticker = ticker;
    tm->t.f = timer_fire;
    tm->t.arg = tm;
    tm->t.idx = -1;
    atomic_store_explicit(&tm->t.seq, 1, memory_order_relaxed);
    if (ns < 0)
        ns = 0;
    tm->t.when = gort__nanotime() + ns;
    tm->t.period = ticker ? ns : 0;
    gort_g_t *gp = gort__rt_enter();
    gort__timer_add(&tm->t);
    gort__rt_leave(gp);
    return tm;
}

gort_timer *gort_timer_new(int64_t ns) { return timer_make(ns, false); }

gort_timer *gort_ticker_new(int64_t period_ns)
{
    if (period_ns <= 0)
        gort__panic_str("non-positive interval for NewTicker");
    return timer_make(period_ns, true);
}

gort_chan *gort_timer_chan(gort_timer *tm)
{
    gort__fork_check();
    return tm->c;
}

/* c->lock held.  Takes the timer out of its heap, invalidates any firing
 * in flight and discards an undelivered value. */
static bool stop_locked(gort_timer *tm)
{
    bool pending = gort__timer_del(&tm->t);
    /* A one-shot firing already off the heap but not yet past its send
     * (running > 0, visible because timer_del's acquire of t->pp == NULL
     * pairs with heap_remove's release) will see the new seq and drop its
     * value: from the caller's view the timer was stopped before it
     * delivered (Go's isSending).  If it did send already, that was to a
     * concurrent receiver, a race the caller made. */
    if (!pending && !tm->ticker && atomic_load_explicit(&tm->t.running, memory_order_acquire) > 0)
        pending = true;
    /* One writer (under c->lock): a plain load and store. */
    atomic_store_explicit(&tm->t.seq, atomic_load_explicit(&tm->t.seq, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    if (gort__chan_drain_locked(tm->c))
        pending = true;
    return pending;
}

bool gort_timer_stop(gort_timer *tm)
{
    gort_g_t *gp = gort__rt_enter();
    gort__chan_lock(&tm->c->lock);
    bool pending = stop_locked(tm);
    gort__unlock(&tm->c->lock);
    gort__rt_leave(gp);
    return pending;
}

bool gort_timer_reset(gort_timer *tm, int64_t ns)
{
    if (tm->ticker && ns <= 0)
        gort__panic_str("non-positive interval for Ticker.Reset");
    if (ns < 0)
        ns = 0;
    gort_g_t *gp = gort__rt_enter();
    gort__chan_lock(&tm->c->lock);
    bool pending = stop_locked(tm);
    gort__timer_unlink(&tm->t);
    tm->t.when = gort__nanotime() + ns;
    tm->t.period = tm->ticker ? ns : 0;
    /* Armed under the channel lock, so a concurrent Stop cannot slip in
     * between and miss it. */
    gort__timer_add(&tm->t);
    gort__unlock(&tm->c->lock);
    gort__rt_leave(gp);
    return pending;
}

void gort_timer_free(gort_timer *tm)
{
    if (!tm)
        return;
    gort_timer_stop(tm);
    /* A callback that fired before the stop may still be running (it will
     * drop its value); wait it out before the memory goes. */
    gort__timer_wait_idle(&tm->t);
    gort_chan_free(tm->c);
    free(tm);
}
