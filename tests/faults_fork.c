/*
 * faults_fork.c: every public call in a forked child (faults suite,
 * faults/fork_child_every_call).  Issue 25 asks that any gort call in the
 * child of a fork end the child at once with
 *   fatal error: gort runtime used in a forked child (only exec or _exit
 *   are allowed after fork)
 * so the table below names each function of the public headers, the
 * inline mutex fast paths of gort.h included, and gt_fork_calls forks
 * once per entry, from a goroutine or from a plain thread while goroutines
 * run, and checks how each child ended.  A C lock call (libgort
 * interposes pthread_mutex_lock) is not a gort call: that child must
 * live.  A new public function belongs in the table.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gort_net.h"
#include "gort_prof.h"
#include "gort_spawn.h"
#include "faults_fork.h"

extern char **environ;

/* Objects made before the forks, so that each call has a valid argument. */
static gort_mutex held_mu, free_mu;
static gort_rwmutex rw;
static gort_cond cond;
static gort_once once;
static gort_sema sema;
static gort_waitgroup wg;
static gort_chan *ch, *spare_ch;
static gort_timer *tm;
static gort_ctx *ctx;
static gort_errgroup *eg;
static gort_leak_mark *lm;
static gort_fd pfd;
static int pipefd[2], sockfd;

static void nop(void *a) { (void)a; }
static int eg_fn(gort_ctx *c, void *a)
{
    (void)a;
    (void)c;
    return 0;
}

#define C(name, stmt)                \
    static void fc_##name(void)      \
    {                                \
        stmt;                        \
    }
