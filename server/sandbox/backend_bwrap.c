/* The bwrap backend behind the runner: its setup (bwrap, interpreters,
 * seccomp, cgroups), the reading side of a live sandbox (output pipes,
 * --json-status-fd, SIGCHLD), stopping it, what it observed, and its close;
 * spawn.c makes the sandboxes, cgpool.c their cgroups. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bwrap.h"
#include "cgroup.h"
#include "common.h"
#include "etcview.h"
#include "internal.h"
#include "log.h"
#include "procs.h"

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

static void sigchld_cb(uv_signal_t *h, int signum);

static void bw_init(sbx_runner *self, const sbx_config *config) {
  sbx__bwrap *bw = xcalloc(1, sizeof *bw);
  bw->runner = self;
  self->be = bw;
  if (config && config->bwrap) bw->bwrap = access(config->bwrap, X_OK) == 0 ? xstrdup(config->bwrap) : NULL;
  else bw->bwrap = find_in_path("bwrap");
  for (int l = 0; l < SBX_LANG_COUNT; l++) {
    const char *want = config ? config->interpreters[l] : NULL;
    if (want) {
      /* Only /usr is visible inside the sandbox. */
      if (!strncmp(want, "/usr/", 5) && access(want, X_OK) == 0) bw->interp[l] = xstrdup(want);
    } else {
      bw->interp[l] = find_exe(lang_get((lang_id)l)->candidates); /* the registry's places */
    }
  }
  int bpf_err = sbx__bw_seccomp_init(self->cfg.seccomp_cache);
  bw->slab = xmalloc(SBX_SLAB_SIZE);
  if (!bw->bwrap)
    self->setup_error = xstrdup("bubblewrap (bwrap) is not installed or not executable: install "
                                "the 'bubblewrap' package (e.g. apt install bubblewrap)");
  else if (bpf_err)
    self->setup_error = xasprintf("cannot build the seccomp filter (%s): libseccomp and a kernel "
                                  "with CONFIG_SECCOMP_FILTER are required",
                                  strerror(-bpf_err));

  sbx_cg made = {{0}};
  if (!self->cfg.no_cgroup) {
    char *why = NULL;
    sbx_cgroups *cg = NULL;
    /* A one-shot runner's probe makes its run's cgroup (pooled below). */
    char *name = self->cfg.one_shot ? sbx_cg_run_name(getpid(), sbx__next_seq()) : NULL;
    int perr = sbx_cgroups_probe_as(&cg, &why, name, &made);
    free(name);
    if (perr == 0) {
      bw->cg = cg;
    } else {
      self->note = xasprintf("no usable cgroup, limits enforced with rlimits only: %s", why);
      free(why);
    }
  } else {
    self->note = xstrdup("cgroups disabled by configuration, limits enforced with rlimits only");
  }
  self->iso = !bw->cg ? SBX_ISO_RLIMIT : bw->cg->version == SBX_CG_V2 ? SBX_ISO_CGROUP_V2 : SBX_ISO_CGROUP_V1;
  /* A one-shot runner sweeps once bwrap reported its sandbox's init and
   * the init is released, while the sandbox is set up and the program runs
   * (status_line), or when it closes if its run never got that far
   * (bw_close): never before its sandbox is made or while bwrap starts,
   * nor between its program's end and its exit. */
  bw->sweep_pending = true;
  if (!self->cfg.one_shot) sbx__bw_sweep(bw);
  bw->nroots = sbx_roots_probe(&bw->roots);
  bw->masks = sbx_proc_masks_probe(self->host_uid); /* bwrap's uid */
  /* A one-shot runner reaps its sandbox's init itself (reap_bwrap_now):
   * orphans of its descendants come to it, and each runner reaps its own
   * inits through their pidfds. */
  if (self->cfg.one_shot) prctl(PR_SET_CHILD_SUBREAPER, 1);
  uv_timer_init(self->loop, &bw->reaper);
  uv_signal_init(self->loop, &bw->sigchld);
  uv_signal_start(&bw->sigchld, sigchld_cb, SIGCHLD);
  uv_unref((uv_handle_t *)&bw->sigchld);
  if (bw->cg) sbx__cgpool_adopt(bw, &made);
  if (!self->setup_error) sbx__cgpool_fill(bw);
}

