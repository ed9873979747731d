/* The I/O-error loop: a fixed sequence of database operations (open, small writes with some
 * MAYFLY_SYNC, flush, compact_range, large values that go to small blob files so that blob
 * GC relocates them, more compactions, close) runs on the fault env (src/env/env_fault.h)
 * over an in-memory env, once per (kind, N): the N-th call of that kind fails, once. At each
 * step:
 *  - nothing crashes (run under ASan in the sanitizer build);
 *  - a fault that fired reaches the caller: some API call returned an error, or the database
 *    went read-only (writes fail with MAYFLY_ECLOSED). Only a failed unlink (deleting an
 *    obsolete file is best effort) and a failed sync of the directory holding a new database
 *    (noted in its LOG) may go unreported;
 *  - closing a handle that saw a background error deletes no file (the files are what
 *    recovery needs);
 *  - after a reopen with the fault cleared, every write acknowledged with MAYFLY_OK is there
 *    with its value; the one write that failed may or may not be; and once closed again, the
 *    database passes db_check (src/db/db_check.h) with no problem.
 * N runs over every call of the kind up to a limit, then a random sample of the rest (the
 * seed is printed; MAYFLY_SEED=<n> replays). MAYFLY_IO_ERRORS_FULL=1 runs every N. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/db_check.h"
#include "db/options.h"
#include "env/env.h"
#include "env/env_fault.h"
#include "mayfly.h"
#include "util/random.h"

#define DBNAME "/db"
#define NKEYS 400
#define SMALL_LEN 40
#define BLOB_LEN 300

static const char *kind_names[ENV_FAULT_NUM_KINDS] = {"read",   "write",  "sync",    "rename",
                                                       "unlink", "create", "dir-sync"};

/* What the sequence acknowledged: the version each key must have (-1 absent), and the one
 * write whose outcome is unknown (it failed). */
typedef struct expect {
  int ver[NKEYS];
  int len[NKEYS];
  int uncertain_key, uncertain_ver, uncertain_len;
} expect;

static void value_of(int i, int ver, int len, char *buf) {
  int n = snprintf(buf, (size_t)len + 1, "k%06d:v%06d:", i, ver);
  for (int j = n; j < len; j++) buf[j] = (char)('a' + (i * 3 + ver * 11 + j) % 26);
}

static void key_of(int i, char *buf) { snprintf(buf, 16, "key%06d", i); }

/* One run's state: the first error an API call returned, and where. */
typedef struct run {
  mf_env *env;
  mayfly_db *db;
  expect ex;
  int failed;
  char where[128];
  int bg_closed; /* a write returned MAYFLY_ECLOSED */
} run;

static int note(run *r, int rc, const char *what) {
  if (rc != MAYFLY_OK && !r->failed) {
    r->failed = rc;
    snprintf(r->where, sizeof r->where, "%s: %s", what, mayfly_strerror(rc));
  }
  if (rc == MAYFLY_ECLOSED) r->bg_closed = 1;
  return rc;
}

static void options_for(struct mayfly_options *o, mf_env *env) {
  options_init_defaults(o);
  options_set_env(o, env);
  o->create_if_missing = 1;
  o->write_buffer_size = 16 * 1024;
  o->target_file_size_base = 16 * 1024;
  o->enable_blob_files = 1;
  o->min_blob_size = 200;
  o->blob_file_size = 8 * 1024;
  o->enable_blob_garbage_collection = 1;
  o->blob_garbage_collection_age_cutoff = 1.0;
  o->blob_garbage_collection_force_threshold = 0.2;
}

static int put(run *r, int i, int ver, int len, unsigned flags) {
  char k[16], v[BLOB_LEN + 1];
  key_of(i, k);
  value_of(i, ver, len, v);
  int rc = note(r, mayfly_put(r->db, k, strlen(k), v, (size_t)len, flags), "put");
  if (rc == MAYFLY_OK) {
    r->ex.ver[i] = ver;
    r->ex.len[i] = len;
  } else {
    r->ex.uncertain_key = i;
    r->ex.uncertain_ver = ver;
    r->ex.uncertain_len = len;
  }
  return rc;
}

