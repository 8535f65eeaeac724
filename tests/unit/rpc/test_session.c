/* Unit tests of the JSON-RPC session over a real pipe: the lifecycle gate,
 * cancellation ($/cancelRequest, by label, all but one), finding a call by
 * id, and how exit ends the session. Replies are read back from the pipe. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"
#include "session.h"

/* A request handler that keeps its call open until cancelled. */
typedef struct fixture {
  uv_loop_t loop;
  rpc_session ses;
  int in[2], out[2];
  char buf[65536];
  size_t len;
  int cancels;         /* cancel callbacks run */
  int ended;           /* on_end's exit code + 1, 0 while not ended */
  bool closed;
  rpc_call *held[8];   /* calls of "hold" in flight */
  int n_held;
} fixture;

static fixture *the;

static void on_cancel(rpc_call *call) {
  the->cancels++;
  for (int i = 0; i < the->n_held; i++)
    if (the->held[i] == call) the->held[i] = NULL;
  rpc_call_cancelled(call);
}

static void m_hold(rpc_call *call, const cJSON *params) {
  const cJSON *label = cJSON_GetObjectItemCaseSensitive(params, "label");
  if (cJSON_IsString(label)) call->label = strdup(label->valuestring);
  rpc_call_set_cancel(call, on_cancel);
  the->held[the->n_held++] = call;
}

static void m_init(rpc_call *call, const cJSON *params) {
  (void)params;
  assert_true(rpc_session_advance(call->ses, RPC_STATE_INITIALIZING));
  rpc_call_reply(call, cJSON_CreateObject());
}

static void m_initialized(rpc_call *call, const cJSON *params) {
  (void)params;
  rpc_session_advance(call->ses, RPC_STATE_RUNNING);
}

static void m_shutdown(rpc_call *call, const cJSON *params) {
  (void)params;
  rpc_session_advance(call->ses, RPC_STATE_SHUTDOWN);
  rpc_session_cancel_all(call->ses, call);
  rpc_call_reply(call, NULL);
}

static const rpc_method methods[] = {
    {"initialize", m_init, RPC_METHOD_BEFORE_INIT},
    {"initialized", m_initialized, 0},
    {"shutdown", m_shutdown, 0},
    {"hold", m_hold, 0},
};

static void on_end(rpc_session *ses, int code) {
  (void)ses;
  the->ended = code + 1;
}

static void on_closed(rpc_session *ses) {
  (void)ses;
  the->closed = true;
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  the = f;
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(pipe2(f->in, O_CLOEXEC), 0);
  assert_int_equal(pipe2(f->out, O_CLOEXEC | O_NONBLOCK), 0);
  rpc_session_ops ops = {.on_end = on_end, .on_closed = on_closed};
  assert_int_equal(rpc_session_init_fds(&f->ses, &f->loop, f->in[0], f->out[1], methods,
                                        sizeof methods / sizeof methods[0], &ops, 1 << 20), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  rpc_session_close(&f->ses);
  while (!f->closed) uv_run(&f->loop, UV_RUN_ONCE);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  close(f->in[1]);
  close(f->out[0]);
  free(f);
  return 0;
}

static void send_msg(fixture *f, const char *json) {
  rpc_session_dispatch(&f->ses, json, strlen(json));
}

/* The next message the session wrote, parsed (caller deletes); NULL when
 * nothing more was written. */
static cJSON *next_reply(fixture *f) {
  for (int spins = 0; spins < 50; spins++) {
    uv_run(&f->loop, UV_RUN_NOWAIT);
    ssize_t n = read(f->out[0], f->buf + f->len, sizeof f->buf - f->len - 1);
    if (n > 0) f->len += (size_t)n;
    f->buf[f->len] = 0;
    char *body = strstr(f->buf, "\r\n\r\n");
    if (!body) continue;
    size_t clen = strtoul(f->buf + strlen("Content-Length: "), NULL, 10);
    body += 4;
    if ((size_t)(body - f->buf) + clen > f->len) continue;
    cJSON *m = cJSON_ParseWithLength(body, clen);
    size_t used = (size_t)(body - f->buf) + clen;
    memmove(f->buf, f->buf + used, f->len - used);
    f->len -= used;
    return m;
  }
  return NULL;
}

static int error_code(cJSON *m) {
  const cJSON *e = cJSON_GetObjectItemCaseSensitive(m, "error");
  return cJSON_GetObjectItemCaseSensitive(e, "code")->valueint;
}

static void gate_follows_the_lifecycle(void **state) {
  fixture *f = *state;
  assert_int_equal(rpc_session_state(&f->ses), RPC_STATE_UNINIT);
  send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"hold\"}");
  cJSON *r = next_reply(f);
  assert_non_null(r);
  assert_int_equal(error_code(r), RPC_SERVER_NOT_INITIALIZED);
  cJSON_Delete(r);
  assert_int_equal(f->n_held, 0);

  send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"initialize\",\"params\":{}}");
  r = next_reply(f);
  assert_non_null(cJSON_GetObjectItemCaseSensitive(r, "result"));
  cJSON_Delete(r);
  assert_int_equal(rpc_session_state(&f->ses), RPC_STATE_INITIALIZING);
  /* the lifecycle only moves forward */
  assert_false(rpc_session_advance(&f->ses, RPC_STATE_UNINIT));
  assert_false(rpc_session_advance(&f->ses, RPC_STATE_INITIALIZING));
  send_msg(f, "{\"jsonrpc\":\"2.0\",\"method\":\"initialized\"}");
  assert_int_equal(rpc_session_state(&f->ses), RPC_STATE_RUNNING);

  send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"shutdown\"}");
  r = next_reply(f);
  assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r, "result")));
  cJSON_Delete(r);
  send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"hold\"}");
  r = next_reply(f);
  assert_int_equal(error_code(r), RPC_INVALID_REQUEST);
  cJSON_Delete(r);
  assert_int_equal(f->ended, 0);
  send_msg(f, "{\"jsonrpc\":\"2.0\",\"method\":\"exit\"}");
  assert_int_equal(f->ended, 0 + 1); /* exit after shutdown: code 0 */
}

