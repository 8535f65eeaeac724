/* The ask loop: a per-task state machine on the uv loop that retrieves
 * context, generates code with the LLM, checks it, runs it in the sandbox,
 * and on failure reflects and tries again, up to a limit. */
#ifndef CRUCIBLE_AGENT_LOOP_H
#define CRUCIBLE_AGENT_LOOP_H

#include <stdbool.h>
#include <uv.h>
#include <cjson/cJSON.h>

#include "check.h"
#include "client.h"
#include "docs.h"
#include "env.h"
#include "modindex.h"
#include "result.h"
#include "sandbox.h"
#include "store.h"

typedef enum agent_import_check {
  AGENT_IMPORTS_STATIC = 0, /* resolve imports against the module index */
  AGENT_IMPORTS_RUN,        /* run the imports alone in the sandbox first */
  AGENT_IMPORTS_BOTH,
} agent_import_check;

/* Which documentation goes into the prompt. */
typedef enum agent_docs_mode {
  AGENT_DOCS_SEARCH = 0, /* the chunks that best match the question, within the budget */
  AGENT_DOCS_ALL,        /* every page of the sources, cut at the budget */
} agent_docs_mode;

/* The engines a task uses; owned by the server, shared by every task. */
typedef struct agent_engine {
  uv_loop_t *loop;
  sbx_runner *runner;
  chk_context *chk;
  modindex *modindex;
  store *store;               /* may be NULL: no transcripts */
  docs_store *docs;           /* may be NULL: no documentation context */
  env_cache *envs;            /* builds the environments answers declare; NULL: none are installed */
  llm_client *llm;            /* every task's chats, each with the task's own llm_config; NULL = asks
                                 fail (no client, or the server is stopping) */
} agent_engine;

typedef struct agent_params {
  const char *task;           /* the label notifications carry */
  const void *owner;          /* the session asking: its runs share the sandbox queue fairly */
  const char *question;
  const char *language;       /* python | javascript | bash */
  const char *context_text;   /* an editor selection, may be NULL */
  const char *context_uri;
  int context_line;           /* the selection's first line: runtime errors are reported there */
  const char *docs_context;   /* documentation text for the prompt, may be NULL */
  const char *const *doc_sources; /* URLs / paths to crawl (or revalidate) and search */
  size_t n_doc_sources;
  const bool *doc_public_only;  /* NULL, or per source: fetch only from public addresses (docs_sync_opts) */
  agent_docs_mode docs_mode;
  int docs_budget_tokens;
  int docs_max_depth;
  int docs_max_pages;
  const char *docs_embedding_model; /* docs.embeddingModel: "" or NULL = lexical ranking; copied */
  int max_iterations;
  bool reflect;
  agent_import_check import_check;
  const char *const *deny_imports; /* NULL-terminated, may be NULL */
  sbx_limits limits;
  const sbx_env *env;         /* what the program can import (copied); NULL: the system */
  /* agent.installDependencies: an answer's declared dependencies (its
   * `dependencies`, a PEP 723 block in its code) are installed into a
   * packages environment, with base_requirements (copied: the request's
   * packages environment), before its checks and run. Only when env is the
   * system or such a packages environment (extendable); otherwise declared
   * dependencies are left to the import check. */
  bool install_dependencies;
  bool extendable;
  const char *const *base_requirements;
  size_t n_base_requirements;
  const llm_config *llm;      /* copied */
} agent_params;

/* What a task reports while it works; every callback gets the sink's ud.
 * Strings and the attempt are borrowed for the call. Results are typed
 * (result.h): the sink serialises what it sends. */
typedef struct agent_sink {
  void (*phase)(void *ud, int iteration, agent_phase phase, const char *detail);
  void (*token)(void *ud, int iteration, const char *text, size_t len);
  void (*reflection)(void *ud, int iteration, const char *text, size_t len);
  void (*output)(void *ud, int iteration, int stream, const char *text, size_t len);
  /* Each finished attempt, once (agent_attempt_json for its wire form). */
  void (*attempt)(void *ud, const agent_attempt *attempt);
  /* Once, at the end: the result, taken (free it with agent_result_free).
   * The task is gone when it is called. */
  void (*done)(void *ud, agent_result *result);
} agent_sink;

typedef struct agent_task agent_task;

/* Starts a task. Returns 0 and *out, or a negative errno (nothing called). */
int agent_task_start(agent_engine *engine, const agent_params *params, const agent_sink *sink, void *ud,
                     agent_task **out);
/* Aborts the HTTP transfer or kills the sandbox; done follows from the loop
 * with outcome AGENT_CANCELLED. No-op once the task's outcome is known; the
 * handle is invalid once done has been called. */
void agent_task_cancel(agent_task *task);

#endif
