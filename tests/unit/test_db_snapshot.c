/* Snapshots and iterators keep their point in time.
 *
 * A snapshot (and an iterator, which reads at its creation) must show exactly the state of
 * its moment through overwrites, deletes, flushes and level-0 merges (merges are forced with
 * level0_file_num_compaction_trigger = 2 and small memtables). Several snapshots taken at
 * different moments are checked against a recorded model, released in random order, and the
 * remaining ones re-checked after more merges. Finally, a merge may drop old versions only
 * once no snapshot needs them: while a snapshot holds the old versions, "keys dropped" in
 * mayfly.stats stays 0; after release, a third version and a full compaction it counts both
 * older versions of every key. Seed printed;
 * MAYFLY_SEED replays. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/options.h"
#include "env/env.h"
#include "mayfly.h"

#define DBNAME "/db"
#include "test_db_util.h"

/* Checks an iterator against expect[0..n) in both directions. It must be positioned
 * nowhere in particular; it is left at an arbitrary place. */
static void check_iter(mayfly_iter *it, const int *expect, int n, const char *what) {
  char problem[256] = "";
  int present = 0;
  for (int i = 0; i < n; i++) present += expect[i] >= 0;
  for (int dir = 0; dir < 2 && !problem[0]; dir++) {
    int seen = 0, last = dir ? n : -1;
    if (dir) mayfly_iter_seek_to_last(it);
    else mayfly_iter_seek_to_first(it);
    while (mayfly_iter_valid(it)) {
      size_t klen, vlen;
      const char *k = mayfly_iter_key(it, &klen);
      const void *v = mayfly_iter_value(it, &vlen);
      char kb[32];
      int i = -1;
      if (klen < sizeof kb) {
        memcpy(kb, k, klen);
        kb[klen] = '\0';
        sscanf(kb, "key%08d", &i);
      }
      if (i < 0 || i >= n || (dir ? i >= last : i <= last)) {
        snprintf(problem, sizeof problem, "%s: key out of order or stray (%d after %d)", what, i,
                 last);
        break;
      }
      int ver = value_version(i, v, vlen);
      if (ver != expect[i]) {
        snprintf(problem, sizeof problem, "%s (%s): key %d shows version %d, expected %d", what,
                 dir ? "backward" : "forward", i, ver, expect[i]);
        break;
      }
      last = i;
      seen++;
      if (dir) mayfly_iter_prev(it);
      else mayfly_iter_next(it);
    }
    if (!problem[0] && seen != present)
      snprintf(problem, sizeof problem, "%s (%s): saw %d keys, expected %d", what,
               dir ? "backward" : "forward", seen, present);
  }
  if (!problem[0] && mayfly_iter_status(it) != MAYFLY_OK)
    snprintf(problem, sizeof problem, "%s: status %s", what, mayfly_strerror(mayfly_iter_status(it)));
  if (problem[0]) {
    mayfly_iter_destroy(it);
    fail_msg("%s", problem);
  }
}

static void check_snapshot(mayfly_db *db, const mayfly_snapshot *snap, const int *expect, int n,
                           const char *what) {
  for (int i = 0; i < n; i++) {
    int got = get_ver(db, snap, i);
    if (got != expect[i]) fail_msg("%s: key %d is version %d, expected %d", what, i, got, expect[i]);
  }
  mayfly_iter *it = NULL;
  assert_int_equal(mayfly_iter_create(db, snap, &it), MAYFLY_OK);
  check_iter(it, expect, n, what);
  mayfly_iter_destroy(it);
}

static mf_env *g_env;

static mayfly_db *open_small(void) {
  g_env = new_mem_env();
  struct mayfly_options o = opts_for(g_env);
  o.write_buffer_size = 64 * 1024;
  o.level0_file_num_compaction_trigger = 2;
  return open_ok(&o);
}

static void close_small(mayfly_db *db) {
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  g_env->destroy(g_env);
  g_env = NULL;
}

/* The number under the "drop" column of the Sum row of mayfly.stats (keys dropped by
 * compactions). The column is found by its header, counted from the right end of the row
 * because the Sum row may leave middle columns blank. */
