/* mayfly_iter: the user-facing iterator.
 *
 * It walks a merged internal iterator (every memtable and table, internal-key order: user key
 * ascending, newest version first) and shows, for each user key, the newest version at or
 * below the read sequence number, hiding keys whose newest visible version is a tombstone.
 *
 * Forward, the internal iterator sits ON the entry being shown. Backward, it sits just BEFORE
 * all entries of the shown key (we must look at every version of a key to know which is the
 * newest when walking from old to new), so the shown key and value are copied into
 * saved_key/saved_value. Switching direction re-positions the internal iterator first. */
#include <stdlib.h>

#include "blob/blob_format.h"
#include "db/db_iter.h"
#include "util/zalloc.h"

enum { DIR_FORWARD, DIR_REVERSE };

struct mayfly_iter {
  mayfly_db *db;
  mf_iter *it; /* internal, over internal keys */
  uint64_t seq;
  int dir;
  int valid;
  int status;
  mf_buf saved_key;   /* reverse: the current user key; forward: scratch */
  mf_buf saved_value; /* reverse: the current value */
  int saved_type;     /* reverse: the current entry's type */
  mf_buf blob_value;  /* the current blob's value once read */
  int blob_loaded;    /* blob_value holds the current entry's blob */
};

static int parse_current(mayfly_iter *m, mf_parsed_ikey *pk) {
  if (ikey_parse(iter_key(m->it), pk)) return 1;
  m->status = MF_ERR(MAYFLY_ECORRUPT, "malformed internal key of %zu bytes",
                     iter_key(m->it).len);
  return 0;
}

static int save(mf_buf *b, mf_slice s, mayfly_iter *m) {
  if (mf_buf_set(b, s.data, s.len) == MAYFLY_OK) return 1;
  m->status = MF_ERR(MAYFLY_ENOMEM, "out of memory");
  return 0;
}

/* Forward: from the current internal position, find the first visible live entry. With
 * skipping, entries of user keys <= saved_key are hidden. */
static void find_next_user_entry(mayfly_iter *m, int skipping) {
  m->blob_loaded = 0;
  for (; iter_valid(m->it); iter_next(m->it)) {
    mf_parsed_ikey pk;
    if (!parse_current(m, &pk)) break;
    if (pk.seq > m->seq) continue;
    if (pk.type == MF_TYPE_DELETE) {
      if (!save(&m->saved_key, pk.user_key, m)) break;
      skipping = 1;
    } else if (!skipping || mf_slice_compare(pk.user_key, mf_buf_slice(&m->saved_key)) > 0) {
      m->valid = 1;
      return;
    }
  }
  m->valid = 0;
}

/* Backward: from the current internal position (just after the entries of the key to find,
 * walking left), find the previous visible live key; leaves it in saved_key/saved_value. */
static void find_prev_user_entry(mayfly_iter *m) {
  int value_type = MF_TYPE_DELETE;
  m->blob_loaded = 0;
  for (; iter_valid(m->it); iter_prev(m->it)) {
    mf_parsed_ikey pk;
    if (!parse_current(m, &pk)) {
      value_type = MF_TYPE_DELETE;
      break;
    }
    if (pk.seq > m->seq) continue;
    if (value_type != MF_TYPE_DELETE &&
        mf_slice_compare(pk.user_key, mf_buf_slice(&m->saved_key)) < 0)
      break; /* walked past every version of the saved key: it is the answer */
    value_type = pk.type;
    if (pk.type == MF_TYPE_DELETE) {
      mf_buf_clear(&m->saved_key);
      mf_buf_clear(&m->saved_value);
    } else if (!save(&m->saved_key, pk.user_key, m) ||
               !save(&m->saved_value, iter_value(m->it), m)) {
      value_type = MF_TYPE_DELETE;
      break;
    }
  }
  /* A step that failed (a read error, no memory) ends the walk early: the version saved last
   * may be an older one of the key, so nothing is shown and the status tells why. */
  if (!iter_valid(m->it) && iter_status(m->it) != MAYFLY_OK) value_type = MF_TYPE_DELETE;
  if (value_type == MF_TYPE_DELETE) {
    m->valid = 0;
    m->dir = DIR_FORWARD;
  } else {
    m->valid = 1;
    m->saved_type = value_type;
  }
}

int db_iter_create(mayfly_db *db, const struct mayfly_snapshot *snap, mayfly_iter **out) {
  mayfly_iter *m = mf_zalloc(sizeof *m);
  if (!m) return MF_ERR(MAYFLY_ENOMEM, "out of memory");
  int rc = db_internal_iter_at(db, snap, &m->it, &m->seq);
  if (rc) {
    free(m);
    return rc;
  }
  m->db = db;
  atomic_fetch_add(&db->live_iters, 1);
  *out = m;
  return MAYFLY_OK;
}

void db_iter_destroy(mayfly_iter *m) {
  mayfly_db *db = m->db;
  iter_destroy(m->it); /* unpins the view: needs db */
  mf_buf_free(&m->blob_value);
  mf_buf_free(&m->saved_key);
  mf_buf_free(&m->saved_value);
  free(m);
  atomic_fetch_sub(&db->live_iters, 1); /* last: a close may proceed once it reads 0 */
}

