/* Fuzz target: the whole engine, driven by an operation sequence and checked against a map.
 *
 * The input is a program: a header byte (compression, filter, sync, and whether the empty
 * key is passed as NULL), then one operation per byte or few bytes: put, delete, get, an
 * atomic batch, an iteration (full forward, full backward, or a seek followed by a walk of
 * next/prev), flush, compact_range, wait_idle, and close + reopen. It runs on a fresh
 * database in an in-memory env with tiny buffers (64 KiB memtable, L0 trigger 2, 64 KiB
 * target files, 1 KiB blocks), so a few operations with large values or explicit flushes
 * cross flushes, compactions and several levels; values up to ~25 KiB reach blob files
 * when the engine separates large values. At most MAX_OPS (32) operations run per input.
 *
 * The model is the expected contents: one optional value for each of NUM_KEYS keys. Keys
 * are short strings over {0x00, 'a', 'b', 0xff} (the empty key included) plus some 300-byte
 * keys sharing a long prefix, so the bytewise order, prefix compression and key shortening
 * in index blocks all matter. Every read (get, every iterator position, key and value) is
 * compared with the model, every call must succeed, and anything else aborts with the
 * operation index. At the end a full forward scan (which also proves that no other key
 * exists) and a get of every key the program wrote or deleted run before the database is
 * closed.
 *
 * Changes for speed (2026-11-22; docs/fuzzing.md): at most 32 operations per input instead
 * of 2000, and the final gets cover the keys the program touched instead of all 96 keys (a
 * key never written can only be wrong by appearing, which the final scan catches; gets of
 * never-written keys still run as operations). Same input format, same model and checks
 * per operation. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/options.h"
#include "fuzz_util.h"

#define NUM_SHORT 64
#define NUM_KEYS 96
#define LONG_KEY_PAD 300
/* Operations per input. Each input opens a fresh database, and under ASan an operation
 * costs ~10-30 us (put, get, delete) to ~0.4 ms (flush, iteration) and ~0.7-1.5 ms
 * (compact_range, reopen), plus ~1-2 ms for open, final check and close; 32 operations keep
 * an execution at a few milliseconds (~250 exec/s under libFuzzer instead of ~4). The
 * fuzzer covers long histories through many short ones: flush and compaction are 1/32 of
 * the operations each, and 25 KiB values fill a 64 KiB memtable in three puts. Was 2000
 * before 2026-11-22; the input format did not change, longer inputs just stop here (the
 * checked-in corpus still replays, mostly as prefixes). */
#define MAX_OPS 32
#define MAX_VALUE (4096 + 15 * 1400)
#define DBPATH "/db"

static const char k_options[] =
    "write_buffer_size=64KiB;level0_file_num_compaction_trigger=2;"
    "target_file_size_base=64KiB;max_bytes_for_level_base=1MiB;"
    "max_bytes_for_level_multiplier=4;block_size=1KiB;block_cache_size=256KiB;"
    "max_open_files=20";

typedef struct key_space {
  mf_buf key[NUM_KEYS];
  int rank_to_id[NUM_KEYS]; /* ids in the engine's (bytewise) order */
  int id_to_rank[NUM_KEYS];
} key_space;

static key_space ks;
static int ks_ready;

static void key_make(int id, mf_buf *out) {
  static const char alphabet[4] = {0x00, 'a', 'b', (char)0xff};
  out->len = 0;
  int v = id < NUM_SHORT ? id : id - NUM_SHORT;
  if (id >= NUM_SHORT) {
    if (mf_buf_append(out, "k", 1)) abort();
    for (int i = 0; i < LONG_KEY_PAD; i++)
      if (mf_buf_append(out, "p", 1)) abort();
  }
  for (; v; v /= 4)
    if (mf_buf_append(out, &alphabet[v % 4], 1)) abort();
}

static const key_space *keys(void) {
  if (ks_ready) return &ks;
  for (int i = 0; i < NUM_KEYS; i++) {
    key_make(i, &ks.key[i]);
    ks.rank_to_id[i] = i;
  }
  for (int i = 1; i < NUM_KEYS; i++) /* insertion sort by key: 96 keys, once */
    for (int j = i; j > 0; j--) {
      int a = ks.rank_to_id[j - 1], b = ks.rank_to_id[j];
      if (mf_slice_compare(mf_buf_slice(&ks.key[a]), mf_buf_slice(&ks.key[b])) <= 0) break;
      ks.rank_to_id[j - 1] = b;
      ks.rank_to_id[j] = a;
    }
  for (int r = 0; r < NUM_KEYS; r++) ks.id_to_rank[ks.rank_to_id[r]] = r;
  ks_ready = 1;
  return &ks;
}

