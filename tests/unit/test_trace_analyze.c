/* Tests for the lifetime trace analyzer (src/trace/trace_analyze.c, trace_report.c).
 *
 * - A hand-built trace (written through trace_writer with a fake clock) whose every answer is
 *   known: invalidation, drop, reclaim (inline: last input table deleted; blob: the blob file
 *   deleted), compaction counts, placements and relocations, time -> seq mapping, garbage at a
 *   job's start, per-job shares, and the report files.
 * - End to end: a deterministic workload on the in-memory env with tracing on, flushes,
 *   compactions and blob GC, then the analysis: as many written records as puts and deletes,
 *   written <= invalidated <= dropped <= reclaimed for every version that has them, every
 *   dropped value invalidated first, no newest version of a key ever dropped, reports and the
 *   training export with one row per write.
 * - A damaged trace is a clean MAYFLY_ECORRUPT naming the file; an empty directory is
 *   MAYFLY_ENOTFOUND.
 * The workload's seed is printed; MAYFLY_TEST_SEED=<n> replays one. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blob/blob_format.h"
#include "db/options.h"
#include "env/env.h"
#include "mayfly.h"
#include "trace/trace_analyze.h"
#include "trace/trace_writer.h"
#include "util/error.h"
#include "util/ikey.h"
#include "util/random.h"

static uint64_t test_seed(void) {
  const char *env = getenv("MAYFLY_TEST_SEED");
  uint64_t seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
  printf("seed %llu (replay with MAYFLY_TEST_SEED=%llu)\n", (unsigned long long)seed,
         (unsigned long long)seed);
  return seed;
}

static int setup(void **state) {
  mf_env *env = NULL;
  if (env_mem_create(&env) != MAYFLY_OK) return -1;
  *state = env;
  return 0;
}

static int teardown(void **state) {
  mf_env *env = *state;
  env->destroy(env);
  return 0;
}

/* ---- a hand-built trace ---- */

static uint64_t fake_now;
static uint64_t fake_clock(mf_env *env) { return fake_now; }

static mf_slice ik(mf_buf *b, const char *user_key, uint64_t seq, int type) {
  mf_buf_clear(b);
  assert_int_equal(ikey_append(b, mf_slice_cstr(user_key), seq, type), MAYFLY_OK);
  return mf_buf_slice(b);
}

static mf_slice blob_ref(mf_buf *b, uint64_t file, uint64_t size) {
  blob_index bi = {.file_number = file, .offset = 0, .size = size, .compression = 0};
  mf_buf_clear(b);
  assert_int_equal(blob_index_encode(&bi, b), MAYFLY_OK);
  return mf_buf_slice(b);
}

#define AT(t) (fake_now = 1000 + (t))

/* The story (times in microseconds after the session start):
 *   10 put a#1 (100 B)   20 put b#2 (1000 B, blob)
 *   40-45 flush job 1: b#2 placed in blob 7; blob 7 and table 8 [a..b, seq 1..2] created
 *   50 put a#3 (100 B)   60 put b#4 (1000 B, blob)
 *   70-75 flush job 2: b#4 placed in blob 9; blob 9 and table 10 [a..b, seq 3..4]
 *   100-105 compaction job 3 of tables 8 and 10: drops a#1 (inline) and b#2 (blob 7);
 *           creates table 11 [a..b, seq 3..4]
 *   110, 111 tables 8 and 10 deleted
 *   130-135 compaction job 4 of table 11: relocates b#4 from blob 9 to blob 12; table 13
 *   140 table 11 deleted, 150 blob 7 deleted, 160 blob 9 deleted */
