/* The log format shared by the write-ahead log and the MANIFEST.
 *
 * Every byte is documented in docs/format/log.md; this comment is the short version and the
 * two must agree.
 *
 *   file     := block* partial_block?
 *   block    := fragment* trailer?            (exactly WAL_BLOCK_SIZE = 32768 bytes)
 *   fragment := checksum:fixed32 length:fixed16 type:u8 payload:u8[length]
 *   trailer  := 0x00{0..6}                    (when fewer than 7 bytes remain in a block)
 *
 * All integers are little-endian. checksum = mf_checksum_seeded(type, payload, length): the
 * type is folded in as the seed, so the checksum covers type and payload but not the length
 * field (a damaged length is caught because the checksum is then computed over the wrong
 * bytes). A fragment never crosses a block boundary, so every block begins with a fragment
 * header and a reader can resynchronise at any block start.
 *
 * A record is one FULL fragment, or FIRST MIDDLE* LAST. Records may be empty (a FULL fragment
 * with length 0).
 *
 * The first record of every file is a FULL fragment at offset 0 whose 24-byte payload is the
 * file header:
 *   magic:fixed64 (WAL_FILE_MAGIC, bytes "MYFYLOGL") version:fixed32 (1)
 *   kind:fixed32 (1 = WAL, 2 = MANIFEST, 3 = op trace, 4 = job trace) file_number:fixed64
 * The writer emits it on creation; the reader verifies it and never hands it to the caller. */
#ifndef MAYFLY_WAL_WAL_FORMAT_H
#define MAYFLY_WAL_WAL_FORMAT_H

#include <stdint.h>

#define WAL_BLOCK_SIZE 32768
#define WAL_FRAGMENT_HEADER_SIZE 7 /* checksum(4) + length(2) + type(1) */

enum wal_fragment_type {
  WAL_FRAG_FULL = 1,
  WAL_FRAG_FIRST = 2,
  WAL_FRAG_MIDDLE = 3,
  WAL_FRAG_LAST = 4,
};

/* Bytes 4d 59 46 59 4c 4f 47 4c ("MYFYLOGL") when stored little-endian. */
#define WAL_FILE_MAGIC 0x4c474f4c5946594dULL
#define WAL_FORMAT_VERSION 1u
#define WAL_FILE_HEADER_SIZE 24 /* magic(8) + version(4) + kind(4) + file_number(8) */

/* What a log file holds; stored in the file header and checked by the reader. */
enum wal_file_kind {
  WAL_KIND_WAL = 1,
  WAL_KIND_MANIFEST = 2,
  WAL_KIND_OP_TRACE = 3,  /* lifetime tracing (src/trace, docs/format/trace.md) */
  WAL_KIND_JOB_TRACE = 4,
};
#define WAL_KIND_VALID(k) ((k) >= WAL_KIND_WAL && (k) <= WAL_KIND_JOB_TRACE)

#endif
