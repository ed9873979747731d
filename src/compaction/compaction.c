#include "compaction/compaction.h"

#include <stdlib.h>

#include "gc/blob_gc.h"
#include "util/error.h"
#include "util/ikey.h"

static uint64_t total_size(file_meta *const *files, int n) {
  uint64_t sum = 0;
  for (int i = 0; i < n; i++) sum += files[i]->file_size;
  return sum;
}

static mf_slice smallest_ukey(const file_meta *f) { return ikey_user_key(mf_buf_slice(&f->smallest)); }
static mf_slice largest_ukey(const file_meta *f) { return ikey_user_key(mf_buf_slice(&f->largest)); }

/* ---- level sizes and scores ---- */

void compaction_level_targets(const version *v, const struct mayfly_options *o,
                              level_targets *out) {
  const uint64_t base_bytes = o->max_bytes_for_level_base;
  const double mult = o->max_bytes_for_level_multiplier;
  out->max_bytes[0] = 0; /* level 0 is scored by file count */
  if (!o->level_compaction_dynamic_level_bytes) {
    out->base_level = 1;
    double target = (double)base_bytes;
    for (int level = 1; level < MF_NUM_LEVELS; level++) {
      out->max_bytes[level] = target >= (double)UINT64_MAX ? UINT64_MAX : (uint64_t)target;
      target *= mult;
    }
    return;
  }
  /* Dynamic: the last level's actual size fixes the targets of the levels above it, each a
   * multiplier smaller, down to the first level whose target would fall under
   * max_bytes_for_level_base; that is the base level, and the levels above it stay empty. */
  int first_non_empty = 0;
  uint64_t max_level_size = 0;
  for (int level = 1; level < MF_NUM_LEVELS; level++) {
    uint64_t size = version_level_bytes(v, level);
    if (size > 0 && first_non_empty == 0) first_non_empty = level;
    if (size > max_level_size) max_level_size = size;
  }
  for (int level = 1; level < MF_NUM_LEVELS; level++) out->max_bytes[level] = UINT64_MAX;
  if (max_level_size == 0) {
    out->base_level = MF_NUM_LEVELS - 1;
    out->max_bytes[out->base_level] = base_bytes;
    return;
  }
  double cur = (double)max_level_size;
  for (int level = MF_NUM_LEVELS - 2; level >= first_non_empty; level--) cur /= mult;
  double base_size;
  int base_level = first_non_empty;
  if (cur <= (double)base_bytes / mult) {
    base_size = (double)base_bytes / mult + 1;
  } else {
    while (base_level > 1 && cur > (double)base_bytes) {
      base_level--;
      cur /= mult;
    }
    base_size = cur > (double)base_bytes && base_level == 1 ? (double)base_bytes : cur;
  }
  out->base_level = base_level;
  double size = base_size;
  for (int level = base_level; level < MF_NUM_LEVELS; level++) {
    if (level > base_level) size *= mult;
    double target = size < (double)base_bytes ? (double)base_bytes : size;
    out->max_bytes[level] = target >= (double)UINT64_MAX ? UINT64_MAX : (uint64_t)target;
  }
}

void compaction_scores(const version *v, const struct mayfly_options *o,
                       double scores[MF_NUM_LEVELS]) {
  level_targets t;
  compaction_level_targets(v, o, &t);
  scores[0] = (double)v->num_files[0] / (double)o->level0_file_num_compaction_trigger;
  for (int level = 1; level < MF_NUM_LEVELS; level++) {
    uint64_t size = version_level_bytes(v, level);
    scores[level] = level == MF_NUM_LEVELS - 1 || t.max_bytes[level] == UINT64_MAX
                        ? 0.0
                        : (double)size / (double)t.max_bytes[level];
  }
  /* Levels kept empty under dynamic sizing still hold files after the option is turned on:
   * push them down. */
  if (o->level_compaction_dynamic_level_bytes)
    for (int level = 1; level < t.base_level; level++)
      if (v->num_files[level] > 0) scores[level] = 1.0 + (double)v->num_files[level];
}

