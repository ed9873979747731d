/* The version set: logging edits to the MANIFEST, recovering them, CURRENT handling,
 * corruption detection, blob file metadata (additions, garbage, linked tables, obsolete
 * blob files, copy-on-write), and reads (version_get, iterators) over real tables.
 * Everything runs on the in-memory env. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/table_cache.h"
#include "env/env.h"
#include "mayfly.h"
#include "table/merger.h"
#include "table/table_builder.h"
#include "util/coding.h"
#include "util/error.h"
#include "util/ikey.h"
#include "version/filename.h"
#include "version/version_set.h"
#include "wal/wal_writer.h"

#define DB "/db"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

typedef struct fixture {
  mf_env *env;
  struct mayfly_options opt;
} fixture;

static int setup(void **state) {
  fixture *fx = calloc(1, sizeof *fx);
  if (!fx || env_mem_create(&fx->env) != MAYFLY_OK) return -1;
  /* Only use_fsync matters to the version set; zero is its default. */
  memset(&fx->opt, 0, sizeof fx->opt);
  fx->opt.env = fx->env;
  if (fx->env->make_dir(fx->env, DB) != MAYFLY_OK) return -1;
  *state = fx;
  return 0;
}

static int teardown(void **state) {
  fixture *fx = *state;
  fx->env->destroy(fx->env);
  free(fx);
  return 0;
}

/* ---- helpers ---- */

static version_set *open_set(fixture *fx, table_cache *tc, int expect_rc) {
  version_set *vs;
  assert_int_equal(version_set_create(fx->env, DB, &fx->opt, tc, &vs), MAYFLY_OK);
  assert_int_equal(version_set_recover(vs), expect_rc);
  return vs;
}

static int apply(version_set *vs, version_edit *e) {
  pthread_mutex_lock(&mu);
  int rc = version_set_log_and_apply(vs, e, &mu);
  pthread_mutex_unlock(&mu);
  version_edit_free(e);
  return rc;
}

/* Adds file number at level covering user keys [lo, hi] with seqs [1, 100], whose oldest
 * referenced blob file is blob (0: none). */
static void add_linked_file(version_edit *e, int level, uint64_t number, const char *lo,
                            const char *hi, uint64_t blob) {
  mf_buf s = MF_BUF_INIT, l = MF_BUF_INIT;
  ikey_append(&s, mf_slice_cstr(lo), 100, MF_TYPE_VALUE);
  ikey_append(&l, mf_slice_cstr(hi), 1, MF_TYPE_VALUE);
  assert_int_equal(version_edit_add_file(e, level, number, 1000 * number, number,
                                         mf_buf_slice(&s), mf_buf_slice(&l), 1, 100, blob),
                   MAYFLY_OK);
  mf_buf_free(&s);
  mf_buf_free(&l);
}

static void add_file(version_edit *e, int level, uint64_t number, const char *lo,
                     const char *hi) {
  add_linked_file(e, level, number, lo, hi, 0);
}

/* "level:number level:number ..." of v, for compact comparisons. */
static void describe(const version *v, char *out, size_t cap) {
  size_t n = 0;
  out[0] = '\0';
  for (int level = 0; level < MF_NUM_LEVELS; level++)
    for (int i = 0; i < v->num_files[level]; i++)
      n += (size_t)snprintf(out + n, cap - n, "%s%d:%" PRIu64, n ? " " : "", level,
                            v->files[level][i]->number);
}

static void assert_layout(version_set *vs, const char *expected) {
  char got[1024];
  describe(version_set_current(vs), got, sizeof got);
  assert_string_equal(got, expected);
}

static char *read_current(fixture *fx) {
  mf_buf b = MF_BUF_INIT;
  assert_int_equal(env_read_file(fx->env, DB "/CURRENT", &b), MAYFLY_OK);
  assert_int_equal(mf_buf_append(&b, "", 1), MAYFLY_OK);
  return b.data;
}

static void write_file(fixture *fx, const char *path, const void *data, size_t n) {
  mf_wfile *f;
  assert_int_equal(fx->env->new_writable(fx->env, path, &f), MAYFLY_OK);
  assert_int_equal(fx->env->append(f, data, n), MAYFLY_OK);
  assert_int_equal(fx->env->sync(f, 1), MAYFLY_OK);
  assert_int_equal(fx->env->close_writable(f), MAYFLY_OK);
}

/* Builds a session's worth of history: files on L0..L2, a deletion, counters. */
static void make_history(fixture *fx, version_set *vs) {
  version_edit e;
  version_edit_init(&e);
  uint64_t log = version_set_new_file_number(vs);
  version_edit_set_log_number(&e, log);
  add_file(&e, 0, version_set_new_file_number(vs), "a", "m");
  add_file(&e, 1, version_set_new_file_number(vs), "n", "p");
  add_file(&e, 1, version_set_new_file_number(vs), "c", "f");
  pthread_mutex_lock(&mu);
  version_set_set_last_sequence(vs, 500);
  pthread_mutex_unlock(&mu);
  assert_int_equal(apply(vs, &e), MAYFLY_OK);

  version_edit_init(&e);
  mf_buf cp = MF_BUF_INIT;
  ikey_append(&cp, mf_slice_cstr("f"), 7, MF_TYPE_VALUE);
  assert_int_equal(version_edit_set_compact_pointer(&e, 1, mf_buf_slice(&cp)), MAYFLY_OK);
  mf_buf_free(&cp);
  assert_int_equal(version_edit_delete_file(&e, 1, 5), MAYFLY_OK); /* "c".."f" */
  add_file(&e, 2, version_set_new_file_number(vs), "c", "f");
  add_file(&e, 0, version_set_new_file_number(vs), "b", "z");
  pthread_mutex_lock(&mu);
  version_set_set_last_sequence(vs, 900);
  pthread_mutex_unlock(&mu);
  assert_int_equal(apply(vs, &e), MAYFLY_OK);
}

/* ---- tests ---- */

static void test_new_database(void **state) {
  fixture *fx = *state;
  version_set *vs = open_set(fx, NULL, MAYFLY_ENOTFOUND);
  assert_non_null(strstr(mf_error_message(), "CURRENT"));
  assert_int_equal(version_num_iterators(version_set_current(vs)), 0);
  assert_true(version_set_manifest_file_number(vs) == 0);
  version_set_destroy(vs);
}

static void test_apply_and_recover(void **state) {
  fixture *fx = *state;
  version_set *vs = open_set(fx, NULL, MAYFLY_ENOTFOUND);
  make_history(fx, vs);
  /* Numbers: log 2, files 3-5, MANIFEST 6, files 7-8. L0 is ordered by number. */
  assert_layout(vs, "0:3 0:8 1:4 2:7");
  assert_true(version_set_log_number(vs) == 2);
  assert_true(version_set_last_sequence(vs) == 900);
  uint64_t next = version_set_next_file_number(vs);
  uint64_t manifest = version_set_manifest_file_number(vs);
  assert_true(manifest > 0 && manifest < next);
  assert_true(version_set_bytes_written(vs) > 0);
  assert_int_equal(version_set_num_level_files(vs, 1), 1);
  assert_true(version_level_bytes(version_set_current(vs), 0) == 3000 + 8000);
  char expected_current[64];
  snprintf(expected_current, sizeof expected_current, "MANIFEST-%06" PRIu64 "\n", manifest);
  char *cur = read_current(fx);
  assert_string_equal(cur, expected_current);
  free(cur);
  version_set_destroy(vs);

  vs = open_set(fx, NULL, MAYFLY_OK);
  assert_layout(vs, "0:3 0:8 1:4 2:7");
  assert_true(version_set_log_number(vs) == 2);
  assert_true(version_set_last_sequence(vs) == 900);
  assert_true(version_set_next_file_number(vs) == next);
  assert_true(version_set_manifest_file_number(vs) == manifest);
  mf_slice cp = version_set_compact_pointer(vs, 1);
  assert_int_equal((int)cp.len, 9);
  assert_memory_equal(cp.data, "f", 1);
  assert_int_equal((int)version_set_compact_pointer(vs, 2).len, 0);
  /* file_meta fields survive */
  const file_meta *f = version_set_current(vs)->files[2][0];
  assert_true(f->file_size == 7000 && f->num_entries == 7);
  assert_true(f->smallest_seq == 1 && f->largest_seq == 100);
  assert_int_equal(f->allowed_seeks, 100);
  version_set_destroy(vs);
}

