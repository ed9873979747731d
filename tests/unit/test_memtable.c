/* Memtable tests: versions and deletes seen at different snapshots, iterator order over
 * internal keys, seek, empty keys, long keys and large values, counters, reference counting,
 * and a randomized comparison against a simple reference model. Randomized: prints its seed;
 * set MAYFLY_TEST_SEED to replay. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mayfly.h"
#include "mem/memtable.h"
#include "table/iterator.h"
#include "util/ikey.h"
#include "util/random.h"
#include "util/slice.h"

static uint64_t seed;

static mf_slice S(const char *s) { return mf_slice_cstr(s); }

/* Expects memtable_get(key, snap) to find (type, seq, value). */
static void expect_get(memtable *m, mf_slice key, uint64_t snap, int type, uint64_t seq,
                       const char *value) {
  mf_buf v = MF_BUF_INIT;
  int got_type = -1;
  uint64_t got_seq = 0;
  assert_int_equal(memtable_get(m, key, snap, &got_type, &got_seq, &v), MAYFLY_OK);
  assert_int_equal(got_type, type);
  assert_true(got_seq == seq);
  if (type != MF_TYPE_DELETE) {
    assert_int_equal(v.len, strlen(value));
    assert_memory_equal(v.data, value, v.len);
  }
  mf_buf_free(&v);
}

static void expect_missing(memtable *m, mf_slice key, uint64_t snap) {
  mf_buf v = MF_BUF_INIT;
  int type;
  uint64_t seq;
  assert_int_equal(memtable_get(m, key, snap, &type, &seq, &v), MAYFLY_ENOTFOUND);
  mf_buf_free(&v);
}

static void test_versions_and_snapshots(void **state) {
  (void)state;
  memtable *m;
  assert_int_equal(memtable_create(0, 0, &m), MAYFLY_OK);
  expect_missing(m, S("a"), MF_MAX_SEQ);

  assert_int_equal(memtable_add(m, 10, MF_TYPE_VALUE, S("k"), S("v10")), MAYFLY_OK);
  assert_int_equal(memtable_add(m, 20, MF_TYPE_VALUE, S("k"), S("v20")), MAYFLY_OK);
  assert_int_equal(memtable_add(m, 30, MF_TYPE_DELETE, S("k"), S("ignored")), MAYFLY_OK);
  assert_int_equal(memtable_add(m, 40, MF_TYPE_BLOB_INDEX, S("k"), S("blobref")), MAYFLY_OK);
  assert_int_equal(memtable_add(m, 15, MF_TYPE_VALUE, S("j"), S("j15")), MAYFLY_OK);
  assert_int_equal(memtable_add(m, 16, MF_TYPE_VALUE, S("kk"), S("kk16")), MAYFLY_OK);

  expect_missing(m, S("k"), 9);
  expect_missing(m, S("k"), 0);
  expect_get(m, S("k"), 10, MF_TYPE_VALUE, 10, "v10");
  expect_get(m, S("k"), 19, MF_TYPE_VALUE, 10, "v10");
  expect_get(m, S("k"), 20, MF_TYPE_VALUE, 20, "v20");
  expect_get(m, S("k"), 29, MF_TYPE_VALUE, 20, "v20");
  expect_get(m, S("k"), 30, MF_TYPE_DELETE, 30, NULL);
  expect_get(m, S("k"), 39, MF_TYPE_DELETE, 30, NULL);
  expect_get(m, S("k"), 40, MF_TYPE_BLOB_INDEX, 40, "blobref");
  expect_get(m, S("k"), MF_MAX_SEQ, MF_TYPE_BLOB_INDEX, 40, "blobref");
  expect_get(m, S("k"), UINT64_MAX, MF_TYPE_BLOB_INDEX, 40, "blobref"); /* "latest" */
  /* Neighbours do not leak into each other. */
  expect_get(m, S("j"), 100, MF_TYPE_VALUE, 15, "j15");
  expect_missing(m, S("j"), 14);
  expect_get(m, S("kk"), 100, MF_TYPE_VALUE, 16, "kk16");
  expect_missing(m, S("kk"), 15);
  expect_missing(m, S("ka"), 100);
  expect_missing(m, S("l"), 100);
  expect_missing(m, S(""), 100);

  /* A delete leaves the caller's buffer untouched. */
  mf_buf v = MF_BUF_INIT;
  assert_int_equal(mf_buf_set(&v, "keep", 4), MAYFLY_OK);
  int type;
  uint64_t seq;
  assert_int_equal(memtable_get(m, S("k"), 35, &type, &seq, &v), MAYFLY_OK);
  assert_int_equal(type, MF_TYPE_DELETE);
  assert_memory_equal(v.data, "keep", 4);
  mf_buf_free(&v);

  assert_true(memtable_num_entries(m) == 6);
  assert_true(memtable_num_deletes(m) == 1);

  /* Invalid adds are rejected and change nothing. */
  assert_int_equal(memtable_add(m, 50, 7, S("k"), S("x")), MAYFLY_EINVAL);
  assert_int_equal(memtable_add(m, 50, -1, S("k"), S("x")), MAYFLY_EINVAL);
  assert_int_equal(memtable_add(m, MF_MAX_SEQ + 1, MF_TYPE_VALUE, S("k"), S("x")),
                   MAYFLY_EINVAL);
  assert_int_equal(memtable_add(m, 20, MF_TYPE_VALUE, S("k"), S("dup")), MAYFLY_EINVAL);
  assert_true(memtable_num_entries(m) == 6);
  expect_get(m, S("k"), 20, MF_TYPE_VALUE, 20, "v20");
  memtable_unref(m);
}

