/* Database-level recovery promises: what was written is there after close and reopen.
 *
 * Every test runs the engine on the in-memory env (or, where a real directory matters, under
 * MAYFLY_TEST_TMP) and checks values byte for byte. Values carry their key index and a
 * version number in a fixed header followed by a fill derived from both, so a value from the
 * wrong key, an older version or a damaged copy is told apart from the expected one.
 *
 * Covered: recovery from the WAL only, from tables only and mixed; data spread over many
 * WALs (small memtables), including WALs that could not be flushed because table creation
 * was blocked and then failed; many reopens in a row; sequence numbers that keep increasing
 * across reopen (the newest write wins over an older one in a table, snapshots taken after
 * reopen); deletes surviving reopen, flush and merge; MAYFLY_NO_WAL writes (visible at once,
 * flushed by a clean close). */
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
#include <unistd.h>

#include "db/options.h"
#include "env/env.h"
#include "mayfly.h"
#include "util/slice.h"

#define DBNAME "/db"
#include "test_db_util.h"

/* ---- checks ---- */

/* expect[i] is the version key i must have (-1: absent), for i < n. Checks with gets and
 * with one forward scan (which must show exactly the present keys, in order). */
static void check_all(mayfly_db *db, const mayfly_snapshot *snap, const int *expect, int n) {
  int present = 0;
  for (int i = 0; i < n; i++) {
    int got = get_ver(db, snap, i);
    if (got != expect[i]) fail_msg("key %d: expected version %d, found %d", i, expect[i], got);
    if (expect[i] >= 0) present++;
  }
  mayfly_iter *it = NULL;
  assert_int_equal(mayfly_iter_create(db, snap, &it), MAYFLY_OK);
  int seen = 0, last = -1;
  for (mayfly_iter_seek_to_first(it); mayfly_iter_valid(it); mayfly_iter_next(it)) {
    size_t klen, vlen;
    const char *k = mayfly_iter_key(it, &klen);
    const void *v = mayfly_iter_value(it, &vlen);
    int i = -1;
    char kb[32];
    assert_true(klen < sizeof kb);
    memcpy(kb, k, klen);
    kb[klen] = '\0';
    if (sscanf(kb, "key%08d", &i) != 1 || i < 0 || i >= n) fail_msg("scan: stray key '%s'", kb);
    if (i <= last) fail_msg("scan: key %d after key %d", i, last);
    last = i;
    int ver = parse_value(i, v, vlen);
    if (ver != expect[i]) fail_msg("scan: key %d has version %d, expected %d", i, ver, expect[i]);
    seen++;
  }
  assert_int_equal(mayfly_iter_status(it), MAYFLY_OK);
  mayfly_iter_destroy(it);
  assert_int_equal(seen, present);
}


/* Closes db, opens it again with o and checks everything against expect[0..n). */
static mayfly_db *reopen_check(mayfly_db *db, const struct mayfly_options *o, const int *expect,
                               int n) {
  close_ok(db);
  db = open_ok(o);
  check_all(db, NULL, expect, n);
  return db;
}

/* ---- tests ---- */

/* Data only in the WAL at close (large memtable, no flush) comes back. */
static void test_recover_from_wal_only(void **state) {
  (void)state;
  mf_env *env = new_mem_env();
  struct mayfly_options o = opts_for(env);
  enum { N = 2000 };
  static int expect[N];
  mayfly_db *db = open_ok(&o);
  for (int i = 0; i < N; i++) {
    expect[i] = i % 5 == 0 ? -1 : 1;
    put_ver(db, i, 0, 40 + (size_t)i % 100, 0);
  }
  for (int i = 0; i < N; i++)
    if (expect[i] >= 0) put_ver(db, i, 1, 30, 0);
    else del_key(db, i, 0);
  check_all(db, NULL, expect, N);
  close_ok(db);
  assert_int_equal(count_files(env, ".sst"), 0); /* the data really is in the WAL only */
  assert_true(count_files(env, ".log") >= 1);
  db = open_ok(&o);
  check_all(db, NULL, expect, N);
  close_ok(db);
  /* Recovered data must still be there on the open after the recovery one. */
  db = open_ok(&o);
  check_all(db, NULL, expect, N);
  close_ok(db);
  env->destroy(env);
}

