/* Tests for the env layer. Every behavioural test runs twice: against env_posix() in a fresh
 * temp directory and against an in-memory env, so the two cannot drift apart. Crash tests
 * only make sense for the in-memory env; lock tests against another process only for posix.
 *
 * Randomized tests print their seed; set MAYFLY_TEST_SEED to replay one. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "env/env.h"
#include "mayfly.h"
#include "util/random.h"
#include "util/slice.h"

enum env_kind { KIND_POSIX, KIND_MEM };
static const enum env_kind posix_kind = KIND_POSIX;
static const enum env_kind mem_kind = KIND_MEM;

typedef struct fixture {
  enum env_kind kind;
  mf_env *env;
  char dir[512]; /* the directory each test works in */
  char path[1024]; /* scratch for path() */
} fixture;

/* dir + "/" + name, in the fixture's scratch buffer (valid until the next call). */
static const char *path(fixture *fx, const char *name) {
  snprintf(fx->path, sizeof fx->path, "%s/%s", fx->dir, name);
  return fx->path;
}

static int setup(void **state) {
  fixture *fx = calloc(1, sizeof *fx);
  if (!fx) return -1;
  fx->kind = *(const enum env_kind *)*state;
  if (fx->kind == KIND_POSIX) {
    fx->env = env_posix();
    const char *base = getenv("MAYFLY_TEST_TMP");
    if (!base || !*base) base = "/tmp";
    if (env_posix()->make_dir(env_posix(), base) != MAYFLY_OK) return -1;
    snprintf(fx->dir, sizeof fx->dir, "%s/test_env.XXXXXX", base);
    if (!mkdtemp(fx->dir)) return -1;
  } else {
    if (env_mem_create(&fx->env) != MAYFLY_OK) return -1;
    snprintf(fx->dir, sizeof fx->dir, "/db");
    if (fx->env->make_dir(fx->env, fx->dir) != MAYFLY_OK) return -1;
  }
  *state = fx;
  return 0;
}

static void remove_tree(mf_env *env, const char *dir) {
  char **names;
  size_t count;
  if (env->list_dir(env, dir, &names, &count) != MAYFLY_OK) return;
  for (size_t i = 0; i < count; i++) {
    char child[1024];
    snprintf(child, sizeof child, "%s/%s", dir, names[i]);
    if (env->is_directory(env, child)) remove_tree(env, child);
    else env->remove_file(env, child);
  }
  env_free_names(names, count);
  env->remove_dir(env, dir);
}

static int teardown(void **state) {
  fixture *fx = *state;
  remove_tree(fx->env, fx->dir);
  int leftover = fx->env->file_exists(fx->env, fx->dir);
  if (fx->env->destroy) fx->env->destroy(fx->env);
  free(fx);
  return leftover ? -1 : 0;
}

/* ---- helpers ---- */

static void write_file(mf_env *env, const char *p, const char *data, int sync) {
  mf_wfile *f;
  assert_int_equal(env->new_writable(env, p, &f), MAYFLY_OK);
  assert_int_equal(env->append(f, data, strlen(data)), MAYFLY_OK);
  if (sync) assert_int_equal(env->sync(f, 1), MAYFLY_OK);
  assert_int_equal(env->close_writable(f), MAYFLY_OK);
}

/* Asserts p holds exactly expect (a C string). */
static void check_file(mf_env *env, const char *p, const char *expect) {
  mf_buf buf = MF_BUF_INIT;
  assert_int_equal(env_read_file(env, p, &buf), MAYFLY_OK);
  assert_int_equal(buf.len, strlen(expect));
  if (buf.len) assert_memory_equal(buf.data, expect, buf.len);
  mf_buf_free(&buf);
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Asserts dir lists exactly the given names (sorted, comma-separated, "" for none). */
static void check_listing(mf_env *env, const char *dir, const char *expect) {
  char **names;
  size_t count;
  assert_int_equal(env->list_dir(env, dir, &names, &count), MAYFLY_OK);
  if (count) qsort(names, count, sizeof *names, cmp_names);
  char joined[1024] = "";
  for (size_t i = 0; i < count; i++) {
    if (i) strcat(joined, ",");
    strcat(joined, names[i]);
  }
  env_free_names(names, count);
  assert_string_equal(joined, expect);
}

static uint64_t test_seed(const char *test) {
  const char *s = getenv("MAYFLY_TEST_SEED");
  uint64_t seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)getpid();
  printf("%s: seed %llu (replay with MAYFLY_TEST_SEED)\n", test, (unsigned long long)seed);
  return seed;
}

