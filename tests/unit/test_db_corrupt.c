/* Damaged files: the engine reports MAYFLY_ECORRUPT with a message naming the file, never
 * serves wrong data, and a failed open leaves the files alone.
 *
 * Each test builds a small database on the in-memory env, closes it, damages one file at a
 * precise place (the layouts are in docs/format/log.md, manifest.md and sst.md), and opens it
 * again:
 *   - WAL: a flipped byte in a record followed by more records (point_in_time keeps exactly
 *     the records before it, also when later WALs exist; absolute refuses to open and names
 *     the .log file), and a torn tail (both modes open with everything before it).
 *   - CURRENT: empty, garbage, no newline, naming a missing MANIFEST, missing while a MANIFEST
 *     exists. MANIFEST: a flipped byte in a record followed by more records.
 *   - tables: truncated, a flipped byte in a data block, a damaged footer, a missing file:
 *     every read of a key either returns the right value or MAYFLY_ECORRUPT naming the .sst,
 *     and a scan that cannot see everything ends with MAYFLY_ECORRUPT. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/options.h"
#include "env/env.h"
#include "mayfly.h"
#include "util/coding.h"
#include "util/slice.h"
#include "wal/wal_format.h"
#include "wal/wal_writer.h"

#define DBNAME "/db"
#define WAL_BLOCK 32768
#define FRAGMENT_HEADER 7
#include "test_db_util.h"
#include "test_map_env.h"

/* ---- reads (keys, values and the common helpers are in test_db_util.h) ---- */

/* Reads key i expecting version ver with vlen bytes. Returns MAYFLY_OK (right value),
 * MAYFLY_ENOTFOUND or MAYFLY_ECORRUPT; wrong data or another code fails the test. */
static int read_key(mayfly_db *db, int i, int ver, size_t vlen) {
  char k[32], *expect = malloc(vlen);
  assert_non_null(expect);
  size_t klen = key_of(i, k);
  value_of(i, ver, vlen, expect);
  void *v = NULL;
  size_t got = 0;
  int rc = mayfly_get(db, NULL, k, klen, &v, &got);
  if (rc == MAYFLY_OK && (got != vlen || memcmp(v, expect, vlen) != 0))
    fail_msg("key %d: WRONG DATA (%zu bytes) instead of an error", i, got);
  if (rc != MAYFLY_OK && rc != MAYFLY_ENOTFOUND && rc != MAYFLY_ECORRUPT)
    fail_msg("key %d: unexpected %s (%s)", i, mayfly_strerror(rc), mayfly_errmsg(db));
  mayfly_free(v);
  free(expect);
  return rc;
}

/* ---- env and file helpers ---- */

/* Opening must fail with code, and mayfly_errmsg(NULL) must contain needle. */
static void open_fails(const struct mayfly_options *o, int code, const char *needle) {
  mayfly_db *db = (mayfly_db *)&db; /* must be reset to NULL */
  int rc = mayfly_open(DBNAME, o, &db);
  if (rc == MAYFLY_OK) {
    mayfly_close(db);
    fail_msg("open succeeded; expected %s", mayfly_strerror(code));
  }
  const char *msg = mayfly_errmsg(NULL);
  if (rc != code)
    fail_msg("open: %s (%s); expected %s", mayfly_strerror(rc), msg, mayfly_strerror(code));
  assert_null(db);
  if (!strstr(msg, needle)) fail_msg("open error message '%s' does not name '%s'", msg, needle);
}

/* The names in DBNAME ending with suffix (or starting with it when prefix), sorted. */
static int list_files(mf_env *env, const char *suffix, int prefix, char out[][64], int max) {
  char **names = NULL;
  size_t count = 0;
  assert_int_equal(env->list_dir(env, DBNAME, &names, &count), MAYFLY_OK);
  int n = 0;
  size_t sl = strlen(suffix);
  for (size_t i = 0; i < count; i++) {
    size_t l = strlen(names[i]);
    int match = prefix ? strncmp(names[i], suffix, sl) == 0
                       : l >= sl && strcmp(names[i] + l - sl, suffix) == 0;
    if (match && n < max && l < 64) strcpy(out[n++], names[i]);
  }
  env_free_names(names, count);
  qsort(out, (size_t)n, 64, (int (*)(const void *, const void *))strcmp);
  return n;
}

static void path_of(const char *name, char *path) { snprintf(path, 128, DBNAME "/%.100s", name); }

static void read_whole(mf_env *env, const char *name, mf_buf *out) {
  char path[128];
  path_of(name, path);
  out->len = 0;
  assert_int_equal(env_read_file(env, path, out), MAYFLY_OK);
}

static void write_whole(mf_env *env, const char *name, const void *data, size_t n) {
  char path[128];
  path_of(name, path);
  mf_wfile *f = NULL;
  assert_int_equal(env->new_writable(env, path, &f), MAYFLY_OK);
  if (n) assert_int_equal(env->append(f, data, n), MAYFLY_OK);
  assert_int_equal(env->sync(f, 1), MAYFLY_OK);
  assert_int_equal(env->close_writable(f), MAYFLY_OK);
}

/* Offsets of the leading FULL fragments of a log file (docs/format/log.md), up to the first
 * fragment of another type (a record crossing a block boundary). Returns the count; the
 * first fragment is the file header record. */
static int log_fragments(const mf_buf *file, size_t *offsets, size_t *lengths, int max) {
  size_t pos = 0;
  int n = 0;
  while (pos + FRAGMENT_HEADER <= file->len && n < max) {
    size_t left = WAL_BLOCK - pos % WAL_BLOCK;
    if (left < FRAGMENT_HEADER) {
      pos += left;
      continue;
    }
    const unsigned char *p = (const unsigned char *)file->data + pos;
    size_t len = (size_t)p[4] | (size_t)p[5] << 8;
    if (p[6] != 1) break;
    offsets[n] = pos;
    lengths[n] = len;
    n++;
    pos += FRAGMENT_HEADER + len;
  }
  return n;
}

