/* Fuzz target: version_edit_decode (version/version_edit.h) on arbitrary bytes.
 *
 * MANIFEST records are decoded at every open; a decoder that accepts something its encoder
 * would not write, or loses a field, silently changes which files are live. Properties:
 *   - decode returns MAYFLY_OK, MAYFLY_ECORRUPT or MAYFLY_ENOMEM; on error the edit is empty;
 *   - an accepted edit satisfies the documented invariants (levels < MF_NUM_LEVELS, keys at
 *     least 8 bytes, smallest <= largest by ikey_compare, smallest_seq <= largest_seq, blob
 *     file numbers never 0, blob files with at least one record);
 *   - encode(decode(input)) decodes again, and encoding that gives identical bytes (the
 *     encoding is a fixed point after one round), with every field equal;
 *   - decoding into an edit that already holds fields replaces them (same encoding);
 *   - version_edit_debug_string works on any accepted edit. */
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "util/ikey.h"
#include "version/version_edit.h"

static int empty_edit(const version_edit *e) {
  return !e->has_log_number && !e->has_next_file_number && !e->has_last_sequence &&
         e->num_compact_pointers == 0 && e->num_deleted_files == 0 && e->num_new_files == 0 &&
         e->num_blob_files == 0 && e->num_blob_garbage == 0;
}

static int level_ok(int level) { return level >= 0 && level < MF_NUM_LEVELS; }

static void check_invariants(const version_edit *e) {
  for (int i = 0; i < e->num_compact_pointers; i++) {
    FUZZ_CHECK(level_ok(e->compact_pointers[i].level), "compact pointer %d: level %d", i,
               e->compact_pointers[i].level);
    FUZZ_CHECK(e->compact_pointers[i].ikey.len >= 8, "compact pointer %d: short key", i);
  }
  for (int i = 0; i < e->num_deleted_files; i++)
    FUZZ_CHECK(level_ok(e->deleted_files[i].level), "deleted file %d: level %d", i,
               e->deleted_files[i].level);
  for (int i = 0; i < e->num_new_files; i++) {
    const version_edit_new_file *nf = &e->new_files[i];
    const file_meta *m = &nf->meta;
    FUZZ_CHECK(level_ok(nf->level), "new file %d: level %d", i, nf->level);
    FUZZ_CHECK(m->smallest.len >= 8 && m->largest.len >= 8, "new file %d: short key", i);
    FUZZ_CHECK(ikey_compare(mf_buf_slice(&m->smallest), mf_buf_slice(&m->largest)) <= 0,
               "new file %d: smallest > largest", i);
    FUZZ_CHECK(m->smallest_seq <= m->largest_seq, "new file %d: smallest_seq > largest_seq", i);
  }
  for (int i = 0; i < e->num_blob_files; i++)
    FUZZ_CHECK(e->blob_files[i].number != 0 && e->blob_files[i].total_count >= 1,
               "blob file %d: number %llu, %llu records", i,
               (unsigned long long)e->blob_files[i].number,
               (unsigned long long)e->blob_files[i].total_count);
  for (int i = 0; i < e->num_blob_garbage; i++)
    FUZZ_CHECK(e->blob_garbage[i].number != 0, "blob garbage %d: file number 0", i);
}

static int buf_eq(const mf_buf *a, const mf_buf *b) {
  return mf_slice_equal(mf_buf_slice(a), mf_buf_slice(b));
}

