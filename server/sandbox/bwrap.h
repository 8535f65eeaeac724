/* The bubblewrap command line for one run: namespaces, the read-only system,
 * the scratch tmpfs, the cleared environment, and the fds bwrap reads. */
#ifndef CRUCIBLE_SANDBOX_BWRAP_H
#define CRUCIBLE_SANDBOX_BWRAP_H

#include "sandbox.h"

/* Where the run's scratch tmpfs (cwd, HOME, the script) is mounted. */
#define SBX_SCRATCH "/sandbox"
/* The sandbox user (mapped onto the caller's uid by the user namespace). */
#define SBX_UID 1000
#define SBX_GID 1000

/* One top-level entry of the host root re-created in the sandbox: a symlink
 * (/bin -> usr/bin on merged-/usr systems) or a read-only bind. */
typedef struct sbx_root_entry {
  char *path;   /* "/bin" */
  char *target; /* symlink target, or NULL for a read-only bind of path */
} sbx_root_entry;

/* What the command line is built from. Paths are borrowed. */
typedef struct sbx_bwrap_spec {
  const char *bwrap;
  const char *interp;           /* absolute, under /usr */
  sbx_lang lang;
  const sbx_limits *limits;
  const char *hostname;         /* the run's marker: crucible-<ownerpid>-<seq> */
  const sbx_root_entry *roots;  /* extra top-level entries (besides /usr) */
  int nroots;
  const char *const *etc;       /* host /etc paths bound read-only if present (NULL-terminated) */
  int fd_code, fd_seccomp, fd_status, fd_block, fd_passwd, fd_group, fd_hosts;
} sbx_bwrap_spec;

/* The /etc entries interpreters need; nothing with secrets (no shadow,
 * ssl/private, no user data). */
extern const char *const sbx_bwrap_etc_default[];

/* Returns a new NULL-terminated argv (free with sbx_argv_free). Pure. */
char **sbx_bwrap_argv(const sbx_bwrap_spec *spec);
void sbx_argv_free(char **argv);
/* The environment of the sandboxed program, NULL-terminated static strings. */
extern const char *const sbx_bwrap_env[];

/* Reads the host's top-level /bin /sbin /lib* (symlink or directory);
 * returns the count and a new array (sbx_roots_free). */
int sbx_roots_probe(sbx_root_entry **out);
void sbx_roots_free(sbx_root_entry *roots, int n);

#endif
