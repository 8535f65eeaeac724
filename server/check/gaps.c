/* Copies of programs that the tree-sitter grammars parse the way the
 * interpreters do: same-length rewrites of what bash or node accepts and the
 * grammar does not (found with `bash -n` and `node --check` on the
 * machine's files, docs/checks.md), so every byte, line and column stays
 * where it was. Used only for a program whose parse has errors: the errors
 * of the copy are the ones reported. */
#include <stdbool.h>
#include <string.h>

#include "gaps.h"
#include "common.h"

static bool is_blank(char c) { return c == ' ' || c == '\t'; }
static bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* True when the word at s[i..] is `word` and ends there. */
static bool word_at(const char *s, size_t len, size_t i, const char *word) {
  size_t n = strlen(word);
  if (i + n > len || memcmp(s + i, word, n)) return false;
  return i + n == len || !is_name_char(s[i + n]);
}

/* True when position i starts a command word: after the start of the text,
 * a newline, ';', '&', '|', '(', '{', '!' or a keyword that precedes a
 * command, with blanks between. */
static bool command_start(const char *s, size_t i) {
  size_t k = i;
  while (k > 0 && is_blank(s[k - 1])) k--;
  if (k == 0) return true;
  char p = s[k - 1];
  if (strchr("\n;&|({!", p)) return true;
  static const char *const kws[] = {"then", "do", "else", "elif", "if", "while", "until"};
  for (size_t w = 0; w < ARRAY_LEN(kws); w++) {
    size_t n = strlen(kws[w]);
    if (k >= n && !memcmp(s + k - n, kws[w], n) && (k == n || !is_name_char(s[k - n - 1])))
      return true;
  }
  return false;
}

char *bash_normalize(const char *text, size_t len) {
  char *s = xmalloc(len + 2);
  memcpy(s, text, len);
  size_t n = len;
  /* the newline that ends the last command (answers come without it) */
  if (n == 0 || s[n - 1] != '\n') s[n++] = '\n';
  s[n] = '\0';

  bool squote = false, dquote = false, backtick = false;
  /* case statements: waiting for 'in', in a pattern, in a body */
  enum { C_IN, C_PATTERN, C_BODY };
  unsigned char cs[32];
  size_t ncase = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    int mode = ncase ? cs[ncase - 1] : -1;
    if (!squote && !dquote && mode == C_PATTERN) {
      /* "less' '45*)": a quoted part next to glob characters, which the
       * grammar refuses; the quoted part becomes 'x's (the same word for
       * the parse) */
      if (c == '\'' || c == '"') {
        size_t j = i + 1;
        while (j < n && s[j] != c && s[j] != '\n') j += (c == '"' && s[j] == '\\') ? 2 : 1;
        if (j < n && s[j] == c) {
          memset(s + i, 'x', j + 1 - i);
          i = j;
          continue;
        }
      }
      if (c == ')') {
        cs[ncase - 1] = C_BODY;
        continue;
      }
      if (c == 'e' && word_at(s, n, i, "esac") && command_start(s, i)) {
        ncase--;
        i += 3;
        continue;
      }
    }
    if (!squote && !dquote && mode == C_BODY) {
      if (c == ';' && i + 1 < n && (s[i + 1] == ';' || s[i + 1] == '&')) {
        cs[ncase - 1] = C_PATTERN;
        i += (i + 2 < n && s[i + 2] == '&') ? 2 : 1;
        continue;
      }
      if (c == 'e' && word_at(s, n, i, "esac") && command_start(s, i)) {
        ncase--;
        i += 3;
        continue;
      }
    }
    if (!squote && !dquote && mode == C_IN && c == 'i' && word_at(s, n, i, "in") &&
        (i == 0 || !is_name_char(s[i - 1]))) {
      cs[ncase - 1] = C_PATTERN;
      i++;
      continue;
    }
    if (!squote && !dquote && c == 'c' && word_at(s, n, i, "case") && command_start(s, i) &&
        ncase < sizeof cs) {
      cs[ncase++] = C_IN;
      i += 3;
      continue;
    }
    if (squote) {
      if (c == '\'') squote = false;
      continue;
    }
    if (c == '\\') {
      i++; /* an escaped character is a literal */
      continue;
    }
    if (c == '\'' && !dquote) {
      squote = true;
      continue;
    }
    if (c == '"') {
      dquote = !dquote;
      continue;
    }
    if (c == '#' && !dquote && (i == 0 || is_blank(s[i - 1]) || s[i - 1] == '\n')) {
      while (i + 1 < n && s[i + 1] != '\n') i++;
      continue;
    }
    if (c == '`') {
      /* "` cmd`": a command substitution that starts with a blank, which
       * the grammar misreads after an earlier one: the blank becomes ':'
       * (a command word of its own, no change to the parse) */
      backtick = !backtick;
      if (backtick && i + 1 < n && is_blank(s[i + 1])) s[i + 1] = ':';
      continue;
    }
    if (c == '$') {
      /* a '$' that starts no expansion is a literal character ("s/x$//",
       * "\(e2scrub$\)") */
      char d = i + 1 < n ? s[i + 1] : '\n';
      if (!is_name_char(d) && !strchr("{(@*#?!$-'\"", d)) s[i] = '_';
      continue;
    }
    if (dquote) continue;
    /* "for f do …": a for without 'in' whose 'do' is on its line */
    if (c == 'f' && word_at(s, n, i, "for") && command_start(s, i)) {
      size_t k = i + 3;
      while (k < n && is_blank(s[k])) k++;
      size_t name = k;
      while (k < n && is_name_char(s[k])) k++;
      if (k > name && k < n && is_blank(s[k])) {
        size_t b = k;
        while (k < n && is_blank(s[k])) k++;
        if (word_at(s, n, k, "do")) s[b] = ';';
      }
      continue;
    }
    /* "[ … ]": the grammar's test expressions are narrower than test(1)'s
     * ("[ "$op" "$x" ]", "[ \( -n "$a" \) ]"); bash -n does not look
     * inside, so neither do we: the '[' becomes ':' (a command whose
     * arguments are the words) */
    if (c == '[' && i + 1 < n && is_blank(s[i + 1]) && command_start(s, i)) s[i] = ':';
  }
  return s;
}

char *js_normalize(const char *text, size_t len) {
  char *s = xmalloc(len + 1);
  memcpy(s, text, len);
  s[len] = '\0';
  /* `from 'x' assert {` → `from 'x' with   {`: after a string, blanks, the
   * word, blanks, '{' (a string that ends a module name; an `assert` call
   * or property is never preceded by one and followed by '{') */
  for (const char *p = s; (p = memmem(p, (size_t)(s + len - p), "assert", 6)) != NULL; p += 6) {
    size_t i = (size_t)(p - s), k = i;
    while (k > 0 && is_blank(s[k - 1])) k--;
    if (k == i || k == 0 || (s[k - 1] != '\'' && s[k - 1] != '"')) continue;
    size_t j = i + 6;
    if (j < len && is_name_char(s[j])) continue;
    while (j < len && is_blank(s[j])) j++;
    if (j < len && s[j] == '{') memcpy(s + i, "with  ", 6);
  }
  return s;
}
