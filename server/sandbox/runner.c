/* The run scheduler: spawns bwrap (posix_spawn, reaped on SIGCHLD), joins the sandbox to its
 * cgroup and applies rlimits while bwrap waits on --block-fd, streams the
 * output, enforces the limits, and reports one result per run. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bwrap.h"
#include "cgroup.h"
#include "common.h"
#include "dbuf.h"
#include "log.h"
#include "procs.h"
#include "sandbox.h"
#include "seccomp_filter.h"
#include "launch.h"
#include "traceback.h"
#include "verdict.h"

/* Time between SIGTERM and SIGKILL when the wall time is up. */
#define GRACE_MS 300
/* How long output may keep arriving after bwrap exited (a grandchild
 * holding the pipe dies with the pid namespace; this only bounds it). */
#define DRAIN_MS 1000
/* Output beyond this multiple of outputBytes (both streams) kills the run. */
#define HARD_OUTPUT_FACTOR 4
#define MAX_DIAGS 16
/* Descriptors a bwrap child gets: 10 fixed, one per masked /proc file. */
#define MAX_CHILD_FDS 32
/* Cgroups made ahead of the runs that take them: mkdir and the limit writes
 * then happen between runs instead of while a run waits. A few cover the
 * usual one-run-at-a-time use; a burst beyond them creates inline. */
#define CG_POOL 4
/* When cgroup removal and pool refills run after a run finished. */
#define REAPER_DELAY_MS 10
/* When a taken warm sandbox is replaced, and after how many warm sandboxes
 * that died unused the runner stops making them. */
#define WARM_DELAY_MS 5
#define WARM_MAX_FAILURES 3
/* Runner-wide data fed to every sandbox. */
#define SBX_PASSWD "sandbox:x:1000:1000:sandbox:" "/sandbox" ":/bin/sh\n" \
                   "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
#define SBX_GROUP "sandbox:x:1000:\nnogroup:x:65534:\n"
#define SBX_HOSTS "127.0.0.1 localhost\n::1 localhost\n"

/* RUN_WARM: spawned ahead with the default limits, bwrap's setup done up to
 * reading the program's text; not in any list but runner->warm. */
enum run_state { RUN_QUEUED, RUN_RUNNING, RUN_FINISHED, RUN_WARM };
enum timer_phase { T_NONE, T_DEFER, T_WALL, T_GRACE, T_DRAIN };

struct sbx_cg_grave {
  sbx_cg cg;
  unsigned long long since;
  struct sbx_cg_grave *next;
};

/* Shared by every run: the seccomp program, found once. */
static char *g_bpf;
static size_t g_bpf_len;
static int g_bpf_err = 1; /* 1: not built yet */

struct sbx_run {
  sbx_runner *runner;
  sbx_run *next, *prev;
  sbx_callbacks cb;
  void *ud;
  enum run_state state;
  sbx_lang lang;
  sbx_limits limits;
  int line_offset;
  const void *owner;
  sbx_env *env; /* the request's environment (a copy), NULL: the system only */
  char *code, *stdin_data;
  size_t code_len, stdin_len;
  char *name;

  uv_pipe_t out, err, status;
  uv_pipe_t code_pipe; /* the program's text goes to bwrap's --file through this pipe */
  uv_write_t code_req;
  bool code_open;
  int stdin_fd;        /* memfd behind the program's stdin, filled when the run is bound */
  bool bound;          /* a request is attached: limits applied, program sent, timer running */
  uv_timer_t timer;
  enum timer_phase phase;
  int open_handles;
  bool proc_alive, out_open, err_open, status_open;
  int block_wfd;
  pid_t pid, child;

  sbx_cg cg;
  bool in_cgroup;
  sbx_isolation iso;

  dbuf obuf, ebuf;
  unsigned long long total_out;
  bool truncated;
  char status_buf[1024];
  size_t status_len;
  bool exec_seen;  /* bwrap reported "exit-code": the program was exec'd */
  bool exited;
  long long exit_status;
  int term_signal;
  unsigned killed_for; /* SBX_LIMIT_WALL / SBX_LIMIT_OUTPUT when we killed it */
  bool cancelled, kill_pending;
  unsigned long long t0, t1;
  char *error;
};

static void run_finish(sbx_run *run);
static void run_kill(sbx_run *run);
static void pump(sbx_runner *self);
static void sigchld_cb(uv_signal_t *h, int signum);
static void maybe_closed(sbx_runner *self);
static void warm_timer_cb(uv_timer_t *t);

/* ---- lists ---- */

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

/* ---- setup ---- */

static char *find_exe(const char *const *cands) {
  for (; *cands; cands++)
    if (access(*cands, X_OK) == 0) return xstrdup(*cands);
  return NULL;
}

static char *find_in_path(const char *name) {
  const char *path = getenv("PATH");
  if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
  char *copy = xstrdup(path), *save = NULL;
  for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
    char *p = xasprintf("%s/%s", dir, name);
    if (access(p, X_OK) == 0) {
      free(copy);
      return p;
    }
    free(p);
  }
  free(copy);
  return NULL;
}

static void build_bpf(void) {
  if (g_bpf_err != 1) return;
  scmp_filter_ctx ctx;
  g_bpf_err = sbx_seccomp_build(&ctx);
  if (!g_bpf_err) {
    g_bpf_err = sbx_seccomp_export(ctx, &g_bpf, &g_bpf_len);
    seccomp_release(ctx);
  }
}

static void reaper_cb(uv_timer_t *t);
static void pool_fill(sbx_runner *self);

/* Names (cgroups) are crucible-<pid>-<seq> with one counter per process:
 * two runners in one process (the server's and the doctor's) never pick
 * the same name. */
static unsigned long long next_seq(void) {
  static atomic_ullong seq;
  return atomic_fetch_add(&seq, 1) + 1;
}

