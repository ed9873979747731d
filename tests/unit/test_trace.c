/* Tests for the lifetime trace files (src/trace/trace_writer.c, trace_reader.c) and the
 * trace options on an open database (src/db/db_trace.c).
 *
 * - Every record type written is read back field by field, keys raw and hashed.
 * - Sessions: each open takes the next number; reopening never overwrites.
 * - Many records span several chunks and log blocks; a torn tail is a quiet end, a damaged
 *   chunk followed by good data and a wrong file kind are MAYFLY_ECORRUPT naming the file.
 * - Concurrent appends from several threads all arrive, each intact.
 * - trace_dir, trace_key_hash and trace_gets on an open database: turning tracing on and off
 *   opens and closes sessions, a bad value leaves the database as it was, and every write and
 *   get made while tracing is on is in the op trace with its sequence number.
 * Randomized parts print their seed; MAYFLY_TEST_SEED=<n> replays one. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blob/blob_format.h"
#include "db/options.h"
#include "env/env.h"
#include "mayfly.h"
#include "trace/trace_analyze.h"
#include "trace/trace_format.h"
#include "trace/trace_reader.h"
#include "trace/trace_writer.h"
#include "util/checksum.h"
#include "util/coding.h"
#include "util/error.h"
#include "util/ikey.h"
#include "util/random.h"
#include "wal/wal_format.h"
#include "wal/wal_writer.h"

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

static mf_slice ikey(mf_buf *b, const char *user_key, uint64_t seq, int type) {
  mf_buf_clear(b);
  assert_int_equal(ikey_append(b, mf_slice_cstr(user_key), seq, type), MAYFLY_OK);
  return mf_buf_slice(b);
}

static trace_reader *open_reader(mf_env *env, const char *dir, uint64_t session, int which) {
  char *name = trace_file_name(dir, session, which);
  assert_non_null(name);
  trace_reader *r = NULL;
  int rc = trace_reader_open(env, name, which, &r);
  if (rc) fail_msg("opening %s: %s", name, mf_error_message());
  free(name);
  return r;
}

static void next_ok(trace_reader *r, trace_record *rec, int tag) {
  int rc = trace_reader_next(r, rec);
  if (rc) fail_msg("reading: rc %d %s", rc, mf_error_message());
  assert_int_equal(rec->tag, tag);
}

static void assert_key(const trace_record *rec, const char *key, int hashed) {
  assert_int_equal(rec->key_size, strlen(key));
  if (hashed) {
    assert_int_equal(rec->key.len, 8);
    assert_int_equal(decode_fixed64(rec->key.data), mf_hash64(key, strlen(key)));
  } else {
    assert_int_equal(rec->key.len, strlen(key));
    assert_memory_equal(rec->key.data, key, strlen(key));
  }
}

/* Writes one record of every kind and reads them back. */
static void round_trip(mf_env *env, const char *dir, int hashed) {
  trace_writer *t = NULL;
  assert_int_equal(trace_writer_open(env, dir, "/db", hashed, 1, &t), MAYFLY_OK);
  uint64_t session = trace_writer_session(t);
  mf_buf kb = MF_BUF_INIT, vb = MF_BUF_INIT, lo = MF_BUF_INIT, hi = MF_BUF_INIT;
  trace_op(t, TRACE_PUT, 7, mf_slice_cstr("alpha"), 1234, TRACE_OP_TO_BLOB);
  trace_op(t, TRACE_DELETE, 8, mf_slice_cstr("beta"), 0, 0);
  trace_op(t, TRACE_GET, 8, mf_slice_cstr("alpha"), 1234, TRACE_OP_FOUND);
  uint64_t inputs[3] = {11, 12, 300000};
  trace_job_start(t, 5, TRACE_JOB_COMPACTION, 2, 1, 2, inputs, 3);
  trace_drop(t, 5, 2, TRACE_DROP_HIDDEN, ikey(&kb, "alpha", 3, MF_TYPE_VALUE),
             mf_slice_make("xyz", 3));
  blob_index bi = {.file_number = 42, .offset = 10, .size = 999, .compression = 0};
  assert_int_equal(blob_index_encode(&bi, &vb), MAYFLY_OK);
  trace_drop(t, 5, 2, TRACE_DROP_HIDDEN, ikey(&kb, "gamma", 4, MF_TYPE_BLOB_INDEX),
             mf_buf_slice(&vb));
  /* a hidden tombstone is reported as an obsolete tombstone */
  trace_drop(t, 5, 2, TRACE_DROP_MEMTABLE, ikey(&kb, "beta", 2, MF_TYPE_DELETE),
             mf_slice_make("", 0));
  trace_blob_write(t, 5, ikey(&kb, "gamma", 6, MF_TYPE_VALUE), 999, 0, 50);
  trace_blob_write(t, 5, ikey(&kb, "gamma", 6, MF_TYPE_BLOB_INDEX), 999, 50, 51);
  trace_file_create(t, 5, 60, TRACE_FILE_TABLE, 2, 4096, 17, 3, 9,
                    ikey(&lo, "aa", 9, MF_TYPE_VALUE), ikey(&hi, "zz", 3, MF_TYPE_VALUE));
  trace_file_delete(t, 11, TRACE_FILE_TABLE);
  trace_job_end(t, 5, MAYFLY_EIO);
  assert_int_equal(trace_writer_close(t), MAYFLY_OK);
  trace_op(t, TRACE_PUT, 99, mf_slice_cstr("late"), 1, 0); /* ignored after close */
  trace_writer_free(t);

  trace_reader *r = open_reader(env, dir, session, TRACE_OP_FILE);
  const trace_session_info *info = trace_reader_info(r);
  assert_true(info->present);
  assert_int_equal(info->session, session);
  assert_int_equal(info->flags, (hashed ? TRACE_FLAG_KEY_HASH : 0) | TRACE_FLAG_GETS);
  assert_string_equal(info->dbname, "/db");
  assert_true(info->wall_start_us > UINT64_C(1500000000) * 1000000); /* after 2017 */
  trace_record rec;
  next_ok(r, &rec, TRACE_PUT);
  assert_int_equal(rec.seq, 7);
  assert_key(&rec, "alpha", hashed);
  assert_int_equal(rec.value_size, 1234);
  assert_int_equal(rec.flags, TRACE_OP_TO_BLOB);
  assert_true(rec.time_us >= info->wall_start_us);
  uint64_t t0 = rec.time_us;
  next_ok(r, &rec, TRACE_DELETE);
  assert_int_equal(rec.seq, 8);
  assert_key(&rec, "beta", hashed);
  assert_true(rec.time_us >= t0);
  next_ok(r, &rec, TRACE_GET);
  assert_int_equal(rec.flags, TRACE_OP_FOUND);
  assert_int_equal(trace_reader_next(r, &rec), MAYFLY_ENOTFOUND);
  assert_int_equal(trace_reader_next(r, &rec), MAYFLY_ENOTFOUND);
  trace_reader_close(r);

  r = open_reader(env, dir, session, TRACE_JOB_FILE);
  next_ok(r, &rec, TRACE_JOB_START);
  assert_int_equal(rec.job, 5);
  assert_int_equal(rec.kind, TRACE_JOB_COMPACTION);
  assert_int_equal(rec.reason, 2);
  assert_int_equal(rec.level, 1);
  assert_int_equal(rec.output_level, 2);
  assert_int_equal(rec.num_inputs, 3);
  assert_int_equal(rec.inputs[2], 300000);
  next_ok(r, &rec, TRACE_DROP);
  assert_int_equal(rec.seq, 3);
  assert_key(&rec, "alpha", hashed);
  assert_int_equal(rec.value_size, 3);
  assert_int_equal(rec.reason, TRACE_DROP_HIDDEN);
  assert_int_equal(rec.file, 0);
  next_ok(r, &rec, TRACE_DROP);
  assert_int_equal(rec.file, 42);
  assert_int_equal(rec.value_size, 999);
  next_ok(r, &rec, TRACE_DROP);
  assert_int_equal(rec.reason, TRACE_DROP_OBSOLETE_TOMBSTONE);
  next_ok(r, &rec, TRACE_PLACE);
  assert_int_equal(rec.seq, 6);
  assert_int_equal(rec.file, 50);
  next_ok(r, &rec, TRACE_RELOCATE);
  assert_int_equal(rec.from_file, 50);
  assert_int_equal(rec.file, 51);
  next_ok(r, &rec, TRACE_FILE_CREATE);
  assert_int_equal(rec.file, 60);
  assert_int_equal(rec.kind, TRACE_FILE_TABLE);
  assert_int_equal(rec.size, 4096);
  assert_int_equal(rec.entries, 17);
  assert_int_equal(rec.smallest_seq, 3);
  assert_int_equal(rec.largest_seq, 9);
  if (hashed) {
    assert_int_equal(rec.smallest_key.len, 0);
  } else {
    assert_int_equal(rec.smallest_key.len, 2);
    assert_memory_equal(rec.largest_key.data, "zz", 2);
  }
  next_ok(r, &rec, TRACE_FILE_DELETE);
  assert_int_equal(rec.file, 11);
  next_ok(r, &rec, TRACE_JOB_END);
  assert_int_equal(rec.status, -MAYFLY_EIO);
  assert_int_equal(trace_reader_next(r, &rec), MAYFLY_ENOTFOUND);
  trace_reader_close(r);
  mf_buf_free(&kb);
  mf_buf_free(&vb);
  mf_buf_free(&lo);
  mf_buf_free(&hi);
}

