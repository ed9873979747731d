/* Key-value separation through the public API, on the in-memory env.
 *
 * What is checked:
 *  - separation: values of at least min_blob_size go to blob files and smaller ones stay in
 *    the tables (mayfly.total-blob-size is exactly the record bytes of the separated values);
 *    get and iteration (forward, backward, seek) return exact values of both kinds; lz4 and
 *    zstd blob files round-trip; blob_file_starting_level keeps level-0 flushes inline until
 *    a compaction writes to a deep enough level; turning enable_blob_files off at runtime
 *    stops new separation, keeps old blobs readable, and relocation then re-inlines them;
 *  - lazy reads: a scan that asks only for keys never opens a blob file;
 *  - accounting: mayfly.blob-garbage-size grows by exactly the record bytes of dropped
 *    references, fully-garbage blob files leave the disk, live-data-size-exact is the exact
 *    sum of live key and value bytes, and space amplification is close to 1 after full GC;
 *  - every blob option can be changed by mayfly_set_option (and bad values are refused);
 *  - blob statistics survive a reopen unchanged (garbage is persisted in the MANIFEST);
 *  - a damaged blob record is MAYFLY_ECORRUPT for its key only, naming the file. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob/blob_format.h"
#include "db/options.h"
#include "env/env.h"
#include "mayfly.h"
#include "util/slice.h"

#define DBNAME "/db"
#define KLEN 11 /* "key%08d" */
#include "test_db_util.h"
#include "test_map_env.h"

static mf_env *g_env;
static mayfly_db *g_db; /* the open handle, for the teardown after a failure */

/* ---- keys and values ---- */

static uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* The value of key i at version ver: an 18-byte header naming both, then bytes that are
 * incompressible (compressible = 0) or a short repeating pattern (compressible = 1). */
static void blob_value_of(int i, int ver, size_t len, int compressible, char *buf) {
  char head[40];
  int n = snprintf(head, sizeof head, "%08d:%08d:", i, ver);
  memcpy(buf, head, len < (size_t)n ? len : (size_t)n);
  uint64_t s = (uint64_t)i * 1000003u + (uint64_t)ver;
  for (size_t j = (size_t)n; j < len; j++) {
    if (compressible) buf[j] = (char)('a' + (i + ver + (int)(j % 13)) % 26);
    else {
      if ((j - (size_t)n) % 8 == 0) s = mix64(s);
      buf[j] = (char)(s >> (8 * ((j - (size_t)n) % 8)));
    }
  }
}

static void put_val(mayfly_db *db, int i, int ver, size_t len, int compressible) {
  char k[32], *v = malloc(len ? len : 1);
  assert_non_null(v);
  size_t klen = key_of(i, k);
  blob_value_of(i, ver, len, compressible, v);
  int rc = mayfly_put(db, k, klen, v, len, 0);
  free(v);
  if (rc != MAYFLY_OK) fail_msg("put key %d: %s (%s)", i, mayfly_strerror(rc), mayfly_errmsg(db));
}

/* Fails unless key i reads back as exactly blob_value_of(i, ver, len, compressible). */
static void expect_val(mayfly_db *db, const mayfly_snapshot *snap, int i, int ver, size_t len,
                       int compressible) {
  char k[32];
  size_t klen = key_of(i, k);
  void *v = NULL;
  size_t vlen = 0;
  int rc = mayfly_get(db, snap, k, klen, &v, &vlen);
  if (rc != MAYFLY_OK) fail_msg("get key %d: %s (%s)", i, mayfly_strerror(rc), mayfly_errmsg(db));
  char *want = malloc(len ? len : 1);
  assert_non_null(want);
  blob_value_of(i, ver, len, compressible, want);
  int same = vlen == len && memcmp(v, want, len) == 0;
  free(want);
  mayfly_free(v);
  if (!same) fail_msg("key %d: got %zu bytes, not version %d's %zu bytes", i, vlen, ver, len);
}

static void expect_absent(mayfly_db *db, int i) {
  char k[32];
  size_t klen = key_of(i, k);
  void *v = NULL;
  size_t vlen = 0;
  int rc = mayfly_get(db, NULL, k, klen, &v, &vlen);
  mayfly_free(v);
  if (rc != MAYFLY_ENOTFOUND) fail_msg("key %d: expected absent, got %s", i, mayfly_strerror(rc));
}

/* ---- database, properties, files ---- */

/* Options every test starts from: flushes stay in level 0, nothing compacts unless asked
 * (the level-0 trigger is far away and the memtable never fills), blob values from 100
 * bytes, GC off (tests turn it on where they study it). */
static struct mayfly_options base_opts(void) {
  if (!g_env) g_env = new_mem_env();
  struct mayfly_options o = opts_for(g_env);
  o.write_buffer_size = 32u << 20;
  o.level0_file_num_compaction_trigger = 16;
  o.level0_slowdown_writes_trigger = 32;
  o.level0_stop_writes_trigger = 64;
  o.max_mem_compaction_level = 0;
  o.min_blob_size = 100;
  o.enable_blob_garbage_collection = 0;
  return o;
}

static mayfly_db *open_db(const struct mayfly_options *o) {
  g_db = open_ok(o);
  return g_db;
}

static void close_db(mayfly_db *db) {
  g_db = NULL;
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
}

static int teardown(void **state) {
  (void)state;
  if (g_db) mayfly_close(g_db);
  g_db = NULL;
  if (g_env) g_env->destroy(g_env);
  g_env = NULL;
  return 0;
}

static char *prop(mayfly_db *db, const char *name) {
  char *v = NULL;
  int rc = mayfly_property(db, name, &v);
  if (rc != MAYFLY_OK) fail_msg("property %s: %s (%s)", name, mayfly_strerror(rc), mayfly_errmsg(db));
  return v;
}

static double prop_double(mayfly_db *db, const char *name) {
  char *v = prop(db, name);
  double x = strtod(v, NULL);
  mayfly_free(v);
  return x;
}

/* One "  #NNNNNN: ..." line of mayfly.blob-stats. */
typedef struct blob_line {
  uint64_t number, count, bytes, garbage_count, garbage_bytes;
  int linked;
} blob_line;

/* Parses the per-file lines of mayfly.blob-stats into out (at most max); returns how many. */
static int blob_lines(mayfly_db *db, blob_line *out, int max) {
  char *s = prop(db, "mayfly.blob-stats");
  int n = 0;
  for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
    blob_line b;
    if (sscanf(line, " #%" SCNu64 ": %" SCNu64 " blobs, %" SCNu64 " bytes, garbage %" SCNu64
               " blobs %" SCNu64 " bytes, %d linked tables", &b.number, &b.count, &b.bytes,
               &b.garbage_count, &b.garbage_bytes, &b.linked) == 6) {
      if (n == max) fail_msg("more than %d blob files", max);
      out[n++] = b;
    }
  }
  mayfly_free(s);
  return n;
}

