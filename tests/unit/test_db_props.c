/* Properties and runtime options reflect what the engine did.
 *
 * mayfly.num-files-at-level<N> follows flushes and merges and agrees with the table files in
 * the directory; mayfly.total-sst-size is their total size; mayfly.user-bytes-written counts
 * exactly the key and value bytes accepted since open and mayfly.bytes-written (every byte
 * written to files) is at least that once the WAL is on; mayfly.stats has a row per level in
 * use; mayfly_set_option("write_buffer_size") and the level-0 trigger take effect on the
 * open database; a memtable holds write_buffer_size bytes of data before it is flushed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/options.h"
#include "env/env.h"
#include "mayfly.h"

#define DBNAME "/db"

static mf_env *g_env;
static mayfly_db *g_db; /* the open handle, for the teardown after a failure */

static mayfly_db *open_with(void (*tweak)(struct mayfly_options *)) {
  if (!g_env) assert_int_equal(env_mem_create(&g_env), MAYFLY_OK);
  struct mayfly_options o;
  options_init_defaults(&o);
  options_set_env(&o, g_env);
  if (tweak) tweak(&o);
  mayfly_db *db = NULL;
  int rc = mayfly_open(DBNAME, &o, &db);
  if (rc != MAYFLY_OK) fail_msg("open: %s (%s)", mayfly_strerror(rc), mayfly_errmsg(NULL));
  g_db = db;
  return db;
}

static void close_db(mayfly_db *db) {
  g_db = NULL;
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
}

static void close_and_free(mayfly_db *db) {
  close_db(db);
  g_env->destroy(g_env);
  g_env = NULL;
}

static int teardown(void **state) {
  (void)state;
  if (g_db) mayfly_close(g_db);
  g_db = NULL;
  if (g_env) g_env->destroy(g_env);
  g_env = NULL;
  return 0;
}

static uint64_t prop_u64(mayfly_db *db, const char *name) {
  char *v = NULL;
  int rc = mayfly_property(db, name, &v);
  if (rc != MAYFLY_OK)
    fail_msg("property %s: %s (%s)", name, mayfly_strerror(rc), mayfly_errmsg(db));
  char *end = NULL;
  uint64_t n = strtoull(v, &end, 10);
  if (end == v || *end != '\0') fail_msg("property %s is not a number: \"%s\"", name, v);
  mayfly_free(v);
  return n;
}

static int files_at(mayfly_db *db, int level) {
  char name[64];
  snprintf(name, sizeof name, "mayfly.num-files-at-level%d", level);
  return (int)prop_u64(db, name);
}

/* Number and total size of the .sst files in the directory. */
static void sst_on_disk(int *count, uint64_t *bytes) {
  char **names = NULL;
  size_t n = 0;
  assert_int_equal(g_env->list_dir(g_env, DBNAME, &names, &n), MAYFLY_OK);
  *count = 0;
  *bytes = 0;
  for (size_t i = 0; i < n; i++) {
    size_t l = strlen(names[i]);
    if (l < 4 || strcmp(names[i] + l - 4, ".sst") != 0) continue;
    char path[256];
    snprintf(path, sizeof path, DBNAME "/%s", names[i]);
    uint64_t size = 0;
    assert_int_equal(g_env->file_size(g_env, path, &size), MAYFLY_OK);
    (*count)++;
    *bytes += size;
  }
  env_free_names(names, n);
}

/* Writes n puts of key "p<prefix>-<i>" with vlen-byte values; returns the user bytes. */
static uint64_t write_some(mayfly_db *db, int prefix, int n, size_t vlen, unsigned flags) {
  char k[32];
  char *v = malloc(vlen);
  assert_non_null(v);
  memset(v, 'q', vlen);
  uint64_t user = 0;
  for (int i = 0; i < n; i++) {
    size_t klen = (size_t)snprintf(k, sizeof k, "p%d-%07d", prefix, i);
    int rc = mayfly_put(db, k, klen, v, vlen, flags);
    if (rc != MAYFLY_OK) fail_msg("put: %s", mayfly_strerror(rc));
    user += klen + vlen;
  }
  free(v);
  return user;
}

/* Flushes stay in level 0 (by default a flushed table that overlaps nothing may be placed
 * deeper, up to max_mem_compaction_level) and level 0 is not compacted. */
static void l0_stays(struct mayfly_options *o) {
  o->max_mem_compaction_level = 0;
  o->level0_file_num_compaction_trigger = 100;
  o->level0_slowdown_writes_trigger = 200;
  o->level0_stop_writes_trigger = 300;
}

