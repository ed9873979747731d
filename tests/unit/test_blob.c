/* Blob files end to end on the in-memory env: round trips of many records (empty key, empty
 * value, 1 MiB values) with each compression type, by index and by scan; incompressible
 * values stored raw in a compressing file; the blob index codec and malformed indexes; the
 * writer's whole-file checksum against mf_checksum of the bytes; damage to every byte of
 * every field (each must give MAYFLY_ECORRUPT naming the file, never wrong data), fields
 * rewritten with valid checksums but wrong meaning, truncation, unfinished files, wrong keys
 * and out-of-range indexes. Randomized: prints its seed; MAYFLY_TEST_SEED=<n> replays it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blob/blob_format.h"
#include "blob/blob_reader.h"
#include "blob/blob_writer.h"
#include "db/options.h"
#include "env/env.h"
#include "mayfly.h"
#include "util/checksum.h"
#include "util/coding.h"
#include "util/compress.h"
#include "util/error.h"
#include "util/random.h"

#include "test_map_env.h"

#define FNAME "db/000042.blob"
#define FILE_NUMBER 42

static mf_random rnd;

static uint64_t test_seed(void) {
  const char *env = getenv("MAYFLY_TEST_SEED");
  uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
  printf("test_blob: seed %llu (replay with MAYFLY_TEST_SEED)\n", (unsigned long long)seed);
  return seed;
}

/* Every reader test runs twice: on the plain in-memory env (reads with pread) and on one
 * that maps files (reads checked in place), see test_map_env.h. */
static int setup(void **state) {
  mf_env *env;
  if (env_mem_create(&env) != MAYFLY_OK) return -1;
  *state = env;
  return 0;
}

static int setup_mapped(void **state) {
  *state = test_map_env_create(0);
  return 0;
}

static int teardown(void **state) {
  mf_env *env = *state;
  env->destroy(env);
  return 0;
}

/* ---- the records ---- */

typedef struct rec {
  mf_buf key;
  mf_buf value;
  blob_index bi;
} rec;

typedef struct recset {
  rec *r;
  size_t n;
} recset;

static void random_bytes(mf_buf *b, size_t n) {
  mf_buf_clear(b);
  assert_int_equal(mf_buf_reserve(b, n), MAYFLY_OK);
  for (size_t i = 0; i < n; i++) b->data[i] = (char)mf_random_next(&rnd);
  b->len = n;
}

/* Text made of a few words: compresses well with lz4 and zstd. */
static void compressible_bytes(mf_buf *b, size_t n) {
  static const char *words[] = {"mayfly ", "blob ", "value ", "log-structured ", "merge "};
  mf_buf_clear(b);
  while (b->len < n) {
    const char *w = words[mf_random_uniform(&rnd, 5)];
    size_t len = strlen(w);
    if (len > n - b->len) len = n - b->len;
    assert_int_equal(mf_buf_append(b, w, len), MAYFLY_OK);
  }
}

/* n records with a mix of shapes: record 0 has an empty key, every 7th an empty value,
 * records 5 and 6 are 1 MiB (compressible and random), one key is 2000 bytes; values are
 * alternately compressible and random. */
static recset make_records(size_t n) {
  recset s = {calloc(n, sizeof(rec)), n};
  assert_non_null(s.r);
  for (size_t i = 0; i < n; i++) {
    rec *r = &s.r[i];
    char k[64];
    int klen = snprintf(k, sizeof k, "key-%06zu-%llu", i,
                        (unsigned long long)mf_random_uniform(&rnd, 1000));
    if (i == 0)
      klen = 0;
    assert_int_equal(mf_buf_set(&r->key, k, (size_t)klen), MAYFLY_OK);
    if (i == 3) compressible_bytes(&r->key, 2000);
    if (i % 7 == 1) {
      mf_buf_clear(&r->value);
    } else if (i == 5) {
      compressible_bytes(&r->value, 1u << 20);
    } else if (i == 6) {
      random_bytes(&r->value, 1u << 20);
    } else if (i % 2) {
      compressible_bytes(&r->value, 1 + mf_random_uniform(&rnd, 5000));
    } else {
      random_bytes(&r->value, 1 + mf_random_uniform(&rnd, 3000));
    }
  }
  return s;
}

static void free_records(recset *s) {
  for (size_t i = 0; i < s->n; i++) {
    mf_buf_free(&s->r[i].key);
    mf_buf_free(&s->r[i].value);
  }
  free(s->r);
}

typedef struct written {
  uint64_t size;
  uint64_t record_bytes;
  uint32_t checksum;
} written;

/* Writes s to fname as blob file number with the given compression, filling each record's
 * index. finish = 0 leaves the footer out (an unfinished file). */
