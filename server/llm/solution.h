/* Reading the model's {prefix, imports, code} answer out of JSON or fenced text. */
#ifndef CRUCIBLE_LLM_SOLUTION_H
#define CRUCIBLE_LLM_SOLUTION_H

#include "openai.h"

typedef struct llm_solution {
  char *prefix;  /* a short description */
  char *imports; /* the import lines, "" when none */
  char *code;    /* the code without its imports */
  char *test;    /* optional assertions run after the code, in the same run; NULL when none */
  /* Packages the answer declares (the JSON "dependencies" array, or in text
   * a fenced requirements list), as written; NULL/0 when none. A PEP 723
   * block in the code is not read here (env_pep723_dependencies). */
  char **dependencies;
  size_t n_dependencies;
} llm_solution;

/* Parses an answer produced in `mode` (AUTO tries JSON, then fenced code).
 * Returns 0 and fills *out (free with llm_solution_close), or -EINVAL with
 * *err set to a new string explaining what is wrong, worded so it can be sent
 * back to the model. */
int llm_solution_parse(const char *text, llm_mode mode, llm_solution *out, char **err);
void llm_solution_close(llm_solution *self);

/* The most dependencies an answer may declare; one's longest length. */
#define LLM_MAX_DEPENDENCIES 64
#define LLM_MAX_DEPENDENCY_LEN 200

/* Finds the fenced code block to use: the first one tagged python/py/python3
 * or untagged, else the first one; an unclosed fence runs to the end. Returns
 * 0 with *code (new string), and *before (new string: the text before the
 * fence, trimmed) when before is non-NULL; -ENOENT when there is no fence. */
int llm_fenced_code_extract(const char *text, char **code, char **before);

/* Splits the leading import lines (import x / from x import y, including
 * parenthesised continuations, with blank and comment lines between them)
 * off `code`. *imports and *rest are new strings. */
void llm_imports_split(const char *code, char **imports, char **rest);

#endif
