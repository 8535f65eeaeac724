/* Import extraction with the embedded imports.scm queries, and resolution of
 * each import against the sandbox's module index (ok, missing, relative,
 * denied; optional when guarded by an ImportError handler). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "internal.h"

/* Bash builtins and keywords: never looked up on PATH. */
static const char *const bash_builtins[] = {
    ".", ":", "[", "[[", "alias", "bg", "bind", "break", "builtin", "caller", "case", "cd",
    "command", "compgen", "complete", "compopt", "continue", "declare", "dirs", "disown", "do",
    "done", "echo", "elif", "else", "enable", "esac", "eval", "exec", "exit", "export", "false",
    "fc", "fg", "fi", "for", "function", "getopts", "hash", "help", "history", "if", "in", "jobs",
    "kill", "let", "local", "logout", "mapfile", "popd", "printf", "pushd", "pwd", "read",
    "readarray", "readonly", "return", "select", "set", "shift", "shopt", "source", "suspend",
    "test", "then", "time", "times", "trap", "true", "type", "typeset", "ulimit", "umask",
    "unalias", "unset", "until", "wait", "while",
};

char *chk_node_text(TSNode n, const char *src) {
  uint32_t a = ts_node_start_byte(n), b = ts_node_end_byte(n);
  return xstrndup(src + a, b - a);
}

static bool is_bash_builtin(const char *s) {
  for (size_t i = 0; i < ARRAY_LEN(bash_builtins); i++)
    if (!strcmp(bash_builtins[i], s)) return true;
  return false;
}

/* Drops whitespace (dotted names may be written "a . b"). */
static void squeeze(char *s) {
  char *w = s;
  for (char *r = s; *r; r++)
    if (!isspace((unsigned char)*r)) *w++ = *r;
  *w = '\0';
}

/* The literal text of a Python string node, or NULL when it is not a plain
 * literal (f-strings, interpolation, implicit concatenation). */
static char *python_string_literal(TSNode str, const char *src) {
  if (strcmp(ts_node_type(str), "string")) return NULL;
  uint32_t c = ts_node_child_count(str);
  char *out = NULL;
  for (uint32_t i = 0; i < c; i++) {
    TSNode k = ts_node_child(str, i);
    const char *t = ts_node_type(k);
    if (!strcmp(t, "string_start")) {
      for (uint32_t b = ts_node_start_byte(k); b < ts_node_end_byte(k); b++)
        if (src[b] == 'f' || src[b] == 'F') return NULL;
    } else if (!strcmp(t, "string_content")) {
      if (out || ts_node_named_child_count(k) > 0) { free(out); return NULL; }
      out = chk_node_text(k, src);
    } else if (strcmp(t, "string_end")) {
      free(out);
      return NULL;
    }
  }
  return out;
}

/* The text between the quotes of a JavaScript string node. */
static char *js_string_literal(TSNode str, const char *src) {
  uint32_t a = ts_node_start_byte(str), b = ts_node_end_byte(str);
  if (b - a < 2 || ts_node_has_error(str)) return NULL;
  return xstrndup(src + a + 1, b - a - 2);
}

/* Bash: a sourced file argument without its quotes. */
static char *bash_word_literal(TSNode n, const char *src) {
  char *s = chk_node_text(n, src);
  size_t len = strlen(s);
  if (len >= 2 && (s[0] == '"' || s[0] == '\'') && s[len - 1] == s[0]) {
    memmove(s, s + 1, len - 2);
    s[len - 2] = '\0';
  }
  return s;
}

/* True when an except clause catches ImportError (or ModuleNotFoundError, or
 * everything). */
static bool py_except_catches_import(TSNode clause, const char *src) {
  uint32_t c = ts_node_named_child_count(clause);
  if (c == 0) return true;
  TSNode first = ts_node_named_child(clause, 0);
  if (!strcmp(ts_node_type(first), "block")) return true; /* bare except: */
  /* "except Exception as e:": the type is the as_pattern's first child */
  if (!strcmp(ts_node_type(first), "as_pattern") && ts_node_named_child_count(first) > 0)
    first = ts_node_named_child(first, 0);
  char *t = chk_node_text(first, src);
  bool hit = strstr(t, "ImportError") || strstr(t, "ModuleNotFoundError") ||
             strstr(t, "BaseException") || !strcmp(t, "Exception");
  free(t);
  return hit;
}

