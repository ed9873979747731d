/* Tests for the options table (src/db/options.c) and the public options API.
 *
 * The expected defaults and ranges are written out here independently of the table, so a
 * change to the table must be matched by a deliberate change to this file.
 * The randomized round-trip test prints its seed; MAYFLY_TEST_SEED=<n> replays one. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/options.h"
#include "mayfly.h"
#include "util/error.h"
#include "util/random.h"
#include "util/slice.h"

/* ---- helpers ---- */

/* options_to_text as a malloc'd NUL-terminated string. */
static char *to_text(const struct mayfly_options *o) {
  mf_buf b = MF_BUF_INIT;
  assert_int_equal(options_to_text(o, &b), MAYFLY_OK);
  assert_int_equal(mf_buf_append(&b, "", 1), MAYFLY_OK);
  return b.data;
}

/* The value of `name` in options_to_text output, copied into buf. */
static const char *text_value(const struct mayfly_options *o, const char *name, char *buf,
                              size_t n) {
  char *text = to_text(o);
  char key[128];
  snprintf(key, sizeof key, "\n%s=", name);
  /* Prefix a newline so the first line matches like the others. */
  size_t len = strlen(text);
  char *framed = malloc(len + 2);
  assert_non_null(framed);
  framed[0] = '\n';
  memcpy(framed + 1, text, len + 1);
  char *at = strstr(framed, key);
  if (!at) fail_msg("option %s missing from options_to_text output:\n%s", name, text);
  at += strlen(key);
  size_t vlen = strcspn(at, "\n");
  assert_true(vlen < n);
  memcpy(buf, at, vlen);
  buf[vlen] = '\0';
  free(framed);
  free(text);
  return buf;
}

/* Parses options_to_text output line by line into *o with options_set. */
static void apply_text(struct mayfly_options *o, const char *text) {
  char line[256];
  while (*text) {
    size_t n = strcspn(text, "\n");
    assert_true(n < sizeof line);
    memcpy(line, text, n);
    line[n] = '\0';
    text += n + (text[n] == '\n');
    char *eq = strchr(line, '=');
    assert_non_null(eq);
    *eq = '\0';
    int rc = options_set(o, line, eq + 1, 0);
    if (rc) fail_msg("reparsing %s=%s failed: %s", line, eq + 1, mf_error_message());
  }
}

static void assert_options_equal(const struct mayfly_options *a, const struct mayfly_options *b) {
  char *ta = to_text(a), *tb = to_text(b);
  assert_string_equal(ta, tb);
  free(ta);
  free(tb);
  assert_int_equal(a->create_if_missing, b->create_if_missing);
  assert_int_equal(a->error_if_exists, b->error_if_exists);
  assert_int_equal(a->wal_recovery_mode, b->wal_recovery_mode);
  assert_int_equal(a->use_fsync, b->use_fsync);
  assert_int_equal(a->max_open_files, b->max_open_files);
  assert_int_equal(a->block_cache_size, b->block_cache_size);
  assert_int_equal(a->max_background_jobs, b->max_background_jobs);
  assert_int_equal(a->write_buffer_size, b->write_buffer_size);
  assert_int_equal(a->max_write_buffer_number, b->max_write_buffer_number);
  assert_int_equal(a->block_size, b->block_size);
  assert_int_equal(a->block_restart_interval, b->block_restart_interval);
  assert_int_equal(a->bloom_bits_per_key, b->bloom_bits_per_key);
  assert_int_equal(a->compression, b->compression);
  assert_int_equal(a->compression_level, b->compression_level);
  assert_int_equal(a->level0_file_num_compaction_trigger, b->level0_file_num_compaction_trigger);
  assert_int_equal(a->level0_slowdown_writes_trigger, b->level0_slowdown_writes_trigger);
  assert_int_equal(a->level0_stop_writes_trigger, b->level0_stop_writes_trigger);
  assert_int_equal(a->target_file_size_base, b->target_file_size_base);
  assert_int_equal(a->max_bytes_for_level_base, b->max_bytes_for_level_base);
  assert_memory_equal(&a->max_bytes_for_level_multiplier, &b->max_bytes_for_level_multiplier,
                      sizeof(double));
  assert_int_equal(a->max_mem_compaction_level, b->max_mem_compaction_level);
  assert_int_equal(a->level_compaction_dynamic_level_bytes,
                   b->level_compaction_dynamic_level_bytes);
  assert_int_equal(a->enable_blob_files, b->enable_blob_files);
  assert_int_equal(a->min_blob_size, b->min_blob_size);
  assert_int_equal(a->blob_file_size, b->blob_file_size);
  assert_int_equal(a->blob_compression, b->blob_compression);
  assert_int_equal(a->blob_file_starting_level, b->blob_file_starting_level);
  assert_int_equal(a->enable_blob_garbage_collection, b->enable_blob_garbage_collection);
  assert_memory_equal(&a->blob_garbage_collection_age_cutoff,
                      &b->blob_garbage_collection_age_cutoff, sizeof(double));
  assert_memory_equal(&a->blob_garbage_collection_force_threshold,
                      &b->blob_garbage_collection_force_threshold, sizeof(double));
  assert_int_equal(a->blob_gc_policy, b->blob_gc_policy);
  assert_int_equal(a->blob_cache_size, b->blob_cache_size);
  assert_string_equal(a->trace_dir, b->trace_dir);
  assert_int_equal(a->trace_key_hash, b->trace_key_hash);
  assert_int_equal(a->trace_gets, b->trace_gets);
}

