/* Tests of mayfly_bench's generators (bench/gen.c): the zipfian rank frequencies against the
 * zipf law, scrambling staying in range and spreading the hot keys, latest favouring the
 * newest item, the Pareto value sizes' mean, the histogram's percentiles, and mixgraph's
 * laws: the generalized Pareto mean, the power law's CDF and the two-term exponential
 * key-range hotness. Built by
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

/* Generalized Pareto: the sample mean matches theta + sigma / (1 - k) (FAST'20's value sizes,
 * k = 0.2615, sigma = 25.45, and the exponential case k = 0), and db_bench's rounding up adds
 * less than one. */
static void test_gpareto_mean(void **state)
{
  static const struct {
    double theta, k, sigma;
  } laws[] = {{0.0, 0.2615, 25.45}, {10.0, 0.0, 5.0}, {100.0, 0.1, 40.0}};
  const uint64_t draws = 1000000;
  for (size_t l = 0; l < sizeof laws / sizeof laws[0]; l++) {
    uint64_t rng = g_seed ^ (10 + l);
    double sum = 0, sum_int = 0;
    for (uint64_t i = 0; i < draws; i++) {
      double u = gen_rng_open_double(&rng);
      assert_true(u > 0.0 && u <= 1.0);
      double x = gen_gpareto_inverse(u, laws[l].theta, laws[l].k, laws[l].sigma);
      assert_true(x >= laws[l].theta - 1e-9); /* the law's support starts at theta */
      sum += x;
      sum_int += (double)gen_gpareto(&rng, laws[l].theta, laws[l].k, laws[l].sigma);
    }
    double expect = laws[l].theta + laws[l].sigma / (1.0 - laws[l].k);
    double got = sum / (double)draws, got_int = sum_int / (double)draws;
    if (fabs(got - expect) > 0.03 * expect)
      fail_msg("gpareto(theta %g, k %g, sigma %g): mean %.3f, expected %.3f (seed %llu)",
               laws[l].theta, laws[l].k, laws[l].sigma, got, expect,
               (unsigned long long)g_seed);
    /* ceil adds about half on average: [0, 1) in any case. */
    if (got_int < expect - 0.03 * expect || got_int > expect + 1.0 + 0.03 * expect)
      fail_msg("rounded gpareto mean %.3f, expected %.3f + [0, 1) (seed %llu)", got_int, expect,
               (unsigned long long)g_seed);
  }
  assert_true(fabs(gen_gpareto_inverse(1.0, 7.0, 0.3, 9.0) - 7.0) < 1e-12);
  assert_true(fabs(gen_gpareto_inverse(exp(-1.0), 0.0, 0.0, 2.0) - 2.0) < 1e-12);
  /* db_bench's default parameters (all 0) give 0 every time. */
  uint64_t rng = g_seed;
  for (int i = 0; i < 1000; i++)
    assert_int_equal(gen_gpareto(&rng, 0.0, 0.0, 0.0), 0);
}

/* Power-law seeds: P(seed <= x) = a * x^b at several x (FAST'20's a = 0.002312, b = 0.3467),
 * and scattering keeps the skew: the hottest key gets about a of the draws. */
static void test_power_seed(void **state)
{
  const double a = 0.002312, b = 0.3467;
  const uint64_t draws = 1000000;
  const double xs[] = {1, 100, 10000, 1000000};
  uint64_t below[4] = {0};
  uint64_t rng = g_seed ^ 20;
  const uint64_t n = 1000;
  uint64_t *hits = calloc(n, sizeof *hits);
  assert_non_null(hits);
  for (uint64_t i = 0; i < draws; i++) {
    uint64_t seed = gen_power_seed(&rng, a, b);
    assert_true(seed >= 1);
    for (int j = 0; j < 4; j++)
      below[j] += (double)seed <= xs[j];
    uint64_t key = gen_scatter(seed, n);
    assert_true(key < n);
    hits[key]++;
  }
  for (int j = 0; j < 4; j++) {
    double expect = a * pow(xs[j], b) * (double)draws;
    /* Binomial: 5 standard deviations, and at least 2%. */
    double tolerance = fmax(5.0 * sqrt(expect), 0.02 * expect);
    if (fabs((double)below[j] - expect) > tolerance)
      fail_msg("P(seed <= %g): %llu draws, expected %.0f (seed %llu)", xs[j],
               (unsigned long long)below[j], expect, (unsigned long long)g_seed);
  }
  /* The key seed 1 lands on gen_scatter(1, n): at least its own share a of the draws. */
  double hot = (double)hits[gen_scatter(1, n)] / (double)draws;
  assert_true(hot > 0.8 * a);
  assert_int_equal(gen_scatter(12345, 0), 0);
  assert_int_equal(gen_scatter(12345, 77), gen_scatter(12345, 77));
  free(hits);
}

