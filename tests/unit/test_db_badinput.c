/* Bad input at the public API: every function refuses NULL handles and pointers, oversized
 * keys and values, bad flags and bad options with the documented code (mostly MAYFLY_EINVAL)
 * instead of crashing, leaves a message in mayfly_errmsg, and the database stays usable.
 * Also: the empty key is an ordinary key; paths that are files, missing databases and
 * existing ones honour create_if_missing / error_if_exists; a database open twice is
 * MAYFLY_EBUSY on both envs; mayfly_destroy refuses an open database and accepts a missing
 * one; properties and runtime options reject unknown names. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db/options.h"
#include "db/write_batch.h"
#include "util/coding.h"
#include "env/env.h"
#include "env/env_fault.h"
#include "mayfly.h"

#define DBNAME "/db"

static mf_env *g_env;
static mayfly_db *g_db;

static struct mayfly_options opts_for(mf_env *env) {
  struct mayfly_options o;
  options_init_defaults(&o);
  options_set_env(&o, env);
  return o;
}

static int setup(void **state) {
  (void)state;
  if (env_mem_create(&g_env) != MAYFLY_OK) return -1;
  struct mayfly_options o = opts_for(g_env);
  return mayfly_open(DBNAME, &o, &g_db) == MAYFLY_OK ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  int rc = mayfly_close(g_db);
  g_db = NULL;
  g_env->destroy(g_env);
  g_env = NULL;
  return rc == MAYFLY_OK ? 0 : -1;
}

/* rc must be code, and the db's (or the handle-less) error message must be non-empty. */
#define EXPECT_ERR(call, code, db)                                                        \
  do {                                                                                    \
    int rc_ = (call);                                                                     \
    if (rc_ != (code))                                                                    \
      fail_msg("%s returned %d (%s), expected %s", #call, rc_, mayfly_strerror(rc_),      \
               mayfly_strerror(code));                                                    \
    const char *m_ = mayfly_errmsg(db);                                                   \
    if (!m_ || !*m_) fail_msg("%s: mayfly_errmsg is empty after the failure", #call);     \
  } while (0)

static void expect_kv(mayfly_db *db, const void *key, size_t klen, const char *value) {
  void *v = NULL;
  size_t vlen = 0;
  int rc = mayfly_get(db, NULL, key, klen, &v, &vlen);
  if (!value) {
    assert_int_equal(rc, MAYFLY_ENOTFOUND);
    assert_null(v);
    return;
  }
  if (rc != MAYFLY_OK) fail_msg("get: %s (%s)", mayfly_strerror(rc), mayfly_errmsg(db));
  assert_int_equal(vlen, strlen(value));
  assert_memory_equal(v, value, vlen);
  mayfly_free(v);
}

/* ---- NULL handles and pointers ---- */

static void test_null_db_everywhere(void **state) {
  (void)state;
  void *v = (void *)1;
  size_t vlen = 7;
  const mayfly_snapshot *snap = (const mayfly_snapshot *)1;
  mayfly_iter *it = (mayfly_iter *)1;
  char *prop = (char *)1;
  mayfly_batch *b = NULL;
  assert_int_equal(mayfly_batch_create(&b), MAYFLY_OK);
  assert_int_equal(mayfly_batch_put(b, "k", 1, "v", 1), MAYFLY_OK);

  EXPECT_ERR(mayfly_put(NULL, "k", 1, "v", 1, 0), MAYFLY_EINVAL, NULL);
  EXPECT_ERR(mayfly_delete(NULL, "k", 1, 0), MAYFLY_EINVAL, NULL);
  EXPECT_ERR(mayfly_write(NULL, b, 0), MAYFLY_EINVAL, NULL);
  EXPECT_ERR(mayfly_get(NULL, NULL, "k", 1, &v, &vlen), MAYFLY_EINVAL, NULL);
  assert_null(v); /* out-pointers are reset even on failure */
  assert_int_equal(vlen, 0);
  EXPECT_ERR(mayfly_snapshot_create(NULL, &snap), MAYFLY_EINVAL, NULL);
  EXPECT_ERR(mayfly_iter_create(NULL, NULL, &it), MAYFLY_EINVAL, NULL);
  EXPECT_ERR(mayfly_flush(NULL), MAYFLY_EINVAL, NULL);
  EXPECT_ERR(mayfly_wait_idle(NULL), MAYFLY_EINVAL, NULL);
  EXPECT_ERR(mayfly_compact_range(NULL, NULL, 0, NULL, 0), MAYFLY_EINVAL, NULL);
  EXPECT_ERR(mayfly_set_option(NULL, "write_buffer_size", "1MiB"), MAYFLY_EINVAL, NULL);
  EXPECT_ERR(mayfly_property(NULL, "mayfly.stats", &prop), MAYFLY_EINVAL, NULL);
  assert_null(prop);
  mayfly_snapshot_release(NULL, NULL);
  assert_int_equal(mayfly_close(NULL), MAYFLY_OK);
  mayfly_free(NULL);

  /* handle-less calls */
  mayfly_db *db = (mayfly_db *)1;
  EXPECT_ERR(mayfly_open(NULL, NULL, &db), MAYFLY_EINVAL, NULL);
  assert_null(db);
  EXPECT_ERR(mayfly_open("/tmp/x", NULL, NULL), MAYFLY_EINVAL, NULL);
  db = (mayfly_db *)1;
  EXPECT_ERR(mayfly_open("", NULL, &db), MAYFLY_EINVAL, NULL);
  assert_null(db);
  EXPECT_ERR(mayfly_destroy(NULL), MAYFLY_EINVAL, NULL);
  EXPECT_ERR(mayfly_destroy(""), MAYFLY_EINVAL, NULL);
  EXPECT_ERR(mayfly_options_create(NULL), MAYFLY_EINVAL, NULL);
  mayfly_options *opt = NULL;
  assert_int_equal(mayfly_options_create(&opt), MAYFLY_OK);
  EXPECT_ERR(mayfly_options_set(NULL, "write_buffer_size", "1MiB"), MAYFLY_EINVAL, NULL);
  EXPECT_ERR(mayfly_options_set(opt, NULL, "1MiB"), MAYFLY_EINVAL, NULL);
  EXPECT_ERR(mayfly_options_set(opt, "write_buffer_size", NULL), MAYFLY_EINVAL, NULL);
  EXPECT_ERR(mayfly_options_parse(NULL, "write_buffer_size=1MiB"), MAYFLY_EINVAL, NULL);
  EXPECT_ERR(mayfly_options_parse(opt, NULL), MAYFLY_EINVAL, NULL);
  mayfly_options_destroy(opt);
  mayfly_options_destroy(NULL);
  EXPECT_ERR(mayfly_batch_create(NULL), MAYFLY_EINVAL, NULL);
  EXPECT_ERR(mayfly_batch_put(NULL, "k", 1, "v", 1), MAYFLY_EINVAL, NULL);
  EXPECT_ERR(mayfly_batch_delete(NULL, "k", 1), MAYFLY_EINVAL, NULL);
  assert_int_equal(mayfly_batch_count(NULL), 0);
  mayfly_batch_clear(NULL);
  mayfly_batch_destroy(NULL);
  mayfly_batch_destroy(b);

  /* iterator functions on NULL */
  mayfly_iter_destroy(NULL);
  mayfly_iter_seek_to_first(NULL);
  mayfly_iter_seek_to_last(NULL);
  mayfly_iter_seek(NULL, "k", 1);
  mayfly_iter_next(NULL);
  mayfly_iter_prev(NULL);
  assert_false(mayfly_iter_valid(NULL));
  size_t klen = 9;
  assert_null(mayfly_iter_key(NULL, &klen));
  assert_int_equal(klen, 0);
  vlen = 9;
  assert_null(mayfly_iter_value(NULL, &vlen));
  assert_int_equal(vlen, 0);
  assert_int_equal(mayfly_iter_status(NULL), MAYFLY_EINVAL);
}

static void test_null_pointers_on_open_db(void **state) {
  (void)state;
  mayfly_db *db = g_db;
  void *v = NULL;
  size_t vlen = 0;
  char *prop = NULL;
  EXPECT_ERR(mayfly_put(db, NULL, 5, "v", 1, 0), MAYFLY_EINVAL, db);
  EXPECT_ERR(mayfly_put(db, "k", 1, NULL, 5, 0), MAYFLY_EINVAL, db);
  EXPECT_ERR(mayfly_delete(db, NULL, 5, 0), MAYFLY_EINVAL, db);
  EXPECT_ERR(mayfly_write(db, NULL, 0), MAYFLY_EINVAL, db);
  EXPECT_ERR(mayfly_get(db, NULL, NULL, 5, &v, &vlen), MAYFLY_EINVAL, db);
  EXPECT_ERR(mayfly_get(db, NULL, "k", 1, NULL, &vlen), MAYFLY_EINVAL, db);
  EXPECT_ERR(mayfly_get(db, NULL, "k", 1, &v, NULL), MAYFLY_EINVAL, db);
  EXPECT_ERR(mayfly_snapshot_create(db, NULL), MAYFLY_EINVAL, db);
  EXPECT_ERR(mayfly_iter_create(db, NULL, NULL), MAYFLY_EINVAL, db);
  EXPECT_ERR(mayfly_set_option(db, NULL, "1MiB"), MAYFLY_EINVAL, db);
  EXPECT_ERR(mayfly_set_option(db, "write_buffer_size", NULL), MAYFLY_EINVAL, db);
  EXPECT_ERR(mayfly_property(db, NULL, &prop), MAYFLY_EINVAL, db);
  EXPECT_ERR(mayfly_property(db, "mayfly.stats", NULL), MAYFLY_EINVAL, db);
  EXPECT_ERR(mayfly_compact_range(db, NULL, 3, NULL, 0), MAYFLY_EINVAL, db);
  mayfly_snapshot_release(db, NULL);
  /* NULL key with length 0 is the empty key; NULL value with length 0 the empty value. */
  assert_int_equal(mayfly_put(db, NULL, 0, NULL, 0, 0), MAYFLY_OK);
  expect_kv(db, "", 0, "");
  /* nothing bad got in */
  mayfly_iter *it = NULL;
  assert_int_equal(mayfly_iter_create(db, NULL, &it), MAYFLY_OK);
  int n = 0;
  for (mayfly_iter_seek_to_first(it); mayfly_iter_valid(it); mayfly_iter_next(it)) n++;
  assert_int_equal(mayfly_iter_status(it), MAYFLY_OK);
  mayfly_iter_destroy(it);
  assert_int_equal(n, 1);
}

/* ---- sizes ---- */

static void test_oversized_keys_and_values(void **state) {
  (void)state;
  mayfly_db *db = g_db;
  void *v = NULL;
  size_t vlen = 0;
  /* Lengths past the limits with NULL pointers: refused before anything is read. */
  EXPECT_ERR(mayfly_put(db, NULL, (size_t)MAYFLY_MAX_KEY_SIZE + 1, "v", 1, 0), MAYFLY_EINVAL, db);
  EXPECT_ERR(mayfly_put(db, "k", 1, NULL, (size_t)MAYFLY_MAX_VALUE_SIZE + 1, 0), MAYFLY_EINVAL, db);
  EXPECT_ERR(mayfly_put(db, "k", 1, NULL, SIZE_MAX, 0), MAYFLY_EINVAL, db);
  EXPECT_ERR(mayfly_put(db, NULL, SIZE_MAX, NULL, 0, 0), MAYFLY_EINVAL, db);
  EXPECT_ERR(mayfly_delete(db, NULL, (size_t)MAYFLY_MAX_KEY_SIZE + 1, 0), MAYFLY_EINVAL, db);
  EXPECT_ERR(mayfly_get(db, NULL, NULL, (size_t)MAYFLY_MAX_KEY_SIZE + 1, &v, &vlen), MAYFLY_EINVAL,
             db);
  mayfly_batch *b = NULL;
  assert_int_equal(mayfly_batch_create(&b), MAYFLY_OK);
  EXPECT_ERR(mayfly_batch_put(b, NULL, (size_t)MAYFLY_MAX_KEY_SIZE + 1, "v", 1), MAYFLY_EINVAL, NULL);
  EXPECT_ERR(mayfly_batch_put(b, "k", 1, NULL, (size_t)MAYFLY_MAX_VALUE_SIZE + 1), MAYFLY_EINVAL,
             NULL);
  EXPECT_ERR(mayfly_batch_delete(b, NULL, (size_t)MAYFLY_MAX_KEY_SIZE + 1), MAYFLY_EINVAL, NULL);
  assert_int_equal(mayfly_batch_count(b), 0); /* the refused records did not get in */
  assert_int_equal(mayfly_write(db, b, 0), MAYFLY_OK); /* an empty batch is fine */
  mayfly_batch_destroy(b);

  /* A batch's record count is 32 bits: at 2^32 - 1 records (the header forged, as the
   * records would take over 12 GiB) one more is refused, not wrapped to 0. */
  struct mayfly_batch full;
  assert_int_equal(batch_init(&full), MAYFLY_OK);
  encode_fixed32(full.rep.data + 8, UINT32_MAX - 1);
  assert_int_equal(mayfly_batch_put(&full, "k", 1, "v", 1), MAYFLY_OK);
  assert_int_equal(mayfly_batch_count(&full), UINT32_MAX);
  size_t full_len = full.rep.len;
  EXPECT_ERR(mayfly_batch_put(&full, "k", 1, "v", 1), MAYFLY_EINVAL, NULL);
  EXPECT_ERR(mayfly_batch_delete(&full, "k", 1), MAYFLY_EINVAL, NULL);
  assert_int_equal(mayfly_batch_count(&full), UINT32_MAX);
  assert_int_equal(full.rep.len, full_len);
  batch_free(&full);

  /* A key of exactly the limit is accepted, one byte more is not. */
  size_t max = MAYFLY_MAX_KEY_SIZE;
  char *big = malloc(max + 1);
  assert_non_null(big);
  memset(big, 'K', max + 1);
  EXPECT_ERR(mayfly_put(db, big, max + 1, "v", 1, 0), MAYFLY_EINVAL, db);
  assert_int_equal(mayfly_put(db, big, max, "big", 3, 0), MAYFLY_OK);
  expect_kv(db, big, max, "big");
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  expect_kv(db, big, max, "big");
  assert_int_equal(mayfly_delete(db, big, max, 0), MAYFLY_OK);
  expect_kv(db, big, max, NULL);
  free(big);
  /* A large value (16 MiB) round-trips. */
  size_t vl = 16u << 20;
  char *val = malloc(vl);
  assert_non_null(val);
  for (size_t i = 0; i < vl; i++) val[i] = (char)(i * 131 >> 7);
  assert_int_equal(mayfly_put(db, "bigval", 6, val, vl, 0), MAYFLY_OK);
  assert_int_equal(mayfly_get(db, NULL, "bigval", 6, &v, &vlen), MAYFLY_OK);
  assert_int_equal(vlen, vl);
  assert_memory_equal(v, val, vl);
  mayfly_free(v);
  free(val);
}

/* ---- the empty key ---- */

static void test_empty_key(void **state) {
  (void)state;
  mayfly_db *db = g_db;
  expect_kv(db, "", 0, NULL);
  assert_int_equal(mayfly_put(db, "", 0, "empty", 5, 0), MAYFLY_OK);
  assert_int_equal(mayfly_put(db, "\0", 1, "nul", 3, 0), MAYFLY_OK);
  assert_int_equal(mayfly_put(db, "a", 1, "A", 1, 0), MAYFLY_OK);
  expect_kv(db, "", 0, "empty");
  expect_kv(db, "\0", 1, "nul");

  /* It sorts first; seek("") lands on it; a reverse scan ends on it. */
  mayfly_iter *it = NULL;
  assert_int_equal(mayfly_iter_create(db, NULL, &it), MAYFLY_OK);
  mayfly_iter_seek_to_first(it);
  assert_true(mayfly_iter_valid(it));
  size_t klen = 99, vlen = 0;
  const void *k = mayfly_iter_key(it, &klen);
  assert_non_null(k);
  assert_int_equal(klen, 0);
  const void *v = mayfly_iter_value(it, &vlen);
  assert_int_equal(vlen, 5);
  assert_memory_equal(v, "empty", 5);
  mayfly_iter_next(it);
  k = mayfly_iter_key(it, &klen);
  assert_int_equal(klen, 1);
  assert_memory_equal(k, "\0", 1);
  mayfly_iter_seek(it, "", 0);
  assert_true(mayfly_iter_valid(it));
  mayfly_iter_key(it, &klen);
  assert_int_equal(klen, 0);
  mayfly_iter_seek_to_last(it);
  int n = 0;
  for (; mayfly_iter_valid(it); mayfly_iter_prev(it)) {
    mayfly_iter_key(it, &klen);
    n++;
  }
  assert_int_equal(n, 3);
  assert_int_equal(klen, 0); /* the last key seen walking backwards is the empty one */
  assert_int_equal(mayfly_iter_status(it), MAYFLY_OK);
  mayfly_iter_destroy(it);

  /* It survives flush and reopen, and can be deleted. */
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  expect_kv(db, "", 0, "empty");
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  struct mayfly_options o = opts_for(g_env);
  assert_int_equal(mayfly_open(DBNAME, &o, &g_db), MAYFLY_OK);
  db = g_db;
  expect_kv(db, "", 0, "empty");
  assert_int_equal(mayfly_delete(db, "", 0, 0), MAYFLY_OK);
  expect_kv(db, "", 0, NULL);
  expect_kv(db, "\0", 1, "nul");
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  assert_int_equal(mayfly_open(DBNAME, &o, &g_db), MAYFLY_OK);
  expect_kv(g_db, "", 0, NULL);
  expect_kv(g_db, "a", 1, "A");
}

/* ---- flags ---- */

static void test_bad_flags(void **state) {
  (void)state;
  mayfly_db *db = g_db;
  const unsigned bad[] = {MAYFLY_SYNC | MAYFLY_NO_WAL, 4u, 8u, 0x80000000u,
                          MAYFLY_SYNC | 0x100u, ~0u};
  mayfly_batch *b = NULL;
  assert_int_equal(mayfly_batch_create(&b), MAYFLY_OK);
  assert_int_equal(mayfly_batch_put(b, "bk", 2, "bv", 2), MAYFLY_OK);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    EXPECT_ERR(mayfly_put(db, "fk", 2, "fv", 2, bad[i]), MAYFLY_EINVAL, db);
    EXPECT_ERR(mayfly_delete(db, "fk", 2, bad[i]), MAYFLY_EINVAL, db);
    EXPECT_ERR(mayfly_write(db, b, bad[i]), MAYFLY_EINVAL, db);
  }
  /* Nothing was written by the refused calls. */
  expect_kv(db, "fk", 2, NULL);
  expect_kv(db, "bk", 2, NULL);
  assert_int_equal(mayfly_write(db, b, MAYFLY_SYNC), MAYFLY_OK);
  expect_kv(db, "bk", 2, "bv");
  mayfly_batch_destroy(b);
}

