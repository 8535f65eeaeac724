/* crucible/ask: the ask loop behind the protocol: notifications for every
 * phase, token, output, reflection and attempt, then the AskResult. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "documents.h"
#include "environments.h"
#include "jobs.h"
#include "log.h"
#include "methods.h"

typedef struct ask_job {
  rpc_call *call;
  lsp_client *client;
  agent_task *task;
  char *uri;            /* the context's document, for runtime diagnostics */
  lsp_output out;
  int out_iteration;
  env_resolved *env;    /* the environment the answers run in */
} ask_job;

/* An ask whose environment is being built: its params wait here. */
typedef struct ask_pending {
  rpc_call *call;
  cJSON *params;
  lsp_env_job *env_job;
} ask_pending;

static void ask_start(rpc_call *call, const cJSON *params, env_resolved *env);

static rpc_session *ses_of(ask_job *j) {
  return rpc_call_alive(j->call) ? &j->client->ses : NULL;
}

static cJSON *base(ask_job *j, int iteration) {
  cJSON *p = cJSON_CreateObject();
  cJSON_AddStringToObject(p, "task", j->call->label);
  cJSON_AddNumberToObject(p, "iteration", iteration);
  return p;
}

static void on_phase(void *ud, int iteration, agent_phase ph, const char *detail) {
  ask_job *j = ud;
  rpc_session *ses = ses_of(j);
  if (!ses) return;
  const char *phase = agent_phase_name(ph);
  cJSON *p = base(j, iteration);
  cJSON_AddStringToObject(p, "phase", phase);
  if (detail) cJSON_AddStringToObject(p, "detail", detail);
  rpc_session_notify(ses, "crucible/phase", p);
  if (j->call->progress_token && ph != AGENT_PHASE_FINISHED) {
    char msg[160];
    if (iteration > 0 && ph != AGENT_PHASE_GENERATING)
      snprintf(msg, sizeof msg, "%s%s%s (attempt %d)", phase, detail ? ": " : "", detail ? detail : "", iteration);
    else
      snprintf(msg, sizeof msg, "%s%s%s", phase, detail ? ": " : "", detail ? detail : "");
    rpc_progress_report(ses, j->call->progress_token, msg, -1);
  }
}

static void send_text(ask_job *j, const char *method, int iteration, const char *text, size_t len) {
  rpc_session *ses = ses_of(j);
  if (!ses || !len) return;
  char *t = utf8_repair(text, len, NULL);
  cJSON *p = base(j, iteration);
  cJSON_AddStringToObject(p, "text", t ? t : "");
  free(t);
  rpc_session_notify(ses, method, p);
}

static void on_token(void *ud, int iteration, const char *text, size_t len) {
  send_text(ud, "crucible/token", iteration, text, len);
}

static void on_reflection(void *ud, int iteration, const char *text, size_t len) {
  send_text(ud, "crucible/reflection", iteration, text, len);
}

static void on_output(void *ud, int iteration, int stream, const char *text, size_t len) {
  ask_job *j = ud;
  rpc_session *ses = ses_of(j);
  if (!ses) return;
  if (iteration != j->out_iteration) {
    lsp_output_flush(&j->out, ses, j->call->label, j->out_iteration);
    j->out_iteration = iteration;
  }
  lsp_output_send(&j->out, ses, j->call->label, iteration, stream, text, len);
}

/* Every RunResult says which environment its program ran in (or, rejected
 * by the checks, would have run in): the ask's. */
static void run_env(cJSON *holder, const env_resolved *env) {
  cJSON *run = cJSON_GetObjectItemCaseSensitive(holder, "run");
  if (env && cJSON_IsObject(run) && !cJSON_HasObjectItem(run, "environment"))
    cJSON_AddItemToObject(run, "environment", env_resolved_json(env));
}

