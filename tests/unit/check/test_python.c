/* Python errors as CPython 3.11 reports them (server/check/pytokens.c,
 * pycheck.c): each case is a program, the line and column (1-based, UTF-16)
 * of the one syntax diagnostic, and its message, taken from
 * compile(source, name, "exec"); NULL for a program that compiles and so
 * must get no diagnostic at all. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "check.h"
#include "checker_fixture.h"

typedef struct pycase {
  const char *name, *src;
  unsigned line, col;
  const char *message;
} pycase;

static const pycase cases[] = {
    {"async_for_outside", "def f():\n    async for x in y:\n        pass\n", 2, 5, "'async for' outside async function"},
    {"await_outside", "def f():\n    await g()\n", 2, 5, "'await' outside async function"},
    {"backtick", "x = `y`\n", 1, 5, "invalid syntax"},
    {"bom_ok", "\xEF\xBB\xBF""x = 1\n", 0, 0, NULL},
    {"bracket_continuation_ok", "def f():\n    x = foo(1,\n2)\n    return x\n", 0, 0, NULL},
    {"break_ok", "while True:\n    if x:\n        break\n", 0, 0, NULL},
    {"break_outside", "if x:\n    break\n", 2, 5, "'break' outside loop"},
    {"continue_in_loop_else", "for x in y:\n    pass\nelse:\n    continue\n", 4, 5, "'continue' not properly in loop"},
    {"decorator_dedent", "class A:\n    @property\n  def f(self): pass\n", 3, 3, "unindent does not match any outer indentation level"},
    {"def_no_colon_docstring", "def f(x)\n    \"\"\"Doc.\"\"\"\n    return x\n", 1, 9, "expected ':'"},
    {"dict_colon", "d = {'a': 1, 'b' 2}\n", 1, 14, "invalid syntax. Perhaps you forgot a comma?"},
    {"dup_arg", "def f(a, b, a):\n    pass\n", 1, 13, "duplicate argument 'a' in function definition"},
    {"dup_lambda_arg", "f = lambda x, x: x\n", 1, 15, "duplicate argument 'x' in function definition"},
    {"else_alone", "x = 1\nelse:\n    pass\n", 2, 1, "invalid syntax"},
    {"except_comma", "try:\n    pass\nexcept ValueError, e:\n    pass\n", 3, 8, "multiple exception types must be parenthesized"},
    {"exec2", "exec code in ns\n", 1, 1, "Missing parentheses in call to 'exec'. Did you mean exec(...)?"},
    {"formfeed_ok", "\fx = 1\n", 0, 0, NULL},
    {"future_late", "import os\nfrom __future__ import annotations\n", 2, 1, "from __future__ imports must occur at the beginning of the file"},
    {"import_star_def", "def f():\n    from os import *\n", 2, 5, "import * only allowed at module level"},
    {"indent_expected_block", "def f():\nreturn 1\n", 2, 1, "expected an indented block after function definition on line 1"},
    {"indent_expected_block_eof", "for x in y:\n", 1, 12, "expected an indented block after 'for' statement on line 1"},
    {"indent_unexpected", "x = 1\n    y = 2\n", 2, 5, "unexpected indent"},
    {"indent_unindent", "if x:\n        a = 1\n    b = 2\n", 3, 5, "unindent does not match any outer indentation level"},
    {"kwarg_repeated", "f(a=1, a=2)\n", 1, 8, "keyword argument repeated: a"},
    {"leading_zero_float_ok", "x = 0777.5\ny = 00\n", 0, 0, NULL},
    {"match_ok", "match x:\n    case 1:\n        pass\n    case _:\n        pass\nmatch = 3\n", 0, 0, NULL},
    {"mismatch", "x = (1,\n 2]\n", 2, 3, "closing parenthesis ']' does not match opening parenthesis '(' on line 1"},
    {"missing_comma", "x = [1, 2\n     3]\n", 1, 9, "invalid syntax. Perhaps you forgot a comma?"},
    {"never_closed", "x = foo(1,\ny = 2\n", 1, 8, "'(' was never closed"},
    {"nonlocal_module", "nonlocal x\n", 1, 1, "nonlocal declaration not allowed at module level"},
    {"notequal", "if a <> b:\n    pass\n", 1, 6, "invalid syntax"},
    {"octal", "mode = 0777\n", 1, 8, "leading zeros in decimal integer literals are not permitted; use an 0o prefix for octal integers"},
    {"over_indented", "def f():\n    a = 1\n        b = 2\n", 3, 9, "unexpected indent"},
    {"positional_after_kw", "f(a=1, 2)\n", 1, 9, "positional argument follows keyword argument"},
    {"print2", "print 'hello', x\n", 1, 1, "Missing parentheses in call to 'print'. Did you mean print(...)?"},
    {"return_in_class", "class A:\n    return 1\n", 2, 5, "'return' outside function"},
    {"return_outside", "return 1\n", 1, 1, "'return' outside function"},
    {"return_plus", "def f(a):\n    return a +\n", 2, 15, "invalid syntax"},
    {"smart_quote", "print(\xE2\x80\x9C""hi\xE2\x80\x9D"")\n", 1, 7, "invalid character '\xE2\x80\x9C""' (U+201C)"},
    {"tab_error", "if x:\n\tif y:\n        pass\n", 3, 9, "inconsistent use of tabs and spaces in indentation"},
    {"try_alone", "try:\n    x = 1\ny = 2\n", 3, 1, "expected 'except' or 'finally' block"},
    {"unmatched", "x = 1)\n", 1, 6, "unmatched ')'"},
    {"unterminated", "s = 'abc\nprint(s)\n", 1, 5, "unterminated string literal (detected at line 1)"},
    {"walrus_posonly_ok", "def f(a, /, b, *, c):\n    if (n := len(a)) > 1:\n        return {k: v for k, v in b}\n", 0, 0, NULL},
    {"yield_outside", "x = yield 1\n", 1, 5, "'yield' outside function"},
    {"annotation_after_assign", "x = a: int\n", 1, 6, "invalid syntax"},
    {"attribute_keyword", "x = (a. or b)\n", 1, 9, "invalid syntax"},
    {"bare_star", "def f(a, *):\n    pass\n", 1, 10, "named arguments must follow bare *"},
    {"bytes_escape", "b = b'\\xZ'\n", 1, 11, "(value error) invalid \\x escape at position 0"},
    {"call_colon", "f(x: 1)\n", 1, 4, "invalid syntax"},
    {"default_except_last", "try:\n    pass\nexcept:\n    pass\nexcept ValueError:\n    pass\n", 3, 1, "default 'except:' must be last"},
    {"escape_truncated", "s = 'a\\x4' 'b'\nt = 1\n", 1, 15, "(unicode error) 'unicodeescape' codec can't decode bytes in position 1-3: truncated \\xXX escape"},
    {"for_in", "for in range(3):\n    pass\n", 1, 5, "invalid syntax"},
    {"from_no_import", "from os path\n", 1, 9, "invalid syntax"},
    {"import_after_name", "def f():\n    io import StringIO\n", 2, 8, "invalid syntax"},
    {"kw_expression", "f(a.b=1)\n", 1, 3, "expression cannot contain assignment, perhaps you meant \"==\"?"},
    {"literal_assign", "f('a'=1)\n", 1, 3, "expression cannot contain assignment, perhaps you meant \"==\"?"},
    {"statement_starts_with_op", "-= 1\n", 1, 1, "invalid syntax"},
    {"unpack_one_ok", "x, = [1]\nfrom ..a import b\n", 0, 0, NULL},
    {"tuple_literal_assign", "t = (\n    'a'\n    'b' = 1)\n", 2, 5, "cannot assign to literal here. Maybe you meant '==' instead of '='?"},
    {"starred_return", "def f(a):\n    return *a\n", 2, 12, "can't use starred expression here"},
    {"starred_parens", "def f(a):\n    return (*map(a))\n", 2, 13, "cannot use starred expression here"},
    {"starred_ok", "def f(a):\n    x = *a, 1\n    return (*a, 1), [*a], f(*a)\n", 0, 0, NULL},
    {"mixed_bytes", "x = (b'a'\n     'b')\n", 2, 9, "cannot mix bytes and nonbytes literals"},
    {"walrus_statement", "n := 1\n", 1, 3, "invalid syntax"},
    {"walrus_ok", "if (n := 1):\n    print(n)\nwhile x := f():\n    pass\n", 0, 0, NULL},
    {"from_import_dotted", "from . import a.b\n", 1, 16, "invalid syntax"},
    {"comma_then_from", "from a import b, \\\nfrom c import d\n", 2, 1, "invalid syntax"},
    {"comma_none_string", "f(None\n  'x')\n", 1, 3, "invalid syntax. Perhaps you forgot a comma?"},
    {"async_genexp_ok", "def f(n):\n    return (i for i in n if await g(i))\n", 0, 0, NULL},
    {"lambda_posonly_ok", "f = lambda a, b, /: a + b\n", 0, 0, NULL},
    /* the cases, and what CPython adds to them */
    {"dict_then_call", "d = {'a': 1}\nf(d, **d)\n", 0, 0, NULL},
    {"relative_dots", "from ... import x\nfrom ...a.b import c\n", 0, 0, NULL},
    {"lambda_in_dict", "ops = {'+': lambda a, b: a + b, '-': lambda a, b: a - b}\n", 0, 0, NULL},
    {"lambda_kwarg", "p = property(fget=lambda self: 1, fset=lambda self, v: None)\n", 0, 0, NULL},
    {"posonly_default", "def f(a=1, /, *args, **kw):\n    pass\n", 0, 0, NULL},
    {"bare_decorator", "@\ndef f(): pass\n", 1, 2, "invalid syntax"},
    {"from_import_trailing_comma", "from os import path,\n", 1, 20,
     "trailing comma not allowed without surrounding parentheses"},
};

