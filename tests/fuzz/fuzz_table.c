/* Fuzz target: the table reader (table/table.h) on files in an in-memory env.
 *
 * The first input byte picks one of four ways to make a file; the rest drives it.
 *
 * 0. Raw: the input is the file. Mostly exercises the footer checks (a fuzzer rarely forges
 *    a checksum), but libFuzzer's comparison tracing does find some.
 * 1. Assembled: data blocks, a filter and an index whose *contents* come from the input
 *    (block bytes, index keys that need not be internal keys, handles that may be off,
 *    compressed payloads that need not decompress), framed with correct trailers,
 *    checksums and footer by this target, so the checks behind the checksums are reached.
 * 2. Valid: internal keys and values derived from the input, written with table_builder
 *    (block size, restart interval, filter and compression from the input). The table must
 *    open and read back exactly: forward, backward, table_get of a sample of 16 keys
 *    spread over the table (found as itself), table_get of absent keys (the saver, if
 *    called, gets the first entry >= the lookup key), approximate offsets non-decreasing in
 *    key order. Up to 122 entries with values up to 236 bytes, blocks of 64..1084 bytes.
 * 3. Damaged: a valid table as in 2 with one byte changed or the file cut short. Every byte
 *    of a table is under a checksum, so either table_open fails with MAYFLY_ECORRUPT or a
 *    full scan reports MAYFLY_ECORRUPT; entries returned before that are original entries in
 *    order (never wrong data).
 *
 * For every file: table_open returns MAYFLY_OK, MAYFLY_ECORRUPT or ENOMEM; iterators end with
 * MAYFLY_OK or MAYFLY_ECORRUPT and never loop; table_get returns OK/ECORRUPT/ENOMEM. Half of
 * the opens use a block cache, so both data block paths run. ASan/UBSan (scripts/fuzz.sh)
 * catch out-of-bounds reads.
 *
 * Changes for speed (2026-11-22; docs/fuzzing.md), from ~170 to ~800 exec/s: tables of up to
 * 122 entries / 236-byte values / 1 KiB blocks instead of 447 / 541 bytes / 4 KiB (the same
 * input bytes are read, they are mapped to smaller sizes), 16 instead of 64 sampled lookups
 * of present keys, and values copied from a pattern instead of built byte by byte. The
 * properties checked are the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"
#include "db/options.h"
#include "fuzz_util.h"
#include "table/block_builder.h"
#include "table/format.h"
#include "table/table.h"
#include "table/table_builder.h"
#include "util/checksum.h"
#include "util/coding.h"
#include "util/compress.h"
#include "util/ikey.h"

#define PATH "/t.sst"

typedef struct kv {
  mf_buf ikey, value;
} kv;

typedef struct dataset {
  kv *e;
  size_t n;
} dataset;

static void dataset_free(dataset *d) {
  for (size_t i = 0; i < d->n; i++) {
    mf_buf_free(&d->e[i].ikey);
    mf_buf_free(&d->e[i].value);
  }
  free(d->e);
}

static int ok_or_corrupt(int rc) {
  return rc == MAYFLY_OK || rc == MAYFLY_ECORRUPT || rc == MAYFLY_ENOMEM;
}

/* Opens PATH (size bytes) with or without a block cache. *cache must be destroyed after
 * table_close. Returns table_open's code. */
static int open_table(mf_env *env, uint64_t size, int use_cache, mf_cache **cache, table **t) {
  mf_rfile *f = NULL;
  *cache = NULL;
  int rc = env->open_readable(env, PATH, &f);
  FUZZ_CHECK(rc == MAYFLY_OK, "open_readable: %d", rc);
  if (use_cache && cache_create(64 * 1024, cache) != MAYFLY_OK) *cache = NULL;
  rc = table_open(env, f, PATH, size, *cache, *cache ? cache_new_id(*cache) : 0, t);
  FUZZ_CHECK(ok_or_corrupt(rc), "table_open returned %d", rc);
  FUZZ_CHECK(rc == MAYFLY_OK || *t == NULL, "failed table_open returned a table");
  return rc;
}

typedef struct got {
  int calls;
  mf_buf ikey, value;
} got;

static void saver(void *arg, mf_slice ikey, mf_slice value) {
  got *g = arg;
  g->calls++;
  mf_buf_set(&g->ikey, ikey.data, ikey.len);
  mf_buf_set(&g->value, value.data, value.len);
}

/* Checks any table, whatever its contents: iterators terminate and end cleanly, lookups of
 * the keys found (and of targets from the input) return sane codes. Returns the status of a
 * full forward scan; *entries gets its length. */
