/* The POSIX env: the only file in the engine that talks to the operating system.
 *
 * Writable files. Appends land in a 64 KiB user-space buffer so that the WAL and table
 * builders, which append many small records, make few write(2) calls. An append larger than
 * the buffer skips it (after the buffered bytes go out, so order is kept). flush() hands the
 * buffer to the kernel; only sync() makes it durable. write(2) may write less than asked or
 * be interrupted by a signal, so every write is a loop. Every WRITEBACK_STEP bytes handed to
 * the kernel, the file asks it to start writing them to disk without waiting
 * (sync_file_range SYNC_FILE_RANGE_WRITE; Linux only): a sync then waits for the last step
 * only, not for all the dirty pages of the file. That matters most at a memtable switch, where
 * the writer syncs the old WAL (up to a whole write buffer) before going on.
 *
 * Locks. Open file description locks (F_OFD_SETLK, Linux): they belong to the descriptor's
 * open file, so two opens of one file conflict even in one process, whatever paths reach it
 * (a symlink, a bind mount), and closing some other descriptor of the file keeps them. Classic
 * fcntl(F_SETLK) locks, the fallback on kernels without OFD locks, belong to the process: a
 * second F_SETLK from it succeeds and closing ANY descriptor of the file drops the lock. So a
 * process-wide list of held locks, keyed by the file's device and inode, refuses a second
 * lock_file of the same file in this process before the file is even opened. A forked child
 * holds none of its parent's locks: it closes its copies of their descriptors and starts
 * with an empty list (pthread_atfork).
 *
 * Mappings. map_readable mmaps a table file read-only (MAP_SHARED: the page cache's own
 * pages, no copy). A mapping costs address space and one of the kernel's map slots per
 * file, so at most MAX_MAPPED_FILES files are mapped at once, process-wide (every database
 * in the process shares the budget); beyond that map_readable answers MAYFLY_ENOTSUP and
 * the caller reads with pread. No madvise: the kernel's default read-around suits both the
 * point lookups and the sequential scans (iterators, compaction inputs) that share one
 * mapping, and MADV_RANDOM would turn a compaction over a cold file into one disk read per
 * page.
 *
 * Errors. ENOENT becomes MAYFLY_ENOTFOUND where "absent" is a meaningful answer (opening for
 * read, size, remove, rename source, list, remove_dir); ENOMEM becomes MAYFLY_ENOMEM; every
 * other errno is MAYFLY_EIO. Each message names the operation, the path and strerror. */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "env/env.h"
#include "mayfly.h"
#include "util/error.h"

#define WRITE_BUFFER_SIZE (64 * 1024)
/* Bytes a writable file hands to the kernel between two starts of background writeback. */
#define WRITEBACK_STEP (1024 * 1024)
/* Files mapped at once, process-wide. 1000 tables of the default 64 MiB are 64 GiB of
 * address space, nothing for a 64-bit process; a 32-bit one has no room, so it maps none. */
#define MAX_MAPPED_FILES (sizeof(void *) >= 8 ? 1000 : 0)

static int errno_code(int err, int missing_is_notfound) {
  if (err == ENOENT && missing_is_notfound) return MAYFLY_ENOTFOUND;
  if (err == ENOMEM) return MAYFLY_ENOMEM;
  return MAYFLY_EIO;
}

/* A macro, not a function, so MF_ERR records the line of the failing call. */
#define OS_ERR(err, missing_is_notfound, op, path) \
  MF_ERR(errno_code((err), (missing_is_notfound)), "%s %s: %s", (op), (path), strerror(err))
#define OOM(what) MF_ERR(MAYFLY_ENOMEM, "out of memory allocating %s", (what))

/* ---- writable files ---- */

struct mf_wfile {
  int fd;
  char *path;
  uint64_t written;  /* bytes handed to the kernel */
  uint64_t hinted;   /* bytes whose writeback has been started (WRITEBACK_STEP) */
  size_t buffered; /* bytes in buf not yet written */
  char buf[WRITE_BUFFER_SIZE];
};

struct mf_rfile {
  int fd;
  char *path;
};

