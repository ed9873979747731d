/* mayfly_bench: a db_bench-like comparison of mayfly with other engines.
 *
 * The workloads below are engine-neutral: they drive an engine through the adapter table of
 * bench/adapter.h, so every engine runs exactly the same operations, keys and values, in one
 * process, one after the other (absolute numbers drift between machines, so engines are
 * compared in the same run, as ratios).
 *
 * Workloads (db_bench's names and meaning):
 *   fillseq     num puts, key indexes 0..num-1 in order, into an empty database
 *   fillrandom  num puts, uniform random key indexes in [0, num), into an empty database
 *   overwrite   num puts, uniform random key indexes, into the database left by the last fill
 *   readrandom  reads point lookups of uniform random key indexes ("found N of M")
 *   readseq     one pass over every entry in key order
 *   readreverse one pass over every entry in reverse key order
 *   seekrandom  reads seeks to random keys, each reading seek_nexts + 1 entries
 *   deleterandom  writes deletes of random key indexes
 *   overwritezipf  like overwrite, with scrambled zipfian key indexes whatever
 *                  --key_distribution says (workload W1's updates)
 *   readwhilewriting  reads lookups by --threads readers while one more thread puts
 *               uniform random keys until they finish (figures are the readers')
 *   ycsba..ycsbf  reads operations of the YCSB core workloads on the loaded keys, scrambled
 *               zipfian(theta) keys: A 50% read/50% update, B 95/5, C read only, D 95% read/5%
 *               insert with "latest" keys (the newest hottest), E 95% scans of 1..100 entries
 *               (uniform length)/5% insert, F 50% read/50% read-modify-write
 *   stats       (pseudo) prints the engine's own statistics (mayfly.stats and
 *               mayfly.blob-stats, rocksdb.stats); not timed
 *   waitidle    (pseudo) waits until background work is done; timed, no amplification
 * --key_distribution=zipfian makes overwrite, readrandom, seekrandom and deleterandom draw
 * scrambled zipfian key indexes (bench/gen.h: YCSB's ScrambledZipfianGenerator, theta
 * --zipf_theta, default 0.99), so the hot keys are spread over the key space; fills stay
 * uniform. --threads=N splits each benchmark's operations over N threads (each scan
 * benchmark: every thread makes the pass); --duration=S stops each benchmark after S seconds.
 * Every operation is timed into a log-bucketed histogram (bench/gen.h); --histogram prints
 * p50/p95/p99/p99.9/max per benchmark and --json=FILE writes every figure as JSON.
 * Value sizes: --value_size, or with --value_size_distribution=uniform|pareto a size drawn
 * per put with that mean (space amp then assumes the mean for every live key).
 * A key is the key index in decimal, zero-padded to key_size bytes. Values are slices of a
 * 1 MiB pseudo-random buffer in which every value_size/2 random bytes are repeated once (half
 * compressible like db_bench's, though every engine runs with compression off). The same
 * --seed gives every engine the same sequence of keys and values; each benchmark draws its
 * keys from its own stream (seeded by --seed and the benchmark's name).
 *
 * Shared settings: every engine gets the same memtable size, block size, block cache size,
 * bloom filter bits per key, table file size and open-file limit (mayfly's defaults unless a
 * flag below overrides them), passed to each adapter as the start of its options text, so the
 * comparison measures the engines and not their defaults. --options and --leveldb_options
 * come after and may still override any of them for one engine.
 *
 * Write traffic: the engine's own counters when it has them (mayfly.bytes-written and
 * mayfly.user-bytes-written), and for every engine the bytes passed to write() by the
 * process (wchar of /proc/self/io, summed over all threads, so background flushes and
 * compactions count; work still running when a benchmark ends is charged to the next).
 *
 * Amplification, after every benchmark: the bench lets background work settle (the
 * adapter's wait_idle; for an engine without one, until the database directory's size has
 * not changed for a second), outside the timed region. Then
 *   write amp = wchar from the benchmark's start to the end of settling / key+value bytes
 *               the benchmark put,
 *   space amp = sum of the sizes of every file under the database directory (WAL, tables,
 *               manifest, info logs) / (distinct keys written since the last fill x
 *               (key_size + value_size)). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <pthread.h>
#include <time.h>

#include "adapter.h"
#include "gen.h"

#define ERR_LEN 1024
#define MAX_ENGINES 4
#define MAX_BENCHMARKS 32
#define VALUE_POOL_SIZE (1u << 20)
#define OPTIONS_TEXT_LEN 4096

static const bench_adapter *const k_adapters[] = {
    &bench_adapter_mayfly,
#ifdef MAYFLY_BENCH_HAVE_LEVELDB
    &bench_adapter_leveldb,
#endif
#ifdef MAYFLY_BENCH_HAVE_ROCKSDB
    &bench_adapter_rocksdb,
#endif
};
#define NUM_ADAPTERS (sizeof k_adapters / sizeof k_adapters[0])

/* ---- flags --------------------------------------------------------------------------- */

/* Settings given to every engine (see the header comment). */
struct shared_settings {
  int64_t write_buffer_size;
  int64_t block_size;
  int64_t block_cache_size;
  int64_t bloom_bits_per_key;
  int64_t table_file_size; /* mayfly target_file_size_base, LevelDB max_file_size */
  int64_t max_open_files;
};

enum value_distribution { VALUE_FIXED, VALUE_UNIFORM, VALUE_PARETO };

struct flags {
  const char *engine;
  const char *benchmarks;
  int64_t num;
  int64_t reads; /* < 0: num */
  int64_t writes; /* puts of overwrite and overwritezipf; < 0: num */
  int key_size;
  int value_size;
  const char *db;
  const char *options;         /* mayfly's options text */
  const char *trace_dir;       /* mayfly's lifetime traces go here (mayfly only) */
  const char *leveldb_options; /* the leveldb adapter's options text */
  const char *rocksdb_options; /* the rocksdb adapter's options text (mayfly's names) */
  uint64_t seed;
  int threads;
  double duration;   /* seconds; 0: no limit */
  int histogram;
  const char *json;  /* NULL: no JSON report */
  enum value_distribution value_size_distribution;
  int64_t seek_nexts;
  int zipfian;       /* --key_distribution=zipfian */
  double zipf_theta; /* --zipf_theta */
  struct shared_settings shared;
};

