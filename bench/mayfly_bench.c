/* mayfly_bench: a db_bench-like comparison of mayfly with other engines.
 *
 * The workloads below are engine-neutral: they drive an engine through the adapter table of
 * bench/adapter.h, so every engine runs exactly the same operations, keys and values, one
 * engine after the other (absolute numbers drift between machines, so engines are compared
 * in the same run, as ratios). Flags (bench/flags.c, --help) have db_bench's names and
 * meanings wherever db_bench has them.
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
 *   mixgraph    reads operations of Facebook's FAST'20 model (db_bench's mixgraph; see the
 *               mixgraph section below for its laws and where it differs from db_bench)
 *   compact     one full manual compaction of the whole key range (one thread); timed
 *   flush       writes the memtables to files and waits for it (one thread); timed. LevelDB's
 *               C API has no flush: nothing is done for it
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
 * --stats_interval_seconds=S prints interval and cumulative ops/s every S seconds, and a
 * progress line goes to stderr during long phases (bench/monitor.h).
 * Value sizes: --value_size, or with --value_size_distribution=uniform|pareto a size drawn
 * per put with that mean (space amp then assumes the mean for every live key; so does it for
 * mixgraph, whose sizes follow its own law).
 * A key is the key index in decimal, zero-padded to key_size bytes. Values are slices of a
 * 1 MiB pseudo-random buffer in which every value_size/2 random bytes are repeated once (half
 * compressible like db_bench's; every engine runs uncompressed unless --compression_type
 * says otherwise). The same --seed gives every engine the same sequence of keys and values;
 * each benchmark draws its keys from its own stream (seeded by --seed and the benchmark's
 * name).
 *
 * Database: the fills destroy and recreate it; with --use_existing_db nothing is destroyed,
 * opening a missing database is an error, the fills print "skipped (--use_existing_db is
 * true)" as db_bench's do, and the keys 0..num-1 are assumed live (for space amp). --sync
 * makes every write synchronous, --disable_wal skips the WAL (the two together are refused);
 * an engine that cannot honour --disable_wal or the --compression_type (LevelDB: no WAL-less
 * writes, only none and snappy; mayfly: no snappy) is refused when named, and skipped with
 * its reason under --engine=all.
 *
 * Shared settings: every engine gets the same memtable size, block size, block cache size,
 * bloom filter bits per key, table file size and open-file limit (mayfly's defaults unless a
 * flag overrides them), passed to each adapter as the start of its options text, so the
 * comparison measures the engines and not their defaults. --options and --leveldb_options
 * come after and may still override any of them for one engine.
 *
 * One process per engine: each engine runs in a child process (run_engine_in_child), which
 * sends its figures back through a pipe. So an engine's peak RSS is its own, its threads and
 * memory are gone before the next engine starts, and a crash loses only its figures. Before
 * every benchmark the child resets its RSS high-water mark (/proc/self/clear_refs), so the
 * peak RSS printed after a benchmark is that benchmark's (settling included); where the
 * kernel refuses, it is the peak since the engine's process started, and the output says so.
 *
 * Write traffic: the engine's own counters when it has them (mayfly.bytes-written and
 * mayfly.user-bytes-written), and for every engine the bytes passed to write() by the
 * process (wchar of /proc/self/io, summed over all threads, so background flushes and
 * compactions count; work still running when a benchmark ends is charged to the next).
 *
 * After every benchmark, outside the timed region, the bench lets background work settle
 * (the adapter's wait_idle; for an engine without one, until the database directory's size
 * has not changed for --settle_seconds). Then
 *   write amp  = wchar from the benchmark's start to the end of settling / key+value bytes
 *                the benchmark put,
 *   space amp  = sum of the sizes of every file under the database directory (WAL, tables,
 *                manifest, info logs) / (distinct keys written since the last fill x
 *                (key_size + value_size)); one instant, so also sampled every 50 ms while
 *                the benchmark runs (same formula, live bytes so far), printed as the mean
 *                (over time, stalls included) and maximum "while running",
 *   stall time = the engine's write-stall counter after settling minus before the benchmark
 *                (mayfly: mayfly.stall-micros; RocksDB: "Cumulative stall" of
 *                rocksdb.stats; LevelDB has none: n/a),
 *   peak RSS   = VmHWM of /proc/self/status, as above. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <pthread.h>
#include <time.h>

#include "adapter.h"
#include "flags.h"
#include "gen.h"
#include "monitor.h"
#include "report.h"

#define ERR_LEN 1024
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

/* Builds the value pool every value is a slice of (BENCH_VALUE_POOL_SIZE bytes, malloc'd; the
 * caller frees it). */
