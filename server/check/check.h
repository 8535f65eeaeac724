/* Checks a program before it runs: tree-sitter syntax diagnostics, import
 * extraction and resolution against the sandbox's module index, a live
 * document model for editors, and the import/body split of LLM answers. */
#ifndef CRUCIBLE_CHECK_H
#define CRUCIBLE_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <tree_sitter/api.h>

#include "lang.h"
#include "protocol/utf8.h" /* lsp_encoding */

/* ---- languages and process-wide setup ---------------------------------- */

/* The checker's languages are the registry's (util/lang.h): chk_language is
 * lang_id under another name, CHK_LANG_* are its values. */
typedef lang_id chk_language;
#define CHK_LANG_NONE LANG_NONE
#define CHK_LANG_PYTHON LANG_PYTHON
#define CHK_LANG_JAVASCRIPT LANG_JAVASCRIPT
#define CHK_LANG_BASH LANG_BASH
#define CHK_LANG_COUNT LANG_COUNT

/* A canonical name or an alias (lang_parse); CHK_LANG_NONE otherwise. */
static inline chk_language chk_language_parse(const char *name) { return lang_parse(name); }
/* Canonical name ("python", "javascript", "bash"); "none" otherwise. */
static inline const char *chk_language_name(chk_language lang) { return lang_name(lang); }
/* Guesses from a file name's extension or NULL; CHK_LANG_NONE when unknown. */
static inline chk_language chk_language_from_path(const char *path) { return lang_from_path(path); }

/* Loads the grammars and compiles the embedded queries once per process.
 * Call it at startup: returns 0, or -EINVAL with *errmsg (caller frees) set to
 * e.g. "grammars/python/imports.scm:12:5: invalid node type 'calll'" or a grammar
 * ABI mismatch. Safe to call from several threads; later calls return the
 * first result (and a fresh copy of the message). errmsg may be NULL. */
int chk_init(char **errmsg);
/* Frees the compiled queries (at exit, so leak checkers stay quiet). */
void chk_shutdown(void);

/* A reusable parser per language plus a query cursor. Not thread-safe: use one
 * per thread. Returns NULL (and *errmsg) when chk_init fails. */
typedef struct chk_context chk_context;
chk_context *chk_context_new(char **errmsg);
void chk_context_free(chk_context *self);

/* How long one parse, or one import query, of len bytes may take (CPU time
 * of the calling thread) before it is abandoned and the document reported as
 * not checked: base_us plus ns_per_byte per byte (defaults
 * CHK_BUDGET_BASE_US, CHK_BUDGET_NS_PER_BYTE). Sanitizer and -O0 builds
 * multiply it (tree-sitter runs several times slower there). */
#define CHK_BUDGET_BASE_US 5000u
#define CHK_BUDGET_NS_PER_BYTE 500u
void chk_context_set_budget(chk_context *self, uint64_t base_us, uint64_t ns_per_byte);

/* ---- limits on what is parsed ------------------------------------------- */

/* Text beyond these is not handed to tree-sitter (see docs/checks.md): far
 * above what real programs do, low enough that no input stalls the server. */
#define CHK_MAX_BYTES (2u << 20)     /* 2 MiB */
#define CHK_MAX_LINES 100000u
#define CHK_MAX_NESTING 256u         /* open brackets, $( and ${ at once */
#define CHK_MAX_NESTING_PYTHON 200u  /* CPython's tokenizer limit (MAXLEVEL) */

/* Where a limit was crossed and what to tell the user. */
typedef struct chk_limit {
  size_t offset;     /* byte where the limit was crossed */
  size_t len;        /* bytes of the token there (0 when none) */
  char message[96];  /* "nesting deeper than 256 levels: not checked", ... */
} chk_limit;

/* Scans text without parsing it: size, line count, and bracket nesting
 * (outside comments and strings; python: "too many nested parentheses" at the
 * 201st, as CPython says). Linear, no allocation. Returns 0 when the text is
 * within the limits, else -E2BIG with *hit describing the first limit
 * crossed. */
int chk_prescan(chk_language lang, const char *text, size_t len, chk_limit *hit);

/* ---- module index ------------------------------------------------------ */

/* The modules (python, javascript) or commands (bash) one interpreter in the
 * sandbox can load. Immutable once built; share it read-only. */
typedef struct chk_modset chk_modset;
/* The names one module defines (python: dir(), and a package's submodules). */
typedef struct chk_modattrs {
  char *module; /* first: the array is sorted by it */
  char **names; /* sorted */
  size_t n;
} chk_modattrs;

