/* Tests of mayfly_bench's flag parser (bench/flags.c): valid flags are accepted with their
 * db_bench meanings and defaults, and every unknown flag or malformed value is refused with
 * a message naming it. Built by bench/CMakeLists.txt (it needs flags.c, not the engine).
 * What only the whole program can check (unknown benchmark or engine names, a compression an
 * engine lacks) is covered by bench/test_bench_cli.sh. Not randomized. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "flags.h"

/* Parses the NULL-terminated argument list (after the program name). */
static int parse(struct bench_flags *f, char *err, size_t err_len, const char *const *args)
{
  char *argv[64] = {"mayfly_bench"};
  int argc = 1;
  for (; args[argc - 1] != NULL && argc < 63; argc++)
    argv[argc] = (char *)args[argc - 1];
  return flags_parse(argc, argv, f, err, err_len);
}

static void test_defaults(void **state)
{
  struct bench_flags f;
  char err[256];
  const char *none[] = {NULL};
  assert_int_equal(parse(&f, err, sizeof err, none), FLAGS_OK);
  assert_int_equal(f.num, 1000000);
  assert_int_equal(f.reads, 1000000); /* --reads defaults to --num */
  assert_int_equal(f.value_size, 100);
  assert_string_equal(f.compression_type, "none");
  assert_int_equal(f.sync, 0);
  assert_int_equal(f.disable_wal, 0);
  assert_int_equal(f.use_existing_db, 0);
  /* db_bench's mixgraph defaults. */
  assert_true(f.mix.get_ratio == 1.0 && f.mix.put_ratio == 0.0 && f.mix.seek_ratio == 0.0);
  assert_int_equal(f.mix.keyrange_num, 1);
  assert_int_equal(f.mix.max_scan_len, 10000);
  assert_int_equal(f.mix.max_value_size, 1024);
  assert_true(f.mix.sine_interval_ms == 10000 && f.mix.sine_a == 1 && f.mix.sine_d == 1);
  assert_int_equal(f.mix.sine, 0);
  assert_true(f.mix.value_scale == 1.0);
}

static void test_valid_flags(void **state)
{
  struct bench_flags f;
  char err[256];
  const char *args[] = {"--num=2000",
                        "--reads=-1",
                        "--value_size=0", /* empty values are legitimate */
                        "--use_existing_db",
                        "--sync=true",
                        "--compression_type=zstd",
                        "--stats_interval_seconds=2.5",
                        "--write_buffer_size=4MiB",
                        "--histogram",
                        "--keyrange_num=30",
                        "--keyrange_dist_a=14.18",
                        "--keyrange_dist_b=-2.917",
                        "--value_k=0.2615",
                        "--value_sigma=25.45",
                        "--mix_get_ratio=0.85",
                        "--mix_put_ratio=0.14",
                        "--mix_seek_ratio=0.01",
                        "--sine_a=1000",
                        "--sine_b=0.000000073",
                        "--mix_value_scale=8",
                        "--seed=7",
                        NULL};
  assert_int_equal(parse(&f, err, sizeof err, args), FLAGS_OK);
  assert_int_equal(f.num, 2000);
  assert_int_equal(f.reads, 2000);
  assert_int_equal(f.value_size, 0);
  assert_int_equal(f.use_existing_db, 1);
  assert_int_equal(f.sync, 1);
  assert_string_equal(f.compression_type, "zstd");
  assert_true(f.stats_interval_seconds == 2.5);
  assert_int_equal(f.shared.write_buffer_size, 4 << 20);
  assert_int_equal(f.histogram, 1);
  assert_int_equal(f.mix.keyrange_num, 30);
  assert_true(f.mix.keyrange_dist_b == -2.917);
  assert_true(f.mix.get_ratio == 0.85 && f.mix.seek_ratio == 0.01);
  assert_int_equal(f.mix.sine, 1); /* a sine_* parameter turns the pacing on */
  assert_true(f.mix.value_scale == 8.0);
  assert_int_equal(f.seed, 7);

  const char *off[] = {"--sine_a=5", "--sine_mix_rate=false", "--disable_wal=1", NULL};
  assert_int_equal(parse(&f, err, sizeof err, off), FLAGS_OK);
  assert_int_equal(f.mix.sine, 0); /* an explicit --sine_mix_rate wins */
  assert_int_equal(f.disable_wal, 1);

  const char *help[] = {"--num=5", "--help", NULL};
  assert_int_equal(parse(&f, err, sizeof err, help), FLAGS_HELP);
}

