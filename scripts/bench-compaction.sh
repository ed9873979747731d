#!/usr/bin/env bash
# The leveled-compaction benchmark: mayfly vs LevelDB vs RocksDB in one run of mayfly_bench.
#
#   fillrandom  N puts of uniform random keys into an empty database (16 B keys, 100 B values)
#   overwrite   N more uniform random puts on that database
#   readrandom  N point lookups of uniform random keys
#
# All three engines get the same tree shape, LevelDB's (its L1 target of 10 MiB cannot be
# changed through its C API, so the other two follow it): 4 MiB memtables, 2 MiB table files,
# L1 10 MiB and x10 per level, 4 KiB blocks, 10 bloom bits per key, a 32 MiB block cache,
# 1000 open files, no compression, WAL on, no sync. What stays different: LevelDB's fixed L0
# triggers (compaction 4, slowdown 8, stop 12; mayfly and RocksDB use 4/20/36) and its single
# background thread (mayfly and RocksDB: max_background_jobs 2).
#
# Write amp = bytes the process passed to write() during fillrandom + overwrite (each followed
# by letting background work settle) / key+value bytes put. Space amp = size of the database
# directory after overwrite has settled / (distinct keys x 116 B). See docs/benchmarks.md.
#
# Usage: scripts/bench-compaction.sh [--num=N] [--db=DIR] [--build=DIR | --bench=PATH]
#                                    [--log=FILE]
#   --num    keys and operations per benchmark (default 5000000)
#   --db     parent directory of the databases (default /tmp/mayfly-bench-compaction);
#            removed at the end
#   --build  CMake build directory (default <repo>/build); configured and built if needed
#   --bench  a mayfly_bench binary to run as it is (nothing is built)
#   --log    where mayfly_bench's full output goes (default <db>.log)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
num=5000000
db=/tmp/mayfly-bench-compaction
build="$repo/build"
log=""
bench=""
for arg in "$@"; do
  case "$arg" in
    --num=*) num="${arg#*=}" ;;
    --db=*) db="${arg#*=}" ;;
    --build=*) build="${arg#*=}" ;;
    --log=*) log="${arg#*=}" ;;
    --bench=*) bench="${arg#*=}" ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-compaction: unknown argument $arg" >&2; exit 2 ;;
  esac
done
[[ "$num" =~ ^[0-9]+$ && "$num" -gt 0 ]] || { echo "bench-compaction: bad --num" >&2; exit 2; }
[ -n "$log" ] || log="$db.log"

if [ -z "$bench" ]; then
  if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  cmake --build "$build" -j2 --target mayfly_bench >/dev/null
  bench="$build/bench/mayfly_bench"
fi
engines="$("$bench" --help | sed -n 's/^engines built in://p')"
for e in mayfly leveldb rocksdb; do
  case " $engines " in
    *" $e "*) ;;
    *) echo "bench-compaction: $bench has no $e adapter (built in:$engines);" \
            "install libleveldb-dev and librocksdb-dev (scripts/install-deps.sh)" >&2
       exit 1 ;;
  esac
done

# The shared flags reach every engine under its own option names; the level sizes only
# mayfly and RocksDB can take.
levels="max_bytes_for_level_base=10MiB;max_bytes_for_level_multiplier=10;max_background_jobs=2"
cmd=("$bench" --engine=all --benchmarks=fillrandom,overwrite,readrandom --num="$num"
     --db="$db" --write_buffer_size=4MiB --max_file_size=2MiB --block_size=4KiB
     --cache_size=32MiB --bloom_bits=10 --max_open_files=1000
     --options="compression=none;$levels" --rocksdb_options="$levels")
echo "bench-compaction: $(printf '%q ' "${cmd[@]}")" >&2
echo "bench-compaction: full output in $log" >&2
mkdir -p "$db"
"${cmd[@]}" >"$log" 2>&1 || { tail -20 "$log" >&2; exit 1; }
rm -rf "$db"

# Per engine: ops/s of each benchmark, bytes written and put by fillrandom + overwrite, and
# the space figures printed after overwrite settled.
awk '
  /^Engine:/ { engine = $2; order[++n] = engine; next }
  /^(fillrandom|overwrite|readrandom) +:/ {
    bench = $1
    for (i = 1; i <= NF; i++) if ($i == "ops/sec") ops[engine, bench] = $(i - 1)
    next
  }
  /^ +amp: write/ && (bench == "fillrandom" || bench == "overwrite") {
    # amp: write W.WW (WRITTEN B written incl. S s settling / PUT B put), space S.SS (...)
    for (i = 1; i <= NF; i++) {
      t = $i
      gsub(/[^0-9]/, "", t)
      if ($(i + 1) == "B" && $(i + 2) == "written") written[engine] += t
      if ($(i + 1) == "B" && $(i + 2) == "put),") put[engine] += t
      if ($i == "space" && bench == "overwrite") space[engine] = $(i + 1)
    }
    next
  }
  # 1234567.8 -> "1,234,568" (awk printf has no portable thousands separator)
  function fmt(x,   s) {
    s = sprintf("%.0f", x)
    while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s)
    return s
  }
  function ratio(a, b) { return b > 0 ? sprintf("%.2f", a / b) : "-" }
  END {
    for (k = 1; k <= n; k++) {
      e = order[k]
      wamp[e] = put[e] > 0 ? written[e] / put[e] : 0
    }
    print "| engine | fillrandom ops/s | overwrite ops/s | readrandom ops/s | write amp | space amp |"
    print "|---|---:|---:|---:|---:|---:|"
    for (k = 1; k <= n; k++) {
      e = order[k]
      printf "| %s | %s | %s | %s | %.2f | %.2f |\n", e, fmt(ops[e, "fillrandom"]),
             fmt(ops[e, "overwrite"]), fmt(ops[e, "readrandom"]), wamp[e], space[e]
    }
    split("leveldb rocksdb", others, " ")
    for (j = 1; j <= 2; j++) {
      o = others[j]
      printf "| mayfly / %s | %s | %s | %s | %s | %s |\n", o,
             ratio(ops["mayfly", "fillrandom"], ops[o, "fillrandom"]),
             ratio(ops["mayfly", "overwrite"], ops[o, "overwrite"]),
             ratio(ops["mayfly", "readrandom"], ops[o, "readrandom"]),
             ratio(wamp["mayfly"], wamp[o]), ratio(space["mayfly"], space[o])
    }
  }
' "$log"
echo
echo "Throughput ratios above 1 favour mayfly; amplification ratios below 1 favour mayfly."