static uint64_t test_seed(void) {
  const char *env = getenv("MAYFLY_TEST_SEED");
  uint64_t seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
  printf("seed %llu (replay with MAYFLY_TEST_SEED=%llu)\n", (unsigned long long)seed,
         (unsigned long long)seed);
  return seed;
}

/* ---- tests ---- */

static void test_defaults(void **state) {
  struct mayfly_options o;
  memset(&o, 0xa5, sizeof o);
  options_init_defaults(&o);
  assert_int_equal(o.create_if_missing, 1);
  assert_int_equal(o.error_if_exists, 0);
  assert_int_equal(o.wal_recovery_mode, MF_WAL_POINT_IN_TIME);
  assert_int_equal(o.use_fsync, 0);
  assert_int_equal(o.max_open_files, 1000);
  assert_int_equal(o.block_cache_size, 32u << 20);
  assert_int_equal(o.max_background_jobs, 2);
  assert_int_equal(o.write_buffer_size, 64u << 20);
  assert_int_equal(o.max_write_buffer_number, 2);
  assert_int_equal(o.block_size, 4096);
  assert_int_equal(o.block_restart_interval, 16);
  assert_int_equal(o.bloom_bits_per_key, 10);
  assert_int_equal(o.compression, MF_COMPRESSION_NONE);
  assert_int_equal(o.compression_level, 3);
  assert_int_equal(o.level0_file_num_compaction_trigger, 4);
  assert_int_equal(o.level0_slowdown_writes_trigger, 20);
  assert_int_equal(o.level0_stop_writes_trigger, 36);
  assert_int_equal(o.target_file_size_base, 64u << 20);
  assert_int_equal(o.max_bytes_for_level_base, 256u << 20);
  assert_true(o.max_bytes_for_level_multiplier == 10.0);
  assert_int_equal(o.max_mem_compaction_level, 2);
  assert_int_equal(o.level_compaction_dynamic_level_bytes, 0);
  assert_int_equal(o.enable_blob_files, 1);
  assert_int_equal(o.min_blob_size, 512);
  assert_int_equal(o.blob_file_size, 256u << 20);
  assert_int_equal(o.blob_compression, MF_COMPRESSION_NONE);
  assert_int_equal(o.blob_file_starting_level, 0);
  assert_int_equal(o.enable_blob_garbage_collection, 1);
  assert_true(o.blob_garbage_collection_age_cutoff == 0.25);
  assert_true(o.blob_garbage_collection_force_threshold == 1.0);
  assert_int_equal(o.blob_gc_policy, MF_BLOB_GC_AGE);
  assert_int_equal(o.blob_cache_size, 0);
  assert_string_equal(o.trace_dir, "");
  assert_int_equal(o.trace_key_hash, 0);
  assert_int_equal(o.trace_gets, 0);
  assert_ptr_equal(o.env, env_posix());
  assert_int_equal(options_validate(&o), MAYFLY_OK);

  /* The canonical dump of the defaults, in table order. */
  char *text = to_text(&o);
  assert_string_equal(text,
                      "create_if_missing=true\n"
                      "error_if_exists=false\n"
                      "wal_recovery_mode=point_in_time\n"
                      "use_fsync=false\n"
                      "max_open_files=1000\n"
                      "block_cache_size=32MiB\n"
                      "max_background_jobs=2\n"
                      "write_buffer_size=64MiB\n"
                      "max_write_buffer_number=2\n"
                      "memtable_bloom_size_ratio=0.01\n"
                      "block_size=4KiB\n"
                      "block_restart_interval=16\n"
                      "bloom_bits_per_key=10\n"
                      "compression=none\n"
                      "compression_level=3\n"
                      "level0_file_num_compaction_trigger=4\n"
                      "level0_slowdown_writes_trigger=20\n"
                      "level0_stop_writes_trigger=36\n"
                      "target_file_size_base=64MiB\n"
                      "max_bytes_for_level_base=256MiB\n"
                      "max_bytes_for_level_multiplier=10\n"
                      "max_mem_compaction_level=2\n"
                      "level_compaction_dynamic_level_bytes=false\n"
                      "enable_blob_files=true\n"
                      "min_blob_size=512\n"
                      "blob_file_size=256MiB\n"
                      "blob_compression=none\n"
                      "blob_file_starting_level=0\n"
                      "enable_blob_garbage_collection=true\n"
                      "blob_garbage_collection_age_cutoff=0.25\n"
                      "blob_garbage_collection_force_threshold=1\n"
                      "blob_gc_policy=age\n"
                      "blob_cache_size=0\n"
                      "max_bgerror_resume_count=10\n"
                      "bgerror_resume_retry_interval=100000\n"
                      "trace_dir=\n"
                      "trace_key_hash=false\n"
                      "trace_gets=false\n");
  free(text);
}

