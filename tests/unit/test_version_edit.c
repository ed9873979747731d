/* Version edit encoding: round trips (tables and blob files), exact bytes of the blob
 * fields, and a decoder that survives any damage.
 * Randomized tests print their seed; set MAYFLY_TEST_SEED to replay one. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mayfly.h"
#include "util/coding.h"
#include "util/error.h"
#include "util/ikey.h"
#include "util/random.h"
#include "version/version_edit.h"

static uint64_t test_seed(void) {
  const char *s = getenv("MAYFLY_TEST_SEED");
  uint64_t seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL);
  printf("seed %" PRIu64 " (replay with MAYFLY_TEST_SEED)\n", seed);
  return seed;
}

/* Appends an internal key built from a C string to b and returns its slice of b's memory
 * (valid until b changes). */
static mf_slice make_ikey(mf_buf *b, const char *user_key, uint64_t seq, int type) {
  mf_buf_clear(b);
  assert_int_equal(ikey_append(b, mf_slice_cstr(user_key), seq, type), MAYFLY_OK);
  return mf_buf_slice(b);
}

/* An edit using every field, several times where allowed. */
static void fill_full_edit(version_edit *e) {
  mf_buf a = MF_BUF_INIT, b = MF_BUF_INIT;
  version_edit_set_log_number(e, 17);
  version_edit_set_next_file_number(e, UINT64_C(1) << 40);
  version_edit_set_last_sequence(e, MF_MAX_SEQ);
  assert_int_equal(version_edit_set_compact_pointer(e, 1, make_ikey(&a, "cp1", 5, MF_TYPE_VALUE)),
                   MAYFLY_OK);
  assert_int_equal(version_edit_set_compact_pointer(e, 6, make_ikey(&a, "", 0, MF_TYPE_DELETE)),
                   MAYFLY_OK);
  assert_int_equal(version_edit_delete_file(e, 0, 3), MAYFLY_OK);
  assert_int_equal(version_edit_delete_file(e, 6, UINT64_MAX), MAYFLY_OK);
  for (int i = 0; i < 3; i++) {
    char lo[16], hi[16];
    snprintf(lo, sizeof lo, "a%d", i);
    snprintf(hi, sizeof hi, "z%d", i);
    mf_slice s = make_ikey(&a, lo, 100 + (uint64_t)i, MF_TYPE_VALUE);
    mf_slice l = make_ikey(&b, hi, 200 + (uint64_t)i, MF_TYPE_BLOB_INDEX);
    assert_int_equal(version_edit_add_file(e, i * 2, 50 + (uint64_t)i, 4096 * (uint64_t)(i + 1),
                                           10 * (uint64_t)i, s, l, 100 + (uint64_t)i,
                                           200 + (uint64_t)i, i == 0 ? 0 : 40 + (uint64_t)i),
                     MAYFLY_OK);
  }
  assert_int_equal(version_edit_add_blob_file(e, 41, 1000, UINT64_C(1) << 35, 0xdeadbeefu),
                   MAYFLY_OK);
  assert_int_equal(version_edit_add_blob_file(e, UINT64_MAX, 1, 0, 0), MAYFLY_OK);
  assert_int_equal(version_edit_add_blob_garbage(e, 41, 10, 4096), MAYFLY_OK);
  assert_int_equal(version_edit_add_blob_garbage(e, 41, 0, 0), MAYFLY_OK); /* repeats allowed */
  mf_buf_free(&a);
  mf_buf_free(&b);
}

