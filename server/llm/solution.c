/* Turns the model's answer text into {prefix, imports, code}, or into an error
 * message the agent can send back to the model. */
#include "solution.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "common.h"
#include "lang.h"

static const char FORMAT_HINT[] =
    "Reply with one JSON object with exactly the string fields \"prefix\", \"imports\" and \"code\".";

void llm_solution_close(llm_solution *self) {
  free(self->prefix);
  free(self->imports);
  free(self->code);
  free(self->test);
  for (size_t i = 0; i < self->n_dependencies; i++) free(self->dependencies[i]);
  free(self->dependencies);
  self->prefix = self->imports = self->code = self->test = NULL;
  self->dependencies = NULL;
  self->n_dependencies = 0;
}

static char *trimmed(const char *p, size_t len) {
  while (len && isspace((unsigned char)*p)) p++, len--;
  while (len && isspace((unsigned char)p[len - 1])) len--;
  return xstrndup(p, len);
}

/* Strips trailing whitespace and leading blank lines, keeping indentation. */
static char *trim_code(const char *p, size_t len) {
  size_t start = 0;
  for (size_t i = 0; i < len; i++) {
    if (p[i] == '\n') start = i + 1;
    else if (!isspace((unsigned char)p[i])) break;
  }
  while (len > start && isspace((unsigned char)p[len - 1])) len--;
  return xstrndup(p + start, len - start);
}

typedef struct fence {
  size_t body_start, body_end, open_start;
  char tag[32];
} fence;

/* Length of a fence marker (``` or ~~~, 3 or more) opening line `p`, else 0. */
static size_t fence_marker(const char *p, const char *end, char *ch) {
  const char *q = p;
  int indent = 0;
  while (q < end && *q == ' ' && indent < 3) q++, indent++;
  if (q >= end || (*q != '`' && *q != '~')) return 0;
  char c = *q;
  size_t n = 0;
  while (q + n < end && q[n] == c) n++;
  if (n < 3) return 0;
  *ch = c;
  return (size_t)(q - p) + n;
}

static int find_fences(const char *text, fence *out, int max) {
  int count = 0;
  const char *p = text, *end = text + strlen(text);
  while (p < end && count < max) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol) eol = end;
    char ch;
    size_t m = fence_marker(p, eol, &ch);
    if (!m) {
      p = eol < end ? eol + 1 : end;
      continue;
    }
    fence *f = &out[count++];
    f->open_start = (size_t)(p - text);
    char *tag = trimmed(p + m, (size_t)(eol - p - (ptrdiff_t)m));
    size_t tl = strcspn(tag, " \t{");
    if (tl >= sizeof f->tag) tl = sizeof f->tag - 1;
    memcpy(f->tag, tag, tl);
    f->tag[tl] = '\0';
    free(tag);
    size_t want = 0;
    for (const char *q = p; q < eol && (*q == ' ' || *q == ch); q++) want += *q == ch;
    f->body_start = (size_t)(eol < end ? eol + 1 - text : end - text);
    f->body_end = (size_t)(end - text); /* unclosed: runs to the end */
    p = text + f->body_start;
    while (p < end) {
      const char *e2 = memchr(p, '\n', (size_t)(end - p));
      if (!e2) e2 = end;
      const char *q = p;
      while (q < e2 && *q == ' ') q++;
      size_t k = 0;
      while (q + k < e2 && q[k] == ch) k++;
      const char *r = q + k;
      while (r < e2 && isspace((unsigned char)*r)) r++;
      if (k >= want && r == e2) {
        f->body_end = (size_t)(p - text);
        p = e2 < end ? e2 + 1 : end;
        break;
      }
      p = e2 < end ? e2 + 1 : end;
    }
  }
  return count;
}

/* Whether a fence's info string names python (any case; its names and
 * aliases as the language registry has them). */
static bool is_python_tag(const char *tag) {
  char low[sizeof ((fence *)0)->tag];
  size_t i = 0;
  for (; tag[i] && i + 1 < sizeof low; i++) low[i] = (char)tolower((unsigned char)tag[i]);
  low[i] = '\0';
  return !tag[i] && lang_parse(low) == LANG_PYTHON;
}

