/* The sandbox's /etc as one read-only folder (etcview.h): hashing the
 * host's entries, copying them into a new view, and removing old views. */
#include "etcview.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bwrap.h"
#include "common.h"
#include "dbuf.h"
#include "xdg.h"

/* Bumped whenever what a view holds changes: old views then no longer match. */
#define VIEW_FORMAT "crucible-etc-view 3"
/* Folders are copied this deep below an entry of the list, no deeper. */
#define VIEW_DEPTH 8

/* base made (mkdir -p) and reachable by uid/gid: new folders 0755 for
 * another uid to reach, else 0700 as Crucible's other folders. */
static bool base_usable(const char *base, long uid, long gid) {
  char *why = NULL;
  bool ok = xdg_reachable(base, uid, gid, &why) && xdg_mkdir_p(base, uid >= 0 ? 0755 : 0700) == 0 &&
            xdg_reachable(base, uid, gid, &why);
  free(why);
  return ok;
}

/* dir (one level, made 0700 if missing) is a folder of this uid's, not a
 * symlink, that no one else may write: the runtime folder's fallback is in
 * the shared /tmp, where another user could have made it first. */
static bool own_dir(const char *dir) {
  struct stat st;
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) return false;
  return lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() && !(st.st_mode & 022);
}

/* <runtime folder>/etc when usable; with fallback, the /tmp one too. */
static char *runtime_base(bool fallback, long uid, long gid) {
  char rt[PATH_MAX];
  if (!fallback && xdg_base_dir(XDG_RUNTIME, rt, sizeof rt) != 0) return NULL;
  if (xdg_app_dir(XDG_RUNTIME, rt, sizeof rt) != 0 || !own_dir(rt)) return NULL;
  char *b = xasprintf("%s/etc", rt);
  if (base_usable(b, uid, gid)) return b;
  free(b);
  return NULL;
}

char *sbx_etc_view_base(long uid, long gid, char **err) {
  *err = NULL;
  char buf[PATH_MAX];
  char *b = runtime_base(false, uid, gid);
  if (b) return b;
  bool cache = xdg_app_path(XDG_CACHE, "etc", buf, sizeof buf) == 0;
  if (cache && base_usable(buf, uid, gid)) return xstrdup(buf);
  /* A root server's own folders (a container's /var may be read-only,
   * its /run is a tmpfs). */
  static const char *const roots[] = {"/var/cache/crucible/etc", "/run/crucible/etc"};
  for (size_t i = 0; uid >= 0 && geteuid() == 0 && i < ARRAY_LEN(roots); i++)
    if (base_usable(roots[i], uid, gid)) return xstrdup(roots[i]);
  if ((b = runtime_base(true, uid, gid))) return b;
  *err = xasprintf("no folder for the sandbox's /etc%s%s%s that its uid can reach and this process can write: set "
                   "XDG_RUNTIME_DIR or XDG_CACHE_HOME to one", cache ? " (tried " : "", cache ? buf : "",
                   cache ? ")" : "");
  return NULL;
}

/* One pass over the entries: a hash of what they are (always) and, when
 * dst is set, their copies under dst. */
typedef struct view_walk {
  uint64_t h;
  const char *dst;
  int err; /* the first copy error, a negative errno */
  char *err_path;
  dbuf manifest; /* "<stat tuple> <path>\n" of every file and folder stat'ed */
} view_walk;

static void mix(view_walk *w, const void *p, size_t n) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++) w->h = (w->h ^ c[i]) * 0x100000001b3ULL; /* FNV-1a */
}

static void mix_str(view_walk *w, const char *s) {
  mix(w, s, strlen(s) + 1);
}

/* What a file's stat says of its content and name: a change to either
 * moves one of these (a folder's when an entry is added, removed or
 * replaced). */
#define STAT_FMT "%lld %lld %lld %lld %lld %lld %lld"
#define STAT_ARGS(st)                                                                                            \
  (long long)(st)->st_ino, (long long)(st)->st_size, (long long)((st)->st_mode & 07777),                         \
      (long long)(st)->st_mtim.tv_sec, (long long)(st)->st_mtim.tv_nsec, (long long)(st)->st_ctim.tv_sec,        \
      (long long)(st)->st_ctim.tv_nsec

/* Mixes the stat of path into the hash and notes it in the manifest. */
static void mix_stat(view_walk *w, char kind, const char *path, const struct stat *st) {
  char line[160];
  int n = snprintf(line, sizeof line, "%c " STAT_FMT, kind, STAT_ARGS(st));
  mix(w, line, (size_t)n);
  dbuf_addf(&w->manifest, "%s %s\n", line + 2, path);
}

