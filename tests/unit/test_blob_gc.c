/* Blob garbage collection under the age policy, and blob files under snapshots.
 *
 * Part one drives src/gc/blob_gc.c on hand-built versions: which files the age cutoff makes
 * old (exactly floor(cutoff * n) of the oldest, with RocksDB's rounding), when the force
 * threshold fires and which table it picks, how the per-job meter turns inflow and outflow
 * into garbage records, and that the compaction picker turns a due forced GC into an
 * in-place compaction of the linked table.
 *
 * Part two checks the behaviour through the public API on the in-memory env: a compaction
 * with cutoff c relocates the live blobs of exactly the oldest floor(c * n) files (seen in
 * the per-file lines of mayfly.blob-stats), a mostly-garbage oldest file is collected by
 * forced GC when the threshold is below 1 and left alone at 1, and snapshots and iterators
 * keep reading old values while compactions relocate and drop their blob files, which leave
 * the disk only once nothing holds them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob/blob_format.h"
#include "compaction/compaction.h"
#include "db/options.h"
#include "env/env.h"
#include "gc/blob_gc.h"
#include "mayfly.h"
#include "version/version_edit.h"
#include "version/version_set.h"

#include "fake_version.h"

/* ---- part one: the policy on hand-built versions ---- */

static struct mayfly_options gc_opts(double cutoff, double force) {
  struct mayfly_options o;
  options_init_defaults(&o);
  o.enable_blob_garbage_collection = 1;
  o.blob_gc_policy = MF_BLOB_GC_AGE;
  o.blob_garbage_collection_age_cutoff = cutoff;
  o.blob_garbage_collection_force_threshold = force;
  return o;
}

/* With n files and cutoff c, the oldest floor(c * n) are old: the cutoff number is the
 * first file that is not (0 when none is old, UINT64_MAX when all are). Cutoffs are binary
 * fractions, so floor(c * n) is exact in double arithmetic. */
static void test_age_cutoff_number(void **state) {
  (void)state;
  static const int cutoff_64ths[] = {0, 1, 16, 21, 32, 43, 48, 63, 64};
  static fake_version f;
  for (int n = 0; n <= 12; n++) {
    fake_init(&f, n);
    for (size_t k = 0; k < sizeof cutoff_64ths / sizeof *cutoff_64ths; k++) {
      int q = cutoff_64ths[k];
      struct mayfly_options o = gc_opts(q / 64.0, 1.0);
      int old = q * n / 64;
      uint64_t expect = old == 0 ? 0 : old >= n ? UINT64_MAX : f.metas[old].number;
      uint64_t got = gc_age_cutoff_number(&f.v, &o);
      if (got != expect)
        fail_msg("n=%d cutoff=%d/64: cutoff number %" PRIu64 ", expected %" PRIu64
                 " (%d old files)", n, q, got, expect, old);
      /* GC off: nothing is old, whatever the cutoff. */
      o.enable_blob_garbage_collection = 0;
      assert_int_equal(gc_age_cutoff_number(&f.v, &o), 0);
    }
  }
  /* RocksDB's rounding is down: 0.99 of 10 files is 9, 0.3 of 3 files is 0. */
  fake_init(&f, 10);
  struct mayfly_options o = gc_opts(0.99, 1.0);
  assert_int_equal(gc_age_cutoff_number(&f.v, &o), f.metas[9].number);
  fake_init(&f, 3);
  o = gc_opts(0.3, 1.0);
  assert_int_equal(gc_age_cutoff_number(&f.v, &o), 0);
}

