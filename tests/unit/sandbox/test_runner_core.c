/* The runner's shared half (queue and fairness, ceilings and shares, output
 * caps, the wall/grace/drain timer, warm sandboxes, cancel and close) over
 * a fake backend: no process is started, every event is scripted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "internal.h"

/* ---- the fake backend ----
 *
 * A run's program text is its script: "MS EXIT TEXT" prints TEXT (or, as
 * "@N", N bytes of 'x') MS milliseconds after start, then exits with EXIT;
 * MS = -1 never ends on its own; EXIT = -1 exits with output still open
 * (only the drain ends it). "fail" makes prepare fail. A fake "process" is a
 * timer per run, counted like any backend handle. */

typedef struct fake_run {
  sbx_run run;
  uv_timer_t proc;
  bool proc_open;
  int prepared_at, started_at, termed_at, killed_at; /* event sequence numbers, 0: never */
  int exit_status, exit_sig;
  bool ends_on_term;
  bool exit_now;         /* the next proc tick exits (killed/termed) without output */
} fake_run;

static struct {
  int seq;               /* event counter */
  int prepares, frees, closes;
  int frees_at_close;    /* run_free calls seen when close was called */
  bool setup_fails, warm_fails, lang_missing;
  sbx_run *order[16];    /* runs in the order they were prepared (not warm) */
  int norder;
  struct fake_run *dead[64]; /* freed runs, kept readable until the test ends */
  int ndead;
} fk;

static fake_run *F(sbx_run *run) {
  return container_of(run, fake_run, run);
}

static void fake_init(sbx_runner *self, const sbx_config *config) {
  (void)config;
  self->be = &fk;
  self->iso = SBX_ISO_CGROUP_V2;
  if (fk.setup_fails) self->setup_error = xstrdup("fake: cannot run here (install the fake)");
}

static bool fake_has_lang(const sbx_runner *self, sbx_lang lang) {
  (void)self, (void)lang;
  return !fk.lang_missing;
}

/* Fixed when prepared: the disk size. */
static bool fake_fits(const sbx_runner *self, const sbx_limits *made, const sbx_limits *want) {
  (void)self;
  return made->disk_mb == want->disk_mb;
}

static sbx_run *fake_run_new(sbx_runner *self) {
  (void)self;
  fake_run *f = xcalloc(1, sizeof *f);
  return &f->run;
}

static void proc_cb(uv_timer_t *t);

static int fake_prepare(sbx_run *run) {
  fake_run *f = F(run);
  fk.prepares++;
  if (run->state == SBX__WARM && fk.warm_fails) {
    run->error = xstrdup("fake: warm sandbox failed");
    return -EIO;
  }
  if (run->state != SBX__WARM && run->code && !strcmp(run->code, "fail")) {
    run->error = xstrdup("fake: prepare failed");
    return -EIO;
  }
  uv_timer_init(run->runner->loop, &f->proc);
  f->proc.data = run;
  f->proc_open = true;
  run->open_handles++;
  if (run->state == SBX__WARM) uv_unref((uv_handle_t *)&f->proc);
  else if (fk.norder < (int)ARRAY_LEN(fk.order)) fk.order[fk.norder++] = run;
  f->prepared_at = ++fk.seq;
  return 0;
}

static void fake_start(sbx_run *run) {
  fake_run *f = F(run);
  uv_ref((uv_handle_t *)&f->proc);
  f->started_at = ++fk.seq;
  run->iso = SBX_ISO_CGROUP_V2;
  int ms = -1, code = 0;
  sscanf(run->code, "%d %d", &ms, &code);
  f->exit_status = code;
  f->ends_on_term = ms >= 0;
  if (ms >= 0) uv_timer_start(&f->proc, proc_cb, (uint64_t)ms, 0);
}

static void fake_term(sbx_run *run) {
  fake_run *f = F(run);
  f->termed_at = ++fk.seq;
  if (f->ends_on_term) {
    f->exit_now = true;
    f->exit_sig = SIGTERM;
    uv_timer_start(&f->proc, proc_cb, 0, 0);
  }
}

static void fake_kill(sbx_run *run) {
  fake_run *f = F(run);
  if (!f->killed_at) f->killed_at = ++fk.seq;
  f->exit_now = true;
  f->exit_sig = SIGKILL;
  uv_timer_start(&f->proc, proc_cb, 0, 0);
}