static long stats_keys_dropped(mayfly_db *db) {
  char *stats = NULL;
  assert_int_equal(mayfly_property(db, "mayfly.stats", &stats), MAYFLY_OK);
  char *save = NULL, *header = NULL, *sum = NULL;
  for (char *line = strtok_r(stats, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    char lower[512];
    size_t n = strlen(line) < sizeof lower - 1 ? strlen(line) : sizeof lower - 1;
    for (size_t i = 0; i < n; i++) lower[i] = (char)tolower((unsigned char)line[i]);
    lower[n] = '\0';
    if (!header && strstr(lower, "drop")) header = line;
    else if (header && !sum && strncmp(lower, "sum", 3) == 0) sum = line;
  }
  if (!header || !sum) {
    mayfly_free(stats);
    fail_msg("mayfly.stats has no header with a 'dropped' column or no Sum row");
  }
  char *cols[64], *vals[64];
  int nc = 0, nv = 0, drop_col = -1;
  for (char *t = strtok_r(header, " \t", &save); t && nc < 64; t = strtok_r(NULL, " \t", &save))
    cols[nc++] = t;
  for (char *t = strtok_r(sum, " \t", &save); t && nv < 64; t = strtok_r(NULL, " \t", &save))
    vals[nv++] = t;
  for (int c = 0; c < nc; c++) {
    for (char *p = cols[c]; *p; p++) *p = (char)tolower((unsigned char)*p);
    if (strstr(cols[c], "drop")) drop_col = c;
  }
  int from_right = nc - 1 - drop_col;
  long dropped = -1;
  if (drop_col >= 0 && nv - 1 - from_right >= 0) dropped = atol(vals[nv - 1 - from_right]);
  mayfly_free(stats);
  if (dropped < 0) fail_msg("cannot read keys dropped from mayfly.stats");
  return dropped;
}

static int num_files(mayfly_db *db, int level) {
  char name[64], *v = NULL;
  snprintf(name, sizeof name, "mayfly.num-files-at-level%d", level);
  assert_int_equal(mayfly_property(db, name, &v), MAYFLY_OK);
  int n = atoi(v);
  mayfly_free(v);
  return n;
}

/* ---- tests ---- */

static void test_snapshot_survives_overwrite_flush_merge(void **state) {
  (void)state;
  enum { N = 1000 };
  static int v1[N], v2[N], v3[N];
  mayfly_db *db = open_small();
  for (int i = 0; i < N; i++) {
    put_ver(db, i, 1, 100, 0);
    v1[i] = 1;
  }
  const mayfly_snapshot *s1 = NULL, *s2 = NULL;
  assert_int_equal(mayfly_snapshot_create(db, &s1), MAYFLY_OK);
  mayfly_iter *it1 = NULL; /* no snapshot: reads as of its creation */
  assert_int_equal(mayfly_iter_create(db, NULL, &it1), MAYFLY_OK);
  for (int i = 0; i < N; i++) {
    if (i % 3 == 0) {
      del_key(db, i, 0);
      v2[i] = -1;
    } else {
      put_ver(db, i, 2, 120, 0);
      v2[i] = 2;
    }
  }
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  assert_int_equal(mayfly_snapshot_create(db, &s2), MAYFLY_OK);
  for (int i = 0; i < N; i++) {
    if (i % 5 == 0) {
      v3[i] = v2[i];
      continue;
    }
    if (i % 7 == 0) {
      del_key(db, i, 0);
      v3[i] = -1;
    } else {
      put_ver(db, i, 3, 90, 0);
      v3[i] = 3;
    }
  }
  check_snapshot(db, s1, v1, N, "s1 before merges");
  check_snapshot(db, s2, v2, N, "s2 before merges");
  check_snapshot(db, NULL, v3, N, "now before merges");
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  assert_int_equal(mayfly_wait_idle(db), MAYFLY_OK);
  assert_true(num_files(db, 0) < 2); /* the merges did run */
  check_snapshot(db, s1, v1, N, "s1 after merges");
  check_snapshot(db, s2, v2, N, "s2 after merges");
  check_snapshot(db, NULL, v3, N, "now after merges");
  check_iter(it1, v1, N, "iterator created before the changes");
  mayfly_iter_destroy(it1);
  /* An iterator on a snapshot, created after more merges. */
  for (int i = 0; i < N; i += 2) put_ver(db, i, 4, 50, 0);
  assert_int_equal(mayfly_compact_range(db, NULL, 0, NULL, 0), MAYFLY_OK);
  check_snapshot(db, s1, v1, N, "s1 after compact_range");
  mayfly_snapshot_release(db, s1);
  check_snapshot(db, s2, v2, N, "s2 after s1's release");
  mayfly_snapshot_release(db, s2);
  close_small(db);
}

/* Many snapshots, random changes in between, random release order. */
static void test_many_snapshots_random(void **state) {
  (void)state;
  const char *s = getenv("MAYFLY_SEED");
  uint64_t seed = s && *s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL);
  printf("seed=%" PRIu64 " (MAYFLY_SEED to replay)\n", seed);
  srand((unsigned)seed);
  enum { N = 400, SNAPS = 6 };
  static int models[SNAPS][N], cur[N];
  const mayfly_snapshot *snaps[SNAPS];
  int live[SNAPS];
  mayfly_db *db = open_small();
  for (int i = 0; i < N; i++) cur[i] = -1;
  int ver = 0;
  for (int sidx = 0; sidx < SNAPS; sidx++) {
    for (int j = 0; j < 500; j++) {
      int i = rand() % N;
      if (rand() % 6 == 0) {
        del_key(db, i, 0);
        cur[i] = -1;
      } else {
        put_ver(db, i, ++ver, 20 + (size_t)(rand() % 200), 0);
        cur[i] = ver;
      }
    }
    if (rand() % 2) assert_int_equal(mayfly_flush(db), MAYFLY_OK);
    assert_int_equal(mayfly_snapshot_create(db, &snaps[sidx]), MAYFLY_OK);
    memcpy(models[sidx], cur, sizeof cur);
    live[sidx] = 1;
  }
  for (int round = 0; round < SNAPS; round++) {
    /* more churn and merges, then check every live snapshot and release one */
    for (int j = 0; j < 300; j++) put_ver(db, rand() % N, ++ver, 150, 0);
    assert_int_equal(mayfly_flush(db), MAYFLY_OK);
    assert_int_equal(mayfly_wait_idle(db), MAYFLY_OK);
    for (int sidx = 0; sidx < SNAPS; sidx++) {
      if (!live[sidx]) continue;
      char what[64];
      snprintf(what, sizeof what, "snapshot %d (round %d)", sidx, round);
      check_snapshot(db, snaps[sidx], models[sidx], N, what);
    }
    int victim;
    do victim = rand() % SNAPS;
    while (!live[victim]);
    mayfly_snapshot_release(db, snaps[victim]);
    live[victim] = 0;
  }
  close_small(db);
}

