/* Tests for the log format (src/wal): writer/reader round trips, torn tails (truncation and
 * zero-filling at every offset), corruption (a bit flip in each record in turn, a zeroed hole,
 * broken fragment sequences), file header checks, and writer append failures.
 *
 * Logs are written into the in-memory env; one test repeats the round trip with env_posix()
 * in a directory under $MAYFLY_TEST_TMP (or /tmp). Randomized tests print their seed; set
 * MAYFLY_TEST_SEED to replay a run. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "env/env.h"
#include "mayfly.h"
#include "util/checksum.h"
#include "util/coding.h"
#include "util/error.h"
#include "util/random.h"
#include "util/slice.h"
#include "wal/wal_format.h"
#include "wal/wal_reader.h"
#include "wal/wal_writer.h"

#define BLOCK WAL_BLOCK_SIZE
#define HDR WAL_FRAGMENT_HEADER_SIZE
#define FILE_HEADER_RECORD_SIZE (HDR + WAL_FILE_HEADER_SIZE) /* 31 bytes at offset 0 */
#define LOG_PATH "/wal/000007.log"
#define MAX_RECORDS 512

static uint64_t test_seed;

static void seed_rng(mf_random *rng, const char *test_name) {
  mf_random_seed(rng, test_seed);
  print_message("%s: seed %llu (replay with MAYFLY_TEST_SEED=%llu)\n", test_name,
                (unsigned long long)test_seed, (unsigned long long)test_seed);
}

/* ---- a log written with the writer, with what the tests expect of it ---- */

typedef struct test_log {
  size_t count;
  mf_buf records[MAX_RECORDS]; /* payloads */
  uint64_t starts[MAX_RECORDS]; /* offset of each record's first fragment */
  uint64_t ends[MAX_RECORDS];   /* offset just past its last fragment */
  mf_buf image;                 /* the file's bytes */
} test_log;

static void fill_random(mf_random *rng, char *p, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = (char)mf_random_next(rng);
}

static void test_log_free(test_log *log) {
  for (size_t i = 0; i < log->count; i++) mf_buf_free(&log->records[i]);
  mf_buf_free(&log->image);
  free(log);
}

/* Writes, every 40 bytes of p[0..n), a valid 17-byte FULL fragment (header and 10 payload
 * bytes): record contents that look like log fragments, as a user's values may. */
static void embed_fragments(char *p, size_t n) {
  for (size_t at = 0; at + HDR + 10 <= n; at += 40) {
    const char *payload = p + at + HDR;
    encode_fixed16(p + at + 4, 10);
    p[at + 6] = (char)WAL_FRAG_FULL;
    encode_fixed32(p + at, mf_checksum_seeded(WAL_FRAG_FULL, payload, 10));
  }
}

/* Writes records of the given sizes (random bytes; with embed, holding valid fragments, see
 * embed_fragments) to path with the writer, checking the writer's byte accounting, and loads
 * the resulting file image. */
static test_log *write_log_embed(mf_env *env, const char *path, const size_t *sizes,
                                 size_t count, mf_random *rng, int kind, uint64_t file_number,
                                 int embed) {
  assert_true(count <= MAX_RECORDS);
  test_log *log = calloc(1, sizeof *log);
  assert_non_null(log);
  mf_wfile *f;
  assert_int_equal(env->new_writable(env, path, &f), MAYFLY_OK);
  wal_writer *w;
  uint64_t written = 0;
  assert_int_equal(wal_writer_create(env, f, kind, file_number, &w, &written), MAYFLY_OK);
  assert_int_equal(written, FILE_HEADER_RECORD_SIZE);
  assert_int_equal(wal_writer_offset(w), FILE_HEADER_RECORD_SIZE);
  for (size_t i = 0; i < count; i++) {
    mf_buf *rec = &log->records[i];
    assert_int_equal(mf_buf_reserve(rec, sizes[i] + 1), MAYFLY_OK);
    rec->len = sizes[i];
    fill_random(rng, rec->data, rec->len);
    if (embed) embed_fragments(rec->data, rec->len);
    uint64_t before = wal_writer_offset(w);
    uint64_t in_block = BLOCK - before % BLOCK;
    log->starts[i] = in_block < HDR ? before + in_block : before;
    assert_int_equal(wal_writer_add_record(w, mf_buf_slice(rec), &written), MAYFLY_OK);
    log->ends[i] = wal_writer_offset(w);
    assert_int_equal(written, log->ends[i] - before);
  }
  log->count = count;
  uint64_t total = wal_writer_offset(w);
  wal_writer_destroy(w);
  assert_int_equal(env->close_writable(f), MAYFLY_OK);
  assert_int_equal(env_read_file(env, path, &log->image), MAYFLY_OK);
  assert_int_equal(log->image.len, total);
  return log;
}

