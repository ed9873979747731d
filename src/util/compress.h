/* Block compression: one place that knows lz4 and zstd.
 *
 * The compressed form written by compress_block (and read by decompress_block) is
 *
 *   compressed := uncompressed_len (varint32) || payload
 *
 * where payload is a raw LZ4 block (LZ4_compress_default; no frame) for MF_COMPRESSION_LZ4,
 * or one zstd frame (ZSTD_compress, which records the content size) for MF_COMPRESSION_ZSTD.
 * For MF_COMPRESSION_NONE the form is the input itself, with no prefix. The prefix lets the
 * reader allocate the output once and check that the payload decodes to exactly that many
 * bytes. docs/format/sst.md documents this as part of the table format. */
#ifndef MAYFLY_UTIL_COMPRESS_H
#define MAYFLY_UTIL_COMPRESS_H

#include "util/slice.h"

/* Appends the compressed form of in to out (out keeps its previous contents). type is an
 * enum mf_compression; level is passed to zstd (0 = zstd's default) and ignored otherwise.
 * in.len must be < 4 GiB. Returns MAYFLY_OK, MAYFLY_EINVAL (unknown type, input too large),
 * MAYFLY_ENOMEM, or MAYFLY_EIO if the library reports a failure. On error out->len is
 * restored to its value on entry. */
int compress_block(int type, int level, mf_slice in, mf_buf *out);

/* Appends the decompressed contents of in (the compressed form above) to out. The size comes
 * from the varint prefix and is checked against what the payload decodes to; a size above
 * max_len (the largest the caller's format can hold: a value for a blob, a data block for a
 * table) is damage. Malformed input of any kind gives MAYFLY_ECORRUPT (never a crash or an
 * over-read); an unknown type also gives MAYFLY_ECORRUPT, since the type byte came from disk.
 * On error out->len is restored. */
int decompress_block(int type, mf_slice in, size_t max_len, mf_buf *out);

#endif
