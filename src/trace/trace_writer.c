/* Lifetime trace writer. The format is in trace_format.h and docs/format/trace.md; the rules
 * (thread safety, errors, clocks) in trace_writer.h.
 *
 * Each of the two files has a chunk buffer. A record is encoded into the writer's scratch
 * buffer, appended to its file's chunk as tag, length, body; a full chunk becomes one log
 * record. Everything happens under t->mu, including the file append when a chunk fills (one
 * 32 KiB append every few hundred records), so records appear in each file in the order their
 * timestamps were taken. */
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
  char *name;
  mf_wfile *file;
  wal_writer *log;
  mf_buf chunk;
} trace_out;

struct trace_writer {
  mf_env *env;
  pthread_mutex_t mu;
  int closed;
  int status; /* first error, sticky */
  int key_hash, gets;
  uint64_t session;
  uint64_t clock_start; /* env->now_micros at open */
  trace_out out[2];     /* TRACE_OP_FILE, TRACE_JOB_FILE */
  mf_buf body;          /* scratch: the record being encoded */
};

/* The wall clock, read once per session. The env has only an interval clock (env_posix's is
 * CLOCK_MONOTONIC), and lifetimes must be comparable across reopens, so this is the one clock
 * read that bypasses the env. */
static uint64_t wall_micros(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
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

/* ---- writing chunks ---- */

/* REQUIRES: t->mu held. Writes o's chunk as one log record and hands it to the OS. */
static void write_chunk(trace_writer *t, trace_out *o) {
  if (o->chunk.len == 0 || t->status != MAYFLY_OK) return;
  int rc = wal_writer_add_record(o->log, mf_buf_slice(&o->chunk), NULL);
  if (rc == MAYFLY_OK) rc = t->env->flush(o->file);
  mf_buf_clear(&o->chunk);
  if (rc != MAYFLY_OK) t->status = rc;
}

/* REQUIRES: t->mu held. Appends tag, length and t->body to the chunk of file `which`. */
static void emit(trace_writer *t, int which, int tag) {
  trace_out *o = &t->out[which];
  char head[1 + MF_MAX_VARINT32_LEN];
  head[0] = (char)tag;
  char *end = encode_varint32(head + 1, (uint32_t)t->body.len);
  int rc = mf_buf_reserve(&o->chunk, (size_t)(end - head) + t->body.len);
  if (rc != MAYFLY_OK) {
    t->status = MF_ERR(MAYFLY_ENOMEM, "%s: out of memory buffering a trace record", o->name);
    return;
  }
  mf_buf_append(&o->chunk, head, (size_t)(end - head));
  mf_buf_append(&o->chunk, t->body.data, t->body.len);
  if (o->chunk.len >= TRACE_CHUNK_BYTES) write_chunk(t, o);
}

/* REQUIRES: t->mu held. Starts a record body with its time. Returns 0 when the writer is
 * closed or failed (the caller then unlocks and returns). */
static int begin(trace_writer *t) {
  if (t->closed || t->status != MAYFLY_OK) return 0;
  mf_buf_clear(&t->body);
  uint64_t now = t->env->now_micros(t->env);
  put_varint64(&t->body, now >= t->clock_start ? now - t->clock_start : 0);
  return 1;
}

/* The key field: the user key, or the 8 bytes of its hash. */
static void put_key(trace_writer *t, mf_slice user_key) {
  if (t->key_hash) {
    char h[8];
    encode_fixed64(h, mf_hash64(user_key.data, user_key.len));
    put_length_prefixed(&t->body, mf_slice_make(h, 8));
  } else {
    put_length_prefixed(&t->body, user_key);
  }
  put_varint32(&t->body, (uint32_t)user_key.len);
}

static void put_u8(trace_writer *t, int v) {
  char c = (char)v;
  mf_buf_append(&t->body, &c, 1);
}

/* Checks that the body was built without running out of memory; put_* only fail that way,
 * and a body is at most a key plus ~100 bytes, so one reserve up front covers them. */
static int reserve_body(trace_writer *t, size_t key_len) {
  if (mf_buf_reserve(&t->body, key_len + 128) == MAYFLY_OK) return 1;
  t->status = MF_ERR(MAYFLY_ENOMEM, "trace session %" PRIu64 ": out of memory", t->session);
  return 0;
}

#define LOCKED_BEGIN(t, key_len)                                             \
  do {                                                                       \
    if (!(t)) return;                                                        \
    pthread_mutex_lock(&(t)->mu);                                            \
    if (!begin(t) || !reserve_body((t), (key_len))) {                        \
      pthread_mutex_unlock(&(t)->mu);                                        \
      return;                                                                \
    }                                                                        \
  } while (0)

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
  free(o->name);
  memset(o, 0, sizeof *o);
}

