/* Helpers built only on the mf_env function pointers, so they work on every env (posix,
 * in-memory, fault-injecting wrappers) without knowing which one they have. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env/env.h"
#include "mayfly.h"
#include "util/error.h"
#include "util/slice.h"

#define READ_CHUNK (64 * 1024)

void env_free_names(char **names, size_t count) {
  if (!names) return;
  for (size_t i = 0; i < count; i++) free(names[i]);
  free(names);
}

/* Reads until a short read rather than trusting file_size, so a file that grows while it is
 * read is still read consistently up to some point. */
int env_read_file(mf_env *env, const char *path, struct mf_buf *out) {
  out->len = 0;
  mf_rfile *f;
  int rc = env->open_readable(env, path, &f);
  if (rc) return rc;
  for (;;) {
    if (mf_buf_reserve(out, READ_CHUNK) != MAYFLY_OK) {
      rc = MF_ERR(MAYFLY_ENOMEM, "out of memory reading %s at offset %zu", path, out->len);
      break;
    }
    size_t got = 0;
    rc = env->pread(f, (uint64_t)out->len, READ_CHUNK, out->data + out->len, &got);
    if (rc) break;
    out->len += got;
    if (got < READ_CHUNK) break;
  }
  env->close_readable(f);
  return rc;
}

/* The crash story: the temp file is synced before the rename, so after a crash path holds
 * either the old contents or the complete new contents, never a prefix. The directory sync
 * makes the rename itself durable. A leftover temp file after a crash is harmless: the next
 * call truncates it. */
int env_write_file_atomic(mf_env *env, const char *path, const void *data, size_t n) {
  size_t plen = strlen(path);
  char *tmp = malloc(plen + sizeof ".tmp");
  const char *slash = strrchr(path, '/');
  char *dir = slash ? malloc((size_t)(slash - path) + 2) : NULL;
  if (!tmp || (slash && !dir)) {
    free(tmp);
    free(dir);
    return MF_ERR(MAYFLY_ENOMEM, "out of memory writing %s", path);
  }
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".tmp", sizeof ".tmp");
  if (slash) {
    size_t dlen = slash == path ? 1 : (size_t)(slash - path); /* "/CURRENT" lives in "/" */
    memcpy(dir, path, dlen);
    dir[dlen] = '\0';
  }

  mf_wfile *f;
  int rc = env->new_writable(env, tmp, &f);
  if (rc == MAYFLY_OK) {
    rc = env->append(f, data, n);
    if (rc == MAYFLY_OK) rc = env->sync(f, 1);
    int close_rc = env->close_writable(f);
    if (rc == MAYFLY_OK) rc = close_rc;
    if (rc == MAYFLY_OK) rc = env->rename_file(env, tmp, path);
    if (rc != MAYFLY_OK) env->remove_file(env, tmp);
    if (rc == MAYFLY_OK) rc = env->sync_dir(env, dir ? dir : ".");
  }
  free(tmp);
  free(dir);
  return rc;
}
