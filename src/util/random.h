/* Small deterministic PRNG (splitmix64 seeding a xorshift64*): for skiplist heights and tests,
 * never for anything that needs to be unpredictable. */
#ifndef MAYFLY_UTIL_RANDOM_H
#define MAYFLY_UTIL_RANDOM_H

#include <stdint.h>

typedef struct mf_random {
  uint64_t state;
} mf_random;

static inline void mf_random_seed(mf_random *r, uint64_t seed) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  r->state = (z ^ (z >> 31)) | 1;
}

static inline uint64_t mf_random_next(mf_random *r) {
  uint64_t x = r->state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  r->state = x;
  return x * 0x2545f4914f6cdd1dull;
}

/* Uniform in [0, n); n > 0. */
static inline uint64_t mf_random_uniform(mf_random *r, uint64_t n) {
  return mf_random_next(r) % n;
}

#endif
