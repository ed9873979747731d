/* Allocation failures anywhere: a workload that opens a database, writes (single puts,
 * deletes, batches, values in the tables and in blob files), reads (gets, snapshots,
 * iterators, properties), flushes, compacts, collects blob garbage, changes options and
 * closes is run once for every allocation it makes, with that allocation failing
 * ("one-shot"), and again for a sample of them with every allocation from that one on failing
 * ("persistent", memory stays exhausted).
 *
 * Under failures every call must return MAYFLY_OK, MAYFLY_ENOMEM or (once a background job
 * ran out of memory on every retry, which makes the database read-only) MAYFLY_ECLOSED, never
 * crash, and every value it returns must be one the model allows; a single failed allocation
 * must never make the database read-only. Then, with allocation working again, the
 * database must reopen, hold exactly the acknowledged writes (plus, for a write that failed,
 * possibly that write), pass db_check with no problem, and take writes. Under the sanitizer
 * build the same runs check that no failure path leaks or touches freed memory.
 *
 * The test binary is linked with -Wl,--wrap for malloc, calloc, realloc, aligned_alloc,
 * strdup and strndup (CMakeLists.txt), so every allocation the library makes passes through
 * the wrappers below; the test's own code allocates nothing while the wrappers are armed.
 * Background threads allocate too, so which allocation the n-th is varies a little between
 * runs; every run checks the same rules whichever one fails.
 *
 * MAYFLY_ALLOC_FAIL_STRIDE=k tries every k-th allocation (default 1: every one; the seed of
 * the sampled persistent runs is printed). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db/db_check.h"
#include "db/options.h"
#include "env/env.h"
#include "mayfly.h"

/* ---- the allocation wrappers ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t count, size_t n);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t count, size_t n);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_aligned_alloc(size_t align, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

static atomic_int armed;         /* failures are injected only while set */
static atomic_long countdown;    /* the allocation that takes this to 0 fails */
static atomic_int persistent;    /* and, when set, every one after it */
static atomic_long allocations;  /* allocations seen while armed */
static atomic_long injected;     /* allocations failed */
static atomic_int background_only; /* count and fail only other threads' allocations */
static pthread_t test_thread;

static int fail_now(void) {
  if (!atomic_load(&armed)) return 0;
  if (atomic_load(&background_only) && pthread_equal(pthread_self(), test_thread)) return 0;
  atomic_fetch_add(&allocations, 1);
  long left = atomic_fetch_sub(&countdown, 1);
  if (left == 1 || (left <= 0 && atomic_load(&persistent))) {
    atomic_fetch_add(&injected, 1);
    return 1;
  }
  return 0;
}

void *__wrap_malloc(size_t n) { return fail_now() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t count, size_t n) {
  return fail_now() ? NULL : __real_calloc(count, n);
}
void *__wrap_realloc(void *p, size_t n) { return fail_now() ? NULL : __real_realloc(p, n); }
void *__wrap_aligned_alloc(size_t align, size_t n) {
  return fail_now() ? NULL : __real_aligned_alloc(align, n);
}
char *__wrap_strdup(const char *s) { return fail_now() ? NULL : __real_strdup(s); }
char *__wrap_strndup(const char *s, size_t n) {
  return fail_now() ? NULL : __real_strndup(s, n);
}

static void arm(long nth, int keep_failing) {
  test_thread = pthread_self();
  atomic_store(&allocations, 0);
  atomic_store(&injected, 0);
  atomic_store(&countdown, nth);
  atomic_store(&persistent, keep_failing);
  atomic_store(&armed, 1);
}

static void disarm(void) { atomic_store(&armed, 0); }

/* ---- keys, values and the model ---- */

enum { NKEYS = 40, MAX_AMBIG = 64, SMALL = 40, LARGE = 300, DELETED = -1 };

static size_t key_text(int i, char *buf) { return (size_t)snprintf(buf, 32, "key%04d", i); }

static size_t value_len(int ver) { return ver % 3 == 0 ? SMALL : LARGE; }

