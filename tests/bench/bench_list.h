/* Workloads of gort-bench, as named by the Go peer.  One line each. */
BENCH(spawn)
BENCH(fib)
BENCH(pingpong)
BENCH(chanthru)
BENCH(mutex)
BENCH(sieve)
BENCH(idle)
