/* Byte ranges and growable byte buffers: the two types every layer passes around.
 *
 * An mf_slice borrows memory it does not own; the owner states how long it stays valid.
 * An mf_buf owns a malloc'd array; mf_buf_free releases it. Neither is NUL-terminated. */
#ifndef MAYFLY_UTIL_SLICE_H
#define MAYFLY_UTIL_SLICE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct mf_slice {
  const char *data;
  size_t len;
} mf_slice;

static inline mf_slice mf_slice_make(const void *data, size_t len) {
  mf_slice s = {(const char *)data, len};
  return s;
}

static inline mf_slice mf_slice_cstr(const char *s) { return mf_slice_make(s, strlen(s)); }

/* Bytewise order: memcmp, the shorter first on a common prefix.
 *
 * Keys are compared on every step of every search (skiplist, blocks, index), and most are
 * short, so the common prefix is walked 8 bytes at a time inline: two words loaded and, where
 * they differ, byte-swapped so that integer order is byte order (little-endian hosts; others
 * use memcmp). memcmp, a call, is left for the tail of fewer than 8 bytes. */
static inline int mf_slice_compare(mf_slice a, mf_slice b) {
  size_t n = a.len < b.len ? a.len : b.len;
  int r = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && defined(__GNUC__)
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x, y;
    memcpy(&x, a.data + i, 8);
    memcpy(&y, b.data + i, 8);
    if (x != y) {
      x = __builtin_bswap64(x);
      y = __builtin_bswap64(y);
      return x < y ? -1 : 1;
    }
  }
  if (i < n) r = memcmp(a.data + i, b.data + i, n - i);
#else
  if (n) r = memcmp(a.data, b.data, n);
#endif
  if (r == 0) r = (a.len < b.len) ? -1 : (a.len > b.len);
  return r;
}

static inline int mf_slice_equal(mf_slice a, mf_slice b) {
  return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

typedef struct mf_buf {
  char *data;
  size_t len;
  size_t cap;
} mf_buf;

#define MF_BUF_INIT {NULL, 0, 0}

/* All return MAYFLY_OK or MAYFLY_ENOMEM. */
int mf_buf_reserve(mf_buf *b, size_t extra);
/* As mf_buf_reserve, but grows to exactly len + extra (for a buffer whose size is known and
 * that is kept, e.g. a decompressed block in the cache, which is charged its length). */
int mf_buf_reserve_exact(mf_buf *b, size_t extra);
int mf_buf_append(mf_buf *b, const void *data, size_t n);
int mf_buf_set(mf_buf *b, const void *data, size_t n);
static inline void mf_buf_clear(mf_buf *b) { b->len = 0; }
void mf_buf_free(mf_buf *b);
/* Appends printf-style text (no NUL). MAYFLY_OK, MAYFLY_ENOMEM, or MAYFLY_EINVAL for a bad
 * format. */
int mf_buf_appendf(mf_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static inline mf_slice mf_buf_slice(const mf_buf *b) { return mf_slice_make(b->data, b->len); }

#endif