/* Value of key i at version ver: "i:ver:" and a fill derived from both. */
static void value_text(int i, int ver, char *buf, size_t len) {
  int n = snprintf(buf, len, "%04d:%06d:", i, ver);
  for (size_t j = (size_t)n; j < len; j++)
    buf[j] = (char)('a' + (size_t)(i * 7 + ver * 3 + j) % 26);
}

/* What a key may read as: its last acknowledged version (DELETED when none or deleted) or
 * one of the writes after it whose outcome is unknown because they failed. */
typedef struct key_model {
  int ok;
  int ambig[MAX_AMBIG];
  int num_ambig;
} key_model;

typedef struct model {
  key_model k[NKEYS];
  int next_ver;
} model;

static void model_init(model *m) {
  memset(m, 0, sizeof *m);
  for (int i = 0; i < NKEYS; i++) m->k[i].ok = DELETED;
  m->next_ver = 1;
}

static void model_write(model *m, int i, int ver, int acknowledged) {
  key_model *k = &m->k[i];
  if (acknowledged) {
    k->ok = ver;
    k->num_ambig = 0;
  } else if (k->num_ambig < MAX_AMBIG) {
    k->ambig[k->num_ambig++] = ver;
  } else {
    fail_msg("key %d: more than %d failed writes in a row", i, MAX_AMBIG);
  }
}

/* An acknowledged MAYFLY_NO_WAL write: it may still be lost (a database that goes read-only
 * before it is flushed never writes it out), so what the key read as before stays allowed. */
static void model_write_unlogged(model *m, int i, int ver) {
  key_model *k = &m->k[i];
  if (k->num_ambig >= MAX_AMBIG) fail_msg("key %d: more than %d unsure versions", i, MAX_AMBIG);
  k->ambig[k->num_ambig++] = k->ok;
  k->ok = ver;
}

static int model_allows(const key_model *k, int ver) {
  if (k->ok == ver) return 1;
  for (int j = 0; j < k->num_ambig; j++)
    if (k->ambig[j] == ver) return 1;
  return 0;
}

/* The version a value of key i holds; a value that is not exactly one written for key i
 * fails the test. */
static int version_of(int i, const void *data, size_t len) {
  char head[16], expect[LARGE];
  if (len != SMALL && len != LARGE) fail_msg("key %d: value of %zu bytes", i, len);
  memcpy(head, data, 12);
  head[12] = '\0';
  int ki = -1, ver = -1;
  if (sscanf(head, "%04d:%06d:", &ki, &ver) != 2 || ki != i)
    fail_msg("key %d: value header \"%s\" belongs elsewhere", i, head);
  value_text(i, ver, expect, len);
  if (len != value_len(ver) || memcmp(expect, data, len) != 0)
    fail_msg("key %d: value of version %d is damaged", i, ver);
  return ver;
}

/* ---- running the workload ---- */

static int num_runs, num_closed_runs;
static long num_enomem, num_eclosed; /* calls that returned them */

/* Fails the test unless rc is an outcome allowed while allocations may fail. */
static void allowed(int rc, const char *what) {
  num_enomem += rc == MAYFLY_ENOMEM;
  num_eclosed += rc == MAYFLY_ECLOSED;
  if (rc == MAYFLY_OK || rc == MAYFLY_ENOMEM || rc == MAYFLY_ECLOSED) return;
  fail_msg("%s: %s, not an allowed outcome of an allocation failure (%s)", what,
           mayfly_strerror(rc), mayfly_errmsg(NULL));
}

static void check_get(mayfly_db *db, const mayfly_snapshot *snap, const key_model *k, int i) {
  char key[32];
  size_t klen = key_text(i, key);
  void *v = NULL;
  size_t len = 0;
  int rc = mayfly_get(db, snap, key, klen, &v, &len);
  int ver;
  if (rc == MAYFLY_ENOTFOUND) {
    ver = DELETED;
  } else {
    allowed(rc, "get");
    if (rc != MAYFLY_OK) return;
    ver = version_of(i, v, len);
    mayfly_free(v);
  }
  if (!model_allows(k, ver)) fail_msg("key %d read as version %d, acknowledged %d", i, ver, k->ok);
}