static test_log *write_log(mf_env *env, const char *path, const size_t *sizes, size_t count,
                           mf_random *rng, int kind, uint64_t file_number) {
  return write_log_embed(env, path, sizes, count, rng, kind, file_number, 0);
}

static void write_image(mf_env *env, const char *path, const char *data, size_t n) {
  mf_wfile *f;
  assert_int_equal(env->new_writable(env, path, &f), MAYFLY_OK);
  assert_int_equal(env->append(f, data, n), MAYFLY_OK);
  assert_int_equal(env->close_writable(f), MAYFLY_OK);
}

/* ---- reading a log back and comparing with the expectation ---- */

typedef struct read_result {
  int create_rc;
  int final_rc;     /* what ended the reading: ENOTFOUND, ECORRUPT ... */
  size_t count;     /* records returned */
  int mismatch;     /* a returned record (or its offset) differs from the expectation */
  uint64_t dropped; /* wal_reader_dropped_bytes at the end */
  uint64_t file_number;
  char message[1024]; /* the error message when final_rc or create_rc is an error */
} read_result;

static void read_back(mf_env *env, const char *path, int kind, const test_log *expect,
                      read_result *res) {
  memset(res, 0, sizeof *res);
  mf_rfile *f;
  assert_int_equal(env->open_readable(env, path, &f), MAYFLY_OK);
  wal_reader *r;
  mf_error_clear();
  res->create_rc = wal_reader_create(env, f, path, kind, &r);
  if (res->create_rc != MAYFLY_OK) {
    assert_null(r);
    snprintf(res->message, sizeof res->message, "%s", mf_error_message());
    env->close_readable(f);
    return;
  }
  res->file_number = wal_reader_file_number(r);
  mf_slice rec;
  int rc;
  while ((rc = wal_reader_read(r, &rec)) == MAYFLY_OK) {
    size_t i = res->count++;
    if (!expect || i >= expect->count || !mf_slice_equal(rec, mf_buf_slice(&expect->records[i])) ||
        wal_reader_last_record_offset(r) != expect->starts[i])
      res->mismatch = 1;
  }
  res->final_rc = rc;
  if (rc != MAYFLY_ENOTFOUND) snprintf(res->message, sizeof res->message, "%s", mf_error_message());
  res->dropped = wal_reader_dropped_bytes(r);
  /* The reader stays ended or failed. */
  assert_int_equal(wal_reader_read(r, &rec), rc);
  wal_reader_destroy(r);
  env->close_readable(f);
}

/* The records of log whose every byte lies before offset `intact` (the file is unchanged on
 * [0, intact)); *good_end gets the end of the last of them (or of the file header). */
static size_t records_before(const test_log *log, uint64_t intact, uint64_t *good_end) {
  size_t n = 0;
  *good_end = intact >= FILE_HEADER_RECORD_SIZE ? FILE_HEADER_RECORD_SIZE : 0;
  while (n < log->count && log->ends[n] <= intact) *good_end = log->ends[n++];
  return n;
}

static int setup_mem(void **state) {
  mf_env *env;
  if (env_mem_create(&env) != MAYFLY_OK) return -1;
  if (env->make_dir(env, "/wal") != MAYFLY_OK) return -1;
  *state = env;
  return 0;
}

static int teardown_mem(void **state) {
  mf_env *env = *state;
  env->destroy(env);
  return 0;
}

/* ---- round trips ---- */

static void check_round_trip(mf_env *env, const char *path, const size_t *sizes, size_t count,
                             mf_random *rng) {
  test_log *log = write_log(env, path, sizes, count, rng, WAL_KIND_MANIFEST, 42);
  read_result res;
  read_back(env, path, WAL_KIND_MANIFEST, log, &res);
  assert_int_equal(res.create_rc, MAYFLY_OK);
  assert_int_equal(res.final_rc, MAYFLY_ENOTFOUND);
  assert_int_equal(res.count, count);
  assert_false(res.mismatch);
  assert_int_equal(res.dropped, 0);
  assert_int_equal(res.file_number, 42);
  test_log_free(log);
}

