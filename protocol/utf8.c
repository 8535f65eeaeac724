/* Strict UTF-8 decoding and LSP column conversions (UTF-16, UTF-8, UTF-32). */
#include "utf8.h"

#include <stdlib.h>
#include <string.h>


size_t utf8_decode(const char *s, size_t len, uint32_t *cp)
{
  const unsigned char *p = (const unsigned char *)s;
  unsigned char c = p[0];
  size_t need;
  uint32_t v;
  /* The bounds of the second byte encode the overlong, surrogate and
   * > U+10FFFF rules at once (Unicode, table 3-7 "well-formed UTF-8"). */
  unsigned char lo = 0x80, hi = 0xBF;

  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  if (c < 0xC2)
    return 0; /* continuation byte, or overlong 2-byte lead C0/C1 */
  if (c < 0xE0) {
    need = 1;
    v = c & 0x1F;
  } else if (c < 0xF0) {
    need = 2;
    v = c & 0x0F;
    if (c == 0xE0)
      lo = 0xA0;
    else if (c == 0xED)
      hi = 0x9F;
  } else if (c < 0xF5) {
    need = 3;
    v = c & 0x07;
    if (c == 0xF0)
      lo = 0x90;
    else if (c == 0xF4)
      hi = 0x8F;
  } else {
    return 0;
  }
  if (len < need + 1)
    return 0;
  if (p[1] < lo || p[1] > hi)
    return 0;
  v = (v << 6) | (p[1] & 0x3F);
  for (size_t i = 2; i <= need; i++) {
    if ((p[i] & 0xC0) != 0x80)
      return 0;
    v = (v << 6) | (p[i] & 0x3F);
  }
  *cp = v;
  return need + 1;
}

bool utf8_valid(const char *s, size_t len, size_t *bad_offset)
{
  size_t i = 0;
  while (i < len) {
    /* ASCII fast path, eight bytes at a time; most protocol traffic is ASCII. */
    while (i + 8 <= len) {
      uint64_t w;
      memcpy(&w, s + i, 8);
      if (w & 0x8080808080808080ull)
        break;
      i += 8;
    }
    if (i >= len)
      break;
    if ((unsigned char)s[i] < 0x80) {
      i++;
      continue;
    }
    uint32_t cp;
    size_t n = utf8_decode(s + i, len - i, &cp);
    if (n == 0) {
      if (bad_offset)
        *bad_offset = i;
      return false;
    }
    i += n;
  }
  return true;
}

/* Length in bytes and width in units of the character at line[pos]; an
 * invalid byte is a one-byte, one-unit character. */
static size_t char_at(const char *line, size_t line_len, size_t pos, lsp_encoding enc, uint32_t *units)
{
  uint32_t cp;
  size_t n = utf8_decode(line + pos, line_len - pos, &cp);
  if (n == 0) {
    *units = 1;
    return 1;
  }
  switch (enc) {
  case LSP_ENC_UTF8: *units = (uint32_t)n; break;
  case LSP_ENC_UTF32: *units = 1; break;
  case LSP_ENC_UTF16:
  default: *units = cp >= 0x10000 ? 2 : 1; break;
  }
  return n;
}

uint32_t utf8_col_to_lsp(const char *line, size_t line_len, size_t byte_col, lsp_encoding enc)
{
  uint64_t col = 0;
  size_t pos = 0;
  if (byte_col > line_len)
    byte_col = line_len;
  while (pos < byte_col) {
    uint32_t units;
    size_t n = char_at(line, line_len, pos, enc, &units);
    if (pos + n > byte_col)
      break; /* byte_col is inside this character: round down to its start */
    pos += n;
    col += units;
    if (col >= UINT32_MAX)
      return UINT32_MAX;
  }
  return (uint32_t)col;
}

size_t utf8_col_from_lsp(const char *line, size_t line_len, uint32_t lsp_col, lsp_encoding enc)
{
  uint64_t col = 0;
  size_t pos = 0;
  while (pos < line_len) {
    uint32_t units;
    size_t n = char_at(line, line_len, pos, enc, &units);
    if (col + units > lsp_col)
      break;
    col += units;
    pos += n;
  }
  return pos;
}

char *utf8_repair_with(const char *s, size_t len, const char *repl, size_t repl_len, size_t *out_len)
{
  /* Each bad byte becomes repl_len bytes at most (and a good one stays one). */
  size_t grow = repl_len > 1 ? repl_len : 1;
  if (len > (SIZE_MAX - 1) / grow)
    return NULL;
  char *out = malloc(len * grow + 1);
  if (!out)
    return NULL;
  size_t o = 0;
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    size_t n = s[i] ? utf8_decode(s + i, len - i, &cp) : 0;
    if (n) {
      memcpy(out + o, s + i, n);
      o += n;
      i += n;
    } else {
      if (repl_len)
        memcpy(out + o, repl, repl_len);
      o += repl_len;
      i++;
    }
  }
  out[o] = '\0';
  if (out_len)
    *out_len = o;
  return out;
}

char *utf8_repair(const char *s, size_t len, size_t *out_len)
{
  return utf8_repair_with(s, len, "\xEF\xBF\xBD", 3, out_len);
}

size_t utf8_char_start(const char *s, size_t len, size_t off)
{
  if (off >= len)
    return len;
  while (off > 0 && ((unsigned char)s[off] & 0xC0) == 0x80)
    off--;
  return off;
}

size_t utf8_offset_at(const char *text, size_t len, uint32_t line, uint32_t character, lsp_encoding enc)
{
  size_t off = 0;
  if (len == 0)
    return 0;
  for (uint32_t l = 0; l < line; l++) {
    const char *nl = memchr(text + off, '\n', len - off);
    if (!nl)
      return len;
    off = (size_t)(nl - text) + 1;
  }
  const char *nl = memchr(text + off, '\n', len - off);
  size_t line_len = nl ? (size_t)(nl - (text + off)) : len - off;
  if (line_len && text[off + line_len - 1] == '\r')
    line_len--;
  return off + utf8_col_from_lsp(text + off, line_len, character, enc);
}

size_t utf8_whole_prefix(const char *s, size_t len) {
  /* Look back at most 3 bytes for the start of a multi-byte sequence. */
  size_t back = len < 3 ? len : 3;
  for (size_t k = 1; k <= back; k++) {
    unsigned char c = (unsigned char)s[len - k];
    if ((c & 0xC0) == 0x80) continue; /* continuation byte: keep looking */
    size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (need > k && c >= 0xC2 && c <= 0xF4) return len - k; /* incomplete: cut before it */
    return len;
  }
  return len;
}
