/* The offline database check (what it checks: db_check.h).
 *
 * The walk is driven by the directory listing, not by the version, so that files the
 * MANIFEST cannot describe (it is damaged, or they are leftovers) still get their checksums
 * verified: every *.log is read record by record, every *.blob scanned, every *.sst iterated.
 * The version (when the MANIFEST replays) adds the cross-file checks: key bounds, blob
 * references, garbage counts, missing files, and which files are leftovers (classify).
 *
 * Open files: each blob file is scanned once and closed; references are then resolved with
 * blob_reader_get through at most CHECK_OPEN_BLOBS readers open at a time (the oldest is
 * closed first), so a database of thousands of blob files needs no more descriptors than a
 * small one. */
#include "db/db_check.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "blob/blob_format.h"
#include "blob/blob_reader.h"
#include "env/env_fault.h"
#include "mayfly.h"
#include "table/iterator.h"
#include "table/table.h"
#include "util/error.h"
#include "util/ikey.h"
#include "version/filename.h"
#include "version/version_set.h"
#include "wal/wal_format.h"
#include "wal/wal_reader.h"

enum { CHECK_OPEN_BLOBS = 64 };

typedef struct check_blob {
  uint64_t number;
  char *name;
  int bad;             /* could not be opened or scanned (reported once) */
  uint64_t records;    /* from the scan */
  blob_reader *reader; /* open for reference checks, or NULL */
  uint64_t ref_count, ref_bytes; /* references found in the current version's tables */
} check_blob;

typedef struct checker {
  mf_env *env; /* the frozen wrapper */
  const char *dbname;
  FILE *report;
  uint64_t problems, leftovers;
  /* Set while a leftover file is checked: what is wrong with it is reported as a leftover,
   * not a problem (the next open deletes the file unread). */
  int in_leftover;
  version_set *vs;
  version *v; /* NULL when the MANIFEST did not replay */
  check_blob *blobs;
  size_t num_blobs;
  size_t open[CHECK_OPEN_BLOBS]; /* indexes into blobs of the open readers, oldest first */
  int num_open;
  mf_buf value; /* scratch for blob_reader_get */
  int unread_tables; /* tables that could not be read to the end: no garbage recount */
} checker;

static void problem(checker *c, const char *fmt, ...) {
  if (!c->in_leftover) c->problems++; /* a leftover counts once, as a file */
  if (!c->report) return;
  va_list ap;
  va_start(ap, fmt);
  fputs(c->in_leftover ? "leftover: " : "problem: ", c->report);
  vfprintf(c->report, fmt, ap);
  fputc('\n', c->report);
  va_end(ap);
}

static void warning(checker *c, const char *fmt, ...) {
  if (!c->report) return;
  va_list ap;
  va_start(ap, fmt);
  fputs("warning: ", c->report);
  vfprintf(c->report, fmt, ap);
  fputc('\n', c->report);
  va_end(ap);
}

/* A file the next open deletes unread: normal after a crash. */
static void leftover(checker *c, const char *name, const char *what) {
  c->leftovers++;
  if (c->report) fprintf(c->report, "leftover: %s: %s\n", name, what);
}

/* The engine's error message for rc, or its name when there is none. */
static const char *why(int rc) {
  const char *m = mf_error_message();
  return m && m[0] ? m : mayfly_strerror(rc);
}

static char *join(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/%s", dir, name);
  return p;
}

/* ---- logs: the WAL and the MANIFEST share the record format ---- */

/* number: the one in the file's name, which the header must repeat (0 in a headerless log). */
static void check_log(checker *c, const char *name, int kind, uint64_t number) {
  mf_rfile *f = NULL;
  int rc = c->env->open_readable(c->env, name, &f);
  if (rc != MAYFLY_OK) {
    problem(c, "%s: cannot open: %s", name, why(rc));
    return;
  }
  wal_reader *r = NULL;
  rc = wal_reader_create(c->env, f, name, kind, &r);
  if (rc != MAYFLY_OK) {
    problem(c, "%s: bad log header: %s", name, why(rc));
    c->env->close_readable(f);
    return;
  }
  if (wal_reader_file_number(r) != 0 && wal_reader_file_number(r) != number)
    problem(c, "%s: header says file number %" PRIu64 " (copied or renamed?)", name,
            wal_reader_file_number(r));
  mf_slice rec;
  uint64_t records = 0;
  while ((rc = wal_reader_read(r, &rec)) == MAYFLY_OK) records++;
  if (rc != MAYFLY_ENOTFOUND)
    problem(c, "%s: record %" PRIu64 " (after offset %" PRIu64 "): %s", name, records,
            wal_reader_last_record_offset(r), why(rc));
  else if (wal_reader_dropped_bytes(r) > 0)
    warning(c, "%s: torn tail of %" PRIu64 " bytes after offset %" PRIu64
            " (normal after a crash)", name, wal_reader_dropped_bytes(r),
            wal_reader_last_record_offset(r));
  wal_reader_destroy(r);
  c->env->close_readable(f);
}

