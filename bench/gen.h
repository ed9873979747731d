/* Key, value-size and latency-histogram helpers of mayfly_bench (bench/gen.c).
 *
 * Everything here is deterministic given a seed, so every engine in one run (and every run
 * with the same --seed) sees the same sequence. Nothing allocates except gen_zipf_init's
 * callers' structs (none: all state is inline), so there is nothing to free.
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