/* The index of the key the iterator is on; a key the workload never wrote fails the test. */
static int iter_key_index(const mayfly_iter *it, const char *what) {
  size_t len;
  const char *key = mayfly_iter_key(it, &len);
  char buf[8];
  int i = -1;
  if (len == 7) {
    memcpy(buf, key, 7);
    buf[7] = '\0';
    if (sscanf(buf, "key%04d", &i) != 1) i = -1;
  }
  if (i < 0 || i >= NKEYS) fail_msg("%s: unknown key of %zu bytes", what, len);
  return i;
}

/* A full forward scan: strictly increasing keys, each with an allowed value, and every key
 * whose model admits no deletion present (unless the scan stopped on an error). */
static void check_scan(mayfly_db *db, const mayfly_snapshot *snap, const model *m) {
  mayfly_iter *it = NULL;
  int rc = mayfly_iter_create(db, snap, &it);
  allowed(rc, "iter_create");
  if (rc != MAYFLY_OK) return;
  int seen[NKEYS] = {0}, last = -1;
  for (mayfly_iter_seek_to_first(it); mayfly_iter_valid(it); mayfly_iter_next(it)) {
    size_t vlen;
    int i = iter_key_index(it, "scan");
    if (i <= last) fail_msg("scan: key %d after key %d", i, last);
    last = i;
    const void *v = mayfly_iter_value(it, &vlen);
    if (!v) { /* a blob read that failed: the iterator's status says why */
      allowed(mayfly_iter_status(it), "iter_value");
      if (mayfly_iter_status(it) == MAYFLY_OK) fail_msg("scan: no value and no error");
      break;
    }
    int ver = version_of(i, v, vlen);
    if (!model_allows(&m->k[i], ver))
      fail_msg("scan: key %d read as version %d, acknowledged %d", i, ver, m->k[i].ok);
    seen[i] = 1;
  }
  rc = mayfly_iter_status(it);
  allowed(rc, "iteration");
  if (rc == MAYFLY_OK) {
    for (int i = 0; i < NKEYS; i++)
      if (!seen[i] && !model_allows(&m->k[i], DELETED))
        fail_msg("scan: key %d (version %d) missing", i, m->k[i].ok);
  }
  mayfly_iter_destroy(it);
}

/* A backward scan from a seek: strictly decreasing keys from the first key >= the middle
 * one, each with an allowed value. */
static void check_scan_back(mayfly_db *db, const model *m) {
  mayfly_iter *it = NULL;
  int rc = mayfly_iter_create(db, NULL, &it);
  allowed(rc, "iter_create");
  if (rc != MAYFLY_OK) return;
  char key[32];
  size_t klen = key_text(NKEYS / 2, key);
  mayfly_iter_seek(it, key, klen);
  if (!mayfly_iter_valid(it)) mayfly_iter_seek_to_last(it);
  int last = NKEYS;
  for (; mayfly_iter_valid(it); mayfly_iter_prev(it)) {
    size_t vlen;
    int i = iter_key_index(it, "backward scan");
    if (i >= last) fail_msg("backward scan: key %d after key %d", i, last);
    last = i;
    const void *v = mayfly_iter_value(it, &vlen);
    if (!v) {
      if (mayfly_iter_status(it) == MAYFLY_OK) fail_msg("backward scan: no value and no error");
      break;
    }
    int ver = version_of(i, v, vlen);
    if (!model_allows(&m->k[i], ver))
      fail_msg("backward scan: key %d read as version %d, acknowledged %d", i, ver, m->k[i].ok);
  }
  allowed(mayfly_iter_status(it), "backward iteration");
  mayfly_iter_destroy(it);
}

static int unlogged_every; /* every n-th put skips the WAL (MAYFLY_NO_WAL); 0: none */

static void put_one(mayfly_db *db, model *m, int i) {
  char key[32], val[LARGE];
  int ver = m->next_ver++;
  size_t klen = key_text(i, key), vlen = value_len(ver);
  value_text(i, ver, val, vlen);
  int unlogged = unlogged_every && ver % unlogged_every == 0;
  int rc = mayfly_put(db, key, klen, val, vlen, unlogged ? MAYFLY_NO_WAL : 0);
  allowed(rc, "put");
  if (unlogged && rc == MAYFLY_OK) model_write_unlogged(m, i, ver);
  else model_write(m, i, ver, rc == MAYFLY_OK);
}

