/* The sandbox's seccomp denylist, built with libseccomp and handed to bwrap
 * as a BPF program on a file descriptor (--seccomp FD). */
#include "seccomp_filter.h"

#include <errno.h>
#include <linux/sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

/* Syscalls a sandboxed program never needs and that widen the kernel's
 * attack surface or reach outside the sandbox. Names missing on an
 * architecture are skipped there. */
const char *const sbx_seccomp_denied[] = {
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
    "mount", "umount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen",
    "fsconfig", "fsmount", "fspick", "mount_setattr",
    "unshare", "setns",
    "keyctl", "add_key", "request_key",
    "bpf", "perf_event_open", "userfaultfd", "fanotify_init",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "reboot", "swapon", "swapoff", "acct", "quotactl", "quotactl_fd",
    "settimeofday", "stime", "clock_settime", "clock_settime64", "clock_adjtime",
    "clock_adjtime64", "adjtimex",
    "syslog", "vhangup", "uselib", "iopl", "ioperm", "lookup_dcookie", "nfsservctl",
    "open_by_handle_at", "name_to_handle_at",
    NULL,
};

static const unsigned long ns_flags[] = {
    CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWUTS, CLONE_NEWIPC,
    CLONE_NEWCGROUP,
#ifdef CLONE_NEWTIME
    CLONE_NEWTIME,
#endif
};

uint64_t sbx_fnv1a(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
  return h;
}

unsigned long long sbx_seccomp_spec_hash(void) {
  int v = SBX_SECCOMP_RULES_VERSION;
  uint64_t h = sbx_fnv1a(SBX_FNV1A_INIT, &v, sizeof v);
  for (const char *const *s = sbx_seccomp_denied; *s; s++) h = sbx_fnv1a(h, *s, strlen(*s) + 1);
  h = sbx_fnv1a(h, ns_flags, sizeof ns_flags);
  int consts[] = {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, PER_LINUX32, (int)TIOCSTI, (int)TIOCLINUX};
  return sbx_fnv1a(h, consts, sizeof consts);
}

/* Adds one rule; a syscall unknown to this libseccomp/arch is not an error. */
static int rule(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n,
                const struct scmp_arg_cmp *cmp) {
  int nr = seccomp_syscall_resolve_name(name);
  if (nr == __NR_SCMP_ERROR) return 0;
  int err = seccomp_rule_add_array(ctx, action, nr, n, cmp);
  /* -EDOM/-EFAULT: the syscall does not exist on one of the arches. */
  return (err == -EDOM || err == -EFAULT) ? 0 : err;
}

int sbx_seccomp_build(scmp_filter_ctx *out) {
  int err = 0;
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (!ctx) return -ENOMEM;
  /* A syscall made with a foreign ABI (int 0x80 from a 64-bit process)
   * must not slip past the rules: i386 and x32 get the same rules, any
   * other architecture is killed. */
  if ((err = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS))) goto fail;
#if SCMP_VER_MAJOR > 2 || (SCMP_VER_MAJOR == 2 && SCMP_VER_MINOR >= 5)
  /* A binary tree of syscall numbers instead of one long chain: fewer BPF
   * steps for every syscall checked by arguments, and for the kernel's
   * walk of the whole filter, syscall by syscall, when bwrap installs it
   * (Linux 5.11+ caches which syscalls it always allows). */
  seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
#endif
  if (seccomp_arch_native() == SCMP_ARCH_X86_64) {
    if ((err = seccomp_arch_add(ctx, SCMP_ARCH_X86)) && err != -EEXIST) goto fail;
    if ((err = seccomp_arch_add(ctx, SCMP_ARCH_X32)) && err != -EEXIST) goto fail;
  }
  const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
  for (const char *const *s = sbx_seccomp_denied; *s; s++)
    if ((err = rule(ctx, eperm, *s, 0, NULL))) goto fail;

  /* clone(2): flags are the first argument on the architectures we add
   * (s390 swaps them; it gets the native rule only through libseccomp). */
  for (size_t i = 0; i < ARRAY_LEN(ns_flags); i++) {
    struct scmp_arg_cmp c = SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]);
    if ((err = rule(ctx, eperm, "clone", 1, &c))) goto fail;
  }
  if ((err = rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL))) goto fail;

  /* personality(2): only PER_LINUX and PER_LINUX32. libseccomp cannot
   * compare one argument twice in a rule, so the 0xffffffff query is denied
   * too (nothing common needs it). */
  for (unsigned v = 1; v < PER_LINUX32; v++) {
    struct scmp_arg_cmp c = SCMP_A0_32(SCMP_CMP_EQ, v);
    if ((err = rule(ctx, eperm, "personality", 1, &c))) goto fail;
  }
  {
    struct scmp_arg_cmp c = SCMP_A0_32(SCMP_CMP_GT, PER_LINUX32);
    if ((err = rule(ctx, eperm, "personality", 1, &c))) goto fail;
  }

  /* Faking terminal input into a host tty (the sandbox has none, belt and braces). */
  {
    struct scmp_arg_cmp c = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCSTI);
    if ((err = rule(ctx, eperm, "ioctl", 1, &c))) goto fail;
    c = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCLINUX);
    if ((err = rule(ctx, eperm, "ioctl", 1, &c))) goto fail;
  }

  /* socket(2): unix, inet, inet6 (the network namespace has only its own
   * loopback) and netlink (getifaddrs); nothing else. */
  for (int fam = 0; fam < 64; fam++) {
    if (fam == AF_UNIX || fam == AF_INET || fam == AF_INET6 || fam == AF_NETLINK) continue;
    struct scmp_arg_cmp c = SCMP_A0_32(SCMP_CMP_EQ, (unsigned)fam);
    if ((err = rule(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), "socket", 1, &c))) goto fail;
  }
  {
    struct scmp_arg_cmp c = SCMP_A0_32(SCMP_CMP_GE, 64);
    if ((err = rule(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), "socket", 1, &c))) goto fail;
  }
  *out = ctx;
  return 0;
fail:
  seccomp_release(ctx);
  return err < 0 ? err : -EINVAL;
}

int sbx_seccomp_export(scmp_filter_ctx ctx, char **buf, size_t *len) {
  int err = 0;
  int fd = memfd_create("crucible-seccomp", MFD_CLOEXEC);
  if (fd < 0) return -errno;
  if ((err = seccomp_export_bpf(ctx, fd))) goto out;
  struct stat st;
  if (fstat(fd, &st) < 0) {
    err = -errno;
    goto out;
  }
  *len = (size_t)st.st_size;
  *buf = xmalloc(*len ? *len : 1);
  if (pread(fd, *buf, *len, 0) != (ssize_t)*len) {
    free(*buf);
    *buf = NULL;
    err = -EIO;
  }
out:
  close(fd);
  return err;
}
