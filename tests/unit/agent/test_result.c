/* Unit tests of the ask's typed results (result.c): the one JSON form of an
 * attempt and of an AskResult, and the RunResult of a program the checks
 * rejected, which must carry every field of the protocol's RunResult. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common.h"
#include "result.h"

/* docs/protocol.md, RunResult (task is the attempt's, error only when the
 * sandbox failed). */
static const char *const run_result_fields[] = {
    "outcome", "exitCode", "signal",   "stdout",    "stderr", "truncated", "durationMs", "cpuMs",
    "maxRssKb", "diagnostics", "limit", "limitsHit", "limits", "isolation", "language",
};

static void set_solution(agent_attempt *a, const char *imports, const char *code) {
  a->has_solution = true;
  a->solution.prefix = xstrdup("does it");
  a->solution.imports = xstrdup(imports);
  a->solution.code = xstrdup(code);
}

/* An attempt the checks rejected, as loop.c builds it. */
static agent_attempt *rejected_attempt(int iteration) {
  agent_attempt *a = agent_attempt_new(iteration, 0);
  set_solution(a, "import nope", "print(nope.x)");
  a->check = cJSON_Parse("{\"diagnostics\":[{\"range\":{\"start\":{\"line\":0,\"character\":7},"
                         "\"end\":{\"line\":0,\"character\":11}},\"severity\":1,\"source\":\"crucible\","
                         "\"code\":\"missing-module\",\"message\":\"module 'nope' is not installed\"}],"
                         "\"imports\":[]}");
  a->failed_stage = AGENT_STAGE_IMPORTS;
  a->error = xstrdup("line 1: module 'nope' is not installed");
  sbx_limits lim;
  sbx_limits_default(&lim);
  sbx_result r;
  sbx_result_rejected(&r, SBX_LANG_PYTHON, &lim);
  a->run = sbx_result_dup(&r);
  return a;
}

static void rejected_run_has_every_run_result_field(void **state) {
  agent_attempt *a = rejected_attempt(1);
  cJSON *j = agent_attempt_json(a, "t1", AGENT_JSON_WIRE);
  const cJSON *run = cJSON_GetObjectItemCaseSensitive(j, "run");
  assert_true(cJSON_IsObject(run));
  for (size_t i = 0; i < ARRAY_LEN(run_result_fields); i++) {
    if (!cJSON_GetObjectItemCaseSensitive(run, run_result_fields[i])) fail_msg("no %s", run_result_fields[i]);
  }
  assert_string_equal(cJSON_GetObjectItem(run, "outcome")->valuestring, "rejected");
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(run, "exitCode")));
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(run, "signal")));
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(run, "limit")));
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(run, "limitsHit")), 0);
  assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(run, "limits"), "timeoutMs")->valueint, 10000);
  assert_string_equal(cJSON_GetObjectItem(run, "isolation")->valuestring, "none");
  assert_string_equal(cJSON_GetObjectItem(run, "language")->valuestring, "python");
  assert_int_equal(cJSON_GetObjectItem(run, "cpuMs")->valueint, 0);
  assert_int_equal(cJSON_GetObjectItem(run, "maxRssKb")->valueint, 0);
  assert_null(cJSON_GetObjectItem(run, "error"));
  /* the diagnostics that stopped it are the check's */
  const cJSON *d = cJSON_GetArrayItem(cJSON_GetObjectItem(run, "diagnostics"), 0);
  assert_non_null(d);
  assert_string_equal(cJSON_GetObjectItem(d, "code")->valuestring, "missing-module");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(run, "diagnostics")), 1);
  /* the same keys, in the same order, as the RunResult of a program that ran */
  sbx_result ran = {.outcome = SBX_OK, .exit_code = 0, .cpu_ms = 3, .max_rss_kb = 100, .host_uid = 65534,
                    .host_gid = 65534, .isolation = SBX_ISO_CGROUP_V1};
  cJSON *rj = sbx_result_to_json(&ran);
  const cJSON *x = run->child, *y = rj->child;
  for (; x && y; x = x->next, y = y->next) assert_string_equal(x->string, y->string);
  assert_null(x);
  assert_null(y);
  cJSON_Delete(rj);
  cJSON_Delete(j);
  agent_attempt_free(a);
}

