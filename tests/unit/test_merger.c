/* Merging iterator tests: random children (a sorted-array iterator defined here) merged and
 * compared step by step against a sorted reference, through random sequences of seeks,
 * next/prev and direction changes, with duplicate keys across and within children, for child
 * counts on both sides of the linear-scan/heap boundary; memtable children with internal
 * keys; error status propagation; ownership of children. Randomized: prints its seed; set
 * MAYFLY_TEST_SEED to replay. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mayfly.h"
#include "mem/memtable.h"
#include "table/iterator.h"
#include "table/merger.h"
#include "util/ikey.h"
#include "util/random.h"

static uint64_t seed;

/* ---- a sorted-array iterator ---- */

typedef struct kv {
  char key[8];
  size_t klen;
  char value[16]; /* "child.position": identifies the exact entry */
  size_t vlen;
  int child;
  int pos;
} kv;

typedef struct array_iter {
  mf_iter base;
  const kv *entries; /* borrowed; sorted by key */
  int n;
  int at;      /* -1 or n: not valid */
  int fail_at; /* reaching this position is a read error (ECORRUPT); -1: never */
} array_iter;

static mf_slice kv_key(const kv *e) { return mf_slice_make(e->key, e->klen); }

static int ai_valid(const mf_iter *it) {
  const array_iter *a = (const array_iter *)it;
  return a->at >= 0 && a->at < a->n && a->at != a->fail_at;
}
static void ai_first(mf_iter *it) { ((array_iter *)it)->at = 0; }
static void ai_last(mf_iter *it) {
  array_iter *a = (array_iter *)it;
  a->at = a->n - 1;
}
static void ai_seek(mf_iter *it, mf_slice target) {
  array_iter *a = (array_iter *)it;
  a->at = 0;
  while (a->at < a->n && bytewise_compare(kv_key(&a->entries[a->at]), target) < 0) a->at++;
}
static void ai_next(mf_iter *it) { ((array_iter *)it)->at++; }
static void ai_prev(mf_iter *it) {
  array_iter *a = (array_iter *)it;
  a->at = a->at == 0 ? -1 : a->at - 1;
}
static mf_slice ai_key(const mf_iter *it) {
  const array_iter *a = (const array_iter *)it;
  return kv_key(&a->entries[a->at]);
}
static mf_slice ai_value(const mf_iter *it) {
  const array_iter *a = (const array_iter *)it;
  return mf_slice_make(a->entries[a->at].value, a->entries[a->at].vlen);
}
static int ai_status(const mf_iter *it) {
  const array_iter *a = (const array_iter *)it;
  return a->at >= 0 && a->at == a->fail_at ? MAYFLY_ECORRUPT : MAYFLY_OK;
}
static void ai_destroy(mf_iter *it) { free(it); }

static const mf_iter_ops array_ops = {ai_valid, ai_first, ai_last,  ai_seek,   ai_next,
                                      ai_prev,  ai_key,   ai_value, ai_status, ai_destroy};

static mf_iter *array_iter_create(const kv *entries, int n) {
  array_iter *a = malloc(sizeof *a);
  assert_non_null(a);
  iter_init(&a->base, &array_ops);
  a->entries = entries;
  a->n = n;
  a->at = -1;
  a->fail_at = -1;
  return &a->base;
}

static int destroyed;
static void count_destroy(void *arg1, void *arg2) { destroyed++; }

/* ---- reference ---- */

static int kv_cmp(const void *x, const void *y) {
  const kv *a = x, *b = y;
  int r = bytewise_compare(kv_key(a), kv_key(b));
  if (r) return r;
  if (a->child != b->child) return a->child - b->child;
  return a->pos - b->pos;
}

static void random_key(mf_random *rnd, char *key, size_t *klen) {
  *klen = (size_t)mf_random_uniform(rnd, 4);
  for (size_t j = 0; j < *klen; j++) key[j] = (char)('a' + mf_random_uniform(rnd, 3));
}

/* Lower bound of target in the reference. */
static int ref_seek(const kv *ref, int n, mf_slice target) {
  int i = 0;
  while (i < n && bytewise_compare(kv_key(&ref[i]), target) < 0) i++;
  return i;
}

