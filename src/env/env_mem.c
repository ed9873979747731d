/* The in-memory env: a small file system in RAM for tests, which can simulate a crash.
 *
 * Model. Files are inodes (struct mem_file): the bytes written so far plus synced_len, how
 * many of them a sync made durable. Names map to inodes in two tables:
 *   live    - what the program sees now;
 *   durable - what the disk would show after a power loss.
 * Creating, renaming or removing a name changes only live. sync_dir(d) copies live's entries
 * whose parent is d into durable (dropping durable's old entries under d), which is exactly
 * the guarantee fsync of a directory gives. env_mem_crash truncates every inode to synced_len
 * and replaces live with durable; so a file created and synced but whose directory was never
 * synced vanishes, and a rename not followed by sync_dir is undone.
 *
 * Lifetime. An inode is reference-counted: one reference per live entry, per durable entry
 * and per open handle, all under fs->mu. A handle therefore keeps working after its name is
 * removed, replaced or crashed away, just as an open descriptor does; after a crash it sees
 * the truncated bytes. Every inode is also on fs->inodes so a crash can reach the ones only
 * handles know about, and destroy can free them all.
 *
 * Simplifications, on purpose: directories are a set of names made by make_dir plus every
 * prefix of a file path (a file may be created in a directory never made), and they survive
 * crashes. new_writable on an existing name truncates that same inode (synced_len becomes 0),
 * as O_TRUNC does. Locks are not released by a crash: the holder still owns its mf_lock and
 * must unlock it. flush is a no-op: appends go straight to the inode. Paths are normalized
 * ("a//b/./c/" is "a/b/c") but ".." is not resolved.
 *
 * Threads and the clock are the real ones, borrowed from env_posix(). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "env/env.h"
#include "mayfly.h"
#include "util/error.h"
#include "util/slice.h"

typedef struct mem_file {
  size_t refs;
  mf_buf data;
  size_t synced_len;
  struct mem_file *prev, *next; /* fs->inodes */
} mem_file;

typedef struct mem_entry {
  char *path; /* normalized, owned */
  mem_file *file;
} mem_entry;

typedef struct mem_table {
  mem_entry *v;
  size_t n, cap;
} mem_table;

typedef struct mem_lock_entry mem_lock_entry;

typedef struct mem_fs {
  pthread_mutex_t mu; /* guards everything below and the contents of every mem_file */
  mem_table live;
  mem_table durable;
  char **dirs; /* made by make_dir, normalized, owned */
  size_t ndirs, dirs_cap;
  mf_lock *locks; /* held locks */
  mem_file *inodes;
} mem_fs;

struct mf_wfile {
  mem_fs *fs;
  mem_file *file;
};

struct mf_rfile {
  mem_fs *fs;
  mem_file *file;
};

struct mf_lock {
  char *path; /* normalized, owned */
  mf_lock *next;
};

static mem_fs *fs_of(mf_env *env) { return env->ctx; }

#define OOM(what) MF_ERR(MAYFLY_ENOMEM, "mem env: out of memory for %s", (what))

/* ---- paths ---- */

/* Collapses repeated slashes, drops "." components and a trailing slash. "" and "." become
 * ".", "/" stays "/". Returns a malloc'd string or NULL on out of memory. */
static char *norm_path(const char *in) {
  size_t len = strlen(in);
  char *out = malloc(len + 2);
  if (!out) return NULL;
  size_t o = 0;
  int absolute = in[0] == '/';
  if (absolute) out[o++] = '/';
  const char *p = in;
  while (*p) {
    while (*p == '/') p++;
    const char *start = p;
    while (*p && *p != '/') p++;
    size_t clen = (size_t)(p - start);
    if (clen == 0 || (clen == 1 && start[0] == '.')) continue;
    if (o > (size_t)absolute) out[o++] = '/';
    memcpy(out + o, start, clen);
    o += clen;
  }
  if (o == 0) out[o++] = '.';
  out[o] = '\0';
  return out;
}

/* If path lies somewhere below dir (both normalized), the part of path after dir; else NULL. */
static const char *below(const char *path, const char *dir) {
  if (strcmp(dir, ".") == 0) return (path[0] == '/' || strcmp(path, ".") == 0) ? NULL : path;
  if (strcmp(dir, "/") == 0) return (path[0] == '/' && path[1]) ? path + 1 : NULL;
  size_t len = strlen(dir);
  if (strncmp(path, dir, len) == 0 && path[len] == '/') return path + len + 1;
  return NULL;
}

