/* `crucible check FILE... [--language L]`: syntax and import checks printed as
 * compiler-style diagnostics (file:line:col: severity: message). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "modindex.h"
#include "cli.h"
#include "common.h"
#include "dbuf.h"
#include "core.h"
#include "env.h"
#include "environments.h"
#include "log.h"
#include "term.h"

/* Source files above this are refused. */
#define MAX_FILE_BYTES (64u << 20)

static void usage(FILE *f) {
  fprintf(f,
          "usage: crucible check FILE... [--language " LANG_NAMES_USAGE "] [--deny MODULE]... "
          "[--json]\n"
          "                      [--with PKG]... [--env system|workspace|venv:PATH]\n"
          "  --with, --env  resolve imports in that environment (--with builds it, as crucible run does;\n"
          "                 default: sandbox.environment)\n"
          "  Checks syntax and imports without running anything. FILE '-' reads stdin.\n"
          "  Exit status: 0 no errors, 1 errors found, 2 usage error.\n");
}

static int read_all(int fd, dbuf *out) {
  char buf[65536];
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -errno;
    if (r == 0) return 0;
    if (dbuf_add(out, buf, (size_t)r) != 0) return -E2BIG;
  }
}

/* The module index is learned the way the server learns it: by running the
 * check module's probe in the real sandbox, once per interpreter (then it is
 * cached on disk and shared with the server). */
typedef struct probe_env {
  uv_loop_t loop;
  sbx_runner runner;
  modindex idx;
  const cfg *settings;
  bool started;
  char *image_id;     /* a container engine's image: its ID once known */
  char *image_error;  /* ...or why it cannot be had */
  bool image_tried;
  bool runner_started; /* only when a probe must run: a cached index needs no sandbox (nor cgroups) */
} probe_env;

typedef struct probe_wait {
  bool done;
  const chk_modset *set;
} probe_wait;

static void probe_ready(void *ud, const chk_modset *set, const char *error) {
  probe_wait *w = ud;
  w->done = true;
  w->set = set;
  if (!set) log_warn("imports are not resolved: %s", error ? error : "no module index");
}

static void image_pulled(void *ud, const char *id, const char *error) {
  probe_env *env = ud;
  env->image_tried = true;
  if (id) env->image_id = xstrdup(id);
  else env->image_error = xstrdup(error ? error : "the image could not be pulled");
}

static void image_progress(void *ud, const char *line, int percent) {
  (void)ud;
  if (percent >= 0) log_info("%s (%d%%)", line, percent);
  else log_info("%s", line);
}

/* On a container engine the programs run in an image: its ID (pulled when
 * missing), or NULL (logged why). */
static const char *image_id(probe_env *env) {
  const char *image = sbx_runner_image(&env->runner);
  if (!image) return NULL;
  if (!env->image_tried) {
    sbx_image_cbs cbs = {.progress = image_progress, .done = image_pulled};
    char *err = NULL;
    int e = sbx_image_ensure(&env->runner, image, &cbs, env, &env->image_id, NULL, &err);
    if (e == 0) {
      while (!env->image_tried && uv_run(&env->loop, UV_RUN_ONCE)) {
      }
    } else if (e < 0) {
      env->image_error = err ? err : xstrdup(strerror(-e));
      err = NULL;
    }
    free(err);
    env->image_tried = true;
  }
  return env->image_id;
}

/* The sandbox runner starts only when a probe must run (or an image must be
 * looked up): a cached index needs no sandbox, nor cgroups. */
static void runner_start(probe_env *env, const sbx_config *sc) {
  if (env->runner_started) return;
  env->runner_started = true;
  sbx_runner_init(&env->runner, &env->loop, sc);
}

/* The loop, the module index and the runner (env_needs_runner). */
static void probe_start(probe_env *env) {
  sbx_config sc;
  core_sandbox_config(&env->settings->sandbox, &sc);
  if (!env->started) {
    env->started = true;
    uv_loop_init(&env->loop);
    modindex_init(&env->idx, &env->runner, sc.interpreters);
  }
  runner_start(env, &sc);
}

/* Whether the environment must be resolved with the sandbox runner: all but
 * the system environment on bwrap, whose index needs no sandbox when it is
 * cached (then the check makes no cgroup). */