static int scan_any(table *t, fuzz_in *in, size_t file_size, size_t *entries) {
  mf_iter *it = table_iter_create(t);
  if (!it) return MAYFLY_ENOMEM;
  size_t n = 0;
  mf_buf keys = MF_BUF_INIT; /* a few keys found, each as varint length + bytes */
  for (iter_seek_to_first(it); iter_valid(it); iter_next(it)) {
    FUZZ_CHECK(++n <= file_size, "forward scan does not terminate");
    if (n <= 16) put_length_prefixed(&keys, iter_key(it));
  }
  int st = iter_status(it);
  FUZZ_CHECK(ok_or_corrupt(st), "forward scan status %d", st);
  *entries = n;
  size_t back = 0;
  for (iter_seek_to_last(it); iter_valid(it); iter_prev(it))
    FUZZ_CHECK(++back <= file_size, "backward scan does not terminate");
  FUZZ_CHECK(ok_or_corrupt(iter_status(it)), "backward scan status %d", iter_status(it));
  iter_destroy(it);

  mf_slice rest = mf_buf_slice(&keys), key;
  got g = {0, MF_BUF_INIT, MF_BUF_INIT};
  mf_buf target = MF_BUF_INIT;
  for (int i = 0; i < 20; i++) {
    if (!get_length_prefixed(&rest, &key)) {
      key = fuzz_take(in, 8 + fuzz_u8(in) % 16);
    }
    if (key.len < 8) continue;
    mf_buf_set(&target, key.data, key.len);
    int rc = table_get(t, mf_buf_slice(&target), saver, &g);
    FUZZ_CHECK(ok_or_corrupt(rc), "table_get returned %d", rc);
    it = table_iter_create(t);
    if (!it) break;
    iter_seek(it, mf_buf_slice(&target));
    FUZZ_CHECK(ok_or_corrupt(iter_status(it)), "seek status %d", iter_status(it));
    iter_destroy(it);
    table_approximate_offset(t, mf_buf_slice(&target));
  }
  mf_buf_free(&target);
  mf_buf_free(&g.ikey);
  mf_buf_free(&g.value);
  mf_buf_free(&keys);
  return st;
}

/* ---- 0 and 1: files from the input ---- */

static void run_any(mf_env *env, fuzz_in *in, uint64_t size, int use_cache) {
  mf_cache *cache;
  table *t = NULL;
  if (open_table(env, size, use_cache, &cache, &t) == MAYFLY_OK) {
    size_t n;
    scan_any(t, in, (size_t)size + 1, &n);
  }
  table_close(t);
  cache_destroy(cache);
}

/* Appends stored bytes and a correct trailer for them. */
static void append_block(mf_buf *file, mf_slice stored, int type, block_handle *h) {
  h->offset = file->len;
  h->size = stored.len;
  char trailer[BLOCK_TRAILER_SIZE];
  trailer[0] = (char)type;
  encode_fixed32(trailer + 1, mf_checksum_seeded((uint32_t)type, stored.data, stored.len));
  if (mf_buf_append(file, stored.data, stored.len) || mf_buf_append(file, trailer, sizeof trailer))
    abort();
}