void sbx__bw_sweep(sbx__bwrap *bw) {
  if (!bw->sweep_pending) return;
  bw->sweep_pending = false;
  int n = bw->cg ? sbx_cgroups_sweep(bw->cg) : 0;
  if (n) log_info("sandbox: removed %d stale cgroup(s) of dead crucible processes", n);
  n = sbx_procs_sweep();
  if (n) log_info("sandbox: killed %d stranded sandbox(es) of dead crucible processes", n);
}

static bool bw_has_lang(const sbx_runner *self, sbx_lang lang) {
  return sbx__bw(self)->interp[lang] != NULL;
}

static sbx_run *bw_run_new(sbx_runner *self) {
  (void)self;
  sbx__bwrap_run *b = xcalloc(1, sizeof *b);
  b->block_wfd = -1;
  b->stdin_fd = -1;
  b->text_fd = -1;
  b->init_fd = -1;
  return &b->run;
}

static void bw_run_free(sbx_run *run) {
  sbx__bwrap_run *b = sbx__bw_run(run);
  if (b->init_fd >= 0) close(b->init_fd);
  sbx__cg_bury(sbx__bw(run->runner), &b->cg);
  sbx_cg_free(&b->cg);
  free(b);
}

/* ---- reading a live sandbox ---- */

void sbx__bw_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  sbx_run *run = h->data;
  (void)suggested;
  /* Reads are consumed synchronously in the read callback, so one buffer
   * per runner serves all its pipes (a runner lives on one loop, one
   * thread: a second runner, the doctor's, has its own). */
  *buf = uv_buf_init(sbx__bw(run->runner)->slab, SBX_SLAB_SIZE);
}

/* One of the three streams the run's end waits for has closed. */
static void stream_closed(sbx__bwrap_run *b) {
  if (!b->out_open && !b->err_open && !b->status_open) sbx__run_io_done(&b->run);
}

void sbx__bw_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  sbx__bwrap_run *b = sbx__bw_run(s->data);
  uv_pipe_t *p = (uv_pipe_t *)s;
  if (n > 0) {
    sbx__run_output(&b->run, p == &b->out ? 1 : 2, buf->base, (size_t)n);
    return;
  }
  if (n == 0) return;
  sbx__close_handle(&b->run, (uv_handle_t *)s, p == &b->out ? &b->out_open : &b->err_open);
  stream_closed(b);
}

/* ---- the early end ----
 *
 * bwrap learns that the program exited from its namespace init, writes the
 * exit-code line, and exits; the init exits too, and the pid namespace
 * goes with it. Waiting for bwrap's own exit and for the end of file on
 * pipes that bwrap also holds costs the tail of every run. The run is
 * over, once the pipes are read empty, as soon as the exit-code line is in
 * and nobody who could still write is left: either the run's cgroup holds
 * no process but the init (read when the line arrives; a one-shot run's
 * init may have left it already, "the init leaves the cgroup"), or the
 * init's pidfd turned readable (the kernel lets a pid namespace's init exit
 * only after every other process in it is gone; this covers a program that
 * left processes behind, and a run without a cgroup). The run's cgroup is
 * buried then; bwrap is reaped afterwards, through its own pidfd, before
 * the run is freed. Without pidfds (Linux < 5.3) the run ends when bwrap
 * is reaped, as before. */

static int pidfd_of(pid_t pid) {
#ifdef SYS_pidfd_open
  int fd = (int)syscall(SYS_pidfd_open, pid, 0); /* close-on-exec by definition */
  return fd < 0 ? -1 : fd;
#else
  (void)pid;
  return -1;
#endif
}

/* Signals the namespace init: through its pidfd when there is one, so that
 * a pid reused after the init was reaped by bwrap is never hit. */
static void init_signal(sbx__bwrap_run *b, int sig) {
  if (b->child <= 0 || b->init_gone) return;
#ifdef SYS_pidfd_send_signal
  uv_os_fd_t fd = -1;
  if (b->init_poll_open && uv_fileno((uv_handle_t *)&b->init_poll, &fd) == 0 && fd >= 0) {
    syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
    return;
  }
#endif
  kill(b->child, sig);
}