static written write_file(mf_env *env, const char *fname, uint64_t number, int compression,
                          recset *s, int finish) {
  mf_wfile *file;
  assert_int_equal(env->new_writable(env, fname, &file), MAYFLY_OK);
  blob_writer *w;
  assert_int_equal(blob_writer_create(env, file, fname, number, compression, 0, &w), MAYFLY_OK);
  uint64_t expect_bytes = 0;
  for (size_t i = 0; i < s->n; i++) {
    rec *r = &s->r[i];
    assert_int_equal(blob_writer_add(w, mf_buf_slice(&r->key), mf_buf_slice(&r->value), &r->bi),
                     MAYFLY_OK);
    assert_int_equal(r->bi.file_number, number);
    expect_bytes += blob_record_bytes(r->key.len, r->bi.size);
  }
  assert_int_equal(blob_writer_count(w), s->n);
  assert_int_equal(blob_writer_record_bytes(w), expect_bytes);
  if (finish) assert_int_equal(blob_writer_finish(w), MAYFLY_OK);
  written out = {blob_writer_file_size(w), blob_writer_record_bytes(w),
                 blob_writer_file_checksum(w)};
  assert_int_equal(out.size, BLOB_HEADER_SIZE + expect_bytes + (finish ? BLOB_FOOTER_SIZE : 0));
  blob_writer_destroy(w);
  assert_int_equal(env->close_writable(file), MAYFLY_OK);
  return out;
}

static int open_reader(mf_env *env, const char *fname, uint64_t number, uint64_t size,
                       blob_reader **out) {
  mf_rfile *file;
  assert_int_equal(env->open_readable(env, fname, &file), MAYFLY_OK);
  return blob_reader_open(env, file, fname, number, size, out);
}

/* ---- checking what a reader returns ---- */

typedef struct scan_state {
  recset *s;
  size_t next;
  int compression; /* the file's */
  size_t stop_after; /* return MAYFLY_EBUSY after this many calls; 0 = never */
} scan_state;

static int check_scanned(void *arg, mf_slice key, const blob_index *bi, mf_slice stored) {
  scan_state *st = arg;
  assert_true(st->next < st->s->n);
  rec *r = &st->s->r[st->next++];
  assert_true(mf_slice_equal(key, mf_buf_slice(&r->key)));
  assert_int_equal(bi->file_number, r->bi.file_number);
  assert_int_equal(bi->offset, r->bi.offset);
  assert_int_equal(bi->size, r->bi.size);
  assert_int_equal(bi->compression, r->bi.compression);
  assert_int_equal(stored.len, bi->size);
  mf_buf value = MF_BUF_INIT;
  assert_int_equal(decompress_block(bi->compression, stored,
                                    MAYFLY_MAX_VALUE_SIZE, &value), MAYFLY_OK);
  assert_true(mf_slice_equal(mf_buf_slice(&value), mf_buf_slice(&r->value)));
  mf_buf_free(&value);
  if (st->stop_after && st->next == st->stop_after) return MAYFLY_EBUSY;
  return MAYFLY_OK;
}

static void check_all(blob_reader *br, recset *s, int compression) {
  assert_int_equal(blob_reader_count(br), s->n);
  assert_int_equal(blob_reader_compression(br), compression);
  mf_buf value = MF_BUF_INIT;
  /* By index, in a shuffled order so reads are not only sequential. */
  for (size_t k = 0; k < s->n; k++) {
    size_t i = (k * 7919) % s->n;
    rec *r = &s->r[i];
    assert_int_equal(blob_reader_get(br, mf_buf_slice(&r->key), &r->bi, &value), MAYFLY_OK);
    assert_true(mf_slice_equal(mf_buf_slice(&value), mf_buf_slice(&r->value)));
  }
  mf_buf_free(&value);
  scan_state st = {s, 0, compression, 0};
  assert_int_equal(blob_reader_scan(br, check_scanned, &st), MAYFLY_OK);
  assert_int_equal(st.next, s->n);
}

static void assert_corrupt_names_file(int rc) {
  assert_int_equal(rc, MAYFLY_ECORRUPT);
  if (!strstr(mf_error_message(), FNAME)) fail_msg("message lacks the file: %s", mf_error_message());
}

/* ---- round trips ---- */

