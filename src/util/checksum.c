#include "util/checksum.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#ifdef MAYFLY_HAVE_XXH3_DISPATCH
/* From libxxhash's xxh_x86dispatch.h, which cannot be included next to XXH_INLINE_ALL. */
XXH64_hash_t XXH3_64bits_withSeed_dispatch(const void *input, size_t len, XXH64_hash_t seed);
#endif

/* Inputs at least this long go to the dispatcher (when the build found it, see
 * CMakeLists.txt): table blocks, checksummed on every read. Shorter ones stay inline, where
 * the call would cost more than the vector width saves. */
#define DISPATCH_MIN_LEN 512

uint32_t mf_checksum_seeded(uint64_t seed, const void *data, size_t n) {
#ifdef MAYFLY_HAVE_XXH3_DISPATCH
  if (n >= DISPATCH_MIN_LEN) return (uint32_t)XXH3_64bits_withSeed_dispatch(data, n, seed);
#endif
  return (uint32_t)XXH3_64bits_withSeed(data, n, seed);
}

uint64_t mf_hash64(const void *data, size_t n) { return XXH3_64bits(data, n); }
