/* mayfly_stress: a multi-threaded stress program that checks every read against an
 * expected state kept in a file, so the database can be killed at any moment and checked
 * after it reopens (the blackbox crash test of docs/crash-testing.md, driven by
 * scripts/crashtest.sh). It uses only the public API (mayfly.h).
 *
 *   mayfly_stress --db=DIR --expected=FILE [--threads=4] [--ops=N | --duration=S]
 *                 [--seed=S] [--max_key=10000] [--options="name=value;..."]
 *                 [--sync_pct=P] [--verify_only] [--no_verify] [--destroy]
 *
 * Exit status: 0 success, 1 usage or an unexpected error code from the engine,
 * 2 the database disagrees with the expected state (a lost, wrong or invented value).
 *
 * The expected state
 * ------------------
 * FILE is mmap'd shared, so every store into it reaches the page cache at once and survives
 * a SIGKILL of this process (not a machine crash, which this test does not simulate). For
 * every key index k in [0, max_key) it holds three version words:
 *   committed  the state of k after the last write the engine acknowledged;
 *   pending    the state a write now in flight will leave (0: none in flight);
 *   last       the highest version ever handed out for k, so versions never repeat.
 * A version word is a 31-bit counter with bit 31 set for a delete; 0 means "never written".
 * A writer holds the key's stripe lock, sets last and pending, calls the engine, and on
 * MAYFLY_OK sets committed and clears pending. A batch also records its keys and new
 * versions in the writing thread's batch slot first, so verification can check that the
 * batch became visible all-or-nothing.
 *
 * Verification (at startup, and the whole of --verify_only): for every key, the engine must
 * show the committed state or, if a write was pending, the pending one. A process crash
 * loses nothing the engine acknowledged, with or without MAYFLY_SYNC (the WAL reaches the
 * OS before a write returns), so this is checked strictly. Then the expected state is set
 * to what was found (pending cleared), and one forward and one backward full iteration must
 * agree with the gets.
 *
 * Values
 * ------
 * A value is a pure function of (key index, version): a 16-byte header (key index, version,
 * length, check word, little-endian u32 each) and a body of pseudo-random 8-byte words,
 * each repeated four times so that compression has something to do. Lengths run from 16 B
 * to 64 KiB (about half under 256 B, a fifth over 4 KiB). A reader regenerates the value
 * from the header and compares every byte, so a value is accepted only if it is exactly one
 * that was written for that key.
 *
 * Concurrency checks during the run
 * ---------------------------------
 * Keys are grouped in stripes of KEYS_PER_STRIPE consecutive indexes, one mutex each; any
 * code that holds several takes them in ascending order. Gets, range iterations and
 * snapshots lock the stripes they check, so the expected state cannot move under them;
 * "free" iterations take no lock and check only that every value is a well-formed value of
 * its key and no newer than the newest version handed out. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mayfly.h"

#define DELETED_BIT 0x80000000u
#define VERSION_MASK 0x7fffffffu
#define KEYS_PER_STRIPE 8
#define MAX_BATCH 8
#define MAX_THREADS 64
#define MAX_RANGE 64
#define VALUE_HEADER 16
#define MAX_VALUE (64u << 10)
#define KEY_LEN 11 /* "key" + 8 digits */
#define HANG_SECONDS 120
#define EXPECTED_MAGIC 0x3154535845464d4dull /* "MMFEXST1" */

/* ---- the expected-state file ---------------------------------------------------------- */

typedef struct key_state {
  uint32_t committed;
  uint32_t pending;
  uint32_t last;
  uint32_t reserved;
} key_state;

typedef struct batch_slot {
  uint32_t count; /* 0: no batch in flight */
  uint32_t keys[MAX_BATCH];
  uint32_t versions[MAX_BATCH];
} batch_slot;

typedef struct expected_header {
  uint64_t magic;
  uint32_t max_key;
  uint32_t reserved;
  uint64_t total_ops;    /* operations over all runs (approximate: counted in chunks) */
  uint64_t total_writes; /* acknowledged writes over all runs */
  uint64_t runs;         /* processes that opened the file to run operations */
  uint64_t verifies;     /* completed verifications */
  batch_slot slots[MAX_THREADS];
} expected_header;

static expected_header *g_hdr;
static key_state *g_keys;
static uint32_t g_max_key;

static uint32_t load32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void store32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static void add64(uint64_t *p, uint64_t v) { __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }

/* ---- configuration and failure reporting ---------------------------------------------- */

typedef struct config {
  const char *db_path;
  const char *expected_path;
  const char *options;
  int threads;
  uint64_t ops;      /* total over all threads; 0: until the duration ends or forever */
  double duration;   /* seconds; 0: no limit */
  uint64_t seed;
  uint32_t max_key;
  int sync_pct;
  int verify_only;
  int no_verify;
  int destroy;
} config;

static config g_cfg;
static mayfly_db *g_db;
static int g_stop; /* set by the main thread when the duration is over (atomic access) */

static void die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "mayfly_stress: %s: ", status == 2 ? "VERIFY FAILURE" : "error");
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, " (seed %" PRIu64 ")\n", g_cfg.seed);
  fflush(stderr);
  fflush(stdout);
  _exit(status); /* no atexit work: other threads may be inside the engine */
}

static void check_rc(int rc, const char *what) {
  if (rc != MAYFLY_OK)
    die(1, "%s failed: %s: %s", what, mayfly_strerror(rc), g_db ? mayfly_errmsg(g_db) : "");
}

/* ---- randomness and values ------------------------------------------------------------ */

static uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

typedef struct rng {
  uint64_t s;
} rng;

static uint64_t rng_next(rng *r) {
  r->s += 0x9e3779b97f4a7c15ull;
  return mix64(r->s);
}
static uint32_t rng_uniform(rng *r, uint32_t n) { return n ? (uint32_t)(rng_next(r) % n) : 0; }
static int rng_pct(rng *r, int pct) { return (int)rng_uniform(r, 100) < pct; }

/* "key" and k in 8 zero-padded digits (k < 10^8), NUL-terminated. */
static void key_of(uint32_t k, char out[KEY_LEN + 1]) {
  memcpy(out, "key", 3);
  for (int i = KEY_LEN - 1; i >= 3; i--, k /= 10) out[i] = (char)('0' + k % 10);
  out[KEY_LEN] = '\0';
}