static void exit_without_shutdown_ends_with_1(void **state) {
  fixture *f = *state;
  send_msg(f, "{\"jsonrpc\":\"2.0\",\"method\":\"exit\"}");
  assert_int_equal(f->ended, 1 + 1);
}

static void start_running(fixture *f) {
  send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{}}");
  cJSON_Delete(next_reply(f));
  send_msg(f, "{\"jsonrpc\":\"2.0\",\"method\":\"initialized\"}");
}

static void cancel_request_reaches_the_handler_once(void **state) {
  fixture *f = *state;
  start_running(f);
  send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"hold\"}");
  send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"hold\"}");
  assert_int_equal(f->n_held, 2);
  assert_null(next_reply(f)); /* both still in flight */

  cJSON *id = cJSON_CreateString("a");
  assert_ptr_equal(rpc_session_find_call(&f->ses, id), f->held[0]);
  cJSON_Delete(id);
  id = cJSON_CreateNumber(7);
  assert_ptr_equal(rpc_session_find_call(&f->ses, id), f->held[1]);
  cJSON_Delete(id);
  id = cJSON_CreateNumber(8);
  assert_null(rpc_session_find_call(&f->ses, id));
  cJSON_Delete(id);

  send_msg(f, "{\"jsonrpc\":\"2.0\",\"method\":\"$/cancelRequest\",\"params\":{\"id\":7}}");
  assert_int_equal(f->cancels, 1);
  cJSON *r = next_reply(f);
  assert_int_equal(cJSON_GetObjectItemCaseSensitive(r, "id")->valueint, 7);
  assert_int_equal(error_code(r), RPC_REQUEST_CANCELLED);
  cJSON_Delete(r);
  /* a second cancel of the same id finds nothing; "a" still runs */
  send_msg(f, "{\"jsonrpc\":\"2.0\",\"method\":\"$/cancelRequest\",\"params\":{\"id\":7}}");
  assert_int_equal(f->cancels, 1);
  assert_non_null(f->held[0]);
  assert_null(next_reply(f));
}

static void cancel_by_label_and_all_but_one(void **state) {
  fixture *f = *state;
  start_running(f);
  send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"hold\",\"params\":{\"label\":\"x\"}}");
  send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"hold\",\"params\":{\"label\":\"y\"}}");
  send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"hold\",\"params\":{\"label\":\"x\"}}");
  send_msg(f, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"hold\"}");
  assert_int_equal(rpc_session_cancel_label(&f->ses, "x"), 2);
  assert_int_equal(f->cancels, 2);
  assert_null(f->held[0]);
  assert_non_null(f->held[1]);
  assert_null(f->held[2]);
  assert_int_equal(rpc_session_cancel_label(&f->ses, "x"), 0);

  rpc_call *keep = f->held[3];
  assert_int_equal(rpc_session_cancel_all(&f->ses, keep), 1); /* only "y" was left besides keep */
  assert_null(f->held[1]);
  assert_ptr_equal(f->held[3], keep);
  /* rpc_call_cancel is the same path, and a no-op the second time */
  rpc_call_set_cancel(keep, NULL);
  rpc_call_cancel(keep);
  rpc_call_cancel(keep);
  assert_true(keep->cancelled);
  assert_int_equal(f->cancels, 3);
  rpc_call_cancelled(keep);
  int seen = 0;
  for (cJSON *r; (r = next_reply(f)); cJSON_Delete(r)) {
    assert_int_equal(error_code(r), RPC_REQUEST_CANCELLED);
    seen++;
  }
  assert_int_equal(seen, 4);
}

