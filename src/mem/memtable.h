/* Memtable: the in-memory, sorted buffer of recent writes, keyed by internal key.
 *
 * Each add stores one version (user key, seq, type, value); nothing is ever overwritten or
 * removed, so a memtable holds every version written to it until it is flushed and freed.
 * Entries live in the memtable's arenas, encoded as (in memory only, never on disk):
 *
 *   entry := varint32 ikey_len || ikey (user key || fixed64 (seq << 8 | type))
 *            || varint32 value_len || value           when value_len < 256
 *            || varint32 value_len || value's address when value_len >= 256 (the value
 *               is in a second arena, so that a search's steps stay close together)
 *
 * ordered by ikey_compare (util/ikey.h): user key ascending, then newest first.
 *
 * Lifetime: reference counted. memtable_create returns one reference; whoever holds a pointer
 * (the db's active/immutable slots, readers, iterators) holds a reference and drops it with
 * memtable_unref; the last unref frees the arenas and every entry.
 *
 * Threads: memtable_add needs external synchronization (one writer at a time: the db's write
 * path). memtable_get, iterators and the counters run concurrently with that writer and each
 * other without locks (see mem/skiplist.h). ref/unref are atomic. */
#ifndef MAYFLY_MEM_MEMTABLE_H
#define MAYFLY_MEM_MEMTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "mem/skiplist.h"
#include "table/iterator.h"
#include "util/ikey.h"
#include "util/slice.h"

typedef struct memtable memtable;

/* Creates an empty memtable with one reference (the caller's), whose arenas allocate blocks
 * of arena_block_size bytes (see util/arena.h; 0: the arena's default). filter_bytes > 0
 * gives it a bloom filter over the user keys of about that many bytes (rounded down to
 * 64-byte blocks; under 64 bytes: none), which lets memtable_get answer for most absent keys
 * without a skiplist search; the filter counts in memtable_memory_usage, not in
 * memtable_data_usage.
 * Returns MAYFLY_OK or MAYFLY_ENOMEM. */
int memtable_create(size_t arena_block_size, size_t filter_bytes, memtable **out);
void memtable_ref(memtable *m);
/* Drops a reference; the last one frees the memtable (every slice into it dies).
 * Thread-safe. NULL is a no-op. */
void memtable_unref(memtable *m);

/* Adds one version. user_key and value are copied. seq <= MF_MAX_SEQ; type is MF_TYPE_VALUE,
 * MF_TYPE_DELETE (value ignored, stored empty) or MF_TYPE_BLOB_INDEX.
 * REQUIRES: external writer lock; (user_key, seq, type) not already present.
 * Returns MAYFLY_OK, MAYFLY_EINVAL (bad type/seq, key or value longer than 4 GiB, duplicate)
 * or MAYFLY_ENOMEM; on error the memtable holds the same entries as before (the bytes it
 * had already copied stay allocated, so memtable_data_usage may have grown). */
int memtable_add(memtable *m, uint64_t seq, int type, mf_slice user_key, mf_slice value);

/* memtable_add in two steps, so that everything a batch needs is allocated before any of it
 * is visible or logged: memtable_prepare validates the version and copies it into the
 * memtable's memory (with the same errors as memtable_add) but does not insert it;
 * memtable_commit inserts it and allocates nothing. Prepared versions are committed in any
 * order, each at most once; one never committed is wasted memory. A prepared version stays
 * valid as long as the memtable. REQUIRES: external writer lock, as memtable_add. */
typedef struct memtable_prepared {
  skiplist_prepared node;
  const char *key; /* the user key inside the entry */
  size_t key_len;
  int type;
} memtable_prepared;
int memtable_prepare(memtable *m, uint64_t seq, int type, mf_slice user_key, mf_slice value,
                     memtable_prepared *out);
/* Returns MAYFLY_OK, or MAYFLY_EINVAL when (user_key, seq, type) is already present. */
int memtable_commit(memtable *m, const memtable_prepared *p);

/* Finds the newest version of user_key with seq <= snapshot_seq (values above MF_MAX_SEQ
 * mean "latest"). On MAYFLY_OK fills *type and *found_seq, and for MF_TYPE_VALUE and
 * MF_TYPE_BLOB_INDEX copies the value into *value with mf_buf_set (caller owns the buffer;
 * untouched for a delete). Returns MAYFLY_ENOTFOUND when there is no such version, or
 * MAYFLY_ENOMEM. Safe concurrently with one writer. */
int memtable_get(memtable *m, mf_slice user_key, uint64_t snapshot_seq, int *type,
                 uint64_t *found_seq, mf_buf *value);

/* Iterator over the entries: key() is the internal key, value() the value; seek() takes an
 * internal key (REQUIRES: at least 8 bytes). The iterator holds its own reference to m
 * (dropped by iter_destroy), so the caller may unref m while the iterator lives. Sees every
 * entry added before creation and possibly some added after. Caller owns the result
 * (iter_destroy). NULL on ENOMEM. */
mf_iter *memtable_iter_create(memtable *m);

/* Memory held: the arenas' blocks and the filter. Thread-safe. */
size_t memtable_memory_usage(const memtable *m);
/* Bytes of data (entries, values, skiplist links), as handed out by the arenas: what
 * write_buffer_size bounds. Neither the unused tails of arena blocks nor the filter count:
 * the tails depend on how value sizes fit the block size (1 KiB values in 5 KiB blocks would
 * waste a fifth), and the filter is sized from write_buffer_size up front and does not grow,
 * so counting either would make a memtable hold less data than the option says. The memory
 * held is this, plus the filter, plus the unused tail of each full shared block (under an
 * eighth of the block, so under a seventh of the data in it), plus a 16-byte header per
 * block, plus the partly used current block of each arena. Thread-safe. */
size_t memtable_data_usage(const memtable *m);
/* Entries added, and how many of them were deletes. Thread-safe. */
uint64_t memtable_num_entries(const memtable *m);
uint64_t memtable_num_deletes(const memtable *m);

#endif