static int is_child(const char *path, const char *dir) {
  const char *rest = below(path, dir);
  return rest && !strchr(rest, '/');
}

/* ---- inodes and name tables. REQUIRES: fs->mu held, for all of them ---- */

static mem_file *inode_new(mem_fs *fs) {
  mem_file *f = calloc(1, sizeof *f);
  if (!f) return NULL;
  f->next = fs->inodes;
  if (fs->inodes) fs->inodes->prev = f;
  fs->inodes = f;
  return f;
}

static void inode_unref(mem_fs *fs, mem_file *f) {
  if (--f->refs > 0) return;
  if (f->prev) f->prev->next = f->next;
  else fs->inodes = f->next;
  if (f->next) f->next->prev = f->prev;
  mf_buf_free(&f->data);
  free(f);
}

static mem_entry *table_find(mem_table *t, const char *path) {
  for (size_t i = 0; i < t->n; i++)
    if (strcmp(t->v[i].path, path) == 0) return &t->v[i];
  return NULL;
}

/* Points path at file, replacing any previous inode under that name. */
static int table_set(mem_fs *fs, mem_table *t, const char *path, mem_file *file) {
  mem_entry *e = table_find(t, path);
  if (e) {
    file->refs++;
    inode_unref(fs, e->file);
    e->file = file;
    return MAYFLY_OK;
  }
  if (t->n == t->cap) {
    size_t cap = t->cap ? 2 * t->cap : 16;
    mem_entry *v = realloc(t->v, cap * sizeof *v);
    if (!v) return OOM(path);
    t->v = v;
    t->cap = cap;
  }
  char *copy = strdup(path);
  if (!copy) return OOM(path);
  t->v[t->n].path = copy;
  t->v[t->n].file = file;
  t->n++;
  file->refs++;
  return MAYFLY_OK;
}

static void table_remove(mem_fs *fs, mem_table *t, mem_entry *e) {
  inode_unref(fs, e->file);
  free(e->path);
  *e = t->v[--t->n];
}

static void table_clear(mem_fs *fs, mem_table *t) {
  while (t->n > 0) table_remove(fs, t, &t->v[t->n - 1]);
}

static int dir_listed(mem_fs *fs, const char *path) {
  for (size_t i = 0; i < fs->ndirs; i++)
    if (strcmp(fs->dirs[i], path) == 0) return 1;
  return 0;
}

/* A directory is "." or "/", one made by make_dir, or any prefix of a file or directory. */
static int dir_exists(mem_fs *fs, const char *path) {
  if (strcmp(path, ".") == 0 || strcmp(path, "/") == 0 || dir_listed(fs, path)) return 1;
  for (size_t i = 0; i < fs->live.n; i++)
    if (below(fs->live.v[i].path, path)) return 1;
  for (size_t i = 0; i < fs->ndirs; i++)
    if (below(fs->dirs[i], path)) return 1;
  return 0;
}

/* Normalizes path into *np (malloc'd) and takes fs->mu; leave() undoes both. */
static int enter(mem_fs *fs, const char *path, char **np) {
  *np = norm_path(path);
  if (!*np) return OOM(path);
  pthread_mutex_lock(&fs->mu);
  return MAYFLY_OK;
}

static void leave(mem_fs *fs, char *np) {
  pthread_mutex_unlock(&fs->mu);
  free(np);
}

/* ---- files ---- */

/* The inode named np in live, creating an empty one if there is none.
 * REQUIRES: fs->mu held. */
static int create_inode(mem_fs *fs, const char *np, mem_file **out) {
  mem_file *f = inode_new(fs);
  if (!f) return OOM(np);
  int rc = table_set(fs, &fs->live, np, f);
  if (rc) {
    f->refs = 1;
    inode_unref(fs, f);
    return rc;
  }
  *out = f;
  return MAYFLY_OK;
}

