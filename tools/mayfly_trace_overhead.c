/* mayfly_trace_overhead: what lifetime tracing costs a write-heavy workload.
 *
 *   mayfly_trace_overhead [--db=DIR] [--num=500000] [--value_size=1024] [--rounds=3]
 *                         [--key_hash] [--keep_trace] [--options=name=value;...]
 *
 * Runs the same workload (num puts of value_size bytes to uniformly random keys among num,
 * then a flush and waiting for compactions) with tracing off and on, rounds times each (the
 * order alternates between rounds), each on a fresh database in DIR. Prints each run, the
 * median throughput of both, their ratio, and the trace bytes written per put. --keep_trace
 * leaves the last traced run's trace in DIR-trace (for mayfly_trace analyze).
 * docs/tracing.md records a result. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/options.h"
#include "env/env.h"
#include "mayfly.h"
#include "util/random.h"

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Removes every file in dir (one level), then dir. */
static void remove_tree(mf_env *env, const char *dir) {
  char **names = NULL;
  size_t count = 0;
  if (env->list_dir(env, dir, &names, &count) == MAYFLY_OK) {
    for (size_t i = 0; i < count; i++) {
      char path[8448];
      snprintf(path, sizeof path, "%s/%s", dir, names[i]);
      env->remove_file(env, path);
    }
    env_free_names(names, count);
  }
  env->remove_dir(env, dir);
}

static uint64_t dir_bytes(mf_env *env, const char *dir) {
  char **names = NULL;
  size_t count = 0;
  uint64_t total = 0;
  if (env->list_dir(env, dir, &names, &count) != MAYFLY_OK) return 0;
  for (size_t i = 0; i < count; i++) {
    char path[8448];
    uint64_t size = 0;
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    if (env->file_size(env, path, &size) == MAYFLY_OK) total += size;
  }
  env_free_names(names, count);
  return total;
}

typedef struct run_config {
  const char *db, *extra_options;
  int num, value_size, key_hash, keep_trace;
} run_config;

/* One run; returns puts per second of the put phase (the flush and compactions after it are
 * waited for but not timed), or a negative number on error. */
