/* Running compactions: the job that merges a compaction's inputs into new tables of the
 * output level, and the manual compaction driver behind mayfly_compact_range.
 *
 * The merge walks all inputs in internal-key order and drops what no reader can see:
 *  - a version of a key when a newer version of the same key is at or below the oldest
 *    snapshot (every reader sees the newer one);
 *  - a tombstone at or below the oldest snapshot when no level below the output level can
 *    hold the key (nothing older is left for it to hide).
 * Sequence numbers are kept as they are. Output files are cut at the target file size or when
 * their overlap with the grandparent level grows past 10 x that, but only between user keys,
 * so that all versions of a user key within one level stay in one file (reads of a level
 * look in one file only, and the picker can reason in user-key ranges).
 *
 * Everything between picking and installing runs without db->mu. The compaction holds its
 * input version, so its inputs stay on disk; its outputs are in db->pending_outputs until
 * installed. */
#include <stdlib.h>

#include "compaction/compaction.h"
#include "blob/blob_format.h"
#include "db/db_impl.h"
#include "table/merger.h"

typedef struct compact_job {
  mayfly_db *db;
  compaction *c;
  uint64_t oldest_snapshot;
  db_output out;
  uint64_t keys_in, keys_dropped;
} compact_job;

static mf_iter *input_iterator(compact_job *job) {
  compaction *c = job->c;
  table_cache *tc = job->db->tcache;
  int n = (c->level == 0 ? c->num_inputs[0] : 1) + 1;
  mf_iter **children = calloc((size_t)n, sizeof *children);
  if (!children) return NULL;
  int k = 0;
  if (c->level == 0) {
    for (int i = 0; i < c->num_inputs[0]; i++)
      children[k++] = table_cache_iter(tc, c->inputs[0][i]->number, c->inputs[0][i]->file_size,
                                       NULL);
  } else {
    children[k++] = version_concat_iter(tc, c->inputs[0], c->num_inputs[0]);
  }
  children[k++] = version_concat_iter(tc, c->inputs[1], c->num_inputs[1]);
  for (int i = 0; i < k; i++) {
    if (!children[i]) {
      for (int j = 0; j < k; j++) iter_destroy(children[j]);
      free(children);
      return NULL;
    }
  }
  mf_iter *it = merger_create(ikey_compare, children, k);
  free(children);
  return it;
}

/* Merges the inputs into job->out. Runs without db->mu. */
static int run_job(compact_job *job) {
  mayfly_db *db = job->db;
  compaction *c = job->c;
  mf_iter *it = input_iterator(job);
  if (!it) return MF_ERR(MAYFLY_ENOMEM, "out of memory");

  int rc = MAYFLY_OK, pending_cut = 0;
  mf_buf cur_key = MF_BUF_INIT;
  int have_cur = 0;
  uint64_t last_seq_for_key = 0;
  for (iter_seek_to_first(it); rc == MAYFLY_OK && iter_valid(it); iter_next(it)) {
    if (atomic_load_explicit(&db->stop_jobs, memory_order_relaxed)) {
      rc = MF_ERR(MAYFLY_EBUSY, "compaction interrupted by close");
      break;
    }
    mf_slice ikey = iter_key(it), value = iter_value(it);
    mf_parsed_ikey pk;
    job->keys_in++;
    if (!ikey_parse(ikey, &pk)) {
      rc = MF_ERR(MAYFLY_ECORRUPT, "compaction of level %d: malformed internal key of %zu bytes",
                  c->level, ikey.len);
      break;
    }
    rc = db_output_inflow(&job->out, ikey, value);
    if (rc) break;
    if (compaction_should_stop_before(c, ikey)) pending_cut = 1;
    if (!have_cur || !mf_slice_equal(pk.user_key, mf_buf_slice(&cur_key))) {
      if (mf_buf_set(&cur_key, pk.user_key.data, pk.user_key.len)) {
        rc = MF_ERR(MAYFLY_ENOMEM, "out of memory");
        break;
      }
      have_cur = 1;
      last_seq_for_key = MF_MAX_SEQ + 1;
      if (pending_cut || db_output_table_size(&job->out) >= c->max_output_file_size) {
        rc = db_output_cut(&job->out);
        pending_cut = 0;
        if (rc) break;
      }
    }
    int drop = 0; /* the trace's reason */
    if (last_seq_for_key <= job->oldest_snapshot) {
      drop = TRACE_DROP_HIDDEN; /* hidden by a newer version that every reader sees */
    } else if (pk.type == MF_TYPE_DELETE && pk.seq <= job->oldest_snapshot &&
               compaction_is_base_level_for_key(c, pk.user_key)) {
      drop = TRACE_DROP_BASE_TOMBSTONE; /* every reader sees it and nothing older is below */
    }
    last_seq_for_key = pk.seq;
    if (drop) {
      job->keys_dropped++;
      if (db->trace) trace_drop(db->trace, job->out.job_id, c->output_level, drop, ikey, value);
      continue;
    }
    rc = db_output_add(&job->out, ikey, value);
  }
  if (rc == MAYFLY_OK) rc = iter_status(it);
  mf_buf_free(&cur_key);
  iter_destroy(it);
  return db_output_finish(&job->out, rc);
}

