/* crucible/run: run code (or a selection of an open document) in the
 * sandbox, streaming its output, answering with a RunResult. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "documents.h"
#include "environments.h"
#include "jobs.h"
#include "log.h"
#include "methods.h"

typedef struct run_job {
  rpc_call *call;
  lsp_client *client;
  sbx_run *run;
  char *uri;
  lsp_output out;
  /* Kept until the program starts (an environment may be built first). */
  sbx_request req;
  char *text, *stdin_data;
  env_resolved *env;
  lsp_env_job *env_job;
} run_job;

static void job_free(run_job *j) {
  free(j->uri);
  free(j->text);
  free(j->stdin_data);
  env_resolved_free(j->env);
  free(j);
}

static void job_output(void *ud, int stream, const char *bytes, size_t len) {
  run_job *j = ud;
  if (!rpc_call_alive(j->call)) return;
  lsp_output_send(&j->out, &j->client->ses, j->call->label, 0, stream, bytes, len);
}

static void job_done(void *ud, const sbx_result *res) {
  run_job *j = ud;
  rpc_call *call = j->call;
  bool alive = rpc_call_alive(call);
  if (alive) lsp_output_flush(&j->out, &j->client->ses, call->label, 0);
  cJSON *r = sbx_result_to_json(res);
  cJSON_AddStringToObject(r, "task", call->label);
  cJSON_AddItemToObject(r, "environment", env_resolved_json(j->env));
  if (alive && j->uri && res->outcome != SBX_CANCELLED) lsp_publish_run_diagnostics(j->client, j->uri, r);
  job_free(j);
  call->data = NULL;
  if (call->cancelled) {
    cJSON_Delete(r);
    rpc_call_cancelled(call);
  } else {
    rpc_call_reply(call, r);
  }
}

static void job_cancel(rpc_call *call) {
  run_job *j = call->data;
  if (j && j->run) {
    sbx_run_cancel(j->run); /* job_done answers */
  } else if (j && j->env_job) {
    /* Still installing: the build stops unless another request waits for it. */
    lsp_env_job_cancel(j->env_job);
    call->data = NULL;
    job_free(j);
    rpc_call_cancelled(call);
  }
}

/* Starts the program in its environment. Answers the call on failure. */
static void job_start(run_job *j) {
  rpc_call *call = j->call;
  j->req.env = env_resolved_sbx(j->env);
  sbx_callbacks cbs = {.on_output = job_output, .on_done = job_done};
  int err = sbx_run_start(&j->client->srv->core.runner, &j->req, &cbs, j, &j->run);
  if (err) {
    call->data = NULL;
    job_free(j);
    rpc_call_errorf(call, RPC_REQUEST_FAILED, "cannot start the sandbox: %s",
                    err == -EAGAIN ? "too many runs queued, try again later" : strerror(-err));
  }
}

static void env_ready(void *ud, env_resolved *env, const char *error) {
  run_job *j = ud;
  rpc_call *call = j->call;
  j->env_job = NULL;
  if (call->progress_token && rpc_call_alive(call))
    rpc_progress_end(&j->client->ses, call->progress_token, env ? "installed" : "installation failed");
  if (!env) {
    call->data = NULL;
    job_free(j);
    rpc_call_errorf(call, RPC_REQUEST_FAILED, "%s", error ? error : "the environment could not be built");
    return;
  }
  j->env = env;
  job_start(j);
}