static void test_forced_pick_rules(void **state) {
  (void)state;
  static fake_version f;
  file_meta *file = NULL;
  int level = -1;
  fake_init(&f, 4);
  f.metas[0].garbage_count = 8;
  f.metas[0].garbage_bytes = 800; /* the oldest file: 80% garbage */
  f.metas[1].garbage_count = 1;
  f.metas[1].garbage_bytes = 100;
  f.metas[3].garbage_count = 10;
  f.metas[3].garbage_bytes = 1000; /* a young file full of garbage does not count */
  fake_table(&f, 1, 100, 20, 0);
  file_meta *l2 = fake_table(&f, 2, 101, 10, 0);
  fake_table(&f, 3, 102, 10, 0);

  /* cutoff 0.25 of 4: the oldest file alone, 80% garbage. */
  struct mayfly_options o = gc_opts(0.25, 0.3);
  assert_int_equal(gc_pick_forced(&f.v, &o, &file, &level), 1);
  assert_ptr_equal(file, l2); /* linked to file 10, shallowest level first */
  assert_int_equal(level, 2);
  o = gc_opts(0.25, 0.8);
  assert_int_equal(gc_pick_forced(&f.v, &o, &file, &level), 1);
  o = gc_opts(0.25, 0.81);
  assert_int_equal(gc_pick_forced(&f.v, &o, &file, &level), 0);
  /* Threshold 1 never forces, even when every old file is all garbage. */
  f.metas[0].garbage_count = 10;
  f.metas[0].garbage_bytes = 1000;
  o = gc_opts(0.25, 1.0);
  assert_int_equal(gc_pick_forced(&f.v, &o, &file, &level), 0);
  f.metas[0].garbage_count = 8;
  f.metas[0].garbage_bytes = 800;

  /* cutoff 0.5: file 20 has a table of its own, so the oldest batch is file 10 alone, and
   * file 20's garbage does not dilute it. */
  o = gc_opts(0.5, 0.8);
  assert_int_equal(gc_pick_forced(&f.v, &o, &file, &level), 1);
  assert_ptr_equal(file, l2);
  o = gc_opts(0.5, 0.81);
  assert_int_equal(gc_pick_forced(&f.v, &o, &file, &level), 0);
  /* Cutoff rounding to no old file, or GC off: never forced. */
  o = gc_opts(0.2, 0.0);
  assert_int_equal(gc_pick_forced(&f.v, &o, &file, &level), 0);
  o = gc_opts(1.0, 0.1);
  o.enable_blob_garbage_collection = 0;
  assert_int_equal(gc_pick_forced(&f.v, &o, &file, &level), 0);
  /* Threshold 0 forces as soon as there is any garbage, but not without: the rewritten file
   * would be the oldest again, with none, and due again for ever. */
  o = gc_opts(0.25, 0.0);
  assert_int_equal(gc_pick_forced(&f.v, &o, &file, &level), 1);
  f.metas[0].garbage_count = 0;
  f.metas[0].garbage_bytes = 0;
  assert_int_equal(gc_pick_forced(&f.v, &o, &file, &level), 0);
  f.metas[0].garbage_count = 8;
  f.metas[0].garbage_bytes = 800;

  /* A due forced GC with no table linked to the oldest file picks nothing. */
  fake_init(&f, 2);
  f.metas[0].garbage_count = 9;
  f.metas[0].garbage_bytes = 900;
  fake_table(&f, 1, 100, 20, 0);
  o = gc_opts(0.5, 0.3);
  assert_int_equal(gc_pick_forced(&f.v, &o, &file, &level), 0);
  /* Level 0 comes first. */
  file_meta *l0 = fake_table(&f, 0, 103, 10, 0);
  fake_table(&f, 1, 104, 10, 0);
  assert_int_equal(gc_pick_forced(&f.v, &o, &file, &level), 1);
  assert_ptr_equal(file, l0);
  assert_int_equal(level, 0);
}

/* The oldest batch (RocksDB's rule): the oldest file and the files after it that no table
 * links to; it must lie within the cutoff, and only its garbage counts. */
