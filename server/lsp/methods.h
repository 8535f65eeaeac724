/* The method table and the handlers each feature file provides. */
#ifndef CRUCIBLE_LSP_METHODS_H
#define CRUCIBLE_LSP_METHODS_H

#include "server.h"

extern const rpc_method lsp_methods[];
extern const size_t lsp_n_methods;

/* lifecycle.c */
void lsp_initialize(rpc_call *call, const cJSON *params);
void lsp_initialized(rpc_call *call, const cJSON *params);
void lsp_shutdown(rpc_call *call, const cJSON *params);
void lsp_did_change_configuration(rpc_call *call, const cJSON *params);
void lsp_execute_command(rpc_call *call, const cJSON *params);
void lsp_doctor(rpc_call *call, const cJSON *params);
void lsp_set_trace(rpc_call *call, const cJSON *params);
void lsp_ping(rpc_call *call, const cJSON *params);
void lsp_ignore(rpc_call *call, const cJSON *params);

/* run.c, ask.c, documents.c */
void lsp_run(rpc_call *call, const cJSON *params);
void lsp_ask(rpc_call *call, const cJSON *params);
void lsp_cancel_task(rpc_call *call, const cJSON *params);
void lsp_progress_cancel(rpc_call *call, const cJSON *params);
void lsp_history(rpc_call *call, const cJSON *params);
void lsp_transcript(rpc_call *call, const cJSON *params);

/* The JSON report behind `crucible doctor` and crucible/doctor. */
cJSON *lsp_doctor_report(const cfg *settings);
/* The LLM part of the report (no secrets). */
cJSON *lsp_doctor_llm_section(const cfg *settings);
/* Pings the endpoint of `settings` through `llm` with the doctor's short
 * timeouts; cb runs once, from the loop. Returns 0 or a negative errno (no
 * callback; -ECANCELED when llm is NULL). */
int lsp_doctor_ping(llm_client *llm, const cfg *settings, llm_ping_fn cb, void *ud);
/* Adds a ping's outcome (reachable, status, models, ...) to the LLM section. */
void lsp_doctor_llm_result(cJSON *llm, const llm_ping_result *res);
/* Engines: set up at server start, closed at its end. */
void lsp_engines_init(lsp_server *srv);
void lsp_engines_close(lsp_server *srv);
/* Frees what is left once the loop has run dry. */
void lsp_engines_free(lsp_server *srv);

#endif
