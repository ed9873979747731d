/* The database object and the rules that hold it together.
 *
 * State and locking. db->mu guards everything below it in struct mayfly_db except what is
 * marked otherwise. The memtables are read without the mutex (the skiplist allows readers
 * alongside its single writer); a reader takes references under mu and drops them after.
 *
 * Writes (db_write.c). Writers queue on db->writers. The one at the front is the leader: it
 * makes room (may switch memtables, may stall), merges the batches of the writers queued
 * behind it into one group, assigns sequence numbers, then RELEASES mu to append the group
 * as one WAL record and insert it into the memtable (a memtable switch, too, releases mu
 * while it syncs the old WAL and creates the new one). Only the leader touches the WAL and
 * inserts into db->mem, so both have one writer at a time. The group's sequence numbers
 * become visible (version_set_set_last_sequence) only after the insert, under mu, so a
 * reader never sees half a batch.
 *
 * Memtables. db->mem takes writes; when it reaches write_buffer_size it joins the queue of
 * immutable memtables db->imm[] (oldest first) and a new WAL starts. Each memtable remembers
 * the number of the WAL that holds its data. The background thread flushes db->imm[0] to a
 * level-0 table, then logs an edit whose log_number is the WAL of the next memtable: WALs
 * older than that are obsolete from then on.
 *
 * Crash story. A write is durable when its WAL record is (MAYFLY_SYNC syncs it). A table is
 * synced before the MANIFEST edit naming it is written, and the edit is synced before the
 * table's WAL is deleted. Files are deleted only when no live version references them and
 * they are not being written (db->pending_outputs).
 *
 * Errors. A failed background write or a failed WAL write sets db->bg_error: from then on
 * writes fail with MAYFLY_ECLOSED and nothing is deleted, until the database is reopened.
 * The exception is a flush or compaction that runs out of memory before its MANIFEST edit
 * (db_job_failed): it is abandoned, its files removed, and tried again after a pause, up to
 * max_bgerror_resume_count times in a row. */
#ifndef MAYFLY_DB_DB_IMPL_H
#define MAYFLY_DB_DB_IMPL_H

#include <pthread.h>
#include <stdatomic.h>

#include "blob/blob_cache.h"
#include "cache/cache.h"
#include "cache/table_cache.h"
#include "db/options.h"
#include "db/write_batch.h"
#include "env/env.h"
#include "gc/blob_gc.h"
#include "mem/memtable.h"
#include "table/table_builder.h"
#include "trace/trace_writer.h"
#include "util/error.h"
#include "version/version_set.h"
#include "wal/wal_writer.h"

#define MF_MAX_IMM 64
#define MF_MAX_BG_THREADS 64

typedef struct db_writer db_writer;

struct mayfly_snapshot {
  uint64_t seq;
  struct mayfly_snapshot *prev, *next; /* db->snapshots, oldest first; guarded by mu */
};

/* Compaction statistics, kept by OUTPUT level (level 0: flushes). */
typedef struct db_level_stats {
  uint64_t bytes_read;      /* from the level above (the compaction's start level) */
  uint64_t bytes_read_next; /* from this level itself (the overlapping output-level files) */
  uint64_t bytes_written, micros, count, moves, keys_in, keys_dropped;
} db_level_stats;

/* A mayfly_compact_range request for one level, worked off in bounded steps by the
 * compaction thread. Guarded by mu. */
typedef struct db_manual_compaction {
  int level;
  int done;
  int rc; /* a step that ran out of memory ends the request with this error */
  int has_begin, has_end;
  mf_slice begin, end; /* user keys: where the next step of this level starts, and the end */
  mf_buf begin_buf, end_buf; /* the caller's range, for every level */
  mf_buf step_buf;           /* begin after a step of this level (a level may take several) */
} db_manual_compaction;

