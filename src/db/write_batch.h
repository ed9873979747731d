/* Write batches: the unit of atomicity, and the payload of every WAL record.
 *
 * Representation (docs/format/batch.md; identical in memory and in the WAL):
 *   batch   := seq (fixed64) count (fixed32) record*
 *   record  := MF_TYPE_VALUE  (1 byte) varstring(key) varstring(value)
 *            | MF_TYPE_DELETE (1 byte) varstring(key)
 *   varstring := varint32 length, bytes
 * seq is the sequence number of the first record; record i gets seq + i. */
#ifndef MAYFLY_DB_WRITE_BATCH_H
#define MAYFLY_DB_WRITE_BATCH_H

#include <stdint.h>

#include "mayfly.h"
#include "util/coding.h"
#include "util/slice.h"

#define MF_BATCH_HEADER 12

struct mayfly_batch {
  mf_buf rep; /* always at least MF_BATCH_HEADER bytes once initialized */
  uint64_t user_bytes; /* key + value bytes, for the user-bytes-written statistic */
};

int batch_init(struct mayfly_batch *b);
/* batch_init with room for capacity bytes of representation, so that a batch of known size
 * (one put) is built without growing. */
int batch_init_sized(struct mayfly_batch *b, size_t capacity);
/* Starts an empty batch in caller-owned memory of cap bytes (at least MF_BATCH_HEADER), for a
 * batch whose final size is known not to exceed cap (one put built on the stack). Such a
 * batch must not grow past cap and is not passed to batch_free. */
void batch_init_in(struct mayfly_batch *b, char *buf, size_t cap);
void batch_free(struct mayfly_batch *b);
int batch_put(struct mayfly_batch *b, mf_slice key, mf_slice value);
int batch_delete(struct mayfly_batch *b, mf_slice key);
/* Appends src's records to dst (the group commit leader merges followers' batches). */
int batch_append(struct mayfly_batch *dst, const struct mayfly_batch *src);
void batch_clear(struct mayfly_batch *b);

static inline uint32_t batch_count(const struct mayfly_batch *b) {
  return decode_fixed32(b->rep.data + 8);
}
static inline uint64_t batch_seq(const struct mayfly_batch *b) { return decode_fixed64(b->rep.data); }
static inline void batch_set_seq(struct mayfly_batch *b, uint64_t seq) { encode_fixed64(b->rep.data, seq); }

/* Calls fn for each record in order with its sequence number. Stops at fn's first non-OK
 * result and returns it. A malformed representation (a WAL record that passed its checksum
 * but does not parse, or whose count disagrees) is MAYFLY_ECORRUPT. */
int batch_iterate(mf_slice rep, int (*fn)(void *arg, uint64_t seq, int type, mf_slice key,
                                           mf_slice value),
                  void *arg);

/* Checks a representation read back from a WAL before anything of it is applied, so that a
 * damaged batch is dropped whole (batches are atomic): every record parses, the count
 * matches, and the sequence numbers fit (1 .. MF_MAX_SEQ). MAYFLY_ECORRUPT otherwise. */
int batch_check(mf_slice rep);

#endif
