/* Attempts and results of an ask: their lifetimes, and their one JSON form. */
#include "result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

const char *agent_outcome_name(agent_outcome outcome) {
  static const char *const names[] = {"passed", "failed", "cancelled", "error"};
  return (unsigned)outcome < ARRAY_LEN(names) ? names[outcome] : "error";
}

const char *agent_stage_name(agent_stage stage) {
  static const char *const names[] = {NULL, "answer", "syntax", "imports", "run", "test", "install"};
  return (unsigned)stage < ARRAY_LEN(names) ? names[stage] : NULL;
}

const char *agent_phase_name(agent_phase phase) {
  static const char *const names[] = {"retrieving", "generating", "checking", "running", "reflecting", "finished",
                                      "installing"};
  return (unsigned)phase < ARRAY_LEN(names) ? names[phase] : "finished";
}

/* ---- attempts ---- */

/* The first line of text, at most 300 bytes, new. */
static char *first_line(const char *text) {
  while (*text == '\n') text++;
  size_t n = strcspn(text, "\n");
  return xstrndup(text, n > 300 ? 300 : n);
}

/* The last non-blank line of n bytes of text, at most 300 bytes, new; NULL
 * when there is none. */
static char *last_line(const char *text, size_t n) {
  while (n && (text[n - 1] == '\n' || text[n - 1] == ' ' || text[n - 1] == '\r')) n--;
  if (!n) return NULL;
  size_t b = n;
  while (b && text[b - 1] != '\n') b--;
  while (b < n && (text[b] == ' ' || text[b] == '\t')) b++;
  return xstrndup(text + b, n - b > 300 ? 300 : n - b);
}

/* The first error diagnostic of a check report (chk_report_json). */
static char *check_summary(const cJSON *check) {
  const cJSON *d;
  cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(check, "diagnostics")) {
    const cJSON *sev = cJSON_GetObjectItemCaseSensitive(d, "severity");
    if (cJSON_IsNumber(sev) && sev->valueint != 1) continue;
    const cJSON *start = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(d, "range"), "start");
    const cJSON *line = cJSON_GetObjectItemCaseSensitive(start, "line");
    const cJSON *col = cJSON_GetObjectItemCaseSensitive(start, "character");
    const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "message"));
    if (cJSON_IsNumber(line) && cJSON_IsNumber(col))
      return xasprintf("line %d, column %d: %s", line->valueint + 1, col->valueint + 1, msg ? msg : "error");
    return xstrdup(msg ? msg : "error");
  }
  return NULL;
}

static char *run_summary(const sbx_result *r) {
  char where[400] = "";
  if (r->ndiags > 0)
    snprintf(where, sizeof where, " at line %d (%s)", r->diags[r->ndiags - 1].line + 1,
             r->diags[r->ndiags - 1].message);
  if (r->outcome == SBX_TIMEOUT && r->limit == SBX_LIMIT_CPU)
    return xasprintf("stopped at the CPU-time limit of %ld s%s", r->limits.cpu_seconds, where);
  if (r->outcome == SBX_TIMEOUT)
    return xasprintf("stopped at the wall-time limit of %.3g s%s", (double)r->limits.timeout_ms / 1000, where);
  if (r->outcome == SBX_OOM) return xasprintf("stopped at the memory limit of %ld MiB%s", r->limits.memory_mb, where);
  if (r->error) return first_line(r->error);
  if (r->ndiags > 0)
    return xasprintf("line %d: %s", r->diags[r->ndiags - 1].line + 1, r->diags[r->ndiags - 1].message);
  char *last = last_line(r->err, r->err_len);
  if (last) return last;
  if (r->signal) return xasprintf("killed by signal %d", r->signal);
  return xasprintf("exit code %d", r->exit_code);
}