int sbx_runner_init(sbx_runner *self, uv_loop_t *loop, const sbx_config *config) {
  memset(self, 0, sizeof *self);
  self->loop = loop;
  if (config) self->cfg = *config;
  if (self->cfg.max_concurrent <= 0) self->cfg.max_concurrent = 4;
  if (self->cfg.max_queued <= 0) self->cfg.max_queued = 1024;
  if (self->cfg.max_queued_per_owner <= 0) self->cfg.max_queued_per_owner = 64;
  sbx_limits def, max;
  sbx_limits_default(&def);
  sbx_limits_max(&max);
  sbx_limits_fill(&self->cfg.max, &max);
  sbx_limits_fill(&self->cfg.defaults, &def);
  self->cfg.bwrap = NULL;
  memset(self->cfg.interpreters, 0, sizeof self->cfg.interpreters);

  if (config && config->bwrap) self->bwrap = access(config->bwrap, X_OK) == 0 ? xstrdup(config->bwrap) : NULL;
  else self->bwrap = find_in_path("bwrap");
  static const char *const py[] = {"/usr/local/bin/python3", "/usr/bin/python3", NULL};
  static const char *const js[] = {"/usr/local/bin/node", "/usr/bin/node", "/usr/bin/nodejs", NULL};
  static const char *const sh[] = {"/usr/bin/bash", "/bin/bash", NULL};
  const char *const *cands[SBX_LANG_COUNT] = {py, js, sh};
  for (int l = 0; l < SBX_LANG_COUNT; l++) {
    const char *want = config ? config->interpreters[l] : NULL;
    if (want) {
      /* Only /usr is visible inside the sandbox. */
      if (!strncmp(want, "/usr/", 5) && access(want, X_OK) == 0) self->interp[l] = xstrdup(want);
    } else {
      self->interp[l] = find_exe(cands[l]);
    }
  }
  build_bpf();
  self->slab = xmalloc(SBX_SLAB_SIZE);
  /* Never host root: 0 (or unset) means the default id. */
  long want_uid = config && config->host_uid > 0 ? config->host_uid : SBX_HOST_ID_DEFAULT;
  long want_gid = config && config->host_gid > 0 ? config->host_gid : SBX_HOST_ID_DEFAULT;
  self->set_ids = geteuid() == 0;
  self->host_uid = self->set_ids ? (uid_t)want_uid : geteuid();
  self->host_gid = self->set_ids ? (gid_t)want_gid : getegid();
  if (!self->bwrap)
    self->setup_error = xstrdup("bubblewrap (bwrap) is not installed or not executable: install "
                                "the 'bubblewrap' package (e.g. apt install bubblewrap)");
  else if (g_bpf_err)
    self->setup_error = xasprintf("cannot build the seccomp filter (%s): libseccomp and a kernel "
                                  "with CONFIG_SECCOMP_FILTER are required",
                                  strerror(-g_bpf_err));

  if (!self->cfg.no_cgroup) {
    char *why = NULL;
    sbx_cgroups *cg = NULL;
    if (sbx_cgroups_probe(&cg, &why) == 0) {
      self->cg = cg;
      int n = sbx_cgroups_sweep(cg);
      if (n) log_info("sandbox: removed %d stale cgroup(s) of dead crucible processes", n);
    } else {
      self->cg_note = xasprintf("no usable cgroup, limits enforced with rlimits only: %s", why);
      free(why);
    }
  } else {
    self->cg_note = xstrdup("cgroups disabled by configuration, limits enforced with rlimits only");
  }
  int n = sbx_procs_sweep();
  if (n) log_info("sandbox: killed %d stranded sandbox(es) of dead crucible processes", n);
  self->nroots = sbx_roots_probe(&self->roots);
  self->masks = sbx_proc_masks_probe();
  uv_timer_init(loop, &self->reaper);
  uv_signal_init(loop, &self->sigchld);
  uv_signal_start(&self->sigchld, sigchld_cb, SIGCHLD);
  uv_unref((uv_handle_t *)&self->sigchld);
  uv_timer_init(loop, &self->warm_timer);
  if (!self->setup_error) pool_fill(self);
  /* The first warm sandbox comes a moment after startup, from the loop. */
  if (!self->setup_error && self->cfg.warm) uv_timer_start(&self->warm_timer, warm_timer_cb, WARM_DELAY_MS, 0);
  uv_unref((uv_handle_t *)&self->warm_timer);
  return 0;
}

const char *sbx_runner_problem(const sbx_runner *self) {
  return self->setup_error ? self->setup_error : self->cg_note;
}

void sbx_runner_host_ids(const sbx_runner *self, long *uid, long *gid) {
  *uid = (long)self->host_uid;
  *gid = (long)self->host_gid;
}

sbx_isolation sbx_runner_isolation(const sbx_runner *self) {
  if (!self->cg) return SBX_ISO_RLIMIT;
  return self->cg->version == SBX_CG_V2 ? SBX_ISO_CGROUP_V2 : SBX_ISO_CGROUP_V1;
}

/* ---- cgroup graves: removal off the critical path ---- */

/* Starts the reaper unless it runs already. The delay lets the loop first
 * send what the finished run produced (UV_RUN_ONCE runs timers that are
 * due at its end, so 0 would still hold up the caller). */
static void reaper_start(sbx_runner *self) {
  if (!uv_is_active((uv_handle_t *)&self->reaper))
    uv_timer_start(&self->reaper, reaper_cb, REAPER_DELAY_MS, 50);
}

/* Kills what is left in a finished run's cgroup now and removes it from the
 * reaper, after the result went out. */
static void bury(sbx_runner *self, sbx_cg *cg) {
  if (!cg->dir[0] && !cg->dir[1] && !cg->dir[2]) return;
  sbx_cg_kill(cg, SIGKILL);
  struct sbx_cg_grave *g = xcalloc(1, sizeof *g);
  g->cg = *cg;
  memset(cg, 0, sizeof *cg);
  g->since = now_ms();
  g->next = self->graves;
  self->graves = g;
  reaper_start(self);
}

/* Takes a pooled cgroup for a run with limits lim. Returns 0, or -ENOENT
 * when the pool is empty or the limits could not be set (then the caller
 * creates one). */
static int pool_take(sbx_runner *self, const sbx_limits *lim, sbx_cg *out) {
  while (self->pool) {
    struct sbx_cg_grave *p = self->pool;
    self->pool = p->next;
    self->npool--;
    const sbx_limits *def = &self->cfg.defaults;
    int err = 0;
    if (lim->memory_mb != def->memory_mb || lim->pids != def->pids)
      err = sbx_cg_set_limits(self->cg, &p->cg, lim);
    if (!err) {
      *out = p->cg;
      free(p);
      return 0;
    }
    p->next = self->graves;
    self->graves = p;
    p->since = now_ms();
    reaper_start(self);
  }
  return -ENOENT;
}