void lsp_run(rpc_call *call, const cJSON *params) {
  lsp_client *c = lsp_client_of(call);
  if (params && !cJSON_IsObject(params)) {
    rpc_call_error(call, RPC_INVALID_PARAMS, "crucible/run: params must be an object");
    return;
  }
  const cJSON *code = cJSON_GetObjectItemCaseSensitive(params, "code");
  const cJSON *uri = cJSON_GetObjectItemCaseSensitive(params, "uri");
  const cJSON *range = cJSON_GetObjectItemCaseSensitive(params, "range");
  const cJSON *language = cJSON_GetObjectItemCaseSensitive(params, "language");
  const cJSON *stdin_v = cJSON_GetObjectItemCaseSensitive(params, "stdin");
  const cJSON *limits_v = cJSON_GetObjectItemCaseSensitive(params, "limits");
  if ((code && !cJSON_IsString(code)) || (uri && !cJSON_IsString(uri)) ||
      (language && !cJSON_IsString(language)) || (stdin_v && !cJSON_IsString(stdin_v)) ||
      (limits_v && !cJSON_IsObject(limits_v))) {
    rpc_call_error(call, RPC_INVALID_PARAMS,
                   "crucible/run: code, uri, language and stdin must be strings, limits an object");
    return;
  }
  char *text = NULL;
  int first_line = 0;
  const char *lang = cJSON_IsString(language) ? language->valuestring : NULL;
  if (cJSON_IsString(code)) {
    text = xstrdup(code->valuestring);
  } else if (cJSON_IsString(uri)) {
    lsp_doc *d = lsp_doc_find(c, uri->valuestring);
    if (!d) {
      rpc_call_errorf(call, RPC_INVALID_PARAMS, "%.300s is not open: send textDocument/didOpen first, or pass 'code'",
                      uri->valuestring);
      return;
    }
    text = lsp_doc_range_text(d, cJSON_IsObject(range) ? range : NULL, c->enc, &first_line);
    if (!text) {
      rpc_call_error(call, RPC_INVALID_PARAMS, "crucible/run: 'range' is not a valid LSP Range");
      return;
    }
    if (!lang) lang = d->language;
  } else {
    rpc_call_error(call, RPC_INVALID_PARAMS, "crucible/run needs 'code', or 'uri' (+ 'range') of an open document");
    return;
  }
  sbx_lang sl;
  if (sbx_lang_parse(lang ? lang : lang_name(LANG_DEFAULT), &sl)) {
    free(text);
    rpc_call_errorf(call, RPC_INVALID_PARAMS, "unknown language '%.60s' (" LANG_NAMES_TEXT ")", lang);
    return;
  }
  sbx_limits defaults, limits;
  core_sandbox_limits(&c->cfg.sandbox, &defaults);
  limits = defaults;
  if (limits_v) {
    char *err = NULL;
    if (sbx_limits_from_json(&limits, limits_v, &defaults, &err)) {
      free(text);
      rpc_call_errorf(call, RPC_INVALID_PARAMS, "crucible/run: %s", err ? err : "invalid limits");
      free(err);
      return;
    }
  }
  call->label = lsp_task_label(call, params);
  const cJSON *tok = cJSON_GetObjectItemCaseSensitive(params, "workDoneToken");
  if (cJSON_IsString(tok) || cJSON_IsNumber(tok)) call->progress_token = cJSON_Duplicate(tok, 1);
  run_job *j = xcalloc(1, sizeof *j);
  j->call = call;
  j->client = c;
  j->uri = cJSON_IsString(uri) ? xstrdup(uri->valuestring) : NULL;
  j->text = text;
  j->stdin_data = cJSON_IsString(stdin_v) ? xstrdup(stdin_v->valuestring) : NULL;
  j->req.language = sbx_lang_name(sl);
  j->req.code = text;
  j->req.code_len = strlen(text);
  j->req.stdin_data = j->stdin_data;
  j->req.stdin_len = j->stdin_data ? strlen(j->stdin_data) : 0;
  j->req.limits = limits;
  j->req.line_offset = first_line;
  j->req.owner = c; /* the client's session: its runs share the queue fairly with other sessions' */
  call->data = j;
  rpc_call_set_cancel(call, job_cancel);
  /* The environment: ready at once, or built first ("installing"). */
  char *env_err = NULL;
  const cJSON *env_v = cJSON_GetObjectItemCaseSensitive(params, "environment");
  /* A PEP 723 block's dependencies join the system or packages environment. */
  cJSON *with_deps = NULL;
  int e = lsp_env_spec_pep723(c, env_v, sl, text, &with_deps, &env_err);
  if (!e)
    e = lsp_env_acquire(c, call, with_deps ? with_deps : env_v, sl, env_ready, j, &j->env, &j->env_job, &env_err);
  cJSON_Delete(with_deps);
  if (e < 0) {
    call->data = NULL;
    job_free(j);
    rpc_call_errorf(call, e == -EINVAL ? RPC_INVALID_PARAMS : RPC_REQUEST_FAILED, "crucible/run: %s", env_err);
    free(env_err);
    return;
  }
  if (e == 1) job_start(j);
}
