/* Reading lifetime traces written by trace_writer (format: trace_format.h and
 * docs/format/trace.md).
 *
 * A reader walks one trace file record by record. A torn tail (the process died before the
 * last chunk was complete) ends the file quietly; a damaged chunk followed by good data, a
 * malformed record body, a wrong magic, kind or format version are MAYFLY_ECORRUPT with a
 * message naming the file and the byte offset. Records with tags this reader does not know
 * are skipped (their length is in the record), so newer writers stay readable.
 *
 * Not thread-safe: one reader is used by one thread. */
#ifndef MAYFLY_TRACE_TRACE_READER_H
#define MAYFLY_TRACE_TRACE_READER_H

#include <stddef.h>
#include <stdint.h>

#include "env/env.h"
#include "trace/trace_format.h"
#include "util/slice.h"

typedef struct trace_reader trace_reader;

typedef struct trace_session_info {
  int present;            /* 0: the file held no session record (empty or torn at once) */
  uint32_t format_version;
  int flags;              /* enum trace_session_flags */
  uint64_t wall_start_us; /* wall clock at the session's start */
  uint64_t session;
  const char *dbname;     /* NUL-terminated, owned by the reader */
} trace_session_info;

/* One decoded record. Fields a tag does not have are 0. Slices and `inputs` point into
 * reader-owned memory valid until the next trace_reader_next or trace_reader_close. */
typedef struct trace_record {
  int tag;          /* enum trace_tag */
  uint64_t time_us; /* absolute wall-clock microseconds (session start + offset) */
  uint64_t seq, job, value_size; /* RECOVERED: seq is the recovered last sequence number */
  mf_slice key;     /* user key, or 8 hash bytes when the session hashes keys */
  uint32_t key_size;
  int flags;        /* ops: enum trace_op_flags */
  int kind;         /* job kind or file kind */
  int reason;       /* drop reason or compaction reason */
  int level, output_level;
  int status;       /* JOB_END: 0 ok, else the (positive) error code */
  uint64_t file;    /* FILE_CREATE/DELETE number; DROP/PLACE: blob file; RELOCATE: to */
  uint64_t from_file; /* RELOCATE */
  uint64_t size, entries, smallest_seq, largest_seq; /* FILE_CREATE */
  mf_slice smallest_key, largest_key;                /* FILE_CREATE (user keys or empty) */
  const uint64_t *inputs; /* JOB_START */
  int num_inputs;
} trace_record;

/* Opens path, a trace file of kind which (TRACE_OP_FILE or TRACE_JOB_FILE from
 * trace_writer.h), and reads its session record. The reader borrows env. On MAYFLY_OK *out
 * is a new reader (free with trace_reader_close). Errors: MAYFLY_ENOTFOUND (no such file),
 * MAYFLY_ECORRUPT, MAYFLY_EIO, MAYFLY_ENOMEM. */
int trace_reader_open(mf_env *env, const char *path, int which, trace_reader **out);
const trace_session_info *trace_reader_info(const trace_reader *r);
/* MAYFLY_OK: *rec holds the next record. MAYFLY_ENOTFOUND: end of the file (no message).
 * MAYFLY_ECORRUPT / MAYFLY_EIO: the reader stays failed. */
int trace_reader_next(trace_reader *r, trace_record *rec);
/* Bytes read so far (for progress reports). */
uint64_t trace_reader_offset(const trace_reader *r);
void trace_reader_close(trace_reader *r); /* NULL is OK */

/* The session numbers that have a trace file in dir, ascending, in *out (malloc'd, the caller
 * frees it; NULL when *n is 0). */
int trace_list_sessions(mf_env *env, const char *dir, uint64_t **out, size_t *n);

#endif