/* Numbers of the NNNNNN.blob files in the directory, ascending; returns how many. */
static int disk_blobs(uint64_t *out, int max) {
  char **names = NULL;
  size_t count = 0;
  assert_int_equal(g_env->list_dir(g_env, DBNAME, &names, &count), MAYFLY_OK);
  int n = 0;
  for (size_t i = 0; i < count; i++) {
    size_t l = strlen(names[i]);
    if (l > 5 && strcmp(names[i] + l - 5, ".blob") == 0) {
      if (n == max) fail_msg("more than %d blob files on disk", max);
      out[n++] = strtoull(names[i], NULL, 10);
    }
  }
  env_free_names(names, count);
  for (int i = 1; i < n; i++) /* insertion sort: a handful of names */
    for (int j = i; j > 0 && out[j - 1] > out[j]; j--) {
      uint64_t t = out[j];
      out[j] = out[j - 1];
      out[j - 1] = t;
    }
  return n;
}

static int num_disk_blobs(void) {
  uint64_t nums[256];
  return disk_blobs(nums, 256);
}

/* The files mayfly.blob-stats lists are exactly the .blob files on disk. */
static void expect_blobs_match_disk(mayfly_db *db) {
  blob_line lines[256];
  uint64_t nums[256];
  int n = blob_lines(db, lines, 256), d = disk_blobs(nums, 256);
  if (n != d) fail_msg("%d blob files in the version, %d on disk", n, d);
  for (int i = 0; i < n; i++)
    if (lines[i].number != nums[i])
      fail_msg("blob file #%" PRIu64 " of the version vs %06" PRIu64 ".blob on disk",
               lines[i].number, nums[i]);
}

static char *blob_path(uint64_t number) {
  char *p = malloc(64);
  assert_non_null(p);
  snprintf(p, 64, "%s/%06" PRIu64 ".blob", DBNAME, number);
  return p;
}

static uint64_t record_bytes(size_t vlen) { return BLOB_RECORD_HEADER_SIZE + KLEN + vlen; }

/* Scans forward and backward and seeks, checking every key and value against the model:
 * ver[i] < 0 means absent, else blob_value_of(i, ver[i], len[i], comp). */
static void check_scans(mayfly_db *db, int n, const int *ver, const size_t *len, int comp) {
  mayfly_iter *it = NULL;
  ok(db, mayfly_iter_create(db, NULL, &it), "iter_create");
  char problem[200] = "";
  char *want = malloc(1 << 16);
  assert_non_null(want);
  for (int pass = 0; pass < 2 && !problem[0]; pass++) {
    int i = pass == 0 ? -1 : n;
    if (pass == 0) mayfly_iter_seek_to_first(it);
    else mayfly_iter_seek_to_last(it);
    for (; mayfly_iter_valid(it) && !problem[0];
         pass == 0 ? mayfly_iter_next(it) : mayfly_iter_prev(it)) {
      do i += pass == 0 ? 1 : -1;
      while (i >= 0 && i < n && ver[i] < 0);
      size_t klen, vlen;
      const char *k = mayfly_iter_key(it, &klen);
      char kb[32];
      key_of(i, kb);
      if (i < 0 || i >= n || klen != KLEN || memcmp(k, kb, KLEN) != 0) {
        snprintf(problem, sizeof problem, "pass %d: unexpected key %.*s", pass, (int)klen, k);
        break;
      }
      const void *v = mayfly_iter_value(it, &vlen);
      blob_value_of(i, ver[i], len[i], comp, want);
      if (!v || vlen != len[i] || memcmp(v, want, vlen) != 0)
        snprintf(problem, sizeof problem, "pass %d: key %d has a wrong value (%zu bytes)", pass,
                 i, vlen);
    }
    if (!problem[0]) {
      do i += pass == 0 ? 1 : -1;
      while (i >= 0 && i < n && ver[i] < 0);
      if (i >= 0 && i < n) snprintf(problem, sizeof problem, "pass %d: key %d missing", pass, i);
    }
  }
  /* Seeks: to each present key, and to just after it. */
  for (int i = 0; i < n && !problem[0]; i += 7) {
    char kb[40];
    size_t kl = key_of(i, kb);
    kb[kl++] = '!';
    for (int after = 0; after < 2 && !problem[0]; after++) {
      mayfly_iter_seek(it, kb, after ? kl : kl - 1);
      int j = after ? i + 1 : i;
      while (j < n && ver[j] < 0) j++;
      if (j >= n) {
        if (mayfly_iter_valid(it)) snprintf(problem, sizeof problem, "seek %d: past the end", i);
        continue;
      }
      size_t klen, vlen;
      char expect_key[32];
      key_of(j, expect_key);
      const char *k = mayfly_iter_valid(it) ? mayfly_iter_key(it, &klen) : NULL;
      if (!k || klen != KLEN || memcmp(k, expect_key, KLEN) != 0) {
        snprintf(problem, sizeof problem, "seek %d (after %d): not at key %d", i, after, j);
        break;
      }
      const void *v = mayfly_iter_value(it, &vlen);
      blob_value_of(j, ver[j], len[j], comp, want);
      if (!v || vlen != len[j] || memcmp(v, want, vlen) != 0)
        snprintf(problem, sizeof problem, "seek %d: key %d has a wrong value", i, j);
    }
  }
  free(want);
  int status = mayfly_iter_status(it);
  mayfly_iter_destroy(it);
  if (problem[0]) fail_msg("%s", problem);
  if (status != MAYFLY_OK) fail_msg("scan status %s", mayfly_strerror(status));
}

/* Walks back and forth (next after prev and prev after next, value read at every stop,
 * sometimes twice) over present keys; ver/len as in check_scans. */
static void check_zigzag(mayfly_db *db, int n, const int *ver, const size_t *len, int comp) {
  mayfly_iter *it = NULL;
  ok(db, mayfly_iter_create(db, NULL, &it), "iter_create");
  char *want = malloc(1 << 16);
  assert_non_null(want);
  char problem[160] = "";
  static const int moves[] = {+1, +1, -1, +1, -1, -1, -1, +1, +1, +1, +1, -1};
  char kb[32];
  int pos = n / 2;
  while (pos < n && ver[pos] < 0) pos++;
  key_of(pos, kb);
  mayfly_iter_seek(it, kb, KLEN);
  for (int step = 0; step < 48 && !problem[0] && mayfly_iter_valid(it); step++) {
    size_t vlen, klen;
    const char *k = mayfly_iter_key(it, &klen);
    key_of(pos, kb);
    if (klen != KLEN || memcmp(k, kb, KLEN) != 0) {
      snprintf(problem, sizeof problem, "step %d: not at key %d", step, pos);
      break;
    }
    for (int twice = 0; twice < 1 + (step % 3 == 0) && !problem[0]; twice++) {
      const void *v = mayfly_iter_value(it, &vlen);
      blob_value_of(pos, ver[pos], len[pos], comp, want);
      if (!v || vlen != len[pos] || memcmp(v, want, vlen) != 0)
        snprintf(problem, sizeof problem, "step %d: key %d has a wrong value", step, pos);
    }
    int d = moves[step % 12];
    do pos += d;
    while (pos >= 0 && pos < n && ver[pos] < 0);
    if (d > 0) mayfly_iter_next(it);
    else mayfly_iter_prev(it);
    if (pos < 0 || pos >= n) break;
  }
  free(want);
  int status = mayfly_iter_status(it);
  mayfly_iter_destroy(it);
  if (problem[0]) fail_msg("zigzag: %s", problem);
  assert_int_equal(status, MAYFLY_OK);
}