/* Group policy: rewrites every table covering c->gc_file in place, moving the log's live
 * values into one new log (owned by outs[0]). Runs without db->mu. Entries are copied as they
 * are: nothing is dropped, so a table's rewrite holds exactly its input's keys. */
static int run_group_gc(mayfly_db *db, compaction *c, db_output *outs) {
  int rc = MAYFLY_OK;
  for (int i = 0; rc == MAYFLY_OK && i < c->num_rewrite; i++) {
    file_meta *f = c->rewrite[i];
    mf_iter *it = table_cache_iter(db->tcache, f->number, f->file_size, NULL);
    if (!it) {
      rc = MF_ERR(MAYFLY_ENOMEM, "out of memory");
      break;
    }
    for (iter_seek_to_first(it); rc == MAYFLY_OK && iter_valid(it); iter_next(it)) {
      if (atomic_load_explicit(&db->stop_jobs, memory_order_relaxed)) {
        rc = MF_ERR(MAYFLY_EBUSY, "compaction interrupted by close");
        break;
      }
      rc = db_output_inflow(&outs[i], iter_key(it), iter_value(it));
      if (rc == MAYFLY_OK) rc = db_output_add(&outs[i], iter_key(it), iter_value(it));
    }
    if (rc == MAYFLY_OK) rc = iter_status(it);
    iter_destroy(it);
  }
  /* The tables first, then the owner of the shared log. When one fails, the ones finished
   * before it are referenced by nothing either. */
  int failed_at = -1;
  for (int i = c->num_rewrite - 1; i >= 0; i--) {
    int was_ok = rc == MAYFLY_OK;
    rc = db_output_finish(&outs[i], rc);
    if (was_ok && rc != MAYFLY_OK) failed_at = i;
  }
  for (int i = c->num_rewrite - 1; failed_at >= 0 && i > failed_at; i--)
    db_output_discard(&outs[i]);
  return rc;
}

/* REQUIRES: mu held; released while the rewrite runs. job_id: the trace's, 0 if untraced.
 * *built is set once the outputs are finished, before the MANIFEST edit. */
