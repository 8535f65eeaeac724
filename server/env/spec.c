/* EnvSpec parsing and the requirements' checks and normal forms: pure. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "internal.h"

static const char *const kind_names[] = {"system", "workspace", "venv", "packages", "image"};

const char *env_kind_name(env_kind kind) {
  return kind >= ENV_SYSTEM && kind <= ENV_IMAGE ? kind_names[kind] : "?";
}

void env_spec_close(env_spec *self) {
  free(self->path);
  free(self->image);
  env_strv_free(self->requirements, self->n);
  memset(self, 0, sizeof *self);
}

void env_strv_free(char **v, size_t n) {
  for (size_t i = 0; v && i < n; i++) free(v[i]);
  free(v);
}

static int fail(env_spec *self, char **err, char *msg) {
  env_spec_close(self);
  *err = msg;
  return -EINVAL;
}

int env_spec_parse(env_spec *self, const cJSON *json, char **err) {
  memset(self, 0, sizeof *self);
  *err = NULL;
  if (!json || cJSON_IsNull(json)) return 0;
  if (cJSON_IsString(json)) {
    if (!strcmp(json->valuestring, "system")) return 0;
    if (!strcmp(json->valuestring, "workspace")) {
      self->kind = ENV_WORKSPACE;
      return 0;
    }
    return fail(self, err, xasprintf("environment: '%.60s' is not \"system\" or \"workspace\" (or an object "
                                     "with kind venv, packages or image)", json->valuestring));
  }
  if (!cJSON_IsObject(json))
    return fail(self, err, xstrdup("environment must be \"system\", \"workspace\" or an object with a kind"));
  const cJSON *kind = cJSON_GetObjectItemCaseSensitive(json, "kind");
  const char *k = cJSON_IsString(kind) ? kind->valuestring : "";
  if (!strcmp(k, "system")) return 0;
  if (!strcmp(k, "workspace")) {
    self->kind = ENV_WORKSPACE;
    return 0;
  }
  if (!strcmp(k, "venv")) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(json, "path");
    if (!cJSON_IsString(p) || p->valuestring[0] != '/' || strlen(p->valuestring) >= ENV_MAX_PATH)
      return fail(self, err, xstrdup("environment: a venv needs 'path', an absolute path"));
    self->kind = ENV_VENV;
    self->path = xstrdup(p->valuestring);
    return 0;
  }
  if (!strcmp(k, "image")) {
    const cJSON *im = cJSON_GetObjectItemCaseSensitive(json, "image");
    if (!cJSON_IsString(im) || !im->valuestring[0] || strlen(im->valuestring) > 512)
      return fail(self, err, xstrdup("environment: an image needs 'image', a non-empty string"));
    self->kind = ENV_IMAGE;
    self->image = xstrdup(im->valuestring);
    return 0;
  }
  if (!strcmp(k, "packages")) {
    self->kind = ENV_PACKAGES;
    const cJSON *lang = cJSON_GetObjectItemCaseSensitive(json, "language");
    if (lang && !cJSON_IsNull(lang)) {
      if (!cJSON_IsString(lang) || sbx_lang_parse(lang->valuestring, &self->language) ||
          self->language == SBX_LANG_BASH)
        return fail(self, err, xstrdup("environment: a packages language is \"python\" or \"javascript\""));
      self->has_language = true;
    }
    const cJSON *reqs = cJSON_GetObjectItemCaseSensitive(json, "requirements");
    int n = cJSON_IsArray(reqs) ? cJSON_GetArraySize(reqs) : -1;
    if (n < 1 || n > ENV_MAX_REQUIREMENTS)
      return fail(self, err, xasprintf("environment: packages need 'requirements', an array of 1 to %d strings",
                                       ENV_MAX_REQUIREMENTS));
    self->requirements = xcalloc((size_t)n, sizeof *self->requirements);
    const cJSON *it;
    cJSON_ArrayForEach(it, reqs) {
      if (!cJSON_IsString(it))
        return fail(self, err, xstrdup("environment: every requirement must be a string"));
      self->requirements[self->n++] = xstrdup(it->valuestring);
    }
    return 0;
  }
  return fail(self, err, xasprintf("environment: unknown kind '%.40s' (system, workspace, venv, packages, image)", k));
}

int env_spec_parse_arg(env_spec *self, const char *arg, char **err) {
  memset(self, 0, sizeof *self);
  *err = NULL;
  if (!strcmp(arg, "system")) return 0;
  if (!strcmp(arg, "workspace")) {
    self->kind = ENV_WORKSPACE;
    return 0;
  }
  if (!strncmp(arg, "venv:", 5) && arg[5]) {
    self->kind = ENV_VENV;
    self->path = xstrdup(arg + 5);
    return 0;
  }
  if (!strncmp(arg, "image:", 6) && arg[6]) {
    self->kind = ENV_IMAGE;
    self->image = xstrdup(arg + 6);
    return 0;
  }
  *err = xasprintf("--env: '%s' is not system, workspace, venv:PATH or image:NAME", arg);
  return -EINVAL;
}

void env_spec_packages(env_spec *self, int lang, const char *const *reqs, size_t n) {
  memset(self, 0, sizeof *self);
  self->kind = ENV_PACKAGES;
  if (lang >= 0) {
    self->has_language = true;
    self->language = (sbx_lang)lang;
  }
  self->requirements = xcalloc(n ? n : 1, sizeof *self->requirements);
  for (size_t i = 0; i < n; i++) self->requirements[i] = xstrdup(reqs[i]);
  self->n = n;
}

cJSON *env_spec_to_json(const env_spec *self) {
  if (self->kind == ENV_SYSTEM || self->kind == ENV_WORKSPACE) return cJSON_CreateString(env_kind_name(self->kind));
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "kind", env_kind_name(self->kind));
  if (self->path) cJSON_AddStringToObject(o, "path", self->path);
  if (self->image) cJSON_AddStringToObject(o, "image", self->image);
  if (self->has_language) cJSON_AddStringToObject(o, "language", sbx_lang_name(self->language));
  if (self->kind == ENV_PACKAGES) {
    cJSON *a = cJSON_AddArrayToObject(o, "requirements");
    for (size_t i = 0; i < self->n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(self->requirements[i]));
  }
  return o;
}

/* ---- requirements ---- */

