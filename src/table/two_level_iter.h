/* An iterator over an index iterator whose values name sub-iterators: the data blocks of a
 * table (index = the table's index block) or the tables of a level (index = the level's file
 * list). Its entries are the concatenation of the sub-iterators' entries in index order, so
 * the index keys must partition the key space accordingly (each index key >= every key of its
 * sub-iterator and < every key of the next one). */
#ifndef MAYFLY_TABLE_TWO_LEVEL_ITER_H
#define MAYFLY_TABLE_TWO_LEVEL_ITER_H

#include "table/iterator.h"

/* block_fn(arg, index_value) opens the sub-iterator an index value names; it returns an
 * iterator (possibly an empty one carrying an error status, see iter_new_empty) that the
 * two-level iterator owns and destroys, or NULL when out of memory. index_value is only valid
 * during the call. Takes ownership of index_iter, also when creation fails (NULL, ENOMEM).
 *
 * Moves forwards, backwards and by seek; sub-iterators without entries are skipped. Errors
 * stop the iteration: when the index or a sub-iterator fails, the iterator becomes invalid
 * and status() returns the error, which stays (later moves keep it invalid) so a caller
 * never silently skips a damaged block. arg must outlive the iterator. */
mf_iter *two_level_iter_create(mf_iter *index_iter,
                               mf_iter *(*block_fn)(void *arg, mf_slice index_value), void *arg);

#endif
