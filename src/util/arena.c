/* Arena allocator; see arena.h for the contract.
 *
 * Layout: a singly linked list of malloc'd blocks, newest first. The current block is the
 * one small requests are carved from: [alloc_ptr, alloc_ptr + alloc_remaining) is its unused
 * tail. A request that does not fit in the tail either gets its own block (when it is larger
 * than an eighth of a block, so the tail stays usable for the small requests that follow) or
 * starts a fresh block of block_size (abandoning the old tail: less than an eighth of a block
 * of waste per block, since larger requests never come here).
 *
 * Two counters: memory_usage, what the blocks take from malloc, and bytes_used, what was
 * handed out (requests and their alignment padding). Only the one writer changes them, so
 * each update is a relaxed load and store, not a locked read-modify-write; readers on other
 * threads load them relaxed. Every block's payload starts at
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
  atomic_size_t bytes_used;
  size_t block_size;
  size_t large_request; /* > this: a block of its own (an eighth of a block) */
};

int arena_create(mf_arena **out) { return arena_create_sized(ARENA_MIN_BLOCK_SIZE, out); }

int arena_create_sized(size_t block_size, mf_arena **out) {
  mf_arena *a = malloc(sizeof *a);
  if (!a) return MAYFLY_ENOMEM;
  if (block_size < ARENA_MIN_BLOCK_SIZE) block_size = ARENA_MIN_BLOCK_SIZE;
  if (block_size > ARENA_MAX_BLOCK_SIZE) block_size = ARENA_MAX_BLOCK_SIZE;
  a->block_size = block_size;
  a->large_request = block_size / 8;
  a->alloc_ptr = NULL;
  a->alloc_remaining = 0;
  a->blocks = NULL;
  atomic_init(&a->memory_usage, sizeof *a);
  atomic_init(&a->bytes_used, 0);
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

/* Adds n to a counter only the arena's one writer changes. */
static void counter_add(atomic_size_t *c, size_t n) {
  size_t v = atomic_load_explicit(c, memory_order_relaxed);
  atomic_store_explicit(c, v + n, memory_order_relaxed);
}

/* Links a new block of payload size n and returns its payload, or NULL. */
static char *new_block(mf_arena *a, size_t n) {
  if (n > SIZE_MAX - sizeof(arena_block)) return NULL;
  arena_block *b = malloc(sizeof(arena_block) + n);
  if (!b) return NULL;
  b->next = a->blocks;
  a->blocks = b;
  counter_add(&a->memory_usage, sizeof(arena_block) + n);
  return b->data;
}

/* Slow path: the request does not fit in the current block's tail. */
static char *alloc_fallback(mf_arena *a, size_t n) {
  char *p;
  if (n > a->large_request) {
    p = new_block(a, n);
  } else {
    p = new_block(a, a->block_size);
    if (p) {
      a->alloc_ptr = p + n;
      a->alloc_remaining = a->block_size - n;
    }
  }
  if (p) counter_add(&a->bytes_used, n);
  return p;
}

void *arena_alloc(mf_arena *a, size_t n) {
  if (n == 0) n = 1;
  if (n <= a->alloc_remaining) {
    char *p = a->alloc_ptr;
    a->alloc_ptr += n;
    a->alloc_remaining -= n;
    counter_add(&a->bytes_used, n);
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
    counter_add(&a->bytes_used, pad + n);
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

size_t arena_bytes_used(const mf_arena *a) {
  return atomic_load_explicit((atomic_size_t *)&a->bytes_used, memory_order_relaxed);
}
