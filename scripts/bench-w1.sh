#!/usr/bin/env bash
# Workload W1 (docs/benchmarks.md, design §6): key-value separation and blob GC, mayfly vs
# RocksDB's integrated BlobDB vs RocksDB leveled vs LevelDB, every row in one invocation.
#
#   load     fillrandom: N puts of uniform random keys (16 B) x 1 KiB values, empty database
#   update   overwritezipf (--writes=3N): 3N puts of scrambled zipfian(0.99) keys (YCSB's generator)
#   flush    the memtables are written out (db_bench's flush; LevelDB has none), so that the
#            space figure does not depend on how full the last memtable and its WAL happen to
#            be when the update ends (up to one memtable, 6% of the live data at N = 1M)
#
# WAL on, no sync, no compression (values and tables). Every engine gets the same memtable,
# table file and level sizes, scaled from N so that the tree has the same shape at any N:
# memtable = N x 1040 B / 16 (64 MiB at N = 1M, like the defaults), table files = memtable,
# L1 = 4 x memtable, x10 per level; blob files (mayfly, RocksDB) = 4 x memtable, so each flush
# writes one blob file, as with the engines' defaults. min_blob_size is the same for both
# separating engines (--min_blob_size, default 512, mayfly's default).
#
# Rows: mayfly policy age with (age cutoff, force threshold) = (0.25,1) (0.5,1) (1,1)
# (0.25,0.5); mayfly policy group (force threshold 0.5, 0.3, 0.2: a group is rewritten once
# that much of it is garbage); RocksDB BlobDB with the same four
# age settings; RocksDB leveled without blob files; LevelDB. One mayfly_bench process per row
# (the same binary), one after the other.
#
# Write amp = bytes the process passed to write() during load + update + flush, each followed
# by letting background work settle / key+value bytes put. Space amp = on-disk bytes of the
# database directory after the flush has settled / (distinct keys x (16 + value size)).
# That is one instant, and a compaction that happens to run just before it moves it by
# several percent, so the table also gives the mean of mayfly_bench's samples of the same
# ratio taken every 50 ms during the update ("space amp, update mean": a mean over time).
# The last column counts the compactions into L1 (the engine's statistics). For the age
# rows these are the L0->L1 compactions, which carry blob GC (W1's tree has no level below
# L1): one more or one fewer moves write amp and space amp in opposite directions. The group
# rows count their group rewrites too.
#
# Usage: scripts/bench-w1.sh [--num=N] [--value_size=B] [--min_blob_size=B] [--rows=LIST]
#                            [--write_buffer_size=B] [--lockstep] [--db=DIR] [--out=DIR]
#                            [--build=DIR | --bench=PATH]
#   --num       keys loaded (default 1000000); the update puts 3 x num
#   --value_size  bytes per value (default 1024)
#   --rows      comma-separated row names to run (default: all W1 rows, as printed in the
#               table); "study" runs the min_blob_size study instead: mayfly separation on
#               (min_blob_size = value size) vs off, for the given --value_size
#   --write_buffer_size  overrides the scaled memtable size (and everything scaled from it)
#   --lockstep  mayfly and RocksDB: writes stop (level0_slowdown_writes_trigger =
#               level0_stop_writes_trigger = 4) as soon as level 0 holds the 4 files that
#               trigger its compaction, so that every L0->L1 compaction takes exactly 4 files
#               and both engines run the same compactions at the same points of the workload.
#               Without it, how many files a compaction finds depends on the engine's speed
#               and the machine's, and one compaction more or less moves write amp and space
#               amp by several percent in opposite directions. LevelDB's triggers are fixed
#               (4, 8, 12; its C API cannot set them), so its row is the same either way.
#               Throughput under --lockstep is not comparable with the default runs.
#   --db        parent directory of the databases (default /tmp/mayfly-bench-w1), removed at
#               the end
#   --out       directory for w1.tsv (label, load ops/s, update ops/s, write amp, space amp,
#               space amp update mean, compactions into L1) and each row's full mayfly_bench
#               output (default: <db>-out)
#   --build     CMake build directory (default <repo>/build); configured and built if needed
#   --bench     a mayfly_bench binary to run as it is (nothing is built)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
num=1000000
value_size=1024
min_blob_size=512
rows=""
wbs=""
lockstep=0
db=/tmp/mayfly-bench-w1
out=""
build="$repo/build"
bench=""
for arg in "$@"; do
  case "$arg" in
    --num=*) num="${arg#*=}" ;;
    --value_size=*) value_size="${arg#*=}" ;;
    --min_blob_size=*) min_blob_size="${arg#*=}" ;;
    --rows=*) rows="${arg#*=}" ;;
    --write_buffer_size=*) wbs="${arg#*=}" ;;
    --lockstep) lockstep=1 ;;
    --db=*) db="${arg#*=}" ;;
    --out=*) out="${arg#*=}" ;;
    --build=*) build="${arg#*=}" ;;
    --bench=*) bench="${arg#*=}" ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-w1: unknown argument $arg" >&2; exit 2 ;;
  esac
