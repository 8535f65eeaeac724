/* CPython's tokenizer (Parser/tokenizer.c, 3.11) over a document's text:
 * the same indentation rules (tabs to multiples of 8, a second count with
 * tabs as 1 for TabError, form feeds reset the column, blank and comment-only
 * lines and lines inside brackets or after a backslash ignored), the same
 * bracket stack, string and number rules, and the same error messages and
 * positions. It reads the text once and allocates nothing. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "python.h"

#define TABSIZE 8
#define MAXINDENT 100
#define MAXLEVEL 200

void py_tokenizer_init(py_tokenizer *self, const char *text, size_t len) {
  memset(self, 0, sizeof *self);
  self->s = text;
  self->len = len;
  self->atbol = true;
  /* a UTF-8 byte order mark is not part of the program */
  if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) self->pos = self->line_start = 3;
}

/* The character at i; CPython ends every file with a newline, so the end of
 * a text that lacks one reads as '\n' once, then EOF (-1). A '\r' before
 * '\n' is skipped by the callers (CPython translates "\r\n" to "\n"). */
static int at(const py_tokenizer *t, size_t i) {
  if (i < t->len) return (unsigned char)t->s[i];
  if (i == t->len && t->len > 0 && t->s[t->len - 1] != '\n') return '\n';
  return -1;
}

static bool is_id_start(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 128;
}
static bool is_id_char(int c) { return is_id_start(c) || (c >= '0' && c <= '9'); }
static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_xdigit(int c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Where the text ends as a position: on the last line, at its newline, as
 * CPython places the tokens it makes at the end (DEDENT, ENDMARKER). */
static uint32_t eof_pos(const py_tokenizer *t) {
  return (uint32_t)(t->len > 0 && t->s[t->len - 1] == '\n' ? t->len - 1 : t->len);
}

static py_token tok(py_toktype type, size_t start, size_t end) {
  return (py_token){type, (uint32_t)start, (uint32_t)end};
}

static py_token fail(py_tokenizer *t, py_errkind kind, size_t start, size_t end, const char *fmt,
                     ...) __attribute__((format(printf, 5, 6)));
static py_token fail(py_tokenizer *t, py_errkind kind, size_t start, size_t end, const char *fmt,
                     ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t->err.message, sizeof t->err.message, fmt, ap);
  va_end(ap);
  t->err.kind = kind;
  t->err.start = (uint32_t)start;
  t->err.end = (uint32_t)(end > start ? end : start);
  t->done = true;
  return tok(PY_ERRORTOKEN, start, end);
}

/* ---- non-ASCII characters CPython refuses in identifiers ---------------- */

/* Decodes one UTF-8 sequence at s[i..len); returns its length (1 for a
 * stray byte, whose value is then returned as is). */
static size_t cp_decode(const char *s, size_t len, size_t i, uint32_t *cp) {
  unsigned char c = (unsigned char)s[i];
  size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
  if (n == 1 || i + n > len) {
    *cp = c;
    return 1;
  }
  uint32_t v = c & (0x3F >> (n - 1));
  for (size_t k = 1; k < n; k++) {
    unsigned char d = (unsigned char)s[i + k];
    if ((d & 0xC0) != 0x80) {
      *cp = c;
      return 1;
    }
    v = (v << 6) | (d & 0x3F);
  }
  *cp = v;
  return n;
}

/* Characters that are neither letters nor digits nor connectors, so not
 * part of any identifier (a conservative subset of what CPython's
 * verify_identifier refuses: punctuation, symbols, spaces, format
 * characters; what is not listed is taken as a letter). */
typedef struct cp_range {
  uint32_t lo, hi;
  bool printable;
} cp_range;

static const cp_range not_identifier[] = {
    {0x00A0, 0x00A0, false}, {0x00A1, 0x00A9, true},  {0x00AB, 0x00AC, true},
    {0x00AD, 0x00AD, false}, {0x00AE, 0x00B4, true},  {0x00B6, 0x00B6, true},
    {0x00B8, 0x00B9, true},  {0x00BB, 0x00BF, true},  {0x00D7, 0x00D7, true},
    {0x00F7, 0x00F7, true},  {0x2000, 0x200F, false}, {0x2010, 0x2027, true},
    {0x2028, 0x202F, false}, {0x2030, 0x203E, true},  {0x2041, 0x2053, true},
    {0x2055, 0x205E, true},  {0x205F, 0x206F, false}, {0x2190, 0x23FF, true},
    {0x2500, 0x27BF, true},  {0x2E00, 0x2E7F, true},  {0x3000, 0x3000, false},
    {0x3001, 0x3004, true},  {0x3008, 0x3020, true},  {0xFE10, 0xFE19, true},
    {0xFE30, 0xFE32, true},  {0xFE35, 0xFE4C, true},  {0xFE50, 0xFE6B, true},
    {0xFEFF, 0xFEFF, false}, {0xFF01, 0xFF0F, true},  {0xFF1A, 0xFF20, true},
    {0xFF3B, 0xFF3E, true},  {0xFF40, 0xFF40, true},  {0xFF5B, 0xFF65, true},
    {0x1F000, 0x1FAFF, true},
};

