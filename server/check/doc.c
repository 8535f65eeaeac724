/* The live document model: text + tree + language, LSP incremental changes
 * applied with ts_tree_edit and an incremental reparse, and conversions between
 * LSP positions (UTF-16 by default, UTF-8 or UTF-32 when negotiated) and bytes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "internal.h"

static void index_lines(chk_doc *self) {
  uint32_t n = 1;
  for (const char *p = self->text, *end = self->text + self->len;
       (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++)
    n++;
  if (n > self->nlines || !self->line_starts) {
    free(self->line_starts);
    self->line_starts = xmalloc(n * sizeof *self->line_starts);
  }
  self->nlines = n;
  uint32_t k = 0;
  self->line_starts[k++] = 0;
  for (const char *p = self->text, *end = self->text + self->len;
       (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++)
    self->line_starts[k++] = (uint32_t)(p - self->text + 1);
}

/* Byte length of line `row` without its newline. */
static size_t line_len(const chk_doc *self, uint32_t row) {
  size_t start = self->line_starts[row];
  size_t end = row + 1 < self->nlines ? self->line_starts[row + 1] - 1 : self->len;
  return end - start;
}

size_t chk_doc_offset(const chk_doc *self, uint32_t line, uint32_t character, lsp_encoding enc) {
  if (line >= self->nlines) return self->len;
  size_t start = self->line_starts[line];
  return start + utf8_col_from_lsp(self->text + start, line_len(self, line), character, enc);
}

uint32_t chk_doc_point_to_lsp(const chk_doc *self, TSPoint p, lsp_encoding enc) {
  if (p.row >= self->nlines) return p.column;
  size_t start = self->line_starts[p.row];
  return utf8_col_to_lsp(self->text + start, line_len(self, p.row), p.column, enc);
}

TSPoint chk_doc_point(const chk_doc *self, size_t off) {
  if (off > self->len) off = self->len;
  /* binary search for the last line start <= off */
  uint32_t lo = 0, hi = self->nlines;
  while (hi - lo > 1) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (self->line_starts[mid] <= off) lo = mid;
    else hi = mid;
  }
  return (TSPoint){lo, (uint32_t)(off - self->line_starts[lo])};
}

static void set_text(chk_doc *self, const char *text, size_t len) {
  if (len + 1 > self->cap) {
    self->cap = len + 1 + len / 4;
    free(self->text);
    self->text = xmalloc(self->cap);
  }
  memcpy(self->text, text, len);
  self->text[len] = '\0';
  self->len = len;
  index_lines(self);
}

/* Parses the doc's text (old: its previous tree, already edited, or NULL;
 * taken over) unless the pre-scan refuses it; a refused text or a parse past
 * the budget leaves the doc without a tree and with the reason in limit. */
static void doc_parse(chk_doc *self, TSTree *old) {
  TSTree *tree = NULL;
  if (chk_prescan(self->lang, self->text, self->len, &self->limit) == 0) {
    uint32_t at;
    uint64_t budget_us;
    tree = chk_context_parse(self->ctx, self->lang, old, self->text, self->len, &at, &budget_us);
    if (!tree) {
      self->limit.offset = at;
      self->limit.len = 0;
      snprintf(self->limit.message, sizeof self->limit.message,
               "parsing took longer than %llu ms: not checked",
               (unsigned long long)(budget_us + 999) / 1000);
    }
  }
  if (old) ts_tree_delete(old);
  self->tree = tree;
  self->limited = tree == NULL;
}

chk_doc *chk_doc_new(chk_context *ctx, chk_language lang, const char *text, size_t len) {
  if (!ctx || lang < 0 || lang >= CHK_LANG_COUNT || len > UINT32_MAX - 1) return NULL;
  chk_doc *self = xcalloc(1, sizeof *self);
  self->ctx = ctx;
  self->lang = lang;
  set_text(self, text ? text : "", text ? len : 0);
  doc_parse(self, NULL);
  return self;
}

void chk_doc_free(chk_doc *self) {
  if (!self) return;
  if (self->tree) ts_tree_delete(self->tree);
  free(self->text);
  free(self->line_starts);
  free(self);
}

