/* The warm pool: sandboxes prepared ahead with the default limits, a few
 * per language sized by recent demand, so the backend's setup (bwrap's
 * exec, namespaces, mounts, and for python and node the interpreter's own
 * start-up: prelude.c) is off a request's critical path. A warm sandbox
 * serves exactly one run; a request that finds none takes the cold path. */
#include "common.h"
#include "internal.h"
#include "log.h"

/* When a taken warm sandbox is replaced, and after how many warm sandboxes
 * that died unused the runner stops making them. */
#define WARM_DELAY_MS 5
/* A taken sandbox is replaced once its run finished (WARM_DELAY_MS after
 * the result went out), or after this long if the run is still going: a
 * replacement made while a short run runs would compete with it for the
 * cores and hold the loop (bwrap's spawn) while its result waits. */
#define WARM_BUSY_DELAY_MS 500
#define WARM_RETRY_MS 1000
#define WARM_MAX_FAILURES 3
/* The most warm sandboxes of one language. Each holds a started
 * interpreter (python ~10 MB, node ~40 MB of memory) and a cgroup. */
#define WARM_POOL_MAX 4
/* Demand: requests counted per second; the busiest second lately sizes the
 * pool for this long; a language other than python keeps one warm sandbox
 * this long after its last request. */
#define DEMAND_BUCKET_MS 1000
#define DEMAND_PEAK_MS 30000
#define DEMAND_KEEP_MS 60000
/* How often a pool above its base size is checked for trimming. */
#define WARM_TRIM_MS 10000

void sbx__warm_note(sbx_runner *self, sbx_lang lang, unsigned long long now) {
  struct sbx_warm_demand *d = &self->demand[lang];
  if (now - d->bucket_t >= DEMAND_BUCKET_MS) {
    d->bucket_t = now;
    d->bucket_n = 0;
  }
  d->bucket_n++;
  d->last_t = now;
  if (d->bucket_n >= d->peak || now - d->peak_t > DEMAND_PEAK_MS) {
    d->peak = d->bucket_n;
    d->peak_t = now;
  }
}

/* The size the pool of lang should have without demand: one python
 * sandbox always; another language one while it was asked for lately. */
static int warm_base(const sbx_runner *self, sbx_lang lang, unsigned long long now) {
  const struct sbx_warm_demand *d = &self->demand[lang];
  if (lang == SBX_LANG_PYTHON) return 1;
  return d->last_t && now - d->last_t <= DEMAND_KEEP_MS ? 1 : 0;
}

int sbx__warm_want(const sbx_runner *self, sbx_lang lang, unsigned long long now) {
  const struct sbx_warm_demand *d = &self->demand[lang];
  int want = warm_base(self, lang, now);
  if (d->peak_t && now - d->peak_t <= DEMAND_PEAK_MS && d->peak > want) want = d->peak;
  return want < WARM_POOL_MAX ? want : WARM_POOL_MAX;
}

static void warm_push(sbx_runner *self, sbx_run *run) {
  /* At the tail: the oldest (most likely started) is taken first. */
  sbx_run **p = &self->warm;
  while (*p) p = &(*p)->next;
  run->next = NULL;
  *p = run;
  self->nwarm[run->lang]++;
}

/* Takes run out of the pool; false when it was not in it. */
static bool warm_unlink(sbx_runner *self, sbx_run *run) {
  for (sbx_run **p = &self->warm; *p; p = &(*p)->next) {
    if (*p != run) continue;
    *p = run->next;
    run->next = NULL;
    self->nwarm[run->lang]--;
    return true;
  }
  return false;
}

static bool can_make(const sbx_runner *self) {
  return self->cfg.warm && !self->closing && !self->setup_error && self->warm_failures < WARM_MAX_FAILURES;
}

/* Makes one sandbox of lang ahead of time, with the default limits: it
 * then waits (bwrap: its interpreter blocked reading its program from a
 * pipe, or bwrap itself on its code pipe) until sbx_run_start binds one. */