static void test_round_trip_random_sizes(void **state) {
  mf_env *env = *state;
  mf_random rng;
  seed_rng(&rng, "round_trip_random_sizes");
  size_t sizes[MAX_RECORDS];
  size_t n = 0;
  const size_t fixed[] = {0, 1, 100, BLOCK - FILE_HEADER_RECORD_SIZE - HDR, 0, BLOCK - HDR,
                          BLOCK - HDR - 1, BLOCK - HDR + 1, BLOCK, BLOCK + 1, 2 * BLOCK,
                          3 * BLOCK - 2 * HDR, 0, 1u << 20, 65535, 65536, 0, 7};
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) sizes[n++] = fixed[i];
  while (n < 300) {
    uint64_t pick = mf_random_uniform(&rng, 10);
    sizes[n++] = pick < 6 ? mf_random_uniform(&rng, 200)
                 : pick < 9 ? mf_random_uniform(&rng, 5000)
                            : mf_random_uniform(&rng, 150000);
  }
  check_round_trip(env, LOG_PATH, sizes, n, &rng);
}

/* Puts the end of the first record exactly `leftover` bytes before the end of block 0, for
 * every leftover around the 7-byte header size, and follows it with records of several
 * sizes: exercises the zero trailer, empty fragments in the last 7 bytes, and records that
 * end exactly on a block boundary. */
static void test_round_trip_block_boundaries(void **state) {
  mf_env *env = *state;
  mf_random rng;
  seed_rng(&rng, "round_trip_block_boundaries");
  for (size_t leftover = 0; leftover <= 2 * HDR; leftover++) {
    size_t first = BLOCK - FILE_HEADER_RECORD_SIZE - HDR - leftover;
    size_t sizes[] = {first, 0, 0, 10, BLOCK - HDR, BLOCK - HDR - leftover, 100000, 0};
    check_round_trip(env, LOG_PATH, sizes, sizeof sizes / sizeof sizes[0], &rng);
    /* Same positions, but the log ends right after the first record. */
    check_round_trip(env, LOG_PATH, sizes, 1, &rng);
  }
}

static void test_empty_log(void **state) {
  mf_env *env = *state;
  mf_random rng;
  mf_random_seed(&rng, 1);
  /* A log with only the file header. */
  check_round_trip(env, LOG_PATH, NULL, 0, &rng);
  /* A zero-length file (crash before the header reached the disk) is an empty log. */
  write_image(env, LOG_PATH, "", 0);
  read_result res;
  read_back(env, LOG_PATH, WAL_KIND_WAL, NULL, &res);
  assert_int_equal(res.create_rc, MAYFLY_OK);
  assert_int_equal(res.final_rc, MAYFLY_ENOTFOUND);
  assert_int_equal(res.count, 0);
  assert_int_equal(res.file_number, 0);
  assert_int_equal(res.dropped, 0);
}

static void test_round_trip_posix(void **state) {
  mf_env *env = env_posix();
  mf_random rng;
  seed_rng(&rng, "round_trip_posix");
  const char *base = getenv("MAYFLY_TEST_TMP");
  if (!base || !*base) base = "/tmp";
  char dir[512], path[600];
  snprintf(dir, sizeof dir, "%s/test_wal.XXXXXX", base);
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/000001.log", dir);
  size_t sizes[64];
  for (size_t i = 0; i < 64; i++) sizes[i] = mf_random_uniform(&rng, 20000);
  check_round_trip(env, path, sizes, 64, &rng);
  assert_int_equal(env->remove_file(env, path), MAYFLY_OK);
  assert_int_equal(env->remove_dir(env, dir), MAYFLY_OK);
}

/* ---- torn tails ---- */

/* Cuts the log at offset cut (truncating, or zero-filling from cut to the end) and checks
 * that exactly the records untouched by the damage come back, then a clean end. */
static void check_torn_at(mf_env *env, const test_log *log, size_t cut, int zero_fill) {
  mf_buf img = MF_BUF_INIT;
  assert_int_equal(mf_buf_set(&img, log->image.data, zero_fill ? log->image.len : cut),
                   MAYFLY_OK);
  size_t intact = cut;
  if (zero_fill) {
    /* Bytes that were already zero are not damaged by zero-filling. */
    while (intact < img.len && img.data[intact] == 0) intact++;
    memset(img.data + cut, 0, img.len - cut);
  }
  write_image(env, LOG_PATH, img.data, img.len);
  uint64_t good_end;
  size_t expect = records_before(log, intact, &good_end);
  read_result res;
  read_back(env, LOG_PATH, WAL_KIND_WAL, log, &res);
  if (res.create_rc != MAYFLY_OK || res.final_rc != MAYFLY_ENOTFOUND || res.count != expect ||
      res.mismatch || res.dropped != img.len - good_end)
    fail_msg("cut at %zu (%s): create %d, end %d, %zu records (expected %zu), mismatch %d, "
             "dropped %llu (expected %llu): %s", cut, zero_fill ? "zero-filled" : "truncated",
             res.create_rc, res.final_rc, res.count, expect, res.mismatch,
             (unsigned long long)res.dropped, (unsigned long long)(img.len - good_end),
             res.message);
  assert_int_equal(res.file_number, intact >= FILE_HEADER_RECORD_SIZE ? 7 : 0);
  mf_buf_free(&img);
}