/* ---- blob files ---- */

static int count_record(void *arg, mf_slice key, const blob_index *bi, mf_slice stored) {
  (void)key, (void)bi, (void)stored;
  (*(uint64_t *)arg)++;
  return MAYFLY_OK;
}

static int open_reader(checker *c, check_blob *b) {
  uint64_t size = 0;
  mf_rfile *f = NULL;
  int rc = c->env->file_size(c->env, b->name, &size);
  if (rc == MAYFLY_OK) rc = c->env->open_readable(c->env, b->name, &f);
  if (rc == MAYFLY_OK) rc = blob_reader_open(c->env, f, b->name, b->number, size, &b->reader);
  if (rc != MAYFLY_OK) b->reader = NULL;
  return rc;
}

/* Opens, scans every record and closes the blob file. */
static void scan_blob(checker *c, check_blob *b) {
  int rc = open_reader(c, b);
  if (rc != MAYFLY_OK) {
    problem(c, "%s: cannot open blob file: %s", b->name, why(rc));
    b->bad = 1;
    return;
  }
  rc = blob_reader_scan(b->reader, count_record, &b->records);
  if (rc != MAYFLY_OK) problem(c, "%s: record %" PRIu64 ": %s", b->name, b->records, why(rc));
  b->records = blob_reader_count(b->reader);
  blob_reader_close(b->reader);
  b->reader = NULL;
}

/* b's reader for reference checks, opened if need be (closing the oldest open one when
 * CHECK_OPEN_BLOBS are open); NULL for a file the scan found bad. */
static blob_reader *blob_for_refs(checker *c, check_blob *b) {
  if (b->bad) return NULL;
  if (b->reader) return b->reader;
  if (c->num_open == CHECK_OPEN_BLOBS) {
    check_blob *old = &c->blobs[c->open[0]];
    blob_reader_close(old->reader);
    old->reader = NULL;
    memmove(c->open, c->open + 1, (CHECK_OPEN_BLOBS - 1) * sizeof *c->open);
    c->num_open--;
  }
  int rc = open_reader(c, b);
  if (rc != MAYFLY_OK) {
    problem(c, "%s: cannot open blob file: %s", b->name, why(rc));
    b->bad = 1;
    return NULL;
  }
  c->open[c->num_open++] = (size_t)(b - c->blobs);
  return b->reader;
}

static check_blob *find_blob(checker *c, uint64_t number) {
  for (size_t i = 0; i < c->num_blobs; i++)
    if (c->blobs[i].number == number) return &c->blobs[i];
  return NULL;
}

/* ---- tables ---- */

/* *last_missing: the last missing blob file this table referenced, reported once. */
static void check_blob_ref(checker *c, const char *name, mf_slice ikey, mf_slice value,
                           uint64_t *last_missing) {
  blob_index bi;
  mf_slice user_key = ikey_user_key(ikey);
  int rc = blob_index_decode(value, &bi);
  if (rc != MAYFLY_OK) {
    problem(c, "%s: key '%.*s': undecodable blob index", name, (int)user_key.len, user_key.data);
    return;
  }
  check_blob *b = find_blob(c, bi.file_number);
  if (c->v && !version_find_blob(c->v, bi.file_number))
    problem(c, "%s: key '%.*s' references blob file %" PRIu64 " not in the current version",
            name, (int)user_key.len, user_key.data, bi.file_number);
  if (!b) {
    if (*last_missing != bi.file_number)
      problem(c, "%s: key '%.*s' (and maybe more) references blob file %06" PRIu64
              ".blob, which is missing", name, (int)user_key.len, user_key.data,
              bi.file_number);
    *last_missing = bi.file_number;
    return;
  }
  b->ref_count++;
  b->ref_bytes += blob_record_bytes(user_key.len, bi.size);
  blob_reader *r = blob_for_refs(c, b);
  if (!r) return; /* already reported */
  rc = blob_reader_get(r, user_key, &bi, &c->value);
  if (rc != MAYFLY_OK)
    problem(c, "%s: key '%.*s' -> %s offset %" PRIu64 ": %s", name, (int)user_key.len,
            user_key.data, b->name, bi.offset, why(rc));
}

