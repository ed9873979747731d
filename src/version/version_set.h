/* Versions and the version set: which table and blob files make up the database, and the
 * MANIFEST that makes that knowledge durable.
 *
 * A version is an immutable snapshot of the file layout: per level, the table files, and the
 * blob files with their garbage counts. Readers
 * (gets, iterators, compactions) reference the version they started with, so files stay
 * alive however the layout changes under them. The version set owns the chain of versions
 * still referenced (the live list) and the current one, and logs every change to the layout
 * as a version edit (version_edit.h) in the MANIFEST. CURRENT names the live MANIFEST.
 * MANIFEST record format: docs/format/manifest.md; its log framing: docs/format/log.md.
 *
 * Locking: the db mutex guards the version set's fields, every refcount (versions, file_metas
 * and blob_metas) and the live list. A version's file lists, and the blob_metas it holds,
 * never change after it is built, so a reader holding a reference may read them without the
 * mutex.
 *
 * Blob files (RocksDB integrated-BlobDB semantics). The MANIFEST records each blob file's
 * addition and, as compactions drop or relocate its records, its garbage (accumulated). Each
 * table records the oldest blob file it references; the tables naming blob file B that way
 * are B's "linked SSTs". B is obsolete once every record in it is garbage
 * (garbage_count >= total_count) AND no table links to it: it is then left out of the new
 * version, and its file may be deleted as soon as no older version still lists it
 * (version_set_for_each_live_file reports blob files too). A blob_meta is immutable once in a
 * version: more garbage or a different linked count makes a new blob_meta for the new
 * version (copy-on-write), so a reader's older version keeps the counts it started with.
 *
 * Crash story: version_set_log_and_apply appends an edit to the MANIFEST and syncs it before
 * the new version becomes current, so anything visible has been made durable. A new MANIFEST
 * holds a full snapshot and is synced before CURRENT is switched to it (atomically, through
 * env_write_file_atomic), so CURRENT always names a complete MANIFEST: after a crash either
 * the old MANIFEST (complete up to its last synced edit) or the new one is used, and a
 * damaged record in the named MANIFEST is corruption, never a crash artefact -- except the
 * torn tail of a record that was being appended when the machine stopped, which the log
 * reader reports as a clean end. */
#ifndef MAYFLY_VERSION_VERSION_SET_H
#define MAYFLY_VERSION_VERSION_SET_H

#include <pthread.h>
#include <stdint.h>

#include "cache/table_cache.h"
#include "db/options.h"
#include "env/env.h"
#include "table/iterator.h"
#include "util/slice.h"
#include "version/version_edit.h"

struct version_set;

/* One blob file as a version sees it. Shared by versions whose view of it is identical. */
typedef struct blob_meta {
  int refs; /* versions sharing it; REQUIRES db mutex */
  uint64_t number, total_count, total_bytes;
  uint32_t checksum;
  uint64_t garbage_count, garbage_bytes; /* accumulated; <= total_count, total_bytes */
  int num_linked_ssts; /* SSTs in this version whose oldest_blob_file == number */
} blob_meta;

typedef struct version {
  struct version_set *vset;
  int refs;                         /* REQUIRES db mutex */
  file_meta **files[MF_NUM_LEVELS]; /* level 0 ordered by file number ascending (newest last);
                                       levels >= 1 sorted by smallest key, non-overlapping */
  int num_files[MF_NUM_LEVELS];
  blob_meta **blobs;                /* sorted by number; none obsolete (see above) */
  int num_blobs;
  struct version *prev, *next;      /* live versions list */
} version;

/* REQUIRES: db mutex held. */
void version_ref(version *v);
/* REQUIRES: db mutex held. Frees v when the last reference goes, releasing its file_metas
 * (a file_meta is freed with its last version). Returns 1 when it freed v, else 0. */
int version_unref(version *v);

