#!/usr/bin/env bash
# make install into a scratch prefix, then build a program against it
# through pkg-config and through CMake's find_package, static and shared,
# run them, check the CMake package's version rules, the man pages and the
# gdb auto-load script, and that make uninstall removes every file it
# installed.  Part of `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fail() { echo "install_check: FAILED: $*" >&2; exit 1; }

make --no-print-directory -s install PREFIX="$prefix" >/dev/null
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
cat >"$tmp/t.c" <<'C'
#include <gort.h>
#include <gort_prof.h>
#include <stdio.h>
static gort_waitgroup wg;
static _Atomic int sum;
static void add(void *a) { sum += (int)(long)a; gort_wg_done(&wg); }
static void body(void *a)
{
    (void)a;
    gort_ctx *c = gort_ctx_with_cancel(gort_ctx_background()); /* gort_ctx.h */
    for (long i = 1; i <= 100; i++) {
        gort_wg_add(&wg, 1);
        gort_go(add, (void *)i);
    }
    gort_wg_wait(&wg);
    gort_ctx_cancel(c);
    gort_ctx_free(c);
    printf("sum=%d\n", sum);
}
int main(void) { return gort_main(body, NULL); }
C
# The command README gives, word for word (it links libgort.so, with
# every private dependency listed), then a fully static libgort.a link.
cc "$tmp/t.c" $(pkg-config --cflags --libs --static gort) -Wl,-rpath,"$prefix/lib" -o "$tmp/t_readme" \
    || fail "cc x.c \$(pkg-config --cflags --libs --static gort)"
[ "$("$tmp/t_readme")" = "sum=5050" ] || fail "README command's program output"
cflags=$(pkg-config --cflags gort)
cc -Wall -Werror $cflags "$tmp/t.c" -o "$tmp/t_static" $(pkg-config --libs --static gort | sed 's/-lgort/-l:libgort.a/') \
    || fail "static link through pkg-config"
cc -Wall -Werror $cflags "$tmp/t.c" -o "$tmp/t_shared" $(pkg-config --libs gort) -Wl,-rpath,"$prefix/lib" \
    || fail "shared link through pkg-config"
[ "$("$tmp/t_static")" = "sum=5050" ] || fail "static program output"
[ "$("$tmp/t_shared")" = "sum=5050" ] || fail "shared program output"
# (ldd's output is captured first: under pipefail, grep -q closing the pipe
# early would fail the pipeline now and then.)
libs=$(ldd "$tmp/t_shared")
grep -q "$prefix/lib/libgort.so" <<<"$libs" || fail "shared program does not use the installed libgort.so"
"$prefix/bin/gortprof" --help >/dev/null || fail "installed gortprof --help"
want_version=$(printf '#include <gort.h>\nGORT_VERSION_STRING\n' | cc -E -P $cflags - | tail -n 1 | tr -d '" ')
[ "$("$prefix/bin/gortprof" --version)" = "gortprof $want_version" ] || fail "gortprof --version"
[ "$(pkg-config --modversion gort)" = "$want_version" ] || fail "gort.pc's version"

# CMake: find_package(gort 0.1 REQUIRED), gort::gort and gort::gort_static.
if command -v cmake >/dev/null; then
    mkdir -p "$tmp/cm"
    cp "$tmp/t.c" "$tmp/cm/t.c"
    cat >"$tmp/cm/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.13)
project(consumer C)
find_package(gort 0.1 REQUIRED)
add_executable(t_shared t.c)
target_link_libraries(t_shared PRIVATE gort::gort)
add_executable(t_static t.c)
target_link_libraries(t_static PRIVATE gort::gort_static)
CMAKE
    cmake -S "$tmp/cm" -B "$tmp/cm/b" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >"$tmp/cm.log" 2>&1 \
        || { cat "$tmp/cm.log"; fail "cmake configure with find_package(gort 0.1 REQUIRED)"; }
    cmake --build "$tmp/cm/b" >>"$tmp/cm.log" 2>&1 || { cat "$tmp/cm.log"; fail "cmake --build"; }
    [ "$("$tmp/cm/b/t_shared")" = "sum=5050" ] || fail "CMake gort::gort program output"
    [ "$("$tmp/cm/b/t_static")" = "sum=5050" ] || fail "CMake gort::gort_static program output"
    libs=$(ldd "$tmp/cm/b/t_shared")
    grep -q "$prefix/lib/libgort.so" <<<"$libs" || fail "gort::gort does not link the installed libgort.so"
    libs=$(ldd "$tmp/cm/b/t_static")
    ! grep -q libgort <<<"$libs" || fail "gort::gort_static links libgort.so"
    # The version file: same major and minor (below 1.0), not newer.
    major=${want_version%%.*}
    for req in "$major.99" "$((major + 1)).0"; do
        printf 'cmake_minimum_required(VERSION 3.13)\nproject(v C)\nfind_package(gort %s QUIET)\nif(gort_FOUND)\n  message(FATAL_ERROR "accepted")\nendif()\n' \
            "$req" >"$tmp/cm/CMakeLists.txt"
        rm -rf "$tmp/cm/b"
        cmake -S "$tmp/cm" -B "$tmp/cm/b" -DCMAKE_PREFIX_PATH="$prefix" >"$tmp/cm.log" 2>&1 \
            || fail "find_package(gort $req) accepted version $want_version"
    done
    cmake_note="CMake static and shared, "
else
    cmake_note="(no cmake: CMake consumer skipped) "
fi

# Man pages: one per API family, and a link page per function name.
[ -f "$prefix/share/man/man3/gort_chan.3" ] && [ -f "$prefix/share/man/man3/gort_chan_send.3" ] \
    && [ -f "$prefix/share/man/man7/gort.7" ] && [ -f "$prefix/share/man/man1/gortprof.1" ] || fail "man pages not installed"
# The gdb extension sits where gdb auto-loads it for the installed library,
# and where libgort.a's .debug_gdb_scripts entry points.
gdbpy="$prefix/share/gdb/auto-load$prefix/lib/libgort.so.$want_version-gdb.py"
[ -f "$gdbpy" ] || fail "gdb auto-load script not at $gdbpy"
if command -v readelf >/dev/null; then
    sect=$(readelf -p .debug_gdb_scripts "$tmp/t_static")
    grep -qF "$gdbpy" <<<"$sect" || fail "static program's .debug_gdb_scripts does not name $gdbpy"
fi

# The headers, inline fast paths included, are clean under -Wpedantic in
# C99 and C++ too (an anonymous struct in gort_mutex once was not).
cat >"$tmp/h.c" <<'C'
#include <gort.h>
#include <gort_prof.h>
void f(gort_mutex *m);
void f(gort_mutex *m) { gort_mutex_lock(m); gort_mutex_unlock(m); }
C
cc -std=c99 -Wall -Wextra -Wpedantic -Werror $cflags -fsyntax-only "$tmp/h.c" || fail "headers under -std=c99 -Wpedantic"
if command -v c++ >/dev/null; then
    cp "$tmp/h.c" "$tmp/h.cc"
    c++ -std=c++17 -Wall -Wextra -Wpedantic -Werror $cflags -fsyntax-only "$tmp/h.cc" || fail "headers as C++17 under -Wpedantic"
fi

make --no-print-directory -s uninstall PREFIX="$prefix" >/dev/null
left=$(find "$prefix" -type f -o -type l)
[ -z "$left" ] || fail "uninstall left: $left"
echo "install_check: ok (headers, also -Wpedantic C99/C++, libgort.a and libgort.so through pkg-config, ${cmake_note}man pages, gdb auto-load script, gortprof, uninstall)"