static void test_each_restart_starts_a_new_manifest(void **state) {
  fixture *fx = *state;
  version_set *vs = open_set(fx, NULL, MAYFLY_ENOTFOUND);
  make_history(fx, vs);
  uint64_t first = version_set_manifest_file_number(vs);
  version_set_destroy(vs);

  for (int round = 0; round < 3; round++) {
    vs = open_set(fx, NULL, MAYFLY_OK);
    assert_true(version_set_manifest_file_number(vs) == first);
    version_edit e;
    version_edit_init(&e);
    uint64_t number = version_set_new_file_number(vs);
    add_file(&e, 0, number, "q", "r");
    assert_int_equal(apply(vs, &e), MAYFLY_OK);
    uint64_t second = version_set_manifest_file_number(vs);
    assert_true(second > first);
    char name[64];
    snprintf(name, sizeof name, "MANIFEST-%06" PRIu64 "\n", second);
    char *cur = read_current(fx);
    assert_string_equal(cur, name);
    free(cur);
    /* Later edits of the session append to the same MANIFEST. */
    version_edit_init(&e);
    assert_int_equal(version_edit_delete_file(&e, 0, number), MAYFLY_OK);
    assert_int_equal(apply(vs, &e), MAYFLY_OK);
    assert_true(version_set_manifest_file_number(vs) == second);
    version_set_destroy(vs);
    first = second;
  }
  vs = open_set(fx, NULL, MAYFLY_OK);
  assert_layout(vs, "0:3 0:8 1:4 2:7");
  version_set_destroy(vs);
}

static void test_survives_crash(void **state) {
  fixture *fx = *state;
  version_set *vs = open_set(fx, NULL, MAYFLY_ENOTFOUND);
  make_history(fx, vs);
  version_set_destroy(vs);
  assert_int_equal(env_mem_crash(fx->env), MAYFLY_OK);
  vs = open_set(fx, NULL, MAYFLY_OK);
  assert_layout(vs, "0:3 0:8 1:4 2:7");
  /* a second session, crash again right after its first edit */
  version_edit e;
  version_edit_init(&e);
  add_file(&e, 3, version_set_new_file_number(vs), "x", "y");
  assert_int_equal(apply(vs, &e), MAYFLY_OK);
  version_set_destroy(vs);
  assert_int_equal(env_mem_crash(fx->env), MAYFLY_OK);
  vs = open_set(fx, NULL, MAYFLY_OK);
  assert_int_equal(version_set_num_level_files(vs, 3), 1);
  version_set_destroy(vs);
}

static void expect_corrupt_current(fixture *fx, const void *contents, size_t n,
                                   const char *message_part) {
  write_file(fx, DB "/CURRENT", contents, n);
  version_set *vs = open_set(fx, NULL, MAYFLY_ECORRUPT);
  assert_non_null(strstr(mf_error_message(), message_part));
  version_set_destroy(vs);
}

static void test_corrupt_current(void **state) {
  fixture *fx = *state;
  version_set *vs = open_set(fx, NULL, MAYFLY_ENOTFOUND);
  make_history(fx, vs);
  uint64_t manifest = version_set_manifest_file_number(vs);
  version_set_destroy(vs);
  char good[64];
  int n = snprintf(good, sizeof good, "MANIFEST-%06" PRIu64 "\n", manifest);

  expect_corrupt_current(fx, "", 0, "CURRENT");
  expect_corrupt_current(fx, "\n", 1, "CURRENT");
  expect_corrupt_current(fx, "garbage\n", 8, "CURRENT");
  expect_corrupt_current(fx, good, (size_t)n - 1, "CURRENT"); /* no newline */
  expect_corrupt_current(fx, "000005.sst\n", 11, "CURRENT");
  expect_corrupt_current(fx, "MANIFEST-000123\nX\n", 18, "CURRENT");
  expect_corrupt_current(fx, "MANIFEST-999999\n", 16, "MANIFEST-999999");
  static char big[5000]; /* not read whole: CURRENT holds one short name */
  memset(big, 'M', sizeof big);
  big[sizeof big - 1] = '\n';
  expect_corrupt_current(fx, big, sizeof big, "5000 bytes long");
  /* and the good contents still work */
  write_file(fx, DB "/CURRENT", good, (size_t)n);
  vs = open_set(fx, NULL, MAYFLY_OK);
  assert_layout(vs, "0:3 0:8 1:4 2:7");
  version_set_destroy(vs);
}

static void test_corrupt_manifest_record(void **state) {
  fixture *fx = *state;
  version_set *vs = open_set(fx, NULL, MAYFLY_ENOTFOUND);
  make_history(fx, vs);
  uint64_t manifest = version_set_manifest_file_number(vs);
  version_set_destroy(vs);
  char *path = filename_manifest(DB, manifest);
  mf_buf data = MF_BUF_INIT;
  assert_int_equal(env_read_file(fx->env, path, &data), MAYFLY_OK);

  /* A flipped byte in the first edit (after the 31-byte header record): later records are
   * intact, so this is corruption, not a torn tail. */
  mf_buf bad = MF_BUF_INIT;
  mf_buf_set(&bad, data.data, data.len);
  bad.data[31 + 7 + 2] ^= 0x10;
  write_file(fx, path, bad.data, bad.len);
  vs = open_set(fx, NULL, MAYFLY_ECORRUPT);
  const char *base = strrchr(path, '/') + 1;
  assert_non_null(strstr(mf_error_message(), base));
  version_set_destroy(vs);

  /* A torn tail (the last record cut short) is a clean end: the state before that edit.
   * Level 1 is sorted by key, so 5 ("c".."f") comes before 4 ("n".."p"). */
  write_file(fx, path, data.data, data.len - 3);
  vs = open_set(fx, NULL, MAYFLY_OK);
  assert_layout(vs, "0:3 1:5 1:4");
  assert_true(version_set_last_sequence(vs) == 500);
  version_set_destroy(vs);

  /* A MANIFEST cut down to its header has no counters. */
  write_file(fx, path, data.data, 31);
  vs = open_set(fx, NULL, MAYFLY_ECORRUPT);
  assert_non_null(strstr(mf_error_message(), "no next file number"));
  version_set_destroy(vs);

  free(path);
  mf_buf_free(&data);
  mf_buf_free(&bad);
}

/* Writes a MANIFEST by hand from edits and points CURRENT at it. */
static void write_manifest(fixture *fx, uint64_t number, version_edit *edits, int n) {
  char *path = filename_manifest(DB, number);
  mf_wfile *f;
  wal_writer *w;
  assert_int_equal(fx->env->new_writable(fx->env, path, &f), MAYFLY_OK);
  assert_int_equal(wal_writer_create(fx->env, f, WAL_KIND_MANIFEST, number, &w, NULL), MAYFLY_OK);
  for (int i = 0; i < n; i++) {
    mf_buf rec = MF_BUF_INIT;
    assert_int_equal(version_edit_encode(&edits[i], &rec), MAYFLY_OK);
    assert_int_equal(wal_writer_add_record(w, mf_buf_slice(&rec), NULL), MAYFLY_OK);
    mf_buf_free(&rec);
    version_edit_free(&edits[i]);
  }
  wal_writer_destroy(w);
  assert_int_equal(fx->env->sync(f, 1), MAYFLY_OK);
  assert_int_equal(fx->env->close_writable(f), MAYFLY_OK);
  char line[64];
  int len = snprintf(line, sizeof line, "%s\n", strrchr(path, '/') + 1);
  assert_int_equal(env_write_file_atomic(fx->env, DB "/CURRENT", line, (size_t)len), MAYFLY_OK);
  free(path);
}

