/* Background work: flushing immutable memtables, running compactions and deleting files that
 * readers of old versions kept alive until they let go.
 *
 * max_background_jobs worker threads share the work. A worker takes a flush when one is
 * waiting and none is running (memtables are flushed in order, one at a time), else a
 * compaction when one is needed and none is running. With two or more workers a flush never
 * waits behind a long compaction. Each job reads and writes files without db->mu and
 * installs its result with one MANIFEST edit under it; db_log_and_apply lets one job at a
 * time into the MANIFEST.
 *
 * Obsolete files are deleted without db->mu (db_remove_obsolete_files), one thread at a time.
 * A compaction deletes what it made obsolete before it counts as finished (its running flag
 * stays set meanwhile, as a RocksDB job keeps its slot while it purges), so the next
 * compaction starts after the deletions. A flush gives up its slot first: writers may be
 * waiting for the next memtable to be flushed, and must not wait for unlinks as well (the
 * purge after a flush also takes whatever a compaction left behind). A thread that finds
 * another one deleting leaves purge_pending for a worker to pick up.
 *
 * New files are registered in db->pending_outputs from the moment their number is taken until
 * the edit naming them is installed (or they are abandoned), so obsolete-file deletion never
 * removes them.
 *
 * A flushed table goes to level 0, or deeper (up to max_mem_compaction_level) when it
 * overlaps nothing there; the level is chosen when the table is installed, and only while no
 * compaction is running, because a running compaction's outputs are not in the current
 * version yet and could overlap it. For the same reason no compaction starts from the
 * moment such a level is chosen until the table is in the version (flush_placing): the
 * MANIFEST write in between releases db->mu, and a compaction picked from the version
 * without the table could write an output over it (a manual compaction's inputs can leave
 * gaps for the table to fall into). */
#include <stdlib.h>
#include <time.h>

#include "blob/blob_cache.h"
#include "compaction/compaction.h"
#include "db/db_impl.h"
#include "table/merger.h"
#include "table/table_builder.h"
#include "version/filename.h"

uint64_t db_oldest_snapshot_seq(mayfly_db *db) {
  if (db->snapshots.next != &db->snapshots) return db->snapshots.next->seq;
  return version_set_last_sequence(db->vs);
}

/* REQUIRES: mu held, db->num_imm > 0, db->flush_running set by the caller; cleared here
 * once the flush is installed (or failed), before the obsolete files are deleted. */
