/* Shared pieces of the run and ask handlers. */
#include "jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "documents.h"
#include "utf8.h"

char *lsp_task_label(rpc_call *call, const cJSON *params) {
  const cJSON *task = cJSON_GetObjectItemCaseSensitive(params, "task");
  if (cJSON_IsString(task) && *task->valuestring) return xstrdup(task->valuestring);
  if (cJSON_IsString(call->id)) return xstrdup(call->id->valuestring);
  if (cJSON_IsNumber(call->id)) return xasprintf("%.0f", call->id->valuedouble);
  return xstrdup("task");
}

void lsp_sandbox_limits_of(const cfg_sandbox *sb, sbx_limits *l) {
  memset(l, 0, sizeof *l);
  l->timeout_ms = sb->timeout_ms;
  l->memory_mb = sb->memory_mb;
  l->cpu_seconds = sb->cpu_seconds;
  l->pids = sb->pids;
  l->output_bytes = sb->output_bytes;
  l->disk_mb = sb->disk_mb;
}

void lsp_sandbox_config(const cfg_sandbox *sb, sbx_config *sc) {
  memset(sc, 0, sizeof *sc);
  sc->host_uid = sb->uid;
  sc->host_gid = sb->gid;
  for (int l = 0; l < SBX_LANG_COUNT; l++) sc->interpreters[l] = sb->interpreters[l];
}

void lsp_sandbox_limits(const cfg *settings, sbx_limits *l) {
  lsp_sandbox_limits_of(&settings->sandbox, l);
}

void lsp_llm_config(const cfg *settings, llm_config *lc) {
  llm_config_init(lc);
  llm_config_resolve(lc, settings->llm.base_url, settings->llm.model, settings->llm.api_key_env);
  lc->temperature = settings->llm.temperature;
  lc->timeout_ms = settings->llm.timeout_ms;
  lc->max_retries = settings->llm.max_retries;
  switch (settings->llm.structured_output) {
  case CFG_STRUCTURED_AUTO: lc->structured_output = LLM_MODE_AUTO; break;
  case CFG_STRUCTURED_JSON_SCHEMA: lc->structured_output = LLM_MODE_JSON_SCHEMA; break;
  case CFG_STRUCTURED_JSON_OBJECT: lc->structured_output = LLM_MODE_JSON_OBJECT; break;
  case CFG_STRUCTURED_TEXT: lc->structured_output = LLM_MODE_TEXT; break;
  }
}

void lsp_agent_params(const cfg *settings, agent_params *p, llm_config *lc) {
  lsp_llm_config(settings, lc);
  p->llm = lc;
  p->max_iterations = settings->agent.max_iterations;
  p->reflect = settings->agent.reflect;
  p->deny_imports = (const char *const *)settings->agent.deny_imports.items;
  switch (settings->agent.import_check) {
  case CFG_IMPORT_CHECK_STATIC: p->import_check = AGENT_IMPORTS_STATIC; break;
  case CFG_IMPORT_CHECK_RUN: p->import_check = AGENT_IMPORTS_RUN; break;
  case CFG_IMPORT_CHECK_BOTH: p->import_check = AGENT_IMPORTS_BOTH; break;
  }
  lsp_sandbox_limits(settings, &p->limits);
  p->docs_mode = settings->docs.mode == CFG_DOCS_ALL ? AGENT_DOCS_ALL : AGENT_DOCS_SEARCH;
  p->docs_budget_tokens = settings->docs.budget_tokens;
  p->docs_max_depth = settings->docs.max_depth;
  p->docs_max_pages = settings->docs.max_pages;
}

static void send_text(rpc_session *ses, const char *task, int iteration, int stream, const char *bytes,
                      size_t len) {
  if (!len) return;
  char *text = utf8_repair(bytes, len, NULL);
  if (!text) return;
  cJSON *p = cJSON_CreateObject();
  cJSON_AddStringToObject(p, "task", task);
  cJSON_AddNumberToObject(p, "iteration", iteration);
  cJSON_AddStringToObject(p, "stream", stream == 2 ? "stderr" : "stdout");
  cJSON_AddStringToObject(p, "text", text);
  free(text);
  rpc_session_notify(ses, "crucible/output", p);
}

void lsp_output_send(lsp_output *self, rpc_session *ses, const char *task, int iteration, int stream,
                     const char *bytes, size_t len) {
  int s = stream == 2 ? 1 : 0;
  char buf[8192];
  while (len) {
    /* Prepend what was carried, then cut before an unfinished character. */
    size_t c = self->carry_len[s];
    size_t take = len < sizeof buf - c ? len : sizeof buf - c;
    memcpy(buf, self->carry[s], c);
    memcpy(buf + c, bytes, take);
    bytes += take;
    len -= take;
    size_t n = c + take;
    size_t whole = len ? n : utf8_whole_prefix(buf, n);
    if (!len && n - whole <= 3) {
      self->carry_len[s] = n - whole;
      memcpy(self->carry[s], buf + whole, n - whole);
    } else {
      whole = n;
      self->carry_len[s] = 0;
    }
    send_text(ses, task, iteration, stream, buf, whole);
  }
}

void lsp_output_flush(lsp_output *self, rpc_session *ses, const char *task, int iteration) {
  for (int s = 0; s < 2; s++) {
    send_text(ses, task, iteration, s + 1, self->carry[s], self->carry_len[s]);
    self->carry_len[s] = 0;
  }
}

void lsp_publish_run_diagnostics(lsp_client *client, const char *uri, const cJSON *run_result) {
  if (!uri || !client) return;
  lsp_doc *d = lsp_doc_find(client, uri);
  if (!d) return;
  const cJSON *diags = cJSON_GetObjectItemCaseSensitive(run_result, "diagnostics");
  lsp_doc_set_run_diagnostics(d, diags ? cJSON_Duplicate(diags, 1) : NULL);
}
