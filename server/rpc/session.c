/* A JSON-RPC 2.0 session over one connection: dispatch, batches,
 * cancellation, server-to-client requests and the LSP lifecycle gate. */
#include "session.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "common.h"
#include "log.h"

/* Collects the replies of one batch; sent as one array when the last call
 * of the batch has answered. */
typedef struct rpc_batch_reply {
  cJSON **slots;
  size_t n, pending;
} rpc_batch_reply;

typedef struct rpc_out_req {
  long long id;
  rpc_reply_fn cb;
  void *ud;
  struct rpc_out_req *next;
} rpc_out_req;

static void session_unref(rpc_session *self);

static void send_json(rpc_session *self, cJSON *msg) {
  if (!msg) return;
  /* Every string leaving the server is valid UTF-8, whatever it came from:
   * repaired here, at the one place messages are printed. */
  char *text = rpc_print_utf8(msg, false);
  cJSON_Delete(msg);
  if (!text) {
    log_error("out of memory serializing a message");
    return;
  }
  if (self->closing) {
    free(text);
    return;
  }
  rpc_conn_send(&self->conn, text, strlen(text));
}

static void batch_release(rpc_session *self, rpc_batch_reply *b) {
  if (--b->pending) return;
  cJSON *arr = cJSON_CreateArray();
  for (size_t i = 0; i < b->n; i++)
    if (b->slots[i]) cJSON_AddItemToArray(arr, b->slots[i]);
  free(b->slots);
  free(b);
  /* A batch of notifications only gets no reply at all. */
  if (cJSON_GetArraySize(arr) == 0) {
    cJSON_Delete(arr);
    return;
  }
  send_json(self, arr);
}

static void batch_put(rpc_session *self, rpc_batch_reply *b, size_t slot, cJSON *msg) {
  b->slots[slot] = msg;
  batch_release(self, b);
}

static void reply_msg(rpc_session *self, rpc_batch_reply *b, size_t slot, cJSON *msg) {
  if (b)
    batch_put(self, b, slot, msg);
  else
    send_json(self, msg);
}

static void call_unlink(rpc_call *call) {
  rpc_session *self = call->ses;
  if (call->prev)
    call->prev->next = call->next;
  else if (self->calls == call)
    self->calls = call->next;
  if (call->next) call->next->prev = call->prev;
  call->prev = call->next = NULL;
}

static void call_free(rpc_call *call) {
  free(call->label);
  cJSON_Delete(call->progress_token);
  cJSON_Delete(call->id);
  cJSON_Delete(call->params);
  free(call->method);
  free(call);
}

static void call_finish(rpc_call *call, cJSON *msg) {
  rpc_session *self = call->ses;
  if (!call->id) {  /* a notification cannot be answered */
    cJSON_Delete(msg);
    return;
  }
  call_unlink(call);
  if (self->closing && !call->batch)
    cJSON_Delete(msg);
  else
    reply_msg(self, call->batch, call->batch_slot, msg);
  call_free(call);
  session_unref(self);
}

void rpc_call_reply(rpc_call *call, cJSON *result) {
  call_finish(call, call->id ? rpc_make_result(call->id, result) : (cJSON_Delete(result), NULL));
}

void rpc_call_error_data(rpc_call *call, int code, const char *message, cJSON *data) {
  call_finish(call, call->id ? rpc_make_error(call->id, code, message, data) : (cJSON_Delete(data), NULL));
}

void rpc_call_error(rpc_call *call, int code, const char *message) {
  rpc_call_error_data(call, code, message, NULL);
}

void rpc_call_errorf(rpc_call *call, int code, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  rpc_call_error(call, code, msg);
}

void rpc_call_cancelled(rpc_call *call) {
  rpc_call_error(call, RPC_REQUEST_CANCELLED, "Request cancelled");
}

bool rpc_call_alive(const rpc_call *call) {
  return !call->ses->closing;
}

