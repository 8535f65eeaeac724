/* Unit tests of what may reach tree-sitter: the pre-scan (size, lines,
 * nesting outside strings and comments), documents over a limit (reported,
 * not parsed, and parsed again once an edit brings them back), the parse and
 * import-query deadlines, and the runtime itself on the input that crashed
 * Debian's 0.20.7 (run this under ASan: it must free cleanly). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "check.h"
#include "common.h"
#include "internal.h"

static chk_context *ctx;

static int group_setup(void **state) {
  char *msg = NULL;
  ctx = chk_context_new(&msg);
  if (!ctx) fprintf(stderr, "chk_context_new: %s\n", msg ? msg : "?");
  free(msg);
  return ctx ? 0 : -1;
}

static int group_teardown(void **state) {
  chk_context_free(ctx);
  chk_shutdown();
  return 0;
}

/* prefix + n copies of unit + suffix, NUL-terminated. */
static char *repeat(const char *prefix, const char *unit, size_t n, const char *suffix) {
  size_t p = strlen(prefix), u = strlen(unit), s = strlen(suffix);
  char *out = xmalloc(p + u * n + s + 1);
  memcpy(out, prefix, p);
  for (size_t i = 0; i < n; i++) memcpy(out + p + i * u, unit, u);
  memcpy(out + p + u * n, suffix, s + 1);
  return out;
}

static int scan(chk_language lang, const char *text, chk_limit *hit) {
  memset(hit, 0, sizeof *hit);
  return chk_prescan(lang, text, strlen(text), hit);
}

/* ---- the pre-scan ---- */

static void test_prescan_python_mirrors_cpython(void **state) {
  chk_limit hit;
  /* CPython 3.11 compiles 200 nested brackets and refuses the 201st, at its
   * column (1-based offset 205 for 'x = ' + 201 '['). */
  char *ok = repeat("x = ", "[", 200, "");
  assert_int_equal(scan(CHK_LANG_PYTHON, ok, &hit), 0);
  char *bad = repeat("x = ", "[", 201, "");
  assert_int_equal(scan(CHK_LANG_PYTHON, bad, &hit), -E2BIG);
  assert_string_equal(hit.message, "too many nested parentheses");
  assert_int_equal(hit.offset, 4 + 200);
  assert_int_equal(hit.len, 1);
  /* every kind of bracket counts, closers of any kind close */
  char *mixed = repeat("f(", "{[(", 67, ""); /* 1 + 201 */
  assert_int_equal(scan(CHK_LANG_PYTHON, mixed, &hit), -E2BIG);
  char *closed = repeat("", "([{}])\n", 10000, "");
  assert_int_equal(scan(CHK_LANG_PYTHON, closed, &hit), 0);
  free(ok);
  free(bad);
  free(mixed);
  free(closed);
}

static void test_prescan_skips_strings_and_comments(void **state) {
  chk_limit hit;
  /* 300 unmatched openers each, none of them nesting */
  char *py = repeat("", "print(\"(\", '[', '''{\n(''', r\"\\\"(\")  # (((\n", 300, "");
  assert_int_equal(scan(CHK_LANG_PYTHON, py, &hit), 0);
  char *js = repeat("", "f('(', \"[\", `{${a[0]}(`) // (((\n/* [[[ */\n", 300, "");
  assert_int_equal(scan(CHK_LANG_JAVASCRIPT, js, &hit), 0);
  char *sh = repeat("", "echo '(((' \"$(date \"+(%s\")\" \\( # (((\n", 300, "");
  assert_int_equal(scan(CHK_LANG_BASH, sh, &hit), 0);
  /* $# is a parameter, not a comment: the '(' after it count */
  char *notcomment = repeat("echo $#", "(", 257, "");
  assert_int_equal(scan(CHK_LANG_BASH, notcomment, &hit), -E2BIG);
  free(py);
  free(js);
  free(sh);
  free(notcomment);
}

static void test_prescan_nesting_inside_strings(void **state) {
  chk_limit hit;
  /* bash command substitutions nest through double quotes */
  char *sh = repeat("echo ", "\"$(", 256, "");
  assert_int_equal(scan(CHK_LANG_BASH, sh, &hit), 0);
  free(sh);
  sh = repeat("echo ", "\"$(", 257, "");
  assert_int_equal(scan(CHK_LANG_BASH, sh, &hit), -E2BIG);
  assert_string_equal(hit.message, "nesting deeper than 256 levels: not checked");
  assert_int_equal(hit.offset, 5 + 256 * 3 + 1); /* the '$' of the 257th */
  assert_int_equal(hit.len, 2);
  free(sh);
  /* the 40,000 '$(' that stalled the server for 41.6 s */
  sh = repeat("echo ", "$(", 40000, "\n");
  assert_int_equal(scan(CHK_LANG_BASH, sh, &hit), -E2BIG);
  assert_int_equal(hit.offset, 5 + 256 * 2 + 1); /* the '(' of the 257th */
  free(sh);
  /* javascript template literals nest through ${ } */
  char *js = repeat("x = ", "`${", 257, "");
  assert_int_equal(scan(CHK_LANG_JAVASCRIPT, js, &hit), -E2BIG);
  free(js);
}

