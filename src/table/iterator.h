/* The one internal iterator interface: memtables, blocks, tables, levels, merges.
 *
 * Keys and values returned by key()/value() stay valid until the iterator moves or is
 * destroyed. valid() is false after running off either end or on error; status() then tells
 * which (MAYFLY_OK at a plain end). An implementation embeds mf_iter as its first member.
 * iter_destroy runs the registered cleanups (used to unpin tables, versions, memtables) after
 * the implementation's destroy. */
#ifndef MAYFLY_TABLE_ITERATOR_H
#define MAYFLY_TABLE_ITERATOR_H

#include "util/slice.h"

typedef struct mf_iter mf_iter;

typedef struct mf_iter_ops {
  int (*valid)(const mf_iter *it);
  void (*seek_to_first)(mf_iter *it);
  void (*seek_to_last)(mf_iter *it);
  void (*seek)(mf_iter *it, mf_slice target); /* first entry >= target */
  void (*next)(mf_iter *it);                   /* REQUIRES: valid */
  void (*prev)(mf_iter *it);                   /* REQUIRES: valid */
  mf_slice (*key)(const mf_iter *it);          /* REQUIRES: valid */
  mf_slice (*value)(const mf_iter *it);        /* REQUIRES: valid */
  int (*status)(const mf_iter *it);
  void (*destroy)(mf_iter *it); /* frees the implementation's memory */
} mf_iter_ops;

typedef struct mf_iter_cleanup mf_iter_cleanup;

struct mf_iter {
  const mf_iter_ops *ops;
  mf_iter_cleanup *cleanups;
};

static inline void iter_init(mf_iter *it, const mf_iter_ops *ops) {
  it->ops = ops;
  it->cleanups = NULL;
}
static inline int iter_valid(const mf_iter *it) { return it->ops->valid(it); }
static inline void iter_seek_to_first(mf_iter *it) { it->ops->seek_to_first(it); }
static inline void iter_seek_to_last(mf_iter *it) { it->ops->seek_to_last(it); }
static inline void iter_seek(mf_iter *it, mf_slice target) { it->ops->seek(it, target); }
static inline void iter_next(mf_iter *it) { it->ops->next(it); }
static inline void iter_prev(mf_iter *it) { it->ops->prev(it); }
static inline mf_slice iter_key(const mf_iter *it) { return it->ops->key(it); }
static inline mf_slice iter_value(const mf_iter *it) { return it->ops->value(it); }
static inline int iter_status(const mf_iter *it) { return it->ops->status(it); }

/* Runs fn(arg1, arg2) when the iterator is destroyed (last registered runs first).
 * Returns MAYFLY_OK or MAYFLY_ENOMEM (then fn has not been registered). */
int iter_register_cleanup(mf_iter *it, void (*fn)(void *arg1, void *arg2), void *arg1,
                          void *arg2);
/* NULL is a no-op. */
void iter_destroy(mf_iter *it);

/* An iterator over nothing whose status() is status (MAYFLY_OK for a plain empty one).
 * Returns NULL only when out of memory. */
mf_iter *iter_new_empty(int status);

#endif