static bool ids_equal(const cJSON *a, const cJSON *b) {
  if (!a || !b) return false;
  if (cJSON_IsNumber(a) && cJSON_IsNumber(b)) return a->valuedouble == b->valuedouble;
  if (cJSON_IsString(a) && cJSON_IsString(b)) return !strcmp(a->valuestring, b->valuestring);
  return false;
}

void rpc_call_cancel(rpc_call *call) {
  if (call->cancelled) return;
  call->cancelled = true;
  /* The cancel callback may answer (and so free) the call. */
  if (call->cancel) call->cancel(call);
}

rpc_state rpc_session_state(const rpc_session *self) {
  return self->state;
}

bool rpc_session_advance(rpc_session *self, rpc_state to) {
  if (to <= self->state) return false;
  self->state = to;
  if (to == RPC_STATE_SHUTDOWN) self->got_shutdown = true;
  return true;
}

bool rpc_session_closing(const rpc_session *self) {
  return self->closing;
}

rpc_call *rpc_session_find_call(rpc_session *self, const cJSON *id) {
  if (!id) return NULL;
  for (rpc_call *c = self->calls; c; c = c->next)
    if (ids_equal(c->id, id)) return c;
  return NULL;
}

/* Cancels the calls `match` accepts; a cancel callback may answer (free)
 * its own call but no other, so the next one is taken first. */
static int cancel_matching(rpc_session *self, bool (*match)(const rpc_call *, const void *), const void *arg) {
  int n = 0;
  for (rpc_call *c = self->calls, *next; c; c = next) {
    next = c->next;
    if (!c->cancelled && match(c, arg)) {
      rpc_call_cancel(c);
      n++;
    }
  }
  return n;
}

static bool label_is(const rpc_call *c, const void *label) {
  return c->label && !strcmp(c->label, label);
}

static bool token_is(const rpc_call *c, const void *token) {
  return ids_equal(c->progress_token, token);
}

static bool not_this(const rpc_call *c, const void *keep) {
  return c != keep;
}

int rpc_session_cancel_label(rpc_session *self, const char *label) {
  return cancel_matching(self, label_is, label);
}

int rpc_session_cancel_token(rpc_session *self, const cJSON *token) {
  return cancel_matching(self, token_is, token);
}

int rpc_session_cancel_all(rpc_session *self, const rpc_call *keep) {
  return cancel_matching(self, not_this, keep);
}

static void handle_cancel_request(rpc_session *self, const cJSON *params) {
  rpc_call *c = rpc_session_find_call(self, cJSON_GetObjectItemCaseSensitive(params, "id"));
  if (c) rpc_call_cancel(c);
}

static void handle_response(rpc_session *self, const rpc_msg *m) {
  if (!cJSON_IsNumber(m->id)) {
    log_warn("client sent a response to an unknown request id");
    return;
  }
  long long id = (long long)m->id->valuedouble;
  for (rpc_out_req **pp = &self->out_reqs; *pp; pp = &(*pp)->next) {
    rpc_out_req *r = *pp;
    if (r->id != id) continue;
    *pp = r->next;
    if (r->cb) r->cb(self, r->ud, m->result, m->error);
    free(r);
    return;
  }
  log_warn("client sent a response to unknown request id %lld", id);
}

static const rpc_method *find_method(rpc_session *self, const char *name) {
  for (size_t i = 0; i < self->n_methods; i++)
    if (!strcmp(self->methods[i].name, name)) return &self->methods[i];
  return NULL;
}

/* Returns true when the message was answered or will be (a call in flight),
 * false when it needs no answer (notifications, responses). */