static void proc_cb(uv_timer_t *t) {
  sbx_run *run = t->data;
  fake_run *f = F(run);
  if (!f->exit_now) {
    const char *text = strchr(run->code, ' ');
    text = text ? strchr(text + 1, ' ') : NULL;
    text = text ? text + 1 : "";
    if (*text == '@') {
      char chunk[4096];
      memset(chunk, 'x', sizeof chunk);
      for (long n = atol(text + 1); n > 0 && !run->killed_for; n -= (long)sizeof chunk)
        sbx__run_output(run, 1, chunk, n < (long)sizeof chunk ? (size_t)n : sizeof chunk);
    } else if (*text) {
      sbx__run_output(run, 1, text, strlen(text));
    }
    run->program_ran = true;
    if (run->killed_for) return; /* the kill it caused ends it */
  }
  if (f->exit_status >= 0 || f->exit_now) sbx__run_io_done(run);
  sbx__run_exited(run, f->exit_sig ? 128 + f->exit_sig : f->exit_status, 0);
}

static void fake_observe(sbx_run *run, sbx_facts *f) {
  (void)run;
  f->in_cgroup = true;
  f->oom_kills = 0;
  f->pids_max = 0;
  f->cpu_ns = 1000000;
  f->peak_bytes = 4096;
}

static void fake_cleanup(sbx_run *run) {
  fake_run *f = F(run);
  sbx__close_handle(run, (uv_handle_t *)&f->proc, &f->proc_open);
}

static void fake_run_free(sbx_run *run) {
  fk.frees++;
  if (fk.ndead < (int)ARRAY_LEN(fk.dead)) fk.dead[fk.ndead++] = F(run);
  else free(F(run));
}

static void free_dead(void) {
  for (int i = 0; i < fk.ndead; i++) free(fk.dead[i]);
  fk.ndead = 0;
}

static void fake_close(sbx_runner *self) {
  fk.closes++;
  fk.frees_at_close = fk.frees;
  self->be = NULL;
  sbx__runner_backend_closed(self);
}

static const sbx__backend fake = {
    .name = "fake", .init = fake_init, .has_lang = fake_has_lang, .fits = fake_fits,
    .run_new = fake_run_new, .prepare = fake_prepare, .start = fake_start, .term = fake_term,
    .kill = fake_kill, .observe = fake_observe, .cleanup = fake_cleanup, .run_free = fake_run_free,
    .close = fake_close,
};

/* ---- what the tests record ---- */

typedef struct rec {
  int done;
  int order;
  sbx_result r;       /* scalars only: pointers are invalid after on_done */
  char out[64];
  size_t out_len;
  char error[128];
  unsigned long long at;
} rec;

static int g_order;

static void on_done(void *ud, const sbx_result *res) {
  rec *r = ud;
  r->done++;
  r->order = ++g_order;
  r->r = *res;
  r->out_len = res->out_len;
  snprintf(r->out, sizeof r->out, "%s", res->out);
  snprintf(r->error, sizeof r->error, "%s", res->error ? res->error : "");
  r->at = now_ms();
}

static size_t g_streamed;

static void on_output(void *ud, int stream, const char *b, size_t n) {
  (void)ud, (void)stream, (void)b;
  g_streamed += n;
}

static const sbx_callbacks cbs = {on_output, on_done};

typedef struct fixture {
  uv_loop_t loop;
  sbx_runner runner;
  int closed;
} fixture;

static void closed_cb(sbx_runner *r) {
  fixture *fx = container_of(r, fixture, runner);
  fx->closed++;
}

enum { FAIL_SETUP = 1, FAIL_WARM = 2 };

static fixture g_fx;

/* A runner over the fake backend on a fresh loop (cfg may be NULL). */
static fixture *open_fx(const sbx_config *cfg, int fail) {
  fixture *fx = &g_fx;
  memset(&fk, 0, sizeof fk);
  fk.setup_fails = fail & FAIL_SETUP;
  fk.warm_fails = fail & FAIL_WARM;
  g_order = 0;
  g_streamed = 0;
  uv_loop_init(&fx->loop);
  fx->closed = 0;
  assert_int_equal(sbx__runner_init_with(&fx->runner, &fx->loop, cfg, &fake), 0);
  return fx;
}

/* Closes the runner and the loop: the backend is closed once, after every
 * run was freed, and no handle is left. */
