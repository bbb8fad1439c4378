/*
 * fiber_san.c: telling sanitizers and valgrind about goroutine stacks.
 *
 * ASan must know when the stack pointer moves to another stack, or it
 * reports false stack-buffer overflows and loses fake stacks:
 * __sanitizer_start_switch_fiber before each switch and
 * __sanitizer_finish_switch_fiber after it, on both sides.  TSan needs a
 * fiber per goroutine and __tsan_switch_to_fiber before each switch so it
 * tracks happens-before per goroutine, not per thread.  Valgrind needs each
 * stack registered (VALGRIND_STACK_REGISTER) or it takes a switch for a
 * huge stack-pointer change.
 *
 * The switch paths in sched.c call these hooks unconditionally; in a normal
 * build they compile to nothing (the valgrind ones cost a few instructions
 * only when running under valgrind).
 */
#include "runtime.h"

#include <pthread.h>
#include <valgrind/valgrind.h>

#if defined(GORT_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/lsan_interface.h>
#endif
#if defined(GORT_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

/* On the M's own thread, on g0, before it runs any goroutine. */
void gort__san_minit(gort_m_t *m)
{
    (void)m;
#if defined(GORT_TSAN)
    m->tsan_g0_fiber = __tsan_get_current_fiber();
#endif
}

/* TSan keeps a shadow call stack per fiber.  Our switches end functions
 * that never return: gogo leaves schedule() and execute() behind on g0,
 * a dying goroutine leaves its frames behind, and gort_main comes back by
 * jumping from deep scheduler frames to its own (m->retctx).  Entered and
 * never left, those frames piled up until TSan's 65,536-frame limit (a
 * CHECK in sanitizer_stackdepot).  So a fiber is replaced before that:
 * g0's every TSAN_G0_ENTRIES switches to g0 (each leaves a few frames), a
 * G's every TSAN_G_LIVES goroutines, gort_main's every round.  Not on
 * every switch: a fiber costs two mappings, and the sieve ran for minutes. */
#define TSAN_G0_ENTRIES 2048
#define TSAN_G_LIVES 512
#define TSAN_IDLE_MAX 1024
#if defined(GORT_TSAN)
/* Idle fibers, in one pool for all Gs: a dead G gives its fiber back here
 * and whichever G starts next takes one.  They used to stay on their dead
 * Gs (at most TSAN_IDLE_MAX of them), but a free G list hands out the G
 * freed last: once that many dead Gs held fibers, every goroutine that
 * started got a G without one and created a fiber (TSan clears about
 * 770 KB for each, and maps and unmaps it), and every goroutine that died
 * destroyed one, while the fibers kept sat on Gs at the bottom of the
 * lists.  sched_stress/spawn_storm_with_resize (160,000 goroutines) took
 * most of its time in TSan's FiberCreate.  A fiber moves between
 * goroutines as it did between a G's lives: only happens-before from one
 * dead goroutine to a later one on the same fiber, never a false report. */
typedef struct {
    void *fiber;
    uint32_t lives; /* goroutines that have used it */
} idle_fiber_t;
static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;
static idle_fiber_t idle_fibers[TSAN_IDLE_MAX]; /* protected by idle_lock */
static int nidle_fibers;                         /* protected by idle_lock */

static void g0_fiber_replace(gort_m_t *m, void *f)
{
    void *old = m->tsan_g0_fiber;
    bool ours = m->tsan_g0_ours;
    m->tsan_g0_fiber = f;
    m->tsan_g0_ours = true;
    m->tsan_g0_entries = 0;
    /* Never the current fiber (callers switch first), never the thread's
     * own (TSan's state for the thread itself). */
    if (ours && old && old != __tsan_get_current_fiber())
        __tsan_destroy_fiber(old);
}
#endif

void *gort__san_main_enter(gort_m_t *m)
{
    (void)m;
#if defined(GORT_TSAN)
    void *caller = __tsan_get_current_fiber();
    void *f = __tsan_create_fiber(0);
    __tsan_switch_to_fiber(f, 0);
    g0_fiber_replace(m, f);
    return caller;
#else
    return NULL;
#endif
}

void gort__san_main_leave(gort_m_t *m, void *caller)
{
    (void)m;
    (void)caller;
#if defined(GORT_TSAN)
    void *g0f = m->tsan_g0_fiber;
    bool ours = m->tsan_g0_ours;
    __tsan_switch_to_fiber(caller, 0);
    if (ours && g0f != caller)
        __tsan_destroy_fiber(g0f);
    m->tsan_g0_fiber = caller;
    m->tsan_g0_ours = false;
#endif
}

