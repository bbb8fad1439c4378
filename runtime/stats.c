/*
 * stats.c: scheduler counters (gort_stats_get) and the GORT_DEBUG=schedtrace
 * line.  Counters live per P (written by the owner only, so nothing is
 * shared on hot paths) or per subsystem, and are summed on read; a read
 * races with the writers and is exact only when the world is quiet.
 */
#include "runtime.h"

#include <stdio.h>
#include <string.h>

_Atomic int64_t gort__block_rate;
_Atomic int32_t gort__mutex_fraction;

static void stats_collect(gort_stats *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < GORT_MAX_PROCS && gort__allp[i]; i++) {
        gort_pstats_t *s = &gort__allp[i]->stats;
        out->goroutines_created += atomic_load_explicit(&s->created, memory_order_relaxed);
        out->context_switches += atomic_load_explicit(&s->switches, memory_order_relaxed);
        out->steals += atomic_load_explicit(&s->steals, memory_order_relaxed);
        out->stolen_goroutines += atomic_load_explicit(&s->stolen, memory_order_relaxed);
        out->global_runq_gets += atomic_load_explicit(&s->globgets, memory_order_relaxed);
        out->timers_fired += atomic_load_explicit(&s->timers_fired, memory_order_relaxed);
        out->preempt_coop += atomic_load_explicit(&s->preempt_coop, memory_order_relaxed);
        out->migrations += atomic_load_explicit(&s->migrations, memory_order_relaxed);
    }
    out->goroutines_live = (uint64_t)gort_numgoroutine();
    gort__lock(&gort__sched.lock); /* both are written under it */
    out->threads = (uint64_t)gort__sched.mcount;
    out->threads_idle = (uint64_t)gort__sched.nmidle;
    gort__unlock(&gort__sched.lock);
    out->spinning_threads = (uint64_t)atomic_load(&gort__sched.nmspinning);
    out->procs = (uint64_t)atomic_load(&gort__gomaxprocs);
    out->idle_procs = (uint64_t)atomic_load(&gort__sched.npidle);
    out->stacks_allocated = gort__stacks_allocated();
    out->stacks_cached = gort__stacks_pooled();
    out->preempt_refused_lock = atomic_load_explicit(&gort__pstat_refused_lock, memory_order_relaxed);
    out->preempt_refused_nopreempt = atomic_load_explicit(&gort__pstat_refused_marked, memory_order_relaxed);
    gort__stw_stats(&out->stw_count, &out->stw_pause_total_ns, &out->stw_pause_max_ns);
    out->lock_contended = gort__lock_contended_total();
    gort__hook(stats_fill, out); /* sysmon's and preemption's counters */
}

/* gort_stats_get is a macro passing the caller's sizeof(gort_stats) (gort.h):
 * a program built against an older header has a shorter struct, one built
 * against a newer header a longer one.  Fields are only appended, so the
 * common prefix means the same on both sides. */
void gort_stats_get_sized(gort_stats *out, size_t size)
{
    gort__fork_check();
    gort_stats all;
    stats_collect(&all);
    size_t n = size < sizeof all ? size : sizeof all;
    memcpy(out, &all, n);
    if (size > n)
        memset((char *)out + n, 0, size - n);
}

/* The function behind the name, for programs built before the macro (the
 * struct then ended at preempt_refused_nopreempt) and function pointers. */
#define STATS_SIZE_BEFORE_MACRO (offsetof(gort_stats, preempt_refused_nopreempt) + sizeof(uint64_t))
void(gort_stats_get)(gort_stats *out)
{
    gort__fork_check();
    gort_stats_get_sized(out, STATS_SIZE_BEFORE_MACRO);
}

/* One line in the spirit of Go's schedtrace:
 * SCHED 12ms: gomaxprocs=2 idleprocs=0 threads=4 spinningthreads=0
 *   idlethreads=1 runqueue=0 [3 0] ...
 * With detail, one line per P, M and goroutine (headers formatted by
 * gort__format_gheader, as in dumps). */
