/* Log reader: reassembles records from fragments and decides, when something is wrong,
 * whether the log merely ends early (a torn tail) or is corrupt.
 * Format: wal_format.h and docs/format/log.md.
 *
 * Two layers. next_fragment() walks the file one 32 KiB block at a time (held in r->block)
 * and returns the next fragment whose header and checksum are sound, skipping block
 * trailers. read_record() strings fragments into records: FULL alone, or FIRST MIDDLE* LAST
 * copied into r->record.
 *
 * Torn tail or corruption? After a crash the end of a log may hold any prefix of what was
 * appended, followed by garbage or zeros where the file system had allocated space but not
 * written the data. None of that is corruption: the records in it were never acknowledged as
 * durable, and recovery must simply stop there. Damage *before* acknowledged data is
 * corruption. The reader cannot see acknowledgements, but it can see whether anything valid
 * follows the damage: when it meets a bad fragment (checksum mismatch, unknown type, a length
 * that crosses the block or the end of the file) it looks for a fragment whose checksum
 * validates anywhere after it (scan_for_valid_fragment): at every byte offset of the rest of
 * the damaged block, whose fragment boundaries the damage may have hidden, and at the start
 * of every later block, where the writer always begins a fragment (a record never leaves a
 * block without one at offset 0, since a block's tail too short for a header is padding and
 * the next fragment starts the next block). So the scan costs one block's worth of checks
 * plus one check per later block, never a check at every offset of a long file. None found:
 * torn tail, clean end, the ignored bytes are counted in dropped_bytes. One found:
 * MAYFLY_ECORRUPT at the bad fragment's offset. Zero bytes never validate (type 0 is unknown),
 * so a zero-filled tail is a torn tail without special handling. The scan is only paid on the
 * damaged path and stops at the first valid fragment, which is usually the next block start.
 *
 * A checksum-valid fragment that breaks the FULL | FIRST MIDDLE* LAST grammar is always
 * corruption: a crash cannot produce a valid fragment out of order in a freshly created file.
 * A FIRST/MIDDLE chain cut off by the end of the file is a torn tail.
 *
 * Memory: r->block (one block) and r->record (the largest fragmented record seen) are owned
 * by the reader; records returned point into one of them until the next call. */
#include "wal/wal_reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mayfly.h"
#include "util/checksum.h"
#include "util/coding.h"
#include "util/error.h"

enum reader_state { READING = 0, ENDED = 1, FAILED = 2 };

/* next_fragment results besides negative error codes. */
enum { FRAG_OK = 0, FRAG_END = 1, FRAG_BAD = 2 };

struct wal_reader {
  mf_env *env;
  mf_rfile *file;
  char *name;
  char *block;          /* WAL_BLOCK_SIZE bytes */
  uint64_t block_start; /* file offset of block[0] */
  size_t block_len;     /* bytes of the block present in the file (< size only at the end) */
  size_t pos;           /* next unread byte in block */
  mf_buf record;        /* reassembled fragmented record */

  int state;
  int fail_code;
  uint64_t fail_offset;
  uint64_t last_record_offset;
  uint64_t good_end; /* file offset just past the last complete record */
  size_t scan_from;  /* after FRAG_BAD: the block offset where the search for valid data starts */
  uint64_t dropped;
  uint64_t file_number;
};

static int load_block(wal_reader *r, uint64_t start) {
  size_t got = 0;
  int rc = r->env->pread(r->file, start, WAL_BLOCK_SIZE, r->block, &got);
  if (rc != MAYFLY_OK) return rc;
  r->block_start = start;
  r->block_len = got;
  r->pos = 0;
  return MAYFLY_OK;
}

/* Does a well-formed fragment with a valid checksum start at block[q]? Only the bytes present
 * in the block count, so a fragment running past the end of the file does not validate. */
static int fragment_valid_at(const char *block, size_t n, size_t q) {
  if (q + WAL_FRAGMENT_HEADER_SIZE > n) return 0;
  unsigned type = (unsigned char)block[q + 6];
  if (type < WAL_FRAG_FULL || type > WAL_FRAG_LAST) return 0;
  size_t len = decode_fixed16(block + q + 4);
  if (q + WAL_FRAGMENT_HEADER_SIZE + len > n) return 0;
  const char *payload = block + q + WAL_FRAGMENT_HEADER_SIZE;
  return decode_fixed32(block + q) == mf_checksum_seeded(type, payload, len);
}

