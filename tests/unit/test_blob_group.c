/* Blob garbage collection under the group policy (value logs grouped by table, gc/blob_gc.h).
 *
 * Part one drives gc_pick_group and the compaction picker on hand-built versions: a log is
 * due when its garbage ratio reaches the force threshold (< 1), the one with the most garbage
 * goes first, the tables picked are every table of levels >= 1 whose blob range
 * [oldest_blob_file, newest_blob_file] covers the log (not only those referencing it), a log
 * covered from level 0 waits, and the picker turns a due log into one COMPACTION_GROUP_GC that
 * rewrites each of those tables at its own level.
 *
 * Part two checks the promises through the API on the in-memory env, on a tree whose shape
 * the test builds step by step (build_tree): every flush writes its own log, compactions
 * carry references over without writing a blob byte, a due log's covering tables are
 * rewritten in place and its live values move into one new log, threshold 1 never collects,
 * snapshots and iterators read across a group GC, reopen and db_check find everything in
 * order, and an I/O failure at any point of a two-table group GC surfaces, loses nothing and
 * leaves no leftover file behind. A randomized workload (seed from MAYFLY_TEST_SEED or the clock,
 * printed) checks the same against a model.
 *
 * The tests read per-table blob ranges from the current version (db_impl.h): the properties
 * tell which logs exist, not which tables cover them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blob/blob_format.h"
#include "compaction/compaction.h"
#include "db/db_check.h"
#include "db/db_impl.h" /* the current version, for the tables' blob ranges */
#include "db/options.h"
#include "env/env.h"
#include "env/env_fault.h"
#include "gc/blob_gc.h"
#include "mayfly.h"
#include "version/version_edit.h"
#include "version/version_set.h"

#include "fake_version.h"

/* ---- part one: the policy on hand-built versions ---- */

static struct mayfly_options group_opts(double threshold) {
  struct mayfly_options o;
  options_init_defaults(&o);
  o.enable_blob_garbage_collection = 1;
  o.blob_gc_policy = MF_BLOB_GC_GROUP;
  o.blob_garbage_collection_force_threshold = threshold;
  return o;
}

/* The result of one gc_pick_group call, its arrays freed. */
typedef struct pick {
  int due;
  uint64_t file;
  int n;
  uint64_t tables[FAKE_MAX_TABLES];
  int levels[FAKE_MAX_TABLES];
} pick;

static pick pick_group(const fake_version *f, const struct mayfly_options *o) {
  pick p;
  memset(&p, 0, sizeof p);
  file_meta **tables = NULL;
  int *levels = NULL;
  p.due = gc_pick_group(&f->v, o, &p.file, &tables, &levels, &p.n);
  /* Asked only whether one is due, it must say the same. */
  uint64_t file = 0;
  int n = 0;
  assert_int_equal(gc_pick_group(&f->v, o, &file, NULL, NULL, &n), p.due);
  if (p.due) {
    assert_true(p.n > 0 && p.n <= FAKE_MAX_TABLES);
    for (int i = 0; i < p.n; i++) {
      p.tables[i] = tables[i]->number;
      p.levels[i] = levels[i];
    }
    free(tables);
    free(levels);
  }
  return p;
}

/* A log is due when garbage / total reaches the threshold: exactly at it counts. Threshold 1,
 * GC switched off, or the age policy: never, however much garbage there is. */
static void test_pick_group_threshold(void **state) {
  (void)state;
  static fake_version f;
  fake_init(&f, 3);
  fake_table(&f, 1, 100, 10, 10);
  fake_table(&f, 1, 101, 20, 30);
  fake_garbage(&f, 10, 5); /* 50% */

  struct mayfly_options o = group_opts(0.5);
  pick p = pick_group(&f, &o);
  assert_int_equal(p.due, 1);
  assert_int_equal(p.file, 10);
  assert_int_equal(p.n, 1);
  assert_int_equal(p.tables[0], 100);
  assert_int_equal(p.levels[0], 1);
  o = group_opts(0.51);
  assert_int_equal(pick_group(&f, &o).due, 0);

  fake_garbage(&f, 10, 9); /* 90% */
  o = group_opts(1.0);
  assert_int_equal(pick_group(&f, &o).due, 0);
  o = group_opts(0.5);
  o.enable_blob_garbage_collection = 0;
  assert_int_equal(pick_group(&f, &o).due, 0);
  o = group_opts(0.5);
  o.blob_gc_policy = MF_BLOB_GC_AGE;
  assert_int_equal(pick_group(&f, &o).due, 0);
  o = group_opts(0.9);
  assert_int_equal(pick_group(&f, &o).due, 1);
}

/* The log with the highest garbage ratio goes first, but only one that can be collected: a
 * log already all garbage (it goes by itself) or covered by no table is passed over. The
 * tables returned are every table whose range covers the log, shallowest level first, also
 * those that reference only older and newer logs. */
static void test_pick_group_choice(void **state) {
  (void)state;
  static fake_version f;
  fake_init(&f, 5); /* logs 10..50 */
  fake_table(&f, 1, 100, 10, 10);
  fake_table(&f, 2, 101, 10, 30); /* covers 10, 20 and 30 */
  fake_table(&f, 3, 102, 40, 40);
  fake_garbage(&f, 10, 6);
  fake_garbage(&f, 20, 7);
  fake_garbage(&f, 40, 10); /* all garbage */
  fake_garbage(&f, 50, 9);  /* covered by no table */
  struct mayfly_options o = group_opts(0.5);
  pick p = pick_group(&f, &o);
  assert_int_equal(p.due, 1);
  assert_int_equal(p.file, 20);
  assert_int_equal(p.n, 1);
  assert_int_equal(p.tables[0], 101);
  assert_int_equal(p.levels[0], 2);

  fake_garbage(&f, 20, 5); /* now 10 (60%) leads */
  p = pick_group(&f, &o);
  assert_int_equal(p.file, 10);
  assert_int_equal(p.n, 2);
  assert_int_equal(p.tables[0], 100);
  assert_int_equal(p.levels[0], 1);
  assert_int_equal(p.tables[1], 101);
  assert_int_equal(p.levels[1], 2);

  /* Only logs that cannot be collected are over the threshold: nothing is due. */
  fake_garbage(&f, 10, 0);
  fake_garbage(&f, 20, 0);
  assert_int_equal(pick_group(&f, &o).due, 0);
}

/* A log covered by a level-0 table waits (rewriting a level-0 table in place would reorder
 * level 0); another due log goes meanwhile, and the waiting one goes once the table is
 * below level 0. */
static void test_pick_group_waits_for_level0(void **state) {
  (void)state;
  static fake_version f;
  fake_init(&f, 2);
  file_meta *l0 = fake_table(&f, 0, 100, 10, 10);
  fake_table(&f, 1, 101, 10, 20);
  fake_garbage(&f, 10, 8);
  struct mayfly_options o = group_opts(0.5);
  assert_int_equal(pick_group(&f, &o).due, 0);

  fake_garbage(&f, 20, 6);
  pick p = pick_group(&f, &o);
  assert_int_equal(p.due, 1);
  assert_int_equal(p.file, 20);
  assert_int_equal(p.n, 1);
  assert_int_equal(p.tables[0], 101);

  /* The level-0 table moves to level 2. */
  f.v.num_files[0] = 0;
  f.v.files[2][f.v.num_files[2]++] = l0;
  p = pick_group(&f, &o);
  assert_int_equal(p.file, 10);
  assert_int_equal(p.n, 2);
  assert_int_equal(p.tables[0], 101);
  assert_int_equal(p.levels[0], 1);
  assert_int_equal(p.tables[1], 100);
  assert_int_equal(p.levels[1], 2);
}

