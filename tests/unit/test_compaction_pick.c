/* The compaction picker (compaction.c) on hand-built versions.
 *
 * Each test lays out file_metas with chosen key ranges and sizes through one
 * version_set_log_and_apply on the in-memory env (the table files themselves never exist:
 * picking only reads metadata), then checks what the picker decides: level scores and
 * targets, which level wins, where the compaction pointer starts the next pick (and that it
 * survives a MANIFEST replay), level-0 overlap chains, output-level overlap, input expansion
 * and its two limits, grandparents, trivial moves, flush placement, the base-level test for
 * tombstones, output cutting at grandparent overlap, dynamic level sizes, seek compactions
 * and bounded manual steps.
 *
 * Unless a test says otherwise: level-0 trigger 4, level 1 target 10 MiB, multiplier 10,
 * target file size 1 MiB. Keys are short strings; a file [lo, hi] has smallest lo@100 and
 * largest hi@1. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compaction/compaction.h"
#include "db/options.h"
#include "env/env.h"
#include "mayfly.h"
#include "util/ikey.h"
#include "version/version_set.h"

#define DB "/db"
#define MIB ((uint64_t)1 << 20)

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

/* Compactions a test holds (each references a version); a failing test leaves them to
 * teardown, which must release them before destroying the version set. */
#define MAX_HELD 8
static struct compaction *held[MAX_HELD];

typedef struct fixture {
  mf_env *env;
  version_set *vs;
  struct mayfly_options opt;
} fixture;

static version_set *new_set(fixture *fx, int expect_recover) {
  version_set *vs = NULL;
  assert_int_equal(version_set_create(fx->env, DB, &fx->opt, NULL, &vs), MAYFLY_OK);
  assert_int_equal(version_set_recover(vs), expect_recover);
  /* File numbers of the hand-made tables stay below this; MANIFESTs get numbers above. */
  version_set_mark_file_number_used(vs, 10000);
  return vs;
}

static int setup(void **state) {
  fixture *fx = calloc(1, sizeof *fx);
  if (!fx || env_mem_create(&fx->env) != MAYFLY_OK) return -1;
  if (fx->env->make_dir(fx->env, DB) != MAYFLY_OK) return -1;
  options_init_defaults(&fx->opt);
  options_set_env(&fx->opt, fx->env);
  fx->opt.level0_file_num_compaction_trigger = 4;
  fx->opt.max_bytes_for_level_base = 10 * MIB;
  fx->opt.max_bytes_for_level_multiplier = 10;
  fx->opt.target_file_size_base = MIB;
  fx->opt.level_compaction_dynamic_level_bytes = 0;
  fx->vs = new_set(fx, MAYFLY_ENOTFOUND);
  *state = fx;
  return 0;
}

static void release(struct compaction *c);

static int teardown(void **state) {
  fixture *fx = *state;
  for (int i = 0; i < MAX_HELD; i++)
    if (held[i]) release(held[i]);
  version_set_destroy(fx->vs);
  fx->env->destroy(fx->env);
  free(fx);
  return 0;
}

/* ---- building layouts ---- */

typedef struct spec {
  int level;
  uint64_t number;
  const char *lo, *hi;
  uint64_t size;
} spec;

static void edit_add(version_edit *e, const spec *s) {
  mf_buf lo = MF_BUF_INIT, hi = MF_BUF_INIT;
  assert_int_equal(ikey_append(&lo, mf_slice_cstr(s->lo), 100, MF_TYPE_VALUE), MAYFLY_OK);
  assert_int_equal(ikey_append(&hi, mf_slice_cstr(s->hi), 1, MF_TYPE_VALUE), MAYFLY_OK);
  assert_int_equal(version_edit_add_file(e, s->level, s->number, s->size, 10, mf_buf_slice(&lo),
                                         mf_buf_slice(&hi), 1, 100, /*oldest_blob_file=*/0),
                   MAYFLY_OK);
  mf_buf_free(&lo);
  mf_buf_free(&hi);
}

static void apply(fixture *fx, version_edit *e) {
  pthread_mutex_lock(&mu);
  int rc = version_set_log_and_apply(fx->vs, e, &mu);
  pthread_mutex_unlock(&mu);
  version_edit_free(e);
  assert_int_equal(rc, MAYFLY_OK);
}

static void build(fixture *fx, const spec *files, int n) {
  version_edit e;
  version_edit_init(&e);
  for (int i = 0; i < n; i++) edit_add(&e, &files[i]);
  apply(fx, &e);
}

static void delete_file(fixture *fx, int level, uint64_t number) {
  version_edit e;
  version_edit_init(&e);
  assert_int_equal(version_edit_delete_file(&e, level, number), MAYFLY_OK);
  apply(fx, &e);
}