static const cp_range *refused(uint32_t cp) {
  for (size_t i = 0; i < sizeof not_identifier / sizeof *not_identifier; i++)
    if (cp >= not_identifier[i].lo && cp <= not_identifier[i].hi) return &not_identifier[i];
  return NULL;
}

/* Checks the non-ASCII characters of the identifier s[a..b). */
static bool verify_identifier(py_tokenizer *t, size_t a, size_t b) {
  for (size_t i = a; i < b;) {
    if ((unsigned char)t->s[i] < 128) {
      i++;
      continue;
    }
    uint32_t cp;
    size_t n = cp_decode(t->s, t->len, i, &cp);
    const cp_range *r = refused(cp);
    if (r) {
      if (r->printable)
        fail(t, PY_ERR_TOKEN, i, i + n, "invalid character '%.*s' (U+%04X)", (int)n, t->s + i,
             (unsigned)cp);
      else
        fail(t, PY_ERR_TOKEN, i, i + n, "invalid non-printable character U+%04X", (unsigned)cp);
      return false;
    }
    i += n;
  }
  return true;
}

/* ---- numbers ------------------------------------------------------------ */

/* CPython reports a tokenizer error at the character before its read
 * position (SyntaxError.offset counts the characters read, 1-based). */
static py_token fail_before(py_tokenizer *t, size_t cur, const char *msg) {
  size_t p = cur > t->line_start ? cur - 1 : cur;
  return fail(t, PY_ERR_TOKEN, p, p + 1, "%s", msg);
}

/* After a number: a keyword that may follow one ("1if x else 2") only
 * warns; another letter is an error. Returns false after failing. */
static bool end_of_number(py_tokenizer *t, size_t i, const char *kind) {
  int c = at(t, i);
  const char *rest = NULL;
  switch (c) {
  case 'a': rest = "nd"; break;
  case 'e': rest = "lse"; break;
  case 'f': rest = "or"; break;
  case 'o': rest = "r"; break;
  case 'n': rest = "ot"; break;
  case 'i': {
    int d = at(t, i + 1);
    if (d == 'f' || d == 'n' || d == 's') return true;
    break;
  }
  default: break;
  }
  if (rest) {
    size_t k = 0;
    while (rest[k] && at(t, i + 1 + k) == rest[k]) k++;
    if (!rest[k]) return true;
  }
  if (is_id_char(c)) {
    char msg[48];
    snprintf(msg, sizeof msg, "invalid %s literal", kind);
    /* the read position is after the letter's first byte */
    fail_before(t, i + 1, msg);
    return false;
  }
  return true;
}

/* Digits with single underscores between them, from i; returns the index
 * after them, or 0 after failing ("1__0", "1_"). */
static size_t decimal_tail(py_tokenizer *t, size_t i) {
  for (;;) {
    while (is_digit(at(t, i))) i++;
    if (at(t, i) != '_') return i;
    i++;
    if (!is_digit(at(t, i))) {
      fail_before(t, i + 1, "invalid decimal literal");
      return 0;
    }
  }
}