static void pool_fill(sbx_runner *self) {
  while (self->cg && !self->closing && self->npool < CG_POOL) {
    struct sbx_cg_grave *p = xcalloc(1, sizeof *p);
    char *name = sbx_cg_run_name(getpid(), next_seq());
    int err = sbx_cg_create(self->cg, name, &self->cfg.defaults, &p->cg);
    free(name);
    if (err) {
      free(p);
      return; /* the run that needs one creates it inline and says why */
    }
    p->next = self->pool;
    self->pool = p;
    self->npool++;
  }
}

static void reaper_cb(uv_timer_t *t) {
  sbx_runner *self = container_of(t, sbx_runner, reaper);
  unsigned long long now = now_ms();
  for (struct sbx_cg_grave **pg = &self->graves; *pg;) {
    struct sbx_cg_grave *g = *pg;
    sbx_cg_kill(&g->cg, SIGKILL);
    /* Give up after a minute: a task stuck in the kernel; the next
     * startup sweep removes it (its name holds our pid). */
    if (sbx_cg_remove(&g->cg) == 0 || now - g->since > 60000) {
      if (g->cg.dir[0] || g->cg.dir[1] || g->cg.dir[2])
        log_warn("sandbox: cgroup %s still busy, left for the next sweep",
                 g->cg.dir[0] ? g->cg.dir[0] : g->cg.dir[1] ? g->cg.dir[1] : g->cg.dir[2]);
      *pg = g->next;
      sbx_cg_free(&g->cg);
      free(g);
    } else {
      pg = &g->next;
    }
  }
  pool_fill(self);
  if (!self->graves) {
    uv_timer_stop(&self->reaper);
    maybe_closed(self);
  }
}

/* ---- spawning ---- */

static int memfd_with(const char *name, const void *data, size_t len) {
  int fd = memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) return -errno;
  int err = write_all(fd, data, len);
  if (err) {
    close(fd);
    return err;
  }
  lseek(fd, 0, SEEK_SET);
  return fd;
}

static void on_handle_closed(uv_handle_t *h) {
  sbx_run *run = h->data;
  if (--run->open_handles > 0) return;
  sbx_runner *self = run->runner;
  bury(self, &run->cg);
  sbx_cg_free(&run->cg);
  dbuf_close(&run->obuf);
  dbuf_close(&run->ebuf);
  free(run->code);
  free(run->stdin_data);
  sbx_env_free(run->env);
  free(run->name);
  free(run->error);
  free(run);
  self->pending_handles--;
  maybe_closed(self);
}

static void close_handle(sbx_run *run, uv_handle_t *h, bool *open) {
  if (!*open) return;
  *open = false;
  uv_close(h, on_handle_closed);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  sbx_run *run = h->data;
  (void)suggested;
  /* Reads are consumed synchronously in the read callback, so one buffer
   * per runner serves all its pipes (a runner lives on one loop, one
   * thread: a second runner, the doctor's, has its own). */
  *buf = uv_buf_init(run->runner->slab, SBX_SLAB_SIZE);
}

static void maybe_finish(sbx_run *run) {
  if (run->state != RUN_RUNNING) return;
  if (!run->exited) return;
  if (run->out_open || run->err_open || run->status_open) return;
  run_finish(run);
}

static void on_output(sbx_run *run, int stream, const char *data, size_t n) {
  dbuf *b = stream == 1 ? &run->obuf : &run->ebuf;
  size_t kept = dbuf_add_head(b, data, n);
  if (kept < n) run->truncated = true;
  if (kept && run->cb.on_output) run->cb.on_output(run->ud, stream, data, kept);
  run->total_out += n;
  unsigned long long hard = (unsigned long long)run->limits.output_bytes * HARD_OUTPUT_FACTOR;
  if (run->total_out > hard && !run->killed_for && !run->cancelled) {
    run->killed_for = SBX_LIMIT_OUTPUT;
    run_kill(run);
  }
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  sbx_run *run = s->data;
  uv_pipe_t *p = (uv_pipe_t *)s;
  if (n > 0) {
    on_output(run, p == &run->out ? 1 : 2, buf->base, (size_t)n);
    return;
  }
  if (n == 0) return;
  close_handle(run, (uv_handle_t *)s, p == &run->out ? &run->out_open : &run->err_open);
  maybe_finish(run);
}

static void code_written(uv_write_t *req, int status);

/* Lets bwrap's child continue past --block-fd once it sits in its cgroup
 * with its rlimits: nothing it forks can escape them. */
static void release_child(sbx_run *run) {
  pid_t c = run->child;
  int err = 0;
  if (run->in_cgroup && (err = sbx_cg_attach(&run->cg, c))) {
    run->error = xasprintf("could not move the sandbox into its cgroup (%s)", strerror(-err));
    run_kill(run);
    return;
  }
  /* The other rlimits were set before bwrap's exec (see rlimits_of).
   * RLIMIT_NPROC counts the processes of a uid in a user namespace: an
   * unprivileged server sets it only now, inside the sandbox's namespace,
   * where it counts the sandbox's processes and not all of the user's. */
  if (!run->in_cgroup && !run->runner->set_ids) {
    struct rlimit rl = {(rlim_t)run->limits.pids, (rlim_t)run->limits.pids};
    if (prlimit(c, RLIMIT_NPROC, &rl, NULL) < 0) err = -errno;
  }
  if (err) {
    run->error = xasprintf("could not apply rlimits to the sandbox (%s)", strerror(-err));
    run_kill(run);
    return;
  }
  /* Only now, with the cgroup and rlimits in place, does the program's text
   * go to bwrap: if the server died before this point, bwrap would read
   * end-of-file on both pipes and carry on with an empty program. */
  uv_buf_t b = uv_buf_init(run->code, (unsigned)run->code_len);
  if (!run->code_len || uv_write(&run->code_req, (uv_stream_t *)&run->code_pipe, &b, 1, code_written) != 0)
    close_handle(run, (uv_handle_t *)&run->code_pipe, &run->code_open);
  ssize_t w;
  do w = write(run->block_wfd, "x", 1);
  while (w < 0 && errno == EINTR);
  close(run->block_wfd);
  run->block_wfd = -1;
}

