/*
 * fork.c: fork(2) and the runtime.
 *
 * fork copies only the calling thread.  The child inherits every runtime
 * lock in whatever state the other threads left it, Ms whose threads do not
 * exist, and no sysmon: a gort call there may hang forever or seem to work,
 * depending on where the other threads were.  Go allows only exec after a
 * fork; so does gort, but a C program can call anything, so the rule is
 * enforced: a pthread_atfork child handler marks the runtime unusable, and
 * every way into it ends the child at once with
 *   fatal error: gort runtime used in a forked child (only exec or _exit
 *   are allowed after fork)
 * without a goroutine dump (the dump takes locks the vanished threads may
 * hold).  Every public function checks, one of these ways:
 *   - a goroutine's runtime calls: the handler sets the forking M's pstate
 *     to PSTATE_FORKED, which sends gort__rt_enter to its slow path
 *     (syscall.c), so the fast path pays nothing;
 *   - calls from threads without a goroutine: gort__rt_enter's branch for
 *     them, gort__runtime_init (gort_main, gort_go), gort__foreign_park;
 *   - gort.h's inline mutex fast paths: the handler makes
 *     gort__mutex_unlocked a state no mutex has (mutex.c), so the CAS
 *     fails and the unlock's compare mismatches, and the slow paths end
 *     the child; no instruction is added to the fast paths;
 *   - functions that do not enter the runtime (gort_self, gort_nanotime,
 *     accessors, labels, trace annotations, the context idioms through
 *     gort_self): gort__fork_check first, a load and a branch.
 * tests/faults_fork.c forks once per public function to keep it so.
 * C lock calls (locks_interpose.c) are not gort calls and keep working.
 * The child's exit() skips the runtime's atexit work (prof/start.c): the
 * profiler's writer thread it would join is gone.
 *
 * fork+exec from a goroutine works as in any C program; gort_waitpid waits
 * for the child without holding a P.  gort_posix_spawn is the cheaper way
 * (no copy of the page tables, no atfork handlers): posix_spawn blocks the
 * caller until the child has exec'd, so it runs as a system call that gives
 * up the P.
 *
 * Rejected: making the child usable by re-initialising the runtime there
 * (Go does not; the copied goroutines' stacks and the user's locks would
 * still be in an unknown state), and taking every runtime lock in a
 * prepare handler (it would stall fork behind a long dump and still leave
 * the other goroutines' state behind).
 */
#include "runtime.h"

#include <errno.h>
#include <spawn.h>
#include <unistd.h>

#include "gort_spawn.h"

/* Set once, in a forked child, by its only thread. */
_Atomic int gort__forked_child;

static void atfork_child(void)
{
    atomic_store_explicit(&gort__forked_child, 1, memory_order_relaxed);
    gort__mutex_forked();
    gort_m_t *m = gort__getm();
    if (m)
        atomic_store_explicit(&m->pstate, GORT_PSTATE_FORKED, memory_order_relaxed);
}

static void atfork_register(void) { pthread_atfork(NULL, NULL, atfork_child); }

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

void gort__fork_init(void) { pthread_once(&atfork_once, atfork_register); }

void gort__forked_fatal(void)
{
    gort__write_str(2, "fatal error: gort runtime used in a forked child (only exec or _exit are allowed after fork)\n");
    _exit(2);
}

int gort_posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *file_actions,
                     const posix_spawnattr_t *attrp, char *const argv[], char *const envp[])
{
    gort_syscall_enter();
    int err = posix_spawn(pid, path, file_actions, attrp, argv, envp);
    gort_syscall_exit();
    return -err;
}

int gort_posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *file_actions,
                      const posix_spawnattr_t *attrp, char *const argv[], char *const envp[])
{
    gort_syscall_enter();
    int err = posix_spawnp(pid, file, file_actions, attrp, argv, envp);
    gort_syscall_exit();
    return -err;
}