static void round_trip(mf_env *env, int compression) {
  recset s = make_records(300);
  written w = write_file(env, FNAME, FILE_NUMBER, compression, &s, 1);

  uint64_t size;
  assert_int_equal(env->file_size(env, FNAME, &size), MAYFLY_OK);
  assert_int_equal(size, w.size);
  mf_buf bytes = MF_BUF_INIT;
  assert_int_equal(env_read_file(env, FNAME, &bytes), MAYFLY_OK);
  assert_int_equal(mf_checksum(bytes.data, bytes.len), w.checksum);
  mf_buf_free(&bytes);

  /* Compressible values are compressed in a compressing file, random ones stored raw. */
  for (size_t i = 0; i < s.n; i++) {
    rec *r = &s.r[i];
    if (compression == MF_COMPRESSION_NONE) assert_int_equal(r->bi.compression, 0);
    else if (i % 2 == 1 && r->value.len >= 200) assert_int_equal(r->bi.compression, compression);
    else if (i % 2 == 0 && i != 0) assert_int_equal(r->bi.compression, 0); /* random bytes */
  }
  assert_int_equal(s.r[6].bi.compression, MF_COMPRESSION_NONE); /* 1 MiB random */
  assert_int_equal(s.r[6].bi.size, 1u << 20);
  if (compression != MF_COMPRESSION_NONE) {
    assert_int_equal(s.r[5].bi.compression, compression); /* 1 MiB text */
    assert_true(s.r[5].bi.size < (1u << 20) / 2);
  }
  for (size_t i = 1; i < s.n; i += 7) assert_int_equal(s.r[i].bi.compression, 0); /* empty */

  blob_reader *br;
  assert_int_equal(open_reader(env, FNAME, FILE_NUMBER, w.size, &br), MAYFLY_OK);
  check_all(br, &s, compression);
  blob_reader_close(br);
  free_records(&s);
}

static void test_round_trip_none(void **state) { round_trip(*state, MF_COMPRESSION_NONE); }
static void test_round_trip_lz4(void **state) { round_trip(*state, MF_COMPRESSION_LZ4); }
static void test_round_trip_zstd(void **state) { round_trip(*state, MF_COMPRESSION_ZSTD); }

static void test_empty_file(void **state) {
  mf_env *env = *state;
  recset s = {NULL, 0};
  written w = write_file(env, FNAME, FILE_NUMBER, MF_COMPRESSION_ZSTD, &s, 1);
  assert_int_equal(w.size, BLOB_HEADER_SIZE + BLOB_FOOTER_SIZE);
  mf_buf bytes = MF_BUF_INIT;
  assert_int_equal(env_read_file(env, FNAME, &bytes), MAYFLY_OK);
  assert_int_equal(mf_checksum(bytes.data, bytes.len), w.checksum);
  /* The header and footer read as the documented text. */
  assert_memory_equal(bytes.data, "mayflyBL", 8);
  assert_memory_equal(bytes.data + bytes.len - 8, "mayflyBE", 8);
  mf_buf_free(&bytes);
  blob_reader *br;
  assert_int_equal(open_reader(env, FNAME, FILE_NUMBER, w.size, &br), MAYFLY_OK);
  check_all(br, &s, MF_COMPRESSION_ZSTD);
  blob_reader_close(br);
}

static void test_incompressible_stored_raw(void **state) {
  mf_env *env = *state;
  recset s = {calloc(40, sizeof(rec)), 40};
  for (size_t i = 0; i < s.n; i++) {
    assert_int_equal(mf_buf_set(&s.r[i].key, "k", 1), MAYFLY_OK); /* duplicate keys are fine */
    if (i % 2) compressible_bytes(&s.r[i].value, 4096);
    else random_bytes(&s.r[i].value, 4096);
  }
  written w = write_file(env, FNAME, FILE_NUMBER, MF_COMPRESSION_ZSTD, &s, 1);
  for (size_t i = 0; i < s.n; i++) {
    assert_int_equal(s.r[i].bi.compression, i % 2 ? MF_COMPRESSION_ZSTD : MF_COMPRESSION_NONE);
    if (i % 2 == 0) assert_int_equal(s.r[i].bi.size, 4096);
    /* A raw record's stored bytes are the value itself. */
  }
  mf_buf bytes = MF_BUF_INIT;
  assert_int_equal(env_read_file(env, FNAME, &bytes), MAYFLY_OK);
  assert_memory_equal(bytes.data + s.r[0].bi.offset, s.r[0].value.data, 4096);
  mf_buf_free(&bytes);
  blob_reader *br;
  assert_int_equal(open_reader(env, FNAME, FILE_NUMBER, w.size, &br), MAYFLY_OK);
  check_all(br, &s, MF_COMPRESSION_ZSTD);
  blob_reader_close(br);
  free_records(&s);
}

