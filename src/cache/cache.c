/* Sharded LRU cache (see cache.h for the contract).
 *
 * The life of an entry. An entry is "in the cache" (in_cache = 1) from its insert until it
 * is evicted, erased, replaced by a newer insert of the same key, or the cache is destroyed.
 * While in the cache it is in its shard's hash table and on exactly one of two lists:
 *   in_use - entries some caller pins (refs >= 2: the cache's own reference plus pins);
 *   lru    - entries nobody pins (refs == 1), oldest first: the eviction candidates.
 * Leaving the cache drops the cache's reference, unlinks the entry from both structures and
 * subtracts its charge from the shard's usage. An entry out of the cache but still pinned
 * lives on, reachable only through its handles; the release that drops refs to 0 deletes it.
 * So every value is deleted exactly once: when refs reaches 0, which happens only after the
 * entry has left the cache (the cache's reference is the last one then, or a pin is).
 *
 * Invariants, per shard, with its mutex held:
 *   usage == sum of charge over the entries in the cache (both lists);
 *   every entry on lru has refs == 1, every entry on in_use has refs >= 2;
 *   after any public call returns, usage <= capacity or lru is empty.
 * The last one is restored on every insert and every release, so capacity bounds what stays
 * cached, and pinned entries (never on lru) are never evicted.
 *
 * Deleters run outside the shard mutex: an entry whose refs hit 0 under the lock is chained
 * onto a local "doomed" list and freed after unlocking, because a deleter may be slow (the
 * table cache's closes a file) and must not stall every other user of the shard. */
#include "cache/cache.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "mayfly.h"
#include "util/checksum.h"
#include "util/error.h"

#define MAX_SHARD_BITS 4        /* 16 shards */
#define MIN_SHARD_CAPACITY 8    /* fewer shards below 16 * 8 units of capacity */
#define INITIAL_BUCKETS 16
#define SHARD_ALIGN 64          /* keep shards (and their mutexes) on separate cache lines */

typedef struct lru_link {
  struct lru_link *prev, *next;
} lru_link;

/* An entry; callers see it only as an opaque handle. */
struct mf_cache_handle {
  lru_link link; /* first member: a link on lru/in_use is the entry */
  mf_cache_handle *next_hash; /* hash chain while in the cache; doomed chain after */
  void *value;
  void (*deleter)(mf_slice key, void *value);
  size_t charge;
  uint64_t hash;
  uint32_t refs; /* GUARDED_BY shard mu */
  int in_cache;  /* GUARDED_BY shard mu */
  size_t key_len;
  char key[];
};

typedef struct shard {
  _Alignas(SHARD_ALIGN) pthread_mutex_t mu;
  size_t capacity;
  size_t usage;               /* GUARDED_BY mu */
  lru_link lru;               /* GUARDED_BY mu; circular, oldest at lru.next */
  lru_link in_use;            /* GUARDED_BY mu */
  mf_cache_handle **buckets;  /* GUARDED_BY mu; nbuckets is a power of two */
  size_t nbuckets;
  size_t count;               /* entries in the hash table */
} shard;

struct mf_cache {
  shard *shards;
  unsigned shard_bits;
  _Atomic uint64_t last_id;
};

/* ---- lists ---- */

static void list_init(lru_link *head) { head->prev = head->next = head; }

static void list_remove(lru_link *e) {
  e->next->prev = e->prev;
  e->prev->next = e->next;
  e->prev = e->next = NULL;
}

/* Appends at the newest end (just before the head). */
static void list_append(lru_link *head, lru_link *e) {
  e->next = head;
  e->prev = head->prev;
  e->prev->next = e;
  e->next->prev = e;
}

static mf_cache_handle *entry_of(lru_link *l) { return (mf_cache_handle *)l; }

static mf_slice entry_key(const mf_cache_handle *e) { return mf_slice_make(e->key, e->key_len); }

/* ---- per-shard hash table ---- */

/* The slot pointing at key's entry, or at the NULL ending its chain.
 * Buckets use the hash's low bits; shards use its top bits, so the two are independent. */
static mf_cache_handle **table_find(shard *s, mf_slice key, uint64_t hash) {
  mf_cache_handle **p = &s->buckets[hash & (s->nbuckets - 1)];
  while (*p && ((*p)->hash != hash || !mf_slice_equal(entry_key(*p), key))) p = &(*p)->next_hash;
  return p;
}

