/* Block builder and reader: round trips of many keys at restart intervals 1, 2 and 16,
 * forward and backward iteration, seeks that hit, miss and run off either end, an empty
 * block, a malformed restart array (ECORRUPT from block_create) and malformed entries
 * (iterator invalid with ECORRUPT), blocks over borrowed memory. Randomized: prints its seed; set MAYFLY_TEST_SEED to
 * replay. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mayfly.h"
#include "table/block.h"
#include "table/block_builder.h"
#include "util/coding.h"
#include "util/ikey.h"
#include "util/random.h"

static mf_random rnd;

static uint64_t test_seed(void) {
  const char *env = getenv("MAYFLY_TEST_SEED");
  uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
  printf("test_block: seed %llu (replay with MAYFLY_TEST_SEED)\n", (unsigned long long)seed);
  return seed;
}

/* Sorted, distinct keys "user%08u" (even numbers only, so odd ones are misses) with values
 * of random length. */
#define NKEYS 3000
static char keys[NKEYS][16];
static char *values[NKEYS];
static size_t value_lens[NKEYS];

static void make_data(void) {
  for (int i = 0; i < NKEYS; i++) {
    snprintf(keys[i], sizeof keys[i], "user%08u", 2u * (unsigned)i);
    value_lens[i] = mf_random_uniform(&rnd, 200);
    values[i] = malloc(value_lens[i] + 1);
    for (size_t j = 0; j < value_lens[i]; j++) values[i][j] = (char)('a' + mf_random_uniform(&rnd, 26));
  }
}

static void free_data(void) {
  for (int i = 0; i < NKEYS; i++) free(values[i]);
}

static mf_slice key_at(int i) { return mf_slice_make(keys[i], strlen(keys[i])); }
static mf_slice value_at(int i) { return mf_slice_make(values[i], value_lens[i]); }

/* Finishes b and returns a block over a malloc'd copy of its bytes. */
static block *finish_block(block_builder *bb) {
  mf_slice s;
  size_t estimate = block_builder_size_estimate(bb);
  assert_int_equal(block_builder_finish(bb, &s), MAYFLY_OK);
  assert_int_equal(s.len, estimate);
  char *copy = malloc(s.len);
  memcpy(copy, s.data, s.len);
  block *b;
  assert_int_equal(block_create(copy, s.len, "test", 0, &b), MAYFLY_OK);
  assert_int_equal(block_size(b), s.len);
  return b;
}

static void assert_at(mf_iter *it, int i) {
  assert_true(iter_valid(it));
  assert_true(mf_slice_equal(iter_key(it), key_at(i)));
  assert_true(mf_slice_equal(iter_value(it), value_at(i)));
}

static void round_trip(int interval) {
  block_builder bb;
  block_builder_init(&bb, interval);
  assert_true(block_builder_empty(&bb));
  for (int i = 0; i < NKEYS; i++) assert_int_equal(block_builder_add(&bb, key_at(i), value_at(i)), MAYFLY_OK);
  assert_false(block_builder_empty(&bb));
  block *b = finish_block(&bb);
  mf_iter *it = block_iter_create(b, bytewise_compare);
  assert_non_null(it);

  int i = 0;
  for (iter_seek_to_first(it); iter_valid(it); iter_next(it)) assert_at(it, i++);
  assert_int_equal(i, NKEYS);
  assert_int_equal(iter_status(it), MAYFLY_OK);

  i = NKEYS - 1;
  for (iter_seek_to_last(it); iter_valid(it); iter_prev(it)) assert_at(it, i--);
  assert_int_equal(i, -1);
  assert_int_equal(iter_status(it), MAYFLY_OK);

  char probe[16];
  for (int n = 0; n < 2000; n++) {
    unsigned target = (unsigned)mf_random_uniform(&rnd, 2 * NKEYS + 2);
    snprintf(probe, sizeof probe, "user%08u", target);
    iter_seek(it, mf_slice_cstr(probe));
    int expect = (int)((target + 1) / 2); /* first even number >= target, as an index */
    if (expect >= NKEYS) {
      assert_false(iter_valid(it));
      continue;
    }
    assert_at(it, expect);
    /* Mixed directions after a seek. */
    if (expect > 0) {
      iter_prev(it);
      assert_at(it, expect - 1);
      iter_next(it);
    }
    iter_next(it);
    if (expect + 1 < NKEYS) assert_at(it, expect + 1);
    else assert_false(iter_valid(it));
  }
  iter_seek(it, mf_slice_cstr("a")); /* before everything */
  assert_at(it, 0);
  iter_prev(it);
  assert_false(iter_valid(it));
  iter_seek(it, mf_slice_cstr("z")); /* after everything */
  assert_false(iter_valid(it));
  assert_int_equal(iter_status(it), MAYFLY_OK);
  iter_destroy(it);
  block_destroy(b);

  /* The builder is reusable after reset. */
  block_builder_reset(&bb);
  assert_true(block_builder_empty(&bb));
  assert_int_equal(block_builder_add(&bb, key_at(5), value_at(5)), MAYFLY_OK);
  b = finish_block(&bb);
  it = block_iter_create(b, bytewise_compare);
  iter_seek_to_first(it);
  assert_at(it, 5);
  iter_next(it);
  assert_false(iter_valid(it));
  iter_destroy(it);
  block_destroy(b);
  block_builder_free(&bb);
}

