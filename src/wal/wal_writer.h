/* Appends records to a log file (the WAL or a MANIFEST) in the block format of wal_format.h
 * (byte-by-byte description: docs/format/log.md).
 *
 * The writer only appends: it never flushes or syncs. Durability is the caller's policy
 * (env->flush after a write batch, env->sync when the options ask for it), so one writer
 * serves both the WAL (sync optional) and the MANIFEST (always synced before CURRENT moves).
 *
 * Not thread-safe: the caller serialises calls (the DB write path holds the writer lock). */
#ifndef MAYFLY_WAL_WAL_WRITER_H
#define MAYFLY_WAL_WAL_WRITER_H

#include <stdint.h>

#include "env/env.h"
#include "util/slice.h"
#include "wal/wal_format.h"

typedef struct wal_writer wal_writer;

/* Starts a log on a freshly created (empty) file and appends the file header record.
 * kind is a wal_file_kind. The writer borrows env and file: it does not own file, and the
 * caller closes file only after wal_writer_destroy. On MAYFLY_OK *out is a new writer (free
 * with wal_writer_destroy) and *bytes_written (may be NULL) is the number of bytes appended.
 * Errors: MAYFLY_EINVAL (bad kind), MAYFLY_ENOMEM, or the env's append error (no writer is
 * returned then). */
int wal_writer_create(mf_env *env, mf_wfile *file, int kind, uint64_t file_number,
                      wal_writer **out, uint64_t *bytes_written);

/* Appends one record of any length (0 included), fragmenting it across blocks as needed.
 * record is only read during the call. Does not flush or sync. On MAYFLY_OK *bytes_written
 * (may be NULL) is the number of bytes appended, fragment headers and block trailer padding
 * included; on error it is 0.
 * After an append error the file may hold part of the record, so the writer refuses every
 * later call with the same code: the log must be abandoned (the caller switches to a new
 * file, and the reader treats the partial record as a torn tail). */
int wal_writer_add_record(wal_writer *w, mf_slice record, uint64_t *bytes_written);

/* Bytes in the file so far (including the header record and everything appended, flushed or
 * not). */
uint64_t wal_writer_offset(const wal_writer *w);

/* Frees the writer. Does not close, flush or sync the file. NULL is allowed. */
void wal_writer_destroy(wal_writer *w);

#endif
