#!/bin/sh
# scripts/bench-w1.sh on a tiny workload (CTest bench_w1): the script runs mayfly_bench as
# given, w1.tsv has every column for every row, the compactions into L1 are read from the
# engine's statistics (under --lockstep mayfly's count agrees with its flushes: 4 to 6 files
# a compaction; LevelDB has none), --lockstep reaches mayfly's and RocksDB's options and no
# others, and a bad argument is refused. The figures themselves are docs/benchmarks.md's
# business, not this test's.
#   usage: test_bench_w1.sh <repo> <mayfly_bench> <scratch dir>
set -u
repo=$1 bench=$2 dir=$3
rm -rf "$dir"
mkdir -p "$dir" || exit 1
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

rows=mayfly-age-0.25,mayfly-group-0.3
if "$bench" --help | grep -q '^engines built in:.* rocksdb'; then
  rows=$rows,rocksdb-blob-age-0.25
fi
if "$bench" --help | grep -q '^engines built in:.* leveldb'; then
  rows=$rows,leveldb # its statistics have no compaction count: n/a
fi
nrows=$(echo "$rows" | tr ',' '\n' | wc -l)

for mode in free lockstep; do
  flag=
  [ "$mode" = lockstep ] && flag=--lockstep
  out=$dir/$mode-out
  if ! bash "$repo/scripts/bench-w1.sh" --num=3000 --rows="$rows" --bench="$bench" \
      --db="$dir/$mode-db" --out="$out" $flag >"$dir/$mode.table" 2>"$dir/$mode.err"; then
    fail "bench-w1.sh $flag exited with an error:"
    cat "$dir/$mode.err" >&2
    continue
  fi
  tsv=$out/w1.tsv
  [ "$(head -1 "$tsv" | tr '\t' '\n' | tail -1)" = l1_compactions ] ||
    fail "$mode: w1.tsv header lacks l1_compactions: $(head -1 "$tsv")"
  [ "$(tail -n +2 "$tsv" | wc -l)" -eq "$nrows" ] ||
    fail "$mode: w1.tsv has $(tail -n +2 "$tsv" | wc -l) rows, want $nrows"
  # Every row: 7 fields, positive throughput, write amp >= 1 (WAL and flush write at least
  # the user bytes), a space amp, and a whole number of compactions into L1, at least one
  # (the tiny workload flushes about a dozen memtables); leveldb: n/a.
  tail -n +2 "$tsv" | awk -F'\t' -v mode="$mode" '
    $1 == "leveldb" && $7 != "n/a" {
      printf "FAIL: %s: leveldb has a compaction count: %s\n", mode, $0 > "/dev/stderr"; bad = 1
    }
    $1 == "leveldb" { $7 = 1 }
    NF != 7 || !($2 > 0) || !($3 > 0) || !($4 >= 1) || !($5 > 0) || $7 !~ /^[0-9]+$/ || $7 < 1 {
      printf "FAIL: %s: bad w1.tsv row: %s\n", mode, $0 > "/dev/stderr"; bad = 1
    }
    END { exit bad }' || failures=$((failures + 1))
  grep -q '| compactions into L1 |' "$dir/$mode.table" ||
    fail "$mode: the table has no compactions column"
  [ -d "$dir/$mode-db" ] && fail "$mode: the database directory was not removed"
  if [ "$mode" = lockstep ]; then
    grep -q 'writes stop at the compaction trigger' "$dir/$mode.table" ||
      fail "lockstep: the table does not say so"
    for log in "$out"/*.log; do
      [ "$(basename "$log")" = leveldb.log ] && continue # its triggers cannot be set
      grep -q 'level0_stop_writes_trigger=4' "$log" ||
        fail "lockstep: $(basename "$log") was not run with level0_stop_writes_trigger=4"
    done
    # mayfly's age row, against its own statistics read by position here (the script finds
    # the column by its header): each L0->L1 compaction took at least the 4 files of the
    # trigger and, with writes stopped there, hardly more, so the flushes less the files
    # still in L0 are 4 to 6 per compaction counted.
    l1c=$(awk -F'\t' '$1 == "mayfly-age-0.25" { print $7 }' "$tsv")
    awk -v l1c="$l1c" '
      /^L0 / { files = $2; flushes = $9 }
      END {
        moved = flushes - files
        if (!(l1c >= 1 && moved >= 4 * l1c && moved <= 6 * l1c)) {
          printf "FAIL: lockstep: mayfly-age-0.25: %s compactions into L1 for %d flushes " \
                 "and %d files left in L0\n", l1c, flushes, files > "/dev/stderr"
          exit 1
        }
      }' "$out/mayfly-age-0.25.log" || failures=$((failures + 1))
  else
    grep -q 'level0_stop_writes_trigger=4' "$out"/*.log &&
      fail "free: a row was run with lockstep's options"
  fi
done

bash "$repo/scripts/bench-w1.sh" --bench="$bench" --lockstep=yes >/dev/null 2>"$dir/err"
rc=$?
[ "$rc" -eq 2 ] && grep -q 'unknown argument --lockstep=yes' "$dir/err" ||
  fail "--lockstep=yes: exit $rc (want 2), stderr: $(cat "$dir/err")"

[ "$failures" -eq 0 ] || exit 1
rm -rf "$dir"
echo "bench_w1: ok ($rows)"
