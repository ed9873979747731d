/* Where flushes and compactions write: tables, and blob files for separated values.
 *
 * A db_output takes the entries a job keeps, in internal-key order, and turns them into
 * table files of one level plus the blob files their large values go to:
 *  - a value of at least min_blob_size (with blob files enabled and the output level at or
 *    below blob_file_starting_level) is appended to the current blob file and the table gets
 *    its blob index under the type MF_TYPE_BLOB_INDEX;
 *  - a blob index whose file is older than the GC cutoff is relocated: its value is read and
 *    written again (to a new blob file, or inline when it no longer qualifies);
 *  - any other blob index is carried over unchanged and counted as outflow of its file.
 * Each table records the oldest blob file it references, which links it to that file for the
 * age policy's forced GC.
 *
 * Crash story: db_output_finish syncs every table and blob file, then the directory, before
 * the caller logs the MANIFEST edit that makes them live. Until that edit is installed, their
 * numbers are in db->pending_outputs so obsolete-file deletion leaves them alone; a crash
 * before it leaves unreferenced files that the next open deletes. */
#include <stdlib.h>

#include "blob/blob_cache.h"
#include "blob/blob_format.h"
#include "blob/blob_writer.h"
#include "db/db_impl.h"
#include "version/filename.h"

table_options db_table_options(const mayfly_db *db) {
  table_options o;
  o.block_size = db->opt.block_size;
  o.block_restart_interval = db->opt.block_restart_interval;
  o.bloom_bits_per_key = db->opt.bloom_bits_per_key;
  o.compression = db->opt.compression;
  o.compression_level = db->opt.compression_level;
  return o;
}

/* ---- one table ---- */

int db_table_out_open(mayfly_db *db, const table_options *o, uint64_t number, db_table_out *t) {
  memset(t, 0, sizeof *t);
  t->number = number;
  t->smallest_seq = UINT64_MAX;
  t->oldest_blob_file = UINT64_MAX;
  t->newest_blob_file = 0;
  t->name = filename_table(db->dbname, number);
  if (!t->name) return MF_ERR(MAYFLY_ENOMEM, "out of memory");
  int rc = db->env->new_writable(db->env, t->name, &t->file);
  if (rc == MAYFLY_OK) rc = table_builder_create(o, db->env, t->file, t->name, &t->builder);
  if (rc != MAYFLY_OK) { /* leave nothing behind: the caller will not finish t */
    if (t->file) {
      db->env->close_writable(t->file);
      db->env->remove_file(db->env, t->name);
    }
    free(t->name);
    memset(t, 0, sizeof *t);
  }
  return rc;
}

uint64_t db_table_out_size(const db_table_out *t) { return table_builder_file_size(t->builder); }

int db_table_out_add(db_table_out *t, mf_slice ikey, mf_slice value) {
  int rc = table_builder_add(t->builder, ikey, value);
  if (rc) return rc;
  if (table_builder_num_entries(t->builder) == 1)
    rc = mf_buf_set(&t->smallest, ikey.data, ikey.len);
  if (rc == MAYFLY_OK) rc = mf_buf_set(&t->largest, ikey.data, ikey.len);
  uint64_t seq = ikey_trailer(ikey) >> 8;
  if (seq < t->smallest_seq) t->smallest_seq = seq;
  if (seq > t->largest_seq) t->largest_seq = seq;
  return rc ? MF_ERR(MAYFLY_ENOMEM, "out of memory") : MAYFLY_OK;
}

