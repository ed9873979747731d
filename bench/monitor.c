/* The progress and interval-statistics thread of mayfly_bench; see bench/monitor.h.
 *
 * The thread sleeps on a condition variable until the next report is due (or it is told to
 * settle or stop), so stopping it costs no polling delay at the end of every benchmark. */
#include "monitor.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static double now_seconds(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Wipes a progress line off the terminal, so that the next line printed (on stdout, which is
 * often the same terminal) starts clean. REQUIRES: m->mu held. */
static void clear_progress(bench_monitor *m)
{
  if (m->tty && m->shown) {
    fprintf(stderr, "\r%-79s\r", "");
    fflush(stderr);
  }
  m->shown = 0;
}

/* REQUIRES: m->mu held. */
static void print_progress(bench_monitor *m, double now, uint64_t ops)
{
  char line[160];
  double elapsed = now - m->start;
  double rate = elapsed > 0 ? (double)ops / elapsed : 0.0;
  if (m->settling)
    snprintf(line, sizeof line, "... %s: settling (waiting for background work), %.0f s",
             m->name, elapsed);
  else if (m->total > 0)
    snprintf(line, sizeof line, "... %s: %" PRIu64 "/%" PRId64 " ops, %.0f ops/s", m->name,
             ops, m->total, rate);
  else
    snprintf(line, sizeof line, "... %s: %" PRIu64 " ops, %.0f ops/s", m->name, ops, rate);
  if (m->tty)
    fprintf(stderr, "\r%-79s", line);
  else
    fprintf(stderr, "%s\n", line);
  fflush(stderr);
  m->shown = 1;
}

/* Seconds between two space samples: often enough that a 10-s benchmark gets 200 of them
 * and a compaction's transient peak is seen in proportion to how long it lasts. */
#define SAMPLE_EVERY 0.05

static void *monitor_main(void *arg)
{
  bench_monitor *m = arg;
  const double progress_every = m->tty ? 2.0 : 5.0;
  double next_progress = m->start + progress_every;
  double next_stats = m->stats_interval > 0 ? m->start + m->stats_interval : INFINITY;
  double next_sample = m->start + SAMPLE_EVERY;
  double last_t = m->start;
  uint64_t last_ops = 0;
  pthread_mutex_lock(&m->mu);
  while (!m->stop) {
    double wake = fmin(fmin(next_progress, next_stats),
                       m->sampler && !m->settling ? next_sample : INFINITY);
    struct timespec ts = {.tv_sec = (time_t)wake,
                          .tv_nsec = (long)((wake - floor(wake)) * 1e9)};
    pthread_cond_timedwait(&m->cv, &m->mu, &ts);
    if (m->stop)
      break;
    double now = now_seconds();
    uint64_t ops = __atomic_load_n(m->done_ops, __ATOMIC_RELAXED);
    if (now >= next_stats) {
      if (!m->settling) {
        clear_progress(m);
        double span = now - last_t, total = now - m->start;
        printf("             [%s %.1f s] interval %" PRIu64 " ops, %.0f ops/s; cumulative %" PRIu64
               " ops, %.0f ops/s\n",
               m->name, total, ops - last_ops, span > 0 ? (double)(ops - last_ops) / span : 0.0,
               ops, total > 0 ? (double)ops / total : 0.0);
        fflush(stdout);
      }
      last_ops = ops;
      last_t = now;
      while (next_stats <= now)
        next_stats += m->stats_interval;
    }
    if (m->sampler && now >= next_sample) {
      if (!m->settling) {
        /* The sampler reads the directory: no lock needed, and none held while it runs. */
        pthread_mutex_unlock(&m->mu);
        double amp = m->sampler(m->sampler_arg);
        pthread_mutex_lock(&m->mu);
        if (amp > 0 && !m->settling) {
          m->sample_sum += amp;
          m->sample_max = fmax(m->sample_max, amp);
          m->samples++;
        }
      }
      next_sample = now + SAMPLE_EVERY;
    }
    if (now >= next_progress) {
      print_progress(m, now, ops);
      next_progress = now + progress_every;
    }
  }
  clear_progress(m);
  pthread_mutex_unlock(&m->mu);
  return NULL;
}

void monitor_start(bench_monitor *m, const char *name, int64_t total, double stats_interval,
                   const uint64_t *done_ops)
{
  *m = (bench_monitor){.name = name,
                       .total = total,
                       .stats_interval = stats_interval,
                       .done_ops = done_ops,
                       .start = now_seconds(),
                       .tty = isatty(STDERR_FILENO)};
  pthread_condattr_t attr;
  pthread_mutex_init(&m->mu, NULL);
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&m->cv, &attr);
  pthread_condattr_destroy(&attr);
  m->running = pthread_create(&m->thread, NULL, monitor_main, m) == 0;
}

void monitor_sample_space(bench_monitor *m, double (*sampler)(void *arg), void *arg)
{
  pthread_mutex_lock(&m->mu);
  m->sampler_arg = arg;
  m->sampler = sampler;
  pthread_cond_signal(&m->cv);
  pthread_mutex_unlock(&m->mu);
}

void monitor_space_samples(bench_monitor *m, uint64_t *count, double *mean, double *max)
{
  pthread_mutex_lock(&m->mu);
  *count = m->samples;
  *mean = m->samples > 0 ? m->sample_sum / (double)m->samples : 0.0;
  *max = m->sample_max;
  pthread_mutex_unlock(&m->mu);
}

static void set_flags(bench_monitor *m, int settling, int stop)
{
  pthread_mutex_lock(&m->mu);
  clear_progress(m); /* the caller is about to print results */
  m->settling |= settling;
  m->stop |= stop;
  pthread_cond_signal(&m->cv);
  pthread_mutex_unlock(&m->mu);
}

void monitor_settling(bench_monitor *m)
{
  set_flags(m, 1, 0);
}

void monitor_stop(bench_monitor *m)
{
  set_flags(m, 0, 1);
  if (m->running)
    pthread_join(m->thread, NULL);
  pthread_cond_destroy(&m->cv);
  pthread_mutex_destroy(&m->mu);
}