/* Closes a poll handle and then its pidfd (a stopped poll no longer
 * watches the descriptor, so it may be closed before the handle's close
 * callback). */
static void close_pidfd_poll(sbx_run *run, uv_poll_t *h, bool *open) {
  if (!*open) return;
  uv_os_fd_t fd = -1;
  uv_fileno((uv_handle_t *)h, &fd);
  sbx__close_handle(run, (uv_handle_t *)h, open);
  if (fd >= 0) close(fd);
}

/* Watches pid through a pidfd polled for readability (the process
 * exited): *open is set and the run counts the handle. Returns 0, or -1
 * when there is no pidfd (Linux < 5.3) or the poll cannot be made. */
static int watch_pidfd(sbx__bwrap_run *b, pid_t pid, uv_poll_t *h, bool *open, uv_poll_cb cb) {
  sbx_run *run = &b->run;
  int fd = pidfd_of(pid);
  if (fd < 0) return -1;
  if (uv_poll_init(run->runner->loop, h, fd) != 0) {
    close(fd);
    return -1;
  }
  h->data = run;
  *open = true;
  run->open_handles++;
  uv_poll_start(h, UV_READABLE, cb);
  return 0;
}

/* ---- orphaned inits ---- */

/* bwrap exits as soon as it knows its program's exit code, and its
 * namespace init, killed by that exit, is re-parented to the nearest
 * reaper: the host's init, or crucible itself when crucible is pid 1 (a
 * container's `crucible serve`), which then never reaped it: a zombie per
 * run (a one-shot runner is a subreaper on purpose: reap_bwrap_now). So
 * once bwrap is reaped (its children are re-parented by then), its init's
 * pidfd is kept and the init reaped through it whenever it is ours (waitid
 * P_PIDFD: that very process, never another that took its pid); one that
 * is not ours (ECHILD) is someone else's to reap. */
void sbx__bw_reap_orphans(sbx__bwrap *bw) {
  for (int i = 0; i < bw->norphans;) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PIDFD, (id_t)bw->orphans[i], &si, WEXITED | WNOHANG) == 0 && si.si_pid == 0) {
      i++; /* ours, still on its way out */
      continue;
    }
    close(bw->orphans[i]);
    bw->orphans[i] = bw->orphans[--bw->norphans];
  }
}

static void bw_reaped(sbx__bwrap_run *b) {
  sbx__bwrap *bw = sbx__bw(b->run.runner);
  if (b->run.bound && --bw->nprocs == 0) uv_unref((uv_handle_t *)&bw->sigchld);
  b->proc_alive = false;
  if (b->init_fd >= 0) {
    bw->orphans = xrealloc(bw->orphans, sizeof *bw->orphans * (size_t)(bw->norphans + 1));
    bw->orphans[bw->norphans++] = b->init_fd;
    b->init_fd = -1;
    sbx__bw_reap_orphans(bw);
  }
}

static void bwrap_exited_cb(uv_poll_t *h, int status, int events) {
  sbx__bwrap_run *b = sbx__bw_run(h->data);
  (void)events;
  int st;
  pid_t got = waitpid(b->pid, &st, WNOHANG);
  if (got == 0 && status == 0) return; /* not yet */
  if (got == 0) {
    /* The poll failed: bwrap, its init gone, is on its way out. */
    while (waitpid(b->pid, &st, 0) < 0 && errno == EINTR) {
    }
  }
  bw_reaped(b);
  close_pidfd_poll(&b->run, h, &b->reap_open);
}

/* Reads what is left in a pipe whose writers are all gone but bwrap,
 * which never writes the program's streams, then closes it. */
static void drain(sbx__bwrap_run *b, uv_pipe_t *p, bool *open, int stream) {
  if (!*open) return;
  uv_os_fd_t fd;
  char *slab = sbx__bw(b->run.runner)->slab;
  if (uv_fileno((uv_handle_t *)p, &fd) == 0) {
    for (;;) {
      ssize_t n = read(fd, slab, SBX_SLAB_SIZE);
      if (n > 0) sbx__run_output(&b->run, stream, slab, (size_t)n);
      else if (n < 0 && errno == EINTR) continue;
      else break; /* EAGAIN: all of it */
    }
  }
  sbx__close_handle(&b->run, (uv_handle_t *)p, open);
}

