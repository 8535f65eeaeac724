/* Check results: the report structure, the crucible/check JSON result with
 * positions in the negotiated encoding, and the doctor summary. */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "internal.h"

const char *chk_status_name(chk_status st) {
  switch (st) {
  case CHK_STATUS_OK: return "ok";
  case CHK_STATUS_MISSING: return "missing";
  case CHK_STATUS_RELATIVE: return "relative";
  case CHK_STATUS_DENIED: return "denied";
  default: return "unknown";
  }
}

void chk_report_add_diag(chk_report *r, TSPoint start, TSPoint end, chk_severity sev,
                         const char *code, char *message) {
  if (r->ndiags % 16 == 0) r->diags = xrealloc(r->diags, (r->ndiags + 16) * sizeof *r->diags);
  r->diags[r->ndiags++] = (chk_diag){start, end, sev, code, message};
}

void chk_report_close(chk_report *self) {
  for (size_t i = 0; i < self->ndiags; i++) free(self->diags[i].message);
  for (size_t i = 0; i < self->nimports; i++) free(self->imports[i].module);
  free(self->diags);
  free(self->imports);
  memset(self, 0, sizeof *self);
}

size_t chk_report_errors(const chk_report *self) {
  size_t n = 0;
  for (size_t i = 0; i < self->ndiags; i++) n += self->diags[i].severity == CHK_SEV_ERROR;
  return n;
}

static int cmp_point(TSPoint a, TSPoint b) {
  if (a.row != b.row) return a.row < b.row ? -1 : 1;
  if (a.column != b.column) return a.column < b.column ? -1 : 1;
  return 0;
}

static int cmp_diag(const void *pa, const void *pb) {
  const chk_diag *a = pa, *b = pb;
  int c = cmp_point(a->start, b->start);
  if (!c) c = (int)a->severity - (int)b->severity;
  if (!c) c = strcmp(a->message, b->message);
  return c;
}

static int cmp_import(const void *pa, const void *pb) {
  const chk_import *a = pa, *b = pb;
  int c = cmp_point(a->start, b->start);
  return c ? c : strcmp(a->module, b->module);
}

void chk_doc_check(chk_context *ctx, const chk_doc *doc, const chk_options *opts, chk_report *out) {
  chk_syntax(doc, out);
  chk_imports(ctx, doc, opts, out);
  /* query matches and tree walks interleave: present everything in document order */
  if (out->ndiags > 1) qsort(out->diags, out->ndiags, sizeof *out->diags, cmp_diag);
  if (out->nimports > 1) qsort(out->imports, out->nimports, sizeof *out->imports, cmp_import);
}

static cJSON *json_range(const chk_doc *doc, TSPoint a, TSPoint b, lsp_encoding enc) {
  cJSON *r = cJSON_CreateObject();
  cJSON *s = cJSON_AddObjectToObject(r, "start");
  cJSON_AddNumberToObject(s, "line", a.row);
  cJSON_AddNumberToObject(s, "character", chk_doc_point_to_lsp(doc, a, enc));
  cJSON *e = cJSON_AddObjectToObject(r, "end");
  cJSON_AddNumberToObject(e, "line", b.row);
  cJSON_AddNumberToObject(e, "character", chk_doc_point_to_lsp(doc, b, enc));
  return r;
}

cJSON *chk_report_json(const chk_report *self, const chk_doc *doc, lsp_encoding enc) {
  cJSON *root = cJSON_CreateObject();
  cJSON *diags = cJSON_AddArrayToObject(root, "diagnostics");
  for (size_t i = 0; i < self->ndiags; i++) {
    const chk_diag *d = &self->diags[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "range", json_range(doc, d->start, d->end, enc));
    cJSON_AddNumberToObject(o, "severity", d->severity);
    cJSON_AddStringToObject(o, "source", "crucible");
    if (d->code) cJSON_AddStringToObject(o, "code", d->code);
    cJSON_AddStringToObject(o, "message", d->message);
    cJSON_AddItemToArray(diags, o);
  }
  cJSON *imps = cJSON_AddArrayToObject(root, "imports");
  for (size_t i = 0; i < self->nimports; i++) {
    const chk_import *m = &self->imports[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "module", m->module);
    cJSON_AddItemToObject(o, "range", json_range(doc, m->start, m->end, enc));
    cJSON_AddStringToObject(o, "status", chk_status_name(m->status));
    cJSON_AddBoolToObject(o, "optional", m->optional);
    cJSON_AddItemToArray(imps, o);
  }
  return root;
}

cJSON *chk_check_json(chk_context *ctx, chk_language lang, const char *code, size_t len,
                      const chk_options *opts, lsp_encoding enc) {
  chk_doc *doc = chk_doc_new(ctx, lang, code, len);
  if (!doc) return NULL;
  chk_report r = {0};
  chk_doc_check(ctx, doc, opts, &r);
  cJSON *out = chk_report_json(&r, doc, enc);
  chk_report_close(&r);
  chk_doc_free(doc);
  return out;
}

cJSON *chk_doctor_report(void) {
  cJSON *root = cJSON_CreateObject();
  char *msg = NULL;
  int err = chk_init(&msg);
  cJSON_AddBoolToObject(root, "ok", err == 0);
  if (msg) cJSON_AddStringToObject(root, "error", msg);
  free(msg);
  cJSON_AddNumberToObject(root, "runtimeAbiMin", TREE_SITTER_MIN_COMPATIBLE_LANGUAGE_VERSION);
  cJSON_AddNumberToObject(root, "runtimeAbiMax", TREE_SITTER_LANGUAGE_VERSION);
  cJSON_AddItemToObject(root, "grammars", chk_doctor_grammars());
  cJSON_AddItemToObject(root, "queries", chk_doctor_queries());
  cJSON_AddItemToObject(root, "moduleIndex", chk_doctor_modsets());
  return root;
}
