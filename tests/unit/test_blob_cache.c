/* Tests for the blob cache on blob files in the in-memory env: values found through the
 * cache (with known and unknown file sizes), the value cache serving repeated reads without
 * touching the file (an env wrapper counts preads), a cached value never returned for a
 * different key, the max_open_files bound, eviction, a missing file reported as corruption
 * naming it, and concurrent gets from 4 threads under a tight bound. The concurrent test
 * prints its seed; MAYFLY_TEST_SEED=<n> replays it. */
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

#include "blob/blob_cache.h"
#include "blob/blob_writer.h"
#include "cache/cache.h"
#include "db/options.h"
#include "env/env.h"
#include "mayfly.h"
#include "util/error.h"
#include "util/random.h"
#include "version/filename.h"

#define DB "db"
#define FILES 8
#define RECORDS 100

/* ---- an env that counts preads and open readable files ---- */

static mf_env *inner_env;
static mf_env counting_env;
static atomic_int open_files;
static atomic_int max_open_seen;
static atomic_int total_opens;
static atomic_long preads;

static int counting_open_readable(mf_env *env, const char *path, mf_rfile **out) {
  int rc = inner_env->open_readable(inner_env, path, out);
  if (rc == MAYFLY_OK) {
    int now = atomic_fetch_add(&open_files, 1) + 1;
    int seen = atomic_load(&max_open_seen);
    while (now > seen && !atomic_compare_exchange_weak(&max_open_seen, &seen, now)) {
    }
    atomic_fetch_add(&total_opens, 1);
  }
  return rc;
}

static void counting_close_readable(mf_rfile *f) {
  atomic_fetch_sub(&open_files, 1);
  inner_env->close_readable(f);
}

static int counting_pread(mf_rfile *f, uint64_t offset, size_t n, void *buf, size_t *got) {
  atomic_fetch_add(&preads, 1);
  return inner_env->pread(f, offset, n, buf, got);
}

/* ---- the blob files: file f holds RECORDS records "fFF-kIII" -> value(f, i) ---- */

typedef struct file_set {
  uint64_t size[FILES + 1];
  blob_index bi[FILES + 1][RECORDS];
} file_set;

static file_set *files;

static void record_key(char *buf, size_t n, uint64_t f, int i) {
  snprintf(buf, n, "f%02llu-k%03d", (unsigned long long)f, i);
}

/* Values of 0..~3000 bytes, compressible text, distinct per (f, i). */
static void record_value(mf_buf *v, uint64_t f, int i) {
  char word[32];
  int n = snprintf(word, sizeof word, "v%llu.%d ", (unsigned long long)f, i);
  mf_buf_clear(v);
  for (int k = 0; k < (i * 37) % 300; k++) assert_int_equal(mf_buf_append(v, word, (size_t)n), 0);
}

static void build_file(mf_env *env, uint64_t f) {
  char *fname = filename_blob(DB, f);
  assert_non_null(fname);
  mf_wfile *file;
  assert_int_equal(env->new_writable(env, fname, &file), MAYFLY_OK);
  blob_writer *w;
  assert_int_equal(blob_writer_create(env, file, fname, f, f % 3, 0, &w), MAYFLY_OK);
  mf_buf v = MF_BUF_INIT;
  for (int i = 0; i < RECORDS; i++) {
    char k[32];
    record_key(k, sizeof k, f, i);
    record_value(&v, f, i);
    assert_int_equal(blob_writer_add(w, mf_slice_cstr(k), mf_buf_slice(&v), &files->bi[f][i]),
                     MAYFLY_OK);
  }
  assert_int_equal(blob_writer_finish(w), MAYFLY_OK);
  files->size[f] = blob_writer_file_size(w);
  blob_writer_destroy(w);
  assert_int_equal(env->sync(file, 1), MAYFLY_OK);
  assert_int_equal(env->close_writable(file), MAYFLY_OK);
  mf_buf_free(&v);
  free(fname);
}

static int setup(void **state) {
  if (env_mem_create(&inner_env) != MAYFLY_OK) return -1;
  memcpy(&counting_env, inner_env, sizeof counting_env);
  counting_env.open_readable = counting_open_readable;
  counting_env.close_readable = counting_close_readable;
  counting_env.pread = counting_pread;
  counting_env.destroy = NULL;
  files = calloc(1, sizeof *files);
  if (!files) return -1;
  for (uint64_t f = 1; f <= FILES; f++) build_file(inner_env, f);
  atomic_store(&open_files, 0);
  atomic_store(&max_open_seen, 0);
  atomic_store(&total_opens, 0);
  atomic_store(&preads, 0);
  *state = &counting_env;
  return 0;
}

