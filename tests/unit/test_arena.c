/* Arena tests: random-size allocations are writable, distinct and non-overlapping (each is
 * filled with its own pattern and checked after all allocations), aligned allocations are
 * aligned, large requests work, usage grows. Randomized: prints its seed; set
 * MAYFLY_TEST_SEED to replay. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mayfly.h"
#include "util/arena.h"
#include "util/random.h"

static uint64_t test_seed(void) {
  const char *env = getenv("MAYFLY_TEST_SEED");
  uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
  printf("test_arena: seed %llu (replay with MAYFLY_TEST_SEED)\n", (unsigned long long)seed);
  return seed;
}

typedef struct alloc_rec {
  unsigned char *p;
  size_t n;
} alloc_rec;

static int by_address(const void *x, const void *y) {
  uintptr_t a = (uintptr_t)((const alloc_rec *)x)->p, b = (uintptr_t)((const alloc_rec *)y)->p;
  return (a > b) - (a < b);
}

static void test_random_allocations(void **state) {
  (void)state;
  mf_random rnd;
  mf_random_seed(&rnd, test_seed());
  mf_arena *a;
  assert_int_equal(arena_create(&a), MAYFLY_OK);
  enum { N = 20000 };
  alloc_rec *recs = malloc(sizeof(alloc_rec) * N);
  assert_non_null(recs);
  size_t total = 0;
  size_t last_usage = arena_memory_usage(a);
  for (int i = 0; i < N; i++) {
    size_t n;
    uint64_t kind = mf_random_uniform(&rnd, 100);
    if (kind < 2)
      n = 1024 + mf_random_uniform(&rnd, 20000); /* big: own block */
    else if (kind < 10)
      n = mf_random_uniform(&rnd, 1025); /* up to the large-request boundary */
    else
      n = mf_random_uniform(&rnd, 64);
    /* 0: unaligned; 1: max_align_t; 2: a random smaller power of two */
    int aligned = (int)mf_random_uniform(&rnd, 3);
    size_t align = aligned == 1 ? alignof(max_align_t)
                                : (size_t)1 << mf_random_uniform(&rnd, 4); /* 1..8 */
    unsigned char *p = aligned == 0   ? arena_alloc(a, n)
                       : aligned == 1 ? arena_alloc_aligned(a, n)
                                      : arena_alloc_aligned_to(a, n, align);
    assert_non_null(p);
    if (aligned) assert_int_equal((uintptr_t)p % align, 0);
    memset(p, (int)(i & 0xff), n);
    recs[i].p = p;
    recs[i].n = n;
    total += n;
    size_t usage = arena_memory_usage(a);
    assert_true(usage >= last_usage);
    last_usage = usage;
  }
  assert_true(arena_memory_usage(a) >= total);
  /* Not wildly wasteful: small requests pack into 4 KiB blocks. */
  assert_true(arena_memory_usage(a) < 2 * total + 64 * 1024);
  /* Every allocation still holds its own pattern: nothing overlapped. */
  for (int i = 0; i < N; i++)
    for (size_t j = 0; j < recs[i].n; j++) assert_int_equal(recs[i].p[j], i & 0xff);
  /* In address order, each allocation ends before the next begins (a zero-size request still
   * owns one byte). */
  qsort(recs, N, sizeof recs[0], by_address);
  for (int i = 0; i + 1 < N; i++)
    assert_true(recs[i].p + (recs[i].n ? recs[i].n : 1) <= recs[i + 1].p);
  free(recs);
  arena_destroy(a);
}

static void test_usage_and_large(void **state) {
  (void)state;
  mf_arena *a;
  assert_int_equal(arena_create(&a), MAYFLY_OK);
  size_t u0 = arena_memory_usage(a);
  char *small = arena_alloc(a, 10);
  assert_non_null(small);
  size_t u1 = arena_memory_usage(a);
  assert_true(u1 >= u0 + 4096); /* first block */
  /* More small allocations fit in the same block: usage does not move. */
  for (int i = 0; i < 100; i++) assert_non_null(arena_alloc(a, 10));
  assert_int_equal(arena_memory_usage(a), u1);
  /* A large request gets its own block of about its size. */
  char *big = arena_alloc(a, 1 << 20);
  assert_non_null(big);
  memset(big, 0xab, 1 << 20);
  size_t u2 = arena_memory_usage(a);
  assert_true(u2 >= u1 + (1 << 20));
  assert_true(u2 < u1 + (1 << 20) + 4096);
  /* ... and the current small block keeps being used afterwards. */
  assert_non_null(arena_alloc(a, 10));
  assert_int_equal(arena_memory_usage(a), u2);
  /* Zero-size requests return distinct pointers. */
  void *z1 = arena_alloc(a, 0), *z2 = arena_alloc(a, 0);
  assert_non_null(z1);
  assert_non_null(z2);
  assert_ptr_not_equal(z1, z2);
  /* Aligned after an odd-sized allocation. */
  assert_non_null(arena_alloc(a, 3));
  void *al = arena_alloc_aligned(a, 24);
  assert_int_equal((uintptr_t)al % alignof(max_align_t), 0);
  assert_int_equal((uintptr_t)al % sizeof(void *), 0);
  /* Pointer-aligned after an odd-sized allocation: padded to 8, not to max_align_t. */
  char *odd = arena_alloc(a, 3);
  assert_non_null(odd);
  char *w = arena_alloc_aligned_to(a, 8, sizeof(void *));
  assert_int_equal((uintptr_t)w % sizeof(void *), 0);
  assert_true(w - odd < (ptrdiff_t)(3 + sizeof(void *)));
  arena_destroy(a);
  arena_destroy(NULL);
}

