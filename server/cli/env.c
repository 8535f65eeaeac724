/* `crucible env list | build REQ... | remove ID | prune`: the cache of built
 * environments; and the environment a command-line run uses (--with,
 * --env), built in-process with the installer's progress on stderr. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common.h"
#include "config.h"
#include "jobs.h"
#include "term.h"

static const char usage[] =
    "usage: crucible env list [--json]\n"
    "       crucible env build REQ... [--language python|javascript] [--json]\n"
    "       crucible env remove ID\n"
    "       crucible env prune [--all]\n"
    "  list    the environments built from packages, most recently used first\n"
    "  build   builds (or finds) the environment of the requirements; prints its id\n"
    "  remove  deletes one (ID: its id, or a unique prefix of it)\n"
    "  prune   deletes leftovers of crashed builds and the least recently used past\n"
    "          sandbox.envCacheMb; --all deletes every environment\n";

static void cache_config(const cfg *settings, env_cache_config *ec) {
  memset(ec, 0, sizeof *ec);
  ec->package_index = settings->sandbox.package_index;
  ec->npm_registry = settings->sandbox.npm_registry;
  ec->cache_mb = settings->sandbox.env_cache_mb;
  core_sandbox_config(&settings->sandbox, &ec->sandbox);
}

static void on_progress(void *ud, const char *line, int percent) {
  cli_env_wait *w = ud;
  if (w->quiet) return;
  if (percent >= 0) term_printf(stderr, "crucible: installing [%3d%%] %s\n", percent, line);
  else term_printf(stderr, "crucible: installing: %s\n", line);
}

static void on_built(void *ud, env_resolved *env, const char *error) {
  cli_env_wait *w = ud;
  w->done = true;
  w->wait = NULL;
  w->env = env;
  if (error) w->error = xstrdup(error);
}

static void on_pull_progress(void *ud, const char *line, int percent) {
  cli_env_wait *w = ud;
  if (w->quiet) return;
  if (percent >= 0) term_printf(stderr, "crucible: [%3d%%] %s\n", percent, line);
  else term_printf(stderr, "crucible: %s\n", line);
}

static void on_pulled(void *ud, const char *id, const char *error) {
  cli_env_wait *w = ud;
  w->done = true;
  w->image_wait = NULL;
  if (id) w->env = env_resolved_image(SBX_LANG_PYTHON, w->image, id);
  else w->error = xstrdup(error ? error : "the image could not be pulled");
}

/* A container engine's image: the spec's, else sandbox.image for the
 * system; pulled when missing. Returns 0 or an exit status with w->error. */
static int image_env(uv_loop_t *loop, sbx_runner *runner, const env_spec *spec, sbx_lang lang, cli_env_wait *w) {
  if (spec->kind != ENV_IMAGE && spec->kind != ENV_SYSTEM) {
    w->error = xasprintf("a %s environment is folders of this host, and the docker backend runs programs in an "
                         "image: --env image:NAME (or sandbox.image) with the packages installed, or --backend bwrap",
                         env_kind_name(spec->kind));
    return 2;
  }
  bool named = spec->kind == ENV_IMAGE;
  w->image = xstrdup(named ? spec->image : sbx_runner_image(runner));
  char *id = NULL, *err = NULL;
  sbx_image_cbs cbs = {.progress = on_pull_progress, .done = on_pulled};
  int e = sbx_image_ensure(runner, w->image, &cbs, w, &id, &w->image_wait, &err);
  if (e == 1) w->env = env_resolved_image(lang, w->image, id);
  if (e == 0) {
    while (!w->done && uv_run(loop, UV_RUN_ONCE)) {
    }
    if (w->cancelled) return 130;
  } else if (e < 0) {
    w->error = err;
    err = NULL;
  }
  free(id);
  free(err);
  if (w->env) {
    /* The language the run has (on_pulled could not know it). */
    env_resolved *r = env_resolved_image(lang, w->image, env_resolved_id(w->env));
    env_resolved_free(w->env);
    w->env = r;
    return 0;
  }
  if (named) return e == -EINVAL ? 2 : 125;
  /* The default image: the run reports it missing (or the engine down). */
  if (w->error && !w->quiet) term_printf(stderr, "crucible: %s\n", w->error);
  free(w->error);
  w->error = NULL;
  return 0;
}