static void test_files_and_sizes_follow_flushes(void **state) {
  (void)state;
  mayfly_db *db = open_with(l0_stays);
  for (int level = 0; level < 7; level++) assert_int_equal(files_at(db, level), 0);
  assert_int_equal(prop_u64(db, "mayfly.total-sst-size"), 0);
  for (int f = 1; f <= 3; f++) {
    write_some(db, f, 500, 100, 0);
    assert_int_equal(files_at(db, 0), f - 1); /* nothing flushed yet */
    assert_int_equal(mayfly_flush(db), MAYFLY_OK);
    assert_int_equal(files_at(db, 0), f);
    int count;
    uint64_t bytes;
    sst_on_disk(&count, &bytes);
    assert_int_equal(count, f);
    assert_int_equal(prop_u64(db, "mayfly.total-sst-size"), bytes);
    assert_true(bytes > (uint64_t)f * 500 * 100 / 2);
  }
  /* A flush of an empty memtable makes no file. */
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  assert_int_equal(files_at(db, 0), 3);
  /* After a full compaction level 0 is empty and the counts still match the directory. */
  assert_int_equal(mayfly_compact_range(db, NULL, 0, NULL, 0), MAYFLY_OK);
  assert_int_equal(mayfly_wait_idle(db), MAYFLY_OK);
  assert_int_equal(files_at(db, 0), 0);
  int total = 0;
  for (int level = 0; level < 7; level++) total += files_at(db, level);
  int count;
  uint64_t bytes;
  sst_on_disk(&count, &bytes);
  assert_true(total > 0);
  assert_int_equal(total, count);
  assert_int_equal(prop_u64(db, "mayfly.total-sst-size"), bytes);
  /* ... and after reopen. */
  close_db(db);
  db = open_with(l0_stays);
  int total2 = 0;
  for (int level = 0; level < 7; level++) total2 += files_at(db, level);
  assert_int_equal(total2, total);
  assert_int_equal(prop_u64(db, "mayfly.total-sst-size"), bytes);
  close_and_free(db);
}

static int all_files(mayfly_db *db) {
  int total = 0;
  for (int level = 0; level < 7; level++) total += files_at(db, level);
  return total;
}

/* With default options, each flush adds one table somewhere. */
static void test_flush_adds_a_table(void **state) {
  (void)state;
  mayfly_db *db = open_with(NULL);
  assert_int_equal(all_files(db), 0);
  write_some(db, 1, 200, 100, 0);
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  assert_int_equal(all_files(db), 1);
  write_some(db, 2, 200, 100, 0);
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  assert_int_equal(all_files(db), 2);
  int count;
  uint64_t bytes;
  sst_on_disk(&count, &bytes);
  assert_int_equal(count, 2);
  assert_int_equal(prop_u64(db, "mayfly.total-sst-size"), bytes);
  close_and_free(db);
}

static void test_byte_counters(void **state) {
  (void)state;
  mayfly_db *db = open_with(NULL);
  assert_int_equal(prop_u64(db, "mayfly.user-bytes-written"), 0);
  uint64_t b0 = prop_u64(db, "mayfly.bytes-written");
  uint64_t user = write_some(db, 1, 1000, 200, 0);
  assert_int_equal(prop_u64(db, "mayfly.user-bytes-written"), user);
  uint64_t b1 = prop_u64(db, "mayfly.bytes-written");
  assert_true(b1 > b0);
  assert_true(b1 >= user); /* the WAL alone holds every key and value */
  /* batches count the same way, SYNC too */
  mayfly_batch *b = NULL;
  assert_int_equal(mayfly_batch_create(&b), MAYFLY_OK);
  assert_int_equal(mayfly_batch_put(b, "abc", 3, "defgh", 5), MAYFLY_OK);
  assert_int_equal(mayfly_batch_put(b, "", 0, "x", 1), MAYFLY_OK);
  assert_int_equal(mayfly_write(db, b, MAYFLY_SYNC), MAYFLY_OK);
  mayfly_batch_destroy(b);
  user += 9;
  assert_int_equal(prop_u64(db, "mayfly.user-bytes-written"), user);
  /* refused writes count nothing */
  assert_int_equal(mayfly_put(db, "k", 1, "v", 1, 99u), MAYFLY_EINVAL);
  assert_int_equal(prop_u64(db, "mayfly.user-bytes-written"), user);
  /* a flush writes the data again, into a table */
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  uint64_t b2 = prop_u64(db, "mayfly.bytes-written");
  assert_true(b2 >= b1 + prop_u64(db, "mayfly.total-sst-size"));
  assert_true(b2 >= 2 * user * 9 / 10);
  /* counters are per open */
  close_db(db);
  db = open_with(NULL);
  assert_int_equal(prop_u64(db, "mayfly.user-bytes-written"), 0);
  uint64_t after_open = prop_u64(db, "mayfly.bytes-written");
  uint64_t u2 = write_some(db, 2, 100, 50, 0);
  assert_int_equal(prop_u64(db, "mayfly.user-bytes-written"), u2);
  assert_true(prop_u64(db, "mayfly.bytes-written") >= after_open + u2);
  close_and_free(db);
}

