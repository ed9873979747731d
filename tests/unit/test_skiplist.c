/* Skiplist tests: order, contains, seek and prev against a sorted array; one writer racing
 * two or more lock-free readers; only the latest reservation can be inserted. Randomized:
 * prints its seed; set MAYFLY_TEST_SEED to replay. */
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
#include "mem/skiplist.h"
#include "util/arena.h"
#include "util/coding.h"
#include "util/random.h"

static uint64_t seed;

/* An entry is 16 bytes: the key (fixed64) and a check word derived from it, so readers can
 * tell a fully written entry from a torn one. */
#define CHECK_MIX UINT64_C(0x9e3779b97f4a7c15)

static int key_cmp(void *ctx, const char *a, const char *b) {
  (void)ctx;
  uint64_t x = decode_fixed64(a), y = decode_fixed64(b);
  return (x > y) - (x < y);
}

/* Prepares a node for key and writes its entry; the caller inserts it (or drops it). */
static skiplist_prepared make_entry(skiplist *s, uint64_t key) {
  skiplist_prepared node;
  char *p = skiplist_prepare(s, 16, &node);
  assert_non_null(p);
  encode_fixed64(p, key);
  encode_fixed64(p + 8, key ^ CHECK_MIX);
  return node;
}

static uint64_t entry_key(const char *e) { return decode_fixed64(e); }

static int u64_cmp(const void *x, const void *y) {
  uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
  return (a > b) - (a < b);
}

/* Index of the first element >= v in sorted[0..n). */
static size_t lower_bound(const uint64_t *sorted, size_t n, uint64_t v) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (sorted[mid] < v)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static void test_empty(void **state) {
  (void)state;
  mf_arena *a;
  assert_int_equal(arena_create(&a), MAYFLY_OK);
  skiplist *s;
  assert_int_equal(skiplist_create(a, key_cmp, NULL, seed, &s), MAYFLY_OK);
  char probe[8];
  encode_fixed64(probe, 10);
  assert_false(skiplist_contains(s, probe));
  skiplist_iter it;
  skiplist_iter_init(&it, s);
  assert_false(skiplist_iter_valid(&it));
  skiplist_iter_seek_to_first(&it);
  assert_false(skiplist_iter_valid(&it));
  skiplist_iter_seek_to_last(&it);
  assert_false(skiplist_iter_valid(&it));
  skiplist_iter_seek(&it, probe);
  assert_false(skiplist_iter_valid(&it));
  arena_destroy(a);
}

