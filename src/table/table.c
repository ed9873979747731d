/* Table reader. Format and thread-safety rules in table/table.h.
 *
 * Life of the pieces: the table owns its file, its index block and its filter for its whole
 * life. A data block lives either in the block cache (which owns it; an iterator pins it
 * with a cache handle and releases the handle in a cleanup) or, without a cache (or when the
 * insert fails for lack of memory), privately in the one iterator that read it, which
 * destroys it in a cleanup. Nothing is mutated after table_open, so concurrent readers need
 * no lock here; the cache does its own locking. */
#include "table/table.h"

#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"
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
  mf_cache *cache; /* may be NULL */
  uint64_t cache_id;
  block *index;
  char *filter; /* NULL: no filter */
  size_t filter_len;
  uint64_t data_end; /* first byte after the data blocks */
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
 * area. Checked once at open so lookups can trust the index. */
static int check_index(table *t, uint64_t index_offset) {
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
    if (!block_handle_decode(&value, &h) || value.len != 0 || !handle_within(&h, t->data_end)) {
      rc = MF_ERR(MAYFLY_ECORRUPT, "%s: index block at offset %llu has a bad block handle",
                  t->fname, (unsigned long long)index_offset);
      break;
    }
    if ((rc = mf_buf_set(&prev, key.data, key.len))) {
      rc = MF_ERR(MAYFLY_ENOMEM, "%s: no memory", t->fname);
      break;
    }
    first = 0;
  }
  if (!rc) rc = iter_status(it);
  iter_destroy(it);
  mf_buf_free(&prev);
  return rc;
}

static int open_parts(table *t) {
  char footer_buf[TABLE_FOOTER_SIZE];
  table_footer footer;
  size_t got = 0, len = 0;
  char *contents = NULL;
  int rc;
  if (t->file_size < TABLE_FOOTER_SIZE)
    return MF_ERR(MAYFLY_ECORRUPT, "%s: file of %llu bytes is too short to be a table", t->fname,
                  (unsigned long long)t->file_size);
  uint64_t footer_offset = t->file_size - TABLE_FOOTER_SIZE;
  if ((rc = t->env->pread(t->file, footer_offset, TABLE_FOOTER_SIZE, footer_buf, &got))) return rc;
  if (got != TABLE_FOOTER_SIZE)
    return MF_ERR(MAYFLY_ECORRUPT, "%s: footer at offset %llu truncated (%zu bytes)", t->fname,
                  (unsigned long long)footer_offset, got);
  if ((rc = table_footer_decode(footer_buf, t->fname, &footer))) return rc;
  if (!handle_within(&footer.index, footer_offset) ||
      (footer.filter.size && !handle_within(&footer.filter, footer.index.offset)))
    return MF_ERR(MAYFLY_ECORRUPT, "%s: footer block handles point outside the file (file size "
                  "%llu)", t->fname, (unsigned long long)t->file_size);
  t->data_end = footer.filter.size ? footer.filter.offset : footer.index.offset;

  rc = table_read_block(t->env, t->file, t->fname, footer.index.offset, footer.index.size,
                        &contents, &len);
  if (!rc) rc = block_create(contents, len, t->fname, footer.index.offset, &t->index);
  if (!rc) rc = check_index(t, footer.index.offset);
  if (rc) return rc;

  if (footer.filter.size) {
    rc = table_read_block(t->env, t->file, t->fname, footer.filter.offset, footer.filter.size,
                          &t->filter, &t->filter_len);
    if (rc) return rc;
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
  t->env->close_readable(t->file);
  block_destroy(t->index);
  free(t->filter);
  free(t->fname);
  free(t);
}

/* ---- data blocks ---- */

static void cache_block_deleter(mf_slice key, void *value) { block_destroy(value); }

static void release_cached(void *cache, void *handle) { cache_release(cache, handle); }
static void destroy_private(void *b, void *unused) { block_destroy(b); }

/* Reads and parses one data block. */
static int read_data_block(table *t, const block_handle *h, block **out) {
  char *contents;
  size_t len;
  int rc = table_read_block(t->env, t->file, t->fname, h->offset, h->size, &contents, &len);
  return rc ? rc : block_create(contents, len, t->fname, h->offset, out);
}

/* The block_fn of the table's two-level iterator: an iterator over the data block that
 * index_value names, with a cleanup that unpins or frees the block. NULL only on ENOMEM. */
static mf_iter *open_data_block(void *arg, mf_slice index_value) {
  table *t = arg;
  block_handle h;
  block *b = NULL;
  mf_cache_handle *ch = NULL;
  int rc;
  if (!block_handle_decode(&index_value, &h))
    return iter_new_empty(MF_ERR(MAYFLY_ECORRUPT, "%s: bad block handle in index", t->fname));
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