/* The picker turns a due log into a group GC: the covering tables are the rewrite set, each
 * deleted from its own level by the edit, never a trivial move; not due, nothing is picked. */
static void test_pick_group_compaction(void **state) {
  (void)state;
  static fake_version f;
  fake_init(&f, 2);
  fake_table(&f, 1, 100, 10, 10);
  fake_table(&f, 1, 101, 20, 20);
  fake_table(&f, 3, 102, 10, 20);
  fake_garbage(&f, 10, 6);
  struct mayfly_options o = group_opts(0.5);
  int rc = -99;
  compaction *c = compaction_pick(NULL, &f.v, &o, NULL, 0, &rc);
  assert_int_equal(rc, MAYFLY_OK);
  assert_non_null(c);
  int reason = c->reason, n = c->num_rewrite, deletes = c->edit.num_deleted_files;
  int trivial = compaction_is_trivial_move(c);
  uint64_t gc_file = c->gc_file, rewritten[2] = {0, 0}, deleted[2] = {0, 0};
  int levels[2] = {-1, -1}, deleted_levels[2] = {-1, -1};
  for (int i = 0; i < n && i < 2; i++) {
    rewritten[i] = c->rewrite[i]->number;
    levels[i] = c->rewrite_levels[i];
  }
  for (int i = 0; i < deletes && i < 2; i++) {
    deleted[i] = c->edit.deleted_files[i].number;
    deleted_levels[i] = c->edit.deleted_files[i].level;
  }
  compaction_free(c);
  assert_int_equal(reason, COMPACTION_GROUP_GC);
  assert_int_equal(gc_file, 10);
  assert_int_equal(n, 2);
  assert_int_equal(rewritten[0], 100);
  assert_int_equal(levels[0], 1);
  assert_int_equal(rewritten[1], 102);
  assert_int_equal(levels[1], 3);
  assert_int_equal(deletes, 2);
  assert_int_equal(deleted[0], 100);
  assert_int_equal(deleted_levels[0], 1);
  assert_int_equal(deleted[1], 102);
  assert_int_equal(deleted_levels[1], 3);
  assert_false(trivial);
  assert_int_equal(f.v.refs, 1); /* the compaction's reference was returned */

  o = group_opts(1.0);
  c = compaction_pick(NULL, &f.v, &o, NULL, 0, &rc);
  assert_int_equal(rc, MAYFLY_OK);
  assert_null(c);
}

/* ---- part two: behaviour through the API ---- */

#define DBNAME "/db"
#include "test_db_util.h"

enum {
  KLEN = 11,      /* key_of: "key%08d" */
  V = 300,        /* a separated value */
  SMALL = 40,     /* an inline value (below min_blob_size) */
  MAX_KEY = 10000 /* keys of the model */
};

static mf_env *g_env;   /* what the database runs on */
static mf_env *g_mem;   /* the mem env below g_env when g_env is a fault env, else NULL */
static mayfly_db *g_db;
static int g_model[MAX_KEY]; /* version of each key, -1: absent */
static int g_len[MAX_KEY];   /* its value length */

static uint64_t rb(size_t vlen) { return blob_record_bytes(KLEN, vlen); }

static void model_reset(void) {
  for (int i = 0; i < MAX_KEY; i++) g_model[i] = -1;
}

static void put_m(mayfly_db *db, int i, int ver, size_t len) {
  put_ver(db, i, ver, len, 0);
  g_model[i] = ver;
  g_len[i] = (int)len;
}

/* Key i reads as the model says (at snap when not NULL, where the model is the caller's). */
static void expect_key(mayfly_db *db, const mayfly_snapshot *snap, int i, int ver, int len) {
  char k[32];
  size_t klen = key_of(i, k);
  void *v = NULL;
  size_t vlen = 0;
  int rc = mayfly_get(db, snap, k, klen, &v, &vlen);
  if (ver < 0) {
    if (rc != MAYFLY_ENOTFOUND) fail_msg("key %d: expected absent, got %s", i, mayfly_strerror(rc));
    return;
  }
  if (rc != MAYFLY_OK) fail_msg("get key %d: %s (%s)", i, mayfly_strerror(rc), mayfly_errmsg(db));
  int got = parse_value(i, v, vlen);
  mayfly_free(v);
  if (got != ver || vlen != (size_t)len)
    fail_msg("key %d: version %d of %zu bytes, expected version %d of %d bytes", i, got, vlen,
             ver, len);
}

static void expect_model(mayfly_db *db) {
  for (int i = 0; i < MAX_KEY; i++)
    if (g_model[i] >= 0) expect_key(db, NULL, i, g_model[i], g_len[i]);
}

/* The options of every part-two test: group policy but threshold 1 (tests lower it when the
 * tree is built), age cutoff 1 (under the age policy every compaction would relocate every
 * value: a compaction that relocates anything here confused the policies), level-0
 * compactions only when asked, flushes of inline-only tables placed down to level 2. */
static struct mayfly_options group_db_opts(mf_env *env) {
  struct mayfly_options o = opts_for(env);
  o.write_buffer_size = 64 * 1024;
  o.level0_file_num_compaction_trigger = 16;
  o.level0_slowdown_writes_trigger = 32;
  o.level0_stop_writes_trigger = 64;
  o.max_mem_compaction_level = 2;
  o.min_blob_size = 100;
  o.enable_blob_garbage_collection = 1;
  o.blob_gc_policy = MF_BLOB_GC_GROUP;
  o.blob_garbage_collection_force_threshold = 1.0;
  o.blob_garbage_collection_age_cutoff = 1.0;
  return o;
}

static mayfly_db *open_db(const struct mayfly_options *o) {
  g_db = open_ok(o);
  return g_db;
}

static void close_db(mayfly_db *db) {
  g_db = NULL;
  close_ok(db);
}

static void drop_env(void) {
  if (g_env) g_env->destroy(g_env);
  if (g_mem) g_mem->destroy(g_mem);
  g_env = g_mem = NULL;
}

static int setup(void **state) {
  (void)state;
  g_env = new_mem_env();
  g_mem = NULL;
  model_reset();
  return 0;
}

static int teardown(void **state) {
  (void)state;
  if (g_db) mayfly_close(g_db);
  g_db = NULL;
  drop_env();
  return 0;
}

/* The env whose directory db_check reads: below the fault env, so the check sees the files
 * as they are and not through armed faults. */
static mf_env *plain_env(void) { return g_mem ? g_mem : g_env; }

/* ---- what the database shows ---- */

static uint64_t group_gcs(mayfly_db *db) { return stat_counter(db, "Group GCs: "); }
static uint64_t relocated(mayfly_db *db) { return stat_counter(db, "Relocated blobs: "); }
static uint64_t blob_written(mayfly_db *db) { return stat_counter(db, "Blob bytes written: "); }

static int files_at(mayfly_db *db, int level) {
  char name[64];
  snprintf(name, sizeof name, "mayfly.num-files-at-level%d", level);
  return (int)prop_u64(db, name);
}

static void expect_shape(mayfly_db *db, int l0, int l1, int l2) {
  int got[3] = {files_at(db, 0), files_at(db, 1), files_at(db, 2)};
  int deeper = 0;
  for (int l = 3; l < MF_NUM_LEVELS; l++) deeper += files_at(db, l);
  if (got[0] != l0 || got[1] != l1 || got[2] != l2 || deeper != 0)
    fail_msg("tables per level L0/L1/L2/deeper: %d/%d/%d/%d, expected %d/%d/%d/0", got[0],
             got[1], got[2], deeper, l0, l1, l2);
}

