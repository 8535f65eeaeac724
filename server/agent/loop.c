/* The ask loop: generate → check → run → reflect → retry, as a state machine.
 *
 * Every transition goes through a zero-delay timer (`step`), so the work of
 * the next state never runs inside an LLM or sandbox callback: those only
 * record what happened and schedule the next state. */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "dbuf.h"
#include "log.h"
#include "prompt.h"

#define FEEDBACK_BUDGET 6000

typedef enum state {
  ST_NONE,
  ST_RETRIEVE,
  ST_INDEX,
  ST_GENERATE,
  ST_CHECK,
  ST_IMPORT_RUN,
  ST_RUN,
  ST_FAIL,
  ST_FINISH,
} state;

struct agent_task {
  agent_engine *eng;
  agent_sink sink;
  void *ud;
  uv_timer_t step;
  state next;

  char *label, *question, *language, *ctx_text, *ctx_uri, *docs;
  int ctx_line;
  char uid[64];
  chk_language lang;
  int max_iter;
  bool reflect;
  agent_import_check import_check;
  char **deny;        /* NULL-terminated */
  sbx_limits limits;
  const void *owner;
  llm_config llm_cfg;

  char **doc_sources;
  size_t n_doc_sources;
  bool *doc_public_only;      /* one per source, or NULL */
  agent_docs_mode docs_mode;
  int docs_budget, docs_depth, docs_pages;
  docs_sync *sync;
  cJSON *sources;     /* owned: [{title, url}] of every page put in a prompt */

  llm_client *llm;
  llm_chat *chat;
  sbx_run *run;
  bool waiting_index;
  const chk_modset *modset;

  agent_conv conv;
  int iteration;
  bool cancelled;
  unsigned long long started_ms, attempt_started_ms;

  /* the current attempt */
  llm_solution sol;
  bool have_sol;
  char *program;
  cJSON *cur_check;   /* owned */
  cJSON *cur_run;     /* owned: RunResult of this attempt */
  cJSON *cur_prompt;  /* owned: the messages sent for this generation */
  char *raw_answer;
  char *feedback;     /* why the attempt failed, for the model */
  const char *failed_stage;
  dbuf reflection;

  /* the task */
  cJSON *attempts;    /* owned array */
  cJSON *last_solution, *last_run;
  const char *outcome;
  char *error;
  const char *error_kind;     /* static; set when an LLM request ended the task */
  long long prompt_tokens, completion_tokens;
};

static void on_step(uv_timer_t *t);

static void schedule(agent_task *t, state s) {
  t->next = s;
  uv_timer_start(&t->step, on_step, 0, 0);
}

static void phase(agent_task *t, const char *name, const char *detail) {
  if (t->sink.phase) t->sink.phase(t->ud, t->iteration, name, detail);
}

static void finish(agent_task *t, const char *outcome, char *error) {
  if (!t->outcome) {
    t->outcome = outcome;
    t->error = error;
  } else {
    free(error);
  }
  schedule(t, ST_FINISH);
}

static cJSON *solution_json(const llm_solution *s) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "prefix", s->prefix ? s->prefix : "");
  cJSON_AddStringToObject(o, "imports", s->imports ? s->imports : "");
  cJSON_AddStringToObject(o, "code", s->code ? s->code : "");
  return o;
}

static void reset_attempt(agent_task *t) {
  if (t->have_sol) llm_solution_close(&t->sol);
  t->have_sol = false;
  free(t->program);
  t->program = NULL;
  cJSON_Delete(t->cur_check);
  cJSON_Delete(t->cur_run);
  cJSON_Delete(t->cur_prompt);
  t->cur_check = t->cur_run = t->cur_prompt = NULL;
  free(t->raw_answer);
  t->raw_answer = NULL;
  free(t->feedback);
  t->feedback = NULL;
  t->failed_stage = NULL;
  dbuf_reset(&t->reflection);
}

