/* Tests for the table cache, on small tables in the in-memory env: lookups through the cache,
 * reuse of open tables, the max_open_files bound, iterators keeping evicted tables open,
 * explicit eviction, and errors that name the file. An env wrapper counts open files.
 * The concurrent test prints its seed; MAYFLY_TEST_SEED=<n> replays one. */
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
#include "cache/table_cache.h"
#include "env/env.h"
#include "mayfly.h"
#include "table/table.h"
#include "table/table_builder.h"
#include "util/error.h"
#include "util/ikey.h"
#include "util/random.h"
#include "version/filename.h"

#define DB "db"
#define KEYS_PER_TABLE 200

/* ---- an env that counts readable files: how many are open, how many opens ---- */

static mf_env *inner_env;
static mf_env counting_env;
static atomic_int open_files;
static atomic_int total_opens;

static int counting_open_readable(mf_env *env, const char *path, mf_rfile **out) {
  int rc = inner_env->open_readable(inner_env, path, out);
  if (rc == MAYFLY_OK) {
    atomic_fetch_add(&open_files, 1);
    atomic_fetch_add(&total_opens, 1);
  }
  return rc;
}

static void counting_close_readable(mf_rfile *f) {
  atomic_fetch_sub(&open_files, 1);
  inner_env->close_readable(f);
}

static int setup(void **state) {
  if (env_mem_create(&inner_env) != MAYFLY_OK) return -1;
  memcpy(&counting_env, inner_env, sizeof counting_env);
  counting_env.open_readable = counting_open_readable;
  counting_env.close_readable = counting_close_readable;
  counting_env.destroy = NULL;
  atomic_store(&open_files, 0);
  atomic_store(&total_opens, 0);
  *state = &counting_env;
  return 0;
}

static int teardown(void **state) {
  inner_env->destroy(inner_env);
  inner_env = NULL;
  return 0;
}

/* ---- building tables ---- */

static void user_key(char *buf, size_t n, uint64_t table_number, int i) {
  snprintf(buf, n, "t%03llu-k%05d", (unsigned long long)table_number, i);
}

/* Writes table `number` holding KEYS_PER_TABLE keys "tNNN-kIIIII" -> "value-NNN-IIIII" with
 * seq i + 1. Returns the file size. */
static uint64_t build_table(mf_env *env, uint64_t number) {
  char *fname = filename_table(DB, number);
  assert_non_null(fname);
  mf_wfile *file;
  assert_int_equal(env->new_writable(env, fname, &file), MAYFLY_OK);
  table_options o = {.block_size = 256, .block_restart_interval = 4, .bloom_bits_per_key = 10,
                     .compression = 0, .compression_level = 0};
  table_builder *b;
  assert_int_equal(table_builder_create(&o, env, file, fname, &b), MAYFLY_OK);
  mf_buf ikey = MF_BUF_INIT;
  for (int i = 0; i < KEYS_PER_TABLE; i++) {
    char k[32], v[32];
    user_key(k, sizeof k, number, i);
    snprintf(v, sizeof v, "value-%03llu-%05d", (unsigned long long)number, i);
    mf_buf_clear(&ikey);
    assert_int_equal(ikey_append(&ikey, mf_slice_cstr(k), (uint64_t)i + 1, MF_TYPE_VALUE),
                     MAYFLY_OK);
    assert_int_equal(table_builder_add(b, mf_buf_slice(&ikey), mf_slice_cstr(v)), MAYFLY_OK);
  }
  assert_int_equal(table_builder_finish(b), MAYFLY_OK);
  uint64_t size = table_builder_file_size(b);
  table_builder_destroy(b);
  assert_int_equal(env->close_writable(file), MAYFLY_OK);
  mf_buf_free(&ikey);
  free(fname);
  return size;
}

/* ---- looking up ---- */

typedef struct found {
  int calls;
  char user_key[64];
  char value[64];
} found;

static void save(void *arg, mf_slice ikey, mf_slice value) {
  found *f = arg;
  mf_slice uk = ikey_user_key(ikey);
  f->calls++;
  snprintf(f->user_key, sizeof f->user_key, "%.*s", (int)uk.len, uk.data);
  snprintf(f->value, sizeof f->value, "%.*s", (int)value.len, value.data);
}

