/* mayfly: a command-line tool for a database directory.
 *
 *   mayfly check DB                  offline consistency check (src/db/db_check.h); never
 *                                    writes; exit 0 clean (leftovers of a crash
 *                                    allowed), 1 problems found
 *   mayfly get DB KEY                prints the value
 *   mayfly put DB KEY VALUE          writes with MAYFLY_SYNC (creates the database)
 *   mayfly scan DB [--limit N]       prints "key\tvalue" lines in key order
 *   mayfly stats DB                  prints mayfly.stats and mayfly.blob-stats
 * Every command but check takes --options "name=value;..." before the command.
 * Exit status: 0 success, 1 failure (or problems found, or key not found), 2 usage error.
 * Keys and values are printed as they are, with bytes outside printable ASCII escaped \xNN.
 * See docs/reliability.md. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/db_check.h"
#include "mayfly.h"

static int usage(void) {
  fprintf(stderr,
          "usage: mayfly check DB\n"
          "       mayfly [--options SPEC] get DB KEY\n"
          "       mayfly [--options SPEC] put DB KEY VALUE\n"
          "       mayfly [--options SPEC] scan DB [--limit N]\n"
          "       mayfly [--options SPEC] stats DB\n");
  return 2;
}

static void print_escaped(const void *data, size_t n) {
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++) {
    if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') putchar(p[i]);
    else printf("\\x%02x", p[i]);
  }
}

/* put creates the database. The reading commands open it as an application would (recovery
 * writes the WALs into a table), but refuse a missing database instead of creating one, and
 * a damaged WAL instead of dropping what follows the damage (absolute recovery): a mistyped
 * path or a look at a damaged database must not change it. --options can say otherwise. */
static int open_db(const char *path, const char *spec, int create, mayfly_db **db) {
  mayfly_options *opt = NULL;
  int rc = mayfly_options_create(&opt);
  if (rc == MAYFLY_OK && !create) rc = mayfly_options_set(opt, "create_if_missing", "false");
  if (rc == MAYFLY_OK && !create) rc = mayfly_options_set(opt, "wal_recovery_mode", "absolute");
  if (rc == MAYFLY_OK && spec) rc = mayfly_options_parse(opt, spec);
  if (rc == MAYFLY_OK && create) rc = mayfly_options_set(opt, "create_if_missing", "true");
  if (rc != MAYFLY_OK) {
    fprintf(stderr, "mayfly: options: %s (%s)\n", mayfly_strerror(rc), mayfly_errmsg(NULL));
    mayfly_options_destroy(opt);
    return rc;
  }
  rc = mayfly_open(path, opt, db);
  mayfly_options_destroy(opt);
  if (rc != MAYFLY_OK)
    fprintf(stderr, "mayfly: open %s: %s (%s)\n", path, mayfly_strerror(rc), mayfly_errmsg(NULL));
  return rc;
}

static int cmd_check(const char *path) {
  db_check_counts counts;
  int rc = db_check(path, NULL, stdout, &counts);
  if (rc != MAYFLY_OK) {
    fprintf(stderr, "mayfly: check %s: %s (%s)\n", path, mayfly_strerror(rc), mayfly_errmsg(NULL));
    return 2;
  }
  return counts.problems ? 1 : 0; /* leftovers are normal after a crash */
}

static int cmd_get(mayfly_db *db, const char *key) {
  void *v = NULL;
  size_t vlen = 0;
  int rc = mayfly_get(db, NULL, key, strlen(key), &v, &vlen);
  if (rc == MAYFLY_ENOTFOUND) {
    fprintf(stderr, "mayfly: %s: not found\n", key);
    return 1;
  }
  if (rc != MAYFLY_OK) {
    fprintf(stderr, "mayfly: get: %s (%s)\n", mayfly_strerror(rc), mayfly_errmsg(db));
    return 1;
  }
  print_escaped(v, vlen);
  putchar('\n');
  mayfly_free(v);
  return 0;
}

static int cmd_put(mayfly_db *db, const char *key, const char *value) {
  int rc = mayfly_put(db, key, strlen(key), value, strlen(value), MAYFLY_SYNC);
  if (rc != MAYFLY_OK) {
    fprintf(stderr, "mayfly: put: %s (%s)\n", mayfly_strerror(rc), mayfly_errmsg(db));
    return 1;
  }
  return 0;
}

