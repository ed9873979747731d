#!/usr/bin/env bash
# crashtest.sh: the blackbox crash test (docs/crash-testing.md). Runs tools/mayfly_stress
# against one database again and again, killing it with SIGKILL at a random moment; every
# run first reopens the database and verifies it against the expected-state file, so a
# write the engine acknowledged and then lost, a torn batch or a corrupted value stops the
# test. After every run, `mayfly check` (when built) must find no problem in what the kill
# left: leftovers of interrupted jobs are allowed, damage is not. A final verification (not
# killed) closes the run.
#
#   scripts/crashtest.sh [--cycles=N] [--duration=S] [--build=DIR] [--db=DIR] [--seed=S]
#                        [--kill_min=S] [--kill_max=S] [--threads=N] [--max_key=N]
#                        [--options="name=value;..."] [--keep]
#
#   --cycles=N      kill/reopen cycles (default 20; with --duration and no --cycles: unlimited)
#   --duration=S    stop starting new cycles after S seconds
#   --build=DIR     build directory holding mayfly_stress (default ./build)
#   --db=DIR        work directory: DIR/db, DIR/expected, DIR/cycle-*.log (default: a new
#                   temporary directory, removed after a successful run)
#   --seed=S        base seed; cycle i runs mayfly_stress with seed S+i and draws its
#                   options from S (default: $MAYFLY_CRASHTEST_SEED, else time-based;
#                   always printed)
#   --kill_min/max  the kill delay in seconds, uniform in [min, max] (default 1 and 5)
#   --options=...   extra engine options, appended after the randomized ones
#   --keep          keep the work directory after success too
#
# Exit status: 0 if every verification passed; 1 otherwise (the work directory is kept and
# the seed, cycle and options are printed).
set -euo pipefail

cycles=""
duration=""
build="build"
work=""
seed=""
kill_min=1
kill_max=5
threads=4
max_key=10000
extra_options=""
keep=0

for arg in "$@"; do
  case "$arg" in
    --cycles=*) cycles="${arg#*=}" ;;
    --duration=*) duration="${arg#*=}" ;;
    --build=*) build="${arg#*=}" ;;
    --db=*) work="${arg#*=}" ;;
    --seed=*) seed="${arg#*=}" ;;
    --kill_min=*) kill_min="${arg#*=}" ;;
    --kill_max=*) kill_max="${arg#*=}" ;;
    --threads=*) threads="${arg#*=}" ;;
    --max_key=*) max_key="${arg#*=}" ;;
    --options=*) extra_options="${arg#*=}" ;;
    --keep) keep=1 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "crashtest: unknown argument $arg (see --help)" >&2; exit 1 ;;
  esac
done
[ -z "$cycles" ] && [ -z "$duration" ] && cycles=20
[ -z "$seed" ] && seed="${MAYFLY_CRASHTEST_SEED:-}"
[ -z "$seed" ] && seed=$(( $(date +%s) % 1000000 * 1000 + $$ % 1000 ))

stress="$build/mayfly_stress"
checker="$build/mayfly" # optional: the check after each run is skipped without it
if [ ! -x "$stress" ]; then
  echo "crashtest: $stress not found (build first, or pass --build=DIR)" >&2
  exit 1
fi
if [ -z "$work" ]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/mayfly-crashtest.XXXXXX")
else
  keep=1
  mkdir -p "$work"
fi
db="$work/db"
expected="$work/expected"
rm -rf "$db" "$expected" "$work"/cycle-*.log

# Milliseconds from fractional seconds ("0.3" -> 300).
ms_of() { awk -v s="$1" 'BEGIN { printf "%d", s * 1000 }'; }
kill_min_ms=$(ms_of "$kill_min")
kill_max_ms=$(ms_of "$kill_max")
[ "$kill_max_ms" -lt "$kill_min_ms" ] && kill_max_ms=$kill_min_ms

# Draws come from bash's RANDOM seeded by --seed, always in the main shell (a subshell,
# e.g. a command substitution, would not advance the parent's sequence).
RANDOM=$((seed % 32768))
pick() { local -a a=("$@"); REPLY="${a[RANDOM % ${#a[@]}]}"; }

# Options fixed for the whole run (those a database may not change between opens), then
# drawn again every cycle (the open-time ones vary across reopens, as in a real upgrade or
# reconfiguration). The stress program also changes runtime-mutable options as it runs.
pick false false true
run_options="level_compaction_dynamic_level_bytes=$REPLY"
have_blob=0
"$stress" --has_option=min_blob_size && have_blob=1
cycle_options() { # sets opts
  opts="$run_options"
  pick none lz4 zstd; opts+=";compression=$REPLY"
  pick 64KiB 128KiB 256KiB 1MiB; opts+=";write_buffer_size=$REPLY"
  pick 2 2 3 4; opts+=";max_write_buffer_number=$REPLY"
  pick 1 2 4; opts+=";max_background_jobs=$REPLY"
  pick 0 64KiB 1MiB 8MiB; opts+=";block_cache_size=$REPLY"
  pick 20 100 1000; opts+=";max_open_files=$REPLY"
  pick 0 10 10 16; opts+=";bloom_bits_per_key=$REPLY"
  pick 512 4KiB 16KiB; opts+=";block_size=$REPLY"
  pick false true; opts+=";use_fsync=$REPLY"
  if [ "$have_blob" -eq 1 ]; then # key-value separation, when the engine has it
    pick true true false; opts+=";enable_blob_files=$REPLY"
    pick 0 256 512 512 4KiB; opts+=";min_blob_size=$REPLY"
    pick 64KiB 256KiB 1MiB; opts+=";blob_file_size=$REPLY"
    pick none lz4 zstd; opts+=";blob_compression=$REPLY"
    pick age age group; opts+=";blob_gc_policy=$REPLY"
    pick 0 0.25 0.5; opts+=";blob_garbage_collection_age_cutoff=$REPLY"
    pick 0.1 0.5 1; opts+=";blob_garbage_collection_force_threshold=$REPLY"
    pick 0 0 1MiB; opts+=";blob_cache_size=$REPLY"
  fi
  if [ -n "$extra_options" ]; then opts+=";$extra_options"; fi
}

