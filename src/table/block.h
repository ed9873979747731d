/* Reading one block (format in table/block_builder.h): validation and an iterator.
 *
 * A block made by block_create owns its contents (one malloc'd array, usually from
 * table_read_block); one made by block_create_borrowed, or described inside an iterator by
 * block_iter_create_borrowed, reads someone else's memory (a mapped table file) and copies
 * nothing. Either way the constructor checks the restart array up front (count fits,
 * offsets strictly increasing, inside the entry area, the first one 0), so the iterator can
 * trust restart offsets and only has to bounds-check entries as it decodes them. */
#ifndef MAYFLY_TABLE_BLOCK_H
#define MAYFLY_TABLE_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "table/iterator.h"
#include "util/ikey.h"
#include "util/slice.h"

typedef struct block block;

/* Takes ownership of contents (malloc'd, len bytes) on success AND on failure. origin (may be
 * NULL; copied) and file_offset only serve error messages ("<origin>: ... block at offset N").
 * On success *out is owned by the caller (free with block_destroy). Returns MAYFLY_OK,
 * MAYFLY_ECORRUPT (malformed restart array) or MAYFLY_ENOMEM. */
int block_create(char *contents, size_t len, const char *origin, uint64_t file_offset,
                 block **out);
/* Like block_create, but neither contents nor origin is copied or freed: both must outlive
 * the block (contents of a mapped file, the table's name). Nothing is freed on failure.
 * On success *out is owned by the caller (block_destroy, which leaves contents alone). */
int block_create_borrowed(const char *contents, size_t len, const char *origin,
                          uint64_t file_offset, block **out);
/* Frees the block, and its contents if it owns them. NULL is a no-op.
 * REQUIRES: no iterator still uses it. */
void block_destroy(block *b);
/* Bytes of contents (what the block cache charges). */
size_t block_size(const block *b);

/* An iterator over b's entries in order, comparing keys with cmp for seek. Works forwards,
 * backwards and by seek. A malformed entry makes it invalid with status MAYFLY_ECORRUPT
 * (sticky: it stays invalid after later moves). b must outlive the iterator unless the caller
 * registers a cleanup that frees it (iter_register_cleanup). Keys returned by key() point into
 * the iterator, values into the block. Returns NULL only on ENOMEM. */
mf_iter *block_iter_create(block *b, mf_compare_fn cmp);
/* An iterator over the block in contents (len bytes), with no block object to manage: checks
 * the restart array like block_create and describes the block inside the iterator (one
 * allocation in all). contents and origin are borrowed and must outlive the iterator. On
 * MAYFLY_OK *out is owned by the caller (iter_destroy); errors as block_create's. */
int block_iter_create_borrowed(const char *contents, size_t len, const char *origin,
                               uint64_t file_offset, mf_compare_fn cmp, mf_iter **out);

/* Makes every key shorter than min_key_len corruption (MAYFLY_ECORRUPT, like any malformed
 * entry). Tables set it to the internal key's trailer size: comparators and the layers above
 * may then rely on every key having a trailer. Call before positioning the iterator. */
void block_iter_set_min_key_len(mf_iter *it, size_t min_key_len);

#endif
