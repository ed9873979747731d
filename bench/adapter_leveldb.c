/* LevelDB behind the bench adapter interface, through LevelDB's C API (<leveldb/c.h>).
 *
 * Defaults: create_if_missing, no compression, write_buffer_size 4 MiB (LevelDB's own
 * default, stated here so the comparison does not depend on the library version), WAL on,
 * no sync. The options text understands a few LevelDB settings, with the same spelling and
 * size suffixes as mayfly's options so one string can describe both engines:
 *   write_buffer_size, block_size, block_cache_size, max_open_files, max_file_size,
 *   bloom_bits_per_key (0 = no filter, LevelDB's default)
 * Any other name is refused, so a typo cannot silently benchmark the wrong setting.
 * mayfly_bench puts its shared settings (the same memtable, block, cache, filter and file
 * sizes for every engine) in front of --leveldb_options, so in the bench every one of these
 * is set explicitly; the defaults above only apply to other callers.
 *
 * The open settings: create_if_missing, sync (leveldb_writeoptions_set_sync) and compression
 * none or snappy (the only ones LevelDB's C API has). LevelDB cannot write without its log,
 * so can_disable_wal is 0 and open refuses disable_wal.
 *
 * LevelDB does not report the bytes it writes, so bytes_written is NULL; mayfly_bench
 * measures every engine's write traffic from /proc/self/io instead. Nor does it count stall
 * time (stall_micros is NULL: "n/a") or say when background work is done (wait_idle is NULL:
 * mayfly_bench watches the directory's size). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <leveldb/c.h>

#include "adapter.h"

typedef struct ldb_handle {
  leveldb_t *db;
  leveldb_options_t *options;
  leveldb_cache_t *cache;          /* NULL: LevelDB's internal 8 MiB cache */
  leveldb_filterpolicy_t *filter;  /* NULL: no bloom filter */
  leveldb_readoptions_t *read_options;
  leveldb_writeoptions_t *write_options;
} ldb_handle;

static int fail_text(char *err, size_t err_len, const char *what, char *ldb_err)
{
  snprintf(err, err_len, "leveldb: %s: %s", what, ldb_err != NULL ? ldb_err : "failed");
  if (ldb_err != NULL)
    leveldb_free(ldb_err);
  return 1;
}

/* "4194304", "4MiB", "4M", "64KiB", "1GiB" -> bytes. Returns 0 on success. */
static int parse_size(const char *text, uint64_t *out)
{
  char *end = NULL;
  errno = 0;
  if (*text < '0' || *text > '9') /* strtoull would take "-3" as 2^64 - 3 */
    return 1;
  unsigned long long v = strtoull(text, &end, 10);
  if (errno != 0 || end == text)
    return 1;
  uint64_t mult = 1;
  if (*end != '\0') {
    char unit = (char)(*end | 0x20);
    if (unit == 'k')
      mult = 1ull << 10;
    else if (unit == 'm')
      mult = 1ull << 20;
    else if (unit == 'g')
      mult = 1ull << 30;
    else
      return 1;
    end++;
    if (strcasecmp(end, "ib") != 0 && strcasecmp(end, "b") != 0 && *end != '\0')
      return 1;
  }
  if (v > UINT64_MAX / mult)
    return 1;
  *out = v * mult;
  return 0;
}

static int apply_option(ldb_handle *h, const char *name, const char *value, char *err,
                        size_t err_len)
{
  uint64_t v = 0;
  int is_int = strcmp(name, "max_open_files") == 0 || strcmp(name, "bloom_bits_per_key") == 0;
  if (parse_size(value, &v) != 0 || (is_int && v > INT32_MAX) || v > SIZE_MAX) {
    snprintf(err, err_len, "leveldb: option %s: bad value \"%s\"", name, value);
    return 1;
  }
  if (strcmp(name, "write_buffer_size") == 0) {
    leveldb_options_set_write_buffer_size(h->options, (size_t)v);
  } else if (strcmp(name, "block_size") == 0) {
    leveldb_options_set_block_size(h->options, (size_t)v);
  } else if (strcmp(name, "max_open_files") == 0) {
    leveldb_options_set_max_open_files(h->options, (int)v);
  } else if (strcmp(name, "max_file_size") == 0) {
    leveldb_options_set_max_file_size(h->options, (size_t)v);
  } else if (strcmp(name, "block_cache_size") == 0) {
    if (h->cache != NULL)
      leveldb_cache_destroy(h->cache);
    h->cache = leveldb_cache_create_lru((size_t)v);
    leveldb_options_set_cache(h->options, h->cache);
  } else if (strcmp(name, "bloom_bits_per_key") == 0) {
    if (h->filter != NULL)
      leveldb_filterpolicy_destroy(h->filter);
    h->filter = v > 0 ? leveldb_filterpolicy_create_bloom((int)v) : NULL;
    leveldb_options_set_filter_policy(h->options, h->filter);
  } else {
    snprintf(err, err_len,
             "leveldb: unknown option \"%s\" (known: write_buffer_size, block_size, "
             "block_cache_size, max_open_files, max_file_size, bloom_bits_per_key)",
             name);
    return 1;
  }
  return 0;
}

