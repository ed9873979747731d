/* mayfly behind the bench adapter interface, through the public API only (include/mayfly.h).
 *
 * Applied before the caller's options text, in this order: compression=none (the comparison
 * runs every engine uncompressed unless --compression_type says otherwise), the open
 * settings' compression and create_if_missing. Writes take the flags of the open settings:
 * 0 (WAL, no sync), MAYFLY_SYNC (--sync) or MAYFLY_NO_WAL (--disable_wal).
 *
 * Stall time: mayfly has no property for it alone, so it is read from the "Stall: S s" line of
 * mayfly.stats (milliseconds resolution). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "mayfly.h"

/* Applied first, so that anything in --options overrides it. */
static const char k_bench_defaults[] = "compression=none";

static int fail(char *err, size_t err_len, const char *what, int rc, const mayfly_db *db)
{
  /* mayfly_errmsg needs a handle: a failed open has none, and only the code is known. */
  if (db != NULL)
    snprintf(err, err_len, "mayfly: %s: %s: %s", what, mayfly_strerror(rc), mayfly_errmsg(db));
  else
    snprintf(err, err_len, "mayfly: %s: %s", what, mayfly_strerror(rc));
  return 1;
}

/* The open database and the write flags every put and delete uses. */
typedef struct mf_handle {
  mayfly_db *db;
  unsigned write_flags;
} mf_handle;

static int mf_open(const char *path, const char *options, const bench_open_settings *settings,
                   void **handle, char *err, size_t err_len)
{
  mayfly_options *opt = NULL;
  mayfly_db *db = NULL;
  int rc = mayfly_options_create(&opt);
  if (rc != MAYFLY_OK)
    return fail(err, err_len, "options_create", rc, NULL);
  rc = mayfly_options_parse(opt, k_bench_defaults);
  if (rc != MAYFLY_OK) {
    mayfly_options_destroy(opt);
    return fail(err, err_len, "options_parse(bench defaults \"compression=none\")", rc, NULL);
  }
  rc = mayfly_options_set(opt, "compression", settings->compression);
  if (rc == MAYFLY_OK)
    rc = mayfly_options_set(opt, "create_if_missing",
                            settings->create_if_missing ? "true" : "false");
  if (rc != MAYFLY_OK) {
    mayfly_options_destroy(opt);
    return fail(err, err_len, "options_set(compression, create_if_missing)", rc, NULL);
  }
  if (options[0] != '\0') {
    rc = mayfly_options_parse(opt, options);
    if (rc != MAYFLY_OK) {
      char what[512];
      snprintf(what, sizeof what, "options_parse(\"%s\")", options);
      mayfly_options_destroy(opt);
      return fail(err, err_len, what, rc, NULL);
    }
  }
  mf_handle *h = calloc(1, sizeof *h);
  if (h == NULL) {
    mayfly_options_destroy(opt);
    return fail(err, err_len, "open", MAYFLY_ENOMEM, NULL);
  }
  rc = mayfly_open(path, opt, &db);
  mayfly_options_destroy(opt);
  if (rc != MAYFLY_OK) {
    free(h);
    char what[512];
    snprintf(what, sizeof what, "open(%s)%s", path,
             settings->create_if_missing ? "" : " (--use_existing_db: it must exist)");
    return fail(err, err_len, what, rc, NULL);
  }
  h->db = db;
  h->write_flags = settings->sync ? MAYFLY_SYNC : settings->disable_wal ? MAYFLY_NO_WAL : 0;
  *handle = h;
  return 0;
}

static int mf_put(void *handle, const void *key, size_t klen, const void *val, size_t vlen,
                  char *err, size_t err_len)
{
  mf_handle *h = handle;
  mayfly_db *db = h->db;
  int rc = mayfly_put(db, key, klen, val, vlen, h->write_flags);
  return rc == MAYFLY_OK ? 0 : fail(err, err_len, "put", rc, db);
}

static int mf_get(void *handle, const void *key, size_t klen, int *found, size_t *vlen, char *err,
                  size_t err_len)
{
  mayfly_db *db = ((mf_handle *)handle)->db;
  void *val = NULL;
  int rc = mayfly_get(db, NULL, key, klen, &val, vlen);
  if (rc == MAYFLY_ENOTFOUND) {
    *found = 0;
    *vlen = 0;
    return 0;
  }
  if (rc != MAYFLY_OK)
    return fail(err, err_len, "get", rc, db);
  *found = 1;
  mayfly_free(val);
  return 0;
}

static int mf_del(void *handle, const void *key, size_t klen, char *err, size_t err_len)
{
  mf_handle *h = handle;
  mayfly_db *db = h->db;
  int rc = mayfly_delete(db, key, klen, h->write_flags);
  return rc == MAYFLY_OK ? 0 : fail(err, err_len, "delete", rc, db);
}

