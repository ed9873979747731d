/* Point reads and snapshots.
 *
 * A read pins what it needs under db->mu (the memtables and the current version), then looks
 * from newest to oldest without the mutex: the active memtable, the immutable memtables
 * newest first, then the version's tables (level 0 newest first, then one file per level).
 * The first entry found for the key at or below the read's sequence number decides. */
#include <stdlib.h>

#include "blob/blob_cache.h"
#include "blob/blob_format.h"
#include "db/db_impl.h"
#include "table/merger.h"
#include "util/zalloc.h"

typedef struct read_view {
  memtable *mem;
  memtable *imm[MF_MAX_IMM];
  int num_imm;
  version *v;
  uint64_t seq;
} read_view;

/* REQUIRES: mu held. */
static void view_pin(mayfly_db *db, read_view *rv, const struct mayfly_snapshot *snap) {
  rv->seq = snap ? snap->seq : version_set_last_sequence(db->vs);
  rv->mem = db->mem;
  memtable_ref(rv->mem);
  rv->num_imm = db->num_imm;
  for (int i = 0; i < db->num_imm; i++) {
    rv->imm[i] = db->imm[i];
    memtable_ref(rv->imm[i]);
  }
  rv->v = version_set_current(db->vs);
  version_ref(rv->v);
}

/* seek_file: a file charged for a seek by this read (NULL if none); accounted while the
 * version still pins it. */
static void view_unpin(mayfly_db *db, read_view *rv, file_meta *seek_file, int seek_level) {
  memtable_unref(rv->mem);
  for (int i = 0; i < rv->num_imm; i++) memtable_unref(rv->imm[i]);
  pthread_mutex_lock(&db->mu);
  if (seek_file) db_record_seek(db, seek_file, seek_level);
  /* The last reader of a replaced version may hold the last pin on files a compaction made
   * obsolete: a worker deletes them now rather than at the next flush or compaction. */
  if (version_unref(rv->v) && !db->shutting_down) {
    db->purge_pending = 1;
    pthread_cond_broadcast(&db->bg_cv); /* others wait on bg_cv too: wake a worker surely */
  }
  pthread_mutex_unlock(&db->mu);
}

int db_get(mayfly_db *db, const struct mayfly_snapshot *snap, mf_slice key, mf_buf *value) {
  read_view rv;
  pthread_mutex_lock(&db->mu);
  view_pin(db, &rv, snap);
  pthread_mutex_unlock(&db->mu);

  int type = MF_TYPE_DELETE;
  uint64_t found_seq;
  int rc = memtable_get(rv.mem, key, rv.seq, &type, &found_seq, value);
  for (int i = rv.num_imm - 1; rc == MAYFLY_ENOTFOUND && i >= 0; i--)
    rc = memtable_get(rv.imm[i], key, rv.seq, &type, &found_seq, value);
  version_seek seek = {NULL, 0};
  if (rc == MAYFLY_ENOTFOUND)
    rc = version_get(rv.v, db->tcache, key, rv.seq, &type, &found_seq, value, &seek);
  if (rc == MAYFLY_OK && type == MF_TYPE_DELETE) rc = MAYFLY_ENOTFOUND;
  /* The blob file stays on disk while rv pins the version that references it. */
  if (rc == MAYFLY_OK && type == MF_TYPE_BLOB_INDEX) rc = db_resolve_blob(db, key, value);
  if (db->trace && trace_writer_gets(db->trace))
    trace_op(db->trace, TRACE_GET, rv.seq, key, rc == MAYFLY_OK ? value->len : 0,
             rc == MAYFLY_OK ? TRACE_OP_FOUND : 0);
  view_unpin(db, &rv, seek.file, seek.level);
  return rc;
}

int db_resolve_blob(mayfly_db *db, mf_slice user_key, mf_buf *value) {
  blob_index bi;
  int rc = blob_index_decode(mf_buf_slice(value), &bi);
  if (rc) return rc;
  return blob_cache_get(db->blob_cache, user_key, &bi, 0, 1, value);
}