/* ---- overlap ---- */

static int after_file(const mf_slice *key, const file_meta *f) {
  return key && mf_slice_compare(*key, largest_ukey(f)) > 0;
}

int compaction_overlapping_files(const version *v, int level, const mf_slice *begin,
                                 const mf_slice *end, file_meta ***out, int *n) {
  *out = NULL;
  *n = 0;
  file_meta **files = v->files[level];
  int count = v->num_files[level];
  if (count == 0) return MAYFLY_OK;
  file_meta **result = malloc((size_t)count * sizeof *result);
  if (!result) return MF_ERR(MAYFLY_ENOMEM, "out of memory");
  /* Level 0 files overlap each other: when a file widens the range, start over with the
   * wider range so that every file overlapping the result is in it. The range keys point
   * into file_metas of v, which outlive this call. */
  mf_slice lo, hi;
  const mf_slice *b = begin, *e = end;
  int k = 0;
  for (int i = 0; i < count; i++) {
    file_meta *f = files[i];
    if (after_file(b, f) || (e && mf_slice_compare(*e, smallest_ukey(f)) < 0)) continue;
    result[k++] = f;
    if (level == 0) {
      if (b && mf_slice_compare(smallest_ukey(f), *b) < 0) {
        lo = smallest_ukey(f);
        b = &lo;
        k = 0;
        i = -1;
      } else if (e && mf_slice_compare(largest_ukey(f), *e) > 0) {
        hi = largest_ukey(f);
        e = &hi;
        k = 0;
        i = -1;
      }
    }
  }
  *out = result;
  *n = k;
  return MAYFLY_OK;
}

/* The smallest and largest internal keys of the union of two file lists. */
static void key_range(file_meta *const *a, int na, file_meta *const *b, int nb, mf_slice *lo,
                      mf_slice *hi) {
  int first = 1;
  for (int pass = 0; pass < 2; pass++) {
    file_meta *const *files = pass ? b : a;
    int n = pass ? nb : na;
    for (int i = 0; i < n; i++) {
      mf_slice s = mf_buf_slice(&files[i]->smallest), l = mf_buf_slice(&files[i]->largest);
      if (first || ikey_compare(s, *lo) < 0) *lo = s;
      if (first || ikey_compare(l, *hi) > 0) *hi = l;
      first = 0;
    }
  }
}

/* ---- building a compaction ---- */

static compaction *new_compaction(version *v, const struct mayfly_options *o, int level,
                                  int output_level, int reason) {
  compaction *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->level = level;
  c->output_level = output_level;
  c->reason = reason;
  c->input_version = v;
  version_ref(v);
  c->max_output_file_size = o->target_file_size_base;
  c->max_grandparent_overlap = 10 * o->target_file_size_base;
  version_edit_init(&c->edit);
  return c;
}

void compaction_free(compaction *c) {
  if (!c) return;
  free(c->inputs[0]);
  free(c->inputs[1]);
  free(c->grandparents);
  free(c->rewrite);
  free(c->rewrite_levels);
  version_edit_free(&c->edit);
  version_unref(c->input_version);
  free(c);
}

static int output_level_for(const version *v, const struct mayfly_options *o, int level) {
  if (level > 0) return level + 1;
  level_targets t;
  compaction_level_targets(v, o, &t);
  return t.base_level;
}

/* Adds the output-level files, grows the start level's inputs when free, records the
 * grandparents and the compaction pointer, and fills in the input deletions. */
