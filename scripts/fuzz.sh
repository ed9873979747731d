#!/usr/bin/env bash
# Builds the libFuzzer binaries (clang, -fsanitize=fuzzer,address,undefined) and runs one
# fuzz target, or all of them. See docs/fuzzing.md.
#
#   scripts/fuzz.sh <target|all> [-runs=N | -max_total_time=S] [other libFuzzer flags]
#   scripts/fuzz.sh <target|all> --minimize     merge the work corpus into tests/fuzz/corpus
#   scripts/fuzz.sh --list
#
# target is a name from tests/fuzz (fuzz_wal_reader, fuzz_block, fuzz_table,
# fuzz_version_edit, fuzz_options, fuzz_batch, fuzz_ops); the "fuzz_" prefix may be omitted.
# Without a limit a target runs for 60 seconds.
#
# Environment:
#   MAYFLY_FUZZ_BUILD   build directory (default: ${TMPDIR:-/tmp}/mayfly-fuzz-build)
#   MAYFLY_SOURCE_DIR   source tree (default: the tree holding this script)
#   FUZZ_CFLAGS         extra C flags, after the project's (e.g. -fno-sanitize=pointer-overflow)
#   CC                  compiler (default: clang)
#
# New inputs go to $MAYFLY_FUZZ_BUILD/corpus/<target> (the checked-in corpus is read, never
# written, except by --minimize); crashes go to $MAYFLY_FUZZ_BUILD/artifacts/<target>/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="${MAYFLY_SOURCE_DIR:-$(cd "$here/.." && pwd)}"
build="${MAYFLY_FUZZ_BUILD:-${TMPDIR:-/tmp}/mayfly-fuzz-build}"
targets=(fuzz_wal_reader fuzz_block fuzz_table fuzz_version_edit fuzz_options fuzz_batch fuzz_ops)

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}

[ $# -ge 1 ] || usage
if [ "$1" = "--list" ]; then
  printf '%s\n' "${targets[@]}"
  exit 0
fi
name="$1"
shift
case "$name" in
  all) selected=("${targets[@]}") ;;
  fuzz_*) selected=("$name") ;;
  *) selected=("fuzz_$name") ;;
esac
for t in "${selected[@]}"; do
  [ -f "$src/tests/fuzz/$t.c" ] || { echo "fuzz.sh: unknown target $t" >&2; exit 2; }
done

# Per-target defaults: longest input and per-input time limit.
max_len_of() {
  case "$1" in
    fuzz_wal_reader) echo 70000 ;; # logs crossing 32 KiB blocks
    fuzz_table) echo 16384 ;;
    fuzz_ops) echo 256 ;;          # at most 32 operations are read (~3.5 bytes each)
    fuzz_options) echo 2048 ;;
    *) echo 8192 ;;
  esac
}

# Per-target libFuzzer flags, placed before the caller's (a later flag wins, so they can be
# overridden). fuzz_ops: its background threads make coverage vary from run to run, so the
# corpus keeps growing and the entropic scheduler's bookkeeping took about half the time;
# without it the target runs ~2x faster and found as much coverage (2026-11-22). Its RSS
# grows by a few KB per input under ASan (most likely ASan's state for the two background
# threads each input starts and joins; LSan reports no leak and an unsanitized replay of the
# same inputs stays at ~5 MB), so the default 2 GB RSS limit would end a long run with a
# false out-of-memory report.
extra_flags_of() {
  case "$1" in
    fuzz_ops) echo -entropic=0 -rss_limit_mb=8192 ;;
    *) ;;
  esac
}

configure_and_build() {
  CC="${CC:-clang}" cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DMAYFLY_SANITIZE=ON -DMAYFLY_FUZZ=ON -DMAYFLY_BUILD_BENCH=OFF \
    -DMAYFLY_FUZZ_CFLAGS="$(echo ${FUZZ_CFLAGS:-} | tr ' ' ';')" >"$build.configure.log" 2>&1 ||
    { cat "$build.configure.log" >&2; exit 1; }
  cmake --build "$build" -j"$(nproc)" --target "${selected[@]}" >"$build.build.log" 2>&1 ||
    { tail -40 "$build.build.log" >&2; exit 1; }
}

mkdir -p "$build"
configure_and_build

status=0
for t in "${selected[@]}"; do
  bin="$(find "$build" -type f -name "$t" -perm -u+x | head -1)"
  [ -n "$bin" ] || { echo "fuzz.sh: $t was not built (is add_subdirectory(tests/fuzz) in CMakeLists.txt?)" >&2; exit 1; }
  seeds="$src/tests/fuzz/corpus/$t"
  work="$build/corpus/$t"
  artifacts="$build/artifacts/$t"
  mkdir -p "$work" "$artifacts" "$seeds"
  if [ "${1:-}" = "--minimize" ]; then
    # Keep the smallest set of inputs that covers what the work corpus and the checked-in
    # corpus cover together, and replace the checked-in corpus with it.
    merged="$build/merged/$t"
    rm -rf "$merged"
    mkdir -p "$merged"
    "$bin" -merge=1 -max_len="$(max_len_of "$t")" "$merged" "$seeds" "$work" 2>&1 | tail -2
    find "$seeds" -maxdepth 1 -type f -delete
    cp "$merged"/* "$seeds"/
    echo "fuzz.sh: $t corpus: $(ls "$seeds" | wc -l) files, $(du -sh "$seeds" | cut -f1)"
    continue
  fi
  limit=()
  case " $* " in
    *" -runs="* | *" -max_total_time="*) ;;
    *) limit=(-max_total_time=60) ;;
  esac
  echo "fuzz.sh: running $t ${limit[*]} $*"
  # shellcheck disable=SC2046 # extra_flags_of prints whitespace-separated flags
  if ! "$bin" "$work" "$seeds" -max_len="$(max_len_of "$t")" -timeout=30 \
      -artifact_prefix="$artifacts/" -print_final_stats=1 $(extra_flags_of "$t") \
      "${limit[@]}" "$@"; then
    echo "fuzz.sh: $t FAILED; reproducer(s) in $artifacts" >&2
    status=1
  fi
done
exit $status
