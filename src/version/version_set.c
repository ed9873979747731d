/* Versions, the version set, the MANIFEST and CURRENT.
 *
 * Objects and their lives
 * - file_meta: one per table file per "era": created when an edit adds the file, shared by
 *   every version that contains it (refs counts them), freed with the last such version.
 * - blob_meta: one per blob file per state of its counts (garbage, linked tables): created
 *   when an edit adds the file, shared by every following version for as long as those counts
 *   do not change, and replaced by a copy in the first version where they do (copy-on-write:
 *   a version never sees its blob_metas change). The rule the builder uses: a blob_meta whose
 *   only reference is the builder's own is private to it and may be changed in place (always
 *   so during recovery); any other is copied first.
 * - version: built by applying an edit to the current version (build_version), immutable
 *   from then on. The set holds one reference on the current version; readers hold more.
 *   Every installed version sits on the set's live list until its last reference goes, so
 *   version_set_for_each_live_file can tell which table and blob files must not be deleted.
 * - MANIFEST writer: opened by the first log_and_apply after create/recover (a fresh file
 *   starting with a snapshot of the whole state), kept open for later edits, and closed on
 *   any failure so the next edit starts a fresh, consistent file again.
 *
 * Invariants of a version
 * - Level 0 is ordered by file number (older first); its files may overlap.
 * - Levels >= 1 are ordered by smallest key and do not overlap: each file's largest key is
 *   below the next file's smallest key (internal-key order). Checked on every build, in all
 *   build types, because a violation would make reads silently wrong.
 * - A file number appears at most once in a version.
 * - Blob files are sorted by number, each appears once, garbage_count <= total_count and
 *   garbage_bytes <= total_bytes, num_linked_ssts counts exactly the tables of the version
 *   whose oldest_blob_file is that blob file, every nonzero oldest_blob_file names a blob
 *   file of the version, and no blob file is obsolete (fully garbage and unlinked).
 *
 * Applying an edit, on top of a copy of the base version's lists: table deletions, blob file
 * additions, table additions (whose oldest_blob_file must name a blob file now present),
 * blob garbage (added to the counts), then obsolete blob files are dropped. Linked counts are
 * kept up to date as tables come and go, so every edit of a replayed MANIFEST drops exactly
 * what log_and_apply dropped when it was first applied, and are recomputed from scratch when
 * the version is finished. A deletion of a file that is not there, an addition of a number
 * already there, garbage for an absent blob file or beyond its totals, or a dangling
 * oldest_blob_file is rejected: during recovery that is corruption, in log_and_apply a
 * caller bug (EINVAL). Nothing is ever merged silently.
 *
 * The MANIFEST format (records are encoded version edits): docs/format/manifest.md. CURRENT
 * holds the MANIFEST's file name followed by a newline, nothing else. */
#include "version/version_set.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mayfly.h"
#include "table/two_level_iter.h"
#include "util/coding.h"
#include "util/error.h"
#include "util/ikey.h"
#include "util/zalloc.h"
#include "version/filename.h"
#include "wal/wal_reader.h"
#include "wal/wal_writer.h"

struct version_set {
  mf_env *env;
  char *dbname;
  int use_fsync; /* the open-time option, copied: the options struct changes under the db mutex */
  table_cache *tc;
  uint64_t next_file_number;
  uint64_t manifest_file_number;
  uint64_t last_sequence;
  uint64_t log_number;
  version live; /* dummy head of the circular list of live versions */
  version *current;
  mf_buf compact_pointers[MF_NUM_LEVELS]; /* empty: none recorded */
  mf_wfile *manifest_file;  /* NULL until the first log_and_apply */
  wal_writer *manifest_log; /* NULL exactly when manifest_file is */
  uint64_t bytes_written;
  int applying; /* a log_and_apply is in progress (debug check of the serialization rule) */
  int apply_wrote; /* the last log_and_apply got as far as writing the MANIFEST */
};

/* ---- file metadata ---- */

static file_meta *file_meta_copy(const file_meta *src) {
  file_meta *f = calloc(1, sizeof *f);
  if (!f) return NULL;
  f->number = src->number;
  f->file_size = src->file_size;
  f->num_entries = src->num_entries;
  f->smallest_seq = src->smallest_seq;
  f->largest_seq = src->largest_seq;
  f->oldest_blob_file = src->oldest_blob_file;
  f->newest_blob_file = src->newest_blob_file;
  /* One seek costs about as much as compacting 16 KiB (LevelDB's estimate), so a file may be
   * sought this many times without a hit before compacting it is cheaper. */
  uint64_t seeks = src->file_size / 16384;
  f->allowed_seeks = seeks < 100 ? 100 : seeks > INT32_MAX ? INT32_MAX : (int)seeks;
  if (mf_buf_set(&f->smallest, src->smallest.data, src->smallest.len) != MAYFLY_OK ||
      mf_buf_set(&f->largest, src->largest.data, src->largest.len) != MAYFLY_OK) {
    mf_buf_free(&f->smallest);
    mf_buf_free(&f->largest);
    free(f);
    return NULL;
  }
  return f;
}

static void file_meta_unref(file_meta *f) {
  assert(f->refs > 0);
  if (--f->refs == 0) {
    mf_buf_free(&f->smallest);
    mf_buf_free(&f->largest);
    free(f);
  }
}

static void blob_meta_unref(blob_meta *b) {
  assert(b->refs > 0);
  if (--b->refs == 0) free(b);
}

static mf_slice file_smallest(const file_meta *f) { return mf_buf_slice(&f->smallest); }
static mf_slice file_largest(const file_meta *f) { return mf_buf_slice(&f->largest); }

/* ---- versions ---- */

static version *version_new(version_set *vs) {
  version *v = calloc(1, sizeof *v);
  if (v) v->vset = vs;
  return v;
}

static void version_free(version *v) {
  if (v->next) { /* installed: unlink from the live list */
    v->prev->next = v->next;
    v->next->prev = v->prev;
  }
  for (int level = 0; level < MF_NUM_LEVELS; level++) {
    for (int i = 0; i < v->num_files[level]; i++) file_meta_unref(v->files[level][i]);
    free(v->files[level]);
  }
  for (int i = 0; i < v->num_blobs; i++) blob_meta_unref(v->blobs[i]);
  free(v->blobs);
  free(v);
}

void version_ref(version *v) { v->refs++; }

int version_unref(version *v) {
  assert(v->refs > 0);
  if (--v->refs > 0) return 0;
  version_free(v);
  return 1;
}

uint64_t version_level_bytes(const version *v, int level) {
  uint64_t total = 0;
  for (int i = 0; i < v->num_files[level]; i++) total += v->files[level][i]->file_size;
  return total;
}

const blob_meta *version_find_blob(const version *v, uint64_t number) {
  int lo = 0, hi = v->num_blobs;
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2;
    if (v->blobs[mid]->number < number)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < v->num_blobs && v->blobs[lo]->number == number ? v->blobs[lo] : NULL;
}