static void usage(FILE *out)
{
  fprintf(out,
          "usage: mayfly_bench [flags]\n"
          "  --engine=mayfly|leveldb|rocksdb|all  engines to run, in turn (default mayfly)\n"
          "  --benchmarks=a,b,...             fillseq,fillrandom,overwrite,readrandom,readseq\n"
          "                                   (default: these five, in that order),\n"
          "                                   overwritezipf, deleterandom, seekrandom,\n"
          "                                   readreverse, readwhilewriting, ycsba..ycsbf,\n"
          "                                   stats, waitidle\n"
          "  --num=N                          keys / operations per benchmark (1000000)\n"
          "  --reads=N                        operations of readrandom, seekrandom,\n"
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
          "  --json=FILE                      also write every figure as JSON to FILE\n"
          "  --db=DIR                         parent directory; each engine uses DIR/<engine>\n"
          "                                   (/tmp/mayfly-bench)\n"
          "shared by every engine (defaults: mayfly's own defaults):\n"
          "  --write_buffer_size=BYTES        memtable size (64 MiB)\n"
          "  --block_size=BYTES               table block size (4 KiB)\n"
          "  --cache_size=BYTES               block cache capacity (32 MiB)\n"
          "  --bloom_bits=N                   bloom filter bits per key, 0 = none (10)\n"
          "  --max_file_size=BYTES            table file size written by compactions (64 MiB)\n"
          "  --max_open_files=N               table files kept open (1000)\n"
          "per engine, applied after the shared settings:\n"
          "  --options=\"name=value;...\"       mayfly options (after compression=none)\n"
          "  --trace_dir=DIR                   mayfly: write lifetime traces to DIR (docs/tracing.md)\n"
          "  --leveldb_options=\"name=value;\"  leveldb options (write_buffer_size, block_size,\n"
          "                                   block_cache_size, max_open_files,\n"
          "                                   max_file_size, bloom_bits_per_key)\n"
          "  --rocksdb_options=\"name=value;\"  rocksdb options, mayfly's names and defaults\n"
          "                                   (see bench/adapter_rocksdb.c)\n"
          "  --seed=N                         random seed (default 301)\n"
          "engines built in:");
  for (size_t i = 0; i < NUM_ADAPTERS; i++)
    fprintf(out, " %s", k_adapters[i]->name);
  fprintf(out, "\n");
}

static int parse_i64(const char *text, int64_t *out)
{
  char *end = NULL;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0')
    return 1;
  *out = v;
  return 0;
}

static int parse_double(const char *text, double *out)
{
  char *end = NULL;
  errno = 0;
  double v = strtod(text, &end);
  if (errno != 0 || end == text || *end != '\0')
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
  if (errno != 0 || end == text || v < 0)
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

/* Key indexes a run tracks: num loaded keys, then room for the inserts of YCSB D and E (5%
 * of their operations each). Inserts past it still run but are not counted as live data. */
static uint64_t key_capacity(const struct flags *f)
{
  return 2 * (uint64_t)f->num + (uint64_t)(f->reads > 0 ? f->reads : f->num) + 1;
}

static int parse_flags(int argc, char **argv, struct flags *f)
{
  *f = (struct flags){.engine = "mayfly",
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
                      .shared = {.write_buffer_size = 64 << 20,
                                 .block_size = 4 << 10,
                                 .block_cache_size = 32 << 20,
                                 .bloom_bits_per_key = 10,
                                 .table_file_size = 64 << 20,
                                 .max_open_files = 1000}};
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      usage(stdout);
      exit(0);
    }
    if (strcmp(arg, "--histogram") == 0) { /* db_bench also takes the bare flag */
      f->histogram = 1;
      continue;
    }
    const char *eq = strchr(arg, '=');
    if (strncmp(arg, "--", 2) != 0 || eq == NULL) {
      fprintf(stderr, "mayfly_bench: bad argument \"%s\"\n", arg);
      return 1;
    }
    size_t nlen = (size_t)(eq - arg - 2);
    const char *name = arg + 2, *value = eq + 1;
    int64_t v = 0;
#define IS(flag) (nlen == strlen(flag) && strncmp(name, flag, nlen) == 0)
    if (IS("engine")) {
      f->engine = value;
    } else if (IS("benchmarks")) {
      f->benchmarks = value;
    } else if (IS("db")) {
      f->db = value;
    } else if (IS("options")) {
      f->options = value;
    } else if (IS("trace_dir")) {
      f->trace_dir = value;
    } else if (IS("leveldb_options")) {
      f->leveldb_options = value;
    } else if (IS("rocksdb_options")) {
      f->rocksdb_options = value;
    } else if (IS("num") && parse_i64(value, &v) == 0 && v >= 0) {
      f->num = v;
    } else if (IS("reads") && parse_i64(value, &v) == 0) {
      f->reads = v;
    } else if (IS("writes") && parse_i64(value, &v) == 0) {
      f->writes = v;
    } else if (IS("key_size") && parse_i64(value, &v) == 0 && v >= 1 && v <= 1024) {
      f->key_size = (int)v;
    } else if (IS("value_size") && parse_i64(value, &v) == 0 && v >= 0 &&
               v <= (int64_t)VALUE_POOL_SIZE / 2) {
      f->value_size = (int)v;
    } else if (IS("threads") && parse_i64(value, &v) == 0 && v >= 1 && v <= 64) {
      f->threads = (int)v;
    } else if (IS("duration") && parse_double(value, &f->duration) == 0 && f->duration >= 0) {
    } else if (IS("histogram") && (strcmp(value, "0") == 0 || strcmp(value, "1") == 0)) {
      f->histogram = value[0] == '1';
    } else if (IS("json") && value[0] != '\0') {
      f->json = value;
    } else if (IS("seek_nexts") && parse_i64(value, &v) == 0 && v >= 0) {
      f->seek_nexts = v;
    } else if (IS("value_size_distribution") &&
               (strcmp(value, "fixed") == 0 || strcmp(value, "uniform") == 0 ||
                strcmp(value, "pareto") == 0)) {
      f->value_size_distribution = value[0] == 'f'   ? VALUE_FIXED
                                   : value[0] == 'u' ? VALUE_UNIFORM
                                                     : VALUE_PARETO;
    } else if (IS("key_distribution") &&
               (strcmp(value, "uniform") == 0 || strcmp(value, "zipfian") == 0)) {
      f->zipfian = strcmp(value, "zipfian") == 0;
    } else if (IS("zipf_theta") && parse_double(value, &f->zipf_theta) == 0 &&
               f->zipf_theta > 0 && f->zipf_theta < 1) {
    } else if (IS("seed") && parse_i64(value, &v) == 0) {
      f->seed = (uint64_t)v;
    } else if (IS("write_buffer_size") && parse_bytes(value, &v) == 0 && v > 0) {
      f->shared.write_buffer_size = v;
    } else if (IS("block_size") && parse_bytes(value, &v) == 0 && v > 0) {
      f->shared.block_size = v;
    } else if (IS("cache_size") && parse_bytes(value, &v) == 0 && v >= 0) {
      f->shared.block_cache_size = v;
    } else if (IS("bloom_bits") && parse_i64(value, &v) == 0 && v >= 0 && v <= 64) {
      f->shared.bloom_bits_per_key = v;
    } else if (IS("max_file_size") && parse_bytes(value, &v) == 0 && v > 0) {
      f->shared.table_file_size = v;
    } else if (IS("max_open_files") && parse_i64(value, &v) == 0 && v > 0 && v <= 1000000) {
      f->shared.max_open_files = v;
    } else {
      fprintf(stderr, "mayfly_bench: bad flag or value \"%s\"\n", arg);
      return 1;
    }
#undef IS
  }
  if (f->reads < 0)
    f->reads = f->num;
  if (f->writes < 0)
    f->writes = f->num;
  /* Every key index below the capacity (num, and room for YCSB inserts) must fit in key_size
   * decimal digits. */
  char digits[32];
  int ndigits = snprintf(digits, sizeof digits, "%" PRIu64, key_capacity(f));
  if (ndigits > f->key_size) {
    fprintf(stderr, "mayfly_bench: --key_size=%d is too small for --num=%" PRId64 "\n",
            f->key_size, f->num);
    return 1;
  }
  return 0;
}