static void test_scan_stops_at_callback_error(void **state) {
  mf_env *env = *state;
  recset s = make_records(20);
  written w = write_file(env, FNAME, FILE_NUMBER, MF_COMPRESSION_LZ4, &s, 1);
  blob_reader *br;
  assert_int_equal(open_reader(env, FNAME, FILE_NUMBER, w.size, &br), MAYFLY_OK);
  scan_state st = {&s, 0, MF_COMPRESSION_LZ4, 5};
  assert_int_equal(blob_reader_scan(br, check_scanned, &st), MAYFLY_EBUSY);
  assert_int_equal(st.next, 5);
  blob_reader_close(br);
  free_records(&s);
}

/* ---- the blob index ---- */

static void test_index_codec(void **state) {
  mf_buf buf = MF_BUF_INIT;
  for (int i = 0; i < 2000; i++) {
    blob_index bi = {mf_random_next(&rnd) >> mf_random_uniform(&rnd, 64),
                     mf_random_next(&rnd) >> mf_random_uniform(&rnd, 64),
                     mf_random_next(&rnd) >> mf_random_uniform(&rnd, 64),
                     (int)mf_random_uniform(&rnd, 3)};
    if (bi.file_number == 0) bi.file_number = 1; /* file numbers start at 1 */
    bi.size %= 2 * (uint64_t)MAYFLY_MAX_VALUE_SIZE + 1; /* the largest stored size */
    if (i == 0)
      bi = (blob_index){UINT64_MAX, UINT64_MAX, 2 * (uint64_t)MAYFLY_MAX_VALUE_SIZE,
                        MF_COMPRESSION_ZSTD};
    if (i == 1) bi = (blob_index){1, 0, 0, MF_COMPRESSION_NONE};
    mf_buf_clear(&buf);
    assert_int_equal(blob_index_encode(&bi, &buf), MAYFLY_OK);
    assert_true(buf.len <= 31);
    blob_index out;
    assert_int_equal(blob_index_decode(mf_buf_slice(&buf), &out), MAYFLY_OK);
    assert_int_equal(out.file_number, bi.file_number);
    assert_int_equal(out.offset, bi.offset);
    assert_int_equal(out.size, bi.size);
    assert_int_equal(out.compression, bi.compression);
    /* Every truncation and any trailing byte is malformed. */
    for (size_t n = 0; n < buf.len; n++)
      assert_int_equal(blob_index_decode(mf_slice_make(buf.data, n), &out), MAYFLY_ECORRUPT);
    assert_int_equal(mf_buf_append(&buf, "", 1), MAYFLY_OK);
    assert_int_equal(blob_index_decode(mf_buf_slice(&buf), &out), MAYFLY_ECORRUPT);
  }
  /* Appends, keeping what was there. */
  mf_buf_set(&buf, "xy", 2);
  blob_index bi = {7, 300, 5, MF_COMPRESSION_LZ4};
  assert_int_equal(blob_index_encode(&bi, &buf), MAYFLY_OK);
  assert_memory_equal(buf.data, "xy\x07\xac\x02\x05\x01", 7);

  /* File 0 does not exist: an index naming it is damage (the blob cache's pin slots use 0
   * for "empty", and GC once read through an empty slot for it). So is a stored size beyond
   * any value's (garbage accounting adds sizes up). */
  blob_index out;
  assert_int_equal(blob_index_decode(mf_slice_make("\x00\xac\x02\x05\x00", 5), &out),
                   MAYFLY_ECORRUPT);
  bi = (blob_index){7, 0, 2 * (uint64_t)MAYFLY_MAX_VALUE_SIZE + 1, MF_COMPRESSION_NONE};
  mf_buf_clear(&buf);
  assert_int_equal(blob_index_encode(&bi, &buf), MAYFLY_OK);
  assert_int_equal(blob_index_decode(mf_buf_slice(&buf), &out), MAYFLY_ECORRUPT);
  bi.file_number = 7;
  bi.offset = 300;
  bi.size = 5;
  bi.compression = MF_COMPRESSION_LZ4;
  /* Unknown compression, both ways. */
  assert_int_equal(blob_index_decode(mf_slice_make("\x07\xac\x02\x05\x03", 5), &out),
                   MAYFLY_ECORRUPT);
  assert_int_equal(blob_index_decode(mf_slice_make("\x07\xac\x02\x05\xff", 5), &out),
                   MAYFLY_ECORRUPT);
  bi.compression = 3;
  assert_int_equal(blob_index_encode(&bi, &buf), MAYFLY_EINVAL);
  bi.compression = -1;
  assert_int_equal(blob_index_encode(&bi, &buf), MAYFLY_EINVAL);
  /* An overlong varint (11 bytes) and an empty index. */
  assert_int_equal(
      blob_index_decode(mf_slice_make("\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01\x01\x01\x00", 14),
                        &out),
      MAYFLY_ECORRUPT);
  assert_int_equal(blob_index_decode(mf_slice_make("", 0), &out), MAYFLY_ECORRUPT);
  mf_buf_free(&buf);
}

