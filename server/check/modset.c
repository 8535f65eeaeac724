/* The module index of one sandbox interpreter: the probe programs that list
 * what it can import, parsing their answer, lookups with suggestions, and the
 * on-disk cache keyed by interpreter path, mtime and version. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "internal.h"
#include "xdg.h"

/* Cache files above this size are not ours (or are corrupt). */
#define MAX_CACHE_FILE (16u << 20)

struct chk_modset {
  chk_language lang;
  char *version;
  char *interpreter;
  char *path;    /* bash: the PATH the probe saw */
  char **names;  /* sorted, unique */
  size_t n;
  char *probe;   /* the probe's JSON, kept for the cache */
  chk_modattrs *attrs; /* python: the names of some modules, sorted by module */
  size_t nattrs;
  char **third;  /* the modules beyond the standard library (python, javascript), sorted */
  size_t nthird;
};

/* The probes print {"language", "version", "executable", "modules":[...]}.
 * They run inside the sandbox in production, so they must only read what the
 * sandbox exposes and must not need the network. The Python one writes its
 * JSON itself: a minimal image (Debian's python3-minimal) has no json. */
/* Python: sys.stdlib_module_names lists every platform's modules (msvcrt,
 * winreg, _winapi, nt on Linux too): only the ones this interpreter finds
 * count, and tkinter (with idlelib and turtle, which import it) only when
 * its C part _tkinter is there; __main__ always is. */
/* The standard modules whose names the probe learns (dir(), and a
 * package's submodules), so `from collections import Mapping` is caught
 * before a run. Modules with a module-level __getattr__ (lazy names) are
 * left unknown. Cheap ones only: the probe imports each. */
static const char python_probe[] =
    "ATTR_MODULES = 'abc argparse array base64 bisect calendar collections collections.abc contextlib copy "
    "csv dataclasses datetime decimal difflib enum fractions functools glob gzip hashlib heapq html "
    "inspect io itertools json logging math operator os os.path pathlib pickle platform pprint queue "
    "random re secrets shutil signal socket statistics string struct subprocess sys tempfile textwrap "
    "threading time timeit traceback types typing unittest urllib urllib.parse urllib.request uuid "
    "warnings zlib'\n"
    "import sys, pkgutil, importlib, importlib.util\n"
    "def found(n):\n"
    "    try:\n"
    "        return importlib.util.find_spec(n) is not None\n"
    "    except Exception:\n"
    "        return False\n"
    "names = set(sys.builtin_module_names) | {'__main__'}\n"
    "names |= {n for n in getattr(sys, 'stdlib_module_names', ()) if found(n)}\n"
    "for m in pkgutil.iter_modules():\n"
    "    names.add(m.name)\n"
    "if '_tkinter' not in names:\n"
    "    names -= {'tkinter', 'idlelib', 'turtle', 'turtledemo'}\n"
    "attrs = {}\n"
    "for n in ATTR_MODULES.split():\n"
    "    try:\n"
    "        m = importlib.import_module(n)\n"
    "    except Exception:\n"
    "        continue\n"
    "    if hasattr(m, '__getattr__'):\n"
    "        continue\n"
    "    a = set(dir(m))\n"
    "    if hasattr(m, '__path__'):\n"
    "        a |= {s.name for s in pkgutil.iter_modules(m.__path__)}\n"
    "    attrs[n] = sorted(a)\n"
    "std = set(getattr(sys, 'stdlib_module_names', ())) | set(sys.builtin_module_names)\n"
    "third = sorted(n for n in names if n not in std and not n.startswith('_') and n != '__main__')\n"
    "def q(s):\n"
    "    return '\"' + ''.join(c if ' ' <= c and c not in '\"\\\\' else '\\\\u%04x' % ord(c) for c in s) + '\"'\n"
    "def ql(xs):\n"
    "    return '[' + ', '.join(q(x) for x in xs) + ']'\n"
    "print('{\"language\": \"python\", \"version\": %s, \"executable\": %s, \"modules\": %s, \"attrs\": {%s}, '\n"
    "      '\"thirdParty\": %s}' % (q('%d.%d.%d' % sys.version_info[:3]), q(sys.executable), ql(sorted(names)),\n"
    "      ', '.join(q(k) + ': ' + ql(v) for k, v in sorted(attrs.items())), ql(third)))\n";