/* ---- 1. separation ---- */

enum { NSEP = 200 };

/* Even keys get 300-byte values (separated), odd keys 50-byte ones (inline). */
static void test_separation(void **state) {
  (void)state;
  struct mayfly_options o = base_opts();
  mayfly_db *db = open_db(&o);
  static int ver[NSEP];
  static size_t len[NSEP];
  uint64_t expect_blob = 0;
  for (int i = 0; i < NSEP; i++) {
    ver[i] = 1;
    len[i] = i % 2 ? 50 : 300;
    /* exactly min_blob_size is separated too */
    if (i == 10) len[i] = 100;
    if (i == 11) len[i] = 99;
    put_val(db, i, 1, len[i], 0);
    if (len[i] >= 100) expect_blob += record_bytes(len[i]);
  }
  /* Before the flush everything is in the memtable: no blob files yet. */
  assert_int_equal(prop_u64(db, "mayfly.total-blob-size"), 0);
  assert_int_equal(num_disk_blobs(), 0);
  check_scans(db, NSEP, ver, len, 0);
  flush(db);
  assert_int_equal(prop_u64(db, "mayfly.total-blob-size"), expect_blob);
  assert_int_equal(num_disk_blobs(), 1);
  expect_blobs_match_disk(db);
  /* The tables hold indexes, not the 100 separated values of 300 bytes each. */
  uint64_t sst = prop_u64(db, "mayfly.total-sst-size");
  if (sst >= 100 * 300 / 2) fail_msg("tables hold %" PRIu64 " bytes: values not separated", sst);
  for (int i = 0; i < NSEP; i++) expect_val(db, NULL, i, 1, len[i], 0);
  check_scans(db, NSEP, ver, len, 0);
  check_zigzag(db, NSEP, ver, len, 0);
  /* Same after the data moved to level 1 and after a reopen. */
  compact_all(db);
  check_scans(db, NSEP, ver, len, 0);
  close_db(db);
  db = open_db(&o);
  for (int i = 0; i < NSEP; i++) expect_val(db, NULL, i, 1, len[i], 0);
  check_scans(db, NSEP, ver, len, 0);
  assert_int_equal(prop_u64(db, "mayfly.total-blob-size"), expect_blob);
  close_db(db);
}

/* A separate blob value cache (blob_cache_size, open-time), small enough to evict: values
 * read through it, repeatedly and after a relocation, stay exact. */
static void test_blob_value_cache(void **state) {
  (void)state;
  struct mayfly_options o = base_opts();
  assert_int_equal(options_set(&o, "blob_cache_size", "16KiB", 0), MAYFLY_OK);
  o.enable_blob_garbage_collection = 1;
  o.blob_garbage_collection_age_cutoff = 1.0;
  mayfly_db *db = open_db(&o);
  enum { N = 120 };
  for (int i = 0; i < N; i++) put_val(db, i, 1, 200 + (size_t)i * 7, i % 2);
  flush(db);
  for (int pass = 0; pass < 3; pass++)
    for (int i = 0; i < N; i++) {
      int k = (i * 37 + pass * 11) % N;
      expect_val(db, NULL, k, 1, 200 + (size_t)k * 7, k % 2);
    }
  /* Relocation gives every value a new file and offset; the cache must not serve the old. */
  for (int i = 0; i < N; i += 2) put_val(db, i, 2, 300, 0);
  flush(db);
  compact_all(db);
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < N; i++) {
      if (i % 2 == 0) expect_val(db, NULL, i, 2, 300, 0);
      else expect_val(db, NULL, i, 1, 200 + (size_t)i * 7, 1);
    }
  close_db(db);
}

/* Reads the compression byte of a blob file's header. */
static int blob_header_compression(uint64_t number) {
  char *path = blob_path(number);
  mf_buf b = MF_BUF_INIT;
  assert_int_equal(env_read_file(g_env, path, &b), MAYFLY_OK);
  assert_true(b.len > BLOB_HEADER_SIZE);
  int c = (unsigned char)b.data[12];
  mf_buf_free(&b);
  free(path);
  return c;
}

static void compression_round_trip(const char *name, int type) {
  struct mayfly_options o = base_opts();
  assert_int_equal(options_set(&o, "blob_compression", name, 0), MAYFLY_OK);
  mayfly_db *db = open_db(&o);
  enum { N = 120 };
  static int ver[N];
  static size_t len[N];
  uint64_t raw = 0;
  /* Compressible values; a few incompressible ones are stored raw in the same file. */
  for (int i = 0; i < N; i++) {
    ver[i] = 3;
    len[i] = 1000 + (size_t)i;
    put_val(db, i, 3, len[i], 1);
    raw += record_bytes(len[i]);
  }
  flush(db);
  uint64_t nums[8];
  assert_int_equal(disk_blobs(nums, 8), 1);
  assert_int_equal(blob_header_compression(nums[0]), type);
  uint64_t total = prop_u64(db, "mayfly.total-blob-size");
  if (total >= raw / 2)
    fail_msg("%s: %" PRIu64 " blob bytes for %" PRIu64 " raw: not compressed", name, total, raw);
  for (int i = 0; i < N; i++) expect_val(db, NULL, i, 3, len[i], 1);
  check_scans(db, N, ver, len, 1);
  close_db(db);
  db = open_db(&o);
  check_scans(db, N, ver, len, 1);
  /* Incompressible values in a compressed file. */
  for (int i = 0; i < N; i++) put_val(db, i, 4, 700, 0);
  flush(db);
  for (int i = 0; i < N; i++) expect_val(db, NULL, i, 4, 700, 0);
  close_db(db);
  g_env->destroy(g_env);
  g_env = NULL;
}

static void test_blob_compression(void **state) {
  (void)state;
  compression_round_trip("lz4", MF_COMPRESSION_LZ4);
  compression_round_trip("zstd", MF_COMPRESSION_ZSTD);
}

/* Relocation (GC with cutoff 1) of a file compressed with from, into a new file of to:
 * every value reads back, and the new file's records are stored the way to says. A record
 * of the same compression is copied as it is, so the stored bytes stay exactly the same; one
 * of another compression is decompressed and stored again. */