static int write_all(int fd, const char *path, const char *data, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return OS_ERR(errno, 0, "write", path);
    }
    data += w;
    n -= (size_t)w;
  }
  return MAYFLY_OK;
}

static int posix_new_writable(mf_env *env, const char *path, mf_wfile **out) {
  *out = NULL;
  mf_wfile *f = malloc(sizeof *f);
  char *copy = strdup(path);
  if (!f || !copy) {
    free(f);
    free(copy);
    return OOM(path);
  }
  int fd;
  do {
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    int rc = OS_ERR(errno, 0, "open for writing", path);
    free(f);
    free(copy);
    return rc;
  }
  f->fd = fd;
  f->path = copy;
  f->written = f->hinted = 0;
  f->buffered = 0;
  *out = f;
  return MAYFLY_OK;
}

/* Starts writeback of what was written since the last start, once that reaches
 * WRITEBACK_STEP, without waiting for it: the sync that ends a file (or a WAL at a memtable
 * switch) then finds little left to write, instead of every dirty page at once. Only a hint:
 * where the call is missing or fails, sync does all the work as before. */
static void start_writeback(mf_wfile *f) {
  if (f->written - f->hinted < WRITEBACK_STEP) return;
#if defined(__linux__)
  (void)sync_file_range(f->fd, (off_t)f->hinted, (off_t)(f->written - f->hinted),
                        SYNC_FILE_RANGE_WRITE);
#endif
  f->hinted = f->written;
}

static int written_out(mf_wfile *f, const void *data, size_t n) {
  int rc = write_all(f->fd, f->path, data, n);
  if (rc == MAYFLY_OK) {
    f->written += n;
    start_writeback(f);
  }
  return rc;
}

static int posix_flush(mf_wfile *f) {
  if (f->buffered == 0) return MAYFLY_OK;
  int rc = written_out(f, f->buf, f->buffered);
  /* On error the buffered bytes are dropped: the file is in an unknown state anyway, and
   * callers treat a failed write as fatal for the file. */
  f->buffered = 0;
  return rc;
}

static int posix_append(mf_wfile *f, const void *data, size_t n) {
  const char *p = data;
  size_t room = WRITE_BUFFER_SIZE - f->buffered;
  size_t take = n < room ? n : room;
  memcpy(f->buf + f->buffered, p, take);
  f->buffered += take;
  p += take;
  n -= take;
  if (n == 0) return MAYFLY_OK;

  int rc = posix_flush(f);
  if (rc) return rc;
  if (n < WRITE_BUFFER_SIZE) {
    memcpy(f->buf, p, n);
    f->buffered = n;
    return MAYFLY_OK;
  }
  return written_out(f, p, n);
}

static int posix_sync(mf_wfile *f, int full) {
  int rc = posix_flush(f);
  if (rc) return rc;
  if ((full ? fsync(f->fd) : fdatasync(f->fd)) != 0)
    return OS_ERR(errno, 0, full ? "fsync" : "fdatasync", f->path);
  return MAYFLY_OK;
}

static int posix_close_writable(mf_wfile *f) {
  int rc = posix_flush(f);
  if (close(f->fd) != 0 && rc == MAYFLY_OK) rc = OS_ERR(errno, 0, "close", f->path);
  free(f->path);
  free(f);
  return rc;
}

/* ---- readable files ---- */

static int posix_open_readable(mf_env *env, const char *path, mf_rfile **out) {
  *out = NULL;
  mf_rfile *f = malloc(sizeof *f);
  char *copy = strdup(path);
  if (!f || !copy) {
    free(f);
    free(copy);
    return OOM(path);
  }
  int fd;
  do {
    fd = open(path, O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    int rc = OS_ERR(errno, 1, "open for reading", path);
    free(f);
    free(copy);
    return rc;
  }
  f->fd = fd;
  f->path = copy;
  *out = f;
  return MAYFLY_OK;
}

static int posix_pread(mf_rfile *f, uint64_t offset, size_t n, void *buf, size_t *got) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = pread(f->fd, (char *)buf + done, n - done, (off_t)(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      *got = done;
      return MF_ERR(errno_code(err, 0), "pread %s at offset %llu: %s", f->path,
                    (unsigned long long)(offset + done), strerror(err));
    }
    if (r == 0) break; /* end of file */
    done += (size_t)r;
  }
  *got = done;
  return MAYFLY_OK;
}

