/* Lifetime trace writer. The format is in trace_format.h and docs/format/trace.md; the rules
 * (thread safety, errors, clocks) in trace_writer.h.
 *
 * Each of the two files has its own mutex and chunk buffer, so writers (op file) and
 * background jobs (job file) do not wait for each other. A record body is encoded outside the
 * lock into a stack buffer (a heap one for very long keys); under the lock the time is taken
 * and tag, length, time and body are appended to the chunk, so within a file records appear in
 * the order of their timestamps. A full chunk becomes one log record, appended and handed to
 * the OS under the same lock (one 32 KiB append every few hundred records).
 *
 * This sits on the write path: a put costs one record (about 40 bytes of encoding, one
 * uncontended mutex, one clock read), and a write batch shares one lock and one clock read
 * among its entries (trace_ops_begin). */
#include "trace/trace_writer.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mayfly.h"
#include "blob/blob_format.h"
#include "util/checksum.h"
#include "util/coding.h"
#include "util/error.h"
#include "util/ikey.h"
#include "wal/wal_writer.h"

typedef struct trace_out {
  pthread_mutex_t mu; /* guards everything below */
  int closed;
  int status; /* first error, sticky */
  char *name;
  mf_wfile *file;
  wal_writer *log;
  mf_buf chunk;
} trace_out;

struct trace_writer {
  mf_env *env;
  int key_hash, gets; /* fixed for the session */
  uint64_t session;
  uint64_t clock_start; /* env->now_micros at open */
  trace_out out[2];     /* TRACE_OP_FILE, TRACE_JOB_FILE */
  uint64_t batch_time;  /* trace_ops_begin's clock reading; guarded by out[0].mu */
};

/* The wall clock, read once per session. The env has only an interval clock (env_posix's is
 * CLOCK_MONOTONIC), and lifetimes must be comparable across reopens, so this is the one clock
 * read that bypasses the env. */
