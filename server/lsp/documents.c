/* Open documents of one client: sync, live diagnostics, range text. */
#include "documents.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "environments.h"
#include "log.h"
#include "methods.h"
#include "utf8.h"

#define DEBOUNCE_MS 120

lsp_doc *lsp_doc_find(lsp_client *client, const char *uri) {
  for (lsp_doc *d = client->docs; d; d = d->next)
    if (!strcmp(d->uri, uri)) return d;
  return NULL;
}

static void index_ready(void *ud, const chk_modset *set, const char *error) {
  lsp_server *srv = ud;
  (void)error;
  for (int i = 0; i < CHK_LANG_COUNT; i++) {
    if (srv->index_wanted[i] && modindex_peek(&srv->core.modindex, (chk_language)i)) {
      srv->index_wanted[i] = false;
      lsp_docs_recheck_language(srv, (chk_language)i);
    }
  }
  (void)set;
}

/* The module index for lang if known; otherwise starts learning it (open
 * documents are rechecked when it arrives) and returns NULL. */
static const chk_modset *modset_for(lsp_server *srv, chk_language lang) {
  const chk_modset *set = modindex_peek(&srv->core.modindex, lang);
  if (!set && !srv->index_wanted[lang] && !srv->stopping) {
    srv->index_wanted[lang] = true;
    modindex_get(&srv->core.modindex, lang, index_ready, srv);
  }
  return set;
}

static void env_index_ready(void *ud, const chk_modset *set, const char *error) {
  lsp_server *srv = ud;
  (void)error;
  /* A failed probe is not retried until the environment changes: no recheck. */
  if (set) lsp_docs_recheck_language(srv, chk_modset_language(set));
}

/* The module index live diagnostics of c's documents in lang use: the
 * client's environment's (sandbox.environment) when it resolves without a
 * build, else the system's. */
static const chk_modset *modset_for_client(lsp_client *c, chk_language lang) {
  lsp_server *srv = c->srv;
  env_resolved *env = lsp_env_for_diagnostics(c, lang);
  const sbx_env *se = env_resolved_sbx(env);
  if (!se) {
    env_resolved_free(env);
    /* A container engine without its image: no index (the host's would
     * judge imports the image may not have, and a probe run in the image
     * would be stored as the host's). */
    if (srv->core.runner_open && sbx_runner_image(&srv->core.runner)) return NULL;
    return modset_for(srv, lang);
  }
  const chk_modset *set = modindex_peek_env(&srv->core.modindex, lang, se);
  if (!set && !srv->stopping) modindex_get_env(&srv->core.modindex, lang, se, env_index_ready, srv);
  env_resolved_free(env);
  return set;
}

static cJSON *merged_diagnostics(lsp_doc *d, const cJSON *check_diags) {
  cJSON *all = check_diags ? cJSON_Duplicate(check_diags, 1) : cJSON_CreateArray();
  const cJSON *it;
  cJSON_ArrayForEach(it, d->run_diags) cJSON_AddItemToArray(all, cJSON_Duplicate(it, 1));
  return all;
}

static void publish(lsp_doc *d) {
  lsp_client *c = d->client;
  if (!c || rpc_session_closing(&c->ses)) return;
  lsp_server *srv = c->srv;
  chk_report rep;
  memset(&rep, 0, sizeof rep);
  if (!d->doc) return;
  /* a PEP 723 block's packages are installed before a run: not errors */
  char **declared = d->lang == CHK_LANG_PYTHON ? lsp_declared_packages(chk_doc_text(d->doc, NULL)) : NULL;
  chk_options opts = {.modset = modset_for_client(c, d->lang), .deny = (const char *const *)c->cfg.agent.deny_imports.items,
                      .declared = (const char *const *)declared};
  chk_doc_check(srv->core.chk, d->doc, &opts, &rep);
  lsp_declared_free(declared);
  cJSON *res = chk_report_json(&rep, d->doc, c->enc);
  chk_report_close(&rep);
  cJSON *p = cJSON_CreateObject();
  cJSON_AddStringToObject(p, "uri", d->uri);
  cJSON_AddNumberToObject(p, "version", d->version);
  cJSON_AddItemToObject(p, "diagnostics",
                        merged_diagnostics(d, cJSON_GetObjectItemCaseSensitive(res, "diagnostics")));
  cJSON_Delete(res);
  rpc_session_notify(&c->ses, "textDocument/publishDiagnostics", p);
}

