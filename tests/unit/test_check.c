/* db_check (src/db/db_check.h), the engine of `mayfly check`: a database with tables, blob
 * files and finished blob GC checks clean and is left byte-for-byte unchanged; then each kind
 * of damage is reported naming the damaged file: a flipped byte in a table data block, in a
 * blob record, in a WAL record and in a MANIFEST record, a missing blob file or WAL, a WAL
 * copied under another number. Leftovers of a crash (files the next open deletes) are told
 * apart from problems. All on the in-memory env. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include "db/db_check.h"
#include "db/options.h"
#include "env/env.h"
#include "mayfly.h"
#include "util/slice.h"
#include "version/version_edit.h"
#include "version/version_set.h"
#include "wal/wal_format.h"
#include "wal/wal_writer.h"

#define DBNAME "/db"

static mf_env *g_env;
static uint64_t g_leftovers; /* of the last check() */

static void put(mayfly_db *db, int i, int ver, size_t len) {
  char k[32], v[1024];
  snprintf(k, sizeof k, "key%06d", i);
  for (size_t j = 0; j < len; j++) v[j] = (char)('a' + (size_t)(i + ver + (int)j) % 26);
  assert_int_equal(mayfly_put(db, k, strlen(k), v, len, 0), MAYFLY_OK);
}

/* A quiesced database: tables on several levels, blob files of which some were garbage
 * collected, and a WAL with unflushed records. */
static void build_db(void) {
  assert_int_equal(env_mem_create(&g_env), MAYFLY_OK);
  struct mayfly_options o;
  options_init_defaults(&o);
  options_set_env(&o, g_env);
  o.create_if_missing = 1;
  o.write_buffer_size = 16 * 1024;
  o.enable_blob_files = 1;
  o.min_blob_size = 200;
  o.blob_file_size = 8 * 1024;
  o.enable_blob_garbage_collection = 1;
  o.blob_garbage_collection_age_cutoff = 1.0;
  o.blob_garbage_collection_force_threshold = 0.2;
  mayfly_db *db = NULL;
  assert_int_equal(mayfly_open(DBNAME, &o, &db), MAYFLY_OK);
  for (int i = 0; i < 300; i++) put(db, i, 0, 40);
  for (int round = 1; round <= 3; round++) {
    for (int i = 100; i < 300; i++) put(db, i, round, 300);
    assert_int_equal(mayfly_flush(db), MAYFLY_OK);
    assert_int_equal(mayfly_compact_range(db, NULL, 0, NULL, 0), MAYFLY_OK);
  }
  assert_int_equal(mayfly_wait_idle(db), MAYFLY_OK);
  for (int i = 0; i < 50; i++) put(db, i, 9, 40); /* stays in the WAL */
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
}

static int teardown(void **state) {
  (void)state;
  if (g_env) g_env->destroy(g_env);
  g_env = NULL;
  return 0;
}

/* Runs the check; returns the problem count, with the report in *text (caller frees). */
static uint64_t check(char **text) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_non_null(f);
  db_check_counts counts = {99, 99};
  assert_int_equal(db_check(DBNAME, g_env, f, &counts), MAYFLY_OK);
  fclose(f);
  printf("%s", buf);
  *text = buf;
  g_leftovers = counts.leftovers;
  return counts.problems;
}

/* The first file in the directory whose name ends with suffix (or starts with it, for
 * "MANIFEST-"). */
static void find_file(const char *suffix, char *path, size_t n) {
  char **names = NULL;
  size_t count = 0;
  assert_int_equal(g_env->list_dir(g_env, DBNAME, &names, &count), MAYFLY_OK);
  path[0] = '\0';
  for (size_t i = 0; i < count && !path[0]; i++) {
    size_t l = strlen(names[i]), sl = strlen(suffix);
    if ((l >= sl && strcmp(names[i] + l - sl, suffix) == 0) ||
        strncmp(names[i], suffix, sl) == 0)
      snprintf(path, n, "%s/%s", DBNAME, names[i]);
  }
  env_free_names(names, count);
  if (!path[0]) fail_msg("no *%s file in the database", suffix);
}

