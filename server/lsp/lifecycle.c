/* LSP lifecycle and server-wide methods: initialize, initialized, shutdown,
 * settings changes, executeCommand routing, crucible/doctor. */
#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "crucible_config.h"
#include "log.h"
#include "jobs.h"
#include "methods.h"
#include "environments.h"

static const char *const commands[] = {"crucible.ask", "crucible.run", "crucible.check", "crucible.cancel"};

static lsp_encoding pick_encoding(const cJSON *params) {
  const cJSON *caps = cJSON_GetObjectItemCaseSensitive(params, "capabilities");
  const cJSON *gen = cJSON_GetObjectItemCaseSensitive(caps, "general");
  const cJSON *encs = cJSON_GetObjectItemCaseSensitive(gen, "positionEncodings");
  const cJSON *e;
  cJSON_ArrayForEach(e, encs) {
    if (cJSON_IsString(e) && !strcmp(e->valuestring, "utf-8")) return LSP_ENC_UTF8;
  }
  return LSP_ENC_UTF16;
}

static cJSON *capabilities(lsp_encoding enc) {
  cJSON *caps = cJSON_CreateObject();
  cJSON_AddStringToObject(caps, "positionEncoding", enc == LSP_ENC_UTF8 ? "utf-8" : "utf-16");
  cJSON *sync = cJSON_AddObjectToObject(caps, "textDocumentSync");
  cJSON_AddBoolToObject(sync, "openClose", 1);
  cJSON_AddNumberToObject(sync, "change", 2); /* incremental */
  cJSON *exec = cJSON_AddObjectToObject(caps, "executeCommandProvider");
  cJSON *cmds = cJSON_AddArrayToObject(exec, "commands");
  for (size_t i = 0; i < ARRAY_LEN(commands); i++) cJSON_AddItemToArray(cmds, cJSON_CreateString(commands[i]));
  cJSON *ca = cJSON_AddObjectToObject(caps, "codeActionProvider");
  cJSON *kinds = cJSON_AddArrayToObject(ca, "codeActionKinds");
  cJSON_AddItemToArray(kinds, cJSON_CreateString("quickfix"));
  cJSON_AddItemToArray(kinds, cJSON_CreateString("source"));
  cJSON *ws = cJSON_AddObjectToObject(caps, "workspace");
  cJSON *wf = cJSON_AddObjectToObject(ws, "workspaceFolders");
  cJSON_AddBoolToObject(wf, "supported", 0);
  cJSON *exp = cJSON_AddObjectToObject(caps, "experimental");
  cJSON *cr = cJSON_AddObjectToObject(exp, "crucible");
  cJSON *reqs = cJSON_AddArrayToObject(cr, "requests");
  for (size_t i = 0; i < lsp_n_methods; i++)
    if (!strncmp(lsp_methods[i].name, "crucible/", 9))
      cJSON_AddItemToArray(reqs, cJSON_CreateString(lsp_methods[i].name));
  return caps;
}

/* The local path of a file: URI (percent-decoded; "file://localhost/p" and
 * "file:///p" both give "/p"), a new string, or NULL for other URIs. */
static char *path_of_uri(const char *uri) {
  if (strncmp(uri, "file://", 7)) return NULL;
  const char *p = uri + 7;
  if (!strncmp(p, "localhost/", 10)) p += 9;
  if (*p != '/') return NULL;
  char *out = xmalloc(strlen(p) + 1), *o = out;
  for (; *p; p++) {
    if (*p == '%' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
      char hex[3] = {p[1], p[2], 0};
      *o++ = (char)strtol(hex, NULL, 16);
      p += 2;
    } else {
      *o++ = *p;
    }
  }
  *o = '\0';
  return out;
}

/* Adds a workspace folder (a path, or a file: URI) to the client's roots, as
 * a real path; folders that do not exist are left out. */
static void add_root(lsp_client *c, const char *path_or_uri, bool is_uri) {
  if (c->roots.n >= CFG_MAX_LIST) return;
  char *path = is_uri ? path_of_uri(path_or_uri) : xstrdup(path_or_uri);
  if (!path) return;
  char *real = realpath(path, NULL);
  free(path);
  if (!real) return;
  for (int i = 0; i < c->roots.n; i++) {
    if (!strcmp(c->roots.items[i], real)) {
      free(real);
      return;
    }
  }
  c->roots.items[c->roots.n++] = real;
  c->roots.items[c->roots.n] = NULL;
}