/* ---- WAL damage ---- */

enum { WAL_RECORDS = 100, WAL_VLEN = 100 };

/* A database whose only data is WAL_RECORDS puts (key i, version 1) in one WAL. */
static mf_env *build_wal_db(char *wal_name) {
  mf_env *env = new_mem_env();
  struct mayfly_options o = opts_for(env);
  mayfly_db *db = open_ok(&o);
  for (int i = 0; i < WAL_RECORDS; i++) put_ver(db, i, 1, WAL_VLEN, 0);
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  char names[8][64];
  assert_int_equal(list_files(env, ".sst", 0, names, 8), 0);
  int nwal = list_files(env, ".log", 0, names, 8);
  assert_true(nwal >= 1);
  strcpy(wal_name, names[nwal - 1]); /* the newest holds the records */
  return env;
}

/* XORs mask into byte `at` of the fragment holding data record `record` of the named log
 * (at counts from the fragment start: 0-3 checksum, 4-5 length, 6 type, 7... payload). */
static void damage_log_record(mf_env *env, const char *name, int record, size_t at,
                              unsigned char mask) {
  mf_buf file = MF_BUF_INIT;
  read_whole(env, name, &file);
  size_t offsets[1024], lengths[1024];
  int n = log_fragments(&file, offsets, lengths, 1024);
  assert_true(record + 1 < n);
  assert_true(at < FRAGMENT_HEADER + lengths[record + 1]);
  file.data[offsets[record + 1] + at] ^= (char)mask;
  write_whole(env, name, file.data, file.len);
  mf_buf_free(&file);
}

/* Flips one byte in the payload of data record `record` of the named log. */
static void flip_log_record(mf_env *env, const char *name, int record, size_t at) {
  damage_log_record(env, name, record, FRAGMENT_HEADER + at, 0x20);
}

static void expect_keys(mayfly_db *db, int from, int to, int present) {
  for (int i = from; i < to; i++) {
    int rc = read_key(db, i, 1, WAL_VLEN);
    if (rc != (present ? MAYFLY_OK : MAYFLY_ENOTFOUND))
      fail_msg("key %d: %s, expected it %s", i, mayfly_strerror(rc), present ? "present" : "absent");
  }
}

/* mayfly.recovery of db holds the line `want` (whole, newline included). */
static void expect_recovery_line(mayfly_db *db, const char *want) {
  char *text = NULL;
  assert_int_equal(mayfly_property(db, "mayfly.recovery", &text), MAYFLY_OK);
  char line[1300];
  snprintf(line, sizeof line, "%s\n", want);
  const char *at = strstr(text, line);
  if (!at || (at != text && at[-1] != '\n'))
    fail_msg("mayfly.recovery lacks \"%s\":\n%s", want, text);
  mayfly_free(text);
}

/* Record 50 of 100 damaged at fragment byte `at`. */
static void wal_corrupt_middle(size_t at, unsigned char mask) {
  char wal[64];
  mf_env *env = build_wal_db(wal);
  damage_log_record(env, wal, 50, at, mask);

  struct mayfly_options o = opts_for(env);
  o.wal_recovery_mode = MF_WAL_ABSOLUTE;
  open_fails(&o, MAYFLY_ECORRUPT, ".log");
  open_fails(&o, MAYFLY_ECORRUPT, wal); /* twice: the failed open changed nothing */

  o.wal_recovery_mode = MF_WAL_POINT_IN_TIME;
  mayfly_db *db = open_ok(&o);
  expect_keys(db, 0, 50, 1);
  expect_keys(db, 50, WAL_RECORDS, 0);
  char want[128];
  snprintf(want, sizeof want, "Dropped at damage: %s after 50 records, and 0 later WALs", wal);
  expect_recovery_line(db, want);
  expect_recovery_line(db, "Records replayed: 50");
  /* The database goes on: new writes, reopen, and the dropped records stay dropped. */
  put_ver(db, 1000, 1, WAL_VLEN, 0);
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  o.wal_recovery_mode = MF_WAL_ABSOLUTE; /* the damage is behind us now */
  db = open_ok(&o);
  expect_keys(db, 0, 50, 1);
  expect_keys(db, 50, WAL_RECORDS, 0);
  expect_keys(db, 1000, 1001, 1);
  expect_recovery_line(db, "Dropped at damage: none");
  expect_recovery_line(db, "Records replayed: 1"); /* recovery flushed what it replayed */
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  env->destroy(env);
}

static void test_wal_corrupt_middle(void **state) {
  (void)state;
  wal_corrupt_middle(FRAGMENT_HEADER + 30, 0x20); /* inside the key/value bytes */
  wal_corrupt_middle(FRAGMENT_HEADER + 1, 0x01);  /* the batch's sequence number */
  wal_corrupt_middle(2, 0x80);                    /* the checksum */
  wal_corrupt_middle(5, 0x20);                    /* the length: +8 KiB, past the file end */
  wal_corrupt_middle(4, 0x01);                    /* the length: +1 */
  wal_corrupt_middle(6, 0x04);                    /* the type: 1 -> 5 */
  wal_corrupt_middle(6, 0x03);                    /* the type: FULL -> LAST */
}

/* Damage to the very first data record: nothing is replayed. */
static void test_wal_corrupt_first_record(void **state) {
  (void)state;
  char wal[64];
  mf_env *env = build_wal_db(wal);
  flip_log_record(env, wal, 0, 5);
  struct mayfly_options o = opts_for(env);
  o.wal_recovery_mode = MF_WAL_ABSOLUTE;
  open_fails(&o, MAYFLY_ECORRUPT, ".log");
  o.wal_recovery_mode = MF_WAL_POINT_IN_TIME;
  mayfly_db *db = open_ok(&o);
  expect_keys(db, 0, WAL_RECORDS, 0);
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  env->destroy(env);
}