static void write_whole(const char *path, const mf_buf *data) {
  mf_wfile *w = NULL;
  assert_int_equal(g_env->new_writable(g_env, path, &w), MAYFLY_OK);
  assert_int_equal(g_env->append(w, data->data, data->len), MAYFLY_OK);
  assert_int_equal(g_env->sync(w, 1), MAYFLY_OK);
  assert_int_equal(g_env->close_writable(w), MAYFLY_OK);
}

static void flip_byte(const char *path, uint64_t offset) {
  mf_buf data = {0};
  assert_int_equal(env_read_file(g_env, path, &data), MAYFLY_OK);
  assert_true(offset < data.len);
  data.data[offset] ^= 0x5a;
  write_whole(path, &data);
  mf_buf_free(&data);
}

static void expect_reported(const char *path) {
  char *text = NULL;
  uint64_t problems = check(&text);
  const char *base = strrchr(path, '/') + 1;
  if (problems == 0 || !strstr(text, base))
    fail_msg("damage to %s: %llu problems, and the report does not name it:\n%s", base,
             (unsigned long long)problems, text);
  free(text);
}

/* env_mem whose file deletions and syncs take 2 ms, as a disk's may: compactions are still
 * running when close begins, and a worker deleting files without the mutex leaves the
 * window in which another installs a compaction. (sync gets no env: one such env at a
 * time, in slow_base.) */
typedef struct slow_env {
  mf_env env; /* first: the engine's mf_env * is also a slow_env * */
  mf_env *base;
} slow_env;

static mf_env *slow_base;

static int slow_remove(mf_env *env, const char *path) {
  slow_env *e = (slow_env *)env;
  e->base->sleep_micros(e->base, 2000);
  return e->base->remove_file(e->base, path);
}

static int slow_sync(mf_wfile *f, int full) {
  slow_base->sleep_micros(slow_base, 2000);
  return slow_base->sync(f, full);
}

static void slow_destroy(mf_env *env) {
  slow_env *e = (slow_env *)env;
  e->base->destroy(e->base);
  slow_base = NULL;
  free(e);
}

static mf_env *slow_env_create(void) {
  mf_env *base;
  assert_int_equal(env_mem_create(&base), MAYFLY_OK);
  slow_env *e = calloc(1, sizeof *e);
  assert_non_null(e);
  e->env = *base; /* env_mem's functions find their state through ctx, which is copied */
  e->base = base;
  e->env.remove_file = slow_remove;
  e->env.sync = slow_sync;
  e->env.destroy = slow_destroy;
  slow_base = base;
  return &e->env;
}

/* A clean close leaves no obsolete file behind, even when a compaction installs while
 * another worker is deleting the files of an earlier one (its purge is left pending then,
 * and the closing workers must run it; the slow deletions make that likely). Each round
 * ends with an iterator's last pin gone, so a purge is pending as close begins, and with a
 * compaction that may still be running. */
static void test_close_purges(void **state) {
  (void)state;
  int dirty = 0, runs = 40;
  char val[1000];
  memset(val, 'v', sizeof val);
  for (int r = 0; r < runs; r++) {
    g_env = slow_env_create();
    struct mayfly_options o;
    options_init_defaults(&o);
    options_set_env(&o, g_env);
    o.write_buffer_size = 64 * 1024;
    o.level0_file_num_compaction_trigger = 2;
    o.min_blob_size = 100;
    o.blob_file_size = 64 * 1024;
    mayfly_db *db = NULL;
    assert_int_equal(mayfly_open(DBNAME, &o, &db), MAYFLY_OK);
    for (int round = 0; round < 3; round++) {
      mayfly_iter *it = NULL;
      assert_int_equal(mayfly_iter_create(db, NULL, &it), MAYFLY_OK); /* pins the version */
      for (int i = 0; i < 400; i++) {
        char k[16];
        int kl = snprintf(k, sizeof k, "k%05d", (i * 7 + round) % 300);
        assert_int_equal(mayfly_put(db, k, (size_t)kl, val, 200 + (size_t)(i % 5) * 150, 0),
                         MAYFLY_OK);
      }
      assert_int_equal(mayfly_flush(db), MAYFLY_OK);
      mayfly_iter_destroy(it);
    }
    assert_int_equal(mayfly_close(db), MAYFLY_OK);
    db_check_counts counts = {99, 99};
    assert_int_equal(db_check(DBNAME, g_env, NULL, &counts), MAYFLY_OK);
    assert_int_equal(counts.problems, 0);
    if (counts.leftovers) dirty++;
    g_env->destroy(g_env);
    g_env = NULL;
  }
  if (dirty) fail_msg("%d of %d clean closes left obsolete files", dirty, runs);
}

