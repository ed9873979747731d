/* An outside program built against an installed mayfly: it includes only <mayfly.h> and links
 * through pkg-config (tests/install/run.sh builds it against the static and the shared
 * library). It opens a database in a fresh temporary directory, writes, reads, closes and
 * destroys it. Exit status 0 means the installed headers, library and mayfly.pc work. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */

#include <mayfly.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failed(const char *what, int rc, mayfly_db *db)
{
  fprintf(stderr, "consumer: %s: %s%s%s\n", what, mayfly_strerror(rc), db != NULL ? ": " : "",
          db != NULL ? mayfly_errmsg(db) : "");
  return 1;
}

int main(void)
{
  const char *tmp = getenv("TMPDIR");
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/mayfly-consumer-XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
  if (mkdtemp(dir) == NULL) {
    perror("consumer: mkdtemp");
    return 1;
  }
  char path[4200];
  snprintf(path, sizeof path, "%s/db", dir);

  mayfly_db *db = NULL;
  int rc = mayfly_open(path, NULL, &db);
  if (rc != MAYFLY_OK)
    return failed("open", rc, NULL);
  rc = mayfly_put(db, "hello", 5, "world", 5, MAYFLY_SYNC);
  if (rc != MAYFLY_OK)
    return failed("put", rc, db);
  void *val = NULL;
  size_t vlen = 0;
  rc = mayfly_get(db, NULL, "hello", 5, &val, &vlen);
  if (rc != MAYFLY_OK)
    return failed("get", rc, db);
  if (vlen != 5 || memcmp(val, "world", 5) != 0) {
    fprintf(stderr, "consumer: get returned the wrong value\n");
    return 1;
  }
  mayfly_free(val);
  rc = mayfly_get(db, NULL, "absent", 6, &val, &vlen);
  if (rc != MAYFLY_ENOTFOUND || val != NULL) {
    fprintf(stderr, "consumer: get of an absent key returned %s\n", mayfly_strerror(rc));
    return 1;
  }
  rc = mayfly_close(db);
  if (rc != MAYFLY_OK)
    return failed("close", rc, NULL);
  rc = mayfly_destroy(path);
  if (rc != MAYFLY_OK)
    return failed("destroy", rc, NULL);
  rmdir(path);
  rmdir(dir);
  printf("consumer: mayfly %s works\n", mayfly_version());
  return 0;
}
