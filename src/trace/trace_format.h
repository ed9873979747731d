/* The lifetime trace format: what src/trace/trace_writer.c writes and trace_reader.c reads.
 *
 * Every byte is documented in docs/format/trace.md ("Lifetime trace files"); this comment is
 * the short version and the two must agree.
 *
 * A tracing session (one open of trace files by a database) writes two files into trace_dir:
 *   trace-NNNNNN.op   operations: puts, deletes, batch entries, gets     (log kind 3)
 *   trace-NNNNNN.job  flushes, compactions, GC: drops, blob placements and relocations, file
 *                     creations and deletions, job start and end        (log kind 4)
 * NNNNNN is the session number: one more than the highest session already in trace_dir, so a
 * reopened database (or tracing turned on again) appends new files and never overwrites.
 *
 * Both files are log files (docs/format/log.md: 32 KiB blocks, fragments, a checksum per
 * fragment, a header record naming the kind and, as file number, the session number). Each
 * log record after the header is a chunk of trace records:
 *
 *   chunk   := trace_record+
 *   record  := tag:u8 body_length:varint32 body:byte[body_length]
 *
 * The length lets a reader skip tags it does not know. The first record of each file is
 * SESSION; the others, per tag (time = varint64 microseconds since the session started,
 * measured with the env's clock; the absolute wall-clock time is wall_start_us + time):
 *
 *   SESSION    1: format_version:varint32 flags:varint32 wall_start_us:varint64
 *                 session:varint64 dbname:varstring
 *                 flags: bit 0 keys are hashed, bit 1 gets are traced
 *   PUT     0x10, DELETE 0x11, GET 0x12 (op file):
 *                 time seq:varint64 key:varstring key_size:varint32 value_size:varint64
 *                 flags:u8 (bit 0 value goes to a blob file, bit 1 get found a value)
 *   JOB_START 0x20: time job:varint64 kind:u8 reason:u8 level:varint32 output_level:varint32
 *                 num_inputs:varint32 input_file:varint64[num_inputs]
 *   JOB_END   0x21: time job:varint64 status:varint32 (0 ok, else -rc)
 *   DROP      0x22: time job seq key key_size value_size reason:u8 level:varint32
 *                 blob_file:varint64 (0: the value was inline)
 *   PLACE     0x23: time job seq key key_size value_size blob_file:varint64
 *   RELOCATE  0x24: time job seq key key_size value_size from_file:varint64
 *                 to_file:varint64 (0: rewritten inline)
 *   FILE_CREATE 0x25: time job file:varint64 file_kind:u8 level:varint32 size:varint64
 *                 entries:varint64 smallest_seq:varint64 largest_seq:varint64
 *                 smallest_key:varstring largest_key:varstring (user keys; empty when keys
 *                 are hashed and for blob files)
 *   FILE_DELETE 0x26: time file:varint64 file_kind:u8
 *
 * key is the user key, or with hashed keys the 8 bytes of mf_hash64(user key) as fixed64;
 * key_size is always the real user key length. varstring := varint32 length, bytes. */
#ifndef MAYFLY_TRACE_TRACE_FORMAT_H
#define MAYFLY_TRACE_TRACE_FORMAT_H

#define TRACE_FORMAT_VERSION 1u
/* Every time in a trace (a session's wall-clock start plus a record's offset) is below this
 * (2^62 us, some 146,000 years after 1970); a larger one is corruption. Readers can add and
 * compare times without overflow. */
#define TRACE_MAX_TIME_US (UINT64_C(1) << 62)

/* A chunk is written as one log record once it holds this many bytes (and on close). */
#define TRACE_CHUNK_BYTES (32u << 10)

enum trace_tag {
  TRACE_SESSION = 0x01,
  TRACE_PUT = 0x10,
  TRACE_DELETE = 0x11,
  TRACE_GET = 0x12,
  TRACE_RECOVERED = 0x13,
  TRACE_JOB_START = 0x20,
  TRACE_JOB_END = 0x21,
  TRACE_DROP = 0x22,
  TRACE_PLACE = 0x23,
  TRACE_RELOCATE = 0x24,
  TRACE_FILE_CREATE = 0x25,
  TRACE_FILE_DELETE = 0x26,
};

enum trace_session_flags { TRACE_FLAG_KEY_HASH = 1, TRACE_FLAG_GETS = 2 };
enum trace_op_flags { TRACE_OP_TO_BLOB = 1, TRACE_OP_FOUND = 2 };

enum trace_job_kind {
  TRACE_JOB_FLUSH = 1,      /* a memtable written to level 0 (also at recovery) */
  TRACE_JOB_COMPACTION = 2, /* a merge of tables (any reason, including forced blob GC) */
  TRACE_JOB_GC = 3,         /* group policy: tables rewritten in place to collect a value log */
  TRACE_JOB_MOVE = 4,       /* a trivial move: a table changes level, nothing is rewritten */
};

/* Why a flush or compaction left an internal key out of its output. */
enum trace_drop_reason {
  TRACE_DROP_HIDDEN = 1,      /* compaction: a newer version of the key every reader sees */
  TRACE_DROP_MEMTABLE = 2,    /* flush: overwritten inside the memtable */
  TRACE_DROP_OBSOLETE_TOMBSTONE = 3, /* a tombstone hidden by a newer version (flush or
                                        compaction) */
  TRACE_DROP_BASE_TOMBSTONE = 4, /* a tombstone no reader needs, with nothing older below */
};

enum trace_file_kind { TRACE_FILE_TABLE = 1, TRACE_FILE_BLOB = 2 };

#endif
