/* Blob file reader (see blob_reader.h; format in blob_format.h).
 *
 * The reader trusts nothing it reads and little it is told: the header and footer are
 * checked at open, so that afterwards [BLOB_HEADER_SIZE, records_end) is known to be the
 * record area; every point read then checks that the record it computes from the index lies
 * in that area before reading it, and checks the record's own checksums, lengths and key
 * before returning a byte. The record's compression is part of its header checksum's seed,
 * so an index naming the wrong compression fails there too.
 *
 * When the env can map files, the whole file is mapped at open (blob files never change once
 * written, which is what mapping needs) and a point read checks the record where it lies and
 * copies only the value out: no system call and one copy, where pread costs a call and two.
 * Garbage collection reads every live blob of the files it collects this way. Without
 * mapping (or when the env's limit of mapped files is reached) every read is a pread. */
#include "blob/blob_reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/options.h"
#include "mayfly.h"
#include "util/checksum.h"
#include "util/coding.h"
#include "util/compress.h"
#include "util/error.h"

/* Bytes a scan reads ahead: amortises the env call over many small records. */
#define SCAN_READAHEAD (256u << 10)

struct blob_reader {
  mf_env *env;
  mf_rfile *file;
  char *fname;
  uint64_t file_number;
  uint64_t file_size;
  int compression;      /* the file's, from the header */
  uint64_t records_end; /* first byte of the footer */
  uint64_t record_count;
  uint64_t record_bytes;
  const char *image; /* the whole file, mapped; NULL: reads use pread */
  mf_map *mapping;
};

/* Reads exactly n bytes at offset into buf; a short read means the file is shorter than
 * its header, footer or index claim, which is corruption. what names the part for the
 * message. */
static int read_exact(const blob_reader *r, uint64_t offset, size_t n, void *buf,
                      const char *what) {
  size_t got = 0;
  if (r->image) {
    got = offset > r->file_size ? 0 : r->file_size - offset < n ? r->file_size - offset : n;
    if (got) memcpy(buf, r->image + offset, got);
  }
  int rc = r->image ? MAYFLY_OK : r->env->pread(r->file, offset, n, buf, &got);
  if (rc != MAYFLY_OK) return rc;
  if (got != n)
    return MF_ERR(MAYFLY_ECORRUPT, "%s: %s at offset %llu truncated (%zu of %zu bytes)", r->fname,
                  what, (unsigned long long)offset, got, n);
  return MAYFLY_OK;
}

static int check_header_and_footer(blob_reader *r) {
  if (r->file_size < BLOB_HEADER_SIZE + BLOB_FOOTER_SIZE)
    return MF_ERR(MAYFLY_ECORRUPT, "%s: blob file of %llu bytes is too short", r->fname,
                  (unsigned long long)r->file_size);

  char buf[BLOB_HEADER_SIZE > BLOB_FOOTER_SIZE ? BLOB_HEADER_SIZE : BLOB_FOOTER_SIZE];
  blob_header h;
  int rc = read_exact(r, 0, BLOB_HEADER_SIZE, buf, "blob file header");
  if (!rc) rc = blob_header_decode(buf, r->fname, &h);
  if (rc) return rc;
  if (h.file_number != r->file_number)
    return MF_ERR(MAYFLY_ECORRUPT, "%s: header at offset 16 says file number %llu, expected %llu",
                  r->fname, (unsigned long long)h.file_number,
                  (unsigned long long)r->file_number);
  r->compression = h.compression;

  uint64_t footer_offset = r->file_size - BLOB_FOOTER_SIZE;
  blob_footer f;
  rc = read_exact(r, footer_offset, BLOB_FOOTER_SIZE, buf, "blob file footer");
  if (!rc) rc = blob_footer_decode(buf, r->fname, footer_offset, &f);
  if (rc) return rc;
  /* Records tile the space between header and footer exactly, and each has a 16-byte header. */
  if (f.record_bytes != footer_offset - BLOB_HEADER_SIZE ||
      f.record_count > f.record_bytes / BLOB_RECORD_HEADER_SIZE)
    return MF_ERR(MAYFLY_ECORRUPT,
                  "%s: footer at offset %llu claims %llu records in %llu bytes, but the file "
                  "has %llu record bytes",
                  r->fname, (unsigned long long)footer_offset,
                  (unsigned long long)f.record_count, (unsigned long long)f.record_bytes,
                  (unsigned long long)(footer_offset - BLOB_HEADER_SIZE));
  r->records_end = footer_offset;
  r->record_count = f.record_count;
  r->record_bytes = f.record_bytes;
  return MAYFLY_OK;
}

