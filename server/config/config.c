/* Crucible's settings: a table-driven schema with typed, bounded fields. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "xdg.h"

typedef enum field_type { F_STR, F_INT, F_NUM, F_BOOL, F_ENUM, F_STRLIST, F_JSON } field_type;

enum {
  F_USER_ONLY = 1 << 0,    /* a client (workspace) may not set it */
  F_TIGHTEN_ONLY = 1 << 1, /* a client may lower it, not raise it */
  F_FALSE_ONLY = 1 << 2,   /* may only be false */
  F_URL = 1 << 3,          /* a URL whose user-info (a token) the settings' JSON leaves out */
};

typedef struct field {
  const char *group, *key;
  field_type type;
  size_t offset, size;
  double min, max;
  const char *const *choices;
  unsigned flags;
  double def;          /* the default of an F_INT, F_NUM, F_BOOL (0/1) or F_ENUM (its value) */
  const char *def_str; /* the default of an F_STR; NULL: "" or set in cfg_init */
} field;

/* The name tables of the enumerated settings, indexed by their enum value
 * (config.h), NULL-terminated: the only place these names are spelled. */
static const char *const so_choices[] = {"auto", "json_schema", "json_object", "text", NULL};
static const char *const ic_choices[] = {"static", "run", "both", NULL};
static const char *const be_choices[] = {"bwrap", "docker", NULL};
static const char *const mode_choices[] = {"search", "all", NULL};
static const char *const wa_choices[] = {"none", "read", NULL};

/* Enumerated settings are stored as ints through the field table. */
_Static_assert(sizeof(cfg_structured_output) == sizeof(int), "enum settings are int-sized");
_Static_assert(sizeof(cfg_import_check) == sizeof(int), "enum settings are int-sized");
_Static_assert(sizeof(cfg_backend) == sizeof(int), "enum settings are int-sized");
_Static_assert(sizeof(cfg_docs_mode) == sizeof(int), "enum settings are int-sized");
_Static_assert(sizeof(cfg_workspace_access) == sizeof(int), "enum settings are int-sized");

static int choice_index(const char *const *choices, const char *name) {
  for (int i = 0; name && choices[i]; i++)
    if (!strcmp(choices[i], name)) return i;
  return -1;
}

static const char *choice_name(const char *const *choices, size_t n, int v) {
  return v >= 0 && (size_t)v < n - 1 ? choices[v] : NULL;
}

#define ENUM_NAMES(type, fn, table)                                        \
  const char *fn##_name(type v) {                                          \
    return choice_name(table, ARRAY_LEN(table), (int)v);                   \
  }                                                                        \
  int fn##_parse(const char *name, type *out) {                            \
    int i = choice_index(table, name);                                     \
    if (i < 0) return -EINVAL;                                             \
    *out = (type)i;                                                        \
    return 0;                                                              \
  }
ENUM_NAMES(cfg_structured_output, cfg_structured_output, so_choices)
ENUM_NAMES(cfg_import_check, cfg_import_check, ic_choices)
ENUM_NAMES(cfg_backend, cfg_backend, be_choices)
ENUM_NAMES(cfg_docs_mode, cfg_docs_mode, mode_choices)
ENUM_NAMES(cfg_workspace_access, cfg_workspace_access, wa_choices)
#undef ENUM_NAMES

