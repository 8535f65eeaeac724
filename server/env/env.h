/* Environments: what a sandboxed program can import beyond the system
 * (docs/environments.md). EnvSpec parsing, resolution to folders, and the
 * content-addressed cache of environments Crucible builds with pip or npm
 * in a sandbox of their own. */
#ifndef CRUCIBLE_ENV_H
#define CRUCIBLE_ENV_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "sandbox.h"

#define ENV_MAX_REQUIREMENTS 64
#define ENV_MAX_REQUIREMENT_LEN 200
#define ENV_MAX_PATH 1024

typedef enum env_kind { ENV_SYSTEM, ENV_WORKSPACE, ENV_VENV, ENV_PACKAGES, ENV_IMAGE } env_kind;

/* "system", "workspace", "venv", "packages", "image". */
const char *env_kind_name(env_kind kind);

/* ---- EnvSpec (pure) ----------------------------------------------------- */

typedef struct env_spec {
  env_kind kind;
  char *path;          /* venv: as given */
  char *image;         /* image */
  bool has_language;   /* packages: language given */
  sbx_lang language;
  char **requirements; /* packages: as given (checked against the language by env_requirements_normalize) */
  size_t n;
} env_spec;

/* Parses an EnvSpec: "system" | "workspace" | {kind:"venv", path} |
 * {kind:"packages", language?, requirements:[string]} | {kind:"image",
 * image}; NULL or JSON null is "system". self is set either way (close it).
 * Returns 0, or -EINVAL with *err (caller frees) naming what is wrong. */
int env_spec_parse(env_spec *self, const cJSON *json, char **err);
/* The command line's form: system | workspace | venv:PATH | image:NAME. */
int env_spec_parse_arg(env_spec *self, const char *arg, char **err);
/* A packages spec from a list of requirements (copied); lang < 0: the run's. */
void env_spec_packages(env_spec *self, int lang, const char *const *reqs, size_t n);
void env_spec_close(env_spec *self);
/* The spec as the protocol writes it. Caller owns the tree. */
cJSON *env_spec_to_json(const env_spec *self);

/* Checks one requirement for lang (python: PEP 508 without direct
 * references; javascript: name or @scope/name with an optional @range) and
 * returns its normal form (python: the name normalised as PEP 503 says,
 * extras sorted, no whitespace in the version specifier). NULL with *err
 * (caller frees) when it is refused. */
char *env_requirement_normalize(sbx_lang lang, const char *req, char **err);
/* Every requirement checked and normalised, sorted, duplicates dropped:
 * returns how many went to *out (a new array; env_strv_free), or -EINVAL
 * with *err. */
int env_requirements_normalize(sbx_lang lang, const char *const *reqs, size_t n, char ***out, char **err);
void env_strv_free(char **v, size_t n);
/* PEP 503: lower case, every run of '-', '_', '.' one '-'. New string. */
char *env_pep503_name(const char *name, size_t len);

/* The cache key: SHA-256 (hex) over the language, the interpreter's path
 * and version, the index URL and the normalised requirements. Pure. */
void env_key(sbx_lang lang, const char *interp, const char *interp_version, const char *index,
             const char *const *reqs, size_t n, char out[65]);
/* The interpreter's version as the key uses it: "python3.11" when the
 * resolved interpreter is named so, else "<size>-<mtime>" of the resolved
 * file. Writes "" when it cannot be read. */
void env_interp_version(const char *interp, char *buf, size_t cap);

/* ---- a resolved environment ---------------------------------------------- */

typedef struct env_resolved env_resolved;

/* What the sandbox gets for it; NULL when nothing beyond the system. */
const sbx_env *env_resolved_sbx(const env_resolved *self);
const char *env_resolved_id(const env_resolved *self);
env_kind env_resolved_kind(const env_resolved *self);
/* The folder bound into the sandbox (NULL: system). */
const char *env_resolved_path(const env_resolved *self);
/* {id, kind, language, path?, requirements?, image?, imageId?}: RunResult.environment. */
cJSON *env_resolved_json(const env_resolved *self);
/* Releases it (and its hold on a cached environment). NULL is a no-op. */
void env_resolved_free(env_resolved *self);

/* sandbox.workspaceAccess "read": binds the workspace folders read-only
 * and adds them to PYTHONPATH / NODE_PATH; the id and stamp change with
 * them. Returns 0 or -E2BIG (too many folders: *err). */
int env_resolved_add_workspace(env_resolved *self, const char *const *roots, char **err);

/* What resolution may use. */
typedef struct env_local_opts {
  sbx_lang lang;
  const char *const *roots;  /* the client's workspace folders (real paths), NULL-terminated; may be NULL */
  const char *virtual_env;   /* the server's $VIRTUAL_ENV; may be NULL */
  bool any_path;             /* a venv path may lie outside the roots (user file, command line) */
  long reach_uid, reach_gid; /* a root server's sandbox ids: folders must be reachable by them; -1: no check */
} env_local_opts;