static void fail(view_walk *w, int err, const char *path) {
  if (w->err) return;
  w->err = err;
  w->err_path = xstrdup(path);
}

/* Writes data to the new file path, mode 0444. */
static int put_file(const char *path, const void *data, size_t n) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0444);
  if (fd < 0) return -errno;
  int e = write_all(fd, data, n);
  if (close(fd) != 0 && !e) e = -errno;
  return e;
}

/* Copies the regular file src to the new file dst (mode 0444) with src's
 * times: a copy that looked newer would make Python recompile the cached
 * bytecode of /etc/python3.X/sitecustomize.py (its pyc records the source's
 * mtime) at every start, ~1 ms. A file this process may not read is left
 * out, as bwrap's bind would have shown it unreadable. */
static void copy_file(view_walk *w, const char *src, const char *dst) {
  int in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (in < 0) return;
  int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0444);
  if (out < 0) {
    fail(w, -errno, dst);
    close(in);
    return;
  }
  char buf[65536];
  for (;;) {
    ssize_t k = read(in, buf, sizeof buf);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) {
      fail(w, -errno, src);
      break;
    }
    if (k == 0) break;
    int e = write_all(out, buf, (size_t)k);
    if (e) {
      fail(w, e, dst);
      break;
    }
  }
  struct stat st;
  if (fstat(in, &st) == 0) {
    struct timespec t[2] = {st.st_atim, st.st_mtim};
    if (futimens(out, t) != 0) fail(w, -errno, dst);
  }
  close(in);
  if (close(out) != 0) fail(w, -errno, dst);
}

static void copy_link(view_walk *w, const char *src, const char *dst) {
  char target[PATH_MAX];
  ssize_t k = readlink(src, target, sizeof target - 1);
  if (k < 0) return;
  target[k] = '\0';
  if (symlink(target, dst) != 0) fail(w, -errno, dst);
}

typedef struct dent {
  char *name;
  unsigned char type;
  ino_t ino;
} dent;

static int dent_cmp(const void *a, const void *b) {
  return strcmp(((const dent *)a)->name, ((const dent *)b)->name);
}

static void walk(view_walk *w, const char *src, const char *rel, int depth);

/* A folder's entries in name order (readdir's order is the file system's):
 * symlinks by their inode alone, no lstat each (/etc/alternatives holds
 * hundreds), the rest walked. */
static void walk_dir(view_walk *w, const char *src, const char *rel, int depth) {
  DIR *d = opendir(src);
  if (!d) return;
  dent *v = NULL;
  size_t n = 0, cap = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (n == cap) v = xrealloc(v, sizeof *v * (cap = cap ? cap * 2 : 64));
    v[n++] = (dent){xstrdup(e->d_name), e->d_type, e->d_ino};
  }
  closedir(d);
  qsort(v, n, sizeof *v, dent_cmp);
  for (size_t i = 0; i < n; i++) {
    char *s = xasprintf("%s/%s", src, v[i].name), *r = xasprintf("%s/%s", rel, v[i].name);
    if (v[i].type == DT_LNK) {
      long long ino = (long long)v[i].ino;
      mix_str(w, r);
      mix(w, "l", 1);
      mix(w, &ino, sizeof ino);
      if (w->dst) {
        char *dst = xasprintf("%s/%s", w->dst, r);
        copy_link(w, s, dst);
        free(dst);
      }
    } else {
      walk(w, s, r, depth + 1);
    }
    free(s);
    free(r);
    free(v[i].name);
  }
  free(v);
}

/* src (lstat) at rel in the view. */
static void walk(view_walk *w, const char *src, const char *rel, int depth) {
  struct stat st;
  if (lstat(src, &st) != 0) return;
  char *dst = w->dst ? xasprintf("%s/%s", w->dst, rel) : NULL;
  mix_str(w, rel);
  if (S_ISLNK(st.st_mode)) {
    mix_stat(w, 'l', src, &st);
    if (dst) copy_link(w, src, dst);
  } else if (S_ISREG(st.st_mode)) {
    mix_stat(w, 'f', src, &st);
    if (dst) copy_file(w, src, dst);
  } else if (S_ISDIR(st.st_mode) && depth < VIEW_DEPTH) {
    mix_stat(w, 'd', src, &st);
    if (dst && mkdir(dst, 0755) != 0) fail(w, -errno, dst);
    walk_dir(w, src, rel, depth);
  }
  free(dst);
}