#define OFF(g, m) offsetof(cfg, g.m), sizeof(((cfg *)0)->g.m)
static const field fields[] = {
    {"llm", "baseUrl", F_STR, OFF(llm, base_url), 0, 0, NULL, F_USER_ONLY, .def_str = CFG_DEFAULT_LLM_BASE_URL},
    {"llm", "model", F_STR, OFF(llm, model), 0, 0, NULL, 0, .def_str = CFG_DEFAULT_LLM_MODEL},
    {"llm", "apiKeyEnv", F_STR, OFF(llm, api_key_env), 0, 0, NULL, F_USER_ONLY,
     .def_str = CFG_DEFAULT_LLM_API_KEY_ENV},
    {"llm", "temperature", F_NUM, OFF(llm, temperature), 0, 2, NULL, 0, .def = 0},
    {"llm", "timeoutMs", F_INT, OFF(llm, timeout_ms), 1000, 3600000, NULL, F_TIGHTEN_ONLY,
     .def = CFG_DEFAULT_LLM_TIMEOUT_MS},
    {"llm", "maxRetries", F_INT, OFF(llm, max_retries), 0, 10, NULL, F_TIGHTEN_ONLY,
     .def = CFG_DEFAULT_LLM_MAX_RETRIES},
    {"llm", "structuredOutput", F_ENUM, OFF(llm, structured_output), 0, 0, so_choices, 0,
     .def = CFG_STRUCTURED_AUTO},
    {"agent", "maxIterations", F_INT, OFF(agent, max_iterations), 1, CFG_MAX_AGENT_MAX_ITERATIONS, NULL, F_TIGHTEN_ONLY,
     .def = CFG_DEFAULT_AGENT_MAX_ITERATIONS},
    {"agent", "reflect", F_BOOL, OFF(agent, reflect), 0, 0, NULL, 0, .def = true},
    {"agent", "importCheck", F_ENUM, OFF(agent, import_check), 0, 0, ic_choices, 0,
     .def = CFG_IMPORT_CHECK_STATIC},
    {"agent", "installDependencies", F_BOOL, OFF(agent, install_dependencies), 0, 0, NULL, 0, .def = true},
    {"agent", "denyImports", F_STRLIST, OFF(agent, deny_imports), 0, 0, NULL, F_USER_ONLY, .def = 0},
    {"sandbox", "backend", F_ENUM, OFF(sandbox, backend), 0, 0, be_choices, F_USER_ONLY, .def = CFG_BACKEND_BWRAP},
    {"sandbox", "image", F_STR, OFF(sandbox, image), 0, 0, NULL, F_USER_ONLY, .def_str = CFG_DEFAULT_SANDBOX_IMAGE},
    {"sandbox", "docker.hosts", F_STRLIST, OFF(sandbox, docker_hosts), 0, 0, NULL, F_USER_ONLY, .def = 0},
    {"sandbox", "docker.certPath", F_STR, OFF(sandbox, docker_cert_path), 0, 0, NULL, F_USER_ONLY, .def_str = ""},
    {"sandbox", "timeoutMs", F_INT, OFF(sandbox, timeout_ms), 100, 3600000, NULL, F_TIGHTEN_ONLY,
     .def = CFG_DEFAULT_SANDBOX_TIMEOUT_MS},
    {"sandbox", "memoryMb", F_INT, OFF(sandbox, memory_mb), 16, 65536, NULL, F_TIGHTEN_ONLY,
     .def = CFG_DEFAULT_SANDBOX_MEMORY_MB},
    {"sandbox", "cpuSeconds", F_INT, OFF(sandbox, cpu_seconds), 1, 3600, NULL, F_TIGHTEN_ONLY,
     .def = CFG_DEFAULT_SANDBOX_CPU_SECONDS},
    {"sandbox", "pids", F_INT, OFF(sandbox, pids), 4, 4096, NULL, F_TIGHTEN_ONLY,
     .def = CFG_DEFAULT_SANDBOX_PIDS},
    {"sandbox", "outputBytes", F_INT, OFF(sandbox, output_bytes), 1024, 1 << 30, NULL, F_TIGHTEN_ONLY,
     .def = CFG_DEFAULT_SANDBOX_OUTPUT_BYTES},
    {"sandbox", "diskMb", F_INT, OFF(sandbox, disk_mb), 1, 65536, NULL, F_TIGHTEN_ONLY,
     .def = CFG_DEFAULT_SANDBOX_DISK_MB},
    {"sandbox", "concurrency", F_INT, OFF(sandbox, concurrency), 1, 256, NULL, F_TIGHTEN_ONLY,
     .def = 0 /* cfg_init: from the CPU count */},
    {"sandbox", "network", F_BOOL, OFF(sandbox, network), 0, 0, NULL, F_FALSE_ONLY, .def = false},
    /* The host ids of sandboxed programs when the server is root: never 0. */
    {"sandbox", "uid", F_INT, OFF(sandbox, uid), 1, 2147483647, NULL, F_USER_ONLY,
     .def = CFG_DEFAULT_SANDBOX_HOST_ID},
    {"sandbox", "gid", F_INT, OFF(sandbox, gid), 1, 2147483647, NULL, F_USER_ONLY,
     .def = CFG_DEFAULT_SANDBOX_HOST_ID},
    /* one per registry language (util/lang.h); a unit test checks they match */
    {"sandbox", "interpreters.python", F_STR, OFF(sandbox, interpreters[LANG_PYTHON]), 0, 0, NULL, F_USER_ONLY,
     .def = 0 /* cfg_init: the registry's */},
    {"sandbox", "interpreters.javascript", F_STR, OFF(sandbox, interpreters[LANG_JAVASCRIPT]), 0, 0, NULL, F_USER_ONLY,
     .def = 0 /* cfg_init: the registry's */},
    {"sandbox", "interpreters.bash", F_STR, OFF(sandbox, interpreters[LANG_BASH]), 0, 0, NULL, F_USER_ONLY,
     .def = 0 /* cfg_init: the registry's */},
    /* A string or an object (an EnvSpec); its content is checked where it is
     * used (server/env), the message naming sandbox.environment. */
    {"sandbox", "environment", F_JSON, OFF(sandbox, environment), 0, 0, NULL, 0,
     .def_str = CFG_DEFAULT_SANDBOX_ENVIRONMENT},
    {"sandbox", "packageIndex", F_STR, OFF(sandbox, package_index), 0, 0, NULL, F_USER_ONLY | F_URL,
     .def_str = CFG_DEFAULT_SANDBOX_PACKAGE_INDEX},
    {"sandbox", "npmRegistry", F_STR, OFF(sandbox, npm_registry), 0, 0, NULL, F_USER_ONLY | F_URL,
     .def_str = CFG_DEFAULT_SANDBOX_NPM_REGISTRY},
    {"sandbox", "envCacheMb", F_INT, OFF(sandbox, env_cache_mb), 0, 1 << 24, NULL, F_USER_ONLY,
     .def = CFG_DEFAULT_SANDBOX_ENV_CACHE_MB},
    {"sandbox", "workspaceAccess", F_ENUM, OFF(sandbox, workspace_access), 0, 0, wa_choices, F_USER_ONLY,
     .def = CFG_WORKSPACE_NONE},
    {"docs", "sources", F_STRLIST, OFF(docs, sources), 0, 0, NULL, 0, .def = 0},
    {"docs", "mode", F_ENUM, OFF(docs, mode), 0, 0, mode_choices, 0, .def = CFG_DOCS_SEARCH},
    {"docs", "maxDepth", F_INT, OFF(docs, max_depth), 0, 100, NULL, F_TIGHTEN_ONLY,
     .def = CFG_DEFAULT_DOCS_MAX_DEPTH},
    {"docs", "maxPages", F_INT, OFF(docs, max_pages), 1, 100000, NULL, F_TIGHTEN_ONLY,
     .def = CFG_DEFAULT_DOCS_MAX_PAGES},
    {"docs", "budgetTokens", F_INT, OFF(docs, budget_tokens), 0, 1000000, NULL, F_TIGHTEN_ONLY,
     .def = CFG_DEFAULT_DOCS_BUDGET_TOKENS},
    {"docs", "embeddingModel", F_STR, OFF(docs, embedding_model), 0, 0, NULL, 0, .def_str = ""},
    {"docs", "allowLocal", F_BOOL, OFF(docs, allow_local), 0, 0, NULL, F_USER_ONLY, .def = 0},
    {"docs", "allowPrivateNetwork", F_BOOL, OFF(docs, allow_private_network), 0, 0, NULL, F_USER_ONLY,
     .def = 0},
};
#undef OFF

