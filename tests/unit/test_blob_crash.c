/* Blob files across crashes and faults, on the in-memory env.
 *
 * The database runs on a wrapper around a mem env that can
 *  - freeze: every call that would change the file system fails with MAYFLY_EIO, so a handle
 *    that is then closed dies at an arbitrary point of its work, as in a power cut (the
 *    technique of test_db_crash.c: freeze, env_mem_crash, close the old handle, thaw, open);
 *  - freeze after a countdown of mutating calls, to land crashes inside flushes and GC
 *    compactions;
 *  - fire once at a chosen point of a job: fail the MANIFEST append, or its sync, that
 *    follows a blob file's sync, or freeze right after that MANIFEST sync succeeded, or fail
 *    a blob file's sync;
 *  - count remove_file calls per .blob name while not frozen (per handle: a file a crash
 *    brings back is legitimately removed again by the next handle).
 *
 * Promises checked:
 *  (a) after crashes in the middle of GC-heavy work, every synced write is there and every
 *      blob reference resolves (a full scan reading values returns no error);
 *  (b) blob files the MANIFEST does not list (strays in the directory, or outputs of a job
 *      whose edit never became durable) are removed by open;
 *  (c) a blob file is never deleted while a reader may use it: many GC cycles with
 *      concurrent gets and iterators, no read fails;
 *  (d) a relocation lost with its MANIFEST edit (append failed, sync failed, or the crash
 *      came right after the sync) leaves every value readable after reopen;
 *  (e) no .blob name is removed twice;
 *  (f) the MANIFEST never names a blob file whose directory entry a crash took away: after
 *      every reopen the version's blob files and the directory's are the same set.
 * Seeds are printed; MAYFLY_SEED=<n> replays a run. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/options.h"
#include "env/env.h"
#include "mayfly.h"
#include "util/slice.h"

#define DBNAME "/db"

/* ---- the wrapper env ---- */

enum { KIND_OTHER, KIND_MANIFEST, KIND_BLOB };

enum arm_mode {
  ARM_NONE,
  ARM_FAIL_MANIFEST_APPEND,       /* the MANIFEST append after a blob sync fails; freeze */
  ARM_FAIL_MANIFEST_SYNC,         /* the append succeeds, its sync fails; freeze */
  ARM_FREEZE_AFTER_MANIFEST_SYNC, /* the sync succeeds, then everything fails */
  ARM_FAIL_BLOB_SYNC              /* one blob file sync fails; nothing else */
};

static mf_env *g_base;
static struct mf_env g_wrap;
static atomic_int g_frozen;
static atomic_long g_countdown = -1; /* mutating calls left before freezing; < 0: off */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
/* writable files of a kind we watch (guarded by g_mu) */
enum { MAX_TRACKED = 512 };
static struct {
  mf_wfile *f;
  int kind;
  char name[64];
} g_tracked[MAX_TRACKED];
static int g_num_tracked;
/* the trigger (guarded by g_mu) */
static int g_arm;
static int g_blob_synced; /* a blob file was synced since arming */
static int g_fired;
static char g_fired_blob[64]; /* ARM_FAIL_BLOB_SYNC: the file whose sync failed */
/* remove_file calls per .blob name (guarded by g_mu) */
enum { MAX_REMOVED = 4096 };
static struct {
  char name[64];
  int count;
} g_removed[MAX_REMOVED];
static int g_num_removed;
static char g_double_removed[64];

static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

static int ends_with(const char *s, const char *suffix) {
  size_t l = strlen(s), n = strlen(suffix);
  return l >= n && strcmp(s + l - n, suffix) == 0;
}

/* A mutating call: fails when frozen, and counts down towards a freeze. */
static int mutate(void) {
  if (atomic_load(&g_frozen)) return 1;
  long left = atomic_load(&g_countdown);
  if (left >= 0 && atomic_fetch_sub(&g_countdown, 1) <= 0) {
    atomic_store(&g_frozen, 1);
    return 1;
  }
  return 0;
}

static int kind_of(mf_wfile *f, char *name) {
  int kind = KIND_OTHER;
  pthread_mutex_lock(&g_mu);
  for (int i = 0; i < g_num_tracked; i++)
    if (g_tracked[i].f == f) {
      kind = g_tracked[i].kind;
      if (name) snprintf(name, 64, "%s", g_tracked[i].name);
    }
  pthread_mutex_unlock(&g_mu);
  return kind;
}

static int w_new_writable(mf_env *env, const char *path, mf_wfile **out) {
  if (mutate()) return MAYFLY_EIO;
  int rc = g_base->new_writable(g_base, path, out);
  const char *name = base_name(path);
  int kind = strncmp(name, "MANIFEST-", 9) == 0 ? KIND_MANIFEST
             : ends_with(name, ".blob")         ? KIND_BLOB
                                                : KIND_OTHER;
  if (rc == MAYFLY_OK && kind != KIND_OTHER) {
    pthread_mutex_lock(&g_mu);
    if (g_num_tracked < MAX_TRACKED) {
      g_tracked[g_num_tracked].f = *out;
      g_tracked[g_num_tracked].kind = kind;
      snprintf(g_tracked[g_num_tracked].name, 64, "%s", name);
      g_num_tracked++;
    }
    pthread_mutex_unlock(&g_mu);
  }
  return rc;
}

static int w_append(mf_wfile *f, const void *data, size_t n) {
  if (mutate()) return MAYFLY_EIO;
  if (kind_of(f, NULL) == KIND_MANIFEST) {
    pthread_mutex_lock(&g_mu);
    int fire = g_arm == ARM_FAIL_MANIFEST_APPEND && g_blob_synced && !g_fired;
    if (fire) {
      g_fired = 1;
      atomic_store(&g_frozen, 1);
    }
    pthread_mutex_unlock(&g_mu);
    if (fire) return MAYFLY_EIO;
  }
  return g_base->append(f, data, n);
}

