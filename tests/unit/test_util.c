/* Tests for the util foundation: coding (fixed/varint/length-prefixed), slices and buffers,
 * checksums, internal keys, the error choke point, the PRNG, and the empty iterator and
 * cleanup chain from table/iterator.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mayfly.h"
#include "table/iterator.h"
#include "util/checksum.h"
#include "util/coding.h"
#include "util/error.h"
#include "util/ikey.h"
#include "util/random.h"
#include "util/slice.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

/* ---- varints ---- */

static const uint64_t varint64_cases[] = {0,
                                          1,
                                          127,
                                          128,
                                          255,
                                          300,
                                          16383,
                                          16384,
                                          UINT32_MAX - 1,
                                          UINT32_MAX,
                                          (uint64_t)UINT32_MAX + 1,
                                          (UINT64_C(1) << 56) - 1,
                                          (UINT64_C(1) << 63),
                                          UINT64_MAX - 1,
                                          UINT64_MAX};

static void test_varint64_roundtrip(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof varint64_cases / sizeof varint64_cases[0]; i++) {
    uint64_t v = varint64_cases[i];
    char buf[MF_MAX_VARINT64_LEN];
    char *end = encode_varint64(buf, v);
    assert_int_equal(end - buf, varint_length(v));
    uint64_t got = 0;
    const char *q = decode_varint64(buf, end, &got);
    assert_ptr_equal(q, end);
    assert_true(got == v);

    mf_buf b = MF_BUF_INIT;
    assert_int_equal(put_varint64(&b, v), MAYFLY_OK);
    assert_int_equal(b.len, (size_t)varint_length(v));
    mf_slice in = mf_buf_slice(&b);
    assert_true(get_varint64(&in, &got));
    assert_true(got == v);
    assert_int_equal(in.len, 0);
    mf_buf_free(&b);
  }
  assert_int_equal(varint_length(0), 1);
  assert_int_equal(varint_length(127), 1);
  assert_int_equal(varint_length(128), 2);
  assert_int_equal(varint_length(UINT32_MAX), 5);
  assert_int_equal(varint_length(UINT64_MAX), 10);
}

static void test_varint32_roundtrip(void **state) {
  (void)state;
  const uint32_t cases[] = {0, 1, 127, 128, 16383, 16384, (1u << 21) - 1, 1u << 21,
                            (1u << 28) - 1, 1u << 28, UINT32_MAX - 1, UINT32_MAX};
  mf_buf b = MF_BUF_INIT;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    assert_int_equal(put_varint32(&b, cases[i]), MAYFLY_OK);
  mf_slice in = mf_buf_slice(&b);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint32_t got = 0;
    assert_true(get_varint32(&in, &got));
    assert_int_equal(got, cases[i]);
  }
  assert_int_equal(in.len, 0);
  uint32_t dummy;
  assert_false(get_varint32(&in, &dummy)); /* empty input */
  mf_buf_free(&b);

  char buf[MF_MAX_VARINT32_LEN];
  char *end = encode_varint32(buf, 128);
  assert_int_equal(end - buf, 2);
  assert_int_equal((unsigned char)buf[0], 0x80);
  assert_int_equal((unsigned char)buf[1], 0x01);
}

static void test_varint_truncated(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof varint64_cases / sizeof varint64_cases[0]; i++) {
    uint64_t v = varint64_cases[i];
    char buf[MF_MAX_VARINT64_LEN];
    char *end = encode_varint64(buf, v);
    for (const char *lim = buf; lim < end; lim++) {
      uint64_t got;
      assert_null(decode_varint64(buf, lim, &got));
      mf_slice in = mf_slice_make(buf, (size_t)(lim - buf));
      assert_false(get_varint64(&in, &got));
      if (v <= UINT32_MAX) {
        uint32_t got32;
        assert_null(decode_varint32(buf, lim, &got32));
      }
    }
  }
}

