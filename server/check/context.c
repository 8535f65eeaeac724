/* Process-wide grammar and query loading (chk_init) and the per-thread
 * parser context. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "grammars.h"
#include "internal.h"
#include "query_sources.h"

/* The tree-sitter grammar of each registry language (util/lang.h); its
 * import query is grammars/<name>/imports.scm. */
static const TSLanguage *(*const grammars[CHK_LANG_COUNT])(void) = {
    [LANG_PYTHON] = tree_sitter_python,
    [LANG_JAVASCRIPT] = tree_sitter_javascript,
    [LANG_BASH] = tree_sitter_bash,
};

static struct {
  pthread_once_t once;
  int err;
  char *errmsg;
  const TSLanguage *ts[CHK_LANG_COUNT];
  chk_query imports[CHK_LANG_COUNT];
  bool loaded;
} G = {.once = PTHREAD_ONCE_INIT};

const TSLanguage *chk_ts_language(chk_language lang) {
  return lang >= 0 && lang < CHK_LANG_COUNT ? G.ts[lang] : NULL;
}

const chk_query *chk_imports_query(chk_language lang) {
  return lang >= 0 && lang < CHK_LANG_COUNT && G.imports[lang].query ? &G.imports[lang] : NULL;
}

static const char *query_error_name(TSQueryError e) {
  switch (e) {
  case TSQueryErrorSyntax: return "syntax error";
  case TSQueryErrorNodeType: return "invalid node type";
  case TSQueryErrorField: return "invalid field name";
  case TSQueryErrorCapture: return "invalid capture name";
  case TSQueryErrorStructure: return "impossible pattern structure";
  case TSQueryErrorLanguage: return "grammar incompatible with this tree-sitter runtime";
  default: return "error";
  }
}

/* Line and column (1-based) of byte offset in text. */
static void offset_to_linecol(const char *text, uint32_t off, unsigned *line, unsigned *col) {
  *line = 1;
  *col = 1;
  for (uint32_t i = 0; i < off && text[i]; i++) {
    if (text[i] == '\n') {
      (*line)++;
      *col = 1;
    } else {
      (*col)++;
    }
  }
}

/* Reads the predicates of each pattern; unknown predicates are load errors so a
 * query never silently matches more than it says. */
static int query_load_predicates(chk_query *q, char **errmsg) {
  q->npatterns = ts_query_pattern_count(q->query);
  q->preds = xcalloc(q->npatterns ? q->npatterns : 1, sizeof *q->preds);
  q->npreds = xcalloc(q->npatterns ? q->npatterns : 1, sizeof *q->npreds);
  for (uint32_t p = 0; p < q->npatterns; p++) {
    uint32_t nsteps;
    const TSQueryPredicateStep *steps = ts_query_predicates_for_pattern(q->query, p, &nsteps);
    uint32_t start = 0;
    for (uint32_t i = 0; i < nsteps; i++) {
      if (steps[i].type != TSQueryPredicateStepTypeDone) continue;
      const TSQueryPredicateStep *s = steps + start;
      uint32_t n = i - start;
      start = i + 1;
      uint32_t len;
      const char *name = n ? ts_query_string_value_for_id(q->query, s[0].value_id, &len) : "";
      chk_predicate pr = {0};
      if (!strcmp(name, "eq?")) pr.kind = CHK_PRED_EQ;
      else if (!strcmp(name, "not-eq?")) pr.kind = CHK_PRED_NOT_EQ;
      else if (!strcmp(name, "any-of?")) pr.kind = CHK_PRED_ANY_OF;
      else {
        *errmsg = xasprintf("%s: pattern %u: unsupported predicate '#%s' (use #eq?, #not-eq?, #any-of?)",
                            q->path, p + 1, name);
        return -EINVAL;
      }
      if (n < 3 || s[1].type != TSQueryPredicateStepTypeCapture) {
        *errmsg = xasprintf("%s: pattern %u: '#%s' needs a capture and at least one argument",
                            q->path, p + 1, name);
        return -EINVAL;
      }
      pr.capture = s[1].value_id;
      pr.nargs = n - 2;
      pr.args = xcalloc(pr.nargs, sizeof *pr.args);
      for (uint32_t k = 0; k < pr.nargs; k++) {
        pr.args[k].is_capture = s[2 + k].type == TSQueryPredicateStepTypeCapture;
        pr.args[k].id = s[2 + k].value_id;
      }
      q->preds[p] = xrealloc(q->preds[p], (q->npreds[p] + 1) * sizeof *q->preds[p]);
      q->preds[p][q->npreds[p]++] = pr;
    }
  }
  return 0;
}