static int w_flush(mf_wfile *f) {
  if (mutate()) return MAYFLY_EIO;
  return g_base->flush(f);
}

static int w_sync(mf_wfile *f, int full) {
  if (mutate()) return MAYFLY_EIO;
  char name[64];
  int kind = kind_of(f, name);
  if (kind == KIND_BLOB) {
    pthread_mutex_lock(&g_mu);
    int fail = g_arm == ARM_FAIL_BLOB_SYNC && !g_fired;
    if (fail) {
      g_fired = 1;
      snprintf(g_fired_blob, sizeof g_fired_blob, "%s", name);
    }
    pthread_mutex_unlock(&g_mu);
    if (fail) return MAYFLY_EIO;
    int rc = g_base->sync(f, full);
    pthread_mutex_lock(&g_mu);
    if (rc == MAYFLY_OK) g_blob_synced = 1;
    pthread_mutex_unlock(&g_mu);
    return rc;
  }
  if (kind == KIND_MANIFEST) {
    pthread_mutex_lock(&g_mu);
    int armed = g_blob_synced && !g_fired &&
                (g_arm == ARM_FAIL_MANIFEST_SYNC || g_arm == ARM_FREEZE_AFTER_MANIFEST_SYNC);
    int mode = g_arm;
    if (armed) g_fired = 1;
    if (armed && mode == ARM_FAIL_MANIFEST_SYNC) atomic_store(&g_frozen, 1);
    pthread_mutex_unlock(&g_mu);
    if (armed && mode == ARM_FAIL_MANIFEST_SYNC) return MAYFLY_EIO;
    int rc = g_base->sync(f, full);
    if (armed) atomic_store(&g_frozen, 1);
    return rc;
  }
  return g_base->sync(f, full);
}

static int w_close_writable(mf_wfile *f) {
  pthread_mutex_lock(&g_mu);
  for (int i = 0; i < g_num_tracked; i++)
    if (g_tracked[i].f == f) {
      g_tracked[i] = g_tracked[--g_num_tracked];
      break;
    }
  pthread_mutex_unlock(&g_mu);
  int rc = g_base->close_writable(f); /* always forwarded: it frees the handle */
  return atomic_load(&g_frozen) ? MAYFLY_EIO : rc;
}

static int w_remove_file(mf_env *env, const char *path) {
  if (mutate()) return MAYFLY_EIO;
  const char *name = base_name(path);
  if (ends_with(name, ".blob")) {
    pthread_mutex_lock(&g_mu);
    int i = 0;
    while (i < g_num_removed && strcmp(g_removed[i].name, name) != 0) i++;
    if (i == g_num_removed && g_num_removed < MAX_REMOVED) {
      snprintf(g_removed[i].name, sizeof g_removed[i].name, "%s", name);
      g_removed[i].count = 0;
      g_num_removed++;
    }
    if (i < g_num_removed && ++g_removed[i].count == 2 && !g_double_removed[0])
      snprintf(g_double_removed, sizeof g_double_removed, "%s", name);
    pthread_mutex_unlock(&g_mu);
  }
  return g_base->remove_file(g_base, path);
}

static int w_rename_file(mf_env *env, const char *from, const char *to) {
  if (mutate()) return MAYFLY_EIO;
  return g_base->rename_file(g_base, from, to);
}
static int w_make_dir(mf_env *env, const char *path) {
  if (mutate()) return MAYFLY_EIO;
  return g_base->make_dir(g_base, path);
}
static int w_remove_dir(mf_env *env, const char *path) {
  if (mutate()) return MAYFLY_EIO;
  return g_base->remove_dir(g_base, path);
}
static int w_sync_dir(mf_env *env, const char *path) {
  if (mutate()) return MAYFLY_EIO;
  return g_base->sync_dir(g_base, path);
}
static int w_open_readable(mf_env *env, const char *path, mf_rfile **out) {
  return g_base->open_readable(g_base, path, out);
}
static int w_file_size(mf_env *env, const char *path, uint64_t *size) {
  return g_base->file_size(g_base, path, size);
}
static int w_file_exists(mf_env *env, const char *path) {
  return g_base->file_exists(g_base, path);
}
static int w_is_directory(mf_env *env, const char *path) {
  return g_base->is_directory(g_base, path);
}
static int w_list_dir(mf_env *env, const char *dir, char ***names, size_t *count) {
  return g_base->list_dir(g_base, dir, names, count);
}
static int w_lock_file(mf_env *env, const char *path, mf_lock **out) {
  return g_base->lock_file(g_base, path, out);
}
static void w_unlock_file(mf_env *env, mf_lock *lock) { g_base->unlock_file(g_base, lock); }
static uint64_t w_now_micros(mf_env *env) { return g_base->now_micros(g_base); }
static void w_sleep_micros(mf_env *env, uint64_t micros) { g_base->sleep_micros(g_base, micros); }
static int w_thread_start(mf_env *env, void *(*fn)(void *), void *arg, mf_thread **out) {
  return g_base->thread_start(g_base, fn, arg, out);
}
static int w_thread_join(mf_env *env, mf_thread *t) { return g_base->thread_join(g_base, t); }

static void reset_counters(void) {
  pthread_mutex_lock(&g_mu);
  g_num_removed = 0;
  g_double_removed[0] = '\0';
  pthread_mutex_unlock(&g_mu);
}

static void arm(int mode) {
  pthread_mutex_lock(&g_mu);
  g_arm = mode;
  g_blob_synced = 0;
  g_fired = 0;
  g_fired_blob[0] = '\0';
  pthread_mutex_unlock(&g_mu);
}

static int fired(void) {
  pthread_mutex_lock(&g_mu);
  int f = g_fired;
  pthread_mutex_unlock(&g_mu);
  return f;
}

