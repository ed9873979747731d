/* Reading one finished blob file (format: blob/blob_format.h, docs/format/blob.md).
 *
 * blob_reader_open checks the header and the footer once; after that a point read is one
 * pread of the record (header, key and stored value together) and a scan reads the records
 * in file order. Every byte returned has passed its checksum, and a point read also checks
 * that the record holds the key and size the blob index promised, so a stale or damaged
 * index surfaces as MAYFLY_ECORRUPT, never as another key's value.
 *
 * Thread safety: after open, blob_reader_get, blob_reader_scan and blob_reader_count may be
 * called concurrently (the reader is immutable; reads are positional). blob_reader_close
 * requires that nothing else uses the reader. */
#ifndef MAYFLY_BLOB_BLOB_READER_H
#define MAYFLY_BLOB_BLOB_READER_H

#include <stdint.h>

#include "blob/blob_format.h"
#include "env/env.h"
#include "util/slice.h"

typedef struct blob_reader blob_reader;

/* Opens blob file file_number of file_size bytes. Takes ownership of file on success and on
 * failure (closes it with env->close_readable). fname is copied and names the file in every
 * error. Checks the header (magic, checksum, version, compression, reserved bytes, file
 * number == file_number) and the footer (magic, checksum, record bytes = file size minus
 * header and footer, count consistent with the bytes). A file without a valid footer is
 * MAYFLY_ECORRUPT (blob files are referenced only once finished and synced). On success *out
 * is owned by the caller (blob_reader_close). Errors: MAYFLY_ECORRUPT, MAYFLY_EIO from the env,
 * MAYFLY_ENOMEM. */
int blob_reader_open(mf_env *env, mf_rfile *file, const char *fname, uint64_t file_number,
                     uint64_t file_size, blob_reader **out);

/* Closes the file and frees r. NULL is a no-op. */
void blob_reader_close(blob_reader *r);

/* Reads the record bi points to, checks both checksums, that its key is user_key and its
 * stored size is bi->size, decompresses it as bi->compression says, and sets *value to the
 * value (mf_buf_set semantics: previous contents replaced; the caller keeps owning value).
 * Any mismatch, an index of another file, or an offset outside the records: MAYFLY_ECORRUPT
 * naming the file and offset (value's contents are then unspecified). MAYFLY_EIO, ENOMEM. */
int blob_reader_get(blob_reader *r, mf_slice user_key, const blob_index *bi, mf_buf *value);

/* Like blob_reader_get, with the same checks, but returns the whole record as stored (header,
 * key, stored value; still compressed if it was) in *record, to be copied into another blob
 * file as it is. *record points into the file's mapping (valid while r is open) or into
 * scratch (valid until scratch changes). Errors as blob_reader_get. */
int blob_reader_get_record(blob_reader *r, mf_slice user_key, const blob_index *bi,
                           mf_buf *scratch, mf_slice *record);

/* Reads every record in file order, checking both checksums and that the records tile the
 * file exactly as the footer says, and calls fn(arg, key, index, stored value) for each: the
 * index is the one blob_writer_add returned for the record; stored value is the bytes as
 * stored (compressed when index->compression says so). key, index and stored value are
 * valid only during the call. Stops at fn's first non-MAYFLY_OK return and returns it.
 * Returns MAYFLY_OK after the last record, or MAYFLY_ECORRUPT (naming the file and offset),
 * MAYFLY_EIO, MAYFLY_ENOMEM. */
int blob_reader_scan(blob_reader *r,
                     int (*fn)(void *arg, mf_slice key, const blob_index *bi,
                               mf_slice stored_value),
                     void *arg);

/* The footer's record count. */
uint64_t blob_reader_count(const blob_reader *r);
/* The file's compression type (enum mf_compression) from its header. */
int blob_reader_compression(const blob_reader *r);

#endif
