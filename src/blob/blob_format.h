/* Blob files: the on-disk format of key-value separation, and the blob index that points
 * into it. This header owns the format; docs/format/blob.md documents the same bytes (keep
 * the two in step). All integers are little-endian; every checksum is mf_checksum_seeded
 * (low 32 bits of XXH3-64, src/util/checksum.h), seed 0 unless stated.
 *
 *   blob_file  := header record* footer
 *
 *   header (BLOB_HEADER_SIZE = 28 bytes, at offset 0):
 *     0  magic       (fixed64) = BLOB_HEADER_MAGIC, the ASCII bytes "mayflyBL"
 *     8  version     (fixed32) = 1
 *     12 compression (1 byte)  enum mf_compression: 0 none, 1 lz4, 2 zstd
 *     13 reserved    (3 bytes) = 0
 *     16 file number (fixed64) = the NNNNNN of NNNNNN.blob
 *     24 checksum    (fixed32) = mf_checksum(header bytes 0..23)
 *
 *   record (BLOB_RECORD_HEADER_SIZE = 16 bytes of header, then the key and the value):
 *     0  key_len     (fixed32)
 *     4  value_len   (fixed32) = length of the stored value
 *     8  payload checksum (fixed32) = mf_checksum(key || stored value)
 *     12 header checksum  (fixed32) = mf_checksum_seeded(c, record bytes 0..11), where c is
 *                                     the record's compression (0, or the file's type)
 *     16 key         (key_len bytes)   the user key
 *     .. value       (value_len bytes) the stored value:
 *          c = 0:    the value itself
 *          c = 1, 2: compress_block's form: uncompressed_len (varint32) || lz4 block / zstd
 *                    frame (src/util/compress.h)
 *   A writer compresses with the file's type only when the stored form is at most 7/8 of
 *   the value's size; otherwise it stores the value raw (c = 0). Folding c into the header
 *   checksum's seed makes every record self-describing (a scan learns c by checking which
 *   of the two possible seeds matches) and makes a blob index that names the wrong
 *   compression fail the checksum instead of returning undecoded bytes.
 *
 *   footer (BLOB_FOOTER_SIZE = 28 bytes, the last bytes of the file):
 *     0  record count       (fixed64)
 *     8  total record bytes (fixed64) = sum of 16 + key_len + value_len over the records
 *     16 checksum           (fixed32) = mf_checksum(footer bytes 0..15)
 *     20 magic              (fixed64) = BLOB_FOOTER_MAGIC, the ASCII bytes "mayflyBE"
 *   Records tile the file: file size = 28 + total record bytes + 28 exactly.
 *
 *   blob index (the value of an MF_TYPE_BLOB_INDEX entry in a table or memtable):
 *     file number (varint64) || value offset (varint64) || stored value size (varint64)
 *     || compression (1 byte, the record's c)
 *   value offset is the file offset of the stored value's first byte, so the record starts
 *   at offset - key_len - 16 (the reader knows key_len: it is the looked-up user key's).
 *
 * A blob file is written once, front to back, synced, and only then referenced by a table
 * or the MANIFEST; so a reader treats a missing footer as corruption, not as a crash to
 * recover from. */
#ifndef MAYFLY_BLOB_BLOB_FORMAT_H
#define MAYFLY_BLOB_BLOB_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "util/slice.h"

#define BLOB_HEADER_SIZE 28
#define BLOB_RECORD_HEADER_SIZE 16
#define BLOB_FOOTER_SIZE 28
#define BLOB_FORMAT_VERSION 1
/* "mayflyBL" / "mayflyBE" read as little-endian fixed64s: a blob file starts and ends with
 * readable text, and the two differ so a header is never mistaken for a footer. */
#define BLOB_HEADER_MAGIC UINT64_C(0x4c42796c6679616d)
#define BLOB_FOOTER_MAGIC UINT64_C(0x4542796c6679616d)

typedef struct blob_index {
  uint64_t file_number;
  uint64_t offset; /* of the stored value's first byte */
  uint64_t size;   /* stored (possibly compressed) value size */
  int compression; /* enum mf_compression of this record */
} blob_index;

/* Appends the encoding of *bi to out (at most 3 * 10 + 1 bytes). Returns MAYFLY_OK,
 * MAYFLY_ENOMEM, or MAYFLY_EINVAL if bi->compression is not an mf_compression. */
int blob_index_encode(const blob_index *bi, mf_buf *out);
/* Decodes exactly the bytes of in. Returns MAYFLY_OK or MAYFLY_ECORRUPT (truncated, trailing
 * bytes, overlong varint, unknown compression). */
int blob_index_decode(mf_slice in, blob_index *out);

/* The bytes a record occupies: the unit of blob garbage accounting (total/garbage bytes). */
static inline uint64_t blob_record_bytes(size_t key_len, uint64_t stored_size) {
  return BLOB_RECORD_HEADER_SIZE + (uint64_t)key_len + stored_size;
}

/* ---- fixed-size parts, shared by the writer and the reader (one encoder per format) ---- */

typedef struct blob_header {
  uint32_t version;
  int compression;
  uint64_t file_number;
} blob_header;

typedef struct blob_footer {
  uint64_t record_count;
  uint64_t record_bytes;
} blob_footer;

/* Write exactly BLOB_HEADER_SIZE / BLOB_FOOTER_SIZE bytes at dst (fields as given). */
void blob_header_encode(const blob_header *h, char *dst);
void blob_footer_encode(const blob_footer *f, char *dst);
/* Parse and check magic, checksum, version, reserved bytes and compression type (header) or
 * magic and checksum (footer). fname and offset only go into error messages. Return
 * MAYFLY_OK or MAYFLY_ECORRUPT. */
int blob_header_decode(const char *src, const char *fname, blob_header *h);
int blob_footer_decode(const char *src, const char *fname, uint64_t offset, blob_footer *f);

/* Writes the 16-byte record header at dst for a record of compression c whose key and stored
 * value are the len bytes at payload (key immediately followed by the stored value). */
void blob_record_header_encode(char *dst, uint32_t key_len, uint32_t value_len, int c,
                               const char *payload, size_t len);
/* The header checksum a record header at src must carry for compression c. */
uint32_t blob_record_header_checksum(const char *src, int c);

#endif
