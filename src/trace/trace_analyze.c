/* The lifetime trace analyzer's core: loading the traces and joining them (trace_analyze.h
 * states what each time means; docs/tracing.md shows the reports).
 *
 * Loading reads every session's op file first (each PUT and DELETE becomes a version; GETs
 * are kept aside), then every session's job file (drops, placements and relocations find
 * their version by seq, jobs and files are collected). Sequence numbers are unique for the
 * life of a database, so seq alone names a version; the key in a job record is checked
 * against it, and a record whose version was written while tracing was off is counted as
 * untraced instead. Job ids are unique while a database is open and restart at 1 when it is
 * reopened, so a job record refers to the latest job started with that id.
 *
 * Then compute() derives, in order: the versions of each key (a counting sort by key keeps
 * seq order), invalidation by the next version, the time -> seq map, reads per version,
 * reclaim times, the compactions each version went through, bytes written per version, and
 * the garbage each job saw at its start. */
#include "trace/trace_analyze.h"

#include <stdlib.h>
#include <string.h>

#include "mayfly.h"
#include "trace/trace_reader.h"
#include "trace/trace_writer.h"
#include "util/checksum.h"
#include "util/error.h"

/* ---- small containers ---- */

static int grow(void *pp, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return MAYFLY_OK;
  size_t c = *cap ? *cap : 64;
  while (c < need) c *= 2;
  void *p = realloc(*(void **)pp, c * elem);
  if (!p) return MF_ERR(MAYFLY_ENOMEM, "trace analysis: out of memory (%zu items)", need);
  *(void **)pp = p;
  *cap = c;
  return MAYFLY_OK;
}

/* Open addressing, uint64 -> uint32; UINT32_MAX marks an empty slot. */
typedef struct u64map {
  uint64_t *keys;
  uint32_t *vals;
  size_t cap, n;
} u64map;

static size_t mix(uint64_t k) {
  k ^= k >> 33;
  k *= UINT64_C(0xff51afd7ed558ccd);
  k ^= k >> 33;
  return (size_t)k;
}