/* The fragment at r->pos has a sound header (type 1..4, within its block) of payload length
 * len, but its payload fails its checksum or runs past the end of the file. Was its length
 * field enlarged? Then its checksum matches a shorter payload, and a whole valid fragment
 * (the next record written after it) starts right there. Returns that block offset, or 0.
 * Only that pattern counts as data inside the fragment's extent: its own bytes are a
 * record's contents (a user's value), which may hold anything, valid fragments included,
 * so finding one there proves nothing; a torn write cannot produce the pattern, since the
 * stored checksum covers the whole payload that was cut (a chance match is one in 2^32 per
 * candidate). What follows that next fragment is not required to be whole: the same crash
 * may have torn the file's last record. */
static size_t damaged_length_end(const wal_reader *r, size_t len) {
  const char *h = r->block + r->pos;
  unsigned type = (unsigned char)h[6];
  uint32_t stored = decode_fixed32(h);
  size_t payload = r->pos + WAL_FRAGMENT_HEADER_SIZE;
  for (size_t q = payload; q < r->block_len && q < payload + len; q++) {
    if (!fragment_valid_at(r->block, r->block_len, q)) continue;
    if (mf_checksum_seeded(type, h + WAL_FRAGMENT_HEADER_SIZE, q - payload) == stored) return q;
  }
  return 0;
}

/* Looks for a valid fragment after a bad one: at every offset of the current block from
 * `from` on, then at offset 0 of each later block, to the end of the file. Clobbers r->block
 * (the caller is done with it: the log ends or fails either way). *file_end gets the file
 * size when nothing is found. */
static int scan_for_valid_fragment(wal_reader *r, size_t from, int *found, uint64_t *file_end) {
  *found = 0;
  for (size_t q = from; q + WAL_FRAGMENT_HEADER_SIZE <= r->block_len; q++) {
    if (fragment_valid_at(r->block, r->block_len, q)) {
      *found = 1;
      return MAYFLY_OK;
    }
  }
  while (r->block_len == WAL_BLOCK_SIZE) {
    int rc = load_block(r, r->block_start + WAL_BLOCK_SIZE);
    if (rc != MAYFLY_OK) return rc;
    if (fragment_valid_at(r->block, r->block_len, 0)) {
      *found = 1;
      return MAYFLY_OK;
    }
  }
  *file_end = r->block_start + r->block_len;
  return MAYFLY_OK;
}

static int fail(wal_reader *r, int code, uint64_t offset) {
  r->state = FAILED;
  r->fail_code = code;
  r->fail_offset = offset;
  return code;
}

static int end_of_log(wal_reader *r, uint64_t file_end) {
  r->state = ENDED;
  r->dropped = file_end > r->good_end ? file_end - r->good_end : 0;
  return MAYFLY_ENOTFOUND;
}

/* The fragment at the current position is bad for `reason`: torn tail or corruption,
 * depending on whether a valid fragment follows. The search starts at r->scan_from: past the
 * fragment's own bytes when its header is sound, since those bytes are a record's contents
 * (a user's value), which may hold anything, valid fragments included. */
static int bad_fragment(wal_reader *r, const char *reason) {
  uint64_t offset = r->block_start + r->pos;
  int found = 0;
  uint64_t file_end = 0;
  int rc = scan_for_valid_fragment(r, r->scan_from, &found, &file_end);
  if (rc != MAYFLY_OK) return fail(r, rc, offset);
  if (!found) return end_of_log(r, file_end);
  return fail(r, MF_ERR(MAYFLY_ECORRUPT, "%s: corrupt log: %s at offset %llu, with valid data "
                        "after it", r->name, reason, (unsigned long long)offset),
              offset);
}

/* Next sound fragment. FRAG_OK: *type, *payload (into r->block) and *offset are set.
 * FRAG_END: the file ends here, or inside the fragment starting here (a torn write);
 * r->block_start + r->block_len is its size.
 * FRAG_BAD: the fragment at r->block + r->pos is damaged; *reason says how, and
 * r->scan_from where to look for valid data after it: the next byte when the header itself
 * is unsound (its length cannot be trusted), the end of its true payload when its length was
 * enlarged (damaged_length_end), else the end of the fragment. A header cut by
 * a torn write (one straddling a page boundary) that leaves a valid fragment inside the
 * bytes after it still reads as corruption; that needs a page of the record to reach the
 * disk while the page before it did not. */