static void torn_tail(int mode, size_t cut_into_last) {
  char wal[64];
  mf_env *env = build_wal_db(wal);
  mf_buf file = MF_BUF_INIT;
  read_whole(env, wal, &file);
  size_t offsets[1024], lengths[1024];
  int n = log_fragments(&file, offsets, lengths, 1024);
  assert_int_equal(n, WAL_RECORDS + 1);
  size_t cut = offsets[n - 1] + cut_into_last;
  assert_true(cut < file.len);
  write_whole(env, wal, file.data, cut);
  mf_buf_free(&file);
  struct mayfly_options o = opts_for(env);
  o.wal_recovery_mode = mode;
  mayfly_db *db = open_ok(&o);
  expect_keys(db, 0, WAL_RECORDS - 1, 1);
  expect_keys(db, WAL_RECORDS - 1, WAL_RECORDS, 0);
  char want[64];
  snprintf(want, sizeof want, "Torn tail bytes ignored: %zu", cut_into_last);
  expect_recovery_line(db, want); /* the last record's fragment starts where the cut one did */
  expect_recovery_line(db, "Dropped at damage: none");
  snprintf(want, sizeof want, "Records replayed: %d", WAL_RECORDS - 1);
  expect_recovery_line(db, want);
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  db = open_ok(&o);
  expect_keys(db, 0, WAL_RECORDS - 1, 1);
  expect_recovery_line(db, "Torn tail bytes ignored: 0");
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  env->destroy(env);
}

static void test_wal_torn_tail(void **state) {
  (void)state;
  torn_tail(MF_WAL_POINT_IN_TIME, FRAGMENT_HEADER + 40); /* payload cut short */
  torn_tail(MF_WAL_ABSOLUTE, FRAGMENT_HEADER + 40);
  torn_tail(MF_WAL_POINT_IN_TIME, 3); /* fragment header cut short */
  torn_tail(MF_WAL_ABSOLUTE, 3);
}

/* ---- an env whose table creation waits at a gate, so several WALs stay unflushed ---- */

static mf_env *g_gate_base;
static pthread_mutex_t g_gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_gate_cv = PTHREAD_COND_INITIALIZER;
static int g_gate_closed, g_gate_fail;

static int gate_new_writable(mf_env *env, const char *path, mf_wfile **out) {
  size_t l = strlen(path);
  if (l > 4 && strcmp(path + l - 4, ".sst") == 0) {
    pthread_mutex_lock(&g_gate_mu);
    while (g_gate_closed) pthread_cond_wait(&g_gate_cv, &g_gate_mu);
    int fail = g_gate_fail;
    pthread_mutex_unlock(&g_gate_mu);
    if (fail) return MAYFLY_EIO;
  }
  return g_gate_base->new_writable(g_gate_base, path, out);
}

static void gate_set(int closed, int failing) {
  pthread_mutex_lock(&g_gate_mu);
  g_gate_closed = closed;
  g_gate_fail = failing;
  pthread_cond_broadcast(&g_gate_cv);
  pthread_mutex_unlock(&g_gate_mu);
}

enum { STUCK_KEYS = 1500 };

/* A database whose STUCK_KEYS puts (key i, version 1) are all in WALs, about 3 of them: every
 * flush was held, then failed, so the MANIFEST still names the first WAL. */
static mf_env *build_stuck_wals(void) {
  mf_env *mem = new_mem_env();
  mf_env gate = *mem;
  g_gate_base = mem;
  gate.new_writable = gate_new_writable;
  gate.destroy = NULL;
  struct mayfly_options o = opts_for(&gate);
  o.write_buffer_size = 64 * 1024;
  o.max_write_buffer_number = 16;
  gate_set(1, 0);
  mayfly_db *db = open_ok(&o);
  for (int i = 0; i < STUCK_KEYS; i++) put_ver(db, i, 1, WAL_VLEN, 0);
  gate_set(0, 1); /* the stuck flush fails: nothing reaches a table */
  mayfly_close(db);
  gate_set(0, 0);
  char names[16][64];
  assert_true(list_files(mem, ".log", 0, names, 16) >= 3);
  assert_int_equal(list_files(mem, ".sst", 0, names, 16), 0);
  return mem;
}

/* Damage in an older WAL: point_in_time must not replay the later WALs either (their writes
 * came after the lost record). */
static void test_wal_corrupt_with_later_wals(void **state) {
  (void)state;
  enum { N = STUCK_KEYS };
  mf_env *mem = build_stuck_wals();
  char names[16][64];
  int nwal = list_files(mem, ".log", 0, names, 16);

  /* Damage record 10 of the oldest WAL that holds data; find the key it wrote. */
  mf_buf file = MF_BUF_INIT;
  int victim_wal = -1;
  size_t offsets[1024], lengths[1024];
  for (int w = 0; w < nwal && victim_wal < 0; w++) {
    read_whole(mem, names[w], &file);
    if (log_fragments(&file, offsets, lengths, 1024) > 20) victim_wal = w;
  }
  assert_true(victim_wal >= 0 && victim_wal < nwal - 1);
  const char *payload = file.data + offsets[11] + FRAGMENT_HEADER;
  /* batch: seq(8) count(4) type(1) klen(1) key ... */
  char kb[32];
  memcpy(kb, payload + 14, 11);
  kb[11] = '\0';
  int victim_key = -1;
  assert_int_equal(sscanf(kb, "key%08d", &victim_key), 1);
  mf_buf_free(&file);
  flip_log_record(mem, names[victim_wal], 10, 20);

  struct mayfly_options plain = opts_for(mem);
  plain.wal_recovery_mode = MF_WAL_ABSOLUTE;
  open_fails(&plain, MAYFLY_ECORRUPT, names[victim_wal]);
  plain.wal_recovery_mode = MF_WAL_POINT_IN_TIME;
  mayfly_db *db = open_ok(&plain);
  expect_keys(db, 0, victim_key, 1);
  expect_keys(db, victim_key, N, 0);
  char want[1200];
  snprintf(want, sizeof want, "Dropped at damage: %s after 10 records, and %d later WALs",
           names[victim_wal], nwal - 1 - victim_wal);
  expect_recovery_line(db, want);
  snprintf(want, sizeof want, "WALs read: %d", victim_wal + 1);
  expect_recovery_line(db, want);
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  mem->destroy(mem);
}