static void set_str(char *dst, size_t cap, const char *s) {
  snprintf(dst, cap, "%s", s);
}

static void apply_env(cfg *self) {
  const char *v = getenv("OPENAI_BASE_URL");
  if (v && *v) set_str(self->llm.base_url, sizeof self->llm.base_url, v);
  v = getenv("CRUCIBLE_MODEL");
  if (v && *v) set_str(self->llm.model, sizeof self->llm.model, v);
}

void cfg_init(cfg *self) {
  memset(self, 0, sizeof *self);
  /* Every default from the field table (lists start empty)... */
  for (size_t i = 0; i < ARRAY_LEN(fields); i++) {
    const field *f = &fields[i];
    char *p = (char *)self + f->offset;
    switch (f->type) {
    case F_STR:
    case F_JSON: set_str(p, f->size, f->def_str ? f->def_str : ""); break;
    case F_INT:
    case F_ENUM: *(int *)p = (int)f->def; break;
    case F_NUM: *(double *)p = f->def; break;
    case F_BOOL: *(bool *)p = f->def != 0; break;
    case F_STRLIST: break;
    }
  }
  /* ...but those that depend on the machine or on the language registry. */
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  self->sandbox.concurrency = n > 0 ? (int)(n * 2) : 4;
  for (int l = 0; l < LANG_COUNT; l++)
    set_str(self->sandbox.interpreters[l], sizeof self->sandbox.interpreters[l], lang_get((lang_id)l)->interpreter);
  apply_env(self);
}

