/* Background work: flushing immutable memtables and merging level-0 files.
 *
 * One background thread runs the jobs, flushes first: a flush frees a memtable writers may be
 * waiting for. Each job reads its inputs and writes its outputs without db->mu, then installs
 * the result with one MANIFEST edit under db->mu. New files are registered in
 * db->pending_outputs from the moment their number is taken until the edit naming them is
 * installed (or they are abandoned), so obsolete-file deletion never removes them.
 *
 * The level-0 merge here keeps reads fast until leveled compaction exists: when level 0 has
 * level0_file_num_compaction_trigger files, all of level 0 and level 1 are merged into new
 * level-1 files. It drops what no reader can see: a version hidden by a newer version of the
 * same key that is itself at or below the oldest snapshot, and a tombstone at or below the
 * oldest snapshot when no deeper level holds data. */
#include <stdlib.h>

#include "db/db_impl.h"
#include "table/merger.h"
#include "table/table_builder.h"
#include "version/filename.h"

table_options db_table_options(const mayfly_db *db) {
  table_options o;
  o.block_size = db->opt.block_size;
  o.block_restart_interval = db->opt.block_restart_interval;
  o.bloom_bits_per_key = db->opt.bloom_bits_per_key;
  o.compression = db->opt.compression;
  o.compression_level = db->opt.compression_level;
  return o;
}

/* One table being written: the builder, its file and the key range seen so far. */
typedef struct table_out {
  uint64_t number;
  char *name;
  mf_wfile *file;
  table_builder *builder;
  mf_buf smallest, largest;
  uint64_t smallest_seq, largest_seq;
} table_out;

static int out_open(mayfly_db *db, const table_options *o, uint64_t number, table_out *t) {
  memset(t, 0, sizeof *t);
  t->number = number;
  t->smallest_seq = UINT64_MAX;
  t->name = filename_table(db->dbname, number);
  if (!t->name) return MF_ERR(MAYFLY_ENOMEM, "out of memory");
  int rc = db->env->new_writable(db->env, t->name, &t->file);
  if (rc == MAYFLY_OK) rc = table_builder_create(o, db->env, t->file, t->name, &t->builder);
  return rc;
}

static int out_add(table_out *t, mf_slice ikey, mf_slice value) {
  int rc = table_builder_add(t->builder, ikey, value);
  if (rc) return rc;
  if (t->smallest.len == 0 && table_builder_num_entries(t->builder) == 1)
    rc = mf_buf_set(&t->smallest, ikey.data, ikey.len);
  if (rc == MAYFLY_OK) rc = mf_buf_set(&t->largest, ikey.data, ikey.len);
  uint64_t seq = ikey_trailer(ikey) >> 8;
  if (seq < t->smallest_seq) t->smallest_seq = seq;
  if (seq > t->largest_seq) t->largest_seq = seq;
  return rc ? MF_ERR(MAYFLY_ENOMEM, "out of memory") : MAYFLY_OK;
}

/* Finishes, syncs and closes the table and adds it to edit at level (or removes the file
 * when it is empty). Always releases t's resources. */
static int out_finish(mayfly_db *db, table_out *t, int rc, int level, version_edit *edit,
                      uint64_t *file_size) {
  uint64_t entries = t->builder ? table_builder_num_entries(t->builder) : 0;
  if (rc == MAYFLY_OK && entries > 0) rc = table_builder_finish(t->builder);
  uint64_t size = t->builder ? table_builder_file_size(t->builder) : 0;
  if (rc == MAYFLY_OK && entries > 0) rc = db->env->sync(t->file, db->opt.use_fsync);
  if (t->builder) table_builder_destroy(t->builder);
  if (t->file) {
    int crc = db->env->close_writable(t->file);
    if (rc == MAYFLY_OK) rc = crc;
  }
  db->bytes_written += size;
  if (rc == MAYFLY_OK && entries > 0) {
    rc = version_edit_add_file(edit, level, t->number, size, entries,
                               mf_buf_slice(&t->smallest), mf_buf_slice(&t->largest),
                               t->smallest_seq, t->largest_seq);
    if (file_size) *file_size += size;
  } else if (t->name) {
    db->env->remove_file(db->env, t->name);
  }
  free(t->name);
  mf_buf_free(&t->smallest);
  mf_buf_free(&t->largest);
  return rc;
}

int db_write_table(mayfly_db *db, const table_options *o, mf_iter *it, uint64_t number,
                   int level, version_edit *edit, uint64_t *file_size) {
  table_out t;
  int rc = out_open(db, o, number, &t);
  for (iter_seek_to_first(it); rc == MAYFLY_OK && iter_valid(it); iter_next(it))
    rc = out_add(&t, iter_key(it), iter_value(it));
  if (rc == MAYFLY_OK) rc = iter_status(it);
  return out_finish(db, &t, rc, level, edit, file_size);
}

uint64_t db_oldest_snapshot_seq(mayfly_db *db) {
  if (db->snapshots.next != &db->snapshots) return db->snapshots.next->seq;
  return version_set_last_sequence(db->vs);
}

