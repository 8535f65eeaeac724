/* The bwrap backend's cgroup pool and reaper on this machine's cgroups (no
 * sandbox is started; skipped where no cgroup hierarchy is usable): cgroups
 * made ahead, taken with the run's own limits, and removed once buried. */
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

#include "internal.h"

typedef struct fixture {
  uv_loop_t loop;
  sbx_runner runner; /* only what the pool reads: cfg.defaults, closing */
  sbx__bwrap bw;
} fixture;

static int setup(void **state) {
  fixture *fx = calloc(1, sizeof *fx);
  char *why = NULL;
  if (sbx_cgroups_probe(&fx->bw.cg, &why) != 0) {
    free(why);
    free(fx);
    *state = NULL;
    return 0;
  }
  uv_loop_init(&fx->loop);
  fx->runner.loop = &fx->loop;
  sbx_limits_default(&fx->runner.cfg.defaults);
  fx->bw.runner = &fx->runner;
  uv_timer_init(&fx->loop, &fx->bw.reaper);
  *state = fx;
  return 0;
}

static int teardown(void **state) {
  fixture *fx = *state;
  if (!fx) return 0;
  /* what the pool holds (or a failed test left): bury it, let the reaper
   * remove it, and make no more */
  fx->runner.closing = 1;
  sbx__cgpool_drain(&fx->bw);
  uv_run(&fx->loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&fx->bw.reaper, NULL);
  uv_run(&fx->loop, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&fx->loop);
  sbx_cgroups_free(fx->bw.cg);
  free(fx);
  return rc;
}

static bool cg_exists(const sbx_cg *cg) {
  bool any = false;
  for (int i = 0; i < SBX_CG_N; i++) {
    if (!cg->dir[i]) continue;
    if (access(cg->dir[i], F_OK) != 0) return false;
    any = true;
  }
  return any;
}

static int count(const sbx__cg_entry *e) {
  int n = 0;
  for (; e; e = e->next) n++;
  return n;
}

/* Fills the pool; returns how many cgroups it made (at least one). */
static int fill(sbx__bwrap *bw) {
  sbx__cgpool_fill(bw);
  assert_true(bw->npool > 0);
  assert_int_equal(count(bw->pool), bw->npool);
  for (sbx__cg_entry *e = bw->pool; e; e = e->next) assert_true(cg_exists(&e->cg));
  return bw->npool;
}

static long long memory_limit(const sbx__bwrap *bw, const sbx_cg *cg) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", cg->dir[SBX_CG_MEM],
           bw->cg->version == SBX_CG_V2 ? "memory.max" : "memory.limit_in_bytes");
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  long long v = -1;
  if (fscanf(f, "%lld", &v) != 1) v = -1;
  fclose(f);
  return v;
}

/* Fill makes the pool's cgroups; take hands them out (the run's limits
 * written when they differ from the defaults) until the pool is empty;
 * buried cgroups are removed by the reaper, which refills the pool. */
static void pool_takes_buries_and_refills(void **state) {
  fixture *fx = *state;
  if (!fx) skip();
  sbx__bwrap *bw = &fx->bw;
  int made = fill(bw);

  sbx_cg taken[16];
  int n = 0;
  sbx_limits lim = fx->runner.cfg.defaults;
  assert_int_equal(sbx__cgpool_take(bw, &lim, &taken[n++]), 0);
  assert_int_equal(bw->npool, made - 1);
  assert_true(cg_exists(&taken[0]));
  if (taken[0].dir[SBX_CG_MEM])
    assert_int_equal(memory_limit(bw, &taken[0]), (long long)lim.memory_mb << 20);
  lim.memory_mb = 100;
  assert_int_equal(sbx__cgpool_take(bw, &lim, &taken[n++]), 0);
  if (taken[1].dir[SBX_CG_MEM]) assert_int_equal(memory_limit(bw, &taken[1]), 100LL << 20);
  while (bw->npool) assert_int_equal(sbx__cgpool_take(bw, &lim, &taken[n++]), 0);
  assert_int_equal(n, made);
  sbx_cg none;
  assert_int_equal(sbx__cgpool_take(bw, &lim, &none), -ENOENT);

  char *dirs[16];
  for (int i = 0; i < n; i++) dirs[i] = strdup(taken[i].dir[0] ? taken[i].dir[0] : taken[i].dir[1]);
  for (int i = 0; i < n; i++) {
    sbx__cg_bury(bw, &taken[i]);
    assert_null(taken[i].dir[0]);
  }
  assert_int_equal(count(bw->graves), n);
  assert_true(uv_is_active((uv_handle_t *)&bw->reaper));
  uv_run(&fx->loop, UV_RUN_DEFAULT); /* the reaper stops once no grave is left */
  assert_null(bw->graves);
  for (int i = 0; i < n; i++) {
    assert_int_equal(access(dirs[i], F_OK), -1);
    free(dirs[i]);
  }
  assert_int_equal(bw->npool, made); /* refilled */
}

/* Closing: nothing is made ahead any more, and the pool drains into
 * graves the reaper removes. */
static void pool_drains_when_closing(void **state) {
  fixture *fx = *state;
  if (!fx) skip();
  sbx__bwrap *bw = &fx->bw;
  int made = fill(bw);
  char *dirs[16];
  int n = 0;
  for (sbx__cg_entry *e = bw->pool; e; e = e->next) dirs[n++] = strdup(e->cg.dir[0] ? e->cg.dir[0] : e->cg.dir[1]);
  fx->runner.closing = 1;
  sbx__cgpool_drain(bw);
  assert_int_equal(bw->npool, 0);
  assert_null(bw->pool);
  assert_int_equal(count(bw->graves), made);
  uv_run(&fx->loop, UV_RUN_DEFAULT);
  assert_null(bw->graves);
  assert_int_equal(bw->npool, 0); /* not refilled while closing */
  for (int i = 0; i < n; i++) {
    assert_int_equal(access(dirs[i], F_OK), -1);
    free(dirs[i]);
  }
  /* burying nothing is a no-op */
  sbx_cg empty = {0};
  sbx__cg_bury(bw, &empty);
  assert_null(bw->graves);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(pool_takes_buries_and_refills, setup, teardown),
      cmocka_unit_test_setup_teardown(pool_drains_when_closing, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