static void debounce_cb(uv_timer_t *t) {
  publish(container_of(t, lsp_doc, debounce));
}

static void schedule_publish(lsp_doc *d) {
  uv_timer_start(&d->debounce, debounce_cb, DEBOUNCE_MS, 0);
}

void lsp_docs_recheck_language(lsp_server *srv, chk_language lang) {
  for (lsp_client *c = srv->clients; c; c = c->next)
    for (lsp_doc *d = c->docs; d; d = d->next)
      if (d->lang == lang) schedule_publish(d);
}

static void doc_closed(uv_handle_t *h) {
  lsp_doc *d = container_of((uv_timer_t *)h, lsp_doc, debounce);
  chk_doc_free(d->doc);
  cJSON_Delete(d->run_diags);
  free(d->uri);
  free(d->language);
  free(d);
}

static void doc_close(lsp_doc *d) {
  d->client = NULL;
  uv_timer_stop(&d->debounce);
  uv_close((uv_handle_t *)&d->debounce, doc_closed);
}

void lsp_docs_close_all(lsp_client *client) {
  while (client->docs) {
    lsp_doc *d = client->docs;
    client->docs = d->next;
    doc_close(d);
  }
}

static const char *text_param(const cJSON *params, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

void lsp_did_open(rpc_call *call, const cJSON *params) {
  lsp_client *c = lsp_client_of(call);
  const cJSON *td = cJSON_GetObjectItemCaseSensitive(params, "textDocument");
  const char *uri = text_param(td, "uri");
  const char *text = text_param(td, "text");
  const cJSON *ver = cJSON_GetObjectItemCaseSensitive(td, "version");
  if (!uri || !text) {
    log_warn("textDocument/didOpen without uri or text: ignored");
    return;
  }
  chk_language lang = lang_from_lsp_id(text_param(td, "languageId"));
  if (lang == CHK_LANG_NONE) lang = chk_language_from_path(uri);
  if (lang == CHK_LANG_NONE) return; /* not a language we check or run */
  if (!core_checker(&c->srv->core)) return;      /* logged once; nothing to check with */
  lsp_doc *d = lsp_doc_find(c, uri);
  if (d) {
    chk_doc_free(d->doc);
  } else {
    d = xcalloc(1, sizeof *d);
    d->client = c;
    d->uri = xstrdup(uri);
    uv_timer_init(c->srv->loop, &d->debounce);
    d->next = c->docs;
    c->docs = d;
  }
  free(d->language);
  d->lang = lang;
  d->language = xstrdup(chk_language_name(lang));
  d->version = cJSON_IsNumber(ver) ? ver->valueint : 0;
  d->doc = chk_doc_new(c->srv->core.chk, lang, text, strlen(text));
  schedule_publish(d);
}

void lsp_did_change(rpc_call *call, const cJSON *params) {
  lsp_client *c = lsp_client_of(call);
  const cJSON *td = cJSON_GetObjectItemCaseSensitive(params, "textDocument");
  const char *uri = text_param(td, "uri");
  lsp_doc *d = uri ? lsp_doc_find(c, uri) : NULL;
  if (!d) return;
  const cJSON *ver = cJSON_GetObjectItemCaseSensitive(td, "version");
  if (cJSON_IsNumber(ver)) d->version = ver->valueint;
  const cJSON *changes = cJSON_GetObjectItemCaseSensitive(params, "contentChanges");
  const cJSON *ch;
  cJSON_ArrayForEach(ch, changes) {
    if (chk_doc_change_json(d->doc, ch, c->enc) != 0) log_warn("%s: ignoring a malformed content change", uri);
  }
  /* Old runtime errors point at lines that may have moved: drop them. */
  cJSON_Delete(d->run_diags);
  d->run_diags = NULL;
  schedule_publish(d);
}

void lsp_did_close(rpc_call *call, const cJSON *params) {
  lsp_client *c = lsp_client_of(call);
  const cJSON *td = cJSON_GetObjectItemCaseSensitive(params, "textDocument");
  const char *uri = text_param(td, "uri");
  if (!uri) return;
  for (lsp_doc **pp = &c->docs; *pp; pp = &(*pp)->next) {
    if (strcmp((*pp)->uri, uri)) continue;
    lsp_doc *d = *pp;
    *pp = d->next;
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "uri", uri);
    cJSON_AddArrayToObject(p, "diagnostics");
    rpc_session_notify(&c->ses, "textDocument/publishDiagnostics", p);
    doc_close(d);
    return;
  }
}