static void test_varint_overlong(void **state) {
  (void)state;
  uint32_t v32;
  uint64_t v64;
  /* 6 bytes for a varint32 (value 0 padded with continuation bytes). */
  const char over32[] = {(char)0x80, (char)0x80, (char)0x80, (char)0x80, (char)0x80, 0x00};
  assert_null(decode_varint32(over32, over32 + sizeof over32, &v32));
  /* 5 bytes whose value needs more than 32 bits. */
  const char big32[] = {(char)0xff, (char)0xff, (char)0xff, (char)0xff, 0x1f};
  assert_null(decode_varint32(big32, big32 + sizeof big32, &v32));
  assert_non_null(decode_varint64(big32, big32 + sizeof big32, &v64));
  assert_true(v64 == ((UINT64_C(1) << 33) - 1));
  /* UINT32_MAX itself is fine. */
  const char max32[] = {(char)0xff, (char)0xff, (char)0xff, (char)0xff, 0x0f};
  assert_non_null(decode_varint32(max32, max32 + sizeof max32, &v32));
  assert_int_equal(v32, UINT32_MAX);
  /* 11 bytes for a varint64. */
  char over64[11];
  memset(over64, 0x80, sizeof over64);
  over64[10] = 0;
  assert_null(decode_varint64(over64, over64 + sizeof over64, &v64));
  /* 10 bytes whose last byte overflows 64 bits. */
  char ovf64[10];
  memset(ovf64, 0xff, sizeof ovf64);
  ovf64[9] = 0x02;
  assert_null(decode_varint64(ovf64, ovf64 + sizeof ovf64, &v64));
  ovf64[9] = 0x01; /* exactly UINT64_MAX */
  assert_non_null(decode_varint64(ovf64, ovf64 + sizeof ovf64, &v64));
  assert_true(v64 == UINT64_MAX);
  /* The slice form rejects the same input. */
  mf_slice in = mf_slice_make(over32, sizeof over32);
  assert_false(get_varint32(&in, &v32));
}

/* ---- fixed and length-prefixed ---- */

static void test_fixed_roundtrip(void **state) {
  (void)state;
  const uint64_t cases[] = {0, 1, 0xff, 0x100, 0x12345678, UINT32_MAX, (uint64_t)UINT32_MAX + 1,
                            0x0123456789abcdefULL, UINT64_MAX};
  mf_buf b = MF_BUF_INIT;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    assert_int_equal(put_fixed32(&b, (uint32_t)cases[i]), MAYFLY_OK);
    assert_int_equal(put_fixed64(&b, cases[i]), MAYFLY_OK);
  }
  assert_int_equal(b.len, 12 * (sizeof cases / sizeof cases[0]));
  mf_slice in = mf_buf_slice(&b);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint32_t v32;
    uint64_t v64;
    assert_true(get_fixed32(&in, &v32));
    assert_int_equal(v32, (uint32_t)cases[i]);
    assert_true(get_fixed64(&in, &v64));
    assert_true(v64 == cases[i]);
  }
  uint32_t v32;
  uint64_t v64;
  assert_false(get_fixed32(&in, &v32));
  assert_false(get_fixed64(&in, &v64));
  mf_slice short3 = mf_slice_make("abc", 3);
  assert_false(get_fixed32(&short3, &v32));
  mf_slice short7 = mf_slice_make("abcdefg", 7);
  assert_false(get_fixed64(&short7, &v64));
  mf_buf_free(&b);

  /* Little-endian byte order, as the format docs say. */
  char p[8];
  encode_fixed32(p, 0x04030201u);
  assert_memory_equal(p, "\x01\x02\x03\x04", 4);
  encode_fixed64(p, 0x0807060504030201ULL);
  assert_memory_equal(p, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
  encode_fixed16(p, 0xbeef);
  assert_int_equal(decode_fixed16(p), 0xbeef);
  assert_int_equal((unsigned char)p[0], 0xef);
}

