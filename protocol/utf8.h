/* UTF-8 validation and conversions between byte offsets and LSP positions
 * (UTF-16 code units, UTF-8 bytes or UTF-32 code points). No I/O. */
#ifndef CRUCIBLE_PROTOCOL_UTF8_H
#define CRUCIBLE_PROTOCOL_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum lsp_encoding { LSP_ENC_UTF16 = 0, LSP_ENC_UTF8 = 1, LSP_ENC_UTF32 = 2 } lsp_encoding;

/* Decodes one strict UTF-8 sequence at s[0..len) (len > 0). Returns its
 * length (1..4) and stores the code point in *cp, or returns 0 when s[0] does
 * not start a valid, complete sequence: overlong forms, surrogates
 * (U+D800..U+DFFF), code points above U+10FFFF, stray continuation bytes and
 * sequences cut short by len or by a non-continuation byte are all invalid. */
size_t utf8_decode(const char *s, size_t len, uint32_t *cp);

/* Returns true if s[0..len) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
 * On false, *bad_offset (if not NULL) is the offset of the first byte of the
 * first invalid sequence (for a truncated sequence: where it starts). */
bool utf8_valid(const char *s, size_t len, size_t *bad_offset);

/* Column of byte offset `byte_col` within one line (line points at the
 * line's first byte, line_len bytes, no newline), in the given encoding.
 * byte_col is clamped to line_len; an offset inside a multi-byte character
 * counts as the start of that character. A byte that is not valid UTF-8
 * counts as one character of one unit (as the U+FFFD an editor shows in its
 * place). The result saturates at UINT32_MAX. */
uint32_t utf8_col_to_lsp(const char *line, size_t line_len, size_t byte_col, lsp_encoding enc);

/* Inverse: the byte offset within the line of an LSP column; clamps to the
 * line's length and never splits a UTF-8 sequence (a UTF-16 column pointing
 * between the two halves of a surrogate pair gives the start of that
 * character). */
size_t utf8_col_from_lsp(const char *line, size_t line_len, uint32_t lsp_col, lsp_encoding enc);

/* Copies s[0..len) with every invalid UTF-8 sequence and every NUL byte
 * replaced by U+FFFD, so the result can go into a JSON string. Returns a new
 * NUL-terminated string (malloc; NULL on out-of-memory) and its length in
 * *out_len (may be NULL). */
char *utf8_repair(const char *s, size_t len, size_t *out_len);

/* utf8_repair with another replacement: each byte that does not start a
 * valid sequence (a cut or malformed sequence loses its first byte only; the
 * rest are looked at again) and each NUL becomes repl[0..repl_len), which
 * may be empty (the byte is dropped). Same ownership and NULL on
 * out-of-memory. */
char *utf8_repair_with(const char *s, size_t len, const char *repl, size_t repl_len, size_t *out_len);

/* The start of the character that byte offset `off` of s[0..len) falls in:
 * off clamped to len, then moved back over continuation bytes (10xxxxxx)
 * to the nearest byte that is not one, or to 0. Cutting s there never
 * splits a well-formed sequence; len itself is always a cut point. */
size_t utf8_char_start(const char *s, size_t len, size_t off);

/* Byte offset in text[0..len) of the LSP position (line, character), both
 * 0-based: lines end at '\n', and a '\r' just before it is not part of the
 * line; a character past the end of its line means the line's end (as LSP
 * says), a line past the last one means len. Columns convert as in
 * utf8_col_from_lsp. */
size_t utf8_offset_at(const char *text, size_t len, uint32_t line, uint32_t character, lsp_encoding enc);

/* The length of the longest prefix of s[0..len) that does not end inside a
 * UTF-8 sequence that more bytes could still complete: a stream cut at that
 * point keeps its characters whole (carry the rest to the next chunk). */
size_t utf8_whole_prefix(const char *s, size_t len);

#endif