static void write_story(mf_env *env, const char *dir) {
  trace_writer *t = NULL;
  AT(0);
  assert_int_equal(trace_writer_open(env, dir, "/db", 0, 1, &t), MAYFLY_OK);
  mf_buf k = MF_BUF_INIT, v = MF_BUF_INIT, lo = MF_BUF_INIT, hi = MF_BUF_INIT;
  mf_slice none = mf_slice_make("", 0);
  AT(10), trace_op(t, TRACE_PUT, 1, mf_slice_cstr("a"), 100, 0);
  AT(15), trace_op(t, TRACE_GET, 1, mf_slice_cstr("a"), 100, TRACE_OP_FOUND);
  AT(16), trace_op(t, TRACE_GET, 1, mf_slice_cstr("a"), 100, TRACE_OP_FOUND);
  AT(20), trace_op(t, TRACE_PUT, 2, mf_slice_cstr("b"), 1000, TRACE_OP_TO_BLOB);
  AT(40), trace_job_start(t, 1, TRACE_JOB_FLUSH, 0, 0, 0, NULL, 0);
  AT(41), trace_blob_write(t, 1, ik(&k, "b", 2, MF_TYPE_VALUE), 1000, 0, 7);
  AT(42), trace_file_create(t, 1, 7, TRACE_FILE_BLOB, 0, 1100, 1, 0, 0, none, none);
  AT(43), trace_file_create(t, 1, 8, TRACE_FILE_TABLE, 0, 200, 2, 1, 2,
                            ik(&lo, "a", 1, MF_TYPE_VALUE), ik(&hi, "b", 2, MF_TYPE_VALUE));
  AT(45), trace_job_end(t, 1, MAYFLY_OK);
  AT(50), trace_op(t, TRACE_PUT, 3, mf_slice_cstr("a"), 100, 0);
  AT(55), trace_op(t, TRACE_GET, 3, mf_slice_cstr("a"), 100, TRACE_OP_FOUND);
  AT(60), trace_op(t, TRACE_PUT, 4, mf_slice_cstr("b"), 1000, TRACE_OP_TO_BLOB);
  AT(70), trace_job_start(t, 2, TRACE_JOB_FLUSH, 0, 0, 0, NULL, 0);
  AT(71), trace_blob_write(t, 2, ik(&k, "b", 4, MF_TYPE_VALUE), 1000, 0, 9);
  AT(72), trace_file_create(t, 2, 9, TRACE_FILE_BLOB, 0, 1100, 1, 0, 0, none, none);
  AT(73), trace_file_create(t, 2, 10, TRACE_FILE_TABLE, 0, 200, 2, 3, 4,
                            ik(&lo, "a", 3, MF_TYPE_VALUE), ik(&hi, "b", 4, MF_TYPE_VALUE));
  AT(75), trace_job_end(t, 2, MAYFLY_OK);
  uint64_t in3[] = {8, 10};
  AT(100), trace_job_start(t, 3, TRACE_JOB_COMPACTION, 0, 0, 1, in3, 2);
  static const char a_value[100] = {0};
  AT(101), trace_drop(t, 3, 1, TRACE_DROP_HIDDEN, ik(&k, "a", 1, MF_TYPE_VALUE),
                      mf_slice_make(a_value, sizeof a_value));
  AT(102), trace_drop(t, 3, 1, TRACE_DROP_HIDDEN, ik(&k, "b", 2, MF_TYPE_BLOB_INDEX),
                      blob_ref(&v, 7, 1000));
  AT(103), trace_file_create(t, 3, 11, TRACE_FILE_TABLE, 1, 150, 2, 3, 4,
                             ik(&lo, "a", 3, MF_TYPE_VALUE), ik(&hi, "b", 4, MF_TYPE_VALUE));
  AT(105), trace_job_end(t, 3, MAYFLY_OK);
  AT(110), trace_file_delete(t, 8, TRACE_FILE_TABLE);
  AT(111), trace_file_delete(t, 10, TRACE_FILE_TABLE);
  uint64_t in4[] = {11};
  AT(130), trace_job_start(t, 4, TRACE_JOB_COMPACTION, 4, 1, 1, in4, 1);
  AT(131), trace_blob_write(t, 4, ik(&k, "b", 4, MF_TYPE_BLOB_INDEX), 1000, 9, 12);
  AT(132), trace_file_create(t, 4, 12, TRACE_FILE_BLOB, 1, 1100, 1, 0, 0, none, none);
  AT(133), trace_file_create(t, 4, 13, TRACE_FILE_TABLE, 1, 150, 2, 3, 4,
                             ik(&lo, "a", 3, MF_TYPE_VALUE), ik(&hi, "b", 4, MF_TYPE_VALUE));
  AT(135), trace_job_end(t, 4, MAYFLY_OK);
  AT(140), trace_file_delete(t, 11, TRACE_FILE_TABLE);
  AT(150), trace_file_delete(t, 7, TRACE_FILE_BLOB);
  AT(160), trace_file_delete(t, 9, TRACE_FILE_BLOB);
  assert_int_equal(trace_writer_close(t), MAYFLY_OK);
  trace_writer_free(t);
  mf_buf_free(&k);
  mf_buf_free(&v);
  mf_buf_free(&lo);
  mf_buf_free(&hi);
}

static const ta_version *version_by_seq(const trace_analysis *a, uint64_t seq) {
  for (size_t i = 0; i < a->nv; i++)
    if (a->v[i].seq == seq) return &a->v[i];
  fail_msg("no version with seq %llu", (unsigned long long)seq);
  return NULL;
}

/* Lines in a file of env. */
static size_t count_lines(mf_env *env, const char *path) {
  mf_buf b = MF_BUF_INIT;
  int rc = env_read_file(env, path, &b);
  if (rc) fail_msg("reading %s: %s", path, mf_error_message());
  size_t n = 0;
  for (size_t i = 0; i < b.len; i++) n += b.data[i] == '\n';
  mf_buf_free(&b);
  return n;
}

static char *read_text(mf_env *env, const char *path) {
  mf_buf b = MF_BUF_INIT;
  assert_int_equal(env_read_file(env, path, &b), MAYFLY_OK);
  assert_int_equal(mf_buf_append(&b, "", 1), MAYFLY_OK);
  return b.data;
}

