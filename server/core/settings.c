/* The user's settings as the engines' parameters: one mapping for the
 * server, every CLI command and the doctor. */
#include "core.h"

#include <string.h>

void core_sandbox_limits(const cfg_sandbox *sb, sbx_limits *l) {
  memset(l, 0, sizeof *l);
  l->timeout_ms = sb->timeout_ms;
  l->memory_mb = sb->memory_mb;
  l->cpu_seconds = sb->cpu_seconds;
  l->pids = sb->pids;
  l->output_bytes = sb->output_bytes;
  l->disk_mb = sb->disk_mb;
}

void core_sandbox_config(const cfg_sandbox *sb, sbx_config *sc) {
  memset(sc, 0, sizeof *sc);
  sc->host_uid = sb->uid;
  sc->host_gid = sb->gid;
  sc->backend = sb->backend == CFG_BACKEND_DOCKER ? SBX_BACKEND_DOCKER : SBX_BACKEND_BWRAP;
  sc->image = sb->image[0] ? sb->image : NULL;
  /* Several engines share the runs (engines.c); the list is NULL-terminated. */
  sc->docker_host = sb->docker_hosts.n ? sb->docker_hosts.items[0] : NULL;
  sc->docker_hosts = sb->docker_hosts.n ? (const char *const *)sb->docker_hosts.items : NULL;
  sc->docker_cert_path = sb->docker_cert_path[0] ? sb->docker_cert_path : NULL;
  for (int l = 0; l < SBX_LANG_COUNT; l++) sc->interpreters[l] = sb->interpreters[l];
  sc->seccomp_cache = true;
}

void core_llm_config(const cfg *settings, llm_config *lc) {
  llm_config_init(lc);
  llm_config_resolve(lc, settings->llm.base_url, settings->llm.model, settings->llm.api_key_env);
  lc->temperature = settings->llm.temperature;
  lc->timeout_ms = settings->llm.timeout_ms;
  lc->max_retries = settings->llm.max_retries;
  switch (settings->llm.structured_output) {
  case CFG_STRUCTURED_AUTO: lc->structured_output = LLM_MODE_AUTO; break;
  case CFG_STRUCTURED_JSON_SCHEMA: lc->structured_output = LLM_MODE_JSON_SCHEMA; break;
  case CFG_STRUCTURED_JSON_OBJECT: lc->structured_output = LLM_MODE_JSON_OBJECT; break;
  case CFG_STRUCTURED_TEXT: lc->structured_output = LLM_MODE_TEXT; break;
  }
}

void core_agent_params(const cfg *settings, agent_params *p, llm_config *lc) {
  core_llm_config(settings, lc);
  p->llm = lc;
  p->max_iterations = settings->agent.max_iterations;
  p->reflect = settings->agent.reflect;
  p->install_dependencies = settings->agent.install_dependencies;
  p->deny_imports = (const char *const *)settings->agent.deny_imports.items;
  switch (settings->agent.import_check) {
  case CFG_IMPORT_CHECK_STATIC: p->import_check = AGENT_IMPORTS_STATIC; break;
  case CFG_IMPORT_CHECK_RUN: p->import_check = AGENT_IMPORTS_RUN; break;
  case CFG_IMPORT_CHECK_BOTH: p->import_check = AGENT_IMPORTS_BOTH; break;
  }
  core_sandbox_limits(&settings->sandbox, &p->limits);
  p->docs_mode = settings->docs.mode == CFG_DOCS_ALL ? AGENT_DOCS_ALL : AGENT_DOCS_SEARCH;
  p->docs_budget_tokens = settings->docs.budget_tokens;
  p->docs_max_depth = settings->docs.max_depth;
  p->docs_max_pages = settings->docs.max_pages;
  p->docs_embedding_model = settings->docs.embedding_model;
}
