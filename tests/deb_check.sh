#!/usr/bin/env bash
# tests/deb_check.sh OUTDIR: make deb.  Builds the Debian packages the way
# a packager does, from a clean copy of the tracked files (so neither this
# tree nor its build/ takes part): dpkg-buildpackage -b -us -uc, then
# lintian (any error fails), then installs the packages in a scratch root
# (dpkg-deb -x: what dpkg would unpack, without touching this machine's
# package database), builds a program against them through pkg-config,
# static and shared, runs both, checks gortprof, the man pages and the gdb
# auto-load script, and removes the root.
#   DEB_CHECK_SYSTEM=1 tests/deb_check.sh OUTDIR   installs them on this
#   machine with apt-get instead, builds with plain pkg-config, and removes
#   them again (for CI machines of its own).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-build/deb}")
fail() { echo "deb_check: FAILED: $*" >&2; exit 1; }
for t in dpkg-buildpackage dh lintian; do
    command -v $t >/dev/null || fail "$t is missing (scripts/deps.sh installs debhelper, lintian)"
done
version=$(dpkg-parsechangelog -l debian/changelog -S Version)
triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
rm -rf "$out"
src="$out/src/gort-$version"
mkdir -p "$src"
# Tracked files and new ones not ignored: what a clone has once they are committed.
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$src"

echo "deb_check: dpkg-buildpackage -b -us -uc in $src"
(cd "$src" && dpkg-buildpackage -b -us -uc >"$out/build.log" 2>&1) || { tail -40 "$out/build.log"; fail "dpkg-buildpackage"; }
mv "$out"/src/*.deb "$out"/src/*.changes "$out"/src/*.buildinfo "$out"/ 2>/dev/null
debs=()
for p in libgort0 libgort-dev gortprof; do
    [ -f "$out/${p}_${version}_amd64.deb" ] || fail "no $p package"
    debs+=("$out/${p}_${version}_amd64.deb")
done

echo "deb_check: lintian"
lintian --fail-on error --tag-display-limit 0 "$out"/*.changes >"$out/lintian.txt" 2>&1 || { cat "$out/lintian.txt"; fail "lintian reports errors"; }
sed 's/^/  /' "$out/lintian.txt"

cat >"$out/t.c" <<'C'
#include <gort.h>
#include <stdio.h>
#include <string.h>
static gort_waitgroup wg;
static _Atomic int sum;
static void add(void *a) { sum += (int)(long)a; gort_wg_done(&wg); }
static void body(void *a)
{
    (void)a;
    for (long i = 1; i <= 100; i++) {
        gort_wg_add(&wg, 1);
        gort_go(add, (void *)i);
    }
    gort_wg_wait(&wg);
    printf("sum=%d version=%s\n", sum, strcmp(gort_version(), GORT_VERSION_STRING) ? "differs" : "same");
}
int main(void) { return gort_main(body, NULL); }
C
want="sum=5050 version=same"

if [ "${DEB_CHECK_SYSTEM:-0}" = 1 ]; then
    echo "deb_check: installing on this machine"
    apt-get install -y -qq "${debs[@]}" >"$out/install.log" 2>&1 || { cat "$out/install.log"; fail "apt-get install"; }
    trap 'apt-get remove -y -qq libgort-dev gortprof libgort0 >/dev/null 2>&1 || true' EXIT
    cc -Wall -Werror "$out/t.c" -o "$out/t_shared" $(pkg-config --cflags --libs gort) || fail "shared build via pkg-config"
    cc -Wall -Werror "$out/t.c" -o "$out/t_static" $(pkg-config --cflags gort) \
        $(pkg-config --libs --static gort | sed 's/-lgort/-l:libgort.a/') || fail "static build via pkg-config"
    [ "$("$out/t_shared")" = "$want" ] || fail "shared program output"
    [ "$("$out/t_static")" = "$want" ] || fail "static program output"
    [ "$(gortprof --version)" = "gortprof $version" ] || fail "gortprof --version"
    man -w gort_chan_send >/dev/null || fail "man gort_chan_send"
    apt-get remove -y -qq libgort-dev gortprof libgort0 >/dev/null 2>&1 || fail "apt-get remove"
    trap - EXIT
    ! dpkg -s libgort0 >/dev/null 2>&1 || fail "libgort0 still installed"
    echo "deb_check: ok (3 packages, lintian clean of errors, installed on this machine, pkg-config static and shared, removed)"
    exit 0
fi

root="$out/root"
for d in "${debs[@]}"; do dpkg-deb -x "$d" "$root"; done
lib="$root/usr/lib/$triplet"
pc=(--define-variable=libdir="$lib" --define-variable=includedir="$root/usr/include")
export PKG_CONFIG_PATH="$lib/pkgconfig"
[ "$(pkg-config --modversion gort)" = "$version" ] || fail "gort.pc's version"
cc -Wall -Werror "$out/t.c" -o "$out/t_shared" $(pkg-config "${pc[@]}" --cflags --libs gort) || fail "shared build via pkg-config"
cc -Wall -Werror "$out/t.c" -o "$out/t_static" $(pkg-config "${pc[@]}" --cflags gort) \
    $(pkg-config "${pc[@]}" --libs --static gort | sed 's/-lgort/-l:libgort.a/') || fail "static build via pkg-config"
[ "$(LD_LIBRARY_PATH=$lib "$out/t_shared")" = "$want" ] || fail "shared program output"
[ "$("$out/t_static")" = "$want" ] || fail "static program output"
libs=$(LD_LIBRARY_PATH=$lib ldd "$out/t_shared")
grep -q "$lib/libgort.so.0" <<<"$libs" || fail "shared program does not use the package's libgort.so.0"
[ "$("$root/usr/bin/gortprof" --version)" = "gortprof $version" ] || fail "gortprof --version"
[ -f "$root/usr/share/man/man3/gort_chan.3.gz" ] && [ -e "$root/usr/share/man/man3/gort_chan_send.3.gz" ] \
    && [ -f "$root/usr/share/man/man1/gortprof.1.gz" ] || fail "man pages"
[ -f "$lib/cmake/gort/gortConfig.cmake" ] || fail "CMake package"
gdbpy="/usr/share/gdb/auto-load/usr/lib/$triplet/libgort.so.$version-gdb.py"
[ -f "$root$gdbpy" ] || fail "gdb auto-load script not at $gdbpy"
sect=$(readelf -p .debug_gdb_scripts "$out/t_static")
grep -qF "$gdbpy" <<<"$sect" || fail "the static program does not name $gdbpy"
info=$(readelf -S "$lib/libgort.a")
grep -q debug_info <<<"$info" || fail "libgort.a lost its DWARF (the gdb extension needs it)"
rm -rf "$root"
echo "deb_check: ok (3 packages in $out, lintian clean of errors, unpacked in a scratch root, pkg-config static and shared, gortprof, man pages, gdb auto-load path, removed)"