static bool handle_one(rpc_session *self, const rpc_msg *m, rpc_batch_reply *b, size_t slot) {
  char text[256];
  switch (m->kind) {
  case RPC_KIND_RESPONSE:
    handle_response(self, m);
    return false;
  case RPC_KIND_INVALID:
    reply_msg(self, b, slot, rpc_make_error(m->id, m->err_code, m->err_message, NULL));
    return true;
  case RPC_KIND_NOTIFICATION:
  case RPC_KIND_REQUEST:
    break;
  }
  bool is_req = m->kind == RPC_KIND_REQUEST;
  const char *name = m->method;

  if (!strcmp(name, "exit") && !is_req) {
    if (!self->ended) {
      self->ended = true;
      if (self->ops.on_end) self->ops.on_end(self, self->got_shutdown ? 0 : 1);
    }
    return false;
  }
  if (!strcmp(name, "$/cancelRequest") && !is_req) {
    handle_cancel_request(self, m->params);
    return false;
  }
  const rpc_method *meth = find_method(self, name);
  /* The lifecycle gate: what a state refuses, and with which error. */
  int code = 0;
  const char *why = NULL;
  if (self->state == RPC_STATE_UNINIT && !(meth && (meth->flags & RPC_METHOD_BEFORE_INIT)))
    code = RPC_SERVER_NOT_INITIALIZED, why = "Server not initialized: send 'initialize' first";
  else if (self->state == RPC_STATE_SHUTDOWN && !(meth && (meth->flags & RPC_METHOD_AFTER_SHUTDOWN)))
    code = RPC_INVALID_REQUEST, why = "Server is shutting down: only 'exit' is accepted after 'shutdown'";
  if (why) {
    if (is_req) reply_msg(self, b, slot, rpc_make_error(m->id, code, why, NULL));
    return is_req;
  }
  if (!meth) {
    if (is_req) {
      snprintf(text, sizeof text, "Method not found: %.200s", name);
      reply_msg(self, b, slot, rpc_make_error(m->id, RPC_METHOD_NOT_FOUND, text, NULL));
    } else if (strncmp(name, "$/", 2) != 0) {
      log_debug("ignoring unknown notification %s", name);
    }
    return is_req;
  }
  rpc_call *call = xcalloc(1, sizeof *call);
  call->ses = self;
  call->method = xstrdup(name);
  if (m->params) call->params = cJSON_Duplicate(m->params, 1);
  if (is_req) {
    call->id = cJSON_Duplicate(m->id, 1);
    call->batch = b;
    call->batch_slot = slot;
    call->next = self->calls;
    if (self->calls) self->calls->prev = call;
    self->calls = call;
    self->refs++;
  }
  meth->fn(call, call->params);
  if (!is_req) call_free(call);
  return is_req;
}

/* The gate of rpc_session_require_token, run on every message until one
 * passes. Returns true when the message may be processed; otherwise the
 * client has had its error reply and the session is ending. */
static bool session_admit(rpc_session *self, rpc_batch *batch, int parse_rc) {
  if (!self->token || self->admitted) return true;
  rpc_msg *m = !parse_rc && !batch->is_batch && batch->count == 1 ? &batch->msgs[0] : NULL;
  const char *why;
  if (!m || m->kind != RPC_KIND_REQUEST || strcmp(m->method, "initialize") != 0) {
    why = "the first message must be 'initialize'";
  } else {
    cJSON *opts = cJSON_GetObjectItemCaseSensitive(m->params, "initializationOptions");
    cJSON *tok = cJSON_GetObjectItemCaseSensitive(opts, "token");
    if (!cJSON_IsString(tok)) {
      why = "no initializationOptions.token";
    } else if (!rpc_access_token_equal(self->token, tok->valuestring, strlen(tok->valuestring))) {
      why = "wrong initializationOptions.token";
    } else {
      self->admitted = true;
      /* The batch owns its tree; params stay ours until rpc_batch_free. */
      cJSON_DeleteItemFromObjectCaseSensitive(opts, "token");
      return true;
    }
  }
  char text[400];
  snprintf(text, sizeof text,
           "Unauthorized: %s. On a tcp listener the first message must be 'initialize' with "
           "initializationOptions.token set to the contents of the server's token file "
           "($XDG_RUNTIME_DIR/crucible/token); `crucible connect tcp:HOST:PORT` adds it.", why);
  log_warn("refused a connection: %s", why);
  send_json(self, rpc_make_error(m && m->id ? m->id : NULL, RPC_INVALID_REQUEST, text, NULL));
  if (!self->ended) {
    self->ended = true;
    if (self->ops.on_end) self->ops.on_end(self, 1);
  }
  return false;
}