static void delete_one(mayfly_db *db, model *m, int i) {
  char key[32];
  size_t klen = key_text(i, key);
  int rc = mayfly_delete(db, key, klen, 0);
  allowed(rc, "delete");
  model_write(m, i, DELETED, rc == MAYFLY_OK);
}

/* Eight puts and a delete in one batch, all or nothing. */
static void write_batch(mayfly_db *db, model *m, int round) {
  mayfly_batch *b = NULL;
  int rc = mayfly_batch_create(&b);
  allowed(rc, "batch_create");
  if (rc != MAYFLY_OK) return;
  int keys[9], vers[9], n = 0;
  for (int j = 0; j < 9; j++) {
    char key[32], val[LARGE];
    int i = (round * 11 + j * 4) % NKEYS;
    size_t klen = key_text(i, key);
    if (j == 8) {
      rc = mayfly_batch_delete(b, key, klen);
      vers[n] = DELETED;
    } else {
      int ver = m->next_ver++;
      value_text(i, ver, val, value_len(ver));
      rc = mayfly_batch_put(b, key, klen, val, value_len(ver));
      vers[n] = ver;
    }
    allowed(rc, "batch_put");
    if (rc != MAYFLY_OK) { /* a batch that could not be built is not written */
      mayfly_batch_destroy(b);
      return;
    }
    keys[n++] = i;
  }
  rc = mayfly_write(db, b, round % 2 ? MAYFLY_SYNC : 0);
  allowed(rc, "write");
  for (int j = 0; j < n; j++) model_write(m, keys[j], vers[j], rc == MAYFLY_OK);
  mayfly_batch_destroy(b);
}

static void read_property(mayfly_db *db, const char *name) {
  char *v = NULL;
  int rc = mayfly_property(db, name, &v);
  allowed(rc, name);
  if (rc == MAYFLY_OK && (!v || !*v)) fail_msg("property %s: empty", name);
  mayfly_free(v);
}

static const char *dir, *trace_dir;

/* Removes the trace directory and the files in it. */
static void remove_trace_dir(void) {
  mf_env *env = env_posix();
  char **names;
  size_t count;
  if (env->list_dir(env, trace_dir, &names, &count) != MAYFLY_OK) return;
  for (size_t i = 0; i < count; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", trace_dir, names[i]);
    env->remove_file(env, path);
  }
  env_free_names(names, count);
  env->remove_dir(env, trace_dir);
}

/* The configurations: blob GC by age with no compression; blob GC by value-log group with
 * compressed tables and blobs, a blob cache of its own, tracing and one background thread;
 * no blob files, compressed tables, no block cache, dynamic level sizes, absolute WAL
 * recovery and every fourth put without the WAL. */
static const char *const configs[][14][2] = {
    {
        {"enable_blob_files", "true"},
        {"min_blob_size", "100"},
        {"blob_file_size", "64KiB"},
        {"enable_blob_garbage_collection", "true"},
        {"blob_garbage_collection_age_cutoff", "1.0"},
        {"blob_garbage_collection_force_threshold", "0.2"},
        {"level0_file_num_compaction_trigger", "2"},
        {"write_buffer_size", "64KiB"},
        {"max_background_jobs", "2"},
        {"max_bgerror_resume_count", "3"},
        {"bgerror_resume_retry_interval", "1000"},
    },
    {
        {"enable_blob_files", "true"},
        {"min_blob_size", "100"},
        {"blob_file_size", "64KiB"},
        {"blob_gc_policy", "group"},
        {"blob_garbage_collection_force_threshold", "0.2"},
        {"blob_compression", "lz4"},
        {"compression", "zstd"},
        {"blob_cache_size", "1MiB"},
        {"level0_file_num_compaction_trigger", "2"},
        {"write_buffer_size", "64KiB"},
        {"max_background_jobs", "1"},
        {"bgerror_resume_retry_interval", "500"},
        {"trace_gets", "true"}, /* and trace_dir, set by fill_options */
    },
    {
        {"enable_blob_files", "false"},
        {"compression", "lz4"},
        {"level_compaction_dynamic_level_bytes", "true"},
        {"wal_recovery_mode", "absolute"},
        {"block_cache_size", "0"},
        {"level0_file_num_compaction_trigger", "2"},
        {"write_buffer_size", "64KiB"},
        {"max_bytes_for_level_base", "1MiB"},
        {"bgerror_resume_retry_interval", "1000"},
    },
};

