/* The blob cache: open blob files by file number, and optionally recently read blob values.
 *
 * Like the table cache (cache/table_cache.h), open readers live in an mf_cache keyed by the
 * fixed64 (little-endian) file number, charged 1 each and bounded by max_open_files; the
 * entry's deleter closes the reader, so a reader evicted while a get uses it closes when
 * that get finishes. Failed opens are not cached.
 *
 * The optional value cache (shared, e.g. the block cache) holds decompressed values keyed by
 * fixed64 cache id || fixed64 file number || fixed64 value offset, where the cache id is
 * drawn once per blob_cache with cache_new_id so two databases sharing one cache never
 * collide. Each entry holds the value and the user key it was read for (a hit must match the
 * key and the index's size and compression, else the get goes to the file), and is charged
 * key size + value size (at least 1, so empty values are bounded too).
 * Blob files are immutable and file numbers never reused, so a cached value is never stale;
 * blob_cache_evict leaves a deleted file's values to age out of the LRU.
 *
 * Blob indexes come from tables and memtables that the MANIFEST says are live, and a live
 * index keeps its blob file alive; so a missing blob file is corruption of the database
 * (MAYFLY_ECORRUPT), never "not found".
 *
 * Thread safety: every function except create/destroy may be called concurrently. */
#ifndef MAYFLY_BLOB_BLOB_CACHE_H
#define MAYFLY_BLOB_BLOB_CACHE_H

#include <stdint.h>

#include "blob/blob_format.h"
#include "cache/cache.h"
#include "env/env.h"
#include "util/slice.h"

typedef struct blob_cache blob_cache;

/* Creates a blob cache for the blob files of database directory dbname (copied), named by
 * filename_blob, opened through env. max_open_files >= 0 bounds the readers kept open once
 * unpinned. value_cache may be NULL (no value caching); not owned, it must outlive the blob
 * cache. *out is owned by the caller (blob_cache_destroy). Returns MAYFLY_OK, MAYFLY_EINVAL or
 * MAYFLY_ENOMEM. */
int blob_cache_create(mf_env *env, const char *dbname, int max_open_files, mf_cache *value_cache,
                      blob_cache **out);

/* Closes every cached reader and frees bc. NULL is a no-op. REQUIRES: no get in progress. */
void blob_cache_destroy(blob_cache *bc);

/* Sets *value (mf_buf_set semantics; the caller owns value) to the value bi points to for
 * user_key: from the value cache, or read and checked through the file's reader (then
 * inserted into the value cache when fill_cache is set; garbage collection reads each live
 * blob once to move it, and caching those would only evict what readers use). file_size is
 * the blob file's size, or 0 to ask the env.
 * Errors name the file: MAYFLY_ECORRUPT (bad record or index, or the file is missing:
 * "blob file NNNNNN.blob referenced but missing"), MAYFLY_EIO, MAYFLY_ENOMEM. */
int blob_cache_get(blob_cache *bc, mf_slice user_key, const blob_index *bi, uint64_t file_size,
                   int fill_cache, mf_buf *value);

/* Readers pinned across many reads by one thread: a compaction that relocates blobs reads
 * from a handful of files in turn, and looking each reader up in the shared cache per blob
 * would cost a lock round trip per value. Zero-initialize; release with blob_cache_unpin. */
#define BLOB_CACHE_PINS 8
typedef struct blob_cache_pins {
  uint64_t number[BLOB_CACHE_PINS]; /* 0: slot empty (file numbers start at 1) */
  mf_cache_handle *handle[BLOB_CACHE_PINS];
} blob_cache_pins;

/* For relocation: sets *record to the whole stored record bi points to (blob_reader_get_record:
 * both checksums, key and size checked; the value still compressed if it was), reading
 * through a reader pinned in pins (opened or found in the cache on first use; a slot's
 * previous reader is unpinned). The value cache is not consulted. *record stays valid until
 * the next call with the same pins or scratch, or blob_cache_unpin. Errors as blob_cache_get. */
int blob_cache_get_record(blob_cache *bc, blob_cache_pins *pins, mf_slice user_key,
                          const blob_index *bi, uint64_t file_size, mf_buf *scratch,
                          mf_slice *record);

/* Releases every reader pinned in pins and empties it. */
void blob_cache_unpin(blob_cache *bc, blob_cache_pins *pins);

/* Drops file_number's reader (call when the file is deleted). It closes now, or when the last
 * get using it finishes. */
void blob_cache_evict(blob_cache *bc, uint64_t file_number);

#endif
