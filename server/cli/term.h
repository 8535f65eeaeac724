/* Printing text that came from untrusted sources (program output, the
 * model's text, stored transcripts, crawled documentation) to the user's
 * terminal without letting it drive the terminal.
 *
 * When a stream is a terminal, every control character other than newline
 * and tab is shown as `\u` and four hex digits of its code point: C0 controls
 * (`\u001b` for ESC, `\u000d` for CR, `\u0007` for BEL, `\u0008` for
 * backspace), DEL (`\u007f`) and the C1 controls U+0080..U+009F (`\u009b`,
 * the one-character CSI). Each byte that is not part of valid UTF-8 is shown
 * as `\x` and two hex digits (`\x9b` for a raw 8-bit CSI byte). Everything
 * else, and everything written to a pipe or a file, or with --raw-output,
 * passes unchanged. The same form is a valid JSON escape for characters, so
 * JSON printed to a terminal stays valid JSON. */
#ifndef CRUCIBLE_CLI_TERM_H
#define CRUCIBLE_CLI_TERM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "dbuf.h"

/* Decides, once per process, which of stdout and stderr are escaped: those
 * that are terminals, unless `raw` (the --raw-output flag). Without a call,
 * nothing is escaped. */
void term_init(bool raw);
/* Whether text written to f (stdout or stderr) is escaped. */
bool term_escaping(FILE *f);

/* Writes n bytes to f (stdout or stderr; other streams pass raw). A UTF-8
 * sequence cut at the end of one call is completed by the next, so program
 * output can be fed in whatever chunks it arrives. Flushes f. */
void term_write(FILE *f, const char *p, size_t n);
void term_puts(FILE *f, const char *s);
void term_printf(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Ends f's stream: bytes of an incomplete sequence still held are shown as
 * `\xNN` (escaping) or written (raw). */
void term_end(FILE *f);

/* Prints a JSON value and a newline on stdout: valid UTF-8 whatever its
 * strings hold (rpc_print_utf8), escaped as above on a terminal. */
void term_print_json(const cJSON *v, bool formatted);

/* The escaping itself, pure: appends the escaped form of p[0..n) to out and
 * returns how many bytes were consumed. Unless at_end, a trailing UTF-8
 * sequence that more bytes could complete is left unconsumed (at most 3
 * bytes), for the caller to pass again in front of the next chunk. */
size_t term_escape(const char *p, size_t n, bool at_end, dbuf *out);

#endif