static void close_fx(fixture *fx) {
  sbx_runner_close(&fx->runner, closed_cb);
  uv_run(&fx->loop, UV_RUN_DEFAULT);
  assert_int_equal(fx->closed, 1);
  assert_int_equal(fk.closes, 1);
  assert_int_equal(fk.frees_at_close, fk.frees);
  assert_int_equal(uv_loop_close(&fx->loop), 0);
  free_dead();
}

static int start(fixture *fx, const char *code, const void *owner, rec *r, sbx_run **out) {
  sbx_request req = {.language = "python", .code = code, .code_len = strlen(code), .owner = owner};
  return sbx_run_start(&fx->runner, &req, &cbs, r, out);
}

static int order_of(const sbx_run *run) {
  for (int i = 0; i < fk.norder; i++)
    if (fk.order[i] == run) return i + 1;
  return 0;
}

/* ---- tests ---- */

/* One slot: when it frees, an owner not served lately goes before the
 * owner whose backlog queued first (FIFO would run a1 a2 a3 b1 c1). */
static void queue_serves_owners_in_turn(void **state) {
  (void)state;
  fixture *fx = open_fx(&(sbx_config){.max_concurrent = 1}, 0);
  int A, B, C;
  rec a[3] = {{0}}, b = {0}, c = {0};
  sbx_run *ra[3], *rb, *rc;
  for (int i = 0; i < 3; i++) assert_int_equal(start(fx, "5 0 a", &A, &a[i], &ra[i]), 0);
  assert_int_equal(start(fx, "5 0 b", &B, &b, &rb), 0);
  assert_int_equal(start(fx, "5 0 c", &C, &c, &rc), 0);
  assert_int_equal(fx->runner.nlive, 1);
  assert_int_equal(fx->runner.nqueued, 4);
  uv_run(&fx->loop, UV_RUN_DEFAULT);
  assert_int_equal(a[0].order, 1);
  assert_int_equal(b.order, 2);
  assert_int_equal(c.order, 3);
  assert_int_equal(a[1].order, 4);
  assert_int_equal(a[2].order, 5);
  assert_int_equal(a[0].r.outcome, SBX_OK);
  assert_string_equal(c.out, "c");
  close_fx(fx);
}

/* Three slots, A holding two and B one: when B's run ends, B's queued run
 * starts before A's older one (fewest live runs first). */
static void queue_prefers_fewest_live_runs(void **state) {
  (void)state;
  fixture *fx = open_fx(&(sbx_config){.max_concurrent = 3}, 0);
  int A, B;
  rec a1 = {0}, a2 = {0}, a3 = {0}, b1 = {0}, b2 = {0};
  sbx_run *ra1, *ra2, *ra3, *rb1, *rb2;
  assert_int_equal(start(fx, "-1 0", &A, &a1, &ra1), 0);
  assert_int_equal(start(fx, "-1 0", &A, &a2, &ra2), 0);
  assert_int_equal(start(fx, "20 0", &B, &b1, &rb1), 0);
  assert_int_equal(start(fx, "-1 0", &A, &a3, &ra3), 0); /* queued first */
  assert_int_equal(start(fx, "-1 0", &B, &b2, &rb2), 0);
  assert_int_equal(fx->runner.nqueued, 2);
  while (!b1.done) uv_run(&fx->loop, UV_RUN_ONCE);
  assert_int_not_equal(order_of(rb2), 0); /* b2 took the slot */
  assert_int_equal(order_of(ra3), 0);     /* a3 still waits */
  assert_int_equal(fx->runner.nqueued, 1);
  sbx_run_cancel(ra1);
  while (!a1.done) uv_run(&fx->loop, UV_RUN_ONCE);
  assert_true(order_of(ra3) > order_of(rb2));
  close_fx(fx);
  assert_int_equal(a2.r.outcome, SBX_CANCELLED);
  assert_int_equal(a3.r.outcome, SBX_CANCELLED);
  assert_int_equal(b2.r.outcome, SBX_CANCELLED);
}

/* Limits above the ceilings and unknown languages are refused at once; an
 * owner's share of the queue and the whole queue have caps. */
