/* One cgroup per run: finding a usable hierarchy (v2 delegated subtree or
 * the v1 memory + pids hierarchies), creating, joining, reading, emptying
 * and removing the run's cgroup, and sweeping ones left by dead servers. */
#ifndef CRUCIBLE_SANDBOX_CGROUP_H
#define CRUCIBLE_SANDBOX_CGROUP_H

#include <stdbool.h>
#include <sys/types.h>

#include "sandbox.h"

typedef enum sbx_cg_version { SBX_CG_NONE, SBX_CG_V1, SBX_CG_V2 } sbx_cg_version;

enum { SBX_CG_MEM, SBX_CG_PIDS, SBX_CG_CPU, SBX_CG_N };

/* Where run cgroups are created: one parent directory per controller (v1:
 * the memory, pids and, optional, cpuacct hierarchies; v2: the same
 * directory three times). */
typedef struct sbx_cgroups {
  sbx_cg_version version;
  char *base[SBX_CG_N]; /* NULL: controller not available (only CPU may be) */
  char *server_leaf;    /* v2: the leaf we moved the server into, or NULL */
} sbx_cgroups;

/* One run's cgroup directories (NULL entries: not created). */
typedef struct sbx_cg {
  char *dir[SBX_CG_N];
} sbx_cg;

typedef struct sbx_cg_stats {
  long long oom_kills;  /* -1 unknown */
  long long peak_bytes; /* -1 unknown */
  long long cpu_ns;     /* -1 unknown */
  long long pids_max;   /* times fork failed on pids.max; -1 unknown */
} sbx_cg_stats;

/* ---- pure helpers (unit-tested) ---- */

/* From /proc/self/cgroup text, the path of the hierarchy holding controller
 * (v1), or of the unified hierarchy ("0::/path") when controller is NULL.
 * Returns a new string or NULL. */
char *sbx_cg_self_path(const char *proc_cgroup, const char *controller);
/* From /proc/self/mountinfo text, the mount point of the v1 hierarchy with
 * controller in its super options, or of cgroup2 when controller is NULL;
 * *root receives the mount's root within the hierarchy. Returns 0 (two new
 * strings) or -ENOENT. */
int sbx_cg_find_mount(const char *mountinfo, const char *controller, char **mnt, char **root);
/* The directory of a hierarchy path as seen through a mount: mnt + (path
 * relative to root). Returns a new string, or NULL when path is outside root. */
char *sbx_cg_join(const char *mnt, const char *root, const char *path);
/* "crucible-<owner>-<seq>". New string. */
char *sbx_cg_run_name(pid_t owner, unsigned long long seq);
/* Parses a name made by sbx_cg_run_name (or "crucible-<owner>-srv"): returns
 * 0 and *owner, or -EINVAL for anything else. */
int sbx_cg_name_owner(const char *name, pid_t *owner);
/* Reads "key N" from a flat-keyed file's text; -1 when absent. */
long long sbx_cg_keyed(const char *text, const char *key);

/* ---- runtime ---- */

/* Finds a usable hierarchy. Returns 0 and *out (sbx_cgroups_free), or
 * -ENOENT/-EACCES with *why (caller frees) saying what is missing and how
 * to get it. */
int sbx_cgroups_probe(sbx_cgroups **out, char **why);
/* The same, where the cgroup each hierarchy is tested with is the run
 * cgroup name (a sbx_cg_run_name), made and kept: on success *made holds
 * it, without limits (sbx_cg_set_limits), owned by the caller; a hierarchy
 * where name existed already contributes no directory (the caller then
 * uses sbx_cg_create, which says why it cannot). On failure *made is
 * empty. A one-shot runner's single run gets its cgroup this way: the
 * probe's test cgroups are not made and removed only for the run's to be
 * made next. */
int sbx_cgroups_probe_as(sbx_cgroups **out, char **why, const char *name, sbx_cg *made);
void sbx_cgroups_free(sbx_cgroups *self);
/* Creates name in every hierarchy and writes the memory and pids limits.
 * Returns 0 or a negative errno (nothing left behind). */
int sbx_cg_create(const sbx_cgroups *self, const char *name, const sbx_limits *limits, sbx_cg *out);
/* Rewrites the memory and pids limits of a cgroup made by sbx_cg_create
 * (a pooled one handed to a run with other limits). Returns 0 or a negative
 * errno. */
int sbx_cg_set_limits(const sbx_cgroups *self, const sbx_cg *cg, const sbx_limits *limits);
/* Moves pid into the run's cgroups. Returns 0 or a negative errno. Moving
 * a process by its pid takes the kernel's cgroup threadgroup lock, and the
 * first such move after a quiet spell waits for an RCU grace period
 * (13-25 ms measured, on v1 and v2 alike): see sbx_cg_join_files. */
int sbx_cg_attach(const sbx_cg *cg, pid_t pid);
/* On v1, the run's `tasks` files, in out[0..n-1] (new strings; the caller
 * frees them): a single-threaded process that writes "0" to each moves
 * itself into the run's cgroups without that lock (0.3 ms for vfork, the
 * three writes and an exec, measured, against 13-25 ms for a move by pid).
 * Returns n; 0 on v2, where a process cannot move itself that way (its
 * `cgroup.threads` moves only within a threaded subtree): the run is then
 * joined by pid. */
int sbx_cg_join_files(const sbx_cgroups *self, const sbx_cg *cg, char *out[SBX_CG_N]);
void sbx_cg_read_stats(const sbx_cgroups *self, const sbx_cg *cg, sbx_cg_stats *st);
/* The memory of cg's processes that cannot be reclaimed, in bytes:
 * anonymous pages plus tmpfs/shared memory (memory.stat's anon + shmem on
 * v2, total_rss + total_shmem on v1; the page cache is left out, the kernel
 * reclaims it before an OOM kill). -1 when it cannot be read. */
long long sbx_cg_memory_held(const sbx_cgroups *self, const sbx_cg *cg);
/* The first directory a run's cgroup has (every task sits in all of a
 * run's hierarchies, so one cgroup.procs lists them all); NULL without any. */
const char *sbx_cg_path(const sbx_cg *cg);
/* Sends sig to every process in the run's cgroups; returns how many. */
int sbx_cg_kill(const sbx_cg *cg, int sig);
/* How many processes other than a and b (either may be 0) are in the
 * run's cgroups (a process on its way out counts as gone: the kernel leaves
 * it out of cgroup.procs once its last thread began to exit, when it can no
 * longer write anything); -1 when that cannot be read. */
int sbx_cg_others(const sbx_cg *cg, pid_t a, pid_t b);
/* Moves pid out of the run's cgroups into the server's own (v1: the
 * hierarchy's base; v2: the server's leaf, or the base). Returns 0 or a
 * negative errno; a process already exiting stays where it is (the kernel
 * skips it without an error). */
int sbx_cg_detach(const sbx_cgroups *self, const sbx_cg *cg, pid_t pid);
/* Removes the directories; those still busy stay in cg. Returns 0 when all
 * are gone, else -EBUSY (retry later). */
int sbx_cg_remove(sbx_cg *cg);
/* Frees the path strings (not the directories). */
void sbx_cg_free(sbx_cg *cg);
/* Kills the processes in and removes every crucible-<pid>-* cgroup whose
 * owner pid is dead. Returns how many were removed. */
int sbx_cgroups_sweep(const sbx_cgroups *self);

#endif
