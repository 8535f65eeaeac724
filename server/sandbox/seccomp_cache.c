/* The seccomp program kept on disk between starts (see seccomp_cache.h). */
#include "seccomp_cache.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <link.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "common.h"
#include "seccomp_filter.h"
#include "xdg.h"

#define MAGIC "crucible-seccomp 1\n"

/* A checksum against corruption, not a signature (whoever can write the
 * user's cache can write the user's other files too). */
static uint64_t checksum(const char *key, const void *prog, size_t len) {
  uint64_t h = sbx_fnv1a(SBX_FNV1A_INIT, key, strlen(key));
  h = sbx_fnv1a(h, "\n", 1);
  return sbx_fnv1a(h, prog, len);
}

static int key_ok(const char *key) {
  size_t n = strlen(key);
  if (!n || n > SBX_SECCOMP_CACHE_MAX_HEADER / 2) return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)key[i] < 0x20 || key[i] == 0x7f) return 0;
  return 1;
}

int sbx_seccomp_cache_encode(const char *key, const void *prog, size_t len, char **out, size_t *outlen) {
  if (!key_ok(key) || !len || len % 8 || len > SBX_SECCOMP_CACHE_MAX_PROG) return -EINVAL;
  char head[SBX_SECCOMP_CACHE_MAX_HEADER];
  int h = snprintf(head, sizeof head, MAGIC "key %s\nlen %zu\nsum %016" PRIx64 "\n\n", key, len,
                   checksum(key, prog, len));
  if (h < 0 || (size_t)h >= sizeof head) return -EINVAL;
  *out = xmalloc((size_t)h + len);
  memcpy(*out, head, (size_t)h);
  memcpy(*out + h, prog, len);
  *outlen = (size_t)h + len;
  return 0;
}

/* Takes the line "<tag> <value>\n" at *p (within end): the value's start
 * and length. Returns 0 or -EINVAL. */
static int field(const char **p, const char *end, const char *tag, const char **val, size_t *vlen) {
  size_t t = strlen(tag);
  if ((size_t)(end - *p) < t + 1 || memcmp(*p, tag, t) || (*p)[t] != ' ') return -EINVAL;
  const char *v = *p + t + 1;
  const char *nl = memchr(v, '\n', (size_t)(end - v));
  if (!nl) return -EINVAL;
  *val = v;
  *vlen = (size_t)(nl - v);
  *p = nl + 1;
  return 0;
}

/* A decimal or hex number filling exactly [v, v + n). Returns 0 or -EINVAL. */
static int number(const char *v, size_t n, int base, uint64_t *out) {
  char tmp[32];
  if (!n || n >= sizeof tmp) return -EINVAL;
  memcpy(tmp, v, n);
  tmp[n] = '\0';
  for (size_t i = 0; i < n; i++)
    if (!(base == 16 ? (tmp[i] >= '0' && tmp[i] <= '9') || (tmp[i] >= 'a' && tmp[i] <= 'f')
                     : tmp[i] >= '0' && tmp[i] <= '9'))
      return -EINVAL;
  errno = 0;
  char *e = NULL;
  unsigned long long x = strtoull(tmp, &e, base);
  if (errno || *e) return -EINVAL;
  *out = x;
  return 0;
}

int sbx_seccomp_cache_decode(const char *buf, size_t n, const char *key, const char **prog, size_t *len) {
  const char *p = buf, *end = buf + (n < SBX_SECCOMP_CACHE_MAX_HEADER ? n : SBX_SECCOMP_CACHE_MAX_HEADER);
  size_t m = strlen(MAGIC);
  if (n < m || memcmp(buf, MAGIC, m)) return -EINVAL;
  p += m;
  const char *k, *l, *s;
  size_t kn, ln, sn;
  uint64_t plen, sum;
  if (field(&p, end, "key", &k, &kn) || field(&p, end, "len", &l, &ln) || field(&p, end, "sum", &s, &sn))
    return -EINVAL;
  if (p >= end || *p != '\n') return -EINVAL;
  p++;
  if (number(l, ln, 10, &plen) || sn != 16 || number(s, sn, 16, &sum)) return -EINVAL;
  if (!plen || plen % 8 || plen > SBX_SECCOMP_CACHE_MAX_PROG) return -EINVAL;
  size_t head = (size_t)(p - buf);
  if (n - head != plen) return -EINVAL; /* truncated, or something appended */
  if (memchr(k, '\0', kn)) return -EINVAL;
  /* The checksum covers the key as written: a corrupted key is -EINVAL,
   * an intact one for another build is -ESTALE. */
  char *kcopy = xmalloc(kn + 1);
  memcpy(kcopy, k, kn);
  kcopy[kn] = '\0';
  uint64_t want = checksum(kcopy, p, (size_t)plen);
  free(kcopy);
  if (want != sum) return -EINVAL;
  if (strlen(key) != kn || memcmp(key, k, kn)) return -ESTALE;
  *prog = p;
  *len = (size_t)plen;
  return 0;
}

