/* Version edits (table and blob file changes): building, encoding and strictly decoding them.
 * The encoding is documented in version_edit.h and docs/format/manifest.md.
 *
 * The decoder treats its input as hostile: every length is checked against what is left,
 * every level and key is validated before it is stored, and anything it does not understand
 * is corruption. A MANIFEST record has already passed a checksum, so a decode failure means
 * a bug or a newer format, and refusing to open is the only safe answer. */
#include "version/version_edit.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "mayfly.h"
#include "util/coding.h"
#include "util/error.h"
#include "util/ikey.h"

void version_edit_init(version_edit *e) { memset(e, 0, sizeof *e); }

void version_edit_free(version_edit *e) {
  for (int i = 0; i < e->num_compact_pointers; i++) mf_buf_free(&e->compact_pointers[i].ikey);
  for (int i = 0; i < e->num_new_files; i++) {
    mf_buf_free(&e->new_files[i].meta.smallest);
    mf_buf_free(&e->new_files[i].meta.largest);
  }
  free(e->compact_pointers);
  free(e->deleted_files);
  free(e->new_files);
  free(e->blob_files);
  free(e->blob_garbage);
  version_edit_init(e);
}

void version_edit_set_log_number(version_edit *e, uint64_t n) {
  e->has_log_number = 1;
  e->log_number = n;
}

void version_edit_set_next_file_number(version_edit *e, uint64_t n) {
  e->has_next_file_number = 1;
  e->next_file_number = n;
}

void version_edit_set_last_sequence(version_edit *e, uint64_t seq) {
  e->has_last_sequence = 1;
  e->last_sequence = seq;
}

/* Makes room for one more element in a list; 0 on success, -1 when out of memory. */
static int grow(void **items, int *cap, int num, size_t elem_size) {
  if (num < *cap) return 0;
  int new_cap = *cap ? *cap * 2 : 4;
  void *p = realloc(*items, (size_t)new_cap * elem_size);
  if (!p) return -1;
  *items = p;
  *cap = new_cap;
  return 0;
}

static int valid_level(int level) { return level >= 0 && level < MF_NUM_LEVELS; }

int version_edit_set_compact_pointer(version_edit *e, int level, mf_slice ikey) {
  if (!valid_level(level) || ikey.len < 8)
    return MF_ERR(MAYFLY_EINVAL, "version edit: bad compact pointer (level %d, key %zu bytes)",
                  level, ikey.len);
  if (grow((void **)&e->compact_pointers, &e->cap_compact_pointers, e->num_compact_pointers,
           sizeof *e->compact_pointers))
    return MF_ERR(MAYFLY_ENOMEM, "version edit: out of memory");
  version_edit_compact_pointer *cp = &e->compact_pointers[e->num_compact_pointers];
  cp->level = level;
  cp->ikey = (mf_buf)MF_BUF_INIT;
  if (mf_buf_set(&cp->ikey, ikey.data, ikey.len) != MAYFLY_OK)
    return MF_ERR(MAYFLY_ENOMEM, "version edit: out of memory");
  e->num_compact_pointers++;
  return MAYFLY_OK;
}

int version_edit_add_file(version_edit *e, int level, uint64_t number, uint64_t file_size,
                          uint64_t num_entries, mf_slice smallest, mf_slice largest,
                          uint64_t smallest_seq, uint64_t largest_seq,
                          uint64_t oldest_blob_file) {
  if (!valid_level(level) || smallest.len < 8 || largest.len < 8 ||
      ikey_compare(smallest, largest) > 0)
    return MF_ERR(MAYFLY_EINVAL, "version edit: bad new file %" PRIu64 " (level %d)", number,
                  level);
  if (grow((void **)&e->new_files, &e->cap_new_files, e->num_new_files, sizeof *e->new_files))
    return MF_ERR(MAYFLY_ENOMEM, "version edit: out of memory");
  version_edit_new_file *nf = &e->new_files[e->num_new_files];
  memset(nf, 0, sizeof *nf);
  nf->level = level;
  nf->meta.number = number;
  nf->meta.file_size = file_size;
  nf->meta.num_entries = num_entries;
  nf->meta.smallest_seq = smallest_seq;
  nf->meta.largest_seq = largest_seq;
  nf->meta.oldest_blob_file = oldest_blob_file;
  nf->meta.newest_blob_file = oldest_blob_file; /* until version_edit_set_newest_blob_file */
  if (mf_buf_set(&nf->meta.smallest, smallest.data, smallest.len) != MAYFLY_OK ||
      mf_buf_set(&nf->meta.largest, largest.data, largest.len) != MAYFLY_OK) {
    mf_buf_free(&nf->meta.smallest);
    mf_buf_free(&nf->meta.largest);
    return MF_ERR(MAYFLY_ENOMEM, "version edit: out of memory");
  }
  e->num_new_files++;
  return MAYFLY_OK;
}