int db_table_out_finish(mayfly_db *db, db_table_out *t, int rc, int level, version_edit *edit,
                        uint64_t *file_size) {
  uint64_t entries = t->builder ? table_builder_num_entries(t->builder) : 0;
  if (rc == MAYFLY_OK && entries > 0) rc = table_builder_finish(t->builder);
  uint64_t size = t->builder ? table_builder_file_size(t->builder) : 0;
  if (rc == MAYFLY_OK && entries > 0) rc = db->env->sync(t->file, db->use_fsync);
  if (t->builder) table_builder_destroy(t->builder);
  if (t->file) {
    int crc = db->env->close_writable(t->file);
    if (rc == MAYFLY_OK) rc = crc;
  }
  db->bytes_written += size;
  if (rc == MAYFLY_OK && entries > 0) {
    uint64_t oldest = t->oldest_blob_file == UINT64_MAX ? 0 : t->oldest_blob_file;
    rc = version_edit_add_file(edit, level, t->number, size, entries, mf_buf_slice(&t->smallest),
                               mf_buf_slice(&t->largest), t->smallest_seq, t->largest_seq,
                               oldest);
    if (rc == MAYFLY_OK) rc = version_edit_set_newest_blob_file(edit, t->newest_blob_file);
    if (file_size) *file_size += size;
    if (rc == MAYFLY_OK && db->trace && !t->trace_deferred)
      trace_file_create(db->trace, t->job_id, t->number, TRACE_FILE_TABLE, level, size, entries,
                        t->smallest_seq, t->largest_seq, mf_buf_slice(&t->smallest),
                        mf_buf_slice(&t->largest));
  } else if (t->name) {
    db->env->remove_file(db->env, t->name);
  }
  free(t->name);
  mf_buf_free(&t->smallest);
  mf_buf_free(&t->largest);
  memset(t, 0, sizeof *t);
  return rc;
}

/* ---- a job's outputs ---- */

static int new_number(db_output *o, uint64_t *number) {
  uint64_t *p = realloc(o->numbers, (size_t)(o->num_numbers + 1) * sizeof *p);
  if (!p) return MF_ERR(MAYFLY_ENOMEM, "out of memory");
  o->numbers = p;
  pthread_mutex_lock(&o->db->mu);
  *number = version_set_new_file_number(o->db->vs);
  int rc = db_pending_add(o->db, *number);
  pthread_mutex_unlock(&o->db->mu);
  if (rc == MAYFLY_OK) o->numbers[o->num_numbers++] = *number;
  return rc;
}

void db_output_init(db_output *o, mayfly_db *db, int level, version_edit *edit, int gc) {
  memset(o, 0, sizeof *o);
  o->db = db;
  o->level = level;
  o->edit = edit;
  o->topt = db_table_options(db);
  const struct mayfly_options *opt = &db->opt;
  o->separate = opt->enable_blob_files && level >= opt->blob_file_starting_level;
  o->min_blob_size = opt->min_blob_size;
  o->blob_file_size = opt->blob_file_size;
  o->blob_compression = opt->blob_compression;
  o->compression_level = opt->compression_level;
  o->gc_cutoff = gc ? gc_age_cutoff_number(version_set_current(db->vs), opt) : 0;
  gc_meter_init(&o->meter);
}

static int blob_finish(db_output *o, int rc) {
  mayfly_db *db = o->db;
  db_blob_out *b = &o->blob;
  if (!b->writer) return rc;
  uint64_t count = blob_writer_count(b->writer);
  if (rc == MAYFLY_OK) rc = blob_writer_finish(b->writer);
  uint64_t size = blob_writer_file_size(b->writer);
  if (rc == MAYFLY_OK) rc = db->env->sync(b->file, db->use_fsync);
  int crc = db->env->close_writable(b->file);
  if (rc == MAYFLY_OK) rc = crc;
  db->bytes_written += size;
  if (rc == MAYFLY_OK && count > 0) {
    rc = version_edit_add_blob_file(o->edit, b->number, count,
                                    blob_writer_record_bytes(b->writer),
                                    blob_writer_file_checksum(b->writer));
    o->blob_bytes += size;
    o->blob_files++;
    if (rc == MAYFLY_OK && db->trace)
      trace_file_create(db->trace, o->job_id, b->number, TRACE_FILE_BLOB, o->level, size, count,
                        0, 0, mf_slice_make("", 0), mf_slice_make("", 0));
  } else {
    db->env->remove_file(db->env, b->name);
  }
  blob_writer_destroy(b->writer);
  free(b->name);
  memset(b, 0, sizeof *b);
  return rc;
}