static void test_known_answers(void **state) {
  mf_env *mem = *state;
  mf_env clocked = *mem; /* the same files, our clock */
  clocked.now_micros = fake_clock;
  write_story(&clocked, "/story");
  trace_analysis *a = NULL;
  int rc = trace_analyze(mem, "/story", NULL, NULL, &a);
  if (rc) fail_msg("analyze: %s", mf_error_message());
  assert_int_equal(a->num_sessions, 1);
  assert_int_equal(a->puts, 4);
  assert_int_equal(a->deletes, 0);
  assert_int_equal(a->gets_count, 3);
  assert_int_equal(a->nkeys, 2);
  assert_int_equal(a->nv, 4);
  assert_int_equal(a->njobs, 4);
  assert_int_equal(a->untraced_drops, 0);
  const ta_version *a1 = version_by_seq(a, 1), *b2 = version_by_seq(a, 2);
  const ta_version *a3 = version_by_seq(a, 3), *b4 = version_by_seq(a, 4);
  uint64_t base = a1->written_us - 10;

  /* a#1: inline, dropped by job 3, reclaimed when its last input table (10) went */
  assert_int_equal(a1->invalidated_seq, 3);
  assert_int_equal(a1->invalidated_us - base, 50);
  assert_int_equal(a1->dropped_us - base, 101);
  assert_int_equal(a1->drop_reason, TRACE_DROP_HIDDEN);
  assert_int_equal(a1->reclaimed_us - base, 111);
  assert_int_equal(a1->reclaimed_seq, 4); /* the newest seq written by then */
  assert_int_equal(a1->dropped_seq, 4);
  assert_int_equal(a1->compactions, 1);
  assert_int_equal(a1->reads_after, 2);
  assert_int_equal(a->jobs[a1->drop_job].id, 3);
  /* bytes: WAL (1 + 100) + the flush's table (1 + 100) + one compaction (1 + 100) */
  assert_int_equal(a1->write_bytes, 3 * 101);

  /* b#2: a blob, reclaimed when blob file 7 was deleted */
  assert_int_equal(b2->invalidated_us - base, 60);
  assert_int_equal(b2->dropped_us - base, 102);
  assert_true(b2->dropped_blob);
  assert_int_equal(b2->blob_file, 7);
  assert_int_equal(b2->reclaimed_us - base, 150);
  assert_int_equal(b2->placements, 1);
  assert_int_equal(b2->compactions, 1);
  /* WAL 1001 + blob 1000 + two tables of key + 16-byte index */
  assert_int_equal(b2->write_bytes, 1001 + 1000 + 2 * 17);

  /* a#3, b#4: alive (censored); both went through jobs 3 and 4 */
  assert_int_equal(a3->invalidated_us, TA_NONE);
  assert_int_equal(a3->dropped_us, TA_NONE);
  assert_int_equal(a3->reclaimed_us, TA_NONE);
  assert_int_equal(a3->compactions, 2);
  assert_int_equal(a3->reads_after, 1);
  assert_int_equal(b4->compactions, 2);
  assert_int_equal(b4->placements, 1);
  assert_int_equal(b4->relocations, 1);
  assert_int_equal(b4->blob_file, 12);
  assert_int_equal(b4->write_bytes, 1001 + 2 * 1000 + 3 * 17);

  /* job 3 found two garbage versions at its start and dropped both */
  const ta_job *j3 = &a->jobs[2];
  assert_int_equal(j3->id, 3);
  assert_int_equal(j3->garbage_at_start, 2);
  assert_int_equal(j3->garbage_bytes_at_start, 101 + 1001);
  assert_int_equal(j3->dropped, 2);
  assert_int_equal(j3->end_us - base, 105);
  assert_int_equal(j3->status, 0);
  assert_int_equal(j3->files_created, 1);
  /* job 4: nothing left to collect */
  assert_int_equal(a->jobs[3].garbage_at_start, 0);
  assert_int_equal(a->jobs[3].relocated, 1);

  /* reports */
  assert_int_equal(trace_report_write(a, mem, "/story-out"), MAYFLY_OK);
  assert_int_equal(count_lines(mem, "/story-out/versions.csv"), 5);
  assert_int_equal(count_lines(mem, "/story-out/keys.csv"), 3);
  assert_int_equal(count_lines(mem, "/story-out/jobs.csv"), 5);
  char *versions = read_text(mem, "/story-out/versions.csv");
  /* key "a" is 61 in hex; a#1's row: every life event and its reason */
  char want[256];
  snprintf(want, sizeof want,
           "\n61,1,put,1,100,0,%llu,3,%llu,4,%llu,hidden,3,4,%llu,0,0,0,1,303,2\n",
           (unsigned long long)(base + 10), (unsigned long long)(base + 50),
           (unsigned long long)(base + 101), (unsigned long long)(base + 111));
  if (!strstr(versions, want)) fail_msg("versions.csv lacks\n%s\nin\n%s", want, versions);
  free(versions);
  char *jobs = read_text(mem, "/story-out/jobs.csv");
  assert_non_null(strstr(jobs, ",compaction,0,0,1,ok,"));
  assert_non_null(strstr(jobs, ",8 10,2,1102,2,1102,1.0000,1.0000,"));
  free(jobs);
  char *summary = read_text(mem, "/story-out/summary.txt");
  assert_non_null(strstr(summary, "4 puts, 0 deletes, 3 gets"));
  assert_non_null(strstr(summary, "valid_us"));
  free(summary);
  char *hist = read_text(mem, "/story-out/lifetimes_hist.tsv");
  /* valid lifetimes 40 and 40 (a#1, b#2): both in the [32, 64) bin */
  assert_non_null(strstr(hist, "\n32\t64\t2\t"));
  free(hist);
  assert_true(count_lines(mem, "/story-out/lifetimes_cdf.tsv") == 1001);
  assert_true(count_lines(mem, "/story-out/amplification.tsv") >= 2);
  assert_true(count_lines(mem, "/story-out/plots.gp") > 10);

  /* training export: one row per write, the label or the censoring */
  assert_int_equal(trace_export_training(a, mem, "/story-train.csv"), MAYFLY_OK);
  char *train = read_text(mem, "/story-train.csv");
  assert_int_equal(count_lines(mem, "/story-train.csv"), 5);
  /* a#3: previous lifetime 40, one earlier write, reads since the last write 2, censored */
  snprintf(want, sizeof want, "\n61,put,1,100,3,%llu,40,1,", (unsigned long long)(base + 50));
  const char *row = strstr(train, want);
  assert_non_null(row);
  assert_non_null(strstr(row, ",2,,1,"));
  free(train);
  trace_analysis_free(a);
}

/* Jobs whose JOB_END reports a failure installed nothing: their drops, relocations and
 * created files are left out. A job without a JOB_END keeps its records (a crash may have
 * lost the end with the trace's last buffer after the job installed its work), unless a job
 * of a later open drops the same version again: then that drop counts. Each session below
 * begins with RECOVERED, as one opened with the database does.
 *   10 put a#1   20 put a#2 (1000 B, blob)
 *   30-35 compaction job 1 drops a#1, relocates a#2 to blob 5, creates table 6, FAILS (EBUSY)
 *   40- compaction job 2 drops a#1 (never ends: a crash)
 * next open (job ids restart):
 *   60-65 compaction job 1 drops a#1, creates table 7: succeeds */