/* ---- open / destroy ---- */

static const char *tmp_root(void) {
  const char *t = getenv("MAYFLY_TEST_TMP");
  return t && *t ? t : "/tmp";
}

static void tmp_path(char *out, size_t n, const char *what) {
  snprintf(out, n, "%s/test_db_badinput_%ld_%s", tmp_root(), (long)getpid(), what);
}

static void test_open_errors_mem(void **state) {
  (void)state;
  struct mayfly_options o = opts_for(g_env);
  mayfly_db *db = (mayfly_db *)1;
  /* second open of an open db */
  EXPECT_ERR(mayfly_open(DBNAME, &o, &db), MAYFLY_EBUSY, NULL);
  assert_null(db);
  assert_int_equal(mayfly_put(g_db, "still", 5, "ok", 2, 0), MAYFLY_OK);
  /* error_if_exists */
  o.error_if_exists = 1;
  assert_int_equal(mayfly_close(g_db), MAYFLY_OK);
  g_db = NULL;
  EXPECT_ERR(mayfly_open(DBNAME, &o, &db), MAYFLY_EINVAL, NULL);
  o.error_if_exists = 0;
  assert_int_equal(mayfly_open(DBNAME, &o, &g_db), MAYFLY_OK); /* and the data is intact */
  expect_kv(g_db, "still", 5, "ok");
  /* create_if_missing = false: a missing directory, and an empty existing one */
  o.create_if_missing = 0;
  EXPECT_ERR(mayfly_open("/nothere", &o, &db), MAYFLY_EINVAL, NULL);
  assert_false(g_env->file_exists(g_env, "/nothere"));
  assert_int_equal(g_env->make_dir(g_env, "/emptydir"), MAYFLY_OK);
  EXPECT_ERR(mayfly_open("/emptydir", &o, &db), MAYFLY_EINVAL, NULL);
  /* ... and a directory of the user's with a file named LOG: refused without a trace, the
   * user's LOG untouched and no LOCK left behind */
  assert_int_equal(g_env->make_dir(g_env, "/plain"), MAYFLY_OK);
  mf_wfile *lf = NULL;
  assert_int_equal(g_env->new_writable(g_env, "/plain/LOG", &lf), MAYFLY_OK);
  assert_int_equal(g_env->append(lf, "important notes", 15), MAYFLY_OK);
  assert_int_equal(g_env->close_writable(lf), MAYFLY_OK);
  EXPECT_ERR(mayfly_open("/plain", &o, &db), MAYFLY_EINVAL, NULL);
  uint64_t log_size = 0;
  assert_int_equal(g_env->file_size(g_env, "/plain/LOG", &log_size), MAYFLY_OK);
  assert_int_equal(log_size, 15);
  assert_false(g_env->file_exists(g_env, "/plain/LOCK"));
  /* a path that is a regular file */
  mf_wfile *f = NULL;
  assert_int_equal(g_env->new_writable(g_env, "/afile", &f), MAYFLY_OK);
  assert_int_equal(g_env->append(f, "x", 1), MAYFLY_OK);
  assert_int_equal(g_env->close_writable(f), MAYFLY_OK);
  o.create_if_missing = 1;
  db = (mayfly_db *)1;
  int rc = mayfly_open("/afile", &o, &db);
  assert_true(rc < 0);
  assert_null(db);
  assert_true(strlen(mayfly_errmsg(NULL)) > 0);
  /* inconsistent options */
  o.level0_slowdown_writes_trigger = o.level0_stop_writes_trigger + 1;
  EXPECT_ERR(mayfly_open("/other", &o, &db), MAYFLY_EINVAL, NULL);
}

