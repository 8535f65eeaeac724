/* A delegated cgroup for an unprivileged server: re-executing itself in a
 * transient systemd user scope with Delegate=yes, where the runner finds
 * the memory and pids controllers it needs. */
#include "scope.h"

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "common.h"
#include "log.h"
#include "xdg.h"

extern char **environ;

/* The marker that stops a second attempt (set before the exec). */
#define SCOPE_ENV "CRUCIBLE_SCOPE"

static char *systemd_run_path(void) {
  static const char *const cands[] = {"/usr/bin/systemd-run", "/bin/systemd-run", NULL};
  for (int i = 0; cands[i]; i++)
    if (access(cands[i], X_OK) == 0) return xstrdup(cands[i]);
  return NULL;
}

/* Whether the user's systemd manager answers: its private socket exists. */
static bool user_manager_present(void) {
  char rt[4096];
  if (xdg_base_dir(XDG_RUNTIME, rt, sizeof rt)) return false;
  char *p = xasprintf("%s/systemd/private", rt);
  struct stat st;
  bool ok = stat(p, &st) == 0 && S_ISSOCK(st.st_mode);
  free(p);
  return ok;
}

/* Runs argv quietly; returns its exit status or -1. */
static int run_quiet(char *const argv[]) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  int err = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (err) return -1;
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int sbx_scope_reexec(int argc, char **argv) {
  if (geteuid() == 0 || getenv(SCOPE_ENV)) return 0;
  sbx_cgroups *cg = NULL;
  char *why = NULL;
  if (sbx_cgroups_probe(&cg, &why) == 0) {
    sbx_cgroups_free(cg);
    return 0; /* already in a usable (delegated) cgroup */
  }
  free(why);
  char *sr = systemd_run_path();
  if (!sr || !user_manager_present()) {
    free(sr);
    return 0;
  }
  /* Ask first with a harmless command: a scope systemd refuses would
   * otherwise end the server before it started. */
  char *probe[] = {sr, "--user", "--scope", "--quiet", "-p", "Delegate=yes", "--", "/bin/true", NULL};
  if (run_quiet(probe) != 0) {
    log_info("sandbox: systemd-run --user --scope is refused here; limits use rlimits");
    free(sr);
    return 0;
  }
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    free(sr);
    return 0;
  }
  self[n] = '\0';
  char **nargv = xcalloc((size_t)argc + 9, sizeof *nargv);
  int k = 0;
  nargv[k++] = sr;
  nargv[k++] = "--user";
  nargv[k++] = "--scope";
  nargv[k++] = "--quiet";
  nargv[k++] = "-p";
  nargv[k++] = "Delegate=yes";
  nargv[k++] = "--";
  nargv[k++] = self;
  for (int i = 0; i < argc; i++) nargv[k++] = argv[i];
  nargv[k] = NULL;
  setenv(SCOPE_ENV, "1", 1);
  log_info("sandbox: no delegated cgroup; re-running in a systemd user scope (Delegate=yes) "
           "for memory and process limits");
  /* systemd-run --scope moves itself into the new scope and execs the
   * command: same pid, same stdio. */
  execv(sr, nargv);
  int err = -errno;
  log_warn("sandbox: cannot exec %s (%s); limits use rlimits", sr, strerror(errno));
  free(nargv);
  free(sr);
  return err;
}
