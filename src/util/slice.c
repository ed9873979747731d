#include "util/slice.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "mayfly.h"

int mf_buf_reserve(mf_buf *b, size_t extra) {
  if (b->len + extra <= b->cap) return MAYFLY_OK;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < b->len + extra) cap *= 2;
  char *p = realloc(b->data, cap);
  if (!p) return MAYFLY_ENOMEM;
  b->data = p;
  b->cap = cap;
  return MAYFLY_OK;
}

int mf_buf_reserve_exact(mf_buf *b, size_t extra) {
  if (b->len + extra <= b->cap) return MAYFLY_OK;
  if (extra > SIZE_MAX - b->len) return MAYFLY_ENOMEM;
  char *p = realloc(b->data, b->len + extra);
  if (!p) return MAYFLY_ENOMEM;
  b->data = p;
  b->cap = b->len + extra;
  return MAYFLY_OK;
}

int mf_buf_append(mf_buf *b, const void *data, size_t n) {
  if (n == 0) return MAYFLY_OK;
  int rc = mf_buf_reserve(b, n);
  if (rc) return rc;
  memcpy(b->data + b->len, data, n);
  b->len += n;
  return MAYFLY_OK;
}

int mf_buf_set(mf_buf *b, const void *data, size_t n) {
  b->len = 0;
  return mf_buf_append(b, data, n);
}

void mf_buf_free(mf_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

int mf_buf_appendf(mf_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return MAYFLY_EINVAL;
  int rc = mf_buf_reserve(b, (size_t)n + 1); /* +1: vsnprintf writes a NUL */
  if (rc) return rc;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return MAYFLY_OK;
}