static void test_failed_jobs_left_out(void **state) {
  mf_env *mem = *state;
  mf_env clocked = *mem;
  clocked.now_micros = fake_clock;
  trace_writer *t = NULL;
  mf_buf k = MF_BUF_INIT, v = MF_BUF_INIT, lo = MF_BUF_INIT, hi = MF_BUF_INIT;
  mf_slice none = mf_slice_make("", 0);
  static const char a_value[100] = {0};
  AT(0);
  assert_int_equal(trace_writer_open(&clocked, "/undone", "/db", 0, 1, &t), MAYFLY_OK);
  trace_recovered(t, 0);
  AT(10), trace_op(t, TRACE_PUT, 1, mf_slice_cstr("a"), 100, 0);
  AT(20), trace_op(t, TRACE_PUT, 2, mf_slice_cstr("a"), 1000, TRACE_OP_TO_BLOB);
  uint64_t in[] = {3};
  AT(30), trace_job_start(t, 1, TRACE_JOB_COMPACTION, 0, 0, 1, in, 1);
  AT(31), trace_drop(t, 1, 1, TRACE_DROP_HIDDEN, ik(&k, "a", 1, MF_TYPE_VALUE),
                     mf_slice_make(a_value, sizeof a_value));
  AT(32), trace_blob_write(t, 1, ik(&k, "a", 2, MF_TYPE_BLOB_INDEX), 1000, 4, 5);
  AT(33), trace_file_create(t, 1, 5, TRACE_FILE_BLOB, 1, 1100, 1, 0, 0, none, none);
  AT(34), trace_file_create(t, 1, 6, TRACE_FILE_TABLE, 1, 150, 1, 2, 2,
                            ik(&lo, "a", 2, MF_TYPE_VALUE), ik(&hi, "a", 2, MF_TYPE_VALUE));
  AT(35), trace_job_end(t, 1, MAYFLY_EBUSY);
  AT(40), trace_job_start(t, 2, TRACE_JOB_COMPACTION, 0, 0, 1, in, 1);
  AT(41), trace_drop(t, 2, 1, TRACE_DROP_HIDDEN, ik(&k, "a", 1, MF_TYPE_VALUE),
                     mf_slice_make(a_value, sizeof a_value));
  assert_int_equal(trace_writer_close(t), MAYFLY_OK);
  trace_writer_free(t);
  AT(50);
  assert_int_equal(trace_writer_open(&clocked, "/undone", "/db", 0, 1, &t), MAYFLY_OK);
  trace_recovered(t, 2);
  AT(60), trace_job_start(t, 1, TRACE_JOB_COMPACTION, 0, 0, 1, in, 1);
  AT(61), trace_drop(t, 1, 1, TRACE_DROP_HIDDEN, ik(&k, "a", 1, MF_TYPE_VALUE),
                     mf_slice_make(a_value, sizeof a_value));
  AT(62), trace_file_create(t, 1, 7, TRACE_FILE_TABLE, 1, 150, 1, 2, 2,
                            ik(&lo, "a", 2, MF_TYPE_VALUE), ik(&hi, "a", 2, MF_TYPE_VALUE));
  AT(65), trace_job_end(t, 1, MAYFLY_OK);
  assert_int_equal(trace_writer_close(t), MAYFLY_OK);
  trace_writer_free(t);

  trace_analysis *a = NULL;
  int rc = trace_analyze(mem, "/undone", NULL, NULL, &a);
  if (rc) fail_msg("analyze: %s", mf_error_message());
  assert_int_equal(a->num_sessions, 2);
  assert_int_equal(a->njobs, 3);
  assert_int_equal(a->untraced_drops, 0);
  assert_int_equal(a->undone_job_records, 4); /* job 1: drop, relocation, 2 files */
  assert_int_equal(a->redone_drops, 1);       /* job 2's drop, taken over by the next open */
  assert_int_equal(a->relocations, 0);
  assert_true(a->jobs[1].never_ended);
  assert_false(a->jobs[2].never_ended);
  const ta_version *a1 = version_by_seq(a, 1), *a2 = version_by_seq(a, 2);
  /* (each session's times start from its own wall clock reading, so only the job tells) */
  assert_int_equal(a1->drop_reason, TRACE_DROP_HIDDEN);
  assert_int_equal(a1->drop_job, 2);
  assert_int_equal(a->jobs[2].status, 0);
  assert_true(a->jobs[2].session != a->jobs[0].session);
  assert_int_equal(a2->relocations, 0);
  assert_int_equal(a2->blob_file, 0);
  for (size_t i = 0; i < a->nfiles; i++)
    if (a->files[i].number == 5 || a->files[i].number == 6)
      fail_msg("file %llu of the failed job is in the analysis",
               (unsigned long long)a->files[i].number);
  trace_analysis_free(a);
  mf_buf_free(&k);
  mf_buf_free(&v);
  mf_buf_free(&lo);
  mf_buf_free(&hi);
}

/* A job's outcome is known across the sessions of one open: tracing switched to a new session
 * while jobs ran puts their JOB_START and drops in one file and their JOB_END in the next (a
 * flush that succeeds, a compaction a close interrupted); and a job whose JOB_END a crash
 * lost keeps its drops. */
