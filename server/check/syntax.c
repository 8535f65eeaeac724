/* Syntax diagnostics: every ERROR and MISSING node of the tree becomes a
 * diagnostic a person can act on; nested errors (cascades) are folded into the
 * outermost one. */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "internal.h"
#include "python.h"
#include "gaps.h"

/* After this many syntax diagnostics the rest is noise from the same cause. */
#define MAX_SYNTAX_DIAGS 50
/* Longest token text quoted in a message. */
#define MAX_QUOTE 24

typedef struct pair {
  const char *open, *close;
} pair;

static const pair pairs[] = {
    {"(", ")"}, {"[", "]"}, {"{", "}"}, {"${", "}"}, {"$(", ")"}, {"((", "))"}, {"[[", "]]"},
    {"if", "fi"}, {"do", "done"}, {"case", "esac"},
};

static const pair *pair_by_close(const char *t) {
  for (size_t i = 0; i < ARRAY_LEN(pairs); i++)
    if (!strcmp(pairs[i].close, t)) return &pairs[i];
  return NULL;
}

static const pair *pair_by_open(const char *t) {
  for (size_t i = 0; i < ARRAY_LEN(pairs); i++)
    if (!strcmp(pairs[i].open, t)) return &pairs[i];
  return NULL;
}

/* Quotable text of a leaf: its first line, shortened. */
static char *quote_leaf(TSNode n, const char *src) {
  uint32_t a = ts_node_start_byte(n), b = ts_node_end_byte(n);
  size_t len = b - a;
  const char *nl = memchr(src + a, '\n', len);
  if (nl) len = (size_t)(nl - (src + a));
  if (len > MAX_QUOTE) return xasprintf("%.*s...", MAX_QUOTE, src + a);
  return xstrndup(src + a, len);
}

/* Leaves (tokens) of a subtree in order, skipping zero-width ones. */
typedef struct leaves {
  TSNode *v;
  size_t n, cap;
} leaves;

static void push_leaf(leaves *out, TSNode n) {
  if (out->n == out->cap) {
    out->cap = out->cap ? out->cap * 2 : 16;
    out->v = xrealloc(out->v, out->cap * sizeof *out->v);
  }
  out->v[out->n++] = n;
}

/* Appends the first `limit` leaves under root. A cursor, not recursion with
 * ts_node_child(n, i): that restarts from the first child at every i, which
 * made an ERROR node with 100,000 children cost minutes; and recursion is as
 * deep as the tree. */
static void collect_leaves(TSNode root, leaves *out, size_t limit) {
  TSTreeCursor cur = ts_tree_cursor_new(root);
  while (out->n < limit) {
    TSNode n = ts_tree_cursor_current_node(&cur);
    bool leaf = ts_node_child_count(n) == 0 || !strcmp(ts_node_type(n), "string_content");
    if (leaf && ts_node_end_byte(n) > ts_node_start_byte(n)) push_leaf(out, n);
    if (!leaf && ts_tree_cursor_goto_first_child(&cur)) continue;
    bool more = false;
    while (!(more = ts_tree_cursor_goto_next_sibling(&cur)) && ts_tree_cursor_goto_parent(&cur)) {
    }
    if (!more) break;
  }
  ts_tree_cursor_delete(&cur);
}

static bool is_string_start(const char *t) {
  return !strcmp(t, "string_start") || !strcmp(t, "\"") || !strcmp(t, "'") || !strcmp(t, "`");
}

static const char *const py_compound[] = {"if", "elif", "else", "while", "for", "def", "class",
                                          "try", "except", "finally", "with", "async"};

