/* RocksDB behind the bench adapter interface, through RocksDB's C API (<rocksdb/c.h>).
 *
 * The point of this adapter is a like-for-like comparison with mayfly, so it does not keep
 * RocksDB's defaults: it starts from mayfly's defaults (docs/options.md) and then applies the
 * options text, which uses mayfly's option names and size suffixes, so that one string can
 * describe both engines:
 *   write_buffer_size 64MiB, max_write_buffer_number 2, target_file_size_base 64MiB,
 *   max_bytes_for_level_base 256MiB, max_bytes_for_level_multiplier 10,
 *   level0_file_num_compaction_trigger 4, level0_slowdown_writes_trigger 20,
 *   level0_stop_writes_trigger 36, level_compaction_dynamic_level_bytes false,
 *   block_size 4KiB, block_cache_size 32MiB (0 = no block cache), bloom_bits_per_key 10
 *   (0 = no filter; a full-key filter per table), max_open_files 1000,
 *   max_background_jobs 2,
 * and key-value separation as mayfly's defaults have it (RocksDB's integrated BlobDB; RocksDB's
 * own defaults differ: blob files off, min_blob_size 0, GC off):
 *   enable_blob_files true, min_blob_size 512, blob_file_size 256MiB, blob_compression none
 *   (none|lz4|zstd), blob_file_starting_level 0, enable_blob_garbage_collection true,
 *   blob_garbage_collection_age_cutoff 0.25, blob_garbage_collection_force_threshold 1.
 * Three more mirror what mayfly does by default where RocksDB's defaults differ:
 *   memtable_bloom_size_ratio 0.01 (mayfly's memtable filter; RocksDB's whole-key memtable
 *   filter of that size), bytes_per_sync 1MiB (mayfly asks the kernel to start writeback
 *   every 1 MiB of every file; RocksDB's bytes_per_sync and wal_bytes_per_sync),
 *   allow_mmap_reads true (mayfly reads tables through a mapping; RocksDB only copies blocks
 *   into its cache without it).
 * mayfly's blob_gc_policy has no RocksDB counterpart (RocksDB has policy age only), so it is
 * refused like any unknown name. Pass enable_blob_files=false for plain leveled RocksDB.
 * Fixed, whatever the options say: leveled compaction. From the open settings: compression
 * (none, snappy, lz4, zstd; RocksDB refuses at open one its library was built without),
 * create_if_missing, sync and disableWAL in the write options. Any other option name is
 * refused, so a typo cannot silently benchmark the wrong setting.
 *
 * Stall time: the "Cumulative stall: H:M:S" line of rocksdb.stats (the DB-wide write stall
 * and slowdown time since open), as the C API has no statistics ticker access.
 *
 * RocksDB counts its own write traffic ("rocksdb.stats"), but mayfly_bench measures every
 * engine the same way, from /proc/self/io, so bytes_written is NULL. wait_idle polls
 * RocksDB's "pending / running flush and compaction" properties until all are zero, the
 * same point mayfly_wait_idle waits for (the active memtable stays in memory in both). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <rocksdb/c.h>

#include "adapter.h"

/* Set by bench/CMakeLists.txt from rocksdb/version.h (a C++ header C cannot include). */
#ifndef MAYFLY_BENCH_ROCKSDB_VERSION
#define MAYFLY_BENCH_ROCKSDB_VERSION "unknown version"
#endif

/* The settings this adapter understands, parsed from the options text before any RocksDB
 * object exists, so that a bad option fails before the database is touched. */
