/* The bubblewrap command line for one run: namespaces, the read-only system,
 * the scratch tmpfs, the cleared environment, and the fds bwrap reads. */
#ifndef CRUCIBLE_SANDBOX_BWRAP_H
#define CRUCIBLE_SANDBOX_BWRAP_H

#include <sys/types.h>

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

/* How a path under the sandbox's /proc is covered. The whole of /proc is
 * remounted read-only after them (sbx_bwrap_argv), which covers /proc/sys,
 * /proc/sysrq-trigger and the other kernel knobs. */
typedef enum sbx_mask_kind {
  SBX_MASK_EMPTY, /* a file replaced by an empty read-only one: /proc/keys, ... */
  SBX_MASK_DIR,   /* a directory replaced by an empty read-only tmpfs: /proc/acpi, ... */
} sbx_mask_kind;

typedef struct sbx_mask {
  const char *path;
  sbx_mask_kind kind;
} sbx_mask;

/* What the command line is built from. Paths are borrowed. */
typedef struct sbx_bwrap_spec {
  const char *bwrap;
  const char *interp;           /* absolute, under /usr */
  sbx_lang lang;
  const sbx_limits *limits;
  const sbx_mask *masks;        /* SBX_PROC_MASKS entries present on this kernel, path NULL at the end */
  const sbx_root_entry *roots;  /* extra top-level entries (besides /usr) */
  int nroots;
  const sbx_env *env;           /* NULL: the system only */
  const char *const *setenv;    /* NULL, or more NAME, VALUE pairs set after all others (NULL ends) */
  int fd_etc; /* the folder bound read-only at /etc (etcview.h), opened O_PATH; 0: none */
  int fd_code, fd_seccomp, fd_status, fd_block;
  int fd_empty; /* the first of sbx_masks_empty(masks) consecutive fds that read as
                 * end-of-file at once: the content of SBX_MASK_EMPTY files */
} sbx_bwrap_spec;

/* The sandbox's fixed host name: nothing of the host (its name, the
 * server's pid) shows inside. */
#define SBX_HOSTNAME "sandbox"

/* Every /proc entry the sandbox covers, as container runtimes do: kernel
 * knobs read-only (a write to a global sysctl is checked only against the
 * file's owner), and files that show host secrets or identity (keyrings,
 * timers, the kernel command line, the boot id) emptied. */
extern const sbx_mask sbx_proc_masks[];

/* The entries of sbx_proc_masks present in this kernel's /proc (bwrap
 * fails on a mount point that does not exist), but for files only root may
 * read when bwrap runs as bwrap_uid, not root: a bind each (bwrap rereads
 * the mount table for every one) to hide what the sandbox cannot open. A
 * new array ending with a NULL path; free with free(). */
sbx_mask *sbx_proc_masks_probe(uid_t bwrap_uid);

/* How many SBX_MASK_EMPTY entries masks holds. */
int sbx_masks_empty(const sbx_mask *masks);

/* The /etc entries interpreters need, copied into the sandbox's /etc
 * (etcview.h); nothing with secrets (no shadow, ssl/private, no user
 * data). */
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