static void test_round_trip(void **state) {
  round_trip(*state, "/trace-raw", 0);
  round_trip(*state, "/trace-hashed", 1);
}

static void test_sessions(void **state) {
  mf_env *env = *state;
  for (uint64_t want = 1; want <= 3; want++) {
    trace_writer *t = NULL;
    assert_int_equal(trace_writer_open(env, "/sessions", "/db", 0, 0, &t), MAYFLY_OK);
    assert_int_equal(trace_writer_session(t), want);
    trace_op(t, TRACE_PUT, want, mf_slice_cstr("k"), 1, 0);
    trace_writer_free(t); /* closes */
  }
  uint64_t *s = NULL;
  size_t n = 0;
  assert_int_equal(trace_list_sessions(env, "/sessions", &s, &n), MAYFLY_OK);
  assert_int_equal(n, 3);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(s[i], i + 1);
    /* each session kept its own record */
    trace_reader *r = open_reader(env, "/sessions", s[i], TRACE_OP_FILE);
    trace_record rec;
    next_ok(r, &rec, TRACE_PUT);
    assert_int_equal(rec.seq, i + 1);
    trace_reader_close(r);
  }
  free(s);
  uint64_t session;
  int which;
  assert_true(trace_parse_file_name("trace-000012.job", &session, &which));
  assert_int_equal(session, 12);
  assert_int_equal(which, TRACE_JOB_FILE);
  assert_false(trace_parse_file_name("trace-12.jobs", &session, &which));
  assert_false(trace_parse_file_name("trace-.op", &session, &which));
  assert_false(trace_parse_file_name("000012.log", &session, &which));
}

