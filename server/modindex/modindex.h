/* The module index of each sandbox interpreter: loaded from the on-disk
 * cache, or learned once by running the check module's probe program in the
 * real sandbox, then kept in memory for every session of the server. */
#ifndef CRUCIBLE_MODINDEX_MODINDEX_H
#define CRUCIBLE_MODINDEX_MODINDEX_H

#include <stdbool.h>

#include "check.h"
#include "dbuf.h"
#include "sandbox.h"

/* The index is ready (set non-NULL) or cannot be had (set NULL, error says
 * why). Called once per wait, from the loop or from inside agent_modindex_get
 * when the index is already known. */
typedef void (*agent_modindex_fn)(void *ud, const chk_modset *set, const char *error);

typedef struct agent_modindex_waiter {
  agent_modindex_fn cb;
  void *ud;
  struct agent_modindex_waiter *next;
} agent_modindex_waiter;

/* The index of one environment (an sbx_env with an id); private. */
typedef struct agent_modindex_env agent_modindex_env;

typedef struct agent_modindex {
  sbx_runner *runner;
  agent_modindex_env *envs; /* environments' indexes, most recently used first */
  int nenvs;
  char *interpreters[CHK_LANG_COUNT];
  chk_modset *sets[CHK_LANG_COUNT];
  char *errors[CHK_LANG_COUNT];
  sbx_run *probes[CHK_LANG_COUNT];
  agent_modindex_waiter *waiters[CHK_LANG_COUNT];
  dbuf probe_out[CHK_LANG_COUNT];
  bool closing;
} agent_modindex;

/* interpreters: paths per language (python, javascript, bash) used as cache
 * keys; the sandbox runs the same ones. */
void agent_modindex_init(agent_modindex *self, sbx_runner *runner, const char *const interpreters[CHK_LANG_COUNT]);
/* Cancels probes; waiters get (NULL, "shutting down"). */
void agent_modindex_close(agent_modindex *self);
/* The index if already known (no probe is started), else NULL. */
const chk_modset *agent_modindex_peek(agent_modindex *self, chk_language lang);
/* Gets the index, probing in the sandbox when neither memory nor the disk
 * cache has it. */
void agent_modindex_get(agent_modindex *self, chk_language lang, agent_modindex_fn cb, void *ud);
/* Drops a pending wait (a task cancelled while waiting). */
void agent_modindex_unwait(agent_modindex *self, chk_language lang, agent_modindex_fn cb, void *ud);

/* The same for the environment env (NULL: the system's, as above): one
 * index per (lang, env->id), learned by running the probe with env in the
 * sandbox, kept in memory and on disk with env->stamp, and learned again
 * when the stamp changes (a package installed). get adds a wait only once
 * per (cb, ud). */
const chk_modset *agent_modindex_peek_env(agent_modindex *self, chk_language lang, const sbx_env *env);
void agent_modindex_get_env(agent_modindex *self, chk_language lang, const sbx_env *env, agent_modindex_fn cb,
                            void *ud);
void agent_modindex_unwait_env(agent_modindex *self, chk_language lang, const sbx_env *env, agent_modindex_fn cb,
                               void *ud);

#endif