static void assert_edits_equal(const version_edit *x, const version_edit *y) {
  assert_int_equal(x->has_log_number, y->has_log_number);
  assert_int_equal(x->has_next_file_number, y->has_next_file_number);
  assert_int_equal(x->has_last_sequence, y->has_last_sequence);
  if (x->has_log_number) assert_true(x->log_number == y->log_number);
  if (x->has_next_file_number) assert_true(x->next_file_number == y->next_file_number);
  if (x->has_last_sequence) assert_true(x->last_sequence == y->last_sequence);
  assert_int_equal(x->num_compact_pointers, y->num_compact_pointers);
  for (int i = 0; i < x->num_compact_pointers; i++) {
    assert_int_equal(x->compact_pointers[i].level, y->compact_pointers[i].level);
    assert_true(mf_slice_equal(mf_buf_slice(&x->compact_pointers[i].ikey),
                               mf_buf_slice(&y->compact_pointers[i].ikey)));
  }
  assert_int_equal(x->num_deleted_files, y->num_deleted_files);
  for (int i = 0; i < x->num_deleted_files; i++) {
    assert_int_equal(x->deleted_files[i].level, y->deleted_files[i].level);
    assert_true(x->deleted_files[i].number == y->deleted_files[i].number);
  }
  assert_int_equal(x->num_new_files, y->num_new_files);
  for (int i = 0; i < x->num_new_files; i++) {
    const file_meta *f = &x->new_files[i].meta, *g = &y->new_files[i].meta;
    assert_int_equal(x->new_files[i].level, y->new_files[i].level);
    assert_true(f->number == g->number);
    assert_true(f->file_size == g->file_size);
    assert_true(f->num_entries == g->num_entries);
    assert_true(f->smallest_seq == g->smallest_seq);
    assert_true(f->largest_seq == g->largest_seq);
    assert_true(mf_slice_equal(mf_buf_slice(&f->smallest), mf_buf_slice(&g->smallest)));
    assert_true(mf_slice_equal(mf_buf_slice(&f->largest), mf_buf_slice(&g->largest)));
    assert_true(f->oldest_blob_file == g->oldest_blob_file);
  }
  assert_int_equal(x->num_blob_files, y->num_blob_files);
  for (int i = 0; i < x->num_blob_files; i++) {
    const version_edit_blob_file *a = &x->blob_files[i], *b = &y->blob_files[i];
    assert_true(a->number == b->number);
    assert_true(a->total_count == b->total_count);
    assert_true(a->total_bytes == b->total_bytes);
    assert_true(a->checksum == b->checksum);
  }
  assert_int_equal(x->num_blob_garbage, y->num_blob_garbage);
  for (int i = 0; i < x->num_blob_garbage; i++) {
    const version_edit_blob_garbage *a = &x->blob_garbage[i], *b = &y->blob_garbage[i];
    assert_true(a->number == b->number);
    assert_true(a->garbage_count == b->garbage_count);
    assert_true(a->garbage_bytes == b->garbage_bytes);
  }
}

static void test_round_trip_all_fields(void **state) {
  version_edit e, d;
  version_edit_init(&e);
  version_edit_init(&d);
  fill_full_edit(&e);
  mf_buf enc = MF_BUF_INIT, again = MF_BUF_INIT;
  assert_int_equal(version_edit_encode(&e, &enc), MAYFLY_OK);
  assert_int_equal(version_edit_decode(&d, mf_buf_slice(&enc)), MAYFLY_OK);
  assert_edits_equal(&e, &d);
  assert_int_equal(version_edit_encode(&d, &again), MAYFLY_OK);
  assert_true(mf_slice_equal(mf_buf_slice(&enc), mf_buf_slice(&again)));

  /* Decoding replaces previous contents rather than appending to them. */
  assert_int_equal(version_edit_decode(&d, mf_buf_slice(&enc)), MAYFLY_OK);
  assert_edits_equal(&e, &d);

  mf_buf dump = MF_BUF_INIT;
  assert_int_equal(version_edit_debug_string(&d, &dump), MAYFLY_OK);
  assert_int_equal(mf_buf_append(&dump, "", 1), MAYFLY_OK);
  assert_non_null(strstr(dump.data, "new_file: L4 #52"));
  assert_non_null(strstr(dump.data, "blobs #42..#42"));
  assert_non_null(strstr(dump.data, "log_number: 17"));
  assert_non_null(strstr(dump.data, "blob_file: #41 records 1000 bytes 34359738368 checksum "
                                    "0xdeadbeef"));
  assert_non_null(strstr(dump.data, "blob_garbage: #41 records 10 bytes 4096"));
  const char *line = strstr(dump.data, "new_file: L0 #50");
  assert_non_null(line);
  const char *oldest = strstr(line, "oldest_blob"), *eol = strchr(line, '\n');
  assert_true(eol && (!oldest || oldest > eol)); /* 0 means none: not printed */

  mf_buf_free(&dump);
  mf_buf_free(&enc);
  mf_buf_free(&again);
  version_edit_free(&e);
  version_edit_free(&d);
}