/* Key ranges: each slot's probability is f(x) / sum f for the x it holds (FAST'20's
 * a = 14.18, b = -2.917, c = 0.0164, d = -0.08082 over 30 ranges), x is a permutation of
 * 1..30, draws follow the probabilities, and keys stay inside their ranges. */
static void test_keyrange(void **state)
{
  const double a = 14.18, b = -2.917, c = 0.0164, d = -0.08082;
  const uint64_t count = 30, n = 30000 + 7, draws = 1000000;
  gen_keyrange g;
  assert_int_equal(gen_keyrange_init(&g, n, count, a, b, c, d), 0);
  assert_int_equal(g.count, count);
  assert_int_equal(g.range_size, n / count);
  double total = 0;
  for (uint64_t x = 1; x <= count; x++)
    total += a * exp(b * (double)x) + c * exp(d * (double)x);
  int seen[31] = {0};
  for (uint64_t i = 0; i < count; i++) {
    assert_true(g.x[i] >= 1 && g.x[i] <= count);
    assert_int_equal(seen[g.x[i]], 0);
    seen[g.x[i]] = 1;
    double x = (double)g.x[i];
    double expect = (a * exp(b * x) + c * exp(d * x)) / total;
    assert_true(fabs(gen_keyrange_probability(&g, i) - expect) < 1e-9);
  }
  uint64_t *slots = calloc(count, sizeof *slots);
  assert_non_null(slots);
  uint64_t rng = g_seed ^ 30;
  for (uint64_t i = 0; i < draws; i++) {
    uint64_t key = gen_keyrange_key(&g, i % 2 ? 0.002312 : 0.0, 0.3467, &rng);
    assert_true(key < count * g.range_size);
    slots[key / g.range_size]++;
  }
  for (uint64_t i = 0; i < count; i++) {
    double expect = gen_keyrange_probability(&g, i) * (double)draws;
    double tolerance = fmax(5.0 * sqrt(expect), 0.02 * expect);
    if (fabs((double)slots[i] - expect) > tolerance)
      fail_msg("key range %llu (x = %llu): %llu draws, expected %.0f (seed %llu)",
               (unsigned long long)i, (unsigned long long)g.x[i],
               (unsigned long long)slots[i], expect, (unsigned long long)g_seed);
  }
  /* The hottest range (x = 1) takes about 78% of f's mass. */
  for (uint64_t i = 0; i < count; i++)
    if (g.x[i] == 1)
      assert_true((double)slots[i] > 0.7 * (double)draws);
  free(slots);
  gen_keyrange_free(&g);
  assert_null(g.cumulative);

  /* The same count gives the same layout; count is clamped to n; bad laws are refused. */
  gen_keyrange g1, g2;
  assert_int_equal(gen_keyrange_init(&g1, 1000, 30, a, b, c, d), 0);
  assert_int_equal(gen_keyrange_init(&g2, 5000, 30, 1.0, -1.0, 0.0, 0.0), 0);
  for (uint64_t i = 0; i < 30; i++)
    assert_int_equal(g1.x[i], g2.x[i]);
  gen_keyrange_free(&g1);
  gen_keyrange_free(&g2);
  assert_int_equal(gen_keyrange_init(&g1, 5, 30, a, b, c, d), 0);
  assert_int_equal(g1.count, 5);
  assert_int_equal(g1.range_size, 1);
  gen_keyrange_free(&g1);
  assert_int_equal(gen_keyrange_init(&g1, 0, 30, a, b, c, d), 1);
  assert_int_equal(gen_keyrange_init(&g1, 100, 30, 0.0, 0.0, 0.0, 0.0), 1);
  gen_keyrange_free(&g1);
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
      cmocka_unit_test(test_gpareto_mean),          cmocka_unit_test(test_power_seed),
      cmocka_unit_test(test_keyrange),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