static int teardown(void **state) {
  inner_env->destroy(inner_env);
  inner_env = NULL;
  free(files);
  return 0;
}

/* Gets record (f, i) through bc and checks the value; returns the rc. */
static int get_record(blob_cache *bc, uint64_t f, int i, uint64_t file_size, mf_buf *value) {
  char k[32];
  record_key(k, sizeof k, f, i);
  int rc = blob_cache_get(bc, mf_slice_cstr(k), &files->bi[f][i], file_size, 1, value);
  if (rc != MAYFLY_OK) return rc;
  mf_buf expect = MF_BUF_INIT;
  record_value(&expect, f, i);
  int same = mf_slice_equal(mf_buf_slice(&expect), mf_buf_slice(value));
  mf_buf_free(&expect);
  return same ? MAYFLY_OK : MAYFLY_EIO; /* EIO: "wrong data", which must never happen */
}

/* ---- tests ---- */

static void test_create_rejects_negative(void **state) {
  blob_cache *bc = (blob_cache *)1;
  assert_int_equal(blob_cache_create(*state, DB, -1, NULL, &bc), MAYFLY_EINVAL);
  assert_null(bc);
}

static void test_get_through_cache(void **state) {
  mf_env *env = *state;
  blob_cache *bc;
  assert_int_equal(blob_cache_create(env, DB, 100, NULL, &bc), MAYFLY_OK);
  mf_buf value = MF_BUF_INIT;
  for (uint64_t f = 1; f <= FILES; f++)
    for (int i = 0; i < RECORDS; i++)
      assert_int_equal(get_record(bc, f, i, i % 2 ? files->size[f] : 0, &value), MAYFLY_OK);
  assert_int_equal(atomic_load(&total_opens), FILES); /* each opened once, then reused */
  assert_int_equal(atomic_load(&open_files), FILES);
  /* Without a value cache every get reads the file: one pread per get. */
  long before = atomic_load(&preads);
  assert_int_equal(get_record(bc, 3, 7, 0, &value), MAYFLY_OK);
  assert_int_equal(atomic_load(&preads), before + 1);
  blob_cache_destroy(bc);
  assert_int_equal(atomic_load(&open_files), 0);
  mf_buf_free(&value);
}

static void test_value_cache(void **state) {
  mf_env *env = *state;
  mf_cache *values;
  assert_int_equal(cache_create(4 << 20, &values), MAYFLY_OK);
  blob_cache *bc;
  assert_int_equal(blob_cache_create(env, DB, 100, values, &bc), MAYFLY_OK);
  mf_buf value = MF_BUF_INIT;

  for (int i = 0; i < RECORDS; i++) assert_int_equal(get_record(bc, 2, i, 0, &value), MAYFLY_OK);
  long after_first = atomic_load(&preads);
  assert_true(after_first >= RECORDS);
  assert_true(cache_total_charge(values) > 0);
  /* Repeated reads come from the value cache: no pread at all. */
  for (int round = 0; round < 3; round++)
    for (int i = 0; i < RECORDS; i++)
      assert_int_equal(get_record(bc, 2, i, 0, &value), MAYFLY_OK);
  assert_int_equal(atomic_load(&preads), after_first);

  /* A cached value is not handed to a get for another key: it goes to the file, which
   * reports the mismatch. */
  char k[32];
  record_key(k, sizeof k, 2, 6);
  mf_error_clear();
  assert_int_equal(blob_cache_get(bc, mf_slice_cstr(k), &files->bi[2][5], 0, 1, &value),
                   MAYFLY_ECORRUPT);
  assert_non_null(strstr(mf_error_message(), "000002.blob"));
  assert_int_equal(atomic_load(&preads), after_first + 1);

  /* Values stay cached across an evicted (closed) reader. */
  blob_cache_evict(bc, 2);
  assert_int_equal(atomic_load(&open_files), 0);
  assert_int_equal(get_record(bc, 2, 50, 0, &value), MAYFLY_OK);
  assert_int_equal(atomic_load(&preads), after_first + 1);

  /* A get without fill_cache (garbage collection's) reads the file and leaves the value
   * cache as it was; a cached value still serves it. */
  assert_int_equal(get_record(bc, 3, 8, 0, &value), MAYFLY_OK); /* opens file 3's reader */
  size_t charge = cache_total_charge(values);
  long preads_before = atomic_load(&preads);
  record_key(k, sizeof k, 3, 9);
  assert_int_equal(blob_cache_get(bc, mf_slice_cstr(k), &files->bi[3][9], 0, 0, &value),
                   MAYFLY_OK);
  assert_int_equal(atomic_load(&preads), preads_before + 1);
  assert_true(cache_total_charge(values) == charge);
  assert_int_equal(get_record(bc, 3, 9, 0, &value), MAYFLY_OK); /* not cached: reads again */
  assert_int_equal(atomic_load(&preads), preads_before + 2);
  record_key(k, sizeof k, 2, 50);
  assert_int_equal(blob_cache_get(bc, mf_slice_cstr(k), &files->bi[2][50], 0, 0, &value),
                   MAYFLY_OK);
  assert_int_equal(atomic_load(&preads), preads_before + 2);

  /* Two blob caches sharing one value cache do not share keys. */
  blob_cache *other;
  assert_int_equal(blob_cache_create(env, DB, 100, values, &other), MAYFLY_OK);
  long preads_other = atomic_load(&preads);
  assert_int_equal(get_record(other, 2, 50, 0, &value), MAYFLY_OK);
  assert_true(atomic_load(&preads) > preads_other);
  blob_cache_destroy(other);

  blob_cache_destroy(bc);
  cache_destroy(values);
  mf_buf_free(&value);
}

