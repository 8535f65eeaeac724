/* Runtime errors to diagnostics: parses an interpreter's stderr (python,
 * node, bash) into {line, column, message} entries on the user's script. */
#ifndef CRUCIBLE_SANDBOX_TRACEBACK_H
#define CRUCIBLE_SANDBOX_TRACEBACK_H

#include <stddef.h>

#include "sandbox.h"

/* Parses stderr text (len bytes, need not be NUL-terminated) written by the
 * interpreter for lang running the file whose base name is script (e.g.
 * "main.py"). Fills at most max entries of out and returns how many: python
 * gives the last traceback frame in the script (or a SyntaxError's
 * location) with the exception line as message; node the script's frame of
 * the uncaught error (header "file:N" plus caret, or the first stack frame
 * in the script); bash every "script: line N: msg" (first message per line).
 * Lines are 0-based with line_offset added; entries whose line would be
 * negative are dropped. Each out[i].message is a new string the caller
 * frees (sbx_diags_free). Pure: no I/O. */
int sbx_traceback_parse(sbx_lang lang, const char *text, size_t len, const char *script,
                        int line_offset, sbx_diag *out, int max);
/* Frees the messages of n entries (not the array). */
void sbx_diags_free(sbx_diag *diags, int n);

#endif
