/* Reports of a trace analysis (trace_analyze.h): CSV/TSV tables, the summary, gnuplot
 * scripts and the training export. Column meanings are in docs/tracing.md.
 *
 * All output goes through the env (so tests can write to the in-memory env). CSV files leave a
 * cell empty when a value is unknown or censored (pandas reads that as NaN); the TSV files
 * meant for gnuplot write "-" instead, and plots.gp declares it as the missing value. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mayfly.h"
#include "trace/trace_analyze.h"
#include "trace/trace_format.h"
#include "util/error.h"

/* ---- buffered output through the env ---- */

typedef struct out_file {
  mf_env *env;
  mf_wfile *file;
  mf_buf buf;
  int rc;
} out_file;

static int of_open(out_file *o, mf_env *env, const char *dir, const char *name) {
  memset(o, 0, sizeof *o);
  o->env = env;
  size_t n = (dir ? strlen(dir) + 1 : 0) + strlen(name) + 1;
  char *path = malloc(n);
  if (!path) return MF_ERR(MAYFLY_ENOMEM, "out of memory");
  if (dir) snprintf(path, n, "%s/%s", dir, name);
  else snprintf(path, n, "%s", name);
  o->rc = env->new_writable(env, path, &o->file);
  free(path);
  return o->rc;
}

static void of_flush(out_file *o) {
  if (o->rc == MAYFLY_OK && o->buf.len) o->rc = o->env->append(o->file, o->buf.data, o->buf.len);
  mf_buf_clear(&o->buf);
}

/* Records a formatting result and writes the buffer out once it passes 64 KiB. */
static void of_note(out_file *o, int rc) {
  if (rc != MAYFLY_OK && o->rc == MAYFLY_OK)
    o->rc = MF_ERR(rc, "out of memory formatting a report");
  if (o->buf.len >= (64u << 10)) of_flush(o);
}

/* printf-style text appended to an out_file (o is evaluated twice: pass a plain pointer). */
#define of_printf(o, ...) of_note((o), mf_buf_appendf(&(o)->buf, __VA_ARGS__))

static int of_close(out_file *o) {
  of_flush(o);
  if (o->file) {
    int rc = o->env->close_writable(o->file);
    if (o->rc == MAYFLY_OK) o->rc = rc;
  }
  mf_buf_free(&o->buf);
  return o->rc;
}

/* A uint64 cell: empty (CSV) or "-" (TSV) when TA_NONE. */
static const char *cell(uint64_t v, char *buf, size_t n, const char *missing) {
  if (v == TA_NONE) return missing;
  snprintf(buf, n, "%" PRIu64, v);
  return buf;
}

static uint64_t diff(uint64_t later, uint64_t earlier) {
  if (later == TA_NONE || earlier == TA_NONE) return TA_NONE;
  return later >= earlier ? later - earlier : 0;
}

static const char *reason_text(int r) {
  switch (r) {
    case TRACE_DROP_HIDDEN: return "hidden";
    case TRACE_DROP_MEMTABLE: return "memtable";
    case TRACE_DROP_OBSOLETE_TOMBSTONE: return "obsolete_tombstone";
    case TRACE_DROP_BASE_TOMBSTONE: return "base_tombstone";
    default: return "";
  }
}

static const char *kind_text(int k) {
  switch (k) {
    case TRACE_JOB_FLUSH: return "flush";
    case TRACE_JOB_COMPACTION: return "compaction";
    case TRACE_JOB_GC: return "gc";
    case TRACE_JOB_MOVE: return "move";
    default: return "unknown";
  }
}

/* ---- lifetimes ---- */

enum { LT_VALID_US, LT_ACTUAL_US, LT_LAG_US, LT_VALID_SEQ, LT_ACTUAL_SEQ, LT_LAG_SEQ, LT_COUNT };
static const char *const lt_names[LT_COUNT] = {"valid_us",  "actual_us",  "lag_us",
                                               "valid_seq", "actual_seq", "lag_seq"};

typedef struct lifetimes {
  uint64_t *values[LT_COUNT]; /* sorted */
  size_t n[LT_COUNT];
} lifetimes;

static int cmp_u64(const void *x, const void *y) {
  uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
  return a < b ? -1 : a > b;
}

