/* Unit tests for the wire format: request bodies, stream chunks, error bodies, retry policy. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "openai.h"

static const llm_message MSGS[] = {{.role = "system", .content = "Be brief."}, {.role = "user", .content = "hi \"there\""}};

static void test_body_json_schema(void **state) {
  (void)state;
  char *s = llm_body_build("m1", 0.2, MSGS, 2, true, LLM_MODE_JSON_SCHEMA, true);
  cJSON *j = cJSON_Parse(s);
  assert_non_null(j);
  assert_string_equal(cJSON_GetObjectItem(j, "model")->valuestring, "m1");
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "stream")));
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "stream_options"), "include_usage")));
  assert_true(cJSON_GetObjectItem(j, "temperature")->valuedouble > 0.19);
  cJSON *msgs = cJSON_GetObjectItem(j, "messages");
  assert_int_equal(cJSON_GetArraySize(msgs), 2);
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 1), "content")->valuestring, "hi \"there\"");
  cJSON *rf = cJSON_GetObjectItem(j, "response_format");
  assert_string_equal(cJSON_GetObjectItem(rf, "type")->valuestring, "json_schema");
  cJSON *js = cJSON_GetObjectItem(rf, "json_schema");
  assert_string_equal(cJSON_GetObjectItem(js, "name")->valuestring, "code_solution");
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(js, "strict")));
  cJSON *schema = cJSON_GetObjectItem(js, "schema");
  assert_true(cJSON_IsFalse(cJSON_GetObjectItem(schema, "additionalProperties")));
  cJSON *req = cJSON_GetObjectItem(schema, "required");
  assert_int_equal(cJSON_GetArraySize(req), 5); /* strict mode: the optional test is required, "" when none */
  assert_string_equal(cJSON_GetArrayItem(req, 3)->valuestring, "test");
  assert_string_equal(cJSON_GetArrayItem(req, 2)->valuestring, "code");
  assert_string_equal(cJSON_GetArrayItem(req, 4)->valuestring, "dependencies");
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(schema, "properties"),
                                                              "dependencies"), "type")->valuestring, "array");
  assert_string_equal(
      cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(schema, "properties"), "prefix"), "type")->valuestring,
      "string");
  cJSON_Delete(j);
  free(s);
}

static void test_body_other_modes(void **state) {
  (void)state;
  char *s = llm_body_build("m", -1, MSGS, 2, true, LLM_MODE_JSON_OBJECT, true);
  cJSON *j = cJSON_Parse(s);
  assert_null(cJSON_GetObjectItem(j, "temperature"));
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "response_format"), "type")->valuestring,
                      "json_object");
  cJSON *msgs = cJSON_GetObjectItem(j, "messages");
  assert_int_equal(cJSON_GetArraySize(msgs), 2); /* the schema joins the existing system message */
  const char *sys = cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 0), "content")->valuestring;
  assert_true(strncmp(sys, "Be brief.", 9) == 0);
  assert_non_null(strstr(sys, "\"imports\""));
  cJSON_Delete(j);
  free(s);

  s = llm_body_build("m", -1, MSGS + 1, 1, true, LLM_MODE_TEXT, false);
  j = cJSON_Parse(s);
  assert_null(cJSON_GetObjectItem(j, "response_format"));
  assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "stream")));
  msgs = cJSON_GetObjectItem(j, "messages");
  assert_int_equal(cJSON_GetArraySize(msgs), 2); /* a system message was opened */
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 0), "role")->valuestring, "system");
  assert_non_null(strstr(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 0), "content")->valuestring, "```"));
  cJSON_Delete(j);
  free(s);

  s = llm_body_build("m", -1, MSGS, 2, false, LLM_MODE_JSON_SCHEMA, true);
  j = cJSON_Parse(s);
  assert_null(cJSON_GetObjectItem(j, "response_format"));
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "messages"), 0), "content")->valuestring,
                      "Be brief.");
  cJSON_Delete(j);
  free(s);
}

static int add(llm_answer *a, const char *data, char **err, const char **delta, size_t *dlen) {
  return llm_answer_add_chunk(a, data, strlen(data), delta, dlen, err);
}

