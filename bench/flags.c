/* mayfly_bench's flags: defaults, the usage text and the parser (see bench/flags.h).
 *
 * Most flags are rows of one table (name, kind, field, allowed range), so a flag's name, its
 * check and its error message cannot drift apart; the few whose values are words (engine
 * lists, distributions, compression types) are handled by name after the table. A flag is
 * "--name=value"; boolean flags may also be given bare ("--sync" is "--sync=true"), as
 * db_bench's gflags allow. Anything else, and any value that does not parse completely or is
 * out of its range, is an error: a benchmark run with a silently ignored flag measures the
 * wrong thing. */
#include "flags.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void flags_usage(FILE *out, const char *engines)
{
  fprintf(out,
          "usage: mayfly_bench [flags]   (db_bench's flag names and meanings)\n"
          "  --engine=mayfly|leveldb|rocksdb|all  engines to run, each in its own child\n"
          "                                   process, in turn (default mayfly)\n"
          "  --benchmarks=a,b,...             fillseq,fillrandom,overwrite,readrandom,readseq\n"
          "                                   (default: these five, in that order),\n"
          "                                   overwritezipf, deleterandom, seekrandom,\n"
          "                                   readreverse, readwhilewriting, ycsba..ycsbf,\n"
          "                                   mixgraph, compact (full manual compaction),\n"
          "                                   flush, stats, waitidle\n"
          "  --num=N                          keys / operations per benchmark (1000000)\n"
          "  --reads=N                        operations of readrandom, seekrandom, mixgraph,\n"
          "                                   readwhilewriting (its readers), ycsba..f (num)\n"
          "  --writes=N                       operations of overwrite, overwritezipf,\n"
          "                                   deleterandom (default: num)\n"
          "  --key_size=N                     bytes per key (16)\n"
          "  --value_size=N                   bytes per value (100)\n"
          "  --key_distribution=uniform|zipfian  keys of overwrite, readrandom, seekrandom,\n"
          "                                   deleterandom (uniform);\n"
          "                                   zipfian is YCSB's scrambled zipfian\n"
          "  --zipf_theta=X                   zipfian skew, 0 < X < 1 (0.99)\n"
          "  --value_size_distribution=fixed|uniform|pareto  value sizes with mean value_size:\n"
          "                                   uniform in [size/2, 3*size/2], Pareto shape 3\n"
          "  --threads=N                      threads per benchmark, sharing its ops (1)\n"
          "  --duration=S                     stop each benchmark after S seconds (0: no limit)\n"
          "  --seek_nexts=N                   entries read after each seekrandom seek (0)\n"
          "  --histogram[=1]                  print latency percentiles per benchmark\n"
          "  --stats_interval_seconds=S       every S seconds print the interval's and the\n"
          "                                   cumulative ops/s of the running benchmark (0: off)\n"
          "  --json=FILE                      also write every figure as JSON to FILE\n"
          "  --db=DIR                         parent directory; each engine uses DIR/<engine>\n"
          "                                   (/tmp/mayfly-bench)\n"
          "  --use_existing_db[=1]            do not destroy the databases: fills are skipped,\n"
          "                                   a missing database is an error (0)\n"
          "  --sync[=1]                       every write synchronous (0)\n"
          "  --disable_wal[=1]                writes skip the WAL (not LevelDB) (0)\n"
          "  --compression_type=none|snappy|lz4|zstd  table compression, where the engine\n"
          "                                   has it: mayfly none/lz4/zstd, LevelDB\n"
          "                                   none/snappy, RocksDB all (none)\n"
          "  --settle_seconds=S               mayfly_bench's own: engines without wait_idle\n"
          "                                   (LevelDB) count as settled once the database's\n"
          "                                   size is unchanged for S seconds (1)\n"
          "mixgraph (db_bench's, FAST'20; defaults are db_bench's, which give 0-byte values:\n"
          "the paper's all_dist values are in parentheses):\n"
          "  --mix_get_ratio=X --mix_put_ratio=X --mix_seek_ratio=X  shares of the operations\n"
          "                                   (1, 0, 0; paper 0.85, 0.14, 0.01)\n"
          "  --keyrange_num=N                 key ranges (1; paper 30)\n"
          "  --keyrange_dist_a=X .._b .._c .._d  key-range hotness a*e^(b*x)+c*e^(d*x), all 0:\n"
          "                                   no ranges (paper 14.18, -2.917, 0.0164, -0.08082)\n"
          "  --key_dist_a=X --key_dist_b=X    power-law key access a*x^b within a range, 0:\n"
          "                                   uniform (paper 0.002312, 0.3467)\n"
          "  --value_theta=X --value_k=X --value_sigma=X  generalized Pareto value sizes\n"
          "                                   (0, 0, 0; paper 0, 0.2615, 25.45)\n"
          "  --iter_theta=X --iter_k=X --iter_sigma=X  generalized Pareto scan lengths\n"
          "                                   (0, 0, 0; paper 0, 2.517, 14.236)\n"
          "  --mix_max_value_size=N           value sizes past it wrap around (1024)\n"
          "  --mix_max_scan_len=N             scan lengths wrap around at N (10000)\n"
          "  --mix_value_scale=X              mayfly_bench's own: multiply every mixgraph value\n"
          "                                   size by X after the above, to study key-value\n"
          "                                   separation (1.0)\n"
          "  --sine_mix_rate[=1]              pace mixgraph at sine_a*sin(sine_b*t+sine_c)+\n"
          "                                   sine_d ops/s, t in seconds (0; on when any\n"
          "                                   sine_* flag is given)\n"
          "  --sine_a=X --sine_b=X --sine_c=X --sine_d=X  (1, 1, 0, 1)\n"
          "  --sine_mix_rate_interval_milliseconds=N  rate recomputed this often (10000)\n"
          "  --sine_mix_rate_noise=X          noise in [0, 1] added to the rate (0)\n"
          "shared by every engine (defaults: mayfly's own defaults):\n"
          "  --write_buffer_size=BYTES        memtable size (64 MiB)\n"
          "  --block_size=BYTES               table block size (4 KiB)\n"
          "  --cache_size=BYTES               block cache capacity (32 MiB)\n"
          "  --bloom_bits=N                   bloom filter bits per key, 0 = none (10)\n"
          "  --max_file_size=BYTES            table file size written by compactions (64 MiB)\n"
          "  --max_open_files=N               table files kept open (1000)\n"
          "per engine, applied after the shared settings:\n"
          "  --options=\"name=value;...\"       mayfly options (after compression=none)\n"
          "  --trace_dir=DIR                  mayfly: write lifetime traces to DIR\n"
          "                                   (docs/tracing.md)\n"
          "  --leveldb_options=\"name=value;\"  leveldb options (write_buffer_size, block_size,\n"
          "                                   block_cache_size, max_open_files,\n"
          "                                   max_file_size, bloom_bits_per_key)\n"
          "  --rocksdb_options=\"name=value;\"  rocksdb options, mayfly's names and defaults\n"
          "                                   (see bench/adapter_rocksdb.c)\n"
          "  --seed=N                         random seed (default 301)\n"
          "engines built in: %s\n",
          engines);
}

