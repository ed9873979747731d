/* Block reader and iterator.
 *
 * Decoding model: an entry's key depends on the previous entry's key, so the iterator keeps
 * the current key in its own buffer and can only step forwards from a restart point (where
 * shared = 0). Moving backwards therefore means: find the last restart point before the
 * current entry and decode forward until just before it. Seek binary-searches the restart
 * points' keys (stored whole) and then scans forward.
 *
 * Trust model: block_create validated the restart array; entries are bounds-checked as they
 * are decoded against the start of the restart array, so damaged bytes can make the iterator
 * invalid with MAYFLY_ECORRUPT but never read outside the block. Block checksums catch
 * corruption before this point; these checks are the second line. */
#include "table/block.h"

#include <stdlib.h>
#include <string.h>

#include "mayfly.h"
#include "util/coding.h"
#include "util/error.h"
#include "util/zalloc.h"

struct block {
  const char *data;
  size_t size;
  uint32_t restarts_offset; /* where the restart array starts = end of the entries */
  uint32_t num_restarts;
  uint64_t file_offset;
  const char *origin; /* for messages; never NULL */
  int owned;          /* data (malloc'd) and origin (a copy) belong to the block */
};

static inline uint32_t restart_point(const block *b, uint32_t i) {
  return decode_fixed32(b->data + b->restarts_offset + 4 * (size_t)i);
}

static const char *origin_or_default(const char *origin) { return origin ? origin : "block"; }

/* Checks the restart array of contents and describes the block in *b (which borrows both
 * contents and name). Allocates nothing. */
static int parse_block(const char *contents, size_t len, const char *name, uint64_t file_offset,
                       block *b) {
  unsigned long long off = (unsigned long long)file_offset;
  if (len < 4 || len > UINT32_MAX)
    return MF_ERR(MAYFLY_ECORRUPT, "%s: block at offset %llu has impossible size %zu", name,
                  off, len);
  uint32_t num = decode_fixed32(contents + len - 4);
  if (num > (len - 4) / 4)
    return MF_ERR(MAYFLY_ECORRUPT, "%s: block at offset %llu claims %u restarts in %zu bytes",
                  name, off, num, len);
  uint32_t restarts_offset = (uint32_t)(len - 4 - 4 * (size_t)num);
  if (num == 0 && restarts_offset != 0)
    return MF_ERR(MAYFLY_ECORRUPT, "%s: block at offset %llu has entries but no restart points",
                  name, off);
  uint32_t prev = 0;
  for (uint32_t i = 0; i < num; i++) {
    uint32_t r = decode_fixed32(contents + restarts_offset + 4 * (size_t)i);
    if ((i == 0 && r != 0) || (i > 0 && r <= prev) || r >= restarts_offset)
      return MF_ERR(MAYFLY_ECORRUPT, "%s: block at offset %llu has bad restart point %u (= %u)",
                    name, off, i, r);
    prev = r;
  }
  *b = (block){.data = contents,
               .size = len,
               .restarts_offset = restarts_offset,
               .num_restarts = num,
               .file_offset = file_offset,
               .origin = name,
               .owned = 0};
  return MAYFLY_OK;
}

int block_create(char *contents, size_t len, const char *origin, uint64_t file_offset,
                 block **out) {
  const char *name = origin_or_default(origin);
  *out = NULL;
  block parsed;
  int rc = parse_block(contents, len, name, file_offset, &parsed);
  if (rc) {
    free(contents);
    return rc;
  }
  block *b = malloc(sizeof *b);
  char *copy = strdup(name);
  if (!b || !copy) {
    free(b);
    free(copy);
    free(contents);
    return MF_ERR(MAYFLY_ENOMEM, "%s: no memory for a block", name);
  }
  *b = parsed;
  b->origin = copy;
  b->owned = 1;
  *out = b;
  return MAYFLY_OK;
}

int block_create_borrowed(const char *contents, size_t len, const char *origin,
                          uint64_t file_offset, block **out) {
  const char *name = origin_or_default(origin);
  *out = NULL;
  block parsed;
  int rc = parse_block(contents, len, name, file_offset, &parsed);
  if (rc) return rc;
  block *b = malloc(sizeof *b);
  if (!b) return MF_ERR(MAYFLY_ENOMEM, "%s: no memory for a block", name);
  *b = parsed;
  *out = b;
  return MAYFLY_OK;
}

void block_destroy(block *b) {
  if (!b) return;
  if (b->owned) {
    free((char *)b->data);
    free((char *)b->origin);
  }
  free(b);
}

size_t block_size(const block *b) { return b->size; }

/* ---- iterator ---- */

