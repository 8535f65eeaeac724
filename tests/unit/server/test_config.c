/* Unit tests of the settings schema: types, ranges, layers, and what a
 * client (workspace) may not change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"

static int apply_text(cfg *c, const char *json, cfg_source src, const cfg *base, dbuf *msgs) {
  cJSON *j = cJSON_Parse(json);
  assert_non_null(j);
  int errors = cfg_apply(c, j, src, base, msgs);
  cJSON_Delete(j);
  return errors;
}

static void defaults_and_env(void **state) {
  setenv("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1", 1);
  setenv("CRUCIBLE_MODEL", "llama3", 1);
  cfg c;
  cfg_init(&c);
  assert_string_equal(c.llm.base_url, "http://127.0.0.1:11434/v1");
  assert_string_equal(c.llm.model, "llama3");
  assert_int_equal(c.agent.max_iterations, 3);
  assert_true(c.agent.reflect);
  assert_int_equal(c.agent.import_check, CFG_IMPORT_CHECK_STATIC);
  assert_false(c.sandbox.network);
  cfg_close(&c);
  unsetenv("OPENAI_BASE_URL");
  unsetenv("CRUCIBLE_MODEL");
  cfg_init(&c);
  assert_string_equal(c.llm.base_url, "https://api.openai.com/v1");
  cfg_close(&c);
}

static void wrong_types_name_the_key(void **state) {
  cfg c;
  cfg_init(&c);
  dbuf m;
  dbuf_init(&m, 0);
  int errors = apply_text(&c, "{\"agent\":{\"maxIterations\":\"five\",\"reflect\":1},\"llm\":{\"temperature\":9}}",
                          CFG_SOURCE_USER, NULL, &m);
  assert_int_equal(errors, 3);
  assert_non_null(strstr(m.data, "agent.maxIterations: expected an integer, got a string"));
  assert_non_null(strstr(m.data, "agent.reflect: expected a boolean"));
  assert_non_null(strstr(m.data, "llm.temperature: 9 is out of range"));
  assert_int_equal(c.agent.max_iterations, 3); /* old values stay */
  assert_true(c.agent.reflect);
  dbuf_close(&m);
  cfg_close(&c);
}

static void unknown_keys_warned(void **state) {
  cfg c;
  cfg_init(&c);
  dbuf m;
  dbuf_init(&m, 0);
  int errors = apply_text(&c, "{\"llm\":{\"modle\":\"x\"},\"extra\":{}}", CFG_SOURCE_USER, NULL, &m);
  assert_int_equal(errors, 0);
  assert_non_null(strstr(m.data, "warning: unknown setting 'llm.modle' ignored"));
  assert_non_null(strstr(m.data, "warning: unknown setting 'extra' ignored"));
  dbuf_close(&m);
  cfg_close(&c);
}

static void enums_integers_and_nesting(void **state) {
  cfg c;
  cfg_init(&c);
  dbuf m;
  dbuf_init(&m, 0);
  assert_int_equal(apply_text(&c, "{\"agent\":{\"importCheck\":\"sometimes\"}}", CFG_SOURCE_USER, NULL, &m), 1);
  assert_non_null(strstr(m.data, "'sometimes' is not one of 'static' 'run' 'both'"));
  assert_int_equal(apply_text(&c, "{\"agent\":{\"maxIterations\":2.5}}", CFG_SOURCE_USER, NULL, &m), 1);
  assert_int_equal(apply_text(&c, "{\"sandbox\":{\"interpreters\":{\"python\":\"/usr/bin/python3.11\"}},"
                                  "\"docs\":{\"sources\":[\"https://docs.python.org/3/\",\"/srv/docs\"]}}",
                              CFG_SOURCE_USER, NULL, &m),
                   0);
  assert_string_equal(c.sandbox.interpreters[LANG_PYTHON], "/usr/bin/python3.11");
  assert_int_equal(c.docs.sources.n, 2);
  assert_string_equal(c.docs.sources.items[1], "/srv/docs");
  /* a copy owns its strings */
  cfg d;
  cfg_copy(&d, &c);
  cfg_close(&c);
  assert_string_equal(d.docs.sources.items[0], "https://docs.python.org/3/");
  cfg_close(&d);
  dbuf_close(&m);
}

/* Enumerated settings are stored as enums; their names appear only in the
 * JSON, read and written through one table each. */
