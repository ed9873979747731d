/* The fault-injecting env (interface and crash model: env_fault.h).
 *
 * Files are wrapped: a fault_wfile / fault_rfile holds the base handle and a pointer back to
 * the env state, because append, sync and pread receive no env argument. Tracking for the
 * generic power loss is a list of paths (fault_track) created through this env; a wfile
 * remembers its path and how many bytes it appended, and a sync records that length as the
 * path's synced length. Lists are short in tests (a database directory), so lookups are
 * linear. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env/env_fault.h"
#include "mayfly.h"
#include "util/error.h"
#include "util/random.h"
#include "util/slice.h"

typedef struct fault_track {
  char *path;
  uint64_t synced_len;
  int undurable; /* created (or renamed to) since the last sync_dir of its directory */
} fault_track;

typedef struct fault_state {
  mf_env *base;
  pthread_mutex_t mu;
  uint64_t count[ENV_FAULT_NUM_KINDS];
  uint64_t after[ENV_FAULT_NUM_KINDS];
  int armed, kind, persistent, error_kind;
  uint64_t nth;
  uint64_t injected;
  char first_path[256];
  char last_path[ENV_FAULT_NUM_KINDS][256];
  int frozen;
  fault_track *tracks;
  size_t num_tracks;
  uint64_t garbage_seed;
} fault_state;

typedef struct fault_wfile {
  fault_state *fs;
  mf_wfile *base;
  char *path;
  uint64_t written;
} fault_wfile;

typedef struct fault_rfile {
  fault_state *fs;
  mf_rfile *base;
  char *path;
} fault_rfile;

static fault_state *state_of(mf_env *e) { return e->ctx; }

/* Counts a call of kind on path and decides whether it fails; returns the error or OK.
 * mutating: the call changes the file system (fails while frozen). */
static int enter(fault_state *fs, int kind, int mutating, const char *path) {
  pthread_mutex_lock(&fs->mu);
  if (mutating && fs->frozen) {
    pthread_mutex_unlock(&fs->mu);
    return MF_ERR(MAYFLY_EIO, "%s: injected fault: frozen (power lost)", path);
  }
  int fail = 0;
  if (kind >= 0) {
    uint64_t n = ++fs->count[kind];
    snprintf(fs->last_path[kind], sizeof fs->last_path[kind], "%s", path);
    if (fs->injected > 0) fs->after[kind]++;
    fail = fs->armed && fs->kind == kind && (n == fs->nth || (fs->persistent && n > fs->nth));
    if (fail) {
      if (fs->injected == 0) snprintf(fs->first_path, sizeof fs->first_path, "%s", path);
      fs->injected++;
    }
  }
  int error_kind = fs->error_kind;
  pthread_mutex_unlock(&fs->mu);
  if (!fail) return MAYFLY_OK;
  return MF_ERR(MAYFLY_EIO, "%s: injected fault: %s", path,
                error_kind == ENV_FAULT_ENOSPC ? "no space left on device" : "I/O error");
}

/* ---- tracking for the generic power loss (REQUIRES fs->mu held) ---- */

static fault_track *track_find(fault_state *fs, const char *path) {
  for (size_t i = 0; i < fs->num_tracks; i++)
    if (strcmp(fs->tracks[i].path, path) == 0) return &fs->tracks[i];
  return NULL;
}

static void track_remove(fault_state *fs, const char *path) {
  fault_track *t = track_find(fs, path);
  if (!t) return;
  free(t->path);
  *t = fs->tracks[--fs->num_tracks];
}

/* A best-effort record: without memory the file is simply treated as durable. */
static fault_track *track_add(fault_state *fs, const char *path) {
  track_remove(fs, path);
  fault_track *v = realloc(fs->tracks, (fs->num_tracks + 1) * sizeof *v);
  if (!v) return NULL;
  fs->tracks = v;
  char *p = strdup(path);
  if (!p) return NULL;
  fault_track *t = &fs->tracks[fs->num_tracks++];
  t->path = p;
  t->synced_len = 0;
  t->undurable = 1;
  return t;
}

/* Length of the directory part of path ("a/b/c" -> 3), ignoring trailing slashes of dir. */
static int in_dir(const char *path, const char *dir) {
  const char *slash = strrchr(path, '/');
  size_t plen = slash ? (size_t)(slash - path) : 0;
  size_t dlen = strlen(dir);
  while (dlen > 1 && dir[dlen - 1] == '/') dlen--;
  return plen == dlen && strncmp(path, dir, dlen) == 0;
}

