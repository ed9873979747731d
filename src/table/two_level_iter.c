/* Two-level iteration. The current sub-iterator (data) is the one named by the index entry
 * the index iterator sits on; handle keeps a copy of that index value so moving within
 * one block, or seeking to a key in the block already open, does not reopen it. When data
 * runs off an end, the index moves one step and the next sub-iterator is opened, until one
 * has an entry or the index is exhausted. */
#include "table/two_level_iter.h"

#include <stdlib.h>
#include <string.h>

#include "mayfly.h"
#include "util/error.h"
#include "util/zalloc.h"

typedef struct two_level_iter {
  mf_iter base;
  mf_iter *index;
  mf_iter *(*block_fn)(void *arg, mf_slice index_value);
  void *arg;
  mf_iter *data;      /* NULL when the index is not on an entry */
  int status;         /* first error seen; sticky */
  /* The index value data was opened from: in handle_inline when it fits (a block handle is at
   * most 20 bytes), so that opening a table for one seek allocates nothing for it. */
  char *handle;
  size_t handle_len;
  char handle_inline[32];
} two_level_iter;

/* Keeps a copy of v as the handle data was opened from. MAYFLY_ENOMEM keeps none. */
static int set_handle(two_level_iter *it, mf_slice v) {
  if (it->handle != it->handle_inline) free(it->handle);
  it->handle = v.len <= sizeof it->handle_inline ? it->handle_inline : malloc(v.len);
  it->handle_len = it->handle ? v.len : 0;
  if (!it->handle) return MAYFLY_ENOMEM;
  memcpy(it->handle, v.data, v.len);
  return MAYFLY_OK;
}

static void record_error(two_level_iter *it, int rc) {
  if (it->status == MAYFLY_OK) it->status = rc;
}

static void set_data(two_level_iter *it, mf_iter *data) {
  if (it->data) {
    int rc = iter_status(it->data);
    if (rc) record_error(it, rc);
    iter_destroy(it->data);
  }
  it->data = data;
}

/* Makes data the sub-iterator of the index's current entry (unpositioned if newly opened). */
static void init_data(two_level_iter *it) {
  if (!iter_valid(it->index)) {
    set_data(it, NULL);
    return;
  }
  mf_slice handle = iter_value(it->index);
  if (it->data && mf_slice_equal(handle, mf_slice_make(it->handle, it->handle_len))) return;
  mf_iter *data = it->block_fn(it->arg, handle);
  if (!data) {
    set_data(it, NULL);
    record_error(it, MF_ERR(MAYFLY_ENOMEM, "two-level iterator: no memory for a sub-iterator"));
    return;
  }
  if (set_handle(it, handle)) {
    iter_destroy(data);
    set_data(it, NULL);
    record_error(it, MF_ERR(MAYFLY_ENOMEM, "two-level iterator: no memory"));
    return;
  }
  set_data(it, data);
}

/* True when iteration must stop at the current position (an entry, an error, or the end). */
static int settled(two_level_iter *it) {
  if (it->status) return 1;
  if (!it->data) return 1; /* index exhausted or failed */
  return iter_valid(it->data) || iter_status(it->data) != MAYFLY_OK;
}

static void skip_empty_forward(two_level_iter *it) {
  while (!settled(it)) {
    iter_next(it->index);
    init_data(it);
    if (it->data) iter_seek_to_first(it->data);
  }
}

static void skip_empty_backward(two_level_iter *it) {
  while (!settled(it)) {
    iter_prev(it->index);
    init_data(it);
    if (it->data) iter_seek_to_last(it->data);
  }
}

static int tl_valid(const mf_iter *base) {
  const two_level_iter *it = (const two_level_iter *)base;
  return it->status == MAYFLY_OK && it->data && iter_valid(it->data);
}

static void tl_seek(mf_iter *base, mf_slice target) {
  two_level_iter *it = (two_level_iter *)base;
  if (it->status) return;
  iter_seek(it->index, target);
  init_data(it);
  if (it->data) iter_seek(it->data, target);
  skip_empty_forward(it);
}

static void tl_seek_to_first(mf_iter *base) {
  two_level_iter *it = (two_level_iter *)base;
  if (it->status) return;
  iter_seek_to_first(it->index);
  init_data(it);
  if (it->data) iter_seek_to_first(it->data);
  skip_empty_forward(it);
}

static void tl_seek_to_last(mf_iter *base) {
  two_level_iter *it = (two_level_iter *)base;
  if (it->status) return;
  iter_seek_to_last(it->index);
  init_data(it);
  if (it->data) iter_seek_to_last(it->data);
  skip_empty_backward(it);
}

static void tl_next(mf_iter *base) {
  two_level_iter *it = (two_level_iter *)base;
  iter_next(it->data);
  skip_empty_forward(it);
}

static void tl_prev(mf_iter *base) {
  two_level_iter *it = (two_level_iter *)base;
  iter_prev(it->data);
  skip_empty_backward(it);
}

static mf_slice tl_key(const mf_iter *base) { return iter_key(((const two_level_iter *)base)->data); }
static mf_slice tl_value(const mf_iter *base) {
  return iter_value(((const two_level_iter *)base)->data);
}

static int tl_status(const mf_iter *base) {
  const two_level_iter *it = (const two_level_iter *)base;
  int rc = iter_status(it->index);
  if (rc) return rc;
  if (it->status) return it->status;
  return it->data ? iter_status(it->data) : MAYFLY_OK;
}

static void tl_destroy(mf_iter *base) {
  two_level_iter *it = (two_level_iter *)base;
  iter_destroy(it->data);
  iter_destroy(it->index);
  if (it->handle != it->handle_inline) free(it->handle);
  free(it);
}

static const mf_iter_ops two_level_ops = {tl_valid, tl_seek_to_first, tl_seek_to_last, tl_seek,
                                          tl_next,  tl_prev,          tl_key,          tl_value,
                                          tl_status, tl_destroy};

mf_iter *two_level_iter_create(mf_iter *index_iter,
                               mf_iter *(*block_fn)(void *arg, mf_slice index_value), void *arg) {
  two_level_iter *it = mf_zalloc(sizeof *it);
  if (!it) {
    iter_destroy(index_iter);
    return NULL;
  }
  iter_init(&it->base, &two_level_ops);
  it->handle = it->handle_inline;
  it->index = index_iter;
  it->block_fn = block_fn;
  it->arg = arg;
  return &it->base;
}
