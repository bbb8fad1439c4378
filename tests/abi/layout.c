/*
 * layout.c: the layout of the types a program allocates and the inline
 * mutex fast path reads (gort.h), printed for make abi-check, which
 * compares it with abi/layout.txt.  abidiff does not count a change of
 * these as incompatible (they cross the library boundary only by
 * pointer), yet a program built against the old header embeds the old
 * sizes and, for gort_mutex, reads the old offsets inline.  gort_stats is
 * left out: it may grow at the end (gort_stats_get_sized).
 */
#include <gort.h>
#include <gort_net.h>
#include <stddef.h>
#include <stdio.h>

#define T(t) printf("%s size %zu align %zu\n", #t, sizeof(t), _Alignof(t))
#define F(t, f) printf("%s.%s offset %zu size %zu\n", #t, #f, offsetof(t, f), sizeof(((t *)0)->f))

int main(void)
{
    T(gort_waitgroup);
    F(gort_waitgroup, _state);
    F(gort_waitgroup, _sema);
    T(gort_mutex);
    F(gort_mutex, _u._state);
    F(gort_mutex, _u._b._locked);
    F(gort_mutex, _u._b._flags);
    F(gort_mutex, _u._b._waiters);
    F(gort_mutex, _sema);
    T(gort_rwmutex);
    F(gort_rwmutex, _w);
    F(gort_rwmutex, _writer_sem);
    F(gort_rwmutex, _reader_sem);
    F(gort_rwmutex, _reader_count);
    F(gort_rwmutex, _reader_wait);
    T(gort_cond);
    F(gort_cond, _wait);
    F(gort_cond, _notify);
    F(gort_cond, _head);
    F(gort_cond, _tail);
    F(gort_cond, _lock);
    T(gort_once);
    F(gort_once, _done);
    F(gort_once, _m);
    T(gort_sema);
    F(gort_sema, _count);
    T(gort_case);
    F(gort_case, ch);
    F(gort_case, op);
    F(gort_case, elem);
    F(gort_case, ok);
    T(gort_goroutine_info);
    F(gort_goroutine_info, goid);
    F(gort_goroutine_info, parent_goid);
    F(gort_goroutine_info, created_pc);
    T(gort_leak_info);
    F(gort_leak_info, goid);
    F(gort_leak_info, parent_goid);
    F(gort_leak_info, created_pc);
    T(gort_fd);
    F(gort_fd, h);
    printf("GORT_SEND %d GORT_RECV %d\n", GORT_SEND, GORT_RECV);
    return 0;
}
