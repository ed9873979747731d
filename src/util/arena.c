/* Arena allocator; see arena.h for the contract.
 *
 * Layout: a singly linked list of malloc'd blocks, newest first. The current block is the
 * one small requests are carved from: [alloc_ptr, alloc_ptr + alloc_remaining) is its unused
 * tail. A request that does not fit in the tail either gets its own block (when it is larger
 * than a quarter block, so the tail stays usable for the small requests that follow) or
 * starts a fresh block of block_size (abandoning the old tail, at most a quarter block of
 * waste per block since larger requests never come here). Every block's payload starts at
 * max_align_t alignment because malloc returns such memory and the header is padded to it. */
#include "util/arena.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "mayfly.h"

#define ARENA_MIN_BLOCK_SIZE ((size_t)4096)
#define ARENA_MAX_BLOCK_SIZE ((size_t)64 << 20)

typedef struct arena_block {
  struct arena_block *next;
  alignas(max_align_t) char data[];
} arena_block;

struct mf_arena {
  char *alloc_ptr;
  size_t alloc_remaining;
  arena_block *blocks;
  atomic_size_t memory_usage;
  size_t block_size;
  size_t large_request; /* > this: a block of its own (a quarter block) */
};

int arena_create(mf_arena **out) { return arena_create_sized(ARENA_MIN_BLOCK_SIZE, out); }

int arena_create_sized(size_t block_size, mf_arena **out) {
  mf_arena *a = malloc(sizeof *a);
  if (!a) return MAYFLY_ENOMEM;
  if (block_size < ARENA_MIN_BLOCK_SIZE) block_size = ARENA_MIN_BLOCK_SIZE;
  if (block_size > ARENA_MAX_BLOCK_SIZE) block_size = ARENA_MAX_BLOCK_SIZE;
  a->block_size = block_size;
  a->large_request = block_size / 4;
  a->alloc_ptr = NULL;
  a->alloc_remaining = 0;
  a->blocks = NULL;
  atomic_init(&a->memory_usage, sizeof *a);
  *out = a;
  return MAYFLY_OK;
}

void arena_destroy(mf_arena *a) {
  if (!a) return;
  arena_block *b = a->blocks;
  while (b) {
    arena_block *next = b->next;
    free(b);
    b = next;
  }
  free(a);
}

/* Links a new block of payload size n and returns its payload, or NULL. */
static char *new_block(mf_arena *a, size_t n) {
  if (n > SIZE_MAX - sizeof(arena_block)) return NULL;
  arena_block *b = malloc(sizeof(arena_block) + n);
  if (!b) return NULL;
  b->next = a->blocks;
  a->blocks = b;
  atomic_fetch_add_explicit(&a->memory_usage, sizeof(arena_block) + n, memory_order_relaxed);
  return b->data;
}

/* Slow path: the request does not fit in the current block's tail. */
static char *alloc_fallback(mf_arena *a, size_t n) {
  if (n > a->large_request) return new_block(a, n);
  char *p = new_block(a, a->block_size);
  if (!p) return NULL;
  a->alloc_ptr = p + n;
  a->alloc_remaining = a->block_size - n;
  return p;
}

void *arena_alloc(mf_arena *a, size_t n) {
  if (n == 0) n = 1;
  if (n <= a->alloc_remaining) {
    char *p = a->alloc_ptr;
    a->alloc_ptr += n;
    a->alloc_remaining -= n;
    return p;
  }
  return alloc_fallback(a, n);
}

void *arena_alloc_aligned(mf_arena *a, size_t n) {
  return arena_alloc_aligned_to(a, n, alignof(max_align_t));
}

void *arena_alloc_aligned_to(mf_arena *a, size_t n, size_t align) {
  /* Anything but a power of two up to max_align_t gets max_align_t, which blocks guarantee. */
  if (align == 0 || (align & (align - 1)) != 0 || align > alignof(max_align_t))
    align = alignof(max_align_t);
  if (n == 0) n = 1;
  size_t misalign = (uintptr_t)a->alloc_ptr & (align - 1);
  size_t pad = misalign ? align - misalign : 0;
  if (a->alloc_remaining >= pad && n <= a->alloc_remaining - pad) {
    char *p = a->alloc_ptr + pad;
    a->alloc_ptr += pad + n;
    a->alloc_remaining -= pad + n;
    return p;
  }
  /* Block payloads are max_align_t aligned, so the fallback's result needs no padding. */
  return alloc_fallback(a, n);
}

size_t arena_memory_usage(const mf_arena *a) {
  /* C11 atomic_load takes a pointer to non-const; the cast only drops the qualifier we need
   * to read an atomic through a const handle, which is a pure read. */
  return atomic_load_explicit((atomic_size_t *)&a->memory_usage, memory_order_relaxed);
}