static void test_open_errors_posix(void **state) {
  (void)state;
  char dir[512], file[512];
  tmp_path(dir, sizeof dir, "db");
  tmp_path(file, sizeof file, "file");
  mkdir(tmp_root(), 0755);
  mayfly_destroy(dir);
  /* missing path: destroy is fine */
  assert_int_equal(mayfly_destroy(dir), MAYFLY_OK);
  mayfly_db *db = NULL, *db2 = (mayfly_db *)1;
  struct mayfly_options o = opts_for(env_posix());
  o.create_if_missing = 0;
  EXPECT_ERR(mayfly_open(dir, &o, &db2), MAYFLY_EINVAL, NULL);
  assert_null(db2);
  assert_int_equal(access(dir, F_OK), -1); /* and nothing was created */
  o.create_if_missing = 1;
  assert_int_equal(mayfly_open(dir, &o, &db), MAYFLY_OK);
  assert_int_equal(mayfly_put(db, "k", 1, "v", 1, MAYFLY_SYNC), MAYFLY_OK);
  /* second open in the same process, with default options too */
  db2 = (mayfly_db *)1;
  EXPECT_ERR(mayfly_open(dir, &o, &db2), MAYFLY_EBUSY, NULL);
  assert_null(db2);
  EXPECT_ERR(mayfly_open(dir, NULL, &db2), MAYFLY_EBUSY, NULL);
  /* destroy of an open db: refused, and nothing removed */
  EXPECT_ERR(mayfly_destroy(dir), MAYFLY_EBUSY, NULL);
  expect_kv(db, "k", 1, "v");
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  o.error_if_exists = 1;
  EXPECT_ERR(mayfly_open(dir, &o, &db2), MAYFLY_EINVAL, NULL);
  o.error_if_exists = 0;
  assert_int_equal(mayfly_open(dir, &o, &db), MAYFLY_OK);
  expect_kv(db, "k", 1, "v");
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  assert_int_equal(mayfly_destroy(dir), MAYFLY_OK);
  assert_int_equal(access(dir, F_OK), -1);
  assert_int_equal(mayfly_destroy(dir), MAYFLY_OK);

  /* a path that is a regular file: an error, and the file is left alone */
  FILE *fp = fopen(file, "w");
  assert_non_null(fp);
  fputs("not a database", fp);
  fclose(fp);
  db2 = (mayfly_db *)1;
  int rc = mayfly_open(file, NULL, &db2);
  assert_true(rc < 0);
  assert_null(db2);
  assert_true(strlen(mayfly_errmsg(NULL)) > 0);
  rc = mayfly_destroy(file);
  assert_true(rc < 0);
  struct stat st;
  assert_int_equal(stat(file, &st), 0);
  assert_true(S_ISREG(st.st_mode));
  assert_int_equal((int)st.st_size, 14);
  unlink(file);
}

