/* Fuzz target: batch_iterate (db/write_batch.h) over arbitrary bytes.
 *
 * A write batch is the payload of every WAL record, so at recovery batch_iterate parses
 * bytes that passed a checksum but may still be wrong (a bug in an older writer, a
 * collision). Properties checked for every input:
 *   - the result is MAYFLY_OK or MAYFLY_ECORRUPT (never a crash, never an over-read: every
 *     key and value handed to the callback lies inside the input);
 *   - record i gets sequence number header_seq + i, and its type is VALUE or DELETE
 *     (a DELETE has an empty value);
 *   - on MAYFLY_OK the number of callbacks equals the header's count;
 *   - on MAYFLY_OK, re-encoding the records with batch_put/batch_delete gives a batch that
 *     iterates to exactly the same records, and whose bytes equal the input unless the input
 *     used non-minimal varints (then it is strictly shorter);
 *   - a callback that returns an error stops the walk at once, and that code is returned. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "db/write_batch.h"
#include "fuzz_util.h"
#include "util/ikey.h"

#define STOP_CODE 12345 /* not a MAYFLY_E* code, so it can only come from the callback */

typedef struct rec {
  uint64_t seq;
  int type;
  mf_slice key, value;
} rec;

typedef struct walk {
  const uint8_t *lo, *hi; /* the buffer being parsed */
  uint64_t first_seq;
  rec *recs;
  size_t n, cap;
  size_t stop_at; /* return STOP_CODE at this record (SIZE_MAX: never) */
} walk;

static int inside(const walk *w, mf_slice s) {
  if (s.len == 0) return 1;
  return (const uint8_t *)s.data >= w->lo && (const uint8_t *)s.data + s.len <= w->hi;
}

static int collect(void *arg, uint64_t seq, int type, mf_slice key, mf_slice value) {
  walk *w = arg;
  FUZZ_CHECK(inside(w, key) && inside(w, value), "record %zu points outside the batch", w->n);
  FUZZ_CHECK(seq == w->first_seq + w->n, "record %zu has seq %llu, expected %llu", w->n,
             (unsigned long long)seq, (unsigned long long)(w->first_seq + w->n));
  FUZZ_CHECK(type == MF_TYPE_VALUE || type == MF_TYPE_DELETE, "record %zu has type %d", w->n,
             type);
  FUZZ_CHECK(type == MF_TYPE_VALUE || value.len == 0, "delete record %zu has a value", w->n);
  if (w->n == w->stop_at) return STOP_CODE;
  if (w->n == w->cap) {
    size_t cap = w->cap ? 2 * w->cap : 16;
    rec *bigger = realloc(w->recs, cap * sizeof *bigger);
    if (!bigger) return MAYFLY_ENOMEM;
    w->recs = bigger;
    w->cap = cap;
  }
  rec r = {seq, type, key, value};
  w->recs[w->n++] = r;
  return MAYFLY_OK;
}

static walk walk_make(mf_slice rep, size_t stop_at) {
  walk w = {(const uint8_t *)rep.data, (const uint8_t *)rep.data + rep.len, 0, NULL, 0, 0,
            stop_at};
  if (rep.len >= MF_BATCH_HEADER) w.first_seq = decode_fixed64(rep.data);
  return w;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mf_slice rep = mf_slice_make(data, size);
  walk w = walk_make(rep, SIZE_MAX);
  int rc = batch_iterate(rep, collect, &w);
  if (FUZZ_OOM_OK(rc)) goto out;
  FUZZ_CHECK(rc == MAYFLY_OK || rc == MAYFLY_ECORRUPT, "batch_iterate returned %d", rc);
  if (rc != MAYFLY_OK) goto out;
  uint32_t count = decode_fixed32(rep.data + 8);
  FUZZ_CHECK(w.n == count, "batch_iterate succeeded with %zu records, header count %u", w.n,
             count);

  /* Re-encode with the writer and walk the result. */
  struct mayfly_batch b;
  if (batch_init(&b)) goto out;
  for (size_t i = 0; i < w.n && rc == MAYFLY_OK; i++)
    rc = w.recs[i].type == MF_TYPE_VALUE ? batch_put(&b, w.recs[i].key, w.recs[i].value)
                                         : batch_delete(&b, w.recs[i].key);
  if (rc == MAYFLY_OK) {
    batch_set_seq(&b, w.first_seq);
    mf_slice again = mf_buf_slice(&b.rep);
    FUZZ_CHECK(again.len <= rep.len, "re-encoding grew the batch from %zu to %zu bytes",
               rep.len, again.len);
    if (again.len == rep.len)
      FUZZ_CHECK(memcmp(again.data, rep.data, rep.len) == 0,
                 "same-length re-encoding differs from the input");
    walk w2 = walk_make(again, SIZE_MAX);
    rc = batch_iterate(again, collect, &w2);
    FUZZ_CHECK(rc == MAYFLY_OK, "the re-encoded batch does not iterate: %d", rc);
    FUZZ_CHECK(w2.n == w.n, "re-encoded batch has %zu records, not %zu", w2.n, w.n);
    for (size_t i = 0; i < w.n; i++) {
      FUZZ_CHECK(w2.recs[i].seq == w.recs[i].seq && w2.recs[i].type == w.recs[i].type &&
                     mf_slice_equal(w2.recs[i].key, w.recs[i].key) &&
                     mf_slice_equal(w2.recs[i].value, w.recs[i].value),
                 "record %zu differs after re-encoding", i);
    }
    free(w2.recs);
  } else {
    FUZZ_CHECK(FUZZ_OOM_OK(rc), "re-encoding record failed: %d", rc);
  }
  batch_free(&b);

  /* Stopping early: the callback's code comes back, after exactly stop_at records. */
  if (w.n > 0) {
    size_t stop_at = (size_t)(w.first_seq % w.n);
    walk w3 = walk_make(rep, stop_at);
    rc = batch_iterate(rep, collect, &w3);
    FUZZ_CHECK(rc == STOP_CODE, "batch_iterate did not return the callback's code: %d", rc);
    FUZZ_CHECK(w3.n == stop_at, "batch_iterate went on after the callback failed");
    free(w3.recs);
  }
out:
  free(w.recs);
  return 0;
}
