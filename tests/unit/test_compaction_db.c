/* Leveled compaction seen through the public API.
 *
 * Everything runs on the in-memory env (wrapped by a fault-injecting env where a test needs
 * failures). Values carry a version number and a hash of their key followed by a fill derived
 * from both, so a value from another key, an older version or a damaged copy is told apart
 * from the expected one.
 *
 * Covered:
 *  - seek compaction: a file that keeps being read without holding the key gets compacted;
 *  - drop rules: deleted keys never come back whatever the order of partial compactions
 *    (LevelDB issue 178), snapshots keep their view through compactions, and once released
 *    the old versions are dropped (KeyDrop, total-sst-size);
 *  - manual compaction of a large range in bounded steps, and mayfly_compact_range returning
 *    only once its last step is installed;
 *  - the layout invariant read back from the MANIFEST: no user key spans two tables of a
 *    level >= 1 (with snapshots holding several versions of many keys);
 *  - trivial moves of non-overlapping flushes;
 *  - a randomized run with small files and levels under concurrent readers that check that
 *    batches are seen whole and never older than what was acknowledged, then against a model
 *    (static and dynamic level sizes; MAYFLY_TEST_SEED replays a seed);
 *  - background write errors (flush and compaction): writes refused with MAYFLY_ECLOSED,
 *    acknowledged data readable, nothing deleted, everything back after reopen;
 *  - write stalls counted in mayfly.stats. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/options.h"
#include "env/env.h"
#include "mayfly.h"
#include "util/error.h"
#include "util/ikey.h"
#include "util/slice.h"
#include "version/version_set.h"

#define DBNAME "/db"

/* ---- values ---- */

static uint32_t hash32(const void *data, size_t n) {
  const unsigned char *p = data;
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}

static void put32(char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (char)(v >> (8 * i));
}

static uint32_t get32(const char *p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v |= (uint32_t)(unsigned char)p[i] << (8 * i);
  return v;
}

static char fill_byte(uint32_t h, uint32_t ver, size_t pos) {
  return (char)('a' + (h * 31u + ver * 7u + (uint32_t)pos) % 26u);
}

/* A value of len >= 8 bytes for key at version ver. */
static void value_make(char *buf, size_t len, const void *key, size_t klen, uint32_t ver) {
  uint32_t h = hash32(key, klen);
  put32(buf, ver);
  put32(buf + 4, h);
  for (size_t i = 8; i < len; i++) buf[i] = fill_byte(h, ver, i);
}

/* 1 and *ver when v is an intact value of key, else 0. */
static int value_check(const void *v, size_t len, const void *key, size_t klen, uint32_t *ver) {
  const char *p = v;
  if (len < 8) return 0;
  uint32_t h = hash32(key, klen);
  if (get32(p + 4) != h) return 0;
  *ver = get32(p);
  for (size_t i = 8; i < len; i++)
    if (p[i] != fill_byte(h, *ver, i)) return 0;
  return 1;
}

/* ---- indexed keys: "key%08d", version -1 = absent ---- */

static size_t key_of(int i, char *buf) { return (size_t)snprintf(buf, 32, "key%08d", i); }

static void put_i(mayfly_db *db, int i, int ver, size_t vlen) {
  char k[32], v[4096];
  size_t klen = key_of(i, k);
  assert_true(vlen <= sizeof v);
  value_make(v, vlen, k, klen, (uint32_t)ver);
  int rc = mayfly_put(db, k, klen, v, vlen, 0);
  if (rc != MAYFLY_OK) fail_msg("put key %d: %s (%s)", i, mayfly_strerror(rc), mayfly_errmsg(db));
}

static void del_i(mayfly_db *db, int i) {
  char k[32];
  size_t klen = key_of(i, k);
  int rc = mayfly_delete(db, k, klen, 0);
  if (rc != MAYFLY_OK) fail_msg("delete key %d: %s (%s)", i, mayfly_strerror(rc), mayfly_errmsg(db));
}

static int get_i(mayfly_db *db, const mayfly_snapshot *snap, int i) {
  char k[32];
  size_t klen = key_of(i, k);
  void *v = NULL;
  size_t vlen = 0;
  int rc = mayfly_get(db, snap, k, klen, &v, &vlen);
  if (rc == MAYFLY_ENOTFOUND) return -1;
  if (rc != MAYFLY_OK) fail_msg("get key %d: %s (%s)", i, mayfly_strerror(rc), mayfly_errmsg(db));
  uint32_t ver;
  if (!value_check(v, vlen, k, klen, &ver)) fail_msg("get key %d: damaged value", i);
  mayfly_free(v);
  return (int)ver;
}

/* Checks an open iterator's full forward scan against expect[0..n). */
static void check_scan(mayfly_db *db, mayfly_iter *it, const int *expect, int n, const char *what) {
  int last = -1, seen = 0, present = 0;
  for (int i = 0; i < n; i++) present += expect[i] >= 0;
  for (mayfly_iter_seek_to_first(it); mayfly_iter_valid(it); mayfly_iter_next(it)) {
    size_t klen, vlen;
    const char *k = mayfly_iter_key(it, &klen);
    const void *v = mayfly_iter_value(it, &vlen);
    char kb[32];
    int i = -1;
    assert_true(klen < sizeof kb);
    memcpy(kb, k, klen);
    kb[klen] = '\0';
    if (sscanf(kb, "key%08d", &i) != 1 || i < 0 || i >= n) fail_msg("%s: stray key '%s'", what, kb);
    if (i <= last) fail_msg("%s: key %d after key %d", what, i, last);
    last = i;
    uint32_t ver = 0;
    if (!v || !value_check(v, vlen, k, klen, &ver)) fail_msg("%s: key %d damaged", what, i);
    if ((int)ver != expect[i])
      fail_msg("%s: key %d has version %d, expected %d", what, i, (int)ver, expect[i]);
    seen++;
  }
  if (mayfly_iter_status(it) != MAYFLY_OK)
    fail_msg("%s: iterator status %s (%s)", what, mayfly_strerror(mayfly_iter_status(it)),
             mayfly_errmsg(db));
  if (seen != present) fail_msg("%s: scan saw %d keys, expected %d", what, seen, present);
}

/* Gets every key and scans once, at snap (NULL: latest). */
static void check_all(mayfly_db *db, const mayfly_snapshot *snap, const int *expect, int n,
                      const char *what) {
  for (int i = 0; i < n; i++) {
    int got = get_i(db, snap, i);
    if (got != expect[i]) fail_msg("%s: get key %d: version %d, expected %d", what, i, got, expect[i]);
  }
  mayfly_iter *it = NULL;
  assert_int_equal(mayfly_iter_create(db, snap, &it), MAYFLY_OK);
  check_scan(db, it, expect, n, what);
  mayfly_iter_destroy(it);
}

/* ---- opening, properties, stats ---- */

static struct mayfly_options small_opts(mf_env *env) {
  struct mayfly_options o;
  options_init_defaults(&o);
  options_set_env(&o, env);
  assert_int_equal(options_set(&o, "write_buffer_size", "64KiB", 0), MAYFLY_OK);
  assert_int_equal(options_set(&o, "target_file_size_base", "64KiB", 0), MAYFLY_OK);
  assert_int_equal(options_set(&o, "max_bytes_for_level_base", "1MiB", 0), MAYFLY_OK);
  assert_int_equal(options_set(&o, "block_cache_size", "1MiB", 0), MAYFLY_OK);
  return o;
}

static void set_opt(struct mayfly_options *o, const char *name, const char *value) {
  int rc = options_set(o, name, value, 0);
  if (rc != MAYFLY_OK) fail_msg("option %s=%s: %s", name, value, mayfly_strerror(rc));
}

/* The database a test has open, closed by teardown when the test fails half way, so that
 * background threads never outlive the env. At most one is open at a time. */
static mayfly_db *g_open_db;
static mayfly_iter *g_open_iter; /* an iterator held across calls that may fail */

static mayfly_db *open_db(const struct mayfly_options *o) {
  mayfly_db *db = NULL;
  int rc = mayfly_open(DBNAME, o, &db);
  if (rc != MAYFLY_OK) fail_msg("open: %s (%s)", mayfly_strerror(rc), mayfly_errmsg(NULL));
  g_open_db = db;
  return db;
}

/* Closes without judging the result (a db after a background error may report it again). */
static int close_db_any(mayfly_db *db) {
  g_open_db = NULL;
  return mayfly_close(db);
}