/* ---- properties and runtime options ---- */

static void test_bad_properties(void **state) {
  (void)state;
  mayfly_db *db = g_db;
  const char *bad[] = {"", "mayfly.", "mayfly.nope", "stats", "mayfly.stats ",
                       "mayfly.num-files-at-level", "mayfly.num-files-at-level7",
                       "mayfly.num-files-at-level-1", "mayfly.num-files-at-level0x",
                       "mayfly.num-files-at-level99999999999999",
                       "mayfly.num-files-at-level 1", "mayfly.num-files-at-level+1",
                       "mayfly.num-files-at-level01", "mayfly.num-files-at-level4294967297"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char *value = (char *)1;
    int rc = mayfly_property(db, bad[i], &value);
    if (rc >= 0) fail_msg("property \"%s\" was accepted", bad[i]);
    assert_null(value);
    if (!*mayfly_errmsg(db)) fail_msg("property \"%s\": empty error message", bad[i]);
  }
  char *value = NULL;
  assert_int_equal(mayfly_property(db, "mayfly.num-files-at-level6", &value), MAYFLY_OK);
  assert_string_equal(value, "0");
  mayfly_free(value);
}

static void test_bad_set_option(void **state) {
  (void)state;
  mayfly_db *db = g_db;
  EXPECT_ERR(mayfly_set_option(db, "no_such_option", "1"), MAYFLY_EINVAL, db);
  EXPECT_ERR(mayfly_set_option(db, "", "1"), MAYFLY_EINVAL, db);
  EXPECT_ERR(mayfly_set_option(db, "write_buffer_size", "lots"), MAYFLY_EINVAL, db);
  EXPECT_ERR(mayfly_set_option(db, "write_buffer_size", ""), MAYFLY_EINVAL, db);
  EXPECT_ERR(mayfly_set_option(db, "write_buffer_size", "1"), MAYFLY_EINVAL, db); /* < 64 KiB */
  EXPECT_ERR(mayfly_set_option(db, "write_buffer_size", "-5"), MAYFLY_EINVAL, db);
  EXPECT_ERR(mayfly_set_option(db, "write_buffer_size", "64MiBs"), MAYFLY_EINVAL, db);
  EXPECT_ERR(mayfly_set_option(db, "compression", "gzip"), MAYFLY_EINVAL, db);
  EXPECT_ERR(mayfly_set_option(db, "bloom_bits_per_key", "65"), MAYFLY_EINVAL, db);
  EXPECT_ERR(mayfly_set_option(db, "max_bytes_for_level_multiplier", "nan"), MAYFLY_EINVAL, db);
  /* runtime change that breaks a cross-field rule */
  EXPECT_ERR(mayfly_set_option(db, "level0_slowdown_writes_trigger", "1000"), MAYFLY_EINVAL, db);
  /* open-time options */
  EXPECT_ERR(mayfly_set_option(db, "create_if_missing", "true"), MAYFLY_ENOTSUP, db);
  EXPECT_ERR(mayfly_set_option(db, "max_open_files", "100"), MAYFLY_ENOTSUP, db);
  EXPECT_ERR(mayfly_set_option(db, "wal_recovery_mode", "absolute"), MAYFLY_ENOTSUP, db);
  EXPECT_ERR(mayfly_set_option(db, "block_cache_size", "1MiB"), MAYFLY_ENOTSUP, db);
  /* a good one still works, and the db too */
  assert_int_equal(mayfly_set_option(db, "write_buffer_size", "1MiB"), MAYFLY_OK);
  assert_int_equal(mayfly_put(db, "k", 1, "v", 1, 0), MAYFLY_OK);
  expect_kv(db, "k", 1, "v");
}