static void test_length_prefixed(void **state) {
  (void)state;
  mf_buf b = MF_BUF_INIT;
  char big[300];
  memset(big, 'x', sizeof big);
  assert_int_equal(put_length_prefixed(&b, mf_slice_make("", 0)), MAYFLY_OK);
  assert_int_equal(put_length_prefixed(&b, mf_slice_cstr("hello")), MAYFLY_OK);
  assert_int_equal(put_length_prefixed(&b, mf_slice_make(big, sizeof big)), MAYFLY_OK);
  assert_int_equal(b.len, 1 + 6 + 2 + 300);

  mf_slice in = mf_buf_slice(&b), out;
  assert_true(get_length_prefixed(&in, &out));
  assert_int_equal(out.len, 0);
  assert_true(get_length_prefixed(&in, &out));
  assert_true(mf_slice_equal(out, mf_slice_cstr("hello")));
  assert_true(get_length_prefixed(&in, &out));
  assert_int_equal(out.len, sizeof big);
  assert_memory_equal(out.data, big, sizeof big);
  assert_int_equal(in.len, 0);
  assert_false(get_length_prefixed(&in, &out));

  /* Length claims more bytes than present. */
  mf_slice trunc = mf_slice_make(b.data + 7, b.len - 7 - 1);
  assert_false(get_length_prefixed(&trunc, &out));
  mf_buf_free(&b);
}

/* ---- slices and buffers ---- */

/* The reference order: byte by byte as unsigned chars, the shorter first on a tie. */
static int reference_compare(mf_slice a, mf_slice b) {
  size_t n = a.len < b.len ? a.len : b.len;
  for (size_t i = 0; i < n; i++) {
    unsigned char x = (unsigned char)a.data[i], y = (unsigned char)b.data[i];
    if (x != y) return x < y ? -1 : 1;
  }
  return a.len < b.len ? -1 : a.len > b.len;
}

/* mf_slice_compare's word-at-a-time path against the reference: pairs sharing a prefix of
 * every length up to 40, differing at one byte (any value, high bit included) or in length,
 * at unaligned addresses. Deterministic (a fixed LCG), so nothing to replay. */
static void test_slice_compare_words(void **state) {
  (void)state;
  char a[64], b[64];
  uint64_t x = 12345;
  for (int t = 0; t < 200000; t++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    size_t la = (size_t)(x >> 33) % 41, lb = (size_t)(x >> 45) % 41;
    size_t off = (size_t)(x >> 20) % 8;
    for (size_t i = 0; i < la || i < lb; i++) a[off + i] = b[off + i] = (char)(x >> (i % 56));
    if (la && (x & 3)) { /* one differing byte */
      size_t at = (size_t)(x >> 7) % la;
      a[off + at] = (char)(x >> 51);
    }
    mf_slice sa = mf_slice_make(a + off, la), sb = mf_slice_make(b + off, lb);
    int got = mf_slice_compare(sa, sb), want = reference_compare(sa, sb);
    if ((got > 0) != (want > 0) || (got < 0) != (want < 0))
      fail_msg("compare of lengths %zu and %zu: got %d, want %d (case %d)", la, lb, got, want,
               t);
  }
}

static void test_slice_and_buf(void **state) {
  (void)state;
  assert_true(mf_slice_compare(mf_slice_cstr("a"), mf_slice_cstr("b")) < 0);
  assert_true(mf_slice_compare(mf_slice_cstr("ab"), mf_slice_cstr("a")) > 0);
  assert_true(mf_slice_compare(mf_slice_cstr("a"), mf_slice_cstr("ab")) < 0);
  assert_int_equal(mf_slice_compare(mf_slice_make(NULL, 0), mf_slice_cstr("")), 0);
  assert_true(mf_slice_compare(mf_slice_make("\xff", 1), mf_slice_make("\x01", 1)) > 0);
  assert_true(mf_slice_equal(mf_slice_make(NULL, 0), mf_slice_cstr("")));
  assert_false(mf_slice_equal(mf_slice_cstr("ab"), mf_slice_cstr("ac")));

  mf_buf b = MF_BUF_INIT;
  for (int i = 0; i < 1000; i++) assert_int_equal(mf_buf_append(&b, "0123456789", 10), 0);
  assert_int_equal(b.len, 10000);
  assert_true(b.cap >= b.len);
  assert_memory_equal(b.data + 9990, "0123456789", 10);
  assert_int_equal(mf_buf_set(&b, "xy", 2), 0);
  assert_int_equal(b.len, 2);
  assert_memory_equal(b.data, "xy", 2);
  mf_buf_clear(&b);
  assert_int_equal(b.len, 0);
  mf_buf_free(&b);
  assert_null(b.data);
  assert_int_equal(b.cap, 0);
}