C(version, (void)gort_version())
C(main, gort_main(nop, NULL))
C(go, gort_go(nop, NULL))
C(yield, gort_yield())
C(sleep, gort_sleep(1000))
C(nanotime, (void)gort_nanotime())
C(self, (void)gort_self())
C(maxprocs, (void)gort_maxprocs(0))
C(numgoroutine, (void)gort_numgoroutine())
C(goroutines, (void)gort_goroutines(NULL, 0))
C(numcpu, (void)gort_numcpu())
C(lock_thread, gort_lock_thread())
C(unlock_thread, gort_unlock_thread())
C(preempt_off, gort_preempt_off())
C(preempt_on, gort_preempt_on())
C(wg_add, gort_wg_add(&wg, 1))
C(wg_done, gort_wg_done(&wg))
C(wg_wait, gort_wg_wait(&wg))
C(chan_make, (void)gort_chan_make(8, 1))
C(chan_send, gort_chan_send(ch, &(long){1}))
C(chan_recv, (void)gort_chan_recv(ch, NULL))
C(chan_close, gort_chan_close(ch))
C(chan_free, gort_chan_free(spare_ch))
C(chan_len, (void)gort_chan_len(ch))
C(chan_cap, (void)gort_chan_cap(ch))
C(chan_trysend, (void)gort_chan_trysend(ch, &(long){1}))
C(chan_tryrecv, (void)gort_chan_tryrecv(ch, NULL, NULL))
C(select, (void)gort_select(&(gort_case){.ch = ch, .op = GORT_RECV}, 1, false))
C(timer_new, (void)gort_timer_new(1000000))
C(ticker_new, (void)gort_ticker_new(1000000))
C(timer_chan, (void)gort_timer_chan(tm))
C(timer_stop, (void)gort_timer_stop(tm))
C(timer_reset, (void)gort_timer_reset(tm, 1000000))
C(timer_free, gort_timer_free(tm))
C(mutex_lock_inline, gort_mutex_lock(&free_mu))
C(mutex_unlock_inline, gort_mutex_unlock(&held_mu))
C(mutex_lock, (gort_mutex_lock)(&free_mu))
C(mutex_unlock, (gort_mutex_unlock)(&held_mu))
C(mutex_trylock, (void)gort_mutex_trylock(&free_mu))
C(rwmutex_rlock, gort_rwmutex_rlock(&rw))
C(rwmutex_runlock, gort_rwmutex_runlock(&rw))
C(rwmutex_lock, gort_rwmutex_lock(&rw))
C(rwmutex_unlock, gort_rwmutex_unlock(&rw))
C(rwmutex_tryrlock, (void)gort_rwmutex_tryrlock(&rw))
C(rwmutex_trylock, (void)gort_rwmutex_trylock(&rw))
C(cond_wait, gort_cond_wait(&cond, &held_mu))
C(cond_signal, gort_cond_signal(&cond))
C(cond_broadcast, gort_cond_broadcast(&cond))
C(once_do, gort_once_do(&once, nop, NULL))
C(sema_acquire, gort_sema_acquire(&sema))
C(sema_tryacquire, (void)gort_sema_tryacquire(&sema))
C(sema_release, gort_sema_release(&sema, 1))
C(syscall_enter, gort_syscall_enter())
C(syscall_exit, gort_syscall_exit())
C(read, (void)gort_read(pipefd[0], &(char){0}, 0))
C(write, (void)gort_write(pipefd[1], "", 0))
C(nanosleep, (void)gort_nanosleep(&(struct timespec){0, 1000}, NULL))
C(poll, (void)gort_poll(NULL, 0, 0))
C(accept, (void)gort_accept(-1, NULL, NULL))
C(connect, (void)gort_connect(-1, NULL, 0))
C(recv, (void)gort_recv(sockfd, NULL, 0, MSG_DONTWAIT))
C(send, (void)gort_send(sockfd, "", 0, MSG_DONTWAIT))
C(waitpid, (void)gort_waitpid(-1, NULL, WNOHANG))
C(stack, (void)gort_stack(NULL, 0, false))
C(dump, gort_dump(-1))
C(stats_get, gort_stats_get(&(gort_stats){0}))
C(stats_get_sized, gort_stats_get_sized(&(gort_stats){0}, sizeof(gort_stats)))
C(defer, gort_defer(nop, NULL))
C(panic, gort_panic("in the child"))
C(recover, (void)gort_recover())
C(call, (void)gort_call(nop, NULL))
C(panicking, (void)gort_panicking())
C(ctx_background, (void)gort_ctx_background())
C(ctx_with_cancel, (void)gort_ctx_with_cancel(ctx))
C(ctx_with_deadline, (void)gort_ctx_with_deadline(ctx, 1))
C(ctx_with_timeout, (void)gort_ctx_with_timeout(ctx, 1))
C(ctx_with_value, (void)gort_ctx_with_value(ctx, &ctx, NULL))
C(ctx_cancel, gort_ctx_cancel(ctx))
C(ctx_cancel_cause, gort_ctx_cancel_cause(ctx, 1))
C(ctx_done, (void)gort_ctx_done(ctx))
C(ctx_err, (void)gort_ctx_err(ctx))
C(ctx_cause, (void)gort_ctx_cause(ctx))
C(ctx_deadline, (void)gort_ctx_deadline(ctx, NULL))
C(ctx_value, (void)gort_ctx_value(ctx, &ctx))
C(ctx_sleep, (void)gort_ctx_sleep(ctx, 1000))
C(ctx_ref, (void)gort_ctx_ref(ctx))
C(ctx_unref, gort_ctx_unref(ctx))
C(ctx_free, gort_ctx_free(ctx))
C(errgroup_new, (void)gort_errgroup_new(NULL))
C(errgroup_ctx, (void)gort_errgroup_ctx(eg))
C(errgroup_set_limit, gort_errgroup_set_limit(eg, 2))
C(errgroup_go, gort_errgroup_go(eg, eg_fn, NULL))
C(errgroup_trygo, (void)gort_errgroup_trygo(eg, eg_fn, NULL))
C(errgroup_wait, (void)gort_errgroup_wait(eg))
C(errgroup_free, gort_errgroup_free(eg))
C(leak_mark_new, (void)gort_leak_mark_new())
C(leak_mark_free, gort_leak_mark_free(lm))
C(leak_list, (void)gort_leak_list(lm, NULL, 0))
C(leak_check, (void)gort_leak_check(lm, 0, NULL))
C(fd_open, (void)gort_fd_open(dup(pipefd[0]), &(gort_fd){0}))
C(fd_read, (void)gort_fd_read(pfd, &(char){0}, 0))
C(fd_write, (void)gort_fd_write(pfd, "", 0))
C(fd_accept, (void)gort_fd_accept(pfd, &(gort_fd){0}, NULL, NULL))
C(fd_connect, (void)gort_fd_connect(pfd, NULL, 0))
C(fd_wait_read, (void)gort_fd_wait_read(pfd))
C(fd_wait_write, (void)gort_fd_wait_write(pfd))
C(fd_set_deadline, (void)gort_fd_set_deadline(pfd, 1))
C(fd_set_read_deadline, (void)gort_fd_set_read_deadline(pfd, 1))
C(fd_set_write_deadline, (void)gort_fd_set_write_deadline(pfd, 1))
C(fd_close, (void)gort_fd_close(pfd))
C(fd_sysfd, (void)gort_fd_sysfd(pfd))
C(fd_local_addr, (void)gort_fd_local_addr(pfd, (char[64]){0}, 64))
C(net_listen, (void)gort_net_listen("tcp", "127.0.0.1:0", &(gort_fd){0}))
C(net_dial, (void)gort_net_dial("tcp", "127.0.0.1:1", 1000000, &(gort_fd){0}))
C(cpuprofile_start, (void)gort_cpuprofile_start("/dev/null", 100))
C(cpuprofile_stop, (void)gort_cpuprofile_stop())
C(profile_write, (void)gort_profile_write("goroutine", -1, 1))
C(set_block_profile_rate, gort_set_block_profile_rate(0))
C(set_mutex_profile_fraction, (void)gort_set_mutex_profile_fraction(-1))
C(label_set, gort_label_set("k", "v"))
C(label_get, (void)gort_label_get("k"))
C(label_do, gort_label_do((const char *const[]){"k", "v"}, 2, nop, NULL))
C(trace_start, (void)gort_trace_start(-1))
C(trace_stop, (void)gort_trace_stop())
C(trace_enabled, (void)gort_trace_enabled())
C(trace_task, (void)gort_trace_task(0, "t"))
C(trace_task_end, gort_trace_task_end(1))
C(trace_region_begin, gort_trace_region_begin(0, "r"))
C(trace_region_end, gort_trace_region_end(0, "r"))
C(trace_log, gort_trace_log(0, "c", "m"))
C(debug_serve, (void)gort_debug_serve("127.0.0.1:0"))
C(posix_spawn, (void)gort_posix_spawn(&(pid_t){0}, "/bin/true", NULL, NULL, (char *[]){"true", NULL}, environ))
C(posix_spawnp, (void)gort_posix_spawnp(&(pid_t){0}, "true", NULL, NULL, (char *[]){"true", NULL}, environ))
#undef C
/* Not gort calls: a C lock (libgort interposes pthread_mutex_lock), and
 * exit(3), whose atexit work gort skips in a child (even GORT_DEBUG=
 * lockstat's report).  The child lives. */
