/* The content-addressed cache of built environments: one folder per key
 * beside its metadata, one build per key at a time, least recently used
 * environments deleted past the size cap. */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "internal.h"
#include "log.h"
#include "xdg.h"

/* A folder without its metadata older than this is a crashed build's. */
#define ORPHAN_AGE_S 60
#define MAX_META (1u << 20)

/* ---- paths and files ---- */

static char *default_dir(void) {
  char buf[4096];
  return xdg_app_path(XDG_CACHE, "envs", buf, sizeof buf) == 0 ? xstrdup(buf) : NULL;
}

static bool is_key(const char *s, size_t n) {
  if (n != 64) return false;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
  return true;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  if (remove(path) != 0 && errno != ENOENT) return -errno;
  return 0;
}

int env__rm_rf(const char *path) {
  int r = nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  if (r < 0 && errno == ENOENT) return 0;
  return r < 0 ? -errno : r;
}

typedef struct trash_work {
  uv_work_t req;
  char *path;
} trash_work;

static void trash_run(uv_work_t *req) {
  trash_work *t = container_of(req, trash_work, req);
  int e = env__rm_rf(t->path);
  if (e) log_warn("environments: cannot delete %s: %s", t->path, strerror(-e));
}

static void trash_after(uv_work_t *req, int status) {
  (void)status;
  trash_work *t = container_of(req, trash_work, req);
  free(t->path);
  free(t);
}

void env__cache_trash(env_cache *self, const char *path) {
  /* Renamed first: the environment is gone at once for every reader; the
   * files go later, off the loop. */
  char *to = xasprintf("%s.trash-%d-%u", path, (int)getpid(), ++self->seq);
  if (rename(path, to) != 0) {
    if (errno != ENOENT) log_warn("environments: cannot move %s away: %s", path, strerror(errno));
    free(to);
    return;
  }
  trash_work *t = xcalloc(1, sizeof *t);
  t->path = to;
  if (!self->loop || uv_queue_work(self->loop, &t->req, trash_run, trash_after) != 0) {
    trash_run(&t->req);
    trash_after(&t->req, 0);
  }
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "re");
  if (!f) return NULL;
  dbuf b;
  dbuf_init(&b, MAX_META);
  char chunk[4096];
  size_t n;
  bool ok = true;
  while (ok && (n = fread(chunk, 1, sizeof chunk, f)) > 0) ok = dbuf_add(&b, chunk, n) == 0;
  fclose(f);
  if (!ok) {
    dbuf_close(&b);
    return NULL;
  }
  return dbuf_take(&b);
}

static int write_file(const char *path, const char *text) {
  char *tmp = xasprintf("%s.%d.tmp", path, (int)getpid());
  FILE *f = fopen(tmp, "we");
  int err = 0;
  if (!f) {
    err = -errno;
    free(tmp);
    return err;
  }
  size_t len = strlen(text);
  if (fwrite(text, 1, len, f) != len || fflush(f) != 0) err = -EIO;
  if (fclose(f) != 0 && !err) err = -EIO;
  /* write-then-rename: a reader never sees half a file */
  if (!err && rename(tmp, path) != 0) err = -errno;
  if (err) unlink(tmp);
  free(tmp);
  return err;
}

char *env_url_redact(const char *url) {
  const char *s = strstr(url, "://");
  if (!s) return xstrdup(url);
  s += 3;
  const char *slash = strchr(s, '/'), *at = strchr(s, '@');
  if (!at || (slash && at > slash)) return xstrdup(url);
  return xasprintf("%.*s%s", (int)(s - url), url, at + 1);
}

/* ---- metadata ---- */

typedef struct meta {
  char key[65];
  cJSON *json;
  long long last_used;
  long long size;
} meta;

static char *meta_path(const env_cache *self, const char *key) {
  return xasprintf("%s/%s.json", self->dir, key);
}

static char *env_path(const env_cache *self, const char *key) {
  return xasprintf("%s/%s", self->dir, key);
}

static bool ready(const env_cache *self, const char *key) {
  char *m = meta_path(self, key), *d = env_path(self, key);
  struct stat a, b;
  bool ok = stat(m, &a) == 0 && S_ISREG(a.st_mode) && stat(d, &b) == 0 && S_ISDIR(b.st_mode);
  free(m);
  free(d);
  return ok;
}