/* True when the if statement p runs child only for type checkers: "if
 * TYPE_CHECKING:" or "if typing.TYPE_CHECKING:" (never true at run time). */
static bool py_type_checking(TSNode p, TSNode child, const char *src) {
  TSNode cond = ts_node_child_by_field_name(p, "condition", 9);
  TSNode body = ts_node_child_by_field_name(p, "consequence", 11);
  if (ts_node_is_null(cond) || !ts_node_eq(body, child)) return false;
  char *t = chk_node_text(cond, src);
  size_t n = strlen(t);
  bool hit = !strcmp(t, "TYPE_CHECKING") || (n > 14 && !strcmp(t + n - 14, ".TYPE_CHECKING"));
  free(t);
  return hit;
}

/* Why an import may fail without harm: OPT_HANDLER inside the body of a try
 * whose handler catches import failures; OPT_TYPING (python) under "if
 * TYPE_CHECKING:", which never runs; OPT_NONE otherwise. */
enum { OPT_NONE = 0, OPT_HANDLER, OPT_TYPING };
static int import_is_optional(chk_language lang, TSNode n, const char *src) {
  for (TSNode child = n, p = ts_node_parent(n); !ts_node_is_null(p);
       child = p, p = ts_node_parent(p)) {
    if (lang == CHK_LANG_PYTHON && !strcmp(ts_node_type(p), "if_statement") &&
        py_type_checking(p, child, src))
      return OPT_TYPING;
    if (strcmp(ts_node_type(p), "try_statement")) continue;
    TSNode body = ts_node_child_by_field_name(p, "body", 4);
    if (!ts_node_eq(body, child)) continue;
    if (lang == CHK_LANG_JAVASCRIPT) {
      if (!ts_node_is_null(ts_node_child_by_field_name(p, "handler", 7))) return OPT_HANDLER;
      continue;
    }
    uint32_t c = ts_node_named_child_count(p);
    for (uint32_t i = 0; i < c; i++) {
      TSNode k = ts_node_named_child(p, i);
      if (!strcmp(ts_node_type(k), "except_clause") && py_except_catches_import(k, src))
        return OPT_HANDLER;
    }
  }
  return OPT_NONE;
}

/* The name the module index knows: python "a.b.c" -> "a"; javascript
 * "@s/p/x" -> "@s/p", "p/x" -> "p", "node:fs" -> "fs". Caller frees. */
static char *index_name(chk_language lang, const char *module) {
  if (lang == CHK_LANG_PYTHON) return xstrndup(module, strcspn(module, "."));
  if (lang == CHK_LANG_JAVASCRIPT) {
    if (!strncmp(module, "node:", 5)) return xstrdup(module + 5);
    const char *slash = strchr(module, '/');
    if (module[0] == '@' && slash) slash = strchr(slash + 1, '/');
    return slash ? xstrndup(module, (size_t)(slash - module)) : xstrdup(module);
  }
  const char *base = strrchr(module, '/');
  return xstrdup(base ? base + 1 : module);
}

static bool is_denied(const chk_options *opts, const char *name) {
  if (!opts || !opts->deny) return false;
  for (const char *const *d = opts->deny; *d; d++)
    if (!strcmp(*d, name)) return true;
  return false;
}

/* Whether name (a top-level module) is one of the declared packages:
 * compared lower case with '-', '_' and '.' alike. */
static bool is_declared(const chk_options *opts, const char *name) {
  if (!opts || !opts->declared) return false;
  for (const char *const *d = opts->declared; *d; d++) {
    const char *a = *d, *b = name;
    for (; *a && *b; a++, b++) {
      char x = (char)tolower((unsigned char)*a), y = (char)tolower((unsigned char)*b);
      if (x == '-' || x == '.') x = '_';
      if (y == '-' || y == '.') y = '_';
      if (x != y) break;
    }
    if (!*a && !*b) return true;
  }
  return false;
}