/* Data only in tables at close. */
static void test_recover_from_tables_only(void **state) {
  (void)state;
  mf_env *env = new_mem_env();
  struct mayfly_options o = opts_for(env);
  enum { N = 2000 };
  static int expect[N];
  mayfly_db *db = open_ok(&o);
  for (int i = 0; i < N; i++) {
    put_ver(db, i, 3, 100, 0);
    expect[i] = 3;
  }
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  assert_true(count_files(env, ".sst") >= 1);
  db = reopen_check(db, &o, expect, N);
  close_ok(db);
  env->destroy(env);
}

/* Old versions in tables, newer versions and deletes in the WAL. */
static void test_recover_mixed(void **state) {
  (void)state;
  mf_env *env = new_mem_env();
  struct mayfly_options o = opts_for(env);
  enum { N = 1500 };
  static int expect[N];
  mayfly_db *db = open_ok(&o);
  for (int i = 0; i < N; i++) {
    put_ver(db, i, 1, 60, 0);
    expect[i] = 1;
  }
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  for (int i = 0; i < N; i += 3) {
    put_ver(db, i, 2, 70, 0);
    expect[i] = 2;
  }
  for (int i = 1; i < N; i += 7) {
    del_key(db, i, 0);
    expect[i] = -1;
  }
  db = reopen_check(db, &o, expect, N);
  /* Once more, with a flush of the recovered state and a reopen. */
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  db = reopen_check(db, &o, expect, N);
  close_ok(db);
  env->destroy(env);
}

/* Small memtables: the data crosses many memtables, WALs and flushes. */
static void test_recover_many_memtables(void **state) {
  (void)state;
  mf_env *env = new_mem_env();
  struct mayfly_options o = opts_for(env);
  o.write_buffer_size = 64 * 1024;
  o.max_write_buffer_number = 4;
  enum { N = 3000 };
  static int expect[N];
  mayfly_db *db = open_ok(&o);
  /* ~1.2 MB over several passes: about 20 memtables. */
  for (int pass = 0; pass < 3; pass++) {
    for (int i = 0; i < N; i++) {
      if ((i + pass) % 11 == 0) {
        del_key(db, i, 0);
        expect[i] = -1;
      } else {
        put_ver(db, i, pass, 100 + (size_t)(i % 300), 0);
        expect[i] = pass;
      }
    }
  }
  check_all(db, NULL, expect, N);
  close_ok(db); /* immediately: memtables may still be waiting for their flush */
  db = open_ok(&o);
  check_all(db, NULL, expect, N);
  db = reopen_check(db, &o, expect, N);
  close_ok(db);
  env->destroy(env);
}

/* ---- an env whose table creation can be held back, so WALs pile up unflushed ---- */

static mf_env *g_gate_base;
static pthread_mutex_t g_gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_gate_cv = PTHREAD_COND_INITIALIZER;
static int g_gate_closed;   /* new .sst files wait while set */
static int g_gate_fail;     /* new .sst files fail with MAYFLY_EIO while set */
static atomic_int g_gate_waiting;

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int gate_new_writable(mf_env *env, const char *path, mf_wfile **out) {
  if (ends_with(path, ".sst")) {
    pthread_mutex_lock(&g_gate_mu);
    atomic_fetch_add(&g_gate_waiting, 1);
    while (g_gate_closed) pthread_cond_wait(&g_gate_cv, &g_gate_mu);
    atomic_fetch_sub(&g_gate_waiting, 1);
    int fail = g_gate_fail;
    pthread_mutex_unlock(&g_gate_mu);
    if (fail) return MAYFLY_EIO;
  }
  return g_gate_base->new_writable(g_gate_base, path, out);
}

/* Builds an env that forwards everything to base except new_writable of tables. */
static mf_env *gate_env_create(mf_env *base) {
  mf_env *env = calloc(1, sizeof *env);
  assert_non_null(env);
  *env = *base;
  g_gate_base = base;
  env->new_writable = gate_new_writable;
  env->destroy = NULL;
  return env;
}

static void gate_set(int closed, int failing) {
  pthread_mutex_lock(&g_gate_mu);
  g_gate_closed = closed;
  g_gate_fail = failing;
  pthread_cond_broadcast(&g_gate_cv);
  pthread_mutex_unlock(&g_gate_mu);
}

typedef struct idle_call {
  mayfly_db *db;
  int rc;
  atomic_int done;
} idle_call;

static void *idle_main(void *arg) {
  idle_call *c = arg;
  c->rc = mayfly_wait_idle(c->db);
  atomic_store(&c->done, 1);
  return NULL;
}

/* mayfly_wait_idle, failing the test (and leaking the stuck thread and db) if it has not
 * returned after secs seconds. */
