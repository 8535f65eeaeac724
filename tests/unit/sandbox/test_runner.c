/* The runner against real bwrap: queueing under the concurrency cap, cancel,
 * output streaming, and the closing path (every live run reported). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandbox.h"

typedef struct rec {
  int done;
  sbx_outcome outcome;
  int order;
  size_t streamed;
  long long max_rss_kb;
  char out[256];
} rec;

static int g_order;

static void on_out(void *ud, int stream, const char *b, size_t n) {
  rec *r = ud;
  if (stream == 1) r->streamed += n;
  (void)b;
}

static void on_done(void *ud, const sbx_result *res) {
  rec *r = ud;
  r->done++;
  r->outcome = res->outcome;
  r->order = ++g_order;
  r->max_rss_kb = res->max_rss_kb;
  snprintf(r->out, sizeof r->out, "%s", res->out);
}

static void closed(sbx_runner *s) {
  *(int *)s->loop->data = 1;
}

static void cancel_cb(uv_timer_t *t) {
  sbx_run_cancel(t->data);
  uv_close((uv_handle_t *)t, NULL);
}

/* A runner on a fresh loop; close_runner closes both and checks that the
 * runner called back and left no handle open. */
static void open_runner(uv_loop_t *loop, int *is_closed, sbx_runner *runner, const sbx_config *cfg) {
  uv_loop_init(loop);
  *is_closed = 0;
  loop->data = is_closed;
  assert_int_equal(sbx_runner_init(runner, loop, cfg), 0);
}

static void close_runner(uv_loop_t *loop, int *is_closed, sbx_runner *runner) {
  sbx_runner_close(runner, closed);
  uv_run(loop, UV_RUN_DEFAULT);
  assert_int_equal(*is_closed, 1);
  assert_int_equal(uv_loop_close(loop), 0);
}

static int runnable(void) {
  return access("/usr/bin/bwrap", X_OK) == 0 && access("/usr/bin/python3", X_OK) == 0;
}

