/* The table from method name to handler, shared by every session. */
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
};
const size_t lsp_n_methods = sizeof lsp_methods / sizeof lsp_methods[0];