static void enum_settings_are_enums(void **state) {
  cfg c;
  cfg_init(&c);
  assert_int_equal(c.llm.structured_output, CFG_STRUCTURED_AUTO);
  assert_int_equal(c.sandbox.backend, CFG_BACKEND_BWRAP);
  assert_int_equal(c.docs.mode, CFG_DOCS_SEARCH);
  dbuf m;
  dbuf_init(&m, 0);
  assert_int_equal(apply_text(&c, "{\"llm\":{\"structuredOutput\":\"json_object\"},\"agent\":{\"importCheck\":\"both\"},"
                                  "\"docs\":{\"mode\":\"all\"}}",
                              CFG_SOURCE_USER, NULL, &m),
                   0);
  assert_int_equal(c.llm.structured_output, CFG_STRUCTURED_JSON_OBJECT);
  assert_int_equal(c.agent.import_check, CFG_IMPORT_CHECK_BOTH);
  assert_int_equal(c.docs.mode, CFG_DOCS_ALL);
  /* a bad name leaves the value as it was */
  assert_int_equal(apply_text(&c, "{\"docs\":{\"mode\":\"some\"}}", CFG_SOURCE_USER, NULL, &m), 1);
  assert_non_null(strstr(m.data, "docs.mode: 'some' is not one of 'search' 'all'"));
  assert_int_equal(c.docs.mode, CFG_DOCS_ALL);
  cJSON *j = cfg_to_json(&c);
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "llm"), "structuredOutput")->valuestring,
                      "json_object");
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "agent"), "importCheck")->valuestring, "both");
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "sandbox"), "backend")->valuestring, "bwrap");
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "docs"), "mode")->valuestring, "all");
  cJSON_Delete(j);
  /* each table reads back what it writes, and nothing else */
  static const char *const so[] = {"auto", "json_schema", "json_object", "text"};
  for (int i = 0; i < 4; i++) {
    cfg_structured_output v;
    assert_int_equal(cfg_structured_output_parse(so[i], &v), 0);
    assert_int_equal(v, i);
    assert_string_equal(cfg_structured_output_name(v), so[i]);
  }
  static const char *const ic[] = {"static", "run", "both"};
  for (int i = 0; i < 3; i++) {
    cfg_import_check v;
    assert_int_equal(cfg_import_check_parse(ic[i], &v), 0);
    assert_string_equal(cfg_import_check_name(v), ic[i]);
  }
  cfg_docs_mode dm;
  cfg_backend be;
  assert_int_equal(cfg_docs_mode_parse("search", &dm), 0);
  assert_int_equal(dm, CFG_DOCS_SEARCH);
  assert_int_equal(cfg_backend_parse("bwrap", &be), 0);
  assert_int_not_equal(cfg_docs_mode_parse("Search", &dm), 0);
  assert_int_not_equal(cfg_import_check_parse("", &(cfg_import_check){0}), 0);
  assert_int_equal(cfg_backend_parse("docker", &be), 0);
  assert_int_equal(be, CFG_BACKEND_DOCKER);
  assert_int_not_equal(cfg_backend_parse("podman", &be), 0);
  assert_null(cfg_docs_mode_name((cfg_docs_mode)2));
  dbuf_close(&m);
  cfg_close(&c);
}

static void client_may_tighten_not_loosen(void **state) {
  cfg base, c;
  cfg_init(&base);
  base.sandbox.memory_mb = 256;
  cfg_copy(&c, &base);
  dbuf m;
  dbuf_init(&m, 0);
  int errors = apply_text(&c,
                          "{\"sandbox\":{\"memoryMb\":128,\"timeoutMs\":999999,\"network\":true},"
                          "\"llm\":{\"baseUrl\":\"http://evil.example/v1\",\"apiKeyEnv\":\"HOME\",\"model\":\"m2\"}}",
                          CFG_SOURCE_CLIENT, &base, &m);
  assert_int_equal(errors, 4);
  assert_int_equal(c.sandbox.memory_mb, 128);
  assert_int_equal(c.sandbox.timeout_ms, base.sandbox.timeout_ms);
  assert_false(c.sandbox.network);
  assert_string_equal(c.llm.base_url, base.llm.base_url);
  assert_string_equal(c.llm.api_key_env, "OPENAI_API_KEY");
  assert_string_equal(c.llm.model, "m2");
  assert_non_null(strstr(m.data, "llm.baseUrl can only be set in the user config file"));
  assert_non_null(strstr(m.data, "sandbox.timeoutMs: a workspace may lower this limit"));
  /* the user file may do all of it except network */
  dbuf_reset(&m);
  errors = apply_text(&c, "{\"sandbox\":{\"timeoutMs\":60000,\"network\":true},\"llm\":{\"baseUrl\":\"http://x/v1\"}}",
                      CFG_SOURCE_USER, NULL, &m);
  assert_int_equal(errors, 1);
  assert_int_equal(c.sandbox.timeout_ms, 60000);
  assert_string_equal(c.llm.base_url, "http://x/v1");
  dbuf_close(&m);
  cfg_close(&c);
  cfg_close(&base);
}

