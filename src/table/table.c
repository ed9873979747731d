/* Table reader. Format and thread-safety rules in table/table.h.
 *
 * Two ways to read a block. When the env can map files (env_has_map) and agrees to map this
 * one, the whole file is mapped at open and blocks are read in place: a block stored
 * uncompressed is checksum-verified and then iterated right where it lies in the mapping,
 * with no copy, no allocation for its contents and no block-cache entry (the page cache
 * already holds those bytes; caching them again would only double the memory and pay the
 * cache's insert, evict and lock on every miss). Otherwise (no mapping support, or the env's
 * limit of mapped files is reached), and for compressed blocks in either case, blocks are
 * read (pread or from the mapping), verified, decompressed and kept in the block cache.
 *
 * Life of the pieces: the table owns its file, its mapping, its index block and its filter
 * for its whole life (index and filter point into the mapping when there is one). A data
 * block lives in one of three places: in the block cache (which owns it; an iterator pins it
 * with a cache handle and releases the handle in a cleanup); privately in the one iterator
 * that read it, which destroys it in a cleanup (no cache, or the insert failed for lack of
 * memory); or, read in place, in the mapping, which the table keeps until table_close. So a
 * block never outlives its mapping as long as the table outlives its iterators, which
 * table_close requires and the table cache guarantees (lookups and iterators pin the table).
 * Checksums of blocks read in place: a block's checksum is verified the first time a reader
 * uses it, and the table then remembers that the block at that offset passed (a small table of
 * verified offsets, one slot per data block, direct-mapped by a hash of the offset: a slot
 * holds offset + 1 of the last block verified there, so two blocks sharing a slot only cost
 * re-verification, never a skipped check). Later reads of the block trust the bytes, the same
 * guarantee as a block-cache hit: a bit flipped on disk after the first read, and then read
 * back into the page cache, is not seen until the table is reopened (mayfly check reads every
 * block afresh). check_index makes sure no two data blocks start at the same offset, so an
 * offset names one block.
 *
 * Apart from that table of verified offsets (atomic words, written with relaxed stores: a
 * reader that misses another's store just verifies again), nothing is mutated after
 * table_open, so concurrent readers need no lock here; the cache does its own locking. */
#include "table/table.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"
#include "db/options.h"
#include "mayfly.h"
#include "table/block.h"
#include "table/bloom.h"
#include "table/format.h"
#include "table/two_level_iter.h"
#include "util/coding.h"
#include "util/error.h"
#include "util/ikey.h"

struct table {
  mf_env *env;
  mf_rfile *file;
  char *fname;
  uint64_t file_size;
  const char *image; /* the whole file, mapped; NULL: blocks are read with pread */
  mf_map *mapping;   /* image's mapping (env->unmap), or NULL */
  mf_cache *cache;   /* may be NULL */
  uint64_t cache_id;
  block *index;
  const char *filter; /* NULL: no filter; else in image or in filter_buf */
  size_t filter_len;
  char *filter_buf; /* the filter when it was read with pread (owned), else NULL */
  uint64_t data_end; /* first byte after the data blocks */
  _Atomic uint64_t *verified; /* mapped tables: offset + 1 of verified blocks, or 0; or NULL */
  uint64_t verified_mask;     /* slots - 1 (a power of two) */
};

int table_key_compare(mf_slice a, mf_slice b) {
  if (a.len < 8 || b.len < 8) return mf_slice_compare(a, b);
  return ikey_compare(a, b);
}

/* A handle is usable if the block and its trailer end at or before limit. */
static int handle_within(const block_handle *h, uint64_t limit) {
  return h->offset <= limit && h->size <= limit - h->offset &&
         BLOCK_TRAILER_SIZE <= limit - h->offset - h->size;
}

/* Every index entry: an internal key, keys increasing, a handle of a block inside the data
 * area, each block after the one before (never overlapping). Checked once at open so lookups
 * can trust the index. *blocks gets the number of entries. */
