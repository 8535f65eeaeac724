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

/* The end of the bracketed text that starts at s[i] ('(' or '{'): the
 * offset after its matching closer, quotes and escapes skipped; n when it
 * has none within MATCH_MAX bytes (each call is bounded, so the rewrites
 * stay linear even when a quote is left open). */
enum { MATCH_MAX = 1 << 16 };
static size_t match_close(const char *s, size_t n, size_t i) {
  char open = s[i], close = open == '(' ? ')' : '}';
  long depth = 0;
  size_t stop = n - i > MATCH_MAX ? i + MATCH_MAX : n;
  for (size_t k = i; k < stop; k++) {
    char c = s[k];
    if (c == '\\') {
      k++;
    } else if (c == '\'' || c == '"') {
      size_t q = k + 1;
      while (q < stop && s[q] != c) q += (c == '"' && s[q] == '\\') ? 2 : 1;
      if (q >= stop) return n;
      k = q;
    } else if (c == open) {
      depth++;
    } else if (c == close && --depth == 0) {
      return k + 1;
    }
  }
  return n;
}

/* The end of the shell word that starts at s[i]: quotes, escapes, $(…),
 * ${…} and backticks are part of it. */
static size_t word_end(const char *s, size_t n, size_t i) {
  size_t k = i;
  while (k < n && !is_blank(s[k]) && !strchr("\n;|&<>()", s[k])) {
    char c = s[k];
    if (c == '\\') {
      k += 2;
    } else if (c == '\'' || c == '"' || c == '`') {
      size_t q = k + 1;
      while (q < n && s[q] != c) q += (c != '\'' && s[q] == '\\') ? 2 : 1;
      k = q + 1;
    } else if (c == '$' && k + 1 < n && (s[k + 1] == '(' || s[k + 1] == '{')) {
      k = match_close(s, n, k + 1);
    } else {
      k++;
    }
  }
  return k < n ? k : n;
}

/* The end of the assignment `name=value` at s[i] (a command's prefix), or i
 * when s[i] starts none. An array value `name=(…)` counts. */
static size_t assignment_end(const char *s, size_t n, size_t i) {
  size_t k = i;
  if (k >= n || !is_name_char(s[k]) || (s[k] >= '0' && s[k] <= '9')) return i;
  while (k < n && is_name_char(s[k])) k++;
  if (k + 1 < n && s[k] == '+') k++;
  if (k >= n || s[k] != '=') return i;
  k++;
  if (k < n && s[k] == '(') return match_close(s, n, k);
  return word_end(s, n, k);
}

/* Whether s[i] starts a redirection with its target on the same line:
 * [digits] followed by '<' or '>', or "&>", then a word. */
static bool redirect_at(const char *s, size_t n, size_t i) {
  while (i < n && s[i] >= '0' && s[i] <= '9') i++;
  if (!(i < n && (s[i] == '<' || s[i] == '>' || (s[i] == '&' && i + 1 < n && s[i + 1] == '>'))))
    return false;
  while (i < n && strchr("<>&|", s[i])) i++;
  while (i < n && is_blank(s[i])) i++;
  return i < n && !strchr("\n;|&()", s[i]);
}

/* Here-documents: bash -n reads their bodies as text (a `$(if)` or a lone
 * quote in one is no error; the grammar misreads some, and a body after an
 * operator that continues the command, `cat <<EOF ||`, is taken for code).
 * A here-document whose closing line is found is removed from the copy: the
 * operator and its word become blanks, each line of the body and the
 * closing line start with '#' (comments). One without its closing line is
 * left as it is. */
enum { HEREDOC_MAX = 4, DELIM_MAX = 64 };
typedef struct {
  size_t op, end; /* the operator and its word: s[op, end) */
  bool dash;      /* <<- : tabs before the closing word */
  char delim[DELIM_MAX];
  size_t dlen;
} heredoc;

/* Whether s[i] starts a here-document operator `<<` (not `<<<`) outside
 * arithmetic: no `((` left open before it on its line. */
