/* Lifetime trace reader: log records (src/wal/wal_reader.c) cut into trace records
 * (trace_format.h, docs/format/trace.md). */
#include "trace/trace_reader.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "mayfly.h"

#include "trace/trace_writer.h"
#include "util/coding.h"
#include "util/error.h"
#include "wal/wal_reader.h"

struct trace_reader {
  mf_env *env;
  mf_rfile *file;
  wal_reader *log;
  char *path;
  trace_session_info info;
  char *dbname;
  mf_slice chunk;       /* the rest of the current log record */
  uint64_t chunk_offset; /* file offset of the current log record */
  const char *chunk_start;
  int status;
  uint64_t *inputs;
  size_t cap_inputs;
};

/* Loads the next log record into r->chunk. MAYFLY_ENOTFOUND at the end. */
static int next_chunk(trace_reader *r) {
  for (;;) {
    mf_slice rec;
    int rc = wal_reader_read(r->log, &rec);
    if (rc != MAYFLY_OK) return rc;
    if (rec.len == 0) continue;
    r->chunk = rec;
    r->chunk_start = rec.data;
    r->chunk_offset = wal_reader_last_record_offset(r->log);
    return MAYFLY_OK;
  }
}

static int corrupt(trace_reader *r, const char *at, int tag, const char *what) {
  r->status = MF_ERR(MAYFLY_ECORRUPT,
                     "%s: malformed trace record (tag 0x%02x): %s, at byte %zu of the log "
                     "record at offset %" PRIu64,
                     r->path, tag, what, (size_t)(at - r->chunk_start), r->chunk_offset);
  return r->status;
}

static int get_u8(mf_slice *in, int *v) {
  if (in->len < 1) return 0;
  *v = (unsigned char)in->data[0];
  in->data++;
  in->len--;
  return 1;
}

static int get_int(mf_slice *in, int *v) {
  uint32_t u;
  if (!get_varint32(in, &u) || u > 0x7fffffff) return 0;
  *v = (int)u;
  return 1;
}

/* The key field and key_size. */
static int get_key(mf_slice *in, trace_record *rec) {
  return get_length_prefixed(in, &rec->key) && get_varint32(in, &rec->key_size);
}

/* Decodes body (after the time) into rec by tag. Returns 1 on success. */
static int decode_body(trace_reader *r, mf_slice *in, trace_record *rec) {
  switch (rec->tag) {
    case TRACE_PUT:
    case TRACE_DELETE:
    case TRACE_GET:
      return get_varint64(in, &rec->seq) && get_key(in, rec) &&
             get_varint64(in, &rec->value_size) && get_u8(in, &rec->flags);
    case TRACE_JOB_START: {
      uint32_t n;
      if (!(get_varint64(in, &rec->job) && get_u8(in, &rec->kind) && get_u8(in, &rec->reason) &&
            get_int(in, &rec->level) && get_int(in, &rec->output_level) &&
            get_varint32(in, &n)))
        return 0;
      if (n > in->len) return 0; /* each input takes at least one byte */
      if (n > r->cap_inputs) {
        uint64_t *p = realloc(r->inputs, n * sizeof *p);
        if (!p) return 0;
        r->inputs = p;
        r->cap_inputs = n;
      }
      for (uint32_t i = 0; i < n; i++)
        if (!get_varint64(in, &r->inputs[i])) return 0;
      rec->inputs = r->inputs;
      rec->num_inputs = (int)n;
      return 1;
    }
    case TRACE_RECOVERED: return get_varint64(in, &rec->seq);
    case TRACE_JOB_END:
      return get_varint64(in, &rec->job) && get_int(in, &rec->status);
    case TRACE_DROP:
      return get_varint64(in, &rec->job) && get_varint64(in, &rec->seq) && get_key(in, rec) &&
             get_varint64(in, &rec->value_size) && get_u8(in, &rec->reason) &&
             get_int(in, &rec->level) && get_varint64(in, &rec->file);
    case TRACE_PLACE:
      return get_varint64(in, &rec->job) && get_varint64(in, &rec->seq) && get_key(in, rec) &&
             get_varint64(in, &rec->value_size) && get_varint64(in, &rec->file);
    case TRACE_RELOCATE:
      return get_varint64(in, &rec->job) && get_varint64(in, &rec->seq) && get_key(in, rec) &&
             get_varint64(in, &rec->value_size) && get_varint64(in, &rec->from_file) &&
             get_varint64(in, &rec->file);
    case TRACE_FILE_CREATE:
      return get_varint64(in, &rec->job) && get_varint64(in, &rec->file) &&
             get_u8(in, &rec->kind) && get_int(in, &rec->level) &&
             get_varint64(in, &rec->size) && get_varint64(in, &rec->entries) &&
             get_varint64(in, &rec->smallest_seq) && get_varint64(in, &rec->largest_seq) &&
             get_length_prefixed(in, &rec->smallest_key) &&
             get_length_prefixed(in, &rec->largest_key);
    case TRACE_FILE_DELETE:
      return get_varint64(in, &rec->file) && get_u8(in, &rec->kind);
    default:
      return 1; /* unknown: skipped by the caller */
  }
}

