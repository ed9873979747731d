/* Prints docs/options.md, generated from the options table in src/db/options.c.
 * Usage (from the source directory): build/gen_options_doc > docs/options.md
 * tests/unit/test_options.c fails when the checked-in page differs from this output. */
#include <stdio.h>

#include "db/options.h"
#include "util/error.h"

int main(void) {
  if (options_write_markdown(stdout) != MAYFLY_OK) {
    fprintf(stderr, "gen_options_doc: %s\n", mf_error_message());
    return 1;
  }
  return 0;
}