static void set_pointer(fixture *fx, int level, const char *ukey, uint64_t seq) {
  version_edit e;
  version_edit_init(&e);
  mf_buf k = MF_BUF_INIT;
  assert_int_equal(ikey_append(&k, mf_slice_cstr(ukey), seq, MF_TYPE_VALUE), MAYFLY_OK);
  assert_int_equal(version_edit_set_compact_pointer(&e, level, mf_buf_slice(&k)), MAYFLY_OK);
  mf_buf_free(&k);
  apply(fx, &e);
}

static version *current(fixture *fx) { return version_set_current(fx->vs); }

/* "n,n,n" of a file list, in list order. */
static const char *numbers(file_meta *const *files, int n, char *out, size_t cap) {
  size_t len = 0;
  out[0] = '\0';
  for (int i = 0; i < n && len < cap; i++)
    len += (size_t)snprintf(out + len, cap - len, "%s%" PRIu64, i ? "," : "", files[i]->number);
  return out;
}

static void assert_files(file_meta *const *files, int n, const char *expected) {
  char got[256];
  assert_string_equal(numbers(files, n, got, sizeof got), expected);
}

static void hold(compaction *c) {
  for (int i = 0; c && i < MAX_HELD; i++) {
    if (!held[i]) {
      held[i] = c;
      return;
    }
  }
}

static compaction *pick(fixture *fx, file_meta *seek_file, int seek_level) {
  int rc = -100;
  pthread_mutex_lock(&mu);
  compaction *c = compaction_pick(fx->vs, current(fx), &fx->opt, seek_file, seek_level, &rc);
  pthread_mutex_unlock(&mu);
  hold(c);
  assert_int_equal(rc, MAYFLY_OK);
  return c;
}

static compaction *pick_range(fixture *fx, int level, const char *begin, const char *end) {
  int rc = -100;
  mf_slice b = begin ? mf_slice_cstr(begin) : mf_slice_make("", 0);
  mf_slice e = end ? mf_slice_cstr(end) : mf_slice_make("", 0);
  pthread_mutex_lock(&mu);
  compaction *c = compaction_pick_range(fx->vs, current(fx), &fx->opt, level,
                                        begin ? &b : NULL, end ? &e : NULL, &rc);
  pthread_mutex_unlock(&mu);
  hold(c);
  assert_int_equal(rc, MAYFLY_OK);
  return c;
}

static void release(compaction *c) {
  for (int i = 0; i < MAX_HELD; i++)
    if (held[i] == c) held[i] = NULL;
  pthread_mutex_lock(&mu);
  compaction_free(c);
  pthread_mutex_unlock(&mu);
}

static mf_slice ukey_of_ikey(mf_slice ikey) { return ikey_user_key(ikey); }

static int ikey_is(mf_slice ikey, const char *ukey) {
  return mf_slice_equal(ukey_of_ikey(ikey), mf_slice_cstr(ukey));
}

#define assert_near(a, b) assert_true(fabs((double)(a) - (double)(b)) < 1e-9)

/* ---- scores and priority ---- */

/* L0 scores files / trigger, a level n >= 1 its bytes / (base x mult^(n-1)), the last level
 * nothing. */
static void test_scores(void **state) {
  fixture *fx = *state;
  const spec files[] = {
      {0, 1, "a", "b", 5 * MIB},     {0, 2, "a", "c", 5 * MIB},     {0, 3, "a", "d", 5 * MIB},
      {1, 4, "a", "f", 15 * MIB},    {2, 5, "a", "f", 50 * MIB},    {3, 6, "a", "f", 2000 * MIB},
      {4, 7, "a", "f", 2500 * MIB},  {6, 8, "a", "f", 90000 * MIB},
  };
  build(fx, files, 8);
  level_targets t;
  compaction_level_targets(current(fx), &fx->opt, &t);
  assert_int_equal(t.base_level, 1);
  assert_true(t.max_bytes[1] == 10 * MIB);
  assert_true(t.max_bytes[2] == 100 * MIB);
  assert_true(t.max_bytes[3] == 1000 * MIB);
  assert_true(t.max_bytes[4] == 10000 * MIB);
  double s[MF_NUM_LEVELS];
  compaction_scores(current(fx), &fx->opt, s);
  assert_near(s[0], 0.75);
  assert_near(s[1], 1.5);
  assert_near(s[2], 0.5);
  assert_near(s[3], 2.0);
  assert_near(s[4], 0.25);
  assert_near(s[5], 0.0);
  assert_near(s[6], 0.0);
  /* The multiplier is applied per level. */
  fx->opt.max_bytes_for_level_multiplier = 5;
  compaction_scores(current(fx), &fx->opt, s);
  assert_near(s[2], 1.0);
  assert_near(s[3], 2000.0 / 250.0);
  /* Level 0 counts files, not bytes. */
  fx->opt.level0_file_num_compaction_trigger = 2;
  compaction_scores(current(fx), &fx->opt, s);
  assert_near(s[0], 1.5);
}

