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

static void doctor_done(void *ud, cJSON *report) {
  rpc_call_reply(ud, report);
}

/* The report as this server's own engines see it (its runner, its LLM
 * client), for the client's settings. */
void lsp_doctor(rpc_call *call, const cJSON *params) {
  lsp_client *c = lsp_client_of(call);
  int err = core_doctor_start(&c->srv->core, &c->cfg, false, doctor_done, call);
  if (err) rpc_call_errorf(call, RPC_INTERNAL_ERROR, "cannot start the doctor: %s", uv_strerror(err));
}

/* A cheap round trip for health checks (and the throughput benchmark). */
void lsp_ping(rpc_call *call, const cJSON *params) {
  rpc_call_reply(call, cJSON_CreateObject());
}

/* Notifications we accept and have nothing to do for. */
void lsp_ignore(rpc_call *call, const cJSON *params) {
}
