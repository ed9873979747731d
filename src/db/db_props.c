/* mayfly_property: named read-only views of the engine's state, as malloc'd text. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compaction/compaction.h"
#include "db/db_impl.h"
#include "db/db_iter.h"

static double mib(uint64_t bytes) { return (double)bytes / 1048576.0; }

/* RocksDB-style compaction statistics. Rows are kept by output level: "Rn(GiB)" reads from
 * the level above, "Rnp1" from the level itself, "W" what was written into it; W-Amp is
 * W / Rn. Level 0's row counts flushes. REQUIRES: mu held. */
static int format_stats(mayfly_db *db, mf_buf *b) {
  version *v = version_set_current(db->vs);
  double scores[MF_NUM_LEVELS];
  compaction_scores(v, &db->opt, scores);
  int rc = mf_buf_appendf(b, "%-5s %6s %10s %6s %10s %10s %10s %7s %7s %6s %8s %12s %12s\n", "Level",
                   "Files", "Size(MiB)", "Score", "Rn(MiB)", "Rnp1(MiB)", "W(MiB)", "W-Amp",
                   "Comp", "Moves", "Secs", "KeyIn", "KeyDrop");
  db_level_stats sum = {0};
  uint64_t total_files = 0, total_size = 0;
  for (int level = 0; rc == MAYFLY_OK && level < MF_NUM_LEVELS; level++) {
    db_level_stats s = db->level_stats[level];
    if (level == 0) s.count += db->flush_count; /* level 0's writes are the flushes */
    uint64_t size = version_level_bytes(v, level);
    if (v->num_files[level] == 0 && s.bytes_written == 0 && s.moves == 0) continue;
    double wamp = s.bytes_read ? (double)s.bytes_written / (double)s.bytes_read : 0.0;
    rc = mf_buf_appendf(b, "L%-4d %6d %10.2f %6.2f %10.2f %10.2f %10.2f %7.2f %7" PRIu64 " %6" PRIu64
                 " %8.1f %12" PRIu64 " %12" PRIu64 "\n", level, v->num_files[level], mib(size),
                 scores[level], mib(s.bytes_read), mib(s.bytes_read_next),
                 mib(s.bytes_written), wamp, s.count, s.moves, (double)s.micros / 1e6,
                 s.keys_in, s.keys_dropped);
    total_files += (uint64_t)v->num_files[level];
    total_size += size;
    sum.bytes_read += s.bytes_read;
    sum.bytes_read_next += s.bytes_read_next;
    sum.bytes_written += s.bytes_written;
    sum.count += s.count;
    sum.moves += s.moves;
    sum.micros += s.micros;
    sum.keys_in += s.keys_in;
    sum.keys_dropped += s.keys_dropped;
  }
  /* Whole database: everything flushes and compactions wrote, per byte flushed. */
  double db_wamp = db->flush_bytes ? (double)sum.bytes_written / (double)db->flush_bytes : 0.0;
  if (rc == MAYFLY_OK)
    rc = mf_buf_appendf(b, "%-5s %6" PRIu64 " %10.2f %6s %10.2f %10.2f %10.2f %7.2f %7" PRIu64
                 " %6" PRIu64 " %8.1f %12" PRIu64 " %12" PRIu64 "\n", "Sum", total_files,
                 mib(total_size), "", mib(sum.bytes_read), mib(sum.bytes_read_next),
                 mib(sum.bytes_written), db_wamp, sum.count, sum.moves,
                 (double)sum.micros / 1e6, sum.keys_in, sum.keys_dropped);
  if (rc == MAYFLY_OK)
    rc = mf_buf_appendf(b, "Flush: %" PRIu64 " memtables, %.2f MiB, %.1f s\n"
                 "Stall: %.3f s\nImmutable memtables: %d\n"
                 "Jobs tried again after running out of memory: %" PRIu64 "\n",
                 db->flush_count, mib(db->flush_bytes), (double)db->flush_micros / 1e6,
                 (double)db->stall_micros / 1e6, db->num_imm, db->bg_retry_count);
  if (rc == MAYFLY_OK)
    rc = mf_buf_appendf(b, "Write amplification ((flush + compaction written) / flushed): %.2f\n",
                 db_wamp);
  if (rc == MAYFLY_OK)
    rc = mf_buf_appendf(b, "Bytes written: %" PRIu64 "; user bytes written: %" PRIu64 "\n",
                 (uint64_t)db->bytes_written + version_set_bytes_written(db->vs),
                 (uint64_t)db->user_bytes_written);
  return rc;
}

/* What the open's WAL replay did. Lines are "name: value" so that tools can parse them; the
 * last says whether point_in_time recovery dropped writes at damage (ABSOLUTE mode refuses to
 * open instead, so there it is always "none"). */
