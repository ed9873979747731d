#!/bin/sh
# The mayfly command-line tool (tools/mayfly.c; CTest mayfly_cli): put creates a database;
# the reading commands refuse a missing one without creating it, and refuse a damaged WAL
# without dropping what follows the damage, so looking at a database cannot change what
# `mayfly check` finds in it.
#   usage: test_mayfly_cli.sh <mayfly> <scratch dir> [<mayfly_bench>]
set -u
tool=$1 dir=$2 bench=${3:-}
rm -rf "$dir"
mkdir -p "$dir" || exit 1
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# A missing database: an error, and nothing created.
if "$tool" get "$dir/nodb" k >"$dir/out" 2>"$dir/err"; then fail "get on a missing database succeeded"; fi
grep -q "does not exist" "$dir/err" || fail "get on a missing database: $(cat "$dir/err")"
[ -e "$dir/nodb" ] && fail "get created $dir/nodb"
"$tool" scan "$dir/nodb" >/dev/null 2>&1 && fail "scan on a missing database succeeded"
"$tool" stats "$dir/nodb" >/dev/null 2>&1 && fail "stats on a missing database succeeded"
[ -e "$dir/nodb" ] && fail "scan or stats created $dir/nodb"

# put creates; get reads back.
for i in 1 2 3 4 5 6 7 8 9; do
  "$tool" put "$dir/db" "key$i" "value-$i-$(printf '%0200d' 0)" >/dev/null || fail "put key$i"
done
out=$("$tool" get "$dir/db" key3) || fail "get key3"
case "$out" in value-3-*) ;; *) fail "get key3 printed '$out'" ;; esac
[ "$("$tool" scan "$dir/db" --limit 2 | wc -l)" -eq 2 ] || fail "scan --limit 2"
for bad in -1 "" 1x 99999999999999999999; do
  "$tool" scan "$dir/db" --limit "$bad" >/dev/null 2>&1
  [ $? -eq 2 ] || fail "scan --limit '$bad' was not a usage error"
done

# A directory of the user's that holds no database: refused, nothing created in it, its LOG
# left as it was.
mkdir -p "$dir/plain" && echo "important notes" >"$dir/plain/LOG"
"$tool" get "$dir/plain" k >/dev/null 2>&1 && fail "get on a plain directory succeeded"
"$tool" scan "$dir/plain" >/dev/null 2>&1 && fail "scan on a plain directory succeeded"
[ "$(cat "$dir/plain/LOG")" = "important notes" ] || fail "a look truncated the user's LOG"
[ -e "$dir/plain/LOCK" ] && fail "a look left a LOCK in a plain directory"

# check takes no options.
"$tool" --options "bogus=1" check "$dir/db" >/dev/null 2>&1
[ $? -eq 2 ] || fail "check with --options was not a usage error"

# Output that cannot be written is a failure; a closed stdout never lands in the database.
if [ -w /dev/full ]; then
  "$tool" scan "$dir/db" >/dev/full 2>/dev/null && fail "scan into a full device succeeded"
fi
lock_before=$(wc -c <"$dir/db/LOCK")
"$tool" scan "$dir/db" >&- 2>/dev/null
[ "$(wc -c <"$dir/db/LOCK")" -eq "$lock_before" ] || fail "scan with stdout closed wrote into LOCK"

# A WAL holding many records (a bench fill: the tool itself flushes at every open), damaged
# in its middle. Needs mayfly_bench (third argument); skipped without it.
if [ -n "$bench" ]; then
  "$bench" --engine=mayfly --benchmarks=fillseq --num=50 --value_size=200 --db="$dir/b" \
    >/dev/null 2>&1 || fail "mayfly_bench fillseq"
  wal=$(ls "$dir/b/mayfly"/*.log | tail -1)
  size=$(wc -c <"$wal")
  [ "$size" -gt 5000 ] || fail "WAL of $size bytes, expected 50 records"
  printf 'X' | dd of="$wal" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
  cp "$wal" "$dir/wal.copy"
  if "$tool" get "$dir/b/mayfly" 0000000000000000 >"$dir/out" 2>"$dir/err"; then
    fail "get with a damaged WAL succeeded"
  fi
  grep -q "corrupt" "$dir/err" || fail "get with a damaged WAL: $(cat "$dir/err")"
  cmp -s "$wal" "$dir/wal.copy" || fail "get changed the damaged WAL"
  "$tool" check "$dir/b/mayfly" >"$dir/out" 2>&1 && fail "check found no damage after get"
  # Asked for explicitly, point_in_time recovery keeps what precedes the damage.
  "$tool" --options "wal_recovery_mode=point_in_time" scan "$dir/b/mayfly" >"$dir/out" ||
    fail "scan with point_in_time recovery"
  n=$(wc -l <"$dir/out")
  [ "$n" -gt 0 ] && [ "$n" -lt 50 ] || fail "point_in_time kept $n of 50 keys"
fi

if [ "$failures" -ne 0 ]; then
  echo "test_mayfly_cli: $failures failure(s)" >&2
  exit 1
fi
echo "test_mayfly_cli: ok"
