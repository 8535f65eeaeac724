/* Resolving an EnvSpec to folders: the workspace's virtualenv or
 * node_modules, a named venv, the system; and what the sandbox gets for
 * each (sbx_env). A few stat calls, nothing runs. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bwrap.h" /* SBX_SCRATCH */
#include "common.h"
#include "xdg.h"
#include "internal.h"

#define BASE_PATH "/usr/local/bin:/usr/bin:/bin"
/* Symlinks followed from a venv's interpreter to the real file. */
#define MAX_HOPS 16

/* ---- the resolved environment ---- */

env_resolved *env__resolved_new(env_kind kind, sbx_lang lang) {
  env_resolved *r = xcalloc(1, sizeof *r);
  r->kind = kind;
  r->lang = lang;
  return r;
}

const char *env__keep(env_resolved *self, char *s) {
  if (self->nstrs >= ENV__MAX_STRS) abort(); /* a fixed, small number per environment: a bug */
  self->strs[self->nstrs++] = s;
  return s;
}

int env__add_bind(env_resolved *self, const char *path) {
  int n = 0;
  while (n < SBX_ENV_MAX_BINDS && self->sbx.binds[n]) n++;
  if (n >= SBX_ENV_MAX_BINDS) return -E2BIG;
  self->sbx.binds[n] = env__keep(self, xstrdup(path));
  self->has_sbx = true;
  return 0;
}

int env__add_var(env_resolved *self, const char *name, const char *value) {
  int n = 0;
  while (n < 2 * SBX_ENV_MAX_VARS && self->sbx.vars[n]) {
    if (!strcmp(self->sbx.vars[n], name)) {
      self->sbx.vars[n + 1] = env__keep(self, xstrdup(value));
      return 0;
    }
    n += 2;
  }
  if (n >= 2 * SBX_ENV_MAX_VARS) return -E2BIG;
  self->sbx.vars[n] = env__keep(self, xstrdup(name));
  self->sbx.vars[n + 1] = env__keep(self, xstrdup(value));
  self->has_sbx = true;
  return 0;
}

static const char *var_of(const env_resolved *self, const char *name) {
  for (int n = 0; n < 2 * SBX_ENV_MAX_VARS && self->sbx.vars[n]; n += 2)
    if (!strcmp(self->sbx.vars[n], name)) return self->sbx.vars[n + 1];
  return NULL;
}

void env__set_id(env_resolved *self, const char *id, const char *stamp) {
  free(self->id);
  free(self->stamp);
  self->id = xstrdup(id);
  self->stamp = xstrdup(stamp ? stamp : "");
  self->sbx.id = self->id;
  self->sbx.stamp = self->stamp;
}

env_resolved *env_resolved_system(sbx_lang lang) {
  env_resolved *r = env__resolved_new(ENV_SYSTEM, lang);
  env__set_id(r, "system", "");
  return r;
}

env_resolved *env_resolved_image(sbx_lang lang, const char *image, const char *image_id) {
  env_resolved *r = env__resolved_new(ENV_IMAGE, lang);
  /* An image never changes under its ID: the ID is its stamp, and its
   * module index is learned once per ID. */
  env__set_id(r, image_id, image_id);
  r->image = xstrdup(image);
  r->sbx.image = r->id; /* the container runs exactly the image indexed */
  r->has_sbx = true;
  return r;
}

const sbx_env *env_resolved_sbx(const env_resolved *self) {
  return self && self->has_sbx ? &self->sbx : NULL;
}

const char *env_resolved_id(const env_resolved *self) { return self->id; }
env_kind env_resolved_kind(const env_resolved *self) { return self->kind; }
const char *env_resolved_path(const env_resolved *self) { return self->path; }
const char *const *env_resolved_requirements(const env_resolved *self, size_t *n) {
  *n = self->kind == ENV_PACKAGES ? self->n : 0;
  return *n ? (const char *const *)self->requirements : NULL;
}