static void counters(version_edit *e) {
  version_edit_set_log_number(e, 1);
  version_edit_set_next_file_number(e, 100);
  version_edit_set_last_sequence(e, 10);
}

static void test_inconsistent_manifest(void **state) {
  fixture *fx = *state;
  version_edit e[3];
  /* Deleting a file that is not there. */
  for (int i = 0; i < 3; i++) version_edit_init(&e[i]);
  counters(&e[0]);
  add_file(&e[1], 1, 10, "a", "b");
  version_edit_delete_file(&e[2], 1, 11);
  write_manifest(fx, 50, e, 3);
  version_set *vs = open_set(fx, NULL, MAYFLY_ECORRUPT);
  assert_non_null(strstr(mf_error_message(), "MANIFEST-000050"));
  assert_non_null(strstr(mf_error_message(), "not at level 1"));
  assert_layout(vs, "");
  version_set_destroy(vs);

  /* Overlapping files at level 1. */
  for (int i = 0; i < 2; i++) version_edit_init(&e[i]);
  counters(&e[0]);
  add_file(&e[1], 1, 10, "a", "k");
  add_file(&e[1], 1, 11, "j", "z");
  write_manifest(fx, 51, e, 2);
  vs = open_set(fx, NULL, MAYFLY_ECORRUPT);
  assert_non_null(strstr(mf_error_message(), "overlap"));
  version_set_destroy(vs);

  /* The same file twice. */
  for (int i = 0; i < 2; i++) version_edit_init(&e[i]);
  counters(&e[0]);
  add_file(&e[1], 0, 10, "a", "k");
  add_file(&e[1], 2, 10, "a", "k");
  write_manifest(fx, 52, e, 2);
  vs = open_set(fx, NULL, MAYFLY_ECORRUPT);
  assert_non_null(strstr(mf_error_message(), "twice"));
  version_set_destroy(vs);

  /* A missing counter. */
  version_edit_init(&e[0]);
  version_edit_set_log_number(&e[0], 1);
  version_edit_set_next_file_number(&e[0], 100);
  write_manifest(fx, 53, e, 1);
  vs = open_set(fx, NULL, MAYFLY_ECORRUPT);
  assert_non_null(strstr(mf_error_message(), "last sequence"));
  version_set_destroy(vs);

  /* An undecodable record. */
  char *path = filename_manifest(DB, 54);
  mf_wfile *f;
  wal_writer *w;
  assert_int_equal(fx->env->new_writable(fx->env, path, &f), MAYFLY_OK);
  assert_int_equal(wal_writer_create(fx->env, f, WAL_KIND_MANIFEST, 54, &w, NULL), MAYFLY_OK);
  assert_int_equal(wal_writer_add_record(w, mf_slice_make("\x63\x01", 2), NULL), MAYFLY_OK);
  wal_writer_destroy(w);
  fx->env->close_writable(f);
  write_file(fx, DB "/CURRENT", "MANIFEST-000054\n", 16);
  vs = open_set(fx, NULL, MAYFLY_ECORRUPT);
  assert_non_null(strstr(mf_error_message(), "MANIFEST-000054: record at offset 31"));
  version_set_destroy(vs);
  free(path);

  /* A next file number beyond any real database's (it would wrap around to numbers in use). */
  version_edit_init(&e[0]);
  counters(&e[0]);
  version_edit_set_next_file_number(&e[0], MF_FILE_NUMBER_LIMIT);
  write_manifest(fx, 56, e, 1);
  vs = open_set(fx, NULL, MAYFLY_ECORRUPT);
  assert_non_null(strstr(mf_error_message(), "out of range"));
  version_set_destroy(vs);

  /* A valid hand-written one, with numbers above the recorded next file number, and a table
   * holding sequence numbers up to 100 above the recorded last sequence (10): neither may be
   * handed out again. */
  for (int i = 0; i < 2; i++) version_edit_init(&e[i]);
  counters(&e[0]);
  add_file(&e[1], 1, 150, "a", "k");
  write_manifest(fx, 57, e, 2);
  vs = open_set(fx, NULL, MAYFLY_OK);
  assert_layout(vs, "1:150");
  assert_true(version_set_next_file_number(vs) == 151);
  assert_true(version_set_last_sequence(vs) == 100);
  version_set_destroy(vs);
}

static void test_bad_edits_leave_current_unchanged(void **state) {
  fixture *fx = *state;
  version_set *vs = open_set(fx, NULL, MAYFLY_ENOTFOUND);
  make_history(fx, vs);
  uint64_t manifest = version_set_manifest_file_number(vs);
  version *before = version_set_current(vs);
  version_edit e;

  version_edit_init(&e);
  version_edit_delete_file(&e, 2, 3); /* 3 is on level 0 */
  assert_int_equal(apply(vs, &e), MAYFLY_EINVAL);
  version_edit_init(&e);
  add_file(&e, 2, version_set_new_file_number(vs), "e", "g"); /* overlaps 6 */
  assert_int_equal(apply(vs, &e), MAYFLY_EINVAL);
  version_edit_init(&e);
  add_file(&e, 3, 4, "a", "b"); /* 4 is on level 1 */
  assert_int_equal(apply(vs, &e), MAYFLY_EINVAL);
  version_edit_init(&e);
  version_edit_set_log_number(&e, 1); /* below the current log number */
  assert_int_equal(apply(vs, &e), MAYFLY_EINVAL);
  assert_ptr_equal(version_set_current(vs), before);
  assert_true(version_set_manifest_file_number(vs) == manifest);

  /* The failed edits were never logged. */
  version_set_destroy(vs);
  vs = open_set(fx, NULL, MAYFLY_OK);
  assert_layout(vs, "0:3 0:8 1:4 2:7");
  version_set_destroy(vs);
}

/* An env whose sync fails on demand, wrapping the in-memory one. */
static mf_env failing_env;
static int (*real_sync)(mf_wfile *f, int full);
static int fail_syncs;
static int failing_sync(mf_wfile *f, int full) {
  if (fail_syncs) return MF_ERR(MAYFLY_EIO, "injected sync failure");
  return real_sync(f, full);
}

static void test_write_failure(void **state) {
  fixture *fx = *state;
  failing_env = *fx->env;
  real_sync = fx->env->sync;
  failing_env.sync = failing_sync;
  version_set *vs;
  assert_int_equal(version_set_create(&failing_env, DB, &fx->opt, NULL, &vs), MAYFLY_OK);
  assert_int_equal(version_set_recover(vs), MAYFLY_ENOTFOUND);
  make_history(fx, vs);
  uint64_t manifest = version_set_manifest_file_number(vs);
  version *before = version_set_current(vs);

  version_edit e;
  version_edit_init(&e);
  add_file(&e, 4, version_set_new_file_number(vs), "a", "b");
  fail_syncs = 1;
  assert_int_equal(apply(vs, &e), MAYFLY_EIO);
  fail_syncs = 0;
  assert_ptr_equal(version_set_current(vs), before);

  /* The next edit starts a fresh MANIFEST without the failed edit. */
  version_edit_init(&e);
  add_file(&e, 5, version_set_new_file_number(vs), "a", "b");
  assert_int_equal(apply(vs, &e), MAYFLY_OK);
  assert_true(version_set_manifest_file_number(vs) > manifest);
  assert_layout(vs, "0:3 0:8 1:4 2:7 5:10");

  /* A failure while starting a MANIFEST leaves CURRENT on the old one. */
  version_set_destroy(vs);
  assert_int_equal(version_set_create(&failing_env, DB, &fx->opt, NULL, &vs), MAYFLY_OK);
  assert_int_equal(version_set_recover(vs), MAYFLY_OK);
  char *cur_before = read_current(fx);
  version_edit_init(&e);
  add_file(&e, 6, version_set_new_file_number(vs), "a", "b");
  fail_syncs = 1;
  assert_int_equal(apply(vs, &e), MAYFLY_EIO);
  fail_syncs = 0;
  char *cur_after = read_current(fx);
  assert_string_equal(cur_before, cur_after);
  free(cur_before);
  free(cur_after);
  version_set_destroy(vs);

  vs = open_set(fx, NULL, MAYFLY_OK);
  assert_layout(vs, "0:3 0:8 1:4 2:7 5:10");
  version_set_destroy(vs);
}