static void test_cases(void **state) {
  (void)state;
  int failures = 0;
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    const pycase *k = &cases[i];
    chk_doc *doc = chk_doc_new(ctx, CHK_LANG_PYTHON, k->src, strlen(k->src));
    chk_report r = {0};
    chk_syntax(doc, &r);
    if (!k->message) {
      if (r.ndiags) {
        fprintf(stderr, "%s: expected no diagnostic, got %u:%u %s\n", k->name, r.diags[0].start.row + 1,
                r.diags[0].start.column + 1, r.diags[0].message);
        failures++;
      }
    } else if (r.ndiags != 1) {
      fprintf(stderr, "%s: expected one diagnostic, got %zu\n", k->name, r.ndiags);
      failures++;
    } else {
      const chk_diag *d = &r.diags[0];
      unsigned line = d->start.row + 1, col = chk_doc_point_to_lsp(doc, d->start, LSP_ENC_UTF16) + 1;
      if (line != k->line || col != k->col || strcmp(d->message, k->message)) {
        fprintf(stderr, "%s: expected %u:%u %s\n    got %u:%u %s\n", k->name, k->line, k->col,
                k->message, line, col, d->message);
        failures++;
      }
    }
    chk_report_close(&r);
    chk_doc_free(doc);
  }
  assert_int_equal(failures, 0);
}