cJSON *env_resolved_json(const env_resolved *self) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "id", self->id);
  cJSON_AddStringToObject(o, "kind", env_kind_name(self->kind));
  cJSON_AddStringToObject(o, "language", sbx_lang_name(self->lang));
  if (self->path) cJSON_AddStringToObject(o, "path", self->path);
  if (self->image) {
    cJSON_AddStringToObject(o, "image", self->image);
    cJSON_AddStringToObject(o, "imageId", self->id);
  }
  if (self->kind == ENV_PACKAGES) {
    cJSON *a = cJSON_AddArrayToObject(o, "requirements");
    for (size_t i = 0; i < self->n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(self->requirements[i]));
  }
  return o;
}

void env_resolved_free(env_resolved *self) {
  if (!self) return;
  if (self->cache) env__cache_unuse(self->cache, self->key);
  for (int i = 0; i < self->nstrs; i++) free(self->strs[i]);
  env_strv_free(self->requirements, self->n);
  free(self->id);
  free(self->stamp);
  free(self->path);
  free(self->key);
  free(self->image);
  free(self);
}

static void short_hash(const char *a, const char *b, char out[17]) {
  env__sha256 h;
  char hex[65];
  env__sha256_init(&h);
  env__sha256_add(&h, a, strlen(a));
  env__sha256_add(&h, "\n", 1);
  env__sha256_add(&h, b, strlen(b));
  env__sha256_hex(&h, hex);
  memcpy(out, hex, 16);
  out[16] = '\0';
}

int env_resolved_add_workspace(env_resolved *self, const char *const *roots, char **err) {
  *err = NULL;
  if (!roots || !roots[0]) return 0;
  dbuf path, stamp, all;
  dbuf_init(&path, 0);
  dbuf_init(&stamp, 0);
  dbuf_init(&all, 0);
  int e = 0;
  for (int i = 0; roots[i]; i++) {
    if ((e = env__add_bind(self, roots[i]))) {
      *err = xasprintf("too many folders for the sandbox (at most %d with the environment's)", SBX_ENV_MAX_BINDS);
      goto out;
    }
    dbuf_addf(&path, "%s%s", i ? ":" : "", roots[i]);
    dbuf_addf(&all, "%s\n", roots[i]);
    /* A module added at a folder's top changes its mtime. */
    dbuf_addf(&stamp, "+%lld", env__mtime_ns(roots[i]));
  }
  const char *var = self->lang == SBX_LANG_JAVASCRIPT ? "NODE_PATH" : "PYTHONPATH";
  if (self->lang != SBX_LANG_BASH) {
    const char *old = var_of(self, var);
    char *v = old ? xasprintf("%s:%s", old, path.data) : xstrdup(path.data);
    e = env__add_var(self, var, v);
    free(v);
    if (e) {
      *err = xstrdup("too many variables for the sandbox");
      goto out;
    }
  }
  char h[17], *id, *st;
  short_hash(self->id, all.data, h);
  id = xasprintf("%s+ws-%.8s", self->id, h);
  st = xasprintf("%s%s", self->stamp ? self->stamp : "", stamp.data);
  env__set_id(self, id, st);
  free(id);
  free(st);
out:
  dbuf_close(&path);
  dbuf_close(&stamp);
  dbuf_close(&all);
  return e;
}

/* ---- file facts ---- */

long long env__mtime_ns(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) return 0;
  return (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
}

void env_interp_version(const char *interp, char *buf, size_t cap) {
  buf[0] = '\0';
  char *real = interp ? realpath(interp, NULL) : NULL;
  if (!real) return;
  const char *base = strrchr(real, '/');
  base = base ? base + 1 : real;
  struct stat st;
  if (!strncmp(base, "python", 6) && base[6]) snprintf(buf, cap, "%s", base);
  else if (stat(real, &st) == 0) snprintf(buf, cap, "%lld-%lld", (long long)st.st_size, (long long)st.st_mtim.tv_sec);
  free(real);
}

static bool is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static bool under(const char *path, const char *dir) {
  size_t n = strlen(dir);
  return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == '\0' || (n && dir[n - 1] == '/'));
}

