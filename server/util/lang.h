/* The languages Crucible checks and runs: one table, keyed by lang_id, with
 * every name the protocol accepts, file extensions and what the sandbox
 * needs. Pure data; any folder may include it. What is layer-specific stays
 * in its layer, indexed by the same enum: grammars and import queries in
 * check/, tracebacks and version probes in sandbox/. */
#ifndef CRUCIBLE_LANG_H
#define CRUCIBLE_LANG_H

typedef enum lang_id {
  LANG_NONE = -1, /* not a language we know */
  LANG_PYTHON = 0,
  LANG_JAVASCRIPT,
  LANG_BASH,
  LANG_COUNT
} lang_id;

/* The language of a request that names none (the protocol's default). */
#define LANG_DEFAULT LANG_PYTHON

/* The canonical names for messages and usage text, in enum order (a unit
 * test holds them to the table). */
#define LANG_NAMES_TEXT "python, javascript or bash"
#define LANG_NAMES_USAGE "python|javascript|bash"

typedef struct lang_info {
  const char *name;            /* canonical, as results, settings and the cache spell it */
  const char *aliases[4];      /* other names a `language` parameter or --language accepts */
  const char *lsp_ids[2];      /* further LSP languageIds (textDocument/didOpen) */
  const char *exts[4];         /* file extensions, with the dot */
  const char *script;          /* the program's file name in the sandbox's scratch dir */
  const char *interpreter;     /* default of sandbox.interpreters.<name> */
  const char *candidates[4];   /* where to look when no interpreter is configured, in order */
  const char *program;         /* what to install, in words */
  const char *package;         /* the Debian package that provides it */
} lang_info;

/* The entry of id; NULL when id is not in [0, LANG_COUNT). */
const lang_info *lang_get(lang_id id);

/* The canonical name of id; "none" when id is not a language. */
const char *lang_name(lang_id id);

/* A language by its canonical name or an alias ("py", "python3", "js",
 * "node", "sh", "shell"); exact, case-sensitive. LANG_NONE otherwise
 * (also for NULL). */
lang_id lang_parse(const char *name);

/* A language by LSP languageId: what lang_parse accepts, plus the editors'
 * own ids ("shellscript"). LANG_NONE otherwise (also for NULL). */
lang_id lang_from_lsp_id(const char *language_id);

/* A language by the extension of a file name or path ("x/y.py", "a.mjs");
 * the extension is what follows the last '.' of the last path component.
 * LANG_NONE when there is none or it is not ours (also for NULL). */
lang_id lang_from_path(const char *path);

#endif