static int blob_open(db_output *o) {
  mayfly_db *db = o->db;
  db_blob_out *b = &o->blob;
  int rc = new_number(o, &b->number);
  if (rc) return rc;
  b->name = filename_blob(db->dbname, b->number);
  if (!b->name) return MF_ERR(MAYFLY_ENOMEM, "out of memory");
  rc = db->env->new_writable(db->env, b->name, &b->file);
  if (rc == MAYFLY_OK)
    rc = blob_writer_create(db->env, b->file, b->name, b->number, o->blob_compression,
                            o->compression_level, &b->writer);
  if (rc != MAYFLY_OK) { /* leave nothing behind: blob_finish skips a blob without writer */
    if (b->file) {
      db->env->close_writable(b->file);
      db->env->remove_file(db->env, b->name);
    }
    free(b->name);
    memset(b, 0, sizeof *b);
  }
  return rc;
}

/* Writes value to the current blob file (the owner's, when shared) and its index into
 * o->index_buf. */
/* Writes user_key and value to the blob file (a new record), or, when record.data is not
 * NULL, copies record (a stored record of another blob file, compressed with compression) as
 * it is; *bi and o->index_buf get the new blob index. */
static int separate_value(db_output *o, mf_slice user_key, mf_slice value, mf_slice record,
                          int compression, blob_index *bi) {
  db_output *b = o->blob_owner ? o->blob_owner : o;
  int rc = MAYFLY_OK;
  if (!b->blob.writer) rc = blob_open(b);
  if (rc == MAYFLY_OK)
    rc = record.data ? blob_writer_add_record(b->blob.writer, record, compression, bi)
                     : blob_writer_add(b->blob.writer, user_key, value, bi);
  mf_buf_clear(&o->index_buf);
  if (rc == MAYFLY_OK) rc = blob_index_encode(bi, &o->index_buf);
  if (rc == MAYFLY_OK && blob_writer_file_size(b->blob.writer) >= b->blob_file_size)
    rc = blob_finish(b, MAYFLY_OK);
  return rc;
}

static int table_add(db_output *o, mf_slice ikey, mf_slice value, uint64_t blob_file) {
  int rc = MAYFLY_OK;
  if (!o->have_table) {
    uint64_t number;
    rc = new_number(o, &number);
    if (rc == MAYFLY_OK) rc = db_table_out_open(o->db, &o->topt, number, &o->table);
    if (rc) return rc;
    o->have_table = 1;
    o->table.job_id = o->job_id;
    o->table.trace_deferred = o->table_trace_deferred;
  }
  if (blob_file && blob_file < o->table.oldest_blob_file) o->table.oldest_blob_file = blob_file;
  if (blob_file > o->table.newest_blob_file) o->table.newest_blob_file = blob_file;
  return db_table_out_add(&o->table, ikey, value);
}

/* ikey with its type replaced, in o->key_buf. */
static int retype(db_output *o, mf_slice ikey, int type, mf_slice *out) {
  mf_buf_clear(&o->key_buf);
  if (ikey_append(&o->key_buf, ikey_user_key(ikey), ikey_trailer(ikey) >> 8, type))
    return MF_ERR(MAYFLY_ENOMEM, "out of memory");
  *out = mf_buf_slice(&o->key_buf);
  return MAYFLY_OK;
}

int db_output_inflow(db_output *o, mf_slice ikey, mf_slice value) {
  o->inflow_value = NULL;
  if ((ikey_trailer(ikey) & 0xff) != MF_TYPE_BLOB_INDEX) return MAYFLY_OK;
  blob_index *bi = &o->inflow_bi;
  int rc = blob_index_decode(value, bi);
  if (rc) return rc;
  o->inflow_value = value.data;
  o->inflow_len = value.len;
  return gc_meter_inflow(&o->meter, bi->file_number, blob_record_bytes(ikey.len - 8, bi->size));
}

/* Decodes the blob index in value, or takes it from the db_output_inflow of the same entry. */
static int decode_index(db_output *o, mf_slice value, blob_index *bi) {
  if (o->inflow_value && o->inflow_value == value.data && o->inflow_len == value.len) {
    *bi = o->inflow_bi;
    o->inflow_value = NULL;
    return MAYFLY_OK;
  }
  return blob_index_decode(value, bi);
}