static void attempt_json_wire_and_transcript(void **state) {
  agent_attempt *a = rejected_attempt(2);
  a->duration_ms = 42;
  agent_conv_add(&a->prompt, "system", "be good");
  agent_conv_add(&a->prompt, "user", "q");
  a->answer = xstrdup("{\"prefix\":\"does it\"}");
  cJSON *w = agent_attempt_json(a, "task-7", AGENT_JSON_WIRE);
  char *s = cJSON_PrintUnformatted(w);
  /* field order is the wire contract */
  const char *order[] = {"task", "iteration", "solution", "check", "run", "passed", "failedStage", "error",
                         "durationMs"};
  const cJSON *it = w->child;
  for (size_t i = 0; i < ARRAY_LEN(order); i++, it = it->next) assert_string_equal(it->string, order[i]);
  assert_null(it);
  assert_non_null(strstr(s, "\"task\":\"task-7\",\"iteration\":2,\"solution\":{\"prefix\":\"does it\","
                            "\"imports\":\"import nope\",\"code\":\"print(nope.x)\"}"));
  assert_non_null(strstr(s, "\"passed\":false,\"failedStage\":\"imports\",\"error\":\"line 1: module 'nope' is not "
                            "installed\",\"durationMs\":42}"));
  free(s);
  cJSON_Delete(w);
  /* the transcript adds the reflection, what was sent and what came back */
  a->reflection = xstrdup("the module is missing");
  cJSON *t = agent_attempt_json(a, "task-7", AGENT_JSON_TRANSCRIPT);
  assert_string_equal(cJSON_GetObjectItem(t, "reflection")->valuestring, "the module is missing");
  assert_string_equal(cJSON_GetObjectItem(t, "durationMs")->next->string, "reflection");
  const cJSON *prompt = cJSON_GetObjectItem(t, "prompt");
  assert_int_equal(cJSON_GetArraySize(prompt), 2);
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(prompt, 0), "role")->valuestring, "system");
  assert_string_equal(cJSON_GetObjectItem(t, "answer")->valuestring, "{\"prefix\":\"does it\"}");
  cJSON_Delete(t);
  agent_attempt_free(a);
  /* an attempt whose answer was unusable: no solution, no check, no run */
  a = agent_attempt_new(1, 0);
  a->failed_stage = AGENT_STAGE_ANSWER;
  w = agent_attempt_json(a, "x", AGENT_JSON_WIRE);
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(w, "solution")));
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(w, "check")));
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(w, "run")));
  assert_string_equal(cJSON_GetObjectItem(w, "failedStage")->valuestring, "answer");
  assert_null(cJSON_GetObjectItem(w, "error"));
  assert_null(cJSON_GetObjectItem(w, "prompt"));
  cJSON_Delete(w);
  agent_attempt_free(a);
}

