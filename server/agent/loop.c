/* The ask loop: generate → check → run → reflect → retry, as a state machine.
 *
 * What happens in a state is reported as an event (report); the pure rule
 * agent_transition (machine.c) picks the next state, and enter() — the one
 * place a task's state changes — logs the change and runs the new state's
 * entry hook from a zero-delay timer (`step`). So the work of a state never
 * runs inside an LLM or sandbox callback: those only record what happened
 * and report it. Attempts and the result are typed (result.h) and owned by
 * the task until they are handed to the sink. */
#include "loop.h"
#include "embed.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "dbuf.h"
#include "defaults.h"
#include "log.h"
#include "machine.h"
#include "prompt.h"
#include "tools.h"

#define FEEDBACK_BUDGET 6000

struct agent_task {
  agent_engine *eng;
  agent_sink sink;
  void *ud;
  uv_timer_t step;            /* runs the entry hook of `state` */
  bool step_open;             /* step is initialised: it is closed before the task is freed */
  agent_state state, prev;    /* written by enter() only */
  bool cancelled;

  /* what was asked (copies) */
  char *question, *language, *ctx_text, *ctx_uri, *docs;
  int ctx_line;
  chk_language lang;
  int max_iter;
  bool reflect;
  agent_import_check import_check;
  char **deny;                /* NULL-terminated */
  sbx_limits limits;
  sbx_env *env;       /* the program's environment (a copy); NULL: the system */
  sbx_env *base_env;  /* the request's environment (a copy), when an attempt installed others */
  /* declared dependencies (agent.installDependencies) */
  bool install_deps, extendable;
  char **base_reqs;           /* the request's packages environment's requirements */
  size_t n_base_reqs;
  env_resolved *installed;    /* the environment the current answers run in, when built for them */
  env_waiter *install_wait;   /* a build in progress */
  const chk_modset *base_modset; /* the request's environment's module index (NULL: none) */
  const void *owner;
  llm_config llm_cfg;
  char **doc_sources;
  size_t n_doc_sources;
  bool *doc_public_only;      /* one per source, or NULL */
  agent_docs_mode docs_mode;
  int docs_budget, docs_depth, docs_pages;

  /* hybrid ranking (docs.embeddingModel): the question's embedding */
  char *embed_model;
  agent_embedder embedder;
  void *embed_req;            /* the question's embedding request in flight */
  float *qvec;
  int qdim;
  char *lexical_why;          /* why ranking is lexical though a model is set; NULL */

  /* the work in flight: at most one of these at a time */
  docs_sync *sync;
  llm_chat *chat;
  sbx_run *run;
  bool waiting_index;
  const chk_modset *modset;
  char *modules_note;         /* the system prompt's line on the environment's modules; NULL: not known */

  /* documentation tools (docs_search, docs_read): offered in search mode
   * when the request has sources, until the endpoint refuses them */
  bool tools_refused;
  bool tools_closed;          /* this attempt's tools are spent: the next ask says tool_choice "none" */
  agent_tool_bounds tool_bounds;
  char *tool_calls_json;      /* the calls of the round to run (the assistant message), or NULL */
  char *tool_content;         /* what the model wrote beside those calls, or NULL */
  struct agent_pending_call {
    char *id, *name, *args;
  } *pending;                 /* the calls of that round */
  size_t n_pending;

  agent_conv conv;
  int iteration;
  unsigned long long started_ms;
  dbuf reflection;            /* the reflection as it streams */
  char *program;              /* the current attempt's imports, code and test, joined */
  int test_line;              /* the program's first line of the answer's test (0-based); -1: none */
  agent_attempt *cur;         /* the attempt in progress; NULL between attempts */
  agent_result *result;       /* owned until handed to sink.done */
};

static void on_step(uv_timer_t *t);

/* The one place a task's state changes: logs it and runs the new state's
 * entry hook from the loop. */
static void enter(agent_task *t, agent_state next, agent_event why) {
  log_debug("ask %s: %s --%s--> %s", t->result->uid, agent_state_name(t->state), agent_event_name(why),
            agent_state_name(next));
  t->prev = t->state;
  t->state = next;
  uv_timer_start(&t->step, on_step, 0, 0);
}

static agent_facts facts_of(const agent_task *t) {
  const agent_attempt *a = t->cur;
  return (agent_facts){
      .cancelled = t->cancelled,
      .iteration = t->iteration,
      .max_iterations = t->max_iter,
      .reflect = t->reflect,
      .import_check = t->import_check,
      .checked = t->lang != CHK_LANG_NONE && t->eng->chk,
      .has_imports = a && a->has_solution && a->solution.imports && *a->solution.imports,
      .tools_closed = t->tools_closed,
  };
}

/* Reports what the current state's work came to: agent_transition decides
 * what follows, and enter() goes there. For AGENT_EV_ERROR, error (taken,
 * may be NULL) says why and kind how an LLM request failed. Events after
 * the outcome is known are dropped. */
static void report_with(agent_task *t, agent_event ev, char *error, llm_error_kind kind) {
  if (t->state == AGENT_ST_DONE) {
    free(error);
    return;
  }
  agent_facts f = facts_of(t);
  agent_step s = agent_transition(t->state, ev, &f);
  if (!s.valid) {
    log_error("internal error: ask %s: event %s in state %s", t->result->uid, agent_event_name(ev),
              agent_state_name(t->state));
    free(error);
    error = xasprintf("internal error: event %s in state %s", agent_event_name(ev), agent_state_name(t->state));
  }
  if (s.next == AGENT_ST_DONE) {
    t->result->outcome = s.outcome;
    if (s.outcome == AGENT_ERROR) {
      t->result->error = error;
      t->result->error_kind = kind;
      error = NULL;
    }
  }
  free(error);
  enter(t, s.next, ev);
}

