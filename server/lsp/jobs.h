/* What the run and ask handlers share: task labels and output
 * notifications that keep UTF-8 whole. */
#ifndef CRUCIBLE_LSP_JOBS_H
#define CRUCIBLE_LSP_JOBS_H

#include "loop.h"
#include "sandbox.h"
#include "server.h"

/* The label notifications carry: params.task when it is a string, else the
 * request id as text. New string. */
char *lsp_task_label(rpc_call *call, const cJSON *params);

/* Streams program output as crucible/output notifications; a multi-byte
 * character split between two reads is carried to the next one, and
 * invalid bytes become U+FFFD. */
typedef struct lsp_output {
  char carry[2][4];
  size_t carry_len[2];
} lsp_output;
void lsp_output_send(lsp_output *self, rpc_session *ses, const char *task, int iteration, int stream,
                     const char *bytes, size_t len);
/* Sends what is still carried (at the end of a run). */
void lsp_output_flush(lsp_output *self, rpc_session *ses, const char *task, int iteration);

/* Publishes a run's diagnostics (from its RunResult) on an open document. */
void lsp_publish_run_diagnostics(lsp_client *client, const char *uri, const cJSON *run_result);

#endif
