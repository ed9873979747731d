/* Tests for the sharded LRU cache: hits and misses, LRU order, pinning, erase/replace while
 * pinned, exactly-once deletion, capacity 0, a randomized model check, and concurrent use.
 * Randomized tests print their seed; MAYFLY_TEST_SEED=<n> replays one. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/cache.h"
#include "env/env.h"
#include "mayfly.h"
#include "util/random.h"

/* ---- deletion bookkeeping: values are small integers cast to pointers ---- */

#define MAX_VALUES 4096

static int deleted[MAX_VALUES];     /* times each value's deleter ran */
static int key_mismatch;            /* deleter saw a key that was not the value's key */
static char value_key[MAX_VALUES][16];

static void *make_value(int id, const char *key) {
  snprintf(value_key[id], sizeof value_key[id], "%s", key);
  return (void *)(uintptr_t)id;
}

static void count_deleter(mf_slice key, void *value) {
  int id = (int)(uintptr_t)value;
  deleted[id]++;
  if (!mf_slice_equal(key, mf_slice_cstr(value_key[id]))) key_mismatch++;
}

static int reset(void **state) {
  (void)state;
  memset(deleted, 0, sizeof deleted);
  key_mismatch = 0;
  return 0;
}

static mf_cache_handle *put(mf_cache *c, const char *key, int id, size_t charge) {
  return cache_insert(c, mf_slice_cstr(key), make_value(id, key), charge, count_deleter);
}

/* Inserts and releases at once. */
static void put_released(mf_cache *c, const char *key, int id, size_t charge) {
  mf_cache_handle *h = put(c, key, id, charge);
  assert_non_null(h);
  cache_release(c, h);
}

/* The value cached under key, or -1 on a miss. */
static int get(mf_cache *c, const char *key) {
  mf_cache_handle *h = cache_lookup(c, mf_slice_cstr(key));
  if (!h) return -1;
  int id = (int)(uintptr_t)cache_value(h);
  cache_release(c, h);
  return id;
}

static uint64_t test_seed(void) {
  const char *env = getenv("MAYFLY_TEST_SEED");
  uint64_t seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
  printf("seed %llu (replay with MAYFLY_TEST_SEED=%llu)\n", (unsigned long long)seed,
         (unsigned long long)seed);
  return seed;
}

/* ---- tests ---- */

static void test_hit_and_miss(void **state) {
  mf_cache *c;
  assert_int_equal(cache_create(1000, &c), MAYFLY_OK);
  assert_int_equal(get(c, "a"), -1);
  put_released(c, "a", 1, 1);
  put_released(c, "b", 2, 1);
  assert_int_equal(get(c, "a"), 1);
  assert_int_equal(get(c, "b"), 2);
  assert_int_equal(get(c, "c"), -1);
  /* Keys are copied and compared by content, including the empty key. */
  char buf[2] = {'a', 0};
  assert_int_equal(get(c, buf), 1);
  put_released(c, "", 3, 1);
  assert_int_equal(get(c, ""), 3);
  assert_int_equal(cache_total_charge(c), 3);
  cache_destroy(c);
  assert_int_equal(deleted[1] + deleted[2] + deleted[3], 3);
  assert_int_equal(key_mismatch, 0);
}

static void test_lru_order(void **state) {
  mf_cache *c;
  assert_int_equal(cache_create(3, &c), MAYFLY_OK); /* small: one shard, exact LRU */
  put_released(c, "a", 1, 1);
  put_released(c, "b", 2, 1);
  put_released(c, "c", 3, 1);
  assert_int_equal(get(c, "a"), 1); /* a is now the most recent: b is the oldest */
  put_released(c, "d", 4, 1);
  assert_int_equal(deleted[2], 1);
  assert_int_equal(get(c, "b"), -1);
  put_released(c, "e", 5, 1);
  assert_int_equal(deleted[3], 1);
  assert_int_equal(get(c, "a"), 1);
  assert_int_equal(get(c, "d"), 4);
  assert_int_equal(get(c, "e"), 5);
  assert_int_equal(cache_total_charge(c), 3);
  /* A heavy entry evicts as many old ones as it needs: a (oldest after the gets) and d. */
  put_released(c, "f", 6, 2);
  assert_int_equal(deleted[1], 1);
  assert_int_equal(deleted[4], 1);
  assert_int_equal(get(c, "e"), 5);
  assert_int_equal(get(c, "f"), 6);
  assert_int_equal(cache_total_charge(c), 3);
  cache_destroy(c);
  for (int i = 1; i <= 6; i++) assert_int_equal(deleted[i], 1);
  assert_int_equal(key_mismatch, 0);
}

