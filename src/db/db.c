/* Opening, recovering and closing a database.
 *
 * Open takes the LOCK file, recovers the version set from CURRENT and the MANIFEST, then
 * replays every WAL at or after the version set's log number, in number order, into
 * memtables. Recovered data is written to level-0 tables right away, and one MANIFEST edit
 * records those tables together with a fresh WAL's number as the new log number: after that
 * edit is durable the old WALs are obsolete. If the process dies before the edit, the next
 * open replays the same WALs again (the tables written meanwhile are unreferenced and get
 * deleted), so recovery is idempotent.
 *
 * A WAL record with a bad checksum in the middle of a log (not a torn tail) is handled by
 * wal_recovery_mode: absolute refuses to open; point_in_time keeps everything before it,
 * replays no later record or WAL (a later write could depend on a lost one), and writes
 * what it dropped to the LOG file. */
#include <stdarg.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blob/blob_cache.h"
#include "db/db_check.h"
#include "db/db_impl.h"
#include "version/filename.h"
#include "wal/wal_format.h"
#include "wal/wal_reader.h"

void db_info(mayfly_db *db, const char *fmt, ...) {
  if (!db->info_log) return;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof line - 2) n = (int)sizeof line - 2;
  line[n++] = '\n';
  pthread_mutex_lock(&db->info_mu);
  if (db->env->append(db->info_log, line, (size_t)n) == MAYFLY_OK) {
    db->env->flush(db->info_log);
    db->bytes_written += (uint64_t)n;
  }
  pthread_mutex_unlock(&db->info_mu);
}

void db_set_bg_error(mayfly_db *db, int rc, const char *what) {
  if (db->bg_error == MAYFLY_OK) {
    pthread_mutex_lock(&db->delete_mu);
    db->bg_error = rc;
    pthread_mutex_unlock(&db->delete_mu);
    snprintf(db->bg_error_msg, sizeof db->bg_error_msg, "%s: %s (%s)", what,
             mf_error_message(), mayfly_strerror(rc));
    db_info(db, "background error, database is now read-only: %s", db->bg_error_msg);
  }
  pthread_cond_broadcast(&db->bg_cv);
}

static uint64_t monotonic_micros(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void db_job_failed(mayfly_db *db, int kind, int rc, const char *what, int built) {
  int *retries = &db->bg_retries[kind];
  /* Once the outputs were built, only a MANIFEST write that never started left nothing. */
  int retryable = !built || !version_set_apply_wrote(db->vs);
  if (!retryable || rc != MAYFLY_ENOMEM || *retries >= db->opt.max_bgerror_resume_count) {
    db_set_bg_error(db, rc, what);
    return;
  }
  (*retries)++;
  db->bg_retry_count++;
  uint64_t pause = (uint64_t)db->opt.bgerror_resume_retry_interval;
  db->bg_retry_at = monotonic_micros() + (pause ? pause : 1);
  db_info(db, "%s: %s; abandoned, retry %d of %d in %llu us", what, mf_error_message(),
          *retries, db->opt.max_bgerror_resume_count, (unsigned long long)pause);
  pthread_cond_broadcast(&db->bg_cv);
}

void db_job_succeeded(mayfly_db *db, int kind) { db->bg_retries[kind] = 0; }

uint64_t db_retry_wait(mayfly_db *db) {
  if (!db->bg_retry_at) return 0;
  uint64_t now = monotonic_micros();
  if (now >= db->bg_retry_at) {
    db->bg_retry_at = 0;
    return 0;
  }
  return db->bg_retry_at - now;
}

int db_closed_error(mayfly_db *db) {
  return MF_ERR(MAYFLY_ECLOSED, "database is read-only after an earlier error: %s",
                db->bg_error_msg);
}

int db_pending_add(mayfly_db *db, uint64_t number) {
  if (db->num_pending == db->cap_pending) {
    int cap = db->cap_pending ? db->cap_pending * 2 : 16;
    uint64_t *p = realloc(db->pending_outputs, (size_t)cap * sizeof *p);
    if (!p) return MF_ERR(MAYFLY_ENOMEM, "out of memory");
    db->pending_outputs = p;
    db->cap_pending = cap;
  }
  db->pending_outputs[db->num_pending++] = number;
  return MAYFLY_OK;
}

void db_pending_remove(mayfly_db *db, uint64_t number) {
  for (int i = 0; i < db->num_pending; i++) {
    if (db->pending_outputs[i] == number) {
      db->pending_outputs[i] = db->pending_outputs[--db->num_pending];
      return;
    }
  }
}

int db_open_wal(mayfly_db *db, uint64_t number, db_new_wal_files *out) {
  char *name = filename_wal(db->dbname, number);
  if (!name) return MF_ERR(MAYFLY_ENOMEM, "out of memory");
  mf_wfile *file = NULL;
  wal_writer *w = NULL;
  uint64_t written = 0;
  int rc = db->env->new_writable(db->env, name, &file);
  if (rc == MAYFLY_OK) rc = wal_writer_create(db->env, file, WAL_KIND_WAL, number, &w, &written);
  if (rc == MAYFLY_OK) rc = db->env->flush(file);
  /* The new WAL's directory entry must be durable, or a MAYFLY_SYNC write to it could vanish
   * with the entry in an OS crash. Once per memtable, so cheap. */
  if (rc == MAYFLY_OK) {
    rc = db->env->sync_dir(db->env, db->dbname);
    out->dir_sync_failed = rc != MAYFLY_OK;
  }
  if (rc != MAYFLY_OK) {
    if (w) wal_writer_destroy(w);
    if (file) {
      db->env->close_writable(file);
      (void)db->env->remove_file(db->env, name); /* best effort: a later open ignores it */
    }
    free(name);
    return rc;
  }
  free(name);
  out->file = file;
  out->wal = w;
  out->number = number;
  out->header_bytes = written;
  return MAYFLY_OK;
}

void db_install_wal(mayfly_db *db, db_new_wal_files *files) {
  if (db->wal) {
    wal_writer_destroy(db->wal);
    db->env->close_writable(db->wal_file);
  }
  db->bytes_written += files->header_bytes;
  db->wal = files->wal;
  db->wal_file = files->file;
  db->wal_number = files->number;
  db->wal_dirty = 0;
}

int db_new_wal(mayfly_db *db, uint64_t number) {
  db_new_wal_files files = {0};
  int rc = db_open_wal(db, number, &files);
  if (rc == MAYFLY_OK) db_install_wal(db, &files);
  return rc;
}

/* ---- obsolete files ---- */

typedef struct live_set {
  uint64_t *numbers;
  size_t n, cap;
  int oom;
} live_set;

/* File numbers are unique across file types, so one set holds tables and blob files. */
static void live_add(void *arg, uint64_t number) {
  live_set *s = arg;
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 64;
    uint64_t *p = realloc(s->numbers, cap * sizeof *p);
    if (!p) {
      s->oom = 1;
      return;
    }
    s->numbers = p;
    s->cap = cap;
  }
  s->numbers[s->n++] = number;
}