static void test_truncate_every_offset_small(void **state) {
  mf_env *env = *state;
  mf_random rng;
  seed_rng(&rng, "truncate_every_offset_small");
  const size_t sizes[] = {0, 1, 5, 20, 50, 100, 3, 0, 200, 77, 0, 13};
  test_log *log = write_log(env, LOG_PATH, sizes, sizeof sizes / sizeof sizes[0], &rng,
                            WAL_KIND_WAL, 7);
  for (size_t cut = 0; cut <= log->image.len; cut++) {
    check_torn_at(env, log, cut, 0);
    check_torn_at(env, log, cut, 1);
  }
  test_log_free(log);
}

/* A log over four blocks with fragmented records: every offset near a fragment, record or
 * block boundary, and every 61st offset elsewhere. */
static void test_truncate_multi_block(void **state) {
  mf_env *env = *state;
  mf_random rng;
  seed_rng(&rng, "truncate_multi_block");
  const size_t sizes[] = {1000, 40000, 0, 30000, 12, BLOCK - HDR, 500, 3};
  test_log *log = write_log(env, LOG_PATH, sizes, sizeof sizes / sizeof sizes[0], &rng,
                            WAL_KIND_WAL, 7);
  for (size_t cut = 0; cut <= log->image.len; cut++) {
    int near = cut % 61 == 0;
    for (size_t i = 0; i < log->count && !near; i++)
      near = (cut + 16 >= log->starts[i] && cut <= log->starts[i] + 16) ||
             (cut + 16 >= log->ends[i] && cut <= log->ends[i] + 16);
    size_t in_block = cut % BLOCK;
    near = near || in_block <= 16 || in_block + 16 >= BLOCK;
    if (!near) continue;
    check_torn_at(env, log, cut, 0);
    check_torn_at(env, log, cut, 1);
  }
  test_log_free(log);
}

/* Two faults in the last block: a length field enlarged over the records after it, and a
 * torn (cut, or garbage-filled) last record. The enlarged length is still corruption, not a
 * silent end that drops the whole records after it. */
static void test_enlarged_length_and_torn_tail(void **state) {
  mf_env *env = *state;
  mf_random rng;
  seed_rng(&rng, "enlarged_length_and_torn_tail");
  const size_t sizes[] = {100, 100, 100, 100, 100};
  for (int embed = 0; embed < 2; embed++) {
    test_log *log = write_log_embed(env, LOG_PATH, sizes, 5, &rng, WAL_KIND_WAL, 7, embed);
    for (int tail = 0; tail < 3; tail++) {     /* clean end, cut, garbage appended */
      for (int delta = 0; delta < 2; delta++) { /* + 4096 (past the end), + 1 (inside) */
        mf_buf img = MF_BUF_INIT;
        assert_int_equal(mf_buf_set(&img, log->image.data, log->image.len), MAYFLY_OK);
        if (tail == 1) img.len = log->starts[4] + 50;
        if (tail == 2) {
          assert_int_equal(mf_buf_reserve(&img, img.len + 40), MAYFLY_OK);
          fill_random(&rng, img.data + img.len, 40);
          img.len += 40;
        }
        img.data[log->starts[1] + (delta ? 4 : 5)] ^= (char)(delta ? 0x01 : 0x10);
        write_image(env, LOG_PATH, img.data, img.len);
        read_result res;
        read_back(env, LOG_PATH, WAL_KIND_WAL, log, &res);
        if (res.final_rc != MAYFLY_ECORRUPT || res.count != 1 || res.mismatch)
          fail_msg("embed %d, tail %d, length %s: end %d after %zu records (expected "
                   "corruption after 1): %s", embed, tail, delta ? "+1" : "+4096",
                   res.final_rc, res.count, res.message);
        mf_buf_free(&img);
      }
    }
    test_log_free(log);
  }
}

