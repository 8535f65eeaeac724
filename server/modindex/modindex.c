/* The module index of each sandbox interpreter, learned in the sandbox. */
#include "modindex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "log.h"
#include "xdg.h"

#define PROBE_OUTPUT_MAX (8 << 20)

typedef struct probe_ctx {
  modindex *idx;
  chk_language lang;
} probe_ctx;

void modindex_init(modindex *self, sbx_runner *runner, const char *const interpreters[CHK_LANG_COUNT]) {
  memset(self, 0, sizeof *self);
  self->runner = runner;
  for (int i = 0; i < CHK_LANG_COUNT; i++) {
    self->interpreters[i] = interpreters && interpreters[i] ? xstrdup(interpreters[i]) : NULL;
    dbuf_init(&self->probe_out[i], PROBE_OUTPUT_MAX);
  }
}

static void notify(modindex *self, chk_language lang) {
  modindex_waiter *w = self->waiters[lang];
  self->waiters[lang] = NULL;
  while (w) {
    modindex_waiter *next = w->next;
    w->cb(w->ud, self->sets[lang], self->sets[lang] ? NULL : (self->errors[lang] ? self->errors[lang] : "shutting down"));
    free(w);
    w = next;
  }
}

static void envs_close(modindex *self);

void modindex_close(modindex *self) {
  self->closing = true;
  envs_close(self);
  for (int i = 0; i < CHK_LANG_COUNT; i++) {
    if (self->probes[i]) sbx_run_cancel(self->probes[i]); /* on_done still follows */
  }
  for (int i = 0; i < CHK_LANG_COUNT; i++) {
    notify(self, (chk_language)i);
    chk_modset_free(self->sets[i]);
    self->sets[i] = NULL;
    free(self->errors[i]);
    self->errors[i] = NULL;
    free(self->interpreters[i]);
    self->interpreters[i] = NULL;
    dbuf_close(&self->probe_out[i]);
  }
}

const chk_modset *modindex_peek(modindex *self, chk_language lang) {
  if (lang < 0 || lang >= CHK_LANG_COUNT) return NULL;
  if (!self->sets[lang] && self->interpreters[lang] && !self->probes[lang]) {
    self->sets[lang] = chk_modset_cache_load(chk_language_name(lang), self->interpreters[lang], NULL);
  }
  return self->sets[lang];
}

static void probe_output(void *ud, int stream, const char *bytes, size_t len) {
  probe_ctx *p = ud;
  /* A probe cancelled by modindex_close may still drain output: its buffer
   * is closed by then and must not grow again (it would leak). */
  if (stream == 1 && !p->idx->closing) dbuf_add_head(&p->idx->probe_out[p->lang], bytes, len);
}

static void probe_done(void *ud, const sbx_result *res) {
  probe_ctx *p = ud;
  modindex *self = p->idx;
  chk_language lang = p->lang;
  free(p);
  self->probes[lang] = NULL;
  dbuf *out = &self->probe_out[lang];
  if (self->closing) {
    dbuf_close(out);
    return;
  }
  char *err = NULL;
  if (res->outcome == SBX_OK && res->exit_code == 0) {
    self->sets[lang] = chk_modset_from_probe(chk_language_name(lang), out->data ? out->data : "", out->len,
                                             self->interpreters[lang], &err);
    if (self->sets[lang]) {
      int e = chk_modset_cache_store(self->sets[lang]);
      if (e) log_warn("cannot write the module index cache: %s", strerror(-e));
      log_info("learned the %s module index in the sandbox: %zu modules", chk_language_name(lang),
               chk_modset_count(self->sets[lang]));
    }
  } else {
    err = xasprintf("the module probe failed in the sandbox (%s%s%s)", sbx_outcome_name(res->outcome),
                    res->error ? ": " : "", res->error ? res->error : "");
  }
  if (err) {
    log_warn("%s: %s", chk_language_name(lang), err);
    free(self->errors[lang]);
    self->errors[lang] = err;
  }
  dbuf_reset(out);
  notify(self, lang);
}