static void strlist_clear(cfg_strlist *l) {
  for (int i = 0; i < l->n; i++) free(l->items[i]);
  l->n = 0;
  l->items[0] = NULL;
}

static void strlist_copy(cfg_strlist *dst, const cfg_strlist *src) {
  for (int i = 0; i < src->n; i++) dst->items[i] = xstrdup(src->items[i]);
  dst->n = src->n;
  dst->items[dst->n] = NULL;
}

void cfg_close(cfg *self) {
  strlist_clear(&self->sandbox.docker_hosts);
  strlist_clear(&self->docs.sources);
  strlist_clear(&self->agent.deny_imports);
}

void cfg_copy(cfg *dst, const cfg *src) {
  *dst = *src;
  strlist_copy(&dst->sandbox.docker_hosts, &src->sandbox.docker_hosts);
  strlist_copy(&dst->docs.sources, &src->docs.sources);
  strlist_copy(&dst->agent.deny_imports, &src->agent.deny_imports);
}

static const char *type_name(const cJSON *v) {
  if (cJSON_IsString(v)) return "a string";
  if (cJSON_IsNumber(v)) return "a number";
  if (cJSON_IsBool(v)) return "a boolean";
  if (cJSON_IsNull(v)) return "null";
  if (cJSON_IsArray(v)) return "an array";
  if (cJSON_IsObject(v)) return "an object";
  return "an invalid value";
}

static const field *find_field(const char *group, const char *key) {
  for (size_t i = 0; i < ARRAY_LEN(fields); i++)
    if (!strcmp(fields[i].group, group) && !strcmp(fields[i].key, key)) return &fields[i];
  return NULL;
}

static bool has_subkeys(const char *group, const char *prefix) {
  size_t n = strlen(prefix);
  for (size_t i = 0; i < ARRAY_LEN(fields); i++)
    if (!strcmp(fields[i].group, group) && !strncmp(fields[i].key, prefix, n) && fields[i].key[n] == '.')
      return true;
  return false;
}