static void posix_close_readable(mf_rfile *f) {
  if (!f) return;
  close(f->fd);
  free(f->path);
  free(f);
}

/* ---- mappings ---- */

struct mf_map {
  void *addr;
  size_t len;
};

static atomic_int mapped_files; /* mappings alive in the process, <= MAX_MAPPED_FILES */

static int posix_map_readable(mf_env *env, mf_rfile *f, uint64_t size, const char **data,
                              mf_map **out) {
  *data = NULL;
  *out = NULL;
  if (size == 0 || size > SIZE_MAX)
    return MF_ERR(MAYFLY_ENOTSUP, "mmap %s: cannot map %llu bytes", f->path,
                  (unsigned long long)size);
  /* Take a slot first, so that concurrent callers never exceed the limit together. */
  if (atomic_fetch_add(&mapped_files, 1) >= (int)MAX_MAPPED_FILES) {
    atomic_fetch_sub(&mapped_files, 1);
    return MF_ERR(MAYFLY_ENOTSUP, "mmap %s: %d files already mapped", f->path,
                  (int)MAX_MAPPED_FILES);
  }
  /* Pages past the end of the file would raise SIGBUS when read: a file shorter than the
   * caller believes (truncated by damage) is left to pread, which reports the short read. */
  struct stat st;
  if (fstat(f->fd, &st) != 0 || (uint64_t)st.st_size < size) {
    atomic_fetch_sub(&mapped_files, 1);
    return MF_ERR(MAYFLY_ENOTSUP, "mmap %s: the file is shorter than %llu bytes", f->path,
                  (unsigned long long)size);
  }
  mf_map *m = malloc(sizeof *m);
  if (!m) {
    atomic_fetch_sub(&mapped_files, 1);
    return OOM("a mapping");
  }
  void *addr = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, f->fd, 0);
  if (addr == MAP_FAILED) {
    int rc = OS_ERR(errno, 0, "mmap", f->path);
    free(m);
    atomic_fetch_sub(&mapped_files, 1);
    return rc;
  }
  m->addr = addr;
  m->len = (size_t)size;
  *data = addr;
  *out = m;
  return MAYFLY_OK;
}

static void posix_unmap(mf_env *env, mf_map *m) {
  if (!m) return;
  munmap(m->addr, m->len);
  free(m);
  atomic_fetch_sub(&mapped_files, 1);
}

/* ---- names and directories ---- */

static int posix_file_size(mf_env *env, const char *path, uint64_t *size) {
  struct stat st;
  if (stat(path, &st) != 0) {
    *size = 0;
    return OS_ERR(errno, 1, "stat", path);
  }
  *size = (uint64_t)st.st_size;
  return MAYFLY_OK;
}

static int posix_file_exists(mf_env *env, const char *path) { return access(path, F_OK) == 0; }