/* Prepared versions are invisible (to gets, the filter's answers aside, and to the entry
 * count) until committed; they commit in any order; a long value (kept out of line) and a
 * delete prepare like the rest; one never committed stays out; a duplicate commit is refused. */
static void test_prepare_and_commit(void **state) {
  (void)state;
  memtable *m;
  assert_int_equal(memtable_create(0, 4096, &m), MAYFLY_OK);
  char big[300];
  memset(big, 'b', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  memtable_prepared p[4];
  assert_int_equal(memtable_prepare(m, 5, MF_TYPE_VALUE, S("a"), S("a5"), &p[0]), MAYFLY_OK);
  assert_int_equal(memtable_prepare(m, 6, MF_TYPE_VALUE, S("b"), S(big), &p[1]), MAYFLY_OK);
  assert_int_equal(memtable_prepare(m, 7, MF_TYPE_DELETE, S("a"), S("ignored"), &p[2]),
                   MAYFLY_OK);
  assert_int_equal(memtable_prepare(m, 8, MF_TYPE_VALUE, S("c"), S("c8"), &p[3]), MAYFLY_OK);
  assert_int_equal(memtable_prepare(m, 9, 99, S("d"), S("x"), &p[3]), MAYFLY_EINVAL);
  expect_missing(m, S("a"), MF_MAX_SEQ);
  expect_missing(m, S("b"), MF_MAX_SEQ);
  assert_int_equal(memtable_num_entries(m), 0);
  assert_int_equal(memtable_commit(m, &p[2]), MAYFLY_OK); /* the delete before the put */
  assert_int_equal(memtable_commit(m, &p[1]), MAYFLY_OK);
  assert_int_equal(memtable_commit(m, &p[0]), MAYFLY_OK);
  /* p[3] (key c) is never committed. */
  assert_int_equal(memtable_num_entries(m), 3);
  expect_get(m, S("a"), MF_MAX_SEQ, MF_TYPE_DELETE, 7, NULL);
  expect_get(m, S("a"), 6, MF_TYPE_VALUE, 5, "a5");
  expect_get(m, S("b"), MF_MAX_SEQ, MF_TYPE_VALUE, 6, big);
  expect_missing(m, S("c"), MF_MAX_SEQ);
  assert_int_equal(memtable_commit(m, &p[0]), MAYFLY_EINVAL); /* committed twice */
  assert_int_equal(memtable_num_entries(m), 3);
  memtable_unref(m);
}

static void test_empty_key_and_large(void **state) {
  (void)state;
  memtable *m;
  assert_int_equal(memtable_create(0, 0, &m), MAYFLY_OK);
  size_t before = memtable_memory_usage(m);

  assert_int_equal(memtable_add(m, 1, MF_TYPE_VALUE, S(""), S("empty-key")), MAYFLY_OK);
  assert_int_equal(memtable_add(m, 2, MF_TYPE_VALUE, mf_slice_make("\0", 1), S("nul")),
                   MAYFLY_OK);
  expect_get(m, S(""), 5, MF_TYPE_VALUE, 1, "empty-key");
  expect_missing(m, S(""), 0);
  expect_get(m, mf_slice_make("\0", 1), 5, MF_TYPE_VALUE, 2, "nul");

  /* Large value (its own arena block), and a long key (probe no longer fits on the stack). */
  size_t big_len = 3 << 20;
  char *big = malloc(big_len);
  assert_non_null(big);
  for (size_t i = 0; i < big_len; i++) big[i] = (char)(i * 31 + 7);
  char longkey[5000];
  memset(longkey, 'q', sizeof longkey);
  assert_int_equal(memtable_add(m, 3, MF_TYPE_VALUE, mf_slice_make(longkey, sizeof longkey),
                                mf_slice_make(big, big_len)),
                   MAYFLY_OK);
  assert_int_equal(memtable_add(m, 4, MF_TYPE_VALUE, S("big"), mf_slice_make(big, big_len)),
                   MAYFLY_OK);
  assert_true(memtable_memory_usage(m) >= before + 2 * big_len);

  mf_buf v = MF_BUF_INIT;
  int type;
  uint64_t seq;
  assert_int_equal(
      memtable_get(m, mf_slice_make(longkey, sizeof longkey), 10, &type, &seq, &v), MAYFLY_OK);
  assert_int_equal(v.len, big_len);
  assert_memory_equal(v.data, big, big_len);
  assert_true(seq == 3);
  expect_missing(m, mf_slice_make(longkey, sizeof longkey - 1), 10);
  assert_int_equal(memtable_get(m, S("big"), 10, &type, &seq, &v), MAYFLY_OK);
  assert_int_equal(v.len, big_len);
  assert_memory_equal(v.data, big, big_len);

  /* The iterator sees the empty key first, and seeks with a long target work. */
  mf_iter *it = memtable_iter_create(m);
  assert_non_null(it);
  iter_seek_to_first(it);
  assert_true(iter_valid(it));
  mf_parsed_ikey p;
  assert_true(ikey_parse(iter_key(it), &p));
  assert_int_equal(p.user_key.len, 0);
  assert_true(mf_slice_equal(iter_value(it), S("empty-key")));
  mf_buf target = MF_BUF_INIT;
  assert_int_equal(ikey_append(&target, mf_slice_make(longkey, sizeof longkey), MF_MAX_SEQ,
                               MF_TYPE_FOR_SEEK),
                   MAYFLY_OK);
  iter_seek(it, mf_buf_slice(&target));
  assert_true(iter_valid(it));
  assert_int_equal(iter_status(it), MAYFLY_OK);
  assert_true(ikey_parse(iter_key(it), &p));
  assert_true(p.seq == 3);
  assert_int_equal(iter_value(it).len, big_len);
  assert_memory_equal(iter_value(it).data, big, big_len);
  mf_buf_free(&target);
  iter_destroy(it);

  mf_buf_free(&v);
  free(big);
  memtable_unref(m);
}

static void test_iterator_order_and_seek(void **state) {
  (void)state;
  memtable *m;
  assert_int_equal(memtable_create(0, 0, &m), MAYFLY_OK);
  /* Added out of order; expected order: user key asc, seq desc. */
  assert_int_equal(memtable_add(m, 5, MF_TYPE_VALUE, S("b"), S("b5")), MAYFLY_OK);
  assert_int_equal(memtable_add(m, 9, MF_TYPE_DELETE, S("b"), S("")), MAYFLY_OK);
  assert_int_equal(memtable_add(m, 7, MF_TYPE_VALUE, S("a"), S("a7")), MAYFLY_OK);
  assert_int_equal(memtable_add(m, 1, MF_TYPE_VALUE, S("c"), S("c1")), MAYFLY_OK);
  assert_int_equal(memtable_add(m, 3, MF_TYPE_VALUE, S("ab"), S("ab3")), MAYFLY_OK);
  assert_int_equal(memtable_add(m, 8, MF_TYPE_VALUE, S("b"), S("b8")), MAYFLY_OK);
  static const struct {
    const char *key;
    uint64_t seq;
    int type;
    const char *value;
  } want[] = {{"a", 7, MF_TYPE_VALUE, "a7"},  {"ab", 3, MF_TYPE_VALUE, "ab3"},
              {"b", 9, MF_TYPE_DELETE, ""},   {"b", 8, MF_TYPE_VALUE, "b8"},
              {"b", 5, MF_TYPE_VALUE, "b5"},  {"c", 1, MF_TYPE_VALUE, "c1"}};
  const int n = (int)(sizeof want / sizeof want[0]);

  mf_iter *it = memtable_iter_create(m);
  assert_non_null(it);
  /* The iterator holds its own reference: the memtable survives this unref. */
  memtable_unref(m);
  assert_false(iter_valid(it));
  iter_seek_to_first(it);
  for (int i = 0; i < n; i++) {
    assert_true(iter_valid(it));
    mf_parsed_ikey p;
    assert_true(ikey_parse(iter_key(it), &p));
    assert_true(mf_slice_equal(p.user_key, S(want[i].key)));
    assert_true(p.seq == want[i].seq);
    assert_int_equal(p.type, want[i].type);
    assert_true(mf_slice_equal(iter_value(it), S(want[i].value)));
    iter_next(it);
  }
  assert_false(iter_valid(it));
  iter_seek_to_last(it);
  for (int i = n - 1; i >= 0; i--) {
    assert_true(iter_valid(it));
    assert_true(mf_slice_equal(iter_value(it), S(want[i].value)));
    iter_prev(it);
  }
  assert_false(iter_valid(it));

  /* Seeks with internal-key targets. */
  mf_buf t = MF_BUF_INIT;
  struct {
    const char *key;
    uint64_t seq;
    int expect; /* index into want, or n for the end */
  } seeks[] = {{"", MF_MAX_SEQ, 0}, {"a", 7, 0},  {"a", 6, 1}, {"aa", 100, 1},
               {"b", MF_MAX_SEQ, 2}, {"b", 9, 2}, {"b", 8, 3}, {"b", 6, 4},
               {"b", 4, 5},        {"c", 1, 5},  {"c", 0, n}, {"d", 100, n}};
  for (size_t i = 0; i < sizeof seeks / sizeof seeks[0]; i++) {
    mf_buf_clear(&t);
    assert_int_equal(ikey_append(&t, S(seeks[i].key), seeks[i].seq, MF_TYPE_FOR_SEEK),
                     MAYFLY_OK);
    iter_seek(it, mf_buf_slice(&t));
    if (seeks[i].expect == n) {
      assert_false(iter_valid(it));
      continue;
    }
    assert_true(iter_valid(it));
    assert_true(mf_slice_equal(iter_value(it), S(want[seeks[i].expect].value)));
  }
  mf_buf_free(&t);
  assert_int_equal(iter_status(it), MAYFLY_OK);
  iter_destroy(it); /* drops the last reference */
}

/* ---- randomized against a reference model ---- */

typedef struct ref_entry {
  char key[8];
  size_t klen;
  uint64_t seq;
  int type;
  char value[24];
  size_t vlen;
} ref_entry;

static int ref_cmp(const void *x, const void *y) {
  const ref_entry *a = x, *b = y;
  int r = mf_slice_compare(mf_slice_make(a->key, a->klen), mf_slice_make(b->key, b->klen));
  if (r) return r;
  return (a->seq < b->seq) - (a->seq > b->seq); /* seq descending */
}

/* Filter sizes the randomized tests run with (the state of each): none, one 64-byte block
 * (every key in one block: mostly "maybe"), and a roomy one (mostly "no" for absent keys).
 * A filter must never turn a present key into a miss. */
static size_t filter_none = 0, filter_tiny = 64, filter_roomy = 64 * 1024;

static void test_random_model(void **state) {
  mf_random rnd;
  mf_random_seed(&rnd, seed);
  memtable *m;
  assert_int_equal(memtable_create(0, *(size_t *)*state, &m), MAYFLY_OK);
  enum { N = 3000 };
  ref_entry *ref = calloc(N, sizeof *ref);
  assert_non_null(ref);
  uint64_t deletes = 0;
  for (int i = 0; i < N; i++) {
    ref_entry *e = &ref[i];
    e->klen = (size_t)mf_random_uniform(&rnd, 4); /* includes the empty key */
    for (size_t j = 0; j < e->klen; j++) e->key[j] = (char)('a' + mf_random_uniform(&rnd, 3));
    e->seq = (uint64_t)i * 2 + 1; /* odd seqs: even snapshots fall between versions */
    uint64_t r = mf_random_uniform(&rnd, 10);
    e->type = r < 2 ? MF_TYPE_DELETE : r < 4 ? MF_TYPE_BLOB_INDEX : MF_TYPE_VALUE;
    if (e->type != MF_TYPE_DELETE) {
      e->vlen = (size_t)snprintf(e->value, sizeof e->value, "v%llu-%llu",
                                 (unsigned long long)e->seq,
                                 (unsigned long long)mf_random_next(&rnd) % 1000);
    }
    deletes += e->type == MF_TYPE_DELETE;
    assert_int_equal(memtable_add(m, e->seq, e->type, mf_slice_make(e->key, e->klen),
                                  mf_slice_make(e->value, e->vlen)),
                     MAYFLY_OK);
  }
  assert_true(memtable_num_entries(m) == N);
  assert_true(memtable_num_deletes(m) == deletes);
  qsort(ref, N, sizeof ref[0], ref_cmp);

  /* Point lookups at random snapshots vs a scan of the sorted reference. */
  for (int t = 0; t < 3000; t++) {
    char key[8];
    size_t klen = (size_t)mf_random_uniform(&rnd, 5);
    for (size_t j = 0; j < klen; j++) key[j] = (char)('a' + mf_random_uniform(&rnd, 3));
    uint64_t snap = mf_random_uniform(&rnd, 2 * N + 4);
    const ref_entry *hit = NULL;
    for (int i = 0; i < N && !hit; i++)
      if (mf_slice_equal(mf_slice_make(ref[i].key, ref[i].klen), mf_slice_make(key, klen)) &&
          ref[i].seq <= snap)
        hit = &ref[i]; /* first in seq-descending order */
    if (!hit) {
      expect_missing(m, mf_slice_make(key, klen), snap);
      continue;
    }
    char value[25];
    memcpy(value, hit->value, hit->vlen);
    value[hit->vlen] = '\0';
    expect_get(m, mf_slice_make(key, klen), snap, hit->type, hit->seq, value);
  }

  /* Full iteration in both directions matches the sorted reference. */
  mf_iter *it = memtable_iter_create(m);
  assert_non_null(it);
  iter_seek_to_first(it);
  for (int i = 0; i < N; i++) {
    assert_true(iter_valid(it));
    mf_parsed_ikey p;
    assert_true(ikey_parse(iter_key(it), &p));
    assert_true(mf_slice_equal(p.user_key, mf_slice_make(ref[i].key, ref[i].klen)));
    assert_true(p.seq == ref[i].seq);
    assert_int_equal(p.type, ref[i].type);
    assert_true(mf_slice_equal(iter_value(it), mf_slice_make(ref[i].value, ref[i].vlen)));
    iter_next(it);
  }
  assert_false(iter_valid(it));
  iter_seek_to_last(it);
  for (int i = N - 1; i >= 0; i--) {
    assert_true(iter_valid(it));
    assert_true(ikey_trailer(iter_key(it)) == ikey_pack(ref[i].seq, ref[i].type));
    iter_prev(it);
  }
  assert_false(iter_valid(it));
  iter_destroy(it);
  free(ref);
  memtable_unref(m);
}

/* ---- one writer, concurrent readers ---- */

enum { CONC_OPS = 20000, CONC_KEYS = 500, CONC_READERS = 2 };

typedef struct conc_state {
  memtable *mem;
  atomic_uint_least64_t published; /* every seq <= this has been added */
  atomic_int failures;
} conc_state;

/* Deterministic workload: seq s writes key (s % CONC_KEYS) with value "s", padded with dots
 * to 300 bytes for even s (so half the values are stored inline and half out of line). */
static void conc_key(uint64_t seq, char *key, size_t *klen) {
  *klen = (size_t)snprintf(key, 16, "key%04llu", (unsigned long long)(seq % CONC_KEYS));
}

enum { CONC_VALUE_MAX = 300 };

static size_t conc_value(uint64_t seq, char *value) {
  int n = snprintf(value, CONC_VALUE_MAX, "%llu", (unsigned long long)seq);
  if (seq % 2 != 0) return (size_t)n;
  memset(value + n, '.', CONC_VALUE_MAX - (size_t)n);
  return CONC_VALUE_MAX;
}

static void *conc_writer(void *arg) {
  conc_state *st = arg;
  for (uint64_t seq = 1; seq <= CONC_OPS; seq++) {
    char key[16], value[CONC_VALUE_MAX];
    size_t klen;
    conc_key(seq, key, &klen);
    size_t vlen = conc_value(seq, value);
    if (memtable_add(st->mem, seq, MF_TYPE_VALUE, mf_slice_make(key, klen),
                     mf_slice_make(value, vlen)) != MAYFLY_OK)
      atomic_fetch_add(&st->failures, 1);
    atomic_store_explicit(&st->published, seq, memory_order_release);
  }
  return NULL;
}

static void *conc_reader(void *arg) {
  conc_state *st = arg;
  mf_buf v = MF_BUF_INIT;
  uint64_t snap;
  do {
    snap = atomic_load_explicit(&st->published, memory_order_acquire);
    if (snap == 0) continue;
    /* The newest version of key k at or below snap is the largest seq <= snap with
     * seq % CONC_KEYS == k; look one up for a key written recently. */
    uint64_t want = snap - (snap * 7) % (snap < CONC_KEYS ? snap : CONC_KEYS);
    char key[16];
    size_t klen;
    conc_key(want, key, &klen);
    int type;
    uint64_t seq;
    int rc = memtable_get(st->mem, mf_slice_make(key, klen), snap, &type, &seq, &v);
    char expect[CONC_VALUE_MAX];
    size_t elen = conc_value(want, expect);
    if (rc != MAYFLY_OK || seq != want || type != MF_TYPE_VALUE ||
        !mf_slice_equal(mf_buf_slice(&v), mf_slice_make(expect, elen))) {
      fprintf(stderr, "reader: get(%.*s, %llu) rc %d seq %llu\n", (int)klen, key,
              (unsigned long long)snap, rc, (unsigned long long)seq);
      atomic_fetch_add(&st->failures, 1);
      break;
    }
  } while (snap < CONC_OPS);
  mf_buf_free(&v);
  return NULL;
}

static void test_concurrent_get(void **state) {
  conc_state st;
  assert_int_equal(memtable_create(0, *(size_t *)*state, &st.mem), MAYFLY_OK);
  atomic_init(&st.published, 0);
  atomic_init(&st.failures, 0);
  pthread_t writer, readers[CONC_READERS];
  for (int i = 0; i < CONC_READERS; i++)
    assert_int_equal(pthread_create(&readers[i], NULL, conc_reader, &st), 0);
  assert_int_equal(pthread_create(&writer, NULL, conc_writer, &st), 0);
  assert_int_equal(pthread_join(writer, NULL), 0);
  for (int i = 0; i < CONC_READERS; i++) assert_int_equal(pthread_join(readers[i], NULL), 0);
  assert_int_equal(atomic_load(&st.failures), 0);
  assert_true(memtable_num_entries(st.mem) == CONC_OPS);
  memtable_unref(st.mem);
}

/* Values from 0 to 600 bytes, across the length at which a value moves out of line into the
 * value arena: each reads back whole through get and the iterator, in key order, and the
 * memory counted covers every value byte with little overhead per entry. */
static void test_value_lengths(void **state) {
  (void)state;
  mf_random rnd;
  mf_random_seed(&rnd, seed);
  memtable *m;
  assert_int_equal(memtable_create(64 * 1024, 0, &m), MAYFLY_OK);
  size_t before = memtable_data_usage(m);
  enum { N = 2000, MAXV = 600 };
  static char values[N][MAXV];
  size_t lens[N], value_bytes = 0;
  for (int i = 0; i < N; i++) {
    /* Every length near the boundary, then random ones. */
    lens[i] = i < 40 ? (size_t)(236 + i) : (size_t)mf_random_uniform(&rnd, MAXV + 1);
    for (size_t j = 0; j < lens[i]; j++) values[i][j] = (char)(mf_random_next(&rnd) & 0xff);
    value_bytes += lens[i];
    char key[16];
    int n = snprintf(key, sizeof key, "key%06d", i);
    int type = i % 3 == 0 ? MF_TYPE_BLOB_INDEX : MF_TYPE_VALUE;
    assert_int_equal(memtable_add(m, (uint64_t)i + 1, type, mf_slice_make(key, (size_t)n),
                                  mf_slice_make(values[i], lens[i])),
                     MAYFLY_OK);
  }
  /* An empty memtable holds blocks but little data: the skiplist's head node. */
  assert_true(before < 1024);
  size_t used = memtable_data_usage(m) - before;
  assert_true(used >= value_bytes);
  /* key (9 B) + 8 B trailer + two varints + links + a value address + alignment padding */
  assert_true(used <= value_bytes + (size_t)N * 64);
  /* The memory held covers the data, and the filter-less memtable holds little more: the
   * tails of full 64 KiB blocks (under 600 bytes each here), and the current block of each
   * arena. */
  assert_true(memtable_memory_usage(m) >= memtable_data_usage(m));
  assert_true(memtable_memory_usage(m) <= memtable_data_usage(m) + 2 * 64 * 1024 + 16 * 1024);

  mf_buf v = MF_BUF_INIT;
  for (int i = 0; i < N; i++) {
    char key[16];
    int n = snprintf(key, sizeof key, "key%06d", i);
    int type;
    uint64_t seq;
    assert_int_equal(memtable_get(m, mf_slice_make(key, (size_t)n), MF_MAX_SEQ, &type, &seq, &v),
                     MAYFLY_OK);
    assert_int_equal(type, i % 3 == 0 ? MF_TYPE_BLOB_INDEX : MF_TYPE_VALUE);
    assert_int_equal(v.len, lens[i]);
    if (lens[i]) assert_memory_equal(v.data, values[i], lens[i]);
  }
  mf_iter *it = memtable_iter_create(m);
  assert_non_null(it);
  int i = 0;
  for (iter_seek_to_first(it); iter_valid(it); iter_next(it), i++) {
    assert_true(i < N);
    mf_slice got = iter_value(it);
    assert_int_equal(got.len, lens[i]);
    if (lens[i]) assert_memory_equal(got.data, values[i], lens[i]);
  }
  assert_int_equal(i, N);
  /* Backward from the last entry, and a seek to each key followed by a step back. */
  i = N - 1;
  for (iter_seek_to_last(it); iter_valid(it); iter_prev(it), i--) {
    assert_true(i >= 0);
    mf_slice got = iter_value(it);
    assert_int_equal(got.len, lens[i]);
    if (lens[i]) assert_memory_equal(got.data, values[i], lens[i]);
  }
  assert_int_equal(i, -1);
  mf_buf target = MF_BUF_INIT;
  for (i = 1; i < N; i += 7) {
    char key[16];
    int n = snprintf(key, sizeof key, "key%06d", i);
    mf_buf_clear(&target);
    assert_int_equal(
        ikey_append(&target, mf_slice_make(key, (size_t)n), MF_MAX_SEQ, MF_TYPE_FOR_SEEK),
        MAYFLY_OK);
    iter_seek(it, mf_buf_slice(&target));
    assert_true(iter_valid(it));
    assert_int_equal(iter_value(it).len, lens[i]);
    if (lens[i]) assert_memory_equal(iter_value(it).data, values[i], lens[i]);
    iter_prev(it);
    assert_true(iter_valid(it));
    assert_int_equal(iter_value(it).len, lens[i - 1]);
    if (lens[i - 1]) assert_memory_equal(iter_value(it).data, values[i - 1], lens[i - 1]);
  }
  mf_buf_free(&target);
  iter_destroy(it);
  mf_buf_free(&v);
  memtable_unref(m);
}

/* The filter's bytes count as memtable memory (so write_buffer_size bounds both), and a
 * request under one block makes no filter. */
static void test_filter_memory(void **state) {
  (void)state;
  memtable *plain, *small, *filtered;
  assert_int_equal(memtable_create(0, 0, &plain), MAYFLY_OK);
  assert_int_equal(memtable_create(0, 63, &small), MAYFLY_OK);
  assert_int_equal(memtable_create(0, 1 << 20, &filtered), MAYFLY_OK);
  assert_true(memtable_memory_usage(small) == memtable_memory_usage(plain));
  assert_true(memtable_memory_usage(filtered) == memtable_memory_usage(plain) + (1 << 20));
  /* Keys added to a filtered memtable are all found; absent ones are all misses. */
  char key[16];
  for (int i = 0; i < 20000; i += 2) {
    int n = snprintf(key, sizeof key, "key%06d", i);
    assert_int_equal(memtable_add(filtered, (uint64_t)i + 1, MF_TYPE_VALUE,
                                  mf_slice_make(key, (size_t)n), S("v")),
                     MAYFLY_OK);
  }
  for (int i = 0; i < 20000; i++) {
    int n = snprintf(key, sizeof key, "key%06d", i);
    if (i % 2 == 0)
      expect_get(filtered, mf_slice_make(key, (size_t)n), MF_MAX_SEQ, MF_TYPE_VALUE,
                 (uint64_t)i + 1, "v");
    else
      expect_missing(filtered, mf_slice_make(key, (size_t)n), MF_MAX_SEQ);
  }
  memtable_unref(plain);
  memtable_unref(small);
  memtable_unref(filtered);
}

int main(void) {
  const char *env = getenv("MAYFLY_TEST_SEED");
  seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
  printf("test_memtable: seed %llu (replay with MAYFLY_TEST_SEED)\n", (unsigned long long)seed);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_versions_and_snapshots),
      cmocka_unit_test(test_prepare_and_commit),
      cmocka_unit_test(test_empty_key_and_large),
      cmocka_unit_test(test_iterator_order_and_seek),
      cmocka_unit_test_prestate(test_random_model, &filter_none),
      cmocka_unit_test_prestate(test_random_model, &filter_tiny),
      cmocka_unit_test_prestate(test_random_model, &filter_roomy),
      cmocka_unit_test_prestate(test_concurrent_get, &filter_none),
      cmocka_unit_test_prestate(test_concurrent_get, &filter_roomy),
      cmocka_unit_test(test_value_lengths),
      cmocka_unit_test(test_filter_memory),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
