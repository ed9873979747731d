/* Randomized model test: mayfly's public API against an in-memory ordered map.
 *
 * The test draws a long sequence of random operations (puts, deletes, mixed batches, gets,
 * forward/backward/zig-zag iteration from random positions, seeks, snapshots created, read
 * much later and released, flushes, range compactions, close + reopen) and applies each both
 * to the database and to a model, checking every read against the model.
 *
 * The model. Keys come from a fixed space of NUM_KEYS distinct byte strings (lengths 0..40,
 * the empty key included, over a tiny alphabet with 0x00 and 0xff so that keys share long
 * prefixes and the bytewise order is exercised), sorted once in mayfly's order. The state is
 * one pointer per key index: NULL when absent, else a reference-counted immutable value.
 * Reading "as of" a snapshot or an iterator's creation is a copy of that pointer array (each
 * value gains a reference), so old states cost NUM_KEYS pointers, not their values.
 *
 * The small options (64 KiB memtables, compaction at 2 level-0 files, 64 KiB tables, a small
 * block cache and table cache) make the run cross many flushes, compactions and files.
 *
 * Replay: the seed is printed first; MAYFLY_SEED=<seed> replays the same run and
 * MAYFLY_MODEL_OPS=<n> changes the number of operations (default 100000). A mismatch fails
 * with the op index, the operation, the key, and the expected and actual values. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mayfly.h"

#define NUM_KEYS 2000
#define MAX_KEY_LEN 40
#define MAX_SNAPSHOTS 4
#define DEFAULT_OPS 100000
#define BIG_VALUE_MAX (100u * 1024)

static const char k_options[] =
    "write_buffer_size=64KiB;level0_file_num_compaction_trigger=2;"
    "target_file_size_base=64KiB;max_bytes_for_level_base=1MiB;"
    "max_bytes_for_level_multiplier=4;block_size=1KiB;block_cache_size=256KiB;"
    "max_open_files=20";

/* ---- random numbers (our own, so a seed means the same run whatever the engine does) ---- */