/* Old versions are kept while a snapshot needs them and dropped by a merge after release. */
static void test_release_lets_merges_drop(void **state) {
  (void)state;
  enum { N = 1000 };
  mayfly_db *db = open_small();
  for (int i = 0; i < N; i++) put_ver(db, i, 1, 100, 0);
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  assert_int_equal(mayfly_wait_idle(db), MAYFLY_OK);
  const mayfly_snapshot *snap = NULL;
  assert_int_equal(mayfly_snapshot_create(db, &snap), MAYFLY_OK);
  for (int i = 0; i < N; i++) put_ver(db, i, 2, 100, 0);
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  assert_int_equal(mayfly_wait_idle(db), MAYFLY_OK);
  assert_true(num_files(db, 0) < 2);
  /* Every key has exactly two versions and the snapshot sees the older: nothing may go. */
  assert_int_equal(stats_keys_dropped(db), 0);
  for (int i = 0; i < N; i++) assert_int_equal(get_ver(db, snap, i), 1);
  mayfly_snapshot_release(db, snap);
  /* A third version of every key, merged with the other two. Had the snapshot still been
   * there, only version 2 could go (version 1 was visible to it); released, both go. */
  for (int i = 0; i < N; i++) put_ver(db, i, 3, 100, 0);
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  assert_int_equal(mayfly_compact_range(db, NULL, 0, NULL, 0), MAYFLY_OK);
  assert_int_equal(mayfly_wait_idle(db), MAYFLY_OK);
  long dropped = stats_keys_dropped(db);
  if (dropped < 2 * N) {
    char *stats = NULL;
    if (mayfly_property(db, "mayfly.stats", &stats) == MAYFLY_OK) printf("%s", stats);
    mayfly_free(stats);
    fail_msg("after release and a full merge only %ld old versions were dropped, expected at "
             "least %d", dropped, 2 * N);
  }
  for (int i = 0; i < N; i++) assert_int_equal(get_ver(db, NULL, i), 3);
  close_small(db);
}

/* A deleted key's tombstone and old value stay visible to an older snapshot across a
 * merge, and the snapshot-less read does not see the key. */
static void test_snapshot_sees_deleted_key(void **state) {
  (void)state;
  mayfly_db *db = open_small();
  for (int i = 0; i < 200; i++) put_ver(db, i, 1, 60, 0);
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  const mayfly_snapshot *snap = NULL;
  assert_int_equal(mayfly_snapshot_create(db, &snap), MAYFLY_OK);
  for (int i = 0; i < 200; i++) del_key(db, i, 0);
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  assert_int_equal(mayfly_wait_idle(db), MAYFLY_OK);
  static int ones[200], gone[200];
  for (int i = 0; i < 200; i++) {
    ones[i] = 1;
    gone[i] = -1;
  }
  check_snapshot(db, snap, ones, 200, "snapshot before the deletes");
  check_snapshot(db, NULL, gone, 200, "after the deletes");
  mayfly_snapshot_release(db, snap);
  assert_int_equal(mayfly_compact_range(db, NULL, 0, NULL, 0), MAYFLY_OK);
  check_snapshot(db, NULL, gone, 200, "after the deletes and a full compaction");
  close_small(db);
}