static void test_pinned_survive_eviction(void **state) {
  mf_cache *c;
  assert_int_equal(cache_create(2, &c), MAYFLY_OK);
  mf_cache_handle *ha = put(c, "a", 1, 1);
  assert_non_null(ha);
  for (int i = 0; i < 10; i++) {
    char k[8];
    snprintf(k, sizeof k, "k%d", i);
    put_released(c, k, 10 + i, 1);
  }
  /* a is pinned: still there, never deleted, though far older than everything else. */
  assert_int_equal(deleted[1], 0);
  assert_int_equal((int)(uintptr_t)cache_value(ha), 1);
  assert_int_equal(get(c, "a"), 1);
  for (int i = 0; i < 9; i++) assert_int_equal(deleted[10 + i], 1);
  cache_release(c, ha);
  assert_int_equal(get(c, "a"), 1);
  assert_true(cache_total_charge(c) <= 2);

  /* Pinned beyond capacity: over-capacity entries go as soon as they are released. */
  mf_cache_handle *h1 = put(c, "x", 30, 1);
  mf_cache_handle *h2 = put(c, "y", 31, 1);
  mf_cache_handle *h3 = put(c, "z", 32, 1);
  assert_int_equal(cache_total_charge(c), 3); /* pins exceed capacity; nothing freed */
  assert_int_equal(deleted[30] + deleted[31] + deleted[32], 0);
  cache_release(c, h1);
  assert_int_equal(deleted[30], 1);
  assert_int_equal(get(c, "x"), -1);
  cache_release(c, h2);
  cache_release(c, h3);
  assert_int_equal(cache_total_charge(c), 2);
  assert_int_equal(get(c, "y"), 31);
  assert_int_equal(get(c, "z"), 32);
  cache_destroy(c);
  assert_int_equal(deleted[1], 1);
  assert_int_equal(deleted[31] + deleted[32], 2);
  assert_int_equal(key_mismatch, 0);
}

static void test_erase_while_pinned(void **state) {
  mf_cache *c;
  assert_int_equal(cache_create(100, &c), MAYFLY_OK);
  mf_cache_handle *h = put(c, "a", 1, 5);
  mf_cache_handle *h2 = cache_lookup(c, mf_slice_cstr("a"));
  assert_ptr_equal(h, h2);
  cache_erase(c, mf_slice_cstr("a"));
  assert_int_equal(get(c, "a"), -1);
  assert_int_equal(cache_total_charge(c), 0);
  assert_int_equal(deleted[1], 0);
  assert_int_equal((int)(uintptr_t)cache_value(h), 1);
  cache_release(c, h);
  assert_int_equal(deleted[1], 0);
  cache_release(c, h2);
  assert_int_equal(deleted[1], 1);
  /* Erasing a missing key, or twice, is harmless. */
  cache_erase(c, mf_slice_cstr("a"));
  cache_erase(c, mf_slice_cstr("nope"));
  put_released(c, "b", 2, 1);
  cache_erase(c, mf_slice_cstr("b"));
  assert_int_equal(deleted[2], 1);
  cache_destroy(c);
  assert_int_equal(deleted[1], 1);
  assert_int_equal(deleted[2], 1);
}

static void test_replace_while_pinned(void **state) {
  mf_cache *c;
  assert_int_equal(cache_create(100, &c), MAYFLY_OK);
  mf_cache_handle *h1 = put(c, "a", 1, 4);
  mf_cache_handle *h2 = put(c, "a", 2, 6);
  assert_int_equal(get(c, "a"), 2);
  assert_int_equal(cache_total_charge(c), 6); /* the replaced entry left the cache */
  assert_int_equal(deleted[1], 0);
  assert_int_equal((int)(uintptr_t)cache_value(h1), 1);
  cache_release(c, h1);
  assert_int_equal(deleted[1], 1);
  cache_release(c, h2);
  assert_int_equal(deleted[2], 0);
  assert_int_equal(get(c, "a"), 2);
  /* Replacing an unpinned entry deletes the old value at once. */
  put_released(c, "a", 3, 1);
  assert_int_equal(deleted[2], 1);
  assert_int_equal(get(c, "a"), 3);
  cache_destroy(c);
  assert_int_equal(deleted[3], 1);
  assert_int_equal(key_mismatch, 0);
}

static void test_capacity_zero(void **state) {
  mf_cache *c;
  assert_int_equal(cache_create(0, &c), MAYFLY_OK);
  mf_cache_handle *h = put(c, "a", 1, 1);
  assert_non_null(h);
  assert_int_equal((int)(uintptr_t)cache_value(h), 1);
  assert_int_equal(deleted[1], 0);
  cache_release(c, h);
  assert_int_equal(deleted[1], 1);
  assert_int_equal(get(c, "a"), -1);
  assert_int_equal(cache_total_charge(c), 0);
  /* Charge 0 entries do not exceed capacity 0: they stay. */
  put_released(c, "z", 2, 0);
  assert_int_equal(get(c, "z"), 2);
  cache_destroy(c);
  assert_int_equal(deleted[1], 1);
  assert_int_equal(deleted[2], 1);
}