static void close_db(mayfly_db *db) {
  int rc = close_db_any(db);
  if (rc != MAYFLY_OK) fail_msg("close: %s", mayfly_strerror(rc));
}

static void ok(mayfly_db *db, int rc, const char *what) {
  if (rc != MAYFLY_OK) fail_msg("%s: %s (%s)", what, mayfly_strerror(rc), mayfly_errmsg(db));
}

static uint64_t prop_u64(mayfly_db *db, const char *name) {
  char *v = NULL;
  ok(db, mayfly_property(db, name, &v), name);
  uint64_t n = strtoull(v, NULL, 10);
  mayfly_free(v);
  return n;
}

static int files_at(mayfly_db *db, int level) {
  char name[64];
  snprintf(name, sizeof name, "mayfly.num-files-at-level%d", level);
  return (int)prop_u64(db, name);
}

/* With MAYFLY_TEST_DUMP_LOG set, prints the db's info LOG (to debug a failure). */
static void dump_log(mf_env *env) {
  if (!getenv("MAYFLY_TEST_DUMP_LOG")) return;
  struct mf_buf b = MF_BUF_INIT;
  if (env_read_file(env, DBNAME "/LOG", &b) == MAYFLY_OK) printf("%.*s\n", (int)b.len, b.data);
  mf_buf_free(&b);
}

static void print_levels(mayfly_db *db, const char *what) {
  printf("%s: files per level", what);
  for (int l = 0; l < MF_NUM_LEVELS; l++) printf(" %d", files_at(db, l));
  printf("\n");
}

typedef struct stats_row {
  int files;
  uint64_t comp, moves, keys_in, keys_dropped;
} stats_row;

/* Row "L<level>" (level >= 0) or "Sum" (level < 0) of mayfly.stats; zeros when the row is
 * absent. */
static stats_row stats_get(mayfly_db *db, int level) {
  stats_row r = {0};
  char *text = NULL;
  ok(db, mayfly_property(db, "mayfly.stats", &text), "mayfly.stats");
  for (char *line = text; line && *line;) {
    char *next = strchr(line, '\n');
    if (next) *next++ = '\0';
    double size, score, rn, rnp1, w, wamp, secs;
    int lv;
    uint64_t files64;
    if (level >= 0 && sscanf(line, "L%d %d %lf %lf %lf %lf %lf %lf %" SCNu64 " %" SCNu64
                             " %lf %" SCNu64 " %" SCNu64, &lv, &r.files, &size, &score, &rn,
                             &rnp1, &w, &wamp, &r.comp, &r.moves, &secs, &r.keys_in,
                             &r.keys_dropped) == 13 && lv == level)
      break;
    if (level < 0 && sscanf(line, "Sum %" SCNu64 " %lf %lf %lf %lf %lf %" SCNu64 " %" SCNu64
                            " %lf %" SCNu64 " %" SCNu64, &files64, &size, &rn, &rnp1, &w,
                            &wamp, &r.comp, &r.moves, &secs, &r.keys_in, &r.keys_dropped) == 11) {
      r.files = (int)files64;
      break;
    }
    memset(&r, 0, sizeof r);
    line = next;
  }
  mayfly_free(text);
  return r;
}

static double stall_seconds(mayfly_db *db) {
  char *text = NULL;
  ok(db, mayfly_property(db, "mayfly.stats", &text), "mayfly.stats");
  const char *p = strstr(text, "Stall: ");
  double s = -1;
  if (!p || sscanf(p, "Stall: %lf", &s) != 1) fail_msg("no Stall: line in stats:\n%s", text);
  mayfly_free(text);
  return s;
}

/* Reads the MANIFEST (at a quiet moment: no background work running) and checks the layout
 * invariant compactions keep: in every level >= 1 the files are sorted and no user key spans
 * two files (output files are cut only between user keys). */
static void check_layout(mf_env *env, const char *what) {
  struct mayfly_options o;
  options_init_defaults(&o);
  options_set_env(&o, env);
  version_set *vs = NULL;
  assert_int_equal(version_set_create(env, DBNAME, &o, NULL, &vs), MAYFLY_OK);
  int rc = version_set_recover(vs);
  if (rc != MAYFLY_OK) {
    version_set_destroy(vs);
    fail_msg("%s: recovering the MANIFEST: %s", what, mayfly_strerror(rc));
  }
  version *v = version_set_current(vs);
  char msg[256] = "";
  for (int level = 1; level < MF_NUM_LEVELS && !msg[0]; level++) {
    for (int i = 0; i + 1 < v->num_files[level]; i++) {
      file_meta *a = v->files[level][i], *b = v->files[level][i + 1];
      mf_slice a_hi = ikey_user_key(mf_buf_slice(&a->largest));
      mf_slice b_lo = ikey_user_key(mf_buf_slice(&b->smallest));
      if (mf_slice_compare(a_hi, b_lo) >= 0) {
        snprintf(msg, sizeof msg, "level %d: table %" PRIu64 " ends with user key '%.*s', table %"
                 PRIu64 " starts with '%.*s'", level, a->number, (int)a_hi.len,
                 (const char *)a_hi.data, b->number, (int)b_lo.len, (const char *)b_lo.data);
        break;
      }
    }
  }
  version_set_destroy(vs);
  if (msg[0]) fail_msg("%s: %s", what, msg);
}

/* ---- random numbers ---- */

static uint64_t rng_next(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1DULL;
}

static uint32_t rng_below(uint64_t *s, uint32_t n) { return (uint32_t)(rng_next(s) % n); }

static uint64_t test_seed(const char *test) {
  const char *env = getenv("MAYFLY_TEST_SEED");
  uint64_t seed = env && *env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)clock();
  if (seed == 0) seed = 1;
  printf("%s: seed=%" PRIu64 " (replay with MAYFLY_TEST_SEED=%" PRIu64 ")\n", test, seed, seed);
  fflush(stdout);
  return seed;
}

/* ---- fixture: one in-memory env per test ---- */

static int setup(void **state) {
  mf_env *env = NULL;
  if (env_mem_create(&env) != MAYFLY_OK) return -1;
  *state = env;
  return 0;
}

static void stop_readers(void);

static int teardown(void **state) {
  mf_env *env = *state;
  stop_readers();
  if (g_open_iter) mayfly_iter_destroy(g_open_iter);
  g_open_iter = NULL;
  if (g_open_db) close_db_any(g_open_db);
  env->destroy(env);
  return 0;
}

/* ================================================================================== */
/* Seek compaction: a level-1 file whose range covers a key held only by level 2 is charged
 * one seek per get of that key; after its allowance (100 for a small file) it is compacted
 * into level 2. */
static void test_seek_compaction(void **state) {
  mf_env *env = *state;
  struct mayfly_options o;
  options_init_defaults(&o);
  options_set_env(&o, env);
  set_opt(&o, "max_mem_compaction_level", "2");
  mayfly_db *db = open_db(&o);

  ok(db, mayfly_put(db, "m", 1, "deep", 4, 0), "put m");
  ok(db, mayfly_flush(db), "flush");
  ok(db, mayfly_put(db, "a", 1, "va", 2, 0), "put a");
  ok(db, mayfly_put(db, "z", 1, "vz", 2, 0), "put z");
  ok(db, mayfly_flush(db), "flush");
  ok(db, mayfly_wait_idle(db), "wait_idle");
  /* The first table overlaps nothing and goes to level 2; the second overlaps it there, so
   * it stops at level 1. */
  assert_int_equal(files_at(db, 0), 0);
  assert_int_equal(files_at(db, 1), 1);
  assert_int_equal(files_at(db, 2), 1);
  uint64_t comps = stats_get(db, -1).comp;

  /* Half the allowance: nothing happens yet. */
  for (int i = 0; i < 50; i++) {
    void *v = NULL;
    size_t vlen;
    ok(db, mayfly_get(db, NULL, "m", 1, &v, &vlen), "get m");
    assert_memory_equal(v, "deep", 4);
    mayfly_free(v);
  }
  ok(db, mayfly_wait_idle(db), "wait_idle");
  assert_int_equal(files_at(db, 1), 1);

  for (int i = 0; i < 100; i++) {
    void *v = NULL;
    size_t vlen;
    ok(db, mayfly_get(db, NULL, "m", 1, &v, &vlen), "get m");
    mayfly_free(v);
  }
  ok(db, mayfly_wait_idle(db), "wait_idle");
  assert_int_equal(files_at(db, 1), 0);
  assert_int_equal(files_at(db, 2), 1);
  assert_true(stats_get(db, -1).comp > comps);
  assert_int_equal(stats_get(db, 2).comp, 1);
  const char *keys[] = {"a", "m", "z"}, *vals[] = {"va", "deep", "vz"};
  for (int i = 0; i < 3; i++) {
    void *v = NULL;
    size_t vlen;
    ok(db, mayfly_get(db, NULL, keys[i], 1, &v, &vlen), "get");
    assert_int_equal(vlen, strlen(vals[i]));
    assert_memory_equal(v, vals[i], vlen);
    mayfly_free(v);
  }
  close_db(db);
}