static void live_add_file(void *arg, int file_type, uint64_t number) {
  (void)file_type;
  live_add(arg, number);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* REQUIRES: s sorted. */
static int live_contains(const live_set *s, uint64_t number) {
  if (s->n == 0) return 0;
  return bsearch(&number, s->numbers, s->n, sizeof *s->numbers, cmp_u64) != NULL;
}

/* A file chosen for deletion: its type, number and path. */
typedef struct doomed_file {
  int type;
  uint64_t number;
  char *path;
} doomed_file;

/* Deletes the files without db->mu: removing a big file can take long (the file system may
 * discard its blocks before unlink returns), and reads and writes must not wait for it. (A
 * compaction keeps its running flag meanwhile, a flush does not; see db_bg.c.) The list was
 * made under db->mu from the live versions, the pending outputs and the MANIFEST's log and
 * manifest numbers; none of these files can become live again (numbers are never reused),
 * so dropping the lock changes nothing about which of them may go. */
static void delete_files(mayfly_db *db, doomed_file *files, size_t n) {
  db->deleting_files = 1;
  pthread_mutex_unlock(&db->mu);
  for (size_t i = 0; i < n; i++) {
    doomed_file *d = &files[i];
    pthread_mutex_lock(&db->delete_mu);
    if (db->bg_error != MAYFLY_OK) { /* read-only now: keep the rest for recovery */
      pthread_mutex_unlock(&db->delete_mu);
      for (size_t j = i; j < n; j++) free(files[j].path);
      break;
    }
    if (d->type == MF_FILE_TABLE) table_cache_evict(db->tcache, d->number);
    if (d->type == MF_FILE_BLOB) blob_cache_evict(db->blob_cache, d->number);
    int rc = db->env->remove_file(db->env, d->path);
    pthread_mutex_unlock(&db->delete_mu);
    const char *base = strrchr(d->path, '/');
    db_info(db, "delete %s: %s", base ? base + 1 : d->path, rc ? mayfly_strerror(rc) : "ok");
    if (db->trace && rc == MAYFLY_OK && (d->type == MF_FILE_TABLE || d->type == MF_FILE_BLOB))
      trace_file_delete(db->trace, d->number,
                        d->type == MF_FILE_TABLE ? TRACE_FILE_TABLE : TRACE_FILE_BLOB);
    free(d->path);
  }
  pthread_mutex_lock(&db->mu);
  db->deleting_files = 0;
  pthread_cond_broadcast(&db->bg_cv);
}

void db_remove_obsolete_files(mayfly_db *db) {
  if (db->bg_error != MAYFLY_OK) return; /* after an error, keep everything for recovery */
  if (db->deleting_files) {
    /* Another thread is deleting (without mu); doing the same list twice would only fail
     * on its files. A background worker runs the purge once that one is done. */
    db->purge_pending = 1;
    return;
  }
  live_set live = {0};
  version_set_for_each_live_file(db->vs, live_add_file, &live);
  for (int i = 0; i < db->num_pending; i++) live_add(&live, db->pending_outputs[i]);
  if (live.n > 1) qsort(live.numbers, live.n, sizeof *live.numbers, cmp_u64);
  char **names = NULL;
  size_t count = 0;
  if (live.oom || db->env->list_dir(db->env, db->dbname, &names, &count) != MAYFLY_OK) {
    free(live.numbers);
    return;
  }
  uint64_t log_number = version_set_log_number(db->vs);
  uint64_t manifest_number = version_set_manifest_file_number(db->vs);
  uint64_t next_number = version_set_next_file_number(db->vs);
  doomed_file *doomed = count ? malloc(count * sizeof *doomed) : NULL;
  size_t n = 0;
  for (size_t i = 0; doomed && i < count; i++) {
    int type;
    uint64_t number;
    /* A number the counter has not reached is not the database's (filename.h). */
    if (!filename_parse(names[i], &type, &number) || number >= next_number) continue;
    int keep = 1;
    switch (type) {
      case MF_FILE_WAL: keep = number >= log_number || number == db->wal_number; break;
      case MF_FILE_MANIFEST: keep = number >= manifest_number; break;
      case MF_FILE_TABLE:
      case MF_FILE_BLOB: keep = live_contains(&live, number); break;
      case MF_FILE_TEMP: keep = live_contains(&live, number); break;
      default: keep = 1;
    }
    if (keep) continue;
    size_t len = strlen(db->dbname) + strlen(names[i]) + 2;
    char *path = malloc(len);
    if (!path) break;
    snprintf(path, len, "%s/%s", db->dbname, names[i]);
    doomed[n++] = (doomed_file){type, number, path};
  }
  env_free_names(names, count);
  free(live.numbers);
  if (n > 0) delete_files(db, doomed, n);
  free(doomed);
}

/* ---- recovery ---- */

typedef struct replay_state {
  mayfly_db *db;
  memtable *mem;
  uint64_t max_seq;  /* the largest sequence number known: the MANIFEST's, then replayed ones */
  uint64_t last_seq; /* the last sequence number replayed, 0 before the first record */
} replay_state;

static int replay_one(void *arg, uint64_t seq, int type, mf_slice key, mf_slice value) {
  replay_state *st = arg;
  if (seq > st->max_seq) st->max_seq = seq;
  st->last_seq = seq;
  int rc = memtable_add(st->mem, seq, type, key, value);
  if (rc == MAYFLY_ENOMEM) return MF_ERR(rc, "out of memory replaying the WAL");
  return rc ? MF_ERR(MAYFLY_ECORRUPT, "WAL record at sequence number %llu cannot be applied",
                     (unsigned long long)seq)
            : MAYFLY_OK;
}

/* Applies one WAL record, whole or not at all: it is checked first, and its sequence numbers
 * must follow the ones replayed before (writes are logged in sequence order). */
static int replay_record(replay_state *st, mf_slice rec) {
  int rc = batch_check(rec);
  if (rc) return rc;
  uint64_t seq = decode_fixed64(rec.data);
  if (decode_fixed32(rec.data + 8) > 0 && seq <= st->last_seq)
    return MF_ERR(MAYFLY_ECORRUPT, "WAL record at sequence number %llu follows %llu",
                  (unsigned long long)seq, (unsigned long long)st->last_seq);
  return batch_iterate(rec, replay_one, st);
}

/* Writes st->mem to a level-0 table (and blob files) recorded in edit, and starts a new
 * memtable. Runs before the background threads exist. */
static int flush_recovered(mayfly_db *db, replay_state *st, version_edit *edit) {
  int rc = MAYFLY_OK;
  if (memtable_num_entries(st->mem) > 0) {
    db_output out;
    uint64_t dropped = 0;
    pthread_mutex_lock(&db->mu);
    db_output_init(&out, db, 0, edit, 0);
    if (db->trace) out.job_id = db_trace_job_start(db, NULL);
    pthread_mutex_unlock(&db->mu);
    /* No snapshot exists yet: only the newest version of each key matters. */
    rc = db_output_add_memtable(&out, st->mem, MF_MAX_SEQ, &dropped);
    rc = db_output_finish(&out, rc);
    if (db->trace) trace_job_end(db->trace, out.job_id, rc);
    db->flush_bytes += out.table_bytes + out.blob_bytes;
    db->blob_bytes_written += out.blob_bytes;
    db->flush_count++;
    db_output_free(&out); /* its numbers stay pending until recovery's edit is installed */
    if (rc) return rc;
  }
  memtable_unref(st->mem);
  st->mem = NULL;
  rc = memtable_create(db_memtable_arena_block(db), 0, &st->mem); /* replay: no filter */
  return rc ? MF_ERR(rc, "out of memory") : MAYFLY_OK;
}


/* Replays one WAL. *stop is set when point_in_time recovery hit corruption. */
static int replay_wal(mayfly_db *db, uint64_t number, replay_state *st, version_edit *edit,
                      int *stop) {
  char *name = filename_wal(db->dbname, number);
  if (!name) return MF_ERR(MAYFLY_ENOMEM, "out of memory");
  mf_rfile *file = NULL;
  wal_reader *r = NULL;
  int rc = db->env->open_readable(db->env, name, &file);
  if (rc == MAYFLY_OK) rc = wal_reader_create(db->env, file, name, WAL_KIND_WAL, &r);
  /* A WAL renamed or copied over another would replay its writes in the wrong place. The
   * header of an empty (headerless) log says 0. */
  if (rc == MAYFLY_OK && wal_reader_file_number(r) != 0 && wal_reader_file_number(r) != number)
    rc = MF_ERR(MAYFLY_ECORRUPT, "%s: header says file number %llu", name,
                (unsigned long long)wal_reader_file_number(r));
  uint64_t records = 0;
  while (rc == MAYFLY_OK) {
    mf_slice rec;
    rc = wal_reader_read(r, &rec);
    if (rc != MAYFLY_OK) break;
    rc = replay_record(st, rec);
    if (rc == MAYFLY_ECORRUPT) { /* name the file: the batch layer does not know it */
      char inner[512];
      snprintf(inner, sizeof inner, "%s", mf_error_message());
      rc = MF_ERR(rc, "%s: record %llu: %s", name, (unsigned long long)records, inner);
    }
    if (rc != MAYFLY_OK) break;
    records++;
    db->recovery.records++;
    if (memtable_data_usage(st->mem) > db->opt.write_buffer_size)
      rc = flush_recovered(db, st, edit);
  }
  db->recovery.wals++;
  if (rc == MAYFLY_ENOTFOUND) {
    rc = MAYFLY_OK;
    if (r) db->recovery.torn_bytes += wal_reader_dropped_bytes(r);
    if (r && wal_reader_dropped_bytes(r) > 0)
      db_info(db, "%s: ignored a torn tail of %llu bytes after %llu records", name,
              (unsigned long long)wal_reader_dropped_bytes(r), (unsigned long long)records);
  } else if (rc == MAYFLY_ECORRUPT && db->opt.wal_recovery_mode == MF_WAL_POINT_IN_TIME) {
    /* r is NULL when the file header itself is damaged (an OS crash can lose the WAL's first
     * page and keep later ones): none of it is replayed. */
    db_info(db, "point-in-time recovery: %s; kept %llu records of %s and dropped the rest "
            "of it and every later WAL", mf_error_message(), (unsigned long long)records, name);
    db->recovery.stop_wal = number;
    db->recovery.stop_records = records;
    *stop = 1;
    rc = MAYFLY_OK;
  }
  if (r) wal_reader_destroy(r);
  if (file) db->env->close_readable(file);
  free(name);
  return rc;
}

static int recover_wals(mayfly_db *db, version_edit *edit) {
  char **names = NULL;
  size_t count = 0;
  int rc = db->env->list_dir(db->env, db->dbname, &names, &count);
  if (rc) return rc;
  uint64_t *wals = calloc(count + 1, sizeof *wals);
  size_t nwals = 0;
  uint64_t min_log = version_set_log_number(db->vs);
  uint64_t foreign = version_set_next_file_number(db->vs) + MF_STRAY_FILE_SPAN;
  for (size_t i = 0; wals && i < count; i++) {
    int type;
    uint64_t number;
    if (!filename_parse(names[i], &type, &number) || number >= foreign) continue;
    version_set_mark_file_number_used(db->vs, number);
    if (type == MF_FILE_WAL && number >= min_log) wals[nwals++] = number;
  }
  env_free_names(names, count);
  if (!wals) return MF_ERR(MAYFLY_ENOMEM, "out of memory");
  qsort(wals, nwals, sizeof *wals, cmp_u64);

  replay_state st = {db, NULL, version_set_last_sequence(db->vs), 0};
  rc = memtable_create(db_memtable_arena_block(db), 0, &st.mem);
  int stop = 0;
  /* The WAL the MANIFEST names is created, and its directory entry synced, before the edit
   * that names it; it is deleted only once a later edit names another. Missing, its writes
   * are lost: absolute refuses, point_in_time stops there as at damage (what a later WAL
   * holds came after the lost writes). */
  if (rc == MAYFLY_OK && min_log != 0 && (nwals == 0 || wals[0] != min_log)) {
    char *name = filename_wal(db->dbname, min_log);
    if (db->opt.wal_recovery_mode == MF_WAL_ABSOLUTE) {
      rc = MF_ERR(MAYFLY_ECORRUPT, "%s: missing: the MANIFEST names it as the WAL of the "
                  "newest writes", name ? name : "WAL");
    } else {
      db_info(db, "point-in-time recovery: %s is missing (the MANIFEST names it as the WAL "
              "of the newest writes); dropped it and every later WAL", name ? name : "WAL");
      db->recovery.stop_wal = min_log;
      db->recovery.stop_records = 0;
      db->recovery.stop_wal_missing = 1;
      db->recovery.wals_not_replayed = nwals;
      stop = 1;
    }
    free(name);
  }
  for (size_t i = 0; rc == MAYFLY_OK && i < nwals && !stop; i++) {
    rc = replay_wal(db, wals[i], &st, edit, &stop);
    if (stop) db->recovery.wals_not_replayed = nwals - i - 1;
  }
  if (rc == MAYFLY_OK) rc = flush_recovered(db, &st, edit);
  if (st.mem) memtable_unref(st.mem);
  free(wals);
  if (rc == MAYFLY_OK && st.max_seq > version_set_last_sequence(db->vs))
    version_set_set_last_sequence(db->vs, st.max_seq);
  return rc;
}

/* Without CURRENT, is there data in dir (so a missing CURRENT is damage, not a new database)?
 * Tables, blob files and WALs holding records are data. A MANIFEST or an empty WAL is not:
 * creating a database writes LOCK and LOG, then an empty WAL, then its first MANIFEST, all
 * before CURRENT, so a creation that failed before CURRENT was in place leaves some of those;
 * starting over loses nothing, and the leftovers are deleted as obsolete. */
static int has_db_files(mayfly_db *db) {
  char **names = NULL;
  size_t count = 0;
  if (db->env->list_dir(db->env, db->dbname, &names, &count) != MAYFLY_OK) return 0;
  int found = db_dir_holds_data(db->env, db->dbname, names, count);
  env_free_names(names, count);
  return found;
}

static int has_number(const uint64_t *sorted, size_t n, uint64_t number) {
  return bsearch(&number, sorted, n, sizeof *sorted, cmp_u64) != NULL;
}

/* Every table and blob file of the recovered version is in the directory, and every table has
 * the size the MANIFEST recorded (a table is synced before the edit that lists it, so its size
 * is exact). A missing or cut file would otherwise surface only at some later read, or make a
 * compaction fail and the database read-only; the open refuses it now and names it. */
static int check_live_files(mayfly_db *db) {
  char **names = NULL;
  size_t count = 0;
  int rc = db->env->list_dir(db->env, db->dbname, &names, &count);
  if (rc) return rc;
  uint64_t *tables = calloc(count + 1, sizeof *tables), *blobs = calloc(count + 1, sizeof *blobs);
  size_t ntables = 0, nblobs = 0;
  for (size_t i = 0; tables && blobs && i < count; i++) {
    int type;
    uint64_t number;
    if (!filename_parse(names[i], &type, &number)) continue;
    if (type == MF_FILE_TABLE) tables[ntables++] = number;
    else if (type == MF_FILE_BLOB) blobs[nblobs++] = number;
  }
  env_free_names(names, count);
  if (!tables || !blobs) {
    free(tables);
    free(blobs);
    return MF_ERR(MAYFLY_ENOMEM, "out of memory");
  }
  qsort(tables, ntables, sizeof *tables, cmp_u64);
  qsort(blobs, nblobs, sizeof *blobs, cmp_u64);
  version *v = version_set_current(db->vs);
  uint64_t missing = 0, first_missing = 0;
  int first_is_blob = 0;
  for (int level = 0; rc == MAYFLY_OK && level < MF_NUM_LEVELS; level++) {
    for (int i = 0; rc == MAYFLY_OK && i < v->num_files[level]; i++) {
      const file_meta *f = v->files[level][i];
      if (!has_number(tables, ntables, f->number)) {
        if (missing++ == 0) first_missing = f->number;
        continue;
      }
      char *path = filename_table(db->dbname, f->number);
      uint64_t size = 0;
      if (!path) rc = MF_ERR(MAYFLY_ENOMEM, "out of memory");
      else if ((rc = db->env->file_size(db->env, path, &size)) == MAYFLY_OK && size != f->file_size)
        rc = MF_ERR(MAYFLY_ECORRUPT, "%s is %llu bytes but the MANIFEST lists it with %llu",
                    path, (unsigned long long)size, (unsigned long long)f->file_size);
      free(path);
    }
  }
  for (int i = 0; rc == MAYFLY_OK && i < v->num_blobs; i++) {
    if (has_number(blobs, nblobs, v->blobs[i]->number)) continue;
    if (missing++ == 0) {
      first_missing = v->blobs[i]->number;
      first_is_blob = 1;
    }
  }
  free(tables);
  free(blobs);
  if (rc == MAYFLY_OK && missing > 0)
    rc = MF_ERR(MAYFLY_ECORRUPT, "%s: %llu files listed in the MANIFEST are missing, e.g. "
                "%06llu.%s", db->dbname, (unsigned long long)missing,
                (unsigned long long)first_missing, first_is_blob ? "blob" : "sst");
  return rc;
}

static int recover(mayfly_db *db) {
  int rc = version_set_recover(db->vs);
  int is_new = 0;
  if (rc == MAYFLY_ENOTFOUND) {
    if (has_db_files(db))
      return MF_ERR(MAYFLY_ECORRUPT, "%s: CURRENT is missing but the directory holds "
                    "tables, blob files or WAL records", db->dbname);
    if (!db->opt.create_if_missing)
      return MF_ERR(MAYFLY_EINVAL, "%s: database does not exist (create_if_missing is false)",
                    db->dbname);
    is_new = 1;
    rc = MAYFLY_OK;
  } else if (rc == MAYFLY_OK && db->opt.error_if_exists) {
    return MF_ERR(MAYFLY_EINVAL, "%s: database exists (error_if_exists is true)", db->dbname);
  }
  if (rc) return rc;
  db_info(db, "%s database %s", is_new ? "creating" : "recovering", db->dbname);

  version_edit edit;
  version_edit_init(&edit);
  if (!is_new) rc = check_live_files(db);
  if (!is_new && rc == MAYFLY_OK) rc = recover_wals(db, &edit);
  uint64_t wal_number = 0;
  if (rc == MAYFLY_OK) {
    wal_number = version_set_new_file_number(db->vs);
    rc = db_new_wal(db, wal_number);
  }
  if (rc == MAYFLY_OK) {
    version_edit_set_log_number(&edit, wal_number);
    pthread_mutex_lock(&db->mu);
    rc = version_set_log_and_apply(db->vs, &edit, &db->mu);
    db->mem_wal_number = wal_number;
    db->num_pending = 0;
    if (rc == MAYFLY_OK) db_remove_obsolete_files(db);
    pthread_mutex_unlock(&db->mu);
  }
  version_edit_free(&edit);
  return rc;
}

/* ---- open / close ---- */

/* Syncs the directory holding path's last component ("." when path has no slash). */
static int sync_parent_dir(mf_env *env, const char *path) {
  size_t len = strlen(path);
  while (len > 1 && path[len - 1] == '/') len--; /* "a/b/" names b */
  while (len > 0 && path[len - 1] != '/') len--; /* drop b */
  while (len > 1 && path[len - 1] == '/') len--; /* "a//b" lives in "a"; "/db" in "/" */
  if (len == 0) return env->sync_dir(env, ".");
  char *parent = malloc(len + 1);
  if (!parent) return MF_ERR(MAYFLY_ENOMEM, "out of memory");
  memcpy(parent, path, len);
  parent[len] = '\0';
  int rc = env->sync_dir(env, parent);
  free(parent);
  return rc;
}

static int open_dir(mayfly_db *db) {
  mf_env *env = db->env;
  if (env->file_exists(env, db->dbname) && !env->is_directory(env, db->dbname))
    return MF_ERR(MAYFLY_EINVAL, "%s exists and is not a directory", db->dbname);
  if (!env->file_exists(env, db->dbname)) {
    if (!db->opt.create_if_missing)
      return MF_ERR(MAYFLY_EINVAL, "%s: database does not exist (create_if_missing is false)",
                    db->dbname);
    int rc = env->make_dir(env, db->dbname);
    if (rc) return rc;
    /* The new directory's own entry must be durable too, or a power cut can take the whole
     * database with it, synced writes included. Best effort: a parent that may be written
     * but not read (mode 0733) cannot be opened to sync, and that is no reason to refuse the
     * database. The info LOG is not open yet; the message is kept for it. */
    if (sync_parent_dir(env, db->dbname) != MAYFLY_OK)
      snprintf(db->open_note, sizeof db->open_note,
               "could not sync the directory holding the new database (%s); its entry may "
               "not survive a power cut", mf_error_message());
  }
  if (!db->opt.create_if_missing) {
    /* A directory that holds no database is refused before LOCK and LOG are made in it: a
     * look at the wrong directory must not leave files there or truncate a LOG of the
     * user's (recover would refuse it too, but after both). A directory with data but no
     * CURRENT goes on, so that recover reports the damage under the lock, and so does one
     * that cannot be listed, so that the lock reports why. (A database another process is
     * creating at this moment, before its first WAL record, is "not there yet".) */
    char **names = NULL;
    size_t count = 0;
    if (env->list_dir(env, db->dbname, &names, &count) == MAYFLY_OK) { /* else: the lock says */
      int current = 0;
      for (size_t i = 0; i < count && !current; i++) current = strcmp(names[i], "CURRENT") == 0;
      int data = !current && db_dir_holds_data(env, db->dbname, names, count);
      env_free_names(names, count);
      if (!current && !data)
        return MF_ERR(MAYFLY_EINVAL, "%s: database does not exist (create_if_missing is false)",
                      db->dbname);
    }
  }
  char *lock_name = filename_lock(db->dbname);
  if (!lock_name) return MF_ERR(MAYFLY_ENOMEM, "out of memory");
  int rc = env->lock_file(env, lock_name, &db->lock);
  free(lock_name);
  if (rc == MAYFLY_EBUSY)
    return MF_ERR(MAYFLY_EBUSY, "%s is already open (its LOCK is held)", db->dbname);
  if (rc) return rc;
  char *log_name = filename_info_log(db->dbname);
  if (log_name) {
    if (env->new_writable(env, log_name, &db->info_log) != MAYFLY_OK) db->info_log = NULL;
    free(log_name);
  }
  if (db->open_note[0]) db_info(db, "%s", db->open_note);
  return MAYFLY_OK;
}

static void db_free(mayfly_db *db) {
  db_stop_background(db);
  db_trace_free(db);
  if (db->wal) wal_writer_destroy(db->wal);
  if (db->wal_file) db->env->close_writable(db->wal_file);
  if (db->mem) memtable_unref(db->mem);
  for (int i = 0; i < db->num_imm; i++) memtable_unref(db->imm[i]);
  if (db->vs) version_set_destroy(db->vs);
  if (db->tcache) table_cache_destroy(db->tcache);
  if (db->blob_cache) blob_cache_destroy(db->blob_cache);
  if (db->blob_value_cache) cache_destroy(db->blob_value_cache);
  if (db->block_cache) cache_destroy(db->block_cache);
  if (db->info_log) db->env->close_writable(db->info_log);
  if (db->lock) db->env->unlock_file(db->env, db->lock);
  batch_free(&db->group);
  pthread_mutex_destroy(&db->mu);
  pthread_mutex_destroy(&db->info_mu);
  pthread_mutex_destroy(&db->delete_mu);
  pthread_cond_destroy(&db->bg_cv);
  free(db->pending_outputs);
  free(db->prepared);
  free(db->dbname);
  free(db);
}

/* Error ids of database handles (util/error.h): 0 is "no handle". */
static atomic_uint_least64_t last_error_id;

int db_open(const char *path, const struct mayfly_options *opt, mayfly_db **out) {
  mayfly_db *db = calloc(1, sizeof *db);
  if (!db) return MF_ERR(MAYFLY_ENOMEM, "out of memory");
  db->error_id = atomic_fetch_add(&last_error_id, 1) + 1;
  pthread_mutex_init(&db->mu, NULL);
  pthread_mutex_init(&db->info_mu, NULL);
  pthread_mutex_init(&db->delete_mu, NULL);
  /* Monotonic, so that the timed wait after a job ran out of memory (db_bg.c) does not
   * stretch when the wall clock is set back. */
  pthread_condattr_t cv_attr;
  pthread_condattr_init(&cv_attr);
  pthread_condattr_setclock(&cv_attr, CLOCK_MONOTONIC);
  pthread_cond_init(&db->bg_cv, &cv_attr);
  pthread_condattr_destroy(&cv_attr);
  db->snapshots.next = db->snapshots.prev = &db->snapshots;
  if (opt) db->opt = *opt;
  else options_init_defaults(&db->opt);
  db->env = db->opt.env ? db->opt.env : env_posix();
  db->use_fsync = db->opt.use_fsync;
  db->dbname = strdup(path);
  int rc = db->dbname ? batch_init(&db->group) : MF_ERR(MAYFLY_ENOMEM, "out of memory");
  if (rc == MAYFLY_OK) rc = options_validate(&db->opt);
  if (rc == MAYFLY_OK) rc = open_dir(db);
  if (rc == MAYFLY_OK) rc = cache_create(db->opt.block_cache_size, &db->block_cache);
  if (rc == MAYFLY_OK)
    rc = table_cache_create(db->env, db->dbname, db->block_cache, db->opt.max_open_files,
                            &db->tcache);
  if (rc == MAYFLY_OK && db->opt.blob_cache_size > 0)
    rc = cache_create(db->opt.blob_cache_size, &db->blob_value_cache);
  if (rc == MAYFLY_OK)
    rc = blob_cache_create(db->env, db->dbname, db->opt.max_open_files,
                           db->blob_value_cache ? db->blob_value_cache : db->block_cache,
                           &db->blob_cache);
  if (rc == MAYFLY_OK) rc = version_set_create(db->env, db->dbname, &db->opt, db->tcache, &db->vs);
  if (rc == MAYFLY_OK)
    rc = memtable_create(db_memtable_arena_block(db), db_memtable_filter_bytes(db), &db->mem);
  if (rc == MAYFLY_OK) rc = db_trace_open(db); /* before recovery: its flushes are traced */
  if (rc == MAYFLY_OK) rc = recover(db);
  /* Writes an earlier session traced beyond this were lost in a crash: their sequence
   * numbers come again (the analyzer leaves the lost ones out). */
  if (rc == MAYFLY_OK && db->trace) trace_recovered(db->trace, version_set_last_sequence(db->vs));
  if (rc == MAYFLY_OK) rc = db_start_background(db);
  if (rc != MAYFLY_OK) {
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", mf_error_message());
    db_free(db);
    if (!saved[0]) return MF_ERR(rc, "%s", mayfly_strerror(rc));
    return mf_error_restore(rc, saved); /* db_free may have set another */
  }
  pthread_mutex_lock(&db->mu);
  db_schedule_work(db);
  pthread_mutex_unlock(&db->mu);
  *out = db;
  return MAYFLY_OK;
}

int db_close(mayfly_db *db) {
  int rc = MAYFLY_OK;
  pthread_mutex_lock(&db->mu);
  /* Iterators and snapshots point into the database: closing under them would leave the
   * caller handles whose only remaining calls (destroy, release) touch freed memory. */
  int snapshots = 0;
  for (const struct mayfly_snapshot *s = db->snapshots.next; s != &db->snapshots; s = s->next)
    snapshots++;
  int iters = atomic_load(&db->live_iters);
  if (iters > 0 || snapshots > 0) {
    pthread_mutex_unlock(&db->mu);
    return MF_ERR(MAYFLY_EBUSY, "mayfly_close: %d iterator%s and %d snapshot%s still alive; "
                  "destroy and release them first (the database stays open)", iters,
                  iters == 1 ? "" : "s", snapshots, snapshots == 1 ? "" : "s");
  }
  /* Writes made without the WAL live only in memory: write them out before closing. After a
   * background error they cannot be, and the caller must hear that they are lost. (No
   * writer can be queued: close must not race calls on db.) */
  int unlogged = db->mem_unlogged;
  for (int i = 0; i < db->num_imm; i++) unlogged |= db->imm_unlogged[i];
  char lost[700] = "";
  if (unlogged && db->bg_error != MAYFLY_OK) {
    snprintf(lost, sizeof lost, "closed with unflushed MAYFLY_NO_WAL writes lost: the database "
             "was read-only after an earlier error: %s", db->bg_error_msg);
    unlogged = 0;
    rc = MAYFLY_ECLOSED;
  }
  pthread_mutex_unlock(&db->mu);
  if (unlogged) rc = db_flush_memtables(db);
  db_stop_background(db);
  if (db->wal_file) {
    int src = db->env->sync(db->wal_file, db->use_fsync);
    if (rc == MAYFLY_OK) rc = src;
  }
  db_info(db, "closed");
  db_free(db);
  if (lost[0]) return MF_ERR(MAYFLY_ECLOSED, "%s", lost); /* not the sync's message */
  return rc;
}

int db_destroy(const char *path, mf_env *env) {
  if (!env->file_exists(env, path)) return MAYFLY_OK;
  if (!env->is_directory(env, path))
    return MF_ERR(MAYFLY_EINVAL, "%s is not a directory", path);
  char *lock_name = filename_lock(path);
  if (!lock_name) return MF_ERR(MAYFLY_ENOMEM, "out of memory");
  mf_lock *lock = NULL;
  int rc = env->lock_file(env, lock_name, &lock);
  if (rc == MAYFLY_EBUSY) {
    free(lock_name);
    return MF_ERR(MAYFLY_EBUSY, "%s is open; close it before destroying it", path);
  }
  char **names = NULL;
  size_t count = 0;
  if (rc == MAYFLY_OK) rc = env->list_dir(env, path, &names, &count);
  for (size_t i = 0; rc == MAYFLY_OK && i < count; i++) {
    int type;
    uint64_t number;
    if (!filename_parse(names[i], &type, &number) || type == MF_FILE_LOCK) continue;
    size_t len = strlen(path) + strlen(names[i]) + 2;
    char *full = malloc(len);
    if (!full) {
      rc = MF_ERR(MAYFLY_ENOMEM, "out of memory");
      break;
    }
    snprintf(full, len, "%s/%s", path, names[i]);
    rc = env->remove_file(env, full);
    free(full);
  }
  env_free_names(names, count);
  if (lock) env->unlock_file(env, lock);
  if (rc == MAYFLY_OK) {
    env->remove_file(env, lock_name);
    env->remove_dir(env, path); /* fails harmlessly if the user keeps other files there */
  }
  free(lock_name);
  return rc;
}