/* ---- random numbers, keys, values ------------------------------------------------------ */

/* The random streams come from bench/gen.c (splitmix64): the bench has no dependency on
 * the engine's own generators, so engines cannot disagree on the sequence. */
static uint64_t rng_next(uint64_t *state)
{
  return gen_rng_next(state);
}

static uint64_t rng_uniform(uint64_t *state, uint64_t n)
{
  return gen_rng_uniform(state, n);
}

/* Builds the value pool every value is a slice of (VALUE_POOL_SIZE bytes, malloc'd; the
 * caller frees it). */
static char *value_pool_create(uint64_t seed, int value_size)
{
  char *pool = malloc(VALUE_POOL_SIZE);
  if (pool == NULL)
    return NULL;
  uint64_t state = seed ^ 0x5eedull;
  /* Pieces of value_size bytes whose first half is random printable text and second half a
   * copy of the first: the pool compresses to about half, like db_bench's. */
  size_t piece = value_size > 1 ? (size_t)value_size : 100;
  for (size_t off = 0; off < VALUE_POOL_SIZE; off += piece) {
    size_t len = VALUE_POOL_SIZE - off < piece ? VALUE_POOL_SIZE - off : piece;
    size_t half = (len + 1) / 2;
    for (size_t i = 0; i < half; i++)
      pool[off + i] = (char)(' ' + rng_uniform(&state, 95));
    for (size_t i = half; i < len; i++)
      pool[off + i] = pool[off + i - half];
  }
  return pool;
}

/* Writes index in decimal, zero-padded to key_size bytes (key has key_size + 1 bytes; a NUL
 * follows the key). Hand-rolled because snprintf would cost as much as some engines' put. */
static void make_key(char *key, int key_size, uint64_t index)
{
  for (int i = key_size - 1; i >= 0; i--) {
    key[i] = (char)('0' + index % 10);
    index /= 10;
  }
  key[key_size] = '\0';
}

/* ---- measuring --------------------------------------------------------------------------- */

static double now_seconds(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Bytes this process (all threads) has passed to write()-like calls; 0 when unknown. */
static uint64_t process_wchar(void)
{
  FILE *f = fopen("/proc/self/io", "r");
  if (f == NULL)
    return 0;
  char line[128];
  uint64_t v = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned long long x = 0;
    if (sscanf(line, "wchar: %llu", &x) == 1) {
      v = x;
      break;
    }
  }
  fclose(f);
  return v;
}

struct result {
  int ran;
  uint64_t ops;
  double ops_per_sec;
  double micros_per_op;
  uint64_t wchar; /* bytes passed to write() during the benchmark */
  double write_amp; /* 0: the benchmark put nothing */
  double space_amp; /* 0: no live data */
  gen_hist *latency; /* per-operation latencies of every thread; NULL when none */
};

/* results[engine][benchmark] */
static struct result g_results[MAX_ENGINES][MAX_BENCHMARKS];
static char g_versions[MAX_ENGINES][128];
static char g_options[MAX_ENGINES][OPTIONS_TEXT_LEN];

/* ---- workloads ----------------------------------------------------------------------------- */

/* One engine's run: the open database and what every thread of a benchmark shares. */
struct run {
  const bench_adapter *a;
  void *db; /* NULL when closed */
  char path[4096];
  const char *options;
  const struct flags *f;
  char *value_pool; /* VALUE_POOL_SIZE bytes, read-only once built */
  gen_zipf zipf; /* over num key indexes; zipf.n == 0 until a zipfian benchmark needs it */
  /* Key indexes put since the last fill: a bitmap of capacity bits (num, then the room YCSB
   * D and E inserts need), updated with atomics because workers share it. */
  uint8_t *written;
  uint64_t capacity;
  uint64_t distinct;  /* bits set in written (atomic) */
  uint64_t inserted;  /* next key index an insert takes (atomic); num after a fill */
  double deadline;    /* now_seconds() after which workers stop; 0: --duration not set */
  int stop;           /* set (atomic) when readwhilewriting's readers are done */
  const struct benchmark *bench; /* the one running */
  char err[ERR_LEN];
};

struct outcome {
  uint64_t ops;
  uint64_t bytes;        /* key+value bytes moved */
  uint64_t found;        /* lookups that found their key */
  uint64_t user_written; /* key+value bytes put */
};

/* One thread of a benchmark: its own random stream, key buffer, value position and
 * histogram; ops [begin, end) of the benchmark's operations. */
struct worker {
  struct run *r;
  int writer; /* readwhilewriting's extra writer thread */
  uint64_t rng;
  size_t value_pos;
  char key[1040]; /* key_size (<= 1024) + NUL */
  gen_zipf latest; /* YCSB D: grown to the inserted count before each draw */
  gen_hist *hist;
  struct outcome o;
  int64_t begin, end;
  int rc;
  char err[ERR_LEN];
  pthread_t thread;
};

enum key_order { KEYS_SEQUENTIAL, KEYS_UNIFORM, KEYS_ZIPFIAN, KEYS_LATEST };

static uint64_t now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The key order of a benchmark that draws random keys: zipfian when asked for (and num > 0,
 * which the zipfian generator needs), else uniform. Builds the shared generator on first use,
 * before any worker starts (workers only read it). */
static enum key_order random_key_order(struct run *r, int zipfian)
{
  if (!zipfian || r->f->num <= 0)
    return KEYS_UNIFORM;
  if (r->zipf.n != (uint64_t)r->f->num)
    gen_zipf_init(&r->zipf, (uint64_t)r->f->num, r->f->zipf_theta);
  return KEYS_ZIPFIAN;
}

static uint64_t next_index(struct worker *w, enum key_order order, int64_t i)
{
  struct run *r = w->r;
  switch (order) {
  case KEYS_SEQUENTIAL: return (uint64_t)i;
  case KEYS_ZIPFIAN: return gen_zipf_scrambled(&r->zipf, &w->rng);
  case KEYS_LATEST:
    gen_zipf_grow(&w->latest, __atomic_load_n(&r->inserted, __ATOMIC_RELAXED));
    return gen_latest(&w->latest, &w->rng);
  default: return r->f->num > 0 ? rng_uniform(&w->rng, (uint64_t)r->f->num) : 0;
  }
}

/* The next value's size under --value_size_distribution (mean value_size). */
static size_t value_size_next(struct worker *w)
{
  const struct flags *f = w->r->f;
  switch (f->value_size_distribution) {
  case VALUE_UNIFORM: /* [value_size/2, 3*value_size/2] */
    return (size_t)f->value_size / 2 + rng_uniform(&w->rng, (uint64_t)f->value_size + 1);
  case VALUE_PARETO:
    return f->value_size > 0 ? gen_pareto_size(&w->rng, (uint32_t)f->value_size,
                                               VALUE_POOL_SIZE / 2)
                             : 0;
  default: return (size_t)f->value_size;
  }
}