fail() { # cycle, options, message, log
  echo "crashtest: FAILED in cycle $1: $3" >&2
  echo "crashtest:   seed $seed (cycle seed $(( seed + $1 ))), sync_pct ${sync_pct:-0}," \
       "threads $threads, max_key $max_key, options \"$2\"" >&2
  echo "crashtest:   database $db, expected state $expected, log $4 (kept)" >&2
  echo "crashtest: --- last lines of $4 ---" >&2
  tail -n 15 "$4" >&2 || true
  echo "crashtest: rerun: $0 --build=$build --seed=$seed --cycles=$(( $1 + 1 )) --kill_min=$kill_min" \
       "--kill_max=$kill_max --threads=$threads --max_key=$max_key" \
       "${extra_options:+--options=\"$extra_options\"}" >&2
  exit 1
}

echo "crashtest: seed $seed, work dir $work, kill after ${kill_min}-${kill_max} s," \
     "${cycles:-unlimited} cycles${duration:+, at most $duration s}"
start=$(date +%s)
i=0
killed=0
exited=0
while :; do
  [ -n "$cycles" ] && [ "$i" -ge "$cycles" ] && break
  [ -n "$duration" ] && [ $(( $(date +%s) - start )) -ge "$duration" ] && break
  cycle_options
  pick 0 1 5 20; sync_pct=$REPLY
  log="$work/cycle-$i.log"
  delay_ms=$(( kill_min_ms + (RANDOM * 32768 + RANDOM) % (kill_max_ms - kill_min_ms + 1) ))
  t0=$(date +%s.%N)
  "$stress" --db="$db" --expected="$expected" --threads="$threads" --max_key="$max_key" \
    --seed=$(( seed + i )) --sync_pct="$sync_pct" --options="$opts" --duration=3600 \
    >"$log" 2>&1 &
  pid=$!
  # One cycle in eight counts the delay from the start, so kills also land in recovery and
  # verification; the others count it from the end of verification, so that operations
  # run even when a loaded machine makes the verification slow.
  when="after open+verify"
  if [ $((RANDOM % 8)) -eq 0 ]; then
    when="from start"
  else
    for _ in $(seq 1 3000); do # at most 60 s
      grep -q '^verify ok' "$log" 2>/dev/null && break
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.02
    done
  fi
  sleep "$(awk -v m="$delay_ms" 'BEGIN { printf "%.3f", m / 1000 }')"
  how="killed"
  if kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid" 2>/dev/null || true
  fi
  set +e
  { wait "$pid"; } 2>/dev/null # (no "Killed" notice from the shell)
  status=$?
  set -e
  secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
  if [ "$status" -eq 137 ]; then
    killed=$((killed + 1))
  elif [ "$status" -eq 0 ]; then
    how="exited"
    exited=$((exited + 1))
  elif [ "$status" -eq 2 ]; then
    fail "$i" "$opts" "verification failed (exit 2)" "$log"
  else
    fail "$i" "$opts" "mayfly_stress exited with status $status" "$log"
  fi
  checked=""
  if [ -x "$checker" ]; then
    clog="$work/check-$i.log"
    "$checker" check "$db" >"$clog" 2>&1 || fail "$i" "$opts" "mayfly check found problems" "$clog"
    checked=" check: $(tail -n 1 "$clog" | sed 's/^.*: //')."
    rm -f "$work/check-$((i - 2)).log"
  fi
  verify=$(grep -m1 '^verify ok' "$log" | sed 's/^verify ok: //' || true)
  [ -z "$verify" ] && verify="(killed before its verification finished)"
  last=$(grep '^progress' "$log" | tail -n 1 | sed 's/^progress: //' || true)
  echo "cycle $i: $how after $secs s (delay ${delay_ms} ms $when)${last:+ ($last)};" \
       "start verify: $verify.$checked"
  # Keep the logs of the last two cycles only.
  rm -f "$work/cycle-$((i - 2)).log"
  i=$((i + 1))
done

log="$work/final-verify.log"
cycle_options
set +e
"$stress" --db="$db" --expected="$expected" --max_key="$max_key" --options="$opts" \
  --verify_only >"$log" 2>&1
status=$?
set -e
[ "$status" -ne 0 ] && fail "$i" "$opts" "final verification failed (exit $status)" "$log"
echo "final verify: $(grep -m1 '^verify ok' "$log" | sed 's/^verify ok: //')"
echo "crashtest: PASSED: $i cycles ($killed killed, $exited exited) in" \
     "$(( $(date +%s) - start )) s, seed $seed"
[ "$keep" -eq 0 ] && rm -rf "$work"
exit 0
