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
#include <sys/stat.h>
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

/* The number a cgroup file of dir starts with, or -1. */
static long long read_num_at(const char *dir, const char *file) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  long long v = -1;
  if (fscanf(f, "%lld", &v) != 1) v = -1;
  fclose(f);
  return v;
}

static long long memory_limit(const sbx__bwrap *bw, const sbx_cg *cg) {
  return read_num_at(cg->dir[SBX_CG_MEM], bw->cg->version == SBX_CG_V2 ? "memory.max" : "memory.limit_in_bytes");
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

static long long pids_limit(const sbx__bwrap *bw, const sbx_cg *cg) {
  return read_num_at(bw->cg->version == SBX_CG_V2 ? cg->dir[0] : cg->dir[SBX_CG_PIDS], "pids.max");
}

/* A one-shot runner's probe makes its run's cgroup instead of a test
 * cgroup it removes: named as asked, in every hierarchy the probe found;
 * adopted into the pool with the default limits, it is what the run takes,
 * and it goes like any other. A name that exists already in a hierarchy
 * (another's) yields no cgroup at all, never one missing a controller, and
 * the other's directory is left alone. */
static void probe_makes_the_run_cgroup(void **state) {
  fixture *fx = *state;
  if (!fx) skip();
  sbx__bwrap *bw = &fx->bw;
  char name[64];
  snprintf(name, sizeof name, "crucible-%ld-%d", (long)getpid(), 900001);
  sbx_cgroups *cg = NULL;
  char *why = NULL;
  sbx_cg made;
  assert_int_equal(sbx_cgroups_probe_as(&cg, &why, name, &made), 0);
  assert_int_equal(cg->version, bw->cg->version);
  for (int i = 0; i < SBX_CG_N; i++) {
    bool want = cg->base[i] && (cg->version == SBX_CG_V1 || i == 0);
    assert_int_equal(made.dir[i] != NULL, want);
    if (!made.dir[i]) continue;
    assert_int_equal(access(made.dir[i], F_OK), 0);
    assert_string_equal(strrchr(made.dir[i], '/') + 1, name);
  }
  char *mem = strdup(made.dir[0]);
  sbx__cgpool_adopt(bw, &made);
  assert_null(made.dir[0]);
  assert_int_equal(bw->npool, 1);
  sbx_limits lim = fx->runner.cfg.defaults;
  sbx_cg taken;
  assert_int_equal(sbx__cgpool_take(bw, &lim, &taken), 0);
  assert_string_equal(taken.dir[0], mem);
  assert_int_equal(memory_limit(bw, &taken), (long long)lim.memory_mb << 20);
  assert_int_equal(pids_limit(bw, &taken), lim.pids);
  sbx__cg_bury(bw, &taken);
  uv_run(&fx->loop, UV_RUN_DEFAULT);
  assert_int_equal(access(mem, F_OK), -1);
  free(mem);
  sbx_cgroups_free(cg);

  /* The name taken in the last hierarchy the probe makes it in. */
  int last = bw->cg->version == SBX_CG_V2 ? 0 : bw->cg->base[SBX_CG_CPU] ? SBX_CG_CPU : SBX_CG_PIDS;
  char other[4096];
  snprintf(other, sizeof other, "%s/%s", bw->cg->base[last], name);
  assert_int_equal(mkdir(other, 0755), 0);
  assert_int_equal(sbx_cgroups_probe_as(&cg, &why, name, &made), 0);
  for (int i = 0; i < SBX_CG_N; i++) assert_null(made.dir[i]);
  for (int i = 0; i < SBX_CG_N; i++) {
    if (i == last || !bw->cg->base[i] || (bw->cg->version == SBX_CG_V2 && i > 0)) continue;
    char mine[4096];
    snprintf(mine, sizeof mine, "%s/%s", bw->cg->base[i], name);
    assert_int_equal(access(mine, F_OK), -1); /* the ones it made are gone */
  }
  assert_int_equal(access(other, F_OK), 0);
  assert_int_equal(rmdir(other), 0);
  sbx_cgroups_free(cg);
}

/* A one-shot runner's busy cgroup is retried after 1 ms, not the server's
 * 10, and removed once it empties. Busy here through a child cgroup (an
 * rmdir fails with EBUSY as it does while the sandbox's namespace init
 * finishes its exit, which is too short to test on). */
static void one_shot_retries_a_busy_cgroup_soon(void **state) {
  fixture *fx = *state;
  if (!fx) skip();
  sbx__bwrap *bw = &fx->bw;
  fx->runner.cfg.one_shot = true;
  char name[64];
  snprintf(name, sizeof name, "crucible-%ld-%d", (long)getpid(), 900002);
  sbx_cg cg;
  assert_int_equal(sbx_cg_create(bw->cg, name, &fx->runner.cfg.defaults, &cg), 0);
  char *dir = strdup(cg.dir[0]);
  char sub[4096];
  snprintf(sub, sizeof sub, "%s/sub", dir);
  assert_int_equal(mkdir(sub, 0755), 0);
  sbx__cg_bury(bw, &cg);
  assert_int_equal(count(bw->graves), 1);
  assert_true(uv_is_active((uv_handle_t *)&bw->reaper));
  assert_true(uv_timer_get_due_in(&bw->reaper) <= 1);
  assert_int_equal(uv_timer_get_repeat(&bw->reaper), 1);
  uv_run(&fx->loop, UV_RUN_NOWAIT);
  assert_int_equal(rmdir(sub), 0);
  uv_run(&fx->loop, UV_RUN_DEFAULT);
  assert_null(bw->graves);
  assert_int_equal(access(dir, F_OK), -1);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(one_shot_retries_a_busy_cgroup_soon, setup, teardown),
      cmocka_unit_test_setup_teardown(probe_makes_the_run_cgroup, setup, teardown),
      cmocka_unit_test_setup_teardown(pool_takes_buries_and_refills, setup, teardown),
      cmocka_unit_test_setup_teardown(pool_drains_when_closing, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