static int mem_new_writable(mf_env *env, const char *path, mf_wfile **out) {
  mem_fs *fs = fs_of(env);
  *out = NULL;
  mf_wfile *w = malloc(sizeof *w);
  if (!w) return OOM(path);
  char *np;
  int rc = enter(fs, path, &np);
  if (rc) {
    free(w);
    return rc;
  }
  mem_entry *e = table_find(&fs->live, np);
  mem_file *f = NULL;
  if (e) {
    f = e->file;
    f->data.len = 0; /* O_TRUNC: the same inode, now empty */
    f->synced_len = 0;
  } else if (dir_exists(fs, np)) {
    rc = MF_ERR(MAYFLY_EIO, "mem env: open for writing %s: is a directory", path);
  } else {
    rc = create_inode(fs, np, &f);
  }
  if (rc == MAYFLY_OK) {
    f->refs++;
    w->fs = fs;
    w->file = f;
    *out = w;
  } else {
    free(w);
  }
  leave(fs, np);
  return rc;
}

static int mem_append(mf_wfile *w, const void *data, size_t n) {
  pthread_mutex_lock(&w->fs->mu);
  int rc = mf_buf_append(&w->file->data, data, n);
  size_t len = w->file->data.len;
  pthread_mutex_unlock(&w->fs->mu);
  if (rc) return MF_ERR(rc, "mem env: append of %zu bytes at offset %zu", n, len);
  return MAYFLY_OK;
}

static int mem_flush(mf_wfile *w) { return MAYFLY_OK; }

static int mem_sync(mf_wfile *w, int full) {
  pthread_mutex_lock(&w->fs->mu);
  w->file->synced_len = w->file->data.len;
  pthread_mutex_unlock(&w->fs->mu);
  return MAYFLY_OK;
}

static int mem_close_writable(mf_wfile *w) {
  pthread_mutex_lock(&w->fs->mu);
  inode_unref(w->fs, w->file);
  pthread_mutex_unlock(&w->fs->mu);
  free(w);
  return MAYFLY_OK;
}

static int mem_open_readable(mf_env *env, const char *path, mf_rfile **out) {
  mem_fs *fs = fs_of(env);
  *out = NULL;
  mf_rfile *r = malloc(sizeof *r);
  if (!r) return OOM(path);
  char *np;
  int rc = enter(fs, path, &np);
  if (rc) {
    free(r);
    return rc;
  }
  mem_entry *e = table_find(&fs->live, np);
  if (e) {
    e->file->refs++;
    r->fs = fs;
    r->file = e->file;
    *out = r;
  } else {
    rc = MF_ERR(MAYFLY_ENOTFOUND, "mem env: open for reading %s: no such file", path);
    free(r);
  }
  leave(fs, np);
  return rc;
}

static int mem_pread(mf_rfile *r, uint64_t offset, size_t n, void *buf, size_t *got) {
  pthread_mutex_lock(&r->fs->mu);
  size_t len = r->file->data.len;
  size_t avail = offset < len ? len - (size_t)offset : 0;
  size_t take = n < avail ? n : avail;
  if (take) memcpy(buf, r->file->data.data + offset, take);
  pthread_mutex_unlock(&r->fs->mu);
  *got = take;
  return MAYFLY_OK;
}

static void mem_close_readable(mf_rfile *r) {
  if (!r) return;
  pthread_mutex_lock(&r->fs->mu);
  inode_unref(r->fs, r->file);
  pthread_mutex_unlock(&r->fs->mu);
  free(r);
}

/* ---- names and directories ---- */

static int mem_file_size(mf_env *env, const char *path, uint64_t *size) {
  mem_fs *fs = fs_of(env);
  *size = 0;
  char *np;
  int rc = enter(fs, path, &np);
  if (rc) return rc;
  mem_entry *e = table_find(&fs->live, np);
  if (e) *size = e->file->data.len;
  else rc = MF_ERR(MAYFLY_ENOTFOUND, "mem env: size of %s: no such file", path);
  leave(fs, np);
  return rc;
}

static int mem_file_exists(mf_env *env, const char *path) {
  mem_fs *fs = fs_of(env);
  char *np;
  if (enter(fs, path, &np)) return 0;
  int exists = table_find(&fs->live, np) || dir_exists(fs, np);
  leave(fs, np);
  return exists;
}

/* REQUIRES: fs->mu held. */
static int is_dir_locked(mem_fs *fs, const char *np) {
  return !table_find(&fs->live, np) && dir_exists(fs, np);
}

