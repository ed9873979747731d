/* The fault-injecting env (src/env/env_fault.h): nth-call faults once and persistent, the
 * ENOSPC message, counters, freezing, and power loss on an in-memory base (delegated to
 * env_mem_crash) and on the posix env (the wrapper's own tracking), with and without a
 * garbage tail. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "env/env.h"
#include "env/env_fault.h"
#include "mayfly.h"
#include "util/error.h"
#include "util/slice.h"

static void write_file(mf_env *e, const char *path, const char *synced, const char *unsynced) {
  mf_wfile *w = NULL;
  assert_int_equal(e->new_writable(e, path, &w), MAYFLY_OK);
  assert_int_equal(e->append(w, synced, strlen(synced)), MAYFLY_OK);
  assert_int_equal(e->sync(w, 1), MAYFLY_OK);
  if (unsynced[0]) assert_int_equal(e->append(w, unsynced, strlen(unsynced)), MAYFLY_OK);
  assert_int_equal(e->close_writable(w), MAYFLY_OK);
}

static size_t file_len(mf_env *e, const char *path) {
  uint64_t size = 0;
  assert_int_equal(e->file_size(e, path, &size), MAYFLY_OK);
  return (size_t)size;
}

static void test_nth_once(void **state) {
  (void)state;
  mf_env *mem = NULL, *e = NULL;
  assert_int_equal(env_mem_create(&mem), MAYFLY_OK);
  assert_int_equal(env_fault_create(mem, &e), MAYFLY_OK);
  mf_wfile *w = NULL;
  assert_int_equal(e->new_writable(e, "/d/f", &w), MAYFLY_OK);
  env_fault_set(e, ENV_FAULT_WRITE, 2, 0, ENV_FAULT_EIO);
  assert_int_equal(e->append(w, "a", 1), MAYFLY_OK);
  assert_int_equal(e->append(w, "b", 1), MAYFLY_EIO);
  assert_non_null(strstr(mf_error_message(), "I/O error"));
  assert_non_null(strstr(mf_error_message(), "/d/f"));
  assert_int_equal(e->append(w, "c", 1), MAYFLY_OK);
  assert_int_equal(env_fault_count(e, ENV_FAULT_WRITE), 3);
  assert_int_equal(env_fault_injected(e), 1);
  assert_int_equal(env_fault_count_after_fault(e, ENV_FAULT_WRITE), 1);
  char path[64];
  env_fault_first_path(e, path, sizeof path);
  assert_string_equal(path, "/d/f");
  assert_int_equal(e->close_writable(w), MAYFLY_OK);
  assert_int_equal(file_len(e, "/d/f"), 2); /* the failed append wrote nothing */
  e->destroy(e);
  mem->destroy(mem);
}

static void test_persistent_enospc(void **state) {
  (void)state;
  mf_env *mem = NULL, *e = NULL;
  assert_int_equal(env_mem_create(&mem), MAYFLY_OK);
  assert_int_equal(env_fault_create(mem, &e), MAYFLY_OK);
  env_fault_set(e, ENV_FAULT_CREATE, 2, 1, ENV_FAULT_ENOSPC);
  mf_wfile *w = NULL;
  assert_int_equal(e->new_writable(e, "/d/1", &w), MAYFLY_OK);
  assert_int_equal(e->close_writable(w), MAYFLY_OK);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(e->new_writable(e, "/d/2", &w), MAYFLY_EIO);
    assert_non_null(strstr(mf_error_message(), "no space left on device"));
  }
  assert_int_equal(e->file_exists(e, "/d/2"), 0);
  assert_int_equal(env_fault_injected(e), 3);
  env_fault_clear(e);
  assert_int_equal(e->new_writable(e, "/d/2", &w), MAYFLY_OK);
  assert_int_equal(e->close_writable(w), MAYFLY_OK);
  assert_int_equal(env_fault_count(e, ENV_FAULT_CREATE), 5);
  e->destroy(e);
  mem->destroy(mem);
}