/* Looks user key `key` up in table `number`; returns 1 if found with the expected value. */
static int lookup(table_cache *tc, uint64_t number, uint64_t size, const char *key, int *rc) {
  mf_buf ikey = MF_BUF_INIT;
  if (ikey_append(&ikey, mf_slice_cstr(key), MF_MAX_SEQ, MF_TYPE_FOR_SEEK) != MAYFLY_OK) {
    *rc = MAYFLY_ENOMEM;
    return 0;
  }
  found f = {0};
  *rc = table_cache_get(tc, number, size, mf_buf_slice(&ikey), save, &f);
  mf_buf_free(&ikey);
  return f.calls == 1 && strcmp(f.user_key, key) == 0;
}

static void expect_present(table_cache *tc, uint64_t number, uint64_t size, int i) {
  char k[32];
  user_key(k, sizeof k, number, i);
  int rc;
  assert_true(lookup(tc, number, size, k, &rc));
  assert_int_equal(rc, MAYFLY_OK);
}

/* ---- tests ---- */

static void test_create_rejects_negative(void **state) {
  table_cache *tc = (table_cache *)1;
  assert_int_equal(table_cache_create(*state, DB, NULL, -1, &tc), MAYFLY_EINVAL);
  assert_null(tc);
}

static void test_get_through_cache(void **state) {
  mf_env *env = *state;
  uint64_t sizes[4];
  for (uint64_t n = 1; n <= 3; n++) sizes[n] = build_table(env, n);
  mf_cache *blocks;
  assert_int_equal(cache_create(1 << 20, &blocks), MAYFLY_OK);
  table_cache *tc;
  assert_int_equal(table_cache_create(env, DB, blocks, 10, &tc), MAYFLY_OK);

  for (uint64_t n = 1; n <= 3; n++)
    for (int i = 0; i < KEYS_PER_TABLE; i += 7) expect_present(tc, n, sizes[n], i);
  assert_int_equal(atomic_load(&total_opens), 3); /* each table opened once, then reused */
  assert_int_equal(atomic_load(&open_files), 3);

  /* Absent keys: the saver is not called, or sees a different user key. */
  int rc;
  assert_false(lookup(tc, 2, sizes[2], "t002-k99999", &rc));
  assert_int_equal(rc, MAYFLY_OK);
  assert_false(lookup(tc, 2, sizes[2], "t001-k00000", &rc));
  assert_int_equal(rc, MAYFLY_OK);

  /* A full scan through the iterator sees every key in order. */
  table *t = NULL;
  mf_iter *it = table_cache_iter(tc, 2, sizes[2], &t);
  assert_non_null(it);
  assert_non_null(t);
  int count = 0;
  for (iter_seek_to_first(it); iter_valid(it); iter_next(it)) {
    char k[32];
    user_key(k, sizeof k, 2, count);
    mf_slice uk = ikey_user_key(iter_key(it));
    assert_true(mf_slice_equal(uk, mf_slice_cstr(k)));
    count++;
  }
  assert_int_equal(iter_status(it), MAYFLY_OK);
  assert_int_equal(count, KEYS_PER_TABLE);
  iter_destroy(it);
  assert_int_equal(atomic_load(&total_opens), 3);

  table_cache_destroy(tc);
  assert_int_equal(atomic_load(&open_files), 0);
  cache_destroy(blocks);
}

static void test_max_open_files(void **state) {
  mf_env *env = *state;
  enum { TABLES = 8, MAX_OPEN = 3 };
  uint64_t sizes[TABLES + 1];
  for (uint64_t n = 1; n <= TABLES; n++) sizes[n] = build_table(env, n);
  table_cache *tc;
  assert_int_equal(table_cache_create(env, DB, NULL, MAX_OPEN, &tc), MAYFLY_OK);

  for (int round = 0; round < 3; round++) {
    for (uint64_t n = 1; n <= TABLES; n++) {
      expect_present(tc, n, sizes[n], (int)n * 3);
      assert_true(atomic_load(&open_files) <= MAX_OPEN);
    }
  }
  assert_int_equal(atomic_load(&open_files), MAX_OPEN);
  /* The most recently used tables are the ones kept: no reopen for them. */
  int opens = atomic_load(&total_opens);
  for (uint64_t n = TABLES; n > TABLES - MAX_OPEN; n--) expect_present(tc, n, sizes[n], 1);
  assert_int_equal(atomic_load(&total_opens), opens);
  expect_present(tc, 1, sizes[1], 1); /* long evicted: reopened */
  assert_int_equal(atomic_load(&total_opens), opens + 1);
  assert_true(atomic_load(&open_files) <= MAX_OPEN);

  table_cache_destroy(tc);
  assert_int_equal(atomic_load(&open_files), 0);
}

