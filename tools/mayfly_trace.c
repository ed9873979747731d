/* mayfly_trace: analyzes lifetime traces (docs/tracing.md).
 *
 *   mayfly_trace analyze --trace_dir=DIR --out=DIR [--progress] [--no-plots]
 *       joins the op and job traces in DIR and writes per-version, per-key and per-job CSV
 *       files, amplification and lifetime tables, gnuplot scripts and, when gnuplot is
 *       installed, SVG and PNG plots into --out; prints a summary table on stdout.
 *   mayfly_trace export-training --trace_dir=DIR --out=FILE.csv [--progress]
 *       one row per write with features and the valid lifetime as the label.
 *
 * The analysis itself is src/trace/trace_analyze.c (tests call it directly); this file only
 * parses arguments and runs gnuplot. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "env/env.h"
#include "mayfly.h"
#include "trace/trace_analyze.h"
#include "util/error.h"
#include "util/slice.h"

static void usage(void) {
  fprintf(stderr,
          "usage:\n"
          "  mayfly_trace analyze --trace_dir=DIR --out=DIR [--progress] [--no-plots]\n"
          "  mayfly_trace export-training --trace_dir=DIR --out=FILE.csv [--progress]\n");
}

static void progress(void *arg, const char *what, uint64_t done, uint64_t total) {
  (void)arg;
  if (total)
    fprintf(stderr, "\r%s: %.1f%%   ", what, 100.0 * (double)done / (double)total);
  else
    fprintf(stderr, "\r%s: %llu   ", what, (unsigned long long)done);
  if (done >= total) fprintf(stderr, "\n");
}

/* Runs gnuplot on plots.gp in dir for SVG, then PNG, when gnuplot is on the PATH. */
static void render_plots(const char *dir) {
  if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
    printf("\ngnuplot not found: plot data and %s/plots.gp written; render with\n"
           "  cd %s && gnuplot -e \"fmt='svg'\" plots.gp\n", dir, dir);
    return;
  }
  const char *formats[] = {"svg", "png"};
  for (int i = 0; i < 2; i++) {
    size_t n = strlen(dir) * 2 + 128;
    char *cmd = malloc(n);
    if (!cmd) return;
    /* The directory is quoted for the shell; a quote in it would break this, so refuse. */
    if (strchr(dir, '\'')) {
      fprintf(stderr, "mayfly_trace: not rendering plots: the output path contains a quote\n");
      free(cmd);
      return;
    }
    snprintf(cmd, n, "cd '%s' && gnuplot -e \"fmt='%s'\" plots.gp 2>/dev/null", dir, formats[i]);
    int rc = system(cmd);
    free(cmd);
    if (rc == 0) printf("plots rendered as %s in %s\n", formats[i], dir);
    else fprintf(stderr, "mayfly_trace: gnuplot could not render %s plots\n", formats[i]);
  }
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage();
    return 2;
  }
  const char *cmd = argv[1], *trace_dir = NULL, *out = NULL;
  int show_progress = 0, plots = 1;
  for (int i = 2; i < argc; i++) {
    if (strncmp(argv[i], "--trace_dir=", 12) == 0) trace_dir = argv[i] + 12;
    else if (strncmp(argv[i], "--out=", 6) == 0) out = argv[i] + 6;
    else if (strcmp(argv[i], "--progress") == 0) show_progress = 1;
    else if (strcmp(argv[i], "--no-plots") == 0) plots = 0;
    else {
      fprintf(stderr, "mayfly_trace: unknown argument %s\n", argv[i]);
      usage();
      return 2;
    }
  }
  int analyze = strcmp(cmd, "analyze") == 0, export = strcmp(cmd, "export-training") == 0;
  if ((!analyze && !export) || !trace_dir || !out) {
    usage();
    return 2;
  }
  mf_env *env = env_posix();
  trace_analysis *a = NULL;
  clock_t c0 = clock();
  int rc = trace_analyze(env, trace_dir, show_progress ? progress : NULL, NULL, &a);
  if (rc == MAYFLY_OK && analyze) {
    rc = trace_report_write(a, env, out);
    if (rc == MAYFLY_OK) {
      mf_buf summary = MF_BUF_INIT;
      rc = trace_report_summary(a, &summary);
      if (rc == MAYFLY_OK) fwrite(summary.data, 1, summary.len, stdout);
      mf_buf_free(&summary);
      printf("\nreports in %s: versions.csv keys.csv jobs.csv amplification.tsv "
             "lifetimes_hist.tsv lifetimes_cdf.tsv summary.txt plots.gp\n", out);
      if (plots) render_plots(out);
    }
  } else if (rc == MAYFLY_OK) {
    rc = trace_export_training(a, env, out);
    if (rc == MAYFLY_OK) printf("%zu rows written to %s\n", a->nv, out);
  }
  if (show_progress)
    fprintf(stderr, "done in %.1f s of CPU\n", (double)(clock() - c0) / CLOCKS_PER_SEC);
  trace_analysis_free(a);
  if (rc != MAYFLY_OK) {
    fprintf(stderr, "mayfly_trace: %s (%s)\n", mf_error_message(), mayfly_strerror(rc));
    return 1;
  }
  if (fflush(stdout) != 0 || ferror(stdout)) { /* a full disk, a closed pipe */
    fprintf(stderr, "mayfly_trace: writing the output failed\n");
    return 1;
  }
  return 0;
}