static int setup_other_inputs(compaction *c, const struct mayfly_options *o) {
  version *v = c->input_version;
  mf_slice lo, hi, ulo, uhi;
  key_range(c->inputs[0], c->num_inputs[0], NULL, 0, &lo, &hi);
  ulo = ikey_user_key(lo);
  uhi = ikey_user_key(hi);
  int rc = compaction_overlapping_files(v, c->output_level, &ulo, &uhi, &c->inputs[1],
                                        &c->num_inputs[1]);
  if (rc) return rc;
  mf_slice all_lo, all_hi;
  key_range(c->inputs[0], c->num_inputs[0], c->inputs[1], c->num_inputs[1], &all_lo, &all_hi);

  if (c->num_inputs[1] > 0 && c->level > 0) {
    mf_slice ualo = ikey_user_key(all_lo), uahi = ikey_user_key(all_hi);
    file_meta **expanded0;
    int n0;
    rc = compaction_overlapping_files(v, c->level, &ualo, &uahi, &expanded0, &n0);
    if (rc) return rc;
    uint64_t size0 = total_size(expanded0, n0), size1 = total_size(c->inputs[1], c->num_inputs[1]);
    if (n0 > c->num_inputs[0] && size0 + size1 < 25 * o->target_file_size_base) {
      mf_slice nlo, nhi;
      key_range(expanded0, n0, NULL, 0, &nlo, &nhi);
      mf_slice unlo = ikey_user_key(nlo), unhi = ikey_user_key(nhi);
      file_meta **expanded1;
      int n1;
      rc = compaction_overlapping_files(v, c->output_level, &unlo, &unhi, &expanded1, &n1);
      if (rc) {
        free(expanded0);
        return rc;
      }
      if (n1 == c->num_inputs[1]) {
        free(c->inputs[0]);
        free(c->inputs[1]);
        c->inputs[0] = expanded0;
        c->num_inputs[0] = n0;
        c->inputs[1] = expanded1;
        c->num_inputs[1] = n1;
        expanded0 = NULL;
        key_range(c->inputs[0], n0, c->inputs[1], n1, &all_lo, &all_hi);
        key_range(c->inputs[0], n0, NULL, 0, &lo, &hi);
      } else {
        free(expanded1);
      }
    }
    free(expanded0);
  }

  if (c->output_level + 1 < MF_NUM_LEVELS) {
    mf_slice ualo = ikey_user_key(all_lo), uahi = ikey_user_key(all_hi);
    rc = compaction_overlapping_files(v, c->output_level + 1, &ualo, &uahi, &c->grandparents,
                                      &c->num_grandparents);
    if (rc) return rc;
  }
  /* The next size compaction of this level starts after this one's range. */
  rc = version_edit_set_compact_pointer(&c->edit, c->level, hi);
  for (int which = 0; rc == MAYFLY_OK && which < 2; which++) {
    int level = which ? c->output_level : c->level;
    for (int i = 0; rc == MAYFLY_OK && i < c->num_inputs[which]; i++)
      rc = version_edit_delete_file(&c->edit, level, c->inputs[which][i]->number);
  }
  return rc;
}

static int finish_pick(compaction *c, const struct mayfly_options *o) {
  int rc = MAYFLY_OK;
  if (c->level == 0 && c->num_inputs[0] > 0) {
    /* Every level-0 file overlapping the chosen ones must come along, or an older version
     * of a key could end up below a newer one. */
    mf_slice lo, hi;
    key_range(c->inputs[0], c->num_inputs[0], NULL, 0, &lo, &hi);
    mf_slice ulo = ikey_user_key(lo), uhi = ikey_user_key(hi);
    free(c->inputs[0]);
    c->inputs[0] = NULL;
    rc = compaction_overlapping_files(c->input_version, 0, &ulo, &uhi, &c->inputs[0],
                                      &c->num_inputs[0]);
  }
  if (rc == MAYFLY_OK) rc = setup_other_inputs(c, o);
  return rc;
}

