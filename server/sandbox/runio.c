/* A run's life once its sandbox is prepared, the same for every backend:
 * binding the request, the output caps, the wall/grace/drain timer, the
 * exit, and the finish that turns what was observed into the result
 * (verdict.c) and reports it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "internal.h"
#include "traceback.h"

/* Time between SIGTERM and SIGKILL when the wall time is up. */
#define GRACE_MS 300
/* How long output may keep arriving after the sandbox exited (bwrap: a
 * grandchild holding the pipe dies with the pid namespace; this only
 * bounds it). */
#define DRAIN_MS 1000
/* Output beyond this multiple of outputBytes (both streams) kills the run. */
#define HARD_OUTPUT_FACTOR 4
#define MAX_DIAGS 16

static void timer_cb(uv_timer_t *t);

/* ---- handles ---- */

static void run_handle_closed(uv_handle_t *h) {
  sbx_run *run = h->data;
  if (--run->open_handles > 0) return;
  sbx_runner *self = run->runner;
  free(run->code);
  free(run->stdin_data);
  sbx_env_free(run->env);
  free(run->name);
  free(run->error);
  dbuf_close(&run->obuf);
  dbuf_close(&run->ebuf);
  self->backend->run_free(run);
  self->pending_handles--;
  sbx__runner_maybe_closed(self);
}

void sbx__close_handle(sbx_run *run, uv_handle_t *h, bool *open) {
  if (!*open) return;
  *open = false;
  uv_close(h, run_handle_closed);
}

/* ---- while it runs ---- */

static void maybe_finish(sbx_run *run) {
  if (run->state != SBX__RUNNING) return;
  if (!run->exited || !run->io_done) return;
  sbx__run_finish(run);
}

void sbx__run_output(sbx_run *run, int stream, const char *data, size_t n) {
  dbuf *b = stream == 1 ? &run->obuf : &run->ebuf;
  size_t kept = dbuf_add_head(b, data, n);
  if (kept < n) run->truncated = true;
  if (kept && run->cb.on_output) run->cb.on_output(run->ud, stream, data, kept);
  run->total_out += n;
  unsigned long long hard = (unsigned long long)run->limits.output_bytes * HARD_OUTPUT_FACTOR;
  if (run->total_out > hard && !run->killed_for && !run->cancelled) {
    run->killed_for = SBX_LIMIT_OUTPUT;
    sbx__run_kill(run);
  }
}

void sbx__run_io_done(sbx_run *run) {
  run->io_done = true;
  maybe_finish(run);
}

void sbx__run_exited(sbx_run *run, long long status, int sig) {
  sbx_runner *self = run->runner;
  if (run->state == SBX__WARM) {
    /* It died before anyone used it (killed, or the backend cannot work here). */
    if (!self->closing) self->warm_failures++;
    sbx__warm_discard(run);
    return;
  }
  run->exited = true;
  run->exit_status = status;
  run->term_signal = sig;
  run->t1 = now_ms();
  if (!run->io_done) {
    run->phase = SBX__T_DRAIN;
    uv_timer_start(&run->timer, timer_cb, DRAIN_MS, 0);
  }
  maybe_finish(run);
}

void sbx__run_kill(sbx_run *run) {
  if (run->state != SBX__RUNNING || run->exited) return;
  run->runner->backend->kill(run);
}

void sbx__run_fail(sbx_run *run, char *error) {
  free(run->error);
  run->error = error;
  sbx__run_kill(run);
}

void sbx__run_stop_for(sbx_run *run, unsigned limit) {
  if (run->state != SBX__RUNNING || run->exited || run->killed_for || run->cancelled) return;
  run->killed_for = limit;
  run->runner->backend->term(run);
  run->phase = SBX__T_GRACE;
  uv_timer_start(&run->timer, timer_cb, GRACE_MS, 0);
}

static void timer_cb(uv_timer_t *t) {
  sbx_run *run = container_of(t, sbx_run, timer);
  switch (run->phase) {
  case SBX__T_DEFER:
    run->phase = SBX__T_NONE;
    sbx__run_finish(run);
    break;
  case SBX__T_WALL:
    sbx__run_stop_for(run, SBX_LIMIT_WALL);
    break;
  case SBX__T_GRACE:
    sbx__run_kill(run);
    break;
  case SBX__T_DRAIN:
    /* Output still open this long after the exit is dropped (the
     * backend's cleanup closes it). */
    sbx__run_finish(run);
    break;
  default: break;
  }
}