static void test_round_trip_interval_1(void **state) { (void)state; round_trip(1); }
static void test_round_trip_interval_2(void **state) { (void)state; round_trip(2); }
static void test_round_trip_interval_16(void **state) { (void)state; round_trip(16); }

/* Internal keys with several versions per user key, compared with ikey_compare: seeking to
 * (key, seq) lands on the newest version at or below seq. */
static void test_internal_keys(void **state) {
  (void)state;
  block_builder bb;
  block_builder_init(&bb, 4);
  mf_buf k = MF_BUF_INIT;
  char user[16];
  for (int u = 0; u < 100; u++) {
    snprintf(user, sizeof user, "k%03d", u);
    for (uint64_t seq = 50; seq >= 10; seq -= 10) { /* newest first */
      mf_buf_clear(&k);
      assert_int_equal(ikey_append(&k, mf_slice_cstr(user), seq, MF_TYPE_VALUE), MAYFLY_OK);
      assert_int_equal(block_builder_add(&bb, mf_buf_slice(&k), mf_slice_cstr(user)), MAYFLY_OK);
    }
  }
  block *b = finish_block(&bb);
  mf_iter *it = block_iter_create(b, ikey_compare);
  mf_buf_clear(&k);
  ikey_append(&k, mf_slice_cstr("k042"), 35, MF_TYPE_FOR_SEEK);
  iter_seek(it, mf_buf_slice(&k));
  mf_parsed_ikey p;
  assert_true(iter_valid(it));
  assert_true(ikey_parse(iter_key(it), &p));
  assert_true(mf_slice_equal(p.user_key, mf_slice_cstr("k042")));
  assert_int_equal(p.seq, 30);
  mf_buf_clear(&k);
  ikey_append(&k, mf_slice_cstr("k042"), 5, MF_TYPE_FOR_SEEK); /* below every version */
  iter_seek(it, mf_buf_slice(&k));
  assert_true(ikey_parse(iter_key(it), &p));
  assert_true(mf_slice_equal(p.user_key, mf_slice_cstr("k043")));
  assert_int_equal(p.seq, 50);
  iter_destroy(it);
  block_destroy(b);
  mf_buf_free(&k);
  block_builder_free(&bb);
}

/* A key shorter than the minimum the table sets (an internal key's 8-byte trailer) is
 * corruption in every direction and on seek; without the minimum the same block reads fine. */
static void test_min_key_len(void **state) {
  (void)state;
  block_builder bb;
  block_builder_init(&bb, 16);
  assert_int_equal(block_builder_add(&bb, mf_slice_cstr("aaaaaaaaaaaa"), mf_slice_cstr("1")),
                   MAYFLY_OK);
  assert_int_equal(block_builder_add(&bb, mf_slice_cstr("aaab"), mf_slice_cstr("2")), MAYFLY_OK);
  assert_int_equal(block_builder_add(&bb, mf_slice_cstr("aaac0000000"), mf_slice_cstr("3")),
                   MAYFLY_OK);
  block *b = finish_block(&bb);

  mf_iter *it = block_iter_create(b, bytewise_compare);
  int n = 0;
  for (iter_seek_to_first(it); iter_valid(it); iter_next(it)) n++;
  assert_int_equal(n, 3);
  assert_int_equal(iter_status(it), MAYFLY_OK);
  iter_destroy(it);

  for (int mode = 0; mode < 3; mode++) {
    it = block_iter_create(b, bytewise_compare);
    block_iter_set_min_key_len(it, 8);
    if (mode == 0) {
      iter_seek_to_first(it);
      assert_true(iter_valid(it));
      assert_int_equal(iter_key(it).len, 12);
      iter_next(it); /* "aaab": 4 bytes */
    } else if (mode == 1) {
      iter_seek_to_last(it); /* walks through "aaab" on the way */
    } else {
      iter_seek(it, mf_slice_cstr("aaab"));
    }
    assert_false(iter_valid(it));
    assert_int_equal(iter_status(it), MAYFLY_ECORRUPT);
    iter_next(it); /* sticky */
    assert_false(iter_valid(it));
    iter_destroy(it);
  }
  block_destroy(b);
  block_builder_free(&bb);
}