static int mem_is_directory(mf_env *env, const char *path) {
  mem_fs *fs = fs_of(env);
  char *np;
  if (enter(fs, path, &np)) return 0;
  int is_dir = is_dir_locked(fs, np);
  leave(fs, np);
  return is_dir;
}

/* Adds the first component of rest to *names unless it is there already. */
static int add_name(char ***names, size_t *count, size_t *cap, const char *rest) {
  size_t len = strcspn(rest, "/");
  for (size_t i = 0; i < *count; i++)
    if (strlen((*names)[i]) == len && memcmp((*names)[i], rest, len) == 0) return MAYFLY_OK;
  if (*count == *cap) {
    size_t new_cap = *cap ? 2 * *cap : 16;
    char **grown = realloc(*names, new_cap * sizeof *grown);
    if (!grown) return OOM("directory listing");
    *names = grown;
    *cap = new_cap;
  }
  char *name = strndup(rest, len);
  if (!name) return OOM("directory listing");
  (*names)[(*count)++] = name;
  return MAYFLY_OK;
}

static int mem_list_dir(mf_env *env, const char *dir, char ***names, size_t *count) {
  mem_fs *fs = fs_of(env);
  *names = NULL;
  *count = 0;
  char *np;
  int rc = enter(fs, dir, &np);
  if (rc) return rc;
  char **list = NULL;
  size_t n = 0, cap = 0;
  if (!is_dir_locked(fs, np))
    rc = MF_ERR(MAYFLY_ENOTFOUND, "mem env: list %s: no such directory", dir);
  for (size_t i = 0; i < fs->live.n && rc == MAYFLY_OK; i++) {
    const char *rest = below(fs->live.v[i].path, np);
    if (rest) rc = add_name(&list, &n, &cap, rest);
  }
  for (size_t i = 0; i < fs->ndirs && rc == MAYFLY_OK; i++) {
    const char *rest = below(fs->dirs[i], np);
    if (rest) rc = add_name(&list, &n, &cap, rest);
  }
  leave(fs, np);
  if (rc) {
    env_free_names(list, n);
    return rc;
  }
  *names = list;
  *count = n;
  return MAYFLY_OK;
}

static int mem_remove_file(mf_env *env, const char *path) {
  mem_fs *fs = fs_of(env);
  char *np;
  int rc = enter(fs, path, &np);
  if (rc) return rc;
  mem_entry *e = table_find(&fs->live, np);
  if (e) table_remove(fs, &fs->live, e);
  else rc = MF_ERR(MAYFLY_ENOTFOUND, "mem env: remove %s: no such file", path);
  leave(fs, np);
  return rc;
}

static int mem_rename_file(mf_env *env, const char *from, const char *to) {
  mem_fs *fs = fs_of(env);
  char *nto = norm_path(to);
  if (!nto) return OOM(to);
  char *nfrom;
  int rc = enter(fs, from, &nfrom);
  if (rc) {
    free(nto);
    return rc;
  }
  mem_entry *e = table_find(&fs->live, nfrom);
  if (!e) {
    rc = MF_ERR(MAYFLY_ENOTFOUND, "mem env: rename %s to %s: no such file", from, to);
  } else if (strcmp(nfrom, nto) == 0) {
    /* rename(2) of a name onto itself does nothing */
  } else if (is_dir_locked(fs, nto)) {
    rc = MF_ERR(MAYFLY_EIO, "mem env: rename %s to %s: target is a directory", from, to);
  } else {
    mem_file *f = e->file;
    f->refs++; /* keeps f alive between the two table changes */
    rc = table_set(fs, &fs->live, nto, f);
    /* table_set may have moved the entries: look the old name up again */
    if (rc == MAYFLY_OK) table_remove(fs, &fs->live, table_find(&fs->live, nfrom));
    inode_unref(fs, f);
  }
  leave(fs, nfrom);
  free(nto);
  return rc;
}

/* REQUIRES: fs->mu held. */
static int add_dir(mem_fs *fs, const char *np) {
  if (fs->ndirs == fs->dirs_cap) {
    size_t cap = fs->dirs_cap ? 2 * fs->dirs_cap : 8;
    char **grown = realloc(fs->dirs, cap * sizeof *grown);
    if (!grown) return OOM(np);
    fs->dirs = grown;
    fs->dirs_cap = cap;
  }
  char *copy = strdup(np);
  if (!copy) return OOM(np);
  fs->dirs[fs->ndirs++] = copy;
  return MAYFLY_OK;
}

