#include "util/coding.h"

#include "mayfly.h"

char *encode_varint64(char *p, uint64_t v) {
  unsigned char *u = (unsigned char *)p;
  while (v >= 0x80) {
    *u++ = (unsigned char)(v | 0x80);
    v >>= 7;
  }
  *u++ = (unsigned char)v;
  return (char *)u;
}

char *encode_varint32(char *p, uint32_t v) { return encode_varint64(p, v); }

int varint_length(uint64_t v) {
  int n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

int put_fixed32(mf_buf *b, uint32_t v) {
  char tmp[4];
  encode_fixed32(tmp, v);
  return mf_buf_append(b, tmp, 4);
}

int put_fixed64(mf_buf *b, uint64_t v) {
  char tmp[8];
  encode_fixed64(tmp, v);
  return mf_buf_append(b, tmp, 8);
}

int put_varint32(mf_buf *b, uint32_t v) { return put_varint64(b, v); }

int put_varint64(mf_buf *b, uint64_t v) {
  char tmp[MF_MAX_VARINT64_LEN];
  char *end = encode_varint64(tmp, v);
  return mf_buf_append(b, tmp, (size_t)(end - tmp));
}

int put_length_prefixed(mf_buf *b, mf_slice s) {
  if (s.len > UINT32_MAX) return MAYFLY_EINVAL;
  int rc = put_varint32(b, (uint32_t)s.len);
  return rc ? rc : mf_buf_append(b, s.data, s.len);
}

int get_fixed32(mf_slice *in, uint32_t *v) {
  if (in->len < 4) return 0;
  *v = decode_fixed32(in->data);
  in->data += 4;
  in->len -= 4;
  return 1;
}

int get_fixed64(mf_slice *in, uint64_t *v) {
  if (in->len < 8) return 0;
  *v = decode_fixed64(in->data);
  in->data += 8;
  in->len -= 8;
  return 1;
}

const char *decode_varint64_multibyte(const char *p, const char *limit, uint64_t *v) {
  uint64_t result = 0;
  for (int shift = 0; shift <= 63 && p < limit; shift += 7) {
    uint64_t byte = *(const unsigned char *)p++;
    if (shift == 63 && byte > 1) return NULL; /* would overflow 64 bits */
    result |= (byte & 0x7f) << shift;
    if (!(byte & 0x80)) {
      *v = result;
      return p;
    }
  }
  return NULL;
}

const char *decode_varint32_multibyte(const char *p, const char *limit, uint32_t *v) {
  uint64_t wide;
  const char *q = decode_varint64_multibyte(p, limit, &wide);
  if (!q || wide > UINT32_MAX || q - p > MF_MAX_VARINT32_LEN) return NULL;
  *v = (uint32_t)wide;
  return q;
}

int get_varint32(mf_slice *in, uint32_t *v) {
  if (in->len == 0) return 0; /* also keeps NULL + 0 out of the arithmetic below */
  const char *q = decode_varint32(in->data, in->data + in->len, v);
  if (!q) return 0;
  in->len -= (size_t)(q - in->data);
  in->data = q;
  return 1;
}

int get_varint64(mf_slice *in, uint64_t *v) {
  if (in->len == 0) return 0;
  const char *q = decode_varint64(in->data, in->data + in->len, v);
  if (!q) return 0;
  in->len -= (size_t)(q - in->data);
  in->data = q;
  return 1;
}

int get_length_prefixed(mf_slice *in, mf_slice *out) {
  uint32_t n;
  if (!get_varint32(in, &n) || in->len < n) return 0;
  *out = mf_slice_make(in->data, n);
  in->data += n;
  in->len -= n;
  return 1;
}