static void result_json_shows_the_last_solution_and_run(void **state) {
  agent_result *r = agent_result_new("fact", "t-1-2");
  r->outcome = AGENT_FAILED;
  r->iterations = 3;
  agent_result_add_attempt(r, rejected_attempt(1));
  /* attempt 2 ran and failed; attempt 3's answer was unusable */
  agent_attempt *a2 = agent_attempt_new(2, 0);
  set_solution(a2, "", "raise SystemExit(3)");
  sbx_result ran = {.outcome = SBX_ERROR, .exit_code = 3, .out = "so far\n", .out_len = 7, .host_uid = 1,
                    .host_gid = 1};
  a2->run = sbx_result_dup(&ran);
  a2->failed_stage = AGENT_STAGE_RUN;
  agent_result_add_attempt(r, a2);
  agent_attempt *a3 = agent_attempt_new(3, 0);
  a3->failed_stage = AGENT_STAGE_ANSWER;
  a3->error = xstrdup("Your answer could not be used: it is not JSON.\nReply with one JSON object.");
  a3->summary = agent_attempt_summarize(a3);
  agent_result_add_attempt(r, a3);
  assert_ptr_equal(agent_result_last(r), a3);
  assert_ptr_equal(agent_result_solution_attempt(r), a2);
  assert_ptr_equal(agent_result_run_attempt(r), a2);
  agent_result_add_source(r, "Widgets", "https://d.example/w");
  agent_result_add_source(r, "Widgets again", "https://d.example/w"); /* same page: once */
  agent_result_add_source(r, "Gadgets", "https://d.example/g");
  r->prompt_tokens = 10;
  r->completion_tokens = 5;
  r->error_kind = LLM_ERR_NONE;
  cJSON *j = agent_result_json(r);
  const char *order[] = {"task", "uid", "outcome", "iterations", "solution", "run", "attempts", "sources", "usage",
                         "durationMs", "error", "failedStage"};
  const cJSON *it = j->child;
  for (size_t i = 0; i < ARRAY_LEN(order); i++, it = it->next) assert_string_equal(it->string, order[i]);
  assert_null(it); /* no errorKind */
  /* a failed result says why: its last attempt, in one line */
  assert_string_equal(cJSON_GetObjectItem(j, "error")->valuestring, "Your answer could not be used: it is not JSON.");
  assert_string_equal(cJSON_GetObjectItem(j, "failedStage")->valuestring, "answer");
  assert_string_equal(cJSON_GetObjectItem(j, "outcome")->valuestring, "failed");
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "solution"), "code")->valuestring,
                      "raise SystemExit(3)");
  assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "run"), "exitCode")->valueint, 3);
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "run"), "stdout")->valuestring, "so far\n");
  const cJSON *atts = cJSON_GetObjectItem(j, "attempts");
  assert_int_equal(cJSON_GetArraySize(atts), 3);
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(atts, 0), "task")->valuestring, "fact");
  assert_null(cJSON_GetObjectItem(cJSON_GetArrayItem(atts, 0), "prompt")); /* wire form */
  char *s = cJSON_PrintUnformatted(cJSON_GetObjectItem(j, "sources"));
  assert_string_equal(s, "[{\"title\":\"Widgets\",\"url\":\"https://d.example/w\"},"
                         "{\"title\":\"Gadgets\",\"url\":\"https://d.example/g\"}]");
  free(s);
  s = cJSON_PrintUnformatted(cJSON_GetObjectItem(j, "usage"));
  assert_string_equal(s, "{\"promptTokens\":10,\"completionTokens\":5}");
  free(s);
  cJSON_Delete(j);
  /* an LLM request that ended the task says how */
  r->outcome = AGENT_ERROR;
  r->error = xstrdup("LLM endpoint answered 401");
  r->error_kind = LLM_ERR_STATUS;
  j = agent_result_json(r);
  assert_string_equal(cJSON_GetObjectItem(j, "error")->valuestring, "LLM endpoint answered 401");
  assert_string_equal(cJSON_GetObjectItem(j, "errorKind")->valuestring, "status");
  assert_string_equal(cJSON_GetObjectItem(j, "error")->next->string, "errorKind");
  cJSON_Delete(j);
  agent_result_free(r);
  /* nothing attempted: null solution and run */
  r = agent_result_new(NULL, NULL);
  r->outcome = AGENT_CANCELLED;
  j = agent_result_json(r);
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "solution")));
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "run")));
  assert_string_equal(cJSON_GetObjectItem(j, "outcome")->valuestring, "cancelled");
  cJSON_Delete(j);
  agent_result_free(r);
}