uint64_t flags_key_capacity(const struct bench_flags *f)
{
  return 2 * (uint64_t)f->num + (uint64_t)(f->reads > 0 ? f->reads : f->num) + 1;
}

static void set_error(char *err, size_t err_len, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, err_len, fmt, ap);
  va_end(ap);
}

static int parse_i64(const char *text, int64_t *out)
{
  char *end = NULL;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || text[0] == ' ')
    return 1;
  *out = v;
  return 0;
}

static int parse_double(const char *text, double *out)
{
  char *end = NULL;
  errno = 0;
  double v = strtod(text, &end);
  if (errno != 0 || end == text || *end != '\0' || text[0] == ' ' || !isfinite(v))
    return 1;
  *out = v;
  return 0;
}

/* A byte count with an optional K, M or G suffix (powers of 1024; "KiB", "KB" and "K" all
 * mean the same), like both engines' options text: "4194304", "4MiB", "64k". */
static int parse_bytes(const char *text, int64_t *out)
{
  char *end = NULL;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (errno != 0 || end == text || v < 0 || text[0] == ' ')
    return 1;
  int shift = 0;
  switch (*end | 0x20) {
  case 'k': shift = 10; break;
  case 'm': shift = 20; break;
  case 'g': shift = 30; break;
  default: break;
  }
  if (shift > 0) {
    end++;
    if (strcmp(end, "iB") != 0 && strcmp(end, "B") != 0 && *end != '\0')
      return 1;
  } else if (*end != '\0') {
    return 1;
  }
  if (v > (INT64_MAX >> shift))
    return 1;
  *out = (int64_t)v << shift;
  return 0;
}

