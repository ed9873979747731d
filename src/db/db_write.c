/* The write path: group commit over one WAL and one memtable. See db_impl.h for the rules. */
#include <stdint.h>
#include <stdlib.h>

#include "db/db_impl.h"

struct db_writer {
  const struct mayfly_batch *batch; /* NULL: only make room (used by flush) */
  unsigned flags;
  int force_switch;
  int done;
  int rc;
  pthread_cond_t cv;
  db_writer *next;
};

/* Groups are capped so that one small write behind a huge one does not wait long. */
#define MAX_GROUP_BYTES (1u << 20)
/* Prepared versions the leader's array keeps room for between groups. */
#define PREPARED_KEEP 4096

typedef struct prepare_state {
  memtable *mem;
  memtable_prepared *out;
  size_t n, cap;
} prepare_state;

static int prepare_one(void *arg, uint64_t seq, int type, mf_slice key, mf_slice value) {
  prepare_state *st = arg;
  if (st->n == st->cap) return MF_ERR(MAYFLY_ECORRUPT, "batch holds more records than its count");
  return memtable_prepare(st->mem, seq, type, key, value, &st->out[st->n++]);
}

size_t db_memtable_filter_bytes(const mayfly_db *db) {
  return (size_t)((double)db->opt.write_buffer_size * db->opt.memtable_bloom_size_ratio);
}

/* 1/64 of the write buffer, within [4 KiB, 256 KiB]. The block size decides which entries
 * share blocks instead of getting a malloc each (up to an eighth of a block: 32 KiB for the
 * default 64 MiB buffer, 2.5 KiB for a 1.3 MB one) and how much memory the partly used
 * current block of each arena holds. It does not make the memtable's size less exact: the
 * switch to a new memtable counts the bytes handed out, not the blocks
 * (memtable_data_usage). */
size_t db_memtable_arena_block(const mayfly_db *db) {
  size_t block = (size_t)(db->opt.write_buffer_size / 64);
  return block < 4096 ? 4096 : block > (256 << 10) ? (256 << 10) : block;
}

/* Switches to a new memtable and WAL. REQUIRES: mu held (released meanwhile), caller is the
 * leader writer.
 *
 * The file work (syncing the old WAL, creating the new one and syncing its directory entry)
 * runs with mu released: it can take milliseconds, and readers and background jobs need mu
 * for a moment each. Only the leader writes the WAL or switches memtables, and the other
 * writers wait in the queue behind it, so nothing changes the WAL meanwhile; the new number
 * is above the version's log number, so obsolete-file deletion leaves the new file alone. */
static int switch_memtable(mayfly_db *db) {
  uint64_t number = version_set_new_file_number(db->vs);
  size_t arena_block = db_memtable_arena_block(db);
  size_t filter_bytes = db_memtable_filter_bytes(db);
  pthread_mutex_unlock(&db->mu);
  memtable *fresh = NULL;
  db_new_wal_files files = {0};
  int sync_failed = 0;
  int rc = memtable_create(arena_block, filter_bytes, &fresh);
  if (rc) rc = MF_ERR(rc, "out of memory creating a memtable");
  if (rc == MAYFLY_OK && db->wal_dirty && db->wal_file) {
    /* Sync the old WAL: a later MAYFLY_SYNC write syncs only the new one, and it must not
     * survive a crash that loses earlier writes (a crash loses a suffix, never a middle). */
    rc = db->env->sync(db->wal_file, db->use_fsync);
    if (rc == MAYFLY_OK) db->wal_dirty = 0;
    sync_failed = rc != MAYFLY_OK;
  }
  if (rc == MAYFLY_OK) rc = db_open_wal(db, number, &files);
  pthread_mutex_lock(&db->mu);
  if (rc) {
    if (fresh) memtable_unref(fresh);
    /* After a failed sync the kernel may have dropped the WAL's dirty pages and marked them
     * clean, so a retry could report success for writes that are gone: stop instead. The
     * same holds for the directory, whose other new entries the failed sync covered. */
    if (sync_failed) db_set_bg_error(db, rc, "syncing the write-ahead log");
    else if (files.dir_sync_failed) db_set_bg_error(db, rc, "syncing the database directory");
    return rc;
  }
  db_install_wal(db, &files);
  db->imm[db->num_imm] = db->mem;
  db->imm_wal_number[db->num_imm] = db->mem_wal_number;
  db->imm_unlogged[db->num_imm] = db->mem_unlogged;
  db->num_imm++;
  db->mem = fresh;
  db->mem_unlogged = 0;
  db->mem_wal_number = number;
  db_schedule_work(db);
  return MAYFLY_OK;
}

/* Waits until there is room for a write in db->mem: applies the slowdown and stop
 * triggers and the immutable-memtable limit. REQUIRES: mu held, caller is the leader;
 * releases mu while it waits or switches memtables. */