static int cmd_scan(mayfly_db *db, uint64_t limit) {
  mayfly_iter *it = NULL;
  int rc = mayfly_iter_create(db, NULL, &it);
  if (rc != MAYFLY_OK) {
    fprintf(stderr, "mayfly: scan: %s (%s)\n", mayfly_strerror(rc), mayfly_errmsg(db));
    return 1;
  }
  uint64_t n = 0;
  for (mayfly_iter_seek_to_first(it); mayfly_iter_valid(it) && n < limit; mayfly_iter_next(it)) {
    size_t klen, vlen;
    const void *k = mayfly_iter_key(it, &klen);
    const void *v = mayfly_iter_value(it, &vlen);
    print_escaped(k, klen);
    putchar('\t');
    print_escaped(v, vlen);
    putchar('\n');
    n++;
  }
  rc = mayfly_iter_status(it);
  mayfly_iter_destroy(it);
  if (rc != MAYFLY_OK) {
    fprintf(stderr, "mayfly: scan: %s (%s)\n", mayfly_strerror(rc), mayfly_errmsg(db));
    return 1;
  }
  return 0;
}

static int cmd_stats(mayfly_db *db) {
  static const char *const props[] = {"mayfly.stats", "mayfly.blob-stats"};
  for (size_t i = 0; i < sizeof props / sizeof *props; i++) {
    char *text = NULL;
    int rc = mayfly_property(db, props[i], &text);
    if (rc != MAYFLY_OK) {
      fprintf(stderr, "mayfly: %s: %s\n", props[i], mayfly_strerror(rc));
      return 1;
    }
    printf("%s", text);
    if (text[0] && text[strlen(text) - 1] != '\n') putchar('\n');
    mayfly_free(text);
  }
  return 0;
}

/* Standard streams a parent closed are opened on /dev/null, so that the descriptors 0-2 are
 * never a database's files (the database's LOCK would otherwise become stdout, and a scan
 * would write into it). */
static void guard_std_fds(void) {
  for (int fd = 0; fd <= 2; fd++)
    if (fcntl(fd, F_GETFD) == -1 && errno == EBADF && open("/dev/null", O_RDWR) != fd) exit(1);
}

/* The exit status once the output is flushed: output that could not be written (a full
 * disk, a closed pipe) is a failure. */
static int finish(int status) {
  int e = fflush(stdout) != 0 ? errno : 0; /* an earlier failed write leaves only ferror */
  if (e || ferror(stdout)) {
    fprintf(stderr, "mayfly: writing the output failed%s%s\n", e ? ": " : "",
            e ? strerror(e) : "");
    if (status == 0) status = 1;
  }
  return status;
}

static int run(int argc, char **argv);

int main(int argc, char **argv) {
  guard_std_fds();
  return finish(run(argc, argv));
}

static int run(int argc, char **argv) {
  int i = 1;
  const char *spec = NULL;
  if (i + 1 < argc && strcmp(argv[i], "--options") == 0) {
    spec = argv[i + 1];
    i += 2;
  }
  if (argc - i < 2) return usage();
  const char *cmd = argv[i], *path = argv[i + 1];
  char **rest = argv + i + 2;
  int nrest = argc - i - 2;
  if (strcmp(cmd, "check") == 0) return nrest == 0 && !spec ? cmd_check(path) : usage();
  uint64_t limit = UINT64_MAX;
  if (strcmp(cmd, "get") == 0 && nrest != 1) return usage();
  if (strcmp(cmd, "put") == 0 && nrest != 2) return usage();
  if (strcmp(cmd, "stats") == 0 && nrest != 0) return usage();
  if (strcmp(cmd, "scan") == 0) {
    if (nrest == 2 && strcmp(rest[0], "--limit") == 0) {
      if (rest[1][0] < '0' || rest[1][0] > '9') return usage(); /* no sign, no empty value */
      char *end = NULL;
      errno = 0;
      limit = strtoull(rest[1], &end, 10);
      if (!end || *end || errno) return usage();
    } else if (nrest != 0) {
      return usage();
    }
  } else if (strcmp(cmd, "get") != 0 && strcmp(cmd, "put") != 0 && strcmp(cmd, "stats") != 0) {
    return usage();
  }
  mayfly_db *db = NULL;
  if (open_db(path, spec, strcmp(cmd, "put") == 0, &db) != MAYFLY_OK) return 1;
  int status;
  if (strcmp(cmd, "get") == 0) status = cmd_get(db, rest[0]);
  else if (strcmp(cmd, "put") == 0) status = cmd_put(db, rest[0], rest[1]);
  else if (strcmp(cmd, "scan") == 0) status = cmd_scan(db, limit);
  else status = cmd_stats(db);
  int rc = mayfly_close(db);
  if (rc != MAYFLY_OK) {
    fprintf(stderr, "mayfly: close: %s\n", mayfly_strerror(rc));
    if (status == 0) status = 1;
  }
  return status;
}
