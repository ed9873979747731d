/* Arena: bump allocation for objects that all die together (a memtable's skiplist nodes and
 * entries).
 *
 * Memory comes from blocks of a size fixed at creation (4 KiB by default; a memtable uses
 * larger ones, so that values of a few KiB are carved from shared blocks instead of costing a
 * malloc and a header each); a request larger than an eighth of a block gets a block of its own
 * so a big value does not waste the tail of the current block. What a block's tail wastes is
 * therefore under an eighth of the block (plus, for an aligned request, its padding).
 * Nothing is freed individually: arena_destroy frees every block at once. Pointers returned
 * by arena_alloc* stay valid and never move until arena_destroy.
 *
 * Threads: arena_alloc* and arena_destroy need external synchronization (one writer at a
 * time: the memtable's writer lock). arena_memory_usage may be read from any thread at any
 * time, and so may arena_bytes_used (both are atomic counters), so the db can decide when to
 * switch memtables without taking the writer lock. */
#ifndef MAYFLY_UTIL_ARENA_H
#define MAYFLY_UTIL_ARENA_H

#include <stddef.h>

typedef struct mf_arena mf_arena;

/* Creates an empty arena in *out (caller owns it; free with arena_destroy).
 * Returns MAYFLY_OK or MAYFLY_ENOMEM. */
int arena_create(mf_arena **out);
/* As arena_create, with blocks of block_size bytes (clamped to [4 KiB, 64 MiB]). */
int arena_create_sized(size_t block_size, mf_arena **out);
/* Frees every block and the arena itself; every pointer it returned becomes invalid.
 * NULL is a no-op. */
void arena_destroy(mf_arena *a);
/* n bytes with no alignment guarantee, owned by the arena (valid until arena_destroy).
 * n == 0 is treated as 1 so every result is distinct. NULL when out of memory. */
void *arena_alloc(mf_arena *a, size_t n);
/* As arena_alloc, but aligned to alignof(max_align_t) (which covers pointers and atomics). */
void *arena_alloc_aligned(mf_arena *a, size_t n);
/* As arena_alloc, but aligned to align, a power of two no larger than alignof(max_align_t)
 * (smaller alignments waste less padding between small objects). */
void *arena_alloc_aligned_to(mf_arena *a, size_t n, size_t align);
/* Bytes the arena holds from malloc (block sizes plus per-block headers). Grows
 * monotonically. Safe to call from any thread concurrently with allocation. */
size_t arena_memory_usage(const mf_arena *a);
/* Bytes handed out: every request's size (1 for a zero-size one) plus the padding its
 * alignment took; the unused tails of blocks and the block headers are not counted. Grows
 * monotonically; at most arena_memory_usage. Safe to call from any thread concurrently with
 * allocation. */
size_t arena_bytes_used(const mf_arena *a);

#endif
