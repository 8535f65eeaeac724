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



#endif