static int mf_scan(void *handle, const void *start, size_t slen, int reverse, uint64_t limit,
                   uint64_t *entries, uint64_t *bytes, char *err, size_t err_len)
{
  mayfly_db *db = ((mf_handle *)handle)->db;
  mayfly_iter *it = NULL;
  uint64_t n = 0, total = 0;
  int rc = mayfly_iter_create(db, NULL, &it);
  if (rc != MAYFLY_OK)
    return fail(err, err_len, "iter_create", rc, db);
  if (start == NULL) {
    if (reverse)
      mayfly_iter_seek_to_last(it);
    else
      mayfly_iter_seek_to_first(it);
  } else {
    mayfly_iter_seek(it, start, slen);
    if (reverse) {
      /* seek lands on the first key >= start: step back unless it is start itself. */
      if (!mayfly_iter_valid(it)) {
        mayfly_iter_seek_to_last(it);
      } else {
        size_t klen = 0;
        const void *k = mayfly_iter_key(it, &klen);
        if (klen != slen || memcmp(k, start, slen) != 0)
          mayfly_iter_prev(it);
      }
    }
  }
  while (mayfly_iter_valid(it) && (limit == 0 || n < limit)) {
    size_t klen = 0, vlen = 0;
    (void)mayfly_iter_key(it, &klen);
    if (mayfly_iter_value(it, &vlen) == NULL)
      break; /* the status below says why */
    n++;
    total += klen + vlen;
    if (reverse)
      mayfly_iter_prev(it);
    else
      mayfly_iter_next(it);
  }
  rc = mayfly_iter_status(it);
  mayfly_iter_destroy(it);
  if (rc != MAYFLY_OK)
    return fail(err, err_len, "iterate", rc, db);
  *entries = n;
  *bytes = total;
  return 0;
}

/* db_bench's readseq: one forward pass from the first key. */
static int mf_scan_all(void *handle, uint64_t *entries, uint64_t *bytes, char *err,
                       size_t err_len)
{
  return mf_scan(handle, NULL, 0, 0, 0, entries, bytes, err, err_len);
}

static int property_u64(mayfly_db *db, const char *name, uint64_t *out)
{
  char *text = NULL;
  if (mayfly_property(db, name, &text) != MAYFLY_OK || text == NULL)
    return 1;
  char *end = NULL;
  unsigned long long v = strtoull(text, &end, 10);
  int ok = end != text;
  mayfly_free(text);
  if (!ok)
    return 1;
  *out = v;
  return 0;
}

static int mf_bytes_written(void *handle, uint64_t *engine_bytes, uint64_t *user_bytes)
{
  mayfly_db *db = ((mf_handle *)handle)->db;
  if (property_u64(db, "mayfly.bytes-written", engine_bytes) != 0)
    return 1;
  return property_u64(db, "mayfly.user-bytes-written", user_bytes);
}

static int mf_wait_idle(void *handle, char *err, size_t err_len)
{
  mayfly_db *db = ((mf_handle *)handle)->db;
  int rc = mayfly_wait_idle(db);
  return rc == MAYFLY_OK ? 0 : fail(err, err_len, "wait_idle", rc, db);
}

static int mf_flush(void *handle, char *err, size_t err_len)
{
  mayfly_db *db = ((mf_handle *)handle)->db;
  int rc = mayfly_flush(db);
  return rc == MAYFLY_OK ? 0 : fail(err, err_len, "flush", rc, db);
}

static int mf_stall_micros(void *handle, uint64_t *micros)
{
  return property_u64(((mf_handle *)handle)->db, "mayfly.stall-micros", micros);
}

static int mf_compact(void *handle, char *err, size_t err_len)
{
  mayfly_db *db = ((mf_handle *)handle)->db;
  int rc = mayfly_compact_range(db, NULL, 0, NULL, 0);
  return rc == MAYFLY_OK ? 0 : fail(err, err_len, "compact_range", rc, db);
}

static int mf_close(void *handle, char *err, size_t err_len)
{
  mf_handle *h = handle;
  int rc = mayfly_close(h->db);
  free(h);
  /* The handle is gone even when close reports a failure, so no errmsg is available. */
  return rc == MAYFLY_OK ? 0 : fail(err, err_len, "close", rc, NULL);
}

static int mf_destroy(const char *path, char *err, size_t err_len)
{
  int rc = mayfly_destroy(path);
  if (rc == MAYFLY_OK || rc == MAYFLY_ENOTFOUND)
    return 0;
  char what[512];
  snprintf(what, sizeof what, "destroy(%s)", path);
  return fail(err, err_len, what, rc, NULL);
}

static void mf_print_stats(void *handle)
{
  static const char *const props[] = {"mayfly.stats", "mayfly.blob-stats",
                                      "mayfly.space-amplification",
                                      "mayfly.live-data-size-exact"};
  for (size_t i = 0; i < sizeof props / sizeof props[0]; i++) {
    char *text = NULL;
    if (mayfly_property(((mf_handle *)handle)->db, props[i], &text) == MAYFLY_OK &&
        text != NULL) {
      printf("%s:\n%s%s", props[i], text,
             text[0] != '\0' && text[strlen(text) - 1] == '\n' ? "" : "\n");
      mayfly_free(text);
    }
  }
}

static void mf_version(char *buf, size_t len)
{
  snprintf(buf, len, "mayfly %s", mayfly_version());
}

const bench_adapter bench_adapter_mayfly = {
    .name = "mayfly",
    .compressions = "none,lz4,zstd",
    .can_disable_wal = 1,
    .version = mf_version,
    .open = mf_open,
    .put = mf_put,
    .get = mf_get,
    .del = mf_del,
    .scan = mf_scan,
    .scan_all = mf_scan_all,
    .bytes_written = mf_bytes_written,
    .wait_idle = mf_wait_idle,
    .compact = mf_compact,
    .stall_micros = mf_stall_micros,
    .flush = mf_flush,
    .close = mf_close,
    .destroy = mf_destroy,
    .print_stats = mf_print_stats,
};
