/* `crucible ask`: the ask loop in-process — progress on stderr, the answer
 * (description, code, and what running it printed) on stdout.
 *
 * Exit status: 0 passed, 1 failed after the last attempt, 3 the task could
 * not run (LLM endpoint, sandbox), 130 cancelled, 2 usage. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common.h"
#include "config.h"
#include "core.h"
#include "log.h"
#include "term.h"
#include "utf8.h"

typedef struct ask_cli {
  core core;
  agent_task *task;
  bool json, quiet, tty;
  int status;
  uv_signal_t sigint, sigterm;
  int last_iteration;
  bool after_generating; /* the last thing shown is generated text */
  cli_env_wait env;      /* the environment the answers run in */
} ask_cli;

static const char usage[] =
    "usage: crucible ask \"QUESTION\" [--language " LANG_NAMES_USAGE "] [--max-iterations N]\n"
    "                    [--context FILE] [--docs URL|PATH]... [--no-reflect] [--json] [--quiet]\n"
    "                    [--with PKG]... [--env system|workspace|venv:PATH] [--raw-output]\n"
    "  --with PKG  answers run with PKG installed (built once, then cached), and with\n"
    "              the packages they declare (agent.installDependencies)\n"
    "  --env       system | workspace | venv:PATH (default: sandbox.environment)\n"
    "exit status: 0 the code passed; 1 it still failed after the last attempt;\n"
    "             3 the task could not run (LLM endpoint, sandbox); 130 cancelled\n";

static void err_text(ask_cli *a, const char *s, size_t n) {
  if (a->quiet) return;
  term_write(stderr, s, n);
}

static void on_phase(void *ud, int iteration, agent_phase phase, const char *detail) {
  ask_cli *a = ud;
  if (a->quiet) return;
  term_printf(stderr, "%s--- %s%s%s", a->after_generating ? "\n" : "", agent_phase_name(phase),
              detail ? ": " : "", detail ? detail : "");
  fprintf(stderr, " ---\n");
  a->after_generating = phase == AGENT_PHASE_GENERATING;
  a->last_iteration = iteration;
}

static void on_token(void *ud, int iteration, const char *text, size_t len) {
  err_text(ud, text, len);
}

static void on_reflection(void *ud, int iteration, const char *text, size_t len) {
  err_text(ud, text, len);
}

static void on_output(void *ud, int iteration, int stream, const char *text, size_t len) {
  ask_cli *a = ud;
  if (a->quiet) return;
  /* Program output goes to stderr too: stdout holds only the final answer.
   * On a terminal its control sequences are shown, not obeyed (term.h). */
  term_write(stderr, text, len);
}

static void on_attempt(void *ud, const agent_attempt *attempt) {
  ask_cli *a = ud;
  if (a->quiet) return;
  if (attempt->passed) {
    fprintf(stderr, "\n--- attempt %d passed ---\n", attempt->iteration);
  } else {
    const char *stage = agent_stage_name(attempt->failed_stage);
    term_printf(stderr, "\n--- attempt %d failed at %s ---\n%s\n", attempt->iteration, stage ? stage : "?",
                attempt->error ? attempt->error : "");
  }
  a->after_generating = false;
}

/* Text that ends with exactly one newline. */
static void print_line_end(const char *s) {
  term_printf(stdout, "%s%s", s, *s && s[strlen(s) - 1] == '\n' ? "" : "\n");
}