static void test_strerror_and_errmsg(void **state) {
  (void)state;
  const int codes[] = {MAYFLY_OK, MAYFLY_ENOTFOUND, MAYFLY_ECORRUPT, MAYFLY_EIO, MAYFLY_EINVAL,
                       MAYFLY_ENOMEM, MAYFLY_EBUSY, MAYFLY_ENOTSUP, MAYFLY_ECLOSED};
  const char *unknown = mayfly_strerror(-1000);
  assert_non_null(unknown);
  assert_non_null(mayfly_strerror(1));
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    const char *s = mayfly_strerror(codes[i]);
    assert_non_null(s);
    assert_true(strlen(s) > 0);
    if (strcmp(s, unknown) == 0) fail_msg("code %d has no name", codes[i]);
    for (size_t j = 0; j < i; j++)
      if (strcmp(s, mayfly_strerror(codes[j])) == 0)
        fail_msg("codes %d and %d share the name \"%s\"", codes[i], codes[j], s);
  }
  assert_non_null(mayfly_version());
  /* errmsg(db) after a failure on db names the problem; a NULL db message is never NULL. */
  assert_int_equal(mayfly_put(g_db, "k", 1, "v", 1, 77u), MAYFLY_EINVAL);
  const char *m = mayfly_errmsg(g_db);
  assert_non_null(m);
  assert_true(strlen(m) > 0);
  assert_non_null(mayfly_errmsg(NULL));
  void *v = NULL;
  size_t vlen = 0;
  /* ENOTFOUND is not a failure, but must not crash errmsg either */
  assert_int_equal(mayfly_get(g_db, NULL, "missing", 7, &v, &vlen), MAYFLY_ENOTFOUND);
  assert_non_null(mayfly_errmsg(g_db));
}