int llm_fenced_code_extract(const char *text, char **code, char **before) {
  fence fs[16];
  int n = find_fences(text, fs, 16);
  if (n == 0) return -ENOENT;
  int pick = 0;
  for (int i = 0; i < n; i++) {
    const char *t = fs[i].tag;
    if (!t[0] || is_python_tag(t)) {
      pick = i;
      break;
    }
  }
  *code = trim_code(text + fs[pick].body_start, fs[pick].body_end - fs[pick].body_start);
  if (before) *before = trimmed(text, fs[pick].open_start);
  return 0;
}

static bool starts_with_word(const char *p, const char *w) {
  size_t n = strlen(w);
  return strncmp(p, w, n) == 0 && (p[n] == ' ' || p[n] == '\t');
}

void llm_imports_split(const char *code, char **imports, char **rest) {
  const char *p = code, *end = code + strlen(code);
  const char *imports_end = code; /* end of the last import statement */
  int depth = 0;
  bool cont = false;
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *next = eol ? eol + 1 : end;
    if (!eol) eol = end;
    bool in_stmt = depth > 0 || cont;
    const char *q = p;
    while (q < eol && (*q == ' ' || *q == '\t')) q++;
    bool blank = q == eol || *q == '#';
    bool is_import = !in_stmt && q == p &&
                     (starts_with_word(p, "import") || (starts_with_word(p, "from") && strstr(p, " import") &&
                                                        strstr(p, " import") < eol));
    if (!in_stmt && !blank && !is_import) break;
    if (in_stmt || is_import) {
      for (const char *c = p; c < eol && *c != '#'; c++) {
        if (*c == '(') depth++;
        else if (*c == ')' && depth > 0) depth--;
      }
      const char *t = eol;
      while (t > p && isspace((unsigned char)t[-1])) t--;
      cont = t > p && t[-1] == '\\';
      imports_end = next;
    }
    p = next;
  }
  *imports = trim_code(code, (size_t)(imports_end - code));
  *rest = trim_code(imports_end, (size_t)(end - imports_end));
}

/* The answer's JSON object: the whole text, a fenced block, or the outermost braces. */
static cJSON *find_json(const char *text) {
  cJSON *j = cJSON_Parse(text);
  if (cJSON_IsObject(j)) return j;
  cJSON_Delete(j);
  char *code = NULL;
  if (llm_fenced_code_extract(text, &code, NULL) == 0) {
    j = cJSON_Parse(code);
    free(code);
    if (cJSON_IsObject(j)) return j;
    cJSON_Delete(j);
  }
  const char *a = strchr(text, '{'), *b = strrchr(text, '}');
  if (a && b && b > a) {
    j = cJSON_ParseWithLength(a, (size_t)(b - a + 1));
    if (cJSON_IsObject(j)) return j;
    cJSON_Delete(j);
  }
  return NULL;
}

static int parse_json(const char *text, llm_solution *out, char **err) {
  cJSON *j = find_json(text);
  if (!j) {
    *err = xasprintf("The answer is not a JSON object. %s", FORMAT_HINT);
    return -EINVAL;
  }
  static const char *const keys[] = {"prefix", "imports", "code"};
  const char *vals[3];
  for (int i = 0; i < 3; i++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, keys[i]);
    if (!cJSON_IsString(v)) {
      *err = xasprintf("The answer's JSON %s \"%s\" as a string. %s", v ? "does not have" : "lacks", keys[i],
                       FORMAT_HINT);
      cJSON_Delete(j);
      return -EINVAL;
    }
    vals[i] = v->valuestring;
  }
  char *code = trim_code(vals[2], strlen(vals[2]));
  if (!code[0]) {
    free(code);
    *err = xasprintf("The answer's \"code\" is empty. %s", FORMAT_HINT);
    cJSON_Delete(j);
    return -EINVAL;
  }
  /* "dependencies": optional; null or [] is none. */
  const cJSON *deps = cJSON_GetObjectItemCaseSensitive(j, "dependencies");
  if (deps && !cJSON_IsNull(deps)) {
    const cJSON *d;
    bool ok = cJSON_IsArray(deps) && cJSON_GetArraySize(deps) <= LLM_MAX_DEPENDENCIES;
    cJSON_ArrayForEach(d, deps) ok = ok && cJSON_IsString(d) && strlen(d->valuestring) <= LLM_MAX_DEPENDENCY_LEN;
    if (!ok) {
      free(code);
      *err = xasprintf("The answer's \"dependencies\" must be an array of at most %d package names (strings, "
                       "as in PEP 723). %s", LLM_MAX_DEPENDENCIES, FORMAT_HINT);
      cJSON_Delete(j);
      return -EINVAL;
    }
    cJSON_ArrayForEach(d, deps) {
      char *t = trimmed(d->valuestring, strlen(d->valuestring));
      if (!*t) {
        free(t);
        continue;
      }
      out->dependencies = xrealloc(out->dependencies, (out->n_dependencies + 1) * sizeof *out->dependencies);
      out->dependencies[out->n_dependencies++] = t;
    }
  }
  out->prefix = trimmed(vals[0], strlen(vals[0]));
  out->imports = trim_code(vals[1], strlen(vals[1]));
  out->code = code;
  const cJSON *test = cJSON_GetObjectItemCaseSensitive(j, "test");
  if (cJSON_IsString(test) && test->valuestring[0]) out->test = trim_code(test->valuestring, strlen(test->valuestring));
  cJSON_Delete(j);
  return 0;
}