static int format_recovery(mayfly_db *db, mf_buf *b) {
  int rc = mf_buf_appendf(b, "WALs read: %" PRIu64 "\nRecords replayed: %" PRIu64
                          "\nTorn tail bytes ignored: %" PRIu64 "\n", db->recovery.wals,
                          db->recovery.records, db->recovery.torn_bytes);
  if (rc != MAYFLY_OK) return rc;
  if (db->recovery.stop_wal == 0) return mf_buf_appendf(b, "Dropped at damage: none\n");
  return mf_buf_appendf(b, "Dropped at damage: %06" PRIu64 ".log%s after %" PRIu64
                        " records, and %" PRIu64 " later WALs\n", db->recovery.stop_wal,
                        db->recovery.stop_wal_missing ? " (missing)" : "",
                        db->recovery.stop_records, db->recovery.wals_not_replayed);
}

/* REQUIRES: mu held. */
static int format_blob_stats(mayfly_db *db, mf_buf *b) {
  version *v = version_set_current(db->vs);
  uint64_t total = version_blob_total_bytes(v), garbage = version_blob_garbage_bytes(v);
  int rc = mf_buf_appendf(b, "Blob files: %d\nTotal bytes: %" PRIu64 " (%.2f MiB)\n"
                   "Live bytes: %" PRIu64 " (%.2f MiB)\nGarbage bytes: %" PRIu64
                   " (%.2f MiB, %.1f%%)\n", v->num_blobs, total, mib(total), total - garbage,
                   mib(total - garbage), garbage, mib(garbage),
                   total ? 100.0 * (double)garbage / (double)total : 0.0);
  if (rc == MAYFLY_OK)
    rc = mf_buf_appendf(b, "Blob bytes written: %" PRIu64 "\nRelocated blobs: %" PRIu64 " (%" PRIu64
                 " bytes)\nForced-GC compactions: %" PRIu64 "\nGroup GCs: %" PRIu64
                 "\nGC policy: %s, age cutoff %.2f, force threshold %.2f, GC %s\n",
                 db->blob_bytes_written, db->blob_relocated_count, db->blob_relocated_bytes,
                 db->forced_gc_count, db->group_gc_count,
                 db->opt.blob_gc_policy == MF_BLOB_GC_AGE ? "age" : "group",
                 db->opt.blob_garbage_collection_age_cutoff,
                 db->opt.blob_garbage_collection_force_threshold,
                 db->opt.enable_blob_garbage_collection ? "on" : "off");
  for (int i = 0; rc == MAYFLY_OK && i < v->num_blobs; i++) {
    const blob_meta *m = v->blobs[i];
    rc = mf_buf_appendf(b, "  #%06" PRIu64 ": %" PRIu64 " blobs, %" PRIu64 " bytes, garbage %" PRIu64
                 " blobs %" PRIu64 " bytes, %d linked tables\n", m->number, m->total_count,
                 m->total_bytes, m->garbage_count, m->garbage_bytes, m->num_linked_ssts);
  }
  return rc;
}

/* Exact live data: key + value bytes of every live key, by a scan. Blob values count their
 * stored size when uncompressed (no read needed); compressed ones are read. Does not hold mu. */
static int live_data_exact(mayfly_db *db, uint64_t *out) {
  mayfly_iter *it;
  int rc = db_iter_create(db, NULL, &it);
  if (rc) return rc;
  uint64_t sum = 0;
  for (db_iter_seek_to_first(it); db_iter_valid(it); db_iter_next(it)) {
    mf_slice v;
    uint64_t vlen;
    if (db_iter_value_size(it, &vlen) != MAYFLY_OK) {
      rc = db_iter_value(it, &v);
      if (rc) break;
      vlen = v.len;
    }
    sum += db_iter_key(it).len + vlen;
  }
  if (rc == MAYFLY_OK) rc = db_iter_status(it);
  db_iter_destroy(it);
  *out = sum;
  return rc;
}

/* Bytes of every file of the database on disk. */
static uint64_t disk_bytes(mayfly_db *db) {
  char **names = NULL;
  size_t count = 0;
  uint64_t sum = 0;
  if (db->env->list_dir(db->env, db->dbname, &names, &count) != MAYFLY_OK) return 0;
  for (size_t i = 0; i < count; i++) {
    char path[4096];
    uint64_t size;
    snprintf(path, sizeof path, "%s/%s", db->dbname, names[i]);
    if (db->env->file_size(db->env, path, &size) == MAYFLY_OK) sum += size;
  }
  env_free_names(names, count);
  return sum;
}