/* The probe program for a language (python, javascript, bash): run it with
 * the interpreter INSIDE THE SANDBOX (same PATH, same mounts as a real run); it
 * prints one JSON object on stdout. Returns a static string, NULL for an
 * unknown language. python: run as `python3 -c SCRIPT`; javascript: `node -e
 * SCRIPT`; bash: `bash -c SCRIPT`. */
const char *chk_probe_script(const char *language);

/* Builds a module set from a probe's output. interpreter is the path the probe
 * ran (kept for the cache key; may be NULL). Returns NULL and sets *errmsg when
 * the JSON is not a probe answer. */
chk_modset *chk_modset_from_probe(const char *language, const char *json, size_t len,
                                  const char *interpreter, char **errmsg);
void chk_modset_free(chk_modset *self);
chk_language chk_modset_language(const chk_modset *self);
/* Version the probe reported ("3.11.2"), never NULL. */
const char *chk_modset_version(const chk_modset *self);
const char *chk_modset_interpreter(const chk_modset *self); /* may be NULL */
size_t chk_modset_count(const chk_modset *self);
bool chk_modset_has(const chk_modset *self, const char *name);
/* The closest known name to `name` (edit distance, at most about a third of
 * its length) or NULL. Borrowed from self. */
const char *chk_modset_suggest(const chk_modset *self, const char *name);
/* Whether module (python, "collections") has name: 1 yes, 0 no (its names
 * are known and name is not one), -1 unknown (the probe did not learn that
 * module's names). */
int chk_modset_attr(const chk_modset *self, const char *module, const char *name);
/* The modules beyond the standard library (python: not in
 * sys.stdlib_module_names; javascript: not a node builtin), sorted; *n of
 * them (0 for bash, and for an index cached by an older probe). Borrowed. */
const char *const *chk_modset_third_party(const chk_modset *self, size_t *n);
/* A module other than not_module whose known names hold name
 * ("collections.abc" for Mapping), or NULL. Borrowed. */
const char *chk_modset_attr_home(const chk_modset *self, const char *name, const char *not_module);
/* The closest of module's known names to name (as chk_modset_suggest), or NULL. */
const char *chk_modset_attr_suggest(const chk_modset *self, const char *module, const char *name);

/* The module-index cache: $XDG_CACHE_HOME/crucible/modules/ (else
 * ~/.cache/crucible/modules/), one file per (language, interpreter path). An
 * entry is valid while the interpreter's resolved path and mtime are unchanged,
 * the probe script is the same, and (when version is not NULL) the version
 * matches. Returns NULL when there is no valid entry. */
chk_modset *chk_modset_cache_load(const char *language, const char *interpreter,
                                  const char *version);
/* Writes the entry for self (which needs an interpreter path) atomically.
 * Returns 0 or -errno. */
int chk_modset_cache_store(const chk_modset *self);
/* The cache directory, $XDG_CACHE_HOME/crucible/modules (util/xdg.h; caller
 * frees); NULL when there is no cache directory. */
char *chk_cache_dir(void);

/* ---- documents ---------------------------------------------------------- */

/* A program's text, its syntax tree and its language. */
typedef struct chk_doc chk_doc;

/* Parses text[0..len). Returns NULL for CHK_LANG_NONE. The doc copies the
 * text. Text beyond the limits (chk_prescan), or whose parse outlasts the
 * context's budget, is kept but not parsed: the doc then has no tree and its
 * check reports one error at the limit (chk_doc_limit). */
chk_doc *chk_doc_new(chk_context *ctx, chk_language lang, const char *text, size_t len);
void chk_doc_free(chk_doc *self);
const char *chk_doc_text(const chk_doc *self, size_t *len);
chk_language chk_doc_language(const chk_doc *self);
/* The syntax tree; NULL when the text was not parsed (chk_doc_limit). */
const TSTree *chk_doc_tree(const chk_doc *self);
/* Why the text was not parsed, or NULL when it was. Borrowed from self. */
const chk_limit *chk_doc_limit(const chk_doc *self);

/* Applies one LSP TextDocumentContentChangeEvent: when has_range is false the
 * text replaces the document; otherwise the range (line/character in enc)
 * is replaced by text. Out-of-range positions are clamped to the document as
 * LSP says. Reparses incrementally (from scratch when the doc had no tree),
 * under the same limits as chk_doc_new. Returns 0, or -E2BIG when the text
 * would exceed 4 GiB (the doc is unchanged). */
int chk_doc_change(chk_doc *self, bool has_range, uint32_t start_line, uint32_t start_char,
                   uint32_t end_line, uint32_t end_char, const char *text, size_t len,
                   lsp_encoding enc);
