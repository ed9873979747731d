/* Tables end to end on the in-memory env: build 12k random internal keys with each
 * compression type, with and without a block cache and a filter; iterate forwards and
 * backwards, seek, get; damaged files (bit flips in data blocks, truncation, bad footer magic,
 * checksum and handles) give MAYFLY_ECORRUPT and never wrong data; the two-level iterator
 * over hand-made blocks (with empty and failing sub-iterators). Randomized: prints its seed;
 * set MAYFLY_TEST_SEED to replay.
 *
 * The table tests run in three modes, so both ways of reading blocks stay covered: "pread"
 * (env_mem as is: it cannot map files), "mapped" (env_mem plus a map_readable that hands the
 * table an exact-size copy of the file, so a read past the mapping is an ASan error) and
 * "refused" (a map_readable that always declines, as env_posix does past its limit of mapped
 * files). One more test reads a table through env_posix's real mmap. */
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

#include "cache/cache.h"
#include "db/options.h"
#include "env/env.h"
#include "mayfly.h"
#include "table/block.h"
#include "table/block_builder.h"
#include "table/format.h"
#include "table/table.h"
#include "table/table_builder.h"
#include "table/two_level_iter.h"
#include "util/checksum.h"
#include "util/coding.h"
#include "util/error.h"
#include "util/ikey.h"
#include "util/random.h"

#include "test_map_env.h"

static mf_random rnd;

static uint64_t test_seed(void) {
  const char *env = getenv("MAYFLY_TEST_SEED");
  uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
  printf("test_table: seed %llu (replay with MAYFLY_TEST_SEED)\n", (unsigned long long)seed);
  return seed;
}

/* ---- the data set: sorted, distinct internal keys ---- */

typedef struct entry {
  mf_buf ikey;
  mf_buf value;
} entry;

typedef struct dataset {
  entry *e;
  size_t n;
} dataset;

static int entry_cmp(const void *a, const void *b) {
  return ikey_compare(mf_buf_slice(&((const entry *)a)->ikey), mf_buf_slice(&((const entry *)b)->ikey));
}

static void random_user_key(mf_buf *k) {
  /* Short keys from a small alphabet share prefixes (exercising prefix compression) and
   * repeat (several versions of one user key). */
  size_t len = 1 + mf_random_uniform(&rnd, 12);
  mf_buf_clear(k);
  for (size_t i = 0; i < len; i++) {
    char c = (char)('a' + mf_random_uniform(&rnd, 6));
    mf_buf_append(k, &c, 1);
  }
}

static dataset make_dataset(size_t n) {
  dataset d = {calloc(n, sizeof(entry)), 0};
  mf_buf user = MF_BUF_INIT;
  assert_non_null(d.e);
  for (size_t i = 0; i < n; i++) {
    random_user_key(&user);
    entry *e = &d.e[i];
    uint64_t seq = 1 + mf_random_uniform(&rnd, 1000000);
    int type = mf_random_uniform(&rnd, 10) == 0 ? MF_TYPE_DELETE : MF_TYPE_VALUE;
    assert_int_equal(ikey_append(&e->ikey, mf_buf_slice(&user), seq, type), MAYFLY_OK);
    /* Half compressible text, half random bytes. */
    size_t vlen = mf_random_uniform(&rnd, 120);
    int text = (int)mf_random_uniform(&rnd, 2);
    for (size_t j = 0; j < vlen; j++) {
      char c = text ? "value-of-"[j % 9] : (char)mf_random_next(&rnd);
      mf_buf_append(&e->value, &c, 1);
    }
  }
  qsort(d.e, n, sizeof(entry), entry_cmp);
  size_t out = 0; /* drop duplicate internal keys */
  for (size_t i = 0; i < n; i++) {
    if (out > 0 && entry_cmp(&d.e[out - 1], &d.e[i]) == 0) {
      mf_buf_free(&d.e[i].ikey);
      mf_buf_free(&d.e[i].value);
      continue;
    }
    d.e[out++] = d.e[i];
  }
  d.n = out;
  mf_buf_free(&user);
  return d;
}

static void free_dataset(dataset *d) {
  for (size_t i = 0; i < d->n; i++) {
    mf_buf_free(&d->e[i].ikey);
    mf_buf_free(&d->e[i].value);
  }
  free(d->e);
}

static mf_slice key_of(const dataset *d, size_t i) { return mf_buf_slice(&d->e[i].ikey); }
static mf_slice value_of(const dataset *d, size_t i) { return mf_buf_slice(&d->e[i].value); }