/* ---- files ---- */

static int f_append(mf_wfile *w, const void *data, size_t n) {
  fault_wfile *f = (fault_wfile *)w;
  int rc = enter(f->fs, ENV_FAULT_WRITE, 1, f->path);
  if (rc == MAYFLY_OK) rc = f->fs->base->append(f->base, data, n);
  if (rc == MAYFLY_OK) f->written += n;
  return rc;
}

static int f_flush(mf_wfile *w) {
  fault_wfile *f = (fault_wfile *)w;
  int rc = enter(f->fs, ENV_FAULT_WRITE, 1, f->path);
  return rc ? rc : f->fs->base->flush(f->base);
}

static int f_sync(mf_wfile *w, int full) {
  fault_wfile *f = (fault_wfile *)w;
  int rc = enter(f->fs, ENV_FAULT_SYNC, 1, f->path);
  if (rc == MAYFLY_OK) rc = f->fs->base->sync(f->base, full);
  if (rc == MAYFLY_OK) {
    pthread_mutex_lock(&f->fs->mu);
    fault_track *t = track_find(f->fs, f->path);
    if (t) t->synced_len = f->written;
    pthread_mutex_unlock(&f->fs->mu);
  }
  return rc;
}

/* Never fails by injection: it must free the handle, and the engine cannot retry a close. */
static int f_close_writable(mf_wfile *w) {
  fault_wfile *f = (fault_wfile *)w;
  pthread_mutex_lock(&f->fs->mu);
  int frozen = f->fs->frozen;
  pthread_mutex_unlock(&f->fs->mu);
  int rc = f->fs->base->close_writable(f->base);
  if (frozen && rc == MAYFLY_OK) rc = MF_ERR(MAYFLY_EIO, "%s: injected fault: frozen", f->path);
  free(f->path);
  free(f);
  return rc;
}

static int f_new_writable(mf_env *env, const char *path, mf_wfile **out) {
  fault_state *fs = state_of(env);
  fault_wfile *f = calloc(1, sizeof *f);
  char *p = strdup(path);
  if (!f || !p) {
    free(f);
    free(p);
    return MF_ERR(MAYFLY_ENOMEM, "%s: out of memory", path);
  }
  /* Truncating a file whose name is durable keeps the name durable (only its bytes go). */
  int existed = fs->base->file_exists(fs->base, path);
  int rc = enter(fs, ENV_FAULT_CREATE, 1, path);
  if (rc == MAYFLY_OK) rc = fs->base->new_writable(fs->base, path, &f->base);
  if (rc != MAYFLY_OK) {
    free(f);
    free(p);
    return rc;
  }
  f->fs = fs;
  f->path = p;
  pthread_mutex_lock(&fs->mu);
  fault_track *old = track_find(fs, path);
  int durable_name = old ? !old->undurable : existed;
  fault_track *t = track_add(fs, path);
  if (t) t->undurable = !durable_name;
  pthread_mutex_unlock(&fs->mu);
  *out = (mf_wfile *)f;
  return MAYFLY_OK;
}

static int f_pread(mf_rfile *r, uint64_t offset, size_t n, void *buf, size_t *got) {
  fault_rfile *f = (fault_rfile *)r;
  int rc = enter(f->fs, ENV_FAULT_READ, 0, f->path);
  return rc ? rc : f->fs->base->pread(f->base, offset, n, buf, got);
}

static void f_close_readable(mf_rfile *r) {
  fault_rfile *f = (fault_rfile *)r;
  f->fs->base->close_readable(f->base);
  free(f->path);
  free(f);
}

static int f_open_readable(mf_env *env, const char *path, mf_rfile **out) {
  fault_state *fs = state_of(env);
  fault_rfile *f = calloc(1, sizeof *f);
  char *p = strdup(path);
  if (!f || !p) {
    free(f);
    free(p);
    return MF_ERR(MAYFLY_ENOMEM, "%s: out of memory", path);
  }
  int rc = enter(fs, ENV_FAULT_READ, 0, path);
  if (rc == MAYFLY_OK) rc = fs->base->open_readable(fs->base, path, &f->base);
  if (rc != MAYFLY_OK) {
    free(f);
    free(p);
    return rc;
  }
  f->fs = fs;
  f->path = p;
  *out = (mf_rfile *)f;
  return MAYFLY_OK;
}

/* ---- names and directories ---- */

