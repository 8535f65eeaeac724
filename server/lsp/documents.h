/* Open documents of one client: incremental sync, debounced live
 * diagnostics (syntax, imports, and the last run's runtime errors), and the
 * text of a range for running or asking about a selection. */
#ifndef CRUCIBLE_LSP_DOCUMENTS_H
#define CRUCIBLE_LSP_DOCUMENTS_H

#include <uv.h>

#include "check.h"
#include "server.h"

typedef struct lsp_doc {
  lsp_client *client;       /* NULL once the client is gone */
  char *uri;
  char *language;           /* canonical: python | javascript | bash */
  chk_language lang;
  int version;
  chk_doc *doc;
  cJSON *run_diags;         /* owned: LSP diagnostics of the last run of this document */
  uv_timer_t debounce;
  struct lsp_doc *next;
} lsp_doc;

lsp_doc *lsp_doc_find(lsp_client *client, const char *uri);
/* The text of `range` (an LSP Range in the client's encoding; NULL = the
 * whole document) as a new string; *first_line gets the range's start line. */
char *lsp_doc_range_text(const lsp_doc *self, const cJSON *range, lsp_encoding enc, int *first_line);
/* Replaces the run diagnostics (taken; NULL clears) and republishes. */
void lsp_doc_set_run_diagnostics(lsp_doc *self, cJSON *diags);
/* Closes every document of a client (at the client's end). */
void lsp_docs_close_all(lsp_client *client);
/* Republishes the diagnostics of every open document in lang (the module
 * index became known). */
void lsp_docs_recheck_language(lsp_server *srv, chk_language lang);

void lsp_did_open(rpc_call *call, const cJSON *params);
void lsp_did_change(rpc_call *call, const cJSON *params);
void lsp_did_close(rpc_call *call, const cJSON *params);
void lsp_check(rpc_call *call, const cJSON *params);
void lsp_code_action(rpc_call *call, const cJSON *params);

#endif
