#!/bin/sh
# Install test: installs a built mayfly into a temporary prefix, then builds
# tests/install/consumer.c the way an outside project would (pkg-config, <mayfly.h> only)
# against the static library and against the shared library, and runs both.
#
#   tests/install/run.sh <source-dir> <build-dir>
#
# Exit status 0 when both consumers build and run. The temporary prefix is removed at the
# end unless KEEP_INSTALL_TMP=1.
set -eu

if [ $# -ne 2 ]; then
  echo "usage: $0 <source-dir> <build-dir>" >&2
  exit 2
fi
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
cc=${CC:-cc}

base=${MAYFLY_TEST_TMP:-${TMPDIR:-/tmp}}
mkdir -p "$base"
tmp=$(mktemp -d "$base/install-test.XXXXXX")
cleanup() {
  if [ "${KEEP_INSTALL_TMP:-0}" != 1 ]; then rm -rf "$tmp"; fi
}
trap cleanup EXIT

prefix="$tmp/prefix"
echo "== cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 || {
  cat "$tmp/install.log" >&2
  exit 1
}

# GNUInstallDirs picks lib, lib64 or lib/<multiarch>: find the directory holding mayfly.pc.
pcfile=$(find "$prefix" -name mayfly.pc -path '*/pkgconfig/*' | head -n 1)
if [ -z "$pcfile" ]; then
  echo "install test: no mayfly.pc under $prefix" >&2
  exit 1
fi
pcdir=$(dirname "$pcfile")
libdir=$(dirname "$pcdir")
echo "== pkg-config dir $pcdir"
for f in "$prefix/include/mayfly.h" "$libdir/libmayfly.a"; do
  [ -f "$f" ] || { echo "install test: $f was not installed" >&2; exit 1; }
done
ls "$libdir"/libmayfly.so* >/dev/null 2>&1 || {
  echo "install test: no libmayfly.so in $libdir" >&2
  exit 1
}

export PKG_CONFIG_PATH="$pcdir"
# Only the installed tree may be used: pkg-config's answer must not point into the source
# or build directories.
static_flags=$(pkg-config --cflags --libs --static mayfly)
shared_flags=$(pkg-config --cflags --libs mayfly)
# (The prefix itself may lie under the build tree, so it is cut out first.)
case "$(echo "$static_flags $shared_flags" | sed "s|$prefix||g")" in
  *"$src"* | *"$build"*)
    echo "install test: pkg-config points into the source or build tree: $static_flags" >&2
    exit 1 ;;
esac

# A relocated install (cmake --install --prefix) must still describe itself: mayfly.pc has
# to name the prefix it was installed to (e.g. prefix=${pcfiledir}/../..), not the one the
# build was configured with.
case "$static_flags" in
  *"-I$prefix/"*) ;;
  *)
    echo "install test: mayfly.pc does not point at the install prefix $prefix:" >&2
    echo "  $static_flags" >&2
    echo "  (it was configured for CMAKE_INSTALL_PREFIX; derive prefix from \${pcfiledir})" >&2
    exit 1 ;;
esac

cflags=$(pkg-config --cflags mayfly)
libdirs=$(pkg-config --libs-only-L mayfly)
# What the static archive needs besides itself (Libs.private).
deps=$(pkg-config --libs --static mayfly | sed 's/-lmayfly//')

echo "== static: $cc consumer.c $static_flags (libmayfly.a forced)"
# -static would also demand a static libc; naming the archive keeps the rest dynamic while
# proving that libmayfly.a plus Libs.private is enough.
# shellcheck disable=SC2086
$cc -std=c11 -Wall -Wextra -Werror -o "$tmp/consumer-static" "$src/tests/install/consumer.c" \
  $cflags "$libdir/libmayfly.a" $deps
# The pkg-config line a user copies must link too; with both libraries installed the linker
# prefers the shared one, so -Bstatic selects the archive.
# shellcheck disable=SC2086
$cc -std=c11 -o "$tmp/consumer-static2" "$src/tests/install/consumer.c" \
  $cflags -Wl,-Bstatic $libdirs -lmayfly -Wl,-Bdynamic $deps
if ldd "$tmp/consumer-static" "$tmp/consumer-static2" | grep -q libmayfly; then
  echo "install test: a static consumer links libmayfly.so" >&2
  exit 1
fi
TMPDIR="$tmp" "$tmp/consumer-static"
TMPDIR="$tmp" "$tmp/consumer-static2"

echo "== shared: $cc consumer.c $shared_flags"
# shellcheck disable=SC2086
$cc -std=c11 -Wall -Wextra -Werror -o "$tmp/consumer-shared" "$src/tests/install/consumer.c" \
  $shared_flags
ldd_out=$(LD_LIBRARY_PATH="$libdir" ldd "$tmp/consumer-shared")
echo "$ldd_out" | grep -q "$libdir/libmayfly.so" || {
  echo "install test: the shared consumer does not load $libdir/libmayfly.so:" >&2
  echo "$ldd_out" >&2
  exit 1
}
TMPDIR="$tmp" LD_LIBRARY_PATH="$libdir" "$tmp/consumer-shared"

# The shared library must export the API and nothing of the engine's internals.
if command -v nm >/dev/null 2>&1; then
  so=$(find "$libdir" -maxdepth 1 -name 'libmayfly.so.*.*.*' | head -n 1)
  so=${so:-$libdir/libmayfly.so}
  leaked=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBR]$/ {print $3}' | grep -v -e '^mayfly_' -e '^_init$' -e '^_fini$' || true)
  if [ -n "$leaked" ]; then
    echo "install test: libmayfly.so exports non-API symbols:" >&2
    echo "$leaked" | head -n 20 >&2
    exit 1
  fi
fi
echo "install test: OK"
