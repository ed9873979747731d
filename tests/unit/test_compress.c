/* compress_block / decompress_block: round trips for every type and size class, and damaged
 * input of every kind gives MAYFLY_ECORRUPT without crashing. Randomized: prints its seed;
 * set MAYFLY_TEST_SEED to replay. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/options.h"
#include "mayfly.h"
#include "util/coding.h"
#include "util/compress.h"
#include "util/random.h"

static mf_random rnd;

static uint64_t test_seed(void) {
  const char *env = getenv("MAYFLY_TEST_SEED");
  uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
  printf("test_compress: seed %llu (replay with MAYFLY_TEST_SEED)\n", (unsigned long long)seed);
  return seed;
}

/* Text-like input: words from a small vocabulary, so it compresses. */
static void fill_compressible(mf_buf *b, size_t n) {
  static const char *words[] = {"mayfly ", "lsm ", "tree ", "block ", "key ", "value "};
  mf_buf_clear(b);
  while (b->len < n) {
    const char *w = words[mf_random_uniform(&rnd, 6)];
    size_t len = strlen(w);
    if (len > n - b->len) len = n - b->len;
    assert_int_equal(mf_buf_append(b, w, len), MAYFLY_OK);
  }
}

static void fill_random(mf_buf *b, size_t n) {
  mf_buf_clear(b);
  assert_int_equal(mf_buf_reserve(b, n + 1), MAYFLY_OK);
  for (size_t i = 0; i < n; i++) b->data[i] = (char)mf_random_next(&rnd);
  b->len = n;
}

static void round_trip(int type, mf_slice in) {
  mf_buf c = MF_BUF_INIT, d = MF_BUF_INIT;
  assert_int_equal(mf_buf_append(&d, "xy", 2), MAYFLY_OK); /* appends, keeps prefix */
  assert_int_equal(compress_block(type, 3, in, &c), MAYFLY_OK);
  assert_int_equal(decompress_block(type, mf_buf_slice(&c), MAYFLY_MAX_VALUE_SIZE, &d), MAYFLY_OK);
  assert_int_equal(d.len, in.len + 2);
  assert_memory_equal(d.data, "xy", 2);
  if (in.len) assert_memory_equal(d.data + 2, in.data, in.len);
  mf_buf_free(&c);
  mf_buf_free(&d);
}

static void test_round_trips(void **state) {
  (void)state;
  static const int types[] = {MF_COMPRESSION_NONE, MF_COMPRESSION_LZ4, MF_COMPRESSION_ZSTD};
  static const size_t sizes[] = {0, 1, 7, 100, 4096, 65536, 1 << 20};
  mf_buf in = MF_BUF_INIT;
  for (size_t t = 0; t < 3; t++) {
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
      fill_compressible(&in, sizes[s]);
      round_trip(types[t], mf_buf_slice(&in));
      fill_random(&in, sizes[s]);
      round_trip(types[t], mf_buf_slice(&in));
    }
  }
  mf_buf_free(&in);
}

static void test_compresses(void **state) {
  (void)state;
  mf_buf in = MF_BUF_INIT, c = MF_BUF_INIT;
  fill_compressible(&in, 65536);
  assert_int_equal(compress_block(MF_COMPRESSION_LZ4, 0, mf_buf_slice(&in), &c), MAYFLY_OK);
  assert_true(c.len < in.len / 2);
  mf_buf_clear(&c);
  assert_int_equal(compress_block(MF_COMPRESSION_ZSTD, 3, mf_buf_slice(&in), &c), MAYFLY_OK);
  assert_true(c.len < in.len / 2);
  /* NONE is the identity, with no length prefix. */
  mf_buf_clear(&c);
  assert_int_equal(compress_block(MF_COMPRESSION_NONE, 0, mf_buf_slice(&in), &c), MAYFLY_OK);
  assert_int_equal(c.len, in.len);
  mf_buf_free(&in);
  mf_buf_free(&c);
}

/* A block decompressed into a fresh buffer gets exactly its size (plus one byte), not the
 * next power of two: the block cache charges a block its length, and a 4 KiB block a little
 * over 4096 bytes used to sit in an 8 KiB allocation, so a full cache pinned twice its
 * capacity. */
static void test_decompress_exact_size(void **state) {
  (void)state;
  static const int types[] = {MF_COMPRESSION_LZ4, MF_COMPRESSION_ZSTD};
  static const size_t sizes[] = {4097, 4200, 40000};
  mf_buf in = MF_BUF_INIT, c = MF_BUF_INIT;
  for (size_t t = 0; t < 2; t++) {
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
      fill_compressible(&in, sizes[s]);
      mf_buf_clear(&c);
      assert_int_equal(compress_block(types[t], 3, mf_buf_slice(&in), &c), MAYFLY_OK);
      mf_buf d = MF_BUF_INIT;
      assert_int_equal(decompress_block(types[t], mf_buf_slice(&c),
                                        MAYFLY_MAX_VALUE_SIZE, &d), MAYFLY_OK);
      assert_int_equal(d.len, sizes[s]);
      if (d.cap > d.len + 1)
        fail_msg("type %d, %zu bytes: a buffer of %zu bytes", types[t], sizes[s], d.cap);
      mf_buf_free(&d);
    }
  }
  mf_buf_free(&in);
  mf_buf_free(&c);
}