static void status_line(sbx_run *run, const char *line) {
  const char *p;
  if ((p = strstr(line, "\"child-pid\":")) && !run->child) {
    run->child = (pid_t)strtol(p + 12, NULL, 10);
    if (run->child <= 0 || !run->bound) return; /* a warm sandbox waits for its request */
    if (run->cancelled || run->kill_pending || run->error) run_kill(run);
    else release_child(run);
  } else if (strstr(line, "\"exit-code\":")) {
    run->exec_seen = true;
  }
}

static void status_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  sbx_run *run = s->data;
  if (n > 0) {
    for (ssize_t i = 0; i < n; i++) {
      char c = buf->base[i];
      if (c == '\n') {
        run->status_buf[run->status_len] = '\0';
        status_line(run, run->status_buf);
        run->status_len = 0;
      } else if (run->status_len + 1 < sizeof run->status_buf) {
        run->status_buf[run->status_len++] = c;
      }
    }
    return;
  }
  if (n == 0) return;
  if (run->status_len) {
    run->status_buf[run->status_len] = '\0';
    status_line(run, run->status_buf);
    run->status_len = 0;
  }
  close_handle(run, (uv_handle_t *)s, &run->status_open);
  maybe_finish(run);
}

static void timer_cb(uv_timer_t *t);

/* bwrap exited (reaped by sigchld_cb). */
static void warm_discard(sbx_run *run);

static void run_exited(sbx_run *run, int64_t status, int sig) {
  sbx_runner *self = run->runner;
  if (run->bound && --self->nprocs == 0) uv_unref((uv_handle_t *)&self->sigchld);
  if (run->state == RUN_WARM) {
    /* It died before anyone used it (killed, or bwrap cannot work here). */
    run->proc_alive = false;
    if (!self->closing) self->warm_failures++;
    warm_discard(run);
    return;
  }
  run->proc_alive = false;
  run->exited = true;
  run->exit_status = status;
  run->term_signal = sig;
  run->t1 = now_ms();
  /* The sandbox's init gets SIGKILL from --die-with-parent when bwrap
   * exits. A child still blocked on --block-fd would run on once the
   * block pipe closes: kill it first (blocked, it cannot have exited). */
  if (run->in_cgroup) sbx_cg_kill(&run->cg, SIGKILL);
  if (run->block_wfd >= 0) {
    if (run->child > 0) kill(run->child, SIGKILL);
    close(run->block_wfd);
    run->block_wfd = -1;
  }
  if (run->out_open || run->err_open || run->status_open) {
    run->phase = T_DRAIN;
    uv_timer_start(&run->timer, timer_cb, DRAIN_MS, 0);
  }
  maybe_finish(run);
}

static void run_kill(sbx_run *run) {
  if (run->state != RUN_RUNNING || run->exited) return;
  if (!run->child) {
    /* bwrap has not reported its child yet: killing bwrap now could strand
     * the child, blocked for good. Kill as soon as the pid arrives. */
    run->kill_pending = true;
    return;
  }
  kill(run->child, SIGKILL); /* pid namespace init: takes every process with it */
  if (run->in_cgroup) sbx_cg_kill(&run->cg, SIGKILL);
  if (run->proc_alive) kill(run->pid, SIGKILL);
}

/* SIGCHLD: reap whichever bwrap processes have exited. Signals coalesce,
 * so every live run is checked; waitpid on a given pid never takes another
 * child (libuv's own handler does the same for its processes). */