static uint32_t map_get(const u64map *m, uint64_t key) {
  if (m->cap == 0) return UINT32_MAX;
  for (size_t i = mix(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    if (m->vals[i] == UINT32_MAX) return UINT32_MAX;
    if (m->keys[i] == key) return m->vals[i];
  }
}

static int map_put(u64map *m, uint64_t key, uint32_t val, int *replaced);

static int map_rehash(u64map *m, size_t cap) {
  u64map fresh = {malloc(cap * sizeof(uint64_t)), malloc(cap * sizeof(uint32_t)), cap, 0};
  if (!fresh.keys || !fresh.vals) {
    free(fresh.keys);
    free(fresh.vals);
    return MF_ERR(MAYFLY_ENOMEM, "trace analysis: out of memory");
  }
  memset(fresh.vals, 0xff, cap * sizeof(uint32_t));
  for (size_t i = 0; i < m->cap; i++)
    if (m->vals[i] != UINT32_MAX) map_put(&fresh, m->keys[i], m->vals[i], NULL);
  free(m->keys);
  free(m->vals);
  *m = fresh;
  return MAYFLY_OK;
}

static int map_put(u64map *m, uint64_t key, uint32_t val, int *replaced) {
  if ((m->n + 1) * 2 > m->cap) {
    int rc = map_rehash(m, m->cap ? m->cap * 2 : 1024);
    if (rc) return rc;
  }
  if (replaced) *replaced = 0;
  for (size_t i = mix(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    if (m->vals[i] == UINT32_MAX) {
      m->keys[i] = key;
      m->vals[i] = val;
      m->n++;
      return MAYFLY_OK;
    }
    if (m->keys[i] == key) {
      m->vals[i] = val;
      if (replaced) *replaced = 1;
      return MAYFLY_OK;
    }
  }
}

static void map_free(u64map *m) {
  free(m->keys);
  free(m->vals);
  memset(m, 0, sizeof *m);
}

/* ---- the loader ---- */

typedef struct get_event {
  uint32_t key_id;
  uint64_t seq;
} get_event;

typedef struct loader {
  trace_analysis *a;
  mf_env *env;
  const char *dir;
  trace_progress_fn progress;
  void *arg;
  u64map seq_map, file_map, job_map;
  u64map job_ok; /* the open being loaded: job id -> 0 started, 1 ended well, 2 failed */
  size_t cur;      /* index of the session whose op file is being loaded */
  uint8_t *opened; /* per session index: it began with a RECOVERED record (a database open) */
  uint32_t *key_slots; /* key hash table of key ids, UINT32_MAX empty */
  size_t key_cap;
  size_t cap_v, cap_keys, cap_jobs, cap_files, cap_gets;
  get_event *gets;
  size_t ngets;
} loader;

static mf_slice key_of(const trace_analysis *a, uint32_t id) {
  return mf_slice_make(a->key_bytes.data + a->keys[id].off, a->keys[id].len);
}

static int key_rehash(loader *l, size_t cap) {
  uint32_t *slots = malloc(cap * sizeof *slots);
  if (!slots) return MF_ERR(MAYFLY_ENOMEM, "trace analysis: out of memory");
  memset(slots, 0xff, cap * sizeof *slots);
  for (uint32_t id = 0; id < l->a->nkeys; id++) {
    mf_slice k = key_of(l->a, id);
    size_t i = (size_t)mf_hash64(k.data, k.len) & (cap - 1);
    while (slots[i] != UINT32_MAX) i = (i + 1) & (cap - 1);
    slots[i] = id;
  }
  free(l->key_slots);
  l->key_slots = slots;
  l->key_cap = cap;
  return MAYFLY_OK;
}

/* The id of key; with create, a new id for a new key. UINT32_MAX: not found (or no memory,
 * with *rc set). */
static uint32_t key_id(loader *l, mf_slice key, uint32_t key_size, int create, int *rc) {
  trace_analysis *a = l->a;
  if (l->key_cap == 0 || (a->nkeys + 1) * 2 > l->key_cap) {
    if (!create && l->key_cap == 0) return UINT32_MAX;
    if (create && (*rc = key_rehash(l, l->key_cap ? l->key_cap * 2 : 1024)) != MAYFLY_OK)
      return UINT32_MAX;
  }
  size_t i = (size_t)mf_hash64(key.data, key.len) & (l->key_cap - 1);
  for (; l->key_slots[i] != UINT32_MAX; i = (i + 1) & (l->key_cap - 1))
    if (mf_slice_equal(key_of(a, l->key_slots[i]), key)) return l->key_slots[i];
  if (!create) return UINT32_MAX;
  if ((*rc = grow(&a->keys, &l->cap_keys, a->nkeys + 1, sizeof *a->keys)) != MAYFLY_OK)
    return UINT32_MAX;
  ta_key *k = &a->keys[a->nkeys];
  memset(k, 0, sizeof *k);
  k->off = a->key_bytes.len;
  k->len = (uint32_t)key.len;
  k->key_size = key_size;
  if ((*rc = mf_buf_append(&a->key_bytes, key.data, key.len)) != MAYFLY_OK) {
    *rc = MF_ERR(MAYFLY_ENOMEM, "trace analysis: out of memory");
    return UINT32_MAX;
  }
  l->key_slots[i] = (uint32_t)a->nkeys;
  return (uint32_t)a->nkeys++;
}

static void note_time(trace_analysis *a, uint64_t t) {
  if (a->first_us == TA_NONE || t < a->first_us) a->first_us = t;
  if (a->last_us == TA_NONE || t > a->last_us) a->last_us = t;
}

/* A session opened on a database that recovered up to last_seq: versions traced before
 * with a larger seq were lost in a crash, and their seqs will be given again. Ops are traced
 * in seq order, so they are the newest versions loaded so far. */
static void drop_lost_versions(loader *l, uint64_t last_seq) {
  trace_analysis *a = l->a;
  while (a->nv > 0 && a->v[a->nv - 1].seq > last_seq) {
    const ta_version *v = &a->v[--a->nv];
    if (v->type == TRACE_PUT) a->puts--;
    else a->deletes--;
    a->lost_writes++;
  }
  /* Gets above last_seq read a state with lost writes in it; their seq comes again. */
  size_t kept = 0;
  for (size_t g = 0; g < l->ngets; g++) {
    if (l->gets[g].seq <= last_seq) l->gets[kept++] = l->gets[g];
    else a->lost_gets++;
  }
  a->gets_count -= l->ngets - kept;
  l->ngets = kept;
}

/* The version loaded with seq, or UINT32_MAX (seq_map may still name a lost version's slot,
 * since reused by another). */
static uint32_t version_index(const loader *l, uint64_t seq) {
  uint32_t i = map_get(&l->seq_map, seq);
  return i != UINT32_MAX && i < l->a->nv && l->a->v[i].seq == seq ? i : UINT32_MAX;
}

static int add_op(loader *l, const trace_record *r) {
  trace_analysis *a = l->a;
  int rc = MAYFLY_OK;
  if (r->tag == TRACE_RECOVERED) {
    l->opened[l->cur] = 1;
    drop_lost_versions(l, r->seq);
    return MAYFLY_OK;
  }
  if (r->tag == TRACE_GET) {
    a->gets_count++;
    uint32_t id = key_id(l, r->key, r->key_size, 0, &rc);
    if (id == UINT32_MAX) return rc;
    if ((rc = grow(&l->gets, &l->cap_gets, l->ngets + 1, sizeof *l->gets)) != MAYFLY_OK)
      return rc;
    l->gets[l->ngets++] = (get_event){id, r->seq};
    return MAYFLY_OK;
  }
  uint32_t id = key_id(l, r->key, r->key_size, 1, &rc);
  if (id == UINT32_MAX) return rc;
  if ((rc = grow(&a->v, &l->cap_v, a->nv + 1, sizeof *a->v)) != MAYFLY_OK) return rc;
  ta_version *v = &a->v[a->nv];
  memset(v, 0, sizeof *v);
  v->seq = r->seq;
  v->written_us = r->time_us;
  v->value_size = r->value_size;
  v->key_id = id;
  v->key_size = r->key_size;
  v->type = (uint8_t)r->tag;
  v->to_blob = (r->flags & TRACE_OP_TO_BLOB) != 0;
  v->invalidated_seq = v->invalidated_us = TA_NONE;
  v->dropped_us = v->dropped_seq = v->reclaimed_us = v->reclaimed_seq = TA_NONE;
  v->drop_job = TA_NO_JOB;
  v->last_job_counted = TA_NO_JOB;
  if (version_index(l, r->seq) != UINT32_MAX) a->duplicate_seqs++;
  if ((rc = map_put(&l->seq_map, r->seq, (uint32_t)a->nv, NULL)) != MAYFLY_OK) return rc;
  if (r->tag == TRACE_PUT) a->puts++;
  else a->deletes++;
  a->nv++;
  return MAYFLY_OK;
}

/* The version a job record names, or NULL when it was not traced (or the key differs). */
static ta_version *find_version(loader *l, const trace_record *r) {
  uint32_t i = version_index(l, r->seq);
  if (i == UINT32_MAX) return NULL;
  ta_version *v = &l->a->v[i];
  return mf_slice_equal(key_of(l->a, v->key_id), r->key) ? v : NULL;
}

static ta_job *find_job(loader *l, uint64_t id) {
  uint32_t i = map_get(&l->job_map, id);
  return i == UINT32_MAX ? NULL : &l->a->jobs[i];
}

static ta_file *get_file(loader *l, uint64_t number, int *rc) {
  trace_analysis *a = l->a;
  uint32_t i = map_get(&l->file_map, number);
  if (i != UINT32_MAX) return &a->files[i];
  if ((*rc = grow(&a->files, &l->cap_files, a->nfiles + 1, sizeof *a->files)) != MAYFLY_OK)
    return NULL;
  ta_file *f = &a->files[a->nfiles];
  memset(f, 0, sizeof *f);
  f->number = number;
  f->created_us = f->deleted_us = TA_NONE;
  f->job = TA_NO_JOB;
  if ((*rc = map_put(&l->file_map, number, (uint32_t)a->nfiles, NULL)) != MAYFLY_OK) return NULL;
  a->nfiles++;
  return f;
}

static int add_job_start(loader *l, uint64_t session, const trace_record *r) {
  trace_analysis *a = l->a;
  int rc = grow(&a->jobs, &l->cap_jobs, a->njobs + 1, sizeof *a->jobs);
  if (rc) return rc;
  ta_job *j = &a->jobs[a->njobs];
  memset(j, 0, sizeof *j);
  j->session = session;
  j->id = r->job;
  j->kind = r->kind;
  j->reason = r->reason;
  j->level = r->level;
  j->output_level = r->output_level;
  j->status = -1;
  j->start_us = r->time_us;
  j->end_us = TA_NONE;
  if (r->num_inputs > 0) {
    j->inputs = malloc((size_t)r->num_inputs * sizeof *j->inputs);
    if (!j->inputs) return MF_ERR(MAYFLY_ENOMEM, "trace analysis: out of memory");
    memcpy(j->inputs, r->inputs, (size_t)r->num_inputs * sizeof *j->inputs);
    j->num_inputs = r->num_inputs;
  }
  return map_put(&l->job_map, r->job, (uint32_t)a->njobs++, NULL);
}

/* Whether r is the work of a job whose JOB_END reports a failure (an error, or a close that
 * interrupted it): such a job installed nothing (its outputs were removed, the inputs
 * stayed), so what it dropped, placed, relocated or created did not happen; a later job
 * redoes it. A job without a JOB_END keeps its records: a crash can lose the trace's last
 * buffer, JOB_END included, after the job installed its work. */
static int undone_job_work(const loader *l, const trace_record *r) {
  switch (r->tag) {
    case TRACE_DROP:
    case TRACE_PLACE:
    case TRACE_RELOCATE:
    case TRACE_FILE_CREATE: break;
    default: return 0;
  }
  return r->job != 0 && map_get(&l->job_ok, r->job) == 2;
}

static int add_job_record(loader *l, uint64_t session, const trace_record *r) {
  trace_analysis *a = l->a;
  int rc = MAYFLY_OK;
  if (undone_job_work(l, r)) {
    a->undone_job_records++;
    return MAYFLY_OK;
  }
  ta_job *j = r->tag == TRACE_JOB_START ? NULL : find_job(l, r->job);
  switch (r->tag) {
    case TRACE_JOB_START: return add_job_start(l, session, r);
    case TRACE_JOB_END:
      if (j) {
        j->end_us = r->time_us;
        j->status = r->status;
      }
      return MAYFLY_OK;
    case TRACE_DROP: {
      a->drops++;
      if (r->reason >= 1 && r->reason <= 4) a->drops_by_reason[r->reason]++;
      if (j) {
        j->dropped++;
        j->dropped_bytes += r->key_size + r->value_size;
      }
      ta_version *v = find_version(l, r);
      if (!v) {
        a->untraced_drops++;
        return MAYFLY_OK;
      }
      if (v->drop_reason) {
        /* A version is dropped once. Twice: the first job never ended (a crash stopped it
         * before it installed anything) and this one redid its work; else the version was
         * not traced. */
        const ta_job *first = v->drop_job == TA_NO_JOB ? NULL : &a->jobs[v->drop_job];
        if (!first || !first->never_ended) {
          a->untraced_drops++;
          return MAYFLY_OK;
        }
        a->redone_drops++;
      }
      v->dropped_us = r->time_us;
      v->drop_reason = (uint8_t)r->reason;
      v->drop_job = j ? (uint32_t)(j - a->jobs) : TA_NO_JOB;
      if (r->file) {
        v->blob_file = r->file;
        v->dropped_blob = 1;
      }
      return MAYFLY_OK;
    }
    case TRACE_PLACE:
    case TRACE_RELOCATE: {
      int reloc = r->tag == TRACE_RELOCATE;
      if (reloc) a->relocations++;
      else a->placements++;
      if (j && reloc) {
        j->relocated++;
        j->relocated_bytes += r->value_size;
      } else if (j) {
        j->placed++;
        j->placed_bytes += r->value_size;
      }
      ta_version *v = find_version(l, r);
      if (!v) {
        a->untraced_blob_moves++;
        return MAYFLY_OK;
      }
      if (reloc) v->relocations++;
      else v->placements++;
      v->blob_file = r->file;
      return MAYFLY_OK;
    }
    case TRACE_FILE_CREATE: {
      ta_file *f = get_file(l, r->file, &rc);
      if (!f) return rc;
      f->kind = r->kind;
      f->level = r->level;
      f->size = r->size;
      f->entries = r->entries;
      f->smallest_seq = r->smallest_seq;
      f->largest_seq = r->largest_seq;
      f->created_us = r->time_us;
      f->job = j ? (uint32_t)(j - a->jobs) : TA_NO_JOB;
      if (j) {
        j->files_created++;
        j->bytes_created += r->size;
      }
      if (r->kind == TRACE_FILE_TABLE && (r->smallest_key.len || r->largest_key.len)) {
        f->has_range = 1;
        f->lo_off = a->key_bytes.len;
        f->lo_len = (uint32_t)r->smallest_key.len;
        rc = mf_buf_append(&a->key_bytes, r->smallest_key.data, r->smallest_key.len);
        f->hi_off = a->key_bytes.len;
        f->hi_len = (uint32_t)r->largest_key.len;
        if (rc == MAYFLY_OK)
          rc = mf_buf_append(&a->key_bytes, r->largest_key.data, r->largest_key.len);
        if (rc) return MF_ERR(MAYFLY_ENOMEM, "trace analysis: out of memory");
      }
      return MAYFLY_OK;
    }
    case TRACE_FILE_DELETE: {
      ta_file *f = get_file(l, r->file, &rc);
      if (!f) return rc;
      if (!f->kind) f->kind = r->kind;
      f->deleted_us = r->time_us;
      return MAYFLY_OK;
    }
    default: return MAYFLY_OK;
  }
}

/* First pass over a session's job file: how each job ended, into l->job_ok (which holds one
 * database open: job ids are unique while a database is open, and a job that spans a session
 * switch has its JOB_START and JOB_END in two sessions' files). */
static int scan_job_outcomes(loader *l, uint64_t session) {
  char *path = trace_file_name(l->dir, session, TRACE_JOB_FILE);
  if (!path) return MF_ERR(MAYFLY_ENOMEM, "trace analysis: out of memory");
  trace_reader *r = NULL;
  int rc = trace_reader_open(l->env, path, TRACE_JOB_FILE, &r);
  free(path);
  if (rc == MAYFLY_ENOTFOUND) return MAYFLY_OK;
  trace_record rec;
  while (rc == MAYFLY_OK && (rc = trace_reader_next(r, &rec)) == MAYFLY_OK) {
    if (rec.tag == TRACE_JOB_START) rc = map_put(&l->job_ok, rec.job, 0, NULL);
    else if (rec.tag == TRACE_JOB_END) rc = map_put(&l->job_ok, rec.job, rec.status ? 2 : 1, NULL);
  }
  if (rc == MAYFLY_ENOTFOUND) rc = MAYFLY_OK;
  if (r) trace_reader_close(r);
  return rc;
}

static int load_file(loader *l, uint64_t session, int which);

/* Jobs of the open just loaded that have no JOB_END never ended as far as the trace tells. */
static void mark_never_ended(trace_analysis *a, size_t first_job) {
  for (size_t i = first_job; i < a->njobs; i++)
    if (a->jobs[i].status == -1) a->jobs[i].never_ended = 1;
}

/* Loads the job files: one database open at a time (sessions from one with a RECOVERED
 * record up to the next; traces without RECOVERED records, each session alone). */
static int load_job_files(loader *l, const uint64_t *sessions, size_t n) {
  int any_open = 0;
  for (size_t i = 0; i < n; i++) any_open |= l->opened[i];
  int rc = MAYFLY_OK;
  size_t open_first_job = 0;
  for (size_t i = 0; rc == MAYFLY_OK && i < n; i++) {
    if (i == 0 || !any_open || l->opened[i]) {
      mark_never_ended(l->a, open_first_job);
      open_first_job = l->a->njobs;
      map_free(&l->job_ok);
      for (size_t j = i; rc == MAYFLY_OK && j < n && (j == i || (any_open && !l->opened[j])); j++)
        rc = scan_job_outcomes(l, sessions[j]);
    }
    if (rc == MAYFLY_OK) rc = load_file(l, sessions[i], TRACE_JOB_FILE);
  }
  if (rc == MAYFLY_OK) mark_never_ended(l->a, open_first_job);
  return rc;
}

/* Reads one file of a session. A missing file is an empty trace. */
static int load_file(loader *l, uint64_t session, int which) {
  trace_analysis *a = l->a;
  char *path = trace_file_name(l->dir, session, which);
  if (!path) return MF_ERR(MAYFLY_ENOMEM, "trace analysis: out of memory");
  uint64_t size = 0;
  l->env->file_size(l->env, path, &size);
  trace_reader *r = NULL;
  int rc = trace_reader_open(l->env, path, which, &r);
  if (rc == MAYFLY_ENOTFOUND) rc = MAYFLY_OK;
  if (rc == MAYFLY_OK && r) {
    const trace_session_info *info = trace_reader_info(r);
    if (info->present) {
      int hash = (info->flags & TRACE_FLAG_KEY_HASH) != 0;
      int gets = (info->flags & TRACE_FLAG_GETS) != 0;
      if (a->num_sessions == 0 && which == TRACE_OP_FILE) {
        a->key_hash = hash;
        a->gets = gets;
      } else if (hash != a->key_hash) {
        a->mixed_modes = 1;
      }
      if (which == TRACE_OP_FILE) {
        if (a->num_sessions > 0 && a->last_us != TA_NONE && info->wall_start_us < a->last_us)
          a->clock_steps_back++;
        a->num_sessions++;
      }
      note_time(a, info->wall_start_us);
    }
    trace_record rec;
    uint64_t n = 0;
    while ((rc = trace_reader_next(r, &rec)) == MAYFLY_OK) {
      a->records++;
      note_time(a, rec.time_us);
      rc = which == TRACE_OP_FILE ? add_op(l, &rec) : add_job_record(l, session, &rec);
      if (rc) break;
      if (l->progress && (++n & 0xfffff) == 0)
        l->progress(l->arg, path, trace_reader_offset(r), size);
    }
    if (rc == MAYFLY_ENOTFOUND) rc = MAYFLY_OK;
  }
  if (l->progress && rc == MAYFLY_OK) l->progress(l->arg, path, size, size);
  trace_reader_close(r);
  free(path);
  return rc;
}

/* ---- computing the lives ---- */

static int cmp_version_seq(const void *x, const void *y) {
  const ta_version *a = x, *b = y;
  return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* The newest seq written at or before t (running maximum of write times, so the map is
 * monotone even if the clock stepped back); 0 before the first write. */
static uint64_t time_to_seq(const trace_analysis *a, const uint64_t *tmax, uint64_t t) {
  if (t == TA_NONE) return TA_NONE;
  size_t lo = 0, hi = a->nv; /* first index with tmax > t */
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (tmax[mid] <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo == 0 ? 0 : a->v[lo - 1].seq;
}

static int build_by_key(trace_analysis *a) {
  a->by_key = malloc((a->nv + 1) * sizeof *a->by_key);
  if (!a->by_key) return MF_ERR(MAYFLY_ENOMEM, "trace analysis: out of memory");
  for (size_t k = 0; k < a->nkeys; k++) a->keys[k].count = 0;
  for (size_t i = 0; i < a->nv; i++) a->keys[a->v[i].key_id].count++;
  uint32_t at = 0;
  for (size_t k = 0; k < a->nkeys; k++) {
    a->keys[k].first = at;
    at += a->keys[k].count;
    a->keys[k].count = 0;
  }
  for (size_t i = 0; i < a->nv; i++) {
    ta_key *k = &a->keys[a->v[i].key_id];
    a->by_key[k->first + k->count++] = (uint32_t)i;
  }
  return MAYFLY_OK;
}

static void compute_invalidation(trace_analysis *a) {
  for (size_t k = 0; k < a->nkeys; k++) {
    const ta_key *key = &a->keys[k];
    for (uint32_t i = 0; i + 1 < key->count; i++) {
      ta_version *v = &a->v[a->by_key[key->first + i]];
      const ta_version *next = &a->v[a->by_key[key->first + i + 1]];
      v->invalidated_seq = next->seq;
      v->invalidated_us = next->written_us;
    }
  }
}

static void assign_gets(trace_analysis *a, const get_event *gets, size_t n) {
  for (size_t g = 0; g < n; g++) {
    const ta_key *key = &a->keys[gets[g].key_id];
    /* the last version of the key at or below the read's seq */
    uint32_t lo = 0, hi = key->count;
    while (lo < hi) {
      uint32_t mid = (lo + hi) / 2;
      if (a->v[a->by_key[key->first + mid]].seq <= gets[g].seq) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0) a->v[a->by_key[key->first + lo - 1]].reads_after++;
  }
}

static uint64_t file_deleted(const trace_analysis *a, const u64map *files, uint64_t number) {
  uint32_t i = map_get(files, number);
  return i == UINT32_MAX ? TA_NONE : a->files[i].deleted_us;
}

static void compute_reclaim(trace_analysis *a, const u64map *files, const uint64_t *tmax) {
  /* Outputs of a failed job are removed when it ends. */
  for (size_t i = 0; i < a->nfiles; i++) {
    ta_file *f = &a->files[i];
    if (f->deleted_us == TA_NONE && f->job != TA_NO_JOB && a->jobs[f->job].status > 0)
      f->deleted_us = a->jobs[f->job].end_us;
  }
  for (size_t i = 0; i < a->nv; i++) {
    ta_version *v = &a->v[i];
    if (!v->drop_reason) continue;
    v->dropped_seq = time_to_seq(a, tmax, v->dropped_us);
    const ta_job *j = v->drop_job == TA_NO_JOB ? NULL : &a->jobs[v->drop_job];
    uint64_t t = TA_NONE;
    if (j && j->kind == TRACE_JOB_FLUSH) {
      t = j->end_us != TA_NONE ? j->end_us : v->dropped_us;
    } else if (v->dropped_blob) {
      t = file_deleted(a, files, v->blob_file);
    } else if (j && j->num_inputs > 0) {
      t = 0;
      for (int k = 0; k < j->num_inputs && t != TA_NONE; k++) {
        uint64_t d = file_deleted(a, files, j->inputs[k]);
        if (d == TA_NONE || d > t) t = d;
      }
    }
    v->reclaimed_us = t;
    v->reclaimed_seq = time_to_seq(a, tmax, t);
  }
}

typedef struct sorted_key {
  mf_slice key;
  uint32_t id;
} sorted_key;

static int cmp_sorted_key(const void *x, const void *y) {
  return mf_slice_compare(((const sorted_key *)x)->key, ((const sorted_key *)y)->key);
}

/* Counts job j for v if v plausibly was among its inputs: v lived (written, not yet dropped)
 * when j started and falls in input file f's seq range (the caller checked the key range). */
static void maybe_count(ta_version *v, const ta_job *j, uint32_t job_index, const ta_file *f) {
  if (v->seq < f->smallest_seq || v->seq > f->largest_seq) return;
  if (v->written_us > j->start_us) return;
  if (v->dropped_us != TA_NONE && v->dropped_us < j->start_us) return;
  if (v->last_job_counted == job_index) return;
  v->last_job_counted = job_index;
  v->compactions++;
}

/* The compactions (and group GC rewrites) each version went through. Which table holds which
 * version is not traced, so this is an estimate: a version counts for a job when one of the
 * job's input tables covers its key and seq and the version was alive when the job started.
 * It needs the tables' key ranges, which hashed traces do not have. Each input table is
 * matched either by walking the keys in its key range or the versions in its seq range,
 * whichever is shorter. */
static int compute_compactions(trace_analysis *a, const u64map *files, loader *l) {
  if (a->key_hash) {
    for (size_t i = 0; i < a->nv; i++) a->v[i].compactions = UINT32_MAX;
    return MAYFLY_OK;
  }
  sorted_key *sk = malloc((a->nkeys + 1) * sizeof *sk);
  if (!sk) return MF_ERR(MAYFLY_ENOMEM, "trace analysis: out of memory");
  for (uint32_t k = 0; k < a->nkeys; k++) sk[k] = (sorted_key){key_of(a, k), k};
  if (a->nkeys > 1) qsort(sk, a->nkeys, sizeof *sk, cmp_sorted_key);
  for (uint32_t ji = 0; ji < a->njobs; ji++) {
    const ta_job *j = &a->jobs[ji];
    if ((j->kind != TRACE_JOB_COMPACTION && j->kind != TRACE_JOB_GC) || j->status > 0) continue;
    for (int in = 0; in < j->num_inputs; in++) {
      uint32_t fi = map_get(files, j->inputs[in]);
      if (fi == UINT32_MAX || !a->files[fi].has_range) continue;
      const ta_file *f = &a->files[fi];
      mf_slice lo = mf_slice_make(a->key_bytes.data + f->lo_off, f->lo_len);
      mf_slice hi = mf_slice_make(a->key_bytes.data + f->hi_off, f->hi_len);
      size_t k0 = 0, k1 = a->nkeys; /* keys in [lo, hi] are sk[k0, kend) */
      while (k0 < k1) {
        size_t mid = (k0 + k1) / 2;
        if (mf_slice_compare(sk[mid].key, lo) < 0) k0 = mid + 1;
        else k1 = mid;
      }
      size_t kend = k0, k2 = a->nkeys;
      while (kend < k2) {
        size_t mid = (kend + k2) / 2;
        if (mf_slice_compare(sk[mid].key, hi) <= 0) kend = mid + 1;
        else k2 = mid;
      }
      size_t s0 = 0, s1 = a->nv; /* versions with seq in range are v[s0, send) */
      while (s0 < s1) {
        size_t mid = (s0 + s1) / 2;
        if (a->v[mid].seq < f->smallest_seq) s0 = mid + 1;
        else s1 = mid;
      }
      size_t send = s0, s2 = a->nv;
      while (send < s2) {
        size_t mid = (send + s2) / 2;
        if (a->v[mid].seq <= f->largest_seq) send = mid + 1;
        else s2 = mid;
      }
      if (send - s0 < kend - k0) {
        for (size_t i = s0; i < send; i++) {
          mf_slice key = key_of(a, a->v[i].key_id);
          if (mf_slice_compare(key, lo) >= 0 && mf_slice_compare(key, hi) <= 0)
            maybe_count(&a->v[i], j, ji, f);
        }
      } else {
        for (size_t k = k0; k < kend; k++) {
          const ta_key *key = &a->keys[sk[k].id];
          for (uint32_t x = 0; x < key->count; x++)
            maybe_count(&a->v[a->by_key[key->first + x]], j, ji, f);
        }
      }
    }
    if (l->progress && (ji & 0xff) == 0) l->progress(l->arg, "compactions", ji, a->njobs);
  }
  free(sk);
  return MAYFLY_OK;
}

/* Bytes written for a version: the WAL record (key + value), then key + value for each table
 * that holds it inline, key + a 16-byte index for each table that holds it as a blob index,
 * and the value for each blob file write (placement or relocation). Table writes are the
 * flush (when a flush ran after the write and did not drop it) plus the compactions counted
 * above. */
static void compute_write_bytes(trace_analysis *a) {
  uint64_t last_flush = 0;
  int flushed_any = 0;
  for (size_t i = 0; i < a->njobs; i++) {
    const ta_job *j = &a->jobs[i];
    if (j->kind != TRACE_JOB_FLUSH || j->status > 0) continue;
    if (!flushed_any || j->start_us > last_flush) last_flush = j->start_us;
    flushed_any = 1;
  }
  for (size_t i = 0; i < a->nv; i++) {
    ta_version *v = &a->v[i];
    uint64_t tables = flushed_any && v->drop_reason != TRACE_DROP_MEMTABLE &&
                      v->written_us <= last_flush;
    if (v->compactions != UINT32_MAX) tables += v->compactions;
    uint64_t blob_writes = (uint64_t)v->placements + v->relocations;
    uint64_t per_table = v->key_size + (blob_writes > 0 ? 16 : v->value_size);
    v->write_bytes =
        v->key_size + v->value_size + tables * per_table + blob_writes * v->value_size;
  }
}

typedef struct timed_bytes {
  uint64_t t, bytes;
} timed_bytes;

static int cmp_timed(const void *x, const void *y) {
  uint64_t a = ((const timed_bytes *)x)->t, b = ((const timed_bytes *)y)->t;
  return a < b ? -1 : a > b;
}

/* How many entries of sorted e[0, n) have t < limit (or <= limit with inclusive). */
static size_t count_before(const timed_bytes *e, size_t n, uint64_t limit, int inclusive) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (e[mid].t < limit || (inclusive && e[mid].t == limit)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* Garbage (versions invalidated and not yet dropped) at each job's start: the invalidations
 * up to the start minus the drops of invalidated versions before it, with prefix sums of
 * their bytes (key + value). */
static int compute_job_garbage(trace_analysis *a) {
  timed_bytes *inv = malloc((a->nv + 1) * 2 * sizeof *inv);
  if (!inv) return MF_ERR(MAYFLY_ENOMEM, "trace analysis: out of memory");
  timed_bytes *gone = inv + a->nv + 1;
  size_t ni = 0, ng = 0;
  for (size_t i = 0; i < a->nv; i++) {
    const ta_version *v = &a->v[i];
    if (v->invalidated_us == TA_NONE) continue;
    uint64_t bytes = v->key_size + v->value_size;
    inv[ni++] = (timed_bytes){v->invalidated_us, bytes};
    if (v->dropped_us != TA_NONE) gone[ng++] = (timed_bytes){v->dropped_us, bytes};
  }
  if (ni > 1) qsort(inv, ni, sizeof *inv, cmp_timed);
  if (ng > 1) qsort(gone, ng, sizeof *gone, cmp_timed);
  for (size_t i = 1; i < ni; i++) inv[i].bytes += inv[i - 1].bytes; /* prefix sums */
  for (size_t i = 1; i < ng; i++) gone[i].bytes += gone[i - 1].bytes;
  for (size_t ji = 0; ji < a->njobs; ji++) {
    ta_job *j = &a->jobs[ji];
    size_t in = count_before(inv, ni, j->start_us, 1), out = count_before(gone, ng, j->start_us, 0);
    uint64_t in_bytes = in ? inv[in - 1].bytes : 0, out_bytes = out ? gone[out - 1].bytes : 0;
    j->garbage_at_start = in > out ? in - out : 0;
    j->garbage_bytes_at_start = in_bytes > out_bytes ? in_bytes - out_bytes : 0;
  }
  free(inv);
  return MAYFLY_OK;
}

static int compute(loader *l) {
  trace_analysis *a = l->a;
  if (a->nv > 1) qsort(a->v, a->nv, sizeof *a->v, cmp_version_seq);
  int rc = build_by_key(a);
  if (rc) return rc;
  compute_invalidation(a);
  uint64_t *tmax = malloc((a->nv + 1) * sizeof *tmax);
  if (!tmax) return MF_ERR(MAYFLY_ENOMEM, "trace analysis: out of memory");
  uint64_t m = 0;
  for (size_t i = 0; i < a->nv; i++) {
    if (a->v[i].written_us > m) m = a->v[i].written_us;
    tmax[i] = m;
  }
  assign_gets(a, l->gets, l->ngets);
  compute_reclaim(a, &l->file_map, tmax);
  free(tmax);
  rc = compute_compactions(a, &l->file_map, l);
  if (rc == MAYFLY_OK) compute_write_bytes(a);
  if (rc == MAYFLY_OK) rc = compute_job_garbage(a);
  return rc;
}

int trace_analyze(mf_env *env, const char *dir, trace_progress_fn progress, void *arg,
                  trace_analysis **out) {
  *out = NULL;
  uint64_t *sessions = NULL;
  size_t n = 0;
  int rc = trace_list_sessions(env, dir, &sessions, &n);
  if (rc) return rc;
  if (n == 0) return MF_ERR(MAYFLY_ENOTFOUND, "%s: no trace files (trace-NNNNNN.op/.job)", dir);
  trace_analysis *a = calloc(1, sizeof *a);
  if (!a) {
    free(sessions);
    return MF_ERR(MAYFLY_ENOMEM, "trace analysis: out of memory");
  }
  a->first_us = a->last_us = TA_NONE;
  loader l = {.a = a, .env = env, .dir = dir, .progress = progress, .arg = arg};
  l.opened = calloc(n, 1);
  if (!l.opened) rc = MF_ERR(MAYFLY_ENOMEM, "trace analysis: out of memory");
  for (size_t i = 0; rc == MAYFLY_OK && i < n; i++) {
    l.cur = i;
    rc = load_file(&l, sessions[i], TRACE_OP_FILE);
  }
  if (rc == MAYFLY_OK) rc = load_job_files(&l, sessions, n);
  if (rc == MAYFLY_OK) rc = compute(&l);
  free(sessions);
  free(l.opened);
  map_free(&l.seq_map);
  map_free(&l.file_map);
  map_free(&l.job_map);
  map_free(&l.job_ok);
  free(l.key_slots);
  free(l.gets);
  if (rc != MAYFLY_OK) {
    trace_analysis_free(a);
    return rc;
  }
  if (a->first_us == TA_NONE) a->first_us = a->last_us = 0;
  *out = a;
  return MAYFLY_OK;
}

void trace_analysis_free(trace_analysis *a) {
  if (!a) return;
  for (size_t i = 0; i < a->njobs; i++) free(a->jobs[i].inputs);
  free(a->jobs);
  free(a->files);
  free(a->v);
  free(a->keys);
  free(a->by_key);
  mf_buf_free(&a->key_bytes);
  free(a);
}

void trace_key_text(const trace_analysis *a, uint32_t key_id, char *buf, size_t n) {
  static const char hex[] = "0123456789abcdef";
  if (n == 0) return;
  mf_slice k = key_of(a, key_id);
  size_t o = 0;
  if (a->key_hash && k.len == 8) {
    /* the hash as a number: fixed64 little-endian, printed most significant digit first */
    for (int i = 7; i >= 0 && o + 2 < n; i--) {
      buf[o++] = hex[((unsigned char)k.data[i]) >> 4];
      buf[o++] = hex[((unsigned char)k.data[i]) & 15];
    }
  } else {
    for (size_t i = 0; i < k.len && o + 2 < n; i++) {
      buf[o++] = hex[((unsigned char)k.data[i]) >> 4];
      buf[o++] = hex[((unsigned char)k.data[i]) & 15];
    }
  }
  buf[o] = '\0';
}
