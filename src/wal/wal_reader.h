/* Reads records back from a log file (the WAL or a MANIFEST) written by wal_writer.
 * Format: wal_format.h and docs/format/log.md (which also describes how the reader tells a
 * torn tail from corruption).
 *
 * Not thread-safe: one reader is used by one thread (recovery). */
#ifndef MAYFLY_WAL_WAL_READER_H
#define MAYFLY_WAL_WAL_READER_H

#include <stdint.h>

#include "env/env.h"
#include "util/slice.h"
#include "wal/wal_format.h"

typedef struct wal_reader wal_reader;

/* Opens a reader on file and checks the file header record. kind is the wal_file_kind the
 * caller expects. The reader borrows env and file (it reads with env->pread, in 32 KiB
 * blocks) and does not own file: close it after wal_reader_destroy. name is copied and used
 * in error messages.
 * On MAYFLY_OK *out is a new reader (free with wal_reader_destroy). A file too short to hold
 * a complete header record, or whose header is torn (see wal_reader_read), is an empty log:
 * the reader is created, wal_reader_file_number returns 0 and the first read returns
 * MAYFLY_ENOTFOUND.
 * Errors (no reader is returned): MAYFLY_ECORRUPT (wrong magic, version or kind, a header
 * that is not a 24-byte FULL record at offset 0, or a damaged header followed by valid data),
 * MAYFLY_EIO (read failure), MAYFLY_EINVAL (bad kind), MAYFLY_ENOMEM. */
int wal_reader_create(mf_env *env, mf_rfile *file, const char *name, int kind,
                      wal_reader **out);

/* Reads the next record.
 *  MAYFLY_OK: *record points into reader-owned memory, valid until the next call on r or
 *    wal_reader_destroy.
 *  MAYFLY_ENOTFOUND: end of the log (not an error; no message is recorded). That includes a
 *    torn tail: the file ends inside a fragment header or payload, the rest of the file is
 *    zeros or other bytes containing no valid fragment, or a FIRST/MIDDLE chain is cut off
 *    by the end of the file. wal_reader_dropped_bytes tells how many bytes were ignored.
 *    Every later call returns MAYFLY_ENOTFOUND again.
 *  MAYFLY_ECORRUPT: a bad fragment (checksum mismatch, impossible length, unknown type) with
 *    at least one valid fragment somewhere after it, or a valid fragment that breaks the
 *    FULL | FIRST MIDDLE* LAST sequence. The message names the file and the byte offset of
 *    the bad fragment. The reader stays failed: every later call returns MAYFLY_ECORRUPT.
 *    Records returned before it are good; keeping them (point-in-time recovery) or refusing
 *    to open (absolute consistency) is the caller's policy.
 *  MAYFLY_EIO: read failure (the reader stays failed). */
int wal_reader_read(wal_reader *r, mf_slice *record);

/* File offset of the first fragment of the record last returned by wal_reader_read (0 before
 * any record is returned). */
uint64_t wal_reader_last_record_offset(const wal_reader *r);

/* Bytes at the end of the file that belong to no complete record: the file size minus the
 * end offset of the last complete record (the header record counts). 0 until the reader has
 * reached the end of the log, and 0 for a log that ends exactly after its last record. */
uint64_t wal_reader_dropped_bytes(const wal_reader *r);

/* The file number stored in the header, or 0 for an empty (headerless) log. */
uint64_t wal_reader_file_number(const wal_reader *r);

/* Frees the reader and every record it returned. Does not close the file. NULL is allowed. */
void wal_reader_destroy(wal_reader *r);

#endif