static void sigchld_cb(uv_signal_t *h, int signum) {
  sbx_runner *self = container_of(h, sbx_runner, sigchld);
  if (self->warm && self->warm->proc_alive) {
    int st;
    sbx_run *w = self->warm;
    if (waitpid(w->pid, &st, WNOHANG) == w->pid) run_exited(w, 0, 0);
  }
  for (sbx_run *r = self->live, *next; r; r = next) {
    next = r->next;
    if (!r->proc_alive) continue;
    int st;
    pid_t got = waitpid(r->pid, &st, WNOHANG);
    if (got == r->pid) run_exited(r, WIFEXITED(st) ? WEXITSTATUS(st) : 0, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  }
}

static void timer_cb(uv_timer_t *t) {
  sbx_run *run = container_of(t, sbx_run, timer);
  switch (run->phase) {
  case T_DEFER:
    run->phase = T_NONE;
    run_finish(run);
    break;
  case T_WALL:
    if (run->exited || run->killed_for || run->cancelled) break;
    run->killed_for = SBX_LIMIT_WALL;
    if (run->child > 0) sbx_procs_signal_tree(run->child, SIGTERM);
    run->phase = T_GRACE;
    uv_timer_start(&run->timer, timer_cb, GRACE_MS, 0);
    break;
  case T_GRACE:
    run_kill(run);
    break;
  case T_DRAIN:
    close_handle(run, (uv_handle_t *)&run->out, &run->out_open);
    close_handle(run, (uv_handle_t *)&run->err, &run->err_open);
    close_handle(run, (uv_handle_t *)&run->status, &run->status_open);
    maybe_finish(run);
    break;
  default: break;
  }
}

/* The rlimits bwrap is started with (it and everything it forks inherit
 * them): CPU time per process, file size, no core dumps, 1024 files; and
 * without a cgroup, RLIMIT_DATA for memory (not RLIMIT_AS: node reserves
 * gigabytes of address space it never touches) and, for a root server
 * whose programs run as the unprivileged host uid, RLIMIT_NPROC (that uid
 * has no other processes of ours). Returns how many were written to out. */
static int rlimits_of(const sbx_runner *self, const sbx_limits *lim, sbx_rlimit out[6]) {
  int n = 0;
  rlim_t cpu = (rlim_t)lim->cpu_seconds, disk = (rlim_t)lim->disk_mb << 20;
  out[n++] = (sbx_rlimit){RLIMIT_CPU, {cpu, cpu + 1}};
  out[n++] = (sbx_rlimit){RLIMIT_FSIZE, {disk, disk}};
  out[n++] = (sbx_rlimit){RLIMIT_CORE, {0, 0}};
  out[n++] = (sbx_rlimit){RLIMIT_NOFILE, {1024, 1024}};
  if (!self->cg) {
    rlim_t mem = (rlim_t)lim->memory_mb << 20;
    out[n++] = (sbx_rlimit){RLIMIT_DATA, {mem, mem}};
    if (self->set_ids) out[n++] = (sbx_rlimit){RLIMIT_NPROC, {(rlim_t)lim->pids, (rlim_t)lim->pids}};
  }
  return n;
}

/* Whether a sandbox started with limits a serves a request for b: the
 * rlimits and tmpfs sizes fixed at its start are the same. */
static bool start_limits_equal(const sbx_runner *self, const sbx_limits *a, const sbx_limits *b) {
  return a->cpu_seconds == b->cpu_seconds && a->disk_mb == b->disk_mb &&
         (self->cg || (a->memory_mb == b->memory_mb && a->pids == b->pids));
}

/* Spawns bwrap for run. Returns 0 or a negative errno with run->error set. */
static int run_spawn(sbx_run *run) {
  sbx_runner *self = run->runner;
  int err = 0;
  int fd_bpf = -1, fd_in = -1, fd_pw = -1, fd_gr = -1, fd_hosts = -1, fd_empty = -1;
  int st[2] = {-1, -1}, blk[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1}, cp[2] = {-1, -1};
  int hi[MAX_CHILD_FDS];
  for (size_t i = 0; i < ARRAY_LEN(hi); i++) hi[i] = -1;
  char **argv = NULL;
  if (!self->interp[run->lang] && !(run->env && run->env->interp)) {
    run->error = xasprintf("no %s interpreter under /usr: install it (e.g. apt install %s)",
                           sbx_lang_name(run->lang),
                           run->lang == SBX_LANG_PYTHON ? "python3"
                           : run->lang == SBX_LANG_JAVASCRIPT ? "nodejs" : "bash");
    return -ENOENT;
  }
  /* stdin is an empty memfd now, filled when a request is bound (pwrite:
   * the child's offset, shared with ours, stays at 0). */
  if ((fd_bpf = memfd_with("crucible-seccomp", g_bpf, g_bpf_len)) < 0 ||
      (fd_in = memfd_with("crucible-stdin", "", 0)) < 0 ||
      (fd_pw = memfd_with("crucible-passwd", SBX_PASSWD, strlen(SBX_PASSWD))) < 0 ||
      (fd_gr = memfd_with("crucible-group", SBX_GROUP, strlen(SBX_GROUP))) < 0 ||
      (fd_hosts = memfd_with("crucible-hosts", SBX_HOSTS, strlen(SBX_HOSTS))) < 0 ||
      (fd_empty = memfd_with("crucible-empty", "", 0)) < 0) {
    err = -ENOMEM;
    run->error = xstrdup("cannot create the sandbox's input files (memfd_create failed)");
    goto out;
  }
  if (pipe2(st, O_CLOEXEC) < 0 || pipe2(blk, O_CLOEXEC) < 0) {
    err = -errno;
    run->error = xasprintf("pipe2: %s", strerror(errno));
    goto out;
  }
  /* The program's text reaches bwrap's `--file` (its last setup step)
   * through a pipe: bwrap can do all its other setup before the text is
   * known, which is what lets a sandbox be made ahead (runner->warm). */
  if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 || pipe2(cp, O_CLOEXEC) < 0) {
    err = -errno;
    run->error = xasprintf("pipe2: %s", strerror(errno));
    goto out;
  }
  /* Child fd numbers: 0-2 stdio, then the fds bwrap reads, then one empty
   * file per masked /proc file (bwrap closes each after reading it). */
  enum { C_BPF = 3, C_CODE, C_STATUS, C_BLOCK, C_PW, C_GR, C_HOSTS, C_EMPTY };
  int src[MAX_CHILD_FDS] = {fd_in, outp[1], errp[1], fd_bpf, cp[0], st[1], blk[0], fd_pw, fd_gr, fd_hosts};
  int C_N = C_EMPTY + sbx_masks_empty(self->masks);
  for (int i = C_EMPTY; i < C_N; i++) src[i] = fd_empty;

  sbx_bwrap_spec spec = {
      .bwrap = self->bwrap, .interp = self->interp[run->lang], .lang = run->lang,
      .limits = &run->limits, .masks = self->masks, .roots = self->roots, .nroots = self->nroots,
      .etc = NULL, .env = run->env, .fd_code = C_CODE, .fd_seccomp = C_BPF, .fd_status = C_STATUS,
      .fd_block = C_BLOCK, .fd_passwd = C_PW, .fd_group = C_GR, .fd_hosts = C_HOSTS,
      .fd_empty = C_EMPTY,
  };
  argv = sbx_bwrap_argv(&spec);
  /* bwrap's own environment is cleared too (--clearenv covers the program). */
  char *env[] = {"PATH=/usr/bin:/bin", NULL};
  /* Every descriptor the child must see is first copied above the slots it
   * goes to (close-on-exec), so placing one cannot clobber the source of
   * another; each dup2 into its slot then clears close-on-exec. */
  for (int i = 0; i < C_N; i++) {
    hi[i] = fcntl(src[i], F_DUPFD_CLOEXEC, C_N);
    if (hi[i] < 0) {
      err = -errno;
      run->error = xasprintf("fcntl(F_DUPFD_CLOEXEC): %s", strerror(errno));
      goto out;
    }
  }
  /* libuv does not close descriptors in the child: anything without
   * FD_CLOEXEC (an fd the server inherited, a library's socket) would reach
   * bwrap, and bwrap passes unknown fds on to the program. */
  sbx_fds_cloexec();
  run->t0 = now_ms();
  /* bwrap leads a session of its own (see sbx_procs_sweep): its namespace
   * init inherits it, so an init stranded by a dead bwrap can be told.
   * vfork, not uv_spawn: the server's page tables are not copied and its
   * pages not made copy-on-write; uv_spawn forks, which cost ~12 ms per run
   * in a busy server (and blocked the loop that long). As root, bwrap (and
   * so everything in the sandbox) runs as the unprivileged host uid. The
   * exit is reaped by the runner's SIGCHLD watcher. */
  pid_t pid = -1;
  sbx_rlimit rls[6];
  int nrls = rlimits_of(self, &run->limits, rls);
  sbx_launch_spec sp = {
      .path = argv[0], .argv = argv, .envp = env, .fds = hi, .nfds = C_N, .rlimits = rls, .nrlimits = nrls,
      .new_session = true, .set_ids = self->set_ids, .uid = self->host_uid, .gid = self->host_gid,
  };
  int serr = -sbx_launch(&sp, &pid);
  uv_pipe_init(self->loop, &run->out, 0);
  uv_pipe_init(self->loop, &run->err, 0);
  uv_pipe_init(self->loop, &run->status, 0);
  uv_pipe_init(self->loop, &run->code_pipe, 0);
  run->out.data = run->err.data = run->status.data = run->code_pipe.data = run;
  run->out_open = run->err_open = run->status_open = run->code_open = true;
  run->open_handles += 4;
  if (serr) {
    err = -serr;
    run->error = xasprintf("cannot start %s as uid %u: %s", self->bwrap, (unsigned)self->host_uid,
                           strerror(serr));
    goto out;
  }
  run->proc_alive = true;
  if ((err = uv_pipe_open(&run->out, outp[0])) == 0) outp[0] = -1;
  if (!err && (err = uv_pipe_open(&run->err, errp[0])) == 0) errp[0] = -1;
  if (!err && (err = uv_pipe_open(&run->code_pipe, cp[1])) == 0) cp[1] = -1;
  if (err) {
    run->error = xasprintf("cannot read the sandbox's output: %s", uv_strerror(err));
    /* Not started as far as the caller knows: stop and reap it here. */
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    run->proc_alive = false;
    goto out;
  }
  run->pid = pid;
  run->block_wfd = blk[1];
  blk[1] = -1;
  if ((err = uv_pipe_open(&run->status, st[0])) == 0) st[0] = -1;
  uv_read_start((uv_stream_t *)&run->out, alloc_cb, read_cb);
  uv_read_start((uv_stream_t *)&run->err, alloc_cb, read_cb);
  uv_read_start((uv_stream_t *)&run->status, alloc_cb, status_cb);
  run->stdin_fd = fd_in;
  fd_in = -1;
  if (run->state == RUN_WARM) {
    /* A warm sandbox must not keep the loop alive: only runs do. */
    uv_unref((uv_handle_t *)&run->out);
    uv_unref((uv_handle_t *)&run->err);
    uv_unref((uv_handle_t *)&run->status);
    uv_unref((uv_handle_t *)&run->code_pipe);
  }
  err = 0;
out:
  if (err) {
    /* The pipes were initialised but never used. */
    close_handle(run, (uv_handle_t *)&run->out, &run->out_open);
    close_handle(run, (uv_handle_t *)&run->err, &run->err_open);
    close_handle(run, (uv_handle_t *)&run->status, &run->status_open);
    close_handle(run, (uv_handle_t *)&run->code_pipe, &run->code_open);
  }
  int fds[] = {fd_bpf, fd_in, fd_pw, fd_gr, fd_hosts, fd_empty, st[0], st[1], blk[0], blk[1],
               outp[0], outp[1], errp[0], errp[1], cp[0], cp[1]};
  for (size_t i = 0; i < ARRAY_LEN(fds); i++)
    if (fds[i] >= 0) close(fds[i]);
  for (size_t i = 0; i < ARRAY_LEN(hi); i++)
    if (hi[i] >= 0) close(hi[i]);
  sbx_argv_free(argv);
  return err;
}