static void flush_oldest(mayfly_db *db) {
  memtable *m = db->imm[0];
  memtable_ref(m);
  version_edit edit;
  version_edit_init(&edit);
  db_output out;
  db_output_init(&out, db, 0, &edit, 0);
  if (db->trace) out.job_id = db_trace_job_start(db, NULL);
  out.table_trace_deferred = 1; /* traced below, at the level the table goes to */
  uint64_t oldest_snapshot = db_oldest_snapshot_seq(db), dropped = 0;
  pthread_mutex_unlock(&db->mu);

  uint64_t t0 = db->env->now_micros(db->env);
  int rc = db_output_add_memtable(&out, m, oldest_snapshot, &dropped);
  rc = db_output_finish(&out, rc);
  int built = rc == MAYFLY_OK; /* a failure from here on is the MANIFEST's */
  uint64_t size = out.table_bytes + out.blob_bytes;
  uint64_t micros = db->env->now_micros(db->env) - t0;

  pthread_mutex_lock(&db->mu);
  if (rc == MAYFLY_OK) {
    version_edit_set_log_number(&edit, db->num_imm > 1 ? db->imm_wal_number[1]
                                                       : db->mem_wal_number);
    if (edit.num_new_files == 1 && !db->compaction_running &&
        !db->opt.level_compaction_dynamic_level_bytes && db->opt.max_mem_compaction_level > 0 &&
        edit.num_blob_files == 0) {
      /* Placed deeper only without blob files: blob_file_starting_level was applied for
       * level 0. */
      version_edit_new_file *nf = &edit.new_files[0];
      nf->level = compaction_pick_flush_level(
          version_set_current(db->vs), &db->opt, ikey_user_key(mf_buf_slice(&nf->meta.smallest)),
          ikey_user_key(mf_buf_slice(&nf->meta.largest)), db->opt.max_mem_compaction_level);
      db->flush_placing = nf->level > 0;
    }
    for (int i = 0; db->trace && i < edit.num_new_files; i++) {
      const version_edit_new_file *nf = &edit.new_files[i];
      const file_meta *f = &nf->meta;
      trace_file_create(db->trace, out.job_id, f->number, TRACE_FILE_TABLE, nf->level,
                        f->file_size, f->num_entries, f->smallest_seq, f->largest_seq,
                        mf_buf_slice(&f->smallest), mf_buf_slice(&f->largest));
    }
    rc = db_install_outputs(db, &edit, &out, 1);
    if (db->flush_placing) {
      db->flush_placing = 0;
      pthread_cond_broadcast(&db->bg_cv); /* a compaction may start now */
    }
  }
  if (db->trace) trace_job_end(db->trace, out.job_id, rc);
  db_output_release(&out);
  if (rc == MAYFLY_OK) {
    memtable_unref(db->imm[0]);
    for (int i = 1; i < db->num_imm; i++) {
      db->imm[i - 1] = db->imm[i];
      db->imm_wal_number[i - 1] = db->imm_wal_number[i];
      db->imm_unlogged[i - 1] = db->imm_unlogged[i];
    }
    db->num_imm--;
    db->flush_count++;
    db->flush_bytes += size;
    db->flush_micros += micros;
    db->level_stats[0].bytes_written += size;
    db->level_stats[0].micros += micros;
    db->level_stats[0].keys_in += memtable_num_entries(m);
    db->level_stats[0].keys_dropped += dropped;
    db->blob_bytes_written += out.blob_bytes;
    db_info(db, "flushed memtable: %llu table bytes, %llu blob bytes in %llu blob files, "
            "%llu us", (unsigned long long)out.table_bytes, (unsigned long long)out.blob_bytes,
            (unsigned long long)out.blob_files, (unsigned long long)micros);
    /* The flush is done: the next one may start, and writers waiting for room may go on,
     * while this thread deletes files. */
    db->flush_running = 0;
    db_job_succeeded(db, DB_JOB_FLUSH);
    pthread_cond_broadcast(&db->bg_cv);
    db_remove_obsolete_files(db);
  } else {
    db->flush_running = 0;
    db_job_failed(db, DB_JOB_FLUSH, rc, "memtable flush", built);
  }
  db_output_free(&out);
  memtable_unref(m);
  version_edit_free(&edit);
}

static void *bg_main(void *arg) {
  mayfly_db *db = arg;
  pthread_mutex_lock(&db->mu);
  while (!db->shutting_down) {
    /* After a job ran out of memory, no job starts until the pause is over. */
    uint64_t pause = db->bg_error == MAYFLY_OK ? db_retry_wait(db) : 0;
    if (db->bg_error == MAYFLY_OK && !pause && db->num_imm > 0 && !db->flush_running) {
      db->flush_running = 1;
      flush_oldest(db); /* clears flush_running */
    } else if (db->bg_error == MAYFLY_OK && !pause && !db->compaction_running &&
               !db->flush_placing && db_compaction_needed(db)) {
      db->compaction_running = 1;
      int picked = db_background_compaction(db);
      db->compaction_running = 0;
      if (!picked) {
        pthread_cond_wait(&db->bg_cv, &db->mu);
        continue;
      }
    } else if (db->purge_pending && !db->deleting_files) {
      db->purge_pending = 0;
      db_remove_obsolete_files(db);
    } else if (pause) {
      struct timespec until;
      clock_gettime(CLOCK_MONOTONIC, &until); /* bg_cv's clock (db.c) */
      uint64_t ns = (uint64_t)until.tv_nsec + pause % 1000000u * 1000u;
      until.tv_sec += (time_t)(pause / 1000000u + ns / 1000000000u);
      until.tv_nsec = (long)(ns % 1000000000u);
      pthread_cond_timedwait(&db->bg_cv, &db->mu, &until);
      continue;
    } else {
      pthread_cond_wait(&db->bg_cv, &db->mu);
      continue;
    }
    pthread_cond_broadcast(&db->bg_cv);
  }
  /* Closing: files a job left to a purge still go (the next open would delete them). While
   * another thread is deleting, a purge asked for meanwhile waits for it: a worker still
   * installing a compaction leaves its inputs to a purge exactly then, and every worker
   * passes here on its way out, so the last one out finds no purge pending. (delete_files
   * broadcasts bg_cv when it is done.) */
  while (db->purge_pending) {
    if (db->deleting_files) {
      pthread_cond_wait(&db->bg_cv, &db->mu);
      continue;
    }
    db->purge_pending = 0;
    db_remove_obsolete_files(db);
  }
  pthread_cond_broadcast(&db->bg_cv);
  pthread_mutex_unlock(&db->mu);
  return NULL;
}

