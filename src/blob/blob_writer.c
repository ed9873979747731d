/* Blob file writer (see blob_writer.h; format in blob_format.h).
 *
 * Each record is assembled in one buffer (header, key, stored value) and handed to the env in
 * one append, so the file checksum and the offsets advance only for bytes the env accepted.
 * The whole-file checksum uses xxhash's streaming XXH3 directly: util/checksum.h has no
 * streaming form, and XXH3-64 with seed 0 fed in pieces equals mf_checksum over the
 * concatenation (a test checks it). */
#include "blob/blob_writer.h"

#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "db/options.h"
#include "mayfly.h"
#include "util/coding.h"
#include "util/compress.h"
#include "util/error.h"

struct blob_writer {
  mf_env *env;
  mf_wfile *file; /* not owned */
  char *fname;
  uint64_t file_number;
  int compression;
  int compression_level;
  uint64_t offset; /* bytes written so far */
  uint64_t count;
  uint64_t record_bytes;
  XXH3_state_t *file_hash; /* over every byte written; XXH3_createState aligns it */
  mf_buf record;           /* the record being assembled */
  int finished;
  int status; /* sticky: the first append error */
};

/* Appends n bytes at data to the file and to the file checksum. */
static int write_bytes(blob_writer *w, const void *data, size_t n) {
  int rc = w->env->append(w->file, data, n);
  if (rc != MAYFLY_OK) {
    w->status = rc;
    return rc;
  }
  XXH3_64bits_update(w->file_hash, data, n);
  w->offset += n;
  return MAYFLY_OK;
}

int blob_writer_create(mf_env *env, mf_wfile *file, const char *fname, uint64_t file_number,
                       int compression, int compression_level, blob_writer **out) {
  *out = NULL;
  if (compression != MF_COMPRESSION_NONE && compression != MF_COMPRESSION_LZ4 &&
      compression != MF_COMPRESSION_ZSTD)
    return MF_ERR(MAYFLY_EINVAL, "%s: unknown blob compression %d", fname, compression);
  blob_writer *w = calloc(1, sizeof *w);
  if (!w || !(w->fname = strdup(fname)) || !(w->file_hash = XXH3_createState())) {
    if (w) free(w->fname);
    free(w);
    return MF_ERR(MAYFLY_ENOMEM, "%s: no memory for a blob writer", fname);
  }
  XXH3_64bits_reset(w->file_hash);
  w->env = env;
  w->file = file;
  w->file_number = file_number;
  w->compression = compression;
  w->compression_level = compression_level;

  char header[BLOB_HEADER_SIZE];
  blob_header h = {BLOB_FORMAT_VERSION, compression, file_number};
  blob_header_encode(&h, header);
  int rc = write_bytes(w, header, sizeof header);
  if (rc != MAYFLY_OK) {
    blob_writer_destroy(w);
    return rc;
  }
  *out = w;
  return MAYFLY_OK;
}

/* Appends value's stored form to w->record and returns its compression: the file's type when
 * that saves at least 1/8 (the rule tables use for blocks), else none. */
static int append_stored_value(blob_writer *w, mf_slice value, int *compression) {
  size_t start = w->record.len;
  *compression = MF_COMPRESSION_NONE;
  if (w->compression != MF_COMPRESSION_NONE && value.len <= (size_t)INT32_MAX) {
    int rc = compress_block(w->compression, w->compression_level, value, &w->record);
    if (rc != MAYFLY_OK) return rc;
    if (w->record.len - start <= value.len - value.len / 8) {
      *compression = w->compression;
      return MAYFLY_OK;
    }
    w->record.len = start;
  }
  return mf_buf_append(&w->record, value.data, value.len);
}

