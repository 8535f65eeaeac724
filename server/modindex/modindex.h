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
 * why). Called once per wait, from the loop or from inside modindex_get
 * when the index is already known. */
typedef void (*modindex_fn)(void *ud, const chk_modset *set, const char *error);

typedef struct modindex_waiter {
  modindex_fn cb;
  void *ud;
  struct modindex_waiter *next;
} modindex_waiter;

/* The index of one environment (an sbx_env with an id); private. */
typedef struct modindex_env modindex_env;

typedef struct modindex {
  sbx_runner *runner;
  modindex_env *envs; /* environments' indexes, most recently used first */
  int nenvs;
  char *interpreters[CHK_LANG_COUNT];
  chk_modset *sets[CHK_LANG_COUNT];
  char *errors[CHK_LANG_COUNT];
  sbx_run *probes[CHK_LANG_COUNT];
  modindex_waiter *waiters[CHK_LANG_COUNT];
  dbuf probe_out[CHK_LANG_COUNT];
  bool closing;
} modindex;

/* interpreters: paths per language (python, javascript, bash) used as cache
 * keys; the sandbox runs the same ones. */
void modindex_init(modindex *self, sbx_runner *runner, const char *const interpreters[CHK_LANG_COUNT]);
/* Cancels probes; waiters get (NULL, "shutting down"). */
void modindex_close(modindex *self);
/* The index if already known (no probe is started), else NULL. */
const chk_modset *modindex_peek(modindex *self, chk_language lang);
/* Gets the index, probing in the sandbox when neither memory nor the disk
 * cache has it. */
void modindex_get(modindex *self, chk_language lang, modindex_fn cb, void *ud);
/* Drops a pending wait (a task cancelled while waiting). */
void modindex_unwait(modindex *self, chk_language lang, modindex_fn cb, void *ud);

/* The same for the environment env (NULL: the system's, as above): one
 * index per (lang, env->id), learned by running the probe with env in the
 * sandbox, kept in memory and on disk with env->stamp, and learned again
 * when the stamp changes (a package installed). get adds a wait only once
 * per (cb, ud). */
const chk_modset *modindex_peek_env(modindex *self, chk_language lang, const sbx_env *env);
void modindex_get_env(modindex *self, chk_language lang, const sbx_env *env, modindex_fn cb,
                            void *ud);
void modindex_unwait_env(modindex *self, chk_language lang, const sbx_env *env, modindex_fn cb,
                               void *ud);

#endif