/* ================================================================================== */
/* Deleted keys never reappear, whatever the order of partial compactions (the spirit of
 * LevelDB issue 178: a tombstone dropped while an older value still lives in a level below
 * the compaction's output brings the value back). */

static void compact_keys(mayfly_db *db, int lo, int hi) {
  char b[32], e[32];
  size_t blen = key_of(lo, b), elen = key_of(hi, e);
  ok(db, mayfly_compact_range(db, b, blen, e, elen), "compact_range");
}

static void test_deleted_keys_stay_deleted(void **state) {
  mf_env *env = *state;
  uint64_t seed = test_seed("deleted_keys_stay_deleted");
  uint64_t rng = seed;
  struct mayfly_options o = small_opts(env);
  mayfly_db *db = open_db(&o);
  enum { N = 8000 };
  int *expect = malloc(N * sizeof *expect);
  assert_non_null(expect);

  for (int i = 0; i < N; i++) {
    put_i(db, i, 1, 100);
    expect[i] = 1;
  }
  ok(db, mayfly_compact_range(db, NULL, 0, NULL, 0), "compact all");
  print_levels(db, "after loading");
  /* The data sits below level 1; tombstones flushed to level 0 then compact into level 1
   * while the values they hide are one level further down. */
  ok(db, mayfly_set_option(db, "max_mem_compaction_level", "0"), "set_option");

  /* Delete the middle half, in a new layer above the data. */
  for (int i = N / 4; i < 3 * N / 4; i++) {
    del_i(db, i);
    expect[i] = -1;
  }
  ok(db, mayfly_flush(db), "flush");
  /* Partial compactions in an order that leaves tombstones and values in different levels
   * between steps. */
  const int ranges[][2] = {{N / 2, 3 * N / 4}, {0, N / 4 + 100}, {N / 4, N / 2}, {N - 10, N - 1}};
  for (int r = 0; r < 4; r++) {
    compact_keys(db, ranges[r][0], ranges[r][1]);
    check_all(db, NULL, expect, N, "after a partial compaction");
  }

  /* Rounds of random puts/deletes over random ranges, each followed by random partial
   * compactions; the model is checked after every round. */
  for (int round = 2; round < 8; round++) {
    int lo = (int)rng_below(&rng, N), len = 1 + (int)rng_below(&rng, N / 3);
    int hi = lo + len > N ? N : lo + len;
    int del = (int)rng_below(&rng, 2);
    /* Flushes land in level 0 or as deep as level 2, for varied layers. */
    ok(db, mayfly_set_option(db, "max_mem_compaction_level", rng_below(&rng, 2) ? "0" : "2"),
       "set_option");
    for (int i = lo; i < hi; i++) {
      if (del) {
        del_i(db, i);
        expect[i] = -1;
      } else {
        put_i(db, i, round, 60);
        expect[i] = round;
      }
    }
    int steps = 1 + (int)rng_below(&rng, 3);
    for (int s = 0; s < steps; s++) {
      int a = (int)rng_below(&rng, N), b = (int)rng_below(&rng, N);
      compact_keys(db, a < b ? a : b, a < b ? b : a);
      if (rng_below(&rng, 2)) ok(db, mayfly_flush(db), "flush");
    }
    check_all(db, NULL, expect, N, "after a round");
  }
  ok(db, mayfly_compact_range(db, NULL, 0, NULL, 0), "compact all");
  check_all(db, NULL, expect, N, "after compacting everything");
  close_db(db);
  db = open_db(&o);
  check_all(db, NULL, expect, N, "after reopen");
  close_db(db);
  free(expect);
}

/* ================================================================================== */
/* Snapshots keep their view through compactions (gets, iterators made on the snapshot before
 * and after); released, their versions are dropped. */
static void test_snapshots_and_drops(void **state) {
  mf_env *env = *state;
  struct mayfly_options o = small_opts(env);
  mayfly_db *db = open_db(&o);
  enum { N = 3000 };
  int v1[N], v2[N], v3[N];
  for (int i = 0; i < N; i++) {
    put_i(db, i, 1, 200);
    v1[i] = 1;
  }
  ok(db, mayfly_flush(db), "flush");
  const mayfly_snapshot *s1 = NULL, *s2 = NULL;
  ok(db, mayfly_snapshot_create(db, &s1), "snapshot");
  for (int i = 0; i < N; i++) {
    v2[i] = v1[i];
    if (i % 3 == 0) {
      del_i(db, i);
      v2[i] = -1;
    } else if (i % 2 == 0) {
      put_i(db, i, 2, 200);
      v2[i] = 2;
    }
  }
  ok(db, mayfly_flush(db), "flush");
  ok(db, mayfly_snapshot_create(db, &s2), "snapshot");
  mayfly_iter *it1 = NULL;
  ok(db, mayfly_iter_create(db, s1, &it1), "iter on s1");
  g_open_iter = it1;
  for (int i = 0; i < N; i++) {
    put_i(db, i, 3, 200);
    v3[i] = 3;
  }
  ok(db, mayfly_compact_range(db, NULL, 0, NULL, 0), "compact all");
  ok(db, mayfly_wait_idle(db), "wait_idle");
  assert_int_equal(files_at(db, 0), 0);
  check_all(db, s1, v1, N, "snapshot 1 after compaction");
  check_all(db, s2, v2, N, "snapshot 2 after compaction");
  check_all(db, NULL, v3, N, "latest after compaction");
  check_scan(db, it1, v1, N, "iterator made on snapshot 1 before compaction");
  mayfly_iter_destroy(it1);
  g_open_iter = NULL;
  /* Many keys have several versions now: none may be split between two tables. */
  check_layout(env, "with snapshots held");
  uint64_t size_held = prop_u64(db, "mayfly.total-sst-size");
  uint64_t dropped_held = stats_get(db, -1).keys_dropped;

  /* Release the older snapshot: its versions may go, snapshot 2's must stay. Writes that
   * span the key range make the next compaction merge every table. */
  mayfly_snapshot_release(db, s1);
  for (int i = 0; i < N; i += 50) {
    put_i(db, i, 4, 200);
    v3[i] = 4;
  }
  put_i(db, N - 1, 4, 200);
  v3[N - 1] = 4;
  ok(db, mayfly_compact_range(db, NULL, 0, NULL, 0), "compact all");
  check_all(db, s2, v2, N, "snapshot 2 after releasing snapshot 1");
  check_all(db, NULL, v3, N, "latest after releasing snapshot 1");
  uint64_t dropped_one = stats_get(db, -1).keys_dropped;
  assert_true(dropped_one > dropped_held);

  mayfly_snapshot_release(db, s2);
  for (int i = 25; i < N; i += 50) {
    put_i(db, i, 5, 200);
    v3[i] = 5;
  }
  put_i(db, 0, 5, 200);
  v3[0] = 5;
  put_i(db, N - 1, 5, 200);
  v3[N - 1] = 5;
  ok(db, mayfly_compact_range(db, NULL, 0, NULL, 0), "compact all");
  check_all(db, NULL, v3, N, "latest after releasing both");
  uint64_t size_free = prop_u64(db, "mayfly.total-sst-size");
  stats_row sum = stats_get(db, -1);
  printf("snapshots: sst size %" PRIu64 " with snapshots, %" PRIu64 " without; dropped %" PRIu64
         " -> %" PRIu64 " -> %" PRIu64 "\n", size_held, size_free, dropped_held, dropped_one,
         sum.keys_dropped);
  assert_true(sum.keys_dropped > dropped_one);
  /* Three versions of every key (and the tombstones) shrink to one. */
  assert_true(size_free * 2 < size_held);
  close_db(db);
}

/* ================================================================================== */
/* A manual compaction over everything moves every level down to the deepest one holding
 * data; level 1 goes in bounded steps (about one target file size each), not in one huge
 * merge. */