int blob_writer_add(blob_writer *w, mf_slice user_key, mf_slice value, blob_index *bi) {
  if (w->status) return w->status;
  if (w->finished)
    return MF_ERR(MAYFLY_EINVAL, "%s: blob record added after finish", w->fname);
  if (user_key.len > UINT32_MAX)
    return MF_ERR(MAYFLY_EINVAL, "%s: key of %zu bytes too large for a blob record", w->fname,
                  user_key.len);

  mf_buf *r = &w->record;
  mf_buf_clear(r);
  int compression;
  int rc = mf_buf_reserve(r, BLOB_RECORD_HEADER_SIZE + user_key.len + value.len);
  if (rc == MAYFLY_OK) {
    r->len = BLOB_RECORD_HEADER_SIZE; /* filled in below, once the payload is known */
    rc = mf_buf_append(r, user_key.data, user_key.len);
  }
  if (rc == MAYFLY_OK) rc = append_stored_value(w, value, &compression);
  if (rc != MAYFLY_OK) return rc;

  size_t stored_len = r->len - BLOB_RECORD_HEADER_SIZE - user_key.len;
  if (stored_len > UINT32_MAX)
    return MF_ERR(MAYFLY_EINVAL, "%s: value of %zu bytes too large for a blob record", w->fname,
                  stored_len);
  blob_record_header_encode(r->data, (uint32_t)user_key.len, (uint32_t)stored_len, compression,
                            r->data + BLOB_RECORD_HEADER_SIZE,
                            r->len - BLOB_RECORD_HEADER_SIZE);

  uint64_t record_offset = w->offset;
  rc = write_bytes(w, r->data, r->len);
  if (rc != MAYFLY_OK) return rc;
  w->count++;
  w->record_bytes += r->len;
  bi->file_number = w->file_number;
  bi->offset = record_offset + BLOB_RECORD_HEADER_SIZE + user_key.len;
  bi->size = stored_len;
  bi->compression = compression;

  /* A 256 MiB value should not pin 256 MiB for the rest of the file. */
  if (r->cap > (1u << 20)) {
    mf_buf_free(r);
  }
  return MAYFLY_OK;
}

int blob_writer_add_record(blob_writer *w, mf_slice record, int compression, blob_index *bi) {
  if (w->status) return w->status;
  if (w->finished)
    return MF_ERR(MAYFLY_EINVAL, "%s: blob record added after finish", w->fname);
  uint64_t key_len = record.len >= BLOB_RECORD_HEADER_SIZE ? decode_fixed32(record.data) : 0;
  uint64_t stored_len = record.len >= BLOB_RECORD_HEADER_SIZE ? decode_fixed32(record.data + 4) : 0;
  if (record.len < BLOB_RECORD_HEADER_SIZE ||
      record.len != BLOB_RECORD_HEADER_SIZE + key_len + stored_len)
    return MF_ERR(MAYFLY_EINVAL, "%s: copied blob record of %zu bytes does not match its header",
                  w->fname, record.len);
  if (compression != MF_COMPRESSION_NONE && compression != w->compression)
    return MF_ERR(MAYFLY_EINVAL, "%s: record compressed with %d copied into a file of %d",
                  w->fname, compression, w->compression);
  uint64_t record_offset = w->offset;
  int rc = write_bytes(w, record.data, record.len);
  if (rc != MAYFLY_OK) return rc;
  w->count++;
  w->record_bytes += record.len;
  bi->file_number = w->file_number;
  bi->offset = record_offset + BLOB_RECORD_HEADER_SIZE + key_len;
  bi->size = stored_len;
  bi->compression = compression;
  return MAYFLY_OK;
}

int blob_writer_finish(blob_writer *w) {
  if (w->status) return w->status;
  if (w->finished) return MF_ERR(MAYFLY_EINVAL, "%s: blob file finished twice", w->fname);
  char footer[BLOB_FOOTER_SIZE];
  blob_footer f = {w->count, w->record_bytes};
  blob_footer_encode(&f, footer);
  int rc = write_bytes(w, footer, sizeof footer);
  if (rc == MAYFLY_OK) w->finished = 1;
  return rc;
}

uint64_t blob_writer_file_size(const blob_writer *w) { return w->offset; }
uint64_t blob_writer_count(const blob_writer *w) { return w->count; }
uint64_t blob_writer_record_bytes(const blob_writer *w) { return w->record_bytes; }

uint32_t blob_writer_file_checksum(const blob_writer *w) {
  return (uint32_t)XXH3_64bits_digest(w->file_hash);
}

void blob_writer_destroy(blob_writer *w) {
  if (!w) return;
  XXH3_freeState(w->file_hash);
  mf_buf_free(&w->record);
  free(w->fname);
  free(w);
}
