/* UTF-8 validation and conversions between byte offsets and LSP positions
 * (UTF-16 code units or UTF-8 bytes). No I/O. */
#ifndef CRUCIBLE_PROTOCOL_UTF8_H
#define CRUCIBLE_PROTOCOL_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum lsp_encoding { LSP_ENC_UTF16 = 0, LSP_ENC_UTF8 = 1, LSP_ENC_UTF32 = 2 } lsp_encoding;

/* Returns true if s[0..len) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
 * On false, *bad_offset (if not NULL) is the offset of the first bad byte. */
bool utf8_valid(const char *s, size_t len, size_t *bad_offset);

/* Column of byte offset `byte_col` within one line (line points at the
 * line's first byte, line_len bytes, no newline), in the given encoding. */
uint32_t utf8_col_to_lsp(const char *line, size_t line_len, size_t byte_col, lsp_encoding enc);

/* Inverse: the byte offset within the line of an LSP column; clamps to the
 * line's length and never splits a UTF-8 sequence. */
size_t utf8_col_from_lsp(const char *line, size_t line_len, uint32_t lsp_col, lsp_encoding enc);

#endif
