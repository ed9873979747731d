#include "util/checksum.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

uint32_t mf_checksum_seeded(uint64_t seed, const void *data, size_t n) {
  return (uint32_t)XXH3_64bits_withSeed(data, n, seed);
}

uint64_t mf_hash64(const void *data, size_t n) { return XXH3_64bits(data, n); }
