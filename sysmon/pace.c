/*
 * pace.c: how long sysmon sleeps between rounds.
 *
 * Pure functions of sysmon's pacing state and what its last round saw:
 * no clock, no globals, so that tests/sysmon_test.c can drive them from a
 * table.  sysmon.c reads the clock and the scheduler and does the sleeping.
 *
 * The rhythm is Go's: 20 us rounds; after 50 rounds in which no P was
 * handed off from a wrapped call, each sleep doubles, up to 10 ms.  Only a
 * hand-off restarts the quick rounds (more calls may follow).  A revoke
 * does not: a round costs CPU comparable to its own length, and 50 quick
 * rounds after each revoke took a visible share of the CPU from the
 * goroutine that got the P.  After a sleep with every P idle, the next
 * sleeps keep backing off at once (idle = 50): Go starts 50 quick rounds
 * there, and they slowed the goroutine that woke sysmon whenever they
 * shared its CPU (docs/benchmarks.md, "Numbers behind design choices").
 *
 * Whatever the back-off, a sleep ends:
 *  - when the next slice ends or a timer of a P in a system call is due
 *    (o->due), not a round later, but no sooner than ROUND_MIN_NS;
 *  - an eighth of a slice after a goroutine was seen to start (o->fresh):
 *    its slice counts from when sysmon noticed it, up to a whole sleep
 *    late.  Often it is a short one (a sleeper that ran for microseconds
 *    while a spinner waits to come back): sleeping to its slice's end would
 *    give the spinner that follows it two slices;
 *  - for the schedtrace period.
 *
 * Hurry episodes.  Work waits behind a P whose thread is new to us or not
 * burning CPU (o->hurry): it may have entered a call nobody wrapped, and
 * only the next sample can tell, so sysmon samples every ROUND_MIN_NS
 * instead of a slice later, for at most HURRY_NS.  An episode that revoked
 * nothing (a switch-heavy program: every sample sees a new goroutine and a
 * queue) is followed by COOL_NS without hurrying or being poked, so that
 * sysmon polls at most a tenth of the time; one that revoked leaves sysmon
 * free to be poked again at once.
 *
 * Pokes.  A goroutine queued while every P is busy may cut a sleep short
 * (gort__sysmon_wake), but only outside a hurry episode and its cool-down,
 * for a sleep of at least POKE_MIN_NS, and at most once per POKE_GAP_NS:
 * in a switch-heavy program every ready finds all Ps busy, and letting
 * each wake sysmon cost a futex call per channel hand-off.
 */
#include "sysmon.h"

#define ROUND_MIN_NS (20 * 1000)
#define DELAY_MAX_NS (10 * 1000 * 1000)
#define QUIET_NS (100 * 1000 * 1000)
#define HURRY_NS (1000 * 1000)
#define COOL_NS (10 * 1000 * 1000)
#define POKE_MIN_NS (200 * 1000)
#define POKE_GAP_NS (5 * 1000 * 1000)

void gort__pace_init(sysmon_pace_t *s)
{
    *s = (sysmon_pace_t){.delay = ROUND_MIN_NS};
}

sysmon_nap_t gort__pace_sleep(sysmon_pace_t *s, const sysmon_obs_t *o)
{
    if (s->idle == 0)
        s->delay = ROUND_MIN_NS;
    else if (s->idle > 50)
        s->delay *= 2;
    if (s->delay > DELAY_MAX_NS)
        s->delay = DELAY_MAX_NS;
    if (o->quiet && o->trace_ns <= 0)
        return (sysmon_nap_t){.ns = QUIET_NS, .quiet = true, .pokeable = true};
    int64_t sleep = s->delay;
    if (o->due) {
        int64_t left = o->due - o->now;
        if (left < sleep)
            sleep = left < ROUND_MIN_NS ? ROUND_MIN_NS : left;
    }
    if (o->fresh) {
        int64_t cap = o->slice_ns / 8;
        if (cap < ROUND_MIN_NS)
            cap = ROUND_MIN_NS;
        if (sleep > cap)
            sleep = cap;
    }
    if (s->hurry_on)
        sleep = ROUND_MIN_NS;
    if (o->trace_ns > 0 && sleep > o->trace_ns)
        sleep = o->trace_ns;
    bool pokeable = !s->hurry_on && sleep >= POKE_MIN_NS && o->now >= s->cool_until && o->now >= s->poke_quiet_until;
    return (sysmon_nap_t){.ns = sleep, .quiet = false, .pokeable = pokeable};
}

void gort__pace_woke(sysmon_pace_t *s, const sysmon_nap_t *nap, bool poked, int64_t now)
{
    if (nap->quiet)
        s->idle = 50;
    else if (poked)
        s->poke_quiet_until = now + POKE_GAP_NS;
}

void gort__pace_round(sysmon_pace_t *s, const sysmon_obs_t *o)
{
    if (o->handoffs != 0)
        s->idle = 0;
    else
        s->idle++;
    if (o->revokes != 0 && s->hurry_on) {
        s->hurry_on = false;
        s->cool_until = 0;
    } else if (o->hurry && !s->hurry_on && o->now >= s->cool_until) {
        s->hurry_on = true;
        s->hurry_end = o->now + HURRY_NS;
    } else if (s->hurry_on && (!o->hurry || o->now >= s->hurry_end)) {
        s->hurry_on = false;
        s->cool_until = o->now + COOL_NS;
    }
}