/* ---- checksums ---- */

static void test_checksum(void **state) {
  (void)state;
  char data[256];
  for (size_t i = 0; i < sizeof data; i++) data[i] = (char)(i * 7 + 3);
  uint32_t base = mf_checksum(data, sizeof data);
  assert_int_equal(base, mf_checksum(data, sizeof data)); /* deterministic */
  assert_int_equal(base, mf_checksum_seeded(0, data, sizeof data));
  for (size_t byte = 0; byte < sizeof data; byte += 17) {
    for (int bit = 0; bit < 8; bit++) {
      data[byte] ^= (char)(1 << bit);
      assert_int_not_equal(mf_checksum(data, sizeof data), base);
      data[byte] ^= (char)(1 << bit);
    }
  }
  assert_int_equal(mf_checksum(data, sizeof data), base);
  assert_int_not_equal(mf_checksum_seeded(1, data, sizeof data), base);
  assert_int_not_equal(mf_checksum_seeded(1, data, sizeof data),
                       mf_checksum_seeded(2, data, sizeof data));
  assert_int_not_equal(mf_checksum(data, sizeof data - 1), base);
  assert_true(mf_hash64(data, sizeof data) == mf_hash64(data, sizeof data));
  assert_true(mf_hash64(data, sizeof data) != mf_hash64(data, sizeof data - 1));
  /* Empty input is allowed. */
  (void)mf_checksum("", 0);
}

/* The on-disk checksum is the low 32 bits of XXH3-64 with the seed, at every length: the
 * short inputs hashed inline and the long ones (blocks) that may go to libxxhash's run-time
 * dispatcher must agree with the reference, or old files would stop verifying. */
static void test_checksum_is_xxh3(void **state) {
  (void)state;
  enum { MAX_LEN = 10000 };
  static char data[MAX_LEN];
  mf_random rnd;
  mf_random_seed(&rnd, 42);
  for (size_t i = 0; i < MAX_LEN; i++) data[i] = (char)mf_random_next(&rnd);
  for (size_t len = 0; len <= MAX_LEN; len += len < 600 ? 1 : 97) {
    for (uint64_t seed = 0; seed < 3; seed++) {
      uint32_t expect = (uint32_t)XXH3_64bits_withSeed(data, len, seed);
      assert_int_equal(mf_checksum_seeded(seed, data, len), expect);
    }
  }
}

/* ---- internal keys ---- */

static mf_buf make_ikey(const char *k, size_t klen, uint64_t seq, int type) {
  mf_buf b = MF_BUF_INIT;
  assert_int_equal(ikey_append(&b, mf_slice_make(k, klen), seq, type), MAYFLY_OK);
  return b;
}

static int ikey_cmp3(const char *ka, size_t la, uint64_t sa, int ta, const char *kb, size_t lb,
                     uint64_t sb, int tb) {
  mf_buf a = make_ikey(ka, la, sa, ta), b = make_ikey(kb, lb, sb, tb);
  int r = ikey_compare(mf_buf_slice(&a), mf_buf_slice(&b));
  int back = ikey_compare(mf_buf_slice(&b), mf_buf_slice(&a));
  /* Antisymmetry: sign(r) == -sign(back). */
  assert_int_equal((r > 0) - (r < 0), -((back > 0) - (back < 0)));
  mf_buf_free(&a);
  mf_buf_free(&b);
  return r;
}

