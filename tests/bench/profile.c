/*
 * profile: CPU work (heavy:light = 3:1) run plainly, then again under the
 * CPU profiler; reports the time ratio and the profile's path, as the Go
 * peer does.  Arguments: ROUNDS (300) and the output path.  The Go peer
 * profiles at 100 Hz, and so does the line "overhead".  A second pair of
 * runs (plain, then profiled at 1000 Hz into PATH.1000hz, removed after)
 * gives "overhead_1000hz", the second target; the Go peer has no
 * such line.  GORT_BENCH_PROFILE_HZ changes the first rate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench.h"
#include "gort_prof.h"

static volatile uint64_t sink;

__attribute__((noinline)) static uint64_t spin(long n)
{
    uint64_t x = (uint64_t)n;
    for (long i = 0; i < n; i++)
        x = x * 6364136223846793005ull + 1442695040888963407ull;
    return x;
}

__attribute__((noinline)) static void heavy(void) { sink += spin(3000000); }
__attribute__((noinline)) static void light(void) { sink += spin(1000000); }

static long rounds;
static const char *out;
static int hz;
static double plain_s, prof_s, plain2_s, prof1000_s;
static char out1000[4096];

static double run(void)
{
    int64_t t = gort_nanotime();
    for (long i = 0; i < rounds; i++) {
        heavy();
        light();
    }
    return (double)(gort_nanotime() - t) / 1e9;
}

static double profiled(const char *path, int rate)
{
    int r = gort_cpuprofile_start(path, rate);
    if (r != 0)
        bench_fail("profile: cannot start the profiler on %s: %d", path, r);
    double s = run();
    r = gort_cpuprofile_stop();
    if (r != 0)
        bench_fail("profile: writing %s failed: %d", path, r);
    return s;
}

/* Each profiled run is measured against the plain run just before it, so
 * drift over the bench's seconds hits both sides of a ratio alike. */
static void body(void *a)
{
    (void)a;
    plain_s = run();
    prof_s = profiled(out, hz);
    plain2_s = run();
    prof1000_s = profiled(out1000, 1000);
    unlink(out1000);
}

void bench_profile(int argc, char **argv)
{
    rounds = bench_arg(argc, argv, 2, 300);
    out = argc > 3 ? argv[3] : "/tmp/gort-bench-cpu.pprof";
    const char *h = getenv("GORT_BENCH_PROFILE_HZ");
    hz = h ? atoi(h) : 100;
    if ((size_t)snprintf(out1000, sizeof(out1000), "%s.1000hz", out) >= sizeof(out1000))
        bench_fail("profile: output path too long: %s", out);
    bench_run_main(body, NULL);
    bench_report("profile", "overhead", prof_s / plain_s, "x");
    bench_report("profile", "overhead_1000hz", prof1000_s / plain2_s, "x");
    bench_report("profile", "profile_written", 1, out); /* the path is the unit, as Go prints it */
}