static void start_refuses_what_it_cannot_take(void **state) {
  (void)state;
  fixture *fx = open_fx(&(sbx_config){.max_concurrent = 1, .max_queued = 4, .max_queued_per_owner = 2,
                    .max = {.timeout_ms = 1000}}, 0);
  int A, B, C;
  rec r[8] = {{0}};
  sbx_request over = {.language = "python", .code = "1 0", .code_len = 3, .limits = {.timeout_ms = 1001}};
  assert_int_equal(sbx_run_start(&fx->runner, &over, &cbs, &r[0], NULL), -EINVAL);
  sbx_request cobol = {.language = "cobol", .code = "1 0", .code_len = 3};
  assert_int_equal(sbx_run_start(&fx->runner, &cobol, &cbs, &r[0], NULL), -EINVAL);
  assert_int_equal(start(fx, "-1 0", &A, &r[0], NULL), 0); /* running */
  assert_int_equal(start(fx, "-1 0", &A, &r[1], NULL), 0);
  assert_int_equal(start(fx, "-1 0", &A, &r[2], NULL), 0);
  assert_int_equal(start(fx, "-1 0", &A, &r[3], NULL), -EAGAIN); /* A's share: 2 queued */
  assert_int_equal(start(fx, "-1 0", &B, &r[3], NULL), 0);
  assert_int_equal(start(fx, "-1 0", &B, &r[4], NULL), 0);
  assert_int_equal(start(fx, "-1 0", &C, &r[5], NULL), -EAGAIN); /* the queue: 4 */
  assert_int_equal(fk.prepares, 1);
  close_fx(fx);
  for (int i = 0; i < 5; i++) assert_int_equal(r[i].r.outcome, SBX_CANCELLED);
  assert_int_equal(r[5].done, 0);
}

/* The head of each stream is kept up to outputBytes (truncated set), and
 * only that much is streamed; past 4x in total the run is killed and ends
 * as an error with the output limit. */
static void output_is_capped_then_killed(void **state) {
  (void)state;
  fixture *fx = open_fx(&(sbx_config){.defaults = {.output_bytes = 1000}}, 0);
  rec soft = {0}, hard = {0};
  sbx_run *rh;
  assert_int_equal(start(fx, "1 0 @3000", NULL, &soft, NULL), 0);
  uv_run(&fx->loop, UV_RUN_DEFAULT);
  assert_int_equal(soft.r.outcome, SBX_OK);
  assert_true(soft.r.truncated);
  assert_int_equal(soft.out_len, 1000);
  assert_int_equal(g_streamed, 1000);
  assert_int_equal(soft.r.limit, SBX_LIMIT_NONE);
  assert_int_equal(start(fx, "1 0 @50000", NULL, &hard, &rh), 0);
  uv_run(&fx->loop, UV_RUN_DEFAULT);
  assert_int_equal(hard.r.outcome, SBX_ERROR);
  assert_int_equal(hard.r.limit, SBX_LIMIT_OUTPUT);
  assert_true(hard.r.limits_hit & SBX_LIMIT_OUTPUT);
  assert_int_equal(hard.r.signal, SIGKILL);
  close_fx(fx);
}

/* The wall time asks the sandbox to stop, then kills it a grace later if
 * it did not; either way the run is a timeout. */
static void wall_time_terms_then_kills(void **state) {
  (void)state;
  fixture *fx = open_fx(NULL, 0);
  rec stubborn = {0}, polite = {0};
  sbx_run *rs, *rp;
  sbx_request req = {.language = "python", .code = "-1 0", .code_len = 4, .limits = {.timeout_ms = 30}};
  assert_int_equal(sbx_run_start(&fx->runner, &req, &cbs, &stubborn, &rs), 0);
  req.code = "10000 0";
  req.code_len = 7;
  assert_int_equal(sbx_run_start(&fx->runner, &req, &cbs, &polite, &rp), 0);
  fake_run *fs = F(rs), *fp = F(rp);
  while (!stubborn.done || !polite.done) uv_run(&fx->loop, UV_RUN_ONCE);
  assert_true(fs->termed_at > 0);
  assert_true(fs->killed_at > fs->termed_at);
  assert_int_equal(stubborn.r.outcome, SBX_TIMEOUT);
  assert_int_equal(stubborn.r.limit, SBX_LIMIT_WALL);
  assert_true(fp->termed_at > 0);
  assert_int_equal(fp->killed_at, 0); /* it stopped on the first ask */
  assert_int_equal(polite.r.outcome, SBX_TIMEOUT);
  assert_int_equal(polite.r.signal, SIGTERM);
  /* the grace: the stubborn one ended well after the polite one */
  assert_true(stubborn.at >= polite.at + 250);
  close_fx(fx);
}

/* A sandbox that exited with its output still open finishes after the
 * drain delay, with its exit status. */
