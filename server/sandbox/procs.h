/* Host-side process scans: signalling a sandbox's process tree, and the
 * descriptor sweep before a spawn. */
#ifndef CRUCIBLE_SANDBOX_PROCS_H
#define CRUCIBLE_SANDBOX_PROCS_H

#include <stdbool.h>
#include <sys/types.h>

/* Sends sig to every descendant of root (not root itself). Orphans inside a
 * pid namespace are re-parented to its init, itself a descendant, so this
 * reaches daemonized grandchildren. Returns how many were signalled. */
int sbx_procs_signal_tree(pid_t root, int sig);
/* Sets FD_CLOEXEC on every open descriptor above 2 of this process, so a
 * spawned sandbox inherits only what is passed to it explicitly. */
void sbx_fds_cloexec(void);

#endif