/* Writes n puts with keys of random length; returns the session. */
static uint64_t write_many(mf_env *env, const char *dir, int n, mf_random *rnd) {
  trace_writer *t = NULL;
  assert_int_equal(trace_writer_open(env, dir, "/db", 0, 0, &t), MAYFLY_OK);
  char key[300];
  for (int i = 0; i < n; i++) {
    size_t len = 1 + mf_random_uniform(rnd, sizeof key - 1);
    memset(key, 'a' + i % 26, len);
    trace_op(t, TRACE_PUT, (uint64_t)i + 1, mf_slice_make(key, len), (uint64_t)i, 0);
  }
  uint64_t session = trace_writer_session(t);
  assert_int_equal(trace_writer_close(t), MAYFLY_OK);
  trace_writer_free(t);
  return session;
}

static int read_all(mf_env *env, const char *dir, uint64_t session, int *count) {
  char *name = trace_file_name(dir, session, TRACE_OP_FILE);
  trace_reader *r = NULL;
  int rc = trace_reader_open(env, name, TRACE_OP_FILE, &r);
  free(name);
  *count = 0;
  if (rc) return rc;
  trace_record rec;
  while ((rc = trace_reader_next(r, &rec)) == MAYFLY_OK) {
    if (rec.seq != (uint64_t)*count + 1 || rec.value_size != (uint64_t)*count) {
      trace_reader_close(r);
      fail_msg("record %d has seq %llu", *count, (unsigned long long)rec.seq);
    }
    (*count)++;
  }
  trace_reader_close(r);
  return rc;
}