void sbx__run_bind(sbx_run *run) {
  run->bound = true;
  run->t0 = now_ms();
  run->runner->backend->start(run);
  run->phase = SBX__T_WALL;
  uv_timer_start(&run->timer, timer_cb, (uint64_t)run->limits.timeout_ms, 0);
}

void sbx__run_program_started(sbx_run *run) {
  if (run->state != SBX__RUNNING || run->phase != SBX__T_WALL || run->exited || run->killed_for) return;
  run->t0 = now_ms();
  uv_timer_start(&run->timer, timer_cb, (uint64_t)run->limits.timeout_ms, 0);
}

/* ---- finishing ---- */

/* The disk caps show only as failing writes inside the sandbox: ENOSPC on
 * a full tmpfs, EFBIG/SIGXFSZ past RLIMIT_FSIZE. Every interpreter prints
 * strerror's text, so it is looked for in the output. */
static bool disk_error_seen(const sbx_run *run) {
  static const char *const needles[] = {"No space left on device", "File too large"};
  for (size_t i = 0; i < ARRAY_LEN(needles); i++)
    if ((run->ebuf.data && strstr(run->ebuf.data, needles[i])) ||
        (run->obuf.data && strstr(run->obuf.data, needles[i])))
      return true;
  return false;
}

void sbx__run_finish(sbx_run *run) {
  sbx_runner *self = run->runner;
  if (run->state == SBX__FINISHED) return;
  bool was_running = run->state == SBX__RUNNING;
  if (was_running) sbx__live_del(self, run);
  run->state = SBX__FINISHED;
  uv_timer_stop(&run->timer);

  sbx_result r = {0};
  r.lang = run->lang;
  r.limits = run->limits;
  r.host_uid = was_running ? (long)self->host_uid : -1;
  r.host_gid = was_running ? (long)self->host_gid : -1;
  r.unenforced = was_running ? sbx_isolation_unenforced(run->iso) : NULL;
  r.exit_code = -1;
  r.cpu_ms = -1;
  r.max_rss_kb = -1;
  r.isolation = was_running ? run->iso : SBX_ISO_NONE;
  r.duration_ms = was_running && run->t1 >= run->t0 ? (long long)(run->t1 - run->t0) : 0;

  if (was_running) {
    sbx_facts f = {.oom_kills = -1, .peak_bytes = -1, .cpu_ns = -1, .pids_max = -1};
    self->backend->observe(run, &f);
    const char *err_text = run->ebuf.data ? run->ebuf.data : "";
    f.exit_status = run->exit_status;
    f.term_signal = run->term_signal;
    f.killed_for = run->killed_for;
    f.cancelled = run->cancelled;
    f.failed = run->error != NULL;
    f.disk_error_text = disk_error_seen(run);
    f.memory_error_text = strstr(err_text, "MemoryError") || strstr(err_text, "heap out of memory") ||
                          strstr(err_text, "Cannot allocate memory");
    f.cpu_limit_s = run->limits.cpu_seconds;
    sbx_verdict(&f, &r);
  } else {
    r.outcome = run->cancelled ? SBX_CANCELLED : SBX_ERROR;
  }
  if (run->truncated) r.truncated = true;
  r.error = run->error;
  r.out = run->obuf.data ? run->obuf.data : "";
  r.out_len = run->obuf.len;
  r.err = run->ebuf.data ? run->ebuf.data : "";
  r.err_len = run->ebuf.len;
  sbx_diag diags[MAX_DIAGS];
  int nd = 0;
  if (was_running && run->program_ran && r.outcome != SBX_OK)
    nd = sbx_traceback_parse(run->lang, r.err, r.err_len, sbx_lang_script(run->lang),
                             run->line_offset, diags, MAX_DIAGS);
  r.diags = diags;
  r.ndiags = nd;
  if (run->cb.on_done) run->cb.on_done(run->ud, &r);
  sbx_diags_free(diags, nd);
  /* Close what is left; the run is freed when the last handle is closed. */
  self->backend->cleanup(run);
  bool t = true;
  sbx__close_handle(run, (uv_handle_t *)&run->timer, &t);
  sbx__pump(self);
  /* A burst skips refills while runs queue: refill once it is over. */
  if (!self->queue_head && self->cfg.warm) sbx__warm_schedule(self);
}

void sbx__run_defer_finish(sbx_run *run) {
  run->phase = SBX__T_DEFER;
  uv_timer_start(&run->timer, timer_cb, 0, 0);
}