char *env_pep503_name(const char *name, size_t len) {
  char *out = xmalloc(len + 1);
  size_t k = 0;
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    if (c == '-' || c == '_' || c == '.') {
      if (k && out[k - 1] == '-') continue;
      out[k++] = '-';
    } else {
      out[k++] = (char)tolower((unsigned char)c);
    }
  }
  out[k] = '\0';
  return out;
}

static bool name_char(char c) {
  return isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-';
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A PEP 508 requirement without direct references. */
static char *python_requirement(const char *req, char **err) {
  /* Every character that may appear: names, extras, specifiers, markers
   * (with their quotes). No '@' (direct references bypass the index), no
   * '/', '\\' or ':' (paths and URLs), nothing a shell or pip would read. */
  static const char allowed[] = " ._-[],<>=!~;'\"()*+";
  for (const char *p = req; *p; p++)
    if (!isalnum((unsigned char)*p) && !strchr(allowed, *p)) {
      if (*p == '@')
        *err = xasprintf("requirement '%.80s': direct references (name @ url) are not installed; name a "
                         "package on the index", req);
      else
        *err = xasprintf("requirement '%.80s': the character '%c' has no place in a requirement",
                         req, isprint((unsigned char)*p) ? *p : '?');
      return NULL;
    }
  const char *p = req;
  while (*p == ' ') p++;
  if (*p == '-') {
    *err = xasprintf("requirement '%.80s' looks like a pip option: name a package", req);
    return NULL;
  }
  if (!isalnum((unsigned char)*p)) {
    *err = xasprintf("requirement '%.80s' must start with a package name", req);
    return NULL;
  }
  const char *n0 = p;
  while (name_char(*p)) p++;
  size_t nlen = (size_t)(p - n0);
  if (!isalnum((unsigned char)n0[nlen - 1])) {
    *err = xasprintf("requirement '%.80s': a package name ends with a letter or digit", req);
    return NULL;
  }
  dbuf out;
  dbuf_init(&out, 0);
  char *name = env_pep503_name(n0, nlen);
  dbuf_adds(&out, name);
  free(name);
  while (*p == ' ') p++;
  if (*p == '[') {
    const char *close = strchr(p, ']');
    if (!close) {
      *err = xasprintf("requirement '%.80s': unclosed '['", req);
      goto bad;
    }
    char *extras[ENV_MAX_REQUIREMENT_LEN];
    size_t ne = 0;
    const char *q = p + 1;
    while (q < close) {
      while (q < close && (*q == ' ' || *q == ',')) q++;
      const char *e0 = q;
      while (q < close && name_char(*q)) q++;
      if (q == e0) break;
      extras[ne++] = env_pep503_name(e0, (size_t)(q - e0));
      while (q < close && *q == ' ') q++;
      if (q < close && *q != ',') {
        *err = xasprintf("requirement '%.80s': extras are names separated by commas", req);
        for (size_t i = 0; i < ne; i++) free(extras[i]);
        goto bad;
      }
    }
    qsort(extras, ne, sizeof *extras, cmp_str);
    dbuf_adds(&out, "[");
    for (size_t i = 0; i < ne; i++) {
      if (i && !strcmp(extras[i], extras[i - 1])) continue;
      if (out.data[out.len - 1] != '[') dbuf_adds(&out, ",");
      dbuf_adds(&out, extras[i]);
    }
    for (size_t i = 0; i < ne; i++) free(extras[i]);
    if (out.data[out.len - 1] == '[') out.len--, out.data[out.len] = '\0';
    else dbuf_adds(&out, "]");
    p = close + 1;
  }
  /* The version specifier: up to ';', whitespace dropped, optional parentheses. */
  const char *semi = strchr(p, ';');
  const char *vend = semi ? semi : p + strlen(p);
  char spec[ENV_MAX_REQUIREMENT_LEN + 1];
  size_t sl = 0;
  for (const char *q = p; q < vend; q++)
    if (*q != ' ') spec[sl++] = *q;
  spec[sl] = '\0';
  char *sp = spec;
  if (sl >= 2 && sp[0] == '(' && sp[sl - 1] == ')') {
    sp[sl - 1] = '\0';
    sp++;
  }
  for (const char *q = sp; *q; q++)
    if (!isalnum((unsigned char)*q) && !strchr(".*+!<>=~,", *q)) {
      *err = xasprintf("requirement '%.80s': '%s' is not a version specifier", req, sp);
      goto bad;
    }
  if (*sp && !strchr("<>=!~", *sp)) {
    *err = xasprintf("requirement '%.80s': a version specifier starts with one of < > = ! ~", req);
    goto bad;
  }
  dbuf_adds(&out, sp);
  if (semi) {
    /* The marker: whitespace runs become one space ("and"/"or" need them). */
    const char *m = semi + 1;
    while (*m == ' ') m++;
    if (!*m) {
      *err = xasprintf("requirement '%.80s': nothing after ';'", req);
      goto bad;
    }
    dbuf_adds(&out, "; ");
    for (; *m; m++) {
      if (*m == ' ' && (m[1] == ' ' || !m[1])) continue;
      dbuf_add(&out, m, 1);
    }
  }
  return out.data;
bad:
  dbuf_close(&out);
  return NULL;
}

static bool npm_name_part(const char **pp) {
  const char *p = *pp;
  if (!isalnum((unsigned char)*p)) return false;
  while (isalnum((unsigned char)*p) || *p == '.' || *p == '_' || *p == '-' || *p == '~') p++;
  *pp = p;
  return true;
}

/* name | @scope/name, then optionally @range: nothing npm would fetch from
 * elsewhere than the registry (git, file, URL and alias specs have ':' or
 * '/'). */
static char *npm_requirement(const char *req, char **err) {
  const char *p = req;
  while (*p == ' ') p++;
  const char *n0 = p;
  bool ok = true;
  if (*p == '@') {
    p++;
    ok = npm_name_part(&p) && *p == '/';
    if (ok) p++;
  }
  ok = ok && npm_name_part(&p);
  if (!ok) {
    *err = xasprintf("npm package '%.80s': a spec is a name or @scope/name with an optional @range "
                     "(git, file, URL and alias specs are not installed)", req);
    return NULL;
  }
  dbuf out;
  dbuf_init(&out, 0);
  dbuf_add(&out, n0, (size_t)(p - n0));
  if (*p == '@') {
    p++;
    const char *r = p;
    while (*r == ' ') r++;
    if (!*r) {
      *err = xasprintf("npm package '%.80s': nothing after '@'", req);
      goto bad;
    }
    dbuf_adds(&out, "@");
    for (; *r; r++) {
      if (!isalnum((unsigned char)*r) && !strchr(".*^~<>=|+- ", *r)) {
        *err = xasprintf("npm package '%.80s': '%c' has no place in a version range", req,
                         isprint((unsigned char)*r) ? *r : '?');
        goto bad;
      }
      if (*r == ' ' && (r[1] == ' ' || !r[1])) continue;
      dbuf_add(&out, r, 1);
    }
  } else {
    while (*p == ' ') p++;
    if (*p) {
      *err = xasprintf("npm package '%.80s': '%c' after the name (a range follows '@')", req,
                       isprint((unsigned char)*p) ? *p : '?');
      goto bad;
    }
  }
  return out.data;
bad:
  dbuf_close(&out);
  return NULL;
}

char *env_requirement_normalize(sbx_lang lang, const char *req, char **err) {
  *err = NULL;
  size_t len = strlen(req);
  if (!len || len > ENV_MAX_REQUIREMENT_LEN) {
    *err = xasprintf("a requirement has 1 to %d characters", ENV_MAX_REQUIREMENT_LEN);
    return NULL;
  }
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)req[i] < 0x20 || (unsigned char)req[i] >= 0x7f) {
      *err = xstrdup("a requirement is printable ASCII (no control characters, no newlines)");
      return NULL;
    }
  if (lang == SBX_LANG_PYTHON) return python_requirement(req, err);
  if (lang == SBX_LANG_JAVASCRIPT) return npm_requirement(req, err);
  *err = xasprintf("%s programs have no packages: use python or javascript", sbx_lang_name(lang));
  return NULL;
}