/* Folders the sandbox itself provides: an environment cannot be bound there. */
static bool reserved(const char *real) {
  static const char *const dirs[] = {"/proc", "/dev", "/sys", "/run", SBX_SCRATCH, "/etc"};
  if (!strcmp(real, "/")) return true;
  for (size_t i = 0; i < ARRAY_LEN(dirs); i++)
    if (under(real, dirs[i])) return true;
  return false;
}

/* Follows the venv's interpreter link by link: each hop must lie in the
 * venv or under /usr, the only host folders the sandbox shows. Returns 0,
 * or -EINVAL with *err. */
static int check_interp(const char *venv, const char *interp, char **err) {
  char *p = xstrdup(interp);
  int e = 0;
  for (int hop = 0;; hop++) {
    if (hop > MAX_HOPS) {
      *err = xasprintf("the virtualenv's interpreter %s is a chain of more than %d links", interp, MAX_HOPS);
      e = -EINVAL;
      break;
    }
    char *slash = strrchr(p, '/');
    char *dir = xstrndup(p, slash && slash != p ? (size_t)(slash - p) : 1);
    char *rdir = realpath(dir, NULL);
    free(dir);
    if (!rdir || (!under(rdir, venv) && !under(rdir, "/usr"))) {
      *err = xasprintf("the virtualenv's interpreter %s leads to %s, outside the venv and /usr: the sandbox "
                       "shows only /usr of the host; make the venv with /usr/bin/python3 -m venv",
                       interp, p);
      free(rdir);
      e = -EINVAL;
      break;
    }
    char *hopped = xasprintf("%s/%s", strcmp(rdir, "/") ? rdir : "", slash ? slash + 1 : p);
    free(rdir);
    free(p);
    p = hopped;
    struct stat st;
    if (lstat(p, &st) != 0) {
      *err = xasprintf("the virtualenv's interpreter %s leads to %s, which is missing", interp, p);
      e = -ENOENT;
      break;
    }
    if (!S_ISLNK(st.st_mode)) {
      if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111)) {
        *err = xasprintf("the virtualenv's interpreter %s is not an executable file", interp);
        e = -EINVAL;
      }
      break;
    }
    char target[PATH_MAX];
    ssize_t k = readlink(p, target, sizeof target - 1);
    if (k <= 0) {
      *err = xasprintf("cannot read the link %s", p);
      e = -EINVAL;
      break;
    }
    target[k] = '\0';
    char *next;
    if (target[0] == '/') {
      next = xstrdup(target);
    } else {
      char *s = strrchr(p, '/');
      next = xasprintf("%.*s/%s", (int)(s - p), p, target);
    }
    free(p);
    p = next;
  }
  free(p);
  return e;
}

/* The stamp of a python venv: pyvenv.cfg and every lib/python* /site-packages. */
static char *venv_stamp(const char *venv) {
  dbuf s;
  dbuf_init(&s, 0);
  char *cfg = xasprintf("%s/pyvenv.cfg", venv);
  dbuf_addf(&s, "%lld", env__mtime_ns(cfg));
  free(cfg);
  char *lib = xasprintf("%s/lib", venv);
  DIR *d = opendir(lib);
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, "python", 6)) continue;
    char *sp = xasprintf("%s/%s/site-packages", lib, e->d_name);
    dbuf_addf(&s, "-%lld", env__mtime_ns(sp));
    free(sp);
  }
  if (d) closedir(d);
  free(lib);
  return dbuf_take(&s);
}

static void id_of(sbx_lang lang, const char *path, char out[32]) {
  char h[17];
  short_hash(sbx_lang_name(lang), path, h);
  snprintf(out, 32, "venv-%s", h);
}