/* Walks "name=value;name=value" (empty items allowed) and applies each. */
static int apply_options(ldb_handle *h, const char *spec, char *err, size_t err_len)
{
  char *copy = strdup(spec);
  if (copy == NULL) {
    snprintf(err, err_len, "leveldb: out of memory");
    return 1;
  }
  int rc = 0;
  char *save = NULL;
  for (char *item = strtok_r(copy, ";", &save); item != NULL && rc == 0;
       item = strtok_r(NULL, ";", &save)) {
    char *eq = strchr(item, '=');
    if (eq == NULL) {
      snprintf(err, err_len, "leveldb: option \"%s\" has no '='", item);
      rc = 1;
      break;
    }
    *eq = '\0';
    rc = apply_option(h, item, eq + 1, err, err_len);
  }
  free(copy);
  return rc;
}

static void handle_free(ldb_handle *h)
{
  if (h->db != NULL)
    leveldb_close(h->db);
  if (h->read_options != NULL)
    leveldb_readoptions_destroy(h->read_options);
  if (h->write_options != NULL)
    leveldb_writeoptions_destroy(h->write_options);
  if (h->options != NULL)
    leveldb_options_destroy(h->options);
  /* The cache and the filter must outlive the db that uses them. */
  if (h->cache != NULL)
    leveldb_cache_destroy(h->cache);
  if (h->filter != NULL)
    leveldb_filterpolicy_destroy(h->filter);
  free(h);
}

static int ldb_open(const char *path, const char *options, const bench_open_settings *settings,
                    void **handle, char *err, size_t err_len)
{
  int snappy = strcmp(settings->compression, "snappy") == 0;
  if (settings->disable_wal || (!snappy && strcmp(settings->compression, "none") != 0)) {
    snprintf(err, err_len, "leveldb: %s is not supported (LevelDB has %s)",
             settings->disable_wal ? "disable_wal" : settings->compression,
             settings->disable_wal ? "no way to write without its log"
                                   : "only none and snappy compression");
    return 1;
  }
  ldb_handle *h = calloc(1, sizeof *h);
  if (h == NULL) {
    snprintf(err, err_len, "leveldb: out of memory");
    return 1;
  }
  h->options = leveldb_options_create();
  leveldb_options_set_create_if_missing(h->options, (unsigned char)settings->create_if_missing);
  leveldb_options_set_compression(h->options,
                                  snappy ? leveldb_snappy_compression : leveldb_no_compression);
  leveldb_options_set_write_buffer_size(h->options, 4u << 20);
  if (apply_options(h, options, err, err_len) != 0) {
    handle_free(h);
    return 1;
  }
  h->read_options = leveldb_readoptions_create();
  h->write_options = leveldb_writeoptions_create();
  leveldb_writeoptions_set_sync(h->write_options, (unsigned char)settings->sync);

  char *ldb_err = NULL;
  h->db = leveldb_open(h->options, path, &ldb_err);
  if (ldb_err != NULL) {
    h->db = NULL;
    handle_free(h);
    return fail_text(err, err_len, "open", ldb_err);
  }
  *handle = h;
  return 0;
}

static int ldb_put(void *handle, const void *key, size_t klen, const void *val, size_t vlen,
                   char *err, size_t err_len)
{
  ldb_handle *h = handle;
  char *ldb_err = NULL;
  leveldb_put(h->db, h->write_options, key, klen, val, vlen, &ldb_err);
  return ldb_err == NULL ? 0 : fail_text(err, err_len, "put", ldb_err);
}

static int ldb_get(void *handle, const void *key, size_t klen, int *found, size_t *vlen,
                   char *err, size_t err_len)
{
  ldb_handle *h = handle;
  char *ldb_err = NULL;
  size_t len = 0;
  char *val = leveldb_get(h->db, h->read_options, key, klen, &len, &ldb_err);
  if (ldb_err != NULL)
    return fail_text(err, err_len, "get", ldb_err);
  *found = val != NULL;
  *vlen = val != NULL ? len : 0;
  if (val != NULL)
    leveldb_free(val);
  return 0;
}