/* ---- tests for both envs ---- */

static void test_write_read(void **state) {
  fixture *fx = *state;
  mf_env *env = fx->env;
  const char *p = path(fx, "data");
  mf_wfile *w;
  assert_int_equal(env->new_writable(env, p, &w), MAYFLY_OK);
  assert_int_equal(env->append(w, "hello ", 6), MAYFLY_OK);
  assert_int_equal(env->append(w, "world", 5), MAYFLY_OK);
  assert_int_equal(env->flush(w), MAYFLY_OK);

  mf_rfile *r;
  assert_int_equal(env->open_readable(env, p, &r), MAYFLY_OK);
  char buf[32];
  size_t got = 99;
  assert_int_equal(env->pread(r, 0, 11, buf, &got), MAYFLY_OK);
  assert_int_equal(got, 11);
  assert_memory_equal(buf, "hello world", 11);
  assert_int_equal(env->pread(r, 6, 3, buf, &got), MAYFLY_OK);
  assert_int_equal(got, 3);
  assert_memory_equal(buf, "wor", 3);
  /* a read straddling the end is short; one past it reads nothing */
  assert_int_equal(env->pread(r, 8, 10, buf, &got), MAYFLY_OK);
  assert_int_equal(got, 3);
  assert_memory_equal(buf, "rld", 3);
  assert_int_equal(env->pread(r, 11, 4, buf, &got), MAYFLY_OK);
  assert_int_equal(got, 0);
  assert_int_equal(env->pread(r, 1000, 4, buf, &got), MAYFLY_OK);
  assert_int_equal(got, 0);

  /* a reader sees bytes appended (and flushed) after it opened the file */
  assert_int_equal(env->append(w, "!", 1), MAYFLY_OK);
  assert_int_equal(env->sync(w, 0), MAYFLY_OK);
  assert_int_equal(env->pread(r, 11, 4, buf, &got), MAYFLY_OK);
  assert_int_equal(got, 1);
  assert_int_equal(buf[0], '!');
  env->close_readable(r);
  assert_int_equal(env->close_writable(w), MAYFLY_OK);

  uint64_t size = 0;
  assert_int_equal(env->file_size(env, p, &size), MAYFLY_OK);
  assert_int_equal(size, 12);
  assert_int_equal(env->file_exists(env, p), 1);
  assert_int_equal(env->is_directory(env, p), 0);

  /* new_writable truncates */
  write_file(env, p, "x", 0);
  check_file(env, p, "x");

  /* an append bigger than the 64 KiB write buffer lands after what is buffered */
  size_t big = 100000;
  char *expect = malloc(big + 3);
  assert_non_null(expect);
  memset(expect + 1, 'b', big);
  expect[0] = 'a';
  expect[big + 1] = 'c';
  expect[big + 2] = '\0';
  assert_int_equal(env->new_writable(env, p, &w), MAYFLY_OK);
  assert_int_equal(env->append(w, expect, 1), MAYFLY_OK);
  assert_int_equal(env->append(w, expect + 1, big), MAYFLY_OK);
  assert_int_equal(env->append(w, expect + big + 1, 1), MAYFLY_OK);
  assert_int_equal(env->close_writable(w), MAYFLY_OK);
  check_file(env, p, expect);
  free(expect);
}

