/* Unit tests of the language registry (server/util/lang.c): every name the
 * protocol accepts, LSP languageIds, file extensions, and the table's own
 * consistency (names unique, message text in step with the table). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "lang.h"

typedef struct lang_case {
  const char *in;
  lang_id want;
} lang_case;

static void expect_cases(lang_id (*f)(const char *), const char *fname, const lang_case *cases, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (f(cases[i].in) != cases[i].want) fail_msg("%s(\"%s\") is not %d", fname, cases[i].in, cases[i].want);
}

static void names_and_aliases(void **state) {
  (void)state;
  static const lang_case cases[] = {
      {"python", LANG_PYTHON},     {"py", LANG_PYTHON},   {"python3", LANG_PYTHON},
      {"javascript", LANG_JAVASCRIPT}, {"js", LANG_JAVASCRIPT}, {"node", LANG_JAVASCRIPT},
      {"bash", LANG_BASH},         {"sh", LANG_BASH},     {"shell", LANG_BASH},
      {"Python", LANG_NONE},       {"", LANG_NONE},       {"ruby", LANG_NONE},
      {"shellscript", LANG_NONE}, /* an LSP id, not a `language` name */
      {"python ", LANG_NONE},
  };
  expect_cases(lang_parse, "lang_parse", cases, sizeof cases / sizeof cases[0]);
  assert_int_equal(lang_parse(NULL), LANG_NONE);
  assert_string_equal(lang_name(LANG_PYTHON), "python");
  assert_string_equal(lang_name(LANG_JAVASCRIPT), "javascript");
  assert_string_equal(lang_name(LANG_BASH), "bash");
  assert_string_equal(lang_name(LANG_NONE), "none");
  assert_string_equal(lang_name(LANG_COUNT), "none");
  assert_string_equal(lang_name(LANG_DEFAULT), "python"); /* the protocol's default */
  assert_null(lang_get(LANG_NONE));
  assert_null(lang_get(LANG_COUNT));
  /* the canonical name parses back to its language */
  for (int l = 0; l < LANG_COUNT; l++) assert_int_equal(lang_parse(lang_name((lang_id)l)), l);
}

static void lsp_language_ids(void **state) {
  (void)state;
  static const lang_case cases[] = {
      {"python", LANG_PYTHON}, {"javascript", LANG_JAVASCRIPT}, {"shellscript", LANG_BASH},
      {"sh", LANG_BASH},       {"py", LANG_PYTHON},             {"typescript", LANG_NONE},
      {"plaintext", LANG_NONE},
  };
  expect_cases(lang_from_lsp_id, "lang_from_lsp_id", cases, sizeof cases / sizeof cases[0]);
  assert_int_equal(lang_from_lsp_id(NULL), LANG_NONE);
}

static void file_extensions(void **state) {
  (void)state;
  static const lang_case cases[] = {
      {"a.py", LANG_PYTHON},       {"/x/y/z.py", LANG_PYTHON},   {"a.js", LANG_JAVASCRIPT},
      {"a.mjs", LANG_JAVASCRIPT},  {"a.cjs", LANG_JAVASCRIPT},   {"run.sh", LANG_BASH},
      {"x.bash", LANG_BASH},       {"file:///w/a.tar.py", LANG_PYTHON},
      {"a.PY", LANG_NONE},         {"a.pyc", LANG_NONE},         {"Makefile", LANG_NONE},
      {"dir.py/file", LANG_NONE}, /* the dot is in a folder's name */
      {"a.", LANG_NONE},           {"", LANG_NONE},
  };
  expect_cases(lang_from_path, "lang_from_path", cases, sizeof cases / sizeof cases[0]);
  assert_int_equal(lang_from_path(NULL), LANG_NONE);
}

static void table_is_consistent(void **state) {
  (void)state;
  char text[200] = "", usage[200] = "";
  for (int l = 0; l < LANG_COUNT; l++) {
    const lang_info *li = lang_get((lang_id)l);
    assert_non_null(li->name);
    assert_non_null(li->script);
    assert_non_null(li->program);
    assert_non_null(li->package);
    /* interpreters live under /usr: the only host tree the sandbox shows */
    assert_memory_equal(li->interpreter, "/usr/", 5);
    assert_non_null(li->candidates[0]);
    for (int c = 0; li->candidates[c]; c++) assert_true(li->candidates[c][0] == '/');
    assert_non_null(li->exts[0]);
    /* the script's extension is one of the language's own */
    assert_int_equal(lang_from_path(li->script), l);
    for (int e = 0; li->exts[e]; e++) assert_int_equal(lang_from_path(li->exts[e]), l);
    for (int a = 0; li->aliases[a]; a++) assert_int_equal(lang_parse(li->aliases[a]), l);
    for (int a = 0; li->lsp_ids[a]; a++) assert_int_equal(lang_from_lsp_id(li->lsp_ids[a]), l);
    snprintf(text + strlen(text), sizeof text - strlen(text), "%s%s", l == 0 ? "" : l == LANG_COUNT - 1 ? " or " : ", ",
             li->name);
    snprintf(usage + strlen(usage), sizeof usage - strlen(usage), "%s%s", l == 0 ? "" : "|", li->name);
  }
  assert_string_equal(LANG_NAMES_TEXT, text);
  assert_string_equal(LANG_NAMES_USAGE, usage);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(names_and_aliases),
      cmocka_unit_test(lsp_language_ids),
      cmocka_unit_test(file_extensions),
      cmocka_unit_test(table_is_consistent),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
