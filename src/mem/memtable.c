/* Memtable over a skiplist of arena-encoded entries; see memtable.h for the contract.
 *
 * Each encoded entry lives inside its skiplist node; the list compares entries with entry_compare,
 * which decodes the ikey length prefix and applies ikey_compare. Lookups and iterator seeks
 * therefore build a probe in the same encoding (varint32 length || ikey; the value part is
 * never looked at by the comparator, so the probe omits it).
 *
 * Speed: a random insert or lookup in a memtable of several hundred thousand entries is a
 * chain of cache misses, one per skiplist step. Each entry is therefore written right after
 * its node (skiplist_prepare), so the step that loads the node also brings the key; and the
 * comparison decodes the one-byte length prefix inline (util/coding.h) and compares with the
 * inline ikey_compare, so what remains per step is the miss itself and one memcmp.
 * A value of MEMTABLE_SPLIT_VALUE bytes or more is not written inline but in a second arena,
 * and the entry holds a pointer to it: with values of a KiB, inline entries would spread the
 * nodes a KiB apart, one page per few nodes, and a search would miss the cache and the TLB
 * at nearly every step; split, the nodes and keys of a 64 MiB memtable of such values take
 * about 4 MiB, most of which stays cached. The search never looks at a value, and the one
 * extra miss falls on whoever reads it (a get that finds the key, a flush).
 *
 * Most lookups of a big database miss the memtable, and a miss costs the same chain of
 * misses as a hit. An optional filter over the user keys (a blocked bloom filter: every key
 * sets and tests bits within one 64-byte block, so a test is one cache miss) lets a lookup of
 * a key the memtable has never seen skip the skiplist. It never says no for a key that was
 * added, so it changes no answer.
 *
 * Publication: memtable_prepare writes the whole entry into the arena, and memtable_commit
 * sets the key's filter bits, before skiplist_insert_prepared links it with a release store,
 * so a reader that finds the entry sees all of its bytes. A reader that did not see the entry
 * may miss its filter bits too, which is the same outcome as reading just before the add.
 * Readers that must see an add (a get at a sequence number the add carries) learn that
 * number from the db under its mutex, after the writer released it, so they see the bits as
 * well. The filter words are written
 * by the one writer with plain relaxed load/store pairs (no locked read-modify-write: writers
 * are serialized) and read relaxed.
 * The counters are bumped after the insert, so they may briefly lag what readers can see;
 * they are statistics, not synchronization. */
#include "mem/memtable.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "mayfly.h"
#include "mem/skiplist.h"
#include "util/arena.h"
#include "util/checksum.h"
#include "util/coding.h"
#include "util/error.h"

/* Any fixed seed: heights only need to be random-looking, and a fixed seed keeps runs
 * reproducible. */
#define MEMTABLE_SKIPLIST_SEED UINT64_C(0x6d6179666c79)

/* The filter: blocks of 8 words (64 bytes, one cache line); each key sets FILTER_PROBES bits
 * of the block its hash picks. 6 probes suit the 10-15 bits per key the default ratio gives
 * for ~100-byte entries (about 1% false positives). */
#define FILTER_BLOCK_WORDS 8
#define FILTER_PROBES 6

/* Values this long or longer live in the memtable's value arena (see the top of the file). */
#define MEMTABLE_SPLIT_VALUE 256

struct memtable {
  atomic_int refs;
  mf_arena *arena;  /* skiplist nodes and entries */
  mf_arena *values; /* values of MEMTABLE_SPLIT_VALUE bytes or more */
  skiplist *list;
  _Atomic uint64_t *filter; /* filter_blocks * FILTER_BLOCK_WORDS words, or NULL: no filter */
  uint64_t filter_blocks;
  atomic_uint_least64_t num_entries;
  atomic_uint_least64_t num_deletes;
};

/* Decodes the ikey at the front of an entry. Entries are written by this file, so the varint
 * is well formed; 5 bytes is the bound for a varint32. */
static mf_slice entry_ikey(const char *entry) {
  uint32_t len;
  const char *p = decode_varint32(entry, entry + MF_MAX_VARINT32_LEN, &len);
  return mf_slice_make(p, len);
}

static mf_slice entry_value(const char *entry) {
  mf_slice ikey = entry_ikey(entry);
  const char *p = ikey.data + ikey.len;
  uint32_t len;
  p = decode_varint32(p, p + MF_MAX_VARINT32_LEN, &len);
  if (len >= MEMTABLE_SPLIT_VALUE) {
    const char *out_of_line;
    memcpy(&out_of_line, p, sizeof out_of_line);
    p = out_of_line;
  }
  return mf_slice_make(p, len);
}