static int mem_make_dir(mf_env *env, const char *path) {
  mem_fs *fs = fs_of(env);
  char *np;
  int rc = enter(fs, path, &np);
  if (rc) return rc;
  if (table_find(&fs->live, np))
    rc = MF_ERR(MAYFLY_EIO, "mem env: mkdir %s: exists and is not a directory", path);
  else if (!dir_listed(fs, np))
    rc = add_dir(fs, np);
  leave(fs, np);
  return rc;
}

static int mem_remove_dir(mf_env *env, const char *path) {
  mem_fs *fs = fs_of(env);
  char *np;
  int rc = enter(fs, path, &np);
  if (rc) return rc;
  int empty = 1;
  for (size_t i = 0; i < fs->live.n; i++) empty &= !below(fs->live.v[i].path, np);
  for (size_t i = 0; i < fs->ndirs; i++) empty &= !below(fs->dirs[i], np);
  if (!is_dir_locked(fs, np)) {
    rc = MF_ERR(MAYFLY_ENOTFOUND, "mem env: rmdir %s: no such directory", path);
  } else if (!empty) {
    rc = MF_ERR(MAYFLY_EIO, "mem env: rmdir %s: directory not empty", path);
  } else {
    for (size_t i = 0; i < fs->ndirs; i++) {
      if (strcmp(fs->dirs[i], np) == 0) {
        free(fs->dirs[i]);
        fs->dirs[i] = fs->dirs[--fs->ndirs];
        break;
      }
    }
  }
  leave(fs, np);
  return rc;
}

/* Makes durable exactly the names live has directly in dir now. */
static int mem_sync_dir(mf_env *env, const char *path) {
  mem_fs *fs = fs_of(env);
  char *np;
  int rc = enter(fs, path, &np);
  if (rc) return rc;
  if (!is_dir_locked(fs, np)) {
    rc = MF_ERR(MAYFLY_EIO, "mem env: sync directory %s: no such directory", path);
  } else {
    for (size_t i = fs->durable.n; i-- > 0;)
      if (is_child(fs->durable.v[i].path, np)) table_remove(fs, &fs->durable, &fs->durable.v[i]);
    for (size_t i = 0; i < fs->live.n && rc == MAYFLY_OK; i++)
      if (is_child(fs->live.v[i].path, np))
        rc = table_set(fs, &fs->durable, fs->live.v[i].path, fs->live.v[i].file);
  }
  leave(fs, np);
  return rc;
}

/* ---- locks ---- */

static int mem_lock_file(mf_env *env, const char *path, mf_lock **out) {
  mem_fs *fs = fs_of(env);
  *out = NULL;
  mf_lock *lock = malloc(sizeof *lock);
  char *np;
  if (!lock) return OOM(path);
  int rc = enter(fs, path, &np);
  if (rc) {
    free(lock);
    return rc;
  }
  for (mf_lock *l = fs->locks; l && rc == MAYFLY_OK; l = l->next)
    if (strcmp(l->path, np) == 0) rc = MF_ERR(MAYFLY_EBUSY, "mem env: lock %s: already held", path);
  /* Like O_CREAT on the posix lock file: the lock file appears in the directory. */
  mem_file *created;
  if (rc == MAYFLY_OK && !table_find(&fs->live, np)) rc = create_inode(fs, np, &created);
  if (rc == MAYFLY_OK) {
    lock->path = np; /* the lock owns the normalized path from here on */
    lock->next = fs->locks;
    fs->locks = lock;
    *out = lock;
    pthread_mutex_unlock(&fs->mu);
    return MAYFLY_OK;
  }
  leave(fs, np);
  free(lock);
  return rc;
}

static void mem_unlock_file(mf_env *env, mf_lock *lock) {
  if (!lock) return;
  mem_fs *fs = fs_of(env);
  pthread_mutex_lock(&fs->mu);
  for (mf_lock **p = &fs->locks; *p; p = &(*p)->next) {
    if (*p == lock) {
      *p = lock->next;
      break;
    }
  }
  pthread_mutex_unlock(&fs->mu);
  free(lock->path);
  free(lock);
}

