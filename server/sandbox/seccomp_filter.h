/* The sandbox's seccomp denylist, built with libseccomp and handed to bwrap
 * as a BPF program on a file descriptor (--seccomp FD). */
#ifndef CRUCIBLE_SANDBOX_SECCOMP_H
#define CRUCIBLE_SANDBOX_SECCOMP_H

#include <stddef.h>
#include <stdint.h>

#include <seccomp.h>

/* Builds the filter: default allow; EPERM for the denylisted syscalls (see
 * seccomp.c), clone with any namespace flag, personality other than
 * PER_LINUX/PER_LINUX32, ioctl TIOCSTI/TIOCLINUX; EAFNOSUPPORT for
 * socket families other than unix/inet/inet6/netlink; ENOSYS for clone3 (so
 * libc falls back to clone, whose flags can be checked). The native
 * architecture plus, on x86-64, i386 and x32 get the same rules. Returns 0
 * and *out (seccomp_release it), or a negative errno. */
int sbx_seccomp_build(scmp_filter_ctx *out);
/* Exports ctx as raw BPF into a new heap buffer (*buf, caller frees) of
 * *len bytes. Returns 0 or a negative errno. */
int sbx_seccomp_export(scmp_filter_ctx ctx, char **buf, size_t *len);
/* The names of the syscalls answered with EPERM (NULL-terminated). */
extern const char *const sbx_seccomp_denied[];
/* A hash of the rules sbx_seccomp_build adds: the lists above and below
 * and SBX_SECCOMP_RULES_VERSION (bump it with any change to the rules that
 * the lists do not show). Part of the cache key (seccomp_cache.h), with
 * the binary's build id. */
#define SBX_SECCOMP_RULES_VERSION 1
unsigned long long sbx_seccomp_spec_hash(void);
/* FNV-1a over n bytes at p, continuing from h (SBX_FNV1A_INIT to start):
 * the rule list's hash and the cache file's checksum, against change and
 * corruption, never as a signature. */
#define SBX_FNV1A_INIT 0xcbf29ce484222325ULL
uint64_t sbx_fnv1a(uint64_t h, const void *p, size_t n);

#endif