static void test_chunks(void **state) {
  (void)state;
  llm_answer a;
  llm_answer_init(&a, 1000);
  const char *d;
  size_t n;
  char *err = NULL;
  assert_int_equal(add(&a, "{\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}", &err, &d, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(add(&a, "{\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}", &err, &d, &n), 0);
  assert_int_equal(n, 3);
  assert_memory_equal(d, "Hel", 3);
  assert_int_equal(add(&a, "{\"choices\":[{\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}", &err, &d, &n), 0);
  assert_int_equal(add(&a, "{\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3}}", &err, &d, &n), 0);
  assert_int_equal(add(&a, "{\"choices\":null,\"usage\":{\"prompt_tokens\":13,\"completion_tokens\":4}}", &err, &d, &n), 0);
  assert_int_equal(add(&a, " [DONE] ", &err, &d, &n), 1);
  assert_true(a.done);
  assert_string_equal(llm_answer_text(&a), "Hello");
  assert_string_equal(a.finish_reason, "stop");
  assert_int_equal(a.prompt_tokens, 13);
  assert_int_equal(a.completion_tokens, 4);
  llm_answer_close(&a);
}

static void test_chunk_errors(void **state) {
  (void)state;
  llm_answer a;
  llm_answer_init(&a, 8);
  const char *d;
  size_t n;
  char *err = NULL;
  assert_int_equal(add(&a, "{\"error\":{\"message\":\"model overloaded\",\"type\":\"server_error\"}}", &err, &d, &n),
                   -EREMOTEIO);
  assert_string_equal(err, "model overloaded");
  free(err);
  assert_int_equal(add(&a, "\x01\xff not json", &err, &d, &n), -EPROTO);
  assert_non_null(strstr(err, "not json"));
  assert_null(strchr(err, 0x01)); /* controls never reach error text */
  free(err);
  assert_int_equal(add(&a, "{\"choices\":[{\"delta\":{\"content\":\"0123456789\"}}]}", &err, &d, &n), -E2BIG);
  free(err);
  llm_answer_close(&a);
}

/* Two calls streamed in fragments, interleaved by "index" (OpenAI's
 * parallel tool calls): each keeps its id, name and arguments; they go back
 * as an assistant message's tool_calls, answered by tool messages. */
static void test_parallel_tool_calls(void **state) {
  (void)state;
  llm_answer a;
  llm_answer_init(&a, 1000);
  const char *d;
  size_t n;
  char *err = NULL;
  assert_int_equal(add(&a, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"function\":"
                           "{\"name\":\"docs_search\",\"arguments\":\"{\\\"query\\\":\"}}]}}]}", &err, &d, &n), 0);
  assert_int_equal(add(&a, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"c2\",\"function\":"
                           "{\"name\":\"docs_read\",\"arguments\":\"{\\\"url\\\":\"}}]}}]}", &err, &d, &n), 0);
  assert_int_equal(add(&a, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
                           "{\"arguments\":\"\\\"zip\\\"}\"}},{\"index\":1,\"function\":{\"arguments\":\"\\\"u\\\"}\"}}]}}]}",
                       &err, &d, &n), 0);
  assert_int_equal(a.n_calls, 2);
  assert_string_equal(a.calls[0].id, "c1");
  assert_string_equal(a.calls[0].name, "docs_search");
  assert_string_equal(a.calls[0].args.data, "{\"query\":\"zip\"}");
  assert_string_equal(a.calls[1].name, "docs_read");
  assert_string_equal(a.calls[1].args.data, "{\"url\":\"u\"}");
  assert_string_equal(llm_answer_text(&a), "{\"query\":\"zip\"}"); /* the first call's */
  char *calls = llm_answer_calls_json(&a);
  llm_answer_close(&a);
  cJSON *cj = cJSON_Parse(calls);
  assert_int_equal(cJSON_GetArraySize(cj), 2);
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cj, 1), "id")->valuestring, "c2");
  cJSON_Delete(cj);

  llm_message msgs[] = {
      {.role = "user", .content = "q"},
      {.role = "assistant", .content = NULL, .tool_calls = calls},
      {.role = "tool", .content = "result one", .tool_call_id = "c1"},
  };
  char *body = llm_body_build_tools("m", -1, msgs, 3, true, LLM_MODE_JSON_SCHEMA, true,
                                    "[{\"type\":\"function\",\"function\":{\"name\":\"docs_search\"}}]", "none");
  cJSON *b = cJSON_Parse(body);
  cJSON *m = cJSON_GetObjectItem(b, "messages");
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(m, 1), "content")));
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(m, 1), "tool_calls")), 2);
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(m, 2), "tool_call_id")->valuestring, "c1");
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(m, 2), "role")->valuestring, "tool");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(b, "tools")), 1);
  assert_string_equal(cJSON_GetObjectItem(b, "tool_choice")->valuestring, "none");
  assert_non_null(cJSON_GetObjectItem(b, "response_format"));
  cJSON_Delete(b);
  free(body);
  /* no tools: neither key */
  body = llm_body_build_tools("m", -1, msgs, 1, true, LLM_MODE_JSON_SCHEMA, true, NULL, "auto");
  assert_null(strstr(body, "tool"));
  free(body);
  free(calls);
}