static void relocate_between(const char *from, const char *to, int to_type) {
  struct mayfly_options o = base_opts();
  assert_int_equal(options_set(&o, "blob_compression", from, 0), MAYFLY_OK);
  o.enable_blob_garbage_collection = 1;
  o.blob_garbage_collection_age_cutoff = 1.0;
  mayfly_db *db = open_db(&o);
  enum { N = 91 }; /* key N - 1 is incompressible, like its newer version below */
  static int ver[N];
  static size_t len[N];
  for (int i = 0; i < N; i++) {
    ver[i] = 1;
    len[i] = 900 + (size_t)i;
    put_val(db, i, 1, len[i], i % 3 != 0); /* every third value incompressible: stored raw */
  }
  flush(db);
  uint64_t before = prop_u64(db, "mayfly.total-blob-size");
  uint64_t old_num[4];
  assert_int_equal(disk_blobs(old_num, 4), 1);
  set_opt(db, "blob_compression", to);
  /* A newer version of the last key, so that the compaction rewrites everything. */
  put_val(db, N - 1, 2, len[N - 1], 0);
  ver[N - 1] = 2;
  flush(db);
  compact_all(db);
  for (int i = 0; i < N; i++) expect_val(db, NULL, i, ver[i], len[i], i % 3 != 0 && i < N - 1);
  uint64_t nums[4];
  int n = disk_blobs(nums, 4);
  assert_int_equal(n, 1); /* the old file and the second flush's are gone */
  assert_true(nums[0] > old_num[0]);
  assert_int_equal(blob_header_compression(nums[0]), to_type);
  uint64_t after = prop_u64(db, "mayfly.total-blob-size");
  if (strcmp(from, to) == 0 && after != before)
    fail_msg("%s -> %s: %" PRIu64 " blob bytes after relocation, %" PRIu64 " before (a copied "
             "record must keep its stored bytes; the newest version is incompressible like the "
             "one it replaces)", from, to, after, before);
  close_db(db);
  db = open_db(&o);
  for (int i = 0; i < N; i++) expect_val(db, NULL, i, ver[i], len[i], i % 3 != 0 && i < N - 1);
  close_db(db);
  g_env->destroy(g_env);
  g_env = NULL;
}

static void test_relocation_compression(void **state) {
  (void)state;
  relocate_between("none", "none", MF_COMPRESSION_NONE);
  relocate_between("lz4", "lz4", MF_COMPRESSION_LZ4);
  relocate_between("zstd", "zstd", MF_COMPRESSION_ZSTD);
  relocate_between("lz4", "zstd", MF_COMPRESSION_ZSTD);
  relocate_between("zstd", "none", MF_COMPRESSION_NONE);
  relocate_between("none", "lz4", MF_COMPRESSION_LZ4);
}

/* blob_file_starting_level=2: a level-0 flush keeps values inline; the compaction that
 * writes them to a level >= 2 separates them. */
static void test_starting_level(void **state) {
  (void)state;
  struct mayfly_options o = base_opts();
  o.blob_file_starting_level = 2;
  o.level_compaction_dynamic_level_bytes = 1; /* level 0 compacts into the last level */
  mayfly_db *db = open_db(&o);
  enum { N = 100 };
  static int ver[N];
  static size_t len[N];
  uint64_t expect_blob = 0;
  for (int i = 0; i < N; i++) {
    ver[i] = 1;
    len[i] = i % 3 ? 400 : 40;
    put_val(db, i, 1, len[i], 0);
    if (len[i] >= 100) expect_blob += record_bytes(len[i]);
  }
  flush(db);
  assert_int_equal(prop_u64(db, "mayfly.num-files-at-level0"), 1);
  assert_int_equal(prop_u64(db, "mayfly.total-blob-size"), 0);
  assert_int_equal(num_disk_blobs(), 0);
  check_scans(db, N, ver, len, 0);
  compact_all(db);
  assert_int_equal(prop_u64(db, "mayfly.num-files-at-level0"), 0);
  assert_int_equal(prop_u64(db, "mayfly.total-blob-size"), expect_blob);
  assert_int_equal(num_disk_blobs(), 1);
  for (int i = 0; i < N; i++) expect_val(db, NULL, i, 1, len[i], 0);
  check_scans(db, N, ver, len, 0);
  close_db(db);
}

/* enable_blob_files=false at runtime: new flushes keep values inline, existing blobs stay
 * readable, and relocating them (GC with cutoff 1) brings them back inline. */
static void test_disable_separation_at_runtime(void **state) {
  (void)state;
  struct mayfly_options o = base_opts();
  mayfly_db *db = open_db(&o);
  enum { N = 100 };
  static int ver[2 * N];
  static size_t len[2 * N];
  for (int i = 0; i < N; i++) {
    ver[i] = 1;
    len[i] = 500;
    put_val(db, i, 1, 500, 0);
  }
  flush(db);
  uint64_t total = prop_u64(db, "mayfly.total-blob-size");
  assert_int_equal(total, N * record_bytes(500));
  assert_int_equal(num_disk_blobs(), 1);
  set_opt(db, "enable_blob_files", "false");
  for (int i = N; i < 2 * N; i++) {
    ver[i] = 2;
    len[i] = 600;
    put_val(db, i, 2, 600, 0);
  }
  flush(db);
  assert_int_equal(prop_u64(db, "mayfly.total-blob-size"), total);
  assert_int_equal(num_disk_blobs(), 1);
  check_scans(db, 2 * N, ver, len, 0);
  /* Moving the data to level 1 without GC keeps the old blob references as they are. */
  compact_all(db);
  assert_int_equal(prop_u64(db, "mayfly.total-blob-size"), total);
  check_scans(db, 2 * N, ver, len, 0);
  /* Relocation with separation off: the values come back into the tables. A newer version
   * of one key in level 0 makes the next compaction rewrite level 1. */
  set_opt(db, "enable_blob_garbage_collection", "true");
  set_opt(db, "blob_garbage_collection_age_cutoff", "1.0");
  put_val(db, 2 * N - 1, 3, 600, 0);
  ver[2 * N - 1] = 3;
  flush(db);
  compact_all(db);
  assert_int_equal(prop_u64(db, "mayfly.total-blob-size"), 0);
  assert_int_equal(num_disk_blobs(), 0);
  for (int i = 0; i < 2 * N; i++) expect_val(db, NULL, i, ver[i], len[i], 0);
  check_scans(db, 2 * N, ver, len, 0);
  char *stats = prop(db, "mayfly.blob-stats");
  int has = strstr(stats, "Relocated blobs: 100 ") != NULL;
  if (!has) fail_msg("expected 100 relocated blobs:\n%s", stats);
  mayfly_free(stats);
  close_db(db);
}

/* ---- 2. lazy reads ---- */

/* The blob file is removed behind the engine's back: a scan of keys still works, and only
 * asking for a value fails, with MAYFLY_ECORRUPT naming the file. */