static int entry_compare(void *ctx, const char *a, const char *b) {
  (void)ctx;
  return ikey_compare(entry_ikey(a), entry_ikey(b));
}

/* The filter block a key hash picks (the probes then stay inside that one cache line). */
static _Atomic uint64_t *filter_block(const memtable *m, uint64_t h) {
  return m->filter + FILTER_BLOCK_WORDS * (((h >> 32) * m->filter_blocks) >> 32);
}

static void filter_add(memtable *m, mf_slice user_key) {
  uint64_t h = mf_hash64(user_key.data, user_key.len);
  _Atomic uint64_t *block = filter_block(m, h);
  uint32_t bit = (uint32_t)h, delta = (bit >> 17) | (bit << 15);
  for (int i = 0; i < FILTER_PROBES; i++, bit += delta) {
    _Atomic uint64_t *w = &block[(bit & 511) >> 6];
    uint64_t mask = UINT64_C(1) << (bit & 63);
    uint64_t old = atomic_load_explicit(w, memory_order_relaxed);
    if (!(old & mask)) atomic_store_explicit(w, old | mask, memory_order_relaxed);
  }
}

/* 0: user_key was never added. */
static int filter_may_contain(const memtable *m, mf_slice user_key) {
  uint64_t h = mf_hash64(user_key.data, user_key.len);
  _Atomic uint64_t *block = filter_block(m, h);
  uint32_t bit = (uint32_t)h, delta = (bit >> 17) | (bit << 15);
  for (int i = 0; i < FILTER_PROBES; i++, bit += delta) {
    uint64_t word = atomic_load_explicit(&block[(bit & 511) >> 6], memory_order_relaxed);
    if (!(word & (UINT64_C(1) << (bit & 63)))) return 0;
  }
  return 1;
}

int memtable_create(size_t arena_block_size, size_t filter_bytes, memtable **out) {
  memtable *m = malloc(sizeof *m);
  if (!m) return MF_ERR(MAYFLY_ENOMEM, "memtable: out of memory");
  m->filter = NULL;
  m->filter_blocks = 0;
  size_t block_bytes = FILTER_BLOCK_WORDS * sizeof(uint64_t);
  if (filter_bytes >= block_bytes) {
    m->filter_blocks = filter_bytes / block_bytes;
    if (m->filter_blocks > UINT32_MAX) m->filter_blocks = UINT32_MAX; /* filter_block's range */
    m->filter = aligned_alloc(block_bytes, m->filter_blocks * block_bytes);
    if (!m->filter) {
      free(m);
      return MF_ERR(MAYFLY_ENOMEM, "memtable: out of memory for a %zu byte filter",
                    filter_bytes);
    }
    for (uint64_t i = 0; i < m->filter_blocks * FILTER_BLOCK_WORDS; i++)
      atomic_init(&m->filter[i], 0);
  }
  m->arena = m->values = NULL;
  int rc = arena_create_sized(arena_block_size, &m->arena);
  if (rc == MAYFLY_OK) rc = arena_create_sized(arena_block_size, &m->values);
  if (rc) {
    arena_destroy(m->arena);
    free((void *)m->filter);
    free(m);
    return MF_ERR(MAYFLY_ENOMEM, "memtable: out of memory creating arena");
  }
  rc = skiplist_create(m->arena, entry_compare, NULL, MEMTABLE_SKIPLIST_SEED, &m->list);
  if (rc) {
    arena_destroy(m->arena);
    arena_destroy(m->values);
    free((void *)m->filter);
    free(m);
    return rc;
  }
  atomic_init(&m->refs, 1);
  atomic_init(&m->num_entries, 0);
  atomic_init(&m->num_deletes, 0);
  *out = m;
  return MAYFLY_OK;
}

void memtable_ref(memtable *m) { atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed); }

void memtable_unref(memtable *m) {
  if (!m) return;
  /* acq_rel: every holder's reads happen-before the free by the last one. */
  if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) {
    arena_destroy(m->arena);
    arena_destroy(m->values);
    free((void *)m->filter);
    free(m);
  }
}