/* Appends of random sizes around the 64 KiB write buffer, checked byte for byte. */
static void test_random_appends(void **state) {
  fixture *fx = *state;
  mf_env *env = fx->env;
  mf_random rnd;
  mf_random_seed(&rnd, test_seed("test_random_appends"));
  const size_t sizes[] = {0, 1, 100, 65535, 65536, 65537, 150000};
  mf_buf expect = MF_BUF_INIT;
  mf_wfile *w;
  const char *p = path(fx, "random");
  assert_int_equal(env->new_writable(env, p, &w), MAYFLY_OK);
  for (int i = 0; i < 40; i++) {
    size_t n = sizes[mf_random_uniform(&rnd, sizeof sizes / sizeof sizes[0])];
    if (mf_random_uniform(&rnd, 2)) n = (size_t)mf_random_uniform(&rnd, n + 1);
    char *chunk = malloc(n + 1);
    assert_non_null(chunk);
    for (size_t j = 0; j < n; j++) chunk[j] = (char)mf_random_next(&rnd);
    assert_int_equal(env->append(w, chunk, n), MAYFLY_OK);
    assert_int_equal(mf_buf_append(&expect, chunk, n), MAYFLY_OK);
    free(chunk);
    if (mf_random_uniform(&rnd, 4) == 0) assert_int_equal(env->flush(w), MAYFLY_OK);
    /* Syncs between the writeback starts env_posix makes every MiB or so. */
    if (mf_random_uniform(&rnd, 8) == 0) assert_int_equal(env->sync(w, 0), MAYFLY_OK);
  }
  assert_int_equal(env->close_writable(w), MAYFLY_OK);

  uint64_t size;
  assert_int_equal(env->file_size(env, p, &size), MAYFLY_OK);
  assert_int_equal(size, expect.len);
  mf_buf got = MF_BUF_INIT;
  assert_int_equal(env_read_file(env, p, &got), MAYFLY_OK);
  assert_int_equal(got.len, expect.len);
  if (got.len) assert_memory_equal(got.data, expect.data, got.len);

  /* random positional reads, some running past the end */
  mf_rfile *r;
  assert_int_equal(env->open_readable(env, p, &r), MAYFLY_OK);
  char *buf = malloc(200000);
  assert_non_null(buf);
  for (int i = 0; i < 50; i++) {
    uint64_t off = mf_random_uniform(&rnd, expect.len + 10);
    size_t n = (size_t)mf_random_uniform(&rnd, 200000);
    size_t want = off >= expect.len ? 0 : (expect.len - off < n ? expect.len - off : n);
    size_t got_n;
    assert_int_equal(env->pread(r, off, n, buf, &got_n), MAYFLY_OK);
    assert_int_equal(got_n, want);
    if (want) assert_memory_equal(buf, expect.data + off, want);
  }
  free(buf);
  env->close_readable(r);
  mf_buf_free(&got);
  mf_buf_free(&expect);
}

static void test_missing(void **state) {
  fixture *fx = *state;
  mf_env *env = fx->env;
  char p[1024], other[1024];
  snprintf(p, sizeof p, "%s", path(fx, "nope"));
  snprintf(other, sizeof other, "%s", path(fx, "other"));
  mf_rfile *r = (mf_rfile *)1;
  assert_int_equal(env->open_readable(env, p, &r), MAYFLY_ENOTFOUND);
  assert_null(r);
  uint64_t size;
  assert_int_equal(env->file_size(env, p, &size), MAYFLY_ENOTFOUND);
  assert_int_equal(env->remove_file(env, p), MAYFLY_ENOTFOUND);
  assert_int_equal(env->rename_file(env, p, other), MAYFLY_ENOTFOUND);
  assert_int_equal(env->file_exists(env, p), 0);
  assert_int_equal(env->is_directory(env, p), 0);
  char **names;
  size_t count;
  assert_int_equal(env->list_dir(env, p, &names, &count), MAYFLY_ENOTFOUND);
  mf_buf buf = MF_BUF_INIT;
  assert_int_equal(env_read_file(env, p, &buf), MAYFLY_ENOTFOUND);
  mf_buf_free(&buf);
}

static void test_list_dir(void **state) {
  fixture *fx = *state;
  mf_env *env = fx->env;
  check_listing(env, fx->dir, "");
  write_file(env, path(fx, "b"), "1", 0);
  write_file(env, path(fx, "a"), "2", 0);
  assert_int_equal(env->make_dir(env, path(fx, "sub")), MAYFLY_OK);
  assert_int_equal(env->is_directory(env, path(fx, "sub")), 1);
  assert_int_equal(env->file_exists(env, path(fx, "sub")), 1);
  write_file(env, path(fx, "sub/inner"), "3", 0);
  check_listing(env, fx->dir, "a,b,sub");
  check_listing(env, path(fx, "sub"), "inner");
  /* a trailing slash names the same directory */
  char with_slash[1024];
  snprintf(with_slash, sizeof with_slash, "%s/", fx->dir);
  check_listing(env, with_slash, "a,b,sub");

  assert_int_equal(env->remove_dir(env, path(fx, "sub")), MAYFLY_EIO); /* not empty */
  assert_int_equal(env->remove_file(env, path(fx, "sub/inner")), MAYFLY_OK);
  assert_int_equal(env->remove_dir(env, path(fx, "sub")), MAYFLY_OK);
  assert_int_equal(env->is_directory(env, path(fx, "sub")), 0);
  check_listing(env, fx->dir, "a,b");
}

