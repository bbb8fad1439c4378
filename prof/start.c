/*
 * start.c: gort_main, the top of the layer stack (runtime/hooks.h).
 *
 * A program enters gort through gort_main, so this file is where the
 * layers come up: the runtime first (settings, stacks, signals, Ps), then
 * prof (it fills its hooks, opens the symbol tables, installs the crash
 * handlers and the profiler's signals), then sysmon (it fills its hooks
 * and starts the monitor thread, which may call prof's hooks at once).
 * Only then does runtime/main.c (gort__main) start the world and run the
 * main goroutine.
 *
 * The profile API (gort_cpuprofile_start, gort_profile_write) may come
 * before gort_main: it calls gort__start too.  Other calls before
 * gort_main set up the runtime alone.
 *
 * In a static link gort_main's references to sysmon/ and prof/ are what
 * pull their objects out of libgort.a: the runtime itself names nothing
 * above it.  A program that drives the runtime without gort_main (only
 * the tests do) runs with every hook NULL: no preemption signals, no
 * profiles, a fatal error without a dump.
 *
 * Rejected: constructors (__attribute__((constructor))) in sysmon/ and
 * prof/: nothing would pull their objects out of a static archive, and
 * they would run in programs that link libgort but never start it.
 */
#include "dump.h"
#include "profiles.h"
#include "runtime.h"
#include "sysmon.h"
#include "trace.h"
#include "unwind.h"
#include "unwind.h"

#include <stdlib.h>

/* Not in a forked child's exit(): the profiler's and the tracer's writers
 * are not there to join (runtime/fork.c). */
static void at_exit(void)
{
    if (atomic_load_explicit(&gort__forked_child, memory_order_relaxed))
        return;
    gort__trace_at_exit();
    gort__prof_at_exit();
}

static void before_fatal(void)
{
    gort__trace_before_fatal();
    gort__prof_before_fatal();
}

static void prof_start(void)
{
    gort__hooks.m_start = gort__prof_m_start;
    gort__hooks.m_stop = gort__prof_m_stop;
    gort__hooks.prof_block = gort__prof_block;
    gort__hooks.prof_mutex = gort__prof_mutex;
    gort__hooks.labels_inherit = gort__labels_inherit;
    gort__hooks.labels_release = gort__labels_release;
    gort__hooks.dump_goroutines = gort__dump_goroutines;
    gort__hooks.before_fatal = before_fatal;
    gort__hooks.sysmon_tick = gort__prof_sysmon_tick;
    gort__hooks.sigurg_capture = gort__sigurg_capture;
    gort__hooks.gprof_record = gort__gprof_record;
    gort__hooks.preempt_walk = gort__unwind_preempt;
    atexit(at_exit);
    gort__crash_init();
    gort__prof_init();
    gort__trace_init();
}

static pthread_once_t start_once = PTHREAD_ONCE_INIT;

static void start_layers(void);

void gort__start(void) { pthread_once(&start_once, start_layers); }

static void start_layers(void)
{
    gort__runtime_init();
    /* prof's hooks before sysmon's thread runs: sysmon calls sysmon_tick
     * and the SIGURG handler calls sigurg_capture. */
    prof_start();
    gort__sysmon_start();
}

int gort_main(void (*fn)(void *), void *arg)
{
    gort__start();
    gort__debug_env_start();
    return gort__main(fn, arg);
}