compaction *compaction_pick(version_set *vs, version *v, const struct mayfly_options *o,
                            file_meta *seek_file, int seek_level, int *rc) {
  *rc = MAYFLY_OK;
  double scores[MF_NUM_LEVELS];
  compaction_scores(v, o, scores);
  int best = -1;
  double best_score = 1.0;
  for (int level = 0; level < MF_NUM_LEVELS - 1; level++) {
    if (scores[level] >= best_score) {
      best_score = scores[level];
      best = level;
    }
  }
  compaction *c = NULL;
  file_meta *forced = NULL, **rewrite = NULL;
  int forced_level = 0, *rewrite_levels = NULL, num_rewrite = 0;
  uint64_t gc_file = 0;
  int group_due = 0;
  if (best < 0 || v->num_files[best] == 0) {
    group_due = gc_pick_group(v, o, &gc_file, &rewrite, &rewrite_levels, &num_rewrite);
    if (group_due < 0) {
      *rc = group_due;
      return NULL;
    }
  }
  if (best >= 0 && v->num_files[best] > 0) {
    int reason = best == 0 ? COMPACTION_LEVEL0 : COMPACTION_SIZE;
    c = new_compaction(v, o, best, output_level_for(v, o, best), reason);
    if (!c) goto oom;
    c->inputs[0] = malloc(sizeof(file_meta *));
    if (!c->inputs[0]) goto oom;
    mf_slice pointer = version_set_compact_pointer(vs, best);
    file_meta *pick = v->files[best][0];
    if (pointer.len > 0) {
      for (int i = 0; i < v->num_files[best]; i++) {
        if (ikey_compare(mf_buf_slice(&v->files[best][i]->largest), pointer) > 0) {
          pick = v->files[best][i];
          break;
        }
      }
    }
    c->inputs[0][0] = pick;
    c->num_inputs[0] = 1;
  } else if (group_due) {
    c = new_compaction(v, o, rewrite_levels[0], rewrite_levels[0], COMPACTION_GROUP_GC);
    if (!c) {
      free(rewrite);
      free(rewrite_levels);
      goto oom;
    }
    c->gc_file = gc_file;
    c->rewrite = rewrite;
    c->rewrite_levels = rewrite_levels;
    c->num_rewrite = num_rewrite;
    for (int i = 0; *rc == MAYFLY_OK && i < num_rewrite; i++)
      *rc = version_edit_delete_file(&c->edit, rewrite_levels[i], rewrite[i]->number);
    if (*rc) {
      compaction_free(c);
      return NULL;
    }
    return c;
  } else if (gc_pick_forced(v, o, &forced, &forced_level)) {
    int out_level = forced_level == 0 ? output_level_for(v, o, 0) : forced_level;
    c = new_compaction(v, o, forced_level, out_level, COMPACTION_FORCED_BLOB_GC);
    if (!c) goto oom;
    c->inputs[0] = malloc(sizeof(file_meta *));
    if (!c->inputs[0]) goto oom;
    c->inputs[0][0] = forced;
    c->num_inputs[0] = 1;
    if (forced_level > 0) { /* in place: no other inputs, no pointer update */
      *rc = version_edit_delete_file(&c->edit, forced_level, forced->number);
      if (*rc) {
        compaction_free(c);
        return NULL;
      }
      return c;
    }
  } else if (seek_file && seek_level < MF_NUM_LEVELS - 1) {
    c = new_compaction(v, o, seek_level, output_level_for(v, o, seek_level), COMPACTION_SEEK);
    if (!c) goto oom;
    c->inputs[0] = malloc(sizeof(file_meta *));
    if (!c->inputs[0]) goto oom;
    c->inputs[0][0] = seek_file;
    c->num_inputs[0] = 1;
  } else {
    return NULL;
  }
  if (c->output_level <= c->level) { /* dynamic sizing: a level above the base level */
    c->output_level = c->level + 1;
  }
  *rc = finish_pick(c, o);
  if (*rc) {
    compaction_free(c);
    return NULL;
  }
  return c;
oom:
  compaction_free(c);
  *rc = MF_ERR(MAYFLY_ENOMEM, "out of memory picking a compaction");
  return NULL;
}

