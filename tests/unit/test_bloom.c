/* Bloom filter: no false negatives; the false-positive rate for 10 bits per key is within 2x
 * of the theoretical (1 - e^(-kn/m))^k; malformed filters match everything. Randomized:
 * prints its seed; set MAYFLY_TEST_SEED to replay. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mayfly.h"
#include "table/bloom.h"
#include "util/random.h"

static uint64_t seed;

static uint64_t test_seed(void) {
  const char *env = getenv("MAYFLY_TEST_SEED");
  uint64_t s = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
  printf("test_bloom: seed %llu (replay with MAYFLY_TEST_SEED)\n", (unsigned long long)s);
  return s;
}

/* Key i of a set: "k<seed-salt>-<i>"; present and absent sets use different prefixes. */
static mf_slice make_key(char *buf, const char *prefix, uint64_t i) {
  int n = snprintf(buf, 64, "%s%llx-%llu", prefix, (unsigned long long)seed, (unsigned long long)i);
  return mf_slice_make(buf, (size_t)n);
}

/* e^x by range reduction and a Taylor series: the test build does not link libm. */
static double exp_approx(double x) {
  double y = x / 1024, term = 1, sum = 1;
  for (int i = 1; i < 20; i++) {
    term *= y / i;
    sum += term;
  }
  for (int i = 0; i < 10; i++) sum *= sum; /* (e^(x/1024))^1024 */
  return sum;
}

static double measure(size_t n, int bits_per_key, double *theory) {
  char (*storage)[64] = malloc(n * sizeof *storage);
  mf_slice *keys = malloc(n * sizeof *keys);
  mf_buf filter = MF_BUF_INIT;
  assert_non_null(storage);
  assert_non_null(keys);
  for (size_t i = 0; i < n; i++) keys[i] = make_key(storage[i], "present", i);
  assert_int_equal(bloom_build(keys, n, bits_per_key, &filter), MAYFLY_OK);
  mf_slice f = mf_buf_slice(&filter);
  for (size_t i = 0; i < n; i++) assert_true(bloom_may_match(f, keys[i])); /* no false negatives */

  const size_t absent = 20000;
  size_t hits = 0;
  char buf[64];
  for (size_t i = 0; i < absent; i++) hits += (size_t)bloom_may_match(f, make_key(buf, "absent", i));
  double m = (double)(filter.len - 1) * 8;
  int k = (unsigned char)filter.data[filter.len - 1];
  double per_probe = 1 - exp_approx(-(double)k * (double)n / m);
  *theory = 1;
  for (int j = 0; j < k; j++) *theory *= per_probe;
  free(storage);
  free(keys);
  mf_buf_free(&filter);
  return (double)hits / (double)absent;
}

static void test_false_positive_rate(void **state) {
  (void)state;
  static const size_t sizes[] = {1000, 10000, 50000};
  for (size_t i = 0; i < 3; i++) {
    double theory, rate = measure(sizes[i], 10, &theory);
    printf("n=%zu: false-positive rate %.5f, theory %.5f\n", sizes[i], rate, theory);
    assert_true(rate <= 2 * theory);
    assert_true(rate >= theory / 2);
  }
}

static void test_probe_count(void **state) {
  (void)state;
  mf_buf f = MF_BUF_INIT;
  mf_slice key = mf_slice_cstr("a");
  static const int bits[] = {1, 2, 10, 20, 100};
  static const int expect[] = {1, 1, 7, 14, 30}; /* round(b ln 2), clamped to [1, 30] */
  for (int i = 0; i < 5; i++) {
    mf_buf_clear(&f);
    assert_int_equal(bloom_build(&key, 1, bits[i], &f), MAYFLY_OK);
    assert_int_equal((unsigned char)f.data[f.len - 1], expect[i]);
    assert_true(f.len >= 9); /* at least 64 bits */
    assert_true(bloom_may_match(mf_buf_slice(&f), key));
  }
  assert_int_equal(bloom_build(&key, 1, 0, &f), MAYFLY_EINVAL);
  mf_buf_free(&f);
}

static void test_empty_set(void **state) {
  (void)state;
  mf_buf f = MF_BUF_INIT;
  assert_int_equal(bloom_build(NULL, 0, 10, &f), MAYFLY_OK);
  assert_false(bloom_may_match(mf_buf_slice(&f), mf_slice_cstr("anything")));
  assert_false(bloom_may_match(mf_buf_slice(&f), mf_slice_cstr("")));
  mf_buf_free(&f);
}

static void test_malformed_matches_all(void **state) {
  (void)state;
  mf_slice key = mf_slice_cstr("key");
  assert_true(bloom_may_match(mf_slice_make("", 0), key));
  assert_true(bloom_may_match(mf_slice_make("\0", 1), key));
  char zeros_bad_k[9] = {0};
  zeros_bad_k[8] = 31; /* k out of range: reserved, must match */
  assert_true(bloom_may_match(mf_slice_make(zeros_bad_k, 9), key));
  zeros_bad_k[8] = 0;
  assert_true(bloom_may_match(mf_slice_make(zeros_bad_k, 9), key));
  zeros_bad_k[8] = 3; /* valid k, no bits set: nothing matches */
  assert_false(bloom_may_match(mf_slice_make(zeros_bad_k, 9), key));
}

/* The hash is stored on disk (as bits), so it must be the documented one: bloom_hash is
 * mf_hash64, and probe positions follow bloom.h. Rebuild one filter by hand and compare. */
static void test_layout_matches_doc(void **state) {
  (void)state;
  mf_slice keys[3] = {mf_slice_cstr("alpha"), mf_slice_cstr("beta"), mf_slice_cstr("gamma")};
  mf_buf f = MF_BUF_INIT;
  assert_int_equal(bloom_build(keys, 3, 10, &f), MAYFLY_OK);
  size_t bytes = 64 / 8; /* 3 * 10 = 30 bits, raised to the 64-bit minimum */
  assert_int_equal(f.len, bytes + 1);
  unsigned char expect[8] = {0};
  for (int i = 0; i < 3; i++) {
    uint64_t h = bloom_hash(keys[i]), h1 = h & 0xffffffffu, h2 = h >> 32;
    for (uint64_t j = 0; j < 7; j++) {
      uint64_t bit = (h1 + j * h2) % 64;
      expect[bit / 8] |= (unsigned char)(1u << (bit % 8));
    }
  }
  assert_memory_equal(f.data, expect, bytes);
  mf_buf_free(&f);
}

int main(void) {
  seed = test_seed();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_false_positive_rate), cmocka_unit_test(test_probe_count),
      cmocka_unit_test(test_empty_set),           cmocka_unit_test(test_malformed_matches_all),
      cmocka_unit_test(test_layout_matches_doc),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
