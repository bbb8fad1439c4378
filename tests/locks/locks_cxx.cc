// locks_cxx.cc: std::recursive_mutex held across preemption (libstdc++
// takes it through pthread_mutex_lock, which libgort interposes).  Built
// by the Makefile against libgort.a; tests/locks_test.c runs it at
// GORT_SLICE_US=100 GORT_MAXPROCS=2.  Four goroutines take the mutex twice
// (nested) ROUNDS times each around ~30 us of work: no hang, no exception,
// never two inside at once, never a change of thread while it is held.
#include <gort.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

std::recursive_mutex mu;
gort_waitgroup wg;
std::atomic<int> inside{0}, max_inside{0}, moved{0}, errors{0};
int rounds;
std::atomic<unsigned long> sink;

pid_t tid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

void busy(std::chrono::nanoseconds d)
{
    auto end = std::chrono::steady_clock::now() + d;
    unsigned long x = 1;
    while (std::chrono::steady_clock::now() < end)
        for (int i = 0; i < 64; i++)
            x = x * 6364136223846793005UL + 1442695040888963407UL;
    sink.store(x, std::memory_order_relaxed);
}

void worker(void *)
{
    for (int i = 0; i < rounds; i++) {
        try {
            std::lock_guard<std::recursive_mutex> outer(mu);
            std::lock_guard<std::recursive_mutex> inner(mu);
            pid_t t0 = tid();
            int n = ++inside;
            int m = max_inside.load();
            while (n > m && !max_inside.compare_exchange_weak(m, n))
                ;
            busy(std::chrono::microseconds(30));
            --inside;
            if (tid() != t0)
                ++moved;
        } catch (const std::exception &e) {
            std::fprintf(stderr, "exception: %s\n", e.what());
            ++errors;
        }
        busy(std::chrono::microseconds(10));
    }
    gort_wg_done(&wg);
}

void body(void *)
{
    gort_wg_add(&wg, 4);
    for (int i = 0; i < 4; i++)
        gort_go(worker, nullptr);
    gort_wg_wait(&wg);
    gort_stats s;
    gort_stats_get(&s);
    std::printf("%s kind=recursive_mutex rounds=%d errors=%d max_inside=%d moved_held=%d refused_lock=%llu\n",
                errors || max_inside != 1 || moved ? "FAIL" : "ok", rounds, errors.load(), max_inside.load(),
                moved.load(), static_cast<unsigned long long>(s.preempt_refused_lock));
}

} // namespace

int main(int argc, char **argv)
{
    rounds = argc > 1 ? std::atoi(argv[1]) : 1000;
    gort_main(body, nullptr);
    std::fflush(stdout);
    return errors || max_inside != 1 || moved ? 1 : 0;
}
