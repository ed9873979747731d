/* Hand-built versions for testing blob GC pickers (tests/unit/test_blob_gc.c,
 * test_blob_group.c): blob files and tables described by their metadata only, no files. */
#ifndef MAYFLY_TESTS_FAKE_VERSION_H
#define MAYFLY_TESTS_FAKE_VERSION_H

#include <inttypes.h>
#include <string.h>

#include "version/version_edit.h"
#include "version/version_set.h"

enum { FAKE_MAX_BLOBS = 16, FAKE_MAX_TABLES = 8 };

typedef struct fake_version {
  version v;
  blob_meta metas[FAKE_MAX_BLOBS];
  blob_meta *blob_ptrs[FAKE_MAX_BLOBS];
  file_meta tables[FAKE_MAX_TABLES];
  file_meta *table_ptrs[MF_NUM_LEVELS][FAKE_MAX_TABLES];
  int num_tables;
} fake_version;

/* n blob files numbered 10, 20, ..., each of 1000 bytes in 10 records, no garbage; no
 * tables. */
static inline void fake_init(fake_version *f, int n) {
  assert_true(n <= FAKE_MAX_BLOBS);
  memset(f, 0, sizeof *f);
  f->v.refs = 1;
  for (int i = 0; i < n; i++) {
    f->metas[i].number = (uint64_t)(i + 1) * 10;
    f->metas[i].total_count = 10;
    f->metas[i].total_bytes = 1000;
    f->blob_ptrs[i] = &f->metas[i];
  }
  f->v.blobs = f->blob_ptrs;
  f->v.num_blobs = n;
  for (int l = 0; l < MF_NUM_LEVELS; l++) f->v.files[l] = f->table_ptrs[l];
}

/* Blob file number gets `count` of its 10 records as garbage (100 bytes each). */
static inline void fake_garbage(fake_version *f, uint64_t number, uint64_t count) {
  for (int i = 0; i < f->v.num_blobs; i++) {
    if (f->metas[i].number == number) {
      f->metas[i].garbage_count = count;
      f->metas[i].garbage_bytes = count * 100;
      return;
    }
  }
  fail_msg("no blob file %" PRIu64 " in the fake version", number);
}

/* Adds a small table at level whose blob references span files oldest..newest (0, 0: none;
 * newest 0 with oldest set: only oldest is known, as the age policy needs). The table is
 * linked to file oldest, whose num_linked_ssts counts it, as in a real version. */
static inline file_meta *fake_table(fake_version *f, int level, uint64_t number,
                                    uint64_t oldest, uint64_t newest) {
  assert_true(f->num_tables < FAKE_MAX_TABLES);
  file_meta *t = &f->tables[f->num_tables++];
  t->refs = 1;
  t->number = number;
  t->file_size = 1000;
  t->num_entries = 10;
  t->oldest_blob_file = oldest;
  t->newest_blob_file = newest;
  for (int i = 0; i < f->v.num_blobs; i++)
    if (f->metas[i].number == oldest) f->metas[i].num_linked_ssts++;
  f->v.files[level][f->v.num_files[level]++] = t;
  return t;
}

#endif
