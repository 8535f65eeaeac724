/* The engines every front door shares, made once from the user's settings
 * and closed once when the process ends. */
#include "core.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

void core_init(core *self, uv_loop_t *loop, const cfg *settings, const core_options *opts) {
  memset(self, 0, sizeof *self);
  self->loop = loop;
  const cfg_sandbox *sb = &settings->sandbox;
  sbx_config sc;
  core_sandbox_config(sb, &sc);
  sc.max_concurrent = sb->concurrency;
  sc.warm = opts && opts->warm;
  /* The user's settings are the defaults and the ceilings a client may not
   * raise. */
  core_sandbox_limits(sb, &sc.defaults);
  sc.max = sc.defaults;
  int err = sbx_runner_init(&self->runner, loop, &sc);
  if (err) log_error("the sandbox cannot be set up: %s", strerror(-err));
  self->runner_open = err == 0;
  const char *problem = self->runner_open ? sbx_runner_problem(&self->runner) : NULL;
  if (problem) log_warn("sandbox: %s", problem);

  modindex_init(&self->modindex, &self->runner, sc.interpreters);

  /* Environments are built with the user's own indexes (user file only). */
  env_cache_config ec = {.package_index = sb->package_index, .npm_registry = sb->npm_registry,
                         .cache_mb = sb->env_cache_mb};
  core_sandbox_config(sb, &ec.sandbox);
  char *env_err = NULL;
  if (env_cache_new(loop, &ec, &self->envs, &env_err)) {
    log_warn("environments cannot be built: %s", env_err);
    free(env_err);
  }

  if (!opts || !opts->no_stores) {
    char err_text[512];
    self->store = store_open(NULL, err_text, sizeof err_text);
    if (!self->store) log_warn("transcripts are off: %s", err_text);
    self->docs = docs_store_open(NULL, err_text, sizeof err_text);
    if (!self->docs) log_warn("documentation context is off: %s", err_text);
  }

  /* One LLM client for the process's life: its connections are reused and
   * what it learns of each endpoint serves every later ask, whichever
   * client's settings they come with. */
  err = llm_client_new(loop, &self->llm);
  if (err) log_error("asks are off: the LLM client cannot be set up: %s", strerror(-err));

  self->engine.loop = loop;
  self->engine.runner = &self->runner;
  self->engine.modindex = &self->modindex;
  self->engine.store = self->store;
  self->engine.docs = self->docs;
  self->engine.llm = self->llm;
  self->engine.envs = self->envs;
}

chk_context *core_checker(core *self) {
  if (!self->chk && !self->chk_failed) {
    char *msg = NULL;
    self->chk = chk_context_new(&msg);
    if (!self->chk) {
      /* Queries are built into the binary: a failure here is a build bug. */
      log_error("checks unavailable: %s", msg ? msg : "unknown error");
      free(msg);
      self->chk_failed = true;
    }
  }
  return self->chk;
}

agent_engine *core_engine(core *self) {
  self->engine.chk = core_checker(self);
  return &self->engine;
}

static void runner_closed(sbx_runner *runner) {
  (void)runner;
}

static void envs_closed(void *ud) {
  core *self = ud;
  self->envs = self->engine.envs = NULL;
}

void core_close(core *self) {
  /* Sessions have cancelled their chats; this ends what is left (a CLI ask,
   * a doctor's ping) and closes the pooled connections. Asks that try a
   * chat after this fail. */
  llm_client_free(self->llm);
  self->llm = self->engine.llm = NULL;
  modindex_close(&self->modindex);
  self->engine.envs = NULL; /* asks that go on install nothing more */
  if (self->envs) env_cache_close(self->envs, envs_closed, self);
  if (self->runner_open) {
    self->runner_open = false;
    sbx_runner_close(&self->runner, runner_closed);
  }
}

void core_free(core *self) {
  chk_context_free(self->chk);
  self->chk = self->engine.chk = NULL;
  chk_shutdown();
  store_free(self->store);
  docs_store_free(self->docs);
  self->store = self->engine.store = NULL;
  self->docs = self->engine.docs = NULL;
}