/* Cuts the next raw record (tag, body) from the chunks. */
static int next_raw(trace_reader *r, int *tag, mf_slice *body, const char **at) {
  if (r->chunk.len == 0) {
    int rc = next_chunk(r);
    if (rc != MAYFLY_OK) return rc;
  }
  *at = r->chunk.data;
  uint32_t len;
  if (!get_u8(&r->chunk, tag)) return corrupt(r, *at, 0, "empty record");
  if (!get_varint32(&r->chunk, &len) || len > r->chunk.len)
    return corrupt(r, *at, *tag, "length runs past the end of the chunk");
  *body = mf_slice_make(r->chunk.data, len);
  r->chunk.data += len;
  r->chunk.len -= len;
  return MAYFLY_OK;
}

int trace_reader_next(trace_reader *r, trace_record *rec) {
  if (r->status != MAYFLY_OK) return r->status;
  for (;;) {
    int tag = 0;
    mf_slice body;
    const char *at;
    int rc = next_raw(r, &tag, &body, &at);
    if (rc == MAYFLY_ENOTFOUND) return rc; /* the end; may be read again */
    if (rc != MAYFLY_OK) return r->status = rc;
    memset(rec, 0, sizeof *rec);
    rec->tag = tag;
    uint64_t offset;
    if (tag == TRACE_SESSION) return corrupt(r, at, tag, "a second session record");
    if (!get_varint64(&body, &offset)) {
      if (tag < TRACE_PUT || tag > TRACE_FILE_DELETE) continue; /* unknown and timeless */
      return corrupt(r, at, tag, "truncated time");
    }
    if (offset >= TRACE_MAX_TIME_US - r->info.wall_start_us)
      return corrupt(r, at, tag, "time out of range");
    rec->time_us = r->info.wall_start_us + offset;
    if (tag < TRACE_PUT || tag > TRACE_FILE_DELETE ||
        (tag > TRACE_RECOVERED && tag < TRACE_JOB_START))
      continue; /* a tag from a newer writer */
    if (!decode_body(r, &body, rec)) return corrupt(r, at, tag, "truncated or bad field");
    return MAYFLY_OK;
  }
}