int blob_reader_open(mf_env *env, mf_rfile *file, const char *fname, uint64_t file_number,
                     uint64_t file_size, blob_reader **out) {
  *out = NULL;
  blob_reader *r = calloc(1, sizeof *r);
  if (!r || !(r->fname = strdup(fname))) {
    free(r);
    env->close_readable(file);
    return MF_ERR(MAYFLY_ENOMEM, "%s: no memory to open blob file", fname);
  }
  r->env = env;
  r->file = file;
  r->file_number = file_number;
  r->file_size = file_size;
  /* A refusal to map (the env's limit, or any failure) is not an error: reads use pread. */
  if (env_has_map(env) && file_size > 0 &&
      env->map_readable(env, file, file_size, &r->image, &r->mapping) != MAYFLY_OK) {
    r->image = NULL;
    r->mapping = NULL;
  }
  int rc = check_header_and_footer(r);
  if (rc) {
    blob_reader_close(r);
    return rc;
  }
  *out = r;
  return MAYFLY_OK;
}

void blob_reader_close(blob_reader *r) {
  if (!r) return;
  if (r->mapping) r->env->unmap(r->env, r->mapping);
  r->env->close_readable(r->file);
  free(r->fname);
  free(r);
}

uint64_t blob_reader_count(const blob_reader *r) { return r->record_count; }
int blob_reader_compression(const blob_reader *r) { return r->compression; }

/* ---- point reads ---- */

/* Checks a record at rec (record_offset in the file) against what the index promised:
 * header checksum for compression c, lengths, payload checksum, key. */
static int check_record(const blob_reader *r, uint64_t record_offset, const char *rec,
                        mf_slice user_key, const blob_index *bi) {
  if (decode_fixed32(rec + 12) != blob_record_header_checksum(rec, bi->compression))
    return MF_ERR(MAYFLY_ECORRUPT,
                  "%s: blob record header checksum mismatch at offset %llu (or the index's "
                  "compression %d is wrong)",
                  r->fname, (unsigned long long)record_offset, bi->compression);
  uint32_t key_len = decode_fixed32(rec), value_len = decode_fixed32(rec + 4);
  if (key_len != user_key.len || value_len != bi->size)
    return MF_ERR(MAYFLY_ECORRUPT,
                  "%s: blob record at offset %llu has key/value lengths %u/%u, the index "
                  "expects %zu/%llu",
                  r->fname, (unsigned long long)record_offset, key_len, value_len, user_key.len,
                  (unsigned long long)bi->size);
  const char *payload = rec + BLOB_RECORD_HEADER_SIZE;
  if (decode_fixed32(rec + 8) != mf_checksum(payload, (size_t)key_len + value_len))
    return MF_ERR(MAYFLY_ECORRUPT, "%s: blob record payload checksum mismatch at offset %llu",
                  r->fname, (unsigned long long)record_offset);
  if (!mf_slice_equal(mf_slice_make(payload, key_len), user_key))
    return MF_ERR(MAYFLY_ECORRUPT, "%s: blob record at offset %llu holds another key", r->fname,
                  (unsigned long long)record_offset);
  return MAYFLY_OK;
}

/* Decompresses the stored bytes of the value bi names into value (which must not hold them). */
static int decompress_value(const blob_reader *r, const blob_index *bi, mf_slice stored,
                            mf_buf *value) {
  mf_buf_clear(value);
  int rc = decompress_block(bi->compression, stored, MAYFLY_MAX_VALUE_SIZE, value);
  if (rc) {
    char inner[256];
    snprintf(inner, sizeof inner, "%s", mf_error_message());
    rc = MF_ERR(rc, "%s: blob value at offset %llu: %s", r->fname,
                (unsigned long long)bi->offset, inner);
  }
  return rc;
}

/* Checks that bi can name a record of r for user_key and finds the record's bytes:
 * [*record_offset, *record_offset + *record_len), inside the record area. */