static void assemble(fuzz_in *in, mf_buf *file) {
  int nblocks = fuzz_u8(in) % 6;
  block_handle handles[6];
  mf_buf stored = MF_BUF_INIT;
  for (int i = 0; i < nblocks; i++) {
    uint8_t how = fuzz_u8(in);
    int type = how % 4; /* 3: an unknown compression type */
    mf_slice contents = fuzz_take(in, fuzz_u16(in) % 2048);
    mf_buf_clear(&stored);
    if ((type == MF_COMPRESSION_LZ4 || type == MF_COMPRESSION_ZSTD) && (how & 4)) {
      if (compress_block(type, 1, contents, &stored)) abort(); /* real compression */
    } else {
      mf_buf_append(&stored, contents.data, contents.len); /* raw, maybe not decompressible */
    }
    append_block(file, mf_buf_slice(&stored), type, &handles[i]);
  }
  block_handle filter = {0, 0};
  if (fuzz_u8(in) & 1) append_block(file, fuzz_take(in, fuzz_u8(in)), 0, &filter);

  block_builder ib;
  block_builder_init(&ib, 1);
  mf_buf prev = MF_BUF_INIT, key = MF_BUF_INIT, value = MF_BUF_INIT;
  for (int i = 0; i < nblocks; i++) {
    mf_slice k = fuzz_take(in, fuzz_u8(in) % 24);
    mf_buf_set(&key, k.data, k.len);
    /* The builder assumes sorted keys; keep them bytewise increasing (the reader wants
     * ikey order, which such keys may or may not satisfy). */
    if (i && mf_slice_compare(mf_buf_slice(&key), mf_buf_slice(&prev)) <= 0) {
      mf_buf_set(&key, prev.data, prev.len);
      mf_buf_append(&key, "\x01", 1);
    }
    block_handle h = handles[i];
    uint8_t skew = fuzz_u8(in);
    if (skew & 0x80) h.offset += skew & 0x0f;
    if (skew & 0x40) h.size -= skew & 0x0f;
    mf_buf_clear(&value);
    block_handle_encode(&h, &value);
    if (skew & 0x20) mf_buf_append(&value, "x", 1); /* trailing garbage after the handle */
    block_builder_add(&ib, mf_buf_slice(&key), mf_buf_slice(&value));
    mf_buf_set(&prev, key.data, key.len);
  }
  mf_slice index_contents;
  if (block_builder_finish(&ib, &index_contents)) abort();
  block_handle index;
  append_block(file, index_contents, 0, &index);
  table_footer footer = {filter, index, TABLE_FORMAT_VERSION};
  if (fuzz_u8(in) == 0xff) footer.version = fuzz_u8(in);
  char fbuf[TABLE_FOOTER_SIZE];
  table_footer_encode(&footer, fbuf);
  mf_buf_append(file, fbuf, sizeof fbuf);
  block_builder_free(&ib);
  mf_buf_free(&prev);
  mf_buf_free(&key);
  mf_buf_free(&value);
  mf_buf_free(&stored);
}

/* ---- 2 and 3: valid tables ---- */

static int cmp_kv(const void *a, const void *b) {
  return ikey_compare(mf_buf_slice(&((const kv *)a)->ikey), mf_buf_slice(&((const kv *)b)->ikey));
}

/* "abcabc...": value bytes are 'a' + (j + i) % 3, i.e. this pattern from offset i % 3, copied
 * in one go (a byte loop is slow under coverage instrumentation). */
#define MAX_VALUE_LEN (40 + 49 * 4)
static const char *value_pattern(void) {
  static char pattern[MAX_VALUE_LEN + 3];
  if (!pattern[0])
    for (size_t j = 0; j < sizeof pattern; j++) pattern[j] = (char)('a' + j % 3);
  return pattern;
}

static void make_dataset(fuzz_in *in, dataset *d) {
  /* Up to 122 entries, values up to 236 bytes, blocks of 64..1084 bytes: still many blocks
   * and values larger than a block, at ~1/4 of the cost of the earlier sizes (up to 447
   * entries, 541-byte values, 4 KiB blocks), which spent most of the time rescanning. */
  size_t n = fuzz_u8(in) % 96;
  n += (size_t)(fuzz_u8(in) % 4) * 9;
  d->e = calloc(n + 1, sizeof *d->e);
  d->n = 0;
  if (!d->e) abort();
  for (size_t i = 0; i < n; i++) {
    uint8_t h = fuzz_u8(in);
    mf_slice user = fuzz_take(in, h % 12);
    kv *e = &d->e[d->n++];
    uint64_t seq = 1 + (h >> 4) + (uint64_t)i * 3;
    if (ikey_append(&e->ikey, user, seq, (h & 8) ? MF_TYPE_DELETE : MF_TYPE_VALUE)) abort();
    /* Values: some empty, some long and compressible, tagged with i so they differ. */
    size_t vlen = (h & 4) ? 40 + (h % 50) * 4 : h % 7;
    if (mf_buf_set(&e->value, value_pattern() + i % 3, vlen)) abort();
  }
  qsort(d->e, d->n, sizeof *d->e, cmp_kv);
  size_t w = 0; /* drop repeated internal keys (same user key, seq and type) */
  for (size_t i = 0; i < d->n; i++) {
    if (w && cmp_kv(&d->e[w - 1], &d->e[i]) == 0) {
      mf_buf_free(&d->e[i].ikey);
      mf_buf_free(&d->e[i].value);
      continue;
    }
    d->e[w++] = d->e[i];
  }
  d->n = w;
}

