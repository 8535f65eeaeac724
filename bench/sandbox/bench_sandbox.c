/* Benchmark: sandboxed `python3 -c 'print(1)'` against bare python3 (same
 * run, interleaved), then 16 concurrent sandboxed runs. */
#include <fcntl.h>
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

static double bare(void) {
  char *argv[] = {"/usr/bin/python3", "-c", "print(1)", NULL};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  unsigned long long t0 = now_ns();
  pid_t pid;
  if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ)) abort();
  int st;
  waitpid(pid, &st, 0);
  posix_spawn_file_actions_destroy(&fa);
  return (double)(now_ns() - t0) / 1e6;
}

typedef struct one {
  int done;
  int ok;
} one;

static void done_cb(void *ud, const sbx_result *r) {
  one *o = ud;
  o->done = 1;
  o->ok = r->outcome == SBX_OK;
}

static void closed(sbx_runner *r) {
  (void)r;
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 40;
  uv_loop_t loop;
  uv_loop_init(&loop);
  sbx_runner runner;
  /* The server's configuration, warm sandbox included. */
  sbx_config cfg = {.max_concurrent = 16, .warm = true};
  sbx_runner_init(&runner, &loop, &cfg);
  const char *code = "print(1)";
  sbx_request req = {.language = "python", .code = code, .code_len = strlen(code)};
  sbx_callbacks cb = {NULL, done_cb};
  double *tb = xcalloc((size_t)n, sizeof *tb), *ts = xcalloc((size_t)n, sizeof *ts);
  int failures = 0;
  for (int i = 0; i < n; i++) {
    tb[i] = bare();
    one o = {0};
    unsigned long long t0 = now_ns();
    sbx_run_start(&runner, &req, &cb, &o, NULL);
    while (!o.done) uv_run(&loop, UV_RUN_ONCE);
    ts[i] = (double)(now_ns() - t0) / 1e6;
    failures += !o.ok;
  }
  double mb = bench_median(tb, n), ms = bench_median(ts, n);
  printf("isolation: %s\n", sbx_isolation_name(sbx_runner_isolation(&runner)));
  printf("python3 -c 'print(1)' x%d: bare median %.2f ms, sandboxed median %.2f ms, ratio %.2f%s\n", n,
         mb, ms, ms / mb, failures ? " (SOME RUNS FAILED)" : "");
  one many[16] = {{0}};
  unsigned long long t0 = now_ns();
  for (int i = 0; i < 16; i++) sbx_run_start(&runner, &req, &cb, &many[i], NULL);
  int left = 16;
  while (left) {
    uv_run(&loop, UV_RUN_ONCE);
    left = 0;
    for (int i = 0; i < 16; i++) left += !many[i].done;
  }
  double tot = (double)(now_ns() - t0) / 1e6;
  int ok = 0;
  for (int i = 0; i < 16; i++) ok += many[i].ok;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  printf("16 concurrent sandboxed runs on %ld cores: %.1f ms total (%d ok), vs 16 x bare median %.1f ms\n",
         cores, tot, ok, 16 * mb);
  sbx_runner_close(&runner, closed);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  free(tb);
  free(ts);
  return failures || ok != 16;
}