int env_requirements_normalize(sbx_lang lang, const char *const *reqs, size_t n, char ***out, char **err) {
  *out = NULL;
  *err = NULL;
  if (!n || n > ENV_MAX_REQUIREMENTS) {
    *err = xasprintf("name 1 to %d requirements", ENV_MAX_REQUIREMENTS);
    return -EINVAL;
  }
  char **v = xcalloc(n, sizeof *v);
  for (size_t i = 0; i < n; i++) {
    v[i] = env_requirement_normalize(lang, reqs[i], err);
    if (!v[i]) {
      env_strv_free(v, i);
      return -EINVAL;
    }
  }
  qsort(v, n, sizeof *v, cmp_str);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (k && !strcmp(v[k - 1], v[i])) free(v[i]);
    else v[k++] = v[i];
  }
  *out = v;
  return (int)k;
}

void env_key(sbx_lang lang, const char *interp, const char *interp_version, const char *index,
             const char *const *reqs, size_t n, char out[65]) {
  env__sha256 h;
  env__sha256_init(&h);
  const char *parts[] = {"crucible-env-v1", sbx_lang_name(lang), interp ? interp : "",
                         interp_version ? interp_version : "", index ? index : ""};
  for (size_t i = 0; i < ARRAY_LEN(parts); i++) {
    env__sha256_add(&h, parts[i], strlen(parts[i]));
    env__sha256_add(&h, "\n", 1);
  }
  for (size_t i = 0; i < n; i++) {
    env__sha256_add(&h, reqs[i], strlen(reqs[i]));
    env__sha256_add(&h, "\n", 1);
  }
  env__sha256_hex(&h, out);
}