static void report(agent_task *t, agent_event ev) {
  report_with(t, ev, NULL, LLM_ERR_NONE);
}

/* The task cannot go on: error (taken) says why. */
static void report_error(agent_task *t, char *error, llm_error_kind kind) {
  report_with(t, AGENT_EV_ERROR, error, kind);
}

static void phase(agent_task *t, agent_phase p, const char *detail) {
  if (t->sink.phase) t->sink.phase(t->ud, t->iteration, p, detail);
}

/* Ends the current attempt: the sink and the transcript get it, and the
 * result keeps it. */
static void end_attempt(agent_task *t, bool passed) {
  agent_attempt *a = t->cur;
  t->cur = NULL;
  a->passed = passed;
  free(a->summary);
  a->summary = agent_attempt_summarize(a);
  a->duration_ms = (long long)(now_ms() - a->started_ms);
  if (t->sink.attempt) t->sink.attempt(t->ud, a);
  if (t->eng->store) {
    cJSON *j = agent_attempt_json(a, t->result->task, AGENT_JSON_TRANSCRIPT);
    store_attempt_put(t->eng->store, t->result->uid, a->iteration, j);
    cJSON_Delete(j);
  }
  agent_result_add_attempt(t->result, a);
}

/* ---- LLM callbacks: record, then report ---- */

static void gen_token(void *ud, const char *text, size_t len) {
  agent_task *t = ud;
  if (t->sink.token && !t->cancelled) t->sink.token(t->ud, t->iteration, text, len);
}

/* What every chat's end has in common: the chat is over, its usage counts,
 * and a cancelled or failed chat ends the task. Returns true when the
 * answer may be used. */
static bool chat_ended(agent_task *t, const llm_result *res) {
  t->chat = NULL;
  if (res->prompt_tokens > 0) t->result->prompt_tokens += res->prompt_tokens;
  if (res->completion_tokens > 0) t->result->completion_tokens += res->completion_tokens;
  if (t->cancelled || res->status == LLM_CANCELLED) {
    report(t, AGENT_EV_CANCEL);
    return false;
  }
  if (res->status != LLM_OK) {
    report_error(t, xstrdup(res->error ? res->error : "the LLM request failed"), res->error_kind);
    return false;
  }
  return true;
}

static bool tools_offered(const agent_task *t) {
  return t->n_doc_sources && t->eng->docs && t->docs_mode == AGENT_DOCS_SEARCH && !t->tools_refused &&
         t->tool_bounds.tokens_max > 0;
}

static void pending_clear(agent_task *t) {
  for (size_t i = 0; i < t->n_pending; i++) {
    free(t->pending[i].id);
    free(t->pending[i].name);
    free(t->pending[i].args);
  }
  free(t->pending);
  t->pending = NULL;
  t->n_pending = 0;
  free(t->tool_calls_json);
  t->tool_calls_json = NULL;
  free(t->tool_content);
  t->tool_content = NULL;
}

/* The string member `key` of o, copied ("" when absent). */
static char *json_str(const cJSON *o, const char *key) {
  const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
  return xstrdup(v ? v : "");
}

/* Whether the answer calls a documentation tool: then its calls are kept
 * for the TOOLS state and true is returned. */
static bool take_tool_calls(agent_task *t, const llm_result *res) {
  if (res->tools_refused) t->tools_refused = true;
  bool any = false;
  for (size_t i = 0; i < res->n_tool_calls; i++) any = any || agent_tool_known(res->tool_calls[i].name);
  if (!any || !res->tool_calls_json) return false;
  pending_clear(t);
  cJSON *calls = cJSON_Parse(res->tool_calls_json), *c;
  t->pending = xcalloc(res->n_tool_calls, sizeof *t->pending);
  /* the ids as sent back in the assistant message (a call without one got "call_<n>") */
  cJSON_ArrayForEach(c, calls) {
    if (t->n_pending == res->n_tool_calls) break;
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(c, "function");
    struct agent_pending_call *p = &t->pending[t->n_pending++];
    p->id = json_str(c, "id");
    p->name = json_str(fn, "name");
    p->args = json_str(fn, "arguments");
  }
  cJSON_Delete(calls);
  t->tool_calls_json = xstrdup(res->tool_calls_json);
  t->tool_content = res->content && *res->content ? xstrdup(res->content) : NULL;
  return true;
}