typedef struct model {
  int present[NUM_KEYS];
  mf_buf value[NUM_KEYS];
} model;

typedef struct run {
  mf_env *env;
  mayfly_db *db;
  struct mayfly_options opt;
  model m;
  int op; /* index of the operation running, for messages */
  unsigned write_flags;
  int null_empty_key; /* pass the empty key as (NULL, 0) rather than ("", 0) */
  int touched[NUM_KEYS]; /* written or deleted by the program: the final gets check these */
  mf_buf scratch;
} run;

/* The API accepts (NULL, 0) as the empty key; the header byte decides whether the run uses
 * it. FUZZ_OPS_NO_NULL_KEYS turns that off (docs/fuzzing.md: it was used for long runs while
 * a NULL-key bug was open). */
static const char *key_data(const run *r, const mf_buf *k) {
  if (k->len) return k->data;
#ifdef FUZZ_OPS_NO_NULL_KEYS
  (void)r;
  return "";
#else
  return r->null_empty_key ? NULL : "";
#endif
}

#define CHECK_OK(r, rc, what)                                                              \
  FUZZ_CHECK((rc) == MAYFLY_OK, "op %d: %s returned %d (%s): %s", (r)->op, what, (rc),       \
             mayfly_strerror(rc), (r)->db ? mayfly_errmsg((r)->db) : "")

static void open_db(run *r) {
  int rc = mayfly_open(DBPATH, &r->opt, &r->db);
  CHECK_OK(r, rc, "mayfly_open");
}

static void close_db(run *r) {
  int rc = mayfly_close(r->db);
  r->db = NULL;
  CHECK_OK(r, rc, "mayfly_close");
}

/* A value for (op, key): its length from sel, contents tagged with the op index so that
 * overwrites are distinguishable. */
static void make_value(run *r, uint8_t sel, int id, mf_buf *out) {
  /* Byte i is 'A' + i % 23 after the tag; copied from a pattern made once, because a byte
   * loop over up to 25 KiB is slow under coverage instrumentation. */
  static char pattern[MAX_VALUE];
  if (!pattern[0])
    for (size_t i = 0; i < sizeof pattern; i++) pattern[i] = (char)('A' + i % 23);
  size_t len;
  if (sel < 160) len = sel % 40;
  else if (sel < 240) len = 200 + (size_t)(sel - 160) * 20; /* around the blob threshold */
  else len = 4096 + (size_t)(sel - 240) * 1400;             /* up to ~25 KiB */
  char tag[32];
  int n = snprintf(tag, sizeof tag, "%d:%d:", r->op, id);
  out->len = 0;
  if (mf_buf_reserve(out, len + sizeof tag)) abort();
  memcpy(out->data, pattern, len);
  memcpy(out->data, tag, (size_t)n < len ? (size_t)n : len);
  out->len = len;
}

static void model_put(model *m, int id, mf_slice v) {
  m->present[id] = 1;
  if (mf_buf_set(&m->value[id], v.data, v.len)) abort();
}

static void do_put(run *r, fuzz_in *in) {
  int id = fuzz_u8(in) % NUM_KEYS;
  make_value(r, fuzz_u8(in), id, &r->scratch);
  const mf_buf *k = &keys()->key[id];
  r->touched[id] = 1;
  int rc = mayfly_put(r->db, key_data(r, k), k->len, r->scratch.data, r->scratch.len, r->write_flags);
  CHECK_OK(r, rc, "mayfly_put");
  model_put(&r->m, id, mf_buf_slice(&r->scratch));
}

static void do_delete(run *r, fuzz_in *in) {
  int id = fuzz_u8(in) % NUM_KEYS;
  const mf_buf *k = &keys()->key[id];
  r->touched[id] = 1;
  int rc = mayfly_delete(r->db, key_data(r, k), k->len, r->write_flags);
  CHECK_OK(r, rc, "mayfly_delete");
  r->m.present[id] = 0;
}

static void check_get(run *r, int id) {
  const mf_buf *k = &keys()->key[id];
  void *val = NULL;
  size_t vlen = 0;
  int rc = mayfly_get(r->db, NULL, key_data(r, k), k->len, &val, &vlen);
  if (r->m.present[id]) {
    CHECK_OK(r, rc, "mayfly_get of a present key");
    FUZZ_CHECK(mf_slice_equal(mf_slice_make(val, vlen), mf_buf_slice(&r->m.value[id])),
               "op %d: get of key %d returned a %zu-byte value, expected %zu bytes", r->op, id,
               vlen, r->m.value[id].len);
  } else {
    FUZZ_CHECK(rc == MAYFLY_ENOTFOUND && val == NULL,
               "op %d: get of absent key %d returned %d (%zu bytes): %s", r->op, id, rc, vlen,
               mayfly_errmsg(r->db));
  }
  mayfly_free(val);
}