/* ---- runtime ---- */

typedef struct build_id {
  char hex[2 * 64 + 1];
} build_id;

/* The main program's NT_GNU_BUILD_ID note (the first object listed). */
static int find_build_id(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  build_id *out = data;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_NOTE) continue;
    const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
      const char *name = p + sizeof *nh;
      const unsigned char *desc = (const unsigned char *)name + ((nh->n_namesz + 3) & ~3u);
      if ((const char *)desc + nh->n_descsz > end) break;
      if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && !memcmp(name, "GNU", 4) && nh->n_descsz &&
          nh->n_descsz <= 64) {
        for (unsigned j = 0; j < nh->n_descsz; j++) snprintf(out->hex + 2 * j, 3, "%02x", desc[j]);
        return 1;
      }
      p = (const char *)desc + ((nh->n_descsz + 3) & ~3u);
    }
  }
  return 1; /* only the main program */
}

int sbx_seccomp_cache_key(char *buf, size_t cap) {
  build_id id = {{0}};
  dl_iterate_phdr(find_build_id, &id);
  char exe[96] = "";
  if (!id.hex[0]) {
    /* No build id: this binary's identity on disk stands in for it. */
    struct stat st;
    if (stat("/proc/self/exe", &st) == 0)
      snprintf(exe, sizeof exe, "exe-%llx-%llx-%lld.%09ld", (unsigned long long)st.st_ino,
               (unsigned long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    else
      snprintf(exe, sizeof exe, "exe-unknown-%d", (int)getpid()); /* never matches a later start */
  }
  const struct scmp_version *v = seccomp_version();
  struct utsname u;
  if (uname(&u) < 0) memset(&u, 0, sizeof u);
  int n = snprintf(buf, cap, "rules=%016llx build=%s libseccomp=%u.%u.%u api=%u kernel=%s machine=%s",
                   sbx_seccomp_spec_hash(), id.hex[0] ? id.hex : exe, v ? v->major : 0, v ? v->minor : 0,
                   v ? v->micro : 0, seccomp_api_get(), u.release, u.machine);
  if (n < 0 || (size_t)n >= cap) return -ENAMETOOLONG;
  /* A kernel release may hold anything: keep the key one printable line. */
  for (char *c = buf; *c; c++)
    if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
  return 0;
}

int sbx_seccomp_cache_load(const char *path, const char *key, char **prog, size_t *len) {
  int err = 0;
  char *buf = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return -errno;
  struct stat st;
  if (fstat(fd, &st) < 0) {
    err = -errno;
    goto out;
  }
  if (!S_ISREG(st.st_mode) || st.st_size <= 0 ||
      st.st_size > SBX_SECCOMP_CACHE_MAX_HEADER + SBX_SECCOMP_CACHE_MAX_PROG) {
    err = -EINVAL;
    goto out;
  }
  size_t n = (size_t)st.st_size, got = 0;
  buf = xmalloc(n);
  while (got < n) {
    ssize_t r = read(fd, buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      err = -errno;
      goto out;
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  const char *p;
  size_t plen;
  if ((err = sbx_seccomp_cache_decode(buf, got, key, &p, &plen))) goto out;
  *prog = xmalloc(plen);
  memcpy(*prog, p, plen);
  *len = plen;
out:
  free(buf);
  close(fd);
  return err;
}

int sbx_seccomp_cache_store(const char *path, const char *key, const void *prog, size_t len) {
  char *data = NULL;
  size_t n = 0;
  int err = sbx_seccomp_cache_encode(key, prog, len, &data, &n);
  if (err) return err;
  char tmp[PATH_MAX];
  int fd = -1;
  if (snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid()) >= (int)sizeof tmp) {
    err = -ENAMETOOLONG;
    goto out;
  }
  /* 0755 like the environments' folders (env/cache.c): Crucible's cache
   * folder is shared, and a root server's sandbox uid must reach the
   * environments under it. The file itself is 0600. */
  if ((err = xdg_mkdir_parents(path, 0755))) goto out;
  fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    err = -errno;
    goto out;
  }
  err = write_all(fd, data, n);
  if (close(fd) < 0 && !err) err = -errno;
  fd = -1;
  if (!err && rename(tmp, path) < 0) err = -errno;
  if (err) unlink(tmp);
out:
  if (fd >= 0) {
    close(fd);
    unlink(tmp);
  }
  free(data);
  return err;
}