static void test_new_id(void **state) {
  mf_cache *c;
  assert_int_equal(cache_create(10, &c), MAYFLY_OK);
  uint64_t a = cache_new_id(c), b = cache_new_id(c);
  assert_true(a != 0);
  assert_true(b != 0);
  assert_true(a != b);
  cache_destroy(c);
}

/* The capacity is split across shards without exceeding it, and big caches use the space. */
static void test_sharded_capacity(void **state) {
  mf_cache *c;
  assert_int_equal(cache_create(1000, &c), MAYFLY_OK);
  char k[16];
  for (int i = 0; i < 3000; i++) {
    snprintf(k, sizeof k, "key%d", i);
    put_released(c, k, i, 1);
    assert_true(cache_total_charge(c) <= 1000);
  }
  assert_true(cache_total_charge(c) >= 800); /* every shard is nearly full */
  int hits = 0;
  for (int i = 0; i < 3000; i++) {
    snprintf(k, sizeof k, "key%d", i);
    hits += get(c, k) == i;
  }
  assert_int_equal((size_t)hits, cache_total_charge(c));
  cache_destroy(c);
  for (int i = 0; i < 3000; i++) assert_int_equal(deleted[i], 1);
  assert_int_equal(key_mismatch, 0);
}

/* Random operations against a model: a lookup finds exactly the latest value inserted for
 * its key or misses (never a stale or erased one), pins keep values alive, every value is
 * deleted exactly once, and the unpinned total never exceeds capacity. */
static void test_random_model(void **state) {
  uint64_t seed = test_seed();
  mf_random rnd;
  mf_random_seed(&rnd, seed);
  enum { KEYS = 64, PINS = 8, OPS = 3000 };
  for (size_t capacity = 0; capacity <= 200; capacity += 40) {
    reset(NULL);
    mf_cache *c;
    assert_int_equal(cache_create(capacity, &c), MAYFLY_OK);
    int latest[KEYS]; /* value id the cache may hold for each key, or -1 */
    for (int i = 0; i < KEYS; i++) latest[i] = -1;
    mf_cache_handle *pins[PINS] = {0};
    int pinned_id[PINS];
    int next_id = 0;
    char k[16];
    for (int op = 0; op < OPS; op++) {
      int key = (int)mf_random_uniform(&rnd, KEYS);
      snprintf(k, sizeof k, "k%d", key);
      int slot = (int)mf_random_uniform(&rnd, PINS);
      switch (mf_random_uniform(&rnd, 4)) {
        case 0: { /* insert, maybe keeping the pin */
          mf_cache_handle *h = put(c, k, next_id, 1 + mf_random_uniform(&rnd, 5));
          assert_non_null(h);
          latest[key] = next_id++;
          if (!pins[slot]) {
            pins[slot] = h;
            pinned_id[slot] = latest[key];
          } else {
            cache_release(c, h);
          }
          break;
        }
        case 1: { /* lookup */
          int got = get(c, k);
          if (got != -1) assert_int_equal(got, latest[key]);
          if (got == -1) latest[key] = -1; /* evicted for good */
          break;
        }
        case 2:
          cache_erase(c, mf_slice_cstr(k));
          latest[key] = -1;
          break;
        case 3:
          if (pins[slot]) {
            assert_int_equal((int)(uintptr_t)cache_value(pins[slot]), pinned_id[slot]);
            assert_int_equal(deleted[pinned_id[slot]], 0);
            cache_release(c, pins[slot]);
            pins[slot] = NULL;
          }
          break;
      }
      assert_true(next_id < MAX_VALUES);
    }
    for (int i = 0; i < PINS; i++) {
      if (pins[i]) {
        assert_int_equal(deleted[pinned_id[i]], 0);
        cache_release(c, pins[i]);
      }
    }
    assert_true(cache_total_charge(c) <= capacity);
    for (int i = 0; i < next_id; i++) assert_true(deleted[i] <= 1);
    cache_destroy(c);
    for (int i = 0; i < next_id; i++) assert_int_equal(deleted[i], 1);
    assert_int_equal(key_mismatch, 0);
  }
}

/* ---- concurrency ---- */

#define THREADS 4
#define THREAD_OPS 20000
#define THREAD_KEYS 2000
#define IDS_PER_THREAD 1000
#define VALUE_MAGIC 0x6d61796679ull