static void test_key_scan_does_not_read_blobs(void **state) {
  (void)state;
  struct mayfly_options o = base_opts();
  mayfly_db *db = open_db(&o);
  enum { N = 150 };
  for (int i = 0; i < N; i++) put_val(db, i, 1, i % 2 ? 20 : 250, 0);
  flush(db);
  uint64_t nums[4];
  assert_int_equal(disk_blobs(nums, 4), 1);
  char *path = blob_path(nums[0]);
  assert_int_equal(g_env->remove_file(g_env, path), MAYFLY_OK);
  char fname[32];
  snprintf(fname, sizeof fname, "%06" PRIu64 ".blob", nums[0]);

  mayfly_iter *it = NULL;
  ok(db, mayfly_iter_create(db, NULL, &it), "iter_create");
  int forward = 0, backward = 0;
  for (mayfly_iter_seek_to_first(it); mayfly_iter_valid(it); mayfly_iter_next(it)) forward++;
  int st1 = mayfly_iter_status(it);
  for (mayfly_iter_seek_to_last(it); mayfly_iter_valid(it); mayfly_iter_prev(it)) backward++;
  int st2 = mayfly_iter_status(it);
  /* An inline value reads fine; a separated one does not. */
  mayfly_iter_seek(it, "key00000001", KLEN);
  size_t vlen = 99;
  const void *inline_v = mayfly_iter_valid(it) ? mayfly_iter_value(it, &vlen) : NULL;
  size_t inline_len = vlen;
  mayfly_iter_seek(it, "key00000002", KLEN);
  int valid_before = mayfly_iter_valid(it);
  const void *blob_v = mayfly_iter_value(it, &vlen);
  int st3 = mayfly_iter_status(it);
  char msg[512];
  snprintf(msg, sizeof msg, "%s", mayfly_errmsg(db));
  mayfly_iter_destroy(it);

  assert_int_equal(forward, N);
  assert_int_equal(backward, N);
  assert_int_equal(st1, MAYFLY_OK);
  assert_int_equal(st2, MAYFLY_OK);
  assert_non_null(inline_v);
  assert_int_equal(inline_len, 20);
  assert_true(valid_before);
  assert_null(blob_v);
  assert_int_equal(vlen, 0);
  assert_int_equal(st3, MAYFLY_ECORRUPT);
  if (!strstr(msg, fname)) fail_msg("iterator error does not name %s: %s", fname, msg);

  /* A point read of a separated value fails the same way; inline values are fine. */
  void *v = NULL;
  int rc = mayfly_get(db, NULL, "key00000004", KLEN, &v, &vlen);
  assert_int_equal(rc, MAYFLY_ECORRUPT);
  assert_null(v);
  if (!strstr(mayfly_errmsg(db), fname))
    fail_msg("get error does not name %s: %s", fname, mayfly_errmsg(db));
  expect_val(db, NULL, 5, 1, 20, 0);
  free(path);
  close_db(db);
}

/* ---- 3. accounting ---- */

static uint64_t live_exact(mayfly_db *db) { return prop_u64(db, "mayfly.live-data-size-exact"); }

static void test_garbage_accounting(void **state) {
  (void)state;
  struct mayfly_options o = base_opts();
  mayfly_db *db = open_db(&o);
  enum { N = 100, V = 400, V2 = 250 };
  for (int i = 0; i < N; i++) put_val(db, i, 1, V, 0);
  flush(db);
  compact_all(db); /* into level 1 */
  blob_line l[8];
  assert_int_equal(blob_lines(db, l, 8), 1);
  uint64_t f1 = l[0].number;
  assert_int_equal(l[0].count, N);
  assert_int_equal(l[0].bytes, N * record_bytes(V));
  assert_int_equal(prop_u64(db, "mayfly.blob-garbage-size"), 0);
  assert_int_equal(live_exact(db), N * (KLEN + V));

  /* Keys 0..29 get small inline values, 30..49 new blob values: 50 references of f1 go. */
  for (int i = 0; i < 30; i++) put_val(db, i, 2, 30, 0);
  for (int i = 30; i < 50; i++) put_val(db, i, 2, V2, 0);
  flush(db);
  /* Nothing is garbage until a compaction drops the old references. */
  assert_int_equal(prop_u64(db, "mayfly.blob-garbage-size"), 0);
  compact_all(db);
  assert_int_equal(prop_u64(db, "mayfly.blob-garbage-size"), 50 * record_bytes(V));
  int n = blob_lines(db, l, 8);
  assert_int_equal(n, 2);
  assert_int_equal(l[0].number, f1);
  assert_int_equal(l[0].garbage_count, 50);
  assert_int_equal(l[0].garbage_bytes, 50 * record_bytes(V));
  assert_int_equal(l[1].count, 20);
  assert_int_equal(l[1].garbage_count, 0);
  assert_int_equal(prop_u64(db, "mayfly.total-blob-size"),
                   N * record_bytes(V) + 20 * record_bytes(V2));
  assert_int_equal(live_exact(db), 30 * (KLEN + 30) + 20 * (KLEN + V2) + 50 * (KLEN + V));
  expect_blobs_match_disk(db);

  /* Delete keys 40..99: 10 more references of f2 and all 50 left of f1 go. */
  for (int i = 40; i < N; i++) del_key(db, i, 0);
  flush(db);
  compact_all(db);
  n = blob_lines(db, l, 8);
  /* f1 is all garbage and no table links it: gone from the version and from the disk. */
  assert_int_equal(n, 1);
  assert_true(l[0].number != f1);
  assert_int_equal(l[0].garbage_count, 10);
  assert_int_equal(l[0].garbage_bytes, 10 * record_bytes(V2));
  assert_int_equal(prop_u64(db, "mayfly.blob-garbage-size"), 10 * record_bytes(V2));
  assert_int_equal(prop_u64(db, "mayfly.total-blob-size"), 20 * record_bytes(V2));
  expect_blobs_match_disk(db);
  assert_int_equal(live_exact(db), 30 * (KLEN + 30) + 10 * (KLEN + V2));
  for (int i = 0; i < 30; i++) expect_val(db, NULL, i, 2, 30, 0);
  for (int i = 30; i < 40; i++) expect_val(db, NULL, i, 2, V2, 0);
  for (int i = 40; i < N; i++) expect_absent(db, i);

  /* Everything deleted: no blob file is left anywhere. */
  for (int i = 0; i < 40; i++) del_key(db, i, 0);
  flush(db);
  compact_all(db);
  assert_int_equal(blob_lines(db, l, 8), 0);
  assert_int_equal(num_disk_blobs(), 0);
  assert_int_equal(prop_u64(db, "mayfly.total-blob-size"), 0);
  assert_int_equal(prop_u64(db, "mayfly.blob-garbage-size"), 0);
  assert_int_equal(live_exact(db), 0);
  close_db(db);
}