/* The workspace folders a client names: workspaceFolders, else rootUri, else
 * rootPath (the LSP order of precedence). */
static void collect_roots(lsp_client *c, const cJSON *params) {
  const cJSON *folders = cJSON_GetObjectItemCaseSensitive(params, "workspaceFolders");
  const cJSON *f;
  if (!cJSON_IsArray(folders)) folders = NULL;
  cJSON_ArrayForEach(f, folders) {
    const cJSON *uri = cJSON_GetObjectItemCaseSensitive(f, "uri");
    if (cJSON_IsString(uri)) add_root(c, uri->valuestring, true);
  }
  if (c->roots.n) return;
  const cJSON *root_uri = cJSON_GetObjectItemCaseSensitive(params, "rootUri");
  const cJSON *root_path = cJSON_GetObjectItemCaseSensitive(params, "rootPath");
  if (cJSON_IsString(root_uri)) add_root(c, root_uri->valuestring, true);
  else if (cJSON_IsString(root_path)) add_root(c, root_path->valuestring, false);
}

void lsp_initialize(rpc_call *call, const cJSON *params) {
  lsp_client *c = lsp_client_of(call);
  if (rpc_session_state(&c->ses) != RPC_STATE_UNINIT) {
    rpc_call_error(call, RPC_INVALID_REQUEST, "initialize may only be sent once per session");
    return;
  }
  if (params && !cJSON_IsObject(params)) {
    rpc_call_error(call, RPC_INVALID_PARAMS, "initialize: params must be an object");
    return;
  }
  c->enc = pick_encoding(params);
  const cJSON *window = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(params, "capabilities"), "window");
  c->work_done_progress = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(window, "workDoneProgress"));
  const cJSON *trace = cJSON_GetObjectItemCaseSensitive(params, "trace");
  c->trace = cJSON_IsString(trace) && strcmp(trace->valuestring, "off") != 0;
  const cJSON *opts = cJSON_GetObjectItemCaseSensitive(params, "initializationOptions");
  if (opts && !cJSON_IsNull(opts)) {
    /* Options may be given bare or under a "crucible" section. */
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(opts, "crucible");
    c->init_options = cJSON_Duplicate(sec ? sec : opts, 1);
    /* A tcp listener's session takes the token out before we get here; a
     * client that sends one on stdio or a unix socket gets it ignored, not
     * kept among its settings. */
    cJSON_DeleteItemFromObjectCaseSensitive(c->init_options, "token");
  }
  collect_roots(c, params);
  rpc_session_advance(&c->ses, RPC_STATE_INITIALIZING);
  lsp_client_update_settings(c);

  cJSON *result = cJSON_CreateObject();
  cJSON_AddItemToObject(result, "capabilities", capabilities(c->enc));
  cJSON *info = cJSON_AddObjectToObject(result, "serverInfo");
  cJSON_AddStringToObject(info, "name", "crucible");
  cJSON_AddStringToObject(info, "version", CRUCIBLE_VERSION);
  rpc_call_reply(call, result);
}

void lsp_initialized(rpc_call *call, const cJSON *params) {
  lsp_client *c = lsp_client_of(call);
  if (rpc_session_state(&c->ses) == RPC_STATE_INITIALIZING) rpc_session_advance(&c->ses, RPC_STATE_RUNNING);
}

void lsp_shutdown(rpc_call *call, const cJSON *params) {
  lsp_client *c = lsp_client_of(call);
  rpc_session_advance(&c->ses, RPC_STATE_SHUTDOWN);
  /* Work still in flight is cancelled; its requests get -32800. */
  rpc_session_cancel_all(&c->ses, call);
  rpc_call_reply(call, NULL);
}

