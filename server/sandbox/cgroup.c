/* One cgroup per run: finding a usable hierarchy (v2 delegated subtree or
 * the v1 memory + pids hierarchies), creating, joining, reading, emptying
 * and removing the run's cgroup, and sweeping ones left by dead servers. */
#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

/* ---- pure helpers ---- */

char *sbx_cg_self_path(const char *text, const char *controller) {
  const char *line = text;
  while (line && *line) {
    const char *nl = strchr(line, '\n');
    size_t n = nl ? (size_t)(nl - line) : strlen(line);
    const char *c1 = memchr(line, ':', n);
    const char *c2 = c1 ? memchr(c1 + 1, ':', n - (size_t)(c1 + 1 - line)) : NULL;
    if (c2) {
      const char *ctl = c1 + 1;
      size_t cn = (size_t)(c2 - ctl);
      bool match = false;
      if (!controller) {
        match = cn == 0 && c1 - line == 1 && line[0] == '0';
      } else {
        size_t k = strlen(controller);
        for (const char *p = ctl; p < c2;) {
          const char *comma = memchr(p, ',', (size_t)(c2 - p));
          const char *e = comma ? comma : c2;
          if ((size_t)(e - p) == k && !memcmp(p, controller, k)) match = true;
          p = e + 1;
        }
      }
      if (match) return xstrndup(c2 + 1, n - (size_t)(c2 + 1 - line));
    }
    line = nl ? nl + 1 : NULL;
  }
  return NULL;
}

/* Copies the next space-separated field of *p (advancing it). */
static char *field(const char **p) {
  const char *s = *p;
  while (*s == ' ') s++;
  const char *e = s;
  while (*e && *e != ' ' && *e != '\n') e++;
  *p = e;
  return xstrndup(s, (size_t)(e - s));
}

static bool has_opt(const char *opts, const char *want) {
  size_t k = strlen(want);
  for (const char *p = opts; *p;) {
    const char *c = strchr(p, ',');
    size_t n = c ? (size_t)(c - p) : strlen(p);
    if (n == k && !memcmp(p, want, k)) return true;
    if (!c) break;
    p = c + 1;
  }
  return false;
}

int sbx_cg_find_mount(const char *text, const char *controller, char **mnt, char **root) {
  const char *line = text;
  while (line && *line) {
    const char *nl = strchr(line, '\n');
    char *l = xstrndup(line, nl ? (size_t)(nl - line) : strlen(line));
    const char *p = l;
    char *f[5];
    for (int i = 0; i < 5; i++) f[i] = field(&p);
    const char *dash = strstr(p, " - ");
    int found = 0;
    if (dash) {
      const char *q = dash + 3;
      char *fstype = field(&q), *src = field(&q), *super = field(&q);
      if (controller ? (!strcmp(fstype, "cgroup") && has_opt(super, controller))
                     : !strcmp(fstype, "cgroup2"))
        found = 1;
      free(fstype);
      free(src);
      free(super);
    }
    if (found) {
      *root = f[3];
      *mnt = f[4];
      f[3] = f[4] = NULL;
    }
    for (int i = 0; i < 5; i++) free(f[i]);
    free(l);
    if (found) return 0;
    line = nl ? nl + 1 : NULL;
  }
  return -ENOENT;
}

char *sbx_cg_join(const char *mnt, const char *root, const char *path) {
  size_t rl = strlen(root);
  if (!strcmp(root, "/")) rl = 0;
  if (strncmp(path, root, rl) || (path[rl] && path[rl] != '/')) return NULL;
  const char *rel = path + rl;
  if (!strcmp(rel, "/")) rel = "";
  return xasprintf("%s%s", mnt, rel);
}

char *sbx_cg_run_name(pid_t owner, unsigned long long seq) {
  return xasprintf("crucible-%ld-%llu", (long)owner, seq);
}

