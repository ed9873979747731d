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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>

#include "adapter.h"

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

struct flags {
  const char *engine;
  const char *benchmarks;
  int64_t num;
  int64_t reads; /* < 0: num */
  int key_size;
  int value_size;
  const char *db;
  const char *options;         /* mayfly's options text */
  const char *leveldb_options; /* the leveldb adapter's options text */
  const char *rocksdb_options; /* the rocksdb adapter's options text (mayfly's names) */
  uint64_t seed;
  struct shared_settings shared;
};

static void usage(FILE *out)
{
  fprintf(out,
          "usage: mayfly_bench [flags]\n"
          "  --engine=mayfly|leveldb|rocksdb|all  engines to run, in turn (default mayfly)\n"
          "  --benchmarks=a,b,...             fillseq,fillrandom,overwrite,readrandom,readseq\n"
          "                                   (default: all five, in that order)\n"
          "  --num=N                          keys / operations per benchmark (1000000)\n"
          "  --reads=N                        lookups of readrandom (default: num)\n"
          "  --key_size=N                     bytes per key (16)\n"
          "  --value_size=N                   bytes per value (100)\n"
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

static int parse_flags(int argc, char **argv, struct flags *f)
{
  *f = (struct flags){.engine = "mayfly",
                      .benchmarks = "fillseq,fillrandom,overwrite,readrandom,readseq",
                      .num = 1000000,
                      .reads = -1,
                      .key_size = 16,
                      .value_size = 100,
                      .db = "/tmp/mayfly-bench",
                      .options = "",
                      .leveldb_options = "",
                      .rocksdb_options = "",
                      .seed = 301,
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
    } else if (IS("leveldb_options")) {
      f->leveldb_options = value;
    } else if (IS("rocksdb_options")) {
      f->rocksdb_options = value;
    } else if (IS("num") && parse_i64(value, &v) == 0 && v >= 0) {
      f->num = v;
    } else if (IS("reads") && parse_i64(value, &v) == 0) {
      f->reads = v;
    } else if (IS("key_size") && parse_i64(value, &v) == 0 && v >= 1 && v <= 1024) {
      f->key_size = (int)v;
    } else if (IS("value_size") && parse_i64(value, &v) == 0 && v >= 0 &&
               v <= (int64_t)VALUE_POOL_SIZE / 2) {
      f->value_size = (int)v;
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
  /* Every key index below num must fit in key_size decimal digits. */
  char digits[32];
  int ndigits = snprintf(digits, sizeof digits, "%" PRId64, f->num > 0 ? f->num - 1 : 0);
  if (ndigits > f->key_size) {
    fprintf(stderr, "mayfly_bench: --key_size=%d is too small for --num=%" PRId64 "\n",
            f->key_size, f->num);
    return 1;
  }
  return 0;
}

/* ---- random numbers, keys, values ------------------------------------------------------ */

/* splitmix64: tiny, fast, and good enough to pick keys; the bench has no dependency on the
 * engine's own generators, so engines cannot disagree on the sequence. */
static uint64_t rng_next(uint64_t *state)
{
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t rng_uniform(uint64_t *state, uint64_t n)
{
  /* Multiply-shift maps 64 random bits onto [0, n) without division. */
  return (uint64_t)(((unsigned __int128)rng_next(state) * n) >> 64);
}

struct value_source {
  char *pool; /* VALUE_POOL_SIZE bytes */
  size_t pos;
  int value_size;
};

static int value_source_init(struct value_source *vs, uint64_t seed, int value_size)
{
  vs->pool = malloc(VALUE_POOL_SIZE);
  if (vs->pool == NULL)
    return 1;
  uint64_t state = seed ^ 0x5eedull;
  /* Pieces of value_size bytes whose first half is random printable text and second half a
   * copy of the first: the pool compresses to about half, like db_bench's. */
  size_t piece = value_size > 1 ? (size_t)value_size : 100;
  for (size_t off = 0; off < VALUE_POOL_SIZE; off += piece) {
    size_t len = VALUE_POOL_SIZE - off < piece ? VALUE_POOL_SIZE - off : piece;
    size_t half = (len + 1) / 2;
    for (size_t i = 0; i < half; i++)
      vs->pool[off + i] = (char)(' ' + rng_uniform(&state, 95));
    for (size_t i = half; i < len; i++)
      vs->pool[off + i] = vs->pool[off + i - half];
  }
  vs->pos = 0;
  vs->value_size = value_size;
  return 0;
}

static const char *value_next(struct value_source *vs)
{
  if (vs->pos + (size_t)vs->value_size > VALUE_POOL_SIZE)
    vs->pos = 0;
  const char *v = vs->pool + vs->pos;
  vs->pos += (size_t)vs->value_size;
  return v;
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
  double ops_per_sec;
  uint64_t wchar; /* bytes passed to write() during the benchmark */
  double write_amp; /* 0: the benchmark put nothing */
  double space_amp; /* 0: no live data */
};

/* results[engine][benchmark] */
static struct result g_results[MAX_ENGINES][MAX_BENCHMARKS];

/* ---- workloads ----------------------------------------------------------------------------- */

struct run {
  const bench_adapter *a;
  void *db; /* NULL when closed */
  char path[4096];
  const char *options;
  const struct flags *f;
  struct value_source values;
  uint64_t rng;
  char *key; /* key_size + 1 bytes */
  uint8_t *written; /* bitmap of the key indexes put since the last fill, num bits */
  uint64_t distinct; /* bits set in written */
  char err[ERR_LEN];
};

struct outcome {
  uint64_t ops;
  uint64_t bytes;     /* key+value bytes moved */
  uint64_t found;     /* readrandom only */
  uint64_t user_written; /* key+value bytes put */
};

static int do_fill(struct run *r, int sequential, struct outcome *o)
{
  const struct flags *f = r->f;
  for (int64_t i = 0; i < f->num; i++) {
    uint64_t index = sequential ? (uint64_t)i : rng_uniform(&r->rng, (uint64_t)f->num);
    make_key(r->key, f->key_size, index);
    if (r->a->put(r->db, r->key, (size_t)f->key_size, value_next(&r->values),
                  (size_t)f->value_size, r->err, sizeof r->err) != 0)
      return 1;
    uint8_t bit = (uint8_t)(1u << (index & 7));
    r->distinct += (r->written[index >> 3] & bit) == 0;
    r->written[index >> 3] |= bit;
  }
  o->ops = (uint64_t)f->num;
  o->bytes = o->ops * (uint64_t)(f->key_size + f->value_size);
  o->user_written = o->bytes;
  return 0;
}

static int do_readrandom(struct run *r, struct outcome *o)
{
  const struct flags *f = r->f;
  uint64_t found = 0, bytes = 0;
  for (int64_t i = 0; i < f->reads; i++) {
    uint64_t index = f->num > 0 ? rng_uniform(&r->rng, (uint64_t)f->num) : 0;
    make_key(r->key, f->key_size, index);
    int hit = 0;
    size_t vlen = 0;
    if (r->a->get(r->db, r->key, (size_t)f->key_size, &hit, &vlen, r->err, sizeof r->err) != 0)
      return 1;
    if (hit) {
      found++;
      bytes += (uint64_t)f->key_size + vlen;
    }
  }
  o->ops = (uint64_t)f->reads;
  o->found = found;
  o->bytes = bytes;
  return 0;
}

static int do_readseq(struct run *r, struct outcome *o)
{
  return r->a->scan_all(r->db, &o->ops, &o->bytes, r->err, sizeof r->err);
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
    memset(r->written, 0, ((size_t)r->f->num + 7) / 8);
    r->distinct = 0;
  }
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

/* Runs one benchmark on r and records its figures in *res. */
static int run_benchmark(struct run *r, const char *name, struct result *res)
{
  r->rng = benchmark_seed(r->f->seed, name);
  int is_fill = strcmp(name, "fillseq") == 0 || strcmp(name, "fillrandom") == 0;
  if (is_fill || r->db == NULL) {
    if (db_open(r, is_fill) != 0)
      return 1;
  }
  struct outcome o = {0};
  uint64_t wchar_before = process_wchar();
  double start = now_seconds();
  int rc;
  if (strcmp(name, "fillseq") == 0)
    rc = do_fill(r, 1, &o);
  else if (strcmp(name, "fillrandom") == 0 || strcmp(name, "overwrite") == 0)
    rc = do_fill(r, 0, &o);
  else if (strcmp(name, "readrandom") == 0)
    rc = do_readrandom(r, &o);
  else
    rc = do_readseq(r, &o);
  double elapsed = now_seconds() - start;
  uint64_t wchar_after = process_wchar();
  if (rc != 0)
    return 1;
  if (elapsed <= 0)
    elapsed = 1e-9;
  uint64_t ops = o.ops > 0 ? o.ops : 1;
  res->ops_per_sec = (double)o.ops / elapsed;
  res->wchar = wchar_after - wchar_before;
  printf("%-12s : %11.3f micros/op %8.0f ops/sec %7.1f MB/s", name, elapsed * 1e6 / (double)ops,
         res->ops_per_sec, (double)o.bytes / 1048576.0 / elapsed);
  if (strcmp(name, "readrandom") == 0)
    printf(" (found %" PRIu64 " of %" PRIu64 ")", o.found, o.ops);
  printf("\n");
  print_write_traffic(r, &o, wchar_after - wchar_before);
  if (measure_amplification(r, &o, wchar_before, res) != 0)
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
      const char *known[] = {"fillseq", "fillrandom", "overwrite", "readrandom", "readseq"};
      int ok = 0;
      for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
        ok |= strcmp(names[*count], known[k]) == 0;
      if (!ok) {
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
  return n < 0 || (size_t)n >= len ? 1 : 0;
}

static int run_engine(const bench_adapter *a, const struct flags *f, char names[][32],
                      int nbench, struct result *results)
{
  struct run r = {.a = a, .f = f};
  char options[OPTIONS_TEXT_LEN];
  if (engine_options_text(a->name, f, options, sizeof options) != 0) {
    fprintf(stderr, "mayfly_bench: the options text for %s is too long\n", a->name);
    return 1;
  }
  r.options = options;
  snprintf(r.path, sizeof r.path, "%s/%s", f->db, a->name);
  r.key = calloc(1, (size_t)f->key_size + 1);
  r.written = calloc(1, ((size_t)f->num + 7) / 8 + 1);
  if (r.key == NULL || r.written == NULL ||
      value_source_init(&r.values, f->seed, f->value_size) != 0) {
    fprintf(stderr, "mayfly_bench: out of memory\n");
    free(r.key);
    free(r.written);
    return 1;
  }
  char version[128];
  a->version(version, sizeof version);
  printf("------------------------------------------------\n");
  printf("Engine:     %s, db %s, options \"%s\"\n", version, r.path, r.options);
  int rc = 0;
  for (int b = 0; b < nbench && rc == 0; b++) {
    rc = run_benchmark(&r, names[b], &results[b]);
    results[b].ran = rc == 0;
  }
  if (rc != 0)
    fprintf(stderr, "mayfly_bench: %s\n", r.err);
  if (db_close(&r) != 0 && rc == 0) {
    fprintf(stderr, "mayfly_bench: %s\n", r.err);
    rc = 1;
  }
  free(r.values.pool);
  free(r.key);
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
  printf("Entries:    %" PRId64 " (reads %" PRId64 ")\n", f.num, f.reads);
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
    rc |= run_engine(engines[e], &f, names, nbench, g_results[e]);
  if (nengines > 1)
    print_comparison(engines, nengines, names, nbench);
  return rc != 0 ? 1 : 0;
}