static void collect(void *arg, int file_type, uint64_t number) {
  uint64_t *seen = arg; /* seen[0] = count, then numbers */
  assert_int_equal(file_type, MF_FILE_TABLE); /* make_history has no blob files */
  seen[1 + seen[0]++] = number;
}

static int seen_contains(const uint64_t *seen, uint64_t number) {
  for (uint64_t i = 0; i < seen[0]; i++)
    if (seen[1 + i] == number) return 1;
  return 0;
}

static void test_live_files(void **state) {
  fixture *fx = *state;
  version_set *vs = open_set(fx, NULL, MAYFLY_ENOTFOUND);
  make_history(fx, vs);
  pthread_mutex_lock(&mu);
  version *old = version_set_current(vs);
  version_ref(old); /* a reader holding on to it */
  pthread_mutex_unlock(&mu);

  version_edit e;
  version_edit_init(&e);
  version_edit_delete_file(&e, 0, 3);
  assert_int_equal(apply(vs, &e), MAYFLY_OK);

  uint64_t seen[64] = {0};
  pthread_mutex_lock(&mu);
  version_set_for_each_live_file(vs, collect, seen);
  pthread_mutex_unlock(&mu);
  assert_true(seen_contains(seen, 3)); /* still referenced by old */
  assert_true(seen_contains(seen, 8) && seen_contains(seen, 4) && seen_contains(seen, 7));
  assert_false(seen_contains(seen, 5)); /* deleted by an edit before old was current */

  pthread_mutex_lock(&mu);
  version_unref(old);
  memset(seen, 0, sizeof seen);
  version_set_for_each_live_file(vs, collect, seen);
  pthread_mutex_unlock(&mu);
  assert_false(seen_contains(seen, 3));
  assert_int_equal((int)seen[0], 3);
  version_set_destroy(vs);
}

/* ---- blob files ---- */

/* "#number total_count/total_bytes g garbage_count/garbage_bytes l linked" per blob file of
 * v, space separated. Also checks the invariants every version keeps. */
static void describe_blobs(const version *v, char *out, size_t cap) {
  size_t n = 0;
  out[0] = '\0';
  for (int i = 0; i < v->num_blobs; i++) {
    const blob_meta *b = v->blobs[i];
    if (i > 0) assert_true(v->blobs[i - 1]->number < b->number);
    assert_true(b->refs > 0);
    assert_true(b->garbage_count <= b->total_count && b->garbage_bytes <= b->total_bytes);
    assert_false(b->num_linked_ssts == 0 && b->garbage_count >= b->total_count);
    assert_ptr_equal(version_find_blob(v, b->number), b);
    n += (size_t)snprintf(out + n, cap - n,
                          "%s#%" PRIu64 " %" PRIu64 "/%" PRIu64 " g%" PRIu64 "/%" PRIu64 " l%d",
                          n ? " " : "", b->number, b->total_count, b->total_bytes,
                          b->garbage_count, b->garbage_bytes, b->num_linked_ssts);
  }
}

static void assert_blobs(const version *v, const char *expected) {
  char got[1024];
  describe_blobs(v, got, sizeof got);
  assert_string_equal(got, expected);
}

static void assert_current_blobs(version_set *vs, const char *expected) {
  assert_blobs(version_set_current(vs), expected);
}

/* Blob file number with total_count records of 100 bytes each. */
static void add_blob(version_edit *e, uint64_t number, uint64_t total_count) {
  assert_int_equal(version_edit_add_blob_file(e, number, total_count, 100 * total_count,
                                              (uint32_t)number * 0x01010101u),
                   MAYFLY_OK);
}

static void add_garbage(version_edit *e, uint64_t number, uint64_t count) {
  assert_int_equal(version_edit_add_blob_garbage(e, number, count, 100 * count), MAYFLY_OK);
}

static void test_blob_addition_and_garbage(void **state) {
  fixture *fx = *state;
  version_set *vs = open_set(fx, NULL, MAYFLY_ENOTFOUND);
  version_edit e;
  /* A flush: one table and the blob file it references. */
  version_edit_init(&e);
  add_blob(&e, 10, 100);
  add_linked_file(&e, 0, 11, "a", "m", 10);
  assert_int_equal(apply(vs, &e), MAYFLY_OK);
  assert_current_blobs(vs, "#10 100/10000 g0/0 l1");
  const blob_meta *b = version_find_blob(version_set_current(vs), 10);
  assert_non_null(b);
  assert_true(b->checksum == 10u * 0x01010101u);
  assert_null(version_find_blob(version_set_current(vs), 11)); /* a table, not a blob */
  assert_null(version_find_blob(version_set_current(vs), 9));

  /* Garbage accumulates: across edits, and several records in one edit. */
  version_edit_init(&e);
  add_garbage(&e, 10, 30);
  assert_int_equal(apply(vs, &e), MAYFLY_OK);
  assert_current_blobs(vs, "#10 100/10000 g30/3000 l1");
  version_edit_init(&e);
  add_garbage(&e, 10, 20);
  add_garbage(&e, 10, 5);
  add_blob(&e, 12, 4);
  add_garbage(&e, 12, 1); /* garbage for a file added by the same edit */
  assert_int_equal(apply(vs, &e), MAYFLY_OK);
  assert_current_blobs(vs, "#10 100/10000 g55/5500 l1 #12 4/400 g1/100 l0");
  assert_true(version_blob_total_bytes(version_set_current(vs)) == 10400);
  assert_true(version_blob_garbage_bytes(version_set_current(vs)) == 5600);
  version_set_destroy(vs);

  /* Recovery replays the additions and adds the garbage up again. */
  vs = open_set(fx, NULL, MAYFLY_OK);
  assert_current_blobs(vs, "#10 100/10000 g55/5500 l1 #12 4/400 g1/100 l0");
  assert_true(version_find_blob(version_set_current(vs), 10)->checksum == 10u * 0x01010101u);
  assert_int_equal(version_set_current(vs)->files[0][0]->oldest_blob_file, 10);
  version_set_destroy(vs);
}

static void test_blob_copy_on_write(void **state) {
  fixture *fx = *state;
  version_set *vs = open_set(fx, NULL, MAYFLY_ENOTFOUND);
  version_edit e;
  version_edit_init(&e);
  add_blob(&e, 10, 100);
  add_blob(&e, 20, 50);
  add_linked_file(&e, 0, 11, "a", "m", 10);
  add_linked_file(&e, 0, 21, "n", "z", 20);
  assert_int_equal(apply(vs, &e), MAYFLY_OK);

  pthread_mutex_lock(&mu);
  version *old = version_set_current(vs);
  version_ref(old); /* a reader */
  pthread_mutex_unlock(&mu);
  const blob_meta *old10 = version_find_blob(old, 10), *old20 = version_find_blob(old, 20);

  /* Garbage for 10 only: 10 gets a new meta, 20 is shared. */
  version_edit_init(&e);
  add_garbage(&e, 10, 40);
  assert_int_equal(apply(vs, &e), MAYFLY_OK);
  version *cur = version_set_current(vs);
  assert_ptr_not_equal(version_find_blob(cur, 10), old10);
  assert_ptr_equal(version_find_blob(cur, 20), old20);
  assert_int_equal(old20->refs, 2); /* old and cur */
  assert_blobs(old, "#10 100/10000 g0/0 l1 #20 50/5000 g0/0 l1");
  assert_blobs(cur, "#10 100/10000 g40/4000 l1 #20 50/5000 g0/0 l1");

  /* A change of linked count alone also copies: a second table linked to 20. */
  pthread_mutex_lock(&mu);
  version *mid = cur;
  version_ref(mid);
  pthread_mutex_unlock(&mu);
  version_edit_init(&e);
  add_linked_file(&e, 1, 22, "n", "p", 20);
  assert_int_equal(apply(vs, &e), MAYFLY_OK);
  cur = version_set_current(vs);
  assert_ptr_not_equal(version_find_blob(cur, 20), old20);
  assert_ptr_equal(version_find_blob(cur, 10), version_find_blob(mid, 10));
  assert_blobs(old, "#10 100/10000 g0/0 l1 #20 50/5000 g0/0 l1");
  assert_blobs(mid, "#10 100/10000 g40/4000 l1 #20 50/5000 g0/0 l1");
  assert_blobs(cur, "#10 100/10000 g40/4000 l1 #20 50/5000 g0/0 l2");

  pthread_mutex_lock(&mu);
  version_unref(old);
  version_unref(mid);
  pthread_mutex_unlock(&mu);
  assert_blobs(version_set_current(vs), "#10 100/10000 g40/4000 l1 #20 50/5000 g0/0 l2");
  version_set_destroy(vs);
}

