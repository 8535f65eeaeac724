/* `sbx_doctor_report`: what the sandbox can enforce on this machine, found by
 * probing and by actually running a trivial program in each language. */
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

typedef struct probe {
  sbx_lang lang;
  int done;
  cJSON *out;
} probe;

static void probe_done(void *ud, const sbx_result *r) {
  probe *p = ud;
  p->done = 1;
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
}

static void runner_closed(sbx_runner *r) {
  (void)r;
}

cJSON *sbx_doctor_report(const sbx_config *config) {
  cJSON *rep = cJSON_CreateObject();
  cJSON *hints = cJSON_CreateArray();
  cJSON_AddStringToObject(rep, "backend", "bubblewrap");

  uv_loop_t loop;
  uv_loop_init(&loop);
  sbx_runner runner;
  sbx_config cfg;
  memset(&cfg, 0, sizeof cfg);
  if (config) cfg.host_uid = config->host_uid, cfg.host_gid = config->host_gid;
  sbx_runner_init(&runner, &loop, &cfg);
  const sbx__bwrap *be = sbx__bw(&runner);

  long uid, gid;
  sbx_runner_host_ids(&runner, &uid, &gid);
  cJSON *ids = cJSON_AddObjectToObject(rep, "runsAs");
  cJSON_AddNumberToObject(ids, "hostUid", (double)uid);
  cJSON_AddNumberToObject(ids, "hostGid", (double)gid);
  cJSON_AddStringToObject(ids, "how", runner.set_ids
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
  sbx_isolation iso = sbx_runner_isolation(&runner);
  cJSON *cg = cJSON_AddObjectToObject(rep, "cgroup");
  cJSON_AddStringToObject(cg, "version", iso == SBX_ISO_CGROUP_V2 ? "v2" : iso == SBX_ISO_CGROUP_V1 ? "v1" : "none");
  if (be->cg) {
    static const char *const names[SBX_CG_N] = {"memory", "pids", "cpu"};
    cJSON *c = cJSON_AddObjectToObject(cg, "controllers");
    for (int i = 0; i < SBX_CG_N; i++)
      if (be->cg->base[i]) cJSON_AddStringToObject(c, names[i], be->cg->base[i]);
  }
  if (runner.note) {
    cJSON_AddStringToObject(cg, "note", runner.note);
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

  /* A real sandbox per language: proves user namespaces, mounts, seccomp. */
  static const char *const code[SBX_LANG_COUNT] = {
      "import sys; print(sys.version.split()[0])", "console.log(process.version)",
      "echo \"$BASH_VERSION\""};
  cJSON *interps = cJSON_AddObjectToObject(rep, "interpreters");
  probe probes[SBX_LANG_COUNT];
  for (int l = 0; l < SBX_LANG_COUNT; l++) {
    probes[l] = (probe){(sbx_lang)l, 0, cJSON_AddObjectToObject(interps, sbx_lang_name((sbx_lang)l))};
    if (be->interp[l]) cJSON_AddStringToObject(probes[l].out, "path", be->interp[l]);
    sbx_request req = {.language = sbx_lang_name((sbx_lang)l), .code = code[l], .code_len = strlen(code[l])};
    req.limits.timeout_ms = 10000;
    sbx_callbacks cb = {NULL, probe_done};
    if (sbx_run_start(&runner, &req, &cb, &probes[l], NULL)) probes[l].done = 1;
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  bool any_ok = false, sandbox_failed = false;
  const char *why = NULL;
  for (int l = 0; l < SBX_LANG_COUNT; l++) {
    cJSON *ok = cJSON_GetObjectItem(probes[l].out, "ok");
    if (cJSON_IsTrue(ok)) any_ok = true;
    cJSON *err = cJSON_GetObjectItem(probes[l].out, "error");
    if (err && strstr(err->valuestring, "sandbox could not start")) sandbox_failed = true, why = err->valuestring;
    if (!be->interp[l]) {
      const lang_info *li = lang_get((lang_id)l);
      char *hint = xasprintf("install %s (apt install %s)", li->program, li->package);
      cJSON_AddItemToArray(hints, cJSON_CreateString(hint));
      free(hint);
    }
  }
  cJSON *un = cJSON_AddObjectToObject(rep, "userNamespaces");
  cJSON_AddBoolToObject(un, "ok", any_ok);
  if (!any_ok && sandbox_failed) {
    cJSON_AddStringToObject(un, "error", why);
    cJSON_AddItemToArray(hints, cJSON_CreateString(
        "user namespaces are refused: on Ubuntu 23.10+ set sysctl "
        "kernel.apparmor_restrict_unprivileged_userns=0 or install bubblewrap's AppArmor "
        "profile; elsewhere check sysctl user.max_user_namespaces and "
        "kernel.unprivileged_userns_clone"));
  }
  cJSON_AddBoolToObject(rep, "ok", any_ok && be->bwrap);
  const char *problem = sbx_runner_problem(&runner);
  if (problem) cJSON_AddStringToObject(rep, "problem", problem);
  cJSON_AddItemToObject(rep, "hints", hints);

  sbx_runner_close(&runner, runner_closed);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return rep;
}