/* ---- PEP 723 inline script metadata ---- */

/* The content of one metadata line ("# x" -> "x", "#" -> ""), or NULL
 * when the line is not a comment line of the block. */
static const char *pep723_content(const char *line, size_t len, size_t *out_len) {
  if (len >= 2 && line[0] == '#' && line[1] == ' ') {
    *out_len = len - 2;
    return line + 2;
  }
  if (len == 1 && line[0] == '#') {
    *out_len = 0;
    return line + 1;
  }
  return NULL;
}

/* Reads the TOML array after "dependencies =" in toml (the block's text):
 * quoted strings separated by commas, comments and newlines. */
static int pep723_array(const char *p, char ***out, char **err) {
  char **v = NULL;
  size_t n = 0;
  while (*p == ' ' || *p == '\t') p++;
  if (*p != '[') {
    *err = xstrdup("PEP 723 block: 'dependencies' must be an array of strings");
    return -EINVAL;
  }
  p++;
  for (;;) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == ',' || *p == '\r') p++;
    if (*p == '#') {
      while (*p && *p != '\n') p++;
      continue;
    }
    if (*p == ']') break;
    if (*p != '"' && *p != '\'') {
      env_strv_free(v, n);
      *err = xstrdup(*p ? "PEP 723 block: 'dependencies' must be an array of strings"
                        : "PEP 723 block: 'dependencies' has no closing ']'");
      return -EINVAL;
    }
    char q = *p++;
    const char *s = p;
    while (*p && *p != q && *p != '\n') p++;
    if (*p != q) {
      env_strv_free(v, n);
      *err = xstrdup("PEP 723 block: a string in 'dependencies' is not closed");
      return -EINVAL;
    }
    if (n >= ENV_MAX_REQUIREMENTS) {
      env_strv_free(v, n);
      *err = xasprintf("PEP 723 block: more than %d dependencies", ENV_MAX_REQUIREMENTS);
      return -EINVAL;
    }
    v = xrealloc(v, (n + 1) * sizeof *v);
    v[n++] = xstrndup(s, (size_t)(p - s));
    p++;
  }
  *out = v;
  return (int)n;
}

