/* A version edit: one change to the set of table and blob files that make up the database,
 * plus the counters that must survive a restart.
 *
 * The MANIFEST is a log (wal_format.h, kind MANIFEST) whose records are encoded version
 * edits; replaying them in order rebuilds the current version. Every byte of an encoded edit
 * is described in docs/format/manifest.md; the short version, which must agree with it:
 *
 *   edit   := field*                       (any order; an empty edit is valid)
 *   field  := tag:varint32 body
 *   tag 1  LOG_NUMBER        number:varint64
 *   tag 2  NEXT_FILE_NUMBER  number:varint64
 *   tag 3  LAST_SEQUENCE     seq:varint64
 *   tag 4  COMPACT_POINTER   level:varint32 ikey:bytes
 *   tag 5  DELETED_FILE      level:varint32 number:varint64
 *   tag 6  NEW_FILE          level:varint32 number:varint64 file_size:varint64
 *                            num_entries:varint64 smallest:bytes largest:bytes
 *                            smallest_seq:varint64 largest_seq:varint64
 *                            oldest_blob_file:varint64 newest_blob_file:varint64
 *   tag 7  BLOB_FILE         number:varint64 total_count:varint64 total_bytes:varint64
 *                            checksum:fixed32
 *   tag 8  BLOB_GARBAGE      number:varint64 garbage_count:varint64 garbage_bytes:varint64
 *   bytes  := length:varint32 u8[length]
 *
 * Tags 1..3 appear at most once per edit. Levels are < MF_NUM_LEVELS; keys are internal keys
 * (util/ikey.h) with smallest <= largest; smallest_seq <= largest_seq. oldest_blob_file is 0
 * when the table references no blob file. Blob file numbers are never 0, and a blob file
 * holds at least one record (total_count >= 1). Tags 9..63 are reserved for later features.
 * A decoder that meets a tag it does not know rejects the edit as corrupt rather than
 * skipping it: a field it cannot interpret may change which files are live, and silently
 * ignoring it could delete data. Adding a tag therefore makes older binaries refuse newer
 * MANIFESTs, which is the safe failure.
 *
 * Blob files follow RocksDB's integrated BlobDB: an edit records a blob file's ADDITION once
 * (when the flush or compaction that wrote it is installed), and later its GARBAGE (records
 * that compactions dropped or relocated) as increments; garbage records for one file add up,
 * within an edit and across edits. Whether a blob file is still needed is decided by the
 * version set (version_set.h), not recorded here.
 *
 * Memory: an edit owns the bytes of every key it holds (copied in by the setters and the
 * decoder). Not thread-safe; an edit is built and consumed by one thread. */
#ifndef MAYFLY_VERSION_VERSION_EDIT_H
#define MAYFLY_VERSION_VERSION_EDIT_H

#include <stdint.h>

#include "db/options.h"
#include "util/slice.h"

enum version_edit_tag {
  VERSION_EDIT_LOG_NUMBER = 1,
  VERSION_EDIT_NEXT_FILE_NUMBER = 2,
  VERSION_EDIT_LAST_SEQUENCE = 3,
  VERSION_EDIT_COMPACT_POINTER = 4,
  VERSION_EDIT_DELETED_FILE = 5,
  VERSION_EDIT_NEW_FILE = 6,
  VERSION_EDIT_BLOB_FILE = 7,
  VERSION_EDIT_BLOB_GARBAGE = 8,
  /* 9..63 reserved. */
};

/* One table file as a version sees it. Versions share file_metas: refs counts them. */
typedef struct file_meta {
  int refs; /* versions sharing this file; REQUIRES db mutex */
  uint64_t number, file_size, num_entries;
  mf_buf smallest, largest; /* internal keys; owned */
  uint64_t smallest_seq, largest_seq;
  uint64_t oldest_blob_file; /* smallest blob file number the table references; 0 = none */
  uint64_t newest_blob_file; /* largest one; 0 = none */
  int allowed_seeks; /* for seek compaction: max(100, file_size / 16384) */
  int being_compacted;
} file_meta;

typedef struct version_edit_compact_pointer {
  int level;
  mf_buf ikey; /* owned */
} version_edit_compact_pointer;

typedef struct version_edit_deleted_file {
  int level;
  uint64_t number;
} version_edit_deleted_file;

typedef struct version_edit_new_file {
  int level;
  file_meta meta; /* refs 0, allowed_seeks 0, being_compacted 0: a description, not a member
                     of any version */
} version_edit_new_file;