/* Parses a key written by key_of; returns 0 and sets *k, or -1 for anything else. */
static int key_parse(const void *key, size_t klen, uint32_t *k) {
  const char *s = key;
  if (klen != KEY_LEN || memcmp(s, "key", 3) != 0) return -1;
  uint32_t v = 0;
  for (int i = 3; i < KEY_LEN; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (uint32_t)(s[i] - '0');
  }
  *k = v;
  return 0;
}

static uint64_t value_seed(uint32_t k, uint32_t version) {
  return mix64(((uint64_t)k << 32) | version);
}

static size_t value_len(uint32_t k, uint32_t version) {
  uint64_t h = value_seed(k, version);
  uint32_t bucket = (uint32_t)(h % 100);
  uint64_t r = h >> 8;
  if (bucket < 50) return 16 + r % 240;          /* 16 .. 255 */
  if (bucket < 80) return 256 + r % 3840;        /* 256 .. 4095 */
  if (bucket < 95) return 4096 + r % 12288;      /* 4 KiB .. 16 KiB - 1 */
  return 16384 + r % (MAX_VALUE - 16384 + 1);    /* 16 KiB .. 64 KiB */
}

static void put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}
static uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t header_check(uint32_t k, uint32_t version, uint32_t len) {
  return (uint32_t)mix64(value_seed(k, version) ^ ((uint64_t)len << 17) ^ 0x5eed);
}

/* Writes the value of (k, version) into buf (at least MAX_VALUE bytes); returns its length. */
static size_t value_make(uint32_t k, uint32_t version, uint8_t *buf) {
  size_t len = value_len(k, version);
  put_u32(buf, k);
  put_u32(buf + 4, version);
  put_u32(buf + 8, (uint32_t)len);
  put_u32(buf + 12, header_check(k, version, (uint32_t)len));
  uint64_t s = value_seed(k, version) ^ 0xb0d1;
  uint64_t word = 0;
  for (size_t off = VALUE_HEADER, i = 0; off < len; off += 8, i++) {
    if (i % 4 == 0) word = mix64(s + i);
    size_t n = len - off < 8 ? len - off : 8;
    memcpy(buf + off, &word, n);
  }
  return len;
}

/* Decodes a value read for key k. On success returns 0 with the version it holds; else
 * returns -1 and describes the problem in why. scratch holds MAX_VALUE bytes. */
static int value_check(uint32_t k, const void *val, size_t vlen, uint32_t *version,
                       uint8_t *scratch, char *why, size_t why_len) {
  const uint8_t *v = val;
  if (vlen < VALUE_HEADER) {
    snprintf(why, why_len, "a %zu-byte value, shorter than any value written", vlen);
    return -1;
  }
  uint32_t vk = get_u32(v), ver = get_u32(v + 4), len = get_u32(v + 8);
  if (get_u32(v + 12) != header_check(vk, ver, len) || len != vlen) {
    snprintf(why, why_len, "a %zu-byte value with a bad header (key %u version %u len %u)",
             vlen, vk, ver, len);
    return -1;
  }
  if (vk != k) {
    snprintf(why, why_len, "the value of key %u (version %u) under the wrong key", vk, ver);
    return -1;
  }
  if (ver == 0 || (ver & DELETED_BIT) || value_len(k, ver) != vlen) {
    snprintf(why, why_len, "a value with version %u and length %zu that is never written",
             ver, vlen);
    return -1;
  }
  value_make(k, ver, scratch);
  for (size_t i = 0; i < vlen; i++) {
    if (scratch[i] != v[i]) {
      snprintf(why, why_len, "version %u (%zu bytes) corrupted at byte %zu", ver, vlen, i);
      return -1;
    }
  }
  *version = ver;
  return 0;
}

static int word_absent(uint32_t w) { return w == 0 || (w & DELETED_BIT); }

/* Describes a version word for messages. */
static const char *word_str(uint32_t w, char *buf, size_t n) {
  if (w == 0) snprintf(buf, n, "absent (never written)");
  else if (w & DELETED_BIT) snprintf(buf, n, "absent (deleted at version %u)", w & VERSION_MASK);
  else snprintf(buf, n, "version %u", w);
  return buf;
}

/* What a read found: FOUND_ABSENT, or the version held. */
#define FOUND_ABSENT 0u

/* Does what was found (FOUND_ABSENT or a version) match the expected word? */
static int found_matches(uint32_t found, uint32_t word) {
  return found == FOUND_ABSENT ? word_absent(word) : found == word;
}

/* Reads key k (through snap if not NULL) and returns what it holds; dies on an engine error
 * or a value that is not one written for k. */
static uint32_t read_key(const mayfly_snapshot *snap, uint32_t k, uint8_t *scratch,
                         const char *context) {
  char key[KEY_LEN + 1], why[160];
  key_of(k, key);
  void *val = NULL;
  size_t vlen = 0;
  int rc = mayfly_get(g_db, snap, key, KEY_LEN, &val, &vlen);
  if (rc == MAYFLY_ENOTFOUND) return FOUND_ABSENT;
  check_rc(rc, "get");
  uint32_t version = 0;
  int bad = value_check(k, val, vlen, &version, scratch, why, sizeof why);
  mayfly_free(val);
  if (bad) die(2, "%s: key %s holds %s", context, key, why);
  return version;
}

/* ---- stripes -------------------------------------------------------------------------- */

static pthread_mutex_t *g_stripes;
static uint32_t g_num_stripes;

static uint32_t stripe_of(uint32_t k) { return k / KEYS_PER_STRIPE; }