/* Tables that a compaction replaced stay on disk while an iterator reads the old version,
 * and are deleted soon after the iterator goes (not at the next flush or compaction). */
static void test_iterator_release_deletes_replaced_tables(void **state) {
  (void)state;
  mf_env *env = new_mem_env();
  struct mayfly_options o = opts_for(env);
  assert_int_equal(mayfly_options_set(&o, "enable_blob_files", "false"), MAYFLY_OK);
  mayfly_db *db = open_ok(&o);
  for (int round = 0; round < 3; round++) {
    for (int i = round; i < 300; i += 3) put_ver(db, i, round, 50, 0);
    flush(db);
  }
  ok(db, mayfly_wait_idle(db), "wait_idle");
  int before = count_files(env, ".sst");
  assert_true(before >= 2);
  mayfly_iter *it = NULL;
  ok(db, mayfly_iter_create(db, NULL, &it), "iter_create");
  compact_all(db);
  /* The iterator's version still holds the replaced tables. */
  assert_int_equal(count_files(env, ".sst"), before + 1);
  int n = 0;
  for (mayfly_iter_seek_to_first(it); mayfly_iter_valid(it); mayfly_iter_next(it)) n++;
  ok(db, mayfly_iter_status(it), "iterator scan");
  assert_int_equal(n, 300);
  mayfly_iter_destroy(it);
  ok(db, mayfly_wait_idle(db), "wait_idle");
  assert_int_equal(count_files(env, ".sst"), 1);
  for (int i = 0; i < 300; i++) assert_int_equal(get_ver(db, NULL, i), i % 3);
  close_ok(db);
  env->destroy(env);
}

/* Releasing a snapshot twice, or one of another database, is refused with a message and
 * changes nothing: the other snapshots still read as of their creation and release
 * normally, whatever the order (under ASan, a double free or a touch of freed memory fails
 * the test). */
static void test_bad_release_is_ignored(void **state) {
  (void)state;
  mayfly_db *db = open_small();
  enum { S = 5 };
  const mayfly_snapshot *snaps[S];
  for (int s = 0; s < S; s++) {
    put_ver(db, 1, s, 100, 0);
    ok(db, mayfly_snapshot_create(db, &snaps[s]), "snapshot_create");
  }
  mf_env *env2 = new_mem_env();
  struct mayfly_options o2 = opts_for(env2);
  mayfly_db *other = open_ok(&o2);
  const mayfly_snapshot *foreign = NULL;
  ok(other, mayfly_snapshot_create(other, &foreign), "snapshot_create");

  mayfly_snapshot_release(db, snaps[2]);
  mayfly_snapshot_release(db, snaps[2]); /* twice */
  assert_non_null(strstr(mayfly_errmsg(db), "not a live snapshot"));
  mayfly_snapshot_release(db, foreign); /* another database's */
  for (int s = 0; s < S; s++)
    if (s != 2) assert_int_equal(get_ver(db, snaps[s], 1), s);
  /* Newest first, then oldest first, then the one in the middle. */
  mayfly_snapshot_release(db, snaps[4]);
  mayfly_snapshot_release(db, snaps[0]);
  mayfly_snapshot_release(db, snaps[4]);
  assert_int_equal(get_ver(db, snaps[1], 1), 1);
  assert_int_equal(get_ver(db, snaps[3], 1), 3);
  mayfly_snapshot_release(db, snaps[3]);
  mayfly_snapshot_release(db, snaps[1]);
  mayfly_snapshot_release(db, snaps[1]);
  assert_int_equal(get_ver(db, NULL, 1), S - 1);
  close_small(db);

  /* The foreign snapshot is still its own database's. */
  assert_int_equal(get_ver(other, foreign, 1), -1);
  mayfly_snapshot_release(other, foreign);
  close_ok(other);
  env2->destroy(env2);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_snapshot_survives_overwrite_flush_merge),
      cmocka_unit_test(test_many_snapshots_random),
      cmocka_unit_test(test_release_lets_merges_drop),
      cmocka_unit_test(test_snapshot_sees_deleted_key),
      cmocka_unit_test(test_iterator_release_deletes_replaced_tables),
      cmocka_unit_test(test_bad_release_is_ignored),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
