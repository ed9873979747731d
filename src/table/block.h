/* Reading one block (format in table/block_builder.h): validation and an iterator.
 *
 * A block owns its contents (one malloc'd array, usually from table_read_block). block_create
 * checks the restart array up front (count fits, offsets strictly increasing, inside the entry
 * area, the first one 0), so the iterator can trust restart offsets and only has to
 * bounds-check entries as it decodes them. */
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
/* Frees the block and its contents. NULL is a no-op. REQUIRES: no iterator still uses it. */
void block_destroy(block *b);
/* Bytes of contents (what the block cache charges). */
size_t block_size(const block *b);

/* An iterator over b's entries in order, comparing keys with cmp for seek. Works forwards,
 * backwards and by seek. A malformed entry makes it invalid with status MAYFLY_ECORRUPT
 * (sticky: it stays invalid after later moves). b must outlive the iterator unless the caller
 * registers a cleanup that frees it (iter_register_cleanup). Keys returned by key() point into
 * the iterator, values into the block. Returns NULL only on ENOMEM. */
mf_iter *block_iter_create(block *b, mf_compare_fn cmp);

#endif
