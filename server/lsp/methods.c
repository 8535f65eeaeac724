/* The table from method name to handler, shared by every session. */
#include "documents.h"
#include "environments.h"
#include "methods.h"

const rpc_method lsp_methods[] = {
    {"initialize", lsp_initialize, RPC_METHOD_BEFORE_INIT},
    {"initialized", lsp_initialized, 0},
    {"shutdown", lsp_shutdown, 0},
    {"$/setTrace", lsp_set_trace, 0},
    {"workspace/didChangeConfiguration", lsp_did_change_configuration, 0},
    {"workspace/executeCommand", lsp_execute_command, 0},
    {"crucible/doctor", lsp_doctor, 0},
    {"crucible/ping", lsp_ping, 0},
    {"crucible/run", lsp_run, 0},
    {"crucible/ask", lsp_ask, 0},
    {"crucible/check", lsp_check, 0},
    {"crucible/environments", lsp_environments, 0},
    {"crucible/cancel", lsp_cancel_task, 0},
    {"crucible/history", lsp_history, 0},
    {"crucible/transcript", lsp_transcript, 0},
    {"window/workDoneProgress/cancel", lsp_progress_cancel, 0},
    {"textDocument/didOpen", lsp_did_open, 0},
    {"textDocument/didChange", lsp_did_change, 0},
    {"textDocument/didClose", lsp_did_close, 0},
    {"textDocument/didSave", lsp_ignore, 0},
    {"textDocument/codeAction", lsp_code_action, 0},
};
const size_t lsp_n_methods = sizeof lsp_methods / sizeof lsp_methods[0];
