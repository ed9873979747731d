/* Fixed-width little-endian and varint encodings used by every on-disk format.
 *
 * encode_* write into caller memory; put_* append to an mf_buf (and return MAYFLY_OK or
 * MAYFLY_ENOMEM); get_* consume from the front of a slice and return 1 on success, 0 when the
 * input is truncated or malformed (the slice is then left unspecified). */
#ifndef MAYFLY_UTIL_CODING_H
#define MAYFLY_UTIL_CODING_H

#include <stdint.h>
#include <string.h>

#include "util/slice.h"

#define MF_MAX_VARINT32_LEN 5
#define MF_MAX_VARINT64_LEN 10

static inline void encode_fixed16(char *p, uint16_t v) {
  p[0] = (char)(v & 0xff);
  p[1] = (char)(v >> 8);
}
static inline void encode_fixed32(char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (char)((v >> (8 * i)) & 0xff);
}
static inline void encode_fixed64(char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (char)((v >> (8 * i)) & 0xff);
}
static inline uint16_t decode_fixed16(const char *p) {
  const unsigned char *u = (const unsigned char *)p;
  return (uint16_t)(u[0] | (u[1] << 8));
}
static inline uint32_t decode_fixed32(const char *p) {
  const unsigned char *u = (const unsigned char *)p;
  return (uint32_t)u[0] | ((uint32_t)u[1] << 8) | ((uint32_t)u[2] << 16) | ((uint32_t)u[3] << 24);
}
static inline uint64_t decode_fixed64(const char *p) {
  return (uint64_t)decode_fixed32(p) | ((uint64_t)decode_fixed32(p + 4) << 32);
}

/* Writes v at p (room for MF_MAX_VARINT64_LEN bytes); returns the byte past the end. */
char *encode_varint32(char *p, uint32_t v);
char *encode_varint64(char *p, uint64_t v);
int varint_length(uint64_t v);

int put_fixed32(mf_buf *b, uint32_t v);
int put_fixed64(mf_buf *b, uint64_t v);
int put_varint32(mf_buf *b, uint32_t v);
int put_varint64(mf_buf *b, uint64_t v);
/* varint32 length followed by the bytes. */
int put_length_prefixed(mf_buf *b, mf_slice s);

int get_fixed32(mf_slice *in, uint32_t *v);
int get_fixed64(mf_slice *in, uint64_t *v);
int get_varint32(mf_slice *in, uint32_t *v);
int get_varint64(mf_slice *in, uint64_t *v);
/* The result points into *in's memory. */
int get_length_prefixed(mf_slice *in, mf_slice *out);

/* The general decoders behind decode_varint32/64 below (any length; same contract). */
const char *decode_varint32_multibyte(const char *p, const char *limit, uint32_t *v);
const char *decode_varint64_multibyte(const char *p, const char *limit, uint64_t *v);

/* Pointer-range decoders for hot loops: return the byte past the varint, or NULL when the
 * varint runs past limit or is too long. Inline because they sit in every key comparison of
 * the memtable and every entry of a block, where almost every varint is one byte (a length
 * or count below 128): that case costs a load and a branch, the rest goes out of line. */
static inline const char *decode_varint32(const char *p, const char *limit, uint32_t *v) {
  if (p < limit && *(const unsigned char *)p < 0x80) {
    *v = *(const unsigned char *)p;
    return p + 1;
  }
  return decode_varint32_multibyte(p, limit, v);
}

static inline const char *decode_varint64(const char *p, const char *limit, uint64_t *v) {
  if (p < limit && *(const unsigned char *)p < 0x80) {
    *v = *(const unsigned char *)p;
    return p + 1;
  }
  return decode_varint64_multibyte(p, limit, v);
}

#endif
