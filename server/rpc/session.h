/* A JSON-RPC 2.0 session over one connection: dispatch of incoming requests
 * and notifications to handlers that may answer later, batches, cancellation,
 * server-to-client requests with reply matching, and the LSP lifecycle gate. */
#ifndef CRUCIBLE_RPC_SESSION_H
#define CRUCIBLE_RPC_SESSION_H

#include <stdbool.h>
#include <cjson/cJSON.h>

#include "conn.h"
#include "jsonrpc.h"

typedef struct rpc_session rpc_session;
typedef struct rpc_call rpc_call;

/* Handles one incoming request or notification. For a request the handler
 * must answer exactly once, now or later, with rpc_call_reply/rpc_call_error
 * (which free the call). For a notification the framework frees the call
 * when the handler returns. params may be NULL. */
typedef void (*rpc_handler_fn)(rpc_call *call, const cJSON *params);
/* Asked to stop a request in flight ($/cancelRequest, or the session is
 * going away). The handler must then answer the call, normally with
 * rpc_call_cancelled(), soon; it may answer from inside this callback. */
typedef void (*rpc_cancel_fn)(rpc_call *call);
/* The client's reply to a server-to-client request: exactly one of result
 * and error is set, or both are NULL when the session closed first. */
typedef void (*rpc_reply_fn)(rpc_session *ses, void *ud, const cJSON *result, const cJSON *error);

enum {
  RPC_METHOD_BEFORE_INIT = 1 << 0,   /* accepted before initialize (initialize itself, exit) */
  RPC_METHOD_AFTER_SHUTDOWN = 1 << 1,/* accepted after shutdown (exit) */
};

typedef struct rpc_method {
  const char *name;
  rpc_handler_fn fn;
  unsigned flags;
} rpc_method;

typedef enum rpc_state {
  RPC_STATE_UNINIT,       /* before initialize: requests get -32002 */
  RPC_STATE_INITIALIZING, /* initialize answered, waiting for initialized (requests are served) */
  RPC_STATE_RUNNING,
  RPC_STATE_SHUTDOWN,     /* after shutdown: requests get -32600 */
} rpc_state;

struct rpc_call {
  rpc_session *ses;
  cJSON *id;              /* owned copy; NULL for a notification */
  char *method;           /* owned */
  cJSON *params;          /* owned; NULL when absent */
  void *data;             /* the handler's */
  char *label;            /* owned; a name the handler gives the work (crucible task), may be NULL */
  cJSON *progress_token;  /* owned; the client's workDoneToken, may be NULL */
  rpc_cancel_fn cancel;
  bool cancelled;
  /* private */
  struct rpc_batch_reply *batch;
  size_t batch_slot;
  rpc_call *prev, *next;
};

typedef struct rpc_session_ops {
  /* The session has ended: the client sent exit, or its input closed. The
   * owner should finish up and call rpc_session_close. exit_code is 0 when
   * exit followed shutdown, 1 otherwise. */
  void (*on_end)(rpc_session *ses, int exit_code);
  /* All memory of the session may be released: handles are closed and no
   * call is in flight. */
  void (*on_closed)(rpc_session *ses);
} rpc_session_ops;

struct rpc_session {
  rpc_conn conn;
  uv_loop_t *loop;
  const rpc_method *methods;
  size_t n_methods;
  rpc_limits limits;
  rpc_session_ops ops;
  void *data;             /* the owner's */
  /* private: the lifecycle is read and moved with the functions below */
  rpc_state state;
  bool got_shutdown;
  const char *token;      /* borrowed; see rpc_session_require_token */
  bool admitted;
  rpc_call *calls;        /* requests in flight */
  struct rpc_out_req *out_reqs;
  long long next_out_id;
  int refs;
  bool ended, closing;
};

/* Prepares a session over fds (stdio) or an accepted listener connection;
 * the methods table must outlive the session. Returns 0 or a uv error. */
int rpc_session_init_fds(rpc_session *self, uv_loop_t *loop, int in_fd, int out_fd,
                         const rpc_method *methods, size_t n_methods, const rpc_session_ops *ops,
                         size_t max_body);
