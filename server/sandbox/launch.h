/* Starting bwrap: vfork + exec with a fixed fd layout, default signal
 * dispositions, its cgroup joined by itself, and (when the server is root)
 * a switch to the unprivileged host uid/gid that sandboxed programs run
 * as. */
#ifndef CRUCIBLE_SANDBOX_LAUNCH_H
#define CRUCIBLE_SANDBOX_LAUNCH_H

#include <stdbool.h>
#include <sys/resource.h>
#include <sys/types.h>

/* One resource limit the child sets on itself before its exec. */
typedef struct sbx_rlimit {
  int resource; /* RLIMIT_* */
  struct rlimit value;
} sbx_rlimit;

typedef struct sbx_launch_spec {
  const char *path;   /* absolute path of the program */
  char *const *argv;
  char *const *envp;
  const int *fds;     /* fds[i] becomes descriptor i in the child, for i < nfds */
  int nfds;           /* every fds[i] must be >= nfds (no slot is clobbered) */
  const sbx_rlimit *rlimits; /* set before exec, so bwrap and all it starts inherit them */
  int nrlimits;
  char *const *join;  /* cgroup files the child writes "0" to first, moving itself in */
  int njoin;          /* (sbx_cg_join_files): bwrap and all it starts are then inside */
  bool new_session;   /* setsid(): the program leads a session of its own */
  bool set_ids;       /* switch to uid/gid (and no supplementary groups) before exec */
  uid_t uid;
  gid_t gid;
} sbx_launch_spec;

/* Starts spec->path. The child shares the parent's memory until its exec
 * (vfork): no page-table copy, and the caller's thread is suspended only
 * until the exec. Every signal is unblocked and at its default disposition
 * in the child; descriptors other than the nfds slots keep their
 * close-on-exec flag (callers mark every fd close-on-exec first). Returns
 * 0 and *pid, or a negative errno: what vfork, joining the cgroup, setting
 * an rlimit, the id switch, dup3 or execve failed with (the child is then
 * reaped here). */
int sbx_launch(const sbx_launch_spec *spec, pid_t *pid);

#endif