static const char node_probe[] =
    "const m = require('module'), fs = require('fs'), path = require('path');\n"
    "const names = new Set(m.builtinModules);\n"
    "const dirs = new Set([].concat(m.globalPaths || [], require.resolve.paths('x') || []));\n"
    "for (const d of dirs) {\n"
    "  let ents = [];\n"
    "  try { ents = fs.readdirSync(d); } catch (e) { continue; }\n"
    "  for (const e of ents) {\n"
    "    if (e.startsWith('.')) continue;\n"
    "    if (e.startsWith('@')) {\n"
    "      try { for (const s of fs.readdirSync(path.join(d, e))) names.add(e + '/' + s); } catch (x) {}\n"
    "    } else {\n"
    "      names.add(e.endsWith('.js') ? e.slice(0, -3) : e);\n"
    "    }\n"
    "  }\n"
    "}\n"
    "const third = [...names].filter(n => !m.builtinModules.includes(n) && !n.startsWith('_')).sort();\n"
    "console.log(JSON.stringify({language: 'javascript', version: process.versions.node,\n"
    "  executable: process.execPath, modules: [...names].sort(), thirdParty: third}));\n";

static const char bash_probe[] =
    "p=${PATH//\\\\/\\\\\\\\}; p=${p//\\\"/\\\\\\\"}\n"
    "printf '{\"language\":\"bash\",\"version\":\"%s\",\"path\":\"%s\",\"modules\":[' \"$BASH_VERSION\" \"$p\"\n"
    "first=1; IFS=:\n"
    "for d in $PATH; do\n"
    "  for f in \"$d\"/*; do\n"
    "    [ -f \"$f\" ] && [ -x \"$f\" ] || continue\n"
    "    n=${f##*/}\n"
    "    case $n in *[!A-Za-z0-9._+@%,=-]*) continue;; esac\n"
    "    if [ $first = 1 ]; then first=0; else printf ,; fi\n"
    "    printf '\"%s\"' \"$n\"\n"
    "  done\n"
    "done\n"
    "printf ']}\\n'\n";

