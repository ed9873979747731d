/* Skiplist: an ordered set of entries for the memtable, with one writer and lock-free
 * readers.
 *
 * An entry is opaque bytes written by the caller into memory the list reserves inside a new
 * node (the memtable writes an encoded record there); order is given by the comparator.
 * Entries die with the list's arena. Nodes are never removed, which is what makes lock-free
 * reading simple: once a reader sees a node, it stays in the list.
 *
 * Threads: skiplist_prepare and skiplist_insert_prepared need external synchronization (at
 * most one writer at a time).
 * Every other function may run concurrently with that one writer and with each other, with
 * no locks: a reader sees every insert that completed before it looked, possibly some that
 * are in flight, and always in order. */
#ifndef MAYFLY_MEM_SKIPLIST_H
#define MAYFLY_MEM_SKIPLIST_H

#include <stdint.h>

#include "util/arena.h"

/* <0, 0, >0 as a orders before, equal to, after b. ctx is the pointer given at creation.
 * Must be safe to call from several threads at once. */
typedef int (*skiplist_cmp_fn)(void *ctx, const char *a, const char *b);

typedef struct skiplist skiplist;

/* Creates an empty list whose struct and nodes live in arena (so there is no destroy: the
 * list dies with the arena, which must outlive every use of the list and its iterators).
 * seed drives node heights (any value; fixed seeds make tests reproducible).
 * Returns MAYFLY_OK or MAYFLY_ENOMEM. */
int skiplist_create(mf_arena *arena, skiplist_cmp_fn cmp, void *ctx, uint64_t seed,
                    skiplist **out);
/* A node allocated for an entry but not yet in the list (skiplist_prepare). Plain value. */
typedef struct skiplist_prepared {
  void *node;
  int height;
} skiplist_prepared;

/* Allocates from the list's arena a node together with entry_size bytes for its entry, right
 * after the node's level-0 link, and returns the entry's memory: the caller writes the entry
 * there and then inserts it with skiplist_insert_prepared. A search that reaches the node
 * then finds the entry's first bytes (where comparators look) in the same or the next cache
 * line: one cache miss per step. Any number of prepared nodes may be pending at once, each
 * inserted later in any order, so that all the memory for several entries is allocated
 * before any of them is inserted; one never inserted is wasted arena space.
 * REQUIRES: external writer lock. Returns NULL when out of memory. */
char *skiplist_prepare(skiplist *s, size_t entry_size, skiplist_prepared *out);
/* Inserts a prepared node, its entry written by the caller since; it allocates nothing.
 * REQUIRES: external writer lock; p inserted at most once; no equal entry in the list.
 * Returns MAYFLY_OK, or MAYFLY_EINVAL when an equal entry is already present (the list is
 * unchanged). */
int skiplist_insert_prepared(skiplist *s, const skiplist_prepared *p);
/* 1 when an entry comparing equal to entry is in the list, else 0. */
int skiplist_contains(const skiplist *s, const char *entry);

/* A position in the list. Plain value: no destroy; valid as long as the list is. Not safe to
 * share one iterator between threads, but any number of iterators may run at once. */
typedef struct skiplist_iter {
  const skiplist *list;
  const void *node; /* NULL: not valid */
} skiplist_iter;

/* Starts not valid. */
void skiplist_iter_init(skiplist_iter *it, const skiplist *s);
int skiplist_iter_valid(const skiplist_iter *it);
/* REQUIRES: valid. Returns the entry pointer as inserted. */
const char *skiplist_iter_entry(const skiplist_iter *it);
/* REQUIRES: valid. */
void skiplist_iter_next(skiplist_iter *it);
/* REQUIRES: valid. O(log n): the list has no back pointers, so this searches from the top. */
void skiplist_iter_prev(skiplist_iter *it);
/* First entry >= target (target is compared with the list's comparator). */
void skiplist_iter_seek(skiplist_iter *it, const char *target);
void skiplist_iter_seek_to_first(skiplist_iter *it);
void skiplist_iter_seek_to_last(skiplist_iter *it);

#endif
