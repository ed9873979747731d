/* Progress and interval statistics of a running benchmark (bench/monitor.c).
 *
 * A monitor is a thread beside a benchmark's workers. It reads the operations done so far
 * from a counter the workers add to (atomically; it never writes it) and reports:
 *   stats_interval > 0: every stats_interval seconds a line on stdout with the last
 *     interval's and the cumulative operations and ops/s (db_bench's --stats_interval_seconds;
 *     db_bench prints such lines on stderr, here they are results, so stdout);
 *   progress on stderr, never stdout: every 2 s rewritten in place when stderr is a terminal,
 *     else a whole line every 5 s, so that short benchmarks print nothing. Once told the
 *     timed part is over (monitor_settling), interval lines stop and progress says
 *     "settling" (background work after a benchmark can take long);
 *   space samples: when monitor_sample_space was called, every 50 ms during the timed part
 *     it calls the sampler (the database's space amplification at that moment) and keeps the
 *     mean and maximum, because the figure after a benchmark is one instant, and compactions
 *     and flushes that happen to run just before it move it by several percent. The mean is
 *     over time, stalls included: sampling at points of progress instead would never see
 *     the space an engine holds while its writers are stopped (a compaction's old and new
 *     files side by side).
 *
 * Lifetime: monitor_start, then monitor_settling any number of times, then exactly one
 * monitor_stop, all from the thread that runs the benchmark. name and done_ops must outlive
 * the monitor. */
#ifndef MAYFLY_BENCH_MONITOR_H
#define MAYFLY_BENCH_MONITOR_H

#include <pthread.h>
#include <stdint.h>

typedef struct bench_monitor {
  const char *name;
  int64_t total;           /* operations the benchmark will run; <= 0: unknown */
  double stats_interval;   /* seconds; 0: no interval lines */
  const uint64_t *done_ops;
  double start;            /* CLOCK_MONOTONIC seconds */
  int settling;            /* REQUIRES: mu held */
  int stop;                /* REQUIRES: mu held */
  int running;             /* the thread was started */
  int tty;                 /* stderr is a terminal: progress is rewritten in place */
  int shown;               /* a progress line is on the terminal; REQUIRES: mu held */
  pthread_mutex_t mu;
  pthread_cond_t cv;       /* on CLOCK_MONOTONIC; signalled when settling or stop is set */
  pthread_t thread;
  double (*sampler)(void *arg); /* space amp now; <= 0: no sample. NULL: no sampling */
  void *sampler_arg;
  double sample_sum, sample_max; /* REQUIRES: mu held */
  uint64_t samples;              /* REQUIRES: mu held */
} bench_monitor;

/* Starts monitoring. Without a thread (pthread failures) the benchmark still runs, only
 * unreported. */
void monitor_start(bench_monitor *m, const char *name, int64_t total, double stats_interval,
                   const uint64_t *done_ops);

/* Samples space amplification with sampler(arg) every 50 ms from now on, while the timed
 * part runs. REQUIRES: called right after monitor_start, from the same thread. */
void monitor_sample_space(bench_monitor *m, double (*sampler)(void *arg), void *arg);

/* The samples taken so far: their count, mean and maximum (0 when none). */
void monitor_space_samples(bench_monitor *m, uint64_t *count, double *mean, double *max);

/* The timed part is over: no more interval lines; progress now says "settling". */
void monitor_settling(bench_monitor *m);

/* Stops and joins the thread (clearing a progress line left on a terminal) and frees the
 * monitor's resources. */
void monitor_stop(bench_monitor *m);

#endif /* MAYFLY_BENCH_MONITOR_H */
