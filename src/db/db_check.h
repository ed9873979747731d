/* db_check: an offline consistency check of a database directory (`mayfly check DB`,
 * tools/mayfly.c; docs/reliability.md).
 *
 * It never modifies the database: every call goes through a frozen fault env
 * (src/env/env_fault.h) wrapped around the caller's env, so any write, rename or removal
 * would fail instead of happening, and it does not call mayfly_open (recovery writes). It
 * reads CURRENT and replays the MANIFEST with version_set_recover, then checks:
 *  - every WAL record's checksum (*.log files), and reports torn tails as warnings;
 *  - every table of the current version: full iteration (every block checksum), strictly
 *    increasing internal keys, every key within the MANIFEST's smallest/largest, the entry
 *    count;
 *  - every blob file of the current version: every record via blob_reader_scan;
 *  - every blob reference in those tables: the blob file is in the version and on disk, and
 *    blob_reader_get finds a record at the offset with a good checksum and the same key;
 *  - each blob file's garbage counts in the MANIFEST against a recount (total minus the
 *    references found): any difference is reported (for a quiesced database they are equal;
 *    the MANIFEST counting more garbage than exists would let GC drop live values);
 *  - orphans: table and blob files in the directory that the current version does not list.
 * Each problem is one line on report naming the file and, where one applies, the offset. */
#ifndef MAYFLY_DB_DB_CHECK_H
#define MAYFLY_DB_DB_CHECK_H

#include <stdint.h>
#include <stdio.h>

#include "env/env.h"

/* Checks the database at path through env (env_posix() when NULL). Writes one line per
 * problem (and a summary) to report (none when NULL) and sets *problems to their number.
 * Returns MAYFLY_OK when the check ran (problems may be > 0), or MAYFLY_ENOMEM / MAYFLY_EINVAL
 * when it could not run at all (e.g. path is not a directory). A damaged MANIFEST or missing
 * CURRENT is a problem, not an error: the file checks that do not need a version still run. */
int db_check(const char *path, mf_env *env, FILE *report, uint64_t *problems);

#endif
