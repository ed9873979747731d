/* Table cache (see table_cache.h). The cache's values are table pointers; the entry's
 * deleter closes the table, which the mf_cache calls exactly once, after the last pin. */
#include "cache/table_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mayfly.h"
#include "table/table.h"
#include "util/coding.h"
#include "util/error.h"
#include "version/filename.h"

struct table_cache {
  mf_env *env;
  char *dbname;
  mf_cache *block_cache; /* not owned; may be NULL */
  mf_cache *cache;       /* owned: file number -> table */
};

int table_cache_create(mf_env *env, const char *dbname, mf_cache *block_cache, int max_open_files,
                       table_cache **out) {
  *out = NULL;
  if (max_open_files < 0)
    return MF_ERR(MAYFLY_EINVAL, "table cache for %s: max_open_files %d is negative", dbname,
                  max_open_files);
  table_cache *tc = calloc(1, sizeof *tc);
  if (!tc) return MF_ERR(MAYFLY_ENOMEM, "table cache for %s: out of memory", dbname);
  tc->env = env;
  tc->block_cache = block_cache;
  tc->dbname = strdup(dbname);
  if (!tc->dbname) {
    free(tc);
    return MF_ERR(MAYFLY_ENOMEM, "table cache for %s: out of memory", dbname);
  }
  int rc = cache_create((size_t)max_open_files, &tc->cache);
  if (rc != MAYFLY_OK) {
    free(tc->dbname);
    free(tc);
    return rc;
  }
  *out = tc;
  return MAYFLY_OK;
}

void table_cache_destroy(table_cache *tc) {
  if (!tc) return;
  cache_destroy(tc->cache);
  free(tc->dbname);
  free(tc);
}

static void delete_table(mf_slice key, void *value) {
  (void)key;
  table_close(value);
}

/* Opens table file_number and returns it in *out (the caller owns it). Every error message
 * names the file, even when the failing layer's own message does not. */
static int open_table(table_cache *tc, uint64_t file_number, uint64_t file_size, table **out) {
  char *fname = filename_table(tc->dbname, file_number);
  if (!fname)
    return MF_ERR(MAYFLY_ENOMEM, "%s: out of memory naming table %06llu", tc->dbname,
                  (unsigned long long)file_number);
  mf_rfile *file = NULL;
  int rc = tc->env->open_readable(tc->env, fname, &file);
  if (rc == MAYFLY_OK) {
    uint64_t cache_id = tc->block_cache ? cache_new_id(tc->block_cache) : 0;
    rc = table_open(tc->env, file, fname, file_size, tc->block_cache, cache_id, out);
  }
  if (rc != MAYFLY_OK) {
    /* MF_ERR formats into the thread's message slot, so the inner message must be copied
     * out before it is wrapped. */
    char inner[512];
    snprintf(inner, sizeof inner, "%s", mf_error_message());
    rc = MF_ERR(rc, "%s: cannot open table (size %llu): %s", fname,
                (unsigned long long)file_size, inner);
  }
  free(fname);
  return rc;
}

/* Finds or opens table file_number; on MAYFLY_OK *out is a pinned handle whose value is the
 * table. */
static int find_table(table_cache *tc, uint64_t file_number, uint64_t file_size,
                      mf_cache_handle **out) {
  char key_buf[8];
  encode_fixed64(key_buf, file_number);
  mf_slice key = mf_slice_make(key_buf, sizeof key_buf);

  *out = cache_lookup(tc->cache, key);
  if (*out) return MAYFLY_OK;

  table *t = NULL;
  int rc = open_table(tc, file_number, file_size, &t);
  if (rc != MAYFLY_OK) return rc;
  *out = cache_insert(tc->cache, key, t, 1, delete_table);
  if (!*out) {
    table_close(t);
    return MF_ERR(MAYFLY_ENOMEM, "%s/%06llu.sst: out of memory caching the open table",
                  tc->dbname, (unsigned long long)file_number);
  }
  return MAYFLY_OK;
}

int table_cache_get(table_cache *tc, uint64_t file_number, uint64_t file_size,
                    mf_slice lookup_ikey, void (*saver)(void *arg, mf_slice ikey, mf_slice value),
                    void *arg) {
  mf_cache_handle *h = NULL;
  int rc = find_table(tc, file_number, file_size, &h);
  if (rc != MAYFLY_OK) return rc;
  rc = table_get(cache_value(h), lookup_ikey, saver, arg);
  cache_release(tc->cache, h);
  return rc;
}

/* Iterator cleanup: unpins the table once the iterator over it is gone. */
static void unpin_table(void *cache, void *handle) { cache_release(cache, handle); }

mf_iter *table_cache_iter(table_cache *tc, uint64_t file_number, uint64_t file_size,
                          table **out_table) {
  if (out_table) *out_table = NULL;
  mf_cache_handle *h = NULL;
  int rc = find_table(tc, file_number, file_size, &h);
  if (rc != MAYFLY_OK) return iter_new_empty(rc);

  table *t = cache_value(h);
  mf_iter *it = table_iter_create(t);
  if (!it) {
    cache_release(tc->cache, h);
    return iter_new_empty(MF_ERR(MAYFLY_ENOMEM, "%s/%06llu.sst: out of memory for an iterator",
                                 tc->dbname, (unsigned long long)file_number));
  }
  if (iter_register_cleanup(it, unpin_table, tc->cache, h) != MAYFLY_OK) {
    iter_destroy(it);
    cache_release(tc->cache, h);
    return iter_new_empty(MF_ERR(MAYFLY_ENOMEM, "%s/%06llu.sst: out of memory for an iterator",
                                 tc->dbname, (unsigned long long)file_number));
  }
  if (out_table) *out_table = t;
  return it;
}

void table_cache_evict(table_cache *tc, uint64_t file_number) {
  char key_buf[8];
  encode_fixed64(key_buf, file_number);
  cache_erase(tc->cache, mf_slice_make(key_buf, sizeof key_buf));
}