int db_snapshot_create(mayfly_db *db, const struct mayfly_snapshot **out) {
  struct mayfly_snapshot *s = malloc(sizeof *s);
  if (!s) return MF_ERR(MAYFLY_ENOMEM, "out of memory");
  pthread_mutex_lock(&db->mu);
  s->seq = version_set_last_sequence(db->vs);
  /* Newest last: the list stays sorted by seq because seq never decreases. */
  s->prev = db->snapshots.prev;
  s->next = &db->snapshots;
  s->prev->next = s;
  db->snapshots.prev = s;
  pthread_mutex_unlock(&db->mu);
  *out = s;
  return MAYFLY_OK;
}

/* A snapshot is looked up among the database's before it is touched, so releasing one twice,
 * or one of another database, is refused (logged and ignored) instead of corrupting the list
 * or freeing memory twice. (Only by address: a released snapshot whose memory was reused for
 * a newer one cannot be told from it.) The search runs from both ends at once, under mu:
 * snapshots are mostly released oldest first or newest first, and then it stops at once;
 * releases from the middle of many snapshots cost a walk of up to half the list. */
void db_snapshot_release(mayfly_db *db, const struct mayfly_snapshot *snap) {
  struct mayfly_snapshot *s = (struct mayfly_snapshot *)snap, *head = &db->snapshots;
  int found = 0;
  pthread_mutex_lock(&db->mu);
  for (struct mayfly_snapshot *a = head->next, *b = head->prev; a != head;
       a = a->next, b = b->prev) {
    if (a == s || b == s) {
      found = 1;
      break;
    }
    if (a == b || a->next == b) break; /* the two ends met */
  }
  if (found) {
    s->prev->next = s->next;
    s->next->prev = s->prev;
  } else {
    db_info(db, "mayfly_snapshot_release: %p is not a live snapshot of this database "
            "(released twice?); ignored", (const void *)snap);
  }
  pthread_mutex_unlock(&db->mu);
  if (found) free(s);
  else (void)MF_ERR(MAYFLY_EINVAL, "mayfly_snapshot_release: not a live snapshot of this "
                    "database (released twice, or another database's); ignored");
}

/* ---- the internal iterator behind mayfly_iter ---- */

typedef struct pinned {
  mayfly_db *db;
  read_view rv;
} pinned;

static void unpin_cleanup(void *arg1, void *arg2) {
  pinned *p = arg1;
  (void)arg2;
  view_unpin(p->db, &p->rv, NULL, 0);
  free(p);
}

int db_internal_iter_at(mayfly_db *db, const struct mayfly_snapshot *snap, mf_iter **out,
                        uint64_t *seq) {
  pinned *p = malloc(sizeof *p);
  if (!p) return MF_ERR(MAYFLY_ENOMEM, "out of memory");
  p->db = db;
  pthread_mutex_lock(&db->mu);
  view_pin(db, &p->rv, snap);
  pthread_mutex_unlock(&db->mu);

  int n = 1 + p->rv.num_imm + version_num_iterators(p->rv.v);
  mf_iter **children = mf_zalloc((size_t)n * sizeof *children);
  int rc = children ? MAYFLY_OK : MF_ERR(MAYFLY_ENOMEM, "out of memory");
  int k = 0;
  if (rc == MAYFLY_OK) {
    children[k++] = memtable_iter_create(p->rv.mem);
    for (int i = p->rv.num_imm - 1; i >= 0; i--) children[k++] = memtable_iter_create(p->rv.imm[i]);
    rc = version_add_iterators(p->rv.v, db->tcache, children + k);
    if (rc == MAYFLY_OK) k = n;
    for (int i = 0; i < k; i++)
      if (!children[i]) rc = MF_ERR(MAYFLY_ENOMEM, "out of memory");
  }
  mf_iter *it = NULL;
  if (rc == MAYFLY_OK) {
    it = merger_create(ikey_compare, children, n);
    if (!it) rc = MF_ERR(MAYFLY_ENOMEM, "out of memory");
    if (it && iter_register_cleanup(it, unpin_cleanup, p, NULL)) {
      iter_destroy(it);
      it = NULL;
      rc = MF_ERR(MAYFLY_ENOMEM, "out of memory");
    }
  } else if (children) {
    for (int i = 0; i < k; i++) iter_destroy(children[i]);
  }
  free(children);
  if (rc != MAYFLY_OK) {
    unpin_cleanup(p, NULL);
    return rc;
  }
  *seq = p->rv.seq;
  *out = it;
  return MAYFLY_OK;
}