static void test_empty_edit(void **state) {
  version_edit e;
  version_edit_init(&e);
  mf_buf enc = MF_BUF_INIT;
  assert_int_equal(version_edit_encode(&e, &enc), MAYFLY_OK);
  assert_int_equal((int)enc.len, 0);
  version_edit_set_log_number(&e, 9);
  assert_int_equal(version_edit_decode(&e, mf_buf_slice(&enc)), MAYFLY_OK);
  assert_false(e.has_log_number);
  mf_buf_free(&enc);
  version_edit_free(&e);
}

/* Every prefix either decodes (it ends on a field boundary, and then re-encodes to itself) or
 * is rejected as corrupt. */
static void test_truncation_at_every_offset(void **state) {
  version_edit e, d;
  version_edit_init(&e);
  version_edit_init(&d);
  fill_full_edit(&e);
  mf_buf enc = MF_BUF_INIT, again = MF_BUF_INIT;
  assert_int_equal(version_edit_encode(&e, &enc), MAYFLY_OK);
  int boundaries = 0;
  for (size_t n = 0; n < enc.len; n++) {
    char *copy = malloc(n ? n : 1); /* exact size, so ASan catches any overread */
    memcpy(copy, enc.data, n);
    int rc = version_edit_decode(&d, mf_slice_make(copy, n));
    if (rc == MAYFLY_OK) {
      boundaries++;
      mf_buf_clear(&again);
      assert_int_equal(version_edit_encode(&d, &again), MAYFLY_OK);
      assert_true(mf_slice_equal(mf_buf_slice(&again), mf_slice_make(enc.data, n)));
    } else {
      assert_int_equal(rc, MAYFLY_ECORRUPT);
      assert_non_null(strstr(mf_error_message(), "record offset"));
      assert_int_equal(d.num_new_files, 0); /* left empty */
    }
    free(copy);
  }
  /* n = 0 plus one boundary after each of the 14 fields but the last. */
  assert_int_equal(boundaries, 14);
  mf_buf_free(&enc);
  mf_buf_free(&again);
  version_edit_free(&e);
  version_edit_free(&d);
}

static void test_random_damage(void **state) {
  mf_random rnd;
  mf_random_seed(&rnd, test_seed());
  version_edit e, d;
  version_edit_init(&e);
  version_edit_init(&d);
  fill_full_edit(&e);
  mf_buf enc = MF_BUF_INIT;
  assert_int_equal(version_edit_encode(&e, &enc), MAYFLY_OK);
  int ok = 0, corrupt = 0;
  for (int iter = 0; iter < 20000; iter++) {
    size_t n = enc.len;
    char *copy = malloc(n);
    memcpy(copy, enc.data, n);
    int flips = 1 + (int)mf_random_uniform(&rnd, 4);
    for (int i = 0; i < flips; i++) {
      size_t pos = mf_random_uniform(&rnd, n);
      if (mf_random_uniform(&rnd, 2))
        copy[pos] ^= (char)(1u << mf_random_uniform(&rnd, 8));
      else
        copy[pos] = (char)mf_random_next(&rnd);
    }
    size_t len = mf_random_uniform(&rnd, 4) == 0 ? mf_random_uniform(&rnd, n + 1) : n;
    int rc = version_edit_decode(&d, mf_slice_make(copy, len));
    if (rc == MAYFLY_OK) {
      ok++;
      /* Whatever decodes satisfies the documented invariants. */
      for (int i = 0; i < d.num_new_files; i++) {
        assert_true(d.new_files[i].level >= 0 && d.new_files[i].level < MF_NUM_LEVELS);
        assert_true(d.new_files[i].meta.smallest.len >= 8);
        assert_true(ikey_compare(mf_buf_slice(&d.new_files[i].meta.smallest),
                                 mf_buf_slice(&d.new_files[i].meta.largest)) <= 0);
      }
      for (int i = 0; i < d.num_blob_files; i++)
        assert_true(d.blob_files[i].number != 0 && d.blob_files[i].total_count != 0);
      for (int i = 0; i < d.num_blob_garbage; i++) assert_true(d.blob_garbage[i].number != 0);
    } else {
      assert_int_equal(rc, MAYFLY_ECORRUPT);
      corrupt++;
    }
    free(copy);
  }
  printf("random damage: %d decoded, %d corrupt\n", ok, corrupt);
  assert_true(corrupt > 0);
  mf_buf_free(&enc);
  version_edit_free(&e);
  version_edit_free(&d);
}

