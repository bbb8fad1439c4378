// cxx_example.cc: gort from C++17.  Goroutines started from lambdas (a
// capturing lambda goes through a small trampoline), a gort_mutex behind
// std::lock_guard (it is BasicLockable once wrapped), a channel of results,
// and an exception thrown and caught inside a goroutine.
//
//   make cxx-check    builds and runs it (build/examples/cxx_example)
#include <gort.h>

#include <cstdio>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <utility>

namespace gortxx {

// Starts any callable as a goroutine: the callable moves to the heap and
// the goroutine deletes it when it returns.
template <typename F> uint64_t go(F &&f)
{
    using Fn = std::decay_t<F>;
    auto *p = new Fn(std::forward<F>(f));
    return gort_go(
        [](void *arg) {
            std::unique_ptr<Fn> fn(static_cast<Fn *>(arg));
            (*fn)();
        },
        p);
}

// sync.Mutex as a C++ BasicLockable (std::lock_guard, std::unique_lock).
class mutex {
  public:
    void lock() { gort_mutex_lock(&m_); }
    void unlock() { gort_mutex_unlock(&m_); }
    bool try_lock() { return gort_mutex_trylock(&m_); }

  private:
    gort_mutex m_{};
};

// sync.WaitGroup with RAII for the Done: a guard that calls done on scope
// exit, exceptions included.
class waitgroup {
  public:
    void add(int64_t n) { gort_wg_add(&wg_, n); }
    void wait() { gort_wg_wait(&wg_); }
    struct done_guard {
        waitgroup &w;
        ~done_guard() { gort_wg_done(&w.wg_); }
    };

  private:
    gort_waitgroup wg_{};
};

} // namespace gortxx

namespace {

int parse(int i)
{
    if (i % 10 == 0)
        throw std::invalid_argument("multiple of ten");
    return i;
}

void body(void *)
{
    gortxx::mutex mu;
    gortxx::waitgroup wg;
    long sum = 0;
    int rejected = 0;
    gort_chan *results = gort_chan_make(sizeof(int), 16);

    for (int i = 1; i <= 100; i++) {
        wg.add(1);
        gortxx::go([&, i] {
            gortxx::waitgroup::done_guard done{wg};
            try {
                int v = parse(i);
                std::lock_guard<gortxx::mutex> hold(mu);
                sum += v;
            } catch (const std::invalid_argument &) {
                std::lock_guard<gortxx::mutex> hold(mu);
                rejected++;
            }
        });
    }
    wg.wait();

    // A capture-less lambda is a plain function pointer already.
    gort_go([](void *ch) {
        for (int i = 1; i <= 3; i++)
            gort_chan_send(static_cast<gort_chan *>(ch), &i);
        gort_chan_close(static_cast<gort_chan *>(ch));
    }, results);
    int v, got = 0;
    while (gort_chan_recv(results, &v))
        got += v;
    gort_chan_free(results);

    std::printf("sum=%ld rejected=%d channel=%d gort %s\n", sum, rejected, got, gort_version());
}

} // namespace

int main() { return gort_main(body, nullptr); }
