/* Starting bwrap: vfork + exec with a fixed fd layout, default signal
 * dispositions, its cgroup joined by itself, and an optional switch to an
 * unprivileged host uid/gid. */
#include "launch.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* The kernel's struct sigaction (x86-64, arm64 and the generic layout):
 * only SIG_DFL is ever installed with it, so no restorer is needed. */
struct k_sigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)(void);
  unsigned long mask;
};

/* What runs in the vfork child, between vfork and execve. It shares the
 * parent's memory and so calls the kernel directly: glibc's setresuid would
 * broadcast the id change to every thread of the *parent* (it thinks they
 * are its own), and a sanitizer's interceptors would touch shared state.
 * Returns only on failure, with the errno. */
static int child_exec(const sbx_launch_spec *s) {
  struct k_sigaction dfl = {0};
  dfl.handler = SIG_DFL;
  for (int sig = 1; sig < 65; sig++)
    if (sig != SIGKILL && sig != SIGSTOP) syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof dfl.mask);
  if (s->new_session && syscall(SYS_setsid) < 0) return errno;
  /* The cgroup first, while the ids still own its files: written by the
   * process itself, "0" moves it without the lock a move by pid takes. */
  for (int i = 0; i < s->njoin; i++) {
    long fd = syscall(SYS_openat, AT_FDCWD, s->join[i], O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    long w = syscall(SYS_write, fd, "0", 1);
    int e = errno;
    syscall(SYS_close, fd);
    if (w != 1) return w < 0 ? e : EIO;
  }
  /* Lowering one's own limits needs no privilege (prlimit on a process of
   * another uid needs CAP_SYS_RESOURCE, which a container's root may lack). */
  for (int i = 0; i < s->nrlimits; i++)
    if (syscall(SYS_prlimit64, 0, s->rlimits[i].resource, &s->rlimits[i].value, NULL) < 0) return errno;
  if (s->set_ids) {
    /* Groups first, then gid, then uid: each later step drops the right
     * to do the earlier ones. */
    if (syscall(SYS_setgroups, 0, NULL) < 0) return errno;
    if (syscall(SYS_setresgid, s->gid, s->gid, s->gid) < 0) return errno;
    if (syscall(SYS_setresuid, s->uid, s->uid, s->uid) < 0) return errno;
  }
  for (int i = 0; i < s->nfds; i++)
    if (syscall(SYS_dup3, s->fds[i], i, 0) < 0) return errno;
  unsigned long none = 0;
  if (syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof none) < 0) return errno;
  syscall(SYS_execve, s->path, s->argv, s->envp);
  return errno;
}

int sbx_launch(const sbx_launch_spec *spec, pid_t *pid) {
  for (int i = 0; i < spec->nfds; i++)
    if (spec->fds[i] < spec->nfds) return -EINVAL;
  /* No signal handler may run in the child while it shares our memory:
   * block everything across the vfork; the child resets dispositions
   * before it unblocks. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  volatile int child_err = 0;
  pid_t p = vfork();
  if (p == 0) {
    child_err = child_exec(spec);
    syscall(SYS_exit_group, 127);
  }
  int err = p < 0 ? errno : 0;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (err) return -err;
  if (child_err) {
    /* The child wrote its errno before exiting: it never ran the program. */
    while (waitpid(p, NULL, 0) < 0 && errno == EINTR) {
    }
    return -child_err;
  }
  *pid = p;
  return 0;
}
