/* Shared internals of the check module: loaded languages, compiled queries,
 * the per-thread context, and the document's line index. */
#ifndef CRUCIBLE_CHECK_INTERNAL_H
#define CRUCIBLE_CHECK_INTERNAL_H

#include "check.h"

/* A compiled query plus the predicates of each of its patterns. */
typedef struct chk_pred_step {
  bool is_capture;
  uint32_t id; /* capture index or string id */
} chk_pred_step;

typedef struct chk_predicate {
  enum { CHK_PRED_EQ, CHK_PRED_NOT_EQ, CHK_PRED_ANY_OF } kind;
  uint32_t capture;     /* first argument */
  chk_pred_step *args;  /* remaining arguments */
  uint32_t nargs;
} chk_predicate;

typedef struct chk_query {
  const char *path;
  TSQuery *query;
  chk_predicate **preds;  /* per pattern */
  uint32_t *npreds;       /* per pattern */
  uint32_t npatterns;
} chk_query;

/* Compiles a query and reads its predicates. Returns 0, or -EINVAL with
 * *errmsg "PATH:LINE:COL: what" (caller frees). */
int chk_query_compile(chk_query *q, const TSLanguage *lang, const char *path, const char *text,
                      char **errmsg);
void chk_query_close(chk_query *q);

/* The process-wide state chk_init builds; read-only afterwards. */
const TSLanguage *chk_ts_language(chk_language lang);
const chk_query *chk_imports_query(chk_language lang);

/* True when the match satisfies its pattern's predicates (text from src). */
bool chk_query_match_ok(const chk_query *q, const TSQueryMatch *m, const char *src);

/* A CPU-time deadline, polled from tree-sitter's progress callbacks. */
typedef struct chk_deadline {
  uint64_t end_ns;
  uint64_t budget_us;
  uint32_t at;    /* byte the parse or query had reached when last polled */
  uint32_t polls;
  bool expired;
} chk_deadline;

void chk_deadline_start(chk_deadline *self, uint64_t budget_us);
/* True (and stays true) once the budget is spent. */
bool chk_deadline_passed(chk_deadline *self);
/* The budget for len bytes, scaled for sanitizer and -O0 builds. */
uint64_t chk_budget_us(uint64_t base_us, uint64_t ns_per_byte, size_t len);

struct chk_context {
  TSParser *parser[CHK_LANG_COUNT];
  TSQueryCursor *cursor;
  uint64_t budget_base_us, budget_ns_per_byte;
  /* The import query's deadline: the cursor keeps a pointer to qopts until
   * its next exec, so both live as long as the cursor. */
  chk_deadline qdeadline;
  TSQueryCursorOptions qopts;
};

/* Parses text with the context's parser for lang (old may be NULL) under the
 * context's budget. Returns the tree, or NULL when the budget ran out, with
 * *stopped_at the byte the parser had reached and *budget_us its budget; the
 * parser is reset then, so its next parse starts afresh. */
TSTree *chk_context_parse(chk_context *self, chk_language lang, const TSTree *old,
                          const char *text, size_t len, uint32_t *stopped_at, uint64_t *budget_us);
/* Starts the import query's deadline for a document of len bytes and returns
 * the options to pass to ts_query_cursor_exec_with_options. */
const TSQueryCursorOptions *chk_context_query_options(chk_context *self, size_t len);

struct chk_doc {
  chk_context *ctx;
  chk_language lang;
  char *text;
  size_t len;
  size_t cap;
  TSTree *tree;
  uint32_t *line_starts; /* byte offset of each line's first byte */
  uint32_t nlines;
  bool limited;          /* not parsed (tree is NULL): limit says why */
  chk_limit limit;
};

/* Row and byte column of a byte offset (clamped to the text). */
TSPoint chk_doc_point(const chk_doc *self, size_t off);

/* Byte offset of an LSP position (clamped). */
size_t chk_doc_offset(const chk_doc *self, uint32_t line, uint32_t character, lsp_encoding enc);

/* Adds a diagnostic; message is taken over. */
void chk_report_add_diag(chk_report *r, TSPoint start, TSPoint end, chk_severity sev,
                         const char *code, char *message);

/* The PATH the bash probe saw ("" when unknown). */
const char *chk_modset_path(const chk_modset *self);

/* chk_imports, with the query either run only around the words every
 * import contains (prefilter, what chk_imports does) or over the whole tree
 * (the reference the unit tests compare against). */
void chk_imports_scan(chk_context *ctx, const chk_doc *doc, const chk_options *opts, bool prefilter,
                      chk_report *out);

/* Text of a node as a new string. */
char *chk_node_text(TSNode n, const char *src);

/* Parts of chk_doctor_report: grammars, queries, cached module indexes. */
cJSON *chk_doctor_grammars(void);
cJSON *chk_doctor_queries(void);
cJSON *chk_doctor_modsets(void);

#endif