static void test_rename_remove(void **state) {
  fixture *fx = *state;
  mf_env *env = fx->env;
  char from[1024], to[1024];
  snprintf(from, sizeof from, "%s", path(fx, "new"));
  snprintf(to, sizeof to, "%s", path(fx, "old"));
  write_file(env, to, "old contents", 0);
  write_file(env, from, "new contents", 0);
  assert_int_equal(env->rename_file(env, from, to), MAYFLY_OK);
  check_file(env, to, "new contents");
  assert_int_equal(env->file_exists(env, from), 0);
  check_listing(env, fx->dir, "old");

  /* a reader opened before a remove keeps reading */
  mf_rfile *r;
  assert_int_equal(env->open_readable(env, to, &r), MAYFLY_OK);
  assert_int_equal(env->remove_file(env, to), MAYFLY_OK);
  assert_int_equal(env->file_exists(env, to), 0);
  assert_int_equal(env->remove_file(env, to), MAYFLY_ENOTFOUND);
  char buf[3];
  size_t got;
  assert_int_equal(env->pread(r, 0, 3, buf, &got), MAYFLY_OK);
  assert_int_equal(got, 3);
  assert_memory_equal(buf, "new", 3);
  env->close_readable(r);
  check_listing(env, fx->dir, "");
}

static void test_make_dir(void **state) {
  fixture *fx = *state;
  mf_env *env = fx->env;
  assert_int_equal(env->make_dir(env, fx->dir), MAYFLY_OK); /* already a directory */
  assert_int_equal(env->make_dir(env, path(fx, "d")), MAYFLY_OK);
  assert_int_equal(env->make_dir(env, path(fx, "d")), MAYFLY_OK);
  write_file(env, path(fx, "f"), "file", 0);
  assert_int_equal(env->make_dir(env, path(fx, "f")), MAYFLY_EIO);
  assert_int_equal(env->is_directory(env, path(fx, "f")), 0);
  check_file(env, path(fx, "f"), "file");
}

static void test_lock(void **state) {
  fixture *fx = *state;
  mf_env *env = fx->env;
  char p[1024];
  snprintf(p, sizeof p, "%s", path(fx, "LOCK"));
  mf_lock *a = NULL, *b = (mf_lock *)1;
  assert_int_equal(env->lock_file(env, p, &a), MAYFLY_OK);
  assert_non_null(a);
  assert_int_equal(env->file_exists(env, p), 1);
  assert_int_equal(env->lock_file(env, p, &b), MAYFLY_EBUSY);
  assert_null(b);
  /* another spelling of the same path is the same lock */
  char other[700];
  snprintf(other, sizeof other, "%s/./LOCK", fx->dir);
  assert_int_equal(env->lock_file(env, other, &b), MAYFLY_EBUSY);
  /* a different file is a different lock */
  mf_lock *c;
  assert_int_equal(env->lock_file(env, path(fx, "LOCK2"), &c), MAYFLY_OK);
  env->unlock_file(env, c);
  env->unlock_file(env, a);
  assert_int_equal(env->lock_file(env, p, &b), MAYFLY_OK);
  env->unlock_file(env, b);
}

static void test_write_file_atomic(void **state) {
  fixture *fx = *state;
  mf_env *env = fx->env;
  char p[1024];
  snprintf(p, sizeof p, "%s", path(fx, "CURRENT"));
  assert_int_equal(env_write_file_atomic(env, p, "MANIFEST-000001\n", 16), MAYFLY_OK);
  check_file(env, p, "MANIFEST-000001\n");
  assert_int_equal(env_write_file_atomic(env, p, "MANIFEST-000002\n", 16), MAYFLY_OK);
  check_file(env, p, "MANIFEST-000002\n");
  check_listing(env, fx->dir, "CURRENT"); /* no temp file left */
  assert_int_equal(env_write_file_atomic(env, p, "", 0), MAYFLY_OK);
  check_file(env, p, "");
}