/* Writes n framed requests "hold" with ids 0..n-1 in one write, as a
 * pipelining client does, and starts reading them. */
static void pipeline(fixture *f, int n) {
  size_t cap = (size_t)n * 96, len = 0;
  char *buf = malloc(cap);
  for (int i = 0; i < n; i++) {
    char body[64];
    int bl = snprintf(body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"hold\"}", i);
    len += (size_t)snprintf(buf + len, cap - len, "Content-Length: %d\r\n\r\n%s", bl, body);
  }
  assert_int_equal(write(f->in[1], buf, len), (ssize_t)len);
  free(buf);
  assert_int_equal(rpc_session_start(&f->ses), 0);
}

/* The replies to one read's requests go out together at the end of the read
 * (one write): all of them, whole, in the order of the requests. */
static void pipelined_replies_come_whole_and_in_order(void **state) {
  fixture *f = *state;
  pipeline(f, 300); /* before initialize: each gets an error reply */
  for (int i = 0; i < 300; i++) {
    cJSON *r = next_reply(f);
    assert_non_null(r);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(r, "id")->valueint, i);
    assert_int_equal(error_code(r), RPC_SERVER_NOT_INITIALIZED);
    cJSON_Delete(r);
  }
  assert_null(next_reply(f));
}

/* Replies gathered during a read count against the connection's cap as soon
 * as they are sent: a client that sends a burst and reads nothing is
 * dropped, and its gathered replies are discarded, not written. */
static void gathered_replies_count_against_the_cap(void **state) {
  fixture *f = *state;
  f->ses.conn.write_max_pending = 2000;
  pipeline(f, 300);
  for (int i = 0; i < 10 && !f->ended; i++) uv_run(&f->loop, UV_RUN_NOWAIT);
  assert_int_equal(f->ended, 1 + 1); /* "client stopped reading" */
  /* what was gathered before the drop never reached the pipe */
  char buf[256];
  assert_true(read(f->out[0], buf, sizeof buf) < 0 && errno == EAGAIN);
}

static void count_errors(void *ud, log_level level, const char *msg) {
  (void)msg;
  if (level == LOG_ERROR) (*(int *)ud)++;
}

/* A client dropped for not reading is reported once: replies that come
 * later (calls finishing after the drop) are refused without a log line
 * each, and nothing reaches the pipe. */
static void replies_after_a_drop_are_refused_quietly(void **state) {
  fixture *f = *state;
  int errors = 0;
  log_set_sink(count_errors, &errors);
  f->ses.conn.write_max_pending = 2000;
  pipeline(f, 300);
  for (int i = 0; i < 10 && !f->ended; i++) uv_run(&f->loop, UV_RUN_NOWAIT);
  assert_int_equal(f->ended, 1 + 1);
  assert_int_equal(errors, 1);
  for (int i = 0; i < 50; i++) {
    char *late = strdup("{\"jsonrpc\":\"2.0\",\"method\":\"late\"}");
    assert_int_not_equal(rpc_conn_send(&f->ses.conn, late, strlen(late)), 0);
  }
  assert_int_equal(errors, 1);
  log_set_sink(NULL, NULL);
  char buf[256];
  assert_true(read(f->out[0], buf, sizeof buf) < 0 && errno == EAGAIN);
}

/* every case gets a fresh session over fresh pipes */
#define CASE(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {CASE(gate_follows_the_lifecycle), CASE(exit_without_shutdown_ends_with_1),
                                     CASE(cancel_request_reaches_the_handler_once),
                                     CASE(cancel_by_label_and_all_but_one),
                                     CASE(pipelined_replies_come_whole_and_in_order),
                                     CASE(gathered_replies_count_against_the_cap),
                                     CASE(replies_after_a_drop_are_refused_quietly)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