static uint64_t rng_next(uint64_t *state)
{
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint32_t rng_below(uint64_t *state, uint32_t n)
{
  return n == 0 ? 0 : (uint32_t)(rng_next(state) % n);
}

/* True with probability percent/100. */
static int rng_chance(uint64_t *state, unsigned percent)
{
  return rng_below(state, 100) < percent;
}

/* ---- keys and values ----------------------------------------------------------------------- */

typedef struct model_key {
  size_t len;
  unsigned char bytes[MAX_KEY_LEN];
} model_key;

typedef struct model_value {
  int refs;
  size_t len;
  unsigned char data[];
} model_value;

static int key_compare(const void *a, size_t alen, const void *b, size_t blen)
{
  size_t n = alen < blen ? alen : blen;
  int c = n > 0 ? memcmp(a, b, n) : 0;
  if (c != 0)
    return c;
  return alen < blen ? -1 : alen > blen ? 1 : 0;
}

static int model_key_cmp(const void *a, const void *b)
{
  const model_key *x = a, *y = b;
  return key_compare(x->bytes, x->len, y->bytes, y->len);
}

static model_value *value_new(uint64_t *rng, uint64_t op, size_t len)
{
  model_value *v = malloc(sizeof *v + len);
  if (v == NULL)
    return NULL;
  v->refs = 1;
  v->len = len;
  /* Pseudo-random bytes stamped with the op index, so a wrong value in a failure message
   * tells which write produced it. */
  uint64_t state = rng_next(rng);
  for (size_t i = 0; i < len; i += 8) {
    uint64_t r = rng_next(&state);
    size_t n = len - i < 8 ? len - i : 8;
    memcpy(v->data + i, &r, n);
  }
  if (len >= 8)
    memcpy(v->data, &op, 8);
  return v;
}

static model_value *value_ref(model_value *v)
{
  if (v != NULL)
    v->refs++;
  return v;
}

static void value_unref(model_value *v)
{
  if (v != NULL && --v->refs == 0)
    free(v);
}

/* ---- the test's state -------------------------------------------------------------------------- */

typedef struct model_snapshot {
  const mayfly_snapshot *snap; /* NULL: slot free */
  model_value **vals;          /* NUM_KEYS, as of the snapshot */
  uint64_t created_op;
} model_snapshot;

typedef struct model_test {
  uint64_t seed, rng, op, num_ops;
  char path[1024];
  mayfly_options *opt;
  mayfly_db *db;
  model_key keys[NUM_KEYS];
  model_value *cur[NUM_KEYS];
  model_snapshot snaps[MAX_SNAPSHOTS];
  const char *op_name;
  uint64_t counts[16];
  double seconds[16]; /* wall time per kind of operation, to see where a slow run went */
} model_test;

enum {
  C_PUT, C_DELETE, C_BATCH, C_GET, C_GET_SNAP, C_ITER, C_ITER_SNAP, C_SNAP_CREATE,
  C_SNAP_RELEASE, C_FLUSH, C_COMPACT, C_REOPEN, C_FULL_SCAN, C_WAIT_IDLE, C_COUNT
};
static const char *const k_count_names[C_COUNT] = {
    "put", "delete", "batch", "get", "get@snapshot", "iterate", "iterate@snapshot",
    "snapshot create", "snapshot release", "flush", "compact_range", "reopen", "full scan",
    "wait_idle"};

/* Text for failure messages: printable bytes as is, others as \xNN; long texts cut. */
static void describe_bytes(const void *p, size_t len, char *out, size_t out_len)
{
  const unsigned char *b = p;
  size_t o = 0;
  for (size_t i = 0; i < len && o + 8 < out_len; i++) {
    if (i == 24) {
      o += (size_t)snprintf(out + o, out_len - o, "...");
      break;
    }
    if (b[i] >= 0x20 && b[i] < 0x7f && b[i] != '\\' && b[i] != '"')
      out[o++] = (char)b[i];
    else
      o += (size_t)snprintf(out + o, out_len - o, "\\x%02x", b[i]);
  }
  out[o] = '\0';
}

static void describe_key(const void *k, size_t len, char *out, size_t out_len)
{
  char text[160];
  describe_bytes(k, len, text, sizeof text);
  snprintf(out, out_len, "\"%s\" (%zu bytes)", text, len);
}

static void describe_value(const void *v, size_t len, char *out, size_t out_len)
{
  char text[160];
  uint64_t op = 0;
  if (v == NULL) {
    snprintf(out, out_len, "<absent>");
    return;
  }
  if (len >= 8)
    memcpy(&op, v, 8);
  describe_bytes(v, len, text, sizeof text);
  if (len >= 8)
    snprintf(out, out_len, "%zu bytes written by op %" PRIu64 " \"%s\"", len, op, text);
  else
    snprintf(out, out_len, "%zu bytes \"%s\"", len, text);
}

#define CHECK_RC(t, rc, what)                                                                 \
  do {                                                                                        \
    int rc_ = (rc);                                                                           \
    if (rc_ != MAYFLY_OK)                                                                     \
      fail_msg("seed %" PRIu64 " op %" PRIu64 " (%s): %s failed: %s: %s", (t)->seed, (t)->op, \
               (t)->op_name, what, mayfly_strerror(rc_),                                      \
               (t)->db != NULL ? mayfly_errmsg((t)->db) : "");                                \
  } while (0)

static void mismatch(model_test *t, const char *what, const void *key, size_t klen,
                     const model_value *want, const void *got, size_t got_len)
{
  char k[256], w[256], g[256];
  describe_key(key, klen, k, sizeof k);
  describe_value(want != NULL ? want->data : NULL, want != NULL ? want->len : 0, w, sizeof w);
  describe_value(got, got_len, g, sizeof g);
  fail_msg("seed %" PRIu64 " op %" PRIu64 " (%s): %s: key %s: expected %s, actual %s", t->seed,
           t->op, t->op_name, what, k, w, g);
}

static int values_equal(const model_value *want, const void *got, size_t got_len)
{
  if (want == NULL || got == NULL)
    return want == NULL && got == NULL;
  return want->len == got_len && (got_len == 0 || memcmp(want->data, got, got_len) == 0);
}

/* A copy of the current state (one new reference per present value). */
static model_value **state_copy(model_test *t)
{
  model_value **vals = malloc(sizeof *vals * NUM_KEYS);
  assert_non_null(vals);
  for (int i = 0; i < NUM_KEYS; i++)
    vals[i] = value_ref(t->cur[i]);
  return vals;
}

static void state_free(model_value **vals)
{
  for (int i = 0; i < NUM_KEYS; i++)
    value_unref(vals[i]);
  free(vals);
}

/* ---- setup: the key space, the database ---------------------------------------------------- */

static void make_keys(model_test *t)
{
  static const unsigned char alphabet[] = {0x00, 0x01, 'a', 'b', 'c', 'k', 0x7f, 0x80, 0xff};
  uint64_t rng = t->seed ^ 0x6b657973ull;
  /* Draw keys until NUM_KEYS distinct ones exist: sort, drop duplicates, draw again. */
  int have = 1;
  t->keys[0].len = 0; /* the empty key is always in the space */
  while (have < NUM_KEYS) {
    for (int i = have; i < NUM_KEYS; i++) {
      model_key *k = &t->keys[i];
      /* Mostly short keys, some up to the maximum. */
      k->len = rng_chance(&rng, 80) ? 1 + rng_below(&rng, 12) : 1 + rng_below(&rng, MAX_KEY_LEN);
      for (size_t j = 0; j < k->len; j++)
        k->bytes[j] = alphabet[rng_below(&rng, sizeof alphabet)];
    }
    qsort(t->keys, NUM_KEYS, sizeof t->keys[0], model_key_cmp);
    have = 1;
    for (int i = 1; i < NUM_KEYS; i++)
      if (model_key_cmp(&t->keys[i], &t->keys[have - 1]) != 0)
        t->keys[have++] = t->keys[i];
  }
}

/* Index of the first key in the space >= target (NUM_KEYS if none). */
static int lower_bound(const model_test *t, const void *target, size_t tlen)
{
  int lo = 0, hi = NUM_KEYS;
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2;
    if (key_compare(t->keys[mid].bytes, t->keys[mid].len, target, tlen) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static void db_open(model_test *t)
{
  CHECK_RC(t, mayfly_open(t->path, t->opt, &t->db), "open");
}

static void release_snapshot(model_test *t, int slot)
{
  model_snapshot *s = &t->snaps[slot];
  mayfly_snapshot_release(t->db, s->snap);
  state_free(s->vals);
  s->snap = NULL;
  s->vals = NULL;
}

/* A random live snapshot slot, or -1 when there is none. */
static int pick_snapshot(model_test *t)
{
  int live[MAX_SNAPSHOTS], n = 0;
  for (int i = 0; i < MAX_SNAPSHOTS; i++)
    if (t->snaps[i].snap != NULL)
      live[n++] = i;
  return n == 0 ? -1 : live[rng_below(&t->rng, (uint32_t)n)];
}

/* ---- operations ------------------------------------------------------------------------------ */

static size_t random_value_len(model_test *t)
{
  uint32_t r = rng_below(&t->rng, 1000);
  if (r < 5)
    return 2000 + rng_below(&t->rng, BIG_VALUE_MAX - 2000 + 1); /* 0.5%: big */
  if (r < 150)
    return rng_below(&t->rng, 17); /* tiny, including empty */
  return rng_below(&t->rng, 2001);
}

static unsigned random_write_flags(model_test *t)
{
  return rng_chance(&t->rng, 1) ? MAYFLY_SYNC : 0;
}

static void op_put(model_test *t)
{
  int ki = (int)rng_below(&t->rng, NUM_KEYS);
  model_value *v = value_new(&t->rng, t->op, random_value_len(t));
  assert_non_null(v);
  const model_key *k = &t->keys[ki];
  CHECK_RC(t, mayfly_put(t->db, k->bytes, k->len, v->data, v->len, random_write_flags(t)), "put");
  value_unref(t->cur[ki]);
  t->cur[ki] = v;
}

static void op_delete(model_test *t)
{
  int ki = (int)rng_below(&t->rng, NUM_KEYS);
  const model_key *k = &t->keys[ki];
  CHECK_RC(t, mayfly_delete(t->db, k->bytes, k->len, random_write_flags(t)), "delete");
  value_unref(t->cur[ki]);
  t->cur[ki] = NULL;
}

/* A batch of puts and deletes, often hitting the same key twice (the later one wins). */
static void op_batch(model_test *t, mayfly_batch *b)
{
  enum { MAX_BATCH = 16 };
  int kis[MAX_BATCH];
  model_value *vals[MAX_BATCH];
  int n = (int)rng_below(&t->rng, MAX_BATCH + 1);
  int hot = (int)rng_below(&t->rng, NUM_KEYS);
  mayfly_batch_clear(b);
  for (int i = 0; i < n; i++) {
    kis[i] = rng_chance(&t->rng, 15) ? hot : (int)rng_below(&t->rng, NUM_KEYS);
    const model_key *k = &t->keys[kis[i]];
    if (rng_chance(&t->rng, 70)) {
      vals[i] = value_new(&t->rng, t->op, random_value_len(t));
      assert_non_null(vals[i]);
      CHECK_RC(t, mayfly_batch_put(b, k->bytes, k->len, vals[i]->data, vals[i]->len),
               "batch_put");
    } else {
      vals[i] = NULL;
      CHECK_RC(t, mayfly_batch_delete(b, k->bytes, k->len), "batch_delete");
    }
  }
  if (mayfly_batch_count(b) != (size_t)n)
    fail_msg("seed %" PRIu64 " op %" PRIu64 ": batch_count %zu, expected %d", t->seed, t->op,
             mayfly_batch_count(b), n);
  CHECK_RC(t, mayfly_write(t->db, b, random_write_flags(t)), "write");
  for (int i = 0; i < n; i++) {
    value_unref(t->cur[kis[i]]);
    t->cur[kis[i]] = vals[i];
  }
}

static void check_get(model_test *t, const mayfly_snapshot *snap, model_value **vals,
                      const char *what)
{
  const void *key;
  size_t klen;
  const model_value *want = NULL;
  unsigned char outside[MAX_KEY_LEN + 1];
  if (rng_chance(&t->rng, 5)) {
    /* A key that is (most likely) not in the space: must be absent, unless it is. */
    klen = 1 + rng_below(&t->rng, MAX_KEY_LEN);
    for (size_t i = 0; i < klen; i++)
      outside[i] = (unsigned char)rng_next(&t->rng);
    key = outside;
    int ki = lower_bound(t, outside, klen);
    if (ki < NUM_KEYS && key_compare(t->keys[ki].bytes, t->keys[ki].len, outside, klen) == 0)
      want = vals[ki];
  } else {
    int ki = (int)rng_below(&t->rng, NUM_KEYS);
    key = t->keys[ki].bytes;
    klen = t->keys[ki].len;
    want = vals[ki];
  }
  void *got = (void *)&got; /* poison: must become NULL on ENOTFOUND */
  size_t got_len = 12345;
  int rc = mayfly_get(t->db, snap, key, klen, &got, &got_len);
  if (rc == MAYFLY_ENOTFOUND) {
    if (got != NULL)
      fail_msg("seed %" PRIu64 " op %" PRIu64 ": get returned ENOTFOUND with *val != NULL",
               t->seed, t->op);
    got = NULL;
    got_len = 0;
  } else {
    CHECK_RC(t, rc, what);
  }
  if (!values_equal(want, got, got_len))
    mismatch(t, what, key, klen, want, got, got_len);
  mayfly_free(got);
}

/* Next present key index after pos in direction dir (+1/-1); -1 or NUM_KEYS when none. */
static int model_step(model_value **vals, int pos, int dir)
{
  for (pos += dir; pos >= 0 && pos < NUM_KEYS; pos += dir)
    if (vals[pos] != NULL)
      return pos;
  return pos < 0 ? -1 : NUM_KEYS;
}

static void check_position(model_test *t, mayfly_iter *it, model_value **vals, int pos,
                           const char *what)
{
  int want_valid = pos >= 0 && pos < NUM_KEYS;
  int valid = mayfly_iter_valid(it);
  if (!valid)
    CHECK_RC(t, mayfly_iter_status(it), "iterator status");
  if (valid && want_valid) {
    size_t klen = 0, vlen = 0;
    const void *key = mayfly_iter_key(it, &klen);
    const model_key *k = &t->keys[pos];
    if (key_compare(key, klen, k->bytes, k->len) != 0) {
      char wk[256], gk[256];
      describe_key(k->bytes, k->len, wk, sizeof wk);
      describe_key(key, klen, gk, sizeof gk);
      fail_msg("seed %" PRIu64 " op %" PRIu64 " (%s): %s: expected key %s, actual key %s",
               t->seed, t->op, t->op_name, what, wk, gk);
    }
    const void *val = mayfly_iter_value(it, &vlen);
    if (val == NULL)
      CHECK_RC(t, mayfly_iter_status(it), "iterator value");
    if (!values_equal(vals[pos], val, vlen))
      mismatch(t, what, key, klen, vals[pos], val, vlen);
  } else if (valid != want_valid) {
    char k[256] = "<end>";
    if (valid) {
      size_t klen = 0;
      const void *key = mayfly_iter_key(it, &klen);
      describe_key(key, klen, k, sizeof k);
    } else {
      describe_key(t->keys[pos].bytes, t->keys[pos].len, k, sizeof k);
    }
    fail_msg("seed %" PRIu64 " op %" PRIu64 " (%s): %s: iterator %s, expected %s (key %s)",
             t->seed, t->op, t->op_name, what, valid ? "valid" : "invalid",
             want_valid ? "valid" : "invalid", k);
  }
}

/* Positions an iterator randomly, then walks it up to 60 steps, mostly in one direction,
 * sometimes turning. vals is the state the iterator must see; writes may happen meanwhile
 * (only for iterators on the latest state) and must stay invisible to it. */
static void check_iteration(model_test *t, const mayfly_snapshot *snap, model_value **vals,
                            int interleave_writes)
{
  mayfly_iter *it = NULL;
  CHECK_RC(t, mayfly_iter_create(t->db, snap, &it), "iter_create");
  int pos, dir;
  uint32_t how = rng_below(&t->rng, 10);
  const char *what;
  if (how == 0) {
    mayfly_iter_seek_to_first(it);
    pos = model_step(vals, -1, +1);
    dir = +1;
    what = "seek_to_first";
  } else if (how == 1) {
    mayfly_iter_seek_to_last(it);
    pos = model_step(vals, NUM_KEYS, -1);
    dir = -1;
    what = "seek_to_last";
  } else {
    unsigned char target[MAX_KEY_LEN + 2];
    size_t tlen;
    if (rng_chance(&t->rng, 70)) {
      /* A key of the space, sometimes with a byte appended (just after it). */
      const model_key *k = &t->keys[rng_below(&t->rng, NUM_KEYS)];
      memcpy(target, k->bytes, k->len);
      tlen = k->len;
      if (rng_chance(&t->rng, 30))
        target[tlen++] = (unsigned char)rng_next(&t->rng);
    } else {
      tlen = rng_below(&t->rng, MAX_KEY_LEN + 1);
      for (size_t i = 0; i < tlen; i++)
        target[i] = (unsigned char)rng_next(&t->rng);
    }
    mayfly_iter_seek(it, target, tlen);
    pos = model_step(vals, lower_bound(t, target, tlen) - 1, +1);
    dir = rng_chance(&t->rng, 50) ? +1 : -1;
    what = "seek";
  }
  check_position(t, it, vals, pos, what);
  int steps = (int)rng_below(&t->rng, 61);
  for (int s = 0; s < steps && pos >= 0 && pos < NUM_KEYS; s++) {
    if (interleave_writes && rng_chance(&t->rng, 10)) {
      if (rng_chance(&t->rng, 70))
        op_put(t);
      else
        op_delete(t);
    }
    if (rng_chance(&t->rng, 10))
      dir = -dir;
    if (dir > 0) {
      mayfly_iter_next(it);
      what = "next";
    } else {
      mayfly_iter_prev(it);
      what = "prev";
    }
    pos = model_step(vals, pos, dir);
    check_position(t, it, vals, pos, what);
  }
  mayfly_iter_destroy(it);
}

/* Every entry, forwards then backwards, against the current state. */
static void check_full_scan(model_test *t)
{
  const char *saved = t->op_name;
  t->op_name = "full scan";
  mayfly_iter *it = NULL;
  CHECK_RC(t, mayfly_iter_create(t->db, NULL, &it), "iter_create");
  mayfly_iter_seek_to_first(it);
  int pos = model_step(t->cur, -1, +1);
  check_position(t, it, t->cur, pos, "forward scan");
  while (pos < NUM_KEYS) {
    mayfly_iter_next(it);
    pos = model_step(t->cur, pos, +1);
    check_position(t, it, t->cur, pos, "forward scan");
  }
  mayfly_iter_seek_to_last(it);
  pos = model_step(t->cur, NUM_KEYS, -1);
  check_position(t, it, t->cur, pos, "backward scan");
  while (pos >= 0) {
    mayfly_iter_prev(it);
    pos = model_step(t->cur, pos, -1);
    check_position(t, it, t->cur, pos, "backward scan");
  }
  mayfly_iter_destroy(it);
  t->op_name = saved;
}

static void op_snapshot_create(model_test *t)
{
  int slot = -1;
  for (int i = 0; i < MAX_SNAPSHOTS && slot < 0; i++)
    if (t->snaps[i].snap == NULL)
      slot = i;
  if (slot < 0) {
    slot = (int)rng_below(&t->rng, MAX_SNAPSHOTS);
    release_snapshot(t, slot);
  }
  model_snapshot *s = &t->snaps[slot];
  CHECK_RC(t, mayfly_snapshot_create(t->db, &s->snap), "snapshot_create");
  s->vals = state_copy(t);
  s->created_op = t->op;
}

static void op_compact_range(model_test *t)
{
  const model_key *a = &t->keys[rng_below(&t->rng, NUM_KEYS)];
  const model_key *b = &t->keys[rng_below(&t->rng, NUM_KEYS)];
  if (model_key_cmp(a, b) > 0) {
    const model_key *tmp = a;
    a = b;
    b = tmp;
  }
  int open_begin = rng_chance(&t->rng, 25), open_end = rng_chance(&t->rng, 25);
  CHECK_RC(t,
           mayfly_compact_range(t->db, open_begin ? NULL : a->bytes, open_begin ? 0 : a->len,
                                open_end ? NULL : b->bytes, open_end ? 0 : b->len),
           "compact_range");
}

static void op_reopen(model_test *t)
{
  /* Snapshots do not survive a close; their model states go with them. */
  for (int i = 0; i < MAX_SNAPSHOTS; i++)
    if (t->snaps[i].snap != NULL)
      release_snapshot(t, i);
  CHECK_RC(t, mayfly_close(t->db), "close");
  t->db = NULL;
  db_open(t);
  check_full_scan(t);
}

/* One random operation; returns its kind (C_*). The weights are per mille. */
static int run_one(model_test *t, mayfly_batch *b)
{
  uint32_t r = rng_below(&t->rng, 1000);
  int slot;
  if (r < 335) {
    t->op_name = "put";
    op_put(t);
    return C_PUT;
  } else if (r < 435) {
    t->op_name = "delete";
    op_delete(t);
    return C_DELETE;
  } else if (r < 485) {
    t->op_name = "batch";
    op_batch(t, b);
    return C_BATCH;
  } else if (r < 740) {
    slot = rng_chance(&t->rng, 30) ? pick_snapshot(t) : -1;
    t->op_name = slot >= 0 ? "get@snapshot" : "get";
    check_get(t, slot >= 0 ? t->snaps[slot].snap : NULL, slot >= 0 ? t->snaps[slot].vals : t->cur,
              t->op_name);
    return slot >= 0 ? C_GET_SNAP : C_GET;
  } else if (r < 980) {
    slot = rng_chance(&t->rng, 30) ? pick_snapshot(t) : -1;
    if (slot >= 0) {
      t->op_name = "iterate@snapshot";
      /* Writes during the walk must not show through the snapshot either. */
      check_iteration(t, t->snaps[slot].snap, t->snaps[slot].vals, rng_chance(&t->rng, 30));
      return C_ITER_SNAP;
    } else {
      t->op_name = "iterate";
      model_value **vals = state_copy(t);
      check_iteration(t, NULL, vals, rng_chance(&t->rng, 30));
      state_free(vals);
      return C_ITER;
    }
  } else if (r < 987) {
    t->op_name = "snapshot create";
    op_snapshot_create(t);
    return C_SNAP_CREATE;
  } else if (r < 991) {
    t->op_name = "snapshot release";
    slot = pick_snapshot(t);
    if (slot >= 0)
      release_snapshot(t, slot);
    return C_SNAP_RELEASE;
  } else if (r < 995) {
    t->op_name = "flush";
    CHECK_RC(t, mayfly_flush(t->db), "flush");
    return C_FLUSH;
  } else if (r < 996) {
    t->op_name = "compact_range";
    op_compact_range(t);
    return C_COMPACT;
  } else if (r < 997) {
    t->op_name = "wait_idle";
    CHECK_RC(t, mayfly_wait_idle(t->db), "wait_idle");
    return C_WAIT_IDLE;
  } else if (r < 998) {
    t->op_name = "close and reopen";
    op_reopen(t);
    return C_REOPEN;
  } else {
    t->op_name = "full scan";
    check_full_scan(t);
    return C_FULL_SCAN;
  }
}

static uint64_t env_u64(const char *name, uint64_t fallback)
{
  const char *s = getenv(name);
  if (s == NULL || *s == '\0')
    return fallback;
  char *end = NULL;
  unsigned long long v = strtoull(s, &end, 0);
  if (end == s || *end != '\0')
    fail_msg("environment variable %s=\"%s\" is not a number", name, s);
  return v;
}

static void test_model_random_ops(void **state)
{
  model_test *t = calloc(1, sizeof *t);
  assert_non_null(t);
  t->seed = env_u64("MAYFLY_SEED", (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20));
  t->num_ops = env_u64("MAYFLY_MODEL_OPS", DEFAULT_OPS);
  t->rng = t->seed;
  printf("test_model: seed %" PRIu64 " (replay with MAYFLY_SEED=%" PRIu64 "), %" PRIu64
         " ops\n",
         t->seed, t->seed, t->num_ops);
  fflush(stdout);

  const char *tmp = getenv("MAYFLY_TEST_TMP");
  if (tmp == NULL || *tmp == '\0')
    tmp = "/tmp";
  if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
    fail_msg("mkdir %s: %s", tmp, strerror(errno));
  snprintf(t->path, sizeof t->path, "%s/model-%d-%" PRIu64, tmp, (int)getpid(), t->seed);
  make_keys(t);

  CHECK_RC(t, mayfly_options_create(&t->opt), "options_create");
  CHECK_RC(t, mayfly_options_parse(t->opt, k_options), "options_parse");
  /* Extra options for variants of this test (CTest runs one with aggressive blob GC). */
  /* Pairs may be separated by ',' (CTest's environment lists cannot hold ';'). */
  const char *extra = getenv("MAYFLY_MODEL_OPTIONS");
  if (extra && *extra) {
    char spec[1024];
    snprintf(spec, sizeof spec, "%s", extra);
    for (char *p = spec; *p; p++)
      if (*p == ',') *p = ';';
    print_message("extra options: %s\n", spec);
    CHECK_RC(t, mayfly_options_parse(t->opt, spec), "options_parse(MAYFLY_MODEL_OPTIONS)");
  }
  CHECK_RC(t, mayfly_destroy(t->path), "destroy");
  db_open(t);
  mayfly_batch *b = NULL;
  CHECK_RC(t, mayfly_batch_create(&b), "batch_create");

  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (t->op = 0; t->op < t->num_ops; t->op++) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int kind = run_one(t, b);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    t->counts[kind]++;
    t->seconds[kind] += (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
  }
  t->op_name = "final check";
  check_full_scan(t);
  for (int i = 0; i < MAX_SNAPSHOTS; i++)
    if (t->snaps[i].snap != NULL)
      release_snapshot(t, i);
  /* The last check: everything survives a close. */
  op_reopen(t);
  clock_gettime(CLOCK_MONOTONIC, &end);

  char *stats = NULL;
  if (mayfly_property(t->db, "mayfly.stats", &stats) == MAYFLY_OK && stats != NULL) {
    printf("%s\n", stats);
    mayfly_free(stats);
  }
  mayfly_batch_destroy(b);
  CHECK_RC(t, mayfly_close(t->db), "close");
  t->db = NULL;
  CHECK_RC(t, mayfly_destroy(t->path), "destroy");
  rmdir(t->path); /* in case destroy leaves the empty directory */
  mayfly_options_destroy(t->opt);

  int live = 0;
  for (int i = 0; i < NUM_KEYS; i++) {
    live += t->cur[i] != NULL;
    value_unref(t->cur[i]);
  }
  printf("test_model: %" PRIu64 " ops in %.1f s, %d live keys at the end:", t->num_ops,
         (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) * 1e-9,
         live);
  for (int c = 0; c < C_COUNT; c++)
    printf(" %s %" PRIu64 " (%.1f s),", k_count_names[c], t->counts[c], t->seconds[c]);
  printf("\n");
  free(t);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_model_random_ops),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
