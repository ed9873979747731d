/* mayfly_bench's reports: /proc readers, the comparison table and --json (bench/report.h).
 *
 * Peak RSS: VmHWM is a per-process high-water mark, so mayfly_bench runs each engine in a
 * child process of its own (mayfly_bench.c) and, before each benchmark, resets the mark with
 * /proc/self/clear_refs; a benchmark's figure is then the peak of that benchmark alone
 * (settling included). Where the kernel refuses the reset, the figure is the peak since the
 * engine's process started, and the report says so. */
#include "report.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

uint64_t report_process_wchar(void)
{
  FILE *f = fopen("/proc/self/io", "r");
  if (f == NULL)
    return 0;
  char line[128];
  uint64_t v = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned long long x = 0;
    if (sscanf(line, "wchar: %llu", &x) == 1) {
      v = x;
      break;
    }
  }
  fclose(f);
  return v;
}

int report_reset_peak_rss(void)
{
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (f == NULL)
    return 1;
  int bad = fputs("5", f) < 0;
  bad |= fclose(f) != 0;
  return bad;
}

int64_t report_peak_rss(void)
{
  FILE *f = fopen("/proc/self/status", "r");
  if (f == NULL)
    return -1;
  char line[256];
  int64_t v = -1;
  while (fgets(line, sizeof line, f) != NULL) {
    long long kb = 0;
    if (sscanf(line, "VmHWM: %lld kB", &kb) == 1) {
      v = (int64_t)kb * 1024;
      break;
    }
  }
  fclose(f);
  return v;
}

/* ---- comparison --------------------------------------------------------------------------- */

static void print_header(const char *title, const struct bench_engine_info *engines,
                         int nengines)
{
  printf("%-16s", title);
  for (int e = 0; e < nengines; e++)
    printf(" %14s", engines[e].name);
  printf("\n");
}

void report_print_comparison(const struct bench_engine_info *engines, int nengines,
                             char names[][BENCH_NAME_LEN], int nbench,
                             struct bench_result results[][BENCH_MAX_BENCHMARKS])
{
  printf("================================================\n");
  printf("%-16s", "ops/sec");
  for (int e = 0; e < nengines; e++)
    printf(" %14s", engines[e].name);
  for (int e = 1; e < nengines; e++) {
    char head[64];
    snprintf(head, sizeof head, "%s/%s", engines[0].name, engines[e].name);
    printf(" %15s", head);
  }
  printf("\n");
  for (int b = 0; b < nbench; b++) {
    printf("%-16s", names[b]);
    for (int e = 0; e < nengines; e++) {
      if (results[e][b].ran)
        printf(" %14.0f", results[e][b].ops_per_sec);
      else
        printf(" %14s", results[e][b].skipped ? "skipped" : "-");
    }
    for (int e = 1; e < nengines; e++) {
      if (results[0][b].ran && results[e][b].ran && results[e][b].ops_per_sec > 0)
        printf(" %15.2f", results[0][b].ops_per_sec / results[e][b].ops_per_sec);
      else
        printf(" %15s", "-");
    }
    printf("\n");
  }
  print_header("write() MB", engines, nengines);
  for (int b = 0; b < nbench; b++) {
    printf("%-16s", names[b]);
    for (int e = 0; e < nengines; e++) {
      if (results[e][b].ran)
        printf(" %14.1f", (double)results[e][b].wchar / 1048576.0);
      else
        printf(" %14s", "-");
    }
    printf("\n");
  }
  print_header("write/space amp", engines, nengines);
  for (int b = 0; b < nbench; b++) {
    printf("%-16s", names[b]);
    for (int e = 0; e < nengines; e++) {
      char cell[32] = "-";
      if (results[e][b].ran)
        snprintf(cell, sizeof cell, "%.2f/%.2f", results[e][b].write_amp,
                 results[e][b].space_amp);
      printf(" %14s", cell);
    }
    printf("\n");
  }
  print_header("stall s/RSS MiB", engines, nengines);
  for (int b = 0; b < nbench; b++) {
    printf("%-16s", names[b]);
    for (int e = 0; e < nengines; e++) {
      const struct bench_result *r = &results[e][b];
      char stall[16] = "n/a", rss[16] = "n/a", cell[40] = "-";
      if (r->stall_micros >= 0)
        snprintf(stall, sizeof stall, "%.2f", (double)r->stall_micros / 1e6);
      if (r->peak_rss_bytes >= 0)
        snprintf(rss, sizeof rss, "%.0f", (double)r->peak_rss_bytes / 1048576.0);
      if (r->ran)
        snprintf(cell, sizeof cell, "%s/%s", stall, rss);
      printf(" %14s", cell);
    }
    printf("\n");
  }
}

/* ---- JSON ----------------------------------------------------------------------------------- */

/* JSON has no NaN or infinity: a ratio without a denominator is reported as 0. */
static double finite_or_zero(double x) { return isfinite(x) ? x : 0.0; }