static void test_job_outcome_across_sessions(void **state) {
  mf_env *mem = *state;
  mf_buf k = MF_BUF_INIT;
  trace_writer *t = NULL;
  assert_int_equal(trace_writer_open(mem, "/straddle", "/db", 0, 0, &t), MAYFLY_OK);
  trace_recovered(t, 0);
  trace_op(t, TRACE_PUT, 1, mf_slice_cstr("a"), 10, 0);
  trace_op(t, TRACE_PUT, 2, mf_slice_cstr("a"), 10, 0);
  trace_op(t, TRACE_PUT, 3, mf_slice_cstr("b"), 10, 0);
  trace_op(t, TRACE_PUT, 4, mf_slice_cstr("b"), 10, 0);
  trace_op(t, TRACE_PUT, 5, mf_slice_cstr("c"), 10, 0);
  trace_op(t, TRACE_PUT, 6, mf_slice_cstr("c"), 10, 0);
  trace_job_start(t, 1, TRACE_JOB_FLUSH, 0, 0, 0, NULL, 0);
  trace_drop(t, 1, 0, TRACE_DROP_MEMTABLE, ik(&k, "a", 1, MF_TYPE_VALUE), mf_slice_cstr("x"));
  uint64_t in[] = {9};
  trace_job_start(t, 3, TRACE_JOB_COMPACTION, 0, 0, 1, in, 1);
  trace_drop(t, 3, 1, TRACE_DROP_HIDDEN, ik(&k, "c", 5, MF_TYPE_VALUE), mf_slice_cstr("x"));
  assert_int_equal(trace_writer_close(t), MAYFLY_OK);
  trace_writer_free(t);
  /* the same open, a new session (trace options changed): the flush ends here */
  assert_int_equal(trace_writer_open(mem, "/straddle", "/db", 0, 1, &t), MAYFLY_OK);
  trace_job_end(t, 1, MAYFLY_OK);
  trace_job_end(t, 3, MAYFLY_EBUSY); /* interrupted by a close: installed nothing */
  trace_job_start(t, 2, TRACE_JOB_FLUSH, 0, 0, 0, NULL, 0);
  trace_drop(t, 2, 0, TRACE_DROP_MEMTABLE, ik(&k, "b", 3, MF_TYPE_VALUE), mf_slice_cstr("x"));
  /* ...and a crash loses job 2's JOB_END */
  assert_int_equal(trace_writer_close(t), MAYFLY_OK);
  trace_writer_free(t);
  assert_int_equal(trace_writer_open(mem, "/straddle", "/db", 0, 0, &t), MAYFLY_OK);
  trace_recovered(t, 6);
  assert_int_equal(trace_writer_close(t), MAYFLY_OK);
  trace_writer_free(t);

  trace_analysis *a = NULL;
  assert_int_equal(trace_analyze(mem, "/straddle", NULL, NULL, &a), MAYFLY_OK);
  assert_int_equal(a->undone_job_records, 1); /* job 3's drop */
  assert_int_equal(version_by_seq(a, 5)->drop_reason, 0);
  assert_int_equal(a->untraced_drops, 0);
  assert_int_equal(version_by_seq(a, 1)->drop_reason, TRACE_DROP_MEMTABLE);
  assert_int_equal(a->jobs[version_by_seq(a, 1)->drop_job].id, 1);
  assert_int_equal(a->jobs[version_by_seq(a, 1)->drop_job].status, 0);
  assert_int_equal(version_by_seq(a, 3)->drop_reason, TRACE_DROP_MEMTABLE);
  assert_true(a->jobs[version_by_seq(a, 3)->drop_job].never_ended);
  trace_analysis_free(a);
  mf_buf_free(&k);
}

/* Writes traced in a session that crashed and not recovered are left out: the next session
 * says what it recovered (RECOVERED), and gives their sequence numbers again.
 *   session 1: a#1, b#2, c#3, d#4, e#5, gets of a at 3 and 5; a crash keeps 1..3
 *   session 2: recovered up to 3; f#4, a#5 */
