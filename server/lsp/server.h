/* The Crucible server: one libuv loop, the stdio client or a listener with
 * many clients (each its own session), the base settings, and the shared
 * engines (sandbox runner, checks, LLM) the method handlers use. */
#ifndef CRUCIBLE_LSP_SERVER_H
#define CRUCIBLE_LSP_SERVER_H

#include <stdbool.h>
#include <uv.h>

#include "access.h"
#include "common.h"
#include "config.h"
#include "core.h"
#include "loop.h"
#include "session.h"
#include "utf8.h"

typedef struct lsp_server lsp_server;
typedef struct lsp_client lsp_client;

struct lsp_client {
  rpc_session ses;
  lsp_server *srv;
  cfg cfg;                 /* effective settings: base, then initializationOptions, then didChangeConfiguration */
  cJSON *init_options;     /* owned; the client's layers, re-applied over base on every change */
  cJSON *changed_settings; /* owned */
  cfg_strlist roots;       /* the workspace folders from initialize (real paths): where a client's
                              local documentation sources may be */
  lsp_encoding enc;
  bool trace;              /* forward logs as window/logMessage */
  bool work_done_progress; /* the client accepts window/workDoneProgress/create */
  bool stdio;
  struct lsp_doc *docs;    /* open documents */
  lsp_client *prev, *next;
};

struct lsp_server {
  uv_loop_t *loop;
  cfg base;
  size_t max_body;
  lsp_client *clients;
  int n_clients;
  core core;               /* the engines every session shares */
  bool index_wanted[CHK_LANG_COUNT];
  /* private */
  uv_signal_t sig_int, sig_term;
  uv_prepare_t lag_prepare;  /* with lag_check: how long one loop iteration's callbacks ran */
  uv_check_t lag_check;
  uv_timer_t stop_timer;     /* after a stop, drops clients that do not read */
  unsigned long long lag_woke_ns;
  double lag_max_ms;
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_pipe_t pipe;
    uv_tcp_t tcp;
  } listener;
  bool listening, listen_tcp, stopping;
  char *unix_path;
  dev_t unix_dev;          /* the socket file we made: removed at stop only if still ours */
  ino_t unix_ino;
  char token[RPC_ACCESS_TOKEN_LEN + 1]; /* tcp: what clients present in initialize */
  rpc_conn_group out_group;             /* the cap on output queued for all clients */
  int exit_code;
};

/* Loads the user settings (messages logged) and installs signal handlers.
 * Returns 0 or a negative error. */
int lsp_server_init(lsp_server *self, uv_loop_t *loop);
/* Serves one client on stdin/stdout; the server stops when it ends. */
int lsp_server_serve_stdio(lsp_server *self);
/* Listens on "unix:PATH" or "tcp:HOST:PORT" (a loopback address). A unix
 * socket is made 0600 and admits only peers of our own uid; a file already at
 * PATH is removed only when it is a socket nobody listens on. A tcp listener
 * makes a new token (rpc_access_token_create) that every client must present
 * in initialize. Returns 0, or a negative error with a message in err. */
int lsp_server_listen(lsp_server *self, const char *spec, char *err, size_t errlen);
/* Ends every session and listener; the loop then runs dry. */
void lsp_server_stop(lsp_server *self, int exit_code);
/* Frees what is left once the loop has no more handles. Returns the exit code. */
int lsp_server_close(lsp_server *self);

/* Recomputes a client's effective settings from base + its layers; messages
 * are sent to the client as window/logMessage and logged. */
void lsp_client_update_settings(lsp_client *self);

static inline lsp_client *lsp_client_of(rpc_call *call) {
  return container_of(call->ses, lsp_client, ses);
}

#endif