static int parse_bool(const char *text, int *out)
{
  if (strcmp(text, "1") == 0 || strcmp(text, "true") == 0) {
    *out = 1;
    return 0;
  }
  if (strcmp(text, "0") == 0 || strcmp(text, "false") == 0) {
    *out = 0;
    return 0;
  }
  return 1;
}

/* ---- the table ------------------------------------------------------------------------ */

enum kind { K_STR, K_I64, K_INT, K_DOUBLE, K_BYTES, K_BOOL };

/* A flag whose value is a number, a byte count, a boolean or any string. Numbers must lie in
 * [min, max]; a double's range is open at an end where open_min / open_max say so. */
struct flag_row {
  const char *name;
  enum kind kind;
  size_t offset;
  double min, max;
  int open_min, open_max;
};

#define F(name, field, kind, min, max) {name, kind, offsetof(struct bench_flags, field), min, max, 0, 0}
#define F_OPEN(name, field, min, max, open_min, open_max) \
  {name, K_DOUBLE, offsetof(struct bench_flags, field), min, max, open_min, open_max}
#define BIG 9.2e18
static const struct flag_row k_rows[] = {
    F("engine", engine, K_STR, 0, 0),
    F("benchmarks", benchmarks, K_STR, 0, 0),
    F("db", db, K_STR, 0, 0),
    F("options", options, K_STR, 0, 0),
    F("trace_dir", trace_dir, K_STR, 0, 0),
    F("leveldb_options", leveldb_options, K_STR, 0, 0),
    F("rocksdb_options", rocksdb_options, K_STR, 0, 0),
    F("json", json, K_STR, 0, 0),
    F("num", num, K_I64, 0, 1e15),
    F("reads", reads, K_I64, -BIG, 1e15),
    F("writes", writes, K_I64, -BIG, 1e15),
    F("key_size", key_size, K_INT, 1, 1024),
    F("value_size", value_size, K_INT, 0, BENCH_VALUE_POOL_SIZE / 2),
    F("threads", threads, K_INT, 1, 64),
    F("duration", duration, K_DOUBLE, 0, 1e9),
    F("histogram", histogram, K_BOOL, 0, 0),
    F("seek_nexts", seek_nexts, K_I64, 0, 1e15),
    F_OPEN("zipf_theta", zipf_theta, 0, 1, 1, 1),
    F("use_existing_db", use_existing_db, K_BOOL, 0, 0),
    F("sync", sync, K_BOOL, 0, 0),
    F("disable_wal", disable_wal, K_BOOL, 0, 0),
    F("stats_interval_seconds", stats_interval_seconds, K_DOUBLE, 0, 1e9),
    F("settle_seconds", settle_seconds, K_DOUBLE, 0.01, 3600),
    F("write_buffer_size", shared.write_buffer_size, K_BYTES, 1, BIG),
    F("block_size", shared.block_size, K_BYTES, 1, BIG),
    F("cache_size", shared.block_cache_size, K_BYTES, 0, BIG),
    F("bloom_bits", shared.bloom_bits_per_key, K_I64, 0, 64),
    F("max_file_size", shared.table_file_size, K_BYTES, 1, BIG),
    F("max_open_files", shared.max_open_files, K_I64, 1, 1000000),
    /* mixgraph */
    F("keyrange_dist_a", mix.keyrange_dist_a, K_DOUBLE, -BIG, BIG),
    F("keyrange_dist_b", mix.keyrange_dist_b, K_DOUBLE, -BIG, BIG),
    F("keyrange_dist_c", mix.keyrange_dist_c, K_DOUBLE, -BIG, BIG),
    F("keyrange_dist_d", mix.keyrange_dist_d, K_DOUBLE, -BIG, BIG),
    F("keyrange_num", mix.keyrange_num, K_I64, 1, 1e9),
    F("key_dist_a", mix.key_dist_a, K_DOUBLE, 0, BIG),
    F("key_dist_b", mix.key_dist_b, K_DOUBLE, 0, BIG),
    F("value_theta", mix.value_theta, K_DOUBLE, -BIG, BIG),
    F("value_k", mix.value_k, K_DOUBLE, -BIG, BIG),
    F("value_sigma", mix.value_sigma, K_DOUBLE, 0, BIG),
    F("iter_theta", mix.iter_theta, K_DOUBLE, -BIG, BIG),
    F("iter_k", mix.iter_k, K_DOUBLE, -BIG, BIG),
    F("iter_sigma", mix.iter_sigma, K_DOUBLE, 0, BIG),
    F("mix_get_ratio", mix.get_ratio, K_DOUBLE, 0, BIG),
    F("mix_put_ratio", mix.put_ratio, K_DOUBLE, 0, BIG),
    F("mix_seek_ratio", mix.seek_ratio, K_DOUBLE, 0, BIG),
    F("mix_max_scan_len", mix.max_scan_len, K_I64, 1, 1e15),
    F("mix_max_value_size", mix.max_value_size, K_I64, 1, BENCH_VALUE_POOL_SIZE / 2),
    F_OPEN("mix_value_scale", mix.value_scale, 0, 1e6, 1, 0),
    F("sine_mix_rate", mix.sine, K_BOOL, 0, 0),
    F("sine_mix_rate_interval_milliseconds", mix.sine_interval_ms, K_DOUBLE, 1, 1e12),
    F("sine_mix_rate_noise", mix.sine_noise, K_DOUBLE, 0, 1),
    F("sine_a", mix.sine_a, K_DOUBLE, -BIG, BIG),
    F("sine_b", mix.sine_b, K_DOUBLE, -BIG, BIG),
    F("sine_c", mix.sine_c, K_DOUBLE, -BIG, BIG),
    F("sine_d", mix.sine_d, K_DOUBLE, -BIG, BIG),
};
#undef F
#undef F_OPEN
#define NUM_ROWS (sizeof k_rows / sizeof k_rows[0])