static void wrap_env_create(void) {
  assert_int_equal(env_mem_create(&g_base), MAYFLY_OK);
  atomic_store(&g_frozen, 0);
  atomic_store(&g_countdown, -1);
  g_num_tracked = 0;
  arm(ARM_NONE);
  reset_counters();
  g_wrap = *g_base; /* reads (pread, close_readable) and later fields are the mem env's */
  mf_env *e = &g_wrap;
  e->new_writable = w_new_writable;
  e->append = w_append;
  e->flush = w_flush;
  e->sync = w_sync;
  e->close_writable = w_close_writable;
  e->open_readable = w_open_readable;
  e->file_size = w_file_size;
  e->file_exists = w_file_exists;
  e->is_directory = w_is_directory;
  e->list_dir = w_list_dir;
  e->remove_file = w_remove_file;
  e->rename_file = w_rename_file;
  e->make_dir = w_make_dir;
  e->remove_dir = w_remove_dir;
  e->sync_dir = w_sync_dir;
  e->lock_file = w_lock_file;
  e->unlock_file = w_unlock_file;
  e->now_micros = w_now_micros;
  e->sleep_micros = w_sleep_micros;
  e->thread_start = w_thread_start;
  e->thread_join = w_thread_join;
  e->destroy = NULL;
}

/* ---- database handles ---- */

static mayfly_db *g_db;

static mayfly_db *open_ok(const struct mayfly_options *o) {
  mayfly_db *db = NULL;
  int rc = mayfly_open(DBNAME, o, &db);
  if (rc != MAYFLY_OK) fail_msg("open: %s (%s)", mayfly_strerror(rc), mayfly_errmsg(NULL));
  g_db = db;
  return db;
}

static void close_ok(mayfly_db *db) {
  g_db = NULL;
  int rc = mayfly_close(db);
  if (rc != MAYFLY_OK) fail_msg("close: %s", mayfly_strerror(rc));
}

static int teardown(void **state) {
  (void)state;
  if (g_db) {
    atomic_store(&g_frozen, 1); /* a failed test's handle must not write on */
    mayfly_close(g_db);
    g_db = NULL;
  }
  atomic_store(&g_frozen, 0);
  atomic_store(&g_countdown, -1);
  arm(ARM_NONE);
  if (g_base) {
    g_base->destroy(g_base);
    g_base = NULL;
  }
  return 0;
}

/* Power cut under an open handle (NULL: none open), then a fresh open. */
static mayfly_db *crash_and_reopen(mayfly_db *db, const struct mayfly_options *o) {
  atomic_store(&g_frozen, 1);
  assert_int_equal(env_mem_crash(g_base), MAYFLY_OK);
  if (db) mayfly_close(db); /* fails: nothing it writes now reaches the "disk" */
  g_db = NULL;
  atomic_store(&g_countdown, -1);
  arm(ARM_NONE);
  reset_counters();
  atomic_store(&g_frozen, 0);
  return open_ok(o);
}

/* The handle hit a fault (no power cut): close it frozen, so it writes nothing more, then
 * open again on everything it wrote. */
static mayfly_db *fault_and_reopen(mayfly_db *db, const struct mayfly_options *o) {
  atomic_store(&g_frozen, 1);
  mayfly_close(db);
  g_db = NULL;
  arm(ARM_NONE);
  reset_counters();
  atomic_store(&g_frozen, 0);
  return open_ok(o);
}

static void ok(mayfly_db *db, int rc, const char *what) {
  if (rc != MAYFLY_OK) fail_msg("%s: %s (%s)", what, mayfly_strerror(rc), mayfly_errmsg(db));
}

static struct mayfly_options gc_heavy_opts(void) {
  struct mayfly_options o;
  options_init_defaults(&o);
  options_set_env(&o, &g_wrap);
  o.write_buffer_size = 64 * 1024;
  o.max_write_buffer_number = 4;
  o.level0_file_num_compaction_trigger = 2;
  o.target_file_size_base = 64 * 1024;
  o.max_bytes_for_level_base = 1u << 20;
  o.min_blob_size = 64;
  o.blob_file_size = 64 * 1024;
  o.enable_blob_garbage_collection = 1;
  o.blob_garbage_collection_age_cutoff = 0.5;
  o.blob_garbage_collection_force_threshold = 0.2;
  return o;
}

static uint64_t test_seed(void) {
  const char *s = getenv("MAYFLY_SEED");
  return s && *s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)clock();
}