struct rdb_settings {
  uint64_t write_buffer_size;
  uint64_t max_write_buffer_number;
  uint64_t target_file_size_base;
  uint64_t max_bytes_for_level_base;
  double max_bytes_for_level_multiplier;
  uint64_t level0_file_num_compaction_trigger;
  uint64_t level0_slowdown_writes_trigger;
  uint64_t level0_stop_writes_trigger;
  uint64_t level_compaction_dynamic_level_bytes; /* 0 or 1 */
  uint64_t block_size;
  uint64_t block_cache_size;
  uint64_t bloom_bits_per_key;
  uint64_t max_open_files;
  uint64_t max_background_jobs;
  uint64_t enable_blob_files; /* 0 or 1 */
  uint64_t min_blob_size;
  uint64_t blob_file_size;
  uint64_t blob_compression; /* a rocksdb_*_compression value */
  uint64_t blob_file_starting_level;
  uint64_t enable_blob_garbage_collection; /* 0 or 1 */
  double blob_garbage_collection_age_cutoff;
  double blob_garbage_collection_force_threshold;
  double memtable_bloom_size_ratio; /* mayfly's memtable filter: RocksDB's whole-key one */
  uint64_t bytes_per_sync;          /* files and WALs; mayfly starts writeback every 1 MiB */
  uint64_t allow_mmap_reads;        /* 0 or 1; mayfly reads tables through a mapping */
};

static const struct rdb_settings k_mayfly_defaults = {
    .write_buffer_size = 64ull << 20,
    .max_write_buffer_number = 2,
    .target_file_size_base = 64ull << 20,
    .max_bytes_for_level_base = 256ull << 20,
    .max_bytes_for_level_multiplier = 10.0,
    .level0_file_num_compaction_trigger = 4,
    .level0_slowdown_writes_trigger = 20,
    .level0_stop_writes_trigger = 36,
    .level_compaction_dynamic_level_bytes = 0,
    .block_size = 4ull << 10,
    .block_cache_size = 32ull << 20,
    .bloom_bits_per_key = 10,
    .max_open_files = 1000,
    .max_background_jobs = 2,
    .enable_blob_files = 1,
    .min_blob_size = 512,
    .blob_file_size = 256ull << 20,
    .blob_compression = rocksdb_no_compression,
    .blob_file_starting_level = 0,
    .enable_blob_garbage_collection = 1,
    .blob_garbage_collection_age_cutoff = 0.25,
    .blob_garbage_collection_force_threshold = 1.0,
    .memtable_bloom_size_ratio = 0.01,
    .bytes_per_sync = 1ull << 20,
    .allow_mmap_reads = 1,
};

/* RDB_DOUBLE is a multiplier (> 1); RDB_FRACTION a ratio in [0, 1]; RDB_COMPRESSION one of
 * none, lz4, zstd. */
enum rdb_kind { RDB_SIZE, RDB_INT, RDB_BOOL, RDB_DOUBLE, RDB_FRACTION, RDB_COMPRESSION };

/* One row per option name: where its value goes in rdb_settings. */
static const struct rdb_option {
  const char *name;
  enum rdb_kind kind;
  size_t offset;
} k_options[] = {
#define OPT(name, kind) {#name, kind, offsetof(struct rdb_settings, name)}
    OPT(write_buffer_size, RDB_SIZE),
    OPT(max_write_buffer_number, RDB_INT),
    OPT(target_file_size_base, RDB_SIZE),
    OPT(max_bytes_for_level_base, RDB_SIZE),
    OPT(max_bytes_for_level_multiplier, RDB_DOUBLE),
    OPT(level0_file_num_compaction_trigger, RDB_INT),
    OPT(level0_slowdown_writes_trigger, RDB_INT),
    OPT(level0_stop_writes_trigger, RDB_INT),
    OPT(level_compaction_dynamic_level_bytes, RDB_BOOL),
    OPT(block_size, RDB_SIZE),
    OPT(block_cache_size, RDB_SIZE),
    OPT(bloom_bits_per_key, RDB_INT),
    OPT(max_open_files, RDB_INT),
    OPT(max_background_jobs, RDB_INT),
    OPT(enable_blob_files, RDB_BOOL),
    OPT(min_blob_size, RDB_SIZE),
    OPT(blob_file_size, RDB_SIZE),
    OPT(blob_compression, RDB_COMPRESSION),
    OPT(blob_file_starting_level, RDB_INT),
    OPT(enable_blob_garbage_collection, RDB_BOOL),
    OPT(blob_garbage_collection_age_cutoff, RDB_FRACTION),
    OPT(blob_garbage_collection_force_threshold, RDB_FRACTION),
    OPT(memtable_bloom_size_ratio, RDB_FRACTION),
    OPT(bytes_per_sync, RDB_SIZE),
    OPT(allow_mmap_reads, RDB_BOOL),
#undef OPT
};
#define NUM_OPTIONS (sizeof k_options / sizeof k_options[0])