static void fill_options(struct mayfly_options *o, int config) {
  options_init_defaults(o);
  for (int s = 0; s < 14 && configs[config][s][0]; s++)
    if (options_set(o, configs[config][s][0], configs[config][s][1], 0) != MAYFLY_OK)
      fail_msg("option %s=%s: %s", configs[config][s][0], configs[config][s][1],
               mayfly_errmsg(NULL));
  if (config == 1 && options_set(o, "trace_dir", trace_dir, 0) != MAYFLY_OK)
    fail_msg("option trace_dir: %s", mayfly_errmsg(NULL));
  unlogged_every = config == 2 ? 4 : 0;
}

/* Rounds first..last of the workload on an open database; every call may fail as allowed. */
static void rounds(mayfly_db *db, model *m, int first, int last) {
  for (int round = first; round <= last; round++) {
    for (int i = round % 3; i < NKEYS; i += 2) {
      if (i % 7 == round) delete_one(db, m, i);
      else put_one(db, m, i);
    }
    write_batch(db, m, round);

    const mayfly_snapshot *snap = NULL;
    model at_snap = *m;
    int rc = mayfly_snapshot_create(db, &snap);
    allowed(rc, "snapshot_create");
    for (int i = 0; i < NKEYS; i += 3) put_one(db, m, i);
    for (int i = round; i < NKEYS; i += 5) check_get(db, NULL, &m->k[i], i);
    if (rc == MAYFLY_OK) {
      for (int i = 0; i < NKEYS; i += 6) check_get(db, snap, &at_snap.k[i], i);
      check_scan(db, snap, &at_snap);
      mayfly_snapshot_release(db, snap);
    }
    check_scan(db, NULL, m);
    check_scan_back(db, m);

    if (round % 2 == 1) allowed(mayfly_flush(db), "flush");
    if (round == 3) allowed(mayfly_compact_range(db, NULL, 0, NULL, 0), "compact_range");
    static const char *const props[] = {"mayfly.blob-stats", "mayfly.stats",
                                        "mayfly.live-data-size-exact", "mayfly.recovery"};
    read_property(db, props[round % 4]);
    allowed(mayfly_set_option(db, "blob_garbage_collection_age_cutoff", round % 2 ? "1" : "0.5"),
            "set_option");
  }
}

/* Opens the database, runs rounds first..last and closes it; returns at once if the open
 * fails. */
static void session(const struct mayfly_options *o, model *m, int first, int last) {
  mayfly_db *db = NULL;
  int rc = mayfly_open(dir, o, &db);
  allowed(rc, "open");
  if (rc != MAYFLY_OK) {
    if (db) fail_msg("open failed but returned a handle");
    return;
  }
  rounds(db, m, first, last);
  allowed(mayfly_wait_idle(db), "wait_idle");
  allowed(mayfly_close(db), "close");
}

/* The workload: two sessions, so that the second open recovers a MANIFEST and a WAL (the
 * last round of the first session is not flushed). */
static void workload(const struct mayfly_options *o, model *m) {
  session(o, m, 0, 2);
  session(o, m, 3, 5);
}

/* With allocation working: the database opens, reads as the model allows, passes db_check
 * and takes a write that survives a reopen. */
