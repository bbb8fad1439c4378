#!/usr/bin/env bash
# make install into a scratch prefix, then build a program against it
# through pkg-config, static and shared, run both, and check that make
# uninstall removes every file it installed.  Part of `make test`.
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
ldd "$tmp/t_shared" | grep -q "$prefix/lib/libgort.so" || fail "shared program does not use the installed libgort.so"
"$prefix/bin/gortprof" --help >/dev/null || fail "installed gortprof --help"

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
echo "install_check: ok (headers, also -Wpedantic C99/C++, libgort.a and libgort.so through pkg-config, gortprof, uninstall)"