static void lock_range(uint32_t lo, uint32_t hi) { /* keys [lo, hi) */
  for (uint32_t s = stripe_of(lo); s <= stripe_of(hi - 1); s++) pthread_mutex_lock(&g_stripes[s]);
}
static void unlock_range(uint32_t lo, uint32_t hi) {
  for (uint32_t s = stripe_of(lo); s <= stripe_of(hi - 1); s++) pthread_mutex_unlock(&g_stripes[s]);
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* Sorts and deduplicates the stripes of keys[0..n) into out; returns how many. */
static int stripes_of_keys(const uint32_t *keys, int n, uint32_t *out) {
  for (int i = 0; i < n; i++) out[i] = stripe_of(keys[i]);
  qsort(out, (size_t)n, sizeof *out, cmp_u32);
  int m = 0;
  for (int i = 0; i < n; i++)
    if (m == 0 || out[m - 1] != out[i]) out[m++] = out[i];
  return m;
}

/* ---- verification --------------------------------------------------------------------- */

/* Checks that each in-flight batch is visible all-or-nothing. found[k] is what the db holds.
 * Runs before the per-key fix-up, while pending words are still in place. */
static void verify_batches(const uint32_t *found) {
  char a[64], b[64], key[KEY_LEN + 1];
  for (int t = 0; t < MAX_THREADS; t++) {
    batch_slot *slot = &g_hdr->slots[t];
    uint32_t n = slot->count;
    if (n == 0) continue;
    if (n > MAX_BATCH) die(2, "batch slot %d holds a bad count %u", t, n);
    /* If any key of the batch already committed, the engine acknowledged the batch. */
    int acked = 0;
    for (uint32_t i = 0; i < n; i++)
      if (g_keys[slot->keys[i]].committed == slot->versions[i]) acked = 1;
    int first_new = -1, first_old = -1;
    for (uint32_t i = 0; i < n; i++) {
      uint32_t k = slot->keys[i], nv = slot->versions[i];
      uint32_t old = g_keys[k].committed == nv ? 0 : g_keys[k].committed;
      int is_new = found_matches(found[k], nv), is_old = found_matches(found[k], old);
      if (acked && !is_new) {
        key_of(k, key);
        die(2, "acknowledged batch (thread slot %d): key %s should be %s, found %s", t, key,
            word_str(nv, a, sizeof a), word_str(found[k], b, sizeof b));
      }
      if (is_new && !is_old && first_new < 0) first_new = (int)i;
      if (is_old && !is_new && first_old < 0) first_old = (int)i;
    }
    if (first_new >= 0 && first_old >= 0) {
      uint32_t kn = slot->keys[first_new], ko = slot->keys[first_old];
      die(2, "batch (thread slot %d) applied partly: key %u shows its new %s, key %u its old "
          "state %s", t, kn, word_str(slot->versions[first_new], a, sizeof a), ko,
          word_str(found[ko], b, sizeof b));
    }
  }
}

/* Walks the whole database forwards (dir > 0) or backwards and checks it agrees with found.
 * Returns the number of keys seen. */
static uint64_t verify_scan(const uint32_t *found, int dir, uint8_t *scratch) {
  mayfly_iter *it = NULL;
  check_rc(mayfly_iter_create(g_db, NULL, &it), "iter_create");
  if (dir > 0) mayfly_iter_seek_to_first(it);
  else mayfly_iter_seek_to_last(it);
  uint64_t seen = 0;
  int64_t prev = -1;
  char why[160], a[64];
  for (; mayfly_iter_valid(it); dir > 0 ? mayfly_iter_next(it) : mayfly_iter_prev(it)) {
    size_t klen = 0, vlen = 0;
    const void *key = mayfly_iter_key(it, &klen);
    uint32_t k = 0, version = 0;
    if (key_parse(key, klen, &k) != 0 || k >= g_max_key)
      die(2, "%s scan: found a key that was never written (%zu bytes: %.*s)",
          dir > 0 ? "forward" : "backward", klen, (int)(klen < 40 ? klen : 40), (const char *)key);
    if (prev >= 0 && (dir > 0 ? (int64_t)k <= prev : (int64_t)k >= prev))
      die(2, "%s scan: key %u follows key %" PRId64 " out of order",
          dir > 0 ? "forward" : "backward", k, prev);
    prev = k;
    const void *val = mayfly_iter_value(it, &vlen);
    if (val == NULL) check_rc(mayfly_iter_status(it), "iter_value");
    if (value_check(k, val, vlen, &version, scratch, why, sizeof why) != 0)
      die(2, "%s scan: key %u holds %s", dir > 0 ? "forward" : "backward", k, why);
    if (version != found[k])
      die(2, "%s scan: key %u is version %u but get found %s", dir > 0 ? "forward" : "backward",
          k, version, word_str(found[k], a, sizeof a));
    seen++;
  }
  check_rc(mayfly_iter_status(it), "full scan");
  mayfly_iter_destroy(it);
  return seen;
}

/* Verifies the database against the expected state and then makes the expected state equal
 * to what was found. Dies with status 2 on any disagreement. */
static double now_seconds(void);

static void verify_all(void) {
  double t0 = now_seconds();
  uint8_t *scratch = malloc(MAX_VALUE);
  uint32_t *found = malloc(sizeof *found * g_max_key);
  if (!scratch || !found) die(1, "out of memory");
  char a[64], b[64], c[64], key[KEY_LEN + 1];
  uint64_t present = 0, was_pending = 0, took_pending = 0;
  for (uint32_t k = 0; k < g_max_key; k++) {
    found[k] = read_key(NULL, k, scratch, "verify");
    if (found[k] != FOUND_ABSENT) present++;
    uint32_t committed = g_keys[k].committed, pending = g_keys[k].pending;
    if (found_matches(found[k], committed)) continue;
    if (pending != 0 && found_matches(found[k], pending)) continue;
    key_of(k, key);
    if (pending != 0)
      die(2, "key %s: expected %s or the pending %s, found %s", key,
          word_str(committed, a, sizeof a), word_str(pending, b, sizeof b),
          word_str(found[k], c, sizeof c));
    die(2, "key %s: expected %s, found %s", key, word_str(committed, a, sizeof a),
        word_str(found[k], c, sizeof c));
  }
  verify_batches(found);
  /* Fix-up: from now on the expected state is what the database holds. A crash in the
   * middle of this loop is harmless: every key is either fixed or still has its choice. */
  for (uint32_t k = 0; k < g_max_key; k++) {
    key_state *e = &g_keys[k];
    if (e->pending != 0) {
      was_pending++;
      if (!found_matches(found[k], e->committed)) {
        store32(&e->committed, e->pending);
        took_pending++;
      }
      store32(&e->pending, 0);
    }
    if (e->last < (e->committed & VERSION_MASK)) store32(&e->last, e->committed & VERSION_MASK);
  }
  for (int t = 0; t < MAX_THREADS; t++) store32(&g_hdr->slots[t].count, 0);
  uint64_t fwd = verify_scan(found, 1, scratch);
  uint64_t bwd = verify_scan(found, -1, scratch);
  if (fwd != present || bwd != present)
    die(2, "scans saw %" PRIu64 " (forward) and %" PRIu64 " (backward) keys, gets found %" PRIu64,
        fwd, bwd, present);
  add64(&g_hdr->verifies, 1);
  printf("verify ok: %u keys, %" PRIu64 " present, %" PRIu64 " were pending (%" PRIu64
         " applied) in %.2f s; total ops %" PRIu64 ", writes %" PRIu64 ", runs %" PRIu64 "\n",
         g_max_key, present, was_pending, took_pending, now_seconds() - t0, g_hdr->total_ops,
         g_hdr->total_writes, g_hdr->runs);
  fflush(stdout);
  free(found);
  free(scratch);
}

/* ---- operations ----------------------------------------------------------------------- */

typedef struct worker {
  int id;
  rng r;
  uint8_t *buf;     /* MAX_VALUE: values to write */
  uint8_t *scratch; /* MAX_VALUE: values to check */
  uint64_t ops, local_ops, writes;
  uint64_t n_put, n_del, n_batch, n_get, n_iter, n_free_iter, n_snap, n_flush, n_compact, n_opt;
} worker;

static uint32_t next_version(key_state *e, int deleted) {
  uint32_t v = (e->last & VERSION_MASK) + 1;
  if (v > VERSION_MASK) die(1, "version counter overflow");
  store32(&e->last, v);
  return deleted ? (v | DELETED_BIT) : v;
}

static unsigned write_flags(worker *w) { return rng_pct(&w->r, g_cfg.sync_pct) ? MAYFLY_SYNC : 0; }

/* One put or delete of key k. REQUIRES: k's stripe locked. */
static void write_key_locked(worker *w, uint32_t k, int deleted) {
  key_state *e = &g_keys[k];
  char key[KEY_LEN + 1];
  key_of(k, key);
  uint32_t nv = next_version(e, deleted);
  store32(&e->pending, nv);
  int rc;
  if (deleted) {
    rc = mayfly_delete(g_db, key, KEY_LEN, write_flags(w));
    check_rc(rc, "delete");
  } else {
    size_t len = value_make(k, nv, w->buf);
    rc = mayfly_put(g_db, key, KEY_LEN, w->buf, len, write_flags(w));
    check_rc(rc, "put");
  }
  store32(&e->committed, nv);
  store32(&e->pending, 0);
  w->writes++;
}

static void op_write(worker *w, int deleted) {
  uint32_t k = rng_uniform(&w->r, g_max_key);
  pthread_mutex_lock(&g_stripes[stripe_of(k)]);
  write_key_locked(w, k, deleted);
  pthread_mutex_unlock(&g_stripes[stripe_of(k)]);
  if (deleted) w->n_del++;
  else w->n_put++;
}

/* Picks n distinct keys: clustered half the time (range-ish batches), scattered otherwise. */
static int pick_batch_keys(worker *w, uint32_t *keys) {
  int n = 2 + (int)rng_uniform(&w->r, MAX_BATCH - 1);
  if ((uint32_t)n > g_max_key) n = (int)g_max_key;
  int clustered = rng_pct(&w->r, 50);
  uint32_t base = rng_uniform(&w->r, g_max_key);
  int m = 0;
  while (m < n) {
    uint32_t k = clustered ? (base + rng_uniform(&w->r, 4 * MAX_BATCH)) % g_max_key
                           : rng_uniform(&w->r, g_max_key);
    int dup = 0;
    for (int i = 0; i < m; i++) dup |= keys[i] == k;
    if (!dup) keys[m++] = k;
  }
  return m;
}

static void op_batch(worker *w) {
  uint32_t keys[MAX_BATCH], stripes[MAX_BATCH], versions[MAX_BATCH];
  int n = pick_batch_keys(w, keys);
  int ns = stripes_of_keys(keys, n, stripes);
  for (int i = 0; i < ns; i++) pthread_mutex_lock(&g_stripes[stripes[i]]);
  mayfly_batch *b = NULL;
  check_rc(mayfly_batch_create(&b), "batch_create");
  batch_slot *slot = &g_hdr->slots[w->id];
  for (int i = 0; i < n; i++) {
    versions[i] = next_version(&g_keys[keys[i]], rng_pct(&w->r, 20));
    slot->keys[i] = keys[i];
    slot->versions[i] = versions[i];
  }
  store32(&slot->count, (uint32_t)n); /* the slot first, then the pending words */
  for (int i = 0; i < n; i++) {
    char key[KEY_LEN + 1];
    key_of(keys[i], key);
    store32(&g_keys[keys[i]].pending, versions[i]);
    if (versions[i] & DELETED_BIT) {
      check_rc(mayfly_batch_delete(b, key, KEY_LEN), "batch_delete");
    } else {
      size_t len = value_make(keys[i], versions[i], w->buf);
      check_rc(mayfly_batch_put(b, key, KEY_LEN, w->buf, len), "batch_put");
    }
  }
  if (mayfly_batch_count(b) != (size_t)n) die(1, "batch_count %zu, expected %d", mayfly_batch_count(b), n);
  check_rc(mayfly_write(g_db, b, write_flags(w)), "write (batch)");
  for (int i = 0; i < n; i++) {
    store32(&g_keys[keys[i]].committed, versions[i]);
    store32(&g_keys[keys[i]].pending, 0);
  }
  store32(&slot->count, 0);
  mayfly_batch_destroy(b);
  for (int i = ns - 1; i >= 0; i--) pthread_mutex_unlock(&g_stripes[stripes[i]]);
  w->writes += (uint64_t)n;
  w->n_batch++;
}

static void op_get(worker *w) {
  uint32_t k = rng_uniform(&w->r, g_max_key);
  pthread_mutex_lock(&g_stripes[stripe_of(k)]);
  uint32_t want = g_keys[k].committed;
  uint32_t found = read_key(NULL, k, w->scratch, "get");
  if (!found_matches(found, want)) {
    char a[64], b[64];
    die(2, "get key%08u: expected %s, found %s", k, word_str(want, a, sizeof a),
        word_str(found, b, sizeof b));
  }
  pthread_mutex_unlock(&g_stripes[stripe_of(k)]);
  w->n_get++;
}

/* Checks an iterator (or snapshot reads) over keys [lo, hi) against want[k - lo]. */
static void check_range_iter(worker *w, mayfly_iter *it, uint32_t lo, uint32_t hi,
                             const uint32_t *want, int backward, const char *what) {
  char key[KEY_LEN + 1], why[160], a[64], b[64];
  uint32_t pos = backward ? hi : lo; /* next key index we expect to consider */
  if (backward) {
    key_of(hi, key); /* hi may equal max_key: that key is never written, seek still works */
    mayfly_iter_seek(it, key, KEY_LEN);
    if (mayfly_iter_valid(it)) mayfly_iter_prev(it);
    else mayfly_iter_seek_to_last(it);
  } else {
    key_of(lo, key);
    mayfly_iter_seek(it, key, KEY_LEN);
  }
  for (;;) {
    uint32_t k = UINT32_MAX, version = 0;
    if (mayfly_iter_valid(it)) {
      size_t klen = 0, vlen = 0;
      const void *kp = mayfly_iter_key(it, &klen);
      if (key_parse(kp, klen, &k) != 0)
        die(2, "%s: a key that was never written (%zu bytes: %.*s)", what, klen,
            (int)(klen < 40 ? klen : 40), (const char *)kp);
      if (backward ? k < lo : k >= hi) k = UINT32_MAX; /* left the range */
      else {
        if (backward ? k >= pos : k < pos) die(2, "%s: key %u out of order", what, k);
        const void *val = mayfly_iter_value(it, &vlen);
        if (val == NULL) check_rc(mayfly_iter_status(it), "iter_value");
        if (value_check(k, val, vlen, &version, w->scratch, why, sizeof why) != 0)
          die(2, "%s: key %u holds %s", what, k, why);
      }
    } else {
      check_rc(mayfly_iter_status(it), what);
    }
    /* Every key between pos and k (exclusive) must be expected absent. */
    if (backward) {
      uint32_t stop = k == UINT32_MAX ? lo : k + 1;
      for (uint32_t j = pos; j > stop; j--)
        if (!word_absent(want[j - 1 - lo]))
          die(2, "%s (backward): key %u missing, expected %s", what, j - 1,
              word_str(want[j - 1 - lo], a, sizeof a));
    } else {
      uint32_t stop = k == UINT32_MAX ? hi : k;
      for (uint32_t j = pos; j < stop; j++)
        if (!word_absent(want[j - lo]))
          die(2, "%s: key %u missing, expected %s", what, j, word_str(want[j - lo], a, sizeof a));
    }
    if (k == UINT32_MAX) break;
    if (want[k - lo] != version)
      die(2, "%s: key %u expected %s, found %s", what, k, word_str(want[k - lo], a, sizeof a),
          word_str(version, b, sizeof b));
    pos = backward ? k : k + 1;
    if (backward) mayfly_iter_prev(it);
    else mayfly_iter_next(it);
  }
}

static void pick_range(worker *w, uint32_t *lo, uint32_t *hi) {
  uint32_t len = 1 + rng_uniform(&w->r, MAX_RANGE);
  if (len > g_max_key) len = g_max_key;
  *lo = rng_uniform(&w->r, g_max_key - len + 1);
  *hi = *lo + len;
}

static void op_range_iter(worker *w) {
  uint32_t lo, hi, want[MAX_RANGE];
  pick_range(w, &lo, &hi);
  mayfly_iter *it = NULL;
  lock_range(lo, hi);
  check_rc(mayfly_iter_create(g_db, NULL, &it), "iter_create");
  for (uint32_t k = lo; k < hi; k++) want[k - lo] = g_keys[k].committed;
  unlock_range(lo, hi);
  check_range_iter(w, it, lo, hi, want, rng_pct(&w->r, 30), "range iteration");
  mayfly_iter_destroy(it);
  w->n_iter++;
}

/* An iteration without locks: concurrent writes may change anything, so it checks only
 * order, well-formed values, and that no value is newer than any version handed out. */
static void op_free_iter(worker *w) {
  uint32_t lo, hi;
  pick_range(w, &lo, &hi);
  mayfly_iter *it = NULL;
  check_rc(mayfly_iter_create(g_db, NULL, &it), "iter_create");
  char key[KEY_LEN + 1], why[160];
  key_of(lo, key);
  int64_t prev = -1;
  for (mayfly_iter_seek(it, key, KEY_LEN); mayfly_iter_valid(it); mayfly_iter_next(it)) {
    size_t klen = 0, vlen = 0;
    uint32_t k = 0, version = 0;
    const void *kp = mayfly_iter_key(it, &klen);
    if (key_parse(kp, klen, &k) != 0)
      die(2, "free iteration: a key that was never written (%zu bytes: %.*s)", klen,
          (int)(klen < 40 ? klen : 40), (const char *)kp);
    if (k >= hi) break;
    if (k < lo || (int64_t)k <= prev) die(2, "free iteration: key %u out of order", k);
    prev = k;
    const void *val = mayfly_iter_value(it, &vlen);
    if (val == NULL) check_rc(mayfly_iter_status(it), "iter_value");
    if (value_check(k, val, vlen, &version, w->scratch, why, sizeof why) != 0)
      die(2, "free iteration: key %u holds %s", k, why);
    if (version > load32(&g_keys[k].last))
      die(2, "free iteration: key %u holds version %u, newer than any written (%u)", k, version,
          load32(&g_keys[k].last));
  }
  check_rc(mayfly_iter_status(it), "free iteration");
  mayfly_iter_destroy(it);
  w->n_free_iter++;
}

/* Takes a snapshot of a locked range, lets writes happen (some of them ours, inside the
 * range), then reads the range through the snapshot with gets and an iterator. */
static void op_snapshot(worker *w) {
  uint32_t lo, hi, want[MAX_RANGE];
  pick_range(w, &lo, &hi);
  const mayfly_snapshot *snap = NULL;
  lock_range(lo, hi);
  check_rc(mayfly_snapshot_create(g_db, &snap), "snapshot_create");
  for (uint32_t k = lo; k < hi; k++) want[k - lo] = g_keys[k].committed;
  unlock_range(lo, hi);
  for (int i = (int)rng_uniform(&w->r, 4); i > 0; i--) {
    uint32_t k = lo + rng_uniform(&w->r, hi - lo);
    pthread_mutex_lock(&g_stripes[stripe_of(k)]);
    write_key_locked(w, k, rng_pct(&w->r, 25));
    pthread_mutex_unlock(&g_stripes[stripe_of(k)]);
  }
  if (rng_pct(&w->r, 3)) check_rc(mayfly_flush(g_db), "flush (under a snapshot)");
  char a[64], b[64];
  for (uint32_t k = lo; k < hi; k++) {
    uint32_t found = read_key(snap, k, w->scratch, "snapshot get");
    if (!found_matches(found, want[k - lo]))
      die(2, "snapshot get key%08u: expected %s, found %s", k,
          word_str(want[k - lo], a, sizeof a), word_str(found, b, sizeof b));
  }
  mayfly_iter *it = NULL;
  check_rc(mayfly_iter_create(g_db, snap, &it), "iter_create (snapshot)");
  check_range_iter(w, it, lo, hi, want, rng_pct(&w->r, 30), "snapshot iteration");
  mayfly_iter_destroy(it);
  mayfly_snapshot_release(g_db, snap);
  w->n_snap++;
}

static void op_compact(worker *w) {
  char begin[KEY_LEN + 1], end[KEY_LEN + 1];
  /* Mostly small ranges (up to a tenth of the keys): a whole-database compaction now and
   * then is enough, and costs seconds. */
  uint32_t span = 1 + rng_uniform(&w->r, g_max_key / 10 + 1);
  uint32_t a = rng_uniform(&w->r, g_max_key), b = a + span < g_max_key ? a + span : g_max_key;
  key_of(a, begin);
  key_of(b, end);
  int open_begin = rng_pct(&w->r, 3), open_end = rng_pct(&w->r, 3);
  check_rc(mayfly_compact_range(g_db, open_begin ? NULL : begin, open_begin ? 0 : KEY_LEN,
                                open_end ? NULL : end, open_end ? 0 : KEY_LEN),
           "compact_range");
  w->n_compact++;
}

/* Key-value separation options, changed at runtime when this build of the engine has them
 * (checked once at startup, so the program also runs against engines without blob files). */
typedef struct blob_option {
  const char *name;
  const char *values[6];
} blob_option;
static const blob_option g_blob_options[] = {
    {"enable_blob_files", {"true", "true", "false", NULL}},
    {"min_blob_size", {"0", "256", "512", "4KiB", "32KiB", NULL}},
    {"blob_file_size", {"64KiB", "256KiB", "1MiB", "8MiB", NULL}},
    {"blob_compression", {"none", "lz4", "zstd", NULL}},
    {"blob_file_starting_level", {"0", "0", "1", "2", NULL}},
    {"enable_blob_garbage_collection", {"true", "true", "false", NULL}},
    {"blob_garbage_collection_age_cutoff", {"0", "0.25", "0.5", "1", NULL}},
    {"blob_garbage_collection_force_threshold", {"0.1", "0.5", "1", NULL}},
    {"blob_gc_policy", {"age", "age", "group", NULL}},
};
static int g_have_blob_options;

static void probe_blob_options(void) {
  mayfly_options *opt = NULL;
  check_rc(mayfly_options_create(&opt), "options_create");
  g_have_blob_options = 1;
  for (size_t i = 0; i < sizeof g_blob_options / sizeof g_blob_options[0]; i++)
    if (mayfly_options_set(opt, g_blob_options[i].name, g_blob_options[i].values[0]) != MAYFLY_OK)
      g_have_blob_options = 0;
  mayfly_options_destroy(opt);
}

/* Changes a runtime-mutable option. The L0 triggers are set as a consistent triple under a
 * lock; a concurrent change by another thread can still meet a triple half-changed, so
 * MAYFLY_EINVAL is accepted for them (the engine must refuse, not misbehave). */
static pthread_mutex_t g_option_mu = PTHREAD_MUTEX_INITIALIZER;

static void op_set_option(worker *w) {
  static const char *const buffer_sizes[] = {"64KiB", "128KiB", "256KiB", "1MiB", "4MiB"};
  static const char *const compressions[] = {"none", "lz4", "zstd"};
  static const char *const block_sizes[] = {"256", "1KiB", "4KiB", "16KiB"};
  static const char *const file_sizes[] = {"64KiB", "256KiB", "1MiB", "2MiB"};
  char v1[32], v2[32], v3[32];
  int rc = MAYFLY_OK;
  switch (rng_uniform(&w->r, g_have_blob_options ? 7 : 6)) {
  case 0:
    rc = mayfly_set_option(g_db, "write_buffer_size", buffer_sizes[rng_uniform(&w->r, 5)]);
    break;
  case 1:
    rc = mayfly_set_option(g_db, "compression", compressions[rng_uniform(&w->r, 3)]);
    break;
  case 2:
    rc = mayfly_set_option(g_db, "block_size", block_sizes[rng_uniform(&w->r, 4)]);
    break;
  case 3:
    rc = mayfly_set_option(g_db, "target_file_size_base", file_sizes[rng_uniform(&w->r, 4)]);
    break;
  case 4:
    snprintf(v1, sizeof v1, "%u", rng_uniform(&w->r, 21));
    rc = mayfly_set_option(g_db, "bloom_bits_per_key", v1);
    break;
  case 6: {
    uint32_t i = rng_uniform(&w->r, sizeof g_blob_options / sizeof g_blob_options[0]);
    const char *const *values = g_blob_options[i].values;
    int n = 0;
    while (values[n]) n++;
    rc = mayfly_set_option(g_db, g_blob_options[i].name, values[rng_uniform(&w->r, (uint32_t)n)]);
    break;
  }
  default: {
    uint32_t trigger = 1 + rng_uniform(&w->r, 8), slow = trigger + rng_uniform(&w->r, 16);
    uint32_t stop = slow + rng_uniform(&w->r, 16);
    snprintf(v1, sizeof v1, "%u", trigger);
    snprintf(v2, sizeof v2, "%u", slow);
    snprintf(v3, sizeof v3, "%u", stop);
    pthread_mutex_lock(&g_option_mu);
    /* Raise the upper bounds first or lower the lower one first, whichever keeps the triple
     * ordered; with the previous triple unknown, try both orders. */
    int r1 = mayfly_set_option(g_db, "level0_stop_writes_trigger", v3);
    int r2 = mayfly_set_option(g_db, "level0_slowdown_writes_trigger", v2);
    int r3 = mayfly_set_option(g_db, "level0_file_num_compaction_trigger", v1);
    if (r1 || r2 || r3) {
      r3 = mayfly_set_option(g_db, "level0_file_num_compaction_trigger", v1);
      r2 = mayfly_set_option(g_db, "level0_slowdown_writes_trigger", v2);
      r1 = mayfly_set_option(g_db, "level0_stop_writes_trigger", v3);
    }
    pthread_mutex_unlock(&g_option_mu);
    if (r1 || r2 || r3) die(1, "setting level0 triggers %s/%s/%s failed: %s", v1, v2, v3,
                            mayfly_errmsg(g_db));
    break;
  }
  }
  check_rc(rc, "set_option");
  w->n_opt++;
}

/* Operation mix, in units of 1/10000. */
enum { OP_PUT, OP_DEL, OP_BATCH, OP_GET, OP_ITER, OP_FREE_ITER, OP_SNAP, OP_FLUSH, OP_COMPACT,
       OP_OPTION, OP_COUNT };
static const uint32_t g_op_weight[OP_COUNT] = {
    [OP_PUT] = 4000,     [OP_DEL] = 800,     [OP_BATCH] = 1000, [OP_GET] = 2400,
    [OP_ITER] = 800,     [OP_FREE_ITER] = 500, [OP_SNAP] = 450,  [OP_FLUSH] = 15,
    [OP_COMPACT] = 10,   [OP_OPTION] = 25,
};

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *worker_main(void *arg) {
  worker *w = arg;
  uint64_t limit = g_cfg.ops ? g_cfg.ops / (uint64_t)g_cfg.threads +
                                   ((uint64_t)w->id < g_cfg.ops % (uint64_t)g_cfg.threads)
                             : UINT64_MAX;
  uint32_t total = 0;
  for (int i = 0; i < OP_COUNT; i++) total += g_op_weight[i];
  while (!__atomic_load_n(&g_stop, __ATOMIC_RELAXED) && w->ops < limit) {
    uint32_t pick = rng_uniform(&w->r, total);
    int op = 0;
    while (pick >= g_op_weight[op]) pick -= g_op_weight[op++];
    switch (op) {
    case OP_PUT: op_write(w, 0); break;
    case OP_DEL: op_write(w, 1); break;
    case OP_BATCH: op_batch(w); break;
    case OP_GET: op_get(w); break;
    case OP_ITER: op_range_iter(w); break;
    case OP_FREE_ITER: op_free_iter(w); break;
    case OP_SNAP: op_snapshot(w); break;
    case OP_FLUSH: check_rc(mayfly_flush(g_db), "flush"); w->n_flush++; break;
    case OP_COMPACT: op_compact(w); break;
    default: op_set_option(w); break;
    }
    __atomic_store_n(&w->ops, w->ops + 1, __ATOMIC_RELAXED); /* the main thread reads it */
    if (++w->local_ops == 64) {
      add64(&g_hdr->total_ops, w->local_ops);
      add64(&g_hdr->total_writes, w->writes);
      w->local_ops = w->writes = 0;
    }
  }
  add64(&g_hdr->total_ops, w->local_ops);
  add64(&g_hdr->total_writes, w->writes);
  w->local_ops = w->writes = 0;
  return NULL;
}

/* ---- setup ---------------------------------------------------------------------------- */

static void open_expected(void) {
  int fd = open(g_cfg.expected_path, O_RDWR | O_CREAT, 0644);
  if (fd < 0) die(1, "cannot open %s: %s", g_cfg.expected_path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) die(1, "cannot stat %s: %s", g_cfg.expected_path, strerror(errno));
  size_t size = sizeof(expected_header) + sizeof(key_state) * (size_t)g_cfg.max_key;
  int fresh = st.st_size == 0;
  if (fresh && ftruncate(fd, (off_t)size) != 0)
    die(1, "cannot size %s: %s", g_cfg.expected_path, strerror(errno));
  if (!fresh && (size_t)st.st_size != size)
    die(1, "%s has %lld bytes; --max_key=%u needs %zu (was it made with another --max_key?)",
        g_cfg.expected_path, (long long)st.st_size, g_cfg.max_key, size);
  void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) die(1, "cannot mmap %s: %s", g_cfg.expected_path, strerror(errno));
  close(fd);
  g_hdr = map;
  g_keys = (key_state *)((char *)map + sizeof(expected_header));
  if (fresh) {
    g_hdr->max_key = g_cfg.max_key;
    __atomic_store_n(&g_hdr->magic, EXPECTED_MAGIC, __ATOMIC_RELEASE);
  } else if (g_hdr->magic != EXPECTED_MAGIC || g_hdr->max_key != g_cfg.max_key) {
    die(1, "%s is not an expected-state file for --max_key=%u", g_cfg.expected_path,
        g_cfg.max_key);
  }
  g_max_key = g_cfg.max_key;
}