void modindex_get(modindex *self, chk_language lang, modindex_fn cb, void *ud) {
  if (lang < 0 || lang >= CHK_LANG_COUNT || self->closing) {
    cb(ud, NULL, "no module index for this language");
    return;
  }
  const chk_modset *set = modindex_peek(self, lang);
  if (set) {
    cb(ud, set, NULL);
    return;
  }
  modindex_waiter *w = xcalloc(1, sizeof *w);
  w->cb = cb;
  w->ud = ud;
  w->next = self->waiters[lang];
  self->waiters[lang] = w;
  if (self->probes[lang]) return;
  free(self->errors[lang]);
  self->errors[lang] = NULL;
  const char *script = chk_probe_script(chk_language_name(lang));
  probe_ctx *p = xcalloc(1, sizeof *p);
  p->idx = self;
  p->lang = lang;
  sbx_request req = {.own = true};
  req.language = chk_language_name(lang);
  req.code = script;
  req.code_len = strlen(script);
  sbx_callbacks cbs = {.on_output = probe_output, .on_done = probe_done};
  int err = sbx_run_start(self->runner, &req, &cbs, p, &self->probes[lang]);
  if (err) {
    free(p);
    self->probes[lang] = NULL;
    self->errors[lang] = xasprintf("cannot start the module probe: %s", strerror(-err));
    notify(self, lang);
  }
}

void modindex_unwait(modindex *self, chk_language lang, modindex_fn cb, void *ud) {
  if (lang < 0 || lang >= CHK_LANG_COUNT) return;
  for (modindex_waiter **pp = &self->waiters[lang]; *pp; pp = &(*pp)->next) {
    if ((*pp)->cb == cb && (*pp)->ud == ud) {
      modindex_waiter *w = *pp;
      *pp = w->next;
      free(w);
      return;
    }
  }
}

/* ---- environments ---- */

/* Indexes kept in memory beyond which the least recently used idle one goes. */
#define MAX_ENVS 32

struct modindex_env {
  modindex_env *next;
  modindex *idx;
  chk_language lang;
  char *id;
  char *stamp;            /* the environment's latest stamp */
  sbx_env *env;           /* a copy, for the probe */
  chk_modset *set;
  char *set_stamp;        /* the stamp set was learned at */
  char *probe_stamp;      /* the stamp of the probe running */
  char *error;
  char *error_stamp;      /* the stamp the last probe failed at: not probed again until it changes */
  sbx_run *probe;
  modindex_waiter *waiters;
  dbuf out;
  bool orphan;            /* the index closed while its probe ran: freed when the probe ends */
};

static void env_entry_free(modindex_env *e) {
  chk_modset_free(e->set);
  sbx_env_free(e->env);
  free(e->id);
  free(e->stamp);
  free(e->set_stamp);
  free(e->probe_stamp);
  free(e->error);
  free(e->error_stamp);
  dbuf_close(&e->out);
  free(e);
}

static void env_notify(modindex_env *e) {
  modindex_waiter *w = e->waiters;
  e->waiters = NULL;
  while (w) {
    modindex_waiter *next = w->next;
    w->cb(w->ud, e->set, e->set ? NULL : (e->error ? e->error : "shutting down"));
    free(w);
    w = next;
  }
}

static void envs_close(modindex *self) {
  while (self->envs) {
    modindex_env *e = self->envs;
    self->envs = e->next;
    env_notify(e);
    if (e->probe) {
      e->orphan = true;
      sbx_run_cancel(e->probe); /* env_probe_done frees it */
    } else {
      env_entry_free(e);
    }
  }
  self->nenvs = 0;
}