static void test_forced_oldest_batch(void **state) {
  (void)state;
  static fake_version f;
  file_meta *file = NULL;
  int level = -1;
  /* Files 10..40, each linked to a table. File 10 has no garbage, file 20 is 90% garbage:
   * nothing is forced (summing both would give 45% and rewrite file 10's live blobs). */
  fake_init(&f, 4);
  f.metas[1].garbage_count = 9;
  f.metas[1].garbage_bytes = 900;
  file_meta *t10 = fake_table(&f, 1, 100, 10, 10);
  fake_table(&f, 1, 101, 20, 20);
  fake_table(&f, 1, 102, 30, 30);
  fake_table(&f, 1, 103, 40, 40);
  struct mayfly_options o = gc_opts(0.5, 0.4);
  assert_int_equal(gc_pick_forced(&f.v, &o, &file, &level), 0);
  /* File 10 80% garbage, the rest none, cutoff 1.0: forced (80% of the batch, though only
   * 20% of all old bytes). */
  f.metas[1].garbage_count = 0;
  f.metas[1].garbage_bytes = 0;
  f.metas[0].garbage_count = 8;
  f.metas[0].garbage_bytes = 800;
  o = gc_opts(1.0, 0.5);
  assert_int_equal(gc_pick_forced(&f.v, &o, &file, &level), 1);
  assert_ptr_equal(file, t10);
  assert_int_equal(level, 1);

  /* File 20 linked to no table joins file 10's batch: (800 + 200) / 2000 = 50%. */
  fake_init(&f, 4);
  f.metas[0].garbage_count = 8;
  f.metas[0].garbage_bytes = 800;
  f.metas[1].garbage_count = 2;
  f.metas[1].garbage_bytes = 200;
  t10 = fake_table(&f, 2, 100, 10, 20);
  fake_table(&f, 1, 102, 30, 40);
  o = gc_opts(0.5, 0.5);
  assert_int_equal(gc_pick_forced(&f.v, &o, &file, &level), 1);
  assert_ptr_equal(file, t10);
  o = gc_opts(0.5, 0.51);
  assert_int_equal(gc_pick_forced(&f.v, &o, &file, &level), 0);
  /* With cutoff 0.25 the batch (files 10 and 20) runs past the one old file: not forced,
   * however much garbage file 10 holds. */
  f.metas[0].garbage_count = 10;
  f.metas[0].garbage_bytes = 1000;
  o = gc_opts(0.25, 0.1);
  assert_int_equal(gc_pick_forced(&f.v, &o, &file, &level), 0);
  /* A batch reaching the newest file is within any cutoff that covers it. */
  fake_init(&f, 2);
  f.metas[0].garbage_count = 5;
  f.metas[0].garbage_bytes = 500;
  t10 = fake_table(&f, 3, 100, 10, 20);
  o = gc_opts(1.0, 0.25);
  assert_int_equal(gc_pick_forced(&f.v, &o, &file, &level), 1); /* 500 of 2000 */
  assert_ptr_equal(file, t10);
  o = gc_opts(0.5, 0.25);
  assert_int_equal(gc_pick_forced(&f.v, &o, &file, &level), 0); /* file 20 is not old */
}

/* The picker turns a due forced GC of a level >= 1 table into an in-place compaction of
 * that table alone; not due, it picks nothing. */
static void test_forced_pick_compaction(void **state) {
  (void)state;
  static fake_version f;
  fake_init(&f, 2);
  f.metas[0].garbage_count = 9;
  f.metas[0].garbage_bytes = 900;
  fake_table(&f, 3, 100, 20, 0);
  file_meta *linked = fake_table(&f, 4, 101, 10, 0);
  struct mayfly_options o = gc_opts(0.5, 0.5);
  int rc = -99;
  compaction *c = compaction_pick(NULL, &f.v, &o, NULL, 0, &rc);
  assert_int_equal(rc, MAYFLY_OK);
  assert_non_null(c);
  int reason = c->reason, lvl = c->level, out = c->output_level, n0 = c->num_inputs[0],
      n1 = c->num_inputs[1];
  file_meta *in = n0 > 0 ? c->inputs[0][0] : NULL;
  int deletes = c->edit.num_deleted_files;
  compaction_free(c);
  assert_int_equal(reason, COMPACTION_FORCED_BLOB_GC);
  assert_int_equal(lvl, 4);
  assert_int_equal(out, 4);
  assert_int_equal(n0, 1);
  assert_int_equal(n1, 0);
  assert_ptr_equal(in, linked);
  assert_int_equal(deletes, 1);
  assert_int_equal(f.v.refs, 1); /* the compaction's reference was returned */

  o = gc_opts(0.5, 1.0);
  c = compaction_pick(NULL, &f.v, &o, NULL, 0, &rc);
  assert_int_equal(rc, MAYFLY_OK);
  assert_null(c);
}