static void client_may_not_raise_costs(void **state) {
  cfg base, c;
  cfg_init(&base);
  base.llm.max_retries = 4;
  cfg_copy(&c, &base);
  dbuf m;
  dbuf_init(&m, 0);
  int errors = apply_text(&c,
                          "{\"agent\":{\"maxIterations\":10},\"llm\":{\"maxRetries\":3,\"timeoutMs\":999999},"
                          "\"docs\":{\"maxPages\":9999,\"maxDepth\":99,\"budgetTokens\":99999,"
                          "\"allowLocal\":true,\"allowPrivateNetwork\":true}}",
                          CFG_SOURCE_CLIENT, &base, &m);
  assert_int_equal(errors, 7);
  assert_int_equal(c.agent.max_iterations, 3);
  assert_int_equal(c.llm.max_retries, 3); /* lowered: fine */
  assert_int_equal(c.llm.timeout_ms, 120000);
  assert_int_equal(c.docs.max_pages, CFG_DEFAULT_DOCS_MAX_PAGES);
  assert_int_equal(c.docs.max_depth, 20);
  assert_int_equal(c.docs.budget_tokens, 6000);
  assert_false(c.docs.allow_local);
  assert_false(c.docs.allow_private_network);
  assert_non_null(strstr(m.data, "agent.maxIterations: a workspace may lower this limit (user setting 3)"));
  assert_non_null(strstr(m.data, "docs.allowPrivateNetwork can only be set in the user config file"));
  /* a model change is applied and warned about; the same model is silent */
  dbuf_reset(&m);
  assert_int_equal(apply_text(&c, "{\"llm\":{\"model\":\"big-model\"}}", CFG_SOURCE_CLIENT, &base, &m), 0);
  assert_string_equal(c.llm.model, "big-model");
  assert_non_null(strstr(m.data, "warning: llm.model"));
  dbuf_reset(&m);
  char same[600];
  snprintf(same, sizeof same, "{\"llm\":{\"model\":\"%s\"}}", base.llm.model);
  assert_int_equal(apply_text(&c, same, CFG_SOURCE_CLIENT, &base, &m), 0);
  assert_int_equal(m.len, 0);
  dbuf_close(&m);
  cfg_close(&c);
  cfg_close(&base);
}

/* The container engine settings: the user file picks them, a client never
 * (an engine is a host's resource, and a client-named image could be any). */
static void docker_settings_user_file_only(void **state) {
  (void)state;
  cfg base, c;
  cfg_init(&base);
  assert_int_equal(base.sandbox.backend, CFG_BACKEND_BWRAP);
  assert_string_equal(base.sandbox.image, CFG_DEFAULT_SANDBOX_IMAGE);
  assert_int_equal(base.sandbox.docker_hosts.n, 0);
  dbuf m;
  dbuf_init(&m, 0);
  assert_int_equal(apply_text(&base,
                              "{\"sandbox\":{\"backend\":\"docker\",\"image\":\"team:1\","
                              "\"docker\":{\"hosts\":[\"unix:///run/a.sock\",\"unix:///run/b.sock\"]}}}",
                              CFG_SOURCE_USER, NULL, &m),
                   0);
  assert_int_equal(base.sandbox.backend, CFG_BACKEND_DOCKER);
  assert_string_equal(base.sandbox.image, "team:1");
  assert_int_equal(base.sandbox.docker_hosts.n, 2);
  assert_string_equal(base.sandbox.docker_hosts.items[1], "unix:///run/b.sock");
  cfg_copy(&c, &base);
  int errors = apply_text(&c,
                          "{\"sandbox\":{\"backend\":\"bwrap\",\"image\":\"evil:1\","
                          "\"docker\":{\"hosts\":[\"unix:///tmp/evil.sock\"]}}}",
                          CFG_SOURCE_CLIENT, &base, &m);
  assert_int_equal(errors, 3);
  assert_int_equal(c.sandbox.backend, CFG_BACKEND_DOCKER);
  assert_string_equal(c.sandbox.image, "team:1");
  assert_string_equal(c.sandbox.docker_hosts.items[0], "unix:///run/a.sock");
  assert_non_null(strstr(m.data, "sandbox.image can only be set in the user config file"));
  dbuf_close(&m);
  cfg_close(&c);
  cfg_close(&base);
}

static void json_never_holds_the_key(void **state) {
  setenv("OPENAI_API_KEY", "sk-unit-secret", 1);
  cfg c;
  cfg_init(&c);
  cJSON *j = cfg_to_json(&c);
  char *s = cJSON_PrintUnformatted(j);
  assert_null(strstr(s, "sk-unit-secret"));
  assert_non_null(strstr(s, "\"apiKeySet\":true"));
  cJSON_free(s);
  cJSON_Delete(j);
  cfg_close(&c);
  unsetenv("OPENAI_API_KEY");
}

/* sandbox.environment: an EnvSpec (string or object) any source may set;
 * the package indexes, the cache cap and workspace access only the user. */