typedef struct rdb_handle {
  rocksdb_t *db;
  rocksdb_options_t *options;
  rocksdb_block_based_table_options_t *table_options;
  rocksdb_cache_t *cache; /* NULL: no block cache */
  rocksdb_readoptions_t *read_options;
  rocksdb_writeoptions_t *write_options;
} rdb_handle;

static int fail_text(char *err, size_t err_len, const char *what, char *rdb_err)
{
  snprintf(err, err_len, "rocksdb: %s: %s", what, rdb_err != NULL ? rdb_err : "failed");
  if (rdb_err != NULL)
    rocksdb_free(rdb_err);
  return 1;
}

/* mayfly's size syntax: a byte count, optionally followed by K, KB, KiB, M, MB, MiB, G, GB,
 * GiB, T, TB or TiB in any case, all powers of 1024. Returns 0 on success. */
static int parse_size(const char *text, uint64_t *out)
{
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  if (errno != 0 || end == text || text[0] == '-')
    return 1;
  int shift = 0;
  if (*end != '\0') {
    const char *units = "kmgt";
    const char *u = strchr(units, *end | 0x20);
    if (u == NULL)
      return 1;
    shift = 10 * (int)(u - units + 1);
    end++;
    if (*end != '\0' && strcasecmp(end, "b") != 0 && strcasecmp(end, "ib") != 0)
      return 1;
  }
  if (shift > 0 && v > (UINT64_MAX >> shift))
    return 1;
  *out = (uint64_t)v << shift;
  return 0;
}

/* A plain decimal count in [0, 1e9] (every RocksDB int option here fits an int). */
static int parse_count(const char *text, uint64_t *out)
{
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || v > 1000000000ull)
    return 1;
  *out = v;
  return 0;
}

static int parse_bool(const char *text, uint64_t *out)
{
  static const char *const yes[] = {"true", "1", "yes", "on"};
  static const char *const no[] = {"false", "0", "no", "off"};
  for (size_t i = 0; i < 4; i++) {
    if (strcasecmp(text, yes[i]) == 0) {
      *out = 1;
      return 0;
    }
    if (strcasecmp(text, no[i]) == 0) {
      *out = 0;
      return 0;
    }
  }
  return 1;
}

static int set_option(struct rdb_settings *s, const char *name, const char *value, char *err,
                      size_t err_len)
{
  for (size_t i = 0; i < NUM_OPTIONS; i++) {
    const struct rdb_option *o = &k_options[i];
    if (strcmp(name, o->name) != 0)
      continue;
    char *field = (char *)s + o->offset;
    int bad = 1;
    if (o->kind == RDB_DOUBLE || o->kind == RDB_FRACTION) {
      char *end = NULL;
      errno = 0;
      double d = strtod(value, &end);
      bad = errno != 0 || end == value || *end != '\0' ||
            (o->kind == RDB_DOUBLE ? !(d > 1.0) : !(d >= 0.0 && d <= 1.0));
      if (!bad)
        memcpy(field, &d, sizeof d);
    } else if (o->kind == RDB_COMPRESSION) {
      static const struct {
        const char *name;
        uint64_t type;
      } types[] = {{"none", rocksdb_no_compression},
                   {"lz4", rocksdb_lz4_compression},
                   {"zstd", rocksdb_zstd_compression}};
      for (size_t t = 0; t < sizeof types / sizeof types[0] && bad; t++) {
        if (strcmp(value, types[t].name) == 0) {
          memcpy(field, &types[t].type, sizeof types[t].type);
          bad = 0;
        }
      }
    } else {
      uint64_t v = 0;
      if (o->kind == RDB_BOOL)
        bad = parse_bool(value, &v);
      else if (o->kind == RDB_INT)
        bad = parse_count(value, &v);
      else
        bad = parse_size(value, &v);
      if (!bad)
        memcpy(field, &v, sizeof v);
    }
    if (bad)
      snprintf(err, err_len, "rocksdb: option %s: bad value \"%s\"", name, value);
    return bad;
  }
  size_t used = (size_t)snprintf(err, err_len, "rocksdb: unknown option \"%s\" (known:", name);
  for (size_t i = 0; i < NUM_OPTIONS && used < err_len; i++)
    used += (size_t)snprintf(err + used, err_len - used, "%s %s", i == 0 ? "" : ",",
                             k_options[i].name);
  if (used < err_len)
    snprintf(err + used, err_len - used, ")");
  return 1;
}