static void gen_done(void *ud, const llm_result *res) {
  agent_task *t = ud;
  if (!chat_ended(t, res)) return;
  agent_attempt *a = t->cur;
  if (take_tool_calls(t, res)) {
    if (t->tools_closed) {
      /* told to answer now, it called them again: the attempt fails (the
       * rule sends TOOLS to FAILED), so tool rounds always end */
      pending_clear(t);
      a->answer = xstrdup(res->text ? res->text : "");
      a->failed_stage = AGENT_STAGE_ANSWER;
      a->error = xstrdup("Your answer called the documentation tools again after their limit. Answer with the "
                         "solution now, without calling docs_search or docs_read.");
    }
    report(t, AGENT_EV_TOOLS);
    return;
  }
  a->answer = xstrdup(res->text ? res->text : "");
  if (*a->answer) agent_conv_add(&t->conv, "assistant", a->answer);
  char *err = NULL;
  if (llm_solution_parse(a->answer, res->mode, &a->solution, &err) == 0) {
    a->has_solution = true;
    report(t, AGENT_EV_OK);
  } else {
    a->failed_stage = AGENT_STAGE_ANSWER;
    a->error = xasprintf("Your answer could not be used: %s", err ? err : "it is not in the asked form");
    free(err);
    report(t, AGENT_EV_FAILED);
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
  /* The reflection belongs to the failed attempt: its transcript entry is
   * written again with it. */
  agent_attempt *last = agent_result_last(t->result);
  if (last && t->reflection.len) {
    free(last->reflection);
    last->reflection = xstrdup(t->reflection.data);
    if (t->eng->store) {
      cJSON *j = agent_attempt_json(last, t->result->task, AGENT_JSON_TRANSCRIPT);
      store_attempt_put(t->eng->store, t->result->uid, last->iteration, j);
      cJSON_Delete(j);
    }
  }
  char *msg = xasprintf("Here are reflections on the error: %s", t->reflection.data ? t->reflection.data : "");
  agent_conv_take(&t->conv, "assistant", msg);
  report(t, AGENT_EV_OK);
}

/* ---- sandbox callbacks ---- */

static void run_output(void *ud, int stream, const char *bytes, size_t len) {
  agent_task *t = ud;
  if (t->sink.output && !t->cancelled) t->sink.output(t->ud, t->iteration, stream, bytes, len);
}

/* What the run of stage (imports or run) came to. A program passes when it
 * exits 0, its test (when the answer has one) passed with it, and it
 * printed something when the question asks for output. */
static void run_ended(agent_task *t, const sbx_result *res, agent_stage stage) {
  t->run = NULL;
  agent_attempt *a = t->cur;
  sbx_result_free(a->run);
  a->run = sbx_result_dup(res);
  bool whole = stage == AGENT_STAGE_RUN;
  if (t->cancelled || res->outcome == SBX_CANCELLED) {
    report(t, AGENT_EV_CANCEL);
  } else if (res->outcome == SBX_OK && res->exit_code == 0) {
    if (whole && res->out_len == 0 && agent_question_wants_output(t->question)) {
      a->failed_stage = AGENT_STAGE_RUN;
      a->error = xstrdup("The program ran and exited 0 but printed nothing, and the question asks for output. "
                         "Print the result to stdout.\n");
      report(t, AGENT_EV_FAILED);
      return;
    }
    report(t, AGENT_EV_OK);
  } else {
    /* An error raised on a line of the test is the test failing. */
    if (whole && t->test_line >= 0 && res->ndiags > 0 && res->diags[res->ndiags - 1].line >= t->test_line + t->ctx_line)
      stage = AGENT_STAGE_TEST;
    a->failed_stage = stage;
    a->error = agent_run_feedback(res, stage == AGENT_STAGE_IMPORTS ? "import test"
                                       : stage == AGENT_STAGE_TEST ? "test" : "program",
                                  FEEDBACK_BUDGET);
    report(t, AGENT_EV_FAILED);
  }
}

static void import_run_done(void *ud, const sbx_result *res) {
  run_ended(ud, res, AGENT_STAGE_IMPORTS);
}

static void run_done(void *ud, const sbx_result *res) {
  run_ended(ud, res, AGENT_STAGE_RUN);
}

/* The system prompt: the language's, the documentation context, the
 * third-party modules the environment has, and (when answers may declare
 * packages) how to declare them. */
static char *system_prompt(const agent_task *t) {
  char *p = agent_system_prompt(t->language, t->docs && *t->docs ? t->docs : NULL);
  bool deps = t->install_deps && t->extendable && t->eng->envs && t->lang != CHK_LANG_BASH;
  if (!t->modules_note && !deps) return p;
  char *q = xasprintf("%s%s%s", p, t->modules_note ? t->modules_note : "",
                      deps ? "\nPackages beyond the standard library may be used: list them in `dependencies` "
                             "(their names on the package index); they are installed before the program runs.\n"
                           : "");
  free(p);
  return q;
}

static void index_ready(void *ud, const chk_modset *set, const char *error) {
  agent_task *t = ud;
  t->waiting_index = false;
  t->modset = set;
  if (t->state == AGENT_ST_INDEX) t->base_modset = set;
  if (set && t->lang != CHK_LANG_BASH) {
    size_t n;
    const char *const *third = chk_modset_third_party(set, &n);
    free(t->modules_note); /* the index of the environment an answer's packages were installed into */
    t->modules_note = agent_modules_note(third, n);
    free((char *)t->conv.msgs[0].content);
    t->conv.msgs[0].content = system_prompt(t);
  }
  if (!set && error) log_warn("imports are not resolved for %s: %s", t->language, error);
  report(t, AGENT_EV_OK);
}

/* The system prompt; when declared dependencies are installed, it says so. */

/* ---- documentation ---- */

/* Puts the documentation that best matches `query` into the system prompt
 * (replacing what an earlier attempt had) and records the pages used. */
static void attach_docs(agent_task *t, const char *query) {
  if (!t->n_doc_sources || !t->eng->docs) return;
  cJSON *used = NULL;
  char *warning = NULL;
  bool search = t->docs_mode != AGENT_DOCS_ALL, hybrid = false;
  /* a retry's query adds the error text to the question: the lexical side
   * searches for it, the vector side keeps the question's embedding */
  docs_query_vec qv = {.model = t->embed_model, .v = t->qvec, .dim = t->qdim};
  char *ctx = docs_context_build_hybrid(t->eng->docs, query, t->qvec ? &qv : NULL,
                                        (const char *const *)t->doc_sources, t->n_doc_sources,
                                        search ? "search" : "all", t->docs_budget, &used, &warning, NULL, &hybrid);
  if (search) {
    t->result->ranking = hybrid ? "hybrid" : "lexical";
    if (t->qvec && !hybrid && !t->lexical_why) {
      t->lexical_why = xasprintf("no chunk of the sources has a vector of model '%s'", t->embed_model);
      log_warn("documentation: ranking is lexical: %s", t->lexical_why);
    }
  }
  if (warning) {
    log_warn("documentation: %s", warning);
    phase(t, AGENT_PHASE_RETRIEVING, warning);
    free(warning);
  }
  if (!ctx) {
    cJSON_Delete(used);
    return;
  }
  free(t->docs);
  t->docs = ctx;
  free((char *)t->conv.msgs[0].content);
  t->conv.msgs[0].content = system_prompt(t);
  const cJSON *u;
  cJSON_ArrayForEach(u, used) {
    agent_result_add_source(t->result, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(u, "title")),
                            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(u, "url")));
  }
  cJSON_Delete(used);
}

