/* XDG base directories (config, cache, state, runtime), mkdir -p, and whether another uid can reach a folder. */
#include "xdg.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

static const struct {
  const char *var;     /* the environment variable */
  const char *in_home; /* the default under the home directory; NULL: none */
} kinds[] = {
    [XDG_CONFIG] = {"XDG_CONFIG_HOME", ".config"},
    [XDG_CACHE] = {"XDG_CACHE_HOME", ".cache"},
    [XDG_STATE] = {"XDG_STATE_HOME", ".local/state"},
    [XDG_RUNTIME] = {"XDG_RUNTIME_DIR", NULL},
};

/* The spec: "If an implementation encounters a relative path in any of
 * these variables it should consider the path invalid and ignore it." */
static const char *absolute_env(const char *name) {
  const char *v = getenv(name);
  return v && v[0] == '/' ? v : NULL;
}

/* buf = a b c (concatenated). */
static int put(char *buf, size_t cap, const char *a, const char *b, const char *c) {
  int n = snprintf(buf, cap, "%s%s%s", a, b, c);
  return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* $HOME when absolute; else (a service, cron) the passwd entry's home.
 * getpwuid_r: these helpers may run on the loop's thread pool. */
static int home_dir(char *buf, size_t cap) {
  const char *h = absolute_env("HOME");
  if (h) return put(buf, cap, h, "", "");
  struct passwd pw, *found = NULL;
  char scratch[4096];
  if (getpwuid_r(geteuid(), &pw, scratch, sizeof scratch, &found) || !found || !pw.pw_dir ||
      pw.pw_dir[0] != '/')
    return -ENOENT;
  return put(buf, cap, pw.pw_dir, "", "");
}

int xdg_base_dir(xdg_kind kind, char *buf, size_t cap) {
  if ((unsigned)kind >= sizeof kinds / sizeof kinds[0]) return -EINVAL;
  const char *v = absolute_env(kinds[kind].var);
  if (v) return put(buf, cap, v, "", "");
  if (!kinds[kind].in_home) return -ENOENT;
  char home[PATH_MAX];
  int err = home_dir(home, sizeof home);
  if (err) return err;
  return put(buf, cap, home, "/", kinds[kind].in_home);
}

int xdg_app_dir(xdg_kind kind, char *buf, size_t cap) {
  char base[PATH_MAX];
  int err = xdg_base_dir(kind, base, sizeof base);
  if (err == -ENOENT && kind == XDG_RUNTIME) {
    const char *tmp = absolute_env("TMPDIR");
    char leaf[64];
    snprintf(leaf, sizeof leaf, "/" XDG_APP "-%u", (unsigned)geteuid());
    return put(buf, cap, tmp ? tmp : "/tmp", leaf, "");
  }
  if (err) return err;
  return put(buf, cap, base, "/" XDG_APP, "");
}

int xdg_app_path(xdg_kind kind, const char *name, char *buf, size_t cap) {
  char dir[PATH_MAX];
  int err = xdg_app_dir(kind, dir, sizeof dir);
  if (err) return err;
  return put(buf, cap, dir, "/", name);
}

int xdg_file_prepare(xdg_kind kind, const char *name, const char *path, char *buf, size_t cap, char *err,
                     size_t errlen) {
  const char *var = (unsigned)kind < sizeof kinds / sizeof kinds[0] ? kinds[kind].var : "XDG_*";
  int e = path ? put(buf, cap, path, "", "") : xdg_app_path(kind, name, buf, cap);
  if (e == -ENOENT) {
    snprintf(err, errlen, "no directory for %s: set %s or HOME", name, var);
    return e;
  }
  if (e) {
    snprintf(err, errlen, "the path of %s is too long: set %s to a shorter one", name, var);
    return e;
  }
  e = xdg_mkdir_parents(buf, 0700);
  if (e) snprintf(err, errlen, "cannot create the directory for %s: %s (set %s to a writable folder)", buf,
                  strerror(-e), var);
  return e;
}

int xdg_mkdir_p(const char *dir, mode_t mode) {
  char p[PATH_MAX];
  if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) return -ENAMETOOLONG;
  if (!p[0]) return -ENOENT;
  for (char *s = p + 1;; s++) {
    if (*s != '/' && *s != '\0') continue;
    char c = *s;
    *s = '\0';
    if (mkdir(p, mode) != 0) {
      struct stat st;
      if (errno != EEXIST) return -errno;
      if (stat(p, &st) != 0) return -errno;
      if (!S_ISDIR(st.st_mode)) return -ENOTDIR; /* a file where a folder should be */
    }
    *s = c;
    if (!c) return 0;
  }
}

int xdg_mkdir_parents(const char *path, mode_t mode) {
  char dir[PATH_MAX];
  if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir) return -ENAMETOOLONG;
  char *slash = strrchr(dir, '/');
  if (!slash || slash == dir) return 0;
  *slash = '\0';
  return xdg_mkdir_p(dir, mode);
}

bool xdg_reachable(const char *path, long uid, long gid, char **why) {
  *why = NULL;
  if (uid < 0) return true;
  char *p = xstrdup(path);
  bool ok = true;
  for (char *s = p;; s++) {
    if (*s != '/' && *s) continue;
    char c = *s;
    *s = '\0';
    struct stat st;
    const char *dir = p[0] ? p : "/";
    if (stat(dir, &st) == 0) {
      mode_t bit = (long)st.st_uid == uid ? S_IXUSR : (long)st.st_gid == gid ? S_IXGRP : S_IXOTH;
      if (!(st.st_mode & bit)) {
        *why = xasprintf("%s (mode %03o, owner %ld)", dir, (unsigned)(st.st_mode & 0777), (long)st.st_uid);
        ok = false;
      }
    }
    *s = c;
    if (!ok || !c) break;
  }
  free(p);
  return ok;
}
