/* Crash promises, on the in-memory env: a machine crash (env_mem_crash: unsynced bytes and
 * unsynced directory changes are lost) never loses a write acknowledged with MAYFLY_SYNC,
 * and whatever survives is a prefix of the order in which writes were acknowledged.
 *
 * How a crash is simulated with the database still open. env_mem keeps locks across a crash
 * (the holder must unlock), and there is no API to copy an env's durable state into a fresh
 * one, so the database runs on a thin wrapper around the mem env that can be frozen: while
 * frozen, every call that would change the file system (create, append, sync, rename,
 * remove, mkdir, directory sync) fails with MAYFLY_EIO. To crash we freeze, call
 * env_mem_crash on the mem env, then close the old handle (its writes all fail, so it only
 * releases memory and its lock), thaw, and open a new handle on the same env. The old handle
 * therefore dies at an arbitrary point of its background work, exactly as in a power cut.
 *
 * The prefix check. Each round draws random puts and deletes over a small key space, some
 * with MAYFLY_SYNC, and records them in acknowledgement order (one writer thread, so the
 * order is the commit order). After the crash the recovered state must equal the state after
 * some prefix of the round's operations that includes the last acknowledged SYNC write.
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
#include "test_db_util.h"

/* ---- checks ---- */

/* Reads the versions of keys [0, n) into out (-1 absent), and checks that a scan agrees. */
static void read_state(mayfly_db *db, int *out, int n) {
  int present = 0;
  for (int i = 0; i < n; i++) {
    out[i] = get_ver(db, NULL, i);
    if (out[i] >= 0) present++;
  }
  mayfly_iter *it = NULL;
  assert_int_equal(mayfly_iter_create(db, NULL, &it), MAYFLY_OK);
  /* Problems are collected and reported after the iterator is gone: a failing test's
   * teardown closes the database, which must hold no iterator. */
  char problem[256] = "";
  int seen = 0;
  for (mayfly_iter_seek_to_first(it); mayfly_iter_valid(it) && !problem[0];
       mayfly_iter_next(it)) {
    size_t klen, vlen;
    const char *k = mayfly_iter_key(it, &klen);
    const void *v = mayfly_iter_value(it, &vlen);
    char kb[32];
    int i = -1;
    if (klen >= sizeof kb) {
      snprintf(problem, sizeof problem, "scan: key of %zu bytes", klen);
      break;
    }
    memcpy(kb, k, klen);
    kb[klen] = '\0';
    if (sscanf(kb, "key%08d", &i) != 1 || i < 0 || i >= n)
      snprintf(problem, sizeof problem, "scan: stray key '%s'", kb);
    else if (vlen < 18)
      snprintf(problem, sizeof problem, "scan: key %d: value of %zu bytes", i, vlen);
    else if (value_version(i, v, vlen) != out[i])
      snprintf(problem, sizeof problem, "scan: key %d has version %d, get said %d", i,
               value_version(i, v, vlen), out[i]);
    seen++;
  }
  int status = mayfly_iter_status(it);
  mayfly_iter_destroy(it);
  if (problem[0]) fail_msg("%s", problem);
  if (status != MAYFLY_OK) fail_msg("scan ended with %s", mayfly_strerror(status));
  assert_int_equal(seen, present);
}

/* ---- the freezable env ---- */

static mf_env *g_base;
static atomic_int g_frozen;

/* While g_hold_tables is set, creating a .sst waits: flushes stall, so data stays in WALs. */
static pthread_mutex_t g_hold_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_hold_cv = PTHREAD_COND_INITIALIZER;
static int g_hold_tables;

static void hold_tables(int on) {
  pthread_mutex_lock(&g_hold_mu);
  g_hold_tables = on;
  pthread_cond_broadcast(&g_hold_cv);
  pthread_mutex_unlock(&g_hold_mu);
}

#define FROZEN_GUARD()                              \
  do {                                              \
    if (atomic_load(&g_frozen)) return MAYFLY_EIO;  \
  } while (0)

/* While armed, the first sync of a WAL made by g_fail_thread fails with MAYFLY_EIO (without
 * syncing): the sync of the old WAL at a memtable switch. WAL handles are recognized by the
 * handles new_writable returned for .log paths (a few at a time; the slots are reused). */
static pthread_mutex_t g_wal_mu = PTHREAD_MUTEX_INITIALIZER;
static mf_wfile *g_wal_handles[64];
static int g_fail_wal_sync;
static pthread_t g_fail_thread;