void lsp_did_change_configuration(rpc_call *call, const cJSON *params) {
  lsp_client *c = lsp_client_of(call);
  const cJSON *settings = cJSON_GetObjectItemCaseSensitive(params, "settings");
  if (!settings || cJSON_IsNull(settings)) return;
  const cJSON *sec = cJSON_GetObjectItemCaseSensitive(settings, "crucible");
  cJSON_Delete(c->changed_settings);
  c->changed_settings = cJSON_Duplicate(sec ? sec : settings, 1);
  lsp_client_update_settings(c);
}

void lsp_set_trace(rpc_call *call, const cJSON *params) {
  lsp_client *c = lsp_client_of(call);
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, "value");
  if (cJSON_IsString(v)) c->trace = strcmp(v->valuestring, "off") != 0;
}

void lsp_execute_command(rpc_call *call, const cJSON *params) {
  const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(params, "command");
  if (!cJSON_IsString(cmd)) {
    rpc_call_error(call, RPC_INVALID_PARAMS, "workspace/executeCommand: 'command' must be a string");
    return;
  }
  const cJSON *args = cJSON_GetObjectItemCaseSensitive(params, "arguments");
  const cJSON *arg0 = cJSON_IsArray(args) ? cJSON_GetArrayItem(args, 0) : NULL;
  const char *target = NULL;
  if (!strcmp(cmd->valuestring, "crucible.ask")) target = "crucible/ask";
  else if (!strcmp(cmd->valuestring, "crucible.run")) target = "crucible/run";
  else if (!strcmp(cmd->valuestring, "crucible.check")) target = "crucible/check";
  else if (!strcmp(cmd->valuestring, "crucible.cancel")) target = "crucible/cancel";
  if (!target) {
    rpc_call_errorf(call, RPC_INVALID_PARAMS, "unknown command '%.100s'; known: crucible.ask, crucible.run, "
                    "crucible.check, crucible.cancel", cmd->valuestring);
    return;
  }
  for (size_t i = 0; i < lsp_n_methods; i++) {
    if (strcmp(lsp_methods[i].name, target)) continue;
    /* The call now stands for the target request: swap its params for
     * arguments[0] (the handler sees the same shape either way). */
    cJSON *p = arg0 ? cJSON_Duplicate(arg0, 1) : cJSON_CreateObject();
    cJSON_Delete(call->params);
    call->params = p;
    lsp_methods[i].fn(call, p);
    return;
  }
  rpc_call_errorf(call, RPC_REQUEST_FAILED, "command %s is not available in this build", cmd->valuestring);
}

cJSON *lsp_doctor_report(const cfg *settings) {
  cJSON *r = cJSON_CreateObject();
  cJSON *srv = cJSON_AddObjectToObject(r, "server");
  cJSON_AddStringToObject(srv, "name", "crucible");
  cJSON_AddStringToObject(srv, "version", CRUCIBLE_VERSION);
  char path[4096];
  cJSON_AddStringToObject(srv, "configFile", cfg_user_path(path, sizeof path));
  cJSON_AddStringToObject(srv, "transcripts", store_default_path(path, sizeof path));
  sbx_config sc;
  lsp_sandbox_config(&settings->sandbox, &sc);
  cJSON *sbx = sbx_doctor_report(&sc);
  cJSON_AddItemToObject(r, "sandbox", sbx);
  cJSON_AddItemToObject(r, "checks", chk_doctor_report());
  cJSON_AddItemToObject(r, "environments", lsp_doctor_environments(settings));
  cJSON_AddItemToObject(r, "settings", cfg_to_json(settings));
  /* "ok" says whether code can run here at all: the sandbox must work. */
  const cJSON *ok = cJSON_GetObjectItemCaseSensitive(sbx, "ok");
  cJSON_AddBoolToObject(r, "ok", !ok || cJSON_IsTrue(ok));
  return r;
}

/* crucible/doctor gathers the machine report on the thread pool (it runs a
 * few short sandboxes synchronously, ~100-300 ms, which must not stall the
 * loop) while the loop pings the LLM endpoint; it answers when both are in. */
typedef struct doctor_job {
  rpc_call *call;
  cfg settings;      /* a snapshot: the client may change its settings meanwhile */
  cJSON *report;     /* from the worker */
  cJSON *llm_section;
  int pending;       /* the work item and the ping */
  uv_work_t work;
  uv_timer_t done;
} doctor_job;

