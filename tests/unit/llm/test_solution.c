/* Unit tests for reading {prefix, imports, code} out of JSON and fenced-text answers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "solution.h"

static void test_json_ok(void **state) {
  (void)state;
  llm_solution s;
  char *err = NULL;
  assert_int_equal(llm_solution_parse("{\"prefix\":\" Says hi. \",\"imports\":\"import os\\n\",\"code\":\"\\nprint(os.sep)\\n\"}",
                                      LLM_MODE_JSON_SCHEMA, &s, &err), 0);
  assert_null(err);
  assert_string_equal(s.prefix, "Says hi.");
  assert_string_equal(s.imports, "import os");
  assert_string_equal(s.code, "print(os.sep)");
  assert_null(s.test); /* no test: none */
  llm_solution_close(&s);
  /* the optional test; "" is none */
  assert_int_equal(llm_solution_parse("{\"prefix\":\"p\",\"imports\":\"\",\"code\":\"x = 2\",\"test\":\"assert x == 2\\n\"}",
                                      LLM_MODE_JSON_OBJECT, &s, &err), 0);
  assert_string_equal(s.test, "assert x == 2");
  llm_solution_close(&s);
  assert_int_equal(llm_solution_parse("{\"prefix\":\"p\",\"imports\":\"\",\"code\":\"x = 2\",\"test\":\"\"}",
                                      LLM_MODE_JSON_SCHEMA, &s, &err), 0);
  assert_null(s.test);
  llm_solution_close(&s);
}

static void test_json_wrapped(void **state) {
  (void)state;
  llm_solution s;
  char *err = NULL;
  const char *fenced = "Here you go:\n```json\n{\"prefix\":\"p\",\"imports\":\"\",\"code\":\"x = 1\"}\n```\n";
  assert_int_equal(llm_solution_parse(fenced, LLM_MODE_JSON_OBJECT, &s, &err), 0);
  assert_string_equal(s.code, "x = 1");
  assert_string_equal(s.imports, "");
  llm_solution_close(&s);
  assert_int_equal(llm_solution_parse("Sure! {\"prefix\":\"p\",\"imports\":\"\",\"code\":\"y\"} done", LLM_MODE_JSON_OBJECT,
                                      &s, &err), 0);
  assert_string_equal(s.code, "y");
  llm_solution_close(&s);
}

static void test_json_errors(void **state) {
  (void)state;
  llm_solution s;
  char *err = NULL;
  assert_int_equal(llm_solution_parse("{\"prefix\":\"p\",\"imports\":\"\"}", LLM_MODE_JSON_SCHEMA, &s, &err), -EINVAL);
  assert_non_null(strstr(err, "\"code\""));
  assert_non_null(strstr(err, "Reply with one JSON object"));
  assert_null(s.code);
  free(err);
  assert_int_equal(llm_solution_parse("{\"prefix\":\"p\",\"imports\":3,\"code\":\"x\"}", LLM_MODE_JSON_SCHEMA, &s, &err),
                   -EINVAL);
  assert_non_null(strstr(err, "\"imports\""));
  free(err);
  assert_int_equal(llm_solution_parse("{\"prefix\":\"p\",\"imports\":\"\",\"code\":\"  \\n \"}", LLM_MODE_JSON_SCHEMA, &s,
                                      &err), -EINVAL);
  assert_non_null(strstr(err, "empty"));
  free(err);
  assert_int_equal(llm_solution_parse("{\"prefix\": \"p\", \"code\": \"unterminated", LLM_MODE_JSON_SCHEMA, &s, &err),
                   -EINVAL);
  assert_non_null(strstr(err, "not a JSON object"));
  free(err);
}

static void test_text_mode(void **state) {
  (void)state;
  llm_solution s;
  char *err = NULL;
  const char *answer =
      "This reads the file.\n\n"
      "```python\n"
      "import csv\n"
      "# plotting\n"
      "from collections import (\n"
      "    Counter,\n"
      "    defaultdict)\n"
      "import os, \\\n"
      "    sys\n"
      "\n"
      "def main():\n"
      "    import json\n"
      "    print(1)\n"
      "```\n"
      "Done.\n";
  assert_int_equal(llm_solution_parse(answer, LLM_MODE_TEXT, &s, &err), 0);
  assert_string_equal(s.prefix, "This reads the file.");
  assert_string_equal(s.imports,
                      "import csv\n# plotting\nfrom collections import (\n    Counter,\n    defaultdict)\nimport os, \\\n    sys");
  assert_string_equal(s.code, "def main():\n    import json\n    print(1)");
  llm_solution_close(&s);
}

static void test_text_errors_and_fallback(void **state) {
  (void)state;
  llm_solution s;
  char *err = NULL;
  assert_int_equal(llm_solution_parse("just words", LLM_MODE_TEXT, &s, &err), -EINVAL);
  assert_non_null(strstr(err, "no fenced code block"));
  free(err);
  /* a JSON-mode answer that came back as fenced text is still used */
  assert_int_equal(llm_solution_parse("Hi\n```\nprint(2)\n```", LLM_MODE_JSON_OBJECT, &s, &err), 0);
  assert_string_equal(s.code, "print(2)");
  assert_string_equal(s.imports, "");
  llm_solution_close(&s);
}