static void test_manual_compaction_batches(void **state) {
  mf_env *env = *state;
  uint64_t rng = test_seed("manual_compaction_batches");
  struct mayfly_options o = small_opts(env);
  set_opt(&o, "level0_file_num_compaction_trigger", "2");
  mayfly_db *db = open_db(&o);
  enum { N = 16000 };
  int *expect = malloc(N * sizeof *expect);
  assert_non_null(expect);
  for (int i = 0; i < N; i++) expect[i] = -1;
  /* Enough data for levels 1 and 2 (level 1 targets 1 MiB). */
  for (int n = 0; n < N + N / 2; n++) {
    int i = (int)rng_below(&rng, N);
    expect[i] = expect[i] < 0 ? 1 : expect[i] + 1;
    put_i(db, i, expect[i], 100);
  }
  ok(db, mayfly_wait_idle(db), "wait_idle");
  print_levels(db, "manual: loaded");
  /* Then let level-0 files pile up. */
  ok(db, mayfly_set_option(db, "level0_stop_writes_trigger", "300"), "set_option");
  ok(db, mayfly_set_option(db, "level0_slowdown_writes_trigger", "200"), "set_option");
  ok(db, mayfly_set_option(db, "level0_file_num_compaction_trigger", "100"), "set_option");
  for (int n = 0; n < N / 2; n++) {
    int i = (int)rng_below(&rng, N);
    expect[i] = expect[i] < 0 ? 1 : expect[i] + 1;
    put_i(db, i, expect[i], 100);
  }
  ok(db, mayfly_flush(db), "flush");
  ok(db, mayfly_wait_idle(db), "wait_idle");
  print_levels(db, "manual: before");
  assert_true(files_at(db, 0) >= 5);
  int deepest = 0;
  for (int l = 2; l < MF_NUM_LEVELS; l++)
    if (files_at(db, l) > 0) deepest = l;
  assert_true(deepest >= 2);
  uint64_t comps_before = stats_get(db, 2).comp;

  ok(db, mayfly_compact_range(db, NULL, 0, NULL, 0), "compact all");
  int right_after[MF_NUM_LEVELS];
  for (int l = 0; l < MF_NUM_LEVELS; l++) right_after[l] = files_at(db, l);
  print_levels(db, "manual: right after compact_range");
  dump_log(env);
  ok(db, mayfly_wait_idle(db), "wait_idle");
  for (int l = 0; l < MF_NUM_LEVELS; l++)
    if (l != deepest) assert_int_equal(files_at(db, l), 0);
  assert_true(files_at(db, deepest) > 0);
  /* Level 1 went down in many bounded steps, not one. */
  uint64_t steps = stats_get(db, 2).comp - comps_before;
  printf("manual: %" PRIu64 " compactions into level 2\n", steps);
  assert_true(steps >= 5);
  check_all(db, NULL, expect, N, "after manual compaction");
  close_db(db);
  db = open_db(&o);
  check_all(db, NULL, expect, N, "after reopen");
  close_db(db);
  free(expect);
  /* mayfly_compact_range returns when its work is done, not while its last step still runs. */
  for (int l = 0; l < MF_NUM_LEVELS; l++)
    if (l != deepest && right_after[l] != 0)
      fail_msg("mayfly_compact_range returned with %d files left at level %d", right_after[l], l);
}

/* When mayfly_compact_range(NULL, NULL) returns, everything is in one level: its last step
 * is installed, not still running. Repeated from different layouts, since a premature
 * return is a race. */
static void test_compact_range_returns_when_done(void **state) {
  mf_env *env = *state;
  uint64_t rng = test_seed("compact_range_returns_when_done");
  struct mayfly_options o = small_opts(env);
  set_opt(&o, "level0_file_num_compaction_trigger", "2");
  set_opt(&o, "level0_slowdown_writes_trigger", "200");
  set_opt(&o, "level0_stop_writes_trigger", "300");
  mayfly_db *db = open_db(&o);
  enum { N = 6000 };
  int expect[N];
  for (int i = 0; i < N; i++) expect[i] = -1;
  int premature = 0;
  for (int round = 0; round < 6; round++) {
    /* Odd rounds pile up level-0 files over the fully compacted data. */
    ok(db, mayfly_set_option(db, "level0_file_num_compaction_trigger", round % 2 ? "100" : "2"),
       "set_option");
    for (int n = 0; n < N / 2; n++) {
      int i = (int)rng_below(&rng, N);
      expect[i] = expect[i] < 0 ? 1 : expect[i] + 1;
      put_i(db, i, expect[i], 120);
    }
    ok(db, mayfly_wait_idle(db), "wait_idle");
    ok(db, mayfly_compact_range(db, NULL, 0, NULL, 0), "compact all");
    int levels = 0;
    for (int l = 0; l < MF_NUM_LEVELS; l++) levels += files_at(db, l) > 0;
    if (levels != 1) {
      print_levels(db, "compact_range returned with");
      premature++;
    }
    ok(db, mayfly_wait_idle(db), "wait_idle");
    check_all(db, NULL, expect, N, "after compact_range");
  }
  close_db(db);
  if (premature) fail_msg("mayfly_compact_range returned early %d times of 6", premature);
}

/* mayfly_compact_range(begin, end) compacts the whole [begin, end] at every level, also
 * below a level that took several steps (each step of a level starts where the last one
 * ended; the next level starts at begin again). Layout: level 1 holds tombstones for the
 * even keys in many small tables, level 2 every key in one table, level 3 one key past the
 * range. */
static void test_compact_range_bounded_multi_step(void **state) {
  mf_env *env = *state;
  struct mayfly_options o = small_opts(env);
  set_opt(&o, "write_buffer_size", "8MiB");
  set_opt(&o, "max_bytes_for_level_base", "1TiB");
  set_opt(&o, "level0_file_num_compaction_trigger", "1000");
  set_opt(&o, "level0_slowdown_writes_trigger", "10000");
  set_opt(&o, "level0_stop_writes_trigger", "10000");
  set_opt(&o, "enable_blob_files", "false");
  mayfly_db *db = open_db(&o);
  enum { N = 20000 };
  ok(db, mayfly_set_option(db, "max_mem_compaction_level", "3"), "set_option");
  put_i(db, 5 * N, 1, 100);
  ok(db, mayfly_flush(db), "flush");
  ok(db, mayfly_set_option(db, "max_mem_compaction_level", "2"), "set_option");
  for (int i = 0; i < N; i++) put_i(db, i, 1, 100);
  ok(db, mayfly_flush(db), "flush");
  ok(db, mayfly_set_option(db, "max_mem_compaction_level", "0"), "set_option");
  for (int i = 0; i < N; i += 2) del_i(db, i);
  ok(db, mayfly_flush(db), "flush");
  ok(db, mayfly_set_option(db, "level0_file_num_compaction_trigger", "1"), "set_option");
  ok(db, mayfly_wait_idle(db), "wait_idle");
  ok(db, mayfly_set_option(db, "level0_file_num_compaction_trigger", "1000"), "set_option");
  print_levels(db, "bounded range: before");
  assert_int_equal(files_at(db, 0), 0);
  assert_true(files_at(db, 1) >= 2); /* level 1 goes down in several steps */
  assert_int_equal(files_at(db, 2), 1);
  assert_int_equal(files_at(db, 3), 1);

  char lo[32], hi[32];
  size_t lo_len = key_of(0, lo), hi_len = key_of(N - 1, hi);
  ok(db, mayfly_compact_range(db, lo, lo_len, hi, hi_len), "compact_range");
  print_levels(db, "bounded range: after");
  for (int l = 0; l < 3; l++)
    if (files_at(db, l)) fail_msg("level %d keeps %d files inside the range", l, files_at(db, l));
  for (int i = 0; i < N; i++)
    if (get_i(db, NULL, i) != (i % 2 ? 1 : -1)) fail_msg("key %d has the wrong version", i);
  assert_int_equal(get_i(db, NULL, 5 * N), 1);
  close_db(db);
}

/* ================================================================================== */
/* Sequential writes flush to non-overlapping level-0 tables, which move down by MANIFEST
 * edits alone. */