static void fc_c_lock(void)
{
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&m);
    pthread_mutex_unlock(&m);
}
static void fc_exit(void) { exit(0); }

#define E(name) {#name, fc_##name}
static const struct {
    const char *name;
    void (*fn)(void);
} calls[] = {
    E(version), E(main), E(go), E(yield), E(sleep), E(nanotime), E(self), E(maxprocs), E(numgoroutine),
    E(goroutines), E(numcpu), E(lock_thread), E(unlock_thread), E(preempt_off), E(preempt_on), E(wg_add),
    E(wg_done), E(wg_wait), E(chan_make), E(chan_send), E(chan_recv), E(chan_close), E(chan_free), E(chan_len),
    E(chan_cap), E(chan_trysend), E(chan_tryrecv), E(select), E(timer_new), E(ticker_new), E(timer_chan),
    E(timer_stop), E(timer_reset), E(timer_free), E(mutex_lock_inline), E(mutex_unlock_inline), E(mutex_lock),
    E(mutex_unlock), E(mutex_trylock), E(rwmutex_rlock), E(rwmutex_runlock), E(rwmutex_lock),
    E(rwmutex_unlock), E(rwmutex_tryrlock), E(rwmutex_trylock), E(cond_wait), E(cond_signal),
    E(cond_broadcast), E(once_do), E(sema_acquire), E(sema_tryacquire), E(sema_release), E(syscall_enter),
    E(syscall_exit), E(read), E(write), E(nanosleep), E(poll), E(accept), E(connect), E(recv), E(send),
    E(waitpid), E(stack), E(dump), E(stats_get), E(stats_get_sized), E(defer), E(panic), E(recover), E(call),
    E(panicking), E(ctx_background), E(ctx_with_cancel), E(ctx_with_deadline), E(ctx_with_timeout),
    E(ctx_with_value), E(ctx_cancel), E(ctx_cancel_cause), E(ctx_done), E(ctx_err), E(ctx_cause),
    E(ctx_deadline), E(ctx_value), E(ctx_sleep), E(ctx_ref), E(ctx_unref), E(ctx_free), E(errgroup_new),
    E(errgroup_ctx), E(errgroup_set_limit), E(errgroup_go), E(errgroup_trygo), E(errgroup_wait),
    E(errgroup_free), E(leak_mark_new), E(leak_mark_free), E(leak_list), E(leak_check), E(fd_open), E(fd_read),
    E(fd_write), E(fd_accept), E(fd_connect), E(fd_wait_read), E(fd_wait_write), E(fd_set_deadline),
    E(fd_set_read_deadline), E(fd_set_write_deadline), E(fd_close), E(fd_sysfd), E(fd_local_addr),
    E(net_listen), E(net_dial), E(cpuprofile_start), E(cpuprofile_stop), E(profile_write),
    E(set_block_profile_rate), E(set_mutex_profile_fraction), E(label_set), E(label_get), E(label_do),
    E(trace_start), E(trace_stop), E(trace_enabled), E(trace_task), E(trace_task_end), E(trace_region_begin),
    E(trace_region_end), E(trace_log), E(debug_serve), E(posix_spawn), E(posix_spawnp),
};
static const struct {
    const char *name;
    void (*fn)(void);
} lives[] = {E(c_lock), E(exit)};
#undef E