/* Finds the newest entry of user_key with seq <= snapshot_seq in v's files: L0 files newest
 * first (every file whose key range holds user_key), then for each level >= 1 the one file
 * whose range may hold it (binary search on largest keys). Stops at the first file holding
 * an entry for the key.
 * Returns MAYFLY_OK with *type (MF_TYPE_VALUE, MF_TYPE_DELETE or MF_TYPE_BLOB_INDEX) and
 * *found_seq filled, and *value set (mf_buf_set) for VALUE and BLOB_INDEX; MAYFLY_ENOTFOUND
 * when no file has an entry (plain return, no error message: a miss is not a failure); or an
 * error from a table (MAYFLY_ECORRUPT, MAYFLY_EIO, ...) or MAYFLY_ENOMEM. A table file the
 * version lists but the directory lacks is MAYFLY_ECORRUPT, never a miss.
 * Does NOT need the db mutex: the caller holds a reference on v. */
/* seek (may be NULL) reports the first file read when the lookup had to read more than one
 * (seek->file NULL otherwise): the file charged for the seek (seek compaction). */
typedef struct version_seek {
  file_meta *file;
  int level;
} version_seek;
int version_get(version *v, table_cache *tc, mf_slice user_key, uint64_t snapshot_seq,
                int *type, uint64_t *found_seq, mf_buf *value, version_seek *seek);

/* One per L0 file plus one per non-empty level >= 1. */
int version_num_iterators(const version *v);

/* Writes exactly version_num_iterators(v) iterators over internal keys to out: one per L0
 * file (newest first) then one concatenating iterator per non-empty level >= 1. The caller
 * owns them (iter_destroy); they pin their tables; the caller keeps v referenced while they
 * live. Returns MAYFLY_OK or MAYFLY_ENOMEM (then nothing is left in out to free). Failures to
 * open a table are not reported here but by that iterator's status() (a missing table file:
 * MAYFLY_ECORRUPT). */
int version_add_iterators(version *v, table_cache *tc, mf_iter **out);

/* A concatenating iterator over num_files table files sorted by key and non-overlapping (a
 * level >= 1, or a compaction's inputs from one): it opens each table only when it gets
 * there. files[] and the file_metas must stay alive (keep their version referenced) while the
 * iterator lives. Caller owns the result (iter_destroy). NULL when out of memory. */
mf_iter *version_concat_iter(table_cache *tc, file_meta *const *files, int num_files);

/* Sum of file sizes at level. */
uint64_t version_level_bytes(const version *v, int level);

/* The queries below need no mutex: the caller holds a reference on v, and what they return
 * (pointers into v) stays valid as long as that reference. */

/* Blob file `number` in v, or NULL when v does not hold it (never added, or obsolete). */
const blob_meta *version_find_blob(const version *v, uint64_t number);
/* Sum of total_bytes / garbage_bytes over v's blob files. */
uint64_t version_blob_total_bytes(const version *v);
uint64_t version_blob_garbage_bytes(const version *v);
/* The tables of v linked to blob file blob_number (oldest_blob_file == blob_number), level 0
 * first, in each level's order. *files and *levels are malloc'd arrays of *n entries owned by
 * the caller (free both; NULL when *n is 0); the file_metas themselves belong to v. A blob
 * file v does not hold has no linked tables (*n = 0). Returns MAYFLY_OK or MAYFLY_ENOMEM. */
int version_linked_ssts(const version *v, uint64_t blob_number, file_meta ***files,
                        int **levels, int *n);

typedef struct version_set version_set;

/* Creates a version set with an empty current version. dbname is copied; env and tc are not
 * owned and must outlive the set (tc may be NULL when no version_get/iterators are used). opt
 * is read here only (use_fsync) and may be NULL: defaults. *out is owned by the caller
 * (version_set_destroy). Returns MAYFLY_OK or MAYFLY_ENOMEM. */
int version_set_create(mf_env *env, const char *dbname, const struct mayfly_options *opt,
                       table_cache *tc, version_set **out);
/* Closes the MANIFEST (no sync needed: every edit was synced) and frees the set.
 * REQUIRES: every version other than current released. NULL is a no-op. */
void version_set_destroy(version_set *vs);

/* Reads CURRENT and replays the MANIFEST it names into the current version.
 * Call at most once, before any version_set_log_and_apply.
 * Returns MAYFLY_OK; MAYFLY_ENOTFOUND when CURRENT is absent (a new database); MAYFLY_ECORRUPT
 * (message names the file, and the offset where one applies) when CURRENT is empty,
 * malformed or names a missing MANIFEST, when a MANIFEST record is damaged or does not
 * decode (a torn tail after the last complete record is a clean end), when an edit deletes a
 * file that is not present or adds one already present, adds a blob file already present,
 * records garbage for a blob file not present or beyond its totals, or adds a table whose
 * oldest_blob_file is not present; when the log number, next file number or last sequence
 * was never recorded; MAYFLY_EIO or MAYFLY_ENOMEM. */