/* A python virtualenv at dir (resolved). Returns 0 and fills r, or an error. */
static int python_venv(env_resolved *r, const char *real, char **err) {
  char *cfg = xasprintf("%s/pyvenv.cfg", real);
  bool ok = is_file(cfg);
  free(cfg);
  if (!ok) {
    *err = xasprintf("%s is not a virtualenv (no pyvenv.cfg)", real);
    return -EINVAL;
  }
  char *interp = xasprintf("%s/bin/python3", real);
  if (access(interp, F_OK) != 0) {
    free(interp);
    interp = xasprintf("%s/bin/python", real);
  }
  int e = check_interp(real, interp, err);
  if (e) {
    free(interp);
    return e;
  }
  char id[32], *stamp = venv_stamp(real), *path = xasprintf("%s/bin:" BASE_PATH, real);
  id_of(SBX_LANG_PYTHON, real, id);
  env__set_id(r, id, stamp);
  r->path = xstrdup(real);
  env__add_bind(r, real);
  r->sbx.interp = env__keep(r, interp);
  env__add_var(r, "PATH", path);
  env__add_var(r, "VIRTUAL_ENV", real);
  free(stamp);
  free(path);
  return 0;
}

/* What a program needs of a node_modules folder: it mounted, NODE_PATH,
 * and its .bin first on PATH. */
static void node_binds(env_resolved *r, const char *nm) {
  char *path = xasprintf("%s/.bin:" BASE_PATH, nm);
  env__add_bind(r, nm);
  env__add_var(r, "NODE_PATH", nm);
  env__add_var(r, "PATH", path);
  free(path);
}

/* A node_modules folder (resolved). */
static void node_modules(env_resolved *r, const char *nm) {
  char id[32], *lock = xasprintf("%s/.package-lock.json", nm);
  char *stamp = xasprintf("%lld-%lld", env__mtime_ns(nm), env__mtime_ns(lock));
  id_of(SBX_LANG_JAVASCRIPT, nm, id);
  env__set_id(r, id, stamp);
  r->path = xstrdup(nm);
  node_binds(r, nm);
  free(lock);
  free(stamp);
}

/* The folder to bind for dir in lang, resolved (new string), or NULL. */
static char *find_in(const char *dir, sbx_lang lang) {
  if (lang == SBX_LANG_JAVASCRIPT) {
    const char *base = strrchr(dir, '/');
    char *nm = base && !strcmp(base + 1, "node_modules") ? xstrdup(dir) : xasprintf("%s/node_modules", dir);
    char *real = is_dir(nm) ? realpath(nm, NULL) : NULL;
    free(nm);
    return real;
  }
  char *cfg = xasprintf("%s/pyvenv.cfg", dir);
  char *real = is_file(cfg) ? realpath(dir, NULL) : NULL;
  free(cfg);
  return real;
}

static bool inside_roots(const char *real, const char *const *roots) {
  for (int i = 0; roots && roots[i]; i++)
    if (under(real, roots[i])) return true;
  return false;
}

