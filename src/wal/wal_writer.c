/* Log writer: cuts records into fragments that never cross a 32 KiB block boundary.
 * Format: wal_format.h and docs/format/log.md.
 *
 * The only state is the file offset; the position inside the current block is derived from
 * it. Before each fragment, if fewer than WAL_FRAGMENT_HEADER_SIZE bytes remain in the block,
 * they are zero-filled and the fragment starts the next block. When exactly 7 bytes remain,
 * a fragment with an empty payload is written there (a FULL record of length 0, or the FIRST
 * fragment of a longer record): this keeps the rule "every block starts with a fragment"
 * without special cases in the reader.
 *
 * Crash story: the writer appends, the caller flushes and syncs. A crash can leave any prefix
 * of the appended bytes (or, on a file system without ordered data writes, garbage or zeros
 * after the last synced byte); the reader classifies that as a torn tail. */
#include "wal/wal_writer.h"

#include <stdlib.h>

#include "mayfly.h"
#include "util/checksum.h"
#include "util/coding.h"
#include "util/error.h"

struct wal_writer {
  mf_env *env;
  mf_wfile *file;
  uint64_t offset; /* bytes appended so far, header record included */
  int failed;      /* the first append error; later calls return it */
};

static int append(wal_writer *w, const void *data, size_t n) {
  if (n == 0) return MAYFLY_OK;
  int rc = w->env->append(w->file, data, n);
  if (rc != MAYFLY_OK) {
    w->failed = rc;
    return rc;
  }
  w->offset += n;
  return MAYFLY_OK;
}

static int emit_fragment(wal_writer *w, int type, const char *payload, size_t len) {
  char header[WAL_FRAGMENT_HEADER_SIZE];
  encode_fixed32(header, mf_checksum_seeded((uint64_t)type, payload, len));
  encode_fixed16(header + 4, (uint16_t)len);
  header[6] = (char)type;
  int rc = append(w, header, sizeof header);
  if (rc == MAYFLY_OK) rc = append(w, payload, len);
  return rc;
}

static int add_record(wal_writer *w, mf_slice record) {
  static const char zeros[WAL_FRAGMENT_HEADER_SIZE];
  const char *p = record.data;
  size_t left = record.len;
  int first = 1;
  int rc = MAYFLY_OK;
  /* do-while: an empty record still produces one (empty FULL) fragment. */
  do {
    size_t block_left = WAL_BLOCK_SIZE - (size_t)(w->offset % WAL_BLOCK_SIZE);
    if (block_left < WAL_FRAGMENT_HEADER_SIZE) {
      rc = append(w, zeros, block_left);
      if (rc != MAYFLY_OK) return rc;
      block_left = WAL_BLOCK_SIZE;
    }
    size_t room = block_left - WAL_FRAGMENT_HEADER_SIZE;
    size_t len = left < room ? left : room;
    int last = (len == left);
    int type = first ? (last ? WAL_FRAG_FULL : WAL_FRAG_FIRST)
                     : (last ? WAL_FRAG_LAST : WAL_FRAG_MIDDLE);
    rc = emit_fragment(w, type, p, len);
    if (len) p += len; /* p may be NULL for an empty record */
    left -= len;
    first = 0;
  } while (rc == MAYFLY_OK && left > 0);
  return rc;
}

int wal_writer_create(mf_env *env, mf_wfile *file, int kind, uint64_t file_number,
                      wal_writer **out, uint64_t *bytes_written) {
  *out = NULL;
  if (bytes_written) *bytes_written = 0;
  if (!WAL_KIND_VALID(kind))
    return MF_ERR(MAYFLY_EINVAL, "log writer: unknown file kind %d for log file %llu", kind,
                  (unsigned long long)file_number);
  wal_writer *w = calloc(1, sizeof *w);
  if (!w) return MF_ERR(MAYFLY_ENOMEM, "log writer for file %llu: out of memory",
                        (unsigned long long)file_number);
  w->env = env;
  w->file = file;

  char header[WAL_FILE_HEADER_SIZE];
  encode_fixed64(header, WAL_FILE_MAGIC);
  encode_fixed32(header + 8, WAL_FORMAT_VERSION);
  encode_fixed32(header + 12, (uint32_t)kind);
  encode_fixed64(header + 16, file_number);
  int rc = add_record(w, mf_slice_make(header, sizeof header));
  if (rc != MAYFLY_OK) {
    free(w);
    return rc;
  }
  if (bytes_written) *bytes_written = w->offset;
  *out = w;
  return MAYFLY_OK;
}

int wal_writer_add_record(wal_writer *w, mf_slice record, uint64_t *bytes_written) {
  if (bytes_written) *bytes_written = 0;
  if (w->failed)
    return MF_ERR(w->failed, "log writer: an earlier append failed at offset %llu; the log "
                  "must be abandoned", (unsigned long long)w->offset);
  uint64_t start = w->offset;
  int rc = add_record(w, record);
  if (rc != MAYFLY_OK) return rc;
  if (bytes_written) *bytes_written = w->offset - start;
  return MAYFLY_OK;
}

uint64_t wal_writer_offset(const wal_writer *w) { return w->offset; }

void wal_writer_destroy(wal_writer *w) { free(w); }
