/* Crucible's settings: one schema (llm, agent, sandbox, docs), filled from
 * defaults, the environment, the user's config file and then the client
 * (initializationOptions, workspace/didChangeConfiguration). */
#ifndef CRUCIBLE_CONFIG_H
#define CRUCIBLE_CONFIG_H

#include <stdbool.h>
#include <cjson/cJSON.h>

#include "dbuf.h"
#include "defaults.h"
#include "lang.h"

#define CFG_STR 512
#define CFG_MAX_LIST 32
#define CFG_MAX_DOC_SOURCES CFG_MAX_LIST

/* A list of owned strings; items[n] is always NULL. */
typedef struct cfg_strlist {
  char *items[CFG_MAX_LIST + 1];
  int n;
} cfg_strlist;

typedef enum cfg_source {
  CFG_SOURCE_USER,    /* the user's own config file: may set anything */
  CFG_SOURCE_CLIENT,  /* initializationOptions / didChangeConfiguration: may
                         tighten the sandbox and lower what a task may cost
                         (iterations, retries, timeouts, crawl bounds), may
                         not redirect the LLM; a model change is warned about */
} cfg_source;

/* The settings that are enumerations. Each has one name table in config.c:
 * cfg_*_name() gives the name a value has in the settings' JSON, and
 * cfg_*_parse() reads one (0, or -EINVAL for an unknown name). */
typedef enum cfg_structured_output {
  CFG_STRUCTURED_AUTO = 0,    /* "auto" */
  CFG_STRUCTURED_JSON_SCHEMA, /* "json_schema" */
  CFG_STRUCTURED_JSON_OBJECT, /* "json_object" */
  CFG_STRUCTURED_TEXT,        /* "text" */
} cfg_structured_output;
const char *cfg_structured_output_name(cfg_structured_output v);
int cfg_structured_output_parse(const char *name, cfg_structured_output *out);

typedef enum cfg_import_check {
  CFG_IMPORT_CHECK_STATIC = 0, /* "static": resolve against the module index */
  CFG_IMPORT_CHECK_RUN,        /* "run": run the imports alone in the sandbox */
  CFG_IMPORT_CHECK_BOTH,       /* "both" */
} cfg_import_check;
const char *cfg_import_check_name(cfg_import_check v);
int cfg_import_check_parse(const char *name, cfg_import_check *out);

typedef enum cfg_backend {
  CFG_BACKEND_BWRAP = 0, /* "bwrap" */
  CFG_BACKEND_DOCKER,    /* "docker": a container engine's API (Docker, Podman) */
} cfg_backend;
const char *cfg_backend_name(cfg_backend v);
int cfg_backend_parse(const char *name, cfg_backend *out);

typedef enum cfg_docs_mode {
  CFG_DOCS_SEARCH = 0, /* "search": the best-ranked chunks within the budget */
  CFG_DOCS_ALL,        /* "all": every page of the sources, cut at the budget */
} cfg_docs_mode;
const char *cfg_docs_mode_name(cfg_docs_mode v);
int cfg_docs_mode_parse(const char *name, cfg_docs_mode *out);

typedef enum cfg_workspace_access {
  CFG_WORKSPACE_NONE = 0, /* "none": the workspace is not in the sandbox */
  CFG_WORKSPACE_READ,     /* "read": its folders are mounted read-only in every sandbox */
} cfg_workspace_access;
const char *cfg_workspace_access_name(cfg_workspace_access v);
int cfg_workspace_access_parse(const char *name, cfg_workspace_access *out);

typedef struct cfg_llm {
  char base_url[CFG_STR];
  char model[CFG_STR];
  char api_key_env[128];
  double temperature;
  int timeout_ms;
  int max_retries;
  cfg_structured_output structured_output;
} cfg_llm;

typedef struct cfg_agent {
  int max_iterations;
  bool reflect;
  cfg_import_check import_check;
  cfg_strlist deny_imports;   /* top-level modules that are never allowed (status "denied") */
  bool install_dependencies;  /* an answer's declared dependencies are installed before it runs */
} cfg_agent;