/* The highest score >= 1 wins; a score of exactly 1 counts; below 1 nothing is picked. */
static void test_highest_score_wins(void **state) {
  fixture *fx = *state;
  const spec files[] = {
      {0, 1, "a", "b", MIB}, {0, 2, "c", "d", MIB}, {0, 3, "e", "f", MIB},
      {1, 4, "a", "f", 15 * MIB}, /* 1.5 */
      {3, 6, "a", "f", 2000 * MIB}, /* 2.0 */
  };
  build(fx, files, 5);
  compaction *c = pick(fx, NULL, 0);
  assert_non_null(c);
  assert_int_equal(c->level, 3);
  assert_int_equal(c->output_level, 4);
  assert_int_equal(c->reason, COMPACTION_SIZE);
  assert_files(c->inputs[0], c->num_inputs[0], "6");
  release(c);

  /* Nine more level-0 files: 12 / 4 = 3.0 beats 2.0. */
  const spec more[] = {
      {0, 11, "g", "g", MIB}, {0, 12, "h", "h", MIB}, {0, 13, "i", "i", MIB},
      {0, 14, "j", "j", MIB}, {0, 15, "k", "k", MIB}, {0, 16, "l", "l", MIB},
      {0, 17, "m", "m", MIB}, {0, 18, "n", "n", MIB}, {0, 19, "o", "o", MIB},
  };
  build(fx, more, 9);
  c = pick(fx, NULL, 0);
  assert_non_null(c);
  assert_int_equal(c->level, 0);
  assert_int_equal(c->output_level, 1);
  assert_int_equal(c->reason, COMPACTION_LEVEL0);
  release(c);
}

static void test_score_threshold(void **state) {
  fixture *fx = *state;
  const spec files[] = {
      {0, 1, "a", "b", MIB}, {0, 2, "c", "d", MIB}, {0, 3, "e", "f", MIB},
      {1, 4, "a", "f", 9 * MIB},
  };
  build(fx, files, 4);
  assert_null(pick(fx, NULL, 0)); /* 0.75 and 0.9 */
  const spec fourth[] = {{0, 5, "g", "h", MIB}};
  build(fx, fourth, 1);
  compaction *c = pick(fx, NULL, 0); /* exactly 4 / 4 */
  assert_non_null(c);
  assert_int_equal(c->level, 0);
  release(c);
  /* Level 1 at exactly its target also counts, and beats level 0 only when higher. */
  delete_file(fx, 0, 5);
  const spec l1[] = {{1, 6, "x", "y", MIB}};
  build(fx, l1, 1);
  c = pick(fx, NULL, 0);
  assert_non_null(c);
  assert_int_equal(c->level, 1);
  release(c);
}

/* ---- compaction pointers ---- */

static void check_pick(fixture *fx, int level, const char *expected) {
  compaction *c = pick(fx, NULL, 0);
  assert_non_null(c);
  assert_int_equal(c->level, level);
  assert_files(c->inputs[0], c->num_inputs[0], expected);
  /* The edit moves the pointer to the largest key of the inputs. */
  assert_int_equal(c->edit.num_compact_pointers, 1);
  assert_int_equal(c->edit.compact_pointers[0].level, level);
  file_meta *last = c->inputs[0][c->num_inputs[0] - 1];
  assert_int_equal(ikey_compare(mf_buf_slice(&c->edit.compact_pointers[0].ikey),
                                mf_buf_slice(&last->largest)),
                   0);
  release(c);
}

/* The pick starts at the first file whose largest key is after the pointer and wraps to the
 * first file when the pointer is past the last; applying the pick's own pointer rotates
 * through the level; the pointer survives a MANIFEST replay. */
static void test_compact_pointer(void **state) {
  fixture *fx = *state;
  const spec files[] = {
      {1, 1, "k00", "k09", 4 * MIB},
      {1, 2, "k10", "k19", 4 * MIB},
      {1, 3, "k20", "k29", 4 * MIB},
  };
  build(fx, files, 3);
  assert_int_equal(version_set_compact_pointer(fx->vs, 1).len, 0);
  check_pick(fx, 1, "1");

  set_pointer(fx, 1, "k09", 1); /* == largest of file 1 */
  mf_slice p = version_set_compact_pointer(fx->vs, 1);
  assert_true(ikey_is(p, "k09"));
  check_pick(fx, 1, "2");
  set_pointer(fx, 1, "k15", 50); /* inside file 2 */
  check_pick(fx, 1, "2");
  set_pointer(fx, 1, "k19", 1);
  check_pick(fx, 1, "3");
  set_pointer(fx, 1, "k29", 1); /* past the last file: wrap */
  check_pick(fx, 1, "1");
  set_pointer(fx, 1, "zzz", 1);
  check_pick(fx, 1, "1");

  /* Rotation by applying each pick's own pointer edit. */
  set_pointer(fx, 1, "k00", 200); /* before everything */
  const char *order[] = {"1", "2", "3", "1"};
  for (int i = 0; i < 4; i++) {
    compaction *c = pick(fx, NULL, 0);
    assert_non_null(c);
    assert_files(c->inputs[0], c->num_inputs[0], order[i]);
    version_edit e;
    version_edit_init(&e);
    assert_int_equal(version_edit_set_compact_pointer(&e, 1,
                                                      mf_buf_slice(&c->edit.compact_pointers[0].ikey)),
                     MAYFLY_OK);
    release(c);
    apply(fx, &e);
  }
  /* Now after file 1: replay the MANIFEST into a new set and pick file 2 from it. */
  version_set_destroy(fx->vs);
  fx->vs = new_set(fx, MAYFLY_OK);
  p = version_set_compact_pointer(fx->vs, 1);
  assert_true(ikey_is(p, "k09"));
  assert_int_equal(version_set_compact_pointer(fx->vs, 2).len, 0);
  check_pick(fx, 1, "2");
}