/* Applies one value; returns 1 on error, 0 otherwise. */
static int apply_field(cfg *self, const field *f, const cJSON *v, cfg_source src, const cfg *base,
                       dbuf *msgs) {
  char *p = (char *)self + f->offset;
  const char *bp = base ? (const char *)base + f->offset : NULL;
  const char *g = f->group, *k = f->key;
  if (src == CFG_SOURCE_CLIENT && (f->flags & F_USER_ONLY)) {
    dbuf_addf(msgs,
              "error: %s.%s can only be set in the user config file (%s) or the environment, "
              "not by the editor or a workspace\n",
              g, k, "$XDG_CONFIG_HOME/crucible/config.json");
    return 1;
  }
  switch (f->type) {
  case F_ENUM: {
    if (!cJSON_IsString(v)) goto wrong_type;
    int i = choice_index(f->choices, v->valuestring);
    if (i < 0) {
      dbuf_addf(msgs, "error: %s.%s: '%s' is not one of", g, k, v->valuestring);
      for (const char *const *c = f->choices; *c; c++) dbuf_addf(msgs, " '%s'", *c);
      dbuf_adds(msgs, "\n");
      return 1;
    }
    *(int *)p = i;
    return 0;
  }
  case F_STR: {
    if (!cJSON_IsString(v)) goto wrong_type;
    const char *s = v->valuestring;
    if (strlen(s) >= f->size) {
      dbuf_addf(msgs, "error: %s.%s: value longer than %zu bytes\n", g, k, f->size - 1);
      return 1;
    }
    /* A workspace may pick the model (it knows what its code needs), but
     * another model may cost more than the user chose: say so. */
    if (src == CFG_SOURCE_CLIENT && p == self->llm.model && bp && strcmp(bp, s))
      dbuf_addf(msgs,
                "warning: llm.model: the editor or workspace changed the model from '%s' to '%.200s' "
                "(it may cost more; set llm.model in the user config file to choose)\n",
                bp, s);
    set_str(p, f->size, s);
    return 0;
  }
  case F_INT:
  case F_NUM: {
    if (!cJSON_IsNumber(v)) goto wrong_type;
    double d = v->valuedouble;
    if (f->type == F_INT && !is_integral(d)) {
      dbuf_addf(msgs, "error: %s.%s: expected an integer, got %g\n", g, k, d);
      return 1;
    }
    if (d < f->min || d > f->max) {
      dbuf_addf(msgs, "error: %s.%s: %g is out of range [%g, %g]\n", g, k, d, f->min, f->max);
      return 1;
    }
    if (src == CFG_SOURCE_CLIENT && (f->flags & F_TIGHTEN_ONLY) && bp) {
      int cur = *(const int *)bp;
      if (d > cur) {
        dbuf_addf(msgs,
                  "error: %s.%s: a workspace may lower this limit (user setting %d), not raise "
                  "it to %g; set it in the user config file (%s) instead\n",
                  g, k, cur, d, "$XDG_CONFIG_HOME/crucible/config.json");
        return 1;
      }
    }
    if (f->type == F_INT)
      *(int *)p = (int)d;
    else
      *(double *)p = d;
    return 0;
  }
  case F_BOOL:
    if (!cJSON_IsBool(v)) goto wrong_type;
    if ((f->flags & F_FALSE_ONLY) && cJSON_IsTrue(v)) {
      dbuf_addf(msgs, "error: %s.%s: sandboxed code never gets network access; only false is accepted\n",
                g, k);
      return 1;
    }
    *(bool *)p = cJSON_IsTrue(v);
    return 0;
  case F_JSON: {
    if (!cJSON_IsString(v) && !cJSON_IsObject(v)) goto wrong_type;
    char *text = cJSON_PrintUnformatted(v);
    if (!text) abort();
    if (strlen(text) >= f->size) {
      dbuf_addf(msgs, "error: %s.%s: value longer than %zu bytes\n", g, k, f->size - 1);
      free(text);
      return 1;
    }
    set_str(p, f->size, text);
    free(text);
    return 0;
  }
  case F_STRLIST: {
    if (!cJSON_IsArray(v)) goto wrong_type;
    const cJSON *it;
    int n = 0;
    cJSON_ArrayForEach(it, v) {
      if (!cJSON_IsString(it)) {
        dbuf_addf(msgs, "error: %s.%s[%d]: expected a string, got %s\n", g, k, n, type_name(it));
        return 1;
      }
      n++;
    }
    if (n > CFG_MAX_LIST) {
      dbuf_addf(msgs, "error: %s.%s: at most %d entries\n", g, k, CFG_MAX_LIST);
      return 1;
    }
    cfg_strlist *l = (cfg_strlist *)p;
    strlist_clear(l);
    cJSON_ArrayForEach(it, v) l->items[l->n++] = xstrdup(it->valuestring);
    l->items[l->n] = NULL;
    return 0;
  }
  }
  return 0;
wrong_type: {
  static const char *const want[] = {"a string", "an integer", "a number", "a boolean", "a string",
                                     "an array of strings", "a string or an object"};
  dbuf_addf(msgs, "error: %s.%s: expected %s, got %s\n", g, k, want[f->type], type_name(v));
  return 1;
}
}

