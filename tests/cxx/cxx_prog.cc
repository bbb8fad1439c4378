// cxx_prog.cc: C++ exceptions in goroutines (runtime/cxx.c), run by
// tests/cxx_test.c.  Built by the Makefile against libgort.a and
// libgort.so, the way a user builds (only include/).
//
//   cxx-prog catch ROUNDS     8 goroutines each throw and catch ROUNDS
//                             exceptions, two calls deep, yielding between;
//                             prints "ok caught=N"
//   cxx-prog inflight ROUNDS  8 goroutines block (sleep, yield) inside a
//                             catch block and in a destructor the unwind
//                             runs, then check the C++ runtime's per-thread
//                             state is still theirs: `throw;` rethrows their
//                             own exception, uncaught_exceptions() counts
//                             theirs; prints "ok inflight=N"
//   cxx-prog escape KIND      a goroutine lets an exception escape: KIND is
//                             std (std::runtime_error), nested (app::Error),
//                             rethrow (std::rethrow_exception), int
#include <gort.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>

namespace app {
struct Error {
    int code;
};
} // namespace app

namespace {

gort_waitgroup wg;
std::atomic<long> caught{0};
int rounds;
const char *kind;

__attribute__((noinline)) void thrower(int i)
{
    if (i % 2)
        throw std::runtime_error("odd " + std::to_string(i));
    throw app::Error{i};
}

__attribute__((noinline)) void middle(int i)
{
    std::string keep = "destructor runs during the unwind";
    thrower(i);
}

void catcher(void *)
{
    for (int i = 0; i < rounds; i++) {
        try {
            middle(i);
        } catch (const std::runtime_error &e) {
            if (std::strncmp(e.what(), "odd ", 4) == 0)
                caught++;
        } catch (const app::Error &e) {
            if (e.code == i)
                caught++;
        }
        if (i % 16 == 0)
            gort_yield();
    }
    gort_wg_done(&wg);
}

std::atomic<long> inflight_ok{0}, inflight_bad{0};

// Runs while the exception unwinds through its frame.
struct BlockingGuard {
    ~BlockingGuard()
    {
        gort_sleep(20000);
        if (std::uncaught_exceptions() == 1)
            inflight_ok++;
        else
            inflight_bad++;
    }
};

__attribute__((noinline)) void throw_mine(unsigned long long me, int i)
{
    BlockingGuard g;
    throw std::runtime_error(std::to_string(me) + "/" + std::to_string(i));
}

void inflight(void *)
{
    unsigned long long me = gort_self();
    for (int i = 0; i < rounds; i++) {
        std::string want = std::to_string(me) + "/" + std::to_string(i);
        try {
            throw_mine(me, i);
        } catch (const std::runtime_error &) {
            if (i % 2)
                gort_sleep(20000);
            else
                gort_yield();
            try {
                throw; // the exception this goroutine is handling
            } catch (const std::runtime_error &again) {
                if (want == again.what())
                    inflight_ok++;
                else
                    inflight_bad++;
            }
        }
        if (std::uncaught_exceptions() != 0)
            inflight_bad++;
    }
    gort_wg_done(&wg);
}

__attribute__((noinline)) void escaper(void *)
{
    std::printf("escaping goroutine %llu\n", (unsigned long long)gort_self());
    std::fflush(stdout);
    if (!std::strcmp(kind, "std"))
        throw std::runtime_error("boom");
    if (!std::strcmp(kind, "nested"))
        throw app::Error{7};
    if (!std::strcmp(kind, "rethrow")) {
        std::exception_ptr p;
        try {
            throw std::logic_error("again");
        } catch (...) {
            p = std::current_exception();
        }
        std::rethrow_exception(p);
    }
    throw 42;
}

void body(void *)
{
    if (!std::strcmp(kind, "inflight")) {
        for (int i = 0; i < 8; i++) {
            gort_wg_add(&wg, 1);
            gort_go(inflight, nullptr);
        }
        gort_wg_wait(&wg);
        std::printf("%s inflight=%ld bad=%ld\n", inflight_bad ? "FAIL" : "ok", inflight_ok.load(),
                    inflight_bad.load());
        return;
    }
    if (!std::strcmp(kind, "catch")) {
        for (int i = 0; i < 8; i++) {
            gort_wg_add(&wg, 1);
            gort_go(catcher, nullptr);
        }
        gort_wg_wait(&wg);
        std::printf("ok caught=%ld\n", caught.load());
        return;
    }
    gort_wg_add(&wg, 1);
    gort_go(escaper, nullptr);
    gort_wg_wait(&wg); // never returns: the escape is fatal
    std::printf("not reached\n");
}

} // namespace

int main(int argc, char **argv)
{
    if (argc < 3) {
        std::fprintf(stderr, "usage: cxx-prog catch|inflight ROUNDS | escape KIND\n");
        return 2;
    }
    if (!std::strcmp(argv[1], "catch") || !std::strcmp(argv[1], "inflight")) {
        kind = argv[1];
        rounds = std::atoi(argv[2]);
    } else {
        kind = argv[2];
    }
    return gort_main(body, nullptr);
}