/* Every option set from text, read back in canonical form. */
static void test_set_every_option(void **state) {
  static const struct { const char *name, *value, *canonical; } cases[] = {
      {"create_if_missing", "no", "false"},
      {"error_if_exists", "YES", "true"},
      {"wal_recovery_mode", "absolute", "absolute"},
      {"use_fsync", "On", "true"},
      {"max_open_files", "20", "20"},
      {"block_cache_size", "0", "0"},
      {"max_background_jobs", "64", "64"},
      {"write_buffer_size", "100000", "100000"},
      {"max_write_buffer_number", "+5", "5"},
      {"block_size", "8k", "8KiB"},
      {"block_restart_interval", "1024", "1024"},
      {"bloom_bits_per_key", "0", "0"},
      {"compression", "ZSTD", "zstd"},
      {"compression_level", "-5", "-5"},
      {"level0_file_num_compaction_trigger", "1", "1"},
      {"level0_slowdown_writes_trigger", "10000", "10000"},
      {"level0_stop_writes_trigger", "0010000", "10000"},
      {"target_file_size_base", "16GiB", "16GiB"},
      {"max_bytes_for_level_base", "1048577", "1048577"},
      {"max_bytes_for_level_multiplier", "2.5", "2.5"},
      {"max_mem_compaction_level", "6", "6"},
      {"level_compaction_dynamic_level_bytes", "on", "true"},
      {"enable_blob_files", "off", "false"},
      {"min_blob_size", "4k", "4KiB"},
      {"blob_file_size", "64MiB", "64MiB"},
      {"blob_compression", "lz4", "lz4"},
      {"blob_file_starting_level", "2", "2"},
      {"enable_blob_garbage_collection", "0", "false"},
      {"blob_garbage_collection_age_cutoff", "0.5", "0.5"},
      {"blob_garbage_collection_force_threshold", "0.75", "0.75"},
      {"blob_gc_policy", "group", "group"},
      {"blob_cache_size", "1GiB", "1GiB"},
      {"max_bgerror_resume_count", "0", "0"},
      {"bgerror_resume_retry_interval", "60000000", "60000000"},
      {"trace_dir", "/var/tmp/my traces=1", "/var/tmp/my traces=1"},
      {"trace_key_hash", "yes", "true"},
      {"trace_gets", "1", "true"},
  };
  struct mayfly_options o;
  options_init_defaults(&o);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int rc = options_set(&o, cases[i].name, cases[i].value, 0);
    if (rc) fail_msg("%s=%s: rc %d: %s", cases[i].name, cases[i].value, rc, mf_error_message());
    char got[64];
    assert_string_equal(text_value(&o, cases[i].name, got, sizeof got), cases[i].canonical);
  }
  /* A few fields checked directly, so the text path is not testing itself. */
  assert_int_equal(o.create_if_missing, 0);
  assert_int_equal(o.wal_recovery_mode, MF_WAL_ABSOLUTE);
  assert_int_equal(o.compression, MF_COMPRESSION_ZSTD);
  assert_int_equal(o.compression_level, -5);
  assert_int_equal(o.block_size, 8192);
  assert_int_equal(o.target_file_size_base, 16ull << 30);
  assert_true(o.max_bytes_for_level_multiplier == 2.5);
  assert_int_equal(options_set(&o, "compression", "lz4", 0), MAYFLY_OK);
  assert_int_equal(o.compression, MF_COMPRESSION_LZ4);
  assert_string_equal(o.trace_dir, "/var/tmp/my traces=1");
  /* A string may be emptied again, and may be as long as the field allows. */
  assert_int_equal(options_set(&o, "trace_dir", "", 0), MAYFLY_OK);
  assert_string_equal(o.trace_dir, "");
  char longest[MF_OPTION_STRING_MAX];
  memset(longest, 'd', sizeof longest - 1);
  longest[sizeof longest - 1] = '\0';
  assert_int_equal(options_set(&o, "trace_dir", longest, 0), MAYFLY_OK);
  assert_string_equal(o.trace_dir, longest);

  /* Every bool spelling. */
  static const char *const truthy[] = {"true", "TRUE", "1", "yes", "on", "ON"};
  static const char *const falsy[] = {"false", "False", "0", "no", "off", "oFF"};
  for (size_t i = 0; i < 6; i++) {
    assert_int_equal(options_set(&o, "use_fsync", truthy[i], 0), MAYFLY_OK);
    assert_int_equal(o.use_fsync, 1);
    assert_int_equal(options_set(&o, "use_fsync", falsy[i], 0), MAYFLY_OK);
    assert_int_equal(o.use_fsync, 0);
  }
}