MAYFLY_API int mayfly_property(mayfly_db *db, const char *name, char **value) {
  if (value) *value = NULL;
  mf_error_begin(db ? db->error_id : 0); /* NULL db: the message is mayfly_errmsg(NULL)'s */
  if (!db || !name || !value)
    return MF_ERR(MAYFLY_EINVAL, "mayfly_property: db, name and value must not be NULL");
  mf_buf b = MF_BUF_INIT;
  int rc = MAYFLY_OK;
  if (strcmp(name, "mayfly.live-data-size-exact") == 0 ||
      strcmp(name, "mayfly.space-amplification") == 0) {
    uint64_t live = 0;
    rc = live_data_exact(db, &live);
    if (rc == MAYFLY_OK && name[7] == 'l') rc = mf_buf_appendf(&b, "%" PRIu64, live);
    else if (rc == MAYFLY_OK)
      rc = mf_buf_appendf(&b, "%.4f", live ? (double)disk_bytes(db) / (double)live : 0.0);
    if (rc == MAYFLY_OK) rc = mf_buf_append(&b, "", 1);
    if (rc != MAYFLY_OK) {
      mf_buf_free(&b);
      return rc;
    }
    *value = b.data;
    return MAYFLY_OK;
  }
  pthread_mutex_lock(&db->mu);
  version *v = version_set_current(db->vs);
  static const char level_prefix[] = "mayfly.num-files-at-level";
  const char *digits = name + sizeof level_prefix - 1;
  if (strcmp(name, "mayfly.stats") == 0) {
    rc = format_stats(db, &b);
  } else if (strncmp(name, level_prefix, sizeof level_prefix - 1) == 0) {
    /* Plain decimal digits only: no sign, blank or overflow reaches a level. */
    size_t n = strlen(digits);
    int level = n >= 1 && n <= 2 && strspn(digits, "0123456789") == n &&
                        (n == 1 || digits[0] != '0') ? atoi(digits) : -1;
    if (level < 0 || level >= MF_NUM_LEVELS)
      rc = MF_ERR(MAYFLY_EINVAL, "property %s: levels are 0..%d", name, MF_NUM_LEVELS - 1);
    else rc = mf_buf_appendf(&b, "%d", v->num_files[level]);
  } else if (strcmp(name, "mayfly.bytes-written") == 0) {
    rc = mf_buf_appendf(&b, "%" PRIu64, (uint64_t)db->bytes_written + version_set_bytes_written(db->vs));
  } else if (strcmp(name, "mayfly.user-bytes-written") == 0) {
    rc = mf_buf_appendf(&b, "%" PRIu64, (uint64_t)db->user_bytes_written);
  } else if (strcmp(name, "mayfly.stall-micros") == 0) {
    rc = mf_buf_appendf(&b, "%" PRIu64, db->stall_micros);
  } else if (strcmp(name, "mayfly.total-sst-size") == 0) {
    uint64_t total = 0;
    for (int l = 0; l < MF_NUM_LEVELS; l++) total += version_level_bytes(v, l);
    rc = mf_buf_appendf(&b, "%" PRIu64, total);
  } else if (strcmp(name, "mayfly.recovery") == 0) {
    rc = format_recovery(db, &b);
  } else if (strcmp(name, "mayfly.blob-stats") == 0) {
    rc = format_blob_stats(db, &b);
  } else if (strcmp(name, "mayfly.total-blob-size") == 0) {
    rc = mf_buf_appendf(&b, "%" PRIu64, version_blob_total_bytes(v));
  } else if (strcmp(name, "mayfly.blob-garbage-size") == 0) {
    rc = mf_buf_appendf(&b, "%" PRIu64, version_blob_garbage_bytes(v));
  } else if (strcmp(name, "mayfly.live-data-size") == 0) {
    /* Estimate: tables plus live blob bytes. Tables still hold hidden versions and the
     * garbage counts lag until compaction drops references, so this overstates; the exact
     * figure is mayfly.live-data-size-exact. */
    uint64_t total = version_blob_total_bytes(v) - version_blob_garbage_bytes(v);
    for (int l = 0; l < MF_NUM_LEVELS; l++) total += version_level_bytes(v, l);
    rc = mf_buf_appendf(&b, "%" PRIu64, total);
  } else {
    rc = MF_ERR(MAYFLY_ENOTFOUND, "unknown property \"%s\"", name);
  }
  pthread_mutex_unlock(&db->mu);
  if (rc == MAYFLY_OK) rc = mf_buf_append(&b, "", 1); /* NUL */
  if (rc != MAYFLY_OK) {
    mf_buf_free(&b);
    return rc == MAYFLY_ENOMEM ? MF_ERR(rc, "out of memory") : rc;
  }
  *value = b.data;
  return MAYFLY_OK;
}