/* Every environment's metadata, most recently used first. Returns the count. */
static int metas_read(const env_cache *self, meta **out) {
  *out = NULL;
  DIR *d = opendir(self->dir);
  if (!d) return 0;
  int n = 0, cap = 0;
  meta *v = NULL;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t nl = strlen(e->d_name);
    if (nl != 69 || strcmp(e->d_name + 64, ".json") || !is_key(e->d_name, 64)) continue;
    char key[65];
    memcpy(key, e->d_name, 64);
    key[64] = '\0';
    if (!ready(self, key)) continue;
    char *path = meta_path(self, key), *text = read_file(path);
    struct stat st;
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    if (j && stat(path, &st) == 0) {
      if (n == cap) v = xrealloc(v, sizeof *v * (size_t)(cap = cap ? cap * 2 : 16));
      memcpy(v[n].key, key, 65);
      v[n].json = j;
      v[n].last_used = (long long)st.st_mtim.tv_sec;
      const cJSON *sz = cJSON_GetObjectItemCaseSensitive(j, "sizeBytes");
      v[n].size = cJSON_IsNumber(sz) ? (long long)sz->valuedouble : 0;
      n++;
    } else {
      cJSON_Delete(j);
    }
    free(text);
    free(path);
  }
  closedir(d);
  /* most recently used first (insertion sort: a cache holds few) */
  for (int i = 1; i < n; i++)
    for (int k = i; k > 0 && v[k].last_used > v[k - 1].last_used; k--) {
      meta t = v[k];
      v[k] = v[k - 1];
      v[k - 1] = t;
    }
  *out = v;
  return n;
}

static void metas_free(meta *v, int n) {
  for (int i = 0; i < n; i++) cJSON_Delete(v[i].json);
  free(v);
}

/* ---- uses ---- */

static env__use *use_find(env_cache *self, const char *key) {
  for (env__use *u = self->uses; u; u = u->next)
    if (!strcmp(u->key, key)) return u;
  return NULL;
}

void env__cache_use(env_cache *self, const char *key) {
  env__use *u = use_find(self, key);
  if (!u) {
    u = xcalloc(1, sizeof *u);
    snprintf(u->key, sizeof u->key, "%s", key);
    u->next = self->uses;
    self->uses = u;
  }
  u->refs++;
  self->outstanding++;
}

static void maybe_free(env_cache *self);

void env__cache_unuse(env_cache *self, const char *key) {
  for (env__use **pu = &self->uses; *pu; pu = &(*pu)->next) {
    if (strcmp((*pu)->key, key)) continue;
    if (--(*pu)->refs == 0) {
      env__use *u = *pu;
      *pu = u->next;
      free(u);
    }
    break;
  }
  self->outstanding--;
  maybe_free(self);
}

/* A resolved environment for a built key, holding a use of it; touch: the
 * environment is used now (a lookup that only lists it is not a use). */
static env_resolved *hand_out(env_cache *self, sbx_lang lang, const char *key, char **reqs, size_t n, bool touch) {
  char *dir = env_path(self, key);
  env_resolved *r = env__resolved_packages(lang, key, dir, reqs, n);
  free(dir);
  r->cache = self;
  env__cache_use(self, key);
  /* The metadata's mtime is the environment's last use. */
  if (touch) {
    char *m = meta_path(self, key);
    utimensat(AT_FDCWD, m, NULL, 0);
    free(m);
  }
  return r;
}

static env_resolved *from_meta(env_cache *self, const meta *m) {
  const cJSON *lang = cJSON_GetObjectItemCaseSensitive(m->json, "language");
  const cJSON *reqs = cJSON_GetObjectItemCaseSensitive(m->json, "requirements");
  sbx_lang l = SBX_LANG_PYTHON;
  if (cJSON_IsString(lang)) sbx_lang_parse(lang->valuestring, &l);
  int n = cJSON_GetArraySize(reqs);
  char **v = xcalloc(n > 0 ? (size_t)n : 1, sizeof *v);
  size_t k = 0;
  const cJSON *it;
  cJSON_ArrayForEach(it, reqs) if (cJSON_IsString(it)) v[k++] = xstrdup(it->valuestring);
  return hand_out(self, l, m->key, v, k, false);
}

/* ---- eviction ---- */