/* meta: the table's entry in the current version, NULL for an orphan (contents only). */
static void check_table(checker *c, const char *name, uint64_t number, const file_meta *meta) {
  uint64_t size = 0;
  mf_rfile *f = NULL;
  table *t = NULL;
  int rc = c->env->file_size(c->env, name, &size);
  if (rc == MAYFLY_OK && meta && size != meta->file_size)
    problem(c, "%s: size %" PRIu64 ", the MANIFEST says %" PRIu64, name, size, meta->file_size);
  if (rc == MAYFLY_OK) rc = c->env->open_readable(c->env, name, &f);
  if (rc == MAYFLY_OK) rc = table_open(c->env, f, name, size, NULL, number, &t);
  if (rc != MAYFLY_OK) {
    problem(c, "%s: cannot open table: %s", name, why(rc));
    if (meta) c->unread_tables++;
    return;
  }
  mf_iter *it = table_iter_create(t);
  if (!it) {
    problem(c, "%s: out of memory", name);
    table_close(t);
    return;
  }
  mf_buf prev = {0};
  uint64_t entries = 0, last_missing = 0;
  int order_reported = 0, bounds_reported = 0;
  for (iter_seek_to_first(it); iter_valid(it); iter_next(it)) {
    mf_slice k = iter_key(it);
    if (k.len < 8) {
      problem(c, "%s: entry %" PRIu64 ": internal key of %zu bytes", name, entries, k.len);
      break;
    }
    if (entries > 0 && table_key_compare(mf_buf_slice(&prev), k) >= 0 && !order_reported) {
      problem(c, "%s: entry %" PRIu64 ": key '%.*s' is not after the previous key", name,
              entries, (int)(k.len - 8), k.data);
      order_reported = 1;
    }
    if (meta && !bounds_reported &&
        (ikey_compare(k, mf_buf_slice(&meta->smallest)) < 0 ||
         ikey_compare(k, mf_buf_slice(&meta->largest)) > 0)) {
      problem(c, "%s: entry %" PRIu64 ": key '%.*s' outside the MANIFEST's range", name,
              entries, (int)(k.len - 8), k.data);
      bounds_reported = 1;
    }
    if (mf_buf_set(&prev, k.data, k.len) != MAYFLY_OK) break;
    if (meta && (ikey_trailer(k) & 0xff) == MF_TYPE_BLOB_INDEX) check_blob_ref(c, name, k, iter_value(it), &last_missing);
    entries++;
  }
  rc = iter_status(it);
  if (rc != MAYFLY_OK) {
    problem(c, "%s: after entry %" PRIu64 ": %s", name, entries, why(rc));
    if (meta) c->unread_tables++;
  } else if (meta && entries != meta->num_entries)
    problem(c, "%s: %" PRIu64 " entries, the MANIFEST says %" PRIu64, name, entries,
            meta->num_entries);
  mf_buf_free(&prev);
  iter_destroy(it);
  table_close(t);
}

static const file_meta *find_table(const version *v, uint64_t number) {
  if (!v) return NULL;
  for (int l = 0; l < MF_NUM_LEVELS; l++)
    for (int i = 0; i < v->num_files[l]; i++)
      if (v->files[l][i]->number == number) return v->files[l][i];
  return NULL;
}

/* ---- the version's own claims ---- */