/* live-data-size-exact counts compressed blobs by their value size, not their stored size. */
static void test_live_data_exact_compressed(void **state) {
  (void)state;
  struct mayfly_options o = base_opts();
  o.blob_compression = MF_COMPRESSION_ZSTD;
  mayfly_db *db = open_db(&o);
  uint64_t sum = 0;
  for (int i = 0; i < 80; i++) {
    size_t len = i % 4 ? 900 : 10;
    put_val(db, i, 1, len, 1);
    sum += KLEN + len;
  }
  assert_int_equal(live_exact(db), sum); /* from the memtable */
  flush(db);
  assert_true(prop_u64(db, "mayfly.total-blob-size") < 60 * record_bytes(900) / 2);
  assert_int_equal(live_exact(db), sum);
  close_db(db);
}

/* Overwrites make space amplification grow; a full GC (cutoff 1) brings it back near 1. */
static void test_space_amplification_after_full_gc(void **state) {
  (void)state;
  struct mayfly_options o = base_opts();
  o.enable_blob_garbage_collection = 1;
  o.blob_garbage_collection_age_cutoff = 1.0;
  mayfly_db *db = open_db(&o);
  enum { N = 300, V = 1000 };
  for (int ver = 1; ver <= 4; ver++) {
    for (int i = 0; i < N; i++) put_val(db, i, ver, V, 0);
    flush(db);
  }
  assert_int_equal(num_disk_blobs(), 4);
  double before = prop_double(db, "mayfly.space-amplification");
  if (before < 3.5) fail_msg("space amplification %.3f before GC; expected about 4", before);
  compact_all(db);
  double after = prop_double(db, "mayfly.space-amplification");
  if (after < 1.0 || after > 1.15)
    fail_msg("space amplification %.3f after full GC; expected close to 1", after);
  assert_int_equal(num_disk_blobs(), 1);
  assert_int_equal(prop_u64(db, "mayfly.blob-garbage-size"), 0);
  assert_int_equal(live_exact(db), N * (KLEN + V));
  for (int i = 0; i < N; i++) expect_val(db, NULL, i, 4, V, 0);
  close_db(db);
}

/* ---- 6. runtime options ---- */

static void expect_set_fails(mayfly_db *db, const char *name, const char *value, int want) {
  int rc = mayfly_set_option(db, name, value);
  if (rc != want)
    fail_msg("set_option %s=%s: %s, expected %s", name, value, mayfly_strerror(rc),
             mayfly_strerror(want));
}

static void test_runtime_blob_options(void **state) {
  (void)state;
  struct mayfly_options o = base_opts();
  mayfly_db *db = open_db(&o);
  /* Bad values are refused and change nothing. */
  expect_set_fails(db, "enable_blob_files", "maybe", MAYFLY_EINVAL);
  expect_set_fails(db, "min_blob_size", "lots", MAYFLY_EINVAL);
  expect_set_fails(db, "min_blob_size", "-1", MAYFLY_EINVAL);
  expect_set_fails(db, "blob_file_size", "1KiB", MAYFLY_EINVAL);
  expect_set_fails(db, "blob_compression", "snappy", MAYFLY_EINVAL);
  expect_set_fails(db, "blob_file_starting_level", "7", MAYFLY_EINVAL);
  expect_set_fails(db, "blob_file_starting_level", "-1", MAYFLY_EINVAL);
  expect_set_fails(db, "enable_blob_garbage_collection", "2", MAYFLY_EINVAL);
  expect_set_fails(db, "blob_garbage_collection_age_cutoff", "1.5", MAYFLY_EINVAL);
  expect_set_fails(db, "blob_garbage_collection_age_cutoff", "x", MAYFLY_EINVAL);
  expect_set_fails(db, "blob_garbage_collection_force_threshold", "-0.1", MAYFLY_EINVAL);
  expect_set_fails(db, "blob_gc_policy", "lru", MAYFLY_EINVAL);
  expect_set_fails(db, "blob_cache_size", "1MiB", MAYFLY_ENOTSUP);

  /* min_blob_size: 100 -> 1000 keeps 500-byte values inline. */
  set_opt(db, "min_blob_size", "1000");
  for (int i = 0; i < 50; i++) put_val(db, i, 1, 500, 0);
  flush(db);
  assert_int_equal(prop_u64(db, "mayfly.total-blob-size"), 0);
  set_opt(db, "min_blob_size", "100");
  for (int i = 50; i < 100; i++) put_val(db, i, 1, 500, 0);
  flush(db);
  assert_int_equal(prop_u64(db, "mayfly.total-blob-size"), 50 * record_bytes(500));
  assert_int_equal(num_disk_blobs(), 1);

  /* blob_file_size: 64 KiB files; 400 KiB of blobs need at least 6 of them. */
  set_opt(db, "blob_file_size", "64KiB");
  for (int i = 100; i < 500; i++) put_val(db, i, 1, 1000, 0);
  flush(db);
  int files = num_disk_blobs();
  if (files < 1 + 6 || files > 1 + 8) fail_msg("%d blob files after 400 KiB at 64 KiB each", files);
  set_opt(db, "blob_file_size", "256MiB");

  /* blob_compression: the next file is zstd, then lz4, then none. */
  const char *names[] = {"zstd", "lz4", "none"};
  const int types[] = {MF_COMPRESSION_ZSTD, MF_COMPRESSION_LZ4, MF_COMPRESSION_NONE};
  for (int t = 0; t < 3; t++) {
    uint64_t before[64], after[64];
    int nb = disk_blobs(before, 64);
    set_opt(db, "blob_compression", names[t]);
    for (int i = 500; i < 520; i++) put_val(db, i, 10 + t, 800, 1);
    flush(db);
    int na = disk_blobs(after, 64);
    assert_int_equal(na, nb + 1);
    assert_int_equal(blob_header_compression(after[na - 1]), types[t]);
  }

  /* blob_file_starting_level: 3 keeps a flush inline; back to 0 separates again. */
  set_opt(db, "blob_file_starting_level", "3");
  uint64_t total = prop_u64(db, "mayfly.total-blob-size");
  for (int i = 600; i < 620; i++) put_val(db, i, 1, 300, 0);
  flush(db);
  assert_int_equal(prop_u64(db, "mayfly.total-blob-size"), total);
  set_opt(db, "blob_file_starting_level", "0");
  for (int i = 620; i < 640; i++) put_val(db, i, 1, 300, 0);
  flush(db);
  assert_int_equal(prop_u64(db, "mayfly.total-blob-size"), total + 20 * record_bytes(300));

  /* enable_blob_files: off keeps a flush inline. */
  set_opt(db, "enable_blob_files", "false");
  total = prop_u64(db, "mayfly.total-blob-size");
  for (int i = 640; i < 660; i++) put_val(db, i, 1, 300, 0);
  flush(db);
  assert_int_equal(prop_u64(db, "mayfly.total-blob-size"), total);
  set_opt(db, "enable_blob_files", "true");

  /* The GC options show in mayfly.blob-stats. */
  set_opt(db, "enable_blob_garbage_collection", "true");
  set_opt(db, "blob_garbage_collection_age_cutoff", "0.5");
  set_opt(db, "blob_garbage_collection_force_threshold", "0.75");
  set_opt(db, "blob_gc_policy", "age");
  char *s = prop(db, "mayfly.blob-stats");
  int shown = strstr(s, "GC policy: age, age cutoff 0.50, force threshold 0.75, GC on") != NULL;
  if (!shown) fail_msg("GC options not in effect:\n%s", s);
  mayfly_free(s);
  set_opt(db, "enable_blob_garbage_collection", "false");
  s = prop(db, "mayfly.blob-stats");
  shown = strstr(s, "GC off") != NULL;
  if (!shown) fail_msg("enable_blob_garbage_collection=false not in effect:\n%s", s);
  mayfly_free(s);

  /* Everything written above still reads back. */
  for (int i = 0; i < 100; i++) expect_val(db, NULL, i, 1, 500, 0);
  for (int i = 100; i < 500; i += 37) expect_val(db, NULL, i, 1, 1000, 0);
  for (int i = 500; i < 520; i++) expect_val(db, NULL, i, 12, 800, 1);
  for (int i = 600; i < 660; i++) expect_val(db, NULL, i, 1, 300, 0);
  close_db(db);
}