int cli_env_acquire(uv_loop_t *loop, const cfg *settings, sbx_runner *runner, sbx_lang lang, const char *env_arg,
                    const char *const *with, size_t n_with, cli_env_wait *w) {
  w->done = false;
  w->env = NULL;
  w->error = NULL;
  w->cache = NULL;
  w->wait = NULL;
  w->image_wait = NULL;
  w->image = NULL;
  env_spec spec;
  char *err = NULL;
  int e;
  if (n_with) {
    env_spec_packages(&spec, (int)lang, with, n_with);
  } else if (env_arg) {
    e = env_spec_parse_arg(&spec, env_arg, &err);
    if (e) {
      w->error = err;
      return 2;
    }
  } else {
    /* The user's sandbox.environment. */
    cJSON *j = cJSON_Parse(settings->sandbox.environment);
    e = env_spec_parse(&spec, j, &err);
    cJSON_Delete(j);
    if (e) {
      w->error = xasprintf("sandbox.environment: %s", err);
      free(err);
      return 2;
    }
  }
  int rc = 0;
  if (sbx_runner_image(runner) && !n_with) {
    rc = image_env(loop, runner, &spec, lang, w);
  } else if (spec.kind == ENV_IMAGE) {
    w->error = xstrdup("an image runs only on a container engine (--backend docker); this run uses bwrap");
    rc = 2;
  } else if (spec.kind == ENV_PACKAGES && lang != SBX_LANG_BASH) {
    env_cache_config ec;
    cache_config(settings, &ec);
    if ((e = env_cache_new(loop, &ec, &w->cache, &err))) {
      w->error = err;
      rc = 125;
    } else {
      env_build_cbs cbs = {.progress = on_progress, .done = on_built};
      e = env_cache_acquire(w->cache, lang, (const char *const *)spec.requirements, spec.n, &cbs, w, &w->env,
                            &w->wait, &err);
      if (e < 0) {
        w->error = err;
        rc = e == -EINVAL ? 2 : 125;
      } else if (e == 0) {
        while (!w->done && uv_run(loop, UV_RUN_ONCE)) {
        }
        if (!w->env) rc = w->cancelled ? 130 : 125;
        if (!w->env && !w->error) w->error = xstrdup("the installation did not finish");
      }
    }
  } else {
    /* A workspace is the current folder; the command line may name any venv. */
    char cwd[PATH_MAX];
    const char *roots[] = {getcwd(cwd, sizeof cwd) ? cwd : NULL, NULL};
    env_local_opts o = {.lang = lang, .roots = roots, .virtual_env = getenv("VIRTUAL_ENV"), .any_path = true,
                        .reach_uid = -1, .reach_gid = -1};
    if (geteuid() == 0) sbx_runner_host_ids(runner, &o.reach_uid, &o.reach_gid);
    if (env_resolve_local(&spec, &o, &w->env, &err)) {
      w->error = err;
      rc = 2;
    }
  }
  env_spec_close(&spec);
  return rc;
}

void cli_env_cancel(cli_env_wait *w) {
  if (w->image_wait) {
    sbx_image_wait_cancel(w->image_wait);
    w->image_wait = NULL;
    w->cancelled = true;
    w->done = true;
    return;
  }
  if (!w->wait) return;
  env_waiter_cancel(w->wait);
  w->wait = NULL;
  w->cancelled = true;
  w->done = true;
}

void cli_env_close(cli_env_wait *w) {
  env_resolved_free(w->env);
  w->env = NULL;
  free(w->error);
  w->error = NULL;
  free(w->image);
  w->image = NULL;
  if (w->cache) env_cache_close(w->cache, NULL, NULL);
  w->cache = NULL;
}

/* ---- crucible env ---- */

static void print_list(const cJSON *list) {
  const cJSON *it;
  if (!cJSON_GetArraySize(list)) {
    printf("no environments built yet (crucible env build REQ..., or crucible run --with PKG)\n");
    return;
  }
  cJSON_ArrayForEach(it, list) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
    const cJSON *lang = cJSON_GetObjectItemCaseSensitive(it, "language");
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(it, "sizeBytes");
    const cJSON *reqs = cJSON_GetObjectItemCaseSensitive(it, "requirements");
    printf("%.12s  %-10s %8.1f MiB ", cJSON_IsString(id) ? id->valuestring : "?",
           cJSON_IsString(lang) ? lang->valuestring : "?", cJSON_IsNumber(size) ? size->valuedouble / 1048576 : 0);
    const cJSON *r;
    cJSON_ArrayForEach(r, reqs) if (cJSON_IsString(r)) term_printf(stdout, " %s", r->valuestring);
    printf("\n");
  }
}

