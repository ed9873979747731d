#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char tls_message[1024];
static _Thread_local const void *tls_owner;

int mf_error(int code, const char *file, int line, const char *fmt, ...) {
  const char *base = strrchr(file, '/');
  base = base ? base + 1 : file;
  int n = snprintf(tls_message, sizeof tls_message, "%s:%d: ", base, line);
  if (n < 0 || (size_t)n >= sizeof tls_message) n = 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tls_message + n, sizeof tls_message - (size_t)n, fmt, ap);
  va_end(ap);
  return code;
}

int mf_error_restore(int code, const char *message) {
  if (message != tls_message) snprintf(tls_message, sizeof tls_message, "%s", message);
  return code;
}

const char *mf_error_message(void) { return tls_message; }
void mf_error_clear(void) { tls_message[0] = '\0'; }
void mf_error_set_owner(const void *handle) { tls_owner = handle; }
const void *mf_error_owner(void) { return tls_owner; }