static void queue_and_cancel(void **state) {
  (void)state;
  if (!runnable()) skip();
  uv_loop_t loop;
  int is_closed;
  sbx_runner runner;
  sbx_config cfg = {.max_concurrent = 1};
  open_runner(&loop, &is_closed, &runner, &cfg);
  rec r[3] = {{0}};
  sbx_callbacks cb = {on_out, on_done};
  sbx_run *slow = NULL;
  const char *sleep_code = "import time\nprint('a', flush=True)\ntime.sleep(30)\n";
  sbx_request req = {.language = "python", .code = sleep_code, .code_len = strlen(sleep_code)};
  assert_int_equal(sbx_run_start(&runner, &req, &cb, &r[0], &slow), 0);
  const char *c2 = "print('two')";
  sbx_request req2 = {.language = "python", .code = c2, .code_len = strlen(c2)};
  assert_int_equal(sbx_run_start(&runner, &req2, &cb, &r[1], NULL), 0);
  const char *c3 = "echo three";
  sbx_request req3 = {.language = "bash", .code = c3, .code_len = strlen(c3)};
  assert_int_equal(sbx_run_start(&runner, &req3, &cb, &r[2], NULL), 0);
  sbx_request bad = {.language = "cobol", .code = c3, .code_len = 1};
  assert_int_equal(sbx_run_start(&runner, &bad, &cb, &r[2], NULL), -EINVAL);
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  t.data = slow;
  uv_timer_start(&t, cancel_cb, 500, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(r[0].done, 1);
  assert_int_equal(r[0].outcome, SBX_CANCELLED);
  assert_int_equal(r[1].outcome, SBX_OK);
  assert_string_equal(r[1].out, "two\n");
  assert_string_equal(r[2].out, "three\n");
  /* cap 1: the queued runs ran after the first one ended */
  assert_true(r[0].order < r[1].order && r[1].order < r[2].order);
  close_runner(&loop, &is_closed, &runner);
}

static void close_kills_live_runs(void **state) {
  (void)state;
  if (!runnable()) skip();
  uv_loop_t loop;
  int is_closed;
  sbx_runner runner;
  sbx_config cfg = {.max_concurrent = 2};
  open_runner(&loop, &is_closed, &runner, &cfg);
  rec r[4] = {{0}};
  sbx_callbacks cb = {on_out, on_done};
  const char *code = "import time\nwhile True:\n    print('x', flush=True)\n    time.sleep(0.05)\n";
  sbx_request req = {.language = "python", .code = code, .code_len = strlen(code)};
  for (int i = 0; i < 4; i++) assert_int_equal(sbx_run_start(&runner, &req, &cb, &r[i], NULL), 0);
  /* let the first two produce output */
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  while (r[0].streamed == 0 || r[1].streamed == 0) uv_run(&loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  sbx_runner_close(&runner, closed);
  assert_int_equal(sbx_run_start(&runner, &req, &cb, &r[0], NULL), -ESHUTDOWN);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(is_closed, 1);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(r[i].done, 1);
    assert_int_equal(r[i].outcome, SBX_CANCELLED);
  }
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void tick_cb(uv_timer_t *t) {
  (void)t;
}

/* A warm sandbox (made ahead, bound to the next python request) gives the
 * same isolation as a fresh one: its program runs inside the run's cgroup
 * with the run's stdin, the limits of the request apply, and one that asks
 * for another disk size or language gets a fresh sandbox. */
static void warm_sandbox_binds_requests(void **state) {
  (void)state;
  if (!runnable()) skip();
  uv_loop_t loop;
  int is_closed;
  sbx_runner runner;
  sbx_config cfg = {.max_concurrent = 2, .warm = true};
  open_runner(&loop, &is_closed, &runner, &cfg);
  /* give the runner time to make its warm sandbox */
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  uv_timer_start(&t, tick_cb, 300, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_non_null(runner.warm);
  sbx_run *warm = runner.warm;
  rec r[3] = {{0}};
  sbx_callbacks cb = {on_out, on_done};
  const char *code = "import sys\nprint(sys.stdin.read().strip())\n";
  sbx_request req = {.language = "python", .code = code, .code_len = strlen(code), .stdin_data = "fed",
                     .stdin_len = 3};
  sbx_run *got = NULL;
  assert_int_equal(sbx_run_start(&runner, &req, &cb, &r[0], &got), 0);
  assert_ptr_equal(got, warm); /* the warm sandbox took it */
  assert_null(runner.warm);     /* out of the pool; replaced once its run is over */
  /* a request's own limits still apply to a warm sandbox */
  const char *spin = "while True: pass";
  sbx_request req2 = {.language = "python", .code = spin, .code_len = strlen(spin),
                      .limits = {.timeout_ms = 400}};
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(r[0].outcome, SBX_OK);
  assert_string_equal(r[0].out, "fed\n");
  /* its figures come from the run's cgroup whenever the runner has cgroups
   * (that its processes are in it from their first instruction: the
   * integration tests, from outside, and the limits below) */
  if (sbx_runner_isolation(&runner) == SBX_ISO_RLIMIT) assert_true(r[0].max_rss_kb < 0);
  else assert_true(r[0].max_rss_kb > 0);
  /* replaced after it was taken (the new one may reuse the freed run's
   * memory, so its address tells nothing: the pool was empty above) */
  assert_non_null(runner.warm);
  warm = runner.warm;
  assert_int_equal(sbx_run_start(&runner, &req2, &cb, &r[1], &got), 0);
  assert_ptr_equal(got, warm);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(r[1].outcome, SBX_TIMEOUT);
  /* another disk size: a fresh sandbox */
  sbx_request req3 = {.language = "python", .code = "print(3)", .code_len = 8, .limits = {.disk_mb = 7}};
  assert_int_equal(sbx_run_start(&runner, &req3, &cb, &r[2], &got), 0);
  assert_ptr_not_equal(got, runner.warm);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_string_equal(r[2].out, "3\n");
  uv_close((uv_handle_t *)&t, NULL);
  close_runner(&loop, &is_closed, &runner);
}

/* Two owners share the queue: with one slot, owner A's backlog does not
 * hold back owner B's run (it starts as soon as the slot frees), and A
 * filling its share of the queue leaves B's share open. */
static void queue_is_fair_between_owners(void **state) {
  (void)state;
  if (!runnable()) skip();
  uv_loop_t loop;
  int is_closed;
  sbx_runner runner;
  sbx_config cfg = {.max_concurrent = 1, .max_queued_per_owner = 3};
  open_runner(&loop, &is_closed, &runner, &cfg);
  int a = 0, b = 0;
  rec ra[4] = {{0}}, rb = {0};
  sbx_callbacks cb = {on_out, on_done};
  const char *code = "print('x')";
  sbx_request qa = {.language = "python", .code = code, .code_len = strlen(code), .owner = &a};
  sbx_request qb = qa;
  qb.owner = &b;
  g_order = 0;
  /* A: one running, three queued (its share); a fourth is refused */
  for (int i = 0; i < 4; i++) assert_int_equal(sbx_run_start(&runner, &qa, &cb, &ra[i], NULL), 0);
  rec extra = {0};
  assert_int_equal(sbx_run_start(&runner, &qa, &cb, &extra, NULL), -EAGAIN);
  /* B still gets in, and runs right after A's running one */
  assert_int_equal(sbx_run_start(&runner, &qb, &cb, &rb, NULL), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(ra[0].order, 1);
  assert_int_equal(rb.order, 2);
  for (int i = 1; i < 4; i++) assert_int_equal(ra[i].order, i + 2);
  assert_int_equal(extra.done, 0);
  close_runner(&loop, &is_closed, &runner);
}

static void got_report(void *ud, cJSON *report) {
  *(cJSON **)ud = report;
}

static void doctor_reports(void **state) {
  (void)state;
  if (!runnable()) skip();
  uv_loop_t loop;
  int is_closed;
  sbx_runner runner;
  sbx_config cfg = {0};
  open_runner(&loop, &is_closed, &runner, &cfg);
  cJSON *rep = NULL;
  assert_int_equal(sbx_doctor_start(&runner, got_report, &rep), 0);
  assert_null(rep); /* answered from the loop, never from inside the call */
  /* a program of the runner's own, beside the doctor's probes */
  rec r = {0};
  sbx_callbacks cb = {on_out, on_done};
  sbx_request req = {.language = "python", .code = "print(7)", .code_len = 8};
  assert_int_equal(sbx_run_start(&runner, &req, &cb, &r, NULL), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_non_null(rep);
  assert_int_equal(r.outcome, SBX_OK);
  assert_string_equal(r.out, "7\n");
  assert_non_null(cJSON_GetObjectItem(rep, "bwrap"));
  /* which host uid programs run as: never root */
  cJSON *ids = cJSON_GetObjectItem(rep, "runsAs");
  double uid = cJSON_GetNumberValue(cJSON_GetObjectItem(ids, "hostUid"));
  assert_true(uid > 0);
  if (geteuid() == 0) assert_int_equal((int)uid, SBX_HOST_ID_DEFAULT);
  else assert_int_equal((int)uid, (int)geteuid());
  cJSON *py = cJSON_GetObjectItem(cJSON_GetObjectItem(rep, "interpreters"), "python");
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(py, "ok")));
  assert_non_null(cJSON_GetObjectItem(py, "version"));
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(rep, "userNamespaces"), "ok")));
  assert_non_null(cJSON_GetObjectItem(rep, "limits"));
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(rep, "ok")));
  cJSON_Delete(rep);
  close_runner(&loop, &is_closed, &runner);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(warm_sandbox_binds_requests),
      cmocka_unit_test(queue_and_cancel),
      cmocka_unit_test(close_kills_live_runs),
      cmocka_unit_test(queue_is_fair_between_owners),
      cmocka_unit_test(doctor_reports),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