static void retrieve_rank(agent_task *t);

static void sync_progress(void *ud, const docs_sync_stats *st, const char *url) {
  agent_task *t = ud;
  char detail[160];
  snprintf(detail, sizeof detail, "%d pages fetched, %d from cache", st->fetched, st->cached);
  phase(t, AGENT_PHASE_RETRIEVING, detail);
}

static void sync_done(void *ud, const docs_sync_stats *st, const char *error) {
  agent_task *t = ud;
  t->sync = NULL;
  if (t->cancelled || st->cancelled) {
    report(t, AGENT_EV_CANCEL);
    return;
  }
  char detail[512];
  char refused[160] = "";
  if (st->refused)
    snprintf(refused, sizeof refused, " (%d refused: not public addresses; the user file's "
             "docs.allowPrivateNetwork allows them)", st->refused);
  snprintf(detail, sizeof detail, "%d pages fetched, %d from cache, %d skipped, %d errors%s%s%s", st->fetched,
           st->cached, st->skipped, st->errors, refused, error ? ": " : "", error ? error : "");
  phase(t, AGENT_PHASE_RETRIEVING, detail);
  if (error) log_warn("documentation: %s", error);
  retrieve_rank(t);
}

static void on_question_embedded(void *ud, const float *vecs, size_t n, int dim, const char *error) {
  agent_task *t = ud;
  t->embed_req = NULL;
  if (t->cancelled) {
    report(t, AGENT_EV_CANCEL);
    return;
  }
  if (error || !vecs || n != 1 || dim <= 0) {
    t->lexical_why = xasprintf("the question could not be embedded: %s", error ? error : "no vector");
    log_warn("documentation: ranking is lexical: %s", t->lexical_why);
  } else {
    t->qvec = xcalloc((size_t)dim, sizeof *t->qvec);
    memcpy(t->qvec, vecs, (size_t)dim * sizeof *t->qvec);
    t->qdim = dim;
  }
  attach_docs(t, t->question);
  report(t, AGENT_EV_OK);
}

/* The retrieval's last step: with docs.embeddingModel set, the question is
 * embedded first (a request on the loop, bounded by
 * AGENT_QUERY_EMBED_TIMEOUT_MS; the ask waits for it as it waits for the
 * model), then the context is ranked. */
static void retrieve_rank(agent_task *t) {
  if (agent_embedder_on(&t->embedder) && t->docs_mode != AGENT_DOCS_ALL) {
    const char *q = t->question;
    int err = t->embedder.base.start(&t->embedder.base, &q, 1, AGENT_QUERY_EMBED_TIMEOUT_MS, on_question_embedded,
                                     t, &t->embed_req);
    if (!err) return;
    t->lexical_why = xasprintf("the question could not be embedded: %s", strerror(-err));
    log_warn("documentation: ranking is lexical: %s", t->lexical_why);
  }
  attach_docs(t, t->question);
  report(t, AGENT_EV_OK);
}

/* Tells the model why the last attempt failed, and searches the
 * documentation again with the error, so the page that explains a failing
 * API can reach the next attempt. */
static void tell_failure(agent_task *t) {
  const agent_attempt *last = agent_result_last(t->result);
  const char *why = last ? last->error : NULL;
  agent_conv_add(&t->conv, "user", why ? why : "The attempt failed.");
  if (t->n_doc_sources && why) {
    char *tail = agent_tail(why, strlen(why), 600);
    char *query = xasprintf("%s\n%s", t->question, tail);
    attach_docs(t, query);
    free(query);
    free(tail);
  }
}

/* Sends the conversation to the model: structured for a solution, free text
 * for a reflection. */
static void start_chat(agent_task *t, bool structured, llm_token_fn on_token, llm_done_fn on_done) {
  llm_chat_opts o = {0};
  o.config = &t->llm_cfg;
  o.messages = t->conv.msgs;
  o.n_messages = t->conv.n;
  o.structured = structured;
  if (tools_offered(t)) {
    /* a reflection is not asked to call them, but the conversation may
     * hold tool calls already, which some endpoints accept only with the
     * tools defined */
    o.tools = agent_tools_json();
    o.tool_choice = structured && !t->tools_closed ? "auto" : "none";
  }
  o.on_token = on_token;
  o.on_done = on_done;
  o.ud = t;
  int err = llm_chat_start(t->eng->llm, &o, &t->chat);
  if (err)
    report_error(t, xasprintf("cannot start the LLM request: %s", strerror(-err)), LLM_ERR_NONE);
}

static void start_run(agent_task *t, const char *code, agent_stage stage, void (*done)(void *, const sbx_result *)) {
  phase(t, AGENT_PHASE_RUNNING, stage == AGENT_STAGE_IMPORTS ? "import test" : "code execution");
  sbx_request req = {0};
  req.language = t->language;
  req.code = code;
  req.code_len = strlen(code);
  req.limits = t->limits;
  req.env = t->env;
  /* The answer stands in for the selection: its runtime errors are placed on
   * the document's lines from the selection's start. */
  req.line_offset = t->ctx_line;
  req.owner = t->owner;
  sbx_callbacks cbs = {.on_output = run_output, .on_done = done};
  int err = sbx_run_start(t->eng->runner, &req, &cbs, t, &t->run);
  if (err) report_error(t, xasprintf("cannot start the sandbox: %s", strerror(-err)), LLM_ERR_NONE);
}

