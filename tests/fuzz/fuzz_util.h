/* Helpers shared by the fuzz targets in tests/fuzz (header-only, everything static).
 *
 * Each target is one file defining LLVMFuzzerTestOneInput. The same file links either with
 * libFuzzer (scripts/fuzz.sh, clang -fsanitize=fuzzer) or with replay_main.c (CTest replays
 * the checked-in corpus with any compiler). A target checks properties with FUZZ_CHECK, which
 * prints what was violated and aborts: libFuzzer then saves the input as a crash reproducer,
 * and the replay driver dies with a non-zero status, failing the CTest test.
 *
 * The input reader (fuzz_in) turns the fuzzer's bytes into decisions: once the input is used
 * up every read returns zeros, so any byte string is a complete, valid "program" and the
 * fuzzer never wastes executions on inputs a target would reject up front. */
#ifndef MAYFLY_TESTS_FUZZ_FUZZ_UTIL_H
#define MAYFLY_TESTS_FUZZ_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env/env.h"
#include "mayfly.h"
#include "util/error.h"
#include "util/slice.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                        \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "%s:%d: property violated: %s\n  ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                                  \
      fprintf(stderr, "\n  last engine error: %s\n", mf_error_message());            \
      abort();                                                                       \
    }                                                                                \
  } while (0)

/* Out of memory is not a bug of the code under test; give up on the input quietly. */
#define FUZZ_OOM_OK(rc) ((rc) == MAYFLY_ENOMEM)

typedef struct fuzz_in {
  const uint8_t *p;
  size_t n;
} fuzz_in;

static inline fuzz_in fuzz_in_make(const uint8_t *data, size_t size) {
  fuzz_in in = {data, size};
  return in;
}

static inline uint8_t fuzz_u8(fuzz_in *in) {
  if (in->n == 0) return 0;
  in->n--;
  return *in->p++;
}

static inline uint16_t fuzz_u16(fuzz_in *in) {
  uint16_t lo = fuzz_u8(in);
  return (uint16_t)(lo | (uint16_t)fuzz_u8(in) << 8);
}

static inline uint32_t fuzz_u32(fuzz_in *in) {
  uint32_t lo = fuzz_u16(in);
  return lo | (uint32_t)fuzz_u16(in) << 16;
}

/* Up to n bytes of the input (fewer at its end), borrowed from the fuzzer's buffer. */
static inline mf_slice fuzz_take(fuzz_in *in, size_t n) {
  if (n > in->n) n = in->n;
  mf_slice s = mf_slice_make(in->p, n);
  in->p += n;
  in->n -= n;
  return s;
}

/* Creates (or truncates) path in env holding exactly the given bytes. Aborts on failure:
 * the in-memory env only fails when out of memory, which a fuzz input cannot cause here. */
static inline void fuzz_write_file(mf_env *env, const char *path, const void *data, size_t n) {
  mf_wfile *f = NULL;
  int rc = env->new_writable(env, path, &f);
  if (!rc && n) rc = env->append(f, data, n);
  if (f) {
    int crc = env->close_writable(f);
    if (!rc) rc = crc;
  }
  FUZZ_CHECK(rc == MAYFLY_OK, "writing %s to the in-memory env failed: %d", path, rc);
}

static inline mf_env *fuzz_mem_env(void) {
  mf_env *env = NULL;
  int rc = env_mem_create(&env);
  FUZZ_CHECK(rc == MAYFLY_OK, "env_mem_create failed: %d", rc);
  return env;
}

#endif