/* Same, from a cJSON change event {range?, text}. Returns 0 or -EINVAL. */
int chk_doc_change_json(chk_doc *self, const cJSON *change, lsp_encoding enc);

/* Converts a tree-sitter point (row, byte column) to an LSP character offset
 * in enc, and back. */
uint32_t chk_doc_point_to_lsp(const chk_doc *self, TSPoint p, lsp_encoding enc);

/* ---- checking ----------------------------------------------------------- */

typedef enum chk_status {
  CHK_STATUS_OK = 0,
  CHK_STATUS_MISSING,
  CHK_STATUS_RELATIVE,
  CHK_STATUS_DENIED,
  CHK_STATUS_UNKNOWN, /* no module index for this language was given */
} chk_status;
const char *chk_status_name(chk_status st);

typedef enum chk_severity {
  CHK_SEV_ERROR = 1,
  CHK_SEV_WARNING = 2,
  CHK_SEV_INFO = 3,
  CHK_SEV_HINT = 4
} chk_severity;

typedef struct chk_diag {
  TSPoint start, end;      /* row + byte column */
  chk_severity severity;
  const char *code;        /* static: "syntax", "missing-module", ... */
  char *message;
} chk_diag;

typedef struct chk_import {
  char *module;            /* as written: "a.b", "./x", "node:fs", "curl" */
  TSPoint start, end;
  chk_status status;
  bool optional;           /* guarded by try/except ImportError (python) or try/catch (js) */
} chk_import;

typedef struct chk_report {
  chk_diag *diags;
  size_t ndiags;
  chk_import *imports;
  size_t nimports;
} chk_report;

typedef struct chk_options {
  const chk_modset *modset;  /* NULL: imports get status unknown (bash builtins still resolve) */
  const char *const *deny;   /* NULL-terminated module names (top-level) that are denied; may be NULL */
  /* NULL-terminated names of packages the code declares as dependencies (a
   * PEP 723 block), installed before it runs: a missing module whose name
   * matches one (case, '-', '_' and '.' aside) is reported as information,
   * not an error. May be NULL. */
  const char *const *declared;
} chk_options;

/* Syntax diagnostics of the doc's tree, appended to out. */
void chk_syntax(const chk_doc *doc, chk_report *out);
/* Extracts the doc's imports (out->imports) and resolves them, adding a
 * diagnostic for each missing, relative or denied one. */
void chk_imports(chk_context *ctx, const chk_doc *doc, const chk_options *opts, chk_report *out);
/* Both. out must be zeroed (or closed) first. */
void chk_doc_check(chk_context *ctx, const chk_doc *doc, const chk_options *opts, chk_report *out);
void chk_report_close(chk_report *self);
/* Counts diagnostics of severity Error. */
size_t chk_report_errors(const chk_report *self);

/* The crucible/check result {diagnostics:[…], imports:[{module, range, status,
 * optional}]} with positions in enc. Caller owns the result. */
cJSON *chk_report_json(const chk_report *self, const chk_doc *doc, lsp_encoding enc);
/* One-shot: parse code, check it, return the JSON result. */
cJSON *chk_check_json(chk_context *ctx, chk_language lang, const char *code, size_t len,
                      const chk_options *opts, lsp_encoding enc);

/* ---- splitting answers into imports + body ------------------------------ */

/* A program split into its top-level import block and the rest, line by line,
 * or two parts joined into one program. lines[i] maps line i of the joined (or
 * original) program to its part (0 = imports, 1 = code) and the line there. */
typedef struct chk_line_origin {
  uint8_t part;  /* 0 imports, 1 code */
  uint32_t line; /* 0-based line within that part */
} chk_line_origin;

typedef struct chk_split {
  char *imports;          /* NUL-terminated */
  char *code;             /* NUL-terminated */
  chk_line_origin *lines; /* one per line of the program */
  size_t nlines;
} chk_split;

/* Joins imports and code into one program (*program, caller frees; the
 * imports, then a newline when they do not end with one, then the code) and
 * fills out with copies of both parts and the joined program's line map.
 * Returns 0. */
int chk_join_program(const char *imports, const char *code, chk_split *out, char **program);
/* Maps a line of the joined program to its origin; false when out of range. */
bool chk_split_map(const chk_split *self, uint32_t line, chk_line_origin *origin);
void chk_split_close(chk_split *self);

/* ---- doctor ------------------------------------------------------------- */

/* {grammars:[{language, abi, ok}], queries:[{file, ok, patterns, error?}],
 *  moduleIndex:[{language, interpreter, version, modules, valid}]}. */
cJSON *chk_doctor_report(void);

#endif
