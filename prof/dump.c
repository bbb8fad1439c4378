/*
 * dump.c: goroutine dumps.
 *
 * This first version prints each goroutine's header line (state, wait
 * reason and time, lock) and its creator; stacks come with the unwinder.
 * It takes no lock it cannot give up on: in a crashing process allglock
 * may be held by the thread that crashed, so after a bounded number of
 * try-lock attempts it reads allgs without it.
 */
#include "runtime.h"

#include <stdio.h>

static void dump_one(int fd, gort_g_t *gp, int64_t now)
{
    char buf[256];
    size_t n = gort__format_gheader(buf, sizeof buf, gp, now);
    (void)n;
    gort__write_str(fd, buf);
    if (gp->parent_goid) {
        snprintf(buf, sizeof buf, "created by %#lx in goroutine %llu\n\n", (unsigned long)gp->gopc,
                 (unsigned long long)gp->parent_goid);
    } else {
        snprintf(buf, sizeof buf, "\n");
    }
    gort__write_str(fd, buf);
}

void gort__dump_goroutines(int fd, bool all, bool crashing)
{
    int64_t now = gort__nanotime_coarse();
    gort_g_t *self = gort__getg();
    if (self)
        dump_one(fd, self, now);
    if (!all)
        return;
    bool locked = false;
    for (int i = 0; i < (crashing ? 1000 : 1) && !locked; i++) {
        if (crashing)
            locked = gort__trylock(&gort__allglock);
        else {
            gort__lock(&gort__allglock);
            locked = true;
        }
    }
    for (size_t i = 0; i < gort__nallgs; i++) {
        gort_g_t *gp = gort__allgs[i];
        if (gp == self || atomic_load(&gp->status) == G_DEAD)
            continue;
        dump_one(fd, gp, now);
    }
    if (locked)
        gort__unlock(&gort__allglock);
}

void gort_dump(int fd) { gort__dump_goroutines(fd, true, false); }