/* ---- declared dependencies ---- */

/* The environment for this attempt's runs is env (taken; NULL: the
 * request's own): the module index is learned for it when the import check
 * needs one (index_ready reports), else OK is reported. */
static void use_env(agent_task *t, env_resolved *env) {
  if (!env && !t->installed) {
    report(t, AGENT_EV_OK); /* the request's environment, as before */
    return;
  }
  env_resolved_free(t->installed);
  t->installed = env;
  sbx_env_free(t->env);
  t->env = sbx_env_dup(env ? env_resolved_sbx(env) : t->base_env);
  cJSON_Delete(t->cur->environment);
  t->cur->environment = env ? env_resolved_json(env) : NULL;
  cJSON_Delete(t->result->environment);
  t->result->environment = env ? env_resolved_json(env) : NULL;
  t->modset = NULL;
  bool need_index = t->import_check != AGENT_IMPORTS_RUN && t->lang != CHK_LANG_NONE && t->eng->modindex;
  if (!need_index) {
    report(t, AGENT_EV_OK);
    return;
  }
  t->waiting_index = true;
  modindex_get_env(t->eng->modindex, t->lang, t->env, index_ready, t); /* may call index_ready at once */
}

static void install_failed(agent_task *t, const char *why) {
  agent_attempt *a = t->cur;
  a->failed_stage = AGENT_STAGE_INSTALL;
  a->error = xasprintf("Your declared dependencies could not be installed, so the code did not run:\n%s\n"
                       "Declare only packages that exist on the package index (or none, if the standard "
                       "library suffices).", why);
  report(t, AGENT_EV_FAILED);
}

static void install_progress(void *ud, const char *line, int percent) {
  agent_task *t = ud;
  (void)percent;
  phase(t, AGENT_PHASE_INSTALLING, line);
}

static void install_done(void *ud, env_resolved *env, const char *error) {
  agent_task *t = ud;
  t->install_wait = NULL;
  if (t->cancelled) {
    env_resolved_free(env);
    report(t, AGENT_EV_CANCEL);
    return;
  }
  if (!env) {
    install_failed(t, error ? error : "the environment could not be built");
    return;
  }
  phase(t, AGENT_PHASE_INSTALLING, "installed");
  use_env(t, env);
}

/* Whether the requirement names a module the request's environment has
 * (a python stdlib module declared as a package). */
static bool provided(const agent_task *t, const char *req) {
  if (!t->base_modset || t->lang != CHK_LANG_PYTHON) return false;
  size_t len = 0;
  while (req[len] && (isalnum((unsigned char)req[len]) || req[len] == '-' || req[len] == '_' || req[len] == '.')) len++;
  if (!len || req[len]) return false; /* with a version or extras: a package meant */
  char *m = xstrndup(req, len);
  for (char *c = m; *c; c++) {
    if (*c == '-') *c = '_';
  }
  bool has = strchr(m, '.') == NULL && chk_modset_has(t->base_modset, m);
  free(m);
  return has;
}

static void enter_install(agent_task *t) {
  agent_attempt *a = t->cur;
  const llm_solution *s = &a->solution;
  /* What the answer declares: its `dependencies`, and a PEP 723 block at
   * the top of its code (the split may have put it with the imports). */
  char **pep = NULL, *err = NULL;
  int np = env_pep723_dependencies(s->imports, &pep, &err);
  if (np == 0 && !err) np = env_pep723_dependencies(s->code, &pep, &err);
  if (np < 0) {
    a->failed_stage = AGENT_STAGE_INSTALL;
    a->error = xasprintf("Your code's inline script metadata could not be read: %s", err);
    free(err);
    report(t, AGENT_EV_FAILED);
    return;
  }
  sbx_lang sl = LANG_DEFAULT;
  sbx_lang_parse(t->language, &sl);
  size_t n = s->n_dependencies + (size_t)np;
  if (!n || !t->install_deps || !t->extendable || !t->eng->envs || sl == SBX_LANG_BASH) {
    if (n && !t->install_deps) phase(t, AGENT_PHASE_INSTALLING, "declared dependencies are not installed "
                                                               "(agent.installDependencies is off)");
    else if (n && t->install_deps) phase(t, AGENT_PHASE_INSTALLING, "declared dependencies are not installed "
                                                                  "into this environment");
    env_strv_free(pep, (size_t)np);
    use_env(t, NULL);
    return;
  }
  /* the request's packages, then the declared ones, but for names the
   * request's environment has as modules already (models declare "json") */
  const char **reqs = xcalloc(t->n_base_reqs + n, sizeof *reqs);
  size_t k = 0;
  for (size_t i = 0; i < t->n_base_reqs; i++) reqs[k++] = t->base_reqs[i];
  for (size_t i = 0; i < n; i++) {
    const char *d = i < s->n_dependencies ? s->dependencies[i] : pep[i - s->n_dependencies];
    if (!provided(t, d)) reqs[k++] = d;
  }
  if (k == t->n_base_reqs) {
    phase(t, AGENT_PHASE_INSTALLING, "the declared dependencies are provided by the environment");
    free(reqs);
    env_strv_free(pep, (size_t)np);
    use_env(t, NULL);
    return;
  }
  dbuf d;
  dbuf_init(&d, 0);
  for (size_t i = t->n_base_reqs; i < k; i++) dbuf_addf(&d, "%s%s", i > t->n_base_reqs ? " " : "", reqs[i]);
  phase(t, AGENT_PHASE_INSTALLING, d.data);
  dbuf_close(&d);
  env_resolved *env = NULL;
  env_build_cbs cbs = {.progress = install_progress, .done = install_done};
  int rc = env_cache_acquire(t->eng->envs, sl, reqs, k, &cbs, t, &env, &t->install_wait, &err);
  free(reqs);
  env_strv_free(pep, (size_t)np);
  if (rc == 1) {
    phase(t, AGENT_PHASE_INSTALLING, "already built");
    use_env(t, env);
  } else if (rc < 0) {
    t->install_wait = NULL;
    install_failed(t, err ? err : strerror(-rc));
    free(err);
  }
}