int version_edit_delete_file(version_edit *e, int level, uint64_t number) {
  if (!valid_level(level))
    return MF_ERR(MAYFLY_EINVAL, "version edit: bad level %d deleting file %" PRIu64, level,
                  number);
  if (grow((void **)&e->deleted_files, &e->cap_deleted_files, e->num_deleted_files,
           sizeof *e->deleted_files))
    return MF_ERR(MAYFLY_ENOMEM, "version edit: out of memory");
  e->deleted_files[e->num_deleted_files].level = level;
  e->deleted_files[e->num_deleted_files].number = number;
  e->num_deleted_files++;
  return MAYFLY_OK;
}

int version_edit_set_newest_blob_file(version_edit *e, uint64_t newest_blob_file) {
  if (e->num_new_files == 0)
    return MF_ERR(MAYFLY_EINVAL, "version edit: no new file to set a blob range on");
  file_meta *f = &e->new_files[e->num_new_files - 1].meta;
  if ((f->oldest_blob_file == 0) != (newest_blob_file == 0) ||
      newest_blob_file < f->oldest_blob_file)
    return MF_ERR(MAYFLY_EINVAL, "version edit: table %" PRIu64 " references blob files "
                  "%" PRIu64 "..%" PRIu64 ", which is not a range", f->number,
                  f->oldest_blob_file, newest_blob_file);
  f->newest_blob_file = newest_blob_file;
  return MAYFLY_OK;
}

int version_edit_add_blob_file(version_edit *e, uint64_t number, uint64_t total_count,
                               uint64_t total_bytes, uint32_t checksum) {
  /* 0 means "no blob file" in a table's oldest_blob_file, and a file without records would
   * be garbage the moment it arrived: neither can be a real addition. */
  if (number == 0 || total_count == 0)
    return MF_ERR(MAYFLY_EINVAL, "version edit: bad blob file %" PRIu64 " (%" PRIu64 " records)",
                  number, total_count);
  if (grow((void **)&e->blob_files, &e->cap_blob_files, e->num_blob_files,
           sizeof *e->blob_files))
    return MF_ERR(MAYFLY_ENOMEM, "version edit: out of memory");
  version_edit_blob_file *bf = &e->blob_files[e->num_blob_files++];
  bf->number = number;
  bf->total_count = total_count;
  bf->total_bytes = total_bytes;
  bf->checksum = checksum;
  return MAYFLY_OK;
}

int version_edit_add_blob_garbage(version_edit *e, uint64_t number, uint64_t garbage_count,
                                  uint64_t garbage_bytes) {
  if (number == 0)
    return MF_ERR(MAYFLY_EINVAL, "version edit: garbage for blob file number 0");
  if (grow((void **)&e->blob_garbage, &e->cap_blob_garbage, e->num_blob_garbage,
           sizeof *e->blob_garbage))
    return MF_ERR(MAYFLY_ENOMEM, "version edit: out of memory");
  version_edit_blob_garbage *g = &e->blob_garbage[e->num_blob_garbage++];
  g->number = number;
  g->garbage_count = garbage_count;
  g->garbage_bytes = garbage_bytes;
  return MAYFLY_OK;
}

/* ---- encoding ---- */

static int put_tagged_u64(mf_buf *out, uint32_t tag, uint64_t v) {
  int rc = put_varint32(out, tag);
  return rc ? rc : put_varint64(out, v);
}