/* Overwrites byte `at` of path with its complement. */
static void flip_byte(mf_env *env, const char *path, uint64_t at) {
  mf_buf b = MF_BUF_INIT;
  assert_int_equal(env_read_file(env, path, &b), MAYFLY_OK);
  assert_true(at < b.len);
  b.data[at] = (char)~b.data[at];
  mf_wfile *f = NULL;
  assert_int_equal(env->new_writable(env, path, &f), MAYFLY_OK);
  assert_int_equal(env->append(f, b.data, b.len), MAYFLY_OK);
  assert_int_equal(env->close_writable(f), MAYFLY_OK);
  mf_buf_free(&b);
}

static void test_many_and_corrupt(void **state) {
  mf_env *env = *state;
  mf_random rnd;
  mf_random_seed(&rnd, test_seed());
  const int n = 5000; /* ~800 KiB: many chunks, many 32 KiB blocks */
  uint64_t session = write_many(env, "/many", n, &rnd);
  int count;
  assert_int_equal(read_all(env, "/many", session, &count), MAYFLY_ENOTFOUND);
  assert_int_equal(count, n);

  char *name = trace_file_name("/many", session, TRACE_OP_FILE);
  uint64_t size;
  assert_int_equal(env->file_size(env, name, &size), MAYFLY_OK);
  assert_true(size > 8 * 32768);

  /* damage in the middle: corruption, reported with the file name */
  flip_byte(env, name, size / 2);
  mf_error_clear();
  assert_int_equal(read_all(env, "/many", session, &count), MAYFLY_ECORRUPT);
  assert_true(count > 0 && count < n);
  assert_non_null(strstr(mf_error_message(), name));
  flip_byte(env, name, size / 2); /* repair */
  assert_int_equal(read_all(env, "/many", session, &count), MAYFLY_ENOTFOUND);
  assert_int_equal(count, n);

  /* a torn tail (the last chunk cut short) is the end, not an error */
  mf_buf b = MF_BUF_INIT;
  assert_int_equal(env_read_file(env, name, &b), MAYFLY_OK);
  mf_wfile *f = NULL;
  assert_int_equal(env->new_writable(env, name, &f), MAYFLY_OK);
  assert_int_equal(env->append(f, b.data, b.len - 100), MAYFLY_OK);
  assert_int_equal(env->close_writable(f), MAYFLY_OK);
  assert_int_equal(read_all(env, "/many", session, &count), MAYFLY_ENOTFOUND);
  assert_true(count > 0 && count < n);

  /* an op file opened as a job file: wrong kind */
  trace_reader *r = NULL;
  assert_int_equal(trace_reader_open(env, name, TRACE_JOB_FILE, &r), MAYFLY_ECORRUPT);
  assert_null(r);
  /* garbage is refused at once */
  assert_int_equal(env->new_writable(env, name, &f), MAYFLY_OK);
  assert_int_equal(env->append(f, b.data + 40000, 40000), MAYFLY_OK);
  assert_int_equal(env->close_writable(f), MAYFLY_OK);
  assert_int_equal(trace_reader_open(env, name, TRACE_OP_FILE, &r), MAYFLY_ECORRUPT);
  mf_buf_free(&b);
  free(name);
}

/* A hand-made op trace of session `session`: a SESSION record starting at wall, then one PUT
 * of key "a" with sequence number seq at offset. */
static void write_session_trace(mf_env *env, const char *path, uint64_t session, uint64_t wall,
                                uint64_t offset, uint64_t seq) {
  char chunk[128], body[64];
  size_t n = 0, b = 0;
  b += (size_t)(encode_varint64(body + b, 1) - (body + b));      /* format version */
  b += (size_t)(encode_varint64(body + b, 0) - (body + b));      /* flags */
  b += (size_t)(encode_varint64(body + b, wall) - (body + b));   /* wall start */
  b += (size_t)(encode_varint64(body + b, session) - (body + b)); /* session */
  b += (size_t)(encode_varint64(body + b, 3) - (body + b));
  memcpy(body + b, "/db", 3);
  b += 3;
  chunk[n++] = TRACE_SESSION;
  n += (size_t)(encode_varint64(chunk + n, b) - (chunk + n));
  memcpy(chunk + n, body, b);
  n += b;
  b = 0;
  b += (size_t)(encode_varint64(body + b, offset) - (body + b)); /* time */
  b += (size_t)(encode_varint64(body + b, seq) - (body + b));    /* seq */
  b += (size_t)(encode_varint64(body + b, 1) - (body + b));      /* key */
  body[b++] = 'a';
  b += (size_t)(encode_varint64(body + b, 1) - (body + b));      /* key size */
  b += (size_t)(encode_varint64(body + b, 10) - (body + b));     /* value size */
  body[b++] = 0;                                                 /* flags */
  chunk[n++] = TRACE_PUT;
  n += (size_t)(encode_varint64(chunk + n, b) - (chunk + n));
  memcpy(chunk + n, body, b);
  n += b;
  mf_wfile *f;
  wal_writer *w;
  assert_int_equal(env->new_writable(env, path, &f), MAYFLY_OK);
  assert_int_equal(wal_writer_create(env, f, WAL_KIND_OP_TRACE, session, &w, NULL), MAYFLY_OK);
  assert_int_equal(wal_writer_add_record(w, mf_slice_make(chunk, n), NULL), MAYFLY_OK);
  wal_writer_destroy(w);
  assert_int_equal(env->close_writable(f), MAYFLY_OK);
}

