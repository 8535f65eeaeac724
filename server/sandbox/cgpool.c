/* The bwrap backend's cgroups off the critical path: a small pool made
 * ahead of the runs that take them, and a reaper that removes a finished
 * run's cgroup (retrying while it is busy) after its result went out. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup.h"
#include "common.h"
#include "internal.h"
#include "log.h"

/* Cgroups made ahead of the runs that take them: mkdir and the limit writes
 * then happen between runs instead of while a run waits. A few cover the
 * usual one-run-at-a-time use; a burst beyond them creates inline. */
#define CG_POOL 4
/* When cgroup removal and pool refills run after a run finished, and how
 * often a busy cgroup is retried. */
#define REAPER_DELAY_MS 10
#define REAPER_REPEAT_MS 50

static void reaper_cb(uv_timer_t *t);

/* Starts the reaper unless it runs already. The delay lets the loop first
 * send what the finished run produced (UV_RUN_ONCE runs timers that are
 * due at its end, so 0 would still hold up the caller). A one-shot runner
 * has sent its result already and its process exits once the cgroup is
 * gone, so it retries after 1 ms, then 2, 4, ... up to the usual interval:
 * the cgroup is usually busy only while the sandbox's namespace init
 * finishes its exit (it tears down its mount namespace after closing the
 * output pipes whose end finished the run), which takes a few ms, and a
 * 10 ms first wait was a quarter of the one-shot runs' exits. */
static void reaper_start(sbx__bwrap *bw) {
  if (uv_is_active((uv_handle_t *)&bw->reaper)) return;
  if (bw->runner->cfg.one_shot) uv_timer_start(&bw->reaper, reaper_cb, 1, 1);
  else uv_timer_start(&bw->reaper, reaper_cb, REAPER_DELAY_MS, REAPER_REPEAT_MS);
}

static void to_graves(sbx__bwrap *bw, sbx__cg_entry *g) {
  g->since = now_ms();
  g->next = bw->graves;
  bw->graves = g;
  reaper_start(bw);
}

void sbx__cg_bury(sbx__bwrap *bw, sbx_cg *cg) {
  if (!sbx_cg_path(cg)) return;
  sbx_cg_kill(cg, SIGKILL);
  /* A one-shot runner has no result left to send first: its cgroup goes
   * now when it is empty, instead of after the reaper's delay, which its
   * exit would wait for. */
  if (bw->runner->cfg.one_shot && sbx_cg_remove(cg) == 0) return;
  sbx__cg_entry *g = xcalloc(1, sizeof *g);
  g->cg = *cg;
  memset(cg, 0, sizeof *cg);
  to_graves(bw, g);
}

int sbx__cgpool_take(sbx__bwrap *bw, const sbx_limits *lim, sbx_cg *out) {
  while (bw->pool) {
    sbx__cg_entry *p = bw->pool;
    bw->pool = p->next;
    bw->npool--;
    const sbx_limits *def = &bw->runner->cfg.defaults;
    int err = 0;
    if (lim->memory_mb != def->memory_mb || lim->pids != def->pids)
      err = sbx_cg_set_limits(bw->cg, &p->cg, lim);
    if (!err) {
      *out = p->cg;
      free(p);
      return 0;
    }
    to_graves(bw, p);
  }
  return -ENOENT;
}

void sbx__cgpool_adopt(sbx__bwrap *bw, sbx_cg *cg) {
  if (!sbx_cg_path(cg)) return;
  sbx__cg_entry *p = xcalloc(1, sizeof *p);
  p->cg = *cg;
  memset(cg, 0, sizeof *cg);
  if (sbx_cg_set_limits(bw->cg, &p->cg, &bw->runner->cfg.defaults)) {
    /* The run creates its own instead, and says why it cannot. */
    to_graves(bw, p);
    return;
  }
  p->next = bw->pool;
  bw->pool = p;
  bw->npool++;
}

void sbx__cgpool_fill(sbx__bwrap *bw) {
  /* A one-shot runner's single run makes its own cgroup. */
  while (bw->cg && !bw->runner->closing && !bw->runner->cfg.one_shot && bw->npool < CG_POOL) {
    sbx__cg_entry *p = xcalloc(1, sizeof *p);
    char *name = sbx_cg_run_name(getpid(), sbx__next_seq());
    int err = sbx_cg_create(bw->cg, name, &bw->runner->cfg.defaults, &p->cg);
    free(name);
    if (err) {
      free(p);
      return; /* the run that needs one creates it inline and says why */
    }
    p->next = bw->pool;
    bw->pool = p;
    bw->npool++;
  }
}

void sbx__cgpool_drain(sbx__bwrap *bw) {
  while (bw->pool) {
    sbx__cg_entry *p = bw->pool;
    bw->pool = p->next;
    bw->npool--;
    sbx__cg_bury(bw, &p->cg);
    free(p);
  }
}

static void reaper_cb(uv_timer_t *t) {
  sbx__bwrap *bw = container_of(t, sbx__bwrap, reaper);
  sbx__bw_reap_orphans(bw); /* a zombie init holds its cgroup */
  unsigned long long now = now_ms();
  for (sbx__cg_entry **pg = &bw->graves; *pg;) {
    sbx__cg_entry *g = *pg;
    sbx_cg_kill(&g->cg, SIGKILL);
    /* Give up after a minute: a task stuck in the kernel; the next
     * startup sweep removes it (its name holds our pid). */
    if (sbx_cg_remove(&g->cg) == 0 || now - g->since > 60000) {
      if (sbx_cg_path(&g->cg))
        log_warn("sandbox: cgroup %s still busy, left for the next sweep", sbx_cg_path(&g->cg));
      *pg = g->next;
      sbx_cg_free(&g->cg);
      free(g);
    } else {
      pg = &g->next;
    }
  }
  sbx__cgpool_fill(bw);
  if (!bw->graves) {
    uv_timer_stop(&bw->reaper);
    sbx__bw_maybe_closed(bw);
    return;
  }
  uint64_t every = uv_timer_get_repeat(t);
  if (every < REAPER_REPEAT_MS) uv_timer_set_repeat(t, every * 2 < REAPER_REPEAT_MS ? every * 2 : REAPER_REPEAT_MS);
}
