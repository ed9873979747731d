/* Shared scaffolding for the database-level tests (tests/unit/test_db_*.c, test_blob_*.c):
 * numbered keys and self-describing values, put/delete/get helpers that fail the test with
 * the engine's message on any error, an in-memory env with default options, and open/close
 * helpers. Every test program is one translation unit, so everything here is static inline
 * and the header includes what it uses; a file includes it after its own system headers.
 *
 * Keys are "key%08d" (11 bytes). A value of key i at version ver (len >= 18) is an 18-byte
 * header "%08d:%08d:" naming both, then a fill derived from both, so a value from the wrong
 * key, an older version or a damaged copy is told apart from the expected one.
 *
 * The database lives at DBNAME, "/db" unless the including file defines it first. */
#ifndef MAYFLY_TESTS_TEST_DB_UTIL_H
#define MAYFLY_TESTS_TEST_DB_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/options.h"
#include "env/env.h"
#include "mayfly.h"

#ifndef DBNAME
#define DBNAME "/db"
#endif

/* ---- keys and values ---- */

/* Writes the key of i into buf (at least 32 bytes); returns its length. */
static inline size_t key_of(int i, char *buf) {
  return (size_t)snprintf(buf, 32, "key%08d", i);
}

/* A value of len bytes (len >= 18) identifying key i and version ver. */
static inline void value_of(int i, int ver, size_t len, char *buf) {
  char head[32];
  snprintf(head, sizeof head, "%08d:%08d:", i, ver);
  memcpy(buf, head, 18);
  for (size_t j = 18; j < len; j++) buf[j] = (char)('a' + (size_t)(i * 7 + ver * 13 + j) % 26);
}

/* The version of a value read for key i, or -2 when it is damaged or belongs elsewhere. */
static inline int value_version(int i, const void *data, size_t len) {
  char buf[32];
  if (len < 18) return -2;
  memcpy(buf, data, 18);
  buf[18] = '\0';
  int ki = -1, ver = -1;
  if (sscanf(buf, "%08d:%08d:", &ki, &ver) != 2 || ki != i) return -2;
  char *expect = malloc(len);
  if (!expect) return -2;
  value_of(i, ver, len, expect);
  int same = memcmp(expect, data, len) == 0;
  free(expect);
  return same ? ver : -2;
}

/* Like value_version, but a damaged or foreign value fails the test, saying why. */
static inline int parse_value(int i, const void *data, size_t len) {
  char buf[32];
  if (len < 18) fail_msg("key %d: value of %zu bytes is too short", i, len);
  memcpy(buf, data, 18);
  buf[18] = '\0';
  int ki = -1, ver = -1;
  if (sscanf(buf, "%08d:%08d:", &ki, &ver) != 2 || ki != i)
    fail_msg("key %d: value header '%s' belongs elsewhere", i, buf);
  char *expect = malloc(len);
  assert_non_null(expect);
  value_of(i, ver, len, expect);
  if (memcmp(expect, data, len) != 0) fail_msg("key %d: value of version %d is damaged", i, ver);
  free(expect);
  return ver;
}

/* ---- writes and reads that fail the test on any error ---- */

static inline void put_ver(mayfly_db *db, int i, int ver, size_t vlen, unsigned flags) {
  char k[32], *v = malloc(vlen ? vlen : 1);
  assert_non_null(v);
  size_t klen = key_of(i, k);
  value_of(i, ver, vlen, v);
  int rc = mayfly_put(db, k, klen, v, vlen, flags);
  free(v);
  if (rc != MAYFLY_OK) fail_msg("put key %d: %s (%s)", i, mayfly_strerror(rc), mayfly_errmsg(db));
}

static inline void del_key(mayfly_db *db, int i, unsigned flags) {
  char k[32];
  size_t klen = key_of(i, k);
  int rc = mayfly_delete(db, k, klen, flags);
  if (rc != MAYFLY_OK) fail_msg("delete key %d: %s (%s)", i, mayfly_strerror(rc), mayfly_errmsg(db));
}

/* The version of key i (at snap, NULL: latest), or -1 when absent. Any error, and any value
 * that is not exactly one written by put_ver for key i, fails the test. */
static inline int get_ver(mayfly_db *db, const mayfly_snapshot *snap, int i) {
  char k[32];
  size_t klen = key_of(i, k);
  void *v = NULL;
  size_t vlen = 0;
  int rc = mayfly_get(db, snap, k, klen, &v, &vlen);
  if (rc == MAYFLY_ENOTFOUND) {
    assert_null(v);
    return -1;
  }
  if (rc != MAYFLY_OK) fail_msg("get key %d: %s (%s)", i, mayfly_strerror(rc), mayfly_errmsg(db));
  int ver = parse_value(i, v, vlen);
  mayfly_free(v);
  return ver;
}

