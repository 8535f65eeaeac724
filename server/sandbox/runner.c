/* The run scheduler: the runner's public API, its queue shared fairly
 * between owners, the pump that starts queued runs on a backend, and
 * closing. A run's life once started is in runio.c; the sandboxes are the
 * backend's (internal.h: the contract; bwrap: backend_bwrap.c, spawn.c). */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "internal.h"
#include "log.h"

/* ---- lists ---- */

/* Appends r at *tail, or pushes it at *head when tail is NULL. */
static void list_push(sbx_run **head, sbx_run **tail, sbx_run *r) {
  r->next = NULL;
  r->prev = tail ? *tail : NULL;
  if (tail) {
    if (*tail) (*tail)->next = r;
    else *head = r;
    *tail = r;
  } else {
    r->next = *head;
    if (*head) (*head)->prev = r;
    *head = r;
  }
}

static void list_del(sbx_run **head, sbx_run **tail, sbx_run *r) {
  if (r->prev) r->prev->next = r->next;
  else *head = r->next;
  if (r->next) r->next->prev = r->prev;
  else if (tail) *tail = r->prev;
  r->next = r->prev = NULL;
}

void sbx__live_add(sbx_runner *self, sbx_run *run) {
  run->state = SBX__RUNNING;
  list_push(&self->live, NULL, run);
  self->nlive++;
}

void sbx__live_del(sbx_runner *self, sbx_run *run) {
  list_del(&self->live, NULL, run);
  self->nlive--;
}

/* ---- setup ---- */

/* Names are crucible-<pid>-<seq> with one counter per process: two runners
 * in one process (the server's and the doctor's) never pick the same name. */
unsigned long long sbx__next_seq(void) {
  static atomic_ullong seq;
  return atomic_fetch_add(&seq, 1) + 1;
}

const sbx__backend *const sbx__backends[] = {
    [SBX_BACKEND_BWRAP] = &sbx__bwrap_backend,
    [SBX_BACKEND_DOCKER] = &sbx__docker_backend,
};

int sbx_runner_init(sbx_runner *self, uv_loop_t *loop, const sbx_config *config) {
  sbx_backend_kind k = config ? config->backend : SBX_BACKEND_BWRAP;
  if ((unsigned)k >= ARRAY_LEN(sbx__backends) || !sbx__backends[k]) k = SBX_BACKEND_BWRAP;
  return sbx__runner_init_with(self, loop, config, sbx__backends[k]);
}

int sbx__runner_init_with(sbx_runner *self, uv_loop_t *loop, const sbx_config *config,
                          const sbx__backend *backend) {
  memset(self, 0, sizeof *self);
  self->loop = loop;
  self->backend = backend;
  if (config) self->cfg = *config;
  if (self->cfg.max_concurrent <= 0) self->cfg.max_concurrent = 4;
  if (self->cfg.max_queued <= 0) self->cfg.max_queued = 1024;
  if (self->cfg.max_queued_per_owner <= 0) self->cfg.max_queued_per_owner = 64;
  sbx_limits def, max;
  sbx_limits_default(&def);
  sbx_limits_max(&max);
  sbx_limits_fill(&self->cfg.max, &max);
  sbx_limits_fill(&self->cfg.defaults, &def);
  /* The copy keeps no borrowed strings: the backend reads them from config. */
  self->cfg.bwrap = NULL;
  self->cfg.image = self->cfg.docker_host = NULL;
  self->cfg.docker_hosts = NULL;
  self->cfg.docker_cert_path = NULL;
  memset(self->cfg.interpreters, 0, sizeof self->cfg.interpreters);
  /* Never host root: 0 (or unset) means the default id. */
  long want_uid = config && config->host_uid > 0 ? config->host_uid : SBX_HOST_ID_DEFAULT;
  long want_gid = config && config->host_gid > 0 ? config->host_gid : SBX_HOST_ID_DEFAULT;
  self->set_ids = geteuid() == 0;
  self->host_uid = self->set_ids ? (uid_t)want_uid : geteuid();
  self->host_gid = self->set_ids ? (gid_t)want_gid : getegid();
  backend->init(self, config);
  uv_timer_init(loop, &self->warm_timer);
  /* The first warm sandbox comes a moment after startup, from the loop. */
  if (!self->setup_error && self->cfg.warm) sbx__warm_schedule(self);
  uv_unref((uv_handle_t *)&self->warm_timer);
  return 0;
}

const char *sbx_runner_problem(const sbx_runner *self) {
  return self->setup_error ? self->setup_error : self->note;
}