static void test_iterator_pins_table(void **state) {
  mf_env *env = *state;
  uint64_t sizes[5];
  for (uint64_t n = 1; n <= 4; n++) sizes[n] = build_table(env, n);
  mf_cache *blocks;
  assert_int_equal(cache_create(1 << 20, &blocks), MAYFLY_OK);
  table_cache *tc;
  assert_int_equal(table_cache_create(env, DB, blocks, 1, &tc), MAYFLY_OK);

  mf_iter *it = table_cache_iter(tc, 1, sizes[1], NULL);
  assert_non_null(it);
  iter_seek_to_first(it);
  assert_true(iter_valid(it));
  /* Push table 1 out of the cache, by use and explicitly, while the iterator reads it. */
  expect_present(tc, 2, sizes[2], 5);
  expect_present(tc, 3, sizes[3], 5);
  table_cache_evict(tc, 1);
  /* Only table 1 is open: pinned, it used up the budget of 1, so tables 2 and 3 closed as
   * soon as their lookups released them. */
  assert_int_equal(atomic_load(&open_files), 1);

  int count = 0;
  for (; iter_valid(it); iter_next(it)) count++;
  assert_int_equal(iter_status(it), MAYFLY_OK);
  assert_int_equal(count, KEYS_PER_TABLE);
  mf_buf target = MF_BUF_INIT;
  assert_int_equal(ikey_append(&target, mf_slice_cstr("t001-k00100"), MF_MAX_SEQ,
                               MF_TYPE_FOR_SEEK), MAYFLY_OK);
  iter_seek(it, mf_buf_slice(&target));
  assert_true(iter_valid(it));
  assert_true(mf_slice_equal(ikey_user_key(iter_key(it)), mf_slice_cstr("t001-k00100")));
  mf_buf_free(&target);
  iter_destroy(it);
  assert_int_equal(atomic_load(&open_files), 0); /* table 1 closed with its iterator */
  expect_present(tc, 3, sizes[3], 5);
  assert_int_equal(atomic_load(&open_files), 1); /* the budget is free again: 3 stays open */

  /* Two iterators over one table share one opening, and it outlives both only if cached. */
  int opens = atomic_load(&total_opens);
  table *ta, *tb;
  mf_iter *a = table_cache_iter(tc, 4, sizes[4], &ta);
  mf_iter *b = table_cache_iter(tc, 4, sizes[4], &tb);
  assert_ptr_equal(ta, tb);
  assert_int_equal(atomic_load(&total_opens), opens + 1);
  iter_destroy(a);
  iter_seek_to_last(b);
  assert_true(iter_valid(b));
  iter_destroy(b);
  assert_int_equal(atomic_load(&open_files), 1);

  table_cache_destroy(tc);
  assert_int_equal(atomic_load(&open_files), 0);
  cache_destroy(blocks);
}

static void test_evict(void **state) {
  mf_env *env = *state;
  uint64_t size = build_table(env, 7);
  table_cache *tc;
  assert_int_equal(table_cache_create(env, DB, NULL, 100, &tc), MAYFLY_OK);
  expect_present(tc, 7, size, 0);
  assert_int_equal(atomic_load(&open_files), 1);
  table_cache_evict(tc, 7);
  assert_int_equal(atomic_load(&open_files), 0);
  table_cache_evict(tc, 7); /* absent: no-op */
  table_cache_evict(tc, 12345);
  expect_present(tc, 7, size, 1);
  assert_int_equal(atomic_load(&total_opens), 2);
  table_cache_destroy(tc);
  assert_int_equal(atomic_load(&open_files), 0);
}

static void test_open_errors_name_the_file(void **state) {
  mf_env *env = *state;
  table_cache *tc;
  assert_int_equal(table_cache_create(env, DB, NULL, 10, &tc), MAYFLY_OK);

  /* Missing file. */
  int rc;
  mf_error_clear();
  assert_false(lookup(tc, 99, 1000, "k", &rc));
  assert_true(rc == MAYFLY_ENOTFOUND || rc == MAYFLY_EIO);
  assert_non_null(strstr(mf_error_message(), "000099.sst"));

  table *t = (table *)1;
  mf_error_clear();
  mf_iter *it = table_cache_iter(tc, 99, 1000, &t);
  assert_non_null(it);
  assert_null(t);
  iter_seek_to_first(it);
  assert_false(iter_valid(it));
  assert_true(iter_status(it) == MAYFLY_ENOTFOUND || iter_status(it) == MAYFLY_EIO);
  assert_non_null(strstr(mf_error_message(), "000099.sst"));
  iter_destroy(it);

  /* A file that is not a table. */
  char *fname = filename_table(DB, 98);
  mf_wfile *f;
  assert_int_equal(env->new_writable(env, fname, &f), MAYFLY_OK);
  char junk[100];
  memset(junk, 'x', sizeof junk);
  assert_int_equal(env->append(f, junk, sizeof junk), MAYFLY_OK);
  assert_int_equal(env->close_writable(f), MAYFLY_OK);
  free(fname);
  mf_error_clear();
  assert_false(lookup(tc, 98, sizeof junk, "k", &rc));
  assert_int_equal(rc, MAYFLY_ECORRUPT);
  assert_non_null(strstr(mf_error_message(), "000098.sst"));
  assert_int_equal(atomic_load(&open_files), 0); /* failed opens leave nothing open */

  /* Failures are not cached: once the file exists, it opens. */
  uint64_t size = build_table(env, 99);
  expect_present(tc, 99, size, 3);

  table_cache_destroy(tc);
  assert_int_equal(atomic_load(&open_files), 0);
}