static int ldb_del(void *handle, const void *key, size_t klen, char *err, size_t err_len)
{
  ldb_handle *h = handle;
  char *e = NULL;
  leveldb_delete(h->db, h->write_options, key, klen, &e);
  return e == NULL ? 0 : fail_text(err, err_len, "delete", e);
}

static int ldb_scan(void *handle, const void *start, size_t slen, int reverse, uint64_t limit,
                    uint64_t *entries, uint64_t *bytes, char *err, size_t err_len)
{
  ldb_handle *h = handle;
  leveldb_iterator_t *it = leveldb_create_iterator(h->db, h->read_options);
  uint64_t n = 0, total = 0;
  if (start == NULL) {
    if (reverse)
      leveldb_iter_seek_to_last(it);
    else
      leveldb_iter_seek_to_first(it);
  } else {
    leveldb_iter_seek(it, start, slen);
    if (reverse) {
      /* seek lands on the first key >= start: step back unless it is start itself. */
      if (!leveldb_iter_valid(it)) {
        leveldb_iter_seek_to_last(it);
      } else {
        size_t klen = 0;
        const char *k = leveldb_iter_key(it, &klen);
        if (klen != slen || memcmp(k, start, slen) != 0)
          leveldb_iter_prev(it);
      }
    }
  }
  while (leveldb_iter_valid(it) && (limit == 0 || n < limit)) {
    size_t klen = 0, vlen = 0;
    (void)leveldb_iter_key(it, &klen);
    (void)leveldb_iter_value(it, &vlen);
    n++;
    total += klen + vlen;
    if (reverse)
      leveldb_iter_prev(it);
    else
      leveldb_iter_next(it);
  }
  char *e = NULL;
  leveldb_iter_get_error(it, &e);
  leveldb_iter_destroy(it);
  if (e != NULL)
    return fail_text(err, err_len, "iterate", e);
  *entries = n;
  *bytes = total;
  return 0;
}

static int ldb_scan_all(void *handle, uint64_t *entries, uint64_t *bytes, char *err,
                        size_t err_len)
{
  ldb_handle *h = handle;
  leveldb_iterator_t *it = leveldb_create_iterator(h->db, h->read_options);
  uint64_t n = 0, total = 0;
  for (leveldb_iter_seek_to_first(it); leveldb_iter_valid(it); leveldb_iter_next(it)) {
    size_t klen = 0, vlen = 0;
    (void)leveldb_iter_key(it, &klen);
    (void)leveldb_iter_value(it, &vlen);
    n++;
    total += klen + vlen;
  }
  char *ldb_err = NULL;
  leveldb_iter_get_error(it, &ldb_err);
  leveldb_iter_destroy(it);
  if (ldb_err != NULL)
    return fail_text(err, err_len, "iterate", ldb_err);
  *entries = n;
  *bytes = total;
  return 0;
}

static int ldb_compact(void *handle, char *err, size_t err_len)
{
  ldb_handle *h = handle;
  leveldb_compact_range(h->db, NULL, 0, NULL, 0);
  return 0;
}

static int ldb_close(void *handle, char *err, size_t err_len)
{
  handle_free(handle);
  return 0;
}

static int ldb_destroy(const char *path, char *err, size_t err_len)
{
  leveldb_options_t *options = leveldb_options_create();
  char *ldb_err = NULL;
  leveldb_destroy_db(options, path, &ldb_err);
  leveldb_options_destroy(options);
  return ldb_err == NULL ? 0 : fail_text(err, err_len, "destroy", ldb_err);
}

static void ldb_version(char *buf, size_t len)
{
  snprintf(buf, len, "leveldb %d.%d", leveldb_major_version(), leveldb_minor_version());
}

const bench_adapter bench_adapter_leveldb = {
    .name = "leveldb",
    .compressions = "none,snappy",
    .can_disable_wal = 0,
    .version = ldb_version,
    .open = ldb_open,
    .put = ldb_put,
    .get = ldb_get,
    .del = ldb_del,
    .scan = ldb_scan,
    .scan_all = ldb_scan_all,
    .bytes_written = NULL,
    .compact = ldb_compact,
    .stall_micros = NULL,
    .close = ldb_close,
    .destroy = ldb_destroy,
};