/* Walks "name=value;name=value" (empty items and blanks around names and values allowed,
 * as in mayfly_options_parse) into *s. */
static int parse_settings(const char *spec, struct rdb_settings *s, char *err, size_t err_len)
{
  char *copy = strdup(spec);
  if (copy == NULL) {
    snprintf(err, err_len, "rocksdb: out of memory");
    return 1;
  }
  int rc = 0;
  char *save = NULL;
  for (char *item = strtok_r(copy, ";", &save); item != NULL && rc == 0;
       item = strtok_r(NULL, ";", &save)) {
    char *name = item + strspn(item, " \t");
    if (*name == '\0')
      continue;
    char *eq = strchr(name, '=');
    if (eq == NULL) {
      snprintf(err, err_len, "rocksdb: option \"%s\" has no '='", name);
      rc = 1;
      break;
    }
    char *value = eq + 1 + strspn(eq + 1, " \t");
    for (char *p = eq; p > name && (p[-1] == ' ' || p[-1] == '\t'); p--)
      p[-1] = '\0';
    *eq = '\0';
    for (size_t n = strlen(value); n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'); n--)
      value[n - 1] = '\0';
    rc = set_option(s, name, value, err, err_len);
  }
  free(copy);
  return rc;
}

static void handle_free(rdb_handle *h)
{
  if (h->db != NULL)
    rocksdb_close(h->db);
  if (h->read_options != NULL)
    rocksdb_readoptions_destroy(h->read_options);
  if (h->write_options != NULL)
    rocksdb_writeoptions_destroy(h->write_options);
  if (h->options != NULL)
    rocksdb_options_destroy(h->options);
  if (h->table_options != NULL)
    rocksdb_block_based_options_destroy(h->table_options);
  /* The options hold their own references to the cache; this drops ours, after the db. */
  if (h->cache != NULL)
    rocksdb_cache_destroy(h->cache);
  free(h);
}

/* Builds h->options from s. The filter policy is owned by the table options once set. */
static void build_options(rdb_handle *h, const struct rdb_settings *s)
{
  rocksdb_options_t *o = rocksdb_options_create();
  h->options = o;
  rocksdb_options_set_create_if_missing(o, 1);
  rocksdb_options_set_compaction_style(o, rocksdb_level_compaction);
  rocksdb_options_set_compression(o, rocksdb_no_compression);
  rocksdb_options_set_write_buffer_size(o, (size_t)s->write_buffer_size);
  rocksdb_options_set_max_write_buffer_number(o, (int)s->max_write_buffer_number);
  rocksdb_options_set_target_file_size_base(o, s->target_file_size_base);
  rocksdb_options_set_max_bytes_for_level_base(o, s->max_bytes_for_level_base);
  rocksdb_options_set_max_bytes_for_level_multiplier(o, s->max_bytes_for_level_multiplier);
  rocksdb_options_set_level0_file_num_compaction_trigger(
      o, (int)s->level0_file_num_compaction_trigger);
  rocksdb_options_set_level0_slowdown_writes_trigger(o, (int)s->level0_slowdown_writes_trigger);
  rocksdb_options_set_level0_stop_writes_trigger(o, (int)s->level0_stop_writes_trigger);
  rocksdb_options_set_level_compaction_dynamic_level_bytes(
      o, (unsigned char)s->level_compaction_dynamic_level_bytes);
  rocksdb_options_set_max_open_files(o, (int)s->max_open_files);
  rocksdb_options_set_max_background_jobs(o, (int)s->max_background_jobs);
  rocksdb_options_set_enable_blob_files(o, (unsigned char)s->enable_blob_files);
  rocksdb_options_set_min_blob_size(o, s->min_blob_size);
  rocksdb_options_set_blob_file_size(o, s->blob_file_size);
  rocksdb_options_set_blob_compression_type(o, (int)s->blob_compression);
  rocksdb_options_set_blob_file_starting_level(o, (int)s->blob_file_starting_level);
  rocksdb_options_set_enable_blob_gc(o, (unsigned char)s->enable_blob_garbage_collection);
  rocksdb_options_set_blob_gc_age_cutoff(o, s->blob_garbage_collection_age_cutoff);
  rocksdb_options_set_blob_gc_force_threshold(o, s->blob_garbage_collection_force_threshold);
  rocksdb_options_set_memtable_prefix_bloom_size_ratio(o, s->memtable_bloom_size_ratio);
  rocksdb_options_set_memtable_whole_key_filtering(o, s->memtable_bloom_size_ratio > 0);
  rocksdb_options_set_bytes_per_sync(o, s->bytes_per_sync);
  rocksdb_options_set_wal_bytes_per_sync(o, s->bytes_per_sync);
  rocksdb_options_set_allow_mmap_reads(o, (unsigned char)s->allow_mmap_reads);

  h->table_options = rocksdb_block_based_options_create();
  rocksdb_block_based_options_set_block_size(h->table_options, (size_t)s->block_size);
  if (s->block_cache_size > 0) {
    h->cache = rocksdb_cache_create_lru((size_t)s->block_cache_size);
    rocksdb_block_based_options_set_block_cache(h->table_options, h->cache);
  } else {
    rocksdb_block_based_options_set_no_block_cache(h->table_options, 1);
  }
  if (s->bloom_bits_per_key > 0)
    rocksdb_block_based_options_set_filter_policy(
        h->table_options, rocksdb_filterpolicy_create_bloom_full((double)s->bloom_bits_per_key));
  rocksdb_options_set_block_based_table_factory(o, h->table_options);
}

static int rdb_compression(const char *name, int *type)
{
  static const struct {
    const char *name;
    int type;
  } types[] = {{"none", rocksdb_no_compression},
               {"snappy", rocksdb_snappy_compression},
               {"lz4", rocksdb_lz4_compression},
               {"zstd", rocksdb_zstd_compression}};
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
    if (strcmp(name, types[i].name) == 0) {
      *type = types[i].type;
      return 0;
    }
  }
  return 1;
}

