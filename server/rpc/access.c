/* The tcp listener's token: made from getrandom, kept in a per-user
 * directory only its owner can read, compared in constant time. */
#include "access.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "xdg.h"

/* $XDG_RUNTIME_DIR/crucible, else $TMPDIR/crucible-UID or /tmp/crucible-UID. */
static int token_dir(char *buf, size_t cap) {
  return xdg_app_dir(XDG_RUNTIME, buf, cap);
}

int rpc_access_token_path(char *buf, size_t cap) {
  char dir[4096];
  int err = token_dir(dir, sizeof dir);
  if (err) return err;
  int n = snprintf(buf, cap, "%s/token", dir);
  return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* Creates dir (one level) 0700 if missing, then checks what is there: a
 * directory (not a symlink), owned by us, closed to everyone else. The
 * fallback lives in a shared /tmp, where another user may have made the
 * directory first to read or swap our token. */
static int prepare_dir(const char *dir, char *err, size_t errlen) {
  if (mkdir(dir, 0700) && errno != EEXIST) {
    int e = errno;
    snprintf(err, errlen, "cannot create %s: %s%s", dir, strerror(e),
             e == ENOENT ? " (does XDG_RUNTIME_DIR or TMPDIR name an existing directory?)" : "");
    return -e;
  }
  struct stat st;
  if (lstat(dir, &st)) {
    int e = errno;
    snprintf(err, errlen, "cannot use %s: %s", dir, strerror(e));
    return -e;
  }
  if (!S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "%s is not a directory (a symlink?): remove it, or set XDG_RUNTIME_DIR", dir);
    return -ENOTDIR;
  }
  if (st.st_uid != geteuid()) {
    snprintf(err, errlen, "%s belongs to uid %u, not to us (uid %u): another user may read the token "
             "there; remove it, or set XDG_RUNTIME_DIR to a directory of ours", dir, (unsigned)st.st_uid,
             (unsigned)geteuid());
    return -EPERM;
  }
  if (st.st_mode & 077) {
    snprintf(err, errlen, "%s is open to other users (mode %03o): run chmod 700 %s", dir,
             (unsigned)(st.st_mode & 0777), dir);
    return -EPERM;
  }
  return 0;
}

static int random_bytes(unsigned char *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(buf + got, n - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    got += (size_t)r;
  }
  return 0;
}

int rpc_access_token_create(char token[RPC_ACCESS_TOKEN_LEN + 1], char *path, size_t path_cap,
                            char *err, size_t errlen) {
  char dir[4096], file[4200], tmp[4200];
  int rc = token_dir(dir, sizeof dir);
  if (rc) {
    snprintf(err, errlen, "the token directory's path is too long (XDG_RUNTIME_DIR or TMPDIR)");
    return rc;
  }
  rc = prepare_dir(dir, err, errlen);
  if (rc) return rc;
  snprintf(file, sizeof file, "%s/token", dir);
  snprintf(tmp, sizeof tmp, "%s/.token.XXXXXX", dir);

  unsigned char raw[RPC_ACCESS_TOKEN_LEN / 2];
  rc = random_bytes(raw, sizeof raw);
  if (rc) {
    snprintf(err, errlen, "getrandom failed: %s", strerror(-rc));
    return rc;
  }
  static const char hex[] = "0123456789abcdef";
  char line[RPC_ACCESS_TOKEN_LEN + 2];
  for (size_t i = 0; i < sizeof raw; i++) {
    line[2 * i] = hex[raw[i] >> 4];
    line[2 * i + 1] = hex[raw[i] & 15];
  }
  memset(raw, 0, sizeof raw);
  line[RPC_ACCESS_TOKEN_LEN] = '\n';
  line[RPC_ACCESS_TOKEN_LEN + 1] = '\0';

  /* mkstemp makes the file 0600 and O_EXCL; rename then swaps it in without
   * following whatever sits at the final name. */
  int fd = mkstemp(tmp);
  if (fd < 0) {
    rc = -errno;
    snprintf(err, errlen, "cannot create a file in %s: %s", dir, strerror(-rc));
    goto done;
  }
  rc = fchmod(fd, 0600) ? -errno : 0;
  if (!rc) rc = write_all(fd, line, RPC_ACCESS_TOKEN_LEN + 1);
  if (close(fd) && !rc) rc = -errno;
  if (!rc && rename(tmp, file)) rc = -errno;
  if (rc) {
    snprintf(err, errlen, "cannot write %s: %s", file, strerror(-rc));
    unlink(tmp);
    goto done;
  }
  memcpy(token, line, RPC_ACCESS_TOKEN_LEN);
  token[RPC_ACCESS_TOKEN_LEN] = '\0';
  if (path) snprintf(path, path_cap, "%s", file);
done:
  memset(line, 0, sizeof line);
  return rc;
}

int rpc_access_token_read(char token[RPC_ACCESS_TOKEN_LEN + 1], char *err, size_t errlen) {
  char file[4200];
  if (rpc_access_token_path(file, sizeof file)) {
    snprintf(err, errlen, "the token file's path is too long (XDG_RUNTIME_DIR or TMPDIR)");
    return -ENAMETOOLONG;
  }
  int fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    snprintf(err, errlen, "cannot read the server's token %s: %s%s", file, strerror(e),
             e == ENOENT ? " (is `crucible serve --listen tcp:...` running as this user, with the "
                           "same XDG_RUNTIME_DIR?)" : "");
    return -e;
  }
  int rc = 0;
  struct stat st;
  char buf[RPC_ACCESS_TOKEN_LEN + 8];
  ssize_t n = 0;
  if (fstat(fd, &st)) {
    rc = -errno;
    snprintf(err, errlen, "cannot read %s: %s", file, strerror(-rc));
    goto done;
  }
  if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) {
    rc = -EPERM;
    snprintf(err, errlen, "refusing to use %s: it must be a regular file of ours with mode 0600 "
             "(restart the server to make a new one)", file);
    goto done;
  }
  do
    n = read(fd, buf, sizeof buf);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    rc = -errno;
    snprintf(err, errlen, "cannot read %s: %s", file, strerror(-rc));
    goto done;
  }
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--;
  if (n != RPC_ACCESS_TOKEN_LEN || strspn(buf, "0123456789abcdef") < RPC_ACCESS_TOKEN_LEN) {
    rc = -EINVAL;
    snprintf(err, errlen, "%s does not hold a token (restart the server to make a new one)", file);
    goto done;
  }
  memcpy(token, buf, RPC_ACCESS_TOKEN_LEN);
  token[RPC_ACCESS_TOKEN_LEN] = '\0';
done:
  memset(buf, 0, sizeof buf);
  close(fd);
  return rc;
}

bool rpc_access_token_equal(const char *expected, const char *given, size_t given_len) {
  size_t n = strlen(expected);
  /* Walk the expected token in full whatever was given: the time depends on
   * its length only. volatile keeps the compiler from stopping early. */
  volatile unsigned char diff = given_len != n;
  for (size_t i = 0; i < n; i++) {
    unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
    diff |= (unsigned char)expected[i] ^ g;
  }
  return diff == 0;
}