typedef struct log_line {
  uint64_t number, count, bytes, garbage_count, garbage_bytes;
  int linked;
} log_line;

enum { MAX_LOGS = 64 };

typedef struct logs {
  log_line l[MAX_LOGS];
  int n;
} logs;

/* The per-file lines of mayfly.blob-stats, sorted by number as the property lists them. */
static logs get_logs(mayfly_db *db) {
  logs out;
  out.n = 0;
  char *s = blob_stats(db);
  for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
    log_line b;
    if (sscanf(line, " #%" SCNu64 ": %" SCNu64 " blobs, %" SCNu64 " bytes, garbage %" SCNu64
               " blobs %" SCNu64 " bytes, %d linked tables", &b.number, &b.count, &b.bytes,
               &b.garbage_count, &b.garbage_bytes, &b.linked) == 6) {
      if (out.n == MAX_LOGS) fail_msg("more than %d blob files", MAX_LOGS);
      out.l[out.n++] = b;
    }
  }
  mayfly_free(s);
  return out;
}

static const log_line *find_log(const logs *g, uint64_t number) {
  for (int i = 0; i < g->n; i++)
    if (g->l[i].number == number) return &g->l[i];
  return NULL;
}

/* The one log of after that before lacks; fails unless there is exactly one. */
static uint64_t the_new_log(const logs *before, const logs *after) {
  uint64_t found = 0;
  int n = 0;
  for (int i = 0; i < after->n; i++) {
    if (!find_log(before, after->l[i].number)) {
      found = after->l[i].number;
      n++;
    }
  }
  if (n != 1) fail_msg("%d new blob files, expected exactly one", n);
  return found;
}

static void expect_log(const logs *g, uint64_t number, uint64_t count, uint64_t bytes,
                       uint64_t garbage_count, int linked) {
  const log_line *l = find_log(g, number);
  if (!l) fail_msg("blob file #%06" PRIu64 " is not in the version", number);
  if (l->count != count || l->bytes != bytes || l->garbage_count != garbage_count ||
      l->garbage_bytes != garbage_count * (bytes / count) || l->linked != linked)
    fail_msg("blob file #%06" PRIu64 ": %" PRIu64 " blobs, %" PRIu64 " bytes, garbage %" PRIu64
             " blobs %" PRIu64 " bytes, %d linked; expected %" PRIu64 ", %" PRIu64 ", %" PRIu64
             ", %" PRIu64 ", %d", number, l->count, l->bytes, l->garbage_count, l->garbage_bytes,
             l->linked, count, bytes, garbage_count, garbage_count * (bytes / count), linked);
}

static int blob_on_disk(uint64_t number) {
  char path[64];
  snprintf(path, sizeof path, "%s/%06" PRIu64 ".blob", DBNAME, number);
  return plain_env()->file_exists(plain_env(), path);
}

static uint64_t blob_file_size(uint64_t number) {
  char path[64];
  uint64_t size = 0;
  snprintf(path, sizeof path, "%s/%06" PRIu64 ".blob", DBNAME, number);
  assert_int_equal(plain_env()->file_size(plain_env(), path, &size), MAYFLY_OK);
  return size;
}

/* The version's blob files and the directory's .blob files are the same set. After
 * wait_idle: reads (expect_model's gets) charge seeks, and a seek compaction, then the group
 * GCs it makes due, may be running: a new log on disk before the edit that lists it. */
static void expect_logs_match_disk(mayfly_db *db) {
  ok(db, mayfly_wait_idle(db), "wait_idle");
  logs g = get_logs(db);
  for (int i = 0; i < g.n; i++)
    if (!blob_on_disk(g.l[i].number))
      fail_msg("blob file #%06" PRIu64 " is in the version but not on disk", g.l[i].number);
  int on_disk = count_files(plain_env(), ".blob");
  if (on_disk != g.n) fail_msg("%d .blob files on disk, %d in the version", on_disk, g.n);
}

/* One table of the current version. */
typedef struct table_view {
  int level;
  uint64_t number, entries, oldest, newest;
} table_view;

typedef struct tree_view {
  table_view t[64];
  int n;
} tree_view;

static tree_view get_tree(mayfly_db *db) {
  tree_view out;
  out.n = 0;
  pthread_mutex_lock(&db->mu);
  version *v = version_set_current(db->vs);
  for (int l = 0; l < MF_NUM_LEVELS; l++) {
    for (int i = 0; i < v->num_files[l] && out.n < 64; i++) {
      file_meta *f = v->files[l][i];
      out.t[out.n++] = (table_view){l, f->number, f->num_entries, f->oldest_blob_file,
                                    f->newest_blob_file};
    }
  }
  pthread_mutex_unlock(&db->mu);
  return out;
}

static const table_view *find_table(const tree_view *t, uint64_t number) {
  for (int i = 0; i < t->n; i++)
    if (t->t[i].number == number) return &t->t[i];
  return NULL;
}

/* The only table at level (fails unless there is one); with oldest != 0, the one at level
 * whose oldest blob file is oldest. */
static table_view table_at(const tree_view *t, int level, uint64_t oldest) {
  int n = 0;
  table_view found;
  memset(&found, 0, sizeof found);
  for (int i = 0; i < t->n; i++) {
    if (t->t[i].level != level || (oldest && t->t[i].oldest != oldest)) continue;
    found = t->t[i];
    n++;
  }
  if (n != 1)
    fail_msg("%d tables at level %d linked to %" PRIu64 ", expected one", n, level, oldest);
  return found;
}

/* Whether the group policy has a log due in the current version (after mayfly_wait_idle it
 * must not: background work collects every due log). */
static int group_gc_due(mayfly_db *db) {
  uint64_t file = 0;
  int n = 0;
  pthread_mutex_lock(&db->mu);
  int due = gc_pick_group(version_set_current(db->vs), &db->opt, &file, NULL, NULL, &n);
  pthread_mutex_unlock(&db->mu);
  return due;
}

/* Runs db_check on the closed database: the number of problems, the report in *report
 * (caller frees). */
static uint64_t run_check(char **report) {
  size_t len = 0;
  FILE *f = open_memstream(report, &len);
  assert_non_null(f);
  db_check_counts counts = {0, 0};
  int rc = db_check(DBNAME, plain_env(), f, &counts);
  fclose(f);
  if (rc != MAYFLY_OK) fail_msg("db_check could not run: %s\n%s", mayfly_strerror(rc), *report);
  return counts.problems + counts.leftovers; /* a closed database has no leftovers */
}

/* db_check on the closed database finds no problem; else the test fails with the report. */
static void expect_check_clean(const char *when) {
  char *report = NULL;
  uint64_t problems = run_check(&report);
  if (problems != 0) {
    printf("%s", report);
    free(report);
    fail_msg("db_check %s: %" PRIu64 " problems", when, problems);
  }
  free(report);
}

static void compact_keys(mayfly_db *db, int lo, int hi) {
  char b[32], e[32];
  size_t bl = key_of(lo, b), el = key_of(hi, e);
  ok(db, mayfly_compact_range(db, b, bl, e, el), "compact_range");
  ok(db, mayfly_wait_idle(db), "wait_idle");
}

/* ---- the tree ---- */

