#include "gc/blob_gc.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"

static size_t old_file_count(const version *v, const struct mayfly_options *o) {
  if (!o->enable_blob_garbage_collection || o->blob_gc_policy != MF_BLOB_GC_AGE) return 0;
  return (size_t)(o->blob_garbage_collection_age_cutoff * (double)v->num_blobs);
}

uint64_t gc_age_cutoff_number(const version *v, const struct mayfly_options *o) {
  size_t old = old_file_count(v, o);
  if (old == 0) return 0;
  if (old >= (size_t)v->num_blobs) return UINT64_MAX;
  return v->blobs[old]->number;
}

int gc_pick_forced(const version *v, const struct mayfly_options *o, file_meta **file,
                   int *level) {
  if (o->blob_garbage_collection_force_threshold >= 1.0) return 0;
  size_t old = old_file_count(v, o);
  if (old == 0) return 0;
  /* The oldest batch: the oldest file and the files after it that no table links to, which
   * only the tables linked to the oldest file keep alive (compacting those tables frees the
   * whole batch). It must lie entirely within the old files, and its garbage ratio decides. */
  uint64_t total = v->blobs[0]->total_bytes, garbage = v->blobs[0]->garbage_bytes;
  size_t count = 1;
  for (; count < old && v->blobs[count]->num_linked_ssts == 0; count++) {
    total += v->blobs[count]->total_bytes;
    garbage += v->blobs[count]->garbage_bytes;
  }
  if (count < (size_t)v->num_blobs && v->blobs[count]->num_linked_ssts == 0)
    return 0; /* the batch runs past the age cutoff */
  /* No garbage, nothing to reclaim: with a threshold of 0 the rewritten oldest file would
   * be due again at once, for ever. */
  if (total == 0 || garbage == 0 ||
      (double)garbage < o->blob_garbage_collection_force_threshold * (double)total)
    return 0;
  uint64_t oldest = v->blobs[0]->number;
  /* The linked tables, shallowest level first: compacting one of them moves its references
   * to the batch into new files. */
  for (int l = 0; l < MF_NUM_LEVELS; l++) {
    for (int i = 0; i < v->num_files[l]; i++) {
      if (v->files[l][i]->oldest_blob_file == oldest) {
        *file = v->files[l][i];
        *level = l;
        return 1;
      }
    }
  }
  return 0;
}

/* The tables whose blob range covers file; -1 when one of them is in level 0, else the count
 * (arrays filled when tables is non-NULL). */
static int covering_tables(const version *v, uint64_t file, file_meta **tables, int *levels) {
  int n = 0;
  for (int l = 0; l < MF_NUM_LEVELS; l++) {
    for (int i = 0; i < v->num_files[l]; i++) {
      file_meta *f = v->files[l][i];
      if (f->oldest_blob_file == 0 || f->oldest_blob_file > file || f->newest_blob_file < file)
        continue;
      if (l == 0) return -1;
      if (tables) {
        tables[n] = f;
        levels[n] = l;
      }
      n++;
    }
  }
  return n;
}

int gc_pick_group(const version *v, const struct mayfly_options *o, uint64_t *file,
                  file_meta ***tables, int **levels, int *n) {
  if (!o->enable_blob_garbage_collection || o->blob_gc_policy != MF_BLOB_GC_GROUP ||
      o->blob_garbage_collection_force_threshold >= 1.0)
    return 0;
  /* The log with the most garbage first. */
  const blob_meta *best = NULL;
  double best_ratio = 0;
  for (int i = 0; i < v->num_blobs; i++) {
    const blob_meta *m = v->blobs[i];
    if (m->total_bytes == 0 || m->garbage_bytes == m->total_bytes) continue;
    double ratio = (double)m->garbage_bytes / (double)m->total_bytes;
    if (ratio < o->blob_garbage_collection_force_threshold || ratio <= best_ratio) continue;
    int count = covering_tables(v, m->number, NULL, NULL);
    if (count <= 0) continue;
    best = m;
    best_ratio = ratio;
  }
  if (!best) return 0;
  if (!tables) return 1; /* only asked whether one is due */
  int count = covering_tables(v, best->number, NULL, NULL);
  *tables = malloc((size_t)count * sizeof **tables);
  *levels = malloc((size_t)count * sizeof **levels);
  if (!*tables || !*levels) {
    free(*tables);
    free(*levels);
    *tables = NULL;
    *levels = NULL;
    return MF_ERR(MAYFLY_ENOMEM, "out of memory picking a value log to collect");
  }
  *n = covering_tables(v, best->number, *tables, *levels);
  *file = best->number;
  return 1;
}

void gc_meter_init(gc_meter *m) {
  m->flows = NULL;
  m->n = m->cap = 0;
}

void gc_meter_free(gc_meter *m) {
  free(m->flows);
  gc_meter_init(m);
}

/* The flow of file_number, inserted if new; NULL when out of memory. Jobs touch few files,
 * mostly in order, so a sorted array with a check of the last slot first is enough. */
static gc_flow *flow_for(gc_meter *m, uint64_t file_number) {
  if (m->n > 0 && m->flows[m->n - 1].file_number == file_number) return &m->flows[m->n - 1];
  int lo = 0, hi = m->n;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (m->flows[mid].file_number < file_number) lo = mid + 1;
    else hi = mid;
  }
  if (lo < m->n && m->flows[lo].file_number == file_number) return &m->flows[lo];
  if (m->n == m->cap) {
    int cap = m->cap ? 2 * m->cap : 16;
    gc_flow *p = realloc(m->flows, (size_t)cap * sizeof *p);
    if (!p) return NULL;
    m->flows = p;
    m->cap = cap;
  }
  memmove(&m->flows[lo + 1], &m->flows[lo], (size_t)(m->n - lo) * sizeof *m->flows);
  m->n++;
  gc_flow *f = &m->flows[lo];
  memset(f, 0, sizeof *f);
  f->file_number = file_number;
  return f;
}

int gc_meter_inflow(gc_meter *m, uint64_t file_number, uint64_t record_bytes) {
  gc_flow *f = flow_for(m, file_number);
  if (!f) return MF_ERR(MAYFLY_ENOMEM, "out of memory");
  f->in_count++;
  f->in_bytes += record_bytes;
  return MAYFLY_OK;
}

int gc_meter_outflow(gc_meter *m, uint64_t file_number, uint64_t record_bytes) {
  gc_flow *f = flow_for(m, file_number);
  if (!f) return MF_ERR(MAYFLY_ENOMEM, "out of memory");
  f->out_count++;
  f->out_bytes += record_bytes;
  return MAYFLY_OK;
}

int gc_meter_to_edit(const gc_meter *m, version_edit *edit, uint64_t *count, uint64_t *bytes) {
  for (int i = 0; i < m->n; i++) {
    const gc_flow *f = &m->flows[i];
    if (f->out_count > f->in_count || f->out_bytes > f->in_bytes)
      return MF_ERR(MAYFLY_ECORRUPT, "blob file %06llu: a job wrote more references (%llu) "
                    "than it read (%llu)", (unsigned long long)f->file_number,
                    (unsigned long long)f->out_count, (unsigned long long)f->in_count);
    if (f->in_count == f->out_count) continue;
    int rc = version_edit_add_blob_garbage(edit, f->file_number, f->in_count - f->out_count,
                                           f->in_bytes - f->out_bytes);
    if (rc) return rc;
    if (count) *count += f->in_count - f->out_count;
    if (bytes) *bytes += f->in_bytes - f->out_bytes;
  }
  return MAYFLY_OK;
}