int trace_writer_open(mf_env *env, const char *dir, const char *dbname, int key_hash, int gets,
                      trace_writer **out) {
  *out = NULL;
  int rc = env->make_dir(env, dir);
  if (rc) return rc;
  trace_writer *t = calloc(1, sizeof *t);
  if (!t) return MF_ERR(MAYFLY_ENOMEM, "%s: out of memory opening a trace", dir);
  pthread_mutex_init(&t->mu, NULL);
  t->env = env;
  t->key_hash = key_hash != 0;
  t->gets = gets != 0;
  rc = next_session(env, dir, &t->session);
  uint64_t wall = wall_micros();
  t->clock_start = env->now_micros(env);
  static const int kinds[2] = {WAL_KIND_OP_TRACE, WAL_KIND_JOB_TRACE};
  for (int i = 0; rc == MAYFLY_OK && i < 2; i++) {
    trace_out *o = &t->out[i];
    o->name = trace_file_name(dir, t->session, i);
    if (!o->name) rc = MF_ERR(MAYFLY_ENOMEM, "%s: out of memory opening a trace", dir);
    if (rc == MAYFLY_OK) rc = env->new_writable(env, o->name, &o->file);
    if (rc == MAYFLY_OK) rc = wal_writer_create(env, o->file, kinds[i], t->session, &o->log, NULL);
    if (rc != MAYFLY_OK) break;
    /* The session record goes out at once: every file names its session and flags. */
    mf_buf_clear(&t->body);
    put_varint32(&t->body, TRACE_FORMAT_VERSION);
    put_varint32(&t->body, (uint32_t)((t->key_hash ? TRACE_FLAG_KEY_HASH : 0) |
                                      (t->gets ? TRACE_FLAG_GETS : 0)));
    put_varint64(&t->body, wall);
    put_varint64(&t->body, t->session);
    if (put_length_prefixed(&t->body, mf_slice_cstr(dbname)) != MAYFLY_OK)
      rc = MF_ERR(MAYFLY_ENOMEM, "%s: out of memory opening a trace", o->name);
    if (rc == MAYFLY_OK) emit(t, i, TRACE_SESSION);
    if (rc == MAYFLY_OK) write_chunk(t, o);
    if (rc == MAYFLY_OK) rc = t->status;
  }
  if (rc == MAYFLY_OK) rc = env->sync_dir(env, dir);
  if (rc != MAYFLY_OK) {
    for (int i = 0; i < 2; i++) {
      char *name = t->out[i].name ? strdup(t->out[i].name) : NULL;
      int created = t->out[i].file != NULL;
      out_abandon(env, &t->out[i]);
      if (created && name) env->remove_file(env, name);
      free(name);
    }
    mf_buf_free(&t->body);
    pthread_mutex_destroy(&t->mu);
    free(t);
    return rc;
  }
  *out = t;
  return MAYFLY_OK;
}

int trace_writer_close(trace_writer *t) {
  if (!t) return MAYFLY_OK;
  pthread_mutex_lock(&t->mu);
  if (!t->closed) {
    t->closed = 1;
    for (int i = 0; i < 2; i++) {
      trace_out *o = &t->out[i];
      write_chunk(t, o);
      if (t->status == MAYFLY_OK) t->status = t->env->sync(o->file, 0);
      wal_writer_destroy(o->log);
      o->log = NULL;
      int rc = t->env->close_writable(o->file);
      o->file = NULL;
      if (t->status == MAYFLY_OK) t->status = rc;
      mf_buf_free(&o->chunk);
    }
    mf_buf_free(&t->body);
  }
  int rc = t->status;
  pthread_mutex_unlock(&t->mu);
  return rc;
}

void trace_writer_free(trace_writer *t) {
  if (!t) return;
  trace_writer_close(t);
  for (int i = 0; i < 2; i++) free(t->out[i].name);
  pthread_mutex_destroy(&t->mu);
  free(t);
}

int trace_writer_status(trace_writer *t) {
  if (!t) return MAYFLY_OK;
  pthread_mutex_lock(&t->mu);
  int rc = t->status;
  pthread_mutex_unlock(&t->mu);
  return rc;
}

