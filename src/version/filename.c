#include "version/filename.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

/* printf into a malloc'd string: measure, allocate, print. */
static char *make_name(const char *fmt, ...) MF_PRINTF(1, 2);
static char *make_name(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return NULL;
  char *s = malloc((size_t)n + 1);
  if (!s) return NULL;
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}

static char *numbered(const char *dbname, uint64_t number, const char *suffix) {
  return make_name("%s/%06llu.%s", dbname, (unsigned long long)number, suffix);
}

static char *prefixed(const char *dbname, const char *prefix, uint64_t number) {
  return make_name("%s/%s-%06llu", dbname, prefix, (unsigned long long)number);
}

char *filename_wal(const char *dbname, uint64_t number) { return numbered(dbname, number, "log"); }
char *filename_table(const char *dbname, uint64_t number) {
  return numbered(dbname, number, "sst");
}
char *filename_blob(const char *dbname, uint64_t number) {
  return numbered(dbname, number, "blob");
}
char *filename_temp(const char *dbname, uint64_t number) {
  return numbered(dbname, number, "dbtmp");
}
char *filename_manifest(const char *dbname, uint64_t number) {
  return prefixed(dbname, "MANIFEST", number);
}
char *filename_options(const char *dbname, uint64_t number) {
  return prefixed(dbname, "OPTIONS", number);
}
char *filename_current(const char *dbname) { return make_name("%s/CURRENT", dbname); }
char *filename_lock(const char *dbname) { return make_name("%s/LOCK", dbname); }
char *filename_info_log(const char *dbname) { return make_name("%s/LOG", dbname); }

/* Consumes a run of decimal digits from *p into *out. Returns 0 when there is no digit or the
 * value overflows 64 bits. strtoull is not used: it accepts signs and blanks, and saturates. */
static int parse_number(const char **p, uint64_t *out) {
  const char *s = *p;
  uint64_t v = 0;
  if (*s < '0' || *s > '9') return 0;
  for (; *s >= '0' && *s <= '9'; s++) {
    unsigned d = (unsigned)(*s - '0');
    v = v * 10 + d;
    if (v >= MF_MAX_FILE_NUMBER) return 0;
  }
  *p = s;
  *out = v;
  return 1;
}

int filename_parse(const char *name, int *type, uint64_t *number) {
  static const struct {
    const char *name;
    int type;
  } fixed[] = {{"CURRENT", MF_FILE_CURRENT}, {"LOCK", MF_FILE_LOCK}, {"LOG", MF_FILE_INFO_LOG}};
  static const struct {
    const char *prefix;
    int type;
  } prefixes[] = {{"MANIFEST-", MF_FILE_MANIFEST}, {"OPTIONS-", MF_FILE_OPTIONS}};
  static const struct {
    const char *suffix;
    int type;
  } suffixes[] = {{".log", MF_FILE_WAL},
                  {".sst", MF_FILE_TABLE},
                  {".blob", MF_FILE_BLOB},
                  {".dbtmp", MF_FILE_TEMP}};

  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
    if (strcmp(name, fixed[i].name) == 0) {
      *type = fixed[i].type;
      *number = 0;
      return 1;
    }
  }
  uint64_t num;
  for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
    size_t plen = strlen(prefixes[i].prefix);
    if (strncmp(name, prefixes[i].prefix, plen) != 0) continue;
    const char *p = name + plen;
    if (!parse_number(&p, &num) || *p != '\0') return 0;
    *type = prefixes[i].type;
    *number = num;
    return 1;
  }
  const char *p = name;
  if (!parse_number(&p, &num)) return 0;
  for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
    if (strcmp(p, suffixes[i].suffix) == 0) {
      *type = suffixes[i].type;
      *number = num;
      return 1;
    }
  }
  return 0;
}