static int f_remove_file(mf_env *env, const char *path) {
  fault_state *fs = state_of(env);
  int rc = enter(fs, ENV_FAULT_UNLINK, 1, path);
  if (rc == MAYFLY_OK) rc = fs->base->remove_file(fs->base, path);
  if (rc == MAYFLY_OK) {
    pthread_mutex_lock(&fs->mu);
    track_remove(fs, path);
    pthread_mutex_unlock(&fs->mu);
  }
  return rc;
}

static int f_rename_file(mf_env *env, const char *from, const char *to) {
  fault_state *fs = state_of(env);
  int rc = enter(fs, ENV_FAULT_RENAME, 1, from);
  if (rc == MAYFLY_OK) rc = fs->base->rename_file(fs->base, from, to);
  if (rc == MAYFLY_OK) {
    pthread_mutex_lock(&fs->mu);
    fault_track *src = track_find(fs, from);
    uint64_t synced = UINT64_MAX; /* an untracked source is durable as it is */
    if (src) synced = src->synced_len;
    track_remove(fs, from);
    fault_track *t = track_add(fs, to);
    if (t) {
      t->synced_len = synced;
      t->undurable = 1;
    }
    pthread_mutex_unlock(&fs->mu);
  }
  return rc;
}

static int f_make_dir(mf_env *env, const char *path) {
  fault_state *fs = state_of(env);
  int rc = enter(fs, -1, 1, path);
  return rc ? rc : fs->base->make_dir(fs->base, path);
}

static int f_remove_dir(mf_env *env, const char *path) {
  fault_state *fs = state_of(env);
  int rc = enter(fs, -1, 1, path);
  return rc ? rc : fs->base->remove_dir(fs->base, path);
}

static int f_sync_dir(mf_env *env, const char *path) {
  fault_state *fs = state_of(env);
  int rc = enter(fs, ENV_FAULT_DIR_SYNC, 1, path);
  if (rc == MAYFLY_OK) rc = fs->base->sync_dir(fs->base, path);
  if (rc == MAYFLY_OK) {
    pthread_mutex_lock(&fs->mu);
    for (size_t i = 0; i < fs->num_tracks; i++)
      if (in_dir(fs->tracks[i].path, path)) fs->tracks[i].undurable = 0;
    pthread_mutex_unlock(&fs->mu);
  }
  return rc;
}

/* ---- forwarded as they are ---- */

static int f_file_size(mf_env *env, const char *path, uint64_t *size) {
  return state_of(env)->base->file_size(state_of(env)->base, path, size);
}
static int f_file_exists(mf_env *env, const char *path) {
  return state_of(env)->base->file_exists(state_of(env)->base, path);
}
static int f_is_directory(mf_env *env, const char *path) {
  return state_of(env)->base->is_directory(state_of(env)->base, path);
}
static int f_list_dir(mf_env *env, const char *dir, char ***names, size_t *count) {
  return state_of(env)->base->list_dir(state_of(env)->base, dir, names, count);
}
static int f_lock_file(mf_env *env, const char *path, mf_lock **out) {
  return state_of(env)->base->lock_file(state_of(env)->base, path, out);
}
static void f_unlock_file(mf_env *env, mf_lock *lock) {
  state_of(env)->base->unlock_file(state_of(env)->base, lock);
}
static uint64_t f_now_micros(mf_env *env) {
  return state_of(env)->base->now_micros(state_of(env)->base);
}
static void f_sleep_micros(mf_env *env, uint64_t micros) {
  state_of(env)->base->sleep_micros(state_of(env)->base, micros);
}
static int f_thread_start(mf_env *env, void *(*fn)(void *), void *arg, mf_thread **out) {
  return state_of(env)->base->thread_start(state_of(env)->base, fn, arg, out);
}
static int f_thread_join(mf_env *env, mf_thread *t) {
  return state_of(env)->base->thread_join(state_of(env)->base, t);
}

static void f_destroy(mf_env *env) {
  fault_state *fs = state_of(env);
  for (size_t i = 0; i < fs->num_tracks; i++) free(fs->tracks[i].path);
  free(fs->tracks);
  pthread_mutex_destroy(&fs->mu);
  free(fs);
  free(env);
}