static int rdb_open(const char *path, const char *options, const bench_open_settings *settings,
                    void **handle, char *err, size_t err_len)
{
  struct rdb_settings s = k_mayfly_defaults;
  int compression = rocksdb_no_compression;
  if (rdb_compression(settings->compression, &compression) != 0) {
    snprintf(err, err_len, "rocksdb: unknown compression \"%s\"", settings->compression);
    return 1;
  }
  if (parse_settings(options, &s, err, err_len) != 0)
    return 1;
  rdb_handle *h = calloc(1, sizeof *h);
  if (h == NULL) {
    snprintf(err, err_len, "rocksdb: out of memory");
    return 1;
  }
  build_options(h, &s);
  rocksdb_options_set_compression(h->options, compression);
  rocksdb_options_set_create_if_missing(h->options, (unsigned char)settings->create_if_missing);
  h->read_options = rocksdb_readoptions_create();
  h->write_options = rocksdb_writeoptions_create();
  rocksdb_writeoptions_set_sync(h->write_options, (unsigned char)settings->sync);
  rocksdb_writeoptions_disable_WAL(h->write_options, settings->disable_wal);

  char *rdb_err = NULL;
  h->db = rocksdb_open(h->options, path, &rdb_err);
  if (rdb_err != NULL) {
    h->db = NULL;
    handle_free(h);
    return fail_text(err, err_len, "open", rdb_err);
  }
  *handle = h;
  return 0;
}