/* ---- entry hooks: the work of each state ---- */

static void enter_retrieve(agent_task *t) {
  if (!t->n_doc_sources || !t->eng->docs) {
    phase(t, AGENT_PHASE_RETRIEVING, t->docs ? "documentation context attached" : "no documentation sources");
    report(t, AGENT_EV_OK);
    return;
  }
  char detail[64];
  snprintf(detail, sizeof detail, "%zu documentation source%s", t->n_doc_sources, t->n_doc_sources == 1 ? "" : "s");
  phase(t, AGENT_PHASE_RETRIEVING, detail);
  docs_sync_opts o;
  memset(&o, 0, sizeof o);
  o.sources = (const char *const *)t->doc_sources;
  o.n_sources = t->n_doc_sources;
  o.public_only = t->doc_public_only;
  o.max_depth = t->docs_depth;
  o.max_pages = t->docs_pages;
  o.freshness_s = 3600;
  if (agent_embedder_on(&t->embedder)) o.embedder = &t->embedder.base;
  int err = docs_sync_start(t->eng->docs, t->eng->loop, &o, sync_progress, sync_done, t, &t->sync);
  if (err) {
    log_warn("documentation: cannot start the crawl: %s", strerror(-err));
    retrieve_rank(t);
  }
}

static void enter_index(agent_task *t) {
  bool need_index = t->import_check != AGENT_IMPORTS_RUN && t->lang != CHK_LANG_NONE && t->eng->modindex;
  if (!need_index) {
    report(t, AGENT_EV_OK);
    return;
  }
  t->waiting_index = true;
  /* may call index_ready at once */
  modindex_get_env(t->eng->modindex, t->lang, t->env, index_ready, t);
}

static void enter_generate(agent_task *t) {
  if (t->prev == AGENT_ST_TOOLS) {
    /* the same attempt: the model asks again with the tools' results,
     * which the attempt's recorded prompt then holds too */
    agent_conv_close(&t->cur->prompt);
    agent_conv_copy(&t->cur->prompt, &t->conv);
    start_chat(t, true, gen_token, gen_done);
    return;
  }
  t->tool_bounds.calls = 0;
  /* the tokens bound is the ask's: once spent, later attempts are told so from their start */
  t->tools_closed = t->tool_bounds.tokens >= t->tool_bounds.tokens_max;
  /* After a failure without reflection the model hears why here; after
   * either, it is asked to answer again. */
  if (t->prev == AGENT_ST_FAILED) tell_failure(t);
  if (t->prev == AGENT_ST_FAILED || t->prev == AGENT_ST_REFLECT) agent_conv_add(&t->conv, "user", agent_retry_prompt());
  free(t->program);
  t->program = NULL;
  dbuf_reset(&t->reflection);
  t->iteration++;
  t->cur = agent_attempt_new(t->iteration, now_ms());
  char detail[64];
  snprintf(detail, sizeof detail, "attempt %d of %d", t->iteration, t->max_iter);
  phase(t, AGENT_PHASE_GENERATING, detail);
  agent_conv_copy(&t->cur->prompt, &t->conv);
  start_chat(t, true, gen_token, gen_done);
}

static void enter_check(agent_task *t) {
  agent_attempt *a = t->cur;
  phase(t, AGENT_PHASE_CHECKING, NULL);
  chk_split split;
  memset(&split, 0, sizeof split);
  chk_join_program(a->solution.imports ? a->solution.imports : "", a->solution.code ? a->solution.code : "", &split,
                   &t->program);
  chk_split_close(&split);
  t->test_line = -1;
  if (a->solution.test && *a->solution.test) {
    /* The test runs after the code, in the same run: its lines follow. */
    int lines = 0;
    for (const char *p = t->program; *p; p++) lines += *p == '\n';
    size_t n = strlen(t->program);
    bool nl = n && t->program[n - 1] == '\n';
    char *joined = xasprintf("%s%s%s\n", t->program, nl ? "" : "\n", a->solution.test);
    free(t->program);
    t->program = joined;
    t->test_line = lines + (nl ? 0 : 1);
  }
  /* An answer identical to one that failed fails the same way: the model
   * hears so at once, and nothing runs. */
  a->key = agent_program_key(t->program);
  for (size_t i = 0; i < t->result->n_attempts; i++) {
    const agent_attempt *old = t->result->attempts[i];
    if (old->passed || !old->key || strcmp(old->key, a->key)) continue;
    a->failed_stage = AGENT_STAGE_ANSWER;
    a->error = xasprintf("Your answer is the same program as attempt %d, which failed (%s); it was not run again. "
                         "Change the code so that it fixes that error.\n",
                         old->iteration, old->summary ? old->summary : "see above");
    report(t, AGENT_EV_FAILED);
    return;
  }
  if (t->lang == CHK_LANG_NONE || !t->eng->chk) {
    report(t, AGENT_EV_OK); /* not checked: straight to the run */
    return;
  }
  chk_doc *doc = chk_doc_new(t->eng->chk, t->lang, t->program, strlen(t->program));
  chk_report rep;
  memset(&rep, 0, sizeof rep);
  chk_options opts = {.modset = t->import_check == AGENT_IMPORTS_RUN ? NULL : t->modset,
                      .deny = (const char *const *)t->deny};
  chk_doc_check(t->eng->chk, doc, &opts, &rep);
  a->check = chk_report_json(&rep, doc, LSP_ENC_UTF16);
  agent_event ev = AGENT_EV_OK;
  if (chk_report_errors(&rep) > 0) {
    /* imports when every error is about a module or a name imported;
     * syntax otherwise (a limit, such as nesting too deep, too) */
    a->failed_stage = AGENT_STAGE_IMPORTS;
    for (size_t i = 0; i < rep.ndiags; i++) {
      const char *code = rep.diags[i].code ? rep.diags[i].code : "";
      if (rep.diags[i].severity == CHK_SEV_ERROR && strcmp(code, "missing-module") && strcmp(code, "denied-module") &&
          strcmp(code, "missing-name"))
        a->failed_stage = AGENT_STAGE_SYNTAX;
    }
    a->error = agent_check_feedback(&rep, t->program, FEEDBACK_BUDGET);
    /* The program never ran: its RunResult says so, with the limits and
     * language it would have run with. */
    sbx_lang sl = LANG_DEFAULT;
    sbx_lang_parse(t->language, &sl);
    sbx_limits lim = t->limits, def;
    sbx_limits_default(&def);
    sbx_limits_fill(&lim, &def);
    sbx_result rejected;
    sbx_result_rejected(&rejected, sl, &lim);
    a->run = sbx_result_dup(&rejected);
    ev = AGENT_EV_FAILED;
  }
  chk_report_close(&rep);
  chk_doc_free(doc);
  report(t, ev);
}