int version_set_recover(version_set *vs);

/* Applies edit to the current version to make a new one, appends the edit to the MANIFEST,
 * syncs it and installs the new version as current.
 * The first call after create/recover (or after a failed call) starts a new MANIFEST, whose
 * number comes from version_set_new_file_number: it holds a snapshot edit of the current
 * state followed by this edit, is synced, and then CURRENT is pointed at it with
 * env_write_file_atomic; the old MANIFEST becomes obsolete.
 * Fills in edit's next_file_number and last_sequence from the set, and its log_number if the
 * edit has none (an edit's log number must not be below the set's).
 * REQUIRES: *mu held; it is released while writing and syncing, then re-acquired.
 * REQUIRES: callers serialize: at most one call in progress at a time (asserted in debug
 * builds). The db runs every flush and compaction install through one thread at a time.
 * Returns MAYFLY_OK, MAYFLY_EINVAL (edit inconsistent with the current version: deleting a
 * file that is not there, adding one that is, overlapping files in a level >= 1, adding a
 * blob file that is there, garbage for a blob file that is not there or more garbage than
 * it has records or bytes, a table whose oldest_blob_file is neither in the current version
 * nor added by the edit), or the
 * write/sync error. On failure the current version is unchanged and the MANIFEST writer is
 * closed, so the next call starts a fresh MANIFEST; the db should treat a failure as a
 * background error (the old MANIFEST may hold the failed edit). */
int version_set_log_and_apply(version_set *vs, version_edit *edit, pthread_mutex_t *mu);
/* Whether the last version_set_log_and_apply got as far as writing the MANIFEST. When it
 * failed before (out of memory building the new version or encoding the edit), nothing was
 * written and nothing changed: the caller may try the same work again. REQUIRES: *mu held. */
int version_set_apply_wrote(const version_set *vs);

/* The current version, not referenced: ref it (under the db mutex) to keep it.
 * REQUIRES: db mutex held. */
version *version_set_current(const version_set *vs);

/* Allocates a file number (for tables, WALs, blob files and MANIFESTs alike).
 * REQUIRES: db mutex held (as for every function below that changes the set). */
uint64_t version_set_new_file_number(version_set *vs);
/* Makes sure number is never handed out again (recovery of files found on disk). */
void version_set_mark_file_number_used(version_set *vs, uint64_t number);
/* The next number version_set_new_file_number would return. */
uint64_t version_set_next_file_number(const version_set *vs);
uint64_t version_set_last_sequence(const version_set *vs);
/* REQUIRES: seq >= version_set_last_sequence(vs). */
void version_set_set_last_sequence(version_set *vs, uint64_t seq);
/* WAL files numbered below this are fully reflected in tables. */
uint64_t version_set_log_number(const version_set *vs);
/* The MANIFEST CURRENT names (0 before recover or the first log_and_apply). */
uint64_t version_set_manifest_file_number(const version_set *vs);
/* MANIFEST and CURRENT bytes written since create. */
uint64_t version_set_bytes_written(const version_set *vs);
/* Where the next size compaction of level should start: the largest key of the last one
 * (an internal key pointing into the set, valid until the next log_and_apply), or an empty
 * slice when none was recorded. */
mf_slice version_set_compact_pointer(const version_set *vs, int level);

/* Calls fn(arg, file_type, number) for every table file (file_type MF_FILE_TABLE) and every
 * blob file (MF_FILE_BLOB) held by any live version (current and the ones still referenced
 * by readers). A number may be reported more than once.
 * REQUIRES: db mutex held; fn must not change the version set. */
void version_set_for_each_live_file(const version_set *vs,
                                    void (*fn)(void *arg, int file_type, uint64_t number),
                                    void *arg);
/* REQUIRES: db mutex held. */
int version_set_num_level_files(const version_set *vs, int level);

#endif