static int posix_is_directory(mf_env *env, const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int posix_list_dir(mf_env *env, const char *dir, char ***names, size_t *count) {
  *names = NULL;
  *count = 0;
  DIR *d = opendir(dir);
  if (!d) return OS_ERR(errno, 1, "opendir", dir);
  char **list = NULL;
  size_t n = 0, cap = 0;
  int rc = MAYFLY_OK;
  for (;;) {
    errno = 0;
    struct dirent *e = readdir(d);
    if (!e) {
      if (errno != 0) rc = OS_ERR(errno, 0, "readdir", dir);
      break;
    }
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (n == cap) {
      size_t new_cap = cap ? cap * 2 : 16;
      char **grown = realloc(list, new_cap * sizeof *grown);
      if (!grown) {
        rc = OOM("directory listing");
        break;
      }
      list = grown;
      cap = new_cap;
    }
    list[n] = strdup(e->d_name);
    if (!list[n]) {
      rc = OOM("directory listing");
      break;
    }
    n++;
  }
  closedir(d);
  if (rc) {
    env_free_names(list, n);
    return rc;
  }
  *names = list;
  *count = n;
  return MAYFLY_OK;
}

static int posix_remove_file(mf_env *env, const char *path) {
  if (unlink(path) != 0) return OS_ERR(errno, 1, "unlink", path);
  return MAYFLY_OK;
}

static int posix_rename_file(mf_env *env, const char *from, const char *to) {
  if (rename(from, to) != 0) {
    int err = errno;
    return MF_ERR(errno_code(err, 1), "rename %s to %s: %s", from, to, strerror(err));
  }
  return MAYFLY_OK;
}

static int posix_make_dir(mf_env *env, const char *path) {
  if (mkdir(path, 0755) == 0) return MAYFLY_OK;
  int err = errno;
  if (err == EEXIST) {
    if (posix_is_directory(env, path)) return MAYFLY_OK;
    return MF_ERR(MAYFLY_EIO, "mkdir %s: exists and is not a directory", path);
  }
  return OS_ERR(err, 0, "mkdir", path);
}

static int posix_remove_dir(mf_env *env, const char *path) {
  if (rmdir(path) != 0) return OS_ERR(errno, 1, "rmdir", path);
  return MAYFLY_OK;
}

static int posix_sync_dir(mf_env *env, const char *path) {
  int fd;
  do {
    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return OS_ERR(errno, 0, "open directory", path);
  int rc = MAYFLY_OK;
  if (fsync(fd) != 0) rc = OS_ERR(errno, 0, "fsync directory", path);
  close(fd);
  return rc;
}

/* ---- locks ---- */

struct mf_lock {
  int fd;    /* -1 in a forked child, which holds none of its parent's locks */
  int ofd;   /* locked with F_OFD_SETLK (else F_SETLK, on kernels without OFD locks) */
  dev_t dev; /* the locked file's identity: one file reached by two paths is one lock */
  ino_t ino;
  struct mf_lock *next;
};

static pthread_mutex_t locks_mu = PTHREAD_MUTEX_INITIALIZER;
static struct mf_lock *locks_held; /* REQUIRES: locks_mu held to read or change */
static pthread_once_t locks_once = PTHREAD_ONCE_INIT;

static void locks_before_fork(void) { pthread_mutex_lock(&locks_mu); }
static void locks_after_fork_parent(void) { pthread_mutex_unlock(&locks_mu); }

/* The child of a fork holds none of its parent's locks, but has copies of their descriptors:
 * an OFD lock would live on through the copy after the parent released it, and the list
 * would refuse the child a database its parent has closed. The entries stay allocated
 * (the child's copy of an open database still points to its own), only emptied. */
static void locks_after_fork_child(void) {
  for (struct mf_lock *l = locks_held; l; l = l->next) {
    if (l->fd >= 0) close(l->fd);
    l->fd = -1;
  }
  locks_held = NULL;
  pthread_mutex_unlock(&locks_mu);
}

static void locks_register_fork(void) {
  pthread_atfork(locks_before_fork, locks_after_fork_parent, locks_after_fork_child);
}

static struct mf_lock *lock_held(dev_t dev, ino_t ino) {
  for (struct mf_lock *l = locks_held; l; l = l->next)
    if (l->dev == dev && l->ino == ino) return l;
  return NULL;
}

static int set_lock(struct mf_lock *lock, short type) {
  struct flock fl;
  memset(&fl, 0, sizeof fl); /* l_pid 0, as OFD locks require; the whole file */
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
#ifdef F_OFD_SETLK
  if (lock->ofd) {
    if (fcntl(lock->fd, F_OFD_SETLK, &fl) == 0) return 0;
    if (errno != EINVAL) return -1;
    lock->ofd = 0; /* a kernel before 3.15 */
  }
#endif
  return fcntl(lock->fd, F_SETLK, &fl);
}

static int posix_lock_file(mf_env *env, const char *path, mf_lock **out) {
  *out = NULL;
  pthread_once(&locks_once, locks_register_fork);
  mf_lock *lock = calloc(1, sizeof *lock);
  if (!lock) return OOM(path);
  lock->fd = -1;
  lock->ofd = 1;
  int rc = MAYFLY_OK;
  struct stat st;
  pthread_mutex_lock(&locks_mu);
  /* Checked before the file is opened: with F_SETLK, closing any descriptor of a locked file
   * releases the lock, so a refused open must not open and close it. */
  if (stat(path, &st) == 0 && lock_held(st.st_dev, st.st_ino)) {
    rc = MF_ERR(MAYFLY_EBUSY, "lock %s: already held by this process", path);
    goto done;
  }
  lock->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock->fd < 0) {
    rc = OS_ERR(errno, 0, "open lock file", path);
    goto done;
  }
  if (fstat(lock->fd, &st) != 0) {
    rc = OS_ERR(errno, 0, "fstat lock file", path);
    goto done;
  }
  lock->dev = st.st_dev;
  lock->ino = st.st_ino;
  if (set_lock(lock, F_WRLCK) != 0) {
    int err = errno;
    if (err == EAGAIN || err == EACCES)
      rc = MF_ERR(MAYFLY_EBUSY, "lock %s: held by another process", path);
    else
      rc = OS_ERR(err, 0, "fcntl lock", path);
    goto done;
  }
  lock->next = locks_held;
  locks_held = lock;
  *out = lock;
done:
  if (rc && lock->fd >= 0) close(lock->fd);
  pthread_mutex_unlock(&locks_mu);
  if (rc) free(lock);
  return rc;
}

static void posix_unlock_file(mf_env *env, mf_lock *lock) {
  if (!lock) return;
  pthread_mutex_lock(&locks_mu);
  for (mf_lock **p = &locks_held; *p; p = &(*p)->next) {
    if (*p == lock) {
      *p = lock->next;
      break;
    }
  }
  if (lock->fd >= 0) {
    set_lock(lock, F_UNLCK);
    close(lock->fd);
  }
  pthread_mutex_unlock(&locks_mu);
  free(lock);
}

/* ---- clock and threads ---- */

static uint64_t posix_now_micros(mf_env *env) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void posix_sleep_micros(mf_env *env, uint64_t micros) {
  struct timespec req = {(time_t)(micros / 1000000u), (long)(micros % 1000000u) * 1000L};
  struct timespec rem;
  while (nanosleep(&req, &rem) != 0 && errno == EINTR) req = rem;
}

struct mf_thread {
  pthread_t tid;
};

static int posix_thread_start(mf_env *env, void *(*fn)(void *), void *arg, mf_thread **out) {
  *out = NULL;
  mf_thread *t = malloc(sizeof *t);
  if (!t) return OOM("thread");
  int err = pthread_create(&t->tid, NULL, fn, arg);
  if (err != 0) {
    free(t);
    return MF_ERR(err == EAGAIN ? MAYFLY_ENOMEM : MAYFLY_EIO, "pthread_create: %s",
                  strerror(err));
  }
  *out = t;
  return MAYFLY_OK;
}

static int posix_thread_join(mf_env *env, mf_thread *t) {
  int err = pthread_join(t->tid, NULL);
  free(t);
  if (err != 0) return MF_ERR(MAYFLY_EIO, "pthread_join: %s", strerror(err));
  return MAYFLY_OK;
}

static mf_env posix_env = {
    .size = sizeof(mf_env),
    .version = MF_ENV_VERSION,
    .ctx = NULL,
    .new_writable = posix_new_writable,
    .append = posix_append,
    .flush = posix_flush,
    .sync = posix_sync,
    .close_writable = posix_close_writable,
    .open_readable = posix_open_readable,
    .pread = posix_pread,
    .close_readable = posix_close_readable,
    .file_size = posix_file_size,
    .file_exists = posix_file_exists,
    .is_directory = posix_is_directory,
    .list_dir = posix_list_dir,
    .remove_file = posix_remove_file,
    .rename_file = posix_rename_file,
    .make_dir = posix_make_dir,
    .remove_dir = posix_remove_dir,
    .sync_dir = posix_sync_dir,
    .lock_file = posix_lock_file,
    .unlock_file = posix_unlock_file,
    .now_micros = posix_now_micros,
    .sleep_micros = posix_sleep_micros,
    .thread_start = posix_thread_start,
    .thread_join = posix_thread_join,
    .destroy = NULL,
    .map_readable = posix_map_readable,
    .unmap = posix_unmap,
};

mf_env *env_posix(void) { return &posix_env; }
