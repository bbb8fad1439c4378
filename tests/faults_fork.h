/*
 * faults_fork.h: every public call in a forked child (faults_fork.c).
 */
#ifndef GORT_TESTS_FAULTS_FORK_H
#define GORT_TESTS_FAULTS_FORK_H

/* gort_main's body: forks once per public function, from this goroutine
 * and then from a plain thread, and counts in *(int *)arg the children
 * that did not end with the forked-child fatal error (or, for a C lock
 * call, did not live); prints one line per such child. */
void gt_fork_calls(void *arg);

#endif /* GORT_TESTS_FAULTS_FORK_H */