static void exit_with_open_output_drains(void **state) {
  (void)state;
  fixture *fx = open_fx(NULL, 0);
  rec r = {0};
  unsigned long long t0 = now_ms();
  assert_int_equal(start(fx, "1 -1 late", NULL, &r, NULL), 0);
  uv_run(&fx->loop, UV_RUN_DEFAULT);
  assert_int_equal(r.done, 1);
  assert_true(r.at - t0 >= 1000);
  assert_string_equal(r.out, "late");
  assert_int_equal(r.r.outcome, SBX_ERROR); /* exit status -1: not 0 */
  close_fx(fx);
}

/* A run whose sandbox cannot be made ends as an error with the backend's
 * reason, from the loop, and the queue moves on to the next run. */
static void prepare_failure_moves_the_queue_on(void **state) {
  (void)state;
  fixture *fx = open_fx(&(sbx_config){.max_concurrent = 1}, 0);
  rec bad = {0}, good = {0};
  assert_int_equal(start(fx, "fail", NULL, &bad, NULL), 0);
  assert_int_equal(start(fx, "1 0 ok", NULL, &good, NULL), 0);
  assert_int_equal(bad.done, 0); /* never from inside sbx_run_start */
  assert_int_equal(fx->runner.nlive, 1);
  uv_run(&fx->loop, UV_RUN_DEFAULT);
  assert_int_equal(bad.r.outcome, SBX_ERROR);
  assert_string_equal(bad.error, "fake: prepare failed");
  assert_int_equal(bad.r.isolation, SBX_ISO_NONE);
  assert_int_equal(bad.r.host_uid, -1);
  assert_int_equal(good.r.outcome, SBX_OK);
  assert_string_equal(good.out, "ok");
  assert_int_equal(good.r.isolation, SBX_ISO_CGROUP_V2);
  assert_int_equal(good.r.cpu_ms, 1);
  close_fx(fx);
}

/* Cancelling a queued run reports it from the loop without preparing it;
 * cancelling a running one kills its sandbox. */
static void cancel_queued_and_running(void **state) {
  (void)state;
  fixture *fx = open_fx(&(sbx_config){.max_concurrent = 1}, 0);
  rec r1 = {0}, r2 = {0}, r3 = {0};
  sbx_run *h1, *h2;
  assert_int_equal(start(fx, "-1 0", NULL, &r1, &h1), 0);
  assert_int_equal(start(fx, "1 0", NULL, &r2, &h2), 0);
  assert_int_equal(start(fx, "1 0 three", NULL, &r3, NULL), 0);
  sbx_run_cancel(h2);
  assert_int_equal(r2.done, 0); /* never from inside sbx_run_cancel */
  assert_int_equal(fx->runner.nqueued, 1);
  sbx_run_cancel(h1);
  assert_int_equal(r1.done, 0);
  assert_true(F(h1)->killed_at > 0);
  uv_run(&fx->loop, UV_RUN_DEFAULT);
  assert_int_equal(r1.r.outcome, SBX_CANCELLED);
  assert_int_equal(r2.r.outcome, SBX_CANCELLED);
  assert_int_equal(r2.done, 1);
  assert_int_equal(r3.r.outcome, SBX_OK);
  assert_int_equal(fk.prepares, 2); /* r1 and r3 */
  close_fx(fx);
}

static void tick(uv_timer_t *t) {
  *(int *)t->data = 1;
}

/* Runs the loop for ms (whatever else keeps it alive). */
static void run_for(uv_loop_t *loop, uint64_t ms) {
  int fired = 0;
  uv_timer_t t;
  uv_timer_init(loop, &t);
  t.data = &fired;
  uv_timer_start(&t, tick, ms, 0);
  while (!fired) uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
}

/* The warm sandbox serves a request that fits it and is replaced after;
 * one that does not fit (another disk size, another language, a queue in
 * front) gets a sandbox of its own. */
