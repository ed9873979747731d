/* demo: a tour of mayfly's public API in one small program.
 *
 *   demo [DIR]     (default ./demo-db; any previous database there is destroyed first)
 *
 * It writes 1000 keys, applies a batch of puts and deletes atomically, deletes one key,
 * reads keys back, iterates forwards over everything and backwards over a range, takes a
 * snapshot, closes, reopens and checks that everything survived. Every failure prints the
 * error code's name and the database's detail message and exits with status 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mayfly.h"

#define NUM_KEYS 1000

static mayfly_db *g_db; /* for error messages */

static void check(int rc, const char *what)
{
  if (rc == MAYFLY_OK)
    return;
  fprintf(stderr, "demo: %s failed: %s", what, mayfly_strerror(rc));
  if (g_db != NULL)
    fprintf(stderr, ": %s", mayfly_errmsg(g_db));
  fprintf(stderr, "\n");
  exit(1);
}

static void fail(const char *fmt, const char *detail)
{
  fprintf(stderr, "demo: ");
  fprintf(stderr, fmt, detail);
  fprintf(stderr, "\n");
  exit(1);
}

static void key_of(int i, char *buf, size_t len)
{
  snprintf(buf, len, "key%04d", i);
}

static void value_of(int i, char *buf, size_t len)
{
  snprintf(buf, len, "value of key %d", i);
}

/* Expects key to hold exactly want (want NULL: expects it to be absent). */
static void expect(mayfly_db *db, const mayfly_snapshot *snap, const char *key, const char *want)
{
  void *val = NULL;
  size_t vlen = 0;
  int rc = mayfly_get(db, snap, key, strlen(key), &val, &vlen);
  if (want == NULL) {
    if (rc != MAYFLY_ENOTFOUND)
      fail("%s should be absent but is not", key);
    return;
  }
  check(rc, "get");
  if (vlen != strlen(want) || memcmp(val, want, vlen) != 0)
    fail("%s has the wrong value", key);
  mayfly_free(val);
}

/* Counts the entries of a full forward scan. */
static int count_entries(mayfly_db *db)
{
  mayfly_iter *it = NULL;
  check(mayfly_iter_create(db, NULL, &it), "iter_create");
  int n = 0;
  for (mayfly_iter_seek_to_first(it); mayfly_iter_valid(it); mayfly_iter_next(it))
    n++;
  check(mayfly_iter_status(it), "iterate");
  mayfly_iter_destroy(it);
  return n;
}

static void write_data(mayfly_db *db)
{
  char key[32], val[64];
  for (int i = 0; i < NUM_KEYS; i++) {
    key_of(i, key, sizeof key);
    value_of(i, val, sizeof val);
    check(mayfly_put(db, key, strlen(key), val, strlen(val), 0), "put");
  }
  printf("wrote %d keys (key0000 .. key%04d)\n", NUM_KEYS, NUM_KEYS - 1);

  /* A batch is applied atomically: all of it or none of it is visible. */
  mayfly_batch *b = NULL;
  check(mayfly_batch_create(&b), "batch_create");
  check(mayfly_batch_put(b, "batch-a", 7, "first", 5), "batch_put");
  check(mayfly_batch_put(b, "batch-b", 7, "second", 6), "batch_put");
  check(mayfly_batch_put(b, "key0001", 7, "overwritten by the batch", 24), "batch_put");
  for (int i = 10; i < 20; i++) {
    key_of(i, key, sizeof key);
    check(mayfly_batch_delete(b, key, strlen(key)), "batch_delete");
  }
  size_t ops = mayfly_batch_count(b);
  check(mayfly_write(db, b, MAYFLY_SYNC), "write");
  mayfly_batch_destroy(b);
  printf("applied a batch of %zu operations (3 puts, 10 deletes: key0010 .. key0019), synced\n",
         ops);

  check(mayfly_delete(db, "key0500", 7, 0), "delete");
  printf("deleted key0500\n");
}