/* The tree most tests start from, built with threshold 1 (no group GC can run):
 *
 *   level 1: Q  keys 300..349, values in logs Z and W      blob range [Z, W]
 *   level 2: P  keys 0..99, in logs A and D                blob range [A, D]
 *            S  keys 9000..9009, inline values             no blob range
 *
 * with Z < A < W < D. Log A holds keys 0..99 version 1, and `overwritten` of them (0..n-1)
 * were overwritten into log D, whose compaction into P dropped their old versions: A has n
 * of 100 records as garbage. A group GC of A must rewrite P (which references it) and Q
 * (whose range covers it), each at its own level. How: S is an inline-only flush, placed at
 * level 2; A is flushed and compacted down next to S by a ranged compact_range; Z and W are
 * flushed with overlapping keys and merged into level 1 by a level-0 compaction (trigger 2),
 * which compact_range would have pushed on to level 2. */
typedef struct tree {
  uint64_t log_z, log_a, log_w, log_d;
  uint64_t table_p, table_q, table_s;
  uint64_t flush_blob_bytes; /* "Blob bytes written" after the last flush */
} tree;

static uint64_t flush_new_log(mayfly_db *db, int expect_count) {
  logs before = get_logs(db);
  flush(db);
  logs after = get_logs(db);
  uint64_t n = the_new_log(&before, &after);
  expect_log(&after, n, (uint64_t)expect_count, (uint64_t)expect_count * rb(V), 0, 1);
  return n;
}

static void build_tree(mayfly_db *db, tree *t, int overwritten) {
  memset(t, 0, sizeof *t);
  for (int i = 9000; i < 9010; i++) put_m(db, i, 1, SMALL);
  flush(db);
  expect_shape(db, 0, 0, 1);
  assert_int_equal(get_logs(db).n, 0);
  tree_view tv = get_tree(db);
  t->table_s = table_at(&tv, 2, 0).number;

  for (int i = 300; i < 350; i += 2) put_m(db, i, 1, V);
  t->log_z = flush_new_log(db, 25);
  for (int i = 0; i < 100; i++) put_m(db, i, 1, V);
  t->log_a = flush_new_log(db, 100);
  compact_keys(db, 0, 99);
  expect_shape(db, 1, 0, 2);

  for (int i = 301; i < 350; i += 2) put_m(db, i, 1, V);
  t->log_w = flush_new_log(db, 25);
  set_opt(db, "level0_file_num_compaction_trigger", "2");
  ok(db, mayfly_wait_idle(db), "wait_idle");
  set_opt(db, "level0_file_num_compaction_trigger", "16");
  expect_shape(db, 0, 1, 2);

  for (int i = 0; i < overwritten; i++) put_m(db, i, 2, V);
  t->log_d = flush_new_log(db, overwritten);
  t->flush_blob_bytes = blob_written(db);
  compact_keys(db, 0, overwritten - 1);
  expect_shape(db, 0, 1, 2);

  assert_true(t->log_z < t->log_a && t->log_a < t->log_w && t->log_w < t->log_d);
  tv = get_tree(db);
  table_view q = table_at(&tv, 1, 0), p = table_at(&tv, 2, t->log_a);
  t->table_q = q.number;
  t->table_p = p.number;
  assert_int_equal(q.entries, 50);
  assert_int_equal(q.oldest, t->log_z);
  assert_int_equal(q.newest, t->log_w);
  assert_int_equal(p.entries, 100);
  assert_int_equal(p.newest, t->log_d);
  assert_non_null(find_table(&tv, t->table_s));
}

/* ---- promise 1: every flush writes its own log ---- */

/* Three flushes with overlapping keys, each mixing separated and inline values: each flush
 * adds exactly one log holding exactly its separated values, and the level-0 table it adds
 * references that log and no other. "Blob bytes written" grows by the new file's size. */
static void test_flush_writes_own_log(void **state) {
  (void)state;
  struct mayfly_options o = group_db_opts(g_env);
  mayfly_db *db = open_db(&o);
  uint64_t prev_log = 0, written = 0;
  for (int f = 0; f < 3; f++) {
    int big = 0;
    for (int i = f * 10; i < 60 + f * 10; i++) {
      int separated = (i + f) % 3 != 0;
      put_m(db, i, f + 1, separated ? V : SMALL);
      big += separated;
    }
    tree_view before = get_tree(db);
    uint64_t log = flush_new_log(db, big);
    assert_true(log > prev_log);
    tree_view after = get_tree(db);
    assert_int_equal(after.n, before.n + 1);
    const table_view *added = NULL;
    for (int i = 0; i < after.n; i++)
      if (!find_table(&before, after.t[i].number)) added = &after.t[i];
    assert_non_null(added);
    assert_int_equal(added->level, 0);
    assert_int_equal(added->entries, 60);
    assert_int_equal(added->oldest, log);
    assert_int_equal(added->newest, log);
    written += blob_file_size(log);
    assert_int_equal(blob_written(db), written);
    prev_log = log;
  }
  expect_shape(db, 3, 0, 0);
  assert_int_equal(get_logs(db).n, 3);
  assert_int_equal(relocated(db), 0);
  expect_model(db);
  expect_logs_match_disk(db);
  close_db(db);
}

/* ---- promise 2: compactions carry references over ---- */

/* Building the tree runs three compactions (two manual ones through two levels each, one
 * level-0 compaction), one of which drops 60 overwritten values. None of them writes a blob
 * byte or relocates a value, even with the age cutoff at 1: the logs are exactly the four
 * flushes' logs, A counts the 60 dropped values as garbage and nothing else has any. */
static void test_compaction_carries_references(void **state) {
  (void)state;
  struct mayfly_options o = group_db_opts(g_env);
  mayfly_db *db = open_db(&o);
  tree t;
  build_tree(db, &t, 60);
  logs g = get_logs(db);
  assert_int_equal(g.n, 4);
  expect_log(&g, t.log_z, 25, 25 * rb(V), 0, 1);  /* linked to Q */
  expect_log(&g, t.log_a, 100, 100 * rb(V), 60, 1); /* linked to P */
  expect_log(&g, t.log_w, 25, 25 * rb(V), 0, 0);
  expect_log(&g, t.log_d, 60, 60 * rb(V), 0, 0);
  assert_int_equal(relocated(db), 0);
  assert_int_equal(group_gcs(db), 0);
  assert_int_equal(blob_written(db), t.flush_blob_bytes);
  assert_int_equal(prop_u64(db, "mayfly.total-blob-size"), 210 * rb(V));
  assert_int_equal(prop_u64(db, "mayfly.blob-garbage-size"), 60 * rb(V));
  /* Another pass over everything: all of it is rewritten, still nothing moves. */
  compact_all(db);
  assert_int_equal(relocated(db), 0);
  assert_int_equal(blob_written(db), t.flush_blob_bytes);
  g = get_logs(db);
  assert_int_equal(g.n, 4);
  assert_int_equal(prop_u64(db, "mayfly.total-blob-size"), 210 * rb(V));
  assert_int_equal(prop_u64(db, "mayfly.blob-garbage-size"), 60 * rb(V));
  expect_model(db);
  expect_logs_match_disk(db);
  close_db(db);
}

/* ---- promise 3: a due log is collected ---- */

/* The checks after the group GC of log A in the tree (overwritten of its 100 values dead):
 * one group GC, A's live values relocated into one new log N, A gone from the version and
 * the disk, P and Q replaced by one table each at their own levels with the same entries,
 * S untouched, the other logs untouched. Returns N. */
