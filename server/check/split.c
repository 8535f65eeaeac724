/* Splits a program into its top-level import block and its body, and joins
 * the two parts of a structured answer back, keeping a line map so that
 * diagnostics on one text can be placed on the other. */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "internal.h"

enum { ROW_NONE = 0, ROW_IMPORT = 1, ROW_CODE = 2 };

/* javascript: `const x = require('y')` (every declarator a bare require call). */
static bool js_is_require_decl(TSNode n, const char *src) {
  const char *t = ts_node_type(n);
  if (strcmp(t, "lexical_declaration") && strcmp(t, "variable_declaration")) return false;
  uint32_t c = ts_node_named_child_count(n);
  if (c == 0) return false;
  for (uint32_t i = 0; i < c; i++) {
    TSNode d = ts_node_named_child(n, i);
    if (strcmp(ts_node_type(d), "variable_declarator")) return false;
    TSNode v = ts_node_child_by_field_name(d, "value", 5);
    if (ts_node_is_null(v) || strcmp(ts_node_type(v), "call_expression")) return false;
    TSNode f = ts_node_child_by_field_name(v, "function", 8);
    uint32_t a = ts_node_start_byte(f), b = ts_node_end_byte(f);
    if (b - a != 7 || memcmp(src + a, "require", 7)) return false;
  }
  return true;
}

static bool is_import_node(chk_language lang, TSNode n, const char *src) {
  const char *t = ts_node_type(n);
  if (lang == CHK_LANG_PYTHON)
    return !strcmp(t, "import_statement") || !strcmp(t, "import_from_statement") ||
           !strcmp(t, "future_import_statement");
  if (lang == CHK_LANG_JAVASCRIPT)
    return !strcmp(t, "import_statement") || js_is_require_decl(n, src);
  return false;
}

/* Appends line `row` of src (with its newline, when it has one). */
static void append_line(char **buf, size_t *len, size_t *cap, const char *line, size_t n) {
  if (*len + n + 1 > *cap) {
    *cap = (*len + n + 1) * 2;
    *buf = xrealloc(*buf, *cap);
  }
  memcpy(*buf + *len, line, n);
  *len += n;
  (*buf)[*len] = '\0';
}

int chk_split_program(chk_context *ctx, chk_language lang, const char *program, size_t len,
                      chk_split *out) {
  memset(out, 0, sizeof *out);
  chk_doc *doc = chk_doc_new(ctx, lang, program, len);
  if (!doc) return -22; /* -EINVAL: unknown language */
  uint32_t nl = doc->nlines;
  uint8_t *kind = xcalloc(nl, 1);
  /* A cursor, not ts_node_named_child(root, i) (quadratic). No tree (the
   * text is over a limit): every row is code. */
  if (doc->tree) {
    TSTreeCursor cur = ts_tree_cursor_new(ts_tree_root_node(doc->tree));
    for (bool more = ts_tree_cursor_goto_first_child(&cur); more;
         more = ts_tree_cursor_goto_next_sibling(&cur)) {
      TSNode n = ts_tree_cursor_current_node(&cur);
      if (!ts_node_is_named(n) || !strcmp(ts_node_type(n), "comment")) continue;
      uint8_t k = is_import_node(lang, n, doc->text) ? ROW_IMPORT : ROW_CODE;
      uint32_t a = ts_node_start_point(n).row, b = ts_node_end_point(n).row;
      /* a node ending at column 0 of a row does not occupy it */
      if (b > a && ts_node_end_point(n).column == 0) b--;
      for (uint32_t r = a; r <= b && r < nl; r++)
        if (kind[r] != ROW_CODE) kind[r] = k; /* a row shared with code stays in the code */
    }
    ts_tree_cursor_delete(&cur);
  }
  /* blank and comment rows join the imports only when imports surround them */
  for (uint32_t r = 0; r < nl; r++) {
    if (kind[r] != ROW_NONE) continue;
    uint32_t e = r;
    while (e < nl && kind[e] == ROW_NONE) e++;
    uint8_t k = r > 0 && e < nl && kind[r - 1] == ROW_IMPORT && kind[e] == ROW_IMPORT ? ROW_IMPORT : ROW_CODE;
    for (uint32_t x = r; x < e; x++) kind[x] = k;
    r = e - 1 < r ? r : e - 1;
  }
  size_t ilen = 0, icap = 0, clen = 0, ccap = 0;
  out->imports = xstrdup("");
  out->code = xstrdup("");
  icap = ccap = 1;
  out->lines = xcalloc(nl, sizeof *out->lines);
  out->nlines = nl;
  uint32_t iline = 0, cline = 0;
  for (uint32_t r = 0; r < nl; r++) {
    size_t s = doc->line_starts[r];
    size_t e = r + 1 < nl ? doc->line_starts[r + 1] : doc->len;
    if (kind[r] == ROW_IMPORT) {
      append_line(&out->imports, &ilen, &icap, doc->text + s, e - s);
      out->lines[r] = (chk_line_origin){0, iline++};
    } else {
      append_line(&out->code, &clen, &ccap, doc->text + s, e - s);
      out->lines[r] = (chk_line_origin){1, cline++};
    }
  }
  free(kind);
  chk_doc_free(doc);
  return 0;
}

static uint32_t count_newlines(const char *s) {
  uint32_t n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

int chk_join_program(const char *imports, const char *code, chk_split *out, char **program) {
  memset(out, 0, sizeof *out);
  if (!imports) imports = "";
  if (!code) code = "";
  size_t il = strlen(imports);
  bool add_nl = il > 0 && imports[il - 1] != '\n';
  *program = xasprintf("%s%s%s", imports, add_nl ? "\n" : "", code);
  out->imports = xstrdup(imports);
  out->code = xstrdup(code);
  uint32_t ni = count_newlines(imports) + (add_nl ? 1 : 0);
  uint32_t nc = count_newlines(code) + 1;
  out->nlines = (size_t)ni + nc;
  out->lines = xcalloc(out->nlines, sizeof *out->lines);
  for (uint32_t i = 0; i < ni; i++) out->lines[i] = (chk_line_origin){0, i};
  for (uint32_t i = 0; i < nc; i++) out->lines[ni + i] = (chk_line_origin){1, i};
  return 0;
}

bool chk_split_map(const chk_split *self, uint32_t line, chk_line_origin *origin) {
  if (line >= self->nlines) return false;
  *origin = self->lines[line];
  return true;
}

void chk_split_close(chk_split *self) {
  free(self->imports);
  free(self->code);
  free(self->lines);
  memset(self, 0, sizeof *self);
}