/* The WAL the MANIFEST names as the newest writes' log is gone (here with the later WALs of
 * stuck flushes beside it): absolute refuses to open, naming it; point_in_time opens without
 * it and without every later WAL (their writes came after the lost ones), and says so. */
static void test_wal_named_by_manifest_missing(void **state) {
  (void)state;
  enum { N = STUCK_KEYS };
  mf_env *mem = build_stuck_wals();
  char names[16][64];
  int nwal = list_files(mem, ".log", 0, names, 16);
  char path[128];
  path_of(names[0], path);
  assert_int_equal(mem->remove_file(mem, path), MAYFLY_OK);

  struct mayfly_options plain = opts_for(mem);
  plain.wal_recovery_mode = MF_WAL_ABSOLUTE;
  open_fails(&plain, MAYFLY_ECORRUPT, names[0]);
  plain.wal_recovery_mode = MF_WAL_POINT_IN_TIME;
  mayfly_db *db = open_ok(&plain);
  expect_keys(db, 0, N, 0);
  char want[1200];
  snprintf(want, sizeof want, "Dropped at damage: %s (missing) after 0 records, and %d later WALs",
           names[0], nwal - 1);
  expect_recovery_line(db, want);
  expect_recovery_line(db, "WALs read: 0");
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  mem->destroy(mem);
}

/* A WAL copied under another number (its header still names the first): replaying it there
 * would put its writes after writes they preceded. It is damage, named. */
static void test_wal_header_number_mismatch(void **state) {
  (void)state;
  char wal[64];
  mf_env *env = build_wal_db(wal);
  unsigned long long number = strtoull(wal, NULL, 10);
  char copy[64];
  snprintf(copy, sizeof copy, "%06llu.log", number + 50);
  mf_buf file = MF_BUF_INIT;
  read_whole(env, wal, &file);
  write_whole(env, copy, file.data, file.len);
  mf_buf_free(&file);

  struct mayfly_options o = opts_for(env);
  o.wal_recovery_mode = MF_WAL_ABSOLUTE;
  open_fails(&o, MAYFLY_ECORRUPT, copy);
  if (!strstr(mayfly_errmsg(NULL), "header says file number"))
    fail_msg("error does not say what is wrong: %s", mayfly_errmsg(NULL));
  o.wal_recovery_mode = MF_WAL_POINT_IN_TIME;
  mayfly_db *db = open_ok(&o);
  expect_keys(db, 0, WAL_RECORDS, 1);
  char want[1200];
  snprintf(want, sizeof want, "Dropped at damage: %s after 0 records, and 0 later WALs", copy);
  expect_recovery_line(db, want);
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  env->destroy(env);
}

/* A WAL record whose checksum is right but whose batch is not (a buggy writer, stale bytes):
 * the batch is dropped whole, never applied in part, and replay stops there as at any damage.
 * The crafted WAL 900 holds: a good batch (seq 1000, key "good"), the bad one, then another
 * good batch (key "late"). */
enum { BAD_TRUNCATED, BAD_SEQ_RANGE, BAD_SEQ_BACK, BAD_COUNT };

static size_t craft_put(char *p, uint64_t seq, uint32_t count, const char *key, const char *val) {
  encode_fixed64(p, seq);
  encode_fixed32(p + 8, count);
  size_t n = 12;
  p[n++] = 1; /* a put */
  p[n++] = (char)strlen(key);
  memcpy(p + n, key, strlen(key));
  n += strlen(key);
  p[n++] = (char)strlen(val);
  memcpy(p + n, val, strlen(val));
  return n + strlen(val);
}

static void bad_batch(int kind) {
  mf_env *env = new_mem_env();
  struct mayfly_options o = opts_for(env);
  mayfly_db *db = open_ok(&o);
  put_ver(db, 1, 1, WAL_VLEN, MAYFLY_SYNC);
  assert_int_equal(mayfly_close(db), MAYFLY_OK);

  char rec[3][128];
  size_t len[3];
  len[0] = craft_put(rec[0], 1000, 1, "good", "g");
  switch (kind) {
    case BAD_TRUNCATED: /* two records announced; the second's key runs past the end */
      len[1] = craft_put(rec[1], 1001, 2, "half", "h");
      rec[1][len[1]++] = 1;
      rec[1][len[1]++] = 100;
      rec[1][len[1]++] = 'y';
      break;
    case BAD_SEQ_RANGE: /* beyond the 56 bits of a sequence number */
      len[1] = craft_put(rec[1], UINT64_C(1) << 60, 1, "half", "h");
      break;
    case BAD_SEQ_BACK: /* a sequence number already used */
      len[1] = craft_put(rec[1], 1000, 1, "half", "h");
      break;
    default: /* BAD_COUNT: one record where the header says three */
      len[1] = craft_put(rec[1], 1001, 3, "half", "h");
      break;
  }
  len[2] = craft_put(rec[2], 1010, 1, "late", "l");
  mf_wfile *f;
  wal_writer *w;
  assert_int_equal(env->new_writable(env, DBNAME "/000900.log", &f), MAYFLY_OK);
  assert_int_equal(wal_writer_create(env, f, WAL_KIND_WAL, 900, &w, NULL), MAYFLY_OK);
  for (int i = 0; i < 3; i++)
    assert_int_equal(wal_writer_add_record(w, mf_slice_make(rec[i], len[i]), NULL), MAYFLY_OK);
  assert_int_equal(env->sync(f, 1), MAYFLY_OK);
  wal_writer_destroy(w);
  assert_int_equal(env->close_writable(f), MAYFLY_OK);

  o.wal_recovery_mode = MF_WAL_ABSOLUTE;
  open_fails(&o, MAYFLY_ECORRUPT, "000900.log");
  o.wal_recovery_mode = MF_WAL_POINT_IN_TIME;
  db = open_ok(&o);
  assert_int_equal(read_key(db, 1, 1, WAL_VLEN), MAYFLY_OK);
  static const char *const keys[] = {"good", "half", "late"};
  for (int i = 0; i < 3; i++) {
    void *v = NULL;
    size_t vlen = 0;
    int rc = mayfly_get(db, NULL, keys[i], 4, &v, &vlen);
    mayfly_free(v);
    if (rc != (i == 0 ? MAYFLY_OK : MAYFLY_ENOTFOUND))
      fail_msg("bad batch %d: key %s: %s", kind, keys[i], mayfly_strerror(rc));
  }
  expect_recovery_line(db, "Dropped at damage: 000900.log after 1 records, and 0 later WALs");
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  env->destroy(env);
}

