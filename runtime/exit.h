/*
 * exit.h: the main goroutine's exit state machine (exit.c).
 */
#ifndef GORT_RUNTIME_EXIT_H
#define GORT_RUNTIME_EXIT_H

#include "base.h"

/* The main goroutine's exit (exit.c) */
void gort__main_exit_on_g(void);
void gort__main_exit_on_g0(gort_m_t *m);
void gort__main_exit_check(gort_m_t *m);        /* a checkpoint: leaves if DONE */
void gort__main_exit_check_locked(gort_m_t *m); /* sched.lock held, before registering idle */
bool gort__main_exit_due(gort_m_t *m);          /* the poller's check before blocking */
void gort__main_exit_finish(gort_m_t *m);       /* gort_main's return path */

#endif /* GORT_RUNTIME_EXIT_H */