static void test_stats_text(void **state) {
  (void)state;
  mayfly_db *db = open_with(l0_stays);
  write_some(db, 1, 300, 100, 0);
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  char *s = NULL;
  assert_int_equal(mayfly_property(db, "mayfly.stats", &s), MAYFLY_OK);
  assert_non_null(s);
  /* a row for level 0 that says it has one file */
  const char *row = NULL;
  for (const char *p = s; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
    if (p[0] == 'L' && p[1] == '0' && (p[2] == ' ' || p[2] == '\t')) row = p;
  }
  if (!row) fail_msg("mayfly.stats has no level-0 row:\n%s", s);
  int files = -1;
  assert_int_equal(sscanf(row + 2, "%d", &files), 1);
  assert_int_equal(files, 1);
  assert_true(strlen(s) > 40);
  mayfly_free(s);
  close_and_free(db);
}

static void test_set_write_buffer_size(void **state) {
  (void)state;
  mayfly_db *db = open_with(l0_stays); /* write_buffer_size: 64 MiB */
  write_some(db, 1, 5000, 200, 0);      /* ~1 MiB: stays in the memtable */
  assert_int_equal(mayfly_wait_idle(db), MAYFLY_OK);
  assert_int_equal(files_at(db, 0), 0);
  assert_int_equal(mayfly_set_option(db, "write_buffer_size", "64KiB"), MAYFLY_OK);
  write_some(db, 2, 5000, 200, 0); /* ~1 MiB more: about 16 memtables of 64 KiB */
  assert_int_equal(mayfly_wait_idle(db), MAYFLY_OK);
  int l0 = files_at(db, 0);
  if (l0 < 8) fail_msg("only %d flushes after write_buffer_size was lowered to 64 KiB", l0);
  /* and back up: few more flushes */
  assert_int_equal(mayfly_set_option(db, "write_buffer_size", "32MiB"), MAYFLY_OK);
  write_some(db, 3, 5000, 200, 0);
  assert_int_equal(mayfly_wait_idle(db), MAYFLY_OK);
  assert_true(files_at(db, 0) <= l0 + 1);
  /* the level-0 trigger too */
  assert_int_equal(mayfly_set_option(db, "level0_file_num_compaction_trigger", "2"), MAYFLY_OK);
  assert_int_equal(mayfly_wait_idle(db), MAYFLY_OK);
  assert_true(files_at(db, 0) < 2);
  close_and_free(db);
}

/* A memtable is switched when its data reaches write_buffer_size, however the entries fit the
 * arena's blocks: with a 1.3 MB buffer, 1 KiB values once filled 5 KB blocks four at a time
 * and the unused fifth of every block counted as data, so each memtable held a fifth less
 * than the option said (82 flushes where RocksDB made 68 in the same workload). */
static void wbs_1300k(struct mayfly_options *o) {
  l0_stays(o);
  o->write_buffer_size = 1300000;
}

/* Writes n puts of vlen-byte values into a fresh database with a 1.3 MB write buffer and
 * checks the number of memtables flushed: each entry costs its key and value plus a few
 * dozen bytes (trailer, length prefixes, skiplist links, a value address), 3% on 1 KiB and
 * less on larger values, so the flushed memtables held flushes * 1.3 MB of data, at most
 * 1.04 * user and at least user - 1.3 MB (what the last, unflushed one may hold). */
static void check_flushes(int n, size_t vlen) {
  mayfly_db *db = open_with(wbs_1300k);
  uint64_t user = write_some(db, 1, n, vlen, 0);
  assert_int_equal(mayfly_wait_idle(db), MAYFLY_OK);
  int flushes = files_at(db, 0);
  if ((uint64_t)flushes * 1300000 > user * 104 / 100 || (uint64_t)(flushes + 1) * 1300000 < user)
    fail_msg("%d flushes for %" PRIu64 " user bytes of %zu-byte values with a 1.3 MB write "
             "buffer", flushes, user, vlen);
  close_and_free(db);
}

static void test_memtable_holds_write_buffer_size(void **state) {
  (void)state;
  check_flushes(12000, 1024); /* 12.4 MB: 9 flushes (12 when block tails counted as data) */
  check_flushes(5400, 2300);  /* 12.5 MB: 9 flushes; 2300 B fit a 20 KB block badly (11) */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_files_and_sizes_follow_flushes, teardown),
      cmocka_unit_test_teardown(test_flush_adds_a_table, teardown),
      cmocka_unit_test_teardown(test_byte_counters, teardown),
      cmocka_unit_test_teardown(test_stats_text, teardown),
      cmocka_unit_test_teardown(test_set_write_buffer_size, teardown),
      cmocka_unit_test_teardown(test_memtable_holds_write_buffer_size, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
