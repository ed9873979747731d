/* A fault-injecting env: wraps any mf_env and makes chosen calls fail, counts calls by kind,
 * and simulates a power loss.
 *
 * Faults. Calls are grouped in kinds (enum env_fault_kind). Every call of a kind increments
 * that kind's counter (1 for the first call) before it is forwarded; env_fault_set arms one
 * kind so that the call whose counter equals nth fails (once), or every call from nth on
 * (persistent). A failed call does nothing on the base env, and returns MAYFLY_EIO with a
 * message naming the path and either "I/O error" or "no space left on device". A test that
 * wants "the first N-th call that fails" loops N = 1, 2, ... until the operation under test
 * completes without the fault firing (env_fault_injected stays 0).
 *
 * Freezing. env_fault_freeze makes every call that changes the file system fail (create,
 * append, flush, sync, rename, remove, mkdir, rmdir, directory sync) without counting: a
 * database handle can then be closed after a simulated power loss without writing anything.
 *
 * Power loss (env_fault_power_loss). With an in-memory base (env_mem_create), the mem env's
 * own crash is used (exact: unsynced bytes are dropped and undurable directory changes,
 * renames included, are undone). With any other base, the wrapper tracks what it saw: each
 * file created through it, the length synced so far, and whether a sync_dir of its directory
 * happened since it was created. Power loss then removes files created since their
 * directory's last sync, and cuts every other tracked file back to its synced length by
 * rewriting it. A rename carries the source's state to the target, and an unsynced rename is
 * approximated by removing the target (the old target's contents cannot be brought back).
 * Files that existed before the wrapper was created count as durable. With garbage_tail set,
 * the lost tail of a surviving file is replaced by as many pseudo-random bytes instead of
 * being cut off (the disk wrote something, just not what was asked), and the file is synced.
 * Open handles must not be used after a power loss except to close them: freeze first, cut
 * the power, close the handles, then unfreeze.
 *
 * Reads of memory mappings would bypass the read counter, so the wrapper does not map
 * (map_readable is NULL) and the engine falls back to pread.
 *
 * Thread-safe: all state is under one mutex; base calls are made outside it. */
#ifndef MAYFLY_ENV_ENV_FAULT_H
#define MAYFLY_ENV_ENV_FAULT_H

#include <stdint.h>

#include "env/env.h"

enum env_fault_kind {
  ENV_FAULT_READ,     /* open_readable, pread */
  ENV_FAULT_WRITE,    /* append, flush */
  ENV_FAULT_SYNC,     /* sync of a file */
  ENV_FAULT_RENAME,   /* rename_file */
  ENV_FAULT_UNLINK,   /* remove_file */
  ENV_FAULT_CREATE,   /* new_writable */
  ENV_FAULT_DIR_SYNC, /* sync_dir */
  ENV_FAULT_NUM_KINDS
};

enum env_fault_error {
  ENV_FAULT_EIO,   /* MAYFLY_EIO, "I/O error" */
  ENV_FAULT_ENOSPC /* MAYFLY_EIO, "no space left on device" */
};

/* Wraps base, which is not owned and must outlive the wrapper. *out is owned by the caller:
 * free it with (*out)->destroy(*out), which does not destroy base. No fault is armed.
 * Returns MAYFLY_OK or MAYFLY_ENOMEM. */
int env_fault_create(mf_env *base, mf_env **out);

/* Arms kind: its nth call counted from now (nth >= 1; the counter is reset) fails; with
 * persistent, every call from the nth on fails. error_kind is an enum env_fault_error. Any
 * fault armed before is replaced, and env_fault_injected is reset. */
void env_fault_set(mf_env *e, int kind, uint64_t nth, int persistent, int error_kind);
/* Disarms the fault (counters keep counting). */
void env_fault_clear(mf_env *e);
/* Calls of kind since env_fault_create or since kind was last armed by env_fault_set. */
uint64_t env_fault_count(mf_env *e, int kind);
/* Calls of kind made after the first injected failure (0 while none fired); the failed call
 * itself is not counted. For "nothing is deleted after an error" checks. */
uint64_t env_fault_count_after_fault(mf_env *e, int kind);
/* Failures injected since the last env_fault_set (freezing is not counted). */
uint64_t env_fault_injected(mf_env *e);
/* Copies into buf (NUL-terminated, truncated to n bytes) the path of the first injected
 * failure, "" if none. */
void env_fault_first_path(mf_env *e, char *buf, size_t n);
/* Copies into buf (NUL-terminated, truncated to n bytes) the path of the last call of kind,
 * "" if none. */
void env_fault_last_path(mf_env *e, int kind, char *buf, size_t n);
/* on != 0: every call that changes the file system fails with MAYFLY_EIO; 0: back to normal. */
void env_fault_freeze(mf_env *e, int on);

/* Simulates a power loss (see the top of this file). Returns MAYFLY_OK or the base env's
 * error. */
int env_fault_power_loss(mf_env *e, int garbage_tail);

#endif
