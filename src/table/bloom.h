/* Bloom filter over a table's user keys.
 *
 *   filter := bits (m/8 bytes) || k (1 byte, number of probes, 1..30)
 *
 * For a key, h = mf_hash64(key), h1 = low 32 bits of h, h2 = high 32 bits of h; probe i
 * (0 <= i < k) sets/tests bit (h1 + i * h2) mod m, computed in 64-bit arithmetic, where bit j
 * is bit (j % 8) (least significant first) of byte j / 8. m = 8 * ceil(n * bits_per_key / 8),
 * at least 64. k = round(bits_per_key * ln 2) clamped to [1, 30]. A filter shorter than 2
 * bytes or with k outside [1, 30] matches everything (room for future encodings).
 * docs/format/sst.md describes where the filter sits in a table. */
#ifndef MAYFLY_TABLE_BLOOM_H
#define MAYFLY_TABLE_BLOOM_H

#include <stddef.h>
#include <stdint.h>

#include "util/slice.h"

/* The hash the filter uses for key (mf_hash64), for builders that keep hashes, not keys. */
uint64_t bloom_hash(mf_slice key);
/* Appends a filter for the n hashes to out. bits_per_key >= 1. Returns MAYFLY_OK,
 * MAYFLY_EINVAL or MAYFLY_ENOMEM. */
int bloom_build_from_hashes(const uint64_t *hashes, size_t n, int bits_per_key, mf_buf *out);
/* Appends a filter for the n keys to out (same result as hashing them with bloom_hash). */
int bloom_build(const mf_slice *keys, size_t n, int bits_per_key, mf_buf *out);
/* 0 if key is certainly not in the set the filter was built from, 1 if it may be. */
int bloom_may_match(mf_slice filter, mf_slice key);
int bloom_may_match_hash(mf_slice filter, uint64_t hash);

#endif
