/* `sbx_doctor_start`: what a runner's sandbox enforces on this machine, found
 * by probing and by running a trivial program in each language through it. */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "common.h"
#include "internal.h"
#include "sandbox.h"
#include "seccomp_filter.h"

extern char **environ;

/* Runs argv, returns its first stdout line (new string) or NULL. */
static char *capture(char *const argv[]) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return NULL;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  posix_spawn_file_actions_adddup2(&fa, p[1], 2);
  pid_t pid;
  int err = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(p[1]);
  char buf[512];
  size_t len = 0;
  ssize_t n;
  while (!err && len < sizeof buf - 1 && (n = read(p[0], buf + len, sizeof buf - 1 - len)) > 0)
    len += (size_t)n;
  close(p[0]);
  if (err) return NULL;
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  buf[len] = '\0';
  buf[strcspn(buf, "\n")] = '\0';
  return xstrdup(buf);
}

/* One doctor's visit: the facts are written at the start; the probes fill
 * in their languages as they end; a zero-delay timer answers from the loop
 * once the last one is in. */
typedef struct doctor doctor;

typedef struct probe {
  doctor *doc;
  cJSON *out;
} probe;

struct doctor {
  sbx_runner *runner;
  cJSON *rep, *hints;
  probe probes[SBX_LANG_COUNT];
  int pending;
  uv_timer_t finish;
  sbx_doctor_fn cb;
  void *ud;
};

static void finish_cb(uv_timer_t *t);

static void part_done(doctor *d) {
  if (--d->pending == 0) uv_timer_start(&d->finish, finish_cb, 0, 0);
}

static void probe_done(void *ud, const sbx_result *r) {
  probe *p = ud;
  cJSON *o = p->out;
  cJSON_AddBoolToObject(o, "ok", r->outcome == SBX_OK);
  if (r->outcome == SBX_OK) {
    char *v = xstrndup(r->out, strcspn(r->out, "\n"));
    cJSON_AddStringToObject(o, "version", v);
    free(v);
  } else {
    cJSON_AddStringToObject(o, "error", r->error ? r->error : r->err_len ? r->err : "failed");
  }
  cJSON_AddNumberToObject(o, "durationMs", (double)r->duration_ms);
  part_done(p->doc);
}

static void doctor_freed(uv_handle_t *h) {
  free(container_of((uv_timer_t *)h, doctor, finish));
}

/* What the probes showed, then the answer. */
static void finish_cb(uv_timer_t *t) {
  doctor *d = container_of(t, doctor, finish);
  if (d->runner->backend->doctor) {
    /* Python is the language the image must have; the others are optional. */
    bool ok = cJSON_IsTrue(cJSON_GetObjectItem(d->probes[SBX_LANG_PYTHON].out, "ok")) && !d->runner->setup_error;
    cJSON_AddBoolToObject(d->rep, "ok", ok);
    const char *problem = sbx_runner_problem(d->runner);
    if (problem) cJSON_AddStringToObject(d->rep, "problem", problem);
    cJSON_AddItemToObject(d->rep, "hints", d->hints);
    d->cb(d->ud, d->rep);
    uv_close((uv_handle_t *)&d->finish, doctor_freed);
    return;
  }
  const sbx__bwrap *be = sbx__bw(d->runner);
  bool any_ok = false, sandbox_failed = false;
  const char *why = NULL;
  for (int l = 0; l < SBX_LANG_COUNT; l++) {
    cJSON *ok = cJSON_GetObjectItem(d->probes[l].out, "ok");
    if (cJSON_IsTrue(ok)) any_ok = true;
    cJSON *err = cJSON_GetObjectItem(d->probes[l].out, "error");
    if (cJSON_IsString(err) && strstr(err->valuestring, "sandbox could not start"))
      sandbox_failed = true, why = err->valuestring;
    if (!be->interp[l]) {
      const lang_info *li = lang_get((lang_id)l);
      char *hint = xasprintf("install %s (apt install %s)", li->program, li->package);
      cJSON_AddItemToArray(d->hints, cJSON_CreateString(hint));
      free(hint);
    }
  }
  cJSON *un = cJSON_AddObjectToObject(d->rep, "userNamespaces");
  cJSON_AddBoolToObject(un, "ok", any_ok);
  if (!any_ok && sandbox_failed) {
    cJSON_AddStringToObject(un, "error", why);
    cJSON_AddItemToArray(d->hints, cJSON_CreateString(
        "user namespaces are refused: on Ubuntu 23.10+ set sysctl "
        "kernel.apparmor_restrict_unprivileged_userns=0 or install bubblewrap's AppArmor "
        "profile; elsewhere check sysctl user.max_user_namespaces and "
        "kernel.unprivileged_userns_clone"));
  }
  cJSON_AddBoolToObject(d->rep, "ok", any_ok && be->bwrap);
  const char *problem = sbx_runner_problem(d->runner);
  if (problem) cJSON_AddStringToObject(d->rep, "problem", problem);
  cJSON_AddItemToObject(d->rep, "hints", d->hints);
  d->cb(d->ud, d->rep);
  uv_close((uv_handle_t *)&d->finish, doctor_freed);
}

