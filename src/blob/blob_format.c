/* Encoders and decoders of the fixed parts of a blob file and of the blob index. The byte
 * layout is in blob_format.h and docs/format/blob.md. */
#include "blob/blob_format.h"

#include "db/options.h"
#include "mayfly.h"
#include "util/checksum.h"
#include "util/coding.h"
#include "util/error.h"

static int compression_known(uint64_t c) {
  return c == MF_COMPRESSION_NONE || c == MF_COMPRESSION_LZ4 || c == MF_COMPRESSION_ZSTD;
}

int blob_index_encode(const blob_index *bi, mf_buf *out) {
  if (bi->compression < 0 || !compression_known((uint64_t)bi->compression))
    return MF_ERR(MAYFLY_EINVAL, "blob index of file %06llu: unknown compression %d",
                  (unsigned long long)bi->file_number, bi->compression);
  char buf[3 * MF_MAX_VARINT64_LEN + 1];
  char *p = encode_varint64(buf, bi->file_number);
  p = encode_varint64(p, bi->offset);
  p = encode_varint64(p, bi->size);
  *p++ = (char)bi->compression;
  return mf_buf_append(out, buf, (size_t)(p - buf));
}

int blob_index_decode(mf_slice in, blob_index *out) {
  /* Every compaction entry that points to a blob is decoded here, so the varints go through
   * the inline pointer-range decoders (one load and a branch for a one-byte varint). */
  const char *p = in.data, *limit = in.data + in.len;
  uint64_t file_number, offset, size;
  if (in.len == 0 || !(p = decode_varint64(p, limit, &file_number)) ||
      !(p = decode_varint64(p, limit, &offset)) || !(p = decode_varint64(p, limit, &size)) ||
      limit - p != 1)
    return MF_ERR(MAYFLY_ECORRUPT, "malformed blob index (%zu bytes)", in.len);
  uint8_t c = (uint8_t)*p;
  if (file_number == 0) /* file numbers start at 1 */
    return MF_ERR(MAYFLY_ECORRUPT, "blob index into file 000000, which cannot exist");
  /* A stored value is at most a value plus its compression's overhead: a larger size is
   * damage, refused before garbage accounting adds it up. */
  if (size > 2 * (uint64_t)MAYFLY_MAX_VALUE_SIZE)
    return MF_ERR(MAYFLY_ECORRUPT, "blob index into file %06llu: stored size %llu is too large",
                  (unsigned long long)file_number, (unsigned long long)size);
  if (!compression_known(c))
    return MF_ERR(MAYFLY_ECORRUPT, "blob index into file %06llu has unknown compression %u",
                  (unsigned long long)file_number, c);
  out->file_number = file_number;
  out->offset = offset;
  out->size = size;
  out->compression = c;
  return MAYFLY_OK;
}

void blob_header_encode(const blob_header *h, char *dst) {
  encode_fixed64(dst, BLOB_HEADER_MAGIC);
  encode_fixed32(dst + 8, h->version);
  dst[12] = (char)h->compression;
  dst[13] = dst[14] = dst[15] = 0;
  encode_fixed64(dst + 16, h->file_number);
  encode_fixed32(dst + 24, mf_checksum(dst, 24));
}

int blob_header_decode(const char *src, const char *fname, blob_header *h) {
  if (decode_fixed64(src) != BLOB_HEADER_MAGIC)
    return MF_ERR(MAYFLY_ECORRUPT, "%s: bad blob file magic at offset 0", fname);
  if (decode_fixed32(src + 24) != mf_checksum(src, 24))
    return MF_ERR(MAYFLY_ECORRUPT, "%s: blob file header checksum mismatch at offset 0", fname);
  h->version = decode_fixed32(src + 8);
  if (h->version != BLOB_FORMAT_VERSION)
    return MF_ERR(MAYFLY_ECORRUPT, "%s: unknown blob file version %u at offset 8", fname,
                  h->version);
  uint8_t c = (uint8_t)src[12];
  if (!compression_known(c))
    return MF_ERR(MAYFLY_ECORRUPT, "%s: unknown blob file compression %u at offset 12", fname, c);
  if (src[13] || src[14] || src[15])
    return MF_ERR(MAYFLY_ECORRUPT, "%s: nonzero reserved bytes at offset 13", fname);
  h->compression = c;
  h->file_number = decode_fixed64(src + 16);
  return MAYFLY_OK;
}

void blob_footer_encode(const blob_footer *f, char *dst) {
  encode_fixed64(dst, f->record_count);
  encode_fixed64(dst + 8, f->record_bytes);
  encode_fixed32(dst + 16, mf_checksum(dst, 16));
  encode_fixed64(dst + 20, BLOB_FOOTER_MAGIC);
}

int blob_footer_decode(const char *src, const char *fname, uint64_t offset, blob_footer *f) {
  if (decode_fixed64(src + 20) != BLOB_FOOTER_MAGIC)
    return MF_ERR(MAYFLY_ECORRUPT, "%s: bad blob footer magic at offset %llu (unfinished file?)",
                  fname, (unsigned long long)(offset + 20));
  if (decode_fixed32(src + 16) != mf_checksum(src, 16))
    return MF_ERR(MAYFLY_ECORRUPT, "%s: blob footer checksum mismatch at offset %llu", fname,
                  (unsigned long long)offset);
  f->record_count = decode_fixed64(src);
  f->record_bytes = decode_fixed64(src + 8);
  return MAYFLY_OK;
}

uint32_t blob_record_header_checksum(const char *src, int c) {
  return mf_checksum_seeded((uint64_t)c, src, 12);
}

void blob_record_header_encode(char *dst, uint32_t key_len, uint32_t value_len, int c,
                               const char *payload, size_t len) {
  encode_fixed32(dst, key_len);
  encode_fixed32(dst + 4, value_len);
  encode_fixed32(dst + 8, mf_checksum(payload, len));
  encode_fixed32(dst + 12, blob_record_header_checksum(dst, c));
}