/* REQUIRES: mu held, db->num_imm > 0. */
static void flush_oldest(mayfly_db *db) {
  memtable *m = db->imm[0];
  memtable_ref(m);
  uint64_t number = version_set_new_file_number(db->vs);
  db_pending_add(db, number);
  version_edit edit;
  version_edit_init(&edit);
  table_options topt = db_table_options(db);
  pthread_mutex_unlock(&db->mu);

  uint64_t t0 = db->env->now_micros(db->env), size = 0;
  int rc = MAYFLY_OK;
  mf_iter *it = memtable_iter_create(m);
  if (!it) rc = MF_ERR(MAYFLY_ENOMEM, "out of memory");
  if (rc == MAYFLY_OK) rc = db_write_table(db, &topt, it, number, 0, &edit, &size);
  iter_destroy(it);
  uint64_t micros = db->env->now_micros(db->env) - t0;

  pthread_mutex_lock(&db->mu);
  if (rc == MAYFLY_OK) {
    version_edit_set_log_number(&edit, db->num_imm > 1 ? db->imm_wal_number[1]
                                                       : db->mem_wal_number);
    rc = version_set_log_and_apply(db->vs, &edit, &db->mu);
  }
  db_pending_remove(db, number);
  if (rc == MAYFLY_OK) {
    memtable_unref(db->imm[0]);
    for (int i = 1; i < db->num_imm; i++) {
      db->imm[i - 1] = db->imm[i];
      db->imm_wal_number[i - 1] = db->imm_wal_number[i];
    }
    db->num_imm--;
    db->flush_count++;
    db->flush_bytes += size;
    db->flush_micros += micros;
    db->level_stats[0].bytes_written += size;
    db->level_stats[0].micros += micros;
    db_info(db, "flushed memtable to table #%llu: %llu bytes in %llu us",
            (unsigned long long)number, (unsigned long long)size, (unsigned long long)micros);
    db_remove_obsolete_files(db);
  } else {
    db_set_bg_error(db, rc, "memtable flush");
  }
  memtable_unref(m);
  version_edit_free(&edit);
}

static int need_l0_merge(mayfly_db *db) {
  return version_set_num_level_files(db->vs, 0) >= db->opt.level0_file_num_compaction_trigger;
}

typedef struct merge_job {
  mayfly_db *db;
  version *v;
  uint64_t oldest_snapshot;
  int bottommost; /* no level below 1 holds data: tombstones can go */
  table_options topt;          /* options are read under mu, when the job starts */
  uint64_t target_file_size;
  version_edit edit;
  uint64_t *outputs;
  int num_outputs;
  uint64_t bytes_read, bytes_written, keys_in, keys_dropped;
} merge_job;

static uint64_t new_output_number(merge_job *job) {
  mayfly_db *db = job->db;
  pthread_mutex_lock(&db->mu);
  uint64_t number = version_set_new_file_number(db->vs);
  db_pending_add(db, number);
  pthread_mutex_unlock(&db->mu);
  uint64_t *p = realloc(job->outputs, (size_t)(job->num_outputs + 1) * sizeof *p);
  if (p) {
    job->outputs = p;
    job->outputs[job->num_outputs++] = number;
  }
  return number;
}

/* Merges the inputs into level-1 tables. Runs without db->mu. */
static int run_merge(merge_job *job) {
  mayfly_db *db = job->db;
  version *v = job->v;
  int n = v->num_files[0] + v->num_files[1];
  mf_iter **children = calloc((size_t)n + 1, sizeof *children);
  if (!children) return MF_ERR(MAYFLY_ENOMEM, "out of memory");
  int k = 0;
  for (int level = 0; level <= 1; level++) {
    for (int i = 0; i < v->num_files[level]; i++) {
      file_meta *f = v->files[level][i];
      children[k++] = table_cache_iter(db->tcache, f->number, f->file_size, NULL);
      job->bytes_read += f->file_size;
    }
  }
  mf_iter *it = merger_create(ikey_compare, children, n);
  free(children);
  if (!it) return MF_ERR(MAYFLY_ENOMEM, "out of memory");

  table_out out;
  int have_out = 0, rc = MAYFLY_OK;
  mf_buf cur_key = MF_BUF_INIT;
  int have_cur = 0;
  uint64_t last_seq_for_key = MF_MAX_SEQ + 1;
  for (iter_seek_to_first(it); rc == MAYFLY_OK && iter_valid(it); iter_next(it)) {
    mf_slice ikey = iter_key(it);
    mf_parsed_ikey pk;
    job->keys_in++;
    if (!ikey_parse(ikey, &pk)) {
      rc = MF_ERR(MAYFLY_ECORRUPT, "malformed internal key of %zu bytes in a level-0/1 table",
                  ikey.len);
      break;
    }
    if (!have_cur || !mf_slice_equal(pk.user_key, mf_buf_slice(&cur_key))) {
      if (mf_buf_set(&cur_key, pk.user_key.data, pk.user_key.len)) {
        rc = MF_ERR(MAYFLY_ENOMEM, "out of memory");
        break;
      }
      have_cur = 1;
      last_seq_for_key = MF_MAX_SEQ + 1;
    }
    int drop = 0;
    if (last_seq_for_key <= job->oldest_snapshot) {
      drop = 1; /* a newer version of this key is visible to every reader */
    } else if (pk.type == MF_TYPE_DELETE && pk.seq <= job->oldest_snapshot && job->bottommost) {
      drop = 1; /* nothing older survives below, and every reader sees the deletion */
    }
    last_seq_for_key = pk.seq;
    if (drop) {
      job->keys_dropped++;
      continue;
    }
    if (have_out && table_builder_file_size(out.builder) >= job->target_file_size) {
      rc = out_finish(db, &out, rc, 1, &job->edit, &job->bytes_written);
      have_out = 0;
      if (rc) break;
    }
    if (!have_out) {
      rc = out_open(db, &job->topt, new_output_number(job), &out);
      have_out = 1;
      if (rc) break;
    }
    rc = out_add(&out, ikey, iter_value(it));
  }
  if (rc == MAYFLY_OK) rc = iter_status(it);
  if (have_out) rc = out_finish(db, &out, rc, 1, &job->edit, &job->bytes_written);
  mf_buf_free(&cur_key);
  iter_destroy(it);
  return rc;
}