int memtable_prepare(memtable *m, uint64_t seq, int type, mf_slice user_key, mf_slice value,
                     memtable_prepared *out) {
  if (type != MF_TYPE_VALUE && type != MF_TYPE_DELETE && type != MF_TYPE_BLOB_INDEX)
    return MF_ERR(MAYFLY_EINVAL, "memtable: bad value type %d for seq %llu", type,
                  (unsigned long long)seq);
  if (seq > MF_MAX_SEQ)
    return MF_ERR(MAYFLY_EINVAL, "memtable: seq %llu above the maximum",
                  (unsigned long long)seq);
  if (type == MF_TYPE_DELETE) value = mf_slice_make("", 0);
  if (user_key.len > UINT32_MAX - 8 || value.len > UINT32_MAX)
    return MF_ERR(MAYFLY_EINVAL, "memtable: key (%zu bytes) or value (%zu bytes) too long",
                  user_key.len, value.len);

  uint32_t ikey_len = (uint32_t)user_key.len + 8;
  int split = value.len >= MEMTABLE_SPLIT_VALUE;
  char *out_of_line = NULL;
  if (split) {
    out_of_line = arena_alloc(m->values, value.len);
    if (!out_of_line)
      return MF_ERR(MAYFLY_ENOMEM, "memtable: out of memory adding a %zu byte value at seq %llu",
                    value.len, (unsigned long long)seq);
    memcpy(out_of_line, value.data, value.len);
  }
  size_t size = (size_t)varint_length(ikey_len) + ikey_len +
                (size_t)varint_length(value.len) + (split ? sizeof out_of_line : value.len);
  /* The entry goes right after its skiplist node (see skiplist_prepare). */
  char *entry = skiplist_prepare(m->list, size, &out->node);
  if (!entry)
    return MF_ERR(MAYFLY_ENOMEM, "memtable: out of memory adding %zu bytes at seq %llu", size,
                  (unsigned long long)seq);
  char *p = encode_varint32(entry, ikey_len);
  out->key = p;
  out->key_len = user_key.len;
  out->type = type;
  if (user_key.len) memcpy(p, user_key.data, user_key.len);
  p += user_key.len;
  encode_fixed64(p, ikey_pack(seq, type));
  p += 8;
  p = encode_varint32(p, (uint32_t)value.len);
  if (split)
    memcpy(p, &out_of_line, sizeof out_of_line);
  else if (value.len)
    memcpy(p, value.data, value.len);
  return MAYFLY_OK;
}

int memtable_commit(memtable *m, const memtable_prepared *p) {
  /* The filter first: a reader that finds the entry must find its key in the filter. */
  if (m->filter) filter_add(m, mf_slice_make(p->key, p->key_len));
  int rc = skiplist_insert_prepared(m->list, &p->node);
  if (rc) return rc; /* the node, entry and value bytes are wasted, which is harmless */
  atomic_fetch_add_explicit(&m->num_entries, 1, memory_order_relaxed);
  if (p->type == MF_TYPE_DELETE)
    atomic_fetch_add_explicit(&m->num_deletes, 1, memory_order_relaxed);
  return MAYFLY_OK;
}

int memtable_add(memtable *m, uint64_t seq, int type, mf_slice user_key, mf_slice value) {
  memtable_prepared p;
  int rc = memtable_prepare(m, seq, type, user_key, value, &p);
  return rc ? rc : memtable_commit(m, &p);
}

/* Encodes a probe entry, varint32 (key.len + suffix_len) || key || suffix, into stack when
 * it fits, else into malloc'd memory (*heap set; the caller frees it). */
static int make_probe(mf_slice key, const char *suffix, size_t suffix_len, char *stack,
                      size_t stack_len, char **probe, char **heap) {
  *heap = NULL;
  if (key.len > UINT32_MAX - suffix_len)
    return MF_ERR(MAYFLY_EINVAL, "memtable: lookup key of %zu bytes too long", key.len);
  size_t need = MF_MAX_VARINT32_LEN + key.len + suffix_len;
  char *p = stack;
  if (need > stack_len) {
    p = *heap = malloc(need);
    if (!p) return MF_ERR(MAYFLY_ENOMEM, "memtable: out of memory for a %zu byte probe", need);
  }
  char *q = encode_varint32(p, (uint32_t)(key.len + suffix_len));
  if (key.len) memcpy(q, key.data, key.len);
  if (suffix_len) memcpy(q + key.len, suffix, suffix_len);
  *probe = p;
  return MAYFLY_OK;
}