/* A number starting at start (a digit, or '.' then a digit). */
static py_token number(py_tokenizer *t, size_t start) {
  size_t i = start;
  int c = at(t, i);
  if (c == '0' && (at(t, i + 1) == 'x' || at(t, i + 1) == 'X' || at(t, i + 1) == 'o' ||
                   at(t, i + 1) == 'O' || at(t, i + 1) == 'b' || at(t, i + 1) == 'B')) {
    int base = at(t, i + 1) | 0x20;
    const char *kind = base == 'x' ? "hexadecimal" : base == 'o' ? "octal" : "binary";
    int maxd = base == 'o' ? '8' : '2';
    i += 2;
    do {
      if (at(t, i) == '_') i++;
      c = at(t, i);
      bool ok = base == 'x' ? is_xdigit(c) : (c >= '0' && c < maxd);
      if (!ok) {
        char msg[48];
        if (base != 'x' && is_digit(c)) {
          snprintf(msg, sizeof msg, "invalid digit '%c' in %s literal", c, kind);
          return fail_before(t, i + 1, msg);
        }
        snprintf(msg, sizeof msg, "invalid %s literal", kind);
        return fail_before(t, i, msg);
      }
      do {
        c = at(t, ++i);
      } while (base == 'x' ? is_xdigit(c) : (c >= '0' && c < maxd));
    } while (at(t, i) == '_');
    if (base != 'x' && is_digit(at(t, i))) {
      char msg[48];
      snprintf(msg, sizeof msg, "invalid digit '%c' in %s literal", at(t, i), kind);
      return fail_before(t, i + 1, msg);
    }
    if (!end_of_number(t, i, kind)) return tok(PY_ERRORTOKEN, start, i);
    return tok(PY_NUMBER, start, i);
  }
  bool fraction = false;
  if (c == '.') {
    fraction = true;
    i++;
  } else if (c == '0') {
    /* zeros, then maybe an old-style octal (refused unless it turns out to
     * be a float or an imaginary number) */
    for (;;) {
      if (at(t, i) == '_') {
        i++;
        if (!is_digit(at(t, i))) return fail_before(t, i, "invalid decimal literal");
      }
      if (at(t, i) != '0') break;
      i++;
    }
    size_t zeros_end = i;
    bool nonzero = false;
    if (is_digit(at(t, i))) {
      nonzero = true;
      if (!(i = decimal_tail(t, i))) return tok(PY_ERRORTOKEN, start, start);
    }
    c = at(t, i);
    if (c == '.') {
      fraction = true;
      i++;
    } else if (c == 'e' || c == 'E' || c == 'j' || c == 'J') {
      /* handled below */
    } else if (nonzero) {
      return fail(t, PY_ERR_TOKEN, start, zeros_end,
                  "leading zeros in decimal integer literals are not permitted; use an 0o prefix "
                  "for octal integers");
    } else {
      if (!end_of_number(t, i, "decimal")) return tok(PY_ERRORTOKEN, start, i);
      return tok(PY_NUMBER, start, i);
    }
  } else {
    if (!(i = decimal_tail(t, i))) return tok(PY_ERRORTOKEN, start, start);
    if (at(t, i) == '.') {
      fraction = true;
      i++;
    }
  }
  if (fraction && is_digit(at(t, i)))
    if (!(i = decimal_tail(t, i))) return tok(PY_ERRORTOKEN, start, start);
  c = at(t, i);
  if (c == 'e' || c == 'E') {
    size_t e = i;
    i++;
    if (at(t, i) == '+' || at(t, i) == '-') {
      i++;
      if (!is_digit(at(t, i))) return fail_before(t, i, "invalid decimal literal");
    } else if (!is_digit(at(t, i))) {
      /* "1else": the 'e' starts a keyword */
      if (!end_of_number(t, e, "decimal")) return tok(PY_ERRORTOKEN, start, e);
      return tok(PY_NUMBER, start, e);
    }
    if (!(i = decimal_tail(t, i))) return tok(PY_ERRORTOKEN, start, start);
    c = at(t, i);
  }
  if (c == 'j' || c == 'J') {
    i++;
    if (!end_of_number(t, i, "imaginary")) return tok(PY_ERRORTOKEN, start, i);
  } else if (!end_of_number(t, i, "decimal")) {
    return tok(PY_ERRORTOKEN, start, i);
  }
  return tok(PY_NUMBER, start, i);
}

/* ---- strings ------------------------------------------------------------ */

/* 1-based line of byte off. The tokenizer keeps no line count; this runs
 * once, for the error that stops it. */
static unsigned line_of(const py_tokenizer *t, size_t off) {
  unsigned line = 1;
  for (size_t k = 0; k < off && k < t->len; k++) line += t->s[k] == '\n';
  return line;
}

/* A string whose opening quote is at q (prefix letters from start). */
static py_token string(py_tokenizer *t, size_t start, size_t q) {
  int quote = at(t, q);
  size_t i = q + 1;
  int size = 1;
  if (at(t, i) == quote && at(t, i + 1) == quote) {
    size = 3;
    i += 2;
  } else if (at(t, i) == quote) {
    return tok(PY_STRING, start, i + 1); /* empty string */
  }
  int endq = 0;
  while (endq != size) {
    int c = at(t, i);
    if (c == -1 || (size == 1 && c == '\n')) {
      unsigned line = line_of(t, c == -1 ? eof_pos(t) : i);
      return fail(t, PY_ERR_TOKEN, start, start + 1,
                  size == 3 ? "unterminated triple-quoted string literal (detected at line %u)"
                            : "unterminated string literal (detected at line %u)",
                  line);
    }
    i++;
    if (c == quote) {
      endq++;
    } else {
      endq = 0;
      if (c == '\\') {
        if (at(t, i) == '\r' && at(t, i + 1) == '\n') i++;
        if (at(t, i) != -1) i++;
      }
    }
  }
  return tok(PY_STRING, start, i);
}