static int next_fragment(wal_reader *r, int *type, mf_slice *payload, uint64_t *offset,
                         char *reason, size_t reason_size) {
  for (;;) {
    if (r->pos + WAL_FRAGMENT_HEADER_SIZE > r->block_len) {
      /* A short block is the last one: the file ends here (possibly inside a header). */
      if (r->block_len < WAL_BLOCK_SIZE) return FRAG_END;
      /* Otherwise the rest is the zero trailer; the next fragment starts the next block. */
      int rc = load_block(r, r->block_start + WAL_BLOCK_SIZE);
      if (rc != MAYFLY_OK) return rc;
      continue;
    }
    const char *h = r->block + r->pos;
    unsigned t = (unsigned char)h[6];
    size_t len = decode_fixed16(h + 4);
    if (t < WAL_FRAG_FULL || t > WAL_FRAG_LAST) {
      snprintf(reason, reason_size, "unknown fragment type %u", t);
      r->scan_from = r->pos + 1;
      return FRAG_BAD;
    }
    if (r->pos + WAL_FRAGMENT_HEADER_SIZE + len > WAL_BLOCK_SIZE) {
      snprintf(reason, reason_size, "fragment length %zu crosses the block boundary", len);
      r->scan_from = r->pos + 1;
      return FRAG_BAD;
    }
    /* Only the last block is short, so a fragment that fits its block but not the file is
     * one the writer died writing, unless its length field is what is damaged. */
    int past_end = r->pos + WAL_FRAGMENT_HEADER_SIZE + len > r->block_len;
    if (past_end ||
        decode_fixed32(h) != mf_checksum_seeded(t, h + WAL_FRAGMENT_HEADER_SIZE, len)) {
      size_t next = damaged_length_end(r, len);
      if (next != 0) {
        snprintf(reason, reason_size,
                 "fragment length %zu is damaged (its checksum matches %zu bytes)", len,
                 next - r->pos - WAL_FRAGMENT_HEADER_SIZE);
        r->scan_from = next;
        return FRAG_BAD;
      }
      if (past_end) return FRAG_END;
      snprintf(reason, reason_size, "fragment checksum mismatch");
      r->scan_from = r->pos + WAL_FRAGMENT_HEADER_SIZE + len;
      return FRAG_BAD;
    }
    *type = (int)t;
    *payload = mf_slice_make(h + WAL_FRAGMENT_HEADER_SIZE, len);
    *offset = r->block_start + r->pos;
    r->pos += WAL_FRAGMENT_HEADER_SIZE + len;
    return FRAG_OK;
  }
}

static const char *type_name(int type) {
  switch (type) {
    case WAL_FRAG_FULL: return "FULL";
    case WAL_FRAG_FIRST: return "FIRST";
    case WAL_FRAG_MIDDLE: return "MIDDLE";
    default: return "LAST";
  }
}

static int broken_sequence(wal_reader *r, int type, uint64_t offset, int in_record) {
  return fail(r, MF_ERR(MAYFLY_ECORRUPT, "%s: corrupt log: %s fragment at offset %llu %s",
                        r->name, type_name(type), (unsigned long long)offset,
                        in_record ? "inside an unfinished fragmented record"
                                  : "without a preceding FIRST fragment"),
              offset);
}

/* Reads the next record into *record; *was_full tells whether it was a single fragment. */
static int read_record(wal_reader *r, mf_slice *record, int *was_full) {
  if (r->state == ENDED) return MAYFLY_ENOTFOUND;
  if (r->state == FAILED)
    return MF_ERR(r->fail_code, "%s: log reader already failed at offset %llu", r->name,
                  (unsigned long long)r->fail_offset);
  int in_record = 0;
  uint64_t record_offset = 0;
  for (;;) {
    int type = 0;
    mf_slice payload;
    uint64_t offset = 0;
    char reason[160];
    int rc = next_fragment(r, &type, &payload, &offset, reason, sizeof reason);
    if (rc == FRAG_END) return end_of_log(r, r->block_start + r->block_len);
    if (rc == FRAG_BAD) return bad_fragment(r, reason);
    if (rc != MAYFLY_OK) return fail(r, rc, r->block_start + r->pos);

    int starts = (type == WAL_FRAG_FULL || type == WAL_FRAG_FIRST);
    if (starts == in_record) return broken_sequence(r, type, offset, in_record);
    if (type == WAL_FRAG_FULL) {
      *record = payload;
      *was_full = 1;
      r->last_record_offset = offset;
      r->good_end = r->block_start + r->pos;
      return MAYFLY_OK;
    }
    if (type == WAL_FRAG_FIRST) {
      in_record = 1;
      record_offset = offset;
      mf_buf_clear(&r->record);
    }
    if (mf_buf_append(&r->record, payload.data, payload.len) != MAYFLY_OK)
      return fail(r, MF_ERR(MAYFLY_ENOMEM, "%s: out of memory reassembling the record at "
                            "offset %llu", r->name, (unsigned long long)record_offset),
                  record_offset);
    if (type == WAL_FRAG_LAST) {
      *record = mf_buf_slice(&r->record);
      *was_full = 0;
      r->last_record_offset = record_offset;
      r->good_end = r->block_start + r->pos;
      return MAYFLY_OK;
    }
  }
}