static void test_clean(void **state) {
  (void)state;
  build_db();
  char **names = NULL;
  size_t count = 0;
  assert_int_equal(g_env->list_dir(g_env, DBNAME, &names, &count), MAYFLY_OK);
  int blobs = 0;
  for (size_t i = 0; i < count; i++) blobs += strstr(names[i], ".blob") != NULL;
  env_free_names(names, count);
  assert_true(blobs > 0);
  char *text = NULL;
  uint64_t problems = check(&text);
  if (problems != 0 || g_leftovers != 0)
    fail_msg("a clean database has %llu problems and %llu leftovers:\n%s",
             (unsigned long long)problems, (unsigned long long)g_leftovers, text);
  free(text);
  /* the check wrote nothing: a second listing has the same files */
  char **after = NULL;
  size_t count_after = 0;
  assert_int_equal(g_env->list_dir(g_env, DBNAME, &after, &count_after), MAYFLY_OK);
  assert_int_equal(count_after, count);
  env_free_names(after, count_after);
}

static void test_table_block(void **state) {
  (void)state;
  build_db();
  char path[256];
  find_file(".sst", path, sizeof path);
  flip_byte(path, 20); /* inside the first data block */
  expect_reported(path);
}

static void test_blob_record(void **state) {
  (void)state;
  build_db();
  char path[256];
  find_file(".blob", path, sizeof path);
  uint64_t size = 0;
  assert_int_equal(g_env->file_size(g_env, path, &size), MAYFLY_OK);
  flip_byte(path, size / 2);
  expect_reported(path);
}

static void test_wal_record(void **state) {
  (void)state;
  build_db();
  char path[256];
  find_file(".log", path, sizeof path);
  flip_byte(path, 24 + 12); /* the first record after the 24-byte file header record */
  expect_reported(path);
}

static void test_manifest_record(void **state) {
  (void)state;
  build_db();
  char path[256];
  find_file("MANIFEST-", path, sizeof path);
  flip_byte(path, 24 + 12);
  expect_reported(path);
}

static void test_missing_blob(void **state) {
  (void)state;
  build_db();
  char path[256];
  find_file(".blob", path, sizeof path);
  assert_int_equal(g_env->remove_file(g_env, path), MAYFLY_OK);
  expect_reported(path);
}

/* Files the check has open at once, through an env that counts them. */
static mf_env *g_count_base;
static int g_open_now, g_open_max;

static int count_open_readable(mf_env *env, const char *path, mf_rfile **out) {
  (void)env;
  int rc = g_count_base->open_readable(g_count_base, path, out);
  if (rc == MAYFLY_OK && ++g_open_now > g_open_max) g_open_max = g_open_now;
  return rc;
}

static void count_close_readable(mf_rfile *f) {
  g_open_now--;
  g_count_base->close_readable(f);
}

/* Hundreds of blob files, every one referenced: the check resolves every reference yet keeps
 * a bounded number of files open (it once held one per blob file, and a clean database of
 * about 1000 blob files failed under `ulimit -n 1024`). */