static void test_each_kind(void **state) {
  (void)state;
  mf_env *mem = NULL, *e = NULL;
  assert_int_equal(env_mem_create(&mem), MAYFLY_OK);
  assert_int_equal(env_fault_create(mem, &e), MAYFLY_OK);
  write_file(e, "/d/a", "hello", "");
  env_fault_set(e, ENV_FAULT_READ, 1, 0, ENV_FAULT_EIO);
  mf_rfile *r = NULL;
  assert_int_equal(e->open_readable(e, "/d/a", &r), MAYFLY_EIO);
  assert_int_equal(e->open_readable(e, "/d/a", &r), MAYFLY_OK);
  env_fault_set(e, ENV_FAULT_READ, 1, 0, ENV_FAULT_EIO);
  char buf[8];
  size_t got = 0;
  assert_int_equal(e->pread(r, 0, 5, buf, &got), MAYFLY_EIO);
  assert_int_equal(e->pread(r, 0, 5, buf, &got), MAYFLY_OK);
  assert_int_equal(got, 5);
  e->close_readable(r);
  env_fault_set(e, ENV_FAULT_RENAME, 1, 0, ENV_FAULT_EIO);
  assert_int_equal(e->rename_file(e, "/d/a", "/d/b"), MAYFLY_EIO);
  assert_int_equal(e->file_exists(e, "/d/a"), 1);
  env_fault_set(e, ENV_FAULT_DIR_SYNC, 1, 0, ENV_FAULT_EIO);
  assert_int_equal(e->sync_dir(e, "/d"), MAYFLY_EIO);
  assert_int_equal(e->sync_dir(e, "/d"), MAYFLY_OK);
  env_fault_set(e, ENV_FAULT_UNLINK, 1, 0, ENV_FAULT_EIO);
  assert_int_equal(e->remove_file(e, "/d/a"), MAYFLY_EIO);
  assert_int_equal(e->file_exists(e, "/d/a"), 1);
  assert_int_equal(e->remove_file(e, "/d/a"), MAYFLY_OK);
  mf_wfile *w = NULL;
  assert_int_equal(e->new_writable(e, "/d/c", &w), MAYFLY_OK);
  env_fault_set(e, ENV_FAULT_SYNC, 1, 0, ENV_FAULT_EIO);
  assert_int_equal(e->sync(w, 0), MAYFLY_EIO);
  assert_int_equal(e->sync(w, 0), MAYFLY_OK);
  /* frozen: every mutation fails and is not counted */
  env_fault_clear(e);
  env_fault_freeze(e, 1);
  uint64_t writes = env_fault_count(e, ENV_FAULT_WRITE);
  assert_int_equal(e->append(w, "x", 1), MAYFLY_EIO);
  assert_int_equal(e->make_dir(e, "/z"), MAYFLY_EIO);
  assert_int_equal(env_fault_count(e, ENV_FAULT_WRITE), writes);
  assert_int_equal(e->close_writable(w), MAYFLY_EIO); /* freed all the same */
  env_fault_freeze(e, 0);
  assert_int_equal(e->make_dir(e, "/z"), MAYFLY_OK);
  e->destroy(e);
  mem->destroy(mem);
}

/* The crash model on base (dir: its directory, already existing and synced). */
static void check_power_loss(mf_env *base, const char *dir, int garbage) {
  mf_env *e = NULL;
  assert_int_equal(env_fault_create(base, &e), MAYFLY_OK);
  char durable[256], lost[256], renamed[256], tmp[256];
  snprintf(durable, sizeof durable, "%s/durable", dir);
  snprintf(lost, sizeof lost, "%s/lost", dir);
  snprintf(tmp, sizeof tmp, "%s/tmp", dir);
  snprintf(renamed, sizeof renamed, "%s/renamed", dir);
  write_file(e, durable, "synced", "-tail");
  write_file(e, tmp, "whole", "");
  assert_int_equal(e->sync_dir(e, dir), MAYFLY_OK);
  assert_int_equal(e->rename_file(e, tmp, renamed), MAYFLY_OK);
  write_file(e, lost, "synced but never in a synced directory", "");
  assert_int_equal(env_fault_power_loss(e, garbage), MAYFLY_OK);
  assert_int_equal(e->file_exists(e, lost), 0);
  assert_int_equal(file_len(e, durable), garbage ? 11 : 6);
  mf_buf data = {0};
  assert_int_equal(env_read_file(e, durable, &data), MAYFLY_OK);
  assert_memory_equal(data.data, "synced", 6);
  if (garbage) assert_memory_not_equal(data.data + 6, "-tail", 5);
  mf_buf_free(&data);
  /* an unsynced rename: the target does not survive (tmp survives on the mem env, which
   * undoes renames exactly) */
  assert_int_equal(e->file_exists(e, renamed), 0);
  e->destroy(e);
}

static void test_power_loss_mem(void **state) {
  (void)state;
  for (int garbage = 0; garbage <= 1; garbage++) {
    mf_env *mem = NULL;
    assert_int_equal(env_mem_create(&mem), MAYFLY_OK);
    assert_int_equal(mem->make_dir(mem, "/d"), MAYFLY_OK);
    check_power_loss(mem, "/d", garbage);
    assert_int_equal(mem->file_exists(mem, "/d/tmp"), 1);
    mem->destroy(mem);
  }
}

static void test_power_loss_posix(void **state) {
  (void)state;
  const char *root = getenv("MAYFLY_TEST_TMP");
  if (!root || !root[0]) root = "/tmp";
  mf_env *px = env_posix();
  for (int garbage = 0; garbage <= 1; garbage++) {
    char dir[256];
    snprintf(dir, sizeof dir, "%s/env_fault_%d_%d", root, (int)getpid(), garbage);
    assert_int_equal(px->make_dir(px, dir), MAYFLY_OK);
    check_power_loss(px, dir, garbage);
    char **names = NULL;
    size_t n = 0;
    assert_int_equal(px->list_dir(px, dir, &names, &n), MAYFLY_OK);
    for (size_t i = 0; i < n; i++) {
      char p[512];
      snprintf(p, sizeof p, "%s/%s", dir, names[i]);
      px->remove_file(px, p);
    }
    env_free_names(names, n);
    assert_int_equal(px->remove_dir(px, dir), MAYFLY_OK);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_nth_once),        cmocka_unit_test(test_persistent_enospc),
      cmocka_unit_test(test_each_kind),       cmocka_unit_test(test_power_loss_mem),
      cmocka_unit_test(test_power_loss_posix),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