/* Inflow minus outflow per file becomes one garbage record per file with a difference. */
static void test_meter(void **state) {
  (void)state;
  gc_meter m;
  gc_meter_init(&m);
  /* Out of order on purpose: the meter keeps files sorted. */
  static const uint64_t files[] = {30, 10, 20, 10, 30, 40};
  for (int i = 0; i < 6; i++) assert_int_equal(gc_meter_inflow(&m, files[i], 100 + (uint64_t)i), MAYFLY_OK);
  assert_int_equal(gc_meter_outflow(&m, 10, 101), MAYFLY_OK); /* 10: in 101+103, out 101 */
  assert_int_equal(gc_meter_outflow(&m, 20, 102), MAYFLY_OK); /* 20: all kept */
  assert_int_equal(gc_meter_outflow(&m, 40, 105), MAYFLY_OK); /* 40: all kept */
  version_edit e;
  version_edit_init(&e);
  uint64_t count = 0, bytes = 0;
  assert_int_equal(gc_meter_to_edit(&m, &e, &count, &bytes), MAYFLY_OK);
  assert_int_equal(e.num_blob_garbage, 2);
  assert_int_equal(e.blob_garbage[0].number, 10);
  assert_int_equal(e.blob_garbage[0].garbage_count, 1);
  assert_int_equal(e.blob_garbage[0].garbage_bytes, 103);
  assert_int_equal(e.blob_garbage[1].number, 30);
  assert_int_equal(e.blob_garbage[1].garbage_count, 2);
  assert_int_equal(e.blob_garbage[1].garbage_bytes, 100 + 104);
  assert_int_equal(count, 3);
  assert_int_equal(bytes, 103 + 204);
  version_edit_free(&e);
  /* More written than read is a bug upstream: refused. */
  assert_int_equal(gc_meter_outflow(&m, 40, 1), MAYFLY_OK);
  version_edit_init(&e);
  assert_int_equal(gc_meter_to_edit(&m, &e, NULL, NULL), MAYFLY_ECORRUPT);
  version_edit_free(&e);
  gc_meter_free(&m);
  /* Many files. */
  gc_meter_init(&m);
  for (uint64_t i = 500; i > 0; i--) assert_int_equal(gc_meter_inflow(&m, i, 7), MAYFLY_OK);
  version_edit_init(&e);
  assert_int_equal(gc_meter_to_edit(&m, &e, &count, NULL), MAYFLY_OK);
  assert_int_equal(e.num_blob_garbage, 500);
  for (int i = 0; i < 500; i++) assert_int_equal(e.blob_garbage[i].number, (uint64_t)i + 1);
  version_edit_free(&e);
  gc_meter_free(&m);
}

/* ---- part two: behaviour through the API ---- */

#define DBNAME "/db"
#define KLEN 11
#include "test_db_util.h"

static mf_env *g_env;
static mayfly_db *g_db;

static void blob_value_of(int i, int ver, size_t len, char *buf) {
  char head[40];
  int n = snprintf(head, sizeof head, "%08d:%08d:", i, ver);
  memcpy(buf, head, (size_t)n);
  uint64_t s = (uint64_t)i * 7919u + (uint64_t)ver * 104729u;
  for (size_t j = (size_t)n; j < len; j++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    buf[j] = (char)(s >> 56);
  }
}

static uint64_t record_bytes(size_t vlen) { return BLOB_RECORD_HEADER_SIZE + KLEN + vlen; }

static void put_val(mayfly_db *db, int i, int ver, size_t len) {
  char k[32], v[4096];
  assert_true(len <= sizeof v && len >= 18);
  size_t klen = key_of(i, k);
  blob_value_of(i, ver, len, v);
  int rc = mayfly_put(db, k, klen, v, len, 0);
  if (rc != MAYFLY_OK) fail_msg("put key %d: %s (%s)", i, mayfly_strerror(rc), mayfly_errmsg(db));
}

static void expect_val(mayfly_db *db, const mayfly_snapshot *snap, int i, int ver, size_t len) {
  char k[32], want[4096];
  size_t klen = key_of(i, k);
  void *v = NULL;
  size_t vlen = 0;
  int rc = mayfly_get(db, snap, k, klen, &v, &vlen);
  if (rc != MAYFLY_OK) fail_msg("get key %d: %s (%s)", i, mayfly_strerror(rc), mayfly_errmsg(db));
  blob_value_of(i, ver, len, want);
  int same = vlen == len && memcmp(v, want, len) == 0;
  mayfly_free(v);
  if (!same) fail_msg("key %d: not version %d (%zu bytes)", i, ver, vlen);
}