static void test_many_blob_files(void **state) {
  (void)state;
  assert_int_equal(env_mem_create(&g_env), MAYFLY_OK);
  struct mayfly_options o;
  options_init_defaults(&o);
  options_set_env(&o, g_env);
  o.write_buffer_size = 64 * 1024;
  o.min_blob_size = 100;
  o.blob_file_size = 1024; /* a few values per blob file */
  o.enable_blob_garbage_collection = 0;
  mayfly_db *db = NULL;
  assert_int_equal(mayfly_open(DBNAME, &o, &db), MAYFLY_OK);
  for (int i = 0; i < 1500; i++) put(db, i, 0, 300);
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  char **names = NULL;
  size_t count = 0;
  int blobs = 0;
  assert_int_equal(g_env->list_dir(g_env, DBNAME, &names, &count), MAYFLY_OK);
  for (size_t i = 0; i < count; i++) blobs += strstr(names[i], ".blob") != NULL;
  env_free_names(names, count);
  if (blobs < 300) fail_msg("setup: %d blob files, expected hundreds", blobs);
  mf_env counting = *g_env;
  g_count_base = g_env;
  counting.open_readable = count_open_readable;
  counting.close_readable = count_close_readable;
  g_open_now = g_open_max = 0;
  db_check_counts counts = {99, 99};
  assert_int_equal(db_check(DBNAME, &counting, NULL, &counts), MAYFLY_OK);
  assert_int_equal(counts.problems, 0);
  assert_int_equal(counts.leftovers, 0);
  assert_int_equal(g_open_now, 0);
  printf("check of %d blob files: at most %d files open at once\n", blobs, g_open_max);
  if (g_open_max > 80) fail_msg("%d files open at once for %d blob files", g_open_max, blobs);
}

/* A missing table is one problem: its blob references are unknown, so the blob files'
 * garbage counts are not blamed for them (they were, one false problem per blob file). */
static void test_missing_table(void **state) {
  (void)state;
  build_db();
  char path[256];
  find_file(".sst", path, sizeof path);
  assert_int_equal(g_env->remove_file(g_env, path), MAYFLY_OK);
  char *text = NULL;
  assert_int_equal(check(&text), 1);
  assert_non_null(strstr(text, path));
  assert_null(strstr(text, "garbage recount"));
  assert_non_null(strstr(text, "garbage counts not rechecked"));
  free(text);
}

/* Copies the first `len` bytes of src (all when len is SIZE_MAX) to dst. */
static void copy_file(const char *src, const char *dst, size_t len) {
  mf_buf data = {0};
  assert_int_equal(env_read_file(g_env, src, &data), MAYFLY_OK);
  if (len < data.len) data.len = len;
  write_whole(dst, &data);
  mf_buf_free(&data);
}

/* Whether text has a line starting with `kind` ("leftover: ", ...) that names `name`. */
static int has_line(const char *text, const char *kind, const char *name) {
  for (const char *line = text; line && *line;) {
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    if (strncmp(line, kind, strlen(kind)) == 0) {
      const char *at = strstr(line, name);
      if (at && at < line + len) return 1;
    }
    line = end ? end + 1 : NULL;
  }
  return 0;
}

/* What a crash leaves behind: tables and blob files no version lists (whole or cut short),
 * an obsolete WAL (here damaged too), an old MANIFEST, a temporary file. They are leftovers,
 * not problems: the check exits clean, names each, and the next open deletes every one. A
 * table numbered far past the file counter is a stray: only a warning, and it stays. */