static void open_db(void) {
  mayfly_options *opt = NULL;
  check_rc(mayfly_options_create(&opt), "options_create");
  /* Small buffers and files so that flushes, compactions and several levels happen within
   * seconds; --options overrides any of these. */
  check_rc(mayfly_options_parse(opt, "write_buffer_size=256KiB;target_file_size_base=256KiB;"
                                     "max_bytes_for_level_base=1MiB;block_cache_size=1MiB"),
           "options_parse (defaults)");
  if (g_cfg.options && mayfly_options_parse(opt, g_cfg.options) != MAYFLY_OK)
    die(1, "bad --options \"%s\"", g_cfg.options);
  int rc = mayfly_open(g_cfg.db_path, opt, &g_db);
  mayfly_options_destroy(opt);
  if (rc != MAYFLY_OK) {
    mayfly_close(g_db);
    g_db = NULL;
    die(rc == MAYFLY_ECORRUPT ? 2 : 1, "mayfly_open(%s) failed: %s", g_cfg.db_path,
        mayfly_strerror(rc));
  }
}

static void usage(void) {
  fprintf(stderr,
          "usage: mayfly_stress --db=DIR --expected=FILE [--threads=4] [--ops=N | --duration=S]\n"
          "       [--seed=S] [--max_key=10000] [--options=\"name=value;...\"] [--sync_pct=P]\n"
          "       [--verify_only] [--no_verify] [--destroy] | --has_option=NAME\n");
  exit(1);
}