const char *chk_doc_text(const chk_doc *self, size_t *len) {
  if (len) *len = self->len;
  return self->text;
}

chk_language chk_doc_language(const chk_doc *self) { return self->lang; }
const TSTree *chk_doc_tree(const chk_doc *self) { return self->tree; }
const chk_limit *chk_doc_limit(const chk_doc *self) { return self->limited ? &self->limit : NULL; }

int chk_doc_change(chk_doc *self, bool has_range, uint32_t start_line, uint32_t start_char,
                   uint32_t end_line, uint32_t end_char, const char *text, size_t len,
                   lsp_encoding enc) {
  if (!text) len = 0;
  if (!has_range) {
    if (len > UINT32_MAX - 1) return -E2BIG;
    set_text(self, text, len);
    TSTree *old = self->tree;
    self->tree = NULL;
    if (old) ts_tree_delete(old);
    doc_parse(self, NULL);
    return 0;
  }
  size_t a = chk_doc_offset(self, start_line, start_char, enc);
  size_t b = chk_doc_offset(self, end_line, end_char, enc);
  if (b < a) { size_t t = a; a = b; b = t; }
  if (self->len - (b - a) + len > UINT32_MAX - 1) return -E2BIG;
  TSInputEdit edit = {
    .start_byte = (uint32_t)a,
    .old_end_byte = (uint32_t)b,
    .new_end_byte = (uint32_t)(a + len),
    .start_point = chk_doc_point(self, a),
    .old_end_point = chk_doc_point(self, b),
  };
  /* new end point: start point advanced over the inserted text */
  TSPoint ne = edit.start_point;
  for (size_t i = 0; i < len; i++) {
    if (text[i] == '\n') { ne.row++; ne.column = 0; }
    else ne.column++;
  }
  edit.new_end_point = ne;

  size_t newlen = self->len - (b - a) + len;
  if (newlen + 1 > self->cap) {
    self->cap = newlen + 1 + newlen / 4;
    self->text = xrealloc(self->text, self->cap);
  }
  memmove(self->text + a + len, self->text + b, self->len - b + 1); /* includes the NUL */
  memcpy(self->text + a, text, len);
  self->len = newlen;
  index_lines(self);

  /* no tree (the text was over a limit): parse the new text from scratch */
  TSTree *old = self->tree;
  self->tree = NULL;
  if (old) ts_tree_edit(old, &edit);
  doc_parse(self, old);
  return 0;
}

static int json_pos(const cJSON *pos, uint32_t *line, uint32_t *ch) {
  const cJSON *l = cJSON_GetObjectItemCaseSensitive(pos, "line");
  const cJSON *c = cJSON_GetObjectItemCaseSensitive(pos, "character");
  if (!cJSON_IsNumber(l) || !cJSON_IsNumber(c) || l->valuedouble < 0 || c->valuedouble < 0)
    return -EINVAL;
  *line = l->valuedouble > UINT32_MAX ? UINT32_MAX : (uint32_t)l->valuedouble;
  *ch = c->valuedouble > UINT32_MAX ? UINT32_MAX : (uint32_t)c->valuedouble;
  return 0;
}

int chk_doc_change_json(chk_doc *self, const cJSON *change, lsp_encoding enc) {
  const cJSON *text = cJSON_GetObjectItemCaseSensitive(change, "text");
  if (!cJSON_IsString(text)) return -EINVAL;
  const cJSON *range = cJSON_GetObjectItemCaseSensitive(change, "range");
  const char *s = text->valuestring;
  if (!range || cJSON_IsNull(range)) return chk_doc_change(self, false, 0, 0, 0, 0, s, strlen(s), enc);
  uint32_t sl, sc, el, ec;
  if (json_pos(cJSON_GetObjectItemCaseSensitive(range, "start"), &sl, &sc) ||
      json_pos(cJSON_GetObjectItemCaseSensitive(range, "end"), &el, &ec))
    return -EINVAL;
  return chk_doc_change(self, true, sl, sc, el, ec, s, strlen(s), enc);
}