static void test_record_bytes(void **state) {
  assert_int_equal(blob_record_bytes(0, 0), 16);
  assert_int_equal(blob_record_bytes(5, 100), 121);
}

/* ---- damage ---- */

static void rewrite_file(mf_env *env, const char *fname, const mf_buf *bytes) {
  mf_wfile *file;
  assert_int_equal(env->new_writable(env, fname, &file), MAYFLY_OK);
  assert_int_equal(env->append(file, bytes->data, bytes->len), MAYFLY_OK);
  assert_int_equal(env->close_writable(file), MAYFLY_OK);
}

/* Which record holds file offset off, or -1 for the header/footer. */
static long record_at(const recset *s, uint64_t off) {
  for (size_t i = 0; i < s->n; i++) {
    uint64_t start = s->r[i].bi.offset - s->r[i].key.len - BLOB_RECORD_HEADER_SIZE;
    if (off >= start && off < s->r[i].bi.offset + s->r[i].bi.size) return (long)i;
  }
  return -1;
}

/* Flips one bit in every byte of a small file in turn. Damage to the header or footer must
 * fail the open; damage to record i must fail get(i) and the scan, while other records still
 * read correctly. Every failure is MAYFLY_ECORRUPT naming the file. */
static void test_every_byte_damaged(void **state) {
  mf_env *env = *state;
  recset s = {calloc(4, sizeof(rec)), 4};
  const char *keys[] = {"", "alpha", "beta", "gamma"};
  for (size_t i = 0; i < s.n; i++) {
    mf_buf_set(&s.r[i].key, keys[i], strlen(keys[i]));
    if (i == 1) random_bytes(&s.r[i].value, 40);
    else if (i != 3) compressible_bytes(&s.r[i].value, 120);
  }
  written w = write_file(env, FNAME, FILE_NUMBER, MF_COMPRESSION_LZ4, &s, 1);
  assert_int_equal(s.r[0].bi.compression, MF_COMPRESSION_LZ4);
  assert_int_equal(s.r[1].bi.compression, MF_COMPRESSION_NONE);
  mf_buf good = MF_BUF_INIT, bad = MF_BUF_INIT, value = MF_BUF_INIT;
  assert_int_equal(env_read_file(env, FNAME, &good), MAYFLY_OK);

  for (uint64_t off = 0; off < good.len; off++) {
    assert_int_equal(mf_buf_set(&bad, good.data, good.len), MAYFLY_OK);
    bad.data[off] ^= (char)(1u << mf_random_uniform(&rnd, 8));
    rewrite_file(env, FNAME, &bad);
    long damaged = record_at(&s, off);
    blob_reader *br;
    int rc = open_reader(env, FNAME, FILE_NUMBER, w.size, &br);
    if (damaged < 0) {
      if (rc != MAYFLY_ECORRUPT) fail_msg("damage at offset %llu not detected at open",
                                          (unsigned long long)off);
      assert_corrupt_names_file(rc);
      continue;
    }
    assert_int_equal(rc, MAYFLY_OK);
    for (size_t i = 0; i < s.n; i++) {
      rec *r = &s.r[i];
      rc = blob_reader_get(br, mf_buf_slice(&r->key), &r->bi, &value);
      if ((long)i == damaged) {
        if (rc != MAYFLY_ECORRUPT) fail_msg("damage at offset %llu (record %zu) not detected",
                                            (unsigned long long)off, i);
        assert_corrupt_names_file(rc);
      } else {
        assert_int_equal(rc, MAYFLY_OK);
        assert_true(mf_slice_equal(mf_buf_slice(&value), mf_buf_slice(&r->value)));
      }
    }
    scan_state st = {&s, 0, MF_COMPRESSION_LZ4, 0};
    assert_corrupt_names_file(blob_reader_scan(br, check_scanned, &st));
    assert_int_equal(st.next, (size_t)damaged); /* records before it were delivered intact */
    blob_reader_close(br);
  }
  mf_buf_free(&good);
  mf_buf_free(&bad);
  mf_buf_free(&value);
  free_records(&s);
}