#define NTHREADS 4
typedef struct thread_arg {
  atomic_int *counter;
  int id;
  int seen; /* written by the thread, read after join */
} thread_arg;

static void *thread_body(void *p) {
  thread_arg *arg = p;
  for (int i = 0; i < 1000; i++) atomic_fetch_add(arg->counter, 1);
  arg->seen = arg->id * 10;
  return NULL;
}

static void test_threads_and_clock(void **state) {
  fixture *fx = *state;
  mf_env *env = fx->env;
  atomic_int counter = 0;
  thread_arg args[NTHREADS];
  mf_thread *threads[NTHREADS];
  for (int i = 0; i < NTHREADS; i++) {
    args[i] = (thread_arg){&counter, i + 1, 0};
    assert_int_equal(env->thread_start(env, thread_body, &args[i], &threads[i]), MAYFLY_OK);
  }
  for (int i = 0; i < NTHREADS; i++) assert_int_equal(env->thread_join(env, threads[i]), MAYFLY_OK);
  assert_int_equal(atomic_load(&counter), NTHREADS * 1000);
  for (int i = 0; i < NTHREADS; i++) assert_int_equal(args[i].seen, (i + 1) * 10);

  uint64_t t0 = env->now_micros(env);
  env->sleep_micros(env, 2000);
  uint64_t t1 = env->now_micros(env);
  assert_true(t1 >= t0 + 2000);
}

/* ---- in-memory env only: crashes ---- */

static void test_crash_drops_unsynced_bytes(void **state) {
  fixture *fx = *state;
  mf_env *env = fx->env;
  const char *p = path(fx, "log");
  mf_wfile *w;
  assert_int_equal(env->new_writable(env, p, &w), MAYFLY_OK);
  assert_int_equal(env->sync_dir(env, fx->dir), MAYFLY_OK);
  assert_int_equal(env->append(w, "abc", 3), MAYFLY_OK);
  assert_int_equal(env->sync(w, 0), MAYFLY_OK);
  assert_int_equal(env->append(w, "def", 3), MAYFLY_OK);
  assert_int_equal(env->flush(w), MAYFLY_OK); /* flushed is not synced */
  mf_rfile *r;
  assert_int_equal(env->open_readable(env, p, &r), MAYFLY_OK);

  assert_int_equal(env_mem_crash(env), MAYFLY_OK);
  check_file(env, p, "abc");
  /* handles from before the crash keep working on the truncated file */
  char buf[8];
  size_t got;
  assert_int_equal(env->pread(r, 0, sizeof buf, buf, &got), MAYFLY_OK);
  assert_int_equal(got, 3);
  assert_int_equal(env->append(w, "X", 1), MAYFLY_OK);
  assert_int_equal(env->close_writable(w), MAYFLY_OK);
  check_file(env, p, "abcX");
  env->close_readable(r);
  /* a second crash: "X" was never synced */
  assert_int_equal(env_mem_crash(env), MAYFLY_OK);
  check_file(env, p, "abc");
}

static void test_crash_undoes_unsynced_names(void **state) {
  fixture *fx = *state;
  mf_env *env = fx->env;
  char a[1024], b[1024], c[1024];
  snprintf(a, sizeof a, "%s", path(fx, "a"));
  snprintf(b, sizeof b, "%s", path(fx, "b"));
  snprintf(c, sizeof c, "%s", path(fx, "c"));
  write_file(env, a, "A1", 1);
  write_file(env, c, "C1", 1);
  assert_int_equal(env->sync_dir(env, fx->dir), MAYFLY_OK);

  /* not made durable by sync_dir: a new file, a rename over a, a removal of c */
  write_file(env, b, "B1", 1);
  assert_int_equal(env->rename_file(env, b, a), MAYFLY_OK);
  write_file(env, b, "B2", 1);
  assert_int_equal(env->remove_file(env, c), MAYFLY_OK);
  check_listing(env, fx->dir, "a,b");
  assert_int_equal(env_mem_crash(env), MAYFLY_OK);
  check_listing(env, fx->dir, "a,c");
  check_file(env, a, "A1");
  check_file(env, c, "C1");

  /* the same changes, this time followed by sync_dir, survive */
  write_file(env, b, "B1", 1);
  assert_int_equal(env->rename_file(env, b, a), MAYFLY_OK);
  assert_int_equal(env->remove_file(env, c), MAYFLY_OK);
  assert_int_equal(env->sync_dir(env, fx->dir), MAYFLY_OK);
  assert_int_equal(env_mem_crash(env), MAYFLY_OK);
  check_listing(env, fx->dir, "a");
  check_file(env, a, "B1");
}

