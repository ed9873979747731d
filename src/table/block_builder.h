/* Builds one block: sorted entries with prefix-compressed keys and a restart array.
 *
 *   block   := entry* || restart (fixed32)* || num_restarts (fixed32)
 *   entry   := shared (varint32) || non_shared (varint32) || value_len (varint32)
 *              || key_delta (non_shared bytes) || value (value_len bytes)
 *
 * An entry's key is the first `shared` bytes of the previous entry's key followed by
 * key_delta. Every restart_interval-th entry (the first included) is a restart point: it has
 * shared = 0 and its offset from the block start is listed in the restart array, so a reader
 * can binary-search the restart points and decode forward from one. An empty block is just
 * num_restarts = 0. Full table grammar: table/table.h and docs/format/sst.md.
 *
 * The builder knows nothing about key order; the caller adds keys in its comparator's order. */
#ifndef MAYFLY_TABLE_BLOCK_BUILDER_H
#define MAYFLY_TABLE_BLOCK_BUILDER_H

#include <stddef.h>
#include <stdint.h>

#include "util/slice.h"

typedef struct block_builder {
  mf_buf buf;      /* entries so far; after finish, the whole block */
  mf_buf restarts; /* restart offsets, already encoded as fixed32 */
  mf_buf last_key;
  int restart_interval;
  int counter; /* entries since the last restart point */
  int finished;
  size_t num_entries;
} block_builder;

/* restart_interval < 1 is treated as 1. Allocates nothing until the first add. */
void block_builder_init(block_builder *b, int restart_interval);
/* Frees the builder's memory (the struct itself belongs to the caller). */
void block_builder_free(block_builder *b);
/* Empties the builder for the next block, keeping its memory. */
void block_builder_reset(block_builder *b);
/* REQUIRES: not finished; key sorts after every key added since the last reset.
 * Returns MAYFLY_OK or MAYFLY_ENOMEM (the builder is then unusable until reset). */
int block_builder_add(block_builder *b, mf_slice key, mf_slice value);
/* Appends the restart array and returns the finished block in *out, which points into the
 * builder and stays valid until the next reset or free. Returns MAYFLY_OK or MAYFLY_ENOMEM. */
int block_builder_finish(block_builder *b, mf_slice *out);
/* Size the block would have if finished now. */
size_t block_builder_size_estimate(const block_builder *b);
static inline int block_builder_empty(const block_builder *b) { return b->num_entries == 0; }

#endif