static int read_session(trace_reader *r) {
  int tag = 0;
  mf_slice body;
  const char *at;
  int rc = next_raw(r, &tag, &body, &at);
  if (rc == MAYFLY_ENOTFOUND) return MAYFLY_OK; /* an empty trace */
  if (rc != MAYFLY_OK) return rc;
  if (tag != TRACE_SESSION) return corrupt(r, at, tag, "the first record is not SESSION");
  uint32_t version, flags;
  mf_slice dbname;
  if (!get_varint32(&body, &version)) return corrupt(r, at, tag, "truncated version");
  if (version != TRACE_FORMAT_VERSION)
    return r->status = MF_ERR(MAYFLY_ECORRUPT, "%s: unsupported trace format version %u at "
                              "offset %" PRIu64, r->path, version, r->chunk_offset);
  if (!(get_varint32(&body, &flags) && get_varint64(&body, &r->info.wall_start_us) &&
        get_varint64(&body, &r->info.session) && get_length_prefixed(&body, &dbname)))
    return corrupt(r, at, tag, "truncated session record");
  if (r->info.wall_start_us >= TRACE_MAX_TIME_US)
    return corrupt(r, at, tag, "start time out of range");
  r->dbname = malloc(dbname.len + 1);
  if (!r->dbname) return r->status = MF_ERR(MAYFLY_ENOMEM, "%s: out of memory", r->path);
  memcpy(r->dbname, dbname.data, dbname.len);
  r->dbname[dbname.len] = '\0';
  r->info.dbname = r->dbname;
  r->info.present = 1;
  r->info.format_version = version;
  r->info.flags = (int)flags;
  return MAYFLY_OK;
}

int trace_reader_open(mf_env *env, const char *path, int which, trace_reader **out) {
  *out = NULL;
  trace_reader *r = calloc(1, sizeof *r);
  if (!r) return MF_ERR(MAYFLY_ENOMEM, "%s: out of memory", path);
  r->env = env;
  r->path = strdup(path);
  r->info.dbname = "";
  int rc = r->path ? MAYFLY_OK : MF_ERR(MAYFLY_ENOMEM, "%s: out of memory", path);
  if (rc == MAYFLY_OK) rc = env->open_readable(env, path, &r->file);
  if (rc == MAYFLY_OK)
    rc = wal_reader_create(env, r->file, path,
                           which == TRACE_OP_FILE ? WAL_KIND_OP_TRACE : WAL_KIND_JOB_TRACE,
                           &r->log);
  if (rc == MAYFLY_OK) rc = read_session(r);
  if (rc != MAYFLY_OK) {
    trace_reader_close(r);
    return rc;
  }
  *out = r;
  return MAYFLY_OK;
}

const trace_session_info *trace_reader_info(const trace_reader *r) { return &r->info; }

uint64_t trace_reader_offset(const trace_reader *r) {
  return r->log ? wal_reader_last_record_offset(r->log) : 0;
}

void trace_reader_close(trace_reader *r) {
  if (!r) return;
  if (r->log) wal_reader_destroy(r->log);
  if (r->file) r->env->close_readable(r->file);
  free(r->path);
  free(r->dbname);
  free(r->inputs);
  free(r);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

int trace_list_sessions(mf_env *env, const char *dir, uint64_t **out, size_t *n) {
  *out = NULL;
  *n = 0;
  char **names = NULL;
  size_t count = 0;
  int rc = env->list_dir(env, dir, &names, &count);
  if (rc) return rc;
  uint64_t *s = calloc(count + 1, sizeof *s);
  if (!s) {
    env_free_names(names, count);
    return MF_ERR(MAYFLY_ENOMEM, "%s: out of memory", dir);
  }
  size_t k = 0;
  for (size_t i = 0; i < count; i++) {
    uint64_t session;
    int which;
    if (trace_parse_file_name(names[i], &session, &which)) s[k++] = session;
  }
  env_free_names(names, count);
  if (k > 1) qsort(s, k, sizeof *s, cmp_u64);
  size_t u = 0;
  for (size_t i = 0; i < k; i++)
    if (u == 0 || s[u - 1] != s[i]) s[u++] = s[i];
  if (u == 0) {
    free(s);
    s = NULL;
  }
  *out = s;
  *n = u;
  return MAYFLY_OK;
}