static const char *kind_text(enum kind k)
{
  switch (k) {
  case K_I64:
  case K_INT: return "an integer";
  case K_DOUBLE: return "a number";
  case K_BYTES: return "a byte count (digits, optionally K, M or G)";
  case K_BOOL: return "true, false, 1 or 0";
  default: return "a string";
  }
}

/* Parses value into the row's field of f. */
static int apply_row(const struct flag_row *row, const char *value, struct bench_flags *f,
                     char *err, size_t err_len)
{
  char *field = (char *)f + row->offset;
  int64_t v = 0;
  double d = 0;
  int b = 0, bad = 0;
  switch (row->kind) {
  case K_STR:
    if (value[0] == '\0' && strcmp(row->name, "options") != 0 &&
        strcmp(row->name, "leveldb_options") != 0 && strcmp(row->name, "rocksdb_options") != 0) {
      set_error(err, err_len, "--%s needs a value", row->name);
      return 1;
    }
    memcpy(field, &value, sizeof value);
    return 0;
  case K_BOOL:
    if (parse_bool(value, &b) != 0)
      break;
    memcpy(field, &b, sizeof b);
    return 0;
  case K_I64:
  case K_INT:
  case K_BYTES:
    bad = row->kind == K_BYTES ? parse_bytes(value, &v) : parse_i64(value, &v);
    if (bad)
      break;
    if ((double)v < row->min || (double)v > row->max) {
      set_error(err, err_len, "--%s=%s: out of range [%.0f, %.0f]", row->name, value, row->min,
                row->max);
      return 1;
    }
    if (row->kind == K_INT) {
      int iv = (int)v;
      memcpy(field, &iv, sizeof iv);
    } else {
      memcpy(field, &v, sizeof v);
    }
    return 0;
  case K_DOUBLE:
    if (parse_double(value, &d) != 0)
      break;
    if (d < row->min || d > row->max || (row->open_min && d == row->min) ||
        (row->open_max && d == row->max)) {
      set_error(err, err_len, "--%s=%s: out of range %s%g, %g%s", row->name, value,
                row->open_min ? "(" : "[", row->min, row->max, row->open_max ? ")" : "]");
      return 1;
    }
    memcpy(field, &d, sizeof d);
    return 0;
  }
  set_error(err, err_len, "--%s=%s: not %s", row->name, value, kind_text(row->kind));
  return 1;
}