static void environment_settings(void **state) {
  cfg base, c;
  cfg_init(&base);
  assert_string_equal(base.sandbox.environment, "\"system\"");
  assert_string_equal(base.sandbox.package_index, "https://pypi.org/simple");
  assert_int_equal(base.sandbox.workspace_access, CFG_WORKSPACE_NONE);
  cfg_copy(&c, &base);
  dbuf m;
  dbuf_init(&m, 0);
  int errors = apply_text(&c,
                          "{\"sandbox\":{\"environment\":{\"kind\":\"packages\",\"requirements\":[\"tinypkg\"]},"
                          "\"packageIndex\":\"http://evil.example/simple\",\"npmRegistry\":\"http://evil.example/\","
                          "\"envCacheMb\":1,\"workspaceAccess\":\"read\"}}",
                          CFG_SOURCE_CLIENT, &base, &m);
  assert_int_equal(errors, 4);
  assert_string_equal(c.sandbox.environment, "{\"kind\":\"packages\",\"requirements\":[\"tinypkg\"]}");
  assert_string_equal(c.sandbox.package_index, base.sandbox.package_index);
  assert_int_equal(c.sandbox.workspace_access, CFG_WORKSPACE_NONE);
  assert_non_null(strstr(m.data, "sandbox.packageIndex can only be set in the user config file"));
  dbuf_reset(&m);
  errors = apply_text(&c,
                      "{\"sandbox\":{\"environment\":\"workspace\",\"packageIndex\":\"https://u:tok@idx.example/simple\","
                      "\"envCacheMb\":100,\"workspaceAccess\":\"read\"}}",
                      CFG_SOURCE_USER, NULL, &m);
  assert_int_equal(errors, 0);
  assert_string_equal(c.sandbox.environment, "\"workspace\"");
  assert_int_equal(c.sandbox.env_cache_mb, 100);
  assert_int_equal(c.sandbox.workspace_access, CFG_WORKSPACE_READ);
  errors = apply_text(&c, "{\"sandbox\":{\"environment\":42,\"workspaceAccess\":\"write\"}}", CFG_SOURCE_USER,
                      NULL, &m);
  assert_int_equal(errors, 2);
  assert_non_null(strstr(m.data, "sandbox.environment: expected a string or an object"));
  /* the token in the index URL never shows */
  cJSON *j = cfg_to_json(&c);
  char *text = cJSON_PrintUnformatted(j);
  assert_null(strstr(text, "tok"));
  assert_non_null(strstr(text, "\"packageIndex\":\"https://idx.example/simple\""));
  assert_non_null(strstr(text, "\"environment\":\"workspace\""));
  free(text);
  cJSON_Delete(j);
  dbuf_close(&m);
  cfg_close(&c);
  cfg_close(&base);
}

/* Every registry language (util/lang.h) has its sandbox.interpreters.<name>
 * setting, defaults to the registry's interpreter and is shown by name. */
static void interpreters_follow_the_language_registry(void **state) {
  cfg c;
  cfg_init(&c);
  dbuf m;
  dbuf_init(&m, 0);
  cJSON *j = cfg_to_json(&c);
  const cJSON *in = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "sandbox"), "interpreters");
  assert_int_equal(cJSON_GetArraySize(in), LANG_COUNT);
  for (int l = 0; l < LANG_COUNT; l++) {
    const lang_info *li = lang_get((lang_id)l);
    assert_string_equal(c.sandbox.interpreters[l], li->interpreter);
    assert_string_equal(cJSON_GetObjectItem(in, li->name)->valuestring, li->interpreter);
    char text[200], want[64];
    snprintf(want, sizeof want, "/usr/local/bin/%s-test", li->name);
    snprintf(text, sizeof text, "{\"sandbox\":{\"interpreters\":{\"%s\":\"%s\"}}}", li->name, want);
    assert_int_equal(apply_text(&c, text, CFG_SOURCE_USER, NULL, &m), 0);
    assert_string_equal(c.sandbox.interpreters[l], want);
    /* user file only */
    assert_int_equal(apply_text(&c, text, CFG_SOURCE_CLIENT, &c, &m), 1);
  }
  assert_null(strstr(m.data, "warning"));
  cJSON_Delete(j);
  dbuf_close(&m);
  cfg_close(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(defaults_and_env),        cmocka_unit_test(wrong_types_name_the_key),
      cmocka_unit_test(unknown_keys_warned),     cmocka_unit_test(enums_integers_and_nesting),
      cmocka_unit_test(enum_settings_are_enums),
      cmocka_unit_test(client_may_tighten_not_loosen), cmocka_unit_test(json_never_holds_the_key),
      cmocka_unit_test(client_may_not_raise_costs), cmocka_unit_test(environment_settings),
      cmocka_unit_test(docker_settings_user_file_only),
      cmocka_unit_test(interpreters_follow_the_language_registry),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