static void on_attempt(void *ud, const agent_attempt *attempt) {
  ask_job *j = ud;
  rpc_session *ses = ses_of(j);
  if (!ses) return;
  lsp_output_flush(&j->out, ses, j->call->label, j->out_iteration);
  cJSON *a = agent_attempt_json(attempt, j->call->label, AGENT_JSON_WIRE);
  run_env(a, j->env);
  rpc_session_notify(ses, "crucible/attempt", a);
}

static void on_done(void *ud, agent_result *result) {
  ask_job *j = ud;
  rpc_call *call = j->call;
  rpc_session *ses = ses_of(j);
  bool cancelled = call->cancelled || result->outcome == AGENT_CANCELLED;
  cJSON *reply = agent_result_json(result);
  run_env(reply, j->env);
  cJSON *a;
  cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(reply, "attempts")) run_env(a, j->env);
  if (ses) {
    lsp_output_flush(&j->out, ses, call->label, j->out_iteration);
    const cJSON *run = cJSON_GetObjectItemCaseSensitive(reply, "run");
    if (j->uri && cJSON_IsObject(run)) lsp_publish_run_diagnostics(j->client, j->uri, run);
    if (call->progress_token) rpc_progress_end(ses, call->progress_token, agent_outcome_name(result->outcome));
  }
  agent_result_free(result);
  if (!cJSON_HasObjectItem(reply, "environment"))
    cJSON_AddItemToObject(reply, "environment", env_resolved_json(j->env));
  env_resolved_free(j->env);
  free(j->uri);
  free(j);
  call->data = NULL;
  if (cancelled) {
    cJSON_Delete(reply);
    rpc_call_cancelled(call);
  } else {
    rpc_call_reply(call, reply);
  }
}

/* The client's answer to window/workDoneProgress/create: progress goes to
 * the token from now on, if the ask (found by its request id) is still
 * running; it may have finished meanwhile. */
typedef struct progress_req {
  cJSON *id;     /* the ask's request id */
  cJSON *token;
  char *title;
} progress_req;

static void progress_created(rpc_session *ses, void *ud, const cJSON *result, const cJSON *error) {
  progress_req *p = ud;
  rpc_call *c = !error && (result || cJSON_IsNull(result)) && !rpc_session_closing(ses)
                    ? rpc_session_find_call(ses, p->id) : NULL;
  if (c && !c->progress_token && c->data) {
    c->progress_token = p->token;
    p->token = NULL;
    rpc_progress_begin(ses, c->progress_token, "Crucible", p->title);
  }
  cJSON_Delete(p->id);
  cJSON_Delete(p->token);
  free(p->title);
  free(p);
}

static void job_cancel(rpc_call *call) {
  ask_job *j = call->data;
  if (j && j->task) agent_task_cancel(j->task);
}

static void pending_cancel(rpc_call *call) {
  ask_pending *p = call->data;
  if (!p) return;
  lsp_env_job_cancel(p->env_job);
  cJSON_Delete(p->params);
  free(p);
  call->data = NULL;
  if (call->progress_token) rpc_progress_end(&lsp_client_of(call)->ses, call->progress_token, "cancelled");
  rpc_call_cancelled(call);
}

static void pending_env_ready(void *ud, env_resolved *env, const char *error) {
  ask_pending *p = ud;
  rpc_call *call = p->call;
  cJSON *params = p->params;
  free(p);
  call->data = NULL;
  if (!env) {
    cJSON_Delete(params);
    if (call->progress_token && rpc_call_alive(call))
      rpc_progress_end(&lsp_client_of(call)->ses, call->progress_token, "installation failed");
    rpc_call_errorf(call, RPC_REQUEST_FAILED, "%s", error ? error : "the environment could not be built");
    return;
  }
  ask_start(call, params, env);
  cJSON_Delete(params);
}

