/*
 * net.c: gort_net_listen, gort_net_dial and gort_fd_local_addr
 * (include/gort_net.h): addresses and sockets on fd.c's handles, as Go's
 * net package (ipsock.go, sock_posix.go, tcpsock.go) does on internal/poll.
 *
 * Addresses are Go's: "host:port", "[v6host]:port", ":port"; a unix
 * socket's path, "@name" for the abstract namespace.  Numeric hosts are
 * parsed here; names go to getaddrinfo as a system call (the P is handed
 * off while it blocks), never on the poller: it may read files and talk
 * to a DNS server with blocking calls of its own.
 *
 * Listeners set SO_REUSEADDR (a restarted server can bind while old
 * connections sit in TIME_WAIT); "tcp" on every address listens on [::]
 * with IPV6_V6ONLY off where the host has IPv6, as Go.  A unix listener
 * removes its path when it is closed, as Go's.
 */
#include "runtime.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "gort_net.h"

enum { NET_TCP, NET_TCP4, NET_TCP6, NET_UNIX };

static int parse_network(const char *network)
{
    if (!network)
        return -EINVAL;
    if (strcmp(network, "tcp") == 0)
        return NET_TCP;
    if (strcmp(network, "tcp4") == 0)
        return NET_TCP4;
    if (strcmp(network, "tcp6") == 0)
        return NET_TCP6;
    if (strcmp(network, "unix") == 0)
        return NET_UNIX;
    return -EAFNOSUPPORT;
}

#define MAX_ADDRS 8
typedef struct addrs {
    int n;
    struct sockaddr_storage a[MAX_ADDRS];
    socklen_t len[MAX_ADDRS];
} addrs_t;

static void add_addr(addrs_t *as, const void *sa, socklen_t len)
{
    if (as->n < MAX_ADDRS) {
        memcpy(&as->a[as->n], sa, len);
        as->len[as->n++] = len;
    }
}

static int unix_addr(const char *path, addrs_t *as)
{
    struct sockaddr_un su = {.sun_family = AF_UNIX};
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof su.sun_path)
        return -EINVAL;
    memcpy(su.sun_path, path, n);
    if (path[0] == '@')
        su.sun_path[0] = 0;
    add_addr(as, &su, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '@' ? 0 : 1)));
    return 0;
}

/* host:port into as.  passive: an empty host means every address (listen),
 * else the loopback (dial, as Go). */
static int resolve(int net, const char *address, bool passive, addrs_t *as)
{
    as->n = 0;
    if (!address)
        return -EINVAL;
    if (net == NET_UNIX)
        return unix_addr(address, as);
    const char *colon = strrchr(address, ':');
    if (!colon)
        return -EINVAL; /* "missing port in address" */
    char host[256];
    const char *h = address;
    size_t hl = (size_t)(colon - address);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    } else if (memchr(h, ':', hl)) {
        return -EINVAL; /* "too many colons in address" */
    }
    if (hl >= sizeof host)
        return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == 0 || *end != 0 || port < 0 || port > 65535)
        return -EINVAL; /* Go resolves service names; we take numbers */

    struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
    if (hl == 0) {
        if (net != NET_TCP4) {
            s6.sin6_addr = passive ? in6addr_any : in6addr_loopback;
            add_addr(as, &s6, sizeof s6);
        }
        if (net != NET_TCP6) {
            s4.sin_addr.s_addr = htonl(passive ? INADDR_ANY : INADDR_LOOPBACK);
            add_addr(as, &s4, sizeof s4);
        }
        return 0;
    }
    if (inet_pton(AF_INET, host, &s4.sin_addr) == 1) {
        if (net == NET_TCP6)
            return -EAFNOSUPPORT;
        add_addr(as, &s4, sizeof s4);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &s6.sin6_addr) == 1) {
        if (net == NET_TCP4)
            return -EAFNOSUPPORT;
        add_addr(as, &s6, sizeof s6);
        return 0;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_family = net == NET_TCP4 ? AF_INET : net == NET_TCP6 ? AF_INET6 : AF_UNSPEC};
    struct addrinfo *res = NULL;
    gort_syscall_enter();
    int g = getaddrinfo(host, NULL, &hints, &res);
    int ge = errno;
    gort_syscall_exit();
    if (g != 0)
        return g == EAI_SYSTEM ? -ge : g == EAI_MEMORY ? -ENOMEM : -EHOSTUNREACH;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET) {
            struct sockaddr_in a = *(struct sockaddr_in *)ai->ai_addr;
            a.sin_port = htons((uint16_t)port);
            add_addr(as, &a, sizeof a);
        } else if (ai->ai_family == AF_INET6) {
            struct sockaddr_in6 a = *(struct sockaddr_in6 *)ai->ai_addr;
            a.sin6_port = htons((uint16_t)port);
            add_addr(as, &a, sizeof a);
        }
    }
    freeaddrinfo(res);
    return as->n ? 0 : -EHOSTUNREACH;
}