static void test_size_suffixes(void **state) {
  static const struct { const char *text; uint64_t bytes; } cases[] = {
      {"0", 0},
      {"4096", 4096},
      {"4k", 4096},
      {"4K", 4096},
      {"4kb", 4096},
      {"4KiB", 4096},
      {"4kib", 4096},
      {"3m", 3ull << 20},
      {"3MB", 3ull << 20},
      {"3MiB", 3ull << 20},
      {"2g", 2ull << 30},
      {"2Gb", 2ull << 30},
      {"2GiB", 2ull << 30},
      {"1t", 1ull << 40},
      {"1TB", 1ull << 40},
      {"1TiB", 1ull << 40},
      {"1099511627776", 1ull << 40},
      {"1536KiB", 1536ull << 10},
  };
  struct mayfly_options o;
  options_init_defaults(&o);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int rc = options_set(&o, "block_cache_size", cases[i].text, 0);
    if (rc) fail_msg("block_cache_size=%s: %s", cases[i].text, mf_error_message());
    if (o.block_cache_size != cases[i].bytes)
      fail_msg("block_cache_size=%s gave %llu, want %llu", cases[i].text,
               (unsigned long long)o.block_cache_size, (unsigned long long)cases[i].bytes);
  }
  /* Canonical form uses the largest exact binary suffix. */
  char got[64];
  assert_int_equal(options_set(&o, "block_cache_size", "1536KiB", 0), MAYFLY_OK);
  assert_string_equal(text_value(&o, "block_cache_size", got, sizeof got), "1536KiB");
  assert_int_equal(options_set(&o, "block_cache_size", "2048k", 0), MAYFLY_OK);
  assert_string_equal(text_value(&o, "block_cache_size", got, sizeof got), "2MiB");
  assert_int_equal(options_set(&o, "block_cache_size", "1025", 0), MAYFLY_OK);
  assert_string_equal(text_value(&o, "block_cache_size", got, sizeof got), "1025");
}

/* Every rejected value gives EINVAL, a message naming the option, and no change. */
static void test_bad_values(void **state) {
  static const struct { const char *name, *value; } cases[] = {
      /* bool */
      {"create_if_missing", ""},
      {"create_if_missing", "maybe"},
      {"create_if_missing", "true "},
      {"create_if_missing", " true"},
      {"create_if_missing", "2"},
      {"create_if_missing", "truex"},
      /* int */
      {"max_open_files", ""},
      {"max_open_files", "abc"},
      {"max_open_files", "100x"},
      {"max_open_files", "100 "},
      {"max_open_files", " 100"},
      {"max_open_files", "1.5"},
      {"max_open_files", "-"},
      {"max_open_files", "1k"},
      {"max_open_files", "19"},
      {"max_open_files", "1000001"},
      {"max_open_files", "99999999999999999999999"},
      {"max_open_files", "-99999999999999999999999"},
      {"max_open_files", "9223372036854775808"},
      {"max_open_files", "4294967316"}, /* 2^32 + 20: would wrap to 20 in an int */
      {"compression_level", "-6"},
      {"compression_level", "23"},
      {"max_write_buffer_number", "1"},
      /* size */
      {"write_buffer_size", ""},
      {"write_buffer_size", "junk"},
      {"write_buffer_size", "64MiBx"},
      {"write_buffer_size", "64 MiB"},
      {"write_buffer_size", "64Mi"},
      {"write_buffer_size", "64B"},
      {"write_buffer_size", "MiB"},
      {"write_buffer_size", "1.5MiB"},
      {"write_buffer_size", "-1"},
      {"write_buffer_size", "-64MiB"},
      {"write_buffer_size", "+64MiB"},
      {"write_buffer_size", "1"},
      {"write_buffer_size", "65535"},
      {"write_buffer_size", "4294967297"},
      {"write_buffer_size", "5GiB"},
      {"write_buffer_size", "18446744073709551616"},
      {"write_buffer_size", "16777216TiB"}, /* 2^64: overflows in the multiplication */
      {"block_cache_size", "1025GiB"},
      {"block_size", "255"},
      /* double */
      {"max_bytes_for_level_multiplier", ""},
      {"max_bytes_for_level_multiplier", "x"},
      {"max_bytes_for_level_multiplier", "10x"},
      {"max_bytes_for_level_multiplier", "10 "},
      {"max_bytes_for_level_multiplier", " 10"},
      {"max_bytes_for_level_multiplier", "nan"},
      {"max_bytes_for_level_multiplier", "NaN"},
      {"max_bytes_for_level_multiplier", "inf"},
      {"max_bytes_for_level_multiplier", "-inf"},
      {"max_bytes_for_level_multiplier", "infinity"},
      {"max_bytes_for_level_multiplier", "1e999"},
      {"max_bytes_for_level_multiplier", "1"},
      {"max_bytes_for_level_multiplier", "1.0001e3x"},
      {"max_bytes_for_level_multiplier", "1000.5"},
      {"max_bytes_for_level_multiplier", "-10"},
      /* enum */
      {"compression", ""},
      {"compression", "gzip"},
      {"compression", "lz"},
      {"compression", "lz4 "},
      {"compression", "none|lz4"},
      {"compression", "0"},
      {"wal_recovery_mode", "point"},
      {"wal_recovery_mode", "absolutely"},
      /* string */
      {"trace_dir", "a;b"},
      {"trace_dir", " /lead"},
      {"trace_dir", "/trail "},
      {"trace_dir", "new\nline"},
      {"trace_dir", "tab\there"},
  };
  struct mayfly_options o;
  options_init_defaults(&o);
  char *before = to_text(&o);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mf_error_clear();
    int rc = options_set(&o, cases[i].name, cases[i].value, 0);
    if (rc != MAYFLY_EINVAL)
      fail_msg("%s=\"%s\": rc %d, want MAYFLY_EINVAL", cases[i].name, cases[i].value, rc);
    if (!strstr(mf_error_message(), cases[i].name))
      fail_msg("%s=\"%s\": message \"%s\" does not name the option", cases[i].name,
               cases[i].value, mf_error_message());
    char *after = to_text(&o);
    if (strcmp(before, after) != 0)
      fail_msg("%s=\"%s\" was rejected but changed the options", cases[i].name, cases[i].value);
    free(after);
  }
  /* A string one byte too long for the field. */
  char too_long[MF_OPTION_STRING_MAX + 1];
  memset(too_long, 'd', sizeof too_long - 1);
  too_long[sizeof too_long - 1] = '\0';
  assert_int_equal(options_set(&o, "trace_dir", too_long, 0), MAYFLY_EINVAL);
  assert_non_null(strstr(mf_error_message(), "trace_dir"));
  char *after_long = to_text(&o);
  assert_string_equal(before, after_long);
  free(after_long);
  free(before);

  /* The out-of-range message states the range. */
  assert_int_equal(options_set(&o, "write_buffer_size", "1", 0), MAYFLY_EINVAL);
  assert_non_null(strstr(mf_error_message(),
                         "option write_buffer_size: value \"1\" is out of range "
                         "[65536, 4294967296]"));
  assert_int_equal(options_set(&o, "max_bytes_for_level_multiplier", "1", 0), MAYFLY_EINVAL);
  assert_non_null(strstr(mf_error_message(), "[1.0001, 1000]"));
  assert_int_equal(options_set(&o, "compression", "gzip", 0), MAYFLY_EINVAL);
  assert_non_null(strstr(mf_error_message(), "none|lz4|zstd"));

  /* Range ends are inclusive. */
  assert_int_equal(options_set(&o, "write_buffer_size", "64KiB", 0), MAYFLY_OK);
  assert_int_equal(options_set(&o, "write_buffer_size", "4GiB", 0), MAYFLY_OK);
  assert_int_equal(options_set(&o, "max_bytes_for_level_multiplier", "1.0001", 0), MAYFLY_OK);
  assert_int_equal(options_set(&o, "max_bytes_for_level_multiplier", "1000", 0), MAYFLY_OK);
  assert_int_equal(options_set(&o, "compression_level", "22", 0), MAYFLY_OK);
  assert_int_equal(options_set(&o, "block_cache_size", "1TiB", 0), MAYFLY_OK);
}