static uint64_t rng_next(uint64_t *st) {
  uint64_t z = (*st += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* ---- keys and self-describing values ---- */

static size_t key_of(int i, char *buf) { return (size_t)snprintf(buf, 32, "key%08d", i); }

/* 18-byte header "iiiiiiii:vvvvvvvv:" then bytes determined by (i, ver, len). */
static void value_of(int i, int ver, size_t len, char *buf) {
  char head[40];
  snprintf(head, sizeof head, "%08d:%08d:", i, ver);
  memcpy(buf, head, 18);
  uint64_t s = ((uint64_t)i << 32) ^ (uint64_t)ver ^ ((uint64_t)len << 48);
  for (size_t j = 18; j < len; j++) {
    if ((j - 18) % 8 == 0) s = rng_next(&s);
    buf[j] = (char)(s >> (8 * ((j - 18) % 8)));
  }
}

/* The version a value of key i carries, or -2 when it is damaged or belongs elsewhere. */
static int value_version(int i, const void *data, size_t len) {
  char head[19], buf[1024];
  if (len < 18 || len > sizeof buf) return -2;
  memcpy(head, data, 18);
  head[18] = '\0';
  int ki = -1, ver = -1;
  if (sscanf(head, "%08d:%08d:", &ki, &ver) != 2 || ki != i) return -2;
  value_of(i, ver, len, buf);
  return memcmp(buf, data, len) == 0 ? ver : -2;
}

static int put_ver(mayfly_db *db, int i, int ver, size_t len, unsigned flags) {
  char k[32], v[1024];
  size_t klen = key_of(i, k);
  value_of(i, ver, len, v);
  return mayfly_put(db, k, klen, v, len, flags);
}

static void put_ok(mayfly_db *db, int i, int ver, size_t len, unsigned flags) {
  int rc = put_ver(db, i, ver, len, flags);
  if (rc != MAYFLY_OK) fail_msg("put key %d: %s (%s)", i, mayfly_strerror(rc), mayfly_errmsg(db));
}

/* Version of key i by a get: -1 absent; fails on an error or a damaged value. */
static int get_ver(mayfly_db *db, int i) {
  char k[32];
  size_t klen = key_of(i, k);
  void *v = NULL;
  size_t vlen = 0;
  int rc = mayfly_get(db, NULL, k, klen, &v, &vlen);
  if (rc == MAYFLY_ENOTFOUND) return -1;
  if (rc != MAYFLY_OK) fail_msg("get key %d: %s (%s)", i, mayfly_strerror(rc), mayfly_errmsg(db));
  int ver = value_version(i, v, vlen);
  mayfly_free(v);
  if (ver == -2) fail_msg("get key %d: damaged value of %zu bytes", i, vlen);
  return ver;
}

/* Reads keys [0, n) by get and by a full scan that reads every value; fills out (-1
 * absent). Fails on any read error or disagreement. */
static void read_state(mayfly_db *db, int *out, int n) {
  int present = 0;
  for (int i = 0; i < n; i++) {
    out[i] = get_ver(db, i);
    present += out[i] >= 0;
  }
  mayfly_iter *it = NULL;
  ok(db, mayfly_iter_create(db, NULL, &it), "iter_create");
  char problem[200] = "";
  int seen = 0;
  for (mayfly_iter_seek_to_first(it); mayfly_iter_valid(it) && !problem[0];
       mayfly_iter_next(it)) {
    size_t klen, vlen;
    const char *k = mayfly_iter_key(it, &klen);
    char kb[32];
    int i = -1;
    if (klen < sizeof kb) {
      memcpy(kb, k, klen);
      kb[klen] = '\0';
      sscanf(kb, "key%08d", &i);
    }
    if (i < 0 || i >= n) {
      snprintf(problem, sizeof problem, "scan: stray key of %zu bytes", klen);
      break;
    }
    const void *v = mayfly_iter_value(it, &vlen);
    if (!v) snprintf(problem, sizeof problem, "scan: key %d: value unreadable", i);
    else if (value_version(i, v, vlen) != out[i])
      snprintf(problem, sizeof problem, "scan: key %d has version %d, get said %d", i,
               value_version(i, v, vlen), out[i]);
    seen++;
  }
  int status = mayfly_iter_status(it);
  mayfly_iter_destroy(it);
  if (problem[0]) fail_msg("%s (%s)", problem, status ? mayfly_errmsg(db) : "");
  if (status != MAYFLY_OK) fail_msg("scan ended with %s (%s)", mayfly_strerror(status), mayfly_errmsg(db));
  assert_int_equal(seen, present);
}

/* ---- file checks ---- */

/* Sorted numbers of the .blob files in the directory. */
static int disk_blobs(uint64_t *out, int max) {
  char **names = NULL;
  size_t count = 0;
  assert_int_equal(g_base->list_dir(g_base, DBNAME, &names, &count), MAYFLY_OK);
  int n = 0;
  for (size_t i = 0; i < count; i++)
    if (ends_with(names[i], ".blob") && n < max) out[n++] = strtoull(names[i], NULL, 10);
  env_free_names(names, count);
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && out[j - 1] > out[j]; j--) {
      uint64_t t = out[j];
      out[j] = out[j - 1];
      out[j - 1] = t;
    }
  return n;
}

/* Sorted numbers of the blob files in the current version (mayfly.blob-stats). */
static int version_blobs(mayfly_db *db, uint64_t *out, int max) {
  char *s = NULL;
  ok(db, mayfly_property(db, "mayfly.blob-stats", &s), "blob-stats");
  int n = 0;
  for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
    uint64_t num;
    if (sscanf(line, " #%" SCNu64 ":", &num) == 1 && n < max) out[n++] = num;
  }
  mayfly_free(s);
  return n;
}

/* Prints the directory and the LOG, to explain a failure. */
static void dump_dir_and_log(void) {
  char **names = NULL;
  size_t count = 0;
  if (g_base->list_dir(g_base, DBNAME, &names, &count) == MAYFLY_OK) {
    printf("directory:");
    for (size_t i = 0; i < count; i++) printf(" %s", names[i]);
    printf("\n");
    env_free_names(names, count);
  }
  mf_buf log = MF_BUF_INIT;
  if (env_read_file(g_base, DBNAME "/LOG", &log) == MAYFLY_OK)
    printf("LOG:\n%.*s\n", (int)log.len, log.data);
  mf_buf_free(&log);
}

/* (b), (f): the version's blob files are exactly the directory's. */
static void expect_blob_files_consistent(mayfly_db *db, const char *when) {
  enum { MAX = 1024 };
  static uint64_t d[MAX], v[MAX];
  int nd = disk_blobs(d, MAX), nv = version_blobs(db, v, MAX);
  int i = 0, j = 0;
  int same = nd == nv;
  for (int k = 0; same && k < nd; k++) same = d[k] == v[k];
  if (!same) dump_dir_and_log();
  while (i < nd || j < nv) {
    if (j == nv || (i < nd && d[i] < v[j]))
      fail_msg("%s: %06" PRIu64 ".blob is on disk but the MANIFEST does not list it", when, d[i]);
    if (i == nd || v[j] < d[i])
      fail_msg("%s: the MANIFEST lists blob file %06" PRIu64 " but it is not on disk", when, v[j]);
    i++;
    j++;
  }
}

/* (e) */
static void expect_no_double_remove(const char *when) {
  pthread_mutex_lock(&g_mu);
  char name[64];
  snprintf(name, sizeof name, "%s", g_double_removed);
  pthread_mutex_unlock(&g_mu);
  if (name[0]) fail_msg("%s: remove_file was called twice for %s", when, name);
}