static uint64_t expect_collected(mayfly_db *db, const tree *t, int overwritten,
                                 uint64_t written_before) {
  int live = 100 - overwritten;
  assert_int_equal(group_gcs(db), 1);
  assert_int_equal(relocated(db), (uint64_t)live);
  char *s = blob_stats(db);
  char want[64];
  snprintf(want, sizeof want, "Relocated blobs: %d (%" PRIu64 " bytes)", live, live * rb(V));
  int found = strstr(s, want) != NULL;
  mayfly_free(s);
  if (!found) fail_msg("blob stats lack \"%s\"", want);

  logs g = get_logs(db);
  if (find_log(&g, t->log_a)) fail_msg("log A #%06" PRIu64 " is still in the version", t->log_a);
  assert_int_equal(g.n, 4);
  uint64_t n = g.l[g.n - 1].number; /* the newest */
  assert_true(n > t->log_d);
  expect_log(&g, n, (uint64_t)live, live * rb(V), 0, 0);
  expect_log(&g, t->log_z, 25, 25 * rb(V), 0, 1);
  expect_log(&g, t->log_w, 25, 25 * rb(V), 0, 0);
  expect_log(&g, t->log_d, (uint64_t)overwritten, overwritten * rb(V), 0, 1);
  assert_int_equal(prop_u64(db, "mayfly.blob-garbage-size"), 0);
  assert_int_equal(prop_u64(db, "mayfly.total-blob-size"), (50 + 100) * rb(V));
  assert_int_equal(blob_written(db), written_before + blob_file_size(n));

  expect_shape(db, 0, 1, 2);
  tree_view tv = get_tree(db);
  table_view q = table_at(&tv, 1, 0), p = table_at(&tv, 2, t->log_d);
  assert_int_not_equal(q.number, t->table_q);
  assert_int_equal(q.entries, 50);
  assert_int_equal(q.oldest, t->log_z);
  assert_int_equal(q.newest, t->log_w);
  assert_int_not_equal(p.number, t->table_p);
  assert_int_equal(p.entries, 100);
  assert_int_equal(p.newest, n);
  assert_non_null(find_table(&tv, t->table_s));
  return n;
}

/* Lowering the threshold to 0.5 with A at 60% garbage collects A by background work alone,
 * with exactly the outcome of expect_collected; nothing is due afterwards. */
static void test_group_gc_rewrites_covering_tables(void **state) {
  (void)state;
  struct mayfly_options o = group_db_opts(g_env);
  mayfly_db *db = open_db(&o);
  tree t;
  build_tree(db, &t, 60);
  uint64_t written = blob_written(db);
  tree_view tv = get_tree(db);
  const table_view *p = find_table(&tv, t.table_p), *q = find_table(&tv, t.table_q);
  assert_non_null(p);
  assert_non_null(q);
  assert_true(p->level != q->level);
  uint64_t keys_in[MF_NUM_LEVELS];
  pthread_mutex_lock(&db->mu);
  for (int l = 0; l < MF_NUM_LEVELS; l++) keys_in[l] = db->level_stats[l].keys_in;
  pthread_mutex_unlock(&db->mu);
  set_opt(db, "blob_garbage_collection_force_threshold", "0.5");
  ok(db, mayfly_wait_idle(db), "wait_idle");
  expect_collected(db, &t, 60, written);
  assert_false(blob_on_disk(t.log_a));
  assert_false(group_gc_due(db));
  /* mayfly.stats counts each rewritten table at its own level */
  pthread_mutex_lock(&db->mu);
  uint64_t p_in = db->level_stats[p->level].keys_in - keys_in[p->level];
  uint64_t q_in = db->level_stats[q->level].keys_in - keys_in[q->level];
  pthread_mutex_unlock(&db->mu);
  assert_int_equal(p_in, p->entries);
  assert_int_equal(q_in, q->entries);
  expect_model(db);
  expect_logs_match_disk(db);
  close_db(db);
}

/* A log referenced from several tables of one level: 4000 values flushed into one log and
 * compacted into level 1 (cut into tables of 64 KiB), 60% of them overwritten and compacted
 * again. The group GC rewrites every level-1 table in place and the 1600 live values of the
 * log move together into ONE new log, not one per table. (A bigger memtable here, so the
 * 4000 values make one flush and one log.) */
static void test_group_gc_one_new_log(void **state) {
  (void)state;
  enum { N = 4000, OVER = 2400, VL = 100 };
  struct mayfly_options o = group_db_opts(g_env);
  o.write_buffer_size = 2u << 20;
  o.target_file_size_base = 64 * 1024;
  mayfly_db *db = open_db(&o);
  for (int i = 0; i < N; i++) put_m(db, i, 1, VL);
  logs before = get_logs(db);
  flush(db);
  logs after = get_logs(db);
  uint64_t log_a = the_new_log(&before, &after);
  compact_all(db);
  for (int i = 0; i < OVER; i++) put_m(db, i, 2, VL);
  flush(db);
  compact_all(db);
  int tables = files_at(db, 1);
  expect_shape(db, 0, tables, 0);
  if (tables < 2) fail_msg("setup: %d level-1 tables, expected several", tables);
  tree_view tv = get_tree(db);
  int referencing = 0, only_a = 0;
  for (int i = 0; i < tv.n; i++) {
    referencing += tv.t[i].oldest == log_a;
    only_a += tv.t[i].oldest == log_a && tv.t[i].newest == log_a;
  }
  if (referencing < 2) fail_msg("setup: %d tables reference log A, expected several", referencing);
  logs g = get_logs(db);
  assert_int_equal(g.n, 2);
  expect_log(&g, log_a, N, N * rb(VL), OVER, referencing);

  before = get_logs(db);
  set_opt(db, "blob_garbage_collection_force_threshold", "0.5");
  ok(db, mayfly_wait_idle(db), "wait_idle");
  assert_int_equal(group_gcs(db), 1);
  assert_int_equal(relocated(db), N - OVER);
  after = get_logs(db);
  assert_null(find_log(&after, log_a));
  uint64_t n = the_new_log(&before, &after);
  /* The tables that referenced only A now reference only the new log. */
  expect_log(&after, n, N - OVER, (N - OVER) * rb(VL), 0, only_a);
  assert_int_equal(after.n, 2);
  expect_shape(db, 0, tables, 0);
  tree_view tv2 = get_tree(db);
  for (int i = 0; i < tv.n; i++)
    if (find_table(&tv2, tv.t[i].number))
      fail_msg("table #%06" PRIu64 " covered log A and was not rewritten", tv.t[i].number);
  uint64_t entries = 0;
  for (int i = 0; i < tv2.n; i++) entries += tv2.t[i].entries;
  assert_int_equal(entries, N);
  assert_false(blob_on_disk(log_a));
  expect_model(db);
  expect_logs_match_disk(db);
  close_db(db);
  expect_check_clean("after a group GC of several tables");
}

/* ---- promise 4: the threshold ---- */

/* A at 60% garbage: threshold 1 (the default) or 0.61 collects nothing, nor does 0.6 with GC
 * switched off; 0.6 exactly ("reaches") collects it. A at 99% with threshold 1: nothing. */