static struct mayfly_options base_opts(void) {
  if (!g_env) g_env = new_mem_env();
  struct mayfly_options o = opts_for(g_env);
  o.write_buffer_size = 32u << 20;
  o.level0_file_num_compaction_trigger = 16;
  o.level0_slowdown_writes_trigger = 32;
  o.level0_stop_writes_trigger = 64;
  o.max_mem_compaction_level = 0;
  o.min_blob_size = 100;
  return o;
}

static mayfly_db *open_db(const struct mayfly_options *o) {
  g_db = open_ok(o);
  return g_db;
}

static void close_db(mayfly_db *db) {
  g_db = NULL;
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
}

static int teardown(void **state) {
  (void)state;
  if (g_db) mayfly_close(g_db);
  g_db = NULL;
  if (g_env) g_env->destroy(g_env);
  g_env = NULL;
  return 0;
}

typedef struct blob_line {
  uint64_t number, count, bytes, garbage_count, garbage_bytes;
  int linked;
} blob_line;

static int blob_lines(mayfly_db *db, blob_line *out, int max) {
  char *s = blob_stats(db);
  int n = 0;
  for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
    blob_line b;
    if (sscanf(line, " #%" SCNu64 ": %" SCNu64 " blobs, %" SCNu64 " bytes, garbage %" SCNu64
               " blobs %" SCNu64 " bytes, %d linked tables", &b.number, &b.count, &b.bytes,
               &b.garbage_count, &b.garbage_bytes, &b.linked) == 6) {
      if (n == max) fail_msg("more than %d blob files", max);
      out[n++] = b;
    }
  }
  mayfly_free(s);
  return n;
}

static const blob_line *find_line(const blob_line *l, int n, uint64_t number) {
  for (int i = 0; i < n; i++)
    if (l[i].number == number) return &l[i];
  return NULL;
}

static int blob_on_disk(uint64_t number) {
  char path[64];
  snprintf(path, sizeof path, "%s/%06" PRIu64 ".blob", DBNAME, number);
  return g_env->file_exists(g_env, path);
}

/* Every file the version lists is on disk, and no other .blob is. */
static void expect_blobs_match_disk(mayfly_db *db) {
  blob_line l[64];
  int n = blob_lines(db, l, 64);
  char **names = NULL;
  size_t count = 0;
  assert_int_equal(g_env->list_dir(g_env, DBNAME, &names, &count), MAYFLY_OK);
  int on_disk = 0, stray = -1;
  for (size_t i = 0; i < count; i++) {
    size_t len = strlen(names[i]);
    if (len > 5 && strcmp(names[i] + len - 5, ".blob") == 0) {
      on_disk++;
      if (!find_line(l, n, strtoull(names[i], NULL, 10))) stray = (int)i;
    }
  }
  char stray_name[64] = "";
  if (stray >= 0) snprintf(stray_name, sizeof stray_name, "%s", names[stray]);
  env_free_names(names, count);
  if (stray_name[0]) fail_msg("%s is on disk but not in the version", stray_name);
  for (int i = 0; i < n; i++)
    if (!blob_on_disk(l[i].number)) fail_msg("blob file #%" PRIu64 " is missing", l[i].number);
  assert_int_equal(on_disk, n);
}

/* nfiles flushes of M disjoint keys each (one blob file per flush), then one compaction
 * with the given cutoff: the oldest `old` files are relocated into one new file and
 * dropped, the others are untouched. */