/* ---- life of the env ---- */

/* REQUIRES: no handle of this env is still open (they point into it). Locks still held are
 * freed with the env. */
static void mem_destroy(mf_env *env) {
  mem_fs *fs = fs_of(env);
  table_clear(fs, &fs->live);
  table_clear(fs, &fs->durable);
  while (fs->inodes) {
    mem_file *f = fs->inodes;
    fs->inodes = f->next;
    mf_buf_free(&f->data);
    free(f);
  }
  for (size_t i = 0; i < fs->ndirs; i++) free(fs->dirs[i]);
  while (fs->locks) {
    mf_lock *l = fs->locks;
    fs->locks = l->next;
    free(l->path);
    free(l);
  }
  free(fs->live.v);
  free(fs->durable.v);
  free(fs->dirs);
  pthread_mutex_destroy(&fs->mu);
  free(fs);
  free(env);
}

int env_mem_create(mf_env **out) {
  *out = NULL;
  mf_env *env = calloc(1, sizeof *env);
  mem_fs *fs = calloc(1, sizeof *fs);
  if (!env || !fs) {
    free(env);
    free(fs);
    return OOM("env");
  }
  pthread_mutex_init(&fs->mu, NULL);
  mf_env *os = env_posix();
  env->size = sizeof *env;
  env->version = MF_ENV_VERSION;
  env->ctx = fs;
  env->new_writable = mem_new_writable;
  env->append = mem_append;
  env->flush = mem_flush;
  env->sync = mem_sync;
  env->close_writable = mem_close_writable;
  env->open_readable = mem_open_readable;
  env->pread = mem_pread;
  env->close_readable = mem_close_readable;
  env->file_size = mem_file_size;
  env->file_exists = mem_file_exists;
  env->is_directory = mem_is_directory;
  env->list_dir = mem_list_dir;
  env->remove_file = mem_remove_file;
  env->rename_file = mem_rename_file;
  env->make_dir = mem_make_dir;
  env->remove_dir = mem_remove_dir;
  env->sync_dir = mem_sync_dir;
  env->lock_file = mem_lock_file;
  env->unlock_file = mem_unlock_file;
  env->now_micros = os->now_micros; /* these ignore their env argument */
  env->sleep_micros = os->sleep_micros;
  env->thread_start = os->thread_start;
  env->thread_join = os->thread_join;
  env->destroy = mem_destroy;
  *out = env;
  return MAYFLY_OK;
}

int env_mem_writeback(mf_env *env, const char *path) {
  if (env->destroy != mem_destroy)
    return MF_ERR(MAYFLY_EINVAL, "env_mem_writeback: not an in-memory env");
  mem_fs *fs = fs_of(env);
  char *np;
  int rc = enter(fs, path, &np);
  if (rc) return rc;
  mem_entry *e = table_find(&fs->live, np);
  if (!e) {
    rc = MF_ERR(MAYFLY_ENOTFOUND, "mem env: write back %s: no such file", path);
  } else {
    e->file->synced_len = e->file->data.len;
    rc = table_set(fs, &fs->durable, np, e->file);
  }
  leave(fs, np);
  return rc;
}

int env_mem_crash(mf_env *env) {
  if (env->destroy != mem_destroy)
    return MF_ERR(MAYFLY_EINVAL, "env_mem_crash: not an in-memory env");
  mem_fs *fs = fs_of(env);
  int rc = MAYFLY_OK;
  pthread_mutex_lock(&fs->mu);
  for (mem_file *f = fs->inodes; f; f = f->next) f->data.len = f->synced_len;
  /* live := durable. Build the new table first so an allocation failure changes nothing. */
  mem_table fresh = {NULL, 0, 0};
  for (size_t i = 0; i < fs->durable.n && rc == MAYFLY_OK; i++)
    rc = table_set(fs, &fresh, fs->durable.v[i].path, fs->durable.v[i].file);
  if (rc == MAYFLY_OK) {
    table_clear(fs, &fs->live);
    free(fs->live.v);
    fs->live = fresh;
  } else {
    table_clear(fs, &fresh);
    free(fresh.v);
  }
  pthread_mutex_unlock(&fs->mu);
  return rc;
}