static void expect_corrupt(mf_slice in, const char *message_part) {
  version_edit d;
  version_edit_init(&d);
  assert_int_equal(version_edit_decode(&d, in), MAYFLY_ECORRUPT);
  assert_non_null(strstr(mf_error_message(), message_part));
  version_edit_free(&d);
}

static void test_unknown_tag(void **state) {
  version_edit e;
  version_edit_init(&e);
  version_edit_set_log_number(&e, 5);
  mf_buf enc = MF_BUF_INIT;
  assert_int_equal(version_edit_encode(&e, &enc), MAYFLY_OK);
  size_t valid_len = enc.len;
  /* A reserved tag (not yet known) after a valid field. */
  assert_int_equal(put_varint32(&enc, 9), MAYFLY_OK);
  assert_int_equal(put_varint64(&enc, 1), MAYFLY_OK);
  expect_corrupt(mf_buf_slice(&enc), "tag 9");
  /* Tag 0 and a huge tag. */
  enc.len = valid_len;
  assert_int_equal(put_varint32(&enc, 0), MAYFLY_OK);
  expect_corrupt(mf_buf_slice(&enc), "tag 0");
  enc.len = valid_len;
  assert_int_equal(put_varint32(&enc, 0xffffffffu), MAYFLY_OK);
  expect_corrupt(mf_buf_slice(&enc), "unknown");
  mf_buf_free(&enc);
  version_edit_free(&e);
}