static int rdb_put(void *handle, const void *key, size_t klen, const void *val, size_t vlen,
                   char *err, size_t err_len)
{
  rdb_handle *h = handle;
  char *rdb_err = NULL;
  rocksdb_put(h->db, h->write_options, key, klen, val, vlen, &rdb_err);
  return rdb_err == NULL ? 0 : fail_text(err, err_len, "put", rdb_err);
}

static int rdb_get(void *handle, const void *key, size_t klen, int *found, size_t *vlen,
                   char *err, size_t err_len)
{
  rdb_handle *h = handle;
  char *rdb_err = NULL;
  size_t len = 0;
  char *val = rocksdb_get(h->db, h->read_options, key, klen, &len, &rdb_err);
  if (rdb_err != NULL)
    return fail_text(err, err_len, "get", rdb_err);
  *found = val != NULL;
  *vlen = val != NULL ? len : 0;
  if (val != NULL)
    rocksdb_free(val);
  return 0;
}

static int rdb_del(void *handle, const void *key, size_t klen, char *err, size_t err_len)
{
  rdb_handle *h = handle;
  char *e = NULL;
  rocksdb_delete(h->db, h->write_options, key, klen, &e);
  return e == NULL ? 0 : fail_text(err, err_len, "delete", e);
}

static int rdb_scan(void *handle, const void *start, size_t slen, int reverse, uint64_t limit,
                    uint64_t *entries, uint64_t *bytes, char *err, size_t err_len)
{
  rdb_handle *h = handle;
  rocksdb_iterator_t *it = rocksdb_create_iterator(h->db, h->read_options);
  uint64_t n = 0, total = 0;
  if (start == NULL) {
    if (reverse)
      rocksdb_iter_seek_to_last(it);
    else
      rocksdb_iter_seek_to_first(it);
  } else {
    rocksdb_iter_seek(it, start, slen);
    if (reverse) {
      /* seek lands on the first key >= start: step back unless it is start itself. */
      if (!rocksdb_iter_valid(it)) {
        rocksdb_iter_seek_to_last(it);
      } else {
        size_t klen = 0;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen != slen || memcmp(k, start, slen) != 0)
          rocksdb_iter_prev(it);
      }
    }
  }
  while (rocksdb_iter_valid(it) && (limit == 0 || n < limit)) {
    size_t klen = 0, vlen = 0;
    (void)rocksdb_iter_key(it, &klen);
    (void)rocksdb_iter_value(it, &vlen);
    n++;
    total += klen + vlen;
    if (reverse)
      rocksdb_iter_prev(it);
    else
      rocksdb_iter_next(it);
  }
  char *e = NULL;
  rocksdb_iter_get_error(it, &e);
  rocksdb_iter_destroy(it);
  if (e != NULL)
    return fail_text(err, err_len, "iterate", e);
  *entries = n;
  *bytes = total;
  return 0;
}

static int rdb_scan_all(void *handle, uint64_t *entries, uint64_t *bytes, char *err,
                        size_t err_len)
{
  rdb_handle *h = handle;
  rocksdb_iterator_t *it = rocksdb_create_iterator(h->db, h->read_options);
  uint64_t n = 0, total = 0;
  for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    size_t klen = 0, vlen = 0;
    (void)rocksdb_iter_key(it, &klen);
    (void)rocksdb_iter_value(it, &vlen);
    n++;
    total += klen + vlen;
  }
  char *rdb_err = NULL;
  rocksdb_iter_get_error(it, &rdb_err);
  rocksdb_iter_destroy(it);
  if (rdb_err != NULL)
    return fail_text(err, err_len, "iterate", rdb_err);
  *entries = n;
  *bytes = total;
  return 0;
}

/* Sum of RocksDB's integer properties that say a flush or compaction is queued or running. */
static int background_work(rocksdb_t *db, uint64_t *work)
{
  static const char *const props[] = {
      "rocksdb.mem-table-flush-pending",
      "rocksdb.num-running-flushes",
      "rocksdb.compaction-pending",
      "rocksdb.num-running-compactions",
  };
  *work = 0;
  for (size_t i = 0; i < sizeof props / sizeof props[0]; i++) {
    uint64_t v = 0;
    if (rocksdb_property_int(db, props[i], &v) != 0)
      return 1;
    *work += v;
  }
  return 0;
}