static void test_empty_block(void **state) {
  (void)state;
  block_builder bb;
  block_builder_init(&bb, 16);
  block *b = finish_block(&bb);
  assert_int_equal(block_size(b), 4);
  mf_iter *it = block_iter_create(b, bytewise_compare);
  iter_seek_to_first(it);
  assert_false(iter_valid(it));
  iter_seek_to_last(it);
  assert_false(iter_valid(it));
  iter_seek(it, mf_slice_cstr("x"));
  assert_false(iter_valid(it));
  assert_int_equal(iter_status(it), MAYFLY_OK);
  iter_destroy(it);
  block_destroy(b);
  block_builder_free(&bb);
}

/* Builds a 3-entry block at interval 1 and returns a malloc'd copy of its bytes. */
static char *small_block(size_t *len) {
  block_builder bb;
  block_builder_init(&bb, 1);
  for (int i = 0; i < 3; i++) block_builder_add(&bb, key_at(i), value_at(i));
  mf_slice s;
  block_builder_finish(&bb, &s);
  char *copy = malloc(s.len);
  memcpy(copy, s.data, s.len);
  *len = s.len;
  block_builder_free(&bb);
  return copy;
}

static void expect_create_corrupt(char *data, size_t len) {
  block *b = (block *)1;
  assert_int_equal(block_create(data, len, "test", 0, &b), MAYFLY_ECORRUPT); /* frees data */
  assert_null(b);
}

static void test_corrupt_restart_array(void **state) {
  (void)state;
  size_t len;
  char *d;
  /* Too short to hold a count. */
  d = malloc(3);
  memset(d, 0, 3);
  expect_create_corrupt(d, 3);
  /* Count larger than the block. */
  d = small_block(&len);
  encode_fixed32(d + len - 4, 1000);
  expect_create_corrupt(d, len);
  /* Count 0 although entries exist. */
  d = small_block(&len);
  encode_fixed32(d + len - 4, 0);
  expect_create_corrupt(d, len);
  /* First restart not 0. */
  d = small_block(&len);
  encode_fixed32(d + len - 16, 1);
  expect_create_corrupt(d, len);
  /* Restarts not increasing. */
  d = small_block(&len);
  encode_fixed32(d + len - 8, decode_fixed32(d + len - 12));
  expect_create_corrupt(d, len);
  /* Restart pointing into the restart array. */
  d = small_block(&len);
  encode_fixed32(d + len - 8, (uint32_t)(len - 16));
  expect_create_corrupt(d, len);
}

/* Blocks over borrowed memory (what a mapped table uses): the same entries through
 * block_create_borrowed and block_iter_create_borrowed, the same checks of the restart array,
 * and the memory left to its owner (freed here once, after everything that read it: a block
 * that freed it too would be an ASan double free). */