static int del(run *r, int i) {
  char k[16];
  key_of(i, k);
  int rc = note(r, mayfly_delete(r->db, k, strlen(k), 0), "delete");
  if (rc == MAYFLY_OK) {
    r->ex.ver[i] = -1;
  } else {
    r->ex.uncertain_key = i;
    r->ex.uncertain_ver = -1;
  }
  return rc;
}

/* The sequence; stops at the first error. */
static void sequence(run *r) {
  struct mayfly_options o;
  options_for(&o, r->env);
  if (note(r, mayfly_open(DBNAME, &o, &r->db), "open")) {
    r->db = NULL;
    return;
  }
  int ver = 1;
  for (int i = 0; i < 300; i++)
    if (put(r, i, ver, SMALL_LEN, i % 50 == 49 ? MAYFLY_SYNC : 0)) return;
  if (note(r, mayfly_flush(r->db), "flush")) return;
  for (int round = 0; round < 3; round++) {
    ver++;
    for (int i = 100; i < NKEYS; i++)
      if (put(r, i, ver, BLOB_LEN, i % 64 == 0 ? MAYFLY_SYNC : 0)) return;
    for (int i = 0; i < 20; i++)
      if (del(r, round * 20 + i)) return;
    if (note(r, mayfly_flush(r->db), "flush")) return;
    if (note(r, mayfly_compact_range(r->db, NULL, 0, NULL, 0), "compact_range")) return;
  }
  if (note(r, mayfly_wait_idle(r->db), "wait_idle")) return;
}

/* Problems found by the steps of one loop: all of them are printed, then the test fails,
 * so that one engine bug does not hide the next. */
static int g_problems;

#define PROBLEM(...)                                  \
  do {                                                \
    g_problems++;                                     \
    if (g_problems <= 20) {                           \
      printf("  PROBLEM: ");                          \
      printf(__VA_ARGS__);                            \
      printf("\n");                                   \
    }                                                 \
  } while (0)

static void verify(run *r, const char *label) {
  struct mayfly_options o;
  options_for(&o, r->env);
  mayfly_db *db = NULL;
  int rc = mayfly_open(DBNAME, &o, &db);
  if (rc != MAYFLY_OK) {
    PROBLEM("%s: reopen: %s (%s)", label, mayfly_strerror(rc), mayfly_errmsg(NULL));
    return;
  }
  char problem[256] = "";
  for (int i = 0; i < NKEYS && !problem[0]; i++) {
    char k[16], expectv[BLOB_LEN + 1];
    key_of(i, k);
    void *v = NULL;
    size_t vlen = 0;
    rc = mayfly_get(db, NULL, k, strlen(k), &v, &vlen);
    int ok;
    if (rc == MAYFLY_ENOTFOUND) {
      ok = r->ex.ver[i] < 0 || (r->ex.uncertain_key == i && r->ex.uncertain_ver < 0);
    } else if (rc != MAYFLY_OK) {
      snprintf(problem, sizeof problem, "key %d: get: %s (%s)", i, mayfly_strerror(rc),
               mayfly_errmsg(db));
      break;
    } else {
      ok = 0;
      if (r->ex.ver[i] >= 0) {
        value_of(i, r->ex.ver[i], r->ex.len[i], expectv);
        ok = vlen == (size_t)r->ex.len[i] && memcmp(v, expectv, vlen) == 0;
      }
      if (!ok && r->ex.uncertain_key == i && r->ex.uncertain_ver >= 0) {
        value_of(i, r->ex.uncertain_ver, r->ex.uncertain_len, expectv);
        ok = vlen == (size_t)r->ex.uncertain_len && memcmp(v, expectv, vlen) == 0;
      }
    }
    if (!ok)
      snprintf(problem, sizeof problem, "key %d: expected version %d, got %s %.20s", i,
               r->ex.ver[i], rc == MAYFLY_OK ? "value" : "nothing",
               rc == MAYFLY_OK ? (const char *)v : "");
    mayfly_free(v);
  }
  int crc = mayfly_close(db);
  if (problem[0]) PROBLEM("%s: %s", label, problem);
  if (crc != MAYFLY_OK) PROBLEM("%s: close after reopen: %s", label, mayfly_strerror(crc));
  /* The recovered, closed database must also pass the offline check (garbage counts
   * included): a failed job must leave nothing inconsistent behind. */
  char *report = NULL;
  size_t report_len = 0;
  FILE *f = open_memstream(&report, &report_len);
  assert_non_null(f);
  db_check_counts counts = {0, 0};
  rc = db_check(DBNAME, r->env, f, &counts);
  fclose(f);
  /* Leftovers are tolerated: files made obsolete by a compaction that finished while a read
   * still pinned the old version stay until the next open deletes them. */
  uint64_t serious = counts.problems;
  if (rc != MAYFLY_OK || serious > 0)
    PROBLEM("%s: db_check after recovery: %s, %llu problems:\n%s", label, mayfly_strerror(rc),
            (unsigned long long)serious, report);
  free(report);
}