static void test_wal_bad_batch(void **state) {
  (void)state;
  bad_batch(BAD_TRUNCATED);
  bad_batch(BAD_SEQ_RANGE);
  bad_batch(BAD_SEQ_BACK);
  bad_batch(BAD_COUNT);
}

/* ---- CURRENT and MANIFEST damage ---- */

enum { META_KEYS = 300 };

/* A database with data in several tables (so the MANIFEST has several records) and in the
 * WAL. */
static mf_env *build_meta_db(void) {
  mf_env *env = new_mem_env();
  struct mayfly_options o = opts_for(env);
  mayfly_db *db = open_ok(&o);
  for (int round = 0; round < 3; round++) {
    for (int i = round * 100; i < (round + 1) * 100; i++) put_ver(db, i, 1, 80, 0);
    if (round < 2) assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  }
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  return env;
}

static void expect_meta_db_intact(mf_env *env) {
  struct mayfly_options o = opts_for(env);
  mayfly_db *db = open_ok(&o);
  for (int i = 0; i < META_KEYS; i++)
    if (read_key(db, i, 1, 80) != MAYFLY_OK) fail_msg("key %d lost after a failed open", i);
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
}

static void test_current_damaged(void **state) {
  (void)state;
  static const struct {
    const char *contents;
    const char *needle;
  } cases[] = {
      {"", "CURRENT"},
      {"garbage that is no file name\n", "CURRENT"},
      {"\n", "CURRENT"},
      {"MANIFEST-000001", "CURRENT"},            /* no newline */
      {"MANIFEST-000001\nMANIFEST-000002\n", "CURRENT"},
      {"000005.sst\n", "CURRENT"},               /* not a MANIFEST */
      {"MANIFEST-999999\n", "MANIFEST-999999"}, /* names a missing MANIFEST */
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    mf_env *env = build_meta_db();
    mf_buf saved = MF_BUF_INIT;
    read_whole(env, "CURRENT", &saved);
    write_whole(env, "CURRENT", cases[c].contents, strlen(cases[c].contents));
    struct mayfly_options o = opts_for(env);
    open_fails(&o, MAYFLY_ECORRUPT, cases[c].needle);
    o.create_if_missing = 0;
    open_fails(&o, MAYFLY_ECORRUPT, cases[c].needle);
    write_whole(env, "CURRENT", saved.data, saved.len);
    mf_buf_free(&saved);
    expect_meta_db_intact(env);
    env->destroy(env);
  }
}

/* CURRENT gone while the MANIFEST and tables are there: damage, not a new empty database. */
static void test_current_missing(void **state) {
  (void)state;
  mf_env *env = build_meta_db();
  mf_buf saved = MF_BUF_INIT;
  read_whole(env, "CURRENT", &saved);
  assert_int_equal(env->remove_file(env, DBNAME "/CURRENT"), MAYFLY_OK);
  struct mayfly_options o = opts_for(env);
  open_fails(&o, MAYFLY_ECORRUPT, "CURRENT");
  open_fails(&o, MAYFLY_ECORRUPT, "CURRENT");
  write_whole(env, "CURRENT", saved.data, saved.len);
  mf_buf_free(&saved);
  expect_meta_db_intact(env);
  env->destroy(env);
}

static void test_manifest_record_damaged(void **state) {
  (void)state;
  mf_env *env = build_meta_db();
  char names[8][64];
  assert_int_equal(list_files(env, "MANIFEST-", 1, names, 8), 1);
  mf_buf file = MF_BUF_INIT, saved = MF_BUF_INIT;
  read_whole(env, names[0], &file);
  assert_int_equal(mf_buf_set(&saved, file.data, file.len), MAYFLY_OK);
  size_t offsets[256], lengths[256];
  int n = log_fragments(&file, offsets, lengths, 256);
  assert_true(n >= 3); /* header, and at least two edits */
  /* The first non-trivial edit that is followed by more. */
  int victim = 1;
  while (victim < n - 1 && lengths[victim] <= 2) victim++;
  assert_true(victim < n - 1);
  file.data[offsets[victim] + FRAGMENT_HEADER + lengths[victim] / 2] ^= 0x01;
  write_whole(env, names[0], file.data, file.len);
  struct mayfly_options o = opts_for(env);
  open_fails(&o, MAYFLY_ECORRUPT, names[0]);
  o.wal_recovery_mode = MF_WAL_ABSOLUTE;
  open_fails(&o, MAYFLY_ECORRUPT, names[0]);
  write_whole(env, names[0], saved.data, saved.len);
  expect_meta_db_intact(env);
  mf_buf_free(&file);
  mf_buf_free(&saved);
  env->destroy(env);
}

