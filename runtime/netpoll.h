/*
 * netpoll.h: the network poller and idle sleep (netpoll_epoll.c), poll
 * descriptors with their wait slots and deadlines (netpoll.c), and the
 * per-handle reference count and turns (fd.c).
 */
#ifndef GORT_RUNTIME_NETPOLL_H
#define GORT_RUNTIME_NETPOLL_H

#include "base.h"
#include "lock.h"
#include "timer.h"

/* Network poller / idle sleep (netpoll_epoll.c) */
void gort__netpoll_init(void);
gort_g_t *gort__netpoll(int64_t delay_ns); /* <0 block, 0 poll, >0 timeout */
void gort__netpoll_break(void);
bool gort__netpoll_inited(void);
extern _Atomic int32_t gort__netpoll_waiters; /* Gs parked on a pd; atomic */
void gort__wake_netpoller(int64_t when);
/* Registers fd edge-triggered for reading and writing; tag comes back
 * with its events (gort__pd_tag).  Returns 0 or -errno. */
int gort__netpoll_open(int fd, uint64_t tag);
void gort__netpoll_close(int fd);

/*
 * A poll descriptor: one per open gort_fd, from a type-stable table whose
 * entries are never freed (netpoll.c), so a goroutine, a timer or an
 * epoll event holding a stale pointer reads a pd that is still a pd; the
 * generation tells it whether it is still the one it meant.
 *
 * rg and wg are Go's wait slots: PD_NIL, PD_READY (an edge arrived and
 * nobody has consumed it), PD_WAIT (a goroutine is about to park), or the
 * parked G.  Only CASes move them (netpoll.c explains the protocol).
 */
enum { PD_NIL = 0, PD_READY = 1, PD_WAIT = 2 };
/* pd->info bits: a lock-free summary of what the lock protects, read by
 * the wait path before it parks (Go's pollInfo). */
enum { PDI_CLOSING = 1, PDI_RDEXPIRED = 2, PDI_WDEXPIRED = 4 };

typedef struct gort_pd {
    /* Set by the opener before the handle is published, constant until
     * the closer frees the pd. */
    int fd;
    uint32_t slot;       /* index in the table; constant */
    /* Generation: handles and epoll tags carry the value from their
     * open.  Bumped by the closer when it frees the pd (release; readers
     * acquire), so a stale handle, timer or event sees a mismatch. */
    _Atomic uint32_t gen;
    bool is_sock;        /* writes use send(MSG_NOSIGNAL) */
    bool is_tcp;         /* a TCP socket: accepted ones get TCP_NODELAY */
    char *unlink_path;   /* a unix listener's path, removed on close */

    /* fd.c: Go's fdMutex (closed, read and write turns, references and
     * waiters in one word; CAS only) and its semaphores.  csema: the
     * last reference's release tells the closer the descriptor is shut. */
    _Atomic uint64_t mu;
    _Atomic uint32_t rsema, wsema, csema;

    _Atomic uintptr_t rg, wg; /* wait slots; CAS only */
    _Atomic uint32_t info;    /* PDI_*; written under lock, read without */
    /* An event for this open reported a hang-up, an error or urgent data
     * (netpollready; relaxed, published by its CAS on rg), after which a
     * read that seemed to empty the receive queue may have left an EOF,
     * an error or bytes past the urgent mark (fd.c's drained reads).
     * Cleared by gort__pd_open; never cleared while open. */
    _Atomic bool rhup;
    /* fd.c, under the read turn: the last read emptied a TCP socket's
     * receive queue and rg has not been reset since (gort__pd_reset
     * clears it), so every arrival after that read has left an edge. */
    bool rdrained;
    int8_t inq; /* fd.c, under the read turn: TCP_INQ 0 untried, 1 on, -1 refused */
    bool closing; /* under lock (here in a hole: a pd is part of every
                     connection's memory) */

    gort_lock_t lock; /* LR_POLLDESC: closing and what follows */
    /* The deadlines: NULL until the first gort_fd_set_*deadline on this
     * pd, then kept with it for good (never freed: a timer that fires
     * late reads it through the pd).  Most connections never set one,
     * and the two timers are most of a pd's size.  Set under lock
     * (release); read under it, or with acquire by a setter deciding
     * whether to allocate one. */
    struct gort_pd_dl *_Atomic dl;
    struct gort_pd *link;    /* free list; under the table's lock */
} gort_pd_t;

/* A pd's deadline state (pd->dl); every field under pd->lock. */
typedef struct gort_pd_dl {
    int64_t rd, wd;          /* deadlines: 0 none, -1 passed */
    uintptr_t rseq, wseq;    /* bumped when a timer must not fire */
    gort__timer_t rt, wt;    /* deadline timers; rt.f != NULL: armed */
} gort_pd_dl_t;

/* netpoll.c */
gort_pd_t *gort__pd_alloc(void);           /* a free pd, closing, fd -1 */
void gort__pd_free(gort_pd_t *pd);         /* back to the table; bumps gen */
gort_pd_t *gort__pd_at(uint32_t slot);     /* NULL: no such slot yet */
static inline uint64_t gort__pd_tag(gort_pd_t *pd, uint32_t gen) { return (uint64_t)gen << 32 | pd->slot; }
int gort__pd_open(gort_pd_t *pd, int fd);  /* resets the slots, registers */
void gort__pd_evict(gort_pd_t *pd);        /* closing: wake every waiter */
int gort__pd_reset(gort_pd_t *pd, int mode);   /* before an I/O attempt */
int gort__pd_wait(gort_pd_t *pd, int mode);    /* park until ready */
int gort__pd_checkerr(gort_pd_t *pd, int mode);
/* mode 'r', 'w', 'r'+'w'.  Returns 0, or -ENOMEM when the pd's first
 * deadline finds no memory for its timers. */
int gort__pd_set_deadline(gort_pd_t *pd, int64_t d, int mode);
/* An event for tag ('r', 'w' or 'r'+'w'; hup: it reported a hang-up, an
 * error or urgent data): adds the goroutines it readies to *list (foreign
 * waiters are woken at once). */
void gort__netpollready(gort_g_t **list, uint64_t tag, int mode, bool hup);

/* fd.c: a unix listener's path (malloc'd) is removed when it is closed
 * (net.c).  Takes the path even if the handle is closed already. */
void gort__fd_unlink_on_close(uint64_t handle, char *path);

#endif /* GORT_RUNTIME_NETPOLL_H */