/* ---- inputs ---- */

/* A level-0 pick pulls in every level-0 file connected to it by a chain of overlaps, even a
 * file listed before the one that widened the range; then the overlapping level-1 files. */
static void test_level0_overlap_chain(void **state) {
  fixture *fx = *state;
  const spec files[] = {
      {0, 20, "a", "b", MIB}, {0, 21, "f", "h", MIB}, {0, 22, "b", "f", MIB},
      {0, 23, "x", "z", MIB}, {0, 24, "i", "j", MIB},
      {1, 30, "a", "a", MIB}, {1, 31, "c", "d", MIB}, {1, 32, "h", "i", MIB},
      {1, 33, "y", "z", MIB},
  };
  build(fx, files, 9);
  compaction *c = pick(fx, NULL, 0);
  assert_non_null(c);
  assert_int_equal(c->level, 0);
  assert_int_equal(c->output_level, 1);
  assert_files(c->inputs[0], c->num_inputs[0], "20,21,22");
  /* [a, h] overlaps 30, 31 and 32 (h is 32's smallest key) */
  assert_files(c->inputs[1], c->num_inputs[1], "30,31,32");
  assert_int_equal(c->edit.num_deleted_files, 6);
  release(c);

  /* Directly: a query inside file 21 only grows through 22 to 20. */
  file_meta **out = NULL;
  int n = 0;
  mf_slice g = mf_slice_cstr("g");
  assert_int_equal(compaction_overlapping_files(current(fx), 0, &g, &g, &out, &n), MAYFLY_OK);
  assert_files(out, n, "20,21,22");
  free(out);
  /* Levels >= 1 do not grow the range. */
  mf_slice d = mf_slice_cstr("d"), h = mf_slice_cstr("h");
  assert_int_equal(compaction_overlapping_files(current(fx), 1, &d, &h, &out, &n), MAYFLY_OK);
  assert_files(out, n, "31,32");
  free(out);
  assert_int_equal(compaction_overlapping_files(current(fx), 1, NULL, NULL, &out, &n), MAYFLY_OK);
  assert_files(out, n, "30,31,32,33");
  free(out);
}

/* The level-2 file overlapping the pick comes along; the start level grows to the file that
 * the wider range covers because that adds no level-2 file; grandparents are taken over the
 * grown range. */
static void test_expansion(void **state) {
  fixture *fx = *state;
  const spec files[] = {
      {1, 10, "k10", "k19", 6 * MIB}, {1, 11, "k20", "k29", MIB}, {1, 12, "k30", "k39", 5 * MIB},
      {2, 20, "k05", "k25", MIB},     {2, 21, "k30", "k40", MIB},
      {3, 30, "k00", "k07", MIB},     {3, 31, "k08", "k12", MIB}, {3, 32, "k26", "k28", MIB},
      {3, 33, "k50", "k60", MIB},
  };
  build(fx, files, 9);
  compaction *c = pick(fx, NULL, 0);
  assert_non_null(c);
  assert_int_equal(c->level, 1);
  assert_int_equal(c->output_level, 2);
  assert_files(c->inputs[0], c->num_inputs[0], "10,11");
  assert_files(c->inputs[1], c->num_inputs[1], "20");
  assert_files(c->grandparents, c->num_grandparents, "30,31,32");
  assert_true(compaction_input_bytes(c, 0) == 7 * MIB);
  assert_true(compaction_input_bytes(c, 1) == MIB);
  assert_false(compaction_is_trivial_move(c));
  /* The pointer follows the grown inputs: the next pick starts after k29. */
  assert_true(ikey_is(mf_buf_slice(&c->edit.compact_pointers[0].ikey), "k29"));
  assert_int_equal(c->edit.num_deleted_files, 3);
  release(c);
}