/* One entry of the list, path "/etc/..." under root. A symlink at the top
 * that resolves under /usr (the sandbox has /usr) stays a symlink, to its
 * resolved target; any other one is copied as what it points to (the
 * sandbox has nothing else of the host to point into). */
static void walk_top(view_walk *w, const char *root, const char *path) {
  char *src = xasprintf("%s%s", root, path);
  const char *rel = path + strlen("/etc/");
  struct stat st;
  if (lstat(src, &st) != 0) {
    /* Absent: noted as such, so that the manifest sees it appear. */
    mix_str(w, rel);
    dbuf_addf(&w->manifest, "0 0 0 0 0 0 0 %s\n", src);
    free(src);
    return;
  }
  if (w->dst && strchr(rel, '/')) {
    /* ssl/certs: its folder ssl first. */
    char *dst = xasprintf("%s/%s", w->dst, rel);
    int e = xdg_mkdir_parents(dst, 0755);
    if (e) fail(w, e, dst);
    free(dst);
  }
  if (S_ISLNK(st.st_mode)) {
    mix_stat(w, 'l', src, &st);
    char *real = realpath(src, NULL);
    struct stat rs;
    if (real && stat(real, &rs) == 0) {
      const char *under = real + strlen(root);
      if (!strncmp(real, root, strlen(root)) && !strncmp(under, "/usr/", 5)) {
        mix_str(w, rel);
        mix_str(w, under);
        mix_stat(w, 'f', real, &rs);
        if (w->dst) {
          char *dst = xasprintf("%s/%s", w->dst, rel);
          if (symlink(under, dst) != 0) fail(w, -errno, dst);
          free(dst);
        }
      } else {
        walk(w, real, rel, 0);
      }
    }
    free(real);
  } else {
    walk(w, src, rel, 0);
  }
  free(src);
}

static const struct {
  const char *name, *text;
} generated[] = {{"passwd", SBX_PASSWD}, {"group", SBX_GROUP}, {"hosts", SBX_HOSTS}};