typedef struct cfg_sandbox {
  cfg_backend backend;        /* user file only */
  char image[CFG_STR];        /* docker: the image programs run in (user file only) */
  cfg_strlist docker_hosts;   /* docker: engines, "unix:///path" or "tcp://HOST:PORT" (TLS), each
                                 optionally "?max=N" (user file only; empty: DOCKER_HOST or the
                                 local socket) */
  char docker_cert_path[CFG_STR]; /* docker: ca.pem, cert.pem, key.pem for tcp:// engines (user file
                                 only; empty: DOCKER_CERT_PATH, then ~/.docker); TLS is verified */
  int timeout_ms;
  int memory_mb;
  int cpu_seconds;
  int pids;
  int output_bytes;
  int disk_mb;
  int concurrency;
  bool network;               /* always false: no backend grants network */
  int uid, gid;               /* host ids of sandboxed programs when the server is root (user file only, never 0) */
  char interpreters[LANG_COUNT][256]; /* by lang_id: sandbox.interpreters.<name> */
  char environment[2048];     /* the default EnvSpec, as compact JSON ("\"system\"", {...}); checked where used */
  char package_index[512];    /* user file only: pip's --index-url */
  char npm_registry[512];     /* user file only: npm's --registry */
  int env_cache_mb;           /* user file only: built environments kept (least recently used go) */
  cfg_workspace_access workspace_access; /* user file only: the workspace folders in every sandbox */
} cfg_sandbox;

typedef struct cfg_docs {
  cfg_strlist sources;
  cfg_docs_mode mode;
  int max_depth;
  int max_pages;
  int budget_tokens;
  char embedding_model[CFG_STR]; /* "" = no embeddings: lexical ranking (docs/docs-context.md) */
  bool allow_local;           /* user file only: a client may name local paths outside its workspace */
  bool allow_private_network; /* user file only: a client may name URLs on loopback/private addresses */
} cfg_docs;

typedef struct cfg {
  cfg_llm llm;
  cfg_agent agent;
  cfg_sandbox sandbox;
  cfg_docs docs;
} cfg;

/* Defaults, then OPENAI_BASE_URL / CRUCIBLE_MODEL from the environment. */
void cfg_init(cfg *self);
void cfg_close(cfg *self);
/* Deep copy (dst must not hold owned data: cfg_close it first). */
void cfg_copy(cfg *dst, const cfg *src);

/* Applies a settings object ({llm:{...}, agent:{...}, ...}). Wrong types and
 * out-of-range values are rejected (the old value stays) with a message that
 * names the key; unknown keys are warned about; client-sourced values that
 * would loosen the sandbox or raise a cost bound (relative to `base`, the
 * user-level settings) or redirect the LLM are refused; a client-sourced
 * llm.model other than base's is applied with a warning. Messages go to `msgs` one per line, each
 * starting with "error: " or "warning: ". Returns the number of errors. */
int cfg_apply(cfg *self, const cJSON *json, cfg_source src, const cfg *base, dbuf *msgs);

/* Loads $XDG_CONFIG_HOME/crucible/config.json (or ~/.config/...). A missing
 * file is fine (returns 0); unreadable or invalid JSON returns -1 with a
 * message in msgs. The environment's OPENAI_BASE_URL and CRUCIBLE_MODEL win
 * over the file. */
int cfg_load_user(cfg *self, dbuf *msgs);

/* For the command line: cfg_init, then cfg_load_user, with every message
 * printed on stderr. */
void cfg_init_cli(cfg *self);

/* The settings as JSON (the API key itself never appears: only the name of
 * its variable and whether it is set). */
cJSON *cfg_to_json(const cfg *self);

/* The path of the user config file into buf; returns buf. */
const char *cfg_user_path(char *buf, size_t cap);

#endif