static int run_group_compaction(mayfly_db *db, compaction *c, uint64_t job_id, int *built) {
  uint64_t t0 = db->env->now_micros(db->env);
  db_output *outs = calloc((size_t)c->num_rewrite, sizeof *outs);
  if (!outs) return MF_ERR(MAYFLY_ENOMEM, "out of memory");
  for (int i = 0; i < c->num_rewrite; i++) {
    db_output_init(&outs[i], db, c->rewrite_levels[i], &c->edit, 0);
    outs[i].gc_only_file = c->gc_file;
    outs[i].job_id = job_id;
    if (i > 0) outs[i].blob_owner = &outs[0];
  }
  pthread_mutex_unlock(&db->mu);
  int rc = run_group_gc(db, c, outs);
  pthread_mutex_lock(&db->mu);
  /* A job that finished is installed even when close has begun meanwhile: its outputs are
   * synced files that only the edit makes live, and a close that dropped the edit would leave
   * them behind as orphans. An interrupted job (EBUSY) has removed its outputs already. */
  *built = rc == MAYFLY_OK;
  if (rc == MAYFLY_OK) rc = db_install_outputs(db, &c->edit, outs, c->num_rewrite);
  uint64_t read = 0, relocated = 0, relocated_bytes = 0, blob_bytes = 0;
  for (int i = 0; i < c->num_rewrite; i++) {
    db_output_release(&outs[i]);
    read += c->rewrite[i]->file_size;
    blob_bytes += outs[i].blob_bytes;
    relocated += outs[i].relocated_count;
    relocated_bytes += outs[i].relocated_bytes;
  }
  if (rc == MAYFLY_OK) {
    uint64_t micros = db->env->now_micros(db->env) - t0;
    /* Each table is read and rewritten at its own level (the new value log is written by
     * outs[0], so it counts at the first table's level); the job counts once, there. */
    for (int i = 0; i < c->num_rewrite; i++) {
      db_level_stats *ls = &db->level_stats[c->rewrite_levels[i]];
      ls->bytes_read_next += c->rewrite[i]->file_size;
      ls->bytes_written += outs[i].table_bytes + outs[i].blob_bytes;
      ls->keys_in += c->rewrite[i]->num_entries;
    }
    db_level_stats *s = &db->level_stats[c->output_level];
    s->micros += micros;
    s->count++;
    db->blob_bytes_written += blob_bytes;
    db->blob_relocated_count += relocated;
    db->blob_relocated_bytes += relocated_bytes;
    db->group_gc_count++;
    db_info(db, "group GC of value log #%06llu: rewrote %d tables (%llu bytes), relocated "
            "%llu blobs into %llu blob bytes; %llu us", (unsigned long long)c->gc_file,
            c->num_rewrite, (unsigned long long)read, (unsigned long long)relocated,
            (unsigned long long)blob_bytes, (unsigned long long)micros);
  }
  for (int i = 0; i < c->num_rewrite; i++) db_output_free(&outs[i]);
  free(outs);
  return rc;
}

static const char *reason_name(int reason) {
  switch (reason) {
    case COMPACTION_LEVEL0: return "level-0";
    case COMPACTION_SIZE: return "size";
    case COMPACTION_SEEK: return "seek";
    case COMPACTION_FORCED_BLOB_GC: return "forced blob GC";
    default: return "manual";
  }
}

/* Runs c and installs its result. REQUIRES: mu held; released while the job runs. Takes
 * ownership of c. */
int db_run_compaction(mayfly_db *db, compaction *c) {
  uint64_t t0 = db->env->now_micros(db->env);
  int rc = MAYFLY_OK;
  db_level_stats *s = &db->level_stats[c->output_level];
  uint64_t read0 = compaction_input_bytes(c, 0), read1 = compaction_input_bytes(c, 1);
  uint64_t job_id = db->trace ? db_trace_job_start(db, c) : 0;
  int built = 0; /* the job's outputs are finished: a failure after is the MANIFEST's */

  if (c->reason == COMPACTION_GROUP_GC) {
    rc = run_group_compaction(db, c, job_id, &built);
  } else if (compaction_is_trivial_move(c)) {
    file_meta *f = c->inputs[0][0];
    rc = version_edit_add_file(&c->edit, c->output_level, f->number, f->file_size,
                               f->num_entries, mf_buf_slice(&f->smallest),
                               mf_buf_slice(&f->largest), f->smallest_seq, f->largest_seq,
                               f->oldest_blob_file);
    if (rc == MAYFLY_OK) rc = version_edit_set_newest_blob_file(&c->edit, f->newest_blob_file);
    built = rc == MAYFLY_OK;
    if (rc == MAYFLY_OK) rc = db_log_and_apply(db, &c->edit);
    if (rc == MAYFLY_OK) {
      s->moves++;
      db_info(db, "moved table #%llu (%llu bytes) from level %d to level %d",
              (unsigned long long)f->number, (unsigned long long)f->file_size, c->level,
              c->output_level);
    }
  } else {
    compact_job job = {.db = db, .c = c};
    job.oldest_snapshot = db_oldest_snapshot_seq(db);
    db_output_init(&job.out, db, c->output_level, &c->edit, 1);
    job.out.job_id = job_id;
    pthread_mutex_unlock(&db->mu);
    rc = run_job(&job);
    pthread_mutex_lock(&db->mu);
    built = rc == MAYFLY_OK;
    if (rc == MAYFLY_OK) rc = db_install_outputs(db, &c->edit, &job.out, 1); /* even when closing */
    db_output_release(&job.out);
    uint64_t micros = db->env->now_micros(db->env) - t0;
    uint64_t written = job.out.table_bytes + job.out.blob_bytes;
    if (rc == MAYFLY_OK) {
      s->bytes_read += read0;
      s->bytes_read_next += read1;
      s->bytes_written += written;
      s->micros += micros;
      s->count++;
      s->keys_in += job.keys_in;
      s->keys_dropped += job.keys_dropped;
      db->blob_bytes_written += job.out.blob_bytes;
      db->blob_relocated_count += job.out.relocated_count;
      db->blob_relocated_bytes += job.out.relocated_bytes;
      if (c->reason == COMPACTION_FORCED_BLOB_GC) db->forced_gc_count++;
      db_info(db, "%s compaction L%d (%d files, %llu bytes) + L%d (%d files, %llu bytes) -> "
              "%llu table + %llu blob bytes; dropped %llu of %llu entries; relocated %llu "
              "blobs; %llu us", reason_name(c->reason), c->level, c->num_inputs[0],
              (unsigned long long)read0, c->output_level, c->num_inputs[1],
              (unsigned long long)read1, (unsigned long long)job.out.table_bytes,
              (unsigned long long)job.out.blob_bytes, (unsigned long long)job.keys_dropped,
              (unsigned long long)job.keys_in, (unsigned long long)job.out.relocated_count,
              (unsigned long long)micros);
    }
    db_output_free(&job.out);
  }
  compaction_free(c);
  if (db->trace) trace_job_end(db->trace, job_id, rc);
  if (rc == MAYFLY_EBUSY && db->shutting_down) return rc; /* not a database error */
  if (rc != MAYFLY_OK) {
    db_job_failed(db, DB_JOB_COMPACTION, rc, "compaction", built);
  } else {
    db_job_succeeded(db, DB_JOB_COMPACTION);
    db_remove_obsolete_files(db);
  }
  return rc;
}