const char *chk_probe_script(const char *language) {
  switch (chk_language_parse(language)) {
  case CHK_LANG_PYTHON: return python_probe;
  case CHK_LANG_JAVASCRIPT: return node_probe;
  case CHK_LANG_BASH: return bash_probe;
  default: return NULL;
  }
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

chk_modset *chk_modset_from_probe(const char *language, const char *json, size_t len,
                                  const char *interpreter, char **errmsg) {
  chk_language lang = chk_language_parse(language);
  const char *end = NULL;
  cJSON *root = NULL;
  chk_modset *self = NULL;
  if (lang == CHK_LANG_NONE) {
    if (errmsg) *errmsg = xasprintf("unknown language '%s'", language ? language : "");
    return NULL;
  }
  root = json ? cJSON_ParseWithLengthOpts(json, len, &end, false) : NULL;
  const cJSON *mods = cJSON_GetObjectItemCaseSensitive(root, "modules");
  const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
  const cJSON *lng = cJSON_GetObjectItemCaseSensitive(root, "language");
  if (!cJSON_IsArray(mods) || !cJSON_IsString(ver) ||
      (cJSON_IsString(lng) && chk_language_parse(lng->valuestring) != lang)) {
    if (errmsg)
      *errmsg = xasprintf("the %s module probe printed something that is not its JSON answer; "
                          "run it by hand in the sandbox to see its error", language);
    goto out;
  }
  self = xcalloc(1, sizeof *self);
  self->lang = lang;
  self->version = xstrdup(ver->valuestring);
  const cJSON *exe = cJSON_GetObjectItemCaseSensitive(root, "executable");
  if (interpreter) self->interpreter = xstrdup(interpreter);
  else if (cJSON_IsString(exe) && exe->valuestring[0]) self->interpreter = xstrdup(exe->valuestring);
  const cJSON *path = cJSON_GetObjectItemCaseSensitive(root, "path");
  self->path = xstrdup(cJSON_IsString(path) ? path->valuestring : "");
  size_t cap = (size_t)cJSON_GetArraySize(mods);
  self->names = xcalloc(cap ? cap : 1, sizeof *self->names);
  const cJSON *it;
  cJSON_ArrayForEach(it, mods) {
    if (cJSON_IsString(it) && it->valuestring[0]) self->names[self->n++] = xstrdup(it->valuestring);
  }
  qsort(self->names, self->n, sizeof *self->names, cmp_str);
  size_t w = 0;
  for (size_t i = 0; i < self->n; i++) {
    if (w && !strcmp(self->names[w - 1], self->names[i])) free(self->names[i]);
    else self->names[w++] = self->names[i];
  }
  self->n = w;
  const cJSON *third = cJSON_GetObjectItemCaseSensitive(root, "thirdParty");
  self->third = xcalloc((size_t)cJSON_GetArraySize(third) + 1, sizeof *self->third);
  cJSON_ArrayForEach(it, third) {
    if (cJSON_IsString(it) && it->valuestring[0]) self->third[self->nthird++] = xstrdup(it->valuestring);
  }
  const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(root, "attrs");
  if (cJSON_IsObject(attrs)) {
    size_t na = (size_t)cJSON_GetArraySize(attrs);
    self->attrs = xcalloc(na ? na : 1, sizeof *self->attrs);
    const cJSON *mod;
    cJSON_ArrayForEach(mod, attrs) {
      if (!cJSON_IsArray(mod) || !mod->string) continue;
      chk_modattrs *ma = &self->attrs[self->nattrs++];
      ma->module = xstrdup(mod->string);
      ma->names = xcalloc((size_t)cJSON_GetArraySize(mod) + 1, sizeof *ma->names);
      const cJSON *nm;
      cJSON_ArrayForEach(nm, mod) {
        if (cJSON_IsString(nm)) ma->names[ma->n++] = xstrdup(nm->valuestring);
      }
      qsort(ma->names, ma->n, sizeof *ma->names, cmp_str);
    }
    qsort(self->attrs, self->nattrs, sizeof *self->attrs, cmp_str); /* module is the first field */
  }
  self->probe = xstrndup(json, end && end > json ? (size_t)(end - json) : len);
out:
  cJSON_Delete(root);
  return self;
}

void chk_modset_free(chk_modset *self) {
  if (!self) return;
  for (size_t i = 0; i < self->n; i++) free(self->names[i]);
  free(self->names);
  free(self->version);
  free(self->interpreter);
  free(self->path);
  free(self->probe);
  for (size_t i = 0; i < self->nattrs; i++) {
    for (size_t j = 0; j < self->attrs[i].n; j++) free(self->attrs[i].names[j]);
    free(self->attrs[i].names);
    free(self->attrs[i].module);
  }
  free(self->attrs);
  for (size_t i = 0; i < self->nthird; i++) free(self->third[i]);
  free(self->third);
  free(self);
}

static const chk_modattrs *attrs_of(const chk_modset *self, const char *module) {
  if (!self || !self->nattrs) return NULL;
  return bsearch(&module, self->attrs, self->nattrs, sizeof *self->attrs, cmp_str);
}

const char *const *chk_modset_third_party(const chk_modset *self, size_t *n) {
  *n = self ? self->nthird : 0;
  return self ? (const char *const *)self->third : NULL;
}

int chk_modset_attr(const chk_modset *self, const char *module, const char *name) {
  const chk_modattrs *ma = attrs_of(self, module);
  if (!ma) return -1;
  return bsearch(&name, ma->names, ma->n, sizeof *ma->names, cmp_str) != NULL;
}

const char *chk_modset_attr_home(const chk_modset *self, const char *name, const char *not_module) {
  for (size_t i = 0; self && i < self->nattrs; i++) {
    const chk_modattrs *ma = &self->attrs[i];
    if (!strcmp(ma->module, not_module)) continue;
    if (bsearch(&name, ma->names, ma->n, sizeof *ma->names, cmp_str)) return ma->module;
  }
  return NULL;
}

chk_language chk_modset_language(const chk_modset *self) { return self->lang; }
const char *chk_modset_version(const chk_modset *self) { return self->version; }
const char *chk_modset_interpreter(const chk_modset *self) { return self->interpreter; }
const char *chk_modset_path(const chk_modset *self) { return self->path; }
size_t chk_modset_count(const chk_modset *self) { return self->n; }

bool chk_modset_has(const chk_modset *self, const char *name) {
  return self && bsearch(&name, self->names, self->n, sizeof *self->names, cmp_str) != NULL;
}

/* Edit distance counting a swap of two neighbours as one edit (optimal string
 * alignment: "gerp" is one edit from "grep"), with an early exit once a whole
 * row exceeds max. rows holds 3 * (lb + 1) entries. */
static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb, size_t max,
                            size_t *rows) {
  size_t *pp = rows, *prev = rows + lb + 1, *cur = rows + 2 * (lb + 1);
  for (size_t j = 0; j <= lb; j++) prev[j] = j;
  for (size_t i = 1; i <= la; i++) {
    cur[0] = i;
    size_t best = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t v = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      if (prev[j] + 1 < v) v = prev[j] + 1;
      if (cur[j - 1] + 1 < v) v = cur[j - 1] + 1;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && pp[j - 2] + 1 < v)
        v = pp[j - 2] + 1;
      cur[j] = v;
      if (v < best) best = v;
    }
    if (best > max) return max + 1;
    size_t *t = pp;
    pp = prev;
    prev = cur;
    cur = t;
  }
  return prev[lb];
}