static void walk_all(view_walk *w, const char *root, bool network) {
  mix_str(w, VIEW_FORMAT);
  for (const char *const *p = sbx_bwrap_etc_default; *p; p++) walk_top(w, root, *p);
  if (network) walk_top(w, root, "/etc/resolv.conf");
  for (size_t i = 0; i < ARRAY_LEN(generated); i++) {
    mix_str(w, generated[i].name);
    mix_str(w, generated[i].text);
    if (w->dst) {
      char *dst = xasprintf("%s/%s", w->dst, generated[i].name);
      int e = put_file(dst, generated[i].text, strlen(generated[i].text));
      if (e) fail(w, e, dst);
      free(dst);
    }
  }
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

static void rm_tree(const char *path) {
  nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Removes the views under base other than keep not looked up for
 * SBX_ETC_VIEW_KEEP_S, and what a crucible killed while making a view or
 * its manifest left (tmp-*, manifest*.<pid>) older than an hour. */
static void prune(const char *base, const char *keep) {
  DIR *d = opendir(base);
  if (!d) return;
  time_t now = time(NULL);
  for (struct dirent *e; (e = readdir(d));) {
    bool view = !strncmp(e->d_name, "etc-", 4), tmp = !strncmp(e->d_name, "tmp-", 4);
    bool partial = !strncmp(e->d_name, "manifest", 8) && strchr(e->d_name, '.');
    if ((!view && !tmp && !partial) || !strcmp(e->d_name, keep)) continue;
    char *p = xasprintf("%s/%s", base, e->d_name);
    struct stat st;
    if (lstat(p, &st) == 0 && now - st.st_mtime > (view ? SBX_ETC_VIEW_KEEP_S : 3600)) {
      if (S_ISDIR(st.st_mode)) rm_tree(p);
      else if (partial) unlink(p);
    }
    free(p);
  }
  closedir(d);
}

/* The manifest of the view last found, <base>/manifest[-net]: the view's
 * name, then the stat of every file and folder it was made from. While
 * every one of them is unchanged, so is the view: one lstat each (~20)
 * instead of the walk (a readdir of every folder: hundreds of entries in
 * /etc/alternatives and /etc/ssl/certs, ~0.8 ms). */
static char *manifest_path(const char *base, bool network) {
  return xasprintf("%s/manifest%s", base, network ? "-net" : "");
}

/* The view the manifest names when everything it lists is as it says; NULL
 * otherwise. */
static char *manifest_view(const char *base, bool network) {
  char *mp = manifest_path(base, network);
  FILE *f = fopen(mp, "re");
  free(mp);
  if (!f) return NULL;
  char line[PATH_MAX + 200], name[80];
  bool ok = fgets(line, sizeof line, f) && sscanf(line, VIEW_FORMAT " %79s", name) == 1 &&
            !strncmp(name, "etc-", 4);
  while (ok && fgets(line, sizeof line, f)) {
    char *nl = strchr(line, '\n'), *path = NULL;
    long long want[7];
    int used = 0;
    if (nl) *nl = '\0';
    ok = sscanf(line, "%lld %lld %lld %lld %lld %lld %lld %n", &want[0], &want[1], &want[2], &want[3], &want[4],
                &want[5], &want[6], &used) == 7 && used > 0;
    path = line + used;
    struct stat st;
    if (ok && lstat(path, &st) == 0) {
      long long got[] = {STAT_ARGS(&st)};
      ok = !memcmp(got, want, sizeof got);
    } else if (ok) {
      ok = !want[0]; /* absent, as noted (no file has inode 0) */
    }
  }
  fclose(f);
  return ok ? xasprintf("%s/%s", base, name) : NULL;
}

static void manifest_store(const char *base, bool network, const char *name, const dbuf *m) {
  char *mp = manifest_path(base, network), *tmp = xasprintf("%s.%d", mp, (int)getpid());
  FILE *f = fopen(tmp, "we");
  bool ok = f && fprintf(f, VIEW_FORMAT " %s\n%s", name, m->data ? m->data : "") >= 0;
  if (f && fclose(f) != 0) ok = false;
  if (!ok || rename(tmp, mp) != 0) unlink(tmp);
  free(mp);
  free(tmp);
}

char *sbx_etc_view(const char *base, const char *root, bool network, char **err) {
  *err = NULL;
  struct stat st;
  char *path = manifest_view(base, network);
  if (path && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
    /* In use: its mtime says so, to the hour (prune). */
    if (time(NULL) - st.st_mtime > 3600) utimensat(AT_FDCWD, path, NULL, 0);
    return path;
  }
  free(path);
  view_walk w = {.h = 0xcbf29ce484222325ULL};
  dbuf_init(&w.manifest, 0);
  walk_all(&w, root, network);
  char name[64];
  snprintf(name, sizeof name, "etc-%016llx", (unsigned long long)w.h);
  path = xasprintf("%s/%s", base, name);
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
    manifest_store(base, network, name, &w.manifest);
    dbuf_close(&w.manifest);
    return path;
  }
  dbuf_close(&w.manifest);
  free(path);
  int e = xdg_mkdir_p(base, 0755);
  if (e) {
    *err = xasprintf("cannot make %s for the sandbox's /etc: %s", base, strerror(-e));
    return NULL;
  }
  char *tmp = xasprintf("%s/tmp-XXXXXX", base);
  if (!mkdtemp(tmp) || chmod(tmp, 0755) != 0) {
    *err = xasprintf("cannot make a folder in %s for the sandbox's /etc: %s", base, strerror(errno));
    free(tmp);
    return NULL;
  }
  /* Hashed again as it is copied: if the host changed since, the view is
   * named after what it holds. */
  view_walk c = {.h = 0xcbf29ce484222325ULL, .dst = tmp};
  dbuf_init(&c.manifest, 0);
  walk_all(&c, root, network);
  if (c.err) {
    *err = xasprintf("cannot copy the sandbox's /etc into %s: %s: %s", tmp, c.err_path, strerror(-c.err));
    free(c.err_path);
    dbuf_close(&c.manifest);
    rm_tree(tmp);
    free(tmp);
    return NULL;
  }
  snprintf(name, sizeof name, "etc-%016llx", (unsigned long long)c.h);
  path = xasprintf("%s/%s", base, name);
  if (rename(tmp, path) != 0) {
    int re = errno;
    rm_tree(tmp);
    /* Another crucible made the same view first: use it. */
    if ((re != EEXIST && re != ENOTEMPTY) || stat(path, &st) != 0) {
      *err = xasprintf("cannot put the sandbox's /etc at %s: %s", path, strerror(re));
      dbuf_close(&c.manifest);
      free(tmp);
      free(path);
      return NULL;
    }
  }
  free(tmp);
  manifest_store(base, network, name, &c.manifest);
  dbuf_close(&c.manifest);
  prune(base, name);
  return path;
}