int memtable_get(memtable *m, mf_slice user_key, uint64_t snapshot_seq, int *type,
                 uint64_t *found_seq, mf_buf *value) {
  if (snapshot_seq > MF_MAX_SEQ) snapshot_seq = MF_MAX_SEQ;
  if (m->filter && !filter_may_contain(m, user_key)) return MAYFLY_ENOTFOUND;
  /* ikey(user_key, snapshot_seq, MF_TYPE_FOR_SEEK) sorts before every version of user_key at
   * or below snapshot_seq and after every newer one. */
  char trailer[8];
  encode_fixed64(trailer, ikey_pack(snapshot_seq, MF_TYPE_FOR_SEEK));
  char stack[256];
  char *probe = NULL, *heap = NULL;
  int rc = make_probe(user_key, trailer, sizeof trailer, stack, sizeof stack, &probe, &heap);
  if (rc) return rc;

  skiplist_iter it;
  skiplist_iter_init(&it, m->list);
  skiplist_iter_seek(&it, probe);
  free(heap);
  if (!skiplist_iter_valid(&it)) return MAYFLY_ENOTFOUND;

  const char *entry = skiplist_iter_entry(&it);
  mf_parsed_ikey parsed;
  if (!ikey_parse(entry_ikey(entry), &parsed) || !mf_slice_equal(parsed.user_key, user_key))
    return MAYFLY_ENOTFOUND;
  *type = parsed.type;
  *found_seq = parsed.seq;
  if (parsed.type != MF_TYPE_DELETE) {
    mf_slice v = entry_value(entry);
    if (mf_buf_set(value, v.data, v.len))
      return MF_ERR(MAYFLY_ENOMEM, "memtable: out of memory copying a %zu byte value", v.len);
  }
  return MAYFLY_OK;
}

size_t memtable_memory_usage(const memtable *m) {
  return arena_memory_usage(m->arena) + arena_memory_usage(m->values) +
         m->filter_blocks * FILTER_BLOCK_WORDS * sizeof(uint64_t);
}

size_t memtable_data_usage(const memtable *m) {
  return arena_bytes_used(m->arena) + arena_bytes_used(m->values);
}

uint64_t memtable_num_entries(const memtable *m) {
  return atomic_load_explicit((atomic_uint_least64_t *)&m->num_entries, memory_order_relaxed);
}

uint64_t memtable_num_deletes(const memtable *m) {
  return atomic_load_explicit((atomic_uint_least64_t *)&m->num_deletes, memory_order_relaxed);
}

/* ---- iterator ---- */

typedef struct memtable_iter {
  mf_iter base;
  memtable *mem; /* referenced */
  skiplist_iter pos;
  int status; /* MAYFLY_ENOMEM after a seek could not build its probe, else MAYFLY_OK */
} memtable_iter;

static int mi_valid(const mf_iter *it) {
  return skiplist_iter_valid(&((const memtable_iter *)it)->pos);
}

static void mi_seek_to_first(mf_iter *it) {
  memtable_iter *mi = (memtable_iter *)it;
  mi->status = MAYFLY_OK;
  skiplist_iter_seek_to_first(&mi->pos);
}

static void mi_seek_to_last(mf_iter *it) {
  memtable_iter *mi = (memtable_iter *)it;
  mi->status = MAYFLY_OK;
  skiplist_iter_seek_to_last(&mi->pos);
}

static void mi_seek(mf_iter *it, mf_slice target) {
  memtable_iter *mi = (memtable_iter *)it;
  char stack[256];
  char *probe = NULL, *heap = NULL;
  mi->status = make_probe(target, NULL, 0, stack, sizeof stack, &probe, &heap);
  if (mi->status) {
    mi->pos.node = NULL;
    return;
  }
  skiplist_iter_seek(&mi->pos, probe);
  free(heap);
}

static void mi_next(mf_iter *it) { skiplist_iter_next(&((memtable_iter *)it)->pos); }
static void mi_prev(mf_iter *it) { skiplist_iter_prev(&((memtable_iter *)it)->pos); }

static mf_slice mi_key(const mf_iter *it) {
  return entry_ikey(skiplist_iter_entry(&((const memtable_iter *)it)->pos));
}

static mf_slice mi_value(const mf_iter *it) {
  return entry_value(skiplist_iter_entry(&((const memtable_iter *)it)->pos));
}

static int mi_status(const mf_iter *it) { return ((const memtable_iter *)it)->status; }

static void mi_destroy(mf_iter *it) {
  memtable_iter *mi = (memtable_iter *)it;
  memtable_unref(mi->mem);
  free(mi);
}

static const mf_iter_ops memtable_iter_ops = {
    .valid = mi_valid,
    .seek_to_first = mi_seek_to_first,
    .seek_to_last = mi_seek_to_last,
    .seek = mi_seek,
    .next = mi_next,
    .prev = mi_prev,
    .key = mi_key,
    .value = mi_value,
    .status = mi_status,
    .destroy = mi_destroy,
};

mf_iter *memtable_iter_create(memtable *m) {
  memtable_iter *mi = malloc(sizeof *mi);
  if (!mi) return NULL;
  iter_init(&mi->base, &memtable_iter_ops);
  memtable_ref(m);
  mi->mem = m;
  skiplist_iter_init(&mi->pos, m->list);
  mi->status = MAYFLY_OK;
  return &mi->base;
}