/* Doubles the bucket array. Out of memory is harmless: chains just grow longer. */
static void table_grow(shard *s) {
  size_t n = s->nbuckets * 2;
  mf_cache_handle **b = calloc(n, sizeof *b);
  if (!b) return;
  for (size_t i = 0; i < s->nbuckets; i++) {
    mf_cache_handle *e = s->buckets[i];
    while (e) {
      mf_cache_handle *next = e->next_hash;
      mf_cache_handle **slot = &b[e->hash & (n - 1)];
      e->next_hash = *slot;
      *slot = e;
      e = next;
    }
  }
  free(s->buckets);
  s->buckets = b;
  s->nbuckets = n;
}

/* Puts e in the table; returns the entry with the same key it displaced, or NULL. */
static mf_cache_handle *table_insert(shard *s, mf_cache_handle *e) {
  mf_cache_handle **p = table_find(s, entry_key(e), e->hash);
  mf_cache_handle *old = *p;
  e->next_hash = old ? old->next_hash : NULL;
  *p = e;
  if (!old && ++s->count > s->nbuckets) table_grow(s);
  return old;
}

static mf_cache_handle *table_remove(shard *s, mf_slice key, uint64_t hash) {
  mf_cache_handle **p = table_find(s, key, hash);
  mf_cache_handle *e = *p;
  if (e) {
    *p = e->next_hash;
    s->count--;
  }
  return e;
}

/* ---- reference counting (REQUIRES: s->mu held for all of these) ---- */

static void ref(shard *s, mf_cache_handle *e) {
  if (e->refs == 1 && e->in_cache) { /* leaving lru: no longer an eviction candidate */
    list_remove(&e->link);
    list_append(&s->in_use, &e->link);
  }
  e->refs++;
}

/* Drops one reference; an entry reaching 0 is chained onto *doomed for deletion after the
 * lock is released. */
static void unref(shard *s, mf_cache_handle *e, mf_cache_handle **doomed) {
  assert(e->refs > 0);
  e->refs--;
  if (e->refs == 0) {
    assert(!e->in_cache);
    e->next_hash = *doomed;
    *doomed = e;
  } else if (e->in_cache && e->refs == 1) { /* last pin gone: most recently used */
    list_remove(&e->link);
    list_append(&s->lru, &e->link);
  }
}

/* Takes e, already removed from the hash table, out of the cache. */
static void finish_erase(shard *s, mf_cache_handle *e, mf_cache_handle **doomed) {
  assert(e->in_cache);
  list_remove(&e->link);
  e->in_cache = 0;
  s->usage -= e->charge;
  unref(s, e, doomed);
}

static void evict_over_capacity(shard *s, mf_cache_handle **doomed) {
  while (s->usage > s->capacity && s->lru.next != &s->lru) {
    mf_cache_handle *old = entry_of(s->lru.next);
    assert(old->refs == 1);
    mf_cache_handle *removed = table_remove(s, entry_key(old), old->hash);
    assert(removed == old);
    (void)removed;
    finish_erase(s, old, doomed);
  }
}

/* Runs the deleters of a doomed chain. REQUIRES: no shard lock held. */
static void free_doomed(mf_cache_handle *e) {
  while (e) {
    mf_cache_handle *next = e->next_hash;
    e->deleter(entry_key(e), e->value);
    free(e);
    e = next;
  }
}

/* ---- the cache ---- */

static uint64_t hash_key(mf_slice key) {
  return key.len ? mf_hash64(key.data, key.len) : mf_hash64("", 0);
}

static shard *shard_for(mf_cache *c, uint64_t hash) {
  return c->shard_bits ? &c->shards[hash >> (64 - c->shard_bits)] : &c->shards[0];
}

int cache_create(size_t capacity, mf_cache **out) {
  *out = NULL;
  unsigned bits = MAX_SHARD_BITS;
  while (bits > 0 && capacity < ((size_t)MIN_SHARD_CAPACITY << bits)) bits--;
  size_t nshards = (size_t)1 << bits;

  mf_cache *c = calloc(1, sizeof *c);
  if (!c) return MF_ERR(MAYFLY_ENOMEM, "cache: out of memory creating a cache");
  size_t bytes = (nshards * sizeof(shard) + SHARD_ALIGN - 1) / SHARD_ALIGN * SHARD_ALIGN;
  c->shards = aligned_alloc(SHARD_ALIGN, bytes);
  if (!c->shards) {
    free(c);
    return MF_ERR(MAYFLY_ENOMEM, "cache: out of memory creating %zu shards", nshards);
  }
  c->shard_bits = bits;
  atomic_init(&c->last_id, 0);

  size_t made = 0;
  int rc = MAYFLY_OK;
  for (; made < nshards; made++) {
    shard *s = &c->shards[made];
    /* The parts sum to exactly capacity, so the bound holds for the cache as a whole. */
    s->capacity = (capacity >> bits) + (made < (capacity & (nshards - 1)) ? 1 : 0);
    s->usage = 0;
    list_init(&s->lru);
    list_init(&s->in_use);
    s->nbuckets = INITIAL_BUCKETS;
    s->count = 0;
    s->buckets = calloc(s->nbuckets, sizeof *s->buckets);
    if (!s->buckets) {
      rc = MF_ERR(MAYFLY_ENOMEM, "cache: out of memory creating shard %zu", made);
      break;
    }
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
      free(s->buckets);
      rc = MF_ERR(MAYFLY_ENOMEM, "cache: cannot create the mutex of shard %zu", made);
      break;
    }
  }
  if (rc != MAYFLY_OK) {
    for (size_t i = 0; i < made; i++) {
      pthread_mutex_destroy(&c->shards[i].mu);
      free(c->shards[i].buckets);
    }
    free(c->shards);
    free(c);
    return rc;
  }
  *out = c;
  return MAYFLY_OK;
}