static void test_leftovers(void **state) {
  (void)state;
  build_db();
  char sst[256], blob[256], wal[256], manifest[256];
  find_file(".sst", sst, sizeof sst);
  find_file(".blob", blob, sizeof blob);
  find_file(".log", wal, sizeof wal);
  find_file("MANIFEST-", manifest, sizeof manifest);
  copy_file(sst, DBNAME "/999990.sst", SIZE_MAX); /* whole, no version lists it */
  copy_file(sst, DBNAME "/999991.sst", 100);      /* an interrupted table */
  copy_file(blob, DBNAME "/999992.blob", 50);     /* an interrupted blob file */
  copy_file(wal, DBNAME "/000002.log", SIZE_MAX); /* obsolete, header names another */
  copy_file(manifest, DBNAME "/MANIFEST-999993", SIZE_MAX);
  copy_file(manifest, DBNAME "/000004.dbtmp", 10);
  copy_file(sst, DBNAME "/9999999999999.sst", SIZE_MAX); /* a stray */
  copy_file(wal, DBNAME "/9999999999998.log", SIZE_MAX); /* a stray WAL: open skips it */
  static const char *const leftovers[] = {"999990.sst", "999991.sst", "999992.blob",
                                          "000002.log", "MANIFEST-999993", "000004.dbtmp"};
  enum { NUM_LEFTOVERS = sizeof leftovers / sizeof leftovers[0] };
  char *text = NULL;
  uint64_t problems = check(&text);
  if (problems != 0 || g_leftovers != NUM_LEFTOVERS)
    fail_msg("%llu problems, %llu leftovers (want 0 and %d):\n%s",
             (unsigned long long)problems, (unsigned long long)g_leftovers, NUM_LEFTOVERS, text);
  for (int i = 0; i < NUM_LEFTOVERS; i++)
    if (!has_line(text, "leftover: ", leftovers[i]))
      fail_msg("no leftover line for %s:\n%s", leftovers[i], text);
  /* The damage in a leftover is told, as part of it. */
  if (!has_line(text, "leftover: ", "999991.sst: cannot open table"))
    fail_msg("the cut leftover table's damage is not told:\n%s", text);
  if (!has_line(text, "warning: ", "9999999999999.sst") ||
      has_line(text, "leftover: ", "9999999999999.sst") ||
      !has_line(text, "warning: ", "9999999999998.log") ||
      has_line(text, "problem: ", "9999999999998.log"))
    fail_msg("a stray table or WAL is not a warning alone:\n%s", text);
  free(text);

  struct mayfly_options o;
  options_init_defaults(&o);
  options_set_env(&o, g_env);
  mayfly_db *db = NULL;
  assert_int_equal(mayfly_open(DBNAME, &o, &db), MAYFLY_OK);
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  problems = check(&text);
  if (problems != 0 || g_leftovers != 0 || !has_line(text, "warning: ", "9999999999999.sst"))
    fail_msg("after an open: %llu problems, %llu leftovers, and the stray should stay:\n%s",
             (unsigned long long)problems, (unsigned long long)g_leftovers, text);
  free(text);
}

/* Removes every file of the database whose name does not start with keep ("" keeps none). */
static void remove_all_but(const char *keep) {
  char **names = NULL;
  size_t count = 0;
  assert_int_equal(g_env->list_dir(g_env, DBNAME, &names, &count), MAYFLY_OK);
  for (size_t i = 0; i < count; i++) {
    if (keep[0] && strncmp(names[i], keep, strlen(keep)) == 0) continue;
    char path[256];
    snprintf(path, sizeof path, DBNAME "/%s", names[i]);
    assert_int_equal(g_env->remove_file(g_env, path), MAYFLY_OK);
  }
  env_free_names(names, count);
}

/* No CURRENT: with data beside it, a problem (open refuses too); with only a MANIFEST, what a
 * creation interrupted before CURRENT leaves (a leftover: open starts over); with nothing,
 * not a database (a problem, so `mayfly check` on a wrong path does not pass). */
static void test_no_current(void **state) {
  (void)state;
  build_db();
  assert_int_equal(g_env->remove_file(g_env, DBNAME "/CURRENT"), MAYFLY_OK);
  char *text = NULL;
  uint64_t problems = check(&text);
  if (problems == 0 || !has_line(text, "problem: ", "CURRENT: missing, but the directory holds"))
    fail_msg("no CURRENT beside data: %llu problems:\n%s", (unsigned long long)problems, text);
  free(text);

  remove_all_but("MANIFEST-");
  problems = check(&text);
  if (problems != 0 || g_leftovers != 1 || !has_line(text, "leftover: ", "creation that did not"))
    fail_msg("a MANIFEST alone: %llu problems, %llu leftovers:\n%s",
             (unsigned long long)problems, (unsigned long long)g_leftovers, text);
  free(text);

  /* A creation stopped before its MANIFEST: LOCK, LOG and a WAL holding only its header. */
  remove_all_but("");
  mf_buf header = MF_BUF_INIT;
  assert_int_equal(mf_buf_append(&header, "", 0), MAYFLY_OK);
  write_whole(DBNAME "/LOCK", &header);
  write_whole(DBNAME "/LOG", &header);
  mf_wfile *w = NULL;
  wal_writer *ww = NULL;
  uint64_t written = 0;
  assert_int_equal(g_env->new_writable(g_env, DBNAME "/000002.log", &w), MAYFLY_OK);
  assert_int_equal(wal_writer_create(g_env, w, WAL_KIND_WAL, 2, &ww, &written), MAYFLY_OK);
  wal_writer_destroy(ww);
  assert_int_equal(g_env->close_writable(w), MAYFLY_OK);
  problems = check(&text);
  if (problems != 0 || g_leftovers != 1 || !has_line(text, "leftover: ", "creation that did not"))
    fail_msg("a creation stopped before its MANIFEST: %llu problems, %llu leftovers:\n%s",
             (unsigned long long)problems, (unsigned long long)g_leftovers, text);
  free(text);
  mf_buf_free(&header);

  remove_all_but("");
  problems = check(&text);
  if (problems != 1 || !has_line(text, "problem: ", "not a database"))
    fail_msg("an empty directory: %llu problems:\n%s", (unsigned long long)problems, text);
  free(text);
}

