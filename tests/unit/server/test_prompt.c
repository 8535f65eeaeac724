/* Unit tests of the ask loop's words: failure feedback trimmed to a budget,
 * keeping the end of tracebacks, and the check feedback naming lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "prompt.h"

static void tail_keeps_the_end(void **state) {
  char text[5000];
  memset(text, 'a', sizeof text);
  memcpy(text + sizeof text - 20, "\nLAST LINE OF TRACE\n", 20);
  char *t = agent_tail(text, sizeof text, 300);
  assert_true(strlen(t) < 360);
  assert_non_null(strstr(t, "LAST LINE OF TRACE"));
  assert_non_null(strstr(t, "bytes cut"));
  free(t);
  t = agent_tail("short", 5, 300);
  assert_string_equal(t, "short");
  free(t);
}

static void run_feedback_names_outcome_limit_and_stderr(void **state) {
  sbx_result r;
  memset(&r, 0, sizeof r);
  r.outcome = SBX_TIMEOUT;
  r.limit = SBX_LIMIT_WALL;
  r.signal = 9;
  r.err = "Traceback (most recent call last):\n  File \"main.py\", line 3\nKeyboardInterrupt\n";
  r.err_len = strlen(r.err);
  char *f = agent_run_feedback(&r, "code execution", 4000);
  assert_non_null(strstr(f, "The code execution failed: outcome timeout"));
  assert_non_null(strstr(f, "wall limit"));
  assert_non_null(strstr(f, "signal 9"));
  assert_non_null(strstr(f, "line 3"));
  free(f);
}

static void check_feedback_shows_line_and_source(void **state) {
  char *msg = strdup("module 'numpyy' is not installed");
  chk_diag d = {.start = {.row = 1, .column = 7}, .end = {.row = 1, .column = 13}, .severity = CHK_SEV_ERROR,
                .code = "missing-module", .message = msg};
  chk_report rep = {.diags = &d, .ndiags = 1};
  char *f = agent_check_feedback(&rep, "import os\nimport numpyy\nprint(1)\n", 4000);
  assert_non_null(strstr(f, "line 2, column 8: module 'numpyy'"));
  assert_non_null(strstr(f, "    import numpyy"));
  free(f);
  free(msg);
}

static void question_with_context(void **state) {
  char *q = agent_question_prompt("fix it", "x = 1/0", "file:///a.py");
  assert_non_null(strstr(q, "fix it"));
  assert_non_null(strstr(q, "from file:///a.py"));
  assert_non_null(strstr(q, "```\nx = 1/0\n```"));
  free(q);
  char *s = agent_system_prompt("python", "DOCS HERE");
  assert_non_null(strstr(s, "expertise in python"));
  assert_non_null(strstr(s, "DOCS HERE"));
  free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(tail_keeps_the_end),
      cmocka_unit_test(run_feedback_names_outcome_limit_and_stderr),
      cmocka_unit_test(check_feedback_shows_line_and_source),
      cmocka_unit_test(question_with_context),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