int env_fault_create(mf_env *base, mf_env **out) {
  mf_env *e = calloc(1, sizeof *e);
  fault_state *fs = calloc(1, sizeof *fs);
  if (!e || !fs) {
    free(e);
    free(fs);
    return MF_ERR(MAYFLY_ENOMEM, "env_fault_create: out of memory");
  }
  pthread_mutex_init(&fs->mu, NULL);
  fs->base = base;
  fs->garbage_seed = 0x6d6179666c79ull;
  e->size = sizeof *e;
  e->version = MF_ENV_VERSION;
  e->ctx = fs;
  e->new_writable = f_new_writable;
  e->append = f_append;
  e->flush = f_flush;
  e->sync = f_sync;
  e->close_writable = f_close_writable;
  e->open_readable = f_open_readable;
  e->pread = f_pread;
  e->close_readable = f_close_readable;
  e->file_size = f_file_size;
  e->file_exists = f_file_exists;
  e->is_directory = f_is_directory;
  e->list_dir = f_list_dir;
  e->remove_file = f_remove_file;
  e->rename_file = f_rename_file;
  e->make_dir = f_make_dir;
  e->remove_dir = f_remove_dir;
  e->sync_dir = f_sync_dir;
  e->lock_file = f_lock_file;
  e->unlock_file = f_unlock_file;
  e->now_micros = f_now_micros;
  e->sleep_micros = f_sleep_micros;
  e->thread_start = f_thread_start;
  e->thread_join = f_thread_join;
  e->destroy = f_destroy;
  e->map_readable = NULL; /* reads of a mapping would bypass the read faults */
  e->unmap = NULL;
  *out = e;
  return MAYFLY_OK;
}

/* ---- controls ---- */

void env_fault_set(mf_env *e, int kind, uint64_t nth, int persistent, int error_kind) {
  fault_state *fs = state_of(e);
  pthread_mutex_lock(&fs->mu);
  fs->armed = kind >= 0 && kind < ENV_FAULT_NUM_KINDS;
  fs->kind = kind;
  fs->nth = nth;
  fs->persistent = persistent;
  fs->error_kind = error_kind;
  fs->injected = 0;
  fs->first_path[0] = '\0';
  if (fs->armed) fs->count[kind] = 0;
  memset(fs->after, 0, sizeof fs->after);
  pthread_mutex_unlock(&fs->mu);
}

void env_fault_clear(mf_env *e) {
  fault_state *fs = state_of(e);
  pthread_mutex_lock(&fs->mu);
  fs->armed = 0;
  pthread_mutex_unlock(&fs->mu);
}

uint64_t env_fault_count(mf_env *e, int kind) {
  fault_state *fs = state_of(e);
  if (kind < 0 || kind >= ENV_FAULT_NUM_KINDS) return 0;
  pthread_mutex_lock(&fs->mu);
  uint64_t n = fs->count[kind];
  pthread_mutex_unlock(&fs->mu);
  return n;
}

uint64_t env_fault_count_after_fault(mf_env *e, int kind) {
  fault_state *fs = state_of(e);
  if (kind < 0 || kind >= ENV_FAULT_NUM_KINDS) return 0;
  pthread_mutex_lock(&fs->mu);
  uint64_t n = fs->after[kind];
  pthread_mutex_unlock(&fs->mu);
  return n;
}

uint64_t env_fault_injected(mf_env *e) {
  fault_state *fs = state_of(e);
  pthread_mutex_lock(&fs->mu);
  uint64_t n = fs->injected;
  pthread_mutex_unlock(&fs->mu);
  return n;
}

void env_fault_first_path(mf_env *e, char *buf, size_t n) {
  fault_state *fs = state_of(e);
  if (n == 0) return;
  pthread_mutex_lock(&fs->mu);
  snprintf(buf, n, "%s", fs->first_path);
  pthread_mutex_unlock(&fs->mu);
}

void env_fault_last_path(mf_env *e, int kind, char *buf, size_t n) {
  fault_state *fs = state_of(e);
  if (n == 0) return;
  buf[0] = '\0';
  if (kind < 0 || kind >= ENV_FAULT_NUM_KINDS) return;
  pthread_mutex_lock(&fs->mu);
  snprintf(buf, n, "%s", fs->last_path[kind]);
  pthread_mutex_unlock(&fs->mu);
}

void env_fault_freeze(mf_env *e, int on) {
  fault_state *fs = state_of(e);
  pthread_mutex_lock(&fs->mu);
  fs->frozen = on;
  pthread_mutex_unlock(&fs->mu);
}

/* ---- power loss ---- */

/* Rewrites path as its first keep bytes followed by garbage_len pseudo-random bytes, synced.
 * Works on the base env: the wrapper's own tracking must not see it. */