static void test_tool_calls_and_body(void **state) {
  (void)state;
  llm_answer a;
  llm_answer_init(&a, 1000);
  const char *d;
  size_t n;
  char *err = NULL;
  assert_int_equal(add(&a, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"name\":\"code_solution\","
                           "\"arguments\":\"{\\\"prefix\\\":\"}}]}}]}", &err, &d, &n), 0);
  assert_int_equal(n, strlen("{\"prefix\":"));
  assert_int_equal(add(&a, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"p\\\"}\"}}]}}]}",
                       &err, &d, &n), 0);
  assert_string_equal(llm_answer_text(&a), "{\"prefix\":\"p\"}");
  assert_string_equal(a.tool_name, "code_solution");
  llm_answer_close(&a);

  llm_answer_init(&a, 1000);
  const char *body = "{\"choices\":[{\"message\":{\"content\":\"whole\"},\"finish_reason\":\"stop\"}],"
                     "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1}}";
  assert_int_equal(llm_answer_set_body(&a, body, strlen(body), &err), 0);
  assert_true(a.done);
  assert_string_equal(llm_answer_text(&a), "whole");
  assert_int_equal(a.prompt_tokens, 5);
  llm_answer_close(&a);

  llm_answer_init(&a, 1000);
  assert_int_equal(llm_answer_set_body(&a, "{\"id\":1}", 8, &err), -EPROTO);
  assert_non_null(strstr(err, "no choices"));
  free(err);
  llm_answer_close(&a);
}

static void test_error_parse(void **state) {
  (void)state;
  char *type, *code;
  const char *b = "{\"error\":{\"message\":\"You exceeded your current quota\",\"type\":\"insufficient_quota\","
                  "\"code\":\"insufficient_quota\"}}";
  char *m = llm_error_parse(b, strlen(b), &type, &code);
  assert_string_equal(m, "You exceeded your current quota");
  assert_string_equal(type, "insufficient_quota");
  assert_string_equal(code, "insufficient_quota");
  free(m), free(type), free(code);
  m = llm_error_parse("{\"detail\":\"Not Found\"}", 22, &type, &code);
  assert_string_equal(m, "Not Found");
  assert_null(type);
  free(m);
  m = llm_error_parse("<html>\nBad gateway</html>\n", 26, &type, &code);
  assert_string_equal(m, "<html>?Bad gateway</html>");
  free(m);
  m = llm_error_parse("", 0, &type, &code);
  assert_string_equal(m, "(empty body)");
  free(m);
  m = llm_error_parse("{\"error\":\"model 'x' not found\"}", 31, &type, &code);
  assert_string_equal(m, "model 'x' not found");
  free(m);
}