static void test_unknown_and_null(void **state) {
  struct mayfly_options o;
  options_init_defaults(&o);
  assert_int_equal(options_set(&o, "foo", "1", 0), MAYFLY_EINVAL);
  assert_non_null(strstr(mf_error_message(), "unknown option \"foo\""));
  assert_int_equal(options_set(&o, "", "1", 0), MAYFLY_EINVAL);
  assert_int_equal(options_set(&o, "Write_Buffer_Size", "1MiB", 0), MAYFLY_EINVAL);
  assert_int_equal(options_set(&o, "env", "x", 0), MAYFLY_EINVAL);
  assert_int_equal(options_set(NULL, "use_fsync", "true", 0), MAYFLY_EINVAL);
  assert_int_equal(options_set(&o, NULL, "true", 0), MAYFLY_EINVAL);
  assert_int_equal(options_set(&o, "use_fsync", NULL, 0), MAYFLY_EINVAL);
  assert_int_equal(options_validate(NULL), MAYFLY_EINVAL);
  mf_buf b = MF_BUF_INIT;
  assert_int_equal(options_to_text(NULL, &b), MAYFLY_EINVAL);
  assert_int_equal(options_to_text(&o, NULL), MAYFLY_EINVAL);
  assert_int_equal(options_write_markdown(NULL), MAYFLY_EINVAL);
}