static void do_batch(run *r, fuzz_in *in) {
  mayfly_batch *b = NULL;
  int rc = mayfly_batch_create(&b);
  CHECK_OK(r, rc, "mayfly_batch_create");
  int n = 1 + fuzz_u8(in) % 8;
  model staged = {{0}, {MF_BUF_INIT}};
  int touched[NUM_KEYS] = {0};
  for (int i = 0; i < n; i++) {
    uint8_t sel = fuzz_u8(in);
    int id = fuzz_u8(in) % NUM_KEYS;
    const mf_buf *k = &keys()->key[id];
    touched[id] = 1;
    if (sel & 1) {
      make_value(r, sel, id, &r->scratch);
      rc = mayfly_batch_put(b, key_data(r, k), k->len, r->scratch.data, r->scratch.len);
      model_put(&staged, id, mf_buf_slice(&r->scratch));
    } else {
      rc = mayfly_batch_delete(b, key_data(r, k), k->len);
      staged.present[id] = 0;
    }
    CHECK_OK(r, rc, "mayfly_batch_put/delete");
  }
  FUZZ_CHECK(mayfly_batch_count(b) == (size_t)n, "op %d: batch count %zu, expected %d", r->op,
             mayfly_batch_count(b), n);
  rc = mayfly_write(r->db, b, r->write_flags);
  CHECK_OK(r, rc, "mayfly_write");
  for (int id = 0; id < NUM_KEYS; id++) {
    if (!touched[id]) continue;
    r->touched[id] = 1;
    if (staged.present[id]) model_put(&r->m, id, mf_buf_slice(&staged.value[id]));
    else r->m.present[id] = 0;
  }
  for (int id = 0; id < NUM_KEYS; id++) mf_buf_free(&staged.value[id]);
  mayfly_batch_destroy(b);
}

/* Rank of the first present key at or after rank (NUM_KEYS if none), or before (-1). */
static int next_present(const model *m, int rank) {
  for (; rank < NUM_KEYS; rank++)
    if (m->present[keys()->rank_to_id[rank]]) return rank;
  return NUM_KEYS;
}
static int prev_present(const model *m, int rank) {
  for (; rank >= 0; rank--)
    if (m->present[keys()->rank_to_id[rank]]) return rank;
  return -1;
}

static void expect_iter(run *r, mayfly_iter *it, int rank, const char *what) {
  if (rank < 0 || rank >= NUM_KEYS) {
    FUZZ_CHECK(!mayfly_iter_valid(it), "op %d: %s: iterator valid past the end", r->op, what);
    int st = mayfly_iter_status(it);
    CHECK_OK(r, st, "iterator status at the end");
    return;
  }
  int id = keys()->rank_to_id[rank];
  FUZZ_CHECK(mayfly_iter_valid(it), "op %d: %s: iterator invalid (status %d), expected key %d",
             r->op, what, mayfly_iter_status(it), id);
  size_t klen = 0, vlen = 0;
  const void *k = mayfly_iter_key(it, &klen);
  FUZZ_CHECK(mf_slice_equal(mf_slice_make(k, klen), mf_buf_slice(&keys()->key[id])),
             "op %d: %s: iterator at the wrong key (%zu bytes), expected key %d", r->op, what,
             klen, id);
  const void *v = mayfly_iter_value(it, &vlen);
  FUZZ_CHECK(v != NULL && mf_slice_equal(mf_slice_make(v, vlen), mf_buf_slice(&r->m.value[id])),
             "op %d: %s: key %d has a wrong value (%zu bytes, expected %zu; status %d)", r->op,
             what, id, vlen, r->m.value[id].len, mayfly_iter_status(it));
}