static void warm_spawn(sbx_runner *self, sbx_lang lang) {
  sbx_run *run = sbx__run_alloc(self, lang, &self->cfg.defaults);
  run->state = SBX__WARM;
  if (self->backend->prepare(run)) {
    log_debug("sandbox: cannot make a warm sandbox: %s", run->error ? run->error : "?");
    self->warm_failures++;
    sbx__warm_discard(run);
    return;
  }
  warm_push(self, run);
}

static void warm_timer_cb(uv_timer_t *t);

/* Brings every pool to its wanted size: trims the ones above it, and fills
 * the ones below it unless runs wait for a slot (a burst: the cores are
 * the cold path's, refilled once the queue is empty). */
static void warm_fill(sbx_runner *self) {
  unsigned long long now = now_ms();
  bool above_base = false;
  for (int l = 0; l < SBX_LANG_COUNT && can_make(self); l++) {
    sbx_lang lang = (sbx_lang)l;
    if (!self->backend->has_lang(self, lang)) continue;
    int want = sbx__warm_want(self, lang, now);
    while (self->nwarm[lang] > want) {
      sbx_run *r = self->warm;
      while (r && r->lang != lang) r = r->next;
      sbx__warm_discard(r);
    }
    if (!self->queue_head && self->nlive < self->cfg.max_concurrent)
      while (self->nwarm[lang] < want && can_make(self)) warm_spawn(self, lang);
    above_base |= self->nwarm[lang] > warm_base(self, lang, now) || self->nwarm[lang] < want;
  }
  if (above_base && can_make(self) && !uv_is_active((uv_handle_t *)&self->warm_timer))
    uv_timer_start(&self->warm_timer, warm_timer_cb, WARM_TRIM_MS, 0);
}

static void warm_timer_cb(uv_timer_t *t) {
  warm_fill(container_of(t, sbx_runner, warm_timer));
}

void sbx__warm_schedule(sbx_runner *self) {
  if (self->cfg.warm && !self->closing) uv_timer_start(&self->warm_timer, warm_timer_cb, WARM_DELAY_MS, 0);
}

sbx_run *sbx__warm_take(sbx_runner *self, sbx_lang lang, const sbx_limits *lim) {
  /* A warm sandbox fits (same interpreter, same limits fixed when it was
   * made) and would start at once. */
  if (self->queue_head || self->nlive >= self->cfg.max_concurrent) return NULL;
  sbx_run *w = self->warm;
  while (w && (w->lang != lang || !self->backend->fits(self, &w->limits, lim))) w = w->next;
  if (!w) return NULL;
  warm_unlink(self, w);
  /* Make the next one once this run is over (sbx__run_finish schedules
   * it), or during it if it runs long. */
  if (self->cfg.warm && !self->closing) uv_timer_start(&self->warm_timer, warm_timer_cb, WARM_BUSY_DELAY_MS, 0);
  dbuf_close(&w->obuf);
  dbuf_close(&w->ebuf);
  dbuf_init(&w->obuf, (size_t)lim->output_bytes);
  dbuf_init(&w->ebuf, (size_t)lim->output_bytes);
  return w;
}

void sbx__warm_discard(sbx_run *run) {
  sbx_runner *self = run->runner;
  warm_unlink(self, run);
  run->state = SBX__FINISHED;
  self->backend->cleanup(run);
  bool t = true;
  sbx__close_handle(run, (uv_handle_t *)&run->timer, &t);
  if (!self->closing && self->warm_failures < WARM_MAX_FAILURES && self->cfg.warm)
    uv_timer_start(&self->warm_timer, warm_timer_cb, WARM_RETRY_MS, 0);
}

void sbx__warm_close(sbx_runner *self) {
  uv_timer_stop(&self->warm_timer);
  /* Unused: the backend's cleanup kills and reaps each now, so nothing
   * waits on a signal. */
  while (self->warm) sbx__warm_discard(self->warm);
}