static void print_answer(const agent_result *r) {
  const agent_attempt *sa = agent_result_solution_attempt(r);
  const agent_attempt *ra = agent_result_run_attempt(r);
  if (sa) {
    const llm_solution *sol = &sa->solution;
    if (sol->prefix && *sol->prefix) term_printf(stdout, "%s\n\n", sol->prefix);
    term_printf(stdout, "```\n");
    if (sol->imports && *sol->imports) print_line_end(sol->imports);
    print_line_end(sol->code ? sol->code : "");
    term_printf(stdout, "```\n");
  }
  if (ra && ra->run->outcome == SBX_REJECTED) {
    term_printf(stdout, "\nNot run: the checks rejected it.\n");
  } else if (ra) {
    const sbx_result *run = ra->run;
    term_printf(stdout, "\nRan in the sandbox: %s", sbx_outcome_name(run->outcome));
    if (run->exit_code >= 0) term_printf(stdout, ", exit %d", run->exit_code);
    term_printf(stdout, ", %d ms", (int)run->duration_ms);
    term_printf(stdout, "\n");
    /* as in the RunResult: invalid UTF-8 and NULs shown as U+FFFD */
    char *out = run->out ? utf8_repair(run->out, run->out_len, NULL) : NULL;
    if (out && *out) print_line_end(out);
    free(out);
  }
  if (r->n_sources > 0) {
    term_printf(stdout, "\nSources:\n");
    for (size_t i = 0; i < r->n_sources; i++) {
      const char *title = r->sources[i].title, *url = r->sources[i].url;
      term_printf(stdout, "  %s%s%s\n", title && *title ? title : "", title && *title ? " - " : "", url ? url : "");
    }
  }
  term_printf(stdout, "\nOutcome: %s after %d attempt%s\n", agent_outcome_name(r->outcome), r->iterations,
              r->iterations == 1 ? "" : "s");
  if (r->error) term_printf(stdout, "Error: %s\n", r->error);
  const cJSON *reqs = cJSON_GetObjectItemCaseSensitive(r->environment, "requirements");
  if (cJSON_IsArray(reqs)) {
    term_printf(stdout, "Environment:");
    const cJSON *q;
    cJSON_ArrayForEach(q, reqs) if (cJSON_IsString(q)) term_printf(stdout, " %s", q->valuestring);
    term_printf(stdout, "\n");
  }
  /* A failure ends with one line: what failed, where, the error. */
  const agent_attempt *last = agent_result_last(r);
  if (r->outcome == AGENT_FAILED && last && last->summary)
    term_printf(stdout, "Failed at the %s stage of attempt %d: %s\n", agent_stage_name(last->failed_stage),
                last->iteration, last->summary);
}

/* The loop runs dry after this. */
static void stop(ask_cli *a) {
  uv_close((uv_handle_t *)&a->sigint, NULL);
  uv_close((uv_handle_t *)&a->sigterm, NULL);
  core_close(&a->core);
}

static void on_done(void *ud, agent_result *r) {
  ask_cli *a = ud;
  a->task = NULL;
  switch (r->outcome) {
  case AGENT_PASSED: a->status = 0; break;
  case AGENT_FAILED: a->status = 1; break;
  case AGENT_CANCELLED: a->status = 130; break;
  case AGENT_ERROR: a->status = 3; break;
  }
  term_end(stderr);
  if (a->json) {
    cJSON *j = agent_result_json(r);
    term_print_json(j, true);
    cJSON_Delete(j);
  } else {
    if (!a->quiet) fputc('\n', stderr);
    print_answer(r);
  }
  fflush(stdout);
  agent_result_free(r);
  stop(a);
}

/* SIGINT or SIGTERM: the task is cancelled (its sandbox killed), then the
 * answer so far is printed as for any end. */
static void on_signal(uv_signal_t *h, int signum) {
  ask_cli *a = h->data;
  if (a->task) {
    fprintf(stderr, "\ncrucible: cancelling...\n");
    agent_task_cancel(a->task);
  }
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "re");
  if (!f) return NULL;
  dbuf b;
  dbuf_init(&b, 16 << 20);
  char chunk[8192];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    if (dbuf_add(&b, chunk, n)) break;
  fclose(f);
  return dbuf_take(&b);
}