static int locate_record(const blob_reader *r, mf_slice user_key, const blob_index *bi,
                         uint64_t *record_offset, size_t *record_len) {
  if (bi->file_number != r->file_number)
    return MF_ERR(MAYFLY_ECORRUPT, "%s: blob index names file %llu", r->fname,
                  (unsigned long long)bi->file_number);
  /* The record [record_offset, offset + size) must lie inside the record area; each step is
   * written so that no subtraction underflows and no addition overflows. */
  uint64_t prefix = BLOB_RECORD_HEADER_SIZE + (uint64_t)user_key.len;
  if (bi->offset < BLOB_HEADER_SIZE + prefix || bi->offset > r->records_end ||
      bi->size > r->records_end - bi->offset || bi->size > UINT32_MAX)
    return MF_ERR(MAYFLY_ECORRUPT,
                  "%s: blob index (offset %llu, size %llu, key of %zu bytes) is outside the "
                  "records [%d, %llu)",
                  r->fname, (unsigned long long)bi->offset, (unsigned long long)bi->size,
                  user_key.len, BLOB_HEADER_SIZE, (unsigned long long)r->records_end);
  if (bi->compression != MF_COMPRESSION_NONE && bi->compression != r->compression)
    return MF_ERR(MAYFLY_ECORRUPT, "%s: blob index at offset %llu says compression %d in a file "
                  "compressed with %d", r->fname, (unsigned long long)bi->offset,
                  bi->compression, r->compression);
  *record_offset = bi->offset - prefix;
  *record_len = (size_t)(prefix + bi->size);
  return MAYFLY_OK;
}

int blob_reader_get_record(blob_reader *r, mf_slice user_key, const blob_index *bi,
                           mf_buf *scratch, mf_slice *record) {
  uint64_t record_offset = 0;
  size_t record_len = 0;
  int rc = locate_record(r, user_key, bi, &record_offset, &record_len);
  if (rc) return rc;
  const char *rec = r->image ? r->image + record_offset : NULL;
  if (!rec) {
    mf_buf_clear(scratch);
    rc = mf_buf_reserve(scratch, record_len);
    if (rc)
      return MF_ERR(rc, "%s: no memory for a blob record of %zu bytes", r->fname, record_len);
    rc = read_exact(r, record_offset, record_len, scratch->data, "blob record");
    if (rc) return rc;
    scratch->len = record_len;
    rec = scratch->data;
  }
  rc = check_record(r, record_offset, rec, user_key, bi);
  if (rc == MAYFLY_OK) *record = mf_slice_make(rec, record_len);
  return rc;
}

int blob_reader_get(blob_reader *r, mf_slice user_key, const blob_index *bi, mf_buf *value) {
  uint64_t record_offset = 0;
  size_t record_len = 0;
  int rc = locate_record(r, user_key, bi, &record_offset, &record_len);
  if (rc) return rc;
  uint64_t prefix = BLOB_RECORD_HEADER_SIZE + (uint64_t)user_key.len;

  if (r->image) { /* the record lies inside the record area, checked above */
    const char *rec = r->image + record_offset;
    rc = check_record(r, record_offset, rec, user_key, bi);
    mf_slice stored = mf_slice_make(rec + prefix, (size_t)bi->size);
    if (!rc && bi->compression == MF_COMPRESSION_NONE) {
      if (mf_buf_set(value, stored.data, stored.len))
        rc = MF_ERR(MAYFLY_ENOMEM, "%s: no memory for a blob value of %zu bytes", r->fname,
                    stored.len);
    } else if (!rc) {
      rc = decompress_value(r, bi, stored, value);
    }
    if (rc) mf_buf_clear(value);
    return rc;
  }

  /* A raw value is read straight into value and moved to its front; a compressed one needs
   * the stored bytes and the output apart. */
  int raw = bi->compression == MF_COMPRESSION_NONE;
  mf_buf scratch = MF_BUF_INIT;
  mf_buf *rec = raw ? value : &scratch;
  mf_buf_clear(rec);
  rc = mf_buf_reserve(rec, record_len);
  if (rc) return MF_ERR(rc, "%s: no memory for a blob record of %zu bytes", r->fname, record_len);
  rc = read_exact(r, record_offset, record_len, rec->data, "blob record");
  if (!rc) rc = check_record(r, record_offset, rec->data, user_key, bi);
  if (!rc) {
    const char *stored = rec->data + prefix;
    if (raw) {
      memmove(value->data, stored, (size_t)bi->size);
      value->len = (size_t)bi->size;
    } else {
      rc = decompress_value(r, bi, mf_slice_make(stored, (size_t)bi->size), value);
    }
  }
  mf_buf_free(&scratch);
  if (rc) mf_buf_clear(value);
  return rc;
}

/* ---- scan ---- */

/* A forward window over the record area: scan reads SCAN_READAHEAD bytes (or one record, if
 * larger) per env call. */