static void test_max_open_files(void **state) {
  mf_env *env = *state;
  enum { MAX_OPEN = 3 };
  blob_cache *bc;
  assert_int_equal(blob_cache_create(env, DB, MAX_OPEN, NULL, &bc), MAYFLY_OK);
  mf_buf value = MF_BUF_INIT;
  for (int round = 0; round < 5; round++)
    for (uint64_t f = 1; f <= FILES; f++) {
      assert_int_equal(get_record(bc, f, round, 0, &value), MAYFLY_OK);
      assert_true(atomic_load(&open_files) <= MAX_OPEN);
    }
  assert_true(atomic_load(&max_open_seen) <= MAX_OPEN + 1); /* + the one being opened */
  /* Round-robin over more files than fit: LRU reopens every time. */
  assert_int_equal(atomic_load(&total_opens), 5 * FILES);
  blob_cache_destroy(bc);
  assert_int_equal(atomic_load(&open_files), 0);

  /* 0: nothing stays open. */
  assert_int_equal(blob_cache_create(env, DB, 0, NULL, &bc), MAYFLY_OK);
  assert_int_equal(get_record(bc, 1, 1, 0, &value), MAYFLY_OK);
  assert_int_equal(atomic_load(&open_files), 0);
  blob_cache_destroy(bc);
  mf_buf_free(&value);
}