/* The closest of n sorted names to name (chk_modset_suggest's rule). */
static const char *suggest_in(char *const *names, size_t n, const char *name) {
  if (!name) return NULL;
  size_t ln = strlen(name);
  if (ln < 3 || ln > 64) return NULL;
  size_t max = ln / 3 > 0 ? ln / 3 : 1;
  if (max > 3) max = 3;
  size_t rows[3 * 72];
  const char *best = NULL;
  size_t bestd = max + 1;
  for (size_t i = 0; i < n; i++) {
    const char *c = names[i];
    size_t lc = strlen(c);
    if (lc > 64 || (lc > ln ? lc - ln : ln - lc) > max || c[0] == '_') continue;
    size_t d = edit_distance(name, ln, c, lc, bestd - 1 < max ? bestd - 1 : max, rows);
    if (d < bestd && d > 0) {
      bestd = d;
      best = c;
    }
  }
  return best;
}

const char *chk_modset_suggest(const chk_modset *self, const char *name) {
  return self ? suggest_in(self->names, self->n, name) : NULL;
}

const char *chk_modset_attr_suggest(const chk_modset *self, const char *module, const char *name) {
  const chk_modattrs *ma = attrs_of(self, module);
  return ma ? suggest_in(ma->names, ma->n, name) : NULL;
}

/* ---- cache ---- */

char *chk_cache_dir(void) {
  char dir[4096];
  return xdg_app_path(XDG_CACHE, "modules", dir, sizeof dir) ? NULL : xstrdup(dir);
}

/* FNV-1a, to name cache files after the interpreter path and to fingerprint
 * the probe script (a new probe invalidates old entries). */
static unsigned long long fnv1a(const char *s) {
  unsigned long long h = 1469598103934665603ULL;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ULL;
  }
  return h;
}