static void doctor_freed(uv_handle_t *h) {
  doctor_job *j = container_of((uv_timer_t *)h, doctor_job, done);
  cfg_close(&j->settings);
  free(j);
}

/* Replies from the loop, after the ping callback has returned. */
static void doctor_finish(uv_timer_t *t) {
  doctor_job *j = container_of(t, doctor_job, done);
  cJSON_AddItemToObject(j->report, "llm", j->llm_section);
  rpc_call_reply(j->call, j->report);
  uv_close((uv_handle_t *)&j->done, doctor_freed);
}

static void doctor_part_done(doctor_job *j) {
  if (--j->pending == 0) uv_timer_start(&j->done, doctor_finish, 0, 0);
}

static void doctor_work(uv_work_t *w) {
  doctor_job *j = container_of(w, doctor_job, work);
  j->report = lsp_doctor_report(&j->settings);
}

static void doctor_work_done(uv_work_t *w, int status) {
  doctor_job *j = container_of(w, doctor_job, work);
  if (!j->report) j->report = cJSON_CreateObject();
  doctor_part_done(j);
}

void lsp_doctor_llm_result(cJSON *llm, const llm_ping_result *res) {
  cJSON_AddBoolToObject(llm, "reachable", res->ok);
  if (res->http_status) cJSON_AddNumberToObject(llm, "httpStatus", (double)res->http_status);
  if (res->error) cJSON_AddStringToObject(llm, "error", res->error);
  if (res->models >= 0) cJSON_AddNumberToObject(llm, "models", res->models);
  cJSON_AddBoolToObject(llm, "modelListed", res->model_listed);
  cJSON_AddNumberToObject(llm, "ms", res->ms);
}

static void doctor_pinged(void *ud, const llm_ping_result *res) {
  doctor_job *j = ud;
  lsp_doctor_llm_result(j->llm_section, res);
  doctor_part_done(j);
}

cJSON *lsp_doctor_llm_section(const cfg *settings) {
  cJSON *llm = cJSON_CreateObject();
  cJSON_AddStringToObject(llm, "baseUrl", settings->llm.base_url);
  cJSON_AddStringToObject(llm, "model", settings->llm.model);
  const char *key = getenv(settings->llm.api_key_env);
  cJSON_AddStringToObject(llm, "apiKeyEnv", settings->llm.api_key_env);
  cJSON_AddBoolToObject(llm, "apiKeySet", key && *key);
  return llm;
}

int lsp_doctor_ping(llm_client *llm, const cfg *settings, llm_ping_fn cb, void *ud) {
  llm_config lc;
  lsp_llm_config(settings, &lc);
  lc.timeout_ms = 5000;
  lc.connect_timeout_ms = 3000;
  int err = llm_ping(llm, &lc, cb, ud);
  llm_config_close(&lc);
  return err;
}

void lsp_doctor(rpc_call *call, const cJSON *params) {
  lsp_client *c = lsp_client_of(call);
  uv_loop_t *loop = c->srv->loop;
  doctor_job *j = xcalloc(1, sizeof *j);
  j->call = call;
  cfg_copy(&j->settings, &c->cfg);
  j->llm_section = lsp_doctor_llm_section(&c->cfg);
  j->pending = 2;
  uv_timer_init(loop, &j->done);
  if (lsp_doctor_ping(c->srv->engine.llm, &c->cfg, doctor_pinged, j)) {
    cJSON_AddStringToObject(j->llm_section, "error", "cannot start the check");
    j->pending--;
  }
  if (uv_queue_work(loop, &j->work, doctor_work, doctor_work_done)) {
    j->report = lsp_doctor_report(&j->settings); /* no thread pool: do it here */
    doctor_part_done(j);
  }
}

/* A cheap round trip for health checks (and the throughput benchmark). */
void lsp_ping(rpc_call *call, const cJSON *params) {
  rpc_call_reply(call, cJSON_CreateObject());
}

/* Notifications we accept and have nothing to do for. */
void lsp_ignore(rpc_call *call, const cJSON *params) {
}
