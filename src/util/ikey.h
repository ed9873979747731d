/* Internal keys: how every layer below the public API names one version of a user key.
 *
 *   internal key := user_key bytes || trailer (fixed64, little-endian)
 *   trailer      := (seq << 8) | type
 *
 * seq is 56 bits and is never zeroed (traces join on user key + seq). Order: user key
 * ascending (bytewise, shorter first), then trailer descending, so the newest version of a
 * key comes first. A lookup for (key, seq) seeks to ikey(key, seq, MF_TYPE_FOR_SEEK) and
 * lands on the newest version at or below seq. docs/format.md documents the trailer. */
#ifndef MAYFLY_UTIL_IKEY_H
#define MAYFLY_UTIL_IKEY_H

#include <stdint.h>

#include "util/coding.h"
#include "util/slice.h"

#define MF_MAX_SEQ ((UINT64_C(1) << 56) - 1)

enum mf_value_type {
  MF_TYPE_DELETE = 0,
  MF_TYPE_VALUE = 1,
  MF_TYPE_BLOB_INDEX = 2, /* value is a blob index (key-value separation) */
  MF_TYPE_MAX = 2
};
/* The highest type: ikey(key, seq, MF_TYPE_FOR_SEEK) sorts before every entry of key at seq. */
#define MF_TYPE_FOR_SEEK MF_TYPE_MAX

typedef int (*mf_compare_fn)(mf_slice a, mf_slice b);

typedef struct mf_parsed_ikey {
  mf_slice user_key;
  uint64_t seq;
  int type;
} mf_parsed_ikey;

static inline uint64_t ikey_pack(uint64_t seq, int type) { return (seq << 8) | (uint64_t)type; }

int ikey_append(mf_buf *b, mf_slice user_key, uint64_t seq, int type);
/* Returns 1 when ikey is well formed (at least 8 bytes, known type), else 0. */
int ikey_parse(mf_slice ikey, mf_parsed_ikey *out);

static inline mf_slice ikey_user_key(mf_slice ikey) {
  return mf_slice_make(ikey.data, ikey.len - 8);
}
static inline uint64_t ikey_trailer(mf_slice ikey) { return decode_fixed64(ikey.data + ikey.len - 8); }

/* The internal-key order described above. Both keys must be at least 8 bytes. Inline: it
 * is the comparison of every memtable, block and merge step. */
static inline int ikey_compare(mf_slice a, mf_slice b) {
  int r = mf_slice_compare(ikey_user_key(a), ikey_user_key(b));
  if (r) return r;
  uint64_t ta = ikey_trailer(a), tb = ikey_trailer(b);
  return ta > tb ? -1 : ta < tb;
}
/* Plain bytewise order, as an mf_compare_fn. */
int bytewise_compare(mf_slice a, mf_slice b);

#endif