/* REQUIRES: mu held. Whether the seek candidate is still a file of the current version. */
static int seek_candidate_live(mayfly_db *db) {
  if (!db->seek_file) return 0;
  version *v = version_set_current(db->vs);
  int level = db->seek_level;
  for (int i = 0; i < v->num_files[level]; i++)
    if (v->files[level][i]->number == db->seek_file_number) return 1;
  db->seek_file = NULL;
  return 0;
}

int db_compaction_needed(mayfly_db *db) {
  if (db->manual && !db->manual->done) return 1;
  if (seek_candidate_live(db)) return 1;
  double scores[MF_NUM_LEVELS];
  compaction_scores(version_set_current(db->vs), &db->opt, scores);
  version *v = version_set_current(db->vs);
  for (int level = 0; level < MF_NUM_LEVELS - 1; level++)
    if (scores[level] >= 1.0 && v->num_files[level] > 0) return 1;
  file_meta *f;
  int level;
  uint64_t file;
  return gc_pick_forced(v, &db->opt, &f, &level) ||
         gc_pick_group(v, &db->opt, &file, NULL, NULL, NULL);
}

/* Picks and runs one compaction. Returns 0 when there was nothing to pick after all (the
 * caller waits for a change instead of asking again at once), else 1. REQUIRES: mu held,
 * db->compaction_running set by caller. */