static void verify(const struct mayfly_options *o, const model *m, const char *what) {
  mayfly_db *db = NULL;
  int rc = mayfly_open(dir, o, &db);
  if (rc != MAYFLY_OK)
    fail_msg("%s: reopen: %s (%s)", what, mayfly_strerror(rc), mayfly_errmsg(NULL));
  for (int i = 0; i < NKEYS; i++) check_get(db, NULL, &m->k[i], i);
  check_scan(db, NULL, m);
  char val[SMALL];
  value_text(0, 0, val, SMALL);
  rc = mayfly_put(db, "key0000", 7, val, SMALL, MAYFLY_SYNC);
  if (rc != MAYFLY_OK)
    fail_msg("%s: put after reopen: %s (%s)", what, mayfly_strerror(rc), mayfly_errmsg(db));
  rc = mayfly_close(db);
  if (rc != MAYFLY_OK)
    fail_msg("%s: close: %s (%s)", what, mayfly_strerror(rc), mayfly_errmsg(NULL));

  db_check_counts counts;
  rc = db_check(dir, NULL, NULL, &counts);
  if (rc != MAYFLY_OK || counts.problems) {
    fprintf(stderr, "%s: db_check:\n", what);
    db_check(dir, NULL, stderr, &counts);
    fail_msg("%s: db_check found %llu problems", what, (unsigned long long)counts.problems);
  }

  rc = mayfly_open(dir, o, &db);
  if (rc != MAYFLY_OK) fail_msg("%s: second reopen: %s", what, mayfly_strerror(rc));
  key_model k0 = {.ok = 0, .num_ambig = 0};
  check_get(db, NULL, &k0, 0);
  if (mayfly_close(db) != MAYFLY_OK) fail_msg("%s: second close", what);
  if (mayfly_destroy(dir) != MAYFLY_OK) fail_msg("%s: destroy", what);
  remove_trace_dir();
}

/* One run: the workload with the nth allocation failing (and, if keep_failing, every one
 * after it), then the verification. Returns the allocations the workload made. */
static long run(const struct mayfly_options *o, long nth, int keep_failing) {
  model m;
  model_init(&m);
  char what[64];
  snprintf(what, sizeof what, "allocation %ld%s", nth, keep_failing ? " on" : "");
  arm(nth, keep_failing);
  long closed_before = num_eclosed;
  workload(o, &m);
  disarm();
  num_closed_runs += num_eclosed > closed_before;
  verify(o, &m, what);
  num_runs++;
  return atomic_load(&allocations);
}

static long stride(void) {
  const char *s = getenv("MAYFLY_ALLOC_FAIL_STRIDE");
  long k = s ? atol(s) : 1;
  return k > 0 ? k : 1;
}

static void setup_dir(void) {
  static char path[400], trace_path[512];
  const char *base = getenv("MAYFLY_TEST_TMP");
  if (!base || !*base) base = "/tmp";
  snprintf(path, sizeof path, "%s/test_db_alloc_fail.%d", base, (int)getpid());
  snprintf(trace_path, sizeof trace_path, "%s.trace", path);
  dir = path;
  trace_dir = trace_path;
  mayfly_destroy(dir);
  remove_trace_dir();
}

static void test_each_allocation_fails_once(void **state) {
  int config = *(const int *)*state;
  setup_dir();
  struct mayfly_options o;
  fill_options(&o, config);
  long total = run(&o, 0, 0); /* countdown 0: nothing fails; counts the allocations */
  assert_true(total > 100);
  assert_int_equal(atomic_load(&injected), 0);
  long k = stride(), failed_runs = 0;
  num_runs = num_closed_runs = 0;
  num_enomem = num_eclosed = 0;
  for (long n = 1; n <= total; n += k) {
    run(&o, n, 0);
    failed_runs += atomic_load(&injected) > 0;
  }
  printf("config %d, one-shot: %ld allocations in a clean run, %d runs, %ld with a failure "
         "injected, "
         "%d went read-only; calls that returned MAYFLY_ENOMEM: %ld, MAYFLY_ECLOSED: %ld\n",
         config, total, num_runs, failed_runs, num_closed_runs, num_enomem, num_eclosed);
  /* Background threads shift the count (on a loaded machine a run may do less background
   * work than the clean one), but most runs must have hit their allocation, or the wrappers
   * are not reaching the library. */
  assert_true(failed_runs * 2 >= total / k);
  /* One allocation that fails is never worse than an error for the call that needed it:
   * writes prepare the memtable's copies before they log anything, and background jobs are
   * tried again. */
  assert_int_equal(num_closed_runs, 0);
}