static void test_threshold(void **state) {
  (void)state;
  struct mayfly_options o = group_db_opts(g_env);
  mayfly_db *db = open_db(&o);
  tree t;
  build_tree(db, &t, 60);
  uint64_t written = blob_written(db);
  static const char *const not_due[] = {"1", "0.61"};
  for (int i = 0; i < 2; i++) {
    set_opt(db, "blob_garbage_collection_force_threshold", not_due[i]);
    ok(db, mayfly_wait_idle(db), "wait_idle");
    if (group_gcs(db) != 0) fail_msg("threshold %s with 60%% garbage: a group GC ran", not_due[i]);
  }
  set_opt(db, "enable_blob_garbage_collection", "false");
  set_opt(db, "blob_garbage_collection_force_threshold", "0.6");
  ok(db, mayfly_wait_idle(db), "wait_idle");
  assert_int_equal(group_gcs(db), 0);
  logs g = get_logs(db);
  expect_log(&g, t.log_a, 100, 100 * rb(V), 60, 1);
  assert_int_equal(relocated(db), 0);
  assert_int_equal(blob_written(db), written);
  set_opt(db, "enable_blob_garbage_collection", "true");
  ok(db, mayfly_wait_idle(db), "wait_idle");
  expect_collected(db, &t, 60, written);
  expect_model(db);
  close_db(db);
  drop_env();

  /* 99 of 100 dead, default threshold: A stays with its garbage. */
  g_env = new_mem_env();
  model_reset();
  o = group_db_opts(g_env);
  db = open_db(&o);
  build_tree(db, &t, 99);
  put_m(db, 5000, 1, V); /* some more work after the tree, in case GC waits for some */
  flush(db);
  compact_all(db);
  assert_int_equal(group_gcs(db), 0);
  assert_int_equal(relocated(db), 0);
  g = get_logs(db);
  const log_line *a = find_log(&g, t.log_a);
  assert_non_null(a);
  assert_int_equal(a->garbage_count, 99);
  assert_true(blob_on_disk(t.log_a));
  expect_model(db);
  close_db(db);
}

/* ---- promise 5: readers, reopen, check ---- */

static int iter_key_index(mayfly_iter *it) {
  size_t klen = 0;
  const char *k = mayfly_iter_key(it, &klen);
  assert_int_equal(klen, KLEN);
  return atoi(k + 3);
}

/* Reads the iterator's entry and checks it against the versions the iterator must see. */
static void expect_iter_entry(mayfly_iter *it, const int *ver, const int *len) {
  int i = iter_key_index(it);
  size_t vlen = 0;
  const void *v = mayfly_iter_value(it, &vlen);
  if (!v) fail_msg("iterator at key %d: no value (%s)", i, mayfly_strerror(mayfly_iter_status(it)));
  int got = parse_value(i, v, vlen);
  if (got != ver[i] || vlen != (size_t)len[i])
    fail_msg("iterator at key %d: version %d of %zu bytes, expected %d of %d", i, got, vlen,
             ver[i], len[i]);
}

/* A snapshot held while values are overwritten keeps them out of the garbage count (no GC
 * even at threshold 0.5); once released, the values it kept become garbage and A is
 * collected. A snapshot and an iterator taken before that group GC read the versions they
 * saw, from the relocated copies and from the old log, which stays on disk until the
 * iterator is gone. */
static void test_snapshot_and_iterator_across_group_gc(void **state) {
  (void)state;
  struct mayfly_options o = group_db_opts(g_env);
  o.blob_garbage_collection_force_threshold = 0.5;
  mayfly_db *db = open_db(&o);
  tree t;
  /* The tree with nothing overwritten yet, then 60 overwrites under a snapshot. */
  build_tree(db, &t, 1);
  const mayfly_snapshot *s1 = NULL;
  ok(db, mayfly_snapshot_create(db, &s1), "snapshot");
  static int s1_ver[MAX_KEY], s1_len[MAX_KEY];
  memcpy(s1_ver, g_model, sizeof s1_ver);
  memcpy(s1_len, g_len, sizeof s1_len);
  for (int i = 0; i < 60; i++) put_m(db, i, 3, V);
  flush(db);
  compact_keys(db, 0, 59);
  logs g = get_logs(db);
  expect_log(&g, t.log_a, 100, 100 * rb(V), 1, 1); /* only key 0's first overwrite */
  assert_int_equal(group_gcs(db), 0);
  for (int i = 0; i < 100; i++) expect_key(db, s1, i, s1_ver[i], s1_len[i]);

  /* Released: the next compaction of P drops what s1 kept. Threshold 1 meanwhile, so the
   * group GC waits for the readers below. */
  set_opt(db, "blob_garbage_collection_force_threshold", "1");
  mayfly_snapshot_release(db, s1);
  put_m(db, 0, 4, V);
  flush(db);
  compact_keys(db, 0, 0);
  g = get_logs(db);
  expect_log(&g, t.log_a, 100, 100 * rb(V), 60, 1);

  const mayfly_snapshot *s2 = NULL;
  ok(db, mayfly_snapshot_create(db, &s2), "snapshot");
  static int s2_ver[MAX_KEY], s2_len[MAX_KEY];
  memcpy(s2_ver, g_model, sizeof s2_ver);
  memcpy(s2_len, g_len, sizeof s2_len);
  mayfly_iter *it = NULL;
  ok(db, mayfly_iter_create(db, NULL, &it), "iter_create");
  mayfly_iter_seek_to_first(it);
  for (int k = 0; k < 30; k++, mayfly_iter_next(it)) {
    assert_true(mayfly_iter_valid(it));
    assert_int_equal(iter_key_index(it), k);
    expect_iter_entry(it, s2_ver, s2_len);
  }
  /* Newer versions of keys A still holds live, in a level-0 table (its log is newer than A,
   * so it does not hold the GC back). */
  for (int i = 60; i < 80; i++) put_m(db, i, 5, V);
  flush(db);

  uint64_t gcs = group_gcs(db);
  set_opt(db, "blob_garbage_collection_force_threshold", "0.5");
  ok(db, mayfly_wait_idle(db), "wait_idle");
  assert_int_equal(group_gcs(db), gcs + 1);
  g = get_logs(db);
  assert_null(find_log(&g, t.log_a));
  if (!blob_on_disk(t.log_a)) {
    mayfly_iter_destroy(it);
    mayfly_snapshot_release(db, s2);
    fail_msg("log A was deleted while an iterator still reads its version");
  }

  /* The iterator goes on through the old version: keys 30..99, 300..349, 9000..9009 as they
   * were when it was made. */
  int seen = 30;
  for (; mayfly_iter_valid(it); mayfly_iter_next(it), seen++) expect_iter_entry(it, s2_ver, s2_len);
  int status = mayfly_iter_status(it);
  mayfly_iter_destroy(it);
  ok(db, status, "iterator status");
  assert_int_equal(seen, 100 + 50 + 10);
  for (int i = 0; i < MAX_KEY; i++)
    if (s2_ver[i] >= 0) expect_key(db, s2, i, s2_ver[i], s2_len[i]);
  expect_model(db);
  mayfly_snapshot_release(db, s2);

  /* No reader left: the next sweep (after a flush) removes A. */
  put_m(db, 9000, 2, SMALL);
  flush(db);
  ok(db, mayfly_wait_idle(db), "wait_idle");
  assert_false(blob_on_disk(t.log_a));
  expect_logs_match_disk(db);
  expect_model(db);
  close_db(db);
  expect_check_clean("after group GC under readers");
}

/* After a group GC: db_check on the closed database finds no problem (no leftover, garbage
 * counts equal a recount); reopened, every value reads, the logs and tables (with their blob
 * ranges) are as they were, and nothing is due. */
