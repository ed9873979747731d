/* Blob garbage: exact accounting and the age policy's choices.
 *
 * Accounting. Garbage is counted when a flush or compaction stops referencing a blob: every
 * blob reference entering a compaction is "inflow" for its blob file, every reference
 * leaving it unchanged is "outflow"; inflow - outflow is the garbage the job created
 * (dropped versions and tombstoned keys, and relocated blobs, whose new copies are counted in
 * their new file). The job writes it to the MANIFEST as blob garbage records, so the counts
 * are exact and survive restarts.
 *
 * Age policy (RocksDB's integrated BlobDB semantics, with its rounding):
 *  - cutoff: with n blob files sorted by number, the first (size_t)(age_cutoff * n) are "old";
 *    compaction relocates every live blob it meets in an old file;
 *  - forced GC: when the old files together hold at least force_threshold of garbage (and
 *    force_threshold < 1), the tables linked to the oldest blob file are compacted so that
 *    file can go.
 *
 * Group policy (value logs grouped by table): every flush writes the values of its table to
 * that table's own value-log file, and compaction carries blob references over unchanged, so
 * the log's values are never copied while they live. When a log's garbage ratio reaches
 * force_threshold (< 1), the tables whose blob range covers it are rewritten in place, each at
 * its own level, and the log's live values move together into one new log; the old log then
 * is all garbage and goes. A log referenced from level 0 waits until those tables move down
 * (rewriting a level-0 table in place would reorder level 0). */
#ifndef MAYFLY_GC_BLOB_GC_H
#define MAYFLY_GC_BLOB_GC_H

#include <stdint.h>

#include "db/options.h"
#include "version/version_set.h"

/* Blob files numbered below the result are old: their live blobs are relocated. 0 when
 * nothing is old (GC off, policy not age, or the cutoff rounds down to no file). */
uint64_t gc_age_cutoff_number(const version *v, const struct mayfly_options *o);

/* Forced GC (RocksDB's rule): due when the oldest batch of blob files (the oldest file and
 * the files after it that no table links to) lies within the age cutoff and at least
 * force_threshold of its bytes are garbage. Then sets *file and *level to a table linked to
 * the oldest file (shallowest level first; a table is linked to the file that is its oldest
 * blob reference) and returns 1; else 0. */
int gc_pick_forced(const version *v, const struct mayfly_options *o, file_meta **file,
                   int *level);

/* Policy group: when a value log is due, sets *file to it and returns the tables (levels >= 1)
 * whose blob range covers it (malloc'd arrays *tables and *levels, *n entries; the caller
 * frees them) and 1; else 0; MAYFLY_ENOMEM (negative) when the arrays cannot be allocated.
 * With tables NULL it only tells whether one is due (and cannot fail). */
int gc_pick_group(const version *v, const struct mayfly_options *o, uint64_t *file,
                  file_meta ***tables, int **levels, int *n);

/* Per-job blob reference flows, keyed by blob file number. */
typedef struct gc_flow {
  uint64_t file_number;
  uint64_t in_count, in_bytes, out_count, out_bytes;
} gc_flow;

typedef struct gc_meter {
  gc_flow *flows; /* sorted by file_number */
  int n, cap;
} gc_meter;

void gc_meter_init(gc_meter *m);
void gc_meter_free(gc_meter *m);
/* record_bytes: blob_record_bytes(key_len, stored size). */
int gc_meter_inflow(gc_meter *m, uint64_t file_number, uint64_t record_bytes);
int gc_meter_outflow(gc_meter *m, uint64_t file_number, uint64_t record_bytes);
/* Adds one garbage record per file with inflow > outflow to edit. Sums the garbage into
 * *count and *bytes (either may be NULL). */
int gc_meter_to_edit(const gc_meter *m, version_edit *edit, uint64_t *count, uint64_t *bytes);

#endif