static bool heredoc_op(const char *s, size_t n, size_t i) {
  if (i + 2 >= n || s[i] != '<' || s[i + 1] != '<' || s[i + 2] == '<') return false;
  if (i > 0 && s[i - 1] == '<') return false;
  long open = 0;
  for (size_t k = i; k > 0 && s[k - 1] != '\n'; k--) {
    if (k >= 2 && s[k - 1] == '(' && s[k - 2] == '(') open++, k--;
    else if (k >= 2 && s[k - 1] == ')' && s[k - 2] == ')') open--, k--;
  }
  return open <= 0;
}

/* Reads the operator at s[i] into *h; false when its word is not one. */
static bool heredoc_read(const char *s, size_t n, size_t i, heredoc *h) {
  size_t k = i + 2;
  h->op = i;
  h->dash = k < n && s[k] == '-';
  if (h->dash) k++;
  while (k < n && is_blank(s[k])) k++;
  h->dlen = 0;
  while (k < n && !is_blank(s[k]) && !strchr("\n;|&<>()", s[k])) {
    if (s[k] == '\'' || s[k] == '"') {
      char q = s[k++];
      while (k < n && s[k] != q && s[k] != '\n') {
        if (h->dlen + 1 >= DELIM_MAX) return false;
        h->delim[h->dlen++] = s[k++];
      }
      if (k >= n || s[k] != q) return false;
      k++;
      continue;
    }
    if (s[k] == '\\') k++;
    if (k >= n || s[k] == '\n' || h->dlen + 1 >= DELIM_MAX) return false;
    if (s[k] == '$' || s[k] == '`') return false; /* an expansion: not a literal word */
    h->delim[h->dlen++] = s[k++];
  }
  h->end = k;
  return h->dlen > 0;
}

/* The bodies of the here-documents h[0..nh) start at s[i] (after the newline
 * that ends their command's line). Rewrites them all when every closing line
 * is found and returns the offset after the last one; returns i and changes
 * nothing otherwise. */
static size_t heredoc_bodies(char *s, size_t n, size_t i, const heredoc *h, size_t nh) {
  size_t ends[HEREDOC_MAX], at = i;
  for (size_t d = 0; d < nh; d++) {
    for (;;) {
      if (at >= n) return i;
      size_t e = at;
      while (e < n && s[e] != '\n') e++;
      size_t b = at;
      if (h[d].dash)
        while (b < e && s[b] == '\t') b++;
      bool last = e - b == h[d].dlen && !memcmp(s + b, h[d].delim, h[d].dlen);
      at = e < n ? e + 1 : e;
      if (last) break;
    }
    ends[d] = at;
  }
  for (size_t d = 0; d < nh; d++)
    for (size_t k = h[d].op; k < h[d].end; k++) s[k] = ' ';
  size_t end = ends[nh - 1];
  for (size_t k = i; k < end; k++) {
    if (s[k] != '\n') s[k] = '#';
    while (k < end && s[k] != '\n') k++;
  }
  return end;
}

