/* The table cache: open tables by file number, at most max_open_files of them kept open.
 *
 * Opening a table reads its footer, index and filter, so the read path must not do it on
 * every lookup; but every open table holds a file descriptor and its index in memory, so
 * their number is bounded. This is an mf_cache keyed by the fixed64 (little-endian) file
 * number, each table charged 1, whose deleter closes the table: a table leaves memory when it
 * is evicted (least recently used first) or evicted explicitly, and no user still pins it.
 * Lookups and iterators pin the table for as long as they use it, so a table evicted while an
 * iterator reads it closes when that iterator is destroyed.
 *
 * Each opened table gets its own block-cache id (cache_new_id), so the blocks of a reopened
 * table never collide with stale ones left by an earlier opening of another file.
 *
 * Failed opens are not cached: the next access retries (the error may be transient).
 * Thread safety: all functions except create/destroy may be called concurrently. Two threads
 * missing the same table at once may both open it; the later insert replaces the earlier,
 * which closes when its user releases it. */
#ifndef MAYFLY_CACHE_TABLE_CACHE_H
#define MAYFLY_CACHE_TABLE_CACHE_H

#include <stdint.h>

#include "cache/cache.h"
#include "env/env.h"
#include "table/iterator.h"
#include "util/slice.h"

typedef struct table_cache table_cache;
struct table;

/* Creates a table cache for the tables of database directory dbname (copied), opening files
 * through env and reading blocks through block_cache (may be NULL; not owned, must outlive
 * the table cache). max_open_files >= 0 bounds the tables kept open once unpinned (0: close
 * each table as soon as it is released). *out is owned by the caller (table_cache_destroy).
 * Returns MAYFLY_OK, MAYFLY_EINVAL or MAYFLY_ENOMEM. */
int table_cache_create(mf_env *env, const char *dbname, mf_cache *block_cache, int max_open_files,
                       table_cache **out);

/* Closes every cached table and frees tc. NULL is a no-op.
 * REQUIRES: no iterator from table_cache_iter is alive. */
void table_cache_destroy(table_cache *tc);

/* Opens (or finds) table file_number of size file_size and calls
 * table_get(table, lookup_ikey, saver, arg), returning its result. Errors from opening the
 * table (MAYFLY_ENOTFOUND or MAYFLY_EIO for a missing or unreadable file, MAYFLY_ECORRUPT for
 * a bad one, MAYFLY_ENOMEM) carry a message naming the file. */
int table_cache_get(table_cache *tc, uint64_t file_number, uint64_t file_size,
                    mf_slice lookup_ikey, void (*saver)(void *arg, mf_slice ikey, mf_slice value),
                    void *arg);

/* An iterator over table file_number that keeps the table pinned (open) until the iterator is
 * destroyed; the caller owns it (iter_destroy). If out_table is not NULL, *out_table is the
 * table (valid as long as the iterator), or NULL when opening failed. When the table cannot
 * be opened the result is iter_new_empty(rc) with the open error as its status. Returns NULL
 * only when out of memory. */
mf_iter *table_cache_iter(table_cache *tc, uint64_t file_number, uint64_t file_size,
                          struct table **out_table);

/* Drops table file_number from the cache (call when the file is deleted). The table closes
 * now, or when its last pinning lookup or iterator finishes. */
void table_cache_evict(table_cache *tc, uint64_t file_number);

#endif