/* A failure with no database handle is mayfly_errmsg(NULL)'s, not the last db's, and a
 * db's message stays its own until the next call on that db: calls on a batch, the options
 * or another database in between do not take it away. */
static void test_errmsg_owner(void **state) {
  (void)state;
  char *value = NULL;
  EXPECT_ERR(mayfly_property(g_db, "mayfly.nope", &value), MAYFLY_ENOTFOUND, g_db);
  char first[256];
  snprintf(first, sizeof first, "%s", mayfly_errmsg(g_db));
  assert_non_null(strstr(first, "mayfly.nope"));
  EXPECT_ERR(mayfly_put(NULL, "k", 1, "v", 1, 0), MAYFLY_EINVAL, NULL);
  assert_null(strstr(mayfly_errmsg(NULL), "mayfly.nope"));
  assert_string_equal(mayfly_errmsg(g_db), first);
  EXPECT_ERR(mayfly_property(NULL, "mayfly.stats", &value), MAYFLY_EINVAL, NULL);
  assert_string_equal(mayfly_errmsg(g_db), first);

  /* A batch, the options and a second database in between. */
  mayfly_batch *b = NULL;
  assert_int_equal(mayfly_batch_create(&b), MAYFLY_OK);
  assert_int_equal(mayfly_batch_put(b, "k", 1, "v", 1), MAYFLY_OK);
  mayfly_options *o = NULL;
  assert_int_equal(mayfly_options_create(&o), MAYFLY_OK);
  EXPECT_ERR(mayfly_options_set(o, "no_such_option", "1"), MAYFLY_EINVAL, NULL);
  assert_string_equal(mayfly_errmsg(g_db), first);
  struct mayfly_options o2 = opts_for(g_env);
  mayfly_db *db2 = NULL;
  assert_int_equal(mayfly_open("/db2", &o2, &db2), MAYFLY_OK);
  EXPECT_ERR(mayfly_put(db2, NULL, 4, "v", 1, 0), MAYFLY_EINVAL, db2);
  char second[256];
  snprintf(second, sizeof second, "%s", mayfly_errmsg(db2));
  assert_string_equal(mayfly_errmsg(g_db), first);
  assert_string_not_equal(second, first);
  /* A successful call on g_db ends its message; db2 keeps its own. */
  assert_int_equal(mayfly_put(g_db, "k", 1, "v", 1, 0), MAYFLY_OK);
  assert_string_equal(mayfly_errmsg(g_db), "");
  assert_string_equal(mayfly_errmsg(db2), second);
  /* More databases with messages than the thread keeps: the oldest are dropped, never
   * mixed up; the newest stay. */
  enum { MANY = 6 };
  mayfly_db *many[MANY];
  char msgs[MANY][256];
  for (int i = 0; i < MANY; i++) {
    char name[16];
    snprintf(name, sizeof name, "/many%d", i);
    assert_int_equal(mayfly_open(name, &o2, &many[i]), MAYFLY_OK);
  }
  for (int i = 0; i < MANY; i++) {
    EXPECT_ERR(mayfly_get(many[i], NULL, NULL, (size_t)(i + 1), NULL, NULL), MAYFLY_EINVAL,
               many[i]);
    snprintf(msgs[i], sizeof msgs[i], "%s", mayfly_errmsg(many[i]));
  }
  for (int i = 0; i < MANY; i++) {
    const char *m = mayfly_errmsg(many[i]);
    if (*m && strcmp(m, msgs[i]) != 0) fail_msg("database %d reports \"%s\"", i, m);
    if (i >= MANY - 2 && strcmp(m, msgs[i]) != 0) fail_msg("database %d lost its message", i);
  }
  const char *m = mayfly_errmsg(db2);
  if (*m && strcmp(m, second) != 0) fail_msg("db2 reports \"%s\"", m);
  for (int i = 0; i < MANY; i++) assert_int_equal(mayfly_close(many[i]), MAYFLY_OK);
  /* The string mayfly_errmsg returns stays good through calls on other handles. */
  EXPECT_ERR(mayfly_put(db2, NULL, 4, "v", 1, 0), MAYFLY_EINVAL, db2);
  const char *kept = mayfly_errmsg(db2);
  snprintf(second, sizeof second, "%s", kept);
  EXPECT_ERR(mayfly_put(g_db, NULL, 9, "v", 1, 0), MAYFLY_EINVAL, g_db);
  EXPECT_ERR(mayfly_put(NULL, "k", 1, "v", 1, 0), MAYFLY_EINVAL, NULL);
  assert_string_equal(kept, second);
  /* Closing a database (the same one, or another) keeps mayfly_errmsg(NULL)'s message, and a
   * database opened afterwards, wherever it lands, starts with none. */
  char none_msg[256];
  snprintf(none_msg, sizeof none_msg, "%s", mayfly_errmsg(NULL));
  assert_int_equal(mayfly_close(db2), MAYFLY_OK);
  assert_string_equal(mayfly_errmsg(NULL), none_msg);
  assert_int_equal(mayfly_open("/db2", &o2, &db2), MAYFLY_OK);
  assert_string_equal(mayfly_errmsg(db2), "");
  assert_int_equal(mayfly_close(db2), MAYFLY_OK);
  mayfly_options_destroy(o);
  mayfly_batch_destroy(b);
}

