/* What mayfly_bench measured and how it is reported (bench/report.c): one struct
 * bench_result per engine and benchmark, the /proc readers behind the write-traffic and
 * peak-RSS figures, the side-by-side comparison of several engines and the --json file.
 *
 * Every function here reads the results it is given and never keeps a pointer to them. */
#ifndef MAYFLY_BENCH_REPORT_H
#define MAYFLY_BENCH_REPORT_H

#include <stdint.h>

#include "flags.h"
#include "gen.h"

#define BENCH_MAX_ENGINES 4
#define BENCH_MAX_BENCHMARKS 32
#define BENCH_NAME_LEN 32

struct bench_result {
  int ran;             /* figures below are valid */
  int skipped;         /* a fill under --use_existing_db: not run, as db_bench does */
  uint64_t ops;
  double ops_per_sec;
  double micros_per_op;
  double mb_per_sec;
  uint64_t wchar;      /* bytes passed to write() during the benchmark */
  double write_amp;    /* 0: the benchmark put nothing */
  double space_amp;    /* 0: no live data */
  uint64_t disk_bytes; /* the database directory's size after settling */
  double space_amp_mean, space_amp_max; /* over once-a-second samples during the benchmark */
  uint64_t space_samples;               /* 0: none (the benchmark ran under a second) */
  int64_t stall_micros;   /* write-stall time during the benchmark; -1: the engine cannot tell */
  int64_t peak_rss_bytes; /* VmHWM after the benchmark; -1: unknown */
  int peak_rss_per_benchmark; /* 1: the peak was reset before the benchmark; 0: since the
                               * engine's process started (the kernel cannot reset it) */
  gen_hist *latency;   /* per-operation latencies of every thread (malloc'd, owned by the
                        * result's holder); NULL when none */
};

/* One engine's identity in the reports. */
struct bench_engine_info {
  const char *name;
  const char *version;
  const char *options; /* the options text it was opened with */
  const char *skipped; /* NULL, or why the engine did not run (an unsupported flag) */
};

/* Bytes this process (all threads) has passed to write()-like calls (wchar of
 * /proc/self/io); 0 when unknown. */
uint64_t report_process_wchar(void);

/* Resets the process's peak RSS to its current RSS (writes 5 to /proc/self/clear_refs,
 * Linux 4.0+). Returns 0, or 1 when the kernel refused. */
int report_reset_peak_rss(void);

/* The process's peak RSS in bytes (VmHWM of /proc/self/status); -1 when unknown. */
int64_t report_peak_rss(void);

/* Prints ops/s, the ratios to the first engine, write() MB, write/space amp, stall time and
 * peak RSS of every engine side by side (results[e][b] for names[b]). */
void report_print_comparison(const struct bench_engine_info *engines, int nengines,
                             char names[][BENCH_NAME_LEN], int nbench,
                             struct bench_result results[][BENCH_MAX_BENCHMARKS]);

/* Writes every engine's figures to path as JSON (latencies in microseconds; a figure the
 * engine cannot give is null). Returns 0, or 1 with errno set when the file cannot be
 * written. */
int report_write_json(const char *path, const struct bench_flags *f, const char *date,
                      const struct bench_engine_info *engines, int nengines,
                      char names[][BENCH_NAME_LEN], int nbench,
                      struct bench_result results[][BENCH_MAX_BENCHMARKS]);

#endif /* MAYFLY_BENCH_REPORT_H */
