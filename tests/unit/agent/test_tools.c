/* Unit tests of the documentation tools an ask offers the model
 * (agent/tools.c over docs/tools.c): a real docs cache of a local folder,
 * searched and read within the sources, the call and token bounds, bad
 * calls answered with an error result. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <uv.h>

#include "common.h"
#include "dbuf.h"
#include "docs_fixture.h"
#include "tmpdir.h"
#include "tools.h"

typedef struct fixture {
  tu_docs d;
  char other[300];
} fixture;

static int setup(void **state) {
  fixture *f = xcalloc(1, sizeof *f);
  tu_docs_init(&f->d, "agent-tools");
  snprintf(f->other, sizeof f->other, "%s/other", f->d.dir);
  assert_int_equal(mkdir(f->other, 0700), 0);
  tu_write_file(f->d.docs, "widgets.md",
                "# Widgets\n\nAbout widgets.\n\n## Frobnicate\n\nCall `frobnicate_widget(level=N)`.\n\n"
                "## Polish\n\nCall `polish_widget()`.\n");
  dbuf d;
  dbuf_init(&d, 0);
  dbuf_adds(&d, "# Long\n\n");
  for (int i = 0; i < 10; i++) {
    dbuf_addf(&d, "## Part %d\n\n", i);
    for (int k = 0; k < 30; k++) dbuf_adds(&d, "lorem ipsum dolor sit amet ");
    dbuf_adds(&d, "\n\n");
  }
  tu_write_file(f->d.docs, "long.md", d.data);
  dbuf_close(&d);
  tu_write_file(f->other, "vault.md", "# Vault\n\n## Combination\n\nThe frobnicate combination is 4-8-15.\n");
  tu_docs_sync_folder(f->d.store, f->d.docs);
  tu_docs_sync_folder(f->d.store, f->other);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  tu_docs_close(&f->d);
  free(f);
  return 0;
}

static void run(fixture *f, const char *name, const char *args, agent_tool_bounds *b, agent_tool_outcome *o) {
  const char *src[] = {f->d.docs};
  agent_tool_run(f->d.store, src, 1, name, args, b, o);
  assert_non_null(o->content);
  assert_non_null(o->argument);
}

/* A search lists this source's sections with their URLs, never another's. */
static void search_within_sources(void **state) {
  fixture *f = *state;
  agent_tool_bounds b = {.tokens_max = 8000};
  agent_tool_outcome o;
  run(f, "docs_search", "{\"query\":\"frobnicate\"}", &b, &o);
  assert_null(o.error);
  assert_string_equal(o.argument, "frobnicate");
  assert_non_null(strstr(o.content, "Widgets — Frobnicate"));
  assert_non_null(strstr(o.content, "/docs/widgets.md"));
  assert_null(strstr(o.content, "Vault"));
  assert_int_equal(b.calls, 1);
  assert_int_equal(b.tokens, o.tokens);
  assert_true(o.tokens > 0 && o.tokens < 100);
  agent_tool_outcome_close(&o);
}