int chk_query_compile(chk_query *q, const TSLanguage *lang, const char *path, const char *text,
                      char **errmsg) {
  memset(q, 0, sizeof *q);
  q->path = path;
  uint32_t off = 0;
  TSQueryError qe = TSQueryErrorNone;
  q->query = ts_query_new(lang, text, (uint32_t)strlen(text), &off, &qe);
  if (!q->query) {
    unsigned line, col;
    offset_to_linecol(text, off, &line, &col);
    *errmsg = xasprintf("%s:%u:%u: %s in query", path, line, col, query_error_name(qe));
    return -EINVAL;
  }
  int err = query_load_predicates(q, errmsg);
  if (err) chk_query_close(q);
  return err;
}

void chk_query_close(chk_query *q) {
  for (uint32_t p = 0; p < q->npatterns; p++) {
    for (uint32_t k = 0; k < q->npreds[p]; k++) free(q->preds[p][k].args);
    free(q->preds[p]);
  }
  free(q->preds);
  free(q->npreds);
  if (q->query) ts_query_delete(q->query);
  memset(q, 0, sizeof *q);
}

static TSNode capture_node(const TSQueryMatch *m, uint32_t capture, bool *found) {
  for (uint16_t i = 0; i < m->capture_count; i++) {
    if (m->captures[i].index == capture) {
      *found = true;
      return m->captures[i].node;
    }
  }
  *found = false;
  return (TSNode){0};
}

static bool node_text_eq(TSNode n, const char *src, const char *s, size_t len) {
  uint32_t a = ts_node_start_byte(n), b = ts_node_end_byte(n);
  return b - a == len && memcmp(src + a, s, len) == 0;
}

bool chk_query_match_ok(const chk_query *q, const TSQueryMatch *m, const char *src) {
  if (m->pattern_index >= q->npatterns) return true;
  for (uint32_t k = 0; k < q->npreds[m->pattern_index]; k++) {
    const chk_predicate *pr = &q->preds[m->pattern_index][k];
    bool found;
    TSNode n = capture_node(m, pr->capture, &found);
    if (!found) return false;
    bool any = false;
    for (uint32_t a = 0; a < pr->nargs && !any; a++) {
      if (pr->args[a].is_capture) {
        bool f2;
        TSNode o = capture_node(m, pr->args[a].id, &f2);
        uint32_t ob = ts_node_start_byte(o);
        any = f2 && node_text_eq(n, src, src + ob, ts_node_end_byte(o) - ob);
      } else {
        uint32_t len;
        const char *s = ts_query_string_value_for_id(q->query, pr->args[a].id, &len);
        any = node_text_eq(n, src, s, len);
      }
    }
    bool ok = pr->kind == CHK_PRED_NOT_EQ ? !any : any;
    if (!ok) return false;
  }
  return true;
}

static const chk_query_source *find_source(const char *language, const char *name) {
  for (size_t i = 0; i < chk_query_source_count; i++)
    if (!strcmp(chk_query_sources[i].language, language) && !strcmp(chk_query_sources[i].name, name))
      return &chk_query_sources[i];
  return NULL;
}

static void init_once(void) {
  char *msg = NULL;
  int err = 0;
  for (int l = 0; l < CHK_LANG_COUNT && !err; l++) {
    const TSLanguage *ts = grammars[l]();
    uint32_t abi = ts_language_abi_version(ts);
    if (abi < TREE_SITTER_MIN_COMPATIBLE_LANGUAGE_VERSION || abi > TREE_SITTER_LANGUAGE_VERSION) {
      msg = xasprintf("the %s grammar has ABI %u but this tree-sitter runtime accepts %d-%d; "
                      "pin a grammar release built for ABI %d (see grammars/package.json)",
                      lang_name((lang_id)l), abi, TREE_SITTER_MIN_COMPATIBLE_LANGUAGE_VERSION,
                      TREE_SITTER_LANGUAGE_VERSION, TREE_SITTER_LANGUAGE_VERSION);
      err = -EINVAL;
      break;
    }
    G.ts[l] = ts;
    const chk_query_source *src = find_source(lang_name((lang_id)l), "imports");
    if (!src) {
      msg = xasprintf("grammars/%s/imports.scm was not embedded in this build", lang_name((lang_id)l));
      err = -EINVAL;
      break;
    }
    err = chk_query_compile(&G.imports[l], ts, src->path, src->text, &msg);
  }
  if (err) {
    for (int l = 0; l < CHK_LANG_COUNT; l++) chk_query_close(&G.imports[l]);
  }
  G.err = err;
  G.errmsg = msg;
  G.loaded = err == 0;
}

int chk_init(char **errmsg) {
  pthread_once(&G.once, init_once);
  if (G.err && errmsg) *errmsg = xstrdup(G.errmsg ? G.errmsg : "grammar loading failed");
  return G.err;
}

void chk_shutdown(void) {
  for (int l = 0; l < CHK_LANG_COUNT; l++) chk_query_close(&G.imports[l]);
  free(G.errmsg);
  G.errmsg = NULL;
  G.loaded = false;
  /* A later chk_init must not run init_once again with freed queries: mark as failed. */
  G.err = -ESHUTDOWN;
}

