/* Corpus replay: a plain main() that feeds files to a fuzz target's LLVMFuzzerTestOneInput.
 *
 * This is what lets the fuzz targets run in CI without libFuzzer (and with gcc): CTest runs
 * `fuzz_replay_<target> tests/fuzz/corpus/<target>` and every checked-in input is executed
 * once, so a property the target checks (FUZZ_CHECK aborts) or a sanitizer report fails the
 * test. Arguments are files or directories (whose regular files are replayed in name order,
 * so a failure is reproducible); options beginning with '-' are ignored, which lets the same
 * command line as a libFuzzer binary be used. Exit status 0 when every input ran, 1 when an
 * argument could not be read or nothing ran, 2 on usage errors; a violated property aborts. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "replay: cannot open %s\n", path);
    return 1;
  }
  size_t cap = 4096, len = 0;
  uint8_t *buf = malloc(cap);
  for (;;) {
    if (!buf) break;
    if (len == cap) {
      uint8_t *bigger = realloc(buf, cap * 2);
      if (!bigger) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = bigger;
      cap *= 2;
    }
    size_t got = fread(buf + len, 1, cap - len, f);
    len += got;
    if (got == 0) break;
  }
  int failed = ferror(f) || !buf;
  fclose(f);
  if (failed) {
    fprintf(stderr, "replay: cannot read %s\n", path);
    free(buf);
    return 1;
  }
  /* An exact-size copy, so ASan catches a target reading one byte past the input. */
  uint8_t *exact = malloc(len ? len : 1);
  if (!exact) {
    free(buf);
    return 1;
  }
  memcpy(exact, buf, len);
  free(buf);
  LLVMFuzzerTestOneInput(exact, len);
  free(exact);
  return 0;
}

static int compare_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays every regular file directly inside dir; *count gets how many ran. */
static int run_dir(const char *dir, size_t *count) {
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "replay: cannot open directory %s\n", dir);
    return 1;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  int rc = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      char **bigger = realloc(names, cap * sizeof *names);
      if (!bigger) {
        rc = 1;
        break;
      }
      names = bigger;
    }
    if (!(names[n] = strdup(e->d_name))) {
      rc = 1;
      break;
    }
    n++;
  }
  closedir(d);
  if (n) qsort(names, n, sizeof *names, compare_names);
  for (size_t i = 0; i < n; i++) {
    size_t plen = strlen(dir) + strlen(names[i]) + 2;
    char *path = malloc(plen);
    struct stat st;
    if (!path) {
      rc = 1;
    } else {
      snprintf(path, plen, "%s/%s", dir, names[i]);
      if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        if (run_file(path))
          rc = 1;
        else
          (*count)++;
      }
    }
    free(path);
    free(names[i]);
  }
  free(names);
  return rc;
}

int main(int argc, char **argv) {
  size_t count = 0;
  int rc = 0, inputs = 0;
  for (int i = 1; i < argc; i++) {
    if (argv[i][0] == '-') continue;
    inputs++;
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      fprintf(stderr, "replay: %s does not exist\n", argv[i]);
      rc = 1;
    } else if (S_ISDIR(st.st_mode)) {
      rc |= run_dir(argv[i], &count);
    } else if (run_file(argv[i])) {
      rc = 1;
    } else {
      count++;
    }
  }
  if (!inputs) {
    fprintf(stderr, "usage: %s <corpus dir or input file>...\n", argv[0]);
    return 2;
  }
  printf("replay: %zu inputs ran%s\n", count, rc ? " (some could not be read)" : "");
  if (count == 0) {
    fprintf(stderr, "replay: no inputs found: an empty corpus tests nothing\n");
    rc = 1;
  }
  return rc;
}