/* The largest key and value a put accepts stay readable from a compressed table: with blob
 * files off, the data block that holds them (key, value and the block's own bytes) is
 * larger than any value. Read back after the flush, after a compaction and after reopening,
 * with a small key written before them. (lz4 here; test_compress checks both codecs against
 * the bound. Every read of the large entry decompresses its 257 MB block, which no cache
 * holds, so the reads are few.) */
static void check_big(mayfly_db *db, const char *big_key, const char *big_value) {
  void *v = NULL;
  size_t vlen = 0;
  int rc = mayfly_get(db, NULL, "a042", 4, &v, &vlen);
  if (rc != MAYFLY_OK) fail_msg("get a042: %s (%s)", mayfly_strerror(rc), mayfly_errmsg(db));
  assert_int_equal(vlen, 4);
  assert_memory_equal(v, "a042", 4);
  mayfly_free(v);
  rc = mayfly_get(db, NULL, big_key, MAYFLY_MAX_KEY_SIZE, &v, &vlen);
  if (rc != MAYFLY_OK) fail_msg("get the big key: %s (%s)", mayfly_strerror(rc), mayfly_errmsg(db));
  assert_int_equal(vlen, MAYFLY_MAX_VALUE_SIZE);
  assert_memory_equal(v, big_value, MAYFLY_MAX_VALUE_SIZE);
  mayfly_free(v);
}

static void test_largest_entry_in_compressed_table(void **state) {
  (void)state;
  char *big_key = malloc(MAYFLY_MAX_KEY_SIZE), *big_value = malloc(MAYFLY_MAX_VALUE_SIZE);
  assert_non_null(big_key);
  assert_non_null(big_value);
  memset(big_key, 'b', MAYFLY_MAX_KEY_SIZE);
  for (size_t i = 0; i < MAYFLY_MAX_VALUE_SIZE; i += 4096) /* compressible, not constant */
    memset(big_value + i, (int)(i / 4096 % 251), 4096);
  mf_env *env;
  assert_int_equal(env_mem_create(&env), MAYFLY_OK);
  struct mayfly_options o = opts_for(env);
  assert_int_equal(mayfly_options_set(&o, "enable_blob_files", "false"), MAYFLY_OK);
  assert_int_equal(mayfly_options_set(&o, "compression", "lz4"), MAYFLY_OK);
  mayfly_db *db;
  assert_int_equal(mayfly_open(DBNAME, &o, &db), MAYFLY_OK);
  for (int i = 0; i < 100; i++) {
    char k[8];
    snprintf(k, sizeof k, "a%03d", i);
    assert_int_equal(mayfly_put(db, k, 4, k, 4, 0), MAYFLY_OK);
  }
  assert_int_equal(
      mayfly_put(db, big_key, MAYFLY_MAX_KEY_SIZE, big_value, MAYFLY_MAX_VALUE_SIZE, 0),
      MAYFLY_OK);
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  check_big(db, big_key, big_value);
  assert_int_equal(mayfly_compact_range(db, NULL, 0, NULL, 0), MAYFLY_OK);
  check_big(db, big_key, big_value);
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  assert_int_equal(mayfly_open(DBNAME, &o, &db), MAYFLY_OK);
  check_big(db, big_key, big_value);
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  env->destroy(env);
  free(big_key);
  free(big_value);
}

/* Close refuses while an iterator or a snapshot of the database is alive (they point into
 * it; their destroy and release would touch freed memory), says which, and leaves the
 * database open and working. */