static void test_trivial_move(void **state) {
  mf_env *env = *state;
  struct mayfly_options o = small_opts(env);
  set_opt(&o, "max_mem_compaction_level", "0");
  set_opt(&o, "level0_file_num_compaction_trigger", "2");
  set_opt(&o, "level0_slowdown_writes_trigger", "200");
  set_opt(&o, "level0_stop_writes_trigger", "300");
  mayfly_db *db = open_db(&o);
  enum { N = 6000 };
  int *expect = malloc(N * sizeof *expect);
  assert_non_null(expect);
  for (int i = 0; i < N; i++) {
    put_i(db, i, 1, 100);
    expect[i] = 1;
  }
  ok(db, mayfly_flush(db), "flush");
  ok(db, mayfly_wait_idle(db), "wait_idle");
  stats_row sum = stats_get(db, -1);
  print_levels(db, "trivial move");
  printf("trivial move: %" PRIu64 " moves, %" PRIu64 " compactions\n", sum.moves, sum.comp);
  assert_true(sum.moves > 0);
  assert_true(stats_get(db, 1).moves > 0);
  check_all(db, NULL, expect, N, "after moves");
  close_db(db);
  db = open_db(&o);
  check_all(db, NULL, expect, N, "after reopen");
  close_db(db);
  free(expect);
}

/* ================================================================================== */
/* Randomized run under concurrent readers.
 *
 * Keys of group g are "g%05d.%d" (GROUP_KEYS of them). Each writer round of a group writes
 * all its keys in one batch: the round number as the value's version, or deletions when
 * round_is_delete says so. The writer publishes the round in committed[g] after the write
 * returns. A reader that loads committed[g] = lo before and hi after taking its view must see
 * a round r in [lo, hi + 1] (the writer may have finished r = hi + 1 without publishing it):
 * all keys of a group at the same round within one iterator, and a present round never a
 * deletion round. Single keys "x%05d" get independent puts and deletes; everything is
 * checked against the model at the end and after a reopen. */

#define GROUP_KEYS 8

static int round_is_delete(uint32_t g, uint32_t r) {
  return r > 0 && ((g * 2654435761u) ^ (r * 40503u)) % 7u == 0;
}

typedef struct model_run {
  mayfly_db *db;
  int groups;
  _Atomic uint32_t *committed;
  atomic_int stop;
  atomic_int failed;
  char msg[512];
  uint64_t seed;
  atomic_ulong reads, scans;
} model_run;

typedef struct reader_arg {
  model_run *run;
  uint64_t rng;
} reader_arg;

