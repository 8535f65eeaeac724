/* The default of every numeric and string setting, and the bounds that
 * are checked outside config/ too: the one place each is written (the enum
 * settings' defaults are named in cfg_init). Constants only, no code, so any
 * folder may include it (meson: config_defaults_dep) — the sandbox's, the
 * LLM client's and the crawler's own "0 means default" use these, so a
 * component made without settings behaves as one made with the defaults. */
#ifndef CRUCIBLE_CONFIG_DEFAULTS_H
#define CRUCIBLE_CONFIG_DEFAULTS_H

/* llm */
#define CFG_DEFAULT_LLM_BASE_URL "https://api.openai.com/v1"
#define CFG_DEFAULT_LLM_MODEL "gpt-4o-mini"
#define CFG_DEFAULT_LLM_API_KEY_ENV "OPENAI_API_KEY"
#define CFG_DEFAULT_LLM_TIMEOUT_MS 120000
#define CFG_DEFAULT_LLM_MAX_RETRIES 2

/* agent */
#define CFG_DEFAULT_AGENT_MAX_ITERATIONS 3
#define CFG_MAX_AGENT_MAX_ITERATIONS 20 /* agent.maxIterations, an ask's maxIterations, --max-iterations */

/* sandbox (run limits: sbx_limits_default) */
#define CFG_DEFAULT_SANDBOX_TIMEOUT_MS 10000
#define CFG_DEFAULT_SANDBOX_MEMORY_MB 512
#define CFG_DEFAULT_SANDBOX_CPU_SECONDS 10
#define CFG_DEFAULT_SANDBOX_PIDS 64
#define CFG_DEFAULT_SANDBOX_OUTPUT_BYTES (1 << 20)
#define CFG_DEFAULT_SANDBOX_DISK_MB 64
/* The host uid/gid of sandboxed programs under a root server: nobody/nogroup
 * on Debian, owns no files, holds no privileges. */
#define CFG_DEFAULT_SANDBOX_HOST_ID 65534
/* sandbox.image: the container image of the docker backend. */
#define CFG_DEFAULT_SANDBOX_IMAGE "python:3.12-slim"
/* Environments (docs/environments.md). */
#define CFG_DEFAULT_SANDBOX_ENVIRONMENT "\"system\""
#define CFG_DEFAULT_SANDBOX_PACKAGE_INDEX "https://pypi.org/simple"
#define CFG_DEFAULT_SANDBOX_NPM_REGISTRY "https://registry.npmjs.org/"
#define CFG_DEFAULT_SANDBOX_ENV_CACHE_MB 4096
/* sandbox.interpreters.<name>: the language registry's (util/lang.h). */

/* docs */
#define CFG_DEFAULT_DOCS_MAX_DEPTH 20
/* Pages (fetched, revalidated or read) per sync: a safety cap, high enough
 * for a whole real documentation set (the Python 3.11 docs are 530 pages),
 * with DOCS_DEFAULT_MAX_TOTAL_BYTES (64 MB) as the other bound. */
#define CFG_DEFAULT_DOCS_MAX_PAGES 5000
#define CFG_DEFAULT_DOCS_BUDGET_TOKENS 6000

#endif