static void test_lost_writes_left_out(void **state) {
  mf_env *mem = *state;
  trace_writer *t = NULL;
  assert_int_equal(trace_writer_open(mem, "/lost", "/db", 0, 1, &t), MAYFLY_OK);
  trace_recovered(t, 0);
  static const char *const first[] = {"a", "b", "c", "d", "e"};
  for (int i = 0; i < 5; i++)
    trace_op(t, TRACE_PUT, (uint64_t)i + 1, mf_slice_cstr(first[i]), 10, 0);
  /* Gets of a: at seq 3 it read a#1, and so at seq 5 (after lost writes); but seq 5 is
   * given again to a#5 below, which the second read would be credited to: it is left out. */
  trace_op(t, TRACE_GET, 3, mf_slice_cstr("a"), 10, 0);
  trace_op(t, TRACE_GET, 5, mf_slice_cstr("a"), 10, 0);
  assert_int_equal(trace_writer_close(t), MAYFLY_OK);
  trace_writer_free(t);
  assert_int_equal(trace_writer_open(mem, "/lost", "/db", 0, 1, &t), MAYFLY_OK);
  trace_recovered(t, 3);
  trace_op(t, TRACE_PUT, 4, mf_slice_cstr("f"), 10, 0);
  trace_op(t, TRACE_PUT, 5, mf_slice_cstr("a"), 10, 0);
  assert_int_equal(trace_writer_close(t), MAYFLY_OK);
  trace_writer_free(t);

  trace_analysis *a = NULL;
  assert_int_equal(trace_analyze(mem, "/lost", NULL, NULL, &a), MAYFLY_OK);
  assert_int_equal(a->lost_writes, 2);
  assert_int_equal(a->lost_gets, 1);
  assert_int_equal(a->gets_count, 1);
  assert_int_equal(version_by_seq(a, 1)->reads_after, 1);
  assert_int_equal(version_by_seq(a, 5)->reads_after, 0);
  assert_int_equal(a->duplicate_seqs, 0);
  assert_int_equal(a->puts, 5);
  assert_int_equal(a->nv, 5);
  static const char *const keys[] = {"a", "b", "c", "f", "a"};
  for (uint64_t seq = 1; seq <= 5; seq++) {
    const ta_version *v = version_by_seq(a, seq);
    char text[8];
    trace_key_text(a, v->key_id, text, sizeof text);
    char want[8];
    snprintf(want, sizeof want, "%02x", (unsigned char)keys[seq - 1][0]);
    if (strcmp(text, want) != 0)
      fail_msg("seq %llu: key %s, not %s", (unsigned long long)seq, text, want);
  }
  /* a#1 is invalidated by a#5, not by anything lost */
  assert_int_equal(version_by_seq(a, 1)->invalidated_seq, 5);
  assert_int_equal(version_by_seq(a, 4)->invalidated_seq, TA_NONE);
  mf_buf summary = MF_BUF_INIT;
  assert_int_equal(trace_report_summary(a, &summary), MAYFLY_OK);
  assert_int_equal(mf_buf_append(&summary, "", 1), MAYFLY_OK);
  assert_non_null(strstr(summary.data, "2 writes lost in a crash"));
  assert_non_null(strstr(summary.data, "and 1 gets that read after them"));
  /* d and e were written only by the lost writes: they are no user keys of the trace */
  if (!strstr(summary.data, "; 4 user keys: 3 written once, 1 written more than once"))
    fail_msg("summary counts keys of lost writes:\n%s", summary.data);
  mf_buf_free(&summary);
  assert_int_equal(trace_report_write(a, mem, "/lost-out"), MAYFLY_OK);
  mf_buf csv = MF_BUF_INIT;
  assert_int_equal(env_read_file(mem, "/lost-out/keys.csv", &csv), MAYFLY_OK);
  assert_int_equal(mf_buf_append(&csv, "", 1), MAYFLY_OK);
  int rows = 0;
  for (const char *p = csv.data; (p = strchr(p, '\n')) != NULL && p[1]; p++) rows++;
  if (rows != 4 || strstr(csv.data, "\n64,") || strstr(csv.data, "\n65,"))
    fail_msg("keys.csv lists keys of lost writes:\n%s", csv.data);
  mf_buf_free(&csv);
  trace_analysis_free(a);
}

/* Keys longer than 64 bytes that differ only at the end print whole in every CSV, so they
 * stay two keys there too. */
static void test_long_keys_whole(void **state) {
  mf_env *mem = *state;
  char k1[200], k2[200];
  memset(k1, 'k', sizeof k1);
  memcpy(k2, k1, sizeof k2);
  k2[sizeof k2 - 1] = 'x';
  trace_writer *t = NULL;
  assert_int_equal(trace_writer_open(mem, "/long", "/db", 0, 0, &t), MAYFLY_OK);
  trace_op(t, TRACE_PUT, 1, mf_slice_make(k1, sizeof k1), 10, 0);
  trace_op(t, TRACE_PUT, 2, mf_slice_make(k2, sizeof k2), 10, 0);
  assert_int_equal(trace_writer_close(t), MAYFLY_OK);
  trace_writer_free(t);
  trace_analysis *a = NULL;
  assert_int_equal(trace_analyze(mem, "/long", NULL, NULL, &a), MAYFLY_OK);
  assert_int_equal(a->nkeys, 2);
  assert_int_equal(trace_report_write(a, mem, "/long-out"), MAYFLY_OK);
  assert_int_equal(trace_export_training(a, mem, "/long-out/train.csv"), MAYFLY_OK);
  static const char *const files[] = {"/long-out/keys.csv", "/long-out/versions.csv",
                                      "/long-out/train.csv"};
  for (size_t f = 0; f < 3; f++) {
    char *text = read_text(mem, files[f]);
    const char *line2 = strchr(text, '\n') + 1, *line3 = strchr(line2, '\n') + 1;
    size_t cell2 = strcspn(line2, ","), cell3 = strcspn(line3, ",");
    if (cell2 != 2 * sizeof k1 || cell3 != 2 * sizeof k2 || memcmp(line2, line3, cell2) == 0)
      fail_msg("%s: keys of %zu and %zu hex digits, %s", files[f], cell2, cell3,
               memcmp(line2, line3, cell2) == 0 ? "alike" : "different");
    free(text);
  }
  trace_analysis_free(a);
}

static void test_errors(void **state) {
  mf_env *env = *state;
  trace_analysis *a = NULL;
  assert_int_equal(env->make_dir(env, "/empty"), MAYFLY_OK);
  assert_int_equal(trace_analyze(env, "/empty", NULL, NULL, &a), MAYFLY_ENOTFOUND);
  assert_null(a);
  /* a job file whose middle is damaged */
  mf_env clocked = *env;
  clocked.now_micros = fake_clock;
  trace_writer *t = NULL;
  assert_int_equal(trace_writer_open(&clocked, "/bad", "/db", 0, 0, &t), MAYFLY_OK);
  mf_buf k = MF_BUF_INIT;
  for (int i = 0; i < 20000; i++) {
    char key[32];
    snprintf(key, sizeof key, "key-%d", i);
    trace_op(t, TRACE_PUT, (uint64_t)i + 1, mf_slice_cstr(key), 10, 0);
    trace_drop(t, 1, 1, TRACE_DROP_HIDDEN, ik(&k, key, (uint64_t)i + 1, MF_TYPE_VALUE),
               mf_slice_make("x", 1));
  }
  mf_buf_free(&k);
  trace_writer_free(t);
  mf_buf b = MF_BUF_INIT;
  assert_int_equal(env_read_file(env, "/bad/trace-000001.job", &b), MAYFLY_OK);
  assert_true(b.len > 4 * 32768);
  b.data[b.len / 2] ^= 0x55;
  mf_wfile *f = NULL;
  assert_int_equal(env->new_writable(env, "/bad/trace-000001.job", &f), MAYFLY_OK);
  assert_int_equal(env->append(f, b.data, b.len), MAYFLY_OK);
  assert_int_equal(env->close_writable(f), MAYFLY_OK);
  mf_buf_free(&b);
  mf_error_clear();
  assert_int_equal(trace_analyze(env, "/bad", NULL, NULL, &a), MAYFLY_ECORRUPT);
  assert_null(a);
  assert_non_null(strstr(mf_error_message(), "/bad/trace-000001.job"));
  assert_non_null(strstr(mf_error_message(), "offset"));
}

