/* Block handles, the footer and checked block reads; layout in table/format.h and table.h. */
#include "table/format.h"

#include <stdlib.h>

#include "db/options.h"
#include "mayfly.h"
#include "util/checksum.h"
#include "util/coding.h"
#include "util/compress.h"
#include "util/error.h"

int block_handle_encode(const block_handle *h, mf_buf *out) {
  int rc = put_varint64(out, h->offset);
  return rc ? rc : put_varint64(out, h->size);
}

int block_handle_decode(mf_slice *in, block_handle *h) {
  return get_varint64(in, &h->offset) && get_varint64(in, &h->size);
}

void table_footer_encode(const table_footer *f, char *dst) {
  encode_fixed64(dst + 0, f->filter.offset);
  encode_fixed64(dst + 8, f->filter.size);
  encode_fixed64(dst + 16, f->index.offset);
  encode_fixed64(dst + 24, f->index.size);
  encode_fixed32(dst + 32, f->version);
  encode_fixed32(dst + 36, mf_checksum(dst, 36));
  encode_fixed64(dst + 40, TABLE_MAGIC);
}

int table_footer_decode(const char *src, const char *fname, table_footer *f) {
  /* Magic first: a file that is not a table (or was cut short) should say so, not report a
   * checksum mismatch. */
  if (decode_fixed64(src + 40) != TABLE_MAGIC)
    return MF_ERR(MAYFLY_ECORRUPT, "%s: bad table magic in footer (not a table, or truncated)",
                  fname);
  uint32_t stored = decode_fixed32(src + 36), actual = mf_checksum(src, 36);
  if (stored != actual)
    return MF_ERR(MAYFLY_ECORRUPT, "%s: footer checksum mismatch (stored %08x, computed %08x)",
                  fname, stored, actual);
  f->filter.offset = decode_fixed64(src + 0);
  f->filter.size = decode_fixed64(src + 8);
  f->index.offset = decode_fixed64(src + 16);
  f->index.size = decode_fixed64(src + 24);
  f->version = decode_fixed32(src + 32);
  if (f->version != TABLE_FORMAT_VERSION)
    return MF_ERR(MAYFLY_ECORRUPT, "%s: unsupported table format version %u", fname,
                  f->version);
  return MAYFLY_OK;
}

/* Verifies the checksum of a block's stored bytes (raw: size bytes, then the trailer) and, for
 * a compressed block, decompresses them into *plain (left empty for an uncompressed block, whose
 * contents are the stored bytes themselves). */
static int check_and_decompress(const char *raw, const char *fname, uint64_t offset,
                                uint64_t size, mf_buf *plain) {
  unsigned type = (unsigned char)raw[size];
  uint32_t stored = decode_fixed32(raw + size + 1);
  uint32_t actual = mf_checksum_seeded(type, raw, (size_t)size);
  if (stored != actual)
    return MF_ERR(MAYFLY_ECORRUPT,
                  "%s: block checksum mismatch at offset %llu size %llu (stored %08x, computed "
                  "%08x)", fname, (unsigned long long)offset, (unsigned long long)size, stored,
                  actual);
  if (type == MF_COMPRESSION_NONE) return MAYFLY_OK;
  int rc = decompress_block((int)type, mf_slice_make(raw, (size_t)size), MF_MAX_DATA_BLOCK_LEN,
                            plain);
  if (rc) {
    mf_buf_free(plain);
    if (rc == MAYFLY_ECORRUPT) /* restate with the file and offset */
      rc = MF_ERR(MAYFLY_ECORRUPT, "%s: block at offset %llu (compression type %u) does not "
                  "decompress", fname, (unsigned long long)offset, type);
    return rc;
  }
  if (!plain->data) { /* a block that decompressed to nothing still needs a real pointer */
    plain->data = malloc(1);
    if (!plain->data) return MF_ERR(MAYFLY_ENOMEM, "%s: no memory", fname);
  }
  return MAYFLY_OK;
}

/* Every writer keeps blocks far below 4 GiB (the compression prefix is a varint32); a larger
 * size can only come from a damaged handle and must not drive an allocation. */
static int check_size(const char *fname, uint64_t offset, uint64_t size) {
  if (size > UINT32_MAX)
    return MF_ERR(MAYFLY_ECORRUPT, "%s: block at offset %llu claims impossible size %llu", fname,
                  (unsigned long long)offset, (unsigned long long)size);
  return MAYFLY_OK;
}

int table_read_block(mf_env *env, mf_rfile *file, const char *fname, uint64_t offset,
                     uint64_t size, char **out, size_t *out_len) {
  *out = NULL;
  *out_len = 0;
  int rc = check_size(fname, offset, size);
  if (rc) return rc;
  size_t n = (size_t)size + BLOCK_TRAILER_SIZE, got = 0;
  char *raw = malloc(n);
  if (!raw) return MF_ERR(MAYFLY_ENOMEM, "%s: no memory for a %zu-byte block", fname, n);
  rc = env->pread(file, offset, n, raw, &got);
  if (!rc && got != n)
    rc = MF_ERR(MAYFLY_ECORRUPT, "%s: block at offset %llu truncated (%zu of %zu bytes)", fname,
                (unsigned long long)offset, got, n);
  mf_buf plain = MF_BUF_INIT;
  if (!rc) rc = check_and_decompress(raw, fname, offset, size, &plain);
  if (rc) {
    free(raw);
    return rc;
  }
  if (plain.data) { /* compressed: hand over the decompressed copy */
    free(raw);
    *out = plain.data;
    *out_len = plain.len;
  } else { /* hand the read buffer over as is; the trailer bytes at its end are unused */
    *out = raw;
    *out_len = (size_t)size;
  }
  return MAYFLY_OK;
}

/* Asks for every cache line of [p, p + n) at once. A block read through a mapping is usually
 * not in any CPU cache (it was never copied), and its checksum reads all of it: with the loads
 * issued up front the misses overlap, instead of each waiting its turn behind the hash. */
static void prefetch_range(const char *p, size_t n) {
#if defined(__GNUC__)
  for (size_t at = 0; at < n; at += 64) __builtin_prefetch(p + at);
#else
  (void)p;
  (void)n;
#endif
}

int table_map_block(const char *image, uint64_t file_size, const char *fname, uint64_t offset,
                    uint64_t size, mf_slice *contents, char **owned) {
  *contents = mf_slice_make("", 0);
  *owned = NULL;
  int rc = check_size(fname, offset, size);
  if (rc) return rc;
  if (offset > file_size || size + BLOCK_TRAILER_SIZE > file_size - offset)
    return MF_ERR(MAYFLY_ECORRUPT, "%s: block at offset %llu truncated (%llu bytes claimed, "
                  "file size %llu)", fname, (unsigned long long)offset,
                  (unsigned long long)size + BLOCK_TRAILER_SIZE, (unsigned long long)file_size);
  const char *raw = image + offset;
  prefetch_range(raw, (size_t)size + BLOCK_TRAILER_SIZE);
  mf_buf plain = MF_BUF_INIT;
  if ((rc = check_and_decompress(raw, fname, offset, size, &plain))) return rc;
  if (plain.data) {
    *owned = plain.data;
    *contents = mf_slice_make(plain.data, plain.len);
  } else {
    *contents = mf_slice_make(raw, (size_t)size);
  }
  return MAYFLY_OK;
}
