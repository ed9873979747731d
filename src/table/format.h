/* The physical pieces of a table file: block handles, the block trailer, the footer, and
 * reading one checked block back. The grammar of the whole file is in table/table.h's header
 * comment and in docs/format/sst.md; the constants below are the ones named there.
 *
 *   block handle := offset (varint64) || size (varint64)     -- inside index entries
 *   block trailer:= type (1 byte, enum mf_compression)
 *                   || checksum (fixed32) = mf_checksum_seeded(type, stored bytes, size)
 *   footer (48)  := filter handle (fixed64 offset, fixed64 size)
 *                   || index handle (fixed64 offset, fixed64 size)
 *                   || format version (fixed32) = 1
 *                   || checksum (fixed32) = mf_checksum(the preceding 36 bytes)
 *                   || magic (fixed64) = TABLE_MAGIC ("mayflyST" in ASCII on disk) */
#ifndef MAYFLY_TABLE_FORMAT_H
#define MAYFLY_TABLE_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "env/env.h"
#include "mayfly.h"
#include "util/slice.h"

#define BLOCK_TRAILER_SIZE 5
#define BLOCK_HANDLE_MAX_LEN (2 * 10) /* two varint64s */
#define TABLE_FOOTER_SIZE 48
#define TABLE_FORMAT_VERSION 1
/* The bytes 'm' 'a' 'y' 'f' 'l' 'y' 'S' 'T' read as a little-endian fixed64, so a table file
 * ends with the text "mayflyST". */
#define TABLE_MAGIC UINT64_C(0x5453796c6679616d)

/* The largest block_size (the option's upper bound). */
#define MF_MAX_BLOCK_SIZE ((size_t)4 << 20)
/* The largest plain length of a data block. The builder closes a block once its size
 * (entries, restart array and count) reaches block_size, so a block is under block_size
 * bytes before its last entry, and that entry adds at most three varint32 lengths, a key of
 * MAYFLY_MAX_KEY_SIZE bytes with its 8-byte trailer, a value of MAYFLY_MAX_VALUE_SIZE bytes
 * and one restart point. A compressed block that claims more is damage. */
#define MF_MAX_DATA_BLOCK_LEN                                                          \
  (MF_MAX_BLOCK_SIZE + 3 * 5 + (size_t)MAYFLY_MAX_KEY_SIZE + 8 +                       \
   (size_t)MAYFLY_MAX_VALUE_SIZE + 4)

/* size counts the stored bytes of the block, without its 5-byte trailer. */
typedef struct block_handle {
  uint64_t offset;
  uint64_t size;
} block_handle;

/* Appends the varint encoding. Returns MAYFLY_OK or MAYFLY_ENOMEM. */
int block_handle_encode(const block_handle *h, mf_buf *out);
/* Consumes a handle from the front of *in. Returns 1 on success, 0 if malformed (like get_*). */
int block_handle_decode(mf_slice *in, block_handle *h);

typedef struct table_footer {
  block_handle filter; /* size 0: the table has no filter */
  block_handle index;
  uint32_t version;
} table_footer;

/* Writes exactly TABLE_FOOTER_SIZE bytes at dst (version is written as given). */
void table_footer_encode(const table_footer *f, char *dst);
/* Parses the last TABLE_FOOTER_SIZE bytes of a file. fname is only used in error messages.
 * Returns MAYFLY_OK or MAYFLY_ECORRUPT (bad magic, bad checksum, unknown version). */
int table_footer_decode(const char *src, const char *fname, table_footer *f);

/* Reads the block at [offset, offset + size) plus its trailer, verifies the checksum and
 * decompresses. On success *out is malloc'd (the caller frees it) and holds the block
 * contents, *out_len bytes long; on error *out is NULL. Errors: MAYFLY_ECORRUPT (message: the
 * file name, the offset, and what was wrong), MAYFLY_EIO from the env, MAYFLY_ENOMEM. */
int table_read_block(mf_env *env, mf_rfile *file, const char *fname, uint64_t offset,
                     uint64_t size, char **out, size_t *out_len);

/* table_read_block for a file mapped in memory (file_size bytes at image, e.g. from
 * env->map_readable): the same checks, but nothing is copied for a block stored
 * uncompressed: *contents points into image (valid as long as the mapping) and *owned is
 * NULL. A compressed block is decompressed into malloc'd memory, returned in *contents and in
 * *owned (the caller frees *owned). A block that does not fit in the file is
 * MAYFLY_ECORRUPT; other errors as table_read_block's. */
int table_map_block(const char *image, uint64_t file_size, const char *fname, uint64_t offset,
                    uint64_t size, mf_slice *contents, char **owned);

#endif