static void test_malformed_fields(void **state) {
  mf_buf b = MF_BUF_INIT, k = MF_BUF_INIT, k2 = MF_BUF_INIT;
  /* A singleton tag twice. */
  put_varint32(&b, VERSION_EDIT_LAST_SEQUENCE);
  put_varint64(&b, 1);
  put_varint32(&b, VERSION_EDIT_LAST_SEQUENCE);
  put_varint64(&b, 2);
  expect_corrupt(mf_buf_slice(&b), "last sequence");
  /* Level out of range. */
  mf_buf_clear(&b);
  put_varint32(&b, VERSION_EDIT_DELETED_FILE);
  put_varint32(&b, MF_NUM_LEVELS);
  put_varint64(&b, 1);
  expect_corrupt(mf_buf_slice(&b), "deleted file");
  /* Compact pointer key shorter than a trailer. */
  mf_buf_clear(&b);
  put_varint32(&b, VERSION_EDIT_COMPACT_POINTER);
  put_varint32(&b, 1);
  put_length_prefixed(&b, mf_slice_cstr("short"));
  expect_corrupt(mf_buf_slice(&b), "compact pointer");
  /* Key with an unknown value type. */
  mf_buf_clear(&b);
  mf_buf_clear(&k);
  mf_buf_append(&k, "key", 3);
  put_fixed64(&k, ikey_pack(1, 0x7f));
  put_varint32(&b, VERSION_EDIT_COMPACT_POINTER);
  put_varint32(&b, 1);
  put_length_prefixed(&b, mf_buf_slice(&k));
  expect_corrupt(mf_buf_slice(&b), "compact pointer");
  /* New file whose smallest key is above its largest. */
  mf_buf_clear(&b);
  mf_buf_clear(&k);
  ikey_append(&k, mf_slice_cstr("b"), 1, MF_TYPE_VALUE);
  ikey_append(&k2, mf_slice_cstr("a"), 1, MF_TYPE_VALUE);
  put_varint32(&b, VERSION_EDIT_NEW_FILE);
  put_varint32(&b, 1);
  put_varint64(&b, 9);
  put_varint64(&b, 100);
  put_varint64(&b, 1);
  put_length_prefixed(&b, mf_buf_slice(&k));
  put_length_prefixed(&b, mf_buf_slice(&k2));
  put_varint64(&b, 1);
  put_varint64(&b, 1);
  put_varint64(&b, 0);
  expect_corrupt(mf_buf_slice(&b), "new file");
  /* Same file with the keys in order but smallest_seq > largest_seq. */
  mf_buf_clear(&b);
  put_varint32(&b, VERSION_EDIT_NEW_FILE);
  put_varint32(&b, 1);
  put_varint64(&b, 9);
  put_varint64(&b, 100);
  put_varint64(&b, 1);
  put_length_prefixed(&b, mf_buf_slice(&k2));
  put_length_prefixed(&b, mf_buf_slice(&k));
  put_varint64(&b, 2);
  put_varint64(&b, 1);
  put_varint64(&b, 0);
  expect_corrupt(mf_buf_slice(&b), "new file");
  /* A well-formed new file without its oldest_blob_file (the field is not optional). */
  mf_buf_clear(&b);
  put_varint32(&b, VERSION_EDIT_NEW_FILE);
  put_varint32(&b, 1);
  put_varint64(&b, 9);
  put_varint64(&b, 100);
  put_varint64(&b, 1);
  put_length_prefixed(&b, mf_buf_slice(&k2));
  put_length_prefixed(&b, mf_buf_slice(&k));
  put_varint64(&b, 1);
  put_varint64(&b, 1);
  expect_corrupt(mf_buf_slice(&b), "new file");
  /* Blob file number 0, a blob file without records, a checksum cut short. */
  mf_buf_clear(&b);
  put_varint32(&b, VERSION_EDIT_BLOB_FILE);
  put_varint64(&b, 0);
  put_varint64(&b, 1);
  put_varint64(&b, 1);
  put_fixed32(&b, 1);
  expect_corrupt(mf_buf_slice(&b), "blob file");
  mf_buf_clear(&b);
  put_varint32(&b, VERSION_EDIT_BLOB_FILE);
  put_varint64(&b, 3);
  put_varint64(&b, 0);
  put_varint64(&b, 0);
  put_fixed32(&b, 1);
  expect_corrupt(mf_buf_slice(&b), "blob file");
  mf_buf_clear(&b);
  put_varint32(&b, VERSION_EDIT_BLOB_FILE);
  put_varint64(&b, 3);
  put_varint64(&b, 1);
  put_varint64(&b, 1);
  mf_buf_append(&b, "\x01\x02\x03", 3);
  expect_corrupt(mf_buf_slice(&b), "blob file");
  /* Garbage for blob file 0; garbage cut short. */
  mf_buf_clear(&b);
  put_varint32(&b, VERSION_EDIT_BLOB_GARBAGE);
  put_varint64(&b, 0);
  put_varint64(&b, 1);
  put_varint64(&b, 1);
  expect_corrupt(mf_buf_slice(&b), "blob garbage");
  mf_buf_clear(&b);
  put_varint32(&b, VERSION_EDIT_BLOB_GARBAGE);
  put_varint64(&b, 3);
  put_varint64(&b, 1);
  expect_corrupt(mf_buf_slice(&b), "blob garbage");
  /* A length prefix running past the end. */
  mf_buf_clear(&b);
  put_varint32(&b, VERSION_EDIT_COMPACT_POINTER);
  put_varint32(&b, 1);
  put_varint32(&b, 1000);
  mf_buf_append(&b, "12345678", 8);
  expect_corrupt(mf_buf_slice(&b), "compact pointer");
  mf_buf_free(&b);
  mf_buf_free(&k);
  mf_buf_free(&k2);
}

