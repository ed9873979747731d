#!/bin/sh
# Smoke test of mayfly_bench (CTest bench_smoke_<engine>): every benchmark once on a tiny
# database with one engine, mixgraph with the FAST'20 parameters and sine pacing. Passes when
# the run exits 0, every benchmark printed its result line and its stall/RSS line, no
# progress line went to stdout, and the --json file parses (when python3 is there).
#   usage: test_bench_smoke.sh <mayfly_bench> <engine> <scratch dir>
set -u
bench=$1 engine=$2 dir=$3
benchmarks=fillseq,fillrandom,overwrite,readrandom,readseq,readreverse,seekrandom
benchmarks=$benchmarks,deleterandom,readwhilewriting,ycsba,ycsbb,ycsbc,ycsbd,ycsbe,ycsbf
benchmarks=$benchmarks,mixgraph,overwritezipf,flush,compact,waitidle,stats
rm -rf "$dir"
mkdir -p "$dir" || exit 1
out=$dir/out.txt err=$dir/err.txt
"$bench" --engine="$engine" --db="$dir/db" --num=2000 --benchmarks="$benchmarks" \
  --settle_seconds=0.05 --histogram --stats_interval_seconds=1 --json="$dir/out.json" \
  --keyrange_num=30 --keyrange_dist_a=14.18 --keyrange_dist_b=-2.917 \
  --keyrange_dist_c=0.0164 --keyrange_dist_d=-0.08082 --key_dist_a=0.002312 \
  --key_dist_b=0.3467 --value_k=0.2615 --value_sigma=25.45 --iter_k=2.517 \
  --iter_sigma=14.236 --mix_get_ratio=0.85 --mix_put_ratio=0.14 --mix_seek_ratio=0.01 \
  --mix_max_scan_len=100 --sine_a=1000 --sine_b=0.5 --sine_d=20000 \
  --sine_mix_rate_interval_milliseconds=100 --mix_value_scale=2 >"$out" 2>"$err"
rc=$?
fail() {
  echo "bench smoke ($engine): $*" >&2
  echo "--- stdout" >&2; cat "$out" >&2
  echo "--- stderr" >&2; cat "$err" >&2
  exit 1
}
[ $rc -eq 0 ] || fail "exit status $rc"
for b in $(echo "$benchmarks" | tr , ' '); do
  [ "$b" = stats ] && continue
  grep -q "^$b *: .* ops/sec" "$out" || fail "no result line for $b"
done
timed=$(echo "$benchmarks" | tr , '\n' | grep -vc '^stats$')
stalls=$(grep -c '^ *stall: .*, peak RSS ' "$out")
[ "$stalls" -eq "$timed" ] || fail "$stalls stall/RSS lines, expected $timed (one per timed benchmark)"
grep -q '^mixgraph .*(Gets:[0-9]* Puts:[0-9]* Seek:[0-9]*' "$out" || fail "no mixgraph summary"
grep -q '^\.\.\. ' "$out" && fail "a progress line went to stdout"
if command -v python3 >/dev/null 2>&1; then
  python3 - "$dir/out.json" "$timed" <<'PY' || fail "bad JSON"
import json, sys
doc = json.load(open(sys.argv[1]))
bench = doc["engines"][0]["benchmarks"]
assert len(bench) == int(sys.argv[2]), len(bench)
for b in bench:
    assert "stall_micros" in b and "peak_rss_bytes" in b, b
    assert b["peak_rss_bytes"] is None or b["peak_rss_bytes"] > 0, b
PY
fi
rm -rf "$dir"
exit 0
