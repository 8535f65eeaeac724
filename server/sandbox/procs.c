/* Host-side process scans: signalling a sandbox's process tree, stranded
 * sandboxes of dead servers, and the descriptor sweep before a spawn. */
#include "procs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bwrap.h"
#include "cgroup.h"
#include "common.h"

/* The parent pid from /proc/<pid>/stat; -1 on error. */
static pid_t ppid_of(int dirfd, const char *name) {
  char path[300], buf[512];
  snprintf(path, sizeof path, "%s/stat", name);
  int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  /* The command name may hold spaces and parens: parse after the last ')'. */
  char *rp = strrchr(buf, ')');
  if (!rp) return -1;
  char state;
  int ppid;
  if (sscanf(rp + 1, " %c %d", &state, &ppid) != 2) return -1;
  return ppid;
}

typedef struct pp {
  pid_t pid, ppid;
} pp;

static pp *scan(int *count) {
  DIR *d = opendir("/proc");
  int cap = 256, n = 0;
  pp *v = xmalloc(sizeof *v * (size_t)cap);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
      pid_t ppid = ppid_of(dirfd(d), e->d_name);
      if (ppid < 0) continue;
      if (n == cap) v = xrealloc(v, sizeof *v * (size_t)(cap *= 2));
      v[n++] = (pp){(pid_t)atoi(e->d_name), ppid};
    }
    closedir(d);
  }
  *count = n;
  return v;
}

int sbx_procs_signal_tree(pid_t root, int sig) {
  int n = 0, hit = 0;
  pp *v = scan(&n);
  /* Breadth-first over the parent links: a set of pids in the tree. */
  pid_t *tree = xmalloc(sizeof *tree * (size_t)(n + 1));
  int nt = 0;
  tree[nt++] = root;
  for (int i = 0; i < nt; i++)
    for (int j = 0; j < n; j++)
      if (v[j].ppid == tree[i] && v[j].pid != root) {
        bool dup = false;
        for (int k = 0; k < nt && !dup; k++) dup = tree[k] == v[j].pid;
        if (!dup && nt <= n) tree[nt++] = v[j].pid;
      }
  for (int i = 1; i < nt; i++)
    if (kill(tree[i], sig) == 0) hit++;
  free(tree);
  free(v);
  return hit;
}

/* Whether the NUL-separated argv (n bytes) is a sandbox of a runner. */
static bool is_runner_bwrap(const char *buf, size_t n) {
  const char *base = strrchr(buf, '/');
  base = base ? base + 1 : buf;
  if (strcmp(base, "bwrap")) return false;
  bool status = false, block = false, host = false;
  for (const char *a = buf; a < buf + n; a += strlen(a) + 1) {
    const char *next = a + strlen(a) + 1 < buf + n ? a + strlen(a) + 1 : "";
    status |= !strcmp(a, "--json-status-fd");
    block |= !strcmp(a, "--block-fd");
    host |= !strcmp(a, "--hostname") && !strcmp(next, SBX_HOSTNAME);
    if (!strcmp(a, "--")) break;
  }
  return status && block && host;
}

int sbx_procs_sweep(void) {
  DIR *d = opendir("/proc");
  if (!d) return 0;
  int killed = 0;
  struct dirent *e;
  char buf[16384];
  while ((e = readdir(d))) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    /* The cheap tests first: a process whose session leader lives (nearly
     * all of them) is no stranded init, and its argv is not read (reading
     * another process's cmdline maps its memory: the costly part of a
     * sweep that runs at every start). */
    pid_t pid = (pid_t)atoi(e->d_name), sid = getsid(pid);
    if (sid <= 1 || sid == pid) continue; /* a monitor: its parent-death signal covers it */
    if (kill(sid, 0) == 0 || errno != ESRCH) continue;
    char path[300];
    snprintf(path, sizeof path, "%s/cmdline", e->d_name);
    int fd = openat(dirfd(d), path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) continue;
    buf[n] = '\0';
    if (is_runner_bwrap(buf, (size_t)n) && kill(pid, SIGKILL) == 0) killed++;
  }
  closedir(d);
  return killed;
}

void sbx_fds_cloexec(void) {
  /* One system call where the kernel has it (Linux 5.11); else the scan. */
  if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return;
  DIR *d = opendir("/proc/self/fd");
  if (!d) return;
  int self = dirfd(d);
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    int fd = atoi(e->d_name);
    if (fd <= 2 || fd == self) continue;
    int fl = fcntl(fd, F_GETFD);
    if (fl >= 0 && !(fl & FD_CLOEXEC)) fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
  }
  closedir(d);
}
