/* One checker for a whole cmocka group: `ctx`, made by setup (the group
 * fails when the grammars do not load) and freed by teardown. For the
 * check tests only. */
#ifndef CRUCIBLE_TESTS_CHECKER_FIXTURE_H
#define CRUCIBLE_TESTS_CHECKER_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

#include "check.h"

static chk_context *ctx;

static int setup(void **state) {
  (void)state;
  char *msg = NULL;
  ctx = chk_context_new(&msg);
  if (!ctx) fprintf(stderr, "chk_context_new: %s\n", msg ? msg : "?");
  free(msg);
  return ctx ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  chk_context_free(ctx);
  chk_shutdown();
  return 0;
}

#endif