static char *cache_file(const char *dir, chk_language lang, const char *interpreter) {
  return xasprintf("%s/%s-%016llx.json", dir, chk_language_name(lang), fnv1a(interpreter));
}

/* The interpreter's resolved path (caller frees) and mtime (ns); -errno when
 * it is gone. Both outputs are set on every path (NULL and 0 on failure): at
 * -O2 and above GCC cannot tell that -errno is never 0 and would otherwise
 * see the caller read an unset mtime. */
static int interp_stat(const char *interpreter, char **real, long long *mtime_ns) {
  *real = NULL;
  *mtime_ns = 0;
  char *r = realpath(interpreter, NULL);
  if (!r) return -errno;
  struct stat st;
  if (stat(r, &st) != 0) {
    int err = -errno;
    free(r);
    return err;
  }
  *real = r;
  *mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
  return 0;
}

static char *read_small_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (n + 4096 + 1 > cap) {
      cap = cap ? cap * 2 : 8192;
      if (cap > MAX_CACHE_FILE + 1) {
        free(buf);
        fclose(f);
        return NULL;
      }
      buf = xrealloc(buf, cap);
    }
    size_t r = fread(buf + n, 1, cap - n - 1, f);
    n += r;
    if (r == 0) break;
  }
  fclose(f);
  buf[n] = '\0';
  *len = n;
  return buf;
}

static chk_modset *cache_entry_parse(const char *text, size_t len, chk_language lang,
                                     const char *interpreter, const char *version, bool check,
                                     bool *valid) {
  cJSON *root = cJSON_ParseWithLength(text, len);
  chk_modset *ms = NULL;
  const cJSON *interp = cJSON_GetObjectItemCaseSensitive(root, "interpreter");
  const cJSON *real = cJSON_GetObjectItemCaseSensitive(root, "resolved");
  const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "mtimeNs");
  const cJSON *ph = cJSON_GetObjectItemCaseSensitive(root, "probeHash");
  const cJSON *probe = cJSON_GetObjectItemCaseSensitive(root, "probe");
  if (!cJSON_IsString(interp) || !cJSON_IsString(real) || !cJSON_IsString(mt) ||
      !cJSON_IsString(ph) || !cJSON_IsString(probe))
    goto out;
  if (interpreter && strcmp(interp->valuestring, interpreter)) goto out;
  *valid = true;
  char *r = NULL;
  long long mtime;
  char want_hash[32];
  snprintf(want_hash, sizeof want_hash, "%016llx", fnv1a(chk_probe_script(chk_language_name(lang))));
  if (interp_stat(interp->valuestring, &r, &mtime) != 0) {
    *valid = false;
  } else {
    char mts[32];
    snprintf(mts, sizeof mts, "%lld", mtime);
    *valid = !strcmp(r, real->valuestring) && !strcmp(mts, mt->valuestring) &&
             !strcmp(ph->valuestring, want_hash);
    free(r);
  }
  if (check && !*valid) goto out;
  ms = chk_modset_from_probe(chk_language_name(lang), probe->valuestring,
                             strlen(probe->valuestring), interp->valuestring, NULL);
  if (ms && version && strcmp(ms->version, version)) {
    *valid = false;
    if (check) {
      chk_modset_free(ms);
      ms = NULL;
    }
  }
out:
  cJSON_Delete(root);
  return ms;
}

chk_modset *chk_modset_cache_load(const char *language, const char *interpreter,
                                  const char *version) {
  chk_language lang = chk_language_parse(language);
  if (lang == CHK_LANG_NONE || !interpreter) return NULL;
  char *dir = chk_cache_dir();
  if (!dir) return NULL;
  char *file = cache_file(dir, lang, interpreter);
  size_t len = 0;
  char *text = read_small_file(file, &len);
  chk_modset *ms = NULL;
  bool valid = false;
  if (text) ms = cache_entry_parse(text, len, lang, interpreter, version, true, &valid);
  free(text);
  free(file);
  free(dir);
  return ms;
}

