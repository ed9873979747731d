/* Choosing compactions: which files to merge, into which level, and how to cut the output.
 *
 * The rules are LevelDB's, extended with RocksDB's dynamic level sizes:
 *
 *  - Scores. Level 0 scores its file count / level0_file_num_compaction_trigger; a level
 *    n >= 1 scores its bytes / its target size. Targets are max_bytes_for_level_base x
 *    multiplier^(n-1), or, with level_compaction_dynamic_level_bytes, derived downward from
 *    the size of the last level (levels above the "base level" are kept empty and level 0
 *    compacts straight into the base level).
 *  - Priority. The highest score >= 1 wins; else a value log the group policy collects (see
 *    gc/blob_gc.h); else a table the age policy's force threshold
 *    marks (it links to the oldest blob file, which is mostly garbage); else a file whose
 *    seek allowance ran out. A forced-GC compaction of a level >= 1 table rewrites it in
 *    place (same level, no other inputs: its outputs cover a subset of its own range); one
 *    of a level-0 table is an ordinary level-0 compaction seeded with it.
 *  - Inputs. A size compaction starts from the first file after the level's compaction
 *    pointer (wrapping around); the pointer is persisted in the MANIFEST. Level 0 pulls in
 *    every level-0 file overlapping the range. The overlapping output-level files are added;
 *    then the start level's inputs grow when that adds no output-level file and stays under
 *    25 x the target file size. The files of the level after the output level that overlap
 *    ("grandparents") are recorded so output files can be cut where they would make a later
 *    compaction too large.
 *  - Trivial move: one input file, nothing to merge with in the output level and little
 *    grandparent overlap: the file changes level by a MANIFEST edit alone.
 *
 * A compaction holds a reference on the version it was picked from; its file lists point
 * into that version. One compaction runs at a time (db_compact.c), so the picker does not
 * need to avoid files being compacted. */
#ifndef MAYFLY_COMPACTION_COMPACTION_H
#define MAYFLY_COMPACTION_COMPACTION_H

#include "db/options.h"
#include "version/version_set.h"

enum compaction_reason {
  COMPACTION_LEVEL0,  /* too many level-0 files */
  COMPACTION_SIZE,    /* a level above its target size */
  COMPACTION_SEEK,    /* a file's seek allowance ran out */
  COMPACTION_MANUAL,  /* mayfly_compact_range */
  COMPACTION_FORCED_BLOB_GC, /* a table linked to the oldest blob file (age policy) */
  COMPACTION_GROUP_GC,       /* tables covering a value log, rewritten in place (group) */
};

typedef struct compaction {
  int level;        /* inputs[0] come from here */
  int output_level; /* inputs[1] come from here, outputs go here */
  int reason;
  version *input_version; /* referenced */
  file_meta **inputs[2];
  int num_inputs[2];
  file_meta **grandparents;
  int num_grandparents;
  uint64_t max_output_file_size;
  uint64_t max_grandparent_overlap;
  version_edit edit; /* deletions of the inputs, the new compaction pointer; the job adds
                        outputs */
  /* compaction_should_stop_before state */
  int grandparent_index;
  int seen_key;
  uint64_t overlapped_bytes;
  /* compaction_is_base_level_for_key state: one cursor per level, keys only grow */
  int level_ptrs[MF_NUM_LEVELS];
  /* COMPACTION_GROUP_GC: the value log collected and the tables rewritten, each in place */
  uint64_t gc_file;
  file_meta **rewrite;
  int *rewrite_levels;
  int num_rewrite;
} compaction;

/* Per-level targets and the level-0 output level for a version under the options. */
typedef struct level_targets {
  int base_level; /* where level 0 compacts into */
  uint64_t max_bytes[MF_NUM_LEVELS]; /* UINT64_MAX for levels kept empty */
} level_targets;

void compaction_level_targets(const version *v, const struct mayfly_options *o,
                              level_targets *out);
/* The score of every level (index 0..MF_NUM_LEVELS-1; the last level scores 0). */
void compaction_scores(const version *v, const struct mayfly_options *o,
                       double scores[MF_NUM_LEVELS]);

/* Picks the next compaction for v, or returns NULL (nothing to do, or out of memory: *rc
 * tells). seek_file/seek_level name a file whose seek allowance ran out (NULL if none).
 * REQUIRES: db mutex held (refs v). */
compaction *compaction_pick(version_set *vs, version *v, const struct mayfly_options *o,
                            file_meta *seek_file, int seek_level, int *rc);
/* A manual compaction of the files of level overlapping [begin, end] (user keys; NULL =
 * open), at most about max_bytes of input from level (0 = no bound; level 0 is never
 * bounded). NULL when nothing overlaps. REQUIRES: db mutex held. */
compaction *compaction_pick_range(version_set *vs, version *v, const struct mayfly_options *o,
                                  int level, const mf_slice *begin, const mf_slice *end,
                                  int *rc);
/* REQUIRES: db mutex held (unrefs the version). NULL is a no-op. */
void compaction_free(compaction *c);

int compaction_is_trivial_move(const compaction *c);
/* True when no level below the output level can hold user_key, so a tombstone at or below
 * the oldest snapshot may be dropped. Calls must come in increasing key order. */
int compaction_is_base_level_for_key(compaction *c, mf_slice user_key);
/* True when the output file should end before ikey because the grandparent overlap of the
 * current output is large enough. Calls must come in increasing key order. */
int compaction_should_stop_before(compaction *c, mf_slice ikey);
uint64_t compaction_input_bytes(const compaction *c, int which);

/* The level a flushed table with this key range should go to (the highest level up to
 * max_level that it does not overlap, as long as its overlap with the level after that is
 * small). */
int compaction_pick_flush_level(const version *v, const struct mayfly_options *o,
                                mf_slice smallest_ukey, mf_slice largest_ukey, int max_level);

/* Files of v at level overlapping the user-key range [begin, end] (NULL = open). For level 0
 * the range grows to cover every file that overlaps the files found. *out is malloc'd. */
int compaction_overlapping_files(const version *v, int level, const mf_slice *begin,
                                 const mf_slice *end, file_meta ***out, int *n);

#endif
