/* Options: one table of descriptors drives everything.
 *
 * Each descriptor (name, type, default, range, runtime-mutable, doc line) points at one
 * field of struct mayfly_options by offset. mayfly_options_set/parse, mayfly_set_option,
 * the defaults, validation and docs/options.md (options_write_markdown) all walk that one
 * table; nothing else lists options. */
#ifndef MAYFLY_DB_OPTIONS_H
#define MAYFLY_DB_OPTIONS_H

#include <stdint.h>
#include <stdio.h>

#include "mayfly.h"
#include "env/env.h"

enum mf_compression { MF_COMPRESSION_NONE = 0, MF_COMPRESSION_LZ4 = 1, MF_COMPRESSION_ZSTD = 2 };
enum mf_wal_recovery_mode { MF_WAL_POINT_IN_TIME = 0, MF_WAL_ABSOLUTE = 1 };
enum mf_blob_gc_policy { MF_BLOB_GC_AGE = 0, MF_BLOB_GC_GROUP = 1 };

/* Documented limits (also in include/mayfly.h). */
#define MF_MAX_KEY_SIZE (1u << 20)           /* 1 MiB */
#define MF_MAX_VALUE_SIZE (256u << 20)       /* 256 MiB */
#define MF_NUM_LEVELS 7
/* String options are stored in the struct (it is copied by value everywhere): at most this
 * many bytes including the terminating NUL. */
#define MF_OPTION_STRING_MAX 1024

struct mayfly_options {
  /* open-time */
  int create_if_missing;
  int error_if_exists;
  int wal_recovery_mode;  /* enum mf_wal_recovery_mode */
  int use_fsync;          /* fsync instead of fdatasync */
  int max_open_files;
  uint64_t block_cache_size;
  int max_background_jobs;
  /* runtime-mutable */
  uint64_t write_buffer_size;
  int max_write_buffer_number;
  double memtable_bloom_size_ratio;
  uint64_t block_size;
  int block_restart_interval;
  int bloom_bits_per_key;
  int compression;        /* enum mf_compression */
  int compression_level;
  int level0_file_num_compaction_trigger;
  int level0_slowdown_writes_trigger;
  int level0_stop_writes_trigger;
  uint64_t target_file_size_base;
  uint64_t max_bytes_for_level_base;
  double max_bytes_for_level_multiplier;
  int max_mem_compaction_level;
  int level_compaction_dynamic_level_bytes; /* open-time */
  int enable_blob_files;
  uint64_t min_blob_size;
  uint64_t blob_file_size;
  int blob_compression; /* enum mf_compression */
  int blob_file_starting_level;
  int enable_blob_garbage_collection;
  double blob_garbage_collection_age_cutoff;
  double blob_garbage_collection_force_threshold;
  int blob_gc_policy; /* enum mf_blob_gc_policy */
  uint64_t blob_cache_size; /* open-time */
  int max_bgerror_resume_count;
  int bgerror_resume_retry_interval; /* microseconds */
  /* lifetime tracing (docs/tracing.md, src/db/db_trace.c); runtime-mutable */
  char trace_dir[MF_OPTION_STRING_MAX]; /* "": tracing off */
  int trace_key_hash;
  int trace_gets;
  /* not a text option: set by tests and embedders through options_set_env */
  mf_env *env;
};

/* Fills every field with its default (env = env_posix()). */
void options_init_defaults(struct mayfly_options *o);
/* Sets one option from text. runtime_only: refuse options that are not runtime-mutable
 * (MAYFLY_ENOTSUP). Bad names and values give MAYFLY_EINVAL with a message naming the option,
 * the value and the allowed range. */
int options_set(struct mayfly_options *o, const char *name, const char *value, int runtime_only);
/* Cross-field checks (e.g. slowdown <= stop trigger). */
int options_validate(const struct mayfly_options *o);
void options_set_env(struct mayfly_options *o, mf_env *env);
/* Writes docs/options.md's content. */
int options_write_markdown(FILE *out);
/* "name=value" lines of every option's current value (for the OPTIONS file and stats). */
int options_to_text(const struct mayfly_options *o, struct mf_buf *out);

#endif