static void mark_written(struct run *r, uint64_t index, int present)
{
  if (index >= r->capacity)
    return;
  uint8_t bit = (uint8_t)(1u << (index & 7));
  uint8_t old = present ? __atomic_fetch_or(&r->written[index >> 3], bit, __ATOMIC_RELAXED)
                        : __atomic_fetch_and(&r->written[index >> 3], (uint8_t)~bit,
                                             __ATOMIC_RELAXED);
  if (present && (old & bit) == 0)
    __atomic_fetch_add(&r->distinct, 1, __ATOMIC_RELAXED);
  else if (!present && (old & bit) != 0)
    __atomic_fetch_sub(&r->distinct, 1, __ATOMIC_RELAXED);
}

static int put_index(struct worker *w, uint64_t index)
{
  struct run *r = w->r;
  int key_size = r->f->key_size;
  size_t vlen = value_size_next(w);
  if (w->value_pos + vlen > VALUE_POOL_SIZE)
    w->value_pos = 0;
  make_key(w->key, key_size, index);
  if (r->a->put(r->db, w->key, (size_t)key_size, r->value_pool + w->value_pos, vlen, w->err,
                sizeof w->err) != 0)
    return 1;
  w->value_pos += vlen;
  mark_written(r, index, 1);
  w->o.bytes += (uint64_t)key_size + vlen;
  w->o.user_written += (uint64_t)key_size + vlen;
  return 0;
}

static int get_index(struct worker *w, uint64_t index)
{
  int hit = 0;
  size_t vlen = 0;
  make_key(w->key, w->r->f->key_size, index);
  if (w->r->a->get(w->r->db, w->key, (size_t)w->r->f->key_size, &hit, &vlen, w->err,
                   sizeof w->err) != 0)
    return 1;
  if (hit) {
    w->o.found++;
    w->o.bytes += (uint64_t)w->r->f->key_size + vlen;
  }
  return 0;
}

static int scan_from(struct worker *w, uint64_t index, int reverse, uint64_t limit)
{
  uint64_t entries = 0, bytes = 0;
  make_key(w->key, w->r->f->key_size, index);
  if (w->r->a->scan(w->r->db, w->key, (size_t)w->r->f->key_size, reverse, limit, &entries,
                    &bytes, w->err, sizeof w->err) != 0)
    return 1;
  w->o.found += entries > 0;
  w->o.bytes += bytes;
  return 0;
}

/* Whether worker w should run its next operation: its share is not done, --duration has not
 * passed (checked every 64 operations), readwhilewriting's readers are not done. */
static int keep_going(struct worker *w, int64_t i)
{
  struct run *r = w->r;
  if (!w->writer && i >= w->end)
    return 0;
  if (((i - w->begin) & 63) == 0) {
    if (r->deadline > 0 && now_seconds() > r->deadline)
      return 0;
    if (w->writer && __atomic_load_n(&r->stop, __ATOMIC_RELAXED))
      return 0;
  }
  return 1;
}

/* The YCSB core workloads (A-F), single operations drawn per the mix. */
enum ycsb_op { YCSB_READ, YCSB_UPDATE, YCSB_INSERT, YCSB_SCAN, YCSB_RMW };

static enum ycsb_op ycsb_pick(struct worker *w, char workload)
{
  uint64_t p = rng_uniform(&w->rng, 100);
  switch (workload) {
  case 'a': return p < 50 ? YCSB_READ : YCSB_UPDATE;
  case 'b': return p < 95 ? YCSB_READ : YCSB_UPDATE;
  case 'c': return YCSB_READ;
  case 'd': return p < 95 ? YCSB_READ : YCSB_INSERT;
  case 'e': return p < 95 ? YCSB_SCAN : YCSB_INSERT;
  default: return p < 50 ? YCSB_READ : YCSB_RMW; /* f */
  }
}

static int ycsb_op(struct worker *w, char workload)
{
  struct run *r = w->r;
  enum key_order order = workload == 'd' ? KEYS_LATEST : KEYS_ZIPFIAN;
  switch (ycsb_pick(w, workload)) {
  case YCSB_READ: return get_index(w, next_index(w, order, 0));
  case YCSB_UPDATE: return put_index(w, next_index(w, order, 0));
  case YCSB_INSERT: return put_index(w, __atomic_fetch_add(&r->inserted, 1, __ATOMIC_RELAXED));
  case YCSB_SCAN: /* a zipfian start key, up to 100 entries (uniform length) */
    return scan_from(w, next_index(w, order, 0), 0, 1 + rng_uniform(&w->rng, 100));
  default: { /* read-modify-write: read the record, write it back */
    uint64_t index = next_index(w, order, 0);
    return get_index(w, index) != 0 ? 1 : put_index(w, index);
  }
  }
}

/* What a benchmark is: its body (one operation), how many operations it has, and how its
 * database is prepared. */
enum op_count { COUNT_NUM, COUNT_WRITES, COUNT_READS, COUNT_ONE };
#define B_FRESH 1u  /* starts from an empty database (fills) */
#define B_PSEUDO 2u /* stats: not timed, no figures */
#define B_NO_AMP 4u /* waitidle: timed, no amplification */

struct benchmark {
  const char *name;
  int (*op)(struct worker *w, int64_t i);
  enum op_count count;
  unsigned flags;
};

static int op_fillseq(struct worker *w, int64_t i) { return put_index(w, (uint64_t)i); }
static int op_fillrandom(struct worker *w, int64_t i)
{
  return put_index(w, next_index(w, KEYS_UNIFORM, i));
}
static int op_overwrite(struct worker *w, int64_t i)
{
  return put_index(w, next_index(w, w->r->f->zipfian ? KEYS_ZIPFIAN : KEYS_UNIFORM, i));
}
static int op_overwritezipf(struct worker *w, int64_t i)
{
  return put_index(w, next_index(w, KEYS_ZIPFIAN, i));
}
static int op_readrandom(struct worker *w, int64_t i)
{
  return get_index(w, next_index(w, w->r->f->zipfian ? KEYS_ZIPFIAN : KEYS_UNIFORM, i));
}
static int op_seekrandom(struct worker *w, int64_t i)
{
  return scan_from(w, next_index(w, w->r->f->zipfian ? KEYS_ZIPFIAN : KEYS_UNIFORM, i), 0,
                   (uint64_t)w->r->f->seek_nexts + 1);
}
static int op_deleterandom(struct worker *w, int64_t i)
{
  uint64_t index = next_index(w, w->r->f->zipfian ? KEYS_ZIPFIAN : KEYS_UNIFORM, i);
  make_key(w->key, w->r->f->key_size, index);
  if (w->r->a->del(w->r->db, w->key, (size_t)w->r->f->key_size, w->err, sizeof w->err) != 0)
    return 1;
  mark_written(w->r, index, 0);
  return 0;
}
static int op_readseq(struct worker *w, int64_t i)
{
  uint64_t entries = 0, bytes = 0;
  if (w->r->a->scan(w->r->db, NULL, 0, 0, 0, &entries, &bytes, w->err, sizeof w->err) != 0)
    return 1;
  w->o.ops += entries - 1; /* the caller counts one */
  w->o.bytes += bytes;
  return 0;
}
static int op_readreverse(struct worker *w, int64_t i)
{
  uint64_t entries = 0, bytes = 0;
  if (w->r->a->scan(w->r->db, NULL, 0, 1, 0, &entries, &bytes, w->err, sizeof w->err) != 0)
    return 1;
  w->o.ops += entries - 1;
  w->o.bytes += bytes;
  return 0;
}
/* readwhilewriting: the extra writer thread puts uniform keys; the others read. */
static int op_readwhilewriting(struct worker *w, int64_t i)
{
  return w->writer ? op_fillrandom(w, i) : op_readrandom(w, i);
}
static int op_waitidle(struct worker *w, int64_t i)
{
  struct run *r = w->r;
  if (r->a->wait_idle != NULL)
    return r->a->wait_idle(r->db, w->err, sizeof w->err);
  return 0; /* settle() below waits on the directory size */
}
#define YCSB_OP(x) \
  static int op_ycsb##x(struct worker *w, int64_t i) { return ycsb_op(w, #x[0]); }