static double run(const run_config *cfg, int traced, uint64_t seed, uint64_t *trace_bytes) {
  mf_env *env = env_posix();
  char trace_dir[4200];
  snprintf(trace_dir, sizeof trace_dir, "%s-trace", cfg->db);
  remove_tree(env, cfg->db);
  if (traced) remove_tree(env, trace_dir); /* an untraced run leaves a kept trace alone */
  mayfly_options *opt = NULL;
  mayfly_db *db = NULL;
  int rc = mayfly_options_create(&opt);
  if (rc == MAYFLY_OK && cfg->extra_options) rc = mayfly_options_parse(opt, cfg->extra_options);
  if (rc == MAYFLY_OK && traced) rc = mayfly_options_set(opt, "trace_dir", trace_dir);
  if (rc == MAYFLY_OK && traced && cfg->key_hash)
    rc = mayfly_options_set(opt, "trace_key_hash", "true");
  if (rc == MAYFLY_OK) rc = mayfly_open(cfg->db, opt, &db);
  mayfly_options_destroy(opt);
  if (rc != MAYFLY_OK) {
    fprintf(stderr, "open %s: %s\n", cfg->db, mayfly_errmsg(NULL));
    return -1;
  }
  char *value = malloc((size_t)cfg->value_size);
  if (!value) return -1;
  mf_random rnd;
  mf_random_seed(&rnd, seed);
  for (int i = 0; i < cfg->value_size; i++) value[i] = (char)('a' + mf_random_uniform(&rnd, 26));
  char key[32];
  double t0 = now_seconds();
  for (int i = 0; i < cfg->num && rc == MAYFLY_OK; i++) {
    int klen = snprintf(key, sizeof key, "key%016" PRIu64,
                        mf_random_uniform(&rnd, (uint64_t)cfg->num));
    /* vary a few bytes so values differ */
    memcpy(value, key + 3, 8);
    rc = mayfly_put(db, key, (size_t)klen, value, (size_t)cfg->value_size, 0);
  }
  double elapsed = now_seconds() - t0;
  if (rc == MAYFLY_OK) rc = mayfly_flush(db);
  if (rc == MAYFLY_OK) rc = mayfly_wait_idle(db);
  if (rc != MAYFLY_OK) fprintf(stderr, "workload: %s\n", mayfly_errmsg(db));
  int crc = mayfly_close(db);
  if (rc == MAYFLY_OK) rc = crc;
  free(value);
  *trace_bytes = traced ? dir_bytes(env, trace_dir) : 0;
  remove_tree(env, cfg->db);
  if (!cfg->keep_trace) remove_tree(env, trace_dir);
  return rc == MAYFLY_OK ? cfg->num / elapsed : -1;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  run_config cfg = {"/tmp/mayfly-trace-overhead", NULL, 500000, 1024, 0, 0};
  int rounds = 3;
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--db=", 5) == 0) cfg.db = argv[i] + 5;
    else if (strncmp(argv[i], "--num=", 6) == 0) cfg.num = atoi(argv[i] + 6);
    else if (strncmp(argv[i], "--value_size=", 13) == 0) cfg.value_size = atoi(argv[i] + 13);
    else if (strncmp(argv[i], "--rounds=", 9) == 0) rounds = atoi(argv[i] + 9);
    else if (strcmp(argv[i], "--key_hash") == 0) cfg.key_hash = 1;
    else if (strcmp(argv[i], "--keep_trace") == 0) cfg.keep_trace = 1;
    else if (strncmp(argv[i], "--options=", 10) == 0) cfg.extra_options = argv[i] + 10;
    else {
      fprintf(stderr, "usage: mayfly_trace_overhead [--db=DIR] [--num=N] [--value_size=N] "
              "[--rounds=N] [--key_hash] [--keep_trace] [--options=name=value;...]\n");
      return 2;
    }
  }
  if (strlen(cfg.db) > 4000) {
    fprintf(stderr, "mayfly_trace_overhead: --db path too long\n");
    return 2;
  }
  if (cfg.num <= 0 || cfg.value_size <= 0 || rounds <= 0 || rounds > 100) {
    fprintf(stderr, "mayfly_trace_overhead: --num, --value_size and --rounds must be positive\n");
    return 2;
  }
  double off[100], on[100];
  uint64_t trace_bytes = 0;
  printf("%d puts of %d-byte values, %d round(s), db %s\n", cfg.num, cfg.value_size, rounds,
         cfg.db);
  for (int r = 0; r < rounds; r++) {
    /* Odd rounds run the traced workload first: whichever run goes second inherits the
     * first one's freed files and page cache, which on a busy machine moves throughput by
     * more than tracing does. */
    uint64_t ignored;
    if (r % 2 == 0) {
      off[r] = run(&cfg, 0, 1000 + (uint64_t)r, &ignored);
      on[r] = run(&cfg, 1, 1000 + (uint64_t)r, &trace_bytes);
    } else {
      on[r] = run(&cfg, 1, 1000 + (uint64_t)r, &trace_bytes);
      off[r] = run(&cfg, 0, 1000 + (uint64_t)r, &ignored);
    }
    if (off[r] < 0 || on[r] < 0) return 1;
    printf("round %d: tracing off %.0f puts/s, on %.0f puts/s (%.3f)\n", r + 1, off[r], on[r],
           on[r] / off[r]);
    fflush(stdout);
  }
  qsort(off, (size_t)rounds, sizeof off[0], cmp_double);
  qsort(on, (size_t)rounds, sizeof on[0], cmp_double);
  double m_off = off[rounds / 2], m_on = on[rounds / 2];
  printf("median: off %.0f puts/s, on %.0f puts/s; on/off = %.3f (overhead %.1f%%); trace "
         "%.1f bytes per put\n", m_off, m_on, m_on / m_off, 100.0 * (1.0 - m_on / m_off),
         (double)trace_bytes / cfg.num);
  return 0;
}