void rpc_session_dispatch(rpc_session *self, const char *body, size_t len) {
  if (self->closing) return;
  rpc_batch batch;
  int rc = rpc_batch_parse(&batch, body, len, &self->limits);
  if (!session_admit(self, &batch, rc)) {
    rpc_batch_free(&batch);
    return;
  }
  if (rc) {
    send_json(self, rpc_make_error(NULL, batch.err_code ? batch.err_code : rc,
                                   batch.err_message[0] ? batch.err_message : rpc_error_text(rc), NULL));
    rpc_batch_free(&batch);
    return;
  }
  self->refs++; /* handlers may close the session while we walk the batch */
  if (!batch.is_batch) {
    handle_one(self, &batch.msgs[0], NULL, 0);
  } else {
    rpc_batch_reply *b = xcalloc(1, sizeof *b);
    b->n = batch.count;
    b->slots = xcalloc(batch.count, sizeof *b->slots);
    /* Every element holds the batch until it has answered or turned out to
     * need no answer; one more hold covers the walk itself. */
    b->pending = batch.count + 1;
    for (size_t i = 0; i < batch.count; i++) {
      if (!handle_one(self, &batch.msgs[i], b, i)) batch_release(self, b);
    }
    batch_release(self, b);
  }
  rpc_batch_free(&batch);
  session_unref(self);
}

static void conn_message(rpc_conn *conn, const char *body, size_t len) {
  rpc_session_dispatch(container_of(conn, rpc_session, conn), body, len);
}

static void conn_eof(rpc_conn *conn, const char *reason) {
  rpc_session *self = container_of(conn, rpc_session, conn);
  if (reason) log_info("client connection ended: %s", reason);
  if (!self->ended) {
    self->ended = true;
    /* Plain EOF is a clean end; a broken stream or framing is not. */
    if (self->ops.on_end) self->ops.on_end(self, reason ? 1 : 0);
  }
}

static void conn_closed(rpc_conn *conn) {
  session_unref(container_of(conn, rpc_session, conn));
}

static void session_setup(rpc_session *self, uv_loop_t *loop, const rpc_method *methods, size_t n,
                          const rpc_session_ops *ops) {
  void *data = self->data;
  memset(self, 0, sizeof *self);
  self->data = data;
  self->loop = loop;
  self->methods = methods;
  self->n_methods = n;
  if (ops) self->ops = *ops;
  self->limits = RPC_LIMITS_DEFAULT;
  self->refs = 1; /* the connection's */
  self->next_out_id = 1;
  self->conn.on_message = conn_message;
  self->conn.on_eof = conn_eof;
  self->conn.on_closed = conn_closed;
}

int rpc_session_init_fds(rpc_session *self, uv_loop_t *loop, int in_fd, int out_fd,
                         const rpc_method *methods, size_t n_methods, const rpc_session_ops *ops,
                         size_t max_body) {
  session_setup(self, loop, methods, n_methods, ops);
  return rpc_conn_init_fds(&self->conn, loop, in_fd, out_fd, max_body);
}

int rpc_session_init_accept(rpc_session *self, uv_loop_t *loop, uv_stream_t *server, bool tcp,
                            const rpc_method *methods, size_t n_methods,
                            const rpc_session_ops *ops, size_t max_body) {
  session_setup(self, loop, methods, n_methods, ops);
  return rpc_conn_init_accept(&self->conn, loop, server, tcp, max_body);
}