/* Builds the message for an ERROR node. */
static char *error_message(const chk_doc *doc, TSNode err) {
  const char *src = doc->text;
  leaves lv = {0};
  collect_leaves(err, &lv, 4096);
  char *msg = NULL;
  if (lv.n == 0) {
    msg = xstrdup(ts_node_start_byte(err) >= doc->len ? "unexpected end of file" : "syntax error");
    goto done;
  }
  /* 1. an opening bracket left unclosed inside the error */
  {
    size_t depth = 0;
    TSNode *stack = xmalloc(lv.n * sizeof *stack);
    for (size_t i = 0; i < lv.n; i++) {
      if (ts_node_is_named(lv.v[i])) continue;
      const char *t = ts_node_type(lv.v[i]);
      const pair *p;
      if ((p = pair_by_open(t)) && strchr("([{$", p->open[0])) {
        stack[depth++] = lv.v[i];
      } else if ((p = pair_by_close(t)) && strchr(")]}", p->close[0]) && depth > 0) {
        depth--;
      }
    }
    if (depth > 0) {
      TSNode open = stack[depth - 1];
      const pair *p = pair_by_open(ts_node_type(open));
      TSPoint at = ts_node_start_point(open);
      msg = xasprintf("expected '%s' to close '%s' at line %u", p->close, p->open, at.row + 1);
    }
    free(stack);
    if (msg) goto done;
  }
  /* 2. a string that never ends */
  {
    const char *t = ts_node_type(lv.v[0]);
    if (is_string_start(t)) {
      bool closed = false;
      for (size_t i = 1; i < lv.n && !closed; i++) {
        const char *u = ts_node_type(lv.v[i]);
        closed = !strcmp(u, "string_end") || !strcmp(u, t);
      }
      if (!closed) {
        msg = xstrdup("unterminated string literal");
        goto done;
      }
    }
  }
  /* 3. python: a compound statement whose header lacks its ':' */
  if (doc->lang == CHK_LANG_PYTHON && !ts_node_is_named(lv.v[0])) {
    const char *t = ts_node_type(lv.v[0]);
    bool compound = false;
    for (size_t i = 0; i < ARRAY_LEN(py_compound); i++) compound |= !strcmp(py_compound[i], t);
    bool colon = false;
    for (size_t i = 0; i < lv.n && !colon; i++) colon = !strcmp(ts_node_type(lv.v[i]), ":");
    if (compound && !colon) {
      msg = xasprintf("missing ':' after the '%s' statement's header", t);
      goto done;
    }
  }
  /* 4. otherwise: the first token that did not fit */
  {
    char *q = quote_leaf(lv.v[0], src);
    msg = xasprintf("unexpected '%s'", q);
    free(q);
  }
done:
  free(lv.v);
  return msg;
}

/* Leading blanks of line `row`; *only* is set when the text before `col` on
 * that row is all blanks. */
static uint32_t line_indent(const chk_doc *doc, uint32_t row, uint32_t col, bool *only) {
  const char *line = doc->text + doc->line_starts[row];
  const char *end = doc->text + doc->len;
  uint32_t k = 0;
  while (line + k < end && (line[k] == ' ' || line[k] == '\t')) k++;
  if (only) *only = k >= col;
  return k;
}

/* A '}' missing from the block that `open` starts is often one the code
 * meant for an inner block: with an inner "if (…) {" left open, the
 * function's '}' closes the if, and the function's '{' is what tree-sitter
 * finds unclosed. The inner block whose '}' stands on its own line, indented
 * less than the line of its '{', is the one the author left open: returns
 * its '{' (first in the document), or a null node. */
static TSNode stolen_closer(const chk_doc *doc, TSNode block) {
  TSNode none = {0};
  TSTreeCursor cur = ts_tree_cursor_new(block);
  TSNode found = none;
  bool descend = true;
  for (;;) {
    TSNode n = ts_tree_cursor_current_node(&cur);
    uint32_t k = ts_node_child_count(n);
    if (k >= 2 && !ts_node_eq(n, block)) {
      TSNode a = ts_node_child(n, 0), b = ts_node_child(n, k - 1);
      if (!strcmp(ts_node_type(a), "{") && !strcmp(ts_node_type(b), "}") && !ts_node_is_missing(b)) {
        TSPoint pa = ts_node_start_point(a), pb = ts_node_start_point(b);
        bool alone;
        uint32_t ib = line_indent(doc, pb.row, pb.column, &alone);
        if (pb.row > pa.row && alone && ib < line_indent(doc, pa.row, 0, NULL)) {
          found = a;
          break;
        }
      }
    }
    if (descend && ts_tree_cursor_goto_first_child(&cur)) continue;
    descend = true;
    if (ts_tree_cursor_goto_next_sibling(&cur)) continue;
    bool up = false;
    while ((up = ts_tree_cursor_goto_parent(&cur))) {
      if (ts_node_eq(ts_tree_cursor_current_node(&cur), block)) {
        up = false;
        break;
      }
      if (ts_tree_cursor_goto_next_sibling(&cur)) break;
    }
    if (!up) break;
  }
  ts_tree_cursor_delete(&cur);
  return found;
}

