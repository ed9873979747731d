#!/usr/bin/env bash
# `make demo`: a smoke check of the example program, then mayfly's headline comparison, a
# small workload W1 (docs/benchmarks.md, "Key-value separation benchmark (W1)"): N keys x
# 1 KiB values loaded, then 3N zipfian(0.99) overwrites, on mayfly (GC policy age at three
# cutoffs, and policy group) and RocksDB's integrated BlobDB at the same age cutoffs (when
# mayfly_bench was built with RocksDB: librocksdb-dev). A few minutes on 2 cores.
#
# Writes to the output directory (default ./demo-out):
#   w1.tsv   one row per engine/setting: load ops/s, update ops/s, write amp, space amp
#   w1.gp    a gnuplot script: write amplification vs space amplification, one point per
#            engine/setting (the ideal is the bottom-left corner, (1, 2) with a WAL)
#   w1.png   the plot, when gnuplot is installed
#   *.log    mayfly_bench's full output per row (mayfly.stats, mayfly.blob-stats, ...)
#
# Usage: scripts/demo.sh [--build=DIR] [--num=N] [--out=DIR]
#   --build  CMake build directory holding demo and bench/mayfly_bench (default <repo>/build)
#   --num    keys loaded (default 100000)
#   --out    output directory (default ./demo-out)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$repo/build"
num=100000
out=./demo-out
for arg in "$@"; do
  case "$arg" in
    --build=*) build="${arg#*=}" ;;
    --num=*) num="${arg#*=}" ;;
    --out=*) out="${arg#*=}" ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown argument $arg" >&2; exit 2 ;;
  esac
done
bench="$build/bench/mayfly_bench"
for f in "$build/demo" "$bench"; do
  [ -x "$f" ] || { echo "demo: $f is missing: run make build first" >&2; exit 1; }
done
mkdir -p "$out"
out="$(cd "$out" && pwd)"

echo "== 1. the example program (examples/demo.c) =="
"$build/demo" "$out/example-db" >"$out/example.log" 2>&1 || { cat "$out/example.log" >&2; exit 1; }
tail -1 "$out/example.log"
rm -rf "$out/example-db"

echo
echo "== 2. workload W1, N=$num (a few minutes) =="
rows="mayfly-age-0.25,mayfly-age-0.5,mayfly-age-1.0,mayfly-group-0.5"
rows="$rows,rocksdb-blob-age-0.25,rocksdb-blob-age-0.5,rocksdb-blob-age-1.0"
db="${TMPDIR:-/tmp}/mayfly-demo-$$"
"$repo/scripts/bench-w1.sh" --bench="$bench" --num="$num" --rows="$rows" --db="$db" \
  --out="$out" 2> >(grep -v '^bench-w1: .*: /' >&2)

# The plot: one labelled point per row of w1.tsv.
tail -n +2 "$out/w1.tsv" | awk -F'\t' '{ printf "%s %s %s\n", $5, $4, $1 }' >"$out/w1.dat"
cat >"$out/w1.gp" <<'EOF'
# gnuplot w1.gp -> w1.png: workload W1, write amplification vs space amplification.
set terminal pngcairo size 900,600 noenhanced
set output "w1.png"
set title "W1: 1 KiB values, zipfian(0.99) overwrites (lower-left is better)"
set xlabel "space amplification (on-disk bytes / live bytes)"
set ylabel "write amplification (bytes written / user bytes)"
set grid
set key off
set offsets graph 0.1, graph 0.25, graph 0.1, graph 0.1
plot "w1.dat" using 1:2:(strstrt(strcol(3), "mayfly") ? 1 : 2) with points pt 7 ps 1.5 lc variable, \
     "w1.dat" using 1:2:3 with labels offset 1,0.7 left font ",9"
EOF
if command -v gnuplot >/dev/null 2>&1; then
  if (cd "$out" && gnuplot w1.gp 2>"$out/gnuplot.log"); then
    echo "plot: $out/w1.png"
  else
    echo "demo: gnuplot failed (see $out/gnuplot.log); data and script are in $out" >&2
  fi
else
  echo "plot: gnuplot is not installed; run \"cd $out && gnuplot w1.gp\" where it is"
fi
