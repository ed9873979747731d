/* The public API (include/mayfly.h): argument checks, error ownership, and forwarding to the
 * engine. Every entry point begins with the handle it works on (enter: the db, NULL for
 * calls without one; an iterator's calls are its db's), so mayfly_errmsg(db) reports the
 * detail of the last failure on db in this thread, until the next call on db; a call on
 * another handle keeps it aside (util/error.h). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db_impl.h"
#include "db/db_iter.h"

#define MAYFLY_VERSION_STRING "0.1.0"

static uint64_t error_id(const mayfly_db *db) { return db ? db->error_id : 0; }

static void enter(const mayfly_db *db) { mf_error_begin(error_id(db)); }

MAYFLY_API const char *mayfly_strerror(int rc) {
  switch (rc) {
    case MAYFLY_OK: return "ok";
    case MAYFLY_ENOTFOUND: return "not found";
    case MAYFLY_ECORRUPT: return "corruption";
    case MAYFLY_EIO: return "I/O error";
    case MAYFLY_EINVAL: return "invalid argument";
    case MAYFLY_ENOMEM: return "out of memory";
    case MAYFLY_EBUSY: return "busy";
    case MAYFLY_ENOTSUP: return "not supported";
    case MAYFLY_ECLOSED: return "database is read-only after a background error";
    default: return "unknown error code";
  }
}

/* mayfly_errmsg(NULL) reports failures of calls that have no db handle: mayfly_open,
 * mayfly_destroy, the options and batch functions. */
MAYFLY_API const char *mayfly_errmsg(const mayfly_db *db) {
  return mf_error_message_of(error_id(db));
}

MAYFLY_API void mayfly_free(void *p) { free(p); }

MAYFLY_API const char *mayfly_version(void) { return MAYFLY_VERSION_STRING; }

MAYFLY_API int mayfly_open(const char *path, const mayfly_options *opt, mayfly_db **out) {
  enter(NULL);
  if (out) *out = NULL;
  if (!path || !out) return MF_ERR(MAYFLY_EINVAL, "mayfly_open: path and out must not be NULL");
  if (!*path) return MF_ERR(MAYFLY_EINVAL, "mayfly_open: empty path");
  return db_open(path, opt, out);
}

MAYFLY_API int mayfly_close(mayfly_db *db) {
  if (!db) return MAYFLY_OK;
  uint64_t id = error_id(db);
  enter(db);
  int rc = db_close(db);
  /* Refused, the database is still open and its handle owns the message. Otherwise the
   * handle is gone: a message about the close is mayfly_errmsg(NULL)'s, and what this thread
   * kept for the handle goes. */
  if (rc != MAYFLY_EBUSY) {
    if (*mf_error_message()) mf_error_set_owner(0);
    else mf_error_forget(id);
  }
  return rc;
}

MAYFLY_API int mayfly_destroy(const char *path) {
  enter(NULL);
  if (!path || !*path) return MF_ERR(MAYFLY_EINVAL, "mayfly_destroy: empty path");
  return db_destroy(path, env_posix());
}

#define CHECK_DB(db)                                                        \
  do {                                                                      \
    if (!(db)) {                                                            \
      enter(NULL); /* no handle: the message is mayfly_errmsg(NULL)'s */    \
      return MF_ERR(MAYFLY_EINVAL, "%s: db is NULL", __func__);             \
    }                                                                       \
    enter(db);                                                              \
  } while (0)

static int check_flags(unsigned flags) {
  if (flags & ~(MAYFLY_SYNC | MAYFLY_NO_WAL))
    return MF_ERR(MAYFLY_EINVAL, "unknown write flags 0x%x", flags);
  if ((flags & MAYFLY_SYNC) && (flags & MAYFLY_NO_WAL))
    return MF_ERR(MAYFLY_EINVAL, "MAYFLY_SYNC and MAYFLY_NO_WAL cannot be combined");
  return MAYFLY_OK;
}

MAYFLY_API int mayfly_put(mayfly_db *db, const void *key, size_t klen, const void *val,
                          size_t vlen, unsigned flags) {
  CHECK_DB(db);
  int rc = check_flags(flags);
  if (rc) return rc;
  struct mayfly_batch b;
  /* Header, type, two varint lengths and the bytes. A put of up to 4 KiB is built on the
   * stack, a bigger one in a buffer allocated once. (Sizes over the limits get the stack
   * buffer too: batch_put refuses them before it appends anything.) */
  size_t need = klen <= MF_MAX_KEY_SIZE && vlen <= MF_MAX_VALUE_SIZE
                    ? (size_t)MF_BATCH_HEADER + 1 + 2 * MF_MAX_VARINT32_LEN + klen + vlen
                    : 0;
  char stack[4096];
  if (need <= sizeof stack) batch_init_in(&b, stack, sizeof stack);
  else rc = batch_init_sized(&b, need);
  if (rc == MAYFLY_OK) rc = batch_put(&b, mf_slice_make(key, klen), mf_slice_make(val, vlen));
  if (rc == MAYFLY_OK) rc = db_write(db, &b, flags);
  if (b.rep.data != stack) batch_free(&b);
  return rc;
}

