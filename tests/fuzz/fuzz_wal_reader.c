/* Fuzz target: the log reader (wal/wal_reader.h), which recovery runs on whatever bytes a
 * crash left in a WAL or MANIFEST.
 *
 * Every input is used three ways:
 *
 * 1. Raw: the input itself is a log file in an in-memory env, read until the end or an
 *    error. Creating the reader gives MAYFLY_OK, MAYFLY_ECORRUPT or MAYFLY_ENOMEM; reads give
 *    records until MAYFLY_ENOTFOUND or MAYFLY_ECORRUPT, which then repeat (sticky); records
 *    fit in the file, their offsets strictly increase, there are at most size/7 of them (each
 *    costs a fragment header), and dropped_bytes never exceeds the file size.
 *
 * 2. Round trip: the input is split into records (lengths up to 128 KiB, so records span
 *    blocks; bytes past the input's end are a fixed pattern), written with wal_writer, and
 *    read back: exactly the same records, the file number, then MAYFLY_ENOTFOUND with no
 *    dropped bytes.
 *
 * 3. Damage: the round-trip file is truncated or has one byte changed (where and how comes
 *    from the input), then read again. Records returned are always a prefix of those
 *    written, byte for byte (checksums must stop damaged data), and every record that ends
 *    before the damage is returned. A truncated file is a torn tail: it ends with
 *    MAYFLY_ENOTFOUND, never MAYFLY_ECORRUPT, unless some record's payload (or the file header's) contains
 *    the image of a valid fragment (then the reader's scan for valid data after the damage
 *    legitimately finds one; see wal_reader.c). A changed byte may end the log early
 *    (MAYFLY_ENOTFOUND) only if it is in the last record: damage followed by intact records
 *    must be reported as corruption. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "util/checksum.h"
#include "util/coding.h"
#include "wal/wal_reader.h"
#include "wal/wal_writer.h"

#define MAX_RECORDS 64

typedef struct written {
  mf_buf rec[MAX_RECORDS];
  uint64_t start[MAX_RECORDS], end[MAX_RECORDS]; /* file offsets around each record */
  int n;
  uint64_t file_number;
  int kind;
} written;

/* Reads the whole log at path. For each record calls check(arg, index, record, offset).
 * Returns the terminal code of the read loop, or the create error. */
typedef void (*record_fn)(void *arg, int index, mf_slice record, uint64_t offset);

static int read_log(mf_env *env, const char *path, int kind, uint64_t size, record_fn fn,
                    void *arg, int *count, uint64_t *file_number, uint64_t *dropped) {
  mf_rfile *f = NULL;
  wal_reader *r = NULL;
  *count = 0;
  *file_number = 0;
  *dropped = 0;
  int rc = env->open_readable(env, path, &f);
  FUZZ_CHECK(rc == MAYFLY_OK, "open_readable(%s): %d", path, rc);
  rc = wal_reader_create(env, f, path, kind, &r);
  if (rc != MAYFLY_OK) {
    FUZZ_CHECK(rc == MAYFLY_ECORRUPT || rc == MAYFLY_ENOMEM, "wal_reader_create returned %d",
               rc);
    FUZZ_CHECK(r == NULL, "wal_reader_create failed but returned a reader");
    env->close_readable(f);
    return rc;
  }
  *file_number = wal_reader_file_number(r);
  uint64_t last_offset = 0;
  mf_slice rec;
  while ((rc = wal_reader_read(r, &rec)) == MAYFLY_OK) {
    uint64_t off = wal_reader_last_record_offset(r);
    FUZZ_CHECK(rec.len <= size, "record of %zu bytes in a %llu-byte file", rec.len,
               (unsigned long long)size);
    FUZZ_CHECK(off < size && off + 7 <= size, "record offset %llu in a %llu-byte file",
               (unsigned long long)off, (unsigned long long)size);
    FUZZ_CHECK(*count == 0 || off > last_offset, "record offsets do not increase (%llu, %llu)",
               (unsigned long long)last_offset, (unsigned long long)off);
    FUZZ_CHECK((uint64_t)*count <= size / WAL_FRAGMENT_HEADER_SIZE,
               "more records than the file can hold");
    if (fn) fn(arg, *count, rec, off);
    last_offset = off;
    (*count)++;
  }
  FUZZ_CHECK(rc == MAYFLY_ENOTFOUND || rc == MAYFLY_ECORRUPT || rc == MAYFLY_ENOMEM,
             "wal_reader_read returned %d", rc);
  if (rc != MAYFLY_ENOMEM) {
    int again = wal_reader_read(r, &rec);
    FUZZ_CHECK(again == rc, "the reader's end state is not sticky: %d then %d", rc, again);
  }
  *dropped = wal_reader_dropped_bytes(r);
  FUZZ_CHECK(*dropped <= size, "dropped %llu bytes of a %llu-byte file",
             (unsigned long long)*dropped, (unsigned long long)size);
  if (rc == MAYFLY_ENOTFOUND && *count > 0)
    FUZZ_CHECK(last_offset + *dropped < size || *dropped == 0,
               "dropped bytes overlap the last record");
  wal_reader_destroy(r);
  env->close_readable(f);
  return rc;
}