/* A read from a section; a page of another source, or none, is refused. */
static void read_page_and_refusals(void **state) {
  fixture *f = *state;
  agent_tool_bounds b = {.tokens_max = 8000};
  agent_tool_outcome o;
  char args[600];
  snprintf(args, sizeof args, "{\"url\":\"%s/widgets.md\",\"section\":\"polish\"}", f->d.docs);
  run(f, "docs_read", args, &b, &o);
  assert_null(o.error);
  assert_non_null(strstr(o.content, "# Widgets\nSource: "));
  assert_non_null(strstr(o.content, "polish_widget()"));
  assert_null(strstr(o.content, "frobnicate_widget")); /* read from the section asked for */
  assert_string_equal(o.page_title, "Widgets");
  assert_non_null(strstr(o.argument, "widgets.md#polish"));
  agent_tool_outcome_close(&o);

  snprintf(args, sizeof args, "{\"url\":\"%s/vault.md\"}", f->other);
  run(f, "docs_read", args, &b, &o);
  assert_non_null(o.error);
  assert_null(strstr(o.content, "4-8-15"));
  assert_int_equal(o.tokens, 0);
  assert_false(o.bounded);
  agent_tool_outcome_close(&o);

  snprintf(args, sizeof args, "{\"url\":\"%s/missing.md\"}", f->d.docs);
  run(f, "docs_read", args, &b, &o);
  assert_non_null(strstr(o.error, "not an indexed page"));
  agent_tool_outcome_close(&o);

  run(f, "docs_read", "{\"page\":1}", &b, &o);
  assert_non_null(strstr(o.error, "\"url\""));
  agent_tool_outcome_close(&o);
  agent_tool_bounds fresh = {.tokens_max = 8000}; /* b has had its 4 calls */
  run(f, "code_solution", "{}", &fresh, &o);
  assert_non_null(strstr(o.error, "no tool"));
  agent_tool_outcome_close(&o);
}

/* The 5th call of an attempt and a call with the tokens spent are refused
 * with "answer now"; a long result is cut at the tokens left. */
static void bounds(void **state) {
  fixture *f = *state;
  agent_tool_bounds b = {.tokens_max = 8000};
  agent_tool_outcome o;
  for (int i = 0; i < AGENT_TOOL_CALLS_PER_ATTEMPT; i++) {
    run(f, "docs_search", "{\"query\":\"widget\"}", &b, &o);
    assert_null(o.error);
    agent_tool_outcome_close(&o);
  }
  run(f, "docs_search", "{\"query\":\"widget\"}", &b, &o);
  assert_true(o.bounded);
  assert_non_null(strstr(o.content, "answer now"));
  assert_int_equal(b.calls, AGENT_TOOL_CALLS_PER_ATTEMPT);
  agent_tool_outcome_close(&o);

  char args[600];
  snprintf(args, sizeof args, "{\"url\":\"%s/long.md\"}", f->d.docs);
  agent_tool_bounds big = {.tokens_max = 8000};
  run(f, "docs_read", args, &big, &o);
  assert_true(o.tokens <= AGENT_TOOL_READ_TOKENS + 60 && o.tokens > AGENT_TOOL_READ_TOKENS / 2);
  assert_non_null(strstr(o.content, "[cut: about"));
  assert_non_null(strstr(o.content, "\"Part ")); /* the sections after the cut */
  agent_tool_outcome_close(&o);

  agent_tool_bounds small = {.tokens_max = 100};
  run(f, "docs_read", args, &small, &o);
  assert_null(o.error);
  assert_true(o.tokens <= 100 && o.tokens >= 95);
  assert_int_equal(small.tokens, o.tokens);
  agent_tool_outcome_close(&o);
  small.tokens = small.tokens_max;
  run(f, "docs_read", args, &small, &o);
  assert_true(o.bounded);
  assert_non_null(strstr(o.error, "spent"));
  assert_int_equal(o.tokens, 0);
  agent_tool_outcome_close(&o);
}

static void definitions(void **state) {
  (void)state;
  cJSON *t = cJSON_Parse(agent_tools_json());
  assert_int_equal(cJSON_GetArraySize(t), 2);
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(t, 0), "function"), "name")
                          ->valuestring, "docs_search");
  cJSON_Delete(t);
  assert_true(agent_tool_known("docs_read"));
  assert_false(agent_tool_known("code_solution"));
  assert_int_equal(agent_tool_tokens_max(6000), 8000);
  assert_int_equal(agent_tool_tokens_max(0), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(definitions),
      cmocka_unit_test_setup_teardown(search_within_sources, setup, teardown),
      cmocka_unit_test_setup_teardown(read_page_and_refusals, setup, teardown),
      cmocka_unit_test_setup_teardown(bounds, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