YCSB_OP(a) YCSB_OP(b) YCSB_OP(c) YCSB_OP(d) YCSB_OP(e) YCSB_OP(f)
#undef YCSB_OP

static const struct benchmark k_benchmarks[] = {
    {"fillseq", op_fillseq, COUNT_NUM, B_FRESH},
    {"fillrandom", op_fillrandom, COUNT_NUM, B_FRESH},
    {"overwrite", op_overwrite, COUNT_WRITES, 0},
    {"overwritezipf", op_overwritezipf, COUNT_WRITES, 0},
    {"deleterandom", op_deleterandom, COUNT_WRITES, 0},
    {"readrandom", op_readrandom, COUNT_READS, 0},
    {"seekrandom", op_seekrandom, COUNT_READS, 0},
    {"readseq", op_readseq, COUNT_ONE, 0},
    {"readreverse", op_readreverse, COUNT_ONE, 0},
    {"readwhilewriting", op_readwhilewriting, COUNT_READS, 0},
    {"ycsba", op_ycsba, COUNT_READS, 0},
    {"ycsbb", op_ycsbb, COUNT_READS, 0},
    {"ycsbc", op_ycsbc, COUNT_READS, 0},
    {"ycsbd", op_ycsbd, COUNT_READS, 0},
    {"ycsbe", op_ycsbe, COUNT_READS, 0},
    {"ycsbf", op_ycsbf, COUNT_READS, 0},
    {"waitidle", op_waitidle, COUNT_ONE, B_NO_AMP},
    {"stats", NULL, COUNT_ONE, B_PSEUDO},
};
#define NUM_BENCHMARK_KINDS (sizeof k_benchmarks / sizeof k_benchmarks[0])

static const struct benchmark *find_benchmark(const char *name)
{
  for (size_t i = 0; i < NUM_BENCHMARK_KINDS; i++)
    if (strcmp(name, k_benchmarks[i].name) == 0)
      return &k_benchmarks[i];
  return NULL;
}

static void *worker_main(void *arg)
{
  struct worker *w = arg;
  const struct benchmark *b = w->r->bench;
  for (int64_t i = w->begin; keep_going(w, i); i++) {
    uint64_t t = now_ns();
    if (b->op(w, i) != 0) {
      w->rc = 1;
      break;
    }
    if (!w->writer) { /* readwhilewriting reports its readers, as db_bench does */
      gen_hist_add(w->hist, now_ns() - t);
      w->o.ops++;
    }
  }
  return NULL;
}

static int db_close(struct run *r)
{
  if (r->db == NULL)
    return 0;
  void *db = r->db;
  r->db = NULL;
  return r->a->close(db, r->err, sizeof r->err);
}

static int db_open(struct run *r, int fresh)
{
  if (db_close(r) != 0)
    return 1;
  if (fresh && r->a->destroy(r->path, r->err, sizeof r->err) != 0)
    return 1;
  if (fresh) {
    memset(r->written, 0, (size_t)(r->capacity + 7) / 8);
    r->distinct = 0;
  }
  r->inserted = (uint64_t)r->f->num;
  return r->a->open(r->path, r->options, &r->db, r->err, sizeof r->err);
}

static void print_write_traffic(struct run *r, const struct outcome *o, uint64_t wchar)
{
  if (o->user_written > 0 && wchar > 0)
    printf("             write(): %.1f MB, %.2f x user bytes\n", (double)wchar / 1048576.0,
           (double)wchar / (double)o->user_written);
  else if (wchar > 0)
    printf("             write(): %.1f MB (background work)\n", (double)wchar / 1048576.0);
  uint64_t engine_bytes = 0, user_bytes = 0;
  if (r->a->bytes_written != NULL && r->a->bytes_written(r->db, &engine_bytes, &user_bytes) == 0)
    printf("             %s.bytes-written=%" PRIu64 " %s.user-bytes-written=%" PRIu64
           " (since open: write amp %.2f)\n",
           r->a->name, engine_bytes, r->a->name, user_bytes,
           user_bytes > 0 ? (double)engine_bytes / (double)user_bytes : 0.0);
}

