/* Checksums and hashes. Every on-disk checksum in mayfly is mf_checksum: the low 32 bits of
 * XXH3-64 with a seed, so a record's type byte can be folded in as the seed instead of being
 * copied next to the payload. docs/format.md names this function wherever a checksum appears. */
#ifndef MAYFLY_UTIL_CHECKSUM_H
#define MAYFLY_UTIL_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

uint32_t mf_checksum_seeded(uint64_t seed, const void *data, size_t n);
static inline uint32_t mf_checksum(const void *data, size_t n) {
  return mf_checksum_seeded(0, data, n);
}
/* 64-bit hash for in-memory use (bloom filters, cache sharding). Stable across runs and
 * machines, so it may also be stored (the bloom filter stores bits derived from it). */
uint64_t mf_hash64(const void *data, size_t n);

#endif