static void do_iterate(run *r, fuzz_in *in) {
  mayfly_iter *it = NULL;
  int rc = mayfly_iter_create(r->db, NULL, &it);
  CHECK_OK(r, rc, "mayfly_iter_create");
  uint8_t how = fuzz_u8(in);
  int rank;
  switch (how % 3) {
    case 0: /* full forward */
      mayfly_iter_seek_to_first(it);
      for (rank = next_present(&r->m, 0); rank < NUM_KEYS; rank = next_present(&r->m, rank + 1)) {
        expect_iter(r, it, rank, "forward scan");
        mayfly_iter_next(it);
      }
      expect_iter(r, it, NUM_KEYS, "forward scan end");
      break;
    case 1: /* full backward */
      mayfly_iter_seek_to_last(it);
      for (rank = prev_present(&r->m, NUM_KEYS - 1); rank >= 0;
           rank = prev_present(&r->m, rank - 1)) {
        expect_iter(r, it, rank, "backward scan");
        mayfly_iter_prev(it);
      }
      expect_iter(r, it, -1, "backward scan end");
      break;
    default: { /* seek (to a key of the space, present or not), then a walk */
      int id = fuzz_u8(in) % NUM_KEYS;
      const mf_buf *k = &keys()->key[id];
      mayfly_iter_seek(it, key_data(r, k), k->len);
      rank = next_present(&r->m, keys()->id_to_rank[id]);
      expect_iter(r, it, rank, "seek");
      uint8_t steps = fuzz_u8(in), nsteps = fuzz_u8(in) % 9;
      for (int s = 0; s < nsteps && rank >= 0 && rank < NUM_KEYS; s++) {
        if ((steps >> s) & 1) {
          mayfly_iter_next(it);
          rank = next_present(&r->m, rank + 1);
        } else {
          mayfly_iter_prev(it);
          rank = prev_present(&r->m, rank - 1);
        }
        expect_iter(r, it, rank, "walk");
      }
    }
  }
  mayfly_iter_destroy(it);
}

static void do_compact(run *r, fuzz_in *in) {
  uint8_t a = fuzz_u8(in), b = fuzz_u8(in);
  const mf_buf *ka = &keys()->key[a % NUM_KEYS], *kb = &keys()->key[b % NUM_KEYS];
  int rc = mayfly_compact_range(r->db, (a & 0x80) ? NULL : key_data(r, ka), (a & 0x80) ? 0 : ka->len,
                                (b & 0x80) ? NULL : key_data(r, kb), (b & 0x80) ? 0 : kb->len);
  CHECK_OK(r, rc, "mayfly_compact_range");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_in in = fuzz_in_make(data, size);
  run r;
  memset(&r, 0, sizeof r);
  r.scratch = (mf_buf)MF_BUF_INIT;
  r.env = fuzz_mem_env();
  options_init_defaults(&r.opt);
  int rc = mayfly_options_parse(&r.opt, k_options);
  FUZZ_CHECK(rc == MAYFLY_OK, "fuzz_ops options do not parse: %s", mf_error_message());
  uint8_t header = fuzz_u8(&in);
  static const char *const compression[] = {"none", "lz4", "zstd", "none"};
  rc = mayfly_options_set(&r.opt, "compression", compression[header % 4]);
  FUZZ_CHECK(rc == MAYFLY_OK, "setting compression failed");
  rc = mayfly_options_set(&r.opt, "bloom_bits_per_key", (header & 4) ? "0" : "10");
  FUZZ_CHECK(rc == MAYFLY_OK, "setting bloom_bits_per_key failed");
  r.write_flags = (header & 8) ? MAYFLY_SYNC : 0;
  r.null_empty_key = (header & 0x10) != 0;
  options_set_env(&r.opt, r.env);
  r.op = -1;
  open_db(&r);

  for (r.op = 0; r.op < MAX_OPS && in.n > 0; r.op++) {
    uint8_t op = fuzz_u8(&in);
    /* Cheap operations dominate; flush, compaction and waiting are 1/32 each and a reopen
     * 1/256, so an input of a few hundred operations still crosses several of each. */
    switch (op % 32) {
      case 27: CHECK_OK(&r, mayfly_flush(r.db), "mayfly_flush"); break;
      case 28: do_compact(&r, &in); break;
      case 29:
        if (op < 32) {
          close_db(&r);
          open_db(&r);
        } else {
          check_get(&r, fuzz_u8(&in) % NUM_KEYS);
        }
        break;
      case 30: CHECK_OK(&r, mayfly_wait_idle(r.db), "mayfly_wait_idle"); break;
      default:
        if (op % 32 < 12) do_put(&r, &in);
        else if (op % 32 < 16) do_delete(&r, &in);
        else if (op % 32 < 21) check_get(&r, fuzz_u8(&in) % NUM_KEYS);
        else if (op % 32 < 23) do_batch(&r, &in);
        else if (op % 32 < 27) do_iterate(&r, &in);
        else do_put(&r, &in);
        break;
    }
  }
  /* The end state, read through a full scan (which also proves no other key exists) and
   * through gets of every key the program wrote or deleted. */
  fuzz_in none = fuzz_in_make(NULL, 0); /* how = 0: full forward */
  do_iterate(&r, &none);
  for (int id = 0; id < NUM_KEYS; id++)
    if (r.touched[id]) check_get(&r, id);
  close_db(&r);
  for (int id = 0; id < NUM_KEYS; id++) mf_buf_free(&r.m.value[id]);
  mf_buf_free(&r.scratch);
  r.env->destroy(r.env);
  return 0;
}