static const char *str(const cJSON *obj, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Tells the client (window/logMessage, a warning) and the log. */
static void warn_client(lsp_client *c, const char *msg) {
  log_warn("%s", msg);
  rpc_session_log(&c->ses, 2, msg);
}

static bool user_listed(const cfg *base, const char *source) {
  for (int i = 0; i < base->docs.sources.n; i++)
    if (!strcmp(base->docs.sources.items[i], source)) return true;
  return false;
}

/* The documentation sources a task may use, out of those the client named
 * (in the request or in its settings): the user file's own sources as they
 * are; others vetted by docs_source_vet against the client's workspace
 * folders and the user file's docs.allowLocal / docs.allowPrivateNetwork.
 * Refused ones are left out and the client is told why. Fills out[] (new
 * strings) and public_only[]; returns how many. */
static size_t vet_doc_sources(lsp_client *c, const char *const *given, size_t n, char **out, bool *public_only) {
  const cfg *base = &c->srv->base;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    char *resolved = NULL, *why = NULL;
    int r = 0;
    if (user_listed(base, given[i])) resolved = xstrdup(given[i]);
    else
      r = docs_source_vet(given[i], (const char *const *)c->roots.items, (size_t)c->roots.n, base->docs.allow_local,
                          base->docs.allow_private_network, &resolved, &why);
    if (r < 0) {
      warn_client(c, why);
      free(why);
      continue;
    }
    out[k] = resolved;
    public_only[k++] = r == 1;
  }
  return k;
}

void lsp_ask(rpc_call *call, const cJSON *params) {
  lsp_client *c = lsp_client_of(call);
  const char *question = str(params, "question");
  if (!question || !*question) {
    rpc_call_error(call, RPC_INVALID_PARAMS, "crucible/ask needs a non-empty 'question' string");
    return;
  }
  const char *language = str(params, "language");
  if (!language) language = lang_name(LANG_DEFAULT);
  sbx_lang sl;
  if (sbx_lang_parse(language, &sl)) {
    rpc_call_errorf(call, RPC_INVALID_PARAMS, "unknown language '%.60s' (" LANG_NAMES_TEXT ")", language);
    return;
  }
  call->label = lsp_task_label(call, params);
  const cJSON *tok = cJSON_GetObjectItemCaseSensitive(params, "workDoneToken");
  if (cJSON_IsString(tok) || cJSON_IsNumber(tok)) call->progress_token = cJSON_Duplicate(tok, 1);
  if (call->progress_token) rpc_progress_begin(&c->ses, call->progress_token, "Crucible", question);
  /* The environment first: a packages one may need building ("installing"). */
  ask_pending *p = xcalloc(1, sizeof *p);
  p->call = call;
  env_resolved *env = NULL;
  char *err = NULL;
  int e = lsp_env_acquire(c, call, cJSON_GetObjectItemCaseSensitive(params, "environment"), sl, pending_env_ready, p,
                          &env, &p->env_job, &err);
  if (e == 0) {
    p->params = cJSON_Duplicate(params, 1);
    call->data = p;
    rpc_call_set_cancel(call, pending_cancel);
    return;
  }
  free(p);
  if (e < 0) {
    if (call->progress_token) rpc_progress_end(&c->ses, call->progress_token, "failed");
    rpc_call_errorf(call, e == -EINVAL ? RPC_INVALID_PARAMS : RPC_REQUEST_FAILED, "crucible/ask: %s", err);
    free(err);
    return;
  }
  ask_start(call, params, env);
}