void sbx_runner_host_ids(const sbx_runner *self, long *uid, long *gid) {
  *uid = (long)self->host_uid;
  *gid = (long)self->host_gid;
}

sbx_isolation sbx_runner_isolation(const sbx_runner *self) {
  return self->iso;
}

/* ---- the queue ---- */

static int count_owner(const sbx_run *list, const void *owner) {
  int n = 0;
  for (const sbx_run *r = list; r; r = r->next) n += r->owner == owner;
  return n;
}

/* How long ago owner's last run started, in starts (SBX_SERVED_RING when
 * longer ago than the ring remembers, or never). */
static int served_age(const sbx_runner *self, const void *owner) {
  for (int age = 0; age < SBX_SERVED_RING && age < (int)self->nserved; age++)
    if (self->served[(self->nserved - 1 - (unsigned)age) % SBX_SERVED_RING] == owner) return age;
  return SBX_SERVED_RING;
}

/* The queued run to start next: the oldest of the owner with the fewest
 * live runs, and among those the owner served longest ago. */
static sbx_run *pick_fair(sbx_runner *self) {
  sbx_run *best = NULL;
  int best_live = 0, best_age = 0;
  for (sbx_run *r = self->queue_head; r; r = r->next) {
    bool seen = false; /* an earlier run of the same owner was weighed */
    for (sbx_run *q = self->queue_head; q != r && !seen; q = q->next) seen = q->owner == r->owner;
    if (seen) continue;
    int live = count_owner(self->live, r->owner), age = served_age(self, r->owner);
    if (!best || live < best_live || (live == best_live && age > best_age))
      best = r, best_live = live, best_age = age;
  }
  if (best) self->served[self->nserved++ % SBX_SERVED_RING] = best->owner;
  return best;
}

void sbx__pump(sbx_runner *self) {
  while (!self->closing && self->queue_head && self->nlive < self->cfg.max_concurrent) {
    sbx_run *run = pick_fair(self);
    list_del(&self->queue_head, &self->queue_tail, run);
    self->nqueued--;
    sbx__live_add(self, run);
    if (self->backend->prepare(run)) {
      /* Never ran: finish as "not started". */
      sbx__live_del(self, run);
      run->state = SBX__QUEUED;
      sbx__run_defer_finish(run);
    } else {
      sbx__run_bind(run);
    }
  }
}

sbx_run *sbx__run_alloc(sbx_runner *self, sbx_lang lang, const sbx_limits *lim) {
  sbx_run *run = self->backend->run_new(self);
  run->runner = self;
  run->lang = lang;
  run->limits = *lim;
  run->name = sbx_cg_run_name(getpid(), sbx__next_seq());
  dbuf_init(&run->obuf, (size_t)lim->output_bytes);
  dbuf_init(&run->ebuf, (size_t)lim->output_bytes);
  uv_timer_init(self->loop, &run->timer);
  run->timer.data = run;
  run->open_handles = 1;
  run->state = SBX__QUEUED;
  self->pending_handles++;
  return run;
}

/* Crucible's own programs get at least the built-in limits. */
static void own_limits(sbx_limits *lim) {
  sbx_limits b;
  sbx_limits_default(&b);
  if (lim->timeout_ms < b.timeout_ms) lim->timeout_ms = b.timeout_ms;
  if (lim->memory_mb < b.memory_mb) lim->memory_mb = b.memory_mb;
  if (lim->cpu_seconds < b.cpu_seconds) lim->cpu_seconds = b.cpu_seconds;
  if (lim->pids < b.pids) lim->pids = b.pids;
  if (lim->output_bytes < b.output_bytes) lim->output_bytes = b.output_bytes;
  if (lim->disk_mb < b.disk_mb) lim->disk_mb = b.disk_mb;
}

