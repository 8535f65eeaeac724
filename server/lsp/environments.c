/* The environment a request's program runs in, and crucible/environments. */
#include "environments.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobs.h"
#include "log.h"
#include "methods.h"

struct lsp_env_job {
  rpc_call *call;
  lsp_client *client;
  lsp_env_fn cb;
  void *ud;
  env_waiter *wait;
  sbx_image_wait *image_wait;
  sbx_lang lang;
  char *image;           /* the image being looked up or pulled */
};

/* The request's spec, else the client's setting; *trusted when it is the
 * user's own (the user file's setting): then a venv may lie anywhere. */
static int spec_of(lsp_client *c, const cJSON *spec_json, env_spec *spec, bool *trusted, char **err) {
  if (spec_json) {
    *trusted = false;
    return env_spec_parse(spec, spec_json, err);
  }
  *trusted = !strcmp(c->cfg.sandbox.environment, c->srv->base.sandbox.environment);
  cJSON *j = cJSON_Parse(c->cfg.sandbox.environment);
  int e = env_spec_parse(spec, j, err);
  cJSON_Delete(j);
  if (e) {
    char *m = xasprintf("sandbox.environment: %s", *err);
    free(*err);
    *err = m;
  }
  return e;
}

static void local_opts(lsp_client *c, sbx_lang lang, bool trusted, env_local_opts *o) {
  memset(o, 0, sizeof *o);
  o->lang = lang;
  o->roots = (const char *const *)c->roots.items;
  o->virtual_env = getenv("VIRTUAL_ENV");
  o->any_path = trusted;
  o->reach_uid = o->reach_gid = -1;
  /* A root server's programs run as the sandbox uid: bwrap opens the
   * environment's folders as it. */
  if (geteuid() == 0 && c->srv->core.runner_open) sbx_runner_host_ids(&c->srv->core.runner, &o->reach_uid, &o->reach_gid);
}

/* sandbox.workspaceAccess "read" (user file only). */
static int add_workspace(lsp_client *c, env_resolved *r, char **err) {
  if (c->srv->base.sandbox.workspace_access != CFG_WORKSPACE_READ || !c->roots.n) return 0;
  /* A container gets no folder of this host (docs/sandbox.md, "Images"). */
  if (env_resolved_kind(r) == ENV_IMAGE) return 0;
  return env_resolved_add_workspace(r, (const char *const *)c->roots.items, err);
}

static void job_done(void *ud, env_resolved *env, const char *error);

static void job_progress(void *ud, const char *line, int percent) {
  lsp_env_job *j = ud;
  if (!rpc_call_alive(j->call)) return;
  rpc_session *ses = &j->client->ses;
  cJSON *p = cJSON_CreateObject();
  cJSON_AddStringToObject(p, "task", j->call->label ? j->call->label : "");
  cJSON_AddNumberToObject(p, "iteration", 0);
  cJSON_AddStringToObject(p, "phase", "installing");
  cJSON_AddStringToObject(p, "detail", line);
  rpc_session_notify(ses, "crucible/phase", p);
  if (j->call->progress_token) {
    char msg[200];
    snprintf(msg, sizeof msg, "installing: %.180s", line);
    rpc_progress_report(ses, j->call->progress_token, msg, percent);
  }
}

/* The image the program runs in on a container-engine backend: the spec's,
 * or the default (sandbox.image) for the system; NULL with *err for an
 * environment of folders, which containers do not get. */
static const char *image_of(const env_spec *spec, const char *def, char **err) {
  if (spec->kind == ENV_IMAGE) return spec->image;
  if (spec->kind == ENV_SYSTEM) return def;
  *err = xasprintf("environment: a %s environment is folders of this host, and the docker backend runs programs "
                   "in an image: name one ({\"kind\": \"image\", \"image\": ...}; sandbox.image is the default) "
                   "with the packages installed, or set sandbox.backend bwrap",
                   env_kind_name(spec->kind));
  return NULL;
}

static void image_done(void *ud, const char *id, const char *error) {
  lsp_env_job *j = ud;
  env_resolved *env = id ? env_resolved_image(j->lang, j->image, id) : NULL;
  free(j->image);
  j->image = NULL;
  job_done(j, env, error);
}

/* Resolves an image: 1 with *out when the engine has it, 0 while it is
 * pulled (cb follows), -errno with *err. */