static void test_runtime_only(void **state) {
  static const struct { const char *name, *value; } open_time[] = {
      {"create_if_missing", "false"}, {"error_if_exists", "true"},
      {"wal_recovery_mode", "absolute"}, {"use_fsync", "true"},
      {"max_open_files", "500"},      {"block_cache_size", "1GiB"},
      {"max_background_jobs", "4"},
  };
  static const struct { const char *name, *value; } mutable_ones[] = {
      {"write_buffer_size", "1MiB"},
      {"max_write_buffer_number", "3"},
      {"block_size", "16KiB"},
      {"block_restart_interval", "8"},
      {"bloom_bits_per_key", "12"},
      {"compression", "lz4"},
      {"compression_level", "1"},
      {"level0_file_num_compaction_trigger", "2"},
      {"level0_slowdown_writes_trigger", "30"},
      {"level0_stop_writes_trigger", "40"},
      {"target_file_size_base", "8MiB"},
      {"max_bytes_for_level_base", "64MiB"},
      {"max_bytes_for_level_multiplier", "8"},
      {"trace_dir", "/traces"},
      {"trace_key_hash", "true"},
      {"trace_gets", "true"},
  };
  struct mayfly_options o;
  options_init_defaults(&o);
  for (size_t i = 0; i < sizeof open_time / sizeof open_time[0]; i++) {
    char *before = to_text(&o);
    assert_int_equal(options_set(&o, open_time[i].name, open_time[i].value, 1), MAYFLY_ENOTSUP);
    char want[160];
    snprintf(want, sizeof want, "option %s cannot be changed on an open database",
             open_time[i].name);
    assert_non_null(strstr(mf_error_message(), want));
    char *after = to_text(&o);
    assert_string_equal(before, after);
    free(before);
    free(after);
    /* The same value is fine before open. */
    assert_int_equal(options_set(&o, open_time[i].name, open_time[i].value, 0), MAYFLY_OK);
  }
  for (size_t i = 0; i < sizeof mutable_ones / sizeof mutable_ones[0]; i++) {
    int rc = options_set(&o, mutable_ones[i].name, mutable_ones[i].value, 1);
    if (rc) fail_msg("%s at runtime: %s", mutable_ones[i].name, mf_error_message());
  }
  /* An unknown name is EINVAL, not ENOTSUP, even at runtime. */
  assert_int_equal(options_set(&o, "foo", "1", 1), MAYFLY_EINVAL);
  /* Runtime checks do not skip value checks. */
  assert_int_equal(options_set(&o, "write_buffer_size", "1", 1), MAYFLY_EINVAL);
}

static void test_validate(void **state) {
  struct mayfly_options o;
  options_init_defaults(&o);
  assert_int_equal(options_validate(&o), MAYFLY_OK);

  /* Equal triggers are allowed. */
  assert_int_equal(options_set(&o, "level0_file_num_compaction_trigger", "20", 0), MAYFLY_OK);
  assert_int_equal(options_set(&o, "level0_stop_writes_trigger", "20", 0), MAYFLY_OK);
  assert_int_equal(options_validate(&o), MAYFLY_OK);

  /* compaction trigger above slowdown */
  assert_int_equal(options_set(&o, "level0_file_num_compaction_trigger", "21", 0), MAYFLY_OK);
  assert_int_equal(options_validate(&o), MAYFLY_EINVAL);
  assert_non_null(strstr(mf_error_message(), "level0_file_num_compaction_trigger"));
  assert_non_null(strstr(mf_error_message(), "level0_slowdown_writes_trigger"));

  /* slowdown above stop */
  options_init_defaults(&o);
  assert_int_equal(options_set(&o, "level0_slowdown_writes_trigger", "37", 0), MAYFLY_OK);
  assert_int_equal(options_validate(&o), MAYFLY_EINVAL);
  assert_non_null(strstr(mf_error_message(), "level0_stop_writes_trigger"));

  /* compaction trigger above stop, with slowdown in between failing both ways */
  options_init_defaults(&o);
  assert_int_equal(options_set(&o, "level0_file_num_compaction_trigger", "100", 0), MAYFLY_OK);
  assert_int_equal(options_validate(&o), MAYFLY_EINVAL);
}

static void test_env(void **state) {
  struct mayfly_options o;
  options_init_defaults(&o);
  mf_env *mem = NULL;
  assert_int_equal(env_mem_create(&mem), MAYFLY_OK);
  options_set_env(&o, mem);
  assert_ptr_equal(o.env, mem);
  /* Setting text options leaves the env alone. */
  assert_int_equal(options_set(&o, "use_fsync", "true", 0), MAYFLY_OK);
  assert_ptr_equal(o.env, mem);
  options_set_env(&o, NULL);
  assert_ptr_equal(o.env, env_posix());
  mem->destroy(mem);
}

