/* mayfly_bench's command line (bench/flags.c): db_bench's flag names and meanings wherever
 * db_bench has them, parsed into one struct bench_flags that the rest of the bench only reads.
 *
 * Kept apart from mayfly_bench.c so that a unit test (bench/test_bench_flags.c) can drive the
 * parser without an engine: every malformed or unknown flag must be refused with a message
 * that names it, never silently benchmark something else. Nothing here allocates: string
 * flags point into argv, which outlives the run. */
#ifndef MAYFLY_BENCH_FLAGS_H
#define MAYFLY_BENCH_FLAGS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Every value is a slice of a pool of this many bytes, so no value may be larger than half
 * of it (the pool is built in mayfly_bench.c). */
#define BENCH_VALUE_POOL_SIZE (1u << 20)

/* Settings given to every engine, under each engine's own option names (see
 * mayfly_bench.c's header comment). */
struct bench_shared_settings {
  int64_t write_buffer_size;
  int64_t block_size;
  int64_t block_cache_size;
  int64_t bloom_bits_per_key;
  int64_t table_file_size; /* mayfly target_file_size_base, LevelDB max_file_size */
  int64_t max_open_files;
};

enum bench_value_distribution { FLAGS_VALUE_FIXED, FLAGS_VALUE_UNIFORM, FLAGS_VALUE_PARETO };

/* mixgraph's parameters: db_bench's flags of the same names (and defaults), plus
 * value_scale, mayfly's own. */
struct bench_mix_flags {
  double keyrange_dist_a, keyrange_dist_b, keyrange_dist_c, keyrange_dist_d;
  int64_t keyrange_num;
  double key_dist_a, key_dist_b;
  double value_theta, value_k, value_sigma;
  double iter_theta, iter_k, iter_sigma;
  double get_ratio, put_ratio, seek_ratio;
  int64_t max_scan_len;
  int64_t max_value_size;
  int sine;                 /* pace operations by the sine below */
  double sine_interval_ms;  /* --sine_mix_rate_interval_milliseconds */
  double sine_noise;        /* --sine_mix_rate_noise, in [0, 1] */
  double sine_a, sine_b, sine_c, sine_d;
  double value_scale;       /* --mix_value_scale: every mixgraph value size is multiplied by it */
};

struct bench_flags {
  const char *engine;
  const char *benchmarks;
  int64_t num;
  int64_t reads;  /* after parsing: num when not given (or negative) */
  int64_t writes; /* puts of overwrite, overwritezipf; deletes of deleterandom; as reads */
  int key_size;
  int value_size;
  const char *db;
  const char *options;         /* mayfly's options text */
  const char *trace_dir;       /* mayfly's lifetime traces go here (mayfly only) */
  const char *leveldb_options; /* the leveldb adapter's options text */
  const char *rocksdb_options; /* the rocksdb adapter's options text (mayfly's names) */
  uint64_t seed;
  int threads;
  double duration; /* seconds; 0: no limit */
  int histogram;
  const char *json; /* NULL: no JSON report */
  enum bench_value_distribution value_size_distribution;
  int64_t seek_nexts;
  int zipfian;       /* --key_distribution=zipfian */
  double zipf_theta; /* --zipf_theta */
  int use_existing_db;
  int sync;
  int disable_wal;
  const char *compression_type; /* "none", "snappy", "lz4" or "zstd" */
  double stats_interval_seconds; /* 0: no interval lines */
  double settle_seconds;         /* quiet period of engines without wait_idle */
  struct bench_mix_flags mix;
  struct bench_shared_settings shared;
};

/* What flags_parse found. */
enum { FLAGS_OK = 0, FLAGS_ERROR = 1, FLAGS_HELP = 2 };

/* Parses argv[1..argc-1] into *f (defaults first). Returns FLAGS_OK; FLAGS_HELP for --help or
 * -h; FLAGS_ERROR with a one-line reason naming the offending flag in err (err_len bytes,
 * always NUL-terminated). Benchmark and engine names are checked by the caller, which knows
 * them. String fields of *f point into argv. */
int flags_parse(int argc, char **argv, struct bench_flags *f, char *err, size_t err_len);

/* Prints the usage text to out; engines is the list of engines built in ("mayfly leveldb"). */
void flags_usage(FILE *out, const char *engines);

/* Key indexes a run tracks: num loaded keys, then room for the inserts of YCSB D and E (5%
 * of their operations each). Inserts past it still run but are not counted as live data. */
uint64_t flags_key_capacity(const struct bench_flags *f);

#endif /* MAYFLY_BENCH_FLAGS_H */
