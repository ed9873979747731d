/* The lifetime trace analyzer: joins a trace directory's op and job traces on (user key, seq)
 * into the life of every internal key, and writes reports. tools/mayfly_trace.c is the
 * command line; docs/tracing.md explains every column.
 *
 * The life of an internal key (a version: one put or delete, named by its user key and seq):
 *   written      the op record (time, seq);
 *   invalidated  the next write of the same user key (by seq); none = censored;
 *   dropped      the flush or compaction that left it out of its output (DROP record);
 *   reclaimed    when its bytes left the disk: a value dropped at a flush when the flush
 *                ended (it only ever lived in the memtable and the WAL); an inline value
 *                dropped by a compaction when the last input table of that job was deleted;
 *                a blob value when the blob file the dropping job read it from was deleted
 *                (relocations moved it there).
 * Times are wall-clock microseconds; the seq columns map a time to the newest sequence number
 * written by then, so lifetimes can be read in "writes" as well.
 *
 * Everything is in memory: about 150 bytes per version plus the keys. */
#ifndef MAYFLY_TRACE_TRACE_ANALYZE_H
#define MAYFLY_TRACE_TRACE_ANALYZE_H

#include <stddef.h>
#include <stdint.h>

#include "env/env.h"
#include "util/slice.h"

#define TA_NONE UINT64_MAX  /* a time or seq that never happened (censored) */
#define TA_NO_JOB UINT32_MAX

typedef struct ta_version {
  uint64_t seq, written_us, value_size;
  uint64_t invalidated_seq, invalidated_us; /* TA_NONE: never overwritten */
  uint64_t dropped_us, dropped_seq;         /* TA_NONE: never dropped */
  uint64_t reclaimed_us, reclaimed_seq;     /* TA_NONE: not (yet) reclaimed */
  uint64_t blob_file;   /* last blob file known to hold the value; 0 inline/unknown */
  uint64_t write_bytes; /* estimated bytes written for it (see docs/tracing.md) */
  uint32_t key_id, key_size;
  uint32_t drop_job;    /* index into jobs, TA_NO_JOB */
  uint32_t compactions; /* jobs that rewrote it (approximate); UINT32_MAX unknown */
  uint32_t placements, relocations;
  uint32_t reads_after; /* gets that read it as the key's current version */
  uint32_t last_job_counted;
  uint8_t type;         /* TRACE_PUT or TRACE_DELETE */
  uint8_t to_blob;      /* the op said its value goes to a blob file */
  uint8_t drop_reason;  /* enum trace_drop_reason, 0 none */
  uint8_t dropped_blob; /* the dropping job read it as a blob index (blob_file holds it) */
} ta_version;

typedef struct ta_job {
  uint64_t session, id;
  int kind, reason, level, output_level;
  int status; /* JOB_END status, -1 no end record */
  int never_ended; /* no JOB_END by the end of its database's open (a crash may have lost
                      it with the trace's last buffer: the outcome is unknown) */
  uint64_t start_us, end_us; /* TA_NONE unknown */
  uint64_t *inputs;
  int num_inputs;
  uint64_t dropped, dropped_bytes, relocated, relocated_bytes, placed, placed_bytes;
  uint64_t files_created, bytes_created;
  uint64_t garbage_at_start, garbage_bytes_at_start; /* invalidated, not yet dropped */
} ta_job;

typedef struct ta_file {
  uint64_t number;
  int kind, level;
  uint64_t size, entries, smallest_seq, largest_seq;
  uint64_t created_us, deleted_us; /* TA_NONE unknown */
  uint32_t job;                    /* creating job, TA_NO_JOB */
  int has_range;                   /* smallest/largest user keys known */
  size_t lo_off, hi_off;           /* into the analysis' key bytes */
  uint32_t lo_len, hi_len;
} ta_file;

typedef struct ta_key {
  size_t off; /* into key_bytes */
  uint32_t len;
  uint32_t key_size; /* the real user key length */
  uint32_t first, count; /* range of by_key */
} ta_key;

typedef struct trace_analysis {
  int key_hash, gets;        /* of the first session; mixed_modes if sessions differ */
  int mixed_modes;
  size_t num_sessions;
  uint64_t first_us, last_us;
  ta_version *v;             /* sorted by seq */
  size_t nv;
  ta_key *keys;
  size_t nkeys;
  mf_buf key_bytes;
  uint32_t *by_key;          /* version indices sorted by (key, seq) */
  ta_job *jobs;
  size_t njobs;
  ta_file *files;
  size_t nfiles;
  /* counts */
  uint64_t records, puts, deletes, gets_count, drops, placements, relocations;
  uint64_t untraced_drops;   /* drops of versions written while tracing was off */
  uint64_t untraced_blob_moves;
  uint64_t duplicate_seqs;
  uint64_t drops_by_reason[5];
  /* drops, placements, relocations and file creations of jobs that ended in failure: they
   * installed nothing, so they are left out of the lives */
  uint64_t undone_job_records;
  /* drops by a job that never ended, replaced by a later job's drop of the same version */
  uint64_t redone_drops;
  /* sessions whose wall-clock start is before a time already seen in an earlier session (the
   * clock was set back): intervals across that reopen are unreliable (a negative one is
   * reported as 0) */
  uint64_t clock_steps_back;
  /* writes traced in a session that ended in a crash and not recovered (their sequence
   * numbers were above the next session's recovered last sequence): left out */
  uint64_t lost_writes;
  /* gets traced in such a session at a sequence number above the recovered one: they read a
   * state that included lost writes, and their sequence number is given again to other
   * writes, so which version they read is unknown: left out (not in gets_count) */
  uint64_t lost_gets;
} trace_analysis;

/* Called now and then while loading: what is being done, done out of total (bytes or items;
 * total may be 0 when unknown). */
typedef void (*trace_progress_fn)(void *arg, const char *what, uint64_t done, uint64_t total);

/* Reads every session in dir (through env) and computes the lives of all versions. On
 * MAYFLY_OK *out is a new analysis (free with trace_analysis_free). Errors: the env's,
 * MAYFLY_ECORRUPT (a damaged trace; the message names file and offset), MAYFLY_ENOTFOUND (no
 * trace files in dir), MAYFLY_ENOMEM. progress may be NULL. */
int trace_analyze(mf_env *env, const char *dir, trace_progress_fn progress, void *arg,
                  trace_analysis **out);
void trace_analysis_free(trace_analysis *a); /* NULL is OK */

/* The key of version or key id as text: hex of the user key, or the hash as 16 hex digits.
 * Writes at most n bytes including the NUL: a key longer than (n - 1) / 2 bytes is cut, so
 * callers that need keys whole give 2 * the longest key + 1. */
void trace_key_text(const trace_analysis *a, uint32_t key_id, char *buf, size_t n);

/* ---- reports (trace_report.c) ---- */

/* Writes into out_dir (created if missing) versions.csv, keys.csv, jobs.csv,
 * amplification.tsv, lifetimes_hist.tsv, lifetimes_cdf.tsv, summary.txt and plots.gp. */
int trace_report_write(const trace_analysis *a, mf_env *env, const char *out_dir);
/* The summary table (also summary.txt) appended to out. */
int trace_report_summary(const trace_analysis *a, mf_buf *out);
/* One row per write, for training lifetime models (docs/tracing.md lists the columns). */
int trace_export_training(const trace_analysis *a, mf_env *env, const char *path);

#endif
