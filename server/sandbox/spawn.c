/* How the bwrap backend makes a sandbox and lets it run: the memfds and
 * pipes it is given, its command line (bwrap.c), vfork + exec with the
 * rlimits (launch.c); then, on start, the request's stdin, the run's
 * cgroup, the program's text and the release past --block-fd. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bwrap.h"
#include "cgroup.h"
#include "common.h"
#include "etcview.h"
#include "internal.h"
#include "launch.h"
#include "log.h"
#include "procs.h"
#include "seccomp_cache.h"
#include "seccomp_filter.h"
#include "xdg.h"

/* Descriptors a bwrap child gets: 8 fixed, one per masked /proc file, the
 * launcher's. */
#define MAX_CHILD_FDS 32

/* Shared by every run: the seccomp program, built once. */
static char *g_bpf;
static size_t g_bpf_len;
static int g_bpf_err = 1; /* 1: not built yet */

int sbx__bw_seccomp_init(bool use_cache) {
  if (g_bpf_err != 1) return g_bpf_err;
  char key[512], path[PATH_MAX];
  use_cache = use_cache && sbx_seccomp_cache_key(key, sizeof key) == 0 &&
              xdg_app_path(XDG_CACHE, SBX_SECCOMP_CACHE_NAME, path, sizeof path) == 0;
  /* Whatever is wrong with the file (missing, another build's, truncated,
   * corrupted), the program is built afresh: never a weaker filter. */
  if (use_cache && sbx_seccomp_cache_load(path, key, &g_bpf, &g_bpf_len) == 0) return g_bpf_err = 0;
  scmp_filter_ctx ctx;
  g_bpf_err = sbx_seccomp_build(&ctx);
  if (!g_bpf_err) {
    g_bpf_err = sbx_seccomp_export(ctx, &g_bpf, &g_bpf_len);
    seccomp_release(ctx);
  }
  if (!g_bpf_err && use_cache) {
    int e = sbx_seccomp_cache_store(path, key, g_bpf, g_bpf_len);
    if (e) log_debug("sandbox: cannot cache the seccomp program in %s: %s", path, strerror(-e));
  }
  return g_bpf_err;
}

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
  if (!sbx__bw(self)->cg) {
    rlim_t mem = (rlim_t)lim->memory_mb << 20;
    out[n++] = (sbx_rlimit){RLIMIT_DATA, {mem, mem}};
    if (self->set_ids) out[n++] = (sbx_rlimit){RLIMIT_NPROC, {(rlim_t)lim->pids, (rlim_t)lim->pids}};
  }
  return n;
}

/* A sandbox started with limits made serves a request for want when the
 * rlimits and tmpfs sizes fixed at its start are the same. */
bool sbx__bw_fits(const sbx_runner *self, const sbx_limits *made, const sbx_limits *want) {
  return made->cpu_seconds == want->cpu_seconds && made->disk_mb == want->disk_mb &&
         (sbx__bw(self)->cg || (made->memory_mb == want->memory_mb && made->pids == want->pids));
}

/* Spawns bwrap for run, which then waits for its program on the code
 * pipe. Returns 0 or a negative errno with run->error set. */