static void test_ikey_order(void **state) {
  (void)state;
  /* User key ascending. */
  assert_true(ikey_cmp3("a", 1, 1, MF_TYPE_VALUE, "b", 1, 1, MF_TYPE_VALUE) < 0);
  assert_true(ikey_cmp3("a", 1, 1, MF_TYPE_VALUE, "b", 1, 100, MF_TYPE_VALUE) < 0);
  /* Same user key: seq descending. */
  assert_true(ikey_cmp3("k", 1, 9, MF_TYPE_VALUE, "k", 1, 5, MF_TYPE_VALUE) < 0);
  assert_true(ikey_cmp3("k", 1, 5, MF_TYPE_VALUE, "k", 1, 9, MF_TYPE_VALUE) > 0);
  /* Same seq: type descending. */
  assert_true(ikey_cmp3("k", 1, 5, MF_TYPE_VALUE, "k", 1, 5, MF_TYPE_DELETE) < 0);
  assert_true(ikey_cmp3("k", 1, 5, MF_TYPE_BLOB_INDEX, "k", 1, 5, MF_TYPE_VALUE) < 0);
  assert_int_equal(ikey_cmp3("k", 1, 5, MF_TYPE_VALUE, "k", 1, 5, MF_TYPE_VALUE), 0);
  /* Shorter user key first on a common prefix, whatever the trailers (the trailer bytes must
   * not leak into the user-key comparison). */
  assert_true(ikey_cmp3("ab", 2, 1, MF_TYPE_DELETE, "abc", 3, MF_MAX_SEQ, MF_TYPE_VALUE) < 0);
  assert_true(ikey_cmp3("ab", 2, MF_MAX_SEQ, MF_TYPE_VALUE, "ab\0", 3, 1, MF_TYPE_VALUE) < 0);
  assert_true(ikey_cmp3("ab", 2, 0, MF_TYPE_DELETE, "ab\xff", 3, 0, MF_TYPE_DELETE) < 0);
  /* Empty user key sorts first. */
  assert_true(ikey_cmp3("", 0, 1, MF_TYPE_VALUE, "\0", 1, MF_MAX_SEQ, MF_TYPE_VALUE) < 0);
  assert_true(ikey_cmp3("", 0, 7, MF_TYPE_VALUE, "", 0, 3, MF_TYPE_VALUE) < 0);
  /* Unsigned bytes. */
  assert_true(ikey_cmp3("\x7f", 1, 1, MF_TYPE_VALUE, "\x80", 1, 1, MF_TYPE_VALUE) < 0);
  /* The seek key sorts before every entry at its seq and after every newer entry. */
  assert_true(ikey_cmp3("k", 1, 5, MF_TYPE_FOR_SEEK, "k", 1, 5, MF_TYPE_VALUE) <= 0);
  assert_true(ikey_cmp3("k", 1, 5, MF_TYPE_FOR_SEEK, "k", 1, 5, MF_TYPE_DELETE) < 0);
  assert_true(ikey_cmp3("k", 1, 5, MF_TYPE_FOR_SEEK, "k", 1, 6, MF_TYPE_DELETE) > 0);

  assert_true(bytewise_compare(mf_slice_cstr("a"), mf_slice_cstr("ab")) < 0);
}

static void test_ikey_parse(void **state) {
  (void)state;
  mf_buf b = make_ikey("user", 4, MF_MAX_SEQ, MF_TYPE_BLOB_INDEX);
  assert_int_equal(b.len, 12);
  mf_parsed_ikey p;
  assert_true(ikey_parse(mf_buf_slice(&b), &p));
  assert_true(mf_slice_equal(p.user_key, mf_slice_cstr("user")));
  assert_true(p.seq == MF_MAX_SEQ);
  assert_int_equal(p.type, MF_TYPE_BLOB_INDEX);
  assert_true(ikey_trailer(mf_buf_slice(&b)) == ikey_pack(MF_MAX_SEQ, MF_TYPE_BLOB_INDEX));
  assert_true(mf_slice_equal(ikey_user_key(mf_buf_slice(&b)), mf_slice_cstr("user")));
  mf_buf_free(&b);

  /* Empty user key: exactly 8 bytes is fine. */
  b = make_ikey("", 0, 42, MF_TYPE_DELETE);
  assert_true(ikey_parse(mf_buf_slice(&b), &p));
  assert_int_equal(p.user_key.len, 0);
  assert_true(p.seq == 42);
  assert_int_equal(p.type, MF_TYPE_DELETE);
  /* Fewer than 8 bytes is rejected. */
  for (size_t n = 0; n < 8; n++) assert_false(ikey_parse(mf_slice_make(b.data, n), &p));
  mf_buf_free(&b);

  /* Unknown types are rejected. */
  for (int type = MF_TYPE_MAX + 1; type < 256; type += 37) {
    char raw[9] = "k";
    encode_fixed64(raw + 1, ikey_pack(1, type));
    assert_false(ikey_parse(mf_slice_make(raw, 9), &p));
  }
  char raw[9] = "k";
  encode_fixed64(raw + 1, ikey_pack(1, 255));
  assert_false(ikey_parse(mf_slice_make(raw, 9), &p));
}