/* ---- end to end ---- */

static void ok(mayfly_db *db, int rc, const char *what) {
  if (rc != MAYFLY_OK) fail_msg("%s: rc %d: %s", what, rc, mayfly_errmsg(db));
}

static void set(struct mayfly_options *o, const char *name, const char *value) {
  if (options_set(o, name, value, 0)) fail_msg("%s=%s: %s", name, value, mf_error_message());
}

/* A flushed table placed below level 0 (it overlaps nothing there) is traced at the level
 * it went to. */
static void test_flush_level_traced(void **state) {
  mf_env *env = *state;
  struct mayfly_options o;
  options_init_defaults(&o);
  options_set_env(&o, env);
  set(&o, "trace_dir", "/fl-trace");
  set(&o, "max_mem_compaction_level", "2");
  set(&o, "enable_blob_files", "false");
  mayfly_db *db = NULL;
  ok(NULL, mayfly_open("/fl", &o, &db), "open");
  ok(db, mayfly_put(db, "k", 1, "v", 1, 0), "put");
  ok(db, mayfly_flush(db), "flush");
  char *n2 = NULL;
  ok(db, mayfly_property(db, "mayfly.num-files-at-level2", &n2), "property");
  assert_string_equal(n2, "1");
  mayfly_free(n2);
  ok(db, mayfly_close(db), "close");
  trace_analysis *a = NULL;
  ok(NULL, trace_analyze(env, "/fl-trace", NULL, NULL, &a), "analyze");
  int tables = 0;
  for (size_t i = 0; i < a->nfiles; i++) {
    if (a->files[i].kind != TRACE_FILE_TABLE) continue;
    tables++;
    assert_int_equal(a->files[i].level, 2);
  }
  assert_int_equal(tables, 1);
  trace_analysis_free(a);
}

/* A trace with no writes (a session that only read) is analyzed, reported and exported as
 * an empty analysis, not an error (nothing to sort must not reach qsort with no array). */
static void test_no_writes(void **state) {
  mf_env *env = *state;
  struct mayfly_options o;
  options_init_defaults(&o);
  options_set_env(&o, env);
  set(&o, "trace_dir", "/ro-trace");
  mayfly_db *db = NULL;
  ok(NULL, mayfly_open("/ro", &o, &db), "open");
  void *v = NULL;
  size_t vlen = 0;
  assert_int_equal(mayfly_get(db, NULL, "k", 1, &v, &vlen), MAYFLY_ENOTFOUND);
  ok(db, mayfly_close(db), "close");
  trace_analysis *a = NULL;
  ok(NULL, trace_analyze(env, "/ro-trace", NULL, NULL, &a), "analyze");
  assert_int_equal(a->nv, 0);
  ok(NULL, trace_report_write(a, env, "/ro-report"), "report");
  mf_buf summary = MF_BUF_INIT;
  ok(NULL, trace_report_summary(a, &summary), "summary");
  mf_buf_free(&summary);
  ok(NULL, trace_export_training(a, env, "/ro-train.csv"), "export");
  trace_analysis_free(a);
}

