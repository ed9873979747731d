/* mayfly: an embeddable LSM-tree key-value store with lifetime-aware blob garbage collection.
 *
 * This is the whole public interface. It implements the project's API contract
 * (shared/api/mayfly.h) and adds: MAYFLY_API (symbol visibility) and the key/value limits.
 *
 * Conventions
 * - Every function that can fail returns int: MAYFLY_OK (0) or a negative MAYFLY_E* code.
 *   mayfly_strerror(rc) names the code; mayfly_errmsg(db) gives the detail of the last
 *   failure on that handle in the calling thread (valid until the next call on it).
 * - Handles are opaque. Keys and values are (pointer, length) pairs of arbitrary bytes.
 *   Keys are ordered bytewise (memcmp, shorter first on a tie).
 * - Memory the library returns to the caller is freed with mayfly_free().
 * - A mayfly_db is safe to use from many threads at once; iterators and batches are not.
 */
#ifndef MAYFLY_H
#define MAYFLY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Symbols of the shared library: everything else in libmayfly is hidden. */
#if defined(__GNUC__)
#define MAYFLY_API __attribute__((visibility("default")))
#else
#define MAYFLY_API
#endif

/* Limits. Larger keys or values are refused with MAYFLY_EINVAL. An empty key is valid. */
#define MAYFLY_MAX_KEY_SIZE (1u << 20)     /* 1 MiB */
#define MAYFLY_MAX_VALUE_SIZE (256u << 20) /* 256 MiB */

#define MAYFLY_OK 0
#define MAYFLY_ENOTFOUND (-1)   /* key absent (not an error for callers that expect it) */
#define MAYFLY_ECORRUPT (-2)    /* checksum mismatch or malformed data on disk */
#define MAYFLY_EIO (-3)         /* the OS refused a read, write, sync, rename ... */
#define MAYFLY_EINVAL (-4)      /* bad argument or option value */
#define MAYFLY_ENOMEM (-5)
#define MAYFLY_EBUSY (-6)       /* e.g. the database is locked by another process */
#define MAYFLY_ENOTSUP (-7)     /* feature not built in, or not allowed at runtime */
#define MAYFLY_ECLOSED (-8)     /* background error made the db read-only; reopen to recover */

typedef struct mayfly_db mayfly_db;
typedef struct mayfly_options mayfly_options;
typedef struct mayfly_batch mayfly_batch;
typedef struct mayfly_iter mayfly_iter;
typedef struct mayfly_snapshot mayfly_snapshot;

MAYFLY_API const char *mayfly_strerror(int rc);
MAYFLY_API const char *mayfly_errmsg(const mayfly_db *db);
MAYFLY_API void mayfly_free(void *p);
MAYFLY_API const char *mayfly_version(void);

/* Options: every option has a name, a type, a default, a range and a doc line in one table
 * (docs/options.md is generated from it). Values are given as text: "67108864", "64MiB",
 * "true", "0.25", "zstd". */
MAYFLY_API int mayfly_options_create(mayfly_options **out);
MAYFLY_API void mayfly_options_destroy(mayfly_options *opt);
MAYFLY_API int mayfly_options_set(mayfly_options *opt, const char *name, const char *value);
MAYFLY_API int mayfly_options_parse(mayfly_options *opt, const char *spec); /* "name=value;name=value" */

/* opt may be NULL for defaults (create_if_missing=true). */
MAYFLY_API int mayfly_open(const char *path, const mayfly_options *opt, mayfly_db **out);
/* Waits for background work to stop, writes out unflushed MAYFLY_NO_WAL writes, frees db.
 * NULL is a no-op. MAYFLY_EBUSY while an iterator or snapshot of db is alive: nothing is
 * closed (mayfly_errmsg(db) says how many; destroy and release them, then close again).
 * MAYFLY_ECLOSED when MAYFLY_NO_WAL writes could not be written out because the database was
 * read-only after an earlier error: they are lost, and db is closed all the same. */
MAYFLY_API int mayfly_close(mayfly_db *db);
MAYFLY_API int mayfly_destroy(const char *path); /* removes the database's files */

/* Writes. flags: 0, or MAYFLY_SYNC (durable against OS crash before returning),
 * or MAYFLY_NO_WAL (lost on crash until flushed). */
#define MAYFLY_SYNC 1u
#define MAYFLY_NO_WAL 2u
MAYFLY_API int mayfly_put(mayfly_db *db, const void *key, size_t klen, const void *val, size_t vlen,
               unsigned flags);
MAYFLY_API int mayfly_delete(mayfly_db *db, const void *key, size_t klen, unsigned flags);

/* A batch holds at most 2^32 - 1 records; a put or delete past that is MAYFLY_EINVAL. */
MAYFLY_API int mayfly_batch_create(mayfly_batch **out);
MAYFLY_API void mayfly_batch_destroy(mayfly_batch *b);
MAYFLY_API int mayfly_batch_put(mayfly_batch *b, const void *key, size_t klen, const void *val,
                     size_t vlen);