static int make_room(mayfly_db *db, int force) {
  int allow_delay = !force;
  for (;;) {
    if (db->bg_error) return db_closed_error(db);
    int l0 = version_set_num_level_files(db->vs, 0);
    if (allow_delay && l0 >= db->opt.level0_slowdown_writes_trigger) {
      /* Give compaction a little CPU instead of stopping writes later for a long time. */
      pthread_mutex_unlock(&db->mu);
      uint64_t t0 = db->env->now_micros(db->env);
      db->env->sleep_micros(db->env, 1000);
      uint64_t t1 = db->env->now_micros(db->env);
      pthread_mutex_lock(&db->mu);
      db->stall_micros += t1 - t0;
      allow_delay = 0;
      continue;
    }
    if (!force && memtable_data_usage(db->mem) <= db->opt.write_buffer_size) return MAYFLY_OK;
    if (force && memtable_num_entries(db->mem) == 0) return MAYFLY_OK;
    int limit = db->opt.max_write_buffer_number - 1;
    if (limit > MF_MAX_IMM - 1) limit = MF_MAX_IMM - 1;
    if (db->num_imm >= limit || l0 >= db->opt.level0_stop_writes_trigger) {
      uint64_t t0 = db->env->now_micros(db->env);
      db_schedule_work(db);
      pthread_cond_wait(&db->bg_cv, &db->mu);
      db->stall_micros += db->env->now_micros(db->env) - t0;
      continue;
    }
    int rc = switch_memtable(db);
    if (rc) return rc;
    force = 0;
  }
}

/* Merges the batches of the writers after the leader into db->group. Returns the last
 * writer in the group. REQUIRES: mu held. */
static db_writer *build_group(mayfly_db *db, const struct mayfly_batch **out) {
  db_writer *first = db->writers_head, *last = first;
  *out = first->batch;
  size_t size = first->batch->rep.len;
  int merged = 0;
  for (db_writer *w = first->next; w; w = w->next) {
    /* A sync write must not ride with a leader that will not sync; NO_WAL must match. */
    if ((w->flags & MAYFLY_SYNC) && !(first->flags & MAYFLY_SYNC)) break;
    if ((w->flags & MAYFLY_NO_WAL) != (first->flags & MAYFLY_NO_WAL)) break;
    if (!w->batch || w->force_switch) break;
    size += w->batch->rep.len;
    if (size > MAX_GROUP_BYTES) break;
    if (!merged) {
      batch_clear(&db->group);
      if (batch_append(&db->group, first->batch)) break;
      merged = 1;
    }
    if (batch_append(&db->group, w->batch)) break;
    last = w;
  }
  if (merged) *out = &db->group;
  return last;
}

/* Writes the group to the WAL and the memtable. Every version is first copied into the
 * memtable's memory (not yet visible), so that running out of memory fails the write before
 * anything was logged; *logged is set once the WAL or the memtable may hold part of the
 * group, after which a failure is a background error. REQUIRES: the caller leads the
 * writers (db->mem and db->prepared are its own); mu not held. */
static int apply_group(mayfly_db *db, const struct mayfly_batch *group, unsigned flags,
                       int *logged) {
  *logged = 0;
  size_t count = batch_count(group);
  if (count > db->cap_prepared) {
    if (count > SIZE_MAX / sizeof(memtable_prepared))
      return MF_ERR(MAYFLY_ENOMEM, "a group of %zu writes is too large", count);
    memtable_prepared *p = realloc(db->prepared, count * sizeof *p);
    if (!p) return MF_ERR(MAYFLY_ENOMEM, "out of memory for a group of %zu writes", count);
    db->prepared = p;
    db->cap_prepared = count;
  }
  prepare_state st = {db->mem, db->prepared, 0, count};
  int rc = batch_iterate(mf_buf_slice(&group->rep), prepare_one, &st);
  if (rc) return rc; /* the copies are wasted memtable memory, which is harmless */
  *logged = 1;
  if (!(flags & MAYFLY_NO_WAL)) {
    uint64_t written = 0;
    rc = wal_writer_add_record(db->wal, mf_buf_slice(&group->rep), &written);
    if (rc == MAYFLY_OK) rc = db->env->flush(db->wal_file);
    db->bytes_written += written;
    db->wal_dirty = 1;
    if (rc == MAYFLY_OK && (flags & MAYFLY_SYNC)) {
      rc = db->env->sync(db->wal_file, db->use_fsync);
      if (rc == MAYFLY_OK) db->wal_dirty = 0;
    }
    if (rc) return rc;
  }
  for (size_t i = 0; rc == MAYFLY_OK && i < st.n; i++) rc = memtable_commit(db->mem, &st.out[i]);
  return rc;
}