static bool env_needs_runner(const cfg *settings, const char *env_arg, size_t n_with) {
  if (settings->sandbox.backend != CFG_BACKEND_BWRAP || n_with) return true;
  if (env_arg) return strcmp(env_arg, "system") != 0;
  cJSON *j = cJSON_Parse(settings->sandbox.environment);
  const cJSON *kind = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "kind") : j;
  bool system = cJSON_IsString(kind) && strcmp(kind->valuestring, "system") == 0;
  cJSON_Delete(j);
  return !system;
}

/* The module index of lang in the environment sbx (NULL: the system's). */
static const chk_modset *load_modset(probe_env *env, chk_language lang, const sbx_env *sbx) {
  sbx_config sc;
  core_sandbox_config(&env->settings->sandbox, &sc);
  if (!env->started) {
    env->started = true;
    uv_loop_init(&env->loop);
    modindex_init(&env->idx, &env->runner, sc.interpreters);
  }
  if (sc.backend == SBX_BACKEND_BWRAP) {
    const chk_modset *cached = modindex_peek_env(&env->idx, lang, sbx);
    if (cached) return cached;
  }
  runner_start(env, &sc);
  probe_wait w = {0};
  env_resolved *image = NULL;
  if (sbx_runner_image(&env->runner)) {
    /* The image's index, cached per image ID (never the host's). */
    const char *id = image_id(env);
    if (!id) {
      log_warn("imports are not resolved: %s", env->image_error ? env->image_error : "no image");
      return NULL;
    }
    image = env_resolved_image((sbx_lang)lang, sbx_runner_image(&env->runner), id);
    sbx = env_resolved_sbx(image);
  }
  modindex_get_env(&env->idx, lang, sbx, probe_ready, &w);
  while (!w.done && uv_run(&env->loop, UV_RUN_ONCE)) {
  }
  env_resolved_free(image);
  return w.set;
}

static void probe_env_close(probe_env *env) {
  free(env->image_id);
  free(env->image_error);
  if (!env->started) return;
  modindex_close(&env->idx);
  if (env->runner_started) sbx_runner_close(&env->runner, NULL);
  uv_run(&env->loop, UV_RUN_DEFAULT);
  uv_loop_close(&env->loop);
}

static const char *severity_word(chk_severity s) {
  switch (s) {
  case CHK_SEV_ERROR: return "error";
  case CHK_SEV_WARNING: return "warning";
  default: return "note";
  }
}