/* "Python 3.11", "Node.js 20", "bash 5.2". */
static char *runtime_label(const chk_modset *ms) {
  const char *v = chk_modset_version(ms);
  size_t major = strcspn(v, ".");
  size_t minor = v[major] == '.' ? major + 1 + strcspn(v + major + 1, ".(") : major;
  switch (chk_modset_language(ms)) {
  case CHK_LANG_PYTHON: return xasprintf("Python %.*s", (int)minor, v);
  case CHK_LANG_JAVASCRIPT: return xasprintf("Node.js %.*s", (int)major, v);
  default: return xasprintf("bash %.*s", (int)minor, v);
  }
}

typedef struct raw_import {
  TSNode node;
  char *module;
  bool relative; /* known relative from the syntax */
  bool command;  /* bash: a command name rather than a sourced file */
} raw_import;

static void add_import(chk_report *out, TSNode n, char *module, chk_status st, bool optional) {
  if (out->nimports % 16 == 0)
    out->imports = xrealloc(out->imports, (out->nimports + 16) * sizeof *out->imports);
  out->imports[out->nimports++] = (chk_import){
      .module = module,
      .start = ts_node_start_point(n),
      .end = ts_node_end_point(n),
      .status = st,
      .optional = optional,
  };
}

/* Node builtins that exist only with the "node:" prefix, so are missing
 * from module.builtinModules (node 18–22). */
static bool node_prefix_only(const char *name) {
  static const char *const names[] = {"test", "test/reporters", "sqlite", "sea", "test/mock_loader"};
  for (size_t i = 0; i < ARRAY_LEN(names); i++)
    if (!strcmp(name, names[i])) return true;
  return false;
}

/* `from X import Y, Z as W`: each name X's known names lack is an error at
 * the name, as CPython's ImportError ("cannot import name"), with the module
 * that has it when one known does. Names the probe did not learn
 * (chk_modset_attr -1) pass; TYPE_CHECKING's too; an optional import's, or
 * one inside an except handler, an if or a with block (which may never run:
 * Python 2 fallbacks, version branches) is a note. */
static void check_from_names(const chk_doc *doc, const chk_modset *ms, TSNode module_node, const char *module,
                             int why, chk_report *out) {
  TSNode parent = ts_node_parent(module_node);
  if (ts_node_is_null(parent) || strcmp(ts_node_type(parent), "import_from_statement")) return;
  TSNode mn = ts_node_child_by_field_name(parent, "module_name", 11);
  if (ts_node_is_null(mn) || !ts_node_eq(mn, module_node) || why == OPT_TYPING) return;
  if (chk_modset_attr(ms, module, "__name__") < 0) return; /* names not known */
  /* A fallback (in an except handler), a branch (if/elif/else: version
   * checks) or a with block (assertRaises) may never run: a note there. */
  for (TSNode up = ts_node_parent(parent); !ts_node_is_null(up) && why == OPT_NONE; up = ts_node_parent(up)) {
    const char *t = ts_node_type(up);
    if (!strcmp(t, "except_clause") || !strcmp(t, "if_statement") || !strcmp(t, "with_statement"))
      why = OPT_HANDLER;
  }
  uint32_t nc = ts_node_child_count(parent);
  for (uint32_t i = 0; i < nc; i++) {
    const char *field = ts_node_field_name_for_child(parent, i);
    if (!field || strcmp(field, "name")) continue;
    TSNode n = ts_node_child(parent, i);
    if (!strcmp(ts_node_type(n), "aliased_import")) n = ts_node_child_by_field_name(n, "name", 4);
    if (ts_node_is_null(n) || ts_node_has_error(n)) continue;
    char *name = chk_node_text(n, doc->text);
    if (chk_modset_attr(ms, module, name) == 0) {
      const char *home = chk_modset_attr_home(ms, name, module);
      const char *near = home ? NULL : chk_modset_attr_suggest(ms, module, name);
      char *hint = home   ? xasprintf("; it is in '%s': from %s import %s", home, home, name)
                   : near ? xasprintf("; did you mean '%s'?", near)
                          : xstrdup("");
      char *msg = xasprintf("cannot import name '%s' from '%s': the module has no such name in the "
                            "sandbox's Python%s", name, module, hint);
      bool optional = why != OPT_NONE;
      chk_report_add_diag(out, ts_node_start_point(n), ts_node_end_point(n), optional ? CHK_SEV_INFO : CHK_SEV_ERROR,
                          optional ? "optional-name-missing" : "missing-name", msg);
      free(hint);
    }
    free(name);
  }
}

