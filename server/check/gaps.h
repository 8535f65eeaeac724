/* Programs rewritten in place for the tree-sitter grammars' gaps: what the
 * interpreter accepts and the grammar does not (gaps.c). Private to
 * server/check. */
#ifndef CRUCIBLE_CHECK_GAPS_H
#define CRUCIBLE_CHECK_GAPS_H

#include <stddef.h>

/* A NUL-terminated copy of text[0..len) (caller frees) in which what bash
 * accepts and tree-sitter-bash 0.23 does not is rewritten in place, byte for
 * byte, plus a final newline when the text lacks one: every byte keeps its
 * offset, line and column. Its length is len, or len + 1 with that newline. */
char *bash_normalize(const char *text, size_t len);

/* The same for JavaScript: `import … assert {…}` (node 20's import
 * attributes, which tree-sitter-javascript 0.23 knows only as `with`) and a
 * '[' that starts a statement after an arrow function's body (semicolon
 * insertion). Always len bytes. */
char *js_normalize(const char *text, size_t len);

#endif
