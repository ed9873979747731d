/* Merging iterator: one sorted view over several sorted child iterators (memtables, L0
 * tables, levels).
 *
 * Every entry of every child appears once. Entries with equal keys in different children
 * (which internal keys never produce, but the iterator does not rely on that) come out in
 * child order going forward (lower index first) and in exactly the reverse order going
 * backward, so a backward pass is always the mirror of a forward pass.
 *
 * Errors. A child that fails (invalid with a non-OK status) ends the merged view: the merger
 * turns invalid at that step instead of going on without the child, whose entries (a newer
 * version, a tombstone) could change what the others' entries mean. (A seek repositions
 * every child; table iterators keep their error, so the view then ends again.) */
#ifndef MAYFLY_TABLE_MERGER_H
#define MAYFLY_TABLE_MERGER_H

#include "table/iterator.h"
#include "util/ikey.h"

/* Returns an iterator over the union of children[0..n-1], ordered by cmp. Takes ownership of
 * every child (they are destroyed with the result, by iter_destroy) but not of the array,
 * which the caller may free on return. n may be 0 (an empty iterator). Children must each be
 * sorted by cmp and must not be used by the caller afterwards. status() is the first non-OK
 * child status (in child order). Caller owns the result (iter_destroy). NULL when out of
 * memory, in which case the children have already been destroyed. */
mf_iter *merger_create(mf_compare_fn cmp, mf_iter **children, int n);

#endif
