/* The engines every session shares: the sandbox runner, the tree-sitter
 * checker, the module index, the transcript and docs stores, and the LLM
 * client. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "jobs.h"
#include "methods.h"

void lsp_engines_init(lsp_server *srv) {
  const cfg_sandbox *sb = &srv->base.sandbox;
  sbx_config sc;
  lsp_sandbox_config(sb, &sc);
  sc.max_concurrent = sb->concurrency;
  sc.warm = true; /* a long-lived server: keep a python sandbox ready */
  /* The user's settings are the ceilings a client may not raise. */
  lsp_sandbox_limits_of(sb, &sc.defaults);
  sc.max = sc.defaults;
  int err = sbx_runner_init(&srv->runner, srv->loop, &sc);
  if (err) log_error("the sandbox cannot be set up: %s", strerror(-err));
  srv->runner_open = err == 0;
  const char *problem = srv->runner_open ? sbx_runner_problem(&srv->runner) : NULL;
  if (problem) log_warn("sandbox: %s", problem);

  agent_modindex_init(&srv->modindex, &srv->runner, sc.interpreters);

  char err_text[512];
  srv->store = store_open(NULL, err_text, sizeof err_text);
  if (!srv->store) log_warn("transcripts are off: %s", err_text);

  srv->docs = docs_store_open(NULL, err_text, sizeof err_text);
  if (!srv->docs) log_warn("documentation context is off: %s", err_text);

  srv->engine.loop = srv->loop;
  srv->engine.runner = &srv->runner;
  srv->engine.modindex = &srv->modindex;
  srv->engine.store = srv->store;
  srv->engine.docs = srv->docs;

  /* One LLM client for the server's life: its connections are reused and
   * what it learns of each endpoint serves every later ask, whichever
   * client's settings they come with. */
  err = llm_client_new(srv->loop, &srv->engine.llm);
  if (err) log_error("asks are off: the LLM client cannot be set up: %s", strerror(-err));
}

static void runner_closed(sbx_runner *runner) {
  (void)runner;
}

chk_context *lsp_chk(lsp_server *srv) {
  /* Made on first use: the grammars' tables and compiled queries cost ~3 MiB
   * that an idle server need not hold. */
  if (!srv->chk && !srv->chk_failed) {
    char *msg = NULL;
    srv->chk = chk_context_new(&msg);
    if (!srv->chk) {
      /* Queries are built into the binary: a failure here is a build bug. */
      log_error("checks unavailable: %s", msg ? msg : "unknown error");
      free(msg);
      srv->chk_failed = true;
    }
    srv->engine.chk = srv->chk;
  }
  return srv->chk;
}

void lsp_engines_close(lsp_server *srv) {
  /* Sessions have cancelled their chats; this ends what is left (a CLI ask,
   * a doctor's ping) and closes the pooled connections, so the loop can run
   * dry. Asks that try a chat after this fail. */
  llm_client_free(srv->engine.llm);
  srv->engine.llm = NULL;
  agent_modindex_close(&srv->modindex);
  if (srv->runner_open) {
    srv->runner_open = false;
    sbx_runner_close(&srv->runner, runner_closed);
  }
}

void lsp_engines_free(lsp_server *srv) {
  chk_context_free(srv->chk);
  srv->chk = NULL;
  chk_shutdown();
  store_free(srv->store);
  srv->store = NULL;
  docs_store_free(srv->docs);
  srv->docs = NULL;
}