static void test_end_to_end(void **state) {
  mf_env *env = *state;
  struct mayfly_options o;
  options_init_defaults(&o);
  options_set_env(&o, env);
  set(&o, "trace_dir", "/e2e-trace");
  set(&o, "write_buffer_size", "64KiB");
  set(&o, "min_blob_size", "200");
  set(&o, "blob_file_size", "64KiB");
  set(&o, "target_file_size_base", "64KiB");
  set(&o, "max_bytes_for_level_base", "1MiB");
  set(&o, "level0_file_num_compaction_trigger", "2");
  set(&o, "blob_garbage_collection_age_cutoff", "1");
  mayfly_db *db = NULL;
  ok(NULL, mayfly_open("/e2e", &o, &db), "open");

  uint64_t seed = test_seed();
  mf_random rnd;
  mf_random_seed(&rnd, seed);
  enum { KEYS = 300, OPS = 6000 };
  uint64_t puts = 0, deletes = 0;
  char key[16], value[512];
  memset(value, 'v', sizeof value);
  mayfly_batch *b = NULL;
  ok(NULL, mayfly_batch_create(&b), "batch");
  for (int i = 0; i < OPS; i++) {
    int klen = snprintf(key, sizeof key, "key%04u", (unsigned)mf_random_uniform(&rnd, KEYS));
    uint64_t r = mf_random_uniform(&rnd, 100);
    if (r < 10) {
      ok(db, mayfly_delete(db, key, (size_t)klen, 0), "delete");
      deletes++;
    } else if (r < 15) {
      mayfly_batch_clear(b);
      for (int j = 0; j < 3; j++) {
        klen = snprintf(key, sizeof key, "key%04u", (unsigned)mf_random_uniform(&rnd, KEYS));
        ok(NULL, mayfly_batch_put(b, key, (size_t)klen, value, 50), "batch put");
      }
      ok(db, mayfly_write(db, b, 0), "write");
      puts += 3;
    } else {
      size_t vlen = 10 + mf_random_uniform(&rnd, 400);
      ok(db, mayfly_put(db, key, (size_t)klen, value, vlen, 0), "put");
      puts++;
    }
    if (i % 1500 == 1499) ok(db, mayfly_flush(db), "flush");
  }
  mayfly_batch_destroy(b);
  ok(db, mayfly_compact_range(db, NULL, 0, NULL, 0), "compact_range");
  ok(db, mayfly_wait_idle(db), "wait_idle");
  ok(db, mayfly_close(db), "close");

  trace_analysis *a = NULL;
  int rc = trace_analyze(env, "/e2e-trace", NULL, NULL, &a);
  if (rc) fail_msg("analyze: %s", mf_error_message());
  assert_int_equal(a->puts, puts);
  assert_int_equal(a->deletes, deletes);
  assert_int_equal(a->nv, puts + deletes);
  assert_int_equal(a->untraced_drops, 0);
  assert_int_equal(a->untraced_blob_moves, 0);
  assert_int_equal(a->duplicate_seqs, 0);
  uint64_t dropped = 0, reclaimed = 0, counted = 0, memtable_drops = 0, base_drops = 0;
  for (size_t i = 0; i < a->nv; i++) {
    const ta_version *v = &a->v[i];
    if (v->invalidated_us != TA_NONE) {
      assert_true(v->invalidated_seq > v->seq);
      assert_true(v->invalidated_us >= v->written_us);
    }
    if (v->drop_reason) {
      dropped++;
      memtable_drops += v->drop_reason == TRACE_DROP_MEMTABLE;
      base_drops += v->drop_reason == TRACE_DROP_BASE_TOMBSTONE;
      assert_true(v->dropped_us >= v->written_us);
      if (v->drop_reason != TRACE_DROP_BASE_TOMBSTONE) {
        /* a version is dropped only after a newer one made it garbage */
        if (v->invalidated_us == TA_NONE)
          fail_msg("seq %llu dropped (reason %d) but never invalidated",
                   (unsigned long long)v->seq, v->drop_reason);
        assert_true(v->invalidated_us <= v->dropped_us);
        assert_true(v->invalidated_seq <= v->dropped_seq);
      } else {
        assert_int_equal(v->type, TRACE_DELETE);
      }
      if (v->type == TRACE_PUT) assert_int_not_equal(v->drop_reason, TRACE_DROP_BASE_TOMBSTONE);
    }
    if (v->reclaimed_us != TA_NONE) {
      reclaimed++;
      assert_true(v->drop_reason != 0);
      assert_true(v->reclaimed_us >= v->dropped_us);
    }
    if (v->compactions != UINT32_MAX && v->compactions > 0) counted++;
  }
  /* the newest version of every key is live data: never dropped, unless a tombstone with
   * nothing left below it */
  for (size_t k = 0; k < a->nkeys; k++) {
    const ta_key *key_info = &a->keys[k];
    const ta_version *last = &a->v[a->by_key[key_info->first + key_info->count - 1]];
    if (last->drop_reason) assert_int_equal(last->drop_reason, TRACE_DROP_BASE_TOMBSTONE);
  }
  printf("%zu versions: %llu dropped (%llu in memtables, %llu base tombstones), %llu "
         "reclaimed, %llu went through a compaction; %llu placements, %llu relocations\n",
         a->nv, (unsigned long long)dropped, (unsigned long long)memtable_drops,
         (unsigned long long)base_drops, (unsigned long long)reclaimed,
         (unsigned long long)counted, (unsigned long long)a->placements,
         (unsigned long long)a->relocations);
  assert_true(dropped > 0);
  assert_true(memtable_drops > 0);
  assert_true(base_drops > 0);
  assert_true(reclaimed * 2 >= dropped);
  assert_true(counted > 0);
  assert_true(a->placements > 0);
  assert_true(a->relocations > 0);
  uint64_t flushes = 0, compactions = 0;
  for (size_t j = 0; j < a->njobs; j++) {
    flushes += a->jobs[j].kind == TRACE_JOB_FLUSH;
    compactions += a->jobs[j].kind == TRACE_JOB_COMPACTION;
    assert_int_equal(a->jobs[j].status, 0);
    assert_true(a->jobs[j].end_us >= a->jobs[j].start_us);
  }
  assert_true(flushes >= 4);
  assert_true(compactions >= 1);

  assert_int_equal(trace_report_write(a, env, "/e2e-out"), MAYFLY_OK);
  assert_int_equal(count_lines(env, "/e2e-out/versions.csv"), a->nv + 1);
  assert_int_equal(count_lines(env, "/e2e-out/keys.csv"), a->nkeys + 1);
  assert_int_equal(count_lines(env, "/e2e-out/jobs.csv"), a->njobs + 1);
  assert_int_equal(trace_export_training(a, env, "/e2e-train.csv"), MAYFLY_OK);
  assert_int_equal(count_lines(env, "/e2e-train.csv"), a->nv + 1);
  trace_analysis_free(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_known_answers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failed_jobs_left_out, setup, teardown),
      cmocka_unit_test_setup_teardown(test_job_outcome_across_sessions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lost_writes_left_out, setup, teardown),
      cmocka_unit_test_setup_teardown(test_long_keys_whole, setup, teardown),
      cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_flush_level_traced, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_writes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_end_to_end, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
