/* The composition root: the long-lived engines every front door shares —
 * the sandbox runner, the tree-sitter checker, the module index, the
 * environments' cache, the transcript and docs stores and the LLM client —
 * built from the user's
 * settings. The LSP server (lsp/) and the one-shot commands (cli/) are two
 * front doors to one core; neither builds engines of its own. */
#ifndef CRUCIBLE_CORE_CORE_H
#define CRUCIBLE_CORE_CORE_H

#include <stdbool.h>
#include <uv.h>

#include "check.h"
#include "client.h"
#include "config.h"
#include "docs.h"
#include "env.h"
#include "loop.h"
#include "modindex.h"
#include "sandbox.h"
#include "store.h"

typedef struct core_options {
  bool warm;        /* keep a python sandbox ready (a long-lived server) */
  bool no_stores;   /* no transcript or docs store (a command that needs neither) */
} core_options;

typedef struct core {
  uv_loop_t *loop;
  sbx_runner runner;       /* valid when runner_open */
  bool runner_open;
  modindex modindex;
  env_cache *envs;         /* built environments; NULL when their folder cannot be made (logged) */
  store *store;            /* NULL: transcripts are off (logged why) */
  docs_store *docs;        /* NULL: documentation context is off */
  llm_client *llm;         /* NULL once closed, or when it could not be made */
  /* private */
  chk_context *chk;
  bool chk_failed;
  agent_engine engine;
} core;

/* Builds the engines from the user's settings (the sandbox's limits become
 * the ceilings no client may raise). A part that cannot be made is logged
 * and left off; the core is usable either way. */
void core_init(core *self, uv_loop_t *loop, const cfg *settings, const core_options *opts);
/* The checker, made on first use (its grammars' tables and queries cost
 * ~3 MiB an idle server need not hold); NULL if the grammars failed to load
 * (a build bug; logged once). */
chk_context *core_checker(core *self);
/* The engines an ask uses, its checker made first. Valid until core_free. */
agent_engine *core_engine(core *self);
/* Stops what keeps the loop alive: the LLM client (a chat or ping still in
 * flight ends as cancelled), the module index's probes, the environments'
 * builds (the cache goes once the last environment in use is let go) and
 * the runner (every run killed, cgroups removed). The loop then runs dry. */
void core_close(core *self);
/* Frees the rest once the loop has no more handles. */
void core_free(core *self);

/* ---- settings → engine parameters (core/settings.c) -------------------- */

/* The sandbox's limits in the settings. */
void core_sandbox_limits(const cfg_sandbox *sb, sbx_limits *limits);
/* A runner configuration from the settings: zeroed, then the interpreters
 * and the sandbox's host uid/gid (the caller adds limits, concurrency,
 * warm). Strings are borrowed from sb. */
void core_sandbox_config(const cfg_sandbox *sb, sbx_config *sc);
/* The LLM configuration of the settings (init'ed here; close it with
 * llm_config_close). */
void core_llm_config(const cfg *settings, llm_config *lc);
/* What an ask takes from the settings: iterations, reflection, import checks
 * and deny-list, sandbox limits, the documentation options, and the LLM (lc,
 * init'ed here, pointed to by p->llm; close it after agent_task_start). The
 * request's own fields (question, context, task, docs sources) are the
 * caller's. */
void core_agent_params(const cfg *settings, agent_params *p, llm_config *lc);

/* ---- doctor (core/doctor.c) --------------------------------------------- */

/* The report (taken by the callee). */
typedef void (*core_doctor_fn)(void *ud, cJSON *report);
/* What works here, for `settings` (copied): server paths, the sandbox as
 * this core's runner enforces it (probes run through its queue), the
 * checks, the settings, and, unless offline, the LLM endpoint pinged
 * through the core's client. cb runs once, from the loop. Returns 0 or a
 * negative error (nothing called). */
int core_doctor_start(core *self, const cfg *settings, bool offline, core_doctor_fn cb, void *ud);

#endif
