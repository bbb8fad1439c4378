/*
 * wholefile.h: files written whole or not at all (wholefile.c).
 */
#ifndef GORT_PROF_WHOLEFILE_H
#define GORT_PROF_WHOLEFILE_H

#include <limits.h>
#include <stdbool.h>

typedef struct gort_wfile {
    int fd;
    bool direct;          /* path is not a regular file: written in place */
    char path[PATH_MAX];
    char tmp[PATH_MAX];   /* path.tmp.PID while being written */
} gort_wfile_t;

/* Opens w->fd for writing path.  Returns 0 or a negative errno value. */
int gort__wfile_open(gort_wfile_t *w, const char *path);
/* Ends the write: err is the first error of the writes (0 if none).  On
 * success the data reaches the disk and the temporary takes path's name;
 * on any error the temporary is removed and path is left as it was.
 * Returns 0 or a negative errno value.  Async-signal-safe. */
int gort__wfile_commit(gort_wfile_t *w, int err);

#endif /* GORT_PROF_WHOLEFILE_H */