/* The rest of crucible/ask, once its environment (taken) is known. */
static void ask_start(rpc_call *call, const cJSON *params, env_resolved *env) {
  lsp_client *c = lsp_client_of(call);
  lsp_server *srv = c->srv;
  const char *question = str(params, "question");
  const char *language = str(params, "language");
  sbx_lang sl = LANG_DEFAULT;
  if (language) sbx_lang_parse(language, &sl);
  int max_iter = c->cfg.agent.max_iterations;
  const cJSON *mi = cJSON_GetObjectItemCaseSensitive(params, "maxIterations");
  if (mi) {
    if (!cJSON_IsNumber(mi) || mi->valuedouble < 1 || mi->valuedouble > CFG_MAX_AGENT_MAX_ITERATIONS || mi->valuedouble != (int)mi->valuedouble) {
      env_resolved_free(env);
      if (call->progress_token) rpc_progress_end(&c->ses, call->progress_token, "failed");
      rpc_call_errorf(call, RPC_INVALID_PARAMS, "crucible/ask: maxIterations must be an integer from 1 to %d",
                      CFG_MAX_AGENT_MAX_ITERATIONS);
      return;
    }
    max_iter = mi->valueint;
    /* a request is the client's word, like its settings: it may ask for
     * fewer attempts than the user file allows, not more */
    if (max_iter > srv->base.agent.max_iterations) {
      char *msg = xasprintf("crucible/ask: maxIterations %d is above the user setting agent.maxIterations (%d); "
                            "using %d (raise it in the user config file)", max_iter,
                            srv->base.agent.max_iterations, srv->base.agent.max_iterations);
      warn_client(c, msg);
      free(msg);
      max_iter = srv->base.agent.max_iterations;
    }
  }
  /* The context: explicit text, or a range of an open document. */
  const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(params, "context");
  const char *ctx_uri = str(ctx, "uri");
  char *ctx_text = str(ctx, "text") ? xstrdup(str(ctx, "text")) : NULL;
  int first_line = 0;
  if (!ctx_text && ctx_uri) {
    lsp_doc *d = lsp_doc_find(c, ctx_uri);
    if (d) ctx_text = lsp_doc_range_text(d, cJSON_GetObjectItemCaseSensitive(ctx, "range"), c->enc, &first_line);
  }
  const cJSON *start_line = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ctx, "range"), "start"), "line");
  if (!first_line && cJSON_IsNumber(start_line) && start_line->valuedouble > 0) first_line = start_line->valueint;

  /* Documentation: the request's own `docs`, else the settings' sources. */
  const cJSON *docs = cJSON_GetObjectItemCaseSensitive(params, "docs");
  const char *doc_list[CFG_MAX_DOC_SOURCES];
  char *doc_vetted[CFG_MAX_DOC_SOURCES];
  bool doc_public_only[CFG_MAX_DOC_SOURCES];
  size_t n_docs = 0;
  if (docs) {
    const cJSON *d;
    bool ok = cJSON_IsArray(docs) && cJSON_GetArraySize(docs) <= CFG_MAX_DOC_SOURCES;
    cJSON_ArrayForEach(d, docs) ok = ok && cJSON_IsString(d) && *d->valuestring;
    if (!ok) {
      free(ctx_text);
      env_resolved_free(env);
      if (call->progress_token) rpc_progress_end(&c->ses, call->progress_token, "failed");
      rpc_call_errorf(call, RPC_INVALID_PARAMS, "crucible/ask: docs must be an array of at most %d URLs or paths",
                      CFG_MAX_DOC_SOURCES);
      return;
    }
    cJSON_ArrayForEach(d, docs) doc_list[n_docs++] = d->valuestring;
  } else {
    for (int i = 0; i < c->cfg.docs.sources.n; i++) doc_list[n_docs++] = c->cfg.docs.sources.items[i];
  }
  n_docs = vet_doc_sources(c, doc_list, n_docs, doc_vetted, doc_public_only);

  llm_config lc;
  agent_params p = {0};
  core_agent_params(&c->cfg, &p, &lc);
  p.task = call->label;
  p.owner = c;
  p.question = question;
  p.language = sbx_lang_name(sl);
  p.context_text = ctx_text;
  p.context_uri = ctx_uri;
  p.context_line = first_line;
  p.max_iterations = max_iter;
  p.doc_sources = (const char *const *)doc_vetted;
  p.n_doc_sources = n_docs;
  p.doc_public_only = doc_public_only;
  p.env = env_resolved_sbx(env);
  /* Declared dependencies join the system or a packages environment. */
  p.extendable = env_resolved_kind(env) == ENV_SYSTEM || env_resolved_kind(env) == ENV_PACKAGES;
  p.base_requirements = env_resolved_requirements(env, &p.n_base_requirements);

  ask_job *j = xcalloc(1, sizeof *j);
  j->call = call;
  j->client = c;
  j->env = env;
  j->uri = ctx_uri ? xstrdup(ctx_uri) : NULL;
  j->out_iteration = 1;
  call->data = j;
  rpc_call_set_cancel(call, job_cancel);
  if (!call->progress_token && c->work_done_progress) {
    /* No token from the client: ask it for one (server-initiated progress). */
    progress_req *pr = xcalloc(1, sizeof *pr);
    pr->id = cJSON_Duplicate(call->id, 1);
    char *name = xasprintf("crucible-%s", call->label);
    pr->token = cJSON_CreateString(name);
    free(name);
    pr->title = xstrdup(question);
    cJSON *cp = cJSON_CreateObject();
    cJSON_AddItemToObject(cp, "token", cJSON_Duplicate(pr->token, 1));
    rpc_session_request(&c->ses, "window/workDoneProgress/create", cp, progress_created, pr);
  }
  agent_sink sink = {.phase = on_phase, .token = on_token, .reflection = on_reflection, .output = on_output,
                     .attempt = on_attempt, .done = on_done};
  int err = agent_task_start(core_engine(&srv->core), &p, &sink, j, &j->task);
  llm_config_close(&lc);
  free(ctx_text);
  for (size_t i = 0; i < n_docs; i++) free(doc_vetted[i]);
  if (err) {
    call->data = NULL;
    env_resolved_free(j->env);
    free(j->uri);
    free(j);
    if (call->progress_token) rpc_progress_end(&c->ses, call->progress_token, "failed");
    rpc_call_errorf(call, RPC_REQUEST_FAILED, "cannot start the task: %s", strerror(-err));
  }
}