/* A one-shot run's cgroup can go only once bwrap's two processes have left
 * it, and on v1 both were born in it; a process leaves its cgroup when it is
 * reaped. The monitor is crucible's child; the init, re-parented when the
 * monitor exits, was reaped by the host's init 1-1.5 ms after bwrap's exit,
 * which crucible's exit waited for. A one-shot runner is therefore a child
 * subreaper (bw_init): the init becomes its orphan to reap ("orphaned
 * inits"). Both are on their way out once the exit code is in and no
 * process of the sandbox is left but them: their exits are waited for on
 * their pidfds, up to BWRAP_EXIT_WAIT_MS in all, and both reaped here; the
 * one-shot's loop has nothing else left to do. */
#define BWRAP_EXIT_WAIT_MS 50

static bool exited_by(int fd, unsigned long long until) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  for (;;) {
    unsigned long long now = now_ms();
    if (now >= until) return false;
    int r = poll(&p, 1, (int)(until - now));
    if (r > 0) return true;
    if (r == 0 || errno != EINTR) return false;
  }
}

static void reap_bwrap_now(sbx__bwrap_run *b) {
  sbx__bwrap *bw = sbx__bw(b->run.runner);
  unsigned long long until = now_ms() + BWRAP_EXIT_WAIT_MS;
  uv_os_fd_t fd;
  init_signal(b, SIGKILL);
  if (!b->reap_open || uv_fileno((uv_handle_t *)&b->reap_poll, &fd) || fd < 0 || !exited_by(fd, until)) return;
  if (waitpid(b->pid, NULL, WNOHANG) != b->pid) return;
  int init_fd = b->init_fd;
  bw_reaped(b); /* the init's pidfd goes to the orphans, reaped there if it is over */
  close_pidfd_poll(&b->run, &b->reap_poll, &b->reap_open);
  for (int i = 0; i < bw->norphans; i++)
    if (bw->orphans[i] == init_fd) {
      if (exited_by(init_fd, until)) sbx__bw_reap_orphans(bw);
      break;
    }
}

static void maybe_end_early(sbx__bwrap_run *b) {
  sbx_run *run = &b->run;
  if (run->state != SBX__RUNNING || run->exited || !b->code_known || !b->proc_alive || b->block_wfd >= 0)
    return;
  /* bwrap's monitor and init never write the program's streams: once no
   * process but those two is left in the cgroup (every process of the
   * sandbox is in it from the start; the monitor too on v1, where bwrap
   * joined it before its exec; on v2 a one-shot run's init may have left it
   * already), the init's exit, which tears the namespaces down, need not
   * be waited for to report the result. */
  if (!b->init_gone && !(b->in_cgroup && sbx_cg_others(&b->cg, b->child, b->pid) == 0)) return;
  /* bwrap is not reaped: its pid is still ours */
  if (watch_pidfd(b, b->pid, &b->reap_poll, &b->reap_open, bwrap_exited_cb)) return;
  drain(b, &b->out, &b->out_open, 1);
  drain(b, &b->err, &b->err_open, 2);
  sbx__close_handle(run, (uv_handle_t *)&b->status, &b->status_open);
  sbx__run_io_done(run);
  sbx__run_exited(run, b->code, 0);
  /* Its figures are read and its processes gone: the run's cgroup goes now,
   * while bwrap exits, not once bwrap is reaped. */
  if (run->runner->cfg.one_shot && b->joined) reap_bwrap_now(b);
  sbx__cg_bury(sbx__bw(run->runner), &b->cg);
}

static void init_exited_cb(uv_poll_t *h, int status, int events) {
  sbx__bwrap_run *b = sbx__bw_run(h->data);
  (void)events;
  uv_poll_stop(h);
  if (status < 0) return; /* the run ends when bwrap is reaped */
  b->init_gone = true;
  maybe_end_early(b);
}

/* On the child-pid line, while the init cannot have exited yet (it waits
 * for its release or, pre-started, for its program). The poll never keeps
 * the loop alive by itself: a running sandbox's pipes do. */