typedef struct block_iter {
  mf_iter base;
  const block *b; /* the block iterated: someone else's, or &own */
  block own;      /* block_iter_create_borrowed: the block described in place */
  mf_compare_fn cmp;
  size_t min_key_len;     /* shorter keys are corruption (block_iter_set_min_key_len) */
  uint32_t current;       /* offset of the current entry; restarts_offset when invalid */
  uint32_t next_offset;   /* offset just past the current entry */
  uint32_t restart_index; /* restart point at or before current */
  /* The current key: in key_inline until one outgrows it (most internal keys are short),
   * so that opening a block for one seek allocates nothing for its keys. */
  char *key;
  size_t key_len, key_cap;
  mf_slice value;
  int status;
  char key_inline[64];
} block_iter;

/* Appends n bytes to the current key; MAYFLY_ENOMEM leaves it as it was. */
static int key_append(block_iter *it, const char *p, size_t n) {
  if (n > it->key_cap - it->key_len) {
    size_t cap = it->key_cap * 2 > it->key_len + n ? it->key_cap * 2 : it->key_len + n;
    char *k = it->key == it->key_inline ? malloc(cap) : realloc(it->key, cap);
    if (!k) return MAYFLY_ENOMEM;
    if (it->key == it->key_inline) memcpy(k, it->key_inline, it->key_len);
    it->key = k;
    it->key_cap = cap;
  }
  memcpy(it->key + it->key_len, p, n);
  it->key_len += n;
  return MAYFLY_OK;
}

static void key_init(block_iter *it) {
  it->key = it->key_inline;
  it->key_len = 0;
  it->key_cap = sizeof it->key_inline;
}

static void mark_invalid(block_iter *it) {
  it->current = it->next_offset = it->b->restarts_offset;
  it->restart_index = it->b->num_restarts;
  it->key_len = 0;
  it->value = mf_slice_make("", 0);
}

static void set_error(block_iter *it, int rc) {
  if (it->status == MAYFLY_OK) it->status = rc;
  mark_invalid(it);
}

static void corrupt(block_iter *it, uint32_t entry, const char *what) {
  set_error(it, MF_ERR(MAYFLY_ECORRUPT, "%s: %s at byte %u of block at offset %llu",
                       it->b->origin, what, entry, (unsigned long long)it->b->file_offset));
}

/* Decodes the entry header at offset; returns the first byte of the key delta or NULL if the
 * header or the bytes it announces run past the entries. */
static inline const char *decode_entry(const block *b, uint32_t offset, uint32_t *shared,
                                       uint32_t *non_shared, uint32_t *value_len) {
  const char *p = b->data + offset, *limit = b->data + b->restarts_offset;
  const unsigned char *u = (const unsigned char *)p;
  if (limit - p >= 3 && (u[0] | u[1] | u[2]) < 0x80) {
    /* The usual case (keys and values shorter than 128 bytes): three one-byte varints. */
    *shared = u[0];
    *non_shared = u[1];
    *value_len = u[2];
    p += 3;
  } else {
    if (!(p = decode_varint32(p, limit, shared))) return NULL;
    if (!(p = decode_varint32(p, limit, non_shared))) return NULL;
    if (!(p = decode_varint32(p, limit, value_len))) return NULL;
  }
  if ((uint64_t)*non_shared + *value_len > (uint64_t)(limit - p)) return NULL;
  return p;
}

static void seek_to_restart(block_iter *it, uint32_t index) {
  it->key_len = 0;
  it->restart_index = index;
  it->next_offset = restart_point(it->b, index);
}

/* Decodes the entry at next_offset into the iterator. Returns 1 if positioned on it, 0 at the
 * end or on corruption (both leave the iterator invalid). */
static int parse_next(block_iter *it) {
  const block *b = it->b;
  it->current = it->next_offset;
  if (it->current >= b->restarts_offset) {
    mark_invalid(it);
    return 0;
  }
  uint32_t shared, non_shared, value_len;
  const char *p = decode_entry(b, it->current, &shared, &non_shared, &value_len);
  if (!p) {
    corrupt(it, it->current, "malformed entry");
    return 0;
  }
  while (it->restart_index + 1 < b->num_restarts &&
         restart_point(b, it->restart_index + 1) <= it->current)
    it->restart_index++;
  /* A restart point must stand alone: readers start decoding there with no previous key. */
  if (shared > 0 && restart_point(b, it->restart_index) == it->current) {
    corrupt(it, it->current, "restart entry with shared key bytes");
    return 0;
  }
  if (shared > it->key_len) {
    corrupt(it, it->current, "entry shares more key bytes than the previous key has");
    return 0;
  }
  it->key_len = shared;
  if (key_append(it, p, non_shared)) {
    set_error(it, MF_ERR(MAYFLY_ENOMEM, "%s: no memory for a block key", b->origin));
    return 0;
  }
  if (it->key_len < it->min_key_len) {
    corrupt(it, it->current, "key shorter than an internal key");
    return 0;
  }
  it->value = mf_slice_make(p + non_shared, value_len);
  it->next_offset = (uint32_t)(p + non_shared + value_len - b->data);
  return 1;
}