void lsp_doc_set_run_diagnostics(lsp_doc *self, cJSON *diags) {
  cJSON_Delete(self->run_diags);
  self->run_diags = diags;
  if (self->client) publish(self);
}

/* A position's field, saturated: beyond UINT32_MAX is past any end anyway. */
static uint32_t u32_of(long v) {
  return v > (long)UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static bool position_of(const cJSON *pos, long *line, long *ch) {
  const cJSON *l = cJSON_GetObjectItemCaseSensitive(pos, "line");
  const cJSON *c = cJSON_GetObjectItemCaseSensitive(pos, "character");
  if (!cJSON_IsNumber(l) || !cJSON_IsNumber(c) || l->valuedouble < 0 || c->valuedouble < 0) return false;
  *line = (long)l->valuedouble;
  *ch = (long)c->valuedouble;
  return true;
}

char *lsp_doc_range_text(const lsp_doc *self, const cJSON *range, lsp_encoding enc, int *first_line) {
  size_t len;
  const char *text = chk_doc_text(self->doc, &len);
  *first_line = 0;
  if (!range) return xstrndup(text, len);
  long sl, sc, el, ec;
  if (!position_of(cJSON_GetObjectItemCaseSensitive(range, "start"), &sl, &sc) ||
      !position_of(cJSON_GetObjectItemCaseSensitive(range, "end"), &el, &ec))
    return NULL;
  size_t a = utf8_offset_at(text, len, u32_of(sl), u32_of(sc), enc);
  size_t b = utf8_offset_at(text, len, u32_of(el), u32_of(ec), enc);
  if (b < a) return NULL;
  *first_line = (int)sl;
  /* A selection that starts mid-line runs from the start of its first line's
   * text only; keep what was selected. */
  return xstrndup(text + a, b - a);
}

typedef struct check_job {
  rpc_call *call;
  chk_language lang;
  char *code;   /* NULL: check the open document call->label names */
  char *uri;
  bool waiting;
  env_resolved *env;      /* the environment whose module index resolves the imports */
  lsp_env_job *env_job;   /* while it is being built */
} check_job;

static void check_job_free(check_job *j) {
  free(j->code);
  free(j->uri);
  env_resolved_free(j->env);
  free(j);
}

static void check_reply(check_job *j, const chk_modset *set) {
  rpc_call *call = j->call;
  lsp_client *c = lsp_client_of(call);
  lsp_doc *d = j->code ? NULL : lsp_doc_find(c, j->uri);
  /* a PEP 723 block's packages are installed before a run: not errors */
  char **declared = j->lang != CHK_LANG_PYTHON ? NULL
                    : lsp_declared_packages(j->code ? j->code : d ? chk_doc_text(d->doc, NULL) : NULL);
  chk_options opts = {.modset = set, .deny = (const char *const *)c->cfg.agent.deny_imports.items,
                      .declared = (const char *const *)declared};
  cJSON *res = NULL;
  if (d) {
    chk_report rep;
    memset(&rep, 0, sizeof rep);
    chk_doc_check(c->srv->core.chk, d->doc, &opts, &rep);
    res = chk_report_json(&rep, d->doc, c->enc);
    chk_report_close(&rep);
  } else if (j->code) {
    res = chk_check_json(c->srv->core.chk, j->lang, j->code, strlen(j->code), &opts, c->enc);
  }
  lsp_declared_free(declared);
  call->data = NULL;
  cJSON *env = j->env ? env_resolved_json(j->env) : NULL;
  check_job_free(j);
  if (!res) {
    cJSON_Delete(env);
    rpc_call_error(call, RPC_REQUEST_FAILED, "the document was closed before it could be checked");
    return;
  }
  cJSON_AddBoolToObject(res, "moduleIndex", set != NULL);
  if (env) cJSON_AddItemToObject(res, "environment", env);
  rpc_call_reply(call, res);
}

static void check_index_ready(void *ud, const chk_modset *set, const char *error) {
  check_job *j = ud;
  j->waiting = false;
  if (!set && error) log_warn("imports are not resolved: %s", error);
  check_reply(j, set);
}

static void check_cancel(rpc_call *call) {
  check_job *j = call->data;
  if (!j || (!j->waiting && !j->env_job)) return;
  if (j->env_job) lsp_env_job_cancel(j->env_job);
  else modindex_unwait_env(&lsp_client_of(call)->srv->core.modindex, j->lang, env_resolved_sbx(j->env),
                                 check_index_ready, j);
  call->data = NULL;
  check_job_free(j);
  rpc_call_cancelled(call);
}

/* The environment is known: its module index, then the answer. */
static void check_with_env(check_job *j) {
  lsp_server *srv = lsp_client_of(j->call)->srv;
  const sbx_env *env = env_resolved_sbx(j->env);
  const chk_modset *set = modindex_peek_env(&srv->core.modindex, j->lang, env);
  if (set) {
    check_reply(j, set);
    return;
  }
  /* The first check of a language (or environment) waits for its module
   * index (learned once in the sandbox, then cached on disk), so statuses
   * are real, not unknown. */
  j->waiting = true;
  modindex_get_env(&srv->core.modindex, j->lang, env, check_index_ready, j);
}

static void check_env_ready(void *ud, env_resolved *env, const char *error) {
  check_job *j = ud;
  rpc_call *call = j->call;
  j->env_job = NULL;
  if (call->progress_token && rpc_call_alive(call))
    rpc_progress_end(&lsp_client_of(call)->ses, call->progress_token, env ? "installed" : "installation failed");
  if (!env) {
    call->data = NULL;
    check_job_free(j);
    rpc_call_errorf(call, RPC_REQUEST_FAILED, "%s", error ? error : "the environment could not be built");
    return;
  }
  j->env = env;
  check_with_env(j);
}

void lsp_check(rpc_call *call, const cJSON *params) {
  lsp_client *c = lsp_client_of(call);
  const char *code = text_param(params, "code");
  const char *uri = text_param(params, "uri");
  const char *language = text_param(params, "language");
  if (!code && !uri) {
    rpc_call_error(call, RPC_INVALID_PARAMS, "crucible/check needs 'code' or the 'uri' of an open document");
    return;
  }
  chk_language lang = LANG_DEFAULT;
  if (!code) {
    lsp_doc *d = lsp_doc_find(c, uri);
    if (!d) {
      rpc_call_errorf(call, RPC_INVALID_PARAMS, "%.300s is not open: send textDocument/didOpen first, or pass 'code'",
                      uri);
      return;
    }
    lang = d->lang;
  }
  if (language) {
    lang = chk_language_parse(language);
    if (lang == CHK_LANG_NONE) {
      rpc_call_errorf(call, RPC_INVALID_PARAMS, "unknown language '%.60s' (" LANG_NAMES_TEXT ")", language);
      return;
    }
  }
  if (!core_checker(&c->srv->core)) {
    rpc_call_error(call, RPC_REQUEST_FAILED, "checks are unavailable: the grammars failed to load (see crucible doctor)");
    return;
  }
  check_job *j = xcalloc(1, sizeof *j);
  j->call = call;
  j->lang = lang;
  j->code = code ? xstrdup(code) : NULL;
  j->uri = uri ? xstrdup(uri) : NULL;
  call->data = j;
  rpc_call_set_cancel(call, check_cancel);
  const cJSON *env_v = cJSON_GetObjectItemCaseSensitive(params, "environment");
  sbx_lang sl;
  if (sbx_lang_parse(chk_language_name(lang), &sl) == 0) {
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(params, "workDoneToken");
    if (cJSON_IsString(tok) || cJSON_IsNumber(tok)) call->progress_token = cJSON_Duplicate(tok, 1);
    char *err = NULL;
    /* A PEP 723 block: the environment with its packages when it is built
     * already (a check installs nothing); else its modules are declared. */
    lsp_doc *d = code ? NULL : lsp_doc_find(c, uri);
    cJSON *with_deps = NULL;
    env_spec sp;
    if (c->srv->core.envs &&
        lsp_env_spec_pep723(c, env_v, sl, code ? code : chk_doc_text(d->doc, NULL), &with_deps, &err) == 0 &&
        with_deps) {
      if (env_spec_parse(&sp, with_deps, &err) == 0)
        j->env = env_cache_find(c->srv->core.envs, sl, (const char *const *)sp.requirements, sp.n);
      env_spec_close(&sp);
    }
    cJSON_Delete(with_deps);
    free(err);
    err = NULL;
    int e = j->env ? 1 : lsp_env_acquire(c, call, env_v, sl, check_env_ready, j, &j->env, &j->env_job, &err);
    if (e < 0) {
      call->data = NULL;
      check_job_free(j);
      rpc_call_errorf(call, e == -EINVAL ? RPC_INVALID_PARAMS : RPC_REQUEST_FAILED, "crucible/check: %s", err);
      free(err);
      return;
    }
    if (e == 0) return; /* installing: check_env_ready goes on */
  }
  check_with_env(j);
}

/* A CodeAction that runs `command` with one argument (taken). */
static cJSON *code_action(const char *title, const char *kind, const char *command, cJSON *arg) {
  cJSON *a = cJSON_CreateObject();
  cJSON_AddStringToObject(a, "title", title);
  cJSON_AddStringToObject(a, "kind", kind);
  cJSON *cmd = cJSON_AddObjectToObject(a, "command");
  cJSON_AddStringToObject(cmd, "title", title);
  cJSON_AddStringToObject(cmd, "command", command);
  cJSON_AddItemToArray(cJSON_AddArrayToObject(cmd, "arguments"), arg);
  return a;
}

/* Whether an action of `kind` is wanted by the request's context.only: any
 * kind when only is absent, else when kind equals one of its entries or lies
 * under one ("source" takes "source.fix"; the empty kind takes every kind). */
static bool kind_wanted(const cJSON *only, const char *kind) {
  if (!cJSON_IsArray(only)) return true;
  const cJSON *k;
  cJSON_ArrayForEach(k, only) {
    if (!cJSON_IsString(k)) continue;
    size_t n = strlen(k->valuestring);
    if (!strncmp(kind, k->valuestring, n) && (kind[n] == '\0' || kind[n] == '.' || n == 0)) return true;
  }
  return false;
}

void lsp_code_action(rpc_call *call, const cJSON *params) {
  lsp_client *c = lsp_client_of(call);
  const cJSON *only = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(params, "context"), "only");
  const cJSON *td = cJSON_GetObjectItemCaseSensitive(params, "textDocument");
  const char *uri = text_param(td, "uri");
  const cJSON *range = cJSON_GetObjectItemCaseSensitive(params, "range");
  cJSON *actions = cJSON_CreateArray();
  lsp_doc *d = uri ? lsp_doc_find(c, uri) : NULL;
  if (d && range) {
    /* Run the selection (or the whole file when nothing is selected). */
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(range, "start");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(range, "end");
    bool empty = cJSON_Compare(s, e, 1);
    /* arg is the object the command's handler gets as its params */
    cJSON *arg = cJSON_CreateObject();
    cJSON_AddStringToObject(arg, "uri", uri);
    if (!empty) cJSON_AddItemToObject(arg, "range", cJSON_Duplicate(range, 1));
    cJSON_AddStringToObject(arg, "language", d->language);
    if (kind_wanted(only, "source"))
      cJSON_AddItemToArray(actions, code_action(empty ? "Crucible: run this file in the sandbox"
                                                      : "Crucible: run the selection in the sandbox",
                                                "source", "crucible.run", arg));
    else
      cJSON_Delete(arg);
    /* When the last run failed, offer to have Crucible fix it. */
    if (cJSON_GetArraySize(d->run_diags) > 0 && kind_wanted(only, "quickfix")) {
      const cJSON *msg = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(d->run_diags, 0), "message");
      cJSON *fa = cJSON_CreateObject();
      char *q = xasprintf("This code fails with: %s\nFix it so that it runs correctly.",
                          cJSON_IsString(msg) ? msg->valuestring : "an error");
      cJSON_AddStringToObject(fa, "question", q);
      free(q);
      cJSON_AddStringToObject(fa, "language", d->language);
      cJSON *ctx = cJSON_AddObjectToObject(fa, "context");
      cJSON_AddStringToObject(ctx, "uri", uri);
      if (!empty) cJSON_AddItemToObject(ctx, "range", cJSON_Duplicate(range, 1));
      cJSON_AddItemToArray(actions, code_action("Crucible: fix this error", "quickfix", "crucible.ask", fa));
    }
  }
  rpc_call_reply(call, actions);
}
