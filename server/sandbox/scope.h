/* A delegated cgroup for an unprivileged server: re-executing itself in a
 * transient systemd user scope with Delegate=yes. */
#ifndef CRUCIBLE_SANDBOX_SCOPE_H
#define CRUCIBLE_SANDBOX_SCOPE_H

/* For an unprivileged process without a usable cgroup, when the user's
 * systemd manager is running and accepts a test scope: re-executes the
 * running binary (/proc/self/exe) with argv[0..argc) (the command line
 * after the program's name, e.g. "serve" "--listen" ...) under
 * `systemd-run --user --scope -p Delegate=yes`, with CRUCIBLE_SCOPE=1 set
 * so the new image does not try again. Does not return when that
 * succeeds. Returns 0 when nothing was tried (root, already delegated,
 * CRUCIBLE_SCOPE set, no systemd) or the test scope was refused, or a
 * negative errno when the exec itself failed; the caller then goes on with
 * rlimits, which the runner reports. Call before any thread or loop
 * exists. */
int sbx_scope_reexec(int argc, char **argv);

#endif