static int removes_of(const char *name) {
  pthread_mutex_lock(&g_mu);
  int c = 0;
  for (int i = 0; i < g_num_removed; i++)
    if (strcmp(g_removed[i].name, name) == 0) c = g_removed[i].count;
  pthread_mutex_unlock(&g_mu);
  return c;
}

static uint64_t stat_counter(mayfly_db *db, const char *label) {
  char *s = NULL;
  ok(db, mayfly_property(db, "mayfly.blob-stats", &s), "blob-stats");
  char *p = strstr(s, label);
  uint64_t x = p ? strtoull(p + strlen(label), NULL, 10) : 0;
  mayfly_free(s);
  return x;
}

/* ---- (a) crashes during GC-heavy work ---- */

enum { CK = 400 };

/* gc_heavy_opts with no reason to compact: a database opened with these does no background
 * work, so the files on disk can be compared with the version exactly (a running job's
 * outputs, or files a reader's version still holds, would differ legitimately). */
static struct mayfly_options quiet_opts(void) {
  struct mayfly_options o = gc_heavy_opts();
  o.level0_file_num_compaction_trigger = 1000;
  o.level0_slowdown_writes_trigger = 5000;
  o.level0_stop_writes_trigger = 10000;
  o.max_bytes_for_level_base = (uint64_t)1 << 40;
  o.blob_garbage_collection_force_threshold = 1.0;
  return o;
}

/* Back to gc_heavy_opts at runtime (the write triggers stay high). */
static void make_heavy(mayfly_db *db) {
  ok(db, mayfly_set_option(db, "level0_file_num_compaction_trigger", "2"), "set trigger");
  ok(db, mayfly_set_option(db, "max_bytes_for_level_base", "1MiB"), "set level base");
  ok(db, mayfly_set_option(db, "blob_garbage_collection_force_threshold", "0.2"), "set force");
}

static void test_crash_during_gc(void **state) {
  (void)state;
  uint64_t seed = test_seed();
  printf("seed=%" PRIu64 " (MAYFLY_SEED to replay)\n", seed);
  uint64_t rng = seed;
  wrap_env_create();
  struct mayfly_options o = gc_heavy_opts(), quiet = quiet_opts();
  static int model[CK], got[CK];
  for (int i = 0; i < CK; i++) model[i] = -1;
  mayfly_db *db = open_ok(&o);
  int ver = 0;
  uint64_t relocated = 0;
  for (int round = 0; round < 6; round++) {
    /* Some rounds freeze at a random mutating call, others run to the end and crash with
     * background work in flight. */
    int countdown = round % 3 == 2 ? -1 : 3000 + (int)(rng_next(&rng) % 15000);
    atomic_store(&g_countdown, countdown);
    int failed_key = -1, failed_ver = 0, acked = 0;
    for (int j = 0; j < 3000; j++) {
      uint64_t x = rng_next(&rng);
      int k = (int)(x % CK);
      int rc;
      int v = ++ver;
      if ((x >> 32) % 100 < 10) {
        char kb[32];
        size_t klen = key_of(k, kb);
        rc = mayfly_delete(db, kb, klen, MAYFLY_SYNC);
        v = -1;
      } else {
        rc = put_ver(db, k, v, 20 + (size_t)((x >> 40) % 500), MAYFLY_SYNC);
      }
      if (rc != MAYFLY_OK) {
        failed_key = k;
        failed_ver = v;
        break;
      }
      model[k] = v;
      acked++;
    }
    relocated += stat_counter(db, "Relocated blobs: ");
    db = crash_and_reopen(db, &quiet);
    expect_blob_files_consistent(db, "after a crash");
    read_state(db, got, CK);
    for (int i = 0; i < CK; i++) {
      if (got[i] == model[i]) continue;
      if (i == failed_key && got[i] == failed_ver) {
        model[i] = failed_ver; /* the failed write happened to reach the disk */
        continue;
      }
      fail_msg("seed %" PRIu64 " round %d: key %d has version %d, the last synced write was %d",
               seed, round, i, got[i], model[i]);
    }
    make_heavy(db);
    printf("round %d: %d synced writes%s\n", round, acked,
           failed_key >= 0 ? ", then a write failed" : "");
  }
  ok(db, mayfly_wait_idle(db), "wait_idle");
  relocated += stat_counter(db, "Relocated blobs: ");
  if (relocated == 0) fail_msg("no blob was relocated: the workload did not exercise GC");
  read_state(db, got, CK);
  /* A flush with no iterator open sweeps what readers kept (the GC settings are quiet by
   * then: quiet_opts is what the last reopen used, made heavy again at runtime; undo). */
  ok(db, mayfly_set_option(db, "level0_file_num_compaction_trigger", "1000"), "set trigger");
  ok(db, mayfly_set_option(db, "max_bytes_for_level_base", "1TiB"), "set level base");
  ok(db, mayfly_set_option(db, "blob_garbage_collection_force_threshold", "1"), "set force");
  put_ok(db, 0, ++ver, 100, 0);
  ok(db, mayfly_flush(db), "flush");
  ok(db, mayfly_wait_idle(db), "wait_idle");
  expect_blob_files_consistent(db, "at the end");
  expect_no_double_remove("at the end");
  close_ok(db);
}

/* ---- (b) stray blob files ---- */

static void write_file(const char *path, const void *data, size_t n) {
  mf_wfile *f = NULL;
  assert_int_equal(g_base->new_writable(g_base, path, &f), MAYFLY_OK);
  assert_int_equal(g_base->append(f, data, n), MAYFLY_OK);
  assert_int_equal(g_base->sync(f, 1), MAYFLY_OK);
  assert_int_equal(g_base->close_writable(f), MAYFLY_OK);
  assert_int_equal(g_base->sync_dir(g_base, DBNAME), MAYFLY_OK);
}