/* The facts that need no run: ids, bwrap, seccomp, cgroups, limits. */
static void facts(doctor *d) {
  sbx_runner *runner = d->runner;
  cJSON *rep = d->rep, *hints = d->hints;
  if (runner->backend->doctor) {
    runner->backend->doctor(runner, rep, hints);
    return;
  }
  const sbx__bwrap *be = sbx__bw(runner);
  cJSON_AddStringToObject(rep, "backend", "bubblewrap");

  long uid, gid;
  sbx_runner_host_ids(runner, &uid, &gid);
  cJSON *ids = cJSON_AddObjectToObject(rep, "runsAs");
  cJSON_AddNumberToObject(ids, "hostUid", (double)uid);
  cJSON_AddNumberToObject(ids, "hostGid", (double)gid);
  cJSON_AddStringToObject(ids, "how", runner->set_ids
      ? "the server is root: bwrap and every sandboxed program run as this unprivileged host "
        "uid/gid (sandbox.uid/sandbox.gid in the user file; never 0)"
      : "the server's own uid: the user namespace maps the sandbox user onto it");

  cJSON *bw = cJSON_AddObjectToObject(rep, "bwrap");
  cJSON_AddBoolToObject(bw, "found", be->bwrap != NULL);
  if (be->bwrap) {
    cJSON_AddStringToObject(bw, "path", be->bwrap);
    char *argv[] = {be->bwrap, "--version", NULL};
    char *v = capture(argv);
    if (v) cJSON_AddStringToObject(bw, "version", v);
    free(v);
  } else {
    cJSON_AddItemToArray(hints, cJSON_CreateString("install bubblewrap (apt install bubblewrap)"));
  }

  /* seccomp */
  cJSON *sc = cJSON_AddObjectToObject(rep, "seccomp");
  scmp_filter_ctx ctx;
  int e = sbx_seccomp_build(&ctx);
  cJSON_AddBoolToObject(sc, "ok", e == 0);
  if (!e) seccomp_release(ctx);
  else cJSON_AddStringToObject(sc, "error", strerror(-e));
  const struct scmp_version *sv = seccomp_version();
  char ver[32];
  snprintf(ver, sizeof ver, "%u.%u.%u", sv->major, sv->minor, sv->micro);
  cJSON_AddStringToObject(sc, "libseccomp", ver);
  cJSON *den = cJSON_AddArrayToObject(sc, "denied");
  for (const char *const *s = sbx_seccomp_denied; *s; s++) cJSON_AddItemToArray(den, cJSON_CreateString(*s));
  cJSON_AddStringToObject(sc, "also", "clone with namespace flags, clone3 (ENOSYS), personality "
                                      "changes, TIOCSTI, socket families but unix/inet/inet6/netlink");

  /* cgroups */
  sbx_isolation iso = sbx_runner_isolation(runner);
  cJSON *cg = cJSON_AddObjectToObject(rep, "cgroup");
  cJSON_AddStringToObject(cg, "version", iso == SBX_ISO_CGROUP_V2 ? "v2" : iso == SBX_ISO_CGROUP_V1 ? "v1" : "none");
  if (be->cg) {
    static const char *const names[SBX_CG_N] = {"memory", "pids", "cpu"};
    cJSON *c = cJSON_AddObjectToObject(cg, "controllers");
    for (int i = 0; i < SBX_CG_N; i++)
      if (be->cg->base[i]) cJSON_AddStringToObject(c, names[i], be->cg->base[i]);
  }
  if (runner->note) {
    cJSON_AddStringToObject(cg, "note", runner->note);
    cJSON_AddItemToArray(hints, cJSON_CreateString(
        "memory and process limits fall back to rlimits: for cgroup enforcement run as root on "
        "cgroup v1, or start crucible in a delegated cgroup v2 scope: systemd-run --user --scope "
        "-p Delegate=yes crucible serve"));
  }
  cJSON_AddStringToObject(rep, "isolation", sbx_isolation_name(iso));

  bool cgm = be->cg != NULL;
  cJSON *lim = cJSON_AddObjectToObject(rep, "limits");
  cJSON_AddStringToObject(lim, "wall", "timer: SIGTERM to every sandbox process, SIGKILL of the "
                                       "pid namespace 300 ms later");
  cJSON_AddStringToObject(lim, "memory", cgm ? (iso == SBX_ISO_CGROUP_V2 ? "cgroup v2 memory.max (OOM kill reported as oom)"
                                                                       : "cgroup v1 memory.limit_in_bytes (OOM kill reported as oom)")
                                             : "NOT ENFORCED as a limit: RLIMIT_DATA caps each process's heap only "
                                               "(shared memory, memfd, tmpfs files, socket buffers and the sum over "
                                               "processes are not counted)");
  cJSON_AddStringToObject(lim, "pids", cgm ? "cgroup pids.max" : "RLIMIT_NPROC (processes of the sandbox's host uid)");
  cJSON *unenf = cJSON_AddArrayToObject(rep, "unenforced");
  if (!cgm) cJSON_AddItemToArray(unenf, cJSON_CreateString("memory"));
  cJSON_AddStringToObject(lim, "cpu", "RLIMIT_CPU per process: SIGXCPU, SIGKILL one second later");
  cJSON_AddStringToObject(lim, "disk", "size-capped tmpfs for the scratch dir, /tmp and /dev/shm, RLIMIT_FSIZE");
  cJSON_AddStringToObject(lim, "output", "head kept per stream up to outputBytes; killed beyond 4x in total");
  cJSON_AddStringToObject(lim, "network", "own network namespace: no interfaces but its own loopback");
}