static void remove_key(env_cache *self, const char *key) {
  char *m = meta_path(self, key), *d = env_path(self, key);
  /* The metadata first: without it the folder is no longer ready. */
  unlink(m);
  env__cache_trash(self, d);
  free(m);
  free(d);
}

/* Deletes least recently used environments until the total fits the cap
 * (every one with all), never keep nor one in use. Returns how many. */
static int evict(env_cache *self, const char *keep, bool all) {
  if (!all && self->cache_mb <= 0) return 0;
  meta *v;
  int n = metas_read(self, &v), removed = 0;
  long long total = 0, cap = (long long)self->cache_mb << 20;
  for (int i = 0; i < n; i++) total += v[i].size;
  for (int i = n - 1; i >= 0 && (all || total > cap); i--) {
    if ((keep && !strcmp(v[i].key, keep)) || use_find(self, v[i].key)) continue;
    log_info("environments: deleting %s (%lld bytes, %s)", v[i].key, v[i].size,
             all ? "pruned" : "least recently used past sandbox.envCacheMb");
    remove_key(self, v[i].key);
    total -= v[i].size;
    removed++;
  }
  metas_free(v, n);
  return removed;
}

/* Leftovers: builds and deletions of processes that are gone, and folders
 * whose metadata never came. */
static void sweep(env_cache *self) {
  DIR *d = opendir(self->dir);
  if (!d) return;
  struct dirent *e;
  time_t now = time(NULL);
  while ((e = readdir(d)) != NULL) {
    const char *nm = e->d_name;
    size_t nl = strlen(nm);
    if (nl < 64 || !is_key(nm, 64)) continue;
    char *path = xasprintf("%s/%s", self->dir, nm);
    const char *rest = nm + 64;
    int pid = 0;
    if (sscanf(rest, ".build-%d-", &pid) == 1 || sscanf(rest, ".trash-%d-", &pid) == 1) {
      if (pid > 0 && pid != (int)getpid() && kill(pid, 0) != 0 && errno == ESRCH) {
        log_info("environments: removing %s, left by process %d", path, pid);
        env__rm_rf(path);
      }
    } else if (!*rest) {
      char key[65];
      memcpy(key, nm, 64);
      key[64] = '\0';
      struct stat st;
      if (!ready(self, key) && stat(path, &st) == 0 && now - st.st_mtim.tv_sec > ORPHAN_AGE_S) {
        log_info("environments: removing %s, a build that never finished", path);
        env__cache_trash(self, path);
      }
    }
    free(path);
  }
  closedir(d);
}

/* ---- the cache ---- */

int env_cache_new(uv_loop_t *loop, const env_cache_config *cfg, env_cache **out, char **err) {
  *out = NULL;
  *err = NULL;
  char *dir = cfg->dir ? xstrdup(cfg->dir) : default_dir();
  if (!dir) {
    *err = xstrdup("no cache folder for environments: set XDG_CACHE_HOME or HOME");
    return -ENOENT;
  }
  /* Folders made here are 0755: a root server's sandbox uid must reach the
   * environments (bwrap opens bind sources as that uid). */
  int e = xdg_mkdir_p(dir, 0755);
  if (e) {
    *err = xasprintf("cannot make the environments folder %s: %s", dir, strerror(-e));
    free(dir);
    return e;
  }
  env_cache *self = xcalloc(1, sizeof *self);
  self->loop = loop;
  self->dir = dir;
  self->index = xstrdup(cfg->package_index && *cfg->package_index ? cfg->package_index : "https://pypi.org/simple");
  self->registry = xstrdup(cfg->npm_registry && *cfg->npm_registry ? cfg->npm_registry
                                                                    : "https://registry.npmjs.org/");
  self->cache_mb = cfg->cache_mb;
  self->sbx_cfg = cfg->sandbox;
  static const char *const defaults[SBX_LANG_COUNT] = {"/usr/bin/python3", "/usr/bin/node", "/usr/bin/bash"};
  for (int l = 0; l < SBX_LANG_COUNT; l++) {
    const char *p = cfg->sandbox.interpreters[l];
    self->interp[l] = xstrdup(p && *p ? p : defaults[l]);
    self->sbx_cfg.interpreters[l] = self->interp[l];
  }
  self->sbx_cfg.bwrap = cfg->sandbox.bwrap ? xstrdup(cfg->sandbox.bwrap) : NULL;
  sweep(self);
  *out = self;
  return 0;
}