/* A number no file in the directory has, above `above`. */
static uint64_t unused_number(uint64_t above) {
  char **names = NULL;
  size_t count = 0;
  assert_int_equal(g_base->list_dir(g_base, DBNAME, &names, &count), MAYFLY_OK);
  uint64_t n = above + 1;
  for (int clash = 1; clash;) {
    clash = 0;
    for (size_t i = 0; i < count; i++) {
      const char *p = names[i];
      if (strncmp(p, "MANIFEST-", 9) == 0) p += 9;
      if (strtoull(p, NULL, 10) == n) clash = 1;
    }
    if (clash) n++;
  }
  env_free_names(names, count);
  return n;
}

static void test_stray_blob_files_removed_on_open(void **state) {
  (void)state;
  wrap_env_create();
  struct mayfly_options o = gc_heavy_opts();
  mayfly_db *db = open_ok(&o);
  for (int i = 0; i < 200; i++) put_ok(db, i, 1, 300, 0);
  ok(db, mayfly_flush(db), "flush");
  ok(db, mayfly_wait_idle(db), "wait_idle");
  close_ok(db);
  uint64_t real[64];
  int nreal = disk_blobs(real, 64);
  assert_true(nreal >= 1);
  /* A copy of a real blob file under an unused number below the next file number, a
   * junk one, and one far above every number in use. */
  char src[64], path[64];
  snprintf(src, sizeof src, "%s/%06" PRIu64 ".blob", DBNAME, real[0]);
  mf_buf copy = MF_BUF_INIT;
  assert_int_equal(env_read_file(g_base, src, &copy), MAYFLY_OK);
  uint64_t stray[3] = {unused_number(0), 0, 987654};
  snprintf(path, sizeof path, "%s/%06" PRIu64 ".blob", DBNAME, stray[0]);
  write_file(path, copy.data, copy.len);
  stray[1] = unused_number(stray[0]);
  snprintf(path, sizeof path, "%s/%06" PRIu64 ".blob", DBNAME, stray[1]);
  write_file(path, "not a blob file", 15);
  snprintf(path, sizeof path, "%s/%06" PRIu64 ".blob", DBNAME, stray[2]);
  write_file(path, copy.data, copy.len);
  mf_buf_free(&copy);

  db = open_ok(&o);
  for (int s = 0; s < 3; s++) {
    snprintf(path, sizeof path, "%s/%06" PRIu64 ".blob", DBNAME, stray[s]);
    if (g_base->file_exists(g_base, path))
      fail_msg("stray %06" PRIu64 ".blob survived open", stray[s]);
  }
  expect_blob_files_consistent(db, "after open");
  static int got[200];
  read_state(db, got, 200);
  for (int i = 0; i < 200; i++) assert_int_equal(got[i], 1);
  /* The database goes on normally: new files get fresh numbers. */
  for (int i = 0; i < 200; i++) put_ok(db, i, 2, 300, 0);
  ok(db, mayfly_compact_range(db, NULL, 0, NULL, 0), "compact_range");
  ok(db, mayfly_wait_idle(db), "wait_idle");
  read_state(db, got, 200);
  for (int i = 0; i < 200; i++) assert_int_equal(got[i], 2);
  expect_blob_files_consistent(db, "after compaction");
  expect_no_double_remove("after compaction");
  close_ok(db);
}

/* ---- (c) concurrent readers across GC cycles ---- */

enum { RK = 300, WRITER_OPS = 8000 };

typedef struct reader_ctx {
  mayfly_db *db;
  atomic_int *stop;
  uint64_t seed;
  char problem[256];
  long gets;
  atomic_long scans;
} reader_ctx;

static void *reader_main(void *arg) {
  reader_ctx *r = arg;
  uint64_t rng = r->seed;
  while (!atomic_load(r->stop) && !r->problem[0]) {
    uint64_t x = rng_next(&rng);
    if (x % 16 != 0) {
      int i = (int)((x >> 8) % RK);
      char k[32];
      size_t klen = key_of(i, k);
      void *v = NULL;
      size_t vlen = 0;
      int rc = mayfly_get(r->db, NULL, k, klen, &v, &vlen);
      if (rc == MAYFLY_OK && value_version(i, v, vlen) < 0)
        snprintf(r->problem, sizeof r->problem, "get key %d: damaged value", i);
      else if (rc != MAYFLY_OK && rc != MAYFLY_ENOTFOUND)
        snprintf(r->problem, sizeof r->problem, "get key %d: %s (%s)", i, mayfly_strerror(rc),
                 mayfly_errmsg(r->db));
      mayfly_free(v);
      r->gets++;
      continue;
    }
    /* A scan reading every value, pausing now and then so that compactions replace the
     * files under the iterator's version. */
    mayfly_iter *it = NULL;
    int rc = mayfly_iter_create(r->db, NULL, &it);
    if (rc != MAYFLY_OK) {
      snprintf(r->problem, sizeof r->problem, "iter_create: %s", mayfly_strerror(rc));
      break;
    }
    int n = 0;
    for (mayfly_iter_seek_to_first(it); mayfly_iter_valid(it); mayfly_iter_next(it), n++) {
      size_t klen, vlen;
      const char *k = mayfly_iter_key(it, &klen);
      char kb[32];
      int i = -1;
      if (klen < sizeof kb) {
        memcpy(kb, k, klen);
        kb[klen] = '\0';
        sscanf(kb, "key%08d", &i);
      }
      const void *v = mayfly_iter_value(it, &vlen);
      if (!v) {
        snprintf(r->problem, sizeof r->problem, "scan: value of key %d unreadable: %s (%s)", i,
                 mayfly_strerror(mayfly_iter_status(it)), mayfly_errmsg(r->db));
        break;
      }
      if (i < 0 || value_version(i, v, vlen) < 0) {
        snprintf(r->problem, sizeof r->problem, "scan: key %d has a damaged value", i);
        break;
      }
      if (n % 64 == 63) {
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
      }
    }
    if (!r->problem[0] && mayfly_iter_status(it) != MAYFLY_OK)
      snprintf(r->problem, sizeof r->problem, "scan status %s",
               mayfly_strerror(mayfly_iter_status(it)));
    mayfly_iter_destroy(it);
    r->scans++;
  }
  return NULL;
}

