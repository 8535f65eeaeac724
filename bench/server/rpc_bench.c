/* Benchmark of the server core: pipelined throughput of trivial requests
 * (crucible/ping) through the real binary over pipes, against a baseline of
 * the same bytes pushed through `cat`, and idle RSS after initialize. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>

typedef struct feed {
  int fd;
  const char *buf;
  size_t len;
} feed;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *writer(void *p) {
  feed *f = p;
  size_t off = 0;
  while (off < f->len) {
    ssize_t n = write(f->fd, f->buf + off, f->len - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    off += (size_t)n;
  }
  close(f->fd);
  return NULL;
}

static char *frame_into(char *p, const char *body) {
  return p + sprintf(p, "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
}

/* Starts argv with pipes on its stdin and stdout; *to_child and
 * *from_child get the parent's ends. Returns the pid. */
static pid_t start_piped(char *const argv[], int *to_child, int *from_child) {
  int in[2], out[2];
  if (pipe(in) || pipe(out)) abort();
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[0]), close(in[1]), close(out[0]), close(out[1]);
    execvp(argv[0], argv);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  *to_child = in[1];
  *from_child = out[0];
  return pid;
}

/* Runs argv with the buffer on stdin; counts "Content-Length" frames on
 * stdout. Returns seconds elapsed; *frames gets the count. */
static double run(char *const argv[], const char *buf, size_t len, long *frames) {
  int to, from;
  pid_t pid = start_piped(argv, &to, &from);
  double t0 = now_s();
  feed f = {to, buf, len};
  pthread_t th;
  pthread_create(&th, NULL, writer, &f);
  static char rb[1 << 16];
  long count = 0;
  const char *pat = "Content-Length";
  size_t match = 0, plen = strlen(pat);
  for (;;) {
    ssize_t n = read(from, rb, sizeof rb);
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; i++) {
      if (rb[i] == pat[match]) {
        if (++match == plen) count++, match = 0;
      } else {
        match = rb[i] == pat[0];
      }
    }
  }
  pthread_join(th, NULL);
  int st;
  waitpid(pid, &st, 0);
  double t = now_s() - t0;
  close(from);
  *frames = count;
  return t;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static long rss_after_initialize(const char *bin) {
  int to, from;
  char *argv[] = {(char *)bin, "serve", NULL};
  pid_t pid = start_piped(argv, &to, &from);
  char msg[512], *p = msg;
  p = frame_into(p, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"capabilities\":{}}}");
  p = frame_into(p, "{\"jsonrpc\":\"2.0\",\"method\":\"initialized\",\"params\":{}}");
  p = frame_into(p, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"crucible/ping\"}");
  if (write(to, msg, (size_t)(p - msg)) < 0) abort();
  char rb[8192];
  size_t got = 0;
  while (got < sizeof rb - 1) {
    ssize_t n = read(from, rb + got, sizeof rb - 1 - got);
    if (n <= 0) break;
    got += (size_t)n;
    rb[got] = 0;
    if (strstr(rb, "\"id\":2")) break;
  }
  usleep(200000);
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE *f = fopen(path, "r");
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "VmRSS:", 6)) kb = atol(line + 6);
  if (f) fclose(f);
  close(to);
  int st;
  waitpid(pid, &st, 0);
  close(from);
  return kb;
}

int main(int argc, char **argv) {
  const char *bin = argc > 1 ? argv[1] : "build/server/crucible";
  long n = argc > 2 ? atol(argv[2]) : 200000;
  int rounds = 5;
  signal(SIGPIPE, SIG_IGN);

  size_t cap = (size_t)n * 96 + 1024;
  char *buf = malloc(cap), *p = buf;
  p = frame_into(p, "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{\"capabilities\":{}}}");
  for (long i = 1; i <= n; i++) {
    char body[96];
    snprintf(body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"method\":\"crucible/ping\"}", i);
    p = frame_into(p, body);
  }
  size_t len = (size_t)(p - buf);

  double t_srv[5], t_cat[5];
  long frames = 0, cat_frames = 0;
  char *srv_argv[] = {(char *)bin, "serve", NULL};
  char *cat_argv[] = {"cat", NULL};
  for (int r = 0; r < rounds; r++) {
    t_cat[r] = run(cat_argv, buf, len, &cat_frames);
    t_srv[r] = run(srv_argv, buf, len, &frames);
    if (frames != n + 1) {
      fprintf(stderr, "bench: expected %ld replies, got %ld\n", n + 1, frames);
      return 1;
    }
  }
  qsort(t_srv, rounds, sizeof(double), cmp_d);
  qsort(t_cat, rounds, sizeof(double), cmp_d);
  double med = t_srv[rounds / 2], base = t_cat[rounds / 2];
  printf("pipelined crucible/ping: %ld requests, median %.3f s over %d rounds -> %.0f requests/s (target >= 50000)\n",
         n, med, rounds, n / med);
  printf("baseline (same bytes through cat): median %.3f s -> server costs %.1fx the pipe alone\n", base,
         med / base);
  long kb = rss_after_initialize(bin);
  printf("idle RSS after initialize: %ld KiB = %.2f MiB (target <= 8 MiB)\n", kb, kb / 1024.0);
  /* The baseline: the same shared libraries loaded by a program that does
   * nothing (libs_rss, built next to this benchmark). */
  char self_dir[4096], cmd[4200];
  ssize_t sn = readlink("/proc/self/exe", self_dir, sizeof self_dir - 1);
  if (sn > 0) {
    self_dir[sn] = 0;
    char *slash = strrchr(self_dir, '/');
    if (slash) *slash = 0;
    snprintf(cmd, sizeof cmd, "%s/libs_rss", self_dir);
    FILE *pf = popen(cmd, "r");
    long base_kb = 0;
    if (pf && fscanf(pf, "%ld", &base_kb) == 1 && base_kb > 0)
      printf("baseline: a do-nothing program linking the same libraries: %ld KiB = %.2f MiB -> crucible's own "
             "share %.2f MiB\n", base_kb, base_kb / 1024.0, (kb - base_kb) / 1024.0);
    if (pf) pclose(pf);
  }
  free(buf);
  return 0;
}