static void test_prescan_size_and_lines(void **state) {
  chk_limit hit;
  size_t n = CHK_MAX_BYTES;
  char *big = xmalloc(n + 2);
  for (size_t i = 0; i < n + 1; i++) big[i] = i % 64 == 63 ? '\n' : 'x';
  assert_int_equal(chk_prescan(CHK_LANG_PYTHON, big, n, &hit), 0);
  assert_int_equal(chk_prescan(CHK_LANG_PYTHON, big, n + 1, &hit), -E2BIG);
  assert_int_equal(hit.offset, n);
  assert_non_null(strstr(hit.message, "too large to check"));
  free(big);

  /* exactly CHK_MAX_LINES lines (the last with its newline) pass; one more does not */
  char *lines = repeat("", "\n", CHK_MAX_LINES, "");
  assert_int_equal(scan(CHK_LANG_BASH, lines, &hit), 0);
  free(lines);
  lines = repeat("", "\n", CHK_MAX_LINES, "x");
  assert_int_equal(scan(CHK_LANG_BASH, lines, &hit), -E2BIG);
  assert_int_equal(hit.offset, CHK_MAX_LINES);
  assert_non_null(strstr(hit.message, "too many lines"));
  free(lines);
}

/* ---- documents over a limit ---- */

static void test_deep_document_reported_not_parsed(void **state) {
  char *text = repeat("import os\nx = ", "[", 100000, "\n");
  chk_doc *doc = chk_doc_new(ctx, CHK_LANG_PYTHON, text, strlen(text));
  assert_non_null(doc);
  assert_null(chk_doc_tree(doc));
  assert_non_null(chk_doc_limit(doc));
  chk_report r = {0};
  chk_doc_check(ctx, doc, NULL, &r);
  assert_int_equal(r.ndiags, 1);
  assert_int_equal(r.nimports, 0); /* nothing extracted from unparsed text */
  assert_int_equal(r.diags[0].severity, CHK_SEV_ERROR);
  assert_string_equal(r.diags[0].code, "limit");
  assert_string_equal(r.diags[0].message, "too many nested parentheses");
  assert_int_equal(r.diags[0].start.row, 1);
  assert_int_equal(r.diags[0].start.column, 4 + 200);
  assert_int_equal(r.diags[0].end.column, 4 + 201);
  chk_report_close(&r);

  /* an edit that removes the nesting brings the tree back, as a full parse would */
  assert_int_equal(chk_doc_change(doc, true, 1, 4, 1, 4 + 100000, "[1]", 3, LSP_ENC_UTF16), 0);
  assert_non_null(chk_doc_tree(doc));
  assert_null(chk_doc_limit(doc));
  memset(&r, 0, sizeof r);
  chk_doc_check(ctx, doc, NULL, &r);
  assert_int_equal(r.ndiags, 0);
  assert_int_equal(r.nimports, 1);
  chk_report_close(&r);
  /* and one that puts it back takes it away again */
  char *deep = repeat("", "(", 300, "");
  assert_int_equal(chk_doc_change(doc, true, 1, 5, 1, 5, deep, strlen(deep), LSP_ENC_UTF16), 0);
  assert_null(chk_doc_tree(doc));
  assert_non_null(chk_doc_limit(doc));
  free(deep);
  chk_doc_free(doc);

  free(text);
}

/* ---- the deadline ---- */

static char *program(size_t funcs) {
  char *out = xstrdup("import os\nimport sys\n");
  for (size_t i = 0; i < funcs; i++) {
    char *f = xasprintf("%s\ndef f%zu(a, b=[1, 2, {'k': (3, 4)}]):\n    if a > b:\n"
                        "        return os.path.join(str(a), sys.argv[0])\n    return None\n",
                        out, i);
    free(out);
    out = f;
  }
  return out;
}

/* A budget no parse of these texts reaches, however loaded the machine:
 * the test is about what a stopped parse leaves, not about speed. */
#define AMPLE_US (10 * 1000 * 1000)