static void test_readers_during_gc(void **state) {
  (void)state;
  uint64_t seed = test_seed();
  printf("seed=%" PRIu64 " (MAYFLY_SEED to replay)\n", seed);
  uint64_t rng = seed;
  wrap_env_create();
  struct mayfly_options o = gc_heavy_opts();
  o.blob_garbage_collection_age_cutoff = 1.0; /* every compaction relocates everything */
  mayfly_db *db = open_ok(&o);
  for (int i = 0; i < RK; i++) put_ok(db, i, 0, 200, 0);
  atomic_int stop = 0;
  enum { NR = 2 };
  static reader_ctx readers[NR];
  pthread_t threads[NR];
  for (int t = 0; t < NR; t++) {
    memset(&readers[t], 0, sizeof readers[t]);
    readers[t].db = db;
    readers[t].stop = &stop;
    readers[t].seed = seed + (uint64_t)t + 1;
    assert_int_equal(pthread_create(&threads[t], NULL, reader_main, &readers[t]), 0);
  }
  char problem[256] = "";
  /* At least WRITER_OPS writes, and on until the readers have scanned a while. */
  for (int j = 1; j <= 4 * WRITER_OPS && !problem[0]; j++) {
    if (j > WRITER_OPS && atomic_load(&readers[0].scans) + atomic_load(&readers[1].scans) >= 40)
      break;
    uint64_t x = rng_next(&rng);
    int k = (int)(x % RK), rc;
    if ((x >> 32) % 100 < 5) {
      char kb[32];
      size_t klen = key_of(k, kb);
      rc = mayfly_delete(db, kb, klen, 0);
    } else {
      rc = put_ver(db, k, j, 64 + (size_t)((x >> 40) % 400), 0);
    }
    if (rc != MAYFLY_OK) snprintf(problem, sizeof problem, "write: %s (%s)", mayfly_strerror(rc), mayfly_errmsg(db));
  }
  int idle = mayfly_wait_idle(db);
  atomic_store(&stop, 1);
  long gets = 0, scans = 0;
  for (int t = 0; t < NR; t++) {
    pthread_join(threads[t], NULL);
    if (!problem[0] && readers[t].problem[0]) snprintf(problem, sizeof problem, "%s", readers[t].problem);
    gets += readers[t].gets;
    scans += atomic_load(&readers[t].scans);
  }
  if (problem[0]) fail_msg("seed %" PRIu64 ": %s", seed, problem);
  ok(db, idle, "wait_idle");
  uint64_t relocated = stat_counter(db, "Relocated blobs: ");
  printf("%ld gets, %ld scans, %" PRIu64 " blobs relocated\n", gets, scans, relocated);
  if (relocated < 300) fail_msg("only %" PRIu64 " blobs relocated: too few GC cycles", relocated);
  static int got[RK];
  read_state(db, got, RK);
  /* Files dropped while a reader held their version stay until the next sweep of obsolete
   * files, which a flush makes. */
  put_ok(db, 0, WRITER_OPS * 4 + 1, 100, 0);
  ok(db, mayfly_flush(db), "flush");
  ok(db, mayfly_wait_idle(db), "wait_idle");
  expect_blob_files_consistent(db, "after the run");
  expect_no_double_remove("after the run");
  close_ok(db);
}

/* ---- (d), (f) a job's MANIFEST edit lost or just made ---- */

enum { DK = 200, DV = 300 };

/* Builds: keys [0, DK) version 1 in level 1 (relocated once into a GC output), version 2 of
 * the first half in level 0 with its own blob file. GC with cutoff 1: the next compaction
 * relocates everything. */
static mayfly_db *manifest_setup(struct mayfly_options *o, int *model) {
  wrap_env_create();
  *o = gc_heavy_opts();
  o->write_buffer_size = 32u << 20;
  o->level0_file_num_compaction_trigger = 16;
  o->level0_slowdown_writes_trigger = 32;
  o->level0_stop_writes_trigger = 64;
  o->max_mem_compaction_level = 0;
  o->blob_file_size = 256u << 20;
  o->blob_garbage_collection_age_cutoff = 1.0;
  o->blob_garbage_collection_force_threshold = 1.0;
  mayfly_db *db = open_ok(o);
  for (int i = 0; i < DK; i++) {
    put_ok(db, i, 1, DV, MAYFLY_SYNC);
    model[i] = 1;
  }
  ok(db, mayfly_flush(db), "flush");
  ok(db, mayfly_compact_range(db, NULL, 0, NULL, 0), "compact_range");
  for (int i = 0; i < DK / 2; i++) {
    put_ok(db, i, 2, DV, MAYFLY_SYNC);
    model[i] = 2;
  }
  ok(db, mayfly_flush(db), "flush");
  ok(db, mayfly_wait_idle(db), "wait_idle");
  return db;
}

static const char *const mode_names[] = {"", "MANIFEST append fails", "MANIFEST sync fails",
                                         "crash right after the MANIFEST sync", ""};

