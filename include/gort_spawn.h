/*
 * gort_spawn.h: starting programs from goroutines.
 *
 * After fork(2) the child may only exec or _exit: any gort call there ends
 * it with "fatal error: gort runtime used in a forked child (only exec or
 * _exit are allowed after fork)".  fork+exec from a goroutine works, and
 * gort_waitpid (gort.h) waits for the child without holding a P.
 *
 * gort_posix_spawn and gort_posix_spawnp are posix_spawn(3) and
 * posix_spawnp(3) run as a blocking system call (the goroutine's P goes to
 * other work meanwhile).  They return 0, or a negative errno value.
 */
#ifndef GORT_SPAWN_H
#define GORT_SPAWN_H

#include <spawn.h>
#include <sys/types.h>

#include "gort.h"

#ifdef __cplusplus
extern "C" {
#endif

GORT_API int gort_posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *file_actions,
                              const posix_spawnattr_t *attrp, char *const argv[], char *const envp[]);
GORT_API int gort_posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *file_actions,
                               const posix_spawnattr_t *attrp, char *const argv[], char *const envp[]);

#ifdef __cplusplus
}
#endif

#endif /* GORT_SPAWN_H */