static int fz_new_writable(mf_env *env, const char *path, mf_wfile **out) {
  size_t l = strlen(path);
  if (l > 4 && strcmp(path + l - 4, ".sst") == 0) {
    pthread_mutex_lock(&g_hold_mu);
    while (g_hold_tables) pthread_cond_wait(&g_hold_cv, &g_hold_mu);
    pthread_mutex_unlock(&g_hold_mu);
  }
  FROZEN_GUARD();
  int rc = g_base->new_writable(g_base, path, out);
  if (rc == MAYFLY_OK && l > 4 && strcmp(path + l - 4, ".log") == 0) {
    pthread_mutex_lock(&g_wal_mu);
    static unsigned next;
    g_wal_handles[next++ % 64] = *out;
    pthread_mutex_unlock(&g_wal_mu);
  }
  return rc;
}

/* REQUIRES: g_wal_mu held. */
static int is_wal_handle(mf_wfile *f) {
  int found = 0;
  for (int i = 0; i < 64 && !found; i++) found = g_wal_handles[i] == f;
  return found;
}
static int fz_append(mf_wfile *f, const void *data, size_t n) {
  FROZEN_GUARD();
  return g_base->append(f, data, n);
}
static int fz_flush(mf_wfile *f) {
  FROZEN_GUARD();
  return g_base->flush(f);
}
static int fz_sync(mf_wfile *f, int full) {
  FROZEN_GUARD();
  pthread_mutex_lock(&g_wal_mu);
  int fail = g_fail_wal_sync && pthread_equal(pthread_self(), g_fail_thread) && is_wal_handle(f);
  if (fail) g_fail_wal_sync = 0;
  pthread_mutex_unlock(&g_wal_mu);
  return fail ? MAYFLY_EIO /* injected */ : g_base->sync(f, full);
}
/* Always forwarded: it frees the handle, and mem env appends never sit in a buffer. */
static int fz_close_writable(mf_wfile *f) {
  int rc = g_base->close_writable(f);
  return atomic_load(&g_frozen) ? MAYFLY_EIO : rc;
}
static int fz_open_readable(mf_env *env, const char *path, mf_rfile **out) {
  return g_base->open_readable(g_base, path, out);
}
static int fz_file_size(mf_env *env, const char *path, uint64_t *size) {
  return g_base->file_size(g_base, path, size);
}
static int fz_file_exists(mf_env *env, const char *path) {
  return g_base->file_exists(g_base, path);
}
static int fz_is_directory(mf_env *env, const char *path) {
  return g_base->is_directory(g_base, path);
}
static int fz_list_dir(mf_env *env, const char *dir, char ***names, size_t *count) {
  return g_base->list_dir(g_base, dir, names, count);
}
static int fz_remove_file(mf_env *env, const char *path) {
  FROZEN_GUARD();
  return g_base->remove_file(g_base, path);
}
/* When set, a rename onto CURRENT is written back by the "OS" at once (env_mem_writeback),
 * and the power fails right after: nothing the engine does next reaches the disk. */
static atomic_int g_writeback_current;

static int fz_rename_file(mf_env *env, const char *from, const char *to) {
  FROZEN_GUARD();
  int rc = g_base->rename_file(g_base, from, to);
  size_t l = strlen(to);
  if (rc == MAYFLY_OK && l >= 8 && strcmp(to + l - 8, "/CURRENT") == 0 &&
      atomic_exchange(&g_writeback_current, 0)) {
    assert_int_equal(env_mem_writeback(g_base, to), MAYFLY_OK);
    atomic_store(&g_frozen, 1);
  }
  return rc;
}
static int fz_make_dir(mf_env *env, const char *path) {
  FROZEN_GUARD();
  return g_base->make_dir(g_base, path);
}
static int fz_remove_dir(mf_env *env, const char *path) {
  FROZEN_GUARD();
  return g_base->remove_dir(g_base, path);
}
static char g_synced_dirs[4096]; /* the directories synced, each followed by ';' */

static int g_fail_dir_sync; /* fail g_fail_thread's next directory sync, once */

static int fz_sync_dir(mf_env *env, const char *path) {
  FROZEN_GUARD();
  pthread_mutex_lock(&g_wal_mu);
  size_t used = strlen(g_synced_dirs);
  if (used + strlen(path) + 2 < sizeof g_synced_dirs)
    snprintf(g_synced_dirs + used, sizeof g_synced_dirs - used, "%s;", path);
  int fail = g_fail_dir_sync && pthread_equal(pthread_self(), g_fail_thread);
  if (fail) g_fail_dir_sync = 0;
  pthread_mutex_unlock(&g_wal_mu);
  return fail ? MAYFLY_EIO /* injected */ : g_base->sync_dir(g_base, path);
}
static int fz_lock_file(mf_env *env, const char *path, mf_lock **out) {
  return g_base->lock_file(g_base, path, out);
}
static void fz_unlock_file(mf_env *env, mf_lock *lock) { g_base->unlock_file(g_base, lock); }
static uint64_t fz_now_micros(mf_env *env) { return g_base->now_micros(g_base); }
static void fz_sleep_micros(mf_env *env, uint64_t micros) { g_base->sleep_micros(g_base, micros); }
static int fz_thread_start(mf_env *env, void *(*fn)(void *), void *arg, mf_thread **out) {
  return g_base->thread_start(g_base, fn, arg, out);
}
static int fz_thread_join(mf_env *env, mf_thread *t) { return g_base->thread_join(g_base, t); }