/* Lists the tables linked to blob in v as "level:number ...". */
static void assert_linked(const version *v, uint64_t blob, const char *expected) {
  file_meta **files;
  int *levels, n;
  assert_int_equal(version_linked_ssts(v, blob, &files, &levels, &n), MAYFLY_OK);
  char got[256];
  size_t len = 0;
  got[0] = '\0';
  for (int i = 0; i < n; i++) {
    assert_true(files[i]->oldest_blob_file == blob);
    len += (size_t)snprintf(got + len, sizeof got - len, "%s%d:%" PRIu64, len ? " " : "",
                            levels[i], files[i]->number);
  }
  if (n == 0) assert_true(files == NULL && levels == NULL);
  free(files);
  free(levels);
  assert_string_equal(got, expected);
}

static void test_blob_linked_and_obsolete(void **state) {
  fixture *fx = *state;
  version_set *vs = open_set(fx, NULL, MAYFLY_ENOTFOUND);
  version_edit e;
  version_edit_init(&e);
  add_blob(&e, 10, 100);
  add_blob(&e, 20, 10);
  add_linked_file(&e, 0, 11, "a", "m", 10);
  add_linked_file(&e, 1, 12, "a", "c", 10);
  add_linked_file(&e, 1, 13, "d", "f", 20);
  add_file(&e, 2, 14, "a", "z"); /* no blob references */
  assert_int_equal(apply(vs, &e), MAYFLY_OK);
  assert_current_blobs(vs, "#10 100/10000 g0/0 l2 #20 10/1000 g0/0 l1");
  assert_linked(version_set_current(vs), 10, "0:11 1:12");
  assert_linked(version_set_current(vs), 20, "1:13");
  assert_linked(version_set_current(vs), 30, "");

  /* Fully garbage but still linked: stays. */
  version_edit_init(&e);
  add_garbage(&e, 10, 100);
  assert_int_equal(apply(vs, &e), MAYFLY_OK);
  assert_current_blobs(vs, "#10 100/10000 g100/10000 l2 #20 10/1000 g0/0 l1");

  /* A trivial move (delete + add of the same table) keeps its link. */
  version_edit_init(&e);
  version_edit_delete_file(&e, 1, 12);
  add_linked_file(&e, 3, 12, "a", "c", 10);
  assert_int_equal(apply(vs, &e), MAYFLY_OK);
  assert_current_blobs(vs, "#10 100/10000 g100/10000 l2 #20 10/1000 g0/0 l1");
  assert_linked(version_set_current(vs), 10, "0:11 3:12");

  /* One link left: stays. */
  version_edit_init(&e);
  version_edit_delete_file(&e, 0, 11);
  assert_int_equal(apply(vs, &e), MAYFLY_OK);
  assert_current_blobs(vs, "#10 100/10000 g100/10000 l1 #20 10/1000 g0/0 l1");

  /* Unlinked but not all garbage: stays. Blob 20 loses its table and gets 9 of 10. */
  version_edit_init(&e);
  version_edit_delete_file(&e, 1, 13);
  add_garbage(&e, 20, 9);
  assert_int_equal(apply(vs, &e), MAYFLY_OK);
  assert_current_blobs(vs, "#10 100/10000 g100/10000 l1 #20 10/1000 g9/900 l0");

  /* The last link of 10 goes: dropped. The last record of 20 becomes garbage: dropped. */
  pthread_mutex_lock(&mu);
  version *pinned = version_set_current(vs);
  version_ref(pinned);
  pthread_mutex_unlock(&mu);
  version_edit_init(&e);
  version_edit_delete_file(&e, 3, 12);
  assert_int_equal(apply(vs, &e), MAYFLY_OK);
  assert_current_blobs(vs, "#20 10/1000 g9/900 l0");
  assert_null(version_find_blob(version_set_current(vs), 10));
  assert_linked(version_set_current(vs), 10, "");
  version_edit_init(&e);
  add_garbage(&e, 20, 1);
  assert_int_equal(apply(vs, &e), MAYFLY_OK);
  assert_current_blobs(vs, "");
  assert_true(version_blob_total_bytes(version_set_current(vs)) == 0);
  /* The pinned reader still sees both. */
  assert_blobs(pinned, "#10 100/10000 g100/10000 l1 #20 10/1000 g9/900 l0");

  /* Garbage for a dropped blob file is garbage for an unknown one. */
  version_edit_init(&e);
  add_garbage(&e, 20, 0);
  assert_int_equal(apply(vs, &e), MAYFLY_EINVAL);
  assert_non_null(strstr(mf_error_message(), "not present"));

  /* Added and fully garbage in one edit, never linked: dropped at once. */
  version_edit_init(&e);
  add_blob(&e, 30, 2);
  add_garbage(&e, 30, 2);
  assert_int_equal(apply(vs, &e), MAYFLY_OK);
  assert_current_blobs(vs, "");

  pthread_mutex_lock(&mu);
  version_unref(pinned);
  pthread_mutex_unlock(&mu);
  assert_layout(vs, "2:14");
  version_set_destroy(vs);

  /* Replaying the MANIFEST drops exactly the same files. */
  vs = open_set(fx, NULL, MAYFLY_OK);
  assert_layout(vs, "2:14");
  assert_current_blobs(vs, "");
  version_set_destroy(vs);
}

static void test_blob_bad_edits(void **state) {
  fixture *fx = *state;
  version_set *vs = open_set(fx, NULL, MAYFLY_ENOTFOUND);
  version_edit e;
  version_edit_init(&e);
  add_blob(&e, 10, 100);
  add_linked_file(&e, 0, 11, "a", "m", 10);
  assert_int_equal(apply(vs, &e), MAYFLY_OK);
  version *before = version_set_current(vs);

  struct {
    const char *what, *message;
  } cases[] = {
      {"duplicate addition", "already present"},
      {"duplicate in one edit", "already present"},
      {"garbage for unknown file", "not present"},
      {"garbage count over total", "exceeds"},
      {"garbage bytes over total", "exceeds"},
      {"accumulated garbage over total", "exceeds"},
      {"dangling oldest_blob_file", "referencing blob file 99"},
  };
  for (int c = 0; c < (int)(sizeof cases / sizeof cases[0]); c++) {
    version_edit_init(&e);
    switch (c) {
      case 0: add_blob(&e, 10, 5); break;
      case 1: add_blob(&e, 40, 5); add_blob(&e, 40, 5); break;
      case 2: add_garbage(&e, 41, 1); break;
      case 3: assert_int_equal(version_edit_add_blob_garbage(&e, 10, 101, 1), MAYFLY_OK); break;
      case 4: assert_int_equal(version_edit_add_blob_garbage(&e, 10, 1, 10001), MAYFLY_OK); break;
      case 5: add_garbage(&e, 10, 60); add_garbage(&e, 10, 41); break;
      case 6: add_linked_file(&e, 0, 42, "a", "b", 99); break;
    }
    int rc = apply(vs, &e);
    if (rc != MAYFLY_EINVAL) fail_msg("%s: rc %d", cases[c].what, rc);
    if (!strstr(mf_error_message(), cases[c].message))
      fail_msg("%s: message '%s'", cases[c].what, mf_error_message());
    assert_ptr_equal(version_set_current(vs), before);
  }
  assert_current_blobs(vs, "#10 100/10000 g0/0 l1");
  version_set_destroy(vs);
  vs = open_set(fx, NULL, MAYFLY_OK); /* nothing of the failed edits was logged */
  assert_current_blobs(vs, "#10 100/10000 g0/0 l1");
  assert_layout(vs, "0:11");
  version_set_destroy(vs);
}