/* Sum of the sizes of the regular files under path, subdirectories included. */
static int dir_size(const char *path, uint64_t *total)
{
  DIR *d = opendir(path);
  if (d == NULL)
    return 1;
  int rc = 0;
  struct dirent *e;
  while (rc == 0 && (e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    char child[4096];
    struct stat st;
    snprintf(child, sizeof child, "%s/%s", path, e->d_name);
    if (lstat(child, &st) != 0)
      continue; /* deleted by a background job since readdir: it takes no space */
    if (S_ISDIR(st.st_mode))
      rc = dir_size(child, total);
    else if (S_ISREG(st.st_mode))
      *total += (uint64_t)st.st_size;
  }
  closedir(d);
  return rc;
}

/* Lets the engine's flushes and compactions finish: its wait_idle, or (engines without one)
 * until the directory's size is the same in two samples one second apart. */
static int settle(struct run *r)
{
  if (r->a->wait_idle != NULL)
    return r->a->wait_idle(r->db, r->err, sizeof r->err);
  const struct timespec second = {.tv_sec = 1, .tv_nsec = 0};
  uint64_t before = 0;
  if (dir_size(r->path, &before) != 0)
    return 0; /* nothing to measure: space amp will say so */
  for (;;) {
    nanosleep(&second, NULL);
    uint64_t after = 0;
    if (dir_size(r->path, &after) != 0 || after == before)
      return 0;
    before = after;
  }
}

/* Settles background work, then records and prints write and space amplification. */
static int measure_amplification(struct run *r, const struct outcome *o, uint64_t wchar_before,
                                 struct result *res)
{
  double start = now_seconds();
  if (settle(r) != 0)
    return 1;
  double settled = now_seconds() - start;
  uint64_t wchar = process_wchar() - wchar_before;
  uint64_t disk = 0;
  int have_disk = dir_size(r->path, &disk) == 0;
  uint64_t live = r->distinct * (uint64_t)(r->f->key_size + r->f->value_size);
  res->write_amp = o->user_written > 0 ? (double)wchar / (double)o->user_written : 0;
  res->space_amp = have_disk && live > 0 ? (double)disk / (double)live : 0;
  printf("             amp: write %.2f (%" PRIu64 " B written incl. %.1f s settling / %" PRIu64
         " B put), space %.2f (%" PRIu64 " B on disk / %" PRIu64 " B live in %" PRIu64
         " keys)\n",
         res->write_amp, wchar, settled, o->user_written, res->space_amp, disk, live,
         r->distinct);
  return 0;
}

/* Each benchmark draws its own key sequence, from --seed and its name: every engine sees the
 * same keys, and a readrandom run on its own (on a database filled by an earlier run) does
 * not replay the very keys its fill wrote. */
static uint64_t benchmark_seed(uint64_t seed, const char *name)
{
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (const char *p = name; *p != '\0'; p++)
    h = (h ^ (unsigned char)*p) * 1099511628211ull;
  uint64_t state = seed ^ h;
  return rng_next(&state);
}

static void print_latency(const gen_hist *h)
{
  if (h == NULL || h->count == 0)
    return;
  printf("             latency (us): avg %.2f  p50 %.2f  p95 %.2f  p99 %.2f  p99.9 %.2f  max %.2f"
         "  (%" PRIu64 " ops)\n",
         (double)h->sum_ns / (double)h->count / 1e3, gen_hist_percentile(h, 0.50) / 1e3,
         gen_hist_percentile(h, 0.95) / 1e3, gen_hist_percentile(h, 0.99) / 1e3,
         gen_hist_percentile(h, 0.999) / 1e3, (double)h->max_ns / 1e3, h->count);
}

/* Runs the workers of benchmark b (--threads of them, plus readwhilewriting's writer) until
 * they are done; sums their outcomes into *o and their latencies into *hist. */
static int run_workers(struct run *r, const struct benchmark *b, uint64_t seed,
                       struct outcome *o, gen_hist *hist)
{
  const struct flags *f = r->f;
  int readers = b->count == COUNT_ONE && b->op == op_waitidle ? 1 : f->threads;
  int nworkers = readers + (b->op == op_readwhilewriting);
  int64_t count = b->count == COUNT_NUM      ? f->num
                  : b->count == COUNT_WRITES ? f->writes
                  : b->count == COUNT_READS  ? f->reads
                                             : 1;
  struct worker *ws = calloc((size_t)nworkers, sizeof *ws);
  if (ws == NULL) {
    snprintf(r->err, sizeof r->err, "out of memory");
    return 1;
  }
  int rc = 0;
  for (int t = 0; t < nworkers && rc == 0; t++) {
    struct worker *w = &ws[t];
    w->r = r;
    w->writer = t == readers;
    /* Thread 0 keeps the benchmark's stream, so one thread replays earlier runs. */
    w->rng = seed;
    for (int k = 0; k < t; k++)
      w->rng = rng_next(&w->rng);
    w->value_pos = (size_t)t * 4099 % VALUE_POOL_SIZE;
    int64_t share = count / readers;
    w->begin = COUNT_ONE == b->count ? 0 : (int64_t)t * share;
    w->end = COUNT_ONE == b->count ? 1 : t == readers - 1 ? count : w->begin + share;
    w->hist = calloc(1, sizeof *w->hist);
    if (w->hist == NULL ||
        (b->op == op_ycsbd && gen_zipf_init(&w->latest, r->inserted, f->zipf_theta) != 0)) {
      snprintf(r->err, sizeof r->err, "out of memory (or an empty database for ycsbd)");
      rc = 1;
    }
  }
  r->bench = b;
  r->stop = 0;
  r->deadline = f->duration > 0 ? now_seconds() + f->duration : 0;
  int started = 0;
  for (; rc == 0 && started < nworkers; started++) {
    if (pthread_create(&ws[started].thread, NULL, worker_main, &ws[started]) != 0) {
      snprintf(r->err, sizeof r->err, "pthread_create failed");
      rc = 1;
      break;
    }
  }
  for (int t = 0; t < started; t++) {
    if (t == readers || rc != 0)
      __atomic_store_n(&r->stop, 1, __ATOMIC_RELAXED);
    pthread_join(ws[t].thread, NULL);
  }
  for (int t = 0; t < nworkers; t++) {
    struct worker *w = &ws[t];
    if (w->rc != 0 && rc == 0) {
      memcpy(r->err, w->err, sizeof r->err);
      rc = 1;
    }
    o->ops += w->o.ops;
    o->bytes += w->o.bytes;
    o->found += w->o.found;
    o->user_written += w->o.user_written;
    if (w->hist != NULL)
      gen_hist_merge(hist, w->hist);
    free(w->hist);
  }
  free(ws);
  return rc;
}

/* Runs one benchmark on r and records its figures in *res. */
static int run_benchmark(struct run *r, const struct benchmark *b, struct result *res)
{
  int fresh = (b->flags & B_FRESH) != 0;
  if (fresh || r->db == NULL) {
    if (db_open(r, fresh) != 0)
      return 1;
  }
  if (b->flags & B_PSEUDO) {
    if (r->a->print_stats != NULL)
      r->a->print_stats(r->db);
    else
      printf("stats        : %s has no statistics\n", r->a->name);
    fflush(stdout);
    return 0;
  }
  random_key_order(r, 1); /* builds the shared zipfian generator outside the timed region */
  res->latency = calloc(1, sizeof *res->latency);
  if (res->latency == NULL) {
    snprintf(r->err, sizeof r->err, "out of memory");
    return 1;
  }
  struct outcome o = {0};
  uint64_t wchar_before = process_wchar();
  double start = now_seconds();
  int rc = run_workers(r, b, benchmark_seed(r->f->seed, b->name), &o, res->latency);
  if (rc == 0 && b->op == op_waitidle && r->a->wait_idle == NULL)
    rc = settle(r);
  double elapsed = now_seconds() - start;
  uint64_t wchar_after = process_wchar();
  if (rc != 0)
    return 1;
  if (elapsed <= 0)
    elapsed = 1e-9;
  uint64_t ops = o.ops > 0 ? o.ops : 1;
  res->ops = o.ops;
  res->ops_per_sec = (double)o.ops / elapsed;
  res->micros_per_op = elapsed * 1e6 / (double)ops;
  res->wchar = wchar_after - wchar_before;
  printf("%-12s : %11.3f micros/op %8.0f ops/sec %7.1f MB/s", b->name, res->micros_per_op,
         res->ops_per_sec, (double)o.bytes / 1048576.0 / elapsed);
  if (b->op == op_readrandom || b->op == op_seekrandom || b->op == op_readwhilewriting)
    printf(" (found %" PRIu64 " of %" PRIu64 ")", o.found, o.ops);
  printf("\n");
  if (r->f->histogram)
    print_latency(res->latency);
  print_write_traffic(r, &o, wchar_after - wchar_before);
  if (!(b->flags & B_NO_AMP) && measure_amplification(r, &o, wchar_before, res) != 0)
    return 1;
  fflush(stdout);
  return 0;
}

/* ---- driver -------------------------------------------------------------------------------- */

static int split_benchmarks(const char *list, char names[][32], int *count)
{
  *count = 0;
  const char *p = list;
  while (*p != '\0') {
    const char *comma = strchr(p, ',');
    size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
    if (len > 0) {
      if (*count == MAX_BENCHMARKS || len >= 32) {
        fprintf(stderr, "mayfly_bench: too many or too long benchmark names\n");
        return 1;
      }
      memcpy(names[*count], p, len);
      names[*count][len] = '\0';
      if (find_benchmark(names[*count]) == NULL) {
        fprintf(stderr, "mayfly_bench: unknown benchmark \"%s\"\n", names[*count]);
        return 1;
      }
      (*count)++;
    }
    p += len + (comma != NULL);
  }
  return 0;
}

static int select_engines(const char *spec, const bench_adapter **engines, int *count)
{
  *count = 0;
  if (strcmp(spec, "all") == 0) {
    for (size_t i = 0; i < NUM_ADAPTERS && i < MAX_ENGINES; i++)
      engines[(*count)++] = k_adapters[i];
    return 0;
  }
  for (size_t i = 0; i < NUM_ADAPTERS; i++) {
    if (strcmp(spec, k_adapters[i]->name) == 0) {
      engines[(*count)++] = k_adapters[i];
      return 0;
    }
  }
  fprintf(stderr, "mayfly_bench: engine \"%s\" is not built in\n", spec);
  usage(stderr);
  return 1;
}

/* The engine's options text: the shared settings under the engine's own option names, then
 * the engine's own options flag (which may override them). The rocksdb adapter takes
 * mayfly's names. */
static int engine_options_text(const char *engine, const struct flags *f, char *out, size_t len)
{
  const struct shared_settings *s = &f->shared;
  const char *file_size_name = "target_file_size_base", *extra = NULL;
  if (strcmp(engine, "mayfly") == 0) {
    extra = f->options;
  } else if (strcmp(engine, "rocksdb") == 0) {
    extra = f->rocksdb_options;
  } else if (strcmp(engine, "leveldb") == 0) {
    file_size_name = "max_file_size";
    extra = f->leveldb_options;
  }
  if (extra == NULL) { /* an engine this function does not know: its own defaults */
    out[0] = '\0';
    return 0;
  }
  int n = snprintf(out, len,
                   "write_buffer_size=%" PRId64 ";block_size=%" PRId64 ";block_cache_size=%" PRId64
                   ";bloom_bits_per_key=%" PRId64 ";%s=%" PRId64 ";max_open_files=%" PRId64 "%s%s",
                   s->write_buffer_size, s->block_size, s->block_cache_size,
                   s->bloom_bits_per_key, file_size_name, s->table_file_size, s->max_open_files,
                   extra[0] != '\0' ? ";" : "", extra);
  if (n >= 0 && (size_t)n < len && f->trace_dir && strcmp(engine, "mayfly") == 0)
    n += snprintf(out + n, len - (size_t)n, ";trace_dir=%s", f->trace_dir);
  return n < 0 || (size_t)n >= len ? 1 : 0;
}

static int run_engine(int e, const bench_adapter *a, const struct flags *f, char names[][32],
                      int nbench, struct result *results)
{
  struct run r = {.a = a, .f = f};
  char *options = g_options[e];
  if (engine_options_text(a->name, f, options, OPTIONS_TEXT_LEN) != 0) {
    fprintf(stderr, "mayfly_bench: the options text for %s is too long\n", a->name);
    return 1;
  }
  r.options = options;
  snprintf(r.path, sizeof r.path, "%s/%s", f->db, a->name);
  r.capacity = key_capacity(f);
  r.written = calloc(1, (size_t)(r.capacity + 7) / 8 + 1);
  r.value_pool = value_pool_create(f->seed, f->value_size);
  if (r.value_pool == NULL || r.written == NULL) {
    fprintf(stderr, "mayfly_bench: out of memory\n");
    free(r.value_pool);
    free(r.written);
    return 1;
  }
  char *version = g_versions[e];
  a->version(version, sizeof g_versions[e]);
  printf("------------------------------------------------\n");
  printf("Engine:     %s, db %s, options \"%s\"\n", version, r.path, r.options);
  int rc = 0;
  for (int b = 0; b < nbench && rc == 0; b++) {
    rc = run_benchmark(&r, find_benchmark(names[b]), &results[b]);
    results[b].ran = rc == 0;
  }
  if (rc != 0)
    fprintf(stderr, "mayfly_bench: %s\n", r.err);
  if (db_close(&r) != 0 && rc == 0) {
    fprintf(stderr, "mayfly_bench: %s\n", r.err);
    rc = 1;
  }
  free(r.value_pool);
  free(r.written);
  return rc;
}

static void print_comparison(const bench_adapter **engines, int nengines, char names[][32],
                             int nbench)
{
  printf("================================================\n");
  printf("%-12s", "ops/sec");
  for (int e = 0; e < nengines; e++)
    printf(" %12s", engines[e]->name);
  for (int e = 1; e < nengines; e++) {
    char head[64];
    snprintf(head, sizeof head, "%s/%s", engines[0]->name, engines[e]->name);
    printf(" %15s", head);
  }
  printf("\n");
  for (int b = 0; b < nbench; b++) {
    printf("%-12s", names[b]);
    for (int e = 0; e < nengines; e++) {
      if (g_results[e][b].ran)
        printf(" %12.0f", g_results[e][b].ops_per_sec);
      else
        printf(" %12s", "-");
    }
    for (int e = 1; e < nengines; e++) {
      if (g_results[0][b].ran && g_results[e][b].ran && g_results[e][b].ops_per_sec > 0)
        printf(" %15.2f", g_results[0][b].ops_per_sec / g_results[e][b].ops_per_sec);
      else
        printf(" %15s", "-");
    }
    printf("\n");
  }
  printf("%-12s", "write() MB");
  for (int e = 0; e < nengines; e++)
    printf(" %12s", engines[e]->name);
  printf("\n");
  for (int b = 0; b < nbench; b++) {
    printf("%-12s", names[b]);
    for (int e = 0; e < nengines; e++) {
      if (g_results[e][b].ran)
        printf(" %12.1f", (double)g_results[e][b].wchar / 1048576.0);
      else
        printf(" %12s", "-");
    }
    printf("\n");
  }
  printf("%-12s", "write/space amp");
  for (int e = 0; e < nengines; e++)
    printf(" %12s", engines[e]->name);
  printf("\n");
  for (int b = 0; b < nbench; b++) {
    printf("%-12s", names[b]);
    for (int e = 0; e < nengines; e++) {
      char cell[32] = "-";
      if (g_results[e][b].ran)
        snprintf(cell, sizeof cell, "%.2f/%.2f", g_results[e][b].write_amp,
                 g_results[e][b].space_amp);
      printf(" %12s", cell);
    }
    printf("\n");
  }
}

/* Writes s as a JSON string (the characters options text and versions can hold). */
/* JSON has no NaN or infinity: a ratio without a denominator is reported as 0. */
static double finite_or_zero(double x) { return isfinite(x) ? x : 0.0; }

static void json_string(FILE *out, const char *s)
{
  fputc('"', out);
  for (; *s != '\0'; s++) {
    if (*s == '"' || *s == '\\')
      fprintf(out, "\\%c", *s);
    else if ((unsigned char)*s < 0x20)
      fprintf(out, "\\u%04x", (unsigned char)*s);
    else
      fputc(*s, out);
  }
  fputc('"', out);
}

/* --json: every engine's figures, one object per benchmark that ran; latencies in
 * microseconds. */
static int write_json(const char *path, const struct flags *f, const bench_adapter **engines,
                      int nengines, char names[][32], int nbench, const char *date)
{
  FILE *out = fopen(path, "w");
  if (out == NULL)
    return 1;
  fprintf(out, "{\"date\": ");
  json_string(out, date);
  fprintf(out,
          ", \"num\": %" PRId64 ", \"reads\": %" PRId64 ", \"writes\": %" PRId64
          ", \"key_size\": %d, \"value_size\": %d, \"threads\": %d, \"seed\": %" PRIu64
          ",\n \"engines\": [",
          f->num, f->reads, f->writes, f->key_size, f->value_size, f->threads, f->seed);
  for (int e = 0; e < nengines; e++) {
    fprintf(out, "%s\n  {\"engine\": ", e > 0 ? "," : "");
    json_string(out, engines[e]->name);
    fprintf(out, ", \"version\": ");
    json_string(out, g_versions[e]);
    fprintf(out, ", \"options\": ");
    json_string(out, g_options[e]);
    fprintf(out, ", \"benchmarks\": [");
    int first = 1;
    for (int b = 0; b < nbench; b++) {
      const struct result *res = &g_results[e][b];
      if (!res->ran || res->latency == NULL)
        continue;
      const gen_hist *h = res->latency;
      fprintf(out,
              "%s\n    {\"name\": \"%s\", \"ops\": %" PRIu64 ", \"ops_per_sec\": %.1f"
              ", \"micros_per_op\": %.3f, \"write_bytes\": %" PRIu64
              ", \"write_amp\": %.4f, \"space_amp\": %.4f, \"latency_us\": {\"count\": %" PRIu64
              ", \"avg\": %.3f, \"p50\": %.3f, \"p95\": %.3f, \"p99\": %.3f, \"p99.9\": %.3f"
              ", \"max\": %.3f}}",
              first ? "" : ",", names[b], res->ops, res->ops_per_sec, res->micros_per_op,
              res->wchar, finite_or_zero(res->write_amp), finite_or_zero(res->space_amp), h->count,
              h->count > 0 ? (double)h->sum_ns / (double)h->count / 1e3 : 0.0,
              gen_hist_percentile(h, 0.50) / 1e3, gen_hist_percentile(h, 0.95) / 1e3,
              gen_hist_percentile(h, 0.99) / 1e3, gen_hist_percentile(h, 0.999) / 1e3,
              (double)h->max_ns / 1e3);
      first = 0;
    }
    fprintf(out, "]}");
  }
  fprintf(out, "\n]}\n");
  return fclose(out) == 0 ? 0 : 1;
}

/* mkdir -p: creates path and its missing parents. */
static int make_dirs(const char *path)
{
  char buf[4096];
  size_t len = strlen(path);
  if (len == 0 || len >= sizeof buf) {
    errno = ENAMETOOLONG;
    return 1;
  }
  memcpy(buf, path, len + 1);
  for (size_t i = 1; i <= len; i++) {
    if (buf[i] != '/' && buf[i] != '\0')
      continue;
    char saved = buf[i];
    buf[i] = '\0';
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
      return 1;
    buf[i] = saved;
  }
  return 0;
}

int main(int argc, char **argv)
{
  struct flags f;
  if (parse_flags(argc, argv, &f) != 0) {
    usage(stderr);
    return 2;
  }
  char names[MAX_BENCHMARKS][32];
  int nbench = 0, nengines = 0;
  const bench_adapter *engines[MAX_ENGINES];
  if (split_benchmarks(f.benchmarks, names, &nbench) != 0 ||
      select_engines(f.engine, engines, &nengines) != 0)
    return 2;
  if (make_dirs(f.db) != 0) {
    fprintf(stderr, "mayfly_bench: mkdir %s: %s\n", f.db, strerror(errno));
    return 1;
  }

  char date[64];
  time_t t = time(NULL);
  strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", localtime(&t));
  printf("Date:       %s\n", date);
  printf("Keys:       %d bytes each\n", f.key_size);
  printf("Values:     %d bytes each (about half compressible; compression off)\n",
         f.value_size);
  printf("Entries:    %" PRId64 " (reads %" PRId64 ", overwrites %" PRId64 ")\n", f.num,
         f.reads, f.writes);
  printf("Keys:       %s for overwrite, readrandom, seekrandom, deleterandom\n",
         f.zipfian ? "scrambled zipfian" : "uniform");
  printf("Threads:    %d%s\n", f.threads,
         f.duration > 0 ? " (each benchmark stops after --duration)" : "");
  printf("RawSize:    %.1f MB (estimated)\n",
         (double)(f.key_size + f.value_size) * (double)f.num / 1048576.0);
  printf("Seed:       %" PRIu64 "\n", f.seed);
  printf("WAL on, no sync, no compression\n");
  printf("Settings:   write_buffer_size %.1f MiB, block_size %" PRId64 " B, block cache %.1f MiB,\n"
         "            bloom %" PRId64 " bits/key, table file size %.1f MiB, max_open_files %" PRId64
         " (every engine)\n",
         (double)f.shared.write_buffer_size / 1048576.0, f.shared.block_size,
         (double)f.shared.block_cache_size / 1048576.0, f.shared.bloom_bits_per_key,
         (double)f.shared.table_file_size / 1048576.0, f.shared.max_open_files);

  int rc = 0;
  for (int e = 0; e < nengines; e++)
    rc |= run_engine(e, engines[e], &f, names, nbench, g_results[e]);
  if (nengines > 1)
    print_comparison(engines, nengines, names, nbench);
  if (f.json != NULL && write_json(f.json, &f, engines, nengines, names, nbench, date) != 0) {
    fprintf(stderr, "mayfly_bench: cannot write %s: %s\n", f.json, strerror(errno));
    rc = 1;
  }
  for (int e = 0; e < nengines; e++)
    for (int b = 0; b < nbench; b++)
      free(g_results[e][b].latency);
  return rc != 0 ? 1 : 0;
}