/* The WAL the MANIFEST names as the newest writes' log is missing: a problem, named. */
static void test_missing_wal(void **state) {
  (void)state;
  build_db();
  char wal[256];
  find_file(".log", wal, sizeof wal);
  assert_int_equal(g_env->remove_file(g_env, wal), MAYFLY_OK);
  char *text = NULL;
  uint64_t problems = check(&text);
  if (problems != 1 || !has_line(text, "problem: ", strrchr(wal, '/') + 1) ||
      !strstr(text, "missing"))
    fail_msg("missing %s: %llu problems:\n%s", wal, (unsigned long long)problems, text);
  free(text);
}

/* A live WAL whose header names another number (a copy, or a rename): a problem. */
static void test_wal_number_mismatch(void **state) {
  (void)state;
  build_db();
  char wal[256];
  find_file(".log", wal, sizeof wal);
  copy_file(wal, DBNAME "/900000.log", SIZE_MAX);
  char *text = NULL;
  uint64_t problems = check(&text);
  if (problems != 1 || !has_line(text, "problem: ", "900000.log: header says file number"))
    fail_msg("WAL copy: %llu problems:\n%s", (unsigned long long)problems, text);
  free(text);
}

/* The MANIFEST claims one more garbage record than the tables leave: the recount differs. */
static void test_garbage_mismatch(void **state) {
  (void)state;
  build_db();
  version_set *vs = NULL;
  assert_int_equal(version_set_create(g_env, DBNAME, NULL, NULL, &vs), MAYFLY_OK);
  assert_int_equal(version_set_recover(vs), MAYFLY_OK);
  version *v = version_set_current(vs);
  assert_true(v->num_blobs > 0);
  const blob_meta *m = v->blobs[v->num_blobs - 1];
  assert_true(m->garbage_count < m->total_count);
  char name[64];
  snprintf(name, sizeof name, "%06llu.blob", (unsigned long long)m->number);
  version_edit e;
  version_edit_init(&e);
  assert_int_equal(version_edit_add_blob_garbage(&e, m->number, 1, 1), MAYFLY_OK);
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  pthread_mutex_lock(&mu);
  assert_int_equal(version_set_log_and_apply(vs, &e, &mu), MAYFLY_OK);
  pthread_mutex_unlock(&mu);
  version_edit_free(&e);
  version_set_destroy(vs);
  char *text = NULL;
  uint64_t problems = check(&text);
  if (problems != 1 || !strstr(text, name) || !strstr(text, "garbage recount"))
    fail_msg("garbage of %s: %llu problems:\n%s", name, (unsigned long long)problems, text);
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_clean, teardown),
      cmocka_unit_test_teardown(test_close_purges, teardown),
      cmocka_unit_test_teardown(test_table_block, teardown),
      cmocka_unit_test_teardown(test_blob_record, teardown),
      cmocka_unit_test_teardown(test_wal_record, teardown),
      cmocka_unit_test_teardown(test_manifest_record, teardown),
      cmocka_unit_test_teardown(test_missing_blob, teardown),
      cmocka_unit_test_teardown(test_missing_table, teardown),
      cmocka_unit_test_teardown(test_many_blob_files, teardown),
      cmocka_unit_test_teardown(test_leftovers, teardown),
      cmocka_unit_test_teardown(test_no_current, teardown),
      cmocka_unit_test_teardown(test_missing_wal, teardown),
      cmocka_unit_test_teardown(test_wal_number_mismatch, teardown),
      cmocka_unit_test_teardown(test_garbage_mismatch, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