static void test_blob_inconsistent_manifest(void **state) {
  fixture *fx = *state;
  struct {
    int kind;
    const char *message;
  } cases[] = {
      {0, "already present"}, /* duplicate addition across records */
      {1, "not present"},     /* garbage for an unknown blob file */
      {2, "exceeds"},         /* garbage beyond the total, accumulated over records */
      {3, "not present"},     /* a table referencing a blob file never added */
      {4, "not present"},     /* garbage for a blob file an earlier record made obsolete */
  };
  for (int c = 0; c < (int)(sizeof cases / sizeof cases[0]); c++) {
    version_edit e[3];
    for (int i = 0; i < 3; i++) version_edit_init(&e[i]);
    counters(&e[0]);
    add_blob(&e[0], 10, 100);
    add_linked_file(&e[0], 0, 11, "a", "m", 10);
    switch (cases[c].kind) {
      case 0: add_blob(&e[2], 10, 1); break;
      case 1: add_garbage(&e[2], 12, 1); break;
      case 2: add_garbage(&e[1], 10, 50); add_garbage(&e[2], 10, 51); break;
      case 3: add_linked_file(&e[2], 1, 13, "a", "b", 12); break;
      case 4:
        add_garbage(&e[1], 10, 100);
        version_edit_delete_file(&e[1], 0, 11);
        add_garbage(&e[2], 10, 0);
        break;
    }
    uint64_t number = 60 + (uint64_t)c;
    write_manifest(fx, number, e, 3);
    version_set *vs = open_set(fx, NULL, MAYFLY_ECORRUPT);
    char name[64];
    snprintf(name, sizeof name, "MANIFEST-%06" PRIu64 ": record at offset", number);
    if (!strstr(mf_error_message(), name) || !strstr(mf_error_message(), cases[c].message))
      fail_msg("case %d: message '%s'", c, mf_error_message());
    assert_current_blobs(vs, "");
    version_set_destroy(vs);
  }

  /* And a consistent one: a blob number above the recorded next file number is marked used. */
  version_edit e[2];
  for (int i = 0; i < 2; i++) version_edit_init(&e[i]);
  counters(&e[0]);
  add_blob(&e[1], 500, 3);
  add_garbage(&e[1], 500, 1);
  write_manifest(fx, 70, e, 2);
  version_set *vs = open_set(fx, NULL, MAYFLY_OK);
  assert_current_blobs(vs, "#500 3/300 g1/100 l0");
  assert_true(version_set_next_file_number(vs) == 501);
  version_set_destroy(vs);
}

static void test_blob_recovery_and_rollover(void **state) {
  fixture *fx = *state;
  version_set *vs = open_set(fx, NULL, MAYFLY_ENOTFOUND);
  version_edit e;
  /* Several edits in the first MANIFEST. */
  version_edit_init(&e);
  add_blob(&e, 10, 100);
  add_linked_file(&e, 0, 11, "a", "m", 10);
  assert_int_equal(apply(vs, &e), MAYFLY_OK);
  version_edit_init(&e);
  add_blob(&e, 20, 40);
  add_blob(&e, 21, 7);
  add_linked_file(&e, 0, 22, "b", "n", 20);
  add_linked_file(&e, 1, 23, "c", "d", 20);
  add_garbage(&e, 10, 33);
  assert_int_equal(apply(vs, &e), MAYFLY_OK);
  version_edit_init(&e);
  add_garbage(&e, 10, 2);
  add_garbage(&e, 21, 7); /* unlinked and all garbage: dropped */
  add_garbage(&e, 20, 40); /* all garbage but linked: kept */
  assert_int_equal(apply(vs, &e), MAYFLY_OK);
  const char *expected = "#10 100/10000 g35/3500 l1 #20 40/4000 g40/4000 l2";
  assert_current_blobs(vs, expected);
  uint64_t first_manifest = version_set_manifest_file_number(vs);
  version_set_destroy(vs);

  vs = open_set(fx, NULL, MAYFLY_OK);
  assert_current_blobs(vs, expected);
  /* The next edit rolls over to a new MANIFEST starting with a snapshot. */
  version_edit_init(&e);
  add_garbage(&e, 10, 5);
  assert_int_equal(apply(vs, &e), MAYFLY_OK);
  assert_true(version_set_manifest_file_number(vs) > first_manifest);
  expected = "#10 100/10000 g40/4000 l1 #20 40/4000 g40/4000 l2";
  assert_current_blobs(vs, expected);
  version_set_destroy(vs);

  /* The old MANIFEST is gone (as the obsolete-file sweep would do): only the snapshot and
   * the edit after it describe the state. */
  char *old_path = filename_manifest(DB, first_manifest);
  assert_int_equal(fx->env->remove_file(fx->env, old_path), MAYFLY_OK);
  free(old_path);
  vs = open_set(fx, NULL, MAYFLY_OK);
  assert_current_blobs(vs, expected);
  assert_layout(vs, "0:11 0:22 1:23");
  /* The blob file left over from before keeps behaving: its last link goes, it is dropped. */
  version_edit_init(&e);
  version_edit_delete_file(&e, 0, 22);
  version_edit_delete_file(&e, 1, 23);
  assert_int_equal(apply(vs, &e), MAYFLY_OK);
  assert_current_blobs(vs, "#10 100/10000 g40/4000 l1");
  version_set_destroy(vs);
  vs = open_set(fx, NULL, MAYFLY_OK);
  assert_current_blobs(vs, "#10 100/10000 g40/4000 l1");
  version_set_destroy(vs);
}

typedef struct seen_files {
  int n;
  int types[64];
  uint64_t numbers[64];
} seen_files;

static void collect_typed(void *arg, int file_type, uint64_t number) {
  seen_files *s = arg;
  assert_true(s->n < 64);
  s->types[s->n] = file_type;
  s->numbers[s->n++] = number;
}

static int seen_typed(const seen_files *s, int type, uint64_t number) {
  for (int i = 0; i < s->n; i++)
    if (s->types[i] == type && s->numbers[i] == number) return 1;
  return 0;
}