static void test_parse_deadline(void **state) {
  char *text = program(200);
  size_t len = strlen(text);
  chk_context_set_budget(ctx, AMPLE_US, CHK_BUDGET_NS_PER_BYTE);
  chk_doc *reference = chk_doc_new(ctx, CHK_LANG_PYTHON, text, len);
  assert_non_null(chk_doc_tree(reference));

  /* no budget at all: the parse stops at its first progress check */
  chk_context_set_budget(ctx, 0, 0);
  chk_doc *doc = chk_doc_new(ctx, CHK_LANG_PYTHON, text, len);
  assert_null(chk_doc_tree(doc));
  const chk_limit *lim = chk_doc_limit(doc);
  assert_non_null(lim);
  assert_string_equal(lim->message, "parsing took longer than 0 ms: not checked");
  assert_true(lim->offset < len);
  chk_report r = {0};
  chk_doc_check(ctx, doc, NULL, &r);
  assert_int_equal(r.ndiags, 1);
  assert_string_equal(r.diags[0].code, "limit");
  chk_report_close(&r);

  /* with a budget again, the same parser parses this text from its start:
   * the stopped parse was dropped, not resumed */
  chk_context_set_budget(ctx, AMPLE_US, CHK_BUDGET_NS_PER_BYTE);
  assert_int_equal(chk_doc_change(doc, true, 0, 0, 0, 0, "", 0, LSP_ENC_UTF16), 0);
  assert_non_null(chk_doc_tree(doc));
  char *a = ts_node_string(ts_tree_root_node(chk_doc_tree(doc)));
  char *b = ts_node_string(ts_tree_root_node(chk_doc_tree(reference)));
  assert_string_equal(a, b);
  free(a);
  free(b);
  /* and a different text right after a stopped parse is parsed as itself */
  chk_context_set_budget(ctx, 0, 0);
  chk_doc *stopped = chk_doc_new(ctx, CHK_LANG_PYTHON, text, len);
  assert_null(chk_doc_tree(stopped));
  chk_context_set_budget(ctx, AMPLE_US, CHK_BUDGET_NS_PER_BYTE);
  chk_doc *other = chk_doc_new(ctx, CHK_LANG_PYTHON, "y = 1\n", 6);
  a = ts_node_string(ts_tree_root_node(chk_doc_tree(other)));
  assert_string_equal(a, "(module (expression_statement (assignment left: (identifier) right: (integer))))");
  free(a);
  chk_doc_free(other);
  chk_doc_free(stopped);
  chk_doc_free(doc);
  chk_doc_free(reference);
  free(text);
  chk_context_set_budget(ctx, CHK_BUDGET_BASE_US, CHK_BUDGET_NS_PER_BYTE);
}

static void test_import_query_deadline(void **state) {
  char *text = repeat("", "x=$(grep a b | sort | uniq -c)\nls -l \"$x\"\n", 300, "");
  chk_doc *doc = chk_doc_new(ctx, CHK_LANG_BASH, text, strlen(text));
  assert_non_null(chk_doc_tree(doc));
  chk_report r = {0};
  chk_imports(ctx, doc, NULL, &r);
  assert_true(r.nimports > 0);
  for (size_t i = 0; i < r.ndiags; i++) assert_string_not_equal(r.diags[i].code, "limit");
  chk_report_close(&r);

  /* an import list cut short by the deadline says so with an error */
  chk_context_set_budget(ctx, 0, 0);
  memset(&r, 0, sizeof r);
  chk_imports(ctx, doc, NULL, &r);
  chk_context_set_budget(ctx, CHK_BUDGET_BASE_US, CHK_BUDGET_NS_PER_BYTE);
  assert_int_equal(chk_report_errors(&r), 1);
  bool found = false;
  for (size_t i = 0; i < r.ndiags; i++)
    found |= !strcmp(r.diags[i].code, "limit") &&
             !strcmp(r.diags[i].message, "finding the imports took longer than 0 ms: not checked");
  assert_true(found);
  chk_report_close(&r);
  chk_doc_free(doc);
  free(text);
}

/* ---- the runtime on hostile input, without the pre-scan ---- */

/* The input that made Debian's libtree-sitter 0.20.7 free an invalid pointer
 * (double free in ts_subtree_release via ts_tree_delete). Parsed directly,
 * past chk_prescan, with no deadline: under ASan this proves the runtime
 * itself now builds and frees such a tree cleanly. */
static void test_runtime_frees_deep_trees(void **state) {
  struct {
    chk_language lang;
    char *text;
  } cases[] = {
      {CHK_LANG_PYTHON, repeat("x = ", "[", 100000, "\n")},
      {CHK_LANG_BASH, repeat("echo ", "$(", 40000, "\n")},
  };
  chk_context_set_budget(ctx, 3600u * 1000 * 1000, 0); /* an hour: no deadline */
  for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
    uint32_t at = 1;
    TSTree *t = chk_context_parse(ctx, cases[i].lang, NULL, cases[i].text, strlen(cases[i].text), &at, NULL);
    assert_non_null(t);
    assert_int_equal(at, 0);
    assert_true(ts_node_has_error(ts_tree_root_node(t)));
    ts_tree_delete(t);
    free(cases[i].text);
  }
  chk_context_set_budget(ctx, CHK_BUDGET_BASE_US, CHK_BUDGET_NS_PER_BYTE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_prescan_python_mirrors_cpython),
      cmocka_unit_test(test_prescan_skips_strings_and_comments),
      cmocka_unit_test(test_prescan_nesting_inside_strings),
      cmocka_unit_test(test_prescan_size_and_lines),
      cmocka_unit_test(test_deep_document_reported_not_parsed),
      cmocka_unit_test(test_parse_deadline),
      cmocka_unit_test(test_import_query_deadline),
      cmocka_unit_test(test_runtime_frees_deep_trees),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