static void run_cutoff(const char *cutoff, int nfiles, int old) {
  enum { M = 40, V = 300 };
  struct mayfly_options o = base_opts();
  mayfly_db *db = open_db(&o);
  set_opt(db, "blob_garbage_collection_age_cutoff", cutoff);
  for (int f = 0; f < nfiles; f++) {
    for (int i = f * M; i < (f + 1) * M; i++) put_val(db, i, f + 1, V);
    flush(db);
  }
  blob_line before[16], after[16];
  assert_int_equal(blob_lines(db, before, 16), nfiles);
  compact_all(db);
  int n = blob_lines(db, after, 16);
  int expect_files = nfiles - old + (old > 0);
  if (n != expect_files)
    fail_msg("cutoff %s of %d files: %d files after compaction, expected %d", cutoff, nfiles, n,
             expect_files);
  for (int f = 0; f < nfiles; f++) {
    const blob_line *l = find_line(after, n, before[f].number);
    if (f < old && l) fail_msg("cutoff %s: old file #%" PRIu64 " kept", cutoff, before[f].number);
    if (f >= old && !l)
      fail_msg("cutoff %s: young file #%" PRIu64 " dropped", cutoff, before[f].number);
    if (l) {
      assert_int_equal(l->count, M);
      assert_int_equal(l->garbage_count, 0);
    }
  }
  if (old > 0) {
    const blob_line *fresh = &after[n - 1];
    assert_true(fresh->number > before[nfiles - 1].number);
    assert_int_equal(fresh->count, (uint64_t)old * M);
    assert_int_equal(fresh->bytes, (uint64_t)old * M * record_bytes(V));
    assert_int_equal(fresh->garbage_count, 0);
  }
  assert_int_equal(stat_counter(db, "Relocated blobs: "), (uint64_t)old * M);
  assert_int_equal(prop_u64(db, "mayfly.blob-garbage-size"), 0);
  for (int f = 0; f < nfiles; f++)
    for (int i = f * M; i < (f + 1) * M; i++) expect_val(db, NULL, i, f + 1, V);
  expect_blobs_match_disk(db);
  close_db(db);
  g_env->destroy(g_env);
  g_env = NULL;
}

static void test_cutoff_relocates_oldest_files(void **state) {
  (void)state;
  run_cutoff("0.5", 4, 2);
  run_cutoff("0.74", 4, 2);
  run_cutoff("0.25", 3, 0);
  run_cutoff("0.34", 3, 1);
  run_cutoff("1.0", 3, 3);
  run_cutoff("0", 3, 0);
}

/* The setup for forced GC, built with GC off: blob file F1 (keys 0..99) in level 1 with 80%
 * garbage (keys 0..79 overwritten into F2), and one level-1 table linked to F1. Returns F1's
 * number. */
static uint64_t forced_gc_setup(mayfly_db *db) {
  enum { N = 100, V = 400 };
  set_opt(db, "enable_blob_garbage_collection", "false");
  for (int i = 0; i < N; i++) put_val(db, i, 1, V);
  flush(db);
  compact_all(db);
  for (int i = 0; i < 80; i++) put_val(db, i, 2, V);
  flush(db);
  compact_all(db);
  blob_line l[8];
  assert_int_equal(blob_lines(db, l, 8), 2);
  assert_int_equal(l[0].garbage_count, 80);
  assert_int_equal(l[0].linked, 1);
  assert_int_equal(l[1].linked, 0);
  return l[0].number;
}

static void forced_gc_check_values(mayfly_db *db) {
  for (int i = 0; i < 100; i++) expect_val(db, NULL, i, i < 80 ? 2 : 1, 400);
}

/* force_threshold 0.3 with the oldest file at 80% garbage: background work compacts the
 * linked table (no write or manual compaction needed beyond the option change), the file's
 * live blobs are relocated and the file leaves the version and the disk. The newer file has
 * no table of its own, so it is in the oldest batch: the batch is 34160 of 76860 bytes
 * garbage (44%), and the cutoff must cover both files (1.0; at 0.5 the batch runs past it
 * and nothing is forced), so the compaction relocates the newer file's blobs as well. */
static void test_forced_gc_collects_oldest_file(void **state) {
  (void)state;
  struct mayfly_options o = base_opts();
  mayfly_db *db = open_db(&o);
  uint64_t f1 = forced_gc_setup(db);
  assert_int_equal(stat_counter(db, "Forced-GC compactions: "), 0);
  set_opt(db, "blob_garbage_collection_age_cutoff", "0.5");
  set_opt(db, "blob_garbage_collection_force_threshold", "0.3");
  set_opt(db, "enable_blob_garbage_collection", "true");
  ok(db, mayfly_wait_idle(db), "wait_idle");
  assert_int_equal(stat_counter(db, "Forced-GC compactions: "), 0); /* batch past the cutoff */
  set_opt(db, "blob_garbage_collection_age_cutoff", "1.0");
  ok(db, mayfly_wait_idle(db), "wait_idle");
  /* Some ordinary activity, in case the engine only looks after a flush. */
  put_val(db, 1000, 1, 50);
  flush(db);
  ok(db, mayfly_wait_idle(db), "wait_idle");
  uint64_t forced = stat_counter(db, "Forced-GC compactions: ");
  if (forced == 0) {
    char *s = blob_stats(db);
    fail_msg("force threshold 0.3 with the oldest blob file at 80%% garbage: no forced-GC "
             "compaction ran\n%s", s);
  }
  blob_line l[8];
  int n = blob_lines(db, l, 8);
  if (find_line(l, n, f1)) fail_msg("forced GC ran but blob file #%" PRIu64 " is still live", f1);
  assert_false(blob_on_disk(f1));
  assert_int_equal(stat_counter(db, "Relocated blobs: "), 100); /* 20 + the newer file's 80 */
  forced_gc_check_values(db);
  expect_blobs_match_disk(db);
  close_db(db);
}