static void test_memory_stays_exhausted(void **state) {
  int config = *(const int *)*state;
  setup_dir();
  struct mayfly_options o;
  fill_options(&o, config);
  long total = run(&o, 0, 0);
  unsigned seed = (unsigned)time(NULL);
  const char *s = getenv("MAYFLY_ALLOC_FAIL_SEED");
  if (s) seed = (unsigned)strtoul(s, NULL, 10);
  printf("config %d, persistent: seed %u (MAYFLY_ALLOC_FAIL_SEED)\n", config, seed);
  srand(seed);
  long runs = total / stride() / 4 + 1;
  for (long r = 0; r < runs; r++) run(&o, 1 + rand() % total, 1);
  run(&o, 1, 1); /* nothing can be allocated at all */
  printf("config %d, persistent: %ld runs\n", config, runs + 1);
}

/* ---- background jobs that run out of memory are tried again ---- */

static int put_n(mayfly_db *db, model *m, int from, int to) {
  int rc = MAYFLY_OK;
  for (int i = from; i < to && rc == MAYFLY_OK; i++) {
    char key[32], val[LARGE];
    int ver = m->next_ver++;
    size_t klen = key_text(i % NKEYS, key), vlen = value_len(ver);
    value_text(i % NKEYS, ver, val, vlen);
    rc = mayfly_put(db, key, klen, val, vlen, 0);
    model_write(m, i % NKEYS, ver, rc == MAYFLY_OK);
  }
  return rc;
}

static uint64_t retries_in_stats(mayfly_db *db) {
  static const char label[] = "Jobs tried again after running out of memory: ";
  char *text = NULL;
  if (mayfly_property(db, "mayfly.stats", &text) != MAYFLY_OK) fail_msg("mayfly.stats");
  const char *p = strstr(text, label);
  if (!p) fail_msg("no \"%s\" in mayfly.stats:\n%s", label, text);
  uint64_t n = strtoull(p + strlen(label), NULL, 10);
  mayfly_free(text);
  return n;
}

/* A flush whose first allocation fails is tried again and succeeds: mayfly_flush returns
 * MAYFLY_OK and the database stays writable. Memory that stays exhausted through every retry
 * (max_bgerror_resume_count) makes it read-only, with a message that says why; a reopen
 * finds every acknowledged write. A manual compaction that runs out of memory returns
 * MAYFLY_ENOMEM and leaves the database writable. */