static void resolve(const chk_doc *doc, const chk_options *opts, raw_import *ri, chk_report *out) {
  chk_language lang = doc->lang;
  const chk_modset *ms = opts ? opts->modset : NULL;
  if (ms && chk_modset_language(ms) != lang) ms = NULL;
  int why = lang != CHK_LANG_BASH ? import_is_optional(lang, ri->node, doc->text) : OPT_NONE;
  bool optional = why != OPT_NONE;
  const char *m = ri->module;
  const char *noun = lang == CHK_LANG_BASH && ri->command ? "command" : "module";
  chk_status st;
  char *name = index_name(lang, m);
  bool relative = ri->relative;
  if (lang == CHK_LANG_PYTHON) relative |= m[0] == '.';
  else if (lang == CHK_LANG_JAVASCRIPT) relative |= m[0] == '.' || m[0] == '/';
  else if (ri->command) relative |= m[0] != '/' && strchr(m, '/') != NULL;
  else relative |= m[0] != '/';
  if (lang == CHK_LANG_BASH && !relative && (!ri->command || m[0] == '/')) {
    /* an absolute sourced file or command (/usr/sbin/ldconfig, outside the
     * PATH): the sandbox's file system is not known statically
     * (docs/checks.md) */
    st = CHK_STATUS_OK;
  } else if (relative) {
    st = CHK_STATUS_RELATIVE;
  } else if (is_denied(opts, name)) {
    st = CHK_STATUS_DENIED;
  } else if (lang == CHK_LANG_PYTHON && !strcmp(name, "__main__")) {
    st = CHK_STATUS_OK; /* the program itself: always there, in no index */
  } else if (!ms) {
    st = CHK_STATUS_UNKNOWN;
  } else {
    st = chk_modset_has(ms, name) ? CHK_STATUS_OK : CHK_STATUS_MISSING;
    if (st == CHK_STATUS_MISSING && lang == CHK_LANG_JAVASCRIPT && !strncmp(m, "node:", 5) &&
        (chk_modset_has(ms, m) || node_prefix_only(m + 5)))
      st = CHK_STATUS_OK;
  }

  TSPoint a = ts_node_start_point(ri->node), b = ts_node_end_point(ri->node);
  char *msg = NULL;
  chk_severity sev = CHK_SEV_ERROR;
  const char *code = NULL;
  if (st == CHK_STATUS_MISSING && lang != CHK_LANG_BASH && is_declared(opts, name)) {
    msg = xasprintf("module '%s' is not installed yet; it is declared as a dependency, installed before the "
                    "program runs", name);
    code = "declared-module-missing";
    sev = CHK_SEV_INFO;
  } else if (st == CHK_STATUS_MISSING) {
    char *rt = runtime_label(ms);
    const char *sug = chk_modset_suggest(ms, name);
    char *hint = sug ? xasprintf("; did you mean '%s'?", sug) : xstrdup("");
    if (lang == CHK_LANG_BASH)
      msg = xasprintf("command '%s' is not found on the sandbox's PATH (%s)%s", m,
                      *chk_modset_path(ms) ? chk_modset_path(ms) : "/usr/bin:/bin", hint);
    else if (why == OPT_TYPING)
      msg = xasprintf("module '%s' is not installed in the sandbox's %s; it is imported only "
                      "under TYPE_CHECKING, never at run time%s", name, rt, hint);
    else if (optional)
      msg = xasprintf("optional module '%s' is not installed in the sandbox's %s; its "
                      "ImportError handler will run%s", name, rt, hint);
    else
      msg = xasprintf("module '%s' is not installed in the sandbox's %s%s", name, rt, hint);
    free(rt);
    free(hint);
    code = optional ? "optional-module-missing" : "missing-module";
    sev = optional ? CHK_SEV_INFO : CHK_SEV_ERROR;
  } else if (st == CHK_STATUS_RELATIVE) {
    msg = lang == CHK_LANG_BASH
              ? xasprintf("'%s' refers to a file next to the script; a single-file run has none", m)
              : xasprintf("relative import '%s' cannot be resolved in a single-file run", m);
    code = "relative-import";
    sev = optional ? CHK_SEV_INFO : CHK_SEV_WARNING;
  } else if (st == CHK_STATUS_DENIED) {
    msg = xasprintf("%s '%s' is not allowed in the sandbox (deny-list)", noun, name);
    code = "denied-module";
    sev = optional ? CHK_SEV_WARNING : CHK_SEV_ERROR;
  }
  if (msg) chk_report_add_diag(out, a, b, sev, code, msg);
  if (st == CHK_STATUS_OK && lang == CHK_LANG_PYTHON && ms) check_from_names(doc, ms, ri->node, m, why, out);
  free(name);
  add_import(out, ri->node, ri->module, st, optional);
  ri->module = NULL; /* taken over by the report */
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Words that occur in the text of every match of a language's imports.scm
 * (python: the `import` keyword, and `__import__` / `import_module`, which
 * contain it; javascript: `import`, `export ... from`, `require`). A match
 * lies inside the node its pattern starts at, and that node contains one of
 * these words, so running the query only around their occurrences finds
 * every match. Keep this list in step with the .scm files: the unit test
 * test_prefilter_equals_full_scan compares both ways. NULL: no such word
 * (bash: every command is a lookup), the whole tree is queried. */
static const char *const py_words[] = {"import", NULL};
static const char *const js_words[] = {"import", "export", "require", NULL};
static const char *const *const prefilter_words[CHK_LANG_COUNT] = {py_words, js_words, NULL};

/* Occurrences closer than this share one query range: each range costs a
 * walk down from the root past the preceding siblings. */
#define PREFILTER_GAP 512

typedef struct byte_range {
  uint32_t lo, hi;
} byte_range;

static int cmp_range(const void *a, const void *b) {
  const byte_range *x = a, *y = b;
  return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* The merged ranges around every occurrence of words in src[0..len);
 * caller frees *out. Returns the count. */
static size_t find_ranges(const char *const *words, const char *src, size_t len, byte_range **out) {
  byte_range *v = NULL;
  size_t n = 0, cap = 0;
  for (const char *const *w = words; *w; w++) {
    size_t k = strlen(*w);
    for (const char *p = src, *end = src + len; (p = memmem(p, (size_t)(end - p), *w, k)); p += k) {
      if (n == cap) {
        cap = cap ? cap * 2 : 16;
        v = xrealloc(v, cap * sizeof *v);
      }
      v[n++] = (byte_range){(uint32_t)(p - src), (uint32_t)(p - src + k)};
    }
  }
  if (n > 1) qsort(v, n, sizeof *v, cmp_range);
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    if (m && v[i].lo <= v[m - 1].hi + PREFILTER_GAP) {
      if (v[i].hi > v[m - 1].hi) v[m - 1].hi = v[i].hi;
    } else {
      v[m++] = v[i];
    }
  }
  *out = v;
  return m;
}

/* Identity of a match, to drop the ones two ranges both report (an
 * ancestor that spans both). */
typedef struct match_key {
  uint32_t pattern, start, end;
} match_key;

static bool key_seen(const match_key *keys, size_t n, match_key k) {
  for (size_t i = n; i-- > 0;)
    if (keys[i].pattern == k.pattern && keys[i].start == k.start && keys[i].end == k.end) return true;
  return false;
}

void chk_imports_scan(chk_context *ctx, const chk_doc *doc, const chk_options *opts, bool prefilter,
                      chk_report *out) {
  const chk_query *q = chk_imports_query(doc->lang);
  if (!q || !doc->tree) return; /* no tree: chk_syntax says why */
  const char *src = doc->text;
  raw_import *raw = NULL;
  size_t nraw = 0, capraw = 0;
  char **funcs = NULL;
  size_t nfuncs = 0;

  byte_range whole = {0, UINT32_MAX}, *ranges = &whole;
  size_t nranges = 1;
  const char *const *words = prefilter ? prefilter_words[doc->lang] : NULL;
  if (words) nranges = find_ranges(words, src, doc->len, &ranges);
  match_key *keys = NULL;
  size_t nkeys = 0, capkeys = 0;
  /* one budget for all ranges: the query's cost grows with the tree's depth */
  const TSQueryCursorOptions *qopts = chk_context_query_options(ctx, doc->len);

  for (size_t r = 0; r < nranges && !ctx->qdeadline.expired; r++) {
    size_t nprev = nkeys; /* a range never reports one match twice */
    ts_query_cursor_set_byte_range(ctx->cursor, ranges[r].lo, ranges[r].hi);
    ts_query_cursor_exec_with_options(ctx->cursor, q->query, ts_tree_root_node(doc->tree), qopts);
    TSQueryMatch m;
    while (ts_query_cursor_next_match(ctx->cursor, &m)) {
      if (nranges > 1 && m.capture_count) {
        match_key k = {m.pattern_index, ts_node_start_byte(m.captures[0].node),
                       ts_node_end_byte(m.captures[0].node)};
        if (key_seen(keys, nprev, k)) continue;
        if (nkeys == capkeys) {
          capkeys = capkeys ? capkeys * 2 : 16;
          keys = xrealloc(keys, capkeys * sizeof *keys);
        }
        keys[nkeys++] = k;
      }
      if (!chk_query_match_ok(q, &m, src)) continue;
      for (uint16_t i = 0; i < m.capture_count; i++) {
        uint32_t len;
        const char *cap = ts_query_capture_name_for_id(q->query, m.captures[i].index, &len);
        TSNode n = m.captures[i].node;
        if (cap[0] == '_') continue;
        raw_import ri = {.node = n};
        if (!strcmp(cap, "definition.function")) {
          funcs = xrealloc(funcs, (nfuncs + 1) * sizeof *funcs);
          funcs[nfuncs++] = chk_node_text(n, src);
          continue;
        } else if (!strcmp(cap, "import.module")) {
          ri.module = chk_node_text(n, src);
          squeeze(ri.module);
        } else if (!strcmp(cap, "import.relative")) {
          ri.module = chk_node_text(n, src);
          squeeze(ri.module);
          ri.relative = true;
        } else if (!strcmp(cap, "import.string")) {
          ri.module = doc->lang == CHK_LANG_PYTHON ? python_string_literal(n, src)
                                                   : js_string_literal(n, src);
        } else if (!strcmp(cap, "import.command")) {
          /* tree-sitter-bash reads `X=$a/$z.tab` as `X=$a/` and a command
           * `z.tab`, dropping the `$`: a word right after a `$` is the rest
           * of an expansion, never a command name */
          uint32_t at = ts_node_start_byte(n);
          if (at > 0 && src[at - 1] == '$') continue;
          ri.module = chk_node_text(n, src);
          ri.command = true;
        } else if (!strcmp(cap, "import.source")) {
          ri.module = bash_word_literal(n, src);
        }
        if (!ri.module || !ri.module[0] || ts_node_has_error(n) || ts_node_is_missing(n)) {
          free(ri.module);
          continue;
        }
        if (nraw == capraw) {
          capraw = capraw ? capraw * 2 : 16;
          raw = xrealloc(raw, capraw * sizeof *raw);
        }
        raw[nraw++] = ri;
      }
    }
  }
  /* the cursor is shared: leave it unrestricted for its next user */
  ts_query_cursor_set_byte_range(ctx->cursor, 0, UINT32_MAX);
  if (ctx->qdeadline.expired) {
    /* an incomplete import list must not pass for a complete one */
    size_t at = ctx->qdeadline.at;
    chk_report_add_diag(out, chk_doc_point(doc, at), chk_doc_point(doc, at), CHK_SEV_ERROR, "limit",
                        xasprintf("finding the imports took longer than %llu ms: not checked",
                                  (unsigned long long)(ctx->qdeadline.budget_us + 999) / 1000));
  }
  if (ranges != &whole) free(ranges);
  free(keys);
  if (nfuncs) qsort(funcs, nfuncs, sizeof *funcs, cmp_str);
  for (size_t i = 0; i < nraw; i++) {
    raw_import *ri = &raw[i];
    if (ri->command) {
      const char *key = ri->module;
      /* builtins, the script's own functions and words with expansions are not lookups */
      if (is_bash_builtin(key) || strpbrk(key, "$`\"'\\*?=") ||
          (nfuncs && bsearch(&key, funcs, nfuncs, sizeof *funcs, cmp_str))) {
        free(ri->module);
        continue;
      }
    }
    resolve(doc, opts, ri, out);
  }
  for (size_t i = 0; i < nfuncs; i++) free(funcs[i]);
  free(funcs);
  free(raw);
}

void chk_imports(chk_context *ctx, const chk_doc *doc, const chk_options *opts, chk_report *out) {
  chk_imports_scan(ctx, doc, opts, true, out);
}