/* Emits crucible/attempt and records the attempt in the transcript. */
static void emit_attempt(agent_task *t, bool passed) {
  cJSON *a = cJSON_CreateObject();
  cJSON_AddStringToObject(a, "task", t->label);
  cJSON_AddNumberToObject(a, "iteration", t->iteration);
  cJSON_AddItemToObject(a, "solution", t->have_sol ? solution_json(&t->sol) : cJSON_CreateNull());
  cJSON_AddItemToObject(a, "check", t->cur_check ? cJSON_Duplicate(t->cur_check, 1) : cJSON_CreateNull());
  cJSON_AddItemToObject(a, "run", t->cur_run ? cJSON_Duplicate(t->cur_run, 1) : cJSON_CreateNull());
  cJSON_AddBoolToObject(a, "passed", passed);
  if (t->failed_stage) cJSON_AddStringToObject(a, "failedStage", t->failed_stage);
  if (t->feedback) cJSON_AddStringToObject(a, "error", t->feedback);
  cJSON_AddNumberToObject(a, "durationMs", (double)(now_ms() - t->attempt_started_ms));
  if (t->sink.attempt) t->sink.attempt(t->ud, a);
  cJSON_AddItemToArray(t->attempts, cJSON_Duplicate(a, 1));
  if (t->have_sol) {
    cJSON_Delete(t->last_solution);
    t->last_solution = solution_json(&t->sol);
  }
  if (t->cur_run) {
    cJSON_Delete(t->last_run);
    t->last_run = cJSON_Duplicate(t->cur_run, 1);
  }
  if (t->eng->store) {
    /* The transcript also keeps what was sent and the raw answer. */
    if (t->cur_prompt) cJSON_AddItemToObject(a, "prompt", cJSON_Duplicate(t->cur_prompt, 1));
    cJSON_AddStringToObject(a, "answer", t->raw_answer ? t->raw_answer : "");
    store_attempt_put(t->eng->store, t->uid, t->iteration, a);
  }
  cJSON_Delete(a);
}

