/* Workloads of gort-bench, as named by the Go peer.  One line each. */
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
BENCH(spinners) /* gort only: sysmon's cost (spinners.c) */