static void check_version(checker *c, char **names, size_t count) {
  version *v = c->v;
  for (int l = 0; l < MF_NUM_LEVELS; l++)
    for (int i = 0; i < v->num_files[l]; i++) {
      char *name = filename_table(c->dbname, v->files[l][i]->number);
      if (name && !c->env->file_exists(c->env, name)) {
        problem(c, "%s: level-%d table listed in the MANIFEST is missing", name, l);
        c->unread_tables++; /* its blob references cannot be recounted either */
      }
      free(name);
    }
  for (int i = 0; i < v->num_blobs; i++) {
    const blob_meta *m = v->blobs[i];
    check_blob *b = find_blob(c, m->number);
    char *name = filename_blob(c->dbname, m->number);
    if (!b) {
      problem(c, "%s: blob file listed in the MANIFEST is missing", name ? name : "?");
      free(name);
      continue;
    }
    free(name);
    if (!b->bad && b->records != m->total_count)
      problem(c, "%s: %" PRIu64 " records, the MANIFEST says %" PRIu64, b->name, b->records,
              m->total_count);
    if (b->ref_count > m->total_count || b->ref_bytes > m->total_bytes) {
      problem(c, "%s: %" PRIu64 " references (%" PRIu64 " bytes) but only %" PRIu64
              " records (%" PRIu64 " bytes)", b->name, b->ref_count, b->ref_bytes,
              m->total_count, m->total_bytes);
      continue;
    }
    if (c->unread_tables) continue; /* references are missing from the count */
    uint64_t garbage_count = m->total_count - b->ref_count;
    uint64_t garbage_bytes = m->total_bytes - b->ref_bytes;
    if (garbage_count != m->garbage_count || garbage_bytes != m->garbage_bytes)
      problem(c, "%s: garbage recount %" PRIu64 " records / %" PRIu64 " bytes, the MANIFEST "
              "says %" PRIu64 " / %" PRIu64 "%s", b->name, garbage_count, garbage_bytes,
              m->garbage_count, m->garbage_bytes,
              garbage_count < m->garbage_count ? " (more than exists: live values at risk)"
                                               : " (garbage not accounted)");
  }
  /* The WAL of the newest writes exists from before the edit that names it until an edit
   * names another (db.c, recover_wals): without it they are lost. */
  uint64_t log_number = version_set_log_number(c->vs);
  int wal_found = log_number == 0;
  for (size_t i = 0; i < count && !wal_found; i++) {
    int type;
    uint64_t number;
    wal_found = filename_parse(names[i], &type, &number) && type == MF_FILE_WAL &&
                number == log_number;
  }
  if (!wal_found)
    problem(c, "%s/%06" PRIu64 ".log: missing: the MANIFEST names it as the WAL of the newest "
            "writes", c->dbname, log_number);
}

/* Decides how the file is checked, with the version: a file it needs is checked for problems;
 * a leftover (reported here) has its contents checked with c->in_leftover set, since damage
 * there loses nothing; a stray (a number far past the file counter, which open neither uses
 * nor deletes: filename.h) is only mentioned. Returns 0 when the contents are not to be read.
 * Without a version every file is checked for problems. */
static int classify(checker *c, const char *name, int type, uint64_t number) {
  c->in_leftover = 0;
  if (!c->v) return 1;
  const char *what = NULL;
  /* (Recovery raises the counter past every file the version lists: none is a stray.) */
  int numbered = type == MF_FILE_WAL || type == MF_FILE_TABLE || type == MF_FILE_BLOB;
  if (numbered && number >= version_set_next_file_number(c->vs) + MF_STRAY_FILE_SPAN) {
    warning(c, "%s: ignored: its number is far past the database's file counter, so the "
            "database neither uses nor deletes it", name);
    return 0;
  }
  switch (type) {
    case MF_FILE_WAL:
      if (number < version_set_log_number(c->vs)) what = "an obsolete WAL, its writes are in tables";
      break;
    case MF_FILE_MANIFEST:
      if (number != version_set_manifest_file_number(c->vs))
        what = "not the MANIFEST that CURRENT names";
      break;
    case MF_FILE_TABLE:
    case MF_FILE_BLOB:
      if ((type == MF_FILE_TABLE ? find_table(c->v, number) != NULL
                                 : version_find_blob(c->v, number) != NULL))
        break;
      what = "not in the current version (the output of an interrupted flush, compaction or "
             "GC, or an input not deleted yet)";
      break;
    case MF_FILE_TEMP:
      leftover(c, name, "an unfinished temporary file; the next open deletes it");
      return 0;
    default:
      break;
  }
  if (what) {
    char line[256];
    snprintf(line, sizeof line, "%s; the next open deletes it", what);
    leftover(c, name, line);
    c->in_leftover = 1;
  }
  return 1;
}

/* Whether any name is one a database uses (LOCK and LOG are the first an open creates). */
static int has_db_file(char **names, size_t count) {
  for (size_t i = 0; i < count; i++) {
    int type;
    uint64_t number;
    if (filename_parse(names[i], &type, &number)) return 1;
  }
  return 0;
}

int db_dir_holds_data(mf_env *env, const char *dbname, char **names, size_t count) {
  for (size_t i = 0; i < count; i++) {
    int type;
    uint64_t number, size = 0;
    if (!filename_parse(names[i], &type, &number)) continue;
    if (type == MF_FILE_TABLE || type == MF_FILE_BLOB) return 1;
    if (type != MF_FILE_WAL) continue;
    char *name = join(dbname, names[i]);
    /* A WAL holding only its file header record has no writes in it. */
    int has = !name || env->file_size(env, name, &size) != MAYFLY_OK ||
              size > WAL_FRAGMENT_HEADER_SIZE + WAL_FILE_HEADER_SIZE;
    free(name);
    if (has) return 1;
  }
  return 0;
}