static void store_reflection(agent_task *t) {
  if (!t->eng->store || !t->reflection.len) return;
  cJSON *last = cJSON_GetArrayItem(t->attempts, cJSON_GetArraySize(t->attempts) - 1);
  if (!last) return;
  cJSON *a = cJSON_Duplicate(last, 1);
  cJSON_AddStringToObject(a, "reflection", t->reflection.data);
  if (t->cur_prompt) cJSON_AddItemToObject(a, "prompt", cJSON_Duplicate(t->cur_prompt, 1));
  cJSON_AddStringToObject(a, "answer", t->raw_answer ? t->raw_answer : "");
  store_attempt_put(t->eng->store, t->uid, t->iteration, a);
  cJSON_Delete(a);
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

/* ---- LLM callbacks: record, then schedule ---- */

static void gen_token(void *ud, const char *text, size_t len) {
  agent_task *t = ud;
  if (t->sink.token && !t->cancelled) t->sink.token(t->ud, t->iteration, text, len);
}

/* What every chat's end has in common: the chat is over, its usage counts,
 * and a cancelled or failed chat ends the task. Returns true when the
 * answer may be used. */
static bool chat_ended(agent_task *t, const llm_result *res) {
  t->chat = NULL;
  if (res->prompt_tokens > 0) t->prompt_tokens += res->prompt_tokens;
  if (res->completion_tokens > 0) t->completion_tokens += res->completion_tokens;
  if (t->cancelled || res->status == LLM_CANCELLED) {
    finish(t, "cancelled", NULL);
    return false;
  }
  if (res->status != LLM_OK) {
    t->error_kind = llm_error_kind_name(res->error_kind);
    finish(t, "error", xstrdup(res->error ? res->error : "the LLM request failed"));
    return false;
  }
  return true;
}

static void gen_done(void *ud, const llm_result *res) {
  agent_task *t = ud;
  if (!chat_ended(t, res)) return;
  t->raw_answer = xstrdup(res->text ? res->text : "");
  if (*t->raw_answer) agent_conv_add(&t->conv, "assistant", t->raw_answer);
  char *err = NULL;
  if (llm_solution_parse(t->raw_answer, res->mode, &t->sol, &err) == 0) {
    t->have_sol = true;
    schedule(t, ST_CHECK);
  } else {
    t->failed_stage = "answer";
    t->feedback = xasprintf("Your answer could not be used: %s", err ? err : "it is not in the asked form");
    free(err);
    schedule(t, ST_FAIL);
  }
}

static void reflect_token(void *ud, const char *text, size_t len) {
  agent_task *t = ud;
  dbuf_add_head(&t->reflection, text, len);
  if (t->sink.reflection && !t->cancelled) t->sink.reflection(t->ud, t->iteration, text, len);
}

static void reflect_done(void *ud, const llm_result *res) {
  agent_task *t = ud;
  if (!chat_ended(t, res)) return;
  if (!t->reflection.len && res->text) dbuf_add_head(&t->reflection, res->text, strlen(res->text));
  store_reflection(t);
  char *msg = xasprintf("Here are reflections on the error: %s", t->reflection.data ? t->reflection.data : "");
  agent_conv_take(&t->conv, "assistant", msg);
  agent_conv_add(&t->conv, "user", agent_retry_prompt());
  schedule(t, ST_GENERATE);
}

/* ---- sandbox callbacks ---- */

static void run_output(void *ud, int stream, const char *bytes, size_t len) {
  agent_task *t = ud;
  if (t->sink.output && !t->cancelled) t->sink.output(t->ud, t->iteration, stream, bytes, len);
}

static void run_done_common(agent_task *t, const sbx_result *res, const char *stage, state on_ok) {
  t->run = NULL;
  if (t->cancelled || res->outcome == SBX_CANCELLED) {
    cJSON_Delete(t->cur_run);
    t->cur_run = sbx_result_to_json(res);
    finish(t, "cancelled", NULL);
    return;
  }
  cJSON_Delete(t->cur_run);
  t->cur_run = sbx_result_to_json(res);
  if (res->outcome == SBX_OK && res->exit_code == 0) {
    schedule(t, on_ok);
    return;
  }
  t->failed_stage = stage;
  t->feedback = agent_run_feedback(res, stage, FEEDBACK_BUDGET);
  schedule(t, ST_FAIL);
}

static void import_run_done(void *ud, const sbx_result *res) {
  run_done_common(ud, res, "import test", ST_RUN);
}

static void run_done(void *ud, const sbx_result *res) {
  run_done_common(ud, res, "code execution", ST_FINISH);
}

static void index_ready(void *ud, const chk_modset *set, const char *error) {
  agent_task *t = ud;
  t->waiting_index = false;
  t->modset = set;
  if (!set && error) log_warn("imports are not resolved for %s: %s", t->language, error);
  if (t->cancelled)
    finish(t, "cancelled", NULL);
  else
    schedule(t, ST_GENERATE);
}

/* ---- states ---- */

/* Puts the documentation that best matches `query` into the system prompt
 * (replacing what an earlier attempt had) and records the pages used. */
static void attach_docs(agent_task *t, const char *query) {
  if (!t->n_doc_sources || !t->eng->docs) return;
  cJSON *used = NULL;
  char *warning = NULL;
  char *ctx = docs_context_build(t->eng->docs, query, (const char *const *)t->doc_sources, t->n_doc_sources,
                                 t->docs_mode == AGENT_DOCS_ALL ? "all" : "search", t->docs_budget, &used,
                                 &warning);
  if (warning) {
    log_warn("documentation: %s", warning);
    phase(t, "retrieving", warning);
    free(warning);
  }
  if (!ctx) {
    cJSON_Delete(used);
    return;
  }
  free(t->docs);
  t->docs = ctx;
  free((char *)t->conv.msgs[0].content);
  t->conv.msgs[0].content = agent_system_prompt(t->language, *ctx ? ctx : NULL);
  const cJSON *u;
  cJSON_ArrayForEach(u, used) {
    const char *url = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(u, "url"));
    bool seen = false;
    const cJSON *s;
    cJSON_ArrayForEach(s, t->sources) {
      const char *su = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s, "url"));
      seen |= url && su && !strcmp(url, su);
    }
    if (!seen) cJSON_AddItemToArray(t->sources, cJSON_Duplicate(u, 1));
  }
  cJSON_Delete(used);
}