static void test_trailing_zeros_and_garbage(void **state) {
  mf_env *env = *state;
  mf_random rng;
  seed_rng(&rng, "trailing_zeros_and_garbage");
  const size_t sizes[] = {10, 20000, 0, 30};
  test_log *log = write_log(env, LOG_PATH, sizes, 4, &rng, WAL_KIND_WAL, 7);
  const size_t tails[] = {1, 6, 7, 8, 100, BLOCK, 2 * BLOCK + 3};
  for (int garbage = 0; garbage <= 1; garbage++) {
    for (size_t t = 0; t < sizeof tails / sizeof tails[0]; t++) {
      mf_buf img = MF_BUF_INIT;
      assert_int_equal(mf_buf_set(&img, log->image.data, log->image.len), MAYFLY_OK);
      assert_int_equal(mf_buf_reserve(&img, tails[t]), MAYFLY_OK);
      if (garbage)
        fill_random(&rng, img.data + img.len, tails[t]);
      else
        memset(img.data + img.len, 0, tails[t]);
      img.len += tails[t];
      write_image(env, LOG_PATH, img.data, img.len);
      read_result res;
      read_back(env, LOG_PATH, WAL_KIND_WAL, log, &res);
      assert_int_equal(res.create_rc, MAYFLY_OK);
      assert_int_equal(res.final_rc, MAYFLY_ENOTFOUND);
      assert_int_equal(res.count, log->count);
      assert_false(res.mismatch);
      assert_int_equal(res.dropped, tails[t]);
      mf_buf_free(&img);
    }
  }
  test_log_free(log);
}

/* ---- corruption ---- */

/* Flips bit `bit` of byte `pos` and checks: records before `victim` come back intact, then
 * ECORRUPT naming the file and an offset, or a clean end when the flip is in the last
 * fragment of the last record (nothing valid follows it: a torn write). A flip in an earlier
 * fragment of the last record is corruption, because that record's later fragments are
 * valid data after the damage. victim == -1 is the file header record. */
static void check_flip(mf_env *env, const test_log *log, long victim, size_t pos, int bit) {
  mf_buf img = MF_BUF_INIT;
  assert_int_equal(mf_buf_set(&img, log->image.data, log->image.len), MAYFLY_OK);
  img.data[pos] ^= (char)(1 << bit);
  write_image(env, LOG_PATH, img.data, img.len);
  mf_buf_free(&img);
  read_result res;
  read_back(env, LOG_PATH, WAL_KIND_WAL, log, &res);
  if (victim < 0) {
    if (res.create_rc != MAYFLY_ECORRUPT)
      fail_msg("flip at %zu bit %d in the file header: create returned %d", pos, bit,
               res.create_rc);
    assert_non_null(strstr(res.message, LOG_PATH));
    return;
  }
  uint64_t end = log->ends[victim];
  uint64_t last_fragment = (end - 1) / BLOCK * BLOCK;
  if (last_fragment < log->starts[victim]) last_fragment = log->starts[victim];
  int last = (size_t)victim == log->count - 1 && pos >= last_fragment;
  int expect_rc = last ? MAYFLY_ENOTFOUND : MAYFLY_ECORRUPT;
  if (res.create_rc != MAYFLY_OK || res.final_rc != expect_rc || res.count != (size_t)victim ||
      res.mismatch)
    fail_msg("flip at %zu bit %d in record %ld of %zu: create %d, end %d (expected %d), "
             "%zu records, mismatch %d: %s", pos, bit, victim, log->count, res.create_rc,
             res.final_rc, expect_rc, res.count, res.mismatch, res.message);
  if (last) {
    assert_int_equal(res.dropped, log->ends[victim] - (victim ? log->ends[victim - 1]
                                                              : FILE_HEADER_RECORD_SIZE));
  } else {
    assert_non_null(strstr(res.message, LOG_PATH));
    assert_non_null(strstr(res.message, "offset"));
  }
}

static void test_bit_flip_each_record(void **state) {
  mf_env *env = *state;
  mf_random rng;
  seed_rng(&rng, "bit_flip_each_record");
  size_t sizes[40];
  for (size_t i = 0; i < 40; i++)
    sizes[i] = i % 9 == 4 ? 30000 + mf_random_uniform(&rng, 50000) : mf_random_uniform(&rng, 300);
  sizes[0] = 0;
  sizes[39] = 70000; /* the last record spans blocks too */
  test_log *log = write_log(env, LOG_PATH, sizes, 40, &rng, WAL_KIND_WAL, 7);
  /* The file header record. */
  for (size_t pos = 0; pos < FILE_HEADER_RECORD_SIZE; pos++)
    check_flip(env, log, -1, pos, (int)mf_random_uniform(&rng, 8));
  for (size_t i = 0; i < log->count; i++) {
    uint64_t start = log->starts[i], len = log->ends[i] - start;
    /* Each field of the first fragment header, then random bytes of the record. */
    const size_t header_bytes[] = {0, 3, 4, 5, 6};
    for (size_t k = 0; k < 5; k++)
      check_flip(env, log, (long)i, start + header_bytes[k], (int)mf_random_uniform(&rng, 8));
    for (int k = 0; k < 6; k++)
      check_flip(env, log, (long)i, start + mf_random_uniform(&rng, len),
                 (int)mf_random_uniform(&rng, 8));
    check_flip(env, log, (long)i, log->ends[i] - 1, (int)mf_random_uniform(&rng, 8));
  }
  test_log_free(log);
}