/* Builds the message for a MISSING node: names the construct it would close. */
static char *missing_message(const chk_doc *doc, TSNode parent, TSNode n) {
  const char *t = ts_node_type(n);
  bool named = ts_node_is_named(n);
  const pair *p = named ? NULL : pair_by_close(t);
  if (p) {
    /* the opener is the nearest preceding sibling token that pairs with t;
     * the walk passes the parent in: ts_node_parent/prev_sibling of a
     * zero-width MISSING node were unreliable in tree-sitter 0.20 */
    TSNode open = {0};
    bool found = false;
    TSTreeCursor cur = ts_tree_cursor_new(parent);
    for (bool more = ts_tree_cursor_goto_first_child(&cur); more;
         more = ts_tree_cursor_goto_next_sibling(&cur)) {
      TSNode s = ts_tree_cursor_current_node(&cur);
      if (ts_node_eq(s, n)) break;
      const pair *q = ts_node_is_named(s) ? NULL : pair_by_open(ts_node_type(s));
      if (q && !strcmp(q->close, t)) {
        open = s;
        found = true;
      }
    }
    ts_tree_cursor_delete(&cur);
    if (found && !strcmp(t, "}")) {
      TSNode inner = stolen_closer(doc, parent);
      if (!ts_node_is_null(inner)) open = inner;
    }
    if (found)
      return xasprintf("missing '%s' to close '%s' at line %u", t, ts_node_type(open),
                       ts_node_start_point(open).row + 1);
  }
  (void)doc;
  if (named) return xasprintf("missing %s", t);
  return xasprintf("missing '%s'", t);
}

/* Every ERROR and MISSING node of the tree, cascades folded, appended to out. */
static void tree_errors(const chk_doc *doc, TSNode root, chk_report *out) {
  size_t before = out->ndiags;
  if (!ts_node_has_error(root)) return;
  TSTreeCursor cur = ts_tree_cursor_new(root);
  /* parents of the cursor's node; the cursor API has no parent accessor */
  TSNode *parents = NULL;
  size_t depth = 0, cap = 0;
  uint32_t last_row = UINT32_MAX;
  for (;;) {
    TSNode n = ts_tree_cursor_current_node(&cur);
    bool descend = ts_node_has_error(n);
    if (ts_node_is_error(n) || ts_node_is_missing(n)) {
      descend = false; /* errors inside an error are its cascade */
      TSPoint a = ts_node_start_point(n);
      /* two errors starting on the same line: the second is almost always a
       * consequence of the first */
      if (a.row != last_row && out->ndiags - before < MAX_SYNTAX_DIAGS) {
        char *msg = ts_node_is_missing(n) && depth > 0 ? missing_message(doc, parents[depth - 1], n)
                                                       : error_message(doc, n);
        chk_report_add_diag(out, a, ts_node_end_point(n), CHK_SEV_ERROR, "syntax", msg);
        last_row = a.row;
      }
    }
    if (descend && ts_tree_cursor_goto_first_child(&cur)) {
      if (depth == cap) {
        cap = cap ? cap * 2 : 64;
        parents = xrealloc(parents, cap * sizeof *parents);
      }
      parents[depth++] = n;
      continue;
    }
    while (!ts_tree_cursor_goto_next_sibling(&cur)) {
      if (!ts_tree_cursor_goto_parent(&cur)) goto end;
      depth--;
    }
  }
end:
  free(parents);
  ts_tree_cursor_delete(&cur);
}