static void sync_progress(void *ud, const docs_sync_stats *st, const char *url) {
  agent_task *t = ud;
  char detail[160];
  snprintf(detail, sizeof detail, "%d pages fetched, %d from cache", st->fetched, st->cached);
  phase(t, "retrieving", detail);
}

static void sync_done(void *ud, const docs_sync_stats *st, const char *error) {
  agent_task *t = ud;
  t->sync = NULL;
  if (t->cancelled || st->cancelled) {
    finish(t, "cancelled", NULL);
    return;
  }
  char detail[512];
  char refused[160] = "";
  if (st->refused)
    snprintf(refused, sizeof refused, " (%d refused: not public addresses; the user file's "
             "docs.allowPrivateNetwork allows them)", st->refused);
  snprintf(detail, sizeof detail, "%d pages fetched, %d from cache, %d skipped, %d errors%s%s%s", st->fetched,
           st->cached, st->skipped, st->errors, refused, error ? ": " : "", error ? error : "");
  phase(t, "retrieving", detail);
  if (error) log_warn("documentation: %s", error);
  attach_docs(t, t->question);
  schedule(t, ST_INDEX);
}

static void do_retrieve(agent_task *t) {
  if (!t->n_doc_sources || !t->eng->docs) {
    phase(t, "retrieving", t->docs ? "documentation context attached" : "no documentation sources");
    schedule(t, ST_INDEX);
    return;
  }
  char detail[64];
  snprintf(detail, sizeof detail, "%zu documentation source%s", t->n_doc_sources, t->n_doc_sources == 1 ? "" : "s");
  phase(t, "retrieving", detail);
  docs_sync_opts o;
  memset(&o, 0, sizeof o);
  o.sources = (const char *const *)t->doc_sources;
  o.n_sources = t->n_doc_sources;
  o.public_only = t->doc_public_only;
  o.max_depth = t->docs_depth;
  o.max_pages = t->docs_pages;
  o.freshness_s = 3600;
  int err = docs_sync_start(t->eng->docs, t->eng->loop, &o, sync_progress, sync_done, t, &t->sync);
  if (err) {
    log_warn("documentation: cannot start the crawl: %s", strerror(-err));
    attach_docs(t, t->question);
    schedule(t, ST_INDEX);
  }
}

static void do_index(agent_task *t) {
  bool need_index = t->import_check != AGENT_IMPORTS_RUN && t->lang != CHK_LANG_NONE && t->eng->modindex;
  if (!need_index) {
    schedule(t, ST_GENERATE);
    return;
  }
  t->waiting_index = true;
  agent_modindex_get(t->eng->modindex, t->lang, index_ready, t);
}

/* Sends the conversation to the model: structured for a solution, free text
 * for a reflection. */
static void start_chat(agent_task *t, bool structured, llm_token_fn on_token, llm_done_fn on_done) {
  llm_chat_opts o = {0};
  o.messages = t->conv.msgs;
  o.n_messages = t->conv.n;
  o.structured = structured;
  o.on_token = on_token;
  o.on_done = on_done;
  o.ud = t;
  int err = llm_chat_start(t->llm, &o, &t->chat);
  if (err) finish(t, "error", xasprintf("cannot start the LLM request: %s", strerror(-err)));
}

static void do_generate(agent_task *t) {
  reset_attempt(t);
  t->iteration++;
  t->attempt_started_ms = now_ms();
  char detail[64];
  snprintf(detail, sizeof detail, "attempt %d of %d", t->iteration, t->max_iter);
  phase(t, "generating", detail);
  t->cur_prompt = messages_json(&t->conv);
  start_chat(t, true, gen_token, gen_done);
}

