/* Fuzz target: the block reader (table/block.h): block_create and its iterator.
 *
 * Blocks reach the reader only after their checksum passed, so the reader's own checks are
 * the second line of defence against a writer bug; it must never read outside the block and
 * never return an entry the bytes do not hold. The target checks the iterator against a
 * small reference decoder written from the format grammar (table/block_builder.h):
 *
 * 1. Raw: the input is a block. block_create gives MAYFLY_OK, MAYFLY_ECORRUPT or ENOMEM. If it
 *    accepts the block, forward iteration must produce exactly the reference decoder's
 *    entries (keys, values and the position of each value in the block), ending with
 *    MAYFLY_OK if the reference decodes everything, else with MAYFLY_ECORRUPT after the
 *    same entries. Backward iteration and seeks must terminate and stay inside the block
 *    whatever the bytes; when the block is well formed (every restart point is the start
 *    of an entry) backward iteration must give the forward entries reversed, and when in
 *    addition the keys are strictly increasing, seek(target) must land on the first entry
 *    >= target, and any walk of next/prev from there must match the reference positions.
 *
 * 2. Built: sorted keys derived from the input go through block_builder (restart interval
 *    from the input); the result must be accepted and read back exactly, by all of the
 *    above. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "table/block.h"
#include "table/block_builder.h"
#include "util/coding.h"
#include "util/ikey.h"

typedef struct ref_entry {
  uint32_t offset; /* of the entry header */
  mf_buf key;
  uint32_t value_offset, value_len;
} ref_entry;

typedef struct ref_block {
  ref_entry *e;
  size_t n;
  int corrupt; /* decoding stopped at a malformed entry */
  int aligned; /* complete, and every restart point is an entry start */
  int sorted;  /* strictly increasing keys (bytewise) */
} ref_block;

static void ref_free(ref_block *r) {
  for (size_t i = 0; i < r->n; i++) mf_buf_free(&r->e[i].key);
  free(r->e);
}

/* The reference decoder. REQUIRES: block_create accepted data (so the restart array is
 * sane: it only re-derives where it starts). */
static void ref_decode(const char *data, size_t len, ref_block *r) {
  memset(r, 0, sizeof *r);
  uint32_t num = decode_fixed32(data + len - 4);
  uint32_t limit = (uint32_t)(len - 4 - 4 * (size_t)num);
  r->e = calloc(limit / 3 + 1, sizeof *r->e);
  if (!r->e) abort();
  const mf_buf empty = MF_BUF_INIT;
  uint32_t off = 0;
  size_t next_restart = 0;
  while (off < limit) {
    uint32_t shared, non_shared, vlen;
    const char *p = data + off, *end = data + limit;
    int is_restart = 0;
    while (next_restart < num && decode_fixed32(data + limit + 4 * next_restart) < off)
      next_restart++;
    if (next_restart < num && decode_fixed32(data + limit + 4 * next_restart) == off)
      is_restart = 1;
    const mf_buf *prev = r->n ? &r->e[r->n - 1].key : &empty;
    if (!(p = decode_varint32(p, end, &shared)) || !(p = decode_varint32(p, end, &non_shared)) ||
        !(p = decode_varint32(p, end, &vlen)) ||
        (uint64_t)non_shared + vlen > (uint64_t)(end - p) || (is_restart && shared > 0) ||
        shared > prev->len) {
      r->corrupt = 1;
      break;
    }
    ref_entry *e = &r->e[r->n];
    e->offset = off;
    e->key = (mf_buf)MF_BUF_INIT;
    if (mf_buf_reserve(&e->key, shared + non_shared + 1)) abort();
    if (shared) memcpy(e->key.data, prev->data, shared);
    memcpy(e->key.data + shared, p, non_shared);
    e->key.len = shared + non_shared;
    e->value_offset = (uint32_t)(p + non_shared - data);
    e->value_len = vlen;
    r->n++;
    off = e->value_offset + vlen;
  }
  r->aligned = !r->corrupt;
  for (uint32_t i = 0; i < num && r->aligned; i++) {
    uint32_t rp = decode_fixed32(data + limit + 4 * i);
    size_t lo = 0, hi = r->n; /* entries are in offset order: binary search */
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (r->e[mid].offset < rp) lo = mid + 1; else hi = mid;
    }
    r->aligned = lo < r->n && r->e[lo].offset == rp;
  }
  r->sorted = 1;
  for (size_t i = 1; i < r->n && r->sorted; i++)
    r->sorted = mf_slice_compare(mf_buf_slice(&r->e[i - 1].key), mf_buf_slice(&r->e[i].key)) < 0;
}