void gort__san_g_created(gort_g_t *gp)
{
    if (RUNNING_ON_VALGRIND)
        gp->valgrind_stack_id = VALGRIND_STACK_REGISTER(gp->stack.lo, gp->stack.hi);
#if defined(GORT_TSAN)
    /* An idle fiber if there is one (replaced every TSAN_G_LIVES
     * goroutines: gort__san_g_destroyed). */
    if (!gp->tsan_fiber) {
        pthread_mutex_lock(&idle_lock);
        if (nidle_fibers > 0) {
            idle_fiber_t e = idle_fibers[--nidle_fibers];
            gp->tsan_fiber = e.fiber;
            gp->tsan_lives = e.lives;
        }
        pthread_mutex_unlock(&idle_lock);
    }
    if (!gp->tsan_fiber) {
        gp->tsan_fiber = __tsan_create_fiber(0);
        gp->tsan_lives = 0;
    }
#endif
}

void gort__san_carved(void *p, size_t n)
{
#if defined(GORT_ASAN)
    __asan_unpoison_memory_region(p, n);
    /* LeakSanitizer scans the heap, globals and thread stacks, not our
     * stack slabs: what a G placed there points to (its sleep timer, its
     * labels) would be reported leaked.  A G is never freed, nor is its
     * root region. */
    __lsan_register_root_region(p, n);
#else
    (void)p;
    (void)n;
#endif
}

void gort__san_g_destroyed(gort_g_t *gp)
{
    if (RUNNING_ON_VALGRIND && gp->valgrind_stack_id) {
        VALGRIND_STACK_DEREGISTER(gp->valgrind_stack_id);
        gp->valgrind_stack_id = 0;
    }
#if defined(GORT_TSAN)
    /* On g0's fiber (the G switched away for the last time).  The pool
     * keeps at most TSAN_IDLE_MAX fibers: TSan counts every fiber as a
     * thread and dies at 8,128, and a burst's Gs are never freed. */
    if (gp->tsan_fiber) {
        void *f = gp->tsan_fiber;
        uint32_t lives = gp->tsan_lives + 1;
        gp->tsan_fiber = NULL;
        gp->tsan_lives = 0;
        bool kept = false;
        if (lives < TSAN_G_LIVES) {
            pthread_mutex_lock(&idle_lock);
            if (nidle_fibers < TSAN_IDLE_MAX) {
                idle_fibers[nidle_fibers++] = (idle_fiber_t){f, lives};
                kept = true;
            }
            pthread_mutex_unlock(&idle_lock);
        }
        if (!kept)
            __tsan_destroy_fiber(f);
    }
#endif
}

#if defined(GORT_ASAN) || defined(GORT_TSAN)
/* g0 -> G, just before gort__gogo. */
void gort__san_g0_to_g(gort_m_t *m, gort_g_t *gp, uint32_t slow)
{
    (void)m;
    (void)slow;
    gort__cxx_switch_in(gp); /* not a sanitizer matter either (cxx.h) */
#if defined(GORT_ASAN)
    __sanitizer_start_switch_fiber(&m->g0_fake_stack, (void *)gp->stack.lo, gp->stack.hi - gp->stack.lo);
#endif
#if defined(GORT_TSAN)
    __tsan_switch_to_fiber(gp->tsan_fiber, 0);
#endif
}

/* First thing on the G after arriving from g0. */
void gort__san_after_g0_to_g(gort_g_t *gp)
{
    (void)gp;
    atomic_store_explicit(&gp->m->ing, 1, memory_order_relaxed); /* see m->ing; execute set gp->m */
#if defined(GORT_TSAN)
    __tsan_release(&gp->inrt); /* as in gort__rt_leave: for a revoke */
#endif
#if defined(GORT_ASAN)
    __sanitizer_finish_switch_fiber(gp->asan_fake_stack, NULL, NULL);
#endif
}

/* G -> g0, just before gort__mcall.  dying: the G's stack is about to be
 * reused, so ASan must drop its fake stack. */
void gort__san_g_to_g0(gort_m_t *m, gort_g_t *gp, bool dying)
{
    (void)gp;
    (void)dying;
    /* Not a sanitizer matter, but this is the one place every switch to
     * g0 passes: see m->ing. */
    atomic_store_explicit(&m->ing, 0, memory_order_relaxed);
#if defined(GORT_ASAN)
    __sanitizer_start_switch_fiber(dying ? NULL : &gp->asan_fake_stack, (void *)m->g0lo,
                                   m->g0top - m->g0lo);
#endif
#if defined(GORT_TSAN)
    /* g0 starts over at the top of its stack, leaving frames behind on its
     * fiber: now and then a fresh one. */
    if (!m->tsan_g0_ours || ++m->tsan_g0_entries >= TSAN_G0_ENTRIES) {
        void *f = __tsan_create_fiber(0);
        __tsan_switch_to_fiber(f, 0);
        g0_fiber_replace(m, f);
    } else {
        __tsan_switch_to_fiber(m->tsan_g0_fiber, 0);
    }
#endif
}

/* First thing on g0 after arriving from gp (dying: as above). */
void gort__san_after_g_to_g0(gort_m_t *m, gort_g_t *gp, bool dying)
{
    (void)m;
    gort__cxx_switch_out(gp, dying); /* the C++ runtime's state (cxx.h) */
#if defined(GORT_ASAN)
    __sanitizer_finish_switch_fiber(m->g0_fake_stack, NULL, NULL);
#endif
}
#endif