static void init_watch(sbx__bwrap_run *b) {
  if (watch_pidfd(b, b->child, &b->init_poll, &b->init_poll_open, init_exited_cb) == 0) {
    uv_unref((uv_handle_t *)&b->init_poll);
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&b->init_poll, &fd) == 0) b->init_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  }
}

static void status_line(sbx__bwrap_run *b, const char *line) {
  sbx_run *run = &b->run;
  const char *p;
  if ((p = strstr(line, "\"child-pid\":")) && !b->child) {
    b->child = (pid_t)strtol(p + 12, NULL, 10);
    if (b->child <= 0) return;
    init_watch(b);
    /* A warm sandbox waits for its request, unless its interpreter starts
     * ahead (then in its cgroup and rlimits from its first instruction). */
    if (!run->bound) {
      if (b->prestart) sbx__bw_release_child(b);
      return;
    }
    if (run->cancelled || b->kill_pending || run->error) sbx__run_kill(run);
    else if (b->block_wfd >= 0) sbx__bw_release_child(b);
    /* A one-shot runner sweeps now, while its sandbox is set up and its
     * program runs (see bw_init). */
    if (run->runner->cfg.one_shot && b->block_wfd < 0) sbx__bw_sweep(sbx__bw(run->runner));
  } else if ((p = strstr(line, "\"exit-code\":"))) {
    /* bwrap reports the exit code only of a program it exec'd; it exits
     * with the same code. */
    run->program_ran = true;
    b->code = (int)strtol(p + 12, NULL, 10);
    b->code_known = true;
    maybe_end_early(b);
  }
}

void sbx__bw_status_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  sbx__bwrap_run *b = sbx__bw_run(s->data);
  if (n > 0) {
    for (ssize_t i = 0; i < n; i++) {
      char c = buf->base[i];
      if (c == '\n') {
        b->status_buf[b->status_len] = '\0';
        status_line(b, b->status_buf);
        b->status_len = 0;
      } else if (b->status_len + 1 < sizeof b->status_buf) {
        b->status_buf[b->status_len++] = c;
      }
    }
    return;
  }
  if (n == 0) return;
  if (b->status_len) {
    b->status_buf[b->status_len] = '\0';
    status_line(b, b->status_buf);
    b->status_len = 0;
  }
  sbx__close_handle(&b->run, (uv_handle_t *)s, &b->status_open);
  stream_closed(b);
}

/* bwrap exited (reaped by sigchld_cb). */
static void bw_exited(sbx__bwrap_run *b, int64_t status, int sig) {
  bw_reaped(b);
  /* The sandbox's init gets SIGKILL from --die-with-parent when bwrap
   * exits. A child still blocked on --block-fd would run on once the
   * block pipe closes: kill it first (blocked, it cannot have exited). */
  if (b->in_cgroup) sbx_cg_kill(&b->cg, SIGKILL);
  if (b->block_wfd >= 0) {
    init_signal(b, SIGKILL);
    close(b->block_wfd);
    b->block_wfd = -1;
  }
  sbx__run_exited(&b->run, status, sig);
}

/* SIGCHLD: reap whichever bwrap processes have exited. Signals coalesce,
 * so every live run is checked; waitpid on a given pid never takes another
 * child (libuv's own handler does the same for its processes). */