static struct mf_env g_freezable;

/* Makes a fresh mem env and returns the freezable wrapper around it. */
static mf_env *crash_env_create(void) {
  assert_int_equal(env_mem_create(&g_base), MAYFLY_OK);
  atomic_store(&g_frozen, 0);
  /* Start from the base so the reads (pread, close_readable) and any later fields are the
   * mem env's own; override what must be guarded. */
  g_freezable = *g_base;
  mf_env *e = &g_freezable;
  e->new_writable = fz_new_writable;
  e->append = fz_append;
  e->flush = fz_flush;
  e->sync = fz_sync;
  e->close_writable = fz_close_writable;
  e->open_readable = fz_open_readable;
  e->file_size = fz_file_size;
  e->file_exists = fz_file_exists;
  e->is_directory = fz_is_directory;
  e->list_dir = fz_list_dir;
  e->remove_file = fz_remove_file;
  e->rename_file = fz_rename_file;
  e->make_dir = fz_make_dir;
  e->remove_dir = fz_remove_dir;
  e->sync_dir = fz_sync_dir;
  e->lock_file = fz_lock_file;
  e->unlock_file = fz_unlock_file;
  e->now_micros = fz_now_micros;
  e->sleep_micros = fz_sleep_micros;
  e->thread_start = fz_thread_start;
  e->thread_join = fz_thread_join;
  e->destroy = NULL;
  return e;
}


/* The handle a test has open, so the teardown can close it when the test fails midway
 * (its background thread must not outlive the env it runs on). */
static mayfly_db *g_db;

static mayfly_db *open_current(const struct mayfly_options *o) {
  g_db = open_ok(o);
  return g_db;
}

static void close_current(mayfly_db *db) {
  assert_ptr_equal(db, g_db);
  g_db = NULL;
  mayfly_close(db);
}

static int teardown(void **state) {
  (void)state;
  hold_tables(0);
  if (g_db) {
    atomic_store(&g_frozen, 1); /* a failed test's handle must not write into the next env */
    mayfly_close(g_db);
    g_db = NULL;
    atomic_store(&g_frozen, 0);
  }
  if (g_base) {
    g_base->destroy(g_base);
    g_base = NULL;
  }
  return 0;
}

/* Power cut under an open handle (see the file comment), then a fresh open. NULL db: crash
 * with no database open. */
static mayfly_db *crash_and_reopen(mayfly_db *db, const struct mayfly_options *o) {
  atomic_store(&g_frozen, 1);
  assert_int_equal(env_mem_crash(g_base), MAYFLY_OK);
  hold_tables(0); /* a held flush may go on now: it fails */
  if (db) mayfly_close(db); /* fails: nothing it writes now reaches the "disk" */
  g_db = NULL;
  atomic_store(&g_frozen, 0);
  return open_current(o);
}

static struct mayfly_options crash_opts(uint64_t write_buffer_size) {
  struct mayfly_options o;
  options_init_defaults(&o);
  options_set_env(&o, &g_freezable);
  o.write_buffer_size = write_buffer_size;
  o.level0_file_num_compaction_trigger = 2;
  o.max_write_buffer_number = 4;
  return o;
}

static uint64_t test_seed(void) {
  const char *s = getenv("MAYFLY_SEED");
  uint64_t seed = s && *s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)clock();
  return seed;
}