/* The cache file of an environment's index: env-<lang>-<16 hex of the id>.json. */
static char *env_cache_file(chk_language lang, const char *id) {
  char *dir = chk_cache_dir();
  if (!dir) return NULL;
  unsigned long long h = 1469598103934665603ULL;
  for (const char *s = id; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  char *f = xasprintf("%s/env-%s-%016llx.json", dir, chk_language_name(lang), h);
  free(dir);
  return f;
}

static chk_modset *env_cache_load(modindex_env *e) {
  char *file = env_cache_file(e->lang, e->id);
  FILE *f = file ? fopen(file, "re") : NULL;
  free(file);
  if (!f) return NULL;
  dbuf b;
  dbuf_init(&b, PROBE_OUTPUT_MAX * 2);
  char chunk[8192];
  size_t n;
  bool ok = true;
  while (ok && (n = fread(chunk, 1, sizeof chunk, f)) > 0) ok = dbuf_add(&b, chunk, n) == 0;
  fclose(f);
  cJSON *root = ok && b.data ? cJSON_ParseWithLength(b.data, b.len) : NULL;
  dbuf_close(&b);
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
  const cJSON *stamp = cJSON_GetObjectItemCaseSensitive(root, "stamp");
  const cJSON *probe = cJSON_GetObjectItemCaseSensitive(root, "probe");
  chk_modset *set = NULL;
  if (cJSON_IsString(id) && !strcmp(id->valuestring, e->id) && cJSON_IsString(stamp) &&
      !strcmp(stamp->valuestring, e->stamp) && cJSON_IsString(probe))
    set = chk_modset_from_probe(chk_language_name(e->lang), probe->valuestring, strlen(probe->valuestring),
                                e->env ? e->env->interp : NULL, NULL);
  cJSON_Delete(root);
  return set;
}

static void env_cache_store(modindex_env *e, const char *probe, size_t len, const char *stamp) {
  char *file = env_cache_file(e->lang, e->id);
  if (!file) return;
  if (xdg_mkdir_parents(file, 0700)) log_warn("cannot make the folder of %s", file);
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "language", chk_language_name(e->lang));
  cJSON_AddStringToObject(root, "id", e->id);
  cJSON_AddStringToObject(root, "stamp", stamp);
  char *p = xstrndup(probe, len);
  cJSON_AddStringToObject(root, "probe", p);
  free(p);
  char *text = cJSON_PrintUnformatted(root), *tmp = xasprintf("%s.%d.tmp", file, (int)getpid());
  FILE *f = fopen(tmp, "we");
  bool ok = f && fwrite(text, 1, strlen(text), f) == strlen(text);
  if (f && fclose(f) != 0) ok = false;
  /* write-then-rename: a reader never sees half an entry */
  if (!ok || rename(tmp, file) != 0) {
    log_warn("cannot write the module index cache %s", file);
    unlink(tmp);
  }
  free(text);
  free(tmp);
  free(file);
  cJSON_Delete(root);
}

/* The entry for (lang, env->id), made (and moved to the front) as needed;
 * a new stamp drops a set learned at another. */
static modindex_env *env_entry(modindex *self, chk_language lang, const sbx_env *env) {
  modindex_env *e = NULL, **pe;
  for (pe = &self->envs; *pe; pe = &(*pe)->next)
    if ((*pe)->lang == lang && !strcmp((*pe)->id, env->id)) {
      e = *pe;
      *pe = e->next;
      break;
    }
  if (!e) {
    e = xcalloc(1, sizeof *e);
    e->idx = self;
    e->lang = lang;
    e->id = xstrdup(env->id);
    dbuf_init(&e->out, PROBE_OUTPUT_MAX);
    self->nenvs++;
  }
  e->next = self->envs;
  self->envs = e;
  const char *stamp = env->stamp ? env->stamp : "";
  if (!e->stamp || strcmp(e->stamp, stamp)) {
    free(e->stamp);
    e->stamp = xstrdup(stamp);
    sbx_env_free(e->env);
    e->env = sbx_env_dup(env);
  }
  if (e->set && strcmp(e->set_stamp, e->stamp)) {
    chk_modset_free(e->set);
    e->set = NULL;
  }
  /* Over the cap: the least recently used idle entry goes. */
  if (self->nenvs > MAX_ENVS) {
    modindex_env **victim = NULL;
    for (pe = &self->envs; *pe; pe = &(*pe)->next)
      if (*pe != e && !(*pe)->probe && !(*pe)->waiters) victim = pe;
    if (victim) {
      modindex_env *v = *victim;
      *victim = v->next;
      env_entry_free(v);
      self->nenvs--;
    }
  }
  return e;
}

const chk_modset *modindex_peek_env(modindex *self, chk_language lang, const sbx_env *env) {
  if (!env || !env->id) return modindex_peek(self, lang);
  if (lang < 0 || lang >= CHK_LANG_COUNT || self->closing) return NULL;
  modindex_env *e = env_entry(self, lang, env);
  if (!e->set && !e->probe) {
    e->set = env_cache_load(e);
    if (e->set) {
      free(e->set_stamp);
      e->set_stamp = xstrdup(e->stamp);
    }
  }
  return e->set;
}

