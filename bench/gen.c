/* Generators and the latency histogram of mayfly_bench; see bench/gen.h for the meanings.
 *
 * The zipfian method (Gray et al., SIGMOD 1994, as used by YCSB): with
 *   zeta(n) = sum_{i=1..n} 1 / i^theta,  alpha = 1 / (1 - theta),
 *   eta = (1 - (2/n)^(1-theta)) / (1 - zeta(2) / zeta(n)),
 * draw u uniform in [0, 1) and let uz = u * zeta(n): rank 0 if uz < 1, rank 1 if
 * uz < 1 + 0.5^theta, otherwise n * (eta*u - eta + 1)^alpha. Ranks 0 and 1 are exact; the
 * rest follows the zipf law closely for the theta values benchmarks use (0.5 .. 0.99). */
#include "gen.h"

#include <math.h>
#include <stdlib.h>

uint64_t gen_rng_next(uint64_t *state)
{
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t gen_rng_uniform(uint64_t *state, uint64_t n)
{
  /* Multiply-shift maps 64 random bits onto [0, n) without division. */
  return (uint64_t)(((unsigned __int128)gen_rng_next(state) * n) >> 64);
}

double gen_rng_double(uint64_t *state)
{
  return (double)(gen_rng_next(state) >> 11) * (1.0 / 9007199254740992.0);
}

static void zipf_update_eta(gen_zipf *z)
{
  z->eta = (1.0 - pow(2.0 / (double)z->n, 1.0 - z->theta)) / (1.0 - z->zeta2 / z->zetan);
}

int gen_zipf_init(gen_zipf *z, uint64_t n, double theta)
{
  if (n == 0 || !(theta > 0.0 && theta < 1.0))
    return 1;
  z->n = 0;
  z->theta = theta;
  z->alpha = 1.0 / (1.0 - theta);
  z->zeta2 = 1.0 + pow(0.5, theta);
  z->zetan = 0.0;
  gen_zipf_grow(z, n);
  return 0;
}

void gen_zipf_grow(gen_zipf *z, uint64_t new_n)
{
  if (new_n <= z->n)
    return;
  for (uint64_t i = z->n + 1; i <= new_n; i++)
    z->zetan += 1.0 / pow((double)i, z->theta);
  z->n = new_n;
  /* With n == 1 eta is 0/0; every draw is rank 0 anyway (uz < 1 always). */
  if (z->n >= 2)
    zipf_update_eta(z);
  else
    z->eta = 0.0;
}

uint64_t gen_zipf_rank(const gen_zipf *z, uint64_t *state)
{
  double u = gen_rng_double(state);
  double uz = u * z->zetan;
  if (uz < 1.0 || z->n == 1)
    return 0;
  if (uz < z->zeta2) /* 1 + 0.5^theta, computed once */
    return 1;
  uint64_t rank = (uint64_t)((double)z->n * pow(z->eta * u - z->eta + 1.0, z->alpha));
  return rank < z->n ? rank : z->n - 1;
}

uint64_t gen_fnv64(uint64_t v)
{
  uint64_t h = 0xcbf29ce484222325ull;
  for (int i = 0; i < 8; i++) {
    h ^= v & 0xff;
    h *= 0x100000001b3ull;
    v >>= 8;
  }
  return h;
}

uint64_t gen_zipf_scrambled(const gen_zipf *z, uint64_t *state)
{
  return gen_fnv64(gen_zipf_rank(z, state)) % z->n;
}

uint64_t gen_latest(const gen_zipf *z, uint64_t *state)
{
  return z->n - 1 - gen_zipf_rank(z, state);
}

uint32_t gen_pareto_size(uint64_t *state, uint32_t mean, uint32_t max)
{
  /* Pareto(xm, a) has mean a*xm/(a-1); with a = 3, xm = 2/3 of the mean. Inverse CDF:
   * xm / (1-u)^(1/a). */
  const double shape = 3.0;
  double xm = (double)mean * (shape - 1.0) / shape;
  double u = gen_rng_double(state);
  double v = xm / pow(1.0 - u, 1.0 / shape);
  if (v < 1.0)
    return 1;
  if (v > (double)max)
    return max;
  return (uint32_t)(v + 0.5);
}

/* ---- mixgraph ---------------------------------------------------------------------------- */

double gen_rng_open_double(uint64_t *state)
{
  return 1.0 - gen_rng_double(state);
}

double gen_gpareto_inverse(double u, double theta, double k, double sigma)
{
  if (k == 0.0)
    return theta - sigma * log(u);
  return theta + sigma * (pow(u, -k) - 1.0) / k;
}

/* Rounds x up and clamps it to [lo, hi]; NaN (0 * inf) counts as lo. */
static double ceil_clamped(double x, double lo, double hi)
{
  if (!(x > lo))
    return lo;
  if (x > hi)
    return hi;
  return ceil(x);
}

int64_t gen_gpareto(uint64_t *state, double theta, double k, double sigma)
{
  double x = gen_gpareto_inverse(gen_rng_open_double(state), theta, k, sigma);
  if (isnan(x))
    return 0;
  return (int64_t)ceil_clamped(x, (double)(INT64_MIN / 2), (double)(INT64_MAX / 2));
}

uint64_t gen_power_seed(uint64_t *state, double a, double b)
{
  double x = pow(gen_rng_open_double(state) / a, 1.0 / b);
  return (uint64_t)ceil_clamped(x, 1.0, 4611686018427387904.0 /* 2^62 */);
}

uint64_t gen_scatter(uint64_t seed, uint64_t n)
{
  uint64_t state = seed;
  return n == 0 ? 0 : gen_rng_next(&state) % n;
}

static double two_term_exp(double x, double a, double b, double c, double d)
{
  double p = a * exp(b * x) + c * exp(d * x);
  return p < 1e-16 ? 0.0 : p; /* db_bench's cut-off: a range this cold is never drawn */
}

int gen_keyrange_init(gen_keyrange *g, uint64_t n, uint64_t count, double a, double b, double c,
                      double d)
{
  *g = (gen_keyrange){0};
  if (n == 0)
    return 1;
  if (count < 1)
    count = 1;
  if (count > n)
    count = n;
  g->cumulative = malloc(count * sizeof *g->cumulative);
  g->x = malloc(count * sizeof *g->x);
  if (g->cumulative == NULL || g->x == NULL) {
    gen_keyrange_free(g);
    return 1;
  }
  g->count = count;
  g->range_size = n / count;
  /* Fisher-Yates over x = 1..count, from a stream that depends on count only: the hot
   * ranges land at the same places in every run, but not all at the start of the space. */
  for (uint64_t i = 0; i < count; i++)
    g->x[i] = i + 1;
  uint64_t shuffle = 0x6b657972616e6765ull ^ count;
  for (uint64_t i = count - 1; i > 0; i--) {
    uint64_t j = gen_rng_uniform(&shuffle, i + 1);
    uint64_t t = g->x[i];
    g->x[i] = g->x[j];
    g->x[j] = t;
  }
  double total = 0;
  for (uint64_t i = 0; i < count; i++) {
    total += two_term_exp((double)g->x[i], a, b, c, d);
    g->cumulative[i] = total;
  }
  if (!(total > 0) || !isfinite(total)) {
    gen_keyrange_free(g);
    return 1;
  }
  for (uint64_t i = 0; i < count; i++)
    g->cumulative[i] /= total;
  g->cumulative[count - 1] = 1.0; /* no slot past the end through rounding */
  return 0;
}

void gen_keyrange_free(gen_keyrange *g)
{
  free(g->cumulative);
  free(g->x);
  *g = (gen_keyrange){0};
}

double gen_keyrange_probability(const gen_keyrange *g, uint64_t slot)
{
  return slot == 0 ? g->cumulative[0] : g->cumulative[slot] - g->cumulative[slot - 1];
}

uint64_t gen_keyrange_slot(const gen_keyrange *g, uint64_t *state)
{
  /* The first slot whose cumulative probability exceeds u: a binary search. */
  double u = gen_rng_double(state);
  uint64_t lo = 0, hi = g->count - 1;
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    if (u < g->cumulative[mid])
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

uint64_t gen_keyrange_key(const gen_keyrange *g, double key_a, double key_b, uint64_t *state)
{
  uint64_t slot = gen_keyrange_slot(g, state);
  uint64_t offset = key_a != 0.0 && key_b != 0.0
                        ? gen_scatter(gen_power_seed(state, key_a, key_b), g->range_size)
                        : gen_rng_uniform(state, g->range_size);
  return slot * g->range_size + offset;
}

/* ---- histogram ------------------------------------------------------------------------- */

/* Values below 16 get a bucket each; above, 16 buckets per power of two: the bucket is the
 * exponent and the 4 bits under the leading one. The mapping is continuous at 16. */
static unsigned hist_index(uint64_t v)
{
  if (v < GEN_HIST_SUB)
    return (unsigned)v;
  unsigned e = 63u - (unsigned)__builtin_clzll(v);
  unsigned sub = (unsigned)(v >> (e - 4)) & (GEN_HIST_SUB - 1);
  return (e - 3) * GEN_HIST_SUB + sub;
}

static void hist_bounds(unsigned idx, uint64_t *low, uint64_t *width)
{
  if (idx < GEN_HIST_SUB) {
    *low = idx;
    *width = 1;
    return;
  }
  unsigned e = idx / GEN_HIST_SUB + 3, sub = idx % GEN_HIST_SUB;
  *low = (uint64_t)(GEN_HIST_SUB + sub) << (e - 4);
  *width = 1ull << (e - 4);
}

void gen_hist_add(gen_hist *h, uint64_t ns)
{
  if (h->count == 0 || ns < h->min_ns)
    h->min_ns = ns;
  if (ns > h->max_ns)
    h->max_ns = ns;
  h->count++;
  h->sum_ns += ns;
  h->buckets[hist_index(ns)]++;
}

void gen_hist_merge(gen_hist *into, const gen_hist *from)
{
  if (from->count == 0)
    return;
  if (into->count == 0 || from->min_ns < into->min_ns)
    into->min_ns = from->min_ns;
  if (from->max_ns > into->max_ns)
    into->max_ns = from->max_ns;
  into->count += from->count;
  into->sum_ns += from->sum_ns;
  for (unsigned i = 0; i < GEN_HIST_BUCKETS; i++)
    into->buckets[i] += from->buckets[i];
}

uint64_t gen_hist_percentile(const gen_hist *h, double p)
{
  if (h->count == 0)
    return 0;
  if (p >= 1.0)
    return h->max_ns;
  double want = p * (double)h->count;
  uint64_t seen = 0;
  for (unsigned i = 0; i < GEN_HIST_BUCKETS; i++) {
    seen += h->buckets[i];
    if (h->buckets[i] > 0 && (double)seen >= want) {
      uint64_t low = 0, width = 0;
      hist_bounds(i, &low, &width);
      uint64_t v = low + width / 2;
      if (v < h->min_ns)
        v = h->min_ns;
      if (v > h->max_ns)
        v = h->max_ns;
      return v;
    }
  }
  return h->max_ns;
}