int version_edit_encode(const version_edit *e, mf_buf *out) {
  int rc = MAYFLY_OK;
  if (e->has_log_number) rc = put_tagged_u64(out, VERSION_EDIT_LOG_NUMBER, e->log_number);
  if (!rc && e->has_next_file_number)
    rc = put_tagged_u64(out, VERSION_EDIT_NEXT_FILE_NUMBER, e->next_file_number);
  if (!rc && e->has_last_sequence)
    rc = put_tagged_u64(out, VERSION_EDIT_LAST_SEQUENCE, e->last_sequence);
  for (int i = 0; !rc && i < e->num_compact_pointers; i++) {
    const version_edit_compact_pointer *cp = &e->compact_pointers[i];
    rc = put_varint32(out, VERSION_EDIT_COMPACT_POINTER);
    if (!rc) rc = put_varint32(out, (uint32_t)cp->level);
    if (!rc) rc = put_length_prefixed(out, mf_buf_slice(&cp->ikey));
  }
  for (int i = 0; !rc && i < e->num_deleted_files; i++) {
    rc = put_varint32(out, VERSION_EDIT_DELETED_FILE);
    if (!rc) rc = put_varint32(out, (uint32_t)e->deleted_files[i].level);
    if (!rc) rc = put_varint64(out, e->deleted_files[i].number);
  }
  for (int i = 0; !rc && i < e->num_new_files; i++) {
    const version_edit_new_file *nf = &e->new_files[i];
    const file_meta *f = &nf->meta;
    rc = put_varint32(out, VERSION_EDIT_NEW_FILE);
    if (!rc) rc = put_varint32(out, (uint32_t)nf->level);
    if (!rc) rc = put_varint64(out, f->number);
    if (!rc) rc = put_varint64(out, f->file_size);
    if (!rc) rc = put_varint64(out, f->num_entries);
    if (!rc) rc = put_length_prefixed(out, mf_buf_slice(&f->smallest));
    if (!rc) rc = put_length_prefixed(out, mf_buf_slice(&f->largest));
    if (!rc) rc = put_varint64(out, f->smallest_seq);
    if (!rc) rc = put_varint64(out, f->largest_seq);
    if (!rc) rc = put_varint64(out, f->oldest_blob_file);
    if (!rc) rc = put_varint64(out, f->newest_blob_file);
  }
  for (int i = 0; !rc && i < e->num_blob_files; i++) {
    const version_edit_blob_file *bf = &e->blob_files[i];
    rc = put_varint32(out, VERSION_EDIT_BLOB_FILE);
    if (!rc) rc = put_varint64(out, bf->number);
    if (!rc) rc = put_varint64(out, bf->total_count);
    if (!rc) rc = put_varint64(out, bf->total_bytes);
    /* fixed: a checksum is uniformly distributed, so a varint would cost 5 bytes, not 4 */
    if (!rc) rc = put_fixed32(out, bf->checksum);
  }
  for (int i = 0; !rc && i < e->num_blob_garbage; i++) {
    const version_edit_blob_garbage *g = &e->blob_garbage[i];
    rc = put_varint32(out, VERSION_EDIT_BLOB_GARBAGE);
    if (!rc) rc = put_varint64(out, g->number);
    if (!rc) rc = put_varint64(out, g->garbage_count);
    if (!rc) rc = put_varint64(out, g->garbage_bytes);
  }
  return rc ? MF_ERR(MAYFLY_ENOMEM, "version edit: out of memory encoding") : MAYFLY_OK;
}

/* ---- decoding ---- */

static int get_level(mf_slice *in, int *level) {
  uint32_t v;
  if (!get_varint32(in, &v) || v >= MF_NUM_LEVELS) return 0;
  *level = (int)v;
  return 1;
}

/* A length-prefixed internal key: well formed (ikey_parse) or the field is rejected. */
static int get_ikey(mf_slice *in, mf_slice *ikey) {
  mf_parsed_ikey parsed;
  return get_length_prefixed(in, ikey) && ikey_parse(*ikey, &parsed);
}

static const char *tag_name(uint32_t tag) {
  switch (tag) {
    case VERSION_EDIT_LOG_NUMBER: return "log number";
    case VERSION_EDIT_NEXT_FILE_NUMBER: return "next file number";
    case VERSION_EDIT_LAST_SEQUENCE: return "last sequence";
    case VERSION_EDIT_COMPACT_POINTER: return "compact pointer";
    case VERSION_EDIT_DELETED_FILE: return "deleted file";
    case VERSION_EDIT_NEW_FILE: return "new file";
    case VERSION_EDIT_BLOB_FILE: return "blob file";
    case VERSION_EDIT_BLOB_GARBAGE: return "blob garbage";
    default: return "unknown tag";
  }
}