/* Threshold 1 (and a threshold above the oldest batch's garbage ratio, 44%): no forced
 * compactions; the file stays with its garbage. */
static void test_forced_gc_threshold_not_reached(void **state) {
  (void)state;
  static const char *const thresholds[] = {"1.0", "0.9"};
  for (int t = 0; t < 2; t++) {
    struct mayfly_options o = base_opts();
    mayfly_db *db = open_db(&o);
    uint64_t f1 = forced_gc_setup(db);
    set_opt(db, "blob_garbage_collection_age_cutoff", "1.0");
    set_opt(db, "blob_garbage_collection_force_threshold", thresholds[t]);
    set_opt(db, "enable_blob_garbage_collection", "true");
    put_val(db, 1000, 1, 50);
    flush(db);
    ok(db, mayfly_wait_idle(db), "wait_idle");
    assert_int_equal(stat_counter(db, "Forced-GC compactions: "), 0);
    blob_line l[8];
    int n = blob_lines(db, l, 8);
    const blob_line *b = find_line(l, n, f1);
    if (!b) fail_msg("threshold %s: blob file #%" PRIu64 " collected", thresholds[t], f1);
    assert_int_equal(b->garbage_count, 80);
    assert_true(blob_on_disk(f1));
    forced_gc_check_values(db);
    close_db(db);
    g_env->destroy(g_env);
    g_env = NULL;
  }
}

/* ---- snapshots and iterators ---- */

enum { SN = 100, SV = 300 };

static void expect_all(mayfly_db *db, const mayfly_snapshot *snap, int ver) {
  for (int i = 0; i < SN; i++) expect_val(db, snap, i, ver, SV);
}

/* Reads every value through an iterator; returns how many matched version ver (the first
 * mismatch or error ends the scan). */
static int iter_matches(mayfly_iter *it, int ver, int *status) {
  int good = 0;
  char want[SV];
  for (mayfly_iter_seek_to_first(it); mayfly_iter_valid(it); mayfly_iter_next(it)) {
    size_t vlen;
    const void *v = mayfly_iter_value(it, &vlen);
    blob_value_of(good, ver, SV, want);
    if (!v || vlen != SV || memcmp(v, want, SV) != 0) break;
    good++;
  }
  *status = mayfly_iter_status(it);
  return good;
}

/* GC on, cutoff 1: the compaction after the overwrite relocates everything, the snapshot's
 * old versions included. The snapshot reads the relocated copies; an iterator made before
 * keeps its version, so the old blob file stays on disk until it is destroyed and the next
 * flush sweeps obsolete files. */