/* Lifetimes of put versions (a tombstone holds no value). */
static int collect_lifetimes(const trace_analysis *a, lifetimes *lt) {
  memset(lt, 0, sizeof *lt);
  for (int k = 0; k < LT_COUNT; k++) {
    lt->values[k] = malloc((a->nv + 1) * sizeof(uint64_t));
    if (!lt->values[k]) return MF_ERR(MAYFLY_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < a->nv; i++) {
    const ta_version *v = &a->v[i];
    if (v->type != TRACE_PUT) continue;
    uint64_t x[LT_COUNT] = {diff(v->invalidated_us, v->written_us),
                            diff(v->reclaimed_us, v->written_us),
                            diff(v->reclaimed_us, v->invalidated_us),
                            diff(v->invalidated_seq, v->seq),
                            diff(v->reclaimed_seq, v->seq),
                            diff(v->reclaimed_seq, v->invalidated_seq)};
    for (int k = 0; k < LT_COUNT; k++)
      if (x[k] != TA_NONE) lt->values[k][lt->n[k]++] = x[k];
  }
  for (int k = 0; k < LT_COUNT; k++)
    if (lt->n[k] > 1) qsort(lt->values[k], lt->n[k], sizeof(uint64_t), cmp_u64);
  return MAYFLY_OK;
}

static void free_lifetimes(lifetimes *lt) {
  for (int k = 0; k < LT_COUNT; k++) free(lt->values[k]);
}

static uint64_t quantile(const uint64_t *v, size_t n, double q) {
  if (n == 0) return TA_NONE;
  size_t i = (size_t)(q * (double)(n - 1) + 0.5);
  return v[i < n ? i : n - 1];
}

/* Square root by Newton's method: the library does not link libm. */
static double root(double x) {
  if (x <= 0) return 0;
  double r = x > 1 ? x / 2 : 1;
  for (int i = 0; i < 200; i++) {
    double next = (r + x / r) / 2;
    if (next == r) break;
    r = next;
  }
  return r;
}

static double mean_of(const uint64_t *v, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (double)v[i];
  return n ? s / (double)n : 0;
}

/* ---- summary ---- */

/* Appends printf-style text to b unless *rc already holds an error. */
#define buf_printf(b, rc, ...)                                        \
  do {                                                                \
    if (*(rc) == MAYFLY_OK) *(rc) = mf_buf_appendf((b), __VA_ARGS__); \
  } while (0)

/* Per-user-key mean and variance of the valid lifetime (us) of its put versions. */
typedef struct key_stats {
  uint64_t puts, deletes, valid_n, actual_n;
  double valid_mean, valid_var, actual_mean, actual_var;
} key_stats;

static void stats_of_key(const trace_analysis *a, uint32_t k, key_stats *s) {
  memset(s, 0, sizeof *s);
  const ta_key *key = &a->keys[k];
  double vs = 0, vss = 0, as = 0, ass = 0;
  for (uint32_t i = 0; i < key->count; i++) {
    const ta_version *v = &a->v[a->by_key[key->first + i]];
    if (v->type != TRACE_PUT) {
      s->deletes++;
      continue;
    }
    s->puts++;
    uint64_t valid = diff(v->invalidated_us, v->written_us);
    uint64_t actual = diff(v->reclaimed_us, v->written_us);
    if (valid != TA_NONE) {
      s->valid_n++;
      vs += (double)valid;
      vss += (double)valid * (double)valid;
    }
    if (actual != TA_NONE) {
      s->actual_n++;
      as += (double)actual;
      ass += (double)actual * (double)actual;
    }
  }
  if (s->valid_n) {
    s->valid_mean = vs / (double)s->valid_n;
    s->valid_var = vss / (double)s->valid_n - s->valid_mean * s->valid_mean;
    if (s->valid_var < 0) s->valid_var = 0;
  }
  if (s->actual_n) {
    s->actual_mean = as / (double)s->actual_n;
    s->actual_var = ass / (double)s->actual_n - s->actual_mean * s->actual_mean;
    if (s->actual_var < 0) s->actual_var = 0;
  }
}

int trace_report_summary(const trace_analysis *a, mf_buf *out) {
  int rc = MAYFLY_OK;
  lifetimes lt;
  int lrc = collect_lifetimes(a, &lt);
  if (lrc) {
    free_lifetimes(&lt);
    return lrc;
  }
  double secs = (double)(a->last_us - a->first_us) / 1e6;
  buf_printf(out, &rc, "mayfly lifetime trace: %zu session(s), %.3f s, %" PRIu64 " records%s\n",
             a->num_sessions, secs, a->records,
             a->key_hash ? ", keys hashed" : "");
  if (a->mixed_modes)
    buf_printf(out, &rc, "WARNING: sessions differ in trace_key_hash; their keys do not join\n");
  /* A key written only by writes lost in a crash has no version left: it is not counted. */
  uint64_t once = 0, many = 0;
  for (size_t k = 0; k < a->nkeys; k++) {
    if (a->keys[k].count == 1) once++;
    else if (a->keys[k].count > 1) many++;
  }
  buf_printf(out, &rc, "ops: %" PRIu64 " puts, %" PRIu64 " deletes, %" PRIu64 " gets; %" PRIu64
             " user keys: %" PRIu64 " written once, %" PRIu64 " written more than once\n",
             a->puts, a->deletes, a->gets_count, once + many, once, many);
  uint64_t invalidated = 0, dropped = 0, reclaimed = 0, to_blob = 0;
  for (size_t i = 0; i < a->nv; i++) {
    invalidated += a->v[i].invalidated_us != TA_NONE;
    dropped += a->v[i].drop_reason != 0;
    reclaimed += a->v[i].reclaimed_us != TA_NONE;
    to_blob += a->v[i].to_blob;
  }
  buf_printf(out, &rc, "internal keys: %zu written (%" PRIu64 " bound for blob files), %" PRIu64
             " invalidated, %" PRIu64 " dropped, %" PRIu64 " reclaimed\n",
             a->nv, to_blob, invalidated, dropped, reclaimed);
  buf_printf(out, &rc, "drops: %" PRIu64 " hidden, %" PRIu64 " in memtable, %" PRIu64
             " obsolete tombstones, %" PRIu64 " base-level tombstones; %" PRIu64
             " of versions not traced\n",
             a->drops_by_reason[1], a->drops_by_reason[2], a->drops_by_reason[3],
             a->drops_by_reason[4], a->untraced_drops);
  buf_printf(out, &rc, "blobs: %" PRIu64 " placements, %" PRIu64 " relocations\n", a->placements,
             a->relocations);
  if (a->lost_writes || a->lost_gets)
    buf_printf(out, &rc, "left out: %" PRIu64 " writes lost in a crash (traced, then not "
               "recovered: their sequence numbers were given again) and %" PRIu64 " gets that "
               "read after them\n", a->lost_writes, a->lost_gets);
  if (a->clock_steps_back)
    buf_printf(out, &rc, "warning: the wall clock went back at %" PRIu64 " reopen(s): intervals "
               "across them are unreliable, and negative ones are reported as 0\n",
               a->clock_steps_back);
  if (a->undone_job_records)
    buf_printf(out, &rc, "left out: %" PRIu64 " drops, placements, relocations and file "
               "creations of jobs that failed (redone by later jobs)\n", a->undone_job_records);
  if (a->redone_drops)
    buf_printf(out, &rc, "redone: %" PRIu64 " drops by jobs that never ended, taken from the "
               "job that dropped the version again\n", a->redone_drops);
  buf_printf(out, &rc, "\n%-11s %10s %14s %14s %14s %14s %14s\n", "lifetime", "n", "mean",
             "p50", "p90", "p99", "max");
  for (int k = 0; k < LT_COUNT; k++) {
    const uint64_t *v = lt.values[k];
    size_t n = lt.n[k];
    if (n == 0) {
      buf_printf(out, &rc, "%-11s %10zu\n", lt_names[k], n);
      continue;
    }
    buf_printf(out, &rc, "%-11s %10zu %14.0f %14" PRIu64 " %14" PRIu64 " %14" PRIu64
               " %14" PRIu64 "\n", lt_names[k], n, mean_of(v, n), quantile(v, n, 0.5),
               quantile(v, n, 0.9), quantile(v, n, 0.99), v[n - 1]);
  }
  free_lifetimes(&lt);
  /* per-user-key valid lifetime spread */
  double mean_sum = 0, sd_sum = 0;
  uint64_t keys_with = 0;
  for (uint32_t k = 0; k < a->nkeys; k++) {
    key_stats s;
    stats_of_key(a, k, &s);
    if (s.valid_n < 2) continue;
    keys_with++;
    mean_sum += s.valid_mean;
    sd_sum += root(s.valid_var);
  }
  if (keys_with)
    buf_printf(out, &rc, "\nper user key (%" PRIu64 " keys with 2+ invalidated puts): mean valid "
               "lifetime %.0f us, mean stddev %.0f us (keys.csv has each key)\n",
               keys_with, mean_sum / (double)keys_with, sd_sum / (double)keys_with);
  uint64_t jobs[5] = {0};
  double share_sum = 0;
  uint64_t share_n = 0;
  for (size_t j = 0; j < a->njobs; j++) {
    const ta_job *job = &a->jobs[j];
    if (job->kind >= 1 && job->kind <= 4) jobs[job->kind]++;
    if (job->kind == TRACE_JOB_COMPACTION && job->garbage_at_start > 0) {
      share_sum += (double)job->dropped / (double)job->garbage_at_start;
      share_n++;
    }
  }
  buf_printf(out, &rc, "jobs: %" PRIu64 " flushes, %" PRIu64 " compactions, %" PRIu64
             " GC rewrites, %" PRIu64 " trivial moves", jobs[1], jobs[2], jobs[3], jobs[4]);
  if (share_n)
    buf_printf(out, &rc, "; a compaction dropped on average %.1f%% of the garbage present at "
               "its start", 100.0 * share_sum / (double)share_n);
  buf_printf(out, &rc, "\n");
  return rc ? MF_ERR(rc, "trace summary: out of memory") : MAYFLY_OK;
}

/* ---- the CSV/TSV files ---- */

/* A buffer for trace_key_text that holds the longest key whole (a cut key could make two
 * keys print alike), or NULL when out of memory. */
static char *key_text_buffer(const trace_analysis *a, size_t *n) {
  size_t longest = 8; /* a hash */
  for (size_t k = 0; k < a->nkeys; k++)
    if (a->keys[k].len > longest) longest = a->keys[k].len;
  *n = 2 * longest + 1;
  return malloc(*n);
}

static int write_versions(const trace_analysis *a, mf_env *env, const char *dir) {
  out_file o;
  if (of_open(&o, env, dir, "versions.csv")) return of_close(&o);
  of_printf(&o, "key,seq,op,key_size,value_size,to_blob,written_us,invalidated_seq,"
            "invalidated_us,dropped_seq,dropped_us,drop_reason,drop_job,reclaimed_seq,"
            "reclaimed_us,blob_file,placements,relocations,compactions,write_bytes,reads\n");
  char c[8][24];
  size_t key_cap;
  char *key = key_text_buffer(a, &key_cap);
  if (!key) o.rc = MF_ERR(MAYFLY_ENOMEM, "out of memory");
  for (size_t i = 0; i < a->nv && o.rc == MAYFLY_OK; i++) {
    const ta_version *v = &a->v[i];
    trace_key_text(a, v->key_id, key, key_cap);
    uint64_t job = v->drop_job == TA_NO_JOB ? TA_NONE : (uint64_t)v->drop_job + 1;
    uint64_t compactions = v->compactions == UINT32_MAX ? TA_NONE : v->compactions;
    of_printf(&o, "%s,%" PRIu64 ",%s,%u,%" PRIu64 ",%d,%" PRIu64 ",%s,%s,%s,%s,%s,%s,%s,%s,%"
              PRIu64 ",%u,%u,%s,%" PRIu64 ",%u\n",
              key, v->seq, v->type == TRACE_PUT ? "put" : "delete", v->key_size, v->value_size,
              v->to_blob, v->written_us, cell(v->invalidated_seq, c[0], 24, ""),
              cell(v->invalidated_us, c[1], 24, ""), cell(v->dropped_seq, c[2], 24, ""),
              cell(v->dropped_us, c[3], 24, ""), reason_text(v->drop_reason),
              cell(job, c[4], 24, ""), cell(v->reclaimed_seq, c[5], 24, ""),
              cell(v->reclaimed_us, c[6], 24, ""), v->blob_file, v->placements, v->relocations,
              cell(compactions, c[7], 24, ""), v->write_bytes, v->reads_after);
  }
  free(key);
  return of_close(&o);
}

static int write_keys(const trace_analysis *a, mf_env *env, const char *dir) {
  out_file o;
  if (of_open(&o, env, dir, "keys.csv")) return of_close(&o);
  of_printf(&o, "key,key_size,puts,deletes,valid_n,valid_mean_us,valid_var_us2,actual_n,"
            "actual_mean_us,actual_var_us2\n");
  size_t key_cap;
  char *key = key_text_buffer(a, &key_cap);
  if (!key) o.rc = MF_ERR(MAYFLY_ENOMEM, "out of memory");
  for (uint32_t k = 0; k < a->nkeys && o.rc == MAYFLY_OK; k++) {
    if (a->keys[k].count == 0) continue; /* written only by writes lost in a crash */
    key_stats s;
    stats_of_key(a, k, &s);
    trace_key_text(a, k, key, key_cap);
    of_printf(&o, "%s,%u,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",", key, a->keys[k].key_size, s.puts,
              s.deletes, s.valid_n);
    if (s.valid_n) of_printf(&o, "%.1f,%.1f,", s.valid_mean, s.valid_var);
    else of_printf(&o, ",,");
    of_printf(&o, "%" PRIu64 ",", s.actual_n);
    if (s.actual_n) of_printf(&o, "%.1f,%.1f\n", s.actual_mean, s.actual_var);
    else of_printf(&o, ",\n");
  }
  free(key);
  return of_close(&o);
}

static int write_jobs(const trace_analysis *a, mf_env *env, const char *dir) {
  out_file o;
  if (of_open(&o, env, dir, "jobs.csv")) return of_close(&o);
  of_printf(&o, "job,session,id,kind,reason,level,output_level,status,start_us,end_us,"
            "duration_us,inputs,dropped,dropped_bytes,garbage_at_start,garbage_bytes_at_start,"
            "reclaimed_share,reclaimed_bytes_share,placed,placed_bytes,relocated,"
            "relocated_bytes,files_created,bytes_created\n");
  char c[3][24];
  for (size_t i = 0; i < a->njobs && o.rc == MAYFLY_OK; i++) {
    const ta_job *j = &a->jobs[i];
    of_printf(&o, "%zu,%" PRIu64 ",%" PRIu64 ",%s,%d,%d,%d,%s,%" PRIu64 ",%s,%s,", i + 1,
              j->session, j->id, kind_text(j->kind), j->reason, j->level, j->output_level,
              j->status < 0 ? "" : j->status == 0 ? "ok" : "failed", j->start_us,
              cell(j->end_us, c[0], 24, ""), cell(diff(j->end_us, j->start_us), c[1], 24, ""));
    for (int k = 0; k < j->num_inputs; k++)
      of_printf(&o, "%s%" PRIu64, k ? " " : "", j->inputs[k]);
    of_printf(&o, ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",", j->dropped,
              j->dropped_bytes, j->garbage_at_start, j->garbage_bytes_at_start);
    if (j->garbage_at_start)
      of_printf(&o, "%.4f,", (double)j->dropped / (double)j->garbage_at_start);
    else of_printf(&o, ",");
    if (j->garbage_bytes_at_start)
      of_printf(&o, "%.4f,", (double)j->dropped_bytes / (double)j->garbage_bytes_at_start);
    else of_printf(&o, ",");
    of_printf(&o, "%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 "\n",
              j->placed, j->placed_bytes, j->relocated, j->relocated_bytes, j->files_created,
              j->bytes_created);
  }
  return of_close(&o);
}

/* Space and write amplification over time. Events: a write adds its key and value to the user
 * bytes (and, for a put, to the live bytes); an invalidation removes the old put from the live
 * bytes; a file creation adds to the disk and written bytes, a deletion removes from disk.
 * Only files created while tracing are known. The state is printed at up to 1000 evenly
 * spaced times. */
typedef struct amp_event {
  uint64_t t;
  int64_t disk, table, blob, live;
  uint64_t user, written;
} amp_event;

static int cmp_event(const void *x, const void *y) {
  uint64_t a = ((const amp_event *)x)->t, b = ((const amp_event *)y)->t;
  return a < b ? -1 : a > b;
}

static int write_amplification(const trace_analysis *a, mf_env *env, const char *dir) {
  size_t cap = 2 * a->nv + 2 * a->nfiles + 1, n = 0;
  amp_event *e = calloc(cap, sizeof *e);
  if (!e) return MF_ERR(MAYFLY_ENOMEM, "out of memory");
  for (size_t i = 0; i < a->nv; i++) {
    const ta_version *v = &a->v[i];
    int64_t bytes = (int64_t)(v->key_size + v->value_size);
    int put = v->type == TRACE_PUT;
    e[n++] = (amp_event){.t = v->written_us, .live = put ? bytes : 0, .user = (uint64_t)bytes};
    if (put && v->invalidated_us != TA_NONE)
      e[n++] = (amp_event){.t = v->invalidated_us, .live = -bytes};
  }
  for (size_t i = 0; i < a->nfiles; i++) {
    const ta_file *f = &a->files[i];
    if (f->created_us == TA_NONE) continue;
    int64_t size = (int64_t)f->size, blob = f->kind == TRACE_FILE_BLOB;
    e[n++] = (amp_event){.t = f->created_us, .disk = size, .table = blob ? 0 : size,
                         .blob = blob ? size : 0, .written = (uint64_t)size};
    if (f->deleted_us != TA_NONE)
      e[n++] = (amp_event){.t = f->deleted_us, .disk = -size, .table = blob ? 0 : -size,
                           .blob = blob ? -size : 0};
  }
  if (n > 1) qsort(e, n, sizeof *e, cmp_event);
  out_file o;
  if (of_open(&o, env, dir, "amplification.tsv")) {
    free(e);
    return of_close(&o);
  }
  of_printf(&o, "time_us\telapsed_s\tdisk_bytes\ttable_bytes\tblob_bytes\tlive_bytes\tspace_amp"
            "\tuser_bytes\tfile_bytes_written\twrite_amp\n");
  int64_t disk = 0, table = 0, blob = 0, live = 0;
  uint64_t user = 0, written = 0;
  uint64_t t0 = n ? e[0].t : 0, span = n ? e[n - 1].t - t0 : 0, step = span / 1000 + 1;
  uint64_t next = t0;
  for (size_t i = 0; i < n && o.rc == MAYFLY_OK; i++) {
    disk += e[i].disk;
    table += e[i].table;
    blob += e[i].blob;
    live += e[i].live;
    user += e[i].user;
    written += e[i].written;
    if (i + 1 < n && e[i + 1].t < next) continue; /* print after the last event of a step */
    if (i + 1 < n && e[i + 1].t == e[i].t) continue;
    char sa[32], wa[32];
    if (live > 0) snprintf(sa, sizeof sa, "%.4f", (double)disk / (double)live);
    else snprintf(sa, sizeof sa, "-");
    if (user > 0) snprintf(wa, sizeof wa, "%.4f", (double)written / (double)user);
    else snprintf(wa, sizeof wa, "-");
    of_printf(&o, "%" PRIu64 "\t%.6f\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%" PRId64
              "\t%s\t%" PRIu64 "\t%" PRIu64 "\t%s\n", e[i].t, (double)(e[i].t - t0) / 1e6, disk,
              table, blob, live, sa, user, written, wa);
    while (next <= e[i].t) next += step;
  }
  free(e);
  return of_close(&o);
}

/* Histograms with power-of-two bins ([0, 2), [2, 4), [4, 8), ...) and a 1000-point quantile
 * table (the CDF) of every lifetime. */
static int write_lifetime_tables(const trace_analysis *a, mf_env *env, const char *dir) {
  lifetimes lt;
  int rc = collect_lifetimes(a, &lt);
  out_file o;
  if (rc == MAYFLY_OK && of_open(&o, env, dir, "lifetimes_hist.tsv") == MAYFLY_OK) {
    enum { BINS = 64 };
    uint64_t count[LT_COUNT][BINS];
    memset(count, 0, sizeof count);
    int top = 0;
    for (int k = 0; k < LT_COUNT; k++) {
      for (size_t i = 0; i < lt.n[k]; i++) {
        uint64_t x = lt.values[k][i];
        int bin = 0;
        while (bin < BINS - 1 && x >= (UINT64_C(2) << bin)) bin++;
        count[k][bin]++;
        if (bin > top) top = bin;
      }
    }
    of_printf(&o, "bin_lo\tbin_hi");
    for (int k = 0; k < LT_COUNT; k++) of_printf(&o, "\t%s", lt_names[k]);
    of_printf(&o, "\n");
    for (int bin = 0; bin <= top; bin++) {
      of_printf(&o, "%" PRIu64 "\t%" PRIu64, bin ? UINT64_C(1) << bin : 0, UINT64_C(2) << bin);
      for (int k = 0; k < LT_COUNT; k++) of_printf(&o, "\t%" PRIu64, count[k][bin]);
      of_printf(&o, "\n");
    }
    rc = of_close(&o);
  } else if (rc == MAYFLY_OK) {
    rc = of_close(&o);
  }
  if (rc == MAYFLY_OK && of_open(&o, env, dir, "lifetimes_cdf.tsv") == MAYFLY_OK) {
    of_printf(&o, "fraction");
    for (int k = 0; k < LT_COUNT; k++) of_printf(&o, "\t%s", lt_names[k]);
    of_printf(&o, "\n");
    for (int q = 1; q <= 1000; q++) {
      of_printf(&o, "%.3f", q / 1000.0);
      for (int k = 0; k < LT_COUNT; k++) {
        char c[24];
        of_printf(&o, "\t%s", cell(quantile(lt.values[k], lt.n[k], q / 1000.0), c, 24, "-"));
      }
      of_printf(&o, "\n");
    }
    rc = of_close(&o);
  } else if (rc == MAYFLY_OK) {
    rc = of_close(&o);
  }
  free_lifetimes(&lt);
  return rc;
}

static const char plots_gp[] =
    "# Renders the lifetime and amplification plots from the tables next to this script.\n"
    "# Written by mayfly_trace analyze; run in this directory: gnuplot -e \"fmt='svg'\" plots.gp\n"
    "# (fmt='png' for PNG). docs/tracing.md describes the data.\n"
    "if (!exists(\"fmt\")) fmt = 'svg'\n"
    "if (fmt eq 'png') { if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) { set terminal pngcairo "
    "size 900,560 } else { set terminal png size 900,560 } } else { set terminal svg size "
    "900,560 dynamic }\n"
    "set datafile separator \"\\t\"\n"
    "set datafile missing \"-\"\n"
    "set key autotitle columnhead\n"
    "set grid\n"
    "\n"
    "# Histograms: power-of-two bins, plotted at the bin's geometric middle.\n"
    "set logscale x 2\n"
    "set format x '%.1s%c'\n"
    "set xlabel 'lifetime (microseconds; k = 10^3, M = 10^6)'\n"
    "set ylabel 'internal keys (puts)'\n"
    "set title 'Valid lifetime (invalidated - written) and actual lifetime (reclaimed - "
    "written)'\n"
    "set output 'lifetime_hist.'.fmt\n"
    "plot 'lifetimes_hist.tsv' using (($1 > 0 ? $1 : 1) * 1.41):3 with histeps lw 2 title "
    "'valid', '' using (($1 > 0 ? $1 : 1) * 1.41):4 with histeps lw 2 title 'actual'\n"
    "set title 'Reclamation lag (reclaimed - invalidated)'\n"
    "set output 'lag_hist.'.fmt\n"
    "plot 'lifetimes_hist.tsv' using (($1 > 0 ? $1 : 1) * 1.41):5 with histeps lw 2 title "
    "'lag'\n"
    "\n"
    "# CDFs from the quantile table.\n"
    "set ylabel 'fraction of internal keys (puts)'\n"
    "set yrange [0:1]\n"
    "set title 'Lifetime CDF'\n"
    "set output 'lifetime_cdf.'.fmt\n"
    "plot 'lifetimes_cdf.tsv' using 2:1 with lines lw 2 title 'valid', '' using 3:1 with lines "
    "lw 2 title 'actual', '' using 4:1 with lines lw 2 title 'lag'\n"
    "\n"
    "unset logscale x\n"
    "set format x '% g'\n"
    "set autoscale y\n"
    "set xlabel 'elapsed (s)'\n"
    "set ylabel 'amplification'\n"
    "set title 'Space amplification (disk / live bytes) and write amplification (file bytes / "
    "user bytes)'\n"
    "set output 'amplification.'.fmt\n"
    "plot 'amplification.tsv' using 2:7 with lines lw 2 title 'space', '' using 2:10 with lines "
    "lw 2 title 'write'\n";

int trace_report_write(const trace_analysis *a, mf_env *env, const char *out_dir) {
  int rc = env->make_dir(env, out_dir);
  if (rc == MAYFLY_OK) rc = write_versions(a, env, out_dir);
  if (rc == MAYFLY_OK) rc = write_keys(a, env, out_dir);
  if (rc == MAYFLY_OK) rc = write_jobs(a, env, out_dir);
  if (rc == MAYFLY_OK) rc = write_amplification(a, env, out_dir);
  if (rc == MAYFLY_OK) rc = write_lifetime_tables(a, env, out_dir);
  out_file o;
  if (rc == MAYFLY_OK && of_open(&o, env, out_dir, "plots.gp") == MAYFLY_OK) {
    of_printf(&o, "%s", plots_gp);
    rc = of_close(&o);
  } else if (rc == MAYFLY_OK) {
    rc = of_close(&o);
  }
  if (rc == MAYFLY_OK) {
    mf_buf summary = MF_BUF_INIT;
    rc = trace_report_summary(a, &summary);
    if (rc == MAYFLY_OK && of_open(&o, env, out_dir, "summary.txt") == MAYFLY_OK) {
      of_printf(&o, "%.*s", (int)summary.len, summary.data);
      rc = of_close(&o);
    } else if (rc == MAYFLY_OK) {
      rc = of_close(&o);
    }
    mf_buf_free(&summary);
  }
  return rc;
}

/* ---- training export ---- */

int trace_export_training(const trace_analysis *a, mf_env *env, const char *path) {
  out_file o;
  if (of_open(&o, env, NULL, path)) return of_close(&o);
  of_printf(&o, "key,op,key_size,value_size,seq,time_us,prev_lifetime_us,prev_writes,"
            "recent_write_rate,reads_since_last_write,label_valid_lifetime_us,censored,"
            "observed_us\n");
  /* The write rate over the preceding second: a window over the writes in seq order, whose
   * times are made monotone with a running maximum. */
  size_t window_start = 0;
  uint64_t tmax = 0, *times = malloc((a->nv + 1) * sizeof *times);
  if (!times) {
    of_close(&o);
    return MF_ERR(MAYFLY_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < a->nv; i++) {
    if (a->v[i].written_us > tmax) tmax = a->v[i].written_us;
    times[i] = tmax;
  }
  /* Each version's position among its key's versions. */
  uint32_t *rank = malloc((a->nv + 1) * sizeof *rank);
  if (!rank) {
    free(times);
    of_close(&o);
    return MF_ERR(MAYFLY_ENOMEM, "out of memory");
  }
  for (size_t k = 0; k < a->nkeys; k++)
    for (uint32_t x = 0; x < a->keys[k].count; x++) rank[a->by_key[a->keys[k].first + x]] = x;
  size_t key_cap;
  char *key = key_text_buffer(a, &key_cap);
  if (!key) o.rc = MF_ERR(MAYFLY_ENOMEM, "out of memory");
  for (size_t i = 0; i < a->nv && o.rc == MAYFLY_OK; i++) {
    const ta_version *v = &a->v[i];
    while (times[window_start] + 1000000 <= times[i]) window_start++;
    const ta_key *tk = &a->keys[v->key_id];
    const ta_version *prev = rank[i] ? &a->v[a->by_key[tk->first + rank[i] - 1]] : NULL;
    trace_key_text(a, v->key_id, key, key_cap);
    of_printf(&o, "%s,%s,%u,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",", key,
              v->type == TRACE_PUT ? "put" : "delete", v->key_size, v->value_size, v->seq,
              v->written_us);
    if (prev) of_printf(&o, "%" PRIu64 ",", diff(v->written_us, prev->written_us));
    else of_printf(&o, ",");
    of_printf(&o, "%u,%zu,", rank[i], i - window_start + 1);
    if (a->gets && prev) of_printf(&o, "%u,", prev->reads_after);
    else of_printf(&o, ",");
    uint64_t label = diff(v->invalidated_us, v->written_us);
    if (label != TA_NONE) of_printf(&o, "%" PRIu64 ",0,%" PRIu64 "\n", label, label);
    else of_printf(&o, ",1,%" PRIu64 "\n", diff(a->last_us, v->written_us));
  }
  free(key);
  free(rank);
  free(times);
  return of_close(&o);
}