/* Decodes one field whose tag has been consumed. Returns MAYFLY_OK, MAYFLY_ENOMEM (already
 * reported), or MAYFLY_ECORRUPT (not yet reported: the caller adds the offset). */
static int decode_field(version_edit *e, uint32_t tag, mf_slice *in) {
  uint64_t v;
  switch (tag) {
    case VERSION_EDIT_LOG_NUMBER:
      if (e->has_log_number || !get_varint64(in, &v)) return MAYFLY_ECORRUPT;
      version_edit_set_log_number(e, v);
      return MAYFLY_OK;
    case VERSION_EDIT_NEXT_FILE_NUMBER:
      if (e->has_next_file_number || !get_varint64(in, &v)) return MAYFLY_ECORRUPT;
      version_edit_set_next_file_number(e, v);
      return MAYFLY_OK;
    case VERSION_EDIT_LAST_SEQUENCE:
      if (e->has_last_sequence || !get_varint64(in, &v)) return MAYFLY_ECORRUPT;
      version_edit_set_last_sequence(e, v);
      return MAYFLY_OK;
    case VERSION_EDIT_COMPACT_POINTER: {
      int level;
      mf_slice ikey;
      if (!get_level(in, &level) || !get_ikey(in, &ikey)) return MAYFLY_ECORRUPT;
      return version_edit_set_compact_pointer(e, level, ikey);
    }
    case VERSION_EDIT_DELETED_FILE: {
      int level;
      if (!get_level(in, &level) || !get_varint64(in, &v)) return MAYFLY_ECORRUPT;
      return version_edit_delete_file(e, level, v);
    }
    case VERSION_EDIT_NEW_FILE: {
      int level;
      uint64_t number, file_size, num_entries, smallest_seq, largest_seq, oldest_blob_file;
      uint64_t newest_blob_file;
      mf_slice smallest, largest;
      if (!get_level(in, &level) || !get_varint64(in, &number) ||
          !get_varint64(in, &file_size) || !get_varint64(in, &num_entries) ||
          !get_ikey(in, &smallest) || !get_ikey(in, &largest) ||
          !get_varint64(in, &smallest_seq) || !get_varint64(in, &largest_seq) ||
          !get_varint64(in, &oldest_blob_file) || !get_varint64(in, &newest_blob_file) ||
          smallest_seq > largest_seq || ikey_compare(smallest, largest) > 0 ||
          (oldest_blob_file == 0) != (newest_blob_file == 0) ||
          newest_blob_file < oldest_blob_file)
        return MAYFLY_ECORRUPT;
      int rc = version_edit_add_file(e, level, number, file_size, num_entries, smallest,
                                     largest, smallest_seq, largest_seq, oldest_blob_file);
      return rc ? rc : version_edit_set_newest_blob_file(e, newest_blob_file);
    }
    case VERSION_EDIT_BLOB_FILE: {
      uint64_t number, total_count, total_bytes;
      uint32_t checksum;
      if (!get_varint64(in, &number) || !get_varint64(in, &total_count) ||
          !get_varint64(in, &total_bytes) || !get_fixed32(in, &checksum) || number == 0 ||
          total_count == 0)
        return MAYFLY_ECORRUPT;
      return version_edit_add_blob_file(e, number, total_count, total_bytes, checksum);
    }
    case VERSION_EDIT_BLOB_GARBAGE: {
      uint64_t number, garbage_count, garbage_bytes;
      if (!get_varint64(in, &number) || !get_varint64(in, &garbage_count) ||
          !get_varint64(in, &garbage_bytes) || number == 0)
        return MAYFLY_ECORRUPT;
      return version_edit_add_blob_garbage(e, number, garbage_count, garbage_bytes);
    }
    default:
      return MAYFLY_ECORRUPT;
  }
}

int version_edit_decode(version_edit *e, mf_slice in) {
  version_edit_free(e);
  const char *start = in.data;
  while (in.len > 0) {
    size_t field_offset = (size_t)(in.data - start);
    uint32_t tag = 0;
    int rc = get_varint32(&in, &tag) ? decode_field(e, tag, &in) : MAYFLY_ECORRUPT;
    if (rc != MAYFLY_OK) {
      version_edit_free(e);
      if (rc == MAYFLY_ECORRUPT)
        rc = MF_ERR(MAYFLY_ECORRUPT, "version edit: bad %s field (tag %" PRIu32
                    ") at record offset %zu", tag_name(tag), tag, field_offset);
      return rc;
    }
  }
  return MAYFLY_OK;
}