int env_resolve_local(const env_spec *spec, const env_local_opts *o, env_resolved **out, char **err) {
  *out = NULL;
  *err = NULL;
  if (spec->kind == ENV_SYSTEM || o->lang == SBX_LANG_BASH) {
    *out = env_resolved_system(o->lang);
    return 0;
  }
  if (spec->kind == ENV_PACKAGES || spec->kind == ENV_IMAGE) {
    *err = xasprintf("a %s environment is not a folder", env_kind_name(spec->kind));
    return -ENOTSUP;
  }
  char *real = NULL;
  if (spec->kind == ENV_WORKSPACE) {
    static const char *const py_names[] = {".venv", "venv"};
    for (int i = 0; !real && o->roots && o->roots[i]; i++) {
      if (o->lang == SBX_LANG_JAVASCRIPT) {
        real = find_in(o->roots[i], o->lang);
      } else {
        for (size_t k = 0; !real && k < ARRAY_LEN(py_names); k++) {
          char *d = xasprintf("%s/%s", o->roots[i], py_names[k]);
          real = find_in(d, o->lang);
          free(d);
        }
      }
      /* A workspace is not trusted: its .venv or node_modules may be a link
       * to anywhere (a home folder), and whatever is bound, the program can
       * print to the LLM. */
      if (real && !under(real, o->roots[i])) {
        *err = xasprintf("the workspace's %s leads outside the workspace, to %s; name it in the user config "
                         "file (sandbox.environment {\"kind\":\"venv\",\"path\":...}) to use it",
                         o->lang == SBX_LANG_JAVASCRIPT ? "node_modules" : "virtualenv", real);
        free(real);
        return -EACCES;
      }
    }
    if (!real && o->lang == SBX_LANG_PYTHON && o->virtual_env && o->virtual_env[0] == '/')
      real = find_in(o->virtual_env, o->lang);
    if (!real) {
      *err = o->lang == SBX_LANG_JAVASCRIPT
                 ? xstrdup("the workspace has no node_modules folder: run npm install there, or use another "
                           "environment")
                 : xstrdup("the workspace has no virtualenv (looked for .venv and venv in its folders, then "
                           "$VIRTUAL_ENV): make one with /usr/bin/python3 -m venv .venv, or use another "
                           "environment");
      return -ENOENT;
    }
  } else {
    real = realpath(spec->path, NULL);
    if (!real) {
      *err = xasprintf("environment: %s: %s", spec->path, strerror(errno));
      return -ENOENT;
    }
    if (!o->any_path && !inside_roots(real, o->roots)) {
      *err = xasprintf("environment: %s is outside the workspace folders; only the user config file "
                       "(sandbox.environment) or the command line may name a venv elsewhere", real);
      free(real);
      return -EACCES;
    }
    char *found = find_in(real, o->lang);
    free(real);
    real = found;
    if (!real) {
      *err = o->lang == SBX_LANG_JAVASCRIPT
                 ? xasprintf("environment: %s has no node_modules folder", spec->path)
                 : xasprintf("environment: %s is not a virtualenv (no pyvenv.cfg)", spec->path);
      return -ENOENT;
    }
    if (!o->any_path && !inside_roots(real, o->roots)) {
      *err = xasprintf("environment: %s leads outside the workspace folders, to %s", spec->path, real);
      free(real);
      return -EACCES;
    }
  }
  int e = 0;
  char *why = NULL;
  if (reserved(real)) {
    *err = xasprintf("environment: %s is a folder the sandbox provides itself; move the environment", real);
    e = -EINVAL;
  } else if (!xdg_reachable(real, o->reach_uid, o->reach_gid, &why)) {
    *err = xasprintf("environment: the sandbox's uid %ld cannot reach %s: %s is closed to it; move the "
                     "environment or open that folder (chmod o+x)", o->reach_uid, real, why);
    free(why);
    e = -EACCES;
  }
  if (e) {
    free(real);
    return e;
  }
  env_resolved *r = env__resolved_new(spec->kind, o->lang);
  if (o->lang == SBX_LANG_JAVASCRIPT) node_modules(r, real);
  else e = python_venv(r, real, err);
  free(real);
  if (e) {
    env_resolved_free(r);
    return e;
  }
  *out = r;
  return 0;
}

env_resolved *env__resolved_packages(sbx_lang lang, const char *key, const char *dir, char **reqs, size_t n) {
  env_resolved *r = env__resolved_new(ENV_PACKAGES, lang);
  /* Built once, never changed: the key is its stamp. */
  env__set_id(r, key, key);
  r->key = xstrdup(key);
  r->requirements = reqs;
  r->n = n;
  if (lang == SBX_LANG_JAVASCRIPT) {
    char *nm = xasprintf("%s/node_modules", dir);
    r->path = xstrdup(dir);
    node_binds(r, nm);
    free(nm);
  } else {
    char *path = xasprintf("%s/bin:" BASE_PATH, dir);
    r->path = xstrdup(dir);
    env__add_bind(r, dir);
    r->sbx.interp = env__keep(r, xasprintf("%s/bin/python3", dir));
    env__add_var(r, "PATH", path);
    env__add_var(r, "VIRTUAL_ENV", dir);
    free(path);
  }
  return r;
}