static void reader_fail(model_run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reader_fail(model_run *run, const char *fmt, ...) {
  if (atomic_exchange(&run->failed, 1)) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(run->msg, sizeof run->msg, fmt, ap);
  va_end(ap);
  atomic_store(&run->stop, 1);
}

/* NULL when a view showing group g at round r (present) or absent is allowed by [lo, hi+1]. */
static int round_allowed(uint32_t g, int present, uint32_t r, uint32_t lo, uint32_t hi) {
  if (present) return r >= lo && r <= hi + 1 && r > 0 && !round_is_delete(g, r);
  for (uint32_t d = lo; d <= hi + 1; d++)
    if (d == 0 || round_is_delete(g, d)) return 1;
  return 0;
}

static size_t group_key(uint32_t g, int j, char *buf) {
  return (size_t)snprintf(buf, 32, "g%05u.%d", g, j);
}

static size_t group_value_len(uint32_t g, uint32_t r, int j) {
  return 100 + (g * 131u + r * 71u + (uint32_t)j * 13u) % 400u;
}

static void reader_gets(model_run *run, uint64_t *rng) {
  uint32_t g = rng_below(rng, (uint32_t)run->groups);
  for (int j = 0; j < GROUP_KEYS && !atomic_load(&run->stop); j++) {
    char k[32];
    size_t klen = group_key(g, j, k);
    uint32_t lo = atomic_load(&run->committed[g]);
    void *v = NULL;
    size_t vlen = 0;
    int rc = mayfly_get(run->db, NULL, k, klen, &v, &vlen);
    uint32_t hi = atomic_load(&run->committed[g]);
    uint32_t r = 0;
    if (rc == MAYFLY_OK && !value_check(v, vlen, k, klen, &r)) {
      reader_fail(run, "get %s: damaged value", k);
    } else if (rc != MAYFLY_OK && rc != MAYFLY_ENOTFOUND) {
      reader_fail(run, "get %s: %s", k, mayfly_strerror(rc));
    } else if (!round_allowed(g, rc == MAYFLY_OK, r, lo, hi)) {
      reader_fail(run, "get %s: %s round %u, committed %u..%u", k,
                  rc == MAYFLY_OK ? "present at" : "absent at", r, lo, hi);
    }
    mayfly_free(v);
    atomic_fetch_add(&run->reads, 1);
  }
}

static void reader_scan(model_run *run, uint64_t *rng) {
  enum { SPAN = 24 };
  uint32_t g0 = rng_below(rng, (uint32_t)run->groups);
  uint32_t span = (uint32_t)run->groups - g0 < SPAN ? (uint32_t)run->groups - g0 : SPAN;
  uint32_t lo[SPAN], hi[SPAN], round[SPAN];
  int count[SPAN];
  for (uint32_t i = 0; i < span; i++) {
    lo[i] = atomic_load(&run->committed[g0 + i]);
    count[i] = 0;
  }
  mayfly_iter *it = NULL;
  int rc = mayfly_iter_create(run->db, NULL, &it);
  if (rc != MAYFLY_OK) {
    reader_fail(run, "iter_create: %s", mayfly_strerror(rc));
    return;
  }
  for (uint32_t i = 0; i < span; i++) hi[i] = atomic_load(&run->committed[g0 + i]);
  char start[32], prev[32] = "";
  size_t start_len = (size_t)snprintf(start, sizeof start, "g%05u.", g0);
  for (mayfly_iter_seek(it, start, start_len); mayfly_iter_valid(it); mayfly_iter_next(it)) {
    size_t klen, vlen;
    const char *k = mayfly_iter_key(it, &klen);
    if (klen >= 32 || k[0] != 'g') break;
    char kb[32];
    memcpy(kb, k, klen);
    kb[klen] = '\0';
    unsigned g;
    int j;
    if (sscanf(kb, "g%05u.%d", &g, &j) != 2) {
      reader_fail(run, "scan: stray key %s", kb);
      break;
    }
    if (g >= g0 + span) break;
    if (strcmp(prev, kb) >= 0) { /* group keys all have the same length */
      reader_fail(run, "scan: %s after %s", kb, prev);
      break;
    }
    memcpy(prev, kb, klen + 1);
    const void *v = mayfly_iter_value(it, &vlen);
    uint32_t r;
    if (!v || !value_check(v, vlen, k, klen, &r)) {
      reader_fail(run, "scan: %s damaged", kb);
      break;
    }
    uint32_t i = g - g0;
    if (count[i] > 0 && round[i] != r) {
      reader_fail(run, "scan: group %u mixes rounds %u and %u (key %s)", g, round[i], r, kb);
      break;
    }
    round[i] = r;
    count[i]++;
  }
  if (mayfly_iter_status(it) != MAYFLY_OK)
    reader_fail(run, "scan: status %s", mayfly_strerror(mayfly_iter_status(it)));
  mayfly_iter_destroy(it);
  for (uint32_t i = 0; i < span && !atomic_load(&run->failed); i++) {
    if (count[i] != 0 && count[i] != GROUP_KEYS)
      reader_fail(run, "scan: group %u shows %d of its %d keys", g0 + i, count[i], GROUP_KEYS);
    else if (!round_allowed(g0 + i, count[i] > 0, count[i] ? round[i] : 0, lo[i], hi[i]))
      reader_fail(run, "scan: group %u %s round %u, committed %u..%u", g0 + i,
                  count[i] ? "present at" : "absent", count[i] ? round[i] : 0, lo[i], hi[i]);
  }
  atomic_fetch_add(&run->scans, 1);
}

/* Readers still running when a test fails half way are stopped by teardown. */
static model_run *g_run;
static pthread_t g_readers[2];
static int g_num_readers;

static void stop_readers(void) {
  if (g_run) atomic_store(&g_run->stop, 1);
  for (int i = 0; i < g_num_readers; i++) pthread_join(g_readers[i], NULL);
  g_num_readers = 0;
  g_run = NULL;
}

static void *reader_main(void *p) {
  reader_arg *a = p;
  while (!atomic_load(&a->run->stop)) {
    if (rng_below(&a->rng, 3) == 0) reader_scan(a->run, &a->rng);
    else reader_gets(a->run, &a->rng);
  }
  return NULL;
}

static size_t x_key(int i, char *buf) { return (size_t)snprintf(buf, 32, "x%05d", i); }

/* Checks every group and single key against the model, by gets and one full scan. */
static void model_check(mayfly_db *db, int groups, const uint32_t *rounds, int nx,
                        const int *xver, const char *what) {
  for (int g = 0; g < groups; g++) {
    int present = rounds[g] > 0 && !round_is_delete((uint32_t)g, rounds[g]);
    for (int j = 0; j < GROUP_KEYS; j++) {
      char k[32];
      size_t klen = group_key((uint32_t)g, j, k);
      void *v = NULL;
      size_t vlen;
      int rc = mayfly_get(db, NULL, k, klen, &v, &vlen);
      uint32_t r = 0;
      if (present && rc != MAYFLY_OK)
        fail_msg("%s: %s: %s, expected round %u", what, k, mayfly_strerror(rc), rounds[g]);
      if (!present && rc != MAYFLY_ENOTFOUND)
        fail_msg("%s: %s: %s, expected absent (round %u)", what, k, mayfly_strerror(rc), rounds[g]);
      if (present && (!value_check(v, vlen, k, klen, &r) || r != rounds[g]))
        fail_msg("%s: %s at round %u, expected %u", what, k, r, rounds[g]);
      mayfly_free(v);
    }
  }
  for (int i = 0; i < nx; i++) {
    char k[32];
    size_t klen = x_key(i, k);
    void *v = NULL;
    size_t vlen;
    int rc = mayfly_get(db, NULL, k, klen, &v, &vlen);
    uint32_t r = 0;
    if (xver[i] < 0 && rc != MAYFLY_ENOTFOUND) fail_msg("%s: %s should be absent", what, k);
    if (xver[i] >= 0 && (rc != MAYFLY_OK || !value_check(v, vlen, k, klen, &r) ||
                         (int)r != xver[i]))
      fail_msg("%s: %s: %s version %u, expected %d", what, k, mayfly_strerror(rc), r, xver[i]);
    mayfly_free(v);
  }
  /* One scan: exactly the present keys, in order. */
  mayfly_iter *it = NULL;
  ok(db, mayfly_iter_create(db, NULL, &it), "iter_create");
  mayfly_iter_seek_to_first(it);
  for (int g = 0; g < groups; g++) {
    if (rounds[g] == 0 || round_is_delete((uint32_t)g, rounds[g])) continue;
    for (int j = 0; j < GROUP_KEYS; j++) {
      char k[32];
      size_t klen = group_key((uint32_t)g, j, k), got_len, vlen;
      if (!mayfly_iter_valid(it)) fail_msg("%s: scan ended before %s", what, k);
      const void *got = mayfly_iter_key(it, &got_len);
      if (got_len != klen || memcmp(got, k, klen) != 0)
        fail_msg("%s: scan found %.*s, expected %s", what, (int)got_len, (const char *)got, k);
      uint32_t r;
      const void *v = mayfly_iter_value(it, &vlen);
      if (!v || !value_check(v, vlen, k, klen, &r) || r != rounds[g])
        fail_msg("%s: scan: %s has a wrong value", what, k);
      mayfly_iter_next(it);
    }
  }
  for (int i = 0; i < nx; i++) {
    if (xver[i] < 0) continue;
    char k[32];
    size_t klen = x_key(i, k), got_len, vlen;
    if (!mayfly_iter_valid(it)) fail_msg("%s: scan ended before %s", what, k);
    const void *got = mayfly_iter_key(it, &got_len);
    if (got_len != klen || memcmp(got, k, klen) != 0)
      fail_msg("%s: scan found %.*s, expected %s", what, (int)got_len, (const char *)got, k);
    uint32_t r;
    const void *v = mayfly_iter_value(it, &vlen);
    if (!v || !value_check(v, vlen, k, klen, &r) || (int)r != xver[i])
      fail_msg("%s: scan: %s has a wrong value", what, k);
    mayfly_iter_next(it);
  }
  if (mayfly_iter_valid(it)) {
    size_t got_len;
    const void *got = mayfly_iter_key(it, &got_len);
    fail_msg("%s: scan found extra key %.*s", what, (int)got_len, (const char *)got);
  }
  ok(db, mayfly_iter_status(it), "scan status");
  mayfly_iter_destroy(it);
}

static void run_model(mf_env *env, int dynamic) {
  const char *name = dynamic ? "model_dynamic_levels" : "model_static_levels";
  uint64_t seed = test_seed(name);
  uint64_t rng = seed;
  struct mayfly_options o = small_opts(env);
  set_opt(&o, "level0_file_num_compaction_trigger", "2");
  set_opt(&o, "max_bytes_for_level_multiplier", "2");
  set_opt(&o, "level_compaction_dynamic_level_bytes", dynamic ? "true" : "false");
  set_opt(&o, "max_background_jobs", "2");
  mayfly_db *db = open_db(&o);

  enum { GROUPS = 2000, NX = 3000, STEPS = 6000, READERS = 2 };
  model_run *run = calloc(1, sizeof *run);
  uint32_t *rounds = calloc(GROUPS, sizeof *rounds);
  int *xver = malloc(NX * sizeof *xver);
  assert_non_null(run);
  assert_non_null(rounds);
  assert_non_null(xver);
  run->committed = calloc(GROUPS, sizeof *run->committed);
  assert_non_null(run->committed);
  for (int i = 0; i < NX; i++) xver[i] = -1;
  run->db = db;
  run->groups = GROUPS;
  run->seed = seed;

  static reader_arg args[READERS];
  g_run = run;
  for (int i = 0; i < READERS; i++) {
    args[i].run = run;
    args[i].rng = seed * 7919u + (uint64_t)i + 1;
    assert_int_equal(pthread_create(&g_readers[i], NULL, reader_main, &args[i]), 0);
    g_num_readers++;
  }

  mayfly_batch *b = NULL;
  assert_int_equal(mayfly_batch_create(&b), MAYFLY_OK);
  char v[512];
  int max_level_used = 0;
  assert_true(group_value_len(0, 0, 0) < sizeof v);
  for (int step = 0; step < STEPS && !atomic_load(&run->failed); step++) {
    uint32_t kind = rng_below(&rng, 10);
    if (kind < 7) {
      uint32_t g = rng_below(&rng, GROUPS);
      uint32_t r = rounds[g] + 1;
      mayfly_batch_clear(b);
      for (int j = 0; j < GROUP_KEYS; j++) {
        char k[32];
        size_t klen = group_key(g, j, k);
        if (round_is_delete(g, r)) {
          assert_int_equal(mayfly_batch_delete(b, k, klen), MAYFLY_OK);
        } else {
          size_t vlen = group_value_len(g, r, j);
          value_make(v, vlen, k, klen, r);
          assert_int_equal(mayfly_batch_put(b, k, klen, v, vlen), MAYFLY_OK);
        }
      }
      ok(db, mayfly_write(db, b, 0), "write group");
      rounds[g] = r;
      atomic_store(&run->committed[g], r);
    } else {
      int i = (int)rng_below(&rng, NX);
      char k[32];
      size_t klen = x_key(i, k);
      if (kind == 9 && xver[i] >= 0) {
        ok(db, mayfly_delete(db, k, klen, 0), "delete x");
        xver[i] = -1;
      } else {
        int ver = xver[i] < 0 ? step : xver[i] + 1;
        size_t vlen = 20 + rng_below(&rng, 400);
        value_make(v, vlen, k, klen, (uint32_t)ver);
        ok(db, mayfly_put(db, k, klen, v, vlen, 0), "put x");
        xver[i] = ver;
      }
    }
    if (step % 1000 == 999) {
      for (int l = 1; l < MF_NUM_LEVELS; l++)
        if (files_at(db, l) > 0 && l > max_level_used) max_level_used = l;
      if (step % 3000 == 2999) {
        /* A manual compaction of a random stretch of groups, while readers run. */
        char kb[32], ke[32];
        uint32_t g = rng_below(&rng, GROUPS);
        size_t bl = group_key(g, 0, kb), el = group_key(g + 100, 0, ke);
        ok(db, mayfly_compact_range(db, kb, bl, ke, el), "compact_range");
      }
    }
  }
  mayfly_batch_destroy(b);
  /* Let the readers see the final compactions too. */
  ok(db, mayfly_wait_idle(db), "wait_idle");
  stop_readers();
  if (atomic_load(&run->failed)) fail_msg("%s (seed %" PRIu64 "): reader: %s", name, seed, run->msg);
  printf("%s: %lu gets, %lu scans by readers\n", name, (unsigned long)atomic_load(&run->reads),
         (unsigned long)atomic_load(&run->scans));
  print_levels(db, name);
  for (int l = 1; l < MF_NUM_LEVELS; l++)
    if (files_at(db, l) > 0 && l > max_level_used) max_level_used = l;
  stats_row sum = stats_get(db, -1);
  printf("%s: %" PRIu64 " compactions, %" PRIu64 " moves, deepest level used %d\n", name,
         sum.comp, sum.moves, max_level_used);
  assert_true(sum.comp > 10);
  /* Several levels took part. */
  if (dynamic) assert_true(max_level_used == MF_NUM_LEVELS - 1);
  else assert_true(max_level_used >= 3);
  int levels = 0;
  for (int l = 1; l < MF_NUM_LEVELS; l++) levels += files_at(db, l) > 0;
  assert_true(levels >= 2);

  model_check(db, GROUPS, rounds, NX, xver, name);
  close_db(db);
  check_layout(env, name);
  db = open_db(&o);
  model_check(db, GROUPS, rounds, NX, xver, "after reopen");
  close_db(db);
  free(run->committed);
  free(run);
  free(rounds);
  free(xver);
}

static void test_model_static_levels(void **state) { run_model(*state, 0); }
static void test_model_dynamic_levels(void **state) { run_model(*state, 1); }

/* ================================================================================== */
/* A fault-injecting env: a copy of the in-memory env whose table-file (".sst") creation,
 * appends or syncs fail while armed. It records the tables created and the files removed
 * while armed, so a test can tell that only abandoned outputs were deleted. The copy keeps
 * the base's ctx, so the functions it does not override work on it unchanged. */

enum fault_mode { FAULT_OFF, FAULT_CREATE, FAULT_APPEND, FAULT_SYNC };

typedef struct fault_env {
  mf_env env; /* first: the engine sees this */
  mf_env *base;
  atomic_int mode;
  atomic_int injected;
  pthread_mutex_t mu;
  char *created[256];
  int num_created;
  char *removed[256];
  int num_removed;
} fault_env;

typedef struct fault_file {
  mf_wfile *base;
  fault_env *fe;
  int is_table;
} fault_file;

static int is_table(const char *path) {
  size_t n = strlen(path);
  return n > 4 && strcmp(path + n - 4, ".sst") == 0;
}

static void record(fault_env *fe, char **list, int *n, const char *path) {
  pthread_mutex_lock(&fe->mu);
  if (*n < 256) list[(*n)++] = strdup(path);
  pthread_mutex_unlock(&fe->mu);
}

static int fault_new_writable(mf_env *env, const char *path, mf_wfile **out) {
  fault_env *fe = (fault_env *)env;
  int armed = atomic_load(&fe->mode) != FAULT_OFF && is_table(path);
  if (armed && atomic_load(&fe->mode) == FAULT_CREATE) {
    atomic_fetch_add(&fe->injected, 1);
    return MF_ERR(MAYFLY_EIO, "injected fault: cannot create %s", path);
  }
  fault_file *f = calloc(1, sizeof *f);
  if (!f) return MAYFLY_ENOMEM;
  int rc = fe->base->new_writable(fe->base, path, &f->base);
  if (rc != MAYFLY_OK) {
    free(f);
    return rc;
  }
  f->fe = fe;
  f->is_table = is_table(path);
  if (armed) record(fe, fe->created, &fe->num_created, path);
  *out = (mf_wfile *)f;
  return MAYFLY_OK;
}

static int fault_append(mf_wfile *w, const void *data, size_t n) {
  fault_file *f = (fault_file *)w;
  if (f->is_table && atomic_load(&f->fe->mode) == FAULT_APPEND) {
    atomic_fetch_add(&f->fe->injected, 1);
    return MF_ERR(MAYFLY_EIO, "injected fault: append of %zu bytes", n);
  }
  return f->fe->base->append(f->base, data, n);
}

static int fault_flush(mf_wfile *w) {
  fault_file *f = (fault_file *)w;
  return f->fe->base->flush(f->base);
}

static int fault_sync(mf_wfile *w, int full) {
  fault_file *f = (fault_file *)w;
  if (f->is_table && atomic_load(&f->fe->mode) == FAULT_SYNC) {
    atomic_fetch_add(&f->fe->injected, 1);
    return MF_ERR(MAYFLY_EIO, "injected fault: sync");
  }
  return f->fe->base->sync(f->base, full);
}

static int fault_close_writable(mf_wfile *w) {
  fault_file *f = (fault_file *)w;
  int rc = f->fe->base->close_writable(f->base);
  free(f);
  return rc;
}

static int fault_remove_file(mf_env *env, const char *path) {
  fault_env *fe = (fault_env *)env;
  int rc = fe->base->remove_file(fe->base, path);
  if (rc == MAYFLY_OK && atomic_load(&fe->mode) != FAULT_OFF)
    record(fe, fe->removed, &fe->num_removed, path);
  return rc;
}

static fault_env *fault_env_create(mf_env *base) {
  fault_env *fe = calloc(1, sizeof *fe);
  assert_non_null(fe);
  fe->env = *base;
  fe->base = base;
  fe->env.new_writable = fault_new_writable;
  fe->env.append = fault_append;
  fe->env.flush = fault_flush;
  fe->env.sync = fault_sync;
  fe->env.close_writable = fault_close_writable;
  fe->env.remove_file = fault_remove_file;
  fe->env.destroy = NULL; /* the base is destroyed by the fixture */
  pthread_mutex_init(&fe->mu, NULL);
  return fe;
}

static void fault_env_destroy(fault_env *fe) {
  for (int i = 0; i < fe->num_created; i++) free(fe->created[i]);
  for (int i = 0; i < fe->num_removed; i++) free(fe->removed[i]);
  pthread_mutex_destroy(&fe->mu);
  free(fe);
}

/* Every file removed while armed must be a table created while armed (an abandoned output). */
static void check_removals(fault_env *fe) {
  pthread_mutex_lock(&fe->mu);
  for (int i = 0; i < fe->num_removed; i++) {
    int found = 0;
    for (int j = 0; j < fe->num_created && !found; j++)
      found = strcmp(fe->removed[i], fe->created[j]) == 0;
    if (!found) {
      pthread_mutex_unlock(&fe->mu);
      fail_msg("%s was deleted after the background error", fe->removed[i]);
    }
  }
  pthread_mutex_unlock(&fe->mu);
}

typedef struct dir_list {
  char **names;
  size_t count;
} dir_list;

static dir_list list_db(mf_env *env) {
  dir_list d = {NULL, 0};
  assert_int_equal(env->list_dir(env, DBNAME, &d.names, &d.count), MAYFLY_OK);
  return d;
}

/* Every name of before is still in after. */
static void check_still_there(const dir_list *before, const dir_list *after) {
  for (size_t i = 0; i < before->count; i++) {
    int found = 0;
    for (size_t j = 0; j < after->count && !found; j++)
      found = strcmp(before->names[i], after->names[j]) == 0;
    if (!found) fail_msg("%s disappeared after the background error", before->names[i]);
  }
}

/* The db is read-only: every write-like call fails with MAYFLY_ECLOSED. */
static void check_refuses_writes(mayfly_db *db) {
  assert_int_equal(mayfly_put(db, "k", 1, "v", 1, 0), MAYFLY_ECLOSED);
  assert_int_equal(mayfly_delete(db, "k", 1, 0), MAYFLY_ECLOSED);
  mayfly_batch *b = NULL;
  assert_int_equal(mayfly_batch_create(&b), MAYFLY_OK);
  assert_int_equal(mayfly_batch_put(b, "k", 1, "v", 1), MAYFLY_OK);
  assert_int_equal(mayfly_write(db, b, MAYFLY_SYNC), MAYFLY_ECLOSED);
  mayfly_batch_destroy(b);
  assert_int_equal(mayfly_flush(db), MAYFLY_ECLOSED);
  assert_int_equal(mayfly_wait_idle(db), MAYFLY_ECLOSED);
  assert_int_equal(mayfly_compact_range(db, NULL, 0, NULL, 0), MAYFLY_ECLOSED);
}

/* A flush fails: writes stop, what was acknowledged stays readable and survives reopen. */
static int flush_error_case(mf_env *base, int mode) {
  fault_env *fe = fault_env_create(base);
  struct mayfly_options o = small_opts(&fe->env);
  enum { N = 30000 };
  int *expect = malloc(N * sizeof *expect);
  assert_non_null(expect);
  for (int i = 0; i < N; i++) expect[i] = -1;
  mayfly_db *db = open_db(&o);
  for (int i = 0; i < 2000; i++) {
    put_i(db, i, 1, 100);
    expect[i] = 1;
  }
  ok(db, mayfly_flush(db), "flush");
  ok(db, mayfly_wait_idle(db), "wait_idle");

  atomic_store(&fe->mode, mode);
  int acked = 2000, rc = MAYFLY_OK;
  for (int i = 2000; i < N; i++) {
    char k[32], v[100];
    size_t klen = key_of(i, k);
    value_make(v, sizeof v, k, klen, 1);
    rc = mayfly_put(db, k, klen, v, sizeof v, 0);
    if (rc != MAYFLY_OK) break;
    expect[i] = 1;
    acked = i + 1;
  }
  if (rc != MAYFLY_ECLOSED)
    fail_msg("mode %d: writes kept going or failed oddly: %s after %d acknowledged", mode,
             mayfly_strerror(rc), acked);
  assert_true(atomic_load(&fe->injected) > 0);
  printf("flush error (mode %d): %d writes acknowledged; %s\n", mode, acked, mayfly_errmsg(db));
  /* The message names the cause, not some later clean-up step (checked last). */
  int msg_ok = strstr(mayfly_errmsg(db), "injected fault") != NULL;
  if (!msg_ok) printf("mode %d: error message hides the cause: %s\n", mode, mayfly_errmsg(db));
  dir_list before = list_db(base);
  check_refuses_writes(db);
  check_all(db, NULL, expect, acked, "reads after the error");
  dir_list after = list_db(base);
  check_still_there(&before, &after);
  check_removals(fe);
  env_free_names(before.names, before.count);
  env_free_names(after.names, after.count);
  close_db_any(db); /* may report the error again */

  atomic_store(&fe->mode, FAULT_OFF);
  db = open_db(&o);
  check_all(db, NULL, expect, acked, "after reopen");
  put_i(db, acked, 2, 100);
  expect[acked] = 2;
  ok(db, mayfly_compact_range(db, NULL, 0, NULL, 0), "compact after reopen");
  check_all(db, NULL, expect, acked + 1, "after compaction");
  close_db(db);
  free(expect);
  fault_env_destroy(fe);
  return msg_ok;
}

static void remove_db(mf_env *env) {
  dir_list d = list_db(env);
  for (size_t i = 0; i < d.count; i++) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", DBNAME, d.names[i]);
    env->remove_file(env, path);
  }
  env_free_names(d.names, d.count);
}

