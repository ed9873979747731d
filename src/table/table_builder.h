/* Writes one table file (format: table/table.h, docs/format/sst.md) from internal keys added
 * in increasing ikey_compare order.
 *
 * Data blocks are cut when their estimated size reaches block_size; each one is compressed if
 * that saves at least 12.5%, and written with its trailer. The index entry for a block is
 * added only when the next key is known, so the separator can be a short key between the two
 * blocks. The bloom filter keeps one 64-bit hash per distinct user key until finish. */
#ifndef MAYFLY_TABLE_TABLE_BUILDER_H
#define MAYFLY_TABLE_TABLE_BUILDER_H

#include <stdint.h>

#include "env/env.h"
#include "util/slice.h"

typedef struct table_options {
  uint64_t block_size;        /* target uncompressed data block size in bytes */
  int block_restart_interval; /* data blocks; the index always uses 1 */
  int bloom_bits_per_key;     /* 0: no filter */
  int compression;            /* enum mf_compression for data blocks */
  int compression_level;      /* zstd level (0 = default) */
} table_options;

typedef struct table_builder table_builder;

/* Starts a table on file, which the builder does not own (the caller closes it after finish
 * or destroy). fname is copied, for error messages. On success *out is owned by the caller
 * (free with table_builder_destroy). Returns MAYFLY_OK, MAYFLY_EINVAL (bad options) or
 * MAYFLY_ENOMEM. */
int table_builder_create(const table_options *o, mf_env *env, mf_wfile *file, const char *fname,
                         table_builder **out);
/* REQUIRES: ikey (at least 8 bytes) > every previous key by ikey_compare; not finished.
 * Errors are sticky: after a failure every later call returns it. */
int table_builder_add(table_builder *b, mf_slice ikey, mf_slice value);
/* Flushes the last data block, writes the filter, index and footer. Does not sync or close
 * the file. */
int table_builder_finish(table_builder *b);
/* Bytes written so far; after finish, the final file size. */
uint64_t table_builder_file_size(const table_builder *b);
uint64_t table_builder_num_entries(const table_builder *b);
/* Frees the builder (whether or not finish was called or succeeded). NULL is a no-op. */
void table_builder_destroy(table_builder *b);

#endif