/* The flags whose values are words. Returns 1 when name is one of them (*rc then says whether
 * its value was good), 0 when it is not. */
static int apply_word(const char *name, const char *value, struct bench_flags *f, int *rc,
                      char *err, size_t err_len)
{
  static const char *const compressions[] = {"none", "snappy", "lz4", "zstd"};
  *rc = 0;
  if (strcmp(name, "value_size_distribution") == 0) {
    if (strcmp(value, "fixed") == 0)
      f->value_size_distribution = FLAGS_VALUE_FIXED;
    else if (strcmp(value, "uniform") == 0)
      f->value_size_distribution = FLAGS_VALUE_UNIFORM;
    else if (strcmp(value, "pareto") == 0)
      f->value_size_distribution = FLAGS_VALUE_PARETO;
    else
      *rc = 1;
  } else if (strcmp(name, "key_distribution") == 0) {
    if (strcmp(value, "uniform") == 0 || strcmp(value, "zipfian") == 0)
      f->zipfian = strcmp(value, "zipfian") == 0;
    else
      *rc = 1;
  } else if (strcmp(name, "compression_type") == 0) {
    *rc = 1;
    for (size_t i = 0; i < sizeof compressions / sizeof compressions[0]; i++) {
      if (strcmp(value, compressions[i]) == 0) {
        f->compression_type = compressions[i];
        *rc = 0;
      }
    }
  } else if (strcmp(name, "seed") == 0) {
    int64_t v = 0;
    if (parse_i64(value, &v) == 0)
      f->seed = (uint64_t)v;
    else
      *rc = 1;
  } else {
    return 0;
  }
  if (*rc != 0) {
    const char *allowed = strcmp(name, "value_size_distribution") == 0 ? "fixed, uniform, pareto"
                          : strcmp(name, "key_distribution") == 0      ? "uniform, zipfian"
                          : strcmp(name, "compression_type") == 0 ? "none, snappy, lz4, zstd"
                                                                   : "an integer";
    set_error(err, err_len, "--%s=%s: not one of %s", name, value, allowed);
  }
  return 1;
}

static void set_defaults(struct bench_flags *f)
{
  *f = (struct bench_flags){
      .engine = "mayfly",
      .benchmarks = "fillseq,fillrandom,overwrite,readrandom,readseq",
      .num = 1000000,
      .reads = -1,
      .writes = -1,
      .key_size = 16,
      .value_size = 100,
      .db = "/tmp/mayfly-bench",
      .options = "",
      .leveldb_options = "",
      .rocksdb_options = "",
      .seed = 301,
      .zipf_theta = 0.99,
      .threads = 1,
      .compression_type = "none",
      .settle_seconds = 1.0,
      .mix = {.keyrange_num = 1,
              .get_ratio = 1.0,
              .max_scan_len = 10000,
              .max_value_size = 1024,
              .sine_interval_ms = 10000,
              .sine_a = 1,
              .sine_b = 1,
              .sine_d = 1,
              .value_scale = 1.0},
      .shared = {.write_buffer_size = 64 << 20,
                 .block_size = 4 << 10,
                 .block_cache_size = 32 << 20,
                 .bloom_bits_per_key = 10,
                 .table_file_size = 64 << 20,
                 .max_open_files = 1000}};
}