static int rdb_wait_idle(void *handle, char *err, size_t err_len)
{
  rdb_handle *h = handle;
  const struct timespec pause = {.tv_sec = 0, .tv_nsec = 20 * 1000 * 1000};
  for (;;) {
    uint64_t work = 0;
    if (background_work(h->db, &work) != 0) {
      snprintf(err, err_len, "rocksdb: cannot read the background-work properties");
      return 1;
    }
    if (work == 0)
      return 0;
    nanosleep(&pause, NULL);
  }
}

static int rdb_compact(void *handle, char *err, size_t err_len)
{
  rdb_handle *h = handle;
  rocksdb_compact_range(h->db, NULL, 0, NULL, 0);
  return 0;
}

static int rdb_flush(void *handle, char *err, size_t err_len)
{
  rdb_handle *h = handle;
  rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
  rocksdb_flushoptions_set_wait(fo, 1);
  char *rdb_err = NULL;
  rocksdb_flush(h->db, fo, &rdb_err);
  rocksdb_flushoptions_destroy(fo);
  if (rdb_err != NULL) {
    snprintf(err, err_len, "flush: %s", rdb_err);
    rocksdb_free(rdb_err);
    return 1;
  }
  return 0;
}

/* "Cumulative stall: 00:00:1.234 H:M:S, 0.5 percent" in the DB Stats of rocksdb.stats. */
static int rdb_stall_micros(void *handle, uint64_t *micros)
{
  rdb_handle *h = handle;
  char *text = rocksdb_property_value(h->db, "rocksdb.stats");
  if (text == NULL)
    return 1;
  const char *line = strstr(text, "Cumulative stall: ");
  unsigned long hours = 0, minutes = 0;
  double seconds = 0;
  int ok = line != NULL &&
           sscanf(line, "Cumulative stall: %lu:%lu:%lf", &hours, &minutes, &seconds) == 3;
  rocksdb_free(text);
  if (!ok)
    return 1;
  *micros = (uint64_t)(((double)hours * 3600.0 + (double)minutes * 60.0 + seconds) * 1e6 + 0.5);
  return 0;
}

static int rdb_close(void *handle, char *err, size_t err_len)
{
  handle_free(handle);
  return 0;
}

static int rdb_destroy(const char *path, char *err, size_t err_len)
{
  rocksdb_options_t *options = rocksdb_options_create();
  char *rdb_err = NULL;
  rocksdb_destroy_db(options, path, &rdb_err);
  rocksdb_options_destroy(options);
  return rdb_err == NULL ? 0 : fail_text(err, err_len, "destroy", rdb_err);
}

static void rdb_print_stats(void *handle)
{
  rdb_handle *h = handle;
  static const char *const props[] = {"rocksdb.stats", "rocksdb.blob-stats",
                                      "rocksdb.total-blob-file-size",
                                      "rocksdb.live-blob-file-size"};
  for (size_t i = 0; i < sizeof props / sizeof props[0]; i++) {
    char *text = rocksdb_property_value(h->db, props[i]);
    if (text != NULL) {
      printf("%s:\n%s\n", props[i], text);
      rocksdb_free(text);
    }
  }
}

static void rdb_version(char *buf, size_t len)
{
  snprintf(buf, len, "rocksdb %s", MAYFLY_BENCH_ROCKSDB_VERSION);
}

const bench_adapter bench_adapter_rocksdb = {
    .name = "rocksdb",
    .compressions = "none,snappy,lz4,zstd",
    .can_disable_wal = 1,
    .version = rdb_version,
    .open = rdb_open,
    .put = rdb_put,
    .get = rdb_get,
    .del = rdb_del,
    .scan = rdb_scan,
    .scan_all = rdb_scan_all,
    .bytes_written = NULL,
    .wait_idle = rdb_wait_idle,
    .compact = rdb_compact,
    .flush = rdb_flush,
    .stall_micros = rdb_stall_micros,
    .close = rdb_close,
    .destroy = rdb_destroy,
    .print_stats = rdb_print_stats,
};
