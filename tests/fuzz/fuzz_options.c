/* Fuzz target: mayfly_options_parse (include/mayfly.h, db/options_api.c) on arbitrary text.
 *
 * The spec string comes from users and from the OPTIONS file, and every value goes through
 * the one options table (db/options.c). Properties:
 *   - parse returns MAYFLY_OK, MAYFLY_EINVAL or MAYFLY_ENOMEM, and on failure leaves the
 *     options exactly as they were (all-or-nothing);
 *   - on success, options_to_text gives "name=value" lines that parse back (as one spec, lines
 *     joined with ';') into options whose text is identical: the canonical text is a fixed
 *     point, which is what the OPTIONS file relies on;
 *   - parsing the canonical text over the parsed options changes nothing;
 *   - options_validate and mayfly_options_set (the first "name=value" of the input) never
 *     crash and return a MAYFLY_* code.
 * The input is cut at its first NUL byte (the API takes a C string). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "db/options.h"
#include "fuzz_util.h"

static char *to_cstring(const uint8_t *data, size_t size) {
  size_t n = 0;
  while (n < size && data[n] != 0) n++;
  char *s = malloc(n + 1);
  if (s) {
    memcpy(s, data, n);
    s[n] = '\0';
  }
  return s;
}

/* options_to_text as one parseable spec: every '\n' becomes ';'. NULL when out of memory. */
static char *canonical_spec(const struct mayfly_options *o) {
  mf_buf text = MF_BUF_INIT;
  int rc = options_to_text(o, &text);
  if (!rc) rc = mf_buf_append(&text, "", 1);
  if (rc) {
    FUZZ_CHECK(FUZZ_OOM_OK(rc), "options_to_text failed: %d", rc);
    mf_buf_free(&text);
    return NULL;
  }
  for (size_t i = 0; i < text.len; i++)
    if (text.data[i] == '\n') text.data[i] = ';';
  return text.data;
}

/* Field-by-field equality through the canonical text (struct padding makes memcmp unsound);
 * env is the one field the text does not show. */
static int same_options(const struct mayfly_options *a, const struct mayfly_options *b) {
  char *ta = canonical_spec(a), *tb = canonical_spec(b);
  int same = !ta || !tb || strcmp(ta, tb) == 0; /* out of memory: cannot tell, assume same */
  free(ta);
  free(tb);
  return same && a->env == b->env;
}

static int known_code(int rc) { return rc <= MAYFLY_OK && rc >= MAYFLY_ECLOSED; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *spec = to_cstring(data, size);
  char *text1 = NULL, *text2 = NULL, *text3 = NULL;
  if (!spec) return 0;
  struct mayfly_options opt, before, fresh;
  options_init_defaults(&opt);
  before = opt;
  int rc = mayfly_options_parse(&opt, spec);
  FUZZ_CHECK(rc == MAYFLY_OK || rc == MAYFLY_EINVAL || rc == MAYFLY_ENOMEM,
             "mayfly_options_parse returned %d", rc);
  if (rc != MAYFLY_OK) {
    FUZZ_CHECK(same_options(&opt, &before), "a failed parse changed the options");
    goto single;
  }
  FUZZ_CHECK(known_code(options_validate(&opt)), "options_validate returned an unknown code");

  if (!(text1 = canonical_spec(&opt))) goto single;
  options_init_defaults(&fresh);
  rc = mayfly_options_parse(&fresh, text1);
  if (FUZZ_OOM_OK(rc)) goto single;
  FUZZ_CHECK(rc == MAYFLY_OK, "the canonical text does not parse back: %d\n  text: %s", rc,
             text1);
  if (!(text2 = canonical_spec(&fresh))) goto single;
  FUZZ_CHECK(strcmp(text1, text2) == 0, "canonical text changed on a round trip\n  %s\n  %s",
             text1, text2);

  rc = mayfly_options_parse(&opt, text1);
  if (FUZZ_OOM_OK(rc)) goto single;
  FUZZ_CHECK(rc == MAYFLY_OK, "the canonical text does not parse over its own options: %d", rc);
  if (!(text3 = canonical_spec(&opt))) goto single;
  FUZZ_CHECK(strcmp(text1, text3) == 0, "re-applying the canonical text changed the options");

single:
  /* The single-option entry point with the first "name=value" of the input. */
  {
    char *eq = strchr(spec, '=');
    if (eq) {
      *eq = '\0';
      char *semi = strchr(eq + 1, ';');
      if (semi) *semi = '\0';
      struct mayfly_options one;
      options_init_defaults(&one);
      before = one;
      rc = mayfly_options_set(&one, spec, eq + 1);
      FUZZ_CHECK(known_code(rc), "mayfly_options_set returned %d", rc);
      if (rc != MAYFLY_OK)
        FUZZ_CHECK(same_options(&one, &before), "a failed set changed the options");
      rc = options_set(&one, spec, eq + 1, 1);
      FUZZ_CHECK(known_code(rc), "options_set(runtime_only) returned %d", rc);
    }
  }
  free(text1);
  free(text2);
  free(text3);
  free(spec);
  return 0;
}