/* A table being written by a flush or a compaction. */
typedef struct db_table_out {
  uint64_t number;
  char *name;
  mf_wfile *file;
  table_builder *builder;
  mf_buf smallest, largest;
  uint64_t smallest_seq, largest_seq;
  uint64_t oldest_blob_file; /* UINT64_MAX: none referenced yet */
  uint64_t newest_blob_file; /* 0: none referenced yet */
  uint64_t job_id;           /* the trace job writing it (db_trace.c); 0 when untraced */
  int trace_deferred;        /* its FILE_CREATE is traced by the flush (db_bg.c) */
} db_table_out;

typedef struct db_blob_out {
  uint64_t number;
  char *name;
  mf_wfile *file;
  struct blob_writer *writer;
} db_blob_out;

/* A flush's or compaction's outputs (db_output.c). */
typedef struct db_output db_output;
struct db_output {
  mayfly_db *db;
  int level;
  version_edit *edit;
  table_options topt;
  int separate; /* values >= min_blob_size go to blob files */
  uint64_t min_blob_size, blob_file_size;
  int blob_compression, compression_level;
  uint64_t gc_cutoff; /* relocate blobs of files numbered below this */
  uint64_t gc_only_file; /* nonzero: relocate the blobs of this file only (group policy) */
  struct db_output *blob_owner; /* non-NULL: write blobs to that output's blob file */
  gc_meter meter;
  db_table_out table;
  int have_table;
  db_blob_out blob;
  uint64_t *numbers; /* every file number taken (all in db->pending_outputs) */
  int num_numbers;
  uint64_t table_bytes, blob_bytes, blob_files, relocated_count, relocated_bytes;
  mf_buf key_buf, value_buf, index_buf;
  /* The blob index db_output_inflow decoded last, for the db_output_add of the same entry
   * (value bytes at inflow_value, inflow_len); inflow_value is NULL when there is none. */
  blob_cache_pins pins; /* blob files being read for relocation */
  const char *inflow_value;
  size_t inflow_len;
  blob_index inflow_bi;
  uint64_t job_id; /* the trace job (db_trace.c); set by the caller after init, 0 untraced */
  int table_trace_deferred; /* the caller traces the tables' FILE_CREATE: a flush, which
                               chooses their level after writing them */
};

struct mayfly_db {
  uint64_t error_id; /* this handle's error messages (util/error.h): unique, never reused */
  char *dbname;
  mf_env *env;
  mf_lock *lock;
  mf_cache *block_cache;
  table_cache *tcache;
  struct blob_cache *blob_cache;
  mf_cache *blob_value_cache; /* NULL: blob values share block_cache */
  mf_wfile *info_log; /* the LOG file; writes guarded by info_mu */
  pthread_mutex_t info_mu;
  /* Held around each obsolete-file removal and when bg_error is set (after mu), so no removal
   * starts or is still running once the database has turned read-only. */
  pthread_mutex_t delete_mu;

  pthread_mutex_t mu;
  pthread_cond_t bg_cv; /* background work finished, or state changed */
  struct mayfly_options opt; /* runtime-mutable fields change under mu */
  int use_fsync;             /* open-time option, read without mu by jobs and writers */
  version_set *vs;

  memtable *mem;
  uint64_t mem_wal_number;
  memtable *imm[MF_MAX_IMM];
  uint64_t imm_wal_number[MF_MAX_IMM];
  int imm_unlogged[MF_MAX_IMM]; /* imm[i] holds MAYFLY_NO_WAL writes */
  int num_imm;

  mf_wfile *wal_file; /* the current WAL; written by the leader writer only */
  wal_writer *wal;
  uint64_t wal_number;
  int wal_dirty; /* bytes appended since the last sync */
  /* db->mem holds (or a leader is copying into it) MAYFLY_NO_WAL writes; it moves to
   * imm_unlogged with the memtable, and is gone when that memtable's flush is installed */
  int mem_unlogged;

  db_writer *writers_head, *writers_tail;
  struct mayfly_batch group; /* the leader's merge buffer */
  memtable_prepared *prepared; /* the leader's: the group's versions, before they are logged */
  size_t cap_prepared;

  struct mayfly_snapshot snapshots; /* list head */
  atomic_int live_iters; /* mayfly_iters not yet destroyed: close refuses while any live */

