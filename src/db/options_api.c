/* Public options functions (include/mayfly.h): thin wrappers over the options table in
 * db/options.c.
 *
 * These calls have no database handle, so they record their error detail with no owner
 * (mf_error_begin(0)); the detail is mayfly_errmsg(NULL)'s. */
#include <stdlib.h>
#include <string.h>

#include "db/options.h"
#include "mayfly.h"
#include "util/error.h"

/* *out receives a malloc'd options object holding the defaults; the caller owns it and frees
 * it with mayfly_options_destroy. */
MAYFLY_API int mayfly_options_create(mayfly_options **out) {
  mf_error_begin(0);
  if (!out) return MF_ERR(MAYFLY_EINVAL, "mayfly_options_create: NULL out");
  *out = NULL;
  mayfly_options *opt = malloc(sizeof *opt);
  if (!opt) return MF_ERR(MAYFLY_ENOMEM, "mayfly_options_create: out of memory");
  options_init_defaults(opt);
  *out = opt;
  return MAYFLY_OK;
}

/* NULL is a no-op. Databases opened with opt keep their own copy, so opt may be destroyed
 * right after mayfly_open. */
MAYFLY_API void mayfly_options_destroy(mayfly_options *opt) { free(opt); }

MAYFLY_API int mayfly_options_set(mayfly_options *opt, const char *name, const char *value) {
  mf_error_begin(0);
  return options_set(opt, name, value, 0);
}

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
    s[--n] = '\0';
  return s;
}

/* Applies "name=value;name=value" pairs in order. Blanks around names and values and empty
 * segments (";;", a trailing ';') are ignored. All-or-nothing: the pairs are applied to a
 * copy, so on any error opt is unchanged and the message names the failing pair. */
MAYFLY_API int mayfly_options_parse(mayfly_options *opt, const char *spec) {
  mf_error_begin(0);
  if (!opt || !spec)
    return MF_ERR(MAYFLY_EINVAL, "mayfly_options_parse: NULL %s", !opt ? "options" : "spec");
  char *copy = strdup(spec);
  if (!copy) return MF_ERR(MAYFLY_ENOMEM, "mayfly_options_parse: out of memory");
  mayfly_options staged = *opt;
  int rc = MAYFLY_OK;
  char *segment = copy;
  while (rc == MAYFLY_OK && segment) {
    char *next = strchr(segment, ';');
    if (next) *next++ = '\0';
    char *pair = trim(segment);
    if (*pair != '\0') {
      char *eq = strchr(pair, '=');
      if (!eq) {
        rc = MF_ERR(MAYFLY_EINVAL, "mayfly_options_parse: \"%.200s\" is not name=value", pair);
        break;
      }
      *eq = '\0';
      char *name = trim(pair), *value = trim(eq + 1);
      if (*name == '\0')
        rc = MF_ERR(MAYFLY_EINVAL, "mayfly_options_parse: \"=%.200s\" has no option name",
                    value);
      else
        rc = options_set(&staged, name, value, 0); /* its message names option and value */
    }
    segment = next;
  }
  free(copy);
  if (rc == MAYFLY_OK) *opt = staged;
  return rc;
}
