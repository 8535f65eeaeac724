/* Benchmark: sandboxed `python3 -c 'print(1)'` against bare python3 (same
 * run, interleaved), then 16 concurrent sandboxed runs.
 *
 * With --backend docker [--image NAME]: bare, the bwrap backend, the docker
 * backend and `docker run --rm --network none IMAGE python3 -c 'print(1)'`
 * (docker.io's client, when installed), interleaved; the concurrent runs go
 * to the docker backend. */
#include <fcntl.h>
#include <stdbool.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "../stats.h"
#include "sandbox.h"

extern char **environ;

static double spawn_wait(char **argv) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  unsigned long long t0 = now_ns();
  pid_t pid;
  if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ)) abort();
  int st;
  waitpid(pid, &st, 0);
  posix_spawn_file_actions_destroy(&fa);
  return (double)(now_ns() - t0) / 1e6;
}

static double bare(void) {
  char *argv[] = {"/usr/bin/python3", "-c", "print(1)", NULL};
  return spawn_wait(argv);
}

typedef struct one {
  int done;
  int ok;
} one;

static void done_cb(void *ud, const sbx_result *r) {
  one *o = ud;
  o->done = 1;
  o->ok = r->outcome == SBX_OK;
  if (!o->ok)
    fprintf(stderr, "run failed: %s: %s%.*s\n", sbx_outcome_name(r->outcome), r->error ? r->error : "",
            (int)r->err_len, r->err);
}

static void closed(sbx_runner *r) {
  (void)r;
}

/* One print(1) through runner, in ms; *ok set. */
static double one_run(uv_loop_t *loop, sbx_runner *runner, int *ok) {
  const char *code = "print(1)";
  sbx_request req = {.language = "python", .code = code, .code_len = strlen(code)};
  sbx_callbacks cb = {NULL, done_cb};
  one o = {0};
  unsigned long long t0 = now_ns();
  sbx_run_start(runner, &req, &cb, &o, NULL);
  while (!o.done) uv_run(loop, UV_RUN_ONCE);
  *ok = o.ok;
  return (double)(now_ns() - t0) / 1e6;
}

int main(int argc, char **argv) {
  int n = 40;
  bool docker = false;
  const char *image = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--backend") && i + 1 < argc) docker = !strcmp(argv[++i], "docker");
    else if (!strcmp(argv[i], "--image") && i + 1 < argc) image = argv[++i];
    else n = atoi(argv[i]);
  }
  if (n <= 0) n = 40;
  uv_loop_t loop;
  uv_loop_init(&loop);
  sbx_runner runner, bwrap;
  /* The server's configuration, warm sandbox included. */
  sbx_config cfg = {.max_concurrent = 16, .warm = true};
  sbx_runner_init(&bwrap, &loop, &cfg);
  if (docker) {
    sbx_config dc = {.backend = SBX_BACKEND_DOCKER, .image = image, .max_concurrent = 16, .warm = true};
    sbx_runner_init(&runner, &loop, &dc);
    if (sbx_runner_problem(&runner)) printf("docker backend: %s\n", sbx_runner_problem(&runner));
  }
  sbx_runner *main_runner = docker ? &runner : &bwrap;
  const char *img = image ? image : SBX_DOCKER_IMAGE_DEFAULT;
  char *cli[] = {"/usr/bin/docker", "run", "--rm", "--network", "none", (char *)img, "python3", "-c", "print(1)", NULL};
  bool have_cli = docker && access(cli[0], X_OK) == 0;
  sbx_request req = {.language = "python", .code = "print(1)", .code_len = 8};
  sbx_callbacks cb = {NULL, done_cb};
  double *tb = xcalloc((size_t)n, sizeof *tb), *ts = xcalloc((size_t)n, sizeof *ts);
  double *td = xcalloc((size_t)n, sizeof *td), *tc = xcalloc((size_t)n, sizeof *tc);
  int failures = 0, ok;
  for (int i = 0; i < n; i++) {
    tb[i] = bare();
    ts[i] = one_run(&loop, &bwrap, &ok);
    failures += !ok;
    if (docker) {
      td[i] = one_run(&loop, &runner, &ok);
      failures += !ok;
      if (have_cli) tc[i] = spawn_wait(cli);
    }
  }
  double mb = bench_median(tb, n), ms = bench_median(ts, n);
  printf("isolation: %s\n", sbx_isolation_name(sbx_runner_isolation(main_runner)));
  printf("python3 -c 'print(1)' x%d: bare median %.2f ms, sandboxed median %.2f ms, ratio %.2f%s\n", n,
         mb, ms, ms / mb, failures ? " (SOME RUNS FAILED)" : "");
  if (docker) {
    double md = bench_median(td, n);
    printf("docker backend (%s) median %.2f ms: %.2f x bwrap, %.2f x bare\n", img, md, md / ms, md / mb);
    if (have_cli) {
      double mc = bench_median(tc, n);
      printf("docker run --rm --network none median %.2f ms: docker backend / docker run = %.2f\n", mc, md / mc);
    }
  }
  one many[16] = {{0}};
  unsigned long long t0 = now_ns();
  for (int i = 0; i < 16; i++) sbx_run_start(main_runner, &req, &cb, &many[i], NULL);
  int left = 16;
  while (left) {
    uv_run(&loop, UV_RUN_ONCE);
    left = 0;
    for (int i = 0; i < 16; i++) left += !many[i].done;
  }
  double tot = (double)(now_ns() - t0) / 1e6;
  ok = 0;
  for (int i = 0; i < 16; i++) ok += many[i].ok;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  printf("16 concurrent sandboxed runs on %ld cores: %.1f ms total (%d ok), vs 16 x bare median %.1f ms\n",
         cores, tot, ok, 16 * mb);
  sbx_runner_close(&bwrap, closed);
  if (docker) sbx_runner_close(&runner, closed);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  free(tb);
  free(ts);
  free(td);
  free(tc);
  return failures || ok != 16;
}