/* Index of the first entry >= k (d->n if none). */
static size_t lower_bound(const dataset *d, mf_slice k) {
  size_t lo = 0, hi = d->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (ikey_compare(key_of(d, mid), k) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* ---- envs: the modes described at the top ---- */

enum env_mode { MODE_PREAD, MODE_MAPPED, MODE_REFUSED };
static enum env_mode g_mode;

/* A fresh in-memory env for the current mode; destroy with env->destroy(env). */
static mf_env *new_env(void) {
  if (g_mode == MODE_PREAD) {
    mf_env *base;
    assert_int_equal(env_mem_create(&base), MAYFLY_OK);
    assert_false(env_has_map(base)); /* or the "pread" mode would not be one */
    return base;
  }
  return test_map_env_create(g_mode == MODE_REFUSED);
}

/* How many files env mapped so far (0 for the plain in-memory env). */
static int maps_made(mf_env *env) { return test_map_env_maps_made(env); }

static int use_pread(void **state) {
  (void)state;
  g_mode = MODE_PREAD;
  return 0;
}
static int use_mapped(void **state) {
  (void)state;
  g_mode = MODE_MAPPED;
  return 0;
}
static int use_refused(void **state) {
  (void)state;
  g_mode = MODE_REFUSED;
  return 0;
}

/* ---- building and opening ---- */

static table_options default_options(int compression) {
  table_options o = {4096, 16, 10, compression, 3};
  return o;
}

static uint64_t build(mf_env *env, const char *fname, const table_options *o, const dataset *d) {
  mf_wfile *f;
  table_builder *b;
  assert_int_equal(env->new_writable(env, fname, &f), MAYFLY_OK);
  assert_int_equal(table_builder_create(o, env, f, fname, &b), MAYFLY_OK);
  for (size_t i = 0; i < d->n; i++)
    assert_int_equal(table_builder_add(b, key_of(d, i), value_of(d, i)), MAYFLY_OK);
  assert_int_equal(table_builder_num_entries(b), d->n);
  assert_int_equal(table_builder_finish(b), MAYFLY_OK);
  uint64_t size = table_builder_file_size(b);
  table_builder_destroy(b);
  assert_int_equal(env->close_writable(f), MAYFLY_OK);
  uint64_t on_disk;
  assert_int_equal(env->file_size(env, fname, &on_disk), MAYFLY_OK);
  assert_int_equal(on_disk, size);
  return size;
}

static int open_table(mf_env *env, const char *fname, mf_cache *cache, table **t) {
  mf_rfile *f;
  uint64_t size;
  assert_int_equal(env->open_readable(env, fname, &f), MAYFLY_OK);
  assert_int_equal(env->file_size(env, fname, &size), MAYFLY_OK);
  return table_open(env, f, fname, size, cache, cache ? cache_new_id(cache) : 0, t);
}

static void write_file(mf_env *env, const char *fname, const char *data, size_t n) {
  mf_wfile *f;
  assert_int_equal(env->new_writable(env, fname, &f), MAYFLY_OK);
  assert_int_equal(env->append(f, data, n), MAYFLY_OK);
  assert_int_equal(env->close_writable(f), MAYFLY_OK);
}

/* ---- checks ---- */

static void check_forward(table *t, const dataset *d) {
  mf_iter *it = table_iter_create(t);
  assert_non_null(it);
  size_t i = 0;
  for (iter_seek_to_first(it); iter_valid(it); iter_next(it), i++) {
    assert_true(i < d->n);
    assert_true(mf_slice_equal(iter_key(it), key_of(d, i)));
    assert_true(mf_slice_equal(iter_value(it), value_of(d, i)));
  }
  assert_int_equal(iter_status(it), MAYFLY_OK);
  assert_int_equal(i, d->n);
  iter_destroy(it);
}

static void check_backward(table *t, const dataset *d) {
  mf_iter *it = table_iter_create(t);
  size_t i = d->n;
  for (iter_seek_to_last(it); iter_valid(it); iter_prev(it)) {
    assert_true(i > 0);
    i--;
    assert_true(mf_slice_equal(iter_key(it), key_of(d, i)));
    assert_true(mf_slice_equal(iter_value(it), value_of(d, i)));
  }
  assert_int_equal(iter_status(it), MAYFLY_OK);
  assert_int_equal(i, 0);
  iter_destroy(it);
}

static void check_seeks(table *t, const dataset *d) {
  mf_iter *it = table_iter_create(t);
  mf_buf probe = MF_BUF_INIT, user = MF_BUF_INIT;
  for (int n = 0; n < 2000; n++) {
    mf_buf_clear(&probe);
    if (n % 2 && d->n) { /* an existing user key at a random sequence number */
      mf_slice k = key_of(d, mf_random_uniform(&rnd, d->n));
      ikey_append(&probe, ikey_user_key(k), mf_random_uniform(&rnd, 1000001), MF_TYPE_FOR_SEEK);
    } else {
      random_user_key(&user);
      ikey_append(&probe, mf_buf_slice(&user), MF_MAX_SEQ, MF_TYPE_FOR_SEEK);
    }
    size_t expect = lower_bound(d, mf_buf_slice(&probe));
    iter_seek(it, mf_buf_slice(&probe));
    if (expect == d->n) {
      assert_false(iter_valid(it));
      continue;
    }
    assert_true(iter_valid(it));
    assert_true(mf_slice_equal(iter_key(it), key_of(d, expect)));
    assert_true(mf_slice_equal(iter_value(it), value_of(d, expect)));
    if (expect > 0) { /* step back across a possible block boundary and forward again */
      iter_prev(it);
      assert_true(mf_slice_equal(iter_key(it), key_of(d, expect - 1)));
      iter_next(it);
      assert_true(mf_slice_equal(iter_key(it), key_of(d, expect)));
    }
  }
  assert_int_equal(iter_status(it), MAYFLY_OK);
  iter_destroy(it);
  mf_buf_free(&probe);
  mf_buf_free(&user);
}

typedef struct saved {
  int calls;
  mf_buf key, value;
} saved;

static void saver(void *arg, mf_slice ikey, mf_slice value) {
  saved *s = arg;
  s->calls++;
  mf_buf_set(&s->key, ikey.data, ikey.len);
  mf_buf_set(&s->value, value.data, value.len);
}

/* Every get either skips (filter) or reports the first entry >= the lookup key; for user
 * keys in the table it must report exactly that entry. */
static void check_gets(table *t, const dataset *d, int have_filter) {
  saved s = {0, MF_BUF_INIT, MF_BUF_INIT};
  mf_buf probe = MF_BUF_INIT, user = MF_BUF_INIT;
  int absent = 0, skipped = 0;
  for (int n = 0; n < 3000; n++) {
    mf_buf_clear(&probe);
    int existing = n % 2 && d->n;
    if (existing) {
      mf_slice k = key_of(d, mf_random_uniform(&rnd, d->n));
      ikey_append(&probe, ikey_user_key(k), MF_MAX_SEQ, MF_TYPE_FOR_SEEK);
    } else {
      random_user_key(&user);
      mf_buf_append(&user, "#", 1); /* '#' < 'a': never in the table */
      ikey_append(&probe, mf_buf_slice(&user), MF_MAX_SEQ, MF_TYPE_FOR_SEEK);
    }
    size_t expect = lower_bound(d, mf_buf_slice(&probe));
    s.calls = 0;
    assert_int_equal(table_get(t, mf_buf_slice(&probe), saver, &s), MAYFLY_OK);
    if (existing) {
      assert_int_equal(s.calls, 1);
      assert_true(mf_slice_equal(mf_buf_slice(&s.key), key_of(d, expect)));
      assert_true(mf_slice_equal(mf_buf_slice(&s.value), value_of(d, expect)));
    } else {
      absent++;
      if (s.calls == 0) {
        skipped++;
        if (!have_filter) assert_int_equal(expect, d->n); /* without a filter only at the end */
      } else {
        assert_int_equal(s.calls, 1);
        assert_true(expect < d->n);
        assert_true(mf_slice_equal(mf_buf_slice(&s.key), key_of(d, expect)));
      }
    }
  }
  if (have_filter) assert_true(skipped > absent * 9 / 10); /* the filter keeps most away */
  mf_buf_free(&s.key);
  mf_buf_free(&s.value);
  mf_buf_free(&probe);
  mf_buf_free(&user);
}

static void check_all(table *t, const dataset *d, int have_filter) {
  check_forward(t, d);
  check_backward(t, d);
  check_seeks(t, d);
  check_gets(t, d, have_filter);
}

/* ---- tests ---- */

static void test_round_trip(void **state) {
  (void)state;
  mf_env *env;
  mf_cache *cache;
  env = new_env();
  assert_int_equal(cache_create(1 << 20, &cache), MAYFLY_OK);
  dataset d = make_dataset(12000);
  uint64_t sizes[3];
  for (int c = MF_COMPRESSION_NONE; c <= MF_COMPRESSION_ZSTD; c++) {
    table_options o = default_options(c);
    sizes[c] = build(env, "t.sst", &o, &d);
    for (int use_cache = 0; use_cache < 2; use_cache++) {
      table *t;
      assert_int_equal(open_table(env, "t.sst", use_cache ? cache : NULL, &t), MAYFLY_OK);
      check_all(t, &d, 1);
      if (use_cache) {
        /* Blocks read in place from a mapping never enter the cache; every other block
         * does. */
        if (g_mode == MODE_MAPPED && c == MF_COMPRESSION_NONE)
          assert_int_equal(cache_total_charge(cache), 0);
        else
          assert_true(cache_total_charge(cache) > 0);
        check_forward(t, &d); /* again, now served from the cache or the mapping */
      }
      table_close(t);
    }
  }
  printf("table sizes: none %llu, lz4 %llu, zstd %llu\n", (unsigned long long)sizes[0],
         (unsigned long long)sizes[1], (unsigned long long)sizes[2]);
  assert_int_equal(maps_made(env), g_mode == MODE_MAPPED ? 6 : 0);
  assert_true(sizes[MF_COMPRESSION_LZ4] < sizes[MF_COMPRESSION_NONE]);
  assert_true(sizes[MF_COMPRESSION_ZSTD] < sizes[MF_COMPRESSION_NONE]);
  free_dataset(&d);
  cache_destroy(cache);
  env->destroy(env);
}

/* No filter, restart interval 1, tiny blocks (one entry each), and a cache too small to
 * hold more than a few blocks (constant eviction). */
static void test_options_extremes(void **state) {
  (void)state;
  mf_env *env;
  mf_cache *cache;
  env = new_env();
  assert_int_equal(cache_create(2000, &cache), MAYFLY_OK);
  dataset d = make_dataset(3000);
  table_options o = {1, 1, 0, MF_COMPRESSION_LZ4, 0};
  build(env, "tiny.sst", &o, &d);
  table_options big = {1 << 20, 64, 20, MF_COMPRESSION_ZSTD, 19};
  build(env, "big.sst", &big, &d);
  table *t;
  assert_int_equal(open_table(env, "tiny.sst", cache, &t), MAYFLY_OK);
  check_all(t, &d, 0);
  table_close(t);
  assert_int_equal(open_table(env, "big.sst", cache, &t), MAYFLY_OK);
  check_all(t, &d, 1);
  table_close(t);
  free_dataset(&d);
  cache_destroy(cache);
  env->destroy(env);
}

static void test_empty_table(void **state) {
  (void)state;
  mf_env *env;
  env = new_env();
  dataset d = {NULL, 0};
  table_options o = default_options(MF_COMPRESSION_ZSTD);
  build(env, "empty.sst", &o, &d);
  table *t;
  assert_int_equal(open_table(env, "empty.sst", NULL, &t), MAYFLY_OK);
  check_forward(t, &d);
  check_backward(t, &d);
  mf_buf k = MF_BUF_INIT;
  ikey_append(&k, mf_slice_cstr("x"), 5, MF_TYPE_VALUE);
  saved s = {0, MF_BUF_INIT, MF_BUF_INIT};
  assert_int_equal(table_get(t, mf_buf_slice(&k), saver, &s), MAYFLY_OK);
  assert_int_equal(s.calls, 0);
  mf_buf_free(&k);
  table_close(t);
  env->destroy(env);
}

static void test_builder_rejects_disorder(void **state) {
  (void)state;
  mf_env *env;
  mf_wfile *f;
  table_builder *b;
  env = new_env();
  assert_int_equal(env->new_writable(env, "x.sst", &f), MAYFLY_OK);
  table_options o = default_options(MF_COMPRESSION_NONE);
  assert_int_equal(table_builder_create(&o, env, f, "x.sst", &b), MAYFLY_OK);
  mf_buf k1 = MF_BUF_INIT, k2 = MF_BUF_INIT;
  ikey_append(&k1, mf_slice_cstr("b"), 5, MF_TYPE_VALUE);
  ikey_append(&k2, mf_slice_cstr("a"), 5, MF_TYPE_VALUE);
  assert_int_equal(table_builder_add(b, mf_buf_slice(&k1), mf_slice_cstr("v")), MAYFLY_OK);
  assert_int_equal(table_builder_add(b, mf_buf_slice(&k2), mf_slice_cstr("v")), MAYFLY_EINVAL);
  assert_int_equal(table_builder_add(b, mf_buf_slice(&k1), mf_slice_cstr("v")), MAYFLY_EINVAL);
  assert_int_equal(table_builder_finish(b), MAYFLY_EINVAL); /* sticky */
  table_builder_destroy(b);
  env->close_writable(f);
  o.compression = 9;
  assert_int_equal(table_builder_create(&o, env, f, "x.sst", &b), MAYFLY_EINVAL);
  mf_buf_free(&k1);
  mf_buf_free(&k2);
  env->destroy(env);
}

/* Flips one bit somewhere in the data blocks. The table still opens (index intact), and then
 * every read either returns exactly the right data or fails with ECORRUPT. */
static void test_bit_flip_in_data_block(void **state) {
  (void)state;
  mf_env *env;
  env = new_env();
  dataset d = make_dataset(10000);
  for (int c = MF_COMPRESSION_NONE; c <= MF_COMPRESSION_ZSTD; c++) {
    table_options o = default_options(c);
    build(env, "good.sst", &o, &d);
    mf_buf file = MF_BUF_INIT;
    assert_int_equal(env_read_file(env, "good.sst", &file), MAYFLY_OK);
    table_footer footer;
    assert_int_equal(table_footer_decode(file.data + file.len - TABLE_FOOTER_SIZE, "good.sst", &footer),
                     MAYFLY_OK);
    uint64_t data_end = footer.filter.offset; /* the filter follows the data blocks */
    for (int round = 0; round < 8; round++) {
      uint64_t pos = round == 0 ? 3 : mf_random_uniform(&rnd, data_end);
      file.data[pos] ^= (char)(1u << mf_random_uniform(&rnd, 8));
      write_file(env, "bad.sst", file.data, file.len);
      file.data[pos] = 0; /* restored below from the good copy */
      mf_buf good = MF_BUF_INIT;
      env_read_file(env, "good.sst", &good);
      file.data[pos] = good.data[pos];
      mf_buf_free(&good);

      table *t;
      assert_int_equal(open_table(env, "bad.sst", NULL, &t), MAYFLY_OK);
      mf_iter *it = table_iter_create(t);
      size_t i = 0;
      for (iter_seek_to_first(it); iter_valid(it); iter_next(it), i++) {
        assert_true(mf_slice_equal(iter_key(it), key_of(&d, i)));
        assert_true(mf_slice_equal(iter_value(it), value_of(&d, i)));
      }
      assert_int_equal(iter_status(it), MAYFLY_ECORRUPT); /* the damaged block is always read */
      assert_true(i < d.n);
      assert_non_null(strstr(mf_error_message(), "bad.sst"));
      iter_destroy(it);

      saved s = {0, MF_BUF_INIT, MF_BUF_INIT};
      int corrupt_seen = 0;
      for (size_t j = 0; j < d.n; j += 7) {
        s.calls = 0;
        int rc = table_get(t, key_of(&d, j), saver, &s);
        if (rc == MAYFLY_ECORRUPT) {
          corrupt_seen = 1;
          continue;
        }
        assert_int_equal(rc, MAYFLY_OK);
        assert_int_equal(s.calls, 1);
        assert_true(mf_slice_equal(mf_buf_slice(&s.key), key_of(&d, j)));
        assert_true(mf_slice_equal(mf_buf_slice(&s.value), value_of(&d, j)));
      }
      if (round == 0) assert_true(corrupt_seen); /* the first block holds entry 0 */
      mf_buf_free(&s.key);
      mf_buf_free(&s.value);
      table_close(t);
    }
    mf_buf_free(&file);
  }
  free_dataset(&d);
  env->destroy(env);
}

static void expect_open_corrupt(mf_env *env, const char *fname) {
  table *t = (table *)1;
  mf_error_clear();
  assert_int_equal(open_table(env, fname, NULL, &t), MAYFLY_ECORRUPT);
  assert_null(t);
  assert_non_null(strstr(mf_error_message(), fname));
}

static void test_damaged_footer_and_index(void **state) {
  (void)state;
  mf_env *env;
  env = new_env();
  dataset d = make_dataset(5000);
  table_options o = default_options(MF_COMPRESSION_LZ4);
  uint64_t size = build(env, "good.sst", &o, &d);
  mf_buf file = MF_BUF_INIT;
  assert_int_equal(env_read_file(env, "good.sst", &file), MAYFLY_OK);
  assert_memory_equal(file.data + size - 8, "mayflyST", 8);

  /* Truncated files. */
  static const uint64_t cuts[] = {0, 1, 47, 48, 100};
  for (size_t i = 0; i < 5; i++) {
    write_file(env, "short.sst", file.data, cuts[i]);
    expect_open_corrupt(env, "short.sst");
  }
  write_file(env, "short.sst", file.data, size - 1);
  expect_open_corrupt(env, "short.sst");
  write_file(env, "short.sst", file.data, size / 2);
  expect_open_corrupt(env, "short.sst");

  /* Bad magic, bad footer checksum, unknown version, handle past the end: one byte each. */
  static const size_t footer_bytes[] = {47, 40, 37, 32, 16, 24, 0, 8};
  for (size_t i = 0; i < sizeof footer_bytes / sizeof footer_bytes[0]; i++) {
    size_t pos = size - TABLE_FOOTER_SIZE + footer_bytes[i];
    file.data[pos] ^= 0x40;
    write_file(env, "bad.sst", file.data, file.len);
    expect_open_corrupt(env, "bad.sst");
    file.data[pos] ^= 0x40;
  }
  /* A well-formed footer (valid checksum) whose version is 2. */
  table_footer f;
  assert_int_equal(table_footer_decode(file.data + size - TABLE_FOOTER_SIZE, "good.sst", &f), MAYFLY_OK);
  f.version = 2;
  char saved_footer[TABLE_FOOTER_SIZE];
  memcpy(saved_footer, file.data + size - TABLE_FOOTER_SIZE, TABLE_FOOTER_SIZE);
  table_footer_encode(&f, file.data + size - TABLE_FOOTER_SIZE);
  write_file(env, "bad.sst", file.data, file.len);
  expect_open_corrupt(env, "bad.sst");
  memcpy(file.data + size - TABLE_FOOTER_SIZE, saved_footer, TABLE_FOOTER_SIZE);

  /* Damage inside the index block and inside the filter block. */
  assert_int_equal(table_footer_decode(file.data + size - TABLE_FOOTER_SIZE, "good.sst", &f), MAYFLY_OK);
  uint64_t spots[2] = {f.index.offset + f.index.size / 2, f.filter.offset + f.filter.size / 2};
  for (int i = 0; i < 2; i++) {
    file.data[spots[i]] ^= 1;
    write_file(env, "bad.sst", file.data, file.len);
    expect_open_corrupt(env, "bad.sst");
    file.data[spots[i]] ^= 1;
  }
  /* Undamaged copy still opens. */
  write_file(env, "bad.sst", file.data, file.len);
  table *t;
  assert_int_equal(open_table(env, "bad.sst", NULL, &t), MAYFLY_OK);
  table_close(t);
  mf_buf_free(&file);
  free_dataset(&d);
  env->destroy(env);
}

static void test_approximate_offset(void **state) {
  (void)state;
  mf_env *env;
  env = new_env();
  dataset d = make_dataset(12000);
  table_options o = default_options(MF_COMPRESSION_NONE);
  uint64_t size = build(env, "t.sst", &o, &d);
  table *t;
  assert_int_equal(open_table(env, "t.sst", NULL, &t), MAYFLY_OK);
  assert_int_equal(table_approximate_offset(t, key_of(&d, 0)), 0);
  uint64_t prev = 0;
  for (size_t i = 0; i < d.n; i += 97) {
    uint64_t off = table_approximate_offset(t, key_of(&d, i));
    assert_true(off >= prev);
    prev = off;
  }
  uint64_t mid = table_approximate_offset(t, key_of(&d, d.n / 2));
  assert_true(mid > size / 4 && mid < size * 3 / 4);
  mf_buf past = MF_BUF_INIT;
  ikey_append(&past, mf_slice_cstr("zzzz"), 1, MF_TYPE_VALUE);
  uint64_t end = table_approximate_offset(t, mf_buf_slice(&past));
  assert_true(end > size * 8 / 10 && end < size);
  mf_buf_free(&past);
  table_close(t);
  free_dataset(&d);
  env->destroy(env);
}

/* An entry as large as a block gets a block of its own: the small entries before it stay in
 * a small block (a read of one of them does not load the large value), and every entry
 * reads back. */
static void test_large_entry_own_block(void **state) {
  (void)state;
  mf_env *env = new_env();
  dataset d = {calloc(41, sizeof(entry)), 41};
  assert_non_null(d.e);
  for (size_t i = 0; i < d.n; i++) {
    char user[32];
    snprintf(user, sizeof user, i < 20 ? "a%02u" : i == 20 ? "b" : "c%02u", (unsigned)i);
    size_t vlen = i == 20 ? 3 * 4096 : 10;
    assert_int_equal(ikey_append(&d.e[i].ikey, mf_slice_cstr(user), 7, MF_TYPE_VALUE),
                     MAYFLY_OK);
    assert_int_equal(mf_buf_reserve(&d.e[i].value, vlen), MAYFLY_OK);
    memset(d.e[i].value.data, 'a' + (int)(i % 26), vlen);
    d.e[i].value.len = vlen;
  }
  table_options o = default_options(MF_COMPRESSION_NONE); /* 4 KiB blocks */
  uint64_t size = build(env, "t.sst", &o, &d);
  table *t;
  assert_int_equal(open_table(env, "t.sst", NULL, &t), MAYFLY_OK);
  uint64_t a = table_approximate_offset(t, key_of(&d, 5));
  uint64_t b = table_approximate_offset(t, key_of(&d, 20));
  uint64_t c = table_approximate_offset(t, key_of(&d, 25));
  assert_int_equal(a, 0);
  if (b == 0 || b > 1024) fail_msg("the large entry's block starts at %llu", (unsigned long long)b);
  assert_true(c >= b + 3 * 4096 && c < size);
  mf_iter *it = table_iter_create(t);
  assert_non_null(it);
  size_t i = 0;
  for (iter_seek_to_first(it); iter_valid(it); iter_next(it), i++) {
    assert_true(i < d.n);
    assert_true(mf_slice_equal(iter_key(it), key_of(&d, i)));
    assert_true(mf_slice_equal(iter_value(it), value_of(&d, i)));
  }
  assert_int_equal(iter_status(it), MAYFLY_OK);
  assert_int_equal(i, d.n);
  iter_destroy(it);
  table_close(t);
  free_dataset(&d);
  env->destroy(env);
}

/* ---- two-level iterator over hand-made blocks ---- */

#define NBLOCKS 12
typedef struct blockset {
  block *blocks[NBLOCKS];
  int fail[NBLOCKS]; /* this sub-iterator reports ECORRUPT */
} blockset;

/* Index values start with the block number, one byte (then filler). */
static mf_iter *open_test_block(void *arg, mf_slice index_value) {
  blockset *bs = arg;
  int i = (unsigned char)index_value.data[0];
  if (bs->fail[i]) return iter_new_empty(MAYFLY_ECORRUPT);
  return block_iter_create(bs->blocks[i], bytewise_compare);
}

static block *block_of(block_builder *bb) {
  mf_slice s;
  assert_int_equal(block_builder_finish(bb, &s), MAYFLY_OK);
  char *copy = malloc(s.len);
  memcpy(copy, s.data, s.len);
  block *b;
  assert_int_equal(block_create(copy, s.len, NULL, 0, &b), MAYFLY_OK);
  block_builder_reset(bb);
  return b;
}

static void two_level_iter_with(size_t index_value_len) {
  blockset bs;
  memset(&bs, 0, sizeof bs);
  block_builder data, index;
  block_builder_init(&data, 4);
  block_builder_init(&index, 1);
  /* Blocks 0, 3, 4 and 11 are empty; the others hold keys k<block><n>. The index key of each
   * block is its last possible key "k<block>~". */
  char key[16], val[16];
  int total = 0;
  for (int b = 0; b < NBLOCKS; b++) {
    int count = (b == 0 || b == 3 || b == 4 || b == 11) ? 0 : 1 + b * 3;
    for (int n = 0; n < count; n++) {
      snprintf(key, sizeof key, "k%02d%03d", b, n);
      snprintf(val, sizeof val, "v%d", total++);
      assert_int_equal(block_builder_add(&data, mf_slice_cstr(key), mf_slice_cstr(val)), MAYFLY_OK);
    }
    bs.blocks[b] = block_of(&data);
    snprintf(key, sizeof key, "k%02d~", b);
    char id[128];
    assert_true(index_value_len <= sizeof id);
    memset(id, 'h', sizeof id);
    id[0] = (char)b;
    assert_int_equal(block_builder_add(&index, mf_slice_cstr(key), mf_slice_make(id, index_value_len)),
                     MAYFLY_OK);
  }
  block *index_block = block_of(&index);

  mf_iter *it = two_level_iter_create(block_iter_create(index_block, bytewise_compare),
                                      open_test_block, &bs);
  assert_non_null(it);
  int seen = 0;
  for (iter_seek_to_first(it); iter_valid(it); iter_next(it)) {
    snprintf(val, sizeof val, "v%d", seen++);
    assert_true(mf_slice_equal(iter_value(it), mf_slice_cstr(val)));
  }
  assert_int_equal(seen, total);
  assert_int_equal(iter_status(it), MAYFLY_OK);
  for (iter_seek_to_last(it); iter_valid(it); iter_prev(it)) {
    snprintf(val, sizeof val, "v%d", --seen);
    assert_true(mf_slice_equal(iter_value(it), mf_slice_cstr(val)));
  }
  assert_int_equal(seen, 0);
  /* Seek into an empty block's range lands on the next non-empty block's first key. */
  iter_seek(it, mf_slice_cstr("k03"));
  assert_true(iter_valid(it));
  assert_true(mf_slice_equal(iter_key(it), mf_slice_cstr("k05000")));
  iter_prev(it); /* back over the empty blocks 4 and 3 */
  snprintf(key, sizeof key, "k02%03d", 2 * 3);
  assert_true(mf_slice_equal(iter_key(it), mf_slice_cstr(key)));
  iter_seek(it, mf_slice_cstr("k10~x")); /* past block 10, only the empty block 11 left */
  assert_false(iter_valid(it));
  assert_int_equal(iter_status(it), MAYFLY_OK);
  iter_destroy(it);

  /* A failing sub-iterator stops iteration with its error, in both directions. */
  bs.fail[6] = 1;
  it = two_level_iter_create(block_iter_create(index_block, bytewise_compare), open_test_block, &bs);
  seen = 0;
  for (iter_seek_to_first(it); iter_valid(it); iter_next(it)) seen++;
  assert_int_equal(iter_status(it), MAYFLY_ECORRUPT);
  assert_int_equal(seen, (1 + 3) + (1 + 6) + (1 + 15)); /* blocks 1, 2, 5 */
  iter_destroy(it);
  it = two_level_iter_create(block_iter_create(index_block, bytewise_compare), open_test_block, &bs);
  for (iter_seek_to_last(it); iter_valid(it); iter_prev(it)) {
  }
  assert_int_equal(iter_status(it), MAYFLY_ECORRUPT);
  iter_seek_to_first(it); /* sticky */
  assert_false(iter_valid(it));
  iter_destroy(it);

  for (int b = 0; b < NBLOCKS; b++) block_destroy(bs.blocks[b]);
  block_destroy(index_block);
  block_builder_free(&data);
  block_builder_free(&index);
}

/* Index values of 1 byte, and of 100 (longer than the copy the iterator keeps inline). */
static void test_two_level_iter(void **state) {
  (void)state;
  two_level_iter_with(1);
  two_level_iter_with(100);
}

/* A table read through env_posix, whose map_readable is a real mmap: every read of every
 * kind, the block cache left empty (the blocks are uncompressed, so all are read in place),
 * and the mapping released on close (the file can be removed and the directory too). */
static void test_posix_mmap(void **state) {
  (void)state;
  mf_env *env = env_posix();
  assert_true(env_has_map(env));
  const char *base = getenv("MAYFLY_TEST_TMP");
  char dir[512], fname[600];
  snprintf(dir, sizeof dir, "%s/test_table.XXXXXX", base && *base ? base : "/tmp");
  assert_non_null(mkdtemp(dir));
  snprintf(fname, sizeof fname, "%s/000001.sst", dir);
  mf_cache *cache;
  assert_int_equal(cache_create(1 << 20, &cache), MAYFLY_OK);
  dataset d = make_dataset(12000);
  table_options o = default_options(MF_COMPRESSION_NONE);
  build(env, fname, &o, &d);
  table *t;
  assert_int_equal(open_table(env, fname, cache, &t), MAYFLY_OK);
  check_all(t, &d, 1);
  assert_int_equal(cache_total_charge(cache), 0);
  table_close(t);
  /* Truncated on disk while the caller still believes the old size (as a MANIFEST would):
   * the env refuses to map past the end (reading there raises SIGBUS), and the pread
   * fallback reports the damage. */
  uint64_t size = 0;
  assert_int_equal(env->file_size(env, fname, &size), MAYFLY_OK);
  assert_int_equal(truncate(fname, (off_t)(size / 2)), 0);
  mf_rfile *f = NULL;
  assert_int_equal(env->open_readable(env, fname, &f), MAYFLY_OK);
  t = NULL;
  assert_int_equal(table_open(env, f, fname, size, cache, cache_new_id(cache), &t),
                   MAYFLY_ECORRUPT);
  assert_null(t);
  assert_int_equal(env->remove_file(env, fname), MAYFLY_OK);
  assert_int_equal(env->remove_dir(env, dir), MAYFLY_OK);
  free_dataset(&d);
  cache_destroy(cache);
}

/* An index whose block handles overlap (the second entry names the first block again) is
 * refused at open: a block's offset must name one block, since mapped tables remember which
 * offsets were verified. The index itself is well formed and correctly checksummed. */
static void test_overlapping_index_handles(void **state) {
  (void)state;
  mf_env *env = new_env();
  dataset d = make_dataset(5000);
  table_options o = default_options(MF_COMPRESSION_NONE);
  uint64_t size = build(env, "good.sst", &o, &d);
  mf_buf file = MF_BUF_INIT;
  assert_int_equal(env_read_file(env, "good.sst", &file), MAYFLY_OK);
  table_footer f;
  assert_int_equal(table_footer_decode(file.data + size - TABLE_FOOTER_SIZE, "good.sst", &f),
                   MAYFLY_OK);
  mf_iter *it;
  assert_int_equal(block_iter_create_borrowed(file.data + f.index.offset, f.index.size, "good",
                                              f.index.offset, table_key_compare, &it),
                   MAYFLY_OK);
  block_builder ib;
  block_builder_init(&ib, 1);
  mf_buf first_handle = MF_BUF_INIT;
  int n = 0;
  for (iter_seek_to_first(it); iter_valid(it); iter_next(it), n++) {
    if (n == 0) mf_buf_set(&first_handle, iter_value(it).data, iter_value(it).len);
    mf_slice v = n == 1 ? mf_buf_slice(&first_handle) : iter_value(it);
    assert_int_equal(block_builder_add(&ib, iter_key(it), v), MAYFLY_OK);
  }
  assert_true(n >= 2);
  iter_destroy(it);
  mf_slice index;
  assert_int_equal(block_builder_finish(&ib, &index), MAYFLY_OK);
  /* The file up to the old index, then the new index with its trailer, then a footer. */
  mf_buf bad = MF_BUF_INIT;
  mf_buf_append(&bad, file.data, f.index.offset);
  mf_buf_append(&bad, index.data, index.len);
  char trailer[BLOCK_TRAILER_SIZE] = {MF_COMPRESSION_NONE};
  encode_fixed32(trailer + 1, mf_checksum_seeded(MF_COMPRESSION_NONE, index.data, index.len));
  mf_buf_append(&bad, trailer, sizeof trailer);
  f.index.size = index.len;
  char footer[TABLE_FOOTER_SIZE];
  table_footer_encode(&f, footer);
  mf_buf_append(&bad, footer, sizeof footer);
  write_file(env, "bad.sst", bad.data, bad.len);
  expect_open_corrupt(env, "bad.sst");
  assert_non_null(strstr(mf_error_message(), "bad block handle"));
  block_builder_free(&ib);
  mf_buf_free(&first_handle);
  mf_buf_free(&bad);
  mf_buf_free(&file);
  free_dataset(&d);
  env->destroy(env);
}

/* Appends a block with its trailer (no compression) to file; returns its handle. */
static block_handle append_block(mf_buf *file, mf_slice contents) {
  block_handle h = {file->len, contents.len};
  assert_int_equal(mf_buf_append(file, contents.data, contents.len), MAYFLY_OK);
  char trailer[BLOCK_TRAILER_SIZE] = {MF_COMPRESSION_NONE};
  encode_fixed32(trailer + 1, mf_checksum_seeded(MF_COMPRESSION_NONE, contents.data,
                                                 contents.len));
  assert_int_equal(mf_buf_append(file, trailer, sizeof trailer), MAYFLY_OK);
  return h;
}

/* A data block holding a key shorter than an internal key's trailer, in a file whose
 * checksums are all right (a checksum is no defence against a crafted or buggy writer). The
 * table iterator reports ECORRUPT at that entry; the layers above compare keys as internal
 * keys and must never see it. */
static void test_short_key_in_data_block(void **state) {
  (void)state;
  mf_env *env = new_env();
  mf_buf k1 = MF_BUF_INIT, sep = MF_BUF_INIT, hb = MF_BUF_INIT, file = MF_BUF_INIT;
  ikey_append(&k1, mf_slice_cstr("aaaaaaaa"), 5, MF_TYPE_VALUE);
  ikey_append(&sep, mf_slice_cstr("zz"), 0, MF_TYPE_VALUE);
  block_builder data, index;
  block_builder_init(&data, 16);
  block_builder_init(&index, 1);
  assert_int_equal(block_builder_add(&data, mf_buf_slice(&k1), mf_slice_cstr("v1")), MAYFLY_OK);
  assert_int_equal(block_builder_add(&data, mf_slice_cstr("aab"), mf_slice_cstr("v2")),
                   MAYFLY_OK);
  mf_slice contents;
  assert_int_equal(block_builder_finish(&data, &contents), MAYFLY_OK);
  block_handle dh = append_block(&file, contents);
  assert_int_equal(block_handle_encode(&dh, &hb), MAYFLY_OK);
  assert_int_equal(block_builder_add(&index, mf_buf_slice(&sep), mf_buf_slice(&hb)), MAYFLY_OK);
  assert_int_equal(block_builder_finish(&index, &contents), MAYFLY_OK);
  table_footer f = {{0, 0}, {0, 0}, TABLE_FORMAT_VERSION};
  f.index = append_block(&file, contents);
  char footer[TABLE_FOOTER_SIZE];
  table_footer_encode(&f, footer);
  assert_int_equal(mf_buf_append(&file, footer, sizeof footer), MAYFLY_OK);
  write_file(env, "short.sst", file.data, file.len);

  table *t;
  assert_int_equal(open_table(env, "short.sst", NULL, &t), MAYFLY_OK);
  mf_iter *it = table_iter_create(t);
  assert_non_null(it);
  iter_seek_to_first(it);
  assert_true(iter_valid(it));
  assert_true(mf_slice_equal(iter_key(it), mf_buf_slice(&k1)));
  iter_next(it);
  assert_false(iter_valid(it));
  assert_int_equal(iter_status(it), MAYFLY_ECORRUPT);
  iter_destroy(it);
  it = table_iter_create(t);
  iter_seek_to_last(it); /* reaches the short key on the way to the last entry */
  assert_false(iter_valid(it));
  assert_int_equal(iter_status(it), MAYFLY_ECORRUPT);
  iter_destroy(it);
  table_close(t);
  block_builder_free(&data);
  block_builder_free(&index);
  mf_buf_free(&k1);
  mf_buf_free(&sep);
  mf_buf_free(&hb);
  mf_buf_free(&file);
  env->destroy(env);
}

/* A table test run in one mode, named after it. */
#define IN_MODE(fn, mode) {#fn "/" #mode, fn, use_##mode, NULL, NULL}
#define IN_ALL_MODES(fn) IN_MODE(fn, pread), IN_MODE(fn, mapped), IN_MODE(fn, refused)

int main(void) {
  mf_random_seed(&rnd, test_seed());
  const struct CMUnitTest tests[] = {
      IN_ALL_MODES(test_round_trip),
      IN_ALL_MODES(test_options_extremes),
      IN_ALL_MODES(test_empty_table),
      IN_MODE(test_builder_rejects_disorder, pread),
      IN_ALL_MODES(test_bit_flip_in_data_block),
      IN_ALL_MODES(test_damaged_footer_and_index),
      IN_MODE(test_approximate_offset, pread),
      IN_MODE(test_approximate_offset, mapped),
      IN_ALL_MODES(test_overlapping_index_handles),
      IN_ALL_MODES(test_short_key_in_data_block),
      IN_MODE(test_large_entry_own_block, pread),
      cmocka_unit_test(test_two_level_iter),
      cmocka_unit_test(test_posix_mmap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