const char *env_cache_dir(const env_cache *self) {
  return self->dir;
}

static void free_build(env_cache *self, env__build *b) {
  for (env__build **pb = &self->builds; *pb; pb = &(*pb)->next)
    if (*pb == b) {
      *pb = b->next;
      break;
    }
  while (b->waiters) {
    env_waiter *w = b->waiters;
    b->waiters = w->next;
    free(w);
  }
  env_strv_free(b->reqs, b->n);
  free(b->final_dir);
  free(b->tmp_dir);
  dbuf_close(&b->tail);
  free(b);
}

static void maybe_free(env_cache *self) {
  if (!self->closing || self->outstanding > 0 || self->builds) return;
  if (self->runner_open && !self->runner_closed) return;
  for (int l = 0; l < SBX_LANG_COUNT; l++) free(self->interp[l]);
  free((char *)self->sbx_cfg.bwrap);
  free(self->dir);
  free(self->index);
  free(self->registry);
  void (*cb)(void *) = self->close_cb;
  void *ud = self->close_ud;
  free(self);
  if (cb) cb(ud);
}

static void write_meta(env_cache *self, env__build *b) {
  cJSON *j = cJSON_CreateObject();
  cJSON_AddStringToObject(j, "id", b->key);
  cJSON_AddStringToObject(j, "kind", "packages");
  cJSON_AddStringToObject(j, "language", sbx_lang_name(b->lang));
  cJSON *a = cJSON_AddArrayToObject(j, "requirements");
  for (size_t i = 0; i < b->n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(b->reqs[i]));
  const char *interp = self->interp[b->lang];
  char ver[128];
  env_interp_version(interp, ver, sizeof ver);
  cJSON_AddStringToObject(j, "interpreter", interp);
  cJSON_AddStringToObject(j, "interpreterVersion", ver);
  char *idx = env_url_redact(b->lang == SBX_LANG_PYTHON ? self->index : self->registry);
  cJSON_AddStringToObject(j, "index", idx);
  free(idx);
  cJSON_AddNumberToObject(j, "createdAt", (double)time(NULL));
  cJSON_AddNumberToObject(j, "sizeBytes", (double)(b->size_kb * 1024));
  char *text = cJSON_Print(j), *path = meta_path(self, b->key);
  int e = write_file(path, text);
  if (e) log_warn("environments: cannot write %s: %s", path, strerror(-e));
  free(text);
  free(path);
  cJSON_Delete(j);
}

void env__cache_built(env_cache *self, env__build *b, bool ok, const char *error) {
  char *err = error ? xstrdup(error) : NULL;
  if (ok && !self->closing) {
    if (rename(b->tmp_dir, b->final_dir) != 0) {
      if (errno == EEXIST || errno == ENOTEMPTY) {
        /* Another process built the same key meanwhile: use its copy. */
        env__cache_trash(self, b->tmp_dir);
      } else {
        err = xasprintf("cannot move the new environment into place (%s): %s", b->final_dir, strerror(errno));
        ok = false;
      }
    }
    if (ok) {
      char *m = meta_path(self, b->key);
      if (access(m, F_OK) != 0) write_meta(self, b);
      free(m);
      log_info("environments: built %s (%s, %zu requirement(s), %lld KiB)", b->key, sbx_lang_name(b->lang), b->n,
               b->size_kb);
    }
  } else {
    ok = false;
  }
  if (!ok) env__cache_trash(self, b->tmp_dir);
  if (!ok && !err) err = xstrdup("the server is shutting down");
  /* Each waiter gets its own environment; a waiter may cancel others. */
  while (b->waiters) {
    env_waiter *w = b->waiters;
    b->waiters = w->next;
    env_resolved *r = NULL;
    if (ok) {
      char **reqs = xcalloc(b->n ? b->n : 1, sizeof *reqs);
      for (size_t i = 0; i < b->n; i++) reqs[i] = xstrdup(b->reqs[i]);
      r = hand_out(self, b->lang, b->key, reqs, b->n, true);
    }
    w->cbs.done(w->ud, r, ok ? NULL : err);
    free(w);
  }
  char keep[65];
  memcpy(keep, b->key, sizeof keep);
  free_build(self, b);
  free(err);
  if (ok && !self->closing) evict(self, keep, false);
  maybe_free(self);
}