char *bash_normalize(const char *text, size_t len) {
  char *s = xmalloc(len + 2);
  memcpy(s, text, len);
  size_t n = len;
  /* the newline that ends the last command (answers come without it) */
  if (n == 0 || s[n - 1] != '\n') s[n++] = '\n';
  s[n] = '\0';

  bool squote = false, dquote = false, backtick = false;
  heredoc docs[HEREDOC_MAX];
  size_t ndocs = 0;
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
      /* "$X\;*)": an escaped character, which the grammar refuses after an
       * expansion; it becomes "xx" (a literal all the same) */
      if (c == '\\' && i + 1 < n && s[i + 1] != '\n') {
        s[i] = s[i + 1] = 'x';
        i++;
        continue;
      }
      if (c == ')') {
        /* "*)echo": a pattern that is a lone '*' with the body right after
         * its ')', which the grammar reads as one word; the '*' becomes an
         * 'x' (a pattern all the same) */
        if (i > 0 && s[i - 1] == '*' && (i == 1 || strchr(" \t\n(|;", s[i - 2])) && i + 1 < n &&
            !is_blank(s[i + 1]) && s[i + 1] != '\n')
          s[i - 1] = 'x';
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
      /* "(( \$a > 0 ))": a string that starts with "((" and holds an escape,
       * which the grammar refuses: the second '(' becomes a blank (text
       * all the same) */
      if (dquote && i + 2 < n && s[i + 1] == '(' && s[i + 2] == '(') s[i + 2] = ' ';
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
      if (d == '{') {
        /* "${1:-`dirname $0`}": a backtick substitution inside an expansion,
         * which the grammar refuses; bash -n does not look inside backticks,
         * so they become double quotes (a word all the same) */
        size_t m = match_close(s, n, i + 1);
        for (size_t k = i + 2; k < m; k++)
          if (s[k] == '`') s[k] = '"';
        continue;
      }
      if (!is_name_char(d) && !strchr("{(@*#?!$-'\"", d)) s[i] = '_';
      continue;
    }
    if (dquote) continue;
    /* "3<>/dev/tty": opened for reading and writing, which the grammar
     * refuses; the '>' becomes a blank (a redirection from the file) */
    if (c == '<' && i + 1 < n && s[i + 1] == '>' && (i == 0 || s[i - 1] != '<')) {
      s[++i] = ' ';
      continue;
    }
    if (c == '<' && !backtick && heredoc_op(s, n, i)) {
      if (ndocs < HEREDOC_MAX && heredoc_read(s, n, i, &docs[ndocs])) {
        i = docs[ndocs++].end - 1;
        continue;
      }
      i++; /* both '<' */
      continue;
    }
    if (c == '\n' && ndocs) {
      i = heredoc_bodies(s, n, i + 1, docs, ndocs) - 1;
      ndocs = 0;
      continue;
    }
    if ((is_name_char(c) || c == '!' || c == '(') && command_start(s, i)) {
      /* "! a=1 b=(…)": a negated list of assignments, which the grammar
       * refuses; the negation changes no syntax, the '!' becomes a blank */
      if (c == '!' && i + 1 < n && is_blank(s[i + 1])) {
        size_t k = i + 1;
        while (k < n && is_blank(s[k])) k++;
        if (assignment_end(s, n, k) > k) s[i] = ' ';
        continue;
      }
      /* "n=$((x)) 2>/dev/null": assignments with a redirection and no
       * command, which the grammar refuses: the '=' of the first that is
       * not an array becomes a blank (a command with arguments) */
      size_t k = i, first = n;
      for (size_t e; (e = assignment_end(s, n, k)) > k;) {
        size_t eq = (size_t)((const char *)memchr(s + k, '=', e - k) - s);
        if (first == n && !(eq + 1 < n && s[eq + 1] == '(')) first = eq;
        k = e;
        while (k < n && is_blank(s[k])) k++;
      }
      if (k > i && first < n && redirect_at(s, n, k)) s[first] = ' ';
      /* "((cmd) 3>&- | cat)": a subshell inside a subshell that starts
       * like arithmetic; bash reads it as subshells when it does not end
       * with "))": the outer parentheses become blanks */
      if (c == '(' && i + 1 < n && s[i + 1] == '(' && (i == 0 || s[i - 1] != '(')) {
        size_t m = match_close(s, n, i);
        if (m < n && m >= i + 3 && s[m - 2] != ')') {
          s[i] = ' ';
          s[m - 1] = ' ';
        }
        i++;
        continue;
      }
    }
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
  /* "const f = () => {…}\n  [...a].forEach(…)": node ends the statement
   * after an arrow function's body (automatic semicolon insertion: the body
   * cannot be subscripted), the grammar reads a subscript. A '[' that
   * starts its line after a blank, whose line follows one ending with the
   * '}' of a body after "=>", gets a ';' on that blank. */
  for (size_t i = 1; i < len; i++) {
    if (s[i] != '[' || !is_blank(s[i - 1])) continue;
    size_t k = i;
    while (k > 0 && is_blank(s[k - 1])) k--;
    if (k == 0 || s[k - 1] != '\n') continue;
    while (k > 0 && (is_blank(s[k - 1]) || s[k - 1] == '\n' || s[k - 1] == '\r')) k--;
    if (k == 0 || s[k - 1] != '}') continue;
    long depth = 0;
    size_t o = k - 1, floor = o > 100000 ? o - 100000 : 0;
    for (;; o--) {
      depth += (s[o] == '}') - (s[o] == '{');
      if (depth == 0 || o == floor) break;
    }
    if (depth != 0) continue;
    while (o > 0 && is_blank(s[o - 1])) o--;
    if (o >= 2 && s[o - 1] == '>' && s[o - 2] == '=') s[i - 1] = ';';
  }
  return s;
}