  mf_thread *bg_threads[MF_MAX_BG_THREADS];
  int num_bg_threads;
  int shutting_down;
  int purge_pending; /* a reader freed an old version: its files may be obsolete now */
  int deleting_files; /* a thread is deleting obsolete files without mu (db.c) */
  _Atomic int stop_jobs; /* shutting_down, readable without mu by running jobs */
  int flush_running;      /* one flush at a time: memtables are flushed in order */
  int compaction_running; /* one compaction at a time */
  int flush_placing;      /* a flush is installing a table below level 0: no compaction may
                             start until it is in the version (db_bg.c) */
  int manifest_busy;      /* a thread is in version_set_log_and_apply */
  db_manual_compaction *manual;
  file_meta *seek_file;   /* ran out of seeks; checked against the current version before use */
  uint64_t seek_file_number;
  int seek_level;
  int bg_error;   /* first background error, MAYFLY_OK if none */
  char bg_error_msg[512];
  int bg_retries[2];      /* flushes, compactions in a row that ran out of memory */
  uint64_t bg_retry_at;   /* monotonic micros before which no job starts; 0: none waits */
  uint64_t bg_retry_count; /* jobs tried again since open (mayfly.stats) */
  uint64_t *pending_outputs; /* file numbers being written */
  int num_pending, cap_pending;

  /* statistics (guarded by mu unless atomic) */
  _Atomic uint64_t bytes_written;      /* every byte appended to any file */
  _Atomic uint64_t user_bytes_written; /* key + value bytes accepted */
  uint64_t flush_bytes, flush_count, flush_micros;
  uint64_t blob_bytes_written;             /* blob file bytes written by flushes and compactions */
  uint64_t blob_relocated_count, blob_relocated_bytes; /* by GC */
  uint64_t forced_gc_count;                /* compactions picked by the force threshold */
  uint64_t group_gc_count;                 /* value logs collected by the group policy */
  uint64_t stall_micros;
  db_level_stats level_stats[MF_NUM_LEVELS];
  /* What the last open's WAL replay did (mayfly.recovery); written before the database is
   * shared, read-only after. */
  char open_note[512]; /* a warning from before the info LOG was open, written to it then */
  struct {
    uint64_t wals, records;   /* WAL files read (the one replay stopped in too), batches replayed */
    uint64_t torn_bytes;      /* unfinished tails ignored (a crash mid-append) */
    uint64_t stop_wal;        /* point_in_time: the WAL whose damage stopped replay, or 0 */
    uint64_t stop_records;    /* batches of stop_wal replayed before the damage */
    uint64_t wals_not_replayed; /* later WALs dropped with it */
    int stop_wal_missing;     /* stop_wal is not in the directory at all */
  } recovery;

  /* Lifetime tracing (db_trace.c). trace is NULL when tracing is off; it is read without mu
   * and changed under mu. Writers switched off stay allocated, closed, in trace_retired until
   * the database closes, because another thread may still hold their pointer. */
  _Atomic(trace_writer *) trace;
  trace_writer **trace_retired;
  int num_trace_retired;
  _Atomic uint64_t next_job_id; /* trace job ids: flushes and compactions */
};

/* db.c */
void db_info(mayfly_db *db, const char *fmt, ...) MF_PRINTF(2, 3);
/* Records a background error (first one wins) and wakes everyone. REQUIRES: mu held. */
void db_set_bg_error(mayfly_db *db, int rc, const char *what);
enum { DB_JOB_FLUSH, DB_JOB_COMPACTION };
/* A flush or compaction (kind DB_JOB_*, what for the log) failed with rc; built: its outputs
 * were finished and handed to db_install_outputs. When it ran out of memory before anything
 * of it was written to the MANIFEST (not built, or the MANIFEST write never started) and the
 * retries in a row of that kind are not used up, the job is left to be tried again after
 * bgerror_resume_retry_interval; otherwise rc is a background error. REQUIRES: mu held, and
 * no other MANIFEST write since the job's own. */
void db_job_failed(mayfly_db *db, int kind, int rc, const char *what, int built);
/* A job of that kind was installed: its retries in a row start again from 0. (Only the same
 * kind: a compaction that keeps failing is not rescued by the flushes between its tries.) */