/* Records whose bytes hold valid fragments (a user's value can): a cut anywhere in the last
 * record, or damage inside its last fragment, is still a torn tail, because the reader does
 * not look for valid data inside the damaged fragment's own bytes; damage to an earlier
 * record is still corruption, because valid fragments follow it. */
static void test_fragments_inside_records(void **state) {
  mf_env *env = *state;
  mf_random rng;
  seed_rng(&rng, "fragments_inside_records");
  const size_t sizes[] = {300, 2000, 700, 40000, 1500};
  size_t n = sizeof sizes / sizeof sizes[0];
  test_log *log = write_log_embed(env, LOG_PATH, sizes, n, &rng, WAL_KIND_WAL, 7, 1);
  for (size_t cut = log->ends[n - 2]; cut <= log->image.len; cut++) {
    check_torn_at(env, log, cut, 0);
    check_torn_at(env, log, cut, 1);
  }
  /* A byte changed in the last record's payload, outside and inside embedded fragments
   * (not in a fragment header at a block start: see the note in wal_reader.c). */
  for (uint64_t pos = log->starts[n - 1] + HDR; pos < log->ends[n - 1]; pos += 7)
    if (pos % BLOCK >= HDR) check_flip(env, log, (long)n - 1, (size_t)pos, 3);
  /* The same in the record before it, and in the fragmented one: corruption. */
  for (long victim = 2; victim <= 3; victim++)
    for (uint64_t pos = log->starts[victim] + HDR; pos < log->ends[victim]; pos += 997)
      if (pos % BLOCK >= HDR) check_flip(env, log, victim, (size_t)pos, 5);
  test_log_free(log);
}

/* A whole block of zeros in the middle of a log (a lost write) is corruption, not a tail. */
static void test_zeroed_block_in_middle(void **state) {
  mf_env *env = *state;
  mf_random rng;
  seed_rng(&rng, "zeroed_block_in_middle");
  size_t sizes[60];
  for (size_t i = 0; i < 60; i++) sizes[i] = 1000 + mf_random_uniform(&rng, 3000);
  test_log *log = write_log(env, LOG_PATH, sizes, 60, &rng, WAL_KIND_WAL, 7);
  assert_true(log->image.len > 3 * BLOCK);
  mf_buf img = MF_BUF_INIT;
  assert_int_equal(mf_buf_set(&img, log->image.data, log->image.len), MAYFLY_OK);
  memset(img.data + BLOCK, 0, BLOCK);
  write_image(env, LOG_PATH, img.data, img.len);
  mf_buf_free(&img);
  read_result res;
  read_back(env, LOG_PATH, WAL_KIND_WAL, log, &res);
  uint64_t good_end;
  assert_int_equal(res.create_rc, MAYFLY_OK);
  assert_int_equal(res.final_rc, MAYFLY_ECORRUPT);
  assert_int_equal(res.count, records_before(log, BLOCK, &good_end));
  assert_false(res.mismatch);
  test_log_free(log);
}

/* ---- hand-made files: headers and fragment sequences ---- */

static void put_fragment(mf_buf *img, int type, const void *payload, size_t len) {
  char h[HDR];
  encode_fixed32(h, mf_checksum_seeded((uint64_t)type, payload, len));
  encode_fixed16(h + 4, (uint16_t)len);
  h[6] = (char)type;
  assert_int_equal(mf_buf_append(img, h, HDR), MAYFLY_OK);
  assert_int_equal(mf_buf_append(img, payload, len), MAYFLY_OK);
}

static void put_file_header(mf_buf *img, uint64_t magic, uint32_t version, uint32_t kind) {
  char p[WAL_FILE_HEADER_SIZE];
  encode_fixed64(p, magic);
  encode_fixed32(p + 8, version);
  encode_fixed32(p + 12, kind);
  encode_fixed64(p + 16, 7);
  put_fragment(img, WAL_FRAG_FULL, p, sizeof p);
}

/* Reads a hand-made image and returns what ended it; *count gets the records returned. */
static int read_image(mf_env *env, const mf_buf *img, size_t *count, read_result *res) {
  write_image(env, LOG_PATH, img->data, img->len);
  read_back(env, LOG_PATH, WAL_KIND_WAL, NULL, res);
  *count = res->count;
  return res->create_rc != MAYFLY_OK ? res->create_rc : res->final_rc;
}