void rpc_session_require_token(rpc_session *self, const char *token) {
  self->token = token;
  self->admitted = false;
}

int rpc_session_start(rpc_session *self) {
  return rpc_conn_start(&self->conn);
}

static void session_unref(rpc_session *self) {
  if (--self->refs > 0) return;
  if (self->ops.on_closed) self->ops.on_closed(self);
}

void rpc_session_close(rpc_session *self) {
  if (self->closing) return;
  self->refs++;
  /* Cancel what is in flight; handlers answer into the void and free their
   * calls (each call holds a reference, so the session outlives them). */
  for (rpc_call *c = self->calls, *next; c; c = next) {
    next = c->next;
    rpc_call_cancel(c);
  }
  self->closing = true;
  while (self->out_reqs) {
    rpc_out_req *r = self->out_reqs;
    self->out_reqs = r->next;
    if (r->cb) r->cb(self, r->ud, NULL, NULL);
    free(r);
  }
  rpc_conn_close(&self->conn);
  session_unref(self);
}

void rpc_session_notify(rpc_session *self, const char *method, cJSON *params) {
  if (self->closing) {
    cJSON_Delete(params);
    return;
  }
  send_json(self, rpc_make_notification(method, params));
}

void rpc_session_request(rpc_session *self, const char *method, cJSON *params, rpc_reply_fn cb, void *ud) {
  if (self->closing) {
    cJSON_Delete(params);
    if (cb) cb(self, ud, NULL, NULL);
    return;
  }
  rpc_out_req *r = xcalloc(1, sizeof *r);
  r->id = self->next_out_id++;
  r->cb = cb;
  r->ud = ud;
  r->next = self->out_reqs;
  self->out_reqs = r;
  cJSON *id = cJSON_CreateNumber((double)r->id);
  send_json(self, rpc_make_request(id, method, params));
  cJSON_Delete(id);
}

void rpc_session_log(rpc_session *self, int type, const char *msg) {
  cJSON *p = cJSON_CreateObject();
  cJSON_AddNumberToObject(p, "type", type);
  cJSON_AddStringToObject(p, "message", msg);
  rpc_session_notify(self, "window/logMessage", p);
}

static void progress(rpc_session *self, const cJSON *token, cJSON *value) {
  if (!token || !(cJSON_IsString(token) || cJSON_IsNumber(token))) {
    cJSON_Delete(value);
    return;
  }
  cJSON *p = cJSON_CreateObject();
  cJSON_AddItemToObject(p, "token", cJSON_Duplicate(token, 1));
  cJSON_AddItemToObject(p, "value", value);
  rpc_session_notify(self, "$/progress", p);
}

void rpc_progress_begin(rpc_session *self, const cJSON *token, const char *title, const char *message) {
  cJSON *v = cJSON_CreateObject();
  cJSON_AddStringToObject(v, "kind", "begin");
  cJSON_AddStringToObject(v, "title", title);
  cJSON_AddBoolToObject(v, "cancellable", 1);
  if (message) cJSON_AddStringToObject(v, "message", message);
  progress(self, token, v);
}

void rpc_progress_report(rpc_session *self, const cJSON *token, const char *message, int percentage) {
  cJSON *v = cJSON_CreateObject();
  cJSON_AddStringToObject(v, "kind", "report");
  if (message) cJSON_AddStringToObject(v, "message", message);
  if (percentage >= 0) cJSON_AddNumberToObject(v, "percentage", percentage);
  progress(self, token, v);
}

void rpc_progress_end(rpc_session *self, const cJSON *token, const char *message) {
  cJSON *v = cJSON_CreateObject();
  cJSON_AddStringToObject(v, "kind", "end");
  if (message) cJSON_AddStringToObject(v, "message", message);
  progress(self, token, v);
}
