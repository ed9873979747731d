/* Writing lifetime traces (format: trace_format.h and docs/format/trace.md).
 *
 * A trace_writer is one tracing session: it creates trace-NNNNNN.op and trace-NNNNNN.job in
 * the trace directory and appends records to them. Every trace_* call below is thread-safe
 * (one mutex per file, a leaf lock: the writer never calls back into the database) and
 * returns nothing: tracing must never fail a write or a compaction. The first I/O error stops
 * the session (later calls do nothing) and is kept for trace_writer_status.
 *
 * Records are encoded into an in-memory chunk and written as one log record (one checksum)
 * per TRACE_CHUNK_BYTES, then handed to the OS (env->flush). A process crash loses at most the
 * last unwritten chunk of each file; the reader sees a torn tail, not corruption.
 *
 * Every trace_* call accepts t == NULL and a closed writer and then does nothing, so a caller
 * may pass a pointer that another thread is switching off (see src/db/db_trace.c).
 *
 * Clocks: the session header stores the wall-clock time at open (CLOCK_REALTIME: the env only
 * has a clock for intervals, which may be monotonic) and records store microseconds since
 * then measured with env->now_micros, so records are ordered even if the wall clock jumps. */
#ifndef MAYFLY_TRACE_TRACE_WRITER_H
#define MAYFLY_TRACE_TRACE_WRITER_H

#include <stdint.h>

#include "env/env.h"
#include "trace/trace_format.h"
#include "util/slice.h"

typedef struct trace_writer trace_writer;

/* Starts a session in dir (created if missing) for the database dbname. key_hash: record
 * mf_hash64 of each key instead of the key. gets: record gets. The writer borrows env (it
 * must outlive the writer). On MAYFLY_OK *out is a new writer: close it with
 * trace_writer_close and free it with trace_writer_free. Errors: the env's (directory or file
 * creation), MAYFLY_ENOMEM; nothing is left open then. */
int trace_writer_open(mf_env *env, const char *dir, const char *dbname, int key_hash, int gets,
                      trace_writer **out);

/* Writes the buffered chunks, syncs and closes both files. Later trace_* calls on t do
 * nothing. Returns the session's first error (MAYFLY_OK if none). Idempotent; NULL is OK. */
int trace_writer_close(trace_writer *t);

/* Frees a writer (closing it first if needed). No other thread may use t any more. */
void trace_writer_free(trace_writer *t);

/* The session's first I/O error, or MAYFLY_OK. */
int trace_writer_status(trace_writer *t);
uint64_t trace_writer_session(const trace_writer *t);
/* 1 when gets are traced (fixed for the session). */
int trace_writer_gets(const trace_writer *t);

/* ---- op trace ---- */

/* tag: TRACE_PUT, TRACE_DELETE or TRACE_GET (seq is then the read's sequence number, flags
 * TRACE_OP_FOUND when a value was found). */
void trace_op(trace_writer *t, int tag, uint64_t seq, mf_slice user_key, uint64_t value_size,
              int flags);

/* Several ops under one lock and one timestamp (a write batch): when trace_ops_begin returns
 * 1, call trace_ops_add for each op and then trace_ops_end; when it returns 0 (t is NULL,
 * closed or failed) call neither. Nothing else may be called on t in between by this thread. */
int trace_ops_begin(trace_writer *t);
void trace_ops_add(trace_writer *t, int tag, uint64_t seq, mf_slice user_key,
                   uint64_t value_size, int flags);
void trace_ops_end(trace_writer *t);

/* ---- job trace ---- */

void trace_job_start(trace_writer *t, uint64_t job, int kind, int reason, int level,
                     int output_level, const uint64_t *inputs, int num_inputs);
/* The database finished recovery with last_seq as its last sequence number (op file): a
 * write traced in an earlier session with a larger one was lost in a crash (not in the WAL
 * or a table), and its sequence number will be given again. */
void trace_recovered(trace_writer *t, uint64_t last_seq);
void trace_job_end(trace_writer *t, uint64_t job, int rc);
/* ikey and value as the job read them; a blob index value gives blob_file and value size. */
void trace_drop(trace_writer *t, uint64_t job, int level, int reason, mf_slice ikey,
                mf_slice value);
/* A value written to blob file to_file: a placement when from_file is 0, else a relocation
 * from from_file (to_file 0: rewritten inline). */
void trace_blob_write(trace_writer *t, uint64_t job, mf_slice ikey, uint64_t value_size,
                      uint64_t from_file, uint64_t to_file);
/* smallest/largest: internal keys of a table (empty slices for a blob file). */
void trace_file_create(trace_writer *t, uint64_t job, uint64_t number, int file_kind, int level,
                       uint64_t size, uint64_t entries, uint64_t smallest_seq,
                       uint64_t largest_seq, mf_slice smallest, mf_slice largest);
void trace_file_delete(trace_writer *t, uint64_t number, int file_kind);

/* ---- names ---- */

enum { TRACE_OP_FILE = 0, TRACE_JOB_FILE = 1 };
/* "dir/trace-NNNNNN.op" (which = TRACE_OP_FILE) or "dir/trace-NNNNNN.job" (TRACE_JOB_FILE);
 * malloc'd, the caller frees it; NULL when out of memory. */
char *trace_file_name(const char *dir, uint64_t session, int which);
/* Parses a trace file name (no directory). Returns 1 and fills *session and *which, else 0. */
int trace_parse_file_name(const char *name, uint64_t *session, int *which);

#endif
