/* Bash syntax checks against what `bash -n` says (server/check/gaps.c):
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
static size_t syntax_in(chk_language lang, const char *src, unsigned *line, char **msg) {
  chk_doc *doc = chk_doc_new(ctx, lang, src, strlen(src));
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

static size_t syntax(const char *src, unsigned *line, char **msg) {
  return syntax_in(CHK_LANG_BASH, src, line, msg);
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
      /* here-documents: a body after an operator that continues the
       * command, one with no command, a word the grammar refuses, a body
       * bash does not parse */
      "cat >x <<\\EOF ||\n{\n  \"a\": 1\n}\nEOF\necho failed\n",
      "echo a\n<<\\DOC\nit's text\nDOC\necho b\n",
      ": <<=cut\nfoo \"bar\n=cut\necho hi\n",
      "cat <<EOF\n$(if)\nEOF\ncat <<-'E' <<F\n\tx'\n\tE\ny\"\nF\n",
      /* assignments with a redirection and no command */
      "n=$(($1 + 0)) 2>/dev/null && echo $n\n",
      "a=(1) n=1 >/dev/null\n",
      "if ! IFS=1 C=($(echo a \\\n  2>/dev/null)); then :; fi\n",
      "x=${1:-`dirname $0`}\n",
      "((ls -l) 3>&- | cat)\n",
      "if ! ( : <>/dev/tty ) 2>/dev/null; then exec 3<>/dev/tty; fi\n",
      "eval \"(( \\${#a[@]} > 0 ))\"\n",
      "case \"$M\" in\n  $X\\;*|*\\;$X) echo;;\n  a\\)b) echo;;\nesac\n",
      "x=$((1 << 2)); ((y = 1 << 3)); z=$(((x + y) / 2))\n",
      /* a lone '*' pattern with its body right after the ')' */
      "case $a in\n  x) echo 1;;\n  *)echo other;;\nesac\n",
      "case $a in (*)if true; then echo y; fi;; esac\n",
      "case $a in x) :;;*)case $b in y) esac;; esac\n",
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

/* Real errors next to the rewritten constructs stay where bash puts them. */
static void test_errors_near_rewrites(void **state) {
  (void)state;
  static const struct {
    const char *src;
    unsigned line;
  } bad[] = {
      {"mid=$(((a + b) / 2))\necho \"unclosed\n", 2},
      {"cat <<EOF\nx\nEOF\nif true; then\n  echo x\n", 6},
      {"((ls -l) | cat\n", 1},
      {"n=1 2>/dev/null &&\n", 1},
      {"x=${1:-`dirname $0`\n", 1},
      /* a stray closing word in a script that parses only once rewritten */
      {"x=${1:-`dirname $0`}\nif true; then\n  echo\nfi\nelse\n  echo\n", 5},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    unsigned line = 0;
    char *msg = NULL;
    if (!syntax(bad[i].src, &line, &msg)) fprintf(stderr, "missed: %s", bad[i].src);
    assert_non_null(msg);
    if (line != bad[i].line) fprintf(stderr, "line %u for: %s", line, bad[i].src);
    assert_int_equal(line, bad[i].line);
    free(msg);
  }
  /* a redirection with no word before the newline (bash: "unexpected token
   * `newline'" at line 2; the grammar's error lands on line 3) */
  unsigned line = 0;
  char *msg = NULL;
  assert_true(syntax("case $a in\n  --x=*) p=$o<\n    q=1\n    ;;\nesac\n", &line, &msg) >= 1);
  free(msg);
}

/* JavaScript: a '[' starting a line after an arrow function's body starts a
 * statement (node's semicolon insertion); after a function expression it is
 * a subscript, and a spread there is an error. */
static void test_javascript_asi_after_arrow_body(void **state) {
  (void)state;
  unsigned line = 0;
  char *msg = NULL;
  assert_int_equal(syntax_in(CHK_LANG_JAVASCRIPT,
                             "const f = () => {\n  return [1]\n}\n\n  [...f(), 2].forEach(x => x)\n",
                             &line, &msg),
                   0);
  assert_true(syntax_in(CHK_LANG_JAVASCRIPT,
                        "const f = function () {\n  return [1]\n}\n  [...f(), 2].forEach(x => x)\n",
                        &line, &msg) >= 1);
  assert_int_equal(line, 4);
  free(msg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_missing_fi_with_and_without_newline),
      cmocka_unit_test(test_what_bash_accepts),
      cmocka_unit_test(test_errors_keep_their_line),
      cmocka_unit_test(test_errors_near_rewrites),
      cmocka_unit_test(test_javascript_asi_after_arrow_body),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