uint64_t version_blob_total_bytes(const version *v) {
  uint64_t total = 0;
  for (int i = 0; i < v->num_blobs; i++) total += v->blobs[i]->total_bytes;
  return total;
}

uint64_t version_blob_garbage_bytes(const version *v) {
  uint64_t total = 0;
  for (int i = 0; i < v->num_blobs; i++) total += v->blobs[i]->garbage_bytes;
  return total;
}

int version_linked_ssts(const version *v, uint64_t blob_number, file_meta ***files,
                        int **levels, int *n) {
  *files = NULL;
  *levels = NULL;
  *n = 0;
  const blob_meta *b = version_find_blob(v, blob_number);
  if (!b || b->num_linked_ssts == 0) return MAYFLY_OK;
  file_meta **f = malloc((size_t)b->num_linked_ssts * sizeof *f);
  int *l = malloc((size_t)b->num_linked_ssts * sizeof *l);
  if (!f || !l) {
    free(f);
    free(l);
    return MF_ERR(MAYFLY_ENOMEM, "version: out of memory listing the tables of blob file %"
                  PRIu64, blob_number);
  }
  int count = 0;
  for (int level = 0; level < MF_NUM_LEVELS; level++) {
    for (int i = 0; i < v->num_files[level]; i++) {
      if (v->files[level][i]->oldest_blob_file != blob_number) continue;
      assert(count < b->num_linked_ssts);
      f[count] = v->files[level][i];
      l[count++] = level;
    }
  }
  assert(count == b->num_linked_ssts);
  *files = f;
  *levels = l;
  *n = count;
  return MAYFLY_OK;
}