uint64_t trace_writer_session(const trace_writer *t) { return t ? t->session : 0; }
int trace_writer_gets(const trace_writer *t) { return t ? t->gets : 0; }

/* ---- records ---- */

void trace_op(trace_writer *t, int tag, uint64_t seq, mf_slice user_key, uint64_t value_size,
              int flags) {
  LOCKED_BEGIN(t, user_key.len);
  put_varint64(&t->body, seq);
  put_key(t, user_key);
  put_varint64(&t->body, value_size);
  put_u8(t, flags);
  emit(t, TRACE_OP_FILE, tag);
  pthread_mutex_unlock(&t->mu);
}

void trace_job_start(trace_writer *t, uint64_t job, int kind, int reason, int level,
                     int output_level, const uint64_t *inputs, int num_inputs) {
  LOCKED_BEGIN(t, (size_t)num_inputs * MF_MAX_VARINT64_LEN);
  put_varint64(&t->body, job);
  put_u8(t, kind);
  put_u8(t, reason);
  put_varint32(&t->body, (uint32_t)level);
  put_varint32(&t->body, (uint32_t)output_level);
  put_varint32(&t->body, (uint32_t)num_inputs);
  for (int i = 0; i < num_inputs; i++) put_varint64(&t->body, inputs[i]);
  emit(t, TRACE_JOB_FILE, TRACE_JOB_START);
  pthread_mutex_unlock(&t->mu);
}

void trace_job_end(trace_writer *t, uint64_t job, int rc) {
  LOCKED_BEGIN(t, 0);
  put_varint64(&t->body, job);
  put_varint32(&t->body, (uint32_t)(rc < 0 ? -rc : rc));
  emit(t, TRACE_JOB_FILE, TRACE_JOB_END);
  pthread_mutex_unlock(&t->mu);
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
  if (type == MF_TYPE_DELETE &&
      (reason == TRACE_DROP_HIDDEN || reason == TRACE_DROP_MEMTABLE))
    reason = TRACE_DROP_OBSOLETE_TOMBSTONE;
  mf_slice user_key = ikey_user_key(ikey);
  LOCKED_BEGIN(t, user_key.len);
  put_varint64(&t->body, job);
  put_varint64(&t->body, trailer >> 8);
  put_key(t, user_key);
  put_varint64(&t->body, value_size);
  put_u8(t, reason);
  put_varint32(&t->body, (uint32_t)level);
  put_varint64(&t->body, blob_file);
  emit(t, TRACE_JOB_FILE, TRACE_DROP);
  pthread_mutex_unlock(&t->mu);
}

void trace_blob_write(trace_writer *t, uint64_t job, mf_slice ikey, uint64_t value_size,
                      uint64_t from_file, uint64_t to_file) {
  if (!t || ikey.len < 8) return;
  mf_slice user_key = ikey_user_key(ikey);
  LOCKED_BEGIN(t, user_key.len);
  put_varint64(&t->body, job);
  put_varint64(&t->body, ikey_trailer(ikey) >> 8);
  put_key(t, user_key);
  put_varint64(&t->body, value_size);
  if (from_file) put_varint64(&t->body, from_file);
  put_varint64(&t->body, to_file);
  emit(t, TRACE_JOB_FILE, from_file ? TRACE_RELOCATE : TRACE_PLACE);
  pthread_mutex_unlock(&t->mu);
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
  LOCKED_BEGIN(t, lo.len + hi.len);
  put_varint64(&t->body, job);
  put_varint64(&t->body, number);
  put_u8(t, file_kind);
  put_varint32(&t->body, (uint32_t)level);
  put_varint64(&t->body, size);
  put_varint64(&t->body, entries);
  put_varint64(&t->body, smallest_seq);
  put_varint64(&t->body, largest_seq);
  put_length_prefixed(&t->body, lo);
  put_length_prefixed(&t->body, hi);
  emit(t, TRACE_JOB_FILE, TRACE_FILE_CREATE);
  pthread_mutex_unlock(&t->mu);
}

void trace_file_delete(trace_writer *t, uint64_t number, int file_kind) {
  LOCKED_BEGIN(t, 0);
  put_varint64(&t->body, number);
  put_u8(t, file_kind);
  emit(t, TRACE_JOB_FILE, TRACE_FILE_DELETE);
  pthread_mutex_unlock(&t->mu);
}