static int cmp_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_check(checker *c, char **names, size_t count) {
  version_set *vs = NULL;
  int rc = version_set_create(c->env, c->dbname, NULL, NULL, &vs);
  if (rc != MAYFLY_OK) {
    problem(c, "%s: %s", c->dbname, why(rc));
    return;
  }
  c->vs = vs;
  rc = version_set_recover(vs);
  if (rc == MAYFLY_OK) c->v = version_set_current(vs);
  else if (rc == MAYFLY_ENOTFOUND && db_dir_holds_data(c->env, c->dbname, names, count))
    problem(c, "%s/CURRENT: missing, but the directory holds tables, blob files or WAL records",
            c->dbname);
  else if (rc == MAYFLY_ENOTFOUND && !has_db_file(names, count))
    problem(c, "%s: not a database: no CURRENT and no file of one", c->dbname);
  else if (rc == MAYFLY_ENOTFOUND) /* as mayfly_open decides (db.c, has_db_files) */
    leftover(c, c->dbname, "no CURRENT and no data: a database creation that did not finish; "
             "an open with create_if_missing starts it over");
  else problem(c, "MANIFEST: %s", why(rc));

  /* Logs and blob files first: blob readers must be open before the tables are read. */
  for (size_t i = 0; i < count; i++) {
    int type;
    uint64_t number;
    if (!filename_parse(names[i], &type, &number) || type == MF_FILE_TABLE) continue;
    char *name = join(c->dbname, names[i]);
    if (!name) break;
    if (!classify(c, name, type, number)) {
      free(name);
      continue;
    }
    if (type == MF_FILE_WAL) check_log(c, name, WAL_KIND_WAL, number);
    if (type == MF_FILE_MANIFEST) check_log(c, name, WAL_KIND_MANIFEST, number);
    if (type == MF_FILE_BLOB) {
      check_blob *nb = realloc(c->blobs, (c->num_blobs + 1) * sizeof *nb);
      if (!nb) {
        free(name);
        break;
      }
      c->blobs = nb;
      check_blob *b = &c->blobs[c->num_blobs++];
      memset(b, 0, sizeof *b);
      b->number = number;
      b->name = name;
      scan_blob(c, b);
      c->in_leftover = 0;
      continue;
    }
    c->in_leftover = 0;
    free(name);
  }
  for (size_t i = 0; i < count; i++) {
    int type;
    uint64_t number;
    if (!filename_parse(names[i], &type, &number) || type != MF_FILE_TABLE) continue;
    char *name = join(c->dbname, names[i]);
    if (!name) break;
    if (classify(c, name, type, number)) check_table(c, name, number, find_table(c->v, number));
    c->in_leftover = 0;
    free(name);
  }
  if (c->v) check_version(c, names, count);
  if (c->unread_tables)
    warning(c, "blob garbage counts not rechecked: %d table%s could not be read",
            c->unread_tables, c->unread_tables == 1 ? "" : "s");
  version_set_destroy(vs);
  c->v = NULL;
  c->vs = NULL;
}

int db_check(const char *path, mf_env *env, FILE *report, db_check_counts *counts) {
  if (!env) env = env_posix();
  memset(counts, 0, sizeof *counts);
  if (!env->is_directory(env, path))
    return MF_ERR(MAYFLY_EINVAL, "%s: not a directory", path);
  mf_env *ro = NULL;
  int rc = env_fault_create(env, &ro);
  if (rc != MAYFLY_OK) return rc;
  env_fault_freeze(ro, 1); /* read-only: any change would fail instead of happening */
  checker c;
  memset(&c, 0, sizeof c);
  c.env = ro;
  c.dbname = path;
  c.report = report;
  char **names = NULL;
  size_t count = 0;
  rc = ro->list_dir(ro, path, &names, &count);
  if (rc == MAYFLY_OK) {
    if (count > 1) qsort(names, count, sizeof *names, cmp_name); /* a stable report order */
    run_check(&c, names, count);
    env_free_names(names, count);
  }
  for (size_t i = 0; i < c.num_blobs; i++) {
    blob_reader_close(c.blobs[i].reader);
    free(c.blobs[i].name);
  }
  free(c.blobs);
  mf_buf_free(&c.value);
  ro->destroy(ro);
  if (rc == MAYFLY_OK && report)
    fprintf(report, "%s: %" PRIu64 " problem%s, %" PRIu64 " leftover file%s\n", path,
            c.problems, c.problems == 1 ? "" : "s", c.leftovers, c.leftovers == 1 ? "" : "s");
  counts->problems = c.problems;
  counts->leftovers = c.leftovers;
  return rc;
}
