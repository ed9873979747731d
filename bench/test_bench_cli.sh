#!/bin/sh
# mayfly_bench's command line as a whole (CTest bench_cli): errors only the program can
# find (unknown benchmark or engine, a flag an engine cannot honour, a missing database
# under --use_existing_db) exit non-zero with a clear message on stderr; --use_existing_db
# skips fills as db_bench does; --stats_interval_seconds prints interval lines on stdout.
# The flag parser's own cases are in test_bench_flags.c.
#   usage: test_bench_cli.sh <mayfly_bench> <scratch dir>
set -u
bench=$1 dir=$2
rm -rf "$dir"
mkdir -p "$dir" || exit 1
failures=0
engines=$("$bench" --help | sed -n 's/^engines built in: //p')

# expect <status> <text on stderr> <args...>
expect() {
  want_rc=$1 want_text=$2
  shift 2
  "$bench" --db="$dir/db" "$@" >"$dir/out" 2>"$dir/err"
  rc=$?
  if [ "$rc" -ne "$want_rc" ] || ! grep -qF -- "$want_text" "$dir/err"; then
    echo "FAIL: mayfly_bench $*: exit $rc (want $want_rc), stderr:" >&2
    cat "$dir/err" >&2
    failures=$((failures + 1))
  fi
}

expect 2 'unknown benchmark "nosuch"' --benchmarks=fillseq,nosuch
expect 2 '--num=abc: not an integer' --num=abc
expect 2 '--num=-5: out of range' --num=-5
expect 2 'unknown flag "--bogus"' --bogus=1
expect 2 '--compression_type=bogus: not one of' --compression_type=bogus
expect 2 'engine "nosuch" is not built in' --engine=nosuch
expect 2 '--sync and --disable_wal together' --sync --disable_wal
expect 1 'must exist' --use_existing_db --benchmarks=readrandom --num=100
case " $engines " in
*" leveldb "*)
  expect 2 'leveldb cannot write without its WAL' --engine=leveldb --disable_wal
  expect 2 'leveldb supports none,snappy' --engine=leveldb --compression_type=zstd
  # Engine options: no negative or out-of-range numbers (strtoull took "-3" as 2^64 - 3).
  expect 1 'bloom_bits_per_key: bad value "-3"' --engine=leveldb --num=10 \
    --leveldb_options="bloom_bits_per_key=-3"
  expect 1 'max_open_files: bad value "4294967297"' --engine=leveldb --num=10 \
    --leveldb_options="max_open_files=4294967297"
  # --engine=all skips LevelDB and runs the others.
  expect 0 'leveldb cannot write without its WAL (skipped)' --engine=all --disable_wal \
    --num=200 --benchmarks=fillrandom,readrandom --settle_seconds=0.05
  grep -q 'Engine: .*leveldb.* skipped' "$dir/out" || {
    echo "FAIL: --engine=all --disable_wal: no skipped line" >&2
    failures=$((failures + 1))
  }
  ;;
esac

# --use_existing_db: the fill is skipped, the reads find what the first run wrote.
"$bench" --db="$dir/db" --num=500 --benchmarks=fillseq >/dev/null 2>&1
"$bench" --db="$dir/db" --num=500 --use_existing_db --benchmarks=fillseq,readrandom \
  >"$dir/out" 2>"$dir/err"
if [ $? -ne 0 ] || ! grep -q '^fillseq *: skipped (--use_existing_db is true)' "$dir/out" ||
  ! grep -q '^readrandom .*(found 500 of 500)' "$dir/out"; then
  echo "FAIL: --use_existing_db:" >&2
  cat "$dir/out" "$dir/err" >&2
  failures=$((failures + 1))
fi

# Interval lines on stdout (mixgraph paced at 1000 ops/s for 1.5 s), nothing of it on stderr.
"$bench" --db="$dir/db" --num=500 --reads=1500 --benchmarks=fillseq,mixgraph \
  --sine_a=1 --sine_b=0 --sine_d=1000 --stats_interval_seconds=0.5 >"$dir/out" 2>"$dir/err"
lines=$(grep -c '^ *\[mixgraph [0-9.]* s\] interval [0-9]* ops' "$dir/out")
if [ "$lines" -lt 2 ] || grep -q 'interval' "$dir/err"; then
  echo "FAIL: --stats_interval_seconds: $lines interval lines on stdout" >&2
  cat "$dir/out" "$dir/err" >&2
  failures=$((failures + 1))
fi

"$bench" --help | grep -q -- '--stats_interval_seconds' || {
  echo "FAIL: --help" >&2
  failures=$((failures + 1))
}
rm -rf "$dir"
[ "$failures" -eq 0 ]