/* --has_option=NAME: does this engine know option NAME? (for scripts/crashtest.sh) */
static int has_option(const char *name) {
  mayfly_options *opt = NULL;
  if (mayfly_options_create(&opt) != MAYFLY_OK) return 0;
  /* Setting an option to its own default text is not possible without knowing it, so try
   * a few values of the kinds options take; a known option accepts one of them. */
  static const char *const probes[] = {"true", "0", "1", "1MiB", "none", "age", "0.5"};
  int known = 0;
  for (size_t i = 0; i < sizeof probes / sizeof probes[0] && !known; i++)
    known = mayfly_options_set(opt, name, probes[i]) == MAYFLY_OK;
  mayfly_options_destroy(opt);
  return known;
}

static const char *flag_value(const char *arg, const char *name) {
  size_t n = strlen(name);
  return strncmp(arg, name, n) == 0 && arg[n] == '=' ? arg + n + 1 : NULL;
}

static void parse_args(int argc, char **argv) {
  g_cfg.threads = 4;
  g_cfg.max_key = 10000;
  g_cfg.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v;
    if ((v = flag_value(a, "--db"))) g_cfg.db_path = v;
    else if ((v = flag_value(a, "--expected"))) g_cfg.expected_path = v;
    else if ((v = flag_value(a, "--options"))) g_cfg.options = v;
    else if ((v = flag_value(a, "--threads"))) g_cfg.threads = atoi(v);
    else if ((v = flag_value(a, "--ops"))) g_cfg.ops = strtoull(v, NULL, 10);
    else if ((v = flag_value(a, "--duration"))) g_cfg.duration = atof(v);
    else if ((v = flag_value(a, "--seed"))) g_cfg.seed = strtoull(v, NULL, 10);
    else if ((v = flag_value(a, "--max_key"))) g_cfg.max_key = (uint32_t)strtoul(v, NULL, 10);
    else if ((v = flag_value(a, "--sync_pct"))) g_cfg.sync_pct = atoi(v);
    else if (strcmp(a, "--verify_only") == 0) g_cfg.verify_only = 1;
    else if (strcmp(a, "--no_verify") == 0) g_cfg.no_verify = 1;
    else if (strcmp(a, "--destroy") == 0) g_cfg.destroy = 1;
    else if ((v = flag_value(a, "--has_option"))) exit(has_option(v) ? 0 : 3);
    else usage();
  }
  if (!g_cfg.db_path || !g_cfg.expected_path) usage();
  if (g_cfg.threads < 1 || g_cfg.threads > MAX_THREADS) die(1, "--threads must be 1..%d", MAX_THREADS);
  if (g_cfg.max_key < 1 || g_cfg.max_key > 99999999) die(1, "--max_key must be 1..99999999");
  if (g_cfg.sync_pct < 0 || g_cfg.sync_pct > 100) die(1, "--sync_pct must be 0..100");
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (g_cfg.destroy) { /* start over: a fresh database and expected state */
    mayfly_destroy(g_cfg.db_path);
    unlink(g_cfg.expected_path);
  }
  open_expected();
  g_num_stripes = (g_max_key + KEYS_PER_STRIPE - 1) / KEYS_PER_STRIPE;
  g_stripes = malloc(sizeof *g_stripes * g_num_stripes);
  if (!g_stripes) die(1, "out of memory");
  for (uint32_t s = 0; s < g_num_stripes; s++) pthread_mutex_init(&g_stripes[s], NULL);

  probe_blob_options();
  double t0 = now_seconds();
  open_db();
  printf("opened %s in %.3f s (seed %" PRIu64 ")\n", g_cfg.db_path, now_seconds() - t0, g_cfg.seed);
  if (!g_cfg.no_verify) verify_all();
  if (g_cfg.verify_only) {
    check_rc(mayfly_close(g_db), "close");
    return 0;
  }
  add64(&g_hdr->runs, 1);

  worker *workers = calloc((size_t)g_cfg.threads, sizeof *workers);
  pthread_t *tids = calloc((size_t)g_cfg.threads, sizeof *tids);
  if (!workers || !tids) die(1, "out of memory");
  for (int i = 0; i < g_cfg.threads; i++) {
    workers[i].id = i;
    workers[i].r.s = mix64(g_cfg.seed * 1000003u + (uint64_t)i);
    workers[i].buf = malloc(MAX_VALUE);
    workers[i].scratch = malloc(MAX_VALUE);
    if (!workers[i].buf || !workers[i].scratch) die(1, "out of memory");
    if (pthread_create(&tids[i], NULL, worker_main, &workers[i]) != 0) die(1, "pthread_create");
  }
  /* Progress once a second; the driver's logs show how far a killed run got. A run in
   * which no thread finishes an operation for HANG_SECONDS is reported as a hang. */
  double start = now_seconds(), next_report = start + 1, last_change = start;
  uint64_t last_ops = 0;
  for (;;) {
    int done = 1;
    for (int i = 0; i < g_cfg.threads; i++) {
      uint64_t limit = g_cfg.ops ? g_cfg.ops / (uint64_t)g_cfg.threads +
                                       ((uint64_t)i < g_cfg.ops % (uint64_t)g_cfg.threads)
                                 : UINT64_MAX;
      if (__atomic_load_n(&workers[i].ops, __ATOMIC_RELAXED) < limit) done = 0;
    }
    double now = now_seconds();
    if (done || (g_cfg.duration > 0 && now - start >= g_cfg.duration)) break;
    if (now >= next_report) {
      uint64_t ops = 0;
      for (int i = 0; i < g_cfg.threads; i++) ops += __atomic_load_n(&workers[i].ops, __ATOMIC_RELAXED);
      printf("progress: %.0f s, %" PRIu64 " ops\n", now - start, ops);
      next_report += 1;
      if (ops != last_ops) last_ops = ops, last_change = now;
      else if (now - last_change > HANG_SECONDS)
        die(1, "no operation finished in %d s: a hang (ops %" PRIu64 ")", HANG_SECONDS, ops);
    }
    usleep(10000);
  }
  __atomic_store_n(&g_stop, 1, __ATOMIC_RELAXED);
  for (int i = 0; i < g_cfg.threads; i++) pthread_join(tids[i], NULL);
  worker sum = {0};
  for (int i = 0; i < g_cfg.threads; i++) {
    worker *w = &workers[i];
    sum.ops += w->ops, sum.n_put += w->n_put, sum.n_del += w->n_del, sum.n_batch += w->n_batch;
    sum.n_get += w->n_get, sum.n_iter += w->n_iter, sum.n_free_iter += w->n_free_iter;
    sum.n_snap += w->n_snap, sum.n_flush += w->n_flush, sum.n_compact += w->n_compact;
    sum.n_opt += w->n_opt;
    free(w->buf);
    free(w->scratch);
  }
  double secs = now_seconds() - start;
  printf("ran %" PRIu64 " ops in %.1f s: %" PRIu64 " puts, %" PRIu64 " deletes, %" PRIu64
         " batches, %" PRIu64 " gets, %" PRIu64 " range iterations, %" PRIu64
         " free iterations, %" PRIu64 " snapshots, %" PRIu64 " flushes, %" PRIu64
         " compactions, %" PRIu64 " option changes\n",
         sum.ops, secs, sum.n_put, sum.n_del, sum.n_batch, sum.n_get, sum.n_iter,
         sum.n_free_iter, sum.n_snap, sum.n_flush, sum.n_compact, sum.n_opt);
  /* A clean close and reopen must also keep everything. */
  check_rc(mayfly_close(g_db), "close");
  g_db = NULL;
  open_db();
  verify_all();
  check_rc(mayfly_close(g_db), "close");
  free(workers);
  free(tids);
  return 0;
}
