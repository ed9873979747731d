/* A thread-safe, sharded, reference-counted LRU cache with charge-based capacity.
 *
 * The block cache (decompressed table blocks, charged in bytes) and the table cache (open
 * tables, charged 1 each) are both instances of it. Keys are byte strings copied into the
 * cache; values are opaque pointers the cache owns from a successful insert on, and hands to
 * the entry's deleter exactly once, when the entry is both out of the cache (evicted, erased,
 * replaced, or the cache destroyed) and unpinned.
 *
 * A handle pins its entry: while any handle is held the value stays alive, whatever happens
 * to the cache. Capacity bounds the total charge of the entries the cache holds; unpinned
 * entries are evicted in least-recently-used order to respect it, and pinned ones are never
 * freed (so the total can exceed capacity while callers pin more than fits).
 *
 * Sharding: the key's mf_hash64 picks one of up to 16 shards, each with its own mutex, LRU
 * list and capacity, so concurrent readers of different blocks rarely contend. Each shard
 * gets an equal part of the capacity (the parts sum to exactly capacity), and a cache whose
 * capacity is under 16 * 8 units uses fewer shards (a power of two, down to one) so that
 * every shard can hold at least 8 units: a table cache with max_open_files = 20 should not
 * be split into 16 shards that each keep one table. A one-shard cache is an exact LRU.
 *
 * Thread safety: every function may be called concurrently, except cache_destroy. */
#ifndef MAYFLY_CACHE_CACHE_H
#define MAYFLY_CACHE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "util/slice.h"

typedef struct mf_cache mf_cache;
typedef struct mf_cache_handle mf_cache_handle;

/* Creates a cache holding up to capacity units of charge. capacity 0 means nothing stays
 * cached once released (inserts still return usable pinned handles). On success *out is
 * owned by the caller (free with cache_destroy). Returns MAYFLY_OK or MAYFLY_ENOMEM. */
int cache_create(size_t capacity, mf_cache **out);

/* Calls the deleter of every remaining entry and frees the cache. NULL is a no-op.
 * REQUIRES: no handle is pinned. */
void cache_destroy(mf_cache *c);

/* Inserts key -> value, replacing any entry with the same key (the old value is deleted when
 * its last pin is released). The key is copied. On success the cache owns value and returns
 * a handle that pins it; release it with cache_release. Returns NULL when out of memory: the
 * value is then NOT inserted and the caller still owns it. The deleter receives a key slice
 * valid only during the call. Inserting may evict unpinned entries (their deleters run
 * before cache_insert returns, outside the shard lock). */
mf_cache_handle *cache_insert(mf_cache *c, mf_slice key, void *value, size_t charge,
                              void (*deleter)(mf_slice key, void *value));

/* Returns a pinned handle to key's entry (release with cache_release) or NULL on a miss.
 * A hit makes the entry the most recently used. */
mf_cache_handle *cache_lookup(mf_cache *c, mf_slice key);

/* Unpins h (h is invalid afterwards). If that was the last pin of an entry no longer in the
 * cache, or the cache is over capacity, the deleter runs before this returns. */
void cache_release(mf_cache *c, mf_cache_handle *h);

/* The value h pins; valid while h is held. */
void *cache_value(const mf_cache_handle *h);

/* Removes key's entry from the cache (no-op if absent). Its value is deleted now, or when its
 * last pin is released. */
void cache_erase(mf_cache *c, mf_slice key);

/* A new id, never 0 and never returned twice by this cache: tables prefix their block-cache
 * keys with it so two tables (or two openings of one file) never share a key. */
uint64_t cache_new_id(mf_cache *c);

/* Total charge of the entries currently in the cache, pinned or not. Entries already
 * evicted or erased but still pinned are not counted. */
size_t cache_total_charge(mf_cache *c);

#endif