static int acquire_image(lsp_client *c, rpc_call *call, const char *image, sbx_lang lang, lsp_env_fn cb, void *ud,
                         env_resolved **out, lsp_env_job **job, char **err) {
  lsp_env_job *j = xcalloc(1, sizeof *j);
  j->call = call;
  j->client = c;
  j->cb = cb;
  j->ud = ud;
  j->lang = lang;
  j->image = xstrdup(image);
  char *id = NULL;
  sbx_image_cbs cbs = {.progress = job_progress, .done = image_done};
  int e = sbx_image_ensure(&c->srv->core.runner, image, &cbs, j, &id, &j->image_wait, err);
  if (e == 1) *out = env_resolved_image(lang, image, id);
  if (e == 0) {
    /* the engine is asked on the loop, and pulls the image if it has none */
    *job = j;
    if (call->progress_token) rpc_progress_begin(&c->ses, call->progress_token, "Crucible", "looking for the image");
  } else {
    free(j->image);
    free(j);
  }
  free(id);
  return e;
}

static void job_done(void *ud, env_resolved *env, const char *error) {
  lsp_env_job *j = ud;
  char *err = NULL;
  if (env && add_workspace(j->client, env, &err)) {
    env_resolved_free(env);
    env = NULL;
  }
  lsp_env_fn cb = j->cb;
  void *cud = j->ud;
  free(j);
  cb(cud, env, env ? NULL : err ? err : error);
  free(err);
}

int lsp_env_acquire(lsp_client *c, rpc_call *call, const cJSON *spec_json, sbx_lang lang, lsp_env_fn cb, void *ud,
                    env_resolved **out, lsp_env_job **job, char **err) {
  *out = NULL;
  *job = NULL;
  *err = NULL;
  lsp_server *srv = c->srv;
  env_spec spec;
  bool trusted;
  int e = spec_of(c, spec_json, &spec, &trusted, err);
  if (e) return e;
  env_resolved *r = NULL;
  const char *def_image = srv->core.runner_open ? sbx_runner_image(&srv->core.runner) : NULL;
  if (def_image) {
    const char *image = image_of(&spec, def_image, err);
    e = image ? acquire_image(c, call, image, lang, cb, ud, &r, job, err) : -EINVAL;
  } else if (spec.kind == ENV_IMAGE) {
    *err = xasprintf("environment: an image runs only on a container engine (sandbox.backend docker); this server "
                     "runs programs with bwrap");
    e = -EINVAL;
  } else if (spec.kind == ENV_PACKAGES && lang != SBX_LANG_BASH) {
    if (spec.has_language && spec.language != lang) {
      *err = xasprintf("environment: the packages are for %s, the program is %s", sbx_lang_name(spec.language),
                       sbx_lang_name(lang));
      e = -EINVAL;
    } else if (!srv->core.envs) {
      *err = xstrdup("environments cannot be built here: their cache folder could not be made (see the log)");
      e = -ENOENT;
    } else {
      lsp_env_job *j = xcalloc(1, sizeof *j);
      j->call = call;
      j->client = c;
      j->cb = cb;
      j->ud = ud;
      env_build_cbs cbs = {.progress = job_progress, .done = job_done};
      e = env_cache_acquire(srv->core.envs, lang, (const char *const *)spec.requirements, spec.n, &cbs, j, &r, &j->wait,
                            err);
      if (e == 0) {
        *job = j;
        if (call->progress_token) rpc_progress_begin(&c->ses, call->progress_token, "Crucible", "installing");
      } else {
        free(j);
      }
      if (e == -EINVAL) {
        char *m = xasprintf("environment: %s", *err);
        free(*err);
        *err = m;
      }
    }
  } else {
    env_local_opts o;
    local_opts(c, lang, trusted, &o);
    e = env_resolve_local(&spec, &o, &r, err);
    if (e) e = -EINVAL; /* the request (or the setting) must name another environment */
    else e = 1;
  }
  env_spec_close(&spec);
  if (e == 1 && add_workspace(c, r, err)) {
    env_resolved_free(r);
    return -EINVAL;
  }
  if (e == 1) *out = r;
  return e;
}

int lsp_env_spec_pep723(lsp_client *c, const cJSON *spec_json, sbx_lang lang, const char *code, cJSON **out,
                        char **err) {
  *out = NULL;
  *err = NULL;
  if (lang != SBX_LANG_PYTHON || !code || !strstr(code, "# /// script")) return 0;
  char **deps = NULL;
  int n = env_pep723_dependencies(code, &deps, err);
  if (n <= 0) return n;
  env_spec spec;
  bool trusted;
  int e = spec_of(c, spec_json, &spec, &trusted, err);
  if (!e && (spec.kind == ENV_SYSTEM || (spec.kind == ENV_PACKAGES && (!spec.has_language || spec.language == lang)))) {
    size_t total = spec.n + (size_t)n;
    const char **reqs = xcalloc(total, sizeof *reqs);
    for (size_t i = 0; i < spec.n; i++) reqs[i] = spec.requirements[i];
    for (int i = 0; i < n; i++) reqs[spec.n + (size_t)i] = deps[i];
    env_spec merged;
    env_spec_packages(&merged, (int)lang, reqs, total);
    *out = env_spec_to_json(&merged);
    env_spec_close(&merged);
    free(reqs);
  }
  env_spec_close(&spec);
  env_strv_free(deps, (size_t)n);
  return e;
}