static int check_index(table *t, uint64_t index_offset, uint64_t *blocks) {
  *blocks = 0;
  uint64_t next_free = 0; /* the first byte after the previous block's trailer */
  mf_iter *it = block_iter_create(t->index, table_key_compare);
  if (!it) return MF_ERR(MAYFLY_ENOMEM, "%s: no memory", t->fname);
  mf_buf prev = MF_BUF_INIT;
  int rc = MAYFLY_OK, first = 1;
  for (iter_seek_to_first(it); iter_valid(it); iter_next(it)) {
    mf_slice key = iter_key(it), value = iter_value(it);
    block_handle h;
    if (key.len < 8 || (!first && ikey_compare(mf_buf_slice(&prev), key) >= 0)) {
      rc = MF_ERR(MAYFLY_ECORRUPT, "%s: index block at offset %llu has a bad or unordered key",
                  t->fname, (unsigned long long)index_offset);
      break;
    }
    if (!block_handle_decode(&value, &h) || value.len != 0 || !handle_within(&h, t->data_end) ||
        h.offset < next_free) {
      rc = MF_ERR(MAYFLY_ECORRUPT, "%s: index block at offset %llu has a bad block handle",
                  t->fname, (unsigned long long)index_offset);
      break;
    }
    if ((rc = mf_buf_set(&prev, key.data, key.len))) {
      rc = MF_ERR(MAYFLY_ENOMEM, "%s: no memory", t->fname);
      break;
    }
    first = 0;
    next_free = h.offset + h.size + BLOCK_TRAILER_SIZE;
    ++*blocks;
  }
  if (!rc) rc = iter_status(it);
  iter_destroy(it);
  mf_buf_free(&prev);
  return rc;
}

/* Reads the checked block at [offset, offset + size): from the mapping when there is one (in
 * place if stored uncompressed: *owned NULL), else with pread. *owned, when not NULL, is the
 * malloc'd memory behind *contents, which the caller then owns. */
static int read_block(const table *t, uint64_t offset, uint64_t size, mf_slice *contents,
                      char **owned) {
  if (t->image)
    return table_map_block(t->image, t->file_size, t->fname, offset, size, contents, owned);
  size_t len = 0;
  int rc = table_read_block(t->env, t->file, t->fname, offset, size, owned, &len);
  *contents = mf_slice_make(*owned, len);
  return rc;
}

/* Maps the file when the env can; a refusal (the env's limit of mapped files, or any
 * failure) is not an error: the table then reads with pread. */
static void try_map(table *t) {
  if (!env_has_map(t->env) || t->file_size == 0) return;
  if (t->env->map_readable(t->env, t->file, t->file_size, &t->image, &t->mapping) != MAYFLY_OK) {
    t->image = NULL;
    t->mapping = NULL;
  }
}

static int open_parts(table *t) {
  char footer_buf[TABLE_FOOTER_SIZE];
  table_footer footer;
  size_t got = 0;
  int rc;
  if (t->file_size < TABLE_FOOTER_SIZE)
    return MF_ERR(MAYFLY_ECORRUPT, "%s: file of %llu bytes is too short to be a table", t->fname,
                  (unsigned long long)t->file_size);
  uint64_t footer_offset = t->file_size - TABLE_FOOTER_SIZE;
  if (t->image) {
    memcpy(footer_buf, t->image + footer_offset, TABLE_FOOTER_SIZE);
  } else {
    rc = t->env->pread(t->file, footer_offset, TABLE_FOOTER_SIZE, footer_buf, &got);
    if (rc) return rc;
    if (got != TABLE_FOOTER_SIZE)
      return MF_ERR(MAYFLY_ECORRUPT, "%s: footer at offset %llu truncated (%zu bytes)",
                    t->fname, (unsigned long long)footer_offset, got);
  }
  if ((rc = table_footer_decode(footer_buf, t->fname, &footer))) return rc;
  if (!handle_within(&footer.index, footer_offset) ||
      (footer.filter.size && !handle_within(&footer.filter, footer.index.offset)))
    return MF_ERR(MAYFLY_ECORRUPT, "%s: footer block handles point outside the file (file size "
                  "%llu)", t->fname, (unsigned long long)t->file_size);
  t->data_end = footer.filter.size ? footer.filter.offset : footer.index.offset;

  mf_slice contents;
  char *owned = NULL;
  rc = read_block(t, footer.index.offset, footer.index.size, &contents, &owned);
  if (!rc && owned)
    rc = block_create(owned, contents.len, t->fname, footer.index.offset, &t->index);
  else if (!rc) /* in the mapping, which lives as long as the table and its name */
    rc = block_create_borrowed(contents.data, contents.len, t->fname, footer.index.offset,
                               &t->index);
  uint64_t blocks = 0;
  if (!rc) rc = check_index(t, footer.index.offset, &blocks);
  if (rc) return rc;
  if (t->image && blocks) { /* a failed allocation only means verifying every read */
    uint64_t slots = 1;
    while (slots < blocks) slots <<= 1;
    if ((t->verified = malloc(slots * sizeof *t->verified))) {
      for (uint64_t i = 0; i < slots; i++) atomic_init(&t->verified[i], 0);
      t->verified_mask = slots - 1;
    }
  }

  if (footer.filter.size) {
    rc = read_block(t, footer.filter.offset, footer.filter.size, &contents, &t->filter_buf);
    if (rc) return rc;
    t->filter = contents.data;
    t->filter_len = contents.len;
  }
  return MAYFLY_OK;
}