char *agent_attempt_summarize(const agent_attempt *self) {
  if (self->passed || self->failed_stage == AGENT_STAGE_NONE) return NULL;
  if ((self->failed_stage == AGENT_STAGE_SYNTAX || self->failed_stage == AGENT_STAGE_IMPORTS) && self->check &&
      self->run && self->run->outcome == SBX_REJECTED) {
    char *s = check_summary(self->check);
    if (s) return s;
  }
  /* A run that ended well failed a judgement of its own (no output): its
   * error says which. */
  if (self->run && self->run->outcome != SBX_REJECTED && !(self->run->outcome == SBX_OK && self->run->exit_code == 0))
    return run_summary(self->run);
  return first_line(self->error ? self->error : "failed");
}

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
  free(self->summary);
  free(self->key);
  agent_conv_close(&self->prompt);
  free(self->answer);
  free(self->reflection);
  for (size_t i = 0; i < self->n_tools; i++) {
    free(self->tools[i].name);
    free(self->tools[i].argument);
    free(self->tools[i].error);
  }
  free(self->tools);
  free(self);
}

void agent_attempt_add_tool(agent_attempt *self, const char *name, const char *argument, long tokens,
                            const char *error) {
  self->tools = xrealloc(self->tools, (self->n_tools + 1) * sizeof *self->tools);
  agent_tool_use *u = &self->tools[self->n_tools++];
  u->name = xstrdup(name ? name : "");
  u->argument = xstrdup(argument ? argument : "");
  u->tokens = tokens;
  u->error = error ? xstrdup(error) : NULL;
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
  if (s->test) cJSON_AddStringToObject(o, "test", s->test);
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
    if (c->msgs[i].content) cJSON_AddStringToObject(m, "content", c->msgs[i].content);
    else cJSON_AddNullToObject(m, "content");
    cJSON *calls = c->msgs[i].tool_calls ? cJSON_Parse(c->msgs[i].tool_calls) : NULL;
    if (calls) cJSON_AddItemToObject(m, "tool_calls", calls);
    if (c->msgs[i].tool_call_id) cJSON_AddStringToObject(m, "tool_call_id", c->msgs[i].tool_call_id);
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
  if (self->n_tools) {
    cJSON *tc = cJSON_AddArrayToObject(a, "toolCalls");
    for (size_t i = 0; i < self->n_tools; i++) {
      cJSON *o = cJSON_CreateObject();
      cJSON_AddStringToObject(o, "name", self->tools[i].name);
      cJSON_AddStringToObject(o, "argument", self->tools[i].argument);
      cJSON_AddNumberToObject(o, "tokens", (double)self->tools[i].tokens);
      if (self->tools[i].error) cJSON_AddStringToObject(o, "error", self->tools[i].error);
      cJSON_AddItemToArray(tc, o);
    }
  }
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
  if (self->ranking) cJSON_AddStringToObject(r, "ranking", self->ranking);
  cJSON *u = cJSON_AddObjectToObject(r, "usage");
  cJSON_AddNumberToObject(u, "promptTokens", (double)self->prompt_tokens);
  cJSON_AddNumberToObject(u, "completionTokens", (double)self->completion_tokens);
  cJSON_AddNumberToObject(r, "durationMs", (double)self->duration_ms);
  const agent_attempt *last = agent_result_last(self);
  if (self->error) {
    cJSON_AddStringToObject(r, "error", self->error);
  } else if (self->outcome == AGENT_FAILED && last && last->summary) {
    cJSON_AddStringToObject(r, "error", last->summary);
  }
  const char *kind = llm_error_kind_name(self->error_kind);
  if (kind) cJSON_AddStringToObject(r, "errorKind", kind);
  const char *stage = self->outcome == AGENT_FAILED && last ? agent_stage_name(last->failed_stage) : NULL;
  if (stage) cJSON_AddStringToObject(r, "failedStage", stage);
  if (self->environment) cJSON_AddItemToObject(r, "environment", cJSON_Duplicate(self->environment, 1));
  return r;
}