/* A blob file joins the database. */
typedef struct version_edit_blob_file {
  uint64_t number;      /* NNNNNN.blob; never 0 */
  uint64_t total_count; /* records in the file; >= 1 */
  uint64_t total_bytes; /* bytes of those records */
  uint32_t checksum;    /* checksum of the whole file (see the blob file format) */
} version_edit_blob_file;

/* More of a blob file's records became garbage: these counts add to what was recorded
 * before. */
typedef struct version_edit_blob_garbage {
  uint64_t number; /* never 0 */
  uint64_t garbage_count, garbage_bytes;
} version_edit_blob_garbage;

typedef struct version_edit {
  int has_log_number, has_next_file_number, has_last_sequence;
  uint64_t log_number;       /* WAL files numbered below this are no longer needed */
  uint64_t next_file_number; /* every file number in use is below this */
  uint64_t last_sequence;    /* every entry in the tables has seq <= this */
  version_edit_compact_pointer *compact_pointers;
  int num_compact_pointers, cap_compact_pointers;
  version_edit_deleted_file *deleted_files;
  int num_deleted_files, cap_deleted_files;
  version_edit_new_file *new_files;
  int num_new_files, cap_new_files;
  version_edit_blob_file *blob_files;
  int num_blob_files, cap_blob_files;
  version_edit_blob_garbage *blob_garbage;
  int num_blob_garbage, cap_blob_garbage;
} version_edit;

/* Makes e an empty edit. Never fails. */
void version_edit_init(version_edit *e);
/* Frees everything e owns and leaves it empty (it may be used again without version_edit_init).
 * Pointers previously read from e's lists become invalid. */
void version_edit_free(version_edit *e);

void version_edit_set_log_number(version_edit *e, uint64_t n);
void version_edit_set_next_file_number(version_edit *e, uint64_t n);
void version_edit_set_last_sequence(version_edit *e, uint64_t seq);
/* The setters below copy the keys. Return MAYFLY_OK, MAYFLY_ENOMEM, or MAYFLY_EINVAL for a
 * level outside [0, MF_NUM_LEVELS) or a key shorter than an internal-key trailer. On error e
 * is unchanged. */
int version_edit_set_compact_pointer(version_edit *e, int level, mf_slice ikey);
/* oldest_blob_file: the smallest blob file number the table's blob indexes point into, 0
 * when it has none (see version_set.h: the table "links" that blob file). */
int version_edit_add_file(version_edit *e, int level, uint64_t number, uint64_t file_size,
                          uint64_t num_entries, mf_slice smallest, mf_slice largest,
                          uint64_t smallest_seq, uint64_t largest_seq,
                          uint64_t oldest_blob_file);
int version_edit_delete_file(version_edit *e, int level, uint64_t number);
/* Records that blob file `number` joins the database. Returns MAYFLY_OK, MAYFLY_ENOMEM, or
 * MAYFLY_EINVAL when number or total_count is 0. On error e is unchanged. Whether the number
 * is new is checked when the edit is applied (version_set_log_and_apply). */
/* Sets the largest blob file number referenced by the file added last (version_edit_add_file
 * sets it equal to oldest_blob_file). Both are 0 or both nonzero with oldest <= newest. */
int version_edit_set_newest_blob_file(version_edit *e, uint64_t newest_blob_file);
int version_edit_add_blob_file(version_edit *e, uint64_t number, uint64_t total_count,
                               uint64_t total_bytes, uint32_t checksum);
/* Records that garbage_count more records (garbage_bytes more bytes) of blob file `number`
 * are garbage. Several records for one file add up. Returns MAYFLY_OK, MAYFLY_ENOMEM, or
 * MAYFLY_EINVAL when number is 0. On error e is unchanged. */
int version_edit_add_blob_garbage(version_edit *e, uint64_t number, uint64_t garbage_count,
                                  uint64_t garbage_bytes);

/* Appends e's encoding (format above) to out. Returns MAYFLY_OK or MAYFLY_ENOMEM (out may
 * then hold a partial encoding past its old length). */
int version_edit_encode(const version_edit *e, mf_buf *out);
/* Replaces e's contents with the edit encoded in in (in is only read during the call).
 * REQUIRES: e initialized. Returns MAYFLY_OK, MAYFLY_ENOMEM, or MAYFLY_ECORRUPT for any
 * malformed input (truncated field, unknown tag, repeated singleton tag, bad level, key too
 * short, smallest > largest, blob file number 0, blob file without records); the message
 * gives the byte offset within the record. On error e is left empty. */
int version_edit_decode(version_edit *e, mf_slice in);

/* Readable one-line-per-field dump for debugging and tools (appended to out). Returns
 * MAYFLY_OK or MAYFLY_ENOMEM. */
int version_edit_debug_string(const version_edit *e, mf_buf *out);

#endif
