/* Blob cache (see blob_cache.h). The reader cache's values are blob_reader pointers, closed
 * by the entry deleter; the value cache's values are cached_value copies, freed by theirs. */
#include "blob/blob_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob/blob_reader.h"
#include "mayfly.h"
#include "util/coding.h"
#include "util/error.h"
#include "version/filename.h"

struct blob_cache {
  mf_env *env;
  char *dbname;
  mf_cache *readers;     /* owned: file number -> blob_reader */
  mf_cache *value_cache; /* not owned; may be NULL */
  uint64_t value_cache_id;
};

/* A cached value remembers the key and index it was read for, so a hit is returned only to
 * a get that the reader would have answered with the same bytes (anything else falls
 * through to the reader, which reports the mismatch). */
typedef struct cached_value {
  uint64_t stored_size;
  int compression;
  size_t key_len;
  size_t len;
  char data[]; /* key, then value */
} cached_value;

#define VALUE_KEY_SIZE 24

int blob_cache_create(mf_env *env, const char *dbname, int max_open_files, mf_cache *value_cache,
                      blob_cache **out) {
  *out = NULL;
  if (max_open_files < 0)
    return MF_ERR(MAYFLY_EINVAL, "blob cache for %s: max_open_files %d is negative", dbname,
                  max_open_files);
  blob_cache *bc = calloc(1, sizeof *bc);
  if (!bc || !(bc->dbname = strdup(dbname))) {
    free(bc);
    return MF_ERR(MAYFLY_ENOMEM, "blob cache for %s: out of memory", dbname);
  }
  int rc = cache_create((size_t)max_open_files, &bc->readers);
  if (rc != MAYFLY_OK) {
    free(bc->dbname);
    free(bc);
    return MF_ERR(rc, "blob cache for %s: out of memory", dbname);
  }
  bc->env = env;
  bc->value_cache = value_cache;
  bc->value_cache_id = value_cache ? cache_new_id(value_cache) : 0;
  *out = bc;
  return MAYFLY_OK;
}

void blob_cache_destroy(blob_cache *bc) {
  if (!bc) return;
  cache_destroy(bc->readers);
  free(bc->dbname);
  free(bc);
}

static void delete_reader(mf_slice key, void *value) { blob_reader_close(value); }
static void delete_value(mf_slice key, void *value) { free(value); }

/* Opens reader file_number (size file_size, 0 = ask the env) into *out, owned by the caller.
 * Every error names the file; a missing file is corruption (see blob_cache.h). */
static int open_reader(blob_cache *bc, const char *fname, uint64_t file_number,
                       uint64_t file_size, blob_reader **out) {
  mf_rfile *file = NULL;
  int rc = MAYFLY_OK;
  if (file_size == 0) rc = bc->env->file_size(bc->env, fname, &file_size);
  if (rc == MAYFLY_OK) rc = bc->env->open_readable(bc->env, fname, &file);
  if (rc == MAYFLY_ENOTFOUND) {
    const char *base = strrchr(fname, '/');
    return MF_ERR(MAYFLY_ECORRUPT, "blob file %s referenced but missing (%s)",
                  base ? base + 1 : fname, fname);
  }
  if (rc == MAYFLY_OK) rc = blob_reader_open(bc->env, file, fname, file_number, file_size, out);
  if (rc != MAYFLY_OK) {
    /* MF_ERR formats into the thread's message slot: copy the inner message out first. */
    char inner[512];
    snprintf(inner, sizeof inner, "%s", mf_error_message());
    rc = MF_ERR(rc, "%s: cannot open blob file (size %llu): %s", fname,
                (unsigned long long)file_size, inner);
  }
  return rc;
}

/* Finds or opens reader file_number; on MAYFLY_OK *out pins it. */
static int find_reader(blob_cache *bc, uint64_t file_number, uint64_t file_size,
                       mf_cache_handle **out) {
  char key_buf[8];
  encode_fixed64(key_buf, file_number);
  mf_slice key = mf_slice_make(key_buf, sizeof key_buf);
  *out = cache_lookup(bc->readers, key);
  if (*out) return MAYFLY_OK;

  char *fname = filename_blob(bc->dbname, file_number);
  if (!fname)
    return MF_ERR(MAYFLY_ENOMEM, "%s: out of memory naming blob file %06llu", bc->dbname,
                  (unsigned long long)file_number);
  blob_reader *r = NULL;
  int rc = open_reader(bc, fname, file_number, file_size, &r);
  if (rc == MAYFLY_OK && !(*out = cache_insert(bc->readers, key, r, 1, delete_reader))) {
    blob_reader_close(r);
    rc = MF_ERR(MAYFLY_ENOMEM, "%s: out of memory caching the open blob file", fname);
  }
  free(fname);
  return rc;
}