static int rewrite_file(mf_env *base, const char *path, uint64_t keep, uint64_t garbage_len,
                        uint64_t seed) {
  mf_buf data = {0};
  int rc = env_read_file(base, path, &data);
  if (rc == MAYFLY_ENOTFOUND) return MAYFLY_OK; /* removed since: nothing to cut */
  if (rc != MAYFLY_OK) return rc;
  if (keep > data.len) keep = data.len;
  data.len = (size_t)keep;
  mf_random rnd;
  mf_random_seed(&rnd, seed);
  for (uint64_t i = 0; i < garbage_len && rc == MAYFLY_OK; i++) {
    char c = (char)mf_random_next(&rnd);
    rc = mf_buf_append(&data, &c, 1);
  }
  mf_wfile *w = NULL;
  if (rc == MAYFLY_OK) rc = base->new_writable(base, path, &w);
  if (rc == MAYFLY_OK) {
    rc = base->append(w, data.data, data.len);
    if (rc == MAYFLY_OK) rc = base->sync(w, 1);
    int crc = base->close_writable(w);
    if (rc == MAYFLY_OK) rc = crc;
  }
  mf_buf_free(&data);
  return rc;
}

/* The mem env drops the tails itself; with garbage_tail, the lengths before the crash are
 * needed to know how much garbage each surviving file gets. */
static int power_loss_mem(fault_state *fs, int garbage_tail) {
  size_t n = 0;
  char **paths = NULL;
  uint64_t *lens = NULL;
  int rc = MAYFLY_OK;
  if (garbage_tail) {
    pthread_mutex_lock(&fs->mu);
    paths = calloc(fs->num_tracks + 1, sizeof *paths);
    lens = calloc(fs->num_tracks + 1, sizeof *lens);
    if (!paths || !lens) rc = MF_ERR(MAYFLY_ENOMEM, "power loss: out of memory");
    for (size_t i = 0; rc == MAYFLY_OK && i < fs->num_tracks; i++) {
      paths[n] = strdup(fs->tracks[i].path);
      if (!paths[n]) {
        rc = MF_ERR(MAYFLY_ENOMEM, "power loss: out of memory");
        break;
      }
      n++;
    }
    pthread_mutex_unlock(&fs->mu);
    for (size_t i = 0; rc == MAYFLY_OK && i < n; i++)
      if (fs->base->file_size(fs->base, paths[i], &lens[i]) != MAYFLY_OK) lens[i] = 0;
  }
  if (rc == MAYFLY_OK) rc = env_mem_crash(fs->base);
  for (size_t i = 0; rc == MAYFLY_OK && i < n; i++) {
    uint64_t now = 0;
    if (fs->base->file_size(fs->base, paths[i], &now) != MAYFLY_OK || now >= lens[i]) continue;
    rc = rewrite_file(fs->base, paths[i], now, lens[i] - now, fs->garbage_seed++);
  }
  for (size_t i = 0; i < n; i++) free(paths[i]);
  free(paths);
  free(lens);
  return rc;
}

int env_fault_power_loss(mf_env *e, int garbage_tail) {
  fault_state *fs = state_of(e);
  /* env_mem_crash refuses (MAYFLY_EINVAL) an env that is not in-memory: then the wrapper
   * plays the crash from its own tracking. */
  int rc = power_loss_mem(fs, garbage_tail);
  if (rc != MAYFLY_EINVAL) {
    pthread_mutex_lock(&fs->mu);
    for (size_t i = 0; i < fs->num_tracks; i++) free(fs->tracks[i].path);
    fs->num_tracks = 0;
    pthread_mutex_unlock(&fs->mu);
    return rc;
  }
  rc = MAYFLY_OK;
  /* Generic: take the tracks (after the crash everything left is durable), then cut. */
  pthread_mutex_lock(&fs->mu);
  fault_track *tracks = fs->tracks;
  size_t n = fs->num_tracks;
  fs->tracks = NULL;
  fs->num_tracks = 0;
  pthread_mutex_unlock(&fs->mu);
  for (size_t i = 0; i < n; i++) {
    fault_track *t = &tracks[i];
    int trc = MAYFLY_OK;
    uint64_t size = 0;
    if (t->undurable) {
      trc = fs->base->remove_file(fs->base, t->path);
      if (trc == MAYFLY_ENOTFOUND) trc = MAYFLY_OK;
    } else if (fs->base->file_size(fs->base, t->path, &size) == MAYFLY_OK &&
               size > t->synced_len) {
      trc = rewrite_file(fs->base, t->path, t->synced_len,
                         garbage_tail ? size - t->synced_len : 0, fs->garbage_seed++);
    }
    if (rc == MAYFLY_OK) rc = trc;
    free(t->path);
  }
  free(tracks);
  return rc;
}