/* ---- errors ---- */

/* An error raised in another function: the message names that function's line. */
static const int fail_line = __LINE__ + 2;
static int fail_with(int code) {
  return MF_ERR(code, "table %s: bad block at offset %d", "x.sst", 4096);
}

static void test_error(void **state) {
  (void)state;
  mf_error_clear();
  assert_string_equal(mf_error_message(), "");
  char want[160];
  assert_int_equal(fail_with(MAYFLY_ECORRUPT), MAYFLY_ECORRUPT);
  snprintf(want, sizeof want, "test_util.c:%d: table x.sst: bad block at offset 4096",
           fail_line);
  assert_string_equal(mf_error_message(), want);

  int expect_line = __LINE__ + 1;
  int rc = MF_ERR(MAYFLY_EIO, "write %s failed", "000001.log");
  assert_int_equal(rc, MAYFLY_EIO);
  snprintf(want, sizeof want, "test_util.c:%d: write 000001.log failed", expect_line);
  assert_string_equal(mf_error_message(), want);

  /* Very long messages are truncated, not overflowed. */
  char longarg[4000];
  memset(longarg, 'z', sizeof longarg - 1);
  longarg[sizeof longarg - 1] = '\0';
  assert_int_equal(MF_ERR(MAYFLY_EINVAL, "%s", longarg), MAYFLY_EINVAL);
  assert_true(strlen(mf_error_message()) < sizeof longarg - 1);
  assert_true(strlen(mf_error_message()) > 100);

  mf_error_clear();
  assert_string_equal(mf_error_message(), "");
  /* Messages by handle: each id keeps its last message until a call begins on it again. */
  mf_error_begin(7);
  assert_int_equal(mf_error_owner(), 7);
  (void)MF_ERR(MAYFLY_EIO, "seven");
  const char *seven = mf_error_message_of(7);
  mf_error_begin(0);
  (void)MF_ERR(MAYFLY_EIO, "none");
  mf_error_begin(8);
  assert_non_null(strstr(mf_error_message_of(7), "seven"));
  assert_ptr_equal(mf_error_message_of(7), seven); /* in place: the pointer stays good */
  assert_non_null(strstr(mf_error_message_of(0), "none"));
  assert_string_equal(mf_error_message_of(8), "");
  assert_string_equal(mf_error_message_of(9), "");
  /* set_owner hands the current message over; forget drops an id's. */
  (void)MF_ERR(MAYFLY_EIO, "eight");
  mf_error_set_owner(0);
  assert_non_null(strstr(mf_error_message_of(0), "eight"));
  assert_string_equal(mf_error_message_of(8), "");
  mf_error_forget(7);
  assert_string_equal(mf_error_message_of(7), "");
  mf_error_forget(0);
  assert_string_equal(mf_error_message_of(0), "");
  /* More ids with messages than slots: the oldest go, no id ever reads another's. */
  for (uint64_t id = 100; id < 120; id++) {
    mf_error_begin(id);
    (void)MF_ERR(MAYFLY_EIO, "id %llu", (unsigned long long)id);
  }
  for (uint64_t id = 100; id < 120; id++) {
    char own[32];
    snprintf(own, sizeof own, "id %llu", (unsigned long long)id);
    const char *m = mf_error_message_of(id);
    if (*m && !strstr(m, own)) fail_msg("id %llu reads \"%s\"", (unsigned long long)id, m);
    if (id >= 116 && !strstr(m, own)) fail_msg("id %llu lost its message", (unsigned long long)id);
  }
  mf_error_begin(0);
}