MAYFLY_API int mayfly_delete(mayfly_db *db, const void *key, size_t klen, unsigned flags) {
  CHECK_DB(db);
  int rc = check_flags(flags);
  if (rc) return rc;
  struct mayfly_batch b;
  rc = batch_init(&b);
  if (rc == MAYFLY_OK) rc = batch_delete(&b, mf_slice_make(key, klen));
  if (rc == MAYFLY_OK) rc = db_write(db, &b, flags);
  batch_free(&b);
  return rc;
}

MAYFLY_API int mayfly_batch_create(mayfly_batch **out) {
  enter(NULL);
  if (!out) return MF_ERR(MAYFLY_EINVAL, "mayfly_batch_create: out is NULL");
  *out = NULL;
  struct mayfly_batch *b = malloc(sizeof *b);
  if (!b) return MF_ERR(MAYFLY_ENOMEM, "out of memory");
  int rc = batch_init(b);
  if (rc) {
    free(b);
    return rc;
  }
  *out = b;
  return MAYFLY_OK;
}

MAYFLY_API void mayfly_batch_destroy(mayfly_batch *b) {
  if (!b) return;
  batch_free(b);
  free(b);
}

MAYFLY_API int mayfly_batch_put(mayfly_batch *b, const void *key, size_t klen, const void *val,
                                size_t vlen) {
  enter(NULL);
  if (!b) return MF_ERR(MAYFLY_EINVAL, "mayfly_batch_put: batch is NULL");
  return batch_put(b, mf_slice_make(key, klen), mf_slice_make(val, vlen));
}

MAYFLY_API int mayfly_batch_delete(mayfly_batch *b, const void *key, size_t klen) {
  enter(NULL);
  if (!b) return MF_ERR(MAYFLY_EINVAL, "mayfly_batch_delete: batch is NULL");
  return batch_delete(b, mf_slice_make(key, klen));
}

MAYFLY_API void mayfly_batch_clear(mayfly_batch *b) {
  if (b) batch_clear(b);
}

MAYFLY_API size_t mayfly_batch_count(const mayfly_batch *b) { return b ? batch_count(b) : 0; }

MAYFLY_API int mayfly_write(mayfly_db *db, const mayfly_batch *b, unsigned flags) {
  CHECK_DB(db);
  if (!b) return MF_ERR(MAYFLY_EINVAL, "mayfly_write: batch is NULL");
  int rc = check_flags(flags);
  if (rc) return rc;
  /* An empty batch changes nothing; with MAYFLY_SYNC it still syncs the writes before it. */
  if (batch_count(b) == 0 && !(flags & MAYFLY_SYNC)) return MAYFLY_OK;
  return db_write(db, b, flags);
}

MAYFLY_API int mayfly_get(mayfly_db *db, const mayfly_snapshot *snap, const void *key,
                          size_t klen, void **val, size_t *vlen) {
  if (val) *val = NULL;
  if (vlen) *vlen = 0;
  CHECK_DB(db);
  if (!val || !vlen) return MF_ERR(MAYFLY_EINVAL, "mayfly_get: val and vlen must not be NULL");
  if (klen && !key) return MF_ERR(MAYFLY_EINVAL, "mayfly_get: key is NULL with length %zu", klen);
  if (klen > MF_MAX_KEY_SIZE)
    return MF_ERR(MAYFLY_EINVAL, "key of %zu bytes is larger than the limit of %u bytes", klen,
                  MF_MAX_KEY_SIZE);
  mf_buf value = MF_BUF_INIT;
  int rc = db_get(db, snap, mf_slice_make(key, klen), &value);
  if (rc == MAYFLY_OK) {
    if (!value.data) { /* an empty value still gets a real allocation */
      value.data = malloc(1);
      if (!value.data) return MF_ERR(MAYFLY_ENOMEM, "out of memory");
    }
    *val = value.data;
    *vlen = value.len;
  } else {
    mf_buf_free(&value);
  }
  return rc;
}

MAYFLY_API int mayfly_snapshot_create(mayfly_db *db, const mayfly_snapshot **out) {
  CHECK_DB(db);
  if (!out) return MF_ERR(MAYFLY_EINVAL, "mayfly_snapshot_create: out is NULL");
  return db_snapshot_create(db, out);
}