static void test_flush_error(void **state) {
  mf_env *env = *state;
  const int modes[] = {FAULT_CREATE, FAULT_APPEND, FAULT_SYNC};
  int messages_ok = 1;
  for (int m = 0; m < 3; m++) {
    messages_ok &= flush_error_case(env, modes[m]);
    remove_db(env);
  }
  if (!messages_ok) fail_msg("the background error message does not name the failure");
}

/* A compaction fails: compact_range reports it, writes stop, nothing is lost. */
static void test_compaction_error(void **state) {
  mf_env *base = *state;
  const int modes[] = {FAULT_SYNC, FAULT_APPEND, FAULT_CREATE};
  int messages_ok = 1;
  for (int m = 0; m < 3; m++) {
    fault_env *fe = fault_env_create(base);
    struct mayfly_options o = small_opts(&fe->env);
    set_opt(&o, "level0_file_num_compaction_trigger", "100");
    set_opt(&o, "level0_slowdown_writes_trigger", "200");
    set_opt(&o, "level0_stop_writes_trigger", "300");
    set_opt(&o, "max_mem_compaction_level", "0");
    enum { N = 4000 };
    int expect[N];
    uint64_t rng = 12345;
    for (int i = 0; i < N; i++) expect[i] = -1;
    mayfly_db *db = open_db(&o);
    for (int n = 0; n < N; n++) {
      int i = (int)rng_below(&rng, N);
      expect[i] = expect[i] < 0 ? 1 : expect[i] + 1;
      put_i(db, i, expect[i], 100);
    }
    ok(db, mayfly_flush(db), "flush");
    ok(db, mayfly_wait_idle(db), "wait_idle");
    assert_true(files_at(db, 0) > 2);
    uint64_t comps = stats_get(db, -1).comp - stats_get(db, 0).comp;
    assert_int_equal(comps, 0);

    atomic_store(&fe->mode, modes[m]);
    dir_list before = list_db(base);
    int rc = mayfly_compact_range(db, NULL, 0, NULL, 0);
    assert_int_equal(rc, MAYFLY_ECLOSED);
    assert_non_null(strstr(mayfly_errmsg(db), "compaction"));
    if (!strstr(mayfly_errmsg(db), "injected fault")) {
      printf("mode %d: error message hides the cause: %s\n", modes[m], mayfly_errmsg(db));
      messages_ok = 0;
    }
    assert_true(atomic_load(&fe->injected) > 0);
    check_refuses_writes(db);
    check_all(db, NULL, expect, N, "reads after the compaction error");
    dir_list after = list_db(base);
    check_still_there(&before, &after);
    check_removals(fe);
    env_free_names(before.names, before.count);
    env_free_names(after.names, after.count);
    close_db_any(db);

    atomic_store(&fe->mode, FAULT_OFF);
    db = open_db(&o);
    check_all(db, NULL, expect, N, "after reopen");
    ok(db, mayfly_compact_range(db, NULL, 0, NULL, 0), "compact after reopen");
    assert_int_equal(files_at(db, 0), 0);
    check_all(db, NULL, expect, N, "after compaction");
    close_db(db);
    remove_db(base);
    fault_env_destroy(fe);
  }
  if (!messages_ok) fail_msg("the background error message does not name the failure");
}