static int wait_idle_with_timeout(mayfly_db *db, int secs) {
  static idle_call c;
  c.db = db;
  c.rc = 1;
  atomic_store(&c.done, 0);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, idle_main, &c), 0);
  for (int i = 0; i < secs * 100 && !atomic_load(&c.done); i++) usleep(10000);
  if (!atomic_load(&c.done)) {
    pthread_detach(t);
    fail_msg("mayfly_wait_idle did not return within %d s after a background error", secs);
  }
  pthread_join(t, NULL);
  return c.rc;
}

/* Several WALs, none of them flushed (table creation blocked, then failing): a reopen must
 * replay all of them, in order. Also checks that a background error makes writes fail with
 * MAYFLY_ECLOSED and that close still succeeds in keeping the WALs. */
static void test_recover_several_unflushed_wals(void **state) {
  (void)state;
  mf_env *mem = new_mem_env();
  mf_env *gate = gate_env_create(mem);
  struct mayfly_options o = opts_for(gate);
  o.write_buffer_size = 64 * 1024;
  o.max_write_buffer_number = 32;
  enum { N = 1000 };
  static int expect[N];
  for (int i = 0; i < N; i++) expect[i] = -1;
  gate_set(1, 0);
  mayfly_db *db = open_ok(&o);
  /* ~6 memtables of 64 KiB: 5 immutable ones wait, the flush of the first is stuck. */
  int ver = 0;
  for (int round = 0; round < 4; round++) {
    for (int i = 0; i < N; i++) {
      if ((i * 3 + round) % 13 == 0) {
        del_key(db, i, 0);
        expect[i] = -1;
      } else {
        put_ver(db, i, ver, 80, 0);
        expect[i] = ver;
      }
    }
    ver++;
  }
  assert_true(count_files(mem, ".log") >= 3);
  assert_int_equal(count_files(mem, ".sst"), 0);
  check_all(db, NULL, expect, N);
  gate_set(0, 1); /* the stuck flush now fails: background error */
  /* Writes must eventually be refused with MAYFLY_ECLOSED, never half-applied. */
  int rc = MAYFLY_OK;
  char k[32], v[40];
  size_t klen = key_of(0, k);
  value_of(0, 999, sizeof v, v);
  for (int tries = 0; tries < 5000 && rc == MAYFLY_OK; tries++) {
    rc = mayfly_put(db, k, klen, v, sizeof v, 0);
    if (rc == MAYFLY_OK) {
      expect[0] = 999; /* acknowledged, so it must survive */
      usleep(1000);
    }
  }
  assert_int_equal(rc, MAYFLY_ECLOSED);
  assert_true(strlen(mayfly_errmsg(db)) > 0);
  /* mayfly_wait_idle must report the error, not wait forever for memtables that can no
   * longer be flushed. */
  assert_int_equal(wait_idle_with_timeout(db, 5), MAYFLY_ECLOSED);
  mayfly_close(db); /* may report the background error */
  gate_set(0, 0);
  struct mayfly_options plain = opts_for(mem);
  plain.write_buffer_size = 64 * 1024;
  db = open_ok(&plain);
  check_all(db, NULL, expect, N);
  close_ok(db);
  db = open_ok(&plain);
  check_all(db, NULL, expect, N);
  close_ok(db);
  free(gate);
  mem->destroy(mem);
}

/* Open, write, close thirty times; each open checks everything written before. */
static void test_reopen_many_times(void **state) {
  (void)state;
  mf_env *env = new_mem_env();
  struct mayfly_options o = opts_for(env);
  o.write_buffer_size = 64 * 1024;
  o.level0_file_num_compaction_trigger = 2;
  enum { N = 400, ROUNDS = 30 };
  static int expect[N];
  for (int i = 0; i < N; i++) expect[i] = -1;
  for (int r = 0; r < ROUNDS; r++) {
    mayfly_db *db = open_ok(&o);
    check_all(db, NULL, expect, N);
    for (int j = 0; j < 60; j++) {
      int i = (r * 61 + j * 17) % N;
      if (j % 9 == 4) {
        del_key(db, i, 0);
        expect[i] = -1;
      } else {
        put_ver(db, i, r * 100 + j, 50 + (size_t)j * 7, 0);
        expect[i] = r * 100 + j;
      }
    }
    if (r % 4 == 1) assert_int_equal(mayfly_flush(db), MAYFLY_OK);
    if (r % 8 == 3) assert_int_equal(mayfly_compact_range(db, NULL, 0, NULL, 0), MAYFLY_OK);
    close_ok(db);
  }
  mayfly_db *db = open_ok(&o);
  check_all(db, NULL, expect, N);
  close_ok(db);
  env->destroy(env);
}