/* No growth when the grown range would pull in another output-level file. */
static void test_no_expansion_adding_output(void **state) {
  fixture *fx = *state;
  const spec files[] = {
      {1, 10, "k10", "k19", 6 * MIB}, {1, 11, "k20", "k29", MIB}, {1, 12, "k30", "k39", 5 * MIB},
      {2, 20, "k05", "k25", MIB},     {2, 21, "k27", "k40", MIB},
      {3, 30, "k00", "k07", MIB},     {3, 31, "k08", "k12", MIB}, {3, 32, "k26", "k28", MIB},
  };
  build(fx, files, 8);
  compaction *c = pick(fx, NULL, 0);
  assert_non_null(c);
  assert_files(c->inputs[0], c->num_inputs[0], "10");
  assert_files(c->inputs[1], c->num_inputs[1], "20");
  assert_files(c->grandparents, c->num_grandparents, "30,31"); /* over [k05, k25] */
  assert_true(ikey_is(mf_buf_slice(&c->edit.compact_pointers[0].ikey), "k19"));
  release(c);
}

/* No growth when the grown compaction reaches 25 x the target file size. */
static void test_no_expansion_over_limit(void **state) {
  fixture *fx = *state;
  const spec files[] = {
      {1, 10, "k10", "k19", 6 * MIB}, {1, 11, "k20", "k29", 18 * MIB},
      {2, 20, "k05", "k25", MIB},     {2, 21, "k30", "k40", MIB},
  };
  build(fx, files, 4);
  compaction *c = pick(fx, NULL, 0); /* 6 + 18 + 1 = 25 MiB: not under the limit */
  assert_non_null(c);
  assert_files(c->inputs[0], c->num_inputs[0], "10");
  assert_files(c->inputs[1], c->num_inputs[1], "20");
  release(c);
  /* One byte less and it grows. */
  delete_file(fx, 1, 11);
  const spec smaller[] = {{1, 12, "k20", "k29", 18 * MIB - 1}};
  build(fx, smaller, 1);
  c = pick(fx, NULL, 0);
  assert_non_null(c);
  assert_files(c->inputs[0], c->num_inputs[0], "10,12");
  release(c);
}

/* ---- trivial moves ---- */

static void test_trivial_move(void **state) {
  fixture *fx = *state;
  const spec files[] = {
      {1, 10, "k10", "k19", 20 * MIB},
      {2, 20, "k30", "k40", MIB},       /* no overlap with 10 */
      {3, 30, "k00", "k12", 5 * MIB},   /* grandparents: 10 MiB = 10 x target, the limit */
      {3, 31, "k13", "k25", 5 * MIB},
  };
  build(fx, files, 4);
  compaction *c = pick(fx, NULL, 0);
  assert_non_null(c);
  assert_files(c->inputs[0], c->num_inputs[0], "10");
  assert_int_equal(c->num_inputs[1], 0);
  assert_files(c->grandparents, c->num_grandparents, "30,31");
  assert_true(compaction_is_trivial_move(c));
  release(c);

  /* One byte more of grandparent overlap and the move would make a later compaction too
   * big: merge instead. */
  delete_file(fx, 3, 31);
  const spec bigger[] = {{3, 32, "k13", "k25", 5 * MIB + 1}};
  build(fx, bigger, 1);
  c = pick(fx, NULL, 0);
  assert_non_null(c);
  assert_files(c->grandparents, c->num_grandparents, "30,32");
  assert_false(compaction_is_trivial_move(c));
  release(c);

  /* An output-level file in the way: no move either. */
  delete_file(fx, 3, 32);
  const spec in_way[] = {{2, 21, "k18", "k20", MIB}};
  build(fx, in_way, 1);
  c = pick(fx, NULL, 0);
  assert_non_null(c);
  assert_files(c->inputs[1], c->num_inputs[1], "21");
  assert_false(compaction_is_trivial_move(c));
  release(c);
}

/* Two overlapping level-0 files are never moved; a lone one is. */
static void test_trivial_move_level0(void **state) {
  fixture *fx = *state;
  fx->opt.level0_file_num_compaction_trigger = 2;
  const spec files[] = {{0, 1, "a", "c", MIB}, {0, 2, "b", "d", MIB}, {0, 3, "x", "z", MIB}};
  build(fx, files, 3);
  compaction *c = pick(fx, NULL, 0);
  assert_non_null(c);
  assert_files(c->inputs[0], c->num_inputs[0], "1,2");
  assert_false(compaction_is_trivial_move(c));
  release(c);
  set_pointer(fx, 0, "d", 1);
  c = pick(fx, NULL, 0);
  assert_non_null(c);
  assert_files(c->inputs[0], c->num_inputs[0], "3");
  assert_true(compaction_is_trivial_move(c));
  release(c);
}

/* ---- flush placement ---- */