/* Copies value into the value cache. Failing to cache is not an error: the read succeeded. */
static void cache_value_copy(blob_cache *bc, mf_slice key, mf_slice user_key,
                             const blob_index *bi, const mf_buf *value) {
  cached_value *cv = malloc(sizeof *cv + user_key.len + value->len);
  if (!cv) return;
  cv->stored_size = bi->size;
  cv->compression = bi->compression;
  cv->key_len = user_key.len;
  cv->len = value->len;
  if (user_key.len) memcpy(cv->data, user_key.data, user_key.len);
  if (value->len) memcpy(cv->data + user_key.len, value->data, value->len);
  size_t charge = user_key.len + value->len ? user_key.len + value->len : 1;
  mf_cache_handle *h = cache_insert(bc->value_cache, key, cv, charge, delete_value);
  if (h)
    cache_release(bc->value_cache, h);
  else
    free(cv);
}

int blob_cache_get(blob_cache *bc, mf_slice user_key, const blob_index *bi, uint64_t file_size,
                   int fill_cache, mf_buf *value) {
  char vkey_buf[VALUE_KEY_SIZE];
  encode_fixed64(vkey_buf, bc->value_cache_id);
  encode_fixed64(vkey_buf + 8, bi->file_number);
  encode_fixed64(vkey_buf + 16, bi->offset);
  mf_slice vkey = mf_slice_make(vkey_buf, sizeof vkey_buf);
  if (bc->value_cache) {
    mf_cache_handle *h = cache_lookup(bc->value_cache, vkey);
    if (h) {
      const cached_value *cv = cache_value(h);
      int hit = cv->stored_size == bi->size && cv->compression == bi->compression &&
                mf_slice_equal(mf_slice_make(cv->data, cv->key_len), user_key);
      int rc = hit ? mf_buf_set(value, cv->data + cv->key_len, cv->len) : MAYFLY_OK;
      if (rc) rc = MF_ERR(rc, "blob file %06llu: no memory for a value of %zu bytes",
                          (unsigned long long)bi->file_number, cv->len);
      cache_release(bc->value_cache, h);
      if (hit) return rc;
    }
  }

  mf_cache_handle *h = NULL;
  int rc = find_reader(bc, bi->file_number, file_size, &h);
  if (rc == MAYFLY_OK) {
    rc = blob_reader_get(cache_value(h), user_key, bi, value);
    cache_release(bc->readers, h);
  }
  if (rc == MAYFLY_OK && bc->value_cache && fill_cache)
    cache_value_copy(bc, vkey, user_key, bi, value);
  return rc;
}

int blob_cache_get_record(blob_cache *bc, blob_cache_pins *pins, mf_slice user_key,
                          const blob_index *bi, uint64_t file_size, mf_buf *scratch,
                          mf_slice *record) {
  int slot = (int)(bi->file_number % BLOB_CACHE_PINS);
  if (!pins->handle[slot] || pins->number[slot] != bi->file_number) {
    if (pins->handle[slot]) cache_release(bc->readers, pins->handle[slot]);
    pins->handle[slot] = NULL;
    pins->number[slot] = 0;
    int rc = find_reader(bc, bi->file_number, file_size, &pins->handle[slot]);
    if (rc) return rc;
    pins->number[slot] = bi->file_number;
  }
  return blob_reader_get_record(cache_value(pins->handle[slot]), user_key, bi, scratch, record);
}

void blob_cache_unpin(blob_cache *bc, blob_cache_pins *pins) {
  for (int i = 0; i < BLOB_CACHE_PINS; i++) {
    if (pins->handle[i]) cache_release(bc->readers, pins->handle[i]);
    pins->handle[i] = NULL;
    pins->number[i] = 0;
  }
}

void blob_cache_evict(blob_cache *bc, uint64_t file_number) {
  char key_buf[8];
  encode_fixed64(key_buf, file_number);
  cache_erase(bc->readers, mf_slice_make(key_buf, sizeof key_buf));
}