/* Reads and checks the file header record (wal_format.h). */
static int read_file_header(wal_reader *r, int kind) {
  mf_slice h;
  int was_full = 0;
  int rc = read_record(r, &h, &was_full);
  if (rc == MAYFLY_ENOTFOUND) return MAYFLY_OK; /* empty or torn log: nothing to replay */
  if (rc != MAYFLY_OK) return rc;
  if (r->last_record_offset != 0 || !was_full || h.len != WAL_FILE_HEADER_SIZE)
    return MF_ERR(MAYFLY_ECORRUPT, "%s: log file header at offset 0 is not a %d-byte FULL "
                  "record (got %zu bytes at offset %llu)", r->name, WAL_FILE_HEADER_SIZE,
                  h.len, (unsigned long long)r->last_record_offset);
  uint64_t magic = decode_fixed64(h.data);
  uint32_t version = decode_fixed32(h.data + 8);
  uint32_t file_kind = decode_fixed32(h.data + 12);
  if (magic != WAL_FILE_MAGIC)
    return MF_ERR(MAYFLY_ECORRUPT, "%s: bad log magic 0x%016llx at offset %d", r->name,
                  (unsigned long long)magic, WAL_FRAGMENT_HEADER_SIZE);
  if (version != WAL_FORMAT_VERSION)
    return MF_ERR(MAYFLY_ECORRUPT, "%s: unsupported log format version %u at offset %d",
                  r->name, version, WAL_FRAGMENT_HEADER_SIZE + 8);
  if (file_kind != (uint32_t)kind)
    return MF_ERR(MAYFLY_ECORRUPT, "%s: log file kind %u at offset %d, expected %d (%s)",
                  r->name, file_kind, WAL_FRAGMENT_HEADER_SIZE + 12, kind,
                  kind == WAL_KIND_WAL        ? "WAL"
                  : kind == WAL_KIND_MANIFEST ? "MANIFEST"
                                              : "trace");
  r->file_number = decode_fixed64(h.data + 16);
  r->last_record_offset = 0;
  return MAYFLY_OK;
}

int wal_reader_create(mf_env *env, mf_rfile *file, const char *name, int kind,
                      wal_reader **out) {
  *out = NULL;
  if (!WAL_KIND_VALID(kind))
    return MF_ERR(MAYFLY_EINVAL, "%s: unknown log file kind %d", name, kind);
  wal_reader *r = calloc(1, sizeof *r);
  if (r) {
    r->name = strdup(name);
    r->block = malloc(WAL_BLOCK_SIZE);
  }
  if (!r || !r->name || !r->block) {
    wal_reader_destroy(r);
    return MF_ERR(MAYFLY_ENOMEM, "%s: out of memory creating a log reader", name);
  }
  r->env = env;
  r->file = file;
  r->state = READING;
  int rc = load_block(r, 0);
  if (rc == MAYFLY_OK) rc = read_file_header(r, kind);
  if (rc != MAYFLY_OK) {
    wal_reader_destroy(r);
    return rc;
  }
  *out = r;
  return MAYFLY_OK;
}

int wal_reader_read(wal_reader *r, mf_slice *record) {
  int was_full = 0;
  return read_record(r, record, &was_full);
}

uint64_t wal_reader_last_record_offset(const wal_reader *r) { return r->last_record_offset; }

uint64_t wal_reader_dropped_bytes(const wal_reader *r) { return r->dropped; }

uint64_t wal_reader_file_number(const wal_reader *r) { return r->file_number; }

void wal_reader_destroy(wal_reader *r) {
  if (!r) return;
  mf_buf_free(&r->record);
  free(r->block);
  free(r->name);
  free(r);
}