/* A result kept past on_done owns its bytes: output with NULs survives. */
static void dup_owns_everything(void **state) {
  char out[] = {'a', 0, 'b'};
  sbx_diag d = {4, 2, "NameError: x"};
  char msg[] = "install bwrap";
  sbx_result r = {.outcome = SBX_ERROR, .exit_code = 1, .out = out, .out_len = 3, .err = "e", .err_len = 1,
                  .diags = &d, .ndiags = 1, .error = msg};
  sbx_result *c = sbx_result_dup(&r);
  out[0] = 'z';
  msg[0] = 'X';
  assert_int_equal(c->out_len, 3);
  assert_memory_equal(c->out, "a\0b", 3);
  assert_int_equal(c->out[3], 0);
  assert_string_equal(c->err, "e");
  assert_string_equal(c->error, "install bwrap");
  assert_int_equal(c->ndiags, 1);
  assert_string_equal(c->diags[0].message, "NameError: x");
  assert_ptr_not_equal(c->diags, &d);
  sbx_result_free(c);
  sbx_result_free(NULL);
  assert_null(sbx_result_dup(NULL));
}

/* A failed attempt's one line: the check's first error with its place, the
 * limit that stopped a run with where it was, the run's error line. */
static void summaries(void **state) {
  agent_attempt *a = rejected_attempt(1);
  char *s = agent_attempt_summarize(a);
  assert_string_equal(s, "line 1, column 8: module 'nope' is not installed");
  free(s);
  agent_attempt_free(a);
  a = agent_attempt_new(2, 0);
  a->failed_stage = AGENT_STAGE_RUN;
  sbx_diag d = {.line = 3, .column = -1, .message = "KeyboardInterrupt"};
  sbx_result r = {.outcome = SBX_TIMEOUT, .limit = SBX_LIMIT_WALL, .exit_code = -1, .signal = 6, .diags = &d,
                  .ndiags = 1, .err = "", .out = ""};
  r.limits.timeout_ms = 10000;
  a->run = sbx_result_dup(&r);
  s = agent_attempt_summarize(a);
  assert_string_equal(s, "stopped at the wall-time limit of 10 s at line 4 (KeyboardInterrupt)");
  free(s);
  sbx_result_free(a->run);
  d.message = "NameError: name 'x' is not defined";
  r = (sbx_result){.outcome = SBX_ERROR, .exit_code = 1, .diags = &d, .ndiags = 1, .err = "", .out = ""};
  a->run = sbx_result_dup(&r);
  s = agent_attempt_summarize(a);
  assert_string_equal(s, "line 4: NameError: name 'x' is not defined");
  free(s);
  a->passed = true;
  assert_null(agent_attempt_summarize(a));
  agent_attempt_free(a);
}

static void names(void **state) {
  assert_string_equal(agent_outcome_name(AGENT_PASSED), "passed");
  assert_string_equal(agent_outcome_name(AGENT_ERROR), "error");
  assert_null(agent_stage_name(AGENT_STAGE_NONE));
  assert_string_equal(agent_stage_name(AGENT_STAGE_ANSWER), "answer");
  assert_string_equal(agent_stage_name(AGENT_STAGE_SYNTAX), "syntax");
  assert_string_equal(agent_stage_name(AGENT_STAGE_IMPORTS), "imports");
  assert_string_equal(agent_stage_name(AGENT_STAGE_RUN), "run");
  assert_string_equal(agent_stage_name(AGENT_STAGE_TEST), "test");
  assert_string_equal(agent_phase_name(AGENT_PHASE_RETRIEVING), "retrieving");
  assert_string_equal(agent_phase_name(AGENT_PHASE_FINISHED), "finished");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(rejected_run_has_every_run_result_field),
      cmocka_unit_test(summaries),
      cmocka_unit_test(attempt_json_wire_and_transcript),
      cmocka_unit_test(result_json_shows_the_last_solution_and_run),
      cmocka_unit_test(dup_owns_everything),
      cmocka_unit_test(names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