void gort__schedtrace(int fd, bool detail)
{
    static int64_t start;
    int64_t now = gort__nanotime();
    if (!start)
        start = now;
    gort_stats st;
    gort_stats_get(&st);
    /* Written under sched.lock (mput, newm): read there too (TSan at 128
     * Ps, the debug server's schedtrace page beside a stopping M). */
    gort__lock(&gort__sched.lock);
    int32_t mcount = gort__sched.mcount, nmidle = gort__sched.nmidle;
    gort__unlock(&gort__sched.lock);
    char buf[2048];
    int32_t n = atomic_load(&gort__gomaxprocs);
    int off = snprintf(buf, sizeof buf,
                       "SCHED %lldms: gomaxprocs=%d idleprocs=%d threads=%d spinningthreads=%d "
                       "idlethreads=%d runqueue=%d goroutines=%llu steals=%llu migrations=%llu "
                       "preempt=%llu/%llu refused_lock=%llu refused_nopreempt=%llu handoffs=%llu "
                       "unwrapped=%llu [",
                       (long long)((now - start) / 1000000), n, atomic_load(&gort__sched.npidle),
                       mcount, atomic_load(&gort__sched.nmspinning), nmidle,
                       atomic_load(&gort__sched.runqsize), (unsigned long long)st.goroutines_live,
                       (unsigned long long)st.steals, (unsigned long long)st.migrations,
                       (unsigned long long)st.preempt_done,
                       (unsigned long long)st.preempt_requested, (unsigned long long)st.preempt_refused_lock,
                       (unsigned long long)st.preempt_refused_nopreempt, (unsigned long long)st.handoffs,
                       (unsigned long long)st.unwrapped_blocks);
    for (int32_t i = 0; i < n && off < (int)sizeof buf - 16; i++)
        off += snprintf(buf + off, sizeof buf - (size_t)off, "%s%u", i ? " " : "",
                        gort__runqlen(gort__allp[i]));
    if (off < (int)sizeof buf - 2)
        off += snprintf(buf + off, sizeof buf - (size_t)off, "]");
    if (gort__lockstat_on)
        off = gort__lockstat_format(buf, off, (int)sizeof buf - 2);
    if (off > (int)sizeof buf - 2)
        off = (int)sizeof buf - 2;
    buf[off++] = '\n';
    buf[off] = 0;
    gort__write_str(fd, buf);
    if (!detail)
        return;
    for (int32_t i = 0; i < n; i++) {
        gort_p_t *pp = gort__allp[i];
        gort_m_t *mp = pp->m;
        snprintf(buf, sizeof buf, "  P%d: status=%u schedtick=%u syscalltick=%u m=%lld runqsize=%u timers=%d\n",
                 i, atomic_load(&pp->status), atomic_load(&pp->schedtick), atomic_load(&pp->syscalltick),
                 mp ? (long long)mp->id : -1LL, gort__runqlen(pp), pp->ntimers);
        gort__write_str(fd, buf);
    }
    gort__lock(&gort__sched.allm_lock);
    for (gort_m_t *mp = gort__sched.allm; mp; mp = mp->alllink) {
        gort_g_t *cg = mp->curg;
        snprintf(buf, sizeof buf, "  M%llu: p=%d curg=%llu spinning=%d blocked=%d locks=%d lockedg=%llu\n",
                 (unsigned long long)mp->id, mp->p ? mp->p->id : -1,
                 cg ? (unsigned long long)cg->goid : 0ULL, mp->spinning, mp->blocked,
                 atomic_load(&mp->locks), mp->lockedg ? (unsigned long long)mp->lockedg->goid : 0ULL);
        gort__write_str(fd, buf);
    }
    gort__unlock(&gort__sched.allm_lock);
    gort__lock(&gort__allglock);
    for (size_t i = 0; i < gort__nallgs; i++) {
        gort_g_t *gp = gort__allgs[i];
        if (atomic_load(&gp->status) == G_DEAD)
            continue;
        char h[160];
        gort__format_gheader(h, sizeof h, gp, gort__nanotime_coarse());
        snprintf(buf, sizeof buf, "  G%llu: %s", (unsigned long long)gp->goid, h + 10 /* skip "goroutine " */);
        gort__write_str(fd, buf);
    }
    gort__unlock(&gort__allglock);
}

void gort__lockstat_atexit(void)
{
    /* Not in a forked child's exit(): the runtime is not usable there
     * (fork.c), and the counters are the parent's. */
    if (atomic_load_explicit(&gort__forked_child, memory_order_relaxed))
        return;
    gort__lockstat_dump(2);
    uint64_t attempts = 0, probes = 0;
    for (int i = 0; i < GORT_MAX_PROCS && gort__allp[i]; i++) {
        attempts += atomic_load_explicit(&gort__allp[i]->stats.steal_attempts, memory_order_relaxed);
        probes += atomic_load_explicit(&gort__allp[i]->stats.steal_probes, memory_order_relaxed);
    }
    gort_stats st;
    gort_stats_get(&st);
    char buf[512];
    snprintf(buf, sizeof buf,
             "lockstat: scale steal_attempts=%llu steal_probes=%llu sysmon_rounds=%llu sysmon_syscalls=%llu "
             "sysmon_cpu_ns=%llu lock_contended=%llu membarriers=%llu\n",
             (unsigned long long)attempts, (unsigned long long)probes, (unsigned long long)st.sysmon_rounds,
             (unsigned long long)st.sysmon_syscalls, (unsigned long long)st.sysmon_cpu_ns,
             (unsigned long long)st.lock_contended,
             (unsigned long long)atomic_load_explicit(&gort__membarrier_calls, memory_order_relaxed));
    gort__write_str(2, buf);
}