/* Index of the first file whose largest key is >= ikey (num_files when none). */
static int find_file(file_meta *const *files, int num_files, mf_slice ikey) {
  int lo = 0, hi = num_files;
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2;
    if (ikey_compare(file_largest(files[mid]), ikey) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* ---- building versions from edits ---- */

/* A blob file in a builder: its meta and how many of the builder's tables link to it. */
typedef struct builder_blob {
  blob_meta *meta; /* one reference held; changed in place only when private (refs == 1) */
  int linked;      /* tables in the builder whose oldest_blob_file is meta->number */
} builder_blob;

/* Per-level growable lists of file_metas, each holding one reference, and the blob files
 * sorted by number. */
typedef struct builder {
  file_meta **files[MF_NUM_LEVELS];
  int num[MF_NUM_LEVELS], cap[MF_NUM_LEVELS];
  builder_blob *blobs;
  int num_blobs, cap_blobs;
} builder;

static void builder_free(builder *b) {
  for (int level = 0; level < MF_NUM_LEVELS; level++) {
    for (int i = 0; i < b->num[level]; i++) file_meta_unref(b->files[level][i]);
    free(b->files[level]);
  }
  for (int i = 0; i < b->num_blobs; i++) blob_meta_unref(b->blobs[i].meta);
  free(b->blobs);
  memset(b, 0, sizeof *b);
}

/* Index of the first blob file numbered >= number (num_blobs when none). */
static int builder_blob_lower_bound(const builder *b, uint64_t number) {
  int lo = 0, hi = b->num_blobs;
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2;
    if (b->blobs[mid].meta->number < number)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* The builder's entry for blob file number, or NULL. */
static builder_blob *builder_find_blob(builder *b, uint64_t number) {
  int i = builder_blob_lower_bound(b, number);
  return i < b->num_blobs && b->blobs[i].meta->number == number ? &b->blobs[i] : NULL;
}

/* Inserts meta (whose reference the builder takes over) at index i, keeping the order. */
static int builder_insert_blob(builder *b, int i, blob_meta *meta, int linked) {
  if (b->num_blobs == b->cap_blobs) {
    int cap = b->cap_blobs ? b->cap_blobs * 2 : 8;
    builder_blob *p = realloc(b->blobs, (size_t)cap * sizeof *p);
    if (!p) return MF_ERR(MAYFLY_ENOMEM, "version: out of memory building a version");
    b->blobs = p;
    b->cap_blobs = cap;
  }
  memmove(&b->blobs[i + 1], &b->blobs[i], (size_t)(b->num_blobs - i) * sizeof *b->blobs);
  b->blobs[i].meta = meta;
  b->blobs[i].linked = linked;
  b->num_blobs++;
  return MAYFLY_OK;
}

/* Copy-on-write: bb's meta, first replaced by a private copy if a version shares it. NULL
 * when out of memory (bb unchanged). */
static blob_meta *builder_blob_writable(builder_blob *bb) {
  if (bb->meta->refs == 1) return bb->meta;
  blob_meta *copy = malloc(sizeof *copy);
  if (!copy) return NULL;
  *copy = *bb->meta;
  copy->refs = 1;
  blob_meta_unref(bb->meta);
  bb->meta = copy;
  return copy;
}

/* A blob file the version no longer needs: every record garbage, no table linked to it. */
static int blob_obsolete(const builder_blob *bb) {
  return bb->linked == 0 && bb->meta->garbage_count >= bb->meta->total_count;
}

static int builder_push(builder *b, int level, file_meta *f) {
  if (b->num[level] == b->cap[level]) {
    int cap = b->cap[level] ? b->cap[level] * 2 : 8;
    file_meta **p = realloc(b->files[level], (size_t)cap * sizeof *p);
    if (!p) return MF_ERR(MAYFLY_ENOMEM, "version: out of memory building a version");
    b->files[level] = p;
    b->cap[level] = cap;
  }
  f->refs++;
  b->files[level][b->num[level]++] = f;
  return MAYFLY_OK;
}

static int builder_init(builder *b, const version *base) {
  memset(b, 0, sizeof *b);
  int rc = MAYFLY_OK;
  for (int level = 0; rc == MAYFLY_OK && level < MF_NUM_LEVELS; level++)
    for (int i = 0; rc == MAYFLY_OK && i < base->num_files[level]; i++)
      rc = builder_push(b, level, base->files[level][i]);
  for (int i = 0; rc == MAYFLY_OK && i < base->num_blobs; i++) {
    blob_meta *meta = base->blobs[i];
    rc = builder_insert_blob(b, b->num_blobs, meta, meta->num_linked_ssts);
    if (rc == MAYFLY_OK) meta->refs++;
  }
  if (rc) builder_free(b);
  return rc;
}

/* A table with this oldest_blob_file leaves the builder. */
static void builder_unlink(builder *b, uint64_t oldest_blob_file) {
  if (oldest_blob_file == 0) return;
  builder_blob *bb = builder_find_blob(b, oldest_blob_file);
  /* A version never holds a dangling link, so the blob file is there. */
  assert(bb && bb->linked > 0);
  if (bb && bb->linked > 0) bb->linked--;
}

static int builder_add_blob_files(builder *b, const version_edit *e, int err_code,
                                  const char *where) {
  for (int i = 0; i < e->num_blob_files; i++) {
    const version_edit_blob_file *bf = &e->blob_files[i];
    int at = builder_blob_lower_bound(b, bf->number);
    if (at < b->num_blobs && b->blobs[at].meta->number == bf->number)
      return MF_ERR(err_code, "%s: edit adds blob file %" PRIu64 " which is already present",
                    where, bf->number);
    blob_meta *meta = calloc(1, sizeof *meta);
    if (!meta) return MF_ERR(MAYFLY_ENOMEM, "version: out of memory building a version");
    meta->refs = 1;
    meta->number = bf->number;
    meta->total_count = bf->total_count;
    meta->total_bytes = bf->total_bytes;
    meta->checksum = bf->checksum;
    int rc = builder_insert_blob(b, at, meta, 0);
    if (rc) {
      free(meta);
      return rc;
    }
  }
  return MAYFLY_OK;
}

static int builder_add_blob_garbage(builder *b, const version_edit *e, int err_code,
                                    const char *where) {
  for (int i = 0; i < e->num_blob_garbage; i++) {
    const version_edit_blob_garbage *g = &e->blob_garbage[i];
    builder_blob *bb = builder_find_blob(b, g->number);
    if (!bb)
      return MF_ERR(err_code, "%s: edit records garbage for blob file %" PRIu64
                    " which is not present", where, g->number);
    const blob_meta *m = bb->meta;
    /* Written as subtractions from the totals so that no sum can overflow. */
    if (g->garbage_count > m->total_count - m->garbage_count ||
        g->garbage_bytes > m->total_bytes - m->garbage_bytes)
      return MF_ERR(err_code, "%s: garbage for blob file %" PRIu64 " (%" PRIu64 " + %" PRIu64
                    " records, %" PRIu64 " + %" PRIu64 " bytes) exceeds its %" PRIu64
                    " records, %" PRIu64 " bytes", where, g->number, m->garbage_count,
                    g->garbage_count, m->garbage_bytes, g->garbage_bytes, m->total_count,
                    m->total_bytes);
    blob_meta *w = builder_blob_writable(bb);
    if (!w) return MF_ERR(MAYFLY_ENOMEM, "version: out of memory building a version");
    w->garbage_count += g->garbage_count;
    w->garbage_bytes += g->garbage_bytes;
  }
  return MAYFLY_OK;
}

static void builder_drop_obsolete_blobs(builder *b) {
  int kept = 0;
  for (int i = 0; i < b->num_blobs; i++) {
    if (blob_obsolete(&b->blobs[i]))
      blob_meta_unref(b->blobs[i].meta);
    else
      b->blobs[kept++] = b->blobs[i];
  }
  b->num_blobs = kept;
}

/* Applies e's file changes. Inconsistencies are reported as err_code with `where` (the
 * MANIFEST and record offset during recovery) in the message. On error b is partly updated;
 * the caller frees it. */
static int builder_apply(builder *b, const version_edit *e, int err_code, const char *where) {
  for (int i = 0; i < e->num_deleted_files; i++) {
    int level = e->deleted_files[i].level;
    uint64_t number = e->deleted_files[i].number;
    int j = 0;
    while (j < b->num[level] && b->files[level][j]->number != number) j++;
    if (j == b->num[level])
      return MF_ERR(err_code, "%s: edit deletes file %" PRIu64 " which is not at level %d",
                    where, number, level);
    builder_unlink(b, b->files[level][j]->oldest_blob_file);
    file_meta_unref(b->files[level][j]);
    /* Order is restored when the version is finished, so a plain move will do. */
    b->files[level][j] = b->files[level][--b->num[level]];
  }
  int rc = builder_add_blob_files(b, e, err_code, where);
  if (rc) return rc;
  for (int i = 0; i < e->num_new_files; i++) {
    const version_edit_new_file *nf = &e->new_files[i];
    uint64_t blob_number = nf->meta.oldest_blob_file;
    builder_blob *bb = blob_number ? builder_find_blob(b, blob_number) : NULL;
    if (blob_number && !bb)
      return MF_ERR(err_code, "%s: edit adds table %" PRIu64 " referencing blob file %" PRIu64
                    " which is not present", where, nf->meta.number, blob_number);
    file_meta *f = file_meta_copy(&nf->meta);
    if (!f) return MF_ERR(MAYFLY_ENOMEM, "version: out of memory building a version");
    rc = builder_push(b, nf->level, f);
    if (rc) {
      f->refs = 1;
      file_meta_unref(f);
      return rc;
    }
    if (bb) bb->linked++;
  }
  rc = builder_add_blob_garbage(b, e, err_code, where);
  if (rc) return rc;
  builder_drop_obsolete_blobs(b);
  return MAYFLY_OK;
}

static int by_number(const void *a, const void *b) {
  uint64_t x = (*(file_meta *const *)a)->number, y = (*(file_meta *const *)b)->number;
  return x < y ? -1 : x > y;
}

static int by_smallest_key(const void *a, const void *b) {
  const file_meta *x = *(file_meta *const *)a, *y = *(file_meta *const *)b;
  int r = ikey_compare(file_smallest(x), file_smallest(y));
  return r ? r : by_number(a, b);
}

/* Recounts every blob file's linked tables from the tables themselves and stores the counts
 * in the blob_metas (copying any a version shares whose count changed). The counts the
 * builder kept while applying edits must agree: they decided which blob files were dropped. */
static int builder_finish_blobs(builder *b, int err_code, const char *where) {
  if (b->num_blobs == 0) {
    for (int level = 0; level < MF_NUM_LEVELS; level++)
      for (int i = 0; i < b->num[level]; i++)
        if (b->files[level][i]->oldest_blob_file != 0)
          return MF_ERR(err_code, "%s: table %" PRIu64 " references blob file %" PRIu64
                        " which is not present", where, b->files[level][i]->number,
                        b->files[level][i]->oldest_blob_file);
    return MAYFLY_OK;
  }
  int *counts = calloc((size_t)b->num_blobs, sizeof *counts);
  if (!counts) return MF_ERR(MAYFLY_ENOMEM, "version: out of memory building a version");
  int rc = MAYFLY_OK;
  for (int level = 0; rc == MAYFLY_OK && level < MF_NUM_LEVELS; level++) {
    for (int i = 0; rc == MAYFLY_OK && i < b->num[level]; i++) {
      const file_meta *f = b->files[level][i];
      if (f->oldest_blob_file == 0) continue;
      builder_blob *bb = builder_find_blob(b, f->oldest_blob_file);
      if (bb)
        counts[bb - b->blobs]++;
      else
        rc = MF_ERR(err_code, "%s: table %" PRIu64 " references blob file %" PRIu64
                    " which is not present", where, f->number, f->oldest_blob_file);
    }
  }
  for (int i = 0; rc == MAYFLY_OK && i < b->num_blobs; i++) {
    builder_blob *bb = &b->blobs[i];
    assert(counts[i] == bb->linked && "linked-table counts kept while applying edits");
    bb->linked = counts[i];
    if (bb->meta->num_linked_ssts == counts[i]) continue;
    blob_meta *w = builder_blob_writable(bb);
    if (w)
      w->num_linked_ssts = counts[i];
    else
      rc = MF_ERR(MAYFLY_ENOMEM, "version: out of memory building a version");
  }
  free(counts);
  return rc;
}

/* Sorts the lists, checks the invariants listed at the top of the file, and moves the lists
 * into the new version *out (b is left empty either way). */
static int builder_finish(builder *b, version_set *vs, int err_code, const char *where,
                          version **out) {
  int rc = MAYFLY_OK;
  size_t total = 0;
  for (int level = 0; level < MF_NUM_LEVELS; level++) {
    total += (size_t)b->num[level];
    if (b->num[level] < 2) continue;
    qsort(b->files[level], (size_t)b->num[level], sizeof(file_meta *),
          level == 0 ? by_number : by_smallest_key);
    for (int i = 1; level > 0 && rc == MAYFLY_OK && i < b->num[level]; i++) {
      const file_meta *prev = b->files[level][i - 1], *f = b->files[level][i];
      if (ikey_compare(file_largest(prev), file_smallest(f)) >= 0)
        rc = MF_ERR(err_code, "%s: files %" PRIu64 " and %" PRIu64 " overlap at level %d",
                    where, prev->number, f->number, level);
    }
  }
  /* Duplicate numbers: one sort over all levels, cheaper than a search per added file. */
  file_meta **all = rc == MAYFLY_OK && total > 1 ? malloc(total * sizeof *all) : NULL;
  if (rc == MAYFLY_OK && total > 1 && !all)
    rc = MF_ERR(MAYFLY_ENOMEM, "version: out of memory building a version");
  if (all) {
    size_t n = 0;
    for (int level = 0; level < MF_NUM_LEVELS; level++)
      for (int i = 0; i < b->num[level]; i++) all[n++] = b->files[level][i];
    qsort(all, n, sizeof *all, by_number);
    for (size_t i = 1; rc == MAYFLY_OK && i < n; i++)
      if (all[i]->number == all[i - 1]->number)
        rc = MF_ERR(err_code, "%s: file %" PRIu64 " appears twice", where, all[i]->number);
    free(all);
  }
  if (rc == MAYFLY_OK) rc = builder_finish_blobs(b, err_code, where);
  blob_meta **blobs = NULL;
  if (rc == MAYFLY_OK && b->num_blobs > 0) {
    blobs = malloc((size_t)b->num_blobs * sizeof *blobs);
    if (!blobs) rc = MF_ERR(MAYFLY_ENOMEM, "version: out of memory building a version");
  }
  version *v = rc == MAYFLY_OK ? version_new(vs) : NULL;
  if (rc == MAYFLY_OK && !v) rc = MF_ERR(MAYFLY_ENOMEM, "version: out of memory");
  if (rc != MAYFLY_OK) {
    free(blobs);
    builder_free(b);
    return rc;
  }
  for (int level = 0; level < MF_NUM_LEVELS; level++) {
    v->files[level] = b->files[level];
    v->num_files[level] = b->num[level];
  }
  for (int i = 0; i < b->num_blobs; i++) blobs[i] = b->blobs[i].meta; /* references move */
  v->blobs = blobs;
  v->num_blobs = b->num_blobs;
  free(b->blobs);
  memset(b, 0, sizeof *b);
  *out = v;
  return MAYFLY_OK;
}

/* base + e -> *out (unreferenced, not on the live list). */
static int build_version(version_set *vs, const version *base, const version_edit *e,
                         int err_code, const char *where, version **out) {
  builder b;
  int rc = builder_init(&b, base);
  if (rc == MAYFLY_OK) rc = builder_apply(&b, e, err_code, where);
  if (rc == MAYFLY_OK) return builder_finish(&b, vs, err_code, where, out);
  builder_free(&b);
  return rc;
}

/* Makes v current: the set's reference moves from the old current to v. */
static void install_version(version_set *vs, version *v) {
  v->prev = vs->live.prev;
  v->next = &vs->live;
  v->prev->next = v;
  v->next->prev = v;
  version_ref(v);
  version *old = vs->current;
  vs->current = v;
  if (old) version_unref(old);
}

static int set_compact_pointers(version_set *vs, const version_edit *e) {
  for (int i = 0; i < e->num_compact_pointers; i++) {
    const version_edit_compact_pointer *cp = &e->compact_pointers[i];
    if (mf_buf_set(&vs->compact_pointers[cp->level], cp->ikey.data, cp->ikey.len) != MAYFLY_OK)
      return MF_ERR(MAYFLY_ENOMEM, "version set: out of memory");
  }
  return MAYFLY_OK;
}

/* ---- reads ---- */

typedef struct get_state {
  mf_slice user_key;
  int found;   /* the table had an entry for user_key */
  int corrupt; /* the table handed back a malformed internal key */
  int rc;      /* out of memory copying the value */
  int type;
  uint64_t seq;
  mf_buf *value;
  version_seek *seek; /* may be NULL */
  int files_read;
} get_state;

/* Called by the table with the first entry at or after the lookup key, if there is one: it
 * belongs to user_key only if the user keys match. */
static void save_value(void *arg, mf_slice ikey, mf_slice value) {
  get_state *s = arg;
  mf_parsed_ikey p;
  if (!ikey_parse(ikey, &p)) {
    s->corrupt = 1;
    return;
  }
  if (!mf_slice_equal(p.user_key, s->user_key)) return;
  s->found = 1;
  s->type = p.type;
  s->seq = p.seq;
  if (p.type != MF_TYPE_DELETE && mf_buf_set(s->value, value.data, value.len) != MAYFLY_OK)
    s->rc = MF_ERR(MAYFLY_ENOMEM, "version_get: out of memory copying a value");
}

/* The table cache reports a missing file as ENOTFOUND, which callers of version_get would take
 * for "no such key": a file the version lists but the directory lacks is corruption. */
static int missing_table(uint64_t number) {
  char detail[512];
  snprintf(detail, sizeof detail, "%s", mf_error_message());
  return MF_ERR(MAYFLY_ECORRUPT, "table %06" PRIu64 " is listed in the MANIFEST but missing: %s",
                number, detail);
}

/* Looks user_key up in one file. MAYFLY_OK with s->found telling whether it had an entry. */
static int get_from_file(table_cache *tc, const file_meta *f, int level, mf_slice lookup,
                         get_state *s) {
  /* Seek accounting: a read that had to open more than one file charges the first. */
  if (s->seek && s->files_read++ == 0) {
    s->seek->file = (file_meta *)f;
    s->seek->level = level;
  }
  int rc = table_cache_get(tc, f->number, f->file_size, lookup, save_value, s);
  if (rc == MAYFLY_ENOTFOUND) rc = missing_table(f->number);
  if (rc == MAYFLY_OK && s->corrupt)
    rc = MF_ERR(MAYFLY_ECORRUPT, "table %06" PRIu64 ": malformed internal key", f->number);
  if (rc == MAYFLY_OK) rc = s->rc;
  return rc;
}

static int user_key_in_range(const file_meta *f, mf_slice user_key) {
  return mf_slice_compare(user_key, ikey_user_key(file_smallest(f))) >= 0 &&
         mf_slice_compare(user_key, ikey_user_key(file_largest(f))) <= 0;
}

static int search_levels(version *v, table_cache *tc, mf_slice lookup, get_state *s) {
  int rc = MAYFLY_OK;
  /* Level 0: files overlap, so every file whose range holds the key, newest first. */
  for (int i = v->num_files[0] - 1; i >= 0 && rc == MAYFLY_OK && !s->found; i--) {
    const file_meta *f = v->files[0][i];
    if (user_key_in_range(f, s->user_key)) rc = get_from_file(tc, f, 0, lookup, s);
  }
  /* Deeper levels: at most one candidate per level. The first file whose largest key is at
   * or after the lookup key holds every entry of user_key visible at the snapshot, if the
   * level has any. */
  for (int level = 1; level < MF_NUM_LEVELS && rc == MAYFLY_OK && !s->found; level++) {
    int n = v->num_files[level];
    int i = find_file(v->files[level], n, lookup);
    if (i == n) continue;
    const file_meta *f = v->files[level][i];
    if (mf_slice_compare(s->user_key, ikey_user_key(file_smallest(f))) < 0) continue;
    rc = get_from_file(tc, f, level, lookup, s);
  }
  if (s->seek && s->files_read < 2) s->seek->file = NULL;
  return rc;
}

int version_get(version *v, table_cache *tc, mf_slice user_key, uint64_t snapshot_seq,
                int *type, uint64_t *found_seq, mf_buf *value, version_seek *seek) {
  char stack_key[256];
  mf_buf heap_key = MF_BUF_INIT;
  mf_slice lookup;
  /* The lookup key sorts before every entry of user_key with seq <= snapshot_seq. */
  if (user_key.len + 8 <= sizeof stack_key) {
    if (user_key.len) memcpy(stack_key, user_key.data, user_key.len); /* NULL for "" */
    encode_fixed64(stack_key + user_key.len, ikey_pack(snapshot_seq, MF_TYPE_FOR_SEEK));
    lookup = mf_slice_make(stack_key, user_key.len + 8);
  } else {
    if (ikey_append(&heap_key, user_key, snapshot_seq, MF_TYPE_FOR_SEEK) != MAYFLY_OK)
      return MF_ERR(MAYFLY_ENOMEM, "version_get: out of memory");
    lookup = mf_buf_slice(&heap_key);
  }
  get_state s = {.user_key = user_key, .value = value, .seek = seek};
  if (seek) seek->file = NULL;
  int rc = search_levels(v, tc, lookup, &s);
  mf_buf_free(&heap_key);
  if (rc != MAYFLY_OK) return rc;
  if (!s.found) return MAYFLY_ENOTFOUND; /* a miss, not an error: no message */
  *type = s.type;
  *found_seq = s.seq;
  return MAYFLY_OK;
}

/* ---- iterators ---- */

/* The index half of a level's two-level iterator: walks a sorted file list. key() is a file's
 * largest key, value() its number and size as two fixed64s. */
typedef struct file_list_iter {
  mf_iter base;
  file_meta *const *files;
  int num_files;
  int index; /* num_files when not valid */
  char value[16];
} file_list_iter;

static void file_list_position(file_list_iter *it, int index) {
  it->index = (index < 0 || index >= it->num_files) ? it->num_files : index;
  if (it->index < it->num_files) {
    encode_fixed64(it->value, it->files[it->index]->number);
    encode_fixed64(it->value + 8, it->files[it->index]->file_size);
  }
}

static int fl_valid(const mf_iter *base) {
  const file_list_iter *it = (const file_list_iter *)base;
  return it->index < it->num_files;
}
static void fl_seek_to_first(mf_iter *base) { file_list_position((file_list_iter *)base, 0); }
static void fl_seek_to_last(mf_iter *base) {
  file_list_iter *it = (file_list_iter *)base;
  file_list_position(it, it->num_files - 1);
}
static void fl_seek(mf_iter *base, mf_slice target) {
  file_list_iter *it = (file_list_iter *)base;
  file_list_position(it, find_file(it->files, it->num_files, target));
}
static void fl_next(mf_iter *base) {
  file_list_iter *it = (file_list_iter *)base;
  assert(fl_valid(base));
  file_list_position(it, it->index + 1);
}
static void fl_prev(mf_iter *base) {
  file_list_iter *it = (file_list_iter *)base;
  assert(fl_valid(base));
  file_list_position(it, it->index - 1);
}
static mf_slice fl_key(const mf_iter *base) {
  const file_list_iter *it = (const file_list_iter *)base;
  assert(fl_valid(base));
  return file_largest(it->files[it->index]);
}
static mf_slice fl_value(const mf_iter *base) {
  const file_list_iter *it = (const file_list_iter *)base;
  assert(fl_valid(base));
  return mf_slice_make(it->value, sizeof it->value);
}
static int fl_status(const mf_iter *base) { return MAYFLY_OK; }
static void fl_destroy(mf_iter *base) { free(base); }

static const mf_iter_ops file_list_ops = {
    fl_valid, fl_seek_to_first, fl_seek_to_last, fl_seek, fl_next, fl_prev,
    fl_key,   fl_value,         fl_status,       fl_destroy,
};

/* An iterator over one table; a missing file becomes a corrupt one (see missing_table). */
static mf_iter *open_table(table_cache *tc, uint64_t number, uint64_t file_size) {
  mf_iter *it = table_cache_iter(tc, number, file_size, NULL);
  if (it && iter_status(it) == MAYFLY_ENOTFOUND) {
    iter_destroy(it);
    it = iter_new_empty(missing_table(number));
  }
  return it;
}

/* two_level_iter's block function: opens the table an index entry names. */
static mf_iter *open_table_iter(void *arg, mf_slice index_value) {
  if (index_value.len != 16)
    return iter_new_empty(
        MF_ERR(MAYFLY_ECORRUPT, "version: file list entry of %zu bytes", index_value.len));
  return open_table((table_cache *)arg, decode_fixed64(index_value.data),
                    decode_fixed64(index_value.data + 8));
}

mf_iter *version_concat_iter(table_cache *tc, file_meta *const *files, int num_files) {
  file_list_iter *index = mf_zalloc(sizeof *index);
  if (!index) return NULL;
  iter_init(&index->base, &file_list_ops);
  index->files = files;
  index->num_files = num_files;
  index->index = num_files;
  return two_level_iter_create(&index->base, open_table_iter, tc);
}

int version_num_iterators(const version *v) {
  int n = v->num_files[0];
  for (int level = 1; level < MF_NUM_LEVELS; level++) n += v->num_files[level] > 0;
  return n;
}

int version_add_iterators(version *v, table_cache *tc, mf_iter **out) {
  int n = 0;
  for (int i = v->num_files[0] - 1; i >= 0; i--) {
    const file_meta *f = v->files[0][i];
    if (!(out[n] = open_table(tc, f->number, f->file_size))) goto oom;
    n++;
  }
  for (int level = 1; level < MF_NUM_LEVELS; level++) {
    if (v->num_files[level] == 0) continue;
    if (!(out[n] = version_concat_iter(tc, v->files[level], v->num_files[level]))) goto oom;
    n++;
  }
  assert(n == version_num_iterators(v));
  return MAYFLY_OK;
oom:
  while (n > 0) iter_destroy(out[--n]);
  return MF_ERR(MAYFLY_ENOMEM, "version: out of memory creating iterators");
}

/* ---- the version set ---- */

int version_set_create(mf_env *env, const char *dbname, const struct mayfly_options *opt,
                       table_cache *tc, version_set **out) {
  version_set *vs = calloc(1, sizeof *vs);
  if (!vs) return MF_ERR(MAYFLY_ENOMEM, "version set: out of memory");
  vs->env = env;
  vs->use_fsync = opt ? opt->use_fsync : 0;
  vs->tc = tc;
  vs->next_file_number = 2; /* 1 is left unused: 0 means "none" in several places */
  vs->live.prev = vs->live.next = &vs->live;
  vs->dbname = strdup(dbname);
  version *v = version_new(vs);
  if (!vs->dbname || !v) {
    free(vs->dbname);
    free(v);
    free(vs);
    return MF_ERR(MAYFLY_ENOMEM, "version set: out of memory");
  }
  install_version(vs, v);
  *out = vs;
  return MAYFLY_OK;
}

static void close_manifest(version_set *vs) {
  wal_writer_destroy(vs->manifest_log);
  vs->manifest_log = NULL;
  if (vs->manifest_file) vs->env->close_writable(vs->manifest_file);
  vs->manifest_file = NULL;
}

void version_set_destroy(version_set *vs) {
  if (!vs) return;
  close_manifest(vs);
  version_unref(vs->current);
  assert(vs->live.next == &vs->live && "a version is still referenced");
  for (int level = 0; level < MF_NUM_LEVELS; level++) mf_buf_free(&vs->compact_pointers[level]);
  free(vs->dbname);
  free(vs);
}

version *version_set_current(const version_set *vs) { return vs->current; }
uint64_t version_set_new_file_number(version_set *vs) { return vs->next_file_number++; }
void version_set_mark_file_number_used(version_set *vs, uint64_t number) {
  if (vs->next_file_number <= number) vs->next_file_number = number + 1;
}
uint64_t version_set_next_file_number(const version_set *vs) { return vs->next_file_number; }
uint64_t version_set_last_sequence(const version_set *vs) { return vs->last_sequence; }
void version_set_set_last_sequence(version_set *vs, uint64_t seq) {
  assert(seq >= vs->last_sequence);
  vs->last_sequence = seq;
}
uint64_t version_set_log_number(const version_set *vs) { return vs->log_number; }
uint64_t version_set_manifest_file_number(const version_set *vs) {
  return vs->manifest_file_number;
}
uint64_t version_set_bytes_written(const version_set *vs) { return vs->bytes_written; }
mf_slice version_set_compact_pointer(const version_set *vs, int level) {
  return mf_buf_slice(&vs->compact_pointers[level]);
}
int version_set_num_level_files(const version_set *vs, int level) {
  return vs->current->num_files[level];
}

void version_set_for_each_live_file(const version_set *vs,
                                    void (*fn)(void *arg, int file_type, uint64_t number),
                                    void *arg) {
  for (const version *v = vs->live.next; v != &vs->live; v = v->next) {
    for (int level = 0; level < MF_NUM_LEVELS; level++)
      for (int i = 0; i < v->num_files[level]; i++)
        fn(arg, MF_FILE_TABLE, v->files[level][i]->number);
    for (int i = 0; i < v->num_blobs; i++) fn(arg, MF_FILE_BLOB, v->blobs[i]->number);
  }
}

/* ---- recovery ---- */

/* "dbname/name" (malloc'd) for a bare name read from CURRENT. */
static char *join_path(const char *dbname, const char *name) {
  size_t n = strlen(dbname) + 1 + strlen(name) + 1;
  char *path = malloc(n);
  if (path) snprintf(path, n, "%s/%s", dbname, name);
  return path;
}

/* Parses CURRENT's contents: exactly a MANIFEST file name and a newline. On success *name is
 * the bare name (malloc'd) and *number its number. */
static int parse_current(const char *current_name, const mf_buf *contents, char **name,
                         uint64_t *number) {
  const char *p = contents->data;
  size_t len = contents->len;
  int type = -1;
  if (len < 2 || p[len - 1] != '\n' || memchr(p, '\n', len - 1) || memchr(p, '\0', len - 1) ||
      memchr(p, '/', len - 1))
    return MF_ERR(MAYFLY_ECORRUPT, "%s: malformed contents (%zu bytes)", current_name, len);
  char *bare = strndup(p, len - 1);
  if (!bare) return MF_ERR(MAYFLY_ENOMEM, "out of memory reading %s", current_name);
  if (!filename_parse(bare, &type, number) || type != MF_FILE_MANIFEST) {
    int rc = MF_ERR(MAYFLY_ECORRUPT, "%s: names '%s', which is not a MANIFEST", current_name,
                    bare);
    free(bare);
    return rc;
  }
  *name = bare;
  return MAYFLY_OK;
}

/* What replaying a MANIFEST accumulates. */
typedef struct replay_state {
  builder files;
  version_edit edit; /* the record being decoded */
  int has_log_number, has_next_file_number, has_last_sequence;
  uint64_t log_number, next_file_number, last_sequence;
} replay_state;

static int replay_record(version_set *vs, replay_state *st, const char *manifest_name,
                         uint64_t offset, mf_slice record) {
  char where[512];
  snprintf(where, sizeof where, "%s: record at offset %" PRIu64, manifest_name, offset);
  int rc = version_edit_decode(&st->edit, record);
  if (rc == MAYFLY_ECORRUPT) {
    char detail[512];
    snprintf(detail, sizeof detail, "%s", mf_error_message());
    return MF_ERR(MAYFLY_ECORRUPT, "%s: %s", where, detail);
  }
  if (rc != MAYFLY_OK) return rc;
  const version_edit *e = &st->edit;
  if (e->has_log_number) {
    st->has_log_number = 1;
    st->log_number = e->log_number;
  }
  if (e->has_next_file_number) {
    st->has_next_file_number = 1;
    st->next_file_number = e->next_file_number;
  }
  if (e->has_last_sequence) {
    st->has_last_sequence = 1;
    st->last_sequence = e->last_sequence;
  }
  rc = set_compact_pointers(vs, e);
  if (rc == MAYFLY_OK) rc = builder_apply(&st->files, e, MAYFLY_ECORRUPT, where);
  return rc;
}

/* Reads every record of the open MANIFEST into st. */
static int replay_manifest(version_set *vs, mf_rfile *file, const char *manifest_name,
                           uint64_t manifest_number, replay_state *st) {
  wal_reader *reader;
  int rc = wal_reader_create(vs->env, file, manifest_name, WAL_KIND_MANIFEST, &reader);
  if (rc != MAYFLY_OK) return rc;
  uint64_t header_number = wal_reader_file_number(reader);
  if (header_number != 0 && header_number != manifest_number)
    rc = MF_ERR(MAYFLY_ECORRUPT, "%s: header says file number %" PRIu64, manifest_name,
                header_number);
  while (rc == MAYFLY_OK) {
    mf_slice record;
    rc = wal_reader_read(reader, &record);
    if (rc == MAYFLY_ENOTFOUND) {
      rc = MAYFLY_OK;
      break;
    }
    if (rc == MAYFLY_OK)
      rc = replay_record(vs, st, manifest_name, wal_reader_last_record_offset(reader), record);
  }
  wal_reader_destroy(reader);
  if (rc != MAYFLY_OK) return rc;
  const char *missing = !st->has_next_file_number ? "next file number"
                        : !st->has_last_sequence  ? "last sequence"
                        : !st->has_log_number     ? "log number"
                                                  : NULL;
  if (missing) return MF_ERR(MAYFLY_ECORRUPT, "%s: no %s recorded", manifest_name, missing);
  return MAYFLY_OK;
}

int version_set_recover(version_set *vs) {
  assert(vs->manifest_log == NULL && vs->current->next == &vs->live && "recover runs first");
  char *current_name = filename_current(vs->dbname);
  mf_buf contents = MF_BUF_INIT;
  char *bare = NULL, *manifest_name = NULL;
  uint64_t manifest_number = 0;
  mf_rfile *file = NULL;
  replay_state st;
  memset(&st, 0, sizeof st);
  version_edit_init(&st.edit);

  int rc = current_name ? MAYFLY_OK : MF_ERR(MAYFLY_ENOMEM, "version set: out of memory");
  if (rc == MAYFLY_OK && !vs->env->file_exists(vs->env, current_name))
    rc = MF_ERR(MAYFLY_ENOTFOUND, "%s: not found (no database)", current_name);
  uint64_t current_size = 0;
  if (rc == MAYFLY_OK) rc = vs->env->file_size(vs->env, current_name, &current_size);
  if (rc == MAYFLY_OK && current_size > 4096) /* a MANIFEST name and a newline */
    rc = MF_ERR(MAYFLY_ECORRUPT, "%s: %llu bytes long", current_name,
                (unsigned long long)current_size);
  if (rc == MAYFLY_OK) rc = env_read_file(vs->env, current_name, &contents);
  if (rc == MAYFLY_ENOTFOUND) /* vanished between the two calls: still no database */
    rc = MF_ERR(MAYFLY_ENOTFOUND, "%s: not found (no database)", current_name);
  if (rc == MAYFLY_OK) rc = parse_current(current_name, &contents, &bare, &manifest_number);
  if (rc == MAYFLY_OK && !(manifest_name = join_path(vs->dbname, bare)))
    rc = MF_ERR(MAYFLY_ENOMEM, "version set: out of memory");
  if (rc == MAYFLY_OK) {
    rc = vs->env->open_readable(vs->env, manifest_name, &file);
    if (rc == MAYFLY_ENOTFOUND)
      rc = MF_ERR(MAYFLY_ECORRUPT, "%s names %s, which does not exist", current_name,
                  manifest_name);
  }
  if (rc == MAYFLY_OK) rc = replay_manifest(vs, file, manifest_name, manifest_number, &st);
  if (file) vs->env->close_readable(file);

  version *v = NULL;
  if (rc == MAYFLY_OK) rc = builder_finish(&st.files, vs, MAYFLY_ECORRUPT, manifest_name, &v);
  builder_free(&st.files);
  version_edit_free(&st.edit);
  if (rc == MAYFLY_OK) {
    install_version(vs, v);
    vs->next_file_number = st.next_file_number;
    vs->last_sequence = st.last_sequence;
    vs->log_number = st.log_number;
    vs->manifest_file_number = manifest_number;
    /* Defensive: whatever the counters say, never hand out a number already in use. */
    version_set_mark_file_number_used(vs, manifest_number);
    version_set_mark_file_number_used(vs, st.log_number);
    for (int level = 0; level < MF_NUM_LEVELS; level++)
      for (int i = 0; i < v->num_files[level]; i++)
        version_set_mark_file_number_used(vs, v->files[level][i]->number);
    for (int i = 0; i < v->num_blobs; i++)
      version_set_mark_file_number_used(vs, v->blobs[i]->number);
    /* Likewise no write may get a sequence number a table already holds. */
    for (int level = 0; level < MF_NUM_LEVELS; level++)
      for (int i = 0; i < v->num_files[level]; i++)
        if (v->files[level][i]->largest_seq > vs->last_sequence)
          vs->last_sequence = v->files[level][i]->largest_seq;
    if (vs->next_file_number >= MF_FILE_NUMBER_LIMIT)
      rc = MF_ERR(MAYFLY_ECORRUPT, "%s: file number %llu is out of range", manifest_name,
                  (unsigned long long)vs->next_file_number);
  } else {
    /* Compact pointers may have been set from a partly replayed MANIFEST. */
    for (int level = 0; level < MF_NUM_LEVELS; level++) mf_buf_clear(&vs->compact_pointers[level]);
  }
  free(current_name);
  free(bare);
  free(manifest_name);
  mf_buf_free(&contents);
  return rc;
}

/* ---- logging edits ---- */

/* An edit describing the whole state of the current version: what a new MANIFEST starts
 * with. The counters follow in the edit being applied. Each blob file appears as its
 * addition plus, if it has any, one garbage record holding everything accumulated so far, so
 * replaying the snapshot alone gives the same counts (linked counts follow from the tables). */
static int encode_snapshot(const version_set *vs, mf_buf *out) {
  version_edit e;
  version_edit_init(&e);
  int rc = MAYFLY_OK;
  for (int level = 0; rc == MAYFLY_OK && level < MF_NUM_LEVELS; level++)
    if (vs->compact_pointers[level].len > 0)
      rc = version_edit_set_compact_pointer(&e, level, mf_buf_slice(&vs->compact_pointers[level]));
  const version *v = vs->current;
  for (int level = 0; level < MF_NUM_LEVELS; level++) {
    for (int i = 0; rc == MAYFLY_OK && i < v->num_files[level]; i++) {
      const file_meta *f = v->files[level][i];
      rc = version_edit_add_file(&e, level, f->number, f->file_size, f->num_entries,
                                 file_smallest(f), file_largest(f), f->smallest_seq,
                                 f->largest_seq, f->oldest_blob_file);
      if (rc == MAYFLY_OK) rc = version_edit_set_newest_blob_file(&e, f->newest_blob_file);
    }
  }
  for (int i = 0; rc == MAYFLY_OK && i < v->num_blobs; i++) {
    const blob_meta *b = v->blobs[i];
    rc = version_edit_add_blob_file(&e, b->number, b->total_count, b->total_bytes, b->checksum);
    if (rc == MAYFLY_OK && (b->garbage_count || b->garbage_bytes))
      rc = version_edit_add_blob_garbage(&e, b->number, b->garbage_count, b->garbage_bytes);
  }
  if (rc == MAYFLY_OK) rc = version_edit_encode(&e, out);
  version_edit_free(&e);
  return rc;
}

/* Creates MANIFEST-<number> holding snapshot and record, syncs it and points CURRENT at it.
 * Runs without the db mutex. On success vs->manifest_file/log are the open file and writer. */
static int start_manifest(version_set *vs, uint64_t number, mf_slice snapshot, mf_slice record,
                          uint64_t *written) {
  mf_env *env = vs->env;
  char *name = filename_manifest(vs->dbname, number);
  char *current_name = filename_current(vs->dbname);
  if (!name || !current_name) {
    free(name);
    free(current_name);
    return MF_ERR(MAYFLY_ENOMEM, "version set: out of memory");
  }
  mf_wfile *file = NULL;
  wal_writer *log = NULL;
  uint64_t n = 0;
  int rc = env->new_writable(env, name, &file);
  if (rc == MAYFLY_OK) rc = wal_writer_create(env, file, WAL_KIND_MANIFEST, number, &log, &n);
  *written += n;
  if (rc == MAYFLY_OK) rc = wal_writer_add_record(log, snapshot, &n);
  if (rc == MAYFLY_OK) *written += n;
  if (rc == MAYFLY_OK) rc = wal_writer_add_record(log, record, &n);
  if (rc == MAYFLY_OK) *written += n;
  if (rc == MAYFLY_OK) rc = env->sync(file, vs->use_fsync);
  /* The new name must be durable before CURRENT names it: the OS may write back the CURRENT
   * rename first, and a power cut between the two would leave CURRENT naming nothing. */
  if (rc == MAYFLY_OK) rc = env->sync_dir(env, vs->dbname);
  int current_attempted = 0;
  if (rc == MAYFLY_OK) {
    const char *slash = strrchr(name, '/');
    const char *bare = slash ? slash + 1 : name;
    size_t len = strlen(bare);
    char line[128];
    if (len + 2 > sizeof line) {
      rc = MF_ERR(MAYFLY_EINVAL, "%s: manifest name too long", name);
    } else {
      memcpy(line, bare, len);
      line[len++] = '\n';
      current_attempted = 1;
      rc = env_write_file_atomic(env, current_name, line, len);
      if (rc == MAYFLY_OK) *written += len;
    }
  }
  if (rc == MAYFLY_OK) {
    vs->manifest_file = file;
    vs->manifest_log = log;
  } else {
    wal_writer_destroy(log);
    if (file) env->close_writable(file);
    /* Unreferenced unless the CURRENT update got as far as its rename: then CURRENT may name
     * this file, and removing it would turn a failed write into a database that cannot
     * open. Left in place, it is deleted as obsolete once another MANIFEST takes over. */
    if (file && !current_attempted) env->remove_file(env, name);
  }
  free(name);
  free(current_name);
  return rc;
}

/* Appends record to the open MANIFEST and syncs it. Runs without the db mutex. */
static int append_manifest(version_set *vs, mf_slice record, uint64_t *written) {
  uint64_t n = 0;
  int rc = wal_writer_add_record(vs->manifest_log, record, &n);
  *written += n;
  if (rc == MAYFLY_OK) rc = vs->env->sync(vs->manifest_file, vs->use_fsync);
  if (rc != MAYFLY_OK) close_manifest(vs);
  return rc;
}

int version_set_apply_wrote(const version_set *vs) { return vs->apply_wrote; }

int version_set_log_and_apply(version_set *vs, version_edit *edit, pthread_mutex_t *mu) {
  assert(pthread_mutex_trylock(mu) == EBUSY && "REQUIRES: db mutex held");
  assert(!vs->applying && "log_and_apply calls must be serialized");
  if (edit->has_log_number &&
      (edit->log_number < vs->log_number || edit->log_number >= vs->next_file_number))
    return MF_ERR(MAYFLY_EINVAL,
                  "log_and_apply: log number %" PRIu64 " outside [%" PRIu64 ", %" PRIu64 ")",
                  edit->log_number, vs->log_number, vs->next_file_number);
  vs->applying = 1;
  vs->apply_wrote = 0;
  if (!edit->has_log_number) version_edit_set_log_number(edit, vs->log_number);
  int new_manifest = vs->manifest_log == NULL;
  /* Allocated before next_file_number is recorded, so the edit covers the MANIFEST too. */
  uint64_t manifest_number =
      new_manifest ? version_set_new_file_number(vs) : vs->manifest_file_number;
  version_edit_set_next_file_number(edit, vs->next_file_number);
  version_edit_set_last_sequence(edit, vs->last_sequence);

  version *v = NULL;
  mf_buf snapshot = MF_BUF_INIT, record = MF_BUF_INIT;
  int rc = build_version(vs, vs->current, edit, MAYFLY_EINVAL, "log_and_apply", &v);
  if (rc == MAYFLY_OK && new_manifest) rc = encode_snapshot(vs, &snapshot);
  if (rc == MAYFLY_OK) rc = version_edit_encode(edit, &record);
  uint64_t written = 0;
  if (rc == MAYFLY_OK) {
    /* Only this thread touches the MANIFEST writer (callers serialize), and the current
     * version cannot change meanwhile for the same reason, so the I/O runs unlocked. */
    vs->apply_wrote = 1;
    pthread_mutex_unlock(mu);
    if (new_manifest)
      rc = start_manifest(vs, manifest_number, mf_buf_slice(&snapshot), mf_buf_slice(&record),
                          &written);
    else
      rc = append_manifest(vs, mf_buf_slice(&record), &written);
    pthread_mutex_lock(mu);
  }
  vs->bytes_written += written;
  if (rc == MAYFLY_OK) {
    install_version(vs, v);
    vs->log_number = edit->log_number;
    if (new_manifest) vs->manifest_file_number = manifest_number;
    /* The edit is durable, so the version must be installed whatever happens next. A compact
     * pointer that could not be copied only makes the next compaction of its level start
     * elsewhere, so running out of memory here is not worth failing the call. */
    (void)set_compact_pointers(vs, edit);
  } else if (v) {
    version_free(v);
  }
  mf_buf_free(&snapshot);
  mf_buf_free(&record);
  vs->applying = 0;
  return rc;
}