static int bi_valid(const mf_iter *base) {
  const block_iter *it = (const block_iter *)base;
  return it->current < it->b->restarts_offset;
}

static void bi_seek_to_first(mf_iter *base) {
  block_iter *it = (block_iter *)base;
  if (it->status) return;
  if (it->b->num_restarts == 0) {
    mark_invalid(it);
    return;
  }
  seek_to_restart(it, 0);
  parse_next(it);
}

static void bi_seek_to_last(mf_iter *base) {
  block_iter *it = (block_iter *)base;
  if (it->status) return;
  if (it->b->num_restarts == 0) {
    mark_invalid(it);
    return;
  }
  seek_to_restart(it, it->b->num_restarts - 1);
  while (parse_next(it) && it->next_offset < it->b->restarts_offset) {
  }
}

static void bi_next(mf_iter *base) { parse_next((block_iter *)base); }

static void bi_prev(mf_iter *base) {
  block_iter *it = (block_iter *)base;
  uint32_t original = it->current;
  /* Back up to the last restart point strictly before the current entry. */
  while (restart_point(it->b, it->restart_index) >= original) {
    if (it->restart_index == 0) {
      mark_invalid(it);
      return;
    }
    it->restart_index--;
  }
  seek_to_restart(it, it->restart_index);
  while (parse_next(it) && it->next_offset < original) {
  }
}

static void bi_seek(mf_iter *base, mf_slice target) {
  block_iter *it = (block_iter *)base;
  const block *b = it->b;
  if (it->status) return;
  if (b->num_restarts == 0) {
    mark_invalid(it);
    return;
  }
  /* Find the last restart point whose key is < target; everything before it is < target
   * too, and the answer lies at or after it. */
  uint32_t left = 0, right = b->num_restarts - 1;
  while (left < right) {
    uint32_t mid = left + (right - left + 1) / 2, shared, non_shared, value_len;
    uint32_t offset = restart_point(b, mid);
    const char *p = decode_entry(b, offset, &shared, &non_shared, &value_len);
    if (!p || shared != 0) {
      corrupt(it, offset, "malformed restart entry");
      return;
    }
    if (it->cmp(mf_slice_make(p, non_shared), target) < 0)
      left = mid;
    else
      right = mid - 1;
  }
  seek_to_restart(it, left);
  while (parse_next(it)) {
    if (it->cmp(mf_slice_make(it->key, it->key_len), target) >= 0) return;
  }
}

static mf_slice bi_key(const mf_iter *base) {
  const block_iter *it = (const block_iter *)base;
  return mf_slice_make(it->key, it->key_len);
}
static mf_slice bi_value(const mf_iter *base) { return ((const block_iter *)base)->value; }
static int bi_status(const mf_iter *base) { return ((const block_iter *)base)->status; }

static void bi_destroy(mf_iter *base) {
  block_iter *it = (block_iter *)base;
  if (it->key != it->key_inline) free(it->key);
  free(it);
}

static const mf_iter_ops block_iter_ops = {bi_valid, bi_seek_to_first, bi_seek_to_last, bi_seek,
                                           bi_next,  bi_prev,          bi_key,           bi_value,
                                           bi_status, bi_destroy};

mf_iter *block_iter_create(block *b, mf_compare_fn cmp) {
  block_iter *it = mf_zalloc(sizeof *it);
  if (!it) return NULL;
  iter_init(&it->base, &block_iter_ops);
  key_init(it);
  it->b = b;
  it->cmp = cmp;
  it->status = MAYFLY_OK;
  mark_invalid(it);
  return &it->base;
}

int block_iter_create_borrowed(const char *contents, size_t len, const char *origin,
                               uint64_t file_offset, mf_compare_fn cmp, mf_iter **out) {
  const char *name = origin_or_default(origin);
  *out = NULL;
  block parsed;
  int rc = parse_block(contents, len, name, file_offset, &parsed);
  if (rc) return rc;
  block_iter *it = mf_zalloc(sizeof *it);
  if (!it) return MF_ERR(MAYFLY_ENOMEM, "%s: no memory for a block iterator", name);
  iter_init(&it->base, &block_iter_ops);
  key_init(it);
  it->own = parsed;
  it->b = &it->own;
  it->cmp = cmp;
  it->status = MAYFLY_OK;
  mark_invalid(it);
  *out = &it->base;
  return MAYFLY_OK;
}

void block_iter_set_min_key_len(mf_iter *base, size_t min_key_len) {
  ((block_iter *)base)->min_key_len = min_key_len;
}