static void code_written(uv_write_t *req, int status) {
  sbx_run *run = container_of(req, sbx_run, code_req);
  /* Closing the pipe is the end of file bwrap's --file copy waits for. */
  close_handle(run, (uv_handle_t *)&run->code_pipe, &run->code_open);
}

/* Attaches the request to a spawned sandbox: its stdin, its program, its
 * cgroup and limits, its wall timer. bwrap's child is released (see
 * release_child) as soon as both this and its pid are known. */
static void run_bind(sbx_run *run) {
  sbx_runner *self = run->runner;
  run->bound = true;
  /* Until its bwrap is reaped, the SIGCHLD watcher keeps the loop alive. */
  self->nprocs++;
  uv_ref((uv_handle_t *)&self->sigchld);
  uv_ref((uv_handle_t *)&run->out);
  uv_ref((uv_handle_t *)&run->err);
  uv_ref((uv_handle_t *)&run->status);
  uv_ref((uv_handle_t *)&run->code_pipe);
  run->t0 = now_ms();
  if (run->stdin_len && pwrite(run->stdin_fd, run->stdin_data, run->stdin_len, 0) != (ssize_t)run->stdin_len) {
    run->error = xasprintf("cannot pass stdin to the sandbox: %s", strerror(errno));
    run_kill(run);
  }
  close(run->stdin_fd);
  run->stdin_fd = -1;
  /* The cgroup is taken now; the child joins it before it may fork. */
  run->iso = SBX_ISO_RLIMIT;
  if (self->cg) {
    int e = pool_take(self, &run->limits, &run->cg);
    if (e) e = sbx_cg_create(self->cg, run->name, &run->limits, &run->cg);
    if (!e) {
      run->in_cgroup = true;
      run->iso = self->cg->version == SBX_CG_V2 ? SBX_ISO_CGROUP_V2 : SBX_ISO_CGROUP_V1;
    } else {
      /* Never less isolation than reported: without its cgroup the run
       * would have no memory limit at all (its rlimits assumed one). */
      run->error = xasprintf("cannot create the run's cgroup %s (%s)", run->name, strerror(-e));
      run_kill(run);
    }
  }
  run->phase = T_WALL;
  uv_timer_start(&run->timer, timer_cb, (uint64_t)run->limits.timeout_ms, 0);
  if (run->child > 0 && run->block_wfd >= 0) {
    if (run->cancelled || run->kill_pending || run->error) run_kill(run);
    else release_child(run);
  }
}

/* ---- finishing ---- */

static const char *userns_hint(const char *err) {
  if (strstr(err, "namespace") || strstr(err, "uid map") || strstr(err, "Operation not permitted") ||
      strstr(err, "Permission denied"))
    return " Hint: the kernel refused an unprivileged user namespace. On Ubuntu 23.10+ either "
           "install bubblewrap's AppArmor profile or set `sysctl "
           "kernel.apparmor_restrict_unprivileged_userns=0`; on older Debian set `sysctl "
           "kernel.unprivileged_userns_clone=1`; make sure `sysctl user.max_user_namespaces` is "
           "not 0.";
  return "";
}

/* The disk caps show only as failing writes inside the sandbox: ENOSPC on
 * a full tmpfs, EFBIG/SIGXFSZ past RLIMIT_FSIZE. Every interpreter prints
 * strerror's text, so it is looked for in the output. */