static void sigchld_cb(uv_signal_t *h, int signum) {
  sbx__bwrap *bw = container_of(h, sbx__bwrap, sigchld);
  sbx_runner *self = bw->runner;
  (void)signum;
  for (sbx_run *r = self->warm, *next; r; r = next) {
    next = r->next;
    int st;
    sbx__bwrap_run *w = sbx__bw_run(r);
    if (w->proc_alive && waitpid(w->pid, &st, WNOHANG) == w->pid) bw_exited(w, 0, 0);
  }
  for (sbx_run *r = self->live, *next; r; r = next) {
    next = r->next;
    sbx__bwrap_run *b = sbx__bw_run(r);
    if (!b->proc_alive) continue;
    int st;
    pid_t got = waitpid(b->pid, &st, WNOHANG);
    if (got == b->pid) bw_exited(b, WIFEXITED(st) ? WEXITSTATUS(st) : 0, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  }
  sbx__bw_reap_orphans(bw);
}

/* ---- the memory watch ---- */

/* A cgroup's OOM kill is a SIGKILL: the program dies without a word, and
 * the feedback could say only that memory ran out. A Python program in a
 * cgroup is therefore watched: the memory its processes hold
 * (sbx_cg_memory_held) is read, and at MEMWATCH_SHARE of its limit the
 * runner stops it as at the wall time (sbx__run_stop_for: SIGABRT, so
 * faulthandler prints where it was, then a kill). The result is the same
 * "oom" with the memory limit named, now with the line. A fixed interval
 * missed fast growth: on a machine with cheap page faults a list of 1 MB
 * strings grew by ~2 MB per ms, past the last 10 % of 96 MiB in 5 ms,
 * between two reads 20 ms apart. So the next read comes as soon as the
 * program could reach the share: at the rate it grew since the last read,
 * or at MEMWATCH_FAST (4 MB per ms, twice what was seen), whichever is
 * sooner, with half the time to spare; between MEMWATCH_MIN_MS and
 * MEMWATCH_MS. The reads close in as the program nears its limit, and
 * the first comes MEMWATCH_FIRST_MS after the start. (The v1 memory
 * threshold, an eventfd, was tried: registering it waited for an RCU grace
 * period, 8.5 ms with the loop blocked, on every run.) One huge allocation
 * still meets the kernel's OOM kill first. */
#define MEMWATCH_MS 20
#define MEMWATCH_MIN_MS 1
#define MEMWATCH_FIRST_MS 5
#define MEMWATCH_FAST (4.0 * (1 << 20))
#define MEMWATCH_SHARE 0.9

static void memwatch_cb(uv_timer_t *t) {
  sbx__bwrap_run *b = container_of(t, sbx__bwrap_run, memwatch);
  sbx_run *run = &b->run;
  if (run->exited || run->killed_for || run->cancelled || !b->in_cgroup) return;
  long long held = sbx_cg_memory_held(sbx__bw(run->runner)->cg, &b->cg);
  unsigned long long now = now_ms();
  double share = (double)((unsigned long long)run->limits.memory_mb << 20) * MEMWATCH_SHARE;
  if (held >= 0 && (double)held >= share) {
    sbx__run_stop_for(run, SBX_LIMIT_MEMORY);
    return;
  }
  double per_ms = MEMWATCH_FAST;
  if (held > b->mem_held && now > b->mem_at) {
    double seen = (double)(held - b->mem_held) / (double)(now - b->mem_at);
    if (seen > per_ms) per_ms = seen;
  }
  double half_eta = (share - (double)(held > 0 ? held : 0)) / per_ms / 2;
  uint64_t next = half_eta < MEMWATCH_MIN_MS ? MEMWATCH_MIN_MS : half_eta < MEMWATCH_MS ? (uint64_t)half_eta : MEMWATCH_MS;
  if (held >= 0) {
    b->mem_held = held;
    b->mem_at = now;
  }
  uv_timer_start(t, memwatch_cb, next, 0);
}

void sbx__bw_memwatch_start(sbx__bwrap_run *b) {
  sbx_run *run = &b->run;
  if (run->lang != SBX_LANG_PYTHON || !b->in_cgroup || run->limits.memory_mb <= 0 || run->error) return;
  if (!b->memwatch_open) {
    uv_timer_init(run->runner->loop, &b->memwatch);
    b->memwatch.data = run;
    b->memwatch_open = true;
    run->open_handles++;
  }
  b->mem_held = 0;
  b->mem_at = now_ms();
  uv_timer_start(&b->memwatch, memwatch_cb, MEMWATCH_FIRST_MS, 0);
}

/* ---- the init leaves the cgroup ---- */

/* The namespace init (bwrap's pid 1) only waits and reaps: it never runs
 * the program's code. In a one-shot run, once the program's first process,
 * which the init forks after its release, is in the run's cgroup, the init
 * moves back to crucible's own cgroup. The run's cgroup then empties when the
 * program's last process exits and can be removed at once, instead of
 * after the init's own exit, which tears the namespaces down (for the
 * mount namespace an expedited RCU grace period: milliseconds on a virtual
 * machine), with every one-shot `crucible run` waiting for it. Tried
 * LEAVE_FIRST_MS after the release, then at doubling delays up to
 * LEAVE_MAX_MS, until done or the run ended. A program over before its
 * init left takes the old way: the cgroup goes when the init has exited.
 * The init stays the run's: its pidfd kills the whole pid namespace. A
 * server's cgroups go after the result, off the run's path: its inits stay. */
#define LEAVE_FIRST_MS 1
#define LEAVE_MAX_MS 16

static void leave_cb(uv_timer_t *t) {
  sbx__bwrap_run *b = container_of(t, sbx__bwrap_run, leave);
  sbx_run *run = &b->run;
  if (run->exited || b->init_gone || !b->in_cgroup || b->child <= 0) return;
  int others = sbx_cg_others(&b->cg, b->child, b->pid);
  if (others < 0) return;
  if (others > 0) {
    int err = sbx_cg_detach(sbx__bw(run->runner)->cg, &b->cg, b->child);
    if (err) log_debug("sandbox: the init of %s stays in its cgroup (%s)", run->name, strerror(-err));
    return;
  }
  b->leave_ms = b->leave_ms * 2 < LEAVE_MAX_MS ? b->leave_ms * 2 : LEAVE_MAX_MS;
  uv_timer_start(t, leave_cb, b->leave_ms, 0);
}

void sbx__bw_leave_start(sbx__bwrap_run *b) {
  sbx_run *run = &b->run;
  if (!b->in_cgroup || b->joined || b->child <= 0 || b->leave_open || !run->runner->cfg.one_shot) return;
  uv_timer_init(run->runner->loop, &b->leave);
  b->leave.data = run;
  b->leave_open = true;
  run->open_handles++;
  uv_unref((uv_handle_t *)&b->leave); /* a running sandbox's pipes keep the loop alive */
  b->leave_ms = LEAVE_FIRST_MS;
  uv_timer_start(&b->leave, leave_cb, b->leave_ms, 0);
}

/* ---- stopping ---- */

/* Python gets SIGABRT rather than SIGTERM: with PYTHONFAULTHANDLER set
 * (bwrap.c) the interpreter prints the stack of every thread before it
 * dies, so the feedback says where a program that ran out of time was.
 * Python's default SIGTERM ends it as abruptly, so nothing is lost. */
static void bw_term(sbx_run *run) {
  sbx__bwrap_run *b = sbx__bw_run(run);
  if (b->child > 0 && !b->init_gone) sbx_procs_signal_tree(b->child, run->lang == SBX_LANG_PYTHON ? SIGABRT : SIGTERM);
}

static void bw_kill(sbx_run *run) {
  sbx__bwrap_run *b = sbx__bw_run(run);
  if (!b->child) {
    /* bwrap has not reported its child yet: killing bwrap now could strand
     * the child, blocked for good. Kill as soon as the pid arrives. */
    b->kill_pending = true;
    return;
  }
  init_signal(b, SIGKILL); /* pid namespace init: takes every process with it */
  if (b->in_cgroup) sbx_cg_kill(&b->cg, SIGKILL);
  if (b->proc_alive) kill(b->pid, SIGKILL);
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

static void bw_observe(sbx_run *run, sbx_facts *f) {
  sbx__bwrap_run *b = sbx__bw_run(run);
  sbx_cg_stats cs = {-1, -1, -1, -1};
  if (b->in_cgroup) sbx_cg_read_stats(sbx__bw(run->runner)->cg, &b->cg, &cs);
  f->in_cgroup = b->in_cgroup;
  f->oom_kills = cs.oom_kills;
  f->peak_bytes = cs.peak_bytes;
  f->cpu_ns = cs.cpu_ns;
  f->pids_max = cs.pids_max;
  if (!run->cancelled && !run->program_ran && !run->killed_for && !run->error) {
    /* bwrap never exec'd the program: the sandbox itself failed. */
    const char *e = run->ebuf.data ? run->ebuf.data : "";
    run->error = xasprintf("the sandbox could not start (bwrap exit %d): %.*s%s", (int)run->exit_status,
                           (int)strcspn(e, "\n"), e, userns_hint(e));
  }
}

/* Waits (at most ~100 ms) until pid is stopped or gone. */
static void wait_stopped(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  for (int i = 0; i < 100; i++) {
    char buf[512];
    FILE *f = fopen(path, "r");
    if (!f) return;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *st = strrchr(buf, ')'); /* the state follows the command's closing parenthesis */
    if (!st || st[1] != ' ' || strchr("tTZX", st[2])) return;
    usleep(1000);
  }
}

static void bw_cleanup(sbx_run *run) {
  sbx__bwrap_run *b = sbx__bw_run(run);
  if (b->proc_alive && !b->reap_open) {
    /* An unused warm sandbox at close: kill and reap it now, its namespace
     * init first. Killing bwrap alone before it reported that init would
     * strand it, blocked on bwrap's eventfd for ever: bwrap is stopped (no
     * more clones) and its descendants are killed by the process tree. */
    if (b->child) {
      init_signal(b, SIGKILL);
    } else if (kill(b->pid, SIGSTOP) == 0) {
      wait_stopped(b->pid);
      sbx_procs_signal_tree(b->pid, SIGKILL);
    }
    if (b->in_cgroup) sbx_cg_kill(&b->cg, SIGKILL);
    kill(b->pid, SIGKILL);
    while (waitpid(b->pid, NULL, 0) < 0 && errno == EINTR) {
    }
    bw_reaped(b);
  }
  close_pidfd_poll(run, &b->init_poll, &b->init_poll_open);
  if (b->block_wfd >= 0) close(b->block_wfd);
  b->block_wfd = -1;
  if (b->stdin_fd >= 0) close(b->stdin_fd);
  b->stdin_fd = -1;
  if (b->text_fd >= 0) close(b->text_fd);
  b->text_fd = -1;
  sbx__close_handle(run, (uv_handle_t *)&b->out, &b->out_open);
  sbx__close_handle(run, (uv_handle_t *)&b->err, &b->err_open);
  sbx__close_handle(run, (uv_handle_t *)&b->status, &b->status_open);
  sbx__close_handle(run, (uv_handle_t *)&b->code_pipe, &b->code_open);
  sbx__close_handle(run, (uv_handle_t *)&b->memwatch, &b->memwatch_open);
  sbx__close_handle(run, (uv_handle_t *)&b->leave, &b->leave_open);
}

/* ---- closing ---- */

static void bw_handle_closed(uv_handle_t *h) {
  sbx__bwrap *bw = h->data;
  if (--bw->closing_handles > 0) return;
  sbx_runner *self = bw->runner;
  sbx__bw_reap_orphans(bw);
  for (int i = 0; i < bw->norphans; i++) close(bw->orphans[i]);
  free(bw->orphans);
  sbx_cgroups_free(bw->cg);
  sbx_roots_free(bw->roots, bw->nroots);
  free(bw->masks);
  free(bw->etc_base);
  free(bw->bwrap);
  free(bw->slab);
  for (int l = 0; l < SBX_LANG_COUNT; l++) free(bw->interp[l]);
  free(bw);
  self->be = NULL;
  sbx__runner_backend_closed(self);
}

void sbx__bw_maybe_closed(sbx__bwrap *bw) {
  /* Cgroups still busy are retried by the reaper, which calls again. */
  if (bw->closing != 1 || bw->graves) return;
  bw->closing = 2;
  bw->closing_handles = 2;
  bw->reaper.data = bw->sigchld.data = bw;
  uv_close((uv_handle_t *)&bw->reaper, bw_handle_closed);
  uv_close((uv_handle_t *)&bw->sigchld, bw_handle_closed);
}

static void bw_close(sbx_runner *self) {
  sbx__bwrap *bw = sbx__bw(self);
  bw->closing = 1;
  sbx__bw_sweep(bw); /* a one-shot runner's */
  sbx__cgpool_drain(bw);
  sbx__bw_maybe_closed(bw);
}

const sbx__backend sbx__bwrap_backend = {
    .name = "bwrap", .init = bw_init, .has_lang = bw_has_lang, .fits = sbx__bw_fits,
    .run_new = bw_run_new, .prepare = sbx__bw_prepare, .start = sbx__bw_start, .term = bw_term,
    .kill = bw_kill, .observe = bw_observe, .cleanup = bw_cleanup, .run_free = bw_run_free,
    .close = bw_close,
};