static uint64_t wall_micros(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- encoding (room is the caller's: a varint64 takes at most 10 bytes) ---- */

static inline char *v64(char *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (char)(v | 0x80);
    v >>= 7;
  }
  *p++ = (char)v;
  return p;
}

static inline char *bytes(char *p, mf_slice s) {
  p = v64(p, s.len);
  if (s.len) memcpy(p, s.data, s.len);
  return p + s.len;
}

/* The key field (the user key, or the 8 bytes of its hash) and key_size. */
static char *key_field(const trace_writer *t, char *p, mf_slice user_key) {
  if (t->key_hash) {
    *p++ = 8;
    encode_fixed64(p, mf_hash64(user_key.data, user_key.len));
    p += 8;
  } else {
    p = bytes(p, user_key);
  }
  return v64(p, user_key.len);
}

/* Room for a body: fixed fields take at most this much besides the keys. */
#define FIXED_ROOM 160

/* A body buffer: on the stack unless the keys are long. */
typedef struct body {
  char *start;
  char stack[512];
} body;

static char *body_begin(body *b, size_t key_bytes) {
  b->start = key_bytes + FIXED_ROOM <= sizeof b->stack ? b->stack : malloc(key_bytes + FIXED_ROOM);
  return b->start;
}

static void body_end(body *b) {
  if (b->start != b->stack) free(b->start);
}

/* ---- writing chunks ---- */

/* REQUIRES: o->mu held. Writes o's chunk as one log record and hands it to the OS. */
static void write_chunk(trace_writer *t, trace_out *o) {
  if (o->chunk.len == 0 || o->status != MAYFLY_OK) return;
  int rc = wal_writer_add_record(o->log, mf_buf_slice(&o->chunk), NULL);
  if (rc == MAYFLY_OK) rc = t->env->flush(o->file);
  mf_buf_clear(&o->chunk);
  if (rc != MAYFLY_OK) o->status = rc;
}

static uint64_t session_time(trace_writer *t) {
  uint64_t now = t->env->now_micros(t->env);
  return now >= t->clock_start ? now - t->clock_start : 0;
}

/* REQUIRES: o->mu held. Appends a record: tag, length, time, body[0, len). */
static void append_locked(trace_writer *t, trace_out *o, int tag, uint64_t time,
                          const char *data, size_t len) {
  if (o->closed || o->status != MAYFLY_OK) return;
  char head[1 + 5 + 10], *p = head + 1;
  char time_bytes[10];
  size_t time_len = (size_t)(v64(time_bytes, time) - time_bytes);
  head[0] = (char)tag;
  p = v64(p, time_len + len);
  memcpy(p, time_bytes, time_len);
  p += time_len;
  size_t head_len = (size_t)(p - head);
  if (mf_buf_reserve(&o->chunk, head_len + len) != MAYFLY_OK) {
    o->status = MF_ERR(MAYFLY_ENOMEM, "%s: out of memory buffering a trace record", o->name);
    return;
  }
  memcpy(o->chunk.data + o->chunk.len, head, head_len);
  if (len) memcpy(o->chunk.data + o->chunk.len + head_len, data, len);
  o->chunk.len += head_len + len;
  if (o->chunk.len >= TRACE_CHUNK_BYTES) write_chunk(t, o);
}

/* Appends a record to file `which`, stamped now. */
static void emit(trace_writer *t, int which, int tag, const char *data, size_t len) {
  trace_out *o = &t->out[which];
  pthread_mutex_lock(&o->mu);
  if (!o->closed) append_locked(t, o, tag, session_time(t), data, len);
  pthread_mutex_unlock(&o->mu);
}

/* ---- names ---- */

static const char *const suffixes[2] = {"op", "job"};

char *trace_file_name(const char *dir, uint64_t session, int which) {
  size_t n = strlen(dir) + 40;
  char *name = malloc(n);
  if (name) snprintf(name, n, "%s/trace-%06" PRIu64 ".%s", dir, session, suffixes[which]);
  return name;
}

int trace_parse_file_name(const char *name, uint64_t *session, int *which) {
  if (strncmp(name, "trace-", 6) != 0) return 0;
  const char *p = name + 6;
  uint64_t v = 0;
  int digits = 0;
  for (; *p >= '0' && *p <= '9' && digits < 19; p++, digits++) v = v * 10 + (uint64_t)(*p - '0');
  if (digits == 0 || *p != '.') return 0;
  for (int i = 0; i < 2; i++) {
    if (strcmp(p + 1, suffixes[i]) == 0) {
      *session = v;
      *which = i;
      return 1;
    }
  }
  return 0;
}

/* ---- open / close ---- */

static int next_session(mf_env *env, const char *dir, uint64_t *session) {
  char **names = NULL;
  size_t count = 0;
  int rc = env->list_dir(env, dir, &names, &count);
  if (rc) return rc;
  uint64_t max = 0;
  for (size_t i = 0; i < count; i++) {
    uint64_t s;
    int which;
    if (trace_parse_file_name(names[i], &s, &which) && s > max) max = s;
  }
  env_free_names(names, count);
  *session = max + 1;
  return MAYFLY_OK;
}

static void out_abandon(mf_env *env, trace_out *o) {
  if (o->log) wal_writer_destroy(o->log);
  if (o->file) env->close_writable(o->file);
  mf_buf_free(&o->chunk);
  o->log = NULL;
  o->file = NULL;
}

static void writer_destroy(trace_writer *t) {
  for (int i = 0; i < 2; i++) {
    free(t->out[i].name);
    pthread_mutex_destroy(&t->out[i].mu);
  }
  free(t);
}

int trace_writer_open(mf_env *env, const char *dir, const char *dbname, int key_hash, int gets,
                      trace_writer **out) {
  *out = NULL;
  int rc = env->make_dir(env, dir);
  if (rc) return rc;
  trace_writer *t = calloc(1, sizeof *t);
  if (!t) return MF_ERR(MAYFLY_ENOMEM, "%s: out of memory opening a trace", dir);
  for (int i = 0; i < 2; i++) pthread_mutex_init(&t->out[i].mu, NULL);
  t->env = env;
  t->key_hash = key_hash != 0;
  t->gets = gets != 0;
  rc = next_session(env, dir, &t->session);
  uint64_t wall = wall_micros();
  t->clock_start = env->now_micros(env);
  size_t dblen = strlen(dbname);
  char *session_body = malloc(dblen + 64);
  if (rc == MAYFLY_OK && !session_body)
    rc = MF_ERR(MAYFLY_ENOMEM, "%s: out of memory opening a trace", dir);
  static const int kinds[2] = {WAL_KIND_OP_TRACE, WAL_KIND_JOB_TRACE};
  for (int i = 0; rc == MAYFLY_OK && i < 2; i++) {
    trace_out *o = &t->out[i];
    o->name = trace_file_name(dir, t->session, i);
    if (!o->name) rc = MF_ERR(MAYFLY_ENOMEM, "%s: out of memory opening a trace", dir);
    if (rc == MAYFLY_OK) rc = env->new_writable(env, o->name, &o->file);
    if (rc == MAYFLY_OK) rc = wal_writer_create(env, o->file, kinds[i], t->session, &o->log, NULL);
    if (rc != MAYFLY_OK) break;
    /* The session record goes out at once: every file names its session and flags. It has
     * no time field; append_locked adds one, so it is written by hand here. */
    char *p = session_body;
    p = v64(p, TRACE_FORMAT_VERSION);
    p = v64(p, (uint64_t)((t->key_hash ? TRACE_FLAG_KEY_HASH : 0) |
                          (t->gets ? TRACE_FLAG_GETS : 0)));
    p = v64(p, wall);
    p = v64(p, t->session);
    p = bytes(p, mf_slice_make(dbname, dblen));
    char head[6], *h = head;
    *h++ = TRACE_SESSION;
    h = v64(h, (uint64_t)(p - session_body));
    if (mf_buf_append(&o->chunk, head, (size_t)(h - head)) ||
        mf_buf_append(&o->chunk, session_body, (size_t)(p - session_body)))
      rc = MF_ERR(MAYFLY_ENOMEM, "%s: out of memory opening a trace", o->name);
    if (rc == MAYFLY_OK) write_chunk(t, o);
    if (rc == MAYFLY_OK) rc = o->status;
  }
  free(session_body);
  if (rc == MAYFLY_OK) rc = env->sync_dir(env, dir);
  if (rc != MAYFLY_OK) {
    for (int i = 0; i < 2; i++) {
      int created = t->out[i].file != NULL;
      out_abandon(env, &t->out[i]);
      if (created) env->remove_file(env, t->out[i].name);
    }
    writer_destroy(t);
    return rc;
  }
  *out = t;
  return MAYFLY_OK;
}

int trace_writer_close(trace_writer *t) {
  if (!t) return MAYFLY_OK;
  int first = MAYFLY_OK;
  for (int i = 0; i < 2; i++) {
    trace_out *o = &t->out[i];
    pthread_mutex_lock(&o->mu);
    if (!o->closed) {
      o->closed = 1;
      write_chunk(t, o);
      if (o->status == MAYFLY_OK) o->status = t->env->sync(o->file, 0);
      wal_writer_destroy(o->log);
      o->log = NULL;
      int rc = t->env->close_writable(o->file);
      o->file = NULL;
      if (o->status == MAYFLY_OK) o->status = rc;
      mf_buf_free(&o->chunk);
    }
    if (first == MAYFLY_OK) first = o->status;
    pthread_mutex_unlock(&o->mu);
  }
  return first;
}

void trace_writer_free(trace_writer *t) {
  if (!t) return;
  trace_writer_close(t);
  writer_destroy(t);
}

int trace_writer_status(trace_writer *t) {
  if (!t) return MAYFLY_OK;
  int first = MAYFLY_OK;
  for (int i = 0; i < 2 && first == MAYFLY_OK; i++) {
    pthread_mutex_lock(&t->out[i].mu);
    first = t->out[i].status;
    pthread_mutex_unlock(&t->out[i].mu);
  }
  return first;
}

uint64_t trace_writer_session(const trace_writer *t) { return t ? t->session : 0; }
int trace_writer_gets(const trace_writer *t) { return t ? t->gets : 0; }

/* ---- records ---- */

/* An op body: seq key key_size value_size flags. */
static size_t op_body(const trace_writer *t, char *p, uint64_t seq, mf_slice user_key,
                      uint64_t value_size, int flags) {
  char *start = p;
  p = v64(p, seq);
  p = key_field(t, p, user_key);
  p = v64(p, value_size);
  *p++ = (char)flags;
  return (size_t)(p - start);
}

void trace_op(trace_writer *t, int tag, uint64_t seq, mf_slice user_key, uint64_t value_size,
              int flags) {
  if (!t) return;
  body b;
  char *p = body_begin(&b, user_key.len);
  if (!p) return;
  size_t n = op_body(t, p, seq, user_key, value_size, flags);
  emit(t, TRACE_OP_FILE, tag, p, n);
  body_end(&b);
}

int trace_ops_begin(trace_writer *t) {
  if (!t) return 0;
  trace_out *o = &t->out[TRACE_OP_FILE];
  pthread_mutex_lock(&o->mu);
  if (o->closed || o->status != MAYFLY_OK) {
    pthread_mutex_unlock(&o->mu);
    return 0;
  }
  t->batch_time = session_time(t);
  return 1;
}

void trace_ops_add(trace_writer *t, int tag, uint64_t seq, mf_slice user_key,
                   uint64_t value_size, int flags) {
  body b;
  char *p = body_begin(&b, user_key.len);
  if (!p) return;
  size_t n = op_body(t, p, seq, user_key, value_size, flags);
  append_locked(t, &t->out[TRACE_OP_FILE], tag, t->batch_time, p, n);
  body_end(&b);
}

void trace_ops_end(trace_writer *t) { pthread_mutex_unlock(&t->out[TRACE_OP_FILE].mu); }

void trace_job_start(trace_writer *t, uint64_t job, int kind, int reason, int level,
                     int output_level, const uint64_t *inputs, int num_inputs) {
  if (!t) return;
  body b;
  char *p = body_begin(&b, (size_t)num_inputs * 10), *start = p;
  if (!p) return;
  p = v64(p, job);
  *p++ = (char)kind;
  *p++ = (char)reason;
  p = v64(p, (uint32_t)level);
  p = v64(p, (uint32_t)output_level);
  p = v64(p, (uint32_t)num_inputs);
  for (int i = 0; i < num_inputs; i++) p = v64(p, inputs[i]);
  emit(t, TRACE_JOB_FILE, TRACE_JOB_START, start, (size_t)(p - start));
  body_end(&b);
}

void trace_recovered(trace_writer *t, uint64_t last_seq) {
  if (!t) return;
  char buf[16], *p = v64(buf, last_seq);
  emit(t, TRACE_OP_FILE, TRACE_RECOVERED, buf, (size_t)(p - buf));
}

void trace_job_end(trace_writer *t, uint64_t job, int rc) {
  if (!t) return;
  char buf[32], *p = v64(buf, job);
  p = v64(p, (uint32_t)(rc < 0 ? -rc : rc));
  emit(t, TRACE_JOB_FILE, TRACE_JOB_END, buf, (size_t)(p - buf));
}

void trace_drop(trace_writer *t, uint64_t job, int level, int reason, mf_slice ikey,
                mf_slice value) {
  if (!t || ikey.len < 8) return;
  uint64_t trailer = ikey_trailer(ikey);
  int type = (int)(trailer & 0xff);
  uint64_t value_size = value.len, blob_file = 0;
  if (type == MF_TYPE_BLOB_INDEX) {
    blob_index bi;
    if (blob_index_decode(value, &bi) == MAYFLY_OK) {
      value_size = bi.size;
      blob_file = bi.file_number;
    }
  }
  if (type == MF_TYPE_DELETE && (reason == TRACE_DROP_HIDDEN || reason == TRACE_DROP_MEMTABLE))
    reason = TRACE_DROP_OBSOLETE_TOMBSTONE;
  mf_slice user_key = ikey_user_key(ikey);
  body b;
  char *p = body_begin(&b, user_key.len), *start = p;
  if (!p) return;
  p = v64(p, job);
  p = v64(p, trailer >> 8);
  p = key_field(t, p, user_key);
  p = v64(p, value_size);
  *p++ = (char)reason;
  p = v64(p, (uint32_t)level);
  p = v64(p, blob_file);
  emit(t, TRACE_JOB_FILE, TRACE_DROP, start, (size_t)(p - start));
  body_end(&b);
}

void trace_blob_write(trace_writer *t, uint64_t job, mf_slice ikey, uint64_t value_size,
                      uint64_t from_file, uint64_t to_file) {
  if (!t || ikey.len < 8) return;
  mf_slice user_key = ikey_user_key(ikey);
  body b;
  char *p = body_begin(&b, user_key.len), *start = p;
  if (!p) return;
  p = v64(p, job);
  p = v64(p, ikey_trailer(ikey) >> 8);
  p = key_field(t, p, user_key);
  p = v64(p, value_size);
  if (from_file) p = v64(p, from_file);
  p = v64(p, to_file);
  emit(t, TRACE_JOB_FILE, from_file ? TRACE_RELOCATE : TRACE_PLACE, start, (size_t)(p - start));
  body_end(&b);
}

void trace_file_create(trace_writer *t, uint64_t job, uint64_t number, int file_kind, int level,
                       uint64_t size, uint64_t entries, uint64_t smallest_seq,
                       uint64_t largest_seq, mf_slice smallest, mf_slice largest) {
  if (!t) return;
  mf_slice lo = mf_slice_make("", 0), hi = lo;
  if (!t->key_hash && smallest.len >= 8 && largest.len >= 8) {
    lo = ikey_user_key(smallest);
    hi = ikey_user_key(largest);
  }
  body b;
  char *p = body_begin(&b, lo.len + hi.len), *start = p;
  if (!p) return;
  p = v64(p, job);
  p = v64(p, number);
  *p++ = (char)file_kind;
  p = v64(p, (uint32_t)level);
  p = v64(p, size);
  p = v64(p, entries);
  p = v64(p, smallest_seq);
  p = v64(p, largest_seq);
  p = bytes(p, lo);
  p = bytes(p, hi);
  emit(t, TRACE_JOB_FILE, TRACE_FILE_CREATE, start, (size_t)(p - start));
  body_end(&b);
}

void trace_file_delete(trace_writer *t, uint64_t number, int file_kind) {
  if (!t) return;
  char buf[16], *p = v64(buf, number);
  *p++ = (char)file_kind;
  emit(t, TRACE_JOB_FILE, TRACE_FILE_DELETE, buf, (size_t)(p - buf));
}