static void do_check(agent_task *t) {
  phase(t, "checking", NULL);
  chk_split split;
  memset(&split, 0, sizeof split);
  chk_join_program(t->sol.imports ? t->sol.imports : "", t->sol.code ? t->sol.code : "", &split, &t->program);
  chk_split_close(&split);
  if (t->lang == CHK_LANG_NONE || !t->eng->chk) {
    schedule(t, ST_RUN);
    return;
  }
  chk_doc *doc = chk_doc_new(t->eng->chk, t->lang, t->program, strlen(t->program));
  chk_report rep;
  memset(&rep, 0, sizeof rep);
  chk_options opts = {.modset = t->import_check == AGENT_IMPORTS_RUN ? NULL : t->modset,
                      .deny = (const char *const *)t->deny};
  chk_doc_check(t->eng->chk, doc, &opts, &rep);
  t->cur_check = chk_report_json(&rep, doc, LSP_ENC_UTF16);
  if (chk_report_errors(&rep) > 0) {
    t->failed_stage = "check";
    t->feedback = agent_check_feedback(&rep, t->program, FEEDBACK_BUDGET);
    /* The RunResult of a rejected program: it never ran. */
    cJSON *run = cJSON_CreateObject();
    cJSON_AddStringToObject(run, "outcome", "rejected");
    cJSON_AddNullToObject(run, "exitCode");
    cJSON_AddNullToObject(run, "signal");
    cJSON_AddStringToObject(run, "stdout", "");
    cJSON_AddStringToObject(run, "stderr", "");
    cJSON_AddBoolToObject(run, "truncated", 0);
    cJSON_AddNumberToObject(run, "durationMs", 0);
    cJSON_AddNumberToObject(run, "cpuMs", 0);
    cJSON_AddNumberToObject(run, "maxRssKb", 0);
    cJSON *diags = cJSON_GetObjectItemCaseSensitive(t->cur_check, "diagnostics");
    cJSON_AddItemToObject(run, "diagnostics", diags ? cJSON_Duplicate(diags, 1) : cJSON_CreateArray());
    t->cur_run = run;
    schedule(t, ST_FAIL);
  } else {
    bool import_run = t->import_check != AGENT_IMPORTS_STATIC && t->sol.imports && *t->sol.imports;
    schedule(t, import_run ? ST_IMPORT_RUN : ST_RUN);
  }
  chk_report_close(&rep);
  chk_doc_free(doc);
}

static void start_run(agent_task *t, const char *code, const char *detail, void (*done)(void *, const sbx_result *)) {
  phase(t, "running", detail);
  sbx_request req = {0};
  req.language = t->language;
  req.code = code;
  req.code_len = strlen(code);
  req.limits = t->limits;
  /* The answer stands in for the selection: its runtime errors are placed on
   * the document's lines from the selection's start. */
  req.line_offset = t->ctx_line;
  req.owner = t->owner;
  sbx_callbacks cbs = {.on_output = run_output, .on_done = done};
  int err = sbx_run_start(t->eng->runner, &req, &cbs, t, &t->run);
  if (err) finish(t, "error", xasprintf("cannot start the sandbox: %s", strerror(-err)));
}

static void do_fail(agent_task *t) {
  emit_attempt(t, false);
  if (t->iteration >= t->max_iter) {
    finish(t, "failed", NULL);
    return;
  }
  agent_conv_add(&t->conv, "user", t->feedback ? t->feedback : "The attempt failed.");
  if (t->n_doc_sources && t->feedback) {
    /* Search again with the error, so the page that explains a failing API
     * can reach the next attempt. */
    char *tail = agent_tail(t->feedback, strlen(t->feedback), 600);
    char *query = xasprintf("%s\n%s", t->question, tail);
    attach_docs(t, query);
    free(query);
    free(tail);
  }
  if (!t->reflect) {
    agent_conv_add(&t->conv, "user", agent_retry_prompt());
    schedule(t, ST_GENERATE);
    return;
  }
  phase(t, "reflecting", t->failed_stage);
  agent_conv_add(&t->conv, "user", agent_reflect_prompt());
  dbuf_reset(&t->reflection);
  start_chat(t, false, reflect_token, reflect_done);
}

static void task_closed(uv_handle_t *h) {
  agent_task *t = container_of((uv_timer_t *)h, agent_task, step);
  free(t);
}

