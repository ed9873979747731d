/* mf_zalloc: a zeroed allocation for the short-lived objects of the read path (iterators,
 * created and destroyed for every seek). glibc's calloc bypasses the per-thread cache that
 * malloc uses, taking the arena's slower path each time; malloc plus memset does not. */
#ifndef MAYFLY_UTIL_ZALLOC_H
#define MAYFLY_UTIL_ZALLOC_H

#include <stdlib.h>
#include <string.h>

static inline void *mf_zalloc(size_t n) {
  void *p = malloc(n);
  if (p) memset(p, 0, n);
  return p;
}

#endif