/* Fields rewritten with their checksums recomputed: the reader must still refuse them. */
static void test_fields_with_valid_checksums(void **state) {
  mf_env *env = *state;
  recset s = make_records(10);
  written w = write_file(env, FNAME, FILE_NUMBER, MF_COMPRESSION_ZSTD, &s, 1);
  mf_buf good = MF_BUF_INIT, bad = MF_BUF_INIT;
  assert_int_equal(env_read_file(env, FNAME, &good), MAYFLY_OK);
  blob_reader *br;

  /* header: version 2, compression 3, reserved byte, file number */
  for (int field = 0; field < 4; field++) {
    mf_buf_set(&bad, good.data, good.len);
    if (field == 0) encode_fixed32(bad.data + 8, 2);
    if (field == 1) bad.data[12] = 3;
    if (field == 2) bad.data[14] = 1;
    if (field == 3) encode_fixed64(bad.data + 16, FILE_NUMBER + 1);
    encode_fixed32(bad.data + 24, mf_checksum(bad.data, 24));
    rewrite_file(env, FNAME, &bad);
    assert_corrupt_names_file(open_reader(env, FNAME, FILE_NUMBER, w.size, &br));
  }
  /* The right file under the wrong expected number. */
  rewrite_file(env, FNAME, &good);
  assert_corrupt_names_file(open_reader(env, FNAME, FILE_NUMBER + 1, w.size, &br));

  /* footer: count too large, record bytes off by one either way, count 0 */
  uint64_t foot = good.len - BLOB_FOOTER_SIZE;
  for (int field = 0; field < 4; field++) {
    mf_buf_set(&bad, good.data, good.len);
    if (field == 0) encode_fixed64(bad.data + foot, w.record_bytes / 16 + 1);
    if (field == 1) encode_fixed64(bad.data + foot + 8, w.record_bytes + 1);
    if (field == 2) encode_fixed64(bad.data + foot + 8, w.record_bytes - 1);
    if (field == 3) encode_fixed64(bad.data + foot, 0);
    encode_fixed32(bad.data + foot + 16, mf_checksum(bad.data + foot, 16));
    rewrite_file(env, FNAME, &bad);
    int rc = open_reader(env, FNAME, FILE_NUMBER, w.size, &br);
    if (field == 3) {
      /* Passes open (the count is only an upper bound there); the scan catches it. */
      assert_int_equal(rc, MAYFLY_OK);
      scan_state st = {&s, 0, MF_COMPRESSION_ZSTD, 0};
      assert_corrupt_names_file(blob_reader_scan(br, check_scanned, &st));
      blob_reader_close(br);
    } else {
      assert_corrupt_names_file(rc);
    }
  }
  /* A record whose header lengths are changed with a recomputed header checksum: the payload
   * checksum or the index's lengths still catch it. */
  mf_buf_set(&bad, good.data, good.len);
  rec *r = &s.r[4];
  uint64_t start = r->bi.offset - r->key.len - BLOB_RECORD_HEADER_SIZE;
  encode_fixed32(bad.data + start + 4, (uint32_t)r->bi.size - 1);
  encode_fixed32(bad.data + start + 12, blob_record_header_checksum(bad.data + start,
                                                                    r->bi.compression));
  rewrite_file(env, FNAME, &bad);
  assert_int_equal(open_reader(env, FNAME, FILE_NUMBER, w.size, &br), MAYFLY_OK);
  mf_buf value = MF_BUF_INIT;
  assert_corrupt_names_file(blob_reader_get(br, mf_buf_slice(&r->key), &r->bi, &value));
  scan_state st = {&s, 0, MF_COMPRESSION_ZSTD, 0};
  assert_corrupt_names_file(blob_reader_scan(br, check_scanned, &st));
  blob_reader_close(br);

  mf_buf_free(&value);
  mf_buf_free(&good);
  mf_buf_free(&bad);
  free_records(&s);
}

static void test_truncated(void **state) {
  mf_env *env = *state;
  recset s = make_records(10);
  written w = write_file(env, FNAME, FILE_NUMBER, MF_COMPRESSION_NONE, &s, 1);
  mf_buf good = MF_BUF_INIT, cut = MF_BUF_INIT;
  assert_int_equal(env_read_file(env, FNAME, &good), MAYFLY_OK);
  uint64_t lens[] = {0, 1, BLOB_HEADER_SIZE, BLOB_HEADER_SIZE + BLOB_FOOTER_SIZE - 1,
                     BLOB_HEADER_SIZE + 20, w.size / 2, w.size - BLOB_FOOTER_SIZE, w.size - 1};
  blob_reader *br;
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
    mf_buf_set(&cut, good.data, (size_t)lens[i]);
    rewrite_file(env, FNAME, &cut);
    /* Opened with the real (short) size, and with the size the caller believed. */
    assert_corrupt_names_file(open_reader(env, FNAME, FILE_NUMBER, lens[i], &br));
    assert_corrupt_names_file(open_reader(env, FNAME, FILE_NUMBER, w.size, &br));
  }
  /* A size larger than the file's. */
  rewrite_file(env, FNAME, &good);
  assert_corrupt_names_file(open_reader(env, FNAME, FILE_NUMBER, w.size + 1, &br));
  /* Extra bytes after the footer. */
  mf_buf_set(&cut, good.data, good.len);
  mf_buf_append(&cut, "junk", 4);
  rewrite_file(env, FNAME, &cut);
  assert_corrupt_names_file(open_reader(env, FNAME, FILE_NUMBER, cut.len, &br));
  mf_buf_free(&good);
  mf_buf_free(&cut);

  /* Never finished: no footer. */
  w = write_file(env, FNAME, FILE_NUMBER, MF_COMPRESSION_NONE, &s, 0);
  assert_corrupt_names_file(open_reader(env, FNAME, FILE_NUMBER, w.size, &br));
  free_records(&s);
}

