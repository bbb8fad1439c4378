/*
 * wholefile.c: the files gort names are written whole or not at all: CPU
 * profiles (gort_cpuprofile_start, GORT_CPUPROFILE), GORT_TRACE's trace,
 * and gortprof's own output (flame -o), which links this object too: it
 * uses only libc.
 *
 * A profile cut short by a full disk (ENOSPC) or an I/O error (EIO) can
 * still look valid to a reader that stops at the end of the data, and a
 * gzip stream cut at a block boundary may even decompress.  So the data
 * goes to a temporary name beside the target (same directory, so the
 * rename stays on one file system), is flushed with fsync (delayed
 * allocation and network file systems report ENOSPC and EIO there or at
 * close), and only then renamed over the target.  Any error removes the
 * temporary and is returned as a negative errno value; the target keeps
 * whatever it held before.
 *
 * A path that exists and is not a regular file (/dev/stdout, a FIFO) is
 * written in place: there is nothing to rename, and its reader sees the
 * error as we do.
 *
 * Rejected: O_TMPFILE with linkat (it cannot replace an existing file,
 * and not every file system has it).
 */
#include "wholefile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int gort__wfile_open(gort_wfile_t *w, const char *path)
{
    memset(w, 0, sizeof *w);
    w->fd = -1;
    if (snprintf(w->path, sizeof w->path, "%s", path) >= (int)sizeof w->path ||
        snprintf(w->tmp, sizeof w->tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof w->tmp)
        return -ENAMETOOLONG;
    struct stat st;
    w->direct = stat(path, &st) == 0 && !S_ISREG(st.st_mode);
    w->fd = open(w->direct ? path : w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0)
        return -errno;
    return 0;
}

int gort__wfile_commit(gort_wfile_t *w, int err)
{
    if (w->fd < 0)
        return err ? err : -EBADF;
    if (!err && !w->direct && fsync(w->fd) != 0)
        err = -errno;
    if (close(w->fd) != 0 && !err && errno != EINTR)
        err = -errno;
    w->fd = -1;
    if (w->direct)
        return err;
    if (!err && rename(w->tmp, w->path) != 0)
        err = -errno;
    if (err)
        (void)unlink(w->tmp);
    return err;
}