int cli_ask(int argc, char **argv) {
  const char *question = NULL, *language = lang_name(LANG_DEFAULT), *context = NULL;
  const char *docs[CFG_MAX_DOC_SOURCES];
  size_t n_docs = 0;
  int max_iter = 0;
  bool json = false, quiet = false, no_reflect = false;
  const char *env_arg = NULL;
  const char **with = xcalloc((size_t)argc + 1, sizeof *with);
  size_t n_with = 0;
  int rc = 2;
  for (int i = 1; i < argc; i++) {
    const char *x = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(x, "--json")) json = true;
    else if (!strcmp(x, "--quiet") || !strcmp(x, "-q")) quiet = true;
    else if (!strcmp(x, "--no-reflect")) no_reflect = true;
    else if (!strcmp(x, "--language") && v) language = argv[++i];
    else if (!strcmp(x, "--context") && v) context = argv[++i];
    else if (!strcmp(x, "--with") && v) with[n_with++] = argv[++i];
    else if (!strcmp(x, "--env") && v) env_arg = argv[++i];
    else if (!strcmp(x, "--docs") && v) {
      if (n_docs == CFG_MAX_DOC_SOURCES) {
        fprintf(stderr, "crucible ask: at most %d --docs sources\n", CFG_MAX_DOC_SOURCES);
        goto out;
      }
      docs[n_docs++] = argv[++i];
    }
    else if (!strcmp(x, "--max-iterations") && v) {
      max_iter = atoi(argv[++i]);
      if (max_iter < 1 || max_iter > CFG_MAX_AGENT_MAX_ITERATIONS) {
        fprintf(stderr, "crucible ask: --max-iterations must be from 1 to %d\n", CFG_MAX_AGENT_MAX_ITERATIONS);
        goto out;
      }
    } else if (!strcmp(x, "--help") || !strcmp(x, "-h")) {
      fputs(usage, stdout);
      rc = 0;
      goto out;
    } else if (x[0] == '-' && x[1]) {
      fprintf(stderr, "crucible ask: unknown option '%s'\n%s", x, usage);
      goto out;
    } else if (!question) {
      question = x;
    } else {
      fprintf(stderr, "crucible ask: one question at a time (quote it)\n%s", usage);
      goto out;
    }
  }
  if (!question || !*question || (n_with && env_arg)) {
    fputs(usage, stderr);
    goto out;
  }
  sbx_lang sl;
  if (sbx_lang_parse(language, &sl)) {
    fprintf(stderr, "crucible ask: unknown language '%s' (" LANG_NAMES_TEXT ")\n", language);
    goto out;
  }
  char *ctx_text = NULL;
  if (context && !(ctx_text = read_file(context))) {
    fprintf(stderr, "crucible ask: cannot read %s\n", context);
    goto out;
  }
  log_open(NULL, LOG_WARN);
  uv_loop_t loop;
  uv_loop_init(&loop);
  ask_cli *a = xcalloc(1, sizeof *a);
  a->json = json;
  a->quiet = quiet;
  a->status = 3;
  cfg settings;
  cfg_init_cli(&settings);
  const cfg *c = &settings;
  core_init(&a->core, &loop, c, NULL);
  /* The environment first: --with packages are built here (progress on
   * stderr), the answers' own dependencies later by the loop. */
  a->env.quiet = quiet;
  int env_status = a->core.runner_open ? cli_env_acquire(&loop, c, &a->core.runner, sl, env_arg, with, n_with, &a->env)
                                       : 0;
  if (env_status) {
    term_printf(stderr, "crucible ask: %s\n", a->env.error ? a->env.error : "no environment");
    cli_env_close(&a->env);
    core_close(&a->core);
    uv_run(&loop, UV_RUN_DEFAULT);
    core_free(&a->core);
    cfg_close(&settings);
    uv_loop_close(&loop);
    free(ctx_text);
    free(a);
    rc = env_status;
    goto out;
  }

  llm_config lc;
  agent_params p = {0};
  core_agent_params(c, &p, &lc);
  if (!quiet && !*lc.api_key && strstr(lc.base_url, "api.openai.com"))
    fprintf(stderr, "crucible: no API key: set %s (or llm.apiKeyEnv), or point OPENAI_BASE_URL at a local "
                    "server such as Ollama (http://localhost:11434/v1)\n", c->llm.api_key_env);
  p.task = "cli";
  p.question = question;
  p.language = sbx_lang_name(sl);
  p.context_text = ctx_text;
  p.context_uri = context;
  if (max_iter) p.max_iterations = max_iter;
  p.reflect = p.reflect && !no_reflect;
  if (!n_docs)
    for (int i = 0; i < c->docs.sources.n; i++) docs[n_docs++] = c->docs.sources.items[i];
  p.doc_sources = docs;
  p.n_doc_sources = n_docs;
  if (a->env.env) {
    env_kind k = env_resolved_kind(a->env.env);
    p.env = env_resolved_sbx(a->env.env);
    p.extendable = k == ENV_SYSTEM || k == ENV_PACKAGES;
    p.base_requirements = env_resolved_requirements(a->env.env, &p.n_base_requirements);
  } else {
    p.extendable = true;
  }
  agent_sink sink = {.phase = on_phase, .token = on_token, .reflection = on_reflection, .output = on_output,
                     .attempt = on_attempt, .done = on_done};
  uv_signal_init(&loop, &a->sigint);
  uv_signal_init(&loop, &a->sigterm);
  a->sigint.data = a->sigterm.data = a;
  uv_signal_start(&a->sigint, on_signal, SIGINT);
  uv_signal_start(&a->sigterm, on_signal, SIGTERM);
  int err = agent_task_start(core_engine(&a->core), &p, &sink, a, &a->task);
  llm_config_close(&lc);
  free(ctx_text);
  if (err) {
    fprintf(stderr, "crucible ask: cannot start: %s\n", strerror(-err));
    stop(a);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  cli_env_close(&a->env);
  uv_run(&loop, UV_RUN_DEFAULT);
  core_free(&a->core);
  cfg_close(&settings);
  int status = a->status;
  if (uv_loop_close(&loop) != 0) {
    log_error("internal error: the event loop still has open handles at exit");
    status = 70;
  }
  free(a);
  free(with);
  return status;
out:
  free(with);
  return rc;
}