static void test_retry_after(void **state) {
  (void)state;
  time_t now = 1700000000; /* Tue, 14 Nov 2023 22:13:20 GMT */
  assert_int_equal(llm_retry_after_ms("1", NULL, now), 1000);
  assert_int_equal(llm_retry_after_ms(" 2 ", NULL, now), 2000);
  assert_int_equal(llm_retry_after_ms("0.5", NULL, now), 500);
  assert_int_equal(llm_retry_after_ms("7", "250", now), 250); /* -ms wins */
  assert_int_equal(llm_retry_after_ms(NULL, "12.2", now), 13);
  assert_int_equal(llm_retry_after_ms("Tue, 14 Nov 2023 22:13:50 GMT", NULL, now), 30000);
  assert_int_equal(llm_retry_after_ms("Tuesday, 14-Nov-23 22:13:25 GMT", NULL, now), 5000);
  assert_int_equal(llm_retry_after_ms("Tue, 14 Nov 2023 22:00:00 GMT", NULL, now), 0); /* past */
  assert_int_equal(llm_retry_after_ms("soon", NULL, now), -1);
  assert_int_equal(llm_retry_after_ms("-3", "x", now), -1);
  assert_int_equal(llm_retry_after_ms(NULL, NULL, now), -1);
  assert_int_equal(llm_retry_after_ms("", "", now), -1);
}

static void test_backoff(void **state) {
  (void)state;
  unsigned rnds[] = {0, 1, 7, 12345, 0xffffffffu, 999999};
  for (int attempt = 0; attempt <= 40; attempt++) {
    long d = 500;
    for (int i = 1; i < attempt; i++) d = d * 2 > 30000 ? 30000 : d * 2;
    for (size_t r = 0; r < sizeof rnds / sizeof rnds[0]; r++) {
      long v = llm_backoff_ms(attempt, 500, 30000, rnds[r]);
      assert_true(v >= d / 2);
      assert_true(v <= d);
      assert_true(v <= 30000);
    }
  }
  /* jitter really varies */
  assert_true(llm_backoff_ms(3, 500, 30000, 0) != llm_backoff_ms(3, 500, 30000, 777));
}

static void test_verdict(void **state) {
  (void)state;
  assert_int_equal(llm_status_verdict(429, "Rate limit reached", "requests", "rate_limit_exceeded"), LLM_RETRY);
  assert_int_equal(llm_status_verdict(429, "quota", "insufficient_quota", NULL), LLM_FATAL);
  assert_int_equal(llm_status_verdict(429, "quota", NULL, "insufficient_quota"), LLM_FATAL);
  assert_int_equal(llm_status_verdict(500, "", NULL, NULL), LLM_RETRY);
  assert_int_equal(llm_status_verdict(502, "", NULL, NULL), LLM_RETRY);
  assert_int_equal(llm_status_verdict(503, "", NULL, NULL), LLM_RETRY);
  assert_int_equal(llm_status_verdict(504, "", NULL, NULL), LLM_RETRY);
  assert_int_equal(llm_status_verdict(401, "Incorrect API key", NULL, NULL), LLM_FATAL);
  assert_int_equal(llm_status_verdict(404, "no model", NULL, NULL), LLM_FATAL);
  assert_int_equal(llm_status_verdict(400, "Invalid parameter: 'response_format' of type 'json_schema'", NULL, NULL),
                   LLM_FORMAT_REJECTED);
  assert_int_equal(llm_status_verdict(400, "context length exceeded", NULL, NULL), LLM_FATAL);
}

static void test_mode_names(void **state) {
  (void)state;
  llm_mode m = LLM_MODE_AUTO;
  assert_int_equal(llm_mode_parse("json_object", &m), 0);
  assert_int_equal(m, LLM_MODE_JSON_OBJECT);
  assert_int_equal(llm_mode_parse("yaml", &m), -EINVAL);
  assert_int_equal(m, LLM_MODE_JSON_OBJECT);
  assert_string_equal(llm_mode_name(LLM_MODE_TEXT), "text");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_body_json_schema),
      cmocka_unit_test(test_body_other_modes),
      cmocka_unit_test(test_chunks),
      cmocka_unit_test(test_chunk_errors),
      cmocka_unit_test(test_tool_calls_and_body),
      cmocka_unit_test(test_error_parse),
      cmocka_unit_test(test_retry_after),
      cmocka_unit_test(test_parallel_tool_calls),
      cmocka_unit_test(test_backoff),
      cmocka_unit_test(test_verdict),
      cmocka_unit_test(test_mode_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