static void test_borrowed(void **state) {
  (void)state;
  block_builder bb;
  block_builder_init(&bb, 16);
  for (int i = 0; i < NKEYS; i++) assert_int_equal(block_builder_add(&bb, key_at(i), value_at(i)), MAYFLY_OK);
  mf_slice s;
  assert_int_equal(block_builder_finish(&bb, &s), MAYFLY_OK);
  char *contents = malloc(s.len);
  memcpy(contents, s.data, s.len);
  size_t len = s.len;
  block_builder_free(&bb);

  block *b;
  assert_int_equal(block_create_borrowed(contents, len, "test", 0, &b), MAYFLY_OK);
  assert_int_equal(block_size(b), len);
  mf_iter *it = block_iter_create(b, bytewise_compare);
  int i = 0;
  for (iter_seek_to_first(it); iter_valid(it); iter_next(it)) assert_at(it, i++);
  assert_int_equal(i, NKEYS);
  iter_destroy(it);
  block_destroy(b);

  assert_int_equal(block_iter_create_borrowed(contents, len, "test", 0, bytewise_compare, &it),
                   MAYFLY_OK);
  i = NKEYS - 1;
  for (iter_seek_to_last(it); iter_valid(it); iter_prev(it)) assert_at(it, i--);
  assert_int_equal(i, -1);
  iter_seek(it, key_at(NKEYS / 2));
  assert_at(it, NKEYS / 2);
  assert_int_equal(iter_status(it), MAYFLY_OK);
  iter_destroy(it);

  /* A damaged restart count: both refuse, neither frees. */
  encode_fixed32(contents + len - 4, 100000);
  b = (block *)1;
  assert_int_equal(block_create_borrowed(contents, len, "test", 0, &b), MAYFLY_ECORRUPT);
  assert_null(b);
  it = (mf_iter *)1;
  assert_int_equal(block_iter_create_borrowed(contents, len, "test", 0, bytewise_compare, &it),
                   MAYFLY_ECORRUPT);
  assert_null(it);
  free(contents);
}

/* Damaged entries behind a valid restart array: the iterator must stop with ECORRUPT,
 * stay invalid, and never read outside the block (ASan). */
static void test_corrupt_entries(void **state) {
  (void)state;
  size_t len;
  char *d = small_block(&len);
  /* Entry 1 (a restart point) claiming shared bytes it cannot have. */
  uint32_t second = decode_fixed32(d + len - 12);
  d[second] = 3;
  block *b;
  assert_int_equal(block_create(d, len, "test", 0, &b), MAYFLY_OK);
  mf_iter *it = block_iter_create(b, bytewise_compare);
  iter_seek_to_first(it);
  assert_at(it, 0);
  iter_next(it);
  assert_false(iter_valid(it));
  assert_int_equal(iter_status(it), MAYFLY_ECORRUPT);
  iter_seek_to_first(it); /* sticky */
  assert_false(iter_valid(it));
  assert_int_equal(iter_status(it), MAYFLY_ECORRUPT);
  iter_destroy(it);
  /* The same damage found by a seek's binary search. */
  it = block_iter_create(b, bytewise_compare);
  iter_seek(it, key_at(2));
  assert_false(iter_valid(it));
  assert_int_equal(iter_status(it), MAYFLY_ECORRUPT);
  iter_destroy(it);
  block_destroy(b);

  /* Random damage to the entry bytes: whatever happens, no crash, and an iterator that
   * reports OK has produced well-formed entries. */
  for (int round = 0; round < 500; round++) {
    d = small_block(&len);
    uint32_t entries_end = (uint32_t)(len - 4 - 4 * 3);
    for (int f = 0; f < 3; f++) d[mf_random_uniform(&rnd, entries_end)] ^= (char)(1u << mf_random_uniform(&rnd, 8));
    assert_int_equal(block_create(d, len, "test", 0, &b), MAYFLY_OK);
    it = block_iter_create(b, bytewise_compare);
    int n = 0;
    for (iter_seek_to_first(it); iter_valid(it) && n < 10; iter_next(it)) n++;
    assert_true(iter_status(it) == MAYFLY_OK || iter_status(it) == MAYFLY_ECORRUPT);
    iter_destroy(it);
    it = block_iter_create(b, bytewise_compare);
    for (iter_seek_to_last(it); iter_valid(it) && n < 20; iter_prev(it)) n++;
    iter_seek(it, key_at(1));
    iter_destroy(it);
    block_destroy(b);
  }
}

int main(void) {
  mf_random_seed(&rnd, test_seed());
  make_data();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip_interval_1),  cmocka_unit_test(test_round_trip_interval_2),
      cmocka_unit_test(test_round_trip_interval_16), cmocka_unit_test(test_internal_keys),
      cmocka_unit_test(test_min_key_len),
      cmocka_unit_test(test_empty_block),            cmocka_unit_test(test_corrupt_restart_array),
      cmocka_unit_test(test_corrupt_entries),
      cmocka_unit_test(test_borrowed),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  free_data();
  return rc;
}