static void test_wrong_key_and_bad_index(void **state) {
  mf_env *env = *state;
  recset s = make_records(30);
  /* Long enough to compress whatever length the seed gave it (a few bytes are stored raw). */
  compressible_bytes(&s.r[9].value, 1000);
  written w = write_file(env, FNAME, FILE_NUMBER, MF_COMPRESSION_ZSTD, &s, 1);
  blob_reader *br;
  assert_int_equal(open_reader(env, FNAME, FILE_NUMBER, w.size, &br), MAYFLY_OK);
  mf_buf value = MF_BUF_INIT;
  rec *r = &s.r[9]; /* "key-000009-..." with a compressed value */
  assert_int_equal(r->bi.compression, MF_COMPRESSION_ZSTD);
  rec *raw = &s.r[8];
  assert_int_equal(raw->bi.compression, MF_COMPRESSION_NONE);

  /* Same length, one byte different; shorter; longer; the neighbour's key. */
  mf_buf key = MF_BUF_INIT;
  mf_buf_set(&key, r->key.data, r->key.len);
  key.data[key.len - 1] ^= 1;
  assert_corrupt_names_file(blob_reader_get(br, mf_buf_slice(&key), &r->bi, &value));
  assert_corrupt_names_file(
      blob_reader_get(br, mf_slice_make(r->key.data, r->key.len - 1), &r->bi, &value));
  mf_buf_set(&key, r->key.data, r->key.len);
  mf_buf_append(&key, "x", 1);
  assert_corrupt_names_file(blob_reader_get(br, mf_buf_slice(&key), &r->bi, &value));
  assert_corrupt_names_file(blob_reader_get(br, mf_buf_slice(&s.r[10].key), &r->bi, &value));

  /* Indexes that do not match a record. */
  blob_index cases[] = {
      {FILE_NUMBER, 0, r->bi.size, r->bi.compression},
      {FILE_NUMBER, r->bi.offset + 1, r->bi.size, r->bi.compression},
      {FILE_NUMBER, r->bi.offset - 1, r->bi.size, r->bi.compression},
      {FILE_NUMBER, r->bi.offset, r->bi.size + 1, r->bi.compression},
      {FILE_NUMBER, r->bi.offset, r->bi.size - 1, r->bi.compression},
      {FILE_NUMBER, r->bi.offset, UINT64_MAX, r->bi.compression},
      {FILE_NUMBER, UINT64_MAX, r->bi.size, r->bi.compression},
      {FILE_NUMBER, UINT64_MAX - 3, 10, r->bi.compression},
      {FILE_NUMBER, w.size - BLOB_FOOTER_SIZE, 0, r->bi.compression},
      {FILE_NUMBER, w.size, 0, r->bi.compression},
      {FILE_NUMBER + 1, r->bi.offset, r->bi.size, r->bi.compression},
      {FILE_NUMBER, r->bi.offset, r->bi.size, MF_COMPRESSION_NONE}, /* compressed read raw */
      {FILE_NUMBER, r->bi.offset, r->bi.size, MF_COMPRESSION_LZ4},  /* not this file's type */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mf_error_clear();
    int rc = blob_reader_get(br, mf_buf_slice(&r->key), &cases[i], &value);
    if (rc != MAYFLY_ECORRUPT) fail_msg("bad index case %zu gave %d", i, rc);
    assert_corrupt_names_file(rc);
  }
  /* A raw record read as compressed. */
  blob_index as_zstd = raw->bi;
  as_zstd.compression = MF_COMPRESSION_ZSTD;
  assert_corrupt_names_file(blob_reader_get(br, mf_buf_slice(&raw->key), &as_zstd, &value));
  /* And the real ones still work after all that. */
  assert_int_equal(blob_reader_get(br, mf_buf_slice(&r->key), &r->bi, &value), MAYFLY_OK);
  assert_true(mf_slice_equal(mf_buf_slice(&value), mf_buf_slice(&r->value)));
  blob_reader_close(br);
  mf_buf_free(&key);
  mf_buf_free(&value);
  free_records(&s);
}