int sbx__bw_prepare(sbx_run *run) {
  sbx_runner *self = run->runner;
  sbx__bwrap *bw = sbx__bw(self);
  sbx__bwrap_run *b = sbx__bw_run(run);
  int err = 0;
  int fd_bpf = -1, fd_in = -1, fd_empty = -1, fd_etc = -1;
  int st[2] = {-1, -1}, blk[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1}, cp[2] = {-1, -1};
  int pp[2] = {-1, -1};
  int fd_text = -1;
  char *launcher = NULL;
  int hi[MAX_CHILD_FDS];
  for (size_t i = 0; i < ARRAY_LEN(hi); i++) hi[i] = -1;
  char **argv = NULL;
  char *etc_view = NULL;
  char *join[SBX_CG_N] = {0}; /* the cgroup files bwrap joins by (sbx_cg_join_files) */
  int njoin = 0;
  if (!bw->interp[run->lang] && !(run->env && run->env->interp)) {
    run->error = xasprintf("no %s interpreter under /usr: install it (e.g. apt install %s)",
                           sbx_lang_name(run->lang), lang_get(run->lang)->package);
    return -ENOENT;
  }
  /* stdin is an empty memfd now, filled on start (pwrite: the child's
   * offset, shared with ours, stays at 0). */
  if ((fd_bpf = memfd_with("crucible-seccomp", g_bpf, g_bpf_len)) < 0 ||
      (fd_in = memfd_with("crucible-stdin", "", 0)) < 0 ||
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
   * known, which is what lets a sandbox be made ahead (warm.c). */
  if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 || pipe2(cp, O_CLOEXEC) < 0) {
    err = -errno;
    run->error = xasprintf("pipe2: %s", strerror(errno));
    goto out;
  }
  /* A warm sandbox of a language with a launcher goes further: its
   * interpreter starts now and waits for the program on a pipe of its own
   * (prelude.c). */
  b->prestart = run->state == SBX__WARM && !run->env && !self->cfg.no_prestart && sbx__prelude_has(run->lang);
  if (b->prestart && pipe2(pp, O_CLOEXEC) < 0) {
    err = -errno;
    run->error = xasprintf("pipe2: %s", strerror(errno));
    goto out;
  }
  if (b->prestart && sbx__prelude_text_fd(run->lang) && (fd_text = memfd_with("crucible-program", "", 0)) < 0) {
    err = -ENOMEM;
    run->error = xstrdup("cannot create the program's memfd (memfd_create failed)");
    goto out;
  }
  /* The sandbox's /etc: the view of the host's as it is now, looked up at
   * every spawn (a long-lived server sees /etc change), made when the host
   * changed (etcview.h). bwrap gets it as a descriptor (and closes it):
   * its path, on bwrap's command line, would show in the sandbox's
   * /proc/1/cmdline, and with it the host's user name or cache folder. */
  char *verr = NULL;
  if (!bw->etc_base) {
    long uid = self->set_ids ? (long)self->host_uid : -1, gid = self->set_ids ? (long)self->host_gid : -1;
    bw->etc_base = sbx_etc_view_base(uid, gid, &verr);
  }
  etc_view = bw->etc_base ? sbx_etc_view(bw->etc_base, "", run->env && run->env->network, &verr) : NULL;
  if (!etc_view) {
    err = -EIO;
    run->error = verr;
    goto out;
  }
  if ((fd_etc = open(etc_view, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
    err = -errno;
    run->error = xasprintf("cannot open the sandbox's /etc at %s: %s", etc_view, strerror(errno));
    goto out;
  }
  /* Child fd numbers: 0-2 stdio, then the fds bwrap reads, then one empty
   * file per masked /proc file (bwrap closes each after reading it). */
  enum { C_BPF = 3, C_CODE, C_STATUS, C_BLOCK, C_ETC, C_EMPTY };
  int src[MAX_CHILD_FDS] = {fd_in, outp[1], errp[1], fd_bpf, cp[0], st[1], blk[0], fd_etc};
  int C_N = C_EMPTY + sbx_masks_empty(bw->masks);
  for (int i = C_EMPTY; i < C_N; i++) src[i] = fd_empty;
  if (b->prestart) {
    /* The launcher is the script bwrap's --file writes; it reads the
     * program from its own descriptor, which bwrap passes on. */
    int c_prog = C_N++, c_text = -1;
    src[c_prog] = pp[0];
    if (fd_text >= 0) src[c_text = C_N++] = fd_text;
    launcher = sbx__prelude_script(run->lang, c_prog, c_text);
    if ((err = write_all(cp[1], launcher, strlen(launcher)))) {
      run->error = xasprintf("cannot write the launcher: %s", strerror(-err));
      goto out;
    }
    close(cp[1]);
    cp[1] = pp[1];
    pp[1] = -1;
  }
  /* The cgroup now, with the limits of this moment (a warm sandbox's: the
   * defaults; the request's own replace them on start): bwrap joins it
   * itself before its exec (v1), so the namespace init and the program are
   * born inside it, and no move by pid waits for an RCU grace period while
   * the sandbox is blocked on its release (sbx_cg_join_files). A
   * pre-started interpreter starts inside it too. */
  if (bw->cg) {
    b->cg_limits = run->limits;
    int e = sbx__cgpool_take(bw, &run->limits, &b->cg);
    if (e) e = sbx_cg_create(bw->cg, run->name, &run->limits, &b->cg);
    if (e) {
      err = e;
      run->error = xasprintf("cannot create the run's cgroup %s (%s)", run->name, strerror(-e));
      goto out;
    }
    b->in_cgroup = true;
    njoin = sbx_cg_join_files(bw->cg, &b->cg, join);
  }

  sbx_bwrap_spec spec = {
      .bwrap = bw->bwrap, .interp = bw->interp[run->lang], .lang = run->lang, .env = run->env,
      .limits = &run->limits, .masks = bw->masks, .roots = bw->roots, .nroots = bw->nroots,
      .fd_etc = C_ETC, .fd_code = C_CODE, .fd_seccomp = C_BPF, .fd_status = C_STATUS, .fd_block = C_BLOCK,
      .fd_empty = C_EMPTY, .setenv = b->prestart ? sbx__prelude_env(run->lang) : NULL,
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
   * exit is reaped by the backend's SIGCHLD watcher. */
  pid_t pid = -1;
  sbx_rlimit rls[6];
  int nrls = rlimits_of(self, &run->limits, rls);
  sbx_launch_spec sp = {
      .path = argv[0], .argv = argv, .envp = env, .fds = hi, .nfds = C_N, .rlimits = rls, .nrlimits = nrls,
      .join = join, .njoin = njoin, .new_session = true, .set_ids = self->set_ids, .uid = self->host_uid,
      .gid = self->host_gid,
  };
  int serr = -sbx_launch(&sp, &pid);
  b->joined = njoin > 0 && !serr;
  uv_pipe_init(self->loop, &b->out, 0);
  uv_pipe_init(self->loop, &b->err, 0);
  uv_pipe_init(self->loop, &b->status, 0);
  uv_pipe_init(self->loop, &b->code_pipe, 0);
  b->out.data = b->err.data = b->status.data = b->code_pipe.data = run;
  b->out_open = b->err_open = b->status_open = b->code_open = true;
  run->open_handles += 4;
  if (serr) {
    err = -serr;
    run->error = xasprintf("cannot start %s as uid %u: %s", bw->bwrap, (unsigned)self->host_uid,
                           strerror(serr));
    goto out;
  }
  b->proc_alive = true;
  if ((err = uv_pipe_open(&b->out, outp[0])) == 0) outp[0] = -1;
  if (!err && (err = uv_pipe_open(&b->err, errp[0])) == 0) errp[0] = -1;
  if (!err && (err = uv_pipe_open(&b->code_pipe, cp[1])) == 0) cp[1] = -1;
  if (err) {
    run->error = xasprintf("cannot read the sandbox's output: %s", uv_strerror(err));
    /* Not started as far as the caller knows: stop and reap it here. */
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    b->proc_alive = false;
    goto out;
  }
  b->pid = pid;
  b->block_wfd = blk[1];
  blk[1] = -1;
  if ((err = uv_pipe_open(&b->status, st[0])) == 0) st[0] = -1;
  uv_read_start((uv_stream_t *)&b->out, sbx__bw_alloc_cb, sbx__bw_read_cb);
  uv_read_start((uv_stream_t *)&b->err, sbx__bw_alloc_cb, sbx__bw_read_cb);
  uv_read_start((uv_stream_t *)&b->status, sbx__bw_alloc_cb, sbx__bw_status_cb);
  b->stdin_fd = fd_in;
  fd_in = -1;
  b->text_fd = fd_text;
  fd_text = -1;
  if (run->state == SBX__WARM) {
    /* A warm sandbox must not keep the loop alive: only runs do. */
    uv_unref((uv_handle_t *)&b->out);
    uv_unref((uv_handle_t *)&b->err);
    uv_unref((uv_handle_t *)&b->status);
    uv_unref((uv_handle_t *)&b->code_pipe);
  }
  err = 0;
out:
  if (err) {
    /* The pipes were initialised but never used. */
    sbx__close_handle(run, (uv_handle_t *)&b->out, &b->out_open);
    sbx__close_handle(run, (uv_handle_t *)&b->err, &b->err_open);
    sbx__close_handle(run, (uv_handle_t *)&b->status, &b->status_open);
    sbx__close_handle(run, (uv_handle_t *)&b->code_pipe, &b->code_open);
  }
  int fds[] = {fd_bpf, fd_in, fd_empty, fd_etc, st[0], st[1], blk[0], blk[1],
               outp[0], outp[1], errp[0], errp[1], cp[0], cp[1], pp[0], pp[1], fd_text};
  for (size_t i = 0; i < ARRAY_LEN(fds); i++)
    if (fds[i] >= 0) close(fds[i]);
  for (size_t i = 0; i < ARRAY_LEN(hi); i++)
    if (hi[i] >= 0) close(hi[i]);
  free(etc_view);
  for (int i = 0; i < njoin; i++) free(join[i]);
  sbx_argv_free(argv);
  free(launcher);
  return err;
}

static void code_written(uv_write_t *req, int status) {
  sbx__bwrap_run *b = container_of(req, sbx__bwrap_run, code_req);
  (void)status;
  /* Closing the pipe is the end of file bwrap's --file copy waits for. */
  sbx__close_handle(&b->run, (uv_handle_t *)&b->code_pipe, &b->code_open);
}

/* Sends the program: to bwrap's --file, or to a pre-started interpreter's
 * launcher. Closing the pipe ends it. */
static void write_code(sbx__bwrap_run *b) {
  sbx_run *run = &b->run;
  if (b->text_fd >= 0) {
    /* Into the launcher's memfd (pwrite: the offset the launcher reads
     * from, shared with ours, stays at 0), then the end of file it waits
     * for. A short write leaves a program the launcher cuts short: the
     * run fails instead. */
    ssize_t w = pwrite(b->text_fd, run->code, run->code_len, 0);
    if (w != (ssize_t)run->code_len)
      sbx__run_fail(run, xasprintf("cannot pass the program to the sandbox: %s", w < 0 ? strerror(errno) : "short write"));
    close(b->text_fd);
    b->text_fd = -1;
    sbx__close_handle(run, (uv_handle_t *)&b->code_pipe, &b->code_open);
    return;
  }
  uv_buf_t buf = uv_buf_init(run->code, (unsigned)run->code_len);
  if (!run->code_len || uv_write(&b->code_req, (uv_stream_t *)&b->code_pipe, &buf, 1, code_written) != 0)
    sbx__close_handle(run, (uv_handle_t *)&b->code_pipe, &b->code_open);
}

/* A warm sandbox could not be released: kill it; its exit discards it. */
static void warm_fail(sbx__bwrap_run *b, char *why) {
  log_debug("sandbox: warm sandbox %s: %s", b->run.name, why);
  free(why);
  if (b->child > 0) kill(b->child, SIGKILL);
  if (b->proc_alive) kill(b->pid, SIGKILL);
}

/* Lets bwrap's child continue past --block-fd once it sits in its cgroup
 * with its rlimits: nothing it forks can escape them. A sandbox that
 * joined its cgroup itself is released without its child's pid. */
void sbx__bw_release_child(sbx__bwrap_run *b) {
  sbx_run *run = &b->run;
  pid_t c = b->child;
  int err = 0;
  if (b->in_cgroup && !b->joined && (err = sbx_cg_attach(&b->cg, c))) {
    char *why = xasprintf("could not move the sandbox into its cgroup (%s)", strerror(-err));
    if (run->state == SBX__WARM) warm_fail(b, why);
    else sbx__run_fail(run, why);
    return;
  }
  /* The other rlimits were set before bwrap's exec (see rlimits_of).
   * RLIMIT_NPROC counts the processes of a uid in a user namespace: an
   * unprivileged server sets it only now, inside the sandbox's namespace,
   * where it counts the sandbox's processes and not all of the user's. */
  if (!b->in_cgroup && !run->runner->set_ids) {
    struct rlimit rl = {(rlim_t)run->limits.pids, (rlim_t)run->limits.pids};
    if (prlimit(c, RLIMIT_NPROC, &rl, NULL) < 0) err = -errno;
  }
  if (err) {
    char *why = xasprintf("could not apply rlimits to the sandbox (%s)", strerror(-err));
    if (run->state == SBX__WARM) warm_fail(b, why);
    else sbx__run_fail(run, why);
    return;
  }
  /* Only now, with the cgroup and rlimits in place, does the program's text
   * go to bwrap: if the server died before this point, bwrap would read
   * end-of-file on both pipes and carry on with an empty program. A
   * pre-started sandbox gets its program on start instead (it had its
   * launcher from the start). */
  if (!b->prestart) write_code(b);
  ssize_t w;
  do w = write(b->block_wfd, "x", 1);
  while (w < 0 && errno == EINTR);
  close(b->block_wfd);
  b->block_wfd = -1;
  sbx__bw_leave_start(b);
}

/* Gives the request to the spawned sandbox: its stdin and its cgroup's
 * limits. bwrap's child is released (sbx__bw_release_child) now if it
 * joined its cgroup itself, else as soon as both this and its pid are
 * known. */
void sbx__bw_start(sbx_run *run) {
  sbx_runner *self = run->runner;
  sbx__bwrap *bw = sbx__bw(self);
  sbx__bwrap_run *b = sbx__bw_run(run);
  /* Until its bwrap is reaped, the SIGCHLD watcher keeps the loop alive. */
  bw->nprocs++;
  uv_ref((uv_handle_t *)&bw->sigchld);
  uv_ref((uv_handle_t *)&b->out);
  uv_ref((uv_handle_t *)&b->err);
  uv_ref((uv_handle_t *)&b->status);
  uv_ref((uv_handle_t *)&b->code_pipe);
  if (run->stdin_len && pwrite(b->stdin_fd, run->stdin_data, run->stdin_len, 0) != (ssize_t)run->stdin_len)
    sbx__run_fail(run, xasprintf("cannot pass stdin to the sandbox: %s", strerror(errno)));
  close(b->stdin_fd);
  b->stdin_fd = -1;
  run->iso = SBX_ISO_RLIMIT;
  /* The cgroup was taken at the spawn: the request's own memory and pids
   * limits replace those it was made with before the program may run. */
  if (b->in_cgroup) {
    int e = 0;
    if (run->limits.memory_mb != b->cg_limits.memory_mb || run->limits.pids != b->cg_limits.pids)
      e = sbx_cg_set_limits(bw->cg, &b->cg, &run->limits);
    if (e) sbx__run_fail(run, xasprintf("cannot set the limits of cgroup %s (%s)", run->name, strerror(-e)));
    else run->iso = bw->cg->version == SBX_CG_V2 ? SBX_ISO_CGROUP_V2 : SBX_ISO_CGROUP_V1;
  }
  if (b->prestart) {
    /* In its cgroup with its rlimits since its release: the program goes
     * to its interpreter now. */
    if (run->cancelled || b->kill_pending || run->error) {
      sbx__run_kill(run);
    } else {
      write_code(b);
      sbx__bw_memwatch_start(b);
    }
    return;
  }
  /* A sandbox that joined its cgroup itself has its cgroup and rlimits
   * since bwrap's exec: it is released now, and its program's text is in
   * the pipe before bwrap's --file reads it; bwrap no longer waits for its
   * pid's round trip through this loop. */
  if (b->block_wfd >= 0 && (b->child > 0 || b->joined)) {
    if (run->cancelled || b->kill_pending || run->error) sbx__run_kill(run);
    else sbx__bw_release_child(b);
  }
  sbx__bw_memwatch_start(b);
}
