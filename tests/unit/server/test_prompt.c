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
  r.limits.timeout_ms = 10000;
  char *f = agent_run_feedback(&r, "program", 4000);
  assert_non_null(strstr(f, "The program failed: outcome timeout"));
  assert_non_null(strstr(f, "wall-time limit of 10 s"));
  assert_null(strstr(f, "signal 9")); /* the limit says why */
  assert_non_null(strstr(f, "line 3"));
  free(f);
}

static void memory_feedback_names_the_limit(void **state) {
  sbx_result r;
  memset(&r, 0, sizeof r);
  r.outcome = SBX_OOM;
  r.limit = SBX_LIMIT_MEMORY;
  r.signal = 9;
  r.exit_code = -1;
  r.limits.memory_mb = 512;
  r.err = r.out = "";
  sbx_diag d = {.line = 4, .column = -1, .message = "MemoryError"};
  r.diags = &d;
  r.ndiags = 1;
  char *f = agent_run_feedback(&r, "program", 4000);
  assert_non_null(strstr(f, "memory limit of 512 MiB"));
  assert_non_null(strstr(f, "It was at line 5: MemoryError"));
  free(f);
}

/* A refused connection's traceback: the user's frame and the final error
 * stay, the library frames become one line. */
static void tracebacks_are_condensed(void **state) {
  const char *tb = "Traceback (most recent call last):\n"
                   "  File \"/scratch/main.py\", line 4, in <module>\n"
                   "    urllib.request.urlopen(\"http://x\")\n"
                   "  File \"/usr/lib/python3.11/urllib/request.py\", line 216, in urlopen\n"
                   "    return opener.open(url, data, timeout)\n"
                   "           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
                   "  File \"/usr/lib/python3.11/socket.py\", line 836, in create_connection\n"
                   "    sock.connect(sa)\n"
                   "ConnectionRefusedError: [Errno 111] Connection refused\n";
  char *c = agent_condense_traceback(SBX_LANG_PYTHON, tb, strlen(tb), "main.py");
  assert_string_equal(c, "Traceback (most recent call last):\n"
                         "  File \"/scratch/main.py\", line 4, in <module>\n"
                         "    urllib.request.urlopen(\"http://x\")\n"
                         "  [2 frames in library code omitted, the last in /usr/lib/python3.11/socket.py]\n"
                         "ConnectionRefusedError: [Errno 111] Connection refused\n");
  free(c);
  const char *js = "Error: boom\n    at f (/scratch/main.js:3:9)\n    at Module._compile (node:internal/x:1:1)\n"
                   "    at node:internal/main:2:2\n";
  c = agent_condense_traceback(SBX_LANG_JAVASCRIPT, js, strlen(js), "main.js");
  assert_string_equal(c, "Error: boom\n    at f (/scratch/main.js:3:9)\n"
                         "    [2 frames in library code omitted, the last in node:internal/main:2:2]\n");
  free(c);
}

static void program_key_and_wanted_output(void **state) {
  char *a = agent_program_key("import os\n\nprint(1)   \n");
  char *b = agent_program_key("import os\nprint(1)\n\n");
  assert_string_equal(a, b);
  free(b);
  b = agent_program_key("import os\nprint(2)\n");
  assert_string_not_equal(a, b);
  free(a);
  free(b);
  assert_true(agent_question_wants_output("Print the first 10 primes"));
  assert_true(agent_question_wants_output("how many lines does data.csv have?"));
  assert_false(agent_question_wants_output("create the folder out/ and write hello to out/a.txt"));
  assert_false(agent_question_wants_output("reprint nothing")); /* not the start of a word */
}

static void modules_note_is_compact(void **state) {
  const char *mods[] = {"attr", "yaml", "requests"};
  char *n = agent_modules_note(mods, 3);
  assert_string_equal(n, "Third-party modules the environment has (nothing else beyond the standard library): "
                         "attr, yaml, requests.\n");
  free(n);
  n = agent_modules_note(NULL, 0);
  assert_non_null(strstr(n, "no third-party modules"));
  free(n);
  const char *many[400];
  for (int i = 0; i < 400; i++) many[i] = "averyveryverylongmodulename";
  n = agent_modules_note(many, 400);
  assert_true(strlen(n) < 1700);
  assert_non_null(strstr(n, " more."));
  free(n);
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
      cmocka_unit_test(memory_feedback_names_the_limit),
      cmocka_unit_test(tracebacks_are_condensed),
      cmocka_unit_test(program_key_and_wanted_output),
      cmocka_unit_test(modules_note_is_compact),
      cmocka_unit_test(check_feedback_shows_line_and_source),
      cmocka_unit_test(question_with_context),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