static void do_finish(agent_task *t) {
  if (!t->outcome) t->outcome = "passed";
  bool passed = !strcmp(t->outcome, "passed");
  /* An attempt that ended the task is reported once, whatever ended it. */
  if (passed || (t->have_sol && !strcmp(t->outcome, "cancelled"))) emit_attempt(t, passed);
  phase(t, "finished", t->outcome);
  cJSON *r = cJSON_CreateObject();
  cJSON_AddStringToObject(r, "task", t->label);
  cJSON_AddStringToObject(r, "uid", t->uid);
  cJSON_AddStringToObject(r, "outcome", t->outcome);
  cJSON_AddNumberToObject(r, "iterations", t->iteration);
  cJSON_AddItemToObject(r, "solution", t->last_solution ? t->last_solution : cJSON_CreateNull());
  cJSON_AddItemToObject(r, "run", t->last_run ? t->last_run : cJSON_CreateNull());
  t->last_solution = t->last_run = NULL;
  cJSON_AddItemToObject(r, "attempts", t->attempts);
  t->attempts = NULL;
  cJSON_AddItemToObject(r, "sources", t->sources);
  t->sources = NULL;
  cJSON *u = cJSON_AddObjectToObject(r, "usage");
  cJSON_AddNumberToObject(u, "promptTokens", (double)t->prompt_tokens);
  cJSON_AddNumberToObject(u, "completionTokens", (double)t->completion_tokens);
  cJSON_AddNumberToObject(r, "durationMs", (double)(now_ms() - t->started_ms));
  if (t->error) cJSON_AddStringToObject(r, "error", t->error);
  if (t->error_kind) cJSON_AddStringToObject(r, "errorKind", t->error_kind);
  if (t->eng->store)
    store_task_finish(t->eng->store, t->uid, t->outcome, t->iteration, t->prompt_tokens, t->completion_tokens,
                      (long long)(now_ms() - t->started_ms), r);

  reset_attempt(t);
  llm_client_free(t->llm);
  t->llm = NULL;
  agent_conv_close(&t->conv);
  dbuf_close(&t->reflection);
  llm_config_close(&t->llm_cfg);
  free(t->label);
  free(t->question);
  free(t->language);
  free(t->ctx_text);
  free(t->ctx_uri);
  free(t->docs);
  free(t->error);
  for (size_t i = 0; i < t->n_doc_sources; i++) free(t->doc_sources[i]);
  free(t->doc_sources);
  free(t->doc_public_only);
  cJSON_Delete(t->sources);
  for (char **d = t->deny; d && *d; d++) free(*d);
  free(t->deny);
  t->sink.done(t->ud, r);
  uv_close((uv_handle_t *)&t->step, task_closed);
}

static void on_step(uv_timer_t *timer) {
  agent_task *t = container_of(timer, agent_task, step);
  state s = t->next;
  t->next = ST_NONE;
  if (t->cancelled && s != ST_FINISH) {
    if (t->chat || t->run || t->waiting_index || t->sync) return; /* their callbacks will finish */
    finish(t, "cancelled", NULL);
    return;
  }
  switch (s) {
  case ST_NONE: break;
  case ST_RETRIEVE: do_retrieve(t); break;
  case ST_INDEX: do_index(t); break;
  case ST_GENERATE: do_generate(t); break;
  case ST_CHECK: do_check(t); break;
  case ST_IMPORT_RUN: start_run(t, t->sol.imports, "import test", import_run_done); break;
  case ST_RUN: start_run(t, t->program, "code execution", run_done); break;
  case ST_FAIL: do_fail(t); break;
  case ST_FINISH: do_finish(t); break;
  }
}

