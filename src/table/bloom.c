/* Bloom filter with double hashing (Kirsch & Mitzenmacher): k probes derived from one 64-bit
 * hash, so building costs one hash per key. Layout in bloom.h. */
#include "table/bloom.h"

#include <stdlib.h>
#include <string.h>

#include "mayfly.h"
#include "util/checksum.h"
#include "util/error.h"

#define BLOOM_MAX_PROBES 30
#define BLOOM_MIN_BITS 64

uint64_t bloom_hash(mf_slice key) { return mf_hash64(key.data, key.len); }

static int probes_for(int bits_per_key) {
  /* k = bits_per_key * ln 2 minimises the false-positive rate for a given m/n. */
  /* Rounded by hand (bits_per_key >= 1, so + 0.5 rounds to nearest) to stay off libm. */
  long k = (long)(bits_per_key * 0.69314718055994530942 + 0.5);
  if (k < 1) k = 1;
  if (k > BLOOM_MAX_PROBES) k = BLOOM_MAX_PROBES;
  return (int)k;
}

int bloom_build_from_hashes(const uint64_t *hashes, size_t n, int bits_per_key, mf_buf *out) {
  if (bits_per_key < 1)
    return MF_ERR(MAYFLY_EINVAL, "bloom filter needs bits_per_key >= 1 (got %d)", bits_per_key);
  if (n > (SIZE_MAX / 2) / (size_t)bits_per_key)
    return MF_ERR(MAYFLY_EINVAL, "bloom filter over %zu keys too large", n);
  size_t bits = n * (size_t)bits_per_key;
  if (bits < BLOOM_MIN_BITS) bits = BLOOM_MIN_BITS; /* tiny sets would see many false hits */
  size_t bytes = (bits + 7) / 8;
  uint64_t m = (uint64_t)bytes * 8;
  int k = probes_for(bits_per_key);
  int rc = mf_buf_reserve(out, bytes + 1);
  if (rc) return rc;
  unsigned char *array = (unsigned char *)out->data + out->len;
  memset(array, 0, bytes);
  for (size_t i = 0; i < n; i++) {
    uint64_t h1 = hashes[i] & 0xffffffffu, h2 = hashes[i] >> 32;
    for (int j = 0; j < k; j++) {
      uint64_t bit = (h1 + (uint64_t)j * h2) % m;
      array[bit / 8] |= (unsigned char)(1u << (bit % 8));
    }
  }
  array[bytes] = (unsigned char)k;
  out->len += bytes + 1;
  return MAYFLY_OK;
}

int bloom_build(const mf_slice *keys, size_t n, int bits_per_key, mf_buf *out) {
  uint64_t *hashes = malloc((n ? n : 1) * sizeof *hashes);
  if (!hashes) return MF_ERR(MAYFLY_ENOMEM, "no memory to hash %zu bloom keys", n);
  for (size_t i = 0; i < n; i++) hashes[i] = bloom_hash(keys[i]);
  int rc = bloom_build_from_hashes(hashes, n, bits_per_key, out);
  free(hashes);
  return rc;
}

int bloom_may_match_hash(mf_slice filter, uint64_t hash) {
  if (filter.len < 2) return 1;
  const unsigned char *array = (const unsigned char *)filter.data;
  int k = array[filter.len - 1];
  if (k < 1 || k > BLOOM_MAX_PROBES) return 1;
  uint64_t m = (uint64_t)(filter.len - 1) * 8;
  uint64_t h1 = hash & 0xffffffffu, h2 = hash >> 32;
  for (int j = 0; j < k; j++) {
    uint64_t bit = (h1 + (uint64_t)j * h2) % m;
    if (!(array[bit / 8] & (1u << (bit % 8)))) return 0;
  }
  return 1;
}

int bloom_may_match(mf_slice filter, mf_slice key) {
  return bloom_may_match_hash(filter, bloom_hash(key));
}