static void env_probe_output(void *ud, int stream, const char *bytes, size_t len) {
  modindex_env *e = ud;
  if (stream == 1) dbuf_add_head(&e->out, bytes, len);
}

static void env_probe_done(void *ud, const sbx_result *res) {
  modindex_env *e = ud;
  e->probe = NULL;
  if (e->orphan) {
    env_entry_free(e);
    return;
  }
  char *err = NULL;
  chk_modset *set = NULL;
  if (res->outcome == SBX_OK && res->exit_code == 0) {
    set = chk_modset_from_probe(chk_language_name(e->lang), e->out.data ? e->out.data : "", e->out.len,
                                e->env ? e->env->interp : NULL, &err);
    if (set) {
      env_cache_store(e, e->out.data, e->out.len, e->probe_stamp);
      log_info("learned the %s module index of environment %s in the sandbox: %zu modules",
               chk_language_name(e->lang), e->id, chk_modset_count(set));
    }
  } else {
    err = xasprintf("the module probe failed in the sandbox (%s%s%s)", sbx_outcome_name(res->outcome),
                    res->error ? ": " : "", res->error ? res->error : "");
  }
  if (set) {
    chk_modset_free(e->set);
    e->set = set;
    free(e->set_stamp);
    e->set_stamp = e->probe_stamp;
    e->probe_stamp = NULL;
  }
  free(e->error);
  e->error = err;
  free(e->error_stamp);
  e->error_stamp = err ? xstrdup(e->probe_stamp ? e->probe_stamp : "") : NULL;
  if (err) log_warn("%s, environment %s: %s", chk_language_name(e->lang), e->id, err);
  dbuf_reset(&e->out);
  env_notify(e);
}

void modindex_get_env(modindex *self, chk_language lang, const sbx_env *env, modindex_fn cb,
                            void *ud) {
  if (!env || !env->id) {
    modindex_get(self, lang, cb, ud);
    return;
  }
  if (lang < 0 || lang >= CHK_LANG_COUNT || self->closing) {
    cb(ud, NULL, "no module index for this language");
    return;
  }
  const chk_modset *set = modindex_peek_env(self, lang, env);
  if (set) {
    cb(ud, set, NULL);
    return;
  }
  modindex_env *e = self->envs; /* peek put it first */
  if (!e->probe && e->error && e->error_stamp && !strcmp(e->error_stamp, e->stamp)) {
    cb(ud, NULL, e->error);
    return;
  }
  for (modindex_waiter *w = e->waiters; w; w = w->next)
    if (w->cb == cb && w->ud == ud) return;
  modindex_waiter *w = xcalloc(1, sizeof *w);
  w->cb = cb;
  w->ud = ud;
  w->next = e->waiters;
  e->waiters = w;
  if (e->probe) return;
  free(e->error);
  e->error = NULL;
  free(e->probe_stamp);
  e->probe_stamp = xstrdup(e->stamp);
  const char *script = chk_probe_script(chk_language_name(lang));
  sbx_request req = {.own = true};
  req.language = chk_language_name(lang);
  req.code = script;
  req.code_len = strlen(script);
  req.env = e->env;
  sbx_callbacks cbs = {.on_output = env_probe_output, .on_done = env_probe_done};
  int err = sbx_run_start(self->runner, &req, &cbs, e, &e->probe);
  if (err) {
    e->probe = NULL;
    e->error = xasprintf("cannot start the module probe: %s", strerror(-err));
    env_notify(e);
  }
}

void modindex_unwait_env(modindex *self, chk_language lang, const sbx_env *env, modindex_fn cb,
                               void *ud) {
  if (!env || !env->id) {
    modindex_unwait(self, lang, cb, ud);
    return;
  }
  for (modindex_env *e = self->envs; e; e = e->next) {
    if (e->lang != lang || strcmp(e->id, env->id)) continue;
    for (modindex_waiter **pp = &e->waiters; *pp; pp = &(*pp)->next)
      if ((*pp)->cb == cb && (*pp)->ud == ud) {
        modindex_waiter *w = *pp;
        *pp = w->next;
        free(w);
        return;
      }
  }
}