/* ---- operators ---------------------------------------------------------- */

static size_t op_len(const py_tokenizer *t, size_t i) {
  int d = at(t, i + 1);
  if (d != '=' && d != '*' && d != '>' && d != '/' && d != '<' && d != '.') return 1;
  static const char *const three[] = {"**=", "...", "//=", "<<=", ">>="};
  static const char *const two[] = {"!=", "%=", "&=", "**", "*=", "+=", "-=", "->", "//", "/=",
                                    ":=", "<<", "<=", "<>", "==", ">=", ">>", "@=", "^=", "|="};
  for (size_t k = 0; k < sizeof three / sizeof *three; k++)
    if (at(t, i) == three[k][0] && at(t, i + 1) == three[k][1] && at(t, i + 2) == three[k][2])
      return 3;
  for (size_t k = 0; k < sizeof two / sizeof *two; k++)
    if (at(t, i) == two[k][0] && at(t, i + 1) == two[k][1]) return 2;
  return 1;
}

/* ---- the token loop ----------------------------------------------------- */

py_token py_tokenizer_next(py_tokenizer *t) {
  if (t->done) {
    if (t->err.kind) return tok(PY_ERRORTOKEN, t->err.start, t->err.end);
    return tok(PY_ENDMARKER, eof_pos(t), eof_pos(t));
  }
  for (;;) {
    bool blankline = false;
    if (t->atbol) {
      t->atbol = false;
      int col = 0, altcol = 0;
      for (;;) {
        int c = at(t, t->pos);
        if (c == ' ') {
          col++;
          altcol++;
        } else if (c == '\t') {
          col = (col / TABSIZE + 1) * TABSIZE;
          altcol++;
        } else if (c == '\014') {
          col = altcol = 0;
        } else if (c == '\r' && at(t, t->pos + 1) == '\n') {
          /* part of the newline */
        } else {
          break;
        }
        t->pos++;
      }
      int c = at(t, t->pos);
      if (c == '#' || c == '\n') blankline = true; /* comments and blank lines do not indent */
      if (!blankline && t->level == 0) {
        size_t here = c == -1 ? eof_pos(t) : t->pos;
        if (col == t->indstack[t->indent]) {
          if (altcol != t->altindstack[t->indent])
            return fail(t, PY_ERR_INDENT, here, here,
                        "inconsistent use of tabs and spaces in indentation");
        } else if (col > t->indstack[t->indent]) {
          if (t->indent + 1 >= MAXINDENT)
            return fail(t, PY_ERR_INDENT, here, here, "too many levels of indentation");
          if (altcol <= t->altindstack[t->indent])
            return fail(t, PY_ERR_INDENT, here, here,
                        "inconsistent use of tabs and spaces in indentation");
          t->pendin++;
          t->indent++;
          t->indstack[t->indent] = col;
          t->altindstack[t->indent] = altcol;
        } else {
          while (t->indent > 0 && col < t->indstack[t->indent]) {
            t->pendin--;
            t->indent--;
          }
          if (col != t->indstack[t->indent])
            return fail(t, PY_ERR_INDENT, here, here,
                        "unindent does not match any outer indentation level");
          if (altcol != t->altindstack[t->indent])
            return fail(t, PY_ERR_INDENT, here, here,
                        "inconsistent use of tabs and spaces in indentation");
        }
      }
    }
    if (t->pendin != 0) {
      size_t here = at(t, t->pos) == -1 ? eof_pos(t) : t->pos;
      if (t->pendin < 0) {
        t->pendin++;
        return tok(PY_DEDENT, here, here);
      }
      t->pendin--;
      return tok(PY_INDENT, here, here);
    }

    /* skip blanks; a comment ends at the newline, which then starts at the
     * comment (so does CPython's NEWLINE token) */
    int c;
    while ((c = at(t, t->pos)) == ' ' || c == '\t' || c == '\014' ||
           (c == '\r' && at(t, t->pos + 1) == '\n'))
      t->pos++;
    size_t start = t->pos;
    if (c == '#') {
      const char *nl = memchr(t->s + t->pos, '\n', t->len - t->pos);
      t->pos = nl ? (size_t)(nl - t->s) : t->len;
      if (t->pos > start && t->s[t->pos - 1] == '\r') t->pos--;
      while (at(t, t->pos) == '\r') t->pos++;
      c = at(t, t->pos);
    }

    if (c == -1) {
      if (t->level > 0)
        return fail(t, PY_ERR_EOF, t->paren_at[t->level - 1], t->paren_at[t->level - 1] + 1,
                    "'%c' was never closed", t->paren[t->level - 1]);
      t->done = true;
      return tok(PY_ENDMARKER, eof_pos(t), eof_pos(t));
    }

    if (c == '\n') {
      t->pos++;
      t->line_start = (uint32_t)t->pos;
      t->atbol = true;
      if (blankline || t->level > 0) continue;
      t->cont = false;
      return tok(PY_NEWLINE, start, t->pos - 1 > start ? t->pos - 1 : t->pos);
    }

    if (is_id_start(c)) {
      /* string prefixes: b, r, u, f and the combinations CPython allows */
      bool b = false, r = false, u = false, f = false;
      size_t i = t->pos;
      for (;;) {
        int d = at(t, i) | 0x20;
        if (!(b || u || f) && d == 'b') b = true;
        else if (!(b || u || r || f) && d == 'u') u = true;
        else if (!(r || u) && d == 'r') r = true;
        else if (!(f || b || u) && d == 'f') f = true;
        else break;
        i++;
        if (at(t, i) == '"' || at(t, i) == '\'') {
          py_token s = string(t, start, i);
          t->pos = s.end;
          return s;
        }
      }
      i = t->pos;
      bool nonascii = false;
      while (is_id_char(at(t, i))) nonascii |= at(t, i++) >= 128;
      t->pos = i;
      if (nonascii && !verify_identifier(t, start, i)) return tok(PY_ERRORTOKEN, t->err.start, t->err.end);
      return tok(PY_NAME, start, i);
    }

    if (c == '.' && is_digit(at(t, t->pos + 1))) {
      py_token n = number(t, start);
      t->pos = n.end;
      return n;
    }
    if (is_digit(c)) {
      py_token n = number(t, start);
      t->pos = n.end;
      return n;
    }
    if (c == '"' || c == '\'') {
      py_token s = string(t, start, start);
      t->pos = s.end;
      return s;
    }

    if (c == '\\') {
      size_t i = t->pos + 1;
      if (at(t, i) == '\r' && at(t, i + 1) == '\n') i++;
      if (at(t, i) != '\n')
      {
        /* raised only when the parser gets there (no later parser error is
         * replaced by it): an indentation-class error */
        fail_before(t, i + 1, "unexpected character after line continuation character");
        t->err.kind = PY_ERR_INDENT;
        return tok(PY_ERRORTOKEN, t->err.start, t->err.end);
      }
      i++;
      if (at(t, i) == -1) return fail(t, PY_ERR_EOF, i - 1, i - 1, "unexpected EOF while parsing");
      t->pos = i;
      t->line_start = (uint32_t)i;
      t->cont = true;
      continue;
    }

    size_t n = op_len(t, t->pos);
    t->pos += n;
    if (n == 1) {
      switch (c) {
      case '(': case '[': case '{':
        if (t->level >= MAXLEVEL) return fail_before(t, t->pos, "too many nested parentheses");
        t->paren[t->level] = (char)c;
        t->paren_at[t->level] = (uint32_t)start;
        t->level++;
        break;
      case ')': case ']': case '}': {
        if (!t->level) return fail(t, PY_ERR_TOKEN, start, start + 1, "unmatched '%c'", c);
        t->level--;
        int open = t->paren[t->level];
        if (!((open == '(' && c == ')') || (open == '[' && c == ']') || (open == '{' && c == '}'))) {
          const char *nl = memchr(t->s + t->paren_at[t->level], '\n', start - t->paren_at[t->level]);
          if (nl) {
            unsigned line = line_of(t, t->paren_at[t->level]);
            return fail(t, PY_ERR_TOKEN, start, start + 1,
                        "closing parenthesis '%c' does not match opening parenthesis '%c' on line %u",
                        c, open, line);
          }
          return fail(t, PY_ERR_TOKEN, start, start + 1,
                      "closing parenthesis '%c' does not match opening parenthesis '%c'", c, open);
        }
        break;
      }
      default:
        if (c < 32 || c == 127)
          return fail(t, PY_ERR_TOKEN, start, start + 1, "invalid non-printable character U+%04X",
                      (unsigned)c);
        break;
      }
    }
    return tok(PY_OP, start, t->pos);
  }
}