int db_background_compaction(mayfly_db *db) {
  version *v = version_set_current(db->vs);
  int rc = MAYFLY_OK;
  compaction *c = NULL;
  db_manual_compaction *m = db->manual;
  int last_step = 0; /* the manual request is done once this compaction is installed */
  if (m && !m->done) {
    c = compaction_pick_range(db->vs, v, &db->opt, m->level, m->has_begin ? &m->begin : NULL,
                              m->has_end ? &m->end : NULL, &rc);
    if (!c || rc) {
      m->done = 1;
      m->rc = rc;
    } else {
      /* Continue after this step's range next time; the step is done when nothing is left. */
      mf_slice hi;
      file_meta **in = c->inputs[0];
      hi = mf_buf_slice(&in[c->num_inputs[0] - 1]->largest);
      for (int i = 0; i < c->num_inputs[0]; i++)
        if (ikey_compare(mf_buf_slice(&in[i]->largest), hi) > 0) hi = mf_buf_slice(&in[i]->largest);
      if (m->level == 0 || c->num_inputs[0] == v->num_files[m->level]) {
        last_step = 1; /* level 0, or a whole level, goes in one step */
      } else {
        /* No user key spans two files of a level, so the next step can start at this step's
         * last user key: the file holding it is gone from the level. */
        mf_slice uhi = ikey_user_key(hi);
        if (mf_buf_set(&m->step_buf, uhi.data, uhi.len))
          rc = MF_ERR(MAYFLY_ENOMEM, "out of memory");
        m->begin = mf_buf_slice(&m->step_buf); /* the caller's begin stays for the next level */
        m->has_begin = 1;
      }
    }
  } else {
    file_meta *seek_file = seek_candidate_live(db) ? db->seek_file : NULL;
    c = compaction_pick(db->vs, v, &db->opt, seek_file, db->seek_level, &rc);
    if (c && c->reason == COMPACTION_SEEK) db->seek_file = NULL;
  }
  if (rc != MAYFLY_OK) { /* out of memory: a manual request ends with the error */
    compaction_free(c);
    if (m && !m->done) { /* (a failed pick of a step has set them already) */
      m->rc = rc;
      m->done = 1;
    }
    db_job_failed(db, DB_JOB_COMPACTION, rc, "picking a compaction", 0);
    return 1;
  }
  if (!c) {
    /* The manual request is finished (done is set), or what looked due yields no job: a seek
     * candidate the picker does not take is dropped so that it is not asked for again. */
    if (db->seek_file) {
      db->seek_file = NULL;
      pthread_cond_broadcast(&db->bg_cv); /* mayfly_wait_idle may be waiting on it */
    }
    return m && m->done;
  }
  rc = db_run_compaction(db, c);
  /* Only now may mayfly_compact_range go on: its next level must see this step's result.
   * (A closing database abandons the request and its memory: check it is still there.) A
   * step that failed but will be tried again (out of memory) ends the request with that
   * error: the caller hears of it, and the next step would skip this one's range. */
  if (m && db->manual == m && !m->done && rc != MAYFLY_OK && db->bg_error == MAYFLY_OK) {
    m->rc = rc;
    m->done = 1;
  } else if (last_step && db->manual == m) {
    m->done = 1;
  }
  return 1;
}

int db_compact_range(mayfly_db *db, const mf_slice *begin, const mf_slice *end) {
  int rc = db_flush_memtables(db);
  if (rc) return rc;
  db_manual_compaction m;
  memset(&m, 0, sizeof m);
  if ((begin && mf_buf_set(&m.begin_buf, begin->data, begin->len)) ||
      (end && mf_buf_set(&m.end_buf, end->data, end->len))) {
    mf_buf_free(&m.begin_buf);
    mf_buf_free(&m.end_buf);
    return MF_ERR(MAYFLY_ENOMEM, "out of memory");
  }
  pthread_mutex_lock(&db->mu);
  for (int level = 0; level < MF_NUM_LEVELS - 1 && rc == MAYFLY_OK; level++) {
    /* Stop above the deepest level that holds data: nothing below to merge into. */
    int deeper = 0;
    version *v = version_set_current(db->vs);
    for (int l = level; l < MF_NUM_LEVELS; l++) deeper += v->num_files[l];
    if (deeper == 0 || (v->num_files[level] == deeper && level > 0)) break;
    while (db->manual && !db->shutting_down) pthread_cond_wait(&db->bg_cv, &db->mu);
    m.level = level;
    m.done = 0;
    m.has_begin = begin != NULL;
    m.has_end = end != NULL;
    m.begin = mf_buf_slice(&m.begin_buf);
    m.end = mf_buf_slice(&m.end_buf);
    db->manual = &m;
    db_schedule_work(db);
    while (!m.done && db->bg_error == MAYFLY_OK && !db->shutting_down)
      pthread_cond_wait(&db->bg_cv, &db->mu);
    db->manual = NULL;
    pthread_cond_broadcast(&db->bg_cv);
    if (db->bg_error) rc = db_closed_error(db);
    else if (db->shutting_down) rc = MF_ERR(MAYFLY_EBUSY, "database is closing");
    else if (m.rc)
      rc = MF_ERR(m.rc, "manual compaction stopped: out of memory (the database stays "
                  "writable; background compactions are tried again)");
  }
  pthread_mutex_unlock(&db->mu);
  mf_buf_free(&m.begin_buf);
  mf_buf_free(&m.end_buf);
  mf_buf_free(&m.step_buf);
  return rc;
}