static cli_env_wait *g_wait;

static void on_sigint(uv_signal_t *h, int signum) {
  (void)h;
  (void)signum;
  if (g_wait) cli_env_cancel(g_wait);
}

static int env_build(const cfg *settings, int argc, char **argv, bool json) {
  sbx_lang lang = SBX_LANG_PYTHON;
  const char **reqs = xcalloc((size_t)argc + 1, sizeof *reqs);
  size_t n = 0;
  for (int i = 1; i < argc; i++) {
    if ((!strcmp(argv[i], "--language") || !strcmp(argv[i], "-l")) && i + 1 < argc) {
      if (sbx_lang_parse(argv[++i], &lang) || lang == SBX_LANG_BASH) {
        fprintf(stderr, "crucible env build: packages are for python or javascript\n");
        free(reqs);
        return 2;
      }
    } else if (!strcmp(argv[i], "--json")) {
    } else {
      reqs[n++] = argv[i];
    }
  }
  if (!n) {
    fputs(usage, stderr);
    free(reqs);
    return 2;
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  sbx_config sc;
  core_sandbox_config(&settings->sandbox, &sc);
  sbx_runner runner;
  sbx_runner_init(&runner, &loop, &sc);
  uv_signal_t sig;
  uv_signal_init(&loop, &sig);
  uv_signal_start(&sig, on_sigint, SIGINT);
  uv_unref((uv_handle_t *)&sig);
  cli_env_wait w = {.quiet = false};
  g_wait = &w;
  int rc = cli_env_acquire(&loop, settings, &runner, lang, NULL, reqs, n, &w);
  g_wait = NULL;
  if (w.env) {
    cJSON *o = env_resolved_json(w.env);
    if (json) term_print_json(o, true);
    else printf("%s\n", env_resolved_id(w.env));
    cJSON_Delete(o);
  } else {
    term_printf(stderr, "crucible env build: %s\n", w.error ? w.error : "failed");
  }
  cli_env_close(&w);
  uv_close((uv_handle_t *)&sig, NULL);
  sbx_runner_close(&runner, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  free(reqs);
  return rc;
}

int cli_env(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    fputs(usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const char *sub = argv[1];
  bool json = false, all = false;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) json = true;
    if (!strcmp(argv[i], "--all")) all = true;
  }
  cfg settings;
  cfg_init_cli(&settings);
  int rc = 0;
  if (!strcmp(sub, "build")) {
    rc = env_build(&settings, argc - 1, argv + 1, json);
    cfg_close(&settings);
    return rc;
  }
  env_cache_config ec;
  cache_config(&settings, &ec);
  env_cache *cache = NULL;
  char *err = NULL;
  if (env_cache_new(NULL, &ec, &cache, &err)) {
    fprintf(stderr, "crucible env: %s\n", err);
    free(err);
    cfg_close(&settings);
    return 1;
  }
  if (!strcmp(sub, "list")) {
    cJSON *l = env_cache_list(cache);
    if (json) term_print_json(l, true);
    else print_list(l);
    cJSON_Delete(l);
  } else if (!strcmp(sub, "remove") && argc >= 3 && argv[2][0] != '-') {
    char *id = NULL;
    if (env_cache_remove(cache, argv[2], &id, &err)) {
      fprintf(stderr, "crucible env remove: %s\n", err);
      free(err);
      rc = 1;
    } else {
      printf("removed %s\n", id);
      free(id);
    }
  } else if (!strcmp(sub, "prune")) {
    int n = env_cache_prune(cache, all);
    printf("removed %d environment(s); %.1f MiB kept in %s\n", n, (double)env_cache_size(cache) / 1048576,
           env_cache_dir(cache));
  } else {
    fputs(usage, stderr);
    rc = 2;
  }
  env_cache_close(cache, NULL, NULL);
  cfg_close(&settings);
  return rc;
}