/* A sized arena carves requests up to an eighth of its block from shared blocks (1 KiB
 * values cost no block each), gives larger ones their own, and clamps odd sizes. */
static void test_sized_blocks(void **state) {
  (void)state;
  mf_arena *a;
  assert_int_equal(arena_create_sized(256 << 10, &a), MAYFLY_OK);
  size_t u0 = arena_memory_usage(a);
  assert_non_null(arena_alloc(a, 1100));
  size_t u1 = arena_memory_usage(a);
  assert_true(u1 >= u0 + (256 << 10) && u1 < u0 + (256 << 10) + 4096);
  /* 200 more 1100-byte requests (215 KiB) fit in the same block. */
  for (int i = 0; i < 200; i++) {
    char *p = arena_alloc(a, 1100);
    assert_non_null(p);
    memset(p, i, 1100);
  }
  assert_int_equal(arena_memory_usage(a), u1);
  /* Above an eighth of a block (32 KiB) and beyond the tail (40 KiB left): a block of its
   * own, and the shared one stays current. */
  assert_non_null(arena_alloc(a, 48 << 10));
  size_t u2 = arena_memory_usage(a);
  assert_true(u2 >= u1 + (48 << 10) && u2 < u1 + (48 << 10) + 4096);
  assert_non_null(arena_alloc(a, 1100));
  assert_int_equal(arena_memory_usage(a), u2);
  arena_destroy(a);
  /* Exactly an eighth, beyond the tail: a fresh shared block, which later requests share. */
  assert_int_equal(arena_create_sized(256 << 10, &a), MAYFLY_OK);
  for (int i = 0; i < 230; i++) assert_non_null(arena_alloc(a, 1100)); /* 8.9 KiB left */
  u1 = arena_memory_usage(a);
  assert_non_null(arena_alloc(a, 32 << 10));
  u2 = arena_memory_usage(a);
  assert_true(u2 >= u1 + (256 << 10) && u2 < u1 + (256 << 10) + 4096);
  assert_non_null(arena_alloc(a, 32 << 10));
  assert_non_null(arena_alloc(a, 1100));
  assert_int_equal(arena_memory_usage(a), u2);
  arena_destroy(a);
  /* Below the 4 KiB minimum: clamped up, so a 500-byte request still shares a block. */
  assert_int_equal(arena_create_sized(100, &a), MAYFLY_OK);
  u0 = arena_memory_usage(a);
  assert_non_null(arena_alloc(a, 500));
  assert_non_null(arena_alloc(a, 500));
  assert_true(arena_memory_usage(a) >= u0 + 4096);
  assert_true(arena_memory_usage(a) < u0 + 4096 + 1024);
  arena_destroy(a);
}

/* arena_bytes_used counts what was handed out, request by request, with alignment padding,
 * whether a request shared a block or got its own; the tails a block leaves unused count in
 * arena_memory_usage only. */
static void test_bytes_used(void **state) {
  (void)state;
  mf_random rnd;
  mf_random_seed(&rnd, test_seed());
  mf_arena *a;
  assert_int_equal(arena_create_sized(9000, &a), MAYFLY_OK);
  assert_int_equal(arena_bytes_used(a), 0);
  size_t expect = 0;
  /* 1 KiB requests (under an eighth of 9000) fill a block eight at a time and leave 808
   * bytes of it unused: not data. */
  for (int i = 0; i < 400; i++) {
    assert_non_null(arena_alloc(a, 1024));
    expect += 1024;
    assert_int_equal(arena_bytes_used(a), expect);
  }
  assert_true(arena_memory_usage(a) >= expect + 49 * 808);
  /* Zero-size requests take one byte; large ones their own block, counted at their size. */
  assert_non_null(arena_alloc(a, 0));
  expect += 1;
  assert_non_null(arena_alloc(a, 100000));
  expect += 100000;
  assert_int_equal(arena_bytes_used(a), expect);
  /* Aligned requests count their padding: the pointer's distance from the previous end. */
  char *end = arena_alloc(a, 3);
  assert_non_null(end);
  end += 3;
  expect += 3;
  char *p = arena_alloc_aligned(a, 40);
  assert_non_null(p);
  if (p >= end && p - end < (ptrdiff_t)alignof(max_align_t))
    expect += (size_t)(p - end) + 40; /* same block: padding counts */
  else
    expect += 40; /* a fresh block, already aligned */
  assert_int_equal(arena_bytes_used(a), expect);
  /* Random sizes: exact, and never above the memory held. */
  for (int i = 0; i < 5000; i++) {
    size_t n = (size_t)mf_random_uniform(&rnd, 2000);
    assert_non_null(arena_alloc(a, n));
    expect += n ? n : 1;
  }
  assert_int_equal(arena_bytes_used(a), expect);
  assert_true(arena_bytes_used(a) <= arena_memory_usage(a));
  /* A request that cannot be met is not counted (refused before any malloc). */
  size_t held = arena_memory_usage(a);
  assert_null(arena_alloc(a, SIZE_MAX - 8));
  assert_null(arena_alloc_aligned_to(a, SIZE_MAX - 8, 8));
  assert_int_equal(arena_bytes_used(a), expect);
  assert_int_equal(arena_memory_usage(a), held);
  arena_destroy(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_random_allocations),
      cmocka_unit_test(test_usage_and_large),
      cmocka_unit_test(test_sized_blocks),
      cmocka_unit_test(test_bytes_used),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
