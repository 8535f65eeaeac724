/* What the files of server/env/ share: the resolved environment's fields,
 * SHA-256, the cache's and a build's state. */
#ifndef CRUCIBLE_ENV_INTERNAL_H
#define CRUCIBLE_ENV_INTERNAL_H

#include <stdint.h>

#include "dbuf.h"
#include "env.h"

/* ---- sha256.c ---- */

typedef struct env__sha256 {
  uint32_t h[8];
  uint64_t len;
  unsigned char buf[64];
  size_t nbuf;
} env__sha256;

void env__sha256_init(env__sha256 *self);
void env__sha256_add(env__sha256 *self, const void *data, size_t n);
/* Writes 64 hex digits and a NUL. */
void env__sha256_hex(env__sha256 *self, char out[65]);

/* ---- resolve.c ---- */

#define ENV__MAX_STRS 48

struct env_resolved {
  char *id;
  env_kind kind;
  sbx_lang lang;
  char *path;
  char **requirements;
  size_t n;
  char *stamp;
  bool has_sbx;         /* sbx says something beyond the system */
  sbx_env sbx;          /* its strings are in strs */
  char *strs[ENV__MAX_STRS];
  int nstrs;
  env_cache *cache;     /* holds a use of a cached environment; NULL otherwise */
  char *key;
  char *image;          /* image: its name (the id is its ID) */
};

env_resolved *env__resolved_new(env_kind kind, sbx_lang lang);
/* Keeps s (taken) for the resolved environment's lifetime; returns it. */
const char *env__keep(env_resolved *self, char *s);
/* Adds a read-only bind / a variable. Returns 0 or -E2BIG. */
int env__add_bind(env_resolved *self, const char *path);
int env__add_var(env_resolved *self, const char *name, const char *value);
/* Sets the id and stamp (copied) and points sbx at them. */
void env__set_id(env_resolved *self, const char *id, const char *stamp);
/* The built (packages) environment at dir for lang. */
env_resolved *env__resolved_packages(sbx_lang lang, const char *key, const char *dir, char **reqs, size_t n);
/* mtime of path in nanoseconds, 0 when it cannot be read. */
long long env__mtime_ns(const char *path);

/* ---- build.c ---- */

/* The installer script for the build of reqs into dest (the path it is
 * bound at). Pure: quoting is its whole point. New string. */
char *env__installer_script(sbx_lang lang, const char *interp, const char *index, const char *dest,
                            const char *const *reqs, size_t n);
/* Single-quotes s for bash. New string. */
char *env__shell_quote(const char *s);

/* Reading the installer's lines: a rough percentage from pip's and npm's
 * words, monotonic. */
typedef struct env__progress {
  int percent;
  size_t collected;
  size_t nreqs;
} env__progress;
/* Returns the percentage after line (never lower than before), or -1 when
 * the line is not progress worth showing (blank). */
int env__progress_line(env__progress *self, sbx_lang lang, const char *line);

typedef struct env__build env__build;

struct env_waiter {
  env__build *build;
  env_build_cbs cbs;
  void *ud;
  env_waiter *next;
};

struct env__build {
  env_cache *cache;
  env__build *next;
  char key[65];
  sbx_lang lang;
  char **reqs;
  size_t n;
  char *final_dir, *tmp_dir;
  sbx_run *run;
  env_waiter *waiters;
  dbuf tail;          /* the installer's output, last part kept for the error */
  char line[1024];
  size_t line_len;
  env__progress progress;
  long long size_kb;
};

/* Makes the installers' runner on first use. Returns 0 or -errno with *err. */
int env__installer_runner(env_cache *cache, char **err);
/* Starts the installer of b (the runner exists). Returns 0 or -errno with *err. */
int env__build_start(env_cache *cache, env__build *b, char **err);
void env__build_cancel(env__build *b);

/* ---- cache.c ---- */

typedef struct env__use {
  char key[65];
  int refs;
  struct env__use *next;
} env__use;

struct env_cache {
  uv_loop_t *loop;
  char *dir;
  char *index, *registry;
  long cache_mb;
  sbx_config sbx_cfg;
  char *interp[SBX_LANG_COUNT];
  sbx_runner runner;      /* the installers', made on the first build */
  bool runner_open;
  env__build *builds;
  env__use *uses;
  int outstanding;        /* env_resolved handed out and not freed */
  bool closing, runner_closed;
  void (*close_cb)(void *ud);
  void *close_ud;
  unsigned seq;
};

/* Called by build.c when a build ends: ok with the size, else error. */
void env__cache_built(env_cache *self, env__build *b, bool ok, const char *error);
/* A use of key begins / ends (eviction skips used environments). */
void env__cache_use(env_cache *self, const char *key);
void env__cache_unuse(env_cache *self, const char *key);
/* Deletes a folder tree: renamed away at once, removed in the loop's
 * thread pool (synchronously without a loop). */
void env__cache_trash(env_cache *self, const char *path);
/* Recursive removal. Returns 0 or -errno. */
int env__rm_rf(const char *path);

#endif