int sbx_run_start(sbx_runner *self, const sbx_request *req, const sbx_callbacks *cb, void *ud,
                  sbx_run **out) {
  if (out) *out = NULL;
  if (self->closing) return -ESHUTDOWN;
  sbx_lang lang;
  if (sbx_lang_parse(req->language ? req->language : lang_name(LANG_DEFAULT), &lang)) return -EINVAL;
  sbx_limits lim = req->limits;
  const sbx_limits *mx = &self->cfg.max;
  if (!req->own && (lim.timeout_ms > mx->timeout_ms || lim.memory_mb > mx->memory_mb ||
                    lim.cpu_seconds > mx->cpu_seconds || lim.pids > mx->pids ||
                    lim.output_bytes > mx->output_bytes || lim.disk_mb > mx->disk_mb))
    return -EINVAL;
  sbx_limits_fill(&lim, &self->cfg.defaults);
  if (req->own) own_limits(&lim);
  if (self->nqueued >= self->cfg.max_queued ||
      count_owner(self->queue_head, req->owner) >= self->cfg.max_queued_per_owner)
    return -EAGAIN;
  /* Only a backend that runs images takes one. */
  if (req->env && req->env->image && !self->backend->image) return -EINVAL;
  /* Warm sandboxes are made for the system environment only. */
  if (!req->env) sbx__warm_note(self, lang, now_ms());
  /* ...and for a program a pre-started interpreter runs as a cold one. */
  bool warm_ok = !req->env && (self->cfg.no_prestart || sbx__prelude_accepts(lang, req->code, req->code_len));
  sbx_run *warm = warm_ok ? sbx__warm_take(self, lang, &lim) : NULL;
  sbx_run *run = warm ? warm : sbx__run_alloc(self, lang, &lim);
  run->cb = *cb;
  run->ud = ud;
  run->limits = lim;
  run->line_offset = req->line_offset;
  run->owner = req->owner;
  run->env = sbx_env_dup(req->env);
  run->code = xmalloc(req->code_len + 1);
  if (req->code_len) memcpy(run->code, req->code, req->code_len);
  run->code[req->code_len] = '\0';
  run->code_len = req->code_len;
  if (req->stdin_data && req->stdin_len) {
    run->stdin_data = xmalloc(req->stdin_len);
    memcpy(run->stdin_data, req->stdin_data, req->stdin_len);
    run->stdin_len = req->stdin_len;
  }
  if (out) *out = run;
  if (warm) {
    sbx__live_add(self, run);
    sbx__run_bind(run);
    return 0;
  }
  if (self->setup_error) {
    run->error = xstrdup(self->setup_error);
    sbx__run_defer_finish(run);
    return 0;
  }
  list_push(&self->queue_head, &self->queue_tail, run);
  self->nqueued++;
  sbx__pump(self);
  return 0;
}

void sbx_run_cancel(sbx_run *run) {
  if (!run || run->state == SBX__FINISHED || run->cancelled) return;
  run->cancelled = true;
  if (run->state == SBX__QUEUED) {
    sbx_runner *self = run->runner;
    if (run->phase != SBX__T_DEFER) {
      list_del(&self->queue_head, &self->queue_tail, run);
      self->nqueued--;
      sbx__run_defer_finish(run);
    }
    return;
  }
  sbx__run_kill(run);
}

/* ---- closing ---- */

void sbx__runner_backend_closed(sbx_runner *self) {
  if (--self->closing_parts > 0) return;
  free(self->setup_error);
  free(self->note);
  self->setup_error = self->note = NULL;
  self->closing = 3;
  if (self->close_cb) self->close_cb(self);
}

static void warm_timer_closed(uv_handle_t *h) {
  sbx__runner_backend_closed(container_of((uv_timer_t *)h, sbx_runner, warm_timer));
}

void sbx__runner_maybe_closed(sbx_runner *self) {
  if (self->closing != 1 || self->pending_handles) return;
  self->closing = 2;
  self->closing_parts = 2;
  uv_close((uv_handle_t *)&self->warm_timer, warm_timer_closed);
  self->backend->close(self);
}

void sbx_runner_close(sbx_runner *self, void (*cb)(sbx_runner *)) {
  if (self->closing) return;
  self->closing = 1;
  self->close_cb = cb;
  sbx__warm_close(self);
  while (self->queue_head) sbx_run_cancel(self->queue_head);
  for (sbx_run *r = self->live; r; r = r->next) sbx_run_cancel(r);
  sbx__runner_maybe_closed(self);
}

/* ---- images ---- */

const char *sbx_runner_image(const sbx_runner *self) {
  return self->backend->default_image ? self->backend->default_image(self) : NULL;
}

int sbx_image_ensure(sbx_runner *self, const char *image, const sbx_image_cbs *cbs, void *ud, char **id,
                     sbx_image_wait **wait, char **err) {
  *id = NULL;
  *err = NULL;
  if (wait) *wait = NULL;
  if (!self->backend->image) return -ENOTSUP;
  if (self->closing) {
    *err = xstrdup("shutting down");
    return -ESHUTDOWN;
  }
  return self->backend->image(self, image, cbs, ud, id, wait, err);
}

void sbx_image_wait_cancel(sbx_image_wait *wait) {
  if (wait) wait->cancel(wait);
}