int table_open(mf_env *env, mf_rfile *file, const char *fname, uint64_t file_size,
               struct mf_cache *block_cache, uint64_t cache_id, table **out) {
  *out = NULL;
  table *t = calloc(1, sizeof *t);
  if (!t || !(t->fname = strdup(fname))) {
    free(t);
    env->close_readable(file);
    return MF_ERR(MAYFLY_ENOMEM, "%s: no memory to open table", fname);
  }
  t->env = env;
  t->file = file;
  t->file_size = file_size;
  t->cache = block_cache;
  t->cache_id = cache_id;
  try_map(t);
  int rc = open_parts(t);
  if (rc) {
    table_close(t);
    return rc;
  }
  *out = t;
  return MAYFLY_OK;
}

void table_close(table *t) {
  if (!t) return;
  block_destroy(t->index); /* may point into the mapping: first */
  free(t->filter_buf);
  free((void *)t->verified);
  if (t->mapping) t->env->unmap(t->env, t->mapping);
  t->env->close_readable(t->file);
  free(t->fname);
  free(t);
}

/* ---- data blocks ---- */

static void cache_block_deleter(mf_slice key, void *value) { block_destroy(value); }

static void release_cached(void *cache, void *handle) { cache_release(cache, handle); }
static void destroy_private(void *b, void *unused) { block_destroy(b); }

/* Reads and parses one data block into a block that owns its contents (for the cache, or
 * for one iterator). */
static int read_data_block(table *t, const block_handle *h, block **out) {
  mf_slice contents;
  char *owned = NULL;
  int rc = read_block(t, h->offset, h->size, &contents, &owned);
  if (rc) return rc;
  if (!owned) { /* stored uncompressed in the mapping: this caller wants its own copy */
    owned = malloc(contents.len ? contents.len : 1);
    if (!owned) return MF_ERR(MAYFLY_ENOMEM, "%s: no memory for a block", t->fname);
    memcpy(owned, contents.data, contents.len);
  }
  return block_create(owned, contents.len, t->fname, h->offset, out);
}

/* 1 when the data block h is read in place from the mapping: the table is mapped and the
 * block is stored uncompressed (its trailer's type byte; a damaged type byte fails the
 * checksum, which covers it, whichever way the block is then read). The index was checked at
 * open, so the trailer lies inside the file. */
static int read_in_place(const table *t, const block_handle *h) {
  return t->image != NULL && h->size < t->file_size && h->offset < t->file_size - h->size &&
         (unsigned char)t->image[h->offset + h->size] == MF_COMPRESSION_NONE;
}

static _Atomic uint64_t *verified_slot(const table *t, uint64_t offset) {
  uint64_t h = offset * UINT64_C(0x9e3779b97f4a7c15); /* Fibonacci hashing: high bits mix */
  return &t->verified[(h >> 32) & t->verified_mask];
}

/* An iterator over the uncompressed data block h, right in the mapping. */
static mf_iter *open_in_place(table *t, const block_handle *h) {
  mf_slice contents;
  char *owned = NULL;
  mf_iter *it = NULL;
  _Atomic uint64_t *slot = t->verified ? verified_slot(t, h->offset) : NULL;
  if (slot && atomic_load_explicit(slot, memory_order_relaxed) == h->offset + 1) {
    int rc = block_iter_create_borrowed(t->image + h->offset, (size_t)h->size, t->fname,
                                        h->offset, table_key_compare, &it);
    if (rc == MAYFLY_OK) block_iter_set_min_key_len(it, 8);
    return rc ? iter_new_empty(rc) : it;
  }
  int rc = table_map_block(t->image, t->file_size, t->fname, h->offset, h->size, &contents,
                           &owned);
  if (!rc && !owned && slot) atomic_store_explicit(slot, h->offset + 1, memory_order_relaxed);
  if (!rc && owned) { /* only a compressed block is copied, and read_in_place saw none */
    free(owned);
    rc = MF_ERR(MAYFLY_ECORRUPT, "%s: block at offset %llu changed type", t->fname,
                (unsigned long long)h->offset);
  }
  if (!rc)
    rc = block_iter_create_borrowed(contents.data, contents.len, t->fname, h->offset,
                                    table_key_compare, &it);
  if (!rc) block_iter_set_min_key_len(it, 8);
  return rc ? iter_new_empty(rc) : it;
}