void db_iter_seek_to_first(mayfly_iter *m) {
  m->dir = DIR_FORWARD;
  m->status = MAYFLY_OK;
  mf_buf_clear(&m->saved_value);
  iter_seek_to_first(m->it);
  find_next_user_entry(m, 0);
}

void db_iter_seek_to_last(mayfly_iter *m) {
  m->dir = DIR_REVERSE;
  m->status = MAYFLY_OK;
  mf_buf_clear(&m->saved_value);
  iter_seek_to_last(m->it);
  find_prev_user_entry(m);
}

void db_iter_seek(mayfly_iter *m, mf_slice target) {
  m->dir = DIR_FORWARD;
  m->status = MAYFLY_OK;
  mf_buf_clear(&m->saved_value);
  mf_buf_clear(&m->saved_key);
  if (ikey_append(&m->saved_key, target, m->seq, MF_TYPE_FOR_SEEK)) {
    m->status = MF_ERR(MAYFLY_ENOMEM, "out of memory");
    m->valid = 0;
    return;
  }
  iter_seek(m->it, mf_buf_slice(&m->saved_key));
  find_next_user_entry(m, 0);
}

void db_iter_next(mayfly_iter *m) {
  if (!m->valid) return;
  if (m->dir == DIR_REVERSE) {
    /* The internal iterator is before the current key's entries: step into them; the
     * skip below then passes them all. saved_key already holds the current key. */
    m->dir = DIR_FORWARD;
    if (!iter_valid(m->it)) iter_seek_to_first(m->it);
    else iter_next(m->it);
    if (!iter_valid(m->it)) {
      m->valid = 0;
      mf_buf_clear(&m->saved_key);
      return;
    }
  } else {
    if (!save(&m->saved_key, ikey_user_key(iter_key(m->it)), m)) {
      m->valid = 0;
      return;
    }
    iter_next(m->it);
  }
  find_next_user_entry(m, 1);
}

void db_iter_prev(mayfly_iter *m) {
  if (!m->valid) return;
  if (m->dir == DIR_FORWARD) {
    /* Walk back past every entry of the current key. */
    if (!save(&m->saved_key, ikey_user_key(iter_key(m->it)), m)) {
      m->valid = 0;
      return;
    }
    for (;;) {
      iter_prev(m->it);
      if (!iter_valid(m->it)) {
        m->valid = 0;
        mf_buf_clear(&m->saved_key);
        mf_buf_clear(&m->saved_value);
        return;
      }
      if (mf_slice_compare(ikey_user_key(iter_key(m->it)), mf_buf_slice(&m->saved_key)) < 0)
        break;
    }
    m->dir = DIR_REVERSE;
  }
  find_prev_user_entry(m);
}

int db_iter_valid(const mayfly_iter *m) { return m->valid && m->status == MAYFLY_OK; }

mf_slice db_iter_key(const mayfly_iter *m) {
  return m->dir == DIR_FORWARD ? ikey_user_key(iter_key(m->it)) : mf_buf_slice(&m->saved_key);
}

/* Blob values are read only here, when the caller asks: a scan over keys never touches the
 * blob files. */
int db_iter_value(mayfly_iter *m, mf_slice *out) {
  int type = m->dir == DIR_FORWARD ? (int)(ikey_trailer(iter_key(m->it)) & 0xff) : m->saved_type;
  mf_slice raw = m->dir == DIR_FORWARD ? iter_value(m->it) : mf_buf_slice(&m->saved_value);
  if (type != MF_TYPE_BLOB_INDEX) {
    *out = raw;
    return MAYFLY_OK;
  }
  if (!m->blob_loaded) {
    int rc = mf_buf_set(&m->blob_value, raw.data, raw.len);
    if (rc == MAYFLY_OK) rc = db_resolve_blob(m->db, db_iter_key(m), &m->blob_value);
    if (rc) {
      m->status = rc;
      return rc;
    }
    m->blob_loaded = 1;
  }
  *out = mf_buf_slice(&m->blob_value);
  return MAYFLY_OK;
}

int db_iter_status(const mayfly_iter *m) {
  if (m->status != MAYFLY_OK) return m->status;
  return iter_status(m->it);
}

int db_iter_value_size(mayfly_iter *m, uint64_t *size) {
  int type = m->dir == DIR_FORWARD ? (int)(ikey_trailer(iter_key(m->it)) & 0xff) : m->saved_type;
  mf_slice raw = m->dir == DIR_FORWARD ? iter_value(m->it) : mf_buf_slice(&m->saved_value);
  if (type != MF_TYPE_BLOB_INDEX) {
    *size = raw.len;
    return MAYFLY_OK;
  }
  blob_index bi;
  if (blob_index_decode(raw, &bi) != MAYFLY_OK || bi.compression != MF_COMPRESSION_NONE)
    return MAYFLY_ENOTSUP;
  *size = bi.size;
  return MAYFLY_OK;
}

mayfly_db *db_iter_db(const mayfly_iter *m) { return m->db; }