static void test_dependencies(void **state) {
  (void)state;
  llm_solution s;
  char *err = NULL;
  /* JSON: optional array; each kept as written (trimmed), empty ones dropped */
  assert_int_equal(llm_solution_parse("{\"prefix\":\"p\",\"imports\":\"import zf\",\"code\":\"zf.go()\","
                                      "\"dependencies\":[\" zorblax-flux>=1 \",\"\",\"rich\"]}",
                                      LLM_MODE_JSON_SCHEMA, &s, &err), 0);
  assert_int_equal(s.n_dependencies, 2);
  assert_string_equal(s.dependencies[0], "zorblax-flux>=1");
  assert_string_equal(s.dependencies[1], "rich");
  llm_solution_close(&s);
  assert_int_equal(llm_solution_parse("{\"prefix\":\"p\",\"imports\":\"\",\"code\":\"x\",\"dependencies\":null}",
                                      LLM_MODE_JSON_OBJECT, &s, &err), 0);
  assert_int_equal(s.n_dependencies, 0);
  assert_null(s.dependencies);
  llm_solution_close(&s);
  assert_int_equal(llm_solution_parse("{\"prefix\":\"p\",\"imports\":\"\",\"code\":\"x\",\"dependencies\":\"rich\"}",
                                      LLM_MODE_JSON_SCHEMA, &s, &err), -EINVAL);
  assert_non_null(strstr(err, "\"dependencies\" must be an array"));
  free(err);
  assert_int_equal(llm_solution_parse("{\"prefix\":\"p\",\"imports\":\"\",\"code\":\"x\",\"dependencies\":[1]}",
                                      LLM_MODE_JSON_SCHEMA, &s, &err), -EINVAL);
  free(err);
  /* text: a fenced requirements list next to the code */
  const char *answer = "Uses the library.\n```requirements\n# needed\nzorblax-flux>=1\n\nrich  # pretty\n```\n"
                       "```python\nimport zorblax_flux\nprint(zorblax_flux.go())\n```\n";
  assert_int_equal(llm_solution_parse(answer, LLM_MODE_TEXT, &s, &err), 0);
  assert_string_equal(s.code, "print(zorblax_flux.go())");
  assert_int_equal(s.n_dependencies, 2);
  assert_string_equal(s.dependencies[0], "zorblax-flux>=1");
  assert_string_equal(s.dependencies[1], "rich");
  llm_solution_close(&s);
  assert_int_equal(llm_solution_parse("```python\nprint(1)\n```\n```pip\npip install a b\n```", LLM_MODE_TEXT, &s,
                                      &err), 0);
  assert_int_equal(s.n_dependencies, 2);
  assert_string_equal(s.dependencies[1], "b");
  llm_solution_close(&s);
  /* a fenced text answer in a JSON mode (the fallback) keeps its list too */
  assert_int_equal(llm_solution_parse("Hi\n```python\nprint(2)\n```\n```requirements.txt\nrich\n```",
                                      LLM_MODE_JSON_OBJECT, &s, &err), 0);
  assert_int_equal(s.n_dependencies, 1);
  llm_solution_close(&s);
}

static void test_fence_choice(void **state) {
  (void)state;
  char *code = NULL, *before = NULL;
  assert_int_equal(llm_fenced_code_extract("a\n```bash\nls\n```\nb\n```python\nx=1\n```\n", &code, &before), 0);
  assert_string_equal(code, "x=1");
  assert_string_equal(before, "a\n```bash\nls\n```\nb");
  free(code);
  free(before);
  /* only a bash block: it is used */
  assert_int_equal(llm_fenced_code_extract("```sh\nls -l\n```", &code, NULL), 0);
  assert_string_equal(code, "ls -l");
  free(code);
  /* unclosed fence (truncated answer) runs to the end; longer closing fences close */
  assert_int_equal(llm_fenced_code_extract("~~~~\nx\n~~~\ny\n", &code, NULL), 0);
  assert_string_equal(code, "x\n~~~\ny");
  free(code);
  assert_int_equal(llm_fenced_code_extract("```py\n  indented\n````\n", &code, NULL), 0);
  assert_string_equal(code, "  indented");
  free(code);
  assert_int_equal(llm_fenced_code_extract("no fences ``inline`` here", &code, NULL), -ENOENT);
}

static void test_imports_split_none(void **state) {
  (void)state;
  char *imports, *rest;
  llm_imports_split("x = 1\nimport os\n", &imports, &rest);
  assert_string_equal(imports, "");
  assert_string_equal(rest, "x = 1\nimport os");
  free(imports);
  free(rest);
  llm_imports_split("# header\nfrom a import b\nprint(b)", &imports, &rest);
  assert_string_equal(imports, "# header\nfrom a import b");
  assert_string_equal(rest, "print(b)");
  free(imports);
  free(rest);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json_ok),
      cmocka_unit_test(test_json_wrapped),
      cmocka_unit_test(test_json_errors),
      cmocka_unit_test(test_text_mode),
      cmocka_unit_test(test_text_errors_and_fallback),
      cmocka_unit_test(test_dependencies),
      cmocka_unit_test(test_fence_choice),
      cmocka_unit_test(test_imports_split_none),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