/* Runs the documentation tools the model called (synchronous queries on the
 * docs store: a few ms each), appends the calls and their results to the
 * conversation, and leads back to GENERATE. Each call is recorded in the
 * attempt and named in a `generating` phase. */
static void enter_tools(agent_task *t) {
  agent_attempt *a = t->cur;
  agent_conv_add_calls(&t->conv, t->tool_content, t->tool_calls_json);
  for (size_t i = 0; i < t->n_pending; i++) {
    const struct agent_pending_call *p = &t->pending[i];
    agent_tool_outcome o;
    agent_tool_run(t->eng->docs, (const char *const *)t->doc_sources, t->n_doc_sources, p->name, p->args,
                   &t->tool_bounds, &o);
    char *detail = xasprintf("%s docs: %s%s%s", strcmp(p->name, "docs_search") == 0 ? "searching" : "reading",
                             o.argument, o.error ? " (refused: " : "", o.error ? o.error : "");
    if (o.error) {
      char *d2 = xasprintf("%s)", detail);
      free(detail);
      detail = d2;
    }
    phase(t, AGENT_PHASE_GENERATING, detail);
    free(detail);
    agent_attempt_add_tool(a, p->name, o.argument, o.tokens, o.error);
    if (o.page_url) agent_result_add_source(t->result, o.page_title, o.page_url);
    if (o.bounded) t->tools_closed = true;
    agent_conv_add_tool(&t->conv, p->id, o.content);
    agent_tool_outcome_close(&o);
  }
  if (t->tool_bounds.calls >= AGENT_TOOL_CALLS_PER_ATTEMPT || t->tool_bounds.tokens >= t->tool_bounds.tokens_max)
    t->tools_closed = true;
  pending_clear(t);
  report(t, AGENT_EV_OK);
}

static void enter_failed(agent_task *t) {
  end_attempt(t, false);
  report(t, AGENT_EV_OK);
}

static void enter_reflect(agent_task *t) {
  tell_failure(t);
  const agent_attempt *last = agent_result_last(t->result);
  phase(t, AGENT_PHASE_REFLECTING, last ? agent_stage_name(last->failed_stage) : NULL);
  agent_conv_add(&t->conv, "user", agent_reflect_prompt());
  dbuf_reset(&t->reflection);
  start_chat(t, false, reflect_token, reflect_done);
}

static void task_closed(uv_handle_t *h) {
  agent_task *t = container_of((uv_timer_t *)h, agent_task, step);
  free(t);
}

/* The one way a task goes: what it owns (the result too, unless handed
 * over), then the task itself, from the timer's close callback once the
 * timer was initialised. Nothing may be in flight. */
static void task_free(agent_task *t) {
  agent_attempt_free(t->cur);
  agent_result_free(t->result);
  free(t->program);
  agent_conv_close(&t->conv);
  dbuf_close(&t->reflection);
  llm_config_close(&t->llm_cfg);
  free(t->embed_model);
  free(t->qvec);
  free(t->lexical_why);
  free(t->question);
  free(t->language);
  free(t->ctx_text);
  free(t->ctx_uri);
  free(t->docs);
  free(t->modules_note);
  pending_clear(t);
  for (size_t i = 0; i < t->n_doc_sources; i++) free(t->doc_sources[i]);
  free(t->doc_sources);
  free(t->doc_public_only);
  for (char **d = t->deny; d && *d; d++) free(*d);
  free(t->deny);
  sbx_env_free(t->env);
  sbx_env_free(t->base_env);
  env_resolved_free(t->installed);
  env_strv_free(t->base_reqs, t->n_base_reqs);
  if (t->step_open)
    uv_close((uv_handle_t *)&t->step, task_closed);
  else
    free(t);
}

