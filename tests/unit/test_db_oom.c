/* Out of memory on the write path: a write whose batch cannot be copied for the log fails
 * with MAYFLY_ENOMEM, writes nothing, and leaves the database writable (a transient
 * allocation failure is not a background error).
 *
 * The test binary is linked with -Wl,--wrap=realloc (CMakeLists.txt): once armed, the next
 * realloc of at least `fail_at` bytes returns NULL. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/options.h"
#include "env/env.h"
#include "mayfly.h"

#define DBNAME "/db"

void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n);

static int armed;
static size_t fail_at;
static int failures;

void *__wrap_realloc(void *p, size_t n) {
  if (armed && n >= fail_at) {
    armed = 0;
    failures++;
    return NULL;
  }
  return __real_realloc(p, n);
}

static void expect_filled(mayfly_db *db, const char *key, size_t vlen, char fill) {
  void *v = NULL;
  size_t len = 0;
  int rc = mayfly_get(db, NULL, key, strlen(key), &v, &len);
  if (rc != MAYFLY_OK) fail_msg("get %s: %s", key, mayfly_errmsg(db));
  assert_int_equal(len, vlen);
  for (size_t i = 0; i < len; i++)
    if (((char *)v)[i] != fill) fail_msg("get %s: byte %zu differs", key, i);
  mayfly_free(v);
}

static void test_batch_copy_fails(void **state) {
  (void)state;
  mf_env *env;
  assert_int_equal(env_mem_create(&env), MAYFLY_OK);
  struct mayfly_options o;
  options_init_defaults(&o);
  options_set_env(&o, env);
  mayfly_db *db;
  assert_int_equal(mayfly_open(DBNAME, &o, &db), MAYFLY_OK);

  enum { BIG = 1 << 20 };
  char *value = malloc(BIG);
  assert_non_null(value);
  memset(value, 'b', BIG);
  mayfly_batch *b;
  assert_int_equal(mayfly_batch_create(&b), MAYFLY_OK);
  assert_int_equal(mayfly_batch_put(b, "big", 3, value, BIG), MAYFLY_OK);

  fail_at = BIG / 2;
  armed = 1;
  int rc = mayfly_write(db, b, 0);
  armed = 0;
  assert_int_equal(failures, 1);
  assert_int_equal(rc, MAYFLY_ENOMEM);
  assert_true(strlen(mayfly_errmsg(db)) > 0);
  void *v = NULL;
  size_t len = 0;
  assert_int_equal(mayfly_get(db, NULL, "big", 3, &v, &len), MAYFLY_ENOTFOUND);

  /* The database goes on: the same batch and a small write succeed, and both survive a
   * reopen. */
  assert_int_equal(mayfly_put(db, "small", 5, "ssss", 4, 0), MAYFLY_OK);
  assert_int_equal(mayfly_write(db, b, MAYFLY_SYNC), MAYFLY_OK);
  expect_filled(db, "big", BIG, 'b');
  assert_int_equal(mayfly_close(db), MAYFLY_OK);
  assert_int_equal(mayfly_open(DBNAME, &o, &db), MAYFLY_OK);
  expect_filled(db, "big", BIG, 'b');
  expect_filled(db, "small", 4, 's');
  assert_int_equal(mayfly_close(db), MAYFLY_OK);

  mayfly_batch_destroy(b);
  free(value);
  env->destroy(env);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_batch_copy_fails),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