/* Python: the one error CPython would report (python.h), tree-sitter's
 * first error standing in for the parser errors the token checks miss. */
static void python_errors(const chk_doc *doc, TSNode root, chk_report *out) {
  chk_report ts = {0};
  tree_errors(doc, root, &ts);
  py_error first = {0};
  const chk_diag *d = NULL;
  for (size_t i = 0; i < ts.ndiags; i++) /* the walk finds them in order; be sure */
    if (!d || ts.diags[i].start.row < d->start.row ||
        (ts.diags[i].start.row == d->start.row && ts.diags[i].start.column < d->start.column))
      d = &ts.diags[i];
  if (d) {
    first.kind = PY_ERR_TS;
    first.start = doc->line_starts[d->start.row] + d->start.column;
    first.end = doc->line_starts[d->end.row] + d->end.column;
  }
  py_error e;
  py_check(doc, d ? &first : NULL, &e);
  if (e.kind == PY_ERR_TS) {
    chk_report_add_diag(out, d->start, d->end, CHK_SEV_ERROR, "syntax", xstrdup(d->message));
  } else if (e.kind != PY_ERR_NONE) {
    chk_report_add_diag(out, chk_doc_point(doc, e.start), chk_doc_point(doc, e.end), CHK_SEV_ERROR,
                        "syntax", xstrdup(e.message));
  }
  chk_report_close(&ts);
}

static void bash_stray_words(const chk_doc *doc, TSNode root, chk_report *out);

/* JavaScript: a program with errors is parsed again as js_normalize
 * rewrites it (import attributes written `assert`).
 * Bash: a script with errors is parsed again as bash_normalize rewrites it
 * (same bytes where they were): with the newline that ends its last command
 * (without it, "if x; then\n  echo" was "unexpected 'if'" at 1:1 rather than
 * "missing 'fi' to close 'if' at line 1"; LLM answers come without it) and
 * without the constructs bash accepts and the grammar does not. When the
 * copy parses without error, its stray closing words are reported
 * (bash_stray_words). */
static void rewritten_errors(const chk_doc *doc, chk_report *out) {
  bool bash = doc->lang == CHK_LANG_BASH;
  char *text = bash ? bash_normalize(doc->text, doc->len) : js_normalize(doc->text, doc->len);
  size_t len = doc->len + (bash && (doc->len == 0 || doc->text[doc->len - 1] != '\n'));
  uint32_t at;
  uint64_t budget;
  TSTree *tree = chk_context_parse(doc->ctx, doc->lang, NULL, text, len, &at, &budget);
  if (!tree) {
    tree_errors(doc, ts_tree_root_node(doc->tree), out);
  } else {
    chk_doc tmp = *doc; /* the same document, rewritten in place */
    tmp.text = text;
    tmp.len = len;
    tmp.tree = tree;
    TSNode root = ts_tree_root_node(tree);
    /* the copy parses: a stray closing word is what is left to find in it */
    if (bash && !ts_node_has_error(root)) bash_stray_words(&tmp, root, out);
    else tree_errors(&tmp, root, out);
    ts_tree_delete(tree);
  }
  free(text);
}

/* Bash: a reserved word that closes or continues a compound command (fi,
 * done, esac, then, else, elif, do) where a command starts is bash's "syntax
 * error near unexpected token" — the grammar takes it for a command's
 * name. Only an unquoted word counts ("fi" in quotes is a command). One walk
 * over the tree: linear. Reports the first. */
/* Whether a compound command of the family that `word` closes or continues
 * is still open in text[0, end): openers (if; for, while, until, select;
 * case) counted against closers (fi; done; esac), as words, comments
 * skipped. The grammar misparses some valid scripts (`if cmd` with `then`
 * on the next line after an assignment list) into a command named `then`:
 * with its opener before it, it is no stray word. */