done
for v in "$num" "$value_size" "$min_blob_size" ${wbs:+"$wbs"}; do
  [[ "$v" =~ ^[0-9]+$ && "$v" -gt 0 ]] || { echo "bench-w1: bad number \"$v\"" >&2; exit 2; }
done
[ -n "$out" ] || out="$db-out"

if [ -z "$bench" ]; then
  if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  cmake --build "$build" -j2 --target mayfly_bench >/dev/null
  bench="$build/bench/mayfly_bench"
fi
engines=" $("$bench" --help | sed -n 's/^engines built in://p') "

# Sizes scaled from N (see the header); at least 1 MiB of memtable.
[ -n "$wbs" ] || wbs=$(( num * (16 + value_size) / 16 ))
[ "$wbs" -ge 1048576 ] || wbs=1048576
level_base=$(( 4 * wbs ))
blob_file=$(( 4 * wbs ))
# No memtable filter in either engine: W1 reads nothing, and RocksDB's filter takes its bytes
# from the write buffer (mayfly's come on top), so it would flush RocksDB 1% more often.
shared="max_bytes_for_level_base=$level_base;max_bytes_for_level_multiplier=10;max_background_jobs=2;memtable_bloom_size_ratio=0"
if [ "$lockstep" = 1 ]; then
  shared="$shared;level0_file_num_compaction_trigger=4;level0_slowdown_writes_trigger=4"
  shared="$shared;level0_stop_writes_trigger=4"
fi
blob="enable_blob_files=true;min_blob_size=$min_blob_size;blob_file_size=$blob_file;blob_compression=none;enable_blob_garbage_collection=true"
age() { echo "blob_garbage_collection_age_cutoff=$1;blob_garbage_collection_force_threshold=$2"; }

# label|engine|engine options
all_rows=(
  "mayfly-age-0.25|mayfly|$shared;$blob;blob_gc_policy=age;$(age 0.25 1.0)"
  "mayfly-age-0.5|mayfly|$shared;$blob;blob_gc_policy=age;$(age 0.5 1.0)"
  "mayfly-age-1.0|mayfly|$shared;$blob;blob_gc_policy=age;$(age 1.0 1.0)"
  "mayfly-age-0.25-force-0.5|mayfly|$shared;$blob;blob_gc_policy=age;$(age 0.25 0.5)"
  "mayfly-group-0.5|mayfly|$shared;$blob;blob_gc_policy=group;blob_garbage_collection_force_threshold=0.5"
  "mayfly-group-0.3|mayfly|$shared;$blob;blob_gc_policy=group;blob_garbage_collection_force_threshold=0.3"
  "mayfly-group-0.2|mayfly|$shared;$blob;blob_gc_policy=group;blob_garbage_collection_force_threshold=0.2"
  "rocksdb-blob-age-0.25|rocksdb|$shared;$blob;$(age 0.25 1.0)"
  "rocksdb-blob-age-0.5|rocksdb|$shared;$blob;$(age 0.5 1.0)"
  "rocksdb-blob-age-1.0|rocksdb|$shared;$blob;$(age 1.0 1.0)"
  "rocksdb-blob-age-0.25-force-0.5|rocksdb|$shared;$blob;$(age 0.25 0.5)"
  "rocksdb-leveled|rocksdb|$shared;enable_blob_files=false"
  "leveldb|leveldb|"
)
if [ "$rows" = study ]; then
  all_rows=(
    "mayfly-blob-on-v$value_size|mayfly|$shared;enable_blob_files=true;min_blob_size=$value_size;blob_file_size=$blob_file;$(age 0.25 1.0)"
    "mayfly-blob-off-v$value_size|mayfly|$shared;enable_blob_files=false"
  )
fi