static void check_at(const mf_iter *m, const kv *ref, int n, int at) {
  if (at < 0 || at >= n) {
    assert_false(iter_valid(m));
    return;
  }
  assert_true(iter_valid(m));
  assert_true(mf_slice_equal(iter_key(m), kv_key(&ref[at])));
  assert_true(mf_slice_equal(iter_value(m), mf_slice_make(ref[at].value, ref[at].vlen)));
}

/* One round: nchildren random sorted children, then random operations. */
static void run_round(mf_random *rnd, int nchildren, int dup_within) {
  enum { MAX_PER_CHILD = 40 };
  kv *entries = calloc((size_t)nchildren * MAX_PER_CHILD + 1, sizeof(kv));
  kv *ref = calloc((size_t)nchildren * MAX_PER_CHILD + 1, sizeof(kv));
  mf_iter **children = malloc(sizeof(mf_iter *) * (size_t)(nchildren + 1));
  assert_non_null(entries);
  assert_non_null(ref);
  assert_non_null(children);
  int total = 0;
  for (int c = 0; c < nchildren; c++) {
    kv *mine = entries + total;
    int count = (int)mf_random_uniform(rnd, MAX_PER_CHILD + 1);
    if (mf_random_uniform(rnd, 4) == 0) count = 0; /* empty children are common */
    int made = 0;
    for (int i = 0; i < count; i++) {
      kv e;
      memset(&e, 0, sizeof e);
      random_key(rnd, e.key, &e.klen);
      int dup = 0;
      for (int j = 0; j < made && !dup; j++) dup = mf_slice_equal(kv_key(&mine[j]), kv_key(&e));
      if (dup && !dup_within) continue;
      mine[made++] = e;
    }
    /* Sort this child's keys (stable by insertion among equal keys is not needed: the
     * position number is assigned after sorting). */
    for (int i = 0; i < made; i++) mine[i].child = 0, mine[i].pos = i;
    qsort(mine, (size_t)made, sizeof(kv), kv_cmp);
    for (int i = 0; i < made; i++) {
      mine[i].child = c;
      mine[i].pos = i;
      mine[i].vlen = (size_t)snprintf(mine[i].value, sizeof mine[i].value, "%d.%d", c, i);
    }
    children[c] = array_iter_create(mine, made);
    assert_int_equal(iter_register_cleanup(children[c], count_destroy, NULL, NULL), MAYFLY_OK);
    total += made;
  }
  memcpy(ref, entries, sizeof(kv) * (size_t)total);
  qsort(ref, (size_t)total, sizeof(kv), kv_cmp);

  destroyed = 0;
  mf_iter *m = merger_create(bytewise_compare, children, nchildren);
  assert_non_null(m);
  free(children); /* the array is not owned by the merger */
  assert_false(iter_valid(m));

  /* Full passes. */
  iter_seek_to_first(m);
  for (int i = 0; i < total; i++) {
    check_at(m, ref, total, i);
    iter_next(m);
  }
  assert_false(iter_valid(m));
  iter_seek_to_last(m);
  for (int i = total - 1; i >= 0; i--) {
    check_at(m, ref, total, i);
    iter_prev(m);
  }
  assert_false(iter_valid(m));

  /* Random walks with direction changes. */
  int at = -1;
  for (int step = 0; step < 400; step++) {
    uint64_t op = mf_random_uniform(rnd, 10);
    if (op == 0) {
      iter_seek_to_first(m);
      at = 0;
    } else if (op == 1) {
      iter_seek_to_last(m);
      at = total - 1;
    } else if (op <= 3) {
      char key[8];
      size_t klen;
      random_key(rnd, key, &klen);
      iter_seek(m, mf_slice_make(key, klen));
      at = ref_seek(ref, total, mf_slice_make(key, klen));
    } else if (at >= 0 && at < total) {
      if (op <= 6) {
        iter_next(m);
        at++;
      } else {
        iter_prev(m);
        at--;
      }
    } else {
      continue; /* next/prev need a valid iterator */
    }
    check_at(m, ref, total, at);
  }
  assert_int_equal(iter_status(m), MAYFLY_OK);
  iter_destroy(m);
  assert_int_equal(destroyed, nchildren); /* every child destroyed exactly once */
  free(entries);
  free(ref);
}