/* Sequence numbers continue after reopen: a write after reopen is newer than everything
 * before it, wherever the older versions live (WAL, level 0, after a merge). */
static void test_sequence_continues_after_reopen(void **state) {
  (void)state;
  mf_env *env = new_mem_env();
  struct mayfly_options o = opts_for(env);
  o.level0_file_num_compaction_trigger = 2;
  mayfly_db *db = open_ok(&o);
  for (int i = 0; i < 100; i++) put_ver(db, i, 1, 40, 0);
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  close_ok(db);

  db = open_ok(&o);
  for (int i = 0; i < 100; i++) put_ver(db, i, 2, 40, 0); /* in the WAL; v1 is in a table */
  for (int i = 0; i < 100; i++) assert_int_equal(get_ver(db, NULL, i), 2);
  close_ok(db);

  db = open_ok(&o); /* v2 comes back from the WAL and must still win over v1 */
  for (int i = 0; i < 100; i++) assert_int_equal(get_ver(db, NULL, i), 2);
  const mayfly_snapshot *snap = NULL;
  assert_int_equal(mayfly_snapshot_create(db, &snap), MAYFLY_OK);
  for (int i = 0; i < 100; i++) put_ver(db, i, 3, 40, 0);
  for (int i = 0; i < 100; i += 2) del_key(db, i, 0);
  for (int i = 0; i < 100; i++) {
    assert_int_equal(get_ver(db, snap, i), 2);
    assert_int_equal(get_ver(db, NULL, i), i % 2 ? 3 : -1);
  }
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  assert_int_equal(mayfly_wait_idle(db), MAYFLY_OK);
  for (int i = 0; i < 100; i++) {
    assert_int_equal(get_ver(db, snap, i), 2);
    assert_int_equal(get_ver(db, NULL, i), i % 2 ? 3 : -1);
  }
  mayfly_snapshot_release(db, snap);
  close_ok(db);

  /* Several reopens with nothing written in between must not reuse sequence numbers. */
  for (int r = 0; r < 3; r++) close_ok(open_ok(&o));
  db = open_ok(&o);
  for (int i = 0; i < 100; i++) put_ver(db, i, 4, 40, 0);
  close_ok(db);
  db = open_ok(&o);
  assert_int_equal(mayfly_compact_range(db, NULL, 0, NULL, 0), MAYFLY_OK);
  for (int i = 0; i < 100; i++) assert_int_equal(get_ver(db, NULL, i), 4);
  close_ok(db);
  env->destroy(env);
}

/* A delete hides an older value in a table across reopen, flush and merge. */
static void test_deletes_survive(void **state) {
  (void)state;
  mf_env *env = new_mem_env();
  struct mayfly_options o = opts_for(env);
  o.level0_file_num_compaction_trigger = 2;
  enum { N = 500 };
  static int expect[N];
  mayfly_db *db = open_ok(&o);
  for (int i = 0; i < N; i++) {
    put_ver(db, i, 7, 64, 0);
    expect[i] = 7;
  }
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  for (int i = 0; i < N; i += 2) {
    del_key(db, i, 0);
    expect[i] = -1;
  }
  close_ok(db); /* the deletes are only in the WAL */
  db = open_ok(&o);
  check_all(db, NULL, expect, N);
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  db = reopen_check(db, &o, expect, N);
  assert_int_equal(mayfly_compact_range(db, NULL, 0, NULL, 0), MAYFLY_OK);
  check_all(db, NULL, expect, N);
  db = reopen_check(db, &o, expect, N);
  close_ok(db);
  env->destroy(env);
}

/* MAYFLY_NO_WAL: visible at once, and written out by a clean close. */
static void test_no_wal_writes(void **state) {
  (void)state;
  mf_env *env = new_mem_env();
  struct mayfly_options o = opts_for(env);
  enum { N = 800 };
  static int expect[N];
  mayfly_db *db = open_ok(&o);
  for (int i = 0; i < N; i++) {
    put_ver(db, i, 1, 50, i % 2 ? MAYFLY_NO_WAL : 0);
    expect[i] = 1;
    assert_int_equal(get_ver(db, NULL, i), 1);
  }
  for (int i = 0; i < N; i += 5) {
    del_key(db, i, MAYFLY_NO_WAL);
    expect[i] = -1;
    assert_int_equal(get_ver(db, NULL, i), -1);
  }
  check_all(db, NULL, expect, N);
  db = reopen_check(db, &o, expect, N);
  /* NO_WAL after a flush, then close again. */
  assert_int_equal(mayfly_flush(db), MAYFLY_OK);
  for (int i = 0; i < N; i += 3) {
    put_ver(db, i, 2, 50, MAYFLY_NO_WAL);
    expect[i] = 2;
  }
  db = reopen_check(db, &o, expect, N);
  close_ok(db);
  env->destroy(env);
}

