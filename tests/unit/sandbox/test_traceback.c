/* Unit tests: interpreter stderr → diagnostics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "traceback.h"

static int parse(sbx_lang lang, const char *text, const char *script, int off, sbx_diag *d, int max) {
  return sbx_traceback_parse(lang, text, strlen(text), script, off, d, max);
}

static void python_last_frame_in_script(void **state) {
  (void)state;
  const char *t = "out\nTraceback (most recent call last):\n"
                  "  File \"/sandbox/main.py\", line 6, in <module>\n    f()\n"
                  "  File \"/sandbox/main.py\", line 3, in f\n    return 1/0\n           ~^~\n"
                  "ZeroDivisionError: division by zero\n";
  sbx_diag d[4];
  assert_int_equal(parse(SBX_LANG_PYTHON, t, "main.py", 0, d, 4), 1);
  assert_int_equal(d[0].line, 2);
  assert_string_equal(d[0].message, "ZeroDivisionError: division by zero");
  sbx_diags_free(d, 1);
  assert_int_equal(parse(SBX_LANG_PYTHON, t, "main.py", 10, d, 4), 1);
  assert_int_equal(d[0].line, 12);
  sbx_diags_free(d, 1);
}

static void python_frames_outside_script_ignored(void **state) {
  (void)state;
  const char *t = "Traceback (most recent call last):\n"
                  "  File \"/sandbox/main.py\", line 2, in <module>\n    json.loads('x')\n"
                  "  File \"/usr/lib/python3.11/json/__init__.py\", line 346, in loads\n    return x\n"
                  "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)\n";
  sbx_diag d[2];
  assert_int_equal(parse(SBX_LANG_PYTHON, t, "main.py", 0, d, 2), 1);
  assert_int_equal(d[0].line, 1);
  assert_non_null(strstr(d[0].message, "JSONDecodeError"));
  sbx_diags_free(d, 1);
}

static void python_syntax_error_with_column(void **state) {
  (void)state;
  const char *t = "  File \"/sandbox/main.py\", line 3\n    x = (1 +\n        ^\n"
                  "SyntaxError: '(' was never closed\n";
  sbx_diag d[2];
  assert_int_equal(parse(SBX_LANG_PYTHON, t, "main.py", 0, d, 2), 1);
  assert_int_equal(d[0].line, 2);
  assert_int_equal(d[0].column, 4);
  assert_string_equal(d[0].message, "SyntaxError: '(' was never closed");
  sbx_diags_free(d, 1);
}

static void python_no_traceback(void **state) {
  (void)state;
  sbx_diag d[2];
  assert_int_equal(parse(SBX_LANG_PYTHON, "boom\n", "main.py", 0, d, 2), 0);
  assert_int_equal(parse(SBX_LANG_PYTHON, "  File \"other.py\", line 1\nE: x\n", "main.py", 0, d, 2), 0);
}

static void node_header_and_caret(void **state) {
  (void)state;
  const char *t = "/sandbox/main.js:2\nfoo();\n^\n\nReferenceError: foo is not defined\n"
                  "    at Object.<anonymous> (/sandbox/main.js:2:1)\n    at Module._compile (node:internal)\n\n"
                  "Node.js v20.20.2\n";
  sbx_diag d[2];
  assert_int_equal(parse(SBX_LANG_JAVASCRIPT, t, "main.js", 0, d, 2), 1);
  assert_int_equal(d[0].line, 1);
  assert_int_equal(d[0].column, 0);
  assert_string_equal(d[0].message, "ReferenceError: foo is not defined");
  sbx_diags_free(d, 1);
}

static void node_syntax_error(void **state) {
  (void)state;
  const char *t = "/sandbox/main.js:1\nlet a = ;\n        ^\n\nSyntaxError: Unexpected token ';'\n"
                  "    at wrapSafe (node:internal/modules/cjs/loader:1464:18)\n";
  sbx_diag d[2];
  assert_int_equal(parse(SBX_LANG_JAVASCRIPT, t, "main.js", 5, d, 2), 1);
  assert_int_equal(d[0].line, 5);
  assert_int_equal(d[0].column, 8);
  assert_string_equal(d[0].message, "SyntaxError: Unexpected token ';'");
  sbx_diags_free(d, 1);
}

static void node_stack_frame_only(void **state) {
  (void)state;
  const char *t = "TypeError: bad\n    at Timeout._onTimeout (/sandbox/main.js:7:11)\n"
                  "    at listOnTimeout (node:internal/timers:569:17)\n";
  sbx_diag d[2];
  assert_int_equal(parse(SBX_LANG_JAVASCRIPT, t, "main.js", 0, d, 2), 1);
  assert_int_equal(d[0].line, 6);
  assert_int_equal(d[0].column, 10);
  assert_string_equal(d[0].message, "TypeError: bad");
  sbx_diags_free(d, 1);
}

static void bash_lines(void **state) {
  (void)state;
  const char *t = "main.sh: line 2: foo: command not found\n"
                  "ls: cannot access '/x': No such file or directory\n"
                  "main.sh: line 3: syntax error near unexpected token `then'\n"
                  "main.sh: line 3: `if then'\n"
                  "other.sh: line 9: nope\n";
  sbx_diag d[8];
  int n = parse(SBX_LANG_BASH, t, "main.sh", 0, d, 8);
  assert_int_equal(n, 2);
  assert_int_equal(d[0].line, 1);
  assert_string_equal(d[0].message, "foo: command not found");
  assert_int_equal(d[1].line, 2);
  assert_string_equal(d[1].message, "syntax error near unexpected token `then'");
  sbx_diags_free(d, n);
}

static void negative_lines_dropped_and_max_respected(void **state) {
  (void)state;
  const char *t = "main.sh: line 1: a\nmain.sh: line 2: b\nmain.sh: line 3: c\n";
  sbx_diag d[2];
  int n = parse(SBX_LANG_BASH, t, "main.sh", -1, d, 2);
  assert_int_equal(n, 2);
  assert_int_equal(d[0].line, 0);
  assert_string_equal(d[0].message, "b");
  sbx_diags_free(d, n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(python_last_frame_in_script), cmocka_unit_test(python_frames_outside_script_ignored),
      cmocka_unit_test(python_syntax_error_with_column), cmocka_unit_test(python_no_traceback),
      cmocka_unit_test(node_header_and_caret), cmocka_unit_test(node_syntax_error),
      cmocka_unit_test(node_stack_frame_only), cmocka_unit_test(bash_lines),
      cmocka_unit_test(negative_lines_dropped_and_max_respected),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