static bool bash_family_open(const char *text, size_t end, const char *word) {
  bool loop = !strcmp(word, "do") || !strcmp(word, "done"), cas = !strcmp(word, "esac");
  long depth = 0;
  for (size_t i = 0; i < end;) {
    char ch = text[i];
    if (ch == '#' && (i == 0 || text[i - 1] == ' ' || text[i - 1] == '\t' || text[i - 1] == '\n')) {
      while (i < end && text[i] != '\n') i++;
      continue;
    }
    if (!(ch == '_' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))) {
      i++;
      continue;
    }
    size_t j = i;
    while (j < end && (text[j] == '_' || (text[j] >= 'a' && text[j] <= 'z') || (text[j] >= 'A' && text[j] <= 'Z') ||
                       (text[j] >= '0' && text[j] <= '9')))
      j++;
    size_t n = j - i;
    const char *w = text + i;
#define IS(lit) (n == sizeof lit - 1 && !memcmp(w, lit, n))
    if (loop) depth += (IS("for") || IS("while") || IS("until") || IS("select")) - IS("done");
    else if (cas) depth += IS("case") - IS("esac");
    else depth += IS("if") - IS("fi");
#undef IS
    i = j;
  }
  return depth > 0;
}

static void bash_stray_words(const chk_doc *doc, TSNode root, chk_report *out) {
  static const char *const words[] = {"fi", "done", "esac", "then", "else", "elif", "do"};
  TSTreeCursor c = ts_tree_cursor_new(root);
  int looked = 0;
  for (;;) {
    TSNode n = ts_tree_cursor_current_node(&c);
    if (!strcmp(ts_node_type(n), "command_name") && ts_node_named_child_count(n) == 1 &&
        !strcmp(ts_node_type(ts_node_named_child(n, 0)), "word")) {
      uint32_t a = ts_node_start_byte(n), b = ts_node_end_byte(n);
      for (size_t i = 0; i < ARRAY_LEN(words); i++) {
        if (strlen(words[i]) != b - a || memcmp(doc->text + a, words[i], b - a)) continue;
        /* each look back is linear: a few at most keep the pass linear */
        if (++looked > 8 || bash_family_open(doc->text, a, words[i])) break;
        chk_report_add_diag(out, ts_node_start_point(n), ts_node_end_point(n), CHK_SEV_ERROR, "syntax",
                            xasprintf("syntax error near unexpected token `%s'", words[i]));
        ts_tree_cursor_delete(&c);
        return;
      }
    }
    if (ts_tree_cursor_goto_first_child(&c)) continue;
    while (!ts_tree_cursor_goto_next_sibling(&c)) {
      if (!ts_tree_cursor_goto_parent(&c)) {
        ts_tree_cursor_delete(&c);
        return;
      }
    }
  }
}

void chk_syntax(const chk_doc *doc, chk_report *out) {
  chk_limit pre;
  if (doc->limited && doc->lang == CHK_LANG_PYTHON &&
      chk_prescan(doc->lang, doc->text, doc->len, &pre) == 0) {
    /* the parse ran out of time (the pre-scan let the text through): the
     * token checks need no tree and are linear, and an error they find is
     * what CPython would say */
    py_error e;
    py_check(doc, NULL, &e);
    if (e.kind != PY_ERR_NONE) {
      chk_report_add_diag(out, chk_doc_point(doc, e.start), chk_doc_point(doc, e.end), CHK_SEV_ERROR,
                          "syntax", xstrdup(e.message));
      return;
    }
  }
  if (doc->limited) {
    /* not parsed: the one thing to say is why, where the limit was crossed */
    chk_report_add_diag(out, chk_doc_point(doc, doc->limit.offset),
                        chk_doc_point(doc, doc->limit.offset + doc->limit.len), CHK_SEV_ERROR, "limit",
                        xstrdup(doc->limit.message));
    return;
  }
  TSNode root = ts_tree_root_node(doc->tree);
  if (doc->lang == CHK_LANG_PYTHON) python_errors(doc, root, out);
  else if (doc->lang != CHK_LANG_PYTHON && ts_node_has_error(root)) rewritten_errors(doc, out);
  else if (doc->lang == CHK_LANG_BASH) bash_stray_words(doc, root, out);
  else tree_errors(doc, root, out);
}
