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
 *  - that the WAL the MANIFEST names as the newest writes' log exists, and that each log's
 *    header repeats the number in its name.
 * Each problem is one line on report naming the file and, where one applies, the offset.
 *
 * Leftovers are reported apart, as "leftover:" lines: files the next open deletes unread,
 * which a crash (or a job a crash interrupted) leaves behind. They are tables and blob files
 * the current version does not list, WALs older than the MANIFEST's log number, MANIFESTs
 * CURRENT does not name, temporary files, and, with no CURRENT and no data, whatever a
 * database creation that did not finish left. Their contents are still checked, but damage
 * there is part of the leftover line, not a problem: nothing depends on them. After a clean
 * close there are none. A table, blob file or WAL numbered far past the file counter (a stray:
 * filename.h) is neither: the database does not touch it, and a warning says so. */
#ifndef MAYFLY_DB_DB_CHECK_H
#define MAYFLY_DB_DB_CHECK_H

#include <stdint.h>
#include <stdio.h>

#include "env/env.h"

typedef struct db_check_counts {
  uint64_t problems;  /* damage or disagreement in what the database needs */
  uint64_t leftovers; /* files the next open deletes */
} db_check_counts;

/* Checks the database at path through env (env_posix() when NULL). Writes one line per
 * problem and per leftover (and a summary) to report (none when NULL) and fills *counts.
 * Returns MAYFLY_OK when the check ran (problems may be > 0), or MAYFLY_ENOMEM / MAYFLY_EINVAL
 * when it could not run at all (e.g. path is not a directory). A damaged MANIFEST or missing
 * CURRENT is a problem, not an error: the file checks that do not need a version still run
 * (and, with no version to tell, every file is checked for problems: none is a leftover). */
int db_check(const char *path, mf_env *env, FILE *report, db_check_counts *counts);

/* Whether the listed names of directory dbname hold data: a table, a blob file, or a WAL
 * with more than its header. Without CURRENT, that makes the directory a damaged database
 * rather than a creation that did not finish (mayfly_open and db_check decide alike). */
int db_dir_holds_data(mf_env *env, const char *dbname, char **names, size_t count);

#endif