/* One (kind, nth) step. Returns 1 when the fault never fired (the sequence is past it). */
static int step(int kind, uint64_t nth, int persistent) {
  mf_env *mem = NULL;
  run r;
  memset(&r, 0, sizeof r);
  for (int i = 0; i < NKEYS; i++) r.ex.ver[i] = -1;
  r.ex.uncertain_key = -1;
  assert_int_equal(env_mem_create(&mem), MAYFLY_OK);
  assert_int_equal(env_fault_create(mem, &r.env), MAYFLY_OK);
  env_fault_set(r.env, kind, nth, persistent, nth % 2 ? ENV_FAULT_EIO : ENV_FAULT_ENOSPC);
  sequence(&r);
  if (r.db) {
    /* A write tells whether the database went read-only. */
    if (!r.failed) {
      int rc = mayfly_put(r.db, "probe", 5, "x", 1, 0);
      note(&r, rc, "probe put");
    }
    int bg = r.bg_closed;
    if (!bg && env_fault_injected(r.env) > 0)
      bg = mayfly_put(r.db, "probe", 5, "x", 1, 0) == MAYFLY_ECLOSED;
    /* Obsolete-file deletion is what removes logs and MANIFESTs; after a background error it
     * must not run: they are what recovery reads. (A failed job still removes its own table
     * and blob outputs, which nothing references.) */
    char **names = NULL;
    size_t count = 0;
    if (bg) assert_int_equal(mem->list_dir(mem, DBNAME, &names, &count), MAYFLY_OK);
    int rc = mayfly_close(r.db);
    if (!r.failed && rc != MAYFLY_OK) note(&r, rc, "close");
    for (size_t i = 0; i < count; i++) {
      size_t len = strlen(names[i]);
      int recovery_file = strncmp(names[i], "MANIFEST-", 9) == 0 ||
                          (len > 4 && strcmp(names[i] + len - 4, ".log") == 0);
      char full[300];
      snprintf(full, sizeof full, "%s/%s", DBNAME, names[i]);
      if (recovery_file && !mem->file_exists(mem, full)) {
        char path[256];
        env_fault_first_path(r.env, path, sizeof path);
        PROBLEM("%s fault #%" PRIu64 "%s (%s): closing the read-only database removed %s",
                kind_names[kind], nth, persistent ? " and on" : "", path, full);
      }
    }
    env_free_names(names, count);
  }
  uint64_t fired = env_fault_injected(r.env);
  char label[512], path[256];
  env_fault_first_path(r.env, path, sizeof path);
  snprintf(label, sizeof label, "%s fault #%" PRIu64 "%s at %s (first error: %s)",
           kind_names[kind], nth, persistent ? " and on" : "", path,
           r.failed ? r.where : "none");
  /* The info log is best effort, and so are deleting an obsolete file and syncing the
   * directory that holds a new database ("/" here; the LOG notes it). */
  size_t plen = strlen(path);
  int best_effort = kind == ENV_FAULT_UNLINK ||
                    (plen >= 4 && strcmp(path + plen - 4, "/LOG") == 0) ||
                    (kind == ENV_FAULT_DIR_SYNC && strcmp(path, "/") == 0);
  if (fired && !r.failed && !best_effort)
    PROBLEM("%s: the fault fired but no API call reported an error", label);
  env_fault_clear(r.env);
  env_fault_freeze(r.env, 0);
  if (!(fired == 0 && r.failed == 0) || nth == 1) verify(&r, label);
  if (fired == 0 && r.failed) PROBLEM("%s: an API call failed with no injected fault", label);
  r.env->destroy(r.env);
  mem->destroy(mem);
  return fired == 0;
}

