/* Python checks that follow CPython rather than the tree-sitter grammar: a
 * tokenizer with CPython's rules (indentation, brackets, strings, numbers)
 * and the statement checks CPython's parser and compiler make on top of it.
 * Private to server/check. */
#ifndef CRUCIBLE_CHECK_PYTHON_H
#define CRUCIBLE_CHECK_PYTHON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

typedef enum py_toktype {
  PY_ENDMARKER = 0,
  PY_NAME,
  PY_NUMBER,
  PY_STRING,
  PY_OP,
  PY_NEWLINE,
  PY_INDENT,
  PY_DEDENT,
  PY_ERRORTOKEN, /* the tokenizer stopped: the error says why */
} py_toktype;

typedef struct py_token {
  py_toktype type;
  uint32_t start, end; /* bytes; INDENT/DEDENT/NEWLINE/ENDMARKER are empty */
} py_token;

/* How an error found by the checks ranks against the others, after CPython
 * (Parser/pegen_errors.c, _PyPegen_set_syntax_error): the parser reports the
 * first error it meets, except that a tokenizer error anywhere later in the
 * file replaces a parser error, and an unclosed bracket at the end of the
 * file replaces a parser error on a later line than the bracket. Compiler
 * errors come only when the whole file parses. */
typedef enum py_errkind {
  PY_ERR_NONE = 0,
  PY_ERR_TOKEN,   /* tokenizer error raised at once (strings, numbers, brackets, characters) */
  PY_ERR_INDENT,  /* tokenizer error raised only where the parser meets it: indentation
                   * (dedent mismatch, TabError, too deep), a character after '\' */
  PY_ERR_EOF,     /* end of file inside brackets or after a backslash */
  PY_ERR_PARSE,   /* parser error */
  PY_ERR_INDENT_TOKEN, /* "unexpected indent": a parser error no tokenizer error replaces */
  PY_ERR_COMPILE, /* compiler error: return outside function, duplicate argument, ... */
  PY_ERR_TS,      /* tree-sitter's first error, handed to py_check */
} py_errkind;

typedef struct py_error {
  py_errkind kind;
  uint32_t start, end;  /* bytes */
  uint32_t bracket;     /* PY_ERR_EOF inside brackets: the innermost open bracket's byte */
  char message[160];
} py_error;

/* CPython's tokenizer over text[0..len). Not NUL-dependent. */
typedef struct py_tokenizer {
  const char *s;
  size_t len, pos;
  bool atbol, cont;        /* at the beginning of a line; after a backslash continuation */
  int indent, pendin;      /* indentation stack top; pending INDENT (>0) or DEDENT (<0) tokens */
  int indstack[100], altindstack[100];
  int level;               /* open brackets */
  char paren[200];
  uint32_t paren_at[200];  /* byte of each open bracket */
  uint32_t line_start;     /* byte where the current line starts */
  bool done;
  py_error err;            /* set when a PY_ERRORTOKEN was returned */
} py_tokenizer;

void py_tokenizer_init(py_tokenizer *self, const char *text, size_t len);
/* The next token. After PY_ENDMARKER or PY_ERRORTOKEN it returns the same
 * again. Linear over the text in total. */
py_token py_tokenizer_next(py_tokenizer *self);

/* Checks a Python document the way CPython's compile() would and sets *out
 * to the one error it would report (kind PY_ERR_NONE when the program
 * compiles). ts, when not NULL, is tree-sitter's first error (kind
 * PY_ERR_TS): it stands for the parser errors the token checks do not
 * find, and out is a copy of it when it is the one to report. Linear in the
 * document's size. */
void py_check(const chk_doc *doc, const py_error *ts, py_error *out);

#endif