static int new_socket(int family)
{
    int s = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return s < 0 ? -errno : s;
}

static int listen_one(int net, const struct sockaddr *sa, socklen_t len, gort_fd *ln)
{
    int s = new_socket(sa->sa_family);
    if (s < 0)
        return s;
    int one = 1, v6only = net == NET_TCP6;
    if (sa->sa_family != AF_UNIX)
        (void)setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (sa->sa_family == AF_INET6)
        (void)setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
    /* The kernel caps the backlog at net.core.somaxconn. */
    if (bind(s, sa, len) != 0 || listen(s, 65535) != 0) {
        int e = -errno;
        close(s);
        return e;
    }
    int e = gort_fd_open(s, ln);
    if (e != 0)
        close(s);
    return e;
}

int gort_net_listen(const char *network, const char *address, gort_fd *ln)
{
    int net = parse_network(network);
    if (net < 0)
        return net;
    addrs_t as;
    int e = resolve(net, address, true, &as);
    if (e)
        return e;
    e = -EADDRNOTAVAIL;
    for (int i = 0; i < as.n; i++) {
        e = listen_one(net, (struct sockaddr *)&as.a[i], as.len[i], ln);
        if (e != -EAFNOSUPPORT && e != -EADDRNOTAVAIL)
            break;
    }
    if (e == 0 && net == NET_UNIX && address[0] != '@') {
        char *path = strdup(address);
        if (path)
            gort__fd_unlink_on_close(ln->h, path);
    }
    return e;
}

static int dial_one(const struct sockaddr *sa, socklen_t len, int64_t deadline, gort_fd *conn)
{
    int s = new_socket(sa->sa_family);
    if (s < 0)
        return s;
    if (sa->sa_family != AF_UNIX) {
        int one = 1; /* as Go: small writes go out at once */
        (void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    gort_fd c;
    int e = gort_fd_open(s, &c);
    if (e != 0) {
        close(s);
        return e;
    }
    if (deadline)
        gort_fd_set_write_deadline(c, deadline);
    e = gort_fd_connect(c, sa, len);
    if (deadline)
        gort_fd_set_write_deadline(c, 0);
    if (e != 0) {
        gort_fd_close(c);
        return e;
    }
    *conn = c;
    return 0;
}

int gort_net_dial(const char *network, const char *address, int64_t timeout_ns, gort_fd *conn)
{
    int net = parse_network(network);
    if (net < 0)
        return net;
    int64_t deadline = timeout_ns > 0 ? gort_nanotime() + timeout_ns : 0;
    addrs_t as;
    int e = resolve(net, address, false, &as);
    if (e)
        return e;
    if (deadline && gort_nanotime() >= deadline)
        return -ETIMEDOUT;
    for (int i = 0; i < as.n; i++) {
        e = dial_one((struct sockaddr *)&as.a[i], as.len[i], deadline, conn);
        if (e == 0 || e == -ETIMEDOUT || e == -ECANCELED)
            break;
    }
    return e;
}

int gort_fd_local_addr(gort_fd h, char *buf, size_t len)
{
    int s = gort_fd_sysfd(h);
    if (s < 0)
        return s;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(s, (struct sockaddr *)&ss, &sl) != 0)
        return -errno;
    char out[sizeof(struct sockaddr_un) + 64];
    char ip[INET6_ADDRSTRLEN];
    int n;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        n = snprintf(out, sizeof out, "%s:%u", ip, ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        n = snprintf(out, sizeof out, "[%s]:%u", ip, ntohs(a->sin6_port));
    } else if (ss.ss_family == AF_UNIX) {
        struct sockaddr_un *a = (struct sockaddr_un *)&ss;
        size_t pl = sl > offsetof(struct sockaddr_un, sun_path) ? sl - offsetof(struct sockaddr_un, sun_path) : 0;
        if (pl > 0 && a->sun_path[0] == 0) {
            out[0] = '@';
            memcpy(out + 1, a->sun_path + 1, pl - 1);
            n = (int)pl;
        } else {
            n = (int)strnlen(a->sun_path, pl);
            memcpy(out, a->sun_path, (size_t)n);
        }
        out[n] = 0;
    } else {
        return -EAFNOSUPPORT;
    }
    if (n < 0 || (size_t)n + 1 > len)
        return -ERANGE;
    memcpy(buf, out, (size_t)n + 1);
    return n;
}