int sbx_cg_name_owner(const char *name, pid_t *owner) {
  static const char pre[] = "crucible-";
  if (strncmp(name, pre, sizeof pre - 1)) return -EINVAL;
  const char *p = name + sizeof pre - 1;
  char *end;
  long v = strtol(p, &end, 10);
  if (end == p || v <= 0 || *end != '-' || !end[1]) return -EINVAL;
  const char *rest = end + 1;
  if (strcmp(rest, "srv")) {
    for (const char *q = rest; *q; q++)
      if (*q < '0' || *q > '9') return -EINVAL;
  }
  *owner = (pid_t)v;
  return 0;
}

long long sbx_cg_keyed(const char *text, const char *key) {
  size_t k = strlen(key);
  for (const char *l = text; l && *l;) {
    if (!strncmp(l, key, k) && l[k] == ' ') return strtoll(l + k + 1, NULL, 10);
    l = strchr(l, '\n');
    if (l) l++;
  }
  return -1;
}

/* ---- file helpers ---- */

static char *read_text(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  size_t cap = 4096, len = 0;
  char *buf = xmalloc(cap);
  for (;;) {
    if (len + 1 >= cap) buf = xrealloc(buf, cap *= 2);
    ssize_t n = read(fd, buf + len, cap - len - 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += (size_t)n;
    if (len > (1u << 22)) break;
  }
  close(fd);
  buf[len] = '\0';
  return buf;
}

static int write_text(const char *dir, const char *file, const char *text) {
  char *path = xasprintf("%s/%s", dir, file);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  free(path);
  if (fd < 0) return -errno;
  ssize_t n = write(fd, text, strlen(text));
  int err = n < 0 ? -errno : 0;
  close(fd);
  return err;
}

static long long read_num(const char *dir, const char *file) {
  char *path = xasprintf("%s/%s", dir, file);
  char *t = read_text(path);
  free(path);
  if (!t) return -1;
  long long v = *t >= '0' && *t <= '9' ? strtoll(t, NULL, 10) : -1;
  free(t);
  return v;
}

static long long read_keyed(const char *dir, const char *file, const char *key) {
  char *path = xasprintf("%s/%s", dir, file);
  char *t = read_text(path);
  free(path);
  if (!t) return -1;
  long long v = sbx_cg_keyed(t, key);
  free(t);
  return v;
}

/* True when a child cgroup can be made under dir. Without keep_name the
 * test cgroup is removed again; with it, the test is the cgroup keep_name
 * itself, which stays and is returned in *kept (NULL when it existed
 * already: not ours to hand out). */
static bool can_create(const char *dir, const char *keep_name, char **kept) {
  if (keep_name) {
    char *path = xasprintf("%s/%s", dir, keep_name);
    if (mkdir(path, 0755) == 0) {
      *kept = path;
      return true;
    }
    int e = errno;
    free(path);
    *kept = NULL;
    if (e != EEXIST) {
      errno = e;
      return false;
    }
  }
  char *probe = xasprintf("%s/crucible-%ld-probe", dir, (long)getpid());
  bool ok = mkdir(probe, 0755) == 0 || errno == EEXIST;
  if (ok) rmdir(probe);
  free(probe);
  return ok;
}

/* ---- probing ---- */

static int probe_v2(const char *self_cg, const char *mountinfo, sbx_cgroups *cg, char **why,
                    const char *keep_name, sbx_cg *made) {
  char *path = sbx_cg_self_path(self_cg, NULL), *mnt = NULL, *root = NULL, *base = NULL;
  char *ctrls = NULL, *subtree = NULL, *tmp = NULL;
  int err = -ENOENT;
  if (!path || sbx_cg_find_mount(mountinfo, NULL, &mnt, &root)) {
    *why = xstrdup("cgroup v2 is not mounted");
    goto out;
  }
  base = sbx_cg_join(mnt, root, path);
  if (!base) {
    *why = xstrdup("this process's cgroup v2 is outside the visible mount");
    goto out;
  }
  tmp = xasprintf("%s/cgroup.controllers", base);
  ctrls = read_text(tmp);
  free(tmp);
  tmp = xasprintf("%s/cgroup.subtree_control", base);
  subtree = read_text(tmp);
  free(tmp);
  tmp = NULL;
  if (!ctrls || !strstr(ctrls, "memory") || !strstr(ctrls, "pids")) {
    *why = xasprintf("cgroup v2: the memory and pids controllers are not delegated to %s "
                     "(start crucible under `systemd-run --user --scope -p Delegate=yes`)",
                     base);
    goto out;
  }
  if (access(base, W_OK) < 0) {
    err = -EACCES;
    *why = xasprintf("cgroup v2: %s is not writable by this user (start crucible under "
                     "`systemd-run --user --scope -p Delegate=yes`)", base);
    goto out;
  }
  if (!subtree || !strstr(subtree, "memory") || !strstr(subtree, "pids")) {
    /* No internal processes: move this process into a leaf of its own,
     * then enable the controllers for the children. */
    char *leaf = xasprintf("%s/crucible-%ld-srv", base, (long)getpid());
    if (mkdir(leaf, 0755) < 0 && errno != EEXIST) {
      err = -errno;
      *why = xasprintf("cgroup v2: cannot create %s: %s", leaf, strerror(errno));
      free(leaf);
      goto out;
    }
    int e = write_text(leaf, "cgroup.procs", "0");
    if (!e) e = write_text(base, "cgroup.subtree_control", "+memory +pids");
    if (e) {
      write_text(base, "cgroup.procs", "0");
      rmdir(leaf);
      free(leaf);
      err = e;
      *why = xasprintf("cgroup v2: cannot enable memory+pids below %s (%s); other processes "
                       "share this cgroup: run crucible as the only process of a delegated "
                       "scope (`systemd-run --user --scope -p Delegate=yes crucible ...`)",
                       base, strerror(-e));
      goto out;
    }
    write_text(base, "cgroup.subtree_control", "+cpu");
    cg->server_leaf = leaf;
  }
  if (!can_create(base, keep_name, &made->dir[0])) {
    err = -EACCES;
    *why = xasprintf("cgroup v2: cannot create child cgroups in %s", base);
    goto out;
  }
  cg->version = SBX_CG_V2;
  for (int i = 0; i < SBX_CG_N; i++) cg->base[i] = xstrdup(base);
  err = 0;
out:
  free(path), free(mnt), free(root), free(base), free(ctrls), free(subtree);
  return err;
}

static char *v1_base(const char *self_cg, const char *mountinfo, const char *ctl) {
  char *path = sbx_cg_self_path(self_cg, ctl), *mnt = NULL, *root = NULL, *base = NULL;
  if (path && !sbx_cg_find_mount(mountinfo, ctl, &mnt, &root)) base = sbx_cg_join(mnt, root, path);
  free(path), free(mnt), free(root);
  return base;
}

static int probe_v1(const char *self_cg, const char *mountinfo, sbx_cgroups *cg, char **why,
                    const char *keep_name, sbx_cg *made) {
  static const char *const ctl[SBX_CG_N] = {"memory", "pids", "cpuacct"};
  for (int i = 0; i < SBX_CG_N; i++) {
    char *base = v1_base(self_cg, mountinfo, ctl[i]);
    if (!base) {
      if (i == SBX_CG_CPU) continue;
      *why = xasprintf("cgroup v1: the %s hierarchy is not mounted", ctl[i]);
      return -ENOENT;
    }
    if (!can_create(base, keep_name, &made->dir[i])) {
      if (i == SBX_CG_CPU) {
        free(base);
        continue;
      }
      *why = xasprintf("cgroup v1: cannot create cgroups in %s (%s); run as root or delegate "
                       "that directory to this user",
                       base, strerror(errno));
      free(base);
      return -EACCES;
    }
    cg->base[i] = base;
  }
  cg->version = SBX_CG_V1;
  return 0;
}

int sbx_cgroups_probe(sbx_cgroups **out, char **why) {
  return sbx_cgroups_probe_as(out, why, NULL, NULL);
}

int sbx_cgroups_probe_as(sbx_cgroups **out, char **why, const char *name, sbx_cg *made) {
  *why = NULL;
  sbx_cg scratch = {{0}};
  if (!made) made = &scratch;
  memset(made, 0, sizeof *made);
  char *self = read_text("/proc/self/cgroup"), *mi = read_text("/proc/self/mountinfo");
  sbx_cgroups *cg = xcalloc(1, sizeof *cg);
  char *why2 = NULL, *why1 = NULL;
  int err = -ENOENT;
  if (!self || !mi) {
    *why = xstrdup("cannot read /proc/self/cgroup or /proc/self/mountinfo");
    goto fail;
  }
  if (!probe_v2(self, mi, cg, &why2, name, made)) {
    err = 0;
    goto done;
  }
  /* A v2 attempt that failed after making its cgroup leaves none. */
  sbx_cg_remove(made);
  sbx_cg_free(made);
  if (!probe_v1(self, mi, cg, &why1, name, made)) {
    err = 0;
    goto done;
  }
  sbx_cg_remove(made);
  sbx_cg_free(made);
  for (int i = 0; i < SBX_CG_N; i++) free(cg->base[i]), cg->base[i] = NULL;
  *why = xasprintf("%s; %s", why2 ? why2 : "cgroup v2 unusable", why1 ? why1 : "cgroup v1 unusable");
fail:
  sbx_cgroups_free(cg);
  cg = NULL;
done:
  /* Only a cgroup in every hierarchy is a run's cgroup: one whose name
   * existed somewhere is given back (never a run joined to part of its
   * limits). */
  for (int i = 0; cg && i < SBX_CG_N; i++)
    if (cg->base[i] && (cg->version == SBX_CG_V1 || i == 0) && !made->dir[i] && name) {
      sbx_cg_remove(made);
      sbx_cg_free(made);
      break;
    }
  free(why1), free(why2), free(self), free(mi);
  *out = cg;
  return err;
}

void sbx_cgroups_free(sbx_cgroups *self) {
  if (!self) return;
  for (int i = 0; i < SBX_CG_N; i++) free(self->base[i]);
  free(self->server_leaf);
  free(self);
}

/* ---- per run ---- */

int sbx_cg_create(const sbx_cgroups *self, const char *name, const sbx_limits *limits, sbx_cg *out) {
  int err = 0;
  memset(out, 0, sizeof *out);
  for (int i = 0; i < SBX_CG_N; i++) {
    if (!self->base[i]) continue;
    /* v2 has one directory for all controllers. */
    if (self->version == SBX_CG_V2 && i > 0) continue;
    out->dir[i] = xasprintf("%s/%s", self->base[i], name);
    if (mkdir(out->dir[i], 0755) < 0) {
      err = -errno;
      free(out->dir[i]);
      out->dir[i] = NULL;
      goto fail;
    }
  }
  if ((err = sbx_cg_set_limits(self, out, limits))) goto fail;
  return 0;
fail:
  sbx_cg_remove(out);
  sbx_cg_free(out);
  return err ? err : -EIO;
}

int sbx_cg_set_limits(const sbx_cgroups *self, const sbx_cg *cg, const sbx_limits *limits) {
  int err;
  char num[32];
  snprintf(num, sizeof num, "%lld", (long long)limits->memory_mb << 20);
  if (self->version == SBX_CG_V2) {
    const char *d = cg->dir[0];
    if ((err = write_text(d, "memory.max", num))) return err;
    write_text(d, "memory.swap.max", "0");
  } else {
    /* memsw may never be below the memory limit: lowering needs memory
     * first, raising memsw first. Writing memory, memsw, then memory again
     * covers both (a refused first write succeeds the second time). With
     * swap accounting, swap must be capped too or the limit only moves pages
     * to swap; the file is absent without swap accounting. */
    int e1 = write_text(cg->dir[SBX_CG_MEM], "memory.limit_in_bytes", num);
    write_text(cg->dir[SBX_CG_MEM], "memory.memsw.limit_in_bytes", num);
    if (e1 && (err = write_text(cg->dir[SBX_CG_MEM], "memory.limit_in_bytes", num))) return err;
    write_text(cg->dir[SBX_CG_MEM], "memory.swappiness", "0");
  }
  snprintf(num, sizeof num, "%ld", limits->pids);
  return write_text(self->version == SBX_CG_V2 ? cg->dir[0] : cg->dir[SBX_CG_PIDS], "pids.max", num);
}

/* Moves pid into dirs[i] for every hierarchy the run has (cg->dir[i] set);
 * a missing dirs[i] there is -ENOENT. Returns 0 or the first error. */
static int move_pid(const sbx_cg *cg, const char *const dirs[SBX_CG_N], pid_t pid) {
  char num[32];
  snprintf(num, sizeof num, "%ld", (long)pid);
  for (int i = 0; i < SBX_CG_N; i++) {
    if (!cg->dir[i]) continue;
    int err = dirs[i] ? write_text(dirs[i], "cgroup.procs", num) : -ENOENT;
    if (err) return err;
  }
  return 0;
}

int sbx_cg_attach(const sbx_cg *cg, pid_t pid) {
  return move_pid(cg, (const char *const *)cg->dir, pid);
}

int sbx_cg_join_files(const sbx_cgroups *self, const sbx_cg *cg, char *out[SBX_CG_N]) {
  int n = 0;
  if (self->version != SBX_CG_V1) return 0;
  for (int i = 0; i < SBX_CG_N; i++)
    if (cg->dir[i]) out[n++] = xasprintf("%s/tasks", cg->dir[i]);
  return n;
}

long long sbx_cg_memory_held(const sbx_cgroups *self, const sbx_cg *cg) {
  const char *d = self->version == SBX_CG_V2 ? cg->dir[0] : self->version == SBX_CG_V1 ? cg->dir[SBX_CG_MEM] : NULL;
  if (!d) return -1;
  char *path = xasprintf("%s/memory.stat", d);
  char *t = read_text(path);
  free(path);
  if (!t) return -1;
  bool v2 = self->version == SBX_CG_V2;
  long long anon = sbx_cg_keyed(t, v2 ? "anon" : "total_rss"), shmem = sbx_cg_keyed(t, v2 ? "shmem" : "total_shmem");
  free(t);
  if (anon < 0) return -1;
  return anon + (shmem > 0 ? shmem : 0);
}

void sbx_cg_read_stats(const sbx_cgroups *self, const sbx_cg *cg, sbx_cg_stats *st) {
  *st = (sbx_cg_stats){-1, -1, -1, -1};
  if (self->version == SBX_CG_V2) {
    const char *d = cg->dir[0];
    if (!d) return;
    st->oom_kills = read_keyed(d, "memory.events", "oom_kill");
    st->peak_bytes = read_num(d, "memory.peak");
    long long us = read_keyed(d, "cpu.stat", "usage_usec");
    st->cpu_ns = us < 0 ? -1 : us * 1000;
    st->pids_max = read_keyed(d, "pids.events", "max");
  } else if (self->version == SBX_CG_V1) {
    if (cg->dir[SBX_CG_MEM]) {
      st->oom_kills = read_keyed(cg->dir[SBX_CG_MEM], "memory.oom_control", "oom_kill");
      st->peak_bytes = read_num(cg->dir[SBX_CG_MEM], "memory.max_usage_in_bytes");
    }
    if (cg->dir[SBX_CG_CPU]) st->cpu_ns = read_num(cg->dir[SBX_CG_CPU], "cpuacct.usage");
    if (cg->dir[SBX_CG_PIDS]) st->pids_max = read_keyed(cg->dir[SBX_CG_PIDS], "pids.events", "max");
  }
}

const char *sbx_cg_path(const sbx_cg *cg) {
  for (int i = 0; i < SBX_CG_N; i++)
    if (cg->dir[i]) return cg->dir[i];
  return NULL;
}

/* The pids in a cgroup directory: a new array (*n entries, possibly none),
 * or NULL when its cgroup.procs cannot be read. */
static pid_t *list_pids(const char *dir, size_t *n) {
  *n = 0;
  if (!dir) return NULL;
  char *path = xasprintf("%s/cgroup.procs", dir);
  char *t = read_text(path);
  free(path);
  if (!t) return NULL;
  size_t cap = 8;
  pid_t *pids = xmalloc(cap * sizeof *pids);
  for (char *p = t; *p;) {
    char *end;
    long pid = strtol(p, &end, 10);
    if (end == p) break;
    if (*n == cap) pids = xrealloc(pids, (cap *= 2) * sizeof *pids);
    pids[(*n)++] = (pid_t)pid;
    p = end;
    while (*p == '\n') p++;
  }
  free(t);
  return pids;
}

static int kill_dir(const char *dir, int sig) {
  size_t n;
  pid_t *pids = list_pids(dir, &n);
  int killed = 0;
  for (size_t i = 0; i < n; i++)
    if (pids[i] > 1 && kill(pids[i], sig) == 0) killed++;
  free(pids);
  return killed;
}

int sbx_cg_kill(const sbx_cg *cg, int sig) {
  const char *dir = sbx_cg_path(cg);
  return dir ? kill_dir(dir, sig) : 0;
}

int sbx_cg_others(const sbx_cg *cg, pid_t a, pid_t b) {
  size_t n;
  pid_t *pids = list_pids(sbx_cg_path(cg), &n);
  if (!pids) return -1;
  int others = 0;
  for (size_t i = 0; i < n; i++) others += pids[i] != a && pids[i] != b;
  free(pids);
  return others;
}

int sbx_cg_detach(const sbx_cgroups *self, const sbx_cg *cg, pid_t pid) {
  const char *home[SBX_CG_N];
  for (int i = 0; i < SBX_CG_N; i++)
    home[i] = self->version == SBX_CG_V2 && self->server_leaf ? self->server_leaf : self->base[i];
  return move_pid(cg, home, pid);
}

int sbx_cg_remove(sbx_cg *cg) {
  int busy = 0;
  for (int i = 0; i < SBX_CG_N; i++) {
    if (!cg->dir[i]) continue;
    if (rmdir(cg->dir[i]) == 0 || errno == ENOENT) {
      free(cg->dir[i]);
      cg->dir[i] = NULL;
    } else {
      busy = 1;
    }
  }
  return busy ? -EBUSY : 0;
}

void sbx_cg_free(sbx_cg *cg) {
  for (int i = 0; i < SBX_CG_N; i++) {
    free(cg->dir[i]);
    cg->dir[i] = NULL;
  }
}

static bool pid_alive(pid_t pid) {
  return kill(pid, 0) == 0 || errno == EPERM;
}

int sbx_cgroups_sweep(const sbx_cgroups *self) {
  int removed = 0;
  for (int i = 0; i < SBX_CG_N; i++) {
    if (!self->base[i] || (self->version == SBX_CG_V2 && i > 0)) continue;
    DIR *d = opendir(self->base[i]);
    if (!d) continue;
    struct dirent *e;
    while ((e = readdir(d))) {
      pid_t owner;
      if (sbx_cg_name_owner(e->d_name, &owner) || pid_alive(owner)) continue;
      char *dir = xasprintf("%s/%s", self->base[i], e->d_name);
      /* A v2 server leaf of a dead server: its processes are gone with it. */
      for (int tries = 0; tries < 50; tries++) {
        kill_dir(dir, SIGKILL);
        if (rmdir(dir) == 0 || errno == ENOENT) {
          removed++;
          break;
        }
        usleep(20000);
      }
      free(dir);
    }
    closedir(d);
  }
  return removed;
}