int chk_modset_cache_store(const chk_modset *self) {
  int err = 0;
  char *dir = NULL, *file = NULL, *tmp = NULL, *real = NULL, *text = NULL;
  cJSON *root = NULL;
  FILE *f = NULL;
  long long mtime;
  if (!self || !self->interpreter || !self->probe) return -EINVAL;
  dir = chk_cache_dir();
  if (!dir) return -ENOENT;
  if ((err = interp_stat(self->interpreter, &real, &mtime)) != 0) goto out;
  if ((err = xdg_mkdir_p(dir, 0700)) != 0) goto out; /* 0700: it describes the machine */
  root = cJSON_CreateObject();
  char buf[32];
  cJSON_AddStringToObject(root, "language", chk_language_name(self->lang));
  cJSON_AddStringToObject(root, "interpreter", self->interpreter);
  cJSON_AddStringToObject(root, "resolved", real);
  snprintf(buf, sizeof buf, "%lld", mtime);
  cJSON_AddStringToObject(root, "mtimeNs", buf);
  cJSON_AddStringToObject(root, "version", self->version);
  snprintf(buf, sizeof buf, "%016llx", fnv1a(chk_probe_script(chk_language_name(self->lang))));
  cJSON_AddStringToObject(root, "probeHash", buf);
  cJSON_AddNumberToObject(root, "modules", (double)self->n);
  cJSON_AddStringToObject(root, "probe", self->probe);
  text = cJSON_PrintUnformatted(root);
  if (!text) abort();
  file = cache_file(dir, self->lang, self->interpreter);
  tmp = xasprintf("%s.%d.tmp", file, (int)getpid());
  f = fopen(tmp, "wb");
  if (!f) {
    err = -errno;
    goto out;
  }
  size_t len = strlen(text);
  if (fwrite(text, 1, len, f) != len || fflush(f) != 0) err = -EIO;
  if (fclose(f) != 0 && !err) err = -EIO;
  f = NULL;
  /* write-then-rename: a reader never sees half an entry */
  if (!err && rename(tmp, file) != 0) err = -errno;
  if (err) unlink(tmp);
out:
  free(dir);
  free(file);
  free(tmp);
  free(real);
  free(text);
  cJSON_Delete(root);
  return err;
}

/* Doctor: every cache entry with its validity. */
cJSON *chk_doctor_modsets(void) {
  cJSON *arr = cJSON_CreateArray();
  char *dir = chk_cache_dir();
  DIR *d = dir ? opendir(dir) : NULL;
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) {
    size_t nl = strlen(e->d_name);
    if (nl < 6 || strcmp(e->d_name + nl - 5, ".json")) continue;
    chk_language lang = CHK_LANG_NONE;
    for (int l = 0; l < CHK_LANG_COUNT; l++) {
      size_t k = strlen(chk_language_name(l));
      if (!strncmp(e->d_name, chk_language_name(l), k) && e->d_name[k] == '-') lang = l;
    }
    if (lang == CHK_LANG_NONE) continue;
    char *file = xasprintf("%s/%s", dir, e->d_name);
    size_t len = 0;
    char *text = read_small_file(file, &len);
    bool valid = false;
    chk_modset *ms = text ? cache_entry_parse(text, len, lang, NULL, NULL, false, &valid) : NULL;
    if (ms) {
      cJSON *o = cJSON_CreateObject();
      cJSON_AddStringToObject(o, "language", chk_language_name(lang));
      cJSON_AddStringToObject(o, "interpreter", ms->interpreter ? ms->interpreter : "");
      cJSON_AddStringToObject(o, "version", ms->version);
      cJSON_AddNumberToObject(o, "modules", (double)ms->n);
      cJSON_AddBoolToObject(o, "valid", valid);
      cJSON_AddStringToObject(o, "file", file);
      cJSON_AddItemToArray(arr, o);
    }
    chk_modset_free(ms);
    free(text);
    free(file);
  }
  if (d) closedir(d);
  free(dir);
  return arr;
}
