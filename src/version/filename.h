/* The names of the files in a database directory: one place that makes them and one that
 * parses them, so recovery and obsolete-file deletion recognise exactly what the engine
 * writes.
 *
 *   name                 type               content
 *   NNNNNN.log           MF_FILE_WAL        write-ahead log (formats: docs/format.md)
 *   NNNNNN.sst           MF_FILE_TABLE      sorted table
 *   NNNNNN.blob          MF_FILE_BLOB       blob file
 *   MANIFEST-NNNNNN      MF_FILE_MANIFEST   version edit log
 *   CURRENT              MF_FILE_CURRENT    name of the live MANIFEST
 *   LOCK                 MF_FILE_LOCK       advisory lock, empty
 *   NNNNNN.dbtmp         MF_FILE_TEMP       being written, renamed into place when complete
 *   LOG                  MF_FILE_INFO_LOG   human-readable info log
 *   OPTIONS-NNNNNN       MF_FILE_OPTIONS    "name=value" lines of the options in effect
 *
 * NNNNNN is a decimal file number, printed with at least 6 digits (more when it is larger),
 * drawn from one counter shared by every numbered file type; any number of digits parses.
 * Files without a number (CURRENT, LOCK, LOG) parse with number 0. */
#ifndef MAYFLY_VERSION_FILENAME_H
#define MAYFLY_VERSION_FILENAME_H

#include <stdint.h>

enum mf_file_type {
  MF_FILE_WAL,
  MF_FILE_TABLE,
  MF_FILE_BLOB,
  MF_FILE_MANIFEST,
  MF_FILE_CURRENT,
  MF_FILE_LOCK,
  MF_FILE_TEMP,
  MF_FILE_INFO_LOG,
  MF_FILE_OPTIONS
};

/* File numbers. Names parse below MF_MAX_FILE_NUMBER (2^60). A MANIFEST whose next file
 * number is at or above MF_FILE_NUMBER_LIMIT (2^59) is corrupt. At open, a file in the
 * directory numbered MF_STRAY_FILE_SPAN (2^32) or more past the MANIFEST's next file number
 * cannot be the database's (far more files than are ever made between two MANIFEST edits):
 * it is neither replayed nor counted as used, so a stray name cannot push the counter to
 * numbers whose names no longer parse, and it is never deleted. */
#define MF_MAX_FILE_NUMBER (UINT64_C(1) << 60)
#define MF_FILE_NUMBER_LIMIT (UINT64_C(1) << 59)
#define MF_STRAY_FILE_SPAN (UINT64_C(1) << 32)

/* Each returns "dbname/<name>" as a malloc'd NUL-terminated string the caller frees, or NULL
 * when out of memory. */
char *filename_wal(const char *dbname, uint64_t number);      /* dbname/000123.log */
char *filename_table(const char *dbname, uint64_t number);    /* dbname/000123.sst */
char *filename_blob(const char *dbname, uint64_t number);     /* dbname/000123.blob */
char *filename_manifest(const char *dbname, uint64_t number); /* dbname/MANIFEST-000123 */
char *filename_current(const char *dbname);                   /* dbname/CURRENT */
char *filename_lock(const char *dbname);                      /* dbname/LOCK */
char *filename_temp(const char *dbname, uint64_t number);     /* dbname/000123.dbtmp */
char *filename_info_log(const char *dbname);                  /* dbname/LOG */
char *filename_options(const char *dbname, uint64_t number);  /* dbname/OPTIONS-000123 */

/* Parses a bare file name (no directory part). Returns 1 and sets *type (an enum
 * mf_file_type) and *number when name is exactly one of the names above, else 0 and leaves
 * both untouched. Rejects empty numbers, numbers from MF_MAX_FILE_NUMBER up, signs, and
 * trailing junk ("000123.sst.bak", "MANIFEST-", "123"). */
int filename_parse(const char *name, int *type, uint64_t *number);

#endif