static int apply_object(cfg *self, const char *group, const char *prefix, const cJSON *obj,
                        cfg_source src, const cfg *base, dbuf *msgs) {
  int errors = 0;
  const cJSON *it;
  cJSON_ArrayForEach(it, obj) {
    char key[128];
    snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "." : "", it->string);
    const field *f = find_field(group, key);
    if (f) {
      errors += apply_field(self, f, it, src, base, msgs);
    } else if (has_subkeys(group, key)) {
      if (!cJSON_IsObject(it)) {
        dbuf_addf(msgs, "error: %s.%s: expected an object, got %s\n", group, key, type_name(it));
        errors++;
      } else {
        errors += apply_object(self, group, key, it, src, base, msgs);
      }
    } else {
      dbuf_addf(msgs, "warning: unknown setting '%s.%s' ignored\n", group, key);
    }
  }
  return errors;
}

int cfg_apply(cfg *self, const cJSON *json, cfg_source src, const cfg *base, dbuf *msgs) {
  static const char *const groups[] = {"llm", "agent", "sandbox", "docs"};
  if (!json || cJSON_IsNull(json)) return 0;
  if (!cJSON_IsObject(json)) {
    dbuf_addf(msgs, "error: settings: expected an object, got %s\n", type_name(json));
    return 1;
  }
  int errors = 0;
  const cJSON *it;
  cJSON_ArrayForEach(it, json) {
    bool known = false;
    for (size_t i = 0; i < ARRAY_LEN(groups); i++) {
      if (strcmp(it->string, groups[i])) continue;
      known = true;
      if (!cJSON_IsObject(it)) {
        dbuf_addf(msgs, "error: %s: expected an object, got %s\n", groups[i], type_name(it));
        errors++;
      } else {
        errors += apply_object(self, groups[i], "", it, src, base, msgs);
      }
    }
    if (!known) dbuf_addf(msgs, "warning: unknown setting '%s' ignored\n", it->string);
  }
  return errors;
}

const char *cfg_user_path(char *buf, size_t cap) {
  /* No config directory at all (no home): an empty path, read as a missing file. */
  if (xdg_app_path(XDG_CONFIG, "config.json", buf, cap) && cap) buf[0] = '\0';
  return buf;
}

int cfg_load_user(cfg *self, dbuf *msgs) {
  char path[4096];
  cfg_user_path(path, sizeof path);
  FILE *f = fopen(path, "re");
  if (!f) {
    if (errno == ENOENT || errno == ENOTDIR) return 0;
    dbuf_addf(msgs, "error: cannot read %s: %s\n", path, strerror(errno));
    return -1;
  }
  dbuf text;
  dbuf_init(&text, 4 << 20);
  char chunk[8192];
  size_t n;
  int err = 0;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    if (dbuf_add(&text, chunk, n)) {
      dbuf_addf(msgs, "error: %s is larger than 4 MiB\n", path);
      err = -1;
      goto out;
    }
  }
  const char *end = NULL;
  cJSON *json = cJSON_ParseWithLengthOpts(text.data ? text.data : "", text.len, &end, 0);
  if (!json) {
    size_t off = end && text.data ? (size_t)(end - text.data) : 0;
    dbuf_addf(msgs, "error: %s is not valid JSON (near byte %zu)\n", path, off);
    err = -1;
    goto out;
  }
  dbuf sub;
  dbuf_init(&sub, 0);
  cfg_apply(self, json, CFG_SOURCE_USER, NULL, &sub);
  /* Prefix each message with the file it came from. */
  for (char *line = sub.data, *nl; line && *line; line = nl + 1) {
    nl = strchr(line, '\n');
    if (!nl) break;
    dbuf_addf(msgs, "%.*s (in %s)\n", (int)(nl - line), line, path);
  }
  dbuf_close(&sub);
  cJSON_Delete(json);
  apply_env(self);