/* sync_dir covers only the names directly in the directory synced. */
static void test_crash_sync_dir_is_per_directory(void **state) {
  fixture *fx = *state;
  mf_env *env = fx->env;
  assert_int_equal(env->make_dir(env, path(fx, "sub")), MAYFLY_OK);
  write_file(env, path(fx, "top"), "t", 1);
  write_file(env, path(fx, "sub/low"), "l", 1);
  assert_int_equal(env->sync_dir(env, fx->dir), MAYFLY_OK);
  assert_int_equal(env_mem_crash(env), MAYFLY_OK);
  check_listing(env, fx->dir, "sub,top");
  check_listing(env, path(fx, "sub"), "");

  write_file(env, path(fx, "sub/low"), "l", 1);
  assert_int_equal(env->sync_dir(env, path(fx, "sub")), MAYFLY_OK);
  assert_int_equal(env_mem_crash(env), MAYFLY_OK);
  check_file(env, path(fx, "sub/low"), "l");
}

static void test_crash_after_write_file_atomic(void **state) {
  fixture *fx = *state;
  mf_env *env = fx->env;
  char p[1024];
  snprintf(p, sizeof p, "%s", path(fx, "CURRENT"));
  assert_int_equal(env_write_file_atomic(env, p, "one\n", 4), MAYFLY_OK);
  assert_int_equal(env_mem_crash(env), MAYFLY_OK);
  check_file(env, p, "one\n");
  /* a plain overwrite truncates in place, so without a sync neither version survives */
  write_file(env, p, "two\n", 0);
  assert_int_equal(env_mem_crash(env), MAYFLY_OK);
  check_file(env, p, "");
}

static void test_mem_paths(void **state) {
  fixture *fx = *state;
  mf_env *env = fx->env;
  /* directories exist implicitly above every file */
  write_file(env, "/x/y/z", "deep", 0);
  assert_int_equal(env->is_directory(env, "/x"), 1);
  assert_int_equal(env->is_directory(env, "/x/y"), 1);
  check_listing(env, "/x", "y");
  check_file(env, "//x/./y/z", "deep");
  mf_wfile *w = (mf_wfile *)1;
  assert_int_equal(env->new_writable(env, "/x/y", &w), MAYFLY_EIO);
  assert_null(w);
  check_listing(env, "/", "db,x");
  remove_tree(env, "/x");
  check_listing(env, "/", "db");
  assert_int_equal(env_mem_crash(env_posix()), MAYFLY_EINVAL);
}

/* ---- posix only: a lock held by another process ---- */

static void test_posix_lock_other_process(void **state) {
  fixture *fx = *state;
  mf_env *env = fx->env;
  char p[1024];
  snprintf(p, sizeof p, "%s", path(fx, "LOCK"));
  int ready[2], done[2];
  assert_int_equal(pipe(ready), 0);
  assert_int_equal(pipe(done), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int fd = open(p, O_RDWR | O_CREAT, 0644);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    char c = (fd >= 0 && fcntl(fd, F_SETLK, &fl) == 0) ? 'y' : 'n';
    if (write(ready[1], &c, 1) != 1) _exit(1);
    if (read(done[0], &c, 1) != 1) _exit(1);
    _exit(0);
  }
  char c = 0;
  assert_int_equal(read(ready[0], &c, 1), 1);
  assert_int_equal(c, 'y');
  mf_lock *lock = NULL;
  assert_int_equal(env->lock_file(env, p, &lock), MAYFLY_EBUSY);
  assert_int_equal(write(done[1], "x", 1), 1);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_int_equal(env->lock_file(env, p, &lock), MAYFLY_OK);

  /* and the other way round: our lock is a real fcntl lock another process sees */
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int fd = open(p, O_RDWR);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    _exit(fd >= 0 && fcntl(fd, F_SETLK, &fl) != 0 ? 0 : 1);
  }
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  env->unlock_file(env, lock);
  for (int i = 0; i < 2; i++) {
    close(ready[i]);
    close(done[i]);
  }
}