chk_context *chk_context_new(char **errmsg) {
  if (chk_init(errmsg) != 0) return NULL;
  chk_context *self = xcalloc(1, sizeof *self);
  for (int l = 0; l < CHK_LANG_COUNT; l++) {
    self->parser[l] = ts_parser_new();
    if (!ts_parser_set_language(self->parser[l], G.ts[l])) abort(); /* checked in chk_init */
  }
  self->cursor = ts_query_cursor_new();
  self->budget_base_us = CHK_BUDGET_BASE_US;
  self->budget_ns_per_byte = CHK_BUDGET_NS_PER_BYTE;
  return self;
}

void chk_context_set_budget(chk_context *self, uint64_t base_us, uint64_t ns_per_byte) {
  self->budget_base_us = base_us;
  self->budget_ns_per_byte = ns_per_byte;
}

void chk_context_free(chk_context *self) {
  if (!self) return;
  for (int l = 0; l < CHK_LANG_COUNT; l++) ts_parser_delete(self->parser[l]);
  ts_query_cursor_delete(self->cursor);
  free(self);
}

typedef struct string_input {
  const char *text;
  uint32_t len;
} string_input;

static const char *string_read(void *payload, uint32_t byte, TSPoint point, uint32_t *bytes_read) {
  const string_input *in = payload;
  (void)point;
  if (byte >= in->len) {
    *bytes_read = 0;
    return "";
  }
  *bytes_read = in->len - byte;
  return in->text + byte;
}

/* tree-sitter calls this every 100 parse operations; true stops the parse. */
static bool parse_progress(TSParseState *state) {
  chk_deadline *dl = state->payload;
  dl->at = state->current_byte_offset;
  return chk_deadline_passed(dl);
}

TSTree *chk_context_parse(chk_context *self, chk_language lang, const TSTree *old,
                          const char *text, size_t len, uint32_t *stopped_at, uint64_t *budget_us) {
  string_input in = {text, (uint32_t)len};
  TSInput input = {.payload = &in, .read = string_read, .encoding = TSInputEncodingUTF8};
  chk_deadline dl;
  chk_deadline_start(&dl, chk_budget_us(self->budget_base_us, self->budget_ns_per_byte, len));
  TSParseOptions opts = {.payload = &dl, .progress_callback = parse_progress};
  TSTree *tree = ts_parser_parse_with_options(self->parser[lang], old, input, opts);
  if (!tree) {
    /* A stopped parse stays in the parser to be resumed by its next call,
     * which would then continue this text instead of parsing the next one. */
    ts_parser_reset(self->parser[lang]);
  }
  if (stopped_at) *stopped_at = tree ? 0 : dl.at;
  if (budget_us) *budget_us = dl.budget_us;
  return tree;
}

static bool query_progress(TSQueryCursorState *state) {
  chk_deadline *dl = state->payload;
  dl->at = state->current_byte_offset;
  return chk_deadline_passed(dl);
}

const TSQueryCursorOptions *chk_context_query_options(chk_context *self, size_t len) {
  chk_deadline_start(&self->qdeadline, chk_budget_us(self->budget_base_us, self->budget_ns_per_byte, len));
  self->qopts = (TSQueryCursorOptions){.payload = &self->qdeadline, .progress_callback = query_progress};
  return &self->qopts;
}

cJSON *chk_doctor_grammars(void) {
  cJSON *arr = cJSON_CreateArray();
  for (int l = 0; l < CHK_LANG_COUNT; l++) {
    uint32_t abi = ts_language_abi_version(grammars[l]());
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "language", lang_name((lang_id)l));
    cJSON_AddNumberToObject(o, "abi", abi);
    cJSON_AddBoolToObject(o, "ok", abi >= TREE_SITTER_MIN_COMPATIBLE_LANGUAGE_VERSION &&
                                      abi <= TREE_SITTER_LANGUAGE_VERSION);
    cJSON_AddItemToArray(arr, o);
  }
  return arr;
}

cJSON *chk_doctor_queries(void) {
  char *msg = NULL;
  int err = chk_init(&msg);
  cJSON *arr = cJSON_CreateArray();
  for (size_t i = 0; i < chk_query_source_count; i++) {
    const chk_query_source *s = &chk_query_sources[i];
    chk_language l = chk_language_parse(s->language);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "file", s->path);
    bool ok = !err && l != CHK_LANG_NONE && G.imports[l].query;
    cJSON_AddBoolToObject(o, "ok", ok);
    if (ok) cJSON_AddNumberToObject(o, "patterns", ts_query_pattern_count(G.imports[l].query));
    else if (msg) cJSON_AddStringToObject(o, "error", msg);
    cJSON_AddItemToArray(arr, o);
  }
  free(msg);
  return arr;
}