static void build_table(mf_env *env, fuzz_in *in, const dataset *d) {
  table_options o;
  uint8_t a = fuzz_u8(in), b = fuzz_u8(in);
  o.block_size = 64 + (uint64_t)a * 4;
  o.block_restart_interval = 1 + b % 16;
  o.bloom_bits_per_key = (b & 0x10) ? 10 : 0;
  o.compression = (b >> 5) % 3;
  o.compression_level = 1;
  mf_wfile *f = NULL;
  table_builder *tb = NULL;
  int rc = env->new_writable(env, PATH, &f);
  FUZZ_CHECK(rc == MAYFLY_OK, "new_writable: %d", rc);
  rc = table_builder_create(&o, env, f, PATH, &tb);
  FUZZ_CHECK(rc == MAYFLY_OK, "table_builder_create: %d", rc);
  for (size_t i = 0; i < d->n && rc == MAYFLY_OK; i++)
    rc = table_builder_add(tb, mf_buf_slice(&d->e[i].ikey), mf_buf_slice(&d->e[i].value));
  if (rc == MAYFLY_OK) rc = table_builder_finish(tb);
  FUZZ_CHECK(rc == MAYFLY_OK, "building the table failed: %d", rc);
  FUZZ_CHECK(table_builder_num_entries(tb) == d->n, "builder counted %llu entries, not %zu",
             (unsigned long long)table_builder_num_entries(tb), d->n);
  table_builder_destroy(tb);
  rc = env->close_writable(f);
  FUZZ_CHECK(rc == MAYFLY_OK, "close_writable: %d", rc);
}

static void expect_entry(const mf_iter *it, const dataset *d, size_t i, const char *what) {
  FUZZ_CHECK(iter_valid(it), "%s: invalid at entry %zu of %zu (status %d)", what, i, d->n,
             iter_status(it));
  FUZZ_CHECK(mf_slice_equal(iter_key(it), mf_buf_slice(&d->e[i].ikey)) &&
                 mf_slice_equal(iter_value(it), mf_buf_slice(&d->e[i].value)),
             "%s: entry %zu differs", what, i);
}

/* First entry >= ikey (d->n if none). */
static size_t lower_bound(const dataset *d, mf_slice ikey) {
  size_t lo = 0, hi = d->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (ikey_compare(mf_buf_slice(&d->e[mid].ikey), ikey) < 0) lo = mid + 1; else hi = mid;
  }
  return lo;
}

static void check_valid(table *t, const dataset *d, fuzz_in *in, uint64_t file_size) {
  mf_iter *it = table_iter_create(t);
  if (!it) return;
  size_t i = 0;
  for (iter_seek_to_first(it); iter_valid(it) && i < d->n; iter_next(it), i++)
    expect_entry(it, d, i, "forward");
  FUZZ_CHECK(!iter_valid(it) && i == d->n && iter_status(it) == MAYFLY_OK,
             "forward scan: %zu of %zu entries, status %d", i, d->n, iter_status(it));
  i = d->n;
  for (iter_seek_to_last(it); iter_valid(it) && i > 0; iter_prev(it)) expect_entry(it, d, --i, "backward");
  FUZZ_CHECK(!iter_valid(it) && i == 0 && iter_status(it) == MAYFLY_OK,
             "backward scan stopped with %zu entries left, status %d", i, iter_status(it));

  got g = {0, MF_BUF_INIT, MF_BUF_INIT};
  uint64_t last_offset = 0;
  size_t stride = d->n / 16 + 1; /* a lookup costs a block read: check a sample of 16 */
  for (i = 0; i < d->n; i += stride) {
    mf_slice k = mf_buf_slice(&d->e[i].ikey);
    g.calls = 0;
    int rc = table_get(t, k, saver, &g);
    FUZZ_CHECK(rc == MAYFLY_OK || rc == MAYFLY_ENOMEM, "table_get of entry %zu: %d", i, rc);
    if (rc) continue;
    FUZZ_CHECK(g.calls == 1 && mf_slice_equal(mf_buf_slice(&g.ikey), k) &&
                   mf_slice_equal(mf_buf_slice(&g.value), mf_buf_slice(&d->e[i].value)),
               "table_get of entry %zu: %d saver calls, wrong entry or value", i, g.calls);
    uint64_t off = table_approximate_offset(t, k);
    FUZZ_CHECK(off >= last_offset && off <= file_size,
               "approximate offset %llu after %llu (file %llu)", (unsigned long long)off,
               (unsigned long long)last_offset, (unsigned long long)file_size);
    last_offset = off;
  }

  /* Lookups and seeks of other keys: absent user keys, and other sequence numbers. */
  mf_buf probe = MF_BUF_INIT;
  for (int p = 0; p < 16; p++) {
    mf_buf_clear(&probe);
    uint8_t h = fuzz_u8(in);
    mf_slice user = fuzz_take(in, h % 12);
    if ((h & 0x80) && d->n) user = ikey_user_key(mf_buf_slice(&d->e[h % d->n].ikey));
    ikey_append(&probe, user, (uint64_t)fuzz_u8(in) * 7, MF_TYPE_FOR_SEEK);
    size_t want = lower_bound(d, mf_buf_slice(&probe));
    g.calls = 0;
    int rc = table_get(t, mf_buf_slice(&probe), saver, &g);
    FUZZ_CHECK(rc == MAYFLY_OK || rc == MAYFLY_ENOMEM, "table_get of a probe: %d", rc);
    if (rc == MAYFLY_OK && g.calls) {
      FUZZ_CHECK(g.calls == 1 && want < d->n &&
                     mf_slice_equal(mf_buf_slice(&g.ikey), mf_buf_slice(&d->e[want].ikey)),
                 "table_get of a probe returned an entry that is not the first >= it");
    }
    if (rc == MAYFLY_OK && !g.calls && want < d->n) {
      /* Only the filter may skip the saver, and only when the user key is absent. */
      for (size_t j = 0; j < d->n; j++)
        FUZZ_CHECK(!mf_slice_equal(ikey_user_key(mf_buf_slice(&d->e[j].ikey)), user),
                   "table_get skipped a user key the table holds");
    }
    iter_seek(it, mf_buf_slice(&probe));
    if (want == d->n)
      FUZZ_CHECK(!iter_valid(it) && iter_status(it) == MAYFLY_OK, "seek past the end is valid");
    else
      expect_entry(it, d, want, "seek");
  }
  mf_buf_free(&probe);
  mf_buf_free(&g.ikey);
  mf_buf_free(&g.value);
  iter_destroy(it);
}

