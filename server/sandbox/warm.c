/* The warm sandbox: one python sandbox prepared ahead with the default
 * limits, so the backend's setup (bwrap's exec, namespaces and mounts) is
 * off a request's critical path; the next fitting request binds to it. */
#include "common.h"
#include "internal.h"
#include "log.h"

/* When a taken warm sandbox is replaced, and after how many warm sandboxes
 * that died unused the runner stops making them. */
#define WARM_DELAY_MS 5
#define WARM_RETRY_MS 1000
#define WARM_MAX_FAILURES 3

/* Makes a python sandbox ahead of time, with the default limits: it then
 * waits (bwrap: blocked reading its program from the code pipe) until
 * sbx_run_start binds one. */
static void warm_spawn(sbx_runner *self) {
  if (!self->cfg.warm || self->warm || self->closing || self->setup_error ||
      self->warm_failures >= WARM_MAX_FAILURES || !self->backend->has_lang(self, SBX_LANG_PYTHON))
    return;
  sbx_run *run = sbx__run_alloc(self, SBX_LANG_PYTHON, &self->cfg.defaults);
  run->state = SBX__WARM;
  if (self->backend->prepare(run)) {
    log_debug("sandbox: cannot make a warm sandbox: %s", run->error ? run->error : "?");
    self->warm_failures++;
    sbx__warm_discard(run);
    return;
  }
  self->warm = run;
}

static void warm_timer_cb(uv_timer_t *t) {
  warm_spawn(container_of(t, sbx_runner, warm_timer));
}

void sbx__warm_schedule(sbx_runner *self) {
  uv_timer_start(&self->warm_timer, warm_timer_cb, WARM_DELAY_MS, 0);
}

sbx_run *sbx__warm_take(sbx_runner *self, sbx_lang lang, const sbx_limits *lim) {
  sbx_run *w = self->warm;
  /* The warm sandbox fits (same interpreter, same limits fixed when it was
   * made) and would start at once. */
  if (!w || w->lang != lang || !self->backend->fits(self, &w->limits, lim) || self->queue_head ||
      self->nlive >= self->cfg.max_concurrent)
    return NULL;
  /* Make the next one after this run has started. */
  self->warm = NULL;
  sbx__warm_schedule(self);
  dbuf_close(&w->obuf);
  dbuf_close(&w->ebuf);
  dbuf_init(&w->obuf, (size_t)lim->output_bytes);
  dbuf_init(&w->ebuf, (size_t)lim->output_bytes);
  return w;
}

void sbx__warm_discard(sbx_run *run) {
  sbx_runner *self = run->runner;
  if (self->warm == run) self->warm = NULL;
  run->state = SBX__FINISHED;
  self->backend->cleanup(run);
  bool t = true;
  sbx__close_handle(run, (uv_handle_t *)&run->timer, &t);
  if (!self->closing && self->warm_failures < WARM_MAX_FAILURES)
    uv_timer_start(&self->warm_timer, warm_timer_cb, WARM_RETRY_MS, 0);
}

void sbx__warm_close(sbx_runner *self) {
  uv_timer_stop(&self->warm_timer);
  /* Unused: the backend's cleanup kills and reaps it now, so nothing waits
   * on a signal. */
  if (self->warm) sbx__warm_discard(self->warm);
}