static void enter_done(agent_task *t) {
  agent_result *r = t->result;
  /* An attempt that ended the task is reported once, whatever ended it. */
  if (t->cur && (r->outcome == AGENT_PASSED || (r->outcome == AGENT_CANCELLED && t->cur->has_solution)))
    end_attempt(t, r->outcome == AGENT_PASSED);
  phase(t, AGENT_PHASE_FINISHED, agent_outcome_name(r->outcome));
  r->iterations = t->iteration;
  r->duration_ms = (long long)(now_ms() - t->started_ms);
  if (t->eng->store) {
    cJSON *j = agent_result_json(r);
    store_task_finish(t->eng->store, r->uid, agent_outcome_name(r->outcome), r->iterations, r->prompt_tokens,
                      r->completion_tokens, r->duration_ms, j);
    cJSON_Delete(j);
  }
  t->result = NULL;
  void (*done)(void *, agent_result *) = t->sink.done;
  void *ud = t->ud;
  task_free(t);
  done(ud, r);
}

static void on_step(uv_timer_t *timer) {
  agent_task *t = container_of(timer, agent_task, step);
  switch (t->state) {
  case AGENT_ST_RETRIEVE: enter_retrieve(t); break;
  case AGENT_ST_INDEX: enter_index(t); break;
  case AGENT_ST_GENERATE: enter_generate(t); break;
  case AGENT_ST_INSTALL: enter_install(t); break;
  case AGENT_ST_CHECK: enter_check(t); break;
  case AGENT_ST_IMPORT_RUN: start_run(t, t->cur->solution.imports, AGENT_STAGE_IMPORTS, import_run_done); break;
  case AGENT_ST_RUN: start_run(t, t->program, AGENT_STAGE_RUN, run_done); break;
  case AGENT_ST_FAILED: enter_failed(t); break;
  case AGENT_ST_REFLECT: enter_reflect(t); break;
  case AGENT_ST_TOOLS: enter_tools(t); break;
  case AGENT_ST_DONE: enter_done(t); break;
  case AGENT_ST_START:
  case AGENT_ST_COUNT: break;
  }
}

int agent_task_start(agent_engine *eng, const agent_params *p, const agent_sink *sink, void *ud, agent_task **out) {
  if (!p->question || !sink || !sink->done) return -EINVAL;
  agent_task *t = xcalloc(1, sizeof *t);
  t->eng = eng;
  t->sink = *sink;
  t->ud = ud;
  t->state = t->prev = AGENT_ST_START;
  char uid[64];
  store_make_uid(uid, sizeof uid);
  t->result = agent_result_new(p->task ? p->task : "", uid);
  t->question = xstrdup(p->question);
  t->language = xstrdup(p->language ? p->language : lang_name(LANG_DEFAULT));
  t->lang = chk_language_parse(t->language);
  t->ctx_text = p->context_text ? xstrdup(p->context_text) : NULL;
  t->ctx_uri = p->context_uri ? xstrdup(p->context_uri) : NULL;
  t->ctx_line = p->context_uri && p->context_line > 0 ? p->context_line : 0;
  t->docs = p->docs_context ? xstrdup(p->docs_context) : NULL;
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
  t->docs_budget = p->docs_budget_tokens > 0 ? p->docs_budget_tokens : CFG_DEFAULT_DOCS_BUDGET_TOKENS;
  t->tool_bounds.tokens_max = agent_tool_tokens_max(t->docs_budget);
  t->docs_depth = p->docs_max_depth > 0 ? p->docs_max_depth : CFG_DEFAULT_DOCS_MAX_DEPTH;
  t->docs_pages = p->docs_max_pages > 0 ? p->docs_max_pages : CFG_DEFAULT_DOCS_MAX_PAGES;
  t->max_iter = p->max_iterations > 0 ? p->max_iterations : CFG_DEFAULT_AGENT_MAX_ITERATIONS;
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
  t->embed_model = xstrdup(p->docs_embedding_model ? p->docs_embedding_model : "");
  agent_embedder_init(&t->embedder, eng->llm, &t->llm_cfg, t->embed_model);
  dbuf_init(&t->reflection, 256 << 10);
  agent_conv_init(&t->conv);
  t->started_ms = now_ms();

  uv_timer_init(eng->loop, &t->step);
  t->step_open = true;
  t->env = sbx_env_dup(p->env);
  t->base_env = sbx_env_dup(p->env);
  t->install_deps = p->install_dependencies;
  t->extendable = p->extendable;
  if (p->n_base_requirements) {
    t->base_reqs = xcalloc(p->n_base_requirements, sizeof *t->base_reqs);
    for (size_t i = 0; i < p->n_base_requirements; i++) t->base_reqs[i] = xstrdup(p->base_requirements[i]);
    t->n_base_reqs = p->n_base_requirements;
  }
  agent_conv_take(&t->conv, "system", system_prompt(t));
  agent_conv_take(&t->conv, "user", agent_question_prompt(t->question, t->ctx_text, t->ctx_uri));
  if (eng->store) store_task_begin(eng->store, uid, t->result->task, "ask", t->question, t->language);
  report(t, AGENT_EV_OK);
  if (out) *out = t;
  return 0;
}

void agent_task_cancel(agent_task *t) {
  if (t->cancelled || t->state == AGENT_ST_DONE) return;
  t->cancelled = true;
  if (t->sync) {
    docs_sync_cancel(t->sync);
  } else if (t->embed_req) {
    t->embedder.base.cancel(t->embed_req); /* on_question_embedded reports the cancel */
  } else if (t->chat) {
    llm_chat_cancel(t->chat);
  } else if (t->run) {
    sbx_run_cancel(t->run);
  } else if (t->install_wait) {
    env_waiter_cancel(t->install_wait);
    t->install_wait = NULL;
    report(t, AGENT_EV_CANCEL);
  } else if (t->waiting_index) {
    modindex_unwait_env(t->eng->modindex, t->lang, t->env, index_ready, t);
    t->waiting_index = false;
    report(t, AGENT_EV_CANCEL);
  } else {
    report(t, AGENT_EV_CANCEL); /* between states: end now */
  }
}
