/* Workloads of gort-bench, as named by the Go peer.  One line each. */
BENCH(spawn)
BENCH(fib)
BENCH(preempt)
BENCH(syscall)
BENCH(dump)
BENCH(profile)