void db_job_succeeded(mayfly_db *db, int kind);
/* Microseconds until a job may start after a retryable failure, 0 if one may start now.
 * REQUIRES: mu held. */
uint64_t db_retry_wait(mayfly_db *db);
/* Makes an error for callers once the db is read-only. REQUIRES: mu held. */
int db_closed_error(mayfly_db *db);
/* A WAL created by db_open_wal and not yet the database's current one. */
typedef struct db_new_wal_files {
  mf_wfile *file;
  wal_writer *wal;
  uint64_t number;
  uint64_t header_bytes; /* what creating it wrote */
  int dir_sync_failed;   /* set when db_open_wal failed syncing the directory */
} db_new_wal_files;
/* Creates WAL `number` (its file header written and its directory entry synced) without
 * touching the database's state, so it needs no lock. */
int db_open_wal(mayfly_db *db, uint64_t number, db_new_wal_files *files);
/* Makes files the current WAL, closing the previous one (without syncing it).
 * REQUIRES: mu held and the caller is the leader writer, or no other thread. */
void db_install_wal(mayfly_db *db, db_new_wal_files *files);
/* db_open_wal then db_install_wal. REQUIRES: no other thread (recovery). */
int db_new_wal(mayfly_db *db, uint64_t number);
/* REQUIRES: mu held. Releases mu while it deletes files (other threads may run meanwhile);
 * holds it again on return. */
void db_remove_obsolete_files(mayfly_db *db);
int db_pending_add(mayfly_db *db, uint64_t number);     /* REQUIRES: mu held */
void db_pending_remove(mayfly_db *db, uint64_t number); /* REQUIRES: mu held */

/* db_write.c */
/* The filter size of a new memtable (memtable_bloom_size_ratio). REQUIRES: mu held or no
 * other thread. */
size_t db_memtable_filter_bytes(const mayfly_db *db);
/* The arena block size of a new memtable. REQUIRES: as db_memtable_filter_bytes. */
size_t db_memtable_arena_block(const mayfly_db *db);
int db_write(mayfly_db *db, const struct mayfly_batch *batch, unsigned flags);
/* Forces the memtable to become immutable and waits until every immutable memtable is
 * flushed. */
int db_flush_memtables(mayfly_db *db);

/* db_bg.c */
int db_start_background(mayfly_db *db);
void db_stop_background(mayfly_db *db);
void db_schedule_work(mayfly_db *db); /* REQUIRES: mu held */
int db_is_idle(mayfly_db *db);       /* REQUIRES: mu held */
/* Writes the contents of an iterator over internal keys as one table file numbered number;
 * fills the edit's new file at level. Used by flush and recovery. Does not need mu. */
int db_table_out_open(mayfly_db *db, const table_options *o, uint64_t number, db_table_out *t);
int db_table_out_add(db_table_out *t, mf_slice ikey, mf_slice value);
uint64_t db_table_out_size(const db_table_out *t);
/* Finishes, syncs and closes the table and adds it to edit at level (or removes the file
 * when it is empty or rc is an error). Always releases t's resources. Adds the file's size
 * to *file_size. */
int db_table_out_finish(mayfly_db *db, db_table_out *t, int rc, int level, version_edit *edit,
                        uint64_t *file_size);
/* version_set_log_and_apply, one caller at a time. REQUIRES: mu held (released inside). */
int db_log_and_apply(mayfly_db *db, version_edit *edit);
void db_remove_table_file(mayfly_db *db, uint64_t number);
void db_remove_blob_file(mayfly_db *db, uint64_t number);

/* db_output.c. REQUIRES for init: mu held (reads options and the current version). gc: relocate
 * blobs older than the age cutoff. */