static void test_unknown_type(void **state) {
  (void)state;
  mf_buf out = MF_BUF_INIT;
  assert_int_equal(compress_block(7, 0, mf_slice_cstr("abc"), &out), MAYFLY_EINVAL);
  assert_int_equal(decompress_block(7, mf_slice_cstr("abc"),
                                    MAYFLY_MAX_VALUE_SIZE, &out), MAYFLY_ECORRUPT);
  assert_int_equal(out.len, 0);
  mf_buf_free(&out);
}

/* The caller's bound: a block of exactly max_len bytes decodes, one byte more is damage
 * (and nothing is appended); the bound may exceed the largest value, as a table's does. */
static void test_max_len(void **state) {
  (void)state;
  int types[] = {MF_COMPRESSION_LZ4, MF_COMPRESSION_ZSTD};
  mf_buf in = MF_BUF_INIT, c = MF_BUF_INIT, d = MF_BUF_INIT;
  for (int t = 0; t < 2; t++) {
    fill_random(&in, 1000);
    memset(in.data, 'a', 600); /* compressible */
    mf_buf_clear(&c);
    assert_int_equal(compress_block(types[t], 0, mf_buf_slice(&in), &c), MAYFLY_OK);
    mf_buf_clear(&d);
    assert_int_equal(decompress_block(types[t], mf_buf_slice(&c), 1000, &d), MAYFLY_OK);
    assert_int_equal(d.len, 1000);
    mf_buf_clear(&d);
    assert_int_equal(decompress_block(types[t], mf_buf_slice(&c), 999, &d), MAYFLY_ECORRUPT);
    assert_int_equal(d.len, 0);
  }
  /* A block larger than any value, as a table's data block with a maximum value is. */
  size_t big = (size_t)MAYFLY_MAX_VALUE_SIZE + 4096;
  mf_buf_clear(&in);
  assert_int_equal(mf_buf_reserve(&in, big), MAYFLY_OK);
  memset(in.data, 'z', big);
  in.len = big;
  for (int t = 0; t < 2; t++) {
    mf_buf_clear(&c);
    assert_int_equal(compress_block(types[t], 1, mf_buf_slice(&in), &c), MAYFLY_OK);
    mf_buf_free(&d);
    assert_int_equal(decompress_block(types[t], mf_buf_slice(&c), MAYFLY_MAX_VALUE_SIZE, &d),
                     MAYFLY_ECORRUPT);
    assert_int_equal(decompress_block(types[t], mf_buf_slice(&c), big, &d), MAYFLY_OK);
    assert_int_equal(d.len, big);
    assert_true(d.data[0] == 'z' && d.data[big - 1] == 'z');
    mf_buf_free(&d);
  }
  mf_buf_free(&in);
  mf_buf_free(&c);
  mf_buf_free(&d);
}

/* Every kind of damage: truncation at every length, random bit flips, a lying length prefix,
 * garbage. Each must give ECORRUPT or (for a flip the codec cannot detect) a successful
 * decode of the claimed length, never a crash; ASan checks the "never over-read" part. */