/* Writes s as a JSON string (the characters options text and versions can hold). */
static void json_string(FILE *out, const char *s)
{
  fputc('"', out);
  for (; *s != '\0'; s++) {
    if (*s == '"' || *s == '\\')
      fprintf(out, "\\%c", *s);
    else if ((unsigned char)*s < 0x20)
      fprintf(out, "\\u%04x", (unsigned char)*s);
    else
      fputc(*s, out);
  }
  fputc('"', out);
}

/* A signed figure, or null when negative (unknown). */
static void json_known(FILE *out, const char *name, int64_t v)
{
  if (v >= 0)
    fprintf(out, ", \"%s\": %" PRId64, name, v);
  else
    fprintf(out, ", \"%s\": null", name);
}

static void json_result(FILE *out, const char *name, const struct bench_result *res)
{
  const gen_hist *h = res->latency;
  fprintf(out,
          "{\"name\": \"%s\", \"ops\": %" PRIu64 ", \"ops_per_sec\": %.1f"
          ", \"micros_per_op\": %.3f, \"mb_per_sec\": %.3f, \"write_bytes\": %" PRIu64
          ", \"write_amp\": %.4f, \"space_amp\": %.4f, \"disk_bytes\": %" PRIu64,
          name, res->ops, res->ops_per_sec, res->micros_per_op, res->mb_per_sec, res->wchar,
          finite_or_zero(res->write_amp), finite_or_zero(res->space_amp), res->disk_bytes);
  fprintf(out, ", \"space_amp_mean\": %.4f, \"space_amp_max\": %.4f, \"space_samples\": %" PRIu64,
          finite_or_zero(res->space_amp_mean), finite_or_zero(res->space_amp_max),
          res->space_samples);
  json_known(out, "stall_micros", res->stall_micros);
  json_known(out, "peak_rss_bytes", res->peak_rss_bytes);
  fprintf(out, ", \"peak_rss_scope\": \"%s\"",
          res->peak_rss_per_benchmark ? "benchmark" : "engine process");
  if (h != NULL)
    fprintf(out,
            ", \"latency_us\": {\"count\": %" PRIu64 ", \"avg\": %.3f, \"p50\": %.3f"
            ", \"p95\": %.3f, \"p99\": %.3f, \"p99.9\": %.3f, \"max\": %.3f}",
            h->count, h->count > 0 ? (double)h->sum_ns / (double)h->count / 1e3 : 0.0,
            gen_hist_percentile(h, 0.50) / 1e3, gen_hist_percentile(h, 0.95) / 1e3,
            gen_hist_percentile(h, 0.99) / 1e3, gen_hist_percentile(h, 0.999) / 1e3,
            (double)h->max_ns / 1e3);
  fprintf(out, "}");
}

int report_write_json(const char *path, const struct bench_flags *f, const char *date,
                      const struct bench_engine_info *engines, int nengines,
                      char names[][BENCH_NAME_LEN], int nbench,
                      struct bench_result results[][BENCH_MAX_BENCHMARKS])
{
  FILE *out = fopen(path, "w");
  if (out == NULL)
    return 1;
  fprintf(out, "{\"date\": ");
  json_string(out, date);
  fprintf(out,
          ", \"num\": %" PRId64 ", \"reads\": %" PRId64 ", \"writes\": %" PRId64
          ", \"key_size\": %d, \"value_size\": %d, \"threads\": %d, \"seed\": %" PRIu64
          ", \"sync\": %s, \"disable_wal\": %s, \"use_existing_db\": %s"
          ", \"compression_type\": \"%s\",\n \"engines\": [",
          f->num, f->reads, f->writes, f->key_size, f->value_size, f->threads, f->seed,
          f->sync ? "true" : "false", f->disable_wal ? "true" : "false",
          f->use_existing_db ? "true" : "false", f->compression_type);
  for (int e = 0; e < nengines; e++) {
    fprintf(out, "%s\n  {\"engine\": ", e > 0 ? "," : "");
    json_string(out, engines[e].name);
    fprintf(out, ", \"version\": ");
    json_string(out, engines[e].version);
    fprintf(out, ", \"options\": ");
    json_string(out, engines[e].options);
    if (engines[e].skipped != NULL) {
      fprintf(out, ", \"skipped\": ");
      json_string(out, engines[e].skipped);
    }
    fprintf(out, ", \"benchmarks\": [");
    int first = 1;
    for (int b = 0; b < nbench; b++) {
      const struct bench_result *res = &results[e][b];
      if (!res->ran)
        continue;
      fprintf(out, "%s\n    ", first ? "" : ",");
      json_result(out, names[b], res);
      first = 0;
    }
    fprintf(out, "]}");
  }
  fprintf(out, "\n]}\n");
  return fclose(out) == 0 ? 0 : 1;
}