/* Checks between flags, once all are known. */
static int check_combinations(struct bench_flags *f, int sine_given, int sine_params_given,
                              char *err, size_t err_len)
{
  if (f->reads < 0)
    f->reads = f->num;
  if (f->writes < 0)
    f->writes = f->num;
  /* Every key index below the capacity (num, and room for YCSB inserts) must fit in key_size
   * decimal digits. */
  char digits[32];
  int ndigits = snprintf(digits, sizeof digits, "%" PRIu64, flags_key_capacity(f));
  if (ndigits > f->key_size) {
    set_error(err, err_len, "--key_size=%d is too small for --num=%" PRId64 " (needs %d digits)",
              f->key_size, f->num, ndigits);
    return 1;
  }
  if (f->sync && f->disable_wal) {
    set_error(err, err_len, "--sync and --disable_wal together: a synchronous write needs the WAL");
    return 1;
  }
  if (!(f->mix.get_ratio + f->mix.put_ratio + f->mix.seek_ratio > 0)) {
    set_error(err, err_len, "--mix_get_ratio, --mix_put_ratio and --mix_seek_ratio are all 0");
    return 1;
  }
  /* db_bench paces mixgraph only with --sine_mix_rate; mayfly_bench also when a sine_*
   * parameter is given, since it has no other use for them. */
  if (!sine_given && sine_params_given)
    f->mix.sine = 1;
  return 0;
}

int flags_parse(int argc, char **argv, struct bench_flags *f, char *err, size_t err_len)
{
  set_defaults(f);
  err[0] = '\0';
  int sine_given = 0, sine_params_given = 0;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
      return FLAGS_HELP;
    if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
      set_error(err, err_len, "bad argument \"%s\" (flags look like --name=value)", arg);
      return FLAGS_ERROR;
    }
    char name[64];
    const char *eq = strchr(arg, '=');
    size_t nlen = eq != NULL ? (size_t)(eq - arg - 2) : strlen(arg + 2);
    if (nlen >= sizeof name) {
      set_error(err, err_len, "unknown flag \"%.80s\"", arg);
      return FLAGS_ERROR;
    }
    memcpy(name, arg + 2, nlen);
    name[nlen] = '\0';
    const char *value = eq != NULL ? eq + 1 : NULL;
    const struct flag_row *row = NULL;
    for (size_t r = 0; r < NUM_ROWS && row == NULL; r++)
      if (strcmp(k_rows[r].name, name) == 0)
        row = &k_rows[r];
    if (value == NULL) {
      if (row == NULL || row->kind != K_BOOL) {
        set_error(err, err_len, "%s \"%s\" (flags look like --name=value)",
                  row != NULL ? "no value for" : "unknown flag", arg);
        return FLAGS_ERROR;
      }
      value = "true";
    }
    int rc = 0;
    if (row != NULL)
      rc = apply_row(row, value, f, err, err_len);
    else if (!apply_word(name, value, f, &rc, err, err_len)) {
      set_error(err, err_len, "unknown flag \"--%s\" (see --help)", name);
      return FLAGS_ERROR;
    }
    if (rc != 0)
      return FLAGS_ERROR;
    if (strcmp(name, "sine_mix_rate") == 0)
      sine_given = 1;
    else if (strncmp(name, "sine_", 5) == 0)
      sine_params_given = 1;
  }
  return check_combinations(f, sine_given, sine_params_given, err, err_len) == 0 ? FLAGS_OK
                                                                                 : FLAGS_ERROR;
}