/* The same text without its final newline gets the same error (CPython ends
 * every file with one). */
static void test_no_final_newline(void **state) {
  (void)state;
  const char *src = "def f():\n    return a +";
  chk_doc *doc = chk_doc_new(ctx, CHK_LANG_PYTHON, src, strlen(src));
  chk_report r = {0};
  chk_syntax(doc, &r);
  assert_int_equal(r.ndiags, 1);
  assert_int_equal(r.diags[0].start.row, 1);
  assert_int_equal(r.diags[0].start.column, 14);
  assert_string_equal(r.diags[0].message, "invalid syntax");
  chk_report_close(&r);
  chk_doc_free(doc);
}

/* Checking stays linear: a long file of blocks, brackets and strings is
 * checked with one tokenizer pass (a quadratic pass would take minutes). */
static void test_long_file(void **state) {
  (void)state;
  size_t cap = 2u << 20, len = 0;
  char *src = malloc(cap);
  for (unsigned i = 0; len + 200 < cap / 8; i++) 
    len += (size_t)snprintf(src + len, cap - len,
                            "def f%u(a, b=(1,\n        2), *c, **d):\n    if a:\n        return {'k': "
                            "[b, c]}\n    return f'{a}' \"\"\"x\n    y\"\"\"\n",
                            i);
  /* the parse's own budget is not what this measures */
  chk_context_set_budget(ctx, 60u * 1000 * 1000, CHK_BUDGET_NS_PER_BYTE);
  chk_doc *doc = chk_doc_new(ctx, CHK_LANG_PYTHON, src, len);
  chk_context_set_budget(ctx, CHK_BUDGET_BASE_US, CHK_BUDGET_NS_PER_BYTE);
  chk_report r = {0};
  chk_syntax(doc, &r);
  for (size_t i = 0; i < r.ndiags; i++)
    fprintf(stderr, "%u:%u %s\n", r.diags[i].start.row + 1, r.diags[i].start.column + 1, r.diags[i].message);
  assert_int_equal(r.ndiags, 0);
  chk_report_close(&r);
  chk_doc_free(doc);
  free(src);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cases),
      cmocka_unit_test(test_no_final_newline),
      cmocka_unit_test(test_long_file),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