static void manifest_case(int job_is_compaction, int mode, int power_cut) {
  struct mayfly_options o;
  static int model[DK], got[DK];
  mayfly_db *db = manifest_setup(&o, model);
  arm(mode);
  int rc;
  if (job_is_compaction) {
    rc = mayfly_compact_range(db, NULL, 0, NULL, 0);
  } else {
    for (int i = DK / 4; i < DK / 2; i++) {
      rc = put_ver(db, i, 3, DV, MAYFLY_SYNC);
      if (rc != MAYFLY_OK) fail_msg("put before the flush: %s", mayfly_strerror(rc));
      model[i] = 3;
    }
    rc = mayfly_flush(db);
  }
  const char *job = job_is_compaction ? "GC compaction" : "flush";
  if (!fired())
    fail_msg("%s, %s: the fault never fired (no blob file synced before a MANIFEST write?)",
             job, mode_names[mode]);
  if (mode != ARM_FREEZE_AFTER_MANIFEST_SYNC && rc == MAYFLY_OK)
    fail_msg("%s, %s: the job reported success", job, mode_names[mode]);
  db = power_cut ? crash_and_reopen(db, &o) : fault_and_reopen(db, &o);
  char when[160];
  snprintf(when, sizeof when, "%s, %s, %s, after reopen", job, mode_names[mode],
           power_cut ? "power cut" : "no power cut");
  expect_blob_files_consistent(db, when);
  read_state(db, got, DK);
  for (int i = 0; i < DK; i++)
    if (got[i] != model[i]) fail_msg("%s: key %d has version %d, expected %d", when, i, got[i], model[i]);
  /* The database works on: the lost job redone, and everything still reads back. */
  ok(db, mayfly_compact_range(db, NULL, 0, NULL, 0), "compact_range after reopen");
  ok(db, mayfly_wait_idle(db), "wait_idle after reopen");
  read_state(db, got, DK);
  for (int i = 0; i < DK; i++) assert_int_equal(got[i], model[i]);
  expect_blob_files_consistent(db, "after the next compaction");
  expect_no_double_remove(when);
  close_ok(db);
  g_base->destroy(g_base);
  g_base = NULL;
}

static void test_manifest_edit_lost_or_just_made(void **state) {
  (void)state;
  for (int job = 0; job < 2; job++)
    for (int mode = ARM_FAIL_MANIFEST_APPEND; mode <= ARM_FREEZE_AFTER_MANIFEST_SYNC; mode++)
      for (int power_cut = 0; power_cut < 2; power_cut++) manifest_case(job, mode, power_cut);
}

/* Recovery separates the values it replays from the WAL into blob files; when open fails
 * before (or right after) the MANIFEST records them, the next open replays again and
 * removes the first attempt's files. */
static void test_crash_during_recovery(void **state) {
  (void)state;
  for (int mode = ARM_FAIL_MANIFEST_APPEND; mode <= ARM_FREEZE_AFTER_MANIFEST_SYNC; mode++) {
    wrap_env_create();
    struct mayfly_options o = gc_heavy_opts();
    o.write_buffer_size = 32u << 20; /* everything stays in the WAL */
    static int got[DK];
    mayfly_db *db = open_ok(&o);
    for (int i = 0; i < DK; i++) put_ok(db, i, 5, DV, MAYFLY_SYNC);
    atomic_store(&g_frozen, 1);
    assert_int_equal(env_mem_crash(g_base), MAYFLY_OK);
    mayfly_close(db);
    g_db = NULL;
    atomic_store(&g_frozen, 0);
    arm(mode);
    db = NULL;
    int rc = mayfly_open(DBNAME, &o, &db);
    if (!fired()) fail_msg("%s: recovery wrote no blob file before the MANIFEST", mode_names[mode]);
    if (rc == MAYFLY_OK) {
      /* Opened although frozen after the sync: possible only if nothing else needed writing. */
      g_db = db;
      db = crash_and_reopen(db, &o);
    } else {
      db = crash_and_reopen(NULL, &o);
    }
    char when[120];
    snprintf(when, sizeof when, "recovery, %s, after reopen", mode_names[mode]);
    expect_blob_files_consistent(db, when);
    read_state(db, got, DK);
    for (int i = 0; i < DK; i++)
      if (got[i] != 5) fail_msg("%s: key %d has version %d, expected 5", when, i, got[i]);
    expect_no_double_remove(when);
    close_ok(db);
    g_base->destroy(g_base);
    g_base = NULL;
  }
}

/* ---- (e) a failed job removes each of its blob files once ---- */

static void test_failed_job_removes_blob_once(void **state) {
  (void)state;
  for (int job_is_compaction = 0; job_is_compaction < 2; job_is_compaction++) {
    struct mayfly_options o;
    static int model[DK], got[DK];
    mayfly_db *db = manifest_setup(&o, model);
    reset_counters();
    arm(ARM_FAIL_BLOB_SYNC);
    int rc;
    if (job_is_compaction) {
      rc = mayfly_compact_range(db, NULL, 0, NULL, 0);
    } else {
      for (int i = 0; i < 10; i++) {
        put_ok(db, i, 4, DV, MAYFLY_SYNC);
        model[i] = 4;
      }
      rc = mayfly_flush(db);
    }
    const char *job = job_is_compaction ? "GC compaction" : "flush";
    if (!fired()) fail_msg("%s: no blob file was synced", job);
    if (rc == MAYFLY_OK) fail_msg("%s: succeeded although its blob file's sync failed", job);
    char name[64];
    pthread_mutex_lock(&g_mu);
    snprintf(name, sizeof name, "%s", g_fired_blob);
    pthread_mutex_unlock(&g_mu);
    char path[80];
    snprintf(path, sizeof path, "%s/%s", DBNAME, name);
    int exists = g_base->file_exists(g_base, path), removes = removes_of(name);
    if (exists) fail_msg("%s: the failed job left %s behind", job, name);
    if (removes != 1)
      fail_msg("%s: the failed job's blob file %s was removed %d times (remove_file calls)", job,
               name, removes);
    expect_no_double_remove(job);
    db = fault_and_reopen(db, &o);
    read_state(db, got, DK);
    for (int i = 0; i < DK; i++) assert_int_equal(got[i], model[i]);
    expect_blob_files_consistent(db, "after the failed job");
    close_ok(db);
    g_base->destroy(g_base);
    g_base = NULL;
  }
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_stray_blob_files_removed_on_open, teardown),
      cmocka_unit_test_teardown(test_manifest_edit_lost_or_just_made, teardown),
      cmocka_unit_test_teardown(test_crash_during_recovery, teardown),
      cmocka_unit_test_teardown(test_failed_job_removes_blob_once, teardown),
      cmocka_unit_test_teardown(test_crash_during_gc, teardown),
      cmocka_unit_test_teardown(test_readers_during_gc, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
