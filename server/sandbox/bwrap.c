/* The bubblewrap command line for one run: namespaces, the read-only system,
 * the scratch tmpfs, the cleared environment, and the fds bwrap reads. */
#include "bwrap.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

const char *const sbx_bwrap_etc_default[] = {
    "/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives", "/etc/ssl/certs",
    "/etc/ca-certificates", "/etc/mime.types", "/etc/nsswitch.conf", "/etc/python3",
    "/etc/python3.9", "/etc/python3.10", "/etc/python3.11", "/etc/python3.12", "/etc/python3.13",
    NULL,
};

const char *const sbx_bwrap_env[] = {
    "PATH", "/usr/local/bin:/usr/bin:/bin",
    "HOME", SBX_SCRATCH,
    "USER", "sandbox",
    "LOGNAME", "sandbox",
    "SHELL", "/bin/sh",
    "LANG", "C.UTF-8",
    "LC_ALL", "C.UTF-8",
    "TMPDIR", "/tmp",
    "PYTHONDONTWRITEBYTECODE", "1",
    "PYTHONUNBUFFERED", "1",
    "PYTHONNOUSERSITE", "1",
    /* A Python program stopped at the wall time gets SIGABRT: faulthandler
     * then prints where it was (backend_bwrap.c, bw_term). */
    "PYTHONFAULTHANDLER", "1",
    "MPLBACKEND", "Agg",
    "NO_COLOR", "1",
    NULL,
};

const sbx_mask sbx_proc_masks[] = {
    {"/proc/kcore", SBX_MASK_EMPTY},
    {"/proc/keys", SBX_MASK_EMPTY},
    {"/proc/key-users", SBX_MASK_EMPTY},
    {"/proc/timer_list", SBX_MASK_EMPTY},
    {"/proc/timer_stats", SBX_MASK_EMPTY},
    {"/proc/sched_debug", SBX_MASK_EMPTY},
    {"/proc/latency_stats", SBX_MASK_EMPTY},
    {"/proc/cmdline", SBX_MASK_EMPTY},
    {"/proc/sys/kernel/random/boot_id", SBX_MASK_EMPTY},
    {"/proc/acpi", SBX_MASK_DIR},
    {"/proc/scsi", SBX_MASK_DIR},
    {NULL, 0},
};

sbx_mask *sbx_proc_masks_probe(uid_t bwrap_uid) {
  sbx_mask *v = xcalloc(ARRAY_LEN(sbx_proc_masks), sizeof *v);
  int n = 0;
  for (const sbx_mask *m = sbx_proc_masks; m->path; m++) {
    struct stat st;
    if (stat(m->path, &st) != 0) continue;
    /* A root-only file (/proc/timer_list: 0400) the sandbox cannot read
     * anyway: its uid is bwrap's, not root, and it has no capabilities. */
    if (m->kind == SBX_MASK_EMPTY && bwrap_uid != 0 && st.st_uid == 0 && !(st.st_mode & (S_IRGRP | S_IROTH)))
      continue;
    v[n++] = *m;
  }
  return v;
}

int sbx_masks_empty(const sbx_mask *masks) {
  int n = 0;
  for (const sbx_mask *m = masks; m && m->path; m++) n += m->kind == SBX_MASK_EMPTY;
  return n;
}

typedef struct argv_b {
  char **v;
  int n, cap;
} argv_b;

static void push(argv_b *b, const char *s) {
  if (b->n + 2 > b->cap) {
    b->cap = b->cap ? b->cap * 2 : 64;
    b->v = xrealloc(b->v, sizeof *b->v * (size_t)b->cap);
  }
  b->v[b->n++] = xstrdup(s);
  b->v[b->n] = NULL;
}

/* Pushes opt, the number v, and (when dest) dest. */
static void push_num(argv_b *b, const char *opt, long long v, const char *dest) {
  char buf[32];
  snprintf(buf, sizeof buf, "%lld", v);
  push(b, opt);
  push(b, buf);
  if (dest) push(b, dest);
}

static void push2(argv_b *b, const char *a, const char *c) {
  push(b, a);
  push(b, c);
}

static void push3(argv_b *b, const char *a, const char *c, const char *d) {
  push(b, a);
  push(b, c);
  push(b, d);
}