/* ---- concurrency: lookups and scans from 4 threads over more tables than stay open ---- */

#define THREADS 4
#define CONC_TABLES 8
#define CONC_MAX_OPEN 3

typedef struct worker {
  table_cache *tc;
  const uint64_t *sizes;
  uint64_t seed;
  int failures;
} worker;

static void *worker_main(void *arg) {
  worker *w = arg;
  mf_random rnd;
  mf_random_seed(&rnd, w->seed);
  for (int op = 0; op < 400; op++) {
    uint64_t n = 1 + mf_random_uniform(&rnd, CONC_TABLES);
    if (mf_random_uniform(&rnd, 10) == 0) {
      mf_iter *it = table_cache_iter(w->tc, n, w->sizes[n], NULL);
      int count = 0;
      if (it)
        for (iter_seek_to_first(it); iter_valid(it); iter_next(it)) count++;
      if (!it || count != KEYS_PER_TABLE || iter_status(it) != MAYFLY_OK) w->failures++;
      iter_destroy(it);
      continue;
    }
    if (mf_random_uniform(&rnd, 20) == 0) table_cache_evict(w->tc, n);
    char k[32];
    user_key(k, sizeof k, n, (int)mf_random_uniform(&rnd, KEYS_PER_TABLE));
    int rc;
    if (!lookup(w->tc, n, w->sizes[n], k, &rc) || rc != MAYFLY_OK) w->failures++;
  }
  return NULL;
}

static void test_concurrent(void **state) {
  mf_env *env = *state;
  const char *seed_env = getenv("MAYFLY_TEST_SEED");
  uint64_t seed = seed_env ? strtoull(seed_env, NULL, 10) : (uint64_t)time(NULL);
  printf("seed %llu (replay with MAYFLY_TEST_SEED=%llu)\n", (unsigned long long)seed,
         (unsigned long long)seed);
  uint64_t sizes[CONC_TABLES + 1];
  for (uint64_t n = 1; n <= CONC_TABLES; n++) sizes[n] = build_table(env, n);
  mf_cache *blocks;
  assert_int_equal(cache_create(64 << 10, &blocks), MAYFLY_OK);
  table_cache *tc;
  assert_int_equal(table_cache_create(env, DB, blocks, CONC_MAX_OPEN, &tc), MAYFLY_OK);

  worker workers[THREADS];
  mf_thread *threads[THREADS];
  for (int i = 0; i < THREADS; i++) {
    workers[i] = (worker){tc, sizes, seed + (uint64_t)i, 0};
    assert_int_equal(env->thread_start(env, worker_main, &workers[i], &threads[i]), MAYFLY_OK);
  }
  for (int i = 0; i < THREADS; i++) {
    assert_int_equal(env->thread_join(env, threads[i]), MAYFLY_OK);
    assert_int_equal(workers[i].failures, 0);
  }
  /* Nothing pinned any more: only what the bound allows stays open. */
  assert_true(atomic_load(&open_files) <= CONC_MAX_OPEN);
  table_cache_destroy(tc);
  assert_int_equal(atomic_load(&open_files), 0);
  cache_destroy(blocks);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_create_rejects_negative, setup, teardown),
      cmocka_unit_test_setup_teardown(test_get_through_cache, setup, teardown),
      cmocka_unit_test_setup_teardown(test_max_open_files, setup, teardown),
      cmocka_unit_test_setup_teardown(test_iterator_pins_table, setup, teardown),
      cmocka_unit_test_setup_teardown(test_evict, setup, teardown),
      cmocka_unit_test_setup_teardown(test_open_errors_name_the_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