char **lsp_declared_packages(const char *code) {
  if (!code || !strstr(code, "# /// script")) return NULL;
  char **deps = NULL, *err = NULL;
  int n = env_pep723_dependencies(code, &deps, &err);
  free(err);
  if (n <= 0) return NULL;
  char **names = xcalloc((size_t)n + 1, sizeof *names);
  size_t k = 0;
  for (int i = 0; i < n; i++) {
    const char *d = deps[i];
    size_t len = 0;
    while (d[len] && (isalnum((unsigned char)d[len]) || d[len] == '-' || d[len] == '_' || d[len] == '.')) len++;
    if (len) names[k++] = env_pep503_name(d, len);
  }
  env_strv_free(deps, (size_t)n);
  return names;
}

void lsp_declared_free(char **names) {
  for (char **p = names; p && *p; p++) free(*p);
  free(names);
}

void lsp_env_job_cancel(lsp_env_job *job) {
  if (!job) return;
  env_waiter_cancel(job->wait);
  sbx_image_wait_cancel(job->image_wait);
  free(job->image);
  free(job);
}

env_resolved *lsp_env_for_diagnostics(lsp_client *c, chk_language lang) {
  sbx_lang sl;
  if (lang == CHK_LANG_NONE || sbx_lang_parse(chk_language_name(lang), &sl) || sl == SBX_LANG_BASH) return NULL;
  env_spec spec;
  bool trusted;
  char *err = NULL;
  env_resolved *r = NULL;
  if (spec_of(c, NULL, &spec, &trusted, &err)) {
    free(err);
    return NULL;
  }
  const char *def_image = c->srv->core.runner_open ? sbx_runner_image(&c->srv->core.runner) : NULL;
  if (def_image) {
    /* A container engine: the image's index when the engine has the image
     * (diagnostics never pull). */
    const char *image = image_of(&spec, def_image, &err);
    char *id = NULL;
    if (image && sbx_image_ensure(&c->srv->core.runner, image, NULL, NULL, &id, NULL, &err) == 1)
      r = env_resolved_image(sl, image, id);
    free(id);
    free(err);
    env_spec_close(&spec);
    return r;
  }
  if (spec.kind == ENV_PACKAGES) {
    /* Only when it is built already: diagnostics never start an install. */
    if (c->srv->core.envs && (!spec.has_language || spec.language == sl))
      r = env_cache_find(c->srv->core.envs, sl, (const char *const *)spec.requirements, spec.n);
  } else if (spec.kind == ENV_WORKSPACE || spec.kind == ENV_VENV) {
    env_local_opts o;
    local_opts(c, sl, trusted, &o);
    env_resolve_local(&spec, &o, &r, &err);
  }
  free(err);
  env_spec_close(&spec);
  err = NULL;
  if (!r && c->srv->base.sandbox.workspace_access == CFG_WORKSPACE_READ) r = env_resolved_system(sl);
  if (r && add_workspace(c, r, &err)) {
    env_resolved_free(r);
    r = NULL;
  }
  free(err);
  return r;
}

void lsp_environments(rpc_call *call, const cJSON *params) {
  (void)params;
  lsp_client *c = lsp_client_of(call);
  lsp_server *srv = c->srv;
  if (!srv->core.envs) {
    rpc_call_error(call, RPC_REQUEST_FAILED, "environments are unavailable: their cache folder could not be made");
    return;
  }
  cJSON *list = env_cache_list(srv->core.envs);
  cJSON *it;
  cJSON_ArrayForEach(it, list) {
    /* modules: the size of its module index when known (nothing is probed). */
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
    const cJSON *lang = cJSON_GetObjectItemCaseSensitive(it, "language");
    env_resolved *r = NULL;
    char *err = NULL;
    const chk_modset *set = NULL;
    if (cJSON_IsString(id) && cJSON_IsString(lang) && env_cache_lookup(srv->core.envs, id->valuestring, &r, &err) == 0)
      set = modindex_peek_env(&srv->core.modindex, chk_language_parse(lang->valuestring), env_resolved_sbx(r));
    if (set) cJSON_AddNumberToObject(it, "modules", (double)chk_modset_count(set));
    else cJSON_AddNullToObject(it, "modules");
    env_resolved_free(r);
    free(err);
  }
  rpc_call_reply(call, list);
}