static void test_reopen_and_check_after_group_gc(void **state) {
  (void)state;
  struct mayfly_options o = group_db_opts(g_env);
  mayfly_db *db = open_db(&o);
  tree t;
  build_tree(db, &t, 70);
  uint64_t written = blob_written(db);
  set_opt(db, "blob_garbage_collection_force_threshold", "0.5");
  ok(db, mayfly_wait_idle(db), "wait_idle");
  expect_collected(db, &t, 70, written);
  logs before = get_logs(db);
  tree_view tv_before = get_tree(db);
  close_db(db);
  expect_check_clean("after a group GC");

  o.blob_garbage_collection_force_threshold = 0.5;
  db = open_db(&o);
  ok(db, mayfly_wait_idle(db), "wait_idle");
  assert_int_equal(group_gcs(db), 0);
  logs after = get_logs(db);
  assert_int_equal(after.n, before.n);
  for (int i = 0; i < before.n; i++) {
    const log_line *b = &before.l[i];
    expect_log(&after, b->number, b->count, b->bytes, b->garbage_count, b->linked);
  }
  tree_view tv_after = get_tree(db);
  assert_int_equal(tv_after.n, tv_before.n);
  for (int i = 0; i < tv_before.n; i++) {
    const table_view *a = &tv_before.t[i], *b = find_table(&tv_after, a->number);
    if (!b) fail_msg("table #%06" PRIu64 " lost by reopen", a->number);
    if (b->level != a->level || b->entries != a->entries || b->oldest != a->oldest ||
        b->newest != a->newest)
      fail_msg("table #%06" PRIu64 ": level %d, %" PRIu64 " entries, blobs %" PRIu64 "..%" PRIu64
               " after reopen; before: level %d, %" PRIu64 ", %" PRIu64 "..%" PRIu64, a->number,
               b->level, b->entries, b->oldest, b->newest, a->level, a->entries, a->oldest,
               a->newest);
  }
  expect_model(db);
  expect_logs_match_disk(db);
  close_db(db);
  expect_check_clean("after reopen");
}

/* ---- promise 6: failures ---- */

static const char *const kind_names[] = {"read",   "write",  "sync",    "rename",
                                         "unlink", "create", "dir sync"};

/* Problems of the fault runs, reported together at the end (one fault may hit several
 * calls, and the list tells more than the first of them). */
static char g_fault_problems[16384];

static void fault_problem(const char *fmt, ...) MF_PRINTF(1, 2);
static void fault_problem(const char *fmt, ...) {
  size_t used = strlen(g_fault_problems);
  va_list ap;
  va_start(ap, fmt);
  if (used + 2 < sizeof g_fault_problems)
    vsnprintf(g_fault_problems + used, sizeof g_fault_problems - used - 1, fmt, ap);
  va_end(ap);
  used = strlen(g_fault_problems);
  if (used + 1 < sizeof g_fault_problems) strcat(g_fault_problems, "\n");
}

/* Whether report has no problem line and every leftover line names one of the given table
 * and blob file numbers (blob 0: none). */
static int only_leftovers_of(const char *report, const uint64_t *tables, int num_tables,
                             uint64_t blob) {
  if (strstr(report, "problem: ")) return 0;
  const char *line = report;
  while ((line = strstr(line, "leftover: ")) != NULL) {
    uint64_t number = 0;
    char ext[8] = "";
    if (sscanf(line, "leftover: " DBNAME "/%" SCNu64 ".%7[a-z]:", &number, ext) != 2) return 0;
    int known = strcmp(ext, "blob") == 0 && number == blob;
    for (int i = 0; i < num_tables; i++) known |= strcmp(ext, "sst") == 0 && number == tables[i];
    if (!known) return 0;
    line++;
  }
  return 1;
}

/* Whether report has no problem line and every leftover line names a file numbered above
 * limit (files made after limit was read: the failed job's outputs). */
static int only_leftovers_above(const char *report, uint64_t limit) {
  if (strstr(report, "problem: ")) return 0;
  const char *line = report;
  while ((line = strstr(line, "leftover: ")) != NULL) {
    uint64_t number = 0;
    if (sscanf(line, "leftover: " DBNAME "/%" SCNu64 ".", &number) != 1 || number <= limit)
      return 0;
    line++;
  }
  return 1;
}

/* The largest file number in the database directory. */
static uint64_t max_file_number(mf_env *env) {
  char **names = NULL;
  size_t count = 0;
  assert_int_equal(env->list_dir(env, DBNAME, &names, &count), MAYFLY_OK);
  uint64_t max = 0;
  for (size_t i = 0; i < count; i++) {
    uint64_t number = strtoull(names[i], NULL, 10);
    if (number > max) max = number;
  }
  env_free_names(names, count);
  return max;
}

/* One run: the tree on a fault env, then the n-th call of kind fails while the group GC of A
 * (rewriting P and Q) runs. Returns whether the fault fired. Checks: a fault in the job
 * surfaces (wait_idle and the next write fail, the GC is not counted); after close, db_check
 * finds no problem, in particular no leftover (collected in g_fault_problems); reopened, every
 * value is there, the GC completes and db_check is clean.
 *
 * One case cannot be clean before the next open: a write or sync of the MANIFEST failed while
 * it took the job's edit. Whether the edit reached the file is then unknown to the engine (a
 * failed sync may follow a complete write, and the env buffers appends until the sync), so
 * it deletes neither the job's inputs nor its outputs and leaves the choice to the next open,
 * which reads the MANIFEST. Depending on what the file holds, db_check then sees the inputs
 * (P, Q and log A) or the outputs (the files numbered after the tree was built) as leftovers,
 * never a mix and nothing else. */
static int fault_run(int kind, uint64_t nth) {
  model_reset();
  assert_int_equal(env_mem_create(&g_mem), MAYFLY_OK);
  assert_int_equal(env_fault_create(g_mem, &g_env), MAYFLY_OK);
  struct mayfly_options o = group_db_opts(g_env);
  mayfly_db *db = open_db(&o);
  tree t;
  build_tree(db, &t, 60);
  uint64_t last_before = max_file_number(g_mem);

  env_fault_set(g_env, kind, nth, 0, ENV_FAULT_EIO);
  set_opt(db, "blob_garbage_collection_force_threshold", "0.5");
  int rc = mayfly_wait_idle(db);
  int fired = env_fault_injected(g_env) > 0;
  env_fault_clear(g_env);
  char path[256];
  env_fault_first_path(g_env, path, sizeof path);
  int in_info_log = strstr(path, "/LOG") != NULL; /* LOG write errors are ignored by design */
  int manifest_fault = (kind == ENV_FAULT_SYNC || kind == ENV_FAULT_WRITE) &&
                       strstr(path, "/MANIFEST-") != NULL;
  uint64_t gcs = group_gcs(db);
  char what[300];
  snprintf(what, sizeof what, "%s #%" PRIu64 " (%s)", kind_names[kind], nth, path);
  if (!fired) {
    if (rc != MAYFLY_OK) fail_msg("%s: no fault fired, yet: %s", what, mayfly_errmsg(db));
    assert_int_equal(gcs, 1);
  } else if (!in_info_log) {
    if (rc == MAYFLY_OK)
      fail_msg("%s: the fault went unnoticed (%" PRIu64 " group GCs)", what, gcs);
    if (gcs != 0) fail_msg("%s: the failed group GC was counted", what);
    int wrc = mayfly_put(db, "zzz", 3, "x", 1, 0);
    if (wrc == MAYFLY_OK) fail_msg("%s: a write succeeded after the background error", what);
  }
  g_db = NULL;
  mayfly_close(db); /* may report the background error */
  char *report = NULL;
  uint64_t problems = run_check(&report);
  uint64_t inputs[2] = {t.table_p, t.table_q};
  if (problems && !(manifest_fault && (only_leftovers_of(report, inputs, 2, t.log_a) ||
                                        only_leftovers_above(report, last_before)))) {
    char names[256] = "";
    for (char *line = strtok(report, "\n"); line; line = strtok(NULL, "\n")) {
      if (strncmp(line, "problem: ", 9) != 0) continue;
      size_t used = strlen(names);
      snprintf(names + used, sizeof names - used, " %.*s", (int)strcspn(line + 9, ":"),
               line + 9);
    }
    fault_problem("  %s failed: %" PRIu64 " problems after close:%s", what, problems, names);
  }
  free(report);

  db = open_db(&o);
  expect_model(db);
  set_opt(db, "blob_garbage_collection_force_threshold", "0.5");
  ok(db, mayfly_wait_idle(db), "wait_idle after reopen");
  logs g = get_logs(db);
  if (find_log(&g, t.log_a)) fail_msg("%s: log A still there after reopen and GC", what);
  expect_model(db);
  expect_logs_match_disk(db);
  close_db(db);
  char when[400];
  snprintf(when, sizeof when, "after reopen, %s had failed", what);
  expect_check_clean(when);
  drop_env();
  return fired;
}

