/* Attempts and results of an ask: their lifetimes, and their one JSON form. */
#include "result.h"

#include <stdlib.h>
#include <string.h>

#include "common.h"

const char *agent_outcome_name(agent_outcome outcome) {
  static const char *const names[] = {"passed", "failed", "cancelled", "error"};
  return (unsigned)outcome < ARRAY_LEN(names) ? names[outcome] : "error";
}

const char *agent_stage_name(agent_stage stage) {
  static const char *const names[] = {NULL, "answer", "check", "import test", "code execution", "install"};
  return (unsigned)stage < ARRAY_LEN(names) ? names[stage] : NULL;
}

const char *agent_phase_name(agent_phase phase) {
  static const char *const names[] = {"retrieving", "generating", "checking", "running", "reflecting", "finished",
                                      "installing"};
  return (unsigned)phase < ARRAY_LEN(names) ? names[phase] : "finished";
}

/* ---- attempts ---- */

agent_attempt *agent_attempt_new(int iteration, unsigned long long started_ms) {
  agent_attempt *a = xcalloc(1, sizeof *a);
  a->iteration = iteration;
  a->started_ms = started_ms;
  agent_conv_init(&a->prompt);
  return a;
}

void agent_attempt_free(agent_attempt *self) {
  if (!self) return;
  if (self->has_solution) llm_solution_close(&self->solution);
  cJSON_Delete(self->check);
  sbx_result_free(self->run);
  free(self->error);
  cJSON_Delete(self->environment);
  agent_conv_close(&self->prompt);
  free(self->answer);
  free(self->reflection);
  free(self);
}

static cJSON *solution_json(const llm_solution *s) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "prefix", s->prefix ? s->prefix : "");
  cJSON_AddStringToObject(o, "imports", s->imports ? s->imports : "");
  cJSON_AddStringToObject(o, "code", s->code ? s->code : "");
  if (s->n_dependencies) {
    cJSON *d = cJSON_AddArrayToObject(o, "dependencies");
    for (size_t i = 0; i < s->n_dependencies; i++) cJSON_AddItemToArray(d, cJSON_CreateString(s->dependencies[i]));
  }
  return o;
}

/* The attempt's RunResult. A program the checks rejected never ran: the
 * diagnostics that stopped it are the check's (with their ranges and
 * codes), in place of runtime ones. */
static cJSON *run_json(const agent_attempt *a) {
  cJSON *run = sbx_result_to_json(a->run);
  if (a->environment) cJSON_AddItemToObject(run, "environment", cJSON_Duplicate(a->environment, 1));
  if (a->run->outcome == SBX_REJECTED) {
    const cJSON *diags = cJSON_GetObjectItemCaseSensitive(a->check, "diagnostics");
    if (diags) cJSON_ReplaceItemInObjectCaseSensitive(run, "diagnostics", cJSON_Duplicate(diags, 1));
  }
  return run;
}

static cJSON *messages_json(const agent_conv *c) {
  cJSON *arr = cJSON_CreateArray();
  for (size_t i = 0; i < c->n; i++) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", c->msgs[i].role);
    cJSON_AddStringToObject(m, "content", c->msgs[i].content);
    cJSON_AddItemToArray(arr, m);
  }
  return arr;
}

cJSON *agent_attempt_json(const agent_attempt *self, const char *task, agent_json_form form) {
  cJSON *a = cJSON_CreateObject();
  cJSON_AddStringToObject(a, "task", task ? task : "");
  cJSON_AddNumberToObject(a, "iteration", self->iteration);
  cJSON_AddItemToObject(a, "solution", self->has_solution ? solution_json(&self->solution) : cJSON_CreateNull());
  cJSON_AddItemToObject(a, "check", self->check ? cJSON_Duplicate(self->check, 1) : cJSON_CreateNull());
  cJSON_AddItemToObject(a, "run", self->run ? run_json(self) : cJSON_CreateNull());
  cJSON_AddBoolToObject(a, "passed", self->passed);
  const char *stage = agent_stage_name(self->failed_stage);
  if (stage) cJSON_AddStringToObject(a, "failedStage", stage);
  if (self->error) cJSON_AddStringToObject(a, "error", self->error);
  cJSON_AddNumberToObject(a, "durationMs", (double)self->duration_ms);
  if (form == AGENT_JSON_TRANSCRIPT) {
    if (self->reflection) cJSON_AddStringToObject(a, "reflection", self->reflection);
    if (self->prompt.n) cJSON_AddItemToObject(a, "prompt", messages_json(&self->prompt));
    cJSON_AddStringToObject(a, "answer", self->answer ? self->answer : "");
  }
  return a;
}