int db_start_background(mayfly_db *db) {
  int n = db->opt.max_background_jobs;
  if (n > MF_MAX_BG_THREADS) n = MF_MAX_BG_THREADS;
  for (int i = 0; i < n; i++) {
    int rc = db->env->thread_start(db->env, bg_main, db, &db->bg_threads[i]);
    if (rc) return rc;
    db->num_bg_threads++;
  }
  return MAYFLY_OK;
}

void db_stop_background(mayfly_db *db) {
  if (db->num_bg_threads == 0) return;
  pthread_mutex_lock(&db->mu);
  db->shutting_down = 1;
  atomic_store(&db->stop_jobs, 1);
  pthread_cond_broadcast(&db->bg_cv);
  pthread_mutex_unlock(&db->mu);
  for (int i = 0; i < db->num_bg_threads; i++) db->env->thread_join(db->env, db->bg_threads[i]);
  db->num_bg_threads = 0;
}

void db_schedule_work(mayfly_db *db) { pthread_cond_broadcast(&db->bg_cv); }

int db_is_idle(mayfly_db *db) {
  if (db->flush_running || db->compaction_running || db->manifest_busy || db->deleting_files)
    return 0;
  if (db->bg_error) return 1;
  return db->num_imm == 0 && !db->purge_pending && !db_compaction_needed(db);
}

int db_log_and_apply(mayfly_db *db, version_edit *edit) {
  while (db->manifest_busy) pthread_cond_wait(&db->bg_cv, &db->mu);
  db->manifest_busy = 1;
  int rc = version_set_log_and_apply(db->vs, edit, &db->mu);
  db->manifest_busy = 0;
  pthread_cond_broadcast(&db->bg_cv);
  return rc;
}

/* Removes a table or blob file that no version references (a failed job's output). */
static void remove_file(mayfly_db *db, int type, uint64_t number) {
  char *name = type == MF_FILE_TABLE ? filename_table(db->dbname, number)
                                     : filename_blob(db->dbname, number);
  if (!name) return;
  if (type == MF_FILE_TABLE) table_cache_evict(db->tcache, number);
  else blob_cache_evict(db->blob_cache, number);
  db->env->remove_file(db->env, name);
  free(name);
}

void db_remove_table_file(mayfly_db *db, uint64_t number) {
  remove_file(db, MF_FILE_TABLE, number);
}

void db_remove_blob_file(mayfly_db *db, uint64_t number) { remove_file(db, MF_FILE_BLOB, number); }

void db_record_seek(mayfly_db *db, file_meta *f, int level) {
  if (--f->allowed_seeks > 0 || db->seek_file) return;
  db->seek_file = f;
  db->seek_file_number = f->number;
  db->seek_level = level;
  db_schedule_work(db);
}
