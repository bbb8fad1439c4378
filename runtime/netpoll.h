/*
 * netpoll.h: the network poller and idle sleep (netpoll_epoll.c).
 */
#ifndef GORT_RUNTIME_NETPOLL_H
#define GORT_RUNTIME_NETPOLL_H

#include "base.h"

/* Network poller / idle sleep (netpoll_epoll.c) */
void gort__netpoll_init(void);
gort_g_t *gort__netpoll(int64_t delay_ns); /* <0 block, 0 poll, >0 timeout */
void gort__netpoll_break(void);
bool gort__netpoll_inited(void);
extern _Atomic int32_t gort__netpoll_waiters;
void gort__wake_netpoller(int64_t when);

#endif /* GORT_RUNTIME_NETPOLL_H */
