/* Host-side process scans: signalling a sandbox's process tree, stranded
 * sandboxes of dead servers, and the descriptor sweep before a spawn. */
#ifndef CRUCIBLE_SANDBOX_PROCS_H
#define CRUCIBLE_SANDBOX_PROCS_H

#include <stdbool.h>
#include <sys/types.h>

/* Sends sig to every descendant of root (not root itself). Orphans inside a
 * pid namespace are re-parented to its init, itself a descendant, so this
 * reaches daemonized grandchildren. Returns how many were signalled. */
int sbx_procs_signal_tree(pid_t root, int sig);
/* SIGKILLs every stranded sandbox: a bwrap namespace init (a bwrap with
 * the runner's --json-status-fd, --block-fd and --hostname) that is not
 * its session's leader and whose leader, the bwrap that started it, is
 * gone. Such an init is left when the server dies while bwrap sets up
 * (bwrap's own parent-death signal kills the monitor, and the init then
 * waits for it for ever). Nothing names the server inside the sandbox:
 * the session id of a process outside the pid namespace reads as 0 there.
 * Returns how many. */
int sbx_procs_sweep(void);
/* Sets FD_CLOEXEC on every open descriptor above 2 of this process, so a
 * spawned sandbox inherits only what is passed to it explicitly. */
void sbx_fds_cloexec(void);

#endif