static uint64_t rng_next(uint64_t *st) {
  uint64_t z = (*st += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* ---- tests ---- */

/* Every MAYFLY_SYNC write survives, across memtable switches, flushes and merges, when the
 * crash comes while background work may be running. */
static void test_sync_writes_survive_crash(void **state) {
  (void)state;
  crash_env_create();
  struct mayfly_options o = crash_opts(64 * 1024);
  enum { N = 3000 };
  static int expect[N], got[N];
  mayfly_db *db = open_current(&o);
  for (int i = 0; i < N; i++) {
    put_ver(db, i, 1, 150, MAYFLY_SYNC);
    expect[i] = 1;
  }
  db = crash_and_reopen(db, &o);
  read_state(db, got, N);
  for (int i = 0; i < N; i++)
    if (got[i] != expect[i])
      fail_msg("key %d: acknowledged MAYFLY_SYNC write lost in a crash (found version %d)", i,
               got[i]);
  close_current(db);
}

/* The same after background work finished: the tables and MANIFEST edits written by flushes
 * and merges must themselves be durable. */
static void test_sync_writes_survive_crash_after_idle(void **state) {
  (void)state;
  crash_env_create();
  struct mayfly_options o = crash_opts(64 * 1024);
  enum { N = 3000 };
  static int got[N];
  mayfly_db *db = open_current(&o);
  for (int i = 0; i < N; i++) put_ver(db, i, 2, 150, MAYFLY_SYNC);
  assert_int_equal(mayfly_wait_idle(db), MAYFLY_OK);
  db = crash_and_reopen(db, &o);
  read_state(db, got, N);
  for (int i = 0; i < N; i++)
    if (got[i] != 2) fail_msg("key %d: synced and flushed write lost in a crash (found %d)", i, got[i]);
  close_current(db);
}

/* A clean close followed by a power cut loses nothing. */
static void test_clean_close_then_crash(void **state) {
  (void)state;
  crash_env_create();
  struct mayfly_options o = crash_opts(64 * 1024);
  enum { N = 2500 };
  static int got[N];
  mayfly_db *db = open_current(&o);
  for (int i = 0; i < N; i++) put_ver(db, i, 3, 120, 0);
  g_db = NULL;
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  db = crash_and_reopen(NULL, &o);
  read_state(db, got, N);
  for (int i = 0; i < N; i++)
    if (got[i] != 3) fail_msg("key %d: lost after a clean close and a crash (found %d)", i, got[i]);
  close_current(db);
}

/* An empty batch written with MAYFLY_SYNC makes the writes before it durable, as a sync write
 * of one record would. */
static void test_empty_sync_batch(void **state) {
  (void)state;
  crash_env_create();
  struct mayfly_options o = crash_opts(1 << 20);
  mayfly_db *db = open_current(&o);
  for (int i = 0; i < 50; i++) put_ver(db, i, 1, 100, 0);
  mayfly_batch *b = NULL;
  assert_int_equal(mayfly_batch_create(&b), MAYFLY_OK);
  assert_int_equal(mayfly_write(db, b, MAYFLY_SYNC), MAYFLY_OK);
  assert_int_equal(mayfly_write(db, b, MAYFLY_SYNC), MAYFLY_OK); /* nothing new to sync */
  mayfly_batch_destroy(b);
  db = crash_and_reopen(db, &o);
  for (int i = 0; i < 50; i++)
    if (get_ver(db, NULL, i) != 1)
      fail_msg("key %d, written before an empty sync batch, is lost", i);
  close_current(db);
}

/* Every open starts a new MANIFEST and points CURRENT at it. The OS may write the CURRENT
 * rename back before anything else: then the new MANIFEST's directory entry must already be
 * durable, or a power cut leaves CURRENT naming a file that is gone and the database cannot
 * open. Checked for the creating open and for a reopen. */
static void test_current_written_back_first(void **state) {
  (void)state;
  crash_env_create();
  struct mayfly_options o = crash_opts(1 << 20);
  for (int round = 0; round < 2; round++) {
    atomic_store(&g_writeback_current, 1);
    mayfly_db *db = NULL;
    mayfly_open(DBNAME, &o, &db); /* frozen right after CURRENT's rename: it may fail */
    assert_int_equal(atomic_load(&g_writeback_current), 0);
    db = crash_and_reopen(db, &o);
    if (round == 1 && get_ver(db, NULL, 7) != 1)
      fail_msg("key 7, written with MAYFLY_SYNC, is lost");
    put_ver(db, 7, 1, 100, MAYFLY_SYNC);
    close_current(db);
  }
}

/* Creating a database makes its directory, and syncs the directory holding it: otherwise a
 * power cut could take the new directory, and every synced write in it, away. (The mem env
 * keeps directories across a crash, so this checks the call.) */
static void test_new_database_dir_synced(void **state) {
  (void)state;
  crash_env_create();
  assert_int_equal(g_base->make_dir(g_base, "/data"), MAYFLY_OK);
  g_synced_dirs[0] = '\0';
  struct mayfly_options o = crash_opts(1 << 20);
  mayfly_db *db = NULL;
  assert_int_equal(mayfly_open("/data/db", &o, &db), MAYFLY_OK);
  g_db = db;
  if (!strstr(g_synced_dirs, "/data;")) fail_msg("directories synced: %s", g_synced_dirs);
  close_current(db);
  g_synced_dirs[0] = '\0';
  assert_int_equal(mayfly_open("/data/db", &o, &db), MAYFLY_OK); /* exists: nothing to sync */
  g_db = db;
  assert_null(strstr(g_synced_dirs, "/data;"));
  close_current(db);
  /* A parent that cannot be synced (say, writable but not readable) does not stop the
   * creation; the info LOG says so. */
  pthread_mutex_lock(&g_wal_mu);
  g_fail_thread = pthread_self();
  g_fail_dir_sync = 1;
  pthread_mutex_unlock(&g_wal_mu);
  assert_int_equal(mayfly_open("/data/db2", &o, &db), MAYFLY_OK);
  g_db = db;
  pthread_mutex_lock(&g_wal_mu);
  int fired = !g_fail_dir_sync;
  g_fail_dir_sync = 0;
  pthread_mutex_unlock(&g_wal_mu);
  assert_true(fired);
  put_ver(db, 1, 1, 100, MAYFLY_SYNC);
  close_current(db);
  mf_buf log = MF_BUF_INIT;
  assert_int_equal(env_read_file(g_base, "/data/db2/LOG", &log), MAYFLY_OK);
  assert_int_equal(mf_buf_append(&log, "", 1), MAYFLY_OK);
  assert_non_null(strstr(log.data, "could not sync the directory holding the new database"));
  mf_buf_free(&log);
}

/* mayfly_flush "returns when durable": unsynced writes followed by a flush survive a crash,
 * and so does the result of a full compaction. */
static void test_flush_is_durable(void **state) {
  (void)state;
  crash_env_create();
  struct mayfly_options o = crash_opts(64 << 20);
  enum { N = 2000 };
  mayfly_db *db = open_current(&o);
  for (int i = 0; i < N; i++) put_ver(db, i, 6, 100, 0);
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  db = crash_and_reopen(db, &o);
  for (int i = 0; i < N; i++)
    if (get_ver(db, NULL, i) != 6) fail_msg("key %d: flushed write lost in a crash", i);
  for (int i = 0; i < N; i += 2) put_ver(db, i, 7, 100, 0);
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  assert_int_equal(mayfly_compact_range(db, NULL, 0, NULL, 0), MAYFLY_OK);
  db = crash_and_reopen(db, &o);
  for (int i = 0; i < N; i++)
    if (get_ver(db, NULL, i) != (i % 2 ? 6 : 7)) fail_msg("key %d: lost after compaction and a crash", i);
  close_current(db);
}

/* A single memtable (no flush at all): synced writes survive and so does the first WAL. */
static void test_sync_in_first_wal(void **state) {
  (void)state;
  crash_env_create();
  struct mayfly_options o = crash_opts(64 << 20);
  mayfly_db *db = open_current(&o);
  for (int i = 0; i < 100; i++) put_ver(db, i, 4, 60, i == 99 ? MAYFLY_SYNC : 0);
  db = crash_and_reopen(db, &o);
  for (int i = 0; i < 100; i++) assert_int_equal(get_ver(db, NULL, i), 4);
  /* and again on the handle made by recovery */
  for (int i = 0; i < 100; i++) put_ver(db, i, 5, 60, i == 99 ? MAYFLY_SYNC : 0);
  db = crash_and_reopen(db, &o);
  for (int i = 0; i < 100; i++) assert_int_equal(get_ver(db, NULL, i), 5);
  close_current(db);
}

static int count_wals(void) {
  char **names = NULL;
  size_t count = 0;
  assert_int_equal(g_base->list_dir(g_base, DBNAME, &names, &count), MAYFLY_OK);
  int n = 0;
  for (size_t i = 0; i < count; i++) {
    size_t l = strlen(names[i]);
    n += l > 4 && strcmp(names[i] + l - 4, ".log") == 0;
  }
  env_free_names(names, count);
  return n;
}

/* Unsynced writes fill a memtable, which cannot be flushed (table creation held), so they
 * live only in an older WAL; then one MAYFLY_SYNC write goes to the new WAL. Once that sync
 * write is acknowledged, everything acknowledged before it must survive a crash too:
 * otherwise the recovered state (the synced write without the earlier ones) is no prefix
 * of the write order. */
static void test_sync_covers_earlier_wals(void **state) {
  (void)state;
  crash_env_create();
  struct mayfly_options o = crash_opts(64 * 1024);
  o.max_write_buffer_number = 8;
  enum { N = 1200 };
  hold_tables(1);
  mayfly_db *db = open_current(&o);
  for (int i = 0; i < N; i++) put_ver(db, i, 1, 150, 0);
  assert_true(count_wals() >= 2);
  put_ver(db, N, 1, 150, MAYFLY_SYNC);
  db = crash_and_reopen(db, &o);
  if (get_ver(db, NULL, N) != 1) fail_msg("the acknowledged MAYFLY_SYNC write is lost");
  int lost = 0, first_lost = -1;
  for (int i = 0; i < N; i++) {
    if (get_ver(db, NULL, i) != 1) {
      if (first_lost < 0) first_lost = i;
      lost++;
    }
  }
  if (lost)
    fail_msg("%d writes acknowledged before a surviving MAYFLY_SYNC write were lost (the "
             "first: key %d): they were in an older WAL that was never synced", lost, first_lost);
  close_current(db);
}

/* The path of the newest WAL into path (names have same-width numbers, so the greatest
 * name is the newest). */
static void newest_wal_path(char *path, size_t size) {
  char **names = NULL;
  size_t count = 0;
  assert_int_equal(g_base->list_dir(g_base, DBNAME, &names, &count), MAYFLY_OK);
  const char *newest = NULL;
  for (size_t i = 0; i < count; i++) {
    size_t l = strlen(names[i]);
    if (l > 4 && strcmp(names[i] + l - 4, ".log") == 0 && (!newest || strcmp(names[i], newest) > 0))
      newest = names[i];
  }
  assert_non_null(newest);
  snprintf(path, size, "%s/%s", DBNAME, newest);
  env_free_names(names, count);
}

/* The newest WAL's bytes and name, as if the OS had written them back on its own. */
static void write_back_newest_wal(void) {
  char path[256];
  newest_wal_path(path, sizeof path);
  assert_int_equal(env_mem_writeback(g_base, path), MAYFLY_OK);
}

/* The OS may write a WAL back on its own and lose unsynced bytes of older WALs in a crash
 * (pages go to disk in any order). Writes in the newest WAL must then not come back without
 * the earlier ones: that is why a memtable switch syncs the WAL it leaves. */
static void test_newer_wal_survives_older_does_not(void **state) {
  (void)state;
  crash_env_create();
  struct mayfly_options o = crash_opts(64 * 1024);
  o.max_write_buffer_number = 8;
  enum { SYNCED = 200, N = 1200 };
  hold_tables(1);
  mayfly_db *db = open_current(&o);
  for (int i = 0; i < SYNCED; i++) put_ver(db, i, 1, 150, i == SYNCED - 1 ? MAYFLY_SYNC : 0);
  for (int i = SYNCED; i < N; i++) put_ver(db, i, 1, 150, 0);
  assert_true(count_wals() >= 3);
  write_back_newest_wal();
  db = crash_and_reopen(db, &o);
  int first_missing = -1, found_after = -1;
  for (int i = 0; i < N; i++) {
    int v = get_ver(db, NULL, i);
    if (v != 1 && first_missing < 0) first_missing = i;
    if (v == 1 && first_missing >= 0 && found_after < 0) found_after = i;
  }
  if (first_missing >= 0 && first_missing < SYNCED)
    fail_msg("key %d, written before an acknowledged MAYFLY_SYNC write, is lost", first_missing);
  if (found_after >= 0)
    fail_msg("key %d is back but key %d, written before it, is not: recovery replayed the "
             "newest WAL although an older one lost writes", found_after, first_missing);
  close_current(db);
}

/* A memtable filled by MAYFLY_NO_WAL writes leaves a WAL with no records, which nothing
 * syncs; the MAYFLY_SYNC write that follows in the next WAL must survive a crash that
 * empties that earlier WAL. */
static void test_sync_after_wal_without_records(void **state) {
  (void)state;
  crash_env_create();
  struct mayfly_options o = crash_opts(64 * 1024);
  hold_tables(1);
  mayfly_db *db = open_current(&o);
  int wals = count_wals();
  for (int i = 0; count_wals() == wals; i++) {
    assert_true(i < 100000);
    put_ver(db, i, 1, 150, MAYFLY_NO_WAL);
  }
  put_ver(db, 100000, 7, 150, MAYFLY_SYNC);
  db = crash_and_reopen(db, &o);
  if (get_ver(db, NULL, 100000) != 7) fail_msg("the acknowledged MAYFLY_SYNC write is lost");
  close_current(db);
}

/* An OS crash can lose the first page of the newest WAL (never synced) and keep later ones:
 * its header is then damaged. point_in_time recovery must open, without that WAL's writes
 * and with everything before it; absolute recovery refuses. */
static void test_newest_wal_header_lost(void **state) {
  (void)state;
  crash_env_create();
  struct mayfly_options o = crash_opts(1 << 20);
  mayfly_db *db = open_current(&o);
  for (int i = 0; i < 100; i++) put_ver(db, i, 1, 150, 0);
  assert_int_equal(mayfly_flush(db), MAYFLY_OK); /* 0..99 in a table, a fresh WAL */
  for (int i = 100; i < 200; i++) put_ver(db, i, 1, 150, 0);
  assert_int_equal(count_wals(), 1);
  /* A process crash (the handle is abandoned, its files stay as written)... */
  atomic_store(&g_frozen, 1);
  mayfly_close(db);
  g_db = NULL;
  atomic_store(&g_frozen, 0);
  /* ...and the OS lost the WAL's first 4 KiB but kept the rest. */
  char path[256];
  newest_wal_path(path, sizeof path);
  mf_buf b = MF_BUF_INIT;
  assert_int_equal(env_read_file(g_base, path, &b), MAYFLY_OK);
  assert_true(b.len > 8192);
  memset(b.data, 0, 4096);
  mf_wfile *f;
  assert_int_equal(g_base->new_writable(g_base, path, &f), MAYFLY_OK);
  assert_int_equal(g_base->append(f, b.data, b.len), MAYFLY_OK);
  assert_int_equal(g_base->sync(f, 0), MAYFLY_OK);
  assert_int_equal(g_base->close_writable(f), MAYFLY_OK);
  mf_buf_free(&b);

  struct mayfly_options strict = o;
  strict.wal_recovery_mode = MF_WAL_ABSOLUTE;
  mayfly_db *refused = NULL;
  assert_int_equal(mayfly_open(DBNAME, &strict, &refused), MAYFLY_ECORRUPT);
  db = open_current(&o);
  for (int i = 0; i < 100; i++)
    if (get_ver(db, NULL, i) != 1) fail_msg("key %d, flushed before the crash, is lost", i);
  for (int i = 100; i < 200; i++)
    if (get_ver(db, NULL, i) == 1) fail_msg("key %d came back from a WAL with a lost header", i);
  char *report = NULL;
  assert_int_equal(mayfly_property(db, "mayfly.recovery", &report), MAYFLY_OK);
  const char *base = strrchr(path, '/') + 1;
  char want[300];
  snprintf(want, sizeof want, "Dropped at damage: %s after 0 records, and 0 later WALs\n", base);
  if (!strstr(report, want))
    fail_msg("mayfly.recovery does not report the dropped WAL:\n%s", report);
  mayfly_free(report);
  close_current(db);
}

/* A sync at a memtable switch fails (*flag picks which, set for the writer thread): the
 * write that switched reports it, the database turns read-only (a retried fsync could report
 * success for data the kernel dropped), and every write acknowledged before is there after a
 * reopen. */
static void failed_sync_at_switch(int *flag) {
  crash_env_create();
  struct mayfly_options o = crash_opts(64 * 1024);
  mayfly_db *db = open_current(&o);
  pthread_mutex_lock(&g_wal_mu);
  g_fail_thread = pthread_self();
  *flag = 1;
  pthread_mutex_unlock(&g_wal_mu);
  int acked = 0, rc = MAYFLY_OK;
  char k[32], v[150];
  memset(v, 'v', sizeof v);
  for (; acked < 100000; acked++) {
    size_t klen = (size_t)snprintf(k, sizeof k, "key%06d", acked);
    rc = mayfly_put(db, k, klen, v, sizeof v, 0);
    if (rc != MAYFLY_OK) break;
  }
  pthread_mutex_lock(&g_wal_mu);
  int fired = !*flag;
  *flag = 0;
  pthread_mutex_unlock(&g_wal_mu);
  assert_true(fired);
  assert_int_equal(rc, MAYFLY_EIO);
  assert_int_equal(mayfly_put(db, "after", 5, "x", 1, 0), MAYFLY_ECLOSED);
  void *got = NULL;
  size_t glen = 0;
  assert_int_equal(mayfly_get(db, NULL, "key000000", 9, &got, &glen), MAYFLY_OK); /* reads go on */
  mayfly_free(got);
  close_current(db);
  db = open_current(&o);
  for (int i = 0; i < acked; i++) {
    size_t klen = (size_t)snprintf(k, sizeof k, "key%06d", i);
    got = NULL;
    if (mayfly_get(db, NULL, k, klen, &got, &glen) != MAYFLY_OK || glen != sizeof v)
      fail_msg("acknowledged write %d of %d is missing after the reopen", i, acked);
    mayfly_free(got);
  }
  assert_int_equal(mayfly_put(db, "after", 5, "x", 1, 0), MAYFLY_OK);
  close_current(db);
}

/* The old WAL's sync. */
static void test_failed_wal_sync_at_switch(void **state) {
  (void)state;
  failed_sync_at_switch(&g_fail_wal_sync);
}

/* The same when the directory sync that makes the new WAL's entry durable fails: that sync
 * covered other new entries too, and a retry could report success for lost ones. */
static void test_failed_dir_sync_at_switch(void **state) {
  (void)state;
  failed_sync_at_switch(&g_fail_dir_sync);
}

enum { MAX_KEYS = 1000, MAX_OPS = 5000 };

typedef struct op {
  int key;
  int ver; /* -1: delete */
  int sync;
} op;

/* Rounds of random writes, each ended by a crash with the handle open; checks the prefix
 * property after each. */
static void run_prefix_rounds(uint64_t write_buffer_size, int rounds, int ops_per_round,
                              int num_keys, int sync_every) {
  uint64_t seed = test_seed();
  printf("seed=%" PRIu64 " (MAYFLY_SEED to replay) write_buffer_size=%" PRIu64 "\n", seed,
         write_buffer_size);
  uint64_t rng = seed;
  crash_env_create();
  struct mayfly_options o = crash_opts(write_buffer_size);
  /* static, so a failing round leaks nothing */
  static int base[MAX_KEYS], model[MAX_KEYS], dbv[MAX_KEYS];
  static op ops[MAX_OPS];
  assert_true(num_keys <= MAX_KEYS && ops_per_round <= MAX_OPS);
  for (int k = 0; k < num_keys; k++) base[k] = -1;
  mayfly_db *db = open_current(&o);
  for (int r = 0; r < rounds; r++) {
    int last_sync = -1;
    for (int j = 0; j < ops_per_round; j++) {
      op *p = &ops[j];
      uint64_t x = rng_next(&rng);
      p->key = (int)(x % (uint64_t)num_keys);
      p->sync = sync_every > 0 && (x >> 20) % (uint64_t)sync_every == 0;
      if ((x >> 40) % 100 < 15) {
        p->ver = -1;
        del_key(db, p->key, p->sync ? MAYFLY_SYNC : 0);
      } else {
        p->ver = r * 1000000 + j;
        put_ver(db, p->key, p->ver, 40 + (size_t)((x >> 48) % 200), p->sync ? MAYFLY_SYNC : 0);
      }
      if (p->sync) last_sync = j;
    }
    db = crash_and_reopen(db, &o);
    read_state(db, dbv, num_keys);

    /* Find a prefix P > last_sync whose state is dbv. */
    memcpy(model, base, (size_t)num_keys * sizeof *model);
    int mismatches = 0;
    for (int k = 0; k < num_keys; k++) mismatches += model[k] != dbv[k];
    int found = last_sync < 0 && mismatches == 0 ? 0 : -1;
    for (int j = 0; j < ops_per_round && found < 0; j++) {
      int k = ops[j].key;
      mismatches -= model[k] != dbv[k];
      model[k] = ops[j].ver;
      mismatches += model[k] != dbv[k];
      if (j >= last_sync && mismatches == 0) found = j + 1;
    }
    if (found < 0) {
      /* Say what is wrong: the first key that disagrees with the full history. */
      memcpy(model, base, (size_t)num_keys * sizeof *model);
      for (int j = 0; j < ops_per_round; j++) model[ops[j].key] = ops[j].ver;
      int bad = -1;
      for (int k = 0; k < num_keys && bad < 0; k++)
        if (model[k] != dbv[k]) bad = k;
      fail_msg("seed %" PRIu64 " round %d: the recovered state is no prefix of the write order "
               "that includes the last synced write (op %d of %d); e.g. key %d has version %d, "
               "its last write was %d", seed, r, last_sync, ops_per_round, bad,
               bad >= 0 ? dbv[bad] : 0, bad >= 0 ? model[bad] : 0);
    }
    printf("round %d: recovered %d of %d operations (last sync at %d)\n", r, found,
           ops_per_round, last_sync);
    memcpy(base, dbv, (size_t)num_keys * sizeof *base);
  }
  close_current(db);
}

/* WAL only: one large memtable, unsynced writes with a sync now and then. */
static void test_prefix_after_crash_wal_only(void **state) {
  (void)state;
  run_prefix_rounds(64 << 20, 4, 2000, 300, 150);
}

/* Small memtables and merges at two level-0 files: crashes land in the middle of flushes
 * and merges. */
static void test_prefix_after_crash_during_flushes(void **state) {
  (void)state;
  run_prefix_rounds(64 * 1024, 6, 3000, 400, 200);
}

/* No sync at all: anything may be lost, but the database opens and shows a prefix. */
static void test_prefix_after_crash_no_sync(void **state) {
  (void)state;
  run_prefix_rounds(64 * 1024, 4, 3000, 400, 0);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_sync_in_first_wal, teardown),
      cmocka_unit_test_teardown(test_newer_wal_survives_older_does_not, teardown),
      cmocka_unit_test_teardown(test_sync_after_wal_without_records, teardown),
      cmocka_unit_test_teardown(test_newest_wal_header_lost, teardown),
      cmocka_unit_test_teardown(test_failed_wal_sync_at_switch, teardown),
      cmocka_unit_test_teardown(test_failed_dir_sync_at_switch, teardown),
      cmocka_unit_test_teardown(test_sync_writes_survive_crash, teardown),
      cmocka_unit_test_teardown(test_flush_is_durable, teardown),
      cmocka_unit_test_teardown(test_sync_writes_survive_crash_after_idle, teardown),
      cmocka_unit_test_teardown(test_clean_close_then_crash, teardown),
      cmocka_unit_test_teardown(test_empty_sync_batch, teardown),
      cmocka_unit_test_teardown(test_current_written_back_first, teardown),
      cmocka_unit_test_teardown(test_new_database_dir_synced, teardown),
      cmocka_unit_test_teardown(test_sync_covers_earlier_wals, teardown),
      cmocka_unit_test_teardown(test_prefix_after_crash_wal_only, teardown),
      cmocka_unit_test_teardown(test_prefix_after_crash_during_flushes, teardown),
      cmocka_unit_test_teardown(test_prefix_after_crash_no_sync, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