/* Each bad argument fails, and the message names the flag (and mentions want). */
static void test_bad_flags(void **state)
{
  static const struct {
    const char *arg;
    const char *want; /* in the message */
  } cases[] = {
      {"--nosuch=1", "unknown flag \"--nosuch\""},
      {"--nosuch", "unknown flag"},
      {"num=5", "bad argument"},
      {"--num=abc", "--num=abc: not an integer"},
      {"--num=-5", "--num=-5: out of range"},
      {"--num=12x", "not an integer"},
      {"--num=", "not an integer"},
      {"--num", "no value for"},
      {"--value_size=-1", "--value_size=-1: out of range"},
      {"--value_size=600000", "out of range"},
      {"--key_size=0", "out of range"},
      {"--threads=0", "out of range"},
      {"--duration=soon", "not a number"},
      {"--duration=nan", "not a number"},
      {"--zipf_theta=1", "out of range (0, 1)"},
      {"--compression_type=bogus", "--compression_type=bogus: not one of none, snappy, lz4, zstd"},
      {"--value_size_distribution=normal", "not one of fixed, uniform, pareto"},
      {"--key_distribution=latest", "not one of uniform, zipfian"},
      {"--sync=yes", "--sync=yes: not true, false, 1 or 0"},
      {"--write_buffer_size=4QB", "not a byte count"},
      {"--write_buffer_size=0", "out of range"},
      {"--stats_interval_seconds=-1", "out of range"},
      {"--keyrange_num=0", "out of range"},
      {"--mix_max_scan_len=0", "out of range"},
      {"--mix_value_scale=0", "out of range (0"},
      {"--sine_mix_rate_noise=2", "out of range"},
      {"--key_dist_a=-1", "out of range"},
      {"--seed=x", "--seed=x"},
      {"--json=", "--json needs a value"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct bench_flags f;
    char err[256];
    const char *args[] = {"--num=10", cases[i].arg, NULL};
    int rc = parse(&f, err, sizeof err, args);
    if (rc != FLAGS_ERROR || strstr(err, cases[i].want) == NULL)
      fail_msg("%s: rc %d, message \"%s\", expected an error with \"%s\"", cases[i].arg, rc, err,
               cases[i].want);
  }
}

/* Errors only the combination of flags reveals. */
static void test_bad_combinations(void **state)
{
  struct bench_flags f;
  char err[256];
  const char *sync_nowal[] = {"--sync", "--disable_wal", NULL};
  assert_int_equal(parse(&f, err, sizeof err, sync_nowal), FLAGS_ERROR);
  assert_non_null(strstr(err, "--sync and --disable_wal"));
  const char *short_keys[] = {"--key_size=4", "--num=100000", NULL};
  assert_int_equal(parse(&f, err, sizeof err, short_keys), FLAGS_ERROR);
  assert_non_null(strstr(err, "--key_size=4 is too small"));
  const char *no_mix[] = {"--mix_get_ratio=0", NULL};
  assert_int_equal(parse(&f, err, sizeof err, no_mix), FLAGS_ERROR);
  assert_non_null(strstr(err, "all 0"));
}

static void test_usage_lists_new_flags(void **state)
{
  char buf[16384];
  FILE *out = fmemopen(buf, sizeof buf, "w");
  assert_non_null(out);
  flags_usage(out, "mayfly leveldb");
  fclose(out);
  static const char *const names[] = {
      "--use_existing_db", "--sync",      "--disable_wal",   "--compression_type",
      "--stats_interval_seconds", "mixgraph", "--keyrange_dist_a", "--mix_value_scale",
      "--sine_mix_rate_interval_milliseconds", "compact", "engines built in: mayfly leveldb"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strstr(buf, names[i]) == NULL)
      fail_msg("the usage text does not mention %s", names[i]);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),         cmocka_unit_test(test_valid_flags),
      cmocka_unit_test(test_bad_flags),        cmocka_unit_test(test_bad_combinations),
      cmocka_unit_test(test_usage_lists_new_flags),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
