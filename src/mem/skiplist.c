/* Skiplist with one writer and lock-free readers; see skiplist.h for the contract.
 *
 * Structure: a head node of full height (SKIPLIST_MAX_HEIGHT) and nodes of random height
 * (branching factor 4: each extra level with probability 1/4). Level 0 links every node in
 * order; level i links a subsequence of level i-1. A node is its array of atomic next
 * pointers followed directly by its entry, all carved from the arena in one piece; a node
 * pointer points at the level-0 link, the higher levels lie below it in memory (level i at
 * link[-i]) and the entry right after it, so finding the entry needs neither the node's
 * height nor a pointer of its own (8 bytes less per entry), and a search step that loads the
 * link finds the key in the same or the next cache line.
 *
 * Why readers need no lock: the writer fully initializes a new node (entry and the node's own
 * next pointers) before publishing it, and publishes it with a release store into the
 * predecessor's next pointer, level 0 first. Readers follow next pointers with acquire loads,
 * so a reader that sees the node also sees its initialized contents. A reader may observe the
 * node at level 0 but not yet at a higher level; that only makes its search a little longer,
 * never wrong, because every higher level is a subsequence of the one below it.
 *
 * Speed: in a list of hundreds of thousands of entries nearly every step of a search is a
 * cache miss. Two things cut the cost: the entry lies right after the level-0 link, so one
 * miss brings both the link and the key the comparator reads; and each step prefetches the
 * node after the one being compared, so the next step's miss overlaps this comparison.
 *
 * max_height may be read stale (relaxed): a reader that sees the new, larger value before the
 * head's new levels are linked reads NULL there (head pointers start NULL) and just drops to a
 * lower level; one that sees the old value never looks at the new levels at all. */
#include "mem/skiplist.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>

#include "mayfly.h"
#include "util/error.h"
#include "util/random.h"

enum { SKIPLIST_MAX_HEIGHT = 12, SKIPLIST_BRANCHING = 4 };

/* Opaque: a node pointer points at the node's level-0 link (see the top of the file). */
typedef struct sl_node sl_node;
typedef _Atomic(sl_node *) sl_link;

struct skiplist {
  skiplist_cmp_fn cmp;
  void *ctx;
  mf_arena *arena;
  sl_node *head;
  atomic_int max_height; /* height of the tallest node ever inserted; >= 1 */
  mf_random rnd;         /* writer only */
};

static sl_link *node_link(const sl_node *n, int level) { return (sl_link *)n - level; }

static const char *node_entry(const sl_node *n) { return (const char *)n + sizeof(sl_link); }

static sl_node *node_next(const sl_node *n, int level) {
  return atomic_load_explicit(node_link(n, level), memory_order_acquire);
}

static void node_set_next(sl_node *n, int level, sl_node *x) {
  atomic_store_explicit(node_link(n, level), x, memory_order_release);
}

/* A node of the given height with entry_size bytes for its entry after the level-0 link. */
static sl_node *new_node(skiplist *s, int height, size_t entry_size) {
  size_t links = sizeof(sl_link) * (size_t)height;
  char *p = arena_alloc_aligned_to(s->arena, links + entry_size, alignof(sl_link));
  if (!p) return NULL;
  sl_node *n = (sl_node *)(p + links - sizeof(sl_link));
  for (int i = 0; i < height; i++) atomic_init(node_link(n, i), NULL);
  return n;
}

static int random_height(skiplist *s) {
  int height = 1;
  while (height < SKIPLIST_MAX_HEIGHT && mf_random_uniform(&s->rnd, SKIPLIST_BRANCHING) == 0)
    height++;
  return height;
}

static int get_max_height(const skiplist *s) {
  return atomic_load_explicit((atomic_int *)&s->max_height, memory_order_relaxed);
}

/* n is the head (which sorts before everything) or a node whose entry is < target. */
static int node_before(const skiplist *s, const sl_node *n, const char *target) {
  return n != NULL && s->cmp(s->ctx, node_entry(n), target) < 0;
}

/* Starts loading the node after n at level, if any, while n is being compared: in a big list
 * every step is a cache miss, and this overlaps the next step's miss with this comparison. */
static inline void prefetch_successor(const sl_node *n, int level) {
#if defined(__GNUC__)
  if (n) __builtin_prefetch(node_next(n, level));
#else
  (void)n;
  (void)level;
#endif
}

/* First node >= target, or NULL. When prev is not NULL, fills prev[level] with the last node
 * < target at every level below the current max height (what insert needs to splice). */