int env_pep723_dependencies(const char *code, char ***out, char **err) {
  *out = NULL;
  *err = NULL;
  if (!code) return 0;
  const char *p = code;
  dbuf toml;
  dbuf_init(&toml, 64 << 10);
  bool in_block = false, closed = false;
  while (*p) {
    const char *eol = strchr(p, '\n');
    size_t len = eol ? (size_t)(eol - p) : strlen(p);
    size_t l2 = len;
    while (l2 && (p[l2 - 1] == '\r' || p[l2 - 1] == ' ' || p[l2 - 1] == '\t')) l2--;
    if (!in_block) {
      if (l2 == 12 && !strncmp(p, "# /// script", 12)) in_block = true;
    } else if (l2 == 5 && !strncmp(p, "# ///", 5)) {
      closed = true;
      break;
    } else {
      size_t cl;
      const char *c = pep723_content(p, l2, &cl);
      if (!c) break; /* not a comment line: the block is not closed */
      dbuf_add(&toml, c, cl);
      dbuf_add(&toml, "\n", 1);
    }
    p = eol ? eol + 1 : p + len;
  }
  int rc = 0;
  if (in_block && !closed) {
    *err = xstrdup("PEP 723 block: '# /// script' has no closing '# ///' line");
    rc = -EINVAL;
  } else if (in_block && toml.len) {
    /* the top-level key "dependencies" at the start of a line */
    const char *t = toml.data;
    while (t && *t) {
      if (!strncmp(t, "dependencies", 12)) {
        const char *q = t + 12;
        while (*q == ' ' || *q == '\t') q++;
        if (*q == '=') {
          rc = pep723_array(q + 1, out, err);
          break;
        }
      }
      t = strchr(t, '\n');
      if (t) t++;
    }
  }
  dbuf_close(&toml);
  return rc;
}