static void test_bad_file_headers(void **state) {
  mf_env *env = *state;
  read_result res;
  size_t count;
  mf_buf img = MF_BUF_INIT;

  put_file_header(&img, WAL_FILE_MAGIC ^ 1, WAL_FORMAT_VERSION, WAL_KIND_WAL);
  assert_int_equal(read_image(env, &img, &count, &res), MAYFLY_ECORRUPT);
  assert_non_null(strstr(res.message, LOG_PATH));
  assert_non_null(strstr(res.message, "magic"));

  mf_buf_clear(&img);
  put_file_header(&img, WAL_FILE_MAGIC, WAL_FORMAT_VERSION + 1, WAL_KIND_WAL);
  assert_int_equal(read_image(env, &img, &count, &res), MAYFLY_ECORRUPT);
  assert_non_null(strstr(res.message, "version"));

  mf_buf_clear(&img);
  put_file_header(&img, WAL_FILE_MAGIC, WAL_FORMAT_VERSION, WAL_KIND_MANIFEST);
  assert_int_equal(read_image(env, &img, &count, &res), MAYFLY_ECORRUPT);
  assert_non_null(strstr(res.message, "kind"));

  /* The right header passes (the control for the three cases above). */
  mf_buf_clear(&img);
  put_file_header(&img, WAL_FILE_MAGIC, WAL_FORMAT_VERSION, WAL_KIND_WAL);
  assert_int_equal(read_image(env, &img, &count, &res), MAYFLY_ENOTFOUND);
  assert_int_equal(res.file_number, 7);

  /* A header record of the wrong size, and one split into FIRST + LAST. */
  mf_buf_clear(&img);
  put_fragment(&img, WAL_FRAG_FULL, "MYFYLOGL", 8);
  assert_int_equal(read_image(env, &img, &count, &res), MAYFLY_ECORRUPT);
  char p[WAL_FILE_HEADER_SIZE];
  encode_fixed64(p, WAL_FILE_MAGIC);
  encode_fixed32(p + 8, WAL_FORMAT_VERSION);
  encode_fixed32(p + 12, WAL_KIND_WAL);
  encode_fixed64(p + 16, 7);
  mf_buf_clear(&img);
  put_fragment(&img, WAL_FRAG_FIRST, p, 10);
  put_fragment(&img, WAL_FRAG_LAST, p + 10, sizeof p - 10);
  assert_int_equal(read_image(env, &img, &count, &res), MAYFLY_ECORRUPT);

  /* A log written as a MANIFEST, read as a WAL; an unknown kind is refused up front. */
  mf_random rng;
  mf_random_seed(&rng, 3);
  const size_t sizes[] = {10};
  test_log *log = write_log(env, LOG_PATH, sizes, 1, &rng, WAL_KIND_MANIFEST, 9);
  read_back(env, LOG_PATH, WAL_KIND_WAL, log, &res);
  assert_int_equal(res.create_rc, MAYFLY_ECORRUPT);
  read_back(env, LOG_PATH, 99, log, &res);
  assert_int_equal(res.create_rc, MAYFLY_EINVAL);
  test_log_free(log);
  mf_buf_free(&img);
}

static void test_fragment_sequences(void **state) {
  mf_env *env = *state;
  read_result res;
  size_t count;
  mf_buf img = MF_BUF_INIT;
  struct {
    int types[4];
    int expect_rc;
    size_t expect_count;
  } cases[] = {
      {{WAL_FRAG_FULL, WAL_FRAG_FIRST, WAL_FRAG_LAST, 0}, MAYFLY_ENOTFOUND, 2},
      {{WAL_FRAG_FIRST, WAL_FRAG_MIDDLE, WAL_FRAG_MIDDLE, WAL_FRAG_LAST}, MAYFLY_ENOTFOUND, 1},
      {{WAL_FRAG_FULL, WAL_FRAG_MIDDLE, 0}, MAYFLY_ECORRUPT, 1},
      {{WAL_FRAG_LAST, WAL_FRAG_FULL, 0}, MAYFLY_ECORRUPT, 0},
      {{WAL_FRAG_FIRST, WAL_FRAG_FULL, 0}, MAYFLY_ECORRUPT, 0},
      {{WAL_FRAG_FIRST, WAL_FRAG_FIRST, WAL_FRAG_LAST, 0}, MAYFLY_ECORRUPT, 0},
      {{WAL_FRAG_FULL, WAL_FRAG_FIRST, WAL_FRAG_MIDDLE, 0}, MAYFLY_ENOTFOUND, 1}, /* cut off */
      {{WAL_FRAG_FULL, WAL_FRAG_FIRST, 0}, MAYFLY_ENOTFOUND, 1},                  /* cut off */
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    mf_buf_clear(&img);
    put_file_header(&img, WAL_FILE_MAGIC, WAL_FORMAT_VERSION, WAL_KIND_WAL);
    size_t header_len = img.len;
    for (int k = 0; k < 4 && cases[c].types[k]; k++) put_fragment(&img, cases[c].types[k], "abc", 3);
    int rc = read_image(env, &img, &count, &res);
    if (rc != cases[c].expect_rc || count != cases[c].expect_count)
      fail_msg("sequence case %zu: rc %d (expected %d), %zu records (expected %zu)", c, rc,
               cases[c].expect_rc, count, cases[c].expect_count);
    if (rc == MAYFLY_ECORRUPT) assert_non_null(strstr(res.message, "offset"));
    /* A chain cut off by the end of the file is all dropped. */
    if (c == 6) assert_int_equal(res.dropped, img.len - header_len - (HDR + 3));
  }
  mf_buf_free(&img);
}

