/* An in-memory env that can "map" files, for tests of the mapped read paths on env_mem
 * (which has no map_readable of its own, so that its users exercise pread).
 *
 * map_readable copies the first size bytes of the file into a malloc'd image: the reader
 * under test sees memory that behaves like a mapping (stable, read-only by contract), and
 * changing the in-memory file afterwards does not change the image, as with a private
 * mapping. With refuse set, every map is refused with MAYFLY_ENOTSUP (the env's limit of
 * mapped files reached), so the reader's fallback to pread runs. Destroying the env checks
 * that every mapping was released.
 *
 * Include after cmocka.h. */
#ifndef MAYFLY_TESTS_TEST_MAP_ENV_H
#define MAYFLY_TESTS_TEST_MAP_ENV_H

#include <stdlib.h>

#include "env/env.h"
#include "mayfly.h"

typedef struct test_map_env {
  mf_env env; /* first, so the engine's mf_env * is also a test_map_env * */
  mf_env *base;
  int refuse;
  int live_maps; /* must be back to 0 when the env is destroyed */
  int maps_made;
} test_map_env;

static inline int test_map_env_map(mf_env *env, mf_rfile *f, uint64_t size, const char **data,
                                   mf_map **out) {
  test_map_env *m = (test_map_env *)env;
  *data = NULL;
  *out = NULL;
  if (m->refuse) return MAYFLY_ENOTSUP;
  char *image = malloc(size);
  size_t got = 0;
  assert_non_null(image);
  assert_int_equal(m->base->pread(f, 0, size, image, &got), MAYFLY_OK);
  if (got != size) { /* shorter than the caller believes: refused, as env_posix does */
    free(image);
    return MAYFLY_ENOTSUP;
  }
  m->live_maps++;
  m->maps_made++;
  *data = image;
  *out = (mf_map *)image; /* opaque to the reader: here simply the copy */
  return MAYFLY_OK;
}

static inline void test_map_env_unmap(mf_env *env, mf_map *map) {
  ((test_map_env *)env)->live_maps--;
  free(map);
}

static inline void test_map_env_destroy(mf_env *env) {
  test_map_env *m = (test_map_env *)env;
  assert_int_equal(m->live_maps, 0);
  m->base->destroy(m->base);
  free(m);
}

/* A fresh in-memory env with map support (refused when refuse is set); destroy it with
 * env->destroy(env). */
static inline mf_env *test_map_env_create(int refuse) {
  mf_env *base;
  assert_int_equal(env_mem_create(&base), MAYFLY_OK);
  assert_false(env_has_map(base));
  test_map_env *m = calloc(1, sizeof *m);
  assert_non_null(m);
  m->env = *base; /* env_mem's functions find their state through ctx, which is copied */
  m->base = base;
  m->refuse = refuse;
  m->env.map_readable = test_map_env_map;
  m->env.unmap = test_map_env_unmap;
  m->env.destroy = test_map_env_destroy;
  assert_true(env_has_map(&m->env));
  return &m->env;
}

/* How many files env mapped so far (0 for any other env). */
static inline int test_map_env_maps_made(mf_env *env) {
  return env->destroy == test_map_env_destroy ? ((test_map_env *)env)->maps_made : 0;
}

#endif