/* The blob fields byte for byte, as docs/format/manifest.md describes them. */
static void test_blob_field_bytes(void **state) {
  version_edit e, d;
  version_edit_init(&e);
  version_edit_init(&d);
  mf_buf a = MF_BUF_INIT, b = MF_BUF_INIT, enc = MF_BUF_INIT;
  assert_int_equal(version_edit_add_blob_file(&e, 5, 3, 300, 0xdeadbeefu), MAYFLY_OK);
  assert_int_equal(version_edit_add_blob_garbage(&e, 5, 1, 100), MAYFLY_OK);
  assert_int_equal(version_edit_encode(&e, &enc), MAYFLY_OK);
  static const unsigned char want[] = {
      7, 5, 3, 0xac, 0x02, 0xef, 0xbe, 0xad, 0xde, /* BLOB_FILE: 300 = ac 02; fixed32 LE */
      8, 5, 1, 100,                                /* BLOB_GARBAGE */
  };
  assert_int_equal((int)enc.len, (int)sizeof want);
  assert_memory_equal(enc.data, want, sizeof want);

  /* NEW_FILE ends with oldest_blob_file. */
  mf_buf_clear(&enc);
  version_edit_free(&e);
  assert_int_equal(version_edit_add_file(&e, 0, 9, 100, 1, make_ikey(&a, "a", 1, MF_TYPE_VALUE),
                                         make_ikey(&b, "b", 1, MF_TYPE_VALUE), 1, 1, 300),
                   MAYFLY_OK);
  assert_int_equal(version_edit_encode(&e, &enc), MAYFLY_OK);
  assert_true(enc.len > 2);
  assert_memory_equal(enc.data + enc.len - 2, "\xac\x02", 2);
  assert_int_equal(version_edit_decode(&d, mf_buf_slice(&enc)), MAYFLY_OK);
  assert_true(d.new_files[0].meta.oldest_blob_file == 300);

  mf_buf_free(&a);
  mf_buf_free(&b);
  mf_buf_free(&enc);
  version_edit_free(&e);
  version_edit_free(&d);
}

static void test_setters_reject_bad_arguments(void **state) {
  version_edit e;
  version_edit_init(&e);
  mf_buf a = MF_BUF_INIT, b = MF_BUF_INIT;
  mf_slice lo = make_ikey(&a, "a", 1, MF_TYPE_VALUE), hi = make_ikey(&b, "b", 1, MF_TYPE_VALUE);
  assert_int_equal(version_edit_delete_file(&e, -1, 1), MAYFLY_EINVAL);
  assert_int_equal(version_edit_delete_file(&e, MF_NUM_LEVELS, 1), MAYFLY_EINVAL);
  assert_int_equal(version_edit_set_compact_pointer(&e, 0, mf_slice_cstr("abc")), MAYFLY_EINVAL);
  assert_int_equal(version_edit_add_file(&e, 1, 1, 1, 1, hi, lo, 1, 1, 0), MAYFLY_EINVAL);
  assert_int_equal(version_edit_add_file(&e, 7, 1, 1, 1, lo, hi, 1, 1, 0), MAYFLY_EINVAL);
  assert_int_equal(version_edit_add_blob_file(&e, 0, 1, 1, 0), MAYFLY_EINVAL);
  assert_int_equal(version_edit_add_blob_file(&e, 5, 0, 0, 0), MAYFLY_EINVAL);
  assert_int_equal(version_edit_add_blob_garbage(&e, 0, 1, 1), MAYFLY_EINVAL);
  assert_int_equal(e.num_new_files + e.num_deleted_files + e.num_compact_pointers +
                       e.num_blob_files + e.num_blob_garbage,
                   0);
  assert_int_equal(version_edit_add_file(&e, 1, 1, 1, 1, lo, hi, 1, 1, 0), MAYFLY_OK);
  assert_int_equal(e.num_new_files, 1);
  /* free leaves a reusable empty edit */
  version_edit_free(&e);
  assert_int_equal(e.num_new_files, 0);
  assert_int_equal(version_edit_delete_file(&e, 2, 5), MAYFLY_OK);
  version_edit_free(&e);
  mf_buf_free(&a);
  mf_buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip_all_fields),
      cmocka_unit_test(test_empty_edit),
      cmocka_unit_test(test_truncation_at_every_offset),
      cmocka_unit_test(test_random_damage),
      cmocka_unit_test(test_unknown_tag),
      cmocka_unit_test(test_malformed_fields),
      cmocka_unit_test(test_blob_field_bytes),
      cmocka_unit_test(test_setters_reject_bad_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