/* ---- 7. reopen after GC ---- */

/* The file part of mayfly.blob-stats: the summary lines and the per-file lines (counters
 * such as "Blob bytes written" are per open and excluded). */
static char *blob_state(mayfly_db *db) {
  char *s = prop(db, "mayfly.blob-stats");
  char *out = calloc(1, strlen(s) + 1);
  assert_non_null(out);
  for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
    if (strncmp(line, "Blob files:", 11) == 0 || strncmp(line, "Total bytes:", 12) == 0 ||
        strncmp(line, "Live bytes:", 11) == 0 || strncmp(line, "Garbage bytes:", 14) == 0 ||
        strncmp(line, "  #", 3) == 0) {
      strcat(out, line);
      strcat(out, "\n");
    }
  }
  mayfly_free(s);
  return out;
}

static void test_reopen_after_gc(void **state) {
  (void)state;
  struct mayfly_options o = base_opts();
  o.enable_blob_garbage_collection = 1;
  o.blob_garbage_collection_age_cutoff = 0.5;
  mayfly_db *db = open_db(&o);
  enum { N = 200 };
  static int ver[N];
  static size_t len[N];
  /* Four blob files; overwrites and deletes leave garbage in several of them. */
  for (int round = 1; round <= 4; round++) {
    for (int i = 0; i < N; i++) {
      if ((i + round) % 3 == 0 && round > 1) continue;
      ver[i] = round;
      len[i] = 150 + (size_t)(i % 7) * 30;
      put_val(db, i, round, len[i], 0);
    }
    if (round == 3)
      for (int i = 0; i < N; i += 11) {
        del_key(db, i, 0);
        ver[i] = -1;
      }
    flush(db);
    if (round % 2 == 0) compact_all(db);
  }
  ok(db, mayfly_wait_idle(db), "wait_idle");
  char *before = blob_state(db);
  uint64_t garbage = prop_u64(db, "mayfly.blob-garbage-size");
  uint64_t live = live_exact(db);
  if (garbage == 0) fail_msg("the setup left no garbage to persist:\n%s", before);
  check_scans(db, N, ver, len, 0);
  close_db(db);
  db = open_db(&o);
  char *after = blob_state(db);
  if (strcmp(before, after) != 0)
    fail_msg("blob stats changed across a reopen:\nbefore:\n%safter:\n%s", before, after);
  assert_int_equal(prop_u64(db, "mayfly.blob-garbage-size"), garbage);
  assert_int_equal(live_exact(db), live);
  check_scans(db, N, ver, len, 0);
  expect_blobs_match_disk(db);
  free(before);
  free(after);
  close_db(db);
}

/* ---- 9. corruption ---- */

/* Rewrites file path with the byte at offset flipped. */
static void flip_byte(const char *path, uint64_t offset) {
  mf_buf b = MF_BUF_INIT;
  assert_int_equal(env_read_file(g_env, path, &b), MAYFLY_OK);
  assert_true(offset < b.len);
  b.data[offset] ^= 0x20;
  mf_wfile *f = NULL;
  assert_int_equal(g_env->new_writable(g_env, path, &f), MAYFLY_OK);
  assert_int_equal(g_env->append(f, b.data, b.len), MAYFLY_OK);
  assert_int_equal(g_env->sync(f, 1), MAYFLY_OK);
  assert_int_equal(g_env->close_writable(f), MAYFLY_OK);
  mf_buf_free(&b);
}

static void test_corrupt_blob_record(void **state) {
  (void)state;
  struct mayfly_options o = base_opts();
  mayfly_db *db = open_db(&o);
  enum { N = 20, V = 300 };
  for (int i = 0; i < N; i++) put_val(db, i, 1, V, 0);
  flush(db);
  uint64_t nums[4];
  assert_int_equal(disk_blobs(nums, 4), 1);
  close_db(db);
  /* Records are in key order, uncompressed: key 5's value byte 100, and key 12's header. */
  char *path = blob_path(nums[0]);
  flip_byte(path, BLOB_HEADER_SIZE + 5 * record_bytes(V) + BLOB_RECORD_HEADER_SIZE + KLEN + 100);
  flip_byte(path, BLOB_HEADER_SIZE + 12 * record_bytes(V) + 4);
  free(path);
  char fname[32];
  snprintf(fname, sizeof fname, "%06" PRIu64 ".blob", nums[0]);
  db = open_db(&o);
  for (int i = 0; i < N; i++) {
    if (i == 5 || i == 12) {
      char k[32];
      key_of(i, k);
      void *v = NULL;
      size_t vlen;
      int rc = mayfly_get(db, NULL, k, KLEN, &v, &vlen);
      if (rc != MAYFLY_ECORRUPT) fail_msg("key %d: %s, expected MAYFLY_ECORRUPT", i, mayfly_strerror(rc));
      assert_null(v);
      if (!strstr(mayfly_errmsg(db), fname))
        fail_msg("key %d: error does not name %s: %s", i, fname, mayfly_errmsg(db));
    } else {
      expect_val(db, NULL, i, 1, V, 0);
    }
  }
  /* The iterator: only key 5's value fails. */
  mayfly_iter *it = NULL;
  ok(db, mayfly_iter_create(db, NULL, &it), "iter_create");
  int good = 0, bad_at = -1, status = MAYFLY_OK;
  for (mayfly_iter_seek_to_first(it); mayfly_iter_valid(it); mayfly_iter_next(it)) {
    size_t vlen;
    if (!mayfly_iter_value(it, &vlen)) {
      status = mayfly_iter_status(it);
      bad_at = good;
      break;
    }
    good++;
  }
  mayfly_iter_destroy(it);
  assert_int_equal(bad_at, 5);
  assert_int_equal(status, MAYFLY_ECORRUPT);
  if (g_env->map_readable) assert_true(test_map_env_maps_made(g_env) > 0); /* /mapped ran so */
  close_db(db);
}