static bool disk_error_seen(const sbx_run *run) {
  static const char *const needles[] = {"No space left on device", "File too large"};
  for (size_t i = 0; i < ARRAY_LEN(needles); i++)
    if ((run->ebuf.data && strstr(run->ebuf.data, needles[i])) ||
        (run->obuf.data && strstr(run->obuf.data, needles[i])))
      return true;
  return false;
}

static void run_finish(sbx_run *run) {
  sbx_runner *self = run->runner;
  if (run->state == RUN_FINISHED) return;
  bool was_running = run->state == RUN_RUNNING;
  if (was_running) {
    list_del(&self->live, NULL, run);
    self->nlive--;
  }
  run->state = RUN_FINISHED;
  uv_timer_stop(&run->timer);

  sbx_result r = {0};
  r.lang = run->lang;
  r.limits = run->limits;
  r.host_uid = was_running ? (long)self->host_uid : -1;
  r.host_gid = was_running ? (long)self->host_gid : -1;
  r.unenforced = was_running ? sbx_isolation_unenforced(run->iso) : NULL;
  r.exit_code = -1;
  r.cpu_ms = -1;
  r.max_rss_kb = -1;
  r.isolation = was_running ? run->iso : SBX_ISO_NONE;
  r.duration_ms = was_running && run->t1 >= run->t0 ? (long long)(run->t1 - run->t0) : 0;

  if (was_running) {
    sbx_cg_stats cs = {-1, -1, -1, -1};
    if (run->in_cgroup) sbx_cg_read_stats(self->cg, &run->cg, &cs);
    if (!run->cancelled && !run->exec_seen && !run->killed_for && !run->error) {
      /* bwrap never exec'd the program: the sandbox itself failed. */
      const char *e = run->ebuf.data ? run->ebuf.data : "";
      run->error = xasprintf("the sandbox could not start (bwrap exit %d): %.*s%s", (int)run->exit_status,
                             (int)strcspn(e, "\n"), e, userns_hint(e));
    }
    const char *err_text = run->ebuf.data ? run->ebuf.data : "";
    sbx_facts f = {
        .exit_status = run->exit_status, .term_signal = run->term_signal, .killed_for = run->killed_for,
        .cancelled = run->cancelled, .failed = run->error != NULL, .in_cgroup = run->in_cgroup,
        .oom_kills = cs.oom_kills, .peak_bytes = cs.peak_bytes, .cpu_ns = cs.cpu_ns, .pids_max = cs.pids_max,
        .disk_error_text = disk_error_seen(run),
        .memory_error_text = strstr(err_text, "MemoryError") || strstr(err_text, "heap out of memory") ||
                             strstr(err_text, "Cannot allocate memory"),
        .cpu_limit_s = run->limits.cpu_seconds,
    };
    sbx_verdict(&f, &r);
  } else {
    r.outcome = run->cancelled ? SBX_CANCELLED : SBX_ERROR;
  }
  if (run->truncated) r.truncated = true;
  r.error = run->error;
  r.out = run->obuf.data ? run->obuf.data : "";
  r.out_len = run->obuf.len;
  r.err = run->ebuf.data ? run->ebuf.data : "";
  r.err_len = run->ebuf.len;
  sbx_diag diags[MAX_DIAGS];
  int nd = 0;
  if (was_running && run->exec_seen && r.outcome != SBX_OK)
    nd = sbx_traceback_parse(run->lang, r.err, r.err_len, sbx_lang_script(run->lang),
                             run->line_offset, diags, MAX_DIAGS);
  r.diags = diags;
  r.ndiags = nd;
  if (run->cb.on_done) run->cb.on_done(run->ud, &r);
  sbx_diags_free(diags, nd);
  /* Close what is left; the run is freed when the last handle is closed. */
  close_handle(run, (uv_handle_t *)&run->out, &run->out_open);
  close_handle(run, (uv_handle_t *)&run->err, &run->err_open);
  close_handle(run, (uv_handle_t *)&run->status, &run->status_open);
  close_handle(run, (uv_handle_t *)&run->code_pipe, &run->code_open);
  if (run->stdin_fd >= 0) close(run->stdin_fd);
  run->stdin_fd = -1;
  bool t = true;
  close_handle(run, (uv_handle_t *)&run->timer, &t);
  pump(self);
}

/* Finishes a run that never spawned, from the loop (never re-entrantly). */
static void run_defer_finish(sbx_run *run) {
  run->phase = T_DEFER;
  uv_timer_start(&run->timer, timer_cb, 0, 0);
}

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

static void pump(sbx_runner *self) {
  while (!self->closing && self->queue_head && self->nlive < self->cfg.max_concurrent) {
    sbx_run *run = pick_fair(self);
    list_del(&self->queue_head, &self->queue_tail, run);
    self->nqueued--;
    run->state = RUN_RUNNING;
    list_push(&self->live, NULL, run);
    self->nlive++;
    if (run_spawn(run)) {
      /* Never ran: finish as "not started". */
      list_del(&self->live, NULL, run);
      self->nlive--;
      run->state = RUN_QUEUED;
      run_defer_finish(run);
    } else {
      run_bind(run);
    }
  }
}

/* A run with its buffers and timer, no request yet. */
static sbx_run *run_alloc(sbx_runner *self, sbx_lang lang, const sbx_limits *lim) {
  sbx_run *run = xcalloc(1, sizeof *run);
  run->runner = self;
  run->lang = lang;
  run->limits = *lim;
  run->name = sbx_cg_run_name(getpid(), next_seq());
  run->block_wfd = -1;
  run->stdin_fd = -1;
  dbuf_init(&run->obuf, (size_t)lim->output_bytes);
  dbuf_init(&run->ebuf, (size_t)lim->output_bytes);
  uv_timer_init(self->loop, &run->timer);
  run->timer.data = run;
  run->open_handles = 1;
  run->state = RUN_QUEUED;
  self->pending_handles++;
  return run;
}

/* Closes an unused warm sandbox (its bwrap already reaped or killed). */
static void warm_discard(sbx_run *run) {
  sbx_runner *self = run->runner;
  if (self->warm == run) self->warm = NULL;
  run->state = RUN_FINISHED;
  if (run->block_wfd >= 0) close(run->block_wfd);
  run->block_wfd = -1;
  if (run->stdin_fd >= 0) close(run->stdin_fd);
  run->stdin_fd = -1;
  close_handle(run, (uv_handle_t *)&run->out, &run->out_open);
  close_handle(run, (uv_handle_t *)&run->err, &run->err_open);
  close_handle(run, (uv_handle_t *)&run->status, &run->status_open);
  close_handle(run, (uv_handle_t *)&run->code_pipe, &run->code_open);
  bool t = true;
  close_handle(run, (uv_handle_t *)&run->timer, &t);
  if (!self->closing && self->warm_failures < WARM_MAX_FAILURES)
    uv_timer_start(&self->warm_timer, warm_timer_cb, 1000, 0);
}