/* options_to_text appends; parsing its output reproduces the struct exactly. */
static void test_round_trip(void **state) {
  struct mayfly_options a, b;
  options_init_defaults(&a);
  assert_int_equal(mayfly_options_parse(&a,
                                        "create_if_missing=false;error_if_exists=on;"
                                        "wal_recovery_mode=absolute;use_fsync=1;"
                                        "max_open_files=12345;block_cache_size=12345;"
                                        "max_background_jobs=7;write_buffer_size=3GiB;"
                                        "max_write_buffer_number=9;block_size=300;"
                                        "block_restart_interval=3;bloom_bits_per_key=64;"
                                        "compression=zstd;compression_level=-1;"
                                        "level0_file_num_compaction_trigger=5;"
                                        "level0_slowdown_writes_trigger=6;"
                                        "level0_stop_writes_trigger=7;"
                                        "target_file_size_base=100000;"
                                        "max_bytes_for_level_base=1TiB;"
                                        "max_bytes_for_level_multiplier=3.14159;"
                                        "trace_dir=/some/dir;trace_gets=on"),
                   MAYFLY_OK);
  options_init_defaults(&b);
  char *text = to_text(&a);
  apply_text(&b, text);
  assert_options_equal(&a, &b);

  /* Appending keeps what the buffer held. */
  mf_buf buf = MF_BUF_INIT;
  assert_int_equal(mf_buf_append(&buf, "x\n", 2), MAYFLY_OK);
  assert_int_equal(options_to_text(&a, &buf), MAYFLY_OK);
  assert_int_equal(buf.len, 2 + strlen(text));
  assert_memory_equal(buf.data, "x\n", 2);
  assert_memory_equal(buf.data + 2, text, strlen(text));
  mf_buf_free(&buf);
  free(text);

  /* Doubles: canonical text is short and exact, for awkward values too. */
  uint64_t seed = test_seed();
  mf_random rnd;
  mf_random_seed(&rnd, seed);
  for (int i = 0; i < 2000; i++) {
    double v = 1.0001 + (double)mf_random_next(&rnd) / 18446744073709551616.0 * 998.9999;
    if (i % 4 == 1) v = (double)(2 + mf_random_uniform(&rnd, 999)); /* integers */
    if (i % 4 == 2) v = (double)(9 + mf_random_uniform(&rnd, 7992)) / 8; /* short fractions */
    if (v > 1000) v = 1000;
    char spelled[40];
    snprintf(spelled, sizeof spelled, "%.17g", v);
    options_init_defaults(&a);
    if (options_set(&a, "max_bytes_for_level_multiplier", spelled, 0) != MAYFLY_OK)
      fail_msg("seed %llu: setting %s: %s", (unsigned long long)seed, spelled,
               mf_error_message());
    char canonical[64];
    text_value(&a, "max_bytes_for_level_multiplier", canonical, sizeof canonical);
    options_init_defaults(&b);
    assert_int_equal(options_set(&b, "max_bytes_for_level_multiplier", canonical, 0), MAYFLY_OK);
    if (a.max_bytes_for_level_multiplier != b.max_bytes_for_level_multiplier)
      fail_msg("seed %llu: %s printed as %s reads back differently", (unsigned long long)seed,
               spelled, canonical);
    if (strchr(canonical, 'e')) fail_msg("seed %llu: %s printed as %s", (unsigned long long)seed,
                                         spelled, canonical);
  }
  char got[64];
  options_init_defaults(&a);
  assert_int_equal(options_set(&a, "max_bytes_for_level_multiplier", "1.0001", 0), MAYFLY_OK);
  assert_string_equal(text_value(&a, "max_bytes_for_level_multiplier", got, sizeof got),
                      "1.0001");
  assert_int_equal(options_set(&a, "max_bytes_for_level_multiplier", "1e3", 0), MAYFLY_OK);
  assert_string_equal(text_value(&a, "max_bytes_for_level_multiplier", got, sizeof got),
                      "1000");
}

static void test_public_api(void **state) {
  mayfly_options *opt = NULL;
  assert_int_equal(mayfly_options_create(NULL), MAYFLY_EINVAL);
  assert_int_equal(mayfly_options_create(&opt), MAYFLY_OK);
  assert_non_null(opt);
  struct mayfly_options defaults;
  options_init_defaults(&defaults);
  assert_options_equal(opt, &defaults);

  assert_int_equal(mayfly_options_set(opt, "write_buffer_size", "128MiB"), MAYFLY_OK);
  assert_int_equal(opt->write_buffer_size, 128ull << 20);
  assert_int_equal(mayfly_options_set(opt, "write_buffer_size", "1"), MAYFLY_EINVAL);
  assert_int_equal(mayfly_options_set(opt, "bogus", "1"), MAYFLY_EINVAL);
  assert_int_equal(mayfly_options_set(NULL, "write_buffer_size", "1MiB"), MAYFLY_EINVAL);

  /* Several pairs, blanks around names and values, empty segments. */
  assert_int_equal(mayfly_options_parse(opt, "  compression = lz4 ;block_size=16k;;\t"
                                             "use_fsync=\ttrue  ; bloom_bits_per_key=0;"),
                   MAYFLY_OK);
  assert_int_equal(opt->compression, MF_COMPRESSION_LZ4);
  assert_int_equal(opt->block_size, 16384);
  assert_int_equal(opt->use_fsync, 1);
  assert_int_equal(opt->bloom_bits_per_key, 0);
  assert_int_equal(mayfly_options_parse(opt, ""), MAYFLY_OK);
  assert_int_equal(mayfly_options_parse(opt, " ; ;"), MAYFLY_OK);
  /* A later pair wins. */
  assert_int_equal(mayfly_options_parse(opt, "block_size=8k;block_size=32k"), MAYFLY_OK);
  assert_int_equal(opt->block_size, 32768);

  /* Errors name the failing pair and leave opt unchanged (all-or-nothing). */
  char *before = to_text(opt);
  assert_int_equal(mayfly_options_parse(opt, "block_size=64k;compression=gzip;use_fsync=false"),
                   MAYFLY_EINVAL);
  assert_non_null(strstr(mf_error_message(), "compression"));
  assert_non_null(strstr(mf_error_message(), "gzip"));
  assert_int_equal(mayfly_options_parse(opt, "block_size=64k;nonsense"), MAYFLY_EINVAL);
  assert_non_null(strstr(mf_error_message(), "nonsense"));
  assert_int_equal(mayfly_options_parse(opt, "block_size=64k; =3"), MAYFLY_EINVAL);
  assert_int_equal(mayfly_options_parse(opt, "block_size="), MAYFLY_EINVAL);
  assert_non_null(strstr(mf_error_message(), "block_size"));
  assert_int_equal(mayfly_options_parse(opt, "block_size=64k;foo=1"), MAYFLY_EINVAL);
  assert_non_null(strstr(mf_error_message(), "unknown option \"foo\""));
  assert_int_equal(mayfly_options_parse(opt, "block_size=64k=1"), MAYFLY_EINVAL);
  char *after = to_text(opt);
  assert_string_equal(before, after);
  free(before);
  free(after);
  assert_int_equal(mayfly_options_parse(NULL, "a=b"), MAYFLY_EINVAL);
  assert_int_equal(mayfly_options_parse(opt, NULL), MAYFLY_EINVAL);

  mayfly_options_destroy(opt);
  mayfly_options_destroy(NULL);
}

