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