MAYFLY_API void mayfly_snapshot_release(mayfly_db *db, const mayfly_snapshot *snap) {
  if (!db || !snap) return;
  enter(db);
  db_snapshot_release(db, snap);
}

MAYFLY_API int mayfly_iter_create(mayfly_db *db, const mayfly_snapshot *snap, mayfly_iter **out) {
  CHECK_DB(db);
  if (!out) return MF_ERR(MAYFLY_EINVAL, "mayfly_iter_create: out is NULL");
  *out = NULL;
  return db_iter_create(db, snap, out);
}

MAYFLY_API void mayfly_iter_destroy(mayfly_iter *it) {
  if (it) db_iter_destroy(it);
}
/* A move is a call on the iterator's database: a failure (a damaged block, a read error)
 * is its message. (Beginning a call on the same handle as the last costs a compare and a
 * store, nothing next to the move.) */
static void before_move(mayfly_iter *it) { enter(db_iter_db(it)); }
MAYFLY_API void mayfly_iter_seek_to_first(mayfly_iter *it) {
  if (!it) return;
  before_move(it);
  db_iter_seek_to_first(it);
}
MAYFLY_API void mayfly_iter_seek_to_last(mayfly_iter *it) {
  if (!it) return;
  before_move(it);
  db_iter_seek_to_last(it);
}
MAYFLY_API void mayfly_iter_seek(mayfly_iter *it, const void *key, size_t klen) {
  if (!it) return;
  before_move(it);
  db_iter_seek(it, mf_slice_make(key ? key : "", key ? klen : 0));
}
MAYFLY_API void mayfly_iter_next(mayfly_iter *it) {
  if (!it) return;
  before_move(it);
  db_iter_next(it);
}
MAYFLY_API void mayfly_iter_prev(mayfly_iter *it) {
  if (!it) return;
  before_move(it);
  db_iter_prev(it);
}
MAYFLY_API int mayfly_iter_valid(const mayfly_iter *it) { return it ? db_iter_valid(it) : 0; }

MAYFLY_API const void *mayfly_iter_key(const mayfly_iter *it, size_t *klen) {
  if (!it || !db_iter_valid(it)) {
    if (klen) *klen = 0;
    return NULL;
  }
  mf_slice k = db_iter_key(it);
  if (klen) *klen = k.len;
  return k.len ? k.data : "";
}

MAYFLY_API const void *mayfly_iter_value(mayfly_iter *it, size_t *vlen) {
  if (!it || !db_iter_valid(it)) {
    if (vlen) *vlen = 0;
    return NULL;
  }
  mf_slice v;
  enter(db_iter_db(it));
  if (db_iter_value(it, &v) != MAYFLY_OK) {
    if (vlen) *vlen = 0;
    return NULL;
  }
  if (vlen) *vlen = v.len;
  return v.len ? v.data : "";
}

MAYFLY_API int mayfly_iter_status(const mayfly_iter *it) {
  if (!it) return MAYFLY_EINVAL;
  return db_iter_status(it);
}

MAYFLY_API int mayfly_flush(mayfly_db *db) {
  CHECK_DB(db);
  return db_flush_memtables(db);
}

MAYFLY_API int mayfly_wait_idle(mayfly_db *db) {
  CHECK_DB(db);
  pthread_mutex_lock(&db->mu);
  db_schedule_work(db);
  while (!db_is_idle(db)) pthread_cond_wait(&db->bg_cv, &db->mu);
  int rc = db->bg_error ? db_closed_error(db) : MAYFLY_OK;
  pthread_mutex_unlock(&db->mu);
  return rc;
}

MAYFLY_API int mayfly_compact_range(mayfly_db *db, const void *begin, size_t blen,
                                    const void *end, size_t elen) {
  CHECK_DB(db);
  if ((blen && !begin) || (elen && !end))
    return MF_ERR(MAYFLY_EINVAL, "mayfly_compact_range: NULL key with a non-zero length");
  mf_slice b = mf_slice_make(begin, blen), e = mf_slice_make(end, elen);
  return db_compact_range(db, begin ? &b : NULL, end ? &e : NULL);
}

MAYFLY_API int mayfly_set_option(mayfly_db *db, const char *name, const char *value) {
  CHECK_DB(db);
  pthread_mutex_lock(&db->mu);
  struct mayfly_options next = db->opt;
  int rc = options_set(&next, name, value, 1);
  if (rc == MAYFLY_OK) rc = options_validate(&next);
  if (rc == MAYFLY_OK) rc = db_trace_reconfigure(db, &next); /* a trace option may change */
  if (rc == MAYFLY_OK) {
    db->opt = next;
    db_info(db, "option %s set to %s", name, value);
    db_schedule_work(db);
  }
  pthread_mutex_unlock(&db->mu);
  return rc;
}