void db_output_init(db_output *o, mayfly_db *db, int level, version_edit *edit, int gc);
/* Accounts a blob reference entering the job (call for every input entry, kept or not). */
int db_output_inflow(db_output *o, mf_slice ikey, mf_slice value);
/* Adds a kept entry (separating, relocating or carrying its value as described above). */
int db_output_add(db_output *o, mf_slice ikey, mf_slice value);
uint64_t db_output_table_size(const db_output *o);
/* A flush: adds the memtable's entries, leaving out versions hidden by a newer version of the
 * same key at or below oldest_snapshot (counted in *dropped). */
int db_output_add_memtable(db_output *o, memtable *m, uint64_t oldest_snapshot,
                           uint64_t *dropped);
int db_output_cut(db_output *o); /* ends the current table */
/* Finishes and syncs every output, syncs the directory, adds blob garbage to the edit. On
 * error (rc or its own) removes the job's files. */
int db_output_finish(db_output *o, int rc);
/* Removes the files o finished, which its edit lists: for a job that fails after o finished. */
void db_output_discard(db_output *o);
/* db_log_and_apply of the edit naming the outputs outs[0..n); when it fails before writing
 * the MANIFEST, their files are removed. REQUIRES: mu held. */
int db_install_outputs(mayfly_db *db, version_edit *edit, db_output *outs, int n);
void db_output_release(db_output *o); /* REQUIRES: mu held; after install or failure */
void db_output_free(db_output *o);

/* db_compact.c; REQUIRES: mu held */
struct compaction;
int db_run_compaction(mayfly_db *db, struct compaction *c);
int db_compaction_needed(mayfly_db *db);
int db_background_compaction(mayfly_db *db);
/* mayfly_compact_range: flushes, then compacts [begin, end] (NULL = open) level by level. */
int db_compact_range(mayfly_db *db, const mf_slice *begin, const mf_slice *end);
/* Note a file whose seek allowance ran out (from a read). REQUIRES: mu held. */
void db_record_seek(mayfly_db *db, file_meta *f, int level);
table_options db_table_options(const mayfly_db *db); /* REQUIRES: mu held */
/* REQUIRES: mu held. */
uint64_t db_oldest_snapshot_seq(mayfly_db *db);

/* db_read.c */
/* Replaces the blob index in *value with the blob's value. The caller pins a version that
 * references the blob. */
int db_resolve_blob(mayfly_db *db, mf_slice user_key, mf_buf *value);
int db_get(mayfly_db *db, const struct mayfly_snapshot *snap, mf_slice key, mf_buf *value);

/* db_read.c */
/* Replaces the blob index in *value with the blob's value. The caller pins a version that
 * references the blob. */
int db_resolve_blob(mayfly_db *db, mf_slice user_key, mf_buf *value);
int db_snapshot_create(mayfly_db *db, const struct mayfly_snapshot **out);
void db_snapshot_release(mayfly_db *db, const struct mayfly_snapshot *snap);
/* An internal iterator over everything visible at snap (NULL: now), and the sequence number
 * to read it at. Pins the memtables and the version until destroyed. */
int db_internal_iter_at(mayfly_db *db, const struct mayfly_snapshot *snap, mf_iter **out,
                        uint64_t *seq);

/* db_trace.c: lifetime tracing (docs/tracing.md) */
int db_trace_open(mayfly_db *db); /* at open: starts a session if opt.trace_dir is set */
/* mayfly_set_option: switches sessions when a trace option differs between db->opt and next.
 * REQUIRES: mu held. On error nothing changed. */
int db_trace_reconfigure(mayfly_db *db, const struct mayfly_options *next);
void db_trace_free(mayfly_db *db); /* at close, after the background threads stopped */
/* One op record per batch entry; the group has its sequence numbers. REQUIRES: mu held. */
void db_trace_batch(mayfly_db *db, const struct mayfly_batch *group);
/* Takes a job id and records the job's start: a flush when c is NULL, else compaction c.
 * REQUIRES: mu held (reads c's inputs). */
struct compaction;
uint64_t db_trace_job_start(mayfly_db *db, const struct compaction *c);

/* db.c, entry points behind the public API */
int db_open(const char *path, const struct mayfly_options *opt, mayfly_db **out);
int db_close(mayfly_db *db);
int db_destroy(const char *path, mf_env *env);

#endif