static int flush_level(fixture *fx, const char *lo, const char *hi, int max_level) {
  return compaction_pick_flush_level(current(fx), &fx->opt, mf_slice_cstr(lo),
                                     mf_slice_cstr(hi), max_level);
}

static void test_flush_level(void **state) {
  fixture *fx = *state;
  /* An empty database: as deep as allowed. */
  assert_int_equal(flush_level(fx, "a", "z", 2), 2);
  assert_int_equal(flush_level(fx, "a", "z", 0), 0);
  assert_int_equal(flush_level(fx, "a", "z", MF_NUM_LEVELS - 1), MF_NUM_LEVELS - 1);

  const spec files[] = {
      {0, 1, "a0", "a9", MIB},
      {1, 2, "b0", "b9", MIB},
      {2, 3, "c0", "c9", MIB},
      {2, 4, "d0", "d9", 11 * MIB}, /* > 10 x target */
      {3, 5, "e0", "e9", 11 * MIB},
      {3, 6, "f0", "f9", 10 * MIB}, /* exactly 10 x target: still small enough */
  };
  build(fx, files, 6);
  assert_int_equal(flush_level(fx, "a5", "a6", 2), 0); /* overlaps level 0 */
  assert_int_equal(flush_level(fx, "b5", "b6", 2), 0); /* overlaps level 1 */
  assert_int_equal(flush_level(fx, "c5", "c6", 2), 1); /* overlaps level 2 */
  assert_int_equal(flush_level(fx, "d5", "d6", 2), 0); /* level 2 overlap too big for 1 */
  assert_int_equal(flush_level(fx, "e5", "e6", 2), 1); /* level 3 overlap too big for 2 */
  assert_int_equal(flush_level(fx, "f5", "f6", 2), 2);
  assert_int_equal(flush_level(fx, "g5", "g6", 2), 2); /* overlaps nothing */
  assert_int_equal(flush_level(fx, "g5", "g6", 1), 1);
  assert_int_equal(flush_level(fx, "g5", "g6", 4), 4);
  assert_int_equal(flush_level(fx, "f5", "f6", 4), 2); /* level 3 holds f */
  assert_int_equal(flush_level(fx, "a95", "b00", 2), 0); /* touches b0 at level 1 */
}

/* ---- while running a compaction ---- */

static mf_slice ikey_tmp(mf_buf *b, const char *ukey, uint64_t seq) {
  mf_buf_clear(b);
  assert_int_equal(ikey_append(b, mf_slice_cstr(ukey), seq, MF_TYPE_VALUE), MAYFLY_OK);
  return mf_buf_slice(b);
}

/* A tombstone may go only where no level below the output level can hold the key; the
 * output level itself does not count (its overlapping files are inputs). */
static void test_base_level_for_key(void **state) {
  fixture *fx = *state;
  const spec files[] = {
      {1, 10, "k00", "k99", MIB},
      {2, 20, "k60", "k65", MIB},
      {3, 30, "k20", "k29", MIB},
      {5, 50, "k50", "k59", MIB},
      {6, 60, "k80", "k80", MIB},
  };
  build(fx, files, 5);
  compaction *c = pick_range(fx, 1, NULL, NULL);
  assert_non_null(c);
  assert_int_equal(c->output_level, 2);
  assert_files(c->inputs[1], c->num_inputs[1], "20");
  assert_true(compaction_is_base_level_for_key(c, mf_slice_cstr("k05")));
  assert_false(compaction_is_base_level_for_key(c, mf_slice_cstr("k20")));
  assert_false(compaction_is_base_level_for_key(c, mf_slice_cstr("k25")));
  assert_false(compaction_is_base_level_for_key(c, mf_slice_cstr("k29")));
  assert_true(compaction_is_base_level_for_key(c, mf_slice_cstr("k29x")));
  assert_true(compaction_is_base_level_for_key(c, mf_slice_cstr("k30")));
  assert_false(compaction_is_base_level_for_key(c, mf_slice_cstr("k55")));
  assert_true(compaction_is_base_level_for_key(c, mf_slice_cstr("k62")));
  assert_false(compaction_is_base_level_for_key(c, mf_slice_cstr("k80")));
  assert_true(compaction_is_base_level_for_key(c, mf_slice_cstr("k90")));
  release(c);
}

/* Output is cut before the key that takes the overlap with the grandparents of the current
 * output file past 10 x the target file size; overlap before the first key does not count. */