static void push_env_binds(argv_b *b, const sbx_env *env) {
  if (!env) return;
  int n = 0;
  while (n < SBX_ENV_MAX_BINDS && env->binds[n]) n++;
  bool done[SBX_ENV_MAX_BINDS] = {0};
  for (int k = 0; k < n; k++) {
    int best = -1;
    for (int i = 0; i < n; i++)
      if (!done[i] && (best < 0 || strlen(env->binds[i]) < strlen(env->binds[best]))) best = i;
    done[best] = true;
    push3(b, "--ro-bind", env->binds[best], env->binds[best]);
  }
  /* The installer's one writable folder, last: nothing hides it. */
  if (env->write_src) push3(b, "--bind", env->write_src, env->write_dest ? env->write_dest : env->write_src);
}

char **sbx_bwrap_argv(const sbx_bwrap_spec *s) {
  argv_b b = {0};
  long long tmpfs_bytes = (long long)s->limits->disk_mb << 20;
  push(&b, s->bwrap);
  /* Namespaces: every one, so no network (not even the host's loopback),
   * no host processes, no host IPC or abstract unix sockets. */
  push(&b, "--unshare-user");
  push(&b, "--unshare-ipc");
  push(&b, "--unshare-pid");
  /* Only an environment's installer keeps the host's network: it must
   * reach the package index. Programs never do. */
  const sbx_env *env = s->env;
  if (!env || !env->network) push(&b, "--unshare-net");
  push(&b, "--unshare-uts");
  push(&b, "--unshare-cgroup-try");
  push(&b, "--die-with-parent");
  push(&b, "--new-session");
  push2(&b, "--cap-drop", "ALL");
  push_num(&b, "--uid", SBX_UID, NULL);
  push_num(&b, "--gid", SBX_GID, NULL);
  push2(&b, "--hostname", SBX_HOSTNAME);
  push(&b, "--clearenv");
  for (int i = 0; sbx_bwrap_env[i]; i += 2)
    push3(&b, "--setenv", sbx_bwrap_env[i], sbx_bwrap_env[i + 1]);
  /* An environment's variables come after, so they win (bwrap applies
   * --setenv in order). */
  for (int i = 0; env && i < 2 * SBX_ENV_MAX_VARS && env->vars[i] && env->vars[i + 1]; i += 2)
    push3(&b, "--setenv", env->vars[i], env->vars[i + 1]);
  for (int i = 0; s->setenv && s->setenv[i] && s->setenv[i + 1]; i += 2)
    push3(&b, "--setenv", s->setenv[i], s->setenv[i + 1]);
  /* The read-only system. */
  push3(&b, "--ro-bind", "/usr", "/usr");
  for (int i = 0; i < s->nroots; i++) {
    if (s->roots[i].target) push3(&b, "--symlink", s->roots[i].target, s->roots[i].path);
    else push3(&b, "--ro-bind", s->roots[i].path, s->roots[i].path);
  }
  /* The sandbox's /etc: one read-only bind of a view made from the host's
   * (etcview.h), where a bind per folder and a copy per file cost bwrap a
   * reread of the mount table each. By descriptor: no host path shows. */
  if (s->fd_etc > 0) push_num(&b, "--ro-bind-fd", s->fd_etc, "/etc");
  /* Private /proc (this pid namespace only) and a minimal /dev, read-only
   * but for a size-capped /dev/shm. Every writable mount is a size-capped
   * tmpfs: nothing of the host is writable. */
  push2(&b, "--proc", "/proc");
  int empty_fd = s->fd_empty;
  for (const sbx_mask *m = s->masks; m && m->path; m++) {
    if (m->kind == SBX_MASK_EMPTY) {
      /* Not /dev/null: mounts made in a user namespace are nodev. bwrap
       * closes each data fd it read: one fd per file. */
      push_num(&b, "--ro-bind-data", empty_fd++, m->path);
    } else {
      push_num(&b, "--size", 4096, NULL);
      push2(&b, "--tmpfs", m->path);
      push2(&b, "--remount-ro", m->path);
    }
  }
  /* All of /proc read-only (a remount reaches no mount below it: the tmpfs
   * masks above have their own): /proc/sys, /proc/sysrq-trigger, /proc/irq,
   * /proc/bus, /proc/fs and every other kernel knob, and the program's own
   * /proc/self files too. One remount instead of a read-only bind of each
   * (bwrap rereads the mount table for every one). When crucible runs as
   * root, the sandbox's uid is the host's root to the kernel's sysctl
   * checks: a writable /proc/sys would be the host's. */
  push2(&b, "--remount-ro", "/proc");
  push2(&b, "--dev", "/dev");
  push_num(&b, "--size", tmpfs_bytes, NULL);
  push2(&b, "--perms", "1777");
  push2(&b, "--tmpfs", "/dev/shm");
  push2(&b, "--remount-ro", "/dev");
  push_num(&b, "--size", tmpfs_bytes, NULL);
  push2(&b, "--perms", "1777");
  push2(&b, "--tmpfs", "/tmp");
  push_num(&b, "--size", tmpfs_bytes, NULL);
  push2(&b, "--tmpfs", SBX_SCRATCH);
  /* The environment's folders come after every tmpfs: one under /tmp is
   * bound on the sandbox's /tmp, not hidden by it. Shorter paths first, so
   * a folder bound inside another stays visible. */
  push_env_binds(&b, env);
  char script[64];
  snprintf(script, sizeof script, SBX_SCRATCH "/%s", sbx_lang_script(s->lang));
  push_num(&b, "--file", s->fd_code, script);
  /* bwrap's root is a tmpfs of its own, without a size cap: make it (and
   * so /etc and every mount point) read-only once everything is in place. */
  push2(&b, "--remount-ro", "/");
  push2(&b, "--chdir", SBX_SCRATCH);
  push_num(&b, "--seccomp", s->fd_seccomp, NULL);
  push_num(&b, "--json-status-fd", s->fd_status, NULL);
  push_num(&b, "--block-fd", s->fd_block, NULL);
  push(&b, "--");
  push(&b, env && env->interp ? env->interp : s->interp);
  push(&b, sbx_lang_script(s->lang));
  return b.v;
}