static void expect_at(const mf_iter *it, const ref_block *r, size_t i, const char *data,
                      const char *what) {
  FUZZ_CHECK(iter_valid(it), "%s: iterator invalid, expected entry %zu of %zu", what, i, r->n);
  mf_slice k = iter_key(it), v = iter_value(it);
  const ref_entry *e = &r->e[i];
  FUZZ_CHECK(mf_slice_equal(k, mf_buf_slice(&e->key)), "%s: entry %zu has the wrong key", what,
             i);
  FUZZ_CHECK(v.len == e->value_len && (v.len == 0 || v.data == data + e->value_offset),
             "%s: entry %zu has the wrong value", what, i);
}

/* Index of the first reference entry >= target (r->n if none). REQUIRES: r->sorted. */
static size_t ref_lower_bound(const ref_block *r, mf_slice target) {
  size_t lo = 0, hi = r->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (mf_slice_compare(mf_buf_slice(&r->e[mid].key), target) < 0) lo = mid + 1; else hi = mid;
  }
  return lo;
}

static void check_block(const char *data, size_t len, block *b, fuzz_in *moves) {
  ref_block r;
  ref_decode(data, len, &r);
  mf_iter *it = block_iter_create(b, bytewise_compare);
  if (!it) goto out;

  /* Forward: exactly the reference entries. */
  size_t i = 0;
  for (iter_seek_to_first(it); iter_valid(it); iter_next(it), i++) {
    FUZZ_CHECK(i < r.n, "forward iteration returned more than the %zu entries", r.n);
    expect_at(it, &r, i, data, "forward");
  }
  FUZZ_CHECK(i == r.n, "forward iteration stopped after %zu of %zu entries", i, r.n);
  int st = iter_status(it);
  FUZZ_CHECK(st == (r.corrupt ? MAYFLY_ECORRUPT : MAYFLY_OK),
             "forward iteration ended with status %d, reference %s", st,
             r.corrupt ? "corrupt" : "ok");
  iter_destroy(it);

  /* Backward: always terminates inside the block; exact when the block is well formed. */
  if (!(it = block_iter_create(b, bytewise_compare))) goto out;
  i = 0;
  for (iter_seek_to_last(it); iter_valid(it); iter_prev(it), i++) {
    FUZZ_CHECK(i <= len, "backward iteration does not terminate");
    mf_slice v = iter_value(it);
    FUZZ_CHECK(v.len == 0 || (v.data >= data && v.data + v.len <= data + len),
               "backward iteration returned a value outside the block");
    if (r.aligned) expect_at(it, &r, r.n - 1 - i, data, "backward");
  }
  st = iter_status(it);
  FUZZ_CHECK(st == MAYFLY_OK || st == MAYFLY_ECORRUPT, "backward status %d", st);
  if (r.aligned)
    FUZZ_CHECK(i == r.n && st == MAYFLY_OK, "backward iteration gave %zu of %zu entries (%d)",
               i, r.n, st);
  iter_destroy(it);

  /* Seeks to every key, just past it, and to targets from the input, each followed by a
   * walk of next/prev steps. */
  if (!(it = block_iter_create(b, bytewise_compare))) goto out;
  size_t targets = r.n * 2 + 4;
  if (targets > 64) targets = 64;
  mf_buf target = MF_BUF_INIT;
  for (size_t t = 0; t < targets; t++) {
    mf_buf_clear(&target);
    if (t / 2 < r.n && t < targets - 4) {
      mf_buf_append(&target, r.e[t / 2].key.data, r.e[t / 2].key.len);
      if (t & 1) mf_buf_append(&target, "", 1);
    } else {
      mf_slice s = fuzz_take(moves, fuzz_u8(moves) % 12);
      mf_buf_append(&target, s.data, s.len);
    }
    iter_seek(it, mf_buf_slice(&target));
    if (iter_valid(it))
      FUZZ_CHECK(mf_slice_compare(iter_key(it), mf_buf_slice(&target)) >= 0,
                 "seek landed before its target");
    st = iter_status(it);
    FUZZ_CHECK(st == MAYFLY_OK || st == MAYFLY_ECORRUPT, "seek status %d", st);
    if (!(r.aligned && r.sorted)) {
      if (st) break; /* errors are sticky; nothing more to learn */
      continue;
    }
    size_t pos = ref_lower_bound(&r, mf_buf_slice(&target));
    FUZZ_CHECK(st == MAYFLY_OK, "seek in a well-formed block failed: %d", st);
    if (pos == r.n) {
      FUZZ_CHECK(!iter_valid(it), "seek past the last key is valid");
      continue;
    }
    expect_at(it, &r, pos, data, "seek");
    uint8_t steps = fuzz_u8(moves);
    for (int s = 0; s < 8; s++) {
      if ((steps >> s) & 1) {
        iter_next(it);
        if (++pos == r.n) {
          FUZZ_CHECK(!iter_valid(it), "next past the last entry is valid");
          break;
        }
      } else {
        iter_prev(it);
        if (pos == 0) {
          FUZZ_CHECK(!iter_valid(it), "prev before the first entry is valid");
          break;
        }
        pos--;
      }
      expect_at(it, &r, pos, data, "walk");
    }
    FUZZ_CHECK(iter_status(it) == MAYFLY_OK, "walk failed: %d", iter_status(it));
  }
  mf_buf_free(&target);
  iter_destroy(it);
out:
  ref_free(&r);
}