static void run_valid(mf_env *env, fuzz_in *in, int damage) {
  dataset d;
  make_dataset(in, &d);
  build_table(env, in, &d);
  int use_cache = fuzz_u8(in) & 1;
  uint64_t size = 0;
  mf_cache *cache = NULL;
  table *t = NULL;
  int rc = env->file_size(env, PATH, &size);
  FUZZ_CHECK(rc == MAYFLY_OK, "file_size: %d", rc);
  if (!damage) {
    rc = open_table(env, size, use_cache, &cache, &t);
    if (rc == MAYFLY_OK)
      check_valid(t, &d, in, size);
    else
      FUZZ_CHECK(FUZZ_OOM_OK(rc), "a valid table does not open: %d", rc);
    goto out;
  }
  mf_buf file = MF_BUF_INIT;
  if (env_read_file(env, PATH, &file)) abort();
  uint32_t where = fuzz_u32(in);
  uint8_t x = fuzz_u8(in);
  int cut = x & 1;
  if (cut) {
    file.len = where % file.len; /* strictly shorter */
  } else {
    file.data[where % file.len] ^= (char)(x | 1);
  }
  fuzz_write_file(env, PATH, file.data, file.len);
  size = file.len;
  mf_buf_free(&file);
  if (open_table(env, size, use_cache, &cache, &t) != MAYFLY_OK) goto out;
  mf_iter *it = table_iter_create(t);
  if (!it) goto out;
  size_t i = 0, n = 0;
  for (iter_seek_to_first(it); iter_valid(it); iter_next(it), n++) {
    /* Entries read are original entries, in order: skip forward to this one. */
    while (i < d.n && !mf_slice_equal(iter_key(it), mf_buf_slice(&d.e[i].ikey))) i++;
    FUZZ_CHECK(i < d.n, "a damaged table returned an entry that was never written");
    FUZZ_CHECK(mf_slice_equal(iter_value(it), mf_buf_slice(&d.e[i].value)),
               "a damaged table returned a wrong value");
    i++;
  }
  rc = iter_status(it);
  FUZZ_CHECK(rc == MAYFLY_ECORRUPT || rc == MAYFLY_ENOMEM,
             "damage (%s at %u) went unnoticed: a full scan read %zu of %zu entries, status %d",
             cut ? "cut" : "changed byte", where, n, d.n, rc);
  iter_destroy(it);
out:
  table_close(t);
  cache_destroy(cache);
  dataset_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_in in = fuzz_in_make(data, size);
  uint8_t mode = fuzz_u8(&in);
  mf_env *env = fuzz_mem_env();
  switch (mode % 4) {
    case 0: {
      fuzz_write_file(env, PATH, in.p, in.n);
      fuzz_in rest = in;
      run_any(env, &rest, in.n, mode & 4);
      break;
    }
    case 1: {
      mf_buf file = MF_BUF_INIT;
      assemble(&in, &file);
      fuzz_write_file(env, PATH, file.data, file.len);
      run_any(env, &in, file.len, mode & 4);
      mf_buf_free(&file);
      break;
    }
    case 2: run_valid(env, &in, 0); break;
    default: run_valid(env, &in, 1); break;
  }
  env->destroy(env);
  return 0;
}