/* ---- writer append failures ---- */

static int (*real_append)(mf_wfile *f, const void *data, size_t n);
static size_t append_budget;

static int budget_append(mf_wfile *f, const void *data, size_t n) {
  if (n > append_budget) return MF_ERR(MAYFLY_EIO, "injected append failure");
  append_budget -= n;
  return real_append(f, data, n);
}

static void test_writer_append_failure(void **state) {
  mf_env *mem = *state;
  mf_env env = *mem; /* a wrapper: the same env with a failing append */
  real_append = mem->append;
  env.append = budget_append;
  mf_wfile *f;
  assert_int_equal(env.new_writable(&env, LOG_PATH, &f), MAYFLY_OK);
  wal_writer *w = (wal_writer *)1;
  append_budget = 0;
  assert_int_equal(wal_writer_create(&env, f, WAL_KIND_WAL, 7, &w, NULL), MAYFLY_EIO);
  assert_null(w);
  assert_int_equal(env.close_writable(f), MAYFLY_OK);

  assert_int_equal(env.new_writable(&env, LOG_PATH, &f), MAYFLY_OK);
  append_budget = FILE_HEADER_RECORD_SIZE + HDR + 5 + HDR + 1000;
  assert_int_equal(wal_writer_create(&env, f, WAL_KIND_WAL, 7, &w, NULL), MAYFLY_OK);
  uint64_t written = 1;
  assert_int_equal(wal_writer_add_record(w, mf_slice_make("hello", 5), &written), MAYFLY_OK);
  assert_int_equal(written, HDR + 5);
  static char big[100000];
  assert_int_equal(wal_writer_add_record(w, mf_slice_make(big, sizeof big), &written),
                   MAYFLY_EIO);
  assert_int_equal(written, 0);
  /* The writer refuses further records even when the env would accept them. */
  append_budget = 1u << 30;
  assert_int_equal(wal_writer_add_record(w, mf_slice_make("x", 1), &written), MAYFLY_EIO);
  wal_writer_destroy(w);
  assert_int_equal(env.close_writable(f), MAYFLY_OK);

  /* The partial record is a torn tail: "hello" comes back, then a clean end. */
  read_result res;
  read_back(mem, LOG_PATH, WAL_KIND_WAL, NULL, &res);
  assert_int_equal(res.create_rc, MAYFLY_OK);
  assert_int_equal(res.final_rc, MAYFLY_ENOTFOUND);
  assert_int_equal(res.count, 1);
  assert_true(res.dropped > 0);
}

int main(void) {
  const char *s = getenv("MAYFLY_TEST_SEED");
  test_seed = s && *s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_round_trip_random_sizes, setup_mem, teardown_mem),
      cmocka_unit_test_setup_teardown(test_round_trip_block_boundaries, setup_mem, teardown_mem),
      cmocka_unit_test_setup_teardown(test_empty_log, setup_mem, teardown_mem),
      cmocka_unit_test(test_round_trip_posix),
      cmocka_unit_test_setup_teardown(test_truncate_every_offset_small, setup_mem, teardown_mem),
      cmocka_unit_test_setup_teardown(test_truncate_multi_block, setup_mem, teardown_mem),
      cmocka_unit_test_setup_teardown(test_trailing_zeros_and_garbage, setup_mem, teardown_mem),
      cmocka_unit_test_setup_teardown(test_bit_flip_each_record, setup_mem, teardown_mem),
      cmocka_unit_test_setup_teardown(test_fragments_inside_records, setup_mem, teardown_mem),
      cmocka_unit_test_setup_teardown(test_enlarged_length_and_torn_tail, setup_mem,
                                      teardown_mem),
      cmocka_unit_test_setup_teardown(test_zeroed_block_in_middle, setup_mem, teardown_mem),
      cmocka_unit_test_setup_teardown(test_bad_file_headers, setup_mem, teardown_mem),
      cmocka_unit_test_setup_teardown(test_fragment_sequences, setup_mem, teardown_mem),
      cmocka_unit_test_setup_teardown(test_writer_append_failure, setup_mem, teardown_mem),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