/* ---- results ---- */

agent_result *agent_result_new(const char *task, const char *uid) {
  agent_result *r = xcalloc(1, sizeof *r);
  r->task = xstrdup(task ? task : "");
  r->uid = xstrdup(uid ? uid : "");
  r->outcome = AGENT_PASSED;
  return r;
}

void agent_result_free(agent_result *self) {
  if (!self) return;
  for (size_t i = 0; i < self->n_attempts; i++) agent_attempt_free(self->attempts[i]);
  free(self->attempts);
  for (size_t i = 0; i < self->n_sources; i++) {
    free(self->sources[i].title);
    free(self->sources[i].url);
  }
  free(self->sources);
  free(self->task);
  free(self->uid);
  free(self->error);
  cJSON_Delete(self->environment);
  free(self);
}

void agent_result_add_attempt(agent_result *self, agent_attempt *attempt) {
  if (self->n_attempts == self->cap_attempts) {
    self->cap_attempts = self->cap_attempts ? self->cap_attempts * 2 : 4;
    self->attempts = xrealloc(self->attempts, self->cap_attempts * sizeof *self->attempts);
  }
  self->attempts[self->n_attempts++] = attempt;
}

agent_attempt *agent_result_last(const agent_result *self) {
  return self->n_attempts ? self->attempts[self->n_attempts - 1] : NULL;
}

void agent_result_add_source(agent_result *self, const char *title, const char *url) {
  for (size_t i = 0; url && i < self->n_sources; i++)
    if (self->sources[i].url && !strcmp(self->sources[i].url, url)) return;
  if (self->n_sources == self->cap_sources) {
    self->cap_sources = self->cap_sources ? self->cap_sources * 2 : 8;
    self->sources = xrealloc(self->sources, self->cap_sources * sizeof *self->sources);
  }
  agent_source *s = &self->sources[self->n_sources++];
  s->title = title ? xstrdup(title) : NULL;
  s->url = url ? xstrdup(url) : NULL;
}

const agent_attempt *agent_result_solution_attempt(const agent_result *self) {
  for (size_t i = self->n_attempts; i-- > 0;)
    if (self->attempts[i]->has_solution) return self->attempts[i];
  return NULL;
}

const agent_attempt *agent_result_run_attempt(const agent_result *self) {
  for (size_t i = self->n_attempts; i-- > 0;)
    if (self->attempts[i]->run) return self->attempts[i];
  return NULL;
}

cJSON *agent_result_json(const agent_result *self) {
  cJSON *r = cJSON_CreateObject();
  cJSON_AddStringToObject(r, "task", self->task);
  cJSON_AddStringToObject(r, "uid", self->uid);
  cJSON_AddStringToObject(r, "outcome", agent_outcome_name(self->outcome));
  cJSON_AddNumberToObject(r, "iterations", self->iterations);
  const agent_attempt *sol = agent_result_solution_attempt(self);
  cJSON_AddItemToObject(r, "solution", sol ? solution_json(&sol->solution) : cJSON_CreateNull());
  const agent_attempt *ran = agent_result_run_attempt(self);
  cJSON_AddItemToObject(r, "run", ran ? run_json(ran) : cJSON_CreateNull());
  cJSON *atts = cJSON_AddArrayToObject(r, "attempts");
  for (size_t i = 0; i < self->n_attempts; i++)
    cJSON_AddItemToArray(atts, agent_attempt_json(self->attempts[i], self->task, AGENT_JSON_WIRE));
  cJSON *srcs = cJSON_AddArrayToObject(r, "sources");
  for (size_t i = 0; i < self->n_sources; i++) {
    cJSON *s = cJSON_CreateObject();
    if (self->sources[i].title) cJSON_AddStringToObject(s, "title", self->sources[i].title);
    if (self->sources[i].url) cJSON_AddStringToObject(s, "url", self->sources[i].url);
    cJSON_AddItemToArray(srcs, s);
  }
  cJSON *u = cJSON_AddObjectToObject(r, "usage");
  cJSON_AddNumberToObject(u, "promptTokens", (double)self->prompt_tokens);
  cJSON_AddNumberToObject(u, "completionTokens", (double)self->completion_tokens);
  cJSON_AddNumberToObject(r, "durationMs", (double)self->duration_ms);
  if (self->error) cJSON_AddStringToObject(r, "error", self->error);
  const char *kind = llm_error_kind_name(self->error_kind);
  if (kind) cJSON_AddStringToObject(r, "errorKind", kind);
  if (self->environment) cJSON_AddItemToObject(r, "environment", cJSON_Duplicate(self->environment, 1));
  return r;
}