/* The checks that must hold both before and after the reopen. */
static void verify(mayfly_db *db)
{
  char key[32], val[64];
  for (int i = 0; i < NUM_KEYS; i += 97) {
    key_of(i, key, sizeof key);
    value_of(i, val, sizeof val);
    expect(db, NULL, key, (i >= 10 && i < 20) || i == 500 ? NULL : val);
  }
  expect(db, NULL, "key0001", "overwritten by the batch");
  expect(db, NULL, "batch-a", "first");
  expect(db, NULL, "batch-b", "second");
  expect(db, NULL, "key0015", NULL);
  expect(db, NULL, "key0500", NULL);
  int want = NUM_KEYS + 2 - 10 - 1;
  int n = count_entries(db);
  if (n != want) {
    char msg[64];
    snprintf(msg, sizeof msg, "%d entries, expected %d", n, want);
    fail("forward scan found %s", msg);
  }
}

/* Walks backwards from the last key <= "key0503" down to "key0495". */
static void backward_range(mayfly_db *db)
{
  mayfly_iter *it = NULL;
  check(mayfly_iter_create(db, NULL, &it), "iter_create");
  /* seek finds the first key >= target; stepping back once when it overshoots gives the
   * last key <= target. */
  mayfly_iter_seek(it, "key0503", 7);
  if (!mayfly_iter_valid(it))
    mayfly_iter_seek_to_last(it);
  size_t klen = 0;
  const char *k = mayfly_iter_valid(it) ? mayfly_iter_key(it, &klen) : NULL;
  if (k != NULL && (klen != 7 || memcmp(k, "key0503", 7) > 0))
    mayfly_iter_prev(it);
  printf("backwards from key0503 to key0495:");
  int n = 0;
  for (; mayfly_iter_valid(it); mayfly_iter_prev(it)) {
    k = mayfly_iter_key(it, &klen);
    if (klen == 7 && memcmp(k, "key0495", 7) < 0)
      break;
    printf(" %.*s", (int)klen, k);
    n++;
  }
  printf("\n");
  check(mayfly_iter_status(it), "iterate backwards");
  mayfly_iter_destroy(it);
  if (n != 8) /* 503 .. 495 is 9 keys, minus the deleted key0500 */
    fail("backward range: %s", "expected 8 keys");
}

int main(int argc, char **argv)
{
  const char *path = argc > 1 ? argv[1] : "./demo-db";
  printf("mayfly %s, database in %s\n", mayfly_version(), path);
  check(mayfly_destroy(path), "destroy of the previous demo database");

  mayfly_options *opt = NULL;
  check(mayfly_options_create(&opt), "options_create");
  check(mayfly_options_parse(opt, "create_if_missing=true;write_buffer_size=1MiB"),
        "options_parse");
  mayfly_db *db = NULL;
  check(mayfly_open(path, opt, &db), "open");
  g_db = db;

  write_data(db);
  const mayfly_snapshot *snap = NULL;
  check(mayfly_snapshot_create(db, &snap), "snapshot_create");
  check(mayfly_put(db, "key0002", 7, "changed after the snapshot", 26, 0), "put");
  expect(db, snap, "key0002", "value of key 2");
  expect(db, NULL, "key0002", "changed after the snapshot");
  printf("a snapshot still reads the old value of key0002 after it was overwritten\n");
  mayfly_snapshot_release(db, snap);
  check(mayfly_put(db, "key0002", 7, "value of key 2", 14, 0), "put");

  verify(db);
  printf("read back %d sampled keys, the batch and the deletes; a forward scan sees %d entries\n",
         NUM_KEYS / 97 + 1 + 5, count_entries(db));
  backward_range(db);

  check(mayfly_flush(db), "flush");
  char *files = NULL;
  check(mayfly_property(db, "mayfly.num-files-at-level0", &files), "property");
  printf("flushed the memtable: %s table file(s) at level 0\n", files);
  mayfly_free(files);

  check(mayfly_close(db), "close");
  g_db = NULL;
  check(mayfly_open(path, opt, &db), "reopen");
  g_db = db;
  verify(db);
  printf("closed and reopened: every check passed again\n");
  check(mayfly_close(db), "close");
  g_db = NULL;
  mayfly_options_destroy(opt);
  printf("demo finished: OK\n");
  return 0;
}