out:
  fclose(f);
  dbuf_close(&text);
  return err;
}

void cfg_init_cli(cfg *self) {
  cfg_init(self);
  dbuf msgs;
  dbuf_init(&msgs, 0);
  cfg_load_user(self, &msgs);
  if (msgs.len) fputs(msgs.data, stderr);
  dbuf_close(&msgs);
}

/* A URL with its user-info (a token for a private index) left out. */
static char *url_without_userinfo(const char *url) {
  const char *s = strstr(url, "://");
  const char *at = s ? strchr(s + 3, '@') : NULL, *slash = s ? strchr(s + 3, '/') : NULL;
  if (!at || (slash && at > slash)) return xstrdup(url);
  return xasprintf("%.*s%s", (int)(s + 3 - url), url, at + 1);
}

/* The object a dotted key ("interpreters.python") goes into, made on the way;
 * *leaf is set to the key's last part. */
static cJSON *object_for(cJSON *root, const char *group, const char *key, const char **leaf) {
  cJSON *o = cJSON_GetObjectItemCaseSensitive(root, group);
  if (!o) o = cJSON_AddObjectToObject(root, group);
  const char *dot;
  while ((dot = strchr(key, '.')) != NULL) {
    char part[64];
    snprintf(part, sizeof part, "%.*s", (int)(dot - key), key);
    cJSON *sub = cJSON_GetObjectItemCaseSensitive(o, part);
    o = sub ? sub : cJSON_AddObjectToObject(o, part);
    key = dot + 1;
  }
  *leaf = key;
  return o;
}

cJSON *cfg_to_json(const cfg *self) {
  /* Every field of the schema, in its order, from the one table. */
  cJSON *root = cJSON_CreateObject();
  for (size_t i = 0; i < ARRAY_LEN(fields); i++) {
    const field *f = &fields[i];
    const char *p = (const char *)self + f->offset, *key;
    cJSON *o = object_for(root, f->group, f->key, &key);
    switch (f->type) {
    case F_STR: {
      char *u = f->flags & F_URL ? url_without_userinfo(p) : NULL;
      cJSON_AddStringToObject(o, key, u ? u : p);
      free(u);
      break;
    }
    case F_JSON: {
      cJSON *v = cJSON_Parse(p);
      cJSON_AddItemToObject(o, key, v ? v : cJSON_CreateString(p));
      break;
    }
    case F_ENUM: {
      const char *name = "";
      for (int c = 0; f->choices[c]; c++)
        if (c == *(const int *)p) name = f->choices[c];
      cJSON_AddStringToObject(o, key, name);
      break;
    }
    case F_INT: cJSON_AddNumberToObject(o, key, *(const int *)p); break;
    case F_NUM: cJSON_AddNumberToObject(o, key, *(const double *)p); break;
    case F_BOOL: cJSON_AddBoolToObject(o, key, *(const bool *)p); break;
    case F_STRLIST: {
      const cfg_strlist *l = (const cfg_strlist *)p;
      cJSON *arr = cJSON_AddArrayToObject(o, key);
      for (int k = 0; k < l->n; k++) cJSON_AddItemToArray(arr, cJSON_CreateString(l->items[k]));
      break;
    }
    }
    if (p == self->llm.api_key_env) {
      /* whether the key is there, never the key */
      const char *v = getenv(self->llm.api_key_env);
      cJSON_AddBoolToObject(o, "apiKeySet", v && *v);
    }
  }
  return root;
}
