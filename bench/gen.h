/* Key, value-size and latency-histogram helpers of mayfly_bench (bench/gen.c).
 *
 * Everything here is deterministic given a seed, so every engine in one run (and every run
 * with the same --seed) sees the same sequence. Only gen_keyrange_init allocates (freed by
 * gen_keyrange_free); every other generator keeps its state inline.
 *
 * Distributions (the YCSB meanings):
 *   uniform         every index in [0, n) equally likely
 *   zipfian         rank r (0 = hottest) with probability proportional to 1/(r+1)^theta,
 *                   Gray et al.'s "Quickly generating billion-record synthetic databases"
 *                   method, which YCSB's ZipfianGenerator uses
 *   scrambled       a zipfian rank hashed onto [0, n) (YCSB's ScrambledZipfianGenerator), so
 *                   the hot keys are spread over the key space instead of clustered at 0
 *   latest          n-1 - zipfian rank over the n items inserted so far (YCSB's
 *                   SkewedLatestGenerator, workload D): the newest keys are the hottest
 *   pareto          value sizes from a Pareto law (shape 3) scaled to a given mean
 *
 * mixgraph (db_bench's, after Cao et al., "Characterizing, Modeling, and Benchmarking
 * RocksDB Key-Value Workloads at Facebook", FAST'20):
 *   generalized Pareto  x = theta + sigma * (u^-k - 1) / k (k == 0: theta - sigma * ln u),
 *                   rounded up, for u uniform in (0, 1]: value sizes and scan lengths
 *   power           a key seed x with P(seed <= x) = a * x^b (the inverse: ceil((u/a)^(1/b))),
 *                   hashed onto the key space, so a few seeds (keys) get most accesses
 *   key ranges      the key space cut into keyrange_num equal ranges whose hotness follows
 *                   the two-term exponential f(x) = a*e^(b*x) + c*e^(d*x), x = 1..keyrange_num,
 *                   the ranges shuffled over the key space; a key is a range drawn by
 *                   hotness, then an offset in it (power law, or uniform)
 */
#ifndef MAYFLY_BENCH_GEN_H
#define MAYFLY_BENCH_GEN_H

#include <stdint.h>

/* splitmix64: the one random stream of the bench. *state is any 64-bit seed. */
uint64_t gen_rng_next(uint64_t *state);

/* Uniform in [0, n); n == 0 returns 0. */
uint64_t gen_rng_uniform(uint64_t *state, uint64_t n);

/* Uniform double in [0, 1). */
double gen_rng_double(uint64_t *state);

/* A zipfian generator over ranks [0, n). zetan is kept incrementally so that n can grow
 * (gen_zipf_grow) at the cost of the new terms only, which the latest distribution needs. */
typedef struct gen_zipf {
  uint64_t n;
  double theta;
  double alpha; /* 1 / (1 - theta) */
  double zeta2; /* zeta(2, theta) */
  double zetan; /* zeta(n, theta) */
  double eta;
} gen_zipf;

/* theta in (0, 1) (YCSB: 0.99); n >= 1. Costs O(n) pow() calls once. Returns 0, or 1 for
 * bad arguments. */
int gen_zipf_init(gen_zipf *z, uint64_t n, double theta);

/* Extends the item count to new_n (>= the current n) in O(new_n - n). */
void gen_zipf_grow(gen_zipf *z, uint64_t new_n);

/* A rank in [0, n): 0 is the most frequent. */
uint64_t gen_zipf_rank(const gen_zipf *z, uint64_t *state);

/* A scrambled zipfian key index in [0, n): the rank hashed (FNV-1a 64 over its 8 bytes, as
 * YCSB does) modulo n. Several ranks can land on one index, as in YCSB. */
uint64_t gen_zipf_scrambled(const gen_zipf *z, uint64_t *state);

/* YCSB's latest: an index in [0, z->n) skewed towards z->n - 1, the newest item. */
uint64_t gen_latest(const gen_zipf *z, uint64_t *state);

/* FNV-1a 64 of the 8 little-endian bytes of v. */
uint64_t gen_fnv64(uint64_t v);

/* A Pareto(shape 3) value size with the given mean, clamped to [1, max]. The shape keeps
 * the variance finite, so a run's average size is close to mean. */