/* ---- env, options, open and close ---- */

/* A fresh in-memory env; the caller destroys it with env->destroy(env). */
static inline mf_env *new_mem_env(void) {
  mf_env *env = NULL;
  assert_int_equal(env_mem_create(&env), MAYFLY_OK);
  return env;
}

/* Default options on env (not owned). */
static inline struct mayfly_options opts_for(mf_env *env) {
  struct mayfly_options o;
  options_init_defaults(&o);
  options_set_env(&o, env);
  return o;
}

/* Opens DBNAME or fails the test with the open error. */
static inline mayfly_db *open_ok(const struct mayfly_options *o) {
  mayfly_db *db = NULL;
  int rc = mayfly_open(DBNAME, o, &db);
  if (rc != MAYFLY_OK) fail_msg("open: %s (%s)", mayfly_strerror(rc), mayfly_errmsg(NULL));
  assert_non_null(db);
  return db;
}

static inline void close_ok(mayfly_db *db) {
  int rc = mayfly_close(db);
  if (rc != MAYFLY_OK) fail_msg("close: %s (%s)", mayfly_strerror(rc), mayfly_errmsg(NULL));
}

/* Fails the test unless rc is MAYFLY_OK, naming what was done and the engine's message. */
static inline void ok(mayfly_db *db, int rc, const char *what) {
  if (rc != MAYFLY_OK) fail_msg("%s: %s (%s)", what, mayfly_strerror(rc), mayfly_errmsg(db));
}

static inline void flush(mayfly_db *db) { ok(db, mayfly_flush(db), "flush"); }

/* Compacts the whole key range and waits until no background work is left. */
static inline void compact_all(mayfly_db *db) {
  ok(db, mayfly_compact_range(db, NULL, 0, NULL, 0), "compact_range");
  ok(db, mayfly_wait_idle(db), "wait_idle");
}

static inline void set_opt(mayfly_db *db, const char *name, const char *value) {
  int rc = mayfly_set_option(db, name, value);
  if (rc != MAYFLY_OK)
    fail_msg("set_option %s=%s: %s (%s)", name, value, mayfly_strerror(rc), mayfly_errmsg(db));
}

/* A numeric property; one that cannot be read or is not a number fails the test. */
static inline uint64_t prop_u64(mayfly_db *db, const char *name) {
  char *v = NULL;
  ok(db, mayfly_property(db, name, &v), name);
  char *end = NULL;
  uint64_t n = strtoull(v, &end, 10);
  if (end == v || *end != '\0') fail_msg("property %s is not a number: \"%s\"", name, v);
  mayfly_free(v);
  return n;
}

/* The text of mayfly.blob-stats (free with mayfly_free). The out-pointer lives on the heap:
 * on the stack, GCC's -Wdangling-pointer takes strstr results into the text for pointers
 * into the out-pointer variable once this is inlined. */
static inline char *blob_stats(mayfly_db *db) {
  char **holder = calloc(1, sizeof *holder);
  assert_non_null(holder);
  int rc = mayfly_property(db, "mayfly.blob-stats", holder);
  char *text = *holder;
  free(holder);
  ok(db, rc, "blob-stats");
  return text;
}

/* A counter line of mayfly.blob-stats, e.g. "Forced-GC compactions: ". */
static inline uint64_t stat_counter(mayfly_db *db, const char *label) {
  char *s = blob_stats(db);
  char *p = strstr(s, label);
  if (!p) fail_msg("no \"%s\" in blob stats:\n%s", label, s);
  uint64_t x = strtoull(p + strlen(label), NULL, 10);
  mayfly_free(s);
  return x;
}

/* The files in DBNAME whose names end with suffix. */
static inline int count_files(mf_env *env, const char *suffix) {
  char **names = NULL;
  size_t count = 0;
  assert_int_equal(env->list_dir(env, DBNAME, &names, &count), MAYFLY_OK);
  int n = 0;
  size_t sl = strlen(suffix);
  for (size_t i = 0; i < count; i++) {
    size_t l = strlen(names[i]);
    if (l >= sl && strcmp(names[i] + l - sl, suffix) == 0) n++;
  }
  env_free_names(names, count);
  return n;
}

#endif
