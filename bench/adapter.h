/* The engine adapter interface of mayfly_bench.
 *
 * The workloads in mayfly_bench.c know nothing about any engine: they drive one of these
 * tables of function pointers. An adapter owns one open database at a time (the `void *`
 * handle it returns from open). Adding an engine means writing one adapter_<engine>.c that
 * fills a bench_adapter and listing it in mayfly_bench.c; nothing else changes.
 *
 * Error reporting: every function that can fail returns 0 on success and nonzero on
 * failure, after writing a one-line, NUL-terminated reason into err (err_len bytes, always
 * at least 1). The workload prints that line and stops the run.
 */
#ifndef MAYFLY_BENCH_ADAPTER_H
#define MAYFLY_BENCH_ADAPTER_H

#include <stddef.h>
#include <stdint.h>

/* How a benchmark run opens its database, from mayfly_bench's flags (db_bench's names). */
typedef struct bench_open_settings {
  int create_if_missing;   /* 0 under --use_existing_db: a missing database is an error */
  int sync;                /* --sync: every write is synchronous */
  int disable_wal;         /* --disable_wal: writes skip the WAL; only when can_disable_wal */
  const char *compression; /* --compression_type: one of the adapter's compressions */
} bench_open_settings;

typedef struct bench_adapter {
  /* Short engine name, as given to --engine ("mayfly", "leveldb"). Static storage. */
  const char *name;

  /* Writes the engine's library version ("mayfly 0.1.0", "leveldb 1.23") into buf. */
  void (*version)(char *buf, size_t len);

  /* The --compression_type values the engine takes, comma-separated ("none,snappy"), and
   * whether it can write without its WAL. mayfly_bench refuses (or, with --engine=all,
   * skips the engine with a message) any other combination before opening anything. */
  const char *compressions;
  int can_disable_wal;

  /* Opens the database in directory path, creating it when settings->create_if_missing.
   * options is the engine's "name=value;name=value" text (may be empty, never NULL), applied
   * after settings (so it may override the compression); the adapter owns its defaults (WAL
   * on, no sync). *handle belongs to the adapter until close. */
  int (*open)(const char *path, const char *options, const bench_open_settings *settings,
              void **handle, char *err, size_t err_len);

  /* Writes key -> value (with the sync and WAL settings of open). */
  int (*put)(void *handle, const void *key, size_t klen, const void *val, size_t vlen, char *err,
             size_t err_len);

  /* Point lookup of the latest value. *found = 1 and *vlen = value size when present,
   * *found = 0 when absent (absent is not an error). The value itself is read and dropped. */
  int (*get)(void *handle, const void *key, size_t klen, int *found, size_t *vlen, char *err,
             size_t err_len);

  /* Deletes key (settings as put); deleting an absent key is not an error. */
  int (*del)(void *handle, const void *key, size_t klen, char *err, size_t err_len);

  /* Reads up to limit entries (0: no limit) with one iterator: forwards from the first key
   * >= start, or backwards from the last key <= start when reverse is set (seekrandom,
   * readreverse, YCSB E). start NULL: from the first (reverse: the last) key.
   * *entries and *bytes (sum of key and value sizes) describe what was read. */
  int (*scan)(void *handle, const void *start, size_t slen, int reverse, uint64_t limit,
              uint64_t *entries, uint64_t *bytes, char *err, size_t err_len);

  /* Reads every entry in key order from the first key (db_bench's readseq).
   * *entries and *bytes (sum of key and value sizes) describe what was read. */
  int (*scan_all)(void *handle, uint64_t *entries, uint64_t *bytes, char *err, size_t err_len);

  /* What the engine wrote to its files since open (engine_bytes) and the key+value bytes it
   * accepted from callers (user_bytes). Returns 0 and fills both when the engine reports
   * them; nonzero (no message) when it cannot tell. May be NULL when never known. */
  int (*bytes_written)(void *handle, uint64_t *engine_bytes, uint64_t *user_bytes);

  /* Waits until the engine has no flush or compaction queued or running (the active
   * memtable may stay in memory). May be NULL: mayfly_bench then waits until the size of
   * the database directory stops changing for a second. */
  int (*wait_idle)(void *handle, char *err, size_t err_len);

  /* Compacts the whole key range into the last level and returns when done (db_bench's
   * "compact": mayfly_compact_range, leveldb_compact_range, rocksdb_compact_range). */
  int (*compact)(void *handle, char *err, size_t err_len);

  /* Writes every memtable to the engine's files and returns when that is done (db_bench's
   * "flush": mayfly_flush, rocksdb_flush with wait). May be NULL when the engine cannot
   * (LevelDB's C API has no flush): the benchmark then does nothing for that engine. */
  int (*flush)(void *handle, char *err, size_t err_len);

  /* The time writes have been stalled or slowed down by the engine since open, in
   * microseconds. Returns 0, or nonzero (no message) when the engine cannot tell. May be
   * NULL when it never can (LevelDB). */
  int (*stall_micros)(void *handle, uint64_t *micros);

  /* Closes the database and frees the handle (which is invalid afterwards). */
  int (*close)(void *handle, char *err, size_t err_len);

  /* Removes the database's files in path (a missing database is not an error). */
  int (*destroy)(const char *path, char *err, size_t err_len);

  /* Prints the engine's own statistics text (mayfly.stats and mayfly.blob-stats,
   * rocksdb.stats) to stdout, for the "stats" pseudo-benchmark. May be NULL. */
  void (*print_stats)(void *handle);
} bench_adapter;

/* Defined by adapter_mayfly.c (always built). */
extern const bench_adapter bench_adapter_mayfly;

/* Defined by adapter_leveldb.c, built only when LevelDB is found
 * (the build then defines MAYFLY_BENCH_HAVE_LEVELDB). */
extern const bench_adapter bench_adapter_leveldb;

/* Defined by adapter_rocksdb.c, built only when RocksDB is found
 * (the build then defines MAYFLY_BENCH_HAVE_ROCKSDB). */
extern const bench_adapter bench_adapter_rocksdb;

#endif /* MAYFLY_BENCH_ADAPTER_H */