/* The key of requirements in lang; their normal forms in *norm. Returns the count or -EINVAL. */
static int key_of(env_cache *self, sbx_lang lang, const char *const *reqs, size_t n, char ***norm, char key[65],
                  char **err) {
  int k = env_requirements_normalize(lang, reqs, n, norm, err);
  if (k < 0) return k;
  const char *interp = self->interp[lang];
  char ver[128];
  env_interp_version(interp, ver, sizeof ver);
  env_key(lang, interp, ver, lang == SBX_LANG_PYTHON ? self->index : self->registry, (const char *const *)*norm,
          (size_t)k, key);
  return k;
}

env_resolved *env_cache_find(env_cache *self, sbx_lang lang, const char *const *reqs, size_t n) {
  char **norm = NULL, key[65], *err = NULL;
  int k = self->closing ? -ESHUTDOWN : key_of(self, lang, reqs, n, &norm, key, &err);
  free(err);
  if (k < 0) return NULL;
  if (ready(self, key)) return hand_out(self, lang, key, norm, (size_t)k, true);
  env_strv_free(norm, (size_t)k);
  return NULL;
}

int env_cache_acquire(env_cache *self, sbx_lang lang, const char *const *reqs, size_t n, const env_build_cbs *cbs,
                      void *ud, env_resolved **out, env_waiter **wait, char **err) {
  *out = NULL;
  if (wait) *wait = NULL;
  *err = NULL;
  if (self->closing) {
    *err = xstrdup("the server is shutting down");
    return -ESHUTDOWN;
  }
  char **norm = NULL, key[65];
  int k = key_of(self, lang, reqs, n, &norm, key, err);
  if (k < 0) return k;
  if (ready(self, key)) {
    *out = hand_out(self, lang, key, norm, (size_t)k, true);
    return 1;
  }
  if (!self->loop) {
    env_strv_free(norm, (size_t)k);
    *err = xstrdup("this environment is not built yet");
    return -ENOTSUP;
  }
  env__build *b = NULL;
  for (env__build *x = self->builds; x; x = x->next)
    if (!strcmp(x->key, key)) b = x;
  bool fresh = !b;
  if (fresh) {
    b = xcalloc(1, sizeof *b);
    b->cache = self;
    memcpy(b->key, key, sizeof b->key);
    b->lang = lang;
    b->reqs = norm;
    b->n = (size_t)k;
    b->final_dir = env_path(self, key);
    b->tmp_dir = xasprintf("%s.build-%d-%u", b->final_dir, (int)getpid(), ++self->seq);
    b->next = self->builds;
    self->builds = b;
  } else {
    env_strv_free(norm, (size_t)k);
  }
  env_waiter *w = xcalloc(1, sizeof *w);
  w->build = b;
  w->cbs = *cbs;
  w->ud = ud;
  w->next = b->waiters;
  b->waiters = w;
  if (!fresh) {
    if (wait) *wait = w;
    return 0;
  }
  int e = env__installer_runner(self, err);
  if (!e && mkdir(b->tmp_dir, 0755) != 0) {
    e = -errno;
    *err = xasprintf("cannot make %s: %s", b->tmp_dir, strerror(errno));
  }
  bool made = !e;
  if (!e && geteuid() == 0) {
    /* A root server's installer runs as the sandbox's uid: it must own the
     * folder it fills, and reach it (bwrap opens it as that uid). */
    long uid, gid;
    char *why = NULL;
    sbx_runner_host_ids(&self->runner, &uid, &gid);
    if (chown(b->tmp_dir, (uid_t)uid, (gid_t)gid) != 0) {
      e = -errno;
      *err = xasprintf("cannot hand %s to the sandbox's uid %ld: %s", b->tmp_dir, uid, strerror(errno));
    } else if (!xdg_reachable(self->dir, uid, gid, &why)) {
      e = -EACCES;
      *err = xasprintf("the sandbox's uid %ld cannot reach the environments folder %s: %s is closed to it; set "
                       "XDG_CACHE_HOME to a folder it can reach (or chmod o+x that folder)", uid, self->dir, why);
      free(why);
    }
  }
  if (!e) e = env__build_start(self, b, err);
  if (e) {
    if (made) rmdir(b->tmp_dir);
    free_build(self, b);
    return e;
  }
  if (wait) *wait = w;
  return 0;
}