int cli_check(int argc, char **argv) {
  static const struct option longopts[] = {
      {"language", required_argument, NULL, 'l'},
      {"deny", required_argument, NULL, 'd'},
      {"json", no_argument, NULL, 'j'},
      {"with", required_argument, NULL, 'w'},
      {"env", required_argument, NULL, 'e'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  chk_language forced = CHK_LANG_NONE;
  bool json = false;
  cfg settings;
  cfg_init_cli(&settings);
  /* --deny adds to the user's agent.denyImports */
  const char **deny = xcalloc((size_t)argc + CFG_MAX_LIST + 1, sizeof *deny);
  size_t ndeny = 0;
  for (int i = 0; i < settings.agent.deny_imports.n; i++) deny[ndeny++] = settings.agent.deny_imports.items[i];
  int rc = 0, c;
  chk_context *ctx = NULL;
  const chk_modset *modsets[CHK_LANG_COUNT] = {0};
  probe_env env;
  memset(&env, 0, sizeof env);
  env.settings = &settings;
  bool tried[CHK_LANG_COUNT] = {0};
  cli_env_wait envs[CHK_LANG_COUNT];
  memset(envs, 0, sizeof envs);
  const char **with = xcalloc((size_t)argc + 1, sizeof *with);
  size_t n_with = 0;
  const char *env_arg = NULL;
  optind = 1;
  while ((c = getopt_long(argc, argv, "l:d:jh", longopts, NULL)) != -1) {
    switch (c) {
    case 'l':
      forced = chk_language_parse(optarg);
      if (forced == CHK_LANG_NONE) {
        fprintf(stderr, "crucible check: unknown language '%s' (" LANG_NAMES_TEXT ")\n", optarg);
        rc = 2;
        goto out;
      }
      break;
    case 'd': deny[ndeny++] = optarg; break;
    case 'j': json = true; break;
    case 'w': with[n_with++] = optarg; break;
    case 'e': env_arg = optarg; break;
    case 'h': usage(stdout); goto out;
    default: usage(stderr); rc = 2; goto out;
    }
  }
  if (optind >= argc || (n_with && env_arg)) {
    usage(stderr);
    rc = 2;
    goto out;
  }
  for (int i = optind; i < argc; i++) {
    if (forced == CHK_LANG_NONE && chk_language_from_path(argv[i]) == CHK_LANG_NONE) {
      fprintf(stderr, "crucible check: cannot tell the language of '%s'; pass --language\n", argv[i]);
      rc = 2;
      goto out;
    }
  }
  char *msg = NULL;
  ctx = chk_context_new(&msg);
  if (!ctx) {
    fprintf(stderr, "crucible check: %s\n", msg);
    free(msg);
    rc = 2;
    goto out;
  }
  for (int i = optind; i < argc; i++) {
    const char *file = argv[i];
    chk_language lang = forced != CHK_LANG_NONE ? forced : chk_language_from_path(file);
    dbuf text;
    dbuf_init(&text, MAX_FILE_BYTES);
    int fd = strcmp(file, "-") ? open(file, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
    int err = fd < 0 ? -errno : read_all(fd, &text);
    if (fd > STDIN_FILENO) close(fd);
    if (err) {
      fprintf(stderr, "%s: error: cannot read: %s\n", file, err == -E2BIG ? "file too large" : strerror(-err));
      dbuf_close(&text);
      rc = 1;
      continue;
    }
    if (!tried[lang]) {
      tried[lang] = true;
      /* the environment (bash: always the system) */
      sbx_lang sl;
      const sbx_env *sbx = NULL;
      if (lang != CHK_LANG_BASH && sbx_lang_parse(chk_language_name(lang), &sl) == 0 &&
          env_needs_runner(&settings, env_arg, n_with)) {
        probe_start(&env);
        envs[lang].quiet = json;
        int st = cli_env_acquire(&env.loop, &settings, &env.runner, sl, env_arg, with, n_with, &envs[lang]);
        if (st) {
          fprintf(stderr, "crucible check: %s\n", envs[lang].error ? envs[lang].error : "no environment");
          dbuf_close(&text);
          rc = st == 130 ? 130 : 2;
          goto out;
        }
        sbx = env_resolved_sbx(envs[lang].env);
      }
      modsets[lang] = load_modset(&env, lang, sbx);
    }
    /* a PEP 723 block's packages are installed before a run: not errors */
    char **declared = lang == CHK_LANG_PYTHON && text.data ? lsp_declared_packages(text.data) : NULL;
    chk_options opts = {.modset = modsets[lang], .deny = deny, .declared = (const char *const *)declared};
    chk_doc *doc = chk_doc_new(ctx, lang, text.data ? text.data : "", text.len);
    chk_report r = {0};
    chk_doc_check(ctx, doc, &opts, &r);
    if (json) {
      cJSON *o = chk_report_json(&r, doc, LSP_ENC_UTF16);
      cJSON_AddStringToObject(o, "file", file);
      term_print_json(o, false);
      cJSON_Delete(o);
    } else {
      for (size_t k = 0; k < r.ndiags; k++) {
        const chk_diag *d = &r.diags[k];
        /* columns count characters (code points), 1-based, like most editors show */
        printf("%s:%u:%u: %s: %s\n", file, d->start.row + 1,
               chk_doc_point_to_lsp(doc, d->start, LSP_ENC_UTF32) + 1, severity_word(d->severity),
               d->message);
      }
    }
    if (chk_report_errors(&r) > 0) rc = 1;
    lsp_declared_free(declared);
    chk_report_close(&r);
    chk_doc_free(doc);
    dbuf_close(&text);
  }
out:
  for (int l = 0; l < CHK_LANG_COUNT; l++) cli_env_close(&envs[l]);
  probe_env_close(&env);
  free(with);
  cfg_close(&settings);
  chk_context_free(ctx);
  free(deny);
  return rc;
}