/* ================================================================================== */
/* With a low slowdown trigger writes are delayed (and the delay shows in mayfly.stats) but
 * all succeed. A write is delayed only while level 0 is at the trigger, that is while a
 * compaction runs: on a loaded machine the compactions may keep up with a few hundred
 * writes, so the writing goes on (for up to 30 s) until one was delayed. */
static void test_write_stall(void **state) {
  mf_env *env = *state;
  struct mayfly_options o = small_opts(env);
  set_opt(&o, "max_mem_compaction_level", "0");
  set_opt(&o, "level0_file_num_compaction_trigger", "2");
  set_opt(&o, "level0_slowdown_writes_trigger", "2");
  set_opt(&o, "level0_stop_writes_trigger", "8");
  mayfly_db *db = open_db(&o);
  assert_true(stall_seconds(db) == 0.0);
  enum { N = 700 };
  int expect[N];
  uint64_t rng = 99;
  for (int i = 0; i < N; i++) expect[i] = -1;
  uint64_t start = env->now_micros(env);
  long n = 0;
  for (; n < N || (prop_u64(db, "mayfly.stall-micros") == 0 &&
                   env->now_micros(env) - start < 30 * 1000000u); n++) {
    int i = (int)rng_below(&rng, N);
    expect[i] = expect[i] < 0 ? 1 : expect[i] + 1;
    put_i(db, i, expect[i], 4000);
  }
  ok(db, mayfly_wait_idle(db), "wait_idle");
  double stall = stall_seconds(db);
  double micros = (double)prop_u64(db, "mayfly.stall-micros");
  printf("write stall: %.0f us (stats: %.3f s) in %ld writes\n", micros, stall, n);
  assert_true(micros > 0);
  /* mayfly.stats shows the same count to the millisecond. */
  assert_true(micros >= stall * 1e6 - 1000 && micros <= stall * 1e6 + 1000);
  check_all(db, NULL, expect, N, "after stalls");
  close_db(db);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_seek_compaction, setup, teardown),
      cmocka_unit_test_setup_teardown(test_deleted_keys_stay_deleted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_snapshots_and_drops, setup, teardown),
      cmocka_unit_test_setup_teardown(test_manual_compaction_batches, setup, teardown),
      cmocka_unit_test_setup_teardown(test_compact_range_returns_when_done, setup, teardown),
      cmocka_unit_test_setup_teardown(test_compact_range_bounded_multi_step, setup, teardown),
      cmocka_unit_test_setup_teardown(test_trivial_move, setup, teardown),
      cmocka_unit_test_setup_teardown(test_model_static_levels, setup, teardown),
      cmocka_unit_test_setup_teardown(test_model_dynamic_levels, setup, teardown),
      cmocka_unit_test_setup_teardown(test_flush_error, setup, teardown),
      cmocka_unit_test_setup_teardown(test_compaction_error, setup, teardown),
      cmocka_unit_test_setup_teardown(test_write_stall, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
