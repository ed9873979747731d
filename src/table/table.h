/* Sorted string tables: immutable files of internal keys and values.
 *
 * File format (version 1), all integers little-endian; also in docs/format/sst.md, which
 * this comment and that file mirror:
 *
 *   table        := data_block* filter_block? index_block footer
 *   data_block   := block_contents trailer          (compressed or not, see below)
 *   filter_block := filter trailer                  (only when bloom_bits_per_key > 0)
 *   index_block  := block_contents trailer          (restart interval 1)
 *   trailer      := type (1 byte: 0 none, 1 lz4, 2 zstd; enum mf_compression)
 *                   checksum (fixed32) = mf_checksum_seeded(type, stored bytes, stored len)
 *
 *   stored bytes := block_contents                  when type = 0
 *                 | uncompressed_len (varint32) payload   when type = 1 (raw LZ4 block)
 *                                                         or 2 (one zstd frame)
 *   A writer compresses a data block only if that saves at least 1/8 of its size; the
 *   filter and index blocks are written with type 0 (readers accept any type).
 *
 *   block_contents := entry* restart (fixed32)* num_restarts (fixed32)
 *   entry          := shared (varint32) non_shared (varint32) value_len (varint32)
 *                     key_delta (non_shared bytes) value (value_len bytes)
 *     key = previous key's first `shared` bytes || key_delta; every restart interval-th
 *     entry has shared = 0 and its offset in the block listed as a restart; restarts are
 *     strictly increasing, the first is 0; an empty block is num_restarts = 0 alone.
 *
 *   Data block entries: key = internal key (user key || fixed64 (seq << 8 | type)), value =
 *     the value bytes (or a blob index), in strictly increasing ikey_compare order.
 *   Index block entries: key = an internal key >= the last key of data block i and < the
 *     first key of block i+1 (a shortened separator or the last key itself), value = block
 *     handle of block i := offset (varint64) size (varint64), size excluding the trailer.
 *   filter := bloom filter bits, then k (1 byte); see table/bloom.h. It covers the user keys
 *     of every entry of the table.
 *
 *   footer (48 bytes, at file_size - 48):
 *     0  filter offset (fixed64)      8  filter size (fixed64; 0 = no filter)
 *     16 index offset (fixed64)       24 index size (fixed64)
 *     32 format version (fixed32) = 1
 *     36 checksum (fixed32) = mf_checksum(footer bytes 0..35)
 *     40 magic (fixed64) = 0x5453796c6679616d (the ASCII bytes "mayflyST")
 *
 * Reading: table_open maps the file when the env can (env->map_readable), reads the footer,
 * the index block (kept in memory for the table's life) and the filter (likewise), and checks
 * every index entry. Data blocks are read on demand: from a mapped file, a block stored
 * uncompressed is used in place (not copied, not cached: the page cache holds it); every
 * other block goes through the optional block cache. Every block read is checksum-verified,
 * mapped or not, so a flipped bit surfaces as MAYFLY_ECORRUPT, never as wrong data.
 *
 * Thread safety: after table_open returns, any number of threads may call table_get,
 * table_iter_create and table_approximate_offset concurrently (each iterator is used by one
 * thread at a time); table_close requires that nothing else uses the table. */
#ifndef MAYFLY_TABLE_TABLE_H
#define MAYFLY_TABLE_TABLE_H

#include <stdint.h>

#include "env/env.h"
#include "table/iterator.h"
#include "util/slice.h"

typedef struct table table;
struct mf_cache;

/* Opens a table: reads and checks the footer, the index and the filter. Takes ownership of
 * file on success AND on failure (closes it with env->close_readable). block_cache may be
 * NULL; cache_id (from cache_new_id) prefixes the table's block-cache keys (key = fixed64
 * cache_id || fixed64 block offset). fname is copied and used in error messages. On success
 * *out is owned by the caller (free with table_close). Errors: MAYFLY_ECORRUPT naming the file
 * (truncated, bad magic/checksum/version, malformed index or filter), MAYFLY_EIO, ENOMEM. */
int table_open(mf_env *env, mf_rfile *file, const char *fname, uint64_t file_size,
               struct mf_cache *block_cache, uint64_t cache_id, table **out);
/* Unmaps and closes the file and frees the table. Blocks it put in the cache stay there until evicted
 * (they own their memory). NULL is a no-op. REQUIRES: no iterator over t remains. */
void table_close(table *t);

/* Point lookup. If the filter says the user key of lookup_ikey is absent, returns MAYFLY_OK
 * without calling saver. Otherwise finds the first entry >= lookup_ikey and, if there is one,
 * calls saver(arg, found_ikey, found_value) once; both slices are valid only during the call
 * (the saver decides whether the user key matches). Returns MAYFLY_OK whether or not saver was
 * called, or an error (MAYFLY_ECORRUPT, MAYFLY_EIO, MAYFLY_ENOMEM). */
int table_get(table *t, mf_slice lookup_ikey,
              void (*saver)(void *arg, mf_slice ikey, mf_slice value), void *arg);

/* An iterator over the whole table in internal-key order. t must outlive it. Returns NULL
 * when out of memory. Read errors make it invalid with the error in status(). */
mf_iter *table_iter_create(table *t);

/* Approximate file offset where ikey's data begins (or would): the offset of the data block
 * that would hold it, or the end of the data blocks for keys past the last one. */
uint64_t table_approximate_offset(const table *t, mf_slice ikey);

/* The key comparator of table blocks: ikey_compare, but total and memory-safe on keys shorter
 * than 8 bytes (which only damaged data can contain; they compare bytewise). */
int table_key_compare(mf_slice a, mf_slice b);

#endif