/* The Markdown page lists every option with its default and range. */
static void test_markdown_content(void **state) {
  char *page = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&page, &len);
  assert_non_null(f);
  assert_int_equal(options_write_markdown(f), MAYFLY_OK);
  fclose(f);
  assert_non_null(strstr(page, "# mayfly options"));
  assert_non_null(strstr(page, "| name | type | default | range / values | runtime-mutable |"));
  assert_non_null(strstr(page, "| `write_buffer_size` | size | `64MiB` | [64KiB, 4GiB] | yes |"));
  assert_non_null(strstr(page, "| `compression` | enum | `none` | `none`, `lz4`, `zstd` | yes |"));
  assert_non_null(strstr(page, "| `max_open_files` | int | `1000` | [20, 1000000] | no |"));
  assert_non_null(strstr(page, "| `create_if_missing` | bool | `true` |"));
  assert_non_null(strstr(page, "| `trace_dir` | string | empty | text, at most 1023 bytes"));
  assert_non_null(
      strstr(page, "| `max_bytes_for_level_multiplier` | double | `10` | [1.0001, 1000] | yes |"));
  /* One table row per option, each with six cells. */
  struct mayfly_options o;
  options_init_defaults(&o);
  char *text = to_text(&o);
  for (char *line = text; *line;) {
    char name[128];
    size_t n = strcspn(line, "=");
    snprintf(name, sizeof name, "\n| `%.*s` |", (int)n, line);
    const char *row = strstr(page, name);
    if (!row) fail_msg("docs page has no row for %s", name + 3);
    int pipes = 0;
    for (const char *p = row + 1; *p && *p != '\n'; p++) pipes += *p == '|';
    assert_int_equal(pipes, 7);
    line += strcspn(line, "\n") + 1;
  }
  free(text);
  free(page);
}

/* docs/options.md must be what the table generates today. */
static void test_docs_not_stale(void **state) {
  const char *src = getenv("MAYFLY_SOURCE_DIR");
  if (!src) {
    printf("MAYFLY_SOURCE_DIR unset: skipping the docs/options.md staleness check\n");
    skip();
  }
  char *page = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&page, &len);
  assert_non_null(mem);
  assert_int_equal(options_write_markdown(mem), MAYFLY_OK);
  fclose(mem);

  char path[4096];
  snprintf(path, sizeof path, "%s/docs/options.md", src);
  FILE *f = fopen(path, "rb");
  if (!f)
    fail_msg("cannot open %s; generate it with: build/gen_options_doc > docs/options.md", path);
  mf_buf file = MF_BUF_INIT;
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    assert_int_equal(mf_buf_append(&file, chunk, n), MAYFLY_OK);
  fclose(f);
  if (file.len != len || memcmp(file.data, page, len) != 0)
    fail_msg("%s is stale (it differs from the options table in src/db/options.c); "
             "regenerate it from the source directory with: "
             "build/gen_options_doc > docs/options.md",
             path);
  mf_buf_free(&file);
  free(page);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),        cmocka_unit_test(test_set_every_option),
      cmocka_unit_test(test_size_suffixes),   cmocka_unit_test(test_bad_values),
      cmocka_unit_test(test_unknown_and_null), cmocka_unit_test(test_runtime_only),
      cmocka_unit_test(test_validate),        cmocka_unit_test(test_env),
      cmocka_unit_test(test_round_trip),      cmocka_unit_test(test_public_api),
      cmocka_unit_test(test_markdown_content), cmocka_unit_test(test_docs_not_stale),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