typedef struct shared_value {
  uint64_t magic;
  int key;
} shared_value;

static atomic_long values_created;
static atomic_long values_deleted;
static atomic_long thread_failures;

static void shared_deleter(mf_slice key, void *value) {
  shared_value *v = value;
  char k[16];
  snprintf(k, sizeof k, "k%d", v->key);
  if (v->magic != VALUE_MAGIC || !mf_slice_equal(key, mf_slice_cstr(k)))
    atomic_fetch_add(&thread_failures, 1);
  v->magic = 0;
  free(v);
  atomic_fetch_add(&values_deleted, 1);
}

typedef struct worker {
  mf_cache *cache;
  uint64_t seed;
  uint64_t ids[IDS_PER_THREAD];
} worker;

static void *worker_main(void *arg) {
  worker *w = arg;
  mf_random rnd;
  mf_random_seed(&rnd, w->seed);
  char k[16];
  for (int op = 0; op < THREAD_OPS; op++) {
    int key = (int)mf_random_uniform(&rnd, THREAD_KEYS);
    snprintf(k, sizeof k, "k%d", key);
    uint64_t r = mf_random_uniform(&rnd, 10);
    if (r == 0) {
      cache_erase(w->cache, mf_slice_cstr(k));
      continue;
    }
    mf_cache_handle *h = cache_lookup(w->cache, mf_slice_cstr(k));
    if (!h) {
      shared_value *v = malloc(sizeof *v);
      if (!v) {
        atomic_fetch_add(&thread_failures, 1);
        continue;
      }
      v->magic = VALUE_MAGIC;
      v->key = key;
      atomic_fetch_add(&values_created, 1);
      h = cache_insert(w->cache, mf_slice_cstr(k), v, 1 + mf_random_uniform(&rnd, 3),
                       shared_deleter);
      if (!h) {
        atomic_fetch_add(&thread_failures, 1);
        continue;
      }
    }
    shared_value *v = cache_value(h);
    if (v->magic != VALUE_MAGIC || v->key != key) atomic_fetch_add(&thread_failures, 1);
    cache_release(w->cache, h);
  }
  for (int i = 0; i < IDS_PER_THREAD; i++) w->ids[i] = cache_new_id(w->cache);
  return NULL;
}

static int compare_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

static void test_concurrent(void **state) {
  uint64_t seed = test_seed();
  atomic_store(&values_created, 0);
  atomic_store(&values_deleted, 0);
  atomic_store(&thread_failures, 0);
  mf_cache *c;
  assert_int_equal(cache_create(1000, &c), MAYFLY_OK);
  mf_env *env = env_posix();
  static worker workers[THREADS];
  mf_thread *threads[THREADS];
  for (int i = 0; i < THREADS; i++) {
    workers[i].cache = c;
    workers[i].seed = seed + (uint64_t)i;
    assert_int_equal(env->thread_start(env, worker_main, &workers[i], &threads[i]), MAYFLY_OK);
  }
  for (int i = 0; i < THREADS; i++) assert_int_equal(env->thread_join(env, threads[i]), MAYFLY_OK);
  assert_int_equal(atomic_load(&thread_failures), 0);
  assert_true(cache_total_charge(c) <= 1000);
  /* Every value not deleted yet is still cached, and only those. */
  assert_true(atomic_load(&values_created) > atomic_load(&values_deleted));

  static uint64_t ids[THREADS * IDS_PER_THREAD];
  for (int i = 0; i < THREADS; i++)
    memcpy(ids + i * IDS_PER_THREAD, workers[i].ids, sizeof workers[i].ids);
  qsort(ids, THREADS * IDS_PER_THREAD, sizeof ids[0], compare_u64);
  assert_true(ids[0] != 0);
  for (int i = 1; i < THREADS * IDS_PER_THREAD; i++) assert_true(ids[i] != ids[i - 1]);

  cache_destroy(c);
  assert_int_equal(atomic_load(&values_created), atomic_load(&values_deleted));
  assert_int_equal(atomic_load(&thread_failures), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_hit_and_miss, reset),
      cmocka_unit_test_setup(test_lru_order, reset),
      cmocka_unit_test_setup(test_pinned_survive_eviction, reset),
      cmocka_unit_test_setup(test_erase_while_pinned, reset),
      cmocka_unit_test_setup(test_replace_while_pinned, reset),
      cmocka_unit_test_setup(test_capacity_zero, reset),
      cmocka_unit_test_setup(test_new_id, reset),
      cmocka_unit_test_setup(test_sharded_capacity, reset),
      cmocka_unit_test_setup(test_random_model, reset),
      cmocka_unit_test_setup(test_concurrent, reset),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