/* A MANIFEST damaged in its file header (magic). */
static void test_manifest_header_damaged(void **state) {
  (void)state;
  mf_env *env = build_meta_db();
  char names[8][64];
  assert_int_equal(list_files(env, "MANIFEST-", 1, names, 8), 1);
  mf_buf file = MF_BUF_INIT;
  read_whole(env, names[0], &file);
  file.data[9] ^= 0x40; /* inside the magic */
  write_whole(env, names[0], file.data, file.len);
  struct mayfly_options o = opts_for(env);
  open_fails(&o, MAYFLY_ECORRUPT, names[0]);
  mf_buf_free(&file);
  env->destroy(env);
}

/* ---- table damage ---- */

enum { SST_KEYS = 2000, SST_VLEN = 100 };

/* 1: the table tests run on an env that maps files (test_map_env.h), so tables are read in
 * place; set by the "/mapped" entries' setup. */
static int g_mapped;

static int use_mapped(void **state) {
  (void)state;
  g_mapped = 1;
  return 0;
}

static int use_pread(void **state) {
  (void)state;
  g_mapped = 0;
  return 0;
}

/* One table holding keys [0, SST_KEYS) version 1 and nothing else. */
static mf_env *build_sst_db(char *sst_name) {
  mf_env *env = g_mapped ? test_map_env_create(0) : new_mem_env();
  struct mayfly_options o = opts_for(env);
  mayfly_db *db = open_ok(&o);
  for (int i = 0; i < SST_KEYS; i++) put_ver(db, i, 1, SST_VLEN, 0);
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  char names[8][64];
  assert_int_equal(list_files(env, ".sst", 0, names, 8), 1);
  strcpy(sst_name, names[0]);
  return env;
}

/* A call with no database handle: mayfly_errmsg(NULL) owns what it leaves. */
static void handle_less_call(void) {
  mayfly_options *o = NULL;
  assert_int_equal(mayfly_options_create(&o), MAYFLY_OK);
  mayfly_options_destroy(o);
}

/* Opens the damaged database (open may refuse it with ECORRUPT naming the table) and reads
 * every key: right value or ECORRUPT naming the table, never ENOTFOUND or wrong data; at
 * least min_corrupt keys unreadable; a scan shows only right values and, unless it saw every
 * key, ends with ECORRUPT. */
static void check_damaged_sst(mf_env *env, const char *sst, int min_corrupt) {
  struct mayfly_options o = opts_for(env);
  mayfly_db *db = NULL;
  int rc = mayfly_open(DBNAME, &o, &db);
  if (rc != MAYFLY_OK) {
    assert_int_equal(rc, MAYFLY_ECORRUPT);
    if (!strstr(mayfly_errmsg(NULL), sst))
      fail_msg("open error '%s' does not name %s", mayfly_errmsg(NULL), sst);
    return;
  }
  int corrupt = 0;
  for (int i = 0; i < SST_KEYS; i++) {
    rc = read_key(db, i, 1, SST_VLEN);
    if (rc == MAYFLY_ENOTFOUND) fail_msg("key %d: NOT FOUND in a damaged table instead of an error", i);
    if (rc == MAYFLY_ECORRUPT) {
      corrupt++;
      if (!strstr(mayfly_errmsg(db), sst))
        fail_msg("key %d: error '%s' does not name %s", i, mayfly_errmsg(db), sst);
    }
  }
  if (corrupt < min_corrupt)
    fail_msg("only %d keys reported ECORRUPT, expected at least %d", corrupt, min_corrupt);

  mayfly_iter *it = NULL;
  assert_int_equal(mayfly_iter_create(db, NULL, &it), MAYFLY_OK);
  int seen = 0, wrong = -1;
  char *expect = malloc(SST_VLEN);
  /* A handle-less call before each move: a move that fails must still file its message
   * under db (it was filed under whatever handle the thread used last). */
  handle_less_call();
  for (mayfly_iter_seek_to_first(it); mayfly_iter_valid(it); handle_less_call(), mayfly_iter_next(it)) {
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
    if (i >= 0) value_of(i, 1, SST_VLEN, expect);
    if (i < 0 || vlen != SST_VLEN || memcmp(v, expect, SST_VLEN) != 0) {
      wrong = seen;
      break;
    }
    seen++;
  }
  int status = mayfly_iter_status(it);
  if (status == MAYFLY_ECORRUPT && !strstr(mayfly_errmsg(db), sst))
    fail_msg("scan error: mayfly_errmsg(db) is '%s', not naming %s", mayfly_errmsg(db), sst);
  /* A move of the failed iterator does nothing, and takes no other handle's message: a
   * handle-less failure just before stays mayfly_errmsg(NULL)'s. */
  mayfly_options *bad = NULL;
  assert_int_equal(mayfly_options_create(&bad), MAYFLY_OK);
  assert_int_equal(mayfly_options_set(bad, "no_such_option", "1"), MAYFLY_EINVAL);
  mayfly_options_destroy(bad);
  char none_msg[256];
  snprintf(none_msg, sizeof none_msg, "%s", mayfly_errmsg(NULL));
  assert_true(none_msg[0] != '\0');
  mayfly_iter_next(it);
  mayfly_iter_prev(it);
  assert_string_equal(mayfly_errmsg(NULL), none_msg);
  if (strstr(mayfly_errmsg(db), "no_such_option"))
    fail_msg("the iterator's database took the handle-less message: %s", mayfly_errmsg(db));
  mayfly_iter_destroy(it);
  free(expect);
  if (wrong >= 0) fail_msg("scan: WRONG DATA at entry %d of a damaged table", wrong);
  if (seen < SST_KEYS && status != MAYFLY_ECORRUPT)
    fail_msg("scan saw %d of %d keys and ended with %s instead of ECORRUPT", seen, SST_KEYS,
             mayfly_strerror(status));
  if (corrupt > 0 && seen == SST_KEYS)
    fail_msg("scan read every key although gets found damage");
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
}