int agent_task_start(agent_engine *eng, const agent_params *p, const agent_sink *sink, void *ud, agent_task **out) {
  if (!p->question || !sink || !sink->done) return -EINVAL;
  agent_task *t = xcalloc(1, sizeof *t);
  t->eng = eng;
  t->sink = *sink;
  t->ud = ud;
  t->label = xstrdup(p->task ? p->task : "");
  t->question = xstrdup(p->question);
  t->language = xstrdup(p->language ? p->language : "python");
  t->lang = chk_language_parse(t->language);
  t->ctx_text = p->context_text ? xstrdup(p->context_text) : NULL;
  t->ctx_uri = p->context_uri ? xstrdup(p->context_uri) : NULL;
  t->ctx_line = p->context_uri && p->context_line > 0 ? p->context_line : 0;
  t->docs = p->docs_context ? xstrdup(p->docs_context) : NULL;
  t->sources = cJSON_CreateArray();
  if (p->n_doc_sources) {
    t->doc_sources = xcalloc(p->n_doc_sources, sizeof *t->doc_sources);
    for (size_t i = 0; i < p->n_doc_sources; i++) t->doc_sources[i] = xstrdup(p->doc_sources[i]);
    t->n_doc_sources = p->n_doc_sources;
    if (p->doc_public_only) {
      t->doc_public_only = xcalloc(p->n_doc_sources, sizeof *t->doc_public_only);
      memcpy(t->doc_public_only, p->doc_public_only, p->n_doc_sources * sizeof *t->doc_public_only);
    }
  }
  t->docs_mode = p->docs_mode;
  t->docs_budget = p->docs_budget_tokens > 0 ? p->docs_budget_tokens : 6000;
  t->docs_depth = p->docs_max_depth > 0 ? p->docs_max_depth : 20;
  t->docs_pages = p->docs_max_pages > 0 ? p->docs_max_pages : 500;
  t->max_iter = p->max_iterations > 0 ? p->max_iterations : 3;
  t->reflect = p->reflect;
  t->import_check = p->import_check;
  size_t nd = 0;
  while (p->deny_imports && p->deny_imports[nd]) nd++;
  t->deny = xcalloc(nd + 1, sizeof *t->deny);
  for (size_t i = 0; i < nd; i++) t->deny[i] = xstrdup(p->deny_imports[i]);
  t->limits = p->limits;
  t->owner = p->owner;
  llm_config_init(&t->llm_cfg);
  if (p->llm) {
    t->llm_cfg = *p->llm;
    t->llm_cfg.base_url = p->llm->base_url ? xstrdup(p->llm->base_url) : NULL;
    t->llm_cfg.model = p->llm->model ? xstrdup(p->llm->model) : NULL;
    t->llm_cfg.api_key = p->llm->api_key ? xstrdup(p->llm->api_key) : NULL;
    t->llm_cfg.user_agent = p->llm->user_agent ? xstrdup(p->llm->user_agent) : NULL;
  }
  dbuf_init(&t->reflection, 256 << 10);
  agent_conv_init(&t->conv);
  t->attempts = cJSON_CreateArray();
  t->started_ms = now_ms();
  store_make_uid(t->uid, sizeof t->uid);

  int err = llm_client_new(eng->loop, &t->llm_cfg, &t->llm);
  if (err) {
    llm_config_close(&t->llm_cfg);
    dbuf_close(&t->reflection);
    cJSON_Delete(t->attempts);
    free(t->label), free(t->question), free(t->language), free(t->ctx_text), free(t->ctx_uri), free(t->docs);
    for (size_t i = 0; i < t->n_doc_sources; i++) free(t->doc_sources[i]);
    free(t->doc_sources);
  free(t->doc_public_only);
    cJSON_Delete(t->sources);
    for (char **d = t->deny; d && *d; d++) free(*d);
    free(t->deny);
    free(t);
    return err;
  }
  uv_timer_init(eng->loop, &t->step);
  agent_conv_take(&t->conv, "system", agent_system_prompt(t->language, t->docs));
  agent_conv_take(&t->conv, "user", agent_question_prompt(t->question, t->ctx_text, t->ctx_uri));
  if (eng->store) store_task_begin(eng->store, t->uid, t->label, "ask", t->question, t->language);
  schedule(t, ST_RETRIEVE);
  if (out) *out = t;
  return 0;
}

void agent_task_cancel(agent_task *t) {
  if (t->cancelled || t->outcome) return;
  t->cancelled = true;
  if (t->sync) {
    docs_sync_cancel(t->sync);
  } else if (t->chat) {
    llm_chat_cancel(t->chat);
  } else if (t->run) {
    sbx_run_cancel(t->run);
  } else if (t->waiting_index) {
    agent_modindex_unwait(t->eng->modindex, t->lang, index_ready, t);
    t->waiting_index = false;
    finish(t, "cancelled", NULL);
  } else {
    finish(t, "cancelled", NULL);
  }
}