static void test_evict_and_missing(void **state) {
  mf_env *env = *state;
  blob_cache *bc;
  assert_int_equal(blob_cache_create(env, DB, 10, NULL, &bc), MAYFLY_OK);
  mf_buf value = MF_BUF_INIT;
  assert_int_equal(get_record(bc, 4, 1, 0, &value), MAYFLY_OK);
  assert_int_equal(get_record(bc, 5, 1, 0, &value), MAYFLY_OK);
  assert_int_equal(atomic_load(&open_files), 2);
  blob_cache_evict(bc, 4);
  assert_int_equal(atomic_load(&open_files), 1);
  blob_cache_evict(bc, 4); /* twice, and of a file never opened: no-ops */
  blob_cache_evict(bc, 77);
  assert_int_equal(atomic_load(&open_files), 1);

  /* Deleted and evicted: the next get is corruption naming the file, whether or not the
   * caller knew the size. */
  char *fname = filename_blob(DB, 4);
  assert_int_equal(env->remove_file(env, fname), MAYFLY_OK);
  free(fname);
  for (int known = 0; known < 2; known++) {
    mf_error_clear();
    int rc = get_record(bc, 4, 2, known ? files->size[4] : 0, &value);
    assert_int_equal(rc, MAYFLY_ECORRUPT);
    assert_non_null(strstr(mf_error_message(), "blob file 000004.blob referenced but missing"));
  }
  /* A file that never existed. */
  blob_index bi = {123, 100, 10, MF_COMPRESSION_NONE};
  mf_error_clear();
  assert_int_equal(blob_cache_get(bc, mf_slice_cstr("k"), &bi, 0, 1, &value), MAYFLY_ECORRUPT);
  assert_non_null(strstr(mf_error_message(), "000123.blob referenced but missing"));

  /* A damaged file: corruption naming it (the open error is wrapped, not lost). */
  fname = filename_blob(DB, 6);
  mf_buf bytes = MF_BUF_INIT;
  assert_int_equal(env_read_file(env, fname, &bytes), MAYFLY_OK);
  bytes.data[bytes.len - 1] ^= 1; /* footer magic */
  mf_wfile *file;
  assert_int_equal(env->new_writable(env, fname, &file), MAYFLY_OK);
  assert_int_equal(env->append(file, bytes.data, bytes.len), MAYFLY_OK);
  assert_int_equal(env->close_writable(file), MAYFLY_OK);
  mf_error_clear();
  assert_int_equal(get_record(bc, 6, 0, 0, &value), MAYFLY_ECORRUPT);
  assert_non_null(strstr(mf_error_message(), "000006.blob"));
  assert_non_null(strstr(mf_error_message(), "magic"));
  /* Failed opens are not cached: after repair the file reads. */
  bytes.data[bytes.len - 1] ^= 1;
  assert_int_equal(env->new_writable(env, fname, &file), MAYFLY_OK);
  assert_int_equal(env->append(file, bytes.data, bytes.len), MAYFLY_OK);
  assert_int_equal(env->close_writable(file), MAYFLY_OK);
  assert_int_equal(get_record(bc, 6, 0, 0, &value), MAYFLY_OK);
  free(fname);
  mf_buf_free(&bytes);

  blob_cache_destroy(bc);
  assert_int_equal(atomic_load(&open_files), 0);
  mf_buf_free(&value);
}

/* ---- concurrency ---- */

typedef struct worker {
  blob_cache *bc;
  uint64_t seed;
  int failures;
  int wrong;
} worker;

static void *worker_main(void *arg) {
  worker *wk = arg;
  mf_random r;
  mf_random_seed(&r, wk->seed);
  mf_buf value = MF_BUF_INIT;
  for (int n = 0; n < 4000; n++) {
    uint64_t f = 1 + mf_random_uniform(&r, FILES);
    int i = (int)mf_random_uniform(&r, RECORDS);
    int rc = get_record(wk->bc, f, i, mf_random_uniform(&r, 2) ? files->size[f] : 0, &value);
    if (rc == MAYFLY_EIO) wk->wrong++;
    else if (rc != MAYFLY_OK) wk->failures++;
    if (n % 500 == 0) blob_cache_evict(wk->bc, 1 + mf_random_uniform(&r, FILES));
  }
  mf_buf_free(&value);
  return NULL;
}

static void test_concurrent_gets(void **state) {
  mf_env *env = *state;
  const char *s = getenv("MAYFLY_TEST_SEED");
  uint64_t seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL);
  printf("test_blob_cache: concurrent seed %llu (replay with MAYFLY_TEST_SEED)\n",
         (unsigned long long)seed);
  mf_cache *values;
  assert_int_equal(cache_create(64 << 10, &values), MAYFLY_OK); /* small: constant eviction */
  blob_cache *bc;
  assert_int_equal(blob_cache_create(env, DB, 3, values, &bc), MAYFLY_OK);
  enum { THREADS = 4 };
  worker wk[THREADS];
  mf_thread *t[THREADS];
  for (int i = 0; i < THREADS; i++) {
    wk[i] = (worker){bc, seed + (uint64_t)i, 0, 0};
    assert_int_equal(env->thread_start(env, worker_main, &wk[i], &t[i]), MAYFLY_OK);
  }
  for (int i = 0; i < THREADS; i++) assert_int_equal(env->thread_join(env, t[i]), MAYFLY_OK);
  for (int i = 0; i < THREADS; i++) {
    assert_int_equal(wk[i].wrong, 0);
    assert_int_equal(wk[i].failures, 0);
  }
  blob_cache_destroy(bc);
  cache_destroy(values);
  assert_int_equal(atomic_load(&open_files), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_create_rejects_negative, setup, teardown),
      cmocka_unit_test_setup_teardown(test_get_through_cache, setup, teardown),
      cmocka_unit_test_setup_teardown(test_value_cache, setup, teardown),
      cmocka_unit_test_setup_teardown(test_max_open_files, setup, teardown),
      cmocka_unit_test_setup_teardown(test_evict_and_missing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent_gets, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
