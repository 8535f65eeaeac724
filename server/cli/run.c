/* `crucible run`: runs one program in the sandbox, streaming its output.
 *
 * Exit status: the program's own status when it exited; 124 when a time
 * limit (wall or CPU) ended it; 128+N when it died of signal N (137 for
 * SIGKILL, e.g. the memory or output cap); 130 when cancelled (SIGINT or
 * SIGTERM to crucible); 125 when the sandbox itself could not run (bwrap
 * missing, user namespaces refused) or the arguments were wrong (2 for
 * usage errors). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common.h"
#include "config.h"
#include "core.h"
#include "sandbox.h"
#include "term.h"

#define RUN_MAX_INPUT (64u << 20)

typedef struct run_cli {
  bool json;
  int status;
  cJSON *result;
  sbx_run *run;
  uv_signal_t sigint, sigterm;
  cli_env_wait env;
} run_cli;

static const char usage[] =
    "usage: crucible run FILE|- [--language " LANG_NAMES_USAGE "] [--timeout MS]\n"
    "                    [--memory MB] [--cpu S] [--pids N] [--output BYTES] [--disk MB]\n"
    "                    [--stdin FILE|-] [--json] [--raw-output]\n"
    "                    [--backend bwrap|docker] [--image NAME]\n"
    "                    [--with PKG]... [--env system|workspace|venv:PATH]\n"
    "  --with PKG  run in an environment with PKG installed (built once, then cached;\n"
    "              PEP 508 for python, an npm spec for javascript)\n"
    "  --env       system: stdlib only; workspace: ./.venv, ./venv, $VIRTUAL_ENV or\n"
    "              ./node_modules; venv:PATH: that virtualenv (default: sandbox.environment)\n"
    "exit status: the program's; 124 time limit; 128+N signal N; 130 cancelled;\n"
    "             125 the sandbox could not run\n";

/* Reads a whole file (path "-" = stdin) into a new buffer. Returns 0 or -errno. */
static int slurp(const char *path, char **out, size_t *len) {
  int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : 0;
  if (fd < 0) return -errno;
  size_t cap = 4096, n = 0;
  char *buf = xmalloc(cap);
  for (;;) {
    if (n + 1 >= cap) {
      if (cap >= RUN_MAX_INPUT) {
        free(buf);
        if (fd) close(fd);
        return -EFBIG;
      }
      buf = xrealloc(buf, cap *= 2);
    }
    ssize_t r = read(fd, buf + n, cap - n - 1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int err = -errno;
      free(buf);
      if (fd) close(fd);
      return err;
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  if (fd) close(fd);
  buf[n] = '\0';
  *out = buf;
  *len = n;
  return 0;
}

static void on_output(void *ud, int stream, const char *bytes, size_t len) {
  run_cli *c = ud;
  /* On a terminal the program's control sequences are shown, not obeyed
   * (term.h); a pipe gets its bytes unchanged. */
  if (!c->json) term_write(stream == 1 ? stdout : stderr, bytes, len);
}

static int exit_status(const sbx_result *r) {
  switch (r->outcome) {
  case SBX_OK: return 0;
  case SBX_TIMEOUT: return 124;
  case SBX_CANCELLED: return 130;
  case SBX_REJECTED: return 125;
  default: break;
  }
  if (r->error) return 125;
  if (r->signal) return 128 + r->signal;
  return r->exit_code >= 0 ? r->exit_code : 1;
}

static void on_signal(uv_signal_t *h, int signum) {
  run_cli *c = h->data;
  (void)signum;
  if (c->run) sbx_run_cancel(c->run);
  else cli_env_cancel(&c->env);
}

static void on_done(void *ud, const sbx_result *r) {
  run_cli *c = ud;
  c->run = NULL;
  c->status = exit_status(r);
  c->result = sbx_result_to_json(r);
  if (c->env.env) cJSON_AddItemToObject(c->result, "environment", env_resolved_json(c->env.env));
  if (!c->json) {
    term_end(stdout);
    term_end(stderr);
    if (r->truncated) fprintf(stderr, "\ncrucible: output truncated at %ld bytes per stream\n",
                              r->limits.output_bytes);
    if (r->error) term_printf(stderr, "crucible: %s\n", r->error);
    char mem[32] = "n/a";
    if (r->max_rss_kb >= 0) snprintf(mem, sizeof mem, "%.1f MiB", (double)r->max_rss_kb / 1024.0);
    const char *lim = sbx_limit_name(r->limit);
    fprintf(stderr, "crucible: %s%s%s%s, exit %d%s%s, %lld ms, cpu %lld ms, memory %s, %s\n",
            sbx_outcome_name(r->outcome), lim ? " (" : "", lim ? lim : "", lim ? ")" : "", r->exit_code,
            r->signal ? ", signal " : "", r->signal ? sigabbrev_np(r->signal) : "",
            r->duration_ms, r->cpu_ms, mem, sbx_isolation_name(r->isolation));
  }
  uv_close((uv_handle_t *)&c->sigint, NULL);
  uv_close((uv_handle_t *)&c->sigterm, NULL);
}

static void runner_closed(sbx_runner *r) {
  (void)r;
}

int cli_run(int argc, char **argv) {
  const char *file = NULL, *lang_name = NULL, *stdin_path = NULL, *env_arg = NULL, *backend = NULL, *image = NULL;
  const char **with = xcalloc((size_t)argc + 1, sizeof *with);
  size_t n_with = 0;
  run_cli c = {.status = 125};
  sbx_request req = {0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--json")) {
      c.json = true;
    } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(usage, stdout);
      return 0;
    } else if ((!strcmp(a, "--language") || !strcmp(a, "-l")) && val) {
      lang_name = val, i++;
    } else if (!strcmp(a, "--timeout") && val) {
      req.limits.timeout_ms = strtol(val, NULL, 10), i++;
      if (req.limits.timeout_ms <= 0) goto bad;
    } else if (!strcmp(a, "--memory") && val) {
      req.limits.memory_mb = strtol(val, NULL, 10), i++;
      if (req.limits.memory_mb <= 0) goto bad;
    } else if (!strcmp(a, "--cpu") && val) {
      req.limits.cpu_seconds = strtol(val, NULL, 10), i++;
      if (req.limits.cpu_seconds <= 0) goto bad;
    } else if (!strcmp(a, "--pids") && val) {
      req.limits.pids = strtol(val, NULL, 10), i++;
      if (req.limits.pids <= 0) goto bad;
    } else if (!strcmp(a, "--output") && val) {
      req.limits.output_bytes = strtol(val, NULL, 10), i++;
      if (req.limits.output_bytes <= 0) goto bad;
    } else if (!strcmp(a, "--disk") && val) {
      req.limits.disk_mb = strtol(val, NULL, 10), i++;
      if (req.limits.disk_mb <= 0) goto bad;
    } else if (!strcmp(a, "--stdin") && val) {
      stdin_path = val, i++;
    } else if (!strcmp(a, "--with") && val) {
      with[n_with++] = val, i++;
    } else if (!strcmp(a, "--env") && val) {
      env_arg = val, i++;
    } else if (!strcmp(a, "--backend") && val) {
      backend = val, i++;
    } else if (!strcmp(a, "--image") && val) {
      image = val, i++;
    } else if (a[0] == '-' && a[1]) {
      goto bad;
    } else if (!file) {
      file = a;
    } else {
      goto bad;
    }
  }
  if (!file || (n_with && env_arg)) goto bad;
  cfg_backend be_flag = CFG_BACKEND_BWRAP;
  if (backend && cfg_backend_parse(backend, &be_flag)) {
    fprintf(stderr, "crucible: unknown backend '%s' (bwrap, docker)\n", backend);
    free(with);
    return 2;
  }
  sbx_lang lang = LANG_DEFAULT;
  if (lang_name ? sbx_lang_parse(lang_name, &lang) != 0 : sbx_lang_from_path(file, &lang) != 0) {
    if (lang_name) {
      fprintf(stderr, "crucible: unknown language '%s' (" LANG_NAMES_TEXT ")\n", lang_name);
      free(with);
      return 2;
    }
    lang = LANG_DEFAULT;
  }
  req.language = sbx_lang_name(lang);
  char *code = NULL, *input = NULL;
  size_t code_len = 0, input_len = 0;
  int err = slurp(file, &code, &code_len);
  if (err) {
    fprintf(stderr, "crucible: cannot read %s: %s\n", file, strerror(-err));
    free(with);
    return 2;
  }
  if (stdin_path && (err = slurp(stdin_path, &input, &input_len))) {
    fprintf(stderr, "crucible: cannot read %s: %s\n", stdin_path, strerror(-err));
    free(code);
    free(with);
    return 2;
  }
  req.code = code, req.code_len = code_len;
  req.stdin_data = input, req.stdin_len = input_len;

  uv_loop_t loop;
  uv_loop_init(&loop);
  /* The user's settings give the defaults and the interpreters; flags on the
   * command line are the user's own word and may go past those defaults, up
   * to the sandbox's built-in ceilings. */
  cfg settings;
  cfg_init_cli(&settings);
  sbx_config sc;
  /* --backend and --image are the user's own word, like the settings file's. */
  if (backend) settings.sandbox.backend = be_flag;
  if (image) snprintf(settings.sandbox.image, sizeof settings.sandbox.image, "%s", image);
  core_sandbox_config(&settings.sandbox, &sc);
  sc.max_concurrent = 1;
  sc.one_shot = true;
  core_sandbox_limits(&settings.sandbox, &sc.defaults);
  sbx_runner runner;
  sbx_runner_init(&runner, &loop, &sc);
  uv_signal_init(&loop, &c.sigint);
  uv_signal_init(&loop, &c.sigterm);
  c.sigint.data = c.sigterm.data = &c;
  uv_signal_start(&c.sigint, on_signal, SIGINT);
  uv_signal_start(&c.sigterm, on_signal, SIGTERM);
  /* The environment: resolved, or built first (its progress on stderr). */
  c.env.quiet = c.json;
  int env_status = cli_env_acquire(&loop, &settings, &runner, lang, env_arg, with, n_with, &c.env);
  sbx_callbacks cb = {on_output, on_done};
  if (env_status) {
    term_printf(stderr, "crucible: %s\n", c.env.error ? c.env.error : "no environment");
    uv_close((uv_handle_t *)&c.sigint, NULL);
    uv_close((uv_handle_t *)&c.sigterm, NULL);
    c.status = env_status;
  } else {
    req.env = env_resolved_sbx(c.env.env);
    err = sbx_run_start(&runner, &req, &cb, &c, &c.run);
    if (err) {
      fprintf(stderr, "crucible: cannot run: %s (limits above the allowed maximum?)\n", strerror(-err));
      uv_close((uv_handle_t *)&c.sigint, NULL);
      uv_close((uv_handle_t *)&c.sigterm, NULL);
      c.status = 125;
    }
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  cli_env_close(&c.env);
  sbx_runner_close(&runner, runner_closed);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  if (c.result && c.json) term_print_json(c.result, false);
  cJSON_Delete(c.result);
  cfg_close(&settings);
  free(code);
  free(input);
  free(with);
  return c.status;
bad:
  fputs(usage, stderr);
  free(with);
  return 2;
}