/* After a group: the prepared array of an unusually large one is not kept (40 bytes a
 * record, for as long as the database is open). */
static void trim_prepared(mayfly_db *db) {
  if (db->cap_prepared <= PREPARED_KEEP) return;
  free(db->prepared);
  db->prepared = NULL;
  db->cap_prepared = 0;
}

static int write_internal(mayfly_db *db, const struct mayfly_batch *batch, unsigned flags,
                          int force_switch) {
  db_writer w = {batch, flags, force_switch, 0, MAYFLY_OK, PTHREAD_COND_INITIALIZER, NULL};
  pthread_mutex_lock(&db->mu);
  if (db->writers_tail) db->writers_tail->next = &w;
  else db->writers_head = &w;
  db->writers_tail = &w;
  while (!w.done && db->writers_head != &w) pthread_cond_wait(&w.cv, &db->mu);
  if (w.done) {
    pthread_mutex_unlock(&db->mu);
    pthread_cond_destroy(&w.cv);
    return w.rc;
  }

  /* This thread leads. */
  int rc = make_room(db, force_switch || batch == NULL);
  db_writer *last = &w;
  if (rc == MAYFLY_OK && batch && batch_count(batch) > 0) {
    const struct mayfly_batch *group;
    last = build_group(db, &group);
    if (group != &db->group) {
      /* A lone batch is the caller's const object: copy it to stamp the sequence number
       * (cheap next to the WAL write). Out of memory here, nothing has been written: the
       * writer gets the error and the database goes on. */
      batch_clear(&db->group);
      rc = batch_append(&db->group, group);
      group = &db->group;
    }
    if (rc == MAYFLY_OK) {
      uint64_t seq = version_set_last_sequence(db->vs) + 1;
      batch_set_seq(&db->group, seq);
      uint32_t count = batch_count(group);
      int was_unlogged = db->mem_unlogged;
      if (flags & MAYFLY_NO_WAL) db->mem_unlogged = 1;
      pthread_mutex_unlock(&db->mu);
      int logged;
      rc = apply_group(db, group, flags, &logged);
      trim_prepared(db);
      pthread_mutex_lock(&db->mu);
      if (rc != MAYFLY_OK && !logged) db->mem_unlogged = was_unlogged;
      if (rc == MAYFLY_OK) {
        version_set_set_last_sequence(db->vs, seq + count - 1);
        if (db->trace) db_trace_batch(db, group);
        db->user_bytes_written += group->user_bytes;
      } else if (logged) {
        /* The WAL may hold part of a record, or the memtable part of a batch: stop. */
        db_set_bg_error(db, rc, "write-ahead log append");
      } /* else nothing was logged or inserted: the group's writers get the error */
    }
  } else if (rc == MAYFLY_OK && batch && (flags & MAYFLY_SYNC) && db->wal_dirty) {
    /* An empty batch written with MAYFLY_SYNC makes every write logged before it durable
     * (older WALs were synced when they were switched out). The leader owns the WAL. */
    pthread_mutex_unlock(&db->mu);
    rc = db->env->sync(db->wal_file, db->use_fsync);
    pthread_mutex_lock(&db->mu);
    if (rc == MAYFLY_OK) db->wal_dirty = 0;
    else db_set_bg_error(db, rc, "syncing the write-ahead log");
  }

  /* Wake the group, then hand leadership on. */
  for (;;) {
    db_writer *ready = db->writers_head;
    db->writers_head = ready->next;
    if (!db->writers_head) db->writers_tail = NULL;
    if (ready != &w) {
      ready->rc = rc;
      ready->done = 1;
      pthread_cond_signal(&ready->cv);
    }
    if (ready == last) break;
  }
  if (db->writers_head) pthread_cond_signal(&db->writers_head->cv);
  pthread_mutex_unlock(&db->mu);
  pthread_cond_destroy(&w.cv);
  return rc;
}

int db_write(mayfly_db *db, const struct mayfly_batch *batch, unsigned flags) {
  return write_internal(db, batch, flags, 0);
}

int db_flush_memtables(mayfly_db *db) {
  int rc = write_internal(db, NULL, 0, 1);
  if (rc) return rc;
  pthread_mutex_lock(&db->mu);
  /* Until the memtables are tables and their WALs are gone (the flush deletes them without
   * db->mu, or leaves them to a purge if another thread is deleting). */
  while ((db->num_imm > 0 || db->purge_pending || db->deleting_files) &&
         db->bg_error == MAYFLY_OK)
    pthread_cond_wait(&db->bg_cv, &db->mu);
  if (db->bg_error) rc = db_closed_error(db);
  pthread_mutex_unlock(&db->mu);
  return rc;
}
