/* Bash syntax checks against what `bash -n` says (server/check/bashnorm.c):
 * scripts bash accepts get no diagnostic although tree-sitter-bash 0.23's
 * grammar refuses them, and real errors keep their message and line, with
 * or without the final newline (answers from the model come without it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "check.h"
#include "checker_fixture.h"

/* The syntax diagnostics of src: their count, the first one's 1-based line
 * and message in *line / *msg (msg caller frees). */
static size_t syntax(const char *src, unsigned *line, char **msg) {
  chk_doc *doc = chk_doc_new(ctx, CHK_LANG_BASH, src, strlen(src));
  chk_report r = {0};
  chk_syntax(doc, &r);
  size_t n = r.ndiags;
  if (n) {
    *line = r.diags[0].start.row + 1;
    *msg = strdup(r.diags[0].message);
    for (size_t i = 0; i < n; i++)
      fprintf(stderr, "  %u:%u %s\n", r.diags[i].start.row + 1, r.diags[i].start.column + 1,
              r.diags[i].message);
  }
  chk_report_close(&r);
  chk_doc_free(doc);
  return n;
}

static void test_missing_fi_with_and_without_newline(void **state) {
  (void)state;
  const char *srcs[] = {"x=1\nif true; then\n  echo $x\n", "x=1\nif true; then\n  echo $x"};
  for (size_t i = 0; i < 2; i++) {
    unsigned line = 0;
    char *msg = NULL;
    assert_int_equal(syntax(srcs[i], &line, &msg), 1);
    assert_string_equal(msg, "missing 'fi' to close 'if' at line 2");
    free(msg);
  }
}

/* Each of these is accepted by bash -n and was an error before (found on the
 * scripts of a Debian system). */
static void test_what_bash_accepts(void **state) {
  (void)state;
  static const char *const ok[] = {
      "for f do\n  echo \"$f\"\ndone\n",
      "for f\ndo\n  echo \"$f\"\ndone\n",
      "if [ \"$op\" \"$x\" ]; then echo yes; fi\n",
      "if [ \\( -n \"$a\" \\) ]; then echo yes; fi\n",
      "[ \"$a\" = ~ -o \"$b\" = ~ ] && echo yes\n",
      "sed -e 's/.et$//' -e \"s/x$//\" f\n",
      "lvs -S lv_name=~\\(e2scrub$\\) x\n",
      "a=`echo x`; b=` echo y`\n",
      "case $v in\nless' '45[1-9]* | \\\nless' '4*) x=1;;\n?*' '?*) y=2;;\nesac\n",
      "case $v in\n(a?' 'a) case $w in x) y;; esac;;\n*) echo \"a;;b\";;\nesac\n",
  };
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
    unsigned line = 0;
    char *msg = NULL;
    size_t n = syntax(ok[i], &line, &msg);
    if (n) fprintf(stderr, "false alarm on: %s", ok[i]);
    assert_int_equal(n, 0);
  }
}

/* The rewrites keep real errors where bash -n puts them. */
static void test_errors_keep_their_line(void **state) {
  (void)state;
  unsigned line = 0;
  char *msg = NULL;
  assert_int_equal(syntax("for f do\n  echo $f\n", &line, &msg), 1);
  assert_string_equal(msg, "missing 'done' to close 'do' at line 1");
  free(msg);
  msg = NULL;
  assert_true(syntax("case $v in\n  a' 'b) echo\nesac\necho \"unclosed\n", &line, &msg) >= 1);
  assert_int_equal(line, 4);
  free(msg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_missing_fi_with_and_without_newline),
      cmocka_unit_test(test_what_bash_accepts),
      cmocka_unit_test(test_errors_keep_their_line),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
