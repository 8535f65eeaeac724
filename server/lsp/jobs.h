/* What the run and ask handlers share: task labels, sandbox limits from the
 * client's settings, and output notifications that keep UTF-8 whole. */
#ifndef CRUCIBLE_LSP_JOBS_H
#define CRUCIBLE_LSP_JOBS_H

#include "loop.h"
#include "sandbox.h"
#include "server.h"

/* The label notifications carry: params.task when it is a string, else the
 * request id as text. New string. */
char *lsp_task_label(rpc_call *call, const cJSON *params);

/* The client's sandbox settings as limits (defaults) and as ceilings. */
void lsp_sandbox_limits(const cfg *settings, sbx_limits *limits);
void lsp_sandbox_limits_of(const cfg_sandbox *sb, sbx_limits *limits);
/* A runner configuration from the settings: zeroed, then the interpreters
 * and the sandbox's host uid/gid (the caller adds limits, concurrency,
 * warm). Strings are borrowed from sb. */
void lsp_sandbox_config(const cfg_sandbox *sb, sbx_config *sc);

/* The LLM client's configuration from the settings (init'ed here; the
 * caller closes it with llm_config_close). */
void lsp_llm_config(const cfg *settings, llm_config *lc);
/* Fills what an ask takes from the settings: iterations, reflection, import
 * checks and deny-list, sandbox limits, the documentation options, and the
 * LLM (lc, init'ed here, pointed to by p->llm; close it after
 * agent_task_start). The request's own fields (question, context, task,
 * docs sources) are the caller's. */
void lsp_agent_params(const cfg *settings, agent_params *p, llm_config *lc);

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