static void test_sst_truncated(void **state) {
  (void)state;
  char sst[64];
  mf_env *env = build_sst_db(sst);
  mf_buf file = MF_BUF_INIT;
  read_whole(env, sst, &file);
  write_whole(env, sst, file.data, file.len / 2);
  check_damaged_sst(env, sst, 1);
  /* Cut off only the last byte (the footer's magic). */
  write_whole(env, sst, file.data, file.len - 1);
  check_damaged_sst(env, sst, 1);
  mf_buf_free(&file);
  env->destroy(env);
}

static void test_sst_data_block_flip(void **state) {
  (void)state;
  char sst[64];
  mf_env *env = build_sst_db(sst);
  mf_buf file = MF_BUF_INIT;
  read_whole(env, sst, &file);
  /* The first data block starts at offset 0; byte 200 is in an entry's key or value. */
  file.data[200] ^= 0x04;
  write_whole(env, sst, file.data, file.len);
  check_damaged_sst(env, sst, 1);
  /* A flip in the middle of the file (another data block). */
  file.data[200] ^= 0x04;
  file.data[file.len / 2] ^= 0x80;
  write_whole(env, sst, file.data, file.len);
  check_damaged_sst(env, sst, 1);
  mf_buf_free(&file);
  env->destroy(env);
}

static void test_sst_footer_flip(void **state) {
  (void)state;
  char sst[64];
  mf_env *env = build_sst_db(sst);
  mf_buf file = MF_BUF_INIT;
  read_whole(env, sst, &file);
  file.data[file.len - 20] ^= 0x10; /* the footer's checksummed part */
  write_whole(env, sst, file.data, file.len);
  check_damaged_sst(env, sst, SST_KEYS);
  mf_buf_free(&file);
  env->destroy(env);
}

static void test_sst_missing(void **state) {
  (void)state;
  char sst[64], path[128];
  mf_env *env = build_sst_db(sst);
  path_of(sst, path);
  assert_int_equal(env->remove_file(env, path), MAYFLY_OK);
  check_damaged_sst(env, sst, SST_KEYS);
  env->destroy(env);
}

/* Two tables: the older holds every key, the newer deletes the odd ones. Damage in the newer
 * one's first data block must not bring deleted keys back from the older one: a get answers
 * ECORRUPT, and a scan stops with ECORRUPT instead of going on without the damaged table. */
static void test_sst_damage_hides_no_tombstone(void **state) {
  (void)state;
  mf_env *env = g_mapped ? test_map_env_create(0) : new_mem_env();
  struct mayfly_options o = opts_for(env);
  mayfly_db *db = open_ok(&o);
  for (int i = 0; i < SST_KEYS; i++) put_ver(db, i, 1, SST_VLEN, 0);
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  for (int i = 1; i < SST_KEYS; i += 2) del_key(db, i, 0);
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  char names[8][64];
  assert_int_equal(list_files(env, ".sst", 0, names, 8), 2);
  const char *newer = strcmp(names[0], names[1]) > 0 ? names[0] : names[1];
  mf_buf file = MF_BUF_INIT;
  read_whole(env, newer, &file);
  file.data[200] ^= 0x04; /* inside the first data block's entries */
  write_whole(env, newer, file.data, file.len);
  mf_buf_free(&file);

  db = open_ok(&o);
  int rc = read_key(db, 1, 1, SST_VLEN);
  if (rc != MAYFLY_ECORRUPT)
    fail_msg("get of a deleted key: %s, not ECORRUPT", mayfly_strerror(rc));
  mayfly_iter *it = NULL;
  assert_int_equal(mayfly_iter_create(db, NULL, &it), MAYFLY_OK);
  int seen = 0;
  for (mayfly_iter_seek_to_first(it); mayfly_iter_valid(it); mayfly_iter_next(it)) {
    size_t klen;
    const char *k = mayfly_iter_key(it, &klen);
    char kb[32];
    int i = -1;
    if (klen < sizeof kb) {
      memcpy(kb, k, klen);
      kb[klen] = '\0';
      sscanf(kb, "key%08d", &i);
    }
    if (i < 0 || i % 2 == 1) fail_msg("scan showed %.*s, which was deleted", (int)klen, k);
    seen++;
  }
  assert_int_equal(mayfly_iter_status(it), MAYFLY_ECORRUPT);
  assert_true(seen < SST_KEYS / 2);
  mayfly_iter_destroy(it);
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  env->destroy(env);
}

/* A table or blob file that the MANIFEST lists is missing, or a table is shorter or longer
 * than the MANIFEST says: the open refuses with ECORRUPT naming the file (it would otherwise
 * surface only at some later read or compaction). Put back, the database opens whole. */
static void test_live_file_missing_or_cut(void **state) {
  (void)state;
  mf_env *env = new_mem_env();
  struct mayfly_options o = opts_for(env);
  o.min_blob_size = 64;
  mayfly_db *db = open_ok(&o);
  for (int i = 0; i < SST_KEYS; i++) put_ver(db, i, 1, i % 2 ? 200 : 40, 0); /* half in blobs */
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  char sst[8][64], blob[8][64];
  assert_int_equal(list_files(env, ".sst", 0, sst, 8), 1);
  assert_int_equal(list_files(env, ".blob", 0, blob, 8), 1);
  mf_buf table = MF_BUF_INIT, blobs = MF_BUF_INIT;
  read_whole(env, sst[0], &table);
  read_whole(env, blob[0], &blobs);
  char path[128];

  path_of(blob[0], path);
  assert_int_equal(env->remove_file(env, path), MAYFLY_OK);
  open_fails(&o, MAYFLY_ECORRUPT, blob[0]);
  write_whole(env, blob[0], blobs.data, blobs.len);

  path_of(sst[0], path);
  assert_int_equal(env->remove_file(env, path), MAYFLY_OK);
  open_fails(&o, MAYFLY_ECORRUPT, sst[0]);
  write_whole(env, sst[0], table.data, table.len - 1);
  open_fails(&o, MAYFLY_ECORRUPT, sst[0]);
  mf_buf_append(&table, "x", 1);
  write_whole(env, sst[0], table.data, table.len);
  open_fails(&o, MAYFLY_ECORRUPT, sst[0]);
  write_whole(env, sst[0], table.data, table.len - 1);

  db = open_ok(&o);
  for (int i = 0; i < SST_KEYS; i += 37)
    assert_int_equal(read_key(db, i, 1, i % 2 ? 200 : 40), MAYFLY_OK);
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  mf_buf_free(&table);
  mf_buf_free(&blobs);
  env->destroy(env);
}