compaction *compaction_pick_range(version_set *vs, version *v, const struct mayfly_options *o,
                                  int level, const mf_slice *begin, const mf_slice *end,
                                  int *rc) {
  (void)vs;
  *rc = MAYFLY_OK;
  if (level >= MF_NUM_LEVELS - 1) return NULL;
  file_meta **files;
  int n;
  *rc = compaction_overlapping_files(v, level, begin, end, &files, &n);
  if (*rc || n == 0) {
    free(files);
    return NULL;
  }
  /* Bound one manual step: a level >= 1 is compacted a target file size at a time. */
  if (level > 0) {
    uint64_t sum = 0;
    for (int i = 0; i < n; i++) {
      sum += files[i]->file_size;
      if (sum >= o->target_file_size_base) {
        n = i + 1;
        break;
      }
    }
  }
  int out_level = output_level_for(v, o, level);
  if (out_level <= level) out_level = level + 1;
  compaction *c = new_compaction(v, o, level, out_level, COMPACTION_MANUAL);
  if (!c) {
    free(files);
    *rc = MF_ERR(MAYFLY_ENOMEM, "out of memory");
    return NULL;
  }
  c->inputs[0] = files;
  c->num_inputs[0] = n;
  *rc = setup_other_inputs(c, o);
  if (*rc) {
    compaction_free(c);
    return NULL;
  }
  return c;
}

int compaction_is_trivial_move(const compaction *c) {
  if (c->reason == COMPACTION_MANUAL || c->reason == COMPACTION_FORCED_BLOB_GC ||
      c->reason == COMPACTION_GROUP_GC)
    return 0;
  return c->num_inputs[0] == 1 && c->num_inputs[1] == 0 &&
         total_size(c->grandparents, c->num_grandparents) <= c->max_grandparent_overlap;
}

int compaction_is_base_level_for_key(compaction *c, mf_slice user_key) {
  const version *v = c->input_version;
  for (int level = c->output_level + 1; level < MF_NUM_LEVELS; level++) {
    file_meta **files = v->files[level];
    while (c->level_ptrs[level] < v->num_files[level]) {
      file_meta *f = files[c->level_ptrs[level]];
      if (mf_slice_compare(user_key, largest_ukey(f)) <= 0) {
        if (mf_slice_compare(user_key, smallest_ukey(f)) >= 0) return 0;
        break;
      }
      c->level_ptrs[level]++;
    }
  }
  return 1;
}

int compaction_should_stop_before(compaction *c, mf_slice ikey) {
  while (c->grandparent_index < c->num_grandparents &&
         ikey_compare(ikey, mf_buf_slice(&c->grandparents[c->grandparent_index]->largest)) > 0) {
    if (c->seen_key) c->overlapped_bytes += c->grandparents[c->grandparent_index]->file_size;
    c->grandparent_index++;
  }
  c->seen_key = 1;
  if (c->overlapped_bytes > c->max_grandparent_overlap) {
    c->overlapped_bytes = 0;
    return 1;
  }
  return 0;
}

uint64_t compaction_input_bytes(const compaction *c, int which) {
  return total_size(c->inputs[which], c->num_inputs[which]);
}

int compaction_pick_flush_level(const version *v, const struct mayfly_options *o,
                                mf_slice smallest, mf_slice largest, int max_level) {
  int level = 0;
  file_meta **files;
  int n;
  if (compaction_overlapping_files(v, 0, &smallest, &largest, &files, &n)) return 0;
  free(files);
  if (n > 0) return 0;
  while (level < max_level && level + 1 < MF_NUM_LEVELS) {
    if (compaction_overlapping_files(v, level + 1, &smallest, &largest, &files, &n)) break;
    free(files);
    if (n > 0) break;
    if (level + 2 < MF_NUM_LEVELS) {
      if (compaction_overlapping_files(v, level + 2, &smallest, &largest, &files, &n)) break;
      uint64_t overlap = total_size(files, n);
      free(files);
      if (overlap > 10 * o->target_file_size_base) break;
    }
    level++;
  }
  return level;
}
