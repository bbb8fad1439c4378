/* The one list of suites, in the order they run.  One line per suite:
 * SUITE(name) for tests/<name>_test.c, which ends with GT_SUITE(name, ...). */
SUITE(runq)
SUITE(sched)
SUITE(stack)
SUITE(timer)
SUITE(preempt)
SUITE(sched_stress)
SUITE(chan)
SUITE(select)
SUITE(dump)
SUITE(crash)
SUITE(gdb)
SUITE(misuse)