/* Files whose numbers are far past the database's counter (a copy, a tool, an attack) are not
 * the database's: not replayed (garbage in a WAL-named file would fail an absolute-mode open),
 * not counted (the counter would run to numbers whose names do not parse, and the next open
 * would not find the MANIFEST), not deleted. */
static void test_stray_file_numbers(void **state) {
  (void)state;
  mf_env *env = new_mem_env();
  struct mayfly_options o = opts_for(env);
  o.wal_recovery_mode = MF_WAL_ABSOLUTE;
  mayfly_db *db = open_ok(&o);
  put_ver(db, 1, 1, 100, 0);
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  static const char *const strays[] = {
      "1152921504606846975.log", /* 2^60 - 1: the largest name that parses */
      "576460752303423487.sst",  /* 2^59 - 1 */
      "4294967396.log",          /* 2^32 + 100 */
  };
  for (size_t i = 0; i < 3; i++) write_whole(env, strays[i], "garbage", 7);
  for (int round = 0; round < 3; round++) {
    db = open_ok(&o);
    assert_int_equal(read_key(db, 1, round ? 2 : 1, 100), MAYFLY_OK);
    put_ver(db, 1, 2, 100, 0);
    assert_int_equal(mayfly_flush(db), MAYFLY_OK);
    assert_int_equal(mayfly_compact_range(db, NULL, 0, NULL, 0), MAYFLY_OK);
    assert_int_equal(mayfly_close(db), MAYFLY_OK);
  }
  for (size_t i = 0; i < 3; i++) {
    char path[128];
    path_of(strays[i], path);
    assert_true(env->file_exists(env, path));
  }
  env->destroy(env);
}

/* A table test on the env that maps files. */
#define MAPPED(fn) {#fn "/mapped", fn, use_mapped, NULL, NULL}

/* A table holding two versions of a key in two blocks, the newer one's block damaged: a
 * backward scan reads the older version first, then fails stepping back to the newer one.
 * It must end with ECORRUPT there, not show the older version as the key's value. */
static void test_reverse_scan_shows_no_older_version(void **state) {
  (void)state;
  mf_env *env = new_mem_env();
  struct mayfly_options o = opts_for(env);
  assert_int_equal(options_set(&o, "block_size", "256", 0), MAYFLY_OK);
  mayfly_db *db = open_ok(&o);
  enum { VLEN = 300 }; /* each entry a block of its own */
  put_ver(db, 1, 1, VLEN, 0);
  const mayfly_snapshot *snap = NULL;
  assert_int_equal(mayfly_snapshot_create(db, &snap), MAYFLY_OK);
  put_ver(db, 1, 2, VLEN, 0);
  assert_int_equal(mayfly_flush(db), MAYFLY_OK); /* the snapshot keeps version 1 */
  mayfly_snapshot_release(db, snap);
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  char names[8][64];
  assert_int_equal(list_files(env, ".sst", 0, names, 8), 1);
  mf_buf file = MF_BUF_INIT;
  read_whole(env, names[0], &file);
  file.data[40] ^= 0x20; /* the first block: version 2 (newest first) */
  write_whole(env, names[0], file.data, file.len);
  mf_buf_free(&file);

  db = open_ok(&o);
  mayfly_iter *it = NULL;
  assert_int_equal(mayfly_iter_create(db, NULL, &it), MAYFLY_OK);
  for (mayfly_iter_seek_to_last(it); mayfly_iter_valid(it); mayfly_iter_prev(it)) {
    size_t vlen;
    const void *v = mayfly_iter_value(it, &vlen);
    assert_non_null(v);
    fail_msg("backward scan showed version %d of key 1 over a damaged newer version",
             parse_value(1, v, vlen));
  }
  assert_int_equal(mayfly_iter_status(it), MAYFLY_ECORRUPT);
  mayfly_iter_destroy(it);
  assert_int_equal(read_key(db, 1, 2, VLEN), MAYFLY_ECORRUPT); /* a get agrees */
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  env->destroy(env);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_wal_corrupt_middle),
      cmocka_unit_test(test_wal_corrupt_first_record),
      cmocka_unit_test(test_wal_torn_tail),
      cmocka_unit_test(test_wal_corrupt_with_later_wals),
      cmocka_unit_test(test_wal_bad_batch),
      cmocka_unit_test(test_wal_named_by_manifest_missing),
      cmocka_unit_test(test_wal_header_number_mismatch),
      cmocka_unit_test(test_current_damaged),
      cmocka_unit_test(test_current_missing),
      cmocka_unit_test(test_manifest_record_damaged),
      cmocka_unit_test(test_manifest_header_damaged),
      cmocka_unit_test(test_live_file_missing_or_cut),
      cmocka_unit_test(test_stray_file_numbers),
      cmocka_unit_test_setup(test_sst_truncated, use_pread),
      cmocka_unit_test_setup(test_sst_data_block_flip, use_pread),
      cmocka_unit_test_setup(test_sst_footer_flip, use_pread),
      cmocka_unit_test_setup(test_sst_missing, use_pread),
      cmocka_unit_test_setup(test_sst_damage_hides_no_tombstone, use_pread),
      cmocka_unit_test(test_reverse_scan_shows_no_older_version),
      MAPPED(test_sst_truncated),
      MAPPED(test_sst_data_block_flip),
      MAPPED(test_sst_footer_flip),
      MAPPED(test_sst_missing),
      MAPPED(test_sst_damage_hides_no_tombstone),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