int db_output_add(db_output *o, mf_slice ikey, mf_slice value) {
  int type = (int)(ikey_trailer(ikey) & 0xff);
  mf_slice user_key = ikey_user_key(ikey);
  uint64_t relocated_from = 0; /* for the trace: the blob file a relocated value leaves */
  if (type == MF_TYPE_BLOB_INDEX) {
    blob_index bi;
    int rc = decode_index(o, value, &bi);
    if (rc) return rc;
    int relocate = o->gc_only_file ? bi.file_number == o->gc_only_file
                                    : bi.file_number < o->gc_cutoff;
    if (!relocate) {
      rc = gc_meter_outflow(&o->meter, bi.file_number, blob_record_bytes(user_key.len, bi.size));
      return rc ? rc : table_add(o, ikey, value, bi.file_number);
    }
    /* Relocate: the old copy becomes garbage (inflow without outflow). A record that the new
     * file would store the same way (same compression, still large enough to separate) is
     * copied as it is, after its checksums are checked: nothing to decompress, recompress or
     * checksum again. */
    db_output *b = o->blob_owner ? o->blob_owner : o;
    if (o->separate && bi.compression == b->blob_compression && bi.size >= o->min_blob_size &&
        (bi.compression == MF_COMPRESSION_NONE || !o->db->trace)) {
      mf_slice record, blob_key;
      blob_index nbi;
      rc = blob_cache_get_record(o->db->blob_cache, &o->pins, user_key, &bi, 0, &o->value_buf,
                                 &record);
      if (rc == MAYFLY_OK) rc = separate_value(o, user_key, value, record, bi.compression, &nbi);
      if (rc) return rc;
      o->relocated_count++;
      o->relocated_bytes += blob_record_bytes(user_key.len, bi.size);
      if (o->db->trace) /* compression none here: the stored size is the value's */
        trace_blob_write(o->db->trace, o->job_id, ikey, bi.size, bi.file_number, nbi.file_number);
      rc = retype(o, ikey, MF_TYPE_BLOB_INDEX, &blob_key);
      return rc ? rc : table_add(o, blob_key, mf_buf_slice(&o->index_buf), nbi.file_number);
    }
    rc = blob_cache_get(o->db->blob_cache, user_key, &bi, 0, 0, &o->value_buf);
    if (rc) return rc;
    o->relocated_count++;
    o->relocated_bytes += blob_record_bytes(user_key.len, bi.size);
    value = mf_buf_slice(&o->value_buf);
    relocated_from = bi.file_number;
    if (!(o->separate && value.len >= o->min_blob_size)) {
      mf_slice inline_key;
      if (o->db->trace)
        trace_blob_write(o->db->trace, o->job_id, ikey, value.len, relocated_from, 0);
      rc = retype(o, ikey, MF_TYPE_VALUE, &inline_key);
      return rc ? rc : table_add(o, inline_key, value, 0);
    }
    type = MF_TYPE_VALUE; /* fall through: write it to a new blob file */
  }
  if (type == MF_TYPE_VALUE && o->separate && value.len >= o->min_blob_size) {
    blob_index bi;
    mf_slice blob_key;
    int rc = separate_value(o, user_key, value, mf_slice_make(NULL, 0), 0, &bi);
    if (rc == MAYFLY_OK && o->db->trace)
      trace_blob_write(o->db->trace, o->job_id, ikey, value.len, relocated_from, bi.file_number);
    if (rc == MAYFLY_OK) rc = retype(o, ikey, MF_TYPE_BLOB_INDEX, &blob_key);
    return rc ? rc : table_add(o, blob_key, mf_buf_slice(&o->index_buf), bi.file_number);
  }
  return table_add(o, ikey, value, 0);
}

uint64_t db_output_table_size(const db_output *o) {
  return o->have_table ? db_table_out_size(&o->table) : 0;
}