/* REQUIRES: mu held. */
static void merge_level0(mayfly_db *db) {
  merge_job job;
  memset(&job, 0, sizeof job);
  job.db = db;
  job.v = version_set_current(db->vs);
  version_ref(job.v);
  job.oldest_snapshot = db_oldest_snapshot_seq(db);
  job.topt = db_table_options(db);
  job.target_file_size = db->opt.target_file_size_base;
  job.bottommost = 1;
  for (int level = 2; level < MF_NUM_LEVELS; level++)
    if (job.v->num_files[level] > 0) job.bottommost = 0;
  version_edit_init(&job.edit);
  for (int level = 0; level <= 1; level++)
    for (int i = 0; i < job.v->num_files[level]; i++)
      version_edit_delete_file(&job.edit, level, job.v->files[level][i]->number);
  pthread_mutex_unlock(&db->mu);

  uint64_t t0 = db->env->now_micros(db->env);
  int rc = run_merge(&job);
  uint64_t micros = db->env->now_micros(db->env) - t0;

  pthread_mutex_lock(&db->mu);
  if (rc == MAYFLY_OK) rc = version_set_log_and_apply(db->vs, &job.edit, &db->mu);
  for (int i = 0; i < job.num_outputs; i++) db_pending_remove(db, job.outputs[i]);
  if (rc == MAYFLY_OK) {
    db_level_stats *s = &db->level_stats[1];
    s->bytes_read += job.bytes_read;
    s->bytes_written += job.bytes_written;
    s->micros += micros;
    s->count++;
    s->keys_in += job.keys_in;
    s->keys_dropped += job.keys_dropped;
    db_info(db, "merged level 0+1: read %llu bytes, wrote %llu bytes in %d files, dropped "
            "%llu of %llu entries", (unsigned long long)job.bytes_read,
            (unsigned long long)job.bytes_written, job.num_outputs,
            (unsigned long long)job.keys_dropped, (unsigned long long)job.keys_in);
  } else {
    db_set_bg_error(db, rc, "level-0 merge");
  }
  version_unref(job.v);
  version_edit_free(&job.edit);
  free(job.outputs);
  if (rc == MAYFLY_OK) db_remove_obsolete_files(db);
}

static void *bg_main(void *arg) {
  mayfly_db *db = arg;
  pthread_mutex_lock(&db->mu);
  while (!db->shutting_down) {
    if (db->bg_error == MAYFLY_OK && db->num_imm > 0) {
      db->bg_running = 1;
      flush_oldest(db);
    } else if (db->bg_error == MAYFLY_OK && need_l0_merge(db)) {
      db->bg_running = 1;
      merge_level0(db);
    } else {
      db->bg_running = 0;
      pthread_cond_broadcast(&db->bg_cv);
      pthread_cond_wait(&db->bg_cv, &db->mu);
      continue;
    }
    db->bg_running = 0;
    pthread_cond_broadcast(&db->bg_cv);
  }
  db->bg_running = 0;
  pthread_cond_broadcast(&db->bg_cv);
  pthread_mutex_unlock(&db->mu);
  return NULL;
}

int db_start_background(mayfly_db *db) {
  return db->env->thread_start(db->env, bg_main, db, &db->bg_thread);
}

void db_stop_background(mayfly_db *db) {
  if (!db->bg_thread) return;
  pthread_mutex_lock(&db->mu);
  db->shutting_down = 1;
  pthread_cond_broadcast(&db->bg_cv);
  pthread_mutex_unlock(&db->mu);
  db->env->thread_join(db->env, db->bg_thread);
  db->bg_thread = NULL;
}

void db_schedule_work(mayfly_db *db) { pthread_cond_broadcast(&db->bg_cv); }

/* True when no flush or merge is pending or running. REQUIRES: mu held. */
int db_is_idle(mayfly_db *db) {
  return !db->bg_running && db->num_imm == 0 && (db->bg_error || !need_l0_merge(db));
}