static uint64_t g_seed;

static void loop_kind(int kind, int persistent) {
  /* The counts of a fault-free run bound N. */
  uint64_t total;
  {
    mf_env *mem = NULL;
    run r;
    memset(&r, 0, sizeof r);
    for (int i = 0; i < NKEYS; i++) r.ex.ver[i] = -1;
    r.ex.uncertain_key = -1;
    assert_int_equal(env_mem_create(&mem), MAYFLY_OK);
    assert_int_equal(env_fault_create(mem, &r.env), MAYFLY_OK);
    sequence(&r);
    if (r.failed) fail_msg("fault-free run failed: %s", r.where);
    assert_int_equal(mayfly_close(r.db), MAYFLY_OK);
    total = env_fault_count(r.env, kind);
    verify(&r, "fault-free run");
    r.env->destroy(r.env);
    mem->destroy(mem);
  }
  const char *full = getenv("MAYFLY_IO_ERRORS_FULL");
  uint64_t every = full && full[0] == '1' ? UINT64_MAX : 40;
  mf_random rnd;
  mf_random_seed(&rnd, g_seed + (uint64_t)kind * 2 + (uint64_t)persistent);
  int steps = 0;
  g_problems = 0;
  for (uint64_t n = 1;; n++) {
    if (n > every && n <= total) {
      /* sample: about 40 more steps spread over the rest */
      uint64_t stride = (total - every) / 40 + 1;
      n += mf_random_uniform(&rnd, stride);
      if (n > total) n = total;
    }
    steps++;
    if (step(kind, n, persistent)) break;
    /* The count moves a little between runs (how far background work gets before the close,
     * and the info LOG lines it writes, depend on timing), so the bound has some slack. */
    if (n > total + total / 50 + 20)
      fail_msg("%s: the fault keeps firing past the fault-free count %" PRIu64,
               kind_names[kind], total);
  }
  printf("  %s%s: %" PRIu64 " calls in a fault-free run, %d steps, %d problems\n",
         kind_names[kind], persistent ? " (persistent)" : "", total, steps, g_problems);
  int problems = g_problems;
  g_problems = 0;
  if (problems) fail_msg("%d problems (the first 20 are printed above)", problems);
}

static void test_read(void **state) { (void)state; loop_kind(ENV_FAULT_READ, 0); }
static void test_write(void **state) { (void)state; loop_kind(ENV_FAULT_WRITE, 0); }
static void test_sync(void **state) { (void)state; loop_kind(ENV_FAULT_SYNC, 0); }
static void test_rename(void **state) { (void)state; loop_kind(ENV_FAULT_RENAME, 0); }
static void test_unlink(void **state) { (void)state; loop_kind(ENV_FAULT_UNLINK, 0); }
static void test_create(void **state) { (void)state; loop_kind(ENV_FAULT_CREATE, 0); }
static void test_dir_sync(void **state) { (void)state; loop_kind(ENV_FAULT_DIR_SYNC, 0); }
static void test_write_persistent(void **state) { (void)state; loop_kind(ENV_FAULT_WRITE, 1); }
static void test_sync_persistent(void **state) { (void)state; loop_kind(ENV_FAULT_SYNC, 1); }

int main(void) {
  const char *s = getenv("MAYFLY_SEED");
  g_seed = s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL);
  printf("test_io_errors: seed %" PRIu64 " (MAYFLY_SEED=%" PRIu64 " replays)\n", g_seed, g_seed);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_read),   cmocka_unit_test(test_write),
      cmocka_unit_test(test_sync),   cmocka_unit_test(test_rename),
      cmocka_unit_test(test_unlink), cmocka_unit_test(test_create),
      cmocka_unit_test(test_dir_sync), cmocka_unit_test(test_write_persistent),
      cmocka_unit_test(test_sync_persistent),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