/* ---- 1. raw ---- */

static void fuzz_raw(mf_env *env, const uint8_t *data, size_t size) {
  fuzz_write_file(env, "/raw.log", data, size);
  int kind = (size && (data[size - 1] & 1)) ? WAL_KIND_MANIFEST : WAL_KIND_WAL;
  int count;
  uint64_t number, dropped;
  read_log(env, "/raw.log", kind, size, NULL, NULL, &count, &number, &dropped);
}

/* ---- 2. round trip ---- */

static void make_records(fuzz_in *in, written *w) {
  w->file_number = fuzz_u32(in);
  w->kind = (w->file_number & 1) ? WAL_KIND_MANIFEST : WAL_KIND_WAL;
  w->n = fuzz_u8(in) % (MAX_RECORDS + 1);
  for (int i = 0; i < w->n; i++) {
    uint8_t h = fuzz_u8(in);
    size_t len = (h & 0x80) ? (size_t)fuzz_u16(in) * 2 : (size_t)(h & 0x7f);
    mf_slice s = fuzz_take(in, len);
    w->rec[i] = (mf_buf)MF_BUF_INIT;
    if (mf_buf_reserve(&w->rec[i], len + 1)) abort();
    memcpy(w->rec[i].data, s.data, s.len);
    for (size_t j = s.len; j < len; j++) w->rec[i].data[j] = (char)(j * 31 + h);
    w->rec[i].len = len;
  }
}

static void write_records(mf_env *env, const char *path, written *w) {
  mf_wfile *f = NULL;
  wal_writer *wr = NULL;
  uint64_t bytes = 0, total = 0;
  int rc = env->new_writable(env, path, &f);
  FUZZ_CHECK(rc == MAYFLY_OK, "new_writable: %d", rc);
  rc = wal_writer_create(env, f, w->kind, w->file_number, &wr, &bytes);
  FUZZ_CHECK(rc == MAYFLY_OK, "wal_writer_create: %d", rc);
  total += bytes;
  for (int i = 0; i < w->n; i++) {
    w->start[i] = wal_writer_offset(wr);
    rc = wal_writer_add_record(wr, mf_buf_slice(&w->rec[i]), &bytes);
    FUZZ_CHECK(rc == MAYFLY_OK, "wal_writer_add_record: %d", rc);
    total += bytes;
    w->end[i] = wal_writer_offset(wr);
    FUZZ_CHECK(w->end[i] == total, "writer offset %llu but %llu bytes reported written",
               (unsigned long long)w->end[i], (unsigned long long)total);
  }
  wal_writer_destroy(wr);
  rc = env->close_writable(f);
  FUZZ_CHECK(rc == MAYFLY_OK, "close_writable: %d", rc);
  uint64_t size = 0;
  rc = env->file_size(env, path, &size);
  FUZZ_CHECK(rc == MAYFLY_OK && size == total, "file holds %llu bytes, writer wrote %llu",
             (unsigned long long)size, (unsigned long long)total);
}

static void expect_written(void *arg, int index, mf_slice record, uint64_t offset) {
  const written *w = arg;
  FUZZ_CHECK(index < w->n, "read record %d but only %d were written", index, w->n);
  FUZZ_CHECK(mf_slice_equal(record, mf_buf_slice(&w->rec[index])),
             "record %d differs (%zu bytes read, %zu written)", index, record.len,
             w->rec[index].len);
  FUZZ_CHECK(offset >= w->start[index] && offset < w->end[index],
             "record %d reported at offset %llu, written in [%llu, %llu)", index,
             (unsigned long long)offset, (unsigned long long)w->start[index],
             (unsigned long long)w->end[index]);
}

/* ---- 3. damage ---- */