/* For each kind of call the job makes (write, sync, create, directory sync, read), the first,
 * second, ... call fails, until the job completes without reaching the armed call. */
static void test_fault_during_group_gc(void **state) {
  (void)state;
  drop_env(); /* fault_run makes its own */
  g_fault_problems[0] = '\0';
  static const int kinds[] = {ENV_FAULT_WRITE, ENV_FAULT_SYNC, ENV_FAULT_DIR_SYNC,
                              ENV_FAULT_CREATE, ENV_FAULT_READ};
  /* At least: P, Q and the new log written, synced and created; one directory sync. */
  static const uint64_t min_calls[] = {3, 3, 1, 3, 1};
  for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
    uint64_t nth = 1;
    while (fault_run(kinds[k], nth)) {
      nth++;
      if (nth > 500) fail_msg("%s: the group GC never completes", kind_names[kinds[k]]);
    }
    printf("test_blob_group: %s: %" PRIu64 " calls failed one at a time\n",
           kind_names[kinds[k]], nth - 1);
    if (nth - 1 < min_calls[k])
      fail_msg("%s: only %" PRIu64 " calls during a two-table group GC", kind_names[kinds[k]],
               nth - 1);
  }
  if (g_fault_problems[0]) {
    printf("db_check after closing a database whose group GC failed:\n%s", g_fault_problems);
    fail_msg("problems left behind by a failed group GC (listed above)");
  }
}

/* ---- randomized ---- */

static uint64_t g_rng;

static uint32_t rnd(uint32_t n) {
  g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)(g_rng >> 33) % n;
}

static uint64_t test_seed(void) {
  const char *s = getenv("MAYFLY_TEST_SEED");
  uint64_t seed = s && *s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL);
  printf("test_blob_group: seed %" PRIu64 " (replay with MAYFLY_TEST_SEED=%" PRIu64 ")\n", seed,
         seed);
  return seed;
}

/* Rounds of random overwrites and deletes of 400 keys, flushes and ranged compactions, with a
 * snapshot now and then and a reopen every few rounds, against a model. With threshold 1
 * (first run): no group GC, nothing relocated, and every log is a flush's log. With 0.3:
 * group GCs run, and after each wait_idle no log is due. Both: every value as the model says,
 * the version's logs are the directory's, db_check is clean at the end. */
static void random_run(const char *threshold, uint64_t seed) {
  enum { N = 400, ROUNDS = 12 };
  g_rng = seed;
  model_reset();
  struct mayfly_options o = group_db_opts(g_env);
  o.blob_garbage_collection_force_threshold = strtod(threshold, NULL);
  mayfly_db *db = open_db(&o);
  int collect = o.blob_garbage_collection_force_threshold < 1.0;
  uint64_t flush_logs[256];
  int num_flush_logs = 0;
  uint64_t gcs_total = 0;
  int ver = 1;
  for (int round = 0; round < ROUNDS; round++) {
    /* Flushes (also those a full memtable starts) may add logs until the flush below is
     * done; with threshold 1, nothing after it may. */
    logs before = get_logs(db);
    int writes = 50 + (int)rnd(150);
    for (int w = 0; w < writes; w++) {
      int i = (int)rnd(N);
      if (rnd(8) == 0) {
        del_key(db, i, 0);
        g_model[i] = -1;
      } else {
        put_m(db, i, ver++, rnd(4) == 0 ? SMALL : 100 + rnd(300));
      }
    }
    const mayfly_snapshot *snap = NULL;
    if (rnd(3) == 0) ok(db, mayfly_snapshot_create(db, &snap), "snapshot");
    flush(db);
    ok(db, mayfly_wait_idle(db), "wait_idle");
    logs after = get_logs(db);
    if (!collect) {
      for (int j = 0; j < after.n; j++)
        if (!find_log(&before, after.l[j].number) && num_flush_logs < 256)
          flush_logs[num_flush_logs++] = after.l[j].number;
    }
    int lo = (int)rnd(N), hi = lo + (int)rnd(N - lo);
    compact_keys(db, lo, hi);
    if (rnd(2)) compact_all(db);
    if (snap) mayfly_snapshot_release(db, snap);
    ok(db, mayfly_wait_idle(db), "wait_idle");
    if (group_gc_due(db)) fail_msg("round %d: a log is due after wait_idle", round);
    if (!collect) {
      logs now = get_logs(db);
      for (int j = 0; j < now.n; j++) {
        int known = 0;
        for (int f = 0; f < num_flush_logs; f++) known |= flush_logs[f] == now.l[j].number;
        if (!known)
          fail_msg("round %d: log #%06" PRIu64 " appeared during compactions", round,
                   now.l[j].number);
      }
      assert_int_equal(group_gcs(db), 0);
      assert_int_equal(relocated(db), 0);
    }
    expect_model(db);
    expect_logs_match_disk(db);
    if (round % 4 == 3) {
      gcs_total += group_gcs(db);
      close_db(db);
      expect_check_clean("after a random round");
      db = open_db(&o);
    }
  }
  gcs_total += group_gcs(db);
  printf("test_blob_group: threshold %s: %" PRIu64 " group GCs\n", threshold, gcs_total);
  if (collect && gcs_total == 0)
    fail_msg("threshold %s: no group GC in %d rounds", threshold, ROUNDS);
  close_db(db);
  expect_check_clean("after the random run");
}

static void test_random_workload(void **state) {
  (void)state;
  uint64_t seed = test_seed();
  random_run("1", seed);
  drop_env();
  g_env = new_mem_env();
  random_run("0.3", seed);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pick_group_threshold),
      cmocka_unit_test(test_pick_group_choice),
      cmocka_unit_test(test_pick_group_waits_for_level0),
      cmocka_unit_test(test_pick_group_compaction),
      cmocka_unit_test_setup_teardown(test_flush_writes_own_log, setup, teardown),
      cmocka_unit_test_setup_teardown(test_compaction_carries_references, setup, teardown),
      cmocka_unit_test_setup_teardown(test_group_gc_rewrites_covering_tables, setup, teardown),
      cmocka_unit_test_setup_teardown(test_group_gc_one_new_log, setup, teardown),
      cmocka_unit_test_setup_teardown(test_threshold, setup, teardown),
      cmocka_unit_test_setup_teardown(test_snapshot_and_iterator_across_group_gc, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_reopen_and_check_after_group_gc, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fault_during_group_gc, setup, teardown),
      cmocka_unit_test_setup_teardown(test_random_workload, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