static void write_timed_trace(mf_env *env, const char *path, uint64_t wall, uint64_t offset) {
  write_session_trace(env, path, 1, wall, offset, 1);
}

/* Times stay below TRACE_MAX_TIME_US, so that readers can add and compare them: a session
 * start or a record time beyond it is corruption (a report once looped forever on one). */
static void test_time_range(void **state) {
  mf_env *env = *state;
  static const struct {
    uint64_t wall, offset;
    int rc_open, rc_next;
  } cases[] = {
      {1700000000000000, 5, MAYFLY_OK, MAYFLY_OK},
      {TRACE_MAX_TIME_US - 1, 0, MAYFLY_OK, MAYFLY_OK},
      {TRACE_MAX_TIME_US - 1, 1, MAYFLY_OK, MAYFLY_ECORRUPT},
      {1700000000000000, UINT64_MAX - 10, MAYFLY_OK, MAYFLY_ECORRUPT},
      {TRACE_MAX_TIME_US, 0, MAYFLY_ECORRUPT, 0},
      {UINT64_MAX - 100, 50, MAYFLY_ECORRUPT, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    write_timed_trace(env, "/timed.op", cases[i].wall, cases[i].offset);
    trace_reader *r = NULL;
    int rc = trace_reader_open(env, "/timed.op", TRACE_OP_FILE, &r);
    if (rc != cases[i].rc_open) fail_msg("case %zu: open gave %d", i, rc);
    if (rc) continue;
    trace_record rec;
    rc = trace_reader_next(r, &rec);
    if (rc != cases[i].rc_next) fail_msg("case %zu: next gave %d", i, rc);
    if (rc == MAYFLY_OK) assert_true(rec.time_us == cases[i].wall + cases[i].offset);
    trace_reader_close(r);
  }
}

/* A session whose wall clock starts before times of the one before (the clock was set back
 * between them) is counted, and the summary warns that intervals across it are unreliable. */
static void test_clock_step_back(void **state) {
  mf_env *env = *state;
  assert_int_equal(env->make_dir(env, "/clock"), MAYFLY_OK);
  write_session_trace(env, "/clock/trace-000001.op", 1, 1700000010000000, 100, 1);
  write_session_trace(env, "/clock/trace-000002.op", 2, 1700000005000000, 100, 2);
  trace_analysis *a = NULL;
  assert_int_equal(trace_analyze(env, "/clock", NULL, NULL, &a), MAYFLY_OK);
  assert_int_equal(a->num_sessions, 2);
  assert_int_equal(a->clock_steps_back, 1);
  mf_buf summary = MF_BUF_INIT;
  assert_int_equal(trace_report_summary(a, &summary), MAYFLY_OK);
  assert_int_equal(mf_buf_append(&summary, "", 1), MAYFLY_OK);
  assert_non_null(strstr(summary.data, "wall clock went back at 1 reopen"));
  mf_buf_free(&summary);
  trace_analysis_free(a);
  /* In order, nothing is counted. */
  write_session_trace(env, "/clock/trace-000002.op", 2, 1700000020000000, 100, 2);
  assert_int_equal(trace_analyze(env, "/clock", NULL, NULL, &a), MAYFLY_OK);
  assert_int_equal(a->clock_steps_back, 0);
  trace_analysis_free(a);
}

typedef struct appender {
  trace_writer *t;
  int id, n;
} appender;

static void *append_main(void *arg) {
  appender *ap = arg;
  char key[32];
  for (int i = 0; i < ap->n; i++) {
    int len = snprintf(key, sizeof key, "t%d-%d", ap->id, i);
    trace_op(ap->t, TRACE_PUT, (uint64_t)ap->id * 1000000 + (uint64_t)i,
             mf_slice_make(key, (size_t)len), (uint64_t)i, 0);
  }
  return NULL;
}

static void test_concurrent_appends(void **state) {
  mf_env *env = *state;
  trace_writer *t = NULL;
  assert_int_equal(trace_writer_open(env, "/conc", "/db", 0, 0, &t), MAYFLY_OK);
  enum { THREADS = 4, PER = 5000 };
  pthread_t th[THREADS];
  appender ap[THREADS];
  for (int i = 0; i < THREADS; i++) {
    ap[i] = (appender){t, i, PER};
    assert_int_equal(pthread_create(&th[i], NULL, append_main, &ap[i]), 0);
  }
  for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
  uint64_t session = trace_writer_session(t);
  assert_int_equal(trace_writer_close(t), MAYFLY_OK);
  trace_writer_free(t);
  trace_reader *r = open_reader(env, "/conc", session, TRACE_OP_FILE);
  int next[THREADS] = {0};
  trace_record rec;
  int rc, total = 0;
  while ((rc = trace_reader_next(r, &rec)) == MAYFLY_OK) {
    int id = (int)(rec.seq / 1000000), i = (int)(rec.seq % 1000000);
    assert_true(id < THREADS);
    assert_int_equal(i, next[id]); /* each thread's records in its order */
    char key[32];
    int len = snprintf(key, sizeof key, "t%d-%d", id, i);
    assert_int_equal(rec.key.len, (size_t)len);
    assert_memory_equal(rec.key.data, key, (size_t)len);
    next[id]++;
    total++;
  }
  assert_int_equal(rc, MAYFLY_ENOTFOUND);
  assert_int_equal(total, THREADS * PER);
  trace_reader_close(r);
}

/* ---- the options on an open database ---- */

static void ok(mayfly_db *db, int rc, const char *what) {
  if (rc != MAYFLY_OK) fail_msg("%s: rc %d: %s", what, rc, mayfly_errmsg(db));
}

/* Counts the op records of one session by tag, and checks seqs increase. A session opened
 * with the database starts with its RECOVERED record, and every write follows it. */
static void count_ops(mf_env *env, const char *dir, uint64_t session, int *puts, int *deletes,
                      int *gets) {
  trace_reader *r = open_reader(env, dir, session, TRACE_OP_FILE);
  trace_record rec;
  *puts = *deletes = *gets = 0;
  uint64_t last = 0;
  int rc, records = 0;
  while ((rc = trace_reader_next(r, &rec)) == MAYFLY_OK) {
    if (rec.tag == TRACE_RECOVERED) {
      assert_int_equal(records++, 0);
      last = rec.seq;
      continue;
    }
    records++;
    if (rec.tag == TRACE_PUT) (*puts)++;
    if (rec.tag == TRACE_DELETE) (*deletes)++;
    if (rec.tag == TRACE_GET) (*gets)++;
    if (rec.tag != TRACE_GET) {
      assert_true(rec.seq > last);
      last = rec.seq;
    }
  }
  assert_int_equal(rc, MAYFLY_ENOTFOUND);
  trace_reader_close(r);
}

static void test_db_options(void **state) {
  mf_env *env = *state;
  struct mayfly_options o;
  options_init_defaults(&o);
  options_set_env(&o, env);
  assert_int_equal(options_set(&o, "trace_dir", "/dbtrace", 0), MAYFLY_OK);
  mayfly_db *db = NULL;
  ok(NULL, mayfly_open("/tdb", &o, &db), "open");
  /* session 1: 10 puts, a batch of 3 (2 puts, 1 delete), gets not traced */
  char key[16];
  for (int i = 0; i < 10; i++) {
    snprintf(key, sizeof key, "k%02d", i);
    ok(db, mayfly_put(db, key, 3, "v", 1, 0), "put");
  }
  mayfly_batch *b = NULL;
  ok(NULL, mayfly_batch_create(&b), "batch");
  ok(NULL, mayfly_batch_put(b, "b1", 2, "x", 1), "batch put");
  ok(NULL, mayfly_batch_delete(b, "k01", 3), "batch delete");
  ok(NULL, mayfly_batch_put(b, "b2", 2, "y", 1), "batch put");
  ok(db, mayfly_write(db, b, 0), "write");
  void *val;
  size_t vlen;
  ok(db, mayfly_get(db, NULL, "k00", 3, &val, &vlen), "get");
  mayfly_free(val);
  /* session 2: gets on, keys hashed */
  ok(db, mayfly_set_option(db, "trace_gets", "true"), "trace_gets");
  ok(db, mayfly_set_option(db, "trace_key_hash", "on"), "trace_key_hash");
  ok(db, mayfly_get(db, NULL, "k00", 3, &val, &vlen), "get");
  mayfly_free(val);
  assert_int_equal(mayfly_get(db, NULL, "k01", 3, &val, &vlen), MAYFLY_ENOTFOUND);
  ok(db, mayfly_delete(db, "k02", 3, 0), "delete");
  /* off: nothing recorded */
  ok(db, mayfly_set_option(db, "trace_dir", ""), "trace off");
  ok(db, mayfly_put(db, "off", 3, "v", 1, 0), "put");
  /* a value that is not a valid string leaves tracing off */
  assert_int_equal(mayfly_set_option(db, "trace_dir", "/a;b"), MAYFLY_EINVAL);
  /* on again, into the same directory: a new session */
  ok(db, mayfly_set_option(db, "trace_dir", "/dbtrace"), "trace on");
  ok(db, mayfly_put(db, "again", 5, "v", 1, 0), "put");
  ok(db, mayfly_close(db), "close");
  /* reopen: another session, never overwriting */
  ok(NULL, mayfly_open("/tdb", &o, &db), "reopen");
  ok(db, mayfly_put(db, "reopened", 8, "v", 1, 0), "put");
  ok(db, mayfly_close(db), "close");
  mayfly_batch_destroy(b);

  uint64_t *s = NULL;
  size_t n = 0;
  assert_int_equal(trace_list_sessions(env, "/dbtrace", &s, &n), MAYFLY_OK);
  /* 1: the first; 2: gets on (empty); 3: gets and hashed keys; 4: on again; 5: reopened */
  assert_int_equal(n, 5);
  int puts, deletes, gets;
  count_ops(env, "/dbtrace", s[0], &puts, &deletes, &gets);
  assert_int_equal(puts, 12);
  assert_int_equal(deletes, 1);
  assert_int_equal(gets, 0);
  count_ops(env, "/dbtrace", s[1], &puts, &deletes, &gets);
  assert_int_equal(puts + deletes + gets, 0);
  count_ops(env, "/dbtrace", s[2], &puts, &deletes, &gets);
  assert_int_equal(puts, 0);
  assert_int_equal(deletes, 1);
  assert_int_equal(gets, 2);
  trace_reader *r = open_reader(env, "/dbtrace", s[2], TRACE_OP_FILE);
  assert_int_equal(trace_reader_info(r)->flags, TRACE_FLAG_KEY_HASH | TRACE_FLAG_GETS);
  trace_record rec;
  next_ok(r, &rec, TRACE_GET);
  assert_int_equal(rec.flags, TRACE_OP_FOUND);
  assert_int_equal(rec.seq, 13); /* the read's sequence number: 13 writes so far */
  next_ok(r, &rec, TRACE_GET);
  assert_int_equal(rec.flags, 0);
  next_ok(r, &rec, TRACE_DELETE);
  assert_int_equal(rec.seq, 14);
  assert_key(&rec, "k02", 1);
  trace_reader_close(r);
  count_ops(env, "/dbtrace", s[3], &puts, &deletes, &gets);
  assert_int_equal(puts, 1);
  count_ops(env, "/dbtrace", s[4], &puts, &deletes, &gets);
  assert_int_equal(puts, 1);
  r = open_reader(env, "/dbtrace", s[4], TRACE_OP_FILE);
  next_ok(r, &rec, TRACE_RECOVERED);
  assert_int_equal(rec.seq, 16); /* 14 traced + "off" + "again" before the reopen */
  next_ok(r, &rec, TRACE_PUT);
  assert_int_equal(rec.seq, 17);
  trace_reader_close(r);
  free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sessions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_many_and_corrupt, setup, teardown),
      cmocka_unit_test_setup_teardown(test_time_range, setup, teardown),
      cmocka_unit_test_setup_teardown(test_clock_step_back, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent_appends, setup, teardown),
      cmocka_unit_test_setup_teardown(test_db_options, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