static void test_against_sorted_array(void **state) {
  (void)state;
  mf_random rnd;
  mf_random_seed(&rnd, seed);
  mf_arena *a;
  assert_int_equal(arena_create(&a), MAYFLY_OK);
  skiplist *s;
  assert_int_equal(skiplist_create(a, key_cmp, NULL, seed + 1, &s), MAYFLY_OK);

  enum { N = 5000 };
  uint64_t *keys = malloc(sizeof(uint64_t) * N);
  assert_non_null(keys);
  size_t n = 0;
  /* Keys from a small range so that misses and neighbours are common; even numbers only, so
   * odd probes are always misses. */
  for (int i = 0; i < N; i++) {
    uint64_t k = mf_random_uniform(&rnd, 4 * N) * 2;
    char probe[8];
    encode_fixed64(probe, k);
    if (mf_random_uniform(&rnd, 50) == 0) /* a node prepared, never inserted: just dropped */
      (void)make_entry(s, k + 1);
    if (skiplist_contains(s, probe)) {
      skiplist_prepared dup = make_entry(s, k);
      assert_int_equal(skiplist_insert_prepared(s, &dup), MAYFLY_EINVAL);
      assert_int_equal(skiplist_insert_prepared(s, &dup), MAYFLY_EINVAL); /* still refused */
      continue;
    }
    skiplist_prepared node = make_entry(s, k);
    assert_int_equal(skiplist_insert_prepared(s, &node), MAYFLY_OK);
    assert_true(skiplist_contains(s, probe));
    keys[n++] = k;
  }
  qsort(keys, n, sizeof keys[0], u64_cmp);

  /* Forward. */
  skiplist_iter it;
  skiplist_iter_init(&it, s);
  skiplist_iter_seek_to_first(&it);
  for (size_t i = 0; i < n; i++) {
    assert_true(skiplist_iter_valid(&it));
    assert_true(entry_key(skiplist_iter_entry(&it)) == keys[i]);
    skiplist_iter_next(&it);
  }
  assert_false(skiplist_iter_valid(&it));

  /* Backward. */
  skiplist_iter_seek_to_last(&it);
  for (size_t i = n; i-- > 0;) {
    assert_true(skiplist_iter_valid(&it));
    assert_true(entry_key(skiplist_iter_entry(&it)) == keys[i]);
    skiplist_iter_prev(&it);
  }
  assert_false(skiplist_iter_valid(&it));

  /* contains: hits and misses. */
  for (size_t i = 0; i < n; i += 7) {
    char probe[8];
    encode_fixed64(probe, keys[i]);
    assert_true(skiplist_contains(s, probe));
    encode_fixed64(probe, keys[i] + 1);
    assert_false(skiplist_contains(s, probe));
  }

  /* seek to random targets, then walk a few steps each way. */
  for (int t = 0; t < 2000; t++) {
    uint64_t target = mf_random_uniform(&rnd, 8 * N + 10);
    char probe[8];
    encode_fixed64(probe, target);
    size_t pos = lower_bound(keys, n, target);
    skiplist_iter_seek(&it, probe);
    if (pos == n) {
      assert_false(skiplist_iter_valid(&it));
      continue;
    }
    assert_true(skiplist_iter_valid(&it));
    assert_true(entry_key(skiplist_iter_entry(&it)) == keys[pos]);
    if (t % 2) {
      for (size_t i = pos; i-- > 0 && i + 5 > pos;) {
        skiplist_iter_prev(&it);
        assert_true(skiplist_iter_valid(&it));
        assert_true(entry_key(skiplist_iter_entry(&it)) == keys[i]);
      }
      if (pos < 5) {
        skiplist_iter_prev(&it);
        assert_false(skiplist_iter_valid(&it));
      }
    } else {
      for (size_t i = pos + 1; i < n && i < pos + 5; i++) {
        skiplist_iter_next(&it);
        assert_true(skiplist_iter_valid(&it));
        assert_true(entry_key(skiplist_iter_entry(&it)) == keys[i]);
      }
    }
  }
  free(keys);
  arena_destroy(a);
}

/* ---- one writer, several readers ---- */

enum { CONC_KEYS = 20000, CONC_READERS = 3 };

typedef struct conc_state {
  skiplist *list;
  mf_arena *arena;
  uint64_t *insert_order;  /* keys in the order the writer inserts them */
  uint64_t *sorted;        /* the same keys sorted */
  uint32_t *order_of;      /* sorted index -> insertion index */
  atomic_size_t started;   /* inserts begun (stored before the insert) */
  atomic_size_t completed; /* inserts finished */
  atomic_int done;
  atomic_int failures;
  atomic_long passes;
  atomic_long partial_passes; /* passes that saw some but not all keys */
} conc_state;

static void *writer_main(void *arg) {
  conc_state *st = arg;
  for (size_t i = 0; i < CONC_KEYS; i++) {
    atomic_store_explicit(&st->started, i + 1, memory_order_release);
    skiplist_prepared node = make_entry(st->list, st->insert_order[i]);
    if (skiplist_insert_prepared(st->list, &node) != MAYFLY_OK)
      atomic_fetch_add(&st->failures, 1);
    atomic_store_explicit(&st->completed, i + 1, memory_order_release);
  }
  atomic_store(&st->done, 1);
  return NULL;
}

/* Returns 0 when a pass over the list is consistent, else a failure code. */
static int reader_pass(conc_state *st, int backward) {
  size_t completed_before = atomic_load_explicit(&st->completed, memory_order_acquire);
  size_t seen_completed = 0; /* seen keys whose insert had completed before the pass */
  skiplist_iter it;
  skiplist_iter_init(&it, st->list);
  if (backward)
    skiplist_iter_seek_to_last(&it);
  else
    skiplist_iter_seek_to_first(&it);
  int have_last = 0;
  uint64_t last = 0;
  for (; skiplist_iter_valid(&it);
       backward ? skiplist_iter_prev(&it) : skiplist_iter_next(&it)) {
    const char *e = skiplist_iter_entry(&it);
    uint64_t k = entry_key(e);
    if (decode_fixed64(e + 8) != (k ^ CHECK_MIX)) return 1; /* torn entry */
    if (have_last && (backward ? k >= last : k <= last)) return 2; /* not strictly ordered */
    have_last = 1;
    last = k;
    size_t pos = lower_bound(st->sorted, CONC_KEYS, k);
    if (pos == CONC_KEYS || st->sorted[pos] != k) return 3; /* never inserted */
    size_t order = st->order_of[pos];
    if (order >= atomic_load_explicit(&st->started, memory_order_acquire))
      return 4; /* seen before its insert began */
    if (order < completed_before) seen_completed++;
  }
  if (seen_completed != completed_before) return 5; /* missed a completed insert */
  return 0;
}