/* Whether another process can take a classic fcntl lock on p now (0: it cannot). */
static int other_process_can_lock(const char *p) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int fd = open(p, O_RDWR);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    _exit(fd >= 0 && fcntl(fd, F_SETLK, &fl) == 0 ? 1 : 0);
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  return WEXITSTATUS(status);
}

/* The lock survives this process opening and closing the file some other way (with
 * process-owned F_SETLK locks, closing any descriptor of the file dropped the lock, and
 * another process could then open the database beside this one). */
static void test_posix_lock_survives_other_close(void **state) {
  fixture *fx = *state;
  mf_env *env = fx->env;
  char p[1024];
  snprintf(p, sizeof p, "%s", path(fx, "LOCK"));
  mf_lock *lock = NULL;
  assert_int_equal(env->lock_file(env, p, &lock), MAYFLY_OK);
  assert_int_equal(other_process_can_lock(p), 0);
  int fd = open(p, O_RDONLY);
  assert_true(fd >= 0);
  close(fd);
  if (other_process_can_lock(p)) fail_msg("closing another descriptor released the lock");
  env->unlock_file(env, lock);
  assert_int_equal(other_process_can_lock(p), 1);
}

/* A child forked while this process holds a lock holds none: it cannot take the lock while
 * the parent has it, can once the parent releases it, and its copy of the descriptor does
 * not keep the lock alive for the parent's next lock_file either. */