/* params.task, or NULL after answering that the method needs it. */
static const char *task_param(rpc_call *call, const cJSON *params) {
  const char *task = str(params, "task");
  if (!task) rpc_call_errorf(call, RPC_INVALID_PARAMS, "%s needs a 'task' string", call->method);
  return task;
}

void lsp_cancel_task(rpc_call *call, const cJSON *params) {
  lsp_client *c = lsp_client_of(call);
  const char *task = task_param(call, params);
  if (!task) return;
  int n = rpc_session_cancel_label(&c->ses, task);
  cJSON *r = cJSON_CreateObject();
  cJSON_AddNumberToObject(r, "cancelled", n);
  rpc_call_reply(call, r);
}

void lsp_progress_cancel(rpc_call *call, const cJSON *params) {
  lsp_client *c = lsp_client_of(call);
  const cJSON *tok = cJSON_GetObjectItemCaseSensitive(params, "token");
  if (tok) rpc_session_cancel_token(&c->ses, tok);
}

void lsp_history(rpc_call *call, const cJSON *params) {
  lsp_client *c = lsp_client_of(call);
  const cJSON *limit = cJSON_GetObjectItemCaseSensitive(params, "limit");
  int n = cJSON_IsNumber(limit) ? limit->valueint : STORE_HISTORY_DEFAULT_LIMIT;
  if (n < 1 || n > 1000) {
    rpc_call_error(call, RPC_INVALID_PARAMS, "crucible/history: limit must be from 1 to 1000");
    return;
  }
  if (!c->srv->core.store) {
    rpc_call_error(call, RPC_REQUEST_FAILED, "the transcript database is not available (see the server log)");
    return;
  }
  cJSON *r = cJSON_CreateObject();
  cJSON_AddItemToObject(r, "tasks", store_history(c->srv->core.store, n));
  rpc_call_reply(call, r);
}

void lsp_transcript(rpc_call *call, const cJSON *params) {
  lsp_client *c = lsp_client_of(call);
  const char *task = task_param(call, params);
  if (!task) return;
  cJSON *t = c->srv->core.store ? store_transcript(c->srv->core.store, task) : NULL;
  if (!t) {
    rpc_call_errorf(call, RPC_INVALID_PARAMS, "no task '%.200s' in the transcript database", task);
    return;
  }
  rpc_call_reply(call, t);
}