/* ---- debugging ---- */

static int append_key(mf_buf *out, mf_slice ikey) {
  mf_parsed_ikey p;
  if (!ikey_parse(ikey, &p)) return mf_buf_append(out, "<bad ikey>", 10);
  int rc = mf_buf_append(out, "'", 1);
  for (size_t i = 0; !rc && i < p.user_key.len; i++) {
    unsigned char c = (unsigned char)p.user_key.data[i];
    char tmp[8];
    int printable = c >= 0x20 && c < 0x7f && c != '\\' && c != '\'';
    int n = printable ? snprintf(tmp, sizeof tmp, "%c", c)
                      : snprintf(tmp, sizeof tmp, "\\x%02x", c);
    rc = mf_buf_append(out, tmp, (size_t)n);
  }
  if (rc) return rc;
  char tmp[64];
  int n = snprintf(tmp, sizeof tmp, "' @ %" PRIu64 " : %d", p.seq, p.type);
  return mf_buf_append(out, tmp, (size_t)n);
}

int version_edit_debug_string(const version_edit *e, mf_buf *out) {
  int rc = MAYFLY_OK;
  if (e->has_log_number) rc = mf_buf_appendf(out, "log_number: %" PRIu64 "\n", e->log_number);
  if (!rc && e->has_next_file_number)
    rc = mf_buf_appendf(out, "next_file_number: %" PRIu64 "\n", e->next_file_number);
  if (!rc && e->has_last_sequence)
    rc = mf_buf_appendf(out, "last_sequence: %" PRIu64 "\n", e->last_sequence);
  for (int i = 0; !rc && i < e->num_compact_pointers; i++) {
    rc = mf_buf_appendf(out, "compact_pointer: L%d ", e->compact_pointers[i].level);
    if (!rc) rc = append_key(out, mf_buf_slice(&e->compact_pointers[i].ikey));
    if (!rc) rc = mf_buf_append(out, "\n", 1);
  }
  for (int i = 0; !rc && i < e->num_deleted_files; i++)
    rc = mf_buf_appendf(out, "deleted_file: L%d #%" PRIu64 "\n",
                     e->deleted_files[i].level, e->deleted_files[i].number);
  for (int i = 0; !rc && i < e->num_new_files; i++) {
    const file_meta *f = &e->new_files[i].meta;
    rc = mf_buf_appendf(out, "new_file: L%d #%" PRIu64, e->new_files[i].level,
                     f->number);
    if (!rc)
      rc = mf_buf_appendf(out, " size %" PRIu64 " entries %" PRIu64, f->file_size, f->num_entries);
    if (!rc)
      rc = mf_buf_appendf(out, " seq [%" PRIu64 ", %" PRIu64 "] ", f->smallest_seq,
                       f->largest_seq);
    if (!rc) rc = append_key(out, mf_buf_slice(&f->smallest));
    if (!rc) rc = mf_buf_append(out, " .. ", 4);
    if (!rc) rc = append_key(out, mf_buf_slice(&f->largest));
    if (!rc && f->oldest_blob_file)
      rc = mf_buf_appendf(out, " blobs #%" PRIu64 "..#%" PRIu64, f->oldest_blob_file,
                       f->newest_blob_file);
    if (!rc) rc = mf_buf_append(out, "\n", 1);
  }
  for (int i = 0; !rc && i < e->num_blob_files; i++) {
    const version_edit_blob_file *bf = &e->blob_files[i];
    rc = mf_buf_appendf(out, "blob_file: #%" PRIu64 " records %" PRIu64 " bytes %" PRIu64
                     " checksum 0x%08" PRIx32 "\n",
                     bf->number, bf->total_count, bf->total_bytes, bf->checksum);
  }
  for (int i = 0; !rc && i < e->num_blob_garbage; i++) {
    const version_edit_blob_garbage *g = &e->blob_garbage[i];
    rc = mf_buf_appendf(out, "blob_garbage: #%" PRIu64 " records %" PRIu64 " bytes %" PRIu64 "\n",
                     g->number, g->garbage_count, g->garbage_bytes);
  }
  return rc ? MF_ERR(MAYFLY_ENOMEM, "version edit: out of memory") : MAYFLY_OK;
}