/* Seeks to target and checks the landing point X: X >= target, no key whose insert completed
 * before the seek lies in [target, X), and X's predecessor is < X. (The predecessor may be
 * >= target: it can have been inserted after the seek.) */
static int reader_seek(conc_state *st, uint64_t target) {
  size_t completed_before = atomic_load_explicit(&st->completed, memory_order_acquire);
  char probe[8];
  encode_fixed64(probe, target);
  skiplist_iter it;
  skiplist_iter_init(&it, st->list);
  skiplist_iter_seek(&it, probe);
  uint64_t landed = UINT64_MAX;
  if (skiplist_iter_valid(&it)) {
    landed = entry_key(skiplist_iter_entry(&it));
    if (landed < target) return 6;
  }
  for (size_t pos = lower_bound(st->sorted, CONC_KEYS, target);
       pos < CONC_KEYS && st->sorted[pos] < landed; pos++)
    if (st->order_of[pos] < completed_before) return 7; /* skipped a completed insert */
  if (skiplist_iter_valid(&it)) {
    skiplist_iter_prev(&it);
    if (skiplist_iter_valid(&it) && entry_key(skiplist_iter_entry(&it)) >= landed) return 8;
  }
  return 0;
}

static void *reader_main(void *arg) {
  conc_state *st = arg;
  int pass = 0;
  mf_random rnd;
  mf_random_seed(&rnd, seed + (uint64_t)(uintptr_t)&pass);
  while (atomic_load(&st->started) == 0) {
  }
  for (;;) {
    int finished = atomic_load(&st->done); /* one more full pass after the writer ends */
    size_t before = atomic_load(&st->completed);
    int rc = reader_pass(st, pass % 3 == 2);
    for (int i = 0; i < 20 && rc == 0; i++)
      rc = reader_seek(st, mf_random_uniform(&rnd, (uint64_t)CONC_KEYS * 1000003 + 100));
    if (before > 0 && atomic_load(&st->completed) < CONC_KEYS)
      atomic_fetch_add(&st->partial_passes, 1);
    if (rc) {
      fprintf(stderr, "reader: inconsistent pass (code %d)\n", rc);
      atomic_fetch_add(&st->failures, 1);
      return NULL;
    }
    atomic_fetch_add(&st->passes, 1);
    pass++;
    if (finished) return NULL;
  }
}

/* Prepared nodes: many pending at once, none visible before its insert, inserted in any
 * order (here reversed and shuffled) with nothing allocated; one never inserted stays out of
 * the list; a duplicate is refused and leaves the list as it was. */