static void warm_sandbox_taken_when_it_fits(void **state) {
  (void)state;
  fixture *fx = open_fx(&(sbx_config){.max_concurrent = 1, .warm = true}, 0);
  assert_null(fx->runner.warm);
  run_for(&fx->loop, 50);
  sbx_run *w = fx->runner.warm;
  assert_non_null(w);
  assert_int_equal(fk.prepares, 1);
  rec r[4] = {{0}};
  sbx_run *got;
  assert_int_equal(start(fx, "1 0 warm", NULL, &r[0], &got), 0);
  assert_ptr_equal(got, w);
  assert_true(F(got)->started_at > 0);
  assert_null(fx->runner.warm);
  uv_run(&fx->loop, UV_RUN_DEFAULT);
  assert_string_equal(r[0].out, "warm");
  run_for(&fx->loop, 50);
  assert_non_null(fx->runner.warm); /* replaced */
  w = fx->runner.warm;
  /* another disk size: not the warm one */
  sbx_request req = {.language = "python", .code = "1 0", .code_len = 3, .limits = {.disk_mb = 7}};
  assert_int_equal(sbx_run_start(&fx->runner, &req, &cbs, &r[1], &got), 0);
  assert_ptr_not_equal(got, w);
  /* the slot is taken: a fitting request queues rather than take the warm one */
  assert_int_equal(start(fx, "1 0", NULL, &r[2], &got), 0);
  assert_ptr_not_equal(got, w);
  assert_ptr_equal(fx->runner.warm, w);
  uv_run(&fx->loop, UV_RUN_DEFAULT);
  /* another language */
  sbx_request js = {.language = "javascript", .code = "1 0", .code_len = 3};
  assert_int_equal(sbx_run_start(&fx->runner, &js, &cbs, &r[3], &got), 0);
  assert_ptr_not_equal(got, w);
  uv_run(&fx->loop, UV_RUN_DEFAULT);
  /* an environment: the warm sandbox was made without one; the run keeps
   * its own copy of the request's */
  run_for(&fx->loop, 50);
  w = fx->runner.warm;
  assert_non_null(w);
  char bind[] = "/tmp/some-venv";
  sbx_env env = {.id = "venv-1", .binds = {bind}, .interp = "/tmp/some-venv/bin/python3"};
  rec er = {0};
  sbx_request ereq = {.language = "python", .code = "1 0 env", .code_len = 7, .env = &env};
  assert_int_equal(sbx_run_start(&fx->runner, &ereq, &cbs, &er, &got), 0);
  assert_ptr_not_equal(got, w);
  assert_non_null(got->env);
  assert_ptr_not_equal(got->env->binds[0], bind);
  bind[1] = 'X'; /* the caller's memory may change at once */
  assert_string_equal(got->env->binds[0], "/tmp/some-venv");
  assert_string_equal(got->env->interp, "/tmp/some-venv/bin/python3");
  assert_ptr_equal(fx->runner.warm, w);
  uv_run(&fx->loop, UV_RUN_DEFAULT);
  assert_int_equal(er.r.outcome, SBX_OK);
  for (int i = 0; i < 4; i++) assert_int_equal(r[i].r.outcome, SBX_OK);
  close_fx(fx); /* the unused warm sandbox is cleaned up and freed too */
}

/* The pool's size follows demand: one python sandbox always, one of
 * another language for a minute after it was asked for, as many as the
 * busiest second of the last 30 s asked for (at most 4), back to the base
 * once that second is older. */
static void warm_pool_sized_by_recent_demand(void **state) {
  (void)state;
  sbx_runner r;
  memset(&r, 0, sizeof r);
  unsigned long long t = 1000000;
  assert_int_equal(sbx__warm_want(&r, SBX_LANG_PYTHON, t), 1);
  assert_int_equal(sbx__warm_want(&r, SBX_LANG_JAVASCRIPT, t), 0);
  sbx__warm_note(&r, SBX_LANG_JAVASCRIPT, t);
  assert_int_equal(sbx__warm_want(&r, SBX_LANG_JAVASCRIPT, t + 100), 1);
  assert_int_equal(sbx__warm_want(&r, SBX_LANG_JAVASCRIPT, t + 60001), 0);
  /* three python requests within one second, then quiet */
  for (int i = 0; i < 3; i++) sbx__warm_note(&r, SBX_LANG_PYTHON, t + 100 * (unsigned)i);
  assert_int_equal(sbx__warm_want(&r, SBX_LANG_PYTHON, t + 500), 3);
  /* a quieter second later does not lower the peak */
  sbx__warm_note(&r, SBX_LANG_PYTHON, t + 5000);
  assert_int_equal(sbx__warm_want(&r, SBX_LANG_PYTHON, t + 5000), 3);
  assert_int_equal(sbx__warm_want(&r, SBX_LANG_PYTHON, t + 29000), 3);
  assert_int_equal(sbx__warm_want(&r, SBX_LANG_PYTHON, t + 31000), 1);
  /* never more than four */
  for (int i = 0; i < 20; i++) sbx__warm_note(&r, SBX_LANG_BASH, t + (unsigned)i);
  assert_int_equal(sbx__warm_want(&r, SBX_LANG_BASH, t + 20), 4);
}