void sbx_argv_free(char **argv) {
  for (char **p = argv; p && *p; p++) free(*p);
  free(argv);
}

int sbx_roots_probe(sbx_root_entry **out) {
  static const char *const names[] = {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"};
  sbx_root_entry *v = xcalloc(ARRAY_LEN(names), sizeof *v);
  int n = 0;
  for (size_t i = 0; i < ARRAY_LEN(names); i++) {
    struct stat st;
    if (lstat(names[i], &st) < 0) continue;
    if (S_ISLNK(st.st_mode)) {
      char buf[PATH_MAX];
      ssize_t k = readlink(names[i], buf, sizeof buf - 1);
      if (k <= 0) continue;
      buf[k] = '\0';
      v[n].path = xstrdup(names[i]);
      v[n++].target = xstrdup(buf);
    } else if (S_ISDIR(st.st_mode)) {
      v[n].path = xstrdup(names[i]);
      v[n++].target = NULL;
    }
  }
  *out = v;
  return n;
}

void sbx_roots_free(sbx_root_entry *roots, int n) {
  for (int i = 0; roots && i < n; i++) {
    free(roots[i].path);
    free(roots[i].target);
  }
  free(roots);
}

static const char *dup_or_null(const char *s) {
  return s ? xstrdup(s) : NULL;
}

sbx_env *sbx_env_dup(const sbx_env *self) {
  if (!self) return NULL;
  sbx_env *c = xcalloc(1, sizeof *c);
  c->id = dup_or_null(self->id);
  c->stamp = dup_or_null(self->stamp);
  for (int i = 0; i < SBX_ENV_MAX_BINDS && self->binds[i]; i++) c->binds[i] = xstrdup(self->binds[i]);
  c->interp = dup_or_null(self->interp);
  for (int i = 0; i < 2 * SBX_ENV_MAX_VARS && self->vars[i] && self->vars[i + 1]; i += 2) {
    c->vars[i] = xstrdup(self->vars[i]);
    c->vars[i + 1] = xstrdup(self->vars[i + 1]);
  }
  c->image = dup_or_null(self->image);
  c->network = self->network;
  c->write_src = dup_or_null(self->write_src);
  c->write_dest = dup_or_null(self->write_dest);
  return c;
}

/* The copy owns its strings: they are const only to the readers. */
void sbx_env_free(sbx_env *self) {
  if (!self) return;
  free((char *)self->id);
  free((char *)self->stamp);
  for (int i = 0; i < SBX_ENV_MAX_BINDS && self->binds[i]; i++) free((char *)self->binds[i]);
  free((char *)self->interp);
  for (int i = 0; i < 2 * SBX_ENV_MAX_VARS && self->vars[i]; i++) free((char *)self->vars[i]);
  free((char *)self->write_src);
  free((char *)self->write_dest);
  free((char *)self->image);
  free(self);
}