static void test_close_with_live_handles(void **state) {
  (void)state;
  assert_int_equal(mayfly_put(g_db, "a", 1, "1", 1, 0), MAYFLY_OK);
  mayfly_iter *it = NULL;
  assert_int_equal(mayfly_iter_create(g_db, NULL, &it), MAYFLY_OK);
  EXPECT_ERR(mayfly_close(g_db), MAYFLY_EBUSY, g_db);
  if (!strstr(mayfly_errmsg(g_db), "1 iterator and 0 snapshots"))
    fail_msg("close message: %s", mayfly_errmsg(g_db));
  mayfly_iter_seek_to_first(it);
  assert_true(mayfly_iter_valid(it));
  assert_int_equal(mayfly_put(g_db, "b", 1, "2", 1, 0), MAYFLY_OK);
  mayfly_iter_destroy(it);

  const mayfly_snapshot *snap = NULL;
  assert_int_equal(mayfly_snapshot_create(g_db, &snap), MAYFLY_OK);
  assert_int_equal(mayfly_iter_create(g_db, snap, &it), MAYFLY_OK);
  EXPECT_ERR(mayfly_close(g_db), MAYFLY_EBUSY, g_db);
  if (!strstr(mayfly_errmsg(g_db), "1 iterator and 1 snapshot"))
    fail_msg("close message: %s", mayfly_errmsg(g_db));
  mayfly_iter_destroy(it);
  EXPECT_ERR(mayfly_close(g_db), MAYFLY_EBUSY, g_db);
  mayfly_snapshot_release(g_db, snap);
  expect_kv(g_db, "b", 1, "2");
  /* teardown's close must now succeed */
}

/* MAYFLY_NO_WAL writes not yet flushed when the database went read-only cannot be written
 * out by close: close says so (it returned MAYFLY_OK and the writes were gone). */
static void test_close_reports_lost_unlogged_writes(void **state) {
  (void)state;
  mf_env *mem = NULL, *fe = NULL;
  assert_int_equal(env_mem_create(&mem), MAYFLY_OK);
  assert_int_equal(env_fault_create(mem, &fe), MAYFLY_OK);
  struct mayfly_options o = opts_for(fe);
  mayfly_db *db = NULL;
  assert_int_equal(mayfly_open(DBNAME, &o, &db), MAYFLY_OK);
  assert_int_equal(mayfly_put(db, "a", 1, "1", 1, MAYFLY_NO_WAL), MAYFLY_OK);
  env_fault_set(fe, ENV_FAULT_WRITE, 1, 0, ENV_FAULT_EIO);
  assert_int_not_equal(mayfly_put(db, "b", 1, "2", 1, 0), MAYFLY_OK);
  env_fault_clear(fe);
  int rc = mayfly_close(db);
  if (rc != MAYFLY_ECLOSED) fail_msg("close: %s, expected MAYFLY_ECLOSED", mayfly_strerror(rc));
  if (!strstr(mayfly_errmsg(NULL), "MAYFLY_NO_WAL")) fail_msg("close: %s", mayfly_errmsg(NULL));
  /* NO_WAL writes that a background flush already wrote out are not lost: after the same
   * error, close succeeds and they are there */
  o.write_buffer_size = 64 * 1024;
  assert_int_equal(mayfly_open(DBNAME, &o, &db), MAYFLY_OK);
  assert_int_equal(mayfly_put(db, "nowal", 5, "kept", 4, MAYFLY_NO_WAL), MAYFLY_OK);
  char k[32], v[100];
  memset(v, 'v', sizeof v);
  for (int i = 0; i < 3000; i++) {
    int klen = snprintf(k, sizeof k, "fill%06d", i);
    assert_int_equal(mayfly_put(db, k, (size_t)klen, v, sizeof v, 0), MAYFLY_OK);
  }
  assert_int_equal(mayfly_wait_idle(db), MAYFLY_OK);
  env_fault_set(fe, ENV_FAULT_WRITE, 1, 0, ENV_FAULT_EIO);
  assert_int_not_equal(mayfly_put(db, "b", 1, "2", 1, 0), MAYFLY_OK);
  env_fault_clear(fe);
  rc = mayfly_close(db);
  if (rc != MAYFLY_OK) fail_msg("close after the NO_WAL write was flushed: %s (%s)",
                                mayfly_strerror(rc), mayfly_errmsg(NULL));
  assert_int_equal(mayfly_open(DBNAME, &o, &db), MAYFLY_OK);
  expect_kv(db, "nowal", 5, "kept");
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  /* and a database with no unlogged writes closes OK after the same error */
  assert_int_equal(mayfly_open(DBNAME, &o, &db), MAYFLY_OK);
  assert_int_equal(mayfly_put(db, "c", 1, "3", 1, 0), MAYFLY_OK);
  env_fault_set(fe, ENV_FAULT_WRITE, 1, 0, ENV_FAULT_EIO);
  assert_int_not_equal(mayfly_put(db, "d", 1, "4", 1, 0), MAYFLY_OK);
  env_fault_clear(fe);
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  fe->destroy(fe);
  mem->destroy(mem);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_null_db_everywhere),
      cmocka_unit_test_setup_teardown(test_null_pointers_on_open_db, setup, teardown),
      cmocka_unit_test_setup_teardown(test_oversized_keys_and_values, setup, teardown),
      cmocka_unit_test_setup_teardown(test_empty_key, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_flags, setup, teardown),
      cmocka_unit_test_setup_teardown(test_open_errors_mem, setup, teardown),
      cmocka_unit_test(test_open_errors_posix),
      cmocka_unit_test_setup_teardown(test_bad_properties, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_set_option, setup, teardown),
      cmocka_unit_test_setup_teardown(test_strerror_and_errmsg, setup, teardown),
      cmocka_unit_test_setup_teardown(test_errmsg_owner, setup, teardown),
      cmocka_unit_test_setup_teardown(test_close_with_live_handles, setup, teardown),
      cmocka_unit_test(test_close_reports_lost_unlogged_writes),
      cmocka_unit_test(test_largest_entry_in_compressed_table),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