static void test_random_merges(void **state) {
  (void)state;
  mf_random rnd;
  mf_random_seed(&rnd, seed);
  static const int counts[] = {0, 1, 2, 3, 4, 5, 6, 8, 13, 20};
  for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
    for (int round = 0; round < 30; round++) run_round(&rnd, counts[i], round % 3 == 0);
}

static void test_empty_and_null_array(void **state) {
  (void)state;
  mf_iter *m = merger_create(bytewise_compare, NULL, 0);
  assert_non_null(m);
  iter_seek_to_first(m);
  assert_false(iter_valid(m));
  iter_seek_to_last(m);
  assert_false(iter_valid(m));
  iter_seek(m, mf_slice_cstr("x"));
  assert_false(iter_valid(m));
  assert_int_equal(iter_status(m), MAYFLY_OK);
  iter_destroy(m);
}

/* A child that is in error from the start: the merged view is empty with its status, in both
 * directions, instead of showing the other children's entries without it. */
static void test_child_error_status(void **state) {
  (void)state;
  static const kv entries[] = {{"a", 1, "0.0", 3, 0, 0}, {"c", 1, "0.1", 3, 0, 1}};
  for (int n = 3; n <= 7; n += 4) { /* both the linear and the heap path */
    mf_iter *children[7];
    children[0] = array_iter_create(entries, 2);
    for (int i = 1; i < n; i++)
      children[i] = iter_new_empty(i == n - 1 ? MAYFLY_ECORRUPT : MAYFLY_OK);
    mf_iter *m = merger_create(bytewise_compare, children, n);
    assert_non_null(m);
    iter_seek_to_first(m);
    assert_false(iter_valid(m));
    assert_int_equal(iter_status(m), MAYFLY_ECORRUPT);
    iter_seek_to_last(m);
    assert_false(iter_valid(m));
    iter_seek(m, mf_slice_cstr("b"));
    assert_false(iter_valid(m));
    assert_int_equal(iter_status(m), MAYFLY_ECORRUPT);
    iter_destroy(m);
  }
}

/* A child that fails partway (a damaged block further on): the merged view stops at the step
 * that hit the error, going either way, and never shows the entries after it. */
static void test_child_fails_midway(void **state) {
  (void)state;
  static const kv even[] = {{"a", 1, "0.0", 3, 0, 0}, {"c", 1, "0.1", 3, 0, 1},
                            {"e", 1, "0.2", 3, 0, 2}, {"g", 1, "0.3", 3, 0, 3}};
  static const kv odd[] = {{"b", 1, "1.0", 3, 1, 0}, {"d", 1, "1.1", 3, 1, 1},
                           {"f", 1, "1.2", 3, 1, 2}};
  for (int n = 2; n <= 7; n += 5) { /* both the linear and the heap path */
    for (int pass = 0; pass < 4; pass++) {
      mf_iter *children[7];
      children[0] = array_iter_create(even, 4);
      children[1] = array_iter_create(odd, 3);
      ((array_iter *)children[1])->fail_at = 1; /* "d" cannot be read */
      for (int i = 2; i < n; i++) children[i] = iter_new_empty(MAYFLY_OK);
      mf_iter *m = merger_create(bytewise_compare, children, n);
      assert_non_null(m);
      if (pass == 0) { /* forward: a, b, then the error instead of c */
        iter_seek_to_first(m);
        assert_true(mf_slice_equal(iter_key(m), mf_slice_cstr("a")));
        iter_next(m);
        assert_true(mf_slice_equal(iter_key(m), mf_slice_cstr("b")));
        iter_next(m);
      } else if (pass == 1) { /* backward: g, f, then the error instead of e */
        iter_seek_to_last(m);
        assert_true(mf_slice_equal(iter_key(m), mf_slice_cstr("g")));
        iter_prev(m);
        assert_true(mf_slice_equal(iter_key(m), mf_slice_cstr("f")));
        iter_prev(m);
      } else if (pass == 2) { /* a seek that lands the failing child on "d" */
        iter_seek(m, mf_slice_cstr("c"));
      } else { /* at "e" going forward, a step back puts the other child on "d" */
        iter_seek(m, mf_slice_cstr("e"));
        assert_true(mf_slice_equal(iter_key(m), mf_slice_cstr("e")));
        iter_prev(m);
      }
      assert_false(iter_valid(m));
      assert_int_equal(iter_status(m), MAYFLY_ECORRUPT);
      iter_destroy(m);
    }
  }
}

