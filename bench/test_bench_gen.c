/* Tests of mayfly_bench's generators (bench/gen.c): the zipfian rank frequencies against the
 * zipf law, scrambling staying in range and spreading the hot keys, latest favouring the
 * newest item, the Pareto value sizes' mean, and the histogram's percentiles. Built by
 * bench/CMakeLists.txt, not the tests/unit glob: it needs gen.c and libm, which the glob's
 * programs (linked with mayfly_static only) do not get.
 *
 * Randomized: the seed is printed; MAYFLY_TEST_SEED=N replays it. Tolerances are several
 * standard deviations wide for the sample sizes used, so a correct generator passes for any
 * seed, while a wrong law (an off-by-one rank, a wrong exponent) fails. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "gen.h"

static uint64_t g_seed;

static uint64_t test_seed(void)
{
  const char *env = getenv("MAYFLY_TEST_SEED");
  return env != NULL ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
}

/* The first ranks' frequencies match 1/(r+1)^theta / zeta(n). */
static void test_zipf_rank_frequencies(void **state)
{
  const uint64_t n = 1000, draws = 400000;
  const double theta = 0.99;
  gen_zipf z;
  assert_int_equal(gen_zipf_init(&z, n, theta), 0);
  uint64_t rng = g_seed;
  uint64_t *count = calloc(n, sizeof *count);
  assert_non_null(count);
  for (uint64_t i = 0; i < draws; i++) {
    uint64_t r = gen_zipf_rank(&z, &rng);
    assert_true(r < n);
    count[r]++;
  }
  double zetan = 0;
  for (uint64_t i = 1; i <= n; i++)
    zetan += 1.0 / pow((double)i, theta);
  /* Ranks 0 and 1 are exact in Gray's method; later ranks come from a continuous
   * approximation, so they get a wider tolerance. */
  for (uint64_t r = 0; r < 10; r++) {
    double expect = (double)draws / pow((double)(r + 1), theta) / zetan;
    double tolerance = r < 2 ? 0.03 : 0.25;
    double got = (double)count[r];
    if (fabs(got - expect) > tolerance * expect)
      fail_msg("rank %llu: %.0f draws, expected %.0f (seed %llu)", (unsigned long long)r, got,
               expect, (unsigned long long)g_seed);
  }
  /* Monotone on average: the top 10 ranks outdraw ranks 100..109 by the law's ratio. */
  uint64_t top = 0, mid = 0;
  for (int r = 0; r < 10; r++) {
    top += count[r];
    mid += count[100 + r];
  }
  assert_true(top > 10 * mid);
  free(count);
}

/* Scrambled indexes stay in [0, n), and the hottest index is not rank 0's position 0. */
static void test_zipf_scrambled_spreads(void **state)
{
  const uint64_t n = 100000;
  gen_zipf z;
  assert_int_equal(gen_zipf_init(&z, n, 0.99), 0);
  uint64_t rng = g_seed ^ 1;
  uint64_t low_half = 0, draws = 200000;
  for (uint64_t i = 0; i < draws; i++) {
    uint64_t k = gen_zipf_scrambled(&z, &rng);
    assert_true(k < n);
    low_half += k < n / 2;
  }
  /* Unscrambled, nearly every draw would be in the low half; scrambled, about half are. */
  assert_true(low_half > draws / 4 && low_half < 3 * draws / 4);
  assert_int_equal(gen_fnv64(0) % n, gen_fnv64(0) % n);
  assert_true(gen_fnv64(0) != gen_fnv64(1));
}