static void test_live_blob_files(void **state) {
  fixture *fx = *state;
  version_set *vs = open_set(fx, NULL, MAYFLY_ENOTFOUND);
  version_edit e;
  version_edit_init(&e);
  add_blob(&e, 10, 1);
  add_blob(&e, 20, 1);
  add_linked_file(&e, 0, 11, "a", "m", 10);
  add_linked_file(&e, 0, 21, "n", "z", 20);
  assert_int_equal(apply(vs, &e), MAYFLY_OK);
  pthread_mutex_lock(&mu);
  version *old = version_set_current(vs);
  version_ref(old);
  pthread_mutex_unlock(&mu);

  /* Table 11 and blob file 10 leave the current version. */
  version_edit_init(&e);
  version_edit_delete_file(&e, 0, 11);
  add_garbage(&e, 10, 1);
  assert_int_equal(apply(vs, &e), MAYFLY_OK);
  assert_current_blobs(vs, "#20 1/100 g0/0 l1");

  seen_files seen = {0};
  pthread_mutex_lock(&mu);
  version_set_for_each_live_file(vs, collect_typed, &seen);
  pthread_mutex_unlock(&mu);
  assert_true(seen_typed(&seen, MF_FILE_BLOB, 10)); /* the pinned version still holds it */
  assert_true(seen_typed(&seen, MF_FILE_TABLE, 11));
  assert_true(seen_typed(&seen, MF_FILE_BLOB, 20) && seen_typed(&seen, MF_FILE_TABLE, 21));
  assert_false(seen_typed(&seen, MF_FILE_TABLE, 10) || seen_typed(&seen, MF_FILE_BLOB, 11));

  pthread_mutex_lock(&mu);
  version_unref(old);
  memset(&seen, 0, sizeof seen);
  version_set_for_each_live_file(vs, collect_typed, &seen);
  pthread_mutex_unlock(&mu);
  assert_int_equal(seen.n, 2);
  assert_true(seen_typed(&seen, MF_FILE_BLOB, 20) && seen_typed(&seen, MF_FILE_TABLE, 21));
  version_set_destroy(vs);
}

/* ---- reads over real tables ---- */

typedef struct kv {
  const char *key;
  uint64_t seq;
  int type;
  const char *value;
} kv;

/* Writes table number from entries (in ikey order) and adds it to e at level. */
static void build_table(fixture *fx, version_edit *e, int level, uint64_t number,
                        const kv *entries, int n) {
  char *path = filename_table(DB, number);
  mf_wfile *f;
  table_builder *b;
  table_options o = {4096, 16, 10, MF_COMPRESSION_NONE, 0};
  assert_int_equal(fx->env->new_writable(fx->env, path, &f), MAYFLY_OK);
  assert_int_equal(table_builder_create(&o, fx->env, f, path, &b), MAYFLY_OK);
  mf_buf smallest = MF_BUF_INIT, largest = MF_BUF_INIT, k = MF_BUF_INIT;
  uint64_t min_seq = UINT64_MAX, max_seq = 0;
  for (int i = 0; i < n; i++) {
    mf_buf_clear(&k);
    ikey_append(&k, mf_slice_cstr(entries[i].key), entries[i].seq, entries[i].type);
    assert_int_equal(table_builder_add(b, mf_buf_slice(&k), mf_slice_cstr(entries[i].value)),
                     MAYFLY_OK);
    if (i == 0) mf_buf_set(&smallest, k.data, k.len);
    mf_buf_set(&largest, k.data, k.len);
    if (entries[i].seq < min_seq) min_seq = entries[i].seq;
    if (entries[i].seq > max_seq) max_seq = entries[i].seq;
  }
  assert_int_equal(table_builder_finish(b), MAYFLY_OK);
  uint64_t size = table_builder_file_size(b);
  table_builder_destroy(b);
  assert_int_equal(fx->env->sync(f, 1), MAYFLY_OK);
  assert_int_equal(fx->env->close_writable(f), MAYFLY_OK);
  assert_int_equal(version_edit_add_file(e, level, number, size, (uint64_t)n,
                                         mf_buf_slice(&smallest), mf_buf_slice(&largest), min_seq,
                                         max_seq, 0),
                   MAYFLY_OK);
  mf_buf_free(&smallest);
  mf_buf_free(&largest);
  mf_buf_free(&k);
  free(path);
}

static const kv l0_old[] = {{"k1", 5, MF_TYPE_VALUE, "v1@5"}, {"k2", 6, MF_TYPE_VALUE, "v2@6"}};
static const kv l0_new[] = {{"k1", 8, MF_TYPE_VALUE, "v1@8"},
                            {"k1", 7, MF_TYPE_VALUE, "v1@7"},
                            {"k3", 9, MF_TYPE_DELETE, ""}};
static const kv l1_a[] = {{"k0", 1, MF_TYPE_VALUE, "v0@1"},
                          {"k1", 2, MF_TYPE_VALUE, "v1@2"},
                          {"k2", 3, MF_TYPE_VALUE, "v2@3"},
                          {"k3", 3, MF_TYPE_BLOB_INDEX, "blob-index-k3"}};
static const kv l1_b[] = {{"k4", 4, MF_TYPE_VALUE, "v4@4"}, {"k6", 4, MF_TYPE_VALUE, "v6@4"}};
static const kv l2[] = {{"k5", 1, MF_TYPE_VALUE, "v5@1"}, {"k6", 1, MF_TYPE_VALUE, "v6@1"}};

static version_set *make_tables(fixture *fx, table_cache **tc) {
  assert_int_equal(table_cache_create(fx->env, DB, NULL, 10, tc), MAYFLY_OK);
  version_set *vs = open_set(fx, *tc, MAYFLY_ENOTFOUND);
  version_edit e;
  version_edit_init(&e);
  /* Added out of order on purpose: the version sorts them. */
  build_table(fx, &e, 1, 23, l1_b, 2);
  build_table(fx, &e, 0, 21, l0_new, 3);
  build_table(fx, &e, 0, 20, l0_old, 2);
  build_table(fx, &e, 1, 22, l1_a, 4);
  build_table(fx, &e, 2, 24, l2, 2);
  pthread_mutex_lock(&mu);
  version_set_mark_file_number_used(vs, 24);
  version_set_set_last_sequence(vs, 9);
  pthread_mutex_unlock(&mu);
  assert_int_equal(apply(vs, &e), MAYFLY_OK);
  assert_layout(vs, "0:20 0:21 1:22 1:23 2:24");
  return vs;
}

static void expect_get(version *v, table_cache *tc, const char *key, uint64_t snap, int rc,
                       int type, uint64_t seq, const char *value) {
  int got_type = -1;
  uint64_t got_seq = 0;
  mf_buf val = MF_BUF_INIT;
  int got = version_get(v, tc, mf_slice_cstr(key), snap, &got_type, &got_seq, &val, NULL);
  if (got != rc) fail_msg("get %s@%" PRIu64 ": rc %d, want %d (%s)", key, snap, got, rc,
                          mf_error_message());
  if (rc == MAYFLY_OK) {
    assert_int_equal(got_type, type);
    assert_true(got_seq == seq);
    if (type != MF_TYPE_DELETE) {
      assert_int_equal((int)val.len, (int)strlen(value));
      assert_memory_equal(val.data, value, val.len);
    }
  }
  mf_buf_free(&val);
}

