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
#include "log.h"
#include "term.h"

/* Source files above this are refused. */
#define MAX_FILE_BYTES (64u << 20)

static void usage(FILE *f) {
  fprintf(f,
          "usage: crucible check FILE... [--language " LANG_NAMES_USAGE "] [--deny MODULE]... "
          "[--json]\n"
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

static const chk_modset *load_modset(probe_env *env, chk_language lang) {
  sbx_config sc;
  core_sandbox_config(&env->settings->sandbox, &sc);
  if (!env->started) {
    env->started = true;
    uv_loop_init(&env->loop);
    modindex_init(&env->idx, &env->runner, sc.interpreters);
  }
  const chk_modset *cached = modindex_peek(&env->idx, lang);
  if (cached) return cached;
  if (!env->runner_started) {
    env->runner_started = true;
    sbx_runner_init(&env->runner, &env->loop, &sc);
  }
  probe_wait w = {0};
  modindex_get(&env->idx, lang, probe_ready, &w);
  while (!w.done && uv_run(&env->loop, UV_RUN_ONCE)) {
  }
  return w.set;
}

static void probe_env_close(probe_env *env) {
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
    case 'h': usage(stdout); goto out;
    default: usage(stderr); rc = 2; goto out;
    }
  }
  if (optind >= argc) {
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
      modsets[lang] = load_modset(&env, lang);
      tried[lang] = true;
    }
    chk_options opts = {.modset = modsets[lang], .deny = deny};
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
    chk_report_close(&r);
    chk_doc_free(doc);
    dbuf_close(&text);
  }
out:
  probe_env_close(&env);
  cfg_close(&settings);
  chk_context_free(ctx);
  free(deny);
  return rc;
}