static char *value_pool_create(uint64_t seed, int value_size)
{
  char *pool = malloc(BENCH_VALUE_POOL_SIZE);
  if (pool == NULL)
    return NULL;
  uint64_t state = seed ^ 0x5eedull;
  /* Pieces of value_size bytes whose first half is random printable text and second half a
   * copy of the first: the pool compresses to about half, like db_bench's. */
  size_t piece = value_size > 1 ? (size_t)value_size : 100;
  for (size_t off = 0; off < BENCH_VALUE_POOL_SIZE; off += piece) {
    size_t len = BENCH_VALUE_POOL_SIZE - off < piece ? BENCH_VALUE_POOL_SIZE - off : piece;
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

/* Per engine: its identity, and results[engine][benchmark]. Each engine runs in a child
 * process that sends its results back through a pipe (see run_engine_in_child). */
static struct bench_engine_info g_engines[BENCH_MAX_ENGINES];
static struct bench_result g_results[BENCH_MAX_ENGINES][BENCH_MAX_BENCHMARKS];
static char g_versions[BENCH_MAX_ENGINES][128];
static char g_options[BENCH_MAX_ENGINES][OPTIONS_TEXT_LEN];
static char g_skip_reasons[BENCH_MAX_ENGINES][256];

/* ---- workloads ----------------------------------------------------------------------------- */

/* One engine's run: the open database and what every thread of a benchmark shares. */
struct run {
  const bench_adapter *a;
  void *db; /* NULL when closed */
  char path[4096];
  const char *options;
  const struct bench_flags *f;
  char *value_pool; /* BENCH_VALUE_POOL_SIZE bytes, read-only once built */
  gen_zipf zipf; /* over num key indexes; zipf.n == 0 until a zipfian benchmark needs it */
  /* Key indexes put since the last fill: a bitmap of capacity bits (num, then the room YCSB
   * D and E inserts need), updated with atomics because workers share it. */
  uint8_t *written;
  uint64_t capacity;
  uint64_t distinct;  /* bits set in written (atomic) */
  uint64_t inserted;  /* next key index an insert takes (atomic); num after a fill */
  double started;     /* now_seconds() when the running benchmark's workers started */
  uint64_t done_ops;  /* operations finished by all workers (atomic; each worker adds its
                       * count every 64 operations, for the progress monitor) */
  double deadline;    /* now_seconds() after which workers stop; 0: --duration not set */
  int stop;           /* set (atomic) when readwhilewriting's readers are done */
  gen_keyrange keyranges; /* mixgraph's key ranges; count == 0 when it uses none */
  int pacing;         /* mixgraph runs at the sine rate (--sine_mix_rate) */
  const struct benchmark *bench; /* the one running */
  char err[ERR_LEN];
};

struct outcome {
  uint64_t ops;
  uint64_t bytes;        /* key+value bytes moved */
  uint64_t found;        /* lookups that found their key */
  uint64_t user_written; /* key+value bytes put */
  uint64_t gets, puts, seeks; /* mixgraph's operations by type */
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
  uint64_t published; /* of o.ops, the part added to r->done_ops */
  double pace_next;  /* mixgraph's sine pacing: when the next operation may start, */
  double pace_rate;  /* this thread's share of the rate in ops/s, */
  double pace_at;    /* and when that rate was computed */
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
  const struct bench_flags *f = w->r->f;
  switch (f->value_size_distribution) {
  case FLAGS_VALUE_UNIFORM: /* [value_size/2, 3*value_size/2] */
    return (size_t)f->value_size / 2 + rng_uniform(&w->rng, (uint64_t)f->value_size + 1);
  case FLAGS_VALUE_PARETO:
    return f->value_size > 0 ? gen_pareto_size(&w->rng, (uint32_t)f->value_size,
                                               BENCH_VALUE_POOL_SIZE / 2)
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

static int put_sized(struct worker *w, uint64_t index, size_t vlen)
{
  struct run *r = w->r;
  int key_size = r->f->key_size;
  if (w->value_pos + vlen > BENCH_VALUE_POOL_SIZE)
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

static int put_index(struct worker *w, uint64_t index)
{
  return put_sized(w, index, value_size_next(w));
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
 * passed (checked every 64 operations, or every one when paced, as a paced operation may
 * wait long), readwhilewriting's readers are not done. */
static int keep_going(struct worker *w, int64_t i)
{
  struct run *r = w->r;
  if (!w->writer && i >= w->end)
    return 0;
  if (((i - w->begin) & 63) == 0 || r->pacing) {
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

/* ---- mixgraph -------------------------------------------------------------------------------- */

/* mixgraph (db_bench's, after FAST'20): each operation is a get, a put or a seek and scan, in
 * the shares --mix_get_ratio : --mix_put_ratio : --mix_seek_ratio, on a key drawn by key-range
 * hotness and the power law (bench/gen.h); put value sizes and scan lengths follow
 * generalized Pareto laws, wrapped around at --mix_max_value_size and --mix_max_scan_len as in
 * db_bench. Deliberate differences from db_bench:
 *  - db_bench derives the key, the operation type and the value size (or scan length) from
 *    one uniform number per operation, which correlates them (a put's value size follows its
 *    key); here each has a draw of its own: the same laws, without the correlation.
 *  - db_bench uses the key ranges only when key_dist_a and key_dist_b are both nonzero (else
 *    every key is uniform); here they apply whenever a keyrange_dist_* flag is nonzero, with
 *    uniform keys inside a range when key_dist_a or key_dist_b is 0.
 *  - the operation shares and the ranges' probabilities are exact (db_bench rounds them to
 *    integers); a seek with a scan length of 0 still reads the entry it lands on.
 *  - sine pacing: the rate sine_a*sin(sine_b*t + sine_c) + sine_d (t: seconds since the
 *    benchmark started) is the total of all threads, as with db_bench's shared rate limiter,
 *    each thread taking an equal share; it is computed at the start and then every
 *    --sine_mix_rate_interval_milliseconds (db_bench runs unpaced until the first interval
 *    ends). A rate <= 0 keeps the last positive one, as in db_bench. The wait happens before
 *    an operation's timing starts, so latencies do not include it.
 *  - value sizes are finally multiplied by --mix_value_scale (mayfly_bench's own), so that
 *    the same access pattern can be run with values below and above a blob threshold. */

static size_t mix_value_size(struct worker *w)
{
  const struct bench_mix_flags *m = &w->r->f->mix;
  int64_t size = gen_gpareto(&w->rng, m->value_theta, m->value_k, m->value_sigma);
  if (size < 0)
    size = 10; /* db_bench's rules, in its order */
  else if (size > m->max_value_size)
    size %= m->max_value_size;
  double scaled = (double)size * m->value_scale + 0.5;
  return scaled > BENCH_VALUE_POOL_SIZE / 2 ? BENCH_VALUE_POOL_SIZE / 2 : (size_t)scaled;
}

static uint64_t mix_scan_length(struct worker *w)
{
  const struct bench_mix_flags *m = &w->r->f->mix;
  int64_t len = gen_gpareto(&w->rng, m->iter_theta, m->iter_k, m->iter_sigma);
  return len > 0 ? (uint64_t)(len % m->max_scan_len) : 0;
}

static uint64_t mix_key(struct worker *w)
{
  struct run *r = w->r;
  const struct bench_mix_flags *m = &r->f->mix;
  uint64_t num = r->f->num > 0 ? (uint64_t)r->f->num : 0;
  if (r->keyranges.count > 0)
    return gen_keyrange_key(&r->keyranges, m->key_dist_a, m->key_dist_b, &w->rng);
  if (m->key_dist_a != 0.0 && m->key_dist_b != 0.0)
    return gen_scatter(gen_power_seed(&w->rng, m->key_dist_a, m->key_dist_b), num);
  return rng_uniform(&w->rng, num);
}

/* Sleeps until this thread's next mixgraph operation may start under the sine rate. */
static void mix_pace(struct worker *w)
{
  struct run *r = w->r;
  const struct bench_mix_flags *m = &r->f->mix;
  double now = now_seconds();
  if (w->pace_rate <= 0 || now - w->pace_at >= m->sine_interval_ms / 1000.0) {
    double rate = m->sine_a * sin(m->sine_b * (now - r->started) + m->sine_c) + m->sine_d;
    if (m->sine_noise > 0) { /* db_bench's: up to +-sine_a/2 times the noise ratio */
      double delta = (gen_rng_double(&w->rng) - 0.5) * fabs(m->sine_a) * m->sine_noise;
      if (rate + delta >= 0)
        rate += delta;
    }
    if (rate > 0)
      w->pace_rate = rate / (double)r->f->threads;
    w->pace_at = now;
  }
  if (w->pace_rate <= 0)
    return; /* no positive rate yet: unpaced */
  if (now - w->pace_next > 1.0)
    w->pace_next = now; /* more than a second behind: do not burst to catch up */
  double until = w->pace_next;
  if (r->deadline > 0 && until > r->deadline)
    until = r->deadline;
  if (until > now) {
    double wait = until - now;
    struct timespec ts = {.tv_sec = (time_t)wait,
                          .tv_nsec = (long)((wait - (double)(time_t)wait) * 1e9)};
    nanosleep(&ts, NULL);
  }
  w->pace_next += 1.0 / w->pace_rate;
}

static int op_mixgraph(struct worker *w, int64_t i)
{
  const struct bench_mix_flags *m = &w->r->f->mix;
  uint64_t index = mix_key(w);
  double pick = gen_rng_double(&w->rng) * (m->get_ratio + m->put_ratio + m->seek_ratio);
  if (pick < m->get_ratio) {
    w->o.gets++;
    return get_index(w, index);
  }
  if (pick < m->get_ratio + m->put_ratio) {
    w->o.puts++;
    return put_sized(w, index, mix_value_size(w));
  }
  w->o.seeks++;
  uint64_t len = mix_scan_length(w);
  return scan_from(w, index, 0, len > 0 ? len : 1);
}

/* Builds what mixgraph's workers share, before they start. */
static int mixgraph_prepare(struct run *r)
{
  const struct bench_mix_flags *m = &r->f->mix;
  r->pacing = m->sine;
  int ranges = m->keyrange_dist_a != 0.0 || m->keyrange_dist_b != 0.0 ||
               m->keyrange_dist_c != 0.0 || m->keyrange_dist_d != 0.0;
  if (!ranges || r->keyranges.count > 0 || r->f->num <= 0)
    return 0;
  if (gen_keyrange_init(&r->keyranges, (uint64_t)r->f->num, (uint64_t)m->keyrange_num,
                        m->keyrange_dist_a, m->keyrange_dist_b, m->keyrange_dist_c,
                        m->keyrange_dist_d) != 0) {
    snprintf(r->err, sizeof r->err,
             "mixgraph: --keyrange_dist_a..d give no key range a positive, finite hotness "
             "(or out of memory)");
    return 1;
  }
  return 0;
}

/* What a benchmark is: its body (one operation), how many operations it has, and how its
 * database is prepared. */
enum op_count { COUNT_NUM, COUNT_WRITES, COUNT_READS, COUNT_ONE };
#define B_FRESH 1u  /* starts from an empty database (fills) */
#define B_PSEUDO 2u /* stats: not timed, no figures */
#define B_NO_AMP 4u /* waitidle: timed, no amplification */
#define B_SINGLE 8u /* one thread whatever --threads says (waitidle, compact) */

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
static int op_compact(struct worker *w, int64_t i)
{
  return w->r->a->compact(w->r->db, w->err, sizeof w->err);
}
static int op_flush(struct worker *w, int64_t i)
{
  struct run *r = w->r;
  return r->a->flush != NULL ? r->a->flush(r->db, w->err, sizeof w->err) : 0;
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
    {"mixgraph", op_mixgraph, COUNT_READS, 0},
    {"compact", op_compact, COUNT_ONE, B_SINGLE},
    {"flush", op_flush, COUNT_ONE, B_SINGLE},
    {"waitidle", op_waitidle, COUNT_ONE, B_NO_AMP | B_SINGLE},
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
  int paced = b->op == op_mixgraph && w->r->pacing;
  for (int64_t i = w->begin; keep_going(w, i); i++) {
    if (paced)
      mix_pace(w); /* outside the timed region */
    uint64_t t = now_ns();
    if (b->op(w, i) != 0) {
      w->rc = 1;
      break;
    }
    if (!w->writer) { /* readwhilewriting reports its readers, as db_bench does */
      gen_hist_add(w->hist, now_ns() - t);
      w->o.ops++;
      if ((w->o.ops & 63) == 0 || paced) {
        __atomic_fetch_add(&w->r->done_ops, w->o.ops - w->published, __ATOMIC_RELAXED);
        w->published = w->o.ops;
      }
    }
  }
  __atomic_fetch_add(&w->r->done_ops, w->o.ops - w->published, __ATOMIC_RELAXED);
  w->published = w->o.ops;
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
  const bench_open_settings settings = {.create_if_missing = !r->f->use_existing_db,
                                        .sync = r->f->sync,
                                        .disable_wal = r->f->disable_wal,
                                        .compression = r->f->compression_type};
  return r->a->open(r->path, r->options, &settings, &r->db, r->err, sizeof r->err);
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
 * until the directory's size is the same in two samples --settle_seconds apart. */
static int settle(struct run *r)
{
  if (r->a->wait_idle != NULL)
    return r->a->wait_idle(r->db, r->err, sizeof r->err);
  double quiet = r->f->settle_seconds;
  const struct timespec second = {.tv_sec = (time_t)quiet,
                                  .tv_nsec = (long)((quiet - (double)(time_t)quiet) * 1e9)};
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

/* The monitor's space sampler: space amp of the database right now (0: cannot tell). */
static double space_amp_now(void *arg)
{
  struct run *r = arg;
  uint64_t disk = 0;
  uint64_t live = __atomic_load_n(&r->distinct, __ATOMIC_RELAXED) *
                  (uint64_t)(r->f->key_size + r->f->value_size);
  if (live == 0 || dir_size(r->path, &disk) != 0)
    return 0;
  return (double)disk / (double)live;
}

/* Settles background work, then records and prints write and space amplification (and the
 * mean and maximum of the monitor's space samples taken while the benchmark ran). */
static int measure_amplification(struct run *r, const struct outcome *o, uint64_t wchar_before,
                                 bench_monitor *m, struct bench_result *res)
{
  double start = now_seconds();
  if (settle(r) != 0)
    return 1;
  double settled = now_seconds() - start;
  uint64_t wchar = report_process_wchar() - wchar_before;
  uint64_t disk = 0;
  int have_disk = dir_size(r->path, &disk) == 0;
  uint64_t live = r->distinct * (uint64_t)(r->f->key_size + r->f->value_size);
  res->write_amp = o->user_written > 0 ? (double)wchar / (double)o->user_written : 0;
  res->space_amp = have_disk && live > 0 ? (double)disk / (double)live : 0;
  res->disk_bytes = disk;
  printf("             amp: write %.2f (%" PRIu64 " B written incl. %.1f s settling / %" PRIu64
         " B put), space %.2f (%" PRIu64 " B on disk / %" PRIu64 " B live in %" PRIu64
         " keys)\n",
         res->write_amp, wchar, settled, o->user_written, res->space_amp, disk, live,
         r->distinct);
  monitor_space_samples(m, &res->space_samples, &res->space_amp_mean, &res->space_amp_max);
  if (res->space_samples > 0)
    printf("             space amp while running: mean %.3f, max %.3f (%" PRIu64
           " samples, 50 ms apart)\n",
           res->space_amp_mean, res->space_amp_max, res->space_samples);
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
  const struct bench_flags *f = r->f;
  int readers = (b->flags & B_SINGLE) ? 1 : f->threads;
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
    w->value_pos = (size_t)t * 4099 % BENCH_VALUE_POOL_SIZE;
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
  r->started = now_seconds();
  r->deadline = f->duration > 0 ? r->started + f->duration : 0;
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
    o->gets += w->o.gets;
    o->puts += w->o.puts;
    o->seeks += w->o.seeks;
    if (w->hist != NULL)
      gen_hist_merge(hist, w->hist);
    free(w->hist);
  }
  free(ws);
  return rc;
}

/* ---- one benchmark ---------------------------------------------------------------------------- */

/* The operations a benchmark runs in all, for the progress line (<= 0: unknown). */
static int64_t benchmark_total(const struct run *r, const struct benchmark *b)
{
  switch (b->count) {
  case COUNT_NUM: return r->f->num;
  case COUNT_WRITES: return r->f->writes;
  case COUNT_READS: return r->f->reads;
  default: return b->op == op_readseq || b->op == op_readreverse
                      ? (int64_t)r->distinct * r->f->threads
                      : 0;
  }
}

/* Prints and records the stall time (the engine's counter, before and after) and the peak
 * RSS of a benchmark. */
static void report_stall_and_rss(struct run *r, int have_stall, uint64_t stall_before,
                                 struct bench_result *res)
{
  uint64_t stall_after = 0;
  char stall[64] = "n/a", rss[96] = "n/a";
  res->stall_micros = -1;
  if (have_stall && r->a->stall_micros(r->db, &stall_after) == 0) {
    res->stall_micros = stall_after >= stall_before ? (int64_t)(stall_after - stall_before) : 0;
    snprintf(stall, sizeof stall, "%.3f s", (double)res->stall_micros / 1e6);
  }
  res->peak_rss_bytes = report_peak_rss();
  if (res->peak_rss_bytes >= 0)
    snprintf(rss, sizeof rss, "%.1f MiB (%s)", (double)res->peak_rss_bytes / 1048576.0,
             res->peak_rss_per_benchmark ? "this benchmark" : "since the engine's process started");
  printf("             stall: %s, peak RSS %s\n", stall, rss);
}

/* Runs one benchmark on r and records its figures in *res. */
static int run_benchmark(struct run *r, const struct benchmark *b, struct bench_result *res)
{
  int fresh = (b->flags & B_FRESH) != 0;
  res->stall_micros = -1;
  res->peak_rss_bytes = -1;
  if (fresh && r->f->use_existing_db) { /* db_bench's words */
    printf("%-12s : skipped (--use_existing_db is true)\n", b->name);
    res->skipped = 1;
    return 0;
  }
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
  if (b->op == op_mixgraph && mixgraph_prepare(r) != 0)
    return 1;
  res->latency = calloc(1, sizeof *res->latency);
  if (res->latency == NULL) {
    snprintf(r->err, sizeof r->err, "out of memory");
    return 1;
  }
  uint64_t stall_before = 0;
  int have_stall = r->a->stall_micros != NULL && r->a->stall_micros(r->db, &stall_before) == 0;
  res->peak_rss_per_benchmark = report_reset_peak_rss() == 0;
  struct outcome o = {0};
  bench_monitor m;
  __atomic_store_n(&r->done_ops, 0, __ATOMIC_RELAXED);
  monitor_start(&m, b->name, benchmark_total(r, b), r->f->stats_interval_seconds, &r->done_ops);
  if (!(b->flags & B_NO_AMP))
    monitor_sample_space(&m, space_amp_now, r);
  uint64_t wchar_before = report_process_wchar();
  double start = now_seconds();
  int rc = run_workers(r, b, benchmark_seed(r->f->seed, b->name), &o, res->latency);
  monitor_settling(&m); /* no interval lines after the timed part */
  if (rc == 0 && b->op == op_waitidle && r->a->wait_idle == NULL)
    rc = settle(r);
  double elapsed = now_seconds() - start;
  uint64_t wchar_after = report_process_wchar();
  if (rc != 0) {
    monitor_stop(&m);
    return 1;
  }
  if (elapsed <= 0)
    elapsed = 1e-9;
  uint64_t ops = o.ops > 0 ? o.ops : 1;
  res->ops = o.ops;
  res->ops_per_sec = (double)o.ops / elapsed;
  res->micros_per_op = elapsed * 1e6 / (double)ops;
  res->mb_per_sec = (double)o.bytes / 1048576.0 / elapsed;
  res->wchar = wchar_after - wchar_before;
  printf("%-12s : %11.3f micros/op %8.0f ops/sec %7.1f MB/s", b->name, res->micros_per_op,
         res->ops_per_sec, res->mb_per_sec);
  if (b->op == op_readrandom || b->op == op_seekrandom || b->op == op_readwhilewriting)
    printf(" (found %" PRIu64 " of %" PRIu64 ")", o.found, o.ops);
  if (b->op == op_mixgraph) /* db_bench's summary of the mix */
    printf(" (Gets:%" PRIu64 " Puts:%" PRIu64 " Seek:%" PRIu64 ", %" PRIu64 " found)", o.gets,
           o.puts, o.seeks, o.found);
  printf("\n");
  if (r->f->histogram)
    print_latency(res->latency);
  print_write_traffic(r, &o, wchar_after - wchar_before);
  if (!(b->flags & B_NO_AMP))
    rc = measure_amplification(r, &o, wchar_before, &m, res);
  monitor_stop(&m);
  if (rc == 0)
    report_stall_and_rss(r, have_stall, stall_before, res);
  fflush(stdout);
  return rc;
}

/* ---- driver -------------------------------------------------------------------------------- */

static int split_benchmarks(const char *list, char names[][BENCH_NAME_LEN], int *count)
{
  *count = 0;
  const char *p = list;
  while (*p != '\0') {
    const char *comma = strchr(p, ',');
    size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
    if (len > 0) {
      if (*count == BENCH_MAX_BENCHMARKS || len >= BENCH_NAME_LEN) {
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

/* The engine's options text: the shared settings under the engine's own option names, then
 * the engine's own options flag (which may override them). The rocksdb adapter takes
 * mayfly's names. */
static int engine_options_text(const char *engine, const struct bench_flags *f, char *out,
                               size_t len)
{
  const struct bench_shared_settings *s = &f->shared;
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

/* " mayfly leveldb rocksdb": the engines built in, for the usage text. */
static const char *engines_built_in(void)
{
  static char list[128];
  size_t used = 0;
  for (size_t i = 0; i < NUM_ADAPTERS && used < sizeof list; i++)
    used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i > 0 ? " " : "",
                             k_adapters[i]->name);
  return list;
}

static int select_engines(const char *spec, const bench_adapter **engines, int *count)
{
  *count = 0;
  if (strcmp(spec, "all") == 0) {
    for (size_t i = 0; i < NUM_ADAPTERS && i < BENCH_MAX_ENGINES; i++)
      engines[(*count)++] = k_adapters[i];
    return 0;
  }
  for (size_t i = 0; i < NUM_ADAPTERS; i++) {
    if (strcmp(spec, k_adapters[i]->name) == 0) {
      engines[(*count)++] = k_adapters[i];
      return 0;
    }
  }
  fprintf(stderr, "mayfly_bench: engine \"%s\" is not built in (built in: %s)\n", spec,
          engines_built_in());
  return 1;
}

/* Whether engine a can run with f's --compression_type and --disable_wal; if not, writes why
 * into why. */
static int engine_supports(const bench_adapter *a, const struct bench_flags *f, char *why,
                           size_t len)
{
  if (f->disable_wal && !a->can_disable_wal) {
    snprintf(why, len, "--disable_wal: %s cannot write without its WAL", a->name);
    return 0;
  }
  size_t n = strlen(f->compression_type);
  for (const char *p = a->compressions; p != NULL && *p != '\0';) {
    const char *comma = strchr(p, ',');
    size_t plen = comma != NULL ? (size_t)(comma - p) : strlen(p);
    if (plen == n && strncmp(p, f->compression_type, n) == 0)
      return 1;
    p = comma != NULL ? comma + 1 : NULL;
  }
  snprintf(why, len, "--compression_type=%s: %s supports %s", f->compression_type, a->name,
           a->compressions);
  return 0;
}

/* Marks keys 0..num-1 as live: what --use_existing_db assumes the database holds (for space
 * amplification; the bench cannot know what an earlier run left). */
static void assume_loaded(struct run *r)
{
  uint64_t n = (uint64_t)r->f->num < r->capacity ? (uint64_t)r->f->num : r->capacity;
  memset(r->written, 0xff, (size_t)(n / 8));
  for (uint64_t i = n / 8 * 8; i < n; i++)
    r->written[i >> 3] |= (uint8_t)(1u << (i & 7));
  r->distinct = n;
}

/* Runs every benchmark on engine a in this process, results[b] for names[b]. */
static int run_engine(const bench_adapter *a, const char *options, const struct bench_flags *f,
                      char names[][BENCH_NAME_LEN], int nbench, struct bench_result *results)
{
  struct run r = {.a = a, .f = f, .options = options};
  snprintf(r.path, sizeof r.path, "%s/%s", f->db, a->name);
  r.capacity = flags_key_capacity(f);
  r.written = calloc(1, (size_t)(r.capacity + 7) / 8 + 1);
  r.value_pool = value_pool_create(f->seed, f->value_size);
  if (r.value_pool == NULL || r.written == NULL) {
    fprintf(stderr, "mayfly_bench: out of memory\n");
    free(r.value_pool);
    free(r.written);
    return 1;
  }
  if (f->use_existing_db)
    assume_loaded(&r);
  int rc = 0;
  for (int b = 0; b < nbench && rc == 0; b++) {
    const struct benchmark *bench = find_benchmark(names[b]);
    rc = run_benchmark(&r, bench, &results[b]);
    results[b].ran = rc == 0 && !results[b].skipped && !(bench->flags & B_PSEUDO);
  }
  if (rc != 0)
    fprintf(stderr, "mayfly_bench: %s: %s\n", a->name, r.err);
  if (db_close(&r) != 0 && rc == 0) {
    fprintf(stderr, "mayfly_bench: %s: %s\n", a->name, r.err);
    rc = 1;
  }
  gen_keyrange_free(&r.keyranges);
  free(r.value_pool);
  free(r.written);
  return rc;
}

static int write_all(int fd, const void *buf, size_t len)
{
  const char *p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return 1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
  char *p = buf;
  while (len > 0) {
    ssize_t n = read(fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return 1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Runs run_engine in a child process, so that the engine's peak RSS is its own, its memory
 * and threads are gone before the next engine starts, and a crash takes only its figures
 * with it. The child sends results[0..nbench) back through a pipe: each struct as it is
 * (the same program on both ends), then the latency histogram when it has one. stdout and
 * stderr are flushed before the fork, so no buffered line is printed twice. */
static int run_engine_in_child(const bench_adapter *a, const char *options,
                               const struct bench_flags *f, char names[][BENCH_NAME_LEN],
                               int nbench, struct bench_result *results)
{
  int fds[2];
  if (pipe(fds) != 0) {
    fprintf(stderr, "mayfly_bench: pipe: %s\n", strerror(errno));
    return 1;
  }
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "mayfly_bench: fork: %s\n", strerror(errno));
    close(fds[0]);
    close(fds[1]);
    return 1;
  }
  if (pid == 0) {
    close(fds[0]);
    int rc = run_engine(a, options, f, names, nbench, results);
    for (int b = 0; b < nbench; b++) {
      if (write_all(fds[1], &results[b], sizeof results[b]) != 0 ||
          (results[b].latency != NULL &&
           write_all(fds[1], results[b].latency, sizeof *results[b].latency) != 0))
        rc = 1;
    }
    for (int b = 0; b < nbench; b++)
      free(results[b].latency);
    /* exit, not _exit: stdio was flushed before the fork, so nothing is written twice, and
     * a sanitizer build checks the engine's process for leaks too. */
    exit(rc != 0 ? 1 : 0);
  }
  close(fds[1]);
  int rc = 0;
  for (int b = 0; b < nbench && rc == 0; b++) {
    struct bench_result *res = &results[b];
    if (read_all(fds[0], res, sizeof *res) != 0) {
      *res = (struct bench_result){0};
      rc = 1;
      break;
    }
    if (res->latency != NULL) { /* the child's pointer: only says that a histogram follows */
      res->latency = malloc(sizeof *res->latency);
      if (res->latency == NULL || read_all(fds[0], res->latency, sizeof *res->latency) != 0) {
        free(res->latency);
        *res = (struct bench_result){0};
        rc = 1;
      }
    }
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) {
    fprintf(stderr, "mayfly_bench: %s: the engine's process died of signal %d\n", a->name,
            WTERMSIG(status));
    rc = 1;
  } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    rc = 1;
  }
  for (int b = rc != 0 ? 0 : nbench; b < nbench; b++)
    if (!results[b].ran) { /* partial figures of a failed engine stay out of the reports */
      free(results[b].latency);
      results[b].latency = NULL;
    }
  return rc;
}

static void print_run_header(const struct bench_flags *f, const char *date)
{
  printf("Date:       %s\n", date);
  printf("Keys:       %d bytes each\n", f->key_size);
  printf("Values:     %d bytes each (about half compressible)\n", f->value_size);
  printf("Entries:    %" PRId64 " (reads %" PRId64 ", overwrites %" PRId64 ")\n", f->num,
         f->reads, f->writes);
  printf("Keys:       %s for overwrite, readrandom, seekrandom, deleterandom\n",
         f->zipfian ? "scrambled zipfian" : "uniform");
  printf("Threads:    %d%s\n", f->threads,
         f->duration > 0 ? " (each benchmark stops after --duration)" : "");
  printf("RawSize:    %.1f MB (estimated)\n",
         (double)(f->key_size + f->value_size) * (double)f->num / 1048576.0);
  printf("Seed:       %" PRIu64 "\n", f->seed);
  printf("Writes:     WAL %s, %s; compression %s%s\n", f->disable_wal ? "off" : "on",
         f->sync ? "sync" : "no sync", f->compression_type,
         f->use_existing_db ? "; existing databases (fills skipped)" : "");
  printf("Settings:   write_buffer_size %.1f MiB, block_size %" PRId64 " B, block cache %.1f MiB,\n"
         "            bloom %" PRId64 " bits/key, table file size %.1f MiB, max_open_files %" PRId64
         " (every engine)\n",
         (double)f->shared.write_buffer_size / 1048576.0, f->shared.block_size,
         (double)f->shared.block_cache_size / 1048576.0, f->shared.bloom_bits_per_key,
         (double)f->shared.table_file_size / 1048576.0, f->shared.max_open_files);
}

int main(int argc, char **argv)
{
  struct bench_flags f;
  char err[512];
  int parsed = flags_parse(argc, argv, &f, err, sizeof err);
  if (parsed == FLAGS_HELP) {
    flags_usage(stdout, engines_built_in());
    return 0;
  }
  if (parsed != FLAGS_OK) {
    fprintf(stderr, "mayfly_bench: %s\n", err);
    fprintf(stderr, "mayfly_bench: --help lists the flags\n");
    return 2;
  }
  char names[BENCH_MAX_BENCHMARKS][BENCH_NAME_LEN];
  int nbench = 0, nengines = 0;
  const bench_adapter *engines[BENCH_MAX_ENGINES];
  if (split_benchmarks(f.benchmarks, names, &nbench) != 0 ||
      select_engines(f.engine, engines, &nengines) != 0)
    return 2;
  /* An engine asked for by name must support the flags; under --engine=all one that does not
   * is skipped (with the reason on stderr and in the reports), so the others still run. */
  for (int e = 0; e < nengines; e++) {
    g_engines[e] = (struct bench_engine_info){.name = engines[e]->name,
                                              .version = g_versions[e],
                                              .options = g_options[e]};
    if (!engine_supports(engines[e], &f, g_skip_reasons[e], sizeof g_skip_reasons[e])) {
      fprintf(stderr, "mayfly_bench: %s%s\n", g_skip_reasons[e],
              strcmp(f.engine, "all") == 0 ? " (skipped)" : "");
      if (strcmp(f.engine, "all") != 0)
        return 2;
      g_engines[e].skipped = g_skip_reasons[e];
    }
    if (engine_options_text(engines[e]->name, &f, g_options[e], OPTIONS_TEXT_LEN) != 0) {
      fprintf(stderr, "mayfly_bench: the options text for %s is too long\n", engines[e]->name);
      return 2;
    }
    engines[e]->version(g_versions[e], sizeof g_versions[e]);
  }
  if (make_dirs(f.db) != 0) {
    fprintf(stderr, "mayfly_bench: mkdir %s: %s\n", f.db, strerror(errno));
    return 1;
  }

  char date[64];
  time_t t = time(NULL);
  strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", localtime(&t));
  print_run_header(&f, date);
  int rc = 0;
  for (int e = 0; e < nengines; e++) {
    printf("------------------------------------------------\n");
    if (g_engines[e].skipped != NULL) {
      printf("Engine:     %s skipped: %s\n", g_versions[e], g_engines[e].skipped);
      continue;
    }
    printf("Engine:     %s, db %s/%s, options \"%s\"\n", g_versions[e], f.db, engines[e]->name,
           g_options[e]);
    rc |= run_engine_in_child(engines[e], g_options[e], &f, names, nbench, g_results[e]);
  }
  if (nengines > 1)
    report_print_comparison(g_engines, nengines, names, nbench, g_results);
  if (f.json != NULL &&
      report_write_json(f.json, &f, date, g_engines, nengines, names, nbench, g_results) != 0) {
    fprintf(stderr, "mayfly_bench: cannot write %s: %s\n", f.json, strerror(errno));
    rc = 1;
  }
  for (int e = 0; e < nengines; e++)
    for (int b = 0; b < nbench; b++)
      free(g_results[e][b].latency);
  return rc != 0 ? 1 : 0;
}