static void check_same(const version_edit *a, const version_edit *b) {
  FUZZ_CHECK(a->has_log_number == b->has_log_number &&
                 (!a->has_log_number || a->log_number == b->log_number),
             "log number differs after a round trip");
  FUZZ_CHECK(a->has_next_file_number == b->has_next_file_number &&
                 (!a->has_next_file_number || a->next_file_number == b->next_file_number),
             "next file number differs after a round trip");
  FUZZ_CHECK(a->has_last_sequence == b->has_last_sequence &&
                 (!a->has_last_sequence || a->last_sequence == b->last_sequence),
             "last sequence differs after a round trip");
  FUZZ_CHECK(a->num_compact_pointers == b->num_compact_pointers &&
                 a->num_deleted_files == b->num_deleted_files &&
                 a->num_new_files == b->num_new_files,
             "list lengths differ after a round trip (%d/%d/%d vs %d/%d/%d)",
             a->num_compact_pointers, a->num_deleted_files, a->num_new_files,
             b->num_compact_pointers, b->num_deleted_files, b->num_new_files);
  FUZZ_CHECK(a->num_blob_files == b->num_blob_files && a->num_blob_garbage == b->num_blob_garbage,
             "blob list lengths differ after a round trip (%d/%d vs %d/%d)", a->num_blob_files,
             a->num_blob_garbage, b->num_blob_files, b->num_blob_garbage);
  for (int i = 0; i < a->num_blob_files; i++) {
    const version_edit_blob_file *x = &a->blob_files[i], *y = &b->blob_files[i];
    FUZZ_CHECK(x->number == y->number && x->total_count == y->total_count &&
                   x->total_bytes == y->total_bytes && x->checksum == y->checksum,
               "blob file %d differs", i);
  }
  for (int i = 0; i < a->num_blob_garbage; i++) {
    const version_edit_blob_garbage *x = &a->blob_garbage[i], *y = &b->blob_garbage[i];
    FUZZ_CHECK(x->number == y->number && x->garbage_count == y->garbage_count &&
                   x->garbage_bytes == y->garbage_bytes,
               "blob garbage %d differs", i);
  }
  for (int i = 0; i < a->num_compact_pointers; i++)
    FUZZ_CHECK(a->compact_pointers[i].level == b->compact_pointers[i].level &&
                   buf_eq(&a->compact_pointers[i].ikey, &b->compact_pointers[i].ikey),
               "compact pointer %d differs", i);
  for (int i = 0; i < a->num_deleted_files; i++)
    FUZZ_CHECK(a->deleted_files[i].level == b->deleted_files[i].level &&
                   a->deleted_files[i].number == b->deleted_files[i].number,
               "deleted file %d differs", i);
  for (int i = 0; i < a->num_new_files; i++) {
    const file_meta *x = &a->new_files[i].meta, *y = &b->new_files[i].meta;
    FUZZ_CHECK(a->new_files[i].level == b->new_files[i].level && x->number == y->number &&
                   x->file_size == y->file_size && x->num_entries == y->num_entries &&
                   buf_eq(&x->smallest, &y->smallest) && buf_eq(&x->largest, &y->largest) &&
                   x->smallest_seq == y->smallest_seq && x->largest_seq == y->largest_seq &&
                   x->oldest_blob_file == y->oldest_blob_file,
               "new file %d differs", i);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  version_edit e1, e2;
  mf_buf enc1 = MF_BUF_INIT, enc2 = MF_BUF_INIT, text = MF_BUF_INIT;
  version_edit_init(&e1);
  version_edit_init(&e2);
  int rc = version_edit_decode(&e1, mf_slice_make(data, size));
  if (rc != MAYFLY_OK) {
    FUZZ_CHECK(rc == MAYFLY_ECORRUPT || rc == MAYFLY_ENOMEM, "decode returned %d", rc);
    FUZZ_CHECK(empty_edit(&e1), "a failed decode left fields in the edit");
    goto out;
  }
  check_invariants(&e1);
  if (version_edit_debug_string(&e1, &text) != MAYFLY_OK) goto out;
  if (version_edit_encode(&e1, &enc1) != MAYFLY_OK) goto out;
  FUZZ_CHECK(enc1.len <= size, "re-encoding grew the edit from %zu to %zu bytes", size,
             enc1.len);

  rc = version_edit_decode(&e2, mf_buf_slice(&enc1));
  if (FUZZ_OOM_OK(rc)) goto out;
  FUZZ_CHECK(rc == MAYFLY_OK, "the encoder's output does not decode: %d", rc);
  check_same(&e1, &e2);
  if (version_edit_encode(&e2, &enc2) != MAYFLY_OK) goto out;
  FUZZ_CHECK(buf_eq(&enc1, &enc2), "encode(decode(encode(x))) differs from encode(x)");

  /* e2 now holds fields: decoding the input over it must replace them, not add to them. */
  rc = version_edit_decode(&e2, mf_slice_make(data, size));
  if (FUZZ_OOM_OK(rc)) goto out;
  FUZZ_CHECK(rc == MAYFLY_OK, "second decode of an accepted input failed: %d", rc);
  check_same(&e1, &e2);
out:
  version_edit_free(&e1);
  version_edit_free(&e2);
  mf_buf_free(&enc1);
  mf_buf_free(&enc2);
  mf_buf_free(&text);
  return 0;
}