static void test_posix_lock_fork(void **state) {
  fixture *fx = *state;
  mf_env *env = fx->env;
  char p[1024];
  snprintf(p, sizeof p, "%s", path(fx, "LOCK"));
  mf_lock *lock = NULL;
  assert_int_equal(env->lock_file(env, p, &lock), MAYFLY_OK);
  int to_child[2], to_parent[2];
  assert_int_equal(pipe(to_child), 0);
  assert_int_equal(pipe(to_parent), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    char c;
    mf_lock *mine = NULL;
    c = env->lock_file(env, p, &mine) == MAYFLY_EBUSY ? 'b' : 'x'; /* the parent holds it */
    if (write(to_parent[1], &c, 1) != 1 || read(to_child[0], &c, 1) != 1) _exit(1);
    c = env->lock_file(env, p, &mine) == MAYFLY_OK ? 'y' : 'n'; /* the parent released it */
    if (c == 'y') env->unlock_file(env, mine);
    if (write(to_parent[1], &c, 1) != 1 || read(to_child[0], &c, 1) != 1) _exit(1);
    _exit(0);
  }
  const char *failure = NULL;
  char c = 0;
  if (read(to_parent[0], &c, 1) != 1 || c != 'b') failure = "the child took a lock its parent holds";
  env->unlock_file(env, lock);
  if (!failure && (write(to_child[1], "x", 1) != 1 || read(to_parent[0], &c, 1) != 1 || c != 'y'))
    failure = "the child cannot take the lock its parent released";
  /* The child is still alive, with its copies of the parent's descriptors closed. */
  if (!failure && env->lock_file(env, p, &lock) != MAYFLY_OK)
    failure = "the parent cannot lock again while the child lives";
  else if (!failure)
    env->unlock_file(env, lock);
  if (failure) kill(pid, SIGKILL); /* it would wait for the parent for ever */
  else assert_int_equal(write(to_child[1], "x", 1), 1);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  for (int i = 0; i < 2; i++) {
    close(to_child[i]);
    close(to_parent[i]);
  }
  if (failure) fail_msg("%s", failure);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* A directory reached through a symlink is the same lock. */
static void test_posix_lock_symlinked_dir(void **state) {
  fixture *fx = *state;
  mf_env *env = fx->env;
  char real[1024], alias[1024], a[1100], b[1100];
  snprintf(real, sizeof real, "%s", path(fx, "real"));
  snprintf(alias, sizeof alias, "%s", path(fx, "alias"));
  assert_int_equal(mkdir(real, 0755), 0);
  assert_int_equal(symlink(real, alias), 0);
  snprintf(a, sizeof a, "%s/LOCK", real);
  snprintf(b, sizeof b, "%s/LOCK", alias);
  mf_lock *lock = NULL, *other = NULL;
  assert_int_equal(env->lock_file(env, a, &lock), MAYFLY_OK);
  assert_int_equal(env->lock_file(env, b, &other), MAYFLY_EBUSY);
  env->unlock_file(env, lock);
  assert_int_equal(env->lock_file(env, b, &other), MAYFLY_OK);
  assert_int_equal(env->lock_file(env, a, &lock), MAYFLY_EBUSY);
  env->unlock_file(env, other);
  unlink(a);
  unlink(alias);
  rmdir(real);
}

/* map_readable: env_posix maps (the bytes are the file's, a prefix can be mapped, one file
 * can be mapped several times) up to its process-wide limit, past which it declines with
 * MAYFLY_ENOTSUP until a mapping is released; env_mem cannot map at all. */
static void test_map(void **state) {
  fixture *fx = *state;
  mf_env *env = fx->env;
  if (fx->kind == KIND_MEM) {
    assert_false(env_has_map(env));
    return;
  }
  assert_true(env_has_map(env));
  const char *text = "mapped bytes, read in place";
  write_file(env, path(fx, "m"), text, 0);
  mf_rfile *f;
  assert_int_equal(env->open_readable(env, path(fx, "m"), &f), MAYFLY_OK);
  const char *data = NULL;
  mf_map *map = NULL;
  assert_int_equal(env->map_readable(env, f, strlen(text), &data, &map), MAYFLY_OK);
  assert_non_null(map);
  assert_memory_equal(data, text, strlen(text));
  const char *prefix = NULL;
  mf_map *prefix_map = NULL;
  assert_int_equal(env->map_readable(env, f, 6, &prefix, &prefix_map), MAYFLY_OK);
  assert_memory_equal(prefix, "mapped", 6);
  env->unmap(env, prefix_map);

  /* Fill the process-wide budget with mappings of the same file (one is already held). */
  enum { MANY = 5000 };
  static mf_map *maps[MANY];
  int held = 0;
  int rc = MAYFLY_OK;
  while (held < MANY) {
    const char *p = NULL;
    rc = env->map_readable(env, f, strlen(text), &p, &maps[held]);
    if (rc != MAYFLY_OK) break;
    held++;
  }
  assert_int_equal(rc, MAYFLY_ENOTSUP);
  assert_null(maps[held]);
  printf("env_posix mapped %d files at once\n", held + 1);
  assert_true(held + 1 >= 100); /* a limit, but no small one */
  env->unmap(env, maps[--held]); /* one slot free again */
  assert_int_equal(env->map_readable(env, f, strlen(text), &data, &maps[held]), MAYFLY_OK);
  held++;
  while (held > 0) env->unmap(env, maps[--held]);
  env->unmap(env, map);
  env->close_readable(f);
}

/* Like cmocka_unit_test_prestate_setup_teardown, with the env in the test's name. */
#define ON(fn, kind) {#fn "/" #kind, fn, setup, teardown, (void *)&kind##_kind}
#define BOTH(fn) ON(fn, posix), ON(fn, mem)

int main(void) {
  const struct CMUnitTest tests[] = {
      BOTH(test_write_read),
      BOTH(test_random_appends),
      BOTH(test_missing),
      BOTH(test_list_dir),
      BOTH(test_rename_remove),
      BOTH(test_make_dir),
      BOTH(test_lock),
      BOTH(test_write_file_atomic),
      BOTH(test_threads_and_clock),
      BOTH(test_map),
      ON(test_crash_drops_unsynced_bytes, mem),
      ON(test_crash_undoes_unsynced_names, mem),
      ON(test_crash_sync_dir_is_per_directory, mem),
      ON(test_crash_after_write_file_atomic, mem),
      ON(test_mem_paths, mem),
      ON(test_posix_lock_other_process, posix),
      ON(test_posix_lock_survives_other_close, posix),
      ON(test_posix_lock_fork, posix),
      ON(test_posix_lock_symlinked_dir, posix),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