/* Memtables as children, merged in internal-key order: the db's read path shape. */
static void test_memtable_children(void **state) {
  (void)state;
  mf_random rnd;
  mf_random_seed(&rnd, seed ^ 0x5eed);
  enum { MEMS = 6, OPS = 600 };
  memtable *mems[MEMS];
  for (int i = 0; i < MEMS; i++) assert_int_equal(memtable_create(0, 0, &mems[i]), MAYFLY_OK);
  typedef struct ref_ikey {
    mf_buf ikey;
    char value[16];
  } ref_ikey;
  ref_ikey *ref = calloc(OPS, sizeof *ref);
  assert_non_null(ref);
  for (int i = 0; i < OPS; i++) {
    char key[8];
    size_t klen;
    random_key(&rnd, key, &klen);
    uint64_t seq = (uint64_t)i + 1;
    int type = mf_random_uniform(&rnd, 4) == 0 ? MF_TYPE_DELETE : MF_TYPE_VALUE;
    if (type == MF_TYPE_VALUE) snprintf(ref[i].value, sizeof ref[i].value, "v%d", i);
    memtable *dst = mems[mf_random_uniform(&rnd, MEMS)];
    assert_int_equal(memtable_add(dst, seq, type, mf_slice_make(key, klen),
                                  mf_slice_cstr(ref[i].value)),
                     MAYFLY_OK);
    assert_int_equal(ikey_append(&ref[i].ikey, mf_slice_make(key, klen), seq, type), 0);
  }
  /* Sort the reference by ikey (insertion sort: small n, no qsort context needed). */
  for (int i = 1; i < OPS; i++)
    for (int j = i; j > 0 && ikey_compare(mf_buf_slice(&ref[j - 1].ikey),
                                          mf_buf_slice(&ref[j].ikey)) > 0;
         j--) {
      ref_ikey t = ref[j];
      ref[j] = ref[j - 1];
      ref[j - 1] = t;
    }
  mf_iter *children[MEMS];
  for (int i = 0; i < MEMS; i++) {
    children[i] = memtable_iter_create(mems[i]);
    assert_non_null(children[i]);
    memtable_unref(mems[i]); /* the iterators keep them alive */
  }
  mf_iter *m = merger_create(ikey_compare, children, MEMS);
  assert_non_null(m);
  iter_seek_to_first(m);
  for (int i = 0; i < OPS; i++) {
    assert_true(iter_valid(m));
    assert_true(mf_slice_equal(iter_key(m), mf_buf_slice(&ref[i].ikey)));
    assert_true(mf_slice_equal(iter_value(m), mf_slice_cstr(ref[i].value)));
    iter_next(m);
  }
  assert_false(iter_valid(m));
  /* Seek to the newest version of each key at a snapshot, and step around it. */
  for (int t = 0; t < 200; t++) {
    int i = (int)mf_random_uniform(&rnd, OPS);
    mf_slice target = mf_buf_slice(&ref[i].ikey);
    iter_seek(m, target);
    assert_true(iter_valid(m));
    assert_true(mf_slice_equal(iter_key(m), target));
    if (i + 1 < OPS) {
      iter_next(m);
      assert_true(mf_slice_equal(iter_key(m), mf_buf_slice(&ref[i + 1].ikey)));
      iter_prev(m);
    }
    if (i > 0) {
      iter_prev(m);
      assert_true(mf_slice_equal(iter_key(m), mf_buf_slice(&ref[i - 1].ikey)));
      iter_next(m);
    }
    assert_true(mf_slice_equal(iter_key(m), target));
  }
  iter_destroy(m);
  for (int i = 0; i < OPS; i++) mf_buf_free(&ref[i].ikey);
  free(ref);
}

int main(void) {
  const char *env = getenv("MAYFLY_TEST_SEED");
  seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
  printf("test_merger: seed %llu (replay with MAYFLY_TEST_SEED)\n", (unsigned long long)seed);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_random_merges),
      cmocka_unit_test(test_empty_and_null_array),
      cmocka_unit_test(test_child_error_status),
      cmocka_unit_test(test_child_fails_midway),
      cmocka_unit_test(test_memtable_children),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
