/* Lifetime tracing glue: turns the trace options into trace sessions (src/trace/) and turns
 * database events into trace records. docs/tracing.md says what is recorded and why.
 *
 * db->trace is the current session's writer or NULL. The write path and background jobs read
 * it without db->mu (`if (db->trace) trace_x(db->trace, ...)`: one predictable branch when
 * tracing is off); it changes only under db->mu (open, mayfly_set_option, close). A writer
 * that is switched off is closed at once but freed only when the database closes: a job or
 * writer that loaded the pointer just before the switch may still call it, and a closed
 * writer ignores calls. Every trace_* function accepts NULL, so re-reading db->trace between
 * the test and the call is harmless too.
 *
 * Job ids come from db->next_job_id and are unique for the life of the open database, so a
 * job that straddles a session switch keeps its id in both sessions' files. */
#include <stdlib.h>

#include "compaction/compaction.h"
#include "db/db_impl.h"

static int trace_options_equal(const struct mayfly_options *a, const struct mayfly_options *b) {
  return strcmp(a->trace_dir, b->trace_dir) == 0 && a->trace_key_hash == b->trace_key_hash &&
         a->trace_gets == b->trace_gets;
}

/* REQUIRES: mu held. Moves the current writer (if any) to the retired list, closed. */
static int retire_current(mayfly_db *db) {
  trace_writer *t = db->trace;
  if (!t) return MAYFLY_OK;
  trace_writer **p = realloc(db->trace_retired, (size_t)(db->num_trace_retired + 1) * sizeof *p);
  if (!p) return MF_ERR(MAYFLY_ENOMEM, "out of memory closing the trace session");
  db->trace_retired = p;
  db->trace_retired[db->num_trace_retired++] = t;
  db->trace = NULL;
  int rc = trace_writer_close(t);
  db_info(db, "trace session %llu closed%s%s", (unsigned long long)trace_writer_session(t),
          rc ? ": " : "", rc ? mf_error_message() : "");
  return MAYFLY_OK;
}

/* REQUIRES: mu held, or no other thread running. */
static int open_session(mayfly_db *db, const struct mayfly_options *o, trace_writer **out) {
  int rc = trace_writer_open(db->env, o->trace_dir, db->dbname, o->trace_key_hash,
                             o->trace_gets, out);
  if (rc == MAYFLY_OK)
    db_info(db, "trace session %llu started in %s", (unsigned long long)trace_writer_session(*out),
            o->trace_dir);
  return rc;
}

int db_trace_open(mayfly_db *db) {
  if (!db->opt.trace_dir[0]) return MAYFLY_OK;
  trace_writer *t = NULL;
  int rc = open_session(db, &db->opt, &t);
  if (rc == MAYFLY_OK) db->trace = t;
  return rc;
}

int db_trace_reconfigure(mayfly_db *db, const struct mayfly_options *next) {
  if (trace_options_equal(&db->opt, next)) return MAYFLY_OK;
  /* The new session opens before the old one closes, so a failure changes nothing. */
  trace_writer *fresh = NULL;
  int rc = next->trace_dir[0] ? open_session(db, next, &fresh) : MAYFLY_OK;
  if (rc == MAYFLY_OK) rc = retire_current(db);
  if (rc != MAYFLY_OK) {
    trace_writer_free(fresh);
    return rc;
  }
  db->trace = fresh;
  return MAYFLY_OK;
}

void db_trace_free(mayfly_db *db) {
  trace_writer *t = db->trace;
  db->trace = NULL;
  if (t) {
    int rc = trace_writer_close(t);
    if (rc) db_info(db, "trace session %llu: %s", (unsigned long long)trace_writer_session(t),
                    mf_error_message());
    trace_writer_free(t);
  }
  for (int i = 0; i < db->num_trace_retired; i++) trace_writer_free(db->trace_retired[i]);
  free(db->trace_retired);
  db->trace_retired = NULL;
  db->num_trace_retired = 0;
}

/* ---- events ---- */

typedef struct batch_trace {
  trace_writer *t;
  uint64_t min_blob_size; /* UINT64_MAX: blob files are off */
} batch_trace;

static int trace_entry(void *arg, uint64_t seq, int type, mf_slice key, mf_slice value) {
  batch_trace *bt = arg;
  if (type == MF_TYPE_DELETE) {
    trace_ops_add(bt->t, TRACE_DELETE, seq, key, 0, 0);
  } else {
    int to_blob = value.len >= bt->min_blob_size ? TRACE_OP_TO_BLOB : 0;
    trace_ops_add(bt->t, TRACE_PUT, seq, key, value.len, to_blob);
  }
  return MAYFLY_OK;
}

/* The group's entries share one lock and one timestamp of the op file. */
void db_trace_batch(mayfly_db *db, const struct mayfly_batch *group) {
  batch_trace bt = {db->trace, db->opt.enable_blob_files ? db->opt.min_blob_size : UINT64_MAX};
  if (!trace_ops_begin(bt.t)) return;
  batch_iterate(mf_buf_slice(&group->rep), trace_entry, &bt);
  trace_ops_end(bt.t);
}

uint64_t db_trace_job_start(mayfly_db *db, const struct compaction *c) {
  uint64_t job = atomic_fetch_add(&db->next_job_id, 1) + 1;
  trace_writer *t = db->trace;
  if (!t) return job;
  if (!c) {
    trace_job_start(t, job, TRACE_JOB_FLUSH, 0, 0, 0, NULL, 0);
    return job;
  }
  int n = c->reason == COMPACTION_GROUP_GC ? c->num_rewrite : c->num_inputs[0] + c->num_inputs[1];
  uint64_t *inputs = calloc((size_t)n + 1, sizeof *inputs);
  int kind = c->reason == COMPACTION_GROUP_GC ? TRACE_JOB_GC
             : compaction_is_trivial_move(c) ? TRACE_JOB_MOVE
                                             : TRACE_JOB_COMPACTION;
  if (inputs) {
    int k = 0;
    if (c->reason == COMPACTION_GROUP_GC) {
      for (int i = 0; i < c->num_rewrite; i++) inputs[k++] = c->rewrite[i]->number;
    } else {
      for (int which = 0; which < 2; which++)
        for (int i = 0; i < c->num_inputs[which]; i++) inputs[k++] = c->inputs[which][i]->number;
    }
  }
  /* Out of memory: the job is still recorded, without its inputs. */
  trace_job_start(t, job, kind, c->reason, c->level, c->output_level, inputs, inputs ? n : 0);
  free(inputs);
  return job;
}
