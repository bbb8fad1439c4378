/*
 * faults_prog.c: one short run through every call the fault shim can fail
 * (tests/faults/run drives it, with the soak and the examples).
 *
 *   gort-faults-prog PROFILE
 *
 * Goroutines enough to need new stack slabs and guards (mmap, mprotect,
 * MADV_GUARD_INSTALL), blocking calls that hand their P off (new threads:
 * pthread_create), timers (the poller: epoll_pwait2, its eventfd's
 * write), channels and a mutex (membarrier), a CPU profile written to
 * PROFILE (timer_create, timer_settime, write), a goroutine dump (write),
 * and fork+exec and posix_spawn of /bin/true waited for with gort_waitpid.
 * Prints "profile: ok" or "profile: -ERRNO" (the documented outcome of a
 * refused timer or a failed write: then PROFILE must not exist), and "ok"
 * at the end; exits 0 unless a result is wrong.
 */
#include <gort.h>
#include <gort_prof.h>
#include <gort_spawn.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define WORKERS 300
#define SLEEPERS 6

static const char *prof_path;
static int bad;

static void worker(void *arg)
{
    gort_chan *c = arg;
    long v = 0;
    for (int i = 0; i < 50; i++)
        v += i;
    gort_chan_send(c, &v);
}

static void sleeper(void *arg)
{
    gort_waitgroup *wg = arg;
    struct timespec ts = {0, 2 * 1000 * 1000};
    gort_nanosleep(&ts, NULL);
    gort_wg_done(wg);
}

static gort_mutex mu;
static long counter;

static void locker(void *arg)
{
    gort_waitgroup *wg = arg;
    for (int i = 0; i < 1000; i++) {
        gort_mutex_lock(&mu);
        counter++;
        gort_mutex_unlock(&mu);
    }
    gort_wg_done(wg);
}

static void spin_ms(int ms)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do {
        for (volatile int i = 0; i < 10000; i++)
            ;
        clock_gettime(CLOCK_MONOTONIC, &b);
    } while ((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < ms);
}

static void spawn_true(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/true", "true", (char *)NULL);
        _exit(127);
    }
    int st = -1;
    if (pid < 0 || gort_waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        printf("fork+exec: failed\n");
        bad++;
    }
    char *argv[] = {"true", NULL};
    int rc = gort_posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ);
    if (rc == 0 && (gort_waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)) {
        printf("posix_spawn: child failed\n");
        bad++;
    } else if (rc < 0) {
        printf("posix_spawn: %d\n", rc);
    }
}

static void body(void *arg)
{
    (void)arg;
    int prc = gort_cpuprofile_start(prof_path, 1000);
    gort_chan *c = gort_chan_make(sizeof(long), 16);
    for (int i = 0; i < WORKERS; i++)
        gort_go(worker, c);
    long sum = 0, v;
    for (int i = 0; i < WORKERS; i++) {
        gort_chan_recv(c, &v);
        sum += v;
    }
    if (sum != (long)WORKERS * 1225) {
        printf("sum %ld\n", sum);
        bad++;
    }
    gort_waitgroup wg = {0};
    gort_wg_add(&wg, SLEEPERS + 4);
    for (int i = 0; i < SLEEPERS; i++)
        gort_go(sleeper, &wg);
    for (int i = 0; i < 4; i++)
        gort_go(locker, &wg);
    gort_sleep(3 * 1000 * 1000);
    spin_ms(20);
    gort_wg_wait(&wg);
    if (counter != 4000) {
        printf("counter %ld\n", counter);
        bad++;
    }
    spawn_true();
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    gort_dump(devnull);
    close(devnull);
    if (prc == 0)
        prc = gort_cpuprofile_stop();
    if (prc == 0)
        printf("profile: ok\n");
    else
        printf("profile: %d (%s)\n", prc, strerror(-prc));
    gort_chan_close(c);
}

int main(int argc, char **argv)
{
    prof_path = argc > 1 ? argv[1] : "/tmp/gort-faults-prog.prof";
    gort_main(body, NULL);
    printf(bad ? "FAILED\n" : "ok\n");
    return bad ? 1 : 0;
}