MAYFLY_API int mayfly_batch_delete(mayfly_batch *b, const void *key, size_t klen);
MAYFLY_API void mayfly_batch_clear(mayfly_batch *b);
MAYFLY_API size_t mayfly_batch_count(const mayfly_batch *b);
/* Atomic. An empty batch written with MAYFLY_SYNC makes every earlier logged write durable. */
MAYFLY_API int mayfly_write(mayfly_db *db, const mayfly_batch *b, unsigned flags);

/* Reads. snap NULL reads the latest state. On MAYFLY_OK *val is a malloc'd copy (free with
 * mayfly_free); on MAYFLY_ENOTFOUND *val is NULL. */
MAYFLY_API int mayfly_get(mayfly_db *db, const mayfly_snapshot *snap, const void *key, size_t klen,
               void **val, size_t *vlen);
MAYFLY_API int mayfly_snapshot_create(mayfly_db *db, const mayfly_snapshot **out);
/* Releasing a snapshot twice is a caller error, like freeing memory twice. mayfly refuses
 * one that is not a live snapshot of db (logged, mayfly_errmsg(db) says so): another
 * database's, or one released already, unless its memory has meanwhile been reused for a
 * newer snapshot of db (the address then names that one). Reading through a released
 * snapshot is a use of freed memory. */
MAYFLY_API void mayfly_snapshot_release(mayfly_db *db, const mayfly_snapshot *snap);

/* Iterators see a consistent point in time (snap, or the moment of creation). key() and
 * value() pointers stay valid until the iterator moves or is destroyed. value() may read a
 * blob file: it returns NULL on failure and mayfly_iter_status() tells why. */
MAYFLY_API int mayfly_iter_create(mayfly_db *db, const mayfly_snapshot *snap, mayfly_iter **out);
MAYFLY_API void mayfly_iter_destroy(mayfly_iter *it);
MAYFLY_API void mayfly_iter_seek_to_first(mayfly_iter *it);
MAYFLY_API void mayfly_iter_seek_to_last(mayfly_iter *it);
MAYFLY_API void mayfly_iter_seek(mayfly_iter *it, const void *key, size_t klen); /* first >= key */
MAYFLY_API void mayfly_iter_next(mayfly_iter *it);
MAYFLY_API void mayfly_iter_prev(mayfly_iter *it);
MAYFLY_API int mayfly_iter_valid(const mayfly_iter *it);
MAYFLY_API const void *mayfly_iter_key(const mayfly_iter *it, size_t *klen);
MAYFLY_API const void *mayfly_iter_value(mayfly_iter *it, size_t *vlen);
MAYFLY_API int mayfly_iter_status(const mayfly_iter *it);

/* Maintenance and introspection. */
MAYFLY_API int mayfly_flush(mayfly_db *db);     /* write the memtable out; returns when durable */
MAYFLY_API int mayfly_wait_idle(mayfly_db *db); /* until no flush, compaction or GC is pending/running */
MAYFLY_API int mayfly_compact_range(mayfly_db *db, const void *begin, size_t blen, const void *end,
                         size_t elen); /* NULL begin/end = open-ended */
MAYFLY_API int mayfly_set_option(mayfly_db *db, const char *name, const char *value); /* runtime-mutable
                                                                              options only */
/* Properties (malloc'd text, free with mayfly_free): at least
 *   "mayfly.stats"                 per-level table: files, size, score, read/write bytes,
 *                                  write amp, compaction count/time, stall time
 *   "mayfly.blob-stats"            blob files, total/live/garbage bytes, GC relocations
 *   "mayfly.num-files-at-level<N>"
 *   "mayfly.total-sst-size", "mayfly.total-blob-size", "mayfly.blob-garbage-size",
 *   "mayfly.live-data-size"        (estimate: table bytes plus the live bytes of blob files,
 *                                  format overhead included; the -exact form counts)
 *   "mayfly.live-data-size-exact"  live key+value bytes, counted by a scan of the newest
 *                                  version of every key (costs a full read of the database)
 *   "mayfly.space-amplification"   bytes of every file in the database directory (tables,
 *                                  blob files, WALs, MANIFEST, LOG) / live-data-size-exact
 *   "mayfly.recovery"              what this open's WAL replay did: WALs read, records replayed,
 *                                  torn tail bytes ignored, and "Dropped at damage: none" or
 *                                  the WAL where point_in_time recovery stopped at corruption
 *                                  (marked "(missing)" when the WAL the MANIFEST names is gone)
 *   "mayfly.bytes-written"         every byte the engine wrote to files since open
 *   "mayfly.user-bytes-written"    key+value bytes accepted from callers since open
 *   "mayfly.stall-micros"          time writes were delayed or stopped since open, in µs */
MAYFLY_API int mayfly_property(mayfly_db *db, const char *name, char **value);

#ifdef __cplusplus
}
#endif
#endif /* MAYFLY_H */