static void test_should_stop_before(void **state) {
  fixture *fx = *state;
  const spec files[] = {
      {1, 10, "k00", "k99", MIB},
      {3, 30, "k10", "k19", 4 * MIB},
      {3, 31, "k20", "k29", 4 * MIB},
      {3, 32, "k30", "k39", 4 * MIB},
      {3, 33, "k40", "k49", 4 * MIB},
      {3, 34, "k50", "k59", 4 * MIB},
  };
  build(fx, files, 6);
  mf_buf k = MF_BUF_INIT;
  compaction *c = pick_range(fx, 1, NULL, NULL);
  assert_non_null(c);
  assert_int_equal(c->num_grandparents, 5);
  assert_false(compaction_should_stop_before(c, ikey_tmp(&k, "k05", 7)));
  assert_false(compaction_should_stop_before(c, ikey_tmp(&k, "k15", 7)));
  assert_false(compaction_should_stop_before(c, ikey_tmp(&k, "k25", 7))); /* 4 MiB */
  assert_false(compaction_should_stop_before(c, ikey_tmp(&k, "k35", 7))); /* 8 MiB */
  assert_true(compaction_should_stop_before(c, ikey_tmp(&k, "k45", 7)));  /* 12 MiB: cut */
  assert_false(compaction_should_stop_before(c, ikey_tmp(&k, "k46", 7))); /* new output: 0 */
  assert_false(compaction_should_stop_before(c, ikey_tmp(&k, "k55", 7))); /* 4 MiB */
  assert_false(compaction_should_stop_before(c, ikey_tmp(&k, "k70", 7))); /* 8 MiB */
  release(c);

  /* Grandparents passed before the first key are not the output's overlap. */
  c = pick_range(fx, 1, NULL, NULL);
  assert_non_null(c);
  assert_false(compaction_should_stop_before(c, ikey_tmp(&k, "k45", 7)));
  assert_false(compaction_should_stop_before(c, ikey_tmp(&k, "k55", 7)));
  assert_false(compaction_should_stop_before(c, ikey_tmp(&k, "k65", 7)));
  release(c);
  mf_buf_free(&k);
}

/* ---- dynamic level sizes ---- */

static int base_level(fixture *fx) {
  level_targets t;
  compaction_level_targets(current(fx), &fx->opt, &t);
  for (int level = 1; level < t.base_level; level++) assert_true(t.max_bytes[level] == UINT64_MAX);
  assert_true(t.max_bytes[t.base_level] != UINT64_MAX);
  return t.base_level;
}

/* The base level is the last level of an empty database, level 0 compacts straight into it,
 * and it moves up a level each time the last level grows by the multiplier. */
static void test_dynamic_level_bytes(void **state) {
  fixture *fx = *state;
  fx->opt.level_compaction_dynamic_level_bytes = 1;
  assert_int_equal(base_level(fx), MF_NUM_LEVELS - 1);

  const spec l0[] = {{0, 1, "a", "b", MIB}, {0, 2, "c", "d", MIB}, {0, 3, "e", "f", MIB},
                     {0, 4, "g", "h", MIB}};
  build(fx, l0, 4);
  compaction *c = pick(fx, NULL, 0);
  assert_non_null(c);
  assert_int_equal(c->level, 0);
  assert_int_equal(c->output_level, MF_NUM_LEVELS - 1);
  release(c);

  const uint64_t sizes[] = {5 * MIB, 50 * MIB, 500 * MIB, 5000 * MIB, 50000 * MIB, 500000 * MIB};
  const int expect[] = {6, 5, 4, 3, 2, 1};
  for (int i = 0; i < 6; i++) {
    if (i > 0) delete_file(fx, 6, 100 + (uint64_t)i - 1);
    spec last = {6, 100 + (uint64_t)i, "a", "z", sizes[i]};
    build(fx, &last, 1);
    int base = base_level(fx);
    if (base != expect[i])
      fail_msg("last level of %" PRIu64 " MiB: base level %d, expected %d", sizes[i] / MIB, base,
               expect[i]);
    c = pick(fx, NULL, 0);
    assert_non_null(c);
    assert_int_equal(c->level, 0);
    assert_int_equal(c->output_level, expect[i]);
    release(c);
  }
  /* With the static rule the same layout has base level 1. */
  fx->opt.level_compaction_dynamic_level_bytes = 0;
  assert_int_equal(base_level(fx), 1);
}

/* Levels between base and last get targets growing by the multiplier towards the last
 * level's actual size, so a level above its share scores >= 1. */
static void test_dynamic_targets(void **state) {
  fixture *fx = *state;
  fx->opt.level_compaction_dynamic_level_bytes = 1;
  const spec files[] = {{4, 40, "a", "c", 30 * MIB}, {6, 60, "a", "z", 1000 * MIB}};
  build(fx, files, 2);
  level_targets t;
  compaction_level_targets(current(fx), &fx->opt, &t);
  assert_int_equal(t.base_level, 4);
  assert_true(t.max_bytes[5] >= 99 * MIB && t.max_bytes[5] <= 101 * MIB);
  assert_true(t.max_bytes[4] >= 10 * MIB && t.max_bytes[4] <= 11 * MIB);
  double s[MF_NUM_LEVELS];
  compaction_scores(current(fx), &fx->opt, s);
  assert_true(s[4] > 2.5);
  compaction *c = pick(fx, NULL, 0);
  assert_non_null(c);
  assert_int_equal(c->level, 4);
  assert_int_equal(c->output_level, 5);
  release(c);
}