/* Makes a python sandbox ahead of time, with the default limits: bwrap's
 * exec, namespaces and mounts (most of what a run costs beyond the
 * interpreter) happen before any request; it then waits, blocked reading
 * its program from the code pipe, until sbx_run_start binds one. */
static void warm_spawn(sbx_runner *self) {
  if (!self->cfg.warm || self->warm || self->closing || self->setup_error ||
      self->warm_failures >= WARM_MAX_FAILURES || !self->interp[SBX_LANG_PYTHON])
    return;
  sbx_run *run = run_alloc(self, SBX_LANG_PYTHON, &self->cfg.defaults);
  run->state = RUN_WARM;
  if (run_spawn(run)) {
    log_debug("sandbox: cannot make a warm sandbox: %s", run->error ? run->error : "?");
    self->warm_failures++;
    warm_discard(run);
    return;
  }
  self->warm = run;
}

static void warm_timer_cb(uv_timer_t *t) {
  warm_spawn(container_of(t, sbx_runner, warm_timer));
}

int sbx_run_start(sbx_runner *self, const sbx_request *req, const sbx_callbacks *cb, void *ud,
                  sbx_run **out) {
  if (out) *out = NULL;
  if (self->closing) return -ESHUTDOWN;
  sbx_lang lang;
  if (sbx_lang_parse(req->language ? req->language : "python", &lang)) return -EINVAL;
  sbx_limits lim = req->limits;
  const sbx_limits *mx = &self->cfg.max;
  if (lim.timeout_ms > mx->timeout_ms || lim.memory_mb > mx->memory_mb ||
      lim.cpu_seconds > mx->cpu_seconds || lim.pids > mx->pids ||
      lim.output_bytes > mx->output_bytes || lim.disk_mb > mx->disk_mb)
    return -EINVAL;
  sbx_limits_fill(&lim, &self->cfg.defaults);
  if (self->nqueued >= self->cfg.max_queued ||
      count_owner(self->queue_head, req->owner) >= self->cfg.max_queued_per_owner)
    return -EAGAIN;
  sbx_run *run = NULL;
  sbx_run *w = self->warm;
  if (w && !req->env && w->proc_alive && w->lang == lang && start_limits_equal(self, &w->limits, &lim) && !self->queue_head &&
      self->nlive < self->cfg.max_concurrent) {
    /* The warm sandbox fits (same interpreter, same tmpfs sizes): use it,
     * and make the next one after this run has started. */
    run = w;
    self->warm = NULL;
    uv_timer_start(&self->warm_timer, warm_timer_cb, WARM_DELAY_MS, 0);
    dbuf_close(&run->obuf);
    dbuf_close(&run->ebuf);
    dbuf_init(&run->obuf, (size_t)lim.output_bytes);
    dbuf_init(&run->ebuf, (size_t)lim.output_bytes);
  } else {
    run = run_alloc(self, lang, &lim);
  }
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
  if (run == w) {
    run->state = RUN_RUNNING;
    list_push(&self->live, NULL, run);
    self->nlive++;
    run_bind(run);
    return 0;
  }
  if (self->setup_error) {
    run->error = xstrdup(self->setup_error);
    run_defer_finish(run);
    return 0;
  }
  list_push(&self->queue_head, &self->queue_tail, run);
  self->nqueued++;
  pump(self);
  return 0;
}

void sbx_run_cancel(sbx_run *run) {
  if (!run || run->state == RUN_FINISHED || run->cancelled) return;
  run->cancelled = true;
  if (run->state == RUN_QUEUED) {
    sbx_runner *self = run->runner;
    if (run->phase != T_DEFER) {
      list_del(&self->queue_head, &self->queue_tail, run);
      self->nqueued--;
      run_defer_finish(run);
    }
    return;
  }
  run_kill(run);
}

/* ---- closing ---- */

static void reaper_closed(uv_handle_t *h) {
  sbx_runner *self = h->data;
  if (--self->closing_handles > 0) return;
  sbx_cgroups_free(self->cg);
  self->cg = NULL;
  sbx_roots_free(self->roots, self->nroots);
  self->roots = NULL;
  free(self->masks);
  self->masks = NULL;
  free(self->bwrap);
  free(self->slab);
  for (int l = 0; l < SBX_LANG_COUNT; l++) free(self->interp[l]);
  free(self->setup_error);
  free(self->cg_note);
  self->closing = 3;
  if (self->close_cb) self->close_cb(self);
}

static void maybe_closed(sbx_runner *self) {
  if (self->closing != 1) return;
  if (self->pending_handles || self->graves) return;
  self->closing = 2;
  self->closing_handles = 3;
  self->reaper.data = self->sigchld.data = self->warm_timer.data = self;
  uv_close((uv_handle_t *)&self->reaper, reaper_closed);
  uv_close((uv_handle_t *)&self->sigchld, reaper_closed);
  uv_close((uv_handle_t *)&self->warm_timer, reaper_closed);
}

void sbx_runner_close(sbx_runner *self, void (*cb)(sbx_runner *)) {
  if (self->closing) return;
  self->closing = 1;
  self->close_cb = cb;
  uv_timer_stop(&self->warm_timer);
  if (self->warm) {
    /* Unused: kill and reap it now, so nothing waits on a signal. */
    sbx_run *w = self->warm;
    kill(w->pid, SIGKILL);
    while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR) {
    }
    w->proc_alive = false;
    warm_discard(w);
  }
  while (self->queue_head) sbx_run_cancel(self->queue_head);
  for (sbx_run *r = self->live; r; r = r->next) sbx_run_cancel(r);
  while (self->pool) {
    struct sbx_cg_grave *p = self->pool;
    self->pool = p->next;
    self->npool--;
    bury(self, &p->cg);
    free(p);
  }
  /* Cgroups still busy are retried by the reaper timer. */
  maybe_closed(self);
}