mkdir -p "$db" "$out"
tsv="$out/w1.tsv"
printf '%s\t' label load_ops update_ops write_amp space_amp space_amp_update_mean >"$tsv"
printf 'l1_compactions\n' >>"$tsv"
for row in "${all_rows[@]}"; do
  IFS='|' read -r label engine opts <<<"$row"
  if [ -n "$rows" ] && [ "$rows" != study ] && [[ ",$rows," != *",$label,"* ]]; then
    continue
  fi
  if [[ "$engines" != *" $engine "* ]]; then
    echo "bench-w1: $label skipped: $bench has no $engine adapter (install lib$engine-dev," \
         "scripts/install-deps.sh)" >&2
    continue
  fi
  case "$engine" in
    mayfly) eopt=(--options="compression=none;$opts") ;;
    rocksdb) eopt=(--rocksdb_options="$opts") ;;
    *) eopt=() ;;
  esac
  log="$out/$label.log"
  cmd=("$bench" --engine="$engine" --benchmarks=fillrandom,overwritezipf,flush,stats --num="$num"
       --writes=$(( 3 * num )) --value_size="$value_size" --zipf_theta=0.99
       --db="$db/$label" --write_buffer_size="$wbs" --max_file_size="$wbs" --block_size=4KiB
       --cache_size=32MiB --bloom_bits=10 --max_open_files=1000 "${eopt[@]}")
  echo "bench-w1: $label: $(printf '%q ' "${cmd[@]}")" >&2
  "${cmd[@]}" >"$log" 2>&1 || { tail -20 "$log" >&2; exit 1; }
  rm -rf "${db:?}/$label"
  awk -v label="$label" '
    /^(fillrandom|overwritezipf) +:/ {
      bench = $1
      for (i = 1; i <= NF; i++) if ($i == "ops/sec") { ops = $(i - 1) }
      # elapsed time from micros/op, so that the three update runs average correctly
      for (i = 1; i <= NF; i++) if ($i == "micros/op") us[bench] += $(i - 1); n[bench]++
      next
    }
    /^flush +:/ { bench = "flush" }
    # compactions into L1, from the statistics of the engine: the column "Comp" (mayfly) or
    # "Comp(cnt)" (RocksDB, whose sizes print as two words) of the row L1 of the table, which
    # ends at its row Sum. (The LevelDB table has no such column: n/a.)
    /^Level / { ci = 0; for (i = 1; i <= NF; i++) if ($i == "Comp" || $i == "Comp(cnt)") ci = i }
    /^ *Sum / { ci = 0 }
    /^ *L1 / && ci { l1c = $(ci + ($4 ~ /^(B|KB|MB|GB|TB)$/ ? 1 : 0)) }
    /^ +space amp while running:/ {
      if (bench == "overwritezipf") { m = $6; sub(/,$/, "", m); upd_space = m }
    }
    /^ +amp: write/ {
      for (i = 1; i <= NF; i++) {
        t = $i
        gsub(/[^0-9]/, "", t)
        if ($(i + 1) == "B" && $(i + 2) == "written") written += t
        if ($(i + 1) == "B" && $(i + 2) == "put),") put += t
        if ($i == "space") space = $(i + 1)
      }
    }
    END {
      load = n["fillrandom"] ? 1e6 / (us["fillrandom"] / n["fillrandom"]) : 0
      upd = n["overwritezipf"] ? 1e6 / (us["overwritezipf"] / n["overwritezipf"]) : 0
      printf "%s\t%.0f\t%.0f\t%.3f\t%.3f\t%.3f\t%s\n", label, load, upd,
             (put > 0 ? written / put : 0), space, upd_space, (l1c != "" ? l1c : "n/a")
    }' "$log" >>"$tsv"
done
rmdir "$db" 2>/dev/null || true

echo "W1: N=$num keys x $value_size B values loaded (fillrandom), then 3N zipfian(0.99)" \
     "overwrites; memtable/table file $wbs B, L1 $level_base B, blob file $blob_file B," \
     "min_blob_size $([ "$rows" = study ] && echo "= value size" || echo "$min_blob_size B")"
[ "$lockstep" = 0 ] ||
  echo "level 0: writes stop at the compaction trigger (--lockstep; mayfly and RocksDB)"
echo
awk -F'\t' '
  function k(x) { return sprintf("%.1f K", x / 1000) }
  NR == 1 { next }
  { lab[NR] = $1; load[$1] = $2; upd[$1] = $3; wa[$1] = $4; sa[$1] = $5; sm[$1] = $6; lc[$1] = $7
    rows = NR }
  END {
    printf "| engine / setting | load ops/s | update ops/s | write amp | space amp |"
    print " space amp, update mean | compactions into L1 |"
    print "|---|---:|---:|---:|---:|---:|---:|"
    for (r = 2; r <= rows; r++) {
      l = lab[r]
      printf "| %s | %s | %s | %.2f | %.2f | %.2f | %s |\n", l, k(load[l]), k(upd[l]), wa[l], sa[l],
             sm[l], lc[l]
    }
    header = 0
    for (r = 2; r <= rows; r++) {
      l = lab[r]
      if (l !~ /^mayfly-age/) continue
      o = l; sub(/^mayfly-age/, "rocksdb-blob-age", o)
      if (!(o in load) || load[o] == 0 || upd[o] == 0 || wa[o] == 0 || sa[o] == 0) continue
      if (!header) {
        print ""
        print "| mayfly / RocksDB BlobDB, same setting | load | update | write amp | space amp | space amp, update mean |"
        print "|---|---:|---:|---:|---:|---:|"
        header = 1
      }
      s = l; sub(/^mayfly-/, "", s)
      printf "| %s | %.2f | %.2f | %.2f | %.2f | %s |\n", s, load[l] / load[o], upd[l] / upd[o],
             wa[l] / wa[o], sa[l] / sa[o], (sm[o] > 0 ? sprintf("%.2f", sm[l] / sm[o]) : "n/a")
    }
  }' "$tsv"
echo
echo "Throughput ratios above 1 favour mayfly; amplification ratios below 1 favour mayfly."
echo "Data: $tsv; full output per row: $out/<row>.log"
