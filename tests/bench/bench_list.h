/* Workloads of gort-bench, as named by the Go peer.  One line each;
 * BENCH_AS for a name that is not a C identifier. */
BENCH(spawn)
BENCH(fib)
BENCH(pingpong)
BENCH(chanthru)
BENCH(mutex)
BENCH(sieve)
BENCH(idle)
BENCH(preempt)
BENCH(syscall)
BENCH(dump)
BENCH(profile)
BENCH_AS(echo_server, "echo-server")
BENCH(trace)
BENCH(spinners) /* gort only: sysmon's cost (spinners.c) */
BENCH(profcost) /* gort only: scripts/profcost drives it */