/* Does bytes hold, at any offset, a fragment that the reader would accept? */
static int has_fragment_image(const char *bytes, size_t n) {
  for (size_t q = 0; q + WAL_FRAGMENT_HEADER_SIZE <= n; q++) {
    unsigned type = (unsigned char)bytes[q + 6];
    size_t len = decode_fixed16(bytes + q + 4);
    if (type < WAL_FRAG_FULL || type > WAL_FRAG_LAST) continue;
    if (q + WAL_FRAGMENT_HEADER_SIZE + len > n) continue;
    if (decode_fixed32(bytes + q) ==
        mf_checksum_seeded(type, bytes + q + WAL_FRAGMENT_HEADER_SIZE, len))
      return 1;
  }
  return 0;
}

/* Records wholly before file offset p. */
static int records_before(const written *w, uint64_t p) {
  int k = 0;
  while (k < w->n && w->end[k] <= p) k++;
  return k;
}

static void fuzz_damage(mf_env *env, fuzz_in *in, const written *w) {
  mf_buf file = MF_BUF_INIT;
  if (env_read_file(env, "/rt.log", &file) != MAYFLY_OK) abort();
  uint8_t how = fuzz_u8(in);
  uint32_t where = fuzz_u32(in);
  uint8_t xor_with = fuzz_u8(in) | 1;
  int truncate = how & 1;
  uint64_t p;
  if (truncate) {
    p = where % (file.len + 1);
    file.len = p;
  } else {
    p = where % file.len;
    file.data[p] ^= (char)xor_with;
  }
  fuzz_write_file(env, "/damaged.log", file.data, file.len);
  int count;
  uint64_t number, dropped;
  int rc = read_log(env, "/damaged.log", w->kind, file.len, expect_written, (void *)w, &count,
                    &number, &dropped);
  if (rc == MAYFLY_ENOMEM) goto out;
  int before = records_before(w, p);
  if (rc != MAYFLY_ECORRUPT || p >= 31)
    FUZZ_CHECK(count >= before, "%s at %llu: only %d records read, %d lie before it",
               truncate ? "cut" : "change", (unsigned long long)p, count, before);
  if (truncate) {
    if (rc == MAYFLY_ECORRUPT) {
      char header[WAL_FILE_HEADER_SIZE];
      encode_fixed64(header, WAL_FILE_MAGIC);
      encode_fixed32(header + 8, WAL_FORMAT_VERSION);
      encode_fixed32(header + 12, (uint32_t)w->kind);
      encode_fixed64(header + 16, w->file_number);
      int image = has_fragment_image(header, sizeof header);
      for (int i = 0; i < w->n && !image; i++)
        image = has_fragment_image(w->rec[i].data, w->rec[i].len);
      FUZZ_CHECK(image, "a log cut at %llu (of %llu bytes) reads as corrupt, not torn",
                 (unsigned long long)p, (unsigned long long)w->end[w->n ? w->n - 1 : 0]);
    } else {
      FUZZ_CHECK(count == before, "a log cut at %llu gave %d records, %d lie before the cut",
                 (unsigned long long)p, count, before);
    }
  } else if (rc == MAYFLY_ENOTFOUND) {
    /* Silently losing records is only allowed for damage in the last one. */
    FUZZ_CHECK(count == w->n || (count == w->n - 1 && p >= w->start[w->n - 1]),
               "a byte changed at %llu silently ended the log after %d of %d records",
               (unsigned long long)p, count, w->n);
  }
out:
  mf_buf_free(&file);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mf_env *env = fuzz_mem_env();
  fuzz_raw(env, data, size);

  written w;
  fuzz_in in = fuzz_in_make(data, size);
  make_records(&in, &w);
  write_records(env, "/rt.log", &w);
  uint64_t size_rt = w.n ? w.end[w.n - 1] : 31;
  int count;
  uint64_t number, dropped;
  int rc = read_log(env, "/rt.log", w.kind, size_rt, expect_written, &w, &count, &number,
                    &dropped);
  if (rc != MAYFLY_ENOMEM) {
    FUZZ_CHECK(rc == MAYFLY_ENOTFOUND, "round trip ended with %d after %d of %d records", rc,
               count, w.n);
    FUZZ_CHECK(count == w.n, "round trip read %d of %d records", count, w.n);
    FUZZ_CHECK(number == w.file_number, "file number %llu read back as %llu",
               (unsigned long long)w.file_number, (unsigned long long)number);
    FUZZ_CHECK(dropped == 0, "an intact log dropped %llu bytes", (unsigned long long)dropped);
    fuzz_damage(env, &in, &w);
  }
  for (int i = 0; i < w.n; i++) mf_buf_free(&w.rec[i]);
  env->destroy(env);
  return 0;
}