int sbx_doctor_start(sbx_runner *runner, sbx_doctor_fn cb, void *ud) {
  doctor *d = xcalloc(1, sizeof *d);
  int err = uv_timer_init(runner->loop, &d->finish);
  if (err) {
    free(d);
    return err;
  }
  d->runner = runner;
  d->cb = cb;
  d->ud = ud;
  d->rep = cJSON_CreateObject();
  d->hints = cJSON_CreateArray();
  facts(d);
  /* A real sandbox per language, through the runner's own queue: proves user
   * namespaces, mounts and seccomp as the programs meet them. */
  static const char *const code[SBX_LANG_COUNT] = {
      "import sys; print(sys.version.split()[0])", "console.log(process.version)",
      "echo \"$BASH_VERSION\""};
  const sbx__bwrap *be = runner->backend == &sbx__bwrap_backend ? sbx__bw(runner) : NULL;
  cJSON *interps = cJSON_AddObjectToObject(d->rep, "interpreters");
  d->pending = SBX_LANG_COUNT + 1; /* one more, dropped below: no answer before every probe started */
  for (int l = 0; l < SBX_LANG_COUNT; l++) {
    probe *p = &d->probes[l];
    p->doc = d;
    p->out = cJSON_AddObjectToObject(interps, sbx_lang_name((sbx_lang)l));
    if (be && be->interp[l]) cJSON_AddStringToObject(p->out, "path", be->interp[l]);
    sbx_request req = {.language = sbx_lang_name((sbx_lang)l), .code = code[l], .code_len = strlen(code[l]),
                       .owner = d};
    req.limits.timeout_ms = 10000;
    sbx_callbacks cbs = {NULL, probe_done};
    err = sbx_run_start(runner, &req, &cbs, p, NULL);
    if (err) {
      cJSON_AddBoolToObject(p->out, "ok", false);
      cJSON_AddStringToObject(p->out, "error", strerror(-err));
      d->pending--;
    }
  }
  part_done(d);
  return 0;
}