static void test_background_job_retried(void **state) {
  (void)state;
  setup_dir();
  struct mayfly_options o;
  fill_options(&o, 0);
  model m;
  model_init(&m);
  mayfly_db *db = NULL;
  if (mayfly_open(dir, &o, &db) != MAYFLY_OK) fail_msg("open: %s", mayfly_errmsg(NULL));
  assert_int_equal(put_n(db, &m, 0, 100), MAYFLY_OK);
  uint64_t retries = retries_in_stats(db);

  atomic_store(&background_only, 1);
  arm(1, 0);
  assert_int_equal(mayfly_wait_idle(db), MAYFLY_OK);
  int rc = mayfly_flush(db);
  disarm();
  if (rc != MAYFLY_OK) fail_msg("flush after one failed allocation: %s", mayfly_errmsg(db));
  assert_int_equal(atomic_load(&injected), 1);
  assert_int_equal(retries_in_stats(db), retries + 1);
  assert_int_equal(put_n(db, &m, 100, 200), MAYFLY_OK);
  for (int i = 0; i < NKEYS; i++) check_get(db, NULL, &m.k[i], i);

  /* A manual compaction: its first background allocation fails. (Level 0 gets one table
   * over what the automatic compaction left, so that there is something to compact.) */
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  assert_int_equal(mayfly_wait_idle(db), MAYFLY_OK);
  assert_int_equal(put_n(db, &m, 0, 10), MAYFLY_OK);
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  assert_int_equal(mayfly_wait_idle(db), MAYFLY_OK);
  arm(1, 0);
  rc = mayfly_compact_range(db, NULL, 0, NULL, 0);
  disarm();
  assert_int_equal(atomic_load(&injected), 1);
  assert_int_equal(rc, MAYFLY_ENOMEM);
  if (!strstr(mayfly_errmsg(db), "out of memory")) fail_msg("message: %s", mayfly_errmsg(db));
  assert_int_equal(put_n(db, &m, 200, 300), MAYFLY_OK);
  if (mayfly_compact_range(db, NULL, 0, NULL, 0) != MAYFLY_OK)
    fail_msg("compaction after memory came back: %s", mayfly_errmsg(db));
  check_scan(db, NULL, &m);

  /* Memory stays exhausted: the flush is tried 1 + max_bgerror_resume_count (3) times. */
  assert_int_equal(put_n(db, &m, 300, 400), MAYFLY_OK);
  retries = retries_in_stats(db);
  arm(1, 1);
  rc = mayfly_flush(db);
  disarm();
  atomic_store(&background_only, 0);
  assert_int_equal(rc, MAYFLY_ECLOSED);
  if (!strstr(mayfly_errmsg(db), "memtable flush") || !strstr(mayfly_errmsg(db), "out of memory"))
    fail_msg("message: %s", mayfly_errmsg(db));
  assert_int_equal(retries_in_stats(db), retries + 3);
  assert_int_equal(put_n(db, &m, 400, 401), MAYFLY_ECLOSED);
  for (int i = 0; i < NKEYS; i++) check_get(db, NULL, &m.k[i], i);
  mayfly_close(db);
  verify(&o, &m, "after the retries ran out");
}

/* A close during a retry's pause does not wait for the pause: with a flush that ran out of
 * memory and a minute to wait before its retry, mayfly_close returns at once, and the
 * writes are all there after a reopen (from the WAL). */
static void test_close_during_retry_pause(void **state) {
  (void)state;
  setup_dir();
  struct mayfly_options o;
  fill_options(&o, 0);
  if (options_set(&o, "bgerror_resume_retry_interval", "60000000", 0) != MAYFLY_OK)
    fail_msg("option: %s", mayfly_errmsg(NULL));
  model m;
  model_init(&m);
  mayfly_db *db = NULL;
  if (mayfly_open(dir, &o, &db) != MAYFLY_OK) fail_msg("open: %s", mayfly_errmsg(NULL));
  atomic_store(&background_only, 1);
  arm(1, 0);
  /* 300 values of 300 bytes fill the 64 KiB memtable: its flush fails. */
  assert_int_equal(put_n(db, &m, 0, 300), MAYFLY_OK);
  for (int i = 0; i < 500 && atomic_load(&injected) == 0; i++) usleep(10000);
  disarm();
  atomic_store(&background_only, 0);
  assert_int_equal(atomic_load(&injected), 1);
  /* The failed allocation was the flush's: it waits for its retry. */
  for (int i = 0; i < 500 && retries_in_stats(db) == 0; i++) usleep(10000);
  assert_int_equal(retries_in_stats(db), 1);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  printf("close during a 60 s retry pause took %.3f s\n", secs);
  if (secs > 30) fail_msg("close waited %.1f s for the retry pause", secs);
  verify(&o, &m, "after a close during a retry pause");
}

int main(void) {
  static const int age = 0, group = 1, unlogged = 2;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_prestate(test_each_allocation_fails_once, (void *)&age),
      cmocka_unit_test_prestate(test_memory_stays_exhausted, (void *)&age),
      cmocka_unit_test_prestate(test_each_allocation_fails_once, (void *)&group),
      cmocka_unit_test_prestate(test_memory_stays_exhausted, (void *)&group),
      cmocka_unit_test_prestate(test_each_allocation_fails_once, (void *)&unlogged),
      cmocka_unit_test_prestate(test_memory_stays_exhausted, (void *)&unlogged),
      cmocka_unit_test(test_background_job_retried),
      cmocka_unit_test(test_close_during_retry_pause),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