static void test_prepared_nodes(void **state) {
  (void)state;
  mf_random rnd;
  mf_random_seed(&rnd, seed + 7);
  mf_arena *a;
  assert_int_equal(arena_create(&a), MAYFLY_OK);
  skiplist *s;
  assert_int_equal(skiplist_create(a, key_cmp, NULL, seed + 8, &s), MAYFLY_OK);
  enum { N = 300 };
  skiplist_prepared p[N];
  for (int i = 0; i < N; i++) {
    char *e = skiplist_prepare(s, 16, &p[i]);
    assert_non_null(e);
    encode_fixed64(e, (uint64_t)i * 2);
    encode_fixed64(e + 8, ((uint64_t)i * 2) ^ CHECK_MIX);
  }
  for (int i = 0; i < N; i++) { /* nothing is in the list yet */
    char probe[8];
    encode_fixed64(probe, (uint64_t)i * 2);
    assert_false(skiplist_contains(s, probe));
  }
  int order[N];
  for (int i = 0; i < N; i++) order[i] = N - 1 - i;
  for (int i = N - 1; i > 0; i--) { /* shuffle the last two thirds */
    if (i < N / 3) break;
    int j = N / 3 + (int)mf_random_uniform(&rnd, (uint64_t)(i - N / 3 + 1));
    int t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  size_t used_before = arena_memory_usage(a);
  for (int k = 0; k < N; k++) {
    if (order[k] == 7) continue; /* prepared, never inserted */
    assert_int_equal(skiplist_insert_prepared(s, &p[order[k]]), MAYFLY_OK);
  }
  assert_int_equal(arena_memory_usage(a), used_before); /* inserting allocates nothing */
  skiplist_prepared dup;
  char *e = skiplist_prepare(s, 16, &dup);
  assert_non_null(e);
  encode_fixed64(e, 10);
  encode_fixed64(e + 8, UINT64_C(10) ^ CHECK_MIX);
  assert_int_equal(skiplist_insert_prepared(s, &dup), MAYFLY_EINVAL);
  skiplist_iter it;
  skiplist_iter_init(&it, s);
  int n = 0;
  for (skiplist_iter_seek_to_first(&it); skiplist_iter_valid(&it); skiplist_iter_next(&it)) {
    uint64_t want = (uint64_t)(n == 7 ? ++n : n) * 2;
    assert_int_equal(entry_key(skiplist_iter_entry(&it)), want);
    n++;
  }
  assert_int_equal(n, N);
  arena_destroy(a);
}

static void test_concurrent_readers(void **state) {
  (void)state;
  mf_random rnd;
  mf_random_seed(&rnd, seed ^ 0xabcdef);
  conc_state st;
  memset(&st, 0, sizeof st);
  assert_int_equal(arena_create(&st.arena), MAYFLY_OK);
  assert_int_equal(skiplist_create(st.arena, key_cmp, NULL, seed, &st.list), MAYFLY_OK);
  st.insert_order = malloc(sizeof(uint64_t) * CONC_KEYS);
  st.sorted = malloc(sizeof(uint64_t) * CONC_KEYS);
  st.order_of = malloc(sizeof(uint32_t) * CONC_KEYS);
  assert_non_null(st.insert_order);
  assert_non_null(st.sorted);
  assert_non_null(st.order_of);
  /* Distinct keys: a random multiplier over distinct indices, in shuffled order. */
  for (size_t i = 0; i < CONC_KEYS; i++) st.insert_order[i] = i * 1000003 + 17;
  for (size_t i = CONC_KEYS - 1; i > 0; i--) {
    size_t j = (size_t)mf_random_uniform(&rnd, i + 1);
    uint64_t t = st.insert_order[i];
    st.insert_order[i] = st.insert_order[j];
    st.insert_order[j] = t;
  }
  memcpy(st.sorted, st.insert_order, sizeof(uint64_t) * CONC_KEYS);
  qsort(st.sorted, CONC_KEYS, sizeof(uint64_t), u64_cmp);
  for (size_t i = 0; i < CONC_KEYS; i++) {
    size_t pos = lower_bound(st.sorted, CONC_KEYS, st.insert_order[i]);
    st.order_of[pos] = (uint32_t)i;
  }
  atomic_init(&st.started, 0);
  atomic_init(&st.completed, 0);
  atomic_init(&st.done, 0);
  atomic_init(&st.failures, 0);
  atomic_init(&st.passes, 0);
  atomic_init(&st.partial_passes, 0);

  pthread_t readers[CONC_READERS], writer;
  for (int i = 0; i < CONC_READERS; i++)
    assert_int_equal(pthread_create(&readers[i], NULL, reader_main, &st), 0);
  assert_int_equal(pthread_create(&writer, NULL, writer_main, &st), 0);
  assert_int_equal(pthread_join(writer, NULL), 0);
  for (int i = 0; i < CONC_READERS; i++) assert_int_equal(pthread_join(readers[i], NULL), 0);

  printf("test_skiplist: %ld reader passes, %ld while the writer was inserting\n",
         (long)atomic_load(&st.passes), (long)atomic_load(&st.partial_passes));
  assert_int_equal(atomic_load(&st.failures), 0);
  assert_true(atomic_load(&st.passes) >= CONC_READERS);
  /* After the writer is done, a pass sees everything. */
  assert_int_equal(reader_pass(&st, 0), 0);
  assert_int_equal(reader_pass(&st, 1), 0);
  free(st.insert_order);
  free(st.sorted);
  free(st.order_of);
  arena_destroy(st.arena);
}

int main(void) {
  const char *env = getenv("MAYFLY_TEST_SEED");
  seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
  printf("test_skiplist: seed %llu (replay with MAYFLY_TEST_SEED)\n", (unsigned long long)seed);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty),
      cmocka_unit_test(test_against_sorted_array),
      cmocka_unit_test(test_prepared_nodes),
      cmocka_unit_test(test_concurrent_readers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