uint32_t gen_pareto_size(uint64_t *state, uint32_t mean, uint32_t max);

/* ---- mixgraph ---------------------------------------------------------------------------- */

/* Uniform double in (0, 1]: the inverse CDFs below take logs and negative powers of it. */
double gen_rng_open_double(uint64_t *state);

/* The generalized Pareto inverse CDF at u in (0, 1]: theta + sigma * (u^-k - 1) / k, or
 * theta - sigma * ln(u) when k == 0. Its mean is theta + sigma / (1 - k) for k < 1 (infinite
 * for k >= 1). Not rounded. */
double gen_gpareto_inverse(double u, double theta, double k, double sigma);

/* A generalized Pareto draw rounded up to an integer, as db_bench does (ceil), clamped to
 * [INT64_MIN/2, INT64_MAX/2] so that huge tails (k >= 1) stay representable. */
int64_t gen_gpareto(uint64_t *state, double theta, double k, double sigma);

/* A power-law key seed: ceil((u/a)^(1/b)) for u uniform in (0, 1], so P(seed <= x) = a*x^b.
 * a > 0, b > 0; the result is >= 1 and clamped to 2^62. */
uint64_t gen_power_seed(uint64_t *state, double a, double b);

/* Hashes a seed onto [0, n) (splitmix64's finaliser), spreading the hot seeds over the key
 * space as db_bench does with Random64(seed). n == 0 returns 0. */
uint64_t gen_scatter(uint64_t seed, uint64_t n);

/* The key ranges of mixgraph (see the top of this file). Owns two arrays from malloc: call
 * gen_keyrange_free once done; the struct is read-only after init, so threads may share it. */
typedef struct gen_keyrange {
  uint64_t count;      /* key ranges (slots of the key space) */
  uint64_t range_size; /* keys per range: n / count (the n % count last keys are never drawn) */
  double *cumulative;  /* count entries: P(slot <= i), ascending, the last one 1 */
  uint64_t *x;         /* count entries: the x of f(x) that gives slot i its hotness */
} gen_keyrange;

/* Builds count ranges over n keys with hotness f(x) = a*e^(b*x) + c*e^(d*x); terms below 1e-16
 * count as 0, as in db_bench. count is clamped to [1, n]. The shuffle of x over the slots
 * depends on count only, so every run (and engine) with the same flags gets the same layout.
 * Returns 0; 1 when n == 0, f is not positive anywhere or is not finite, or out of memory
 * (*g is then empty and gen_keyrange_free is still safe). */
int gen_keyrange_init(gen_keyrange *g, uint64_t n, uint64_t count, double a, double b, double c,
                      double d);

void gen_keyrange_free(gen_keyrange *g);

/* The probability of slot i (f(x[i]) / sum of f). */
double gen_keyrange_probability(const gen_keyrange *g, uint64_t slot);

/* A slot drawn by hotness. */
uint64_t gen_keyrange_slot(const gen_keyrange *g, uint64_t *state);

/* A key index in [0, count * range_size): a slot by hotness, then an offset in it, from the
 * power law key_a * x^key_b when both are nonzero, else uniform. */
uint64_t gen_keyrange_key(const gen_keyrange *g, double key_a, double key_b, uint64_t *state);

/* ---- latency histogram ------------------------------------------------------------------ */

/* A log-bucketed latency histogram in nanoseconds: 16 buckets per power of two, so any
 * percentile is within about 4% of the exact value. Zero-initialise before use. */
#define GEN_HIST_SUB 16
#define GEN_HIST_BUCKETS (64 * GEN_HIST_SUB)
typedef struct gen_hist {
  uint64_t count;
  uint64_t sum_ns;
  uint64_t min_ns;
  uint64_t max_ns;
  uint64_t buckets[GEN_HIST_BUCKETS];
} gen_hist;

void gen_hist_add(gen_hist *h, uint64_t ns);

/* Adds every sample of from to into (threads merge their own histograms at the end). */
void gen_hist_merge(gen_hist *into, const gen_hist *from);

/* The value below which a fraction p (0..1) of the samples fall: the middle of its bucket,
 * clamped to [min, max]; p >= 1 gives max. 0 for an empty histogram. */
uint64_t gen_hist_percentile(const gen_hist *h, double p);

#endif /* MAYFLY_BENCH_GEN_H */