/* Resolves system, workspace and venv specs (a few stat calls; nothing
 * runs). A bash program always gets the system. Returns 0 and *out, or
 * -EINVAL / -ENOENT / -EACCES with *err saying what to change. Packages
 * and image specs are -ENOTSUP here (the cache builds packages). */
int env_resolve_local(const env_spec *spec, const env_local_opts *o, env_resolved **out, char **err);
/* The system environment for lang. */
env_resolved *env_resolved_system(sbx_lang lang);
/* The container image image (a name, as given) whose ID on the engine is
 * image_id: its id and stamp are the ID, the sandbox runs that ID (a
 * container-engine backend: sbx_image_ensure gives the ID). Pure. */
env_resolved *env_resolved_image(sbx_lang lang, const char *image, const char *image_id);

/* ---- the cache of built environments ---------------------------------- */

typedef struct env_cache_config {
  const char *dir;            /* NULL: $XDG_CACHE_HOME/crucible/envs (else ~/.cache/...) */
  const char *package_index;  /* pip's --index-url */
  const char *npm_registry;   /* npm's --registry */
  long cache_mb;              /* total size kept (least recently used go first); 0: no cap */
  sbx_config sandbox;         /* interpreters, host ids, bwrap: the installer's runner; its limits
                                 are the installer's own (docs/environments.md) */
} env_cache_config;

typedef struct env_cache env_cache;
typedef struct env_waiter env_waiter;

typedef struct env_build_cbs {
  /* One line of the installer's output, and a rough percentage (-1: none). May be NULL. */
  void (*progress)(void *ud, const char *line, int percent);
  /* The build finished: env (taken) or NULL with error. Called exactly once
   * per wait unless the wait was cancelled; never from inside
   * env_cache_acquire. */
  void (*done)(void *ud, env_resolved *env, const char *error);
} env_build_cbs;

/* Opens the cache folder (made when missing) and removes leftovers of
 * builds whose process is gone. loop may be NULL (list/remove/prune only:
 * nothing is built). Returns 0 and *out, or -errno with *err. */
int env_cache_new(uv_loop_t *loop, const env_cache_config *cfg, env_cache **out, char **err);
/* Stops every build (its waiters get an error), closes the installer's
 * runner, and frees the cache once the last environment it handed out is
 * freed; then cb (may be NULL). Keep running the loop until cb. */
void env_cache_close(env_cache *self, void (*cb)(void *ud), void *ud);
const char *env_cache_dir(const env_cache *self);

/* The environment for requirements (normalised here) in lang: returns 1
 * with *out when it is built already (nothing called), 0 when a build was
 * started or joined (cbs->done follows; *wait may cancel), or -errno with
 * *err (bad requirements, no loop, the cache closing). */
int env_cache_acquire(env_cache *self, sbx_lang lang, const char *const *reqs, size_t n, const env_build_cbs *cbs,
                      void *ud, env_resolved **out, env_waiter **wait, char **err);
/* The environment for requirements when it is built already, else NULL
 * (nothing starts). Caller frees. */
env_resolved *env_cache_find(env_cache *self, sbx_lang lang, const char *const *reqs, size_t n);
/* Drops a wait: its done is not called. A build nobody waits for stops. */
void env_waiter_cancel(env_waiter *wait);

/* Every built environment: [{id, kind, language, requirements, sizeBytes,
 * lastUsed, createdAt, path}] (times in seconds since the epoch), most
 * recently used first. Caller owns the tree. */
cJSON *env_cache_list(env_cache *self);
/* The built environment whose id starts with prefix (unique): 0 and *out,
 * or -ENOENT / -EINVAL (ambiguous) with *err. Not a use: its lastUsed stays. */
int env_cache_lookup(env_cache *self, const char *prefix, env_resolved **out, char **err);
/* Deletes the built environment whose id starts with prefix (unique). Returns
 * 0 and its id in *id (caller frees), or -ENOENT / -EINVAL / -EBUSY with *err. */
int env_cache_remove(env_cache *self, const char *prefix, char **id, char **err);
/* Removes leftovers of crashed builds and deletes least recently used
 * environments beyond the size cap (all of them with all). Returns how
 * many environments were deleted. */
int env_cache_prune(env_cache *self, bool all);
/* Bytes used by built environments. */
long long env_cache_size(env_cache *self);

/* url without its user-info (a token for a private index). New string. */
char *env_url_redact(const char *url);

/* The doctor's "environments" section: the cache (folder, count, size;
 * cache may be NULL), the indexes without user-info, and where venv, pip
 * (for python, the sandbox's interpreter) and npm were found (false when
 * not, with hints). Only files are looked at. Caller owns the tree. */
cJSON *env_doctor_report(env_cache *cache, const char *python, const char *index, const char *registry,
                         long cache_mb);

#endif
