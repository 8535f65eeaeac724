/* The environment a request's program runs in: its EnvSpec (the request's
 * `environment`, else the client's sandbox.environment), resolved against
 * the client's workspace folders, or built (phase "installing" with
 * $/progress); and crucible/environments. */
#ifndef CRUCIBLE_LSP_ENVIRONMENTS_H
#define CRUCIBLE_LSP_ENVIRONMENTS_H

#include "env.h"
#include "server.h"

typedef struct lsp_env_job lsp_env_job;

/* The environment is ready (env, taken) or cannot be had (NULL, error). */
typedef void (*lsp_env_fn)(void *ud, env_resolved *env, const char *error);

/* Resolves the environment of call's program in lang. spec_json is the
 * request's `environment` (NULL: the client's setting). Returns 1 with *out
 * when it is ready (cb is not called); 0 when it is being built: cb follows
 * exactly once (unless lsp_env_job_cancel), meanwhile crucible/phase
 * "installing" and $/progress (call->progress_token) go to the client;
 * -EINVAL with *err (caller frees) for a spec or environment the request
 * must change; another -errno with *err when it cannot be built. */
int lsp_env_acquire(lsp_client *c, rpc_call *call, const cJSON *spec_json, sbx_lang lang, lsp_env_fn cb, void *ud,
                    env_resolved **out, lsp_env_job **job, char **err);
/* PEP 723: a `# /// script` block in code (python) adds its dependencies
 * to the environment: the request's spec_json, else the client's setting,
 * when that is the system or a python packages environment. Sets *out to
 * the new packages spec (caller deletes), or NULL when code declares
 * nothing or the environment is another kind (a venv, the workspace). Returns 0, or
 * -EINVAL with *err (caller frees) for a malformed block or spec. */
int lsp_env_spec_pep723(lsp_client *c, const cJSON *spec_json, sbx_lang lang, const char *code, cJSON **out,
                        char **err);
/* The package names (no version or extras) a PEP 723 block in code
 * declares, NULL-terminated (chk_options.declared); NULL when none. Free
 * with lsp_declared_free. */
char **lsp_declared_packages(const char *code);
void lsp_declared_free(char **names);
/* Drops a build wait: cb is not called. */
void lsp_env_job_cancel(lsp_env_job *job);

/* The environment live diagnostics of lang use: the client's setting when
 * it resolves without building, else NULL (the system). Caller frees. */
env_resolved *lsp_env_for_diagnostics(lsp_client *c, chk_language lang);

/* crucible/environments {} → [{id, kind, language, requirements, sizeBytes, lastUsed, modules}] */
void lsp_environments(rpc_call *call, const cJSON *params);

#endif