static const char forked_msg[] =
    "fatal error: gort runtime used in a forked child (only exec or _exit are allowed after fork)\n";

/* One fork per entry; the child's stderr goes to a pipe the parent reads
 * after the child ended (the message fits the pipe's buffer).  A call that
 * is not caught and blocks is ended by the alarm. */
static void fork_all(bool goroutine, int *bad)
{
    size_t n = sizeof calls / sizeof calls[0], nl = sizeof lives / sizeof lives[0];
    for (size_t i = 0; i < n + nl; i++) {
        const char *name = i < n ? calls[i].name : lives[i - n].name;
        void (*fn)(void) = i < n ? calls[i].fn : lives[i - n].fn;
        int p[2];
        if (pipe(p) != 0) {
            (*bad)++;
            return;
        }
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            dup2(p[1], 2);
            alarm(5);
            fn();
            _exit(0);
        }
        close(p[1]);
        int st = -1;
        pid_t w = goroutine ? gort_waitpid(pid, &st, 0) : waitpid(pid, &st, 0);
        char err[512] = "";
        ssize_t k = read(p[0], err, sizeof err - 1);
        err[k > 0 ? k : 0] = 0;
        close(p[0]);
        bool died = w == pid && WIFEXITED(st) && WEXITSTATUS(st) == 2 && strcmp(err, forked_msg) == 0;
        /* (LeakSanitizer may warn at the child's exit: only gort's words count.) */
        bool lived = w == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0 && !strstr(err, "fatal error");
        if (i < n ? !died : !lived) {
            printf("%s in a child forked by a %s: ", name, goroutine ? "goroutine" : "plain thread");
            if (WIFSIGNALED(st))
                printf("killed by signal %d\n", WTERMSIG(st));
            else
                printf("exit %d, stderr \"%.200s\"\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1, err);
            (*bad)++;
        }
    }
}

static void *plain_thread(void *a)
{
    fork_all(false, a);
    return NULL;
}

static _Atomic int stop;
static void spinner(void *a)
{
    (void)a;
    while (!atomic_load_explicit(&stop, memory_order_relaxed))
        ;
}

void gt_fork_calls(void *arg)
{
    int *bad = arg;
    gort_go(spinner, NULL); /* forks while another goroutine runs */
    gort_mutex_lock(&held_mu);
    gort_sema_release(&sema, 1);
    gort_wg_add(&wg, 1);
    ch = gort_chan_make(sizeof(long), 4);
    gort_chan_send(ch, &(long){1});
    spare_ch = gort_chan_make(sizeof(long), 1);
    tm = gort_timer_new(60LL * 1000 * 1000 * 1000);
    ctx = gort_ctx_with_cancel(gort_ctx_background());
    eg = gort_errgroup_new(NULL);
    lm = gort_leak_mark_new();
    int sv[2];
    if (pipe(pipefd) != 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 || gort_fd_open(sv[0], &pfd) != 0) {
        (*bad)++;
        return;
    }
    sockfd = sv[1];
    fork_all(true, bad);
    pthread_t t;
    pthread_create(&t, NULL, plain_thread, bad);
    gort_syscall_enter();
    pthread_join(t, NULL);
    gort_syscall_exit();
    atomic_store(&stop, 1);
    printf("forked %zu calls twice\n", sizeof calls / sizeof calls[0]);
}