static void corrupt_one_type(int type) {
  mf_buf in = MF_BUF_INIT, c = MF_BUF_INIT, d = MF_BUF_INIT, bad = MF_BUF_INIT;
  fill_compressible(&in, 5000);
  assert_int_equal(compress_block(type, 1, mf_buf_slice(&in), &c), MAYFLY_OK);

  for (size_t cut = 0; cut < c.len; cut++) {
    mf_buf_clear(&d);
    assert_int_equal(decompress_block(type, mf_slice_make(c.data, cut),
                                      MAYFLY_MAX_VALUE_SIZE, &d), MAYFLY_ECORRUPT);
    assert_int_equal(d.len, 0);
  }
  for (int i = 0; i < 2000; i++) {
    assert_int_equal(mf_buf_set(&bad, c.data, c.len), MAYFLY_OK);
    size_t pos = mf_random_uniform(&rnd, bad.len);
    bad.data[pos] ^= (char)(1u << mf_random_uniform(&rnd, 8));
    mf_buf_clear(&d);
    int rc = decompress_block(type, mf_buf_slice(&bad), MAYFLY_MAX_VALUE_SIZE, &d);
    if (rc == MAYFLY_OK)
      assert_true(d.len < (1u << 20)); /* decoded to the (possibly changed) claimed size */
    else
      assert_int_equal(rc, MAYFLY_ECORRUPT);
  }
  /* A length prefix far beyond what the payload could hold must not allocate or succeed. */
  mf_buf_clear(&bad);
  const char huge[] = {(char)0xff, (char)0xff, (char)0xff, (char)0xff, 0x0f};
  assert_int_equal(mf_buf_append(&bad, huge, sizeof huge), MAYFLY_OK);
  assert_int_equal(mf_buf_append(&bad, "garbage!", 8), MAYFLY_OK);
  mf_buf_clear(&d);
  assert_int_equal(decompress_block(type, mf_buf_slice(&bad),
                                    MAYFLY_MAX_VALUE_SIZE, &d), MAYFLY_ECORRUPT);
  /* A claim the payload's length would allow but no value reaches (lz4 expands at most
   * 255:1): refused before it sizes an allocation, with nothing reserved. */
  mf_buf_clear(&bad);
  char prefix[5];
  size_t plen = (size_t)(encode_varint32(prefix, MAYFLY_MAX_VALUE_SIZE + 1) - prefix);
  assert_int_equal(mf_buf_append(&bad, prefix, plen), MAYFLY_OK);
  fill_random(&in, (MAYFLY_MAX_VALUE_SIZE + 1) / 255 + 1);
  assert_int_equal(mf_buf_append(&bad, in.data, in.len), MAYFLY_OK);
  mf_buf_free(&d);
  assert_int_equal(decompress_block(type, mf_buf_slice(&bad),
                                    MAYFLY_MAX_VALUE_SIZE, &d), MAYFLY_ECORRUPT);
  assert_true(d.cap < MAYFLY_MAX_VALUE_SIZE);
  /* Random garbage. */
  for (int i = 0; i < 200; i++) {
    fill_random(&bad, 1 + mf_random_uniform(&rnd, 300));
    mf_buf_clear(&d);
    int rc = decompress_block(type, mf_buf_slice(&bad), MAYFLY_MAX_VALUE_SIZE, &d);
    assert_true(rc == MAYFLY_OK || rc == MAYFLY_ECORRUPT);
  }
  mf_buf_free(&in);
  mf_buf_free(&c);
  mf_buf_free(&d);
  mf_buf_free(&bad);
}

static void test_corrupt_lz4(void **state) {
  (void)state;
  corrupt_one_type(MF_COMPRESSION_LZ4);
}

static void test_corrupt_zstd(void **state) {
  (void)state;
  corrupt_one_type(MF_COMPRESSION_ZSTD);
}

/* zstd keeps one context per thread: threads compressing and decompressing at once, with a
 * corrupt frame in between (a context left after an error must not spoil the next call),
 * each get their own data back; the contexts of exited threads are freed (LSan checks). */
enum { THREADS = 4, ROUNDS = 200 };
static int failures;

static void *zstd_worker(void *arg) {
  uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(uintptr_t)arg + 1;
  mf_buf in = MF_BUF_INIT, c = MF_BUF_INIT, d = MF_BUF_INIT;
  for (int r = 0; r < ROUNDS; r++) {
    size_t n = 1 + (size_t)(x % 9000);
    mf_buf_clear(&in);
    if (mf_buf_reserve(&in, n)) abort();
    for (size_t i = 0; i < n; i++) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      in.data[i] = (char)('a' + (x >> 60) % 4); /* compressible, different per thread */
    }
    in.len = n;
    mf_buf_clear(&c);
    mf_buf_clear(&d);
    int ok = compress_block(MF_COMPRESSION_ZSTD, 1 + r % 5, mf_buf_slice(&in), &c) == 0;
    if (ok && r % 7 == 3) { /* a damaged copy first: must fail, and not harm the next call */
      mf_buf bad = MF_BUF_INIT;
      if (mf_buf_append(&bad, c.data, c.len)) abort();
      bad.data[bad.len / 2] ^= 0x5a;
      ok = decompress_block(MF_COMPRESSION_ZSTD, mf_buf_slice(&bad),
                            MAYFLY_MAX_VALUE_SIZE, &d) != 0 || d.len == n;
      mf_buf_free(&bad);
      mf_buf_clear(&d);
    }
    ok = ok && decompress_block(MF_COMPRESSION_ZSTD, mf_buf_slice(&c),
                                MAYFLY_MAX_VALUE_SIZE, &d) == 0 &&
         d.len == n && memcmp(d.data, in.data, n) == 0;
    if (!ok) __atomic_fetch_add(&failures, 1, __ATOMIC_RELAXED);
  }
  mf_buf_free(&in);
  mf_buf_free(&c);
  mf_buf_free(&d);
  return NULL;
}

static void test_zstd_threads(void **state) {
  (void)state;
  pthread_t t[THREADS];
  for (uintptr_t i = 0; i < THREADS; i++)
    assert_int_equal(pthread_create(&t[i], NULL, zstd_worker, (void *)(i + 1)), 0);
  for (int i = 0; i < THREADS; i++) assert_int_equal(pthread_join(t[i], NULL), 0);
  assert_int_equal(failures, 0);
}

int main(void) {
  mf_random_seed(&rnd, test_seed());
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trips),   cmocka_unit_test(test_compresses),
      cmocka_unit_test(test_decompress_exact_size), cmocka_unit_test(test_unknown_type),
      cmocka_unit_test(test_max_len),               cmocka_unit_test(test_corrupt_lz4),
      cmocka_unit_test(test_corrupt_zstd), cmocka_unit_test(test_zstd_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