/* block_create on a private copy of bytes; checks the block if it is accepted. */
static void run_block(mf_slice bytes, fuzz_in *moves, int must_accept) {
  char *copy = malloc(bytes.len ? bytes.len : 1);
  if (!copy) return;
  memcpy(copy, bytes.data, bytes.len);
  block *b = NULL;
  int rc = block_create(copy, bytes.len, "fuzz", 0, &b);
  if (rc != MAYFLY_OK) {
    FUZZ_CHECK(rc == MAYFLY_ECORRUPT || rc == MAYFLY_ENOMEM, "block_create returned %d", rc);
    FUZZ_CHECK(!must_accept || rc == MAYFLY_ENOMEM, "a built block was rejected");
    return;
  }
  FUZZ_CHECK(block_size(b) == bytes.len, "block_size %zu, expected %zu", block_size(b),
             bytes.len);
  check_block(copy, bytes.len, b, moves);
  block_destroy(b);
}

static int cmp_bufs(const void *a, const void *b) {
  return mf_slice_compare(mf_buf_slice(a), mf_buf_slice(b));
}

static void run_built(fuzz_in *in) {
  int interval = 1 + fuzz_u8(in) % 16;
  size_t n = fuzz_u8(in);
  mf_buf *keys = calloc(n + 1, sizeof *keys);
  if (!keys) return;
  for (size_t i = 0; i < n; i++) {
    mf_slice s = fuzz_take(in, fuzz_u8(in) % 24);
    mf_buf_append(&keys[i], s.data, s.len);
  }
  qsort(keys, n, sizeof *keys, cmp_bufs);
  block_builder bb;
  block_builder_init(&bb, interval);
  for (size_t i = 0; i < n; i++) {
    if (i && mf_slice_equal(mf_buf_slice(&keys[i - 1]), mf_buf_slice(&keys[i]))) continue;
    /* The value: the key reversed, so values differ and have various lengths. */
    char value[32];
    for (size_t j = 0; j < keys[i].len; j++) value[j] = keys[i].data[keys[i].len - 1 - j];
    if (block_builder_add(&bb, mf_buf_slice(&keys[i]), mf_slice_make(value, keys[i].len)))
      goto out;
  }
  mf_slice contents;
  if (block_builder_finish(&bb, &contents) == MAYFLY_OK) {
    run_block(contents, in, 1);
  }
out:
  block_builder_free(&bb);
  for (size_t i = 0; i < n; i++) mf_buf_free(&keys[i]);
  free(keys);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_in moves = fuzz_in_make(data, size); /* seek targets and walks read the input too */
  run_block(mf_slice_make(data, size), &moves, 0);
  fuzz_in in = fuzz_in_make(data, size);
  run_built(&in);
  return 0;
}