/* The block_fn of the table's two-level iterator: an iterator over the data block that
 * index_value names, with a cleanup that unpins or frees the block when it came from the
 * cache or a read. NULL only on ENOMEM. */
static mf_iter *open_data_block(void *arg, mf_slice index_value) {
  table *t = arg;
  block_handle h;
  block *b = NULL;
  mf_cache_handle *ch = NULL;
  int rc;
  if (!block_handle_decode(&index_value, &h))
    return iter_new_empty(MF_ERR(MAYFLY_ECORRUPT, "%s: bad block handle in index", t->fname));
  if (read_in_place(t, &h)) return open_in_place(t, &h);
  if (t->cache) {
    char key[16];
    encode_fixed64(key, t->cache_id);
    encode_fixed64(key + 8, h.offset);
    mf_slice cache_key = mf_slice_make(key, sizeof key);
    if ((ch = cache_lookup(t->cache, cache_key))) {
      b = cache_value(ch);
    } else {
      if ((rc = read_data_block(t, &h, &b))) return iter_new_empty(rc);
      /* On ENOMEM the block stays ours and is used uncached. */
      ch = cache_insert(t->cache, cache_key, b, block_size(b), cache_block_deleter);
    }
  } else if ((rc = read_data_block(t, &h, &b))) {
    return iter_new_empty(rc);
  }
  mf_iter *it = block_iter_create(b, table_key_compare);
  if (it) {
    block_iter_set_min_key_len(it, 8); /* the layers above compare keys as internal keys */
    rc = ch ? iter_register_cleanup(it, release_cached, t->cache, ch)
            : iter_register_cleanup(it, destroy_private, b, NULL);
    if (rc == MAYFLY_OK) return it;
    iter_destroy(it);
  }
  if (ch)
    cache_release(t->cache, ch);
  else
    block_destroy(b);
  return NULL;
}

mf_iter *table_iter_create(table *t) {
  mf_iter *index = block_iter_create(t->index, table_key_compare);
  return index ? two_level_iter_create(index, open_data_block, t) : NULL;
}

int table_get(table *t, mf_slice lookup_ikey,
              void (*saver)(void *arg, mf_slice ikey, mf_slice value), void *arg) {
  if (lookup_ikey.len < 8)
    return MF_ERR(MAYFLY_EINVAL, "%s: lookup key of %zu bytes is not an internal key", t->fname,
                  lookup_ikey.len);
  if (t->filter &&
      !bloom_may_match(mf_slice_make(t->filter, t->filter_len), ikey_user_key(lookup_ikey)))
    return MAYFLY_OK;
  mf_iter *index = block_iter_create(t->index, table_key_compare);
  if (!index) return MF_ERR(MAYFLY_ENOMEM, "%s: no memory for a lookup", t->fname);
  int rc = MAYFLY_OK;
  /* Usually one block: its index key is >= lookup_ikey, so if anything in the table is,
   * the first such entry is in that block, unless lookup_ikey falls between the block's last
   * key and a shortened separator; then it is the first entry of the next block. */
  for (iter_seek(index, lookup_ikey); iter_valid(index); iter_next(index)) {
    mf_iter *data = open_data_block(t, iter_value(index));
    if (!data) {
      rc = MF_ERR(MAYFLY_ENOMEM, "%s: no memory for a lookup", t->fname);
      break;
    }
    iter_seek(data, lookup_ikey);
    int found = iter_valid(data);
    if (found) saver(arg, iter_key(data), iter_value(data));
    rc = iter_status(data);
    iter_destroy(data);
    if (found || rc) break;
  }
  if (!rc) rc = iter_status(index);
  iter_destroy(index);
  return rc;
}

uint64_t table_approximate_offset(const table *t, mf_slice ikey) {
  uint64_t result = t->data_end;
  mf_iter *index = block_iter_create(t->index, table_key_compare);
  if (!index) return result;
  iter_seek(index, ikey);
  if (iter_valid(index)) {
    mf_slice v = iter_value(index);
    block_handle h;
    if (block_handle_decode(&v, &h)) result = h.offset;
  }
  iter_destroy(index);
  return result;
}