void env_waiter_cancel(env_waiter *w) {
  if (!w) return;
  env__build *b = w->build;
  for (env_waiter **pw = &b->waiters; *pw; pw = &(*pw)->next)
    if (*pw == w) {
      *pw = w->next;
      free(w);
      break;
    }
  if (!b->waiters) env__build_cancel(b);
}

static void runner_closed(sbx_runner *r) {
  env_cache *self = container_of(r, env_cache, runner);
  self->runner_closed = true;
  maybe_free(self);
}

void env_cache_close(env_cache *self, void (*cb)(void *ud), void *ud) {
  if (!self || self->closing) return;
  self->closing = true;
  self->close_cb = cb;
  self->close_ud = ud;
  for (env__build *b = self->builds; b; b = b->next) {
    while (b->waiters) {
      env_waiter *w = b->waiters;
      b->waiters = w->next;
      w->cbs.done(w->ud, NULL, "the server is shutting down");
      free(w);
    }
    env__build_cancel(b);
  }
  if (self->runner_open) sbx_runner_close(&self->runner, runner_closed);
  maybe_free(self);
}

cJSON *env_cache_list(env_cache *self) {
  meta *v;
  int n = metas_read(self, &v);
  cJSON *arr = cJSON_CreateArray();
  for (int i = 0; i < n; i++) {
    cJSON *o = cJSON_CreateObject();
    static const char *const keys[] = {"id", "kind", "language", "requirements"};
    for (size_t k = 0; k < ARRAY_LEN(keys); k++) {
      const cJSON *x = cJSON_GetObjectItemCaseSensitive(v[i].json, keys[k]);
      if (x) cJSON_AddItemToObject(o, keys[k], cJSON_Duplicate(x, 1));
    }
    cJSON_AddNumberToObject(o, "sizeBytes", (double)v[i].size);
    cJSON_AddNumberToObject(o, "lastUsed", (double)v[i].last_used);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(v[i].json, "createdAt");
    if (c) cJSON_AddItemToObject(o, "createdAt", cJSON_Duplicate(c, 1));
    char *p = env_path(self, v[i].key);
    cJSON_AddStringToObject(o, "path", p);
    free(p);
    cJSON_AddItemToArray(arr, o);
  }
  metas_free(v, n);
  return arr;
}

/* The one metadata entry whose key starts with prefix: its index, or -1
 * with *err. */
static int find_prefix(const meta *v, int n, const char *prefix, char **err) {
  int found = -1;
  size_t pl = strlen(prefix);
  for (int i = 0; i < n; i++) {
    if (pl == 0 || strncmp(v[i].key, prefix, pl)) continue;
    if (found >= 0) {
      *err = xasprintf("'%s' names more than one environment: give more of its id", prefix);
      return -2;
    }
    found = i;
  }
  if (found < 0) *err = xasprintf("no environment '%s' (crucible env list shows them)", prefix);
  return found;
}

int env_cache_lookup(env_cache *self, const char *prefix, env_resolved **out, char **err) {
  *out = NULL;
  *err = NULL;
  meta *v;
  int n = metas_read(self, &v);
  int i = find_prefix(v, n, prefix, err);
  if (i >= 0) *out = from_meta(self, &v[i]);
  metas_free(v, n);
  return i >= 0 ? 0 : i == -2 ? -EINVAL : -ENOENT;
}

int env_cache_remove(env_cache *self, const char *prefix, char **id, char **err) {
  *id = NULL;
  *err = NULL;
  meta *v;
  int n = metas_read(self, &v);
  int i = find_prefix(v, n, prefix, err), e = i >= 0 ? 0 : i == -2 ? -EINVAL : -ENOENT;
  if (i >= 0 && use_find(self, v[i].key)) {
    *err = xasprintf("environment %s is in use", v[i].key);
    e = -EBUSY;
  } else if (i >= 0) {
    remove_key(self, v[i].key);
    *id = xstrdup(v[i].key);
  }
  metas_free(v, n);
  return e;
}

int env_cache_prune(env_cache *self, bool all) {
  sweep(self);
  return evict(self, NULL, all);
}

long long env_cache_size(env_cache *self) {
  meta *v;
  int n = metas_read(self, &v);
  long long total = 0;
  for (int i = 0; i < n; i++) total += v[i].size;
  metas_free(v, n);
  return total;
}
