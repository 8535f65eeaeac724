/* Benchmark: how long resolving a cached environment takes (a built
 * packages environment found by its requirements; a workspace venv found
 * in its folder), and a sandboxed `print(1)` in a venv against the same
 * program in the system environment, interleaved. The venv is made here
 * with `python3 -m venv --without-pip`, under /tmp (reachable by a root
 * server's sandbox uid). */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "env.h"
#include "sandbox.h"

extern char **environ;

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int run_cmd(char *const argv[]) {
  pid_t pid;
  if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ)) return -1;
  int st;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

typedef struct one {
  int done, ok;
  double cpu_ms;
} one;

static void done_cb(void *ud, const sbx_result *r) {
  one *o = ud;
  o->done = 1;
  o->ok = r->outcome == SBX_OK;
  o->cpu_ms = (double)r->cpu_ms;
  if (!o->ok) fprintf(stderr, "run failed: %s %.*s\n", r->error ? r->error : "", (int)r->err_len, r->err);
}

static double timed_run(uv_loop_t *loop, sbx_runner *runner, const sbx_env *env, int *failures, double *cpu) {
  static const char code[] = "print(1)";
  sbx_request req = {.language = "python", .code = code, .code_len = strlen(code), .env = env};
  sbx_callbacks cb = {NULL, done_cb};
  one o = {0};
  unsigned long long t0 = now_ns();
  sbx_run_start(runner, &req, &cb, &o, NULL);
  while (!o.done) uv_run(loop, UV_RUN_ONCE);
  *failures += !o.ok;
  if (cpu) *cpu = o.cpu_ms;
  return (double)(now_ns() - t0) / 1e6;
}

/* A built packages environment as the cache lays it out (the venv itself
 * is not needed to find it). */
static void fake_built(const char *dir) {
  const char *reqs[] = {"tinypkg"};
  char **norm = NULL, *err = NULL, key[65], ver[128];
  int n = env_requirements_normalize(SBX_LANG_PYTHON, reqs, 1, &norm, &err);
  env_interp_version("/usr/bin/python3", ver, sizeof ver);
  env_key(SBX_LANG_PYTHON, "/usr/bin/python3", ver, "https://pypi.org/simple", (const char *const *)norm,
          (size_t)n, key);
  env_strv_free(norm, (size_t)n);
  char *d = xasprintf("%s/%s", dir, key), *m = xasprintf("%s/%s.json", dir, key);
  mkdir(d, 0755);
  FILE *f = fopen(m, "w");
  fprintf(f, "{\"id\":\"%s\",\"kind\":\"packages\",\"language\":\"python\",\"requirements\":[\"tinypkg\"]}", key);
  fclose(f);
  free(d);
  free(m);
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 30;
  char base[] = "/tmp/crucible-bench-env-XXXXXX";
  if (!mkdtemp(base)) return 1;
  chmod(base, 0755);
  char *cache_dir = xasprintf("%s/envs", base), *venv = xasprintf("%s/ws/.venv", base), *ws = xasprintf("%s/ws", base);
  mkdir(ws, 0755);

  /* 1. resolving a cached environment */
  env_cache_config ec = {.dir = cache_dir};
  env_cache *cache = NULL;
  char *err = NULL;
  if (env_cache_new(NULL, &ec, &cache, &err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  fake_built(cache_dir);
  const char *reqs[] = {"tinypkg"};
  int iters = 20000;
  double *t = xcalloc((size_t)iters, sizeof *t);
  for (int i = 0; i < iters; i++) {
    unsigned long long t0 = now_ns();
    env_resolved *r = env_cache_find(cache, SBX_LANG_PYTHON, reqs, 1);
    t[i] = (double)(now_ns() - t0) / 1e3;
    if (!r) {
      fprintf(stderr, "the cached environment was not found\n");
      return 1;
    }
    env_resolved_free(r);
  }
  printf("resolve a cached packages environment (normalise, key, 2 stats, touch) x%d: median %.1f us\n", iters,
         median(t, iters));
  env_cache_close(cache, NULL, NULL);

  char *mk[] = {"/usr/bin/python3", "-m", "venv", "--without-pip", venv, NULL};
  if (run_cmd(mk)) {
    fprintf(stderr, "python3 -m venv failed\n");
    return 1;
  }
  const char *roots[] = {ws, NULL};
  env_local_opts o = {.lang = SBX_LANG_PYTHON, .roots = roots, .reach_uid = -1, .reach_gid = -1};
  env_spec spec = {.kind = ENV_WORKSPACE};
  env_resolved *wenv = NULL;
  for (int i = 0; i < iters; i++) {
    unsigned long long t0 = now_ns();
    env_resolved *r = NULL;
    if (env_resolve_local(&spec, &o, &r, &err)) {
      fprintf(stderr, "%s\n", err);
      return 1;
    }
    t[i] = (double)(now_ns() - t0) / 1e3;
    if (i == iters - 1) wenv = r;
    else env_resolved_free(r);
  }
  printf("resolve a workspace venv (find, check its interpreter link by link, stamp) x%d: median %.1f us\n", iters,
         median(t, iters));
  free(t);

  /* 2. a run in the venv against a run in the system, interleaved */
  uv_loop_t loop;
  uv_loop_init(&loop);
  for (int warm = 0; warm < 2; warm++) {
    sbx_runner runner;
    sbx_config cfg = {.max_concurrent = 4, .warm = warm};
    sbx_runner_init(&runner, &loop, &cfg);
    double *ts = xcalloc((size_t)n, sizeof *ts), *tv = xcalloc((size_t)n, sizeof *tv);
    double *cs = xcalloc((size_t)n, sizeof *cs), *cv = xcalloc((size_t)n, sizeof *cv);
    int failures = 0;
    timed_run(&loop, &runner, NULL, &failures, NULL);
    timed_run(&loop, &runner, env_resolved_sbx(wenv), &failures, NULL);
    for (int i = 0; i < n; i++) {
      ts[i] = timed_run(&loop, &runner, NULL, &failures, &cs[i]);
      tv[i] = timed_run(&loop, &runner, env_resolved_sbx(wenv), &failures, &cv[i]);
    }
    double ms = median(ts, n), mv = median(tv, n), mcs = median(cs, n), mcv = median(cv, n);
    printf("print(1) x%d%s:\n  wall: system median %.2f ms, venv median %.2f ms, overhead %+.1f%%%s\n", n,
           warm ? " (warm sandbox on, as in the server: it serves system runs only)" : " (no warm sandbox)", ms, mv,
           100 * (mv - ms) / ms, failures ? " (SOME RUNS FAILED)" : "");
    if (mcs > 0)
      printf("  cpu of the sandbox: system median %.1f ms, venv median %.1f ms, overhead %+.1f%%\n", mcs, mcv,
             100 * (mcv - mcs) / mcs);
    sbx_runner_close(&runner, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    free(ts);
    free(tv);
    free(cs);
    free(cv);
  }
  uv_loop_close(&loop);
  env_resolved_free(wenv);
  char *rm[] = {"/bin/rm", "-rf", base, NULL};
  run_cmd(rm);
  free(cache_dir);
  free(venv);
  free(ws);
  return 0;
}