typedef struct window {
  mf_buf buf;
  uint64_t start; /* file offset of buf.data[0] */
} window;

/* Makes [offset, offset + n) available in w and returns a pointer to it in *p. The caller
 * has checked that the range ends at or before records_end. */
static int window_get(const blob_reader *r, window *w, uint64_t offset, size_t n,
                      const char **p) {
  if (offset < w->start || offset + n > w->start + w->buf.len) {
    uint64_t want = r->records_end - offset;
    if (want > SCAN_READAHEAD) want = SCAN_READAHEAD;
    if (want < n) want = n;
    mf_buf_clear(&w->buf);
    int rc = mf_buf_reserve(&w->buf, (size_t)want);
    if (rc) return MF_ERR(rc, "%s: no memory to scan %llu bytes", r->fname,
                          (unsigned long long)want);
    rc = read_exact(r, offset, (size_t)want, w->buf.data, "blob records");
    if (rc) return rc;
    w->buf.len = (size_t)want;
    w->start = offset;
  }
  *p = w->buf.data + (offset - w->start);
  return MAYFLY_OK;
}

/* Which compression the record header at rec was written with: none or the file's type,
 * whichever seed its checksum matches; -1 if neither. */
static int record_compression(const blob_reader *r, const char *rec) {
  uint32_t stored = decode_fixed32(rec + 12);
  if (stored == blob_record_header_checksum(rec, MF_COMPRESSION_NONE)) return MF_COMPRESSION_NONE;
  if (r->compression != MF_COMPRESSION_NONE &&
      stored == blob_record_header_checksum(rec, r->compression))
    return r->compression;
  return -1;
}

int blob_reader_scan(blob_reader *r,
                     int (*fn)(void *arg, mf_slice key, const blob_index *bi,
                               mf_slice stored_value),
                     void *arg) {
  window w = {MF_BUF_INIT, 0};
  uint64_t offset = BLOB_HEADER_SIZE, count = 0;
  int rc = MAYFLY_OK;
  while (rc == MAYFLY_OK && offset < r->records_end) {
    const char *rec;
    if (r->records_end - offset < BLOB_RECORD_HEADER_SIZE) {
      rc = MF_ERR(MAYFLY_ECORRUPT, "%s: %llu stray bytes at offset %llu before the footer",
                  r->fname, (unsigned long long)(r->records_end - offset),
                  (unsigned long long)offset);
      break;
    }
    rc = window_get(r, &w, offset, BLOB_RECORD_HEADER_SIZE, &rec);
    if (rc) break;
    int c = record_compression(r, rec);
    if (c < 0) {
      rc = MF_ERR(MAYFLY_ECORRUPT, "%s: blob record header checksum mismatch at offset %llu",
                  r->fname, (unsigned long long)offset);
      break;
    }
    uint64_t key_len = decode_fixed32(rec), value_len = decode_fixed32(rec + 4);
    uint64_t len = BLOB_RECORD_HEADER_SIZE + key_len + value_len;
    if (len > r->records_end - offset) {
      rc = MF_ERR(MAYFLY_ECORRUPT, "%s: blob record at offset %llu of %llu bytes runs past the "
                  "footer at %llu", r->fname, (unsigned long long)offset,
                  (unsigned long long)len, (unsigned long long)r->records_end);
      break;
    }
    rc = window_get(r, &w, offset, (size_t)len, &rec);
    if (rc) break;
    const char *payload = rec + BLOB_RECORD_HEADER_SIZE;
    if (decode_fixed32(rec + 8) != mf_checksum(payload, (size_t)(key_len + value_len))) {
      rc = MF_ERR(MAYFLY_ECORRUPT, "%s: blob record payload checksum mismatch at offset %llu",
                  r->fname, (unsigned long long)offset);
      break;
    }
    blob_index bi = {r->file_number, offset + BLOB_RECORD_HEADER_SIZE + key_len, value_len, c};
    count++;
    offset += len;
    rc = fn(arg, mf_slice_make(payload, (size_t)key_len), &bi,
            mf_slice_make(payload + key_len, (size_t)value_len));
  }
  if (rc == MAYFLY_OK && count != r->record_count)
    rc = MF_ERR(MAYFLY_ECORRUPT, "%s: footer says %llu records, the file holds %llu", r->fname,
                (unsigned long long)r->record_count, (unsigned long long)count);
  mf_buf_free(&w.buf);
  return rc;
}
