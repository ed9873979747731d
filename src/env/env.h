/* All OS access goes through an mf_env: files, directories, locks, clock, threads.
 *
 * Two implementations: env_posix() (the default, process-wide, never destroyed) and
 * env_mem_create() (an in-memory file system for tests, which can also simulate a crash by
 * dropping everything not yet synced). Tests wrap an env to inject faults, so the engine
 * never calls the OS directly. Like lsm_env in SQLite LSM1, the struct carries its size and
 * version so it can grow without breaking wrappers.
 *
 * Every function returns MAYFLY_OK or a negative MAYFLY_E* code made with MF_ERR, whose
 * message names the path and the OS error. */
#ifndef MAYFLY_ENV_ENV_H
#define MAYFLY_ENV_ENV_H

#include <stddef.h>
#include <stdint.h>

typedef struct mf_env mf_env;
typedef struct mf_wfile mf_wfile; /* a file being written, append-only */
typedef struct mf_rfile mf_rfile; /* a file opened for positional reads */
typedef struct mf_lock mf_lock;
typedef struct mf_thread mf_thread;
typedef struct mf_map mf_map;     /* a read-only memory mapping of a file (version >= 2) */

/* 1: the original table. 2: adds map_readable and unmap at the end. A caller that wants a
 * field added after version 1 checks it with the env_has_* helpers below, so an env built
 * against an older struct (smaller size, lower version) keeps working. */
#define MF_ENV_VERSION 2

struct mf_env {
  size_t size; /* sizeof(struct mf_env) of the implementation */
  int version; /* MF_ENV_VERSION */
  void *ctx;   /* implementation state */

  /* Creates path, or truncates it if it exists. Writes are buffered in user space. */
  int (*new_writable)(mf_env *env, const char *path, mf_wfile **out);
  int (*append)(mf_wfile *f, const void *data, size_t n);
  int (*flush)(mf_wfile *f); /* hand buffered bytes to the OS (survives a process crash) */
  /* flush, then make the data durable: full ? fsync : fdatasync. */
  int (*sync)(mf_wfile *f, int full);
  /* flush, close and free f (f is freed even on error). Does not sync. */
  int (*close_writable)(mf_wfile *f);

  int (*open_readable)(mf_env *env, const char *path, mf_rfile **out); /* ENOTFOUND if absent */
  /* Reads up to n bytes at offset into buf; *got < n only at end of file. Thread-safe. */
  int (*pread)(mf_rfile *f, uint64_t offset, size_t n, void *buf, size_t *got);
  void (*close_readable)(mf_rfile *f);

  int (*file_size)(mf_env *env, const char *path, uint64_t *size);
  int (*file_exists)(mf_env *env, const char *path); /* 1 or 0, never an error code */
  int (*is_directory)(mf_env *env, const char *path); /* 1 or 0 */
  /* Names (not paths) of the entries in dir, without "." and "..". Free with env_free_names. */
  int (*list_dir)(mf_env *env, const char *dir, char ***names, size_t *count);
  int (*remove_file)(mf_env *env, const char *path);
  int (*rename_file)(mf_env *env, const char *from, const char *to); /* atomic replace */
  int (*make_dir)(mf_env *env, const char *path); /* OK if it already is a directory */
  int (*remove_dir)(mf_env *env, const char *path);
  int (*sync_dir)(mf_env *env, const char *path); /* make renames/creations in it durable */

  /* An exclusive advisory lock; MAYFLY_EBUSY if another holder (this process or another)
   * has it. */
  int (*lock_file)(mf_env *env, const char *path, mf_lock **out);
  void (*unlock_file)(mf_env *env, mf_lock *lock);

  uint64_t (*now_micros)(mf_env *env); /* monotonic-enough wall clock for stats */
  void (*sleep_micros)(mf_env *env, uint64_t micros);
  int (*thread_start)(mf_env *env, void *(*fn)(void *), void *arg, mf_thread **out);
  int (*thread_join)(mf_env *env, mf_thread *t); /* frees t */

  void (*destroy)(mf_env *env); /* NULL for env_posix() */

  /* ---- version 2 ---- */

  /* OPTIONAL: both NULL when the env cannot map files (env_mem: its callers then read with
   * pread, which keeps that path exercised by the tests on it).
   * map_readable maps the first size bytes of f (size <= the file's size, > 0) read-only
   * into memory: on MAYFLY_OK, *data points at them and stays valid until unmap(env, *out),
   * which the caller must call before close_readable(f). A file shorter than size is refused
   * (MAYFLY_ENOTSUP), so a caller that believes a damaged file longer than it is reads it with
   * pread and sees the short read. The caller promises that the bytes do not change and the
   * file is not truncated while mapped (table and blob files are immutable; reading a mapping
   * past a truncated end would crash the process). MAYFLY_ENOTSUP means
   * "not this file": the env limits how many files it maps at once (address space, map
   * count), and the caller falls back to pread. Thread-safe.
   * An env that wraps another to inject read faults must set these to NULL or wrap them too:
   * reads of mapped memory bypass pread. */
  int (*map_readable)(mf_env *env, mf_rfile *f, uint64_t size, const char **data,
                      mf_map **out);
  void (*unmap)(mf_env *env, mf_map *map);
};

/* 1 when env implements map_readable and unmap (version >= 2, and both set). */
static inline int env_has_map(const mf_env *env) {
  return env->version >= 2 &&
         env->size >= offsetof(mf_env, unmap) + sizeof env->unmap &&
         env->map_readable != NULL && env->unmap != NULL;
}

mf_env *env_posix(void);

/* In-memory env for tests. Destroy with env->destroy(env). */
int env_mem_create(mf_env **out);
/* Simulates a machine crash on an in-memory env: every file loses the bytes appended after
 * its last sync, and files or renames not made durable by sync_dir of their directory are
 * undone. Open handles keep working on the truncated files. */
int env_mem_crash(mf_env *env);
/* Makes path's bytes and name durable, as if the OS had written them back on its own before
 * a crash (it may, for any file, in any order): a test can then crash with env_mem_crash and
 * have one file survive whole while every other loses what was not synced. */
int env_mem_writeback(mf_env *env, const char *path);

void env_free_names(char **names, size_t count);
/* Reads a whole file into out (out->len set). */
struct mf_buf;
int env_read_file(mf_env *env, const char *path, struct mf_buf *out);
/* Writes data to path via a temp file: write, sync, rename over path, sync the directory.
 * Used for CURRENT. */
int env_write_file_atomic(mf_env *env, const char *path, const void *data, size_t n);

#endif