/* Warm sandboxes that fail are retried, then given up after three. */
static void warm_gives_up_after_failures(void **state) {
  (void)state;
  fixture *fx = open_fx(&(sbx_config){.warm = true}, FAIL_WARM);
  unsigned long long t0 = now_ms();
  while (fx->runner.warm_failures < 3 && now_ms() - t0 < 20000) run_for(&fx->loop, 100);
  assert_int_equal(fx->runner.warm_failures, 3);
  assert_int_equal(fk.prepares, 3);
  run_for(&fx->loop, 1500);
  assert_int_equal(fk.prepares, 3);
  assert_null(fx->runner.warm);
  close_fx(fx);
}

/* When the backend cannot run anything, runs still get their one result
 * (an error saying why), from the loop, and nothing is prepared. */
static void setup_error_fails_runs_from_the_loop(void **state) {
  (void)state;
  fixture *fx = open_fx(&(sbx_config){.warm = true}, FAIL_SETUP);
  assert_string_equal(sbx_runner_problem(&fx->runner), "fake: cannot run here (install the fake)");
  rec r = {0};
  assert_int_equal(start(fx, "1 0", NULL, &r, NULL), 0);
  assert_int_equal(r.done, 0);
  uv_run(&fx->loop, UV_RUN_DEFAULT);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.r.outcome, SBX_ERROR);
  assert_string_equal(r.error, "fake: cannot run here (install the fake)");
  assert_int_equal(fk.prepares, 0); /* not even a warm one */
  close_fx(fx);
}

/* Closing reports every live and queued run as cancelled, refuses new
 * ones, and closes the backend only once every run is freed. */
static void close_cancels_everything(void **state) {
  (void)state;
  fixture *fx = open_fx(&(sbx_config){.max_concurrent = 2, .warm = true}, 0);
  run_for(&fx->loop, 50);
  sbx_run *w = fx->runner.warm, *first = NULL;
  assert_non_null(w);
  rec r[4] = {{0}};
  for (int i = 0; i < 4; i++) assert_int_equal(start(fx, "-1 0", &r[i], &r[i], i ? NULL : &first), 0);
  assert_ptr_equal(first, w);
  assert_int_equal(fx->runner.nlive, 2);
  assert_int_equal(fx->runner.nqueued, 2);
  /* a burst: runs wait for a slot, so the taken warm sandbox is not
   * replaced yet (the cores are the queued runs') */
  run_for(&fx->loop, 50);
  assert_null(fx->runner.warm);
  sbx_runner_close(&fx->runner, closed_cb);
  assert_null(fx->runner.warm);
  assert_int_equal(start(fx, "1 0", NULL, &r[0], NULL), -ESHUTDOWN);
  assert_int_equal(fk.closes, 0); /* runs are still finishing */
  uv_run(&fx->loop, UV_RUN_DEFAULT);
  assert_int_equal(fx->closed, 1);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(r[i].done, 1);
    assert_int_equal(r[i].r.outcome, SBX_CANCELLED);
  }
  assert_int_equal(fk.closes, 1);
  assert_int_equal(fk.frees, 4); /* four runs, one of them the warm sandbox */
  assert_int_equal(fk.frees_at_close, 4);
  assert_int_equal(uv_loop_close(&fx->loop), 0);
  free_dead();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(queue_serves_owners_in_turn),
      cmocka_unit_test(queue_prefers_fewest_live_runs),
      cmocka_unit_test(start_refuses_what_it_cannot_take),
      cmocka_unit_test(output_is_capped_then_killed),
      cmocka_unit_test(wall_time_terms_then_kills),
      cmocka_unit_test(exit_with_open_output_drains),
      cmocka_unit_test(prepare_failure_moves_the_queue_on),
      cmocka_unit_test(cancel_queued_and_running),
      cmocka_unit_test(warm_sandbox_taken_when_it_fits),
      cmocka_unit_test(warm_pool_sized_by_recent_demand),
      cmocka_unit_test(warm_gives_up_after_failures),
      cmocka_unit_test(setup_error_fails_runs_from_the_loop),
      cmocka_unit_test(close_cancels_everything),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
