/* Writing one blob file, front to back (format: blob/blob_format.h, docs/format/blob.md).
 *
 * The writer appends the header at creation, one record per blob_writer_add, and the footer
 * at blob_writer_finish. It neither syncs nor closes the file: the caller (flush, compaction
 * or blob GC) syncs and closes it, and only then records the file in the MANIFEST and
 * publishes tables whose blob indexes point into it. A file left without its footer (crash,
 * error) is garbage for recovery to delete, never something to read.
 *
 * While writing, the writer keeps the checksum of every byte it has written (the streaming
 * form of mf_checksum over the whole file), so the caller can record it without rereading.
 *
 * Errors are sticky: after a failed append every later call returns the same code, since the
 * file's contents are then unknown. Not thread-safe: one thread writes a file. */
#ifndef MAYFLY_BLOB_BLOB_WRITER_H
#define MAYFLY_BLOB_BLOB_WRITER_H

#include <stdint.h>

#include "blob/blob_format.h"
#include "env/env.h"
#include "util/slice.h"

typedef struct blob_writer blob_writer;

/* Creates a writer for blob file file_number and writes the header to file. Does not own
 * file (it must outlive the writer). fname is copied, for error messages. compression is an
 * enum mf_compression; compression_level is passed to zstd (0 = default). On success *out is
 * owned by the caller (blob_writer_destroy). Errors: MAYFLY_EINVAL (unknown compression),
 * MAYFLY_ENOMEM, or the env's append error. */
int blob_writer_create(mf_env *env, mf_wfile *file, const char *fname, uint64_t file_number,
                       int compression, int compression_level, blob_writer **out);

/* Appends one record: user_key and value (compressed when that saves at least 1/8). Fills *bi
 * with its index (compression none if stored raw). Errors: MAYFLY_EINVAL (key or stored value
 * of 4 GiB or more, or called after finish), MAYFLY_ENOMEM, MAYFLY_EIO from the env or the
 * compressor. */
int blob_writer_add(blob_writer *w, mf_slice user_key, mf_slice value, blob_index *bi);

/* Appends a record exactly as another blob file stores it (blob_reader_get_record, which
 * checked it): header, key and stored value, compressed with compression (none, or this
 * file's compression). Its checksums stay valid, as no byte of a record depends on where it
 * lies, so nothing is recomputed. Fills *bi like blob_writer_add. Errors: MAYFLY_EINVAL (a
 * record whose length disagrees with its header, another compression, or after finish), or
 * the env's append error. */
int blob_writer_add_record(blob_writer *w, mf_slice record, int compression, blob_index *bi);

/* Writes the footer. Does not sync or close the file. Calling it twice is MAYFLY_EINVAL. */
int blob_writer_finish(blob_writer *w);

/* Bytes written so far (the file size once finished). */
uint64_t blob_writer_file_size(const blob_writer *w);
/* Records added so far. */
uint64_t blob_writer_count(const blob_writer *w);
/* Total record bytes so far: sum of blob_record_bytes over the records, as in the footer. */
uint64_t blob_writer_record_bytes(const blob_writer *w);
/* mf_checksum of every byte written so far (of the whole file once finished): the low 32 bits
 * of XXH3-64, seed 0, computed incrementally. */
uint32_t blob_writer_file_checksum(const blob_writer *w);

/* Frees the writer (not the file). NULL is a no-op. */
void blob_writer_destroy(blob_writer *w);

#endif