/* Values larger than a memtable, and empty values, across flushes and reopen. */
static void test_big_and_empty_values(void **state) {
  (void)state;
  mf_env *env = new_mem_env();
  struct mayfly_options o = opts_for(env);
  o.write_buffer_size = 64 * 1024;
  enum { N = 40 };
  static int expect[N];
  mayfly_db *db = open_ok(&o);
  for (int i = 0; i < N; i++) {
    put_ver(db, i, 1, i % 2 ? 300 * 1024 : 18 + (size_t)i, 0); /* 300 KiB > a 64 KiB memtable */
    expect[i] = 1;
  }
  check_all(db, NULL, expect, N);
  db = reopen_check(db, &o, expect, N);
  assert_int_equal(mayfly_compact_range(db, NULL, 0, NULL, 0), MAYFLY_OK);
  check_all(db, NULL, expect, N);
  /* the empty value: written, reopened, compacted, then deleted */
  char k[32] = "empty-value";
  size_t klen = strlen(k);
  assert_int_equal(mayfly_put(db, k, klen, "", 0, 0), MAYFLY_OK);
  close_ok(db);
  db = open_ok(&o);
  void *v = NULL;
  size_t vlen = 99;
  assert_int_equal(mayfly_get(db, NULL, k, klen, &v, &vlen), MAYFLY_OK);
  assert_non_null(v); /* an empty value is still a real allocation */
  assert_int_equal(vlen, 0);
  mayfly_free(v);
  assert_int_equal(mayfly_compact_range(db, NULL, 0, NULL, 0), MAYFLY_OK);
  assert_int_equal(mayfly_get(db, NULL, k, klen, &v, &vlen), MAYFLY_OK);
  assert_int_equal(vlen, 0);
  mayfly_free(v);
  assert_int_equal(mayfly_delete(db, k, klen, 0), MAYFLY_OK);
  close_ok(db);
  db = open_ok(&o);
  assert_int_equal(mayfly_get(db, NULL, k, klen, &v, &vlen), MAYFLY_ENOTFOUND);
  close_ok(db);
  env->destroy(env);
}

/* The same promises on the real file system, for the posix env's paths and locks. */
static void test_recover_posix(void **state) {
  (void)state;
  const char *tmp = getenv("MAYFLY_TEST_TMP");
  char dir[512];
  snprintf(dir, sizeof dir, "%s/test_db_recovery_%ld", tmp && *tmp ? tmp : "/tmp", (long)getpid());
  mf_env *posix = env_posix();
  assert_int_equal(posix->make_dir(posix, tmp && *tmp ? tmp : "/tmp"), MAYFLY_OK);
  mayfly_destroy(dir);
  struct mayfly_options o = opts_for(posix);
  o.write_buffer_size = 64 * 1024;
  enum { N = 1500 };
  static int expect[N];
  mayfly_db *db = NULL;
  assert_int_equal(mayfly_open(dir, &o, &db), MAYFLY_OK);
  for (int i = 0; i < N; i++) {
    put_ver(db, i, 1, 120, i % 100 == 0 ? MAYFLY_SYNC : 0);
    expect[i] = 1;
  }
  for (int i = 0; i < N; i += 4) {
    del_key(db, i, 0);
    expect[i] = -1;
  }
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  assert_int_equal(mayfly_open(dir, &o, &db), MAYFLY_OK);
  check_all(db, NULL, expect, N);
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  assert_int_equal(mayfly_destroy(dir), MAYFLY_OK);
  assert_false(posix->file_exists(posix, dir));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_recover_from_wal_only),
      cmocka_unit_test(test_recover_from_tables_only),
      cmocka_unit_test(test_recover_mixed),
      cmocka_unit_test(test_recover_many_memtables),
      cmocka_unit_test(test_recover_several_unflushed_wals),
      cmocka_unit_test(test_reopen_many_times),
      cmocka_unit_test(test_sequence_continues_after_reopen),
      cmocka_unit_test(test_deletes_survive),
      cmocka_unit_test(test_no_wal_writes),
      cmocka_unit_test(test_big_and_empty_values),
      cmocka_unit_test(test_recover_posix),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