/* ---- random ---- */

static void test_random(void **state) {
  (void)state;
  mf_random a, b, c;
  mf_random_seed(&a, 7);
  mf_random_seed(&b, 7);
  mf_random_seed(&c, 8);
  int differs = 0;
  for (int i = 0; i < 100; i++) {
    uint64_t x = mf_random_next(&a), y = mf_random_next(&b), z = mf_random_next(&c);
    assert_true(x == y);
    differs |= x != z;
  }
  assert_true(differs);
  /* Seed 0 must not get stuck at zero (xorshift's fixed point). */
  mf_random_seed(&a, 0);
  assert_true(mf_random_next(&a) != 0 || mf_random_next(&a) != 0);
  /* uniform stays in range and hits every bucket. */
  int hits[10] = {0};
  for (int i = 0; i < 10000; i++) {
    uint64_t v = mf_random_uniform(&a, 10);
    assert_true(v < 10);
    hits[v]++;
  }
  for (int i = 0; i < 10; i++) assert_true(hits[i] > 800);
}

/* ---- empty iterator and cleanups ---- */

static int cleanup_log[8];
static int cleanup_count;

static void record_cleanup(void *arg1, void *arg2) {
  cleanup_log[cleanup_count++] = (int)(intptr_t)arg1 * 10 + (int)(intptr_t)arg2;
}

static void test_empty_iter_and_cleanups(void **state) {
  (void)state;
  mf_iter *it = iter_new_empty(MAYFLY_OK);
  assert_non_null(it);
  iter_seek_to_first(it);
  assert_false(iter_valid(it));
  iter_seek_to_last(it);
  assert_false(iter_valid(it));
  iter_seek(it, mf_slice_cstr("x"));
  assert_false(iter_valid(it));
  assert_int_equal(iter_status(it), MAYFLY_OK);

  cleanup_count = 0;
  assert_int_equal(iter_register_cleanup(it, record_cleanup, (void *)1, (void *)2), MAYFLY_OK);
  assert_int_equal(iter_register_cleanup(it, record_cleanup, (void *)3, (void *)4), MAYFLY_OK);
  assert_int_equal(iter_register_cleanup(it, record_cleanup, (void *)5, (void *)6), MAYFLY_OK);
  iter_destroy(it);
  /* Last registered runs first. */
  assert_int_equal(cleanup_count, 3);
  assert_int_equal(cleanup_log[0], 56);
  assert_int_equal(cleanup_log[1], 34);
  assert_int_equal(cleanup_log[2], 12);

  it = iter_new_empty(MAYFLY_ECORRUPT);
  assert_non_null(it);
  iter_seek_to_first(it);
  assert_false(iter_valid(it));
  assert_int_equal(iter_status(it), MAYFLY_ECORRUPT);
  iter_destroy(it);
  iter_destroy(NULL); /* no-op */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_slice_compare_words),
      cmocka_unit_test(test_varint64_roundtrip),
      cmocka_unit_test(test_varint32_roundtrip),
      cmocka_unit_test(test_varint_truncated),
      cmocka_unit_test(test_varint_overlong),
      cmocka_unit_test(test_fixed_roundtrip),
      cmocka_unit_test(test_length_prefixed),
      cmocka_unit_test(test_slice_and_buf),
      cmocka_unit_test(test_checksum),
      cmocka_unit_test(test_checksum_is_xxh3),
      cmocka_unit_test(test_ikey_order),
      cmocka_unit_test(test_ikey_parse),
      cmocka_unit_test(test_error),
      cmocka_unit_test(test_random),
      cmocka_unit_test(test_empty_iter_and_cleanups),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