int rpc_session_init_accept(rpc_session *self, uv_loop_t *loop, uv_stream_t *server, bool tcp,
                            const rpc_method *methods, size_t n_methods,
                            const rpc_session_ops *ops, size_t max_body);
/* Makes the session admit a client only if its first message is a single
 * `initialize` request whose params.initializationOptions.token equals
 * token (compared in constant time). Any other first message is answered
 * with -32600 and ends the session (ops.on_end, exit code 1); nothing else the
 * client sent is processed. On success the token is removed from the
 * message before the initialize handler sees it, so it never reaches
 * settings or logs. token is borrowed and must outlive the session; call
 * before rpc_session_start. */
void rpc_session_require_token(rpc_session *self, const char *token);
int rpc_session_start(rpc_session *self);
/* Cancels every call in flight (their handlers answer or are dropped), fails
 * pending server-to-client requests, flushes writes and closes. ops.on_closed
 * runs once nothing refers to the session any more. Idempotent. */
void rpc_session_close(rpc_session *self);

/* Sends a notification; takes params (may be NULL). */
void rpc_session_notify(rpc_session *self, const char *method, cJSON *params);
/* Sends a request to the client; cb runs once with its reply. Takes params. */
void rpc_session_request(rpc_session *self, const char *method, cJSON *params, rpc_reply_fn cb, void *ud);
/* Sends window/logMessage (type 1 error .. 4 log). */
void rpc_session_log(rpc_session *self, int type, const char *msg);

/* $/progress helpers for a client-provided workDoneToken (NULL: no-op). */
void rpc_progress_begin(rpc_session *self, const cJSON *token, const char *title, const char *message);
void rpc_progress_report(rpc_session *self, const cJSON *token, const char *message, int percentage);
void rpc_progress_end(rpc_session *self, const cJSON *token, const char *message);

/* Answers a request (taking result; NULL means JSON null) and frees the call.
 * For a call whose session has gone, just frees it. */
void rpc_call_reply(rpc_call *call, cJSON *result);
/* Answers with an error (data may be NULL, taken) and frees the call. */
void rpc_call_error_data(rpc_call *call, int code, const char *message, cJSON *data);
void rpc_call_error(rpc_call *call, int code, const char *message);
void rpc_call_errorf(rpc_call *call, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Answers -32800 "Request cancelled" and frees the call. */
void rpc_call_cancelled(rpc_call *call);
/* Registers what to do when the request is cancelled. */
static inline void rpc_call_set_cancel(rpc_call *call, rpc_cancel_fn fn) { call->cancel = fn; }
/* Cancels a request in flight as $/cancelRequest would: marks it, then runs
 * its cancel callback (which may answer, and so free, it). No-op when it was
 * cancelled already. */
void rpc_call_cancel(rpc_call *call);
/* Every request in flight except keep (may be NULL) is cancelled; returns
 * how many (shutdown stops the work still running). */
int rpc_session_cancel_all(rpc_session *self, const rpc_call *keep);
/* The request in flight with this id, or NULL; valid until it is answered. */
rpc_call *rpc_session_find_call(rpc_session *self, const cJSON *id);

/* The LSP lifecycle the gate enforces. The initialize/initialized/shutdown
 * handlers move it forward with rpc_session_advance, which returns false
 * (and changes nothing) when `to` is not ahead of the current state. Moving
 * to SHUTDOWN makes a later exit end the session with code 0. */
rpc_state rpc_session_state(const rpc_session *self);
bool rpc_session_advance(rpc_session *self, rpc_state to);
/* True once rpc_session_close has begun: nothing more reaches the client. */
bool rpc_session_closing(const rpc_session *self);
/* Cancels every request in flight whose label (or progress token) matches;
 * returns how many. */
int rpc_session_cancel_label(rpc_session *self, const char *label);
int rpc_session_cancel_token(rpc_session *self, const cJSON *token);
/* True when the session behind the call is still open. */
bool rpc_call_alive(const rpc_call *call);

/* Dispatches one raw message body as if read from the connection (used by
 * the connection and by tests/benchmarks). */
void rpc_session_dispatch(rpc_session *self, const char *body, size_t len);

#endif
