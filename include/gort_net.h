/*
 * gort_net.h: goroutine-aware sockets with deadlines (Go's net and
 * internal/poll on the runtime's netpoller).
 *
 * A goroutine that waits on a gort_fd parks on the netpoller and holds no
 * thread: one idle thread waits in epoll for every such descriptor, so a
 * server can keep a goroutine per connection.  Descriptors the program did
 * not give to gort_fd_open are untouched; gort_read and friends (gort.h)
 * still serve them by handing the P off.
 *
 * Errors.  Every function returns a count or 0 on success and a negative
 * errno value on failure, never errno (a goroutine may change threads):
 *   -ETIMEDOUT   the read or write deadline has passed (as gort_ctx's
 *                GORT_CTX_DEADLINE); at once if it had already passed.
 *   -ECANCELED   the handle is closed, or was closed while the call waited
 *                (Go's "use of closed network connection"), including a
 *                handle whose slot a later gort_fd_open has reused: a
 *                stale handle never reaches another connection.
 *   -EBADF       a handle that no gort_fd_open ever returned.
 *   -EPERM       the runtime is not running (outside gort_main).
 *   anything else: what the system call said (-ECONNRESET, -EPIPE, ...).
 *
 * Concurrency.  Any goroutine (or plain thread, while gort_main runs) may
 * use a handle.  Two readers of one handle take turns, as do two writers;
 * a reader and a writer run at once.  gort_fd_close wakes every waiter
 * (-ECANCELED) and closes the descriptor once every call in progress on it
 * has returned; it returns after that.
 *
 * Deadlines are absolute, on gort_nanotime()'s clock; 0 clears one.  A
 * deadline set into the past wakes the calls waiting under it.  A call
 * that fails with -ETIMEDOUT leaves the handle usable: move or clear the
 * deadline and call again.
 *
 * Writes never raise SIGPIPE (MSG_NOSIGNAL on sockets; on a pipe the
 * signal is blocked around the call and a SIGPIPE it raised is taken
 * back); the process's signal dispositions are not changed.
 */
#ifndef GORT_NET_H
#define GORT_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "gort.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A handle, passed by value: slot index and generation.  {0} is never a
 * valid handle. */
typedef struct gort_fd {
    uint64_t h;
} gort_fd;

/* Sets O_NONBLOCK on sysfd and registers it with the netpoller; the handle
 * owns the descriptor from then on (gort_fd_close closes it).  -ENOTSUP
 * for a regular file or a directory (epoll cannot wait for them). */
GORT_API int gort_fd_open(int sysfd, gort_fd *out);
/* Parks until data; 0 at EOF (or for n == 0). */
GORT_API ssize_t gort_fd_read(gort_fd, void *buf, size_t n);
/* Writes all n bytes unless an error or a deadline stops it: then it
 * returns the count written if it wrote any (the next call reports the
 * error), else the error. */
GORT_API ssize_t gort_fd_write(gort_fd, const void *buf, size_t n);
/* Parks until a connection; retries ECONNABORTED, and backs off on EMFILE
 * and ENFILE until a descriptor is free, the deadline passes or ln is
 * closed.  *conn is registered already.  addr may be NULL. */
GORT_API int gort_fd_accept(gort_fd ln, gort_fd *conn, struct sockaddr *addr, socklen_t *addrlen);
/* Connects, parking until the handshake ends (or the write deadline). */
GORT_API int gort_fd_connect(gort_fd, const struct sockaddr *, socklen_t);
/* Readiness only: for TLS libraries, and idle waits without a buffer.
 * Returns 0 once the descriptor is readable (writable), at once if it is
 * now. */
GORT_API int gort_fd_wait_read(gort_fd);
GORT_API int gort_fd_wait_write(gort_fd);
/* gort_nanotime() clock, absolute; 0 clears. */
GORT_API int gort_fd_set_deadline(gort_fd, int64_t abs_ns);
GORT_API int gort_fd_set_read_deadline(gort_fd, int64_t abs_ns);
GORT_API int gort_fd_set_write_deadline(gort_fd, int64_t abs_ns);
GORT_API int gort_fd_close(gort_fd);
/* The descriptor, or -ECANCELED.  For setsockopt and the like: reading or
 * writing it directly bypasses the handle's turns and deadlines. */
GORT_API int gort_fd_sysfd(gort_fd);
/* "127.0.0.1:8080", "[::1]:8080", a unix socket's path ("@name" for an
 * abstract one).  Returns the string's length; -ERANGE if len is too
 * small for it and its NUL. */
GORT_API int gort_fd_local_addr(gort_fd, char *buf, size_t len);

/* network: "tcp", "tcp4", "tcp6" or "unix".  address: "host:port",
 * "[v6host]:port", ":port" (every address; port 0 picks one), or a unix
 * socket's path ("@name": abstract).  Host names are resolved as in
 * gort_net_dial. */
GORT_API int gort_net_listen(const char *network, const char *address, gort_fd *ln);
/* Connects to address; timeout_ns > 0 bounds the whole dial (each address
 * a name resolves to is tried in turn).  Name resolution (getaddrinfo)
 * runs as a system call: its P is handed off, never on the poller. */
GORT_API int gort_net_dial(const char *network, const char *address, int64_t timeout_ns, gort_fd *conn);

#ifdef __cplusplus
}
#endif

#endif /* GORT_NET_H */