/* ---- writer errors ---- */

static mf_env *failing_base;
static int appends_left;

static int failing_append(mf_wfile *f, const void *data, size_t n) {
  if (appends_left-- <= 0) return MF_ERR(MAYFLY_EIO, "injected append failure");
  return failing_base->append(f, data, n);
}

static void test_writer_errors(void **state) {
  mf_env *env = *state;
  mf_wfile *file;
  blob_writer *w = (blob_writer *)1;
  blob_index bi;
  assert_int_equal(env->new_writable(env, FNAME, &file), MAYFLY_OK);
  assert_int_equal(blob_writer_create(env, file, FNAME, 1, 9, 0, &w), MAYFLY_EINVAL);
  assert_null(w);
  assert_int_equal(blob_writer_create(env, file, FNAME, 1, MF_COMPRESSION_NONE, 0, &w), MAYFLY_OK);
  assert_int_equal(blob_writer_finish(w), MAYFLY_OK);
  assert_int_equal(blob_writer_add(w, mf_slice_cstr("k"), mf_slice_cstr("v"), &bi), MAYFLY_EINVAL);
  assert_int_equal(blob_writer_finish(w), MAYFLY_EINVAL);
  blob_writer_destroy(w);
  assert_int_equal(env->close_writable(file), MAYFLY_OK);

  /* An append failure is sticky. */
  mf_env failing;
  memcpy(&failing, env, sizeof failing);
  failing.append = failing_append;
  failing_base = env;
  appends_left = 3; /* header and two records */
  assert_int_equal(env->new_writable(env, FNAME, &file), MAYFLY_OK);
  assert_int_equal(blob_writer_create(&failing, file, FNAME, 1, MF_COMPRESSION_LZ4, 0, &w),
                   MAYFLY_OK);
  assert_int_equal(blob_writer_add(w, mf_slice_cstr("a"), mf_slice_cstr("1"), &bi), MAYFLY_OK);
  assert_int_equal(blob_writer_add(w, mf_slice_cstr("b"), mf_slice_cstr("2"), &bi), MAYFLY_OK);
  uint64_t size = blob_writer_file_size(w);
  assert_int_equal(blob_writer_add(w, mf_slice_cstr("c"), mf_slice_cstr("3"), &bi), MAYFLY_EIO);
  appends_left = 100;
  assert_int_equal(blob_writer_add(w, mf_slice_cstr("d"), mf_slice_cstr("4"), &bi), MAYFLY_EIO);
  assert_int_equal(blob_writer_finish(w), MAYFLY_EIO);
  assert_int_equal(blob_writer_file_size(w), size);
  assert_int_equal(blob_writer_count(w), 2);
  blob_writer_destroy(w);
  assert_int_equal(env->close_writable(file), MAYFLY_OK);
}

/* A reader test on the env that maps files. */
#define MAPPED(fn) {#fn "/mapped", fn, setup_mapped, teardown, NULL}

int main(void) {
  mf_random_seed(&rnd, test_seed());
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_round_trip_none, setup, teardown),
      MAPPED(test_round_trip_none),
      cmocka_unit_test_setup_teardown(test_round_trip_lz4, setup, teardown),
      MAPPED(test_round_trip_lz4),
      cmocka_unit_test_setup_teardown(test_round_trip_zstd, setup, teardown),
      MAPPED(test_round_trip_zstd),
      cmocka_unit_test_setup_teardown(test_empty_file, setup, teardown),
      MAPPED(test_empty_file),
      cmocka_unit_test_setup_teardown(test_incompressible_stored_raw, setup, teardown),
      MAPPED(test_incompressible_stored_raw),
      cmocka_unit_test_setup_teardown(test_scan_stops_at_callback_error, setup, teardown),
      MAPPED(test_scan_stops_at_callback_error),
      cmocka_unit_test(test_index_codec),
      cmocka_unit_test(test_record_bytes),
      cmocka_unit_test_setup_teardown(test_every_byte_damaged, setup, teardown),
      MAPPED(test_every_byte_damaged),
      cmocka_unit_test_setup_teardown(test_fields_with_valid_checksums, setup, teardown),
      MAPPED(test_fields_with_valid_checksums),
      cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
      MAPPED(test_truncated),
      cmocka_unit_test_setup_teardown(test_wrong_key_and_bad_index, setup, teardown),
      MAPPED(test_wrong_key_and_bad_index),
      cmocka_unit_test_setup_teardown(test_writer_errors, setup, teardown),
      MAPPED(test_writer_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