int db_output_cut(db_output *o) {
  if (!o->have_table) return MAYFLY_OK;
  o->have_table = 0;
  return db_table_out_finish(o->db, &o->table, MAYFLY_OK, o->level, o->edit, &o->table_bytes);
}

int db_output_finish(db_output *o, int rc) {
  mayfly_db *db = o->db;
  blob_cache_unpin(db->blob_cache, &o->pins); /* the job reads no more blobs */
  if (o->have_table) {
    o->have_table = 0;
    rc = db_table_out_finish(db, &o->table, rc, o->level, o->edit, &o->table_bytes);
  }
  rc = blob_finish(o, rc);
  if (rc == MAYFLY_OK) rc = gc_meter_to_edit(&o->meter, o->edit, NULL, NULL);
  /* New directory entries must be durable before the MANIFEST names the files. */
  if (rc == MAYFLY_OK && o->num_numbers > 0) rc = db->env->sync_dir(db->env, db->dbname);
  /* Nothing of a failed job is referenced: remove what it finished. (Files that failed while
   * being written were removed by db_table_out_finish / blob_finish already.) */
  if (rc != MAYFLY_OK) db_output_discard(o);
  return rc;
}

int db_install_outputs(mayfly_db *db, version_edit *edit, db_output *outs, int n) {
  int rc = db_log_and_apply(db, edit);
  /* The MANIFEST write never started: nothing names the outputs, and the job will be tried
   * again with new ones. */
  if (rc != MAYFLY_OK && !version_set_apply_wrote(db->vs))
    for (int i = 0; i < n; i++) db_output_discard(&outs[i]);
  return rc;
}

void db_output_discard(db_output *o) {
  for (int e = 0; e < o->edit->num_new_files; e++)
    for (int i = 0; i < o->num_numbers; i++)
      if (o->edit->new_files[e].meta.number == o->numbers[i])
        db_remove_table_file(o->db, o->numbers[i]);
  for (int e = 0; e < o->edit->num_blob_files; e++)
    for (int i = 0; i < o->num_numbers; i++)
      if (o->edit->blob_files[e].number == o->numbers[i])
        db_remove_blob_file(o->db, o->numbers[i]);
}

void db_output_release(db_output *o) {
  for (int i = 0; i < o->num_numbers; i++) db_pending_remove(o->db, o->numbers[i]);
}

void db_output_free(db_output *o) {
  blob_cache_unpin(o->db->blob_cache, &o->pins);
  free(o->numbers);
  gc_meter_free(&o->meter);
  mf_buf_free(&o->key_buf);
  mf_buf_free(&o->value_buf);
  mf_buf_free(&o->index_buf);
}

int db_output_add_memtable(db_output *o, memtable *m, uint64_t oldest_snapshot,
                           uint64_t *dropped) {
  mf_iter *it = memtable_iter_create(m);
  if (!it) return MF_ERR(MAYFLY_ENOMEM, "out of memory");
  int rc = MAYFLY_OK;
  mf_slice prev_key = mf_slice_make("", 0);
  int have_prev = 0;
  uint64_t prev_seq = 0;
  for (iter_seek_to_first(it); rc == MAYFLY_OK && iter_valid(it); iter_next(it)) {
    mf_slice ikey = iter_key(it);
    mf_slice user_key = ikey_user_key(ikey);
    uint64_t seq = ikey_trailer(ikey) >> 8;
    /* Versions of a key come newest first; one hidden by a newer version every reader sees
     * never needs to reach a table. The memtable outlives the loop, so prev_key may point
     * into it. */
    if (have_prev && mf_slice_equal(user_key, prev_key) && prev_seq <= oldest_snapshot) {
      (*dropped)++;
      if (o->db->trace)
        trace_drop(o->db->trace, o->job_id, o->level, TRACE_DROP_MEMTABLE, ikey, iter_value(it));
    } else {
      rc = db_output_add(o, ikey, iter_value(it));
    }
    prev_key = user_key;
    prev_seq = seq;
    have_prev = 1;
  }
  if (rc == MAYFLY_OK) rc = iter_status(it);
  iter_destroy(it);
  return rc;
}