static bool is_requirements_tag(const char *tag) {
  static const char *const tags[] = {"requirements", "requirements.txt", "pip", "dependencies"};
  for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++)
    if (!strcasecmp(tag, tags[i])) return true;
  return false;
}

/* A fenced requirements list (```requirements, ```requirements.txt,
 * ```pip): one package a line; comments, blank lines and a leading
 * "pip install" are dropped. */
static void text_dependencies(const char *text, llm_solution *out) {
  fence fs[16];
  int n = find_fences(text, fs, 16);
  for (int i = 0; i < n; i++) {
    if (!is_requirements_tag(fs[i].tag)) continue;
    const char *p = text + fs[i].body_start, *end = text + fs[i].body_end;
    while (p < end) {
      const char *eol = memchr(p, '\n', (size_t)(end - p));
      if (!eol) eol = end;
      const char *hash = memchr(p, '#', (size_t)(eol - p));
      char *line = trimmed(p, (size_t)((hash ? hash : eol) - p));
      const char *l = line;
      if (!strncmp(l, "pip install ", 12)) l += 12;
      /* "pip install a b": several names a line */
      while (*l && out->n_dependencies < LLM_MAX_DEPENDENCIES) {
        while (*l == ' ' || *l == '\t') l++;
        size_t k = strcspn(l, " \t");
        if (!k) break;
        if (k <= LLM_MAX_DEPENDENCY_LEN && *l != '-') {
          out->dependencies = xrealloc(out->dependencies, (out->n_dependencies + 1) * sizeof *out->dependencies);
          out->dependencies[out->n_dependencies++] = xstrndup(l, k);
        }
        l += k;
      }
      free(line);
      p = eol < end ? eol + 1 : end;
    }
    break;
  }
}

static int parse_text(const char *text, llm_solution *out, char **err) {
  char *code = NULL, *before = NULL;
  if (llm_fenced_code_extract(text, &code, &before) < 0) {
    *err = xstrdup("The answer has no fenced code block. Give a short description, then the complete code in one "
                   "```python block, its import statements first.");
    return -EINVAL;
  }
  char *imports = NULL, *rest = NULL;
  llm_imports_split(code, &imports, &rest);
  free(code);
  if (!rest[0] && !imports[0]) {
    free(imports);
    free(rest);
    free(before);
    *err = xstrdup("The answer's code block is empty. Put the complete code in one ```python block.");
    return -EINVAL;
  }
  out->prefix = before;
  out->imports = imports;
  out->code = rest;
  text_dependencies(text, out);
  return 0;
}

int llm_solution_parse(const char *text, llm_mode mode, llm_solution *out, char **err) {
  memset(out, 0, sizeof *out);
  *err = NULL;
  if (!text) text = "";
  if (mode == LLM_MODE_TEXT) return parse_text(text, out, err);
  int rc = parse_json(text, out, err);
  if (rc == 0) return 0;
  /* A model that ignored the JSON instruction may still have written fenced
   * code: take it rather than burn a round trip. */
  const char *p = text;
  while (isspace((unsigned char)*p)) p++;
  if (*p != '{') {
    char *err2 = NULL;
    if (parse_text(text, out, &err2) == 0) {
      free(*err);
      *err = NULL;
      return 0;
    }
    free(err2);
  }
  return rc;
}
