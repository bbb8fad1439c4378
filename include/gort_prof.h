/*
 * gort_prof.h: profiling for gort programs.
 *
 * CPU profiles come from per-thread CPU-time timers (timer_create on each
 * M's CLOCK_THREAD_CPUTIME_ID), so every thread is sampled in proportion to
 * the CPU it uses.  Profiles are written as gzipped profile.proto, which
 * `go tool pprof` and the bundled `gortprof` read as they are.
 *
 * Functions that can fail for outside reasons return 0 or a negative errno
 * value; they never rely on errno (a goroutine may have changed threads).
 *
 * Environment:
 *   GORT_CPUPROFILE=path[,hz]  profile the whole run; written at exit and on
 *                              SIGTERM/SIGINT, and before a fatal error exits.
 *   GORT_TRACE=path            trace the whole run (as gort_trace_start);
 *                              written the same way.
 *   GORT_DEBUG_ADDR=host:port  gort_debug_serve(host:port) before the main
 *                              goroutine runs; a line on stderr names the port.
 */
#ifndef GORT_PROF_H
#define GORT_PROF_H

#include "gort.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Starts the CPU profiler at hz samples per second of CPU time (hz <= 0:
 * 100).  -EBUSY if one is running. */
GORT_API int gort_cpuprofile_start(const char *path, int hz);
/* Stops it and writes the profile.  -EINVAL if none is running. */
GORT_API int gort_cpuprofile_stop(void);

/* Writes the named profile ("goroutine", "block", "mutex") to fd: debug 0
 * is gzipped profile.proto, 1 and 2 are text as Go's
 * pprof.Lookup(name).WriteTo.  -ENOENT for an unknown name. */
GORT_API int gort_profile_write(const char *name, int fd, int debug);

/* runtime.SetBlockProfileRate: sample one blocking event per rate ns spent
 * blocked (1: every event, 0: off). */
GORT_API void gort_set_block_profile_rate(int64_t rate);
/* runtime.SetMutexProfileFraction: report 1/rate of contention events
 * (0: off); returns the previous rate. */
GORT_API int gort_set_mutex_profile_fraction(int rate);

/* Profiler labels (pprof.Do / pprof.SetGoroutineLabels).  Labels are
 * key=value pairs on a goroutine, inherited by goroutines it creates and
 * carried into CPU samples and goroutine profiles. */
GORT_API void gort_label_set(const char *key, const char *value);
GORT_API const char *gort_label_get(const char *key);
/* Runs fn(arg) with the given pairs added to the calling goroutine's
 * labels, then restores the previous set.  kv holds n key, value pairs. */
GORT_API void gort_label_do(const char *const *kv, int n, void (*fn)(void *), void *arg);

/* The execution tracer: Go 1.19's trace format, which `go tool trace`
 * opens (and `gortprof trace FILE` summarises).  It records where each
 * goroutine ran, waited for a P, blocked (and on what), and sat in system
 * calls, with stacks, plus the user annotations below.
 *
 * gort_trace_start writes to fd (the caller's, left open) until
 * gort_trace_stop, which flushes everything.  Both stop the world
 * briefly and must be called from a goroutine.  start: 0, -EBUSY while
 * tracing, or -errno; stop: 0, -EINVAL if not tracing, or -errno. */
GORT_API int gort_trace_start(int fd);
GORT_API int gort_trace_stop(void);
GORT_API bool gort_trace_enabled(void);

/* trace.NewTask: a new task's id, never 0 (parent 0: none).  The
 * annotations cost a branch when no trace runs. */
GORT_API uint64_t gort_trace_task(uint64_t parent, const char *type);
GORT_API void gort_trace_task_end(uint64_t task);
/* trace.StartRegion / Region.End on the calling goroutine (task 0: none);
 * regions nest, and each end names the region it ends. */
GORT_API void gort_trace_region_begin(uint64_t task, const char *type);
GORT_API void gort_trace_region_end(uint64_t task, const char *type);
/* trace.Log. */
GORT_API void gort_trace_log(uint64_t task, const char *category, const char *message);

/* Serves Go's net/http/pprof pages (/debug/pprof/: profile?seconds=N,
 * goroutine?debug=0|1|2, block, mutex, threadcreate, trace, cmdline,
 * symbol) and gort's (/debug/gort/stats, /debug/gort/schedtrace?seconds=N)
 * over HTTP/1.1 on address ("host:port"), from goroutines on the
 * netpoller, so `go tool pprof http://host:port/debug/pprof/profile`
 * works on a running program.  An empty host (":6060", ":0") binds
 * 127.0.0.1 only; any other address is bound as written: the pages show
 * the program's internals, so expose them no wider than its logs.  Nothing
 * runs or wakes while nobody connects.  Returns the bound TCP port (> 0),
 * -EBUSY if already serving, or a negative errno.  See docs/profiling.md. */
GORT_API int gort_debug_serve(const char *address);

#ifdef __cplusplus
}
#endif
#endif /* GORT_PROF_H */