/* ---- seek compactions and manual steps ---- */

static void test_seek_pick(void **state) {
  fixture *fx = *state;
  const spec files[] = {
      {1, 10, "k10", "k19", MIB},
      {1, 11, "k30", "k39", MIB},
      {2, 20, "k12", "k15", MIB},
      {6, 60, "k00", "k99", MIB},
  };
  build(fx, files, 4);
  assert_null(pick(fx, NULL, 0)); /* no score >= 1 and no seek candidate */
  file_meta *f = current(fx)->files[1][0];
  compaction *c = pick(fx, f, 1);
  assert_non_null(c);
  assert_int_equal(c->reason, COMPACTION_SEEK);
  assert_int_equal(c->level, 1);
  assert_int_equal(c->output_level, 2);
  assert_files(c->inputs[0], c->num_inputs[0], "10");
  assert_files(c->inputs[1], c->num_inputs[1], "20");
  release(c);
  /* A file of the last level has nowhere to go. */
  assert_null(pick(fx, current(fx)->files[6][0], 6));

  /* A size compaction takes priority over the seek candidate. */
  const spec big[] = {{3, 30, "k50", "k59", 2000 * MIB}};
  build(fx, big, 1);
  f = current(fx)->files[1][0];
  c = pick(fx, f, 1);
  assert_non_null(c);
  assert_int_equal(c->reason, COMPACTION_SIZE);
  assert_int_equal(c->level, 3);
  release(c);
}

/* A manual step on a level >= 1 takes files up to the target file size; level 0 goes whole. */
static void test_manual_range_bounded(void **state) {
  fixture *fx = *state;
  fx->opt.target_file_size_base = 3 * MIB;
  spec files[14];
  char keys[10][2][4];
  for (int i = 0; i < 10; i++) {
    memcpy(keys[i][0], (char[]){'k', (char)('0' + i), '0', '\0'}, 4);
    memcpy(keys[i][1], (char[]){'k', (char)('0' + i), '9', '\0'}, 4);
    files[i] = (spec){1, 10 + (uint64_t)i, keys[i][0], keys[i][1], MIB};
  }
  files[10] = (spec){0, 30, "k05", "k15", MIB};
  files[11] = (spec){0, 31, "k55", "k75", MIB};
  files[12] = (spec){0, 32, "k70", "k80", MIB};
  files[13] = (spec){0, 33, "k95", "k99", MIB};
  build(fx, files, 14);

  compaction *c = pick_range(fx, 1, NULL, NULL);
  assert_non_null(c);
  assert_int_equal(c->reason, COMPACTION_MANUAL);
  assert_files(c->inputs[0], c->num_inputs[0], "10,11,12");
  release(c);
  c = pick_range(fx, 1, "k35", "k99");
  assert_non_null(c);
  assert_files(c->inputs[0], c->num_inputs[0], "13,14,15");
  release(c);
  c = pick_range(fx, 1, "k35", "k41");
  assert_non_null(c);
  assert_files(c->inputs[0], c->num_inputs[0], "13,14");
  release(c);
  assert_null(pick_range(fx, 2, NULL, NULL)); /* nothing there */

  c = pick_range(fx, 0, "k60", "k60"); /* level 0: the overlap chain, unbounded */
  assert_non_null(c);
  assert_files(c->inputs[0], c->num_inputs[0], "31,32");
  assert_files(c->inputs[1], c->num_inputs[1], "15,16,17,18");
  release(c);
  c = pick_range(fx, 0, NULL, NULL);
  assert_non_null(c);
  assert_int_equal(c->num_inputs[0], 4);
  assert_int_equal(c->num_inputs[1], 10);
  release(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_scores, setup, teardown),
      cmocka_unit_test_setup_teardown(test_highest_score_wins, setup, teardown),
      cmocka_unit_test_setup_teardown(test_score_threshold, setup, teardown),
      cmocka_unit_test_setup_teardown(test_compact_pointer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_level0_overlap_chain, setup, teardown),
      cmocka_unit_test_setup_teardown(test_expansion, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_expansion_adding_output, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_expansion_over_limit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_trivial_move, setup, teardown),
      cmocka_unit_test_setup_teardown(test_trivial_move_level0, setup, teardown),
      cmocka_unit_test_setup_teardown(test_flush_level, setup, teardown),
      cmocka_unit_test_setup_teardown(test_base_level_for_key, setup, teardown),
      cmocka_unit_test_setup_teardown(test_should_stop_before, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dynamic_level_bytes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dynamic_targets, setup, teardown),
      cmocka_unit_test_setup_teardown(test_seek_pick, setup, teardown),
      cmocka_unit_test_setup_teardown(test_manual_range_bounded, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