/* latest draws the newest item most, and follows growth of n. */
static void test_latest(void **state)
{
  gen_zipf z;
  assert_int_equal(gen_zipf_init(&z, 1000, 0.99), 0);
  uint64_t rng = g_seed ^ 2;
  uint64_t newest = 0, draws = 100000;
  for (uint64_t i = 0; i < draws; i++) {
    uint64_t k = gen_latest(&z, &rng);
    assert_true(k < 1000);
    newest += k == 999;
  }
  /* P(newest) = 1 / zeta(1000, 0.99), about 0.13. */
  assert_true(newest > draws / 10 && newest < draws / 6);
  gen_zipf_grow(&z, 5000);
  gen_zipf direct;
  assert_int_equal(gen_zipf_init(&direct, 5000, 0.99), 0);
  assert_true(fabs(z.zetan - direct.zetan) < 1e-9 * direct.zetan);
  assert_true(fabs(z.eta - direct.eta) < 1e-9);
  uint64_t top = 0;
  for (uint64_t i = 0; i < draws; i++)
    top += gen_latest(&z, &rng) == 4999;
  assert_true(top > draws / 12);
}

/* The Pareto sizes' mean is within 3% of the asked mean, and sizes stay in [1, max]. */
static void test_pareto_mean(void **state)
{
  uint64_t rng = g_seed ^ 3;
  const uint32_t mean = 1024, max = 1u << 20;
  const uint64_t draws = 1000000;
  double sum = 0;
  uint32_t smallest = max;
  for (uint64_t i = 0; i < draws; i++) {
    uint32_t v = gen_pareto_size(&rng, mean, max);
    assert_true(v >= 1 && v <= max);
    if (v < smallest)
      smallest = v;
    sum += v;
  }
  double got = sum / (double)draws;
  if (fabs(got - mean) > 0.03 * mean)
    fail_msg("pareto mean %.1f, expected %u (seed %llu)", got, mean,
             (unsigned long long)g_seed);
  /* The scale is 2/3 of the mean: nothing below it. */
  assert_true(smallest >= 2 * mean / 3 - 1);
}

/* Percentiles land within a bucket's width (1/16) of the exact values. */
static void test_histogram(void **state)
{
  gen_hist *h = calloc(1, sizeof *h);
  gen_hist *other = calloc(1, sizeof *other);
  assert_non_null(h);
  assert_non_null(other);
  assert_int_equal(gen_hist_percentile(h, 0.5), 0);
  for (uint64_t v = 1; v <= 10000; v++)
    gen_hist_add(v <= 5000 ? h : other, v * 100);
  gen_hist_merge(h, other);
  assert_int_equal(h->count, 10000);
  assert_int_equal(h->min_ns, 100);
  assert_int_equal(h->max_ns, 1000000);
  const double ps[] = {0.5, 0.95, 0.99, 0.999};
  for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
    double exact = ps[i] * 1000000.0;
    double got = (double)gen_hist_percentile(h, ps[i]);
    if (fabs(got - exact) > exact / 16)
      fail_msg("p%g: %.0f, exact %.0f", ps[i] * 100, got, exact);
  }
  assert_int_equal(gen_hist_percentile(h, 1.0), 1000000);
  /* Small values get exact buckets. */
  gen_hist *small = calloc(1, sizeof *small);
  assert_non_null(small);
  for (uint64_t v = 0; v < 10; v++)
    gen_hist_add(small, v);
  assert_int_equal(gen_hist_percentile(small, 0.5), 4);
  free(small);
  free(h);
  free(other);
}

static void test_zipf_bad_arguments(void **state)
{
  gen_zipf z;
  assert_int_equal(gen_zipf_init(&z, 0, 0.99), 1);
  assert_int_equal(gen_zipf_init(&z, 10, 1.0), 1);
  assert_int_equal(gen_zipf_init(&z, 10, 0.0), 1);
  assert_int_equal(gen_zipf_init(&z, 1, 0.99), 0);
  uint64_t rng = g_seed;
  for (int i = 0; i < 100; i++)
    assert_int_equal(gen_zipf_rank(&z, &rng), 0);
}

int main(void)
{
  g_seed = test_seed();
  printf("test_bench_gen: seed %llu (MAYFLY_TEST_SEED=%llu replays it)\n",
         (unsigned long long)g_seed, (unsigned long long)g_seed);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_zipf_rank_frequencies), cmocka_unit_test(test_zipf_scrambled_spreads),
      cmocka_unit_test(test_latest),                cmocka_unit_test(test_pareto_mean),
      cmocka_unit_test(test_histogram),             cmocka_unit_test(test_zipf_bad_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