/* Relocation checks what it copies: a damaged record fails the compaction (the database
 * turns read-only with an error naming the file) instead of being copied into a new file,
 * and every other value stays readable after reopening. */
static void test_relocation_of_damaged_record(void **state) {
  (void)state;
  struct mayfly_options o = base_opts();
  mayfly_db *db = open_db(&o);
  enum { N = 20, V = 300 };
  for (int i = 0; i < N; i++) put_val(db, i, 1, V, 0);
  flush(db);
  uint64_t nums[4];
  assert_int_equal(disk_blobs(nums, 4), 1);
  close_db(db);
  char *path = blob_path(nums[0]);
  flip_byte(path, BLOB_HEADER_SIZE + 5 * record_bytes(V) + BLOB_RECORD_HEADER_SIZE + KLEN + 100);
  free(path);
  char fname[32];
  snprintf(fname, sizeof fname, "%06" PRIu64 ".blob", nums[0]);
  o.enable_blob_garbage_collection = 1;
  o.blob_garbage_collection_age_cutoff = 1.0;
  db = open_db(&o);
  put_val(db, N - 1, 2, V, 0);
  flush(db);
  int rc = mayfly_compact_range(db, NULL, 0, NULL, 0);
  if (rc == MAYFLY_OK) rc = mayfly_wait_idle(db);
  if (rc == MAYFLY_OK) fail_msg("relocating a damaged record succeeded");
  if (!strstr(mayfly_errmsg(db), fname) || !strstr(mayfly_errmsg(db), "checksum"))
    fail_msg("error does not name %s and the checksum: %s", fname, mayfly_errmsg(db));
  mayfly_close(db);
  g_db = NULL;
  o.enable_blob_garbage_collection = 0;
  db = open_db(&o);
  for (int i = 0; i < N; i++) {
    if (i == 5) {
      char k[32];
      key_of(i, k);
      void *v = NULL;
      size_t vlen;
      assert_int_equal(mayfly_get(db, NULL, k, KLEN, &v, &vlen), MAYFLY_ECORRUPT);
    } else {
      expect_val(db, NULL, i, i == N - 1 ? 2 : 1, V, 0);
    }
  }
  close_db(db);
}

/* A blob file cut short on disk (damage the MANIFEST does not know of): every get gives the
 * right value or MAYFLY_ECORRUPT naming the file (the reader refuses a file whose footer is
 * gone, so here all of them fail), and the lost records always fail; never wrong data and
 * never a crash (a mapped reader must not touch memory past the end). */
static void test_truncated_blob_file(void **state) {
  (void)state;
  struct mayfly_options o = base_opts();
  mayfly_db *db = open_db(&o);
  enum { N = 40, V = 300 };
  for (int i = 0; i < N; i++) put_val(db, i, 1, V, 0);
  flush(db);
  uint64_t nums[4];
  assert_int_equal(disk_blobs(nums, 4), 1);
  close_db(db);
  char *path = blob_path(nums[0]);
  mf_buf b = MF_BUF_INIT;
  assert_int_equal(env_read_file(g_env, path, &b), MAYFLY_OK);
  size_t keep = BLOB_HEADER_SIZE + 20 * record_bytes(V); /* records of keys 0..19 */
  mf_wfile *f = NULL;
  assert_int_equal(g_env->new_writable(g_env, path, &f), MAYFLY_OK);
  assert_int_equal(g_env->append(f, b.data, keep), MAYFLY_OK);
  assert_int_equal(g_env->sync(f, 1), MAYFLY_OK);
  assert_int_equal(g_env->close_writable(f), MAYFLY_OK);
  mf_buf_free(&b);
  free(path);
  char fname[32];
  snprintf(fname, sizeof fname, "%06" PRIu64 ".blob", nums[0]);
  db = open_db(&o);
  for (int i = 0; i < N; i++) {
    char k[32];
    key_of(i, k);
    void *v = NULL;
    size_t vlen;
    int rc = mayfly_get(db, NULL, k, KLEN, &v, &vlen);
    if (rc == MAYFLY_OK) {
      mayfly_free(v);
      expect_val(db, NULL, i, 1, V, 0); /* a value that reads must be the right one */
    } else if (rc != MAYFLY_ECORRUPT || !strstr(mayfly_errmsg(db), fname)) {
      fail_msg("key %d: %s (%s), expected the value or MAYFLY_ECORRUPT naming %s", i,
               mayfly_strerror(rc), mayfly_errmsg(db), fname);
    }
    if (i >= 20 && rc != MAYFLY_ECORRUPT) fail_msg("key %d: its record is gone, yet %s", i,
                                                   mayfly_strerror(rc));
  }
  close_db(db);
}

/* The same tests on an env that maps files (the blob reader then checks records in place). */
static int setup_mapped(void **state) {
  (void)state;
  g_env = test_map_env_create(0);
  return 0;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_separation, teardown),
      cmocka_unit_test_teardown(test_blob_compression, teardown),
      cmocka_unit_test_teardown(test_relocation_compression, teardown),
      cmocka_unit_test_teardown(test_blob_value_cache, teardown),
      cmocka_unit_test_teardown(test_starting_level, teardown),
      cmocka_unit_test_teardown(test_disable_separation_at_runtime, teardown),
      cmocka_unit_test_teardown(test_key_scan_does_not_read_blobs, teardown),
      cmocka_unit_test_teardown(test_live_data_exact_compressed, teardown),
      cmocka_unit_test_teardown(test_space_amplification_after_full_gc, teardown),
      cmocka_unit_test_teardown(test_runtime_blob_options, teardown),
      cmocka_unit_test_teardown(test_reopen_after_gc, teardown),
      cmocka_unit_test_teardown(test_corrupt_blob_record, teardown),
      cmocka_unit_test_teardown(test_relocation_of_damaged_record, teardown),
      {"test_relocation_of_damaged_record/mapped", test_relocation_of_damaged_record,
       setup_mapped, teardown, NULL},
      {"test_corrupt_blob_record/mapped", test_corrupt_blob_record, setup_mapped, teardown,
       NULL},
      cmocka_unit_test_teardown(test_truncated_blob_file, teardown),
      {"test_truncated_blob_file/mapped", test_truncated_blob_file, setup_mapped, teardown,
       NULL},
      /* last: it empties the database, which once tripped UBSan in obsolete-file deletion */
      cmocka_unit_test_teardown(test_garbage_accounting, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