static void test_version_get(void **state) {
  fixture *fx = *state;
  table_cache *tc;
  version_set *vs = make_tables(fx, &tc);
  version *v = version_set_current(vs);
  uint64_t max = MF_MAX_SEQ;
  expect_get(v, tc, "k1", max, MAYFLY_OK, MF_TYPE_VALUE, 8, "v1@8"); /* newest L0 file */
  expect_get(v, tc, "k1", 7, MAYFLY_OK, MF_TYPE_VALUE, 7, "v1@7");
  expect_get(v, tc, "k1", 6, MAYFLY_OK, MF_TYPE_VALUE, 5, "v1@5");   /* older L0 file */
  expect_get(v, tc, "k1", 4, MAYFLY_OK, MF_TYPE_VALUE, 2, "v1@2");   /* L1 */
  expect_get(v, tc, "k1", 1, MAYFLY_ENOTFOUND, 0, 0, NULL);
  expect_get(v, tc, "k2", max, MAYFLY_OK, MF_TYPE_VALUE, 6, "v2@6");
  expect_get(v, tc, "k2", 5, MAYFLY_OK, MF_TYPE_VALUE, 3, "v2@3");
  expect_get(v, tc, "k3", max, MAYFLY_OK, MF_TYPE_DELETE, 9, NULL); /* tombstone wins */
  expect_get(v, tc, "k3", 8, MAYFLY_OK, MF_TYPE_BLOB_INDEX, 3, "blob-index-k3");
  expect_get(v, tc, "k0", max, MAYFLY_OK, MF_TYPE_VALUE, 1, "v0@1");
  expect_get(v, tc, "k4", max, MAYFLY_OK, MF_TYPE_VALUE, 4, "v4@4"); /* second L1 file */
  expect_get(v, tc, "k5", max, MAYFLY_OK, MF_TYPE_VALUE, 1, "v5@1"); /* falls to L2 */
  expect_get(v, tc, "k6", max, MAYFLY_OK, MF_TYPE_VALUE, 4, "v6@4"); /* L1 shadows L2 */
  expect_get(v, tc, "k6", 3, MAYFLY_OK, MF_TYPE_VALUE, 1, "v6@1");
  expect_get(v, tc, "k35", max, MAYFLY_ENOTFOUND, 0, 0, NULL); /* between files */
  expect_get(v, tc, "a", max, MAYFLY_ENOTFOUND, 0, 0, NULL);
  expect_get(v, tc, "z", max, MAYFLY_ENOTFOUND, 0, 0, NULL);
  char longkey[400];
  memset(longkey, 'k', sizeof longkey - 1);
  longkey[sizeof longkey - 1] = '\0';
  expect_get(v, tc, longkey, max, MAYFLY_ENOTFOUND, 0, 0, NULL); /* heap lookup key */

  /* A table the MANIFEST names but the directory lost: an error, never a silent miss. */
  char *path = filename_table(DB, 24);
  table_cache_evict(tc, 24);
  assert_int_equal(fx->env->remove_file(fx->env, path), MAYFLY_OK);
  free(path);
  expect_get(v, tc, "k5", max, MAYFLY_ECORRUPT, 0, 0, NULL);
  assert_non_null(strstr(mf_error_message(), "000024"));

  version_set_destroy(vs);
  table_cache_destroy(tc);
}

/* Every entry of the tables above, in internal-key order. */
static const kv all_entries[] = {
    {"k0", 1, 1, "v0@1"}, {"k1", 8, 1, "v1@8"}, {"k1", 7, 1, "v1@7"},
    {"k1", 5, 1, "v1@5"}, {"k1", 2, 1, "v1@2"}, {"k2", 6, 1, "v2@6"},
    {"k2", 3, 1, "v2@3"}, {"k3", 9, 0, ""},     {"k3", 3, 2, "blob-index-k3"},
    {"k4", 4, 1, "v4@4"}, {"k5", 1, 1, "v5@1"}, {"k6", 4, 1, "v6@4"},
    {"k6", 1, 1, "v6@1"},
};
#define NUM_ALL ((int)(sizeof all_entries / sizeof all_entries[0]))

static void assert_entry(mf_iter *it, int i) {
  assert_true(iter_valid(it));
  mf_parsed_ikey p;
  assert_true(ikey_parse(iter_key(it), &p));
  assert_true(mf_slice_equal(p.user_key, mf_slice_cstr(all_entries[i].key)));
  assert_true(p.seq == all_entries[i].seq);
  assert_int_equal(p.type, all_entries[i].type);
  assert_true(mf_slice_equal(iter_value(it), mf_slice_cstr(all_entries[i].value)));
}

static void test_iterators(void **state) {
  fixture *fx = *state;
  table_cache *tc;
  version_set *vs = make_tables(fx, &tc);
  version *v = version_set_current(vs);
  int n = version_num_iterators(v);
  assert_int_equal(n, 2 + 2); /* two L0 files, L1, L2 */
  mf_iter **children = calloc((size_t)n, sizeof *children);
  assert_int_equal(version_add_iterators(v, tc, children), MAYFLY_OK);
  mf_iter *it = merger_create(ikey_compare, children, n);
  free(children);
  assert_non_null(it);

  int i = 0;
  for (iter_seek_to_first(it); iter_valid(it); iter_next(it)) assert_entry(it, i++);
  assert_int_equal(i, NUM_ALL);
  assert_int_equal(iter_status(it), MAYFLY_OK);
  i = NUM_ALL;
  for (iter_seek_to_last(it); iter_valid(it); iter_prev(it)) assert_entry(it, --i);
  assert_int_equal(i, 0);
  mf_buf target = MF_BUF_INIT;
  ikey_append(&target, mf_slice_cstr("k1"), 6, MF_TYPE_FOR_SEEK);
  iter_seek(it, mf_buf_slice(&target));
  assert_entry(it, 3);
  mf_buf_clear(&target);
  ikey_append(&target, mf_slice_cstr("k35"), MF_MAX_SEQ, MF_TYPE_FOR_SEEK);
  iter_seek(it, mf_buf_slice(&target));
  assert_entry(it, 9);
  iter_destroy(it);

  /* A level iterator on its own: seek inside, across and past its files. */
  it = version_concat_iter(tc, v->files[1], v->num_files[1]);
  mf_buf_clear(&target);
  ikey_append(&target, mf_slice_cstr("k35"), MF_MAX_SEQ, MF_TYPE_FOR_SEEK);
  iter_seek(it, mf_buf_slice(&target));
  assert_true(iter_valid(it));
  assert_true(mf_slice_equal(ikey_user_key(iter_key(it)), mf_slice_cstr("k4")));
  iter_prev(it);
  assert_true(mf_slice_equal(ikey_user_key(iter_key(it)), mf_slice_cstr("k3")));
  mf_buf_clear(&target);
  ikey_append(&target, mf_slice_cstr("k7"), MF_MAX_SEQ, MF_TYPE_FOR_SEEK);
  iter_seek(it, mf_buf_slice(&target));
  assert_false(iter_valid(it));
  assert_int_equal(iter_status(it), MAYFLY_OK);
  iter_destroy(it);

  /* A missing table shows up in status(), as corruption. */
  char *path = filename_table(DB, 23);
  table_cache_evict(tc, 23);
  assert_int_equal(fx->env->remove_file(fx->env, path), MAYFLY_OK);
  free(path);
  it = version_concat_iter(tc, v->files[1], v->num_files[1]);
  int count = 0;
  for (iter_seek_to_first(it); iter_valid(it); iter_next(it)) count++;
  assert_int_equal(count, 4); /* file 22's entries, then the error */
  assert_int_equal(iter_status(it), MAYFLY_ECORRUPT);
  iter_destroy(it);

  mf_buf_free(&target);
  version_set_destroy(vs);
  table_cache_destroy(tc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_new_database, setup, teardown),
      cmocka_unit_test_setup_teardown(test_apply_and_recover, setup, teardown),
      cmocka_unit_test_setup_teardown(test_each_restart_starts_a_new_manifest, setup, teardown),
      cmocka_unit_test_setup_teardown(test_survives_crash, setup, teardown),
      cmocka_unit_test_setup_teardown(test_corrupt_current, setup, teardown),
      cmocka_unit_test_setup_teardown(test_corrupt_manifest_record, setup, teardown),
      cmocka_unit_test_setup_teardown(test_inconsistent_manifest, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_edits_leave_current_unchanged, setup, teardown),
      cmocka_unit_test_setup_teardown(test_write_failure, setup, teardown),
      cmocka_unit_test_setup_teardown(test_live_files, setup, teardown),
      cmocka_unit_test_setup_teardown(test_blob_addition_and_garbage, setup, teardown),
      cmocka_unit_test_setup_teardown(test_blob_copy_on_write, setup, teardown),
      cmocka_unit_test_setup_teardown(test_blob_linked_and_obsolete, setup, teardown),
      cmocka_unit_test_setup_teardown(test_blob_bad_edits, setup, teardown),
      cmocka_unit_test_setup_teardown(test_blob_inconsistent_manifest, setup, teardown),
      cmocka_unit_test_setup_teardown(test_blob_recovery_and_rollover, setup, teardown),
      cmocka_unit_test_setup_teardown(test_live_blob_files, setup, teardown),
      cmocka_unit_test_setup_teardown(test_version_get, setup, teardown),
      cmocka_unit_test_setup_teardown(test_iterators, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