static sl_node *find_greater_or_equal(const skiplist *s, const char *target,
                                      sl_node **prev) {
  sl_node *x = s->head;
  int level = get_max_height(s) - 1;
  for (;;) {
    sl_node *next = node_next(x, level);
    prefetch_successor(next, level);
    if (node_before(s, next, target)) {
      x = next;
    } else {
      if (prev) prev[level] = x;
      if (level == 0) return next;
      level--;
    }
  }
}

/* Last node < target, or the head when there is none. */
static const sl_node *find_less_than(const skiplist *s, const char *target) {
  const sl_node *x = s->head;
  int level = get_max_height(s) - 1;
  for (;;) {
    sl_node *next = node_next(x, level);
    if (node_before(s, next, target)) {
      x = next;
    } else {
      if (level == 0) return x;
      level--;
    }
  }
}

/* Last node, or the head when the list is empty. */
static const sl_node *find_last(const skiplist *s) {
  const sl_node *x = s->head;
  int level = get_max_height(s) - 1;
  for (;;) {
    sl_node *next = node_next(x, level);
    if (next) {
      x = next;
    } else {
      if (level == 0) return x;
      level--;
    }
  }
}

int skiplist_create(mf_arena *arena, skiplist_cmp_fn cmp, void *ctx, uint64_t seed,
                    skiplist **out) {
  skiplist *s = arena_alloc_aligned(arena, sizeof *s);
  if (!s) return MF_ERR(MAYFLY_ENOMEM, "skiplist: out of memory creating list");
  s->cmp = cmp;
  s->ctx = ctx;
  s->arena = arena;
  atomic_init(&s->max_height, 1);
  mf_random_seed(&s->rnd, seed);
  s->head = new_node(s, SKIPLIST_MAX_HEIGHT, 0);
  if (!s->head) return MF_ERR(MAYFLY_ENOMEM, "skiplist: out of memory creating head");
  *out = s;
  return MAYFLY_OK;
}

char *skiplist_prepare(skiplist *s, size_t entry_size, skiplist_prepared *out) {
  int height = random_height(s);
  sl_node *n = new_node(s, height, entry_size);
  if (!n) return NULL;
  out->node = n;
  out->height = height;
  return (char *)node_entry(n);
}

int skiplist_insert_prepared(skiplist *s, const skiplist_prepared *p) {
  sl_node *x = p->node;
  int height = p->height;
  const char *entry = node_entry(x);
  sl_node *prev[SKIPLIST_MAX_HEIGHT];
  sl_node *at = find_greater_or_equal(s, entry, prev);
  /* The comparison is already paid for by the search, so the precondition is checked in
   * every build: a duplicate would make lookups ambiguous. */
  if (at != NULL && s->cmp(s->ctx, node_entry(at), entry) == 0)
    return MF_ERR(MAYFLY_EINVAL, "skiplist: entry inserted twice");

  int max_height = get_max_height(s);
  if (height > max_height) {
    for (int i = max_height; i < height; i++) prev[i] = s->head;
    atomic_store_explicit(&s->max_height, height, memory_order_relaxed);
  }
  for (int i = 0; i < height; i++) {
    /* x is not yet reachable, so its own pointers need no ordering; the release store into
     * prev publishes x together with everything written to it above. */
    atomic_store_explicit(node_link(x, i), node_next(prev[i], i), memory_order_relaxed);
    node_set_next(prev[i], i, x);
  }
  return MAYFLY_OK;
}

int skiplist_contains(const skiplist *s, const char *entry) {
  const sl_node *x = find_greater_or_equal(s, entry, NULL);
  return x != NULL && s->cmp(s->ctx, node_entry(x), entry) == 0;
}

void skiplist_iter_init(skiplist_iter *it, const skiplist *s) {
  it->list = s;
  it->node = NULL;
}

int skiplist_iter_valid(const skiplist_iter *it) { return it->node != NULL; }

const char *skiplist_iter_entry(const skiplist_iter *it) { return node_entry(it->node); }

void skiplist_iter_next(skiplist_iter *it) { it->node = node_next(it->node, 0); }

void skiplist_iter_prev(skiplist_iter *it) {
  const sl_node *x = find_less_than(it->list, node_entry(it->node));
  it->node = (x == it->list->head) ? NULL : x;
}

void skiplist_iter_seek(skiplist_iter *it, const char *target) {
  it->node = find_greater_or_equal(it->list, target, NULL);
}

void skiplist_iter_seek_to_first(skiplist_iter *it) {
  it->node = node_next(it->list->head, 0);
}

void skiplist_iter_seek_to_last(skiplist_iter *it) {
  const sl_node *x = find_last(it->list);
  it->node = (x == it->list->head) ? NULL : x;
}