static void test_snapshot_and_iterator_across_gc(void **state) {
  (void)state;
  struct mayfly_options o = base_opts();
  o.blob_garbage_collection_age_cutoff = 1.0;
  mayfly_db *db = open_db(&o);
  for (int i = 0; i < SN; i++) put_val(db, i, 1, SV);
  flush(db);
  blob_line l[8];
  assert_int_equal(blob_lines(db, l, 8), 1);
  uint64_t f1 = l[0].number;
  const mayfly_snapshot *snap = NULL;
  ok(db, mayfly_snapshot_create(db, &snap), "snapshot");
  mayfly_iter *it = NULL;
  ok(db, mayfly_iter_create(db, snap, &it), "iter_create");

  for (int i = 0; i < SN; i++) put_val(db, i, 2, SV);
  flush(db);
  compact_all(db);
  /* The version no longer lists f1: its blobs (versions 1 and 2) were relocated. */
  int n = blob_lines(db, l, 8);
  int f1_live = find_line(l, n, f1) != NULL, f1_disk = blob_on_disk(f1);
  int status, good = iter_matches(it, 1, &status);
  if (f1_live || !f1_disk || good != SN || status != MAYFLY_OK) {
    mayfly_iter_destroy(it);
    mayfly_snapshot_release(db, snap);
    fail_msg("after GC: f1 live=%d on disk=%d; the old iterator read %d of %d values (%s)",
             f1_live, f1_disk, good, SN, mayfly_strerror(status));
  }
  expect_all(db, snap, 1);
  expect_all(db, NULL, 2);
  mayfly_iter_destroy(it);
  /* Released, the next sweep (after a flush) deletes f1. */
  put_val(db, 5000, 1, 30);
  flush(db);
  assert_false(blob_on_disk(f1));
  expect_all(db, snap, 1);

  /* Released snapshot: the next compaction drops version 1 and its relocated copies. It
   * needs a write inside level 1's key range: compact_range leaves the last level alone. */
  mayfly_snapshot_release(db, snap);
  put_val(db, 0, 2, SV);
  flush(db);
  compact_all(db);
  expect_all(db, NULL, 2);
  assert_int_equal(prop_u64(db, "mayfly.blob-garbage-size"), 0);
  assert_int_equal(prop_u64(db, "mayfly.total-blob-size"), SN * record_bytes(SV));
  expect_blobs_match_disk(db);
  close_db(db);
}

/* GC off: a snapshot keeps old versions, so their blob file keeps live references and stays;
 * once the snapshot is released a compaction drops them and the file goes. */
static void test_snapshot_keeps_blob_file(void **state) {
  (void)state;
  struct mayfly_options o = base_opts();
  o.enable_blob_garbage_collection = 0;
  mayfly_db *db = open_db(&o);
  for (int i = 0; i < SN; i++) put_val(db, i, 1, SV);
  flush(db);
  compact_all(db);
  blob_line l[8];
  assert_int_equal(blob_lines(db, l, 8), 1);
  uint64_t f1 = l[0].number;
  const mayfly_snapshot *snap = NULL;
  ok(db, mayfly_snapshot_create(db, &snap), "snapshot");
  for (int round = 2; round <= 3; round++) {
    for (int i = 0; i < SN; i++) put_val(db, i, round, SV);
    flush(db);
    compact_all(db);
  }
  int n = blob_lines(db, l, 8);
  const blob_line *b = find_line(l, n, f1);
  int kept = b && b->garbage_count == 0 && blob_on_disk(f1);
  if (!kept) {
    mayfly_snapshot_release(db, snap);
    fail_msg("blob file #%" PRIu64 " lost references a snapshot still reads", f1);
  }
  expect_all(db, snap, 1);
  expect_all(db, NULL, 3);
  mayfly_snapshot_release(db, snap);
  put_val(db, 0, 3, SV); /* inside level 1's range, so the compaction rewrites it */
  flush(db);
  compact_all(db);
  n = blob_lines(db, l, 8);
  assert_null(find_line(l, n, f1));
  assert_false(blob_on_disk(f1));
  expect_all(db, NULL, 3);
  /* Versions 1 and 2 are gone with their files; version 3's file holds one garbage
   * record (key 0, rewritten into a file of its own). */
  assert_int_equal(prop_u64(db, "mayfly.blob-garbage-size"), record_bytes(SV));
  assert_int_equal(prop_u64(db, "mayfly.total-blob-size"), (SN + 1) * record_bytes(SV));
  assert_int_equal(n, 2);
  expect_blobs_match_disk(db);
  close_db(db);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_age_cutoff_number),
      cmocka_unit_test(test_forced_pick_rules),
      cmocka_unit_test(test_forced_oldest_batch),
      cmocka_unit_test(test_forced_pick_compaction),
      cmocka_unit_test(test_meter),
      cmocka_unit_test_teardown(test_cutoff_relocates_oldest_files, teardown),
      cmocka_unit_test_teardown(test_forced_gc_collects_oldest_file, teardown),
      cmocka_unit_test_teardown(test_forced_gc_threshold_not_reached, teardown),
      cmocka_unit_test_teardown(test_snapshot_and_iterator_across_gc, teardown),
      cmocka_unit_test_teardown(test_snapshot_keeps_blob_file, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