void cache_destroy(mf_cache *c) {
  if (!c) return;
  size_t nshards = (size_t)1 << c->shard_bits;
  for (size_t i = 0; i < nshards; i++) {
    shard *s = &c->shards[i];
    assert(s->in_use.next == &s->in_use && "cache_destroy with a pinned handle");
    mf_cache_handle *doomed = NULL;
    while (s->lru.next != &s->lru) {
      mf_cache_handle *e = entry_of(s->lru.next);
      table_remove(s, entry_key(e), e->hash);
      finish_erase(s, e, &doomed);
    }
    free_doomed(doomed);
    pthread_mutex_destroy(&s->mu);
    free(s->buckets);
  }
  free(c->shards);
  free(c);
}

mf_cache_handle *cache_insert(mf_cache *c, mf_slice key, void *value, size_t charge,
                              void (*deleter)(mf_slice key, void *value)) {
  mf_cache_handle *e = malloc(sizeof *e + key.len);
  if (!e) return NULL;
  e->value = value;
  e->deleter = deleter;
  e->charge = charge;
  e->hash = hash_key(key);
  e->refs = 2; /* the cache's own reference and the returned handle's pin */
  e->in_cache = 1;
  e->key_len = key.len;
  if (key.len) memcpy(e->key, key.data, key.len);
  e->next_hash = NULL;

  shard *s = shard_for(c, e->hash);
  mf_cache_handle *doomed = NULL;
  pthread_mutex_lock(&s->mu);
  list_append(&s->in_use, &e->link);
  s->usage += charge;
  mf_cache_handle *old = table_insert(s, e);
  if (old) finish_erase(s, old, &doomed);
  evict_over_capacity(s, &doomed);
  pthread_mutex_unlock(&s->mu);
  free_doomed(doomed);
  return e;
}

mf_cache_handle *cache_lookup(mf_cache *c, mf_slice key) {
  uint64_t hash = hash_key(key);
  shard *s = shard_for(c, hash);
  pthread_mutex_lock(&s->mu);
  mf_cache_handle *e = *table_find(s, key, hash);
  if (e) ref(s, e);
  pthread_mutex_unlock(&s->mu);
  return e;
}

void cache_release(mf_cache *c, mf_cache_handle *h) {
  shard *s = shard_for(c, h->hash);
  mf_cache_handle *doomed = NULL;
  pthread_mutex_lock(&s->mu);
  unref(s, h, &doomed);
  /* The entry may just have become evictable while the shard is over capacity (always so
   * with capacity 0). */
  evict_over_capacity(s, &doomed);
  pthread_mutex_unlock(&s->mu);
  free_doomed(doomed);
}

void *cache_value(const mf_cache_handle *h) { return h->value; }

void cache_erase(mf_cache *c, mf_slice key) {
  uint64_t hash = hash_key(key);
  shard *s = shard_for(c, hash);
  mf_cache_handle *doomed = NULL;
  pthread_mutex_lock(&s->mu);
  mf_cache_handle *e = table_remove(s, key, hash);
  if (e) finish_erase(s, e, &doomed);
  pthread_mutex_unlock(&s->mu);
  free_doomed(doomed);
}

uint64_t cache_new_id(mf_cache *c) { return atomic_fetch_add(&c->last_id, 1) + 1; }

size_t cache_total_charge(mf_cache *c) {
  size_t total = 0;
  size_t nshards = (size_t)1 << c->shard_bits;
  for (size_t i = 0; i < nshards; i++) {
    shard *s = &c->shards[i];
    pthread_mutex_lock(&s->mu);
    total += s->usage;
    pthread_mutex_unlock(&s->mu);
  }
  return total;
}
