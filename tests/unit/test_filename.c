/* Tests for database file names: exact spelling, make/parse round trips, and rejection of
 * names that are not ours. Randomized round trips print their seed; MAYFLY_TEST_SEED
 * replays one. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/random.h"
#include "version/filename.h"

typedef char *(*numbered_fn)(const char *dbname, uint64_t number);

static const struct {
  numbered_fn make;
  int type;
} numbered_kinds[] = {
    {filename_wal, MF_FILE_WAL},           {filename_table, MF_FILE_TABLE},
    {filename_blob, MF_FILE_BLOB},         {filename_manifest, MF_FILE_MANIFEST},
    {filename_temp, MF_FILE_TEMP},         {filename_options, MF_FILE_OPTIONS},
};
#define NUM_KINDS (sizeof numbered_kinds / sizeof numbered_kinds[0])

static void expect_name(char *got, const char *want) {
  assert_non_null(got);
  assert_string_equal(got, want);
  free(got);
}

static void test_spelling(void **state) {
  (void)state;
  expect_name(filename_wal("db", 123), "db/000123.log");
  expect_name(filename_table("db", 7), "db/000007.sst");
  expect_name(filename_blob("/a/b", 1234567), "/a/b/1234567.blob");
  expect_name(filename_manifest("db", 5), "db/MANIFEST-000005");
  expect_name(filename_current("db"), "db/CURRENT");
  expect_name(filename_lock("db"), "db/LOCK");
  expect_name(filename_temp("db", 0), "db/000000.dbtmp");
  expect_name(filename_info_log("db"), "db/LOG");
  expect_name(filename_options("db", 42), "db/OPTIONS-000042");
  expect_name(filename_table("db", UINT64_MAX), "db/18446744073709551615.sst");
}

/* Parses the part after the last '/'. */
static int parse_path(const char *path, int *type, uint64_t *number) {
  const char *slash = strrchr(path, '/');
  return filename_parse(slash ? slash + 1 : path, type, number);
}

static void check_round_trip(uint64_t number) {
  for (size_t k = 0; k < NUM_KINDS; k++) {
    char *name = numbered_kinds[k].make("some/db", number);
    assert_non_null(name);
    int type = -1;
    uint64_t got = ~number;
    assert_int_equal(parse_path(name, &type, &got), 1);
    assert_int_equal(type, numbered_kinds[k].type);
    assert_true(got == number);
    free(name);
  }
}

static void test_round_trips(void **state) {
  (void)state;
  const uint64_t fixed[] = {0,         1,         9, 10, 999999, 1000000, 123456789,
                            MF_FILE_NUMBER_LIMIT, MF_MAX_FILE_NUMBER - 1};
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) check_round_trip(fixed[i]);

  const char *env = getenv("MAYFLY_TEST_SEED");
  uint64_t seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
  printf("seed %llu (replay with MAYFLY_TEST_SEED=%llu)\n", (unsigned long long)seed,
         (unsigned long long)seed);
  mf_random rnd;
  mf_random_seed(&rnd, seed);
  for (int i = 0; i < 1000; i++) {
    uint64_t n = mf_random_next(&rnd) >> mf_random_uniform(&rnd, 64);
    check_round_trip(n % MF_MAX_FILE_NUMBER);
  }

  struct {
    char *(*make)(const char *dbname);
    int type;
  } unnumbered[] = {{filename_current, MF_FILE_CURRENT},
                    {filename_lock, MF_FILE_LOCK},
                    {filename_info_log, MF_FILE_INFO_LOG}};
  for (size_t k = 0; k < 3; k++) {
    char *name = unnumbered[k].make("db");
    int type = -1;
    uint64_t number = 77;
    assert_int_equal(parse_path(name, &type, &number), 1);
    assert_int_equal(type, unnumbered[k].type);
    assert_true(number == 0);
    free(name);
  }
}

static void test_parse_accepts(void **state) {
  (void)state;
  int type;
  uint64_t number;
  assert_int_equal(filename_parse("123.sst", &type, &number), 1); /* fewer than 6 digits */
  assert_int_equal(type, MF_FILE_TABLE);
  assert_true(number == 123);
  assert_int_equal(filename_parse("0000000000000000000042.log", &type, &number), 1);
  assert_int_equal(type, MF_FILE_WAL);
  assert_true(number == 42);
  assert_int_equal(filename_parse("1152921504606846975.blob", &type, &number), 1);
  assert_true(number == MF_MAX_FILE_NUMBER - 1);
}

static void test_parse_rejects(void **state) {
  (void)state;
  static const char *const junk[] = {
      "",
      "123",
      "000123.sst.bak",
      "000123.sst~",
      "000123.",
      ".sst",
      "abc.sst",
      "-1.sst",
      "+1.sst",
      " 1.sst",
      "1 .sst",
      "0x10.sst",
      "000123.SST",
      "000123.ldb",
      "MANIFEST-",
      "MANIFEST",
      "MANIFEST-12a",
      "MANIFEST-12 ",
      "MANIFEST--1",
      "MANIFEST-+1",
      "manifest-000001",
      "OPTIONS-",
      "OPTIONS-x",
      "CURRENT.bak",
      "CURRENTX",
      "xCURRENT",
      "LOCK2",
      "LOG.old",
      "LOGX",
      "1152921504606846976.sst",   /* MF_MAX_FILE_NUMBER */
      "18446744073709551615.log",  /* UINT64_MAX: would wrap the file number counter */
      "18446744073709551616.sst",  /* UINT64_MAX + 1 */
      "99999999999999999999.log",  /* overflow */
      "MANIFEST-18446744073709551616",
      "OPTIONS-123456789012345678901234567890",
      "db/000123.sst",             /* directory part: not a bare name */
  };
  for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
    int type = -7;
    uint64_t number = 99;
    if (filename_parse(junk[i], &type, &number) != 0) fail_msg("accepted \"%s\"", junk[i]);
    /* A rejected name leaves the outputs alone. */
    assert_int_equal(type, -7);
    assert_true(number == 99);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_spelling),
      cmocka_unit_test(test_round_trips),
      cmocka_unit_test(test_parse_accepts),
      cmocka_unit_test(test_parse_rejects),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
